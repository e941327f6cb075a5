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
using testing::On;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using testing::Storage;
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

// `bifrost keys ARGS... --data DIR` (or --database URL) with `env`.
ProcessResult Keys(const Storage& storage, std::vector<std::string> args,
                   const std::vector<std::string>& env) {
  std::vector<std::string> argv = {BifrostBinary(), "keys"};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const std::string& arg : storage.Args()) argv.push_back(arg);
  return RunProcess(argv, "", env);
}

json KeysStatus(const Storage& storage, const std::vector<std::string>& env) {
  const ProcessResult r = Keys(storage, {"status", "--format", "json"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json parsed = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(parsed.is_object()) << r.out;
  return parsed;
}

// `bifrost serve` that is expected to refuse to start: bounded by timeout(1), so a server
// that starts after all fails the test instead of hanging it.
ProcessResult ServeExpectingRefusal(const Storage& storage, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {"timeout", "60", BifrostBinary(), "serve"};
  for (const std::string& arg : storage.Args()) argv.push_back(arg);
  argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  return RunProcess(argv, "", env);
}

// The rows of one SQL query on the database (a second client beside the server), every
// value as text.
std::vector<std::vector<std::string>> Query(const Storage& storage, const std::string& sql) {
  return SqlRows(storage, sql);
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
std::map<std::string, std::string> DataKeysOf(const Storage& storage, const std::string& org) {
  const std::string where = org.empty() ? "org_id IS NULL" : "org_id = '" + org + "'";
  std::map<std::string, std::string> keys;
  for (const auto& row :
       Query(storage, "SELECT id, state FROM data_keys WHERE purpose = 'config' AND " + where)) {
    keys[row[0]] = row[1];
  }
  return keys;
}

// The distinct key ids sealing the secrets of one scope.
std::set<std::string> SealingKeysOf(const Storage& storage, const std::string& org) {
  const std::string where = org.empty() ? "org_id IS NULL" : "org_id = '" + org + "'";
  std::set<std::string> ids;
  for (const auto& row :
       Query(storage, "SELECT DISTINCT key_id FROM configs WHERE type = 'secret' AND " + where)) {
    ids.insert(row[0]);
  }
  return ids;
}

std::string ActiveKeyOf(const Storage& storage, const std::string& org) {
  for (const auto& [id, state] : DataKeysOf(storage, org)) {
    if (state == "active") return id;
  }
  return "";
}

// ---------------------------------------------------------------------------------------

TEST(KeysE2eTest, EveryScopeGetsItsOwnDataKeyAndTheMasterKeySealsNoValue) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  const Fixture f = Populate(server.address(), server.admin_token(), 3);
  const Storage& storage = server.storage();
  std::set<std::string> seen;
  for (const auto& [name, id] : f.org_ids) {
    const std::string active = ActiveKeyOf(storage, id);
    ASSERT_FALSE(active.empty()) << name;
    EXPECT_TRUE(seen.insert(active).second) << "two scopes share data key " << active;
    EXPECT_EQ(SealingKeysOf(storage, id), std::set<std::string>{active}) << name;
  }
  const std::string global = ActiveKeyOf(storage, "");
  ASSERT_FALSE(global.empty());
  EXPECT_EQ(SealingKeysOf(storage, ""), std::set<std::string>{global});

  // The master key wraps the data keys and seals nothing itself.
  const json status = KeysStatus(storage, KeyEnv(kKeyOld));
  ASSERT_TRUE(status.contains("master_keys")) << status.dump();
  const std::string master = status["primary_key_id"].get<std::string>();
  EXPECT_EQ(seen.count(master), 0u);
  EXPECT_EQ(SealingKeysOf(storage, f.org_ids.at("Acme")).count(master), 0u);
  for (const auto& row : Query(storage, "SELECT DISTINCT master_key_id FROM data_keys")) {
    EXPECT_EQ(row[0], master);
  }
  EXPECT_EQ(status["organizations"], 3);
  EXPECT_EQ(status["sealed_values"], 3 * 3 + 1);
  EXPECT_EQ(status["previous_keys_unused"], true);
  // Nothing secret in what the database stored or the status output.
  server.Stop();
  EXPECT_EQ(testing::StoredBytes(storage).find(kCanary), std::string::npos);
  EXPECT_EQ(status.dump().find(kCanary), std::string::npos);
}

TEST(KeysE2eTest, MasterKeyRotationOnALiveServerThenTheOldKeyIsDropped) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  Fixture f;
  {
    ServerProcess first(On(storage, {.secret_key = kKeyOld}));
    ASSERT_FALSE(first.address().empty());
    f = Populate(first.address(), first.admin_token(), 20);
    first.Stop();
  }
  // The operator's steps (docs/keys.md): restart with the new key and the old one as
  // previous, rotate while serving, check, drop the old key.
  ServerProcess server(On(storage, {.extra_env = KeyEnv(kKeyNew, kKeyOld), .init = false}));
  ASSERT_FALSE(server.address().empty());
  EXPECT_EQ(CheckAll(server.address(), f), 0);

  json before = KeysStatus(storage, KeyEnv(kKeyNew, kKeyOld));
  EXPECT_EQ(before["previous_keys_unused"], false) << before.dump();

  Load load(server.address(), f, "/api/v1/orgs/" + f.org_ids.at("Acme"));
  load.WaitForRequests(50);
  const ProcessResult rotated =
      Keys(storage, {"rotate", "--batch-size", "1"}, KeyEnv(kKeyNew, kKeyOld));
  load.WaitForRequests(50);
  load.Stop();
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(load.failures(), 0) << load.first_failure();
  std::cout << "[ keys     ] requests during master rotation: " << load.requests() << "\n";
  // Not a terminal: plain progress lines on stderr.
  EXPECT_NE(rotated.err.find("keys rotate:"), std::string::npos) << rotated.err;
  EXPECT_EQ(rotated.err.find('\r'), std::string::npos);

  const json after = KeysStatus(storage, KeyEnv(kKeyNew, kKeyOld));
  EXPECT_EQ(after["previous_keys_unused"], true) << after.dump();
  const std::string primary = after["primary_key_id"].get<std::string>();
  for (const auto& use : after["master_keys"]) {
    if (use["key_id"] != primary) {
      EXPECT_EQ(use["data_keys"], 0) << after.dump();
    }
  }
  for (const auto& row : Query(storage, "SELECT DISTINCT master_key_id FROM data_keys")) {
    EXPECT_EQ(row[0], primary);
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
  ServerProcess without_old(On(storage, {.secret_key = kKeyNew, .init = false}));
  ASSERT_FALSE(without_old.address().empty());
  EXPECT_EQ(CheckAll(without_old.address(), f), 0);
  without_old.Stop();
  // ...and the audit log made under both keys still verifies with the new one alone.
  std::vector<std::string> verify = {BifrostBinary(), "audit", "verify"};
  for (const std::string& arg : storage.Args()) verify.push_back(arg);
  const ProcessResult verified = RunProcess(verify, "", KeyEnv(kKeyNew));
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;

  // The old key alone can unwrap none of the data keys any more.
  const ProcessResult refused = ServeExpectingRefusal(storage, KeyEnv(kKeyOld));
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("none of the"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find(kKeyOld), std::string::npos);
}

TEST(KeysE2eTest, DataKeyRotationOnALiveServerReencryptsEveryValue) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  const Fixture f = Populate(server.address(), server.admin_token(), 300);
  const Storage& storage = server.storage();
  const std::string acme = f.org_ids.at("Acme");
  const std::string old_key = ActiveKeyOf(storage, acme);
  const std::string globex_key = ActiveKeyOf(storage, f.org_ids.at("Globex"));
  ASSERT_FALSE(old_key.empty());

  Load load(server.address(), f, "/api/v1/orgs/" + acme);
  load.WaitForRequests(50);
  const ProcessResult rotated =
      Keys(storage, {"rotate", "--org", "Acme", "--batch-size", "10"}, KeyEnv(kKeyOld));
  load.WaitForRequests(50);
  load.Stop();
  ASSERT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(load.failures(), 0) << load.first_failure();
  std::cout << "[ keys     ] requests during data-key rotation: " << load.requests() << "\n";

  const std::string new_key = ActiveKeyOf(storage, acme);
  EXPECT_NE(new_key, old_key);
  // The old key is destroyed, every value of the org is sealed by the new one (also what
  // the writer wrote during the rotation), and other scopes were not touched.
  EXPECT_EQ(DataKeysOf(storage, acme), (std::map<std::string, std::string>{{new_key, "active"}}));
  EXPECT_EQ(SealingKeysOf(storage, acme), std::set<std::string>{new_key});
  EXPECT_EQ(ActiveKeyOf(storage, f.org_ids.at("Globex")), globex_key);
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
  const ProcessResult all = Keys(storage, {"rotate", "--all", "--format", "json"}, KeyEnv(kKeyOld));
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(ActiveKeyOf(storage, f.org_ids.at("Globex")), globex_key);
  EXPECT_NE(ActiveKeyOf(storage, acme), new_key);
  for (const auto& [name, id] : f.org_ids) {
    EXPECT_EQ(SealingKeysOf(storage, id), std::set<std::string>{ActiveKeyOf(storage, id)}) << name;
  }
  EXPECT_EQ(CheckAll(server.address(), f), 0);

  // Usage errors.
  EXPECT_EQ(Keys(storage, {"rotate", "--org", "Acme", "--all"}, KeyEnv(kKeyOld)).exit_code, 2);
  const ProcessResult unknown = Keys(storage, {"rotate", "--org", "NoSuchOrg"}, KeyEnv(kKeyOld));
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("NoSuchOrg"), std::string::npos) << unknown.err;
}

// Kill -9 at each point of a data-key rotation, with the server serving throughout: every
// value still reads, after a restart too, and the same command finishes the job.
TEST(KeysE2eTest, DataKeyRotationKilledAtAnyPointResumes) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  auto server = std::make_unique<ServerProcess>(On(storage));
  ASSERT_FALSE(server->address().empty());
  const Fixture f = Populate(server->address(), server->admin_token(), 40);
  const std::string acme = f.org_ids.at("Acme");

  for (const std::string point :
       {"data-created", "data-batch:1", "data-batch:3", "data-before-destroy"}) {
    SCOPED_TRACE(point);
    const std::string before = ActiveKeyOf(storage, acme);
    std::vector<std::string> env = KeyEnv(kKeyOld);
    env.push_back(Env("BIFROST_TESTING_CRASH_AT", point));
    const ProcessResult killed =
        Keys(storage, {"rotate", "--org", "Acme", "--batch-size", "8"}, env);
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
    EXPECT_EQ(CheckAll(server->address(), f), 0);

    // A restart in the middle of the rotation: everything still opens.
    server->Stop();
    server = std::make_unique<ServerProcess>(On(storage, {.init = false}));
    ASSERT_FALSE(server->address().empty());
    EXPECT_EQ(CheckAll(server->address(), f), 0);
    const json status = KeysStatus(storage, KeyEnv(kKeyOld));
    EXPECT_FALSE(status["unfinished"].empty()) << status.dump();

    const ProcessResult resumed = Keys(storage, {"rotate", "--org", "Acme"}, KeyEnv(kKeyOld));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find("resum"), std::string::npos) << resumed.out;
    const std::string after = ActiveKeyOf(storage, acme);
    EXPECT_NE(after, before);
    EXPECT_EQ(DataKeysOf(storage, acme), (std::map<std::string, std::string>{{after, "active"}}));
    EXPECT_EQ(SealingKeysOf(storage, acme), std::set<std::string>{after});
    EXPECT_TRUE(KeysStatus(storage, KeyEnv(kKeyOld))["unfinished"].empty());
    EXPECT_EQ(CheckAll(server->address(), f), 0);
  }
}

TEST(KeysE2eTest, MasterRotationKilledAtAnyPointResumes) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  Fixture f;
  {
    ServerProcess first(On(storage));
    ASSERT_FALSE(first.address().empty());
    f = Populate(first.address(), first.admin_token(), 2);
    Api api(first.address());
    for (int i = 0; i < 10; ++i) CreateOrg(api, first.admin_token(), Numbered("extra-", i));
    first.Stop();
  }
  auto server = std::make_unique<ServerProcess>(
      On(storage, {.extra_env = KeyEnv(kKeyNew, kKeyOld), .init = false}));
  ASSERT_FALSE(server->address().empty());

  for (const std::string point : {"master-batch:1", "master-batch:2"}) {
    SCOPED_TRACE(point);
    std::vector<std::string> env = KeyEnv(kKeyNew, kKeyOld);
    env.push_back(Env("BIFROST_TESTING_CRASH_AT", point));
    const ProcessResult killed = Keys(storage, {"rotate", "--batch-size", "2"}, env);
    ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
    EXPECT_EQ(CheckAll(server->address(), f), 0);
    // Half way: the old key is still needed, and the server says for which organizations.
    if (point == "master-batch:1") {
      const ProcessResult refused = ServeExpectingRefusal(storage, KeyEnv(kKeyNew));
      EXPECT_EQ(refused.exit_code, 1);
      EXPECT_NE(refused.err.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos) << refused.err;
      // Some organization whose data key is still under the old key is named.
      const std::string primary =
          KeysStatus(storage, KeyEnv(kKeyNew, kKeyOld))["primary_key_id"].get<std::string>();
      const auto left = Query(storage,
                              "SELECT o.name FROM data_keys d JOIN organizations o ON "
                              "o.id = d.org_id WHERE d.master_key_id != '" +
                                  primary + "'");
      ASSERT_FALSE(left.empty());
      bool named = false;
      for (const auto& row : left) {
        named = named || refused.err.find(row[0]) != std::string::npos;
      }
      EXPECT_TRUE(named) << refused.err;
    }
  }
  server->Stop();
  server = std::make_unique<ServerProcess>(
      On(storage, {.extra_env = KeyEnv(kKeyNew, kKeyOld), .init = false}));
  ASSERT_FALSE(server->address().empty());
  EXPECT_EQ(CheckAll(server->address(), f), 0);
  const ProcessResult finished = Keys(storage, {"rotate"}, KeyEnv(kKeyNew, kKeyOld));
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(KeysStatus(storage, KeyEnv(kKeyNew, kKeyOld))["previous_keys_unused"], true);
  server->Stop();
  ServerProcess without_old(On(storage, {.secret_key = kKeyNew, .init = false}));
  ASSERT_FALSE(without_old.address().empty());
  EXPECT_EQ(CheckAll(without_old.address(), f), 0);
}

TEST(KeysE2eTest, StartUpRefusesKeysThatDoNotFit) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  {
    ServerProcess first(On(storage));
    ASSERT_FALSE(first.address().empty());
    Populate(first.address(), first.admin_token(), 1);
    first.Stop();
  }
  // A key this database never used: nothing can be unwrapped.
  ProcessResult r = ServeExpectingRefusal(storage, KeyEnv(kKeyStranger));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("none of the"), std::string::npos) << r.err;
  // Previous keys without a current key.
  r = ServeExpectingRefusal(storage, {Env("BIFROST_SECRET_KEY_PREVIOUS", kKeyOld)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos) << r.err;
  // The current key listed again as a previous one.
  r = ServeExpectingRefusal(storage, KeyEnv(kKeyOld, kKeyOld));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("BIFROST_SECRET_KEY_PREVIOUS"), std::string::npos) << r.err;
  // A stranger as previous key is harmless: the current key opens everything.
  ServerProcess ok(On(storage, {.extra_env = KeyEnv(kKeyOld, kKeyStranger), .init = false}));
  EXPECT_FALSE(ok.address().empty());
  for (const std::string& key : {kKeyOld, kKeyNew, kKeyStranger}) {
    EXPECT_EQ(r.err.find(key), std::string::npos);
    EXPECT_EQ(ok.Stderr().find(key), std::string::npos);
  }
}

TEST(KeysE2eTest, KeysLeaveTheEnvironmentAndComeFromFiles) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  {
    ServerProcess first(On(storage, {.secret_key = kKeyOld}));
    ASSERT_FALSE(first.address().empty());
  }
  const std::string current_file = tmp.path() + "/current.key";
  const std::string previous_file = tmp.path() + "/previous.key";
  std::ofstream(current_file) << kKeyNew << "\n";
  std::ofstream(previous_file) << "\n" << kKeyStranger << "\n" << kKeyOld << "\n";
  fs::permissions(current_file, fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(previous_file, fs::perms::owner_read | fs::perms::owner_write);
  ServerProcess server(
      On(storage, {.extra_env = {Env("BIFROST_SECRET_KEY_FILE", current_file),
                                 Env("BIFROST_SECRET_KEY_PREVIOUS_FILE", previous_file)},
                   .init = false}));
  ASSERT_FALSE(server.address().empty());
  ASSERT_GT(server.pid(), 0);
  const std::string environ =
      testing::ReadFileOrEmpty("/proc/" + std::to_string(server.pid()) + "/environ");
  EXPECT_EQ(environ.find("BIFROST_SECRET_KEY"), std::string::npos);
  const ProcessResult rotated = Keys(storage, {"rotate"},
                                     {Env("BIFROST_SECRET_KEY_FILE", current_file),
                                      Env("BIFROST_SECRET_KEY_PREVIOUS_FILE", previous_file)});
  EXPECT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(KeysStatus(storage, KeyEnv(kKeyNew))["previous_keys_unused"], true);
}

// Deleting an organization destroys its data key: an old copy of its rows cannot be
// opened, even put back into the database under the same organization id.
TEST(KeysE2eTest, DeletingAnOrganizationShredsItsValues) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  std::string admin;
  std::string org;
  std::vector<std::vector<std::string>> saved_rows;
  std::string wrapped;
  {
    ServerProcess server(On(storage));
    ASSERT_FALSE(server.address().empty());
    admin = server.admin_token();
    Api api(server.address());
    org = CreateOrg(api, admin, "Doomed");
    SetConfig(api, admin, "/api/v1/orgs/" + org, "api_key", "secret", kCanary + "-doomed");
    saved_rows = Query(storage,
                       "SELECT org_id, key, type, value, key_id, description, created_at, "
                       "updated_at, updated_by, version FROM configs WHERE org_id = '" +
                           org + "'");
    const auto keys = Query(storage, "SELECT wrapped FROM data_keys WHERE org_id = '" + org + "'");
    ASSERT_EQ(keys.size(), 1u);
    wrapped = keys[0][0];
    ASSERT_EQ(api.Call("DELETE", "/api/v1/orgs/" + org, admin).status, 204);
    EXPECT_TRUE(DataKeysOf(storage, org).empty());
    // The wrapped key is gone from the database's contents while the server still runs.
    EXPECT_EQ(testing::StorageFingerprint(storage).find(wrapped), std::string::npos);
    // SQLite: from its files too (the database and its write-ahead log), not just unlinked
    // from the table. PostgreSQL keeps old row versions in its WAL and in freed pages until
    // they are overwritten (docs/deployment.md), which no VACUUM can promise away.
    if (!storage.postgresql()) {
      EXPECT_EQ(testing::StoredBytes(storage).find(wrapped), std::string::npos);
    }
    EXPECT_EQ(server.Stderr().find("may remain"), std::string::npos) << server.Stderr();
    server.Stop();
  }
  if (!storage.postgresql()) {
    EXPECT_EQ(testing::StoredBytes(storage).find(wrapped), std::string::npos);
  }

  // Put the organization and its old rows back, byte for byte.
  ASSERT_EQ(saved_rows.size(), 1u);
  const std::vector<std::string>& row = saved_rows[0];
  std::string sql =
      "INSERT INTO organizations (id, name, created_at) VALUES ('" + org + "', 'Doomed', 1);";
  sql +=
      "INSERT INTO configs (org_id, key, type, value, key_id, description, created_at, "
      "updated_at, updated_by, version) VALUES ('" +
      org + "', 'api_key', 'secret', '" + row[3] + "', '" + row[4] + "', '', 1, 1, 'x', 1);";
  SqlExec(storage, sql);

  ServerProcess server(On(storage, {.init = false}));
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const Reply r = api.Call("GET", "/api/v1/orgs/" + org + "/configs/api_key/reveal", admin);
  EXPECT_NE(r.status, 200);
  EXPECT_EQ(r.body.find(kCanary), std::string::npos);
  EXPECT_EQ(server.Stderr().find(kCanary), std::string::npos);
}

}  // namespace
}  // namespace bifrost::e2e
