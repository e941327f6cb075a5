// The workflow runtime on a real SQLite store, with real child processes: executable
// workflows written as /bin/sh scripts (and a few Python ones) that follow the process
// protocol of docs/workflows.md. The tests run as root in CI, so the runtime runs the
// workflows as "nobody" inside its Landlock sandbox: everything a script needs lives in a
// world-readable directory under /tmp.
//
// Scripts that must stay running while the test looks at them print their HOME
// ("home=...") and then wait for a file to appear there; the test (root, unconfined) creates
// it. This keeps every test free of sleeps whose length matters.
#include "workflow/runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "common/clock.h"
#include "common/text.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"
#include "workflow/sandbox.h"

namespace bifrost::workflow {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr char kPython[] = "/usr/bin/python3";
const std::string kOrg = "6f1c2d3e-4b5a-4c6d-8e7f-00000000a001";
const std::string kOrgName = "acme";
const std::string kUnknownId = "6f1c2d3e-4b5a-4c6d-8e7f-00000000ffff";

bool IsFinal(const std::string& status) {
  return status == "success" || status == "failed" || status == "timeout" || status == "cancelled";
}

bool Exists(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::exists(path, ignored);
}

// Names in `dir` that start with `prefix`.
std::vector<std::string> EntriesStartingWith(const std::string& dir, std::string_view prefix) {
  std::vector<std::string> found;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) found.push_back(name);
  }
  return found;
}

// An executable workflow: a /bin/sh script that describes itself with `describe` (a JSON
// object, without single quotes) and otherwise runs `body`.
std::string ShScript(std::string_view describe, std::string_view body) {
  std::string text = "#!/bin/sh\nif [ \"$1\" = --bifrost-describe ]; then echo '";
  text += describe;
  text += "'; exit 0; fi\n";
  text += body;
  return text;
}

// Shell lines: print HOME so the test can find it, then wait for $HOME/<name>.
std::string AnnounceHome() { return "echo \"home=$HOME\"\n"; }
std::string WaitForFile(std::string_view name) {
  std::string text = "while [ ! -e \"$HOME/";
  text += name;
  text += "\" ]; do sleep 0.05; done\n";
  return text;
}

struct LogLine {
  std::string level;
  std::string message;
  std::map<std::string, std::string> fields;
};

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The workflows' user ("nobody") must reach the scripts and its working directories.
    ASSERT_EQ(::chmod(root_.path().c_str(), 0755), 0);
    for (std::filesystem::path dir = root_.path(); dir.has_relative_path();
         dir = dir.parent_path()) {
      struct stat info {};
      ASSERT_EQ(::stat(dir.c_str(), &info), 0) << dir;
      ASSERT_NE(info.st_mode & S_IXOTH, 0u)
          << dir << " is not searchable by other users; run the tests with TMPDIR=/tmp";
    }
    workflows_dir_ = root_.path() + "/workflows";
    work_root_ = root_.path() + "/work";
    for (const std::string& dir : {workflows_dir_, work_root_}) {
      ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir;
      ASSERT_EQ(::chmod(dir.c_str(), 0755), 0) << dir;
    }
    OpenStore();
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK(txn->InsertOrg(store::OrgRow{kOrg, kOrgName, clock_.NowMicros()}));
    ASSERT_OK(txn->Commit());
  }

  void TearDown() override {
    other_nodes_.clear();
    runtime_.reset();
    store_.reset();
  }

  void OpenStore() {
    store::SqliteOptions options;
    options.data_dir = root_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteStore::Open(options);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    store_ = std::move(*opened);
  }

  // The options every test starts from. The tests run as root, so workflows run as
  // "nobody" (what a root server does by default), confined by Landlock.
  RuntimeOptions Options() const {
    RuntimeOptions options;
    options.workflows_dir = workflows_dir_;
    options.python = kPython;
    options.api_address = "http://127.0.0.1:8420";
    options.work_root = work_root_;
    options.run_as_user = "nobody";
    options.landlock = true;
    options.max_concurrent = 2;
    options.default_timeout_seconds = 30;
    return options;
  }

  void WriteFile(const std::string& name, const std::string& content, mode_t mode) {
    const std::string path = workflows_dir_ + "/" + name;
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << content;
      ASSERT_TRUE(out.good()) << path;
    }
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  }

  void AddScript(const std::string& file, std::string_view describe, std::string_view body) {
    WriteFile(file, ShScript(describe, body), 0755);
  }

  // A runtime on the test's store whose log lines go to LogLines(); nullptr (and a test
  // failure) if it cannot be created or a script of the test did not load.
  std::unique_ptr<Runtime> MakeRuntime(RuntimeOptions options) {
    auto created =
        Runtime::Create(std::move(options), *store_, tokens_, clock_,
                        [this](std::string_view level, std::string_view message,
                               const std::vector<std::pair<std::string, std::string>>& fields) {
                          LogLine line{std::string(level), std::string(message), {}};
                          for (const auto& [key, value] : fields) {
                            line.fields[key] = value;
                          }
                          std::lock_guard<std::mutex> lock(log_mu_);
                          log_.push_back(std::move(line));
                        });
    EXPECT_TRUE(created.has_value()) << created.error().ToString();
    if (!created) return nullptr;
    // Every script of the test must have loaded.
    for (const LoadError& error : (*created)->catalog()->errors) {
      ADD_FAILURE() << "workflow file skipped: " << error.file << ": " << error.error;
    }
    return std::move(*created);
  }

  // Creates the runtime; use with ASSERT_NO_FATAL_FAILURE.
  void CreateRuntime(RuntimeOptions options) {
    runtime_ = MakeRuntime(std::move(options));
    ASSERT_NE(runtime_, nullptr);
  }

  // Another node on the same store (a second server process on a shared database), kept
  // until the end of the test; nullptr (and a test failure) if it cannot start.
  Runtime* AddNode(RuntimeOptions options) {
    std::unique_ptr<Runtime> node = MakeRuntime(std::move(options));
    if (node == nullptr) return nullptr;
    other_nodes_.push_back(std::move(node));
    return other_nodes_.back().get();
  }

  std::vector<LogLine> LogLines() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  Runtime& runtime() { return *runtime_; }

  // Starts `workflow` for kOrg; "" (and a test failure) if it cannot.
  std::string MustStart(const std::string& workflow, const std::string& parameters = "{}") {
    StartRequest request;
    request.workflow = workflow;
    request.org_id = kOrg;
    request.parameters = parameters;
    request.caller_id = "caller-1";
    request.caller_name = "ops";
    auto started = runtime_->Start(request);
    EXPECT_TRUE(started.has_value()) << started.error().ToString();
    if (!started) return "";
    EXPECT_EQ(started->status, "pending");
    return started->id;
  }

  store::ExecutionRow Fetch(std::string_view id) {
    auto row = runtime_->Get(id);
    EXPECT_TRUE(row.has_value()) << row.error().ToString();
    if (!row || !row->has_value()) {
      ADD_FAILURE() << "no execution " << id;
      return {};
    }
    return std::move(**row);
  }

  // Polls until the execution has finished (a test failure after `limit`).
  store::ExecutionRow WaitDone(std::string_view id, std::chrono::seconds limit = 60s) {
    const auto give_up = SteadyClock::now() + limit;
    while (true) {
      store::ExecutionRow row = Fetch(id);
      if (IsFinal(row.status) || row.id.empty()) return row;
      if (SteadyClock::now() > give_up) {
        ADD_FAILURE() << "execution " << id << " still " << row.status << " after " << limit.count()
                      << " s; logs so far:\n"
                      << row.logs;
        return row;
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  // Polls until the execution's logs (live while it runs) contain `needle`.
  store::ExecutionRow WaitForLogs(std::string_view id, std::string_view needle,
                                  std::chrono::seconds limit = 30s) {
    const auto give_up = SteadyClock::now() + limit;
    while (true) {
      store::ExecutionRow row = Fetch(id);
      if (row.logs.find(needle) != std::string::npos || row.id.empty()) return row;
      if (IsFinal(row.status) || SteadyClock::now() > give_up) {
        ADD_FAILURE() << "execution " << id << " (" << row.status << ") never printed " << needle
                      << "; logs:\n"
                      << row.logs << "\nerror: " << row.error.value_or("");
        return row;
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  // The HOME of a running execution whose script began with AnnounceHome().
  std::string HomeOf(std::string_view id) {
    const store::ExecutionRow row = WaitForLogs(id, "home=");
    const auto at = row.logs.find("home=");
    if (at == std::string::npos) return "";
    const auto end = row.logs.find('\n', at);
    return row.logs.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
  }

  // Creates $HOME/<name> for a running execution (what its WaitForFile waits for).
  void Release(std::string_view id, std::string_view name = "go") {
    const std::string home = HomeOf(id);
    ASSERT_FALSE(home.empty());
    std::string path = home;
    path += "/";
    path += name;
    std::ofstream out(path);
    ASSERT_TRUE(out.good()) << path;
  }

  bifrost::testing::TempDir root_;
  std::string workflows_dir_;
  std::string work_root_;
  const Clock& clock_ = SystemClock::Instance();
  std::unique_ptr<store::SqliteStore> store_;
  auth::ExecutionTokens tokens_{SystemClock::Instance()};
  std::mutex log_mu_;
  std::vector<LogLine> log_;
  std::vector<std::unique_ptr<Runtime>> other_nodes_;  // destroyed before the store
  std::unique_ptr<Runtime> runtime_;                   // last: destroyed first
};

// A script that waits for $HOME/go; used wherever a test needs a running execution.
constexpr std::string_view kBlockerDescribe = R"({"name":"blocker","timeout_seconds":30})";
std::string BlockerBody() {
  std::string body = "cat >/dev/null\n";
  body += AnnounceHome();
  body += "echo started\n";
  body += WaitForFile("go");
  body += "echo '{\"status\":\"success\",\"result\":\"released\"}' >&3\n";
  return body;
}

// ---- Results: the status/result/error rules of "The process protocol" ----

TEST_F(RuntimeTest, SuccessWithResultGetsTheInputDocument) {
  AddScript("ok.sh", R"({"name":"ok","description":"works","timeout_seconds":5})",
            "input=$(cat)\n"
            "echo hello from ok\n"
            "echo to stderr >&2\n"
            "printf '{\"status\":\"success\",\"result\":{\"a\":1,\"input\":%s}}' \"$input\" >&3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));

  StartRequest request{.workflow = "ok",
                       .org_id = kOrg,
                       .parameters = R"({"payload":"p","n":2})",
                       .caller_id = "token-7",
                       .caller_name = "ops"};
  ASSERT_OK_AND_ASSIGN(store::ExecutionRow started, runtime().Start(request));
  EXPECT_EQ(started.status, "pending");
  EXPECT_EQ(started.workflow, "ok");
  EXPECT_EQ(started.org_id, kOrg);
  EXPECT_EQ(started.timeout_seconds, 5);

  const store::ExecutionRow row = WaitDone(started.id);
  EXPECT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;
  EXPECT_FALSE(row.error.has_value());
  ASSERT_TRUE(row.result.has_value());
  const Json result = Json::parse(*row.result);
  EXPECT_EQ(result["a"], 1);
  const Json& input = result["input"];
  EXPECT_EQ(input["execution_id"], started.id);
  EXPECT_EQ(input["workflow"], "ok");
  EXPECT_EQ(input["org"], Json({{"id", kOrg}, {"name", kOrgName}}));
  EXPECT_EQ(input["caller"], Json({{"id", "token-7"}, {"name", "ops"}}));
  EXPECT_EQ(input["parameters"], Json({{"payload", "p"}, {"n", 2}}));
  EXPECT_THAT(row.logs, HasSubstr("hello from ok\n"));
  EXPECT_THAT(row.logs, HasSubstr("to stderr\n"));
  EXPECT_FALSE(row.logs_truncated);
  EXPECT_EQ(row.caller_id, "token-7");
  EXPECT_EQ(row.caller_name, "ops");
  EXPECT_EQ(Json::parse(row.parameters), Json({{"payload", "p"}, {"n", 2}}));
  ASSERT_TRUE(row.started_at.has_value());
  ASSERT_TRUE(row.finished_at.has_value());
  EXPECT_LE(row.created_at, *row.started_at);
  EXPECT_LE(*row.started_at, *row.finished_at);
}

TEST_F(RuntimeTest, ExitZeroWithoutDocumentIsSuccessWithNull) {
  AddScript("quiet.sh", R"({"name":"quiet"})", "cat >/dev/null\necho nothing to report\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("quiet"));
  EXPECT_EQ(row.status, "success") << row.error.value_or("");
  EXPECT_EQ(row.result, std::optional<std::string>("null"));
  EXPECT_FALSE(row.error.has_value());
  // No timeout_seconds in the description: the server's default.
  EXPECT_EQ(row.timeout_seconds, 30);
}

TEST_F(RuntimeTest, SuccessDocumentWithoutResultIsNull) {
  AddScript("bare.sh", R"({"name":"bare"})",
            "cat >/dev/null\necho '{\"status\":\"success\"}' >&3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("bare"));
  EXPECT_EQ(row.status, "success") << row.error.value_or("");
  EXPECT_EQ(row.result, std::optional<std::string>("null"));
}

TEST_F(RuntimeTest, FailedDocumentIsFailedWithItsError) {
  AddScript("fails.sh", R"({"name":"fails"})",
            "cat >/dev/null\necho '{\"status\":\"failed\",\"error\":\"the API said no\"}' >&3\n");
  AddScript("mute.sh", R"({"name":"mute"})",
            "cat >/dev/null\necho '{\"status\":\"failed\"}' >&3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));

  const store::ExecutionRow row = WaitDone(MustStart("fails"));
  EXPECT_EQ(row.status, "failed");
  EXPECT_EQ(row.error, std::optional<std::string>("the API said no"));
  EXPECT_FALSE(row.result.has_value());

  const store::ExecutionRow mute = WaitDone(MustStart("mute"));
  EXPECT_EQ(mute.status, "failed");
  ASSERT_TRUE(mute.error.has_value());
  EXPECT_FALSE(mute.error->empty());
}

// Binary output, NUL bytes and an error with a NUL are stored as valid UTF-8 (a store such as
// PostgreSQL refuses anything else): the execution still ends and its row is saved.
TEST_F(RuntimeTest, OutputThatIsNotTextIsStoredAsValidUtf8) {
  AddScript("binary.sh", R"({"name":"binary"})",
            "cat >/dev/null\nprintf 'before\\000nul \\377\\376 bytes\\n'\n"
            "printf '{\"status\":\"failed\",\"error\":\"bad\\\\u0000thing\"}' >&3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("binary"));
  EXPECT_EQ(row.status, "failed");
  EXPECT_TRUE(IsValidUtf8(row.logs)) << row.logs;
  EXPECT_EQ(row.logs.find('\0'), std::string::npos);
  EXPECT_THAT(row.logs, HasSubstr("before\xEF\xBF\xBDnul \xEF\xBF\xBD\xEF\xBF\xBD bytes\n"));
  EXPECT_EQ(row.error, std::optional<std::string>("bad\xEF\xBF\xBDthing"));
}

TEST_F(RuntimeTest, NonZeroExitWithoutDocumentIsFailedWithItsStatus) {
  AddScript("exit3.sh", R"({"name":"exit3"})", "cat >/dev/null\necho about to fail\nexit 3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("exit3"));
  EXPECT_EQ(row.status, "failed");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("exited with status 3"));
  EXPECT_FALSE(row.result.has_value());
  EXPECT_THAT(row.logs, HasSubstr("about to fail"));
}

TEST_F(RuntimeTest, NonZeroExitAfterSuccessDocumentIsFailed) {
  AddScript("liar.sh", R"({"name":"liar"})",
            "cat >/dev/null\necho '{\"status\":\"success\",\"result\":1}' >&3\nexit 2\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("liar"));
  EXPECT_EQ(row.status, "failed");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("exited with status 2"));
  EXPECT_FALSE(row.result.has_value());
}

TEST_F(RuntimeTest, ResultChannelThatIsNotADocumentIsFailed) {
  AddScript("garbage.sh", R"({"name":"garbage"})", "cat >/dev/null\necho 'this is not JSON' >&3\n");
  AddScript("array.sh", R"({"name":"array"})", "cat >/dev/null\necho '[1, 2]' >&3\n");
  AddScript("nostatus.sh", R"({"name":"nostatus"})", "cat >/dev/null\necho '{\"result\":1}' >&3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  for (const std::string name : {"garbage", "array", "nostatus"}) {
    SCOPED_TRACE(name);
    const store::ExecutionRow row = WaitDone(MustStart(name));
    EXPECT_EQ(row.status, "failed");
    ASSERT_TRUE(row.error.has_value());
    EXPECT_THAT(*row.error, HasSubstr("result document"));
    EXPECT_FALSE(row.result.has_value());
  }
}

TEST_F(RuntimeTest, DeeplyNestedResultFailsWithoutHarmingTheServer) {
  // 200,000 levels: serialising that recursively would overflow the worker's stack.
  AddScript("deep.sh", R"({"name":"deep"})",
            "cat >/dev/null\n{ printf '{\"status\":\"success\",\"result\":'; "
            "head -c 200000 /dev/zero | tr '\\0' '['; head -c 200000 /dev/zero | tr '\\0' ']'; "
            "printf '}'; } >&3\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("deep"));
  EXPECT_EQ(row.status, "failed");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("nests deeper than 64 levels"));
  EXPECT_FALSE(row.result.has_value());
}

TEST_F(RuntimeTest, ResultOverTheLimitIsFailed) {
  std::string big(200, 'x');
  std::string body = "cat >/dev/null\necho '{\"status\":\"success\",\"result\":\"";
  body += big;
  body += "\"}' >&3\n";
  AddScript("big.sh", R"({"name":"big"})", body);
  AddScript("small.sh", R"({"name":"small"})",
            "cat >/dev/null\necho '{\"status\":\"success\",\"result\":\"fits\"}' >&3\n");
  RuntimeOptions options = Options();
  options.max_result_bytes = 100;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));

  const store::ExecutionRow row = WaitDone(MustStart("big"));
  EXPECT_EQ(row.status, "failed");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("100 bytes"));
  EXPECT_FALSE(row.result.has_value());

  const store::ExecutionRow small = WaitDone(MustStart("small"));
  EXPECT_EQ(small.status, "success") << small.error.value_or("");
  EXPECT_EQ(small.result, std::optional<std::string>("\"fits\""));
}

TEST_F(RuntimeTest, ErrorIsCutAtItsLimit) {
  std::string body = "cat >/dev/null\necho '{\"status\":\"failed\",\"error\":\"";
  body += std::string(200, 'e');
  body += "\"}' >&3\n";
  AddScript("wordy.sh", R"({"name":"wordy"})", body);
  RuntimeOptions options = Options();
  options.max_error_bytes = 50;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  const store::ExecutionRow row = WaitDone(MustStart("wordy"));
  EXPECT_EQ(row.status, "failed");
  EXPECT_EQ(row.error, std::optional<std::string>(std::string(50, 'e')));
}

TEST_F(RuntimeTest, KilledBySignalIsFailed) {
  AddScript("suicide.sh", R"({"name":"suicide"})", "cat >/dev/null\nkill -KILL $$\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("suicide"));
  EXPECT_EQ(row.status, "failed");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("killed by signal 9"));
}

TEST_F(RuntimeTest, TimeLimitEndsItAsTimeout) {
  AddScript("sleepy.sh", R"({"name":"sleepy","timeout_seconds":1})",
            "cat >/dev/null\necho dozing off\nsleep 30\necho woke up\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const auto began = SteadyClock::now();
  const std::string id = MustStart("sleepy");
  const store::ExecutionRow row = WaitDone(id, 25s);
  EXPECT_LT(SteadyClock::now() - began, 25s);
  EXPECT_EQ(row.status, "timeout");
  EXPECT_EQ(row.timeout_seconds, 1);
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("1 second"));
  EXPECT_FALSE(row.result.has_value());
  EXPECT_THAT(row.logs, HasSubstr("dozing off"));
  EXPECT_THAT(row.logs, Not(HasSubstr("woke up")));
}

// ---- Cancel ----

TEST_F(RuntimeTest, CancelRunningExecution) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const std::string id = MustStart("blocker");
  const std::string home = HomeOf(id);
  EXPECT_EQ(Fetch(id).status, "running");

  ASSERT_OK_AND_ASSIGN(store::ExecutionRow now, runtime().Cancel(id, "alice"));
  EXPECT_EQ(now.id, id);
  EXPECT_TRUE(now.status == "running" || now.status == "cancelled") << now.status;

  const store::ExecutionRow row = WaitDone(id, 20s);
  EXPECT_EQ(row.status, "cancelled");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("cancelled by alice"));
  EXPECT_FALSE(row.result.has_value());
  EXPECT_THAT(row.logs, HasSubstr("started"));
  EXPECT_FALSE(Exists(home)) << home;

  EXPECT_ERROR_CODE(runtime().Cancel(id, "alice"), ErrorCode::kFailedPrecondition);
  EXPECT_ERROR_CODE(runtime().Cancel(kUnknownId, "alice"), ErrorCode::kNotFound);
  EXPECT_ERROR_CODE(runtime().Cancel("not-an-id", "alice"), ErrorCode::kNotFound);
}

TEST_F(RuntimeTest, CancelPendingExecution) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\necho quick ran\n");
  RuntimeOptions options = Options();
  options.max_concurrent = 1;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));

  const std::string first = MustStart("blocker");
  HomeOf(first);  // the only worker is busy
  const std::string second = MustStart("quick");
  EXPECT_EQ(Fetch(second).status, "pending");
  bool waiter_called = false;
  runtime().WhenFinished(second, SteadyClock::now() + 1h, [&] { waiter_called = true; });
  EXPECT_FALSE(waiter_called);
  EXPECT_EQ(runtime().stats().queued, 1u);
  EXPECT_EQ(runtime().stats().running, 1u);

  ASSERT_OK_AND_ASSIGN(store::ExecutionRow cancelled, runtime().Cancel(second, "bob"));
  EXPECT_TRUE(waiter_called) << "a waiter on a cancelled pending execution was left waiting";
  EXPECT_EQ(cancelled.status, "cancelled");
  ASSERT_TRUE(cancelled.error.has_value());
  EXPECT_THAT(*cancelled.error, HasSubstr("bob"));
  EXPECT_TRUE(cancelled.finished_at.has_value());
  EXPECT_FALSE(cancelled.started_at.has_value());
  EXPECT_EQ(Fetch(second).status, "cancelled");
  EXPECT_EQ(runtime().stats().queued, 0u);
  EXPECT_ERROR_CODE(runtime().Cancel(second, "bob"), ErrorCode::kFailedPrecondition);

  // The worker goes on with the rest of the queue; the cancelled one never runs.
  const std::string third = MustStart("quick");
  ASSERT_NO_FATAL_FAILURE(Release(first));
  EXPECT_EQ(WaitDone(first).status, "success");
  const store::ExecutionRow after = WaitDone(third);
  EXPECT_EQ(after.status, "success") << after.error.value_or("");
  EXPECT_THAT(after.logs, HasSubstr("quick ran"));
  const store::ExecutionRow never = Fetch(second);
  EXPECT_EQ(never.status, "cancelled");
  EXPECT_EQ(never.logs, "");
}

// ---- Start ----

TEST_F(RuntimeTest, QueueLimitIsUnavailable) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\n");
  RuntimeOptions options = Options();
  options.max_concurrent = 1;
  options.max_queued = 1;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));

  const std::string running = MustStart("blocker");
  HomeOf(running);  // taken off the queue
  const std::string queued = MustStart("quick");
  StartRequest request{.workflow = "quick", .org_id = kOrg};
  EXPECT_ERROR_CODE(runtime().Start(request), ErrorCode::kUnavailable);
  ASSERT_OK_AND_ASSIGN(auto refused, store_->Begin(store::TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto listed, refused->ListExecutions(store::ExecutionFilter{}));
  EXPECT_EQ(listed.size(), 2u);  // the refused one left no row
  refused.reset();

  ASSERT_NO_FATAL_FAILURE(Release(running));
  EXPECT_EQ(WaitDone(running).status, "success");
  EXPECT_EQ(WaitDone(queued).status, "success");
  // Room again.
  EXPECT_EQ(WaitDone(MustStart("quick")).status, "success");
}

// max_queued holds however many callers Start at once: with the only worker busy and a
// limit of 1, eight simultaneous Starts queue one execution and refuse the rest.
TEST_F(RuntimeTest, QueueLimitHoldsUnderConcurrentStarts) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\n");
  RuntimeOptions options = Options();
  options.max_concurrent = 1;
  options.max_queued = 1;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  const std::string running = MustStart("blocker");
  HomeOf(running);

  constexpr int kCallers = 8;
  std::atomic<int> ready{0};
  std::atomic<int> accepted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] {
      ++ready;
      while (ready.load() < kCallers) std::this_thread::yield();
      auto started = runtime().Start({.workflow = "quick", .org_id = kOrg});
      if (started) {
        ++accepted;
      } else if (started.error().code() == ErrorCode::kUnavailable) {
        ++refused;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(accepted.load(), 1);
  EXPECT_EQ(refused.load(), kCallers - 1);
  EXPECT_LE(runtime().stats().queued, 1u);

  ASSERT_NO_FATAL_FAILURE(Release(running));
  EXPECT_EQ(WaitDone(running).status, "success");
}

TEST_F(RuntimeTest, StartOfUnknownWorkflowOrOrgIsNotFound) {
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  EXPECT_ERROR_CODE(runtime().Start({.workflow = "nope", .org_id = kOrg}), ErrorCode::kNotFound);
  EXPECT_ERROR_CODE(runtime().Start({.workflow = "quick", .org_id = kUnknownId}),
                    ErrorCode::kNotFound);
  EXPECT_ERROR_CODE(runtime().Start({.workflow = "", .org_id = kOrg}), ErrorCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(auto listed, txn->ListExecutions(store::ExecutionFilter{}));
  EXPECT_TRUE(listed.empty());
  txn.reset();
  EXPECT_EQ(runtime().stats().queued, 0u);
  EXPECT_EQ(runtime().stats().running, 0u);
}

TEST_F(RuntimeTest, BeforeCommitHookErrorLeavesNoExecution) {
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  std::string seen;
  auto refused = runtime().Start({.workflow = "quick", .org_id = kOrg},
                                 [&](store::Txn&, const store::ExecutionRow& row) -> Status {
                                   seen = row.id;
                                   return Fail(ErrorCode::kUnavailable, "audit log is full");
                                 });
  EXPECT_ERROR_CODE(refused, ErrorCode::kUnavailable);
  EXPECT_FALSE(seen.empty());
  auto row = runtime().Get(seen);
  ASSERT_TRUE(row.has_value());
  EXPECT_FALSE(row->has_value());
  EXPECT_EQ(runtime().stats().queued, 0u);
  EXPECT_EQ(runtime().stats().running, 0u);
}

// ---- What the child sees ----

TEST_F(RuntimeTest, ChildGetsExactlyTheDocumentedEnvironment) {
  // /proc/$$/environ is the environment the runtime gave the shell (`env` would add the
  // shell's own PWD). The token itself is redacted from the logs, so it is also printed
  // with ':' after each character, a form the redactor does not know.
  std::string body = "cat >/dev/null\n";
  body += AnnounceHome();
  body +=
      "echo \"uid=$(id -u)\"\n"
      "echo '--env--'\n"
      "tr '\\0' '\\n' < /proc/$$/environ\n"
      "echo '--end--'\n"
      "printf 'spelled=%s\\n' \"$(printf '%s' \"$BIFROST_TOKEN\" | sed 's/./&:/g')\"\n";
  body += WaitForFile("go");
  AddScript("env.sh", R"({"name":"env","timeout_seconds":30})", body);
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  runtime().SetApiAddress("http://127.0.0.1:9999");

  const std::string id = MustStart("env");
  const std::string home = HomeOf(id);
  const store::ExecutionRow live = WaitForLogs(id, "spelled=");
  EXPECT_EQ(live.status, "running");

  // The token, while the execution runs.
  const auto at = live.logs.find("spelled=");
  ASSERT_NE(at, std::string::npos);
  std::string token;
  for (std::size_t i = at + 8; i < live.logs.size() && live.logs[i] != '\n'; ++i) {
    if (live.logs[i] != ':') token += live.logs[i];
  }
  EXPECT_THAT(token, StartsWith("bfx_"));
  const std::optional<auth::Principal> principal = tokens_.Lookup(token);
  ASSERT_TRUE(principal.has_value()) << "the execution token does not work while it runs";
  EXPECT_EQ(principal->role, auth::Role::kWorkflow);
  EXPECT_EQ(principal->execution_id, std::optional<std::string>(id));
  EXPECT_EQ(principal->org_id, std::optional<std::string>(kOrg));
  EXPECT_EQ(tokens_.size(), 1u);

  ASSERT_NO_FATAL_FAILURE(Release(id));
  const store::ExecutionRow row = WaitDone(id);
  EXPECT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;

  // Revoked once the execution has ended.
  EXPECT_FALSE(tokens_.Lookup(token).has_value());
  EXPECT_EQ(tokens_.size(), 0u);
  // Never stored in clear.
  EXPECT_THAT(row.logs, Not(HasSubstr(token)));

  std::map<std::string, std::string> env;
  const auto begin = row.logs.find("--env--\n");
  const auto end = row.logs.find("--end--\n");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  std::string_view block = std::string_view(row.logs).substr(begin + 8, end - begin - 8);
  while (!block.empty()) {
    const auto newline = block.find('\n');
    const std::string_view line = block.substr(0, newline);
    const auto equals = line.find('=');
    ASSERT_NE(equals, std::string_view::npos) << line;
    env[std::string(line.substr(0, equals))] = std::string(line.substr(equals + 1));
    block = newline == std::string_view::npos ? std::string_view() : block.substr(newline + 1);
  }
  std::set<std::string> names;
  for (const auto& [name, value] : env) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"BIFROST_ADDR", "BIFROST_EXECUTION_ID", "BIFROST_ORG_ID",
                                          "BIFROST_ORG_NAME", "BIFROST_RESULT_FD", "BIFROST_TOKEN",
                                          "BIFROST_WORKFLOW", "HOME", "LANG", "PATH", "TMPDIR"}));
  EXPECT_EQ(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(env["LANG"], "C.UTF-8");
  EXPECT_EQ(env["BIFROST_ADDR"], "http://127.0.0.1:9999");
  EXPECT_EQ(env["BIFROST_TOKEN"], "[REDACTED]");
  EXPECT_EQ(env["BIFROST_EXECUTION_ID"], id);
  EXPECT_EQ(env["BIFROST_WORKFLOW"], "env");
  EXPECT_EQ(env["BIFROST_ORG_ID"], kOrg);
  EXPECT_EQ(env["BIFROST_ORG_NAME"], kOrgName);
  EXPECT_EQ(env["BIFROST_RESULT_FD"], "3");
  EXPECT_EQ(env["HOME"], home);
  EXPECT_EQ(env["TMPDIR"], home);
  EXPECT_THAT(home, StartsWith(work_root_ + "/"));

  // The HOME directory is gone once the execution has ended.
  EXPECT_FALSE(Exists(home)) << home;
  EXPECT_TRUE(EntriesStartingWith(work_root_, "bifrost-exec-").empty());

  if (::geteuid() == 0) {
    ASSERT_OK_AND_ASSIGN(const UserIds nobody, LookupUser("nobody"));
    std::string uid_line = "uid=";
    uid_line += std::to_string(nobody.uid);
    uid_line += "\n";
    EXPECT_THAT(row.logs, HasSubstr(uid_line)) << "the workflow did not run as nobody";
  }
}

TEST_F(RuntimeTest, CaFileIsPassedWhenSet) {
  const std::string ca = root_.path() + "/ca.pem";
  {
    std::ofstream out(ca);
    out << "not really a certificate\n";
  }
  ASSERT_EQ(::chmod(ca.c_str(), 0644), 0);
  AddScript("ca.sh", R"({"name":"ca"})",
            "cat >/dev/null\necho \"cacert=$BIFROST_CACERT\"\n"
            "head -c 10 \"$BIFROST_CACERT\"; echo\n");
  RuntimeOptions options = Options();
  options.ca_file = ca;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  const store::ExecutionRow row = WaitDone(MustStart("ca"));
  EXPECT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;
  std::string expected = "cacert=";
  expected += ca;
  expected += "\n";
  EXPECT_THAT(row.logs, HasSubstr(expected));
  // Readable inside the sandbox.
  EXPECT_THAT(row.logs, HasSubstr("not really"));
}

// With run_as_user "" a root server keeps its own user for the workflows. Needed here to
// check that the option does what it says (the uid the child reports).
TEST_F(RuntimeTest, EmptyRunAsUserKeepsTheServersUser) {
  AddScript("whoami.sh", R"({"name":"whoami"})", "cat >/dev/null\necho \"uid=$(id -u)\"\n");
  RuntimeOptions options = Options();
  options.run_as_user = "";
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  const store::ExecutionRow row = WaitDone(MustStart("whoami"));
  EXPECT_EQ(row.status, "success") << row.error.value_or("");
  std::string expected = "uid=";
  expected += std::to_string(::geteuid());
  expected += "\n";
  EXPECT_THAT(row.logs, HasSubstr(expected));
}

TEST_F(RuntimeTest, NothingToConfineWorkflowsIsRefusedUnlessAllowed) {
  AddScript("whoami.sh", R"({"name":"whoami"})", "cat >/dev/null\n");
  RuntimeOptions options = Options();
  options.run_as_user = "";  // the server's own user ...
  options.landlock = false;  // ... and no Landlock: nothing between workflows and the data
  auto refused = Runtime::Create(options, *store_, tokens_, clock_, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(refused.error().message(), HasSubstr("--workflow-allow-unconfined"));
  options.allow_unconfined = true;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  EXPECT_EQ(WaitDone(MustStart("whoami")).status, "success");
}

TEST_F(RuntimeTest, ADataDirectoryWorkflowsCouldReadIsRefused) {
  if (LandlockAbi() == 0) GTEST_SKIP() << "without Landlock there is no read list to check";
  RuntimeOptions options = Options();
  options.protected_paths = {workflows_dir_ + "/data"};  // inside the workflows directory
  auto refused = Runtime::Create(options, *store_, tokens_, clock_, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(refused.error().message(), HasSubstr("which workflows may read"));
  options.protected_paths = {"/opt/bifrost/secret-key"};  // a system path workflows read
  EXPECT_FALSE(Runtime::Create(options, *store_, tokens_, clock_, {}).has_value());
  options.protected_paths = {root_.path() + "/data", ""};  // beside it: fine
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
}

// Landlock confines the file system beyond the user's permissions: a world-readable file
// outside the allowed paths cannot be opened, while the workflows directory and the
// execution's own directory can. Run both as "nobody" and as root (run_as_user ""), where
// Landlock is the only thing that stops the read.
TEST_F(RuntimeTest, LandlockConfinesTheFileSystem) {
  if (LandlockAbi() == 0) GTEST_SKIP() << "this kernel has no Landlock";
  const std::string outside = root_.path() + "/outside.txt";
  {
    std::ofstream out(outside);
    out << "outside-content\n";
  }
  ASSERT_EQ(::chmod(outside.c_str(), 0644), 0);
  WriteFile("inside.txt", "inside-content\n", 0644);
  std::string body = "cat >/dev/null\n";
  body += "cat '";
  body += outside;
  body += "' 2>/dev/null || echo outside-denied\n";
  body += "cat '";
  body += workflows_dir_;
  body += "/inside.txt'\n";
  body += "echo mine > \"$HOME/f\" && cat \"$HOME/f\"\n";
  AddScript("peek.sh", R"({"name":"peek"})", body);
  for (const std::string user : {"nobody", ""}) {
    SCOPED_TRACE(user);
    RuntimeOptions options = Options();
    options.run_as_user = user;
    ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
    const store::ExecutionRow row = WaitDone(MustStart("peek"));
    EXPECT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;
    EXPECT_THAT(row.logs, HasSubstr("outside-denied"));
    EXPECT_THAT(row.logs, Not(HasSubstr("outside-content")));
    EXPECT_THAT(row.logs, HasSubstr("inside-content"));
    EXPECT_THAT(row.logs, HasSubstr("mine"));
    runtime_.reset();
  }
}

TEST_F(RuntimeTest, UnknownRunAsUserIsRefusedWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "run_as_user is ignored when not root";
  RuntimeOptions options = Options();
  options.run_as_user = "no-such-user-bifrost";
  auto created = Runtime::Create(options, *store_, tokens_, clock_, {});
  EXPECT_ERROR_CODE(created, ErrorCode::kNotFound);
}

TEST_F(RuntimeTest, PythonWorkflowsRunWithTheSdk) {
  WriteFile("flows.py",
            "import os\n"
            "from bifrost import workflow\n"
            "\n"
            "@workflow(name='py_hello', timeout_seconds=30)\n"
            "async def py_hello(context, who):\n"
            "    print('hello', who)\n"
            "    return {'env': sorted(os.environ), 'org': context.org_name,\n"
            "            'id': context.execution_id, 'who': who,\n"
            "            'sdk': os.environ.get('PYTHONPATH')}\n"
            "\n"
            "@workflow(name='py_fail')\n"
            "def py_fail(context):\n"
            "    raise ValueError('boom')\n",
            0644);
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));

  const std::string id = MustStart("py_hello", R"({"who":"world"})");
  const store::ExecutionRow row = WaitDone(id);
  ASSERT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;
  EXPECT_THAT(row.logs, HasSubstr("hello world"));
  const Json result = Json::parse(*row.result);
  EXPECT_EQ(result["org"], kOrgName);
  EXPECT_EQ(result["id"], id);
  EXPECT_EQ(result["who"], "world");
  EXPECT_EQ(result["env"],
            Json({"BIFROST_ADDR", "BIFROST_EXECUTION_ID", "BIFROST_ORG_ID", "BIFROST_ORG_NAME",
                  "BIFROST_RESULT_FD", "BIFROST_TOKEN", "BIFROST_WORKFLOW", "HOME", "LANG", "PATH",
                  "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONUNBUFFERED", "TMPDIR"}));
  ASSERT_TRUE(result["sdk"].is_string());
  EXPECT_THAT(result["sdk"].get<std::string>(), StartsWith(work_root_ + "/"));

  const store::ExecutionRow failed = WaitDone(MustStart("py_fail"));
  EXPECT_EQ(failed.status, "failed");
  EXPECT_EQ(failed.error, std::optional<std::string>("ValueError: boom"));
  EXPECT_THAT(failed.logs, HasSubstr("Traceback"));
}

// ---- Redaction and logs ----

TEST_F(RuntimeTest, NotedSecretIsRedactedFromLogsResultAndError) {
  constexpr std::string_view kSecret = "Tr0ub4dor-and-3";
  std::string leak = "cat >/dev/null\n";
  leak += AnnounceHome();
  leak += WaitForFile("go");
  leak += "echo \"the value is Tr0ub4dor-and-3.\"\n";
  leak += WaitForFile("go2");
  leak += "echo '{\"status\":\"success\",\"result\":{\"leak\":\"Tr0ub4dor-and-3\",\"n\":1}}' >&3\n";
  AddScript("leak.sh", R"({"name":"leak","timeout_seconds":30})", leak);
  std::string fail = "cat >/dev/null\n";
  fail += AnnounceHome();
  fail += WaitForFile("go");
  fail += "echo \"printing Tr0ub4dor-and-3\" >&2\n";
  fail += "echo '{\"status\":\"failed\",\"error\":\"rejected Tr0ub4dor-and-3\"}' >&3\n";
  AddScript("leakfail.sh", R"({"name":"leakfail","timeout_seconds":30})", fail);
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));

  const std::string id = MustStart("leak");
  runtime().NoteSecret(id, kSecret);  // before it prints anything (it waits for "go")
  ASSERT_NO_FATAL_FAILURE(Release(id, "go"));
  // Live logs are redacted too.
  const store::ExecutionRow live = WaitForLogs(id, "the value is");
  EXPECT_EQ(live.status, "running");
  EXPECT_THAT(live.logs, HasSubstr("the value is [REDACTED]."));
  EXPECT_THAT(live.logs, Not(HasSubstr(kSecret)));
  ASSERT_NO_FATAL_FAILURE(Release(id, "go2"));
  const store::ExecutionRow row = WaitDone(id);
  EXPECT_EQ(row.status, "success") << row.error.value_or("");
  EXPECT_THAT(row.logs, HasSubstr("the value is [REDACTED]."));
  EXPECT_THAT(row.logs, Not(HasSubstr(kSecret)));
  ASSERT_TRUE(row.result.has_value());
  EXPECT_EQ(Json::parse(*row.result), Json({{"leak", "[REDACTED]"}, {"n", 1}}));

  const std::string failing = MustStart("leakfail");
  runtime().NoteSecret(failing, kSecret);
  ASSERT_NO_FATAL_FAILURE(Release(failing));
  const store::ExecutionRow failed = WaitDone(failing);
  EXPECT_EQ(failed.status, "failed");
  EXPECT_EQ(failed.error, std::optional<std::string>("rejected [REDACTED]"));
  EXPECT_THAT(failed.logs, HasSubstr("printing [REDACTED]"));
  EXPECT_THAT(failed.logs, Not(HasSubstr(kSecret)));

  // No effect (and no crash) for executions that are not running.
  runtime().NoteSecret(failing, "another-secret");
  runtime().NoteSecret(kUnknownId, "another-secret");
}

TEST_F(RuntimeTest, SecretsOfOneExecutionDoNotRedactAnother) {
  AddScript("echo.sh", R"({"name":"echo"})", "cat >/dev/null\necho 'public-value-1234'\n");
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const std::string blocked = MustStart("blocker");
  runtime().NoteSecret(blocked, "public-value-1234");
  const store::ExecutionRow other = WaitDone(MustStart("echo"));
  EXPECT_THAT(other.logs, HasSubstr("public-value-1234"));
  ASSERT_NO_FATAL_FAILURE(Release(blocked));
  EXPECT_EQ(WaitDone(blocked).status, "success");
}

TEST_F(RuntimeTest, LiveLogsThroughGetWhileRunning) {
  std::string body = "cat >/dev/null\n";
  body += AnnounceHome();
  body += "echo line one\necho line one-b >&2\n";
  body += WaitForFile("go");
  body += "echo line two\n";
  AddScript("chatty.sh", R"({"name":"chatty","timeout_seconds":30})", body);
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const std::string id = MustStart("chatty");
  const store::ExecutionRow live = WaitForLogs(id, "line one-b");
  EXPECT_EQ(live.status, "running");
  EXPECT_THAT(live.logs, HasSubstr("line one\n"));
  EXPECT_THAT(live.logs, Not(HasSubstr("line two")));
  EXPECT_FALSE(live.finished_at.has_value());
  // The store itself holds no logs until the end.
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kRead));
    ASSERT_OK_AND_ASSIGN(auto stored, txn->GetExecution(id));
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->logs, "");
  }
  ASSERT_NO_FATAL_FAILURE(Release(id));
  const store::ExecutionRow row = WaitDone(id);
  EXPECT_EQ(row.status, "success");
  EXPECT_THAT(row.logs, HasSubstr("line one\n"));
  EXPECT_THAT(row.logs, HasSubstr("line one-b\n"));
  EXPECT_THAT(row.logs, HasSubstr("line two\n"));
}

TEST_F(RuntimeTest, LogsAreCutAtTheLimit) {
  // 100 lines of 50 bytes: 5000 bytes against a limit of 1000.
  AddScript("noisy.sh", R"({"name":"noisy"})",
            "cat >/dev/null\n"
            "i=0\n"
            "while [ $i -lt 100 ]; do\n"
            "  echo \"line $i 0123456789012345678901234567890123456789\" | cut -c1-49\n"
            "  i=$((i+1))\n"
            "done\n"
            "echo '{\"status\":\"success\",\"result\":\"done\"}' >&3\n");
  AddScript("terse.sh", R"({"name":"terse"})", "cat >/dev/null\necho short\n");
  RuntimeOptions options = Options();
  options.max_log_bytes = 1000;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));

  const store::ExecutionRow row = WaitDone(MustStart("noisy"));
  EXPECT_EQ(row.status, "success") << row.error.value_or("");
  EXPECT_EQ(row.result, std::optional<std::string>("\"done\""));
  EXPECT_TRUE(row.logs_truncated);
  EXPECT_LE(row.logs.size(), 1000u);
  EXPECT_GE(row.logs.size(), 900u);
  EXPECT_THAT(row.logs, StartsWith("line 0 0123"));
  EXPECT_THAT(row.logs, Not(HasSubstr("line 99 ")));

  const store::ExecutionRow terse = WaitDone(MustStart("terse"));
  EXPECT_FALSE(terse.logs_truncated);
  EXPECT_EQ(terse.logs, "short\n");
}

// ---- WhenFinished ----

TEST_F(RuntimeTest, WhenFinishedCalledAtOnceForUnknownOrFinished) {
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  bool called = false;
  runtime().WhenFinished(kUnknownId, SteadyClock::now() + 1h, [&] { called = true; });
  EXPECT_TRUE(called);

  const std::string id = MustStart("quick");
  WaitDone(id);
  // The row is final a moment before the execution leaves the active set: allow for it.
  const auto give_up = SteadyClock::now() + 10s;
  bool at_once = false;
  while (!at_once && SteadyClock::now() < give_up) {
    std::atomic<bool> done{false};
    runtime().WhenFinished(id, SteadyClock::now() + 1h, [&] { done = true; });
    at_once = done.load();
    if (!at_once) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(at_once);
}

TEST_F(RuntimeTest, WhenFinishedCalledWhenTheExecutionFinishes) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const std::string id = MustStart("blocker");
  HomeOf(id);

  std::promise<std::string> status_then;
  runtime().WhenFinished(id, SteadyClock::now() + 1h, [&] {
    auto row = runtime().Get(id);
    status_then.set_value(row && row->has_value() ? (*row)->status : "?");
  });
  auto future = status_then.get_future();
  EXPECT_EQ(future.wait_for(200ms), std::future_status::timeout);
  ASSERT_NO_FATAL_FAILURE(Release(id));
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  // Called after the final row was stored.
  EXPECT_EQ(future.get(), "success");
}

TEST_F(RuntimeTest, WhenFinishedCalledAtItsDeadline) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const std::string id = MustStart("blocker");
  HomeOf(id);

  const auto deadline = SteadyClock::now() + 300ms;
  std::promise<SteadyClock::time_point> called_at;
  runtime().WhenFinished(id, deadline, [&] { called_at.set_value(SteadyClock::now()); });
  // A later waiter with an earlier deadline is served first, without delaying the other.
  const auto early = SteadyClock::now() + 100ms;
  std::promise<SteadyClock::time_point> early_at;
  runtime().WhenFinished(id, early, [&] { early_at.set_value(SteadyClock::now()); });

  auto future = called_at.get_future();
  auto early_future = early_at.get_future();
  ASSERT_EQ(early_future.wait_for(30s), std::future_status::ready);
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  EXPECT_GE(future.get(), deadline);
  EXPECT_GE(early_future.get(), early);
  EXPECT_EQ(Fetch(id).status, "running");  // the execution itself goes on

  ASSERT_NO_FATAL_FAILURE(Release(id));
  EXPECT_EQ(WaitDone(id).status, "success");
}

TEST_F(RuntimeTest, WaitersPastTheLimitAreCalledAtOnce) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const std::string id = MustStart("blocker");
  HomeOf(id);
  constexpr int kLimit = 10'000;  // runtime.cc's kMaxWaiters
  std::atomic<int> called{0};
  for (int i = 0; i < kLimit; ++i) {
    runtime().WhenFinished(id, SteadyClock::now() + 1h, [&] { ++called; });
  }
  EXPECT_EQ(called.load(), 0);
  bool at_once = false;
  runtime().WhenFinished(id, SteadyClock::now() + 1h, [&] { at_once = true; });
  EXPECT_TRUE(at_once);
  ASSERT_NO_FATAL_FAILURE(Release(id));
  EXPECT_EQ(WaitDone(id).status, "success");
  const auto give_up = SteadyClock::now() + 30s;
  while (called.load() < kLimit && SteadyClock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(called.load(), kLimit);
}

TEST_F(RuntimeTest, WorkflowFileRemovedAfterLoadingIsFailed) {
  AddScript("gone.sh", R"({"name":"gone"})", "cat >/dev/null\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  ASSERT_EQ(::unlink((workflows_dir_ + "/gone.sh").c_str()), 0);
  const store::ExecutionRow row = WaitDone(MustStart("gone"));
  EXPECT_EQ(row.status, "failed");
  ASSERT_TRUE(row.error.has_value());
  EXPECT_THAT(*row.error, HasSubstr("gone.sh"));
  EXPECT_TRUE(EntriesStartingWith(work_root_, "bifrost-exec-").empty());
  EXPECT_EQ(tokens_.size(), 0u);
}

// ---- Shutdown and startup ----

TEST_F(RuntimeTest, ShutdownCancelsRunningAndPendingExecutions) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  RuntimeOptions options = Options();
  options.max_concurrent = 1;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  const std::string running = MustStart("blocker");
  const std::string home = HomeOf(running);
  const std::string pending = MustStart("blocker");
  EXPECT_EQ(Fetch(pending).status, "pending");

  std::atomic<int> waiters_called{0};
  runtime().WhenFinished(running, SteadyClock::now() + 1h, [&] { ++waiters_called; });
  runtime().WhenFinished(pending, SteadyClock::now() + 1h, [&] { ++waiters_called; });

  auto stopped = std::async(std::launch::async, [&] { runtime().Shutdown(); });
  ASSERT_EQ(stopped.wait_for(30s), std::future_status::ready) << "Shutdown() did not return";
  stopped.get();
  EXPECT_EQ(waiters_called.load(), 2);

  const store::ExecutionRow ran = Fetch(running);
  EXPECT_EQ(ran.status, "cancelled");
  ASSERT_TRUE(ran.error.has_value());
  EXPECT_THAT(*ran.error, HasSubstr("server"));
  EXPECT_TRUE(ran.finished_at.has_value());
  EXPECT_FALSE(Exists(home)) << home;

  const store::ExecutionRow waited = Fetch(pending);
  EXPECT_EQ(waited.status, "cancelled");
  ASSERT_TRUE(waited.error.has_value());
  EXPECT_THAT(*waited.error, HasSubstr("server"));
  EXPECT_TRUE(waited.finished_at.has_value());
  EXPECT_EQ(tokens_.size(), 0u);

  // Stopped for good.
  EXPECT_ERROR_CODE(runtime().Start({.workflow = "blocker", .org_id = kOrg}),
                    ErrorCode::kUnavailable);
  bool called = false;
  runtime().WhenFinished(running, SteadyClock::now() + 1h, [&] { called = true; });
  EXPECT_TRUE(called);
  runtime().Shutdown();  // idempotent
}

TEST_F(RuntimeTest, CreateFailsExecutionsLeftUnfinished) {
  const std::string left_running = "6f1c2d3e-4b5a-4c6d-8e7f-00000000b001";
  const std::string left_pending = "6f1c2d3e-4b5a-4c6d-8e7f-00000000b002";
  const std::string finished = "6f1c2d3e-4b5a-4c6d-8e7f-00000000b003";
  const UnixMicros then = clock_.NowMicros() - 60'000'000;
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    for (const auto& [id, status] :
         {std::pair{left_running, "running"}, std::pair{left_pending, "pending"},
          std::pair{finished, "success"}}) {
      store::ExecutionRow row;
      row.id = id;
      row.workflow = "old";
      row.org_id = kOrg;
      row.caller_id = "caller-1";
      row.caller_name = "ops";
      row.status = status;
      row.parameters = "{}";
      row.timeout_seconds = 60;
      row.created_at = then;
      if (std::string_view(status) != "pending") row.started_at = then;
      if (std::string_view(status) == "success") {
        row.finished_at = then;
        row.result.emplace("1");
      }
      ASSERT_OK(txn->InsertExecution(row));
    }
    ASSERT_OK(txn->Commit());
  }
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));

  for (const std::string& id : {left_running, left_pending}) {
    const store::ExecutionRow row = Fetch(id);
    EXPECT_EQ(row.status, "failed") << id;
    ASSERT_TRUE(row.error.has_value()) << id;
    EXPECT_THAT(*row.error, HasSubstr("server stopped")) << id;
    ASSERT_TRUE(row.finished_at.has_value()) << id;
    EXPECT_GT(*row.finished_at, then) << id;
  }
  const store::ExecutionRow untouched = Fetch(finished);
  EXPECT_EQ(untouched.status, "success");
  EXPECT_EQ(untouched.result, std::optional<std::string>("1"));
  EXPECT_FALSE(untouched.error.has_value());

  bool warned = false;
  for (const LogLine& line : LogLines()) {
    if (line.level == "warn" && line.fields.contains("count")) {
      warned = true;
      EXPECT_EQ(line.fields.at("count"), "2");
    }
  }
  EXPECT_TRUE(warned) << "no warning about the executions left unfinished";
}

// ---- Several nodes on one store ----

// Options of a node that shares its store with others: short intervals, so that the tests
// see heartbeats and cancel requests quickly, and a node is taken for dead only when a
// test makes its heartbeat old.
RuntimeOptions SharedOptions(RuntimeOptions options) {
  options.shared_store = true;
  options.heartbeat_interval = 50ms;
  options.orphan_after = 60s;
  options.poll_interval = 20ms;
  return options;
}

// Polls `done` until it holds; a test failure (with `what`) after `limit`.
template <typename Predicate>
bool WaitUntil(Predicate done, std::string_view what, std::chrono::seconds limit = 30s) {
  const auto give_up = SteadyClock::now() + limit;
  while (!done()) {
    if (SteadyClock::now() > give_up) {
      ADD_FAILURE() << "still not true after " << limit.count() << " s: " << what;
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

class RuntimeNodesTest : public RuntimeTest {
 protected:
  std::vector<store::NodeRow> Nodes() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn.has_value()) << txn.error().ToString();
    if (!txn) return {};
    auto nodes = (*txn)->ListNodes();
    EXPECT_TRUE(nodes.has_value()) << nodes.error().ToString();
    return nodes ? std::move(*nodes) : std::vector<store::NodeRow>{};
  }

  std::optional<store::NodeRow> Node(std::string_view id) {
    for (store::NodeRow& node : Nodes()) {
      if (node.id == id) return std::move(node);
    }
    return std::nullopt;
  }

  // A node row as another server process writes it (its heartbeat at `heartbeat_at`).
  void PutNode(const std::string& id, UnixMicros heartbeat_at) {
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK(txn->UpsertNode({.id = id,
                               .name = "other-host:8420",
                               .started_at = heartbeat_at - 1'000'000,
                               .heartbeat_at = heartbeat_at}));
    ASSERT_OK(txn->Commit());
  }

  // An unfinished execution of node `node_id`, as another server process inserts it.
  void PutExecution(const std::string& id, const std::string& status, const std::string& node_id) {
    store::ExecutionRow row;
    row.id = id;
    row.workflow = "elsewhere";
    row.org_id = kOrg;
    row.caller_id = "caller-1";
    row.caller_name = "ops";
    row.status = status;
    row.parameters = "{}";
    row.timeout_seconds = 60;
    row.created_at = clock_.NowMicros() - 1'000'000;
    if (status == "running") row.started_at = row.created_at;
    row.node_id = node_id;
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK(txn->InsertExecution(row));
    ASSERT_OK(txn->Commit());
  }

  store::ExecutionRow Stored(std::string_view id) {
    auto txn = store_->Begin(store::TxnMode::kRead);
    EXPECT_TRUE(txn.has_value()) << txn.error().ToString();
    if (!txn) return {};
    auto row = (*txn)->GetExecution(id);
    EXPECT_TRUE(row.has_value() && row->has_value()) << "no execution " << id;
    return row && row->has_value() ? std::move(**row) : store::ExecutionRow{};
  }

  // Waits until node `id` has written `beats` more heartbeats; each of the node's sweeps of
  // dead nodes follows a heartbeat, so by then it has swept at least beats - 1 times.
  void WaitForHeartbeats(const std::string& id, int beats) {
    std::optional<store::NodeRow> node = Node(id);
    ASSERT_TRUE(node.has_value()) << "node " << id << " is not registered";
    UnixMicros last = node->heartbeat_at;
    for (int i = 0; i < beats; ++i) {
      ASSERT_TRUE(WaitUntil(
          [&] {
            const auto now = Node(id);
            return now.has_value() && now->heartbeat_at > last;
          },
          "the node's heartbeat moves on"));
      last = Node(id)->heartbeat_at;
    }
  }

  bool Logged(std::string_view level, std::string_view part_of_message) {
    for (const LogLine& line : LogLines()) {
      if (line.level == level && line.message.find(part_of_message) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
};

TEST_F(RuntimeNodesTest, NodeIsRegisteredStampedOnItsExecutionsAndRemovedWhenItStops) {
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\n");
  RuntimeOptions options = SharedOptions(Options());
  options.node_name = "node-a.example:8420";
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));

  const std::vector<store::NodeRow> nodes = Nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].id, runtime().node_id());
  EXPECT_EQ(nodes[0].id.size(), 36u);
  EXPECT_EQ(nodes[0].name, "node-a.example:8420");
  EXPECT_GT(nodes[0].started_at, 0);
  EXPECT_GE(nodes[0].heartbeat_at, nodes[0].started_at);

  const std::string id = MustStart("quick");
  EXPECT_EQ(Stored(id).node_id, runtime().node_id());
  EXPECT_EQ(WaitDone(id).status, "success");
  ASSERT_NO_FATAL_FAILURE(WaitForHeartbeats(runtime().node_id(), 2));

  // A node without a name is known by its host's; every start is a new node.
  RuntimeOptions unnamed = SharedOptions(Options());
  Runtime* other = AddNode(unnamed);
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other->node_id(), runtime().node_id());
  const std::optional<store::NodeRow> other_row = Node(other->node_id());
  ASSERT_TRUE(other_row.has_value());
  EXPECT_FALSE(other_row->name.empty());

  runtime_.reset();
  const std::vector<store::NodeRow> left = Nodes();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, other->node_id());
}

TEST_F(RuntimeNodesTest, ANewNodeLeavesTheExecutionsOfLiveNodesRunning) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(SharedOptions(Options())));
  const std::string id = MustStart("blocker");
  HomeOf(id);

  Runtime* second = AddNode(SharedOptions(Options()));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(Nodes().size(), 2u);
  // Several heartbeats of the second node later (each followed by its sweep of dead
  // nodes), the first node's execution still runs.
  ASSERT_NO_FATAL_FAILURE(WaitForHeartbeats(second->node_id(), 3));
  const store::ExecutionRow seen = Stored(id);
  EXPECT_EQ(seen.status, "running");
  EXPECT_EQ(seen.node_id, runtime().node_id());
  ASSERT_OK_AND_ASSIGN(const auto through_second, second->Get(id));
  ASSERT_TRUE(through_second.has_value());
  EXPECT_EQ(through_second->status, "running");

  ASSERT_NO_FATAL_FAILURE(Release(id));
  const store::ExecutionRow done = WaitDone(id);
  EXPECT_EQ(done.status, "success") << done.error.value_or("");
  EXPECT_EQ(done.result, std::optional<std::string>("\"released\""));
}

TEST_F(RuntimeNodesTest, ExecutionsOfANodeThatStoppedHeartbeatingAreFailed) {
  const std::string live_node = "6f1c2d3e-4b5a-4c6d-8e7f-00000000c001";
  const std::string dead_node = "6f1c2d3e-4b5a-4c6d-8e7f-00000000c002";
  const std::string on_live_running = "6f1c2d3e-4b5a-4c6d-8e7f-00000000d001";
  const std::string on_live_pending = "6f1c2d3e-4b5a-4c6d-8e7f-00000000d002";
  const std::string on_dead = "6f1c2d3e-4b5a-4c6d-8e7f-00000000d003";
  const std::string on_no_node = "6f1c2d3e-4b5a-4c6d-8e7f-00000000d004";
  const std::string on_vanished_node = "6f1c2d3e-4b5a-4c6d-8e7f-00000000d005";
  ASSERT_NO_FATAL_FAILURE(PutNode(live_node, clock_.NowMicros()));
  ASSERT_NO_FATAL_FAILURE(PutNode(dead_node, clock_.NowMicros() - 120'000'000));
  ASSERT_NO_FATAL_FAILURE(PutExecution(on_live_running, "running", live_node));
  ASSERT_NO_FATAL_FAILURE(PutExecution(on_live_pending, "pending", live_node));
  ASSERT_NO_FATAL_FAILURE(PutExecution(on_dead, "running", dead_node));
  ASSERT_NO_FATAL_FAILURE(PutExecution(on_no_node, "running", ""));
  ASSERT_NO_FATAL_FAILURE(
      PutExecution(on_vanished_node, "pending", "6f1c2d3e-4b5a-4c6d-8e7f-00000000c003"));

  ASSERT_NO_FATAL_FAILURE(CreateRuntime(SharedOptions(Options())));
  // At start: what nothing can finish any more (a node long silent, a row from before
  // nodes, a node that left no row) is failed at once; the live node's are not.
  for (const std::string& id : {on_dead, on_no_node, on_vanished_node}) {
    const store::ExecutionRow row = Stored(id);
    EXPECT_EQ(row.status, "failed") << id;
    EXPECT_THAT(row.error.value_or(""), HasSubstr("server node")) << id;
    EXPECT_TRUE(row.finished_at.has_value()) << id;
  }
  EXPECT_EQ(Stored(on_live_running).status, "running");
  EXPECT_EQ(Stored(on_live_pending).status, "pending");
  EXPECT_FALSE(Node(dead_node).has_value()) << "the dead node's row was kept";
  EXPECT_TRUE(Node(live_node).has_value());

  // The live node stops heartbeating: once its last heartbeat is older than orphan_after,
  // the running node's next sweep ends its executions.
  ASSERT_NO_FATAL_FAILURE(PutNode(live_node, clock_.NowMicros() - 61'000'000));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Stored(on_live_running).status == "failed" &&
               Stored(on_live_pending).status == "failed";
      },
      "the silent node's executions are failed"));
  EXPECT_THAT(Stored(on_live_running).error.value_or(""), HasSubstr("stopped before it finished"));
  EXPECT_FALSE(Node(live_node).has_value());
  const std::vector<store::NodeRow> nodes = Nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].id, runtime().node_id());
  EXPECT_TRUE(Logged("warn", "server nodes that stopped"));
}

TEST_F(RuntimeNodesTest, CancelOfARunningExecutionOnAnotherNode) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(SharedOptions(Options())));
  const std::string id = MustStart("blocker");
  const std::string home = HomeOf(id);
  Runtime* other = AddNode(SharedOptions(Options()));
  ASSERT_NE(other, nullptr);

  // A wait on the other node ends when the execution does, though that node does not run it.
  std::atomic<bool> waited{false};
  other->WhenFinished(id, SteadyClock::now() + 1h, [&] { waited = true; });
  EXPECT_FALSE(waited.load());

  ASSERT_OK_AND_ASSIGN(const store::ExecutionRow answered, other->Cancel(id, "alice"));
  EXPECT_EQ(answered.id, id);
  EXPECT_TRUE(answered.status == "running" || answered.status == "cancelled") << answered.status;

  const store::ExecutionRow row = WaitDone(id, 20s);
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_THAT(row.error.value_or(""), HasSubstr("cancelled by alice"));
  EXPECT_EQ(row.cancel_requested_by, std::optional<std::string>("alice"));
  EXPECT_FALSE(row.result.has_value());
  EXPECT_THAT(row.logs, HasSubstr("started"));
  EXPECT_FALSE(Exists(home)) << home;
  EXPECT_TRUE(WaitUntil([&] { return waited.load(); }, "the other node's waiter is called"));

  EXPECT_ERROR_CODE(other->Cancel(id, "alice"), ErrorCode::kFailedPrecondition);
  EXPECT_ERROR_CODE(other->Cancel(kUnknownId, "alice"), ErrorCode::kNotFound);
  EXPECT_ERROR_CODE(other->Cancel("not-an-id", "alice"), ErrorCode::kNotFound);
}

TEST_F(RuntimeNodesTest, CancelOfAPendingExecutionOnAnotherNode) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  AddScript("quick.sh", R"({"name":"quick"})", "cat >/dev/null\necho quick ran\n");
  RuntimeOptions options = SharedOptions(Options());
  options.max_concurrent = 1;
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  const std::string first = MustStart("blocker");
  HomeOf(first);  // the only worker is busy
  const std::string second = MustStart("quick");
  Runtime* other = AddNode(SharedOptions(Options()));
  ASSERT_NE(other, nullptr);

  ASSERT_OK_AND_ASSIGN(const store::ExecutionRow answered, other->Cancel(second, "bob"));
  EXPECT_TRUE(answered.status == "pending" || answered.status == "cancelled") << answered.status;
  const store::ExecutionRow row = WaitDone(second, 20s);
  EXPECT_EQ(row.status, "cancelled");
  EXPECT_THAT(row.error.value_or(""), HasSubstr("cancelled by bob"));
  EXPECT_FALSE(row.started_at.has_value());
  EXPECT_EQ(row.logs, "");
  EXPECT_EQ(runtime().stats().queued, 0u);

  ASSERT_NO_FATAL_FAILURE(Release(first));
  EXPECT_EQ(WaitDone(first).status, "success");
}

TEST_F(RuntimeNodesTest, ANodeTakenForDeadStopsTheExecutionsOthersEnded) {
  AddScript("blocker.sh", kBlockerDescribe, BlockerBody());
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(SharedOptions(Options())));
  const std::string id = MustStart("blocker");
  const std::string home = HomeOf(id);

  // Another node's sweep took this one for dead (its heartbeat was late, say, while the
  // database was unreachable): the execution is failed and the node's row is gone.
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK_AND_ASSIGN(
        const std::int64_t ended,
        txn->FailOrphanedExecutions("the server node running the execution stopped",
                                    clock_.NowMicros(), "6f1c2d3e-4b5a-4c6d-8e7f-00000000c009",
                                    std::numeric_limits<UnixMicros>::max()));
    EXPECT_EQ(ended, 1);
    ASSERT_OK(txn->Commit());
  }

  // The node notices at its next heartbeat, registers again and stops the process; the row
  // keeps what the other node recorded.
  ASSERT_TRUE(WaitUntil([&] { return runtime().stats().running == 0; },
                        "the abandoned execution's process is stopped"));
  EXPECT_FALSE(Exists(home)) << home;
  const store::ExecutionRow row = Stored(id);
  EXPECT_EQ(row.status, "failed");
  EXPECT_THAT(row.error.value_or(""), HasSubstr("stopped"));
  EXPECT_THAT(row.error.value_or(""), Not(HasSubstr("cancelled")));
  EXPECT_TRUE(Node(runtime().node_id()).has_value());
  EXPECT_TRUE(Logged("warn", "took it for stopped"));
  EXPECT_EQ(tokens_.size(), 0u);
}

TEST_F(RuntimeNodesTest, AloneOnItsStoreANodeEndsEveryOtherNodesExecutions) {
  // Without a shared store (SQLite: one server), whatever another node left unfinished is a
  // previous server's, however fresh its heartbeat.
  const std::string other_node = "6f1c2d3e-4b5a-4c6d-8e7f-00000000c001";
  const std::string left = "6f1c2d3e-4b5a-4c6d-8e7f-00000000d001";
  ASSERT_NO_FATAL_FAILURE(PutNode(other_node, clock_.NowMicros()));
  ASSERT_NO_FATAL_FAILURE(PutExecution(left, "running", other_node));
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));

  const store::ExecutionRow row = Stored(left);
  EXPECT_EQ(row.status, "failed");
  EXPECT_THAT(row.error.value_or(""), HasSubstr("server stopped"));
  const std::vector<store::NodeRow> nodes = Nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].id, runtime().node_id());
  EXPECT_TRUE(Logged("warn", "left unfinished by a previous server"));

  // And it asks nobody else to cancel: an execution it does not run is finished or unknown.
  EXPECT_ERROR_CODE(runtime().Cancel(left, "alice"), ErrorCode::kFailedPrecondition);
  runtime_.reset();
  EXPECT_TRUE(Nodes().empty());
}

// Sets environment variables of the test process for its lifetime (the server's own
// environment, which may hold the database URL and master keys).
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(std::vector<std::pair<std::string, std::string>> entries)
      : entries_(std::move(entries)) {
    for (const auto& [name, value] : entries_) ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnvironment() {
    for (const auto& [name, value] : entries_) ::unsetenv(name.c_str());
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

TEST_F(RuntimeTest, WorkflowsInheritNothingFromTheServersEnvironment) {
  // The database URL may carry a password and the keys decrypt everything: neither may reach
  // a workflow, whether it is being described (catalog scan) or run.
  const ScopedEnvironment server_env({
      {"BIFROST_DATABASE_URL", "postgresql://bifrost:env-canary-password@db.invalid/bifrost"},
      {"BIFROST_SECRET_KEY", "env-canary-secret-key"},
      {"BIFROST_SECRET_KEY_PREVIOUS", "env-canary-previous-key"},
      {"BIFROST_SECRET_KEY_FILE", "/nonexistent/env-canary-key-file"},
      {"BIFROST_TEST_SERVER_ONLY", "env-canary-other"},
  });
  WriteFile("envscan.sh",
            "#!/bin/sh\n"
            "names=$(tr '\\0' '\\n' < /proc/$$/environ | cut -d= -f1 | tr '\\n' ' ')\n"
            "if [ \"$1\" = --bifrost-describe ]; then\n"
            "  echo \"{\\\"name\\\":\\\"envscan\\\",\\\"description\\\":\\\"$names\\\"}\"\n"
            "  exit 0\n"
            "fi\n"
            "cat >/dev/null\n"
            "echo \"names=$names\"\n"
            "tr '\\0' '\\n' < /proc/$$/environ\n",
            0755);
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const WorkflowDef* described = runtime().catalog()->Find("envscan");
  ASSERT_NE(described, nullptr);
  EXPECT_THAT(described->description, HasSubstr("PATH"));  // the scan's environment, listed
  const std::string id = MustStart("envscan");
  const store::ExecutionRow row = WaitDone(id);
  EXPECT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;
  EXPECT_THAT(row.logs, HasSubstr("names="));
  EXPECT_THAT(row.logs, HasSubstr("BIFROST_EXECUTION_ID"));
  for (const std::string_view text :
       {std::string_view(described->description), std::string_view(row.logs)}) {
    EXPECT_THAT(text, Not(HasSubstr("BIFROST_DATABASE_URL")));
    EXPECT_THAT(text, Not(HasSubstr("BIFROST_SECRET_KEY")));
    EXPECT_THAT(text, Not(HasSubstr("BIFROST_TEST_SERVER_ONLY")));
    EXPECT_THAT(text, Not(HasSubstr("env-canary")));
  }
}

// ---- Catalog, directories and options ----

TEST_F(RuntimeTest, CatalogLoadsPythonAndExecutablesUnderTheSandboxAndReloads) {
  AddScript("one.sh", R"({"name":"exe_one","description":"the first","timeout_seconds":9})",
            "exit 0\n");
  WriteFile("flows.py",
            "from bifrost import workflow\n"
            "@workflow(name='py_one', description='from python')\n"
            "def py_one(context):\n"
            "    return 1\n",
            0644);
  WriteFile("broken.sh", "#!/bin/sh\nexit 1\n", 0755);
  ASSERT_NO_FATAL_FAILURE([&] {
    auto created = Runtime::Create(Options(), *store_, tokens_, clock_, {});
    ASSERT_TRUE(created.has_value()) << created.error().ToString();
    runtime_ = std::move(*created);
  }());
  EXPECT_TRUE(runtime().enabled());
  std::shared_ptr<const Catalog> catalog = runtime().catalog();
  ASSERT_EQ(catalog->workflows.size(), 2u);
  EXPECT_EQ(catalog->workflows[0].name, "exe_one");
  EXPECT_EQ(catalog->workflows[0].kind, WorkflowDef::Kind::kExecutable);
  EXPECT_EQ(catalog->workflows[0].timeout_seconds, std::optional<std::int64_t>(9));
  EXPECT_EQ(catalog->workflows[1].name, "py_one");
  EXPECT_EQ(catalog->workflows[1].kind, WorkflowDef::Kind::kPython);
  EXPECT_EQ(catalog->workflows[1].function, "py_one");
  ASSERT_EQ(catalog->errors.size(), 1u);
  EXPECT_EQ(catalog->errors[0].file, workflows_dir_ + "/broken.sh");

  AddScript("two.sh", R"({"name":"exe_two"})", "cat >/dev/null\n");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Catalog> reloaded, runtime().Reload());
  EXPECT_EQ(reloaded->workflows.size(), 3u);
  EXPECT_NE(runtime().catalog()->Find("exe_two"), nullptr);
  EXPECT_EQ(catalog->Find("exe_two"), nullptr);  // the old one is unchanged
  EXPECT_EQ(WaitDone(MustStart("exe_two")).status, "success");
  EXPECT_TRUE(EntriesStartingWith(work_root_, "bifrost-scan-").empty());

  // A failed reload keeps the catalog it had.
  std::filesystem::rename(workflows_dir_, workflows_dir_ + ".moved");
  EXPECT_ERROR_CODE(runtime().Reload(), ErrorCode::kNotFound);
  EXPECT_EQ(runtime().catalog(), reloaded);
  std::filesystem::rename(workflows_dir_ + ".moved", workflows_dir_);
}

TEST_F(RuntimeTest, WorkDirectoriesAreRemoved) {
  AddScript("files.sh", R"({"name":"files"})",
            "cat >/dev/null\nmkdir \"$HOME/sub\"\necho data > \"$HOME/sub/file\"\n"
            "echo more > \"$TMPDIR/tmpfile\"\n");
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(Options()));
  const store::ExecutionRow row = WaitDone(MustStart("files"));
  EXPECT_EQ(row.status, "success") << row.error.value_or("") << "\n" << row.logs;
  EXPECT_TRUE(EntriesStartingWith(work_root_, "bifrost-exec-").empty());
  EXPECT_TRUE(EntriesStartingWith(work_root_, "bifrost-scan-").empty());
  EXPECT_EQ(EntriesStartingWith(work_root_, "bifrost-sdk-").size(), 1u);
  runtime_.reset();
  EXPECT_TRUE(EntriesStartingWith(work_root_, "").empty()) << "the SDK directory outlived it";
}

TEST_F(RuntimeTest, WithoutWorkflowsDirectory) {
  RuntimeOptions options = Options();
  options.workflows_dir = "";
  ASSERT_NO_FATAL_FAILURE(CreateRuntime(options));
  EXPECT_FALSE(runtime().enabled());
  EXPECT_TRUE(runtime().catalog()->workflows.empty());
  EXPECT_ERROR_CODE(runtime().Reload(), ErrorCode::kFailedPrecondition);
  EXPECT_ERROR_CODE(runtime().Start({.workflow = "anything", .org_id = kOrg}),
                    ErrorCode::kNotFound);
}

TEST_F(RuntimeTest, MissingWorkflowsDirectoryIsAnEmptyCatalogWithTheError) {
  RuntimeOptions options = Options();
  options.workflows_dir = root_.path() + "/missing";
  auto created = Runtime::Create(options, *store_, tokens_, clock_, {});
  ASSERT_TRUE(created.has_value()) << created.error().ToString();
  runtime_ = std::move(*created);
  EXPECT_TRUE(runtime().catalog()->workflows.empty());
  ASSERT_EQ(runtime().catalog()->errors.size(), 1u);
  EXPECT_EQ(runtime().catalog()->errors[0].file, options.workflows_dir);
}

TEST_F(RuntimeTest, CreateRejectsBadOptions) {
  RuntimeOptions options = Options();
  options.max_concurrent = 0;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  options = Options();
  options.max_concurrent = 257;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  options = Options();
  options.default_timeout_seconds = 0;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  options = Options();
  options.default_timeout_seconds = 100;
  options.max_timeout_seconds = 50;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  // A node must miss at least two heartbeats before others take it for dead.
  options = Options();
  options.shared_store = true;
  options.heartbeat_interval = 5s;
  options.orphan_after = 9s;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  options.heartbeat_interval = 0s;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  options.heartbeat_interval = 1s;
  options.poll_interval = 0s;
  EXPECT_ERROR_CODE(Runtime::Create(options, *store_, tokens_, clock_, {}),
                    ErrorCode::kInvalidArgument);
  // Nothing was registered by the refused ones.
  ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kRead));
  ASSERT_OK_AND_ASSIGN(const auto nodes, txn->ListNodes());
  EXPECT_TRUE(nodes.empty());
}

}  // namespace
}  // namespace bifrost::workflow
