// `bifrost workflow list|reload|run` and `bifrost execution list|get|logs|cancel`: the
// workflow API of a running server (docs/workflows.md).
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/remote_commands.h"
#include "cli/table.h"
#include "client/http_client.h"
#include "common/text.h"

namespace bifrost::cli {
namespace {

using nlohmann::json;

// Each wait for an execution asks the server to answer within this many seconds (it
// answers at once when the execution finishes); well inside the client's request timeout.
constexpr int kWaitSliceSeconds = 10;

bool Finished(const json& execution) {
  const std::string status = TableField(execution, "status");
  return status != "pending" && status != "running";
}

std::string ExecutionPath(const std::string& id) {
  return "/api/v1/executions/" + client::UrlEncode(id);
}

// The duration of a finished execution, "1.234 s" or "87 ms"; "-" otherwise.
std::string DurationText(const json& execution) {
  const auto it = execution.find("duration_ms");
  if (it == execution.end() || !it->is_number_integer()) return "-";
  const auto ms = it->get<std::int64_t>();
  if (ms < 1000) return std::to_string(ms) + " ms";
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f s", static_cast<double>(ms) / 1000.0);
  return text;
}

std::string CallerName(const json& execution) {
  const auto it = execution.find("caller");
  if (it == execution.end()) return "-";
  return TableField(*it, "name");
}

// Output of a workflow, for a terminal or a pipe: control characters other than newline and
// tab are shown escaped, so what a workflow printed cannot drive the reader's terminal.
std::string PrintableLogs(std::string_view logs) {
  std::string out;
  out.reserve(logs.size());
  std::size_t line_start = 0;
  while (line_start < logs.size()) {
    std::size_t end = logs.find('\n', line_start);
    const bool has_newline = end != std::string_view::npos;
    if (!has_newline) end = logs.size();
    std::string_view line = logs.substr(line_start, end - line_start);
    // PrintableCell escapes tabs too; keep them as they are.
    std::size_t piece_start = 0;
    while (true) {
      const std::size_t tab = line.find('\t', piece_start);
      out += PrintableCell(line.substr(
          piece_start, tab == std::string_view::npos ? std::string_view::npos : tab - piece_start));
      if (tab == std::string_view::npos) break;
      out += '\t';
      piece_start = tab + 1;
    }
    if (has_newline) out += '\n';
    line_start = end + 1;
  }
  return out;
}

void PrintExecution(Session& session, const json& execution) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"Execution", TableField(execution, "id")},
      {"Workflow", TableField(execution, "workflow")},
      {"Org", TableField(execution, "org_id")},
      {"Status", TableField(execution, "status")},
      {"Caller", CallerName(execution)},
      {"Created", TableField(execution, "created_at")},
      {"Started", TableField(execution, "started_at")},
      {"Finished", TableField(execution, "finished_at")},
      {"Duration", DurationText(execution)}};
  if (execution.contains("error") && !execution["error"].is_null()) {
    fields.emplace_back("Error", PrintableCell(TableField(execution, "error")));
  }
  if (execution.contains("result") && Finished(execution) &&
      TableField(execution, "status") == "success") {
    fields.emplace_back("Result",
                        execution["result"].dump(-1, ' ', false, json::error_handler_t::replace));
  }
  session.out() << RenderFields(fields, session.UseAnsi());
}

void PrintCatalog(Session& session, const json& catalog, Format format) {
  if (format == Format::kJson) {
    PrintJsonDocument(session, catalog);
    return;
  }
  std::vector<TableRow> rows;
  if (catalog.contains("workflows") && catalog["workflows"].is_array()) {
    for (const auto& def : catalog["workflows"]) {
      std::string timeout = TableField(def, "timeout_seconds");
      if (timeout == "-") timeout = "default";
      rows.push_back({TableField(def, "name"), TableField(def, "kind"), TableField(def, "file"),
                      timeout, PrintableCell(TableField(def, "description"), 60)});
    }
  }
  if (rows.empty()) {
    session.out() << "No workflows loaded.\n";
  } else {
    session.out() << RenderTable({"NAME", "KIND", "FILE", "TIMEOUT", "DESCRIPTION"}, rows,
                                 session.UseAnsi());
  }
  if (catalog.contains("errors") && catalog["errors"].is_array() && !catalog["errors"].empty()) {
    session.out() << "\nSkipped " << catalog["errors"].size() << " broken file(s):\n";
    for (const auto& error : catalog["errors"]) {
      session.out() << "  " << PrintableCell(TableField(error, "file")) << ": "
                    << PrintableCell(TableField(error, "error")) << "\n";
    }
  }
}

CliStatus WorkflowList(Session& session, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json catalog, api->Get("/api/v1/workflows"));
  PrintCatalog(session, catalog, format);
  return {};
}

CliStatus WorkflowReload(Session& session, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json catalog, api->Call("POST", "/api/v1/workflows/reload", json::object()));
  PrintCatalog(session, catalog, format);
  return {};
}

// Polls (each poll a long wait on the server) until the execution has finished.
CliResult<json> WaitForExecution(Api& api, const std::string& id, json execution) {
  while (!Finished(execution)) {
    const auto asked = std::chrono::steady_clock::now();
    BIFROST_CLI_ASSIGN(execution,
                       api.Get(ExecutionPath(id) + "?wait=" + std::to_string(kWaitSliceSeconds)));
    // A server that answers at once without a final state (its record of the execution
    // could not be updated) is not asked again in a tight loop.
    if (!Finished(execution) &&
        std::chrono::steady_clock::now() - asked < std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  return execution;
}

// The exit status of a finished execution: 0 for success; otherwise 1 with its error.
CliStatus ExecutionOutcome(const json& execution) {
  const std::string status = TableField(execution, "status");
  if (status == "success") return {};
  std::string message = "execution " + TableField(execution, "id") + " ";
  message += status == "timeout" ? "timed out" : status;
  const std::string error = TableField(execution, "error");
  if (error != "-") message += ": " + PrintableCell(error, 500);
  return CommandError(std::move(message));
}

CliStatus WorkflowRun(Session& session, const WorkflowRunArgs& args) {
  json parameters = json::object();
  if (args.params_json) {
    if (!IsValidUtf8(*args.params_json)) return UsageError("--params is not valid UTF-8");
    parameters = json::parse(*args.params_json, nullptr, /*allow_exceptions=*/false);
    if (!parameters.is_object()) return UsageError("--params must be a JSON object");
  }
  for (const std::string& pair : args.params) {
    const auto equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      return UsageError("--param takes NAME=VALUE, e.g. --param payload=hello");
    }
    if (!IsValidUtf8(pair)) return UsageError("a --param is not valid UTF-8");
    parameters[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(std::string org_id, OrgIdForCommand(*api, args.org, "--org"));
  BIFROST_CLI_ASSIGN(json execution,
                     api->Call("POST",
                               "/api/v1/orgs/" + client::UrlEncode(org_id) + "/workflows/" +
                                   client::UrlEncode(args.workflow) + "/executions",
                               json{{"parameters", std::move(parameters)}}));
  const std::string id = TableField(execution, "id");
  if (args.no_wait) {
    if (args.format == Format::kJson) {
      PrintJsonDocument(session, execution);
    } else {
      session.out() << id << "\n";
    }
    return {};
  }
  BIFROST_CLI_ASSIGN(execution, WaitForExecution(*api, id, std::move(execution)));
  if (args.format == Format::kJson) {
    PrintJsonDocument(session, execution);
  } else if (TableField(execution, "status") == "success") {
    // The result alone, so that `bifrost workflow run ... | jq` works.
    PrintJsonDocument(session, execution.value("result", json()));
  }
  return ExecutionOutcome(execution);
}

CliStatus ExecutionList(Session& session, const ExecutionListArgs& args) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  std::string query;
  const auto add = [&](std::string_view name, const std::string& value) {
    query += query.empty() ? "?" : "&";
    query += name;
    query += "=";
    query += client::UrlEncode(value);
  };
  if (!args.org.empty()) {
    BIFROST_CLI_ASSIGN(std::string org_id, OrgIdForCommand(*api, args.org, "--org"));
    add("org_id", org_id);
  }
  if (!args.workflow.empty()) add("workflow", args.workflow);
  if (!args.status.empty()) add("status", args.status);
  add("limit", std::to_string(args.limit));
  BIFROST_CLI_ASSIGN(json listed, api->Get("/api/v1/executions" + query));
  const json executions = listed.value("executions", json::array());
  if (args.format == Format::kJson) {
    PrintJsonDocument(session, executions);
    return {};
  }
  if (executions.empty()) {
    session.out() << "No executions.\n";
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& execution : executions) {
    rows.push_back({TableField(execution, "id"), TableField(execution, "workflow"),
                    TableField(execution, "org_id"), TableField(execution, "status"),
                    TableField(execution, "created_at"), DurationText(execution),
                    PrintableCell(CallerName(execution), 40)});
  }
  session.out() << RenderTable({"ID", "WORKFLOW", "ORG", "STATUS", "CREATED", "DURATION", "CALLER"},
                               rows, session.UseAnsi());
  return {};
}

CliStatus ExecutionGet(Session& session, const std::string& id, int wait, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  std::string target = ExecutionPath(id);
  if (wait > 0) target += "?wait=" + std::to_string(wait);
  BIFROST_CLI_ASSIGN(json execution, api->Get(target));
  if (format == Format::kJson) {
    PrintJsonDocument(session, execution);
  } else {
    PrintExecution(session, execution);
  }
  return {};
}

CliStatus ExecutionLogs(Session& session, const std::string& id, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json logs, api->Get(ExecutionPath(id) + "/logs"));
  if (format == Format::kJson) {
    PrintJsonDocument(session, logs);
    return {};
  }
  const auto text = logs.find("logs");
  if (text != logs.end() && text->is_string()) {
    session.out() << PrintableLogs(text->get_ref<const std::string&>());
  }
  if (logs.value("truncated", false)) {
    *session.io().err << "bifrost: the output went over the server's limit and was cut\n";
  }
  return {};
}

CliStatus ExecutionCancel(Session& session, const std::string& id, Format format) {
  BIFROST_CLI_ASSIGN(Api * api, session.api());
  BIFROST_CLI_ASSIGN(json execution,
                     api->Call("POST", ExecutionPath(id) + "/cancel", json::object()));
  if (format == Format::kJson) {
    PrintJsonDocument(session, execution);
  } else {
    session.out() << "Cancelling execution " << TableField(execution, "id") << " (now "
                  << TableField(execution, "status") << ").\n";
  }
  return {};
}

}  // namespace

void AddWorkflowCommands(CLI::App& app, Session& session, std::function<CliStatus()>& action) {
  auto* workflow =
      app.add_subcommand("workflow", "Workflows of the server: list, reload, run one for an org");
  workflow->require_subcommand(1);
  auto format = std::make_shared<Format>(Format::kTable);

  auto* list = workflow->add_subcommand("list", "List the loaded workflows and broken files");
  AddFormat(list, *format);
  list->callback([&action, &session, format] {
    action = [&session, format] { return WorkflowList(session, *format); };
  });

  auto* reload = workflow->add_subcommand(
      "reload", "Scan the workflows directory again, without restarting (platform admin)");
  AddFormat(reload, *format);
  reload->callback([&action, &session, format] {
    action = [&session, format] { return WorkflowReload(session, *format); };
  });

  auto run_args = std::make_shared<WorkflowRunArgs>();
  auto params_json = std::make_shared<std::string>();
  auto* run = workflow->add_subcommand("run", "Run a workflow for an organization");
  run->add_option("NAME", run_args->workflow, "The workflow's name")->required();
  run->add_option("--org", run_args->org, "Organization, by name or id (default: the token's own)");
  run->add_option("--param", run_args->params, "A parameter, NAME=VALUE (a string); repeatable")
      ->option_text("NAME=VALUE ...");
  auto* params_option = run->add_option("--params", *params_json, "Parameters as one JSON object")
                            ->option_text("JSON");
  run->add_flag("--no-wait", run_args->no_wait, "Print the execution id and return at once");
  AddFormat(run, run_args->format);
  run->footer(
      "Waits for the execution and prints its result (JSON); the exit status is 0 for success\n"
      "and 1 for failed, timeout or cancelled, with the error on stderr. --param values are\n"
      "strings and override keys of --params. With --format json the whole execution is\n"
      "printed. The workflow receives the parameters as keyword arguments.\n"
      "Examples:\n"
      "  bifrost workflow run call_api --org acme\n"
      "  bifrost workflow run verify_webhook --org acme --param payload=hi --param signature=...\n"
      "  id=$(bifrost workflow run nightly_sync --org acme --no-wait)");
  run->callback([&action, &session, run_args, params_json, params_option] {
    if (params_option->count() > 0) run_args->params_json = *params_json;
    action = [&session, run_args] { return WorkflowRun(session, *run_args); };
  });

  auto* execution = app.add_subcommand("execution", "Executions: list, get, logs, cancel");
  execution->require_subcommand(1);

  auto list_args = std::make_shared<ExecutionListArgs>();
  auto* execution_list = execution->add_subcommand("list", "List executions, newest first");
  execution_list->add_option("--org", list_args->org, "Organization, by name or id");
  execution_list->add_option("--workflow", list_args->workflow, "Only this workflow");
  execution_list->add_option("--status", list_args->status, "Only this status")
      ->check(CLI::IsMember({"pending", "running", "success", "failed", "timeout", "cancelled"}));
  execution_list->add_option("--limit", list_args->limit, "At most this many")
      ->check(CLI::Range(1, 500))
      ->option_text("N (default 50)");
  AddFormat(execution_list, list_args->format);
  execution_list->callback([&action, &session, list_args] {
    action = [&session, list_args] { return ExecutionList(session, *list_args); };
  });

  auto id = std::make_shared<std::string>();
  auto wait = std::make_shared<int>(0);
  auto* get = execution->add_subcommand("get", "Show one execution");
  get->add_option("ID", *id, "Execution id")->required();
  get->add_option("--wait", *wait, "Wait up to this many seconds for it to finish")
      ->check(CLI::Range(0, 10))
      ->option_text("SECONDS (0-10)");
  AddFormat(get, *format);
  get->callback([&action, &session, id, wait, format] {
    action = [&session, id, wait, format] { return ExecutionGet(session, *id, *wait, *format); };
  });

  auto* logs = execution->add_subcommand("logs", "Print an execution's output (redacted)");
  logs->add_option("ID", *id, "Execution id")->required();
  AddFormat(logs, *format);
  logs->callback([&action, &session, id, format] {
    action = [&session, id, format] { return ExecutionLogs(session, *id, *format); };
  });

  auto* cancel = execution->add_subcommand("cancel", "Cancel a pending or running execution");
  cancel->add_option("ID", *id, "Execution id")->required();
  AddFormat(cancel, *format);
  cancel->callback([&action, &session, id, format] {
    action = [&session, id, format] { return ExecutionCancel(session, *id, *format); };
  });
}

}  // namespace bifrost::cli
