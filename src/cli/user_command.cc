// `bifrost user create|list|disable|passwd`: the people who sign in to the web UI
// (docs/web-ui.md), managed over the users API of a running server.
//
// A password never comes from the command line (it would be in `ps` and shell history): it
// is typed twice at a prompt without echo, or piped as the first line of stdin. It is kept
// in a wiped buffer from the moment it is read until the request has been sent, and the
// request body that carries it is built in one as well.
#include <cstddef>
#include <istream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/remote_commands.h"
#include "cli/table.h"
#include "client/http_client.h"
#include "common/text.h"
#include "crypto/secure_buffer.h"

namespace bifrost::cli {
namespace {

using nlohmann::json;

// The server's rule (docs/web-ui.md); it checks again and is authoritative.
constexpr std::size_t kMinPasswordBytes = 12;
constexpr std::size_t kMaxPasswordBytes = 1024;

constexpr const char* kPasswordHelp =
    "The password is never an argument: on a terminal it is asked twice without echo\n"
    "(\"Password: \", \"Repeat password: \"); otherwise it is the first line of stdin (its\n"
    "line ending removed). A password is 12 to 1024 bytes.\n";

std::string UserPath(const std::string& user) { return "/api/v1/users/" + client::UrlEncode(user); }

CliStatus RequireUtf8(std::string_view text, std::string_view argument) {
  if (IsValidUtf8(text)) return {};
  return UsageError(std::string(argument) + " is not valid UTF-8");
}

// A string read at the prompt, moved into a wiped buffer; the string's bytes are wiped.
crypto::SecureBuffer TakeIntoSecureBuffer(std::string& text) {
  crypto::SecureBuffer buffer = crypto::SecureBuffer::From(std::string_view(text));
  crypto::SecureWipe(text.data(), text.size());
  text.clear();
  return buffer;
}

// The local checks of a new password, in the server's words; never quotes the password.
CliStatus CheckPassword(const crypto::SecureBuffer& password) {
  if (password.empty()) {
    return UsageError(
        "no password given: type it at the prompt, or pipe it as the first line of stdin");
  }
  if (password.size() < kMinPasswordBytes) {
    return UsageError("the password is too short: a password is 12 to 1024 bytes");
  }
  if (password.size() > kMaxPasswordBytes) {
    return UsageError("the password is too long: a password is 12 to 1024 bytes");
  }
  if (password.view().find('\0') != std::string_view::npos) {
    return UsageError("the password must not contain a NUL byte");
  }
  if (!IsValidUtf8(password.view())) return UsageError("the password is not valid UTF-8");
  return {};
}

// The first line of stdin without its line ending ("\n" or "\r\n"). Reads at most one byte
// past the longest password, so a huge input is refused without being held.
CliResult<crypto::SecureBuffer> ReadPasswordLine(std::istream& in) {
  crypto::SecureBuffer line;
  char c = 0;
  while (line.size() <= kMaxPasswordBytes && in.get(c)) {
    if (c == '\n') break;
    line.Append(std::string_view(&c, 1));
  }
  c = 0;
  if (in.bad()) return CommandError("cannot read the password from stdin");
  if (!line.empty() && line.view().back() == '\r') line.Resize(line.size() - 1);
  return line;
}

// The new password: asked twice on a terminal, else the first line of stdin; checked.
CliResult<crypto::SecureBuffer> ReadNewPassword(Session& session) {
  CliIo& io = session.io();
  if (io.stdin_is_terminal && io.read_hidden_line) {
    std::optional<std::string> first = io.read_hidden_line("Password: ");
    if (!first) return UsageError("no password given");
    crypto::SecureBuffer password = TakeIntoSecureBuffer(*first);
    BIFROST_CLI_RETURN_IF_ERROR(CheckPassword(password));
    std::optional<std::string> second = io.read_hidden_line("Repeat password: ");
    if (!second) return UsageError("no password given");
    const crypto::SecureBuffer repeated = TakeIntoSecureBuffer(*second);
    if (!password.Equals(repeated.view())) {
      return UsageError("the two passwords differ; nothing was changed");
    }
    return password;
  }
  if (io.in == nullptr) return UsageError("no password given and no stdin to read it from");
  BIFROST_CLI_ASSIGN(crypto::SecureBuffer password, ReadPasswordLine(*io.in));
  BIFROST_CLI_RETURN_IF_ERROR(CheckPassword(password));
  return password;
}

// `text` as a JSON string literal (quotes included), appended to `out`. `text` is valid
// UTF-8 (CheckPassword); only '"', '\\' and control characters need escaping.
void AppendJsonString(crypto::SecureBuffer& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.Append("\"");
  for (const char c : text) {
    switch (c) {
      case '"':
        out.Append("\\\"");
        break;
      case '\\':
        out.Append("\\\\");
        break;
      case '\n':
        out.Append("\\n");
        break;
      case '\r':
        out.Append("\\r");
        break;
      case '\t':
        out.Append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          const auto byte = static_cast<unsigned char>(c);
          const char escape[] = {'\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 0xf]};
          out.Append(std::string_view(escape, sizeof(escape)));
        } else {
          out.Append(std::string_view(&c, 1));
        }
    }
  }
  out.Append("\"");
}

// The JSON object `fields` (no secret in it) with a "password" member added, built in a
// wiped buffer: the password never passes through an unwiped string of this process.
crypto::SecureBuffer BodyWithPassword(const json& fields, const crypto::SecureBuffer& password) {
  crypto::SecureBuffer body;
  body.Append("{\"password\":");
  AppendJsonString(body, password.view());
  const std::string rest = fields.dump();  // "{}" or "{...}"
  if (rest.size() > 2) {
    body.Append(",");
    body.Append(std::string_view(rest).substr(1));
  } else {
    body.Append("}");
  }
  return body;
}

CliResult<json> ParseAnswer(const std::string& text, std::string_view what) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return CommandError("the server's answer to " + std::string(what) +
                        " is not a user this command can read");
  }
  return parsed;
}

// The names of the organizations the caller can see, by id; empty when they cannot be
// listed (the table then shows ids).
std::map<std::string, std::string> OrgNames(Api& api) {
  std::map<std::string, std::string> names;
  auto orgs = api.Get("/api/v1/orgs");
  if (!orgs || !orgs->is_array()) return names;
  for (const auto& org : *orgs) {
    const std::string id = TableField(org, "id");
    const std::string name = TableField(org, "name");
    if (id != "-" && name != "-") names[id] = name;
  }
  return names;
}

// A user's organization for people: its name when known, else its id; "-" for none.
std::string OrgLabel(const json& user, const std::map<std::string, std::string>& names) {
  const std::string id = TableField(user, "org_id");
  if (id == "-") return id;
  const auto it = names.find(id);
  return it == names.end() ? id : it->second;
}

// "admin of acme", or "platform-admin".
std::string RoleLabel(Api& api, const json& user) {
  std::string label = TableField(user, "role");
  const std::string org_id = TableField(user, "org_id");
  if (org_id == "-") return label;
  std::string org = org_id;
  if (auto found = api.Get("/api/v1/orgs/" + client::UrlEncode(org_id))) {
    const std::string name = TableField(*found, "name");
    if (name != "-") org = name;
  }
  return label + " of " + PrintableCell(org);
}

CliStatus UserCreate(Session& session, const UserCreateArgs& args) {
  // Flags first: nothing is read or sent when the command line is wrong.
  if (args.email.empty()) return UsageError("--email must not be empty");
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.email, "--email"));
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(args.org, "--org"));
  const bool platform = args.role == "platform-admin";
  if (platform && !args.org.empty()) {
    return UsageError("a platform-admin user belongs to no organization: leave out --org");
  }
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(const crypto::SecureBuffer password, ReadNewPassword(session));

  json fields = {{"email", args.email}, {"role", args.role}};
  if (!platform) {
    // An org role belongs to an organization: --org, else the caller's own.
    BIFROST_CLI_ASSIGN(std::string org_id, OrgIdForCommand(*api, args.org, "--org"));
    fields["org_id"] = std::move(org_id);
  }
  std::string answer;
  {
    const crypto::SecureBuffer body = BodyWithPassword(fields, password);
    BIFROST_CLI_ASSIGN(answer, api->CallText("POST", "/api/v1/users", body.view()));
  }
  BIFROST_CLI_ASSIGN(const json created, ParseAnswer(answer, "POST /api/v1/users"));
  if (args.format == Format::kJson) {
    PrintJsonDocument(session, created);
  } else {
    session.out() << "created user " << PrintableCell(TableField(created, "email")) << " ("
                  << PrintableCell(TableField(created, "id")) << "): " << RoleLabel(*api, created)
                  << "\n";
  }
  return {};
}

CliStatus UserList(Session& session, const std::string& org, Format format) {
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(org, "--org"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  std::string target = "/api/v1/users";
  if (!org.empty()) {
    BIFROST_CLI_ASSIGN(const std::string org_id, OrgIdForCommand(*api, org, "--org"));
    target += "?org_id=" + client::UrlEncode(org_id);
  }
  BIFROST_CLI_ASSIGN(const json users, api->Get(target));
  if (format == Format::kJson) {
    PrintJsonDocument(session, users);
    return {};
  }
  std::vector<TableRow> rows;
  if (users.is_array() && !users.empty()) {
    const std::map<std::string, std::string> names = OrgNames(*api);
    for (const auto& user : users) {
      const auto disabled = user.find("disabled");
      const bool is_disabled = user.is_object() && disabled != user.end() &&
                               disabled->is_boolean() && disabled->get<bool>();
      rows.push_back({TableField(user, "email"), TableField(user, "role"), OrgLabel(user, names),
                      is_disabled ? "disabled" : "active", TableField(user, "last_login_at"),
                      TableField(user, "created_at")});
    }
  }
  session.out() << RenderTable({"EMAIL", "ROLE", "ORG", "STATE", "LAST LOGIN", "CREATED"}, rows,
                               session.UseAnsi());
  return {};
}

CliStatus UserDisable(Session& session, const std::string& user, Format format) {
  if (user.empty()) return UsageError("USER must not be empty");
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(user, "USER"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(const json disabled,
                     api->Call("POST", UserPath(user) + "/disable", json::object()));
  if (format == Format::kJson) {
    PrintJsonDocument(session, disabled);
  } else {
    session.out() << "disabled user " << PrintableCell(TableField(disabled, "email")) << " ("
                  << PrintableCell(TableField(disabled, "id"))
                  << "): it can no longer sign in, and its sessions have ended\n";
  }
  return {};
}

CliStatus UserPasswd(Session& session, const std::string& user, Format format) {
  if (user.empty()) return UsageError("USER must not be empty");
  BIFROST_CLI_RETURN_IF_ERROR(RequireUtf8(user, "USER"));
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(const crypto::SecureBuffer password, ReadNewPassword(session));
  {
    const crypto::SecureBuffer body = BodyWithPassword(json::object(), password);
    BIFROST_CLI_RETURN_IF_ERROR(api->CallText("PUT", UserPath(user) + "/password", body.view()));
  }
  if (format == Format::kJson) {
    PrintJsonDocument(session, json{{"user", user}, {"password_changed", true}});
  } else {
    session.out() << "changed the password of user " << PrintableCell(user)
                  << "; its sessions have ended\n";
  }
  return {};
}

}  // namespace

void AddUserCommands(CLI::App& app, Session& session, std::function<CliStatus()>& action) {
  auto* user =
      app.add_subcommand("user", "Users who sign in to the web UI: create, list, disable, passwd");
  user->require_subcommand(1);
  user->footer(
      "Users have the roles and the organization isolation of tokens; they sign in with their\n"
      "email and password (docs/web-ui.md). Programs keep using tokens.");

  auto create_args = std::make_shared<UserCreateArgs>();
  auto* create = user->add_subcommand("create", "Create a user; its password is prompted for");
  create->add_option("--email", create_args->email, "The user's email, its sign-in name")
      ->required()
      ->option_text("EMAIL");
  create->add_option("--org", create_args->org,
                     "Organization (name or id) of an admin, member or reader (default: the "
                     "token's own)");
  create->add_option("--role", create_args->role, "The user's role")
      ->required()
      ->check(CLI::IsMember({"platform-admin", "admin", "member", "reader"}))
      ->option_text("platform-admin|admin|member|reader");
  AddFormat(create, create_args->format);
  create->footer(
      std::string(kPasswordHelp) +
      "A platform-admin user has no organization; an org role goes to --org, or to the\n"
      "caller's own organization (a platform admin must say --org). An org admin creates\n"
      "users of its own organization only.\n"
      "Examples:\n"
      "  bifrost user create --email ops@example.com --role platform-admin   # prompted\n"
      "  bifrost user create --email ana@acme.example --org acme --role admin < password.txt\n"
      "  printf '%s\\n' \"$PW\" | bifrost user create --email ci@acme.example --org acme "
      "--role reader");
  create->callback([&action, &session, create_args] {
    action = [&session, create_args] { return UserCreate(session, *create_args); };
  });

  auto list_org = std::make_shared<std::string>();
  auto list_format = std::make_shared<Format>(Format::kTable);
  auto* list = user->add_subcommand("list", "List users (an org admin sees its organization's)");
  list->add_option("--org", *list_org, "Only this organization's users (name or id)");
  AddFormat(list, *list_format);
  list->footer(
      "Columns EMAIL ROLE ORG STATE LAST LOGIN CREATED; ORG is the organization's name (its id\n"
      "when it cannot be read, - for a platform admin), STATE active or disabled.\n"
      "--format json prints the users as the server sent them.\n"
      "Examples:\n"
      "  bifrost user list\n"
      "  bifrost user list --org acme --format json");
  list->callback([&action, &session, list_org, list_format] {
    action = [&session, list_org, list_format] {
      return UserList(session, *list_org, *list_format);
    };
  });

  auto target = std::make_shared<std::string>();
  auto format = std::make_shared<Format>(Format::kTable);
  auto* disable = user->add_subcommand(
      "disable", "Disable a user: it cannot sign in and its sessions end at once");
  disable->add_option("USER", *target, "The user's email (or id)")->required();
  AddFormat(disable, *format);
  disable->footer("Example: bifrost user disable ana@acme.example");
  disable->callback([&action, &session, target, format] {
    action = [&session, target, format] { return UserDisable(session, *target, *format); };
  });

  auto* passwd = user->add_subcommand("passwd", "Set a user's password; its sessions end at once");
  passwd->add_option("USER", *target, "The user's email (or id)")->required();
  AddFormat(passwd, *format);
  passwd->footer(std::string(kPasswordHelp) +
                 "Examples:\n"
                 "  bifrost user passwd ana@acme.example                 # prompted twice\n"
                 "  bifrost user passwd ana@acme.example < new-password.txt");
  passwd->callback([&action, &session, target, format] {
    action = [&session, target, format] { return UserPasswd(session, *target, *format); };
  });
}

}  // namespace bifrost::cli
