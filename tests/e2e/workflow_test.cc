// Workflows through the real binary (docs/workflows.md): `bifrost serve --workflows DIR`
// runs Python files and executables of DIR for one organization each, as user `nobody`
// under Landlock when the tests run as root. Covered: the documented examples with
// per-organization values and the global fallback, redaction of secrets from logs, results
// and errors (and their absence from the database files and the server's output), the
// sandbox and the execution token, time limits, cancellation, crashes, broken files,
// reloads, the concurrency limit, audit records, the CLI and authorization.
//
// A workflow can hand data back only through its result, its logs or the API (Landlock
// gives it no shared directory), so every probe returns what it found.
#include <linux/landlock.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

namespace fs = std::filesystem;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using testing::TempDir;

// ---------------------------------------------------------------------------------------
// Helpers

std::string SourceDir() {
  const char* env = std::getenv("BIFROST_SOURCE_DIR");
  return env != nullptr ? env : BIFROST_SOURCE_DIR;
}

std::string RandomHex(std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const unsigned value = device() & 0xFFu;
    out += kHex[value >> 4];
    out += kHex[value & 0xFu];
  }
  return out;
}

void WriteFile(const std::string& path, const std::string& text, fs::perms mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
  }
  fs::permissions(path, mode, fs::perm_options::replace);
}

constexpr fs::perms kReadable = fs::perms::owner_read | fs::perms::owner_write |
                                fs::perms::group_read | fs::perms::others_read;  // 0644
constexpr fs::perms kExecutable =
    kReadable | fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;  // 0755

// A temporary directory (0755, so that the workflows' user may enter it) holding the
// workflows directory `dir()` (0755) and other files of the test.
class WorkflowDir {
 public:
  WorkflowDir() : dir_(root_.path() + "/workflows") {
    fs::permissions(root_.path(), kExecutable, fs::perm_options::replace);
    fs::create_directory(dir_);
    fs::permissions(dir_, kExecutable, fs::perm_options::replace);
  }
  const std::string& root() const { return root_.path(); }
  const std::string& dir() const { return dir_; }
  // Adds a workflow file: 0644 for Python, 0755 for an executable.
  void Add(const std::string& name, const std::string& text, bool executable = false) const {
    WriteFile(dir_ + "/" + name, text, executable ? kExecutable : kReadable);
  }

 private:
  TempDir root_;
  std::string dir_;
};

std::vector<std::string> WorkflowArgs(const std::string& dir) {
  return {"--workflows", dir, "--python", "/usr/bin/python3"};
}

bool Finished(const json& execution) {
  if (!execution.is_object() || !execution.contains("status")) return false;
  const std::string status = execution["status"].get<std::string>();
  return status != "pending" && status != "running";
}

std::string Str(const json& object, const char* field) {
  if (!object.is_object()) return "";
  const auto it = object.find(field);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::string RunPath(const std::string& org, const std::string& workflow) {
  return "/api/v1/orgs/" + org + "/workflows/" + workflow + "/executions";
}

// Starts `workflow` for `org` as `token`: the execution's id ("" and a failure if refused).
std::string Start(Api& api, const std::string& token, const std::string& org,
                  const std::string& workflow, const json& parameters = json::object()) {
  Reply r = api.Call("POST", RunPath(org, workflow), token, json{{"parameters", parameters}});
  EXPECT_EQ(r.status, 202) << workflow << ": " << r.body;
  if (r.status != 202) return "";
  EXPECT_EQ(Str(r.json_body, "status"), "pending") << r.body;
  EXPECT_EQ(Str(r.json_body, "workflow"), workflow) << r.body;
  return Str(r.json_body, "id");
}

json GetExecution(Api& api, const std::string& token, const std::string& id) {
  Reply r = api.Call("GET", "/api/v1/executions/" + id, token);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json_body;
}

// The execution once it has finished: long waits on the server, bounded by 180 s in all.
json Await(Api& api, const std::string& token, const std::string& id) {
  if (id.empty()) return json();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  json last;
  while (std::chrono::steady_clock::now() < deadline) {
    Reply r = api.Call("GET", "/api/v1/executions/" + id + "?wait=10", token);
    if (r.status != 200) {
      ADD_FAILURE() << "GET execution " << id << ": " << r.status << " " << r.body;
      return r.json_body;
    }
    last = r.json_body;
    if (Finished(last)) return last;
  }
  ADD_FAILURE() << "execution " << id << " did not finish within 180 s: " << last.dump();
  return last;
}

json RunToEnd(Api& api, const std::string& token, const std::string& org,
              const std::string& workflow, const json& parameters = json::object()) {
  return Await(api, token, Start(api, token, org, workflow, parameters));
}

// Polls (bounded: 120 s) until the execution has `status`; returns it as last seen.
json WaitForStatus(Api& api, const std::string& token, const std::string& id,
                   const std::string& status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  json last;
  while (std::chrono::steady_clock::now() < deadline) {
    last = GetExecution(api, token, id);
    if (Str(last, "status") == status || Finished(last)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Str(last, "status"), status) << last.dump();
  return last;
}

std::string Logs(Api& api, const std::string& token, const std::string& id) {
  Reply r = api.Call("GET", "/api/v1/executions/" + id + "/logs", token);
  EXPECT_EQ(r.status, 200) << r.body;
  return Str(r.json_body, "logs");
}

// Polls the logs of a running execution (bounded: 120 s) until they hold `text`.
std::string WaitForLogs(Api& api, const std::string& token, const std::string& id,
                        const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::string logs;
  while (std::chrono::steady_clock::now() < deadline) {
    logs = Logs(api, token, id);
    if (logs.find(text) != std::string::npos) return logs;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "the logs of " << id << " never showed '" << text << "': " << logs;
  return logs;
}

// What a short Python program prints (its last newline removed).
std::string PythonOutput(const std::string& code, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {PythonBinary(), "-c", code};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult r = RunProcess(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string Sha256Hex(const std::string& text) {
  return PythonOutput(
      "import hashlib, sys\nprint(hashlib.sha256(sys.argv[1].encode()).hexdigest())", {text});
}

std::string HmacSha256Hex(const std::string& key, const std::string& message) {
  return PythonOutput(
      "import hashlib, hmac, sys\n"
      "print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
      {key, message});
}

// Pids of the processes whose command line contains `marker`.
std::vector<std::string> ProcessesWith(const std::string& marker) {
  std::vector<std::string> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = testing::ReadFileOrEmpty(entry.path().string() + "/cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(marker) != std::string::npos) found.push_back(name + ": " + cmdline);
  }
  return found;
}

// The Unix socket of a PostgreSQL URL that names one ("...?host=/dir&port=N"), else "".
std::string PostgresSocketOf(const std::string& url) {
  const auto param = [&url](const std::string& name) -> std::string {
    const std::size_t query = url.find('?');
    if (query == std::string::npos) return "";
    for (std::size_t at = query + 1; at < url.size();) {
      const std::size_t end = std::min(url.find('&', at), url.size());
      if (url.compare(at, name.size() + 1, name + "=") == 0) {
        return url.substr(at + name.size() + 1, end - at - name.size() - 1);
      }
      at = end + 1;
    }
    return "";
  };
  const std::string host = param("host");
  if (!host.starts_with("/")) return "";
  const std::string port = param("port");
  return host + "/.s.PGSQL." + (port.empty() ? "5432" : port);
}

std::string RevealValue(Api& api, const std::string& token, const std::string& org,
                        const std::string& key) {
  Reply r = api.Call("GET", "/api/v1/orgs/" + org + "/configs/" + key + "/reveal", token);
  EXPECT_EQ(r.status, 200) << r.body;
  return Str(r.json_body, "value");
}

// Makes a file or directory readable (and searchable) by others until destroyed.
class ModeOpened {
 public:
  explicit ModeOpened(std::string path)
      : path_(std::move(path)), mode_(fs::status(path_).permissions()) {
    fs::perms added = fs::perms::others_read;
    if (fs::is_directory(path_)) added |= fs::perms::others_exec;
    fs::permissions(path_, added, fs::perm_options::add);
  }
  ~ModeOpened() {
    std::error_code ignored;
    fs::permissions(path_, mode_, fs::perm_options::replace, ignored);
  }
  ModeOpened(const ModeOpened&) = delete;
  ModeOpened& operator=(const ModeOpened&) = delete;

 private:
  std::string path_;
  fs::perms mode_;
};

// Whether this kernel has Landlock (the server then confines workflows with it).
bool HasLandlock() {
  return ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION) > 0;
}

constexpr std::string_view kRedactedText = "[REDACTED]";

bool IsUuid(const std::string& text) {
  static const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  return std::regex_match(text, kUuid);
}

std::string TrimNewline(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// ---------------------------------------------------------------------------------------
// Workflow files

// The examples of docs/workflows.md and of the issue, as written there (without the
// top-level `await config.set(...)`, which is a script of its own: kSetApiKeyScript).
const char* const kExamplesPy = R"py(import hashlib
import hmac
from bifrost import config, workflow, ExecutionContext

@workflow(name="call_api")
async def call_api(context: ExecutionContext):
    api_key = await config.get("api_key")          # the running org's value
    headers = {"Authorization": f"Bearer {api_key}"}
    ...

@workflow(name="safe_api_call")
async def safe_api_call(context: ExecutionContext):
    try:
        api_key = await config.get("api_key")
    except KeyError:
        return {"success": False, "error": "API key not configured",
                "action": "Add 'api_key' to Configuration in Settings"}
    return {"success": True}

@workflow(name="verify_webhook")
async def verify_webhook(context: ExecutionContext, payload: str, signature: str):
    webhook_secret = await config.get("webhook_secret")
    expected = hmac.new(webhook_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("Invalid webhook signature")
    return {"verified": True}
)py";

// The issue's first line, run as a plain script with an org admin's token.
const char* const kSetApiKeyScript = R"py(import asyncio
from bifrost import config


async def main():
    # Store a secret (encrypted in the database)
    await config.set("api_key", "sk_live_xxxxx", is_secret=True)


asyncio.run(main())
)py";

// The test's own workflows of the shared server.
const char* const kToolsPy = R"py(import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from bifrost import config, workflow, ExecutionContext


@workflow(name="key_fingerprint", description="sha256 of the api_key this execution sees")
async def key_fingerprint(context: ExecutionContext):
    api_key = await config.get("api_key")
    return {"org_id": context.org_id,
            "sha256": hashlib.sha256(api_key.encode()).hexdigest()}


@workflow(name="echo")
def echo(context: ExecutionContext, **parameters):
    return {"parameters": context.parameters, "kwargs": parameters, "org_id": context.org_id,
            "org_name": context.org_name, "execution_id": context.execution_id,
            "workflow": context.workflow_name, "caller": context.caller}


@workflow(name="fail_exception")
def fail_exception(context):
    raise ValueError("deliberate failure")


@workflow(name="crash_signal")
def crash_signal(context):
    print("about to die", flush=True)
    os.kill(os.getpid(), 9)
    time.sleep(60)


@workflow(name="crash_exit")
def crash_exit(context):
    sys.exit(3)


@workflow(name="timeout_child", timeout_seconds=2)
def timeout_child(context, marker):
    subprocess.Popen(["/bin/sh", "-c", "sleep 600; : " + marker])
    print("child started", flush=True)
    time.sleep(60)
    return "not reached"


@workflow(name="long_sleep", timeout_seconds=900)
def long_sleep(context):
    print("sleeping", flush=True)
    time.sleep(600)
    return "woke up"


def _attempt(path, directory=False, write=False):
    try:
        if directory:
            os.listdir(path)
        elif write:
            with open(path, "xb") as handle:
                handle.write(b"escaped")
        else:
            with open(path, "rb") as handle:
                handle.read(16)
        return "ok"
    except OSError as exc:
        return type(exc).__name__


def _connect(path):
    if not path:
        return "none"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(path)
        return "ok"
    except OSError as exc:
        return type(exc).__name__


def _signal(pid):
    try:
        os.kill(pid, 0)  # no signal: only whether it may be sent
        return "ok"
    except OSError as exc:
        return type(exc).__name__


@workflow(name="probe")
async def probe(context, db_path, db_socket, key_path, data_dir, server_pid, other_org, scratch):
    try:
        await config.get("api_key", org=other_org)
        cross_org = "allowed"
    except PermissionError:
        cross_org = "PermissionError"
    except Exception as exc:
        cross_org = "{}: {}".format(type(exc).__name__, exc)
    own = await config.get("api_key")
    # Handed back through the API: the token is redacted from results and logs.
    await config.set("leaked_token", os.environ.get("BIFROST_TOKEN", ""))
    print("token:", os.environ.get("BIFROST_TOKEN", ""))
    return {"env": dict(os.environ), "uid": os.getuid(), "db": _attempt(db_path),
            "db_socket": _connect(db_socket),
            "key": _attempt(key_path), "data_dir": _attempt(data_dir, directory=True),
            "server_environ": _attempt("/proc/{}/environ".format(server_pid)),
            "parent_environ": _attempt("/proc/{}/environ".format(os.getppid())),
            "signal_server": _signal(int(server_pid)),
            "tmp_list": _attempt("/tmp", directory=True),
            "tmp_write": _attempt("/tmp/" + scratch, write=True),
            "shm_write": _attempt("/dev/shm/" + scratch, write=True),
            "home_write": _attempt(os.path.join(os.environ["HOME"], scratch), write=True),
            "cross_org": cross_org, "own_key_length": len(own)}


def _status(method, path, body=None):
    request = urllib.request.Request(
        os.environ["BIFROST_ADDR"] + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["BIFROST_TOKEN"],
                 "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


@workflow(name="token_probe")
def token_probe(context):
    org = context.org_id
    return {
        "list_workflows": _status("GET", "/api/v1/workflows"),
        "reload_workflows": _status("POST", "/api/v1/workflows/reload", {}),
        "create_token": _status("POST", "/api/v1/tokens",
                                {"role": "reader", "name": "escape", "org_id": org}),
        "list_tokens": _status("GET", "/api/v1/tokens"),
        "list_executions": _status("GET", "/api/v1/executions"),
        "run_workflow": _status("POST", "/api/v1/orgs/" + org + "/workflows/echo/executions",
                                {"parameters": {}}),
        "read_audit": _status("GET", "/api/v1/audit"),
        "own_configs": _status("GET", "/api/v1/orgs/" + org + "/configs"),
    }
)py";

const char* const kBrokenPy = R"py(from bifrost import workflow

@workflow(name="never_loaded")
def never_loaded(context:
    return 1
)py";

const char* const kShellExit = R"sh(#!/bin/sh
if [ "$1" = "--bifrost-describe" ]; then
  echo '{"name": "shell_exit", "description": "an executable that exits with status 3"}'
  exit 0
fi
echo "shell workflow for $BIFROST_ORG_NAME"
exit 3
)sh";

const char* const kLatePy = R"py(from bifrost import workflow

@workflow(name="late_arrival")
def late_arrival(context):
    return "late"
)py";

// Holds until the org's "release" config is true.
const char* const kGatePy = R"py(import asyncio
from bifrost import config, workflow


@workflow(name="gate", timeout_seconds=600)
async def gate(context):
    print("waiting for release", flush=True)
    while not await config.get("release", default=False):
        await asyncio.sleep(0.2)
    return "released"
)py";

const char* const kLeakyPy = R"py(import asyncio
import json
import logging
import secrets
import sys

from bifrost import config, workflow


@workflow(name="leaky")
async def leaky(context):
    secret = await config.get("leak_secret")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print("print:", secret)
    logging.info("logging: %s", secret)
    print("json:", json.dumps({"secret": secret}))
    print("json-utf8:", json.dumps({"secret": secret}, ensure_ascii=False))
    print("repr:", repr(secret))
    print("dict:", {"secret": secret})
    return {"secret": secret, "list": [secret, "plain"], "text": "before " + secret + " after"}


@workflow(name="leaky_raise")
async def leaky_raise(context):
    secret = await config.get("leak_secret")
    raise RuntimeError("the secret is " + secret)


@workflow(name="leaky_written")
async def leaky_written(context):
    value = "sk_live_WRITTEN_" + secrets.token_hex(12)
    await config.set("written_secret", value, is_secret=True)
    print("wrote", value)
    return {"value": value}


@workflow(name="leaky_live", timeout_seconds=600)
async def leaky_live(context):
    secret = await config.get("leak_secret")
    print("live:", secret, flush=True)
    while not await config.get("release", default=False):
        await asyncio.sleep(0.2)
    return "released"


@workflow(name="cut_logs")
async def cut_logs(context, keep):
    secret = await config.get("leak_secret")
    sys.stdout.write("x" * int(keep) + secret + "\n")
    sys.stdout.flush()


@workflow(name="cut_error")
async def cut_error(context, keep):
    secret = await config.get("leak_secret")
    raise RuntimeError("y" * int(keep) + secret)


@workflow(name="leaky_nested")
async def leaky_nested(context):
    secret = await config.get("leak_secret")
    # A JSON text built by the workflow, returned as a string.
    return json.dumps({"authorization": "Bearer " + secret})
)py";

// ---------------------------------------------------------------------------------------
// The shared server: default workflow settings, the master key in a file.

class WorkflowTest : public ::testing::Test {
 protected:
  struct Shared {
    WorkflowDir dir;
    std::string key_file;
    std::string env_marker = "server-only-" + RandomHex(8);
    std::unique_ptr<ServerProcess> server;

    Shared() {
      key_file = dir.root() + "/master.key";
      // Readable by everyone when Landlock is there: the sandbox, not the file's mode, must
      // keep workflows from it.
      WriteFile(key_file, ServerProcess::Options{}.secret_key + "\n",
                HasLandlock() ? kReadable : fs::perms::owner_read | fs::perms::owner_write);
      dir.Add("examples.py", kExamplesPy);
      dir.Add("tools.py", kToolsPy);
      dir.Add("broken.py", kBrokenPy);
      dir.Add("shell_exit", kShellExit, /*executable=*/true);
      ServerProcess::Options options;
      options.extra_args = WorkflowArgs(dir.dir());
      options.extra_env = {"BIFROST_SECRET_KEY_FILE=" + key_file,
                           "E2E_SERVER_ONLY_MARKER=" + env_marker};
      server = std::make_unique<ServerProcess>(options);
    }
  };

  static void SetUpTestSuite() { shared_ = new Shared(); }
  static void TearDownTestSuite() {
    if (shared_ != nullptr && shared_->server) {
      EXPECT_EQ(shared_->server->Stop(), 0);
      EXPECT_EQ(shared_->server->Stderr().find("CANARY"), std::string::npos)
          << shared_->server->Stderr();
    }
    delete shared_;
    shared_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(shared_, nullptr);
    ASSERT_FALSE(server().address().empty()) << "the shared server did not start";
    api_ = std::make_unique<Api>(server().address());
  }

  static ServerProcess& server() { return *shared_->server; }
  static const WorkflowDir& dir() { return shared_->dir; }
  static const std::string& admin() { return shared_->server->admin_token(); }
  Api& api() { return *api_; }

  static inline Shared* shared_ = nullptr;
  std::unique_ptr<Api> api_;
};

// ---------------------------------------------------------------------------------------
// 1. The documented examples, per organization.

TEST_F(WorkflowTest, DocumentedExamplesSeeTheirOwnOrganizationsValues) {
  const std::string org_a = CreateOrg(api(), admin(), "ex-contoso");
  const std::string org_b = CreateOrg(api(), admin(), "ex-fabrikam");
  const std::string org_c = CreateOrg(api(), admin(), "ex-northwind");
  const std::string key_a = "sk_live_CANARY_" + RandomHex(12);
  const std::string key_b = "sk_live_CANARY_" + RandomHex(12);
  const std::string key_global = "sk_live_CANARY_" + RandomHex(12);
  const std::string webhook_secret = "whsec_CANARY_" + RandomHex(12);

  // The issue's `await config.set("api_key", "sk_live_xxxxx", is_secret=True)`, as a plain
  // script of each org's admin (with that org's canary for "sk_live_xxxxx").
  for (const auto& [org, value] : {std::pair{org_a, key_a}, std::pair{org_b, key_b}}) {
    const MintedToken org_admin = MintToken(api(), admin(), "admin", org);
    std::string script = kSetApiKeyScript;
    const std::string placeholder = "sk_live_xxxxx";
    script.replace(script.find(placeholder), placeholder.size(), value);
    const ProcessResult set =
        RunProcess({"/usr/bin/python3", "-c", script}, "",
                   {"PYTHONPATH=" + SourceDir() + "/sdk/python",
                    "BIFROST_ADDR=" + server().address(), "BIFROST_TOKEN=" + org_admin.token});
    ASSERT_EQ(set.exit_code, 0) << set.out << set.err;
    Reply listed = api().Call("GET", "/api/v1/orgs/" + org + "/configs/api_key", admin());
    ASSERT_EQ(listed.status, 200) << listed.body;
    EXPECT_EQ(Str(listed.json_body, "type"), "secret") << listed.body;
    EXPECT_EQ(RevealValue(api(), admin(), org, "api_key"), value);
  }
  SetConfig(api(), admin(), "/api/v1/global", "api_key", "secret", key_global);
  SetConfig(api(), admin(), "/api/v1/orgs/" + org_a, "webhook_secret", "secret", webhook_secret);

  std::vector<std::string> bodies;  // every answer, scanned for the canaries at the end
  // Three at once: each sees its own organization's value, or the global one.
  const std::string run_a = Start(api(), admin(), org_a, "key_fingerprint");
  const std::string run_b = Start(api(), admin(), org_b, "key_fingerprint");
  const std::string run_c = Start(api(), admin(), org_c, "key_fingerprint");
  const std::vector<std::tuple<std::string, std::string, std::string>> expected = {
      {run_a, org_a, key_a}, {run_b, org_b, key_b}, {run_c, org_c, key_global}};
  for (const auto& [id, org, value] : expected) {
    json done = Await(api(), admin(), id);
    bodies.push_back(done.dump());
    ASSERT_EQ(Str(done, "status"), "success") << done.dump();
    EXPECT_EQ(Str(done, "org_id"), org);
    EXPECT_EQ(done["result"]["org_id"], org) << done.dump();
    EXPECT_EQ(done["result"]["sha256"], Sha256Hex(value)) << "execution for " << org;
  }

  // call_api as written returns nothing.
  json called = RunToEnd(api(), admin(), org_a, "call_api");
  bodies.push_back(called.dump());
  EXPECT_EQ(Str(called, "status"), "success") << called.dump();
  EXPECT_TRUE(called["result"].is_null()) << called.dump();
  EXPECT_TRUE(called["error"].is_null()) << called.dump();

  json safe_a = RunToEnd(api(), admin(), org_a, "safe_api_call");
  bodies.push_back(safe_a.dump());
  EXPECT_EQ(Str(safe_a, "status"), "success") << safe_a.dump();
  EXPECT_EQ(safe_a["result"], json({{"success", true}})) << safe_a.dump();

  // Without the global value, an organization without its own has none.
  Reply deleted = api().Call("DELETE", "/api/v1/global/configs/api_key", admin());
  ASSERT_TRUE(deleted.status == 200 || deleted.status == 204) << deleted.body;
  json safe_c = RunToEnd(api(), admin(), org_c, "safe_api_call");
  bodies.push_back(safe_c.dump());
  EXPECT_EQ(Str(safe_c, "status"), "success") << safe_c.dump();
  const json not_configured = {{"success", false},
                               {"error", "API key not configured"},
                               {"action", "Add 'api_key' to Configuration in Settings"}};
  EXPECT_EQ(safe_c["result"], not_configured) << safe_c.dump();
  json missing = RunToEnd(api(), admin(), org_c, "call_api");
  bodies.push_back(missing.dump());
  EXPECT_EQ(Str(missing, "status"), "failed") << missing.dump();
  EXPECT_NE(Str(missing, "error").find("KeyError"), std::string::npos) << missing.dump();

  // verify_webhook with the parameters as keyword arguments, through the CLI.
  const std::string payload = R"({"event":"invoice.paid","id":"evt_)" + RandomHex(4) + "\"}";
  const std::string signature = HmacSha256Hex(webhook_secret, payload);
  ASSERT_EQ(signature.size(), 64u);
  const ProcessResult verified =
      server().Cli({"workflow", "run", "verify_webhook", "--org", org_a, "--param",
                    "payload=" + payload, "--param", "signature=" + signature},
                   admin());
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_EQ(json::parse(verified.out, nullptr, false), json({{"verified", true}})) << verified.out;
  bodies.push_back(verified.out + verified.err);

  std::string wrong = signature;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  const ProcessResult refused =
      server().Cli({"workflow", "run", "verify_webhook", "--org", org_a, "--param",
                    "payload=" + payload, "--param", "signature=" + wrong},
                   admin());
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("ValueError: Invalid webhook signature"), std::string::npos)
      << refused.err;
  bodies.push_back(refused.out + refused.err);

  json failed = RunToEnd(api(), admin(), org_a, "verify_webhook",
                         json{{"payload", payload}, {"signature", wrong}});
  bodies.push_back(failed.dump());
  EXPECT_EQ(Str(failed, "status"), "failed") << failed.dump();
  EXPECT_NE(Str(failed, "error").find("ValueError: Invalid webhook signature"), std::string::npos)
      << failed.dump();
  const std::string traceback = Logs(api(), admin(), Str(failed, "id"));
  EXPECT_NE(traceback.find("Traceback"), std::string::npos) << traceback;
  bodies.push_back(traceback);

  for (const std::string& body : bodies) {
    EXPECT_EQ(body.find("CANARY"), std::string::npos) << "a canary leaked: " << body;
  }
}

// ---------------------------------------------------------------------------------------
// 3. Isolation: the environment, the files, other organizations, the token's lifetime.

TEST_F(WorkflowTest, ExecutionSeesNothingOfTheServerAndItsTokenDiesWithIt) {
  const std::string org_a = CreateOrg(api(), admin(), "iso-alpha");
  const std::string org_b = CreateOrg(api(), admin(), "iso-beta");
  SetConfig(api(), admin(), "/api/v1/orgs/" + org_a, "api_key", "secret",
            "sk_live_CANARY_" + RandomHex(12));
  SetConfig(api(), admin(), "/api/v1/orgs/" + org_b, "api_key", "secret",
            "sk_live_CANARY_" + RandomHex(12));

  // The database: SQLite's file in the data directory, or PostgreSQL's data directory, the
  // file of the configs table in it and the server's socket.
  const bool postgresql = server().storage().postgresql();
  std::string data_dir;
  std::string db_path;
  std::string db_socket;
  if (postgresql) {
    data_dir = testing::PostgresDataDir();
    ASSERT_FALSE(data_dir.empty()) << "the PostgreSQL test cluster's data directory is unknown";
    const auto relation = SqlRows(server().storage(), "SELECT pg_relation_filepath('configs')");
    ASSERT_EQ(relation.size(), 1u);
    db_path = data_dir + "/" + relation[0][0];
    db_socket = PostgresSocketOf(server().database_url());
  } else {
    data_dir = fs::canonical(server().data_dir()).string();
    db_path = data_dir + "/bifrost.db";
  }
  const std::string scratch = "bifrost-e2e-scratch-" + RandomHex(8);
  // With Landlock, the database is readable by everyone during the run: the sandbox alone
  // must keep the workflow from it (the key file is so already). Not the files of the
  // PostgreSQL cluster, which other tests share: its owner's permissions guard them too.
  std::vector<std::unique_ptr<ModeOpened>> opened;
  if (HasLandlock() && !postgresql) {
    for (const std::string& path : {fs::path(data_dir).parent_path().string(), data_dir, db_path}) {
      opened.push_back(std::make_unique<ModeOpened>(path));
    }
  }
  json done = RunToEnd(api(), admin(), org_a, "probe",
                       json{{"db_path", db_path},
                            {"db_socket", db_socket},
                            {"key_path", shared_->key_file},
                            {"data_dir", data_dir},
                            {"server_pid", std::to_string(server().pid())},
                            {"other_org", org_b},
                            {"scratch", scratch}});
  opened.clear();
  ASSERT_EQ(Str(done, "status"), "success") << done.dump() << Logs(api(), admin(), Str(done, "id"));
  json& result = done["result"];
  ASSERT_TRUE(result.is_object()) << done.dump();

  // Exactly the documented environment.
  json& env = result["env"];
  std::set<std::string> names;
  for (const auto& [name, value] : env.items()) names.insert(name);
  const std::set<std::string> documented = {"BIFROST_ADDR",
                                            "BIFROST_TOKEN",
                                            "BIFROST_EXECUTION_ID",
                                            "BIFROST_WORKFLOW",
                                            "BIFROST_ORG_ID",
                                            "BIFROST_ORG_NAME",
                                            "BIFROST_RESULT_FD",
                                            "PATH",
                                            "HOME",
                                            "TMPDIR",
                                            "LANG",
                                            "PYTHONPATH",
                                            "PYTHONUNBUFFERED",
                                            "PYTHONDONTWRITEBYTECODE"};
  EXPECT_EQ(names, documented) << env.dump();
  for (const auto& [name, value] : env.items()) {
    EXPECT_FALSE(name.starts_with("BIFROST_SECRET_KEY")) << name;
    const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
    EXPECT_EQ(text.find(admin()), std::string::npos) << name << " holds the admin token";
    EXPECT_EQ(text.find(data_dir), std::string::npos) << name << " names the data directory";
    if (postgresql) {
      EXPECT_EQ(text.find(server().database_url()), std::string::npos)
          << name << " names the database";
    }
    EXPECT_EQ(text.find(shared_->key_file), std::string::npos) << name << " names the key file";
    EXPECT_EQ(text.find(shared_->env_marker), std::string::npos) << name;
    EXPECT_EQ(text.find(ServerProcess::Options{}.secret_key), std::string::npos) << name;
  }
  EXPECT_EQ(env["BIFROST_TOKEN"], "[REDACTED]") << "the token is redacted from results";
  EXPECT_EQ(env["BIFROST_ORG_ID"], org_a);
  EXPECT_EQ(env["BIFROST_ORG_NAME"], "iso-alpha");
  EXPECT_EQ(env["BIFROST_WORKFLOW"], "probe");
  EXPECT_EQ(env["BIFROST_EXECUTION_ID"], done["id"]);
  EXPECT_EQ(env["BIFROST_ADDR"], server().address());
  EXPECT_EQ(env["BIFROST_RESULT_FD"], "3");
  EXPECT_EQ(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
  EXPECT_EQ(env["LANG"], "C.UTF-8");
  EXPECT_EQ(env["HOME"], env["TMPDIR"]);
  const std::string home = Str(env, "HOME");
  ASSERT_FALSE(home.empty());
  EXPECT_FALSE(fs::exists(home)) << "the execution's HOME outlived it: " << home;

  // Neither the database, nor the key file, nor the server's process: closed by Landlock
  // and, as the tests run as root, by the workflows' user (nobody).
  const bool as_nobody = ::geteuid() == 0;
  if (as_nobody || HasLandlock()) {
    EXPECT_NE(Str(result, "db"), "ok") << result.dump();
    EXPECT_NE(Str(result, "key"), "ok") << result.dump();
    EXPECT_NE(Str(result, "data_dir"), "ok") << result.dump();
  }
  if (postgresql && as_nobody) {
    // Nor PostgreSQL's socket, in a directory only the cluster's owner may enter.
    EXPECT_NE(Str(result, "db_socket"), "ok") << result.dump();
  }
  if (as_nobody) {
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    EXPECT_EQ(result["uid"], nobody->pw_uid) << "workflows of a root server run as nobody";
    EXPECT_NE(Str(result, "server_environ"), "ok") << result.dump();
    EXPECT_NE(Str(result, "parent_environ"), "ok") << result.dump();
    EXPECT_EQ(Str(result, "signal_server"), "PermissionError") << result.dump();
  }
  // It writes only to its own HOME: not to the shared temporary directories, which it
  // cannot even list (with Landlock; without, only the user's permissions apply).
  EXPECT_EQ(Str(result, "home_write"), "ok") << result.dump();
  if (HasLandlock()) {
    EXPECT_NE(Str(result, "tmp_list"), "ok") << result.dump();
    EXPECT_NE(Str(result, "tmp_write"), "ok") << result.dump();
    EXPECT_NE(Str(result, "shm_write"), "ok") << result.dump();
  }
  std::error_code ignored;
  fs::remove("/tmp/" + scratch, ignored);
  fs::remove("/dev/shm/" + scratch, ignored);

  // Another organization's config is refused; its own is read.
  EXPECT_EQ(Str(result, "cross_org"), "PermissionError") << result.dump();
  EXPECT_EQ(result["own_key_length"], 39) << result.dump();

  // The token it stored (a plain string, so not redacted) no longer works.
  const std::string token = RevealValue(api(), admin(), org_a, "leaked_token");
  ASSERT_TRUE(token.starts_with("bfx_")) << token;
  EXPECT_EQ(api().Call("GET", "/api/v1/orgs/" + org_a + "/configs", token).status, 401);
  EXPECT_EQ(api().Call("GET", "/api/v1/orgs/" + org_a + "/configs/api_key/reveal", token).status,
            401);
  EXPECT_EQ(api().Call("GET", "/api/v1/whoami", token).status, 401);
  const std::string logs = Logs(api(), admin(), Str(done, "id"));
  EXPECT_EQ(logs.find(token), std::string::npos);
  EXPECT_NE(logs.find("token: [REDACTED]\n"), std::string::npos) << logs;
  EXPECT_EQ(done.dump().find(token), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// 4. Time limits, cancellation, crashes, broken files, reloads.

TEST_F(WorkflowTest, TimeLimitKillsTheWholeProcessGroup) {
  const std::string org = CreateOrg(api(), admin(), "timeout-org");
  const std::string marker = "bifrost-e2e-orphan-" + RandomHex(8);
  const auto started = std::chrono::steady_clock::now();
  json done = RunToEnd(api(), admin(), org, "timeout_child", json{{"marker", marker}});
  EXPECT_EQ(Str(done, "status"), "timeout") << done.dump();
  EXPECT_EQ(done["timeout_seconds"], 2) << done.dump();
  EXPECT_NE(Str(done, "error").find("time limit of 2 seconds"), std::string::npos) << done.dump();
  EXPECT_TRUE(done["result"].is_null());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(50))
      << "the 60 s sleep was not cut short";
  const std::string logs = Logs(api(), admin(), Str(done, "id"));
  EXPECT_NE(logs.find("child started"), std::string::npos) << logs;

  // The workflow's own child (`sh -c "sleep 600; : MARKER"`) was killed with it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<std::string> left = ProcessesWith(marker);
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    left = ProcessesWith(marker);
  }
  EXPECT_TRUE(left.empty()) << "a child of the timed-out workflow survived: " << left.front();
}

TEST_F(WorkflowTest, CancelStopsARunningExecution) {
  const std::string org = CreateOrg(api(), admin(), "cancel-org");
  const MintedToken member = MintToken(api(), admin(), "member", org);
  const ProcessResult started =
      server().Cli({"workflow", "run", "long_sleep", "--org", org, "--no-wait"}, member.token);
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string id = TrimNewline(started.out);
  ASSERT_TRUE(IsUuid(id)) << started.out;
  WaitForStatus(api(), member.token, id, "running");
  // Live logs of a running execution.
  WaitForLogs(api(), member.token, id, "sleeping");

  const ProcessResult cancelled = server().Cli({"execution", "cancel", id}, member.token);
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_NE(cancelled.out.find("Cancelling execution " + id), std::string::npos) << cancelled.out;
  json done = Await(api(), member.token, id);
  EXPECT_EQ(Str(done, "status"), "cancelled") << done.dump();
  EXPECT_NE(Str(done, "error").find("cancelled by"), std::string::npos) << done.dump();
  EXPECT_NE(Str(done, "finished_at"), "");

  // A finished execution cannot be cancelled again.
  const ProcessResult again = server().Cli({"execution", "cancel", id}, member.token);
  EXPECT_NE(again.exit_code, 0) << again.out;
  EXPECT_NE(again.err.find("already finished"), std::string::npos) << again.err;
}

// docs/workflows.md, "Audit": `execution.cancel` is recorded; like every record about an
// execution, it names the execution (execution_id).
TEST_F(WorkflowTest, CancellationIsAuditedWithTheExecutionId) {
  const std::string org = CreateOrg(api(), admin(), "cancel-audit-org");
  const MintedToken member = MintToken(api(), admin(), "member", org);
  const std::string id = Start(api(), member.token, org, "long_sleep");
  WaitForStatus(api(), member.token, id, "running");
  Reply cancelled =
      api().Call("POST", "/api/v1/executions/" + id + "/cancel", member.token, json::object());
  EXPECT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(Str(Await(api(), member.token, id), "status"), "cancelled");

  Reply audited = api().Call("GET", "/api/v1/audit?limit=1000&action=execution.cancel", admin());
  ASSERT_EQ(audited.status, 200) << audited.body;
  std::vector<json> by_member;
  for (const auto& record : audited.json_body["records"]) {
    if (Str(record, "actor_id") == member.id) by_member.push_back(record);
  }
  ASSERT_EQ(by_member.size(), 1u) << audited.body;
  EXPECT_EQ(Str(by_member[0], "outcome"), "success") << by_member[0].dump();
  EXPECT_EQ(Str(by_member[0], "execution_id"), id)
      << "the record does not say which execution was cancelled: " << by_member[0].dump();
}

TEST_F(WorkflowTest, CrashesAndNonZeroExitsFail) {
  const std::string org = CreateOrg(api(), admin(), "crash-org");

  json killed = RunToEnd(api(), admin(), org, "crash_signal");
  EXPECT_EQ(Str(killed, "status"), "failed") << killed.dump();
  EXPECT_NE(Str(killed, "error").find("signal 9"), std::string::npos) << killed.dump();
  EXPECT_NE(Logs(api(), admin(), Str(killed, "id")).find("about to die"), std::string::npos);

  json exited = RunToEnd(api(), admin(), org, "crash_exit");
  EXPECT_EQ(Str(exited, "status"), "failed") << exited.dump();
  EXPECT_NE(Str(exited, "error").find('3'), std::string::npos) << exited.dump();
  EXPECT_TRUE(exited["result"].is_null());

  json raised = RunToEnd(api(), admin(), org, "fail_exception");
  EXPECT_EQ(Str(raised, "status"), "failed") << raised.dump();
  EXPECT_EQ(Str(raised, "error"), "ValueError: deliberate failure") << raised.dump();
  EXPECT_NE(Logs(api(), admin(), Str(raised, "id")).find("Traceback"), std::string::npos);

  // An executable workflow follows the same protocol without the SDK.
  json shell = RunToEnd(api(), admin(), org, "shell_exit");
  EXPECT_EQ(Str(shell, "status"), "failed") << shell.dump();
  EXPECT_NE(Str(shell, "error").find("exited with status 3"), std::string::npos) << shell.dump();
  EXPECT_NE(Logs(api(), admin(), Str(shell, "id")).find("shell workflow for crash-org"),
            std::string::npos);
}

TEST_F(WorkflowTest, BrokenFileIsReportedAndReloadPicksUpANewOne) {
  const ProcessResult listed = server().Cli({"workflow", "list", "--format", "json"}, admin());
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  json catalog = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(catalog.is_object()) << listed.out;
  EXPECT_EQ(catalog["enabled"], true);
  std::map<std::string, json> loaded;
  for (const auto& def : catalog["workflows"]) loaded[Str(def, "name")] = def;
  for (const std::string name :
       {"call_api", "safe_api_call", "verify_webhook", "key_fingerprint", "echo", "shell_exit"}) {
    EXPECT_TRUE(loaded.contains(name)) << name << " is not loaded: " << listed.out;
  }
  EXPECT_FALSE(loaded.contains("never_loaded"));
  EXPECT_EQ(Str(loaded["call_api"], "file"), "examples.py");
  EXPECT_EQ(Str(loaded["call_api"], "kind"), "python");
  EXPECT_EQ(Str(loaded["shell_exit"], "kind"), "executable");
  EXPECT_EQ(loaded["timeout_child"]["timeout_seconds"], 2);
  bool broken_reported = false;
  for (const auto& error : catalog["errors"]) {
    if (Str(error, "file") == "broken.py") {
      broken_reported = true;
      EXPECT_NE(Str(error, "error").find("SyntaxError"), std::string::npos) << error.dump();
    }
  }
  EXPECT_TRUE(broken_reported) << listed.out;
  // The server's paths are not shown.
  EXPECT_EQ(listed.out.find(dir().dir()), std::string::npos) << listed.out;

  const ProcessResult table = server().Cli({"workflow", "list"}, admin());
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("broken.py"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("Skipped 1 broken file(s)"), std::string::npos) << table.out;

  // A new file is not known until a reload, which needs no restart.
  const std::string org = CreateOrg(api(), admin(), "reload-org");
  Reply before = api().Call("POST", RunPath(org, "late_arrival"), admin(),
                            json{{"parameters", json::object()}});
  EXPECT_EQ(before.status, 404) << before.body;
  dir().Add("late.py", kLatePy);
  const int pid = server().pid();
  const ProcessResult reloaded = server().Cli({"workflow", "reload", "--format", "json"}, admin());
  ASSERT_EQ(reloaded.exit_code, 0) << reloaded.err;
  json after = json::parse(reloaded.out, nullptr, false);
  bool late_listed = false;
  for (const auto& def : after["workflows"]) late_listed |= Str(def, "name") == "late_arrival";
  EXPECT_TRUE(late_listed) << reloaded.out;
  EXPECT_EQ(server().pid(), pid);
  Reply audited = api().Call("GET", "/api/v1/audit?limit=1&action=workflow.reload", admin());
  ASSERT_EQ(audited.status, 200) << audited.body;
  ASSERT_EQ(audited.json_body["records"].size(), 1u) << audited.body;
  EXPECT_EQ(Str(audited.json_body["records"][0], "outcome"), "success") << audited.body;
  json late = RunToEnd(api(), admin(), org, "late_arrival");
  EXPECT_EQ(Str(late, "status"), "success") << late.dump();
  EXPECT_EQ(late["result"], "late");
}

// ---------------------------------------------------------------------------------------
// 5. Audit: the run and the reveals it made carry the execution id.

TEST_F(WorkflowTest, AuditRecordsTheRunAndItsRevealsWithTheExecutionId) {
  const std::string org = CreateOrg(api(), admin(), "audit-org");
  SetConfig(api(), admin(), "/api/v1/orgs/" + org, "api_key", "secret",
            "sk_live_CANARY_" + RandomHex(12));
  const MintedToken member = MintToken(api(), admin(), "member", org);
  const MintedToken org_admin = MintToken(api(), admin(), "admin", org);
  json done = RunToEnd(api(), member.token, org, "key_fingerprint");
  ASSERT_EQ(Str(done, "status"), "success") << done.dump();
  const std::string id = Str(done, "id");

  const auto records_of = [&](const std::string& token, const std::string& action) {
    std::vector<json> found;
    Reply r = api().Call("GET", "/api/v1/audit?limit=1000&action=" + action, token);
    EXPECT_EQ(r.status, 200) << r.body;
    for (const auto& record : r.json_body["records"]) {
      if (Str(record, "execution_id") == id) found.push_back(record);
    }
    return found;
  };
  for (const std::string& token : {admin(), org_admin.token}) {
    const std::vector<json> runs = records_of(token, "workflow.run");
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(Str(runs[0], "outcome"), "success") << runs[0].dump();
    EXPECT_EQ(Str(runs[0], "org_id"), org) << runs[0].dump();
    EXPECT_EQ(Str(runs[0], "actor_id"), member.id) << runs[0].dump();
    const std::vector<json> reveals = records_of(token, "config.reveal");
    ASSERT_EQ(reveals.size(), 1u);
    EXPECT_EQ(Str(reveals[0], "outcome"), "success") << reveals[0].dump();
    EXPECT_EQ(Str(reveals[0], "config_key"), "api_key") << reveals[0].dump();
    EXPECT_EQ(Str(reveals[0], "org_id"), org) << reveals[0].dump();
    EXPECT_EQ(Str(reveals[0], "actor_id"), id) << reveals[0].dump();
    EXPECT_EQ(Str(reveals[0], "actor_name"), "workflow:key_fingerprint") << reveals[0].dump();
    EXPECT_GT(reveals[0]["seq"].get<std::int64_t>(), runs[0]["seq"].get<std::int64_t>());
  }

  std::string key_env = "BIFROST_SECRET_KEY=";
  key_env += server().secret_key();
  std::vector<std::string> verify_argv = {testing::BifrostBinary(), "audit", "verify"};
  for (const std::string& arg : server().StorageArgs()) verify_argv.push_back(arg);
  const ProcessResult verified = RunProcess(verify_argv, "", {key_env});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("intact"), std::string::npos) << verified.out;
}

// ---------------------------------------------------------------------------------------
// 6. The CLI.

TEST_F(WorkflowTest, CliRunsWaitsAndReportsExecutions) {
  const std::string org = CreateOrg(api(), admin(), "cli-org");
  const MintedToken member = MintToken(api(), admin(), "member", org);

  // --params and --param (which wins), by org name; the result alone on stdout.
  const ProcessResult ran =
      server().Cli({"workflow", "run", "echo", "--org", "cli-org", "--params",
                    R"({"a": "1", "b": "2", "n": 5})", "--param", "b=3", "--param", "c=x=y"},
                   member.token);
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  json result = json::parse(ran.out, nullptr, false);
  ASSERT_TRUE(result.is_object()) << ran.out;
  json parameters = {{"a", "1"}, {"b", "3"}, {"n", 5}, {"c", "x=y"}};
  EXPECT_EQ(result["parameters"], parameters) << ran.out;
  EXPECT_EQ(result["kwargs"], parameters) << ran.out;
  EXPECT_EQ(result["org_id"], org);
  EXPECT_EQ(result["org_name"], "cli-org");
  EXPECT_EQ(result["workflow"], "echo");
  EXPECT_EQ(result["caller"], "member-token");
  const std::string ran_id = Str(result, "execution_id");
  EXPECT_TRUE(IsUuid(ran_id)) << ran.out;

  // A failed workflow: exit 1, the error on stderr, nothing on stdout.
  const ProcessResult failed =
      server().Cli({"workflow", "run", "fail_exception", "--org", org}, member.token);
  EXPECT_EQ(failed.exit_code, 1) << failed.out << failed.err;
  EXPECT_NE(failed.err.find("ValueError: deliberate failure"), std::string::npos) << failed.err;
  EXPECT_EQ(failed.out, "");

  // An unknown workflow.
  const ProcessResult unknown =
      server().Cli({"workflow", "run", "no_such_workflow", "--org", org}, member.token);
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("no_such_workflow"), std::string::npos) << unknown.err;

  // --no-wait: the id alone.
  const ProcessResult queued =
      server().Cli({"workflow", "run", "echo", "--org", org, "--no-wait"}, member.token);
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  ASSERT_EQ(queued.out.size(), 37u) << queued.out;
  EXPECT_EQ(queued.out.back(), '\n');
  const std::string id = TrimNewline(queued.out);
  ASSERT_TRUE(IsUuid(id)) << queued.out;

  const ProcessResult waited =
      server().Cli({"execution", "get", id, "--wait", "10", "--format", "json"}, member.token);
  ASSERT_EQ(waited.exit_code, 0) << waited.err;
  json got = json::parse(waited.out, nullptr, false);
  ASSERT_TRUE(got.is_object()) << waited.out;
  if (!Finished(got)) got = Await(api(), member.token, id);  // a slow machine
  EXPECT_EQ(Str(got, "id"), id);
  EXPECT_EQ(Str(got, "status"), "success") << got.dump();
  EXPECT_EQ(Str(got, "workflow"), "echo");
  EXPECT_EQ(Str(got, "org_id"), org);
  EXPECT_EQ(got["caller"]["name"], "member-token");
  EXPECT_EQ(got["result"]["execution_id"], id);

  const ProcessResult shown =
      server().Cli({"execution", "get", id, "--format", "json"}, member.token);
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(json::parse(shown.out, nullptr, false)["status"], "success") << shown.out;
  const ProcessResult table = server().Cli({"execution", "get", id}, member.token);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("success"), std::string::npos) << table.out;

  // --format json of a run: the whole execution.
  const ProcessResult whole =
      server().Cli({"workflow", "run", "echo", "--org", org, "--format", "json"}, member.token);
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  json execution = json::parse(whole.out, nullptr, false);
  EXPECT_EQ(Str(execution, "status"), "success") << whole.out;
  EXPECT_TRUE(IsUuid(Str(execution, "id"))) << whole.out;

  // Listings filtered by status.
  const ProcessResult succeeded = server().Cli(
      {"execution", "list", "--status", "success", "--org", org, "--format", "json"}, member.token);
  ASSERT_EQ(succeeded.exit_code, 0) << succeeded.err;
  json listed = json::parse(succeeded.out, nullptr, false);
  ASSERT_TRUE(listed.is_array()) << succeeded.out;
  std::set<std::string> ids;
  for (const auto& e : listed) {
    EXPECT_EQ(Str(e, "status"), "success") << e.dump();
    EXPECT_EQ(Str(e, "org_id"), org) << e.dump();
    ids.insert(Str(e, "id"));
  }
  EXPECT_TRUE(ids.contains(id));
  EXPECT_TRUE(ids.contains(ran_id));
  EXPECT_EQ(ids.size(), 3u) << succeeded.out;

  const ProcessResult failures =
      server().Cli({"execution", "list", "--status", "failed", "--format", "json"}, member.token);
  ASSERT_EQ(failures.exit_code, 0) << failures.err;
  json failed_list = json::parse(failures.out, nullptr, false);
  ASSERT_TRUE(failed_list.is_array()) << failures.out;
  ASSERT_EQ(failed_list.size(), 1u) << failures.out;
  EXPECT_EQ(Str(failed_list[0], "workflow"), "fail_exception");

  const ProcessResult as_table = server().Cli({"execution", "list"}, member.token);
  EXPECT_EQ(as_table.exit_code, 0) << as_table.err;
  EXPECT_NE(as_table.out.find(id), std::string::npos) << as_table.out;

  const ProcessResult logs =
      server().Cli({"execution", "logs", Str(failed_list[0], "id")}, member.token);
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("ValueError: deliberate failure"), std::string::npos) << logs.out;
}

// ---------------------------------------------------------------------------------------
// 7. Authorization.

TEST_F(WorkflowTest, RunsAndExecutionsAreAuthorizedPerOrganization) {
  const std::string org_a = CreateOrg(api(), admin(), "authz-a");
  const std::string org_b = CreateOrg(api(), admin(), "authz-b");
  const MintedToken reader_a = MintToken(api(), admin(), "reader", org_a);
  const MintedToken member_a = MintToken(api(), admin(), "member", org_a);
  const MintedToken member_b = MintToken(api(), admin(), "member", org_b);
  json no_parameters = {{"parameters", json::object()}};

  EXPECT_EQ(api().Call("POST", RunPath(org_a, "echo"), reader_a.token, no_parameters).status, 403);
  EXPECT_EQ(api().Call("POST", RunPath(org_b, "echo"), member_a.token, no_parameters).status, 403);
  const ProcessResult cli_refused =
      server().Cli({"workflow", "run", "echo", "--org", org_b}, member_a.token);
  EXPECT_NE(cli_refused.exit_code, 0) << cli_refused.out;

  json in_b = RunToEnd(api(), member_b.token, org_b, "echo");
  ASSERT_EQ(Str(in_b, "status"), "success") << in_b.dump();
  const std::string id_b = Str(in_b, "id");
  json in_a = RunToEnd(api(), member_a.token, org_a, "echo");
  ASSERT_EQ(Str(in_a, "status"), "success") << in_a.dump();

  // Another org's execution and a nonexistent one look the same.
  Reply other = api().Call("GET", "/api/v1/executions/" + id_b, member_a.token);
  Reply nowhere =
      api().Call("GET", "/api/v1/executions/00000000-0000-4000-8000-000000000000", member_a.token);
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_EQ(nowhere.status, 403) << nowhere.body;
  EXPECT_EQ(other.json_body["error"], nowhere.json_body["error"]) << other.body << nowhere.body;
  EXPECT_EQ(other.body.find(org_b), std::string::npos) << other.body;
  EXPECT_EQ(api().Call("GET", "/api/v1/executions/" + id_b + "/logs", member_a.token).status, 403);
  EXPECT_EQ(
      api()
          .Call("POST", "/api/v1/executions/" + id_b + "/cancel", member_a.token, json::object())
          .status,
      403);
  EXPECT_EQ(api().Call("GET", "/api/v1/executions?org_id=" + org_b, member_a.token).status, 403);
  const ProcessResult cli_get = server().Cli({"execution", "get", id_b}, member_a.token);
  EXPECT_NE(cli_get.exit_code, 0) << cli_get.out;

  // Own executions: readable by a reader, listed without the other org's.
  EXPECT_EQ(GetExecution(api(), reader_a.token, Str(in_a, "id"))["status"], "success");
  Reply own = api().Call("GET", "/api/v1/executions", member_a.token);
  ASSERT_EQ(own.status, 200) << own.body;
  for (const auto& e : own.json_body["executions"]) EXPECT_EQ(Str(e, "org_id"), org_a);
  EXPECT_EQ(own.body.find(id_b), std::string::npos);
  // The platform admin sees a nonexistent id as such.
  EXPECT_EQ(
      api().Call("GET", "/api/v1/executions/00000000-0000-4000-8000-000000000000", admin()).status,
      404);
  // Reloading is for platform admins.
  EXPECT_EQ(api().Call("POST", "/api/v1/workflows/reload", member_a.token, json::object()).status,
            403);

  // An execution token reads and writes its org's config, and nothing else.
  json probed = RunToEnd(api(), member_a.token, org_a, "token_probe");
  ASSERT_EQ(Str(probed, "status"), "success") << probed.dump();
  json& statuses = probed["result"];
  for (const std::string refused :
       {"list_workflows", "reload_workflows", "create_token", "list_tokens", "list_executions",
        "run_workflow", "read_audit"}) {
    EXPECT_EQ(statuses[refused], 403) << refused << ": " << statuses.dump();
  }
  EXPECT_EQ(statuses["own_configs"], 200) << statuses.dump();
  // No token was created by it.
  Reply tokens = api().Call("GET", "/api/v1/tokens?org_id=" + org_a, admin());
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  EXPECT_EQ(tokens.body.find("escape"), std::string::npos) << tokens.body;
}

// ---------------------------------------------------------------------------------------
// 8. A C++ workflow executable (examples/cpp_workflow).

TEST_F(WorkflowTest, CppExampleExecutableRunsForAnOrganization) {
#ifndef BIFROST_EXAMPLE_WORKFLOW
  GTEST_SKIP() << "the example target bifrost_example_workflow is not built";
#else
  const std::string org = CreateOrg(api(), admin(), "cpp-org");
  const std::string key = "sk_live_CANARY_" + RandomHex(12);
  SetConfig(api(), admin(), "/api/v1/orgs/" + org, "api_key", "secret", key);
  SetConfig(api(), admin(), "/api/v1/orgs/" + org, "api_base_url", "string",
            "https://api.cpp.example");
  const std::string target = dir().dir() + "/call_api_cpp";
  fs::copy_file(BIFROST_EXAMPLE_WORKFLOW, target, fs::copy_options::overwrite_existing);
  fs::permissions(target, kExecutable, fs::perm_options::replace);
  Reply reloaded = api().Call("POST", "/api/v1/workflows/reload", admin(), json::object());
  ASSERT_EQ(reloaded.status, 200) << reloaded.body;
  bool listed = false;
  for (const auto& def : reloaded.json_body["workflows"]) {
    if (Str(def, "name") == "call_api_cpp") {
      listed = true;
      EXPECT_EQ(Str(def, "kind"), "executable");
      EXPECT_EQ(def["timeout_seconds"], 30);
    }
  }
  ASSERT_TRUE(listed) << reloaded.body;

  json done = RunToEnd(api(), admin(), org, "call_api_cpp", json{{"path", "/v2/ping"}});
  ASSERT_EQ(Str(done, "status"), "success") << done.dump();
  EXPECT_EQ(done["result"], json({{"org", "cpp-org"},
                                  {"url", "https://api.cpp.example/v2/ping"},
                                  {"timeout_ms", 5000},
                                  {"authorized", true}}))
      << done.dump();
  const std::string logs = Logs(api(), admin(), Str(done, "id"));
  EXPECT_NE(logs.find("39-byte key"), std::string::npos) << logs;
  EXPECT_EQ(logs.find(key), std::string::npos);
  EXPECT_EQ(done.dump().find(key), std::string::npos);
#endif
}

// ---------------------------------------------------------------------------------------
// 2. Redaction: a server of its own, whose files and output are scanned afterwards.

TEST(WorkflowRedactionTest, SecretsAreRedactedEverywhereAndStoredNowhere) {
  WorkflowDir dir;
  dir.Add("leaky.py", kLeakyPy);
  ServerProcess server(ServerProcess::Options{.extra_args = WorkflowArgs(dir.dir())});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org = CreateOrg(api, admin, "redact-org");
  const std::string canary = "sk_live_CANARY_" + RandomHex(12);
  // A double quote and a non-ASCII character: escaped differently by every encoder.
  const std::string secret = canary + "\"\xC3\xA9-tail";
  SetConfig(api, admin, "/api/v1/orgs/" + org, "leak_secret", "secret", secret);
  ASSERT_EQ(RevealValue(api, admin, org, "leak_secret"), secret);
  std::vector<std::string> seen;  // everything the callers got

  // Printed, logged, JSON-escaped (both ways), repr()'d, and returned.
  json leaky = RunToEnd(api, admin, org, "leaky");
  seen.push_back(leaky.dump());
  ASSERT_EQ(Str(leaky, "status"), "success") << leaky.dump();
  EXPECT_EQ(leaky["result"], json({{"secret", "[REDACTED]"},
                                   {"list", {"[REDACTED]", "plain"}},
                                   {"text", "before [REDACTED] after"}}))
      << leaky.dump();
  const std::string logs = Logs(api, admin, Str(leaky, "id"));
  seen.push_back(logs);
  for (const std::string line :
       {"print: [REDACTED]\n", "INFO logging: [REDACTED]\n", "json: {\"secret\": \"[REDACTED]\"}\n",
        "json-utf8: {\"secret\": \"[REDACTED]\"}\n", "repr: '[REDACTED]'\n",
        "dict: {'secret': '[REDACTED]'}\n"}) {
    EXPECT_NE(logs.find(line), std::string::npos) << "missing " << line << " in " << logs;
  }
  const ProcessResult cli_logs = server.Cli({"execution", "logs", Str(leaky, "id")}, admin);
  EXPECT_EQ(cli_logs.exit_code, 0) << cli_logs.err;
  EXPECT_NE(cli_logs.out.find("print: [REDACTED]"), std::string::npos) << cli_logs.out;
  seen.push_back(cli_logs.out + cli_logs.err);
  const ProcessResult cli_run = server.Cli({"workflow", "run", "leaky", "--org", org}, admin);
  EXPECT_EQ(cli_run.exit_code, 0) << cli_run.err;
  EXPECT_NE(cli_run.out.find("[REDACTED]"), std::string::npos) << cli_run.out;
  seen.push_back(cli_run.out + cli_run.err);
  const ProcessResult cli_get =
      server.Cli({"execution", "get", Str(leaky, "id"), "--format", "json"}, admin);
  seen.push_back(cli_get.out + cli_get.err);

  // In an exception's message: the error and the traceback.
  json raised = RunToEnd(api, admin, org, "leaky_raise");
  seen.push_back(raised.dump());
  EXPECT_EQ(Str(raised, "status"), "failed") << raised.dump();
  EXPECT_EQ(Str(raised, "error"), "RuntimeError: the secret is [REDACTED]") << raised.dump();
  const std::string traceback = Logs(api, admin, Str(raised, "id"));
  seen.push_back(traceback);
  EXPECT_NE(traceback.find("RuntimeError: the secret is [REDACTED]"), std::string::npos)
      << traceback;
  const ProcessResult cli_raised =
      server.Cli({"workflow", "run", "leaky_raise", "--org", org}, admin);
  EXPECT_EQ(cli_raised.exit_code, 1);
  EXPECT_NE(cli_raised.err.find("[REDACTED]"), std::string::npos) << cli_raised.err;
  seen.push_back(cli_raised.out + cli_raised.err);
  const ProcessResult cli_traceback = server.Cli({"execution", "logs", Str(raised, "id")}, admin);
  seen.push_back(cli_traceback.out + cli_traceback.err);

  // A secret the execution writes is redacted as well.
  json written = RunToEnd(api, admin, org, "leaky_written");
  seen.push_back(written.dump());
  ASSERT_EQ(Str(written, "status"), "success") << written.dump();
  EXPECT_EQ(written["result"], json({{"value", "[REDACTED]"}})) << written.dump();
  const std::string written_logs = Logs(api, admin, Str(written, "id"));
  seen.push_back(written_logs);
  EXPECT_NE(written_logs.find("wrote [REDACTED]"), std::string::npos) << written_logs;
  const std::string written_value = RevealValue(api, admin, org, "written_secret");
  EXPECT_TRUE(written_value.starts_with("sk_live_WRITTEN_")) << written_value;

  // The logs of a running execution are redacted too.
  const std::string live = Start(api, admin, org, "leaky_live");
  const std::string live_logs = WaitForLogs(api, admin, live, "live:");
  seen.push_back(live_logs);
  EXPECT_NE(live_logs.find("live: [REDACTED]"), std::string::npos) << live_logs;
  seen.push_back(GetExecution(api, admin, live).dump());
  SetConfig(api, admin, "/api/v1/orgs/" + org, "release", "bool", true);
  json released = Await(api, admin, live);
  seen.push_back(released.dump());
  EXPECT_EQ(Str(released, "status"), "success") << released.dump();
  seen.push_back(Logs(api, admin, live));

  // An error message cut at the server's limit (64 KiB) inside the secret: the piece left
  // is redacted as well.
  for (const std::size_t piece : {1u, 4u, 16u, 40u}) {
    const std::size_t keep = 65536 - std::string("RuntimeError: ").size() - piece;
    json cut = RunToEnd(api, admin, org, "cut_error", json{{"keep", std::to_string(keep)}});
    seen.push_back(cut.dump());
    EXPECT_EQ(Str(cut, "status"), "failed") << cut.dump().substr(0, 300);
    const std::string error = Str(cut, "error");
    EXPECT_EQ(error, "RuntimeError: " + std::string(keep, 'y') + "[REDACTED]")
        << "cut " << piece << " bytes into the secret: ..." << error.substr(error.size() - 100);
    seen.push_back(Logs(api, admin, Str(cut, "id")));
  }

  // A secret the execution inherits from the global scope (its org has none) as well.
  const std::string heir = CreateOrg(api, admin, "redact-heir");
  const std::string global_canary = "sk_live_CANARY_" + RandomHex(12) + "-global";
  SetConfig(api, admin, "/api/v1/global", "leak_secret", "secret", global_canary);
  json inherited = RunToEnd(api, admin, heir, "leaky");
  seen.push_back(inherited.dump());
  EXPECT_EQ(Str(inherited, "status"), "success") << inherited.dump();
  EXPECT_EQ(inherited["result"]["secret"], "[REDACTED]") << inherited.dump();
  const std::string inherited_logs = Logs(api, admin, Str(inherited, "id"));
  seen.push_back(inherited_logs);
  EXPECT_NE(inherited_logs.find("print: [REDACTED]"), std::string::npos) << inherited_logs;

  Reply listed = api.Call("GET", "/api/v1/executions?org_id=" + org + "&limit=500", admin);
  seen.push_back(listed.body);

  for (const std::string& text : seen) {
    EXPECT_EQ(text.find("CANARY"), std::string::npos) << "the secret leaked: " << text;
    EXPECT_EQ(text.find("sk_live_WRITTEN_"), std::string::npos) << "the secret leaked: " << text;
  }

  // Nothing of either secret in the database files or the server's output.
  EXPECT_EQ(server.Stop(), 0);
  const std::string output = server.Stdout() + server.Stderr();
  EXPECT_NE(output.find("listening on"), std::string::npos);
  EXPECT_EQ(output.find("CANARY"), std::string::npos) << output;
  EXPECT_EQ(output.find("sk_live_WRITTEN_"), std::string::npos) << output;
  // What the database stored. On PostgreSQL the cluster's write-ahead log, which other tests
  // write to as well, is searched for these secrets only; the database's own contents and
  // files for any piece of one.
  const std::string files = testing::StoredBytes(server.storage());
  const std::string own = testing::StoredBytes(server.storage(), testing::StoredScope::kOwn);
  ASSERT_FALSE(own.empty());
  EXPECT_NE(own.find("[REDACTED]"), std::string::npos) << "the executions are not stored";
  for (const std::string& stored : {canary, global_canary, written_value}) {
    EXPECT_EQ(files.find(stored), std::string::npos) << "a secret reached the database files";
  }
  EXPECT_EQ(own.find("CANARY"), std::string::npos) << "a secret reached the database files";
  EXPECT_EQ(own.find("sk_live_WRITTEN_"), std::string::npos)
      << "a secret reached the database files";
}

// Logs cut at --workflow-max-output inside a secret: the piece before the cut is redacted.
TEST(WorkflowRedactionTest, SecretCutByTheOutputLimitIsRedacted) {
  WorkflowDir dir;
  dir.Add("leaky.py", kLeakyPy);
  std::vector<std::string> args = WorkflowArgs(dir.dir());
  args.push_back("--workflow-max-output");
  args.push_back("1024");
  ServerProcess server(ServerProcess::Options{.extra_args = args});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org = CreateOrg(api, admin, "cut-org");
  const std::string secret = "sk_live_CANARY_" + RandomHex(12) + "\"\xC3\xA9-tail";
  SetConfig(api, admin, "/api/v1/orgs/" + org, "leak_secret", "secret", secret);
  const std::string redacted(kRedactedText);
  // Cut after 1, 4, 15 ("sk_live_CANARY_"), 39 bytes of the secret, and inside the "é".
  for (const std::size_t piece : {1u, 4u, 15u, 39u, 41u}) {
    const std::size_t keep = 1024 - piece;
    json done = RunToEnd(api, admin, org, "cut_logs", json{{"keep", std::to_string(keep)}});
    EXPECT_EQ(Str(done, "status"), "success") << done.dump();
    EXPECT_EQ(done["logs_truncated"], true) << done.dump();
    Reply logs = api.Call("GET", "/api/v1/executions/" + Str(done, "id") + "/logs", admin);
    ASSERT_EQ(logs.status, 200) << logs.body;
    EXPECT_EQ(logs.json_body["truncated"], true);
    const std::string text = Str(logs.json_body, "logs");
    EXPECT_EQ(text.find("CANARY"), std::string::npos) << text.substr(keep > 20 ? keep - 20 : 0);
    EXPECT_EQ(text.find("sk_l"), std::string::npos) << text.substr(keep > 20 ? keep - 20 : 0);
    // The x's, then what is left of "[REDACTED]" within the limit.
    ASSERT_GT(text.size(), keep) << "cut " << piece << ": "
                                 << text.substr(keep > 20 ? keep - 20 : 0);
    EXPECT_EQ(text.substr(0, keep), std::string(keep, 'x'));
    const std::string tail = text.substr(keep);
    EXPECT_TRUE(redacted.starts_with(tail))
        << "cut " << piece << " bytes into the secret: " << tail;
    EXPECT_LE(text.size(), 1024u);
  }
  EXPECT_EQ(server.Stop(), 0);
  // The secret up to its quote (which JSON escapes) anywhere, also in the cluster's shared
  // write-ahead log on PostgreSQL; any piece of one in the database's own contents and files.
  EXPECT_EQ(testing::StoredBytes(server.storage()).find(secret.substr(0, secret.find('"'))),
            std::string::npos)
      << "a secret reached the database files";
  EXPECT_EQ(testing::StoredBytes(server.storage(), testing::StoredScope::kOwn).find("CANARY"),
            std::string::npos)
      << "a secret reached the database files";
}

// A workflow that returns a JSON text it built around the secret (a request body, a
// header): the result then holds the secret escaped twice.
TEST(WorkflowRedactionTest, SecretInsideAReturnedJsonTextIsRedacted) {
  WorkflowDir dir;
  dir.Add("leaky.py", kLeakyPy);
  ServerProcess server(ServerProcess::Options{.extra_args = WorkflowArgs(dir.dir())});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org = CreateOrg(api, admin, "nested-org");
  const std::string secret = "sk_live_CANARY_" + RandomHex(12) + "\"\xC3\xA9-tail";
  SetConfig(api, admin, "/api/v1/orgs/" + org, "leak_secret", "secret", secret);
  json done = RunToEnd(api, admin, org, "leaky_nested");
  EXPECT_EQ(Str(done, "status"), "success") << done.dump();
  EXPECT_EQ(done.dump().find("CANARY"), std::string::npos) << "the secret leaked: " << done.dump();
  EXPECT_EQ(server.Stop(), 0);
  // The secret up to its quote (which JSON escapes) anywhere, also in the cluster's shared
  // write-ahead log on PostgreSQL; any piece of one in the database's own contents and files.
  EXPECT_EQ(testing::StoredBytes(server.storage()).find(secret.substr(0, secret.find('"'))),
            std::string::npos)
      << "a secret reached the database files";
  EXPECT_EQ(testing::StoredBytes(server.storage(), testing::StoredScope::kOwn).find("CANARY"),
            std::string::npos)
      << "a secret reached the database files";
}

// ---------------------------------------------------------------------------------------
// 4. The concurrency limit: a server running one execution at a time.

TEST(WorkflowConcurrencyTest, SecondRunWaitsForTheFirstAndBothFinish) {
  WorkflowDir dir;
  dir.Add("gate.py", kGatePy);
  std::vector<std::string> args = WorkflowArgs(dir.dir());
  args.push_back("--workflow-concurrency");
  args.push_back("1");
  ServerProcess server(ServerProcess::Options{.extra_args = args});
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string admin = server.admin_token();
  const std::string org = CreateOrg(api, admin, "gated-org");
  const MintedToken member = MintToken(api, admin, "member", org);

  const ProcessResult first_run =
      server.Cli({"workflow", "run", "gate", "--org", org, "--no-wait"}, member.token);
  ASSERT_EQ(first_run.exit_code, 0) << first_run.err;
  const std::string first = TrimNewline(first_run.out);
  ASSERT_TRUE(IsUuid(first)) << first_run.out;
  WaitForStatus(api, member.token, first, "running");
  WaitForLogs(api, member.token, first, "waiting for release");

  const ProcessResult second_run =
      server.Cli({"workflow", "run", "gate", "--org", org, "--no-wait"}, member.token);
  ASSERT_EQ(second_run.exit_code, 0) << second_run.err;
  const std::string second = TrimNewline(second_run.out);
  ASSERT_TRUE(IsUuid(second)) << second_run.out;
  // The first holds the only slot until it is released, whatever the machine's speed.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(Str(GetExecution(api, member.token, second), "status"), "pending");
  EXPECT_TRUE(GetExecution(api, member.token, second)["started_at"].is_null());
  EXPECT_EQ(Str(GetExecution(api, member.token, first), "status"), "running");
  const ProcessResult pending =
      server.Cli({"execution", "list", "--status", "pending", "--format", "json"}, member.token);
  ASSERT_EQ(pending.exit_code, 0) << pending.err;
  json pending_list = json::parse(pending.out, nullptr, false);
  ASSERT_TRUE(pending_list.is_array()) << pending.out;
  ASSERT_EQ(pending_list.size(), 1u) << pending.out;
  EXPECT_EQ(Str(pending_list[0], "id"), second);

  // A third, cancelled while it waits, never runs.
  const std::string third = Start(api, member.token, org, "gate");
  EXPECT_EQ(Str(GetExecution(api, member.token, third), "status"), "pending");
  const ProcessResult cancelled = server.Cli({"execution", "cancel", third}, member.token);
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  json third_done = Await(api, member.token, third);
  EXPECT_EQ(Str(third_done, "status"), "cancelled") << third_done.dump();
  EXPECT_TRUE(third_done["started_at"].is_null()) << third_done.dump();
  EXPECT_NE(Str(third_done, "error").find("before it started"), std::string::npos)
      << third_done.dump();

  SetConfig(api, admin, "/api/v1/orgs/" + org, "release", "bool", true);
  json first_done = Await(api, member.token, first);
  json second_done = Await(api, member.token, second);
  EXPECT_EQ(Str(first_done, "status"), "success") << first_done.dump();
  EXPECT_EQ(Str(second_done, "status"), "success") << second_done.dump();
  EXPECT_EQ(first_done["result"], "released");
  EXPECT_EQ(second_done["result"], "released");
  // One at a time: the second started when the first had finished.
  EXPECT_GE(Str(second_done, "started_at"), Str(first_done, "finished_at"));
  EXPECT_EQ(Str(GetExecution(api, member.token, third), "status"), "cancelled");

  // Stopping the server ends a running execution and its process (found by the workflow
  // file's path, unique to this test, on its command line).
  const std::string held_org = CreateOrg(api, admin, "never-released");
  const std::string held = Start(api, admin, held_org, "gate");
  WaitForLogs(api, admin, held, "waiting for release");
  EXPECT_FALSE(ProcessesWith(dir.dir()).empty()) << "the running workflow is not visible";
  EXPECT_EQ(server.Stop(), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<std::string> left = ProcessesWith(dir.dir());
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    left = ProcessesWith(dir.dir());
  }
  EXPECT_TRUE(left.empty()) << "a workflow process outlived the server: " << left.front();
  // Restarted on the same data, the server shows how that execution ended.
  ServerProcess again(
      testing::On(server.storage(), {.extra_args = WorkflowArgs(dir.dir()), .init = false}));
  ASSERT_FALSE(again.address().empty());
  Api api_again(again.address());
  json ended = GetExecution(api_again, admin, held);
  EXPECT_EQ(Str(ended, "status"), "cancelled") << ended.dump();
  EXPECT_NE(Str(ended, "error").find("stopping"), std::string::npos) << ended.dump();
  EXPECT_EQ(again.Stop(), 0);
}

}  // namespace
}  // namespace bifrost::e2e
