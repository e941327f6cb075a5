// The controlling terminal: whether a stream is one, and reading a value without echo.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bifrost::cli {

bool IsTerminal(int fd);

// Writes `prompt` to stderr and reads one line from stdin (a terminal) with echo turned off,
// restoring the terminal afterwards, also when interrupted by SIGINT, SIGTERM or SIGHUP. The
// line is returned without its newline; nullopt on end of input.
std::optional<std::string> ReadLineWithoutEcho(std::string_view prompt);

}  // namespace bifrost::cli
