#include "auth/users.h"

#include <algorithm>
#include <utility>

#include "common/text.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace bifrost::auth {
namespace {

constexpr std::size_t kMinEmailBytes = 3;
constexpr std::size_t kMaxEmailBytes = 254;
constexpr std::string_view kBootstrapActor = "bootstrap";
constexpr std::string_view kWrongCredentials = "wrong email or password";
constexpr std::string_view kBadSession = "invalid or expired session";
constexpr UnixMicros kMicros = 1'000'000;

// The status of a result whose value is not needed.
template <typename T>
Status Discard(const Result<T>& result) {
  if (!result) return Fail(result.error());
  return Ok();
}

Error BadSession() { return Error(ErrorCode::kUnauthenticated, std::string(kBadSession)); }

Error NotYours() {
  return Error(ErrorCode::kPermissionDenied,
               "no user of this organization has that id or email (an org admin manages the "
               "users of its own organization)");
}

// Role and organization must agree: platform admins have none, everyone else exactly one.
Status CheckRoleAndOrg(Role role, const std::optional<std::string>& org_id) {
  if (role == Role::kWorkflow) {
    return Fail(ErrorCode::kInvalidArgument,
                "the roles of a user are platform-admin, admin, member and reader");
  }
  if (role == Role::kPlatformAdmin && org_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument,
                "a platform-admin user belongs to no organization; leave org_id out");
  }
  if (role != Role::kPlatformAdmin && !org_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument, "a user with role '" + std::string(RoleName(role)) +
                                                 "' belongs to one organization; give org_id");
  }
  return Ok();
}

// Which users `caller` manages: all (platform) or those of its organization.
Target ManagedTarget(const Principal& caller) {
  if (caller.role == Role::kPlatformAdmin) return Target::Platform();
  return Target::Org(caller.org_id.value_or(""));
}

}  // namespace

Status ValidateEmail(std::string_view email) {
  const auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kInvalidArgument, "an email " + std::string(why));
  };
  if (email.size() < kMinEmailBytes || email.size() > kMaxEmailBytes) {
    return bad("is 3 to 254 bytes");
  }
  for (const char c : email) {
    if (c <= ' ' || c >= 127) return bad("is printable ASCII without spaces");
  }
  const std::size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string_view::npos) {
    return bad("has exactly one '@' with a name before it and a domain after it");
  }
  return Ok();
}

std::string NormalizeEmail(std::string_view email) { return AsciiLower(email); }

UserService::UserService(store::Store& store, const Clock& clock, PasswordCost cost)
    : store_(&store), clock_(&clock), cost_(cost) {}

Result<store::UserRow> UserService::Create(
    const NewUser& request, std::string_view password, const Principal* creator,
    const store::CommitHookWith<store::UserRow>& before_commit) {
  if (creator != nullptr) {
    if (request.role == Role::kPlatformAdmin && creator->role != Role::kPlatformAdmin) {
      return Fail(ErrorCode::kPermissionDenied,
                  "role '" + std::string(RoleName(creator->role)) +
                      "' may not create platform-admin users (platform-admin only)");
    }
    const Target target =
        request.org_id.has_value() ? Target::Org(*request.org_id) : Target::Platform();
    BIFROST_RETURN_IF_ERROR(Authorize(*creator, Action::kUserManage, target));
  }
  BIFROST_RETURN_IF_ERROR(ValidateEmail(request.email));
  BIFROST_RETURN_IF_ERROR(CheckRoleAndOrg(request.role, request.org_id));
  BIFROST_RETURN_IF_ERROR(ValidatePassword(password));

  store::UserRow row;
  BIFROST_ASSIGN_OR_RETURN(row.id, crypto::NewUuidV4());
  row.email = NormalizeEmail(request.email);
  row.org_id = request.org_id;
  row.role = std::string(RoleName(request.role));
  // Before the transaction: hashing takes tens of milliseconds and must not hold the writer.
  BIFROST_ASSIGN_OR_RETURN(row.password_hash, HashPassword(password, cost_));
  row.created_at = clock_->NowMicros();
  row.updated_at = row.created_at;
  row.created_by = creator != nullptr ? creator->Actor() : std::string(kBootstrapActor);

  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  if (row.org_id.has_value()) {
    BIFROST_ASSIGN_OR_RETURN(const auto org, txn->GetOrgById(*row.org_id));
    if (!org.has_value()) {
      return Fail(ErrorCode::kNotFound, "organization '" + *row.org_id + "' does not exist");
    }
  }
  BIFROST_ASSIGN_OR_RETURN(const auto existing, txn->GetUserByEmail(row.email));
  if (existing.has_value()) {
    return Fail(ErrorCode::kAlreadyExists, "a user with this email already exists");
  }
  BIFROST_RETURN_IF_ERROR(txn->InsertUser(row));
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, row));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return row;
}

Result<std::vector<store::UserRow>> UserService::List(const Principal& caller,
                                                      std::optional<std::string> org_id) {
  const Target target = org_id.has_value() ? Target::Org(*org_id) : ManagedTarget(caller);
  BIFROST_RETURN_IF_ERROR(Authorize(caller, Action::kUserManage, target));
  if (caller.role != Role::kPlatformAdmin) org_id = caller.org_id;
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
  if (org_id.has_value() && caller.role == Role::kPlatformAdmin) {
    BIFROST_ASSIGN_OR_RETURN(const auto org, txn->GetOrgById(*org_id));
    if (!org.has_value()) {
      return Fail(ErrorCode::kNotFound, "organization '" + *org_id + "' does not exist");
    }
  }
  if (org_id.has_value()) return txn->ListUsers(std::string_view(*org_id));
  return txn->ListUsers(std::nullopt);
}

Result<store::UserRow> UserService::FindManaged(store::Txn& txn, const Principal& caller,
                                                std::string_view user) {
  BIFROST_RETURN_IF_ERROR(Authorize(caller, Action::kUserManage, ManagedTarget(caller)));
  std::optional<store::UserRow> row;
  if (IsCanonicalUuid(user)) {
    BIFROST_ASSIGN_OR_RETURN(row, txn.GetUserById(user));
  } else {
    BIFROST_ASSIGN_OR_RETURN(row, txn.GetUserByEmail(NormalizeEmail(user)));
  }
  if (caller.role != Role::kPlatformAdmin) {
    // Another organization's user and no user at all look the same to an org admin.
    if (!row.has_value() || row->org_id != caller.org_id) return Fail(NotYours());
  }
  if (!row.has_value()) {
    return Fail(ErrorCode::kNotFound, "no user has that id or email");
  }
  return std::move(*row);
}

Result<store::UserRow> UserService::Disable(
    const Principal& caller, std::string_view user,
    const store::CommitHookWith<store::UserRow>& before_commit) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(store::UserRow row, FindManaged(*txn, caller, user));
  if (caller.kind == PrincipalKind::kUser && caller.token_id == row.id) {
    return Fail(ErrorCode::kFailedPrecondition, "a user cannot disable itself; ask another admin");
  }
  const UnixMicros now = clock_->NowMicros();
  if (!row.disabled_at.has_value()) {
    row.disabled_at = now;
    row.updated_at = now;
    BIFROST_RETURN_IF_ERROR(txn->UpdateUser(row));
  }
  BIFROST_RETURN_IF_ERROR(Discard(txn->DeleteUserSessions(row.id)));
  // The tokens the user made in its sessions end with it: disabling a user must not leave
  // access behind in a token it minted.
  const std::string made_by = "user:" + row.email + "/" + row.id;
  BIFROST_ASSIGN_OR_RETURN(const auto tokens, txn->ListTokens(std::nullopt));
  for (const auto& token : tokens) {
    if (token.created_by == made_by && !token.revoked_at.has_value()) {
      BIFROST_RETURN_IF_ERROR(txn->RevokeToken(token.id, now));
    }
  }
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, row));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return row;
}

Result<store::UserRow> UserService::SetPassword(
    const Principal& caller, std::string_view user, std::string_view password,
    const store::CommitHookWith<store::UserRow>& before_commit) {
  {
    // Who may, before the password is even looked at.
    BIFROST_ASSIGN_OR_RETURN(auto read, store_->Begin(store::TxnMode::kRead));
    BIFROST_RETURN_IF_ERROR(Discard(FindManaged(*read, caller, user)));
  }
  BIFROST_RETURN_IF_ERROR(ValidatePassword(password));
  BIFROST_ASSIGN_OR_RETURN(std::string hash, HashPassword(password, cost_));
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(store::UserRow row, FindManaged(*txn, caller, user));
  row.password_hash = std::move(hash);
  row.updated_at = clock_->NowMicros();
  BIFROST_RETURN_IF_ERROR(txn->UpdateUser(row));
  BIFROST_RETURN_IF_ERROR(Discard(txn->DeleteUserSessions(row.id)));
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, row));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return row;
}

std::string CsrfTokenFor(std::string_view session_token) {
  std::string input = "bifrost-csrf:";
  input += session_token;
  std::string csrf = crypto::Sha256Hex(input);
  crypto::SecureWipe(input.data(), input.size());
  return csrf;
}

SessionService::SessionService(store::Store& store, const Clock& clock, SessionOptions options)
    : store_(&store),
      clock_(&clock),
      options_(options),
      by_address_(clock, options.max_failures_per_address,
                  options.failure_window_seconds * kMicros),
      by_account_(clock, options.max_failures_per_account,
                  options.failure_window_seconds * kMicros),
      checks_(std::clamp<std::ptrdiff_t>(options.max_concurrent_checks, 1, 64)) {
  // Computed now, so that the first unknown email does not take two hashes' time.
  (void)DummyPasswordHash();
}

std::string SessionService::HostOf(std::string_view client_address) {
  // "ip:port" or "[v6]:port": the port changes with every connection, the host does not.
  if (client_address.starts_with('[')) {
    const std::size_t close = client_address.find(']');
    if (close != std::string_view::npos) return std::string(client_address.substr(0, close + 1));
  }
  const std::size_t colon = client_address.rfind(':');
  if (colon != std::string_view::npos && client_address.find(':') == colon) {
    return std::string(client_address.substr(0, colon));
  }
  return std::string(client_address);
}

UnixMicros SessionService::TouchInterval() const {
  return std::min<UnixMicros>(60 * kMicros, options_.idle_timeout_seconds * kMicros / 4);
}

Result<SessionService::LoginOutcome> SessionService::Login(
    std::string_view email, std::string_view password, std::string_view client_address,
    const store::CommitHookWith<SignedIn>& before_commit, std::string_view limit_address) {
  LoginOutcome outcome;
  const std::string account = NormalizeEmail(email);
  const std::string address =
      limit_address.empty() ? HostOf(client_address) : std::string(limit_address);
  // Only a well-formed email is counted as an account: arbitrary text typed as an email
  // must not become a key the limiter keeps (it is bounded by the email rule's 254 bytes).
  const bool is_email = ValidateEmail(account).has_value();
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
    if (is_email) {
      BIFROST_ASSIGN_OR_RETURN(outcome.user, txn->GetUserByEmail(account));
    }
  }
  const UnixMicros wait = std::max(by_address_.RetryAfter(address),
                                   is_email ? by_account_.RetryAfter(account) : UnixMicros{0});
  if (wait > 0) {
    outcome.kind = LoginOutcome::Kind::kRateLimited;
    outcome.retry_after_seconds = (wait + kMicros - 1) / kMicros;
    outcome.why = "too many failed sign-ins";
    return outcome;
  }
  // At most max_concurrent_checks verifications at once, and none waits for a slot: a flood
  // of sign-ins is answered "busy" at once instead of taking the server's threads.
  if (!checks_.try_acquire()) {
    outcome.kind = LoginOutcome::Kind::kBusy;
    outcome.why = "too many sign-ins in progress";
    return outcome;
  }
  bool matches = false;
  {
    struct Slot {
      std::counting_semaphore<64>& checks;
      ~Slot() { checks.release(); }
    } slot{checks_};
    // Unknown emails cost a verification too, so that timing does not tell them apart.
    matches = VerifyPassword(
        password, outcome.user.has_value() ? outcome.user->password_hash : DummyPasswordHash());
  }
  if (!outcome.user.has_value() || !matches || outcome.user->disabled_at.has_value()) {
    by_address_.RecordFailure(address);
    if (is_email) by_account_.RecordFailure(account);
    outcome.kind = LoginOutcome::Kind::kWrongCredentials;
    outcome.why = !outcome.user.has_value() ? "unknown email"
                  : !matches                ? "wrong password"
                                            : "user disabled";
    return outcome;
  }
  by_account_.Reset(account);

  const UnixMicros now = clock_->NowMicros();
  SignedIn signed_in;
  BIFROST_ASSIGN_OR_RETURN(signed_in.token, GenerateTokenText(kSessionTokenPrefix));
  signed_in.csrf_token = CsrfTokenFor(signed_in.token.view());
  BIFROST_ASSIGN_OR_RETURN(signed_in.session.id, crypto::NewUuidV4());
  signed_in.session.user_id = outcome.user->id;
  signed_in.session.hash = crypto::Sha256Hex(signed_in.token.view());
  signed_in.session.created_at = now;
  signed_in.session.last_seen_at = now;
  signed_in.session.expires_at = now + options_.lifetime_seconds * kMicros;
  signed_in.session.client_address = std::string(client_address);

  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(auto user, txn->GetUserById(outcome.user->id));
  if (!user.has_value() || user->disabled_at.has_value() ||
      user->password_hash != outcome.user->password_hash) {
    // Disabled or given a new password while this sign-in was checked.
    outcome.kind = LoginOutcome::Kind::kWrongCredentials;
    outcome.why = "user changed during sign-in";
    return outcome;
  }
  BIFROST_RETURN_IF_ERROR(
      Discard(txn->DeleteExpiredSessions(now, now - options_.idle_timeout_seconds * kMicros)));
  BIFROST_RETURN_IF_ERROR(txn->InsertSession(signed_in.session));
  user->last_login_at = now;
  BIFROST_RETURN_IF_ERROR(txn->UpdateUser(*user));
  signed_in.user = std::move(*user);
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, signed_in));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  outcome.kind = LoginOutcome::Kind::kSignedIn;
  outcome.user = signed_in.user;
  outcome.signed_in = std::move(signed_in);
  return outcome;
}

Result<SessionService::Current> SessionService::Describe(std::string_view session_token) {
  if (!HasTokenShape(session_token, kSessionTokenPrefix)) return Fail(BadSession());
  const UnixMicros now = clock_->NowMicros();
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(const auto session,
                           txn->GetSessionByHash(crypto::Sha256Hex(session_token)));
  if (!session.has_value() || now >= session->expires_at ||
      now - session->last_seen_at >= options_.idle_timeout_seconds * kMicros) {
    return Fail(BadSession());
  }
  BIFROST_ASSIGN_OR_RETURN(auto user, txn->GetUserById(session->user_id));
  if (!user.has_value() || user->disabled_at.has_value()) return Fail(BadSession());
  return Current{std::move(*user),
                 std::min(session->expires_at, now + options_.idle_timeout_seconds * kMicros)};
}

Result<Principal> SessionService::Authenticate(std::string_view session_token) {
  if (!HasTokenShape(session_token, kSessionTokenPrefix)) return Fail(BadSession());
  const UnixMicros now = clock_->NowMicros();
  std::optional<store::SessionRow> session;
  std::optional<store::UserRow> user;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(session, txn->GetSessionByHash(crypto::Sha256Hex(session_token)));
    if (!session.has_value() || now >= session->expires_at ||
        now - session->last_seen_at >= options_.idle_timeout_seconds * kMicros) {
      return Fail(BadSession());
    }
    BIFROST_ASSIGN_OR_RETURN(user, txn->GetUserById(session->user_id));
  }
  if (!user.has_value() || user->disabled_at.has_value()) return Fail(BadSession());
  auto role = ParseRole(user->role);
  if (!role) return Fail(ErrorCode::kCorrupt, "a stored user has an unknown role");
  if (now - session->last_seen_at >= TouchInterval()) {
    // Activity keeps the session alive; a failure to record it costs at most an earlier end.
    if (auto txn = store_->Begin(store::TxnMode::kWrite)) {
      if ((*txn)->TouchSession(session->id, now)) (void)(*txn)->Commit();
    }
  }
  Principal principal;
  principal.kind = PrincipalKind::kUser;
  principal.token_id = user->id;
  principal.token_name = user->email;
  principal.role = *role;
  principal.org_id = user->org_id;
  principal.session_id = session->id;
  return principal;
}

Status SessionService::Logout(const Principal& principal, const store::CommitHook& before_commit) {
  if (principal.kind != PrincipalKind::kUser || !principal.session_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument,
                "sign-out ends a browser session; this request was made with a token");
  }
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  auto deleted = txn->DeleteSession(*principal.session_id);
  if (!deleted && deleted.error().code() != ErrorCode::kNotFound) return deleted;
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn));
  return txn->Commit();
}

}  // namespace bifrost::auth
