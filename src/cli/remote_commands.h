// Commands that talk to a running server and live in files of their own.
//
//   bifrost workflow list|reload [--format table|json]
//   bifrost workflow run NAME [--org ORG] [--param K=V]... [--params JSON] [--no-wait]
//   bifrost execution list [--org ORG] [--workflow W] [--status S] [--limit N]
//   bifrost execution get ID [--wait SECONDS] | logs ID | cancel ID
//   bifrost user create --email EMAIL [--org ORG] --role ROLE | list [--org ORG]
//   bifrost user disable USER | passwd USER
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

struct UserCreateArgs {
  std::string email;
  std::string org;   // a name or an id; empty: none (platform-admin) or the token's own
  std::string role;  // platform-admin|admin|member|reader (CLI11 checked it)
  Format format = Format::kTable;
};

// Registers `user` (create, list, disable, passwd) on `app`, as AddWorkflowCommands does.
// Passwords are read from the terminal (twice, without echo) or the first line of stdin.
void AddUserCommands(CLI::App& app, Session& session, std::function<CliStatus()>& action);

}  // namespace bifrost::cli
