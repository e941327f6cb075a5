// Several `bifrost serve` nodes on one PostgreSQL database behave like one server: a write
// acknowledged by any node is what every node reads next; concurrent writers on different
// nodes never lose an update; key rotation runs beside all of them; the audit log stays one
// chain; a node killed with SIGKILL loses no acknowledged write; a PostgreSQL restart, a
// stopped PostgreSQL and one that stops answering are met with fast 503s, and the nodes
// recover by themselves; nodes started at the same moment all become ready. Each test has a
// fresh database of its own (the shared `postgres` fixture), or a private cluster when it
// stops PostgreSQL.
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/postgres_test.h"

namespace bifrost::e2e {
namespace {

using testing::BifrostBinary;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using SteadyClock = std::chrono::steady_clock;

const std::string kKey = "cluster-test-secret-key-0123456789-abcdef";
const std::string kKeyNew = "cluster-rotated-secret-key-9876543210-zyx";
const std::string kCanary = "sk_live_CLUSTER_CANARY_5c1e";
// The password in the database URLs of the outage tests (the test clusters trust local
// connections, so it is never checked): no output may ever show it.
const std::string kDatabasePassword = "pg-Pa55word-never-shown-7c41";

// Longest a request may take while PostgreSQL is down: a few seconds, below the clients'
// own timeouts (8 to 20 s), so a hang is told apart from a slow failure. Requests of a load
// and requests that met a database that stopped answering get twice as long.
constexpr double kFailFastMs = 5'000;
constexpr double kLoadBoundMs = 10'000;
// Bound of every wait for an event (a node ready again, progress of a load).
constexpr auto kEventWait = std::chrono::seconds(60);

void Append(std::string& out, std::string_view text) { out += text; }
template <std::integral T>
void Append(std::string& out, T number) {
  out += std::to_string(number);
}
// Concatenation without `"literal" + std::to_string(n)` (GCC 12's -Wrestrict).
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (Append(out, parts), ...);
  return out;
}

// A member of a JSON object, or a default when it is missing or of another type.
std::string StrOf(const json& object, const std::string& name) {
  if (!object.is_object() || !object.contains(name) || !object[name].is_string()) return "";
  return object[name].get<std::string>();
}
std::int64_t IntOf(const json& object, const std::string& name) {
  if (!object.is_object() || !object.contains(name) || !object[name].is_number_integer()) {
    return -1;
  }
  return object[name].get<std::int64_t>();
}
bool BoolOf(const json& object, const std::string& name) {
  return object.is_object() && object.contains(name) && object[name].is_boolean() &&
         object[name].get<bool>();
}

double MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

std::vector<std::string> KeyEnv(const std::string& current, const std::string& previous = "") {
  std::vector<std::string> env = {Cat("BIFROST_SECRET_KEY=", current)};
  if (!previous.empty()) env.push_back(Cat("BIFROST_SECRET_KEY_PREVIOUS=", previous));
  return env;
}

// `bifrost ARGS...` with `env`; its output never shows the database password.
ProcessResult Bifrost(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BifrostBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = RunProcess(argv, "", env);
  EXPECT_EQ(r.out.find(kDatabasePassword), std::string::npos) << args[0] << ": " << r.out;
  EXPECT_EQ(r.err.find(kDatabasePassword), std::string::npos) << args[0] << ": " << r.err;
  return r;
}

// `bifrost init --database URL`: the platform admin's token ("" and a failure if it failed).
std::string InitDatabase(const std::string& url, const std::string& key = kKey) {
  const ProcessResult r = Bifrost({"init", "--database", url, "--format", "json"}, KeyEnv(key));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json parsed = json::parse(r.out, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("token") || !parsed["token"].is_string()) {
    ADD_FAILURE() << "bifrost init printed no token: " << r.out << r.err;
    return "";
  }
  return parsed["token"].get<std::string>();
}

// `bifrost audit verify --database URL --format json`: the report, after checking that it
// says the chain is intact.
json VerifyAudit(const std::string& url, const std::vector<std::string>& key_env) {
  const ProcessResult r =
      Bifrost({"audit", "verify", "--database", url, "--format", "json"}, key_env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const json report = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(BoolOf(report, "ok")) << r.out << r.err;
  return report;
}

// `bifrost keys status --format json` with the database URL in BIFROST_DATABASE_URL (the
// environment form of --database).
json KeysStatus(const std::string& url, std::vector<std::string> env) {
  env.push_back(Cat("BIFROST_DATABASE_URL=", url));
  const ProcessResult r = Bifrost({"keys", "status", "--format", "json"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json parsed = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(parsed.is_object()) << r.out << r.err;
  return parsed;
}

// One node: `bifrost serve --database URL` joining a database `bifrost init` prepared.
std::unique_ptr<ServerProcess> StartNode(const std::string& url,
                                         const std::vector<std::string>& env = {},
                                         const std::vector<std::string>& args = {}) {
  ServerProcess::Options options;
  options.secret_key = kKey;
  options.init = false;
  options.database_url = url;
  options.extra_env = env;
  options.extra_args = args;
  return std::make_unique<ServerProcess>(std::move(options));
}

// `n` nodes started at the same moment (threads released together by a latch).
std::vector<std::unique_ptr<ServerProcess>> StartNodes(const std::string& url, int n,
                                                       const std::vector<std::string>& env = {},
                                                       const std::vector<std::string>& args = {}) {
  std::vector<std::unique_ptr<ServerProcess>> nodes(static_cast<std::size_t>(n));
  std::latch go(n);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      nodes[i] = StartNode(url, env, args);
    });
  }
  for (auto& thread : threads) thread.join();
  return nodes;
}

bool AllStarted(const std::vector<std::unique_ptr<ServerProcess>>& nodes) {
  return std::all_of(nodes.begin(), nodes.end(),
                     [](const auto& node) { return node && !node->address().empty(); });
}

// The answer to one request, with how long it took. status 0 = no HTTP answer (`error`).
struct Answer {
  int status = 0;
  std::string body;
  json json_body;
  std::string error;
  double ms = 0;

  bool ok() const { return status >= 200 && status < 300; }
  std::string Describe() const {
    return status == 0 ? Cat("transport error: ", error) : Cat(status, " ", body.substr(0, 300));
  }
  std::optional<std::int64_t> version() const {
    const std::int64_t v = IntOf(json_body, "version");
    return v < 0 ? std::nullopt : std::optional<std::int64_t>(v);
  }
  json value() const {
    return json_body.is_object() && json_body.contains("value") ? json_body["value"] : json();
  }
  std::string code() const {
    return json_body.is_object() && json_body.contains("error") ? StrOf(json_body["error"], "code")
                                                                : "";
  }
};

// One keep-alive connection to one node, usable from one thread; unlike Api it reports a
// transport failure as an answer instead of failing the test (nodes die on purpose here).
class Conn {
 public:
  explicit Conn(const std::string& address, int timeout_ms = 20'000) : address_(address) {
    auto client =
        client::HttpClient::Create({.address = address, .ca_file = "", .timeout_ms = timeout_ms});
    if (client) {
      client_ = std::move(*client);
    } else {
      ADD_FAILURE() << address << ": " << client.error().ToString();
    }
  }

  Answer Send(const std::string& method, const std::string& target, const std::string& token,
              const std::optional<json>& body = std::nullopt) {
    Answer answer;
    if (!client_) {
      answer.error = "no client";
      return answer;
    }
    std::optional<std::string> text;
    if (body) text = body->dump();
    std::optional<std::string_view> payload;
    if (text) payload = *text;
    std::optional<std::string_view> bearer;
    if (!token.empty()) bearer = token;
    const auto start = SteadyClock::now();
    auto result = client_->Send(method, target, payload, bearer);
    answer.ms = MillisSince(start);
    if (!result) {
      answer.error = result.error().ToString();
      return answer;
    }
    answer.status = result->status;
    answer.body = std::move(result->body);
    answer.json_body = json::parse(answer.body, nullptr, false);
    return answer;
  }

  const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::unique_ptr<client::HttpClient> client_;
};

std::string OrgPath(const std::string& org_id) { return Cat("/api/v1/orgs/", org_id); }
constexpr std::string_view kGlobal = "/api/v1/global";

json Write(const std::string& type, const json& value) {
  return json{{"type", type}, {"value", value}};
}
json WriteExpecting(const std::string& type, const json& value, std::int64_t expected_version) {
  return json{{"type", type}, {"value", value}, {"expected_version", expected_version}};
}

std::string CreateOrgOn(Conn& conn, const std::string& admin, const std::string& name) {
  const Answer r = conn.Send("POST", "/api/v1/orgs", admin, json{{"name", name}});
  EXPECT_EQ(r.status, 201) << r.Describe();
  return r.status == 201 ? StrOf(r.json_body, "id") : "";
}

MintedToken MintOn(Conn& conn, const std::string& admin, const std::string& role,
                   const std::string& org_id) {
  const Answer r = conn.Send("POST", "/api/v1/tokens", admin,
                             json{{"role", role}, {"name", role + "-token"}, {"org_id", org_id}});
  EXPECT_EQ(r.status, 201) << r.Describe();
  if (r.status != 201) return {};
  return {StrOf(r.json_body, "id"), StrOf(r.json_body, "token")};
}

// Waits until GET /readyz on `address` answers `status` (bounded by kEventWait); returns
// the seconds it took, or -1 (and a failure) when it never did.
double WaitForReadiness(const std::string& address, int status) {
  const auto start = SteadyClock::now();
  Conn conn(address, 10'000);
  while (SteadyClock::now() - start < kEventWait) {
    if (conn.Send("GET", "/readyz", "").status == status) return MillisSince(start) / 1000.0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << address << "/readyz never answered " << status;
  return -1;
}

// `url` with a password in its user part.
std::string WithPassword(const std::string& url, const std::string& password) {
  const std::size_t scheme = url.find("://");
  const std::size_t at = scheme == std::string::npos ? scheme : url.find('@', scheme);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no user in the database URL " << url;
    return url;
  }
  std::string out = url.substr(0, at);
  out += ":";
  out += password;
  out += url.substr(at);
  return out;
}

// A client (any client: /readyz needs no token) is never told where the database is: not
// its password, its URL or its name. The server's log has the details.
void ExpectNoDatabaseDetails(const std::string& body, const std::string& url,
                             const std::string& what) {
  EXPECT_EQ(body.find(kDatabasePassword), std::string::npos) << what << ": " << body;
  EXPECT_EQ(body.find("postgresql://"), std::string::npos) << what << ": " << body;
  const std::size_t path = url.find('/', url.find("://") + 3);
  const std::size_t query = url.find('?', path);
  const std::string name =
      url.substr(path + 1, query == std::string::npos ? query : query - path - 1);
  EXPECT_EQ(body.find(name), std::string::npos) << what << " names the database: " << body;
}

// The processes of a PostgreSQL cluster (the postmaster and its children), stopped with
// SIGSTOP: PostgreSQL still holds every connection but answers nothing. Resumed (SIGCONT) on
// destruction. Only the test's own private cluster is ever frozen.
class FrozenPostgres {
 public:
  explicit FrozenPostgres(const std::string& cluster_dir) {
    const std::string pid_file = testing::ReadFileOrEmpty(cluster_dir + "/data/postmaster.pid");
    const long postmaster = std::strtol(pid_file.c_str(), nullptr, 10);  // its first line
    if (postmaster <= 0) {
      ADD_FAILURE() << "no postmaster.pid in " << cluster_dir;
      return;
    }
    // The postmaster first, so that it starts no new child meanwhile.
    Stop(static_cast<pid_t>(postmaster));
    for (const pid_t child : ChildrenOf(static_cast<pid_t>(postmaster))) Stop(child);
  }
  ~FrozenPostgres() { Resume(); }
  FrozenPostgres(const FrozenPostgres&) = delete;
  FrozenPostgres& operator=(const FrozenPostgres&) = delete;

  void Resume() {
    for (const pid_t pid : stopped_) kill(pid, SIGCONT);
    stopped_.clear();
  }

 private:
  static std::vector<pid_t> ChildrenOf(pid_t parent) {
    std::vector<pid_t> children;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = testing::ReadFileOrEmpty(entry.path().string() + "/stat");
      const std::size_t comm_end = stat.rfind(')');  // "PID (COMM) STATE PPID ..."
      if (comm_end == std::string::npos) continue;
      std::istringstream fields(stat.substr(comm_end + 1));
      std::string state;
      long ppid = 0;
      if (fields >> state >> ppid && ppid == parent) {
        children.push_back(static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10)));
      }
    }
    return children;
  }
  void Stop(pid_t pid) {
    if (kill(pid, SIGSTOP) == 0) {
      stopped_.push_back(pid);
    } else {
      ADD_FAILURE() << "cannot stop PostgreSQL process " << pid;
    }
  }

  std::vector<pid_t> stopped_;
};

// Failures seen by the threads of a test, reported once at the end.
class Failures {
 public:
  void Add(const std::string& what) {
    count_.fetch_add(1);
    std::lock_guard lock(mu_);
    if (samples_.size() < 10) samples_.push_back(what);
  }
  std::int64_t count() const { return count_.load(); }
  std::string samples() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& s : samples_) out += Cat("\n  ", s);
    return out;
  }

 private:
  std::atomic<std::int64_t> count_{0};
  std::mutex mu_;
  std::vector<std::string> samples_;
};

// What a client knows about one key after its writes: the last write it got a 2xx for, and
// the writes after it whose answer it never got (each may or may not have happened).
struct KeyLedger {
  std::string target;         // .../configs/KEY
  std::string type;           // the config type of the acknowledged write
  std::optional<json> acked;  // the acknowledged value (nullopt: none acknowledged)
  std::int64_t acked_version = 0;
  std::vector<json> in_doubt;  // values sent after it without a definite answer
};

// Every acknowledged write is what a reveal through `conn` returns now (or a later write
// whose answer was lost); returns how many keys were checked.
int CheckLedgers(Conn& conn, const std::string& admin, const std::vector<KeyLedger>& ledgers) {
  int checked = 0;
  for (const KeyLedger& ledger : ledgers) {
    if (!ledger.acked) continue;
    ++checked;
    const Answer r = conn.Send("GET", ledger.target + "/reveal", admin);
    if (r.status != 200) {
      ADD_FAILURE() << "acknowledged write lost: " << ledger.target << " -> " << r.Describe();
      continue;
    }
    if (r.value() == *ledger.acked) {
      EXPECT_EQ(r.version(), ledger.acked_version) << ledger.target << ": " << r.body;
      continue;
    }
    const bool later = std::find(ledger.in_doubt.begin(), ledger.in_doubt.end(), r.value()) !=
                       ledger.in_doubt.end();
    EXPECT_TRUE(later) << "acknowledged write lost: " << ledger.target << " holds "
                       << r.body.substr(0, 200) << ", acknowledged " << ledger.acked->dump()
                       << " at version " << ledger.acked_version;
    EXPECT_GT(r.version().value_or(0), ledger.acked_version) << ledger.target << ": " << r.body;
  }
  return checked;
}

// Writers and readers spread over nodes, for the tests that break something underneath
// them. Each writer creates new keys (every acknowledged create must survive) and keeps
// replacing one key of its own (its last acknowledged value must survive); each reader
// reveals a secret that never changes. `failures` counts answers other than those allowed;
// `max_ms` is the slowest request.
class WriteLoad {
 public:
  struct Options {
    std::vector<std::string> writer_nodes;  // one writer thread per entry
    std::vector<std::string> reader_nodes;  // one reader thread per entry
    std::string admin;
    std::string scope;         // an org's path
    std::string fixed_target;  // .../configs/KEY/reveal, never written during the load
    json fixed_value;
    std::set<int> allowed_failures;  // statuses tolerated besides 2xx (e.g. 503 in an outage)
    std::string killed_node;         // threads on this address stop at their first transport error
  };

  explicit WriteLoad(Options options) : options_(std::move(options)) {
    ledgers_.resize(options_.writer_nodes.size());
    for (std::size_t w = 0; w < options_.writer_nodes.size(); ++w) {
      threads_.emplace_back([this, w] { Writer(w); });
    }
    for (std::size_t r = 0; r < options_.reader_nodes.size(); ++r) {
      threads_.emplace_back([this, r] { Reader(r); });
    }
  }
  ~WriteLoad() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // Waits until `n` more writes were acknowledged (bounded; a failure if they never were).
  void WaitForAcks(std::int64_t n) {
    const std::int64_t target = acks_.load() + n;
    const auto deadline = SteadyClock::now() + kEventWait;
    while (acks_.load() < target && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE(acks_.load(), target) << "the load made no progress";
  }
  std::int64_t acks() const { return acks_.load(); }
  std::int64_t requests() const { return requests_.load(); }
  std::int64_t refused() const { return refused_.load(); }
  double max_ms() const {
    std::lock_guard lock(mu_);
    return max_ms_;
  }
  Failures& failures() { return failures_; }
  // After Stop(): every key a writer touched.
  std::vector<KeyLedger> Ledgers() const {
    std::vector<KeyLedger> all;
    for (const auto& per_writer : ledgers_)
      all.insert(all.end(), per_writer.begin(), per_writer.end());
    return all;
  }

 private:
  void Record(const Answer& a, const std::string& what, const std::string& node) {
    requests_.fetch_add(1);
    {
      std::lock_guard lock(mu_);
      max_ms_ = std::max(max_ms_, a.ms);
    }
    if (a.ok()) return;
    if (a.status != 0 && options_.allowed_failures.count(a.status) > 0) {
      refused_.fetch_add(1);
      // As a client honouring Retry-After would, only sooner: a short pause.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      return;
    }
    if (a.status == 0 && node == options_.killed_node) return;
    failures_.Add(Cat(what, " -> ", a.Describe()));
  }

  void Writer(std::size_t w) {
    Conn conn(options_.writer_nodes[w]);
    std::vector<KeyLedger>& ledgers = ledgers_[w];
    KeyLedger counter;
    counter.target = Cat(options_.scope, "/configs/w", w, "_counter");
    counter.type = "secret";
    for (int i = 0; !stop_.load(); ++i) {
      // A new key (created once: a lost answer leaves it in doubt forever).
      KeyLedger created;
      created.target = Cat(options_.scope, "/configs/w", w, "_k", i);
      created.type = i % 2 == 0 ? "secret" : "string";
      const json value = Cat(kCanary, "-w", w, "-", i);
      Answer a = conn.Send("PUT", created.target, options_.admin, Write(created.type, value));
      Record(a, Cat("PUT ", created.target), conn.address());
      if (a.status == 201) {
        created.acked = value;
        created.acked_version = a.version().value_or(-1);
        acks_.fetch_add(1);
      } else if (!a.ok()) {
        created.in_doubt.push_back(value);
      } else {
        failures_.Add(Cat("PUT ", created.target, " created nothing: ", a.Describe()));
      }
      ledgers.push_back(std::move(created));
      if (a.status == 0 && conn.address() == options_.killed_node) break;

      // The same key again and again.
      const json next = Cat(kCanary, "-w", w, "-counter-", i);
      a = conn.Send("PUT", counter.target, options_.admin, Write("secret", next));
      Record(a, Cat("PUT ", counter.target), conn.address());
      if (a.ok()) {
        counter.acked = next;
        counter.acked_version = a.version().value_or(-1);
        counter.in_doubt.clear();
        acks_.fetch_add(1);
      } else {
        counter.in_doubt.push_back(next);
      }
      if (a.status == 0 && conn.address() == options_.killed_node) break;
    }
    ledgers.push_back(std::move(counter));
  }

  void Reader(std::size_t r) {
    Conn conn(options_.reader_nodes[r]);
    while (!stop_.load()) {
      const Answer a = conn.Send("GET", options_.fixed_target, options_.admin);
      Record(a, Cat("GET ", options_.fixed_target), conn.address());
      if (a.ok() && a.value() != options_.fixed_value) {
        failures_.Add(Cat("GET ", options_.fixed_target, " read the wrong value: ", a.body));
      }
      if (a.status == 0 && conn.address() == options_.killed_node) return;
    }
  }

  Options options_;
  std::vector<std::vector<KeyLedger>> ledgers_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> acks_{0};
  std::atomic<std::int64_t> requests_{0};
  std::atomic<std::int64_t> refused_{0};
  mutable std::mutex mu_;
  double max_ms_ = 0;
  Failures failures_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------------------
// 1. Read-your-writes across nodes.

TEST(ClusterE2eTest, AWriteOnAnyNodeIsSeenByTheNextReadOnEveryOtherNode) {
  const std::string url = testing::NewPostgresDatabase("consistency");
  ASSERT_FALSE(url.empty());
  const std::string admin = InitDatabase(url);
  ASSERT_FALSE(admin.empty());
  const auto nodes = StartNodes(url, 3);
  ASSERT_TRUE(AllStarted(nodes));
  std::vector<std::string> addresses;
  for (const auto& node : nodes) addresses.push_back(node->address());

  Conn first(addresses[0]);
  const std::string acme = CreateOrgOn(first, admin, "Acme");
  Conn second(addresses[1]);
  const std::string globex = CreateOrgOn(second, admin, "Globex");
  ASSERT_FALSE(acme.empty());
  ASSERT_FALSE(globex.empty());

  // Writers: each owns its keys in one scope and writes through the nodes in turn; after
  // each acknowledged write (or delete) it reads through both other nodes at once.
  Failures failures;
  std::atomic<int> checks{0};
  auto writer = [&](int t, std::string scope) {
    std::vector<std::unique_ptr<Conn>> conns;
    for (const auto& address : addresses) conns.push_back(std::make_unique<Conn>(address));
    std::map<std::string, std::int64_t> versions;  // key -> current version (0: none)
    const std::vector<std::string> kinds = {"secret", "string", "int", "bool", "json"};
    for (int i = 0; i < 45; ++i) {
      const std::size_t node = static_cast<std::size_t>(i + t) % conns.size();
      const std::string key = Cat("t", t, "_k", i % 6);
      const std::string target = Cat(scope, "/configs/", key);
      if (i % 9 == 8 && versions[key] > 0) {
        const Answer del = conns[node]->Send("DELETE", target, admin);
        if (del.status != 204) failures.Add(Cat("DELETE ", target, " -> ", del.Describe()));
        versions[key] = 0;
        for (std::size_t other = 0; other < conns.size(); ++other) {
          if (other == node) continue;
          const Answer r = conns[other]->Send("GET", target + "/reveal", admin);
          checks.fetch_add(1);
          if (r.status != 404) {
            failures.Add(Cat("node ", other, " still has deleted ", target, ": ", r.Describe()));
          }
        }
        continue;
      }
      const std::string& type = kinds[static_cast<std::size_t>(i) % kinds.size()];
      json value;
      if (type == "secret") {
        value = Cat(kCanary, "-", t, "-", i);
      } else if (type == "string") {
        value = Cat("plain-", t, "-", i);
      } else if (type == "int") {
        value = static_cast<std::int64_t>(i) * 1000 + t;
      } else if (type == "bool") {
        value = i % 2 == 0;
      } else {
        value = json{{"thread", t}, {"round", i}};
      }
      const Answer put = conns[node]->Send("PUT", target, admin, Write(type, value));
      const std::int64_t want_version = versions[key] + 1;
      if (!put.ok() || put.version() != want_version) {
        failures.Add(Cat("PUT ", target, " on node ", node, " (want version ", want_version,
                         ") -> ", put.Describe()));
        return;
      }
      versions[key] = want_version;
      for (std::size_t other = 0; other < conns.size(); ++other) {
        if (other == node) continue;
        const Answer r = conns[other]->Send("GET", target + "/reveal", admin);
        checks.fetch_add(1);
        if (r.status != 200 || r.value() != value || r.version() != want_version ||
            StrOf(r.json_body, "type") != type) {
          failures.Add(Cat("node ", other, " after a write on node ", node, " of ", target,
                           " (version ", want_version, ", ", value.dump(), "): ", r.Describe()));
        }
      }
    }
  };
  std::vector<std::thread> writers;
  writers.emplace_back(writer, 0, OrgPath(acme));
  writers.emplace_back(writer, 1, OrgPath(acme));
  writers.emplace_back(writer, 2, OrgPath(globex));
  writers.emplace_back(writer, 3, std::string(kGlobal));

  // Meanwhile, on this thread: tokens revoked and organizations deleted on one node are
  // refused and gone on the others at once.
  std::vector<std::unique_ptr<Conn>> conns;
  for (const auto& address : addresses) conns.push_back(std::make_unique<Conn>(address));
  // (A lambda: an ASSERT leaves it, not the test, so the writers are always joined.)
  const auto revoke_and_delete = [&] {
    ASSERT_EQ(conns[2]
                  ->Send("PUT", OrgPath(acme) + "/configs/fixed", admin,
                         Write("secret", kCanary + "-fixed"))
                  .status,
              201);
    for (std::size_t round = 0; round < 6; ++round) {
      const std::size_t a = round % 3;
      const std::size_t b = (round + 1) % 3;
      const std::size_t c = (round + 2) % 3;
      const MintedToken member = MintOn(*conns[a], admin, "member", acme);
      ASSERT_FALSE(member.token.empty());
      const std::string reveal = OrgPath(acme) + "/configs/fixed/reveal";
      EXPECT_EQ(conns[b]->Send("GET", reveal, member.token).status, 200) << "minted on node " << a;
      EXPECT_EQ(conns[c]->Send("GET", "/api/v1/whoami", member.token).status, 200);
      ASSERT_EQ(conns[a]->Send("DELETE", Cat("/api/v1/tokens/", member.id), admin).status, 204);
      const Answer on_b = conns[b]->Send("GET", reveal, member.token);
      const Answer on_c = conns[c]->Send("GET", "/api/v1/whoami", member.token);
      EXPECT_EQ(on_b.status, 401) << "token revoked on node " << a << ", node " << b << ": "
                                  << on_b.Describe();
      EXPECT_EQ(on_c.status, 401) << "token revoked on node " << a << ", node " << c << ": "
                                  << on_c.Describe();
    }

    // An organization deleted on one node is gone on the others, with its tokens and values.
    for (std::size_t round = 0; round < 3; ++round) {
      const std::size_t a = round % 3;
      const std::size_t b = (round + 1) % 3;
      const std::size_t c = (round + 2) % 3;
      const std::string doomed = CreateOrgOn(*conns[b], admin, Cat("Doomed-", round));
      ASSERT_FALSE(doomed.empty());
      EXPECT_EQ(conns[c]->Send("GET", OrgPath(doomed), admin).status, 200);
      const std::string secret_target = OrgPath(doomed) + "/configs/api_key";
      ASSERT_EQ(
          conns[c]->Send("PUT", secret_target, admin, Write("secret", kCanary + "-doomed")).status,
          201);
      const MintedToken doomed_admin = MintOn(*conns[a], admin, "admin", doomed);
      ASSERT_FALSE(doomed_admin.token.empty());
      EXPECT_EQ(conns[b]->Send("GET", secret_target + "/reveal", doomed_admin.token).status, 200);
      ASSERT_EQ(conns[a]->Send("DELETE", OrgPath(doomed), admin).status, 204);
      for (const std::size_t other : {b, c}) {
        SCOPED_TRACE(Cat("deleted on node ", a, ", read on node ", other));
        EXPECT_EQ(conns[other]->Send("GET", OrgPath(doomed), admin).status, 404);
        const Answer revealed = conns[other]->Send("GET", secret_target + "/reveal", admin);
        EXPECT_EQ(revealed.status, 404) << revealed.Describe();
        EXPECT_EQ(revealed.body.find(kCanary), std::string::npos);
        EXPECT_EQ(conns[other]->Send("GET", "/api/v1/whoami", doomed_admin.token).status, 401);
        const Answer listed = conns[other]->Send("GET", "/api/v1/orgs", admin);
        ASSERT_EQ(listed.status, 200);
        EXPECT_EQ(listed.body.find(doomed), std::string::npos) << listed.body;
        EXPECT_EQ(conns[other]->Send("PUT", secret_target, admin, Write("string", "x")).status,
                  404);
      }
    }
  };
  revoke_and_delete();
  for (auto& thread : writers) thread.join();
  EXPECT_EQ(failures.count(), 0) << failures.samples();
  EXPECT_GT(checks.load(), 300);

  // Fallback to the global scope, across nodes: the org's own entry hides the global one
  // until it is deleted on another node.
  ASSERT_EQ(conns[0]
                ->Send("PUT", "/api/v1/global/configs/fallback", admin,
                       Write("secret", kCanary + "-global"))
                .status,
            201);
  ASSERT_EQ(conns[1]
                ->Send("PUT", OrgPath(acme) + "/configs/fallback", admin,
                       Write("secret", kCanary + "-acme"))
                .status,
            201);
  Answer r = conns[2]->Send("GET", OrgPath(acme) + "/configs/fallback/reveal", admin);
  EXPECT_EQ(r.value(), kCanary + "-acme") << r.Describe();
  ASSERT_EQ(conns[2]->Send("DELETE", OrgPath(acme) + "/configs/fallback", admin).status, 204);
  r = conns[0]->Send("GET", OrgPath(acme) + "/configs/fallback/reveal", admin);
  EXPECT_EQ(r.value(), kCanary + "-global") << r.Describe();
  EXPECT_EQ(StrOf(r.json_body, "scope"), "global") << r.Describe();

  VerifyAudit(url, KeyEnv(kKey));
}

// ---------------------------------------------------------------------------------------
// 2. Optimistic concurrency across nodes.

TEST(ClusterE2eTest, ConcurrentWritersOnTwoNodesNeverLoseAnUpdate) {
  const std::string url = testing::NewPostgresDatabase("conflicts");
  ASSERT_FALSE(url.empty());
  const std::string admin = InitDatabase(url);
  ASSERT_FALSE(admin.empty());
  const auto nodes = StartNodes(url, 2);
  ASSERT_TRUE(AllStarted(nodes));
  Conn setup(nodes[0]->address());
  const std::string org = CreateOrgOn(setup, admin, "Acme");
  ASSERT_FALSE(org.empty());
  const std::string scope = OrgPath(org);

  // Rounds: both nodes send the same expected_version at the same moment; exactly one wins.
  // Round r creates key race_r (expected_version 0) and replaces `contended` at version r.
  constexpr int kRounds = 40;
  ASSERT_EQ(setup.Send("PUT", scope + "/configs/contended", admin, Write("string", "start")).status,
            201);
  struct Outcome {
    int create_status = 0;
    int update_status = 0;
    std::optional<std::int64_t> update_version;
  };
  std::vector<std::vector<Outcome>> outcomes(2, std::vector<Outcome>(kRounds));
  std::barrier round_barrier(2);
  std::vector<std::thread> racers;
  for (std::size_t n = 0; n < 2; ++n) {
    racers.emplace_back([&, n] {
      Conn conn(nodes[n]->address());
      for (int round = 0; round < kRounds; ++round) {
        Outcome& out = outcomes[n][static_cast<std::size_t>(round)];
        round_barrier.arrive_and_wait();
        const Answer created =
            conn.Send("PUT", Cat(scope, "/configs/race_", round), admin,
                      WriteExpecting("secret", Cat(kCanary, "-node", n, "-", round), 0));
        out.create_status = created.status;
        round_barrier.arrive_and_wait();
        const Answer updated =
            conn.Send("PUT", scope + "/configs/contended", admin,
                      WriteExpecting("string", Cat("node", n, "-round", round), round + 1));
        out.update_status = updated.status;
        out.update_version = updated.version();
        if (updated.status == 409 && updated.code() != "conflict") {
          ADD_FAILURE() << "409 without the conflict code: " << updated.body;
        }
      }
    });
  }
  for (auto& thread : racers) thread.join();
  Conn other(nodes[1]->address());
  std::string last_winner;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(Cat("round ", round));
    const Outcome& a = outcomes[0][static_cast<std::size_t>(round)];
    const Outcome& b = outcomes[1][static_cast<std::size_t>(round)];
    EXPECT_EQ(std::multiset<int>({a.create_status, b.create_status}),
              std::multiset<int>({201, 409}));
    EXPECT_EQ(std::multiset<int>({a.update_status, b.update_status}),
              std::multiset<int>({200, 409}));
    const Outcome& winner = a.update_status == 200 ? a : b;
    EXPECT_EQ(winner.update_version, round + 2);
    last_winner = Cat("node", a.update_status == 200 ? 0 : 1, "-round", round);
    // The created key holds the value of the node that got 201.
    const std::string creator = a.create_status == 201 ? "-node0-" : "-node1-";
    const Answer r = other.Send("GET", Cat(scope, "/configs/race_", round, "/reveal"), admin);
    EXPECT_EQ(r.value(), Cat(kCanary, creator, round)) << r.Describe();
    EXPECT_EQ(r.version(), 1);
  }
  for (const auto& node : nodes) {
    Conn conn(node->address());
    const Answer r = conn.Send("GET", scope + "/configs/contended/reveal", admin);
    EXPECT_EQ(r.version(), kRounds + 1) << r.Describe();
    EXPECT_EQ(r.value(), last_winner) << r.Describe();
  }

  // Free-running: two writers per node read the version and write on top of it as fast as
  // they can. Every acknowledged write must get its own version, and the final version
  // counts them all.
  ASSERT_EQ(setup.Send("PUT", scope + "/configs/counter", admin, Write("secret", "v1")).status,
            201);
  std::mutex mu;
  std::vector<std::int64_t> won_versions;
  std::map<std::int64_t, std::string> value_of_version;
  std::atomic<int> conflicts{0};
  Failures failures;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      Conn conn(nodes[static_cast<std::size_t>(w % 2)]->address());
      for (int i = 0; i < 40; ++i) {
        const Answer current = conn.Send("GET", scope + "/configs/counter", admin);
        const std::optional<std::int64_t> seen = current.version();
        if (current.status != 200 || !seen) {
          failures.Add(Cat("GET counter -> ", current.Describe()));
          return;
        }
        const std::string value = Cat(kCanary, "-writer", w, "-", i);
        const Answer put = conn.Send("PUT", scope + "/configs/counter", admin,
                                     WriteExpecting("secret", value, *seen));
        if (put.status == 200) {
          if (put.version() != *seen + 1) {
            failures.Add(Cat("PUT on version ", *seen, " answered ", put.Describe()));
          }
          std::lock_guard lock(mu);
          won_versions.push_back(put.version().value_or(-1));
          value_of_version[put.version().value_or(-1)] = value;
        } else if (put.status == 409) {
          conflicts.fetch_add(1);
        } else {
          failures.Add(Cat("PUT counter -> ", put.Describe()));
        }
      }
    });
  }
  for (auto& thread : writers) thread.join();
  EXPECT_EQ(failures.count(), 0) << failures.samples();
  std::sort(won_versions.begin(), won_versions.end());
  ASSERT_FALSE(won_versions.empty());
  std::vector<std::int64_t> expected_versions;
  for (std::int64_t v = 2; v <= static_cast<std::int64_t>(won_versions.size()) + 1; ++v) {
    expected_versions.push_back(v);
  }
  EXPECT_EQ(won_versions, expected_versions) << "two acknowledged writes share a version";
  EXPECT_EQ(static_cast<int>(won_versions.size()) + conflicts.load(), 4 * 40);
  std::cout << "[ cluster  ] free-running writers: " << won_versions.size() << " acknowledged, "
            << conflicts.load() << " conflicts\n";
  for (const auto& node : nodes) {
    Conn conn(node->address());
    const Answer r = conn.Send("GET", scope + "/configs/counter/reveal", admin);
    EXPECT_EQ(r.version(), static_cast<std::int64_t>(won_versions.size()) + 1) << r.Describe();
    EXPECT_EQ(r.value(), value_of_version[won_versions.back()]) << r.Describe();
  }
}

// ---------------------------------------------------------------------------------------
// 3. Key rotation beside three serving nodes.

TEST(ClusterE2eTest, KeyRotationWhileEveryNodeServes) {
  const std::string url = testing::NewPostgresDatabase("rotation");
  ASSERT_FALSE(url.empty());
  const std::string admin = InitDatabase(url, kKey);
  ASSERT_FALSE(admin.empty());

  // Values written under the old master key.
  std::map<std::string, json> expected;  // reveal target -> value
  std::vector<std::string> orgs;
  {
    auto node = StartNode(url);
    ASSERT_FALSE(node->address().empty());
    Conn conn(node->address());
    for (const std::string name : {"Acme", "Globex", "Initech"}) {
      const std::string id = CreateOrgOn(conn, admin, name);
      ASSERT_FALSE(id.empty());
      orgs.push_back(id);
      for (int i = 0; i < 40; ++i) {
        const std::string target = Cat(OrgPath(id), "/configs/secret_", i);
        const json value = Cat(kCanary, "-", name, "-", i);
        ASSERT_EQ(conn.Send("PUT", target, admin, Write("secret", value)).status, 201);
        expected[target + "/reveal"] = value;
      }
      const std::string plain = OrgPath(id) + "/configs/plain";
      ASSERT_EQ(conn.Send("PUT", plain, admin, Write("string", "plain-" + name)).status, 201);
      expected[plain + "/reveal"] = "plain-" + name;
    }
    const std::string global = "/api/v1/global/configs/global_secret";
    ASSERT_EQ(conn.Send("PUT", global, admin, Write("secret", kCanary + "-global")).status, 201);
    expected[global + "/reveal"] = kCanary + "-global";
    node->Stop();
  }

  // Every node restarted with the new key and the old one as previous (docs/keys.md, step 2),
  // all at the same moment.
  const std::vector<std::string> both = KeyEnv(kKeyNew, kKey);
  const auto nodes = StartNodes(url, 3, both);
  ASSERT_TRUE(AllStarted(nodes));
  const json before = KeysStatus(url, both);
  EXPECT_EQ(before["previous_keys_unused"], false) << before.dump();

  // Load through every node: readers reveal the fixed values, writers write their own keys
  // in the organizations being rotated and read them back through the next node.
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> requests{0};
  Failures failures;
  const std::vector<std::pair<std::string, json>> reads(expected.begin(), expected.end());
  std::vector<std::thread> load;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    load.emplace_back([&, n] {
      Conn conn(nodes[n]->address());
      for (std::size_t i = n; !stop.load(); ++i) {
        const auto& [target, value] = reads[i % reads.size()];
        const Answer r = conn.Send("GET", target, admin);
        requests.fetch_add(1);
        if (r.status != 200 || r.value() != value) failures.Add(Cat(target, ": ", r.Describe()));
      }
    });
    load.emplace_back([&, n] {
      Conn conn(nodes[n]->address());
      Conn next(nodes[(n + 1) % nodes.size()]->address());
      for (int i = 0; !stop.load(); ++i) {
        const std::string target = Cat(OrgPath(orgs[static_cast<std::size_t>(i) % orgs.size()]),
                                       "/configs/load_", n, "_", i % 10);
        const json value = Cat(kCanary, "-load-", n, "-", i);
        const Answer put = conn.Send("PUT", target, admin, Write("secret", value));
        const Answer back = next.Send("GET", target + "/reveal", admin);
        requests.fetch_add(2);
        if (!put.ok()) failures.Add(Cat("PUT ", target, ": ", put.Describe()));
        if (back.status != 200 || back.value() != value) {
          failures.Add(Cat("read back ", target, ": ", back.Describe()));
        }
      }
    });
  }
  const auto wait_for_requests = [&](std::int64_t n) {
    const std::int64_t target = requests.load() + n;
    const auto deadline = SteadyClock::now() + kEventWait;
    while (requests.load() < target && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE(requests.load(), target) << "the load made no progress";
  };

  wait_for_requests(100);
  const ProcessResult master =
      Bifrost({"keys", "rotate", "--database", url, "--batch-size", "1", "--format", "json"}, both);
  wait_for_requests(100);
  const ProcessResult data = Bifrost(
      {"keys", "rotate", "--database", url, "--all", "--batch-size", "4", "--format", "json"},
      both);
  wait_for_requests(100);
  stop.store(true);
  for (auto& thread : load) thread.join();
  ASSERT_EQ(master.exit_code, 0) << master.err;
  ASSERT_EQ(data.exit_code, 0) << data.err;
  EXPECT_EQ(failures.count(), 0) << failures.samples();
  std::cout << "[ cluster  ] requests during the rotations: " << requests.load() << "\n";
  const json master_report = json::parse(master.out, nullptr, false);
  EXPECT_TRUE(BoolOf(master_report, "previous_keys_unused")) << master.out;
  // The three organizations' data keys and the global scope's were wrapped by the old key.
  EXPECT_GE(IntOf(master_report, "rewrapped"), 4) << master.out;
  const json data_report = json::parse(data.out, nullptr, false);
  ASSERT_TRUE(data_report.is_object()) << data.out;
  EXPECT_EQ(data_report["scopes"].size(), orgs.size() + 1) << data.out;
  for (const std::string& output : {master.out, master.err, data.out, data.err}) {
    EXPECT_EQ(output.find(kCanary), std::string::npos);
    EXPECT_EQ(output.find(kKeyNew), std::string::npos);
  }

  // Every value reads back right on every node.
  for (const auto& node : nodes) {
    Conn conn(node->address());
    for (const auto& [target, value] : expected) {
      const Answer r = conn.Send("GET", target, admin);
      EXPECT_EQ(r.value(), value) << node->address() << target << ": " << r.Describe();
    }
  }
  const json after = KeysStatus(url, both);
  EXPECT_TRUE(after["unfinished"].empty()) << after.dump();
  EXPECT_TRUE(after["unfinished_jobs"].empty()) << after.dump();
  EXPECT_EQ(after["previous_keys_unused"], true) << after.dump();
  const std::string primary = StrOf(after, "primary_key_id");
  for (const auto& use : after["master_keys"]) {
    if (use["key_id"] != primary) {
      EXPECT_EQ(use["data_keys"], 0) << after.dump();
    }
  }
  const json report = VerifyAudit(url, both);
  EXPECT_GT(IntOf(report, "records"), 0) << report.dump();

  // The old key is no longer needed: a node without it serves every value.
  for (const auto& node : nodes) node->Stop();
  auto without_old = StartNode(url, KeyEnv(kKeyNew));
  ASSERT_FALSE(without_old->address().empty());
  Conn conn(without_old->address());
  for (const auto& [target, value] : expected) {
    EXPECT_EQ(conn.Send("GET", target, admin).value(), value) << target;
  }
  VerifyAudit(url, KeyEnv(kKeyNew));
}

// ---------------------------------------------------------------------------------------
// 4. One audit chain, whichever nodes append to it.

TEST(ClusterE2eTest, TheAuditLogStaysOneChainAcrossNodes) {
  const std::string url = testing::NewPostgresDatabase("audit");
  ASSERT_FALSE(url.empty());
  const std::string admin = InitDatabase(url);
  ASSERT_FALSE(admin.empty());
  // A small pool: requests of one node queue for connections while other nodes write.
  const auto nodes = StartNodes(url, 3, {}, {"--database-pool", "3"});
  ASSERT_TRUE(AllStarted(nodes));
  Conn setup(nodes[0]->address());
  const std::string org = CreateOrgOn(setup, admin, "Acme");
  ASSERT_FALSE(org.empty());
  const std::string scope = OrgPath(org);
  const MintedToken member = MintOn(setup, admin, "member", org);
  ASSERT_FALSE(member.token.empty());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(
        setup.Send("PUT", Cat(scope, "/configs/s", i), admin, Write("secret", Cat(kCanary, "-", i)))
            .status,
        201);
  }

  std::atomic<std::int64_t> writes{0};
  std::atomic<std::int64_t> reveals{0};
  std::atomic<std::int64_t> denied{0};
  std::atomic<std::int64_t> unauthenticated{0};
  Failures failures;
  const auto expect = [&](const Answer& a, int status, const std::string& what) {
    if (a.status != status) failures.Add(Cat(what, " -> ", a.Describe()));
    return a.status == status;
  };
  std::vector<std::thread> traffic;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    traffic.emplace_back([&, n] {  // writes, and writes a member may not make
      Conn conn(nodes[n]->address());
      for (int i = 0; i < 60; ++i) {
        const std::string target = Cat(scope, "/configs/n", n, "_", i % 7);
        const Answer put = conn.Send("PUT", target, admin, Write("secret", Cat(kCanary, i)));
        if (put.ok()) writes.fetch_add(1);
        if (!put.ok()) failures.Add(Cat("PUT ", target, " -> ", put.Describe()));
        if (i % 5 == 0 && expect(conn.Send("PUT", target, member.token, Write("string", "no")), 403,
                                 "member PUT")) {
          denied.fetch_add(1);
        }
      }
    });
    traffic.emplace_back([&, n] {  // reveals, and requests without a valid token
      Conn conn(nodes[n]->address());
      for (int i = 0; i < 90; ++i) {
        const std::string target = Cat(scope, "/configs/s", i % 5, "/reveal");
        if (expect(conn.Send("GET", target, member.token), 200, "reveal")) reveals.fetch_add(1);
        if (i % 6 == 0 && expect(conn.Send("GET", target, "bft_not_a_real_token_0000000000000000"),
                                 401, "bogus token")) {
          unauthenticated.fetch_add(1);
        }
      }
    });
  }
  // `audit verify` while the nodes append: the chain verifies at every moment.
  for (int i = 0; i < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    VerifyAudit(url, KeyEnv(kKey));
  }
  for (auto& thread : traffic) thread.join();
  EXPECT_EQ(failures.count(), 0) << failures.samples();

  const json report = VerifyAudit(url, KeyEnv(kKey));
  // Every record through the API of another node: seq 1..N without gaps, N as verified.
  Conn reader(nodes[2]->address());
  std::vector<json> records;
  std::optional<std::int64_t> before;
  for (int page = 0; page < 100; ++page) {
    std::string target = "/api/v1/audit?limit=1000";
    if (before) target += Cat("&before=", *before);
    const Answer r = reader.Send("GET", target, admin);
    ASSERT_EQ(r.status, 200) << r.Describe();
    for (const auto& record : r.json_body["records"]) records.push_back(record);
    if (!r.json_body["next_before"].is_number_integer()) break;
    before = r.json_body["next_before"].get<std::int64_t>();
  }
  std::sort(records.begin(), records.end(), [](const json& x, const json& y) {
    return x["seq"].get<std::int64_t>() < y["seq"].get<std::int64_t>();
  });
  ASSERT_FALSE(records.empty());
  for (std::size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ(records[i]["seq"].get<std::int64_t>(), static_cast<std::int64_t>(i) + 1)
        << "the chain has a gap or a duplicate before " << records[i].dump();
    if (i > 0) {
      EXPECT_EQ(records[i]["prev_mac"], records[i - 1]["mac"]) << records[i].dump();
    }
  }
  EXPECT_EQ(IntOf(report, "records"), static_cast<std::int64_t>(records.size()));
  EXPECT_EQ(IntOf(report, "last_seq"), IntOf(records.back(), "seq"));

  // Exactly one record per acknowledged request, whichever node served it.
  std::map<std::string, std::int64_t> counted;
  for (const auto& record : records) {
    counted[Cat(StrOf(record, "action"), "/", StrOf(record, "outcome"))] += 1;
  }
  EXPECT_EQ(counted["config.reveal/success"], reveals.load());
  EXPECT_EQ(counted["config.write/denied"], denied.load());
  EXPECT_EQ(counted["auth.failure/denied"], unauthenticated.load());
  EXPECT_EQ(counted["config.create/success"] + counted["config.update/success"], writes.load() + 5);
  std::string all;
  for (const auto& record : records) all += record.dump();
  EXPECT_EQ(all.find(kCanary), std::string::npos);
  EXPECT_EQ(all.find(member.token), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// 5. kill -9 of a node under write load.

TEST(ClusterE2eTest, KillingANodeLosesNoAcknowledgedWrite) {
  const std::string url = testing::NewPostgresDatabase("kill");
  ASSERT_FALSE(url.empty());
  const std::string admin = InitDatabase(url);
  ASSERT_FALSE(admin.empty());
  auto nodes = StartNodes(url, 2);
  ASSERT_TRUE(AllStarted(nodes));
  ServerProcess& victim = *nodes[0];
  ServerProcess& survivor = *nodes[1];
  Conn setup(survivor.address());
  const std::string org = CreateOrgOn(setup, admin, "Acme");
  ASSERT_FALSE(org.empty());
  const std::string fixed = OrgPath(org) + "/configs/fixed";
  ASSERT_EQ(setup.Send("PUT", fixed, admin, Write("secret", kCanary + "-fixed")).status, 201);

  WriteLoad::Options options;
  options.writer_nodes = {victim.address(), victim.address(), victim.address(), survivor.address()};
  options.reader_nodes = {victim.address(), survivor.address()};
  options.admin = admin;
  options.scope = OrgPath(org);
  options.fixed_target = fixed + "/reveal";
  options.fixed_value = kCanary + "-fixed";
  options.killed_node = victim.address();
  WriteLoad load(options);
  load.WaitForAcks(150);
  victim.Kill();
  // The survivor keeps serving without the dead node.
  load.WaitForAcks(60);
  load.Stop();
  EXPECT_EQ(load.failures().count(), 0) << load.failures().samples();

  const int checked = CheckLedgers(setup, admin, load.Ledgers());
  std::cout << "[ cluster  ] acknowledged keys checked after kill -9: " << checked << "\n";
  EXPECT_GE(checked, 100);
  VerifyAudit(url, KeyEnv(kKey));

  // A node started again on the same database serves them too.
  auto restarted = StartNode(url);
  ASSERT_FALSE(restarted->address().empty());
  Conn again(restarted->address());
  CheckLedgers(again, admin, load.Ledgers());
}

// ---------------------------------------------------------------------------------------
// 6. PostgreSQL restarted, then stopped and started, under load.

TEST(ClusterE2eTest, APostgresOutageIsAnsweredFastAndTheNodesRecoverByThemselves) {
  testing::PostgresCluster pg;
  ASSERT_FALSE(pg.url().empty());
  // A password in the URL, as an operator's would have one (the test cluster trusts local
  // connections and never asks for it): it must show up nowhere.
  const std::string url = WithPassword(pg.NewDatabase("outage"), kDatabasePassword);
  ASSERT_NE(url.find(kDatabasePassword), std::string::npos);
  const std::string admin = InitDatabase(url);
  ASSERT_FALSE(admin.empty());
  auto nodes = StartNodes(url, 2);
  ASSERT_TRUE(AllStarted(nodes));
  Conn setup(nodes[0]->address());
  const std::string org = CreateOrgOn(setup, admin, "Acme");
  ASSERT_FALSE(org.empty());
  const std::string fixed = OrgPath(org) + "/configs/fixed";
  ASSERT_EQ(setup.Send("PUT", fixed, admin, Write("secret", kCanary + "-fixed")).status, 201);

  WriteLoad::Options options;
  options.writer_nodes = {nodes[0]->address(), nodes[1]->address()};
  options.reader_nodes = {nodes[0]->address(), nodes[1]->address()};
  options.admin = admin;
  options.scope = OrgPath(org);
  options.fixed_target = fixed + "/reveal";
  options.fixed_value = kCanary + "-fixed";
  options.allowed_failures = {503};
  WriteLoad load(options);
  load.WaitForAcks(50);

  // A restart (fast shutdown, start): the nodes serve again by themselves.
  ASSERT_TRUE(pg.Restart());
  const auto restarted = SteadyClock::now();
  load.WaitForAcks(30);
  std::cout << "[ cluster  ] writes acknowledged again " << MillisSince(restarted)
            << " ms after the restart\n";
  for (const auto& node : nodes) WaitForReadiness(node->address(), 200);

  // Stopped outright (immediate: as a crash) while the nodes run: every request is refused
  // with a 503, fast, and /readyz says not ready.
  ASSERT_TRUE(pg.Stop(/*immediate=*/true));
  const auto stopped = SteadyClock::now();
  for (const auto& node : nodes) {
    const double seconds = WaitForReadiness(node->address(), 503);
    std::cout << "[ cluster  ] /readyz not ready " << seconds << " s after the stop\n";
  }
  const std::int64_t refused_before = load.refused();
  for (const auto& node : nodes) {
    Conn conn(node->address());
    const Answer ready = conn.Send("GET", "/readyz", "");
    EXPECT_EQ(ready.status, 503) << ready.Describe();
    EXPECT_EQ(ready.code(), "unavailable") << ready.Describe();
    ExpectNoDatabaseDetails(ready.body, url, "/readyz");
    for (int i = 0; i < 3; ++i) {
      const std::vector<std::pair<std::string, std::string>> probes = {
          {"GET", fixed + "/reveal"},
          {"GET", OrgPath(org) + "/configs"},
          {"GET", "/api/v1/whoami"},
          {"PUT", Cat(OrgPath(org), "/configs/during_outage_", i)}};
      for (const auto& [method, target] : probes) {
        const std::optional<json> body =
            method == "PUT" ? std::optional<json>(Write("string", "x")) : std::nullopt;
        const Answer r = conn.Send(method, target, admin, body);
        EXPECT_EQ(r.status, 503) << method << " " << target << ": " << r.Describe();
        EXPECT_LT(r.ms, kFailFastMs) << method << " " << target << " took " << r.ms << " ms";
        ExpectNoDatabaseDetails(r.body, url, Cat(method, " ", target));
      }
    }
    // Without a token too: the answer does not depend on who asks.
    const Answer anonymous = conn.Send("GET", fixed + "/reveal", "");
    EXPECT_EQ(anonymous.status, 503) << anonymous.Describe();
    ExpectNoDatabaseDetails(anonymous.body, url, "an anonymous request");
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the load keeps knocking
  EXPECT_GT(load.refused(), refused_before) << "the load saw no 503 during the outage";
  const double outage_ms = MillisSince(stopped);

  ASSERT_TRUE(pg.Start());
  const auto started = SteadyClock::now();
  for (const auto& node : nodes) {
    const double seconds = WaitForReadiness(node->address(), 200);
    std::cout << "[ cluster  ] ready again " << seconds << " s after PostgreSQL started\n";
  }
  load.WaitForAcks(30);
  std::cout << "[ cluster  ] writes acknowledged again " << MillisSince(started)
            << " ms after the start (outage " << outage_ms << " ms)\n";
  load.Stop();

  EXPECT_EQ(load.failures().count(), 0) << load.failures().samples();
  EXPECT_LT(load.max_ms(), kLoadBoundMs) << "a request of the load hung";
  std::cout << "[ cluster  ] load: " << load.requests() << " requests, " << load.refused()
            << " refused with 503, slowest " << load.max_ms() << " ms\n";
  Conn check(nodes[1]->address());
  EXPECT_GE(CheckLedgers(check, admin, load.Ledgers()), 50);
  VerifyAudit(url, KeyEnv(kKey));
  for (const auto& node : nodes) {
    for (const std::string& log : {node->Stderr(), node->Stdout()}) {
      EXPECT_EQ(log.find(kCanary), std::string::npos);
      EXPECT_EQ(log.find(kDatabasePassword), std::string::npos) << log.substr(0, 2000);
    }
  }
}

// PostgreSQL that stops answering without closing anything (every process of the cluster
// stopped with SIGSTOP: what a network partition that drops packets looks like). Requests
// must still be answered with a 503 within seconds, on connections the pool had open too,
// and the server's threads must not all wait on the database: /healthz stays live.
TEST(ClusterE2eTest, ADatabaseThatStopsAnsweringIsAnsweredFastNotWaitedFor) {
  testing::PostgresCluster pg;
  ASSERT_FALSE(pg.url().empty());
  const std::string url = WithPassword(pg.NewDatabase("frozen"), kDatabasePassword);
  const std::string admin = InitDatabase(url);
  ASSERT_FALSE(admin.empty());
  const auto node = StartNode(url);
  ASSERT_FALSE(node->address().empty());
  Conn setup(node->address());
  const std::string org = CreateOrgOn(setup, admin, "Acme");
  ASSERT_FALSE(org.empty());
  const std::string fixed = OrgPath(org) + "/configs/fixed";
  ASSERT_EQ(setup.Send("PUT", fixed, admin, Write("secret", kCanary + "-fixed")).status, 201);

  // Concurrent requests first, so that the pool holds open connections.
  constexpr int kClients = 8;
  {
    std::vector<std::thread> warm;
    for (int c = 0; c < kClients; ++c) {
      warm.emplace_back([&] {
        Conn conn(node->address());
        for (int i = 0; i < 10; ++i) conn.Send("GET", fixed + "/reveal", admin);
      });
    }
    for (auto& thread : warm) thread.join();
  }

  FrozenPostgres frozen(pg.dir());
  const auto frozen_at = SteadyClock::now();
  std::vector<Answer> answers(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      Conn conn(node->address(), 15'000);
      const std::size_t slot = static_cast<std::size_t>(c);
      switch (c % 4) {
        case 0:
          answers[slot] = conn.Send("GET", fixed + "/reveal", admin);
          break;
        case 1:
          answers[slot] = conn.Send("GET", OrgPath(org) + "/configs", admin);
          break;
        case 2:
          answers[slot] = conn.Send("PUT", Cat(OrgPath(org), "/configs/frozen_", c), admin,
                                    Write("secret", kCanary));
          break;
        default:
          answers[slot] = conn.Send("GET", "/api/v1/whoami", admin);
      }
    });
  }
  // Meanwhile: the server itself is alive, and says it is not ready.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Conn probe(node->address(), 8'000);
  const Answer health = probe.Send("GET", "/healthz", "");
  EXPECT_EQ(health.status, 200) << health.Describe();
  EXPECT_LT(health.ms, kFailFastMs) << "/healthz took " << health.ms << " ms";
  const Answer ready = probe.Send("GET", "/readyz", "");
  EXPECT_EQ(ready.status, 503) << ready.Describe();
  EXPECT_LT(ready.ms, kFailFastMs) << "/readyz took " << ready.ms << " ms";
  for (auto& thread : clients) thread.join();
  double slowest = 0;
  for (std::size_t c = 0; c < answers.size(); ++c) {
    slowest = std::max(slowest, answers[c].ms);
    EXPECT_EQ(answers[c].status, 503) << "client " << c << ": " << answers[c].Describe();
    EXPECT_LT(answers[c].ms, kLoadBoundMs)
        << "client " << c << " waited " << answers[c].ms << " ms for an unresponsive database";
    ExpectNoDatabaseDetails(answers[c].body, url, Cat("client ", c));
  }
  std::cout << "[ cluster  ] database not answering: slowest of " << kClients
            << " concurrent requests " << slowest << " ms\n";
  frozen.Resume();
  std::cout << "[ cluster  ] frozen for " << MillisSince(frozen_at) << " ms\n";

  // Answering again: the node recovers by itself.
  WaitForReadiness(node->address(), 200);
  Conn after(node->address());
  EXPECT_EQ(
      after.Send("PUT", OrgPath(org) + "/configs/after", admin, Write("secret", kCanary)).status,
      201);
  EXPECT_EQ(after.Send("GET", fixed + "/reveal", admin).value(), kCanary + "-fixed");
  EXPECT_EQ(node->Stderr().find(kDatabasePassword), std::string::npos);
  VerifyAudit(url, KeyEnv(kKey));
}

// ---------------------------------------------------------------------------------------
// 7. Nodes started together.

TEST(ClusterE2eTest, ThreeNodesStartedAtOnceOnAFreshDatabaseAllBecomeReady) {
  const std::string url = testing::NewPostgresDatabase("start");
  ASSERT_FALSE(url.empty());
  // Three operators run `bifrost init` on the empty database at once: it is initialized
  // once, with one admin token, and the others are refused.
  std::vector<ProcessResult> inits(3);
  {
    std::latch go(3);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < inits.size(); ++i) {
      threads.emplace_back([&, i] {
        go.arrive_and_wait();
        inits[i] = Bifrost({"init", "--database", url, "--format", "json"}, KeyEnv(kKey));
      });
    }
    for (auto& thread : threads) thread.join();
  }
  std::string admin;
  int succeeded = 0;
  for (const ProcessResult& init : inits) {
    if (init.exit_code == 0) {
      ++succeeded;
      admin = StrOf(json::parse(init.out, nullptr, false), "token");
    } else {
      EXPECT_NE(init.err.find("initialize"), std::string::npos) << init.err;
    }
  }
  ASSERT_EQ(succeeded, 1);
  ASSERT_FALSE(admin.empty());

  const auto nodes = StartNodes(url, 3);
  ASSERT_TRUE(AllStarted(nodes));
  {
    Conn conn(nodes[0]->address());
    const Answer tokens = conn.Send("GET", "/api/v1/tokens", admin);
    ASSERT_EQ(tokens.status, 200) << tokens.Describe();
    const json& list = tokens.json_body.is_object() && tokens.json_body.contains("tokens")
                           ? tokens.json_body["tokens"]
                           : tokens.json_body;
    EXPECT_EQ(list.size(), 1u) << tokens.body;
  }
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    Conn conn(nodes[n]->address());
    const Answer ready = conn.Send("GET", "/readyz", "");
    EXPECT_EQ(ready.status, 200) << ready.Describe();
    // Each serves writes, and the next node reads them.
    const std::string target = Cat("/api/v1/global/configs/from_node_", n);
    ASSERT_EQ(conn.Send("PUT", target, admin, Write("secret", Cat(kCanary, n))).status, 201);
    Conn next(nodes[(n + 1) % nodes.size()]->address());
    EXPECT_EQ(next.Send("GET", target + "/reveal", admin).value(), Cat(kCanary, n));
  }
  // Each start logged no error.
  for (const auto& node : nodes) {
    EXPECT_EQ(node->Stderr().find("\"level\":\"error\""), std::string::npos) << node->Stderr();
  }
  VerifyAudit(url, KeyEnv(kKey));
}

}  // namespace
}  // namespace bifrost::e2e
