// What a workflow process may touch on the file system, beyond its own user's permissions
// (docs/workflows.md, "Isolation"). A Landlock ruleset (Linux 5.13 and later) allows reading
// the system's programs and libraries, a short list of configuration files, the workflows
// directory and the SDK, and reading and writing the execution's own directory; everything
// else (the data directory, key files, the rest of /etc and /home) cannot be opened, whatever
// its permissions.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace bifrost::workflow {

// The Landlock ABI version of the running kernel, or 0 when Landlock is not available.
int LandlockAbi();

struct SandboxPaths {
  std::vector<std::string> read;        // directories or files: read and execute
  std::vector<std::string> read_write;  // directories: everything inside
};

// The system paths every workflow needs read access to (programs, libraries, TLS roots,
// name resolution, time zones, /proc and the random devices; /dev/null also for writing), plus the
// installation prefix of `interpreter` (a Python outside /usr). Paths that do not exist are
// skipped by MakeLandlockRuleset.
SandboxPaths SystemSandboxPaths(const std::string& interpreter);

// A new Landlock ruleset file descriptor (close-on-exec) that allows exactly `paths`; the
// caller closes it. kFailedPrecondition when Landlock is not available.
Result<int> MakeLandlockRuleset(const SandboxPaths& paths);

// The uid and gid of a user name from the password database. kNotFound if unknown.
struct UserIds {
  int uid = -1;
  int gid = -1;
};
Result<UserIds> LookupUser(const std::string& name);

}  // namespace bifrost::workflow
