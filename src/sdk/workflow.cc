// RunWorkflow: "The process protocol" of docs/workflows.md.
#include "bifrost/workflow.h"

#include <cxxabi.h>
#include <errno.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <iterator>
#include <string>
#include <typeinfo>
#include <utility>

#include "sdk/json_raw.h"
#include "sdk/workflow_internal.h"

namespace bifrost::sdk {
namespace {

using nlohmann::json;

constexpr int kDefaultResultFd = 3;

// ^[A-Za-z0-9_.-]{1,128}$
bool IsValidWorkflowName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return value;
}

// The demangled name of a type; nlohmann's exceptions as nlohmann::json::type_error etc.
std::string TypeName(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type.name();
  std::free(demangled);
  if (name.starts_with("nlohmann::")) {
    const auto detail = name.rfind("::detail::");
    if (detail != std::string::npos) name = "nlohmann::json::" + name.substr(detail + 10);
  }
  return name;
}

// A failure while reading the execution's document: reported as the SDK's Error.
[[noreturn]] void ContextError(std::string_view why) {
  std::string message = "the execution context on stdin ";
  message += why;
  throw Error(message);
}

// The string member `name` of `object`; `fallback` when it is absent or null.
std::string StringField(const json& object, const char* name, const char* path,
                        std::string fallback) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    std::string why = "has a field '";
    why += path;
    why += "' that is not a string";
    ContextError(why);
  }
  return it->get<std::string>();
}

WorkflowContext ReadContext(std::istream& in) {
  const std::string input{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) ContextError("cannot be read");
  json document = json::object();
  if (!internal::Trim(input).empty()) {
    document = json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) ContextError("is not JSON");
    if (!document.is_object()) ContextError("is not a JSON object");
  }
  WorkflowContext context;
  context.execution_id =
      StringField(document, "execution_id", "execution_id", EnvOr("BIFROST_EXECUTION_ID", ""));
  context.workflow_name =
      StringField(document, "workflow", "workflow", EnvOr("BIFROST_WORKFLOW", ""));
  json org = json::object();
  if (const auto it = document.find("org"); it != document.end() && !it->is_null()) {
    if (!it->is_object()) ContextError("has a field 'org' that is not an object");
    org = *it;
  }
  context.org_id = StringField(org, "id", "org.id", EnvOr("BIFROST_ORG_ID", ""));
  context.org_name = StringField(org, "name", "org.name", EnvOr("BIFROST_ORG_NAME", ""));
  if (const auto it = document.find("caller"); it != document.end() && !it->is_null()) {
    if (it->is_string()) {
      context.caller = it->get<std::string>();
    } else if (it->is_object()) {
      context.caller = StringField(*it, "name", "caller.name", "");
    } else {
      ContextError("has a field 'caller' that is neither an object nor a string");
    }
  }
  if (const auto it = document.find("parameters"); it != document.end() && !it->is_null()) {
    if (!it->is_object()) ContextError("has a field 'parameters' that is not an object");
    context.parameters = std::move(*it);
  }
  context.client_options = ClientOptions::FromEnvironment();
  return context;
}

// Writes all of `text` to `fd`; 0, or the errno of the failure.
int WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    text.remove_prefix(static_cast<std::size_t>(written));
  }
  return 0;
}

// Sends the result document to BIFROST_RESULT_FD (stdout if that descriptor is not open).
// False when it could not be delivered.
bool DeliverResult(const std::string& document, std::ostream& out, std::ostream& err) {
  int fd = kDefaultResultFd;
  if (const char* named = std::getenv("BIFROST_RESULT_FD"); named != nullptr && *named != '\0') {
    const std::string_view text(named);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
    if (ec != std::errc() || end != text.data() + text.size() || fd < 0) {
      err << "bifrost workflow: BIFROST_RESULT_FD is not a file descriptor number; the result "
             "document follows on stdout\n";
      out << document << std::endl;
      return false;
    }
  }
  const int error = WriteAll(fd, document);
  if (error == 0) return true;
  if (error == EBADF) {
    // Run by hand, without the descriptor: show the document instead.
    err << "bifrost workflow: file descriptor " << fd
        << " is not open; the result document follows on stdout\n";
    out << document << std::endl;
    return true;
  }
  err << "bifrost workflow: cannot write the result to file descriptor " << fd << ": "
      << std::strerror(error) << "\n";
  return false;
}

int Describe(const WorkflowSpec& spec, std::ostream& out, std::ostream& err) {
  if (!IsValidWorkflowName(spec.name)) {
    err << "bifrost workflow: the name must be 1-128 ASCII letters, digits, '_', '.' or '-'\n";
    return 1;
  }
  if (spec.timeout_seconds && *spec.timeout_seconds < 1) {
    err << "bifrost workflow: timeout_seconds must be at least 1\n";
    return 1;
  }
  // Built member by member to keep the documented order (nlohmann::json sorts members).
  std::string text = R"({"name":)";
  try {
    text += json(spec.name).dump();
    if (!spec.description.empty()) {
      text += R"(,"description":)";
      text += json(spec.description).dump();
    }
  } catch (const json::exception&) {
    err << "bifrost workflow: the description is not valid UTF-8\n";
    return 1;
  }
  if (spec.timeout_seconds) {
    text += R"(,"timeout_seconds":)";
    text += std::to_string(*spec.timeout_seconds);
  }
  text += "}";
  out << text << std::endl;
  return out ? 0 : 1;
}

}  // namespace

Client& WorkflowContext::client() {
  if (!client_) {
    ClientOptions options = client_options;
    if (!options.org && !options.global && !org_id.empty()) options.org = org_id;
    client_ = std::make_unique<Client>(std::move(options));
  }
  return *client_;
}

namespace internal {

std::string DescribeCurrentException() {
  std::string tag;
  std::string what;
  try {
    throw;
  } catch (const NotFoundError& e) {
    tag = "NotFoundError";
    what = e.what();
  } catch (const PermissionDeniedError& e) {
    tag = "PermissionDeniedError";
    what = e.what();
  } catch (const Error& e) {
    tag = "BifrostError";
    what = e.what();
  } catch (const std::exception& e) {
    tag = TypeName(typeid(e));
    what = e.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
  if (what.empty()) return tag;
  tag += ": ";
  tag += what;
  return tag;
}

int RunWorkflow(int argc, char** argv, const WorkflowSpec& spec,
                const std::function<json(WorkflowContext&)>& body, std::istream& in,
                std::ostream& out, std::ostream& err) {
  if (argc == 2 && argv != nullptr && argv[1] != nullptr &&
      std::string_view(argv[1]) == "--bifrost-describe") {
    return Describe(spec, out, err);
  }
  std::string error;
  std::string document;
  try {
    WorkflowContext context = ReadContext(in);
    if (!body) throw Error("the workflow has no body");
    json result = body(context);
    try {
      document = R"({"status":"success","result":)";
      document += result.dump();
      document += "}";
    } catch (const json::exception& e) {
      error = "BifrostError: the workflow's result cannot be serialized as JSON: ";
      error += e.what();
    }
  } catch (...) {
    error = DescribeCurrentException();
  }
  out.flush();
  if (error.empty()) return DeliverResult(document, out, err) ? 0 : 1;
  document = R"({"status":"failed","error":)";
  document += json(error).dump(-1, ' ', false, json::error_handler_t::replace);
  document += "}";
  err << error << std::endl;
  DeliverResult(document, out, err);
  return 1;
}

}  // namespace internal

int RunWorkflow(int argc, char** argv, const WorkflowSpec& spec,
                std::function<nlohmann::json(WorkflowContext&)> body) {
  return internal::RunWorkflow(argc, argv, spec, body, std::cin, std::cout, std::cerr);
}

}  // namespace bifrost::sdk
