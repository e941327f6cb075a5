// Local commands: they open the database themselves (like `init` and `audit verify`) rather
// than talking to a server, and may run while servers serve the same database. DB is
// --data DIR or --database URL (cli/database_flags.h).
//
//   bifrost keys status  DB [--format table|json]
//   bifrost keys rotate  DB [--org ORG | --all] [--batch-size N] [--format table|json]
//   bifrost import bifrost DB --organizations FILE --configs FILE
//                          --source-key-file FILE [--dry-run] [--format table|json]
//
// Each Add* function registers its subcommand tree on `app`; when one of them is chosen,
// its callback sets `action` to the function that runs it. Progress goes to io.err (a bar on
// a terminal, plain lines otherwise), results to io.out.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/cli.h"
#include "cli/cli_error.h"

namespace bifrost::cli {

void AddKeysCommands(CLI::App& app, std::function<CliStatus()>& action, CliIo& io);
void AddImportCommands(CLI::App& app, std::function<CliStatus()>& action, CliIo& io);

}  // namespace bifrost::cli
