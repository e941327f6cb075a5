// Running one workflow process: a child in its own process group, with exactly the
// environment it is given, its stdin written and closed, stdout and stderr captured and
// merged by line, and a result channel on file descriptor 3 (docs/workflows.md, "The
// process protocol"). The time limit and cancellation kill the whole process group.
//
// Thread-safety: RunProcess may be called from many threads at once; a CancelSignal may be
// fired from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bifrost::workflow {

// Asks a running RunProcess to stop: it kills the process group at once and reports
// kCancelled. Firing before RunProcess starts makes it return kCancelled without spawning.
// Fire() is idempotent, async-signal-unsafe, and wakes the waiting loop at once (no polling
// delay).
class CancelSignal {
 public:
  CancelSignal();
  ~CancelSignal();
  CancelSignal(const CancelSignal&) = delete;
  CancelSignal& operator=(const CancelSignal&) = delete;

  void Fire();
  bool fired() const;
  // A file descriptor that becomes readable once Fire() was called (for poll()).
  int wait_fd() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path (no PATH search)
  std::vector<std::string> env;   // "NAME=value" entries: the child's whole environment
  std::string working_dir;        // chdir there before exec ("" = keep the server's)
  std::string stdin_data;         // written to the child's stdin, which is then closed
  std::chrono::milliseconds timeout{60'000};
  // Merged stdout+stderr kept, at most (bytes). Output past it is read and dropped (the
  // child never blocks on a full pipe) and `logs_truncated` is set.
  std::size_t max_log_bytes = 1 << 20;
  // The result document on fd 3, at most (bytes); past it `result_too_large` is set and
  // `result` is empty.
  std::size_t max_result_bytes = 1 << 20;
  // Sandbox, applied in the child after the file descriptors are set up and before exec,
  // in this order (a failure of any step ends the child with status 126 and the parent
  // reports kUnavailable "cannot start <argv[0]>: sandbox: <step>: <strerror>"):
  //   run_as_uid >= 0: setgroups(0, nullptr), setgid(run_as_gid), setuid(run_as_uid);
  //   always: prctl(PR_SET_NO_NEW_PRIVS, 1) (no setuid binary can regain privileges);
  //   landlock_ruleset_fd >= 0: landlock_restrict_self(landlock_ruleset_fd, 0) (see
  //   workflow/sandbox.h; the descriptor is the caller's, inherited only until exec).
  int run_as_uid = -1;
  int run_as_gid = -1;
  int landlock_ruleset_fd = -1;
};

struct ProcessOutcome {
  enum class End {
    kExited,     // exit_code is set
    kSignaled,   // killed by `signal` (not by us)
    kTimedOut,   // we killed it: the time limit passed
    kCancelled,  // we killed it: CancelSignal fired
  };
  End end = End::kExited;
  int exit_code = 0;
  int signal = 0;
  // stdout and stderr merged in the order complete lines arrived (a line is never split
  // by the other stream's output; a last line without a newline is kept as it is).
  std::string logs;
  bool logs_truncated = false;
  std::string result;  // all bytes written to fd 3 (may be empty)
  bool result_too_large = false;
  std::chrono::milliseconds duration{0};
};

// Runs the process to its end (or kill). Every process of its group is killed (SIGKILL)
// before this returns, also when the main process exited on its own and left children
// behind. No file descriptor of the server other than 0, 1, 2 and 3 reaches the child.
// `on_output` (optional) is called with each chunk appended to `logs`, from the calling
// thread, as it arrives.
// Errors: kInvalidArgument for an empty argv or a relative argv[0]; kUnavailable when the
// process cannot be started (fork/exec failed: the message names argv[0] and the reason).
Result<ProcessOutcome> RunProcess(const ProcessSpec& spec, const CancelSignal* cancel = nullptr,
                                  const std::function<void(std::string_view)>& on_output = {});

}  // namespace bifrost::workflow
