#include "cli/commands.h"

#include <istream>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

#include "cli/duration.h"
#include "cli/table.h"
#include "cli/values.h"
#include "client/http_client.h"
#include "common/clock.h"
#include "common/text.h"
#include "config/json_text.h"

namespace bifrost::cli {
namespace {

using nlohmann::json;

constexpr std::string_view kDefaultAddress = "http://127.0.0.1:8420";
constexpr std::size_t kTableValueWidth = 60;
constexpr std::size_t kAuditDetailWidth = 80;
constexpr int kAuditMaxPage = 1000;  // the server's largest ?limit=

void PrintJson(Session& session, const json& value) {
  session.out() << value.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
}

// The server's JSON text (checked by Api::CallText) laid out as PrintJson lays out a document,
// but with every number and string exactly as the server sent it.
void PrintJsonText(Session& session, std::string_view text) {
  session.out() << config::json_text::Indent(text, 2) << '\n';
}

// Refuses an argument that is not valid UTF-8 before anything is sent: JSON, and so the API,
// carries only UTF-8. The message names the argument, never its text (it may be a secret).
CliStatus RequireUtf8(std::string_view text, std::string_view argument) {
  if (IsValidUtf8(text)) return {};
  return UsageError(std::string(argument) + " is not valid UTF-8");
}

// A config entry as the server sent it (checked JSON text): its fields but "value", parsed,
// and the exact text of its value, which is never parsed (a json value is shown as stored).
struct Entry {
  json fields = json::object();
  std::string_view value;  // into the response text; "" when absent
};

Entry ReadEntry(std::string_view text) {
  Entry entry;
  for (const auto& [name, member] : config::json_text::Members(text)) {
    if (name == "value") {
      entry.value = member;
      continue;
    }
    json parsed = json::parse(member, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) entry.fields[name] = std::move(parsed);
  }
  return entry;
}

// A field of a server object as table text: strings as-is, null or absent as "-".
std::string Field(const json& object, const char* name) {
  if (!object.is_object()) return "-";
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    return s.empty() ? "-" : s;
  }
  return it->dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct OrgRef {
  std::string id;
  std::string name;  // empty when not known (an org token's own org, before it is looked up)
};

// ORG is an id when it is a canonical UUID (any case), else a name looked up with ?name=.
CliResult<OrgRef> ResolveOrg(Api& api, std::string_view org) {
  const std::string lowered = LowerAscii(org);
  if (IsCanonicalUuid(lowered)) {
    auto found = api.Get("/api/v1/orgs/" + lowered);
    if (!found) {
      // The same message as for a name that matches nothing, not the server's wording.
      if (found.error().exit_code == kExitNotFound) {
        return NotFoundError("organization " + QuoteForMessage(org) + " not found");
      }
      return std::unexpected(std::move(found.error()));
    }
    return OrgRef{lowered, Field(*found, "name")};
  }
  auto listed = api.Get("/api/v1/orgs?name=" + client::UrlEncode(org));
  if (!listed) return std::unexpected(std::move(listed.error()));
  if (listed->is_array()) {
    for (const auto& candidate : *listed) {
      if (candidate.is_object() && Field(candidate, "name") == org && candidate.contains("id") &&
          candidate["id"].is_string()) {
        return OrgRef{candidate["id"].get<std::string>(), std::string(org)};
      }
    }
  }
  return NotFoundError("organization " + QuoteForMessage(org) + " not found");
}

// The calling token, from GET /api/v1/whoami.
CliResult<json> FetchPrincipal(Api& api) { return api.Get("/api/v1/whoami"); }

std::optional<std::string> OrgIdOfPrincipal(const json& principal) {
  if (principal.is_object()) {
    const auto it = principal.find("org_id");
    if (it != principal.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      return it->get<std::string>();
    }
  }
  return std::nullopt;
}

// Where a config command acts: an organization, or the global scope (org == nullopt).
struct Scope {
  std::optional<OrgRef> org;
};

CliResult<Scope> ResolveScope(Api& api, const ScopeFlags& flags) {
  if (flags.global) return Scope{};
  if (!flags.org.empty()) {
    auto org = ResolveOrg(api, flags.org);
    if (!org) return std::unexpected(std::move(org.error()));
    return Scope{std::move(*org)};
  }
  auto principal = FetchPrincipal(api);
  if (!principal) return std::unexpected(std::move(principal.error()));
  if (auto org_id = OrgIdOfPrincipal(*principal)) return Scope{OrgRef{*org_id, ""}};
  return UsageError("say --org ORG or --global (this token is a platform admin)");
}

std::string ConfigsPath(const Scope& scope) {
  if (!scope.org) return "/api/v1/global/configs";
  return "/api/v1/orgs/" + client::UrlEncode(scope.org->id) + "/configs";
}

std::string ConfigPath(const Scope& scope, std::string_view key) {
  return ConfigsPath(scope) + "/" + client::UrlEncode(key);
}

// "global", the org's name, or (when the name cannot be read) its id.
std::string ScopeLabel(Api& api, const Scope& scope) {
  if (!scope.org) return "global";
  if (!scope.org->name.empty()) return scope.org->name;
  auto found = api.Get("/api/v1/orgs/" + client::UrlEncode(scope.org->id));
  if (found) {
    std::string name = Field(*found, "name");
    if (name != "-") return name;
  }
  return scope.org->id;
}

// The value text of `config set`: the argument, else stdin (a terminal is prompted without
// echo). Exactly one trailing newline is stripped from piped input.
CliResult<std::string> ReadValue(Session& session, const ConfigSetArgs& args) {
  if (args.value && *args.value != "-") return *args.value;
  CliIo& io = session.io();
  if (io.stdin_is_terminal && io.read_hidden_line) {
    auto line = io.read_hidden_line("Value for " + PrintableCell(args.key, 64) + ": ");
    if (!line) return UsageError("no value given for " + QuoteForMessage(args.key));
    return std::move(*line);
  }
  if (io.in == nullptr) return UsageError("no value given and no stdin to read it from");
  std::string text{std::istreambuf_iterator<char>(*io.in), std::istreambuf_iterator<char>()};
  if (io.in->bad()) return CommandError("cannot read the value from stdin");
  if (text.ends_with('\n')) text.pop_back();
  return text;
}

// The value column of `config list`: never a secret's value, whatever the server sent.
std::string TableValue(const Entry& entry) {
  if (Field(entry.fields, "type") == "secret") return "[SECRET]";
  if (entry.value.empty()) return "";
  return PrintableCell(DisplayValue(entry.value), kTableValueWidth);
}

}  // namespace

std::optional<std::string> Session::GetEnv(const std::string& name) const {
  if (!io_.getenv) return std::nullopt;
  return io_.getenv(name);
}

bool Session::UseAnsi() const {
  if (!io_.stdout_is_terminal) return false;
  if (GetEnv("NO_COLOR").has_value()) return false;
  return GetEnv("TERM").value_or("") != "dumb";
}

CliResult<Api*> Session::api() {
  if (api_) return api_.get();
  std::optional<std::string> token = GetEnv("BIFROST_TOKEN");
  if (!token || token->empty()) {
    return UsageError(
        "BIFROST_TOKEN is not set: export the token printed by 'bifrost init' or "
        "'bifrost token create'");
  }
  client::ClientOptions options;
  options.address = GetEnv("BIFROST_ADDR").value_or("");
  if (options.address.empty()) options.address = std::string(kDefaultAddress);
  options.ca_file = GetEnv("BIFROST_CACERT").value_or("");
  auto http = client::HttpClient::Create(options);
  if (!http) {
    // A malformed BIFROST_ADDR or an unreadable BIFROST_CACERT: the invocation is wrong.
    if (http.error().code() == ErrorCode::kInvalidArgument) {
      return UsageError(http.error().message());
    }
    return FromError(http.error());
  }
  api_ = std::make_unique<Api>(std::move(*http), std::move(*token));
  return api_.get();
}

// ---- org ----

CliStatus OrgCreate(Session& session, const std::string& name, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(name, "NAME"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json created, api->Call("POST", "/api/v1/orgs", json{{"name", name}}));
  if (format == Format::kJson) {
    PrintJson(session, created);
  } else {
    session.out() << "created organization " << PrintableCell(Field(created, "name")) << " ("
                  << Field(created, "id") << ")\n";
  }
  return {};
}

CliStatus OrgList(Session& session, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json orgs, api->Get("/api/v1/orgs"));
  if (format == Format::kJson) {
    PrintJson(session, orgs);
    return {};
  }
  std::vector<TableRow> rows;
  if (orgs.is_array()) {
    for (const auto& org : orgs) {
      rows.push_back({Field(org, "id"), Field(org, "name"), Field(org, "created_at")});
    }
  }
  session.out() << RenderTable({"ID", "NAME", "CREATED"}, rows, session.UseAnsi());
  return {};
}

CliStatus OrgDelete(Session& session, const std::string& org, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(org, "ORG"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(OrgRef ref, ResolveOrg(*api, org));
  BIFROST_CLI_RETURN_IF_ERROR(api->Call("DELETE", "/api/v1/orgs/" + client::UrlEncode(ref.id)));
  if (format == Format::kJson) {
    PrintJson(session, json{{"id", ref.id}, {"name", ref.name}, {"deleted", true}});
  } else {
    session.out() << "deleted organization " << PrintableCell(ref.name) << " (" << ref.id << ")\n";
  }
  return {};
}

// ---- config ----

CliStatus ConfigSet(Session& session, const ConfigSetArgs& args) {
  // Flags first: nothing is read or sent when the command line is wrong.
  std::optional<ValueType> type;
  if (args.type) {
    type = ParseValueType(*args.type);
    if (!type) {
      return UsageError("--type must be one of string, int, bool, json, secret");
    }
  }
  if (args.secret) {
    if (type && *type != ValueType::kSecret) {
      return UsageError("--secret conflicts with --type " + *args.type +
                        " (--secret means --type secret)");
    }
    type = ValueType::kSecret;
  }
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.key, "KEY"));
  if (args.description) {
    BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(*args.description, "--description"));
  }
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.scope.org, "--org"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(std::string text, ReadValue(session, args));
  const bool from_argument = args.value && *args.value != "-";
  BIFROST_CLI_RETURN_IF_ERROR(
      RequireUtf8(text, from_argument ? "VALUE" : "the value read from stdin"));
  const ValueType effective = type.value_or(InferValueType(text));
  auto value = ValueToJsonText(effective, text, args.key);
  if (!value) return FromError(value.error());
  json skeleton = {{"type", ValueTypeName(effective)}, {"value", nullptr}};
  if (args.description) skeleton["description"] = *args.description;
  // The value goes in as text: a json value is sent exactly as typed.
  auto body = config::json_text::ReplaceNullMember(skeleton.dump(), "value", *value);
  if (!body) return CommandError("internal error: the request body could not be built");

  BIFROST_CLI_ASSIGN(Scope scope, ResolveScope(*api, args.scope));
  BIFROST_CLI_ASSIGN(std::string answer, api->CallText("PUT", ConfigPath(scope, args.key), *body));
  const Entry entry = ReadEntry(answer);
  if (args.format == Format::kJson) {
    if (effective == ValueType::kSecret && !entry.value.empty() && entry.value != "\"[SECRET]\"") {
      // Never print a secret, whatever the server sent.
      const auto at = static_cast<std::size_t>(entry.value.data() - answer.data());
      answer.replace(at, entry.value.size(), "\"[SECRET]\"");
    }
    PrintJsonText(session, answer);
  } else {
    session.out() << "set " << PrintableCell(args.key) << " (" << ValueTypeName(effective)
                  << ") in " << PrintableCell(ScopeLabel(*api, scope)) << ", version "
                  << Field(entry.fields, "version") << "\n";
  }
  return {};
}

CliStatus ConfigGet(Session& session, const std::string& key, const ScopeFlags& flags,
                    const std::optional<std::string>& default_value, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(key, "KEY"));
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(flags.org, "--org"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(Scope scope, ResolveScope(*api, flags));
  auto answer = api->CallText("GET", ConfigPath(scope, key) + "/reveal");
  if (!answer) {
    // The scope was resolved above, so a 404 here is about the key.
    if (answer.error().exit_code == kExitNotFound && default_value) {
      if (format == Format::kJson) {
        PrintJson(session, json{{"key", key}, {"value", *default_value}, {"default", true}});
      } else {
        session.out() << *default_value << "\n";
      }
      return {};
    }
    return std::unexpected(std::move(answer.error()));
  }
  if (format == Format::kJson) {
    PrintJsonText(session, *answer);
    return {};
  }
  const Entry entry = ReadEntry(*answer);
  if (entry.value.empty()) return CommandError("the server's entry has no value");
  session.out() << DisplayValue(entry.value) << "\n";
  return {};
}

CliStatus ConfigList(Session& session, const ScopeFlags& flags, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(flags.org, "--org"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(Scope scope, ResolveScope(*api, flags));
  BIFROST_CLI_ASSIGN(const std::string entries, api->CallText("GET", ConfigsPath(scope)));
  if (format == Format::kJson) {
    PrintJsonText(session, entries.empty() ? "null" : entries);
    return {};
  }
  std::vector<TableRow> rows;
  for (const std::string_view element : config::json_text::Elements(entries)) {
    const Entry entry = ReadEntry(element);
    rows.push_back({Field(entry.fields, "key"), Field(entry.fields, "type"), TableValue(entry),
                    Field(entry.fields, "scope")});
  }
  session.out() << RenderTable({"KEY", "TYPE", "VALUE", "SCOPE"}, rows, session.UseAnsi());
  return {};
}

CliStatus ConfigDelete(Session& session, const std::string& key, const ScopeFlags& flags,
                       Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(key, "KEY"));
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(flags.org, "--org"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(Scope scope, ResolveScope(*api, flags));
  BIFROST_CLI_RETURN_IF_ERROR(api->Call("DELETE", ConfigPath(scope, key)));
  if (format == Format::kJson) {
    PrintJson(session, json{{"key", key},
                            {"scope", scope.org ? "org" : "global"},
                            {"org_id", scope.org ? json(scope.org->id) : json(nullptr)},
                            {"deleted", true}});
  } else {
    session.out() << "deleted " << PrintableCell(key) << " from "
                  << PrintableCell(ScopeLabel(*api, scope)) << "\n";
  }
  return {};
}

// ---- token ----

CliStatus TokenCreate(Session& session, const TokenCreateArgs& args) {
  std::optional<std::int64_t> ttl_seconds;
  if (args.ttl) {
    ttl_seconds = ParseDurationSeconds(*args.ttl);
    if (!ttl_seconds) {
      return UsageError("--ttl " + QuoteForMessage(*args.ttl) +
                        " is not a duration like 90s, 30m, 24h, 7d or 1h30m");
    }
  }
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.org, "--org"));
  if (args.name) BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(*args.name, "--name"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  json body = {{"role", args.role}};
  if (!args.org.empty()) {
    BIFROST_CLI_ASSIGN(OrgRef org, ResolveOrg(*api, args.org));
    body["org_id"] = org.id;
  } else if (args.role != "platform-admin") {
    // An org role belongs to an organization: an org token's own, else --org is needed.
    BIFROST_CLI_ASSIGN(json principal, FetchPrincipal(*api));
    auto org_id = OrgIdOfPrincipal(principal);
    if (!org_id) {
      return UsageError("say --org ORG: a " + args.role +
                        " token belongs to an organization (this token is a platform admin)");
    }
    body["org_id"] = *org_id;
  }
  if (args.name) body["name"] = *args.name;
  if (ttl_seconds) body["ttl_seconds"] = *ttl_seconds;

  BIFROST_CLI_ASSIGN(json created, api->Call("POST", "/api/v1/tokens", body));
  if (args.format == Format::kJson) {
    PrintJson(session, created);
    return {};
  }
  session.out() << RenderFields({{"Token", Field(created, "token")},
                                 {"ID", Field(created, "id")},
                                 {"Name", Field(created, "name")},
                                 {"Role", Field(created, "role")},
                                 {"Org", Field(created, "org_id")},
                                 {"Expires", Field(created, "expires_at")}},
                                session.UseAnsi())
                << "This token is shown only once: store it now, it cannot be retrieved "
                   "later.\n";
  return {};
}

CliStatus TokenList(Session& session, const std::string& org, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(org, "--org"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  std::string target = "/api/v1/tokens";
  if (!org.empty()) {
    BIFROST_CLI_ASSIGN(OrgRef ref, ResolveOrg(*api, org));
    target += "?org_id=" + client::UrlEncode(ref.id);
  }
  BIFROST_CLI_ASSIGN(json tokens, api->Get(target));
  if (format == Format::kJson) {
    PrintJson(session, tokens);
    return {};
  }
  std::vector<TableRow> rows;
  if (tokens.is_array()) {
    for (const auto& t : tokens) {
      rows.push_back({Field(t, "id"), Field(t, "name"), Field(t, "role"), Field(t, "org_id"),
                      Field(t, "created_at"), Field(t, "expires_at"), Field(t, "last_used_at"),
                      Field(t, "revoked_at")});
    }
  }
  session.out() << RenderTable(
      {"ID", "NAME", "ROLE", "ORG", "CREATED", "EXPIRES", "LAST_USED", "REVOKED"}, rows,
      session.UseAnsi());
  return {};
}

CliStatus TokenRevoke(Session& session, const std::string& id, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(id, "ID"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_RETURN_IF_ERROR(api->Call("DELETE", "/api/v1/tokens/" + client::UrlEncode(id)));
  if (format == Format::kJson) {
    PrintJson(session, json{{"id", id}, {"revoked", true}});
  } else {
    session.out() << "revoked token " << PrintableCell(id) << "\n";
  }
  return {};
}

// ---- audit ----

namespace {

// A record's time to the second, UTC ("2026-12-02T04:01:17Z"), from time_us; else the
// server's "time" as sent; else "-".
std::string AuditRecordTime(const json& record) {
  const auto it = record.find("time_us");
  if (it != record.end() && it->is_number_integer()) {
    const std::int64_t micros = it->get<std::int64_t>();
    std::int64_t seconds = micros / 1'000'000;
    if (micros % 1'000'000 < 0) --seconds;  // floor, also before 1970
    std::string text = FormatRfc3339(seconds * 1'000'000);
    if (text.ends_with(".000000Z")) text.erase(text.size() - 8, 7);
    return text;
  }
  return Field(record, "time");
}

// The actor's name; a token without a name by its id; "-" when there is no actor.
std::string AuditActor(const json& record) {
  std::string name = Field(record, "actor_name");
  if (name != "-") return name;
  return Field(record, "actor_id");
}

void AppendQuery(std::string& target, std::string_view name, std::string_view value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += client::UrlEncode(value);
}

}  // namespace

CliResult<std::string> AuditTimeQueryValue(std::string_view flag, std::string_view text,
                                           std::int64_t now_micros) {
  if (const auto ago = ParseDurationSeconds(text)) {
    // Durations fit in int64 seconds; as microseconds back from now they may not.
    constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / 1'000'000;
    if (*ago <= kMaxSeconds) {
      const std::int64_t back = *ago * 1'000'000;
      if (now_micros >= std::numeric_limits<std::int64_t>::min() + back) {
        const std::int64_t at = now_micros - back;
        if (at >= 0) return FormatRfc3339(at);
      }
    }
    std::string message(flag);
    message += " ";
    message += QuoteForMessage(text);
    message += " reaches back before 1970";
    return UsageError(std::move(message));
  }
  // An absolute time is sent as typed: the server reads it with the same parser.
  if (ParseRfc3339(text)) return std::string(text);
  std::string message(flag);
  message += " ";
  message += QuoteForMessage(text);
  message +=
      " is not a time: give RFC 3339 (2026-12-01T09:30:00Z), a date (2026-12-01) or how long "
      "ago (30m, 24h, 7d)";
  return UsageError(std::move(message));
}

CliStatus AuditList(Session& session, const AuditListArgs& args) {
  // Flags first: nothing is sent when the command line is wrong.
  const std::int64_t now = SystemClock::Instance().NowMicros();
  std::optional<std::string> since;
  std::optional<std::string> until;
  if (!args.since.empty()) {
    BIFROST_CLI_ASSIGN(since, AuditTimeQueryValue("--since", args.since, now));
  }
  if (!args.until.empty()) {
    BIFROST_CLI_ASSIGN(until, AuditTimeQueryValue("--until", args.until, now));
  }
  if (args.limit < 1 || args.limit > kAuditMaxPage) {
    return UsageError("--limit must be from 1 to " + std::to_string(kAuditMaxPage));
  }
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.org, "--org"));
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.key, "--key"));
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.action, "--action"));
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.actor, "--actor"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());

  std::string filters = "/api/v1/audit";
  if (!args.org.empty()) {
    BIFROST_CLI_ASSIGN(OrgRef ref, ResolveOrg(*api, args.org));
    AppendQuery(filters, "org_id", ref.id);
  }
  if (!args.key.empty()) AppendQuery(filters, "key", args.key);
  if (!args.action.empty()) AppendQuery(filters, "action", args.action);
  if (!args.actor.empty()) AppendQuery(filters, "actor", args.actor);
  if (!args.outcome.empty()) AppendQuery(filters, "outcome", args.outcome);
  if (since) AppendQuery(filters, "since", *since);
  if (until) AppendQuery(filters, "until", *until);

  // Pages, newest first, each one asking for what is still missing, until there are enough
  // records or the server says there are no more. The pages are kept as the server sent
  // them, so that --format json prints every record exactly as it came.
  const auto wanted = static_cast<std::size_t>(args.limit);
  std::vector<std::string> pages;
  std::vector<std::string_view> records;
  std::optional<std::int64_t> before;
  while (records.size() < wanted) {
    std::string target = filters;
    AppendQuery(target, "limit", std::to_string(wanted - records.size()));
    if (before) AppendQuery(target, "before", std::to_string(*before));
    BIFROST_CLI_ASSIGN(std::string page, api->CallText("GET", target));
    pages.push_back(std::move(page));
    const std::string_view text = pages.back();
    const auto listed = config::json_text::Member(text, "records");
    if (!listed || config::json_text::Trim(*listed).front() != '[') {
      return CommandError("the server's answer to GET " + target + " has no records array");
    }
    const std::vector<std::string_view> page_records = config::json_text::Elements(*listed);
    for (const std::string_view record : page_records) {
      if (records.size() == wanted) break;
      records.push_back(record);
    }
    const auto next = config::json_text::Member(text, "next_before");
    if (!next || config::json_text::Trim(*next) == "null") break;
    const auto next_seq = ParseCanonicalInt64(config::json_text::Trim(*next));
    // Each page must move back in the log: a server that does not would be asked forever.
    if (!next_seq || *next_seq < 1 || page_records.empty() || (before && *next_seq >= *before)) {
      return CommandError("the server's answer to GET " + target + " has a bad next_before");
    }
    before = *next_seq;
  }

  if (args.format == Format::kJson) {
    std::string array = "[";
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (i > 0) array += ',';
      array += records[i];
    }
    array += ']';
    PrintJsonText(session, array);
    return {};
  }
  std::vector<TableRow> rows;
  rows.reserve(records.size());
  for (const std::string_view text : records) {
    const json record = json::parse(text, nullptr, /*allow_exceptions=*/false);
    rows.push_back({Field(record, "seq"), AuditRecordTime(record), Field(record, "action"),
                    Field(record, "outcome"), Field(record, "org_id"), Field(record, "config_key"),
                    AuditActor(record), Field(record, "client_address"),
                    PrintableCell(Field(record, "detail"), kAuditDetailWidth)});
  }
  session.out() << RenderTable(
      {"SEQ", "TIME", "ACTION", "OUTCOME", "ORG", "KEY", "ACTOR", "CLIENT", "DETAIL"}, rows,
      session.UseAnsi());
  return {};
}

CliStatus Whoami(Session& session, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json principal, FetchPrincipal(*api));
  if (format == Format::kJson) {
    PrintJson(session, principal);
    return {};
  }
  session.out() << RenderFields({{"Token ID", Field(principal, "token_id")},
                                 {"Name", Field(principal, "name")},
                                 {"Role", Field(principal, "role")},
                                 {"Org", Field(principal, "org_id")}},
                                session.UseAnsi());
  return {};
}

CliResult<std::string> OrgIdForCommand(Api& api, const std::string& org, std::string_view flag) {
  if (!org.empty()) {
    BIFROST_CLI_ASSIGN(OrgRef ref, ResolveOrg(api, org));
    return ref.id;
  }
  BIFROST_CLI_ASSIGN(json principal, FetchPrincipal(api));
  if (auto org_id = OrgIdOfPrincipal(principal)) return *org_id;
  return UsageError("say " + std::string(flag) + " ORG (this token is a platform admin)");
}

void PrintJsonDocument(Session& session, const json& value) { PrintJson(session, value); }

std::string TableField(const json& object, const char* name) { return Field(object, name); }

}  // namespace bifrost::cli
