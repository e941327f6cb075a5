#include "store/sqlite/migrations.h"

#include <string>

namespace bifrost::store::sqlite_internal {
namespace {

// Timestamps are INTEGER microseconds since the Unix epoch, UTC. Tables are STRICT, so a
// value of the wrong type is an error rather than silently stored.
constexpr Migration kMigrations[] = {
    {1, "initial_schema", R"sql(
CREATE TABLE organizations (
  id         TEXT    NOT NULL PRIMARY KEY,
  name       TEXT    NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;

-- org_id NULL is the global scope, which every organization inherits.
CREATE TABLE configs (
  id          INTEGER PRIMARY KEY,
  org_id      TEXT    NULL REFERENCES organizations(id) ON DELETE CASCADE,
  key         TEXT    NOT NULL,
  type        TEXT    NOT NULL CHECK (type IN ('string', 'int', 'bool', 'json', 'secret')),
  value       TEXT    NOT NULL,
  key_id      TEXT    NULL,
  description TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  updated_by  TEXT    NOT NULL,
  version     INTEGER NOT NULL CHECK (version >= 1),
  CONSTRAINT secret_iff_key_id CHECK ((type = 'secret') = (key_id IS NOT NULL))
) STRICT;

-- One key per scope. Two partial indexes because NULLs are distinct in a UNIQUE index;
-- queries say "org_id = ?" or "org_id IS NULL" so that the planner can use them.
CREATE UNIQUE INDEX configs_org_key ON configs (org_id, key) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX configs_global_key ON configs (key) WHERE org_id IS NULL;
CREATE INDEX configs_key_id ON configs (key_id) WHERE key_id IS NOT NULL;

CREATE TABLE key_checks (
  key_id      TEXT    NOT NULL PRIMARY KEY,
  check_value TEXT    NOT NULL,
  added_at    INTEGER NOT NULL
) STRICT;
)sql"},
    {2, "api_tokens", R"sql(
-- API tokens. Only the SHA-256 of a token (lower-case hex) is kept; the token itself is
-- shown once at creation and never stored. org_id NULL exactly for platform-wide tokens.
CREATE TABLE tokens (
  id           TEXT    NOT NULL PRIMARY KEY,
  name         TEXT    NOT NULL,
  org_id       TEXT    NULL REFERENCES organizations(id) ON DELETE CASCADE,
  role         TEXT    NOT NULL CHECK (role IN ('platform-admin', 'admin', 'member', 'reader')),
  hash         TEXT    NOT NULL UNIQUE,
  created_at   INTEGER NOT NULL,
  created_by   TEXT    NOT NULL,
  expires_at   INTEGER NULL,
  last_used_at INTEGER NULL,
  revoked_at   INTEGER NULL,
  CONSTRAINT platform_iff_no_org CHECK ((role = 'platform-admin') = (org_id IS NULL))
) STRICT;

-- Listing one org's tokens newest first, and the ON DELETE CASCADE from organizations.
CREATE INDEX tokens_org_id ON tokens (org_id, created_at DESC, id);
)sql"},
    {3, "audit_log", R"sql(
-- The audit log (docs/audit.md): append-only records forming a hash chain, kept exactly as
-- the audit module gives them (the store computes no MAC). seq is the chain position, given
-- by the caller and never assigned here (no AUTOINCREMENT; a duplicate is refused). Rows are
-- never updated and are deleted only by pruning, below a signed checkpoint.
-- org_id deliberately has no foreign key: the record of what happened in an organization
-- must outlive the organization. NULL text columns mean "does not apply" (no actor for an
-- authentication failure, no config key for an org operation).
CREATE TABLE audit_log (
  seq            INTEGER PRIMARY KEY CHECK (seq >= 1),
  time           INTEGER NOT NULL,
  action         TEXT    NOT NULL,
  outcome        TEXT    NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
  org_id         TEXT    NULL,
  config_key     TEXT    NULL,
  actor_id       TEXT    NULL,
  actor_name     TEXT    NULL,
  client_address TEXT    NOT NULL,
  request_id     TEXT    NOT NULL,
  execution_id   TEXT    NULL,
  detail         TEXT    NOT NULL,
  key_id         TEXT    NOT NULL,
  prev_mac       TEXT    NOT NULL,
  mac            TEXT    NOT NULL
) STRICT;

-- Every audited request pays for each index on insert, so only two: one org's records
-- newest first (partial: platform records without an org are not in it), and time, for a
-- listing between two times. Other filters (action, actor, outcome, config key) are checked
-- while walking seq downwards, stopping at the page limit; the first seq since a time (what
-- retention prunes up to) walks seq upwards from the start of the log.
CREATE INDEX audit_log_org_seq ON audit_log (org_id, seq) WHERE org_id IS NOT NULL;
CREATE INDEX audit_log_time ON audit_log (time);

-- Where the kept part of a pruned audit log begins, signed by the audit module: records
-- below first_seq were deleted on purpose, and record first_seq carries prev_mac. At most
-- one row (id is always 1); pruning replaces it in the same transaction as the deletion.
CREATE TABLE audit_checkpoint (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  first_seq  INTEGER NOT NULL CHECK (first_seq >= 1),
  prev_mac   TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  key_id     TEXT    NOT NULL,
  mac        TEXT    NOT NULL
) STRICT;
)sql"},
    {4, "data_keys", R"sql(
-- Envelope encryption (docs/storage-format.md, "Data keys"): each scope's random data key,
-- stored only wrapped (a Fernet token under the master key named by master_key_id). The
-- store never sees a key in clear. org_id NULL is the global scope. Deleting an
-- organization deletes its keys (crypto-shredding: its values can never be opened again,
-- even from an old copy of their rows); secure_delete zeroes the freed bytes in the file.
-- Audit keys ('audit') are MAC keys of master keys that were rotated away, kept so that old
-- audit records stay verifiable; they belong to the global scope and never seal anything.
CREATE TABLE data_keys (
  id            TEXT    NOT NULL PRIMARY KEY,
  purpose       TEXT    NOT NULL CHECK (purpose IN ('config', 'audit')),
  org_id        TEXT    NULL REFERENCES organizations(id) ON DELETE CASCADE,
  state         TEXT    NOT NULL CHECK (state IN ('active', 'retired')),
  wrapped       TEXT    NOT NULL,
  master_key_id TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  CONSTRAINT audit_keys_are_global_and_retired
    CHECK (purpose = 'config' OR (org_id IS NULL AND state = 'retired'))
) STRICT;

-- At most one active config key per scope. Two partial indexes, as for configs, because
-- NULLs are distinct in a UNIQUE index: for the global scope every indexed row has the same
-- state, so uniqueness on it allows one row.
CREATE UNIQUE INDEX data_keys_one_active_org ON data_keys (org_id)
  WHERE purpose = 'config' AND state = 'active' AND org_id IS NOT NULL;
CREATE UNIQUE INDEX data_keys_one_active_global ON data_keys (state)
  WHERE purpose = 'config' AND state = 'active' AND org_id IS NULL;
-- One scope's keys (org_id = ? or org_id IS NULL), and the ON DELETE CASCADE.
CREATE INDEX data_keys_scope ON data_keys (org_id, created_at);

-- One rotation run (`bifrost keys rotate`), so that an interrupted run is resumed rather
-- than started again. AUTOINCREMENT: ids are never reused, so "the most recent" is the
-- highest id even after rows were deleted.
CREATE TABLE key_jobs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  kind        TEXT    NOT NULL CHECK (kind IN ('master', 'data')),
  target      TEXT    NOT NULL,
  actor       TEXT    NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER NULL
) STRICT;
CREATE INDEX key_jobs_unfinished ON key_jobs (kind, target, id) WHERE finished_at IS NULL;

-- A data-key rotation lists a scope's secrets not sealed by its new key, a batch at a time,
-- until none is left. This index lets each batch read only rows still to do, in index order
-- (see ListScopeConfigsNotSealedBy), instead of walking past the rows already re-sealed; it
-- also answers CountSealedConfigs without touching the table.
CREATE INDEX configs_scope_key_id ON configs (org_id, key_id, key) WHERE key_id IS NOT NULL;
)sql"},
    {5, "executions", R"sql(
-- Workflow executions (docs/workflows.md): one row per run of a workflow for one
-- organization, inserted when the run is asked for and updated as it starts and ends. What
-- the run printed (logs), returned (result) or raised (error) is stored only after
-- redaction: no secret value reaches this table. Deleting an organization deletes its
-- executions. result and error are NULL when they do not apply (no result unless the run
-- succeeded), started_at and finished_at until the run starts and ends.
CREATE TABLE executions (
  id              TEXT    NOT NULL PRIMARY KEY,
  workflow        TEXT    NOT NULL,
  org_id          TEXT    NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  caller_id       TEXT    NOT NULL,
  caller_name     TEXT    NOT NULL,
  status          TEXT    NOT NULL
    CHECK (status IN ('pending', 'running', 'success', 'failed', 'timeout', 'cancelled')),
  parameters      TEXT    NOT NULL,
  result          TEXT    NULL,
  error           TEXT    NULL,
  logs            TEXT    NOT NULL,
  logs_truncated  INTEGER NOT NULL CHECK (logs_truncated IN (0, 1)),
  timeout_seconds INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER NULL,
  finished_at     INTEGER NULL
) STRICT;

-- Listings are newest first, (created_at, id) descending, and page below the (created_at,
-- id) of the last execution shown. One org's executions (and the ON DELETE CASCADE), and
-- every execution; the workflow and status filters are checked while walking the index,
-- stopping at the page limit. The sweep at start-up (FailOrphanedExecutions) reads the
-- unfinished rows alone: a partial index, since nearly every row is finished.
CREATE INDEX executions_org_created ON executions (org_id, created_at DESC, id DESC);
CREATE INDEX executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX executions_unfinished ON executions (status) WHERE status IN ('pending', 'running');
)sql"},
    {6, "users_and_sessions", R"sql(
-- People who sign in to the web UI (docs/web-ui.md). The password is kept only as its
-- Argon2id PHC string. email is lower-cased by the caller and compared exactly here. org_id
-- is NULL exactly for platform admins, as for tokens. Deleting an organization deletes its
-- users, and with them their sessions. disabled_at and last_login_at are NULL until the user
-- is disabled or first signs in.
CREATE TABLE users (
  id            TEXT    NOT NULL PRIMARY KEY,
  email         TEXT    NOT NULL UNIQUE,
  org_id        TEXT    NULL REFERENCES organizations(id) ON DELETE CASCADE,
  role          TEXT    NOT NULL CHECK (role IN ('platform-admin', 'admin', 'member', 'reader')),
  password_hash TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  created_by    TEXT    NOT NULL,
  updated_at    INTEGER NOT NULL,
  disabled_at   INTEGER NULL,
  last_login_at INTEGER NULL,
  CONSTRAINT platform_iff_no_org CHECK ((role = 'platform-admin') = (org_id IS NULL))
) STRICT;

-- One org's users by email (and the ON DELETE CASCADE from organizations). Every user by
-- email walks the UNIQUE index on email.
CREATE INDEX users_org_email ON users (org_id, email);

-- Signed-in browser sessions. Only the SHA-256 of a session token (lower-case hex) is kept.
-- A session ends at expires_at whatever its activity, or once last_seen_at is too old
-- (the caller's idle timeout); DeleteExpiredSessions removes both kinds. Deleting a user
-- deletes its sessions.
CREATE TABLE sessions (
  id             TEXT    NOT NULL PRIMARY KEY,
  user_id        TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  hash           TEXT    NOT NULL UNIQUE,
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  client_address TEXT    NOT NULL
) STRICT;

-- One user's sessions (sign-out everywhere, and the ON DELETE CASCADE from users). The sweep
-- "expires_at <= ? OR last_seen_at <= ?" reads the two time indexes (a multi-index OR)
-- instead of the whole table.
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);
)sql"},
    {7, "nodes", R"sql(
-- Several server nodes may share one database (PostgreSQL). Each running `bifrost serve`
-- registers itself with a fresh id and a heartbeat; an execution names the node that runs it,
-- so a node that starts fails only the executions of nodes that stopped, and a cancel asked
-- for on one node reaches the node running the process. node_id is '' for executions
-- written before this version.
ALTER TABLE executions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN cancel_requested_by TEXT NULL;
CREATE INDEX executions_node_unfinished ON executions (node_id, status)
  WHERE status IN ('pending', 'running');

CREATE TABLE nodes (
  id           TEXT    NOT NULL PRIMARY KEY,
  name         TEXT    NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
) STRICT;
)sql"},
};

constexpr const char* kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;
)sql";

// Rolls the migration transaction back unless it was committed.
class RollbackGuard {
 public:
  explicit RollbackGuard(Connection& connection) : connection_(connection) {}
  RollbackGuard(const RollbackGuard&) = delete;
  RollbackGuard& operator=(const RollbackGuard&) = delete;
  ~RollbackGuard() {
    if (connection_.InTransaction()) {
      // Nothing useful to do if the rollback itself fails: the connection is closed next.
      (void)connection_.ExecScript("ROLLBACK", "roll back schema migration");
    }
  }

 private:
  Connection& connection_;
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

int LatestSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

Result<int> ApplyMigrations(Connection& writer, const Clock& clock) {
  const std::string what = "migrate database '" + writer.path() + "'";
  BIFROST_RETURN_IF_ERROR(writer.ExecScript("BEGIN IMMEDIATE", what));
  RollbackGuard guard(writer);
  BIFROST_RETURN_IF_ERROR(writer.ExecScript(kCreateMigrationsTable, what));
  // Read inside the write transaction: another process may have migrated meanwhile.
  BIFROST_ASSIGN_OR_RETURN(
      const std::int64_t current,
      writer.QueryInt64("SELECT coalesce(max(version), 0) FROM schema_migrations", what));
  const int latest = LatestSchemaVersion();
  if (current > latest) {
    return Fail(ErrorCode::kFailedPrecondition, "database schema version " +
                                                    std::to_string(current) +
                                                    " is newer than this bifrost supports (" +
                                                    std::to_string(latest) + "); upgrade bifrost");
  }
  for (const Migration& migration : kMigrations) {
    if (migration.version <= current) continue;
    const std::string step = what + ": migration " + std::to_string(migration.version) + " (" +
                             std::string(migration.name) + ")";
    BIFROST_RETURN_IF_ERROR(writer.ExecScript(migration.sql, step));
    BIFROST_ASSIGN_OR_RETURN(
        Statement record,
        writer.Prepare("INSERT INTO schema_migrations (version, name, applied_at) "
                       "VALUES (?1, ?2, ?3)",
                       "record schema migration"));
    record.BindInt64(1, migration.version);
    record.BindText(2, migration.name);
    record.BindInt64(3, clock.NowMicros());
    BIFROST_RETURN_IF_ERROR(record.Run());
  }
  BIFROST_RETURN_IF_ERROR(writer.ExecScript("COMMIT", what));
  return latest;
}

}  // namespace bifrost::store::sqlite_internal
