// Users and sessions on a real SQLite store: who may create and manage which users, the
// hash-only storage of passwords and sessions, sign-in refusals and their limits, idle and
// absolute expiry, and the end of sessions at sign-out, disable and password change.
#include "auth/users.h"

#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <string>

#include "crypto/hash.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"

namespace bifrost::auth {
namespace {

constexpr UnixMicros kT0 = 1'700'000'000'000'000;
constexpr UnixMicros kSecond = 1'000'000;
const std::string kOrgA = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0001";
const std::string kOrgB = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0002";
const std::string kPassword = "correct horse battery staple";
// Cheap hashes: the tests check behaviour, not cost.
constexpr PasswordCost kCheap{.memory_kib = 1024, .passes = 1, .lanes = 1};
using Kind = SessionService::LoginOutcome::Kind;

// a + b + c without temporaries that GCC 12's -Wrestrict misreads.
std::string Cat(std::string_view a, std::string_view b, std::string_view c = "") {
  std::string out(a);
  out += b;
  out += c;
  return out;
}

class UsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions options;
    options.data_dir = dir_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteStore::Open(options);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    store_ = std::move(*opened);
    auto txn = store_->Begin(store::TxnMode::kWrite);
    ASSERT_TRUE(txn.has_value());
    ASSERT_OK((*txn)->InsertOrg(store::OrgRow{kOrgA, "acme", kT0}));
    ASSERT_OK((*txn)->InsertOrg(store::OrgRow{kOrgB, "globex", kT0}));
    ASSERT_OK((*txn)->Commit());
    users_ = std::make_unique<UserService>(*store_, clock_, kCheap);
    sessions_ = std::make_unique<SessionService>(*store_, clock_,
                                                 SessionOptions{.idle_timeout_seconds = 60,
                                                                .lifetime_seconds = 600,
                                                                .max_failures_per_address = 8,
                                                                .max_failures_per_account = 3,
                                                                .failure_window_seconds = 100});
  }

  store::UserRow MustCreate(std::string email, Role role, std::optional<std::string> org) {
    auto created = users_->Create({.email = std::move(email), .role = role, .org_id = org},
                                  kPassword, nullptr);
    EXPECT_TRUE(created.has_value()) << created.error().ToString();
    return created ? *created : store::UserRow{};
  }

  // Signs in and returns the session token and the principal it authenticates as.
  std::pair<std::string, Principal> MustSignIn(const std::string& email,
                                               const std::string& address = "10.0.0.1:5000") {
    auto outcome = sessions_->Login(email, kPassword, address);
    EXPECT_TRUE(outcome.has_value());
    if (!outcome || outcome->kind != Kind::kSignedIn) {
      ADD_FAILURE() << "sign-in refused: " << (outcome ? outcome->why : "error");
      return {};
    }
    std::string token(outcome->signed_in->token.view());
    auto principal = sessions_->Authenticate(token);
    EXPECT_TRUE(principal.has_value());
    return {token, principal ? *principal : Principal{}};
  }

  bifrost::testing::TempDir dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<UserService> users_;
  std::unique_ptr<SessionService> sessions_;
};

TEST(EmailTest, RulesAndNormalization) {
  EXPECT_TRUE(ValidateEmail("a@b"));
  EXPECT_TRUE(ValidateEmail("Ops.Team+x@Example.COM"));
  for (const char* bad : {"", "ab", "no-at-sign", "@example.com", "user@", "a@b@c", "a b@c",
                          "tab\t@x", "\xc3\xa9@x.y"}) {
    EXPECT_FALSE(ValidateEmail(bad)) << bad;
  }
  EXPECT_ERROR_CODE(ValidateEmail(std::string(250, 'a') + "@b.cd"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(NormalizeEmail("Ops@Example.COM"), "ops@example.com");
}

TEST_F(UsersTest, CreateStoresOnlyAnArgon2idHashAndNormalizesTheEmail) {
  const store::UserRow row = MustCreate("Ana@Acme.Example", Role::kAdmin, kOrgA);
  EXPECT_EQ(row.email, "ana@acme.example");
  EXPECT_EQ(row.role, "admin");
  EXPECT_EQ(row.org_id, kOrgA);
  EXPECT_EQ(row.created_by, "bootstrap");
  EXPECT_TRUE(row.password_hash.starts_with("$argon2id$v=19$")) << "(hash format)";
  EXPECT_EQ(row.password_hash.find(kPassword), std::string::npos);
  EXPECT_TRUE(VerifyPassword(kPassword, row.password_hash));
  // The same email in another case is the same user.
  EXPECT_ERROR_CODE(
      users_->Create({.email = "ANA@acme.example", .role = Role::kMember, .org_id = kOrgB},
                     kPassword, nullptr),
      ErrorCode::kAlreadyExists);
}

TEST_F(UsersTest, CreateRefusesBadRequests) {
  EXPECT_ERROR_CODE(users_->Create({.email = "x@y", .role = Role::kAdmin}, kPassword, nullptr),
                    ErrorCode::kInvalidArgument);  // an org role without an org
  EXPECT_ERROR_CODE(users_->Create({.email = "x@y", .role = Role::kPlatformAdmin, .org_id = kOrgA},
                                   kPassword, nullptr),
                    ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(
      users_->Create({.email = "x@y", .role = Role::kAdmin, .org_id = kOrgA}, "short", nullptr),
      ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(users_->Create({.email = "x@y", .role = Role::kWorkflow, .org_id = kOrgA},
                                   kPassword, nullptr),
                    ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(
      users_->Create(
          {.email = "x@y", .role = Role::kAdmin, .org_id = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a00ff"},
          kPassword, nullptr),
      ErrorCode::kNotFound);
}

TEST_F(UsersTest, OrgAdminsManageOnlyTheirOwnOrganization) {
  MustCreate("root@x", Role::kPlatformAdmin, std::nullopt);
  MustCreate("ana@acme", Role::kAdmin, kOrgA);
  MustCreate("bob@acme", Role::kMember, kOrgA);
  const store::UserRow globex = MustCreate("gil@globex", Role::kReader, kOrgB);
  const Principal ana = MustSignIn("ana@acme").second;
  const Principal bob = MustSignIn("bob@acme").second;
  EXPECT_EQ(ana.Actor(), "user:ana@acme/" + ana.token_id);

  // Create: own org only, never a platform admin; a member manages nobody.
  auto made =
      users_->Create({.email = "cy@acme", .role = Role::kReader, .org_id = kOrgA}, kPassword, &ana);
  ASSERT_TRUE(made.has_value()) << made.error().ToString();
  EXPECT_EQ(made->created_by, ana.Actor());
  EXPECT_ERROR_CODE(users_->Create({.email = "z@x", .role = Role::kPlatformAdmin}, kPassword, &ana),
                    ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(
      users_->Create({.email = "z@x", .role = Role::kAdmin, .org_id = kOrgB}, kPassword, &ana),
      ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(
      users_->Create({.email = "z@x", .role = Role::kReader, .org_id = kOrgA}, kPassword, &bob),
      ErrorCode::kPermissionDenied);

  // List: its org's users, by email; another org's is refused.
  ASSERT_OK_AND_ASSIGN(const auto listed, users_->List(ana, std::nullopt));
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].email, "ana@acme");
  EXPECT_EQ(listed[2].email, "cy@acme");
  EXPECT_ERROR_CODE(users_->List(ana, kOrgB), ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(users_->List(bob, std::nullopt), ErrorCode::kPermissionDenied);

  // Disable and passwords: another org's user and no user look the same.
  EXPECT_ERROR_CODE(users_->Disable(ana, globex.id), ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(users_->Disable(ana, "nobody@nowhere"), ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(users_->SetPassword(ana, "gil@globex", "another long password"),
                    ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(users_->Disable(ana, "root@x"), ErrorCode::kPermissionDenied);
  EXPECT_ERROR_CODE(users_->Disable(ana, "ana@acme"), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(users_->Disable(ana, "BOB@acme"));
}

TEST_F(UsersTest, PlatformAdminsManageEveryone) {
  MustCreate("root@x", Role::kPlatformAdmin, std::nullopt);
  const store::UserRow gil = MustCreate("gil@globex", Role::kReader, kOrgB);
  const Principal root = MustSignIn("root@x").second;
  ASSERT_OK_AND_ASSIGN(const auto all, users_->List(root, std::nullopt));
  EXPECT_EQ(all.size(), 2u);
  ASSERT_OK_AND_ASSIGN(const auto globex, users_->List(root, kOrgB));
  ASSERT_EQ(globex.size(), 1u);
  EXPECT_EQ(globex[0].id, gil.id);
  EXPECT_ERROR_CODE(users_->List(root, "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a00ff"),
                    ErrorCode::kNotFound);
  EXPECT_ERROR_CODE(users_->Disable(root, "nobody@nowhere"), ErrorCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(const auto disabled, users_->Disable(root, gil.id));
  EXPECT_EQ(disabled.disabled_at, kT0);
  // A second disable keeps the first time.
  clock_.AdvanceMicros(5 * kSecond);
  ASSERT_OK_AND_ASSIGN(const auto again, users_->Disable(root, gil.email));
  EXPECT_EQ(again.disabled_at, kT0);
}

TEST_F(UsersTest, SignInStoresOnlyTheSessionHashAndAuthenticatesAsTheUser) {
  const store::UserRow ana = MustCreate("ana@acme", Role::kAdmin, kOrgA);
  auto outcome = sessions_->Login("ANA@acme", kPassword, "10.0.0.1:5000");
  ASSERT_TRUE(outcome.has_value());
  ASSERT_EQ(outcome->kind, Kind::kSignedIn) << outcome->why;
  const auto& signed_in = *outcome->signed_in;
  const std::string token(signed_in.token.view());
  EXPECT_TRUE(std::regex_match(token, std::regex("^bfs_[A-Za-z0-9_-]{43}$")));
  EXPECT_EQ(signed_in.session.hash, crypto::Sha256Hex(token));
  EXPECT_EQ(signed_in.session.expires_at, kT0 + 600 * kSecond);
  EXPECT_EQ(signed_in.csrf_token, CsrfTokenFor(token));
  EXPECT_EQ(signed_in.user.last_login_at, kT0);
  EXPECT_NE(CsrfTokenFor(token), CsrfTokenFor(token + "x"));

  ASSERT_OK_AND_ASSIGN(const Principal principal, sessions_->Authenticate(token));
  EXPECT_EQ(principal.kind, PrincipalKind::kUser);
  EXPECT_EQ(principal.token_id, ana.id);
  EXPECT_EQ(principal.token_name, "ana@acme");
  EXPECT_EQ(principal.role, Role::kAdmin);
  EXPECT_EQ(principal.org_id, kOrgA);
  EXPECT_EQ(principal.session_id, signed_in.session.id);
  EXPECT_FALSE(principal.expires_at.has_value());
  // The same rights as a token of the role: its org, not another.
  EXPECT_TRUE(Authorize(principal, Action::kConfigWrite, Target::Org(kOrgA)));
  EXPECT_ERROR_CODE(Authorize(principal, Action::kConfigRead, Target::Org(kOrgB)),
                    ErrorCode::kPermissionDenied);
  // A browser session never reveals a value, whatever its role.
  EXPECT_ERROR_CODE(Authorize(principal, Action::kConfigReveal, Target::Org(kOrgA)),
                    ErrorCode::kPermissionDenied);
  Principal as_platform = principal;
  as_platform.role = Role::kPlatformAdmin;
  as_platform.org_id.reset();
  EXPECT_ERROR_CODE(Authorize(as_platform, Action::kConfigReveal, Target::Global()),
                    ErrorCode::kPermissionDenied);

  for (const std::string& bad :
       {std::string(""), Cat(token, "x"), Cat("bft_", std::string_view(token).substr(4)),
        Cat("bfs_", std::string(43, 'A'))}) {
    EXPECT_ERROR_CODE(sessions_->Authenticate(bad), ErrorCode::kUnauthenticated);
  }
}

TEST_F(UsersTest, WrongPasswordUnknownEmailAndDisabledUserAreOneAnswer) {
  MustCreate("ana@acme", Role::kAdmin, kOrgA);
  const store::UserRow bob = MustCreate("bob@acme", Role::kMember, kOrgA);
  ASSERT_OK_AND_ASSIGN(auto wrong, sessions_->Login("ana@acme", "not the password!", "1.1.1.1:1"));
  EXPECT_EQ(wrong.kind, Kind::kWrongCredentials);
  ASSERT_TRUE(wrong.user.has_value());  // for the record: an existing user was named
  EXPECT_EQ(wrong.why, "wrong password");
  ASSERT_OK_AND_ASSIGN(auto unknown, sessions_->Login("who@acme", kPassword, "1.1.1.2:1"));
  EXPECT_EQ(unknown.kind, Kind::kWrongCredentials);
  EXPECT_FALSE(unknown.user.has_value());
  ASSERT_OK_AND_ASSIGN(auto garbage, sessions_->Login("", "", "1.1.1.3:1"));
  EXPECT_EQ(garbage.kind, Kind::kWrongCredentials);

  MustCreate("root@x", Role::kPlatformAdmin, std::nullopt);
  const Principal root = MustSignIn("root@x").second;
  ASSERT_OK(users_->Disable(root, bob.id));
  ASSERT_OK_AND_ASSIGN(auto disabled, sessions_->Login("bob@acme", kPassword, "1.1.1.4:1"));
  EXPECT_EQ(disabled.kind, Kind::kWrongCredentials);
  EXPECT_EQ(disabled.why, "user disabled");
}

TEST_F(UsersTest, FailuresAreLimitedPerAccountAndPerAddress) {
  MustCreate("ana@acme", Role::kAdmin, kOrgA);
  MustCreate("bob@acme", Role::kAdmin, kOrgA);
  // Per account: 3 failures from three addresses, then even the right password waits.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto o, sessions_->Login("ana@acme", "wrong password!",
                                                  Cat("10.1.0.", std::to_string(i), ":1")));
    EXPECT_EQ(o.kind, Kind::kWrongCredentials);
  }
  ASSERT_OK_AND_ASSIGN(auto limited, sessions_->Login("Ana@Acme", kPassword, "10.2.0.1:1"));
  EXPECT_EQ(limited.kind, Kind::kRateLimited);
  EXPECT_EQ(limited.retry_after_seconds, 100);
  // Another account from another address is not affected.
  EXPECT_EQ(sessions_->Login("bob@acme", kPassword, "10.3.0.1:1")->kind, Kind::kSignedIn);
  // Text that is not an email is never an account key (it would only fill the limiter):
  // only the address counts it.
  const std::string junk(300, 'j');
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(
        auto o, sessions_->Login(junk, kPassword, Cat("10.4.0.", std::to_string(i), ":1")));
    EXPECT_EQ(o.kind, Kind::kWrongCredentials);
  }
  // The window passes.
  clock_.AdvanceMicros(101 * kSecond);
  EXPECT_EQ(sessions_->Login("ana@acme", kPassword, "10.2.0.1:1")->kind, Kind::kSignedIn);

  // Per address (8), whatever the accounts, and whatever the port.
  for (int i = 0; i < 8; ++i) {
    ASSERT_OK_AND_ASSIGN(auto o, sessions_->Login(Cat("u", std::to_string(i), "@x"), kPassword,
                                                  Cat("10.9.9.9:", std::to_string(1000 + i))));
    EXPECT_EQ(o.kind, Kind::kWrongCredentials);
  }
  EXPECT_EQ(sessions_->Login("bob@acme", kPassword, "10.9.9.9:2000")->kind, Kind::kRateLimited);
  EXPECT_EQ(sessions_->Login("bob@acme", kPassword, "[::1]:2000")->kind, Kind::kSignedIn);
}

TEST_F(UsersTest, SessionsEndWhenIdleAtTheirLifetimeAndAtSignOut) {
  MustCreate("ana@acme", Role::kAdmin, kOrgA);
  auto [token, principal] = MustSignIn("ana@acme");
  // Activity keeps it alive past the idle timeout (60 s)...
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMicros(50 * kSecond);
    ASSERT_TRUE(sessions_->Authenticate(token).has_value()) << i;
  }
  ASSERT_OK_AND_ASSIGN(const auto current, sessions_->Describe(token));
  EXPECT_EQ(current.expires_at, clock_.NowMicros() + 60 * kSecond);
  // ...until 61 s without a request.
  clock_.AdvanceMicros(61 * kSecond);
  EXPECT_ERROR_CODE(sessions_->Authenticate(token), ErrorCode::kUnauthenticated);

  // The absolute lifetime (600 s) ends even an active session.
  auto [second, second_principal] = MustSignIn("ana@acme");
  for (int i = 0; i < 11; ++i) {
    clock_.AdvanceMicros(50 * kSecond);
    (void)sessions_->Authenticate(second);
  }
  clock_.AdvanceMicros(50 * kSecond);  // 600 s after sign-in
  EXPECT_ERROR_CODE(sessions_->Authenticate(second), ErrorCode::kUnauthenticated);

  auto [third, third_principal] = MustSignIn("ana@acme");
  ASSERT_OK(sessions_->Logout(third_principal));
  EXPECT_ERROR_CODE(sessions_->Authenticate(third), ErrorCode::kUnauthenticated);
  // Sign-out is for sessions, not tokens.
  Principal token_principal;
  EXPECT_ERROR_CODE(sessions_->Logout(token_principal), ErrorCode::kInvalidArgument);
}

TEST_F(UsersTest, DisableRevokesTheTokensTheUserCreated) {
  MustCreate("root@x", Role::kPlatformAdmin, std::nullopt);
  MustCreate("ana@acme", Role::kAdmin, kOrgA);
  const Principal root = MustSignIn("root@x").second;
  const Principal ana = MustSignIn("ana@acme").second;
  TokenService tokens(*store_, clock_);
  ASSERT_OK_AND_ASSIGN(auto minted,
                       tokens.Create({.name = "ci", .role = Role::kAdmin, .org_id = kOrgA}, &ana));
  ASSERT_OK_AND_ASSIGN(
      auto others, tokens.Create({.name = "ops", .role = Role::kAdmin, .org_id = kOrgA}, &root));
  ASSERT_TRUE(tokens.Authenticate(minted.token.view()).has_value());
  ASSERT_OK(users_->Disable(root, "ana@acme"));
  EXPECT_ERROR_CODE(tokens.Authenticate(minted.token.view()), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(tokens.Authenticate(others.token.view()).has_value());  // not the user's
}

TEST_F(UsersTest, DisableAndNewPasswordEndEverySessionOfTheUser) {
  MustCreate("root@x", Role::kPlatformAdmin, std::nullopt);
  const store::UserRow ana = MustCreate("ana@acme", Role::kAdmin, kOrgA);
  const Principal root = MustSignIn("root@x").second;
  const std::string first = MustSignIn("ana@acme").first;
  const std::string second = MustSignIn("ana@acme", "10.0.0.2:1").first;
  ASSERT_OK(users_->SetPassword(root, "ana@acme", "a brand new password"));
  EXPECT_ERROR_CODE(sessions_->Authenticate(first), ErrorCode::kUnauthenticated);
  EXPECT_ERROR_CODE(sessions_->Authenticate(second), ErrorCode::kUnauthenticated);
  EXPECT_EQ(sessions_->Login("ana@acme", kPassword, "10.0.0.3:1")->kind, Kind::kWrongCredentials);
  ASSERT_OK_AND_ASSIGN(auto fresh,
                       sessions_->Login("ana@acme", "a brand new password", "10.0.0.3:1"));
  ASSERT_EQ(fresh.kind, Kind::kSignedIn);
  const std::string third(fresh.signed_in->token.view());
  ASSERT_OK(users_->Disable(root, ana.id));
  EXPECT_ERROR_CODE(sessions_->Authenticate(third), ErrorCode::kUnauthenticated);
  EXPECT_ERROR_CODE(users_->SetPassword(root, "ana@acme", "short"), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace bifrost::auth
