// Key management operations: status, master-key rotation and data-key rotation, run
// online (the server keeps serving) and crash-safe (kill -9 at any point leaves every value
// readable, and running the same command again finishes the job).
//
// These run in the process of `bifrost keys ...`, directly against the database the server
// uses; the barrier's rules make that safe: a server seals new values only under a scope's
// current active key (Barrier::EnsureCurrent, checked inside its write transaction) and reads
// a key it does not know from the same snapshot as the row.
//
//  - Master rotation: re-wraps every data key (and stored audit key) not wrapped by the
//    primary master key under it, in batches of one write transaction each. Idempotent:
//    re-running continues where it stopped.
//  - Data-key rotation of a scope: (1) in one transaction, retire the active key and create
//    a new active one (skipped when continuing: the scope has a retired key and its active
//    key was made since this run's job started; an older active key is retired too); (2)
//    re-seal every value not sealed by the active key, a batch per transaction, each row
//    replaced only if unchanged since it was read (store::Txn::ResealConfig); (3) in one
//    transaction, check no value uses a retired key and delete the retired keys.
//
// Each run is a job (a row of key_jobs: kind, target, who, when). A run that finishes or
// stops on an error closes its job; only a run that was killed leaves it open, and the next
// run of the same kind and target resumes it: a data rotation then skips the scopes that job
// already rotated (reported in DataRotationReport::skipped).
// A master job's target is the master key it re-wraps under: a run towards another key
// closes it (superseded). Unfinished data jobs of deleted organizations are closed when any
// rotation starts. RotateOptions::restart closes the unfinished job instead of resuming it.
//
// Every operation is audited (audit::actions::kKeys*): who, what, when and how many.
//
// Thread-safety: the functions are reentrant; run one rotation of a scope at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::keys {

// Progress of a long operation, reported after every batch (and once at the start).
struct Progress {
  std::string phase;       // "re-wrapping data keys" | "re-encrypting values"
  std::string scope;       // "" | "global" | "organization acme"
  std::int64_t done = 0;   // items finished so far in this phase
  std::int64_t total = 0;  // items in this phase (an estimate: writers may add some)
};
using ProgressFn = std::function<void(const Progress&)>;

struct RotateOptions {
  std::size_t batch_size = 500;  // items per write transaction
  std::string actor;             // recorded in the audit log, e.g. "operator alice (uid 1000)"
  ProgressFn progress;           // optional
  // Close the unfinished job of the same kind and target, if any, and start a new one
  // instead of resuming it (`keys rotate --restart`).
  bool restart = false;
};

// Why a run closed an unfinished job other than its own.
enum class JobCloseReason {
  kRestart,              // the same kind and target, closed by RotateOptions::restart
  kSuperseded,           // a master job towards another master key
  kOrganizationDeleted,  // a data job of an organization that no longer exists
};
// "restart" | "superseded" | "organization_deleted"
std::string_view JobCloseReasonName(JobCloseReason reason);
struct ClosedJob {
  store::KeyJobRow job;  // as it was before it was closed
  JobCloseReason reason = JobCloseReason::kRestart;
};

struct MasterRotationReport {
  std::string primary_key_id;
  std::int64_t rewrapped = 0;                   // data keys (and audit keys) re-wrapped by this run
  std::int64_t total = 0;                       // data keys in the database
  std::optional<store::KeyJobRow> resumed_job;  // the unfinished job this run continued
  std::vector<ClosedJob> closed_jobs;           // other unfinished jobs this run closed
  // Set when the old wrappings could not be removed from the database files at the end
  // (store::Store::ReleaseDeletedData failed, e.g. busy readers): what to tell the operator.
  std::string release_warning;
};
Result<MasterRotationReport> RotateMasterKey(store::Store& store, const barrier::Barrier& barrier,
                                             audit::AuditLog& audit, const Clock& clock,
                                             const RotateOptions& options);

struct ScopeRotation {
  store::Scope scope = store::Scope::Global();
  std::string label;                  // "global" or the organization's name
  std::vector<std::string> old_keys;  // the retired keys, destroyed at the end
  std::string new_key;
  std::int64_t resealed = 0;  // values re-encrypted by this run
  bool resumed = false;       // finished a rotation an earlier run had started
};
// Why a data rotation left a scope alone.
enum class SkipReason {
  kRotatedByResumedRun,  // the job this run resumed had already rotated it
  kOrganizationDeleted,  // deleted during the rotation: its keys and values went with it
};
// "rotated_by_resumed_run" | "organization_deleted"
std::string_view SkipReasonName(SkipReason reason);
struct SkippedScope {
  store::Scope scope = store::Scope::Global();
  std::string label;  // "global" or the organization's name
  SkipReason reason = SkipReason::kRotatedByResumedRun;
};
struct DataRotationReport {
  std::vector<ScopeRotation> scopes;  // the scopes this run rotated, in order
  std::vector<SkippedScope> skipped;  // the scopes it left alone, in order
  std::int64_t resealed = 0;
  std::optional<store::KeyJobRow> resumed_job;  // the unfinished job this run continued
  std::vector<ClosedJob> closed_jobs;           // other unfinished jobs this run closed
  // Set when the destroyed keys could not be removed from the database files at the end
  // (store::Store::ReleaseDeletedData failed): what to tell the operator.
  std::string release_warning;
};
// `only`: one scope; nullopt: every organization and the global scope (--all).
Result<DataRotationReport> RotateDataKeys(store::Store& store, const barrier::Barrier& barrier,
                                          audit::AuditLog& audit, const Clock& clock,
                                          const std::optional<store::Scope>& only,
                                          const RotateOptions& options);

struct MasterKeyUse {
  std::string key_id;
  std::int64_t data_keys = 0;      // data keys (of every purpose) wrapped by it
  std::int64_t direct_values = 0;  // values it seals directly (the format before data keys)
  bool configured = false;         // in the keyring this status was made with
  bool primary = false;
};
struct UnfinishedScope {  // a data-key rotation that has not finished
  store::Scope scope = store::Scope::Global();
  std::string label;
  std::string active_key;
  std::int64_t values_left = 0;  // values not sealed by the active key
};
struct KeyStatus {
  std::string primary_key_id;
  std::vector<MasterKeyUse> master_keys;  // configured ones first (primary first), then others
  std::int64_t organizations = 0;
  std::int64_t data_keys = 0;  // "config" keys, active and retired
  std::int64_t sealed_values = 0;
  std::vector<UnfinishedScope> unfinished;
  // Unfinished jobs, oldest first. A data job of an organization that no longer exists is
  // left out (there is nothing to resume; the next rotation closes it).
  std::vector<store::KeyJobRow> unfinished_jobs;
  // True when no data key and no value needs a master key other than the primary: the
  // previous keys can be removed from the environment.
  bool previous_keys_unused = false;
};
Result<KeyStatus> GetKeyStatus(store::Store& store, const barrier::Barrier& barrier);

// A test-only fault point: when the environment variable BIFROST_TESTING_CRASH_AT equals
// `point` (for example "data-batch:2"), the process kills itself with SIGKILL right there.
// This is how the tests kill a rotation at exact points; it does nothing otherwise.
void CrashPoint(std::string_view point);

}  // namespace bifrost::keys
