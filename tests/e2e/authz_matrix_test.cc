// The authorization matrix, through the real binary: every route x every role x own org /
// other org / missing org / global, with the exact status, and no other org's data in any
// body an org token receives.
#include <set>

#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

enum Caller { kPlatformAdmin, kAdmin, kMember, kReader, kCallers };
const char* const kCallerNames[] = {"platform-admin", "admin", "member", "reader"};

// Where a route points: the caller's own org (A), another org (B), an org id that does not
// exist, or a route without an org.
enum Where { kOwn, kOther, kMissing, kNone };
const char* const kWhereNames[] = {"own org", "other org", "missing org", "no org"};

const std::string kMissingOrg = "00000000-0000-4000-8000-000000000000";

class AuthzMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(server_.address().empty());
    admin_ = server_.admin_token();
    org_a_ = CreateOrg(api_, admin_, "Alpha Org");
    org_b_ = CreateOrg(api_, admin_, "Beta Org");
    tokens_[kPlatformAdmin] = admin_;
    tokens_[kAdmin] = MintToken(api_, admin_, "admin", org_a_).token;
    tokens_[kMember] = MintToken(api_, admin_, "member", org_a_).token;
    tokens_[kReader] = MintToken(api_, admin_, "reader", org_a_).token;
    b_admin_ = MintToken(api_, admin_, "admin", org_b_);
    SetConfig(api_, admin_, "/api/v1/orgs/" + org_a_, "a_key", "secret", "alpha-secret-value");
    SetConfig(api_, admin_, "/api/v1/orgs/" + org_b_, "b_only_key", "secret", "beta-secret-value");
    SetConfig(api_, admin_, "/api/v1/global", "g_key", "string", "global-value");
  }

  std::string OrgFor(Where where) {
    switch (where) {
      case kOwn: return org_a_;
      case kOther: return org_b_;
      case kMissing: return kMissingOrg;
      case kNone: return "";
    }
    return "";
  }

  // Runs one request and checks its status; for org tokens, checks that nothing of org B
  // appears in the body.
  void Expect(Caller caller, Where where, const std::string& method, const std::string& target,
              int expected, std::optional<json> body = std::nullopt) {
    const Reply r = api_.Call(method, target, tokens_[caller], body);
    EXPECT_EQ(r.status, expected) << kCallerNames[caller] << " on " << kWhereNames[where] << ": "
                                  << method << " " << target << " -> " << r.body;
    if (caller != kPlatformAdmin) {
      for (const std::string& b_data :
           {org_b_, std::string("Beta Org"), std::string("b_only_key"),
            std::string("beta-secret-value"), b_admin_.id}) {
        EXPECT_EQ(r.body.find(b_data), std::string::npos)
            << kCallerNames[caller] << " saw org B data '" << b_data << "' in " << method << " "
            << target << ": " << r.body;
      }
    }
    ++checked_;
  }

  testing::ServerProcess server_;
  Api api_{server_.address()};
  std::string admin_, org_a_, org_b_;
  std::string tokens_[kCallers];
  MintedToken b_admin_;
  int checked_ = 0;
};

TEST_F(AuthzMatrixTest, EveryRouteEveryRole) {
  // Expected statuses per caller, for routes on an org: {own, other, missing}.
  struct OrgRoute {
    std::string method;
    std::string suffix;  // after /api/v1/orgs/{org}
    std::optional<json> body;
    int expect[kCallers][3];
  };
  const json write_body = {{"type", "string"}, {"value", "v"}};
  const std::vector<OrgRoute> org_routes = {
      {"GET", "", std::nullopt, {{200, 200, 404}, {200, 403, 403}, {200, 403, 403}, {200, 403, 403}}},
      {"GET", "/configs", std::nullopt,
       {{200, 200, 404}, {200, 403, 403}, {200, 403, 403}, {200, 403, 403}}},
      {"GET", "/configs/a_key", std::nullopt,
       {{200, 404, 404}, {200, 403, 403}, {200, 403, 403}, {200, 403, 403}}},
      {"GET", "/configs/g_key", std::nullopt,  // inherited from the global scope
       {{200, 200, 404}, {200, 403, 403}, {200, 403, 403}, {200, 403, 403}}},
      {"GET", "/configs/a_key/reveal", std::nullopt,
       {{200, 404, 404}, {200, 403, 403}, {200, 403, 403}, {403, 403, 403}}},
      {"PUT", "/configs/new_key", write_body,
       {{201, 201, 404}, {200, 403, 403}, {403, 403, 403}, {403, 403, 403}}},
  };
  for (const auto& route : org_routes) {
    for (int c = 0; c < kCallers; ++c) {
      for (Where where : {kOwn, kOther, kMissing}) {
        Expect(static_cast<Caller>(c), where, route.method,
               "/api/v1/orgs/" + OrgFor(where) + route.suffix, route.expect[c][where], route.body);
      }
    }
  }

  // Deleting config: each caller deletes a fresh entry, so a success does not change later cells.
  for (int c = 0; c < kCallers; ++c) {
    const int expect[kCallers][3] = {{204, 204, 404}, {204, 403, 403}, {403, 403, 403}, {403, 403, 403}};
    for (Where where : {kOwn, kOther, kMissing}) {
      if (where != kMissing) {
        SetConfig(api_, admin_, "/api/v1/orgs/" + OrgFor(where), "doomed", "string", "x");
      }
      Expect(static_cast<Caller>(c), where, "DELETE",
             "/api/v1/orgs/" + OrgFor(where) + "/configs/doomed", expect[c][where]);
    }
  }

  // Deleting organizations: only the platform admin, on a throwaway org.
  for (int c = 0; c < kCallers; ++c) {
    const std::string throwaway = CreateOrg(api_, admin_, std::string("Throwaway ") + kCallerNames[c]);
    Expect(static_cast<Caller>(c), kOther, "DELETE", "/api/v1/orgs/" + throwaway,
           c == kPlatformAdmin ? 204 : 403);
    Expect(static_cast<Caller>(c), kOwn, "DELETE", "/api/v1/orgs/" + org_a_ + "-not-an-id",
           c == kPlatformAdmin ? 404 : 403);
  }
  Expect(kAdmin, kOwn, "DELETE", "/api/v1/orgs/" + org_a_, 403);

  // Routes without an org: {platform-admin, admin, member, reader}.
  struct FlatRoute {
    std::string method;
    std::string target;
    std::optional<json> body;
    int expect[kCallers];
  };
  const std::vector<FlatRoute> flat_routes = {
      {"GET", "/api/v1/whoami", std::nullopt, {200, 200, 200, 200}},
      {"GET", "/api/v1/orgs", std::nullopt, {200, 200, 200, 200}},
      {"POST", "/api/v1/orgs", json{{"name", "Created In Matrix"}}, {201, 403, 403, 403}},
      {"GET", "/api/v1/global/configs", std::nullopt, {200, 403, 403, 403}},
      {"GET", "/api/v1/global/configs/g_key", std::nullopt, {200, 403, 403, 403}},
      {"GET", "/api/v1/global/configs/g_key/reveal", std::nullopt, {200, 403, 403, 403}},
      {"PUT", "/api/v1/global/configs/g_new", write_body, {201, 403, 403, 403}},
      {"DELETE", "/api/v1/global/configs/g_new", std::nullopt, {204, 403, 403, 403}},
      {"GET", "/api/v1/tokens", std::nullopt, {200, 200, 403, 403}},
      {"GET", "/api/v1/tokens?org_id=" + org_b_, std::nullopt, {200, 403, 403, 403}},
      {"POST", "/api/v1/tokens", json{{"role", "member"}, {"org_id", org_a_}}, {201, 201, 403, 403}},
      {"POST", "/api/v1/tokens", json{{"role", "member"}, {"org_id", org_b_}}, {201, 403, 403, 403}},
      {"POST", "/api/v1/tokens", json{{"role", "platform-admin"}}, {201, 403, 403, 403}},
      {"DELETE", "/api/v1/tokens/" + b_admin_.id, std::nullopt, {204, 403, 403, 403}},
  };
  for (int c = kCallers - 1; c >= 0; --c) {  // the platform admin last: it revokes b_admin
    for (const auto& route : flat_routes) {
      Expect(static_cast<Caller>(c), kNone, route.method, route.target, route.expect[c], route.body);
    }
  }

  // An org admin revokes a token of its own org; a member or reader cannot.
  const MintedToken victim = MintToken(api_, admin_, "reader", org_a_);
  Expect(kMember, kOwn, "DELETE", "/api/v1/tokens/" + victim.id, 403);
  Expect(kReader, kOwn, "DELETE", "/api/v1/tokens/" + victim.id, 403);
  Expect(kAdmin, kOwn, "DELETE", "/api/v1/tokens/" + victim.id, 204);
  EXPECT_EQ(api_.Call("GET", "/api/v1/whoami", victim.token).status, 401);

  // What an org token lists is its own org only.
  const Reply orgs = api_.Call("GET", "/api/v1/orgs", tokens_[kMember]);
  ASSERT_EQ(orgs.status, 200);
  ASSERT_EQ(orgs.json_body.size(), 1u);
  EXPECT_EQ(orgs.json_body[0]["id"], org_a_);
  EXPECT_GT(checked_, 150);
}

TEST_F(AuthzMatrixTest, NoTokenOrBadTokenIsTheSame401Everywhere) {
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/api/v1/whoami"},
      {"GET", "/api/v1/orgs"},
      {"POST", "/api/v1/orgs"},
      {"GET", "/api/v1/orgs/" + org_a_},
      {"DELETE", "/api/v1/orgs/" + org_a_},
      {"GET", "/api/v1/orgs/" + org_a_ + "/configs"},
      {"GET", "/api/v1/orgs/" + org_a_ + "/configs/a_key"},
      {"PUT", "/api/v1/orgs/" + org_a_ + "/configs/a_key"},
      {"DELETE", "/api/v1/orgs/" + org_a_ + "/configs/a_key"},
      {"GET", "/api/v1/orgs/" + org_a_ + "/configs/a_key/reveal"},
      {"GET", "/api/v1/global/configs"},
      {"GET", "/api/v1/global/configs/g_key"},
      {"PUT", "/api/v1/global/configs/g_key"},
      {"DELETE", "/api/v1/global/configs/g_key"},
      {"GET", "/api/v1/global/configs/g_key/reveal"},
      {"GET", "/api/v1/tokens"},
      {"POST", "/api/v1/tokens"},
      {"DELETE", "/api/v1/tokens/" + b_admin_.id},
  };
  // A revoked token and an expired-looking garbage token answer exactly like no token.
  const MintedToken revoked = MintToken(api_, admin_, "member", org_a_);
  ASSERT_EQ(api_.Call("DELETE", "/api/v1/tokens/" + revoked.id, admin_).status, 204);
  std::set<std::string> bodies;
  for (const std::string& token :
       {std::string(), std::string("bft_") + std::string(43, 'A'), std::string("not-a-token"),
        revoked.token}) {
    for (const auto& [method, target] : routes) {
      const Reply r = api_.Call(method, target, token, json::object());
      EXPECT_EQ(r.status, 401) << method << " " << target << " with '" << token.substr(0, 6) << "'";
      bodies.insert(r.json_body.is_object() ? r.json_body["error"].dump() : r.body);
    }
  }
  EXPECT_EQ(bodies.size(), 1u) << "401 responses differ, which tells a caller something";
  // Nothing was changed by the refused writes.
  const Reply a_key = api_.Call("GET", "/api/v1/orgs/" + org_a_ + "/configs/a_key", admin_);
  EXPECT_EQ(a_key.status, 200);
  EXPECT_EQ(a_key.json_body["version"], 1);
}

}  // namespace
}  // namespace bifrost::e2e
