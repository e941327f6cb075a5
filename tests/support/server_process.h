// Runs the real `bifrost` binary for end-to-end tests: `bifrost init` into a temporary data
// directory, then `bifrost serve` on 127.0.0.1 port 0, its stdout and stderr captured in
// files, stopped with SIGTERM.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace bifrost::testing {

// The path of the built `bifrost` binary (BIFROST_BINARY, compiled in).
std::string BifrostBinary();

class ServerProcess {
 public:
  struct Options {
    std::string secret_key = "e2e-test-secret-key-0123456789-abcdefgh";
    std::vector<std::string> extra_args;  // appended to `bifrost serve`
    std::vector<std::string> extra_env;   // "NAME=value"
    bool init = true;                     // run `bifrost init` first
    std::vector<std::string> init_env;    // "NAME=value" for `bifrost init`
    std::string data_dir;                 // default: a fresh temporary directory
  };

  // Starts the server; on failure the test fails and address() is empty.
  explicit ServerProcess(Options options);
  ServerProcess() : ServerProcess(Options{}) {}
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }  // "http://127.0.0.1:PORT"
  const std::string& admin_token() const { return admin_token_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& secret_key() const { return options_.secret_key; }
  pid_t pid() const { return pid_; }  // -1 when not running

  // Sends SIGTERM and waits up to 60 s (then kills it and fails the test); returns the exit
  // code (128+signal if killed).
  int Stop();
  // SIGKILL, no chance to clean up (a crash); waits for the process to be gone.
  void Kill();
  // Everything the server wrote to stdout and stderr so far.
  std::string Stdout() const;
  std::string Stderr() const;

  // Runs `bifrost ARGS...` as a client of this server (BIFROST_ADDR set, BIFROST_TOKEN =
  // `token` unless empty), feeding `input` on stdin.
  ProcessResult Cli(const std::vector<std::string>& args, const std::string& token,
                    const std::string& input = "",
                    const std::vector<std::string>& extra_env = {}) const;

 private:
  Options options_;
  TempDir dir_;
  std::string data_dir_;
  std::string address_;
  std::string admin_token_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace bifrost::testing
