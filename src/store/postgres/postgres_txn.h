// PostgresTxn: one transaction of a PostgresStore on one pooled connection. Internal to
// store/postgres/ (and its tests). Its methods are defined in two files:
//   postgres_txn.cc       lifecycle, orgs, configs, data keys, key jobs, key checks, audit,
//                         CountRows, and the helpers below;
//   postgres_txn_rows.cc  tokens, users, sessions, executions and nodes.
//
// Error behaviour: PostgreSQL aborts a transaction at its first failed statement, so after
// any failed operation (a constraint violation included) the transaction is over: every
// later call returns kFailedPrecondition and the destructor rolls back. Methods that can
// detect a broken rule with a query first (an unknown type, a row that does not exist) do
// so and leave the transaction usable, as the interface's callers expect.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/postgres/connection.h"
#include "store/postgres/postgres_store.h"
#include "store/store.h"

namespace bifrost::store {

namespace postgres_internal {

// `head`, then the conditions whose flag is set joined by AND after WHERE, then `tail`:
// a statement of constant parts only, for filtered listings. PostgreSQL needs every
// parameter number up to the highest to be used, so the numbers are assigned here: each
// set condition takes the next number, written "$?" in its text (it may appear several
// times: "(actor_id = $? OR actor_name = $?)" uses one parameter), and every "$?" of
// `tail` takes the number after. The caller passes the values of the set conditions in
// order, then the tail's. Each distinct text is prepared once per connection.
std::string FilteredSql(std::string_view head,
                        std::initializer_list<std::pair<bool, std::string_view>> conditions,
                        std::string_view tail);

// A LIMIT parameter: `limit` clamped to the largest BIGINT.
inline std::int64_t LimitValue(std::size_t limit) {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(limit > kMax ? kMax : limit);
}

// Prefixes an error's message with the thing it concerns, keeping the code.
Error Annotate(const Error& error, std::string_view subject);

// Reads every row of `result` with `read` (a function of `const Row&` returning T), then
// checks that every value parsed (kCorrupt naming `what` otherwise).
template <typename T, typename ReadRow>
Result<std::vector<T>> ReadRows(const QueryResult& result, ReadRow&& read, std::string_view what) {
  std::vector<T> rows;
  rows.reserve(static_cast<std::size_t>(result.rows()));
  for (int i = 0; i < result.rows(); ++i) rows.push_back(read(Row(result, i)));
  BIFROST_RETURN_IF_ERROR(result.CheckReads(what));
  return rows;
}

// The first row of `result` read with `read`, or nullopt when it has none.
template <typename T, typename ReadRow>
Result<std::optional<T>> ReadOptionalRow(const QueryResult& result, ReadRow&& read,
                                         std::string_view what) {
  if (result.rows() == 0) return std::optional<T>();
  std::optional<T> row(read(Row(result, 0)));
  BIFROST_RETURN_IF_ERROR(result.CheckReads(what));
  return row;
}

// Test support: whether the session of a transaction of a PostgresStore uses TLS, as the
// server sees it (pg_stat_ssl). kInvalidArgument if `txn` is not a PostgresStore's.
Result<bool> SessionUsesSsl(Txn& txn);

}  // namespace postgres_internal

// The store's state: options, the connection pool and the live transaction count.
struct PostgresStore::Impl {
  using Connection = postgres_internal::Connection;

  PostgresOptions options;
  postgres_internal::ConnectSettings settings;
  int schema_version = 0;

  // The pool. `open` counts every connection that exists or is being opened: idle ones
  // and those lent to a transaction. Begin waits while none is idle and open == pool_size.
  std::mutex mutex;
  std::condition_variable available;
  std::vector<std::unique_ptr<Connection>> idle;  // most recently used last
  int open = 0;
  std::atomic<int> live_txns{0};

  // A connection to use: an idle one (the most recently used), or a new one while fewer
  // than pool_size exist. Waits up to lock_timeout_ms for one to be given back, then
  // kUnavailable. `fresh` tells whether it was just opened.
  Result<std::unique_ptr<Connection>> Acquire(bool* fresh);
  // Gives a connection back: kept idle when it is healthy and outside any transaction
  // (an open one is rolled back first), closed otherwise.
  void Release(std::unique_ptr<Connection> connection);
  // Acquires a connection and runs `start` on it (BEGIN ..., VACUUM). A reused connection
  // that turns out to be broken (the server restarted since it was last used) is closed and
  // `start` retried on another one, so that the first request after a restart succeeds.
  // On success the connection stays lent to the caller; on failure it is given back.
  Result<std::unique_ptr<Connection>> AcquireAndRun(
      const std::function<Status(Connection&)>& start);
};

class PostgresTxn final : public Txn {
 public:
  using Param = postgres_internal::Param;
  using QueryResult = postgres_internal::QueryResult;
  using Connection = postgres_internal::Connection;

  // Takes over `connection`, already inside the transaction PostgresStore::Begin opened
  // (and, for kWrite, holding the writers' advisory lock).
  PostgresTxn(PostgresStore::Impl* store, std::unique_ptr<Connection> connection, TxnMode mode);
  PostgresTxn(const PostgresTxn&) = delete;
  PostgresTxn& operator=(const PostgresTxn&) = delete;
  // Rolls back unless committed, and gives the connection back to the pool (or closes it
  // when it broke).
  ~PostgresTxn() override;

  Status Commit() override;

  // ---- postgres_txn.cc
  Status InsertOrg(const OrgRow& org) override;
  Result<std::optional<OrgRow>> GetOrgById(std::string_view id) override;
  Result<std::optional<OrgRow>> GetOrgByName(std::string_view name) override;
  Result<std::vector<OrgRow>> ListOrgs() override;
  Status DeleteOrg(std::string_view id) override;

  Result<std::optional<ConfigRow>> GetConfig(const Scope& scope, std::string_view key) override;
  Result<std::vector<ConfigRow>> ListConfigs(const Scope& scope) override;
  Result<ConfigRow> InsertConfig(const ConfigRow& row) override;
  Status RestoreConfig(const ConfigRow& row) override;
  Result<ConfigRow> UpdateConfig(const ConfigRow& row, std::int64_t expected_version) override;
  Status DeleteConfig(const Scope& scope, std::string_view key,
                      std::optional<std::int64_t> expected_version) override;
  Result<std::vector<ConfigRow>> ListConfigsNotSealedBy(std::string_view key_id,
                                                        std::size_t limit) override;
  Status ResealConfig(const Scope& scope, std::string_view key, std::string_view expected_value,
                      std::string_view value, std::string_view key_id) override;
  Result<std::vector<ConfigRow>> ListScopeConfigsNotSealedBy(const Scope& scope,
                                                             std::string_view key_id,
                                                             std::size_t limit) override;
  Result<std::vector<SealedCount>> CountSealedConfigs() override;

  Status InsertDataKey(const DataKeyRow& row) override;
  Result<std::optional<DataKeyRow>> GetDataKey(std::string_view id) override;
  Result<std::vector<DataKeyRow>> ListScopeDataKeys(const Scope& scope) override;
  Result<std::vector<DataKeyRow>> ListDataKeys(std::string_view after_id,
                                               std::size_t limit) override;
  Status RewrapDataKey(std::string_view id, std::string_view wrapped,
                       std::string_view master_key_id,
                       std::string_view expected_master_key_id) override;
  Status SetDataKeyState(std::string_view id, std::string_view state) override;
  Status DeleteDataKey(std::string_view id) override;

  Result<std::int64_t> InsertKeyJob(const KeyJobRow& job) override;
  Status RestoreKeyJob(const KeyJobRow& job) override;
  Result<std::vector<KeyJobRow>> ListKeyJobs() override;
  Result<std::optional<KeyJobRow>> GetUnfinishedKeyJob(std::string_view kind,
                                                       std::string_view target) override;
  Result<std::vector<KeyJobRow>> ListUnfinishedKeyJobs() override;
  Status FinishKeyJob(std::int64_t id, UnixMicros at) override;

  Result<std::vector<KeyCheckRow>> ListKeyChecks() override;
  Status InsertKeyCheck(const KeyCheckRow& row) override;

  Result<std::optional<AuditRow>> GetLastAudit() override;
  Status InsertAudit(const AuditRow& row) override;
  Result<std::vector<AuditRow>> ListAudit(const AuditFilter& filter) override;
  Result<std::vector<AuditRow>> ScanAudit(std::int64_t from_seq, std::size_t limit) override;
  Result<std::optional<std::int64_t>> FirstAuditSeqSince(UnixMicros time) override;
  Result<std::optional<AuditCheckpoint>> GetAuditCheckpoint() override;
  Result<std::int64_t> PruneAudit(const AuditCheckpoint& checkpoint) override;

  Result<std::vector<TableCount>> CountRows() override;

  // ---- postgres_txn_rows.cc
  Status InsertExecution(const ExecutionRow& row) override;
  Status UpdateExecution(const ExecutionRow& row) override;
  Result<std::optional<ExecutionRow>> GetExecution(std::string_view id) override;
  Result<std::vector<ExecutionRow>> ListExecutions(const ExecutionFilter& filter) override;
  Result<std::int64_t> FailOrphanedExecutions(std::string_view error, UnixMicros at,
                                              std::string_view self_node,
                                              UnixMicros stale_before) override;
  Status RequestExecutionCancel(std::string_view id, std::string_view by) override;

  Status UpsertNode(const NodeRow& node) override;
  Status DeleteNode(std::string_view id) override;
  Result<std::vector<NodeRow>> ListNodes() override;

  Status InsertToken(const TokenRow& token) override;
  Result<std::optional<TokenRow>> GetTokenById(std::string_view id) override;
  Result<std::optional<TokenRow>> GetTokenByHash(std::string_view hash) override;
  Result<std::vector<TokenRow>> ListTokens(std::optional<std::string_view> org_id) override;
  Status RevokeToken(std::string_view id, UnixMicros at) override;
  Status TouchToken(std::string_view id, UnixMicros at) override;

  Status InsertUser(const UserRow& user) override;
  Result<std::optional<UserRow>> GetUserById(std::string_view id) override;
  Result<std::optional<UserRow>> GetUserByEmail(std::string_view email) override;
  Result<std::vector<UserRow>> ListUsers(std::optional<std::string_view> org_id) override;
  Status UpdateUser(const UserRow& user) override;

  Status InsertSession(const SessionRow& session) override;
  Result<std::optional<SessionRow>> GetSessionByHash(std::string_view hash) override;
  Status TouchSession(std::string_view id, UnixMicros at) override;
  Status DeleteSession(std::string_view id) override;
  Result<std::int64_t> DeleteUserSessions(std::string_view user_id) override;
  Result<std::int64_t> DeleteExpiredSessions(UnixMicros now, UnixMicros idle_before) override;
  Result<std::vector<SessionRow>> ListSessions() override;

  // ---- Helpers for both files (postgres_txn.cc).

  // Runs constant SQL `sql` ($1..$n) with `params` on this transaction's connection. Checks
  // first that the transaction is usable (CheckUsable). On failure the transaction is over
  // (PostgreSQL aborted it) and the error, coded by MapSqlState, names `what`. `what` should
  // be a short literal ("insert token"); callers Annotate the error with the row's subject.
  Result<QueryResult> Run(std::string_view sql, std::string_view what,
                          std::initializer_list<Param> params = {});
  // The same with parameters assembled at run time (filtered listings).
  Result<QueryResult> RunParams(std::string_view sql, std::string_view what,
                                std::span<const Param> params);
  // The same for INSERT/UPDATE/DELETE without RETURNING: how many rows it changed.
  Result<std::int64_t> RunCount(std::string_view sql, std::string_view what,
                                std::initializer_list<Param> params = {});

  // kFailedPrecondition once the transaction is over (committed, rolled back, or aborted by
  // an earlier failed statement).
  Status CheckUsable() const;
  // CheckUsable, and kFailedPrecondition naming `operation` on a read transaction.
  Status CheckWritable(std::string_view operation) const;

  // The constraint the last failed statement violated (e.g. "tokens_hash_key"), or "".
  // Constraint names are PostgreSQL's defaults for the schema in migrations.cc:
  // <table>_pkey, <table>_<column>_key, <table>_<column>_fkey, and the named ones.
  const std::string& last_constraint() const;

  TxnMode mode() const { return mode_; }
  Connection& connection() { return *connection_; }

 private:
  // Ends the transaction on the server (ROLLBACK) if it is still open and gives the
  // connection back; idempotent.
  void Finish();

  PostgresStore::Impl* store_;
  std::unique_ptr<Connection> connection_;  // null once given back
  const TxnMode mode_;
  bool active_ = true;    // the transaction is open and no statement of it failed
  bool aborted_ = false;  // a statement failed: PostgreSQL aborted the transaction
};

}  // namespace bifrost::store
