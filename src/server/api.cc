#include "server/api.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/text.h"
#include "config/config_types.h"
#include "server/access_log.h"
#include "server/api_internal.h"
#include "server/errors.h"
#include "server/openapi_document.h"

namespace bifrost::server {
namespace api_internal {
namespace {

// The one message for every credential that does not identify a live token, so a caller
// cannot tell a missing header from a revoked token (auth::TokenService uses it too).
constexpr std::string_view kUnauthenticatedMessage = "invalid, expired or revoked token";

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The token of "Bearer <token>" (scheme case-insensitive, RFC 7235), or nullopt.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() ||
      !EqualsIgnoringCase(header.substr(0, kScheme.size()), kScheme) ||
      header[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

// The log of the handler running on this thread, set by Guarded for the handler's
// duration. ServiceError is called deep inside handlers with only the request at hand; a
// thread-local spares every handler file from passing the log down. (Handlers run
// synchronously on one pool thread, so the scope is exact.)
thread_local AccessLog* t_handler_log = nullptr;

AccessLog& StderrLog() {
  static AccessLog log(std::cerr);
  return log;
}

AccessLog& HandlerLog() { return t_handler_log != nullptr ? *t_handler_log : StderrLog(); }

class HandlerLogScope {
 public:
  explicit HandlerLogScope(AccessLog* log) : previous_(t_handler_log) { t_handler_log = log; }
  ~HandlerLogScope() { t_handler_log = previous_; }
  HandlerLogScope(const HandlerLogScope&) = delete;
  HandlerLogScope& operator=(const HandlerLogScope&) = delete;

 private:
  AccessLog* previous_;
};

HttpResponse Unauthenticated(const Error& error, const HttpRequest& request) {
  HttpResponse response = ServiceError(error, request);
  if (response.status == 401) {
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"bifrost\"");
  }
  return response;
}

}  // namespace

Handler Guarded(AccessLog* log, Handler handler) {
  return [log, handler = std::move(handler)](const HttpRequest& request, const PathParams& params,
                                             RequestLog& request_log) -> HttpResponse {
    const HandlerLogScope scope(log);
    try {
      return handler(request, params, request_log);
    } catch (...) {
      // Logged through ServiceError with the request id only: not the exception's text
      // (parser and library messages can quote input), not the raw path (the access-log
      // line with the same request id names the route template).
      return ServiceError(Error(ErrorCode::kInternal, "a request handler threw an exception"),
                          request);
    }
  };
}

namespace {

// The error code of an error response ("permission_denied"), for the record's detail.
std::string ErrorCodeOf(const HttpResponse& response) {
  auto parsed = json_io::ParseJson(response.body);
  if (parsed && parsed->is_object()) {
    const auto error = parsed->find("error");
    if (error != parsed->end() && error->is_object()) {
      const auto code = error->find("code");
      if (code != error->end() && code->is_string()) return code->get<std::string>();
    }
  }
  std::string detail = "http ";
  detail += std::to_string(response.status);
  return detail;
}

// Puts `text` first in the record's detail (before what EventFor put there, e.g. the target).
void AddDetail(audit::Event& event, std::string_view text) {
  std::string detail(text);
  if (!event.detail.empty()) {
    detail += "; ";
    detail += event.detail;
  }
  event.detail = std::move(detail);
}

// The 503 a request gets when its record is not in every sink; `what` says what happened.
HttpResponse AuditFailure(std::string_view what, std::string_view request_id) {
  std::string message(what);
  message += " (request id ";
  message += request_id;
  message += ")";
  HttpResponse response = ErrorResponse(503, "unavailable", message);
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

HttpResponse AuditUnavailable(std::string_view request_id) {
  return AuditFailure(
      "the audit log could not record this request, so it was refused; the server retries "
      "the audit log with every request",
      request_id);
}

// A change committed with its database record, whose record the file sink then could not
// take. Not "refused": the change stands, and the file is caught up once it works again.
HttpResponse AuditFileBehind(std::string_view request_id) {
  return AuditFailure(
      "the change was made and recorded in the database, but the audit file could not "
      "record it yet (it is caught up once the file works again); check the change before "
      "retrying",
      request_id);
}

// Calls `release` with nothing (send the response) when `status` is ok, else with the 503.
void Release(const ReleaseResponse& release, const Status& status, std::string_view request_id,
             bool committed = false) {
  if (status) {
    release(std::nullopt);
  } else {
    release(committed ? AuditFileBehind(request_id) : AuditUnavailable(request_id));
  }
}

// `response` leaves only once `event` is durable in every sink; otherwise a 503 goes instead.
HttpResponse HoldUntilRecorded(audit::AuditLog& log, HttpResponse response, audit::Event event) {
  response.hold = [&log, event = std::move(event)](ReleaseResponse release) {
    std::string request_id = event.request_id;
    log.Submit(event, [release = std::move(release), request_id = std::move(request_id)](
                          Status status) { Release(release, status, request_id); });
  };
  return response;
}

// `response` leaves only once the records committed with its change are in every sink.
HttpResponse HoldUntilSynced(audit::AuditLog& log, HttpResponse response, std::string request_id) {
  if (!log.has_file_sink()) return response;  // the database commit was the durable write
  response.hold = [&log, request_id = std::move(request_id)](ReleaseResponse release) {
    log.Sync([release = std::move(release), request_id](Status status) {
      Release(release, status, request_id, /*committed=*/true);
    });
  };
  return response;
}

// What `spec` asks to be recorded of `response`, recorded.
HttpResponse ApplyAudit(const ApiContext& context, const AuditSpec& spec,
                        const HttpRequest& request, const PathParams& params,
                        const auth::Principal& principal, HttpResponse response) {
  const bool success = response.status >= 200 && response.status < 300;
  // The organization a handler found the target in, when the path does not name it.
  const auto with_org = [&](audit::Event event) {
    if (response.audit_org_id && !event.org_id) event.org_id = response.audit_org_id;
    return event;
  };
  if (response.status == 403) {
    audit::Event event =
        EventFor(request, params, &principal, spec.action, audit::Outcome::kDenied);
    AddDetail(event, ErrorCodeOf(response));
    return HoldUntilRecorded(*context.audit, std::move(response), std::move(event));
  }
  switch (spec.mode) {
    case AuditMode::kDenials:
      return response;
    case AuditMode::kMutation:
      if (success) {
        return HoldUntilSynced(*context.audit, std::move(response), request.request_id);
      }
      break;
    case AuditMode::kReveal:
      if (success) {
        audit::Event event =
            with_org(EventFor(request, params, &principal, spec.action, audit::Outcome::kSuccess));
        return HoldUntilRecorded(*context.audit, std::move(response), std::move(event));
      }
      break;
  }
  audit::Event event =
      with_org(EventFor(request, params, &principal, spec.action, audit::Outcome::kError));
  AddDetail(event, ErrorCodeOf(response));
  return HoldUntilRecorded(*context.audit, std::move(response), std::move(event));
}

// The response to a request without a live token, once its auth.failure record is durable.
HttpResponse AuthFailure(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, std::string_view why, HttpResponse response) {
  if (response.status != 401) return response;  // the store failed: no decision was made
  audit::Event event =
      EventFor(request, params, nullptr, audit::actions::kAuthFailure, audit::Outcome::kDenied);
  AddDetail(event, why);
  return HoldUntilRecorded(*context.audit, std::move(response), std::move(event));
}

}  // namespace

namespace {

// Path and query parameters go into records before anything validated them, so they are
// recorded only in the shape they must have: a credential pasted into the wrong place
// (`token revoke bft_...`, a token as a config key) must not end up in the log.
bool LooksLikeToken(std::string_view text) {
  return text.starts_with("bft_") || text.starts_with("bfx_");
}

std::string RecordedKey(const std::string& key) {
  if (LooksLikeToken(key)) return "(withheld: looks like a token)";
  if (config::ValidateKey(key)) return key;
  std::string shown = "(not a valid key, ";
  shown += std::to_string(key.size());
  shown += " bytes)";
  return shown;
}

std::string RecordedId(const std::string& id) {
  if (IsCanonicalUuid(id)) return id;
  std::string shown = "(not an id, ";
  shown += std::to_string(id.size());
  shown += " bytes)";
  return shown;
}

}  // namespace

audit::Event EventFor(const HttpRequest& request, const PathParams& params,
                      const auth::Principal* principal, std::string_view action,
                      audit::Outcome outcome) {
  audit::Event event;
  event.action = action;
  event.outcome = outcome;
  std::optional<std::string> org;
  if (const auto in_path = params.find("org_id"); in_path != params.end()) {
    org = in_path->second;
  } else if (const auto named = request.query.find("org_id"); named != request.query.end()) {
    org = named->second;
  }
  if (org) {
    // A record belongs to an organization (and shows in its admins' view) only when the
    // caller is a platform admin or that organization's own token; an attempt on another
    // organization, or without a token, names its target in the detail instead, so that
    // one tenant's admins never see another tenant's token names and addresses.
    const bool own = principal != nullptr &&
                     (principal->role == auth::Role::kPlatformAdmin || principal->org_id == org);
    if (own && IsCanonicalUuid(*org)) {
      event.org_id = *org;
    } else {
      event.detail = "target org " + RecordedId(*org);
    }
  }
  if (const auto key = params.find("key"); key != params.end()) {
    event.config_key = RecordedKey(key->second);
  }
  if (const auto execution = params.find("execution_id"); execution != params.end()) {
    if (IsCanonicalUuid(execution->second)) {
      event.execution_id = execution->second;
    } else {
      if (!event.detail.empty()) event.detail += "; ";
      event.detail += "execution " + RecordedId(execution->second);
    }
  }
  if (const auto token = params.find("token_id"); token != params.end()) {
    if (!event.detail.empty()) event.detail += "; ";
    event.detail += "token " + RecordedId(token->second);
  }
  if (principal != nullptr) {
    event.actor_id = principal->token_id;
    // A user is named apart from a token that might be called by its email.
    event.actor_name = principal->kind == auth::PrincipalKind::kUser
                           ? "user:" + principal->token_name
                           : principal->token_name;
    // An execution's own requests carry its id; a request about an execution (its path
    // names it) keeps that one.
    if (principal->execution_id) event.execution_id = principal->execution_id;
  }
  event.client_address = request.client_address;
  event.request_id = request.request_id;
  return event;
}

store::CommitHook RecordInTxn(const ApiContext& context, audit::Event event) {
  return context.audit->InTxn(std::move(event));
}

namespace {

// Equal texts, compared in time that depends only on their lengths.
bool CsrfMatches(std::string_view sent, std::string_view expected) {
  if (sent.size() != expected.size() || expected.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    diff |= static_cast<unsigned char>(sent[i] ^ expected[i]);
  }
  return diff == 0;
}

// The part of an authenticated request after the caller is known: the query check, the
// handler, the audit records.
HttpResponse RunAuthenticated(const ApiContext& context, const AuditSpec& audit,
                              AuthedHandler handler, const std::vector<std::string>& allowed_query,
                              const HttpRequest& request, const PathParams& params,
                              const auth::Principal& principal) {
  for (const auto& [name, value] : request.query) {
    if (std::find(allowed_query.begin(), allowed_query.end(), name) == allowed_query.end()) {
      std::string accepted;
      for (const auto& a : allowed_query) accepted += (accepted.empty() ? "" : ", ") + a;
      return ApplyAudit(context, audit, request, params, principal,
                        ErrorResponse(400, "bad_request",
                                      "unknown query parameter " + QuoteForMessage(name) +
                                          (accepted.empty() ? "; this route takes none"
                                                            : "; this route takes " + accepted)));
    }
  }
  HttpResponse response;
  try {
    response = handler(context, request, params, principal);
  } catch (...) {
    // As Guarded does, but here, so that the failed attempt is recorded too.
    response =
        ServiceError(Error(ErrorCode::kInternal, "a request handler threw an exception"), request);
  }
  return ApplyAudit(context, audit, request, params, principal, std::move(response));
}

}  // namespace

HttpResponse HoldForRecord(const ApiContext& context, HttpResponse response, audit::Event event) {
  return HoldUntilRecorded(*context.audit, std::move(response), std::move(event));
}

HttpResponse HoldForSync(const ApiContext& context, HttpResponse response, std::string request_id) {
  return HoldUntilSynced(*context.audit, std::move(response), std::move(request_id));
}

std::optional<std::string_view> SessionCookie(const HttpRequest& request) {
  std::string_view header = request.Header("cookie");
  while (!header.empty()) {
    const std::size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    while (!pair.empty() && pair.back() == ' ') pair.remove_suffix(1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (pair.substr(0, eq) == kSessionCookieName && eq + 1 < pair.size()) {
      return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

Handler Authenticated(const SharedContext& context, AuditSpec audit, AuthedHandler handler,
                      std::vector<std::string> allowed_query) {
  return Guarded(
      context->log,
      [context, audit, handler, allowed_query](const HttpRequest& request, const PathParams& params,
                                               RequestLog& log) -> HttpResponse {
        const auto token = BearerToken(request.Header("authorization"));
        const auto session = SessionCookie(request);
        if (!token && request.Header("authorization").empty() && session &&
            context->sessions != nullptr) {
          // A browser: the session cookie, and for a change the CSRF header too.
          auto principal = context->sessions->Authenticate(*session);
          if (!principal) {
            return AuthFailure(*context, request, params, "invalid or expired session",
                               ServiceError(principal.error(), request));
          }
          log.token_id = principal->token_id;
          if (request.method != "GET" && request.method != "HEAD" &&
              !CsrfMatches(request.Header("x-csrf-token"), auth::CsrfTokenFor(*session))) {
            return ApplyAudit(
                *context, {audit.action, AuditMode::kDenials}, request, params, *principal,
                ErrorResponse(403, "csrf_failed",
                              "this request needs the header X-CSRF-Token with the session's "
                              "CSRF token (from GET /api/v1/auth/session)"));
          }
          return RunAuthenticated(*context, audit, handler, allowed_query, request, params,
                                  *principal);
        }
        if (!token) {
          return AuthFailure(
              *context, request, params,
              request.Header("authorization").empty() ? "no Authorization header"
                                                      : "malformed Authorization header",
              Unauthenticated(
                  Error(ErrorCode::kUnauthenticated, std::string(kUnauthenticatedMessage)),
                  request));
        }
        auto principal = context->tokens->Authenticate(*token);
        if (!principal) {
          return AuthFailure(*context, request, params, "invalid, expired or revoked token",
                             Unauthenticated(principal.error(), request));
        }
        log.token_id = principal->token_id;
        return RunAuthenticated(*context, audit, handler, allowed_query, request, params,
                                *principal);
      });
}

std::optional<HttpResponse> Deny(const auth::Principal& principal, auth::Action action,
                                 const auth::Target& target, const HttpRequest& request) {
  auto allowed = auth::Authorize(principal, action, target);
  if (allowed) return std::nullopt;
  return ServiceError(allowed.error(), request);
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse response;
  response.status = status;
  response.body = json_io::Dump(body);
  return response;
}

HttpResponse NoContent() {
  HttpResponse response;
  response.status = 204;
  return response;
}

HttpResponse BadRequest(std::string_view message) {
  return ErrorResponse(400, "bad_request", message);
}

HttpResponse ServiceError(const Error& error, const HttpRequest& request) {
  HttpResponse response = ErrorResponse(error, request.request_id);
  if (response.status == 500 || response.status == 503) {
    // The details the response promises. Service messages name the thing and the rule and
    // never carry a value or a secret (docs/design.md, "Errors"); a store's message names
    // the database without its password.
    const LogField fields[] = {{"request_id", std::string_view(request.request_id)},
                               {"code", ErrorCodeName(error.code())},
                               {"message", std::string_view(error.message())}};
    HandlerLog().Event(response.status == 500 ? "error" : "warn",
                       response.status == 500 ? "internal error" : "unavailable", fields);
  }
  return response;
}

}  // namespace api_internal

namespace {

using api_internal::Json;
using api_internal::JsonResponse;

// The database half of /readyz. The endpoint needs no token, so the answer is cached for
// kReadinessCacheMicros, and callers arriving while a check runs wait for it rather than
// start their own: however often /readyz is asked, the database sees at most one read
// transaction a second from it. The probe runs on a thread of its own and a caller waits
// for it at most kReadinessWait: a database that stops answering (a network partition, a
// server that hangs) makes /readyz say "not ready" within about a second rather than
// holding the request for the store's connect and statement timeouts.
constexpr UnixMicros kReadinessCacheMicros = 1'000'000;
constexpr std::chrono::milliseconds kReadinessWait{1000};

class ReadinessCheck {
 public:
  ReadinessCheck(store::Store* store, const Clock* clock) : store_(store), clock_(clock) {}
  ~ReadinessCheck() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wanted_cv_.notify_all();
    done_cv_.notify_all();
    // A probe still waiting for the database ends within the store's timeouts.
    if (prober_.joinable()) prober_.join();
  }
  ReadinessCheck(const ReadinessCheck&) = delete;
  ReadinessCheck& operator=(const ReadinessCheck&) = delete;

  // "" when the database answered; otherwise the reason for the client, which names only
  // the error code. The details go to `log`, once per change from ready to not ready.
  std::string Check(AccessLog& log) {
    std::unique_lock lock(mu_);
    const UnixMicros now = clock_->NowMicros();
    if (checked_ && now >= checked_at_ && now - checked_at_ < kReadinessCacheMicros) {
      return failure_;
    }
    if (!prober_.joinable()) prober_ = std::thread([this] { RunProber(); });
    // A probe already running (asked for by another caller) is the one to wait for.
    if (finished_ == wanted_) {
      ++wanted_;
      wanted_cv_.notify_all();
    }
    const std::uint64_t target = wanted_;
    const bool answered =
        done_cv_.wait_for(lock, kReadinessWait, [&] { return finished_ >= target || stop_; });
    Status status = answered && finished_ >= target
                        ? probed_
                        : Status(Fail(ErrorCode::kUnavailable,
                                      "the database did not answer the readiness probe within "
                                      "1 s"));
    std::string failure;
    if (!status) {
      failure = "not ready: the database cannot be read (" +
                std::string(ErrorCodeName(status.error().code())) + ")";
      if (!checked_ || failure_.empty()) {
        log.Error("readiness check failed",
                  {{"code", ErrorCodeName(status.error().code())},
                   {"message", std::string_view(status.error().message())}});
      }
    } else if (checked_ && !failure_.empty()) {
      log.Info("readiness check passed again");
    }
    checked_ = true;
    checked_at_ = now;
    failure_ = std::move(failure);
    return failure_;
  }

 private:
  void RunProber() {
    std::unique_lock lock(mu_);
    while (true) {
      wanted_cv_.wait(lock, [&] { return stop_ || finished_ < wanted_; });
      if (stop_) return;
      const std::uint64_t target = wanted_;
      lock.unlock();
      Status status = Probe();
      lock.lock();
      probed_ = std::move(status);
      finished_ = target;
      done_cv_.notify_all();
    }
  }

  Status Probe() {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(const auto checks, txn->ListKeyChecks());
    if (checks.empty()) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "the database records no key check; it is not the one the server opened");
    }
    return Ok();
  }

  store::Store* store_;
  const Clock* clock_;
  std::mutex mu_;
  std::condition_variable wanted_cv_;  // the prober waits for a request
  std::condition_variable done_cv_;    // callers wait for the prober
  bool checked_ = false;               // guarded by mu_
  UnixMicros checked_at_ = 0;          // guarded by mu_
  std::string failure_;                // guarded by mu_
  std::uint64_t wanted_ = 0;           // probes asked for; guarded by mu_
  std::uint64_t finished_ = 0;         // probes done; guarded by mu_
  Status probed_;                      // the last probe's outcome; guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  std::thread prober_;                 // started by the first check
};

HttpResponse WhoAmI(const ApiContext&, const HttpRequest&, const PathParams&,
                    const auth::Principal& principal) {
  return JsonResponse(200, {{"token_id", principal.token_id},
                            {"name", principal.token_name},
                            {"role", auth::RoleName(principal.role)},
                            {"org_id", principal.org_id ? Json(*principal.org_id) : Json()}});
}

}  // namespace

void RegisterApiRoutes(Router& router, const ApiContext& context) {
  if (context.config == nullptr || context.tokens == nullptr || context.audit == nullptr) {
    std::fprintf(stderr,
                 "bifrost: RegisterApiRoutes needs a config service, a token service and an "
                 "audit log\n");
    std::abort();
  }
  const auto shared = std::make_shared<const ApiContext>(context);

  router.Add(
      "GET", "/healthz",
      api_internal::Guarded(shared->log, [](const HttpRequest&, const PathParams&, RequestLog&) {
        return JsonResponse(200, {{"status", "ok"}});
      }));

  const auto readiness = std::make_shared<ReadinessCheck>(
      shared->store, shared->clock != nullptr ? shared->clock : &SystemClock::Instance());
  router.Add(
      "GET", "/readyz",
      api_internal::Guarded(
          shared->log, [shared, readiness](const HttpRequest&, const PathParams&, RequestLog&) {
            // A load balancer may look again in a second (or send the request elsewhere).
            const auto not_ready = [](std::string_view why) {
              HttpResponse response = ErrorResponse(503, "unavailable", why);
              response.headers.emplace_back("Retry-After", "1");
              return response;
            };
            if (!shared->ready || !shared->ready()) {
              return not_ready("not ready: the server is starting or shutting down");
            }
            if (shared->store != nullptr) {
              const std::string failure = readiness->Check(api_internal::HandlerLog());
              if (!failure.empty()) return not_ready(failure);
            }
            return JsonResponse(200, {{"status", "ready"}});
          }));

  router.Add(
      "GET", "/api/v1/openapi.json",
      api_internal::Guarded(shared->log, [](const HttpRequest&, const PathParams&, RequestLog&) {
        HttpResponse response;
        response.content_type = "application/json";
        response.body = std::string(OpenApiDocument());
        return response;
      }));

  router.Add(
      "GET", "/api/v1/whoami",
      api_internal::Authenticated(shared, {"whoami", api_internal::AuditMode::kDenials}, WhoAmI));

  api_internal::RegisterOrgRoutes(router, shared);
  api_internal::RegisterConfigRoutes(router, shared);
  api_internal::RegisterTokenRoutes(router, shared);
  api_internal::RegisterAuditRoutes(router, shared);
  api_internal::RegisterWorkflowRoutes(router, shared);
  api_internal::RegisterSessionRoutes(router, shared);
  api_internal::RegisterWebRoutes(router, shared);
}

}  // namespace bifrost::server
