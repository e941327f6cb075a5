#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "tests/store_conformance.h"
#include "tests/support/status_matchers.h"

namespace bifrost::store {
namespace {

// ---- The conformance suite, against SQLite

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(StoreFactory{
                             "sqlite",
                             [](const std::string& scratch_dir) -> std::unique_ptr<Store> {
                               SqliteOptions options;
                               options.data_dir = scratch_dir + "/data";
                               auto store = SqliteStore::Open(options);
                               if (!store) {
                                 ADD_FAILURE() << store.error().ToString();
                                 return nullptr;
                               }
                               return std::move(*store);
                             }}),
                         StoreFactoryName);

// ---- SQLite-only behaviour

constexpr UnixMicros kT0 = 1'700'000'000'000'000;
const std::string kOrgA = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0001";

// A raw sqlite3 handle on the store's file, for looking behind the interface.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    rc_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
    if (rc_ == SQLITE_OK) sqlite3_busy_timeout(db_, 5000);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close_v2(db_); }

  bool IsOpen() const { return rc_ == SQLITE_OK; }

  // The first column of the first row as text; nullopt if there is no row or on error.
  std::optional<std::string> QueryText(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return std::nullopt;
    }
    std::optional<std::string> value;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      value = text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
    }
    sqlite3_finalize(stmt);
    return value;
  }

  // The detail column of every row of EXPLAIN QUERY PLAN for `sql`, joined by " | ".
  std::string QueryPlan(const std::string& sql) {
    const std::string explain = "EXPLAIN QUERY PLAN " + sql;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, explain.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << explain << ": " << sqlite3_errmsg(db_);
      return "";
    }
    std::string plan;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* detail = sqlite3_column_text(stmt, 3);
      if (!plan.empty()) plan += " | ";
      if (detail != nullptr) plan += reinterpret_cast<const char*>(detail);
    }
    sqlite3_finalize(stmt);
    return plan;
  }

  // The result code of running `sql`, failures included.
  int TryExec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }

  bool Exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) ADD_FAILURE() << sql << ": " << (message ? message : "?");
    sqlite3_free(message);
    return rc == SQLITE_OK;
  }

 private:
  sqlite3* db_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

// Rolls a database back to what migrations 1 to 6 leave: the tests of older versions start
// from there.
void UndoVersion7(RawDb& raw) {
  ASSERT_TRUE(raw.Exec("DROP INDEX executions_node_unfinished"));
  ASSERT_TRUE(raw.Exec("ALTER TABLE executions DROP COLUMN cancel_requested_by"));
  ASSERT_TRUE(raw.Exec("ALTER TABLE executions DROP COLUMN node_id"));
  ASSERT_TRUE(raw.Exec("DROP TABLE nodes"));
  ASSERT_TRUE(raw.Exec("DELETE FROM schema_migrations WHERE version = 7"));
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string pattern = (tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp";
    pattern += "/bifrost-sqlite-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    ASSERT_NE(::mkdtemp(buffer.data()), nullptr);
    scratch_ = buffer.data();
    data_dir_ = scratch_ + "/data";
    db_path_ = data_dir_ + "/bifrost.db";
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(scratch_, ignored);
  }

  SqliteOptions Options() {
    SqliteOptions options;
    options.data_dir = data_dir_;
    options.clock = &clock_;
    options.reader_connections = 2;
    return options;
  }

  std::string scratch_;
  std::string data_dir_;
  std::string db_path_;
  FakeClock clock_{kT0};
};

TEST_F(SqliteStoreTest, OpenReportsBackendAndPath) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(store->BackendName(), "sqlite");
  EXPECT_EQ(store->SchemaVersion(), 7);
  EXPECT_EQ(store->database_path(), db_path_);
}

TEST_F(SqliteStoreTest, EveryConnectionHasTheRequiredSettings) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(std::vector<SqliteConnectionSettings> all, store->InspectConnections());
  ASSERT_EQ(all.size(), 3u);  // the writer and two readers
  EXPECT_EQ(all[0].role, "writer");
  for (const SqliteConnectionSettings& s : all) {
    SCOPED_TRACE(s.role);
    EXPECT_EQ(s.journal_mode, "wal");
    EXPECT_EQ(s.synchronous, 2);  // FULL
    EXPECT_EQ(s.foreign_keys, 1);
    EXPECT_EQ(s.busy_timeout_ms, 5000);
    EXPECT_EQ(s.temp_store, 2);  // MEMORY
    EXPECT_EQ(s.secure_delete, 1);
    EXPECT_EQ(s.query_only, s.role == "reader" ? 1 : 0);
  }
  EXPECT_EQ(all[1].role, "reader");
  EXPECT_EQ(all[2].role, "reader");

  // The journal mode is a property of the file: a second, independent connection sees it.
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), std::optional<std::string>("wal"));
}

TEST_F(SqliteStoreTest, SchemaMigrationsRecordsEachVersionOnceAcrossReopens) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    EXPECT_EQ(store->SchemaVersion(), 7);
  }
  clock_.AdvanceMicros(60'000'000);
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    EXPECT_EQ(store->SchemaVersion(), 7);
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM schema_migrations"),
            std::optional<std::string>("7"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(version || ':' || name || ':' || applied_at, ' ') "
                          "FROM (SELECT * FROM schema_migrations ORDER BY version)"),
            std::optional<std::string>(
                "1:initial_schema:" + std::to_string(kT0) + " 2:api_tokens:" + std::to_string(kT0) +
                " 3:audit_log:" + std::to_string(kT0) + " 4:data_keys:" + std::to_string(kT0) +
                " 5:executions:" + std::to_string(kT0) + " 6:users_and_sessions:" +
                std::to_string(kT0) + " 7:nodes:" + std::to_string(kT0)));
  // The tables of every migration exist and are STRICT.
  for (const char* table :
       {"organizations", "configs", "key_checks", "tokens", "audit_log", "audit_checkpoint",
        "data_keys", "key_jobs", "executions", "users", "sessions", "nodes", "schema_migrations"}) {
    EXPECT_EQ(raw.QueryText(std::string("SELECT strict FROM pragma_table_list WHERE name = '") +
                            table + "'"),
              std::optional<std::string>("1"))
        << table;
  }
}

TEST_F(SqliteStoreTest, ConcurrentOpensOfAFreshDatabaseMigrateOnce) {
  constexpr int kOpeners = 4;
  std::latch start(kOpeners);
  std::vector<std::optional<Error>> errors(kOpeners);
  std::vector<int> versions(kOpeners, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto store = SqliteStore::Open(Options());
      if (store) {
        versions[i] = (*store)->SchemaVersion();
      } else {
        errors[i] = store.error();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kOpeners; ++i) {
    EXPECT_FALSE(errors[i].has_value()) << errors[i]->ToString();
    EXPECT_EQ(versions[i], 7);
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM schema_migrations"),
            std::optional<std::string>("7"));
}

// A database written by a binary that knew only migration 1 is brought to the latest version
// on open, keeping its data, and migrations 2 to 6 are recorded with the time of that open.
TEST_F(SqliteStoreTest, VersionOneDatabaseIsMigratedToLatest) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  {
    // Roll the file back to what migration 1 alone leaves, plus some data.
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    UndoVersion7(raw);
    ASSERT_TRUE(raw.Exec("DROP TABLE sessions"));
    ASSERT_TRUE(raw.Exec("DROP TABLE users"));
    ASSERT_TRUE(raw.Exec("DROP TABLE executions"));
    ASSERT_TRUE(raw.Exec("DROP INDEX configs_scope_key_id"));
    ASSERT_TRUE(raw.Exec("DROP TABLE key_jobs"));
    ASSERT_TRUE(raw.Exec("DROP TABLE data_keys"));
    ASSERT_TRUE(raw.Exec("DROP TABLE audit_checkpoint"));
    ASSERT_TRUE(raw.Exec("DROP TABLE audit_log"));
    ASSERT_TRUE(raw.Exec("DROP TABLE tokens"));
    ASSERT_TRUE(raw.Exec("DELETE FROM schema_migrations WHERE version >= 2"));
    ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('" + kOrgA +
                         "', 'acme', 0)"));
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sqlite_schema WHERE name = 'tokens'"),
              std::optional<std::string>("0"));
  }
  clock_.AdvanceMicros(5'000'000);
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(store->SchemaVersion(), 7);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> org, txn->GetOrgById(kOrgA));
    ASSERT_TRUE(org.has_value());
    EXPECT_EQ(org->name, "acme");
    TokenRow token;
    token.id = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0001";
    token.name = "ci";
    token.org_id = kOrgA;
    token.role = "member";
    token.hash = std::string(64, 'a');
    token.created_by = "bootstrap";
    ASSERT_OK(txn->InsertToken(token));
    ASSERT_OK(txn->Commit());
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 2"),
            std::optional<std::string>(std::to_string(kT0 + 5'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 3"),
            std::optional<std::string>(std::to_string(kT0 + 5'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 4"),
            std::optional<std::string>(std::to_string(kT0 + 5'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 5"),
            std::optional<std::string>(std::to_string(kT0 + 5'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 6"),
            std::optional<std::string>(std::to_string(kT0 + 5'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 1"),
            std::optional<std::string>(std::to_string(kT0)));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM tokens"), std::optional<std::string>("1"));
  // The org index exists (listing by org and the cascade use it).
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM pragma_index_list('tokens') "
                          "WHERE name = 'tokens_org_id'"),
            std::optional<std::string>("1"));
}

// A database written by a binary that knew migrations 1 and 2 gains the audit tables on
// open, keeping its orgs, configs and tokens; migrations 3 to 6 are recorded with that
// open's time.
TEST_F(SqliteStoreTest, VersionTwoDatabaseIsMigratedToLatest) {
  const std::string token_id = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0001";
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    TokenRow token;
    token.id = token_id;
    token.name = "ci";
    token.org_id = kOrgA;
    token.role = "member";
    token.hash = std::string(64, 'a');
    token.created_by = "bootstrap";
    ASSERT_OK(txn->InsertToken(token));
    ASSERT_OK(txn->Commit());
  }
  {
    // Roll the file back to what migrations 1 and 2 leave.
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    UndoVersion7(raw);
    ASSERT_TRUE(raw.Exec("DROP TABLE sessions"));
    ASSERT_TRUE(raw.Exec("DROP TABLE users"));
    ASSERT_TRUE(raw.Exec("DROP TABLE executions"));
    ASSERT_TRUE(raw.Exec("DROP INDEX configs_scope_key_id"));
    ASSERT_TRUE(raw.Exec("DROP TABLE key_jobs"));
    ASSERT_TRUE(raw.Exec("DROP TABLE data_keys"));
    ASSERT_TRUE(raw.Exec("DROP TABLE audit_checkpoint"));
    ASSERT_TRUE(raw.Exec("DROP TABLE audit_log"));
    ASSERT_TRUE(raw.Exec("DELETE FROM schema_migrations WHERE version >= 3"));
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sqlite_schema WHERE name LIKE 'audit%'"),
              std::optional<std::string>("0"));
  }
  clock_.AdvanceMicros(7'000'000);
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(store->SchemaVersion(), 7);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> org, txn->GetOrgById(kOrgA));
    ASSERT_TRUE(org.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> token, txn->GetTokenById(token_id));
    ASSERT_TRUE(token.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<AuditRow> none, txn->GetLastAudit());
    EXPECT_FALSE(none.has_value());
    AuditRow row;
    row.seq = 1;
    row.time = kT0;
    row.action = "org.create";
    row.outcome = "success";
    row.org_id = kOrgA;
    row.key_id = "ak1";
    row.prev_mac = std::string(64, '0');
    row.mac = std::string(64, 'f');
    ASSERT_OK(txn->InsertAudit(row));
    ASSERT_OK_AND_ASSIGN(const std::int64_t pruned,
                         txn->PruneAudit(AuditCheckpoint{1, row.prev_mac, kT0, "ak1", row.mac}));
    EXPECT_EQ(pruned, 0);
    ASSERT_OK(txn->Commit());
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT group_concat(version || ':' || name || ':' || applied_at, ' ') "
                          "FROM (SELECT * FROM schema_migrations ORDER BY version)"),
            std::optional<std::string>(
                "1:initial_schema:" + std::to_string(kT0) + " 2:api_tokens:" + std::to_string(kT0) +
                " 3:audit_log:" + std::to_string(kT0 + 7'000'000) +
                " 4:data_keys:" + std::to_string(kT0 + 7'000'000) +
                " 5:executions:" + std::to_string(kT0 + 7'000'000) + " 6:users_and_sessions:" +
                std::to_string(kT0 + 7'000'000) + " 7:nodes:" + std::to_string(kT0 + 7'000'000)));
  for (const char* table : {"audit_log", "audit_checkpoint"}) {
    EXPECT_EQ(raw.QueryText(std::string("SELECT strict FROM pragma_table_list WHERE name = '") +
                            table + "'"),
              std::optional<std::string>("1"))
        << table;
  }
  EXPECT_EQ(raw.QueryText("SELECT group_concat(name, ' ') FROM (SELECT name FROM "
                          "pragma_index_list('audit_log') WHERE origin = 'c' ORDER BY name)"),
            std::optional<std::string>("audit_log_org_seq audit_log_time"));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM audit_log"), std::optional<std::string>("1"));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM tokens"), std::optional<std::string>("1"));
}

// The audit tables refuse what the store refuses, and keep no foreign key to organizations.
TEST_F(SqliteStoreTest, SchemaEnforcesAuditOutcomeUniqueSeqAndOneCheckpoint) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  ASSERT_TRUE(raw.Exec("PRAGMA foreign_keys=ON"));  // off by default per connection
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'a', 0)"));
  const std::string insert =
      "INSERT INTO audit_log (seq, time, action, outcome, org_id, config_key, actor_id, "
      "actor_name, client_address, request_id, execution_id, detail, key_id, prev_mac, mac) "
      "VALUES ";
  ASSERT_TRUE(raw.Exec(insert + "(1, 0, 'a', 'success', 'o1', NULL, NULL, NULL, '', '', NULL, "
                                "'', 'k', 'p', 'm')"));
  // An org the database never knew: allowed, there is no foreign key.
  ASSERT_TRUE(raw.Exec(insert + "(2, 0, 'a', 'denied', 'nope', NULL, NULL, NULL, '', '', NULL, "
                                "'', 'k', 'p', 'm')"));
  for (const char* values : {
           "(1, 0, 'a', 'error', NULL, NULL, NULL, NULL, '', '', NULL, '', 'k', 'p', 'm')",  // dup
           "(3, 0, 'a', 'ok', NULL, NULL, NULL, NULL, '', '', NULL, '', 'k', 'p', 'm')",  // outcome
           "(0, 0, 'a', 'error', NULL, NULL, NULL, NULL, '', '', NULL, '', 'k', 'p', 'm')",  // seq
           "(3, 'now', 'a', 'error', NULL, NULL, NULL, NULL, '', '', NULL, '', 'k', 'p', 'm')",
           "(3, 0, 'a', 'error', NULL, NULL, NULL, NULL, '', '', NULL, '', 'k', 'p', NULL)",  // mac
           "(3, 0, NULL, 'error', NULL, NULL, NULL, NULL, '', '', NULL, '', 'k', 'p', 'm')",
       }) {
    EXPECT_EQ(raw.TryExec(insert + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM audit_log"), std::optional<std::string>("2"));

  const std::string checkpoint =
      "INSERT INTO audit_checkpoint (id, first_seq, prev_mac, created_at, key_id, mac) VALUES ";
  ASSERT_TRUE(raw.Exec(checkpoint + "(1, 2, 'p', 0, 'k', 'm')"));
  for (const char* values : {
           "(1, 3, 'p', 0, 'k', 'm')",     // a second row with id 1
           "(2, 3, 'p', 0, 'k', 'm')",     // any other id
           "(NULL, 3, 'p', 0, 'k', 'm')",  // an assigned id (would be 2)
       }) {
    EXPECT_EQ(raw.TryExec(checkpoint + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM audit_checkpoint"),
            std::optional<std::string>("1"));

  // Deleting the org leaves its records.
  ASSERT_TRUE(raw.Exec("DELETE FROM organizations WHERE id = 'o1'"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(seq) FROM audit_log"),
            std::optional<std::string>("1,2"));
}

// The one org index is usable for "org_id = ?" (a partial index needs the planner to see that
// the query implies its WHERE clause) and gives seq order without a sort.
TEST_F(SqliteStoreTest, AuditListByOrgUsesTheOrgIndex) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  const std::string plan = raw.QueryPlan(
      "SELECT seq, time, action, outcome, org_id, config_key, actor_id, actor_name, "
      "client_address, request_id, execution_id, detail, key_id, prev_mac, mac FROM audit_log "
      "WHERE org_id = ?1 AND seq < ?8 ORDER BY seq DESC LIMIT ?9");
  EXPECT_NE(plan.find("audit_log_org_seq (org_id=? AND seq<?)"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
}

// Readers are query_only, so SQLite would refuse an audit write on them too; the store's own
// check answers first, naming the operation.
TEST_F(SqliteStoreTest, AuditWritesOnReadTxnAreRefusedByTheStoreItself) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  AuditRow row;
  row.seq = 1;
  row.outcome = "success";
  const Status inserted = txn->InsertAudit(row);
  ASSERT_FALSE(inserted.has_value());
  EXPECT_EQ(inserted.error().message(), "InsertAudit called on a read transaction");
  const Result<std::int64_t> pruned = txn->PruneAudit(AuditCheckpoint{1, "", kT0, "", ""});
  ASSERT_FALSE(pruned.has_value());
  EXPECT_EQ(pruned.error().message(), "PruneAudit called on a read transaction");
}

TEST_F(SqliteStoreTest, NewerSchemaVersionIsRefused) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  {
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    ASSERT_TRUE(
        raw.Exec("INSERT INTO schema_migrations (version, name, applied_at) "
                 "VALUES (8, 'from_the_future', 0)"));
  }
  auto store = SqliteStore::Open(Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kFailedPrecondition) << store.error().ToString();
  EXPECT_EQ(store.error().message(),
            "database schema version 8 is newer than this bifrost supports (7); upgrade bifrost");
}

TEST_F(SqliteStoreTest, DataIsDurableAcrossCloseAndReopen) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    ConfigRow row;
    row.scope = Scope::Org(kOrgA);
    row.key = "db_password";
    row.type = "secret";
    row.value = "gAAAAAenvelope";
    row.key_id = "k1";
    row.created_at = row.updated_at = kT0;
    row.updated_by = "user:alice";
    ASSERT_OK(txn->InsertConfig(row));
    ASSERT_OK(txn->InsertKeyCheck(KeyCheckRow{"k1", "check", kT0}));
    ASSERT_OK(txn->Commit());
  }
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> org, txn->GetOrgByName("acme"));
  ASSERT_TRUE(org.has_value());
  EXPECT_EQ(org->id, kOrgA);
  ASSERT_OK_AND_ASSIGN(std::optional<ConfigRow> got,
                       txn->GetConfig(Scope::Org(kOrgA), "db_password"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value, "gAAAAAenvelope");
  EXPECT_EQ(got->key_id, std::optional<std::string>("k1"));
  EXPECT_EQ(got->version, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<KeyCheckRow> checks, txn->ListKeyChecks());
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].check_value, "check");
}

TEST_F(SqliteStoreTest, FilesArePrivateToTheOwner) {
  // The usual default umask: the store must not depend on a strict one.
  struct UmaskGuard {
    mode_t saved = ::umask(022);
    ~UmaskGuard() { ::umask(saved); }
  } umask_guard;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  {
    // Write something so that the -wal and -shm files exist.
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    ASSERT_OK(txn->Commit());
  }
  EXPECT_EQ(ModeOf(data_dir_), 0700u);
  EXPECT_EQ(ModeOf(db_path_), 0600u);
  ASSERT_TRUE(std::filesystem::exists(db_path_ + "-wal"));
  EXPECT_EQ(ModeOf(db_path_ + "-wal"), 0600u);
  ASSERT_TRUE(std::filesystem::exists(db_path_ + "-shm"));
  EXPECT_EQ(ModeOf(db_path_ + "-shm"), 0600u);
}

TEST_F(SqliteStoreTest, MissingParentDirectoriesAreCreatedPrivate) {
  SqliteOptions options = Options();
  options.data_dir = scratch_ + "/a/b/data";
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(options));
  EXPECT_EQ(ModeOf(options.data_dir), 0700u);
  EXPECT_EQ(ModeOf(options.data_dir + "/bifrost.db"), 0600u);
}

TEST_F(SqliteStoreTest, ExistingLooseDatabaseFileIsTightened) {
  std::filesystem::create_directories(data_dir_);
  { std::ofstream(db_path_).flush(); }  // an empty file is an empty database
  ASSERT_EQ(::chmod(db_path_.c_str(), 0644), 0);
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(ModeOf(db_path_), 0600u);
}

TEST_F(SqliteStoreTest, NonSqliteFileIsCorrupt) {
  std::filesystem::create_directories(data_dir_);
  {
    std::ofstream out(db_path_, std::ios::binary);
    for (int i = 0; i < 512; ++i) out << "this is not a database, just some text. ";
  }
  auto store = SqliteStore::Open(Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kCorrupt) << store.error().ToString();
  EXPECT_NE(store.error().message().find(db_path_), std::string::npos) << store.error().message();
}

TEST_F(SqliteStoreTest, DataDirThatIsAFileIsAClearError) {
  { std::ofstream(data_dir_) << "not a directory"; }
  auto store = SqliteStore::Open(Options());
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kFailedPrecondition) << store.error().ToString();
  EXPECT_NE(store.error().message().find(data_dir_), std::string::npos) << store.error().message();
  EXPECT_NE(store.error().message().find("not a directory"), std::string::npos)
      << store.error().message();
}

TEST_F(SqliteStoreTest, UnwritableDataDirIsAClearError) {
  std::filesystem::create_directories(data_dir_);
  ASSERT_EQ(::chmod(data_dir_.c_str(), 0500), 0);
  // "" when the open failed as it should, otherwise what went wrong.
  auto check = [this]() -> std::string {
    auto store = SqliteStore::Open(Options());
    if (store.has_value()) return "the store opened in a read-only directory";
    if (store.error().code() != ErrorCode::kFailedPrecondition) {
      return "wrong code: " + store.error().ToString();
    }
    if (store.error().message().find(data_dir_) == std::string::npos) {
      return "message does not name the path: " + store.error().ToString();
    }
    return "";
  };
  std::string failure;
  if (::geteuid() != 0) {
    failure = check();
  } else {
    // Root ignores permission bits, so the open runs in a child that drops to "nobody".
    ASSERT_EQ(::chmod(scratch_.c_str(), 0755), 0);
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(pipe_fds[0]);
      std::string result = (::setgid(65534) == 0 && ::setuid(65534) == 0)
                               ? check()
                               : std::string("cannot drop privileges");
      if (result.empty()) result = "ok";
      [[maybe_unused]] auto n = ::write(pipe_fds[1], result.data(), result.size());
      ::_exit(0);
    }
    ::close(pipe_fds[1]);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0) {
      failure.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (failure == "ok") failure.clear();
  }
  ASSERT_EQ(::chmod(data_dir_.c_str(), 0700), 0);
  EXPECT_EQ(failure, "");
}

TEST_F(SqliteStoreTest, InvalidOptionsAreRejected) {
  SqliteOptions no_dir = Options();
  no_dir.data_dir.clear();
  EXPECT_EQ(SqliteStore::Open(no_dir).error().code(), ErrorCode::kInvalidArgument);
  SqliteOptions no_readers = Options();
  no_readers.reader_connections = 0;
  EXPECT_EQ(SqliteStore::Open(no_readers).error().code(), ErrorCode::kInvalidArgument);
  SqliteOptions negative_timeout = Options();
  negative_timeout.busy_timeout_ms = -1;
  EXPECT_EQ(SqliteStore::Open(negative_timeout).error().code(), ErrorCode::kInvalidArgument);
}

// SQLite pins a read transaction's snapshot when it begins, not at its first query.
TEST_F(SqliteStoreTest, ReadSnapshotIsTakenAtBegin) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(auto reader, store->Begin(TxnMode::kRead));
  {
    ASSERT_OK_AND_ASSIGN(auto writer, store->Begin(TxnMode::kWrite));
    ASSERT_OK(writer->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    ASSERT_OK(writer->Commit());
  }
  ASSERT_OK_AND_ASSIGN(std::vector<OrgRow> orgs, reader->ListOrgs());
  EXPECT_TRUE(orgs.empty());
}

// Every reader checked out: Begin(kRead) waits up to the busy timeout, then kUnavailable.
// The same for the writer slot.
TEST_F(SqliteStoreTest, ExhaustedPoolsTimeOutWithUnavailable) {
  SqliteOptions options = Options();
  options.reader_connections = 1;
  options.busy_timeout_ms = 0;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(options));
  {
    ASSERT_OK_AND_ASSIGN(auto held, store->Begin(TxnMode::kRead));
    auto second = store->Begin(TxnMode::kRead);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable) << second.error().ToString();
  }
  ASSERT_OK_AND_ASSIGN(auto reader, store->Begin(TxnMode::kRead));  // returned to the pool
  {
    ASSERT_OK_AND_ASSIGN(auto held, store->Begin(TxnMode::kWrite));
    std::optional<ErrorCode> code;
    // From another thread, as a second request would come.
    std::thread other([&] {
      auto second = store->Begin(TxnMode::kWrite);
      if (!second) code = second.error().code();
    });
    other.join();
    EXPECT_EQ(code, std::optional<ErrorCode>(ErrorCode::kUnavailable));
  }
  ASSERT_OK_AND_ASSIGN(auto writer, store->Begin(TxnMode::kWrite));
}

// Another process holding SQLite's write lock: BEGIN IMMEDIATE times out as kUnavailable.
TEST_F(SqliteStoreTest, ForeignWriteLockIsUnavailable) {
  SqliteOptions options = Options();
  options.busy_timeout_ms = 0;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(options));
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  ASSERT_TRUE(raw.Exec("BEGIN IMMEDIATE"));
  auto txn = store->Begin(TxnMode::kWrite);
  ASSERT_FALSE(txn.has_value());
  EXPECT_EQ(txn.error().code(), ErrorCode::kUnavailable) << txn.error().ToString();
  ASSERT_TRUE(raw.Exec("ROLLBACK"));
  // The failed Begin gave the writer slot back.
  ASSERT_OK_AND_ASSIGN(auto retry, store->Begin(TxnMode::kWrite));
  ASSERT_OK(retry->Commit());
}

// secure_delete: a deleted value is overwritten in the file, not left in a free block.
TEST_F(SqliteStoreTest, DeletedValuesDoNotLingerInTheFile) {
  const std::string marker = "ENVELOPE-MARKER-5f1d3c9a7b";
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    {
      ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
      for (int i = 0; i < 3; ++i) {
        ConfigRow row;
        row.key = "secret_" + std::to_string(i);
        row.type = "secret";
        row.value = marker + std::to_string(i);
        row.key_id = "k1";
        row.updated_by = "user:alice";
        ASSERT_OK(txn->InsertConfig(row));
      }
      ConfigRow keep;
      keep.key = "keep";
      keep.type = "string";
      keep.value = "still here";
      keep.updated_by = "user:alice";
      ASSERT_OK(txn->InsertConfig(keep));
      ASSERT_OK(txn->Commit());
    }
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK(txn->DeleteConfig(Scope::Global(), "secret_" + std::to_string(i), std::nullopt));
    }
    ASSERT_OK(txn->Commit());
  }  // closing the last connection checkpoints the WAL into the file
  std::ifstream in(db_path_, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(bytes.empty());
  EXPECT_NE(bytes.find("still here"), std::string::npos);  // the scan would find it
  EXPECT_EQ(bytes.find(marker), std::string::npos);
}

// Error messages may name keys and ids but never a value.
TEST_F(SqliteStoreTest, ErrorMessagesDoNotContainValues) {
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  const std::string envelope = "gAAAAA-secret-envelope-bytes";
  ConfigRow row;
  row.key = "db_password";
  row.type = "secret";
  row.value = envelope;
  row.key_id = "k1";
  row.updated_by = "user:alice";
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertConfig(row));
    ASSERT_OK(txn->Commit());
  }
  std::vector<Error> errors;
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    auto duplicate = txn->InsertConfig(row);
    ASSERT_FALSE(duplicate.has_value());
    errors.push_back(duplicate.error());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    auto stale = txn->UpdateConfig(row, 5);
    ASSERT_FALSE(stale.has_value());
    errors.push_back(stale.error());
    ConfigRow no_key = row;
    no_key.key_id.reset();
    auto invalid = txn->UpdateConfig(no_key, 1);
    ASSERT_FALSE(invalid.has_value());
    errors.push_back(invalid.error());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ConfigRow in_missing_org = row;
    in_missing_org.scope = Scope::Org(kOrgA);
    auto missing = txn->InsertConfig(in_missing_org);
    ASSERT_FALSE(missing.has_value());
    errors.push_back(missing.error());
  }
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0].code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(errors[1].code(), ErrorCode::kConflict);
  EXPECT_EQ(errors[2].code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(errors[3].code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(errors[3].message(), "organization '" + kOrgA + "' does not exist");
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const std::string& message = errors[i].message();
    EXPECT_EQ(message.find(envelope), std::string::npos) << message;
    if (i < 3) {
      EXPECT_NE(message.find("db_password"), std::string::npos) << message;
    }
  }
}

// The schema itself rejects rows that bypass the store's checks.
TEST_F(SqliteStoreTest, SchemaEnforcesSecretKeyIdPairingAndScopeUniqueness) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  const std::string insert =
      "INSERT INTO configs (org_id, key, type, value, key_id, created_at, updated_at, "
      "updated_by, version) VALUES ";
  ASSERT_TRUE(raw.Exec(insert + "(NULL, 'k', 'string', 'v', NULL, 0, 0, 'u', 1)"));
  ASSERT_TRUE(raw.Exec("PRAGMA foreign_keys=ON"));  // off by default per connection
  for (const char* values : {
           "(NULL, 'k', 'string', 'v', NULL, 0, 0, 'u', 1)",      // duplicate global key
           "(NULL, 's', 'secret', 'v', NULL, 0, 0, 'u', 1)",      // secret without key_id
           "(NULL, 'p', 'string', 'v', 'k1', 0, 0, 'u', 1)",      // key_id on a plain value
           "(NULL, 't', 'float', 'v', NULL, 0, 0, 'u', 1)",       // unknown type
           "(NULL, 'x', 'string', 'v', NULL, 'now', 0, 'u', 1)",  // STRICT: text timestamp
           "('nope', 'k', 'string', 'v', NULL, 0, 0, 'u', 1)",    // organization missing
       }) {
    EXPECT_EQ(raw.TryExec(insert + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM configs"), std::optional<std::string>("1"));
}

TEST_F(SqliteStoreTest, SchemaEnforcesTokenRoleOrgPairingAndUniqueHash) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  ASSERT_TRUE(raw.Exec("PRAGMA foreign_keys=ON"));  // off by default per connection
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'a', 0)"));
  const std::string insert =
      "INSERT INTO tokens (id, name, org_id, role, hash, created_at, created_by, expires_at, "
      "last_used_at, revoked_at) VALUES ";
  ASSERT_TRUE(raw.Exec(insert + "('t1', 'n', NULL, 'platform-admin', 'h1', 0, 'b', NULL, NULL, "
                                "NULL)"));
  ASSERT_TRUE(raw.Exec(insert + "('t2', 'n', 'o1', 'reader', 'h2', 0, 'b', 5, NULL, NULL)"));
  for (const char* values : {
           "('t1', 'n', 'o1', 'admin', 'h3', 0, 'b', NULL, NULL, NULL)",           // dup id
           "('t3', 'n', 'o1', 'admin', 'h1', 0, 'b', NULL, NULL, NULL)",           // dup hash
           "('t3', 'n', 'o1', 'platform-admin', 'h3', 0, 'b', NULL, NULL, NULL)",  // org + pa
           "('t3', 'n', NULL, 'admin', 'h3', 0, 'b', NULL, NULL, NULL)",           // no org
           "('t3', 'n', 'o1', 'owner', 'h3', 0, 'b', NULL, NULL, NULL)",           // bad role
           "('t3', 'n', 'nope', 'admin', 'h3', 0, 'b', NULL, NULL, NULL)",         // org gone
           "('t3', 'n', 'o1', 'admin', 'h3', 0, 'b', 'never', NULL, NULL)",        // STRICT
           "('t3', NULL, 'o1', 'admin', 'h3', 0, 'b', NULL, NULL, NULL)",          // no name
       }) {
    EXPECT_EQ(raw.TryExec(insert + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM tokens"), std::optional<std::string>("2"));
  // Deleting the org takes its tokens with it, and only them.
  ASSERT_TRUE(raw.Exec("DELETE FROM organizations WHERE id = 'o1'"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(id) FROM tokens"), std::optional<std::string>("t1"));
}

// A database from before data keys (schema 3) keeps its rows, sealed directly by a master
// key, and gains the data key and key job tables and the rotation index (and the later
// migrations).
TEST_F(SqliteStoreTest, VersionThreeDatabaseIsMigratedToLatest) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    ConfigRow row;
    row.scope = Scope::Org(kOrgA);
    row.key = "db_password";
    row.type = "secret";
    row.value = "bf1:00000000000000aa:legacy";
    row.key_id = "00000000000000aa";
    row.updated_by = "user:alice";
    ASSERT_OK(txn->InsertConfig(row));
    ASSERT_OK(txn->Commit());
  }
  {
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    UndoVersion7(raw);
    ASSERT_TRUE(raw.Exec("DROP TABLE sessions"));
    ASSERT_TRUE(raw.Exec("DROP TABLE users"));
    ASSERT_TRUE(raw.Exec("DROP TABLE executions"));
    ASSERT_TRUE(raw.Exec("DROP INDEX configs_scope_key_id"));
    ASSERT_TRUE(raw.Exec("DROP TABLE key_jobs"));
    ASSERT_TRUE(raw.Exec("DROP TABLE data_keys"));
    ASSERT_TRUE(raw.Exec("DELETE FROM schema_migrations WHERE version >= 4"));
  }
  clock_.AdvanceMicros(9'000'000);
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(store->SchemaVersion(), 7);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::vector<ConfigRow> left,
                         txn->ListScopeConfigsNotSealedBy(Scope::Org(kOrgA), "dk", 10));
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].value, "bf1:00000000000000aa:legacy");
    ASSERT_OK_AND_ASSIGN(std::vector<DataKeyRow> keys, txn->ListDataKeys("", 10));
    EXPECT_TRUE(keys.empty());
    ASSERT_OK(txn->InsertDataKey(DataKeyRow{.id = "dk",
                                            .purpose = "config",
                                            .scope = Scope::Org(kOrgA),
                                            .state = "active",
                                            .wrapped = "w",
                                            .master_key_id = "00000000000000aa",
                                            .created_at = kT0}));
    ASSERT_OK_AND_ASSIGN(const std::int64_t job,
                         txn->InsertKeyJob(KeyJobRow{
                             .kind = "data", .target = "*", .actor = "op", .started_at = kT0}));
    EXPECT_GE(job, 1);
    ASSERT_OK(txn->Commit());
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 4"),
            std::optional<std::string>(std::to_string(kT0 + 9'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 5"),
            std::optional<std::string>(std::to_string(kT0 + 9'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT applied_at FROM schema_migrations WHERE version = 6"),
            std::optional<std::string>(std::to_string(kT0 + 9'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM pragma_index_list('configs') "
                          "WHERE name = 'configs_scope_key_id'"),
            std::optional<std::string>("1"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(name, ' ') FROM (SELECT name FROM "
                          "pragma_index_list('data_keys') WHERE origin = 'c' ORDER BY name)"),
            std::optional<std::string>(
                "data_keys_one_active_global data_keys_one_active_org data_keys_scope"));
}

// A database from before workflow executions (schema 4) keeps its rows and gains the
// executions table and its indexes (and the later migrations), recorded with that open's
// time.
TEST_F(SqliteStoreTest, VersionFourDatabaseIsMigratedToLatest) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    ASSERT_OK(txn->Commit());
  }
  {
    // Roll the file back to what migrations 1 to 4 leave.
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    UndoVersion7(raw);
    ASSERT_TRUE(raw.Exec("DROP TABLE sessions"));
    ASSERT_TRUE(raw.Exec("DROP TABLE users"));
    ASSERT_TRUE(raw.Exec("DROP TABLE executions"));
    ASSERT_TRUE(raw.Exec("DELETE FROM schema_migrations WHERE version >= 5"));
  }
  clock_.AdvanceMicros(11'000'000);
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(store->SchemaVersion(), 7);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::optional<OrgRow> org, txn->GetOrgById(kOrgA));
    ASSERT_TRUE(org.has_value());
    ExecutionRow row;
    row.id = "3c9e6f2a-1b4d-4e8f-a7c5-0d2e4f6a0001";
    row.workflow = "sync_users";
    row.org_id = kOrgA;
    row.status = "pending";
    row.parameters = "{}";
    row.created_at = kT0;
    ASSERT_OK(txn->InsertExecution(row));
    ASSERT_OK(txn->Commit());
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT group_concat(version || ':' || name || ':' || applied_at, ' ') "
                          "FROM (SELECT * FROM schema_migrations WHERE version >= 4 "
                          "ORDER BY version)"),
            std::optional<std::string>("4:data_keys:" + std::to_string(kT0) +
                                       " 5:executions:" + std::to_string(kT0 + 11'000'000) +
                                       " 6:users_and_sessions:" + std::to_string(kT0 + 11'000'000) +
                                       " 7:nodes:" + std::to_string(kT0 + 11'000'000)));
  EXPECT_EQ(raw.QueryText("SELECT strict FROM pragma_table_list WHERE name = 'executions'"),
            std::optional<std::string>("1"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(name, ' ') FROM (SELECT name FROM "
                          "pragma_index_list('executions') WHERE origin = 'c' ORDER BY name)"),
            std::optional<std::string>("executions_created executions_node_unfinished "
                                       "executions_org_created executions_unfinished"));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM executions"), std::optional<std::string>("1"));
}

// The executions table refuses what the store refuses: unknown statuses, a logs_truncated
// other than 0 or 1, a missing organization, missing values and values of the wrong type;
// result, error, started_at and finished_at may be NULL. An organization's executions go
// with it.
TEST_F(SqliteStoreTest, SchemaEnforcesExecutionRules) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  ASSERT_TRUE(raw.Exec("PRAGMA foreign_keys=ON"));  // off by default per connection
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'a', 0)"));
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o2', 'b', 0)"));
  const std::string insert =
      "INSERT INTO executions (id, workflow, org_id, caller_id, caller_name, status, "
      "parameters, result, error, logs, logs_truncated, timeout_seconds, created_at, "
      "started_at, finished_at) VALUES ";
  for (const char* values : {
           "('e1', 'w', 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('e2', 'w', 'o1', 'c', 'n', 'running', '{}', NULL, NULL, 'l', 1, 60, 0, 1, NULL)",
           "('e3', 'w', 'o1', 'c', 'n', 'success', '{}', '1', NULL, '', 0, 60, 0, 1, 2)",
           "('e4', 'w', 'o1', 'c', 'n', 'failed', '{}', NULL, 'x', '', 0, 60, 0, 1, 2)",
           "('e5', 'w', 'o2', 'c', 'n', 'timeout', '{}', NULL, 'x', '', 0, 60, 0, 1, 2)",
           "('e6', 'w', 'o2', 'c', 'n', 'cancelled', '{}', NULL, 'x', '', 0, 60, 0, NULL, 2)",
       }) {
    ASSERT_TRUE(raw.Exec(insert + values)) << values;
  }
  for (const char* values : {
           "('e1', 'w', 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('x1', 'w', 'o1', 'c', 'n', 'done', '{}', NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('x1', 'w', 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, '', 2, 60, 0, NULL, NULL)",
           "('x1', 'w', 'nope', 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('x1', 'w', NULL, 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('x1', NULL, 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('x1', 'w', 'o1', 'c', 'n', 'pending', NULL, NULL, NULL, '', 0, 60, 0, NULL, NULL)",
           "('x1', 'w', 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, NULL, 0, 60, 0, NULL, NULL)",
           "('x1', 'w', 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, 60, 'now', NULL, NULL)",
           "('x1', 'w', 'o1', 'c', 'n', 'pending', '{}', NULL, NULL, '', 0, '1m', 0, NULL, NULL)",
       }) {
    EXPECT_EQ(raw.TryExec(insert + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.TryExec("UPDATE executions SET status = 'queued' WHERE id = 'e1'") & 0xff,
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM executions"), std::optional<std::string>("6"));
  // Deleting an org takes its executions, and only them.
  ASSERT_TRUE(raw.Exec("DELETE FROM organizations WHERE id = 'o1'"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(id) FROM (SELECT id FROM executions ORDER BY id)"),
            std::optional<std::string>("e5,e6"));
}

// Listings walk an index in the listing order (no sort), with the org's index when an org is
// given and the cursor as an index range; the sweep reads only the unfinished rows.
TEST_F(SqliteStoreTest, ExecutionListingsAndTheSweepUseTheirIndexes) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  const std::string head =
      "SELECT id, workflow, org_id, caller_id, caller_name, status, parameters, result, error, "
      "logs, logs_truncated, timeout_seconds, created_at, started_at, finished_at "
      "FROM executions";
  const std::string before =
      "(created_at, id) < (SELECT created_at, id FROM executions WHERE id = ?4)";
  const std::string tail = " ORDER BY created_at DESC, id DESC LIMIT ?5";
  struct Case {
    std::string where;
    std::string index;
  };
  for (const Case& c : {
           Case{"", "SCAN executions USING INDEX executions_created"},
           Case{" WHERE workflow = ?2 AND status = ?3",
                "SCAN executions USING INDEX executions_created"},
           Case{" WHERE " + before,
                "SEARCH executions USING INDEX executions_created (created_at<?)"},
           Case{" WHERE org_id = ?1",
                "SEARCH executions USING INDEX executions_org_created (org_id=?)"},
           Case{" WHERE org_id = ?1 AND workflow = ?2 AND " + before,
                "SEARCH executions USING INDEX executions_org_created (org_id=? AND created_at<?)"},
       }) {
    const std::string plan = raw.QueryPlan(head + c.where + tail);
    SCOPED_TRACE(plan);
    EXPECT_NE(plan.find(c.index), std::string::npos) << c.where;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << c.where;
  }
  const std::string sweep = raw.QueryPlan(
      "UPDATE executions SET status = 'failed', error = ?1, finished_at = ?2 "
      "WHERE status IN ('pending', 'running')");
  EXPECT_NE(sweep.find("USING INDEX executions_unfinished"), std::string::npos) << sweep;
}

// A database from before users and sessions (schema 5) keeps its rows and gains the users
// and sessions tables and their indexes, recorded with that open's time.
TEST_F(SqliteStoreTest, VersionFiveDatabaseIsMigratedToVersionSix) {
  const std::string token_id = "7d1c1d8e-3d6c-4b53-9a39-5b0e7c6f0001";
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
    TokenRow token;
    token.id = token_id;
    token.name = "ci";
    token.org_id = kOrgA;
    token.role = "member";
    token.hash = std::string(64, 'a');
    token.created_by = "bootstrap";
    ASSERT_OK(txn->InsertToken(token));
    ASSERT_OK(txn->Commit());
  }
  {
    // Roll the file back to what migrations 1 to 5 leave.
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    UndoVersion7(raw);
    ASSERT_TRUE(raw.Exec("DROP TABLE sessions"));
    ASSERT_TRUE(raw.Exec("DROP TABLE users"));
    ASSERT_TRUE(raw.Exec("DELETE FROM schema_migrations WHERE version = 6"));
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sqlite_schema WHERE tbl_name IN "
                            "('users', 'sessions')"),
              std::optional<std::string>("0"));
  }
  clock_.AdvanceMicros(13'000'000);
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  EXPECT_EQ(store->SchemaVersion(), 7);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(std::optional<TokenRow> token, txn->GetTokenById(token_id));
    ASSERT_TRUE(token.has_value());
    ASSERT_OK_AND_ASSIGN(std::vector<UserRow> none, txn->ListUsers(std::nullopt));
    EXPECT_TRUE(none.empty());
    UserRow user;
    user.id = "a3f0c2d4-5e6f-4a1b-8c2d-3e4f5a6b0001";
    user.email = "ana@acme.example";
    user.org_id = kOrgA;
    user.role = "admin";
    user.password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA";
    user.created_by = "bootstrap";
    ASSERT_OK(txn->InsertUser(user));
    SessionRow session;
    session.id = "c5e1a7b9-2d3f-4c5e-9a7b-1d3f5e7a0001";
    session.user_id = user.id;
    session.hash = std::string(64, 'b');
    ASSERT_OK(txn->InsertSession(session));
    ASSERT_OK(txn->Commit());
  }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  EXPECT_EQ(raw.QueryText("SELECT group_concat(version || ':' || name || ':' || applied_at, ' ') "
                          "FROM (SELECT * FROM schema_migrations WHERE version >= 5 "
                          "ORDER BY version)"),
            std::optional<std::string>("5:executions:" + std::to_string(kT0) +
                                       " 6:users_and_sessions:" + std::to_string(kT0 + 13'000'000) +
                                       " 7:nodes:" + std::to_string(kT0 + 13'000'000)));
  for (const char* table : {"users", "sessions"}) {
    EXPECT_EQ(raw.QueryText(std::string("SELECT strict FROM pragma_table_list WHERE name = '") +
                            table + "'"),
              std::optional<std::string>("1"))
        << table;
  }
  EXPECT_EQ(raw.QueryText("SELECT group_concat(name, ' ') FROM (SELECT name FROM "
                          "pragma_index_list('users') WHERE origin = 'c' ORDER BY name)"),
            std::optional<std::string>("users_org_email"));
  EXPECT_EQ(
      raw.QueryText("SELECT group_concat(name, ' ') FROM (SELECT name FROM "
                    "pragma_index_list('sessions') WHERE origin = 'c' ORDER BY name)"),
      std::optional<std::string>("sessions_expires_at sessions_last_seen_at sessions_user_id"));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM users"), std::optional<std::string>("1"));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sessions"), std::optional<std::string>("1"));
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM tokens"), std::optional<std::string>("1"));
}

// The users and sessions tables refuse what the store refuses: unknown roles, an org exactly
// when the role is not platform-admin, duplicate ids, emails and session hashes, a missing
// organization or user, missing values and values of the wrong type. Deleting an org takes
// its users and their sessions; deleting a user takes its sessions.
TEST_F(SqliteStoreTest, SchemaEnforcesUserAndSessionRules) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  ASSERT_TRUE(raw.Exec("PRAGMA foreign_keys=ON"));  // off by default per connection
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'a', 0)"));
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o2', 'b', 0)"));
  const std::string users =
      "INSERT INTO users (id, email, org_id, role, password_hash, created_at, created_by, "
      "updated_at, disabled_at, last_login_at) VALUES ";
  for (const char* values : {
           "('u1', 'p@x', NULL, 'platform-admin', 'h', 0, 'b', 0, NULL, NULL)",
           "('u2', 'a@x', 'o1', 'admin', 'h', 0, 'b', 0, NULL, NULL)",
           "('u3', 'm@x', 'o1', 'member', 'h', 0, 'b', 0, 1, 2)",
           "('u4', 'r@x', 'o2', 'reader', 'h', 0, 'b', 0, NULL, 2)",
       }) {
    ASSERT_TRUE(raw.Exec(users + values)) << values;
  }
  for (const char* values : {
           "('u1', 'new@x', 'o1', 'admin', 'h', 0, 'b', 0, NULL, NULL)",         // same id
           "('u9', 'a@x', 'o2', 'admin', 'h', 0, 'b', 0, NULL, NULL)",           // same email
           "('u9', 'n@x', 'o1', 'owner', 'h', 0, 'b', 0, NULL, NULL)",           // role
           "('u9', 'n@x', 'o1', 'platform-admin', 'h', 0, 'b', 0, NULL, NULL)",  // with org
           "('u9', 'n@x', NULL, 'admin', 'h', 0, 'b', 0, NULL, NULL)",           // no org
           "('u9', 'n@x', 'nope', 'admin', 'h', 0, 'b', 0, NULL, NULL)",         // missing org
           "('u9', NULL, 'o1', 'admin', 'h', 0, 'b', 0, NULL, NULL)",            // no email
           "('u9', 'n@x', 'o1', 'admin', NULL, 0, 'b', 0, NULL, NULL)",          // no hash
           "('u9', 'n@x', 'o1', 'admin', 'h', 'now', 'b', 0, NULL, NULL)",       // STRICT
           "('u9', 'n@x', 'o1', 'admin', 'h', 0, 'b', 0, 'never', NULL)",        // STRICT
       }) {
    EXPECT_EQ(raw.TryExec(users + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.TryExec("UPDATE users SET role = 'platform-admin' WHERE id = 'u2'") & 0xff,
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.TryExec("UPDATE users SET role = 'admin' WHERE id = 'u1'") & 0xff,
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM users"), std::optional<std::string>("4"));

  const std::string sessions =
      "INSERT INTO sessions (id, user_id, hash, created_at, last_seen_at, expires_at, "
      "client_address) VALUES ";
  for (const char* values : {
           "('s1', 'u1', 'h1', 0, 0, 10, '')",
           "('s2', 'u2', 'h2', 0, 0, 10, '')",
           "('s3', 'u2', 'h3', 0, 0, 10, '')",
           "('s4', 'u3', 'h4', 0, 0, 10, '')",
           "('s5', 'u4', 'h5', 0, 0, 10, '')",
       }) {
    ASSERT_TRUE(raw.Exec(sessions + values)) << values;
  }
  for (const char* values : {
           "('s1', 'u1', 'h9', 0, 0, 10, '')",      // same id
           "('s9', 'u1', 'h1', 0, 0, 10, '')",      // same hash
           "('s9', 'nope', 'h9', 0, 0, 10, '')",    // missing user
           "('s9', NULL, 'h9', 0, 0, 10, '')",      // no user
           "('s9', 'u1', NULL, 0, 0, 10, '')",      // no hash
           "('s9', 'u1', 'h9', 0, NULL, 10, '')",   // no last_seen_at
           "('s9', 'u1', 'h9', 0, 0, 'soon', '')",  // STRICT
           "('s9', 'u1', 'h9', 0, 0, 10, NULL)",    // no client address
       }) {
    EXPECT_EQ(raw.TryExec(sessions + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sessions"), std::optional<std::string>("5"));

  // Deleting an org takes its users and, through them, their sessions; nothing else.
  ASSERT_TRUE(raw.Exec("DELETE FROM organizations WHERE id = 'o1'"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(id) FROM (SELECT id FROM users ORDER BY id)"),
            std::optional<std::string>("u1,u4"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(id) FROM (SELECT id FROM sessions ORDER BY id)"),
            std::optional<std::string>("s1,s5"));
  // Deleting a user takes its sessions.
  ASSERT_TRUE(raw.Exec("DELETE FROM users WHERE id = 'u4'"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(id) FROM sessions"),
            std::optional<std::string>("s1"));
}

// User listings walk an index in email order (no sort); session lookups, a user's sessions
// and the expiry sweep read only what they need.
TEST_F(SqliteStoreTest, UserAndSessionQueriesUseTheirIndexes) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  const std::string user_head =
      "SELECT id, email, org_id, role, password_hash, created_at, created_by, updated_at, "
      "disabled_at, last_login_at FROM users";
  {
    const std::string plan = raw.QueryPlan(user_head + " ORDER BY email");
    EXPECT_NE(plan.find("SCAN users USING INDEX"), std::string::npos) << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
  }
  {
    const std::string plan = raw.QueryPlan(user_head + " WHERE org_id = ?1 ORDER BY email");
    EXPECT_NE(plan.find("SEARCH users USING INDEX users_org_email (org_id=?)"), std::string::npos)
        << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
  }
  {
    const std::string plan = raw.QueryPlan(user_head + " WHERE email = ?1");
    EXPECT_NE(plan.find("SEARCH users USING INDEX"), std::string::npos) << plan;
  }
  {
    const std::string plan = raw.QueryPlan(
        "SELECT id, user_id, hash, created_at, last_seen_at, expires_at, "
        "client_address FROM sessions WHERE hash = ?1");
    EXPECT_NE(plan.find("SEARCH sessions USING INDEX"), std::string::npos) << plan;
  }
  {
    const std::string plan = raw.QueryPlan("DELETE FROM sessions WHERE user_id = ?1");
    EXPECT_NE(plan.find("SEARCH sessions USING INDEX sessions_user_id (user_id=?)"),
              std::string::npos)
        << plan;
  }
  {
    const std::string plan =
        raw.QueryPlan("DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2");
    EXPECT_NE(plan.find("MULTI-INDEX OR"), std::string::npos) << plan;
    EXPECT_NE(plan.find("sessions_expires_at (expires_at<?)"), std::string::npos) << plan;
    EXPECT_NE(plan.find("sessions_last_seen_at (last_seen_at<?)"), std::string::npos) << plan;
  }
}

// The data key and key job tables refuse what the store refuses: one active config key per
// scope (the global scope included, though its org_id is NULL), audit keys only global and
// retired, known purposes, states and kinds, and keys of existing organizations only; an
// organization's keys go with it.
TEST_F(SqliteStoreTest, SchemaEnforcesDataKeyRules) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  ASSERT_TRUE(raw.Exec("PRAGMA foreign_keys=ON"));  // off by default per connection
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o1', 'a', 0)"));
  ASSERT_TRUE(raw.Exec("INSERT INTO organizations (id, name, created_at) VALUES ('o2', 'b', 0)"));
  const std::string insert =
      "INSERT INTO data_keys (id, purpose, org_id, state, wrapped, master_key_id, created_at) "
      "VALUES ";
  for (const char* values : {
           "('g1', 'config', NULL, 'active', 'w', 'm', 0)",
           "('g2', 'config', NULL, 'retired', 'w', 'm', 0)",
           "('g3', 'config', NULL, 'retired', 'w', 'm', 0)",
           "('a1', 'config', 'o1', 'active', 'w', 'm', 0)",
           "('a2', 'config', 'o1', 'retired', 'w', 'm', 0)",
           "('b1', 'config', 'o2', 'active', 'w', 'm', 0)",
           "('m1', 'audit', NULL, 'retired', 'w', 'm', 0)",
           "('m2', 'audit', NULL, 'retired', 'w', 'm', 0)",
       }) {
    ASSERT_TRUE(raw.Exec(insert + values)) << values;
  }
  for (const char* values : {
           "('g1', 'config', NULL, 'retired', 'w', 'm', 0)",      // duplicate id
           "('g4', 'config', NULL, 'active', 'w', 'm', 0)",       // second active global key
           "('a3', 'config', 'o1', 'active', 'w', 'm', 0)",       // second active key of o1
           "('m3', 'audit', NULL, 'active', 'w', 'm', 0)",        // an active audit key
           "('m3', 'audit', 'o1', 'retired', 'w', 'm', 0)",       // an org's audit key
           "('x1', 'signing', NULL, 'retired', 'w', 'm', 0)",     // unknown purpose
           "('x1', 'config', NULL, 'spare', 'w', 'm', 0)",        // unknown state
           "('x1', 'config', 'nope', 'active', 'w', 'm', 0)",     // organization missing
           "('x1', 'config', NULL, 'retired', NULL, 'm', 0)",     // no wrapped key
           "('x1', 'config', NULL, 'retired', 'w', 'm', 'now')",  // STRICT
       }) {
    EXPECT_EQ(raw.TryExec(insert + values) & 0xff, SQLITE_CONSTRAINT) << values;
  }
  // Promoting a retired key while another is active breaks the same rule.
  EXPECT_EQ(raw.TryExec("UPDATE data_keys SET state = 'active' WHERE id = 'a2'") & 0xff,
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.TryExec("UPDATE data_keys SET state = 'active' WHERE id = 'g2'") & 0xff,
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM data_keys"), std::optional<std::string>("8"));

  const std::string job =
      "INSERT INTO key_jobs (kind, target, actor, started_at, finished_at) VALUES ";
  ASSERT_TRUE(raw.Exec(job + "('master', '', 'op', 0, NULL)"));
  EXPECT_EQ(raw.TryExec(job + "('other', '', 'op', 0, NULL)") & 0xff, SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.TryExec(job + "('data', NULL, 'op', 0, NULL)") & 0xff, SQLITE_CONSTRAINT);

  // Deleting an org takes its keys, and only them.
  ASSERT_TRUE(raw.Exec("DELETE FROM organizations WHERE id = 'o1'"));
  EXPECT_EQ(raw.QueryText("SELECT group_concat(id) FROM (SELECT id FROM data_keys ORDER BY id)"),
            std::optional<std::string>("b1,g1,g2,g3,m1,m2"));
}

// A rotation batch reads only rows still to do, from the (org_id, key_id, key) index, in
// index order: the two ranges either side of the new key are merged, and only the batch
// itself is sorted (the one temp b-tree). No scan of the scope, nor of the table.
TEST_F(SqliteStoreTest, ListScopeConfigsNotSealedByReadsOnlyTheRowsLeft) {
  { ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options())); }
  RawDb raw(db_path_);
  ASSERT_TRUE(raw.IsOpen());
  const std::string columns =
      "org_id, key, type, value, key_id, description, created_at, updated_at, updated_by, "
      "version";
  for (const std::string scope : {"org_id IS NULL", "org_id = ?3"}) {
    const std::string arm = "SELECT " + columns + " FROM configs WHERE " + scope +
                            " AND key_id IS NOT NULL AND key_id ";
    const std::string plan =
        raw.QueryPlan("SELECT " + columns + " FROM (" + arm + "< ?1 UNION ALL " + arm +
                      "> ?1 ORDER BY key_id, key LIMIT ?2) ORDER BY key");
    SCOPED_TRACE(plan);
    EXPECT_NE(plan.find("MERGE (UNION ALL)"), std::string::npos);
    EXPECT_NE(plan.find("SEARCH configs USING INDEX configs_scope_key_id (org_id=? AND "
                        "key_id>? AND key_id<?)"),
              std::string::npos);
    EXPECT_NE(plan.find("SEARCH configs USING INDEX configs_scope_key_id (org_id=? AND "
                        "key_id>?)"),
              std::string::npos);
    EXPECT_EQ(plan.find("SCAN configs"), std::string::npos);
    // One sort only: the outer ORDER BY key of at most one batch.
    const std::size_t first = plan.find("TEMP B-TREE");
    ASSERT_NE(first, std::string::npos);
    EXPECT_EQ(plan.find("TEMP B-TREE", first + 1), std::string::npos);
  }
  // Counting by (scope, key) reads the index alone, already in the order asked for.
  const std::string count = raw.QueryPlan(
      "SELECT org_id, key_id, count(*) FROM configs WHERE key_id IS NOT NULL "
      "GROUP BY org_id, key_id ORDER BY org_id NULLS FIRST, key_id");
  EXPECT_NE(count.find("COVERING INDEX configs_scope_key_id"), std::string::npos) << count;
  EXPECT_EQ(count.find("TEMP B-TREE"), std::string::npos) << count;
}

// Crypto-shredding reaches the file: the wrapped keys of a deleted organization are zeroed,
// not left in a free page (secure_delete).
TEST_F(SqliteStoreTest, DeletedDataKeysDoNotLingerInTheFile) {
  const std::string marker = "WRAPPED-KEY-MARKER-8c2e4a6f";
  {
    ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
    {
      ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
      ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme", kT0}));
      for (int i = 0; i < 3; ++i) {
        std::string id = "dk";
        id += std::to_string(i);
        ASSERT_OK(txn->InsertDataKey(DataKeyRow{.id = id,
                                                .purpose = "config",
                                                .scope = Scope::Org(kOrgA),
                                                .state = i == 0 ? "active" : "retired",
                                                .wrapped = marker + std::to_string(i),
                                                .master_key_id = "mk",
                                                .created_at = kT0}));
      }
      ASSERT_OK(txn->InsertDataKey(DataKeyRow{.id = "global",
                                              .purpose = "config",
                                              .scope = Scope::Global(),
                                              .state = "active",
                                              .wrapped = "KEPT-WRAPPED-KEY",
                                              .master_key_id = "mk",
                                              .created_at = kT0}));
      ASSERT_OK(txn->Commit());
    }
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->DeleteOrg(kOrgA));
    ASSERT_OK(txn->Commit());
  }  // closing the last connection checkpoints the WAL into the file
  std::ifstream in(db_path_, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(bytes.empty());
  EXPECT_NE(bytes.find("KEPT-WRAPPED-KEY"), std::string::npos);  // the scan would find it
  EXPECT_EQ(bytes.find(marker), std::string::npos);
}

// The whole content of a file; empty if it does not exist.
std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// An organization with one data key whose wrapped text is `wrapped`, committed.
void InsertOrgWithDataKey(Store& store, const std::string& org_id, const std::string& name,
                          const std::string& key_id, const std::string& wrapped) {
  ASSERT_OK_AND_ASSIGN(auto txn, store.Begin(TxnMode::kWrite));
  ASSERT_OK(txn->InsertOrg(OrgRow{org_id, name, kT0}));
  ASSERT_OK(txn->InsertDataKey(DataKeyRow{.id = key_id,
                                          .purpose = "config",
                                          .scope = Scope::Org(org_id),
                                          .state = "active",
                                          .wrapped = wrapped,
                                          .master_key_id = "mk",
                                          .created_at = kT0}));
  ASSERT_OK(txn->Commit());
}

void DeleteOrgNow(Store& store, const std::string& org_id) {
  ASSERT_OK_AND_ASSIGN(auto txn, store.Begin(TxnMode::kWrite));
  ASSERT_OK(txn->DeleteOrg(org_id));
  ASSERT_OK(txn->Commit());
}

// With the store open, as a running server keeps it: secure_delete zeroes a deleted key in
// the page version the deletion writes to the WAL, but the older versions stay in earlier
// WAL frames and in the database file until a checkpoint. ReleaseDeletedData removes both.
TEST_F(SqliteStoreTest, ReleaseDeletedDataLeavesNoDeletedKeyInTheWalOrTheFile) {
  const std::string kOrgB = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0002";
  const std::string kOrgC = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0003";
  const std::string in_file = "WRAPPED-KEY-CHECKPOINTED-3a9d1f7c";  // already in bifrost.db
  const std::string in_wal = "WRAPPED-KEY-IN-THE-WAL-6b2e8c4d";     // only in the -wal
  const std::string kept = "WRAPPED-KEY-KEPT-9f0a5e21";
  const std::string wal_path = db_path_ + "-wal";
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(Options()));
  InsertOrgWithDataKey(*store, kOrgA, "acme", "dk-a", in_file);
  InsertOrgWithDataKey(*store, kOrgC, "initech", "dk-c", kept);
  ASSERT_OK(store->ReleaseDeletedData());  // a checkpoint: both keys now in bifrost.db
  EXPECT_EQ(std::filesystem::file_size(wal_path), 0u);
  InsertOrgWithDataKey(*store, kOrgB, "globex", "dk-b", in_wal);
  DeleteOrgNow(*store, kOrgA);
  DeleteOrgNow(*store, kOrgB);

  // Without a checkpoint the deleted keys are still in the files.
  EXPECT_NE(FileBytes(db_path_).find(in_file), std::string::npos);
  EXPECT_NE(FileBytes(wal_path).find(in_wal), std::string::npos);

  ASSERT_OK(store->ReleaseDeletedData());
  const std::string db = FileBytes(db_path_);
  const std::string wal = FileBytes(wal_path);
  EXPECT_EQ(wal.size(), 0u);
  for (const std::string& bytes : {db, wal}) {
    EXPECT_EQ(bytes.find(in_file), std::string::npos);
    EXPECT_EQ(bytes.find(in_wal), std::string::npos);
  }
  EXPECT_NE(db.find(kept), std::string::npos);  // the scan sees what is still there

  // Nothing committed was lost, and the store goes on working.
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
  ASSERT_OK_AND_ASSIGN(auto orgs, txn->ListOrgs());
  ASSERT_EQ(orgs.size(), 1u);
  EXPECT_EQ(orgs[0].id, kOrgC);
  ASSERT_OK_AND_ASSIGN(auto key, txn->GetDataKey("dk-c"));
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->wrapped, kept);
  ASSERT_OK(txn->InsertOrg(OrgRow{kOrgA, "acme again", kT0}));
  ASSERT_OK(txn->Commit());
}

// A reader still using the WAL (of this process or another) keeps the checkpoint from
// completing: kUnavailable after the busy timeout, the deleted bytes still in the -wal. Once
// the reader is gone, the next call releases them.
TEST_F(SqliteStoreTest, ReleaseDeletedDataIsUnavailableWhileAReaderUsesTheWal) {
  const std::string marker = "WRAPPED-KEY-HELD-BY-A-READER-0c7d2b95";
  const std::string wal_path = db_path_ + "-wal";
  SqliteOptions options = Options();
  options.busy_timeout_ms = 50;
  ASSERT_OK_AND_ASSIGN(auto store, SqliteStore::Open(options));
  InsertOrgWithDataKey(*store, kOrgA, "acme", "dk-a", marker);
  {
    // A read transaction of this store, from before the deletion.
    ASSERT_OK_AND_ASSIGN(auto reader, store->Begin(TxnMode::kRead));
    DeleteOrgNow(*store, kOrgA);
    const Status released = store->ReleaseDeletedData();
    ASSERT_FALSE(released.has_value());
    EXPECT_EQ(released.error().code(), ErrorCode::kUnavailable) << released.error().ToString();
    EXPECT_NE(released.error().message().find(wal_path), std::string::npos)
        << released.error().message();
    EXPECT_NE(FileBytes(wal_path).find(marker), std::string::npos);
    // The reader's snapshot is intact.
    ASSERT_OK_AND_ASSIGN(auto key, reader->GetDataKey("dk-a"));
    EXPECT_TRUE(key.has_value());
  }
  {
    // Another process's read transaction.
    RawDb raw(db_path_);
    ASSERT_TRUE(raw.IsOpen());
    ASSERT_TRUE(raw.Exec("BEGIN"));
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM organizations"), "0");
    EXPECT_ERROR_CODE(store->ReleaseDeletedData(), ErrorCode::kUnavailable);
    ASSERT_TRUE(raw.Exec("COMMIT"));
  }
  ASSERT_OK(store->ReleaseDeletedData());
  EXPECT_EQ(FileBytes(wal_path).find(marker), std::string::npos);
  EXPECT_EQ(FileBytes(db_path_).find(marker), std::string::npos);
  // The writer slot was given back each time.
  ASSERT_OK_AND_ASSIGN(auto writer, store->Begin(TxnMode::kWrite));
  ASSERT_OK(writer->Commit());
}

}  // namespace
}  // namespace bifrost::store
