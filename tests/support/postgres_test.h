// PostgreSQL for the tests: the shared cluster the ctest fixture `postgres` starts
// (tests/support/postgres_fixture.sh), fresh databases on it, and private clusters a test can
// stop and restart. Everything runs Debian's postgresql-15 binaries through
// tests/support/postgres_cluster.sh; nothing is downloaded.
//
// A test that needs PostgreSQL and finds no cluster fails: it never skips.
#pragma once

#include <string>
#include <string_view>

namespace bifrost::testing {

// URL of the shared test cluster's "postgres" database: $BIFROST_TEST_POSTGRES_URL, or the
// contents of the file named by $BIFROST_TEST_POSTGRES_URL_FILE (set by the fixture). ""
// when neither is set.
std::string PostgresAdminUrl();

// The shared cluster's directory (its data directory is `<dir>/data`): the directory of the
// URL file, or $BIFROST_TEST_POSTGRES_DIR. "" when unknown. For scanning the database's files.
std::string PostgresClusterDir();
// `<PostgresClusterDir()>/data`, or "".
std::string PostgresDataDir();

// Whether the tests of this process run on PostgreSQL ($BIFROST_TEST_BACKEND=postgresql).
bool TestBackendIsPostgres();

// Creates a fresh, empty database `bifrost_<label>_<random>` on the cluster whose admin URL
// is given (default: the shared one) and returns its URL. Fails the current test
// (ADD_FAILURE) and returns "" when there is no cluster or the database cannot be created.
std::string NewPostgresDatabase(std::string_view label, const std::string& admin_url = "");

// `url` with its database name replaced by `database`.
std::string WithDatabase(const std::string& url, std::string_view database);

// Runs one SQL statement through psql on `url` and returns its output (tuples only, unaligned,
// fields separated by '|'). Fails the test on an error.
std::string RunSql(const std::string& url, const std::string& sql);

// A private cluster of one test, in its own temporary directory: started by the constructor,
// destroyed by the destructor. For stopping and restarting PostgreSQL under a running server.
class PostgresCluster {
 public:
  struct Options {
    int port = 0;      // also listen on 127.0.0.1:port (0: Unix socket only)
    bool ssl = false;  // TLS for TCP clients (needs a port)
    bool fsync = true;
  };
  explicit PostgresCluster(Options options);
  PostgresCluster() : PostgresCluster(Options{}) {}
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // The URL of its "postgres" database; "" if it failed to start (the test has failed).
  const std::string& url() const { return url_; }
  const std::string& dir() const { return dir_; }
  // A fresh database on this cluster; its URL.
  std::string NewDatabase(std::string_view label);

  // pg_ctl stop (fast, or immediate: a crash of PostgreSQL), start, restart (fast). Each
  // returns false (and fails the test) when the command failed.
  bool Stop(bool immediate = false);
  bool Start();
  bool Restart();

  // A free TCP port on 127.0.0.1 (for Options::port).
  static int FreePort();

 private:
  Options options_;
  std::string dir_;
  std::string url_;
};

}  // namespace bifrost::testing
