// Config entries: /api/v1/orgs/{org_id}/configs[/{key}[/reveal]] and
// /api/v1/global/configs[/{key}[/reveal]]. One handler per operation serves both: a route
// without {org_id} is the global scope.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "common/text.h"
#include "crypto/secure_buffer.h"
#include "server/api_internal.h"
#include "server/errors.h"

namespace bifrost::server::api_internal {
namespace {

using auth::Action;
using auth::Target;
using config::ConfigType;

// What a masked secret shows in place of its value.
constexpr std::string_view kSecretMask = "[SECRET]";

std::optional<std::string> OrgOf(const PathParams& params) {
  const auto it = params.find("org_id");
  if (it == params.end()) return std::nullopt;
  return it->second;
}

Target TargetOf(const std::optional<std::string>& org_id) {
  return org_id ? Target::Org(*org_id) : Target::Global();
}

// The organization's view (kNotFound if it does not exist) or the global scope.
Result<config::ScopeConfig> ScopeOf(const ApiContext& context,
                                    const std::optional<std::string>& org_id) {
  if (org_id) return context.config->ForOrg(*org_id);
  return context.config->ForGlobal();
}

std::string Subject(std::string_view key, ConfigType type) {
  return "config " + QuoteForMessage(key) + " has type " +
         std::string(config::ConfigTypeName(type));
}

std::string_view KindOf(const Json& value) {
  // Fractions matter for an int: say so; everything else is json_io's wording.
  if (value.is_number_float()) return "a number with a fraction or exponent";
  return json_io::KindName(value);
}

// What a type accepts, as the end of a message about a value of the wrong kind.
std::string_view SendHint(ConfigType type) {
  switch (type) {
    case ConfigType::kString:
    case ConfigType::kSecret:
      return "; send a JSON string";
    case ConfigType::kInt:
      return "; send a JSON integer or a string of its decimal digits";
    case ConfigType::kBool:
      return "; send true, false, \"true\" or \"false\"";
    case ConfigType::kJson:
      break;
  }
  return "";
}

// The stored text of a ConfigWrite's `value` (`value_text`: the exact JSON the client sent)
// for `type` (see ConfigWrite.value in docs/openapi.json). A json value is stored as sent,
// byte for byte, and validated by the config model like any other value; the other types
// are read from the parsed value. The text is checked by the config model afterwards
// (canonical integer, true/false, sizes); this only decides which JSON kinds a type accepts.
// kInvalidArgument naming the key and the rule; the message describes the kind of value,
// never the value.
Result<crypto::SecureBuffer> StoredText(std::string_view key, ConfigType type,
                                        std::string_view value_text) {
  if (type == ConfigType::kJson) return crypto::SecureBuffer::From(value_text);
  const std::string subject = Subject(key, type);
  auto parsed = json_io::ParseJson(value_text);
  if (!parsed) {
    // The body was valid JSON, so this is a number no double can hold (1e400).
    return Fail(ErrorCode::kInvalidArgument,
                subject + " but its value is a number out of range" + std::string(SendHint(type)));
  }
  Json& value = *parsed;
  const json_io::WipeOnExit wipe_value(value);
  const auto wrong_kind = [&] {
    return Fail(
        ErrorCode::kInvalidArgument,
        subject + " but its value is " + std::string(KindOf(value)) + std::string(SendHint(type)));
  };
  switch (type) {
    case ConfigType::kString:
    case ConfigType::kSecret:
      if (value.is_string()) {
        return crypto::SecureBuffer::From(value.get_ref<const std::string&>());
      }
      return wrong_kind();
    case ConfigType::kInt:
      if (value.is_number_unsigned()) {
        const auto number = value.get<std::uint64_t>();
        if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          return Fail(ErrorCode::kInvalidArgument,
                      subject + " but its value is outside the signed 64-bit range");
        }
        return crypto::SecureBuffer::From(std::to_string(number));
      }
      if (value.is_number_integer()) {
        return crypto::SecureBuffer::From(std::to_string(value.get<std::int64_t>()));
      }
      if (value.is_string()) {
        return crypto::SecureBuffer::From(value.get_ref<const std::string&>());
      }
      if (value.is_number_float() && value_text.find_first_of(".eE") == std::string_view::npos) {
        // An integer literal too long for 64 bits (the parser made it a double).
        return Fail(ErrorCode::kInvalidArgument,
                    subject + " but its value is outside the signed 64-bit range");
      }
      return wrong_kind();
    case ConfigType::kBool:
      if (value.is_boolean()) {
        return crypto::SecureBuffer::From(value.get<bool>() ? "true" : "false");
      }
      if (value.is_string()) {
        return crypto::SecureBuffer::From(value.get_ref<const std::string&>());
      }
      return wrong_kind();
    case ConfigType::kJson:
      break;
  }
  return Fail(ErrorCode::kInternal, "unhandled config type");
}

Error Corrupt(const config::ConfigEntry& entry) {
  return Error(ErrorCode::kCorrupt, "the stored value of config " + QuoteForMessage(entry.key) +
                                        " is not a valid " +
                                        std::string(config::ConfigTypeName(entry.type)));
}

// The JSON text of a stored value: int as a number, bool as a boolean, string and secret as a
// string, json as the stored text itself, verbatim (EntryText checks that it is JSON). A
// stored value that does not fit its type is kCorrupt.
Result<std::string> ValueText(const config::ConfigEntry& entry, std::string_view text) {
  switch (entry.type) {
    case ConfigType::kString:
    case ConfigType::kSecret:
      if (!IsValidUtf8(text)) return Fail(Corrupt(entry));
      return json_io::Dump(Json(std::string(text)));
    case ConfigType::kInt: {
      const auto number = ParseCanonicalInt64(text);
      if (!number) return Fail(Corrupt(entry));
      return std::to_string(*number);
    }
    case ConfigType::kBool:
      if (text == "true" || text == "false") return std::string(text);
      return Fail(Corrupt(entry));
    case ConfigType::kJson:
      return std::string(text);
  }
  return Fail(Corrupt(entry));
}

// The value text shown outside reveal: a secret is masked.
Result<std::string> MaskedValueText(const config::ConfigEntry& entry) {
  if (entry.type == ConfigType::kSecret) return json_io::Dump(Json(kSecretMask));
  if (!entry.value) {
    return Fail(ErrorCode::kInternal,
                "config " + QuoteForMessage(entry.key) + " came without its value");
  }
  return ValueText(entry, *entry.value);
}

Json EntryJson(const config::ConfigEntry& entry, Json value) {
  const bool global = entry.scope.is_global();
  return {{"key", entry.key},
          {"type", config::ConfigTypeName(entry.type)},
          {"value", std::move(value)},
          {"description", entry.description},
          {"scope", global ? "global" : "org"},
          {"org_id", global ? Json() : Json(entry.scope.org_id())},
          {"created_at", json_io::FormatTimestamp(entry.created_at)},
          {"updated_at", json_io::FormatTimestamp(entry.updated_at)},
          {"updated_by", entry.updated_by},
          {"version", entry.version},
          {"overrides_global", entry.overrides_global}};
}

// `response` (an error) with the request field at fault named: {"error": {..., "field"}}.
HttpResponse WithField(HttpResponse response, std::string_view field) {
  auto parsed = json_io::ParseJson(response.body);
  if (!parsed || !parsed->is_object() || !parsed->contains("error")) return response;
  (*parsed)["error"]["field"] = field;
  response.body = json_io::Dump(*parsed);
  return response;
}

// The JSON text of an entry with `value_text` as its value, spliced in verbatim.
Result<std::string> EntryText(const config::ConfigEntry& entry, std::string_view value_text) {
  auto text = json_io::DumpWithRawField(EntryJson(entry, nullptr), "value", value_text);
  if (!text) return Fail(Corrupt(entry));
  return std::move(*text);
}

Result<std::string> MaskedEntryText(const config::ConfigEntry& entry) {
  BIFROST_ASSIGN_OR_RETURN(const std::string value, MaskedValueText(entry));
  return EntryText(entry, value);
}

HttpResponse TextResponse(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse ListConfigs(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  const auto org_id = OrgOf(params);
  if (auto denied = Deny(principal, Action::kConfigRead, TargetOf(org_id), request)) {
    return *denied;
  }
  auto scope = ScopeOf(context, org_id);
  if (!scope) return ServiceError(scope.error(), request);
  auto entries = scope->List();
  if (!entries) return ServiceError(entries.error(), request);
  std::string out = "[";
  for (const auto& entry : *entries) {
    auto shown = MaskedEntryText(entry);
    if (!shown) return ServiceError(shown.error(), request);
    if (out.size() > 1) out.push_back(',');
    out.append(*shown);
  }
  out.push_back(']');
  return TextResponse(200, std::move(out));
}

HttpResponse GetConfig(const ApiContext& context, const HttpRequest& request,
                       const PathParams& params, const auth::Principal& principal) {
  const auto org_id = OrgOf(params);
  if (auto denied = Deny(principal, Action::kConfigRead, TargetOf(org_id), request)) {
    return *denied;
  }
  auto scope = ScopeOf(context, org_id);
  if (!scope) return ServiceError(scope.error(), request);
  auto entry = scope->Get(params.at("key"));
  if (!entry) return ServiceError(entry.error(), request);
  auto shown = MaskedEntryText(*entry);
  if (!shown) return ServiceError(shown.error(), request);
  return TextResponse(200, std::move(*shown));
}

HttpResponse RevealConfig(const ApiContext& context, const HttpRequest& request,
                          const PathParams& params, const auth::Principal& principal) {
  const auto org_id = OrgOf(params);
  if (auto denied = Deny(principal, Action::kConfigReveal, TargetOf(org_id), request)) {
    return *denied;
  }
  auto scope = ScopeOf(context, org_id);
  if (!scope) return ServiceError(scope.error(), request);
  auto revealed = scope->Reveal(params.at("key"));
  if (!revealed) return ServiceError(revealed.error(), request);
  const config::ConfigEntry& entry = revealed->entry;
  // What an execution is given of a secret is redacted from everything it outputs; the
  // runtime learns the value before the execution does.
  if (entry.type == ConfigType::kSecret && principal.execution_id && context.workflows) {
    context.workflows->NoteSecret(*principal.execution_id, revealed->value.view());
  }
  if (entry.type != ConfigType::kString && entry.type != ConfigType::kSecret) {
    auto value = ValueText(entry, revealed->value.view());
    if (!value) return ServiceError(value.error(), request);
    auto shown = EntryText(entry, *value);
    if (!shown) return ServiceError(shown.error(), request);
    return TextResponse(200, std::move(*shown));
  }
  // Text goes from the wiped buffer straight into the response body, without a JSON string
  // in between.
  auto text =
      json_io::DumpWithStringField(EntryJson(entry, nullptr), "value", revealed->value.view());
  if (!text) {
    return ServiceError(
        Error(ErrorCode::kCorrupt,
              "the stored value of config " + QuoteForMessage(entry.key) + " is not valid UTF-8"),
        request);
  }
  return TextResponse(200, std::move(*text));
}

HttpResponse PutConfig(const ApiContext& context, const HttpRequest& request,
                       const PathParams& params, const auth::Principal& principal) {
  const auto org_id = OrgOf(params);
  if (auto denied = Deny(principal, Action::kConfigWrite, TargetOf(org_id), request)) {
    return *denied;
  }
  // The value is kept as the text the client sent (a json value is stored verbatim).
  auto body = json_io::ParseObjectBodyKeeping(request, "value");
  if (!body) return BadRequest(body.error());
  Json& fields = body->document;
  const json_io::WipeOnExit wipe_body(fields);
  if (auto unknown = json_io::FindUnknownField(
          fields, {"type", "value", "description", "expected_version"}, "a config write")) {
    return BadRequest(*unknown);
  }
  auto type_name = json_io::OptionalString(fields, "type");
  if (!type_name) return BadRequest(type_name.error());
  if (!*type_name) return BadRequest("field 'type' is required");
  if (!body->kept) return BadRequest("field 'value' is required");
  auto description = json_io::OptionalString(fields, "description");
  if (!description) return BadRequest(description.error());
  auto expected_version = json_io::OptionalInt64(fields, "expected_version");
  if (!expected_version) return BadRequest(expected_version.error());

  auto scope = ScopeOf(context, org_id);
  if (!scope) return ServiceError(scope.error(), request);
  const std::string& key = params.at("key");
  // Each rule is checked where the field it concerns is known, so the error can name it.
  if (auto bad_key = config::ValidateKey(key); !bad_key) {
    return WithField(ServiceError(bad_key.error(), request), "key");
  }
  auto type = config::ParseConfigType(**type_name);
  if (!type) return WithField(ServiceError(type.error(), request), "type");
  if (auto bad =
          config::ValidateDescription(key, description->value_or(""), context.config->limits());
      !bad) {
    return WithField(ServiceError(bad.error(), request), "description");
  }
  auto text = StoredText(key, *type, *body->kept);
  if (!text) return WithField(ServiceError(text.error(), request), "value");

  // A secret an execution writes is as secret as one it reads.
  if (*type == ConfigType::kSecret && principal.execution_id && context.workflows) {
    context.workflows->NoteSecret(*principal.execution_id, text->view());
  }
  const config::ConfigWrite write{.key = key,
                                  .type = *type,
                                  .value = std::move(*text),
                                  .description = description->value_or(""),
                                  .actor = principal.Actor(),
                                  .expected_version = *expected_version};
  const audit::Event recorded = EventFor(request, params, &principal, audit::actions::kConfigUpdate,
                                         audit::Outcome::kSuccess);
  auto entry = scope->Set(write, [&](store::Txn& txn, const config::ConfigEntry& written) {
    audit::Event event = recorded;
    // Version 1 is a row that did not exist before this write.
    if (written.version == 1) event.action = audit::actions::kConfigCreate;
    event.detail = "version ";
    event.detail += std::to_string(written.version);
    return RecordInTxn(context, std::move(event))(txn);
  });
  if (!entry) {
    HttpResponse failed = ServiceError(entry.error(), request);
    switch (entry.error().code()) {
      case ErrorCode::kInvalidArgument:  // key and description were checked: the value
        return WithField(std::move(failed), "value");
      case ErrorCode::kAlreadyExists:
        return WithField(std::move(failed), "key");
      default:
        return failed;
    }
  }
  auto shown = MaskedEntryText(*entry);
  if (!shown) return ServiceError(shown.error(), request);
  // Version 1 is a row that did not exist before this write.
  return TextResponse(entry->version == 1 ? 201 : 200, std::move(*shown));
}

HttpResponse PatchConfig(const ApiContext& context, const HttpRequest& request,
                         const PathParams& params, const auth::Principal& principal) {
  const auto org_id = OrgOf(params);
  if (auto denied = Deny(principal, Action::kConfigWrite, TargetOf(org_id), request)) {
    return *denied;
  }
  auto body = json_io::ParseObjectBody(request);
  if (!body) return BadRequest(body.error());
  if (auto unknown = json_io::FindUnknownField(*body, {"description", "expected_version"},
                                               "a config description change")) {
    return BadRequest(*unknown);
  }
  auto description = json_io::OptionalString(*body, "description");
  if (!description) return BadRequest(description.error());
  if (!*description) return BadRequest("field 'description' is required");
  auto expected_version = json_io::OptionalInt64(*body, "expected_version");
  if (!expected_version) return BadRequest(expected_version.error());
  auto scope = ScopeOf(context, org_id);
  if (!scope) return ServiceError(scope.error(), request);
  const std::string& key = params.at("key");
  if (auto bad_key = config::ValidateKey(key); !bad_key) {
    return WithField(ServiceError(bad_key.error(), request), "key");
  }
  auto entry = scope->SetDescription(key, **description, principal.Actor(), *expected_version,
                                     [&](store::Txn& txn, const config::ConfigEntry& written) {
                                       audit::Event event = EventFor(request, params, &principal,
                                                                     audit::actions::kConfigUpdate,
                                                                     audit::Outcome::kSuccess);
                                       event.detail = "version ";
                                       event.detail += std::to_string(written.version);
                                       event.detail += ", description only";
                                       return RecordInTxn(context, std::move(event))(txn);
                                     });
  if (!entry) {
    HttpResponse failed = ServiceError(entry.error(), request);
    if (entry.error().code() == ErrorCode::kInvalidArgument) {
      return WithField(std::move(failed), "description");
    }
    return failed;
  }
  auto shown = MaskedEntryText(*entry);
  if (!shown) return ServiceError(shown.error(), request);
  return TextResponse(200, std::move(*shown));
}

HttpResponse DeleteConfig(const ApiContext& context, const HttpRequest& request,
                          const PathParams& params, const auth::Principal& principal) {
  const auto org_id = OrgOf(params);
  if (auto denied = Deny(principal, Action::kConfigWrite, TargetOf(org_id), request)) {
    return *denied;
  }
  std::optional<std::int64_t> expected_version;
  if (const auto it = request.query.find("expected_version"); it != request.query.end()) {
    expected_version = ParseCanonicalInt64(it->second);
    if (!expected_version || *expected_version < 1) {
      return BadRequest("query parameter 'expected_version' must be a positive integer");
    }
  }
  auto scope = ScopeOf(context, org_id);
  if (!scope) return ServiceError(scope.error(), request);
  auto deleted = scope->Delete(
      params.at("key"), expected_version,
      RecordInTxn(context, EventFor(request, params, &principal, audit::actions::kConfigDelete,
                                    audit::Outcome::kSuccess)));
  if (!deleted) return ServiceError(deleted.error(), request);
  return NoContent();
}

}  // namespace

void RegisterConfigRoutes(Router& router, const SharedContext& context) {
  for (const std::string prefix : {"/api/v1/orgs/{org_id}/configs", "/api/v1/global/configs"}) {
    const AuditSpec read{"config.read", AuditMode::kDenials};
    // A write that fails or is denied is recorded as "config.write": whether it would have
    // created or updated is not known (or not to be told) before the row is read.
    const AuditSpec write{"config.write", AuditMode::kMutation};
    router.Add("GET", prefix, Authenticated(context, read, ListConfigs));
    router.Add("GET", prefix + "/{key}", Authenticated(context, read, GetConfig));
    router.Add("PUT", prefix + "/{key}", Authenticated(context, write, PutConfig));
    router.Add("PATCH", prefix + "/{key}", Authenticated(context, write, PatchConfig));
    router.Add("DELETE", prefix + "/{key}",
               Authenticated(context, {audit::actions::kConfigDelete, AuditMode::kMutation},
                             DeleteConfig, {"expected_version"}));
    router.Add(
        "GET", prefix + "/{key}/reveal",
        Authenticated(context, {audit::actions::kConfigReveal, AuditMode::kReveal}, RevealConfig));
  }
}

}  // namespace bifrost::server::api_internal
