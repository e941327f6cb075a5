// `bifrost migrate`: an embedded installation copied into an empty PostgreSQL database
// (migrate_command.h).
#include "cli/migrate_command.h"

#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/database_flags.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/text.h"
#include "keys/key_source.h"
#include "store/open/open_store.h"

namespace bifrost::cli {
namespace migrate {
namespace {

constexpr std::size_t kPage = 500;
constexpr std::string_view kNodes = "nodes";

std::int64_t CountOf(const std::vector<store::TableCount>& counts, std::string_view table) {
  for (const store::TableCount& count : counts) {
    if (count.table == table) return count.rows;
  }
  return 0;
}

std::string Rows(std::int64_t n) {
  std::string text = GroupThousands(n);
  text += n == 1 ? " row" : " rows";
  return text;
}

std::string ScopeName(const store::Scope& scope) {
  if (scope.is_global()) return "the global scope";
  std::string text = "organization ";
  text += scope.org_id();
  return text;
}

// One copy: the source's snapshot, the target's write transaction, and the counts of the
// snapshot for progress.
class Copier {
 public:
  Copier(store::Txn& from, store::Txn& to, const barrier::Barrier& barrier,
         const std::vector<store::TableCount>& counts, const ProgressFn& progress)
      : from_(from), to_(to), barrier_(barrier), counts_(counts), progress_(progress) {}

  Status Run() {
    BIFROST_RETURN_IF_ERROR(Organizations());
    BIFROST_RETURN_IF_ERROR(KeyChecks());
    BIFROST_RETURN_IF_ERROR(DataKeys());
    BIFROST_RETURN_IF_ERROR(Configs());
    BIFROST_RETURN_IF_ERROR(Tokens());
    BIFROST_RETURN_IF_ERROR(KeyJobs());
    BIFROST_RETURN_IF_ERROR(Executions());
    BIFROST_RETURN_IF_ERROR(Users());
    BIFROST_RETURN_IF_ERROR(Sessions());
    BIFROST_RETURN_IF_ERROR(AuditLog());
    return AuditCheckpoint();
  }

  std::int64_t secrets() const { return secrets_; }

 private:
  void Report(std::string_view table, std::int64_t done, bool finished) {
    if (progress_) {
      progress_({.table = std::string(table),
                 .done = done,
                 .total = CountOf(counts_, table),
                 .finished = finished});
    }
  }

  // Names the table and the row in a store error while copying.
  static Error InTable(std::string_view table, std::string_view row, const Error& error) {
    std::string message = "cannot copy ";
    message += table;
    if (!row.empty()) {
      message += " row ";
      message += row;
    }
    message += ": ";
    message += error.message();
    return Error(error.code(), std::move(message));
  }

  Status Organizations() {
    BIFROST_ASSIGN_OR_RETURN(orgs_, from_.ListOrgs());
    for (const store::OrgRow& org : orgs_) {
      if (auto done = to_.InsertOrg(org); !done) {
        return Fail(InTable("organizations", org.id, done.error()));
      }
    }
    Report("organizations", static_cast<std::int64_t>(orgs_.size()), true);
    return Ok();
  }

  Status KeyChecks() {
    BIFROST_ASSIGN_OR_RETURN(const auto checks, from_.ListKeyChecks());
    for (const store::KeyCheckRow& check : checks) {
      if (auto done = to_.InsertKeyCheck(check); !done) {
        return Fail(InTable("key_checks", check.key_id, done.error()));
      }
    }
    Report("key_checks", static_cast<std::int64_t>(checks.size()), true);
    return Ok();
  }

  Status DataKeys() {
    std::string after;
    std::int64_t copied = 0;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const auto page, from_.ListDataKeys(after, kPage));
      for (const store::DataKeyRow& key : page) {
        if (auto done = to_.InsertDataKey(key); !done) {
          return Fail(InTable("data_keys", key.id, done.error()));
        }
      }
      copied += static_cast<std::int64_t>(page.size());
      if (page.size() < kPage) break;
      after = page.back().id;
      Report("data_keys", copied, false);
    }
    Report("data_keys", copied, true);
    return Ok();
  }

  Status Configs() {
    std::vector<store::Scope> scopes = {store::Scope::Global()};
    for (const store::OrgRow& org : orgs_) scopes.push_back(store::Scope::Org(org.id));
    std::int64_t copied = 0;
    for (const store::Scope& scope : scopes) {
      BIFROST_ASSIGN_OR_RETURN(const auto rows, from_.ListConfigs(scope));
      for (const store::ConfigRow& row : rows) {
        if (row.type == "secret") {
          // Proof that the copy will be readable: the value opens with the keys at hand.
          // The plaintext is wiped at once.
          auto opened = barrier_.Open(from_, row.scope, row.key, row.value);
          if (!opened) {
            return Fail(ErrorCode::kFailedPrecondition,
                        "the secret " + QuoteForMessage(row.key) + " of " + ScopeName(row.scope) +
                            " does not open with the configured keys (" + opened.error().message() +
                            "); nothing was copied");
          }
          ++secrets_;
        }
        if (auto done = to_.RestoreConfig(row); !done) {
          std::string name(scope.name());
          name += "/";
          name += row.key;
          return Fail(InTable("configs", name, done.error()));
        }
      }
      copied += static_cast<std::int64_t>(rows.size());
      Report("configs", copied, false);
    }
    Report("configs", copied, true);
    return Ok();
  }

  Status Tokens() {
    BIFROST_ASSIGN_OR_RETURN(const auto tokens, from_.ListTokens(std::nullopt));
    for (const store::TokenRow& token : tokens) {
      if (auto done = to_.InsertToken(token); !done) {
        return Fail(InTable("tokens", token.id, done.error()));
      }
    }
    Report("tokens", static_cast<std::int64_t>(tokens.size()), true);
    return Ok();
  }

  Status KeyJobs() {
    BIFROST_ASSIGN_OR_RETURN(const auto jobs, from_.ListKeyJobs());
    for (const store::KeyJobRow& job : jobs) {
      if (auto done = to_.RestoreKeyJob(job); !done) {
        return Fail(InTable("key_jobs", std::to_string(job.id), done.error()));
      }
    }
    Report("key_jobs", static_cast<std::int64_t>(jobs.size()), true);
    return Ok();
  }

  Status Executions() {
    store::ExecutionFilter filter;
    filter.limit = kPage;
    std::int64_t copied = 0;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const auto page, from_.ListExecutions(filter));
      for (const store::ExecutionRow& row : page) {
        if (auto done = to_.InsertExecution(row); !done) {
          return Fail(InTable("executions", row.id, done.error()));
        }
      }
      copied += static_cast<std::int64_t>(page.size());
      if (page.size() < kPage) break;
      filter.before_id = page.back().id;
      Report("executions", copied, false);
    }
    Report("executions", copied, true);
    return Ok();
  }

  Status Users() {
    BIFROST_ASSIGN_OR_RETURN(const auto users, from_.ListUsers(std::nullopt));
    for (const store::UserRow& user : users) {
      if (auto done = to_.InsertUser(user); !done) {
        return Fail(InTable("users", user.id, done.error()));
      }
    }
    Report("users", static_cast<std::int64_t>(users.size()), true);
    return Ok();
  }

  Status Sessions() {
    BIFROST_ASSIGN_OR_RETURN(const auto sessions, from_.ListSessions());
    for (const store::SessionRow& session : sessions) {
      if (auto done = to_.InsertSession(session); !done) {
        return Fail(InTable("sessions", session.id, done.error()));
      }
    }
    Report("sessions", static_cast<std::int64_t>(sessions.size()), true);
    return Ok();
  }

  Status AuditLog() {
    std::int64_t from_seq = std::numeric_limits<std::int64_t>::min();
    std::int64_t copied = 0;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const auto page, from_.ScanAudit(from_seq, kPage));
      for (const store::AuditRow& row : page) {
        if (auto done = to_.InsertAudit(row); !done) {
          return Fail(InTable("audit_log", std::to_string(row.seq), done.error()));
        }
      }
      copied += static_cast<std::int64_t>(page.size());
      if (page.size() < kPage || page.back().seq == std::numeric_limits<std::int64_t>::max()) {
        break;
      }
      from_seq = page.back().seq + 1;
      Report("audit_log", copied, false);
    }
    Report("audit_log", copied, true);
    return Ok();
  }

  Status AuditCheckpoint() {
    BIFROST_ASSIGN_OR_RETURN(const auto checkpoint, from_.GetAuditCheckpoint());
    if (checkpoint.has_value()) {
      // Storing the checkpoint is what pruning does; every record it would delete was
      // already pruned in the source.
      auto pruned = to_.PruneAudit(*checkpoint);
      if (!pruned) return Fail(InTable("audit_checkpoint", "", pruned.error()));
      if (*pruned != 0) {
        return Fail(ErrorCode::kInternal,
                    "the source's audit log holds records before its own checkpoint");
      }
    }
    Report("audit_checkpoint", checkpoint.has_value() ? 1 : 0, true);
    return Ok();
  }

  store::Txn& from_;
  store::Txn& to_;
  const barrier::Barrier& barrier_;
  const std::vector<store::TableCount>& counts_;
  const ProgressFn& progress_;
  std::vector<store::OrgRow> orgs_;
  std::int64_t secrets_ = 0;
};

}  // namespace

Result<CopyReport> CopyInstallation(store::Store& source, const barrier::Barrier& source_barrier,
                                    store::Store& target, const ProgressFn& progress) {
  BIFROST_ASSIGN_OR_RETURN(auto from, source.Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(auto to, target.Begin(store::TxnMode::kWrite));
  // Checked inside the write transaction that copies, so nothing can slip in between.
  BIFROST_ASSIGN_OR_RETURN(const auto target_counts, to->CountRows());
  std::string occupied;
  for (const store::TableCount& count : target_counts) {
    if (count.rows == 0) continue;
    if (!occupied.empty()) occupied += ", ";
    occupied += count.table;
    occupied += " has ";
    occupied += Rows(count.rows);
  }
  if (!occupied.empty()) {
    std::string message = "the target database is not empty (";
    message += occupied;
    message += "); migrate copies only into an empty database: create a new one";
    if (CountOf(target_counts, kNodes) > 0) {
      message += " (a nodes row means a server is running on it)";
    }
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  }

  CopyReport report;
  BIFROST_ASSIGN_OR_RETURN(report.source, from->CountRows());
  Copier copier(*from, *to, source_barrier, report.source, progress);
  BIFROST_RETURN_IF_ERROR(copier.Run());
  BIFROST_RETURN_IF_ERROR(to->Commit());
  report.secrets = copier.secrets();
  return report;
}

Result<CheckReport> CheckCopy(const CopyReport& copied, store::Store& target,
                              const barrier::Barrier& target_barrier) {
  CheckReport report;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, target.Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(report.target, txn->CountRows());
  }
  for (const store::TableCount& count : copied.source) {
    if (count.table == kNodes) continue;
    const std::int64_t there = CountOf(report.target, count.table);
    if (there != count.rows) {
      std::string line = count.table;
      line += ": ";
      line += GroupThousands(count.rows);
      line += " in the source, ";
      line += GroupThousands(there);
      line += " in the target";
      report.mismatches.push_back(std::move(line));
    }
  }

  std::vector<crypto::MacKey> audit_keys;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, target.Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(const auto orgs, txn->ListOrgs());
    std::vector<store::Scope> scopes = {store::Scope::Global()};
    for (const store::OrgRow& org : orgs) scopes.push_back(store::Scope::Org(org.id));
    for (const store::Scope& scope : scopes) {
      BIFROST_ASSIGN_OR_RETURN(const auto rows, txn->ListConfigs(scope));
      for (const store::ConfigRow& row : rows) {
        if (row.type != "secret") continue;
        auto opened = target_barrier.Open(*txn, row.scope, row.key, row.value);
        if (!opened) {
          return Fail(ErrorCode::kFailedPrecondition,
                      "the copy of the secret " + QuoteForMessage(row.key) + " of " +
                          ScopeName(row.scope) + " does not open in the target (" +
                          opened.error().message() + ")");
        }
        ++report.secrets_opened;
      }
    }
    BIFROST_ASSIGN_OR_RETURN(audit_keys, target_barrier.AuditKeys(*txn));
  }
  if (report.secrets_opened != copied.secrets) {
    std::string line = "secrets: ";
    line += GroupThousands(copied.secrets);
    line += " copied, ";
    line += GroupThousands(report.secrets_opened);
    line += " opened in the target";
    report.mismatches.push_back(std::move(line));
  }
  BIFROST_ASSIGN_OR_RETURN(report.audit, audit::Verify(target, audit_keys, {}));
  return report;
}

}  // namespace migrate

namespace {

using nlohmann::json;

// Same as `bifrost audit verify` (docs/cli.md).
constexpr int kExitAuditNotIntact = 4;

constexpr const char* kFooter =
    R"(Copies an installation that keeps its database in a data directory (SQLite) into an
EMPTY PostgreSQL database, so that several `bifrost serve --database URL` nodes can share
it. Everything is copied as stored: organizations, config entries with their versions and
times (secrets stay encrypted), key checks, data keys, key rotation jobs, tokens, users and
their sessions, workflow executions and the audit log with its checkpoint. Tokens, sessions
and secrets work on the new database exactly as before; the same BIFROST_SECRET_KEY opens it.

Before you start:
  - stop every server on the data directory: migrate copies one consistent snapshot, and
    what a server writes after it is not copied;
  - create an empty database (migrate creates the schema and refuses a database that
    holds any row);
  - give the installation's keys as for `serve`: BIFROST_SECRET_KEY (or
    BIFROST_SECRET_KEY_FILE), and BIFROST_SECRET_KEY_PREVIOUS while a rotation is pending.

The source is only read, never changed. Before writing anything migrate checks the keys
against the source, walks the source's audit chain and opens every secret; the copy is one
transaction, so an interrupted migrate leaves the target empty. After the commit it checks
the target from fresh transactions: the same number of rows in every table, every secret
opens, the audit chain verifies (as `bifrost audit verify` does). Progress goes to stderr,
the summary to stdout (--format json: source, target, tables [{table, source, target}],
secrets_opened, audit {intact, records, first_seq, last_seq, checkpoint}, migrated).

The URL is best given in BIFROST_DATABASE_URL or with a password file (PGPASSFILE,
passfile=...): on the command line `ps` shows it (its password is masked as early as
possible). Messages show it without its password.

Exit codes: 0 migrated and verified, 1 error (for an error before the commit nothing was
written), 2 usage, 4 an audit chain does not verify.
Examples:
  export BIFROST_SECRET_KEY_FILE=/etc/bifrost/secret-key
  BIFROST_DATABASE_URL='postgresql://bifrost@db.internal/bifrost' \
      bifrost migrate --from-data /var/lib/bifrost
  bifrost migrate --from-data /var/lib/bifrost --to 'postgresql://bifrost@db/bifrost' \
      --format json)";

struct MigrateFlags {
  std::string from_data;
  std::string to;
  Format format = Format::kTable;
};

// Progress lines on stderr: one when a table is copied, and at most one a second while a
// long one is.
class ProgressLines {
 public:
  explicit ProgressLines(std::ostream& err) : err_(err) {}

  void operator()(const migrate::TableProgress& progress) {
    const auto now = std::chrono::steady_clock::now();
    if (!progress.finished && now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    err_ << "bifrost migrate: " << progress.table << ": " << GroupThousands(progress.done);
    if (progress.finished) {
      err_ << (progress.done == 1 ? " row copied\n" : " rows copied\n");
    } else {
      err_ << " of " << GroupThousands(progress.total) << " rows\n";
    }
    err_.flush();
  }

 private:
  std::ostream& err_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

std::string AuditText(const audit::VerifyReport& report) {
  std::string text = report.ok ? "intact, " : "NOT intact, ";
  text += GroupThousands(report.records);
  text += report.records == 1 ? " record" : " records";
  if (report.records > 0) {
    text += " (seq ";
    text += std::to_string(report.first_seq);
    text += "..";
    text += std::to_string(report.last_seq);
    text += ")";
  }
  if (report.checkpoint) text += ", begins at a signed checkpoint";
  if (!report.ok) {
    text += ": ";
    text += report.problem;
  }
  return text;
}

void PrintSummary(CliIo& io, const MigrateFlags& flags, const std::string& target_name,
                  const migrate::CopyReport& copied, const migrate::CheckReport& check,
                  bool migrated) {
  if (flags.format == Format::kJson) {
    json tables = json::array();
    for (const store::TableCount& count : copied.source) {
      if (count.table == "nodes") continue;
      std::int64_t there = 0;
      for (const store::TableCount& other : check.target) {
        if (other.table == count.table) there = other.rows;
      }
      tables.push_back({{"table", count.table}, {"source", count.rows}, {"target", there}});
    }
    const json out = {{"source", {{"data_dir", flags.from_data}}},
                      {"target", {{"database", target_name}}},
                      {"tables", std::move(tables)},
                      {"mismatches", check.mismatches},
                      {"secrets_opened", check.secrets_opened},
                      {"audit",
                       {{"intact", check.audit.ok},
                        {"records", check.audit.records},
                        {"first_seq", check.audit.first_seq},
                        {"last_seq", check.audit.last_seq},
                        {"checkpoint", check.audit.checkpoint}}},
                      {"migrated", migrated}};
    *io.out << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return;
  }
  Session session(io);
  std::vector<TableRow> rows;
  for (const store::TableCount& count : copied.source) {
    if (count.table == "nodes") continue;
    std::int64_t there = 0;
    for (const store::TableCount& other : check.target) {
      if (other.table == count.table) there = other.rows;
    }
    rows.push_back({count.table, GroupThousands(count.rows), GroupThousands(there)});
  }
  std::string text = RenderTable({"TABLE", "SOURCE", "TARGET"}, rows, session.UseAnsi());
  text += "\n";
  text += RenderFields({{"Source", "data directory " + PrintableCell(flags.from_data)},
                        {"Target", "database " + target_name},
                        {"Secrets", GroupThousands(check.secrets_opened) + " opened in the target"},
                        {"Audit log", AuditText(check.audit)}},
                       session.UseAnsi());
  text += migrated ? "migrated: start the servers with --database URL (the same keys)\n"
                   : "the copy does NOT verify\n";
  *io.out << text;
}

CliStatus RunMigrate(const MigrateFlags& flags, CliIo& io) {
  // The URL may carry a password and the keys open everything: both leave the environment
  // before anything else happens, whatever fails next.
  ForgetDatabaseUrlVariable();
  auto environment = keys::TakeKeysFromEnvironment();
  if (flags.from_data.empty()) {
    return UsageError(
        "migrate needs --from-data DIR: the data directory of the installation to copy");
  }
  if (flags.to.empty()) {
    return UsageError(
        "migrate needs the PostgreSQL database to copy into: give --to URL or set "
        "BIFROST_DATABASE_URL");
  }
  if (!store::IsDatabaseUrl(flags.to)) {
    return UsageError(
        "--to must be a PostgreSQL URL (postgresql://... or postgres://...); migrate copies "
        "a data directory into a PostgreSQL database");
  }
  const store::StoreLocation source_location{.data_dir = flags.from_data};
  const store::StoreLocation target_location{.database_url = flags.to};
  const std::string target_name = store::RedactDatabaseUrl(flags.to);
  if (auto checked = store::CheckLocation(source_location, store::Expect::kInitialized, "migrate");
      !checked) {
    return CommandError(checked.error().message());
  }
  if (!environment) return CommandError(environment.error().message());
  if (!environment->current) return CommandError(std::string(keys::MissingKeyMessage()));
  // One keyring per barrier (source and target), from the same keys.
  auto source_ring = keys::BuildKeyring(*environment->current, environment->previous);
  auto target_ring = keys::BuildKeyring(*environment->current, environment->previous);
  environment->current.reset();  // wiped
  environment->previous.clear();
  if (!source_ring) return CommandError(source_ring.error().message());
  if (!target_ring) return CommandError(target_ring.error().message());

  const Clock& clock = SystemClock::Instance();
  auto source = store::OpenStore(
      source_location,
      {.expect = store::Expect::kInitialized, .clock = &clock, .command = "migrate"});
  if (!source) return CommandError(source.error().message());
  // Keys that do not fit are refused here, before the target is even opened.
  auto source_barrier =
      barrier::Barrier::Open(std::move(*source_ring), **source, clock, {.read_only = true});
  if (!source_barrier) {
    return CommandError("the keys do not fit the installation in " + flags.from_data + ": " +
                        source_barrier.error().message());
  }
  {
    std::vector<crypto::MacKey> audit_keys;
    {
      auto txn = (*source)->Begin(store::TxnMode::kRead);
      if (!txn) return CommandError(txn.error().message());
      auto found = source_barrier->AuditKeys(**txn);
      if (!found) return CommandError(found.error().message());
      audit_keys = std::move(*found);
    }
    auto walked = audit::Verify(**source, audit_keys, {});
    if (!walked) {
      return CommandError("cannot check the source's audit log: " + walked.error().message());
    }
    if (!walked->ok) {
      return std::unexpected(
          CliError{kExitAuditNotIntact,
                   "the audit log in " + flags.from_data + " is not intact (" + walked->problem +
                       "); migrate copies only an intact log (`bifrost audit verify --data " +
                       flags.from_data + "` shows the same); nothing was written"});
    }
  }

  auto target = store::OpenStore(
      target_location, {.expect = store::Expect::kAny, .clock = &clock, .command = "migrate"});
  if (!target) return CommandError(target.error().message());

  *io.err << "bifrost migrate: copying " << store::DescribeLocation(source_location) << " into "
          << store::DescribeLocation(target_location) << "\n";
  ProgressLines lines(*io.err);
  auto copied = migrate::CopyInstallation(
      **source, *source_barrier, **target,
      [&lines](const migrate::TableProgress& progress) { lines(progress); });
  if (!copied) {
    return CommandError("nothing was copied into " + target_name + ": " + copied.error().message());
  }
  if (const std::int64_t nodes =
          [&] {
            for (const auto& count : copied->source) {
              if (count.table == "nodes") return count.rows;
            }
            return std::int64_t{0};
          }();
      nodes > 0) {
    *io.err << "bifrost: warning: the source lists " << nodes
            << (nodes == 1 ? " server node" : " server nodes") << ": if a server still runs on "
            << flags.from_data
            << ", what it wrote after the snapshot was not copied (a server that crashed "
               "leaves such a row too)\n";
  }

  // From here the target holds the copy: a failure says so.
  const std::string committed = "; the copy is committed in " + target_name +
                                ": drop that database (or use a new one) "
                                "before running migrate again";
  auto target_barrier =
      barrier::Barrier::Open(std::move(*target_ring), **target, clock, {.read_only = true});
  if (!target_barrier) {
    return CommandError(
        "the copy does not open with the keys: " + target_barrier.error().message() + committed);
  }
  auto check = migrate::CheckCopy(*copied, **target, *target_barrier);
  if (!check)
    return CommandError("the copy does not verify: " + check.error().message() + committed);
  const bool verified = check->mismatches.empty() && check->audit.ok;
  PrintSummary(io, flags, target_name, *copied, *check, verified);
  io.out->flush();
  if (!check->mismatches.empty()) {
    std::string message = "the copy does not verify (";
    for (std::size_t i = 0; i < check->mismatches.size(); ++i) {
      if (i > 0) message += "; ";
      message += check->mismatches[i];
    }
    message += ")";
    return CommandError(message + committed);
  }
  if (!check->audit.ok) {
    return std::unexpected(
        CliError{kExitAuditNotIntact,
                 "the audit log of the copy is not intact: " + check->audit.problem + committed});
  }
  return {};
}

}  // namespace

void AddMigrateCommand(CLI::App& app, std::function<CliStatus()>& action, CliIo& io) {
  auto flags = std::make_shared<MigrateFlags>();
  auto* command = app.add_subcommand(
      "migrate", "Copy a data directory's installation into an empty PostgreSQL database (local)");
  command
      ->add_option("--from-data", flags->from_data,
                   "Data directory of the installation to copy (left unchanged)")
      ->option_text("DIR");
  command
      ->add_option("--to", flags->to,
                   "The empty PostgreSQL database to copy into (prefer the variable: a URL on "
                   "the command line is seen by `ps`)")
      ->envname(store::kDatabaseUrlEnv)
      ->option_text("URL (postgresql://...; env BIFROST_DATABASE_URL)");
  command->add_option("--format", flags->format, "Output format")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, Format>{{"table", Format::kTable}, {"json", Format::kJson}}))
      ->option_text("table|json (default table)");
  command->footer(kFooter);
  command->callback([flags, &action, &io] {
    action = [flags, &io]() -> CliStatus { return RunMigrate(*flags, io); };
  });
}

}  // namespace bifrost::cli
