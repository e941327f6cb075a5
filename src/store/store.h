// The storage interface: rows in, rows out, nothing decrypted.
//
// Storage is untrusted. A Store moves rows; a secret's value reaches it only as the sealed
// envelope the barrier produced (docs/storage-format.md), so no implementation can leak a
// plaintext. Every backend (SQLite today, PostgreSQL next) implements these two classes and
// must pass the shared conformance suite in tests/store_conformance.cc; nothing above this
// layer knows which backend it talks to.
//
// Concurrency model: any number of read transactions run concurrently and see a consistent
// snapshot; write transactions are serialized (one writer at a time) and see their own
// writes. Rows carry a version that starts at 1 and increases by one on every update, for
// optimistic concurrency: an update names the version it read, and loses with kConflict if
// another writer got there first.
//
// Thread-safety: a Store may be used from any number of threads. A Txn belongs to the thread
// that began it and must not be shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace bifrost::store {

// Where a config row lives: one organization, or the global scope every org inherits.
class Scope {
 public:
  static Scope Global() { return Scope(std::nullopt); }
  static Scope Org(std::string org_id) { return Scope(std::move(org_id)); }

  bool is_global() const { return !org_id_.has_value(); }
  // The organization id; must not be called on the global scope.
  const std::string& org_id() const { return *org_id_; }
  // "global" or the org id: the name used in the row binding and in messages.
  std::string_view name() const { return org_id_ ? std::string_view(*org_id_) : "global"; }

  friend bool operator==(const Scope&, const Scope&) = default;

 private:
  explicit Scope(std::optional<std::string> org_id) : org_id_(std::move(org_id)) {}
  std::optional<std::string> org_id_;
};

struct OrgRow {
  std::string id;    // canonical lower-case UUID
  std::string name;  // unique
  UnixMicros created_at = 0;
};

struct ConfigRow {
  Scope scope = Scope::Global();
  std::string key;
  std::string type;   // "string" | "int" | "bool" | "json" | "secret"
  std::string value;  // clear text, or the sealed envelope when type is "secret"
  // Id of the key that sealed `value`: set (and non-empty) exactly for secrets, so that
  // ListConfigsNotSealedBy("") lists every sealed row.
  std::optional<std::string> key_id;
  std::string description;
  UnixMicros created_at = 0;
  UnixMicros updated_at = 0;
  std::string updated_by;
  std::int64_t version = 0;  // assigned by the store: 1 on insert, +1 on each update
};

// A record that a key belonged to this database: its id and a check value derived from it
// (never the key). See docs/storage-format.md, "Key check".
struct KeyCheckRow {
  std::string key_id;
  std::string check_value;
  UnixMicros added_at = 0;
};

// An API token. The token itself is never stored: only the SHA-256 of it (lower-case hex).
struct TokenRow {
  std::string id;  // canonical lower-case UUID
  std::string name;
  std::optional<std::string> org_id;  // nullopt for platform-wide tokens
  std::string role;                   // "platform-admin" | "admin" | "member" | "reader"
  std::string hash;                   // hex SHA-256 of the token text; unique
  UnixMicros created_at = 0;
  std::string created_by;
  std::optional<UnixMicros> expires_at;
  std::optional<UnixMicros> last_used_at;
  std::optional<UnixMicros> revoked_at;
};

// A data key, stored wrapped (docs/storage-format.md, "Data keys"). The master key never
// seals a config value: each scope (an organization, or the global scope) has its own
// random data key, kept here encrypted under a master key. The store never sees a key in
// clear: `wrapped` is a Fernet token under the master key named by `master_key_id`.
struct DataKeyRow {
  std::string id;  // the data key's own id (16 hex digits, derived from the key)
  // "config": seals the values of `scope`. "audit": an audit MAC key of a master key that
  // was rotated away, kept so old audit records stay verifiable (scope is Global).
  std::string purpose;
  Scope scope = Scope::Global();
  // "active": the one key new values of the scope are sealed with (at most one per scope
  // and purpose "config"). "retired": still opens values, seals nothing new; deleted once no
  // value uses it. Audit keys are always "retired".
  std::string state;
  std::string wrapped;        // Fernet token under the master key
  std::string master_key_id;  // id of the master key that wrapped it
  UnixMicros created_at = 0;
};

// How many secret rows of one scope are sealed by one key.
struct SealedCount {
  Scope scope = Scope::Global();
  std::string key_id;
  std::int64_t count = 0;
};

// One run of `bifrost keys rotate`, so an interrupted run can be resumed rather than
// started again.
struct KeyJobRow {
  std::int64_t id = 0;  // assigned by the store
  std::string kind;     // "master" | "data"
  // What it rotates: "" for a master rotation; for a data rotation "*" (every scope),
  // "global", or an organization id.
  std::string target;
  std::string actor;
  UnixMicros started_at = 0;
  std::optional<UnixMicros> finished_at;
};

// One run of a workflow for one organization (docs/workflows.md). Inserted when the run is
// asked for, updated as it starts and ends. What the run printed, returned or raised is
// stored only after redaction: no secret value reaches these rows.
struct ExecutionRow {
  std::string id;  // canonical lower-case UUID
  std::string workflow;
  std::string org_id;
  std::string caller_id;    // who started it: token (or user) id
  std::string caller_name;  // and its name
  // "pending" (queued) | "running" | "success" | "failed" | "timeout" | "cancelled"
  std::string status;
  std::string parameters;             // a JSON object, as text
  std::optional<std::string> result;  // JSON text; set on success
  std::optional<std::string> error;   // set when failed, timed out or cancelled
  std::string logs;                   // stdout and stderr, merged by line
  bool logs_truncated = false;        // output went over the limit and was cut
  std::int64_t timeout_seconds = 0;
  UnixMicros created_at = 0;
  std::optional<UnixMicros> started_at;
  std::optional<UnixMicros> finished_at;
  // The server node that runs it (NodeRow::id); "" for a row written before nodes existed.
  std::string node_id;
  // Who asked, on another node, for the execution to be cancelled; the node running it
  // acts on it (RequestExecutionCancel). nullopt when nobody did.
  std::optional<std::string> cancel_requested_by;
};

// A running `bifrost serve` process. Each node registers itself at start with a fresh id
// and refreshes heartbeat_at while it runs, so that the executions of a node that died
// can be told apart from those of one that is merely busy.
struct NodeRow {
  std::string id;    // canonical lower-case UUID, new at every start
  std::string name;  // for people: host name and listen address
  UnixMicros started_at = 0;
  UnixMicros heartbeat_at = 0;
};

// How many rows one table holds (CountRows).
struct TableCount {
  std::string table;  // the backend-neutral name: "organizations", "configs", ...
  std::int64_t rows = 0;
};

// Which executions to list; set fields must all match.
struct ExecutionFilter {
  std::optional<std::string> org_id;
  std::optional<std::string> workflow;
  std::optional<std::string> status;
  // Only executions created before this one (the next page): (created_at, id) < its.
  std::optional<std::string> before_id;
  std::optional<std::string> node_id;  // only those this node runs
  bool cancel_requested = false;       // only those with cancel_requested_by set
  std::size_t limit = 100;
};

// A person who signs in to the web UI (docs/web-ui.md). The password is kept only as its
// Argon2id PHC string.
struct UserRow {
  std::string id;                     // canonical lower-case UUID
  std::string email;                  // lower-cased; unique
  std::optional<std::string> org_id;  // nullopt for platform-admin users
  std::string role;                   // "platform-admin" | "admin" | "member" | "reader"
  std::string password_hash;          // "$argon2id$v=19$m=...,t=...,p=...$salt$hash"
  UnixMicros created_at = 0;
  std::string created_by;
  UnixMicros updated_at = 0;  // last change of password, role or state
  std::optional<UnixMicros> disabled_at;
  std::optional<UnixMicros> last_login_at;
};

// A signed-in browser session. The session token itself is never stored: only its SHA-256.
struct SessionRow {
  std::string id;  // canonical lower-case UUID
  std::string user_id;
  std::string hash;  // hex SHA-256 of the session token; unique
  UnixMicros created_at = 0;
  UnixMicros last_seen_at = 0;
  UnixMicros expires_at = 0;  // absolute end, whatever the activity
  std::string client_address;
};

// One record of the audit log (docs/audit.md). Records form a hash chain: `mac` is the
// HMAC of the record's content and of `prev_mac` under the audit key named by `key_id`.
// The store keeps them as given and computes nothing; the audit module makes and checks
// the chain. Optional text fields are nullopt when they do not apply (an authentication
// failure has no actor, an org operation no config key).
struct AuditRow {
  std::int64_t seq = 0;  // 1, 2, 3, ... without gaps
  UnixMicros time = 0;
  std::string action;   // e.g. "config.reveal"
  std::string outcome;  // "success" | "denied" | "error"
  std::optional<std::string> org_id;
  std::optional<std::string> config_key;
  std::optional<std::string> actor_id;      // token (or user) id
  std::optional<std::string> actor_name;    // token (or user) name
  std::string client_address;               // "ip:port", or "" for a local command
  std::string request_id;                   // "" for a local command
  std::optional<std::string> execution_id;  // workflow execution, when the access came from one
  std::string detail;                       // error code, counts: never a value, token or body
  std::string key_id;                       // id of the audit MAC key
  std::string prev_mac;                     // hex; 64 zeros for the first record of a chain
  std::string mac;                          // hex
};

// Where the kept part of a pruned audit log begins, signed with the audit key: records
// before first_seq were deleted on purpose, and record first_seq must carry prev_mac.
struct AuditCheckpoint {
  std::int64_t first_seq = 0;
  std::string prev_mac;  // hex: the mac of record first_seq - 1
  UnixMicros created_at = 0;
  std::string key_id;
  std::string mac;  // hex
};

// Which audit records to list. Every set field must match; all conditions are ANDed.
struct AuditFilter {
  std::optional<std::string> org_id;
  std::optional<std::string> config_key;
  std::optional<std::string> action;
  std::optional<std::string> actor;  // matches actor_id or actor_name
  std::optional<std::string> outcome;
  std::optional<UnixMicros> since;         // time >= since
  std::optional<UnixMicros> until;         // time < until
  std::optional<std::int64_t> before_seq;  // seq < before_seq (the next page)
  std::size_t limit = 100;
};

enum class TxnMode { kRead, kWrite };

class Txn {
 public:
  virtual ~Txn() = default;  // rolls back unless Commit() succeeded

  // Makes every write of this transaction durable (synchronous commit). After a failed
  // Commit the transaction is rolled back and unusable. A read transaction commits trivially.
  virtual Status Commit() = 0;

  // Organizations. InsertOrg fails with kAlreadyExists on a duplicate id or name.
  virtual Status InsertOrg(const OrgRow& org) = 0;
  virtual Result<std::optional<OrgRow>> GetOrgById(std::string_view id) = 0;
  virtual Result<std::optional<OrgRow>> GetOrgByName(std::string_view name) = 0;
  virtual Result<std::vector<OrgRow>> ListOrgs() = 0;  // ordered by name
  // Deletes the org and every config row, token, data key, execution and user (with their
  // sessions) of it. kNotFound if there is no such org.
  virtual Status DeleteOrg(std::string_view id) = 0;

  // Config rows of one scope. Rows of an org scope require the org to exist
  // (kFailedPrecondition otherwise).
  virtual Result<std::optional<ConfigRow>> GetConfig(const Scope& scope, std::string_view key) = 0;
  virtual Result<std::vector<ConfigRow>> ListConfigs(const Scope& scope) = 0;  // by key
  // Inserts a new row with version 1 and returns it as stored. kAlreadyExists if the scope
  // already has this key.
  virtual Result<ConfigRow> InsertConfig(const ConfigRow& row) = 0;
  // Inserts the row exactly as given, version and times included (copying a database:
  // `bifrost migrate`). kAlreadyExists if the scope already has this key;
  // kInvalidArgument if row.version < 1.
  virtual Status RestoreConfig(const ConfigRow& row) = 0;
  // Replaces type, value, key_id, description, updated_at and updated_by of the row with
  // the same scope and key if its version equals `expected_version`; returns the row as
  // stored, with the version increased by one. kNotFound if there is no such row,
  // kConflict if its version differs. created_at is kept.
  virtual Result<ConfigRow> UpdateConfig(const ConfigRow& row, std::int64_t expected_version) = 0;
  // Deletes the row. With an expected version, kConflict if the row's version differs.
  // kNotFound if there is no such row.
  virtual Status DeleteConfig(const Scope& scope, std::string_view key,
                              std::optional<std::int64_t> expected_version) = 0;
  // Secret rows sealed by a key other than `key_id`, in a stable order, at most `limit`:
  // what a key rotation still has to re-encrypt.
  virtual Result<std::vector<ConfigRow>> ListConfigsNotSealedBy(std::string_view key_id,
                                                                std::size_t limit) = 0;

  // Replaces the sealed value and key_id of a secret row and nothing else (not version,
  // updated_at or updated_by): a re-encryption is not a change. Only if the row still holds
  // exactly `expected_value`; kConflict when it was changed, deleted or re-created since.
  virtual Status ResealConfig(const Scope& scope, std::string_view key,
                              std::string_view expected_value, std::string_view value,
                              std::string_view key_id) = 0;
  // Secret rows of exactly this scope (not its fallback) sealed by a key other than
  // `key_id`, ordered by key, at most `limit`.
  virtual Result<std::vector<ConfigRow>> ListScopeConfigsNotSealedBy(const Scope& scope,
                                                                     std::string_view key_id,
                                                                     std::size_t limit) = 0;
  // Secret rows counted by (scope, key_id), ordered by scope (global first, then org id)
  // and key_id.
  virtual Result<std::vector<SealedCount>> CountSealedConfigs() = 0;

  // Data keys. InsertDataKey: kAlreadyExists on a duplicate id, or when the row is an
  // active "config" key and its scope already has one; kFailedPrecondition if its org does
  // not exist. Deleting an org deletes its data keys (crypto-shredding).
  virtual Status InsertDataKey(const DataKeyRow& row) = 0;
  virtual Result<std::optional<DataKeyRow>> GetDataKey(std::string_view id) = 0;
  // The "config" keys of one scope: the active one first, then retired ones by created_at.
  virtual Result<std::vector<DataKeyRow>> ListScopeDataKeys(const Scope& scope) = 0;
  // Every data key (all purposes and scopes) with id > after_id, ordered by id, at most
  // `limit`: paging through all of them.
  virtual Result<std::vector<DataKeyRow>> ListDataKeys(std::string_view after_id,
                                                       std::size_t limit) = 0;
  // Replaces `wrapped` and `master_key_id` if the row is still wrapped by
  // `expected_master_key_id`. kNotFound if absent, kConflict if wrapped by another key.
  virtual Status RewrapDataKey(std::string_view id, std::string_view wrapped,
                               std::string_view master_key_id,
                               std::string_view expected_master_key_id) = 0;
  // Sets the state of a data key ("active" | "retired"). kNotFound if absent;
  // kAlreadyExists if it would make a second active key in its scope.
  virtual Status SetDataKeyState(std::string_view id, std::string_view state) = 0;
  // kNotFound if absent.
  virtual Status DeleteDataKey(std::string_view id) = 0;

  // Key rotation jobs. InsertKeyJob returns the new job's id.
  virtual Result<std::int64_t> InsertKeyJob(const KeyJobRow& job) = 0;
  // Inserts the job with its own id (copying a database); later InsertKeyJob ids are
  // greater. kAlreadyExists on a duplicate id; kInvalidArgument if job.id < 1.
  virtual Status RestoreKeyJob(const KeyJobRow& job) = 0;
  // Every job, finished or not, by id (copying a database).
  virtual Result<std::vector<KeyJobRow>> ListKeyJobs() = 0;
  // The most recent unfinished job of this kind and target, or nullopt.
  virtual Result<std::optional<KeyJobRow>> GetUnfinishedKeyJob(std::string_view kind,
                                                               std::string_view target) = 0;
  // Every unfinished job, oldest first.
  virtual Result<std::vector<KeyJobRow>> ListUnfinishedKeyJobs() = 0;
  // kNotFound if there is no such job; finishing a finished job keeps the first time.
  virtual Status FinishKeyJob(std::int64_t id, UnixMicros at) = 0;

  // Workflow executions. InsertExecution: kAlreadyExists on a duplicate id,
  // kFailedPrecondition if its org does not exist. Deleting an org deletes its executions.
  virtual Status InsertExecution(const ExecutionRow& row) = 0;
  // Replaces status, result, error, logs, logs_truncated, started_at and finished_at of the
  // execution with row.id (the rest is kept). kNotFound if there is no such execution.
  virtual Status UpdateExecution(const ExecutionRow& row) = 0;
  virtual Result<std::optional<ExecutionRow>> GetExecution(std::string_view id) = 0;
  // Newest first (created_at descending, then id descending), at most filter.limit. With
  // before_id naming an execution that does not exist: an empty list.
  virtual Result<std::vector<ExecutionRow>> ListExecutions(const ExecutionFilter& filter) = 0;
  // Ends as "failed" with `error` at `at` every execution still "pending" or "running"
  // whose node is not `self_node` and is dead: it has no nodes row, or its row's
  // heartbeat_at < stale_before (executions a stopped or crashed node left behind; nothing
  // can finish them now). Deletes those stale node rows too. Returns how many executions.
  virtual Result<std::int64_t> FailOrphanedExecutions(std::string_view error, UnixMicros at,
                                                      std::string_view self_node,
                                                      UnixMicros stale_before) = 0;
  // Records that `by` asked for the execution to be cancelled (cancel_requested_by), for
  // the node running it to act on. Only while it is "pending" or "running"; the first
  // request is kept. kNotFound if there is no such execution, kFailedPrecondition if it has
  // finished.
  virtual Status RequestExecutionCancel(std::string_view id, std::string_view by) = 0;

  // Server nodes. UpsertNode inserts the row or replaces name and heartbeat_at of the row
  // with the same id. DeleteNode: kNotFound if absent.
  virtual Status UpsertNode(const NodeRow& node) = 0;
  virtual Status DeleteNode(std::string_view id) = 0;
  virtual Result<std::vector<NodeRow>> ListNodes() = 0;  // by started_at, then id

  // Tokens. InsertToken: kAlreadyExists on a duplicate id or hash, kFailedPrecondition if
  // its org does not exist. Deleting an org deletes its tokens.
  virtual Status InsertToken(const TokenRow& token) = 0;
  virtual Result<std::optional<TokenRow>> GetTokenById(std::string_view id) = 0;
  virtual Result<std::optional<TokenRow>> GetTokenByHash(std::string_view hash) = 0;
  // All tokens, or those of one org (nullopt = all), newest first (created_at desc, id).
  virtual Result<std::vector<TokenRow>> ListTokens(std::optional<std::string_view> org_id) = 0;
  // Sets revoked_at if not yet set. kNotFound if there is no such token; revoking a revoked
  // token succeeds and keeps the first revocation time.
  virtual Status RevokeToken(std::string_view id, UnixMicros at) = 0;
  // Sets last_used_at (only ever forward). kNotFound if there is no such token.
  virtual Status TouchToken(std::string_view id, UnixMicros at) = 0;

  // Users. InsertUser: kAlreadyExists on a duplicate id or email, kFailedPrecondition if
  // its org does not exist. Deleting an org deletes its users and their sessions.
  virtual Status InsertUser(const UserRow& user) = 0;
  virtual Result<std::optional<UserRow>> GetUserById(std::string_view id) = 0;
  virtual Result<std::optional<UserRow>> GetUserByEmail(std::string_view email) = 0;
  // All users, or those of one org (nullopt = all), ordered by email.
  virtual Result<std::vector<UserRow>> ListUsers(std::optional<std::string_view> org_id) = 0;
  // Replaces role, password_hash, updated_at, disabled_at and last_login_at of the user
  // with user.id (the rest is kept). kNotFound if there is no such user.
  virtual Status UpdateUser(const UserRow& user) = 0;

  // Sessions. InsertSession: kAlreadyExists on a duplicate id or hash, kFailedPrecondition
  // if its user does not exist.
  virtual Status InsertSession(const SessionRow& session) = 0;
  virtual Result<std::optional<SessionRow>> GetSessionByHash(std::string_view hash) = 0;
  // Sets last_seen_at (only ever forward). kNotFound if there is no such session.
  virtual Status TouchSession(std::string_view id, UnixMicros at) = 0;
  // kNotFound if there is no such session.
  virtual Status DeleteSession(std::string_view id) = 0;
  // Every session of the user; returns how many.
  virtual Result<std::int64_t> DeleteUserSessions(std::string_view user_id) = 0;
  // Every session with expires_at <= now or last_seen_at <= idle_before; returns how many.
  virtual Result<std::int64_t> DeleteExpiredSessions(UnixMicros now, UnixMicros idle_before) = 0;
  // Every session, by id (copying a database).
  virtual Result<std::vector<SessionRow>> ListSessions() = 0;

  // Keys this database has been used with. InsertKeyCheck: kAlreadyExists on a duplicate id.
  virtual Result<std::vector<KeyCheckRow>> ListKeyChecks() = 0;
  virtual Status InsertKeyCheck(const KeyCheckRow& row) = 0;

  // Audit log. Rows are never updated; they are deleted only by PruneAudit.
  // The record with the highest seq, or nullopt when there is none.
  virtual Result<std::optional<AuditRow>> GetLastAudit() = 0;
  // kAlreadyExists on a duplicate seq.
  virtual Status InsertAudit(const AuditRow& row) = 0;
  // Newest first (seq descending), at most filter.limit.
  virtual Result<std::vector<AuditRow>> ListAudit(const AuditFilter& filter) = 0;
  // Records with seq >= from_seq, ascending, at most `limit`: for walking the chain.
  virtual Result<std::vector<AuditRow>> ScanAudit(std::int64_t from_seq, std::size_t limit) = 0;
  // The smallest seq whose time is >= `time`, or nullopt.
  virtual Result<std::optional<std::int64_t>> FirstAuditSeqSince(UnixMicros time) = 0;
  virtual Result<std::optional<AuditCheckpoint>> GetAuditCheckpoint() = 0;
  // Deletes every record with seq < checkpoint.first_seq and replaces the stored checkpoint
  // (there is at most one) with `checkpoint`. Returns how many records were deleted.
  virtual Result<std::int64_t> PruneAudit(const AuditCheckpoint& checkpoint) = 0;

  // How many rows each table holds, in this fixed order: organizations, configs,
  // key_checks, tokens, data_keys, key_jobs, executions, users, sessions, nodes,
  // audit_log, audit_checkpoint. (Copying a database: the target must be empty, and the
  // copy must count the same.)
  virtual Result<std::vector<TableCount>> CountRows() = 0;
};

// Work a service runs inside its own write transaction just before committing it, so that
// it commits or rolls back with the rest (the audit record of a change). An error rolls
// the whole transaction back and is returned by the service.
using CommitHook = std::function<Status(Txn& txn)>;
// The same, told what the transaction is about to commit (the row written).
template <typename T>
using CommitHookWith = std::function<Status(Txn& txn, const T& written)>;

class Store {
 public:
  virtual ~Store() = default;

  // Starts a transaction. A write transaction waits (up to the backend's busy timeout) for
  // the single writer slot; kUnavailable if it cannot get it.
  virtual Result<std::unique_ptr<Txn>> Begin(TxnMode mode) = 0;

  // The schema version this store is at (after migrations), and the backend's name.
  virtual int SchemaVersion() const = 0;
  virtual std::string_view BackendName() const = 0;

  // Makes the data that committed transactions deleted leave the backend's files, as far as
  // the backend can: older versions of changed pages or rows that it still keeps for readers
  // or recovery (SQLite: frames of the write-ahead log, and the database file until the next
  // checkpoint) are overwritten or removed. Called after a deletion that must not be
  // recoverable from a copy of the files (crypto-shredding: an organization's data keys, a
  // rotation's retired keys). It does not reach copies outside those files: backups, and
  // blocks the file system has already released.
  //
  // Best effort and idempotent; it changes no row. It waits only briefly for readers and
  // writers (of this and other processes) to finish (SQLite: the writer slot up to the busy
  // timeout, then at most 100 ms for readers), and returns kUnavailable when it could not
  // complete then: the data is released by a later call or
  // by the backend's own housekeeping. Must not be called while the calling thread holds a
  // Txn of this store (it would wait for that transaction and time out).
  //
  // Every backend implements it; the conformance suite checks that it succeeds.
  virtual Status ReleaseDeletedData() = 0;
};

}  // namespace bifrost::store
