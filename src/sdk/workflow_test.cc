// RunWorkflow: the process protocol of docs/workflows.md, with stdin/stdout/stderr replaced by
// string streams and the result descriptor by a pipe.
#include "bifrost/workflow.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/testing/fake_http_server.h"
#include "sdk/test_env.h"
#include "sdk/workflow_internal.h"

namespace bifrost::sdk {
namespace {

using client::testing::FakeHttpServer;
using client::testing::FakeRequest;
using client::testing::FakeResponse;
using nlohmann::json;
using testing::ScopedEnv;

constexpr const char* kOrgId = "3f1c2a4e-8b7d-4c1e-9a2b-5d6e7f8a9b0c";

const WorkflowSpec kSpec{
    .name = "call_api_cpp", .description = "Calls the API", .timeout_seconds = 30};

// A pipe standing in for the result descriptor; BIFROST_RESULT_FD names its write end.
class ResultPipe {
 public:
  ResultPipe() {
    EXPECT_EQ(::pipe(fds_), 0);
    env_ = std::make_unique<ScopedEnv>("BIFROST_RESULT_FD", std::to_string(fds_[1]));
  }
  ~ResultPipe() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    ::close(fds_[0]);
  }
  ResultPipe(const ResultPipe&) = delete;
  ResultPipe& operator=(const ResultPipe&) = delete;

  // Everything written so far (closes the write end).
  std::string Read() {
    ::close(fds_[1]);
    fds_[1] = -1;
    std::string out;
    char buffer[4096];
    while (true) {
      const ssize_t n = ::read(fds_[0], buffer, sizeof buffer);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fds_[2] = {-1, -1};
  std::unique_ptr<ScopedEnv> env_;
};

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
  std::string result;  // what reached the result descriptor
};

// The context document the server writes on stdin.
std::string ContextText(const json& parameters = json::object()) {
  return json{{"execution_id", "exec-1"},
              {"workflow", "call_api_cpp"},
              {"org", {{"id", kOrgId}, {"name", "Contoso"}}},
              {"caller", {{"id", "tok-9"}, {"name", "ops"}}},
              {"parameters", parameters}}
      .dump();
}

Outcome RunProtocol(std::vector<std::string> args, const std::string& stdin_text,
                    const std::function<json(WorkflowContext&)>& body) {
  ResultPipe pipe;
  std::vector<char*> argv;
  args.insert(args.begin(), "call_api_cpp");
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::istringstream in(stdin_text);
  std::ostringstream out;
  std::ostringstream err;
  Outcome outcome;
  outcome.code =
      internal::RunWorkflow(static_cast<int>(args.size()), argv.data(), kSpec, body, in, out, err);
  outcome.out = out.str();
  outcome.err = err.str();
  outcome.result = pipe.Read();
  return outcome;
}

json NoBody(WorkflowContext&) {
  ADD_FAILURE() << "the body must not run";
  return nullptr;
}

// ---- --bifrost-describe ----

TEST(WorkflowDescribeTest, PrintsTheSpec) {
  bool ran = false;
  std::istringstream in("must not be read");
  std::ostringstream out;
  std::ostringstream err;
  std::string arg0 = "call_api_cpp";
  std::string arg1 = "--bifrost-describe";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  const int code = internal::RunWorkflow(
      2, argv, kSpec,
      [&](WorkflowContext&) {
        ran = true;
        return json();
      },
      in, out, err);
  EXPECT_EQ(code, 0);
  EXPECT_FALSE(ran);
  EXPECT_EQ(out.str(),
            R"({"name":"call_api_cpp","description":"Calls the API","timeout_seconds":30})"
            "\n");
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(in.tellg(), 0);  // stdin untouched
}

TEST(WorkflowDescribeTest, OnlyTheNameIsRequired) {
  std::ostringstream out;
  std::ostringstream err;
  std::istringstream in;
  std::string arg0 = "x";
  std::string arg1 = "--bifrost-describe";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  EXPECT_EQ(internal::RunWorkflow(2, argv, {.name = "minimal.v-2_x"}, NoBody, in, out, err), 0);
  EXPECT_EQ(out.str(), "{\"name\":\"minimal.v-2_x\"}\n");
}

TEST(WorkflowDescribeTest, RefusesAnInvalidSpec) {
  const std::vector<WorkflowSpec> invalid = {
      {.name = ""},
      {.name = "has space"},
      {.name = "slash/name"},
      {.name = std::string(129, 'a')},
      {.name = "ok", .timeout_seconds = 0},
      {.name = "ok", .timeout_seconds = -5},
      {.name = "ok", .description = "bad \xff"},
  };
  for (const auto& spec : invalid) {
    std::ostringstream out;
    std::ostringstream err;
    std::istringstream in;
    std::string arg0 = "x";
    std::string arg1 = "--bifrost-describe";
    char* argv[] = {arg0.data(), arg1.data(), nullptr};
    EXPECT_EQ(internal::RunWorkflow(2, argv, spec, NoBody, in, out, err), 1) << spec.name;
    EXPECT_EQ(out.str(), "") << spec.name;
    EXPECT_NE(err.str(), "") << spec.name;
  }
}

TEST(WorkflowDescribeTest, OnlyTheSingleArgumentDescribes) {
  bool ran = false;
  const Outcome outcome = RunProtocol({"--bifrost-describe", "extra"}, ContextText(), [&](auto&) {
    ran = true;
    return json("ran");
  });
  EXPECT_TRUE(ran);
  EXPECT_EQ(outcome.code, 0);
  EXPECT_EQ(outcome.out, "");
}

// ---- executions ----

TEST(WorkflowRunTest, SuccessWritesTheResultDocument) {
  const Outcome outcome =
      RunProtocol({}, ContextText({{"payload", "p"}, {"count", 3}}), [](WorkflowContext& context) {
        EXPECT_EQ(context.execution_id, "exec-1");
        EXPECT_EQ(context.workflow_name, "call_api_cpp");
        EXPECT_EQ(context.org_id, kOrgId);
        EXPECT_EQ(context.org_name, "Contoso");
        EXPECT_EQ(context.caller, "ops");
        EXPECT_EQ(context.parameters, (json{{"payload", "p"}, {"count", 3}}));
        return json{{"ok", true}, {"items", {1, "two"}}};
      });
  EXPECT_EQ(outcome.code, 0);
  EXPECT_EQ(outcome.result, R"({"status":"success","result":{"items":[1,"two"],"ok":true}})");
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(outcome.err, "");
}

TEST(WorkflowRunTest, NullResult) {
  const Outcome outcome = RunProtocol({}, ContextText(), [](WorkflowContext&) { return json(); });
  EXPECT_EQ(outcome.code, 0);
  EXPECT_EQ(outcome.result, R"({"status":"success","result":null})");
}

TEST(WorkflowRunTest, AnExceptionFailsTheExecution) {
  const Outcome outcome = RunProtocol({}, ContextText(), [](WorkflowContext&) -> json {
    throw std::runtime_error("the API answered 502");
  });
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.result,
            R"({"status":"failed","error":"std::runtime_error: the API answered 502"})");
  EXPECT_NE(outcome.err.find("std::runtime_error: the API answered 502"), std::string::npos)
      << outcome.err;
}

TEST(WorkflowRunTest, ErrorsAreTaggedWithTheirType) {
  const std::vector<std::pair<std::function<json(WorkflowContext&)>, std::string>> cases = {
      {[](WorkflowContext&) -> json { throw NotFoundError("config 'x' is not set"); },
       "NotFoundError: config 'x' is not set"},
      {[](WorkflowContext&) -> json { throw PermissionDeniedError("no"); },
       "PermissionDeniedError: no"},
      {[](WorkflowContext&) -> json { throw Error("unreachable"); }, "BifrostError: unreachable"},
      {[](WorkflowContext&) -> json { throw std::out_of_range("index 9"); },
       "std::out_of_range: index 9"},
      {[](WorkflowContext&) -> json { throw 42; },
       "unknown exception (not derived from std::exception)"},
      {[](WorkflowContext& context) -> json {
         return context.parameters.at("missing");  // nlohmann's out_of_range
       },
       "nlohmann::json::out_of_range: [json.exception.out_of_range.403] key 'missing' not "
       "found"},
      {[](WorkflowContext& context) -> json { return context.parameters.at("n").get<int>(); },
       "nlohmann::json::type_error: [json.exception.type_error.302] type must be number, but "
       "is string"},
  };
  for (const auto& [body, error] : cases) {
    const Outcome outcome = RunProtocol({}, ContextText({{"n", "x"}}), body);
    EXPECT_EQ(outcome.code, 1);
    EXPECT_EQ(json::parse(outcome.result), (json{{"status", "failed"}, {"error", error}}));
  }
}

TEST(WorkflowRunTest, AResultThatIsNotJsonFails) {
  const Outcome outcome =
      RunProtocol({}, ContextText(), [](WorkflowContext&) { return json("bad \xff bytes"); });
  EXPECT_EQ(outcome.code, 1);
  const json document = json::parse(outcome.result);
  EXPECT_EQ(document["status"], "failed");
  EXPECT_TRUE(document["error"].get<std::string>().starts_with(
      "BifrostError: the workflow's result cannot be serialized as JSON"))
      << document;
}

TEST(WorkflowRunTest, MalformedContextFailsWithoutRunningTheBody) {
  for (const std::string text :
       {"not json", "[1]", "\"x\"", R"({"parameters": [1]})", R"({"org": "Contoso"})",
        R"({"execution_id": 7})", R"({"org": {"id": 1}})", R"({"caller": 5})"}) {
    const Outcome outcome = RunProtocol({}, text, NoBody);
    EXPECT_EQ(outcome.code, 1) << text;
    const json document = json::parse(outcome.result);
    EXPECT_EQ(document["status"], "failed") << text;
    EXPECT_TRUE(document["error"].get<std::string>().starts_with(
        "BifrostError: the execution context on stdin "))
        << document;
  }
}

TEST(WorkflowRunTest, MissingFieldsComeFromTheEnvironment) {
  const ScopedEnv execution("BIFROST_EXECUTION_ID", "exec-env");
  const ScopedEnv workflow("BIFROST_WORKFLOW", "wf-env");
  const ScopedEnv org_id("BIFROST_ORG_ID", kOrgId);
  const ScopedEnv org_name("BIFROST_ORG_NAME", "Env Org");
  for (const std::string text : {"", " \n", "{}", R"({"parameters": null, "caller": "ops"})"}) {
    const Outcome outcome = RunProtocol({}, text, [&](WorkflowContext& context) {
      EXPECT_EQ(context.execution_id, "exec-env");
      EXPECT_EQ(context.workflow_name, "wf-env");
      EXPECT_EQ(context.org_id, kOrgId);
      EXPECT_EQ(context.org_name, "Env Org");
      EXPECT_EQ(context.parameters, json::object());
      return json(context.caller);
    });
    EXPECT_EQ(outcome.code, 0) << text;
    EXPECT_EQ(json::parse(outcome.result)["result"],
              text.find("ops") != std::string::npos ? "ops" : "")
        << text;
  }
}

// ---- the client inside a workflow ----

std::string Entry(const std::string& key, const std::string& type, const std::string& value) {
  return R"({"key":")" + key + R"(","type":")" + type + R"(","value":)" + value +
         R"(,"scope":"org"})";
}

TEST(WorkflowClientTest, ReadsTheExecutionsOrganization) {
  FakeHttpServer server([](const FakeRequest& request) {
    if (request.target == std::string("/api/v1/orgs/") + kOrgId + "/configs/api_key/reveal") {
      return FakeResponse{.body = Entry("api_key", "secret", "\"sk-123456\"")};
    }
    return FakeResponse{
        .status = 404,
        .body = R"({"error":{"code":"not_found","message":"config 'api_key' is not set in )"
                R"(organization 'Contoso' or the global scope"}})"};
  });
  const ScopedEnv addr("BIFROST_ADDR", server.http_address());
  const ScopedEnv token("BIFROST_TOKEN", "bfx_execution_token");
  const ScopedEnv org("BIFROST_ORG_ID", std::nullopt);  // the stdin document names it
  const Outcome outcome = RunProtocol({}, ContextText(), [](WorkflowContext& context) {
    const ConfigValue api_key = context.client().Get("api_key");
    EXPECT_EQ(&context.client(), &context.client());  // one client per execution
    return json{{"key_length", api_key.AsString().size()}};
  });
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.result, R"({"status":"success","result":{"key_length":9}})");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);  // no whoami: the execution's organization is known
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer bfx_execution_token");
}

TEST(WorkflowClientTest, AMissingKeyFailsTheExecution) {
  FakeHttpServer server([](const FakeRequest&) {
    return FakeResponse{
        .status = 404,
        .body = R"({"error":{"code":"not_found","message":"config 'api_key' is not set in )"
                R"(organization 'Contoso' or the global scope"}})"};
  });
  const ScopedEnv addr("BIFROST_ADDR", server.http_address());
  const ScopedEnv token("BIFROST_TOKEN", "bfx_execution_token");
  const ScopedEnv org("BIFROST_ORG_ID", kOrgId);
  const Outcome outcome = RunProtocol({}, ContextText(), [](WorkflowContext& context) {
    return json(context.client().Get("api_key").AsString());
  });
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.result,
            R"({"status":"failed","error":"NotFoundError: config 'api_key' is not set in )"
            R"(organization 'Contoso' or the global scope"})");
  EXPECT_EQ(outcome.err.find("bfx_execution_token"), std::string::npos);
}

TEST(WorkflowClientTest, ABodyCanBeTestedWithItsOwnOptions) {
  FakeHttpServer server(
      [](const FakeRequest&) { return FakeResponse{.body = Entry("retries", "int", "4")}; });
  WorkflowContext context;
  context.org_id = kOrgId;
  context.client_options.address = server.http_address();
  context.client_options.token = "bft_test";
  EXPECT_EQ(context.client().Get("retries").AsInt(), 4);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].target,
            std::string("/api/v1/orgs/") + kOrgId + "/configs/retries/reveal");
}

// ---- the result descriptor ----

// A descriptor number that is not open in this process.
int ClosedFd() {
  for (int fd = 900; fd < 1000; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1) return fd;
  }
  return -1;
}

TEST(WorkflowResultFdTest, NotOpenMeansStdout) {
  const int fd = ClosedFd();
  ASSERT_GE(fd, 0);
  const ScopedEnv result_fd("BIFROST_RESULT_FD", std::to_string(fd));
  std::istringstream in(ContextText());
  std::ostringstream out;
  std::ostringstream err;
  char arg0[] = "x";
  char* argv[] = {arg0, nullptr};
  const int code = internal::RunWorkflow(
      1, argv, kSpec, [](WorkflowContext&) { return json(1); }, in, out, err);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out.str(), "{\"status\":\"success\",\"result\":1}\n");
  EXPECT_NE(err.str().find("is not open"), std::string::npos) << err.str();
}

TEST(WorkflowResultFdTest, AnInvalidNumberFails) {
  const ScopedEnv result_fd("BIFROST_RESULT_FD", "three");
  std::istringstream in(ContextText());
  std::ostringstream out;
  std::ostringstream err;
  char arg0[] = "x";
  char* argv[] = {arg0, nullptr};
  const int code = internal::RunWorkflow(
      1, argv, kSpec, [](WorkflowContext&) { return json(1); }, in, out, err);
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.str().find("BIFROST_RESULT_FD"), std::string::npos) << err.str();
  EXPECT_EQ(out.str(), "{\"status\":\"success\",\"result\":1}\n");
}

TEST(WorkflowResultFdTest, DescriptorThreeByDefault) {
  const ScopedEnv result_fd("BIFROST_RESULT_FD", std::nullopt);
  const int saved = ::fcntl(3, F_GETFD) == -1 ? -1 : ::dup(3);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  for (int& fd : fds) {  // neither end may be descriptor 3 itself
    const int moved = ::fcntl(fd, F_DUPFD, 10);
    ASSERT_GE(moved, 10);
    ::close(fd);
    fd = moved;
  }
  ASSERT_EQ(::dup2(fds[1], 3), 3);
  ::close(fds[1]);
  std::istringstream in(ContextText());
  std::ostringstream out;
  std::ostringstream err;
  char arg0[] = "x";
  char* argv[] = {arg0, nullptr};
  const int code = internal::RunWorkflow(
      1, argv, kSpec, [](WorkflowContext&) { return json("three"); }, in, out, err);
  if (saved >= 0) {
    ::dup2(saved, 3);
    ::close(saved);
  } else {
    ::close(3);
  }
  std::string result;
  char buffer[256];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) {
    result.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(result, R"({"status":"success","result":"three"})");
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace bifrost::sdk
