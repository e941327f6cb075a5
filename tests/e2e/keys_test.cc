// Key management through the real binary (docs/keys.md): master-key and data-key rotation
// on a live server under load, kill -9 at exact points of either rotation and a re-run that
// finishes the job, start-up refusals with a missing or wrong key, crypto-shredding on
// organization delete, and the keys leaving the environment.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

namespace fs = std::filesystem;
using testing::BifrostBinary;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using testing::TempDir;

const std::string kKeyOld = "e2e-test-secret-key-0123456789-abcdefgh";
const std::string kKeyNew = "e2e-rotated-secret-key-9876543210-zyxwvu";
const std::string kKeyStranger = "e2e-unrelated-secret-key-5555555555-qqqq";
const std::string kCanary = "sk_live_KEYS_CANARY_41d9e2";

std::string Env(const std::string& name, const std::string& value) { return name + "=" + value; }

// The environment of a process holding `current` and, optionally, `previous` keys.
std::vector<std::string> KeyEnv(const std::string& current, const std::string& previous = "") {
  std::vector<std::string> env = {Env("BIFROST_SECRET_KEY", current)};
  if (!previous.empty()) env.push_back(Env("BIFROST_SECRET_KEY_PREVIOUS", previous));
  return env;
}

// `bifrost keys ARGS... --data DIR` with `env`.
ProcessResult Keys(const std::string& data, std::vector<std::string> args,
                   const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BifrostBinary(), "keys"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--data");
  argv.push_back(data);
  return RunProcess(argv, "", env);
}

json KeysStatus(const std::string& data, const std::vector<std::string>& env) {
  const ProcessResult r = Keys(data, {"status", "--format", "json"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json parsed = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(parsed.is_object()) << r.out;
  return parsed;
}

// `bifrost serve` that is expected to refuse to start: bounded by timeout(1), so a server
// that starts after all fails the test instead of hanging it.
ProcessResult ServeExpectingRefusal(const std::string& data, const std::vector<std::string>& env) {
  return RunProcess(
      {"timeout", "60", BifrostBinary(), "serve", "--data", data, "--listen", "127.0.0.1:0"}, "",
      env);
}

// Runs one SQL statement against the database with Python's sqlite3 and returns the rows as
// a JSON array of arrays.
json Query(const std::string& data, const std::string& sql) {
  static const std::string kScript =
      "import json, sqlite3, sys\n"
      "c = sqlite3.connect(sys.argv[1], timeout=30)\n"
      "print(json.dumps([list(r) for r in c.execute(sys.argv[2])]))\n"
      "c.close()\n";
  const ProcessResult r = RunProcess({PythonBinary(), "-c", kScript, data + "/bifrost.db", sql});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

void Exec(const std::string& data, const std::string& sql) {
  static const std::string kScript =
      "import sqlite3, sys\n"
      "c = sqlite3.connect(sys.argv[1], timeout=30)\n"
      "c.executescript(sys.argv[2])\n"
      "c.commit()\n"
      "c.close()\n";
  const ProcessResult r = RunProcess({PythonBinary(), "-c", kScript, data + "/bifrost.db", sql});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

std::string ValueOf(const Reply& reply) {
  if (!reply.json_body.is_object()) return "";
  const auto it = reply.json_body.find("value");
  if (it == reply.json_body.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string Numbered(const std::string& prefix, int n) {
  std::string out = prefix;
  out += std::to_string(n);
  return out;
}

// What the tests write before rotating: three organizations and the global scope, secrets
// and plain values, each with the value it must read back.
struct Fixture {
  std::string admin;
  std::map<std::string, std::string> org_ids;   // name -> id
  std::map<std::string, std::string> expected;  // reveal target -> value
};

Fixture Populate(const std::string& address, const std::string& admin, int secrets_per_org) {
  Fixture f;
  f.admin = admin;
  Api api(address);
  for (const std::string name : {"Acme", "Globex", "Initech"}) {
    const std::string id = CreateOrg(api, admin, name);
    f.org_ids[name] = id;
    const std::string scope = "/api/v1/orgs/" + id;
    for (int i = 0; i < secrets_per_org; ++i) {
      const std::string key = Numbered("secret_", i);
      std::string value = kCanary;
      value += "-" + name + "-";
      value += std::to_string(i);
      SetConfig(api, admin, scope, key, "secret", value);
      f.expected[scope + "/configs/" + key + "/reveal"] = value;
    }
    SetConfig(api, admin, scope, "plain", "string", "plain-" + name);
    f.expected[scope + "/configs/plain/reveal"] = "plain-" + name;
  }
  SetConfig(api, admin, "/api/v1/global", "global_secret", "secret", kCanary + "-global");
  f.expected["/api/v1/global/configs/global_secret/reveal"] = kCanary + "-global";
  return f;
}

// Every expected value reads back exactly; returns how many did not.
int CheckAll(const std::string& address, const Fixture& f) {
  Api api(address);
  int bad = 0;
  for (const auto& [target, value] : f.expected) {
    const Reply r = api.Call("GET", target, f.admin);
    if (r.status != 200 || ValueOf(r) != value) {
      ++bad;
      ADD_FAILURE() << target << ": " << r.status << " " << r.body.substr(0, 200);
    }
  }
  return bad;
}

// Readers reveal fixed secrets (never written during the load) and must always get their
// exact value; a writer replaces, deletes and re-creates its own secrets in one org and
// must read back what it wrote. Every request must succeed.
class Load {
 public:
  Load(std::string address, const Fixture& fixture, std::string write_scope)
      : address_(std::move(address)), fixture_(fixture), write_scope_(std::move(write_scope)) {
    for (const auto& entry : fixture_.expected) reads_.push_back(entry);
    for (int t = 0; t < 3; ++t) threads_.emplace_back([this, t] { Read(t); });
    threads_.emplace_back([this] { Write(); });
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // Waits until at least `n` more requests finished (bounded: fails after 60 s).
  void WaitForRequests(std::int64_t n) {
    const std::int64_t target = requests_.load() + n;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (requests_.load() < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GE(requests_.load(), target) << "the load made no progress";
  }
  std::int64_t requests() const { return requests_.load(); }
  std::int64_t failures() const { return failures_.load(); }
  std::string first_failure() {
    std::lock_guard lock(mu_);
    return first_failure_;
  }

 private:
  std::unique_ptr<client::HttpClient> Connect() {
    auto client =
        client::HttpClient::Create({.address = address_, .ca_file = "", .timeout_ms = 30'000});
    if (!client) {
      Fail("cannot connect");
      return nullptr;
    }
    return std::move(*client);
  }
  void Fail(const std::string& what) {
    failures_.fetch_add(1);
    std::lock_guard lock(mu_);
    if (first_failure_.empty()) first_failure_ = what;
  }
  bool Expect(client::HttpClient& client, const std::string& method, const std::string& target,
              std::optional<std::string> body, int want_status, const std::string& want_value) {
    std::optional<std::string_view> payload;
    if (body) payload = *body;
    auto r = client.Send(method, target, payload, fixture_.admin);
    requests_.fetch_add(1);
    if (!r) {
      Fail(method + " " + target + ": " + r.error().ToString());
      return false;
    }
    bool ok = r->status == want_status;
    if (ok && !want_value.empty()) {
      const json parsed = json::parse(r->body, nullptr, false);
      ok = parsed.is_object() && parsed.contains("value") && parsed["value"] == want_value;
    }
    if (!ok) Fail(method + " " + target + ": " + std::to_string(r->status) + " " + r->body);
    return ok;
  }
  void Read(int t) {
    auto client = Connect();
    if (!client) return;
    for (std::size_t i = static_cast<std::size_t>(t); !stop_.load(); ++i) {
      const auto& [target, value] = reads_[i % reads_.size()];
      Expect(*client, "GET", target, std::nullopt, 200, value);
    }
  }
  void Write() {
    auto client = Connect();
    if (!client) return;
    for (int i = 0; !stop_.load(); ++i) {
      const std::string key = Numbered("load_", i % 20);
      const std::string target = write_scope_ + "/configs/" + key;
      std::string value = kCanary;
      value += "-load-";
      value += std::to_string(i);
      const std::string body = json{{"type", "secret"}, {"value", value}}.dump();
      if (i % 7 == 6) {  // delete and re-create: a row that comes back at version 1
        auto made = client->Send("PUT", target, std::string_view(body), fixture_.admin);
        requests_.fetch_add(1);
        if (!made || (made->status != 200 && made->status != 201)) {
          Fail("PUT " + target + ": " + (made ? made->body : made.error().ToString()));
        }
        Expect(*client, "DELETE", target, std::nullopt, 204, "");
        Expect(*client, "PUT", target, body, 201, "");
      } else {
        auto r = client->Send("PUT", target, std::string_view(body), fixture_.admin);
        requests_.fetch_add(1);
        if (!r || (r->status != 200 && r->status != 201)) {
          Fail("PUT " + target + ": " + (r ? r->body : r.error().ToString()));
        }
      }
      Expect(*client, "GET", target + "/reveal", std::nullopt, 200, value);
    }
  }

  std::string address_;
  const Fixture& fixture_;
  std::string write_scope_;
  std::vector<std::pair<std::string, std::string>> reads_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> requests_{0};
  std::atomic<std::int64_t> failures_{0};
  std::mutex mu_;
  std::string first_failure_;
  std::vector<std::thread> threads_;
};

// The ids of the data keys of one scope (org id, or "" for global) and their states.
std::map<std::string, std::string> DataKeysOf(const std::string& data, const std::string& org) {
  const std::string where = org.empty() ? "org_id IS NULL" : "org_id = '" + org + "'";
  std::map<std::string, std::string> keys;
  for (const auto& row :
       Query(data, "SELECT id, state FROM data_keys WHERE purpose = 'config' AND " + where)) {
    keys[row[0].get<std::string>()] = row[1].get<std::string>();
  }
  return keys;
}

// The distinct key ids sealing the secrets of one scope.
std::set<std::string> SealingKeysOf(const std::string& data, const std::string& org) {
  const std::string where = org.empty() ? "org_id IS NULL" : "org_id = '" + org + "'";
  std::set<std::string> ids;
  for (const auto& row :
       Query(data, "SELECT DISTINCT key_id FROM configs WHERE type = 'secret' AND " + where)) {
    ids.insert(row[0].get<std::string>());
  }
  return ids;
}

std::string ActiveKeyOf(const std::string& data, const std::string& org) {
  for (const auto& [id, state] : DataKeysOf(data, org)) {
    if (state == "active") return id;
  }
  return "";
}

std::string ReadDirectory(const std::string& dir) {
  std::string all;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) all += testing::ReadFileOrEmpty(entry.path().string());
  }
  return all;
}

// ---------------------------------------------------------------------------------------

TEST(KeysE2eTest, EveryScopeGetsItsOwnDataKeyAndTheMasterKeySealsNoValue) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  const Fixture f = Populate(server.address(), server.admin_token(), 3);
  const std::string data = server.data_dir();
  std::set<std::string> seen;
  for (const auto& [name, id] : f.org_ids) {
    const std::string active = ActiveKeyOf(data, id);
    ASSERT_FALSE(active.empty()) << name;
    EXPECT_TRUE(seen.insert(active).second) << "two scopes share data key " << active;
    EXPECT_EQ(SealingKeysOf(data, id), std::set<std::string>{active}) << name;
  }
  const std::string global = ActiveKeyOf(data, "");
  ASSERT_FALSE(global.empty());
  EXPECT_EQ(SealingKeysOf(data, ""), std::set<std::string>{global});

  // The master key wraps the data keys and seals nothing itself.
  const json status = KeysStatus(data, KeyEnv(kKeyOld));
  ASSERT_TRUE(status.contains("master_keys")) << status.dump();
  const std::string master = status["primary_key_id"].get<std::string>();
  EXPECT_EQ(seen.count(master), 0u);
  EXPECT_EQ(SealingKeysOf(data, f.org_ids.at("Acme")).count(master), 0u);
  for (const auto& row : Query(data, "SELECT DISTINCT master_key_id FROM data_keys")) {
    EXPECT_EQ(row[0].get<std::string>(), master);
  }
  EXPECT_EQ(status["organizations"], 3);
  EXPECT_EQ(status["sealed_values"], 3 * 3 + 1);
  EXPECT_EQ(status["previous_keys_unused"], true);
  // Nothing secret in the database files or the status output.
  server.Stop();
  EXPECT_EQ(ReadDirectory(data).find(kCanary), std::string::npos);
  EXPECT_EQ(status.dump().find(kCanary), std::string::npos);
}

TEST(KeysE2eTest, MasterKeyRotationOnALiveServerThenTheOldKeyIsDropped) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  Fixture f;
  {
    ServerProcess first(ServerProcess::Options{.secret_key = kKeyOld, .data_dir = data});
    ASSERT_FALSE(first.address().empty());
    f = Populate(first.address(), first.admin_token(), 20);
    first.Stop();
  }
  // The operator's steps (docs/keys.md): restart with the new key and the old one as
  // previous, rotate while serving, check, drop the old key.
  ServerProcess server(ServerProcess::Options{
      .extra_env = KeyEnv(kKeyNew, kKeyOld), .init = false, .data_dir = data});
  ASSERT_FALSE(server.address().empty());
  EXPECT_EQ(CheckAll(server.address(), f), 0);

  json before = KeysStatus(data, KeyEnv(kKeyNew, kKeyOld));
  EXPECT_EQ(before["previous_keys_unused"], false) << before.dump();

  Load load(server.address(), f, "/api/v1/orgs/" + f.org_ids.at("Acme"));
  load.WaitForRequests(50);
  const ProcessResult rotated =
      Keys(data, {"rotate", "--batch-size", "1"}, KeyEnv(kKeyNew, kKeyOld));
  load.WaitForRequests(50);
  load.Stop();
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(load.failures(), 0) << load.first_failure();
  std::cout << "[ keys     ] requests during master rotation: " << load.requests() << "\n";
  // Not a terminal: plain progress lines on stderr.
  EXPECT_NE(rotated.err.find("keys rotate:"), std::string::npos) << rotated.err;
  EXPECT_EQ(rotated.err.find('\r'), std::string::npos);

  const json after = KeysStatus(data, KeyEnv(kKeyNew, kKeyOld));
  EXPECT_EQ(after["previous_keys_unused"], true) << after.dump();
  const std::string primary = after["primary_key_id"].get<std::string>();
  for (const auto& use : after["master_keys"]) {
    if (use["key_id"] != primary) {
      EXPECT_EQ(use["data_keys"], 0) << after.dump();
    }
  }
  for (const auto& row : Query(data, "SELECT DISTINCT master_key_id FROM data_keys")) {
    EXPECT_EQ(row[0].get<std::string>(), primary);
  }
  EXPECT_EQ(CheckAll(server.address(), f), 0);

  // The rotation is in the audit log, with who and how many.
  Api api(server.address());
  const Reply audit = api.Call("GET", "/api/v1/audit?action=keys.rotate_master", f.admin);
  ASSERT_EQ(audit.status, 200) << audit.body;
  ASSERT_FALSE(audit.json_body["records"].empty()) << audit.body;
  const json record = audit.json_body["records"][0];
  EXPECT_NE(record["actor_name"].get<std::string>().find("operator"), std::string::npos);
  EXPECT_NE(record["detail"].get<std::string>().find("re-wrapped"), std::string::npos);
  server.Stop();

  // The old key is no longer needed: the server starts and serves without it...
  ServerProcess without_old(
      ServerProcess::Options{.secret_key = kKeyNew, .init = false, .data_dir = data});
  ASSERT_FALSE(without_old.address().empty());
  EXPECT_EQ(CheckAll(without_old.address(), f), 0);
  without_old.Stop();
  // ...and the audit log made under both keys still verifies with the new one alone.
  const ProcessResult verified =
      RunProcess({BifrostBinary(), "audit", "verify", "--data", data}, "", KeyEnv(kKeyNew));
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;

  // The old key alone can unwrap none of the data keys any more.
  const ProcessResult refused = ServeExpectingRefusal(data, KeyEnv(kKeyOld));
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("none of the"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find(kKeyOld), std::string::npos);
}

TEST(KeysE2eTest, DataKeyRotationOnALiveServerReencryptsEveryValue) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  const Fixture f = Populate(server.address(), server.admin_token(), 300);
  const std::string data = server.data_dir();
  const std::string acme = f.org_ids.at("Acme");
  const std::string old_key = ActiveKeyOf(data, acme);
  const std::string globex_key = ActiveKeyOf(data, f.org_ids.at("Globex"));
  ASSERT_FALSE(old_key.empty());

  Load load(server.address(), f, "/api/v1/orgs/" + acme);
  load.WaitForRequests(50);
  const ProcessResult rotated =
      Keys(data, {"rotate", "--org", "Acme", "--batch-size", "10"}, KeyEnv(kKeyOld));
  load.WaitForRequests(50);
  load.Stop();
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(load.failures(), 0) << load.first_failure();
  std::cout << "[ keys     ] requests during data-key rotation: " << load.requests() << "\n";

  const std::string new_key = ActiveKeyOf(data, acme);
  EXPECT_NE(new_key, old_key);
  // The old key is destroyed, every value of the org is sealed by the new one (also what
  // the writer wrote during the rotation), and other scopes were not touched.
  EXPECT_EQ(DataKeysOf(data, acme), (std::map<std::string, std::string>{{new_key, "active"}}));
  EXPECT_EQ(SealingKeysOf(data, acme), std::set<std::string>{new_key});
  EXPECT_EQ(ActiveKeyOf(data, f.org_ids.at("Globex")), globex_key);
  EXPECT_EQ(CheckAll(server.address(), f), 0);
  EXPECT_EQ(rotated.out.find(kCanary), std::string::npos);
  EXPECT_EQ(rotated.err.find(kCanary), std::string::npos);

  Api api(server.address());
  const Reply audit = api.Call("GET", "/api/v1/audit?action=keys.rotate_data", f.admin);
  ASSERT_EQ(audit.status, 200);
  ASSERT_FALSE(audit.json_body["records"].empty()) << audit.body;
  EXPECT_EQ(audit.json_body["records"][0]["org_id"], acme);
  // "N values re-encrypted": the 300 of the fixture and what the writer added meanwhile.
  const std::string detail = audit.json_body["records"][0]["detail"].get<std::string>();
  const std::size_t counted = detail.find(" values re-encrypted");
  ASSERT_NE(counted, std::string::npos) << detail;
  const std::size_t digits = detail.find_last_not_of("0123456789", counted - 1) + 1;
  EXPECT_GE(std::stoll(detail.substr(digits, counted - digits)), 300) << detail;

  // --all gives every scope a new key.
  const ProcessResult all = Keys(data, {"rotate", "--all", "--format", "json"}, KeyEnv(kKeyOld));
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(ActiveKeyOf(data, f.org_ids.at("Globex")), globex_key);
  EXPECT_NE(ActiveKeyOf(data, acme), new_key);
  for (const auto& [name, id] : f.org_ids) {
    EXPECT_EQ(SealingKeysOf(data, id), std::set<std::string>{ActiveKeyOf(data, id)}) << name;
  }
  EXPECT_EQ(CheckAll(server.address(), f), 0);

  // Usage errors.
  EXPECT_EQ(Keys(data, {"rotate", "--org", "Acme", "--all"}, KeyEnv(kKeyOld)).exit_code, 2);
  const ProcessResult unknown = Keys(data, {"rotate", "--org", "NoSuchOrg"}, KeyEnv(kKeyOld));
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("NoSuchOrg"), std::string::npos) << unknown.err;
}

// Kill -9 at each point of a data-key rotation, with the server serving throughout: every
// value still reads, after a restart too, and the same command finishes the job.
TEST(KeysE2eTest, DataKeyRotationKilledAtAnyPointResumes) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  auto server = std::make_unique<ServerProcess>(ServerProcess::Options{.data_dir = data});
  ASSERT_FALSE(server->address().empty());
  const Fixture f = Populate(server->address(), server->admin_token(), 40);
  const std::string acme = f.org_ids.at("Acme");

  for (const std::string point :
       {"data-created", "data-batch:1", "data-batch:3", "data-before-destroy"}) {
    SCOPED_TRACE(point);
    const std::string before = ActiveKeyOf(data, acme);
    std::vector<std::string> env = KeyEnv(kKeyOld);
    env.push_back(Env("BIFROST_TESTING_CRASH_AT", point));
    const ProcessResult killed = Keys(data, {"rotate", "--org", "Acme", "--batch-size", "8"}, env);
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
    EXPECT_EQ(CheckAll(server->address(), f), 0);

    // A restart in the middle of the rotation: everything still opens.
    server->Stop();
    server =
        std::make_unique<ServerProcess>(ServerProcess::Options{.init = false, .data_dir = data});
    ASSERT_FALSE(server->address().empty());
    EXPECT_EQ(CheckAll(server->address(), f), 0);
    const json status = KeysStatus(data, KeyEnv(kKeyOld));
    EXPECT_FALSE(status["unfinished"].empty()) << status.dump();

    const ProcessResult resumed = Keys(data, {"rotate", "--org", "Acme"}, KeyEnv(kKeyOld));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("resum"), std::string::npos) << resumed.out;
    const std::string after = ActiveKeyOf(data, acme);
    EXPECT_NE(after, before);
    EXPECT_EQ(DataKeysOf(data, acme), (std::map<std::string, std::string>{{after, "active"}}));
    EXPECT_EQ(SealingKeysOf(data, acme), std::set<std::string>{after});
    EXPECT_TRUE(KeysStatus(data, KeyEnv(kKeyOld))["unfinished"].empty());
    EXPECT_EQ(CheckAll(server->address(), f), 0);
  }
}

TEST(KeysE2eTest, MasterRotationKilledAtAnyPointResumes) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  Fixture f;
  {
    ServerProcess first(ServerProcess::Options{.data_dir = data});
    ASSERT_FALSE(first.address().empty());
    f = Populate(first.address(), first.admin_token(), 2);
    Api api(first.address());
    for (int i = 0; i < 10; ++i) CreateOrg(api, first.admin_token(), Numbered("extra-", i));
    first.Stop();
  }
  auto server = std::make_unique<ServerProcess>(ServerProcess::Options{
      .extra_env = KeyEnv(kKeyNew, kKeyOld), .init = false, .data_dir = data});
  ASSERT_FALSE(server->address().empty());

  for (const std::string point : {"master-batch:1", "master-batch:2"}) {
    SCOPED_TRACE(point);
    std::vector<std::string> env = KeyEnv(kKeyNew, kKeyOld);
    env.push_back(Env("BIFROST_TESTING_CRASH_AT", point));
    const ProcessResult killed = Keys(data, {"rotate", "--batch-size", "2"}, env);
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
    EXPECT_EQ(CheckAll(server->address(), f), 0);
    // Half way: the old key is still needed, and the server says for which organizations.
    if (point == "master-batch:1") {
      const ProcessResult refused = ServeExpectingRefusal(data, KeyEnv(kKeyNew));
      EXPECT_EQ(refused.exit_code, 1);
      EXPECT_NE(refused.err.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos) << refused.err;
      // Some organization whose data key is still under the old key is named.
      const std::string primary =
          KeysStatus(data, KeyEnv(kKeyNew, kKeyOld))["primary_key_id"].get<std::string>();
      const json left = Query(data,
                              "SELECT o.name FROM data_keys d JOIN organizations o ON "
                              "o.id = d.org_id WHERE d.master_key_id != '" +
                                  primary + "'");
      ASSERT_FALSE(left.empty());
      bool named = false;
      for (const auto& row : left) {
        named = named || refused.err.find(row[0].get<std::string>()) != std::string::npos;
      }
      EXPECT_TRUE(named) << refused.err;
    }
  }
  server->Stop();
  server = std::make_unique<ServerProcess>(ServerProcess::Options{
      .extra_env = KeyEnv(kKeyNew, kKeyOld), .init = false, .data_dir = data});
  ASSERT_FALSE(server->address().empty());
  EXPECT_EQ(CheckAll(server->address(), f), 0);
  const ProcessResult finished = Keys(data, {"rotate"}, KeyEnv(kKeyNew, kKeyOld));
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(KeysStatus(data, KeyEnv(kKeyNew, kKeyOld))["previous_keys_unused"], true);
  server->Stop();
  ServerProcess without_old(
      ServerProcess::Options{.secret_key = kKeyNew, .init = false, .data_dir = data});
  ASSERT_FALSE(without_old.address().empty());
  EXPECT_EQ(CheckAll(without_old.address(), f), 0);
}

TEST(KeysE2eTest, StartUpRefusesKeysThatDoNotFit) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  {
    ServerProcess first(ServerProcess::Options{.data_dir = data});
    ASSERT_FALSE(first.address().empty());
    Populate(first.address(), first.admin_token(), 1);
    first.Stop();
  }
  // A key this database never used: nothing can be unwrapped.
  ProcessResult r = ServeExpectingRefusal(data, KeyEnv(kKeyStranger));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("none of the"), std::string::npos) << r.err;
  // Previous keys without a current key.
  r = ServeExpectingRefusal(data, {Env("BIFROST_SECRET_KEY_PREVIOUS", kKeyOld)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos) << r.err;
  // The current key listed again as a previous one.
  r = ServeExpectingRefusal(data, KeyEnv(kKeyOld, kKeyOld));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos) << r.err;
  // A stranger as previous key is harmless: the current key opens everything.
  ServerProcess ok(ServerProcess::Options{
      .extra_env = KeyEnv(kKeyOld, kKeyStranger), .init = false, .data_dir = data});
  EXPECT_FALSE(ok.address().empty());
  for (const std::string& key : {kKeyOld, kKeyNew, kKeyStranger}) {
    EXPECT_EQ(r.err.find(key), std::string::npos);
    EXPECT_EQ(ok.Stderr().find(key), std::string::npos);
  }
}

TEST(KeysE2eTest, KeysLeaveTheEnvironmentAndComeFromFiles) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  {
    ServerProcess first(ServerProcess::Options{.secret_key = kKeyOld, .data_dir = data});
    ASSERT_FALSE(first.address().empty());
  }
  const std::string current_file = tmp.path() + "/current.key";
  const std::string previous_file = tmp.path() + "/previous.key";
  std::ofstream(current_file) << kKeyNew << "\n";
  std::ofstream(previous_file) << "\n" << kKeyStranger << "\n" << kKeyOld << "\n";
  fs::permissions(current_file, fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(previous_file, fs::perms::owner_read | fs::perms::owner_write);
  ServerProcess server(
      ServerProcess::Options{.extra_env = {Env("BIFROST_SECRET_KEY_FILE", current_file),
                                           Env("BIFROST_SECRET_KEY_PREVIOUS_FILE", previous_file)},
                             .init = false,
                             .data_dir = data});
  ASSERT_FALSE(server.address().empty());
  ASSERT_GT(server.pid(), 0);
  const std::string environ =
      testing::ReadFileOrEmpty("/proc/" + std::to_string(server.pid()) + "/environ");
  EXPECT_EQ(environ.find("BIFROST_SECRET_KEY"), std::string::npos);
  const ProcessResult rotated =
      RunProcess({BifrostBinary(), "keys", "rotate", "--data", data}, "",
                 {Env("BIFROST_SECRET_KEY_FILE", current_file),
                  Env("BIFROST_SECRET_KEY_PREVIOUS_FILE", previous_file)});
  EXPECT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(KeysStatus(data, KeyEnv(kKeyNew))["previous_keys_unused"], true);
}

// Deleting an organization destroys its data key: an old copy of its rows cannot be
// opened, even put back into the database under the same organization id.
TEST(KeysE2eTest, DeletingAnOrganizationShredsItsValues) {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  std::string admin;
  std::string org;
  json saved_rows;
  std::string wrapped;
  {
    ServerProcess server(ServerProcess::Options{.data_dir = data});
    ASSERT_FALSE(server.address().empty());
    admin = server.admin_token();
    Api api(server.address());
    org = CreateOrg(api, admin, "Doomed");
    SetConfig(api, admin, "/api/v1/orgs/" + org, "api_key", "secret", kCanary + "-doomed");
    saved_rows = Query(data,
                       "SELECT org_id, key, type, value, key_id, description, created_at, "
                       "updated_at, updated_by, version FROM configs WHERE org_id = '" +
                           org + "'");
    const json keys = Query(data, "SELECT wrapped FROM data_keys WHERE org_id = '" + org + "'");
    ASSERT_EQ(keys.size(), 1u);
    wrapped = keys[0][0].get<std::string>();
    ASSERT_EQ(api.Call("DELETE", "/api/v1/orgs/" + org, admin).status, 204);
    EXPECT_TRUE(DataKeysOf(data, org).empty());
    // The wrapped key is gone from the files (the database and its write-ahead log) while
    // the server still runs, not just unlinked from the table.
    EXPECT_EQ(ReadDirectory(data).find(wrapped), std::string::npos);
    EXPECT_EQ(server.Stderr().find("may remain"), std::string::npos) << server.Stderr();
    server.Stop();
  }
  EXPECT_EQ(ReadDirectory(data).find(wrapped), std::string::npos);

  // Put the organization and its old rows back, byte for byte.
  ASSERT_EQ(saved_rows.size(), 1u);
  const json& row = saved_rows[0];
  std::string sql =
      "INSERT INTO organizations (id, name, created_at) VALUES ('" + org + "', 'Doomed', 1);";
  sql +=
      "INSERT INTO configs (org_id, key, type, value, key_id, description, created_at, "
      "updated_at, updated_by, version) VALUES ('" +
      org + "', 'api_key', 'secret', '" + row[3].get<std::string>() + "', '" +
      row[4].get<std::string>() + "', '', 1, 1, 'x', 1);";
  Exec(data, sql);

  ServerProcess server(ServerProcess::Options{.init = false, .data_dir = data});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const Reply r = api.Call("GET", "/api/v1/orgs/" + org + "/configs/api_key/reveal", admin);
  EXPECT_NE(r.status, 200);
  EXPECT_EQ(r.body.find(kCanary), std::string::npos);
  EXPECT_EQ(server.Stderr().find(kCanary), std::string::npos);
}

}  // namespace
}  // namespace bifrost::e2e
