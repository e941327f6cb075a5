// Commands that talk to a running server and live in files of their own.
//
//   bifrost workflow list|reload [--format table|json]
//   bifrost workflow run NAME [--org ORG] [--param K=V]... [--params JSON] [--no-wait]
//   bifrost execution list [--org ORG] [--workflow W] [--status S] [--limit N]
//   bifrost execution get ID [--wait SECONDS] | logs ID | cancel ID
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_error.h"
#include "cli/commands.h"

namespace bifrost::cli {

struct WorkflowRunArgs {
  std::string workflow;
  std::string org;                  // a name or an id; empty: the token's own
  std::vector<std::string> params;  // NAME=VALUE
  std::optional<std::string> params_json;
  bool no_wait = false;
  Format format = Format::kTable;
};

struct ExecutionListArgs {
  std::string org;
  std::string workflow;
  std::string status;
  int limit = 50;
  Format format = Format::kTable;
};

// Registers `workflow` and `execution` on `app`; the chosen command's callback sets `action`.
void AddWorkflowCommands(CLI::App& app, Session& session, std::function<CliStatus()>& action);

}  // namespace bifrost::cli
