#include "keys/keys.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace bifrost::keys {
namespace {

constexpr std::string_view kKindMaster = "master";
constexpr std::string_view kKindData = "data";
constexpr std::string_view kEveryScope = "*";
constexpr std::string_view kStateActive = "active";
constexpr std::string_view kStateRetired = "retired";
constexpr std::string_view kPurposeConfig = "config";
constexpr std::string_view kRewrapPhase = "re-wrapping data keys";
constexpr std::string_view kResealPhase = "re-encrypting values";

// Rows per page when reading every data key.
constexpr std::size_t kPage = 1000;
// A master rotation collects what is left and re-wraps it at most this many times. More
// than one pass only happens when data keys appear under another master key while it runs:
// a server still running with the old key as its current one.
constexpr int kMasterPasses = 3;
// A data rotation gives up after this many batches in a row in which every row had changed
// since it was read. Servers seal only under the active key, so a changed row leaves the
// list; a row that keeps coming back under a retired key means a writer that does not know
// about data keys (an older binary) is running, and waiting would never end.
constexpr int kMaxFruitlessBatches = 20;
// The final check of a scope finds values under a retired key only when such a writer got
// in between; it goes back to re-encrypting at most this many times.
constexpr int kMaxFinishAttempts = 5;

std::size_t BatchSize(const RotateOptions& options) {
  return options.batch_size == 0 ? 1 : options.batch_size;
}

void Report(const RotateOptions& options, std::string_view phase, const std::string& scope,
            std::int64_t done, std::int64_t total) {
  if (!options.progress) return;
  options.progress(
      Progress{.phase = std::string(phase), .scope = scope, .done = done, .total = total});
}

Result<std::vector<store::DataKeyRow>> AllDataKeys(store::Txn& txn) {
  std::vector<store::DataKeyRow> all;
  std::string after;
  while (true) {
    BIFROST_ASSIGN_OR_RETURN(auto page, txn.ListDataKeys(after, kPage));
    const bool last = page.size() < kPage;
    if (!page.empty()) after = page.back().id;
    for (auto& row : page) all.push_back(std::move(row));
    if (last) return all;
  }
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += ", ";
    out += id;
  }
  return out;
}

std::string Count(std::int64_t n, std::string_view one, std::string_view many) {
  std::string out = std::to_string(n);
  out += ' ';
  out += n == 1 ? one : many;
  return out;
}

audit::Event MakeEvent(std::string_view action, const RotateOptions& options,
                       const store::Scope* scope, std::string detail) {
  audit::Event event;
  event.action = std::string(action);
  event.outcome = audit::Outcome::kSuccess;
  if (scope != nullptr && !scope->is_global()) event.org_id = scope->org_id();
  event.actor_name = options.actor;
  event.detail = std::move(detail);
  return event;
}

// Records that an operation stopped, best effort: the error itself is what the caller
// reports, and an audit log that cannot record is most likely the reason it stopped.
void RecordStop(audit::AuditLog& audit, std::string_view action, const RotateOptions& options,
                const store::Scope* scope, const Error& error, std::string progress) {
  std::string detail = "stopped (";
  detail += ErrorCodeName(error.code());
  detail += ") after ";
  detail += progress;
  detail += "; run `bifrost keys rotate` again to finish";
  audit::Event event = MakeEvent(action, options, scope, std::move(detail));
  event.outcome = audit::Outcome::kError;
  (void)audit.Record(std::move(event));
}

std::string ProgressLabel(const store::Scope& scope, const std::string& label) {
  if (scope.is_global()) return "global";
  return "organization " + label;
}

// "started by <actor> at <time>" (the actor left out when unknown).
std::string DescribeJob(const store::KeyJobRow& job) {
  std::string out = "started";
  if (!job.actor.empty()) {
    out += " by ";
    out += job.actor;
  }
  out += " at ";
  out += FormatRfc3339(job.started_at);
  return out;
}

// True when `target`, a data job's target, names an organization that no longer exists.
Result<bool> DataTargetGone(store::Txn& txn, const std::string& target) {
  if (target == kEveryScope || target == "global") return false;
  BIFROST_ASSIGN_OR_RETURN(auto org, txn.GetOrgById(target));
  return !org.has_value();
}

// The job of a run: the unfinished one of its kind and target, resumed, or a new one; and
// the other unfinished jobs it closed on the way.
struct Job {
  store::KeyJobRow row;
  bool resumed = false;
  std::vector<ClosedJob> closed;
};

// In `txn`: closes the unfinished jobs nothing will ever resume (data jobs of deleted
// organizations; for a master rotation, master jobs towards another master key; with
// options.restart, the job of this kind and target), then resumes or starts the job of
// `kind` and `target`.
Result<Job> StartJob(store::Txn& txn, std::string_view kind, std::string_view target,
                     const RotateOptions& options, const Clock& clock) {
  const UnixMicros now = clock.NowMicros();
  Job job;
  BIFROST_ASSIGN_OR_RETURN(auto unfinished, txn.ListUnfinishedKeyJobs());
  for (auto& row : unfinished) {
    std::optional<JobCloseReason> reason;
    if (row.kind == kKindData) {
      BIFROST_ASSIGN_OR_RETURN(const bool gone, DataTargetGone(txn, row.target));
      if (gone) reason = JobCloseReason::kOrganizationDeleted;
    } else if (row.kind == kKindMaster && kind == kKindMaster && row.target != target) {
      reason = JobCloseReason::kSuperseded;
    }
    if (!reason && options.restart && row.kind == kind && row.target == target) {
      reason = JobCloseReason::kRestart;
    }
    if (!reason) continue;
    BIFROST_RETURN_IF_ERROR(txn.FinishKeyJob(row.id, now));
    job.closed.push_back(ClosedJob{.job = std::move(row), .reason = *reason});
  }
  BIFROST_ASSIGN_OR_RETURN(auto existing, txn.GetUnfinishedKeyJob(kind, target));
  if (existing) {
    job.row = std::move(*existing);
    job.resumed = true;
    return job;
  }
  job.row = store::KeyJobRow{.id = 0,
                             .kind = std::string(kind),
                             .target = std::string(target),
                             .actor = options.actor,
                             .started_at = now,
                             .finished_at = std::nullopt};
  BIFROST_ASSIGN_OR_RETURN(job.row.id, txn.InsertKeyJob(job.row));
  return job;
}

// What the start record adds about the job: the run it resumes, the jobs it closed.
std::string DescribeJobStart(const Job& job) {
  std::string out;
  if (job.resumed) {
    out += "; resuming the run ";
    out += DescribeJob(job.row);
  }
  for (const auto& closed : job.closed) {
    out += "; closed the unfinished run ";
    switch (closed.reason) {
      case JobCloseReason::kRestart:
        out += DescribeJob(closed.job);
        out += " (--restart)";
        break;
      case JobCloseReason::kSuperseded:
        if (!closed.job.target.empty()) {
          out += "to master key ";
          out += closed.job.target;
          out += ' ';
        }
        out += DescribeJob(closed.job);
        out += " (superseded)";
        break;
      case JobCloseReason::kOrganizationDeleted:
        out += "of deleted organization ";
        out += closed.job.target;
        out += ' ';
        out += DescribeJob(closed.job);
        break;
    }
  }
  return out;
}

// Closes the job of a run that stopped on an error, best effort: the error is what the
// caller reports. Only a killed run leaves its job open, so no later run skips work on the
// word of a run that failed.
void CloseJobAfterError(store::Store& store, std::int64_t job_id, const Clock& clock) {
  auto txn = store.Begin(store::TxnMode::kWrite);
  if (!txn) return;
  if (!(*txn)->FinishKeyJob(job_id, clock.NowMicros())) return;
  (void)(*txn)->Commit();
}

// ---- master rotation ----

// The data keys not wrapped by `primary`, from one snapshot, and how many there are in all.
struct MasterWork {
  std::vector<store::DataKeyRow> rows;
  std::int64_t total = 0;
};
Result<MasterWork> CollectMasterWork(store::Store& store, const std::string& primary) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(auto all, AllDataKeys(*txn));
  MasterWork work;
  work.total = static_cast<std::int64_t>(all.size());
  for (auto& row : all) {
    if (row.master_key_id != primary) work.rows.push_back(std::move(row));
  }
  return work;
}

Result<MasterRotationReport> RotateMasterKeyImpl(store::Store& store,
                                                 const barrier::Barrier& barrier,
                                                 audit::AuditLog& audit, const Clock& clock,
                                                 const RotateOptions& options,
                                                 MasterRotationReport& report,
                                                 std::int64_t& job_id) {
  const std::string& primary = barrier.keyring().primary().id();
  const std::size_t batch = BatchSize(options);
  BIFROST_ASSIGN_OR_RETURN(MasterWork work, CollectMasterWork(store, primary));
  report.total = work.total;

  {
    // The job's target is the key this run re-wraps under: only a run towards the same key
    // is a resume of it.
    BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(Job job, StartJob(*txn, kKindMaster, primary, options, clock));
    std::string detail = "to master key " + primary + "; ";
    detail += Count(work.total, "data key", "data keys");
    detail += ", ";
    detail += std::to_string(work.rows.size());
    detail += " wrapped by other keys";
    detail += DescribeJobStart(job);
    BIFROST_RETURN_IF_ERROR(audit.InTxn(MakeEvent(audit::actions::kKeysRotateMasterStart, options,
                                                  nullptr, std::move(detail)))(*txn));
    BIFROST_RETURN_IF_ERROR(txn->Commit());
    job_id = job.row.id;
    if (job.resumed) report.resumed_job = std::move(job.row);
    report.closed_jobs = std::move(job.closed);
  }

  std::int64_t batch_number = 0;
  for (int pass = 1;; ++pass) {
    const auto todo = static_cast<std::int64_t>(work.rows.size());
    std::int64_t done = 0;
    Report(options, kRewrapPhase, "", 0, todo);
    for (std::size_t begin = 0; begin < work.rows.size(); begin += batch) {
      const std::size_t end = std::min(work.rows.size(), begin + batch);
      // Unwrapping and wrapping happen before the write transaction, so the writer slot is
      // held only for the updates.
      std::vector<store::DataKeyRow> rewrapped;
      rewrapped.reserve(end - begin);
      for (std::size_t i = begin; i < end; ++i) {
        BIFROST_ASSIGN_OR_RETURN(auto row, barrier.Rewrap(work.rows[i]));
        rewrapped.push_back(std::move(row));
      }
      BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
      for (std::size_t i = begin; i < end; ++i) {
        const auto& row = rewrapped[i - begin];
        const Status status =
            txn->RewrapDataKey(row.id, row.wrapped, primary, work.rows[i].master_key_id);
        if (status) {
          ++report.rewrapped;
        } else if (status.error().code() != ErrorCode::kConflict &&
                   status.error().code() != ErrorCode::kNotFound) {
          // kConflict: another run re-wrapped it first; kNotFound: it was destroyed (its
          // organization deleted, or a data rotation finished). Either way nothing is left
          // to do for it.
          return Fail(status.error());
        }
      }
      BIFROST_RETURN_IF_ERROR(txn->Commit());
      ++batch_number;
      std::string point = "master-batch:";
      point += std::to_string(batch_number);
      CrashPoint(point);
      done += static_cast<std::int64_t>(end - begin);
      Report(options, kRewrapPhase, "", done, todo);
    }

    // Finish in one transaction, and only when nothing is left under another key: the job
    // and its record then say exactly what holds.
    BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(auto all, AllDataKeys(*txn));
    std::int64_t remaining = 0;
    for (const auto& row : all) remaining += row.master_key_id != primary ? 1 : 0;
    if (remaining > 0) {
      txn.reset();  // rolled back
      if (pass >= kMasterPasses) {
        std::string message = Count(remaining, "data key is", "data keys are");
        message +=
            " still wrapped by another master key: new ones keep appearing, so a server "
            "is probably still running with the old BIFROST_SECRET_KEY as its current key; "
            "restart every server with the new key (the old one in "
            "BIFROST_SECRET_KEY_PREVIOUS) and run `bifrost keys rotate` again";
        return Fail(ErrorCode::kFailedPrecondition, std::move(message));
      }
      BIFROST_ASSIGN_OR_RETURN(work, CollectMasterWork(store, primary));
      continue;
    }
    report.total = static_cast<std::int64_t>(all.size());
    BIFROST_RETURN_IF_ERROR(txn->FinishKeyJob(job_id, clock.NowMicros()));
    std::string detail = "re-wrapped ";
    detail += Count(report.rewrapped, "data key", "data keys");
    detail += " under master key " + primary + "; 0 remain under other keys";
    BIFROST_RETURN_IF_ERROR(audit.InTxn(
        MakeEvent(audit::actions::kKeysRotateMaster, options, nullptr, std::move(detail)))(*txn));
    BIFROST_RETURN_IF_ERROR(txn->Commit());
    return report;
  }
}

// ---- data rotation ----

struct Target {
  store::Scope scope = store::Scope::Global();
  std::string label;  // "global" or the organization's name
};

// Sealed counts of one snapshot, by scope name and key id.
using CountMap = std::map<std::pair<std::string, std::string>, std::int64_t, std::less<>>;

std::int64_t CountNotSealedBy(const CountMap& counts, const store::Scope& scope,
                              const std::string& key_id) {
  std::int64_t n = 0;
  const std::string name(scope.name());
  for (auto it = counts.lower_bound(std::make_pair(name, std::string()));
       it != counts.end() && it->first.first == name; ++it) {
    if (it->first.second != key_id) n += it->second;
  }
  return n;
}

// True when `scope` is an organization that no longer exists (deleted while this ran): its
// values and keys are gone with it, so there is nothing left to rotate.
Result<bool> OrgGone(store::Txn& txn, const store::Scope& scope) {
  if (scope.is_global()) return false;
  BIFROST_ASSIGN_OR_RETURN(auto org, txn.GetOrgById(scope.org_id()));
  return !org.has_value();
}

Status ActiveKeyChanged(const Target& target, const std::string& expected) {
  std::string message = "the active data key of ";
  message += ProgressLabel(target.scope, target.label);
  message += " is no longer " + expected;
  message +=
      " (did another `bifrost keys rotate` run at the same time?); run the rotation again "
      "once the other one is done";
  return Fail(ErrorCode::kConflict, std::move(message));
}

// A value re-sealed in memory, waiting for its write transaction.
struct Resealed {
  std::string key;
  std::string old_value;
  barrier::Barrier::Sealed sealed;
};

// What became of one scope: rotated, or left alone and why.
using ScopeOutcome = std::variant<ScopeRotation, SkipReason>;

// Rotates one scope for the run whose job is `job` (`job_resumed`: an unfinished job this
// run continues). `resealed` counts values re-encrypted so far, also when it fails.
Result<ScopeOutcome> RotateScope(store::Store& store, const barrier::Barrier& barrier,
                                 audit::AuditLog& audit, const RotateOptions& options,
                                 const Target& target, const CountMap& counts,
                                 const store::KeyJobRow& job, bool job_resumed,
                                 std::int64_t& resealed) {
  const store::Scope& scope = target.scope;
  const std::string progress_label = ProgressLabel(scope, target.label);
  const std::size_t batch = BatchSize(options);
  ScopeRotation rotation;
  rotation.scope = scope;
  rotation.label = target.label;

  // (1) A new active key, unless this run's job already made one (it left retired keys).
  std::optional<barrier::DataKey> active;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(const bool gone, OrgGone(*txn, scope));
    if (gone) return ScopeOutcome{SkipReason::kOrganizationDeleted};
    BIFROST_ASSIGN_OR_RETURN(const auto keys, txn->ListScopeDataKeys(scope));
    const bool has_retired = std::any_of(
        keys.begin(), keys.end(), [](const auto& key) { return key.state == kStateRetired; });
    const store::DataKeyRow* current =
        !keys.empty() && keys.front().state == kStateActive ? &keys.front() : nullptr;
    // An active key made since this run's job started is as new as this run would make.
    const bool current_is_new = current != nullptr && current->created_at >= job.started_at;
    bool created = false;
    if (has_retired && (current == nullptr || current_is_new)) {
      // The interrupted rotation of this job: continue it. (Made in this transaction only if
      // a damaged state left retired keys without an active one.)
      rotation.resumed = true;
      BIFROST_ASSIGN_OR_RETURN(active, barrier.ActiveKey(*txn, scope));
    } else if (!has_retired && job_resumed && current_is_new &&
               CountNotSealedBy(counts, scope, current->id) == 0) {
      // Rotated by the run being resumed. (A key made after that run started for a scope
      // that still has values under other keys, such as values sealed directly by a master
      // key, is no proof of a finished rotation: such a scope is rotated.)
      return ScopeOutcome{SkipReason::kRotatedByResumedRun};
    } else {
      // A new key. An interrupted rotation that an earlier run began (its active key is
      // older than this run's job) is not continued: that key is retired too, so the scope
      // ends under a key made by this run.
      if (current != nullptr) {
        BIFROST_RETURN_IF_ERROR(txn->SetDataKeyState(current->id, kStateRetired));
      }
      BIFROST_ASSIGN_OR_RETURN(active, barrier.CreateDataKey(*txn, scope, kStateActive));
      created = true;
    }
    BIFROST_RETURN_IF_ERROR(txn->Commit());
    if (created) CrashPoint("data-created");
  }
  rotation.new_key = active->id;

  // (2) Re-seal every value not sealed by the active key; (3) destroy the retired keys once
  // none is left. A writer that got a value in under a retired key between the two sends
  // it back to (2).
  const std::int64_t total = CountNotSealedBy(counts, scope, active->id);
  std::int64_t done = 0;
  std::int64_t batch_number = 0;
  int fruitless = 0;
  Report(options, kResealPhase, progress_label, 0, total);
  for (int attempt = 1;; ++attempt) {
    while (true) {
      std::vector<Resealed> pending;
      {
        BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kRead));
        BIFROST_ASSIGN_OR_RETURN(const bool gone, OrgGone(*txn, scope));
        if (gone) return ScopeOutcome{SkipReason::kOrganizationDeleted};
        BIFROST_ASSIGN_OR_RETURN(const auto keys, txn->ListScopeDataKeys(scope));
        if (keys.empty() || keys.front().id != active->id) {
          return Fail(ActiveKeyChanged(target, active->id).error());
        }
        BIFROST_ASSIGN_OR_RETURN(const auto rows,
                                 txn->ListScopeConfigsNotSealedBy(scope, active->id, batch));
        if (rows.empty()) break;
        pending.reserve(rows.size());
        for (const auto& row : rows) {
          // A value that cannot be opened stops the rotation with its error: skipping it
          // would destroy the only key that might still open it.
          BIFROST_ASSIGN_OR_RETURN(const crypto::SecureBuffer plaintext,
                                   barrier.Open(*txn, scope, row.key, row.value));
          BIFROST_ASSIGN_OR_RETURN(auto sealed,
                                   barrier.SealWith(*active, scope, row.key, plaintext.view()));
          pending.push_back(Resealed{row.key, row.value, std::move(sealed)});
        }
      }
      std::int64_t written = 0;
      {
        BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
        for (const auto& item : pending) {
          const Status status = txn->ResealConfig(scope, item.key, item.old_value,
                                                  item.sealed.envelope, item.sealed.key_id);
          if (status) {
            ++written;
          } else if (status.error().code() != ErrorCode::kConflict) {
            // kConflict: the row was changed or deleted since it was read; a changed row is
            // listed again while it is still under an old key.
            return Fail(status.error());
          }
        }
        BIFROST_RETURN_IF_ERROR(txn->Commit());
      }
      ++batch_number;
      std::string point = "data-batch:";
      point += std::to_string(batch_number);
      CrashPoint(point);
      done += written;
      resealed += written;
      rotation.resealed += written;
      Report(options, kResealPhase, progress_label, done, total);
      fruitless = written == 0 ? fruitless + 1 : 0;
      if (fruitless >= kMaxFruitlessBatches) {
        std::string message = "values of " + progress_label;
        message +=
            " keep being rewritten under a retired data key; is a server of an older "
            "version running on this database? Stop it and run `bifrost keys rotate` again";
        return Fail(ErrorCode::kFailedPrecondition, std::move(message));
      }
    }

    CrashPoint("data-before-destroy");
    BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(const bool gone, OrgGone(*txn, scope));
    if (gone) return ScopeOutcome{SkipReason::kOrganizationDeleted};
    BIFROST_ASSIGN_OR_RETURN(const auto left,
                             txn->ListScopeConfigsNotSealedBy(scope, active->id, 1));
    if (!left.empty()) {
      txn.reset();  // rolled back
      if (attempt >= kMaxFinishAttempts) {
        std::string message = "values of " + progress_label;
        message +=
            " keep appearing under a retired data key; is a server of an older version "
            "running on this database? Stop it and run `bifrost keys rotate` again";
        return Fail(ErrorCode::kFailedPrecondition, std::move(message));
      }
      continue;
    }
    BIFROST_ASSIGN_OR_RETURN(const auto keys, txn->ListScopeDataKeys(scope));
    if (keys.empty() || keys.front().id != active->id) {
      return Fail(ActiveKeyChanged(target, active->id).error());
    }
    for (const auto& key : keys) {
      if (key.state != kStateRetired) continue;
      BIFROST_RETURN_IF_ERROR(txn->DeleteDataKey(key.id));
      rotation.old_keys.push_back(key.id);
    }
    std::string detail = "new data key " + active->id + "; ";
    detail += Count(rotation.resealed, "value", "values");
    detail += " re-encrypted; ";
    if (rotation.old_keys.empty()) {
      detail += "no retired key to destroy";
    } else {
      detail += rotation.old_keys.size() == 1 ? "retired key " : "retired keys ";
      detail += JoinIds(rotation.old_keys);
      detail += " destroyed";
    }
    if (rotation.resumed) detail += "; finished an interrupted rotation";
    BIFROST_RETURN_IF_ERROR(audit.InTxn(
        MakeEvent(audit::actions::kKeysRotateData, options, &scope, std::move(detail)))(*txn));
    BIFROST_RETURN_IF_ERROR(txn->Commit());
    return ScopeOutcome{std::move(rotation)};
  }
}

// What a data rotation covers, from one snapshot: the scopes with their labels, and the
// sealed counts (the totals of the progress report).
struct DataWork {
  std::vector<Target> targets;
  CountMap counts;
};
Result<DataWork> CollectDataWork(store::Store& store, const std::optional<store::Scope>& only) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kRead));
  DataWork work;
  if (only) {
    Target target{.scope = *only, .label = "global"};
    if (!only->is_global()) {
      BIFROST_ASSIGN_OR_RETURN(auto org, txn->GetOrgById(only->org_id()));
      if (!org) {
        return Fail(ErrorCode::kNotFound, "organization " + only->org_id() + " does not exist");
      }
      target.label = org->name;
    }
    work.targets.push_back(std::move(target));
  } else {
    work.targets.push_back(Target{.scope = store::Scope::Global(), .label = "global"});
    BIFROST_ASSIGN_OR_RETURN(auto orgs, txn->ListOrgs());
    for (auto& org : orgs) {
      work.targets.push_back(Target{.scope = store::Scope::Org(org.id), .label = org.name});
    }
  }
  BIFROST_ASSIGN_OR_RETURN(auto counts, txn->CountSealedConfigs());
  for (const auto& count : counts) {
    work.counts[{std::string(count.scope.name()), count.key_id}] += count.count;
  }
  return work;
}

Result<DataRotationReport> RotateDataKeysImpl(store::Store& store, const barrier::Barrier& barrier,
                                              audit::AuditLog& audit, const Clock& clock,
                                              const std::optional<store::Scope>& only,
                                              const RotateOptions& options,
                                              DataRotationReport& report, std::int64_t& job_id,
                                              std::optional<store::Scope>& current) {
  BIFROST_ASSIGN_OR_RETURN(DataWork work, CollectDataWork(store, only));
  const std::string target_name = only ? std::string(only->name()) : std::string(kEveryScope);

  store::KeyJobRow job_row;
  bool job_resumed = false;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(Job job, StartJob(*txn, kKindData, target_name, options, clock));
    std::string detail;
    if (!only) {
      detail = "every scope: the global scope and ";
      detail += Count(static_cast<std::int64_t>(work.targets.size()) - 1, "organization",
                      "organizations");
    } else if (only->is_global()) {
      detail = "the global scope";
    } else {
      detail = "organization " + work.targets.front().label;
    }
    detail += DescribeJobStart(job);
    BIFROST_RETURN_IF_ERROR(
        audit.InTxn(MakeEvent(audit::actions::kKeysRotateDataStart, options,
                              only ? &*only : nullptr, std::move(detail)))(*txn));
    BIFROST_RETURN_IF_ERROR(txn->Commit());
    job_id = job.row.id;
    job_resumed = job.resumed;
    job_row = job.row;
    if (job.resumed) report.resumed_job = std::move(job.row);
    report.closed_jobs = std::move(job.closed);
  }

  for (const auto& target : work.targets) {
    current = target.scope;
    BIFROST_ASSIGN_OR_RETURN(
        auto outcome, RotateScope(store, barrier, audit, options, target, work.counts, job_row,
                                  job_resumed, report.resealed));
    if (auto* rotation = std::get_if<ScopeRotation>(&outcome)) {
      report.scopes.push_back(std::move(*rotation));
    } else {
      report.skipped.push_back(SkippedScope{
          .scope = target.scope, .label = target.label, .reason = std::get<SkipReason>(outcome)});
    }
  }
  current.reset();

  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
  BIFROST_RETURN_IF_ERROR(txn->FinishKeyJob(job_id, clock.NowMicros()));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return report;
}

// Removes what the rotation deleted from the database files (store::Store::
// ReleaseDeletedData); "" when done, else the warning for the operator.
std::string ReleaseWarning(store::Store& store, std::string_view what) {
  const Status released = store.ReleaseDeletedData();
  if (released) return "";
  std::string warning(what);
  warning += " may remain in the database's write-ahead log until its next checkpoint (";
  warning += released.error().message();
  warning +=
      "); the next checkpoint removes them: `bifrost keys rotate` without --org or "
      "--all runs one (with nothing left to re-wrap, it changes no key)";
  return warning;
}

}  // namespace

std::string_view JobCloseReasonName(JobCloseReason reason) {
  switch (reason) {
    case JobCloseReason::kRestart:
      return "restart";
    case JobCloseReason::kSuperseded:
      return "superseded";
    case JobCloseReason::kOrganizationDeleted:
      return "organization_deleted";
  }
  return "unknown";
}

std::string_view SkipReasonName(SkipReason reason) {
  switch (reason) {
    case SkipReason::kRotatedByResumedRun:
      return "rotated_by_resumed_run";
    case SkipReason::kOrganizationDeleted:
      return "organization_deleted";
  }
  return "unknown";
}

// A run that stops on an error (after its job started) closes its job and records the stop;
// only a run killed outright leaves its job open for the next run to resume.
Result<MasterRotationReport> RotateMasterKey(store::Store& store, const barrier::Barrier& barrier,
                                             audit::AuditLog& audit, const Clock& clock,
                                             const RotateOptions& options) {
  MasterRotationReport report;
  report.primary_key_id = barrier.keyring().primary().id();
  std::int64_t job_id = 0;
  auto result = RotateMasterKeyImpl(store, barrier, audit, clock, options, report, job_id);
  if (!result && job_id != 0) {
    CloseJobAfterError(store, job_id, clock);
    std::string progress = "re-wrapping ";
    progress += Count(report.rewrapped, "data key", "data keys");
    RecordStop(audit, audit::actions::kKeysRotateMaster, options, nullptr, result.error(),
               std::move(progress));
  }
  // The old wrappings are gone from the table; take them out of the files too, so a copy of
  // the files and a leaked old master key do not give the data keys away.
  // Also after an error: the batches committed before it re-wrapped keys.
  std::string warning = ReleaseWarning(store, "the old wrappings of the data keys");
  if (result) result->release_warning = std::move(warning);
  return result;
}

Result<DataRotationReport> RotateDataKeys(store::Store& store, const barrier::Barrier& barrier,
                                          audit::AuditLog& audit, const Clock& clock,
                                          const std::optional<store::Scope>& only,
                                          const RotateOptions& options) {
  DataRotationReport report;
  std::int64_t job_id = 0;
  std::optional<store::Scope> current;
  auto result =
      RotateDataKeysImpl(store, barrier, audit, clock, only, options, report, job_id, current);
  if (!result && job_id != 0) {
    CloseJobAfterError(store, job_id, clock);
    std::string progress = "re-encrypting ";
    progress += Count(report.resealed, "value", "values");
    RecordStop(audit, audit::actions::kKeysRotateData, options, current ? &*current : nullptr,
               result.error(), std::move(progress));
  }
  // Also after an error: scopes finished before it destroyed their retired keys.
  std::string warning = ReleaseWarning(store, "the destroyed data keys");
  if (result) result->release_warning = std::move(warning);
  return result;
}

Result<KeyStatus> GetKeyStatus(store::Store& store, const barrier::Barrier& barrier) {
  const crypto::Keyring& ring = barrier.keyring();
  const std::string& primary = ring.primary().id();
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(const auto counts, txn->CountSealedConfigs());
  BIFROST_ASSIGN_OR_RETURN(const auto data_keys, AllDataKeys(*txn));
  BIFROST_ASSIGN_OR_RETURN(const auto orgs, txn->ListOrgs());
  BIFROST_ASSIGN_OR_RETURN(auto jobs, txn->ListUnfinishedKeyJobs());
  txn.reset();

  KeyStatus status;
  status.primary_key_id = primary;
  status.organizations = static_cast<std::int64_t>(orgs.size());
  std::map<std::string, std::string, std::less<>> org_names;
  for (const auto& org : orgs) org_names[org.id] = org.name;
  // A data job of a deleted organization is left out: nothing can resume it (the command
  // would find no such organization), and the next rotation closes it. Status only reads.
  for (auto& job : jobs) {
    const bool org_deleted = job.kind == kKindData && job.target != kEveryScope &&
                             job.target != "global" && !org_names.contains(job.target);
    if (!org_deleted) status.unfinished_jobs.push_back(std::move(job));
  }

  // Master keys: every configured one, then every other one something still needs.
  std::vector<MasterKeyUse> uses;
  for (std::size_t i = 0; i < ring.keys().size(); ++i) {
    uses.push_back(
        MasterKeyUse{.key_id = ring.keys()[i].id(), .configured = true, .primary = i == 0});
  }
  std::map<std::string, MasterKeyUse, std::less<>> others;
  auto use_of = [&](const std::string& key_id) -> MasterKeyUse& {
    for (auto& use : uses) {
      if (use.key_id == key_id) return use;
    }
    auto [it, inserted] = others.try_emplace(key_id);
    if (inserted) it->second.key_id = key_id;
    return it->second;
  };

  std::set<std::string, std::less<>> data_key_ids;
  // Per scope name: the active config key and whether it has retired ones.
  struct ScopeKeys {
    store::Scope scope = store::Scope::Global();
    std::string active;
    bool retired = false;
  };
  std::map<std::string, ScopeKeys, std::less<>> scopes;
  for (const auto& key : data_keys) {
    data_key_ids.insert(key.id);
    ++use_of(key.master_key_id).data_keys;
    if (key.purpose != kPurposeConfig) continue;
    ++status.data_keys;
    auto [it, inserted] = scopes.try_emplace(std::string(key.scope.name()));
    if (inserted) it->second.scope = key.scope;
    if (key.state == kStateActive) it->second.active = key.id;
    if (key.state == kStateRetired) it->second.retired = true;
  }
  // A value whose key id is no data key's was sealed directly by a master key (the format
  // before data keys).
  for (const auto& count : counts) {
    status.sealed_values += count.count;
    if (!data_key_ids.contains(count.key_id)) use_of(count.key_id).direct_values += count.count;
  }
  for (auto& [id, use] : others) uses.push_back(std::move(use));
  status.master_keys = std::move(uses);

  status.previous_keys_unused = true;
  for (const auto& use : status.master_keys) {
    if (!use.primary && (use.data_keys > 0 || use.direct_values > 0)) {
      status.previous_keys_unused = false;
    }
  }

  for (const auto& [name, keys] : scopes) {
    if (!keys.retired) continue;
    UnfinishedScope unfinished;
    unfinished.scope = keys.scope;
    unfinished.active_key = keys.active;
    if (keys.scope.is_global()) {
      unfinished.label = "global";
    } else {
      auto org = org_names.find(keys.scope.org_id());
      unfinished.label = org != org_names.end() ? org->second : keys.scope.org_id();
    }
    for (const auto& count : counts) {
      if (count.scope == keys.scope && count.key_id != keys.active) {
        unfinished.values_left += count.count;
      }
    }
    status.unfinished.push_back(std::move(unfinished));
  }
  // The global scope first, then organizations (by id, as listed).
  std::stable_partition(status.unfinished.begin(), status.unfinished.end(),
                        [](const UnfinishedScope& u) { return u.scope.is_global(); });
  return status;
}

void CrashPoint(std::string_view point) {
  const char* wanted = std::getenv("BIFROST_TESTING_CRASH_AT");
  if (wanted != nullptr && point == wanted) std::raise(SIGKILL);
}

}  // namespace bifrost::keys
