// The audit log: GET /api/v1/audit (records, newest first, filtered and paged) and
// GET /api/v1/audit/status (the sinks' health and counters).
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/text.h"
#include "server/api_internal.h"
#include "server/errors.h"

namespace bifrost::server::api_internal {
namespace {

using auth::Action;
using auth::Target;

constexpr std::size_t kDefaultLimit = 100;
constexpr std::size_t kMaxLimit = 1000;

std::optional<std::string> Query(const HttpRequest& request, const std::string& name) {
  const auto it = request.query.find(name);
  if (it == request.query.end()) return std::nullopt;
  return it->second;
}

// A query timestamp: RFC 3339 or a date. The error message for a bad one.
std::optional<std::string> ReadTime(const HttpRequest& request, const std::string& name,
                                    std::optional<UnixMicros>& out) {
  const auto text = Query(request, name);
  if (!text) return std::nullopt;
  out = ParseRfc3339(*text);
  if (!out) {
    return "query parameter '" + name +
           "' must be an RFC 3339 time (2026-12-01T09:30:00Z) or a date (2026-12-01)";
  }
  return std::nullopt;
}

// Platform admins read every record, or one org's with ?org_id=; an org admin reads only its
// own organization's records (with or without ?org_id= naming it). Records of no
// organization (global config, authentication failures, platform operations) are for
// platform admins only.
HttpResponse ListAudit(const ApiContext& context, const HttpRequest& request, const PathParams&,
                       const auth::Principal& principal) {
  store::AuditFilter filter;
  filter.org_id = Query(request, "org_id");
  if (!filter.org_id && principal.role != auth::Role::kPlatformAdmin) {
    filter.org_id = principal.org_id;
  }
  const Target target = filter.org_id ? Target::Org(*filter.org_id) : Target::Platform();
  if (auto denied = Deny(principal, Action::kAuditRead, target, request)) return *denied;

  filter.config_key = Query(request, "key");
  filter.action = Query(request, "action");
  filter.actor = Query(request, "actor");
  filter.outcome = Query(request, "outcome");
  if (filter.outcome && *filter.outcome != "success" && *filter.outcome != "denied" &&
      *filter.outcome != "error") {
    return BadRequest("query parameter 'outcome' must be success, denied or error");
  }
  if (auto bad = ReadTime(request, "since", filter.since)) return BadRequest(*bad);
  if (auto bad = ReadTime(request, "until", filter.until)) return BadRequest(*bad);
  filter.limit = kDefaultLimit;
  if (const auto limit = Query(request, "limit")) {
    const auto n = ParseCanonicalInt64(*limit);
    if (!n || *n < 1 || *n > static_cast<std::int64_t>(kMaxLimit)) {
      return BadRequest("query parameter 'limit' must be an integer from 1 to " +
                        std::to_string(kMaxLimit));
    }
    filter.limit = static_cast<std::size_t>(*n);
  }
  if (const auto before = Query(request, "before")) {
    const auto n = ParseCanonicalInt64(*before);
    if (!n || *n < 1) return BadRequest("query parameter 'before' must be a positive integer");
    filter.before_seq = *n;
  }

  auto txn = context.store->Begin(store::TxnMode::kRead);
  if (!txn) return ServiceError(txn.error(), request);
  // One more than asked, to know whether there is a next page.
  const std::size_t wanted = filter.limit;
  filter.limit = wanted + 1;
  auto rows = (*txn)->ListAudit(filter);
  if (!rows) return ServiceError(rows.error(), request);
  const bool more = rows->size() > wanted;
  if (more) rows->resize(wanted);

  std::string body = "{\"records\":[";
  for (std::size_t i = 0; i < rows->size(); ++i) {
    if (i > 0) body.push_back(',');
    body += audit::ToJsonLine((*rows)[i]);
  }
  body += "],\"next_before\":";
  body += more ? std::to_string(rows->back().seq) : std::string("null");
  body.push_back('}');
  HttpResponse response;
  response.body = std::move(body);
  return response;
}

HttpResponse AuditStatus(const ApiContext& context, const HttpRequest& request, const PathParams&,
                         const auth::Principal& principal) {
  if (auto denied = Deny(principal, Action::kAuditRead, Target::Platform(), request)) {
    return *denied;
  }
  const audit::AuditStats stats = context.audit->stats();
  return JsonResponse(200,
                      {{"healthy", stats.healthy},
                       {"file_sink", stats.file_sink},
                       {"records", stats.records},
                       {"groups", stats.groups},
                       {"failed_records", stats.failed_records},
                       {"failed_groups", stats.failed_groups},
                       {"last_error", stats.last_error.empty() ? Json() : Json(stats.last_error)}});
}

// Walks the whole chain with the server's keys. Org admins may ask too: the answer says
// whether the one log their records are part of is intact, and how long it is, nothing more.
HttpResponse VerifyAudit(const ApiContext& context, const HttpRequest& request, const PathParams&,
                         const auth::Principal& principal) {
  const Target target = principal.org_id ? Target::Org(*principal.org_id) : Target::Platform();
  if (auto denied = Deny(principal, Action::kAuditRead, target, request)) return *denied;
  if (!context.verify_audit) {
    return ErrorResponse(503, "unavailable", "this server cannot verify the audit log");
  }
  // One walk at a time: a page reloaded in a loop must not start a walk per request.
  static std::mutex walking;
  std::unique_lock lock(walking, std::try_to_lock);
  if (!lock.owns_lock()) {
    HttpResponse busy =
        ErrorResponse(429, "rate_limited", "the audit log is being verified; try again shortly");
    busy.headers.emplace_back("Retry-After", "2");
    return busy;
  }
  auto report = context.verify_audit();
  if (!report) return ServiceError(report.error(), request);
  Json out = {{"ok", report->ok},
              {"records", report->records},
              {"first_seq", report->first_seq},
              {"last_seq", report->last_seq},
              {"checkpoint", report->checkpoint}};
  if (!report->ok) {
    out["bad_seq"] = report->bad_seq;
    out["error"] = report->problem;
  }
  return JsonResponse(200, out);
}

}  // namespace

void RegisterAuditRoutes(Router& router, const SharedContext& context) {
  if (context->store == nullptr) return;
  router.Add("GET", "/api/v1/audit",
             Authenticated(context, {"audit.read", AuditMode::kDenials}, ListAudit,
                           {"org_id", "key", "action", "actor", "outcome", "since", "until",
                            "limit", "before"}));
  router.Add("GET", "/api/v1/audit/verify",
             Authenticated(context, {"audit.read", AuditMode::kDenials}, VerifyAudit));
  router.Add("GET", "/api/v1/audit/status",
             Authenticated(context, {"audit.read", AuditMode::kDenials}, AuditStatus));
}

}  // namespace bifrost::server::api_internal
