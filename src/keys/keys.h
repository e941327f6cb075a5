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
//    a new active one (skipped when resuming: the scope already has a retired key); (2)
//    re-seal every value not sealed by the active key, a batch per transaction, each row
//    replaced only if unchanged since it was read (store::Txn::ResealConfig); (3) in one
//    transaction, check no value uses a retired key and delete the retired keys.
//    With --all, a job row remembers when the run started, so a re-run resumes scopes
//    without rotating the finished ones again.
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
  std::string phase;      // "re-wrapping data keys" | "re-encrypting values"
  std::string scope;      // "" | "global" | "organization acme"
  std::int64_t done = 0;  // items finished so far in this phase
  std::int64_t total = 0; // items in this phase (an estimate: writers may add some)
};
using ProgressFn = std::function<void(const Progress&)>;

struct RotateOptions {
  std::size_t batch_size = 500;  // items per write transaction
  std::string actor;             // recorded in the audit log, e.g. "operator alice (uid 1000)"
  ProgressFn progress;           // optional
};

struct MasterRotationReport {
  std::string primary_key_id;
  std::int64_t rewrapped = 0;  // data keys (and audit keys) re-wrapped by this run
  std::int64_t total = 0;      // data keys in the database
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
struct DataRotationReport {
  std::vector<ScopeRotation> scopes;
  std::int64_t resealed = 0;
};
// `only`: one scope; nullopt: every organization and the global scope (--all).
Result<DataRotationReport> RotateDataKeys(store::Store& store, const barrier::Barrier& barrier,
                                          audit::AuditLog& audit, const Clock& clock,
                                          const std::optional<store::Scope>& only,
                                          const RotateOptions& options);

struct MasterKeyUse {
  std::string key_id;
  std::int64_t data_keys = 0;     // data keys (of every purpose) wrapped by it
  std::int64_t direct_values = 0; // values it seals directly (the format before data keys)
  bool configured = false;        // in the keyring this status was made with
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
  std::int64_t data_keys = 0;       // "config" keys, active and retired
  std::int64_t sealed_values = 0;
  std::vector<UnfinishedScope> unfinished;
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
