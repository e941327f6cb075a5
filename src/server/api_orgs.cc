// /api/v1/orgs and /api/v1/orgs/{org_id}.
#include <iostream>
#include <string>
#include <vector>

#include "server/access_log.h"
#include "server/api_internal.h"

namespace bifrost::server::api_internal {
namespace {

using auth::Action;
using auth::Target;

Json OrganizationJson(const config::Organization& org) {
  return {
      {"id", org.id}, {"name", org.name}, {"created_at", json_io::FormatTimestamp(org.created_at)}};
}

Json OrganizationsJson(const std::vector<config::Organization>& orgs) {
  Json out = Json::array();
  for (const auto& org : orgs) out.push_back(OrganizationJson(org));
  return out;
}

std::optional<std::string> QueryParam(const HttpRequest& request, const std::string& name) {
  const auto it = request.query.find(name);
  if (it == request.query.end()) return std::nullopt;
  return it->second;
}

HttpResponse CreateOrg(const ApiContext& context, const HttpRequest& request,
                       const PathParams& params, const auth::Principal& principal) {
  if (auto denied = Deny(principal, Action::kOrgCreate, Target::Platform(), request)) {
    return *denied;
  }
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  if (auto unknown = json_io::FindUnknownField(*body, {"name"}, "an organization")) {
    return BadRequest(*unknown);
  }
  auto name = json_io::OptionalString(*body, "name");
  if (!name) return BadRequest(name.error());
  if (!*name) return BadRequest("field 'name' is required");
  auto org = context.config->CreateOrganization(
      **name, std::nullopt, [&](store::Txn& txn, const config::Organization& created) {
        audit::Event event = EventFor(request, params, &principal, audit::actions::kOrgCreate,
                                      audit::Outcome::kSuccess);
        event.org_id = created.id;
        return RecordInTxn(context, std::move(event))(txn);
      });
  if (!org) return ServiceError(org.error(), request);
  return JsonResponse(201, OrganizationJson(*org));
}

// Platform admins see every organization; an org token sees only its own.
HttpResponse ListOrgs(const ApiContext& context, const HttpRequest& request, const PathParams&,
                      const auth::Principal& principal) {
  if (auto denied = Deny(principal, Action::kOrgList, Target::Platform(), request)) {
    return *denied;
  }
  const auto name = QueryParam(request, "name");
  std::vector<config::Organization> visible;
  if (principal.org_id) {
    auto own = context.config->GetOrganization(*principal.org_id);
    if (!own && own.error().code() != ErrorCode::kNotFound) {
      return ServiceError(own.error(), request);
    }
    if (own && (!name || own->name == *name)) visible.push_back(std::move(*own));
  } else if (name) {
    auto named = context.config->GetOrganizationByName(*name);
    if (!named && named.error().code() != ErrorCode::kNotFound) {
      return ServiceError(named.error(), request);
    }
    if (named) visible.push_back(std::move(*named));
  } else {
    auto all = context.config->ListOrganizations();
    if (!all) return ServiceError(all.error(), request);
    visible = std::move(*all);
  }
  return JsonResponse(200, OrganizationsJson(visible));
}

HttpResponse GetOrg(const ApiContext& context, const HttpRequest& request, const PathParams& params,
                    const auth::Principal& principal) {
  const std::string& org_id = params.at("org_id");
  if (auto denied = Deny(principal, Action::kOrgRead, Target::Org(org_id), request)) {
    return *denied;
  }
  auto org = context.config->GetOrganization(org_id);
  if (!org) return ServiceError(org.error(), request);
  return JsonResponse(200, OrganizationJson(*org));
}

HttpResponse DeleteOrg(const ApiContext& context, const HttpRequest& request,
                       const PathParams& params, const auth::Principal& principal) {
  const std::string& org_id = params.at("org_id");
  if (auto denied = Deny(principal, Action::kOrgDelete, Target::Org(org_id), request)) {
    return *denied;
  }
  auto deleted = context.config->DeleteOrganization(
      org_id,
      RecordInTxn(context, EventFor(request, params, &principal, audit::actions::kOrgDelete,
                                    audit::Outcome::kSuccess)),
      [&](const Error& error) {
        // The organization is deleted; only the release of the old bytes from the files failed.
        static AccessLog stderr_log(std::cerr);
        AccessLog& log = context.log != nullptr ? *context.log : stderr_log;
        log.Warn(
            "the deleted organization's data key may remain in the database's write-ahead "
            "log until the next checkpoint",
            {{"request_id", std::string_view(request.request_id)},
             {"org_id", std::string_view(org_id)},
             {"code", ErrorCodeName(error.code())},
             {"message", std::string_view(error.message())}});
      });
  if (!deleted) return ServiceError(deleted.error(), request);
  return NoContent();
}

}  // namespace

void RegisterOrgRoutes(Router& router, const SharedContext& context) {
  router.Add("POST", "/api/v1/orgs",
             Authenticated(context, {audit::actions::kOrgCreate, AuditMode::kMutation}, CreateOrg));
  router.Add("GET", "/api/v1/orgs",
             Authenticated(context, {"org.list", AuditMode::kDenials}, ListOrgs, {"name"}));
  router.Add("GET", "/api/v1/orgs/{org_id}",
             Authenticated(context, {"org.read", AuditMode::kDenials}, GetOrg));
  router.Add("DELETE", "/api/v1/orgs/{org_id}",
             Authenticated(context, {audit::actions::kOrgDelete, AuditMode::kMutation}, DeleteOrg));
}

}  // namespace bifrost::server::api_internal
