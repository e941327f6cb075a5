#include "store/postgres/postgres_txn.h"

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bifrost::store {

using postgres_internal::Annotate;
using postgres_internal::LimitValue;
using postgres_internal::Param;
using postgres_internal::QueryResult;
using postgres_internal::ReadOptionalRow;
using postgres_internal::ReadRows;
using postgres_internal::Row;

namespace postgres_internal {

std::string FilteredSql(std::string_view head,
                        std::initializer_list<std::pair<bool, std::string_view>> conditions,
                        std::string_view tail) {
  int number = 0;
  // `text` with every "$?" replaced by "$<number>".
  auto append = [](std::string& sql, std::string_view text, int n) {
    for (std::size_t at = text.find("$?"); at != std::string_view::npos; at = text.find("$?")) {
      sql += text.substr(0, at);
      sql += '$';
      sql += std::to_string(n);
      text = text.substr(at + 2);
    }
    sql += text;
  };
  std::string sql(head);
  std::string_view joiner = " WHERE ";
  for (const auto& [set, condition] : conditions) {
    if (!set) continue;
    sql += joiner;
    append(sql, condition, ++number);
    joiner = " AND ";
  }
  append(sql, tail, ++number);
  return sql;
}

Error Annotate(const Error& error, std::string_view subject) {
  std::string message(subject);
  message += ": ";
  message += error.message();
  return Error(error.code(), std::move(message));
}

Result<bool> SessionUsesSsl(Txn& txn) {
  auto* postgres = dynamic_cast<PostgresTxn*>(&txn);
  if (postgres == nullptr) {
    return Fail(ErrorCode::kInvalidArgument, "not a transaction of a PostgresStore");
  }
  BIFROST_ASSIGN_OR_RETURN(
      QueryResult result,
      postgres->Run("SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), "
                    "false)",
                    "read the session's TLS state"));
  const bool ssl = result.Bool(0, 0);
  BIFROST_RETURN_IF_ERROR(result.CheckReads("read the session's TLS state"));
  return ssl;
}

}  // namespace postgres_internal

namespace {

// ---- Subjects and row rules, checked before PostgreSQL's constraints so that the message
// names the row.

std::string ScopeText(const Scope& scope) { return std::string(scope.name()); }

std::string ConfigSubject(const Scope& scope, std::string_view key) {
  return "config '" + std::string(key) + "' in scope '" + ScopeText(scope) + "'";
}

std::string OrgSubject(std::string_view id) { return "organization '" + std::string(id) + "'"; }

std::string DataKeySubject(std::string_view id) { return "data key '" + std::string(id) + "'"; }

std::string KeyJobSubject(std::int64_t id) {
  std::string subject = "key job ";
  subject += std::to_string(id);
  return subject;
}

std::string AuditSubject(std::int64_t seq) {
  std::string subject = "audit record ";
  subject += std::to_string(seq);
  return subject;
}

Param ScopeParam(const Scope& scope) {
  return scope.is_global() ? Param::Null() : Param(scope.org_id());
}

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
    // An empty id would hide a sealed row from ListConfigsNotSealedBy("").
    return Fail(ErrorCode::kInvalidArgument,
                ConfigSubject(row.scope, row.key) + " has an empty key_id");
  }
  return Ok();
}

bool IsDataKeyState(std::string_view state) { return state == "active" || state == "retired"; }

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

Status ValidateKeyJobKind(const KeyJobRow& job) {
  if (job.kind != "master" && job.kind != "data") {
    return Fail(ErrorCode::kInvalidArgument, "key job has unknown kind '" + job.kind + "'");
  }
  return Ok();
}

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

// ---- Row readers, each in the column order of its statements below.

OrgRow ReadOrgRow(const Row& row) { return OrgRow{row.Text(0), row.Text(1), row.Int64(2)}; }

Scope ReadScope(const Row& row, int column) {
  return row.IsNull(column) ? Scope::Global() : Scope::Org(row.Text(column));
}

ConfigRow ReadConfigRow(const Row& row) {
  ConfigRow config;
  config.scope = ReadScope(row, 0);
  config.key = row.Text(1);
  config.type = row.Text(2);
  config.value = row.Text(3);
  config.key_id = row.OptionalText(4);
  config.description = row.Text(5);
  config.created_at = row.Int64(6);
  config.updated_at = row.Int64(7);
  config.updated_by = row.Text(8);
  config.version = row.Int64(9);
  return config;
}

DataKeyRow ReadDataKeyRow(const Row& row) {
  DataKeyRow key;
  key.id = row.Text(0);
  key.purpose = row.Text(1);
  key.scope = ReadScope(row, 2);
  key.state = row.Text(3);
  key.wrapped = row.Text(4);
  key.master_key_id = row.Text(5);
  key.created_at = row.Int64(6);
  return key;
}

KeyJobRow ReadKeyJobRow(const Row& row) {
  KeyJobRow job;
  job.id = row.Int64(0);
  job.kind = row.Text(1);
  job.target = row.Text(2);
  job.actor = row.Text(3);
  job.started_at = row.Int64(4);
  job.finished_at = row.OptionalInt64(5);
  return job;
}

KeyCheckRow ReadKeyCheckRow(const Row& row) {
  return KeyCheckRow{row.Text(0), row.Text(1), row.Int64(2)};
}

AuditRow ReadAuditRow(const Row& row) {
  AuditRow audit;
  audit.seq = row.Int64(0);
  audit.time = row.Int64(1);
  audit.action = row.Text(2);
  audit.outcome = row.Text(3);
  audit.org_id = row.OptionalText(4);
  audit.config_key = row.OptionalText(5);
  audit.actor_id = row.OptionalText(6);
  audit.actor_name = row.OptionalText(7);
  audit.client_address = row.Text(8);
  audit.request_id = row.Text(9);
  audit.execution_id = row.OptionalText(10);
  audit.detail = row.Text(11);
  audit.key_id = row.Text(12);
  audit.prev_mac = row.Text(13);
  audit.mac = row.Text(14);
  return audit;
}

AuditCheckpoint ReadAuditCheckpoint(const Row& row) {
  return AuditCheckpoint{row.Int64(0), row.Text(1), row.Int64(2), row.Text(3), row.Text(4)};
}

// ---- SQL. Constant text only; every value is bound. Config queries exist in a global and
// an org variant because "org_id IS NOT DISTINCT FROM $1" cannot use the partial unique
// indexes. Inserts that may collide say ON CONFLICT DO NOTHING and report kAlreadyExists
// when they inserted nothing: the transaction stays usable, as with SQLite.

constexpr std::string_view kInsertOrg =
    "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING";
constexpr std::string_view kGetOrgById =
    "SELECT id, name, created_at FROM organizations WHERE id = $1";
constexpr std::string_view kGetOrgByName =
    "SELECT id, name, created_at FROM organizations WHERE name = $1";
constexpr std::string_view kListOrgs =
    "SELECT id, name, created_at FROM organizations ORDER BY name, id";
constexpr std::string_view kDeleteOrg = "DELETE FROM organizations WHERE id = $1";

#define BIFROST_CONFIG_COLUMNS \
  "org_id, key, type, value, key_id, description, created_at, updated_at, updated_by, version"
constexpr std::string_view kGetConfigGlobal =
    "SELECT " BIFROST_CONFIG_COLUMNS " FROM configs WHERE org_id IS NULL AND key = $1";
constexpr std::string_view kGetConfigOrg =
    "SELECT " BIFROST_CONFIG_COLUMNS " FROM configs WHERE org_id = $2 AND key = $1";
constexpr std::string_view kListConfigsGlobal =
    "SELECT " BIFROST_CONFIG_COLUMNS " FROM configs WHERE org_id IS NULL ORDER BY key";
constexpr std::string_view kListConfigsOrg =
    "SELECT " BIFROST_CONFIG_COLUMNS " FROM configs WHERE org_id = $1 ORDER BY key";
constexpr std::string_view kFindConfigGlobal =
    "SELECT id, version FROM configs WHERE org_id IS NULL AND key = $1";
constexpr std::string_view kFindConfigOrg =
    "SELECT id, version FROM configs WHERE org_id = $2 AND key = $1";
// A new row has version 1; a copied one keeps its own ($10).
constexpr std::string_view kInsertConfig =
    "INSERT INTO configs (" BIFROST_CONFIG_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) ON CONFLICT DO NOTHING "
    "RETURNING " BIFROST_CONFIG_COLUMNS;
constexpr std::string_view kRestoreConfig =
    "INSERT INTO configs (" BIFROST_CONFIG_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING "
    "RETURNING " BIFROST_CONFIG_COLUMNS;
constexpr std::string_view kUpdateConfig =
    "UPDATE configs SET type = $2, value = $3, key_id = $4, description = $5, "
    "updated_at = $6, updated_by = $7, version = version + 1 WHERE id = $1 "
    "RETURNING " BIFROST_CONFIG_COLUMNS;
constexpr std::string_view kDeleteConfig = "DELETE FROM configs WHERE id = $1";
constexpr std::string_view kListNotSealedBy =
    "SELECT " BIFROST_CONFIG_COLUMNS
    " FROM configs WHERE key_id IS NOT NULL AND key_id <> $1 ORDER BY id LIMIT $2";
// Only if the row still holds exactly the value the caller read: a row changed, deleted or
// re-created since holds another envelope (each has its own random IV).
constexpr std::string_view kResealConfigGlobal =
    "UPDATE configs SET value = $3, key_id = $4 "
    "WHERE org_id IS NULL AND key = $1 AND type = 'secret' AND value = $2";
constexpr std::string_view kResealConfigOrg =
    "UPDATE configs SET value = $3, key_id = $4 "
    "WHERE org_id = $5 AND key = $1 AND type = 'secret' AND value = $2";
// A rotation calls this until it returns nothing, so each call must cost the batch, not the
// scope: the two ranges either side of the key each come out of configs_scope_key_id in
// (key_id, key) order (a merge, no sort of the scope), and only the first $2 of them are
// then sorted by key. So a batch is the first $2 rows in (key_id, key) order, as in SQLite.
#define BIFROST_NOT_SEALED_BY(scope_condition)                                       \
  "SELECT " BIFROST_CONFIG_COLUMNS " FROM ((SELECT " BIFROST_CONFIG_COLUMNS          \
  " FROM configs WHERE " scope_condition                                             \
  " AND key_id IS NOT NULL AND key_id < $1 ORDER BY key_id, key LIMIT $2) "          \
  "UNION ALL (SELECT " BIFROST_CONFIG_COLUMNS " FROM configs WHERE " scope_condition \
  " AND key_id IS NOT NULL AND key_id > $1 ORDER BY key_id, key LIMIT $2) "          \
  "ORDER BY key_id, key LIMIT $2) AS batch ORDER BY key"
constexpr std::string_view kListScopeNotSealedByGlobal = BIFROST_NOT_SEALED_BY("org_id IS NULL");
constexpr std::string_view kListScopeNotSealedByOrg = BIFROST_NOT_SEALED_BY("org_id = $3");
#undef BIFROST_NOT_SEALED_BY
#undef BIFROST_CONFIG_COLUMNS
// The global scope (NULL) first, as SQLite sorts NULL.
constexpr std::string_view kCountSealedConfigs =
    "SELECT org_id, key_id, count(*) FROM configs WHERE key_id IS NOT NULL "
    "GROUP BY org_id, key_id ORDER BY org_id NULLS FIRST, key_id";

#define BIFROST_DATA_KEY_COLUMNS "id, purpose, org_id, state, wrapped, master_key_id, created_at"
constexpr std::string_view kInsertDataKey =
    "INSERT INTO data_keys (" BIFROST_DATA_KEY_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
constexpr std::string_view kGetDataKey =
    "SELECT " BIFROST_DATA_KEY_COLUMNS " FROM data_keys WHERE id = $1";
// The active key first, then the retired ones by age.
constexpr std::string_view kListScopeDataKeysGlobal =
    "SELECT " BIFROST_DATA_KEY_COLUMNS
    " FROM data_keys WHERE org_id IS NULL AND purpose = 'config' "
    "ORDER BY state = 'active' DESC, created_at, id";
constexpr std::string_view kListScopeDataKeysOrg =
    "SELECT " BIFROST_DATA_KEY_COLUMNS
    " FROM data_keys WHERE org_id = $1 AND purpose = 'config' "
    "ORDER BY state = 'active' DESC, created_at, id";
constexpr std::string_view kListDataKeys =
    "SELECT " BIFROST_DATA_KEY_COLUMNS " FROM data_keys WHERE id > $1 ORDER BY id LIMIT $2";
#undef BIFROST_DATA_KEY_COLUMNS
constexpr std::string_view kRewrapDataKey =
    "UPDATE data_keys SET wrapped = $2, master_key_id = $3 WHERE id = $1 AND master_key_id = $4";
// Whether making the key active would give its scope a second active config key.
constexpr std::string_view kOtherActiveDataKey =
    "SELECT k.purpose, EXISTS (SELECT 1 FROM data_keys o WHERE o.purpose = 'config' AND "
    "o.state = 'active' AND o.id <> k.id AND o.org_id IS NOT DISTINCT FROM k.org_id) "
    "FROM data_keys k WHERE k.id = $1";
constexpr std::string_view kSetDataKeyState = "UPDATE data_keys SET state = $2 WHERE id = $1";
constexpr std::string_view kDeleteDataKey = "DELETE FROM data_keys WHERE id = $1";

#define BIFROST_KEY_JOB_COLUMNS "id, kind, target, actor, started_at, finished_at"
constexpr std::string_view kInsertKeyJob =
    "INSERT INTO key_jobs (kind, target, actor, started_at, finished_at) "
    "VALUES ($1, $2, $3, $4, $5) RETURNING id";
constexpr std::string_view kRestoreKeyJob =
    "INSERT INTO key_jobs (" BIFROST_KEY_JOB_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
// Moves the id sequence past a restored id (never back), so later InsertKeyJob ids are
// greater. setval is not undone by a rollback; a skipped id is harmless.
constexpr std::string_view kAdvanceKeyJobIds =
    "SELECT setval('key_jobs_id_seq', GREATEST($1::bigint, "
    "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM key_jobs_id_seq)))";
constexpr std::string_view kListKeyJobs =
    "SELECT " BIFROST_KEY_JOB_COLUMNS " FROM key_jobs ORDER BY id";
constexpr std::string_view kGetUnfinishedKeyJob =
    "SELECT " BIFROST_KEY_JOB_COLUMNS
    " FROM key_jobs WHERE kind = $1 AND target = $2 AND finished_at IS NULL "
    "ORDER BY id DESC LIMIT 1";
constexpr std::string_view kListUnfinishedKeyJobs =
    "SELECT " BIFROST_KEY_JOB_COLUMNS " FROM key_jobs WHERE finished_at IS NULL ORDER BY id";
#undef BIFROST_KEY_JOB_COLUMNS
// The first finishing time wins, as for token revocation.
constexpr std::string_view kFinishKeyJob =
    "UPDATE key_jobs SET finished_at = coalesce(finished_at, $2) WHERE id = $1";

constexpr std::string_view kListKeyChecks =
    "SELECT key_id, check_value, added_at FROM key_checks ORDER BY added_at, key_id";
constexpr std::string_view kInsertKeyCheck =
    "INSERT INTO key_checks (key_id, check_value, added_at) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING";

#define BIFROST_AUDIT_COLUMNS                                                              \
  "seq, time, action, outcome, org_id, config_key, actor_id, actor_name, client_address, " \
  "request_id, execution_id, detail, key_id, prev_mac, mac"
constexpr std::string_view kInsertAudit =
    "INSERT INTO audit_log (" BIFROST_AUDIT_COLUMNS
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
    "ON CONFLICT DO NOTHING";
constexpr std::string_view kGetLastAudit =
    "SELECT " BIFROST_AUDIT_COLUMNS " FROM audit_log ORDER BY seq DESC LIMIT 1";
constexpr std::string_view kScanAudit =
    "SELECT " BIFROST_AUDIT_COLUMNS " FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2";
// ListAudit's statement is assembled from these parts (FilteredSql): one statement per
// combination of set filter fields, so that a set org_id can use its index.
constexpr std::string_view kListAuditHead = "SELECT " BIFROST_AUDIT_COLUMNS " FROM audit_log";
#undef BIFROST_AUDIT_COLUMNS
constexpr std::string_view kListAuditTail = " ORDER BY seq DESC LIMIT $?";
// The first record at or after a time, walking seq upwards: cheap for retention, whose
// cutoff is near the start of the log (min(seq) would read every later record).
constexpr std::string_view kFirstAuditSeqSince =
    "SELECT seq FROM audit_log WHERE time >= $1 ORDER BY seq LIMIT 1";
constexpr std::string_view kGetAuditCheckpoint =
    "SELECT first_seq, prev_mac, created_at, key_id, mac FROM audit_checkpoint WHERE id = 1";
constexpr std::string_view kPruneAudit = "DELETE FROM audit_log WHERE seq < $1";
constexpr std::string_view kPutAuditCheckpoint =
    "INSERT INTO audit_checkpoint (id, first_seq, prev_mac, created_at, key_id, mac) "
    "VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET "
    "first_seq = excluded.first_seq, prev_mac = excluded.prev_mac, "
    "created_at = excluded.created_at, key_id = excluded.key_id, mac = excluded.mac";

// Every table in the order store.h promises, counted in one statement (one snapshot).
constexpr std::string_view kTableNames[] = {
    "organizations", "configs", "key_checks", "tokens", "data_keys", "key_jobs",
    "executions",    "users",   "sessions",   "nodes",  "audit_log", "audit_checkpoint"};
constexpr std::string_view kCountRows =
    "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM configs), "
    "(SELECT count(*) FROM key_checks), (SELECT count(*) FROM tokens), "
    "(SELECT count(*) FROM data_keys), (SELECT count(*) FROM key_jobs), "
    "(SELECT count(*) FROM executions), (SELECT count(*) FROM users), "
    "(SELECT count(*) FROM sessions), (SELECT count(*) FROM nodes), "
    "(SELECT count(*) FROM audit_log), (SELECT count(*) FROM audit_checkpoint)";

}  // namespace

// ---- Lifecycle

PostgresTxn::PostgresTxn(PostgresStore::Impl* store, std::unique_ptr<Connection> connection,
                         TxnMode mode)
    : store_(store), connection_(std::move(connection)), mode_(mode) {
  store_->live_txns.fetch_add(1);
}

PostgresTxn::~PostgresTxn() {
  Finish();
  store_->live_txns.fetch_sub(1);
}

void PostgresTxn::Finish() {
  active_ = false;
  // Release rolls back a transaction that is still open before pooling the connection.
  if (connection_ != nullptr) store_->Release(std::move(connection_));
}

Status PostgresTxn::CheckUsable() const {
  if (aborted_) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the transaction was aborted by an earlier failed statement");
  }
  if (!active_ || connection_ == nullptr) {
    return Fail(ErrorCode::kFailedPrecondition,
                "the transaction is over (committed, rolled back or failed)");
  }
  return Ok();
}

Status PostgresTxn::CheckWritable(std::string_view operation) const {
  if (mode_ != TxnMode::kWrite) {
    return Fail(ErrorCode::kFailedPrecondition,
                std::string(operation) + " called on a read transaction");
  }
  return CheckUsable();
}

const std::string& PostgresTxn::last_constraint() const {
  static const std::string kNone;
  return connection_ == nullptr ? kNone : connection_->last_constraint();
}

Result<QueryResult> PostgresTxn::Run(std::string_view sql, std::string_view what,
                                     std::initializer_list<Param> params) {
  return RunParams(sql, what, std::span<const Param>(params.begin(), params.size()));
}

Result<QueryResult> PostgresTxn::RunParams(std::string_view sql, std::string_view what,
                                           std::span<const Param> params) {
  BIFROST_RETURN_IF_ERROR(CheckUsable());
  Result<QueryResult> result = connection_->Execute(sql, what, params);
  if (!result && (connection_->broken() || connection_->TransactionAborted())) {
    aborted_ = true;
  }
  return result;
}

Result<std::int64_t> PostgresTxn::RunCount(std::string_view sql, std::string_view what,
                                           std::initializer_list<Param> params) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(sql, what, params));
  const std::int64_t count = result.affected_rows();
  BIFROST_RETURN_IF_ERROR(result.CheckReads(what));
  return count;
}

Status PostgresTxn::Commit() {
  BIFROST_RETURN_IF_ERROR(CheckUsable());
  Result<QueryResult> committed = connection_->ExecScript("COMMIT", "commit");
  Status status = Ok();
  if (!committed) {
    status = Fail(std::move(committed.error()));
  } else if (committed->command_tag() != "COMMIT") {
    // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK.
    status = Fail(ErrorCode::kFailedPrecondition,
                  "commit: the transaction was rolled back after an earlier error");
  }
  Finish();
  return status;
}

// ---- Organizations

Status PostgresTxn::InsertOrg(const OrgRow& org) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertOrg"));
  Result<std::int64_t> inserted =
      RunCount(kInsertOrg, "insert org", {org.id, org.name, org.created_at});
  if (!inserted) return Fail(Annotate(inserted.error(), OrgSubject(org.id)));
  if (*inserted == 1) return Ok();
  // Which of the two unique columns collided?
  BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> same_id, GetOrgById(org.id));
  if (same_id.has_value()) {
    return Fail(ErrorCode::kAlreadyExists, OrgSubject(org.id) + " already exists");
  }
  return Fail(ErrorCode::kAlreadyExists, "an organization named '" + org.name + "' already exists");
}

Result<std::optional<OrgRow>> PostgresTxn::GetOrgById(std::string_view id) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kGetOrgById, "get org by id", {id}));
  return ReadOptionalRow<OrgRow>(result, ReadOrgRow, "get org by id");
}

Result<std::optional<OrgRow>> PostgresTxn::GetOrgByName(std::string_view name) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kGetOrgByName, "get org by name", {name}));
  return ReadOptionalRow<OrgRow>(result, ReadOrgRow, "get org by name");
}

Result<std::vector<OrgRow>> PostgresTxn::ListOrgs() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kListOrgs, "list orgs"));
  return ReadRows<OrgRow>(result, ReadOrgRow, "list orgs");
}

Status PostgresTxn::DeleteOrg(std::string_view id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteOrg"));
  Result<std::int64_t> deleted = RunCount(kDeleteOrg, "delete org", {id});
  if (!deleted) return Fail(Annotate(deleted.error(), OrgSubject(id)));
  if (*deleted == 0) return Fail(ErrorCode::kNotFound, OrgSubject(id) + " does not exist");
  return Ok();
}

// ---- Config rows

Result<std::optional<ConfigRow>> PostgresTxn::GetConfig(const Scope& scope, std::string_view key) {
  Result<QueryResult> result = scope.is_global()
                                   ? Run(kGetConfigGlobal, "get config", {key})
                                   : Run(kGetConfigOrg, "get config", {key, scope.org_id()});
  if (!result) return Fail(Annotate(result.error(), ConfigSubject(scope, key)));
  return ReadOptionalRow<ConfigRow>(*result, ReadConfigRow, "get config");
}

Result<std::vector<ConfigRow>> PostgresTxn::ListConfigs(const Scope& scope) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result,
                           scope.is_global()
                               ? Run(kListConfigsGlobal, "list configs")
                               : Run(kListConfigsOrg, "list configs", {scope.org_id()}));
  return ReadRows<ConfigRow>(result, ReadConfigRow, "list configs");
}

namespace {

// InsertConfig, or with a version RestoreConfig.
Result<ConfigRow> InsertConfigRow(PostgresTxn& txn, const ConfigRow& row,
                                  std::optional<std::int64_t> version) {
  BIFROST_RETURN_IF_ERROR(txn.CheckWritable(version ? "RestoreConfig" : "InsertConfig"));
  BIFROST_RETURN_IF_ERROR(ValidateConfigRow(row));
  if (!row.scope.is_global()) {
    // Checked first, so that a missing org is kFailedPrecondition and the transaction
    // stays usable (a foreign-key violation would abort it).
    BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, txn.GetOrgById(row.scope.org_id()));
    if (!org.has_value()) {
      return Fail(ErrorCode::kFailedPrecondition,
                  OrgSubject(row.scope.org_id()) + " does not exist");
    }
  }
  Result<QueryResult> inserted =
      version ? txn.Run(kRestoreConfig, "restore config",
                        {ScopeParam(row.scope), row.key, row.type, row.value, row.key_id,
                         row.description, row.created_at, row.updated_at, row.updated_by, *version})
              : txn.Run(kInsertConfig, "insert config",
                        {ScopeParam(row.scope), row.key, row.type, row.value, row.key_id,
                         row.description, row.created_at, row.updated_at, row.updated_by});
  if (!inserted) return Fail(Annotate(inserted.error(), ConfigSubject(row.scope, row.key)));
  BIFROST_ASSIGN_OR_RETURN(std::optional<ConfigRow> stored,
                           ReadOptionalRow<ConfigRow>(*inserted, ReadConfigRow, "insert config"));
  if (!stored.has_value()) {
    return Fail(ErrorCode::kAlreadyExists, ConfigSubject(row.scope, row.key) + " already exists");
  }
  return std::move(*stored);
}

// The id of the config row about to be changed: kNotFound if there is none, kConflict if
// `expected_version` is given and differs. The writers' lock keeps it valid until used.
Result<std::int64_t> FindForChange(PostgresTxn& txn, const Scope& scope, std::string_view key,
                                   std::optional<std::int64_t> expected_version) {
  Result<QueryResult> found = scope.is_global()
                                  ? txn.Run(kFindConfigGlobal, "find config", {key})
                                  : txn.Run(kFindConfigOrg, "find config", {key, scope.org_id()});
  if (!found) return Fail(Annotate(found.error(), ConfigSubject(scope, key)));
  if (found->rows() == 0) {
    return Fail(ErrorCode::kNotFound, "config '" + std::string(key) +
                                          "' does not exist in scope '" + ScopeText(scope) + "'");
  }
  const std::int64_t id = found->Int64(0, 0);
  const std::int64_t version = found->Int64(0, 1);
  BIFROST_RETURN_IF_ERROR(found->CheckReads("find config"));
  if (expected_version.has_value() && version != *expected_version) {
    return Fail(ErrorCode::kConflict, ConfigSubject(scope, key) + " is at version " +
                                          std::to_string(version) + ", not the expected " +
                                          std::to_string(*expected_version));
  }
  return id;
}

}  // namespace

Result<ConfigRow> PostgresTxn::InsertConfig(const ConfigRow& row) {
  return InsertConfigRow(*this, row, std::nullopt);
}

Status PostgresTxn::RestoreConfig(const ConfigRow& row) {
  if (row.version < 1) {
    return Fail(ErrorCode::kInvalidArgument,
                ConfigSubject(row.scope, row.key) + ": version must be at least 1");
  }
  BIFROST_ASSIGN_OR_RETURN(const ConfigRow restored, InsertConfigRow(*this, row, row.version));
  (void)restored;
  return Ok();
}

Result<ConfigRow> PostgresTxn::UpdateConfig(const ConfigRow& row, std::int64_t expected_version) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("UpdateConfig"));
  BIFROST_RETURN_IF_ERROR(ValidateConfigRow(row));
  BIFROST_ASSIGN_OR_RETURN(const std::int64_t id,
                           FindForChange(*this, row.scope, row.key, expected_version));
  Result<QueryResult> updated =
      Run(kUpdateConfig, "update config",
          {id, row.type, row.value, row.key_id, row.description, row.updated_at, row.updated_by});
  if (!updated) return Fail(Annotate(updated.error(), ConfigSubject(row.scope, row.key)));
  BIFROST_ASSIGN_OR_RETURN(std::optional<ConfigRow> stored,
                           ReadOptionalRow<ConfigRow>(*updated, ReadConfigRow, "update config"));
  if (!stored.has_value()) return Fail(ErrorCode::kInternal, "update config returned no row");
  return std::move(*stored);
}

Status PostgresTxn::DeleteConfig(const Scope& scope, std::string_view key,
                                 std::optional<std::int64_t> expected_version) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteConfig"));
  BIFROST_ASSIGN_OR_RETURN(const std::int64_t id,
                           FindForChange(*this, scope, key, expected_version));
  Result<std::int64_t> deleted = RunCount(kDeleteConfig, "delete config", {id});
  if (!deleted) return Fail(Annotate(deleted.error(), ConfigSubject(scope, key)));
  return Ok();
}

Result<std::vector<ConfigRow>> PostgresTxn::ListConfigsNotSealedBy(std::string_view key_id,
                                                                   std::size_t limit) {
  BIFROST_ASSIGN_OR_RETURN(
      QueryResult result,
      Run(kListNotSealedBy, "list configs not sealed by a key", {key_id, LimitValue(limit)}));
  return ReadRows<ConfigRow>(result, ReadConfigRow, "list configs not sealed by a key");
}

Status PostgresTxn::ResealConfig(const Scope& scope, std::string_view key,
                                 std::string_view expected_value, std::string_view value,
                                 std::string_view key_id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("ResealConfig"));
  if (key_id.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                ConfigSubject(scope, key) + ": a sealed value needs a key_id");
  }
  Result<std::int64_t> resealed =
      scope.is_global()
          ? RunCount(kResealConfigGlobal, "reseal config", {key, expected_value, value, key_id})
          : RunCount(kResealConfigOrg, "reseal config",
                     {key, expected_value, value, key_id, scope.org_id()});
  if (!resealed) return Fail(Annotate(resealed.error(), ConfigSubject(scope, key)));
  if (*resealed == 0) {
    return Fail(ErrorCode::kConflict, ConfigSubject(scope, key) +
                                          " was changed, deleted or re-created since it was "
                                          "read; it was not re-sealed");
  }
  return Ok();
}

Result<std::vector<ConfigRow>> PostgresTxn::ListScopeConfigsNotSealedBy(const Scope& scope,
                                                                        std::string_view key_id,
                                                                        std::size_t limit) {
  constexpr std::string_view kWhat = "list a scope's configs not sealed by a key";
  BIFROST_ASSIGN_OR_RETURN(
      QueryResult result,
      scope.is_global()
          ? Run(kListScopeNotSealedByGlobal, kWhat, {key_id, LimitValue(limit)})
          : Run(kListScopeNotSealedByOrg, kWhat, {key_id, LimitValue(limit), scope.org_id()}));
  return ReadRows<ConfigRow>(result, ReadConfigRow, kWhat);
}

Result<std::vector<SealedCount>> PostgresTxn::CountSealedConfigs() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kCountSealedConfigs, "count sealed configs"));
  return ReadRows<SealedCount>(
      result,
      [](const Row& row) {
        return SealedCount{
            .scope = ReadScope(row, 0), .key_id = row.Text(1), .count = row.Int64(2)};
      },
      "count sealed configs");
}

// ---- Data keys

Status PostgresTxn::InsertDataKey(const DataKeyRow& row) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertDataKey"));
  BIFROST_RETURN_IF_ERROR(ValidateDataKeyRow(row));
  if (!row.scope.is_global()) {
    BIFROST_ASSIGN_OR_RETURN(const std::optional<OrgRow> org, GetOrgById(row.scope.org_id()));
    if (!org.has_value()) {
      return Fail(
          ErrorCode::kFailedPrecondition,
          DataKeySubject(row.id) + ": " + OrgSubject(row.scope.org_id()) + " does not exist");
    }
  }
  Result<std::int64_t> inserted = RunCount(kInsertDataKey, "insert data key",
                                           {row.id, row.purpose, ScopeParam(row.scope), row.state,
                                            row.wrapped, row.master_key_id, row.created_at});
  if (!inserted) return Fail(Annotate(inserted.error(), DataKeySubject(row.id)));
  if (*inserted == 1) return Ok();
  // Which unique rule: the id, or one active key per scope?
  BIFROST_ASSIGN_OR_RETURN(const std::optional<DataKeyRow> same_id, GetDataKey(row.id));
  if (same_id.has_value()) {
    return Fail(ErrorCode::kAlreadyExists, DataKeySubject(row.id) + " already exists");
  }
  return Fail(ErrorCode::kAlreadyExists, DataKeySubject(row.id) + ": scope '" +
                                             ScopeText(row.scope) +
                                             "' already has an active data key");
}

Result<std::optional<DataKeyRow>> PostgresTxn::GetDataKey(std::string_view id) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kGetDataKey, "get data key", {id}));
  return ReadOptionalRow<DataKeyRow>(result, ReadDataKeyRow, "get data key");
}

Result<std::vector<DataKeyRow>> PostgresTxn::ListScopeDataKeys(const Scope& scope) {
  constexpr std::string_view kWhat = "list a scope's data keys";
  BIFROST_ASSIGN_OR_RETURN(QueryResult result,
                           scope.is_global() ? Run(kListScopeDataKeysGlobal, kWhat)
                                             : Run(kListScopeDataKeysOrg, kWhat, {scope.org_id()}));
  return ReadRows<DataKeyRow>(result, ReadDataKeyRow, kWhat);
}

Result<std::vector<DataKeyRow>> PostgresTxn::ListDataKeys(std::string_view after_id,
                                                          std::size_t limit) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result,
                           Run(kListDataKeys, "list data keys", {after_id, LimitValue(limit)}));
  return ReadRows<DataKeyRow>(result, ReadDataKeyRow, "list data keys");
}

Status PostgresTxn::RewrapDataKey(std::string_view id, std::string_view wrapped,
                                  std::string_view master_key_id,
                                  std::string_view expected_master_key_id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("RewrapDataKey"));
  if (wrapped.empty() || master_key_id.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                DataKeySubject(id) + " needs a wrapped key and a master key id");
  }
  Result<std::int64_t> rewrapped = RunCount(kRewrapDataKey, "re-wrap data key",
                                            {id, wrapped, master_key_id, expected_master_key_id});
  if (!rewrapped) return Fail(Annotate(rewrapped.error(), DataKeySubject(id)));
  if (*rewrapped == 1) return Ok();
  BIFROST_ASSIGN_OR_RETURN(const std::optional<DataKeyRow> current, GetDataKey(id));
  if (!current.has_value()) {
    return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
  }
  return Fail(ErrorCode::kConflict, DataKeySubject(id) + " is wrapped by master key '" +
                                        current->master_key_id + "', not the expected '" +
                                        std::string(expected_master_key_id) + "'");
}

Status PostgresTxn::SetDataKeyState(std::string_view id, std::string_view state) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("SetDataKeyState"));
  if (!IsDataKeyState(state)) {
    return Fail(ErrorCode::kInvalidArgument,
                DataKeySubject(id) + ": unknown state '" + std::string(state) + "'");
  }
  // The rules are checked first, so that breaking one leaves the transaction usable.
  Result<QueryResult> current = Run(kOtherActiveDataKey, "set data key state", {id});
  if (!current) return Fail(Annotate(current.error(), DataKeySubject(id)));
  if (current->rows() == 0) {
    return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
  }
  const std::string purpose = current->Text(0, 0);
  const bool other_active = current->Bool(0, 1);
  BIFROST_RETURN_IF_ERROR(current->CheckReads("set data key state"));
  if (state == "active") {
    if (purpose != "config") {
      return Fail(ErrorCode::kInvalidArgument,
                  DataKeySubject(id) + " is an audit key, which must stay retired");
    }
    if (other_active) {
      return Fail(ErrorCode::kAlreadyExists,
                  DataKeySubject(id) + ": its scope already has an active data key");
    }
  }
  Result<std::int64_t> set = RunCount(kSetDataKeyState, "set data key state", {id, state});
  if (!set) {
    if (set.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(ErrorCode::kAlreadyExists,
                  DataKeySubject(id) + ": its scope already has an active data key");
    }
    return Fail(Annotate(set.error(), DataKeySubject(id)));
  }
  if (*set == 0) return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
  return Ok();
}

Status PostgresTxn::DeleteDataKey(std::string_view id) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("DeleteDataKey"));
  Result<std::int64_t> deleted = RunCount(kDeleteDataKey, "delete data key", {id});
  if (!deleted) return Fail(Annotate(deleted.error(), DataKeySubject(id)));
  if (*deleted == 0) return Fail(ErrorCode::kNotFound, DataKeySubject(id) + " does not exist");
  return Ok();
}

// ---- Key rotation jobs

Result<std::int64_t> PostgresTxn::InsertKeyJob(const KeyJobRow& job) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertKeyJob"));
  BIFROST_RETURN_IF_ERROR(ValidateKeyJobKind(job));
  Result<QueryResult> inserted =
      Run(kInsertKeyJob, "insert key job",
          {job.kind, job.target, job.actor, job.started_at, job.finished_at});
  if (!inserted) return Fail(Annotate(inserted.error(), "key job"));
  if (inserted->rows() != 1) return Fail(ErrorCode::kInternal, "insert key job returned no id");
  const std::int64_t id = inserted->Int64(0, 0);
  BIFROST_RETURN_IF_ERROR(inserted->CheckReads("insert key job"));
  return id;
}

Status PostgresTxn::RestoreKeyJob(const KeyJobRow& job) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("RestoreKeyJob"));
  BIFROST_RETURN_IF_ERROR(ValidateKeyJobKind(job));
  if (job.id < 1) return Fail(ErrorCode::kInvalidArgument, "key job id must be at least 1");
  Result<std::int64_t> inserted =
      RunCount(kRestoreKeyJob, "restore key job",
               {job.id, job.kind, job.target, job.actor, job.started_at, job.finished_at});
  if (!inserted) return Fail(Annotate(inserted.error(), KeyJobSubject(job.id)));
  if (*inserted == 0) {
    return Fail(ErrorCode::kAlreadyExists, KeyJobSubject(job.id) + " already exists");
  }
  Result<QueryResult> advanced = Run(kAdvanceKeyJobIds, "advance the key job ids", {job.id});
  if (!advanced) return Fail(Annotate(advanced.error(), KeyJobSubject(job.id)));
  return Ok();
}

Result<std::vector<KeyJobRow>> PostgresTxn::ListKeyJobs() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kListKeyJobs, "list key jobs"));
  return ReadRows<KeyJobRow>(result, ReadKeyJobRow, "list key jobs");
}

Result<std::optional<KeyJobRow>> PostgresTxn::GetUnfinishedKeyJob(std::string_view kind,
                                                                  std::string_view target) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result,
                           Run(kGetUnfinishedKeyJob, "get unfinished key job", {kind, target}));
  return ReadOptionalRow<KeyJobRow>(result, ReadKeyJobRow, "get unfinished key job");
}

Result<std::vector<KeyJobRow>> PostgresTxn::ListUnfinishedKeyJobs() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result,
                           Run(kListUnfinishedKeyJobs, "list unfinished key jobs"));
  return ReadRows<KeyJobRow>(result, ReadKeyJobRow, "list unfinished key jobs");
}

Status PostgresTxn::FinishKeyJob(std::int64_t id, UnixMicros at) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("FinishKeyJob"));
  Result<std::int64_t> finished = RunCount(kFinishKeyJob, "finish key job", {id, at});
  if (!finished) return Fail(Annotate(finished.error(), KeyJobSubject(id)));
  if (*finished == 0) return Fail(ErrorCode::kNotFound, KeyJobSubject(id) + " does not exist");
  return Ok();
}

// ---- Key checks

Result<std::vector<KeyCheckRow>> PostgresTxn::ListKeyChecks() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kListKeyChecks, "list key checks"));
  return ReadRows<KeyCheckRow>(result, ReadKeyCheckRow, "list key checks");
}

Status PostgresTxn::InsertKeyCheck(const KeyCheckRow& row) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertKeyCheck"));
  const std::string subject = "key check for key '" + row.key_id + "'";
  Result<std::int64_t> inserted =
      RunCount(kInsertKeyCheck, "insert key check", {row.key_id, row.check_value, row.added_at});
  if (!inserted) return Fail(Annotate(inserted.error(), subject));
  if (*inserted == 0) {
    return Fail(ErrorCode::kAlreadyExists,
                "a key check for key '" + row.key_id + "' already exists");
  }
  return Ok();
}

// ---- Audit log

Result<std::optional<AuditRow>> PostgresTxn::GetLastAudit() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kGetLastAudit, "get last audit record"));
  return ReadOptionalRow<AuditRow>(result, ReadAuditRow, "get last audit record");
}

Status PostgresTxn::InsertAudit(const AuditRow& row) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("InsertAudit"));
  BIFROST_RETURN_IF_ERROR(ValidateAuditRow(row));
  Result<std::int64_t> inserted =
      RunCount(kInsertAudit, "insert audit record",
               {row.seq, row.time, row.action, row.outcome, row.org_id, row.config_key,
                row.actor_id, row.actor_name, row.client_address, row.request_id, row.execution_id,
                row.detail, row.key_id, row.prev_mac, row.mac});
  if (!inserted) return Fail(Annotate(inserted.error(), AuditSubject(row.seq)));
  if (*inserted == 0) {
    return Fail(ErrorCode::kAlreadyExists, AuditSubject(row.seq) + " already exists");
  }
  return Ok();
}

Result<std::vector<AuditRow>> PostgresTxn::ListAudit(const AuditFilter& filter) {
  const std::string sql = postgres_internal::FilteredSql(
      kListAuditHead,
      {{filter.org_id.has_value(), "org_id = $?"},
       {filter.config_key.has_value(), "config_key = $?"},
       {filter.action.has_value(), "action = $?"},
       {filter.actor.has_value(), "(actor_id = $? OR actor_name = $?)"},
       {filter.outcome.has_value(), "outcome = $?"},
       {filter.since.has_value(), "time >= $?"},
       {filter.until.has_value(), "time < $?"},
       {filter.before_seq.has_value(), "seq < $?"}},
      kListAuditTail);
  // The values of the set fields, in the order above, then the limit.
  std::vector<Param> params;
  if (filter.org_id) params.emplace_back(*filter.org_id);
  if (filter.config_key) params.emplace_back(*filter.config_key);
  if (filter.action) params.emplace_back(*filter.action);
  if (filter.actor) params.emplace_back(*filter.actor);
  if (filter.outcome) params.emplace_back(*filter.outcome);
  if (filter.since) params.emplace_back(*filter.since);
  if (filter.until) params.emplace_back(*filter.until);
  if (filter.before_seq) params.emplace_back(*filter.before_seq);
  params.emplace_back(LimitValue(filter.limit));
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, RunParams(sql, "list audit records", params));
  return ReadRows<AuditRow>(result, ReadAuditRow, "list audit records");
}

Result<std::vector<AuditRow>> PostgresTxn::ScanAudit(std::int64_t from_seq, std::size_t limit) {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result,
                           Run(kScanAudit, "scan audit records", {from_seq, LimitValue(limit)}));
  return ReadRows<AuditRow>(result, ReadAuditRow, "scan audit records");
}

Result<std::optional<std::int64_t>> PostgresTxn::FirstAuditSeqSince(UnixMicros time) {
  constexpr std::string_view kWhat = "find the first audit record since a time";
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kFirstAuditSeqSince, kWhat, {time}));
  return ReadOptionalRow<std::int64_t>(
      result, [](const Row& row) { return row.Int64(0); }, kWhat);
}

Result<std::optional<AuditCheckpoint>> PostgresTxn::GetAuditCheckpoint() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kGetAuditCheckpoint, "get audit checkpoint"));
  return ReadOptionalRow<AuditCheckpoint>(result, ReadAuditCheckpoint, "get audit checkpoint");
}

Result<std::int64_t> PostgresTxn::PruneAudit(const AuditCheckpoint& checkpoint) {
  BIFROST_RETURN_IF_ERROR(CheckWritable("PruneAudit"));
  if (checkpoint.first_seq < 1) {
    std::string message = "audit checkpoint: first_seq must be at least 1, not ";
    message += std::to_string(checkpoint.first_seq);
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  Result<std::int64_t> deleted =
      RunCount(kPruneAudit, "prune audit records", {checkpoint.first_seq});
  if (!deleted) return Fail(Annotate(deleted.error(), "audit log"));
  Result<std::int64_t> stored =
      RunCount(kPutAuditCheckpoint, "store audit checkpoint",
               {checkpoint.first_seq, checkpoint.prev_mac, checkpoint.created_at, checkpoint.key_id,
                checkpoint.mac});
  if (!stored) return Fail(Annotate(stored.error(), "audit checkpoint"));
  return *deleted;
}

// ---- Row counts

Result<std::vector<TableCount>> PostgresTxn::CountRows() {
  BIFROST_ASSIGN_OR_RETURN(QueryResult result, Run(kCountRows, "count rows"));
  std::vector<TableCount> counts;
  for (std::size_t i = 0; i < std::size(kTableNames); ++i) {
    counts.push_back(
        {.table = std::string(kTableNames[i]), .rows = result.Int64(0, static_cast<int>(i))});
  }
  BIFROST_RETURN_IF_ERROR(result.CheckReads("count rows"));
  return counts;
}

}  // namespace bifrost::store
