// The Python SDK (sdk/python/bifrost), compiled into the binary, and writing it out where
// workflow processes import it from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bifrost::workflow {

struct EmbeddedFile {
  std::string_view path;  // relative, e.g. "bifrost/__init__.py"
  std::string_view content;
};

// Every file of the SDK, sorted by path.
const std::vector<EmbeddedFile>& PythonSdkFiles();

// Writes the SDK into a new directory (mode 0755, files 0444: the workflows' user may not be
// the server's) under `parent` and
// returns its path: the directory to put on PYTHONPATH. kUnavailable naming the path when
// it cannot be written.
Result<std::string> WritePythonSdk(const std::string& parent);

}  // namespace bifrost::workflow
