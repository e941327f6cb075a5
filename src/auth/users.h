// Users and their browser sessions (docs/web-ui.md).
//
// A user is a person who signs in to the web UI with an email and a password (Argon2id,
// auth/password.h). Users have the roles and the organization isolation of tokens: a signed-in
// user is a Principal of kind kUser, and auth::Authorize decides what it may do exactly as
// for a token of the same role and org.
//
// A session is "bfs_" + 43 base64url characters, kept by the browser in an HttpOnly cookie;
// the store has only its SHA-256. It ends after the idle timeout without a request, at its
// absolute lifetime, at sign-out, and when its user is disabled or gets a new password. Its
// CSRF token is derived from the session token (CsrfTokenFor), so nothing more is stored.
//
// Sign-in failures are counted per client address and per account (FailureLimiter); above
// either limit a sign-in is refused before the password is checked. Unknown emails are
// checked against a dummy hash, so that they take as long as a wrong password.
//
// Thread-safety: UserService and SessionService are safe to use from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>
#include <vector>

#include "auth/auth.h"
#include "auth/password.h"
#include "auth/rate_limiter.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/secure_buffer.h"
#include "store/store.h"

namespace bifrost::auth {

// OK, or kInvalidArgument: 3 to 254 bytes of printable ASCII without spaces, exactly one '@'
// with something on both sides. Emails are compared in lower case (NormalizeEmail).
Status ValidateEmail(std::string_view email);
std::string NormalizeEmail(std::string_view email);

struct NewUser {
  std::string email;
  Role role = Role::kReader;
  std::optional<std::string> org_id;  // required for org roles, forbidden for platform-admin
};

class UserService {
 public:
  // `store` and `clock` must outlive the service. `cost`: of new password hashes.
  UserService(store::Store& store, const Clock& clock, PasswordCost cost = {});

  // Creates a user. `creator` nullptr is the bootstrap (dev mode), which may create
  // anything. Otherwise platform-admin creates any role, an org admin admin/member/reader
  // users of its own org (kPermissionDenied otherwise, before anything else is looked at).
  // kInvalidArgument for a bad email, password or role/org combination; kAlreadyExists for
  // an email in use; kNotFound if the org does not exist. `before_commit` runs inside the
  // write transaction (the audit record).
  Result<store::UserRow> Create(const NewUser& request, std::string_view password,
                                const Principal* creator,
                                const store::CommitHookWith<store::UserRow>& before_commit = {});

  // Users visible to `caller`, by email: platform-admin all (or one org's), org admin its
  // org's; everyone else kPermissionDenied.
  Result<std::vector<store::UserRow>> List(const Principal& caller,
                                           std::optional<std::string> org_id);

  // `user` is an id or an email. Platform-admin: any user; org admin: users of its org (any
  // other, existing or not, is kPermissionDenied). Disabling ends every session of the user
  // and revokes every token the user created;
  // disabling a disabled user succeeds and keeps the first time. A user cannot disable itself.
  Result<store::UserRow> Disable(const Principal& caller, std::string_view user,
                                 const store::CommitHookWith<store::UserRow>& before_commit = {});

  // Sets a new password (as Disable for who may) and ends every session of the user.
  Result<store::UserRow> SetPassword(
      const Principal& caller, std::string_view user, std::string_view password,
      const store::CommitHookWith<store::UserRow>& before_commit = {});

 private:
  // The user named by `user` if `caller` may manage it, else kPermissionDenied / kNotFound.
  Result<store::UserRow> FindManaged(store::Txn& txn, const Principal& caller,
                                     std::string_view user);

  store::Store* store_;
  const Clock* clock_;
  PasswordCost cost_;
};

struct SessionOptions {
  std::int64_t idle_timeout_seconds = 30 * 60;
  std::int64_t lifetime_seconds = 12 * 60 * 60;
  // Sign-in failures allowed per client address and per account within the window.
  std::size_t max_failures_per_address = 20;
  std::size_t max_failures_per_account = 5;
  std::int64_t failure_window_seconds = 10 * 60;
  // Password checks running at once (each takes the hash's memory, 64 MiB by default, and a
  // server thread for its duration); a sign-in beyond them is answered busy at once.
  std::ptrdiff_t max_concurrent_checks = 2;
};

// The CSRF token of a session: the hex SHA-256 of "bifrost-csrf:" + the session token. A page
// of another origin can neither read the cookie nor compute this.
std::string CsrfTokenFor(std::string_view session_token);

class SessionService {
 public:
  // `store` and `clock` must outlive the service.
  SessionService(store::Store& store, const Clock& clock, SessionOptions options = {});

  struct SignedIn {
    store::UserRow user;
    store::SessionRow session;
    crypto::SecureBuffer token;  // "bfs_..."; goes only into the cookie
    std::string csrf_token;
  };
  struct LoginOutcome {
    // kBusy: max_concurrent_checks verifications are running; nothing was checked.
    enum class Kind { kSignedIn, kWrongCredentials, kRateLimited, kBusy };
    Kind kind = Kind::kWrongCredentials;
    std::optional<SignedIn> signed_in;     // for kSignedIn
    std::optional<store::UserRow> user;    // the existing user the email named, if any
    std::int64_t retry_after_seconds = 0;  // for kRateLimited
    std::string why;                       // for the audit record: never the password
  };
  // Checks the email and password of a sign-in from `client_address` ("ip:port"), and on
  // success stores a new session (deleting expired ones) with `before_commit` in the same
  // transaction (the audit record). Errors are the store's only: a refusal is an outcome.
  // `limit_address`, when not empty, is the client the per-address limit counts instead of
  // the host of `client_address` (the client a trusted proxy forwarded for).
  Result<LoginOutcome> Login(std::string_view email, std::string_view password,
                             std::string_view client_address,
                             const store::CommitHookWith<SignedIn>& before_commit = {},
                             std::string_view limit_address = {});

  // The host of "ip:port" or "[v6]:port" (the port changes with every connection).
  static std::string HostOf(std::string_view client_address);

  // The principal of a live session token (kUnauthenticated "invalid or expired session"
  // otherwise: unknown, ended, idle too long, past its lifetime, or its user disabled).
  // Records activity at most every few seconds (a failure to record it does not fail the call).
  Result<Principal> Authenticate(std::string_view session_token);

  // Ends the session of `principal` (a user's). `before_commit` as for Login.
  Status Logout(const Principal& principal, const store::CommitHook& before_commit = {});

  // The user of a live session and the session's end (absolute, or idle from now, whichever
  // comes first). kUnauthenticated as Authenticate.
  struct Current {
    store::UserRow user;
    UnixMicros expires_at = 0;
  };
  Result<Current> Describe(std::string_view session_token);

  const SessionOptions& options() const { return options_; }

 private:
  UnixMicros TouchInterval() const;

  store::Store* store_;
  const Clock* clock_;
  SessionOptions options_;
  FailureLimiter by_address_;
  FailureLimiter by_account_;
  std::counting_semaphore<64> checks_;
};

}  // namespace bifrost::auth
