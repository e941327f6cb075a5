// --data DIR and --database URL: where a command that opens the database itself (`serve`,
// `init`, `keys ...`, `import bifrost`, `audit verify`) finds it. The same two flags, with
// the same environment variables and the same rule (exactly one), on every such command
// (store/open/open_store.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "cli/cli_error.h"

namespace bifrost::cli {

// Adds --data DIR (env BIFROST_DATA) and --database URL (env BIFROST_DATABASE_URL) to
// `command`, into `data_dir` and `database_url`.
void AddDatabaseFlags(CLI::App* command, std::string& data_dir, std::string& database_url);

// A usage error (exit 2) unless exactly one of the two was given (or neither, when
// `allow_neither`: `serve --dev`) and a URL is a postgresql:// or postgres:// one. The URL is
// never echoed. `command` names the command in the message ("keys rotate").
CliStatus CheckDatabaseFlags(std::string_view command, const std::string& data_dir,
                             const std::string& database_url, bool allow_neither = false);

// Takes BIFROST_DATABASE_URL out of the environment once it has been read, overwriting its
// text (it may carry a password), so that no child process inherits it and
// /proc/self/environ no longer shows it.
void ForgetDatabaseUrlVariable();

// Overwrites with '*' the password of a PostgreSQL URL held in `text` (user:PASSWORD@ and a
// password=... parameter), in place: for the process's own argv, which `ps` shows.
void HideUrlPasswordInPlace(char* text);

}  // namespace bifrost::cli
