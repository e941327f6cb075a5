#include "tests/support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bifrost::testing {

std::string BifrostBinary() {
  const char* env = std::getenv("BIFROST_BINARY");
  return env != nullptr ? env : BIFROST_BINARY;
}

ServerProcess::ServerProcess(Options options) : options_(std::move(options)) {
  data_dir_ = options_.data_dir.empty() ? dir_.path() + "/data" : options_.data_dir;
  const std::string key_env = "BIFROST_SECRET_KEY=" + options_.secret_key;
  if (options_.init) {
    std::vector<std::string> init_env = options_.init_env;
    init_env.push_back(key_env);
    const auto init = RunProcess({BifrostBinary(), "init", "--data", data_dir_, "--format", "json"},
                                 "", init_env);
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

  std::vector<std::string> args = {BifrostBinary(), "serve", "--data", data_dir_, "--listen",
                                   "127.0.0.1:0"};
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
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
