#include "store/postgres/migrations.h"

#include <string>

namespace bifrost::store::postgres_internal {
namespace {

// Timestamps are BIGINT microseconds since the Unix epoch, UTC. Every text column is
// COLLATE "C": ordering, uniqueness and range conditions (key_id < $1) compare bytes, as
// in SQLite, whatever collation the database was created with. Constraint names are
// PostgreSQL's defaults (<table>_pkey, <table>_<column>_key, <table>_<column>_fkey) unless
// named here; the store reads them to tell which unique rule a row broke.
constexpr Migration kMigrations[] = {
    {1, "initial_schema", R"sql(
CREATE TABLE organizations (
  id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name       TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at BIGINT NOT NULL
);

-- org_id NULL is the global scope, which every organization inherits.
CREATE TABLE configs (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id      TEXT COLLATE "C" NULL REFERENCES organizations(id) ON DELETE CASCADE,
  key         TEXT COLLATE "C" NOT NULL,
  type        TEXT COLLATE "C" NOT NULL
    CHECK (type IN ('string', 'int', 'bool', 'json', 'secret')),
  value       TEXT COLLATE "C" NOT NULL,
  key_id      TEXT COLLATE "C" NULL,
  description TEXT COLLATE "C" NOT NULL DEFAULT '',
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  updated_by  TEXT COLLATE "C" NOT NULL,
  version     BIGINT NOT NULL CHECK (version >= 1),
  CONSTRAINT secret_iff_key_id CHECK ((type = 'secret') = (key_id IS NOT NULL))
);

-- One key per scope. Two partial indexes because NULLs are distinct in a UNIQUE index;
-- queries say "org_id = $n" or "org_id IS NULL" so that the planner can use them.
CREATE UNIQUE INDEX configs_org_key ON configs (org_id, key) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX configs_global_key ON configs (key) WHERE org_id IS NULL;
CREATE INDEX configs_key_id ON configs (key_id) WHERE key_id IS NOT NULL;

CREATE TABLE key_checks (
  key_id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  check_value TEXT COLLATE "C" NOT NULL,
  added_at    BIGINT NOT NULL
);
)sql"},
    {2, "api_tokens", R"sql(
-- API tokens. Only the SHA-256 of a token (lower-case hex) is kept; the token itself is
-- shown once at creation and never stored. org_id NULL exactly for platform-wide tokens.
CREATE TABLE tokens (
  id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name         TEXT COLLATE "C" NOT NULL,
  org_id       TEXT COLLATE "C" NULL REFERENCES organizations(id) ON DELETE CASCADE,
  role         TEXT COLLATE "C" NOT NULL
    CHECK (role IN ('platform-admin', 'admin', 'member', 'reader')),
  hash         TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at   BIGINT NOT NULL,
  created_by   TEXT COLLATE "C" NOT NULL,
  expires_at   BIGINT NULL,
  last_used_at BIGINT NULL,
  revoked_at   BIGINT NULL,
  CONSTRAINT platform_iff_no_org CHECK ((role = 'platform-admin') = (org_id IS NULL))
);

-- Listing one org's tokens newest first, and the ON DELETE CASCADE from organizations.
CREATE INDEX tokens_org_id ON tokens (org_id, created_at DESC, id);
)sql"},
    {3, "audit_log", R"sql(
-- The audit log (docs/audit.md): append-only records forming a hash chain, kept exactly as
-- the audit module gives them (the store computes no MAC). seq is the chain position, given
-- by the caller and never assigned here (a duplicate is refused). Rows are never updated
-- and are deleted only by pruning, below a signed checkpoint. org_id deliberately has no
-- foreign key: the record of what happened in an organization must outlive it.
CREATE TABLE audit_log (
  seq            BIGINT PRIMARY KEY CHECK (seq >= 1),
  time           BIGINT NOT NULL,
  action         TEXT COLLATE "C" NOT NULL,
  outcome        TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
  org_id         TEXT COLLATE "C" NULL,
  config_key     TEXT COLLATE "C" NULL,
  actor_id       TEXT COLLATE "C" NULL,
  actor_name     TEXT COLLATE "C" NULL,
  client_address TEXT COLLATE "C" NOT NULL,
  request_id     TEXT COLLATE "C" NOT NULL,
  execution_id   TEXT COLLATE "C" NULL,
  detail         TEXT COLLATE "C" NOT NULL,
  key_id         TEXT COLLATE "C" NOT NULL,
  prev_mac       TEXT COLLATE "C" NOT NULL,
  mac            TEXT COLLATE "C" NOT NULL
);

-- One org's records newest first (partial: platform records without an org are not in it),
-- and time, for a listing between two times and for retention.
CREATE INDEX audit_log_org_seq ON audit_log (org_id, seq) WHERE org_id IS NOT NULL;
CREATE INDEX audit_log_time ON audit_log (time);

-- Where the kept part of a pruned audit log begins, signed by the audit module. At most
-- one row (id is always 1); pruning replaces it in the same transaction as the deletion.
CREATE TABLE audit_checkpoint (
  id         BIGINT PRIMARY KEY CHECK (id = 1),
  first_seq  BIGINT NOT NULL CHECK (first_seq >= 1),
  prev_mac   TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  key_id     TEXT COLLATE "C" NOT NULL,
  mac        TEXT COLLATE "C" NOT NULL
);
)sql"},
    {4, "data_keys", R"sql(
-- Envelope encryption (docs/storage-format.md, "Data keys"): each scope's random data key,
-- stored only wrapped (a Fernet token under the master key named by master_key_id). org_id
-- NULL is the global scope. Deleting an organization deletes its keys (crypto-shredding).
-- Audit keys ('audit') are MAC keys of master keys that were rotated away.
CREATE TABLE data_keys (
  id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  purpose       TEXT COLLATE "C" NOT NULL CHECK (purpose IN ('config', 'audit')),
  org_id        TEXT COLLATE "C" NULL REFERENCES organizations(id) ON DELETE CASCADE,
  state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('active', 'retired')),
  wrapped       TEXT COLLATE "C" NOT NULL,
  master_key_id TEXT COLLATE "C" NOT NULL,
  created_at    BIGINT NOT NULL,
  CONSTRAINT audit_keys_are_global_and_retired
    CHECK (purpose = 'config' OR (org_id IS NULL AND state = 'retired'))
);

-- At most one active config key per scope (two partial indexes, as for configs).
CREATE UNIQUE INDEX data_keys_one_active_org ON data_keys (org_id)
  WHERE purpose = 'config' AND state = 'active' AND org_id IS NOT NULL;
CREATE UNIQUE INDEX data_keys_one_active_global ON data_keys (state)
  WHERE purpose = 'config' AND state = 'active' AND org_id IS NULL;
-- One scope's keys, and the ON DELETE CASCADE.
CREATE INDEX data_keys_scope ON data_keys (org_id, created_at);

-- One rotation run (`bifrost keys rotate`). Ids come from a sequence and are never reused,
-- so "the most recent" is the highest id; a restored job's id moves the sequence past it.
CREATE TABLE key_jobs (
  id          BIGINT GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME key_jobs_id_seq)
                PRIMARY KEY,
  kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('master', 'data')),
  target      TEXT COLLATE "C" NOT NULL,
  actor       TEXT COLLATE "C" NOT NULL,
  started_at  BIGINT NOT NULL,
  finished_at BIGINT NULL
);
CREATE INDEX key_jobs_unfinished ON key_jobs (kind, target, id) WHERE finished_at IS NULL;

-- A data-key rotation lists a scope's secrets not sealed by its new key, a batch at a time.
CREATE INDEX configs_scope_key_id ON configs (org_id, key_id, key) WHERE key_id IS NOT NULL;
)sql"},
    {5, "executions", R"sql(
-- Workflow executions (docs/workflows.md): one row per run of a workflow for one
-- organization. What the run printed, returned or raised is stored only after redaction.
CREATE TABLE executions (
  id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  workflow        TEXT COLLATE "C" NOT NULL,
  org_id          TEXT COLLATE "C" NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  caller_id       TEXT COLLATE "C" NOT NULL,
  caller_name     TEXT COLLATE "C" NOT NULL,
  status          TEXT COLLATE "C" NOT NULL
    CHECK (status IN ('pending', 'running', 'success', 'failed', 'timeout', 'cancelled')),
  parameters      TEXT COLLATE "C" NOT NULL,
  result          TEXT COLLATE "C" NULL,
  error           TEXT COLLATE "C" NULL,
  logs            TEXT COLLATE "C" NOT NULL,
  logs_truncated  BIGINT NOT NULL CHECK (logs_truncated IN (0, 1)),
  timeout_seconds BIGINT NOT NULL,
  created_at      BIGINT NOT NULL,
  started_at      BIGINT NULL,
  finished_at     BIGINT NULL
);

CREATE INDEX executions_org_created ON executions (org_id, created_at DESC, id DESC);
CREATE INDEX executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX executions_unfinished ON executions (status) WHERE status IN ('pending', 'running');
)sql"},
    {6, "users_and_sessions", R"sql(
-- People who sign in to the web UI (docs/web-ui.md). The password is kept only as its
-- Argon2id PHC string. org_id is NULL exactly for platform admins, as for tokens.
CREATE TABLE users (
  id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  email         TEXT COLLATE "C" NOT NULL UNIQUE,
  org_id        TEXT COLLATE "C" NULL REFERENCES organizations(id) ON DELETE CASCADE,
  role          TEXT COLLATE "C" NOT NULL
    CHECK (role IN ('platform-admin', 'admin', 'member', 'reader')),
  password_hash TEXT COLLATE "C" NOT NULL,
  created_at    BIGINT NOT NULL,
  created_by    TEXT COLLATE "C" NOT NULL,
  updated_at    BIGINT NOT NULL,
  disabled_at   BIGINT NULL,
  last_login_at BIGINT NULL,
  CONSTRAINT platform_iff_no_org CHECK ((role = 'platform-admin') = (org_id IS NULL))
);

CREATE INDEX users_org_email ON users (org_id, email);

-- Signed-in browser sessions. Only the SHA-256 of a session token is kept. Deleting a user
-- deletes its sessions.
CREATE TABLE sessions (
  id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  user_id        TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  hash           TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at     BIGINT NOT NULL,
  last_seen_at   BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,
  client_address TEXT COLLATE "C" NOT NULL
);

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);
)sql"},
    {7, "nodes", R"sql(
-- Several server nodes may share one database. Each running `bifrost serve` registers
-- itself with a fresh id and a heartbeat; an execution names the node that runs it, so a
-- node that starts fails only the executions of nodes that stopped, and a cancel asked for
-- on one node reaches the node running the process. node_id is '' for executions written
-- before this version.
ALTER TABLE executions ADD COLUMN node_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN cancel_requested_by TEXT COLLATE "C" NULL;
CREATE INDEX executions_node_unfinished ON executions (node_id, status)
  WHERE status IN ('pending', 'running');

CREATE TABLE nodes (
  id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name         TEXT COLLATE "C" NOT NULL,
  started_at   BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);
)sql"},
};

constexpr std::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    BIGINT PRIMARY KEY,
  name       TEXT COLLATE "C" NOT NULL,
  applied_at BIGINT NOT NULL
)
)sql";

// The advisory lock that serializes migrations (of every node), taken for the migration's
// transaction. Not the writers' lock (postgres_store.cc): the two never wait for each other.
constexpr std::int64_t kMigrationLockKey = 0x626966726f730002;  // "bifros", 2

// Rolls the migration transaction back unless it was committed, which also releases the
// migration lock. If the connection broke, the server has already done both.
class RollbackGuard {
 public:
  explicit RollbackGuard(Connection& connection) : connection_(connection) {}
  RollbackGuard(const RollbackGuard&) = delete;
  RollbackGuard& operator=(const RollbackGuard&) = delete;
  ~RollbackGuard() {
    if (!connection_.broken() && connection_.InTransaction()) {
      (void)connection_.ExecScript("ROLLBACK", "roll back schema migration");
    }
  }

 private:
  Connection& connection_;
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

int LatestSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

Result<int> ApplyMigrations(Connection& connection, const Clock& clock, int wait_ms) {
  const std::string what = "migrate database '" + connection.redacted_url() + "'";
  auto migrate = [&]() -> Result<int> {
    BIFROST_RETURN_IF_ERROR(connection.ExecScript("BEGIN", "begin schema migration"));
    // Waiting for another node's migration is bounded by `wait_ms` rather than by the
    // store's lock_timeout; SET LOCAL ends with the transaction.
    BIFROST_RETURN_IF_ERROR(connection.Execute("SELECT set_config('lock_timeout', $1, true)",
                                               "set the migration lock timeout",
                                               {std::to_string(wait_ms) + "ms"}));
    auto locked =
        connection.Execute("SELECT pg_advisory_xact_lock($1)",
                           "wait for another process's schema migration", {kMigrationLockKey});
    if (!locked) return Fail(locked.error());
    // Everything below runs after the lock was granted: each statement of this READ
    // COMMITTED transaction sees what a migration that held it before committed.
    BIFROST_RETURN_IF_ERROR(
        connection.ExecScript(kCreateMigrationsTable, "create table schema_migrations"));
    BIFROST_ASSIGN_OR_RETURN(
        QueryResult current_result,
        connection.Execute("SELECT coalesce(max(version), 0) FROM schema_migrations",
                           "read the schema version", {}));
    const std::int64_t current = current_result.Int64(0, 0);
    BIFROST_RETURN_IF_ERROR(current_result.CheckReads("read the schema version"));
    const int latest = LatestSchemaVersion();
    if (current > latest) {
      std::string message = "database schema version ";
      message += std::to_string(current);
      message += " is newer than this bifrost supports (";
      message += std::to_string(latest);
      message += "); upgrade bifrost";
      return Fail(ErrorCode::kFailedPrecondition, std::move(message));
    }
    for (const Migration& migration : kMigrations) {
      if (migration.version <= current) continue;
      std::string step = "migration ";
      step += std::to_string(migration.version);
      step += " (";
      step += migration.name;
      step += "): ";
      auto applied = connection.ExecScript(migration.sql, "apply schema migration");
      if (!applied) return Fail(applied.error().code(), step + applied.error().message());
      auto recorded = connection.Execute(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
          "record schema migration", {migration.version, migration.name, clock.NowMicros()});
      if (!recorded) return Fail(recorded.error().code(), step + recorded.error().message());
    }
    BIFROST_ASSIGN_OR_RETURN(QueryResult committed,
                             connection.ExecScript("COMMIT", "commit schema migration"));
    if (committed.command_tag() != "COMMIT") {
      return Fail(ErrorCode::kInternal, "the schema migration was rolled back");
    }
    return latest;
  };
  RollbackGuard guard(connection);
  Result<int> version = migrate();
  if (!version) return Fail(version.error().code(), what + ": " + version.error().message());
  return version;
}

}  // namespace bifrost::store::postgres_internal
