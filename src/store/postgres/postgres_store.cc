#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "store/postgres/connection.h"
#include "store/postgres/migrations.h"
#include "store/postgres/postgres_txn.h"

namespace bifrost::store {

using postgres_internal::Connection;
using postgres_internal::QueryResult;

namespace {

constexpr int kMaxPoolSize = 1000;
constexpr int kMaxConnectTimeoutSeconds = 3600;

// BEGIN of a read transaction, and a first statement that takes its snapshot now, so that
// the transaction sees the database as of Begin (as SQLite's readers do).
constexpr std::string_view kBeginRead =
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1";
// BEGIN of a write transaction, then the transaction-scoped advisory lock every writer of
// every node takes: writers are serialized, and each one sees every write committed before
// it. The key is a fixed number, 0x626966726f737401 ("bifrost" and 1), distinct from the
// migration lock's (migrations.cc).
constexpr std::string_view kBeginWrite = "BEGIN; SELECT pg_advisory_xact_lock(7091311729953698817)";
// The tables that hold sealed values, wrapped keys, audit records and session hashes.
constexpr std::string_view kVacuum = "VACUUM configs, data_keys, audit_log, sessions";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

}  // namespace

// ---- PostgresStore::Impl

Result<std::unique_ptr<Connection>> PostgresStore::Impl::Acquire(bool* fresh) {
  *fresh = false;
  {
    std::unique_lock<std::mutex> lock(mutex);
    if (!available.wait_for(lock, std::chrono::milliseconds(options.lock_timeout_ms),
                            [this] { return !idle.empty() || open < options.pool_size; })) {
      std::string message = "timed out after ";
      message += std::to_string(options.lock_timeout_ms);
      message += " ms waiting for a free connection to '";
      message += settings.redacted_url;
      message += "' (all ";
      message += std::to_string(options.pool_size);
      message += " are in use)";
      return Fail(ErrorCode::kUnavailable, std::move(message));
    }
    if (!idle.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle.back());
      idle.pop_back();
      return connection;
    }
    ++open;  // reserved while connecting, outside the lock
  }
  Result<std::unique_ptr<Connection>> connection = Connection::Open(settings);
  if (!connection) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      --open;
    }
    available.notify_one();
    return connection;
  }
  *fresh = true;
  return connection;
}

void PostgresStore::Impl::Release(std::unique_ptr<Connection> connection) {
  if (connection == nullptr) return;
  if (!connection->broken() && connection->InTransaction()) {
    // Nothing more to do if the rollback fails: the connection is closed below.
    (void)connection->ExecScript("ROLLBACK", "roll back");
  }
  const bool keep = !connection->broken() && !connection->InTransaction();
  if (keep) connection->set_idle_since_ms(postgres_internal::MonotonicMillis());
  std::unique_ptr<Connection> discarded;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (keep) {
      idle.push_back(std::move(connection));
    } else {
      discarded = std::move(connection);
      --open;
    }
  }
  available.notify_one();
  // `discarded` closes here, outside the lock.
}

Result<std::unique_ptr<Connection>> PostgresStore::Impl::AcquireAndRun(
    const std::function<Status(Connection&)>& start) {
  // Every idle connection may be broken after a restart of the server; each one that is
  // fails at once and is closed. A fresh connection ends the retries either way, and so does
  // a server that did not answer at all: trying the next connection would only wait again.
  for (int attempt = 0; attempt <= options.pool_size; ++attempt) {
    bool fresh = false;
    BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Acquire(&fresh));
    Status started = start(*connection);
    if (started) return connection;
    const bool retry = !fresh && connection->broken() && !connection->timed_out();
    Release(std::move(connection));
    if (!retry) return Fail(std::move(started.error()));
  }
  return Fail(ErrorCode::kUnavailable,
              "cannot use any connection to '" + settings.redacted_url + "'");
}

// ---- PostgresStore

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PostgresStore::~PostgresStore() {
  if (impl_->live_txns.load() != 0) {
    // A Txn outliving its store would give its connection back to a freed pool.
    std::fprintf(stderr, "bifrost: PostgresStore destroyed while %d transaction(s) are alive\n",
                 impl_->live_txns.load());
    std::abort();
  }
}

bool PostgresStore::IsPostgresUrl(std::string_view url) {
  return StartsWith(url, "postgresql://") || StartsWith(url, "postgres://");
}

std::string PostgresStore::RedactUrl(std::string_view url) {
  std::string redacted(url);
  const std::size_t scheme = redacted.find("://");
  if (scheme == std::string::npos) return redacted;
  const std::size_t authority = scheme + 3;
  // user:password@: the password runs from the first ':' of the authority to the last '@' of
  // the whole URL. A password may hold '?', '#', '/' or '@' without percent-encoding them
  // (libpq still accepts some of those), so no other character is trusted to end it: an '@'
  // further on (in a query value) only makes this hide more than the password.
  const std::size_t at = redacted.rfind('@');
  if (at != std::string::npos && at >= authority) {
    const std::size_t colon = redacted.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      redacted.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // ?password=...&sslpassword=...
  const std::size_t query = redacted.find('?', at != std::string::npos ? at : authority);
  if (query == std::string::npos) return redacted;
  std::string result = redacted.substr(0, query + 1);
  std::string_view rest = std::string_view(redacted).substr(query + 1);
  bool first = true;
  while (true) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    if (!first) result += '&';
    first = false;
    const std::size_t eq = pair.find('=');
    const std::string key = Lower(pair.substr(0, eq));
    if (eq != std::string_view::npos && (key == "password" || key == "sslpassword")) {
      result += pair.substr(0, eq + 1);
      result += "***";
    } else {
      result += pair;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return result;
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const PostgresOptions& options) {
  const std::string redacted = RedactUrl(options.url);
  if (options.url.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "postgresql store: the database URL is empty");
  }
  if (!IsPostgresUrl(options.url)) {
    return Fail(ErrorCode::kInvalidArgument,
                "postgresql store: '" + redacted +
                    "' is not a PostgreSQL URL (postgresql://user@host:port/database)");
  }
  if (options.pool_size < 1 || options.pool_size > kMaxPoolSize) {
    return Fail(ErrorCode::kInvalidArgument, "postgresql store: pool_size must be between 1 and " +
                                                 std::to_string(kMaxPoolSize));
  }
  if (options.connect_timeout_seconds < 1 ||
      options.connect_timeout_seconds > kMaxConnectTimeoutSeconds) {
    return Fail(ErrorCode::kInvalidArgument,
                "postgresql store: connect_timeout_seconds must be between 1 and " +
                    std::to_string(kMaxConnectTimeoutSeconds));
  }
  // PostgreSQL reads 0 as "no timeout": both must be positive.
  if (options.lock_timeout_ms < 1) {
    return Fail(ErrorCode::kInvalidArgument, "postgresql store: lock_timeout_ms must be positive");
  }
  if (options.statement_timeout_ms < 1) {
    return Fail(ErrorCode::kInvalidArgument,
                "postgresql store: statement_timeout_ms must be positive");
  }
  if (options.clock == nullptr) {
    return Fail(ErrorCode::kInvalidArgument, "postgresql store: clock is null");
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->settings.url = options.url;
  impl->settings.redacted_url = redacted;
  impl->settings.connect_timeout_seconds = options.connect_timeout_seconds;
  impl->settings.statement_timeout_ms = options.statement_timeout_ms;
  impl->settings.lock_timeout_ms = options.lock_timeout_ms;
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(impl)));
  Impl& state = *store->impl_;

  // Another node may be migrating: wait for it as long as a statement may take.
  int version = 0;
  BIFROST_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> connection, state.AcquireAndRun([&](Connection& c) -> Status {
        BIFROST_ASSIGN_OR_RETURN(version, postgres_internal::ApplyMigrations(
                                              c, *options.clock, options.statement_timeout_ms));
        return Ok();
      }));
  state.Release(std::move(connection));
  state.schema_version = version;
  return store;
}

Result<std::unique_ptr<Txn>> PostgresStore::Begin(TxnMode mode) {
  Impl& state = *impl_;
  const bool write = mode == TxnMode::kWrite;
  BIFROST_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> connection, state.AcquireAndRun([&](Connection& c) -> Status {
        Result<QueryResult> begun =
            c.ExecScript(write ? kBeginWrite : kBeginRead,
                         write ? "begin write transaction" : "begin read transaction");
        if (begun) return Ok();
        if (write && begun.error().code() == ErrorCode::kUnavailable && !c.broken()) {
          std::string message = "timed out after ";
          message += std::to_string(state.options.lock_timeout_ms);
          message += " ms waiting for the write lock of '";
          message += state.settings.redacted_url;
          message += "' (another writer holds it): ";
          message += begun.error().message();
          return Fail(ErrorCode::kUnavailable, std::move(message));
        }
        return Fail(std::move(begun.error()));
      }));
  return std::unique_ptr<Txn>(std::make_unique<PostgresTxn>(&state, std::move(connection), mode));
}

int PostgresStore::SchemaVersion() const { return impl_->schema_version; }

Status PostgresStore::ReleaseDeletedData() {
  BIFROST_ASSIGN_OR_RETURN(
      std::unique_ptr<Connection> connection, impl_->AcquireAndRun([](Connection& c) -> Status {
        // VACUUM cannot run inside a transaction: the pooled
        // connection is outside one between transactions.
        BIFROST_RETURN_IF_ERROR(c.ExecScript(kVacuum, "release deleted data (VACUUM)"));
        return Ok();
      }));
  impl_->Release(std::move(connection));
  return Ok();
}

const std::string& PostgresStore::redacted_url() const { return impl_->settings.redacted_url; }

}  // namespace bifrost::store
