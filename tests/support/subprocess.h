// Runs a child process for tests: argv, bytes for its stdin, and its exit status, stdout and
// stderr collected without deadlocking on full pipes.
#pragma once

#include <string>
#include <vector>

namespace bifrost::testing {

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// The environment of a child process: the test's own, with `extra_env` ("NAME=value")
// replacing variables of the same name. The runner's BIFROST_* settings never reach a
// child: tests must not depend on them.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra_env);

// Runs argv[0] (looked up on PATH when it has no '/'), feeding `input` to its stdin.
// Environment: the test's own without any BIFROST_* variable, with `extra_env`
// ("NAME=value") added or replacing.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "",
                         const std::vector<std::string>& extra_env = {});

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The whole contents of a file ("" if it does not exist).
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace bifrost::testing
