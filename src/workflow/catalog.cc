#include "workflow/catalog.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/text.h"

namespace bifrost::workflow {
namespace {

using Json = nlohmann::json;

std::vector<std::string> ScanEnv(const ScanEnvironment& env) {
  return {"PATH=/usr/local/bin:/usr/bin:/bin",
          "LANG=C.UTF-8",
          "HOME=" + env.work_dir,
          "TMPDIR=" + env.work_dir,
          "PYTHONPATH=" + env.sdk_dir,
          "PYTHONDONTWRITEBYTECODE=1",
          "PYTHONUNBUFFERED=1"};
}

ProcessSpec BaseSpec(const ScanEnvironment& env) {
  ProcessSpec spec;
  spec.env = ScanEnv(env);
  spec.working_dir = env.work_dir;
  spec.run_as_uid = env.run_as_uid;
  spec.run_as_gid = env.run_as_gid;
  spec.landlock_ruleset_fd = env.landlock_ruleset_fd;
  spec.max_log_bytes = 64 * 1024;
  spec.max_result_bytes = 4 * 1024 * 1024;
  return spec;
}

// The last non-empty line of a process's output, for an error message (bounded).
std::string LastLine(std::string_view logs) {
  while (!logs.empty() && (logs.back() == '\n' || logs.back() == '\r')) logs.remove_suffix(1);
  const auto newline = logs.rfind('\n');
  std::string_view line = newline == std::string_view::npos ? logs : logs.substr(newline + 1);
  if (line.size() > 300) line = line.substr(0, 300);
  return std::string(line);
}

std::string EndText(const ProcessOutcome& outcome) {
  switch (outcome.end) {
    case ProcessOutcome::End::kExited: {
      std::string text = "exited with status ";
      text += std::to_string(outcome.exit_code);
      return text;
    }
    case ProcessOutcome::End::kSignaled: {
      std::string text = "killed by signal ";
      text += std::to_string(outcome.signal);
      return text;
    }
    case ProcessOutcome::End::kTimedOut:
      return "did not finish in time";
    case ProcessOutcome::End::kCancelled:
      return "was cancelled";
  }
  return "ended";
}

// A workflow's timeout_seconds from JSON: nullopt (absent or null) or 1..max.
Result<std::optional<std::int64_t>> ReadTimeout(const Json& value, std::int64_t max) {
  if (value.is_null()) return std::optional<std::int64_t>();
  if (!value.is_number_integer()) {
    return Fail(ErrorCode::kInvalidArgument, "timeout_seconds must be a whole number of seconds");
  }
  const auto seconds = value.get<std::int64_t>();
  if (seconds < 1 || seconds > max) {
    std::string message = "timeout_seconds must be between 1 and ";
    message += std::to_string(max);
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  return std::optional<std::int64_t>(seconds);
}

std::string StringOr(const Json& object, const char* field) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

Status ScanPython(const std::string& dir, const ScanEnvironment& env, std::int64_t max_timeout,
                  Catalog& catalog) {
  ProcessSpec spec = BaseSpec(env);
  // The scanner's report goes to fd 3, so nothing a module prints can corrupt it.
  spec.argv = {"/bin/sh", "-c", "exec \"$0\" -m bifrost._discover \"$1\" >&3", env.python, dir};
  spec.timeout = env.python_timeout;
  BIFROST_ASSIGN_OR_RETURN(ProcessOutcome outcome, RunProcess(spec));
  Json report = Json::parse(outcome.result, nullptr, /*allow_exceptions=*/false);
  if (outcome.end != ProcessOutcome::End::kExited || outcome.exit_code != 0 ||
      !report.is_object()) {
    std::string message = "the Python workflow scanner (";
    message += env.python;
    message += ") ";
    message += EndText(outcome);
    const std::string last = LastLine(outcome.logs);
    if (!last.empty()) {
      message += ": ";
      message += last;
    }
    return Fail(ErrorCode::kUnavailable, std::move(message));
  }
  if (const auto errors = report.find("errors"); errors != report.end() && errors->is_array()) {
    for (const Json& error : *errors) {
      if (!error.is_object()) continue;
      catalog.errors.push_back({StringOr(error, "file"), StringOr(error, "error")});
    }
  }
  if (const auto found = report.find("workflows"); found != report.end() && found->is_array()) {
    for (const Json& item : *found) {
      if (!item.is_object()) continue;
      WorkflowDef def;
      def.kind = WorkflowDef::Kind::kPython;
      def.name = StringOr(item, "name");
      def.description = StringOr(item, "description");
      def.file = StringOr(item, "file");
      def.function = StringOr(item, "function");
      auto timeout = ReadTimeout(item.value("timeout_seconds", Json()), max_timeout);
      if (!IsValidWorkflowName(def.name)) {
        catalog.errors.push_back({def.file, "workflow name " + QuoteForMessage(def.name) +
                                                " must match ^[A-Za-z0-9_.-]{1,128}$"});
        continue;
      }
      if (!timeout) {
        catalog.errors.push_back(
            {def.file, "workflow '" + def.name + "': " + timeout.error().message()});
        continue;
      }
      def.timeout_seconds = *timeout;
      catalog.workflows.push_back(std::move(def));
    }
  }
  return Ok();
}

// One executable: asks it to describe itself.
void ScanExecutable(const std::string& path, const ScanEnvironment& env, std::int64_t max_timeout,
                    Catalog& catalog) {
  ProcessSpec spec = BaseSpec(env);
  // stdout only: what it says on stderr is not part of its description.
  spec.argv = {"/bin/sh", "-c", "exec \"$0\" --bifrost-describe 2>/dev/null", path};
  spec.timeout = env.describe_timeout;
  auto outcome = RunProcess(spec);
  if (!outcome) {
    catalog.errors.push_back({path, outcome.error().message()});
    return;
  }
  Json description = Json::parse(outcome->logs, nullptr, /*allow_exceptions=*/false);
  if (outcome->end != ProcessOutcome::End::kExited || outcome->exit_code != 0 ||
      !description.is_object()) {
    catalog.errors.push_back(
        {path, "run with --bifrost-describe, it " + EndText(*outcome) +
                   (description.is_object() ? std::string()
                                            : std::string(" without printing a JSON object")) +
                   " (see docs/workflows.md, \"The process protocol\")"});
    return;
  }
  WorkflowDef def;
  def.kind = WorkflowDef::Kind::kExecutable;
  def.file = path;
  def.name = StringOr(description, "name");
  def.description = StringOr(description, "description");
  if (!IsValidWorkflowName(def.name)) {
    catalog.errors.push_back({path, "workflow name " + QuoteForMessage(def.name) +
                                        " must match ^[A-Za-z0-9_.-]{1,128}$"});
    return;
  }
  auto timeout = ReadTimeout(description.value("timeout_seconds", Json()), max_timeout);
  if (!timeout) {
    catalog.errors.push_back({path, "workflow '" + def.name + "': " + timeout.error().message()});
    return;
  }
  def.timeout_seconds = *timeout;
  catalog.workflows.push_back(std::move(def));
}

}  // namespace

const WorkflowDef* Catalog::Find(std::string_view name) const {
  const auto it = std::lower_bound(
      workflows.begin(), workflows.end(), name,
      [](const WorkflowDef& def, std::string_view wanted) { return def.name < wanted; });
  if (it == workflows.end() || it->name != name) return nullptr;
  return &*it;
}

bool IsValidWorkflowName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

Result<Catalog> LoadCatalog(const std::string& dir, const ScanEnvironment& env,
                            std::int64_t max_timeout_seconds, const Clock& clock) {
  std::error_code error;
  const std::filesystem::path root = std::filesystem::absolute(dir, error);
  if (error || !std::filesystem::is_directory(root, error)) {
    return Fail(ErrorCode::kNotFound, "the workflows directory " + dir + " is not a directory");
  }
  Catalog catalog;
  bool has_python = false;
  std::vector<std::string> executables;
  // Advanced with an error code: a range-for's increment throws, and this runs on a worker.
  std::filesystem::directory_iterator listing(root, error);
  for (; !error && listing != std::filesystem::directory_iterator(); listing.increment(error)) {
    const std::filesystem::directory_entry& entry = *listing;
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || name.starts_with("_")) continue;
    // One entry that cannot be examined (a dangling symlink) is skipped, not the directory.
    std::error_code entry_error;
    if (!entry.is_regular_file(entry_error)) continue;
    if (entry.path().extension() == ".py") {
      has_python = true;
      continue;
    }
    if (::access(entry.path().c_str(), X_OK) == 0) executables.push_back(entry.path().string());
  }
  if (error) {
    return Fail(ErrorCode::kNotFound,
                "cannot read the workflows directory " + dir + ": " + error.message());
  }
  if (has_python)
    BIFROST_RETURN_IF_ERROR(ScanPython(root.string(), env, max_timeout_seconds, catalog));
  std::sort(executables.begin(), executables.end());
  for (const std::string& path : executables)
    ScanExecutable(path, env, max_timeout_seconds, catalog);

  // One name, one workflow: the first (Python files, then executables, each by file name)
  // wins and the others are reported.
  std::map<std::string, std::string> seen;  // name -> file
  std::vector<WorkflowDef> unique;
  for (WorkflowDef& def : catalog.workflows) {
    const auto [it, inserted] = seen.emplace(def.name, def.file);
    if (!inserted) {
      catalog.errors.push_back(
          {def.file, "workflow name '" + def.name + "' is already defined in " + it->second});
      continue;
    }
    unique.push_back(std::move(def));
  }
  std::sort(unique.begin(), unique.end(),
            [](const WorkflowDef& a, const WorkflowDef& b) { return a.name < b.name; });
  catalog.workflows = std::move(unique);
  catalog.loaded_at = clock.NowMicros();
  return catalog;
}

}  // namespace bifrost::workflow
