// Workflows and their executions (docs/workflows.md):
//   GET  /api/v1/workflows                                  the loaded catalog
//   POST /api/v1/workflows/reload                           scan the directory again
//   POST /api/v1/orgs/{org_id}/workflows/{name}/executions  run one for an organization
//   GET  /api/v1/executions                                 list (filters, paging)
//   GET  /api/v1/executions/{execution_id}[?wait=S]         one (waiting up to S seconds)
//   GET  /api/v1/executions/{execution_id}/logs             its logs (redacted)
//   POST /api/v1/executions/{execution_id}/cancel           cancel it
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "common/text.h"
#include "server/api_internal.h"

namespace bifrost::server::api_internal {
namespace {

using auth::Action;
using auth::Target;

// A held response must be released within the HTTP server's hold timeout (15 s); a longer
// wait is asked for again by the client.
constexpr std::int64_t kMaxWaitSeconds = 10;
// Parameters of a run, as JSON text, at most (they are kept in memory while it waits).
constexpr std::size_t kMaxParameterBytes = 64 * 1024;
constexpr std::int64_t kMaxListLimit = 500;

bool Finished(const store::ExecutionRow& row) {
  return row.status != "pending" && row.status != "running";
}

Json ExecutionJson(const store::ExecutionRow& row) {
  Json parameters = Json::parse(row.parameters, nullptr, /*allow_exceptions=*/false);
  if (parameters.is_discarded()) parameters = Json::object();
  Json result;
  if (row.result.has_value()) {
    result = Json::parse(*row.result, nullptr, /*allow_exceptions=*/false);
    if (result.is_discarded()) result = Json(*row.result);
  }
  Json duration;
  if (row.started_at && row.finished_at) duration = (*row.finished_at - *row.started_at) / 1000;
  return {{"id", row.id},
          {"workflow", row.workflow},
          {"org_id", row.org_id},
          {"caller", {{"id", row.caller_id}, {"name", row.caller_name}}},
          {"status", row.status},
          {"parameters", std::move(parameters)},
          {"result", std::move(result)},
          {"error", row.error ? Json(*row.error) : Json()},
          {"logs_truncated", row.logs_truncated},
          {"timeout_seconds", row.timeout_seconds},
          {"created_at", json_io::FormatTimestamp(row.created_at)},
          {"started_at", json_io::TimestampOrNull(row.started_at)},
          {"finished_at", json_io::TimestampOrNull(row.finished_at)},
          {"duration_ms", std::move(duration)}};
}

HttpResponse NoWorkflows(const HttpRequest& request) {
  return ServiceError(Error(ErrorCode::kFailedPrecondition,
                            "this server runs no workflows; start it with --workflows DIR"),
                      request);
}

Json CatalogJson(const workflow::Runtime& runtime, const workflow::Catalog& catalog) {
  Json workflows = Json::array();
  for (const auto& def : catalog.workflows) {
    workflows.push_back(
        {{"name", def.name},
         {"description", def.description},
         {"kind", def.kind == workflow::WorkflowDef::Kind::kPython ? "python" : "executable"},
         // The file's name only: the server's paths are not the callers' business.
         {"file", std::filesystem::path(def.file).filename().string()},
         {"timeout_seconds", def.timeout_seconds ? Json(*def.timeout_seconds) : Json()}});
  }
  Json errors = Json::array();
  for (const auto& error : catalog.errors) {
    errors.push_back(
        {{"file", std::filesystem::path(error.file).filename().string()}, {"error", error.error}});
  }
  return {{"enabled", runtime.enabled()},
          {"loaded_at", json_io::FormatTimestamp(catalog.loaded_at)},
          {"workflows", std::move(workflows)},
          {"errors", std::move(errors)}};
}

HttpResponse ListWorkflows(const ApiContext& context, const HttpRequest& request, const PathParams&,
                           const auth::Principal& principal) {
  if (auto denied = Deny(principal, Action::kWorkflowList, Target::Platform(), request)) {
    return *denied;
  }
  if (context.workflows == nullptr) return NoWorkflows(request);
  return JsonResponse(200, CatalogJson(*context.workflows, *context.workflows->catalog()));
}

HttpResponse ReloadWorkflows(const ApiContext& context, const HttpRequest& request,
                             const PathParams&, const auth::Principal& principal) {
  if (auto denied = Deny(principal, Action::kWorkflowReload, Target::Platform(), request)) {
    return *denied;
  }
  if (context.workflows == nullptr) return NoWorkflows(request);
  auto catalog = context.workflows->Reload();
  if (!catalog) return ServiceError(catalog.error(), request);
  return JsonResponse(200, CatalogJson(*context.workflows, **catalog));
}

HttpResponse RunWorkflow(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  const std::string& org_id = params.at("org_id");
  if (auto denied = Deny(principal, Action::kWorkflowRun, Target::Org(org_id), request)) {
    return *denied;
  }
  if (context.workflows == nullptr) return NoWorkflows(request);
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  if (auto unknown = json_io::FindUnknownField(*body, {"parameters"}, "a workflow run")) {
    return BadRequest(*unknown);
  }
  std::string parameters = "{}";
  if (const auto it = body->find("parameters"); it != body->end()) {
    if (!it->is_object()) return BadRequest("field 'parameters' must be a JSON object");
    parameters = json_io::Dump(*it);
    if (parameters.size() > kMaxParameterBytes) {
      return BadRequest("field 'parameters' is larger than 65536 bytes of JSON");
    }
  }
  workflow::StartRequest start{
      .workflow = params.at("name"),
      .org_id = org_id,
      .parameters = std::move(parameters),
      .caller_id = principal.token_id,
      .caller_name = principal.token_name,
      .may_write =
          auth::Authorize(principal, Action::kConfigWrite, Target::Org(org_id)).has_value()};
  auto row =
      context.workflows->Start(start, [&](store::Txn& txn, const store::ExecutionRow& inserted) {
        audit::Event event = EventFor(request, params, &principal, audit::actions::kWorkflowRun,
                                      audit::Outcome::kSuccess);
        event.execution_id = inserted.id;
        event.detail = "workflow " + inserted.workflow;
        return RecordInTxn(context, std::move(event))(txn);
      });
  if (!row) return ServiceError(row.error(), request);
  return JsonResponse(202, ExecutionJson(*row));
}

// The execution named in the path, if `principal` may do `action` on it. An org token
// asking about an execution of another organization, or one that does not exist, gets the
// same 403: ids of other tenants are not confirmed.
std::expected<store::ExecutionRow, HttpResponse> Visible(const ApiContext& context,
                                                         const HttpRequest& request,
                                                         const PathParams& params,
                                                         const auth::Principal& principal,
                                                         Action action) {
  if (principal.role != auth::Role::kPlatformAdmin) {
    // Whether this caller may do `action` at all, before anything is read.
    const Target own = Target::Org(principal.org_id.value_or(""));
    if (auto denied = Deny(principal, action, own, request)) return std::unexpected(*denied);
  }
  if (context.workflows == nullptr) return std::unexpected(NoWorkflows(request));
  const std::string& id = params.at("execution_id");
  std::optional<store::ExecutionRow> row;
  if (IsCanonicalUuid(id)) {
    auto found = context.workflows->Get(id);
    if (!found) return std::unexpected(ServiceError(found.error(), request));
    row = std::move(*found);
  }
  if (principal.role != auth::Role::kPlatformAdmin &&
      (!row.has_value() || row->org_id != principal.org_id)) {
    const Target elsewhere = Target::Org(row.has_value() ? row->org_id : std::string("-"));
    if (auto denied = Deny(principal, action, elsewhere, request)) {
      return std::unexpected(*denied);
    }
  }
  if (!row.has_value()) {
    return std::unexpected(
        ServiceError(Error(ErrorCode::kNotFound, "execution not found"), request));
  }
  return std::move(*row);
}

HttpResponse GetExecution(const ApiContext& context, const HttpRequest& request,
                          const PathParams& params, const auth::Principal& principal) {
  std::int64_t wait = 0;
  if (const auto it = request.query.find("wait"); it != request.query.end()) {
    const auto parsed = ParseCanonicalInt64(it->second);
    if (!parsed || *parsed < 0 || *parsed > kMaxWaitSeconds) {
      return BadRequest("query parameter 'wait' must be a number of seconds from 0 to 10");
    }
    wait = *parsed;
  }
  auto row = Visible(context, request, params, principal, Action::kExecutionRead);
  if (!row) return row.error();
  HttpResponse response = JsonResponse(200, ExecutionJson(*row));
  if (wait == 0 || Finished(*row)) return response;
  // Answered when it finishes or the wait is over, whichever is first, without holding a
  // server thread meanwhile.
  workflow::Runtime* runtime = context.workflows;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait);
  response.hold = [runtime, id = row->id, deadline](ReleaseResponse release) {
    runtime->WhenFinished(id, deadline, [runtime, id, release = std::move(release)] {
      auto now = runtime->Get(id);
      if (now && now->has_value()) {
        release(JsonResponse(200, ExecutionJson(**now)));
      } else {
        release(std::nullopt);  // what was read before the wait
      }
    });
  };
  return response;
}

HttpResponse GetExecutionLogs(const ApiContext& context, const HttpRequest& request,
                              const PathParams& params, const auth::Principal& principal) {
  auto row = Visible(context, request, params, principal, Action::kExecutionRead);
  if (!row) return row.error();
  return JsonResponse(200, {{"id", row->id},
                            {"status", row->status},
                            {"logs", row->logs},
                            {"truncated", row->logs_truncated}});
}

HttpResponse CancelExecution(const ApiContext& context, const HttpRequest& request,
                             const PathParams& params, const auth::Principal& principal) {
  auto row = Visible(context, request, params, principal, Action::kExecutionCancel);
  if (!row) return row.error();
  auto cancelled = context.workflows->Cancel(row->id, principal.Actor());
  HttpResponse response = cancelled ? JsonResponse(200, ExecutionJson(*cancelled))
                                    : ServiceError(cancelled.error(), request);
  response.audit_org_id = row->org_id;
  return response;
}

HttpResponse ListExecutions(const ApiContext& context, const HttpRequest& request,
                            const PathParams&, const auth::Principal& principal) {
  store::ExecutionFilter filter;
  if (const auto it = request.query.find("org_id"); it != request.query.end()) {
    filter.org_id = it->second;
  } else if (principal.role != auth::Role::kPlatformAdmin) {
    filter.org_id = principal.org_id.value_or("");
  }
  const Target target = filter.org_id ? Target::Org(*filter.org_id) : Target::Platform();
  if (auto denied = Deny(principal, Action::kExecutionRead, target, request)) return *denied;
  if (context.workflows == nullptr) return NoWorkflows(request);
  if (const auto it = request.query.find("workflow"); it != request.query.end()) {
    filter.workflow = it->second;
  }
  if (const auto it = request.query.find("status"); it != request.query.end()) {
    static constexpr std::string_view kStatuses[] = {"pending", "running", "success",
                                                     "failed",  "timeout", "cancelled"};
    if (std::find(std::begin(kStatuses), std::end(kStatuses), it->second) == std::end(kStatuses)) {
      return BadRequest(
          "query parameter 'status' must be one of pending, running, success, failed, timeout, "
          "cancelled");
    }
    filter.status = it->second;
  }
  if (const auto it = request.query.find("before"); it != request.query.end()) {
    if (!IsCanonicalUuid(it->second)) {
      return BadRequest("query parameter 'before' must be an execution id");
    }
    filter.before_id = it->second;
    // The cursor must be an execution the caller may see: another organization's id must
    // not be confirmed by what the page holds.
    auto cursor = context.workflows->Get(it->second);
    if (!cursor) return ServiceError(cursor.error(), request);
    if (!cursor->has_value() || (filter.org_id && (*cursor)->org_id != *filter.org_id)) {
      return JsonResponse(200, {{"executions", Json::array()}});
    }
  }
  filter.limit = 50;
  if (const auto it = request.query.find("limit"); it != request.query.end()) {
    const auto limit = ParseCanonicalInt64(it->second);
    if (!limit || *limit < 1 || *limit > kMaxListLimit) {
      return BadRequest("query parameter 'limit' must be from 1 to 500");
    }
    filter.limit = static_cast<std::size_t>(*limit);
  }
  auto rows = [&]() -> Result<std::vector<store::ExecutionRow>> {
    BIFROST_ASSIGN_OR_RETURN(auto txn, context.store->Begin(store::TxnMode::kRead));
    return txn->ListExecutions(filter);
  }();
  if (!rows) return ServiceError(rows.error(), request);
  Json out = Json::array();
  for (const auto& row : *rows) out.push_back(ExecutionJson(row));
  return JsonResponse(200, {{"executions", std::move(out)}});
}

}  // namespace

void RegisterWorkflowRoutes(Router& router, const SharedContext& context) {
  router.Add("GET", "/api/v1/workflows",
             Authenticated(context, {"workflow.list", AuditMode::kDenials}, ListWorkflows));
  // A reload and a cancel change what the server does: each answer is recorded.
  router.Add("POST", "/api/v1/workflows/reload",
             Authenticated(context, {audit::actions::kWorkflowReload, AuditMode::kReveal},
                           ReloadWorkflows));
  router.Add(
      "POST", "/api/v1/orgs/{org_id}/workflows/{name}/executions",
      Authenticated(context, {audit::actions::kWorkflowRun, AuditMode::kMutation}, RunWorkflow));
  router.Add("GET", "/api/v1/executions",
             Authenticated(context, {"execution.list", AuditMode::kDenials}, ListExecutions,
                           {"org_id", "workflow", "status", "before", "limit"}));
  router.Add(
      "GET", "/api/v1/executions/{execution_id}",
      Authenticated(context, {"execution.read", AuditMode::kDenials}, GetExecution, {"wait"}));
  router.Add("GET", "/api/v1/executions/{execution_id}/logs",
             Authenticated(context, {"execution.logs", AuditMode::kDenials}, GetExecutionLogs));
  router.Add("POST", "/api/v1/executions/{execution_id}/cancel",
             Authenticated(context, {audit::actions::kExecutionCancel, AuditMode::kReveal},
                           CancelExecution));
}

}  // namespace bifrost::server::api_internal
