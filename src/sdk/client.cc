// Client: the config API over client::HttpClient, with errors as the SDK's exceptions.
#include "bifrost/client.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "client/http_client.h"
#include "common/text.h"
#include "sdk/json_raw.h"

namespace bifrost::sdk {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxServerMessage = 500;
constexpr const char* kDefaultAddress = "http://127.0.0.1:8420";

// An environment variable; nullopt when it is unset or empty.
std::optional<std::string> GetEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

bool IsValidKey(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (const char c : key) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Server text for a message: one line, bounded, no control characters.
std::string Printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7F ? ' ' : c);
    if (out.size() >= kMaxServerMessage) {
      // Do not end inside a UTF-8 sequence.
      while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) {
        out.pop_back();
      }
      if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
      out += "...";
      break;
    }
  }
  return out;
}

// The {"error": {"code", "message"}} of an error answer; empty strings when it has none.
struct ServerError {
  std::string code;
  std::string message;
};

ServerError ParseServerError(std::string_view body) {
  ServerError out;
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return out;
  const auto error = parsed.find("error");
  if (error == parsed.end() || !error->is_object()) return out;
  const auto code = error->find("code");
  if (code != error->end() && code->is_string()) out.code = Printable(code->get<std::string>());
  const auto message = error->find("message");
  if (message != error->end() && message->is_string()) {
    out.message = Printable(message->get<std::string>());
  }
  return out;
}

// Overwrites a string when the scope ends, however it ends.
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& s) : s_(s) {}
  ~WipeOnExit() { internal::Wipe(s_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::string& s_;
};

std::string Quoted(std::string_view s) { return QuoteForMessage(s); }

std::string AsciiLowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<ConfigType> ParseType(std::string_view name) {
  if (name == "string") return ConfigType::kString;
  if (name == "int") return ConfigType::kInt;
  if (name == "bool") return ConfigType::kBool;
  if (name == "json") return ConfigType::kJson;
  if (name == "secret") return ConfigType::kSecret;
  return std::nullopt;
}

}  // namespace

ClientOptions ClientOptions::FromEnvironment() {
  ClientOptions options;
  options.address = GetEnv("BIFROST_ADDR").value_or(kDefaultAddress);
  options.token = GetEnv("BIFROST_TOKEN").value_or("");
  options.ca_file = GetEnv("BIFROST_CACERT").value_or("");
  options.org = GetEnv("BIFROST_ORG_ID");
  return options;
}

struct Client::Impl {
  ClientOptions options;
  std::unique_ptr<client::HttpClient> http;
  bool scope_resolved = false;
  std::optional<std::string> org_id;  // once resolved: the organization, nullopt for global

  // ---- errors ----

  // "<what> failed: <why>", as Error (or a subclass) with the answer's status.
  [[noreturn]] static void Throw(const std::string& what, std::string_view why, int status = 0) {
    std::string message = what;
    message += " failed: ";
    message += why;
    throw Error(message, status);
  }

  [[noreturn]] void ThrowMalformed(const std::string& what, std::string_view why,
                                   int status) const {
    std::string message = "the answer of bifrost at ";
    message += options.address;
    message += " is not what the API promises (";
    message += why;
    message += ")";
    Throw(what, message, status);
  }

  // The error for a non-2xx answer: 401, 403 and the rest.
  [[noreturn]] static void ThrowForStatus(const std::string& what,
                                          const client::HttpResult& result) {
    const ServerError server = ParseServerError(result.body);
    std::string why;
    if (result.status == 401) {
      why = "authentication failed (HTTP 401): ";
      why += server.message.empty() ? "missing, invalid, expired or revoked token" : server.message;
      why += " (check BIFROST_TOKEN)";
      Throw(what, why, result.status);
    }
    if (result.status == 403) {
      std::string message = what;
      message += " failed: permission denied (HTTP 403): ";
      message += server.message.empty() ? "the token's role or organization does not allow this"
                                        : server.message;
      throw PermissionDeniedError(message, result.status);
    }
    why = "HTTP ";
    why += std::to_string(result.status);
    if (!server.code.empty()) {
      why += " ";
      why += server.code;
    }
    if (!server.message.empty()) {
      why += ": ";
      why += server.message;
    }
    Throw(what, why, result.status);
  }

  // A 404 that says the config key is not set (not that the organization does not exist,
  // nor a 404 from something that is not the Bifrost API). Its message in *message.
  static bool IsMissingKey(const client::HttpResult& result, std::string* message) {
    if (result.status != 404) return false;
    ServerError server = ParseServerError(result.body);
    if (server.code != "not_found" || server.message.starts_with("organization ")) return false;
    *message = std::move(server.message);
    return true;
  }

  // ---- requests ----

  client::HttpResult Send(const std::string& what, std::string_view method,
                          const std::string& target,
                          std::optional<std::string_view> body = std::nullopt) {
    std::optional<std::string_view> bearer;
    if (!options.token.empty()) bearer = options.token;
    auto result = http->Send(method, target, body, bearer);
    if (!result) Throw(what, result.error().message());
    return std::move(*result);
  }

  // GET of a JSON document that holds no config value (whoami, organizations).
  json GetJson(const std::string& what, const std::string& target) {
    client::HttpResult result = Send(what, "GET", target);
    if (result.status < 200 || result.status >= 300) ThrowForStatus(what, result);
    json parsed = json::parse(result.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) ThrowMalformed(what, "not JSON", result.status);
    return parsed;
  }

  // ---- scope ----

  const std::optional<std::string>& Scope() {
    if (scope_resolved) return org_id;
    if (options.global) {
      org_id.reset();
    } else if (options.org) {
      org_id = ResolveOrg(*options.org);
    } else {
      org_id = OrgOfToken();
    }
    scope_resolved = true;
    return org_id;
  }

  // An id (a UUID in any letter case) as is, else the id of the organization of that name.
  std::string ResolveOrg(const std::string& org) {
    std::string lowered = AsciiLowerCopy(org);
    if (IsCanonicalUuid(lowered)) return lowered;
    const std::string what = "looking up organization " + Quoted(org);
    const json listed = GetJson(what, "/api/v1/orgs?name=" + client::UrlEncode(org));
    if (!listed.is_array()) ThrowMalformed(what, "not an array of organizations", 200);
    for (const auto& candidate : listed) {
      if (!candidate.is_object()) continue;
      const auto name = candidate.find("name");
      const auto id = candidate.find("id");
      if (name != candidate.end() && name->is_string() && *name == org && id != candidate.end() &&
          id->is_string() && !id->get_ref<const std::string&>().empty()) {
        return id->get<std::string>();
      }
    }
    Throw(what, "no organization of that name is visible to the token");
  }

  // The organization of the token (GET /api/v1/whoami).
  std::string OrgOfToken() {
    const std::string what = "finding the token's organization (GET /api/v1/whoami)";
    const json principal = GetJson(what, "/api/v1/whoami");
    if (!principal.is_object()) ThrowMalformed(what, "not an object", 200);
    const auto org = principal.find("org_id");
    if (org != principal.end() && org->is_string() && !org->get_ref<const std::string&>().empty()) {
      return org->get<std::string>();
    }
    if (org != principal.end() && !org->is_null() && !org->is_string()) {
      ThrowMalformed(what, "org_id is not a string", 200);
    }
    Throw(what,
          "the token belongs to no organization (a platform administrator's): set "
          "ClientOptions::org (or BIFROST_ORG_ID) to an organization, or ClientOptions::global");
  }

  std::string ConfigsPath() {
    const auto& org = Scope();
    if (!org) return "/api/v1/global/configs";
    return "/api/v1/orgs/" + client::UrlEncode(*org) + "/configs";
  }

  std::string ConfigPath(std::string_view key) {
    std::string path = ConfigsPath();
    path += "/";
    path += client::UrlEncode(key);
    return path;
  }

  static void CheckKey(std::string_view key) {
    if (IsValidKey(key)) return;
    std::string message = "invalid config key ";
    message += Quoted(key);
    message += ": a key is 1-255 ASCII letters, digits and underscores";
    throw Error(message);
  }

  // ---- entries ----

  // The key and value of a ConfigEntry's exact text. `masked`: a list's entry, whose secret is
  // masked whatever the text says.
  std::pair<std::string, ConfigValue> ParseEntry(const std::string& what, std::string_view text,
                                                 bool masked, int status) const {
    const auto members = internal::Members(text);
    if (!members) ThrowMalformed(what, "a config entry is not an object", status);
    std::optional<std::string_view> type_text;
    std::optional<std::string_view> value_text;
    std::optional<std::string_view> key_text;
    for (const auto& [name, member] : *members) {
      if (name == "type") type_text = member;
      if (name == "value") value_text = member;
      if (name == "key") key_text = member;
    }
    if (!type_text || !value_text) {
      ThrowMalformed(what, "a config entry has no type or no value", status);
    }
    std::string key;
    if (key_text) {
      auto decoded = internal::DecodeString(*key_text);
      if (!decoded) ThrowMalformed(what, "a config entry's key is not a string", status);
      key = std::move(*decoded);
    }
    const auto type_name = internal::DecodeString(*type_text);
    const auto type = type_name ? ParseType(*type_name) : std::nullopt;
    if (!type) ThrowMalformed(what, "a config entry has an unknown type", status);
    std::string wrong = "the value of a";
    wrong += *type == ConfigType::kInt ? "n " : " ";
    wrong += ConfigTypeName(*type);
    wrong += " config is not ";
    switch (*type) {
      case ConfigType::kString:
      case ConfigType::kSecret: {
        if (*type == ConfigType::kSecret && masked) return {key, ConfigValue::MaskedSecret()};
        auto decoded = internal::DecodeString(*value_text);
        if (!decoded) ThrowMalformed(what, wrong + "a string", status);
        ConfigValue value = *type == ConfigType::kSecret ? ConfigValue::Secret(std::move(*decoded))
                                                         : ConfigValue::String(std::move(*decoded));
        internal::Wipe(*decoded);  // a short string's bytes stay behind when it is moved
        return {std::move(key), std::move(value)};
      }
      case ConfigType::kInt: {
        const auto number = ParseCanonicalInt64(*value_text);
        if (!number) ThrowMalformed(what, wrong + "a 64-bit integer", status);
        return {key, ConfigValue::Int(*number)};
      }
      case ConfigType::kBool:
        if (*value_text == "true") return {key, ConfigValue::Bool(true)};
        if (*value_text == "false") return {key, ConfigValue::Bool(false)};
        ThrowMalformed(what, wrong + "true or false", status);
      case ConfigType::kJson:
        return {key, ConfigValue::JsonText(std::string(*value_text))};
    }
    ThrowMalformed(what, "a config entry has an unknown type", status);
  }

  std::optional<ConfigValue> Reveal(std::string_view key, std::string* missing_message) {
    CheckKey(key);
    const std::string what = "reading config " + Quoted(key);
    client::HttpResult result = Send(what, "GET", ConfigPath(key) + "/reveal");
    const WipeOnExit wipe(result.body);
    if (result.status >= 200 && result.status < 300) {
      if (!internal::IsJson(result.body)) ThrowMalformed(what, "not JSON", result.status);
      return ParseEntry(what, result.body, /*masked=*/false, result.status).second;
    }
    if (IsMissingKey(result, missing_message)) {
      if (missing_message->empty()) *missing_message = "config " + Quoted(key) + " is not set";
      return std::nullopt;
    }
    ThrowForStatus(what, result);
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.global && options.org) {
    throw Error("ClientOptions: set either org or global, not both");
  }
  if (options.org && options.org->empty()) {
    throw Error("ClientOptions: org is empty (leave it unset for the token's organization)");
  }
  if (options.timeout_ms <= 0) throw Error("ClientOptions: timeout_ms must be positive");
  client::ClientOptions http_options;
  http_options.address = options.address;
  http_options.ca_file = options.ca_file;
  http_options.timeout_ms = options.timeout_ms;
  auto http = client::HttpClient::Create(http_options);
  if (!http) throw Error(http.error().message());
  impl_->http = std::move(*http);
  impl_->options = std::move(options);
}

Client::~Client() {
  if (impl_) internal::Wipe(impl_->options.token);
}
Client::Client(Client&& other) noexcept = default;
Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (impl_) internal::Wipe(impl_->options.token);
    impl_ = std::move(other.impl_);
  }
  return *this;
}

ConfigValue Client::Get(std::string_view key) {
  std::string missing;
  auto value = impl_->Reveal(key, &missing);
  if (!value) throw NotFoundError(missing);
  return std::move(*value);
}

ConfigValue Client::Get(std::string_view key, ConfigValue fallback) {
  std::string missing;
  auto value = impl_->Reveal(key, &missing);
  if (!value) return fallback;
  return std::move(*value);
}

std::optional<ConfigValue> Client::Find(std::string_view key) {
  std::string missing;
  return impl_->Reveal(key, &missing);
}

void Client::Set(std::string_view key, const ConfigValue& value,
                 std::optional<std::string> description) {
  Impl::CheckKey(key);
  const std::string what = "writing config " + Quoted(key);
  if (value.masked()) {
    throw Error(what + " failed: the value is a masked secret from List(), not a value");
  }
  std::string value_text;
  const WipeOnExit wipe_value(value_text);
  switch (value.type()) {
    case ConfigType::kString:
    case ConfigType::kSecret:
      if (!IsValidUtf8(value.AsString())) {
        throw Error(what + " failed: the value is not valid UTF-8");
      }
      value_text = internal::QuoteString(value.AsString());
      break;
    case ConfigType::kInt:
    case ConfigType::kBool:
      value_text = value.Text();
      break;
    case ConfigType::kJson:
      value_text = std::string(internal::Trim(value.Text()));
      break;
  }
  std::string description_text;
  if (description) {
    if (!IsValidUtf8(*description)) {
      throw Error(what + " failed: the description is not valid UTF-8");
    }
    description_text = internal::QuoteString(*description);
  }
  std::string body;
  const WipeOnExit wipe_body(body);
  body.reserve(value_text.size() + description_text.size() + 64);
  body += R"({"type":")";
  body += ConfigTypeName(value.type());
  body += R"(","value":)";
  body += value_text;
  if (description) {
    body += R"(,"description":)";
    body += description_text;
  }
  body += "}";
  const std::string target = impl_->ConfigPath(key);
  client::HttpResult result = impl_->Send(what, "PUT", target, body);
  if (result.status < 200 || result.status >= 300) Impl::ThrowForStatus(what, result);
}

std::map<std::string, ConfigValue> Client::List() {
  const std::string what = "listing configs";
  client::HttpResult result = impl_->Send(what, "GET", impl_->ConfigsPath());
  const WipeOnExit wipe(result.body);
  if (result.status < 200 || result.status >= 300) Impl::ThrowForStatus(what, result);
  if (!internal::IsJson(result.body)) impl_->ThrowMalformed(what, "not JSON", result.status);
  const auto elements = internal::Elements(result.body);
  if (!elements) impl_->ThrowMalformed(what, "not an array of config entries", result.status);
  std::map<std::string, ConfigValue> out;
  for (const std::string_view element : *elements) {
    auto [key, value] = impl_->ParseEntry(what, element, /*masked=*/true, result.status);
    if (key.empty()) impl_->ThrowMalformed(what, "a config entry has no key", result.status);
    out.insert_or_assign(std::move(key), std::move(value));
  }
  return out;
}

bool Client::Delete(std::string_view key) {
  Impl::CheckKey(key);
  const std::string what = "deleting config " + Quoted(key);
  const client::HttpResult result = impl_->Send(what, "DELETE", impl_->ConfigPath(key));
  if (result.status >= 200 && result.status < 300) return true;
  std::string missing;
  if (Impl::IsMissingKey(result, &missing)) return false;
  Impl::ThrowForStatus(what, result);
}

std::optional<std::string> Client::OrgId() { return impl_->Scope(); }

}  // namespace bifrost::sdk
