// Tokens and authorization on a real SQLite store: the token format, hash-only storage, the
// one unauthenticated answer, throttled last-use writes, the complete Authorize matrix, and
// who may create, list and revoke which tokens.
#include "auth/auth.h"

#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "common/text.h"
#include "crypto/hash.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"

namespace bifrost::auth {
namespace {

constexpr UnixMicros kT0 = 1'700'000'000'000'000;
constexpr UnixMicros kSecond = 1'000'000;
constexpr std::string_view kUnauthenticatedMessage = "invalid, expired or revoked token";

const std::string kOrgA = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0001";
const std::string kOrgB = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0002";
const std::string kMissingOrg = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a00ff";

const std::regex kTokenPattern("^bft_[A-Za-z0-9_-]{43}$");

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(5000); }

  void TearDown() override {
    service_.reset();
    store_.reset();
  }

  // (Re)opens the store on the same directory with `busy_timeout_ms`, and a new service.
  void OpenStore(int busy_timeout_ms) {
    service_.reset();
    store_.reset();
    store::SqliteOptions options;
    options.data_dir = dir_.path() + "/data";
    options.clock = &clock_;
    options.busy_timeout_ms = busy_timeout_ms;
    auto opened = store::SqliteStore::Open(options);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    store_ = std::move(*opened);
    service_ = std::make_unique<TokenService>(*store_, clock_);
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn.has_value()) << txn.error().ToString();
    for (const auto& [id, name] : {std::pair{kOrgA, "acme"}, std::pair{kOrgB, "globex"}}) {
      auto existing = (*txn)->GetOrgById(id);
      ASSERT_TRUE(existing.has_value());
      if (!existing->has_value()) ASSERT_OK((*txn)->InsertOrg(store::OrgRow{id, name, kT0}));
    }
    ASSERT_OK((*txn)->Commit());
  }

  TokenService& service() { return *service_; }

  // Creates a token as the bootstrap (no creator); fails the test on error.
  CreatedToken MustCreate(Role role, std::optional<std::string> org_id, std::string name = "",
                          std::optional<std::int64_t> ttl_seconds = std::nullopt) {
    auto created =
        service().Create(NewToken{std::move(name), role, std::move(org_id), ttl_seconds}, nullptr);
    EXPECT_TRUE(created.has_value()) << created.error().ToString();
    if (!created) return CreatedToken{};
    return std::move(*created);
  }

  // A token of `role` and its authenticated principal.
  Principal MustPrincipal(Role role, std::optional<std::string> org_id) {
    CreatedToken created = MustCreate(role, std::move(org_id));
    auto principal = service().Authenticate(created.token.view());
    EXPECT_TRUE(principal.has_value()) << principal.error().ToString();
    return principal ? *principal : Principal{};
  }

  std::optional<store::TokenRow> StoredRow(const std::string& id) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn.has_value()) << txn.error().ToString();
    if (!txn) return std::nullopt;
    auto row = (*txn)->GetTokenById(id);
    EXPECT_TRUE(row.has_value()) << row.error().ToString();
    return row ? *row : std::nullopt;
  }

  std::size_t TokenCount() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn.has_value());
    auto rows = (*txn)->ListTokens(std::nullopt);
    EXPECT_TRUE(rows.has_value());
    return rows ? rows->size() : 0;
  }

  bifrost::testing::TempDir dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<TokenService> service_;
};

std::vector<std::string> Ids(const std::vector<store::TokenRow>& rows) {
  std::vector<std::string> ids;
  for (const auto& row : rows) ids.push_back(row.id);
  return ids;
}

// ---- Roles and principals

TEST(RoleTest, NamesRoundTripAndNothingElseParses) {
  const std::map<std::string, Role> expected = {{"platform-admin", Role::kPlatformAdmin},
                                                {"admin", Role::kAdmin},
                                                {"member", Role::kMember},
                                                {"reader", Role::kReader}};
  for (const auto& [name, role] : expected) {
    EXPECT_EQ(RoleName(role), name);
    auto parsed = ParseRole(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(*parsed, role);
  }
  for (const char* bad : {"", "Admin", "owner", "platform_admin", " admin", "admin\n"}) {
    auto parsed = ParseRole(bad);
    ASSERT_FALSE(parsed.has_value()) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message().find("platform-admin, admin, member and reader"),
              std::string::npos)
        << parsed.error().message();
  }
}

TEST(PrincipalTest, ActorIsTokenNameSlashId) {
  Principal p{"6f1c2a7e-1111-4222-8333-944455556666", "deploy bot", Role::kMember, kOrgA};
  EXPECT_EQ(p.Actor(), "token:deploy bot/6f1c2a7e-1111-4222-8333-944455556666");
}

// ---- Token format and storage

TEST_F(AuthTest, TokensHaveTheDocumentedFormatAndAreUnique) {
  std::set<std::string> tokens, ids, hashes, names;
  for (int i = 0; i < 50; ++i) {
    CreatedToken created = MustCreate(Role::kMember, kOrgA);
    const std::string text(created.token.view());
    EXPECT_EQ(text.size(), 47u);
    EXPECT_TRUE(std::regex_match(text, kTokenPattern)) << "token " << i << " has a bad shape";
    // 43 unpadded base64url characters are exactly 32 bytes.
    auto decoded = Base64UrlDecode(text.substr(4) + "=");
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->size(), 32u);
    EXPECT_TRUE(IsCanonicalUuid(created.row.id)) << created.row.id;
    EXPECT_EQ(created.row.name, "token-" + created.row.id.substr(0, 8));
    tokens.insert(text);
    ids.insert(created.row.id);
    hashes.insert(created.row.hash);
    names.insert(created.row.name);
  }
  EXPECT_EQ(tokens.size(), 50u);
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(hashes.size(), 50u);
  EXPECT_EQ(TokenCount(), 50u);
}

TEST_F(AuthTest, OnlyTheHashIsStored) {
  CreatedToken created = MustCreate(Role::kAdmin, kOrgA, "ops", 3600);
  const std::string text(created.token.view());
  const std::string random_part = text.substr(4);

  std::optional<store::TokenRow> row = StoredRow(created.row.id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->hash, crypto::Sha256Hex(text));
  EXPECT_EQ(row->hash.size(), 64u);
  EXPECT_EQ(row->id, created.row.id);
  EXPECT_EQ(row->name, "ops");
  EXPECT_EQ(row->org_id, std::optional<std::string>(kOrgA));
  EXPECT_EQ(row->role, "admin");
  EXPECT_EQ(row->created_at, kT0);
  EXPECT_EQ(row->created_by, "bootstrap");
  EXPECT_EQ(row->expires_at, std::optional<UnixMicros>(kT0 + 3600 * kSecond));
  EXPECT_EQ(row->last_used_at, std::nullopt);
  EXPECT_EQ(row->revoked_at, std::nullopt);
  // The row handed back at creation is the stored one.
  EXPECT_EQ(created.row.hash, row->hash);
  EXPECT_EQ(created.row.expires_at, row->expires_at);

  for (const std::string* field :
       {&row->id, &row->name, &row->role, &row->hash, &row->created_by, &*row->org_id}) {
    EXPECT_EQ(field->find(random_part), std::string::npos) << *field;
    EXPECT_EQ(field->find(random_part.substr(0, 16)), std::string::npos) << *field;
  }

  // Nor is it anywhere in the database files, where the hash is (so the scan would see it).
  std::string files;
  for (const char* suffix : {"", "-wal"}) {
    files += bifrost::testing::ReadFileOrEmpty(store_->database_path() + suffix);
  }
  ASSERT_FALSE(files.empty());
  EXPECT_NE(files.find(row->hash), std::string::npos);
  EXPECT_EQ(files.find(random_part), std::string::npos);
}

// ---- Authentication

TEST_F(AuthTest, AuthenticateReturnsThePrincipal) {
  CreatedToken member = MustCreate(Role::kMember, kOrgA, "ci");
  ASSERT_OK_AND_ASSIGN(Principal p, service().Authenticate(member.token.view()));
  EXPECT_EQ(p.token_id, member.row.id);
  EXPECT_EQ(p.token_name, "ci");
  EXPECT_EQ(p.role, Role::kMember);
  EXPECT_EQ(p.org_id, std::optional<std::string>(kOrgA));
  EXPECT_EQ(p.Actor(), "token:ci/" + member.row.id);

  CreatedToken root = MustCreate(Role::kPlatformAdmin, std::nullopt, "root");
  ASSERT_OK_AND_ASSIGN(Principal admin, service().Authenticate(root.token.view()));
  EXPECT_EQ(admin.token_id, root.row.id);
  EXPECT_EQ(admin.role, Role::kPlatformAdmin);
  EXPECT_EQ(admin.org_id, std::nullopt);
}

TEST_F(AuthTest, UnknownExpiredRevokedAndMalformedTokensGetTheSameError) {
  CreatedToken live = MustCreate(Role::kReader, kOrgA);
  CreatedToken expiring = MustCreate(Role::kReader, kOrgA, "short", 60);
  CreatedToken revoked = MustCreate(Role::kReader, kOrgA);
  const std::string live_text(live.token.view());

  ASSERT_OK(service().Authenticate(expiring.token.view()));
  ASSERT_OK(service().Authenticate(revoked.token.view()));
  const Principal root = MustPrincipal(Role::kPlatformAdmin, std::nullopt);
  ASSERT_OK(service().Revoke(root, revoked.row.id));

  // One second before expiry it still works; at expires_at it does not.
  clock_.AdvanceMicros(59 * kSecond);
  ASSERT_OK(service().Authenticate(expiring.token.view()));
  clock_.AdvanceMicros(kSecond);

  // A well-formed token nobody issued: the live one with its last character changed.
  std::string unknown = live_text;
  unknown.back() = unknown.back() == 'A' ? 'B' : 'A';

  const std::vector<std::string> rejected = {
      unknown,
      std::string(expiring.token.view()),
      std::string(revoked.token.view()),
      "",
      "bft_",
      live_text.substr(0, 46),                               // 42 characters after the prefix
      live_text + "A",                                       // 44
      live_text + "=",                                       // padded
      "Bearer " + live_text,                                 // header prefix not stripped
      "BFT_" + live_text.substr(4),                          // prefix is case-sensitive
      "bfx_" + live_text.substr(4),                          // other prefix
      live_text.substr(0, 20) + "+" + live_text.substr(21),  // standard base64 alphabet
      live_text.substr(0, 20) + "/" + live_text.substr(21),
      live_text.substr(0, 20) + " " + live_text.substr(21),
      live_text.substr(0, 46) + "\n",
      live_text.substr(0, 20) + std::string(1, '\0') + live_text.substr(21),
      crypto::Sha256Hex(live_text),  // the stored hash is not a credential
  };
  for (std::size_t i = 0; i < rejected.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    auto result = service().Authenticate(rejected[i]);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code(), ErrorCode::kUnauthenticated);
    EXPECT_EQ(result.error().message(), kUnauthenticatedMessage);
  }
  // The live token still works after all that.
  ASSERT_OK_AND_ASSIGN(Principal p, service().Authenticate(live_text));
  EXPECT_EQ(p.token_id, live.row.id);
}

TEST_F(AuthTest, LastUsedIsWrittenAtMostOncePerMinutePerToken) {
  CreatedToken one = MustCreate(Role::kMember, kOrgA);
  CreatedToken two = MustCreate(Role::kMember, kOrgA);
  auto last_used = [&](const CreatedToken& t) { return StoredRow(t.row.id)->last_used_at; };
  using Micros = std::optional<UnixMicros>;
  EXPECT_EQ(last_used(one), std::nullopt);

  ASSERT_OK(service().Authenticate(one.token.view()));
  EXPECT_EQ(last_used(one), Micros(kT0));
  EXPECT_EQ(last_used(two), std::nullopt);

  clock_.Set(kT0 + 30 * kSecond);
  ASSERT_OK(service().Authenticate(one.token.view()));
  EXPECT_EQ(last_used(one), Micros(kT0));  // throttled
  ASSERT_OK(service().Authenticate(two.token.view()));
  EXPECT_EQ(last_used(two), Micros(kT0 + 30 * kSecond));  // per token, not global

  clock_.Set(kT0 + 60 * kSecond - 1);
  ASSERT_OK(service().Authenticate(one.token.view()));
  EXPECT_EQ(last_used(one), Micros(kT0));
  clock_.Set(kT0 + 60 * kSecond);
  ASSERT_OK(service().Authenticate(one.token.view()));
  EXPECT_EQ(last_used(one), Micros(kT0 + 60 * kSecond));

  // A new service (a restart) honours the stored time rather than writing at once.
  service_ = std::make_unique<TokenService>(*store_, clock_);
  clock_.Set(kT0 + 100 * kSecond);
  ASSERT_OK(service().Authenticate(one.token.view()));
  EXPECT_EQ(last_used(one), Micros(kT0 + 60 * kSecond));
  clock_.Set(kT0 + 120 * kSecond);
  ASSERT_OK(service().Authenticate(one.token.view()));
  EXPECT_EQ(last_used(one), Micros(kT0 + 120 * kSecond));
}

TEST_F(AuthTest, FailureToRecordLastUseDoesNotFailAuthenticationAndIsRetried) {
  OpenStore(0);  // no waiting for the writer
  CreatedToken token = MustCreate(Role::kReader, kOrgA);
  {
    // The writer slot is taken (another request's write transaction).
    ASSERT_OK_AND_ASSIGN(auto writer, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(Principal p, service().Authenticate(token.token.view()));
    EXPECT_EQ(p.token_id, token.row.id);
  }
  EXPECT_EQ(StoredRow(token.row.id)->last_used_at, std::nullopt);
  // The failed write did not count: the next request writes, even within the minute.
  clock_.AdvanceMicros(kSecond);
  ASSERT_OK(service().Authenticate(token.token.view()));
  EXPECT_EQ(StoredRow(token.row.id)->last_used_at, std::optional<UnixMicros>(kT0 + kSecond));
}

// ---- Authorization

// Every cell: role x action x target. 'Y' allowed, 'N' denied; targets in the order
// platform, global scope, own org (kOrgA), another org (kOrgB).
TEST(AuthorizeTest, FullMatrix) {
  const std::array<Action, 14> actions = {
      Action::kOrgCreate,     Action::kOrgList,        Action::kOrgRead,
      Action::kOrgDelete,     Action::kConfigRead,     Action::kConfigReveal,
      Action::kConfigWrite,   Action::kTokenManage,    Action::kAuditRead,
      Action::kWorkflowList,  Action::kWorkflowReload, Action::kWorkflowRun,
      Action::kExecutionRead, Action::kExecutionCancel};
  const std::array<const char*, 14> action_names = {
      "org-create",      "org-list",     "org-read",       "org-delete",      "config-read",
      "config-reveal",   "config-write", "token-manage",   "audit-read",      "workflow-list",
      "workflow-reload", "workflow-run", "execution-read", "execution-cancel"};
  const std::array<const char*, 14> action_texts = {
      "create organizations", "list organizations", "read organizations", "delete organizations",
      "read config",          "reveal secrets",     "write config",       "manage tokens",
      "read the audit log",   "list workflows",     "reload workflows",   "run workflows",
      "read executions",      "cancel executions"};
  const std::array<Target, 4> targets = {Target::Platform(), Target::Global(), Target::Org(kOrgA),
                                         Target::Org(kOrgB)};
  const std::array<const char*, 4> target_names = {"platform", "global", "own org", "other org"};

  struct Row {
    Role role;
    std::array<const char*, 14> cells;  // per action, 4 characters per target
  };
  // clang-format off
  const std::array<Row, 5> expected = {{
      //                       create  list    read    delete  c-read  reveal  write   tokens  audit   wf-list reload  run     ex-read cancel
      {Role::kPlatformAdmin, {"YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY", "YYYY"}},
      {Role::kAdmin,         {"NNNN", "YNYN", "NNYN", "NNNN", "NNYN", "NNYN", "NNYN", "NNYN", "NNYN", "YNYN", "NNNN", "NNYN", "NNYN", "NNYN"}},
      {Role::kMember,        {"NNNN", "YNYN", "NNYN", "NNNN", "NNYN", "NNYN", "NNNN", "NNNN", "NNNN", "YNYN", "NNNN", "NNYN", "NNYN", "NNYN"}},
      {Role::kReader,        {"NNNN", "YNYN", "NNYN", "NNNN", "NNYN", "NNNN", "NNNN", "NNNN", "NNNN", "YNYN", "NNNN", "NNNN", "NNYN", "NNNN"}},
      // An execution token: its own organization's config, and nothing else at all.
      {Role::kWorkflow,      {"NNNN", "NNNN", "NNNN", "NNNN", "NNYN", "NNYN", "NNYN", "NNNN", "NNNN", "NNNN", "NNNN", "NNNN", "NNNN", "NNNN"}},
  }};
  // clang-format on

  int cells = 0, allowed = 0;
  for (const Row& row : expected) {
    Principal principal{"6f1c2a7e-1111-4222-8333-944455556666", "t", row.role, std::nullopt};
    if (row.role != Role::kPlatformAdmin) principal.org_id = kOrgA;
    principal.execution_may_write = true;  // an admin's execution (see the test below)
    for (std::size_t a = 0; a < actions.size(); ++a) {
      for (std::size_t t = 0; t < targets.size(); ++t) {
        ++cells;
        SCOPED_TRACE(std::string(RoleName(row.role)) + " " + action_names[a] + " on " +
                     target_names[t]);
        const bool want = row.cells[a][t] == 'Y';
        const Status got = Authorize(principal, actions[a], targets[t]);
        ASSERT_EQ(got.has_value(), want) << (got ? "allowed" : got.error().ToString());
        if (want) {
          ++allowed;
          continue;
        }
        EXPECT_EQ(got.error().code(), ErrorCode::kPermissionDenied);
        const std::string& message = got.error().message();
        // Names the caller's role and the action ...
        EXPECT_NE(message.find("role '" + std::string(RoleName(row.role)) + "'"), std::string::npos)
            << message;
        EXPECT_NE(message.find(action_texts[a]), std::string::npos) << message;
        // ... and nothing of another organization.
        EXPECT_EQ(message.find(kOrgB), std::string::npos) << message;
      }
    }
  }
  EXPECT_EQ(cells, 5 * 14 * 4);
  EXPECT_EQ(allowed, 56 + 13 + 10 + 7 + 3);
}

TEST_F(AuthTest, ExecutionTokensLiveInMemoryForOneExecutionOfOneOrg) {
  ExecutionTokens registry(clock_);
  const ExecutionTokens::Grant grant{.execution_id = "7d0e6f1a-0000-4000-8000-000000000001",
                                     .workflow = "call_api",
                                     .org_id = kOrgA,
                                     .expires_at = kT0 + 60 * kSecond,
                                     .may_write = true};
  ASSERT_OK_AND_ASSIGN(crypto::SecureBuffer token, registry.Issue(grant));
  EXPECT_TRUE(std::regex_match(std::string(token.view()), std::regex("^bfx_[A-Za-z0-9_-]{43}$")));
  EXPECT_ERROR_CODE(registry.Issue(grant), ErrorCode::kAlreadyExists);

  // Not accepted by a service that was not told about the registry.
  EXPECT_ERROR_CODE(service().Authenticate(token.view()), ErrorCode::kUnauthenticated);
  service().AcceptExecutionTokens(&registry);
  ASSERT_OK_AND_ASSIGN(Principal principal, service().Authenticate(token.view()));
  EXPECT_EQ(principal.role, Role::kWorkflow);
  EXPECT_EQ(principal.org_id, kOrgA);
  EXPECT_EQ(principal.execution_id, grant.execution_id);
  EXPECT_TRUE(principal.execution_may_write);
  EXPECT_EQ(principal.token_id, grant.execution_id);
  EXPECT_EQ(principal.Actor(), "workflow:call_api/" + grant.execution_id);
  EXPECT_EQ(TokenCount(), 0u) << "execution tokens are never stored";

  // A token of another shape, or one character off, is nobody.
  std::string changed(token.view());
  changed.back() = changed.back() == 'A' ? 'B' : 'A';
  EXPECT_ERROR_CODE(service().Authenticate(changed), ErrorCode::kUnauthenticated);
  EXPECT_ERROR_CODE(service().Authenticate("bfx_short"), ErrorCode::kUnauthenticated);

  // Revoked when the execution ends.
  registry.Revoke(grant.execution_id);
  EXPECT_EQ(registry.size(), 0u);
  EXPECT_ERROR_CODE(service().Authenticate(token.view()), ErrorCode::kUnauthenticated);

  // And dead at its expiry even if nobody revoked it.
  ExecutionTokens::Grant second = grant;
  second.execution_id = "7d0e6f1a-0000-4000-8000-000000000002";
  ASSERT_OK_AND_ASSIGN(crypto::SecureBuffer other, registry.Issue(second));
  service().AcceptExecutionTokens(&registry);
  ASSERT_OK(service().Authenticate(other.view()));
  clock_.AdvanceMicros(60 * kSecond);
  EXPECT_ERROR_CODE(service().Authenticate(other.view()), ErrorCode::kUnauthenticated);
}

TEST(AuthorizeTest, AnExecutionWritesOnlyWhenWhoeverStartedItMay) {
  Principal execution{"7d0e6f1a-0000-4000-8000-000000000001", "workflow:w", Role::kWorkflow, kOrgA};
  execution.execution_id = execution.token_id;
  EXPECT_TRUE(Authorize(execution, Action::kConfigReveal, Target::Org(kOrgA)));
  const Status denied = Authorize(execution, Action::kConfigWrite, Target::Org(kOrgA));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(denied.error().message().find("whoever started"), std::string::npos);
  execution.execution_may_write = true;
  EXPECT_TRUE(Authorize(execution, Action::kConfigWrite, Target::Org(kOrgA)));
}

TEST_F(AuthTest, NoStoredTokenHasTheWorkflowRole) {
  EXPECT_ERROR_CODE(ParseRole("workflow"), ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(service().Create(NewToken{"", Role::kWorkflow, kOrgA, std::nullopt}, nullptr),
                    ErrorCode::kInvalidArgument);
  EXPECT_EQ(TokenCount(), 0u);
}

TEST(AuthorizeTest, DenialMessagesSayWhy) {
  const Principal member{"id-1", "t", Role::kMember, kOrgA};
  const Principal reader{"id-2", "t", Role::kReader, kOrgA};
  auto message = [](const Principal& p, Action action, const Target& target) {
    Status s = Authorize(p, action, target);
    return s ? std::string("allowed") : s.error().message();
  };
  EXPECT_EQ(message(member, Action::kConfigReveal, Target::Org(kOrgB)),
            "this token's role 'member' may not reveal secrets of another organization");
  EXPECT_EQ(message(reader, Action::kConfigReveal, Target::Org(kOrgA)),
            "this token's role 'reader' may not reveal secrets (needs member or above)");
  EXPECT_EQ(message(member, Action::kOrgCreate, Target::Platform()),
            "this token's role 'member' may not create organizations (platform-admin only)");
  EXPECT_EQ(message(member, Action::kConfigRead, Target::Global()),
            "this token's role 'member' may not read config in the global scope directly; "
            "organization tokens see global entries through their organization");
}

TEST(AuthorizeTest, OrgRoleWithoutAnOrgGetsNothingOrgScoped) {
  const Principal broken{"id", "t", Role::kAdmin, std::nullopt};
  EXPECT_ERROR_CODE(Authorize(broken, Action::kConfigRead, Target::Org(kOrgA)),
                    ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(Authorize(broken, Action::kConfigRead, Target::Org("")),
                    ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(Authorize(broken, Action::kTokenManage, Target::Platform()),
                    ErrorCode::kPermissionDenied);
}

// ---- Creation rules

TEST_F(AuthTest, BootstrapAndPlatformAdminMayCreateAnything) {
  CreatedToken root = MustCreate(Role::kPlatformAdmin, std::nullopt, "root");
  EXPECT_EQ(root.row.created_by, "bootstrap");
  EXPECT_EQ(root.row.org_id, std::nullopt);
  ASSERT_OK_AND_ASSIGN(Principal admin, service().Authenticate(root.token.view()));

  clock_.AdvanceMicros(kSecond);
  for (const auto& [role, org] : std::vector<std::pair<Role, std::optional<std::string>>>{
           {Role::kPlatformAdmin, std::nullopt},
           {Role::kAdmin, kOrgA},
           {Role::kMember, kOrgB},
           {Role::kReader, kOrgB}}) {
    SCOPED_TRACE(std::string(RoleName(role)));
    ASSERT_OK_AND_ASSIGN(CreatedToken t, service().Create(NewToken{"", role, org, {}}, &admin));
    EXPECT_EQ(t.row.role, RoleName(role));
    EXPECT_EQ(t.row.org_id, org);
    EXPECT_EQ(t.row.created_by, "token:root/" + root.row.id);
    EXPECT_EQ(t.row.created_at, kT0 + kSecond);
    ASSERT_OK_AND_ASSIGN(Principal p, service().Authenticate(t.token.view()));
    EXPECT_EQ(p.role, role);
    EXPECT_EQ(p.org_id, org);
  }
  EXPECT_EQ(TokenCount(), 5u);
}

TEST_F(AuthTest, OrgAdminCreatesOnlyOrgTokensOfItsOwnOrg) {
  const Principal admin = MustPrincipal(Role::kAdmin, kOrgA);
  for (Role role : {Role::kAdmin, Role::kMember, Role::kReader}) {
    ASSERT_OK_AND_ASSIGN(CreatedToken t,
                         service().Create(NewToken{"mine", role, kOrgA, 60}, &admin));
    EXPECT_EQ(t.row.org_id, std::optional<std::string>(kOrgA));
    EXPECT_EQ(t.row.created_by, admin.Actor());
  }
  const std::size_t before = TokenCount();

  auto platform = service().Create(NewToken{"", Role::kPlatformAdmin, std::nullopt, {}}, &admin);
  ASSERT_FALSE(platform.has_value());
  EXPECT_EQ(platform.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(platform.error().message(),
            "this token's role 'admin' may not create platform-admin tokens (platform-admin "
            "only)");
  // Even with its own org attached (an inconsistent request) it is a denial, not a hint.
  EXPECT_ERROR_CODE(service().Create(NewToken{"", Role::kPlatformAdmin, kOrgA, {}}, &admin),
                    ErrorCode::kPermissionDenied);

  // Another org, existing or not: the same denial, naming neither.
  std::vector<std::string> messages;
  for (const std::string& org : {kOrgB, kMissingOrg}) {
    auto other = service().Create(NewToken{"", Role::kReader, org, {}}, &admin);
    ASSERT_FALSE(other.has_value());
    EXPECT_EQ(other.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_EQ(other.error().message().find(org), std::string::npos) << other.error().message();
    messages.push_back(other.error().message());
  }
  EXPECT_EQ(messages[0], messages[1]);
  EXPECT_EQ(messages[0], "this token's role 'admin' may not manage tokens of another organization");
  EXPECT_EQ(TokenCount(), before);
}

TEST_F(AuthTest, AuthenticateReportsWhenTheTokenExpires) {
  CreatedToken expiring = MustCreate(Role::kAdmin, kOrgA, "short", 3600);
  ASSERT_OK_AND_ASSIGN(Principal p, service().Authenticate(expiring.token.view()));
  EXPECT_EQ(p.expires_at, std::optional<UnixMicros>(kT0 + 3600 * 1'000'000LL));
  CreatedToken forever = MustCreate(Role::kAdmin, kOrgA);
  ASSERT_OK_AND_ASSIGN(Principal q, service().Authenticate(forever.token.view()));
  EXPECT_EQ(q.expires_at, std::nullopt);
}

TEST_F(AuthTest, ATokenCannotCreateATokenThatOutlivesIt) {
  // An org admin whose token expires in an hour (2023-11-14T23:13:20Z).
  CreatedToken short_lived = MustCreate(Role::kAdmin, kOrgA, "temp-admin", 3600);
  ASSERT_OK_AND_ASSIGN(const Principal admin, service().Authenticate(short_lived.token.view()));
  const std::size_t before = TokenCount();
  for (const std::optional<std::int64_t> ttl :
       {std::optional<std::int64_t>(), std::optional<std::int64_t>(3601),
        std::optional<std::int64_t>(kMaxTokenTtlSeconds)}) {
    auto refused = service().Create(NewToken{"", Role::kReader, kOrgA, ttl}, &admin);
    ASSERT_FALSE(refused.has_value()) << ttl.value_or(-1);
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(refused.error().message(),
              "a token cannot outlive the token that creates it (expires at "
              "2023-11-14T23:13:20Z); ask for ttl_seconds of at most 3600");
  }
  EXPECT_EQ(TokenCount(), before);
  ASSERT_OK_AND_ASSIGN(CreatedToken longest,
                       service().Create(NewToken{"", Role::kAdmin, kOrgA, 3600}, &admin));
  EXPECT_EQ(longest.row.expires_at, admin.expires_at);

  // The bound moves with the clock.
  clock_.AdvanceMicros(1000 * 1'000'000LL + 500'000);
  auto late = service().Create(NewToken{"", Role::kReader, kOrgA, 2600}, &admin);
  ASSERT_FALSE(late.has_value());
  EXPECT_NE(late.error().message().find("at most 2599"), std::string::npos)
      << late.error().message();
  EXPECT_TRUE(service().Create(NewToken{"", Role::kReader, kOrgA, 2599}, &admin).has_value());

  // A platform admin's expiring token is bound the same way; one that never expires, and the
  // bootstrap, are not.
  CreatedToken expiring_root = MustCreate(Role::kPlatformAdmin, std::nullopt, "", 60);
  ASSERT_OK_AND_ASSIGN(const Principal root, service().Authenticate(expiring_root.token.view()));
  EXPECT_ERROR_CODE(service().Create(NewToken{"", Role::kPlatformAdmin, std::nullopt, {}}, &root),
                    ErrorCode::kInvalidArgument);
  EXPECT_TRUE(service().Create(NewToken{"", Role::kReader, kOrgA, 60}, &root).has_value());
  const Principal forever_root = MustPrincipal(Role::kPlatformAdmin, std::nullopt);
  EXPECT_TRUE(service().Create(NewToken{"", Role::kReader, kOrgA, {}}, &forever_root).has_value());
  EXPECT_TRUE(service().Create(NewToken{"", Role::kReader, kOrgA, {}}, nullptr).has_value());
}

TEST_F(AuthTest, MembersAndReadersCannotCreateTokens) {
  for (Role creator_role : {Role::kMember, Role::kReader}) {
    const Principal creator = MustPrincipal(creator_role, kOrgA);
    const std::size_t before = TokenCount();
    for (Role role : {Role::kAdmin, Role::kMember, Role::kReader}) {
      SCOPED_TRACE(std::string(RoleName(creator_role)) + " -> " + std::string(RoleName(role)));
      EXPECT_ERROR_CODE(service().Create(NewToken{"", role, kOrgA, {}}, &creator),
                        ErrorCode::kPermissionDenied);
    }
    EXPECT_ERROR_CODE(
        service().Create(NewToken{"", Role::kPlatformAdmin, std::nullopt, {}}, &creator),
        ErrorCode::kPermissionDenied);
    EXPECT_EQ(TokenCount(), before);
  }
}

TEST_F(AuthTest, CreateValidatesRoleOrgNameAndTtl) {
  auto create = [&](NewToken request) { return service().Create(request, nullptr); };
  EXPECT_ERROR_CODE(create(NewToken{"x", Role::kPlatformAdmin, kOrgA, {}}),
                    ErrorCode::kInvalidArgument);
  for (Role role : {Role::kAdmin, Role::kMember, Role::kReader}) {
    EXPECT_ERROR_CODE(create(NewToken{"x", role, std::nullopt, {}}), ErrorCode::kInvalidArgument);
  }
  // Names: 1-100 bytes of UTF-8 without control characters.
  for (const std::string& bad :
       {std::string(101, 'n'), std::string("caf\xc3"), std::string("\xff\xfe"), std::string("a\nb"),
        std::string("tab\there"), std::string("del\x7f"), std::string("nul\0x", 5)}) {
    SCOPED_TRACE(QuoteForMessage(bad));
    auto result = create(NewToken{bad, Role::kReader, kOrgA, {}});
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message().find("token name"), std::string::npos);
  }
  // TTL: 1 s to ten years.
  for (std::int64_t bad :
       {std::int64_t{0}, std::int64_t{-1}, kMaxTokenTtlSeconds + 1,
        std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()}) {
    SCOPED_TRACE(bad);
    EXPECT_ERROR_CODE(create(NewToken{"t", Role::kReader, kOrgA, bad}),
                      ErrorCode::kInvalidArgument);
  }
  // A missing org is reported only once the request is otherwise fine.
  auto missing = create(NewToken{"t", Role::kReader, kMissingOrg, {}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "organization '" + kMissingOrg + "' does not exist");
  EXPECT_EQ(TokenCount(), 0u);

  // The edges that are accepted.
  ASSERT_OK_AND_ASSIGN(CreatedToken longest,
                       create(NewToken{std::string(100, 'n'), Role::kReader, kOrgA, 1}));
  EXPECT_EQ(longest.row.name.size(), 100u);
  EXPECT_EQ(longest.row.expires_at, std::optional<UnixMicros>(kT0 + kSecond));
  ASSERT_OK_AND_ASSIGN(CreatedToken decade,
                       create(NewToken{"Zürich ✓", Role::kReader, kOrgA, kMaxTokenTtlSeconds}));
  EXPECT_EQ(decade.row.name, "Zürich ✓");
  EXPECT_EQ(decade.row.expires_at,
            std::optional<UnixMicros>(kT0 + std::int64_t{315'576'000} * kSecond));
  ASSERT_OK_AND_ASSIGN(CreatedToken forever, create(NewToken{"", Role::kReader, kOrgA, {}}));
  EXPECT_EQ(forever.row.expires_at, std::nullopt);
  EXPECT_EQ(forever.row.name, "token-" + forever.row.id.substr(0, 8));
  EXPECT_EQ(TokenCount(), 3u);
}

// ---- Listing and revoking

TEST_F(AuthTest, ListShowsEachCallerOnlyWhatItMayManage) {
  const Principal root = MustPrincipal(Role::kPlatformAdmin, std::nullopt);
  clock_.AdvanceMicros(kSecond);
  const Principal admin_a = MustPrincipal(Role::kAdmin, kOrgA);
  clock_.AdvanceMicros(kSecond);
  const Principal member_a = MustPrincipal(Role::kMember, kOrgA);
  clock_.AdvanceMicros(kSecond);
  const Principal reader_a = MustPrincipal(Role::kReader, kOrgA);
  clock_.AdvanceMicros(kSecond);
  const Principal admin_b = MustPrincipal(Role::kAdmin, kOrgB);

  ASSERT_OK_AND_ASSIGN(auto all, service().List(root, std::nullopt));
  EXPECT_EQ(Ids(all),
            (std::vector<std::string>{admin_b.token_id, reader_a.token_id, member_a.token_id,
                                      admin_a.token_id, root.token_id}));
  ASSERT_OK_AND_ASSIGN(auto root_a, service().List(root, kOrgA));
  const std::vector<std::string> org_a = {reader_a.token_id, member_a.token_id, admin_a.token_id};
  EXPECT_EQ(Ids(root_a), org_a);
  ASSERT_OK_AND_ASSIGN(auto root_b, service().List(root, kOrgB));
  EXPECT_EQ(Ids(root_b), (std::vector<std::string>{admin_b.token_id}));
  EXPECT_ERROR_CODE(service().List(root, kMissingOrg), ErrorCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(auto own_default, service().List(admin_a, std::nullopt));
  EXPECT_EQ(Ids(own_default), org_a);
  ASSERT_OK_AND_ASSIGN(auto own_named, service().List(admin_a, kOrgA));
  EXPECT_EQ(Ids(own_named), org_a);
  for (const std::string& org : {kOrgB, kMissingOrg}) {
    auto other = service().List(admin_a, org);
    ASSERT_FALSE(other.has_value());
    EXPECT_EQ(other.error().code(), ErrorCode::kPermissionDenied);
    EXPECT_EQ(other.error().message().find(org), std::string::npos) << other.error().message();
  }
  for (const Principal* p : {&member_a, &reader_a}) {
    EXPECT_ERROR_CODE(service().List(*p, std::nullopt), ErrorCode::kPermissionDenied);
    EXPECT_ERROR_CODE(service().List(*p, kOrgA), ErrorCode::kPermissionDenied);
  }
}

TEST_F(AuthTest, RevokeVisibilityAndEffect) {
  const Principal root = MustPrincipal(Role::kPlatformAdmin, std::nullopt);
  const Principal admin_a = MustPrincipal(Role::kAdmin, kOrgA);
  const Principal member_a = MustPrincipal(Role::kMember, kOrgA);
  CreatedToken a_victim = MustCreate(Role::kReader, kOrgA);
  CreatedToken b_token = MustCreate(Role::kReader, kOrgB);
  CreatedToken platform_token = MustCreate(Role::kPlatformAdmin, std::nullopt);
  const std::string missing_id = "6f1c2a7e-1111-4222-8333-9444555566ff";

  // Members and readers revoke nothing, not even in their own org.
  EXPECT_ERROR_CODE(service().Revoke(member_a, a_victim.row.id), ErrorCode::kPermissionDenied);

  // An org admin: the same denial for another org's token, a platform token and an unknown id.
  std::vector<std::string> messages;
  for (const std::string& id : {b_token.row.id, platform_token.row.id, missing_id}) {
    Status s = service().Revoke(admin_a, id);
    ASSERT_FALSE(s.has_value()) << id;
    EXPECT_EQ(s.error().code(), ErrorCode::kPermissionDenied);
    messages.push_back(s.error().message());
  }
  EXPECT_EQ(messages[0], messages[1]);
  EXPECT_EQ(messages[0], messages[2]);
  ASSERT_OK(service().Authenticate(b_token.token.view()));
  ASSERT_OK(service().Authenticate(platform_token.token.view()));

  // ... and revokes its own org's tokens.
  clock_.AdvanceMicros(5 * kSecond);
  ASSERT_OK(service().Revoke(admin_a, a_victim.row.id));
  EXPECT_ERROR_CODE(service().Authenticate(a_victim.token.view()), ErrorCode::kUnauthenticated);
  EXPECT_EQ(StoredRow(a_victim.row.id)->revoked_at, std::optional<UnixMicros>(kT0 + 5 * kSecond));

  // The platform admin revokes anything; a second revocation keeps the first time.
  clock_.AdvanceMicros(5 * kSecond);
  EXPECT_ERROR_CODE(service().Revoke(root, missing_id), ErrorCode::kNotFound);
  ASSERT_OK(service().Revoke(root, b_token.row.id));
  ASSERT_OK(service().Revoke(root, a_victim.row.id));
  EXPECT_EQ(StoredRow(a_victim.row.id)->revoked_at, std::optional<UnixMicros>(kT0 + 5 * kSecond));
  EXPECT_EQ(StoredRow(b_token.row.id)->revoked_at, std::optional<UnixMicros>(kT0 + 10 * kSecond));
  EXPECT_ERROR_CODE(service().Authenticate(b_token.token.view()), ErrorCode::kUnauthenticated);
  // Revoked tokens stay listed (with their revocation time) for the audit trail.
  ASSERT_OK_AND_ASSIGN(auto b_list, service().List(root, kOrgB));
  ASSERT_EQ(b_list.size(), 1u);
  EXPECT_EQ(b_list[0].revoked_at, std::optional<UnixMicros>(kT0 + 10 * kSecond));
}

}  // namespace
}  // namespace bifrost::auth
