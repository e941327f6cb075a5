// call_api_cpp: a Bifrost workflow in C++.
//
// Reads the organization's "api_key" secret (and, optionally, "api_base_url" and
// "api_timeout_ms") and prepares an authenticated call to that organization's API. Build it
// (target bifrost_example_workflow), copy the executable into the directory given to
// `bifrost serve --workflows DIR`, then:
//
//   bifrost workflow run call_api_cpp --org Contoso --param path=/v1/status
//
// See examples/README.md and docs/cpp-sdk.md.
#include <bifrost/workflow.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  return bifrost::sdk::RunWorkflow(
      argc, argv,
      {.name = "call_api_cpp",
       .description = "Calls the organization's API with its api_key (C++ SDK example)",
       .timeout_seconds = 30},
      [](bifrost::sdk::WorkflowContext& context) -> nlohmann::json {
        using bifrost::sdk::ConfigValue;
        bifrost::sdk::Client& config = context.client();

        // The running organization's value, else the global one; NotFoundError if neither
        // is set, which fails the execution with "NotFoundError: config 'api_key' ...".
        const ConfigValue api_key = config.Get("api_key");
        const std::string base_url =
            config.Get("api_base_url", ConfigValue::String("https://api.example.com")).AsString();
        const std::int64_t timeout_ms =
            config.Get("api_timeout_ms", ConfigValue::Int(5000)).AsInt();

        const std::string path = context.parameters.value("path", std::string("/v1/status"));
        std::string authorization = "Bearer ";
        authorization += api_key.AsString();

        // stdout and stderr are the execution's logs: never print the key itself.
        std::cout << "execution " << context.execution_id << " for " << context.org_name
                  << " (started by " << context.caller << "): GET " << base_url << path
                  << " with a " << api_key.AsString().size() << "-byte key, timeout " << timeout_ms
                  << " ms" << std::endl;

        // A real workflow would send the request here, with `authorization` as its
        // Authorization header, and return what it learned.

        // What the function returns is the execution's result.
        return {{"org", context.org_name},
                {"url", base_url + path},
                {"timeout_ms", timeout_ms},
                {"authorized", !api_key.AsString().empty()}};
      });
}
