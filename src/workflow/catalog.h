// The workflows of a directory (docs/workflows.md): Python files scanned for @workflow
// functions by the SDK's own scanner, and executables that describe themselves. A broken
// file is reported and skipped; the rest load.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "workflow/process.h"

namespace bifrost::workflow {

struct WorkflowDef {
  std::string name;
  std::string description;
  enum class Kind { kPython, kExecutable } kind = Kind::kPython;
  std::string file;      // absolute path
  std::string function;  // Python: the function's qualified name; "" for an executable
  std::optional<std::int64_t> timeout_seconds;  // nullopt: the server's default
};

struct LoadError {
  std::string file;
  std::string error;  // one line
};

struct Catalog {
  std::vector<WorkflowDef> workflows;  // sorted by name
  std::vector<LoadError> errors;
  UnixMicros loaded_at = 0;
  const WorkflowDef* Find(std::string_view name) const;
};

// How to run the scanner and the describe calls: the same isolation as an execution.
struct ScanEnvironment {
  std::string python;    // absolute path of the interpreter
  std::string sdk_dir;   // on PYTHONPATH
  std::string work_dir;  // HOME/TMPDIR and the working directory of the scans
  int run_as_uid = -1;
  int run_as_gid = -1;
  int landlock_ruleset_fd = -1;  // borrowed; -1 = no Landlock
  std::chrono::milliseconds python_timeout{60'000};
  std::chrono::milliseconds describe_timeout{10'000};
};

// Workflow names: ^[A-Za-z0-9_.-]{1,128}$.
bool IsValidWorkflowName(std::string_view name);

// Scans `dir`. kNotFound if `dir` is not a readable directory; kUnavailable if the Python
// scanner cannot run at all. Everything wrong with one file is a LoadError.
// `max_timeout_seconds` bounds a workflow's own timeout_seconds.
Result<Catalog> LoadCatalog(const std::string& dir, const ScanEnvironment& env,
                            std::int64_t max_timeout_seconds, const Clock& clock);

}  // namespace bifrost::workflow
