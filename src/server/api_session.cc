// Sign-in, sign-out and the current session (/api/v1/auth/...), and users (/api/v1/users...):
// docs/web-ui.md.
#include <optional>
#include <string>
#include <utility>

#include "common/text.h"
#include "server/api_internal.h"
#include "server/errors.h"

namespace bifrost::server::api_internal {
namespace {

using auth::Action;
using auth::Target;

constexpr UnixMicros kMicros = 1'000'000;

// A user as listed: never its password hash.
Json UserJson(const store::UserRow& row) {
  return {{"id", row.id},
          {"email", row.email},
          {"role", row.role},
          {"org_id", row.org_id ? Json(*row.org_id) : Json()},
          {"disabled", row.disabled_at.has_value()},
          {"created_at", json_io::FormatTimestamp(row.created_at)},
          {"created_by", row.created_by},
          {"last_login_at", json_io::TimestampOrNull(row.last_login_at)}};
}

// The principal a user signs in as: for the records of its sign-in.
auth::Principal UserPrincipal(const store::UserRow& user) {
  auth::Principal principal;
  principal.kind = auth::PrincipalKind::kUser;
  principal.token_id = user.id;
  principal.token_name = user.email;
  principal.role = auth::ParseRole(user.role).value_or(auth::Role::kReader);
  principal.org_id = user.org_id;
  return principal;
}

HttpResponse NoSessions() {
  return ErrorResponse(503, "unavailable", "this server does not accept users");
}

std::string SessionCookieHeader(const ApiContext& context, std::string_view value,
                                std::int64_t max_age_seconds) {
  std::string cookie(kSessionCookieName);
  cookie += '=';
  cookie += value;
  cookie += "; Path=/; HttpOnly; SameSite=Strict; Max-Age=";
  cookie += std::to_string(max_age_seconds);
  if (context.secure_cookies) cookie += "; Secure";
  return cookie;
}

Json SessionJson(const store::UserRow& user, std::string_view csrf_token, UnixMicros expires_at,
                 std::int64_t idle_timeout_seconds) {
  return {{"user", UserJson(user)},
          {"csrf_token", csrf_token},
          {"expires_at", json_io::FormatTimestamp(expires_at)},
          {"idle_timeout_seconds", idle_timeout_seconds}};
}

// Wipes the copy of a password a field reader made, however the handler returns.
class WipeOptional {
 public:
  explicit WipeOptional(std::optional<std::string>& text) : text_(text) {}
  ~WipeOptional() {
    if (text_) crypto::SecureWipe(text_->data(), text_->size());
  }
  WipeOptional(const WipeOptional&) = delete;
  WipeOptional& operator=(const WipeOptional&) = delete;

 private:
  std::optional<std::string>& text_;
};

// The client a trusted proxy forwarded this request for: the right-most address of
// X-Forwarded-For that is not itself a trusted proxy, when the connection comes from one;
// "" otherwise (then the connection's own address is the client).
std::string ForwardedClient(const ApiContext& context, const HttpRequest& request) {
  if (context.trusted_proxies.empty()) return "";
  const auto trusted = [&](std::string_view host) {
    for (const auto& proxy : context.trusted_proxies) {
      if (proxy == host) return true;
    }
    return false;
  };
  if (!trusted(auth::SessionService::HostOf(request.client_address))) return "";
  std::string_view forwarded = request.Header("x-forwarded-for");
  while (!forwarded.empty()) {
    const std::size_t comma = forwarded.rfind(',');
    std::string_view hop =
        comma == std::string_view::npos ? forwarded : forwarded.substr(comma + 1);
    forwarded = comma == std::string_view::npos ? std::string_view() : forwarded.substr(0, comma);
    while (!hop.empty() && (hop.front() == ' ' || hop.front() == '\t')) hop.remove_prefix(1);
    while (!hop.empty() && (hop.back() == ' ' || hop.back() == '\t')) hop.remove_suffix(1);
    // An address, nothing else: the header is the client's to write before the proxy.
    if (hop.empty() || hop.size() > 45 ||
        hop.find_first_not_of("0123456789abcdefABCDEF.:") != std::string_view::npos) {
      return "";
    }
    if (!trusted(hop)) return std::string(hop);
  }
  return "";
}

HttpResponse Login(const ApiContext& context, const HttpRequest& request) {
  if (context.sessions == nullptr) return NoSessions();
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  const json_io::WipeOnExit wipe(*body);
  if (auto unknown = json_io::FindUnknownField(*body, {"email", "password"}, "a sign-in")) {
    return BadRequest(*unknown);
  }
  auto email = json_io::OptionalString(*body, "email");
  if (!email) return BadRequest(email.error());
  auto password = json_io::OptionalString(*body, "password");
  if (!password) return BadRequest(password.error());
  const WipeOptional wipe_password(*password);  // the body's copy is wiped by `wipe`
  if (!*email || !*password) return BadRequest("fields 'email' and 'password' are required");
  const std::string& secret = **password;

  const PathParams no_params;
  // Behind a trusted proxy, the client it forwarded for is the one the limit counts, and the
  // records name it too (client_address stays the connection's).
  const std::string forwarded = ForwardedClient(context, request);
  const std::string forwarded_note = forwarded.empty() ? "" : "; forwarded for " + forwarded;
  auto outcome = context.sessions->Login(
      **email, secret, request.client_address,
      [&](store::Txn& txn, const auth::SessionService::SignedIn& signed_in) {
        const auth::Principal principal = UserPrincipal(signed_in.user);
        audit::Event event = EventFor(request, no_params, &principal, audit::actions::kAuthLogin,
                                      audit::Outcome::kSuccess);
        event.org_id = signed_in.user.org_id;
        event.detail = "session " + signed_in.session.id + forwarded_note;
        return RecordInTxn(context, std::move(event))(txn);
      },
      forwarded);
  if (!outcome) return ServiceError(outcome.error(), request);

  using Kind = auth::SessionService::LoginOutcome::Kind;
  if (outcome->kind == Kind::kSignedIn) {
    const auto& signed_in = *outcome->signed_in;
    HttpResponse response = JsonResponse(
        200, SessionJson(signed_in.user, signed_in.csrf_token,
                         std::min(signed_in.session.expires_at,
                                  signed_in.session.last_seen_at +
                                      context.sessions->options().idle_timeout_seconds * kMicros),
                         context.sessions->options().idle_timeout_seconds));
    response.headers.emplace_back(
        "Set-Cookie", SessionCookieHeader(context, signed_in.token.view(),
                                          context.sessions->options().lifetime_seconds));
    return HoldForSync(context, std::move(response), request.request_id);
  }

  // A refusal: recorded before it is answered. The record names the user only when the
  // email is an existing user's (never what was typed: it may be a password).
  std::optional<auth::Principal> user;
  if (outcome->user) user = UserPrincipal(*outcome->user);
  audit::Event event = EventFor(request, no_params, user ? &*user : nullptr,
                                audit::actions::kAuthLogin, audit::Outcome::kDenied);
  if (outcome->user) event.org_id = outcome->user->org_id;
  event.detail = outcome->why + forwarded_note;
  HttpResponse response;
  if (outcome->kind == Kind::kRateLimited) {
    response = ErrorResponse(429, "rate_limited",
                             "too many failed sign-ins; try again in " +
                                 std::to_string(outcome->retry_after_seconds) + " s");
    response.headers.emplace_back("Retry-After", std::to_string(outcome->retry_after_seconds));
  } else if (outcome->kind == Kind::kBusy) {
    response = ErrorResponse(503, "unavailable",
                             "too many sign-ins are being checked right now; try again in a "
                             "second");
    response.headers.emplace_back("Retry-After", "1");
  } else {
    response = ErrorResponse(401, "unauthenticated", "wrong email or password");
  }
  return HoldForRecord(context, std::move(response), std::move(event));
}

HttpResponse Logout(const ApiContext& context, const HttpRequest& request, const PathParams& params,
                    const auth::Principal& principal) {
  if (context.sessions == nullptr) return NoSessions();
  audit::Event event =
      EventFor(request, params, &principal, audit::actions::kAuthLogout, audit::Outcome::kSuccess);
  event.org_id = principal.org_id;  // filed with the user's organization, like its sign-in
  auto done = context.sessions->Logout(principal, RecordInTxn(context, std::move(event)));
  if (!done) {
    if (done.error().code() == ErrorCode::kInvalidArgument) {
      return BadRequest(done.error().message());
    }
    return ServiceError(done.error(), request);
  }
  HttpResponse response = NoContent();
  response.headers.emplace_back("Set-Cookie", SessionCookieHeader(context, "", 0));
  return response;
}

HttpResponse CurrentSession(const ApiContext& context, const HttpRequest& request,
                            const PathParams&, const auth::Principal& principal) {
  if (context.sessions == nullptr) return NoSessions();
  const auto cookie = SessionCookie(request);
  if (principal.kind != auth::PrincipalKind::kUser || !cookie) {
    return BadRequest(
        "this route describes a browser session; this request was made with a token (see "
        "GET /api/v1/whoami)");
  }
  auto current = context.sessions->Describe(*cookie);
  if (!current) return ServiceError(current.error(), request);
  return JsonResponse(200,
                      SessionJson(current->user, auth::CsrfTokenFor(*cookie), current->expires_at,
                                  context.sessions->options().idle_timeout_seconds));
}

// "user <id>", for the record of a change to a user.
std::string UserDetail(const store::UserRow& row) { return "user " + row.id; }

HttpResponse ListUsers(const ApiContext& context, const HttpRequest& request, const PathParams&,
                       const auth::Principal& principal) {
  if (context.users == nullptr) return NoSessions();
  std::optional<std::string> org_id;
  if (const auto it = request.query.find("org_id"); it != request.query.end()) {
    org_id = it->second;
  }
  auto users = context.users->List(principal, org_id);
  if (!users) return ServiceError(users.error(), request);
  Json out = Json::array();
  for (const auto& row : *users) out.push_back(UserJson(row));
  return JsonResponse(200, out);
}

HttpResponse CreateUser(const ApiContext& context, const HttpRequest& request,
                        const PathParams& params, const auth::Principal& principal) {
  if (context.users == nullptr) return NoSessions();
  if (auto denied =
          Deny(principal, Action::kUserManage,
               principal.org_id ? Target::Org(*principal.org_id) : Target::Platform(), request)) {
    return *denied;
  }
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  const json_io::WipeOnExit wipe(*body);
  if (auto unknown = json_io::FindUnknownField(*body, {"email", "password", "role", "org_id"},
                                               "a user request")) {
    return BadRequest(*unknown);
  }
  auto email = json_io::OptionalString(*body, "email");
  if (!email) return BadRequest(email.error());
  auto password = json_io::OptionalString(*body, "password");
  if (!password) return BadRequest(password.error());
  const WipeOptional wipe_password(*password);
  auto role_name = json_io::OptionalString(*body, "role");
  if (!role_name) return BadRequest(role_name.error());
  auto org_id = json_io::OptionalString(*body, "org_id");
  if (!org_id) return BadRequest(org_id.error());
  if (!*email || !*password || !*role_name) {
    return BadRequest("fields 'email', 'password' and 'role' are required");
  }
  auto role = auth::ParseRole(**role_name);
  if (!role) return ServiceError(role.error(), request);
  const audit::Event recorded =
      EventFor(request, params, &principal, audit::actions::kUserCreate, audit::Outcome::kSuccess);
  auto created =
      context.users->Create({.email = **email, .role = *role, .org_id = *org_id}, **password,
                            &principal, [&](store::Txn& txn, const store::UserRow& row) {
                              audit::Event event = recorded;
                              event.org_id = row.org_id;
                              event.detail = UserDetail(row);
                              return RecordInTxn(context, std::move(event))(txn);
                            });
  if (!created) return ServiceError(created.error(), request);
  return JsonResponse(201, UserJson(*created));
}

HttpResponse DisableUser(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  if (context.users == nullptr) return NoSessions();
  const audit::Event recorded =
      EventFor(request, params, &principal, audit::actions::kUserDisable, audit::Outcome::kSuccess);
  auto disabled = context.users->Disable(principal, params.at("user"),
                                         [&](store::Txn& txn, const store::UserRow& row) {
                                           audit::Event event = recorded;
                                           event.org_id = row.org_id;
                                           event.detail = UserDetail(row);
                                           return RecordInTxn(context, std::move(event))(txn);
                                         });
  if (!disabled) return ServiceError(disabled.error(), request);
  return JsonResponse(200, UserJson(*disabled));
}

HttpResponse SetPassword(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  if (context.users == nullptr) return NoSessions();
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  const json_io::WipeOnExit wipe(*body);
  if (auto unknown = json_io::FindUnknownField(*body, {"password"}, "a password change")) {
    return BadRequest(*unknown);
  }
  auto password = json_io::OptionalString(*body, "password");
  if (!password) return BadRequest(password.error());
  const WipeOptional wipe_password(*password);
  if (!*password) return BadRequest("field 'password' is required");
  const audit::Event recorded = EventFor(request, params, &principal, audit::actions::kUserPassword,
                                         audit::Outcome::kSuccess);
  auto changed = context.users->SetPassword(principal, params.at("user"), **password,
                                            [&](store::Txn& txn, const store::UserRow& row) {
                                              audit::Event event = recorded;
                                              event.org_id = row.org_id;
                                              event.detail = UserDetail(row);
                                              return RecordInTxn(context, std::move(event))(txn);
                                            });
  if (!changed) return ServiceError(changed.error(), request);
  return NoContent();
}

}  // namespace

void RegisterSessionRoutes(Router& router, const SharedContext& context) {
  router.Add("POST", "/api/v1/auth/login",
             Guarded(context->log, [context](const HttpRequest& request, const PathParams&,
                                             RequestLog&) { return Login(*context, request); }));
  router.Add("POST", "/api/v1/auth/logout",
             Authenticated(context, {audit::actions::kAuthLogout, AuditMode::kMutation}, Logout));
  router.Add("GET", "/api/v1/auth/session",
             Authenticated(context, {"auth.session", AuditMode::kDenials}, CurrentSession));
  router.Add("GET", "/api/v1/users",
             Authenticated(context, {"user.list", AuditMode::kDenials}, ListUsers, {"org_id"}));
  router.Add(
      "POST", "/api/v1/users",
      Authenticated(context, {audit::actions::kUserCreate, AuditMode::kMutation}, CreateUser));
  router.Add(
      "POST", "/api/v1/users/{user}/disable",
      Authenticated(context, {audit::actions::kUserDisable, AuditMode::kMutation}, DisableUser));
  router.Add(
      "PUT", "/api/v1/users/{user}/password",
      Authenticated(context, {audit::actions::kUserPassword, AuditMode::kMutation}, SetPassword));
}

}  // namespace bifrost::server::api_internal
