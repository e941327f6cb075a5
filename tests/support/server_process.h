// Runs the real `bifrost` binary for end-to-end tests: `bifrost init`, then `bifrost serve` on
// 127.0.0.1 port 0, its stdout and stderr captured in files, stopped with SIGTERM.
//
// The database is wherever the test's backend puts it (BIFROST_TEST_BACKEND): a data
// directory in a temporary directory (SQLite, the default) or a fresh database on the shared
// PostgreSQL test cluster (`postgresql`), so every test runs unchanged on both. A test that
// runs local commands (keys, import, audit verify) names the database with StorageArgs().
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/subprocess.h"

namespace bifrost::testing {

// The path of the built `bifrost` binary (BIFROST_BINARY, compiled in).
std::string BifrostBinary();

// "sqlite" or "postgresql": the backend the tests of this process run on
// ($BIFROST_TEST_BACKEND; unset means sqlite).
std::string_view TestBackend();

// Where one installation keeps its database: exactly one of the two is set.
struct Storage {
  std::string data_dir;      // SQLite: the data directory (`--data`)
  std::string database_url;  // PostgreSQL: the database (`--database`)
  std::time_t created = 0;   // PostgreSQL: when the database was made (for StoredBytes)

  bool postgresql() const { return !database_url.empty(); }
  std::string_view backend() const { return postgresql() ? "postgresql" : "sqlite"; }
  // {"--data", dir} or {"--database", url}: how a command names this database.
  std::vector<std::string> Args() const;
};

// A new place for one installation on the tests' backend, not initialized: `dir`/data (not
// created) for SQLite, a fresh empty database for PostgreSQL (the test fails when there is
// no cluster).
Storage NewStorage(const std::string& dir);

// What StoredBytes scans on PostgreSQL: with or without the cluster's write-ahead log, which
// every database of the shared test cluster writes to.
enum class StoredScope { kWithSharedLog, kOwn };

// Everything `storage` keeps at rest, for scans for what must never be stored in clear:
//   - SQLite: every file of the data directory (the database, its -wal and -shm).
//   - PostgreSQL: the database's contents as text (pg_dump: values however PostgreSQL
//     stores them, compressed or not), after a CHECKPOINT the database's own files under
//     base/, and (kWithSharedLog) the cluster's write-ahead log segments written since the
//     database was made.
// The write-ahead log holds other tests' writes too: look there for this test's own values
// (a canary, a token), and for a pattern any test might store ("CANARY") in kOwn only.
// Fails the test when something cannot be read.
std::string StoredBytes(const Storage& storage, StoredScope scope = StoredScope::kWithSharedLog);

// A text that changes whenever anything in `storage` changes: the database file's bytes
// (SQLite) or a pg_dump of the database (PostgreSQL).
std::string StorageFingerprint(const Storage& storage);

// Runs `sql` (one or more statements) as a second client of the database, as an attacker
// or a fault would: Python's sqlite3 (waiting for the server's locks) or psql. Rows come
// back in `out`, one per line, fields separated by '\x1f', every value as text (NULL as
// "").
ProcessResult RunSqlOn(const Storage& storage, const std::string& sql);

class ServerProcess {
 public:
  struct Options {
    std::string secret_key = "e2e-test-secret-key-0123456789-abcdefgh";
    std::vector<std::string> extra_args;  // appended to `bifrost serve`
    std::vector<std::string> extra_env;   // "NAME=value"
    bool init = true;                     // run `bifrost init` first
    std::vector<std::string> init_env;    // "NAME=value" for `bifrost init`
    // Where the database is: a data directory (SQLite) or a PostgreSQL URL, at most one.
    // Neither: a fresh one on the tests' backend (BIFROST_TEST_BACKEND). With init = false
    // and the URL of another server's database, this server is a second node on it.
    std::string data_dir;
    std::string database_url;
  };

  // Starts the server; on failure the test fails and address() is empty.
  explicit ServerProcess(Options options);
  ServerProcess() : ServerProcess(Options{}) {}
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }  // "http://127.0.0.1:PORT"
  // The token `bifrost init` printed; empty when this server did not run init.
  const std::string& admin_token() const { return admin_token_; }
  const Storage& storage() const { return storage_; }
  std::string_view backend() const { return storage_.backend(); }    // "sqlite" / "postgresql"
  const std::string& data_dir() const { return storage_.data_dir; }  // "" on PostgreSQL
  const std::string& database_url() const { return storage_.database_url; }  // "" on SQLite
  // {"--data", dir} or {"--database", url}, for local commands on this server's database.
  std::vector<std::string> StorageArgs() const { return storage_.Args(); }
  const std::string& secret_key() const { return options_.secret_key; }
  pid_t pid() const { return pid_; }  // -1 when not running

  // Sends SIGTERM and waits up to 60 s (then kills it and fails the test); returns the exit
  // code (128+signal if killed).
  int Stop();
  // SIGKILL, no chance to clean up (a crash); waits for the process to be gone.
  void Kill();
  // Everything the server wrote to stdout and stderr so far.
  std::string Stdout() const;
  std::string Stderr() const;

  // Runs `bifrost ARGS...` as a client of this server (BIFROST_ADDR set, BIFROST_TOKEN =
  // `token` unless empty), feeding `input` on stdin.
  ProcessResult Cli(const std::vector<std::string>& args, const std::string& token,
                    const std::string& input = "",
                    const std::vector<std::string>& extra_env = {}) const;

 private:
  Options options_;
  TempDir dir_;
  Storage storage_;
  std::string address_;
  std::string admin_token_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// `options` with its database set to `storage` (for several servers, one after another or
// side by side, on one database).
ServerProcess::Options On(const Storage& storage, ServerProcess::Options options = {});

}  // namespace bifrost::testing
