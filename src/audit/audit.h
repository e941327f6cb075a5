// The audit log: every secret reveal, change, denial and authentication failure, recorded
// durably before the answer leaves, in a hash chain that shows any edit (docs/audit.md).
//
// Sinks. The database (table audit_log) always; optionally a JSON-lines file. A record is
// accepted only when every sink has it on disk (database commit with synchronous=FULL,
// file write + fdatasync). The database is the source of truth for the chain: the file
// follows it, and a file that fell behind (a failed write) is caught up from the database
// before the next record is acknowledged.
//
// Group commit. Records submitted concurrently are written by one writer thread in groups:
// one database transaction and one fdatasync per group, whatever its size. A submitter is
// told the outcome of its group through a callback, so a request thread does not have to
// block while it waits (the HTTP server holds the response until then).
//
// The chain. Record n carries prev_mac = mac of record n-1 (64 zeros for the first) and
// mac = HMAC-SHA256(audit key, "bifrost-audit-v1" | canonical content of n | prev_mac),
// where the canonical content is every field but mac, each length-prefixed (ChainMac).
// The audit key is derived from the master key (crypto::DeriveAuditKey) and named by its
// id in every record, so a verifier with the old and new keys can walk a chain that spans a
// key rotation. The tail of the chain is read inside each write transaction (not cached),
// so records appended by a service's own transaction (InTxn) and by the writer thread
// interleave correctly.
//
// Fail-closed. When a group cannot be written to every sink, each of its submitters gets
// kUnavailable, the failure is counted and reported to `on_failure` (no value, token or
// body is ever part of a record or a message), and the next group tries again: the log
// recovers by itself when the sink does. A record committed to the database before the
// file sink failed stays in the database (its request was still refused): the log may
// over-report an access, never under-report one.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "crypto/mac.h"
#include "store/store.h"

namespace bifrost::audit {

enum class Outcome { kSuccess, kDenied, kError };
std::string_view OutcomeName(Outcome outcome);  // "success" | "denied" | "error"

// The `action` of each kind of record. A permission denial is recorded under the action
// that was attempted, with outcome "denied".
namespace actions {
inline constexpr std::string_view kConfigReveal = "config.reveal";
inline constexpr std::string_view kConfigCreate = "config.create";
inline constexpr std::string_view kConfigUpdate = "config.update";
inline constexpr std::string_view kConfigDelete = "config.delete";
inline constexpr std::string_view kOrgCreate = "org.create";
inline constexpr std::string_view kOrgDelete = "org.delete";
inline constexpr std::string_view kTokenCreate = "token.create";
inline constexpr std::string_view kTokenRevoke = "token.revoke";
inline constexpr std::string_view kAuthFailure = "auth.failure";
// Users and sessions (docs/web-ui.md). A failed sign-in is auth.login with outcome denied.
inline constexpr std::string_view kAuthLogin = "auth.login";
inline constexpr std::string_view kAuthLogout = "auth.logout";
inline constexpr std::string_view kUserCreate = "user.create";
inline constexpr std::string_view kUserDisable = "user.disable";
inline constexpr std::string_view kUserPassword = "user.password";
inline constexpr std::string_view kAuditPrune = "audit.prune";
// Key management (local commands; actor is the operator's user).
inline constexpr std::string_view kKeysRotateMasterStart = "keys.rotate_master.start";
inline constexpr std::string_view kKeysRotateMaster = "keys.rotate_master";
inline constexpr std::string_view kKeysRotateDataStart = "keys.rotate_data.start";
inline constexpr std::string_view kKeysRotateData = "keys.rotate_data";
inline constexpr std::string_view kImportBifrost = "import.bifrost";
// Workflows (docs/workflows.md). A run's record carries the new execution's id; what the
// execution then reveals or writes is recorded with that id too.
inline constexpr std::string_view kWorkflowRun = "workflow.run";
inline constexpr std::string_view kWorkflowReload = "workflow.reload";
inline constexpr std::string_view kExecutionCancel = "execution.cancel";
}  // namespace actions

// What a caller knows about an access; the log adds seq, time and the chain.
struct Event {
  std::string action;
  Outcome outcome = Outcome::kSuccess;
  std::optional<std::string> org_id;
  std::optional<std::string> config_key;
  std::optional<std::string> actor_id;
  std::optional<std::string> actor_name;
  std::string client_address;
  std::string request_id;
  std::optional<std::string> execution_id;
  std::string detail;  // an error code, a count; never a value, token or body
};

// The mac of record 0: what the first record of a chain carries as prev_mac.
inline constexpr std::string_view kGenesisMac =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The row for `event` at `seq` and `time` after a record whose mac is `prev_mac`, with its
// key_id and mac filled in.
store::AuditRow MakeRow(const Event& event, std::int64_t seq, UnixMicros time,
                        std::string_view prev_mac, const crypto::MacKey& key);
// The mac `row` should carry (from every field but `mac`, including prev_mac and key_id).
std::string ChainMac(const crypto::MacKey& key, const store::AuditRow& row);
// The mac of a retention checkpoint (from every field but `mac`).
std::string CheckpointMac(const crypto::MacKey& key, const store::AuditCheckpoint& checkpoint);

// One record as one line of JSON (no newline): every field of AuditRow, by its name, time
// as RFC 3339 UTC with microseconds ("2026-12-02T04:01:17.123456Z") and as "time_us"
// (integer microseconds), nulls for absent optional fields.
std::string ToJsonLine(const store::AuditRow& row);
// The inverse; kInvalidArgument naming what is wrong with the line.
Result<store::AuditRow> ParseJsonLine(std::string_view line);

struct AuditLogOptions {
  // The JSON-lines sink; "" for the database only. Opened O_APPEND|O_CREAT, mode 0600. A
  // write that fails is undone (the file is truncated back to its last whole record, when
  // it is a regular file) and the file is reopened by path before the next attempt, so a
  // sink that was replaced or rotated is picked up.
  std::string file_path;
  // Most records per group.
  std::size_t max_group = 1024;
  // Called on the writer thread when a group fails after the log was healthy, and when it
  // succeeds again after a failure (error = nullopt). For logging; must not block long.
  std::function<void(const std::optional<Error>& error)> on_health_change;
};

struct AuditStats {
  std::uint64_t records = 0;         // records acknowledged since start
  std::uint64_t groups = 0;          // groups committed since start
  std::uint64_t failed_records = 0;  // records refused because a sink failed
  std::uint64_t failed_groups = 0;
  bool healthy = true;     // the last group (if any) succeeded
  std::string last_error;  // the message of the last failure, "" if none
  bool file_sink = false;
};

class AuditLog {
 public:
  // Opens the sinks and starts the writer thread. With a file sink: a file whose last record
  // is behind the database is caught up at once; an empty (new) file starts with the next
  // record; a file whose last record is ahead of the database, or whose records do not
  // match it, is refused (kFailedPrecondition naming the file and the seq).
  // `store` and `clock` must outlive the log.
  static Result<std::unique_ptr<AuditLog>> Open(store::Store& store, crypto::MacKey key,
                                                const Clock& clock, AuditLogOptions options);
  ~AuditLog();  // Stop()
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Queues `event`; `done` is called exactly once, on the writer thread (or on the calling
  // thread if the log is stopped), with Ok once the record is durable in every sink, or
  // kUnavailable. `done` must not block long or call back into this log synchronously.
  void Submit(Event event, std::function<void(Status)> done);
  // Submit and wait.
  Status Record(Event event);

  // A hook for a service's own write transaction: appends the record inside it (atomic
  // with the change it records). The file sink receives it at the next Sync or group.
  store::CommitHook InTxn(Event event) const;

  // `done` (on the writer thread) once every record committed to the database so far is in
  // every sink: Ok at the writer's next turn when there is no file sink. A Sync alone does
  // not mark the log healthy again (it does not show the database accepts records).
  void Sync(std::function<void(Status)> done);
  Status SyncAndWait();

  // Retention: deletes the records older than `cutoff` (always keeping the newest record),
  // stores a signed checkpoint naming where the kept part begins, and records an
  // "audit.prune" event (detail: how many and which seqs). Returns how many were deleted.
  Result<std::int64_t> Prune(UnixMicros cutoff);

  AuditStats stats() const;
  bool has_file_sink() const;

  // Fails what is queued with kUnavailable ("the audit log is shut down") and joins the
  // writer thread. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Appends one event in its own write transaction, without a running AuditLog (for local
// commands such as `bifrost init`). No file sink.
Status AppendDirect(store::Store& store, const crypto::MacKey& key, const Clock& clock,
                    const Event& event);

struct VerifyOptions {
  std::string file_path;  // also check this JSON-lines file against the chain; "" = no
};

struct VerifyReport {
  bool ok = true;
  std::int64_t records = 0;    // database records walked
  std::int64_t first_seq = 0;  // first and last seq walked (0 when empty)
  std::int64_t last_seq = 0;
  bool checkpoint = false;        // the chain begins at a signed retention checkpoint
  std::int64_t file_records = 0;  // lines of the file checked
  std::int64_t file_first_seq = 0;
  std::int64_t file_last_seq = 0;
  // When !ok: the seq of the first record that is wrong (0 when the problem is not one
  // record), and what is wrong with it, e.g. "record 17 was changed (its mac does not
  // match its content)", "record 18 is missing (record 17 is followed by record 19)".
  std::int64_t bad_seq = 0;
  std::string problem;
};

// Walks the chain in the database (and the file, if named) with the given keys (any key
// whose id a record names). A broken chain is a report with ok = false; an error is only
// for what stops the walk (the database cannot be read, the file cannot be opened).
Result<VerifyReport> Verify(store::Store& store, const std::vector<crypto::MacKey>& keys,
                            const VerifyOptions& options);

}  // namespace bifrost::audit
