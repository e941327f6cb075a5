#include "tests/support/server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/postgres_test.h"

namespace bifrost::testing {
namespace {

namespace fs = std::filesystem;

// Debian's postgresql-15 binaries (psql, pg_dump), as tests/support/postgres_cluster.sh.
std::string PostgresBin(const std::string& tool) {
  const char* bin = std::getenv("BIFROST_PG_BIN");
  std::string path = bin != nullptr && *bin != '\0' ? bin : "/usr/lib/postgresql/15/bin";
  path += '/';
  path += tool;
  return path;
}

std::string Python() {
  const char* python = std::getenv("BIFROST_PYTHON");
  return python != nullptr ? python : BIFROST_PYTHON;
}

// A label for a test's database: the running test's name in [a-z0-9_], short.
std::string DatabaseLabel() {
  std::string label = "e2e";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return label;
  label += '_';
  for (const char c : std::string(info->name())) {
    if (label.size() >= 28) break;
    const auto u = static_cast<unsigned char>(c);
    label += std::isalnum(u) != 0 ? static_cast<char>(std::tolower(u)) : '_';
  }
  return label;
}

// Every regular file under `dir` (recursively) whose modification time is at least `since`
// (0: all), appended to `out`.
void AppendFiles(const std::string& dir, std::time_t since, std::string& out) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string path = it->path().string();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_mtime < since) continue;
    out += ReadFileOrEmpty(path);
  }
  EXPECT_FALSE(ec) << "cannot list " << dir << ": " << ec.message();
}

// The first field of the first row psql printed, or "" (the test has failed).
std::string SqlValue(const Storage& storage, const std::string& sql) {
  const ProcessResult r = RunSqlOn(storage, sql);
  EXPECT_EQ(r.exit_code, 0) << sql << ": " << r.err;
  return r.out.substr(0, r.out.find_first_of("\x1f\n"));
}

}  // namespace

std::string BifrostBinary() {
  const char* env = std::getenv("BIFROST_BINARY");
  return env != nullptr ? env : BIFROST_BINARY;
}

std::string_view TestBackend() {
  const char* env = std::getenv("BIFROST_TEST_BACKEND");
  const std::string_view backend = env != nullptr ? env : "";
  if (backend == "postgresql") return "postgresql";
  if (!backend.empty() && backend != "sqlite") {
    ADD_FAILURE() << "BIFROST_TEST_BACKEND is '" << backend << "': it must be sqlite or postgresql";
  }
  return "sqlite";
}

std::vector<std::string> Storage::Args() const {
  if (postgresql()) return {"--database", database_url};
  if (!data_dir.empty()) return {"--data", data_dir};
  return {};
}

Storage NewStorage(const std::string& dir) {
  Storage storage;
  if (TestBackend() == "postgresql") {
    storage.created = std::time(nullptr);
    storage.database_url = NewPostgresDatabase(DatabaseLabel());  // fails the test if it cannot
  } else {
    storage.data_dir = dir + "/data";
  }
  return storage;
}

ProcessResult RunSqlOn(const Storage& storage, const std::string& sql) {
  if (storage.postgresql()) {
    return RunProcess({PostgresBin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F",
                       "\x1f", "-d", storage.database_url, "-c", sql});
  }
  // One statement: its rows. A script (several statements): executescript, no rows.
  static const std::string kScript =
      "import sqlite3, sys\n"
      "c = sqlite3.connect(sys.argv[1], timeout=30)\n"
      "try:\n"
      "    rows = c.execute(sys.argv[2]).fetchall()\n"
      "except (sqlite3.ProgrammingError, sqlite3.Warning):\n"
      "    c.executescript(sys.argv[2])\n"
      "    rows = []\n"
      "c.commit()\n"
      "c.close()\n"
      "for r in rows:\n"
      "    print('\\x1f'.join('' if v is None else str(v) for v in r))\n";
  return RunProcess({Python(), "-c", kScript, storage.data_dir + "/bifrost.db", sql});
}

std::string StoredBytes(const Storage& storage, StoredScope scope) {
  std::string all;
  if (!storage.postgresql()) {
    AppendFiles(storage.data_dir, 0, all);
    return all;
  }
  const ProcessResult dump = RunProcess(
      {PostgresBin("pg_dump"), "--no-owner", "--no-privileges", "-d", storage.database_url});
  EXPECT_EQ(dump.exit_code, 0) << "pg_dump: " << dump.err;
  all += dump.out;
  const std::string cluster = PostgresDataDir();
  if (cluster.empty()) {
    ADD_FAILURE() << "the PostgreSQL test cluster's data directory is unknown";
    return all;
  }
  // The WAL first: the CHECKPOINT below may recycle segments (renamed, mtime kept).
  if (scope == StoredScope::kWithSharedLog) {
    AppendFiles(cluster + "/pg_wal", storage.created - 2, all);
  }
  EXPECT_EQ(RunSqlOn(storage, "CHECKPOINT").exit_code, 0);
  const std::string oid =
      SqlValue(storage, "SELECT oid FROM pg_database WHERE datname = current_database()");
  if (oid.empty()) return all;
  AppendFiles(cluster + "/base/" + oid, 0, all);
  return all;
}

std::string StorageFingerprint(const Storage& storage) {
  if (!storage.postgresql()) return ReadFileOrEmpty(storage.data_dir + "/bifrost.db");
  // A fixed \restrict key: pg_dump otherwise writes a random one into every dump.
  const ProcessResult dump =
      RunProcess({PostgresBin("pg_dump"), "--no-owner", "--no-privileges",
                  "--restrict-key=bifrostfingerprint", "-d", storage.database_url});
  EXPECT_EQ(dump.exit_code, 0) << "pg_dump: " << dump.err;
  return dump.out;
}

ServerProcess::Options On(const Storage& storage, ServerProcess::Options options) {
  options.data_dir = storage.data_dir;
  options.database_url = storage.database_url;
  return options;
}

ServerProcess::ServerProcess(Options options) : options_(std::move(options)) {
  if (!options_.data_dir.empty() && !options_.database_url.empty()) {
    ADD_FAILURE() << "ServerProcess: give data_dir or database_url, not both";
    return;
  }
  if (!options_.database_url.empty()) {
    storage_.database_url = options_.database_url;
    storage_.created = std::time(nullptr);
  } else if (!options_.data_dir.empty()) {
    storage_.data_dir = options_.data_dir;
  } else {
    storage_ = NewStorage(dir_.path());
    if (storage_.Args().empty()) return;  // no PostgreSQL cluster: the test has failed
  }
  const std::vector<std::string> storage_args = storage_.Args();
  const std::string key_env = "BIFROST_SECRET_KEY=" + options_.secret_key;
  if (options_.init) {
    std::vector<std::string> init_env = options_.init_env;
    init_env.push_back(key_env);
    std::vector<std::string> argv = {BifrostBinary(), "init"};
    argv.insert(argv.end(), storage_args.begin(), storage_args.end());
    argv.insert(argv.end(), {"--format", "json"});
    const auto init = RunProcess(argv, "", init_env);
    if (init.exit_code != 0) {
      ADD_FAILURE() << "bifrost init failed (" << init.exit_code << "): " << init.err;
      return;
    }
    const auto json = nlohmann::json::parse(init.out, nullptr, false);
    if (!json.is_object() || !json.contains("token")) {
      ADD_FAILURE() << "bifrost init printed no token: " << init.out;
      return;
    }
    admin_token_ = json["token"].get<std::string>();
  }

  std::vector<std::string> args = {BifrostBinary(), "serve"};
  args.insert(args.end(), storage_args.begin(), storage_args.end());
  args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<std::string> extra_env = options_.extra_env;
  // The server gets the key from the environment unless the test supplies its own key setting.
  const bool own_key = std::any_of(extra_env.begin(), extra_env.end(), [](const std::string& e) {
    return e.starts_with("BIFROST_SECRET_KEY");
  });
  if (!own_key) extra_env.push_back(key_env);
  std::vector<std::string> env = ChildEnvironment(extra_env);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const std::string out_path = dir_.path() + "/stdout";
  const std::string err_path = dir_.path() + "/stderr";
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int rc = posix_spawn(&pid_, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << args[0] << ": " << std::strerror(rc);
    pid_ = -1;
    return;
  }
  // Wait for the "listening on" line (or for the process to die). A bounded wait for an
  // event, not a timing assertion.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string out = Stdout();
    const auto pos = out.find("listening on ");
    if (pos != std::string::npos && out.find('\n', pos) != std::string::npos) {
      address_ = out.substr(pos + 13, out.find('\n', pos) - pos - 13);
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      ADD_FAILURE() << "bifrost serve exited with " << exit_code_ << ": " << Stderr();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "bifrost serve did not print its address: " << Stderr();
}
ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int ServerProcess::Stop() {
  if (pid_ <= 0) return exit_code_;
  kill(pid_, SIGTERM);
  int status = 0;
  // A bounded wait for the exit: a hung shutdown fails the test instead of hanging it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "bifrost serve did not exit within 60 s of SIGTERM";
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_code_ = 128 + SIGKILL;
}

std::string ServerProcess::Stdout() const { return ReadFileOrEmpty(dir_.path() + "/stdout"); }
std::string ServerProcess::Stderr() const { return ReadFileOrEmpty(dir_.path() + "/stderr"); }

ProcessResult ServerProcess::Cli(const std::vector<std::string>& args, const std::string& token,
                                 const std::string& input,
                                 const std::vector<std::string>& extra_env) const {
  std::vector<std::string> argv = {BifrostBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = {"BIFROST_ADDR=" + address_};
  if (!token.empty()) env.push_back("BIFROST_TOKEN=" + token);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  return RunProcess(argv, input, env);
}

}  // namespace bifrost::testing
