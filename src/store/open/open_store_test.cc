#include "store/open/open_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/support/postgres_test.h"
#include "tests/support/subprocess.h"

namespace bifrost::store {
namespace {

using testing::TempDir;

// A password no message, log or output may ever contain.
constexpr const char* kCanary = "CanaryPw-7f3a9c";

// `url` ("postgresql://user@...") with the canary password for its user. The test clusters
// trust every local connection, so the password is sent and ignored.
std::string WithPassword(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@', scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) return url;
  return url.substr(0, at) + ":" + kCanary + url.substr(at);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// ---- the location, without a database ----

TEST(StoreLocationTest, ExactlyOneOfTheTwoIsRequired) {
  auto neither = ValidateLocation({}, "keys rotate");
  ASSERT_FALSE(neither);
  EXPECT_EQ(neither.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(neither.error().message(),
            "keys rotate needs a data directory (give --data DIR or set BIFROST_DATA) or a "
            "PostgreSQL database (give --database URL or set BIFROST_DATABASE_URL)");

  const std::string url = std::string("postgresql://app:") + kCanary + "@db.internal/bifrost";
  auto both = ValidateLocation({.data_dir = "/var/lib/bifrost", .database_url = url}, "serve");
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().message().find("--data"), std::string::npos);
  EXPECT_NE(both.error().message().find("--database"), std::string::npos);
  EXPECT_NE(both.error().message().find("not both"), std::string::npos);
  EXPECT_EQ(both.error().message().find(kCanary), std::string::npos);

  EXPECT_TRUE(ValidateLocation({.data_dir = "/var/lib/bifrost"}, "serve"));
  EXPECT_TRUE(ValidateLocation({.database_url = url}, "serve"));
  EXPECT_TRUE(ValidateLocation({.database_url = "postgres://db/bifrost"}, "serve"));
}

TEST(StoreLocationTest, AUrlOfAnotherKindIsRefusedWithoutEchoingIt) {
  for (const std::string& bad :
       {std::string("mysql://root:") + kCanary + "@db/bifrost",
        std::string("https://u:") + kCanary + "@db/x", std::string("db.internal:") + kCanary,
        std::string(kCanary), std::string("POSTGRESQL:/") + kCanary}) {
    auto result = ValidateLocation({.database_url = bad}, "init");
    ASSERT_FALSE(result) << bad;
    EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(result.error().message().starts_with("--database must be a PostgreSQL URL"))
        << result.error().message();
    EXPECT_EQ(result.error().message().find(kCanary), std::string::npos)
        << result.error().message();
  }
  auto mysql = ValidateLocation({.database_url = "mysql://db/x"}, "init");
  ASSERT_FALSE(mysql);
  EXPECT_NE(mysql.error().message().find("not a mysql:// URL"), std::string::npos)
      << mysql.error().message();
}

TEST(StoreLocationTest, DescriptionsNeverCarryThePassword) {
  EXPECT_EQ(DescribeLocation({.data_dir = "/var/lib/bifrost"}), "data directory /var/lib/bifrost");
  EXPECT_EQ(LocationFlag({.data_dir = "/var/lib/bifrost"}), "--data /var/lib/bifrost");
  const StoreLocation pg{.database_url =
                             std::string("postgresql://app:") + kCanary + "@db.internal/bifrost"};
  const std::string described = DescribeLocation(pg);
  EXPECT_TRUE(described.starts_with("database postgresql://app:")) << described;
  EXPECT_NE(described.find("db.internal/bifrost"), std::string::npos) << described;
  EXPECT_EQ(described.find(kCanary), std::string::npos) << described;
  EXPECT_EQ(LocationFlag(pg), "--database URL");
}

TEST(StoreLocationTest, FilesAreTheDataDirectoryOrTheUrlsCredentials) {
  EXPECT_EQ(LocationFiles({.data_dir = "/var/lib/bifrost"}),
            std::vector<std::string>{"/var/lib/bifrost"});
  EXPECT_TRUE(LocationFiles({.database_url = "postgresql://db/bifrost"}).empty());
  // Keys and password files are protected; certificates are public and left out.
  EXPECT_EQ(LocationFiles({.database_url = "postgresql://db/bifrost?sslmode=verify-full&"
                                           "sslrootcert=/etc/ssl/ca.pem&sslcert=/etc/b/c.pem&"
                                           "sslkey=/etc/bifrost/client%20key.pem&"
                                           "passfile=%2Fetc%2Fbifrost%2Fpgpass"}),
            (std::vector<std::string>{"/etc/bifrost/client key.pem", "/etc/bifrost/pgpass"}));
}

// ---- SQLite ----

TEST(OpenStoreTest, SqliteDatabaseExistsWhenItsFileDoes) {
  TempDir dir;
  const StoreLocation location{.data_dir = dir.path() + "/data"};
  const std::string db = location.data_dir + "/bifrost.db";

  auto missing = OpenStore(location, {.expect = Expect::kInitialized, .command = "keys status"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(missing.error().message(), "no database in " + location.data_dir +
                                           "; run `bifrost init --data " + location.data_dir +
                                           "` first");
  EXPECT_FALSE(Exists(location.data_dir));  // nothing was created
  EXPECT_FALSE(DataDirectoryExists(location));

  {
    auto created = OpenStore(location, {.expect = Expect::kUninitialized});
    ASSERT_TRUE(created) << created.error().ToString();
    EXPECT_EQ((*created)->BackendName(), "sqlite");
    auto initialized = IsInitialized(location, **created);
    ASSERT_TRUE(initialized);
    EXPECT_TRUE(*initialized);
  }
  EXPECT_TRUE(Exists(db));
  EXPECT_TRUE(DataDirectoryExists(location));
  auto again = CheckLocation(location, Expect::kUninitialized, "init");
  ASSERT_FALSE(again);
  EXPECT_EQ(
      again.error().message(),
      location.data_dir + " already holds a Bifrost database; refusing to initialize it again");
  EXPECT_TRUE(OpenStore(location, {.expect = Expect::kInitialized}));
  EXPECT_TRUE(OpenStore(location, {.expect = Expect::kAny}));

  DiscardFailedInit(location, /*created_directory=*/true);
  EXPECT_FALSE(Exists(db));
  EXPECT_FALSE(Exists(location.data_dir));
}

TEST(OpenStoreTest, AnyMayCreateASqliteDatabase) {
  TempDir dir;
  const StoreLocation location{.data_dir = dir.path() + "/dev"};
  auto store = OpenStore(location, {.expect = Expect::kAny});
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_TRUE(Exists(location.data_dir + "/bifrost.db"));
}

TEST(OpenStoreTest, DiscardKeepsADirectoryItDidNotCreate) {
  TempDir dir;
  const StoreLocation location{.data_dir = dir.path()};
  { ASSERT_TRUE(OpenStore(location, {.expect = Expect::kUninitialized})); }
  DiscardFailedInit(location, /*created_directory=*/false);
  EXPECT_FALSE(Exists(dir.path() + "/bifrost.db"));
  EXPECT_TRUE(Exists(dir.path()));
}

// ---- PostgreSQL (the `postgres` fixture) ----

TEST(OpenStoreTest, PostgresDatabaseExistsOnceInitFinished) {
  const std::string plain = testing::NewPostgresDatabase("open_store");
  ASSERT_FALSE(plain.empty());
  const StoreLocation location{.database_url = WithPassword(plain)};
  FakeClock clock;

  // A fresh database holds no installation: only init may open it.
  auto missing = OpenStore(location, {.expect = Expect::kInitialized, .clock = &clock});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(missing.error().message().find("bifrost init --database"), std::string::npos)
      << missing.error().message();
  EXPECT_EQ(missing.error().message().find(kCanary), std::string::npos);

  auto store =
      OpenStore(location, {.expect = Expect::kUninitialized, .pool_size = 2, .clock = &clock});
  ASSERT_TRUE(store) << store.error().ToString();
  EXPECT_EQ((*store)->BackendName(), "postgresql");
  auto initialized = IsInitialized(location, **store);
  ASSERT_TRUE(initialized) << initialized.error().ToString();
  EXPECT_FALSE(*initialized);

  // init records the key check first: alone, it is an init that stopped half-way, which the
  // next init may finish and which nothing else opens.
  {
    auto txn = (*store)->Begin(TxnMode::kWrite);
    ASSERT_TRUE(txn);
    ASSERT_TRUE((*txn)->InsertKeyCheck({.key_id = "k1", .check_value = "c1", .added_at = 1}));
    ASSERT_TRUE((*txn)->Commit());
  }
  initialized = IsInitialized(location, **store);
  ASSERT_TRUE(initialized);
  EXPECT_FALSE(*initialized);
  EXPECT_TRUE(OpenStore(location, {.expect = Expect::kUninitialized, .clock = &clock}));
  EXPECT_FALSE(OpenStore(location, {.expect = Expect::kInitialized, .clock = &clock}));

  // Then the first token (with its audit record): the installation exists.
  {
    auto txn = (*store)->Begin(TxnMode::kWrite);
    ASSERT_TRUE(txn);
    TokenRow token;
    token.id = "00000000-0000-4000-8000-000000000001";
    token.name = "initial-admin";
    token.role = "platform-admin";
    token.hash = std::string(64, 'a');
    token.created_at = 1;
    token.created_by = "bootstrap";
    ASSERT_TRUE((*txn)->InsertToken(token));
    ASSERT_TRUE((*txn)->Commit());
  }
  initialized = IsInitialized(location, **store);
  ASSERT_TRUE(initialized);
  EXPECT_TRUE(*initialized);
  EXPECT_TRUE(OpenStore(location, {.expect = Expect::kInitialized, .clock = &clock}));
  auto again = OpenStore(location, {.expect = Expect::kUninitialized, .clock = &clock});
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("already holds a Bifrost installation"), std::string::npos)
      << again.error().message();
  EXPECT_EQ(again.error().message().find(kCanary), std::string::npos);

  // PostgreSQL has no directory to create or remove.
  EXPECT_FALSE(DataDirectoryExists(location));
  EXPECT_TRUE(LocationFiles(location).empty());
}

TEST(OpenStoreTest, PostgresPoolSizeIsChecked) {
  const std::string url = testing::NewPostgresDatabase("open_pool");
  ASSERT_FALSE(url.empty());
  for (const int bad : {0, -1, 1001}) {
    auto store = OpenStore({.database_url = url}, {.expect = Expect::kAny, .pool_size = bad});
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(store.error().message().starts_with("--database-pool must be between 1 and 1000"))
        << store.error().message();
  }
}

TEST(OpenStoreTest, AnUnreachableDatabaseIsUnavailableAndNamedWithoutItsPassword) {
  TempDir dir;
  // A socket directory where no server listens.
  const std::string url = std::string("postgresql://bifrost:") + kCanary +
                          "@/bifrost?host=" + dir.path() + "&port=5999&connect_timeout=2";
  auto store = OpenStore({.database_url = url}, {.expect = Expect::kInitialized});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kUnavailable) << store.error().ToString();
  EXPECT_EQ(store.error().message().find(kCanary), std::string::npos) << store.error().message();
}

}  // namespace
}  // namespace bifrost::store
