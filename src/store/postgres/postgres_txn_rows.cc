// PostgresTxn's tokens, users, sessions, workflow executions and server nodes (the rest is
// in postgres_txn.cc). Semantics, error codes and messages mirror the SQLite backend
// (store/sqlite/sqlite_store.cc); the conformance suite checks both.
//
// PostgreSQL ends a transaction at its first failed statement, so these methods look for
// the failures a caller may meet in normal use before writing, and leave the transaction
// usable when they find one: a row's own rules are checked in C++, a missing org or user by
// a query, and a duplicate id (or hash, or email) by INSERT ... ON CONFLICT DO NOTHING,
// which inserts nothing instead of failing. Write transactions are serialized by the
// writers' lock, so nothing can change between such a check and the write.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/postgres/postgres_txn.h"

namespace bifrost::store {

using postgres_internal::Annotate;
using postgres_internal::LimitValue;
using postgres_internal::Param;
using postgres_internal::QueryResult;
using postgres_internal::ReadOptionalRow;
using postgres_internal::ReadRows;
using postgres_internal::Row;

namespace {

// ---- Subjects, row rules and row readers

std::string TokenSubject(std::string_view id) { return "token '" + std::string(id) + "'"; }
std::string UserSubject(std::string_view id) { return "user '" + std::string(id) + "'"; }
std::string SessionSubject(std::string_view id) { return "session '" + std::string(id) + "'"; }
std::string ExecutionSubject(std::string_view id) { return "execution '" + std::string(id) + "'"; }
std::string NodeSubject(std::string_view id) { return "node '" + std::string(id) + "'"; }
std::string OrgSubject(std::string_view id) { return "organization '" + std::string(id) + "'"; }

bool IsRole(std::string_view role) {
  return role == "platform-admin" || role == "admin" || role == "member" || role == "reader";
}

// A platform admin has no org; every other role has one. `subject` names the row.
Status ValidateRoleAndOrg(const std::string& subject, const std::string& role,
                          const std::optional<std::string>& org_id) {
  if (!IsRole(role)) {
    return Fail(ErrorCode::kInvalidArgument, subject + " has unknown role '" + role + "'");
  }
  if ((role == "platform-admin") == org_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument,
                subject + (org_id ? " has role platform-admin but an org"
                                  : " has org role '" + role + "' but no org"));
  }
  return Ok();
}

// Checked before the table's CHECK constraints so that the message names the token, and so
// that a bad row does not end the transaction. Messages never contain the hash.
Status ValidateTokenRow(const TokenRow& row) {
  return ValidateRoleAndOrg(TokenSubject(row.id), row.role, row.org_id);
}

// The same for users; messages never contain the password hash.
Status ValidateUserRow(const UserRow& row) {
  return ValidateRoleAndOrg(UserSubject(row.id), row.role, row.org_id);
}

bool IsExecutionStatus(std::string_view status) {
  return status == "pending" || status == "running" || status == "success" || status == "failed" ||
         status == "timeout" || status == "cancelled";
}

Status ValidateExecutionStatus(const ExecutionRow& row) {
  if (!IsExecutionStatus(row.status)) {
    return Fail(ErrorCode::kInvalidArgument,
                ExecutionSubject(row.id) + " has unknown status '" + row.status + "'");
  }
  return Ok();
}

// id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, revoked_at
TokenRow ReadTokenRow(const Row& row) {
  TokenRow token;
  token.id = row.Text(0);
  token.name = row.Text(1);
  token.org_id = row.OptionalText(2);
  token.role = row.Text(3);
  token.hash = row.Text(4);
  token.created_at = row.Int64(5);
  token.created_by = row.Text(6);
  token.expires_at = row.OptionalInt64(7);
  token.last_used_at = row.OptionalInt64(8);
  token.revoked_at = row.OptionalInt64(9);
  return token;
}

// id, email, org_id, role, password_hash, created_at, created_by, updated_at, disabled_at,
// last_login_at
UserRow ReadUserRow(const Row& row) {
  UserRow user;
  user.id = row.Text(0);
  user.email = row.Text(1);
  user.org_id = row.OptionalText(2);
  user.role = row.Text(3);
  user.password_hash = row.Text(4);
  user.created_at = row.Int64(5);
  user.created_by = row.Text(6);
  user.updated_at = row.Int64(7);
  user.disabled_at = row.OptionalInt64(8);
  user.last_login_at = row.OptionalInt64(9);
  return user;
}

// id, user_id, hash, created_at, last_seen_at, expires_at, client_address
SessionRow ReadSessionRow(const Row& row) {
  SessionRow session;
  session.id = row.Text(0);
  session.user_id = row.Text(1);
  session.hash = row.Text(2);
  session.created_at = row.Int64(3);
  session.last_seen_at = row.Int64(4);
  session.expires_at = row.Int64(5);
  session.client_address = row.Text(6);
  return session;
}

// id, workflow, org_id, caller_id, caller_name, status, parameters, result, error, logs,
// logs_truncated, timeout_seconds, created_at, started_at, finished_at, node_id,
// cancel_requested_by
ExecutionRow ReadExecutionRow(const Row& row) {
  ExecutionRow execution;
  execution.id = row.Text(0);
  execution.workflow = row.Text(1);
  execution.org_id = row.Text(2);
  execution.caller_id = row.Text(3);
  execution.caller_name = row.Text(4);
  execution.status = row.Text(5);
  execution.parameters = row.Text(6);
  execution.result = row.OptionalText(7);
  execution.error = row.OptionalText(8);
  execution.logs = row.Text(9);
  execution.logs_truncated = row.Bool(10);
  execution.timeout_seconds = row.Int64(11);
  execution.created_at = row.Int64(12);
  execution.started_at = row.OptionalInt64(13);
  execution.finished_at = row.OptionalInt64(14);
  execution.node_id = row.Text(15);
  execution.cancel_requested_by = row.OptionalText(16);
  return execution;
}

// id, name, started_at, heartbeat_at
NodeRow ReadNodeRow(const Row& row) {
  NodeRow node;
  node.id = row.Text(0);
  node.name = row.Text(1);
  node.started_at = row.Int64(2);
  node.heartbeat_at = row.Int64(3);
  return node;
}

// ---- SQL. Constant text only; every value is bound. Text columns are COLLATE "C", so
// equality and ORDER BY compare bytes, as in SQLite.

constexpr std::string_view kOrgExists = "SELECT 1 FROM organizations WHERE id = $1";

#define BIFROST_TOKEN_COLUMNS                                                        \
  "id, name, org_id, role, hash, created_at, created_by, expires_at, last_used_at, " \
  "revoked_at"
// ON CONFLICT DO NOTHING: a duplicate id or hash inserts nothing (0 rows) rather than
// failing the transaction; the caller then says which one collided.
constexpr std::string_view kInsertToken =
    "INSERT INTO tokens (" BIFROST_TOKEN_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING";
constexpr std::string_view kGetTokenById =
    "SELECT " BIFROST_TOKEN_COLUMNS " FROM tokens WHERE id = $1";
constexpr std::string_view kGetTokenByHash =
    "SELECT " BIFROST_TOKEN_COLUMNS " FROM tokens WHERE hash = $1";
constexpr std::string_view kListTokensAll =
    "SELECT " BIFROST_TOKEN_COLUMNS " FROM tokens ORDER BY created_at DESC, id";
constexpr std::string_view kListTokensOrg =
    "SELECT " BIFROST_TOKEN_COLUMNS " FROM tokens WHERE org_id = $1 ORDER BY created_at DESC, id";
#undef BIFROST_TOKEN_COLUMNS
// The first revocation wins; last use only moves forward (greatest() ignores a NULL).
constexpr std::string_view kRevokeToken =
    "UPDATE tokens SET revoked_at = coalesce(revoked_at, $2::bigint) WHERE id = $1";
constexpr std::string_view kTouchToken =
    "UPDATE tokens SET last_used_at = greatest(last_used_at, $2::bigint) WHERE id = $1";

#define BIFROST_USER_COLUMNS                                                     \
  "id, email, org_id, role, password_hash, created_at, created_by, updated_at, " \
  "disabled_at, last_login_at"
constexpr std::string_view kInsertUser =
    "INSERT INTO users (" BIFROST_USER_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING";
constexpr std::string_view kGetUserById =
    "SELECT " BIFROST_USER_COLUMNS " FROM users WHERE id = $1";
constexpr std::string_view kGetUserByEmail =
    "SELECT " BIFROST_USER_COLUMNS " FROM users WHERE email = $1";
// By email: the UNIQUE index on email, or users_org_email for one org, gives the order.
constexpr std::string_view kListUsersAll =
    "SELECT " BIFROST_USER_COLUMNS " FROM users ORDER BY email";
constexpr std::string_view kListUsersOrg =
    "SELECT " BIFROST_USER_COLUMNS " FROM users WHERE org_id = $1 ORDER BY email";
#undef BIFROST_USER_COLUMNS
// Only what may change; id, email, org_id, created_at and created_by are kept.
constexpr std::string_view kUpdateUser =
    "UPDATE users SET role = $2, password_hash = $3, updated_at = $4, disabled_at = $5, "
    "last_login_at = $6 WHERE id = $1";

#define BIFROST_SESSION_COLUMNS \
  "id, user_id, hash, created_at, last_seen_at, expires_at, client_address"
constexpr std::string_view kInsertSession =
    "INSERT INTO sessions (" BIFROST_SESSION_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
constexpr std::string_view kSessionIdExists = "SELECT 1 FROM sessions WHERE id = $1";
constexpr std::string_view kGetSessionByHash =
    "SELECT " BIFROST_SESSION_COLUMNS " FROM sessions WHERE hash = $1";
constexpr std::string_view kListSessions =
    "SELECT " BIFROST_SESSION_COLUMNS " FROM sessions ORDER BY id";
#undef BIFROST_SESSION_COLUMNS
// Last activity only moves forward.
constexpr std::string_view kTouchSession =
    "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2::bigint) WHERE id = $1";
constexpr std::string_view kDeleteSession = "DELETE FROM sessions WHERE id = $1";
constexpr std::string_view kDeleteUserSessions = "DELETE FROM sessions WHERE user_id = $1";
// Both conditions have an index (a BitmapOr of the two).
constexpr std::string_view kDeleteExpiredSessions =
    "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2";

#define BIFROST_EXECUTION_COLUMNS                                                           \
  "id, workflow, org_id, caller_id, caller_name, status, parameters, result, error, logs, " \
  "logs_truncated, timeout_seconds, created_at, started_at, finished_at, node_id, "         \
  "cancel_requested_by"
constexpr std::string_view kInsertExecution =
    "INSERT INTO executions (" BIFROST_EXECUTION_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) "
    "ON CONFLICT DO NOTHING";
constexpr std::string_view kGetExecution =
    "SELECT " BIFROST_EXECUTION_COLUMNS " FROM executions WHERE id = $1";
// ListExecutions' statement is assembled from these fixed parts (see ExecutionListQuery), one
// statement per combination of set filter fields, so that a set org_id can use its index.
// "$?" is the condition's parameter, numbered when the statement is assembled.
constexpr std::string_view kListExecutionsHead =
    "SELECT " BIFROST_EXECUTION_COLUMNS " FROM executions";
#undef BIFROST_EXECUTION_COLUMNS
constexpr std::string_view kListExecutionsOrder = " ORDER BY created_at DESC, id DESC LIMIT $?";
constexpr std::string_view kExecutionFilterOrg = "org_id = $?";
constexpr std::string_view kExecutionFilterWorkflow = "workflow = $?";
constexpr std::string_view kExecutionFilterStatus = "status = $?";
constexpr std::string_view kExecutionFilterNode = "node_id = $?";
constexpr std::string_view kExecutionFilterCancelRequested = "cancel_requested_by IS NOT NULL";
// Below the cursor execution in the listing order. When it does not exist the subquery has
// no row, the row comparison is NULL, and the page is empty.
constexpr std::string_view kExecutionFilterBeforeId =
    "(created_at, id) < (SELECT created_at, id FROM executions WHERE id = $?)";
// Only what the run changes; the rest of the row is kept.
constexpr std::string_view kUpdateExecution =
    "UPDATE executions SET status = $2, result = $3, error = $4, logs = $5, "
    "logs_truncated = $6, started_at = $7, finished_at = $8 WHERE id = $1";
// Unfinished executions of other nodes that have no fresh heartbeat: their node has no row,
// or a stale one. The status condition is the one of executions_unfinished.
constexpr std::string_view kFailOrphanedExecutions =
    "UPDATE executions SET status = 'failed', error = $1, finished_at = $2::bigint "
    "WHERE status IN ('pending', 'running') AND node_id <> $3 AND NOT EXISTS "
    "(SELECT 1 FROM nodes WHERE nodes.id = executions.node_id AND nodes.heartbeat_at >= $4)";
constexpr std::string_view kDeleteStaleNodes =
    "DELETE FROM nodes WHERE heartbeat_at < $2 AND id <> $1";
// The first request is kept.
constexpr std::string_view kRequestExecutionCancel =
    "UPDATE executions SET cancel_requested_by = coalesce(cancel_requested_by, $2::text) "
    "WHERE id = $1 AND status IN ('pending', 'running')";
constexpr std::string_view kGetExecutionStatus = "SELECT status FROM executions WHERE id = $1";

constexpr std::string_view kUpsertNode =
    "INSERT INTO nodes (id, name, started_at, heartbeat_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, heartbeat_at = excluded.heartbeat_at";
constexpr std::string_view kDeleteNode = "DELETE FROM nodes WHERE id = $1";
constexpr std::string_view kListNodes =
    "SELECT id, name, started_at, heartbeat_at FROM nodes ORDER BY started_at, id";

// A statement assembled at run time from constant parts, and its parameters.
struct AssembledQuery {
  std::string sql;
  std::vector<Param> params;

  // Appends `text`, which has no parameter.
  void Append(std::string_view text) { sql += text; }
  // Appends `text` with its one "$?" numbered as the next parameter, `value`.
  void Append(std::string_view text, Param value) {
    params.push_back(std::move(value));
    const std::size_t at = text.find("$?");
    sql += text.substr(0, at);
    sql += '$';
    sql += std::to_string(params.size());
    sql += text.substr(at + 2);
  }
};

// The ListExecutions statement for the fields set in `filter`: at most 2^6 distinct texts,
// each prepared once per connection. PostgreSQL needs every parameter number up to the
// highest to be used, so only the set fields that have a value take one (FilteredSql would
// give one to the cancel_requested condition too, which has none).
AssembledQuery ExecutionListQuery(const ExecutionFilter& filter) {
  AssembledQuery query{std::string(kListExecutionsHead), {}};
  std::string_view joiner = " WHERE ";
  auto where = [&](auto&&... condition) {
    query.Append(joiner);
    joiner = " AND ";
    query.Append(std::forward<decltype(condition)>(condition)...);
  };
  if (filter.org_id) where(kExecutionFilterOrg, Param(*filter.org_id));
  if (filter.workflow) where(kExecutionFilterWorkflow, Param(*filter.workflow));
  if (filter.status) where(kExecutionFilterStatus, Param(*filter.status));
  if (filter.node_id) where(kExecutionFilterNode, Param(*filter.node_id));
  if (filter.cancel_requested) where(kExecutionFilterCancelRequested);
  if (filter.before_id) where(kExecutionFilterBeforeId, Param(*filter.before_id));
  query.Append(kListExecutionsOrder, Param(LimitValue(filter.limit)));
  return query;
}

}  // namespace

// ---- Workflow executions

Status PostgresTxn::InsertExecution(const ExecutionRow& row) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertExecution"));
  BIFROST_RETURN_IF_ERROR(ValidateExecutionStatus(row));
  {
    BIFROST_ASSIGN_OR_RETURN(const QueryResult org, Run(kOrgExists, "find org", {row.org_id}));
    if (org.rows() == 0) {
      return Fail(ErrorCode::kFailedPrecondition,
                  ExecutionSubject(row.id) + ": " + OrgSubject(row.org_id) + " does not exist");
    }
  }
  Result<std::int64_t> inserted = RunCount(
      kInsertExecution, "insert execution",
      {row.id, row.workflow, row.org_id, row.caller_id, row.caller_name, row.status, row.parameters,
       row.result, row.error, row.logs, row.logs_truncated, row.timeout_seconds, row.created_at,
       row.started_at, row.finished_at, row.node_id, row.cancel_requested_by});
  if (!inserted) return Fail(Annotate(inserted.error(), ExecutionSubject(row.id)));
  if (*inserted == 0) {
    return Fail(ErrorCode::kAlreadyExists, ExecutionSubject(row.id) + " already exists");
  }
  return Ok();
}

Status PostgresTxn::UpdateExecution(const ExecutionRow& row) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("UpdateExecution"));
  BIFROST_RETURN_IF_ERROR(ValidateExecutionStatus(row));
  Result<std::int64_t> updated = RunCount(kUpdateExecution, "update execution",
                                          {row.id, row.status, row.result, row.error, row.logs,
                                           row.logs_truncated, row.started_at, row.finished_at});
  if (!updated) return Fail(Annotate(updated.error(), ExecutionSubject(row.id)));
  if (*updated == 0) {
    return Fail(ErrorCode::kNotFound, ExecutionSubject(row.id) + " does not exist");
  }
  return Ok();
}

Result<std::optional<ExecutionRow>> PostgresTxn::GetExecution(std::string_view id) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result, Run(kGetExecution, "get execution", {id}));
  return ReadOptionalRow<ExecutionRow>(result, ReadExecutionRow, "get execution");
}

Result<std::vector<ExecutionRow>> PostgresTxn::ListExecutions(const ExecutionFilter& filter) {
  const AssembledQuery query = ExecutionListQuery(filter);
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result,
                           RunParams(query.sql, "list executions", query.params));
  return ReadRows<ExecutionRow>(result, ReadExecutionRow, "list executions");
}

Result<std::int64_t> PostgresTxn::FailOrphanedExecutions(std::string_view error, UnixMicros at,
                                                         std::string_view self_node,
                                                         UnixMicros stale_before) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("FailOrphanedExecutions"));
  Result<std::int64_t> failed = RunCount(kFailOrphanedExecutions, "fail orphaned executions",
                                         {error, at, self_node, stale_before});
  if (!failed) return Fail(Annotate(failed.error(), "orphaned executions"));
  Result<std::int64_t> deleted =
      RunCount(kDeleteStaleNodes, "delete stale nodes", {self_node, stale_before});
  if (!deleted) return Fail(Annotate(deleted.error(), "stale nodes"));
  return *failed;
}

Status PostgresTxn::RequestExecutionCancel(std::string_view id, std::string_view by) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("RequestExecutionCancel"));
  Result<std::int64_t> requested =
      RunCount(kRequestExecutionCancel, "request execution cancel", {id, by});
  if (!requested) return Fail(Annotate(requested.error(), ExecutionSubject(id)));
  if (*requested > 0) return Ok();
  BIFROST_ASSIGN_OR_RETURN(const QueryResult status,
                           Run(kGetExecutionStatus, "get execution status", {id}));
  if (status.rows() == 0) {
    return Fail(ErrorCode::kNotFound, ExecutionSubject(id) + " does not exist");
  }
  return Fail(ErrorCode::kFailedPrecondition,
              ExecutionSubject(id) + " has already finished (" + status.Text(0, 0) + ")");
}

// ---- Server nodes

Status PostgresTxn::UpsertNode(const NodeRow& node) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("UpsertNode"));
  Result<std::int64_t> upserted = RunCount(
      kUpsertNode, "upsert node", {node.id, node.name, node.started_at, node.heartbeat_at});
  if (!upserted) return Fail(Annotate(upserted.error(), NodeSubject(node.id)));
  return Ok();
}

Status PostgresTxn::DeleteNode(std::string_view id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteNode"));
  Result<std::int64_t> deleted = RunCount(kDeleteNode, "delete node", {id});
  if (!deleted) return Fail(Annotate(deleted.error(), NodeSubject(id)));
  if (*deleted == 0) return Fail(ErrorCode::kNotFound, NodeSubject(id) + " does not exist");
  return Ok();
}

Result<std::vector<NodeRow>> PostgresTxn::ListNodes() {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result, Run(kListNodes, "list nodes"));
  return ReadRows<NodeRow>(result, ReadNodeRow, "list nodes");
}

// ---- Tokens

Status PostgresTxn::InsertToken(const TokenRow& token) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertToken"));
  BIFROST_RETURN_IF_ERROR(ValidateTokenRow(token));
  if (token.org_id.has_value()) {
    BIFROST_ASSIGN_OR_RETURN(const QueryResult org, Run(kOrgExists, "find org", {*token.org_id}));
    if (org.rows() == 0) {
      return Fail(ErrorCode::kFailedPrecondition, OrgSubject(*token.org_id) + " does not exist");
    }
  }
  Result<std::int64_t> inserted =
      RunCount(kInsertToken, "insert token",
               {token.id, token.name, token.org_id, token.role, token.hash, token.created_at,
                token.created_by, token.expires_at, token.last_used_at, token.revoked_at});
  if (!inserted) return Fail(Annotate(inserted.error(), TokenSubject(token.id)));
  if (*inserted > 0) return Ok();
  // Which of the two unique columns collided? The hash is never named.
  BIFROST_ASSIGN_OR_RETURN(const std::optional<TokenRow> same_id, GetTokenById(token.id));
  if (same_id.has_value()) {
    return Fail(ErrorCode::kAlreadyExists, TokenSubject(token.id) + " already exists");
  }
  return Fail(ErrorCode::kAlreadyExists,
              TokenSubject(token.id) + ": another token has the same hash");
}

Result<std::optional<TokenRow>> PostgresTxn::GetTokenById(std::string_view id) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result, Run(kGetTokenById, "get token by id", {id}));
  return ReadOptionalRow<TokenRow>(result, ReadTokenRow, "get token by id");
}

Result<std::optional<TokenRow>> PostgresTxn::GetTokenByHash(std::string_view hash) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result,
                           Run(kGetTokenByHash, "get token by hash", {hash}));
  return ReadOptionalRow<TokenRow>(result, ReadTokenRow, "get token by hash");
}

Result<std::vector<TokenRow>> PostgresTxn::ListTokens(std::optional<std::string_view> org_id) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result,
                           org_id.has_value() ? Run(kListTokensOrg, "list tokens", {*org_id})
                                              : Run(kListTokensAll, "list tokens"));
  return ReadRows<TokenRow>(result, ReadTokenRow, "list tokens");
}

Status PostgresTxn::RevokeToken(std::string_view id, UnixMicros at) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("RevokeToken"));
  Result<std::int64_t> revoked = RunCount(kRevokeToken, "revoke token", {id, at});
  if (!revoked) return Fail(Annotate(revoked.error(), TokenSubject(id)));
  if (*revoked == 0) return Fail(ErrorCode::kNotFound, TokenSubject(id) + " does not exist");
  return Ok();
}

Status PostgresTxn::TouchToken(std::string_view id, UnixMicros at) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("TouchToken"));
  Result<std::int64_t> touched = RunCount(kTouchToken, "touch token", {id, at});
  if (!touched) return Fail(Annotate(touched.error(), TokenSubject(id)));
  if (*touched == 0) return Fail(ErrorCode::kNotFound, TokenSubject(id) + " does not exist");
  return Ok();
}

// ---- Users

Status PostgresTxn::InsertUser(const UserRow& user) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertUser"));
  BIFROST_RETURN_IF_ERROR(ValidateUserRow(user));
  if (user.org_id.has_value()) {
    BIFROST_ASSIGN_OR_RETURN(const QueryResult org, Run(kOrgExists, "find org", {*user.org_id}));
    if (org.rows() == 0) {
      return Fail(ErrorCode::kFailedPrecondition,
                  UserSubject(user.id) + ": " + OrgSubject(*user.org_id) + " does not exist");
    }
  }
  Result<std::int64_t> inserted =
      RunCount(kInsertUser, "insert user",
               {user.id, user.email, user.org_id, user.role, user.password_hash, user.created_at,
                user.created_by, user.updated_at, user.disabled_at, user.last_login_at});
  if (!inserted) return Fail(Annotate(inserted.error(), UserSubject(user.id)));
  if (*inserted > 0) return Ok();
  // Which of the two unique columns collided?
  BIFROST_ASSIGN_OR_RETURN(const std::optional<UserRow> same_id, GetUserById(user.id));
  if (same_id.has_value()) {
    return Fail(ErrorCode::kAlreadyExists, UserSubject(user.id) + " already exists");
  }
  return Fail(ErrorCode::kAlreadyExists,
              UserSubject(user.id) + ": a user with email '" + user.email + "' already exists");
}

Result<std::optional<UserRow>> PostgresTxn::GetUserById(std::string_view id) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result, Run(kGetUserById, "get user by id", {id}));
  return ReadOptionalRow<UserRow>(result, ReadUserRow, "get user by id");
}

Result<std::optional<UserRow>> PostgresTxn::GetUserByEmail(std::string_view email) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result,
                           Run(kGetUserByEmail, "get user by email", {email}));
  return ReadOptionalRow<UserRow>(result, ReadUserRow, "get user by email");
}

Result<std::vector<UserRow>> PostgresTxn::ListUsers(std::optional<std::string_view> org_id) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result,
                           org_id.has_value() ? Run(kListUsersOrg, "list users", {*org_id})
                                              : Run(kListUsersAll, "list users"));
  return ReadRows<UserRow>(result, ReadUserRow, "list users");
}

Status PostgresTxn::UpdateUser(const UserRow& user) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("UpdateUser"));
  // The org is kept, so the new role is checked against the stored org, not user.org_id.
  BIFROST_ASSIGN_OR_RETURN(const std::optional<UserRow> current, GetUserById(user.id));
  if (!current.has_value()) {
    return Fail(ErrorCode::kNotFound, UserSubject(user.id) + " does not exist");
  }
  UserRow changed = *current;
  changed.role = user.role;
  BIFROST_RETURN_IF_ERROR(ValidateUserRow(changed));
  Result<std::int64_t> updated = RunCount(kUpdateUser, "update user",
                                          {user.id, user.role, user.password_hash, user.updated_at,
                                           user.disabled_at, user.last_login_at});
  if (!updated) return Fail(Annotate(updated.error(), UserSubject(user.id)));
  return Ok();
}

// ---- Sessions

Status PostgresTxn::InsertSession(const SessionRow& session) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertSession"));
  BIFROST_ASSIGN_OR_RETURN(const std::optional<UserRow> user, GetUserById(session.user_id));
  if (!user.has_value()) {
    return Fail(
        ErrorCode::kFailedPrecondition,
        SessionSubject(session.id) + ": " + UserSubject(session.user_id) + " does not exist");
  }
  Result<std::int64_t> inserted =
      RunCount(kInsertSession, "insert session",
               {session.id, session.user_id, session.hash, session.created_at, session.last_seen_at,
                session.expires_at, session.client_address});
  if (!inserted) return Fail(Annotate(inserted.error(), SessionSubject(session.id)));
  if (*inserted > 0) return Ok();
  // Which of the two unique columns collided? The hash is never named.
  BIFROST_ASSIGN_OR_RETURN(const QueryResult same_id,
                           Run(kSessionIdExists, "get session by id", {session.id}));
  if (same_id.rows() > 0) {
    return Fail(ErrorCode::kAlreadyExists, SessionSubject(session.id) + " already exists");
  }
  return Fail(ErrorCode::kAlreadyExists,
              SessionSubject(session.id) + ": another session has the same hash");
}

Result<std::optional<SessionRow>> PostgresTxn::GetSessionByHash(std::string_view hash) {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result,
                           Run(kGetSessionByHash, "get session by hash", {hash}));
  return ReadOptionalRow<SessionRow>(result, ReadSessionRow, "get session by hash");
}

Status PostgresTxn::TouchSession(std::string_view id, UnixMicros at) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("TouchSession"));
  Result<std::int64_t> touched = RunCount(kTouchSession, "touch session", {id, at});
  if (!touched) return Fail(Annotate(touched.error(), SessionSubject(id)));
  if (*touched == 0) return Fail(ErrorCode::kNotFound, SessionSubject(id) + " does not exist");
  return Ok();
}

Status PostgresTxn::DeleteSession(std::string_view id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteSession"));
  Result<std::int64_t> deleted = RunCount(kDeleteSession, "delete session", {id});
  if (!deleted) return Fail(Annotate(deleted.error(), SessionSubject(id)));
  if (*deleted == 0) return Fail(ErrorCode::kNotFound, SessionSubject(id) + " does not exist");
  return Ok();
}

Result<std::int64_t> PostgresTxn::DeleteUserSessions(std::string_view user_id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteUserSessions"));
  Result<std::int64_t> deleted = RunCount(kDeleteUserSessions, "delete user sessions", {user_id});
  if (!deleted) return Fail(Annotate(deleted.error(), "sessions of " + UserSubject(user_id)));
  return *deleted;
}

Result<std::int64_t> PostgresTxn::DeleteExpiredSessions(UnixMicros now, UnixMicros idle_before) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteExpiredSessions"));
  Result<std::int64_t> deleted =
      RunCount(kDeleteExpiredSessions, "delete expired sessions", {now, idle_before});
  if (!deleted) return Fail(Annotate(deleted.error(), "expired sessions"));
  return *deleted;
}

Result<std::vector<SessionRow>> PostgresTxn::ListSessions() {
  BIFROST_ASSIGN_OR_RETURN(const QueryResult result, Run(kListSessions, "list sessions"));
  return ReadRows<SessionRow>(result, ReadSessionRow, "list sessions");
}

}  // namespace bifrost::store
