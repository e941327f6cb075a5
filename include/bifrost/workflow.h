// Workflows in C++: an executable that `bifrost serve --workflows DIR` runs for one
// organization, following "The process protocol" of docs/workflows.md.
//
//   #include <bifrost/workflow.h>
//
//   int main(int argc, char** argv) {
//     return bifrost::sdk::RunWorkflow(
//         argc, argv, {.name = "call_api_cpp", .description = "Calls the API"},
//         [](bifrost::sdk::WorkflowContext& context) -> nlohmann::json {
//           const std::string api_key = context.client().Get("api_key").AsString();
//           ...
//           return {{"status", 200}};
//         });
//   }
//
// This header depends only on the standard library, nlohmann/json and <bifrost/client.h>.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bifrost/client.h"

namespace bifrost::sdk {

// One execution of a workflow: who runs it, for which organization, with which parameters
// (Python's ExecutionContext), and a Client for that organization's configuration.
struct WorkflowContext {
  // The execution's id.
  std::string execution_id;
  // The workflow's name, as the server knows it.
  std::string workflow_name;
  // The organization the execution runs for: its id and its name.
  std::string org_id;
  std::string org_name;
  // The name of the token or user that started the run.
  std::string caller;
  // The run's parameters: a JSON object (`--param name=value` gives {"name": "value"}).
  nlohmann::json parameters = nlohmann::json::object();

  // The options client() uses when it first creates its Client. RunWorkflow sets them from
  // the environment (ClientOptions::FromEnvironment(): the server's address, the execution's
  // token, BIFROST_ORG_ID as the organization, else `org_id`); a test of a workflow body may
  // set its own before calling client().
  ClientOptions client_options;

  // A Client for the execution's organization, created on the first call from
  // `client_options` and then kept; Error if the options are invalid. The execution token it
  // uses reads, reveals and writes this organization's configs only (other organizations and
  // the global scope are 403: PermissionDeniedError), and stops working when the execution
  // ends.
  Client& client();

 private:
  std::unique_ptr<Client> client_;
};

// What `--bifrost-describe` prints: {"name": ..., "description": ..., "timeout_seconds": N}.
struct WorkflowSpec {
  // Required: ^[A-Za-z0-9_.-]{1,128}$, unique across the workflows directory.
  std::string name;
  // Optional: left out of the description when empty.
  std::string description;
  // Optional: overrides the server's time limit (--workflow-timeout, 60 s); must be positive.
  std::optional<int> timeout_seconds;
};

// The whole process protocol; call it from main and return what it returns:
//
//   - With the single argument `--bifrost-describe`: prints the spec as one JSON line on stdout
//     and returns 0 (the spec is checked first: an invalid name or a timeout_seconds below 1 is
//     reported on stderr and returns 1, so the server lists the workflow as broken).
//   - Otherwise: reads the execution's JSON document from stdin up to end of file, builds the
//     WorkflowContext (fields missing from it, or an empty stdin, fall back to the environment
//     variables BIFROST_EXECUTION_ID, BIFROST_WORKFLOW, BIFROST_ORG_ID and BIFROST_ORG_NAME),
//     runs `body`, and writes the result document to the file descriptor named by
//     BIFROST_RESULT_FD (default 3):
//       * `body` returns a value: {"status": "success", "result": <value>}, returns 0;
//       * `body` throws, or its value cannot be serialized (a string that is not UTF-8), or
//         stdin is not a JSON object: {"status": "failed", "error": "<Type>: <what()>"},
//         the same line on stderr, returns 1. <Type> is NotFoundError,
//         PermissionDeniedError or BifrostError for the SDK's errors, otherwise the C++ type
//         of the exception (e.g. std::runtime_error).
//     When the descriptor is not open (the executable run by hand, without `3>`), the
//     document goes to stdout instead.
//
// stdout and stderr are the execution's logs: never print a secret.
int RunWorkflow(int argc, char** argv, const WorkflowSpec& spec,
                std::function<nlohmann::json(WorkflowContext&)> body);

}  // namespace bifrost::sdk

namespace bifrost {
// The name docs/workflows.md uses.
using sdk::RunWorkflow;
}  // namespace bifrost
