#include "server/server_app.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "audit/audit.h"
#include "auth/auth.h"
#include "auth/users.h"
#include "barrier/barrier.h"
#include "common/base64.h"
#include "common/clock.h"
#include "common/status.h"
#include "config/config_service.h"
#include "crypto/key_derivation.h"
#include "crypto/keyring.h"
#include "crypto/mac.h"
#include "crypto/random.h"
#include "crypto/secure_buffer.h"
#include "keys/key_source.h"
#include "keys/keys.h"
#include "server/access_log.h"
#include "server/api.h"
#include "server/dispatch.h"
#include "server/http_server.h"
#include "store/open/open_store.h"
#include "workflow/runtime.h"

namespace bifrost::server {
namespace {

constexpr std::string_view kDevDataDir = "./.bifrost-dev";
constexpr std::string_view kDevKeyFileName = "secret-key";
constexpr std::string_view kInitialAdminName = "initial-admin";
constexpr std::string_view kDevAdminEmail = "admin@localhost";
// File descriptors the server needs besides one per connection: the database and its
// journal, the listener, the event loop, stdio, a TLS library that opens files.
constexpr rlim_t kReservedFds = 64;
// The in-flight body budget (HttpServerOptions::max_inflight_body_bytes), unless one body
// may be larger.
constexpr std::size_t kInflightBodyBudget = std::size_t{64} << 20;

// Every start-up failure: one line on stderr, exit code 1.
int StartupFailure(std::string_view reason) {
  std::fprintf(stderr, "bifrost: %.*s\n", static_cast<int>(reason.size()), reason.data());
  std::fflush(stderr);
  return 1;
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Key material must not end up in a core file or be readable through /proc by a debugger
// of the same user.
void HardenProcess() {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
}

// The absolute path of a program: `name` itself when it has a slash, else the first
// executable of that name on PATH.
Result<std::string> FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) {
      return Fail(ErrorCode::kNotFound, "--python " + name + " is not an executable file");
    }
    char resolved[PATH_MAX];
    if (::realpath(name.c_str(), resolved) == nullptr) {
      return Fail(ErrorCode::kNotFound, "--python " + name + " cannot be resolved");
    }
    return std::string(resolved);
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    if (!dir.empty()) {
      const std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return Fail(ErrorCode::kNotFound,
              "cannot find " + name + " on PATH for Python workflows; give --python PATH");
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Creates the directory (and parents) with mode 0700 when it does not exist.
Status EnsureDirectory(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Fail(ErrorCode::kFailedPrecondition, "'" + dir + "' is not a directory");
    }
    return Ok();
  }
  std::string prefix;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    prefix = dir.substr(0, pos);
    if (prefix.empty() || ::mkdir(prefix.c_str(), 0700) == 0 || errno == EEXIST) continue;
    return Fail(ErrorCode::kFailedPrecondition,
                "cannot create directory '" + prefix + "': " + ErrnoText(errno));
  }
  return Ok();
}

// The key of a --dev server without BIFROST_SECRET_KEY: kept in <data>/secret-key (0600),
// made on the first start (32 random bytes as unpadded base64url text, 43 characters).
Result<keys::Secret> DevSecret(const std::string& data_dir) {
  BIFROST_RETURN_IF_ERROR(EnsureDirectory(data_dir));
  const std::string path = data_dir + "/" + std::string(kDevKeyFileName);
  const std::string source = "the development key file '" + path + "'";
  if (PathExists(path)) {
    BIFROST_ASSIGN_OR_RETURN(auto text, keys::ReadKeyFile(path, "the development key file"));
    return keys::Secret{std::move(text), source};
  }
  crypto::SecureBuffer random(32);
  BIFROST_RETURN_IF_ERROR(crypto::RandomBytes(random.mutable_bytes()));
  std::string encoded = Base64UrlEncode(random.bytes());
  crypto::SecureBuffer text = crypto::SecureBuffer::From(encoded);
  crypto::SecureWipe(encoded.data(), encoded.size());
  while (!text.empty() && text.view().back() == '=') text.Resize(text.size() - 1);

  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                "cannot create the development key file '" + path + "': " + ErrnoText(errno));
  }
  crypto::SecureBuffer line = text.Clone();
  line.Append(std::string_view("\n"));
  std::size_t written = 0;
  int err = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  if (err != 0) {
    ::unlink(path.c_str());
    return Fail(ErrorCode::kFailedPrecondition,
                "cannot write the development key file '" + path + "': " + ErrnoText(err));
  }
  return keys::Secret{std::move(text), source};
}

void WriteOut(const crypto::SecureBuffer& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Creates the platform-admin token of a new installation, with its audit record (actor
// "bootstrap": a local command, no request) in the same transaction. With `only_first`, the
// transaction rolls back unless it is the first thing the installation records: write
// transactions are serialized, so of several `bifrost init` racing on one PostgreSQL
// database exactly one finishes and the others are refused (and set `*lost`).
Result<auth::CreatedToken> CreateInitialAdmin(auth::TokenService& tokens, audit::AuditLog& audit,
                                              std::string_view command, bool only_first,
                                              bool* lost = nullptr) {
  auth::NewToken request;
  request.name = std::string(kInitialAdminName);
  request.role = auth::Role::kPlatformAdmin;
  return tokens.Create(
      request, /*creator=*/nullptr, [&](store::Txn& txn, const store::TokenRow& row) -> Status {
        if (only_first) {
          BIFROST_ASSIGN_OR_RETURN(const auto last, txn.GetLastAudit());
          BIFROST_ASSIGN_OR_RETURN(const auto all, txn.ListTokens(std::nullopt));
          if (last || all.size() != 1) {
            if (lost != nullptr) *lost = true;
            return Fail(ErrorCode::kFailedPrecondition,
                        "the database was initialized meanwhile (by another `bifrost init`); "
                        "refusing to initialize it again");
          }
        }
        audit::Event event;
        event.action = audit::actions::kTokenCreate;
        event.actor_name = "bootstrap";
        event.detail = "token " + row.id + " (" + row.role + ") by " + std::string(command);
        return audit.InTxn(std::move(event))(txn);
      });
}

// Walks the audit chain with every audit key the barrier knows (those of the configured
// master keys and the stored ones of master keys rotated away).
Result<audit::VerifyReport> VerifyAuditChain(store::Store& store, const barrier::Barrier& barrier) {
  std::vector<crypto::MacKey> keys;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(keys, barrier.AuditKeys(*txn));
  }
  return audit::Verify(store, keys, {});
}

// --audit-retention: prunes at start and then hourly, until stopped.
class RetentionTask {
 public:
  RetentionTask(audit::AuditLog& audit, const Clock& clock, int days, AccessLog& log)
      : audit_(audit), clock_(clock), days_(days), log_(log) {
    if (days_ > 0) thread_ = std::thread([this] { Run(); });
  }
  ~RetentionTask() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  RetentionTask(const RetentionTask&) = delete;
  RetentionTask& operator=(const RetentionTask&) = delete;

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      const UnixMicros cutoff =
          clock_.NowMicros() - static_cast<UnixMicros>(days_) * 86'400LL * 1'000'000LL;
      auto pruned = audit_.Prune(cutoff);
      if (!pruned) {
        log_.Error("audit retention failed; will retry in an hour",
                   {{"code", ErrorCodeName(pruned.error().code())},
                    {"message", std::string_view(pruned.error().message())}});
      } else if (*pruned > 0) {
        log_.Info("audit retention pruned old records",
                  {{"records", static_cast<std::int64_t>(*pruned)},
                   {"retention_days", static_cast<std::int64_t>(days_)}});
      }
      lock.lock();
      cv_.wait_for(lock, std::chrono::hours(1), [this] { return stop_; });
    }
  }

  audit::AuditLog& audit_;
  const Clock& clock_;
  const int days_;
  AccessLog& log_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// --audit-file: records other writers append to the database (other nodes on a shared
// database, local commands such as `keys rotate`) reach this server's file at its next
// group of records; an idle server would let its file fall behind for as long as it stays
// idle (and retention on another node could prune what the file still needs). So the file is
// caught up every kAuditFileFollowInterval as well.
constexpr std::chrono::seconds kAuditFileFollowInterval{5};

class AuditFileFollower {
 public:
  explicit AuditFileFollower(audit::AuditLog& audit) : audit_(audit) {
    if (audit_.has_file_sink()) thread_ = std::thread([this] { Run(); });
  }
  ~AuditFileFollower() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  AuditFileFollower(const AuditFileFollower&) = delete;
  AuditFileFollower& operator=(const AuditFileFollower&) = delete;

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, kAuditFileFollowInterval, [this] { return stop_; })) {
      lock.unlock();
      // A failure is the writer's to report (on_health_change); the next turn tries again.
      audit_.Sync([](const Status&) {});
      lock.lock();
    }
  }

  audit::AuditLog& audit_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

void PrintDevWarning(const std::string& data_dir, const std::string& key_source) {
  const char* bar = "bifrost: WARNING: ==========================================================";
  std::fprintf(stderr,
               "%s\n"
               "bifrost: WARNING: development mode (--dev). NOT FOR PRODUCTION.\n"
               "bifrost: WARNING: data directory: %s\n"
               "bifrost: WARNING: secret key: %s\n"
               "bifrost: WARNING: anyone who can read the key can decrypt every secret, and\n"
               "bifrost: WARNING: a dev key kept beside the data protects nothing. For real\n"
               "bifrost: WARNING: use, run `bifrost init --data DIR` with BIFROST_SECRET_KEY\n"
               "bifrost: WARNING: set, then `bifrost serve --data DIR`.\n"
               "%s\n",
               bar, data_dir.c_str(), key_source.c_str(), bar);
  std::fflush(stderr);
}

// Raises the soft open-file limit (up to the hard one) so that max_connections connections
// fit, as servers and the Go runtime do: a cap the descriptors cannot hold would let
// accept() fail with EMFILE before the cap is reached. Logs what it could not do.
void FitOpenFileLimit(std::size_t max_connections, AccessLog& log) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t needed = static_cast<rlim_t>(max_connections) + kReservedFds;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min(needed, limit.rlim_max);
    if (raised.rlim_cur > limit.rlim_cur && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised;
    }
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    log.Warn(
        "the open-file limit is below --max-connections plus a reserve; connections beyond "
        "it will fail to be accepted (raise `ulimit -n` or lower --max-connections)",
        {{"open_file_limit", static_cast<std::int64_t>(limit.rlim_cur)},
         {"max_connections", static_cast<std::int64_t>(max_connections)},
         {"reserve", static_cast<std::int64_t>(kReservedFds)}});
  }
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Start-up: the configured master keys (ids only: an id reveals nothing of its key), and a
// warning for each previous key that no data key or value needs any more, so the operator
// knows when step 4 of a rotation (docs/keys.md) may be taken.
void LogMasterKeys(const barrier::Barrier& barrier, store::Store& store, AccessLog& log) {
  const auto& ring = barrier.keyring().keys();
  std::string previous;
  for (std::size_t i = 1; i < ring.size(); ++i) {
    if (!previous.empty()) previous += ", ";
    previous += ring[i].id();
  }
  log.Info("master keys", {{"primary_key_id", std::string_view(ring.front().id())},
                           {"previous_key_ids", previous.empty() ? std::string_view("(none)")
                                                                 : std::string_view(previous)}});
  if (ring.size() < 2) return;
  auto status = keys::GetKeyStatus(store, barrier);
  if (!status) {
    log.Warn("could not tell whether the previous master keys are still used",
             {{"code", ErrorCodeName(status.error().code())},
              {"message", std::string_view(status.error().message())}});
    return;
  }
  for (const auto& use : status->master_keys) {
    if (!use.configured || use.primary || use.data_keys > 0 || use.direct_values > 0) continue;
    std::string message = "previous master key ";
    message += use.key_id;
    message += " is no longer used; it can be removed from BIFROST_SECRET_KEY_PREVIOUS";
    log.Warn(message, {{"key_id", std::string_view(use.key_id)}});
  }
}

// This node's name for people, among several serving one database: "<host> <listen>".
std::string NodeName(const std::string& listen) {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "%s", "localhost");
  }
  std::string name = host;
  name += ' ';
  name += listen;
  return name;
}

// The part of RunServe that runs on an open store: returns the exit code.
// The statement timeout of the server's PostgreSQL sessions (docs/deployment.md). A request's
// statements take milliseconds; a database that does not answer within this (plus a second)
// gets a 503 instead of holding one of the server's threads.
constexpr int kServeStatementTimeoutMs = 2000;
// And for opening a connection (libpq's minimum; a URL's connect_timeout wins).
constexpr int kServeConnectTimeoutSeconds = 2;

int ServeWithStore(const ServeOptions& options, const store::StoreLocation& location,
                   store::Store& store, crypto::Keyring keyring, const std::string& listen_host,
                   bool tls) {
  const Clock& clock = SystemClock::Instance();
  auto audit_key = crypto::DeriveAuditKey(keyring.primary());
  if (!audit_key) return StartupFailure(audit_key.error().message());
  auto opened = barrier::Barrier::Open(std::move(keyring), store, clock);
  if (!opened) return StartupFailure(opened.error().message());
  const barrier::Barrier barrier = std::move(*opened);
  config::ConfigService config(store, barrier, clock);
  auth::TokenService tokens(store, clock);

  AccessLog log(std::cerr, clock);
  LogMasterKeys(barrier, store, log);
  audit::AuditLogOptions audit_options;
  audit_options.file_path = options.audit_file;
  audit_options.on_health_change = [&log](const std::optional<Error>& error) {
    if (error) {
      log.Error(
          "the audit log cannot record: requests that need a record are refused (503) "
          "until it can",
          {{"code", ErrorCodeName(error->code())},
           {"message", std::string_view(error->message())}});
    } else {
      log.Info("the audit log records again");
    }
  };
  auto audit = audit::AuditLog::Open(store, std::move(*audit_key), clock, std::move(audit_options));
  if (!audit) return StartupFailure(audit.error().message());
  const RetentionTask retention(**audit, clock, options.audit_retention_days, log);
  const AuditFileFollower file_follower(**audit);

  if (options.dev) {
    // First start of a dev installation (or one that never got its token): make the admin.
    auto txn = store.Begin(store::TxnMode::kRead);
    if (!txn) return StartupFailure(txn.error().message());
    auto existing = (*txn)->ListTokens(std::nullopt);
    txn->reset();
    if (!existing) return StartupFailure(existing.error().message());
    if (existing->empty()) {
      auto admin = CreateInitialAdmin(tokens, **audit, "serve --dev", /*only_first=*/false);
      if (!admin) return StartupFailure(admin.error().message());
      crypto::SecureBuffer line = crypto::SecureBuffer::From(std::string_view("admin token: "));
      line.Append(admin->token.view());
      line.Append(std::string_view("\n"));
      WriteOut(line);
    }
  }

  // Users and browser sessions (docs/web-ui.md).
  auth::UserService users(store, clock);
  auth::SessionService sessions(store, clock,
                                {.idle_timeout_seconds = options.session_idle_seconds,
                                 .lifetime_seconds = options.session_lifetime_seconds,
                                 // Password hashing never takes more than half the threads.
                                 .max_concurrent_checks = std::max(1, options.threads / 2)});
  if (options.dev) {
    // The dev installation's first user, so the web UI can be signed in to at once.
    auto txn = store.Begin(store::TxnMode::kRead);
    if (!txn) return StartupFailure(txn.error().message());
    auto existing = (*txn)->ListUsers(std::nullopt);
    txn->reset();
    if (!existing) return StartupFailure(existing.error().message());
    if (existing->empty()) {
      auto password = auth::GenerateTokenText("");
      if (!password) return StartupFailure(password.error().message());
      auto created = users.Create(
          {.email = std::string(kDevAdminEmail), .role = auth::Role::kPlatformAdmin},
          password->view(), /*creator=*/nullptr, [&](store::Txn& write, const store::UserRow& row) {
            audit::Event event;
            event.action = audit::actions::kUserCreate;
            event.actor_name = "bootstrap";
            event.detail = "user " + row.id + " (" + row.role + ") by serve --dev";
            return (*audit)->InTxn(std::move(event))(write);
          });
      if (!created) return StartupFailure(created.error().message());
      crypto::SecureBuffer line = crypto::SecureBuffer::From(std::string_view("admin user: "));
      line.Append(kDevAdminEmail);
      line.Append(std::string_view(" password: "));
      line.Append(password->view());
      line.Append(std::string_view("\n"));
      WriteOut(line);
    }
  }

  // Workflows: execution tokens are accepted from now on; the runtime ends what a previous
  // server left unfinished and loads the directory before anything is served.
  auth::ExecutionTokens execution_tokens(clock);
  tokens.AcceptExecutionTokens(&execution_tokens);
  std::unique_ptr<workflow::Runtime> workflows;
  if (!options.workflows_dir.empty()) {
    workflow::RuntimeOptions runtime_options;
    runtime_options.workflows_dir = options.workflows_dir;
    runtime_options.python = options.python;
    runtime_options.run_as_user = options.workflow_user;
    runtime_options.max_concurrent = options.workflow_concurrency;
    runtime_options.max_queued = options.workflow_queue;
    runtime_options.default_timeout_seconds = options.workflow_timeout_seconds;
    runtime_options.max_log_bytes = options.workflow_max_output;
    runtime_options.max_result_bytes = options.workflow_max_output;
    if (tls) runtime_options.ca_file = options.tls_cert;
    runtime_options.allow_unconfined = options.workflow_allow_unconfined;
    runtime_options.protected_paths = options.key_files;
    for (auto& path : store::LocationFiles(location)) {
      runtime_options.protected_paths.push_back(std::move(path));
    }
    runtime_options.protected_paths.push_back(options.tls_key);
    // Several nodes may serve one PostgreSQL database: each runs only its own executions.
    runtime_options.shared_store = store.BackendName() != "sqlite";
    runtime_options.node_name = NodeName(options.listen);
    auto created = workflow::Runtime::Create(
        std::move(runtime_options), store, execution_tokens, clock,
        [&log](std::string_view level, std::string_view message,
               const std::vector<std::pair<std::string, std::string>>& fields) {
          std::vector<LogField> shown;
          shown.reserve(fields.size());
          for (const auto& [name, value] : fields) {
            shown.push_back({name, std::string_view(value)});
          }
          log.Event(level, message, shown);
        });
    if (!created) return StartupFailure(created.error().message());
    workflows = std::move(*created);
  }

  std::atomic<bool> ready{false};
  Router router;
  RegisterApiRoutes(
      router,
      ApiContext{.config = &config,
                 .tokens = &tokens,
                 .audit = audit->get(),
                 .store = &store,
                 .clock = &clock,
                 .ready = [&ready] { return ready.load(); },
                 .log = &log,
                 .workflows = workflows.get(),
                 .users = &users,
                 .sessions = &sessions,
                 .secure_cookies = tls,
                 .trusted_proxies = options.trusted_proxies,
                 .verify_audit = [&store, &barrier] { return VerifyAuditChain(store, barrier); }});

  // Signals are caught from here on, before the address is announced: a supervisor that
  // sends SIGTERM as soon as it reads the "listening" line gets a graceful stop.
  boost::asio::io_context signal_context(1);
  boost::asio::signal_set signals(signal_context, SIGTERM, SIGINT);

  HttpServerOptions server_options;
  server_options.listen = options.listen;
  server_options.tls_cert_file = options.tls_cert;
  server_options.tls_key_file = options.tls_key;
  server_options.threads = options.threads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.max_connections = options.max_connections;
  server_options.max_inflight_body_bytes = std::max(kInflightBodyBudget, options.max_body_bytes);
  server_options.header_timeout = std::chrono::milliseconds(options.header_timeout_ms);
  server_options.idle_timeout = std::chrono::milliseconds(options.idle_timeout_ms);
  server_options.log = &log;
  server_options.route_namer = MakeRouteNamer(router);
  FitOpenFileLimit(options.max_connections, log);
  auto server = HttpServer::Create(std::move(server_options), MakeRouterDispatcher(router));
  if (!server) return StartupFailure(server.error().message());

  (*server)->Start();
  ready.store(true);
  // The host as given (a name like "localhost" matches a certificate; a literal is the
  // bound address anyway) with the real port.
  const std::string url = std::string(tls ? "https" : "http") + "://" + UrlHost(listen_host) + ":" +
                          std::to_string((*server)->port());
  if (workflows && !options.workflow_api_url.empty()) {
    workflows->SetApiAddress(options.workflow_api_url);
  } else if (workflows) {
    // Executions reach this server on the loopback when it listens on every address.
    const std::string host =
        listen_host == "0.0.0.0" ? "127.0.0.1" : (listen_host == "::" ? "::1" : listen_host);
    std::string api = std::string(tls ? "https" : "http") + "://" + UrlHost(host) + ":";
    api += std::to_string((*server)->port());
    workflows->SetApiAddress(std::move(api));
  }
  const std::string database =
      location.is_postgres() ? store::RedactDatabaseUrl(location.database_url) : location.data_dir;
  std::fprintf(stdout, "listening on %s\n", url.c_str());
  std::fflush(stdout);
  log.Info("listening",
           {{"address", std::string_view(url)},
            {"threads", static_cast<std::int64_t>(options.threads)},
            {"max_connections", static_cast<std::int64_t>(options.max_connections)},
            {"dev", options.dev},
            {"backend", store.BackendName()},
            {"database", std::string_view(database)},
            {"audit_file", options.audit_file.empty() ? std::string_view("(none)")
                                                      : std::string_view(options.audit_file)},
            {"audit_retention_days", static_cast<std::int64_t>(options.audit_retention_days)}});
  if (!tls && !IsLoopbackHost(listen_host)) {
    log.Warn(
        "serving plain HTTP on a non-loopback address (--insecure-no-tls): tokens and "
        "secret values cross the network in clear unless a TLS proxy is in front");
  }

  int caught = 0;
  signals.async_wait([&caught](const boost::system::error_code& ec, int signal_number) {
    if (!ec) caught = signal_number;
  });
  signal_context.run();

  log.Info("shutting down",
           {{"signal", std::string_view(caught == SIGINT ? "SIGINT" : "SIGTERM")}});
  ready.store(false);
  // Running executions are stopped (and their waiting requests answered) while the server
  // can still send the answers.
  if (workflows) workflows->Shutdown();
  (*server)->Stop();
  server->reset();
  // After the server: a response still held for its record was released or dropped.
  (*audit)->Stop();
  log.Info("stopped");
  return 0;
}

}  // namespace

int RunServe(const ServeOptions& options) {
  HardenProcess();
  // A peer that goes away must be an error on that write, not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Where key files are (paths, not keys), so that workflows can be kept away from them.
  std::vector<std::string> key_files;
  for (const char* name : {keys::kSecretKeyFileEnv, keys::kPreviousKeyFileEnv}) {
    if (const char* path = std::getenv(name); path != nullptr && *path != '\0') {
      key_files.emplace_back(path);
    }
  }
  // The keys leave the environment first, whatever else goes wrong.
  auto env_keys = keys::TakeKeysFromEnvironment();
  if (!env_keys) return StartupFailure(env_keys.error().message());

  // Flags, before anything touches the disk.
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (tls && (options.tls_cert.empty() || options.tls_key.empty())) {
    return StartupFailure("TLS needs both --tls-cert and --tls-key");
  }
  auto listen = ParseListenAddress(options.listen);
  if (!listen) return StartupFailure(listen.error().message());
  if (!tls && !options.insecure_no_tls && !IsLoopbackHost(listen->host)) {
    return StartupFailure("refusing to serve plain HTTP on the non-loopback address " +
                          options.listen +
                          ": give --tls-cert and --tls-key, or --insecure-no-tls when a TLS "
                          "proxy is in front");
  }
  if (options.threads < 1 || options.threads > 1024) {
    return StartupFailure("--threads must be between 1 and 1024, not " +
                          std::to_string(options.threads));
  }
  if (options.audit_retention_days < 0) {
    return StartupFailure("--audit-retention must be a number of days, 0 (keep all) or more");
  }
  if (options.max_body_bytes == 0) return StartupFailure("--max-body-bytes must be positive");
  if (options.max_connections == 0) return StartupFailure("--max-connections must be positive");
  if (options.header_timeout_ms <= 0 || options.idle_timeout_ms <= 0) {
    return StartupFailure("timeouts must be positive");
  }

  ServeOptions resolved = options;
  resolved.key_files = std::move(key_files);
  if (!options.workflows_dir.empty()) {
    // The system's interpreter by default: one under a user's home (pyenv) is usually not
    // readable by the workflows' user.
    std::string wanted = options.python;
    if (wanted.empty())
      wanted = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    auto python = FindProgram(wanted);
    if (!python) return StartupFailure(python.error().message());
    resolved.python = std::move(*python);
    if (options.workflow_concurrency < 1 || options.workflow_concurrency > 256) {
      return StartupFailure("--workflow-concurrency must be between 1 and 256");
    }
    if (options.workflow_timeout_seconds < 1 || options.workflow_timeout_seconds > 3600) {
      return StartupFailure("--workflow-timeout must be between 1 and 3600 seconds");
    }
    if (!options.workflow_api_url.empty() && !options.workflow_api_url.starts_with("http://") &&
        !options.workflow_api_url.starts_with("https://")) {
      return StartupFailure("--workflow-api-url must be an http:// or https:// URL");
    }
    if (options.workflow_max_output < 1024) {
      return StartupFailure("--workflow-max-output must be at least 1024 bytes");
    }
  }

  if (options.database_pool < 1 || options.database_pool > store::kMaxPoolSize) {
    std::string reason = "--database-pool must be between 1 and ";
    reason += std::to_string(store::kMaxPoolSize);
    reason += ", not ";
    reason += std::to_string(options.database_pool);
    return StartupFailure(reason);
  }
  if (options.dev && !options.database_url.empty()) {
    return StartupFailure(
        "--dev runs on the embedded store in a data directory; it cannot be combined with "
        "--database (run `bifrost init --database URL`, then `bifrost serve --database URL`)");
  }
  store::StoreLocation location{.data_dir = options.data_dir, .database_url = options.database_url};
  if (options.dev && location.data_dir.empty()) location.data_dir = std::string(kDevDataDir);
  if (auto checked = store::CheckLocation(
          location, options.dev ? store::Expect::kAny : store::Expect::kInitialized, "serve");
      !checked) {
    return StartupFailure(checked.error().message());
  }
  const std::string& data_dir = location.data_dir;
  resolved.data_dir = data_dir;

  std::optional<keys::Secret> secret = std::move(env_keys->current);
  if (!secret) {
    if (!options.dev) return StartupFailure(keys::MissingKeyMessage());
    auto dev_secret = DevSecret(data_dir);
    if (!dev_secret) return StartupFailure(dev_secret.error().message());
    secret = std::move(*dev_secret);
  }
  if (options.dev) PrintDevWarning(data_dir, secret->source);
  auto keyring = keys::BuildKeyring(*secret, env_keys->previous);
  secret.reset();  // wiped
  env_keys->previous.clear();
  if (!keyring) return StartupFailure(keyring.error().message());

  const Clock& clock = SystemClock::Instance();
  // Several nodes may open one fresh PostgreSQL database at once: the store serializes the
  // migrations, so each of them comes up on the finished schema.
  auto store = store::OpenStore(
      location, {.expect = options.dev ? store::Expect::kAny : store::Expect::kInitialized,
                 .pool_size = options.database_pool,
                 // What a request does to the database takes milliseconds; a database that
                 // does not answer within seconds gets a 503, not a request held open.
                 .statement_timeout_ms = kServeStatementTimeoutMs,
                 .connect_timeout_seconds = kServeConnectTimeoutSeconds,
                 .clock = &clock,
                 .command = "serve"});
  if (!store) return StartupFailure(store.error().message());
  const int status =
      ServeWithStore(resolved, location, **store, std::move(*keyring), listen->host, tls);
  // Everything that used the store is gone; the store closes its database cleanly.
  store->reset();
  return status;
}

int RunInit(const InitOptions& options) {
  HardenProcess();
  auto env_keys = keys::TakeKeysFromEnvironment();
  const store::StoreLocation location{.data_dir = options.data_dir,
                                      .database_url = options.database_url};
  if (auto checked = store::CheckLocation(location, store::Expect::kUninitialized, "init");
      !checked) {
    return StartupFailure(checked.error().message());
  }
  if (!env_keys) return StartupFailure(env_keys.error().message());
  if (!env_keys->current) return StartupFailure(keys::MissingKeyMessage());
  // Previous keys are harmless here (a new database has nothing they could open) and are
  // accepted, so that one environment serves init, serve and the local commands alike.
  auto keyring = keys::BuildKeyring(*env_keys->current, env_keys->previous);
  env_keys->current.reset();  // wiped
  env_keys->previous.clear();
  if (!keyring) return StartupFailure(keyring.error().message());

  const bool directory_existed = store::DataDirectoryExists(location);
  const Clock& clock = SystemClock::Instance();
  std::optional<crypto::SecureBuffer> output;
  std::string failure;
  bool opened = false;     // whether this run opened the database, so a failure may remove it
  bool lost_race = false;  // another init finished first: what is there is its, not ours
  {
    // PostgreSQL: an init that stopped after recording the key check is finished here (the
    // barrier refuses a different key); a finished installation is refused.
    auto store = store::OpenStore(location, {.expect = store::Expect::kUninitialized,
                                             .pool_size = 2,
                                             .clock = &clock,
                                             .command = "init"});
    opened = store.has_value();
    auto admin = [&]() -> Result<auth::CreatedToken> {
      if (!store) return Fail(std::move(store.error()));
      BIFROST_ASSIGN_OR_RETURN(crypto::MacKey audit_key,
                               crypto::DeriveAuditKey(keyring->primary()));
      // Opening the barrier on the new database records the key's check value in it.
      BIFROST_RETURN_IF_ERROR(barrier::Barrier::Open(std::move(*keyring), **store, clock));
      auth::TokenService tokens(**store, clock);
      BIFROST_ASSIGN_OR_RETURN(auto audit,
                               audit::AuditLog::Open(**store, std::move(audit_key), clock, {}));
      return CreateInitialAdmin(tokens, *audit, "init", /*only_first=*/true, &lost_race);
    }();
    if (admin) {
      crypto::SecureBuffer text;
      if (options.json) {
        text.Append(std::string_view("{\"token\": \""));
        text.Append(admin->token.view());  // base64url text: nothing to escape
        // The URL without its password: the output is often kept (a deployment log).
        const bool postgres = location.is_postgres();
        const std::string where =
            postgres ? store::RedactDatabaseUrl(location.database_url) : location.data_dir;
        std::string rest = "\", \"token_id\": ";
        rest += nlohmann::json(admin->row.id).dump();
        rest += postgres ? ", \"database\": " : ", \"data_dir\": ";
        rest +=
            nlohmann::json(where).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        rest += "}\n";
        text.Append(rest);
      } else {
        text.Append(std::string_view("Platform admin token (shown once, store it safely):\n"));
        text.Append(admin->token.view());
        text.Append(std::string_view("\n"));
      }
      output = std::move(text);
    } else {
      failure = admin.error().message();
    }
  }  // the store is closed here, before anything is printed or removed

  if (!output) {
    // Leave no half-made installation behind: a retry would be refused as "already holds".
    if (opened && !lost_race) store::DiscardFailedInit(location, !directory_existed);
    return StartupFailure(failure);
  }
  WriteOut(*output);
  return 0;
}

int RunAuditVerify(const AuditVerifyOptions& options) {
  HardenProcess();
  auto env_keys = keys::TakeKeysFromEnvironment();
  const store::StoreLocation location{.data_dir = options.data_dir,
                                      .database_url = options.database_url};
  if (auto checked = store::CheckLocation(location, store::Expect::kInitialized, "audit verify");
      !checked) {
    return StartupFailure(checked.error().message());
  }
  if (!env_keys) return StartupFailure(env_keys.error().message());
  if (!env_keys->current) return StartupFailure(keys::MissingKeyMessage());
  auto keyring = keys::BuildKeyring(*env_keys->current, env_keys->previous);
  env_keys->current.reset();  // wiped
  env_keys->previous.clear();
  if (!keyring) return StartupFailure(keyring.error().message());

  const Clock& clock = SystemClock::Instance();
  auto store = store::OpenStore(
      location,
      {.expect = store::Expect::kInitialized, .clock = &clock, .command = "audit verify"});
  if (!store) return StartupFailure(store.error().message());
  // A key that is not this database's would make every record look forged: say so instead.
  // Verifying never writes, so the barrier opens read-only (it refuses keys that do not fit
  // the database without recording anything), and a database without any key check cannot
  // tell whether the key is its own.
  {
    auto txn = (*store)->Begin(store::TxnMode::kRead);
    if (!txn) return StartupFailure(txn.error().message());
    auto checks = (*txn)->ListKeyChecks();
    if (!checks) return StartupFailure(checks.error().message());
    if (checks->empty()) {
      return StartupFailure(
          "the database records no key, so it cannot be told whether BIFROST_SECRET_KEY is "
          "its key; nothing was checked");
    }
    // Said in these words before the barrier's finer checks: a key that is not this
    // database's at all is the common mistake.
    bool known = false;
    std::string configured;
    for (const auto& key : keyring->keys()) {
      const std::string check = key.CheckValue();
      for (const auto& row : *checks) {
        known = known || (row.key_id == key.id() && row.check_value == check);
      }
      if (!configured.empty()) configured += ", ";
      configured += key.id();
    }
    if (!known) {
      std::string reason = "BIFROST_SECRET_KEY does not match this database (the configured ";
      reason += keyring->keys().size() == 1 ? "key is " : "keys are ";
      reason += configured;
      reason += "); nothing was checked";
      return StartupFailure(reason);
    }
  }
  auto barrier = barrier::Barrier::Open(std::move(*keyring), **store, clock, {.read_only = true});
  if (!barrier) {
    std::string reason = barrier.error().message();
    if (reason.ends_with('.')) reason.pop_back();
    reason += "; nothing was checked";
    return StartupFailure(reason);
  }
  // Every audit key this ring can verify with: those of the configured master keys and the
  // stored ones of master keys rotated away, so a chain that spans a rotation verifies.
  std::vector<crypto::MacKey> verify_keys;
  {
    auto txn = (*store)->Begin(store::TxnMode::kRead);
    if (!txn) return StartupFailure(txn.error().message());
    auto audit_keys = barrier->AuditKeys(**txn);
    if (!audit_keys) return StartupFailure(audit_keys.error().message());
    verify_keys = std::move(*audit_keys);
  }
  auto report = audit::Verify(**store, verify_keys, {.file_path = options.audit_file});
  if (!report) return StartupFailure(report.error().message());

  if (options.json) {
    nlohmann::json out = {
        {"ok", report->ok},
        {"records", report->records},
        {"first_seq", report->first_seq},
        {"last_seq", report->last_seq},
        {"checkpoint", report->checkpoint},
        {"file", options.audit_file.empty() ? nlohmann::json()
                                            : nlohmann::json{{"path", options.audit_file},
                                                             {"records", report->file_records},
                                                             {"first_seq", report->file_first_seq},
                                                             {"last_seq", report->file_last_seq}}},
        {"bad_seq", report->ok ? nlohmann::json() : nlohmann::json(report->bad_seq)},
        {"problem", report->ok ? nlohmann::json() : nlohmann::json(report->problem)}};
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::string text = "database: " + std::to_string(report->records) + " records";
    if (report->records > 0) {
      text +=
          ", seq " + std::to_string(report->first_seq) + ".." + std::to_string(report->last_seq);
    }
    if (report->checkpoint) text += " (older records pruned behind a signed checkpoint)";
    if (report->records == 0 && !report->checkpoint) {
      text +=
          " (`bifrost init` writes record 1, so an empty log was emptied, or the database "
          "predates the audit log and has not been used since)";
    }
    text += "\n";
    if (!options.audit_file.empty()) {
      text +=
          "file " + options.audit_file + ": " + std::to_string(report->file_records) + " records";
      if (report->file_records > 0) {
        text += ", seq " + std::to_string(report->file_first_seq) + ".." +
                std::to_string(report->file_last_seq);
      }
      text += "\n";
    }
    text += report->ok ? "audit log intact\n" : "audit log NOT intact: " + report->problem + "\n";
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  std::fflush(stdout);
  if (!report->ok) {
    std::fprintf(stderr, "bifrost: the audit log is not intact: %s\n", report->problem.c_str());
    return 4;
  }
  return 0;
}

}  // namespace bifrost::server
