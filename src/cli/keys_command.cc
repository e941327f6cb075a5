// `bifrost keys status` and `bifrost keys rotate`: local commands on a data directory or a
// PostgreSQL database (docs/keys.md). They read the master keys from the environment like the
// server does and may run while the server serves the same database.
#include <unistd.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/database_flags.h"
#include "cli/flags.h"
#include "cli/local_commands.h"
#include "cli/progress.h"
#include "cli/table.h"
#include "cli/terminal.h"
#include "common/clock.h"
#include "common/text.h"
#include "keys/installation.h"
#include "keys/keys.h"

namespace bifrost::cli {
namespace {

using nlohmann::json;

constexpr const char* kKeysFooter =
    R"(Local commands, like init and audit verify: they open the database directly (the data
directory on the server's host, or the PostgreSQL database with --database URL) and need
the server's master keys in the environment. The servers may keep serving meanwhile; an
interrupted rotation leaves every value readable, and running the same command again
finishes it.

Values are sealed with a data key of their organization (or of the global scope); the
data keys are stored wrapped by the master key, BIFROST_SECRET_KEY.

Rotating the master key:
  1. Generate a new key (at least 32 characters), e.g. `openssl rand -base64 32`.
  2. Restart every server with BIFROST_SECRET_KEY=<new key> and
     BIFROST_SECRET_KEY_PREVIOUS=<old key>.
  3. Run `bifrost keys rotate --data DIR` (or --database URL) with the same two variables.
  4. Run `bifrost keys status --data DIR`: once it says the previous keys are no longer
     used, remove BIFROST_SECRET_KEY_PREVIOUS and restart the servers.

Examples:
  bifrost keys status --data /var/lib/bifrost
  bifrost keys rotate --data /var/lib/bifrost               # re-wrap under the new master key
  bifrost keys rotate --data /var/lib/bifrost --org acme    # a new data key for acme
  bifrost keys status --database 'postgresql://bifrost@db/bifrost'

Environment:
  BIFROST_SECRET_KEY (or BIFROST_SECRET_KEY_FILE)             the current master key
  BIFROST_SECRET_KEY_PREVIOUS (or BIFROST_SECRET_KEY_PREVIOUS_FILE)
                                  older master keys, one per line, during a rotation
  BIFROST_DATA                    the data directory, instead of --data
  BIFROST_DATABASE_URL            the PostgreSQL database, instead of --database
Reference: docs/keys.md)";

constexpr const char* kStatusFooter =
    R"(Shows which master keys the data keys and values need, how many data keys and
secrets there are, and any rotation that was interrupted. Only reads: it writes nothing,
not even an audit record.
--format json prints one object: primary_key_id; master_keys (key_id, role
"primary"|"previous"|"not configured", data_keys, direct_values); organizations;
data_keys; sealed_values; unfinished (data-key rotations not finished: scope
"global"|"organization", org_id, name, active_key, values_left); unfinished_jobs (id, kind,
target, actor, started_at; a run of a deleted organization is left out);
previous_keys_unused.
Examples:
  bifrost keys status --data /var/lib/bifrost
  BIFROST_DATA=/var/lib/bifrost bifrost keys status --format json)";

constexpr const char* kRotateFooter =
    R"(Without --org or --all: master-key rotation. Re-wraps every data key that an older
master key (from BIFROST_SECRET_KEY_PREVIOUS) wraps under the current one,
BIFROST_SECRET_KEY. No value is re-encrypted; the work is one small row per organization.
With --org ORG: data-key rotation of one organization (name or id): a new data key, every
secret re-encrypted with it, then the old key destroyed. --all: the same for the global
scope and every organization.
Every run is recorded in the audit log (keys.rotate_master.start / keys.rotate_master,
keys.rotate_data.start / keys.rotate_data) with the operator as actor. Killed halfway,
every value stays readable: run the same command again to finish.
Resume: a run that is killed (kill -9, a crash) stays unfinished, and the next run of the
same rotation resumes it: it skips the scopes that run had already rotated and says so
(when that run started, who started it, which scopes it skipped). A run that stops on an
error is closed, so running again after an error starts afresh. --restart closes an
unfinished run of the same rotation and starts a fresh one that rotates every scope again.
Progress goes to stderr (a bar on a terminal), the summary to stdout. --format json prints
one object: for a master rotation {rotation: "master", primary_key_id, rewrapped,
data_keys, previous_keys_unused, resumed_job, closed_jobs}; for a data rotation
{rotation: "data", scopes: [{scope, org_id, name, new_key, old_keys, resealed, resumed}],
resealed, resumed_job, skipped: [{scope, org_id, name, reason}], closed_jobs}.
resumed_job: null, or the unfinished run this one resumed {id, started_at, actor};
skipped reason: "rotated_by_resumed_run" or "organization_deleted" (deleted during the
rotation); closed_jobs: other unfinished runs this one closed {id, kind, target, actor,
started_at, reason: "restart"|"superseded"|"organization_deleted"}.
Exit codes: 0 done, 1 error (nothing is lost: run it again), 2 usage, 3 no such organization.
Examples:
  bifrost keys rotate --data /var/lib/bifrost                 # after a new master key
  bifrost keys rotate --data /var/lib/bifrost --org acme      # acme's data key
  bifrost keys rotate --data /var/lib/bifrost --all --restart # every scope, not resuming
  bifrost keys rotate --data /var/lib/bifrost --all --batch-size 2000 --format json)";

struct StatusArgs {
  std::string data_dir;
  std::string database_url;
  Format format = Format::kTable;
};

struct RotateArgs {
  std::string data_dir;
  std::string database_url;
  std::string org;  // a name or an id; empty: not given
  bool all = false;
  bool restart = false;
  std::size_t batch_size = 500;
  Format format = Format::kTable;
};

void PrintJson(CliIo& io, const json& value) {
  *io.out << value.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
}

CliResult<keys::LocalInstallation> OpenInstallation(const std::string& data_dir,
                                                    const std::string& database_url,
                                                    const std::string& command, bool read_only) {
  ForgetDatabaseUrlVariable();
  BIFROST_CLI_RETURN_IF_ERROR(CheckDatabaseFlags(command, data_dir, database_url));
  auto installation = keys::OpenLocalInstallation({.data_dir = data_dir,
                                                   .database_url = database_url,
                                                   .command = command,
                                                   .read_only = read_only},
                                                  SystemClock::Instance());
  if (!installation) return FromError(installation.error());
  return std::move(*installation);
}

// An organization by name, or by id when no organization has that name.
CliResult<store::OrgRow> ResolveOrg(store::Store& store, const std::string& org) {
  auto txn = store.Begin(store::TxnMode::kRead);
  if (!txn) return FromError(txn.error());
  auto by_name = (*txn)->GetOrgByName(org);
  if (!by_name) return FromError(by_name.error());
  if (*by_name) return std::move(**by_name);
  if (IsCanonicalUuid(org)) {
    auto by_id = (*txn)->GetOrgById(org);
    if (!by_id) return FromError(by_id.error());
    if (*by_id) return std::move(**by_id);
  }
  return NotFoundError("organization " + QuoteForMessage(org) + " does not exist");
}

std::string ScopeKind(const store::Scope& scope) {
  return scope.is_global() ? "global" : "organization";
}

json OrgIdJson(const store::Scope& scope) {
  return scope.is_global() ? json() : json(scope.org_id());
}

std::string ScopeText(const store::Scope& scope, const std::string& label) {
  return scope.is_global() ? std::string("global") : "organization " + label;
}

std::string MasterRole(const keys::MasterKeyUse& use) {
  if (use.primary) return "primary";
  return use.configured ? "previous" : "not configured";
}

bool HasPreviousKeys(const keys::KeyStatus& status) {
  for (const auto& use : status.master_keys) {
    if (use.configured && !use.primary) return true;
  }
  return false;
}

// What the operator should do next about the master keys, as one or more lines.
std::string MasterKeyAdvice(const keys::KeyStatus& status) {
  std::int64_t wrapped_by_others = 0;
  std::int64_t direct_by_others = 0;
  for (const auto& use : status.master_keys) {
    if (use.primary) continue;
    wrapped_by_others += use.data_keys;
    direct_by_others += use.direct_values;
  }
  std::string advice;
  if (wrapped_by_others > 0) {
    advice += std::to_string(wrapped_by_others);
    advice += wrapped_by_others == 1 ? " data key is" : " data keys are";
    advice += " still wrapped by an older master key: run `bifrost keys rotate`.\n";
  }
  if (direct_by_others > 0) {
    advice += std::to_string(direct_by_others);
    advice += direct_by_others == 1 ? " value is" : " values are";
    advice +=
        " still sealed directly by an older master key (stored before data keys): run "
        "`bifrost keys rotate --all` to move them under data keys.\n";
  }
  if (!advice.empty()) return advice;
  if (HasPreviousKeys(status)) {
    return "The previous master keys are no longer used: remove BIFROST_SECRET_KEY_PREVIOUS "
           "(or its _FILE) and restart the servers.\n";
  }
  return "Only the current master key is in use.\n";
}

json StatusJson(const keys::KeyStatus& status) {
  json master_keys = json::array();
  for (const auto& use : status.master_keys) {
    master_keys.push_back({{"key_id", use.key_id},
                           {"role", MasterRole(use)},
                           {"primary", use.primary},
                           {"configured", use.configured},
                           {"data_keys", use.data_keys},
                           {"direct_values", use.direct_values}});
  }
  json unfinished = json::array();
  for (const auto& scope : status.unfinished) {
    unfinished.push_back({{"scope", ScopeKind(scope.scope)},
                          {"org_id", OrgIdJson(scope.scope)},
                          {"name", scope.label},
                          {"active_key", scope.active_key},
                          {"values_left", scope.values_left}});
  }
  json jobs = json::array();
  for (const auto& job : status.unfinished_jobs) {
    jobs.push_back({{"id", job.id},
                    {"kind", job.kind},
                    {"target", job.target},
                    {"actor", job.actor},
                    {"started_at", FormatRfc3339(job.started_at)}});
  }
  return {{"primary_key_id", status.primary_key_id},
          {"master_keys", std::move(master_keys)},
          {"organizations", status.organizations},
          {"data_keys", status.data_keys},
          {"sealed_values", status.sealed_values},
          {"unfinished", std::move(unfinished)},
          {"unfinished_jobs", std::move(jobs)},
          {"previous_keys_unused", status.previous_keys_unused}};
}

std::string StatusTable(const keys::KeyStatus& status, bool ansi) {
  std::string out = RenderFields({{"Primary master key", status.primary_key_id},
                                  {"Organizations", std::to_string(status.organizations)},
                                  {"Data keys", std::to_string(status.data_keys)},
                                  {"Sealed values", std::to_string(status.sealed_values)}},
                                 ansi);
  std::vector<TableRow> rows;
  for (const auto& use : status.master_keys) {
    rows.push_back({use.key_id, MasterRole(use), std::to_string(use.data_keys),
                    std::to_string(use.direct_values)});
  }
  out += '\n';
  out += RenderTable({"MASTER KEY", "ROLE", "DATA KEYS", "DIRECT VALUES"}, rows, ansi);
  if (!status.unfinished.empty()) {
    rows.clear();
    for (const auto& scope : status.unfinished) {
      rows.push_back({ScopeText(scope.scope, scope.label),
                      scope.active_key.empty() ? "-" : scope.active_key,
                      std::to_string(scope.values_left)});
    }
    out +=
        "\nData-key rotations not finished (run the same `bifrost keys rotate` again to "
        "finish):\n";
    out += RenderTable({"SCOPE", "ACTIVE KEY", "VALUES LEFT"}, rows, ansi);
  }
  if (!status.unfinished_jobs.empty()) {
    rows.clear();
    for (const auto& job : status.unfinished_jobs) {
      std::string what = job.kind;
      if (!job.target.empty()) {
        what += job.kind == "master" ? " to " : " ";
        what += job.target;
      }
      rows.push_back({std::to_string(job.id), what, FormatRfc3339(job.started_at), job.actor});
    }
    out +=
        "\nRuns not finished (running, or killed: the next run of the same rotation resumes "
        "it; `--restart` starts afresh):\n";
    out += RenderTable({"JOB", "ROTATION", "STARTED", "BY"}, rows, ansi);
  }
  out += '\n';
  out += MasterKeyAdvice(status);
  return out;
}

CliStatus KeysStatus(CliIo& io, const StatusArgs& args) {
  BIFROST_CLI_ASSIGN(auto installation,
                     OpenInstallation(args.data_dir, args.database_url, "keys status", true));
  auto status = keys::GetKeyStatus(*installation.store, *installation.barrier);
  if (!status) return FromError(status.error());
  if (args.format == Format::kJson) {
    PrintJson(io, StatusJson(*status));
  } else {
    *io.out << StatusTable(*status, Session(io).UseAnsi());
  }
  return {};
}

json ResumedJobJson(const std::optional<store::KeyJobRow>& job) {
  if (!job) return json();
  return {{"id", job->id}, {"started_at", FormatRfc3339(job->started_at)}, {"actor", job->actor}};
}

json ClosedJobsJson(const std::vector<keys::ClosedJob>& closed) {
  json out = json::array();
  for (const auto& item : closed) {
    out.push_back({{"id", item.job.id},
                   {"kind", item.job.kind},
                   {"target", item.job.target},
                   {"actor", item.job.actor},
                   {"started_at", FormatRfc3339(item.job.started_at)},
                   {"reason", keys::JobCloseReasonName(item.reason)}});
  }
  return out;
}

// "started at <time> by <actor> (job N)".
std::string JobPhrase(const store::KeyJobRow& job) {
  std::string out = "started at ";
  out += FormatRfc3339(job.started_at);
  if (!job.actor.empty()) {
    out += " by ";
    out += job.actor;
  }
  out += " (job ";
  out += std::to_string(job.id);
  out += ')';
  return out;
}

// One line per unfinished run this run closed, then one about the run it resumed.
std::string JobNotes(const std::vector<keys::ClosedJob>& closed,
                     const std::optional<store::KeyJobRow>& resumed,
                     const std::string& primary_key_id) {
  std::string out;
  for (const auto& item : closed) {
    switch (item.reason) {
      case keys::JobCloseReason::kRestart:
        out += "Closed the unfinished run ";
        out += JobPhrase(item.job);
        out += " (--restart): this is a fresh run.\n";
        break;
      case keys::JobCloseReason::kSuperseded:
        out += "Closed the unfinished master rotation ";
        if (!item.job.target.empty()) {
          out += "to key ";
          out += item.job.target;
          out += ' ';
        }
        out += JobPhrase(item.job);
        out += ": superseded by this rotation";
        if (!primary_key_id.empty()) {
          out += " to key ";
          out += primary_key_id;
        }
        out += ".\n";
        break;
      case keys::JobCloseReason::kOrganizationDeleted:
        out += "Closed the unfinished run of deleted organization ";
        out += item.job.target;
        out += ' ';
        out += JobPhrase(item.job);
        out += ".\n";
        break;
    }
  }
  if (resumed) {
    out += "Resumed the unfinished run ";
    out += JobPhrase(*resumed);
    out += "; add --restart for a fresh run instead.\n";
  }
  return out;
}

CliStatus PrintMasterReport(CliIo& io, const RotateArgs& args,
                            const keys::MasterRotationReport& report,
                            const keys::KeyStatus& status) {
  if (args.format == Format::kJson) {
    PrintJson(io, {{"rotation", "master"},
                   {"primary_key_id", report.primary_key_id},
                   {"rewrapped", report.rewrapped},
                   {"data_keys", report.total},
                   {"previous_keys_unused", status.previous_keys_unused},
                   {"resumed_job", ResumedJobJson(report.resumed_job)},
                   {"closed_jobs", ClosedJobsJson(report.closed_jobs)}});
    return {};
  }
  std::string rewrapped = std::to_string(report.rewrapped);
  rewrapped += " of ";
  rewrapped += std::to_string(report.total);
  rewrapped += " wrapped keys (data keys and kept audit keys)";
  *io.out << JobNotes(report.closed_jobs, report.resumed_job, report.primary_key_id)
          << RenderFields({{"Primary master key", report.primary_key_id},
                           {"Re-wrapped by this run", std::move(rewrapped)}},
                          Session(io).UseAnsi())
          << '\n'
          << MasterKeyAdvice(status);
  return {};
}

// At most this many scope names in a line of the table output (JSON lists them all).
constexpr std::size_t kMaxNamesListed = 10;

std::string ScopeNames(const std::vector<const keys::SkippedScope*>& scopes) {
  std::string out;
  for (std::size_t i = 0; i < scopes.size() && i < kMaxNamesListed; ++i) {
    if (!out.empty()) out += ", ";
    out += scopes[i]->label;
  }
  if (scopes.size() > kMaxNamesListed) {
    out += " and ";
    out += std::to_string(scopes.size() - kMaxNamesListed);
    out += " more (--format json lists them all)";
  }
  return out;
}

// The lines about the scopes a data rotation left alone.
std::string SkippedLines(const keys::DataRotationReport& report, bool deleted_told) {
  std::vector<const keys::SkippedScope*> done;
  std::vector<const keys::SkippedScope*> deleted;
  for (const auto& skipped : report.skipped) {
    (skipped.reason == keys::SkipReason::kRotatedByResumedRun ? done : deleted).push_back(&skipped);
  }
  std::string out;
  if (!done.empty()) {
    out += "Skipped ";
    out += std::to_string(done.size());
    out += done.size() == 1 ? " scope" : " scopes";
    out += " the resumed run had already rotated: ";
    out += ScopeNames(done);
    out += ".\n";
  }
  if (!deleted.empty() && !deleted_told) {
    out += "Skipped ";
    out += std::to_string(deleted.size());
    out += deleted.size() == 1 ? " organization" : " organizations";
    out += " deleted during the rotation (their keys and values are gone with them): ";
    out += ScopeNames(deleted);
    out += ".\n";
  }
  return out;
}

json DataReportJson(const keys::DataRotationReport& report) {
  json scopes = json::array();
  for (const auto& scope : report.scopes) {
    scopes.push_back({{"scope", ScopeKind(scope.scope)},
                      {"org_id", OrgIdJson(scope.scope)},
                      {"name", scope.label},
                      {"new_key", scope.new_key},
                      {"old_keys", scope.old_keys},
                      {"resealed", scope.resealed},
                      {"resumed", scope.resumed}});
  }
  json skipped = json::array();
  for (const auto& scope : report.skipped) {
    skipped.push_back({{"scope", ScopeKind(scope.scope)},
                       {"org_id", OrgIdJson(scope.scope)},
                       {"name", scope.label},
                       {"reason", keys::SkipReasonName(scope.reason)}});
  }
  return {{"rotation", "data"},
          {"scopes", std::move(scopes)},
          {"resealed", report.resealed},
          {"resumed_job", ResumedJobJson(report.resumed_job)},
          {"skipped", std::move(skipped)},
          {"closed_jobs", ClosedJobsJson(report.closed_jobs)}};
}

std::string DataReportText(const keys::DataRotationReport& report, bool ansi) {
  std::string out = JobNotes(report.closed_jobs, report.resumed_job, "");
  std::vector<TableRow> rows;
  for (const auto& scope : report.scopes) {
    std::string old_keys;
    for (const auto& id : scope.old_keys) {
      if (!old_keys.empty()) old_keys += ' ';
      old_keys += id;
    }
    rows.push_back({ScopeText(scope.scope, scope.label), scope.new_key,
                    old_keys.empty() ? "-" : old_keys, std::to_string(scope.resealed),
                    scope.resumed ? "resumed" : "new"});
  }
  bool deleted_told = false;
  if (!rows.empty()) {
    out += RenderTable({"SCOPE", "NEW KEY", "DESTROYED", "RE-ENCRYPTED", "RUN"}, rows, ansi);
    out += "Re-encrypted ";
    out += std::to_string(report.resealed);
    out += report.resealed == 1 ? " value in " : " values in ";
    out += std::to_string(report.scopes.size());
    out += report.scopes.size() == 1 ? " scope.\n" : " scopes.\n";
  } else if (report.skipped.size() == 1 &&
             report.skipped.front().reason == keys::SkipReason::kOrganizationDeleted &&
             !report.skipped.front().scope.is_global()) {
    // --org, and the organization was deleted while this ran.
    out += "Organization ";
    out += report.skipped.front().label;
    out +=
        " was deleted during the rotation: its keys and values are gone with it, so there "
        "is nothing left to rotate.\n";
    deleted_told = true;
  } else {
    out += "Nothing was left to rotate.\n";
  }
  out += SkippedLines(report, deleted_told);
  return out;
}

CliStatus PrintDataReport(CliIo& io, const RotateArgs& args,
                          const keys::DataRotationReport& report) {
  if (args.format == Format::kJson) {
    PrintJson(io, DataReportJson(report));
  } else {
    *io.out << DataReportText(report, Session(io).UseAnsi());
  }
  return {};
}

CliStatus KeysRotate(CliIo& io, const RotateArgs& args) {
  if (args.all && !args.org.empty()) return UsageError("give --org or --all, not both");
  BIFROST_CLI_ASSIGN(auto installation,
                     OpenInstallation(args.data_dir, args.database_url, "keys rotate", false));
  const Clock& clock = SystemClock::Instance();
  std::optional<store::Scope> only;
  if (!args.org.empty()) {
    BIFROST_CLI_ASSIGN(auto org, ResolveOrg(*installation.store, args.org));
    only = store::Scope::Org(org.id);
  }

  ProgressRenderer renderer(
      *io.err, {.command = "keys rotate", .terminal = ProgressOnTerminal(io), .now = nullptr});
  keys::RotateOptions options;
  options.batch_size = args.batch_size;
  options.actor = keys::OperatorName();
  options.restart = args.restart;
  options.progress = [&renderer](const keys::Progress& progress) { renderer.Update(progress); };

  if (!args.all && !only) {
    auto report = keys::RotateMasterKey(*installation.store, *installation.barrier,
                                        *installation.audit, clock, options);
    renderer.Finish();
    if (!report) return FromError(report.error());
    if (!report->release_warning.empty()) {
      *io.err << "bifrost: warning: " << report->release_warning << "\n";
    }
    auto status = keys::GetKeyStatus(*installation.store, *installation.barrier);
    if (!status) return FromError(status.error());
    return PrintMasterReport(io, args, *report, *status);
  }
  auto report = keys::RotateDataKeys(*installation.store, *installation.barrier,
                                     *installation.audit, clock, only, options);
  renderer.Finish();
  if (!report) return FromError(report.error());
  if (!report->release_warning.empty()) {
    *io.err << "bifrost: warning: " << report->release_warning << "\n";
  }
  return PrintDataReport(io, args, *report);
}

}  // namespace

// The table output of a data rotation. Not in the anonymous namespace only so that
// keys_command_test.cc, which declares it, can check the wording of rare outcomes.
std::string RenderDataRotation(const keys::DataRotationReport& report, bool ansi) {
  return DataReportText(report, ansi);
}

void AddKeysCommands(CLI::App& app, std::function<CliStatus()>& action, CliIo& io) {
  auto* keys = app.add_subcommand("keys", "Master and data keys: status, rotation (local)");
  keys->require_subcommand(1);
  keys->footer(kKeysFooter);

  auto status_args = std::make_shared<StatusArgs>();
  auto* status = keys->add_subcommand(
      "status", "Which master keys are in use; unfinished rotations (local, read-only)");
  AddDatabaseFlags(status, status_args->data_dir, status_args->database_url);
  AddFormat(status, status_args->format);
  status->footer(kStatusFooter);
  status->callback([&action, &io, status_args] {
    action = [&io, status_args] { return KeysStatus(io, *status_args); };
  });

  auto rotate_args = std::make_shared<RotateArgs>();
  auto* rotate = keys->add_subcommand(
      "rotate", "Re-wrap data keys under the current master key, or rotate data keys (local)");
  AddDatabaseFlags(rotate, rotate_args->data_dir, rotate_args->database_url);
  auto* org = rotate
                  ->add_option("--org", rotate_args->org,
                               "Rotate this organization's data key (name or id)")
                  ->option_text("ORG");
  auto* all = rotate->add_flag("--all", rotate_args->all,
                               "Rotate the data keys of the global scope and every organization");
  org->excludes(all);
  all->excludes(org);
  rotate->add_flag("--restart", rotate_args->restart,
                   "Start afresh: close an unfinished run instead of resuming it");
  rotate->add_option("--batch-size", rotate_args->batch_size, "Rows per write transaction")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}))
      ->option_text("N (1-100000, default 500)");
  AddFormat(rotate, rotate_args->format);
  rotate->footer(kRotateFooter);
  rotate->callback([&action, &io, rotate_args] {
    action = [&io, rotate_args] { return KeysRotate(io, *rotate_args); };
  });
}

}  // namespace bifrost::cli
