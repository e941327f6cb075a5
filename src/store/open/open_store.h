// Opening "the database" of a command whichever backend it is: the embedded SQLite file in a
// data directory (`--data DIR`) or a PostgreSQL database shared by several server nodes
// (`--database URL`). `bifrost serve`, `init` and the local commands (`keys ...`,
// `import bifrost`, `audit verify`) all go through here, so the two flags mean the same
// thing everywhere and nothing above this file names a backend.
//
// Whether a database "exists" (has been through `bifrost init`):
//   - SQLite: the file <data_dir>/bifrost.db exists. It is checked before opening, because
//     opening creates the file.
//   - PostgreSQL: opening runs the migrations (so the schema always exists afterwards, an
//     idempotent step any node may take); the installation exists when the schema holds a
//     key check row AND something `init` writes after it (a token, an audit record or
//     checkpoint, an organization). A database with the key check but nothing else is an
//     `init` that stopped between its two transactions: `init` may finish it (the barrier
//     still refuses a key that is not the one recorded) and everything else treats it as
//     not initialized.
//
// Messages name a database by DescribeLocation: the directory, or the URL without its
// password (PostgresStore::RedactUrl). No function here ever puts a password in a message.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::store {

// Where a command's database is. Exactly one of the two is set (ValidateLocation).
struct StoreLocation {
  std::string data_dir;      // SQLite: --data / BIFROST_DATA
  std::string database_url;  // PostgreSQL: --database / BIFROST_DATABASE_URL

  bool is_postgres() const { return !database_url.empty(); }
};

inline constexpr const char* kDataDirEnv = "BIFROST_DATA";
inline constexpr const char* kDatabaseUrlEnv = "BIFROST_DATABASE_URL";
inline constexpr const char* kDatabasePoolEnv = "BIFROST_DATABASE_POOL";
inline constexpr int kDefaultPoolSize = 8;
inline constexpr int kMaxPoolSize = 1000;

// kInvalidArgument unless exactly one of data_dir and database_url is set and the URL is a
// postgresql:// or postgres:// URL. `command` starts the "nothing given" message ("keys
// rotate needs a data directory (give --data DIR ...) or a PostgreSQL database (give
// --database URL ...)"). The URL is never echoed: at most its scheme.
Status ValidateLocation(const StoreLocation& location, std::string_view command);

// Whether `url` is a postgresql:// or postgres:// URL.
bool IsDatabaseUrl(std::string_view url);

// `url` with any password replaced by "***" (PostgresStore::RedactUrl).
std::string RedactDatabaseUrl(std::string_view url);

// For messages: "data directory /var/lib/bifrost" or "database postgresql://app:***@db/bifrost".
std::string DescribeLocation(const StoreLocation& location);

// The flag that names the location, for advice such as "run `bifrost init <flag>` first":
// "--data /var/lib/bifrost", or "--database URL" (never the URL itself: it may carry a
// password, and the redacted one would not work when pasted).
std::string LocationFlag(const StoreLocation& location);

// Files and directories on this host that hold the database or a credential for it, for
// the workflow sandbox's protected paths: the data directory; for a URL, the files its
// sslkey and passfile parameters name (certificates are public and are left out, since a
// CA bundle commonly lives where workflows may read).
std::vector<std::string> LocationFiles(const StoreLocation& location);

// What the database must be when it is opened.
enum class Expect {
  kInitialized,    // serve, keys, import, audit verify: `bifrost init` ran
  kUninitialized,  // init: nothing there yet (or an init that stopped half-way)
  kAny,            // serve --dev: create it when missing
};

struct OpenOptions {
  Expect expect = Expect::kInitialized;
  int pool_size = kDefaultPoolSize;  // PostgreSQL connections at most (1..1000); SQLite ignores it
  // PostgreSQL: the longest one statement may run (then the request fails with 503); a
  // server that stops answering is given up on 2 s after that. SQLite ignores it.
  int statement_timeout_ms = 30'000;
  // PostgreSQL: how long opening a connection may take, unless the URL sets connect_timeout.
  int connect_timeout_seconds = 5;
  const Clock* clock = &SystemClock::Instance();
  std::string command = "this command";  // for ValidateLocation's message: "keys rotate"
};

// The checks that need no connection: ValidateLocation, then for SQLite whether the file
// exists as `expect` wants (with the messages of OpenStore). Commands call it before they
// read keys, so that the simplest mistake is the one reported; OpenStore repeats it.
Status CheckLocation(const StoreLocation& location, Expect expect, std::string_view command);

// Opens (and migrates) the database at `location`. Errors: kInvalidArgument from
// ValidateLocation or a bad pool size; kFailedPrecondition when the database is not in the
// expected state, with what to do ("no database in DIR; run `bifrost init --data DIR`
// first", "... already holds a Bifrost database; refusing to initialize it again"); and the
// backend's own errors (kUnavailable when PostgreSQL cannot be reached).
// With kInitialized a SQLite file is never created.
Result<std::unique_ptr<Store>> OpenStore(const StoreLocation& location, const OpenOptions& options);

// Whether `store` (opened at `location`) holds an installation that `bifrost init` finished
// (see the file comment). SQLite: always true once the file exists.
Result<bool> IsInitialized(const StoreLocation& location, Store& store);

// After a failed `init` on a location that had no database before it: removes what the
// attempt created, so that the next `init` is not refused. SQLite: the database file and its
// -wal/-shm files, and the data directory when `created_directory`. PostgreSQL: nothing (the
// schema is harmless, and a key check left behind is finished by the next init). The store
// must be closed first.
void DiscardFailedInit(const StoreLocation& location, bool created_directory);

// Whether the location's directory exists (SQLite; false for PostgreSQL): init removes only
// a directory it created.
bool DataDirectoryExists(const StoreLocation& location);

}  // namespace bifrost::store
