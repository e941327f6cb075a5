// Tokens, roles and authorization.
//
// A token is "bft_" followed by 43 base64url characters (256 bits from the CSPRNG). It is
// shown once, at creation; the store keeps only its SHA-256. Authenticate() turns the text
// of an Authorization header into a Principal; Authorize() is the single place that decides
// what a Principal may do. Unknown, expired and revoked tokens are indistinguishable to the
// caller (one kUnauthenticated message), and a denial never says anything about another
// organization's data.
//
// Roles:
//   platform-admin  every organization and the global scope; manages orgs and all tokens
//   admin           one org: read, reveal and write its config; manage its tokens
//   member          one org: read its config and reveal secrets (applications, workflows)
//   reader          one org: read its config and secret metadata, never a secret's value
//   workflow        one running workflow execution (an execution token, "bfx_..."): read,
//                   reveal and write its org's config and nothing else; never stored, gone
//                   when the execution ends (ExecutionTokens)
// Org roles see the global scope only through their org's org->global fallback; only
// platform admins address the global scope directly.
//
// Thread-safety: TokenService is safe to use from many threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "crypto/secure_buffer.h"
#include "store/store.h"

namespace bifrost::auth {

// Secret token texts: PREFIX followed by the unpadded base64url of 32 CSPRNG bytes (43
// characters). "bft_" API tokens, "bfx_" execution tokens, "bfs_" browser sessions.
inline constexpr std::string_view kTokenPrefix = "bft_";
inline constexpr std::string_view kExecutionTokenPrefix = "bfx_";
inline constexpr std::string_view kSessionTokenPrefix = "bfs_";
// A fresh token text with `prefix`; every intermediate copy is wiped.
Result<crypto::SecureBuffer> GenerateTokenText(std::string_view prefix = kTokenPrefix);
// ^PREFIX[A-Za-z0-9_-]{43}$, checked before anything else looks at the text.
bool HasTokenShape(std::string_view token, std::string_view prefix = kTokenPrefix);

enum class Role { kPlatformAdmin, kAdmin, kMember, kReader, kWorkflow };

std::string_view RoleName(Role role);  // "platform-admin", "admin", "member", "reader", "workflow"
// The role of a stored token (not "workflow": execution tokens are never stored or created
// through the API). kInvalidArgument naming the accepted roles for anything else.
Result<Role> ParseRole(std::string_view name);

// How a caller proved who it is.
enum class PrincipalKind {
  kToken,      // a stored API token ("bft_...")
  kExecution,  // a running workflow execution's token ("bfx_...")
  kUser,       // a signed-in user's browser session (docs/web-ui.md)
};

// Who is calling: the token or the user, never a secret text.
struct Principal {
  // The token's id and name; for a user, the user's id and email.
  std::string token_id;
  std::string token_name;
  Role role = Role::kReader;
  std::optional<std::string> org_id;  // nullopt only for platform-admin
  // When the calling token expires (nullopt: never). A token it creates may not outlive it.
  std::optional<UnixMicros> expires_at;
  // Set for an execution token (role kWorkflow): the execution it belongs to. token_id is
  // then the execution id too, and token_name "workflow:<workflow name>".
  std::optional<std::string> execution_id;
  // An execution token may write config only when whoever started the execution may.
  bool execution_may_write = false;
  // Set for a user (kind kUser): the session the request came with.
  std::optional<std::string> session_id;
  PrincipalKind kind = PrincipalKind::kToken;

  // How this caller is recorded as a config entry's updated_by: "token:<name>/<id>",
  // "workflow:<name>/<execution id>" for an execution, "user:<email>/<id>" for a user.
  std::string Actor() const;
};

enum class Action {
  kOrgCreate,        // create an organization (target: platform)
  kOrgList,          // list organizations (target: platform; org roles see only their own)
  kOrgRead,          // get one organization (target: that org)
  kOrgDelete,        // delete an organization (target: that org)
  kConfigRead,       // list/get entries, secrets masked (target: org or global)
  kConfigReveal,     // read a value, secrets decrypted (target: org or global)
  kConfigWrite,      // create/replace/delete entries (target: org or global)
  kTokenManage,      // create, list, revoke tokens (target: platform, or the tokens' org)
  kUserManage,       // create, list, disable users, set passwords (target: platform or the org)
  kAuditRead,        // read the audit log (target: platform for all of it, or one org's records)
  kWorkflowList,     // list the loaded workflows (target: platform; every stored token's role)
  kWorkflowReload,   // reload the workflows directory (target: platform; platform-admin only)
  kWorkflowRun,      // start an execution (target: the org it runs for; member or above)
  kExecutionRead,    // list and read executions and their logs (target: their org; reader+)
  kExecutionCancel,  // cancel an execution (target: its org; member or above)
};

// What an action is applied to.
struct Target {
  enum class Kind { kPlatform, kGlobalScope, kOrg };
  Kind kind = Kind::kPlatform;
  std::string org_id;  // for kOrg

  static Target Platform() { return {Kind::kPlatform, {}}; }
  static Target Global() { return {Kind::kGlobalScope, {}}; }
  static Target Org(std::string id) { return {Kind::kOrg, std::move(id)}; }
};

// OK, or kPermissionDenied with a message that names the action and the caller's role but
// nothing of the target beyond what the caller sent.
Status Authorize(const Principal& principal, Action action, const Target& target);

// The longest accepted token lifetime: ten years of 365.25 days (10 * 365.25 * 86400 s).
inline constexpr std::int64_t kMaxTokenTtlSeconds = 315'576'000;

struct NewToken {
  std::string name;  // empty: a name is made up ("token-<first 8 of id>")
  Role role = Role::kReader;
  std::optional<std::string> org_id;        // required for org roles, forbidden for platform-admin
  std::optional<std::int64_t> ttl_seconds;  // expiry; nullopt = never
};

struct CreatedToken {
  store::TokenRow row;
  crypto::SecureBuffer token;  // "bft_..."; shown once
};

// The execution tokens of the running workflow executions of this process: "bfx_" followed
// by 43 base64url characters, kept only in memory (as SHA-256), each valid for one execution
// until it is revoked (when the execution ends) or its expiry passes, whichever is first.
// Thread-safe.
class ExecutionTokens {
 public:
  explicit ExecutionTokens(const Clock& clock) : clock_(&clock) {}

  struct Grant {
    std::string execution_id;
    std::string workflow;
    std::string org_id;
    UnixMicros expires_at = 0;
    // Whether the execution may write its organization's config: only when whoever started
    // it may (a member's run reads and reveals, an admin's also writes).
    bool may_write = false;
  };
  // A new token for `grant` (shown once: only its hash is kept). kAlreadyExists if the
  // execution already has one.
  Result<crypto::SecureBuffer> Issue(const Grant& grant);
  // Ends the execution's token (no effect if it has none).
  void Revoke(std::string_view execution_id);
  // The principal of a live token (role kWorkflow), or nullopt.
  std::optional<Principal> Lookup(std::string_view token) const;
  std::size_t size() const;

 private:
  const Clock* clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Grant> by_hash_;       // SHA-256 hex -> grant
  std::unordered_map<std::string, std::string> hashes_;  // execution id -> hash
};

class TokenService {
 public:
  // `store` and `clock` must outlive the service.
  TokenService(store::Store& store, const Clock& clock);

  // Creates a token. `creator` nullptr means the bootstrap (bifrost init / dev mode), which
  // may create anything. Otherwise: platform-admin may create any role; an org admin only
  // admin/member/reader tokens of its own org (kPermissionDenied otherwise). kInvalidArgument
  // for inconsistent role/org, a bad name (1-100 bytes, printable UTF-8), a TTL outside
  // 1..kMaxTokenTtlSeconds, or, when the creator's token expires, no TTL or one that would
  // outlive the creator's token (a token cannot extend its own lifetime by minting another);
  // kNotFound if the org does not exist (checked only after the creator was found allowed
  // to name it).
  // `before_commit` (optional) runs inside the write transaction after the insert (the
  // audit record); its error rolls the creation back.
  Result<CreatedToken> Create(const NewToken& request, const Principal* creator,
                              const store::CommitHookWith<store::TokenRow>& before_commit = {});

  // The principal of a token text (without "Bearer "). kUnauthenticated with the message
  // "invalid, expired or revoked token" for anything that is not a live token. Updates the
  // token's last_used_at at most once a minute, in a write transaction of its own (so the
  // calling thread must not hold one); a failure to record it does not fail the call.
  // Other errors are the store's (kUnavailable, ...).
  Result<Principal> Authenticate(std::string_view token);

  // Execution tokens ("bfx_...") are looked up in `tokens` from now on (nullptr: none are
  // accepted). `tokens` must outlive the service. Call before serving.
  void AcceptExecutionTokens(ExecutionTokens* tokens) { execution_tokens_ = tokens; }

  // Tokens visible to `caller`, newest first (platform-admin: all, or one org's with `org_id`,
  // kNotFound if that org does not exist; org admin: its org's, whether `org_id` is nullopt or
  // its own org; others, and an org admin naming another org: kPermissionDenied).
  Result<std::vector<store::TokenRow>> List(const Principal& caller,
                                            std::optional<std::string> org_id);

  // Revokes a token. Platform-admin: any (kNotFound if absent). Org admin: only tokens of its
  // org; any other id, existing or not, is kPermissionDenied.
  // `before_commit` as for Create; it is told the token being revoked.
  Status Revoke(const Principal& caller, std::string_view token_id,
                const store::CommitHookWith<store::TokenRow>& before_commit = {});

 private:
  // How often last_used_at is written for one token, at most.
  static constexpr std::chrono::microseconds kTouchInterval = std::chrono::seconds(60);

  // Records that `row` was used at `now`, unless it was recorded less than kTouchInterval ago.
  void MaybeTouch(const store::TokenRow& row, UnixMicros now);

  store::Store* store_;
  const Clock* clock_;
  ExecutionTokens* execution_tokens_ = nullptr;
  std::mutex touch_mu_;
  std::unordered_map<std::string, UnixMicros> last_touch_;  // token id -> last write
};

}  // namespace bifrost::auth
