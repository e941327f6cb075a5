#include "cli/cli.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>

#include "cli/cli_error.h"
#include "cli/commands.h"
#include "cli/database_flags.h"
#include "cli/duration.h"
#include "cli/flags.h"
#include "cli/local_commands.h"
#include "cli/migrate_command.h"
#include "cli/remote_commands.h"
#include "cli/table.h"
#include "cli/terminal.h"
#include "server/server_app.h"
#include "store/open/open_store.h"

#ifndef BIFROST_VERSION
#define BIFROST_VERSION "0.0.0"
#endif

namespace bifrost::cli {
namespace {

// A duration flag ("30m", "12h", "2s") of at most `max_seconds`.
CLI::Validator DurationValidator(std::int64_t max_seconds) {
  return CLI::Validator(
      [max_seconds](std::string& text) -> std::string {
        const auto seconds = ParseDurationSeconds(text);
        if (!seconds) return "not a duration such as 90s, 30m, 12h or 7d";
        if (*seconds > max_seconds) {
          return "longer than the limit of " + std::to_string(max_seconds) + " s";
        }
        return "";
      },
      "DURATION");
}

constexpr const char* kDescription =
    "Bifrost: configuration and secrets per organization.\n"
    "One binary: `bifrost serve` runs the server, the other commands talk to it over its\n"
    "REST API.";

constexpr const char* kFooter = R"(Examples:
  bifrost init --data /var/lib/bifrost          # create the database, print an admin token
  bifrost serve --data /var/lib/bifrost --tls-cert cert.pem --tls-key key.pem
  bifrost serve --dev                           # local development server

  # Several servers on one PostgreSQL database (docs/deployment.md):
  export BIFROST_DATABASE_URL='postgresql://bifrost@db.internal/bifrost?sslmode=verify-full'
  bifrost init                                  # once, on any host
  bifrost serve --listen 0.0.0.0:8420 --tls-cert cert.pem --tls-key key.pem   # every node

  export BIFROST_ADDR=https://bifrost.internal:8420 BIFROST_TOKEN=bft_...
  bifrost org create acme
  bifrost config set retries 5 --org acme       # type inferred: int
  bifrost config set api_key --secret --org acme < api_key.txt
  bifrost config get api_key --org acme
  bifrost config list --org acme --format json
  bifrost config set region eu-west --global
  bifrost token create --role member --org acme --name ci --ttl 30d
  bifrost audit list --org acme --since 24h
  bifrost user create --email ana@acme.example --org acme --role admin < password.txt

  # Local commands, on the server's host (need BIFROST_SECRET_KEY like serve; --database URL
  # instead of --data with PostgreSQL):
  bifrost keys status --data /var/lib/bifrost   # master keys in use, unfinished rotations
  bifrost keys rotate --data /var/lib/bifrost   # after a new master key (docs/keys.md)
  bifrost import bifrost --data /var/lib/bifrost --organizations orgs.csv \
      --configs configs.csv --source-key-file old.key

Environment (client commands):
  BIFROST_ADDR    server address, http(s)://HOST[:PORT] (default http://127.0.0.1:8420)
  BIFROST_TOKEN   API token (required; never printed)
  BIFROST_CACERT  PEM file of CA certificates to trust for https (default: the system's)

Exit codes: 0 success, 1 error, 2 usage error, 3 not found, 4 audit log not intact.
Reference: docs/cli.md)";

constexpr const char* kScopeHelp =
    "With neither --org nor --global, an organization's token acts on its own organization; "
    "a platform admin must say which.";

void AddScope(CLI::App* command, ScopeFlags& scope) {
  auto* org = command->add_option("--org", scope.org,
                                  "Organization, by name or id (default: the token's own)");
  auto* global = command->add_flag("--global", scope.global, "The global scope");
  org->excludes(global);
  global->excludes(org);
}

// "bifrost config set" for the deepest command that was recognised.
std::string CommandPath(const CLI::App& app) {
  std::string path = app.get_name();
  const CLI::App* current = &app;
  while (true) {
    const auto selected = current->get_subcommands();
    if (selected.empty()) break;
    current = selected.front();
    path += " " + current->get_name();
  }
  return path;
}

// CLI11 reports a mistyped command as "A subcommand is required"; this names it instead.
// Only the top level and the command groups are walked: they take no option with a value.
std::optional<std::string> UnknownCommand(const CLI::App& app,
                                          const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  std::string path = app.get_name();
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.starts_with("-")) continue;
    const auto match =
        current->get_subcommands([&](const CLI::App* sub) { return sub->get_name() == arg; });
    if (match.empty()) {
      return "unknown command '" + PrintableCell(arg, 64) + "' (see '" + path + " --help')";
    }
    current = match.front();
    path += " " + current->get_name();
    if (current->get_subcommands([](const CLI::App*) { return true; }).empty()) break;
  }
  return std::nullopt;
}

void PrintError(CliIo& io, const std::string& message) {
  *io.err << "bifrost: " << message << "\n" << std::flush;
}

// RunCli without the exception guard.
int RunCliUnguarded(const std::vector<std::string>& args, CliIo& io) {
  CLI::App app{kDescription, "bifrost"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", "bifrost " BIFROST_VERSION);
  app.set_help_all_flag("--help-all", "Print help for every command");

  std::function<CliStatus()> action;
  Session session(io);

  // ---- serve / init ----
  server::ServeOptions serve_options;
  std::string session_idle_text = "30m";
  std::string session_lifetime_text = "12h";
  auto* serve = app.add_subcommand("serve", "Run the server");
  serve->footer(
      "Runs until SIGTERM or SIGINT and prints \"listening on http(s)://HOST:PORT\" once bound.\n"
      "Needs BIFROST_SECRET_KEY (or BIFROST_SECRET_KEY_FILE) unless --dev. During a master-key\n"
      "rotation BIFROST_SECRET_KEY_PREVIOUS (or BIFROST_SECRET_KEY_PREVIOUS_FILE) lists the\n"
      "older keys, one per line (docs/keys.md). Every flag but --dev may also come from its\n"
      "environment variable (BIFROST_DATA, BIFROST_LISTEN, ...).\n"
      "The database is a data directory (--data, SQLite) or a PostgreSQL database (--database):\n"
      "exactly one. Any number of servers may serve one PostgreSQL database; each runs the\n"
      "workflow executions it was asked for. --dev takes only a data directory.\n"
      "Plain HTTP is served only on a loopback address unless --insecure-no-tls.\n"
      "Examples:\n"
      "  bifrost serve --data /var/lib/bifrost --listen 0.0.0.0:8420 \\\n"
      "      --tls-cert /etc/bifrost/cert.pem --tls-key /etc/bifrost/key.pem\n"
      "  BIFROST_DATABASE_URL='postgresql://bifrost@db/bifrost?sslmode=verify-full' \\\n"
      "      bifrost serve --listen 0.0.0.0:8420 --tls-cert cert.pem --tls-key key.pem\n"
      "  bifrost serve --dev");
  AddDatabaseFlags(serve, serve_options.data_dir, serve_options.database_url);
  serve
      ->add_option("--database-pool", serve_options.database_pool,
                   "PostgreSQL connections this server opens at most")
      ->envname(store::kDatabasePoolEnv)
      ->check(CLI::Range(1, store::kMaxPoolSize))
      ->option_text("N (1-1000, default 8; env BIFROST_DATABASE_POOL)");
  serve->add_option("--listen", serve_options.listen, "Address to listen on; port 0 = any")
      ->envname("BIFROST_LISTEN")
      ->option_text("HOST:PORT (default 127.0.0.1:8420; env BIFROST_LISTEN)");
  auto* tls_cert =
      serve->add_option("--tls-cert", serve_options.tls_cert, "TLS certificate chain (PEM)")
          ->envname("BIFROST_TLS_CERT")
          ->option_text("FILE (env BIFROST_TLS_CERT)");
  auto* tls_key = serve->add_option("--tls-key", serve_options.tls_key, "TLS private key (PEM)")
                      ->envname("BIFROST_TLS_KEY")
                      ->option_text("FILE (env BIFROST_TLS_KEY)");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  auto* insecure = serve
                       ->add_flag("--insecure-no-tls", serve_options.insecure_no_tls,
                                  "Serve plain HTTP on a non-loopback address")
                       ->envname("BIFROST_INSECURE_NO_TLS");
  insecure->excludes(tls_cert);
  insecure->excludes(tls_key);
  serve->add_flag("--dev", serve_options.dev,
                  "Development mode: a throwaway key and data in ./.bifrost-dev unless --data; "
                  "never for real secrets");
  serve->add_option("--threads", serve_options.threads, "Worker threads")
      ->envname("BIFROST_THREADS")
      ->check(CLI::Range(1, 1024))
      ->option_text("N (default 4; env BIFROST_THREADS)");
  serve
      ->add_option("--max-body-bytes", serve_options.max_body_bytes,
                   "Largest request body accepted (413 above it)")
      ->envname("BIFROST_MAX_BODY_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->option_text("N (default 1048576; env BIFROST_MAX_BODY_BYTES)");
  serve
      ->add_option("--max-connections", serve_options.max_connections,
                   "Connections open at once; more are closed at once")
      ->envname("BIFROST_MAX_CONNECTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->option_text("N (default 1024; env BIFROST_MAX_CONNECTIONS)");
  serve
      ->add_option("--audit-file", serve_options.audit_file,
                   "Also append every audit record to this JSON-lines file")
      ->envname("BIFROST_AUDIT_FILE")
      ->option_text("FILE (env BIFROST_AUDIT_FILE)");
  serve
      ->add_option("--audit-retention", serve_options.audit_retention_days,
                   "Prune audit records older than this many days; 0 keeps all")
      ->envname("BIFROST_AUDIT_RETENTION")
      ->check(CLI::Range(0, 1'000'000))
      ->option_text("DAYS (default 0; env BIFROST_AUDIT_RETENTION)");
  serve
      ->add_option("--workflows", serve_options.workflows_dir,
                   "Load workflows from this directory (Python files and executables)")
      ->envname("BIFROST_WORKFLOWS")
      ->option_text("DIR (env BIFROST_WORKFLOWS; default: no workflows)");
  serve->add_option("--python", serve_options.python, "Interpreter for Python workflows")
      ->envname("BIFROST_PYTHON")
      ->option_text("PATH (default /usr/bin/python3, else python3 on PATH; env BIFROST_PYTHON)");
  serve
      ->add_option("--workflow-user", serve_options.workflow_user,
                   "When the server runs as root, run workflows as this user (\"\" = root)")
      ->envname("BIFROST_WORKFLOW_USER")
      ->option_text("USER (default nobody; env BIFROST_WORKFLOW_USER)");
  serve
      ->add_option("--workflow-concurrency", serve_options.workflow_concurrency,
                   "Executions running at once; more wait in a queue")
      ->envname("BIFROST_WORKFLOW_CONCURRENCY")
      ->check(CLI::Range(1, 256))
      ->option_text("N (default 4; env BIFROST_WORKFLOW_CONCURRENCY)");
  serve
      ->add_option("--workflow-queue", serve_options.workflow_queue,
                   "Executions waiting at most; more are refused (503)")
      ->envname("BIFROST_WORKFLOW_QUEUE")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->option_text("N (default 1000; env BIFROST_WORKFLOW_QUEUE)");
  serve
      ->add_option("--workflow-timeout", serve_options.workflow_timeout_seconds,
                   "Time limit of an execution unless its workflow sets one")
      ->envname("BIFROST_WORKFLOW_TIMEOUT")
      ->check(CLI::Range(1, 3600))
      ->option_text("SECONDS (default 60; env BIFROST_WORKFLOW_TIMEOUT)");
  serve
      ->add_option("--workflow-max-output", serve_options.workflow_max_output,
                   "Bytes of logs kept per execution (the rest is cut), and the largest result")
      ->envname("BIFROST_WORKFLOW_MAX_OUTPUT")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20))
      ->option_text("BYTES (default 1048576; env BIFROST_WORKFLOW_MAX_OUTPUT)");
  serve
      ->add_option("--workflow-api-url", serve_options.workflow_api_url,
                   "The address executions call the server at (BIFROST_ADDR)")
      ->envname("BIFROST_WORKFLOW_API_URL")
      ->option_text("URL (default: the listening address; env BIFROST_WORKFLOW_API_URL)");
  serve->add_flag("--workflow-allow-unconfined", serve_options.workflow_allow_unconfined,
                  "Run workflows even with no Landlock and no other user to run them as");
  serve
      ->add_option("--session-idle", session_idle_text,
                   "A web UI session ends after this long without a request")
      ->envname("BIFROST_SESSION_IDLE")
      ->check(DurationValidator(60 * 60 * 24))
      ->option_text("DURATION (default 30m; env BIFROST_SESSION_IDLE)");
  serve
      ->add_option("--session-lifetime", session_lifetime_text,
                   "A web UI session ends this long after sign-in, however active")
      ->envname("BIFROST_SESSION_LIFETIME")
      ->check(DurationValidator(60 * 60 * 24 * 30))
      ->option_text("DURATION (default 12h; env BIFROST_SESSION_LIFETIME)");
  serve
      ->add_option("--trusted-proxy", serve_options.trusted_proxies,
                   "A reverse proxy in front of the server: its X-Forwarded-For names the "
                   "client the sign-in limit per address counts (repeat for several)")
      ->envname("BIFROST_TRUSTED_PROXIES")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const bool v4 = text.find_first_not_of("0123456789.") == std::string::npos &&
                            std::count(text.begin(), text.end(), '.') == 3;
            const bool v6 = text.find(':') != std::string::npos &&
                            text.find_first_not_of("0123456789abcdefABCDEF:.") == std::string::npos;
            if (!text.empty() && text.size() <= 45 && (v4 || v6)) return "";
            return "not an IPv4 or IPv6 address";
          },
          "ADDRESS"))
      ->option_text("ADDRESS (repeatable; env BIFROST_TRUSTED_PROXIES, comma-separated)");
  serve->callback([&] {
    action = [&]() -> CliStatus {
      ForgetDatabaseUrlVariable();
      if (serve_options.dev && !serve_options.database_url.empty()) {
        return UsageError(
            "--dev runs on the embedded store in a data directory; it cannot be combined with "
            "--database");
      }
      BIFROST_CLI_RETURN_IF_ERROR(CheckDatabaseFlags("serve", serve_options.data_dir,
                                                     serve_options.database_url,
                                                     /*allow_neither=*/serve_options.dev));
      // Both were checked by their validators.
      serve_options.session_idle_seconds = ParseDurationSeconds(session_idle_text).value_or(1800);
      serve_options.session_lifetime_seconds =
          ParseDurationSeconds(session_lifetime_text).value_or(43200);
      if (serve_options.session_idle_seconds > serve_options.session_lifetime_seconds) {
        return std::unexpected(CliError{2, "--session-idle is longer than --session-lifetime"});
      }
      const int code = server::RunServe(serve_options);
      if (code != 0) return std::unexpected(CliError{code, ""});
      return {};
    };
  });

  server::InitOptions init_options;
  Format init_format = Format::kTable;
  auto* init = app.add_subcommand("init", "Create a database and the first admin token");
  init->footer(
      "Creates the database in DIR (or the schema in the PostgreSQL database of --database)\n"
      "and prints a platform-admin token, once: store it. A database that is already\n"
      "initialized is refused without touching it. Run it once for a PostgreSQL database,\n"
      "then start any number of servers on it.\n"
      "--format json prints {token, token_id, data_dir} (with --database: database, the URL\n"
      "without its password, in place of data_dir).\n"
      "Examples:\n"
      "  bifrost init --data /var/lib/bifrost --format json\n"
      "  BIFROST_DATABASE_URL='postgresql://bifrost@db/bifrost' bifrost init");
  AddDatabaseFlags(init, init_options.data_dir, init_options.database_url);
  AddFormat(init, init_format);
  init->callback([&] {
    action = [&]() -> CliStatus {
      ForgetDatabaseUrlVariable();
      BIFROST_CLI_RETURN_IF_ERROR(
          CheckDatabaseFlags("init", init_options.data_dir, init_options.database_url));
      init_options.json = init_format == Format::kJson;
      const int code = server::RunInit(init_options);
      if (code != 0) return std::unexpected(CliError{code, ""});
      return {};
    };
  });

  // ---- org ----
  auto* org = app.add_subcommand("org", "Organizations: create, list, delete");
  org->require_subcommand(1);
  std::string org_name;
  Format org_format = Format::kTable;

  auto* org_create = org->add_subcommand("create", "Create an organization (platform admin)");
  org_create->add_option("NAME", org_name, "Its unique name")->required();
  AddFormat(org_create, org_format);
  org_create->callback([&] { action = [&] { return OrgCreate(session, org_name, org_format); }; });
  org_create->footer("Example: bifrost org create acme --format json");

  auto* org_list = org->add_subcommand("list", "List organizations (an org token sees its own)");
  AddFormat(org_list, org_format);
  org_list->callback([&] { action = [&] { return OrgList(session, org_format); }; });

  auto* org_delete =
      org->add_subcommand("delete", "Delete an organization with its config and tokens");
  org_delete->add_option("ORG", org_name, "Name or id")->required();
  AddFormat(org_delete, org_format);
  org_delete->callback([&] { action = [&] { return OrgDelete(session, org_name, org_format); }; });

  // ---- config ----
  auto* config = app.add_subcommand("config", "Config entries and secrets: set, get, list, delete");
  config->require_subcommand(1);
  ConfigSetArgs set_args;
  std::string set_value;
  std::string set_type;
  std::string set_description;

  auto* config_set = config->add_subcommand("set", "Create or replace an entry");
  config_set->add_option("KEY", set_args.key, "Key: letters, digits, _ (1-255)")->required();
  auto* value_option =
      config_set->add_option("VALUE", set_value, "The value; '-' or absent: read stdin");
  auto* type_option = config_set->add_option("--type", set_type, "Value type")
                          ->option_text("string|int|bool|json|secret");
  config_set->add_flag("--secret", set_args.secret,
                       "Store as a secret (encrypted, masked everywhere but get)");
  auto* description_option =
      config_set->add_option("--description", set_description, "What the entry is for");
  AddScope(config_set, set_args.scope);
  AddFormat(config_set, set_args.format);
  config_set->footer(
      "Without VALUE, or with '-', the value is read from stdin (one trailing newline\n"
      "removed); on a terminal it is prompted for without echo. Without --type the type is\n"
      "inferred: a JSON object or array is json, true/false is bool, a 64-bit integer is int,\n"
      "anything else is string. A secret is never inferred: say --secret.\n" +
      std::string(kScopeHelp) +
      "\nExamples:\n"
      "  bifrost config set retries 5 --org acme\n"
      "  bifrost config set features '{\"beta\": true}' --global\n"
      "  bifrost config set api_key --secret --org acme < api_key.txt\n"
      "  bifrost config set zip 01234 --type string --org acme");
  config_set->callback([&] {
    action = [&] {
      if (value_option->count() > 0) set_args.value = set_value;
      if (type_option->count() > 0) set_args.type = set_type;
      if (description_option->count() > 0) set_args.description = set_description;
      return ConfigSet(session, set_args);
    };
  });

  std::string config_key;
  ScopeFlags config_scope;
  Format config_format = Format::kTable;
  std::string default_value;
  auto* config_get = config->add_subcommand("get", "Print an entry's value (secrets too)");
  config_get->add_option("KEY", config_key, "Key")->required();
  auto* default_option = config_get->add_option("--default", default_value,
                                                "Print this (exit 0) when the key does not exist");
  AddScope(config_get, config_scope);
  AddFormat(config_get, config_format);
  config_get->footer(
      "Prints the value alone: strings and secrets as they are, int and bool as text, json\n"
      "compact. An organization falls back to the global entry of the same key. Exit 3 when\n"
      "the key does not exist, unless --default.\n" +
      std::string(kScopeHelp) + "\nExample: DB_URL=$(bifrost config get db_url --org acme)");
  config_get->callback([&] {
    action = [&] {
      std::optional<std::string> fallback;
      if (default_option->count() > 0) fallback = default_value;
      return ConfigGet(session, config_key, config_scope, fallback, config_format);
    };
  });

  auto* config_list = config->add_subcommand("list", "List entries; secrets masked");
  AddScope(config_list, config_scope);
  AddFormat(config_list, config_format);
  config_list->footer(
      "An organization lists its own entries and the global ones it inherits (SCOPE says\n"
      "which). Secret values show as [SECRET].\n" +
      std::string(kScopeHelp));
  config_list->callback(
      [&] { action = [&] { return ConfigList(session, config_scope, config_format); }; });

  auto* config_delete = config->add_subcommand("delete", "Delete an entry");
  config_delete->add_option("KEY", config_key, "Key")->required();
  AddScope(config_delete, config_scope);
  AddFormat(config_delete, config_format);
  config_delete->footer(
      "Deletes the organization's own entry; a global entry of the same key "
      "stays.\n" +
      std::string(kScopeHelp));
  config_delete->callback([&] {
    action = [&] { return ConfigDelete(session, config_key, config_scope, config_format); };
  });

  // ---- token ----
  auto* token = app.add_subcommand("token", "API tokens: create, list, revoke");
  token->require_subcommand(1);
  TokenCreateArgs token_args;
  std::string token_name;
  std::string token_ttl;
  auto* token_create = token->add_subcommand("create", "Create a token (shown once)");
  token_create->add_option("--role", token_args.role, "Role of the new token")
      ->required()
      ->check(CLI::IsMember({"platform-admin", "admin", "member", "reader"}))
      ->option_text("platform-admin|admin|member|reader");
  token_create->add_option("--org", token_args.org,
                           "Organization (name or id) of an admin, member or reader token");
  auto* name_option = token_create->add_option("--name", token_name, "A label for the token");
  auto* ttl_option =
      token_create->add_option("--ttl", token_ttl, "Lifetime, e.g. 90s, 30m, 24h, 7d")
          ->option_text("DURATION");
  AddFormat(token_create, token_args.format);
  token_create->footer(
      "The token is printed once and stored only as a hash. An org admin creates tokens of\n"
      "its own organization; without --org an org role goes to the caller's organization.\n"
      "Examples:\n"
      "  bifrost token create --role member --org acme --name ci --ttl 30d\n"
      "  bifrost token create --role platform-admin --name ops --format json");
  token_create->callback([&] {
    action = [&] {
      if (name_option->count() > 0) token_args.name = token_name;
      if (ttl_option->count() > 0) token_args.ttl = token_ttl;
      return TokenCreate(session, token_args);
    };
  });

  std::string token_org;
  std::string token_id;
  Format token_format = Format::kTable;
  auto* token_list =
      token->add_subcommand("list", "List tokens, newest first; never their secret part");
  token_list->add_option("--org", token_org, "Only this organization's tokens (name or id)");
  AddFormat(token_list, token_format);
  token_list->callback(
      [&] { action = [&] { return TokenList(session, token_org, token_format); }; });

  auto* token_revoke = token->add_subcommand("revoke", "Revoke a token by its id");
  token_revoke->add_option("ID", token_id, "Token id (from token list)")->required();
  AddFormat(token_revoke, token_format);
  token_revoke->callback(
      [&] { action = [&] { return TokenRevoke(session, token_id, token_format); }; });

  // ---- audit ----
  auto* audit = app.add_subcommand("audit", "The audit log: list records, verify the chain");
  audit->require_subcommand(1);
  AuditListArgs audit_args;
  auto* audit_list =
      audit->add_subcommand("list", "List audit records, newest first (admins; paged)");
  audit_list->add_option("--org", audit_args.org, "Only this organization's records (name or id)");
  audit_list->add_option("--key", audit_args.key, "Only records about this config key");
  audit_list->add_option("--action", audit_args.action, "Only this action, e.g. config.reveal");
  audit_list->add_option("--actor", audit_args.actor, "Only this token (name or id)");
  audit_list->add_option("--outcome", audit_args.outcome, "Only this outcome")
      ->check(CLI::IsMember({"success", "denied", "error"}))
      ->option_text("success|denied|error");
  audit_list->add_option("--since", audit_args.since, "Records at or after TIME")
      ->option_text("TIME");
  audit_list->add_option("--until", audit_args.until, "Records before TIME")->option_text("TIME");
  audit_list->add_option("--limit", audit_args.limit, "Records to print")
      ->check(CLI::Range(1, 1000))
      ->option_text("N (1-1000, default 50)");
  AddFormat(audit_list, audit_args.format);
  audit_list->footer(
      "TIME is RFC 3339 (2026-12-01T09:30:00Z), a date (2026-12-01, midnight UTC) or how long\n"
      "ago (30m, 24h, 7d). A platform admin sees every record, an org admin its organization's.\n"
      "--format json prints the records as the server sent them (with seq, mac, prev_mac).\n"
      "Examples:\n"
      "  bifrost audit list --org acme --since 24h\n"
      "  bifrost audit list --action config.reveal --key api_key --since 2026-12-01\n"
      "  bifrost audit list --outcome denied --limit 200 --format json");
  audit_list->callback([&] { action = [&] { return AuditList(session, audit_args); }; });

  server::AuditVerifyOptions verify_options;
  Format verify_format = Format::kTable;
  auto* audit_verify = audit->add_subcommand(
      "verify", "Check the audit log's hash chain in the database (local, like init)");
  AddDatabaseFlags(audit_verify, verify_options.data_dir, verify_options.database_url);
  audit_verify
      ->add_option("--file", verify_options.audit_file,
                   "Also check this JSON-lines audit file (serve --audit-file)")
      ->option_text("PATH");
  AddFormat(audit_verify, verify_format);
  audit_verify->footer(
      "Reads the database directly, not through a server; needs BIFROST_SECRET_KEY (or\n"
      "BIFROST_SECRET_KEY_FILE). Records made under an older master key verify too: with it\n"
      "in BIFROST_SECRET_KEY_PREVIOUS, or after a rotation without it (its audit key is kept).\n"
      "Names the first record that was changed, removed or reordered.\n"
      "Exit codes: 0 the log is intact, 4 it is not, 1 it cannot be checked.\n"
      "Examples:\n"
      "  bifrost audit verify --data /var/lib/bifrost --file /var/log/bifrost/audit.jsonl\n"
      "  BIFROST_DATABASE_URL='postgresql://bifrost@db/bifrost' bifrost audit verify");
  audit_verify->callback([&] {
    action = [&]() -> CliStatus {
      ForgetDatabaseUrlVariable();
      BIFROST_CLI_RETURN_IF_ERROR(
          CheckDatabaseFlags("audit verify", verify_options.data_dir, verify_options.database_url));
      verify_options.json = verify_format == Format::kJson;
      const int code = server::RunAuditVerify(verify_options);
      if (code != 0) return std::unexpected(CliError{code, ""});
      return {};
    };
  });

  // ---- workflows, users; keys / import (local commands) ----
  AddWorkflowCommands(app, session, action);
  AddUserCommands(app, session, action);
  AddKeysCommands(app, action, io);
  AddImportCommands(app, action, io);
  AddMigrateCommand(app, action, io);

  // ---- whoami / version ----
  Format misc_format = Format::kTable;
  auto* whoami = app.add_subcommand("whoami", "Show the calling token: id, name, role, org");
  AddFormat(whoami, misc_format);
  whoami->callback([&] { action = [&] { return Whoami(session, misc_format); }; });

  auto* version = app.add_subcommand("version", "Print the version");
  AddFormat(version, misc_format);
  version->callback([&] {
    action = [&]() -> CliStatus {
      if (misc_format == Format::kJson) {
        *io.out << nlohmann::json{{"version", BIFROST_VERSION}}.dump(2) << "\n";
      } else {
        *io.out << "bifrost " << BIFROST_VERSION << "\n";
      }
      return {};
    };
  });

  std::vector<const char*> argv;
  argv.reserve(args.size());
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --help-all, --version
      return app.exit(e, *io.out, *io.err) == 0 ? kExitOk : kExitUsage;
    }
    if (auto unknown = UnknownCommand(app, args)) {
      PrintError(io, *unknown);
    } else {
      PrintError(io, std::string(e.what()) + " (see '" + CommandPath(app) + " --help')");
    }
    return kExitUsage;
  }
  if (!action) {
    PrintError(io, "no command given (see '" + CommandPath(app) + " --help')");
    return kExitUsage;
  }
  CliStatus status = action();
  io.out->flush();
  if (!status) {
    // An empty message means the command has already reported (serve, init).
    if (!status.error().message.empty()) PrintError(io, status.error().message);
    return status.error().exit_code;
  }
  return kExitOk;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, CliIo& io) {
  // No path may end in std::terminate (an abort, and a core file with whatever secret or
  // token the process holds). The exception's what() is not printed: library messages can
  // quote their input, such as a byte of a secret.
  try {
    return RunCliUnguarded(args, io);
  } catch (const std::bad_alloc&) {
    try {
      PrintError(io, "internal error: out of memory");
    } catch (...) {
    }
  } catch (...) {
    try {
      PrintError(io,
                 "internal error: an unexpected exception (its message is withheld: it may "
                 "quote a secret)");
    } catch (...) {
    }
  }
  return kExitError;
}

void DisableCoreDumps() {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
}

CliIo ProcessIo() {
  CliIo io;
  io.in = &std::cin;
  io.out = &std::cout;
  io.err = &std::cerr;
  io.stdin_is_terminal = IsTerminal(STDIN_FILENO);
  io.stdout_is_terminal = IsTerminal(STDOUT_FILENO);
  io.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  io.read_hidden_line = [](std::string_view prompt) { return ReadLineWithoutEcho(prompt); };
  return io;
}

int Main(int argc, char** argv) {
  DisableCoreDumps();  // before any token or secret is read
  std::vector<std::string> args(argv, argv + argc);
  if (!args.empty()) args[0] = "bifrost";
  // A database URL's password leaves the process's own argv (what `ps` shows) at once; the
  // copy in `args` is what the command uses.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if ((arg == "--database" || arg == "--to") && i + 1 < argc) {
      HideUrlPasswordInPlace(argv[i + 1]);
    } else if (arg.starts_with("--database=")) {
      HideUrlPasswordInPlace(argv[i] + std::strlen("--database="));
    } else if (arg.starts_with("--to=")) {
      HideUrlPasswordInPlace(argv[i] + std::strlen("--to="));
    }
  }
  CliIo io = ProcessIo();
  return RunCli(args, io);
}

void AddFormat(CLI::App* command, Format& format) {
  command->add_option("--format", format, "Output format")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, Format>{{"table", Format::kTable}, {"json", Format::kJson}}))
      ->option_text("table|json (default table)");
}

}  // namespace bifrost::cli
