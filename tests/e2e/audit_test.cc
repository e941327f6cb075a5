// The audit log through the real binary: which request leaves which record, who may read
// them, fail-closed sinks that recover by themselves, tampering that `audit verify` catches,
// and no acknowledged reveal lost to a crash (docs/audit.md).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
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
using testing::Storage;
using testing::TempDir;

const std::string kCanary = "sk_live_CANARY_7f3a9c1e5b2d";
const std::string kCanaryUpdated = "sk_live_CANARY_7f3a_rotated_88e1";

std::int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RequestId(const Reply& reply) {
  const auto it = reply.headers.find("x-request-id");
  return it == reply.headers.end() ? "" : it->second;
}

// A JSON string member as an optional (null or absent = nullopt).
std::optional<std::string> Opt(const json& object, const std::string& name) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string Str(const json& object, const std::string& name) {
  return Opt(object, name).value_or("");
}

std::int64_t Int(const json& object, const std::string& name) {
  if (!object.is_object()) return -1;
  const auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer()) return -1;
  return it->get<std::int64_t>();
}

// The "code" of an error body {"error": {"code": ...}}.
std::string ErrorCodeOf(const Reply& reply) {
  if (!reply.json_body.is_object() || !reply.json_body.contains("error")) return "";
  return Str(reply.json_body["error"], "code");
}

// Runs `sql` (a script) on the database as a second writer, as an attacker or a fault would
// be (Python's sqlite3, waiting for the server's locks, or psql).
ProcessResult RunSql(const Storage& storage, const std::string& sql) {
  return testing::RunSqlOn(storage, sql);
}

// `bifrost audit verify --data DIR|--database URL [--file FILE] [--format json]`.
ProcessResult Verify(const std::string& secret_key, const Storage& storage,
                     const std::string& file = "", bool json_format = false) {
  std::vector<std::string> argv = {BifrostBinary(), "audit", "verify"};
  for (const std::string& arg : storage.Args()) argv.push_back(arg);
  if (!file.empty()) {
    argv.push_back("--file");
    argv.push_back(file);
  }
  if (json_format) {
    argv.push_back("--format");
    argv.push_back("json");
  }
  std::string key_env = "BIFROST_SECRET_KEY=";
  key_env += secret_key;
  return RunProcess(argv, "", {key_env});
}

// Every record matching `query` ("" or "a=b&c=d"), paged with limit/before, oldest first.
std::vector<json> ListAll(Api& api, const std::string& token, const std::string& query = "") {
  std::vector<json> records;
  std::optional<std::int64_t> before;
  for (int page = 0; page < 10'000; ++page) {
    std::string target = "/api/v1/audit?limit=1000";
    if (!query.empty()) {
      target += "&";
      target += query;
    }
    if (before) {
      target += "&before=";
      target += std::to_string(*before);
    }
    const Reply r = api.Call("GET", target, token);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    if (r.status != 200 || !r.json_body.is_object()) break;
    for (const auto& record : r.json_body["records"]) records.push_back(record);
    const json& next = r.json_body["next_before"];
    if (next.is_null()) break;
    EXPECT_TRUE(next.is_number_integer()) << r.body;
    if (!next.is_number_integer()) break;
    const auto next_seq = next.get<std::int64_t>();
    EXPECT_TRUE(!before || next_seq < *before) << "paging does not move back: " << r.body;
    if (before && next_seq >= *before) break;
    before = next_seq;
  }
  std::sort(records.begin(), records.end(), [](const json& a, const json& b) {
    return a["seq"].get<std::int64_t>() < b["seq"].get<std::int64_t>();
  });
  return records;
}

// The records of one page, newest first, as the server returned them.
std::vector<json> Page(Api& api, const std::string& token, const std::string& query,
                       int expected_status = 200) {
  std::string target = "/api/v1/audit";
  if (!query.empty()) {
    target += "?";
    target += query;
  }
  const Reply r = api.Call("GET", target, token);
  EXPECT_EQ(r.status, expected_status) << target << ": " << r.body;
  std::vector<json> out;
  if (r.status == 200 && r.json_body.is_object() && r.json_body["records"].is_array()) {
    for (const auto& record : r.json_body["records"]) out.push_back(record);
  }
  return out;
}

std::vector<std::int64_t> SeqsOf(const std::vector<json>& records) {
  std::vector<std::int64_t> seqs;
  for (const auto& r : records) seqs.push_back(r["seq"].get<std::int64_t>());
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// True when `text` names record `seq` ("record 17" not followed by another digit).
bool NamesRecord(const std::string& text, std::int64_t seq) {
  std::string needle = "record ";
  needle += std::to_string(seq);
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    const auto after = pos + needle.size();
    if (after == text.size() || text[after] < '0' || text[after] > '9') return true;
  }
  return false;
}

// Waits (bounded) until the server's log has an error line about the audit log.
bool LogHasAuditError(const testing::ServerProcess& server) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    std::istringstream lines(server.Stderr());
    std::string line;
    while (std::getline(lines, line)) {
      const json parsed = json::parse(line, nullptr, false);
      if (!parsed.is_object()) continue;
      if (Str(parsed, "level") == "error" &&
          Str(parsed, "msg").find("audit") != std::string::npos) {
        return true;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

json StatusOf(Api& api, const std::string& admin) {
  const Reply r = api.Call("GET", "/api/v1/audit/status", admin);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json_body;
}

// ---------------------------------------------------------------------------------------

// What one request must have left in the log.
struct Expected {
  std::string what;  // for messages
  std::string request_id;
  std::string action;
  std::string outcome;
  std::optional<std::string> org_id;
  std::optional<std::string> config_key;
  std::optional<std::string> actor_id;
  std::optional<std::string> actor_name;
  std::optional<std::string> detail;  // checked when set
};

TEST(AuditE2eTest, EveryActionProducesExactlyItsRecord) {
  TempDir tmp;
  const std::string audit_file = tmp.path() + "/audit.jsonl";
  testing::ServerProcess server(
      testing::ServerProcess::Options{.extra_args = {"--audit-file", audit_file}});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const Reply me = api.Call("GET", "/api/v1/whoami", admin);
  ASSERT_EQ(me.status, 200) << me.body;
  const std::string admin_id = Str(me.json_body, "token_id");
  const std::string admin_name = Str(me.json_body, "name");
  ASSERT_FALSE(admin_id.empty());

  std::vector<Expected> expected;
  std::vector<std::string> unrecorded = {RequestId(me)};  // allowed reads of non-secret data
  auto track = [&](const Reply& r, int status, Expected e) {
    EXPECT_EQ(r.status, status) << e.what << ": " << r.body;
    e.request_id = RequestId(r);
    EXPECT_FALSE(e.request_id.empty()) << e.what << " has no X-Request-Id";
    expected.push_back(std::move(e));
  };
  auto as_admin = [&](Expected e) {
    e.actor_id = admin_id;
    e.actor_name = admin_name;
    return e;
  };

  const std::int64_t t_start = NowMicros();
  Reply r = api.Call("POST", "/api/v1/orgs", admin, json{{"name", "Alpha"}});
  const std::string org_a = Str(r.json_body, "id");
  track(
      r, 201,
      as_admin(
          {.what = "org create A", .action = "org.create", .outcome = "success", .org_id = org_a}));
  r = api.Call("POST", "/api/v1/orgs", admin, json{{"name", "Beta"}});
  const std::string org_b = Str(r.json_body, "id");
  track(
      r, 201,
      as_admin(
          {.what = "org create B", .action = "org.create", .outcome = "success", .org_id = org_b}));
  ASSERT_FALSE(org_a.empty());
  ASSERT_FALSE(org_b.empty());
  const std::string a_configs = "/api/v1/orgs/" + org_a + "/configs";
  const std::string b_configs = "/api/v1/orgs/" + org_b + "/configs";

  r = api.Call("PUT", a_configs + "/api_key", admin, json{{"type", "secret"}, {"value", kCanary}});
  track(r, 201,
        as_admin({.what = "secret create",
                  .action = "config.create",
                  .outcome = "success",
                  .org_id = org_a,
                  .config_key = "api_key",
                  .detail = "version 1"}));
  r = api.Call("PUT", a_configs + "/api_key", admin,
               json{{"type", "secret"}, {"value", kCanaryUpdated}});
  track(r, 200,
        as_admin({.what = "secret update",
                  .action = "config.update",
                  .outcome = "success",
                  .org_id = org_a,
                  .config_key = "api_key",
                  .detail = "version 2"}));
  r = api.Call("PUT", a_configs + "/region", admin, json{{"type", "string"}, {"value", "eu-west"}});
  track(r, 201,
        as_admin({.what = "string create",
                  .action = "config.create",
                  .outcome = "success",
                  .org_id = org_a,
                  .config_key = "region",
                  .detail = "version 1"}));
  r = api.Call("PUT", b_configs + "/api_key", admin, json{{"type", "secret"}, {"value", kCanary}});
  track(r, 201,
        as_admin({.what = "secret create in B",
                  .action = "config.create",
                  .outcome = "success",
                  .org_id = org_b,
                  .config_key = "api_key",
                  .detail = "version 1"}));

  // Reads of non-secret data leave no record.
  for (const std::string& target : {a_configs + "/region", a_configs, a_configs + "/api_key",
                                    std::string("/api/v1/orgs"), std::string("/api/v1/tokens")}) {
    const Reply read = api.Call("GET", target, admin);
    EXPECT_EQ(read.status, 200) << target << ": " << read.body;
    EXPECT_EQ(read.body.find("CANARY"), std::string::npos) << read.body;
    unrecorded.push_back(RequestId(read));
  }

  r = api.Call("DELETE", a_configs + "/region", admin);
  track(r, 204,
        as_admin({.what = "delete",
                  .action = "config.delete",
                  .outcome = "success",
                  .org_id = org_a,
                  .config_key = "region"}));
  r = api.Call("GET", a_configs + "/api_key/reveal", admin);
  EXPECT_EQ(Str(r.json_body, "value"), kCanaryUpdated);
  track(r, 200,
        as_admin({.what = "reveal",
                  .action = "config.reveal",
                  .outcome = "success",
                  .org_id = org_a,
                  .config_key = "api_key"}));
  r = api.Call("GET", a_configs + "/no_such_key/reveal", admin);
  track(r, 404,
        as_admin({.what = "reveal of a missing key",
                  .action = "config.reveal",
                  .outcome = "error",
                  .org_id = org_a,
                  .config_key = "no_such_key",
                  .detail = "not_found"}));

  r = api.Call("POST", "/api/v1/tokens", admin,
               json{{"role", "member"}, {"org_id", org_a}, {"name", "alpha-member"}});
  const std::string member_id = Str(r.json_body, "id");
  const std::string member = Str(r.json_body, "token");
  track(r, 201,
        as_admin({.what = "token create",
                  .action = "token.create",
                  .outcome = "success",
                  .org_id = org_a,
                  .detail = "token " + member_id + " (member)"}));
  ASSERT_FALSE(member.empty());

  // A member of A reaching into B: denied, recorded under the attempted action. It is not
  // filed under B (B's admins must not see A's token names): the detail names the target.
  r = api.Call("GET", b_configs + "/api_key/reveal", member);
  EXPECT_EQ(r.body.find("CANARY"), std::string::npos);
  track(r, 403,
        {.what = "cross-org reveal",
         .action = "config.reveal",
         .outcome = "denied",
         .org_id = std::nullopt,
         .config_key = "api_key",
         .actor_id = member_id,
         .actor_name = "alpha-member",
         .detail = "permission_denied; target org " + org_b});
  // A member reading its own org's secret: allowed and recorded under A.
  r = api.Call("GET", a_configs + "/api_key/reveal", member);
  EXPECT_EQ(Str(r.json_body, "value"), kCanaryUpdated);
  track(r, 200,
        {.what = "member reveal",
         .action = "config.reveal",
         .outcome = "success",
         .org_id = org_a,
         .config_key = "api_key",
         .actor_id = member_id,
         .actor_name = "alpha-member"});
  // A credential pasted where a key or a token id belongs is recorded, but not in clear
  // (the scan of the stored log below checks that).
  r = api.Call("GET", a_configs + "/" + client::UrlEncode(member) + "/reveal", admin);
  EXPECT_GE(r.status, 400) << r.body;
  track(r, r.status,
        as_admin({.what = "token as a config key",
                  .action = "config.reveal",
                  .outcome = "error",
                  .org_id = org_a,
                  .config_key = "(withheld: looks like a token)"}));
  r = api.Call("DELETE", "/api/v1/tokens/" + client::UrlEncode(member), admin);
  EXPECT_GE(r.status, 400) << r.body;
  track(r, r.status,
        as_admin({.what = "token as a token id", .action = "token.revoke", .outcome = "error"}));
  // A bad write: the value is not an int.
  r = api.Call("PUT", a_configs + "/retries", admin, json{{"type", "int"}, {"value", "abc"}});
  track(r, 422,
        as_admin({.what = "bad write",
                  .action = "config.write",
                  .outcome = "error",
                  .org_id = org_a,
                  .config_key = "retries",
                  .detail = "invalid_argument"}));
  // A token that does not exist.
  const std::string bogus = "bft_bogus_0123456789abcdefghijklmnopqrstuv";
  r = api.Call("GET", "/api/v1/whoami", bogus);
  track(r, 401,
        {.what = "bogus token",
         .action = "auth.failure",
         .outcome = "denied",
         .detail = "invalid, expired or revoked token"});
  // The member token revoked: the record belongs to the token's organization, like the
  // token.create record of the same token (otherwise A's admin, who reads only A's records,
  // sees the token created but never revoked).
  r = api.Call("DELETE", "/api/v1/tokens/" + member_id, admin);
  track(r, 204,
        as_admin({.what = "token revoke",
                  .action = "token.revoke",
                  .outcome = "success",
                  .org_id = org_a,
                  .detail = "token " + member_id}));
  const std::int64_t t_end = NowMicros();

  // ---- The records, as the API lists them.
  const std::vector<json> records = ListAll(api, admin);
  ASSERT_FALSE(records.empty());
  std::map<std::string, std::vector<json>> by_request;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const json& rec = records[i];
    const auto seq = rec["seq"].get<std::int64_t>();
    EXPECT_EQ(seq, static_cast<std::int64_t>(i) + 1) << "seq is not 1, 2, 3, ...: " << rec.dump();
    if (i > 0) {
      EXPECT_EQ(Str(rec, "prev_mac"), Str(records[i - 1], "mac")) << rec.dump();
    }
    EXPECT_EQ(Str(rec, "mac").size(), 64u) << rec.dump();
    EXPECT_FALSE(Str(rec, "key_id").empty()) << rec.dump();
    const std::string request_id = Str(rec, "request_id");
    if (request_id.empty()) {
      // Only `bifrost init` records without a request.
      EXPECT_EQ(Str(rec, "action"), "token.create") << rec.dump();
      EXPECT_EQ(Str(rec, "actor_name"), "bootstrap") << rec.dump();
      continue;
    }
    by_request[request_id].push_back(rec);
    EXPECT_TRUE(Str(rec, "client_address").starts_with("127.0.0.1:")) << rec.dump();
    ASSERT_TRUE(rec["time_us"].is_number_integer()) << rec.dump();
    const auto time_us = rec["time_us"].get<std::int64_t>();
    EXPECT_GE(time_us, t_start) << rec.dump();
    EXPECT_LE(time_us, t_end) << rec.dump();
    EXPECT_TRUE(Str(rec, "time").ends_with("Z")) << rec.dump();
  }
  for (const Expected& e : expected) {
    const auto it = by_request.find(e.request_id);
    if (it == by_request.end()) {
      ADD_FAILURE() << e.what << ": no record with request id " << e.request_id;
      continue;
    }
    ASSERT_EQ(it->second.size(), 1u) << e.what << ": " << json(it->second).dump();
    const json& rec = it->second.front();
    EXPECT_EQ(Str(rec, "action"), e.action) << e.what << ": " << rec.dump();
    EXPECT_EQ(Str(rec, "outcome"), e.outcome) << e.what << ": " << rec.dump();
    EXPECT_EQ(Opt(rec, "org_id"), e.org_id) << e.what << ": " << rec.dump();
    EXPECT_EQ(Opt(rec, "config_key"), e.config_key) << e.what << ": " << rec.dump();
    EXPECT_EQ(Opt(rec, "actor_id"), e.actor_id) << e.what << ": " << rec.dump();
    EXPECT_EQ(Opt(rec, "actor_name"), e.actor_name) << e.what << ": " << rec.dump();
    EXPECT_TRUE(rec["execution_id"].is_null()) << e.what << ": " << rec.dump();
    if (e.detail) {
      EXPECT_EQ(Str(rec, "detail"), *e.detail) << e.what << ": " << rec.dump();
    }
  }
  EXPECT_EQ(by_request.size(), expected.size()) << "records of requests that should have none";
  for (const std::string& id : unrecorded) {
    EXPECT_FALSE(id.empty());
    EXPECT_EQ(by_request.count(id), 0u) << "a plain read was recorded: request " << id;
  }
  // The records are consecutive from the first request of this test to the last.
  EXPECT_EQ(records.back()["seq"].get<std::int64_t>(),
            static_cast<std::int64_t>(expected.size() + 1));

  // ---- The file sink holds exactly the records made since it was opened (all but init's).
  const std::vector<std::string> lines = ReadLines(audit_file);
  ASSERT_EQ(lines.size(), records.size() - 1) << testing::ReadFileOrEmpty(audit_file);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const json line = json::parse(lines[i], nullptr, false);
    ASSERT_TRUE(line.is_object()) << lines[i];
    EXPECT_EQ(line, records[i + 1]) << "file line " << i + 1 << " differs from the database";
  }

  // ---- No value and no token anywhere in the log's storage or its listing.
  const std::string stored =
      testing::StoredBytes(server.storage()) + testing::ReadFileOrEmpty(audit_file);
  ASSERT_FALSE(stored.empty());
  std::string listed;
  for (const auto& rec : records) listed += rec.dump();
  for (const std::string& needle : {kCanary, kCanaryUpdated, admin, member, bogus}) {
    EXPECT_EQ(stored.find(needle), std::string::npos) << "stored in clear: " << needle;
    EXPECT_EQ(listed.find(needle), std::string::npos) << "listed: " << needle;
  }
  EXPECT_EQ(listed.find("CANARY"), std::string::npos) << "listed: a canary";
  EXPECT_EQ(testing::StoredBytes(server.storage(), testing::StoredScope::kOwn).find("CANARY"),
            std::string::npos)
      << "stored in clear: a canary";

  // ---- The chain verifies, in the database and in the file.
  const ProcessResult verified = Verify(server.secret_key(), server.storage(), audit_file);
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("intact"), std::string::npos) << verified.out;
  const ProcessResult as_json = Verify(server.secret_key(), server.storage(), audit_file, true);
  EXPECT_EQ(as_json.exit_code, 0) << as_json.out << as_json.err;
  const json report = json::parse(as_json.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << as_json.out;
  EXPECT_EQ(report["ok"], true) << as_json.out;
  EXPECT_EQ(report["records"], records.size()) << as_json.out;
  EXPECT_EQ(report["last_seq"], records.back()["seq"]) << as_json.out;
  EXPECT_EQ(report["file"]["records"], lines.size()) << as_json.out;
}

// ---------------------------------------------------------------------------------------

TEST(AuditE2eTest, ListingAccessControl) {
  testing::ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org_a = CreateOrg(api, admin, "Alpha");
  const std::string org_b = CreateOrg(api, admin, "Beta");
  const MintedToken a_admin = MintToken(api, admin, "admin", org_a);
  const MintedToken a_member = MintToken(api, admin, "member", org_a);
  const MintedToken a_reader = MintToken(api, admin, "reader", org_a);
  const MintedToken b_member = MintToken(api, admin, "member", org_b);
  const std::string a_configs = "/api/v1/orgs/" + org_a + "/configs";
  const std::string b_configs = "/api/v1/orgs/" + org_b + "/configs";
  SetConfig(api, admin, "/api/v1/orgs/" + org_a, "api_key", "secret", kCanary);
  SetConfig(api, admin, "/api/v1/orgs/" + org_b, "api_key", "secret", kCanary);
  SetConfig(api, a_admin.token, "/api/v1/orgs/" + org_a, "region", "string", "eu-west");
  SetConfig(api, admin, "/api/v1/global", "shared", "string", "x");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(api.Call("GET", a_configs + "/api_key/reveal", a_member.token).status, 200);
  }
  EXPECT_EQ(api.Call("GET", b_configs + "/api_key/reveal", b_member.token).status, 200);
  EXPECT_EQ(api.Call("GET", a_configs + "/region/reveal", a_admin.token).status, 200);
  EXPECT_EQ(api.Call("GET", b_configs + "/api_key/reveal", a_member.token).status, 403);
  EXPECT_EQ(api.Call("GET", a_configs + "/api_key/reveal", a_reader.token).status, 403);

  // Member and reader may not read the log at all; an org admin not another org's.
  Page(api, a_member.token, "", 403);
  Page(api, a_reader.token, "", 403);
  Page(api, a_reader.token, "org_id=" + org_a, 403);
  Page(api, a_admin.token, "org_id=" + org_b, 403);
  EXPECT_EQ(api.Call("GET", "/api/v1/audit/status", a_admin.token).status, 403);

  // The platform admin sees everything: both orgs and the records of no org.
  const std::vector<json> all = ListAll(api, admin);
  std::set<std::string> orgs_seen;
  bool saw_no_org = false;
  for (const auto& rec : all) {
    if (const auto org = Opt(rec, "org_id")) {
      orgs_seen.insert(*org);
    } else {
      saw_no_org = true;
    }
  }
  EXPECT_TRUE(orgs_seen.count(org_a) == 1 && orgs_seen.count(org_b) == 1);
  EXPECT_TRUE(saw_no_org);
  auto matching = [&all](const std::function<bool(const json&)>& keep) {
    std::vector<json> out;
    for (const auto& rec : all) {
      if (keep(rec)) out.push_back(rec);
    }
    return SeqsOf(out);
  };
  const std::vector<std::int64_t> a_seqs =
      matching([&](const json& rec) { return Opt(rec, "org_id") == org_a; });
  ASSERT_FALSE(a_seqs.empty());

  // The org admin sees exactly A's records, with or without naming A.
  EXPECT_EQ(SeqsOf(ListAll(api, a_admin.token)), a_seqs);
  EXPECT_EQ(SeqsOf(ListAll(api, a_admin.token, "org_id=" + org_a)), a_seqs);
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "org_id=" + org_a)), a_seqs);

  // Filters, each checked against the full listing.
  const std::vector<std::int64_t> key_seqs =
      matching([](const json& rec) { return Opt(rec, "config_key") == "api_key"; });
  EXPECT_GE(key_seqs.size(), 6u);
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "key=api_key")), key_seqs);
  const std::vector<std::int64_t> reveal_seqs =
      matching([](const json& rec) { return Str(rec, "action") == "config.reveal"; });
  EXPECT_EQ(reveal_seqs.size(), 6u);
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "action=config.reveal")), reveal_seqs);
  const std::vector<std::int64_t> actor_seqs =
      matching([&](const json& rec) { return Opt(rec, "actor_id") == a_member.id; });
  EXPECT_GE(actor_seqs.size(), 3u);  // two reveals, one denied reveal, one denied listing...
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "actor=" + client::UrlEncode(a_member.id))), actor_seqs);
  const std::vector<std::int64_t> name_seqs =
      matching([](const json& rec) { return Opt(rec, "actor_name") == "member-token"; });
  EXPECT_GT(name_seqs.size(), actor_seqs.size());  // b_member shares the name
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "actor=member-token")), name_seqs);
  const std::vector<std::int64_t> denied_seqs =
      matching([](const json& rec) { return Str(rec, "outcome") == "denied"; });
  EXPECT_GE(denied_seqs.size(), 6u);
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "outcome=denied")), denied_seqs);
  const std::vector<std::int64_t> combined = matching([&](const json& rec) {
    return Opt(rec, "org_id") == org_a && Str(rec, "action") == "config.reveal" &&
           Str(rec, "outcome") == "success";
  });
  EXPECT_EQ(combined.size(), 3u);
  EXPECT_EQ(SeqsOf(ListAll(api, a_admin.token, "action=config.reveal&outcome=success")), combined);

  // since: from the time of a record in the middle.
  const json& middle = all[all.size() / 2];
  const auto middle_time = middle["time_us"].get<std::int64_t>();
  const std::vector<std::int64_t> since_seqs =
      matching([&](const json& rec) { return rec["time_us"].get<std::int64_t>() >= middle_time; });
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "since=" + client::UrlEncode(Str(middle, "time")))),
            since_seqs);
  EXPECT_EQ(SeqsOf(ListAll(api, admin, "since=2000-01-01")).size(), all.size());
  EXPECT_TRUE(Page(api, admin, "since=2999-01-01T00:00:00Z").empty());
  EXPECT_TRUE(Page(api, admin, "until=2000-01-01").empty());
  Page(api, admin, "since=yesterday", 400);
  Page(api, admin, "outcome=maybe", 400);
  Page(api, admin, "limit=0", 400);
  Page(api, admin, "colour=blue", 400);

  // Paging: limit and before walk the log newest first without gaps or repeats.
  std::vector<json> paged;
  std::string before;
  for (int i = 0; i < 100; ++i) {
    std::string target = "/api/v1/audit?limit=3";
    if (!before.empty()) target += "&before=" + before;
    const Reply page = api.Call("GET", target, admin);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_LE(page.json_body["records"].size(), 3u);
    for (const auto& rec : page.json_body["records"]) paged.push_back(rec);
    if (page.json_body["next_before"].is_null()) break;
    before = std::to_string(page.json_body["next_before"].get<std::int64_t>());
  }
  ASSERT_EQ(paged.size(), all.size());
  for (std::size_t i = 0; i < paged.size(); ++i) {
    EXPECT_EQ(paged[i], all[all.size() - 1 - i]) << "page order differs at " << i;
  }

  // The CLI, as A's admin.
  const ProcessResult listed = server.Cli(
      {"audit", "list", "--org", org_a, "--limit", "1000", "--format", "json"}, a_admin.token);
  ASSERT_EQ(listed.exit_code, 0) << listed.out << listed.err;
  const json cli_records = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(cli_records.is_array()) << listed.out;
  std::vector<json> cli_vector(cli_records.begin(), cli_records.end());
  EXPECT_EQ(SeqsOf(cli_vector), a_seqs);
  for (const auto& rec : cli_vector) EXPECT_EQ(Opt(rec, "org_id"), org_a) << rec.dump();
  const ProcessResult limited =
      server.Cli({"audit", "list", "--action", "config.reveal", "--limit", "2", "--format", "json"},
                 a_admin.token);
  ASSERT_EQ(limited.exit_code, 0) << limited.out << limited.err;
  const json two = json::parse(limited.out, nullptr, false);
  ASSERT_TRUE(two.is_array()) << limited.out;
  ASSERT_EQ(two.size(), 2u) << limited.out;
  const std::vector<json> newest = Page(api, a_admin.token, "action=config.reveal&limit=2");
  ASSERT_EQ(newest.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(two[i], newest[i]);
    EXPECT_EQ(Str(two[i], "action"), "config.reveal");
    EXPECT_EQ(Opt(two[i], "org_id"), org_a);
  }
  const ProcessResult refused = server.Cli({"audit", "list"}, a_member.token);
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  const ProcessResult table = server.Cli({"audit", "list", "--org", org_a}, a_admin.token);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("config.reveal"), std::string::npos) << table.out;
  for (const auto& out : {listed.out, limited.out, table.out}) {
    EXPECT_EQ(out.find("CANARY"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------

TEST(AuditE2eTest, FileSinkFailureFailsClosedAndRecovers) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  std::string admin;
  std::string org_a;
  {
    // Set up without a file sink, so that the data is there before the sink fails.
    testing::ServerProcess setup(On(storage));
    ASSERT_FALSE(setup.address().empty());
    Api api(setup.address());
    admin = setup.admin_token();
    org_a = CreateOrg(api, admin, "Alpha");
    SetConfig(api, admin, "/api/v1/orgs/" + org_a, "api_key", "secret", kCanary);
    SetConfig(api, admin, "/api/v1/orgs/" + org_a, "region", "string", "eu-west");
    ASSERT_EQ(setup.Stop(), 0);
  }
  const std::string sink = tmp.path() + "/sink";
  fs::create_symlink("/dev/full", sink);
  testing::ServerProcess server(On(storage, {.extra_args = {"--audit-file", sink}, .init = false}));
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string a_configs = "/api/v1/orgs/" + org_a + "/configs";

  // The record cannot be written: the reveal is refused, without the secret.
  const Reply refused = api.Call("GET", a_configs + "/api_key/reveal", admin);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.body.find("CANARY"), std::string::npos) << refused.body;
  EXPECT_EQ(ErrorCodeOf(refused), "unavailable") << refused.body;
  EXPECT_EQ(refused.headers.count("retry-after"), 1u);
  EXPECT_EQ(api.Call("GET", a_configs + "/api_key/reveal", admin).status, 503);  // still failing
  // Reads of non-secret data go on.
  const Reply plain = api.Call("GET", a_configs + "/region", admin);
  EXPECT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(Str(plain.json_body, "value"), "eu-west");
  const Reply list = api.Call("GET", a_configs, admin);
  EXPECT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.body.find("CANARY"), std::string::npos);

  const json broken = StatusOf(api, admin);
  EXPECT_EQ(broken["healthy"], false) << broken.dump();
  EXPECT_EQ(broken["file_sink"], true) << broken.dump();
  EXPECT_GE(broken["failed_records"].get<std::int64_t>(), 2) << broken.dump();
  EXPECT_TRUE(broken["last_error"].is_string()) << broken.dump();
  EXPECT_TRUE(LogHasAuditError(server)) << server.Stderr();

  // The sink works again (a new file renamed into place): the next reveal succeeds.
  const std::string real = tmp.path() + "/real.jsonl";
  WriteFile(real, "");
  fs::create_symlink(real, tmp.path() + "/sink.new");
  fs::rename(tmp.path() + "/sink.new", sink);
  const Reply revealed = api.Call("GET", a_configs + "/api_key/reveal", admin);
  EXPECT_EQ(revealed.status, 200) << revealed.body;
  EXPECT_EQ(Str(revealed.json_body, "value"), kCanary);
  const json healed = StatusOf(api, admin);
  EXPECT_EQ(healed["healthy"], true) << healed.dump();
  // The file was caught up from the database: it ends with the successful reveal's record.
  const std::vector<std::string> lines = ReadLines(real);
  ASSERT_FALSE(lines.empty());
  const json last = json::parse(lines.back(), nullptr, false);
  EXPECT_EQ(Str(last, "request_id"), RequestId(revealed)) << lines.back();
  EXPECT_EQ(Str(last, "outcome"), "success") << lines.back();

  const ProcessResult verified = Verify(server.secret_key(), storage, real);
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;

  EXPECT_EQ(server.Stop(), 0);
  const std::string logs = server.Stdout() + server.Stderr();
  EXPECT_EQ(logs.find("CANARY"), std::string::npos) << "a secret reached the server log";
  EXPECT_EQ(logs.find(admin), std::string::npos) << "a token reached the server log";
  EXPECT_EQ(testing::ReadFileOrEmpty(real).find("CANARY"), std::string::npos);
}

// ---------------------------------------------------------------------------------------

TEST(AuditE2eTest, DatabaseSinkFailureFailsClosedAndRecovers) {
  testing::ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org_a = CreateOrg(api, admin, "Alpha");
  const std::string a_configs = "/api/v1/orgs/" + org_a + "/configs";
  SetConfig(api, admin, "/api/v1/orgs/" + org_a, "api_key", "secret", kCanary);
  SetConfig(api, admin, "/api/v1/orgs/" + org_a, "region", "string", "eu-west");
  const Storage& db = server.storage();

  // A trigger that makes every insert into the log fail.
  const ProcessResult fault =
      db.postgresql() ? RunSql(db,
                               "CREATE FUNCTION audit_fault() RETURNS trigger LANGUAGE plpgsql AS "
                               "$$BEGIN RAISE EXCEPTION 'injected fault'; END$$;"
                               "CREATE TRIGGER audit_fault BEFORE INSERT ON audit_log "
                               "FOR EACH ROW EXECUTE FUNCTION audit_fault();")
                      : RunSql(db,
                               "CREATE TRIGGER audit_fault BEFORE INSERT ON audit_log "
                               "BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
  ASSERT_EQ(fault.exit_code, 0) << fault.out << fault.err;

  const Reply refused = api.Call("GET", a_configs + "/api_key/reveal", admin);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.body.find("CANARY"), std::string::npos) << refused.body;
  EXPECT_EQ(ErrorCodeOf(refused), "unavailable") << refused.body;
  EXPECT_EQ(refused.headers.count("retry-after"), 1u);
  const Reply plain = api.Call("GET", a_configs + "/region", admin);
  EXPECT_EQ(plain.status, 200) << plain.body;
  // A change whose record cannot be written is rolled back with it.
  const Reply write =
      api.Call("PUT", a_configs + "/region", admin, json{{"type", "string"}, {"value", "us-east"}});
  EXPECT_EQ(write.status, 503) << write.body;
  const Reply after = api.Call("GET", a_configs + "/region", admin);
  EXPECT_EQ(Str(after.json_body, "value"), "eu-west") << after.body;
  EXPECT_EQ(Int(after.json_body, "version"), 1) << after.body;
  const json broken = StatusOf(api, admin);
  EXPECT_EQ(broken["healthy"], false) << broken.dump();
  EXPECT_GE(broken["failed_records"].get<std::int64_t>(), 1) << broken.dump();
  EXPECT_TRUE(LogHasAuditError(server)) << server.Stderr();

  const ProcessResult repaired = RunSql(
      db, db.postgresql() ? "DROP TRIGGER audit_fault ON audit_log; DROP FUNCTION audit_fault();"
                          : "DROP TRIGGER audit_fault;");
  ASSERT_EQ(repaired.exit_code, 0) << repaired.out << repaired.err;
  const Reply revealed = api.Call("GET", a_configs + "/api_key/reveal", admin);
  EXPECT_EQ(revealed.status, 200) << revealed.body;
  EXPECT_EQ(Str(revealed.json_body, "value"), kCanary);
  const Reply rewritten =
      api.Call("PUT", a_configs + "/region", admin, json{{"type", "string"}, {"value", "us-east"}});
  EXPECT_EQ(rewritten.status, 200) << rewritten.body;
  EXPECT_EQ(Int(rewritten.json_body, "version"), 2) << rewritten.body;
  EXPECT_EQ(StatusOf(api, admin)["healthy"], true);

  // Neither the refused reveal nor the rolled-back write left a record; the later ones did.
  const std::vector<json> records = ListAll(api, admin);
  std::set<std::string> ids;
  for (const auto& rec : records) ids.insert(Str(rec, "request_id"));
  EXPECT_EQ(ids.count(RequestId(refused)), 0u);
  EXPECT_EQ(ids.count(RequestId(write)), 0u);
  EXPECT_EQ(ids.count(RequestId(revealed)), 1u);
  EXPECT_EQ(ids.count(RequestId(rewritten)), 1u);

  const ProcessResult verified = Verify(server.secret_key(), server.storage());
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_EQ(server.Stderr().find("CANARY"), std::string::npos);
}

// ---------------------------------------------------------------------------------------

// The name of the database a PostgreSQL URL names ("postgresql://u@host/NAME?...").
std::string DatabaseNameOf(const std::string& url) {
  const std::size_t scheme = url.find("://");
  const std::size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) return "";
  const std::size_t end = url.find('?', slash);
  return url.substr(slash + 1, end == std::string::npos ? std::string::npos : end - slash - 1);
}

// A copy of `storage`, which no process has open: its data directory copied under `dir`, or
// a new PostgreSQL database made from it as a template.
Storage CopyOf(const Storage& storage, const std::string& dir) {
  Storage copy;
  if (!storage.postgresql()) {
    copy.data_dir = dir + "/data";
    fs::copy(storage.data_dir, copy.data_dir, fs::copy_options::recursive);
    return copy;
  }
  static std::atomic<int> copies{0};
  std::string name = DatabaseNameOf(storage.database_url);
  name = name.substr(0, 50);
  name += "_c";
  name += std::to_string(copies.fetch_add(1));
  const std::string admin = testing::PostgresAdminUrl();
  EXPECT_FALSE(admin.empty()) << "no PostgreSQL test cluster";
  const ProcessResult made = testing::RunSqlOn(
      Storage{.database_url = admin},
      "CREATE DATABASE \"" + name + "\" TEMPLATE \"" + DatabaseNameOf(storage.database_url) + "\"");
  EXPECT_EQ(made.exit_code, 0) << made.err;
  copy.database_url = testing::WithDatabase(storage.database_url, name);
  copy.created = std::time(nullptr);
  return copy;
}

class AuditTamperE2eTest : public ::testing::Test {
 protected:
  // A copy of the stopped server's database and audit file, fresh for each tampering.
  struct Copy {
    std::unique_ptr<TempDir> dir;
    Storage storage;
    std::string file;
  };

  Copy Fresh() const {
    Copy copy{std::make_unique<TempDir>(), {}, ""};
    copy.storage = CopyOf(storage_, copy.dir->path());
    copy.file = copy.dir->path() + "/audit.jsonl";
    fs::copy_file(file_, copy.file);
    return copy;
  }

  // Runs `audit verify` (text and JSON) and expects exit 4 naming record `bad_seq` (in the
  // text too, when `text_names_record`), with a problem that mentions `words`.
  void ExpectBroken(const Copy& copy, bool with_file, std::int64_t bad_seq,
                    const std::string& words, bool text_names_record = true) const {
    const std::string file = with_file ? copy.file : "";
    const ProcessResult text = Verify(key_, copy.storage, file);
    EXPECT_EQ(text.exit_code, 4) << text.out << text.err;
    if (text_names_record) {
      EXPECT_TRUE(NamesRecord(text.out + text.err, bad_seq))
          << "does not name record " << bad_seq << ": " << text.out << text.err;
    }
    EXPECT_NE((text.out + text.err).find(words), std::string::npos) << text.out << text.err;
    const ProcessResult as_json = Verify(key_, copy.storage, file, true);
    EXPECT_EQ(as_json.exit_code, 4) << as_json.out << as_json.err;
    const json report = json::parse(as_json.out, nullptr, false);
    ASSERT_TRUE(report.is_object()) << as_json.out;
    EXPECT_EQ(report["ok"], false);
    EXPECT_EQ(report["bad_seq"], bad_seq) << as_json.out;
    EXPECT_NE(Str(report, "problem").find(words), std::string::npos) << as_json.out;
  }

  static void SetUpTestSuite() {
    dir_ = new TempDir();
    file_ = dir_->path() + "/audit.jsonl";
    storage_ = testing::NewStorage(dir_->path());
    testing::ServerProcess server(On(storage_, {.extra_args = {"--audit-file", file_}}));
    ASSERT_FALSE(server.address().empty());
    key_ = server.secret_key();
    Api api(server.address());
    const std::string admin = server.admin_token();
    const std::string org = CreateOrg(api, admin, "Alpha");
    for (int i = 0; i < 5; ++i) {
      SetConfig(api, admin, "/api/v1/orgs/" + org, "key" + std::to_string(i), "secret", kCanary);
    }
    for (int i = 0; i < 14; ++i) {
      std::string target = "/api/v1/orgs/" + org + "/configs/key";
      target += std::to_string(i % 5);
      target += "/reveal";
      EXPECT_EQ(api.Call("GET", target, admin).status, 200);
    }
    ASSERT_EQ(server.Stop(), 0);
    last_seq_ = static_cast<std::int64_t>(ReadLines(file_).size()) + 1;  // + init's record
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static inline TempDir* dir_ = nullptr;
  static inline Storage storage_;
  static inline std::string file_;
  static inline std::string key_;
  static inline std::int64_t last_seq_ = 0;
};

TEST_F(AuditTamperE2eTest, UntouchedCopyVerifies) {
  ASSERT_EQ(last_seq_, 21);  // init, org, 5 configs, 14 reveals
  const Copy copy = Fresh();
  const ProcessResult r = Verify(key_, copy.storage, copy.file, true);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const json report = json::parse(r.out, nullptr, false);
  EXPECT_EQ(report["ok"], true) << r.out;
  EXPECT_EQ(report["records"], last_seq_) << r.out;
  EXPECT_EQ(report["file"]["records"], last_seq_ - 1) << r.out;
}

TEST_F(AuditTamperE2eTest, AWrongKeyIsRefusedNotReportedAsTampering) {
  const Copy copy = Fresh();
  const std::string before = testing::StorageFingerprint(copy.storage);
  ASSERT_FALSE(before.empty());
  const ProcessResult wrong = Verify("another-secret-key-0123456789-abcdefgh", copy.storage);
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  EXPECT_NE(wrong.err.find("does not match this database"), std::string::npos) << wrong.err;
  EXPECT_TRUE(before == testing::StorageFingerprint(copy.storage))
      << "verify must not write to the database";
}

TEST_F(AuditTamperE2eTest, DeletedRowIsNamedMissing) {
  const Copy copy = Fresh();
  const ProcessResult r = RunSql(copy.storage, "DELETE FROM audit_log WHERE seq = 10;");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectBroken(copy, false, 10, "missing");
  // The file still has it: checked against the database, the gap shows too.
  const ProcessResult with_file = Verify(key_, copy.storage, copy.file);
  EXPECT_EQ(with_file.exit_code, 4) << with_file.out << with_file.err;
}

TEST_F(AuditTamperE2eTest, EditedFieldIsNamed) {
  {
    const Copy copy = Fresh();
    const ProcessResult r =
        RunSql(copy.storage, "UPDATE audit_log SET actor_name = 'someone-else' WHERE seq = 7;");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ExpectBroken(copy, false, 7, "changed");
  }
  {
    const Copy copy = Fresh();
    const ProcessResult r =
        RunSql(copy.storage, "UPDATE audit_log SET detail = 'x' WHERE seq = 12;");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ExpectBroken(copy, false, 12, "changed");
  }
}

TEST_F(AuditTamperE2eTest, SwappedRowsAreNamed) {
  const Copy copy = Fresh();
  const ProcessResult r = RunSql(copy.storage,
                                 "BEGIN;"
                                 "UPDATE audit_log SET seq = 1000000 WHERE seq = 5;"
                                 "UPDATE audit_log SET seq = 5 WHERE seq = 15;"
                                 "UPDATE audit_log SET seq = 15 WHERE seq = 1000000;"
                                 "COMMIT;");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectBroken(copy, false, 5, "record 5 ");
}

TEST_F(AuditTamperE2eTest, TruncatedFileEndsEarly) {
  const Copy copy = Fresh();
  std::vector<std::string> lines = ReadLines(copy.file);
  ASSERT_GT(lines.size(), 3u);
  lines.resize(lines.size() - 2);
  std::string content;
  for (const auto& line : lines) content += line + "\n";
  WriteFile(copy.file, content);
  // The database alone is intact; the file is not.
  const ProcessResult db_only = Verify(key_, copy.storage);
  EXPECT_EQ(db_only.exit_code, 0) << db_only.out << db_only.err;
  ExpectBroken(copy, true, last_seq_ - 1, "removed from the end of the file",
               /*text_names_record=*/false);
}

TEST_F(AuditTamperE2eTest, PartialLastLineIsReported) {
  const Copy copy = Fresh();
  const std::string content = testing::ReadFileOrEmpty(copy.file);
  ASSERT_FALSE(content.empty());
  const auto last_start = content.rfind('\n', content.size() - 2) + 1;
  const auto half = (content.size() - last_start) / 2;
  WriteFile(copy.file, content.substr(0, last_start + half));
  ExpectBroken(copy, true, last_seq_, "partial line", /*text_names_record=*/false);
}

TEST_F(AuditTamperE2eTest, EditedFileLineIsNamed) {
  const Copy copy = Fresh();
  std::vector<std::string> lines = ReadLines(copy.file);
  ASSERT_GT(lines.size(), 10u);
  json line = json::parse(lines[8]);  // record 10 (the file starts at record 2)
  ASSERT_EQ(line["seq"], 10);
  line["client_address"] = "10.0.0.1:1234";
  lines[8] = line.dump();
  std::string content;
  for (const auto& l : lines) content += l + "\n";
  WriteFile(copy.file, content);
  ExpectBroken(copy, true, 10, "changed");
}

// ---------------------------------------------------------------------------------------

TEST(AuditE2eTest, CrashLosesNoAcknowledgedReveal) {
  TempDir tmp;
  const Storage storage = testing::NewStorage(tmp.path());
  auto server = std::make_unique<testing::ServerProcess>(On(storage));
  ASSERT_FALSE(server->address().empty());
  const std::string admin = server->admin_token();
  std::vector<std::string> targets;
  std::vector<std::string> values;
  {
    Api api(server->address());
    const std::string org = CreateOrg(api, admin, "Alpha");
    for (int i = 0; i < 5; ++i) {
      std::string key = "secret_";
      key += std::to_string(i);
      std::string value = "crash-value-";
      value += std::to_string(i);
      SetConfig(api, admin, "/api/v1/orgs/" + org, key, "secret", value);
      targets.push_back("/api/v1/orgs/" + org + "/configs/" + key + "/reveal");
      values.push_back(value);
    }
  }

  constexpr int kThreads = 8;
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged{0};
  std::atomic<int> wrong{0};  // a status other than 200, or a 200 without its value
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  const std::string address = server->address();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client =
          client::HttpClient::Create({.address = address, .ca_file = "", .timeout_ms = 20'000});
      if (!client) {
        wrong.fetch_add(1);
        return;
      }
      for (std::size_t i = static_cast<std::size_t>(t); !stop.load(); ++i) {
        const std::size_t k = i % targets.size();
        auto result = (*client)->Send("GET", targets[k], std::nullopt, admin);
        if (!result) break;  // the server is gone
        const auto id = result->headers.find("x-request-id");
        if (result->status != 200 || id == result->headers.end() ||
            result->body.find(values[k]) == std::string::npos) {
          wrong.fetch_add(1);
          continue;
        }
        ids[static_cast<std::size_t>(t)].push_back(id->second);
        acknowledged.fetch_add(1);
      }
    });
  }
  // Let the load run for a while (at least 1.5 s and some acknowledged reveals), then crash.
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(1500) ||
         (acknowledged.load() == 0 &&
          std::chrono::steady_clock::now() - started < std::chrono::seconds(30))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server->Kill();
  stop.store(true);
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  std::vector<std::string> acked;
  for (const auto& list : ids) acked.insert(acked.end(), list.begin(), list.end());
  std::cout << "[ audit    ] reveals acknowledged before SIGKILL: " << acked.size() << "\n";
  ASSERT_GT(acked.size(), 0u);

  // The same database, restarted: every acknowledged reveal has its record.
  testing::ServerProcess restarted(On(storage, {.init = false}));
  ASSERT_FALSE(restarted.address().empty());
  Api api(restarted.address());
  std::set<std::string> recorded;
  for (const auto& rec : ListAll(api, admin, "action=config.reveal&outcome=success")) {
    recorded.insert(Str(rec, "request_id"));
  }
  std::size_t lost = 0;
  for (const auto& id : acked) {
    if (recorded.count(id) == 0) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "acknowledged reveals without a record, of " << acked.size();
  EXPECT_GE(recorded.size(), acked.size());
  const ProcessResult verified = Verify(restarted.secret_key(), storage);
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

// ---------------------------------------------------------------------------------------

// libfaketime (Debian package faketime, installed by `make deps`) moves the clock of the
// server it is preloaded into: records written "ten days ago" by the real binary.
constexpr const char* kFakeTimeLibrary = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

std::vector<std::string> TenDaysAgo() {
  // The sanitizer runtime must come first unless told otherwise; the steady clock stays
  // real so the server's timers behave.
  std::string asan = "ASAN_OPTIONS=verify_asan_link_order=0";
  if (const char* given = std::getenv("ASAN_OPTIONS"); given != nullptr && *given != '\0') {
    asan += ':';
    asan += given;
  }
  return {std::string("LD_PRELOAD=") + kFakeTimeLibrary, "FAKETIME=-10d",
          "FAKETIME_DONT_FAKE_MONOTONIC=1", asan};
}

TEST(AuditE2eTest, RetentionPrunesOldRecordsBehindASignedCheckpoint) {
  ASSERT_TRUE(fs::exists(kFakeTimeLibrary)) << "make deps installs the faketime package";
  testing::TempDir dir;
  const Storage storage = testing::NewStorage(dir.path());
  std::string admin;
  std::string key;
  {
    testing::ServerProcess::Options options = On(storage);
    options.extra_env = TenDaysAgo();
    options.init_env = TenDaysAgo();
    testing::ServerProcess past(options);
    ASSERT_FALSE(past.address().empty());
    admin = past.admin_token();
    key = past.secret_key();
    Api api(past.address());
    const std::string org = CreateOrg(api, admin, "Old Org");
    SetConfig(api, admin, "/api/v1/orgs/" + org, "old_secret", "secret", "sk_live_old_value");
    ASSERT_EQ(api.Call("GET", "/api/v1/orgs/" + org + "/configs/old_secret/reveal", admin).status,
              200);
    const std::vector<json> old = ListAll(api, admin);
    ASSERT_EQ(old.size(), 4u);  // init's token, the org, the secret, the reveal
    // Written ten days ago, as the server's clock saw it.
    for (const json& record : old) {
      EXPECT_LT(Int(record, "time_us"), NowMicros() - std::int64_t{9} * 86'400'000'000);
    }
    ASSERT_EQ(past.Stop(), 0);
  }

  testing::ServerProcess::Options options = On(storage);
  options.init = false;
  options.secret_key = key;
  options.extra_args = {"--audit-retention", "5"};
  testing::ServerProcess now(options);
  ASSERT_FALSE(now.address().empty());
  Api api(now.address());
  // Pruned at start: everything older than five days but the newest record (the reveal),
  // then the prune's own record.
  std::vector<json> kept;
  for (int i = 0; i < 500 && kept.size() != 2; ++i) {
    kept = ListAll(api, admin);
    if (kept.size() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(kept.size(), 2u) << now.Stderr();
  EXPECT_EQ(Int(kept[0], "seq"), 4);
  EXPECT_EQ(Str(kept[0], "action"), "config.reveal");
  EXPECT_EQ(Int(kept[1], "seq"), 5);
  EXPECT_EQ(Str(kept[1], "action"), "audit.prune");
  EXPECT_NE(Str(kept[1], "detail").find("3"), std::string::npos) << kept[1].dump();
  EXPECT_NE(now.Stderr().find("audit retention pruned"), std::string::npos) << now.Stderr();

  const ProcessResult intact = Verify(key, storage, "", /*json_format=*/true);
  EXPECT_EQ(intact.exit_code, 0) << intact.out << intact.err;
  const json report = json::parse(intact.out, nullptr, false);
  EXPECT_EQ(report["checkpoint"], true) << intact.out;
  EXPECT_EQ(report["first_seq"], 4) << intact.out;

  // Deleting more at the start than the checkpoint allows is caught.
  ASSERT_EQ(now.Stop(), 0);
  ASSERT_EQ(RunSql(storage, "DELETE FROM audit_log WHERE seq = 4;").exit_code, 0);
  const ProcessResult broken = Verify(key, storage, "", false);
  EXPECT_EQ(broken.exit_code, 4) << broken.out << broken.err;
  EXPECT_TRUE(NamesRecord(broken.out + broken.err, 4)) << broken.out << broken.err;
}

}  // namespace
}  // namespace bifrost::e2e
