#include "auth/auth.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <utility>

#include "common/base64.h"
#include "common/text.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace bifrost::auth {
namespace {

constexpr std::size_t kTokenRandomBytes = 32;
constexpr std::size_t kTokenEncodedChars = 43;  // base64url of 32 bytes, unpadded
constexpr std::size_t kMaxNameBytes = 100;
constexpr std::size_t kGeneratedNameIdChars = 8;
constexpr std::string_view kBootstrapActor = "bootstrap";

// The one answer for every token that is not live: nothing tells a caller whether a token
// never existed, expired or was revoked.
constexpr std::string_view kUnauthenticatedMessage = "invalid, expired or revoked token";

Error Unauthenticated() {
  return Error(ErrorCode::kUnauthenticated, std::string(kUnauthenticatedMessage));
}

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

bool HasTokenShape(std::string_view token, std::string_view prefix) {
  if (token.size() != prefix.size() + kTokenEncodedChars) return false;
  if (!token.starts_with(prefix)) return false;
  for (const char c : token.substr(prefix.size())) {
    if (!IsBase64UrlChar(c)) return false;
  }
  return true;
}

namespace {

// What an action does, as the object of "may not ...".
std::string_view ActionText(Action action) {
  switch (action) {
    case Action::kOrgCreate:
      return "create organizations";
    case Action::kOrgList:
      return "list organizations";
    case Action::kOrgRead:
      return "read organizations";
    case Action::kOrgDelete:
      return "delete organizations";
    case Action::kConfigRead:
      return "read config";
    case Action::kConfigReveal:
      return "reveal secrets";
    case Action::kConfigWrite:
      return "write config";
    case Action::kTokenManage:
      return "manage tokens";
    case Action::kUserManage:
      return "manage users";
    case Action::kAuditRead:
      return "read the audit log";
    case Action::kWorkflowList:
      return "list workflows";
    case Action::kWorkflowReload:
      return "reload workflows";
    case Action::kWorkflowRun:
      return "run workflows";
    case Action::kExecutionRead:
      return "read executions";
    case Action::kExecutionCancel:
      return "cancel executions";
  }
  return "do this";
}

Error Denied(Role role, Action action, std::string_view rest) {
  return Error(ErrorCode::kPermissionDenied, "this token's role '" + std::string(RoleName(role)) +
                                                 "' may not " + std::string(ActionText(action)) +
                                                 std::string(rest));
}

// The least org role that may perform `action` on its own organization; nullopt when no org
// role may (platform-admin only).
std::optional<Role> LeastOrgRoleFor(Action action) {
  switch (action) {
    case Action::kOrgCreate:
    case Action::kOrgDelete:
    case Action::kWorkflowReload:
      return std::nullopt;
    case Action::kOrgList:
    case Action::kOrgRead:
    case Action::kConfigRead:
    case Action::kWorkflowList:
    case Action::kExecutionRead:
      return Role::kReader;
    case Action::kConfigReveal:
    case Action::kWorkflowRun:
    case Action::kExecutionCancel:
      return Role::kMember;
    case Action::kConfigWrite:
    case Action::kTokenManage:
    case Action::kUserManage:
    case Action::kAuditRead:
      return Role::kAdmin;
  }
  return std::nullopt;
}

// Org roles ordered by power: admin > member > reader.
int OrgRank(Role role) {
  switch (role) {
    case Role::kAdmin:
      return 3;
    case Role::kMember:
      return 2;
    case Role::kReader:
      return 1;
    case Role::kPlatformAdmin:
    case Role::kWorkflow:
      break;
  }
  return 0;
}

Status ValidateName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes || !IsValidUtf8(name) || HasControlChar(name)) {
    return Fail(ErrorCode::kInvalidArgument, "token name " + QuoteForMessage(name) + " must be 1-" +
                                                 std::to_string(kMaxNameBytes) +
                                                 " bytes of UTF-8 without control characters");
  }
  return Ok();
}

}  // namespace

Result<crypto::SecureBuffer> GenerateTokenText(std::string_view prefix) {
  crypto::SecureBuffer random(kTokenRandomBytes);
  BIFROST_RETURN_IF_ERROR(crypto::RandomBytes(random.mutable_bytes()));
  std::string encoded = Base64UrlEncode(random.bytes());
  std::size_t length = encoded.size();
  while (length > 0 && encoded[length - 1] == '=') --length;
  crypto::SecureBuffer token;
  token.Append(prefix);
  token.Append(std::string_view(encoded.data(), length));
  crypto::SecureWipe(encoded.data(), encoded.size());
  if (length != kTokenEncodedChars) {
    return Fail(ErrorCode::kInternal, "token encoding has an unexpected length");
  }
  return token;
}

namespace {

// RFC 3339 in UTC, to the second: "2026-11-29T14:02:08Z" (the second is rounded down).
std::string FormatUtcSeconds(UnixMicros micros) {
  using namespace std::chrono;
  const sys_seconds time = floor<seconds>(sys_time<microseconds>{microseconds{micros}});
  const sys_days day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss<seconds> clock{time - day};
  char text[32];
  std::snprintf(text, sizeof(text), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()));
  return text;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kPlatformAdmin:
      return "platform-admin";
    case Role::kAdmin:
      return "admin";
    case Role::kMember:
      return "member";
    case Role::kReader:
      return "reader";
    case Role::kWorkflow:
      return "workflow";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view name) {
  for (const Role role : {Role::kPlatformAdmin, Role::kAdmin, Role::kMember, Role::kReader}) {
    if (name == RoleName(role)) return role;
  }
  return Fail(ErrorCode::kInvalidArgument,
              "unknown role " + QuoteForMessage(name) +
                  "; the roles are platform-admin, admin, member and reader");
}

std::string Principal::Actor() const {
  if (execution_id.has_value()) return token_name + "/" + token_id;
  if (kind == PrincipalKind::kUser) return "user:" + token_name + "/" + token_id;
  return "token:" + token_name + "/" + token_id;
}

Status Authorize(const Principal& principal, Action action, const Target& target) {
  if (principal.kind == PrincipalKind::kUser && action == Action::kConfigReveal) {
    // What a browser holds can be read by any script that ever runs in the page: the web UI
    // shows secrets masked and has no way to reveal one, and the API keeps it that way.
    return Fail(ErrorCode::kPermissionDenied,
                "a browser session may not reveal config values; use an API token (bifrost "
                "config get)");
  }
  if (principal.role == Role::kPlatformAdmin) return Ok();
  const Role role = principal.role;
  if (role == Role::kWorkflow) {
    // An execution token: its own organization's config, nothing else.
    const bool config = action == Action::kConfigRead || action == Action::kConfigReveal ||
                        action == Action::kConfigWrite;
    if (!config) {
      return Fail(Denied(role, action, " (an execution token reads and writes config only)"));
    }
    if (target.kind != Target::Kind::kOrg || !principal.org_id.has_value() ||
        *principal.org_id != target.org_id) {
      return Fail(Denied(role, action, " outside the organization the execution runs for"));
    }
    if (action == Action::kConfigWrite && !principal.execution_may_write) {
      return Fail(
          Denied(role, action, " (whoever started this execution may not write config either)"));
    }
    return Ok();
  }
  const std::optional<Role> least = LeastOrgRoleFor(action);
  if (!least.has_value()) return Fail(Denied(role, action, " (platform-admin only)"));
  switch (target.kind) {
    case Target::Kind::kPlatform:
      // Listing organizations (the handler shows an org role only its own) and the loaded
      // workflows (code, not data) is open to every stored token.
      if (action == Action::kOrgList || action == Action::kWorkflowList) return Ok();
      return Fail(Denied(role, action, " platform-wide"));
    case Target::Kind::kGlobalScope:
      return Fail(Denied(role, action,
                         " in the global scope directly; organization tokens see global entries "
                         "through their organization"));
    case Target::Kind::kOrg:
      // An org role without an org is an impossible principal; it gets nothing.
      if (!principal.org_id.has_value() || *principal.org_id != target.org_id) {
        return Fail(Denied(role, action, " of another organization"));
      }
      break;
  }
  if (OrgRank(role) < OrgRank(*least)) {
    return Fail(Denied(role, action, " (needs " + std::string(RoleName(*least)) + " or above)"));
  }
  return Ok();
}

TokenService::TokenService(store::Store& store, const Clock& clock)
    : store_(&store), clock_(&clock) {}

Result<CreatedToken> TokenService::Create(
    const NewToken& request, const Principal* creator,
    const store::CommitHookWith<store::TokenRow>& before_commit) {
  // Who may ask for what comes first, so that a caller without the right learns nothing
  // about the request's org.
  if (creator != nullptr) {
    if (request.role == Role::kPlatformAdmin && creator->role != Role::kPlatformAdmin) {
      return Fail(ErrorCode::kPermissionDenied,
                  "this token's role '" + std::string(RoleName(creator->role)) +
                      "' may not create platform-admin tokens (platform-admin only)");
    }
    const Target target =
        request.org_id.has_value() ? Target::Org(*request.org_id) : Target::Platform();
    BIFROST_RETURN_IF_ERROR(Authorize(*creator, Action::kTokenManage, target));
  }

  if (request.role == Role::kWorkflow) {
    return Fail(ErrorCode::kInvalidArgument,
                "workflow tokens are made by the server for each execution; choose another role");
  }
  if (request.role == Role::kPlatformAdmin && request.org_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument,
                "a platform-admin token belongs to no organization; omit the org");
  }
  if (request.role != Role::kPlatformAdmin && !request.org_id.has_value()) {
    return Fail(ErrorCode::kInvalidArgument,
                "a '" + std::string(RoleName(request.role)) + "' token needs an organization");
  }
  if (!request.name.empty()) BIFROST_RETURN_IF_ERROR(ValidateName(request.name));
  if (request.ttl_seconds.has_value() &&
      (*request.ttl_seconds <= 0 || *request.ttl_seconds > kMaxTokenTtlSeconds)) {
    return Fail(ErrorCode::kInvalidArgument,
                "token ttl_seconds " + std::to_string(*request.ttl_seconds) +
                    " must be between 1 and " + std::to_string(kMaxTokenTtlSeconds) +
                    " (10 years)");
  }

  const UnixMicros now = clock_->NowMicros();
  if (creator != nullptr && creator->expires_at.has_value()) {
    // Whole seconds the creator has left: the longest TTL that does not outlive it.
    const std::int64_t left = std::max<std::int64_t>(0, (*creator->expires_at - now) / 1'000'000);
    if (!request.ttl_seconds.has_value() || *request.ttl_seconds > left) {
      return Fail(ErrorCode::kInvalidArgument,
                  "a token cannot outlive the token that creates it (expires at " +
                      FormatUtcSeconds(*creator->expires_at) +
                      "); ask for ttl_seconds of at most " + std::to_string(left));
    }
  }

  BIFROST_ASSIGN_OR_RETURN(std::string id, crypto::NewUuidV4());
  BIFROST_ASSIGN_OR_RETURN(crypto::SecureBuffer token, GenerateTokenText());

  store::TokenRow row;
  row.id = id;
  row.name = request.name.empty() ? "token-" + id.substr(0, kGeneratedNameIdChars) : request.name;
  row.org_id = request.org_id;
  row.role = std::string(RoleName(request.role));
  row.hash = crypto::Sha256Hex(token.view());
  row.created_at = now;
  row.created_by = creator != nullptr ? creator->Actor() : std::string(kBootstrapActor);
  if (request.ttl_seconds.has_value()) row.expires_at = now + *request.ttl_seconds * 1'000'000;

  BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<store::Txn> txn, store_->Begin(store::TxnMode::kWrite));
  if (row.org_id.has_value()) {
    BIFROST_ASSIGN_OR_RETURN(const std::optional<store::OrgRow> org, txn->GetOrgById(*row.org_id));
    if (!org.has_value()) {
      return Fail(ErrorCode::kNotFound, "organization '" + *row.org_id + "' does not exist");
    }
  }
  BIFROST_RETURN_IF_ERROR(txn->InsertToken(row));
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, row));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return CreatedToken{std::move(row), std::move(token)};
}

Result<crypto::SecureBuffer> ExecutionTokens::Issue(const Grant& grant) {
  BIFROST_ASSIGN_OR_RETURN(crypto::SecureBuffer token, GenerateTokenText(kExecutionTokenPrefix));
  std::string hash = crypto::Sha256Hex(token.view());
  std::lock_guard<std::mutex> lock(mu_);
  if (hashes_.contains(grant.execution_id)) {
    return Fail(ErrorCode::kAlreadyExists,
                "execution " + grant.execution_id + " already has an execution token");
  }
  hashes_.emplace(grant.execution_id, hash);
  by_hash_.emplace(std::move(hash), grant);
  return token;
}

void ExecutionTokens::Revoke(std::string_view execution_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = hashes_.find(std::string(execution_id));
  if (it == hashes_.end()) return;
  by_hash_.erase(it->second);
  hashes_.erase(it);
}

std::optional<Principal> ExecutionTokens::Lookup(std::string_view token) const {
  if (!HasTokenShape(token, kExecutionTokenPrefix)) return std::nullopt;
  const std::string hash = crypto::Sha256Hex(token);
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end() || it->second.expires_at <= clock_->NowMicros()) return std::nullopt;
  const Grant& grant = it->second;
  Principal principal;
  principal.kind = PrincipalKind::kExecution;
  principal.token_id = grant.execution_id;
  principal.token_name = "workflow:" + grant.workflow;
  principal.role = Role::kWorkflow;
  principal.org_id = grant.org_id;
  principal.expires_at = grant.expires_at;
  principal.execution_id = grant.execution_id;
  principal.execution_may_write = grant.may_write;
  return principal;
}

std::size_t ExecutionTokens::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hashes_.size();
}

Result<Principal> TokenService::Authenticate(std::string_view token) {
  if (token.starts_with(kExecutionTokenPrefix)) {
    std::optional<Principal> principal;
    if (execution_tokens_ != nullptr) principal = execution_tokens_->Lookup(token);
    if (!principal.has_value()) return Fail(Unauthenticated());
    return std::move(*principal);
  }
  if (!HasTokenShape(token)) return Fail(Unauthenticated());
  const std::string hash = crypto::Sha256Hex(token);

  std::optional<store::TokenRow> row;
  {
    BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<store::Txn> txn, store_->Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(row, txn->GetTokenByHash(hash));
  }  // the reader goes back to the pool before the touch below takes the writer
  const UnixMicros now = clock_->NowMicros();
  if (!row.has_value() || row->revoked_at.has_value() ||
      (row->expires_at.has_value() && *row->expires_at <= now)) {
    return Fail(Unauthenticated());
  }

  Result<Role> role = ParseRole(row->role);
  if (!role || (*role == Role::kPlatformAdmin) == row->org_id.has_value()) {
    return Fail(ErrorCode::kCorrupt, "token '" + row->id + "' has an inconsistent role '" +
                                         row->role + "' for its organization");
  }

  MaybeTouch(*row, now);

  Principal principal;
  principal.token_id = std::move(row->id);
  principal.token_name = std::move(row->name);
  principal.role = *role;
  principal.org_id = std::move(row->org_id);
  principal.expires_at = row->expires_at;
  return principal;
}

void TokenService::MaybeTouch(const store::TokenRow& row, UnixMicros now) {
  const UnixMicros interval = kTouchInterval.count();
  std::optional<UnixMicros> previous;
  {
    std::lock_guard<std::mutex> lock(touch_mu_);
    auto it = last_touch_.find(row.id);
    if (it != last_touch_.end()) previous = it->second;
    // Another process (or this one before a restart) may have recorded a use recently.
    if (row.last_used_at.has_value() && (!previous || *row.last_used_at > *previous)) {
      previous = row.last_used_at;
    }
    if (previous.has_value() && now - *previous < interval) {
      if (it == last_touch_.end()) last_touch_.emplace(row.id, *previous);
      return;
    }
    // Claimed before the write, so concurrent requests with the same token do not all write.
    last_touch_[row.id] = now;
  }

  Status touched = [&]() -> Status {
    BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<store::Txn> txn,
                             store_->Begin(store::TxnMode::kWrite));
    BIFROST_RETURN_IF_ERROR(txn->TouchToken(row.id, now));
    return txn->Commit();
  }();
  if (!touched) {
    // Best effort: the request goes on. Give the claim back so that a later request retries.
    std::lock_guard<std::mutex> lock(touch_mu_);
    auto it = last_touch_.find(row.id);
    if (it != last_touch_.end() && it->second == now) {
      if (previous.has_value()) {
        it->second = *previous;
      } else {
        last_touch_.erase(it);
      }
    }
  }
}

Result<std::vector<store::TokenRow>> TokenService::List(const Principal& caller,
                                                        std::optional<std::string> org_id) {
  if (caller.role != Role::kPlatformAdmin && !org_id.has_value() && caller.org_id.has_value()) {
    org_id = caller.org_id;  // an org admin lists its own organization's tokens
  }
  BIFROST_RETURN_IF_ERROR(
      Authorize(caller, Action::kTokenManage,
                org_id.has_value() ? Target::Org(*org_id) : Target::Platform()));
  BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<store::Txn> txn, store_->Begin(store::TxnMode::kRead));
  if (org_id.has_value()) {
    BIFROST_ASSIGN_OR_RETURN(const std::optional<store::OrgRow> org, txn->GetOrgById(*org_id));
    if (!org.has_value()) {
      return Fail(ErrorCode::kNotFound, "organization '" + *org_id + "' does not exist");
    }
    return txn->ListTokens(std::string_view(*org_id));
  }
  return txn->ListTokens(std::nullopt);
}

Status TokenService::Revoke(const Principal& caller, std::string_view token_id,
                            const store::CommitHookWith<store::TokenRow>& before_commit) {
  if (caller.role != Role::kPlatformAdmin) {
    if (caller.role != Role::kAdmin || !caller.org_id.has_value()) {
      return Fail(Denied(caller.role, Action::kTokenManage, ""));
    }
  }
  BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<store::Txn> txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(const std::optional<store::TokenRow> row, txn->GetTokenById(token_id));
  if (caller.role != Role::kPlatformAdmin) {
    // Absent and foreign tokens get the same answer: an org admin cannot probe for ids.
    if (!row.has_value() || row->org_id != caller.org_id) {
      return Fail(ErrorCode::kPermissionDenied,
                  "this token's role 'admin' may only revoke tokens of its own organization");
    }
  }
  BIFROST_RETURN_IF_ERROR(txn->RevokeToken(token_id, clock_->NowMicros()));
  if (before_commit && row.has_value()) BIFROST_RETURN_IF_ERROR(before_commit(*txn, *row));
  return txn->Commit();
}

}  // namespace bifrost::auth
