// bifrost_example_client: sets, gets, lists and deletes configs with the C++ SDK.
//
//   export BIFROST_ADDR=http://127.0.0.1:8420 BIFROST_TOKEN=bft_...
//   ./build/bifrost_example_client            # the token's organization
//   ./build/bifrost_example_client Contoso    # a platform admin names the organization
//
// It writes five configs whose keys start with "example_", reads them back and deletes them
// again. See examples/README.md and docs/cpp-sdk.md.
#include <bifrost/client.h>

#include <iostream>
#include <string>

namespace sdk = bifrost::sdk;

namespace {

// How a value is shown: a secret never is.
std::string Show(const sdk::ConfigValue& value) {
  if (value.type() == sdk::ConfigType::kSecret) {
    return value.masked() ? "[SECRET]"
                          : "(a secret of " + std::to_string(value.AsString().size()) + " bytes)";
  }
  return value.Text();
}

int Run(int argc, char** argv) {
  sdk::ClientOptions options = sdk::ClientOptions::FromEnvironment();
  if (argc > 1) options.org = argv[1];  // an organization id or name
  sdk::Client client(options);
  const std::string org_id = client.OrgId().value_or("(global)");  // asks the server once
  std::cout << "organization: " << org_id << "\n";

  // Set: the config type is the value's type.
  client.Set("example_greeting", sdk::ConfigValue::String("hello"), "shown to users");
  client.Set("example_retries", sdk::ConfigValue::Int(3));
  client.Set("example_enabled", sdk::ConfigValue::Bool(true));
  client.Set("example_limits",
             sdk::ConfigValue::Json({{"requests_per_minute", 600}, {"burst", 50}}));
  client.Set("example_password", sdk::ConfigValue::Secret("correct horse battery staple"));

  // Get: typed by the config's type; a secret is revealed.
  std::cout << "greeting: " << client.Get("example_greeting").AsString() << "\n";
  std::cout << "retries: " << client.Get("example_retries").AsInt() << "\n";
  std::cout << "enabled: " << std::boolalpha << client.Get("example_enabled").AsBool() << "\n";
  std::cout << "burst: " << client.Get("example_limits").AsJson()["burst"] << "\n";
  std::cout << "password: " << Show(client.Get("example_password")) << "\n";

  // A missing key: NotFoundError from Get, std::nullopt from Find, the fallback from Get(k, v).
  try {
    client.Get("example_missing");
  } catch (const sdk::NotFoundError& e) {
    std::cout << "missing: " << e.what() << "\n";
  }
  std::cout << "found: " << std::boolalpha << client.Find("example_missing").has_value() << "\n";
  std::cout << "fallback: " << client.Get("example_missing", sdk::ConfigValue::Int(7)).AsInt()
            << "\n";

  // List: the organization's entries and the global ones it inherits; secrets masked.
  for (const auto& [key, value] : client.List()) {
    std::cout << "  " << key << " (" << sdk::ConfigTypeName(value.type()) << ") = " << Show(value)
              << "\n";
  }

  // Delete: true if the organization's entry was deleted, false if there was none.
  for (const char* key : {"example_greeting", "example_retries", "example_enabled",
                          "example_limits", "example_password"}) {
    std::cout << "deleted " << key << ": " << std::boolalpha << client.Delete(key) << "\n";
  }
  std::cout << "deleted again: " << std::boolalpha << client.Delete("example_greeting") << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const sdk::PermissionDeniedError& e) {
    // A reader's or member's token: the message says what the role may not do.
    std::cerr << e.what() << "\n";
  } catch (const sdk::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
