// The `bifrost` command line: `bifrost serve`, `bifrost init` and the client commands.
//
// RunCli parses arguments with CLI11 and runs one command against the injected I/O, so the
// whole CLI is testable in-process; Main wires it to the real process (stdin, stdout, stderr,
// the environment, the terminal).
#pragma once

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bifrost::cli {

struct CliIo {
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  bool stdin_is_terminal = false;
  bool stdout_is_terminal = false;  // tables use ANSI bold only on a terminal
  // BIFROST_ADDR, BIFROST_TOKEN, BIFROST_CACERT, NO_COLOR. (Flags of `serve` and `init` read
  // the real environment through CLI11.)
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  // Prompts and reads a line with echo off; used when a value is read and stdin is a terminal.
  std::function<std::optional<std::string>(std::string_view prompt)> read_hidden_line;
};

// The process's own stdin/stdout/stderr, environment and terminal.
CliIo ProcessIo();

// Runs `bifrost args...` (args[0] is the program name) and returns the exit code: 0 success,
// 1 error, 2 usage error, 3 not found. Errors are one line "bifrost: <message>" on io.err.
// Never throws: an unexpected exception is "bifrost: internal error: ..." and exit 1.
int RunCli(const std::vector<std::string>& args, CliIo& io);

// Makes the process not dumpable and its core file limit 0 (soft and hard): the CLI holds
// the token, and `config get` and `token create` hold secrets.
void DisableCoreDumps();

// main(): DisableCoreDumps, then RunCli with ProcessIo.
int Main(int argc, char** argv);

}  // namespace bifrost::cli
