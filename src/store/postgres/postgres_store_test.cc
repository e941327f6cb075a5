// The conformance suite on PostgreSQL, and PostgreSQL-only behaviour: several stores (as
// several server nodes) on one database, a database server that stops and comes back, TLS,
// and the pool. Each case works on databases of its own on the cluster of the ctest fixture
// `postgres` (tests/support/postgres_test.h), or on a private cluster when it stops one.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/postgres/migrations.h"
#include "store/postgres/postgres_txn.h"
#include "tests/store_conformance.h"
#include "tests/support/postgres_test.h"
#include "tests/support/status_matchers.h"

namespace bifrost::store {
namespace {

// ---- The conformance suite, against PostgreSQL

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformanceTest,
                         ::testing::Values(StoreFactory{
                             "postgresql",
                             [](const std::string& /*scratch_dir*/) -> std::unique_ptr<Store> {
                               PostgresOptions options;
                               options.url = testing::NewPostgresDatabase("conformance");
                               if (options.url.empty()) return nullptr;
                               auto store = PostgresStore::Open(options);
                               if (!store) {
                                 ADD_FAILURE() << store.error().ToString();
                                 return nullptr;
                               }
                               return std::move(*store);
                             }}),
                         StoreFactoryName);

// ---- PostgreSQL-only behaviour

constexpr UnixMicros kT0 = 1'700'000'000'000'000;

OrgRow Org(const std::string& id, const std::string& name) { return OrgRow{id, name, kT0}; }

std::string OrgId(int n) {
  std::string suffix = std::to_string(n);
  return "0b7e5c1e-6a43-4c1a-9d57-" + std::string(12 - suffix.size(), '0') + suffix;
}

ConfigRow Config(const std::string& key, const std::string& value) {
  ConfigRow row;
  row.key = key;
  row.type = "string";
  row.value = value;
  row.created_at = row.updated_at = kT0;
  row.updated_by = "test";
  return row;
}

std::unique_ptr<PostgresStore> OpenStore(const std::string& url, PostgresOptions options = {}) {
  options.url = url;
  auto store = PostgresStore::Open(options);
  if (!store) {
    ADD_FAILURE() << store.error().ToString();
    return nullptr;
  }
  return std::move(*store);
}

Status InsertOrgCommitted(Store& store, const OrgRow& org) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(TxnMode::kWrite));
  BIFROST_RETURN_IF_ERROR(txn->InsertOrg(org));
  return txn->Commit();
}

std::int64_t ElapsedMs(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               since)
      .count();
}

// Waits (up to 30 s) until `condition` holds; false if it never did.
bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(PostgresStoreTest, NodesOpeningOneDatabaseAtOnceMigrateItExactlyOnce) {
  const std::string url = testing::NewPostgresDatabase("migrate_once");
  ASSERT_FALSE(url.empty());
  constexpr int kNodes = 6;
  std::vector<std::unique_ptr<PostgresStore>> stores(kNodes);
  std::vector<std::string> errors(kNodes);
  std::latch start(kNodes);
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      PostgresOptions options;
      options.url = url;
      auto store = PostgresStore::Open(options);
      if (store) {
        stores[i] = std::move(*store);
      } else {
        errors[i] = store.error().ToString();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_NE(stores[i], nullptr) << errors[i];
    EXPECT_EQ(stores[i]->SchemaVersion(), postgres_internal::LatestSchemaVersion());
  }
  // Every version recorded once, 1..latest.
  const std::string versions = testing::RunSql(
      url, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations");
  std::string expected;
  for (int v = 1; v <= postgres_internal::LatestSchemaVersion(); ++v) {
    if (v > 1) expected += ',';
    expected += std::to_string(v);
  }
  EXPECT_EQ(versions, expected + "\n");
  // And a later open finds nothing to do.
  auto again = OpenStore(url);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(testing::RunSql(url, "SELECT count(*) FROM schema_migrations"),
            std::to_string(postgres_internal::LatestSchemaVersion()) + "\n");
}

TEST(PostgresStoreTest, SchemaVersionMatchesSqlite) {
  // Both backends number their migrations alike; this binary's PostgreSQL schema ends at
  // the same version as its SQLite schema (store/sqlite/migrations.h is not linked here,
  // so the number is read from a fresh database instead).
  const std::string url = testing::NewPostgresDatabase("version");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), 7);
}

TEST(PostgresStoreTest, DatabaseNewerThanThisBinaryIsRefused) {
  const std::string url = testing::NewPostgresDatabase("newer");
  ASSERT_FALSE(url.empty());
  ASSERT_NE(OpenStore(url), nullptr);
  testing::RunSql(url,
                  "INSERT INTO schema_migrations (version, name, applied_at) "
                  "VALUES (999, 'from_the_future', 0)");
  PostgresOptions options;
  options.url = url;
  auto store = PostgresStore::Open(options);
  ASSERT_FALSE(store.has_value());
  EXPECT_EQ(store.error().code(), ErrorCode::kFailedPrecondition) << store.error().ToString();
  EXPECT_NE(store.error().message().find("999"), std::string::npos) << store.error().message();
}

TEST(PostgresStoreTest, WriteTransactionsOfTwoStoresAreSerialized) {
  const std::string url = testing::NewPostgresDatabase("serialized");
  ASSERT_FALSE(url.empty());
  auto node_a = OpenStore(url);
  auto node_b = OpenStore(url);
  ASSERT_NE(node_a, nullptr);
  ASSERT_NE(node_b, nullptr);

  ASSERT_OK_AND_ASSIGN(auto writer_a, node_a->Begin(TxnMode::kWrite));
  ASSERT_OK(writer_a->InsertOrg(Org(OrgId(1), "first")));

  // Node B's writer waits for node A's: its backend waits for the advisory lock.
  std::atomic<bool> began{false};
  std::optional<OrgRow> seen_by_b;
  std::string b_error;
  std::thread b([&] {
    auto txn = node_b->Begin(TxnMode::kWrite);
    began = true;
    if (!txn) {
      b_error = txn.error().ToString();
      return;
    }
    // It sees what A committed before it got the lock, and writes after it.
    auto org = (*txn)->GetOrgById(OrgId(1));
    if (!org) {
      b_error = org.error().ToString();
      return;
    }
    seen_by_b = *org;
    auto inserted = (*txn)->InsertOrg(Org(OrgId(2), "second"));
    if (inserted) inserted = (*txn)->Commit();
    if (!inserted) b_error = inserted.error().ToString();
  });
  EXPECT_TRUE(Eventually([&] {
    return testing::RunSql(url,
                           "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                           "NOT granted") == "1\n";
  })) << "node B's writer never waited for the lock";
  EXPECT_FALSE(began.load());
  ASSERT_OK(writer_a->Commit());
  b.join();
  EXPECT_EQ(b_error, "");
  ASSERT_TRUE(seen_by_b.has_value()) << "node B's writer did not see node A's commit";
  EXPECT_EQ(seen_by_b->name, "first");

  ASSERT_OK_AND_ASSIGN(auto reader, node_a->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(const std::vector<OrgRow> orgs, reader->ListOrgs());
  EXPECT_EQ(orgs.size(), 2u);
}

TEST(PostgresStoreTest, WaitingForTheWriteLockTimesOutAsUnavailable) {
  const std::string url = testing::NewPostgresDatabase("lock_timeout");
  ASSERT_FALSE(url.empty());
  auto node_a = OpenStore(url);
  PostgresOptions impatient;
  impatient.lock_timeout_ms = 200;
  auto node_b = OpenStore(url, impatient);
  ASSERT_NE(node_a, nullptr);
  ASSERT_NE(node_b, nullptr);

  ASSERT_OK_AND_ASSIGN(auto writer_a, node_a->Begin(TxnMode::kWrite));
  auto writer_b = node_b->Begin(TxnMode::kWrite);
  EXPECT_ERROR_CODE(writer_b, ErrorCode::kUnavailable);
  // Readers are never blocked by a writer.
  ASSERT_OK_AND_ASSIGN(auto reader_b, node_b->Begin(TxnMode::kRead));
  ASSERT_OK(reader_b->ListOrgs());
  ASSERT_OK(reader_b->Commit());
  // Once A is done, B writes; the failed attempt left nothing behind in B's pool.
  ASSERT_OK(writer_a->Commit());
  ASSERT_OK(InsertOrgCommitted(*node_b, Org(OrgId(1), "after")));
}

TEST(PostgresStoreTest, ConcurrentWritersOfSeveralStoresLoseNoUpdate) {
  const std::string url = testing::NewPostgresDatabase("counter");
  ASSERT_FALSE(url.empty());
  auto node_a = OpenStore(url);
  auto node_b = OpenStore(url);
  ASSERT_NE(node_a, nullptr);
  ASSERT_NE(node_b, nullptr);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, node_a->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertConfig(Config("counter", "0")));
    ASSERT_OK(txn->Commit());
  }
  constexpr int kThreadsPerNode = 2;
  constexpr int kIncrements = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (PostgresStore* node : {node_a.get(), node_b.get()}) {
    for (int t = 0; t < kThreadsPerNode; ++t) {
      threads.emplace_back([node, &failures] {
        for (int i = 0; i < kIncrements; ++i) {
          // Read-modify-write with the version read: never a conflict, since each writer
          // sees every write committed before it.
          Status done = [&]() -> Status {
            BIFROST_ASSIGN_OR_RETURN(auto txn, node->Begin(TxnMode::kWrite));
            BIFROST_ASSIGN_OR_RETURN(auto row, txn->GetConfig(Scope::Global(), "counter"));
            if (!row) return Fail(ErrorCode::kNotFound, "counter vanished");
            ConfigRow next = *row;
            next.value = std::to_string(std::stoll(row->value) + 1);
            BIFROST_RETURN_IF_ERROR(txn->UpdateConfig(next, row->version));
            return txn->Commit();
          }();
          if (!done) {
            ADD_FAILURE() << done.error().ToString();
            ++failures;
          }
        }
      });
    }
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto txn, node_b->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto row, txn->GetConfig(Scope::Global(), "counter"));
  ASSERT_TRUE(row.has_value());
  constexpr int kTotal = 2 * kThreadsPerNode * kIncrements;
  EXPECT_EQ(row->value, std::to_string(kTotal));
  EXPECT_EQ(row->version, kTotal + 1);
}

TEST(PostgresStoreTest, ReadsSeeWritesCommittedByAnotherStore) {
  const std::string url = testing::NewPostgresDatabase("read_your_writes");
  ASSERT_FALSE(url.empty());
  auto node_a = OpenStore(url);
  auto node_b = OpenStore(url);
  ASSERT_NE(node_a, nullptr);
  ASSERT_NE(node_b, nullptr);
  // Warm B's pool first, so that a cached connection (not a fresh one) must see the write.
  {
    ASSERT_OK_AND_ASSIGN(auto txn, node_b->Begin(TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(auto none, txn->GetOrgById(OrgId(1)));
    EXPECT_FALSE(none.has_value());
  }
  ASSERT_OK(InsertOrgCommitted(*node_a, Org(OrgId(1), "acme")));
  ASSERT_OK_AND_ASSIGN(auto txn, node_b->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto org, txn->GetOrgById(OrgId(1)));
  ASSERT_TRUE(org.has_value());
  EXPECT_EQ(org->name, "acme");
}

TEST(PostgresStoreTest, ReadTransactionKeepsTheSnapshotOfItsBegin) {
  const std::string url = testing::NewPostgresDatabase("snapshot");
  ASSERT_FALSE(url.empty());
  auto node_a = OpenStore(url);
  auto node_b = OpenStore(url);
  ASSERT_NE(node_a, nullptr);
  ASSERT_NE(node_b, nullptr);
  ASSERT_OK(InsertOrgCommitted(*node_a, Org(OrgId(1), "before")));

  // The snapshot is taken by Begin, before the transaction's first query.
  ASSERT_OK_AND_ASSIGN(auto reader, node_b->Begin(TxnMode::kRead));
  ASSERT_OK(InsertOrgCommitted(*node_a, Org(OrgId(2), "after")));
  ASSERT_OK_AND_ASSIGN(auto orgs, reader->ListOrgs());
  ASSERT_EQ(orgs.size(), 1u);
  EXPECT_EQ(orgs[0].name, "before");
  {
    // Configs of the new org are no more visible than the org.
    ASSERT_OK_AND_ASSIGN(auto org, reader->GetOrgByName("after"));
    EXPECT_FALSE(org.has_value());
  }
  ASSERT_OK(reader->Commit());
  ASSERT_OK_AND_ASSIGN(auto fresh, node_b->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto all, fresh->ListOrgs());
  EXPECT_EQ(all.size(), 2u);
}

TEST(PostgresStoreTest, TextSortsByBytesWhateverTheDatabaseCollation) {
  // A database whose default collation (ICU en-US) puts "a" before "B"; SQLite, and so
  // every listing of the store, compares bytes: "B" (0x42) before "a" (0x61).
  const std::string admin = testing::PostgresAdminUrl();
  ASSERT_FALSE(admin.empty()) << "no PostgreSQL test cluster";
  const std::string name = "bifrost_icu_" + std::to_string(std::random_device{}());
  testing::RunSql(admin, "CREATE DATABASE " + name +
                             " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' "
                             "TEMPLATE template0");
  const std::string url = testing::WithDatabase(admin, name);
  ASSERT_EQ(testing::RunSql(url,
                            "SELECT string_agg(x, ',' ORDER BY x) FROM "
                            "(VALUES ('a'), ('B')) AS v(x)"),
            "a,B\n")
      << "the database does not use a collation that differs from byte order";
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(Org(OrgId(1), "a")));
    ASSERT_OK(txn->InsertOrg(Org(OrgId(2), "B")));
    ASSERT_OK(txn->InsertConfig(Config("a", "1")));
    ASSERT_OK(txn->InsertConfig(Config("B", "2")));
    ASSERT_OK(txn->Commit());
  }
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto orgs, txn->ListOrgs());
  ASSERT_EQ(orgs.size(), 2u);
  EXPECT_EQ(orgs[0].name, "B");
  EXPECT_EQ(orgs[1].name, "a");
  ASSERT_OK_AND_ASSIGN(auto configs, txn->ListConfigs(Scope::Global()));
  ASSERT_EQ(configs.size(), 2u);
  EXPECT_EQ(configs[0].key, "B");
  EXPECT_EQ(configs[1].key, "a");
}

TEST(PostgresStoreTest, TextWithANulByteIsInvalidAndLeavesTheTransactionUsable) {
  const std::string url = testing::NewPostgresDatabase("nul");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
  const std::string with_nul("a\0b", 3);
  auto inserted = txn->InsertConfig(Config("k", with_nul));
  EXPECT_ERROR_CODE(inserted, ErrorCode::kInvalidArgument);
  if (!inserted) {
    EXPECT_NE(inserted.error().message().find("NUL"), std::string::npos);
  }
  // Nothing was sent: the transaction goes on.
  ASSERT_OK(txn->InsertConfig(Config("k", "ab")));
  ASSERT_OK(txn->Commit());
}

TEST(PostgresStoreTest, TextThatIsNotUtf8IsInvalidAndNotQuoted) {
  const std::string url = testing::NewPostgresDatabase("utf8");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
  auto inserted = txn->InsertConfig(Config("k", "caf\xe9 \xff"));
  EXPECT_ERROR_CODE(inserted, ErrorCode::kInvalidArgument);
  if (!inserted) {
    const std::string& message = inserted.error().message();
    EXPECT_EQ(message.find("0xe9"), std::string::npos) << message;
    EXPECT_EQ(message.find("0xff"), std::string::npos) << message;
    EXPECT_EQ(message.find('\xff'), std::string::npos) << message;
  }
}

TEST(PostgresStoreTest, AfterAFailedStatementTheTransactionIsOver) {
  const std::string url = testing::NewPostgresDatabase("aborted");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(Org(OrgId(1), "acme")));
    // A statement PostgreSQL refuses aborts the transaction; the store says so rather than
    // run later statements outside it.
    EXPECT_ERROR_CODE(dynamic_cast<PostgresTxn&>(*txn).Run("SELECT 1 / 0", "divide by zero"),
                      ErrorCode::kInvalidArgument);
    EXPECT_ERROR_CODE(txn->ListOrgs(), ErrorCode::kFailedPrecondition);
    EXPECT_ERROR_CODE(txn->Commit(), ErrorCode::kFailedPrecondition);
  }
  // Rolled back as a whole, and the pooled connection is clean again.
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto orgs, txn->ListOrgs());
  EXPECT_TRUE(orgs.empty());
}

TEST(PostgresStoreTest, BeginAgainstAStoppedServerFailsFastAndTheStoreRecovers) {
  testing::PostgresCluster cluster;
  ASSERT_FALSE(cluster.url().empty());
  const std::string url = cluster.NewDatabase("stopped");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  ASSERT_OK(InsertOrgCommitted(*store, Org(OrgId(1), "before")));

  ASSERT_TRUE(cluster.Stop());
  for (TxnMode mode : {TxnMode::kRead, TxnMode::kWrite}) {
    const auto started = std::chrono::steady_clock::now();
    auto txn = store->Begin(mode);
    const std::int64_t elapsed_ms = ElapsedMs(started);
    EXPECT_ERROR_CODE(txn, ErrorCode::kUnavailable);
    // Connection refused is immediate: the call must not sit out the 5 s connect or lock
    // timeout. (A bound on hanging, not a speed measurement: it takes milliseconds.)
    EXPECT_LT(elapsed_ms, 4000) << "Begin on a stopped server took " << elapsed_ms << " ms";
  }
  EXPECT_ERROR_CODE(store->ReleaseDeletedData(), ErrorCode::kUnavailable);

  ASSERT_TRUE(cluster.Start());
  // The first transaction after the server came back succeeds.
  ASSERT_OK(InsertOrgCommitted(*store, Org(OrgId(2), "after")));
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto orgs, txn->ListOrgs());
  EXPECT_EQ(orgs.size(), 2u);
}

TEST(PostgresStoreTest, FirstTransactionAfterARestartSucceedsWithEveryPooledConnectionBroken) {
  testing::PostgresCluster cluster;
  ASSERT_FALSE(cluster.url().empty());
  const std::string url = cluster.NewDatabase("restart");
  ASSERT_FALSE(url.empty());
  PostgresOptions options;
  options.pool_size = 4;
  auto store = OpenStore(url, options);
  ASSERT_NE(store, nullptr);
  {
    // Fill the pool: four connections, all idle afterwards.
    std::vector<std::unique_ptr<Txn>> txns;
    for (int i = 0; i < options.pool_size; ++i) {
      ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
      txns.push_back(std::move(txn));
    }
  }
  for (bool immediate : {false, true}) {
    SCOPED_TRACE(immediate ? "after a crash of PostgreSQL" : "after a restart");
    ASSERT_TRUE(cluster.Stop(immediate));
    ASSERT_TRUE(cluster.Start());
    for (int i = 0; i < options.pool_size + 1; ++i) {
      ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(i % 2 == 0 ? TxnMode::kWrite : TxnMode::kRead));
      ASSERT_OK(txn->ListOrgs());
      ASSERT_OK(txn->Commit());
    }
  }
}

TEST(PostgresStoreTest, ALostConnectionInsideATransactionIsUnavailable) {
  testing::PostgresCluster cluster;
  ASSERT_FALSE(cluster.url().empty());
  const std::string url = cluster.NewDatabase("lost");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(Org(OrgId(1), "lost")));
    ASSERT_TRUE(cluster.Restart());
    EXPECT_ERROR_CODE(txn->Commit(), ErrorCode::kUnavailable);
  }
  // The broken connection was dropped; the write never happened.
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto orgs, txn->ListOrgs());
  EXPECT_TRUE(orgs.empty());
}

TEST(PostgresStoreTest, ThePasswordNeverAppearsInErrorMessages) {
  // Nothing listens on port 1: the connection is refused.
  for (const std::string url : {"postgresql://bifrost:Sup3rSecretPw@127.0.0.1:1/db",
                                "postgres://bifrost:Sup3rSecretPw@127.0.0.1:1/db?sslmode=disable",
                                "postgresql://bifrost@127.0.0.1:1/db?password=Sup3rSecretPw",
                                "postgresql://bifrost:Sup3rSecretPw@127.0.0.1:1/db?bogus_option=1",
                                "postgresql://bifrost:Sup3r@Secret/Pw@127.0.0.1:1/db",
                                "postgresql://bifrost:Sup3r?SecretPw@127.0.0.1:1/db",
                                "postgresql://bifrost:Sup3r#SecretPw@127.0.0.1:1/db",
                                "postgresql://bifrost:Sup3r%zzSecretPw@127.0.0.1:1/db"}) {
    SCOPED_TRACE(PostgresStore::RedactUrl(url));
    PostgresOptions options;
    options.url = url;
    options.connect_timeout_seconds = 2;
    auto store = PostgresStore::Open(options);
    ASSERT_FALSE(store.has_value());
    EXPECT_EQ(store.error().message().find("Sup3r"), std::string::npos) << store.error().message();
    EXPECT_EQ(store.error().message().find("SecretPw"), std::string::npos)
        << store.error().message();
    EXPECT_EQ(PostgresStore::RedactUrl(url).find("Secret"), std::string::npos)
        << PostgresStore::RedactUrl(url);
  }
}

TEST(PostgresStoreTest, RedactUrlReplacesOnlyThePassword) {
  EXPECT_EQ(PostgresStore::RedactUrl("postgresql://u:pw@db.example:5432/bifrost?sslmode=require"),
            "postgresql://u:***@db.example:5432/bifrost?sslmode=require");
  EXPECT_EQ(PostgresStore::RedactUrl("postgresql://u@db.example/bifrost"),
            "postgresql://u@db.example/bifrost");
  EXPECT_EQ(PostgresStore::RedactUrl("postgresql://db.example:5432/bifrost"),
            "postgresql://db.example:5432/bifrost");
  EXPECT_EQ(PostgresStore::RedactUrl("postgres://u@h/db?password=pw&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require");
  EXPECT_EQ(PostgresStore::RedactUrl("postgres://u@h/db?SSLPassword=pw"),
            "postgres://u@h/db?SSLPassword=***");
  EXPECT_EQ(PostgresStore::RedactUrl("postgresql://u:p%40ss@h/db"), "postgresql://u:***@h/db");
  // Reserved characters left unencoded in the password still end up hidden.
  EXPECT_EQ(PostgresStore::RedactUrl("postgresql://u:pa?ss#x@h/db?sslmode=require"),
            "postgresql://u:***@h/db?sslmode=require");
  EXPECT_EQ(PostgresStore::RedactUrl("postgresql://u:pa/ss@h/db"), "postgresql://u:***@h/db");
}

TEST(PostgresStoreTest, IsPostgresUrlNamesBothSchemes) {
  EXPECT_TRUE(PostgresStore::IsPostgresUrl("postgresql://h/db"));
  EXPECT_TRUE(PostgresStore::IsPostgresUrl("postgres://h/db"));
  EXPECT_FALSE(PostgresStore::IsPostgresUrl("mysql://h/db"));
  EXPECT_FALSE(PostgresStore::IsPostgresUrl("/var/lib/bifrost"));
  EXPECT_FALSE(PostgresStore::IsPostgresUrl("host=h dbname=db"));
}

TEST(PostgresStoreTest, BadUrlsAndOptionsAreInvalidArguments) {
  for (const std::string url : {"", "mysql://u@h/db", "host=localhost dbname=x",
                                "postgresql://u@h/db?no_such_option=1", "postgresql://[::1/db"}) {
    SCOPED_TRACE(url);
    PostgresOptions options;
    options.url = url;
    EXPECT_ERROR_CODE(PostgresStore::Open(options), ErrorCode::kInvalidArgument);
  }
  const std::string good = "postgresql://u@127.0.0.1:1/db";
  auto with = [&](const std::function<void(PostgresOptions&)>& change) {
    PostgresOptions options;
    options.url = good;
    change(options);
    return PostgresStore::Open(options);
  };
  EXPECT_ERROR_CODE(with([](PostgresOptions& o) { o.pool_size = 0; }), ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(with([](PostgresOptions& o) { o.pool_size = 1001; }),
                    ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(with([](PostgresOptions& o) { o.connect_timeout_seconds = 0; }),
                    ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(with([](PostgresOptions& o) { o.lock_timeout_ms = 0; }),
                    ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(with([](PostgresOptions& o) { o.statement_timeout_ms = 0; }),
                    ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(with([](PostgresOptions& o) { o.clock = nullptr; }),
                    ErrorCode::kInvalidArgument);
  // A well-formed URL of a server that is not there is unavailable, not invalid.
  EXPECT_ERROR_CODE(with([](PostgresOptions&) {}), ErrorCode::kUnavailable);
}

TEST(PostgresStoreTest, TlsIsUsedWhenTheUrlAsksForIt) {
  testing::PostgresCluster cluster({.port = testing::PostgresCluster::FreePort(), .ssl = true});
  ASSERT_FALSE(cluster.url().empty());
  const std::string url = cluster.NewDatabase("tls");
  ASSERT_FALSE(url.empty());
  ASSERT_EQ(url.find('?'), std::string::npos) << url;

  auto store = OpenStore(url + "?sslmode=require");
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(const bool ssl, postgres_internal::SessionUsesSsl(*txn));
  EXPECT_TRUE(ssl);
  ASSERT_OK(txn->Commit());

  // This server accepts TCP clients over TLS only.
  PostgresOptions plain;
  plain.url = url + "?sslmode=disable";
  auto refused = PostgresStore::Open(plain);
  EXPECT_ERROR_CODE(refused, ErrorCode::kUnavailable);
}

TEST(PostgresStoreTest, AnExhaustedPoolMakesBeginWaitThenUnavailable) {
  const std::string url = testing::NewPostgresDatabase("pool");
  ASSERT_FALSE(url.empty());
  PostgresOptions options;
  options.pool_size = 1;
  options.lock_timeout_ms = 200;
  auto store = OpenStore(url, options);
  ASSERT_NE(store, nullptr);

  ASSERT_OK_AND_ASSIGN(auto held, store->Begin(TxnMode::kRead));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_ERROR_CODE(store->Begin(TxnMode::kRead), ErrorCode::kUnavailable);
  EXPECT_GE(ElapsedMs(started), 150) << "Begin did not wait for a connection";

  // A Begin that waits gets the connection once it is given back.
  PostgresOptions patient = options;
  patient.lock_timeout_ms = 30'000;
  auto patient_store = OpenStore(url, patient);
  ASSERT_NE(patient_store, nullptr);
  ASSERT_OK_AND_ASSIGN(auto patient_held, patient_store->Begin(TxnMode::kRead));
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    auto txn = patient_store->Begin(TxnMode::kRead);
    EXPECT_TRUE(txn.has_value()) << txn.error().ToString();
    got = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(got.load());
  patient_held.reset();
  waiter.join();
  EXPECT_TRUE(got.load());
}

TEST(PostgresStoreTest, ReleaseDeletedDataVacuumsOutsideATransaction) {
  const std::string url = testing::NewPostgresDatabase("vacuum");
  ASSERT_FALSE(url.empty());
  auto store = OpenStore(url);
  ASSERT_NE(store, nullptr);
  ASSERT_OK(InsertOrgCommitted(*store, Org(OrgId(1), "gone")));
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store->Begin(TxnMode::kWrite));
    ASSERT_OK(txn->DeleteOrg(OrgId(1)));
    ASSERT_OK(txn->Commit());
  }
  ASSERT_OK(store->ReleaseDeletedData());
  for (const char* table : {"configs", "data_keys", "audit_log", "sessions"}) {
    EXPECT_TRUE(Eventually([&] {
      return testing::RunSql(url, std::string("SELECT last_vacuum IS NOT NULL FROM "
                                              "pg_stat_user_tables WHERE relname = '") +
                                      table + "'") == "t\n";
    })) << table
        << " was not vacuumed";
  }
}

}  // namespace
}  // namespace bifrost::store
