// /api/v1/tokens and /api/v1/tokens/{token_id}.
#include <optional>
#include <string>
#include <utility>

#include "server/api_internal.h"

namespace bifrost::server::api_internal {
namespace {

using auth::Action;
using auth::Target;

// A token as listed: never its hash, never its text.
Json TokenJson(const store::TokenRow& row) {
  return {{"id", row.id},
          {"name", row.name},
          {"role", row.role},
          {"org_id", row.org_id ? Json(*row.org_id) : Json()},
          {"created_at", json_io::FormatTimestamp(row.created_at)},
          {"created_by", row.created_by},
          {"expires_at", json_io::TimestampOrNull(row.expires_at)},
          {"last_used_at", json_io::TimestampOrNull(row.last_used_at)},
          {"revoked_at", json_io::TimestampOrNull(row.revoked_at)}};
}

// The organization whose tokens the caller manages: the one named, else the caller's own;
// the platform for a platform token naming none.
Target TokensTarget(const std::optional<std::string>& named, const auth::Principal& principal) {
  if (named) return Target::Org(*named);
  if (principal.org_id) return Target::Org(*principal.org_id);
  return Target::Platform();
}

HttpResponse CreateToken(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  // Whether the caller manages tokens at all is known before the body is read; which
  // organization the new token may belong to is checked once the body names it.
  if (auto denied =
          Deny(principal, Action::kTokenManage, TokensTarget(std::nullopt, principal), request)) {
    return *denied;
  }
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  if (auto unknown = json_io::FindUnknownField(*body, {"role", "org_id", "name", "ttl_seconds"},
                                               "a token request")) {
    return BadRequest(*unknown);
  }
  auto role_name = json_io::OptionalString(*body, "role");
  if (!role_name) return BadRequest(role_name.error());
  if (!*role_name) return BadRequest("field 'role' is required");
  auto org_id = json_io::OptionalString(*body, "org_id");
  if (!org_id) return BadRequest(org_id.error());
  auto name = json_io::OptionalString(*body, "name");
  if (!name) return BadRequest(name.error());
  auto ttl_seconds = json_io::OptionalInt64(*body, "ttl_seconds");
  if (!ttl_seconds) return BadRequest(ttl_seconds.error());

  auto role = auth::ParseRole(**role_name);
  if (!role) return ServiceError(role.error(), request);
  // An org admin's tokens belong to its own organization unless it names one (which
  // Authorize then checks); a platform-admin token has no organization.
  std::optional<std::string> token_org = *org_id;
  if (!token_org && principal.org_id && *role != auth::Role::kPlatformAdmin) {
    token_org = principal.org_id;
  }
  const Target target = token_org ? Target::Org(*token_org) : Target::Platform();
  if (auto denied = Deny(principal, Action::kTokenManage, target, request)) return *denied;

  const auth::NewToken wanted{.name = name->value_or(""),
                              .role = *role,
                              .org_id = std::move(token_org),
                              .ttl_seconds = *ttl_seconds};
  auto created =
      context.tokens->Create(wanted, &principal, [&](store::Txn& txn, const store::TokenRow& row) {
        audit::Event event = EventFor(request, params, &principal, audit::actions::kTokenCreate,
                                      audit::Outcome::kSuccess);
        event.org_id = row.org_id;
        event.detail = "token " + row.id + " (" + row.role + ")";
        return RecordInTxn(context, std::move(event))(txn);
      });
  if (!created) return ServiceError(created.error(), request);
  Json shown = TokenJson(created->row);
  shown["token"] = nullptr;
  // The token goes from its wiped buffer straight into the response body.
  auto text = json_io::DumpWithStringField(shown, "token", created->token.view());
  if (!text) {
    return ServiceError(Error(ErrorCode::kInternal, "a new token did not serialise"), request);
  }
  HttpResponse response;
  response.status = 201;
  response.body = std::move(*text);
  return response;
}

HttpResponse ListTokens(const ApiContext& context, const HttpRequest& request, const PathParams&,
                        const auth::Principal& principal) {
  std::optional<std::string> org_id;
  if (const auto it = request.query.find("org_id"); it != request.query.end()) {
    org_id = it->second;
  }
  if (auto denied =
          Deny(principal, Action::kTokenManage, TokensTarget(org_id, principal), request)) {
    return *denied;
  }
  auto rows = context.tokens->List(principal, org_id);
  if (!rows) return ServiceError(rows.error(), request);
  Json out = Json::array();
  for (const auto& row : *rows) out.push_back(TokenJson(row));
  return JsonResponse(200, out);
}

HttpResponse RevokeToken(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  // Only token managers get past this; which tokens they may revoke is Revoke's decision
  // (an org admin: its org's; any other id, existing or not, is a denial).
  if (auto denied =
          Deny(principal, Action::kTokenManage, TokensTarget(std::nullopt, principal), request)) {
    return *denied;
  }
  auto revoked = context.tokens->Revoke(
      principal, params.at("token_id"), [&](store::Txn& txn, const store::TokenRow& row) {
        audit::Event event = EventFor(request, params, &principal, audit::actions::kTokenRevoke,
                                      audit::Outcome::kSuccess);
        event.org_id = row.org_id;
        return RecordInTxn(context, std::move(event))(txn);
      });
  if (!revoked) return ServiceError(revoked.error(), request);
  return NoContent();
}

}  // namespace

void RegisterTokenRoutes(Router& router, const SharedContext& context) {
  router.Add(
      "POST", "/api/v1/tokens",
      Authenticated(context, {audit::actions::kTokenCreate, AuditMode::kMutation}, CreateToken));
  router.Add("GET", "/api/v1/tokens",
             Authenticated(context, {"token.list", AuditMode::kDenials}, ListTokens, {"org_id"}));
  router.Add(
      "DELETE", "/api/v1/tokens/{token_id}",
      Authenticated(context, {audit::actions::kTokenRevoke, AuditMode::kMutation}, RevokeToken));
}

}  // namespace bifrost::server::api_internal
