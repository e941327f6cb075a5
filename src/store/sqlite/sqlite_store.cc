#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/migrations.h"

namespace bifrost::store {

using sqlite_internal::Connection;
using sqlite_internal::Statement;

namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr int kMaxReaderConnections = 64;

std::string ErrnoText(int err) { return std::generic_category().message(err); }

// Creates `dir` and any missing parents with mode 0700.
Status MakeDirectories(const std::string& dir) {
  if (::mkdir(dir.c_str(), kDirMode) == 0) {
    // mkdir applies the umask; state the mode exactly.
    if (::chmod(dir.c_str(), kDirMode) != 0) {
      const int err = errno;
      return Fail(ErrorCode::kFailedPrecondition,
                  "cannot set mode 0700 on data_dir '" + dir + "': " + ErrnoText(err));
    }
    return Ok();
  }
  const int err = errno;
  if (err == EEXIST) return Ok();  // created meanwhile; checked by the caller
  if (err == ENOENT) {
    const std::filesystem::path parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty() && parent.string() != dir) {
      BIFROST_RETURN_IF_ERROR(MakeDirectories(parent.string()));
      return MakeDirectories(dir);
    }
  }
  return Fail(ErrorCode::kFailedPrecondition,
              "cannot create data_dir '" + dir + "': " + ErrnoText(err));
}

// Makes sure `dir` is a directory this process can create files in.
Status PrepareDataDir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err != ENOENT) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "cannot access data_dir '" + dir + "': " + ErrnoText(err));
    }
    BIFROST_RETURN_IF_ERROR(MakeDirectories(dir));
    if (::stat(dir.c_str(), &st) != 0) {
      const int stat_err = errno;
      return Fail(ErrorCode::kFailedPrecondition,
                  "cannot access data_dir '" + dir + "': " + ErrnoText(stat_err));
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return Fail(ErrorCode::kFailedPrecondition,
                "data_dir '" + dir + "' exists but is not a directory");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int err = errno;
    return Fail(ErrorCode::kFailedPrecondition,
                "data_dir '" + dir + "' is not writable: " + ErrnoText(err));
  }
  return Ok();
}

// Creates the database file with mode 0600 before SQLite opens it (SQLite would apply the
// umask to 0644), and tightens an existing file and its -wal/-shm companions to 0600.
// SQLite creates -wal and -shm with the mode of the database file.
Status PrepareDatabaseFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
  if (fd < 0) {
    const int err = errno;
    return Fail(ErrorCode::kFailedPrecondition,
                "cannot open database file '" + path + "': " + ErrnoText(err));
  }
  struct stat st {};
  Status status = Ok();
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    status = Fail(ErrorCode::kFailedPrecondition,
                  "cannot stat database file '" + path + "': " + ErrnoText(err));
  } else if (!S_ISREG(st.st_mode)) {
    status =
        Fail(ErrorCode::kFailedPrecondition, "database file '" + path + "' is not a regular file");
  } else if ((st.st_mode & 07777) != kFileMode && ::fchmod(fd, kFileMode) != 0) {
    const int err = errno;
    status = Fail(ErrorCode::kFailedPrecondition,
                  "cannot set mode 0600 on database file '" + path + "': " + ErrnoText(err));
  }
  ::close(fd);
  BIFROST_RETURN_IF_ERROR(status);
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string companion = path + suffix;
    if (::lstat(companion.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_mode & 07777) != kFileMode && ::chmod(companion.c_str(), kFileMode) != 0) {
      const int err = errno;
      return Fail(ErrorCode::kFailedPrecondition,
                  "cannot set mode 0600 on '" + companion + "': " + ErrnoText(err));
    }
  }
  return Ok();
}

std::string ScopeText(const Scope& scope) { return std::string(scope.name()); }

// Prefixes an error's message with the thing it concerns, keeping the code.
Error Annotate(const Error& error, const std::string& subject) {
  return Error(error.code(), subject + ": " + error.message());
}

std::string ConfigSubject(const Scope& scope, std::string_view key) {
  return "config '" + std::string(key) + "' in scope '" + ScopeText(scope) + "'";
}

// The columns every config query returns, in ReadConfigRow's order.
// org_id, key, type, value, key_id, description, created_at, updated_at, updated_by, version

ConfigRow ReadConfigRow(const Statement& stmt) {
  ConfigRow row;
  row.scope = stmt.ColumnIsNull(0) ? Scope::Global() : Scope::Org(stmt.ColumnText(0));
  row.key = stmt.ColumnText(1);
  row.type = stmt.ColumnText(2);
  row.value = stmt.ColumnText(3);
  row.key_id = stmt.ColumnOptionalText(4);
  row.description = stmt.ColumnText(5);
  row.created_at = stmt.ColumnInt64(6);
  row.updated_at = stmt.ColumnInt64(7);
  row.updated_by = stmt.ColumnText(8);
  row.version = stmt.ColumnInt64(9);
  return row;
}

OrgRow ReadOrgRow(const Statement& stmt) {
  return OrgRow{stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnInt64(2)};
}

// A config row's own consistency rules, checked before SQLite's CHECK constraints so that
// the message names the config.
Status ValidateConfigRow(const ConfigRow& row) {
  const std::string_view type = row.type;
  if (type != "string" && type != "int" && type != "bool" && type != "json" && type != "secret") {
    return Fail(ErrorCode::kInvalidArgument,
                ConfigSubject(row.scope, row.key) + " has unknown type '" + row.type + "'");
  }
  if ((type == "secret") != row.key_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument, ConfigSubject(row.scope, row.key) +
                                                 (row.key_id ? " has a key_id but is not a secret"
                                                             : " is a secret without a key_id"));
  }
  if (row.key_id && row.key_id->empty()) {
    // An empty id would hide a sealed row from ListConfigsNotSealedBy("") and so from the
    // barrier's "sealed rows but no key check" guard.
    return Fail(ErrorCode::kInvalidArgument,
                ConfigSubject(row.scope, row.key) + " has an empty key_id");
  }
  return Ok();
}

std::string TokenSubject(std::string_view id) { return "token '" + std::string(id) + "'"; }

// The columns every token query returns, in ReadTokenRow's order.
// id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, revoked_at

std::optional<std::int64_t> ColumnOptionalInt64(const Statement& stmt, int index) {
  if (stmt.ColumnIsNull(index)) return std::nullopt;
  return stmt.ColumnInt64(index);
}

TokenRow ReadTokenRow(const Statement& stmt) {
  TokenRow row;
  row.id = stmt.ColumnText(0);
  row.name = stmt.ColumnText(1);
  row.org_id = stmt.ColumnOptionalText(2);
  row.role = stmt.ColumnText(3);
  row.hash = stmt.ColumnText(4);
  row.created_at = stmt.ColumnInt64(5);
  row.created_by = stmt.ColumnText(6);
  row.expires_at = ColumnOptionalInt64(stmt, 7);
  row.last_used_at = ColumnOptionalInt64(stmt, 8);
  row.revoked_at = ColumnOptionalInt64(stmt, 9);
  return row;
}

// A token row's own consistency rules, checked before SQLite's CHECK constraints so that the
// message names the token. Messages never contain the hash.
Status ValidateTokenRow(const TokenRow& row) {
  const std::string_view role = row.role;
  if (role != "platform-admin" && role != "admin" && role != "member" && role != "reader") {
    return Fail(ErrorCode::kInvalidArgument,
                TokenSubject(row.id) + " has unknown role '" + row.role + "'");
  }
  if ((role == "platform-admin") == row.org_id.has_value()) {
    return Fail(
        ErrorCode::kInvalidArgument,
        TokenSubject(row.id) + (row.org_id ? " has role platform-admin but an org"
                                           : " has org role '" + row.role + "' but no org"));
  }
  return Ok();
}

bool IsRole(std::string_view role) {
  return role == "platform-admin" || role == "admin" || role == "member" || role == "reader";
}

std::string UserSubject(std::string_view id) { return "user '" + std::string(id) + "'"; }

// The columns every user query returns, in ReadUserRow's order.
// id, email, org_id, role, password_hash, created_at, created_by, updated_at, disabled_at,
// last_login_at

UserRow ReadUserRow(const Statement& stmt) {
  UserRow row;
  row.id = stmt.ColumnText(0);
  row.email = stmt.ColumnText(1);
  row.org_id = stmt.ColumnOptionalText(2);
  row.role = stmt.ColumnText(3);
  row.password_hash = stmt.ColumnText(4);
  row.created_at = stmt.ColumnInt64(5);
  row.created_by = stmt.ColumnText(6);
  row.updated_at = stmt.ColumnInt64(7);
  row.disabled_at = ColumnOptionalInt64(stmt, 8);
  row.last_login_at = ColumnOptionalInt64(stmt, 9);
  return row;
}

// A user row's own consistency rules, checked before SQLite's CHECK constraints so that the
// message names the user. Messages never contain the password hash.
Status ValidateUserRow(const UserRow& row) {
  if (!IsRole(row.role)) {
    return Fail(ErrorCode::kInvalidArgument,
                UserSubject(row.id) + " has unknown role '" + row.role + "'");
  }
  if ((row.role == "platform-admin") == row.org_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument,
                UserSubject(row.id) + (row.org_id ? " has role platform-admin but an org"
                                                  : " has org role '" + row.role + "' but no org"));
  }
  return Ok();
}

std::string SessionSubject(std::string_view id) { return "session '" + std::string(id) + "'"; }

// The columns every session query returns, in ReadSessionRow's order.
// id, user_id, hash, created_at, last_seen_at, expires_at, client_address

SessionRow ReadSessionRow(const Statement& stmt) {
  SessionRow row;
  row.id = stmt.ColumnText(0);
  row.user_id = stmt.ColumnText(1);
  row.hash = stmt.ColumnText(2);
  row.created_at = stmt.ColumnInt64(3);
  row.last_seen_at = stmt.ColumnInt64(4);
  row.expires_at = stmt.ColumnInt64(5);
  row.client_address = stmt.ColumnText(6);
  return row;
}

std::string AuditSubject(std::int64_t seq) {
  std::string subject = "audit record ";
  subject += std::to_string(seq);
  return subject;
}

AuditRow ReadAuditRow(const Statement& stmt) {
  AuditRow row;
  row.seq = stmt.ColumnInt64(0);
  row.time = stmt.ColumnInt64(1);
  row.action = stmt.ColumnText(2);
  row.outcome = stmt.ColumnText(3);
  row.org_id = stmt.ColumnOptionalText(4);
  row.config_key = stmt.ColumnOptionalText(5);
  row.actor_id = stmt.ColumnOptionalText(6);
  row.actor_name = stmt.ColumnOptionalText(7);
  row.client_address = stmt.ColumnText(8);
  row.request_id = stmt.ColumnText(9);
  row.execution_id = stmt.ColumnOptionalText(10);
  row.detail = stmt.ColumnText(11);
  row.key_id = stmt.ColumnText(12);
  row.prev_mac = stmt.ColumnText(13);
  row.mac = stmt.ColumnText(14);
  return row;
}

// An audit record's own rules, checked before SQLite's CHECK constraints so that the message
// names the record. Nothing about the chain is checked: that is the audit module's job.
Status ValidateAuditRow(const AuditRow& row) {
  if (row.seq < 1) {
    return Fail(ErrorCode::kInvalidArgument, AuditSubject(row.seq) + ": seq must be at least 1");
  }
  const std::string_view outcome = row.outcome;
  if (outcome != "success" && outcome != "denied" && outcome != "error") {
    return Fail(ErrorCode::kInvalidArgument,
                AuditSubject(row.seq) + " has unknown outcome '" + row.outcome + "'");
  }
  return Ok();
}

std::string DataKeySubject(std::string_view id) { return "data key '" + std::string(id) + "'"; }

DataKeyRow ReadDataKeyRow(const Statement& stmt) {
  DataKeyRow row;
  row.id = stmt.ColumnText(0);
  row.purpose = stmt.ColumnText(1);
  row.scope = stmt.ColumnIsNull(2) ? Scope::Global() : Scope::Org(stmt.ColumnText(2));
  row.state = stmt.ColumnText(3);
  row.wrapped = stmt.ColumnText(4);
  row.master_key_id = stmt.ColumnText(5);
  row.created_at = stmt.ColumnInt64(6);
  return row;
}

bool IsDataKeyState(std::string_view state) { return state == "active" || state == "retired"; }

// A data key row's own rules, checked before SQLite's constraints so that the message names
// the key. Messages never contain the wrapped key.
Status ValidateDataKeyRow(const DataKeyRow& row) {
  if (row.id.empty() || row.master_key_id.empty() || row.wrapped.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                DataKeySubject(row.id) + " needs an id, a wrapped key and a master key id");
  }
  if (row.purpose != "config" && row.purpose != "audit") {
    return Fail(ErrorCode::kInvalidArgument,
                DataKeySubject(row.id) + " has unknown purpose '" + row.purpose + "'");
  }
  if (!IsDataKeyState(row.state)) {
    return Fail(ErrorCode::kInvalidArgument,
                DataKeySubject(row.id) + " has unknown state '" + row.state + "'");
  }
  if (row.purpose == "audit" && (!row.scope.is_global() || row.state != "retired")) {
    return Fail(ErrorCode::kInvalidArgument,
                DataKeySubject(row.id) + " is an audit key, which must be global and retired");
  }
  return Ok();
}

std::string KeyJobSubject(std::int64_t id) {
  std::string subject = "key job ";
  subject += std::to_string(id);
  return subject;
}

KeyJobRow ReadKeyJobRow(const Statement& stmt) {
  KeyJobRow row;
  row.id = stmt.ColumnInt64(0);
  row.kind = stmt.ColumnText(1);
  row.target = stmt.ColumnText(2);
  row.actor = stmt.ColumnText(3);
  row.started_at = stmt.ColumnInt64(4);
  row.finished_at = ColumnOptionalInt64(stmt, 5);
  return row;
}

std::string ExecutionSubject(std::string_view id) { return "execution '" + std::string(id) + "'"; }

bool IsExecutionStatus(std::string_view status) {
  return status == "pending" || status == "running" || status == "success" || status == "failed" ||
         status == "timeout" || status == "cancelled";
}

// The columns every execution query returns, in ReadExecutionRow's order.
// id, workflow, org_id, caller_id, caller_name, status, parameters, result, error, logs,
// logs_truncated, timeout_seconds, created_at, started_at, finished_at, node_id,
// cancel_requested_by

ExecutionRow ReadExecutionRow(const Statement& stmt) {
  ExecutionRow row;
  row.id = stmt.ColumnText(0);
  row.workflow = stmt.ColumnText(1);
  row.org_id = stmt.ColumnText(2);
  row.caller_id = stmt.ColumnText(3);
  row.caller_name = stmt.ColumnText(4);
  row.status = stmt.ColumnText(5);
  row.parameters = stmt.ColumnText(6);
  row.result = stmt.ColumnOptionalText(7);
  row.error = stmt.ColumnOptionalText(8);
  row.logs = stmt.ColumnText(9);
  row.logs_truncated = stmt.ColumnInt64(10) != 0;
  row.timeout_seconds = stmt.ColumnInt64(11);
  row.created_at = stmt.ColumnInt64(12);
  row.started_at = ColumnOptionalInt64(stmt, 13);
  row.finished_at = ColumnOptionalInt64(stmt, 14);
  row.node_id = stmt.ColumnText(15);
  row.cancel_requested_by = stmt.ColumnOptionalText(16);
  return row;
}

// An execution's status, checked before SQLite's CHECK constraint so that the message names
// the execution.
Status ValidateExecutionStatus(const ExecutionRow& row) {
  if (!IsExecutionStatus(row.status)) {
    return Fail(ErrorCode::kInvalidArgument,
                ExecutionSubject(row.id) + " has unknown status '" + row.status + "'");
  }
  return Ok();
}

// ---- SQL. Constant text only; every value is bound. Config queries exist in a global and
// an org variant because "org_id IS ?" defeats the partial unique indexes.

constexpr std::string_view kBeginImmediate = "BEGIN IMMEDIATE";
constexpr std::string_view kBeginDeferred = "BEGIN DEFERRED";
// Reading any table starts the read transaction, which pins the WAL snapshot.
constexpr std::string_view kPinSnapshot = "SELECT 1 FROM sqlite_schema LIMIT 1";
constexpr std::string_view kCommit = "COMMIT";
constexpr std::string_view kRollback = "ROLLBACK";

constexpr std::string_view kInsertOrg =
    "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)";
constexpr std::string_view kGetOrgById =
    "SELECT id, name, created_at FROM organizations WHERE id = ?1";
constexpr std::string_view kGetOrgByName =
    "SELECT id, name, created_at FROM organizations WHERE name = ?1";
constexpr std::string_view kListOrgs =
    "SELECT id, name, created_at FROM organizations ORDER BY name, id";
constexpr std::string_view kDeleteOrg = "DELETE FROM organizations WHERE id = ?1";

constexpr std::string_view kGetConfigGlobal =
    "SELECT org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version FROM configs WHERE org_id IS NULL AND key = ?1";
constexpr std::string_view kGetConfigOrg =
    "SELECT org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version FROM configs WHERE org_id = ?2 AND key = ?1";
constexpr std::string_view kListConfigsGlobal =
    "SELECT org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version FROM configs WHERE org_id IS NULL ORDER BY key";
constexpr std::string_view kListConfigsOrg =
    "SELECT org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version FROM configs WHERE org_id = ?1 ORDER BY key";
constexpr std::string_view kFindConfigGlobal =
    "SELECT id, version FROM configs WHERE org_id IS NULL AND key = ?1";
constexpr std::string_view kFindConfigOrg =
    "SELECT id, version FROM configs WHERE org_id = ?2 AND key = ?1";
constexpr std::string_view kInsertConfig =
    "INSERT INTO configs (org_id, key, type, value, key_id, description, created_at, "
    "updated_at, updated_by, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1) "
    "RETURNING org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version";
// A copied row keeps its version (?10).
constexpr std::string_view kRestoreConfig =
    "INSERT INTO configs (org_id, key, type, value, key_id, description, created_at, "
    "updated_at, updated_by, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "RETURNING org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version";
constexpr std::string_view kUpdateConfig =
    "UPDATE configs SET type = ?2, value = ?3, key_id = ?4, description = ?5, "
    "updated_at = ?6, updated_by = ?7, version = version + 1 WHERE id = ?1 "
    "RETURNING org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version";
constexpr std::string_view kDeleteConfig = "DELETE FROM configs WHERE id = ?1";
constexpr std::string_view kListNotSealedBy =
    "SELECT org_id, key, type, value, key_id, description, created_at, updated_at, "
    "updated_by, version FROM configs WHERE key_id IS NOT NULL AND key_id != ?1 "
    "ORDER BY id LIMIT ?2";
// Only if the row still holds exactly the value the caller read: a row changed, deleted or
// deleted and re-created (version 1 again) since then holds another envelope (each one has
// its own random IV), so it is never overwritten with a re-encryption of the old value.
constexpr std::string_view kResealConfigGlobal =
    "UPDATE configs SET value = ?3, key_id = ?4 "
    "WHERE org_id IS NULL AND key = ?1 AND type = 'secret' AND value = ?2";
constexpr std::string_view kResealConfigOrg =
    "UPDATE configs SET value = ?3, key_id = ?4 "
    "WHERE org_id = ?5 AND key = ?1 AND type = 'secret' AND value = ?2";
// A rotation calls this until it returns nothing, so each call must cost the batch, not the
// scope. "key_id != ?" would walk every row already re-sealed; the two ranges either side
// of the key each come out of configs_scope_key_id in (key_id, key) order and are merged
// (MERGE (UNION ALL), no sort), stopping after ?2 rows. Only that batch is then sorted by
// key. So a batch is the first ?2 rows in (key_id, key) order, returned ordered by key.
#define BIFROST_CONFIG_COLUMNS \
  "org_id, key, type, value, key_id, description, created_at, updated_at, updated_by, version"
#define BIFROST_NOT_SEALED_BY(scope_condition)                                      \
  "SELECT " BIFROST_CONFIG_COLUMNS " FROM (SELECT " BIFROST_CONFIG_COLUMNS          \
  " FROM configs WHERE " scope_condition                                            \
  " AND key_id IS NOT NULL AND key_id < ?1 "                                        \
  "UNION ALL SELECT " BIFROST_CONFIG_COLUMNS " FROM configs WHERE " scope_condition \
  " AND key_id IS NOT NULL AND key_id > ?1 ORDER BY key_id, key LIMIT ?2) ORDER BY key"
constexpr std::string_view kListScopeNotSealedByGlobal = BIFROST_NOT_SEALED_BY("org_id IS NULL");
constexpr std::string_view kListScopeNotSealedByOrg = BIFROST_NOT_SEALED_BY("org_id = ?3");
#undef BIFROST_NOT_SEALED_BY
#undef BIFROST_CONFIG_COLUMNS
// A scan of configs_scope_key_id alone (covering; NULL, the global scope, sorts first).
constexpr std::string_view kCountSealedConfigs =
    "SELECT org_id, key_id, count(*) FROM configs WHERE key_id IS NOT NULL "
    "GROUP BY org_id, key_id ORDER BY org_id NULLS FIRST, key_id";

// The columns every data key query returns, in ReadDataKeyRow's order.
#define BIFROST_DATA_KEY_COLUMNS "id, purpose, org_id, state, wrapped, master_key_id, created_at"
constexpr std::string_view kInsertDataKey =
    "INSERT INTO data_keys (" BIFROST_DATA_KEY_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kGetDataKey =
    "SELECT " BIFROST_DATA_KEY_COLUMNS " FROM data_keys WHERE id = ?1";
// The active key first, then the retired ones by age.
constexpr std::string_view kListScopeDataKeysGlobal =
    "SELECT " BIFROST_DATA_KEY_COLUMNS
    " FROM data_keys WHERE org_id IS NULL AND "
    "purpose = 'config' ORDER BY state = 'active' DESC, created_at, id";
constexpr std::string_view kListScopeDataKeysOrg =
    "SELECT " BIFROST_DATA_KEY_COLUMNS
    " FROM data_keys WHERE org_id = ?1 AND "
    "purpose = 'config' ORDER BY state = 'active' DESC, created_at, id";
constexpr std::string_view kListDataKeys =
    "SELECT " BIFROST_DATA_KEY_COLUMNS " FROM data_keys WHERE id > ?1 ORDER BY id LIMIT ?2";
#undef BIFROST_DATA_KEY_COLUMNS
constexpr std::string_view kRewrapDataKey =
    "UPDATE data_keys SET wrapped = ?2, master_key_id = ?3 WHERE id = ?1 AND master_key_id = ?4";
constexpr std::string_view kSetDataKeyState = "UPDATE data_keys SET state = ?2 WHERE id = ?1";
constexpr std::string_view kDeleteDataKey = "DELETE FROM data_keys WHERE id = ?1";

#define BIFROST_KEY_JOB_COLUMNS "id, kind, target, actor, started_at, finished_at"
constexpr std::string_view kInsertKeyJob =
    "INSERT INTO key_jobs (kind, target, actor, started_at, finished_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
constexpr std::string_view kGetUnfinishedKeyJob =
    "SELECT " BIFROST_KEY_JOB_COLUMNS
    " FROM key_jobs WHERE kind = ?1 AND target = ?2 AND "
    "finished_at IS NULL ORDER BY id DESC LIMIT 1";
constexpr std::string_view kListUnfinishedKeyJobs =
    "SELECT " BIFROST_KEY_JOB_COLUMNS " FROM key_jobs WHERE finished_at IS NULL ORDER BY id";
constexpr std::string_view kListKeyJobs =
    "SELECT " BIFROST_KEY_JOB_COLUMNS " FROM key_jobs ORDER BY id";
constexpr std::string_view kRestoreKeyJob =
    "INSERT INTO key_jobs (" BIFROST_KEY_JOB_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
#undef BIFROST_KEY_JOB_COLUMNS
// The first finishing time wins, as for token revocation.
constexpr std::string_view kFinishKeyJob =
    "UPDATE key_jobs SET finished_at = coalesce(finished_at, ?2) WHERE id = ?1";

// The columns every execution query returns, in ReadExecutionRow's order.
#define BIFROST_EXECUTION_COLUMNS                                                           \
  "id, workflow, org_id, caller_id, caller_name, status, parameters, result, error, logs, " \
  "logs_truncated, timeout_seconds, created_at, started_at, finished_at, node_id, "         \
  "cancel_requested_by"
constexpr std::string_view kInsertExecution =
    "INSERT INTO executions (" BIFROST_EXECUTION_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
constexpr std::string_view kGetExecution =
    "SELECT " BIFROST_EXECUTION_COLUMNS " FROM executions WHERE id = ?1";
// ListExecutions' statement is assembled from these fixed parts (see ExecutionListSql), one
// statement per combination of set filter fields, so that a set org_id can use its index.
// Each field has its own parameter number whichever others are present.
constexpr std::string_view kListExecutionsHead =
    "SELECT " BIFROST_EXECUTION_COLUMNS " FROM executions";
#undef BIFROST_EXECUTION_COLUMNS
constexpr std::string_view kListExecutionsTail = " ORDER BY created_at DESC, id DESC LIMIT ?5";
constexpr std::string_view kExecutionFilterOrg = "org_id = ?1";
constexpr std::string_view kExecutionFilterWorkflow = "workflow = ?2";
constexpr std::string_view kExecutionFilterStatus = "status = ?3";
constexpr std::string_view kExecutionFilterNode = "node_id = ?6";
constexpr std::string_view kExecutionFilterCancelRequested = "cancel_requested_by IS NOT NULL";
// Below the cursor execution in the listing order. When it does not exist the subquery has
// no row, the comparison is NULL, and the page is empty.
constexpr std::string_view kExecutionFilterBeforeId =
    "(created_at, id) < (SELECT created_at, id FROM executions WHERE id = ?4)";
// Only what the run changes; the rest of the row is kept.
constexpr std::string_view kUpdateExecution =
    "UPDATE executions SET status = ?2, result = ?3, error = ?4, logs = ?5, "
    "logs_truncated = ?6, started_at = ?7, finished_at = ?8 WHERE id = ?1";
// Unfinished executions of other nodes that have no fresh heartbeat. The status condition is
// the one of executions_unfinished, so the sweep reads only that index.
constexpr std::string_view kFailOrphanedExecutions =
    "UPDATE executions SET status = 'failed', error = ?1, finished_at = ?2 "
    "WHERE status IN ('pending', 'running') AND node_id != ?3 "
    "AND node_id NOT IN (SELECT id FROM nodes WHERE heartbeat_at >= ?4)";
constexpr std::string_view kDeleteStaleNodes =
    "DELETE FROM nodes WHERE heartbeat_at < ?2 AND id != ?1";
// The first request is kept.
constexpr std::string_view kRequestExecutionCancel =
    "UPDATE executions SET cancel_requested_by = coalesce(cancel_requested_by, ?2) "
    "WHERE id = ?1 AND status IN ('pending', 'running')";
constexpr std::string_view kGetExecutionStatus = "SELECT status FROM executions WHERE id = ?1";
constexpr std::string_view kUpsertNode =
    "INSERT INTO nodes (id, name, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, heartbeat_at = excluded.heartbeat_at";
constexpr std::string_view kDeleteNode = "DELETE FROM nodes WHERE id = ?1";
constexpr std::string_view kListNodes =
    "SELECT id, name, started_at, heartbeat_at FROM nodes ORDER BY started_at, id";

constexpr std::string_view kInsertToken =
    "INSERT INTO tokens (id, name, org_id, role, hash, created_at, created_by, expires_at, "
    "last_used_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr std::string_view kGetTokenById =
    "SELECT id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, "
    "revoked_at FROM tokens WHERE id = ?1";
constexpr std::string_view kGetTokenByHash =
    "SELECT id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, "
    "revoked_at FROM tokens WHERE hash = ?1";
constexpr std::string_view kListTokensAll =
    "SELECT id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, "
    "revoked_at FROM tokens ORDER BY created_at DESC, id";
constexpr std::string_view kListTokensOrg =
    "SELECT id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, "
    "revoked_at FROM tokens WHERE org_id = ?1 ORDER BY created_at DESC, id";
// The first revocation wins; last use only moves forward.
constexpr std::string_view kRevokeToken =
    "UPDATE tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1";
constexpr std::string_view kTouchToken =
    "UPDATE tokens SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE id = ?1";

// The columns every user query returns, in ReadUserRow's order.
#define BIFROST_USER_COLUMNS                                                     \
  "id, email, org_id, role, password_hash, created_at, created_by, updated_at, " \
  "disabled_at, last_login_at"
constexpr std::string_view kInsertUser =
    "INSERT INTO users (" BIFROST_USER_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr std::string_view kGetUserById =
    "SELECT " BIFROST_USER_COLUMNS " FROM users WHERE id = ?1";
constexpr std::string_view kGetUserByEmail =
    "SELECT " BIFROST_USER_COLUMNS " FROM users WHERE email = ?1";
// By email; the UNIQUE index on email, or users_org_email for one org, gives the order.
constexpr std::string_view kListUsersAll =
    "SELECT " BIFROST_USER_COLUMNS " FROM users ORDER BY email";
constexpr std::string_view kListUsersOrg =
    "SELECT " BIFROST_USER_COLUMNS " FROM users WHERE org_id = ?1 ORDER BY email";
#undef BIFROST_USER_COLUMNS
// Only what may change; id, email, org_id, created_at and created_by are kept.
constexpr std::string_view kUpdateUser =
    "UPDATE users SET role = ?2, password_hash = ?3, updated_at = ?4, disabled_at = ?5, "
    "last_login_at = ?6 WHERE id = ?1";

#define BIFROST_SESSION_COLUMNS \
  "id, user_id, hash, created_at, last_seen_at, expires_at, client_address"
constexpr std::string_view kInsertSession =
    "INSERT INTO sessions (" BIFROST_SESSION_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kGetSessionById =
    "SELECT " BIFROST_SESSION_COLUMNS " FROM sessions WHERE id = ?1";
constexpr std::string_view kGetSessionByHash =
    "SELECT " BIFROST_SESSION_COLUMNS " FROM sessions WHERE hash = ?1";
constexpr std::string_view kListSessions =
    "SELECT " BIFROST_SESSION_COLUMNS " FROM sessions ORDER BY id";
#undef BIFROST_SESSION_COLUMNS
// Last activity only moves forward.
constexpr std::string_view kTouchSession =
    "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1";
constexpr std::string_view kDeleteSession = "DELETE FROM sessions WHERE id = ?1";
constexpr std::string_view kDeleteUserSessions = "DELETE FROM sessions WHERE user_id = ?1";
// Both conditions have an index, so SQLite reads only the matching rows (a multi-index OR).
constexpr std::string_view kDeleteExpiredSessions =
    "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2";

constexpr std::string_view kListKeyChecks =
    "SELECT key_id, check_value, added_at FROM key_checks ORDER BY added_at, key_id";
constexpr std::string_view kInsertKeyCheck =
    "INSERT INTO key_checks (key_id, check_value, added_at) VALUES (?1, ?2, ?3)";

// The columns every audit query returns, in ReadAuditRow's order. A macro so that the list
// is written once and the statements stay constant literals.
#define BIFROST_AUDIT_COLUMNS                                                              \
  "seq, time, action, outcome, org_id, config_key, actor_id, actor_name, client_address, " \
  "request_id, execution_id, detail, key_id, prev_mac, mac"

constexpr std::string_view kInsertAudit =
    "INSERT INTO audit_log (" BIFROST_AUDIT_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
constexpr std::string_view kGetLastAudit =
    "SELECT " BIFROST_AUDIT_COLUMNS " FROM audit_log ORDER BY seq DESC LIMIT 1";
constexpr std::string_view kScanAudit =
    "SELECT " BIFROST_AUDIT_COLUMNS " FROM audit_log WHERE seq >= ?1 ORDER BY seq LIMIT ?2";
// ListAudit's statement is assembled from these fixed parts (see AuditListSql): one
// statement per combination of set filter fields, so that a set org_id can use its index
// (a single "(?1 IS NULL OR org_id = ?1)" statement could not). Each field has its own
// parameter number whichever others are present.
constexpr std::string_view kListAuditHead = "SELECT " BIFROST_AUDIT_COLUMNS " FROM audit_log";
constexpr std::string_view kListAuditTail = " ORDER BY seq DESC LIMIT ?9";
#undef BIFROST_AUDIT_COLUMNS
constexpr std::string_view kAuditFilterOrg = "org_id = ?1";
constexpr std::string_view kAuditFilterConfigKey = "config_key = ?2";
constexpr std::string_view kAuditFilterAction = "action = ?3";
constexpr std::string_view kAuditFilterActor = "(actor_id = ?4 OR actor_name = ?4)";
constexpr std::string_view kAuditFilterOutcome = "outcome = ?5";
constexpr std::string_view kAuditFilterSince = "time >= ?6";
constexpr std::string_view kAuditFilterUntil = "time < ?7";
constexpr std::string_view kAuditFilterBeforeSeq = "seq < ?8";
// min() gives one row, NULL when no record is that recent. SQLite answers it by walking seq
// upwards to the first match: cheap for retention, whose cutoff is near the start of the log.
constexpr std::string_view kFirstAuditSeqSince = "SELECT min(seq) FROM audit_log WHERE time >= ?1";
constexpr std::string_view kGetAuditCheckpoint =
    "SELECT first_seq, prev_mac, created_at, key_id, mac FROM audit_checkpoint WHERE id = 1";
constexpr std::string_view kPruneAudit = "DELETE FROM audit_log WHERE seq < ?1";
constexpr std::string_view kPutAuditCheckpoint =
    "INSERT INTO audit_checkpoint (id, first_seq, prev_mac, created_at, key_id, mac) "
    "VALUES (1, ?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET first_seq = excluded.first_seq, "
    "prev_mac = excluded.prev_mac, created_at = excluded.created_at, key_id = excluded.key_id, "
    "mac = excluded.mac";

// `head`, then the conditions that are set joined by AND after WHERE, then `tail`: a
// statement of constant parts only, whose values are bound by number.
std::string FilteredSql(std::string_view head,
                        std::initializer_list<std::pair<bool, std::string_view>> conditions,
                        std::string_view tail) {
  std::string sql(head);
  std::string_view joiner = " WHERE ";
  for (const auto& [set, condition] : conditions) {
    if (!set) continue;
    sql += joiner;
    sql += condition;
    joiner = " AND ";
  }
  sql += tail;
  return sql;
}

// The ListAudit statement for the fields set in `filter`. At most 2^8 distinct texts, each
// prepared once per connection.
std::string AuditListSql(const AuditFilter& filter) {
  return FilteredSql(kListAuditHead,
                     {{filter.org_id.has_value(), kAuditFilterOrg},
                      {filter.config_key.has_value(), kAuditFilterConfigKey},
                      {filter.action.has_value(), kAuditFilterAction},
                      {filter.actor.has_value(), kAuditFilterActor},
                      {filter.outcome.has_value(), kAuditFilterOutcome},
                      {filter.since.has_value(), kAuditFilterSince},
                      {filter.until.has_value(), kAuditFilterUntil},
                      {filter.before_seq.has_value(), kAuditFilterBeforeSeq}},
                     kListAuditTail);
}

// The ListExecutions statement for the fields set in `filter`. At most 2^4 distinct texts,
// each prepared once per connection.
std::string ExecutionListSql(const ExecutionFilter& filter) {
  return FilteredSql(kListExecutionsHead,
                     {{filter.org_id.has_value(), kExecutionFilterOrg},
                      {filter.workflow.has_value(), kExecutionFilterWorkflow},
                      {filter.status.has_value(), kExecutionFilterStatus},
                      {filter.before_id.has_value(), kExecutionFilterBeforeId},
                      {filter.node_id.has_value(), kExecutionFilterNode},
                      {filter.cancel_requested, kExecutionFilterCancelRequested}},
                     kListExecutionsTail);
}

}  // namespace

// ---- SqliteTxn ----

// A transaction on one connection: the writer (holding the writer slot) or a reader
// (borrowed from the pool). Resources go back as soon as the transaction ends (Commit, or
// the destructor's rollback).
class SqliteTxn final : public Txn {
 public:
  // Takes over `connection`, already acquired from the store: the writer (whose slot the
  // caller holds) or a reader from the pool.
  SqliteTxn(SqliteStore* store, Connection* connection, TxnMode mode)
      : store_(store), connection_(connection), mode_(mode) {
    store_->live_txns_.fetch_add(1);
  }
  SqliteTxn(const SqliteTxn&) = delete;
  SqliteTxn& operator=(const SqliteTxn&) = delete;

  ~SqliteTxn() override {
    if (active_) RollBack();
    Release();
    store_->live_txns_.fetch_sub(1);
  }

  // Opens the SQLite transaction. Called once, right after construction.
  Status Start() {
    // Defensive: a connection handed out must never be inside a transaction.
    if (connection_->InTransaction()) RollBack();
    if (mode_ == TxnMode::kWrite) {
      BIFROST_RETURN_IF_ERROR(Exec(kBeginImmediate, "begin write transaction"));
      active_ = true;
      return Ok();
    }
    BIFROST_RETURN_IF_ERROR(Exec(kBeginDeferred, "begin read transaction"));
    active_ = true;
    Status pinned = Exec(kPinSnapshot, "begin read transaction");
    if (!pinned) {
      RollBack();
      return pinned;
    }
    return Ok();
  }

  Status Commit() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    Status committed = Exec(kCommit, "commit");
    if (!committed) {
      RollBack();
    }
    active_ = false;
    Release();
    return committed;
  }

  // ---- Organizations

  Status InsertOrg(const OrgRow& org) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertOrg"));
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kInsertOrg, "insert org"));
      stmt.BindText(1, org.id);
      stmt.BindText(2, org.name);
      stmt.BindInt64(3, org.created_at);
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() != ErrorCode::kAlreadyExists) {
      return Fail(Annotate(inserted.error(), "organization '" + org.id + "'"));
    }
    // Which of the two unique columns collided?
    BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> same_id, GetOrgById(org.id));
    if (same_id.has_value()) {
      return Fail(ErrorCode::kAlreadyExists, "organization '" + org.id + "' already exists");
    }
    return Fail(ErrorCode::kAlreadyExists,
                "an organization named '" + org.name + "' already exists");
  }

  Result<std::optional<OrgRow>> GetOrgById(std::string_view id) override {
    return GetOrg(kGetOrgById, id, "get org by id");
  }

  Result<std::optional<OrgRow>> GetOrgByName(std::string_view name) override {
    return GetOrg(kGetOrgByName, name, "get org by name");
  }

  Result<std::vector<OrgRow>> ListOrgs() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kListOrgs, "list orgs"));
    std::vector<OrgRow> orgs;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      orgs.push_back(ReadOrgRow(stmt));
    }
    return orgs;
  }

  Status DeleteOrg(std::string_view id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteOrg"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kDeleteOrg, "delete org"));
    stmt.BindText(1, id);
    Status deleted = stmt.Run();
    if (!deleted) {
      return Fail(Annotate(deleted.error(), "organization '" + std::string(id) + "'"));
    }
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, "organization '" + std::string(id) + "' does not exist");
    }
    return Ok();
  }

  // ---- Config rows

  Result<std::optional<ConfigRow>> GetConfig(const Scope& scope, std::string_view key) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(scope.is_global() ? kGetConfigGlobal : kGetConfigOrg, "get config"));
    stmt.BindText(1, key);
    if (!scope.is_global()) stmt.BindText(2, scope.org_id());
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<ConfigRow>();
    return std::optional<ConfigRow>(ReadConfigRow(stmt));
  }

  Result<std::vector<ConfigRow>> ListConfigs(const Scope& scope) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(scope.is_global() ? kListConfigsGlobal : kListConfigsOrg,
                             "list configs"));
    if (!scope.is_global()) stmt.BindText(1, scope.org_id());
    return ReadConfigRows(stmt);
  }

  Result<ConfigRow> InsertConfig(const ConfigRow& row) override {
    return InsertConfigRow(row, std::nullopt);
  }

  Status RestoreConfig(const ConfigRow& row) override {
    if (row.version < 1) {
      return Fail(ErrorCode::kInvalidArgument,
                  ConfigSubject(row.scope, row.key) + ": version must be at least 1");
    }
    BIFROST_ASSIGN_OR_RETURN(const ConfigRow restored, InsertConfigRow(row, row.version));
    (void)restored;
    return Ok();
  }

  // InsertConfig, or with a version RestoreConfig.
  Result<ConfigRow> InsertConfigRow(const ConfigRow& row, std::optional<std::int64_t> version) {
    BIFROST_RETURN_IF_ERROR(CheckWritable(version ? "RestoreConfig" : "InsertConfig"));
    BIFROST_RETURN_IF_ERROR(ValidateConfigRow(row));
    if (!row.scope.is_global()) {
      BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, GetOrgById(row.scope.org_id()));
      if (!org.has_value()) {
        return Fail(ErrorCode::kFailedPrecondition,
                    "organization '" + row.scope.org_id() + "' does not exist");
      }
    }
    Result<ConfigRow> inserted = [&]() -> Result<ConfigRow> {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(version ? kRestoreConfig : kInsertConfig,
                                                    version ? "restore config" : "insert config"));
      if (version) stmt.BindInt64(10, *version);
      if (row.scope.is_global()) {
        stmt.BindNull(1);
      } else {
        stmt.BindText(1, row.scope.org_id());
      }
      stmt.BindText(2, row.key);
      BindConfigContent(stmt, row, 3);
      stmt.BindInt64(7, row.created_at);
      stmt.BindInt64(8, row.updated_at);
      stmt.BindText(9, row.updated_by);
      return ReadOneConfigRow(stmt);
    }();
    if (inserted) return inserted;
    if (inserted.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(ErrorCode::kAlreadyExists, ConfigSubject(row.scope, row.key) + " already exists");
    }
    return Fail(Annotate(inserted.error(), ConfigSubject(row.scope, row.key)));
  }

  Result<ConfigRow> UpdateConfig(const ConfigRow& row, std::int64_t expected_version) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("UpdateConfig"));
    BIFROST_RETURN_IF_ERROR(ValidateConfigRow(row));
    BIFROST_ASSIGN_OR_RETURN(const std::int64_t id,
                             FindForChange(row.scope, row.key, expected_version));
    Result<ConfigRow> updated = [&]() -> Result<ConfigRow> {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kUpdateConfig, "update config"));
      stmt.BindInt64(1, id);
      BindConfigContent(stmt, row, 2);
      stmt.BindInt64(6, row.updated_at);
      stmt.BindText(7, row.updated_by);
      return ReadOneConfigRow(stmt);
    }();
    if (!updated) return Fail(Annotate(updated.error(), ConfigSubject(row.scope, row.key)));
    return updated;
  }

  Status DeleteConfig(const Scope& scope, std::string_view key,
                      std::optional<std::int64_t> expected_version) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteConfig"));
    BIFROST_ASSIGN_OR_RETURN(const std::int64_t id, FindForChange(scope, key, expected_version));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kDeleteConfig, "delete config"));
    stmt.BindInt64(1, id);
    Status deleted = stmt.Run();
    if (!deleted) return Fail(Annotate(deleted.error(), ConfigSubject(scope, key)));
    return Ok();
  }

  Result<std::vector<ConfigRow>> ListConfigsNotSealedBy(std::string_view key_id,
                                                        std::size_t limit) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt, connection_->Prepare(kListNotSealedBy, "list configs not sealed by a key"));
    stmt.BindText(1, key_id);
    stmt.BindInt64(2, LimitValue(limit));
    return ReadConfigRows(stmt);
  }

  Status ResealConfig(const Scope& scope, std::string_view key, std::string_view expected_value,
                      std::string_view value, std::string_view key_id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("ResealConfig"));
    if (key_id.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  ConfigSubject(scope, key) + ": a sealed value needs a key_id");
    }
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(scope.is_global() ? kResealConfigGlobal : kResealConfigOrg,
                             "reseal config"));
    stmt.BindText(1, key);
    stmt.BindText(2, expected_value);
    stmt.BindText(3, value);
    stmt.BindText(4, key_id);
    if (!scope.is_global()) stmt.BindText(5, scope.org_id());
    Status resealed = stmt.Run();
    if (!resealed) return Fail(Annotate(resealed.error(), ConfigSubject(scope, key)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kConflict, ConfigSubject(scope, key) +
                                            " was changed, deleted or re-created since it was "
                                            "read; it was not re-sealed");
    }
    return Ok();
  }

  Result<std::vector<ConfigRow>> ListScopeConfigsNotSealedBy(const Scope& scope,
                                                             std::string_view key_id,
                                                             std::size_t limit) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(scope.is_global() ? kListScopeNotSealedByGlobal
                                                                    : kListScopeNotSealedByOrg,
                                                  "list a scope's configs not sealed by a key"));
    stmt.BindText(1, key_id);
    stmt.BindInt64(2, LimitValue(limit));
    if (!scope.is_global()) stmt.BindText(3, scope.org_id());
    return ReadConfigRows(stmt);
  }

  Result<std::vector<SealedCount>> CountSealedConfigs() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kCountSealedConfigs, "count sealed configs"));
    std::vector<SealedCount> counts;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      counts.push_back(SealedCount{
          .scope = stmt.ColumnIsNull(0) ? Scope::Global() : Scope::Org(stmt.ColumnText(0)),
          .key_id = stmt.ColumnText(1),
          .count = stmt.ColumnInt64(2)});
    }
    return counts;
  }

  // ---- Data keys

  Status InsertDataKey(const DataKeyRow& row) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertDataKey"));
    BIFROST_RETURN_IF_ERROR(ValidateDataKeyRow(row));
    if (!row.scope.is_global()) {
      BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, GetOrgById(row.scope.org_id()));
      if (!org.has_value()) {
        return Fail(ErrorCode::kFailedPrecondition, DataKeySubject(row.id) + ": organization '" +
                                                        row.scope.org_id() + "' does not exist");
      }
    }
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kInsertDataKey, "insert data key"));
      stmt.BindText(1, row.id);
      stmt.BindText(2, row.purpose);
      if (row.scope.is_global()) {
        stmt.BindNull(3);
      } else {
        stmt.BindText(3, row.scope.org_id());
      }
      stmt.BindText(4, row.state);
      stmt.BindText(5, row.wrapped);
      stmt.BindText(6, row.master_key_id);
      stmt.BindInt64(7, row.created_at);
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() != ErrorCode::kAlreadyExists) {
      return Fail(Annotate(inserted.error(), DataKeySubject(row.id)));
    }
    // Which unique rule: the id, or one active key per scope?
    BIFROST_ASSIGN_OR_RETURN(const std::optional<DataKeyRow> same_id, GetDataKey(row.id));
    if (same_id.has_value()) {
      return Fail(ErrorCode::kAlreadyExists, DataKeySubject(row.id) + " already exists");
    }
    return Fail(ErrorCode::kAlreadyExists, DataKeySubject(row.id) + ": scope '" +
                                               ScopeText(row.scope) +
                                               "' already has an active data key");
  }

  Result<std::optional<DataKeyRow>> GetDataKey(std::string_view id) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kGetDataKey, "get data key"));
    stmt.BindText(1, id);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<DataKeyRow>();
    return std::optional<DataKeyRow>(ReadDataKeyRow(stmt));
  }

  Result<std::vector<DataKeyRow>> ListScopeDataKeys(const Scope& scope) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(scope.is_global() ? kListScopeDataKeysGlobal : kListScopeDataKeysOrg,
                             "list a scope's data keys"));
    if (!scope.is_global()) stmt.BindText(1, scope.org_id());
    return ReadDataKeyRows(stmt);
  }

  Result<std::vector<DataKeyRow>> ListDataKeys(std::string_view after_id,
                                               std::size_t limit) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kListDataKeys, "list data keys"));
    stmt.BindText(1, after_id);
    stmt.BindInt64(2, LimitValue(limit));
    return ReadDataKeyRows(stmt);
  }

  Status RewrapDataKey(std::string_view id, std::string_view wrapped,
                       std::string_view master_key_id,
                       std::string_view expected_master_key_id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("RewrapDataKey"));
    if (wrapped.empty() || master_key_id.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  DataKeySubject(id) + " needs a wrapped key and a master key id");
    }
    {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kRewrapDataKey, "re-wrap data key"));
      stmt.BindText(1, id);
      stmt.BindText(2, wrapped);
      stmt.BindText(3, master_key_id);
      stmt.BindText(4, expected_master_key_id);
      Status rewrapped = stmt.Run();
      if (!rewrapped) return Fail(Annotate(rewrapped.error(), DataKeySubject(id)));
      if (connection_->Changes() == 1) return Ok();
    }
    BIFROST_ASSIGN_OR_RETURN(const std::optional<DataKeyRow> current, GetDataKey(id));
    if (!current.has_value()) {
      return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
    }
    return Fail(ErrorCode::kConflict, DataKeySubject(id) + " is wrapped by master key '" +
                                          current->master_key_id + "', not the expected '" +
                                          std::string(expected_master_key_id) + "'");
  }

  Status SetDataKeyState(std::string_view id, std::string_view state) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("SetDataKeyState"));
    if (!IsDataKeyState(state)) {
      return Fail(ErrorCode::kInvalidArgument,
                  DataKeySubject(id) + ": unknown state '" + std::string(state) + "'");
    }
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kSetDataKeyState, "set data key state"));
    stmt.BindText(1, id);
    stmt.BindText(2, state);
    Status set = stmt.Run();
    if (!set) {
      if (set.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(ErrorCode::kAlreadyExists,
                    DataKeySubject(id) + ": its scope already has an active data key");
      }
      return Fail(Annotate(set.error(), DataKeySubject(id)));
    }
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
    }
    return Ok();
  }

  Status DeleteDataKey(std::string_view id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteDataKey"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kDeleteDataKey, "delete data key"));
    stmt.BindText(1, id);
    Status deleted = stmt.Run();
    if (!deleted) return Fail(Annotate(deleted.error(), DataKeySubject(id)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
    }
    return Ok();
  }

  // ---- Key rotation jobs

  Result<std::int64_t> InsertKeyJob(const KeyJobRow& job) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertKeyJob"));
    if (job.kind != "master" && job.kind != "data") {
      return Fail(ErrorCode::kInvalidArgument, "key job has unknown kind '" + job.kind + "'");
    }
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kInsertKeyJob, "insert key job"));
    stmt.BindText(1, job.kind);
    stmt.BindText(2, job.target);
    stmt.BindText(3, job.actor);
    stmt.BindInt64(4, job.started_at);
    BindOptionalInt64(stmt, 5, job.finished_at);
    Result<bool> has_row = stmt.Step();
    if (!has_row) return Fail(Annotate(has_row.error(), "key job"));
    if (!*has_row) return Fail(ErrorCode::kInternal, "insert key job returned no id");
    const std::int64_t id = stmt.ColumnInt64(0);
    BIFROST_RETURN_IF_ERROR(stmt.Run());
    return id;
  }

  Result<std::optional<KeyJobRow>> GetUnfinishedKeyJob(std::string_view kind,
                                                       std::string_view target) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kGetUnfinishedKeyJob, "get unfinished key job"));
    stmt.BindText(1, kind);
    stmt.BindText(2, target);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<KeyJobRow>();
    return std::optional<KeyJobRow>(ReadKeyJobRow(stmt));
  }

  Status RestoreKeyJob(const KeyJobRow& job) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("RestoreKeyJob"));
    if (job.kind != "master" && job.kind != "data") {
      return Fail(ErrorCode::kInvalidArgument, "key job has unknown kind '" + job.kind + "'");
    }
    if (job.id < 1) return Fail(ErrorCode::kInvalidArgument, "key job id must be at least 1");
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kRestoreKeyJob, "restore key job"));
    stmt.BindInt64(1, job.id);
    stmt.BindText(2, job.kind);
    stmt.BindText(3, job.target);
    stmt.BindText(4, job.actor);
    stmt.BindInt64(5, job.started_at);
    BindOptionalInt64(stmt, 6, job.finished_at);
    Status inserted = stmt.Run();
    if (!inserted) {
      if (inserted.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(ErrorCode::kAlreadyExists, KeyJobSubject(job.id) + " already exists");
      }
      return Fail(Annotate(inserted.error(), KeyJobSubject(job.id)));
    }
    return Ok();
  }

  Result<std::vector<KeyJobRow>> ListKeyJobs() override {
    return ListKeyJobRows(kListKeyJobs, "list key jobs");
  }

  Result<std::vector<KeyJobRow>> ListUnfinishedKeyJobs() override {
    return ListKeyJobRows(kListUnfinishedKeyJobs, "list unfinished key jobs");
  }

  Result<std::vector<KeyJobRow>> ListKeyJobRows(std::string_view sql, std::string_view what) {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    std::vector<KeyJobRow> jobs;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      jobs.push_back(ReadKeyJobRow(stmt));
    }
    return jobs;
  }

  Status FinishKeyJob(std::int64_t id, UnixMicros at) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("FinishKeyJob"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kFinishKeyJob, "finish key job"));
    stmt.BindInt64(1, id);
    stmt.BindInt64(2, at);
    Status finished = stmt.Run();
    if (!finished) return Fail(Annotate(finished.error(), KeyJobSubject(id)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, KeyJobSubject(id) + " does not exist");
    }
    return Ok();
  }

  // ---- Workflow executions

  Status InsertExecution(const ExecutionRow& row) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertExecution"));
    BIFROST_RETURN_IF_ERROR(ValidateExecutionStatus(row));
    BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, GetOrgById(row.org_id));
    if (!org.has_value()) {
      return Fail(ErrorCode::kFailedPrecondition,
                  ExecutionSubject(row.id) + ": organization '" + row.org_id + "' does not exist");
    }
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kInsertExecution, "insert execution"));
      stmt.BindText(1, row.id);
      stmt.BindText(2, row.workflow);
      stmt.BindText(3, row.org_id);
      stmt.BindText(4, row.caller_id);
      stmt.BindText(5, row.caller_name);
      stmt.BindText(6, row.status);
      stmt.BindText(7, row.parameters);
      BindExecutionOutcome(stmt, row, 8);
      stmt.BindInt64(12, row.timeout_seconds);
      stmt.BindInt64(13, row.created_at);
      BindOptionalInt64(stmt, 14, row.started_at);
      BindOptionalInt64(stmt, 15, row.finished_at);
      stmt.BindText(16, row.node_id);
      if (row.cancel_requested_by) {
        stmt.BindText(17, *row.cancel_requested_by);
      } else {
        stmt.BindNull(17);
      }
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(ErrorCode::kAlreadyExists, ExecutionSubject(row.id) + " already exists");
    }
    return Fail(Annotate(inserted.error(), ExecutionSubject(row.id)));
  }

  Status UpdateExecution(const ExecutionRow& row) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("UpdateExecution"));
    BIFROST_RETURN_IF_ERROR(ValidateExecutionStatus(row));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kUpdateExecution, "update execution"));
    stmt.BindText(1, row.id);
    stmt.BindText(2, row.status);
    BindExecutionOutcome(stmt, row, 3);
    BindOptionalInt64(stmt, 7, row.started_at);
    BindOptionalInt64(stmt, 8, row.finished_at);
    Status updated = stmt.Run();
    if (!updated) return Fail(Annotate(updated.error(), ExecutionSubject(row.id)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, ExecutionSubject(row.id) + " does not exist");
    }
    return Ok();
  }

  Result<std::optional<ExecutionRow>> GetExecution(std::string_view id) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kGetExecution, "get execution"));
    stmt.BindText(1, id);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<ExecutionRow>();
    return std::optional<ExecutionRow>(ReadExecutionRow(stmt));
  }

  Result<std::vector<ExecutionRow>> ListExecutions(const ExecutionFilter& filter) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    const std::string sql = ExecutionListSql(filter);
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, "list executions"));
    if (filter.org_id) stmt.BindText(1, *filter.org_id);
    if (filter.workflow) stmt.BindText(2, *filter.workflow);
    if (filter.status) stmt.BindText(3, *filter.status);
    if (filter.before_id) stmt.BindText(4, *filter.before_id);
    stmt.BindInt64(5, LimitValue(filter.limit));
    if (filter.node_id) stmt.BindText(6, *filter.node_id);
    std::vector<ExecutionRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(ReadExecutionRow(stmt));
    }
    return rows;
  }

  Result<std::int64_t> FailOrphanedExecutions(std::string_view error, UnixMicros at,
                                              std::string_view self_node,
                                              UnixMicros stale_before) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("FailOrphanedExecutions"));
    std::int64_t failed_count = 0;
    {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kFailOrphanedExecutions,
                                                                    "fail orphaned executions"));
      stmt.BindText(1, error);
      stmt.BindInt64(2, at);
      stmt.BindText(3, self_node);
      stmt.BindInt64(4, stale_before);
      Status failed = stmt.Run();
      if (!failed) return Fail(Annotate(failed.error(), "orphaned executions"));
      failed_count = connection_->Changes();
    }
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kDeleteStaleNodes, "delete stale nodes"));
    stmt.BindText(1, self_node);
    stmt.BindInt64(2, stale_before);
    Status deleted = stmt.Run();
    if (!deleted) return Fail(Annotate(deleted.error(), "stale nodes"));
    return failed_count;
  }

  Status RequestExecutionCancel(std::string_view id, std::string_view by) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("RequestExecutionCancel"));
    {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kRequestExecutionCancel,
                                                                    "request execution cancel"));
      stmt.BindText(1, id);
      stmt.BindText(2, by);
      Status requested = stmt.Run();
      if (!requested) return Fail(Annotate(requested.error(), ExecutionSubject(id)));
      if (connection_->Changes() > 0) return Ok();
    }
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kGetExecutionStatus, "get execution status"));
    stmt.BindText(1, id);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return Fail(ErrorCode::kNotFound, ExecutionSubject(id) + " does not exist");
    return Fail(ErrorCode::kFailedPrecondition,
                ExecutionSubject(id) + " has already finished (" + stmt.ColumnText(0) + ")");
  }

  // ---- Server nodes

  Status UpsertNode(const NodeRow& node) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("UpsertNode"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kUpsertNode, "upsert node"));
    stmt.BindText(1, node.id);
    stmt.BindText(2, node.name);
    stmt.BindInt64(3, node.started_at);
    stmt.BindInt64(4, node.heartbeat_at);
    Status upserted = stmt.Run();
    if (!upserted) return Fail(Annotate(upserted.error(), "node '" + node.id + "'"));
    return Ok();
  }

  Status DeleteNode(std::string_view id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteNode"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kDeleteNode, "delete node"));
    stmt.BindText(1, id);
    Status deleted = stmt.Run();
    const std::string subject = "node '" + std::string(id) + "'";
    if (!deleted) return Fail(Annotate(deleted.error(), subject));
    if (connection_->Changes() == 0) return Fail(ErrorCode::kNotFound, subject + " does not exist");
    return Ok();
  }

  Result<std::vector<NodeRow>> ListNodes() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kListNodes, "list nodes"));
    std::vector<NodeRow> nodes;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      nodes.push_back({.id = stmt.ColumnText(0),
                       .name = stmt.ColumnText(1),
                       .started_at = stmt.ColumnInt64(2),
                       .heartbeat_at = stmt.ColumnInt64(3)});
    }
    return nodes;
  }

  // ---- Tokens

  Status InsertToken(const TokenRow& token) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertToken"));
    BIFROST_RETURN_IF_ERROR(ValidateTokenRow(token));
    if (token.org_id.has_value()) {
      BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, GetOrgById(*token.org_id));
      if (!org.has_value()) {
        return Fail(ErrorCode::kFailedPrecondition,
                    "organization '" + *token.org_id + "' does not exist");
      }
    }
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kInsertToken, "insert token"));
      stmt.BindText(1, token.id);
      stmt.BindText(2, token.name);
      stmt.BindOptionalText(3, token.org_id);
      stmt.BindText(4, token.role);
      stmt.BindText(5, token.hash);
      stmt.BindInt64(6, token.created_at);
      stmt.BindText(7, token.created_by);
      BindOptionalInt64(stmt, 8, token.expires_at);
      BindOptionalInt64(stmt, 9, token.last_used_at);
      BindOptionalInt64(stmt, 10, token.revoked_at);
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() != ErrorCode::kAlreadyExists) {
      return Fail(Annotate(inserted.error(), TokenSubject(token.id)));
    }
    // Which of the two unique columns collided? The hash is never named.
    BIFROST_ASSIGN_OR_RETURN(const std::optional<TokenRow> same_id, GetTokenById(token.id));
    if (same_id.has_value()) {
      return Fail(ErrorCode::kAlreadyExists, TokenSubject(token.id) + " already exists");
    }
    return Fail(ErrorCode::kAlreadyExists,
                TokenSubject(token.id) + ": another token has the same hash");
  }

  Result<std::optional<TokenRow>> GetTokenById(std::string_view id) override {
    return GetToken(kGetTokenById, id, "get token by id");
  }

  Result<std::optional<TokenRow>> GetTokenByHash(std::string_view hash) override {
    return GetToken(kGetTokenByHash, hash, "get token by hash");
  }

  Result<std::vector<TokenRow>> ListTokens(std::optional<std::string_view> org_id) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(org_id.has_value() ? kListTokensOrg : kListTokensAll, "list tokens"));
    if (org_id.has_value()) stmt.BindText(1, *org_id);
    std::vector<TokenRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(ReadTokenRow(stmt));
    }
    return rows;
  }

  Status RevokeToken(std::string_view id, UnixMicros at) override {
    return UpdateToken(kRevokeToken, "RevokeToken", "revoke token", id, at);
  }

  Status TouchToken(std::string_view id, UnixMicros at) override {
    return UpdateToken(kTouchToken, "TouchToken", "touch token", id, at);
  }

  // ---- Users

  Status InsertUser(const UserRow& user) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertUser"));
    BIFROST_RETURN_IF_ERROR(ValidateUserRow(user));
    if (user.org_id.has_value()) {
      BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, GetOrgById(*user.org_id));
      if (!org.has_value()) {
        return Fail(ErrorCode::kFailedPrecondition,
                    UserSubject(user.id) + ": organization '" + *user.org_id + "' does not exist");
      }
    }
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kInsertUser, "insert user"));
      stmt.BindText(1, user.id);
      stmt.BindText(2, user.email);
      stmt.BindOptionalText(3, user.org_id);
      stmt.BindText(4, user.role);
      stmt.BindText(5, user.password_hash);
      stmt.BindInt64(6, user.created_at);
      stmt.BindText(7, user.created_by);
      stmt.BindInt64(8, user.updated_at);
      BindOptionalInt64(stmt, 9, user.disabled_at);
      BindOptionalInt64(stmt, 10, user.last_login_at);
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() != ErrorCode::kAlreadyExists) {
      return Fail(Annotate(inserted.error(), UserSubject(user.id)));
    }
    // Which of the two unique columns collided?
    BIFROST_ASSIGN_OR_RETURN(const std::optional<UserRow> same_id, GetUserById(user.id));
    if (same_id.has_value()) {
      return Fail(ErrorCode::kAlreadyExists, UserSubject(user.id) + " already exists");
    }
    return Fail(ErrorCode::kAlreadyExists,
                UserSubject(user.id) + ": a user with email '" + user.email + "' already exists");
  }

  Result<std::optional<UserRow>> GetUserById(std::string_view id) override {
    return GetUser(kGetUserById, id, "get user by id");
  }

  Result<std::optional<UserRow>> GetUserByEmail(std::string_view email) override {
    return GetUser(kGetUserByEmail, email, "get user by email");
  }

  Result<std::vector<UserRow>> ListUsers(std::optional<std::string_view> org_id) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(org_id.has_value() ? kListUsersOrg : kListUsersAll, "list users"));
    if (org_id.has_value()) stmt.BindText(1, *org_id);
    std::vector<UserRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(ReadUserRow(stmt));
    }
    return rows;
  }

  Status UpdateUser(const UserRow& user) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("UpdateUser"));
    // The org is kept, so the new role is checked against the stored org, not user.org_id.
    BIFROST_ASSIGN_OR_RETURN(const std::optional<UserRow> current, GetUserById(user.id));
    if (!current.has_value()) {
      return Fail(ErrorCode::kNotFound, UserSubject(user.id) + " does not exist");
    }
    UserRow changed = *current;
    changed.role = user.role;
    BIFROST_RETURN_IF_ERROR(ValidateUserRow(changed));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kUpdateUser, "update user"));
    stmt.BindText(1, user.id);
    stmt.BindText(2, user.role);
    stmt.BindText(3, user.password_hash);
    stmt.BindInt64(4, user.updated_at);
    BindOptionalInt64(stmt, 5, user.disabled_at);
    BindOptionalInt64(stmt, 6, user.last_login_at);
    Status updated = stmt.Run();
    if (!updated) return Fail(Annotate(updated.error(), UserSubject(user.id)));
    return Ok();
  }

  // ---- Sessions

  Status InsertSession(const SessionRow& session) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertSession"));
    BIFROST_ASSIGN_OR_RETURN(const std::optional<UserRow> user, GetUserById(session.user_id));
    if (!user.has_value()) {
      return Fail(ErrorCode::kFailedPrecondition,
                  SessionSubject(session.id) + ": user '" + session.user_id + "' does not exist");
    }
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kInsertSession, "insert session"));
      stmt.BindText(1, session.id);
      stmt.BindText(2, session.user_id);
      stmt.BindText(3, session.hash);
      stmt.BindInt64(4, session.created_at);
      stmt.BindInt64(5, session.last_seen_at);
      stmt.BindInt64(6, session.expires_at);
      stmt.BindText(7, session.client_address);
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() != ErrorCode::kAlreadyExists) {
      return Fail(Annotate(inserted.error(), SessionSubject(session.id)));
    }
    // Which of the two unique columns collided? The hash is never named.
    BIFROST_ASSIGN_OR_RETURN(const std::optional<SessionRow> same_id,
                             GetSession(kGetSessionById, session.id, "get session by id"));
    if (same_id.has_value()) {
      return Fail(ErrorCode::kAlreadyExists, SessionSubject(session.id) + " already exists");
    }
    return Fail(ErrorCode::kAlreadyExists,
                SessionSubject(session.id) + ": another session has the same hash");
  }

  Result<std::optional<SessionRow>> GetSessionByHash(std::string_view hash) override {
    return GetSession(kGetSessionByHash, hash, "get session by hash");
  }

  Status TouchSession(std::string_view id, UnixMicros at) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("TouchSession"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kTouchSession, "touch session"));
    stmt.BindText(1, id);
    stmt.BindInt64(2, at);
    Status touched = stmt.Run();
    if (!touched) return Fail(Annotate(touched.error(), SessionSubject(id)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, SessionSubject(id) + " does not exist");
    }
    return Ok();
  }

  Status DeleteSession(std::string_view id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteSession"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kDeleteSession, "delete session"));
    stmt.BindText(1, id);
    Status deleted = stmt.Run();
    if (!deleted) return Fail(Annotate(deleted.error(), SessionSubject(id)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, SessionSubject(id) + " does not exist");
    }
    return Ok();
  }

  Result<std::int64_t> DeleteUserSessions(std::string_view user_id) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteUserSessions"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kDeleteUserSessions, "delete user sessions"));
    stmt.BindText(1, user_id);
    Status deleted = stmt.Run();
    if (!deleted) {
      return Fail(Annotate(deleted.error(), "sessions of " + UserSubject(user_id)));
    }
    return connection_->Changes();
  }

  Result<std::int64_t> DeleteExpiredSessions(UnixMicros now, UnixMicros idle_before) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteExpiredSessions"));
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt, connection_->Prepare(kDeleteExpiredSessions, "delete expired sessions"));
    stmt.BindInt64(1, now);
    stmt.BindInt64(2, idle_before);
    Status deleted = stmt.Run();
    if (!deleted) return Fail(Annotate(deleted.error(), "expired sessions"));
    return connection_->Changes();
  }

  Result<std::vector<SessionRow>> ListSessions() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(kListSessions, "list sessions"));
    std::vector<SessionRow> sessions;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      sessions.push_back(ReadSessionRow(stmt));
    }
    return sessions;
  }

  // ---- Key checks

  Result<std::vector<KeyCheckRow>> ListKeyChecks() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kListKeyChecks, "list key checks"));
    std::vector<KeyCheckRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(KeyCheckRow{stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnInt64(2)});
    }
    return rows;
  }

  Status InsertKeyCheck(const KeyCheckRow& row) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertKeyCheck"));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kInsertKeyCheck, "insert key check"));
    stmt.BindText(1, row.key_id);
    stmt.BindText(2, row.check_value);
    stmt.BindInt64(3, row.added_at);
    Status inserted = stmt.Run();
    if (inserted) return Ok();
    if (inserted.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(ErrorCode::kAlreadyExists,
                  "a key check for key '" + row.key_id + "' already exists");
    }
    return Fail(Annotate(inserted.error(), "key check for key '" + row.key_id + "'"));
  }

  // ---- Audit log

  Result<std::optional<AuditRow>> GetLastAudit() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kGetLastAudit, "get last audit record"));
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<AuditRow>();
    return std::optional<AuditRow>(ReadAuditRow(stmt));
  }

  Status InsertAudit(const AuditRow& row) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("InsertAudit"));
    BIFROST_RETURN_IF_ERROR(ValidateAuditRow(row));
    Status inserted = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kInsertAudit, "insert audit record"));
      stmt.BindInt64(1, row.seq);
      stmt.BindInt64(2, row.time);
      stmt.BindText(3, row.action);
      stmt.BindText(4, row.outcome);
      stmt.BindOptionalText(5, row.org_id);
      stmt.BindOptionalText(6, row.config_key);
      stmt.BindOptionalText(7, row.actor_id);
      stmt.BindOptionalText(8, row.actor_name);
      stmt.BindText(9, row.client_address);
      stmt.BindText(10, row.request_id);
      stmt.BindOptionalText(11, row.execution_id);
      stmt.BindText(12, row.detail);
      stmt.BindText(13, row.key_id);
      stmt.BindText(14, row.prev_mac);
      stmt.BindText(15, row.mac);
      return stmt.Run();
    }();
    if (inserted) return Ok();
    if (inserted.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(ErrorCode::kAlreadyExists, AuditSubject(row.seq) + " already exists");
    }
    return Fail(Annotate(inserted.error(), AuditSubject(row.seq)));
  }

  Result<std::vector<AuditRow>> ListAudit(const AuditFilter& filter) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    const std::string sql = AuditListSql(filter);
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, "list audit records"));
    if (filter.org_id) stmt.BindText(1, *filter.org_id);
    if (filter.config_key) stmt.BindText(2, *filter.config_key);
    if (filter.action) stmt.BindText(3, *filter.action);
    if (filter.actor) stmt.BindText(4, *filter.actor);
    if (filter.outcome) stmt.BindText(5, *filter.outcome);
    if (filter.since) stmt.BindInt64(6, *filter.since);
    if (filter.until) stmt.BindInt64(7, *filter.until);
    if (filter.before_seq) stmt.BindInt64(8, *filter.before_seq);
    stmt.BindInt64(9, LimitValue(filter.limit));
    return ReadAuditRows(stmt);
  }

  Result<std::vector<AuditRow>> ScanAudit(std::int64_t from_seq, std::size_t limit) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kScanAudit, "scan audit records"));
    stmt.BindInt64(1, from_seq);
    stmt.BindInt64(2, LimitValue(limit));
    return ReadAuditRows(stmt);
  }

  Result<std::optional<std::int64_t>> FirstAuditSeqSince(UnixMicros time) override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt,
        connection_->Prepare(kFirstAuditSeqSince, "find the first audit record since a time"));
    stmt.BindInt64(1, time);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return Fail(ErrorCode::kInternal, "min(seq) of audit_log returned no row");
    const std::optional<std::int64_t> seq = ColumnOptionalInt64(stmt, 0);
    BIFROST_RETURN_IF_ERROR(stmt.Run());
    return seq;
  }

  Result<std::optional<AuditCheckpoint>> GetAuditCheckpoint() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kGetAuditCheckpoint, "get audit checkpoint"));
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<AuditCheckpoint>();
    return std::optional<AuditCheckpoint>(AuditCheckpoint{stmt.ColumnInt64(0), stmt.ColumnText(1),
                                                          stmt.ColumnInt64(2), stmt.ColumnText(3),
                                                          stmt.ColumnText(4)});
  }

  Result<std::int64_t> PruneAudit(const AuditCheckpoint& checkpoint) override {
    BIFROST_RETURN_IF_ERROR(CheckWritable("PruneAudit"));
    if (checkpoint.first_seq < 1) {
      std::string message = "audit checkpoint: first_seq must be at least 1, not ";
      message += std::to_string(checkpoint.first_seq);
      return Fail(ErrorCode::kInvalidArgument, std::move(message));
    }
    std::int64_t deleted = 0;
    {
      BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                               connection_->Prepare(kPruneAudit, "prune audit records"));
      stmt.BindInt64(1, checkpoint.first_seq);
      Status pruned = stmt.Run();
      if (!pruned) return Fail(Annotate(pruned.error(), "audit log"));
      deleted = connection_->Changes();
    }
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             connection_->Prepare(kPutAuditCheckpoint, "store audit checkpoint"));
    stmt.BindInt64(1, checkpoint.first_seq);
    stmt.BindText(2, checkpoint.prev_mac);
    stmt.BindInt64(3, checkpoint.created_at);
    stmt.BindText(4, checkpoint.key_id);
    stmt.BindText(5, checkpoint.mac);
    Status stored = stmt.Run();
    if (!stored) return Fail(Annotate(stored.error(), "audit checkpoint"));
    return deleted;
  }

  // ---- Row counts

  Result<std::vector<TableCount>> CountRows() override {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    // Constant statements, one per table, in the order store.h promises.
    static constexpr std::pair<std::string_view, std::string_view> kCounts[] = {
        {"organizations", "SELECT count(*) FROM organizations"},
        {"configs", "SELECT count(*) FROM configs"},
        {"key_checks", "SELECT count(*) FROM key_checks"},
        {"tokens", "SELECT count(*) FROM tokens"},
        {"data_keys", "SELECT count(*) FROM data_keys"},
        {"key_jobs", "SELECT count(*) FROM key_jobs"},
        {"executions", "SELECT count(*) FROM executions"},
        {"users", "SELECT count(*) FROM users"},
        {"sessions", "SELECT count(*) FROM sessions"},
        {"nodes", "SELECT count(*) FROM nodes"},
        {"audit_log", "SELECT count(*) FROM audit_log"},
        {"audit_checkpoint", "SELECT count(*) FROM audit_checkpoint"},
    };
    std::vector<TableCount> counts;
    for (const auto& [table, sql] : kCounts) {
      BIFROST_ASSIGN_OR_RETURN(const std::int64_t rows, connection_->QueryInt64(sql, "count rows"));
      counts.push_back({.table = std::string(table), .rows = rows});
    }
    return counts;
  }

 private:
  // A caller's row limit as a SQLite LIMIT value (size_t may exceed int64).
  static std::int64_t LimitValue(std::size_t limit) {
    constexpr auto kMaxLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(limit > kMaxLimit ? kMaxLimit : limit);
  }

  static Result<std::vector<DataKeyRow>> ReadDataKeyRows(Statement& stmt) {
    std::vector<DataKeyRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(ReadDataKeyRow(stmt));
    }
    return rows;
  }

  static Result<std::vector<AuditRow>> ReadAuditRows(Statement& stmt) {
    std::vector<AuditRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(ReadAuditRow(stmt));
    }
    return rows;
  }

  Status Exec(std::string_view sql, std::string_view what) {
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    return stmt.Run();
  }

  void RollBack() {
    // A failed rollback leaves nothing to do: SQLite has already rolled back (or will when
    // the connection is next used), and the transaction is over either way.
    if (connection_ != nullptr && connection_->InTransaction()) {
      (void)Exec(kRollback, "roll back");
    }
    active_ = false;
  }

  // Returns the connection (or the writer slot) to the store; idempotent.
  void Release() {
    if (connection_ == nullptr) return;
    if (mode_ == TxnMode::kWrite) {
      store_->ReleaseWriter();
    } else {
      store_->ReleaseReader(connection_);
    }
    connection_ = nullptr;
  }

  Status CheckUsable() {
    if (!active_) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "the transaction is over (committed, rolled back or failed)");
    }
    if (!connection_->InTransaction()) {
      // SQLite rolled the transaction back by itself after an error (I/O, disk full, ...);
      // carrying on would run statements in autocommit mode, outside any transaction.
      active_ = false;
      Release();
      return Fail(ErrorCode::kFailedPrecondition,
                  "the transaction was rolled back after an earlier storage error");
    }
    return Ok();
  }

  Status CheckWritable(std::string_view operation) {
    if (mode_ != TxnMode::kWrite) {
      return Fail(ErrorCode::kFailedPrecondition,
                  std::string(operation) + " called on a read transaction");
    }
    return CheckUsable();
  }

  Result<std::optional<OrgRow>> GetOrg(std::string_view sql, std::string_view value,
                                       std::string_view what) {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    stmt.BindText(1, value);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<OrgRow>();
    return std::optional<OrgRow>(ReadOrgRow(stmt));
  }

  Result<std::optional<TokenRow>> GetToken(std::string_view sql, std::string_view value,
                                           std::string_view what) {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    stmt.BindText(1, value);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<TokenRow>();
    return std::optional<TokenRow>(ReadTokenRow(stmt));
  }

  Result<std::optional<UserRow>> GetUser(std::string_view sql, std::string_view value,
                                         std::string_view what) {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    stmt.BindText(1, value);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<UserRow>();
    return std::optional<UserRow>(ReadUserRow(stmt));
  }

  Result<std::optional<SessionRow>> GetSession(std::string_view sql, std::string_view value,
                                               std::string_view what) {
    BIFROST_RETURN_IF_ERROR(CheckUsable());
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    stmt.BindText(1, value);
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return std::optional<SessionRow>();
    return std::optional<SessionRow>(ReadSessionRow(stmt));
  }

  // Runs a one-row token UPDATE taking (id, time); kNotFound when no row has the id.
  Status UpdateToken(std::string_view sql, std::string_view operation, std::string_view what,
                     std::string_view id, UnixMicros at) {
    BIFROST_RETURN_IF_ERROR(CheckWritable(operation));
    BIFROST_ASSIGN_OR_RETURN(Statement stmt, connection_->Prepare(sql, what));
    stmt.BindText(1, id);
    stmt.BindInt64(2, at);
    Status updated = stmt.Run();
    if (!updated) return Fail(Annotate(updated.error(), TokenSubject(id)));
    if (connection_->Changes() == 0) {
      return Fail(ErrorCode::kNotFound, TokenSubject(id) + " does not exist");
    }
    return Ok();
  }

  static void BindOptionalInt64(Statement& stmt, int index,
                                const std::optional<std::int64_t>& value) {
    if (value.has_value()) {
      stmt.BindInt64(index, *value);
    } else {
      stmt.BindNull(index);
    }
  }

  // Binds type, value, key_id and description to four consecutive parameters.
  static void BindConfigContent(Statement& stmt, const ConfigRow& row, int first) {
    stmt.BindText(first, row.type);
    stmt.BindText(first + 1, row.value);
    stmt.BindOptionalText(first + 2, row.key_id);
    stmt.BindText(first + 3, row.description);
  }

  // Binds result, error, logs and logs_truncated to four consecutive parameters.
  static void BindExecutionOutcome(Statement& stmt, const ExecutionRow& row, int first) {
    stmt.BindOptionalText(first, row.result);
    stmt.BindOptionalText(first + 1, row.error);
    stmt.BindText(first + 2, row.logs);
    stmt.BindInt64(first + 3, row.logs_truncated ? 1 : 0);
  }

  static Result<std::vector<ConfigRow>> ReadConfigRows(Statement& stmt) {
    std::vector<ConfigRow> rows;
    while (true) {
      BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
      if (!has_row) break;
      rows.push_back(ReadConfigRow(stmt));
    }
    return rows;
  }

  // For INSERT/UPDATE ... RETURNING of exactly one row; steps to completion.
  static Result<ConfigRow> ReadOneConfigRow(Statement& stmt) {
    BIFROST_ASSIGN_OR_RETURN(const bool has_row, stmt.Step());
    if (!has_row) return Fail(ErrorCode::kInternal, "statement returned no row");
    ConfigRow stored = ReadConfigRow(stmt);
    BIFROST_RETURN_IF_ERROR(stmt.Run());
    return stored;
  }

  // The rowid of the config row about to be changed: kNotFound if there is none, kConflict
  // if `expected_version` is given and differs. The writer slot keeps it valid until used.
  Result<std::int64_t> FindForChange(const Scope& scope, std::string_view key,
                                     std::optional<std::int64_t> expected_version) {
    BIFROST_ASSIGN_OR_RETURN(
        Statement stmt, connection_->Prepare(scope.is_global() ? kFindConfigGlobal : kFindConfigOrg,
                                             "find config"));
    stmt.BindText(1, key);
    if (!scope.is_global()) stmt.BindText(2, scope.org_id());
    Result<bool> found = stmt.Step();
    if (!found) return Fail(Annotate(found.error(), ConfigSubject(scope, key)));
    if (!*found) {
      return Fail(ErrorCode::kNotFound, "config '" + std::string(key) +
                                            "' does not exist in scope '" + ScopeText(scope) + "'");
    }
    const std::int64_t id = stmt.ColumnInt64(0);
    const std::int64_t version = stmt.ColumnInt64(1);
    if (expected_version.has_value() && version != *expected_version) {
      return Fail(ErrorCode::kConflict, ConfigSubject(scope, key) + " is at version " +
                                            std::to_string(version) + ", not the expected " +
                                            std::to_string(*expected_version));
    }
    return id;
  }

  SqliteStore* store_;
  Connection* connection_;  // null once given back to the store
  const TxnMode mode_;
  bool active_ = false;  // the SQLite transaction is open and usable
};

// ---- SqliteStore ----

SqliteStore::SqliteStore(std::string database_path, int busy_timeout_ms)
    : database_path_(std::move(database_path)), busy_timeout_ms_(busy_timeout_ms) {}

SqliteStore::~SqliteStore() {
  if (live_txns_.load() != 0) {
    // A Txn outliving its store would use a closed connection: a bug in the caller.
    std::fprintf(stderr, "bifrost: SqliteStore destroyed while %d transaction(s) are alive\n",
                 live_txns_.load());
    std::abort();
  }
  free_readers_.clear();
  readers_.clear();
  writer_.reset();  // the last connection to close checkpoints and removes the WAL
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteOptions& options) {
  if (options.data_dir.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "sqlite store: data_dir is empty");
  }
  if (options.busy_timeout_ms < 0) {
    return Fail(ErrorCode::kInvalidArgument, "sqlite store: busy_timeout_ms is negative");
  }
  if (options.reader_connections < 1 || options.reader_connections > kMaxReaderConnections) {
    return Fail(ErrorCode::kInvalidArgument,
                "sqlite store: reader_connections must be between 1 and " +
                    std::to_string(kMaxReaderConnections));
  }
  if (options.clock == nullptr) {
    return Fail(ErrorCode::kInvalidArgument, "sqlite store: clock is null");
  }
  if (sqlite3_threadsafe() == 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the SQLite library was built without thread support");
  }

  BIFROST_RETURN_IF_ERROR(PrepareDataDir(options.data_dir));
  const std::string path = (std::filesystem::path(options.data_dir) / kDatabaseFileName).string();
  BIFROST_RETURN_IF_ERROR(PrepareDatabaseFile(path));

  std::unique_ptr<SqliteStore> store(new SqliteStore(path, options.busy_timeout_ms));
  BIFROST_ASSIGN_OR_RETURN(
      store->writer_, Connection::Open(path, Connection::Role::kWriter, options.busy_timeout_ms));
  BIFROST_ASSIGN_OR_RETURN(store->schema_version_,
                           sqlite_internal::ApplyMigrations(*store->writer_, *options.clock));
  for (int i = 0; i < options.reader_connections; ++i) {
    BIFROST_ASSIGN_OR_RETURN(
        std::unique_ptr<Connection> reader,
        Connection::Open(path, Connection::Role::kReader, options.busy_timeout_ms));
    store->free_readers_.push_back(reader.get());
    store->readers_.push_back(std::move(reader));
  }
  return store;
}

Result<std::unique_ptr<Txn>> SqliteStore::Begin(TxnMode mode) {
  std::unique_ptr<SqliteTxn> txn;
  if (mode == TxnMode::kWrite) {
    BIFROST_RETURN_IF_ERROR(AcquireWriter());
    txn = std::make_unique<SqliteTxn>(this, writer_.get(), mode);
  } else {
    BIFROST_ASSIGN_OR_RETURN(Connection * reader, AcquireReader());
    txn = std::make_unique<SqliteTxn>(this, reader, mode);
  }
  BIFROST_RETURN_IF_ERROR(txn->Start());  // on failure, ~SqliteTxn gives the connection back
  return std::unique_ptr<Txn>(std::move(txn));
}

Status SqliteStore::AcquireWriter() {
  std::unique_lock<std::mutex> lock(writer_mutex_);
  if (!writer_cv_.wait_for(lock, std::chrono::milliseconds(busy_timeout_ms_),
                           [this] { return !writer_taken_; })) {
    return Fail(ErrorCode::kUnavailable, "timed out after " + std::to_string(busy_timeout_ms_) +
                                             " ms waiting for the writer of '" + database_path_ +
                                             "'");
  }
  writer_taken_ = true;
  return Ok();
}

void SqliteStore::ReleaseWriter() {
  {
    std::lock_guard<std::mutex> lock(writer_mutex_);
    writer_taken_ = false;
  }
  writer_cv_.notify_one();
}

Result<Connection*> SqliteStore::AcquireReader() {
  std::unique_lock<std::mutex> lock(pool_mutex_);
  if (!pool_cv_.wait_for(lock, std::chrono::milliseconds(busy_timeout_ms_),
                         [this] { return !free_readers_.empty(); })) {
    return Fail(ErrorCode::kUnavailable, "timed out after " + std::to_string(busy_timeout_ms_) +
                                             " ms waiting for a reader connection to '" +
                                             database_path_ + "'");
  }
  Connection* reader = free_readers_.back();
  free_readers_.pop_back();
  return reader;
}

void SqliteStore::ReleaseReader(Connection* reader) {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    free_readers_.push_back(reader);
  }
  pool_cv_.notify_one();
}

// How long ReleaseDeletedData's checkpoint waits for other connections (at most the busy
// timeout).
constexpr int kCheckpointWaitMs = 100;

Status SqliteStore::ReleaseDeletedData() {
  BIFROST_RETURN_IF_ERROR(AcquireWriter());
  // Between transactions: the writer slot is ours, so no Txn of this store is writing.
  Status released = [&]() -> Status {
    if (writer_->InTransaction()) {
      return Fail(ErrorCode::kInternal,
                  "checkpoint of '" + database_path_ + "': the writer is inside a transaction");
    }
    // One row: busy (1 when a writer or a reader kept it from completing), the frames in
    // the WAL and the frames copied into the database file (both 0 once it was truncated).
    BIFROST_ASSIGN_OR_RETURN(Statement stmt,
                             writer_->Prepare("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint"));
    // A TRUNCATE checkpoint holds SQLite's write lock while it waits for readers: every
    // writer of every process waits with it. It is housekeeping, so it waits briefly and
    // reports kUnavailable rather than stall the server's writes for a busy timeout.
    writer_->SetBusyTimeout(std::min(busy_timeout_ms_, kCheckpointWaitMs));
    auto has_row = stmt.Step();
    writer_->SetBusyTimeout(busy_timeout_ms_);
    if (!has_row) return Fail(std::move(has_row.error()));
    if (!*has_row) {
      return Fail(ErrorCode::kInternal,
                  "checkpoint of '" + database_path_ + "' returned no result");
    }
    const std::int64_t busy = stmt.ColumnInt64(0);
    const std::int64_t log_frames = stmt.ColumnInt64(1);
    const std::int64_t copied_frames = stmt.ColumnInt64(2);
    BIFROST_RETURN_IF_ERROR(stmt.Run());
    if (busy != 0 || log_frames != copied_frames) {
      std::string message = "could not checkpoint the write-ahead log of '";
      message += database_path_;
      message += "' within ";
      message += std::to_string(std::min(busy_timeout_ms_, kCheckpointWaitMs));
      message += " ms: other transactions were using it; deleted data may remain in '";
      message += database_path_;
      message += "-wal' until the next checkpoint";
      return Fail(ErrorCode::kUnavailable, std::move(message));
    }
    return Ok();
  }();
  ReleaseWriter();
  return released;
}

Result<std::vector<SqliteConnectionSettings>> SqliteStore::InspectConnections() {
  auto inspect = [](Connection& connection) -> Result<SqliteConnectionSettings> {
    constexpr std::string_view kWhat = "inspect connection";
    SqliteConnectionSettings s;
    s.role = connection.role() == Connection::Role::kWriter ? "writer" : "reader";
    BIFROST_ASSIGN_OR_RETURN(s.journal_mode, connection.QueryText("PRAGMA journal_mode", kWhat));
    BIFROST_ASSIGN_OR_RETURN(s.synchronous, connection.QueryInt64("PRAGMA synchronous", kWhat));
    BIFROST_ASSIGN_OR_RETURN(s.foreign_keys, connection.QueryInt64("PRAGMA foreign_keys", kWhat));
    BIFROST_ASSIGN_OR_RETURN(s.busy_timeout_ms,
                             connection.QueryInt64("PRAGMA busy_timeout", kWhat));
    BIFROST_ASSIGN_OR_RETURN(s.temp_store, connection.QueryInt64("PRAGMA temp_store", kWhat));
    BIFROST_ASSIGN_OR_RETURN(s.secure_delete, connection.QueryInt64("PRAGMA secure_delete", kWhat));
    BIFROST_ASSIGN_OR_RETURN(s.query_only, connection.QueryInt64("PRAGMA query_only", kWhat));
    return s;
  };

  std::vector<SqliteConnectionSettings> all;
  {
    BIFROST_RETURN_IF_ERROR(AcquireWriter());
    Result<SqliteConnectionSettings> writer = inspect(*writer_);
    ReleaseWriter();
    if (!writer) return Fail(writer.error());
    all.push_back(std::move(*writer));
  }
  // Borrow every reader at once, so that each one is inspected exactly once.
  std::vector<Connection*> borrowed;
  Status status = Ok();
  for (std::size_t i = 0; i < readers_.size() && status; ++i) {
    Result<Connection*> reader = AcquireReader();
    if (reader) {
      borrowed.push_back(*reader);
    } else {
      status = Fail(reader.error());
    }
  }
  for (Connection* reader : borrowed) {
    if (!status) break;
    Result<SqliteConnectionSettings> settings = inspect(*reader);
    if (settings) {
      all.push_back(std::move(*settings));
    } else {
      status = Fail(settings.error());
    }
  }
  for (Connection* reader : borrowed) ReleaseReader(reader);
  BIFROST_RETURN_IF_ERROR(status);
  return all;
}

}  // namespace bifrost::store
