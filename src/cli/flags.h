// Flags several command files share.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace bifrost::cli {

// --format table|json (default table) on `command`, into `format`.
void AddFormat(CLI::App* command, Format& format);

}  // namespace bifrost::cli
