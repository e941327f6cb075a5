#include "store/open/open_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <string>
#include <utility>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace bifrost::store {
namespace {

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string DatabasePath(const std::string& data_dir) {
  return data_dir + "/" + std::string(SqliteStore::kDatabaseFileName);
}

// "mysql" for "mysql://...", "" when the text does not start with a plausible scheme. Only
// this much of a wrong URL is ever shown: the rest may hold a password.
std::string SchemeOf(std::string_view url) {
  const auto end = url.find("://");
  if (end == std::string_view::npos || end == 0 || end > 20) return "";
  for (const char c : url.substr(0, end)) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-' && c != '.') {
      return "";
    }
  }
  return std::string(url.substr(0, end));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding of a URL query value, as libpq does ('+' stays '+').
std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

}  // namespace

bool IsDatabaseUrl(std::string_view url) { return PostgresStore::IsPostgresUrl(url); }

std::string RedactDatabaseUrl(std::string_view url) { return PostgresStore::RedactUrl(url); }

Status ValidateLocation(const StoreLocation& location, std::string_view command) {
  const bool dir = !location.data_dir.empty();
  const bool url = !location.database_url.empty();
  if (dir && url) {
    return Fail(ErrorCode::kInvalidArgument,
                "give either --data DIR (BIFROST_DATA) or --database URL (BIFROST_DATABASE_URL), "
                "not both");
  }
  if (!dir && !url) {
    std::string message(command);
    message +=
        " needs a data directory (give --data DIR or set BIFROST_DATA) or a PostgreSQL "
        "database (give --database URL or set BIFROST_DATABASE_URL)";
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  if (url && !IsDatabaseUrl(location.database_url)) {
    std::string message =
        "--database must be a PostgreSQL URL, postgresql://USER@HOST[:PORT]/DBNAME[?PARAMS] (or "
        "postgres://...)";
    const std::string scheme = SchemeOf(location.database_url);
    if (!scheme.empty()) {
      message += ", not a ";
      message += scheme;
      message += ":// URL";
    }
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  return Ok();
}

std::string DescribeLocation(const StoreLocation& location) {
  if (location.is_postgres()) return "database " + RedactDatabaseUrl(location.database_url);
  return "data directory " + location.data_dir;
}

std::string LocationFlag(const StoreLocation& location) {
  if (location.is_postgres()) return "--database URL";
  return "--data " + location.data_dir;
}

std::vector<std::string> LocationFiles(const StoreLocation& location) {
  if (!location.is_postgres()) {
    if (location.data_dir.empty()) return {};
    return {location.data_dir};
  }
  std::vector<std::string> files;
  const std::string_view url = location.database_url;
  const auto question = url.find('?');
  if (question == std::string_view::npos) return files;
  std::string_view query = url.substr(question + 1);
  const auto hash = query.find('#');
  if (hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string name = PercentDecode(pair.substr(0, eq));
    if (name != "sslkey" && name != "passfile") continue;
    std::string value = PercentDecode(pair.substr(eq + 1));
    if (!value.empty()) files.push_back(std::move(value));
  }
  return files;
}

Result<bool> IsInitialized(const StoreLocation& location, Store& store) {
  if (!location.is_postgres()) return true;
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(const auto checks, txn->ListKeyChecks());
  if (checks.empty()) return false;
  // `init` records the key check, then (in a second transaction) the first token with its
  // audit record. Anything written after the key check means init finished.
  BIFROST_ASSIGN_OR_RETURN(const auto last_audit, txn->GetLastAudit());
  if (last_audit) return true;
  BIFROST_ASSIGN_OR_RETURN(const auto checkpoint, txn->GetAuditCheckpoint());
  if (checkpoint) return true;
  BIFROST_ASSIGN_OR_RETURN(const auto tokens, txn->ListTokens(std::nullopt));
  if (!tokens.empty()) return true;
  BIFROST_ASSIGN_OR_RETURN(const auto orgs, txn->ListOrgs());
  return !orgs.empty();
}

bool DataDirectoryExists(const StoreLocation& location) {
  return !location.is_postgres() && !location.data_dir.empty() && PathExists(location.data_dir);
}

Status CheckLocation(const StoreLocation& location, Expect expect, std::string_view command) {
  BIFROST_RETURN_IF_ERROR(ValidateLocation(location, command));
  if (location.is_postgres()) return Ok();
  const std::string& dir = location.data_dir;
  const bool exists = PathExists(DatabasePath(dir));
  if (expect == Expect::kInitialized && !exists) {
    return Fail(ErrorCode::kFailedPrecondition,
                "no database in " + dir + "; run `bifrost init --data " + dir + "` first");
  }
  if (expect == Expect::kUninitialized && exists) {
    return Fail(ErrorCode::kFailedPrecondition,
                dir + " already holds a Bifrost database; refusing to initialize it again");
  }
  return Ok();
}

Result<std::unique_ptr<Store>> OpenStore(const StoreLocation& location,
                                         const OpenOptions& options) {
  // SqliteStore::Open creates a missing database: look first.
  BIFROST_RETURN_IF_ERROR(CheckLocation(location, options.expect, options.command));
  const Clock* clock = options.clock != nullptr ? options.clock : &SystemClock::Instance();
  if (!location.is_postgres()) {
    BIFROST_ASSIGN_OR_RETURN(auto store,
                             SqliteStore::Open({.data_dir = location.data_dir, .clock = clock}));
    return std::unique_ptr<Store>(std::move(store));
  }

  if (options.pool_size < 1 || options.pool_size > kMaxPoolSize) {
    std::string message = "--database-pool must be between 1 and ";
    message += std::to_string(kMaxPoolSize);
    message += ", not ";
    message += std::to_string(options.pool_size);
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  PostgresOptions pg;
  pg.url = location.database_url;
  pg.pool_size = options.pool_size;
  pg.statement_timeout_ms = options.statement_timeout_ms;
  pg.connect_timeout_seconds = options.connect_timeout_seconds;
  pg.clock = clock;
  BIFROST_ASSIGN_OR_RETURN(auto opened, PostgresStore::Open(pg));
  std::unique_ptr<Store> store = std::move(opened);
  if (options.expect != Expect::kAny) {
    BIFROST_ASSIGN_OR_RETURN(const bool initialized, IsInitialized(location, *store));
    const std::string redacted = RedactDatabaseUrl(location.database_url);
    if (options.expect == Expect::kInitialized && !initialized) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "the database " + redacted +
                      " holds no Bifrost installation; run `bifrost init --database URL` "
                      "(with the same URL) first");
    }
    if (options.expect == Expect::kUninitialized && initialized) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "the database " + redacted +
                      " already holds a Bifrost installation; refusing to initialize it again");
    }
  }
  return store;
}

void DiscardFailedInit(const StoreLocation& location, bool created_directory) {
  if (location.is_postgres() || location.data_dir.empty()) return;
  const std::string path = DatabasePath(location.data_dir);
  for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  if (created_directory) ::rmdir(location.data_dir.c_str());
}

}  // namespace bifrost::store
