#include "workflow/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

namespace bifrost::workflow {

namespace {

using Clock = std::chrono::steady_clock;

// How long the run waits, once the main process has exited, for the other processes of its
// group to close stdout, stderr and the result pipe before they are killed.
constexpr std::chrono::milliseconds kExitGrace{200};
// The poll interval when there is no file descriptor to wait on (no pidfd, no eventfd).
constexpr int kFallbackPollMs = 10;
constexpr std::size_t kReadChunk = 64 * 1024;
// Reads per pipe after the group was killed: what is left in the pipe buffers.
constexpr int kMaxDrainReads = 256;

std::string ErrnoText(int error) {
  char buf[256];
  // GNU strerror_r returns the message, which may or may not be in `buf`.
  return strerror_r(error, buf, sizeof(buf));
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Makes sure `fd` is numbered 4 or above, so that the child's dup2 onto 0-3 can never
// overwrite another descriptor it still has to duplicate (the server may have closed its
// own standard descriptors). The result is close-on-exec.
bool MoveAbove3(Fd& fd) {
  if (fd.get() > 3) return true;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 4);
  if (moved < 0) return false;
  fd = Fd(moved);
  return true;
}

bool SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// A close-on-exec pipe, both ends numbered 4 or above. Returns 0 or an errno value.
int MakePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
  if (!MoveAbove3(read_end) || !MoveAbove3(write_end)) return errno;
  return 0;
}

// ---- The child, between fork and exec: async-signal-safe calls only. ----

enum class ChildStep : int {
  kSetsid,
  kDup2,
  kChdir,
  kCloseFds,
  kSetgroups,  // sandbox steps from here on
  kSetgid,
  kSetuid,
  kNoNewPrivs,
  kLandlock,
  kExec,
};

const char* ChildStepName(ChildStep step) {
  switch (step) {
    case ChildStep::kSetsid:
      return "setsid";
    case ChildStep::kDup2:
      return "dup2";
    case ChildStep::kChdir:
      return "chdir";
    case ChildStep::kCloseFds:
      return "close_range";
    case ChildStep::kSetgroups:
      return "setgroups";
    case ChildStep::kSetgid:
      return "setgid";
    case ChildStep::kSetuid:
      return "setuid";
    case ChildStep::kNoNewPrivs:
      return "prctl(PR_SET_NO_NEW_PRIVS)";
    case ChildStep::kLandlock:
      return "landlock_restrict_self";
    case ChildStep::kExec:
      return "execve";
  }
  return "?";
}

bool IsSandboxStep(ChildStep step) {
  return step >= ChildStep::kSetgroups && step <= ChildStep::kLandlock;
}

// What the child writes on the report pipe when it cannot exec. 8 bytes: one atomic write.
struct ChildReport {
  int step;
  int error;
};

// Everything the child needs, prepared before fork (the child may not allocate).
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  std::array<int, 4> fds{-1, -1, -1, -1};  // become 0 (stdin), 1, 2, 3; all >= 4
  int dir_fd = -1;                         // fchdir there; -1: stay
  int report_fd = -1;                      // close-on-exec, >= 4
  int landlock_fd = -1;                    // -1: none; >= 4
  int uid = -1;
  int gid = -1;
  int max_fd = 1024;  // for closing descriptors one by one when close_range is missing
};

[[noreturn]] void ChildFail(const ChildPlan& plan, ChildStep step, int error) {
  ChildReport report{static_cast<int>(step), error};
  // Nothing to do if the parent went away.
  if (::write(plan.report_fd, &report, sizeof(report)) < 0) {
  }
  ::_exit(IsSandboxStep(step) ? 126 : 127);
}

// Closes [low, high], one by one if the kernel has no close_range.
void CloseRange(int low, int high, int max_fd) {
  if (low > high) return;
  if (::syscall(SYS_close_range, static_cast<unsigned>(low), static_cast<unsigned>(high), 0u) ==
      0) {
    return;
  }
  for (int fd = low; fd <= std::min(high, max_fd); ++fd) ::close(fd);
}

// Closes every descriptor from 4 up, except `keep_a` and `keep_b` (-1 or below 4: none).
void CloseOtherFds(int keep_a, int keep_b, int max_fd) {
  if (keep_a > keep_b) std::swap(keep_a, keep_b);
  int low = 4;
  for (int keep : {keep_a, keep_b}) {
    if (keep < low) continue;
    CloseRange(low, keep - 1, max_fd);
    low = keep + 1;
  }
  CloseRange(low, INT_MAX, max_fd);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  // Default dispositions: an ignored signal (SIGPIPE, SIGCHLD) would survive exec, and the
  // server's handlers must not run here once signals are unblocked. The parent blocked every
  // signal before fork; the mask is cleared just before exec.
  // The system call itself: the C library refuses to touch the two real-time signals it
  // keeps for its own use (32 and 33), which a parent may nevertheless have left ignored.
  // All zeros is SIG_DFL with no flags and an empty mask in the kernel's own layout.
  struct {
    std::uint64_t words[4];
  } default_action{};
  constexpr long kKernelSigsetBytes = 8;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::syscall(SYS_rt_sigaction, sig, &default_action, nullptr, kKernelSigsetBytes);
    }
  }

  if (::setsid() < 0) ChildFail(plan, ChildStep::kSetsid, errno);
  for (int target = 0; target < 4; ++target) {
    if (::dup2(plan.fds[static_cast<std::size_t>(target)], target) < 0) {
      ChildFail(plan, ChildStep::kDup2, errno);
    }
  }
  if (plan.dir_fd >= 0 && ::fchdir(plan.dir_fd) != 0) ChildFail(plan, ChildStep::kChdir, errno);
  // The report pipe and the Landlock ruleset stay open until exec (both close-on-exec).
  CloseOtherFds(plan.report_fd, plan.landlock_fd, plan.max_fd);

  if (plan.uid >= 0) {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) ChildFail(plan, ChildStep::kSetgroups, errno);
    if (::syscall(SYS_setgid, plan.gid) != 0) ChildFail(plan, ChildStep::kSetgid, errno);
    if (::syscall(SYS_setuid, plan.uid) != 0) ChildFail(plan, ChildStep::kSetuid, errno);
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) {
    ChildFail(plan, ChildStep::kNoNewPrivs, errno);
  }
  if (plan.landlock_fd >= 0) {
    if (::syscall(SYS_landlock_restrict_self, plan.landlock_fd, 0u) != 0) {
      ChildFail(plan, ChildStep::kLandlock, errno);
    }
    ::close(plan.landlock_fd);  // in case the caller's descriptor is not close-on-exec
  }

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.path, plan.argv, plan.envp);
  ChildFail(plan, ChildStep::kExec, errno);
}

// ---- The parent. ----

// Blocks SIGPIPE for the calling thread while it writes the child's stdin, so a child that
// exits without reading makes write() fail with EPIPE instead of killing the server. A
// SIGPIPE raised by our own writes is consumed before the mask is restored.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    if (::sigpending(&pending) == 0) was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &saved_);
  }
  ~SigpipeBlock() {
    if (got_epipe_ && !was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      if (::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero {};
        while (::sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  void NoteEpipe() { got_epipe_ = true; }

 private:
  sigset_t pipe_set_;
  sigset_t saved_;
  bool was_pending_ = false;
  bool got_epipe_ = false;
};

// Kills the group and reaps the main process if the run is left early (an exception from
// `on_output` or from an allocation).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (pid_ <= 0) return;
    KillGroup();
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;

  // The main process is not reaped yet, so its pid (the group id) cannot have been reused.
  void KillGroup() const {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);  // in case it left its group
  }
  // Reaps the main process; returns its wait status, or the errno value negated.
  int Reap() {
    int status = 0;
    pid_t got;
    while ((got = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    int error = errno;
    pid_ = -1;
    return got < 0 ? -error : status;
  }

 private:
  pid_t pid_;
};

// The merged logs: complete lines of either stream, up to the byte limit.
class LogSink {
 public:
  LogSink(ProcessOutcome& outcome, std::size_t max_bytes,
          const std::function<void(std::string_view)>& on_output)
      : outcome_(outcome), max_bytes_(max_bytes), on_output_(on_output) {}

  bool full() const { return full_; }
  std::size_t room() const { return full_ ? 0 : max_bytes_ - outcome_.logs.size(); }

  void Append(std::string_view chunk) {
    if (chunk.empty()) return;
    if (full_) {
      outcome_.logs_truncated = true;
      return;
    }
    std::size_t room_left = room();
    if (chunk.size() > room_left) {
      chunk = chunk.substr(0, Utf8Cut(chunk, room_left));
      outcome_.logs_truncated = true;
      full_ = true;
    }
    if (chunk.empty()) return;
    outcome_.logs.append(chunk);
    if (on_output_) on_output_(chunk);
  }

 private:
  // `n`, moved back to the start of a UTF-8 sequence it would cut (at most 3 bytes back).
  static std::size_t Utf8Cut(std::string_view s, std::size_t n) {
    std::size_t back = 0;
    while (n > 0 && back < 3 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
      --n;
      ++back;
    }
    // s[n] now starts a sequence (or is not UTF-8 at all): cut before it.
    return n;
  }

  ProcessOutcome& outcome_;
  std::size_t max_bytes_;
  const std::function<void(std::string_view)>& on_output_;
  bool full_ = false;
};

// stdout or stderr: its pipe and the line it has not finished yet.
struct LogStream {
  Fd fd;
  std::string partial;

  void Feed(std::string_view data, LogSink& sink) {
    if (sink.full()) {
      partial.clear();
      sink.Append(data);  // dropped, marks the logs truncated
      return;
    }
    partial.append(data);
    std::size_t newline = partial.rfind('\n');
    if (newline != std::string::npos) {
      sink.Append(std::string_view(partial).substr(0, newline + 1));
      partial.erase(0, newline + 1);
    }
    // A line that can no longer fit is cut now: waiting for its end would only buffer bytes
    // that are dropped anyway.
    if (partial.size() > sink.room()) Flush(sink);
  }
  void Flush(LogSink& sink) {
    sink.Append(partial);
    partial.clear();
  }
};

struct ResultStream {
  Fd fd;

  void Feed(std::string_view data, ProcessOutcome& outcome, std::size_t max_bytes) {
    if (outcome.result_too_large) return;
    if (data.size() > max_bytes - outcome.result.size()) {
      outcome.result_too_large = true;
      outcome.result.clear();
      outcome.result.shrink_to_fit();
      return;
    }
    outcome.result.append(data);
  }
};

int PollTimeoutMs(Clock::duration remaining) {
  if (remaining <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
  return static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

}  // namespace

// ---- CancelSignal ----

struct CancelSignal::State {
  std::atomic<bool> fired{false};
  int fd = -1;  // eventfd; -1 if it could not be made (RunProcess then polls `fired`)
};

CancelSignal::CancelSignal() : state_(std::make_unique<State>()) {
  state_->fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

CancelSignal::~CancelSignal() {
  if (state_->fd >= 0) ::close(state_->fd);
}

void CancelSignal::Fire() {
  if (state_->fired.exchange(true)) return;
  if (state_->fd >= 0) {
    std::uint64_t one = 1;
    // Never read back: the descriptor stays readable for every waiter.
    while (::write(state_->fd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
}

bool CancelSignal::fired() const { return state_->fired.load(); }

int CancelSignal::wait_fd() const { return state_->fd; }

// ---- RunProcess ----

Result<ProcessOutcome> RunProcess(const ProcessSpec& spec, const CancelSignal* cancel,
                                  const std::function<void(std::string_view)>& on_output) {
  if (spec.argv.empty()) return Fail(ErrorCode::kInvalidArgument, "the command is empty");
  const std::string& program = spec.argv[0];
  if (program.empty() || program[0] != '/') {
    std::string message = "the program must be an absolute path: ";
    message += program;
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  for (const std::string& arg : spec.argv) {
    if (HasNul(arg)) {
      return Fail(ErrorCode::kInvalidArgument, "an argument contains a NUL byte");
    }
  }
  for (const std::string& entry : spec.env) {
    if (HasNul(entry)) {
      return Fail(ErrorCode::kInvalidArgument, "an environment entry contains a NUL byte");
    }
  }
  if (spec.run_as_uid >= 0 && spec.run_as_gid < 0) {
    return Fail(ErrorCode::kInvalidArgument, "run_as_uid is set without run_as_gid");
  }

  const Clock::time_point start = Clock::now();
  ProcessOutcome outcome;
  auto finish = [&]() {
    outcome.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  };
  if (cancel != nullptr && cancel->fired()) {
    outcome.end = ProcessOutcome::End::kCancelled;
    finish();
    return outcome;
  }

  auto cannot_start = [&program](std::string_view what, int error) {
    std::string message = "cannot start ";
    message += program;
    message += ": ";
    message += what;
    if (!what.empty()) message += ": ";
    message += ErrnoText(error);
    return Fail(ErrorCode::kUnavailable, std::move(message));
  };

  // Everything the child uses is made before fork.
  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const std::string& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const std::string& entry : spec.env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);

  Fd stdin_read, stdin_write, stdout_read, stdout_write, stderr_read, stderr_write, result_read,
      result_write, report_read, report_write;
  for (auto [read_end, write_end] :
       {std::pair{&stdin_read, &stdin_write}, std::pair{&stdout_read, &stdout_write},
        std::pair{&stderr_read, &stderr_write}, std::pair{&result_read, &result_write},
        std::pair{&report_read, &report_write}}) {
    if (int error = MakePipe(*read_end, *write_end); error != 0) return cannot_start("pipe", error);
  }
  for (const Fd* fd : {&stdin_write, &stdout_read, &stderr_read, &result_read}) {
    if (!SetNonBlocking(fd->get())) return cannot_start("fcntl", errno);
  }

  Fd dir;
  if (!spec.working_dir.empty()) {
    dir = Fd(::open(spec.working_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid() || !MoveAbove3(dir)) {
      std::string what = "working directory ";
      what += spec.working_dir;
      return cannot_start(what, errno);
    }
  }
  Fd landlock_copy;  // only when the caller's descriptor is one the child overwrites
  int landlock_fd = spec.landlock_ruleset_fd;
  if (landlock_fd >= 0 && landlock_fd < 4) {
    landlock_copy = Fd(::fcntl(landlock_fd, F_DUPFD_CLOEXEC, 4));
    if (!landlock_copy.valid()) return cannot_start("sandbox: landlock ruleset", errno);
    landlock_fd = landlock_copy.get();
  }

  ChildPlan plan;
  plan.path = program.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.fds = {stdin_read.get(), stdout_write.get(), stderr_write.get(), result_write.get()};
  plan.dir_fd = dir.get();
  plan.report_fd = report_write.get();
  plan.landlock_fd = landlock_fd;
  plan.uid = spec.run_as_uid;
  plan.gid = spec.run_as_gid;
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    plan.max_fd = static_cast<int>(std::min<rlim_t>(files.rlim_cur, INT_MAX));
  } else {
    plan.max_fd = 65536;
  }

  SigpipeBlock sigpipe_block;

  // Every signal is blocked across fork, so no handler of the server runs in the child
  // before it has reset the dispositions.
  sigset_t all_signals, saved_mask;
  sigfillset(&all_signals);
  ::pthread_sigmask(SIG_SETMASK, &all_signals, &saved_mask);
  pid_t pid = ::fork();
  if (pid == 0) RunChild(plan);
  int fork_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  if (pid < 0) return cannot_start("fork", fork_error);

  ChildGuard child(pid);
  for (Fd* fd : {&stdin_read, &stdout_write, &stderr_write, &result_write, &report_write, &dir,
                 &landlock_copy}) {
    fd->Reset();
  }

  // End of file on the report pipe: the exec succeeded.
  ChildReport report{};
  ssize_t got;
  while ((got = ::read(report_read.get(), &report, sizeof(report))) < 0 && errno == EINTR) {
  }
  report_read.Reset();
  if (got == static_cast<ssize_t>(sizeof(report))) {
    child.Reap();
    auto step = static_cast<ChildStep>(report.step);
    if (step == ChildStep::kExec) return cannot_start("", report.error);
    std::string what = IsSandboxStep(step) ? "sandbox: " : "";
    what += ChildStepName(step);
    return cannot_start(what, report.error);
  }

  // The main process exiting becomes readable on a pidfd; without one (old kernel), the
  // loop polls waitid.
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)));

  LogSink sink(outcome, spec.max_log_bytes, on_output);
  LogStream out{std::move(stdout_read), {}};
  LogStream err{std::move(stderr_read), {}};
  ResultStream result{std::move(result_read)};
  std::size_t stdin_offset = 0;
  if (spec.stdin_data.empty()) stdin_write.Reset();

  std::string buffer(kReadChunk, '\0');
  // Reads once from `fd`; false at end of file (or on an error, treated the same).
  auto read_once = [&buffer](Fd& fd, std::string_view& data) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n > 0) {
      data = std::string_view(buffer.data(), static_cast<std::size_t>(n));
      return true;
    }
    data = {};
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    fd.Reset();
    return false;
  };
  auto read_log = [&](LogStream& stream) {
    std::string_view data;
    if (read_once(stream.fd, data)) {
      stream.Feed(data, sink);
    } else {
      stream.Flush(sink);  // a last line without a newline, as it is
    }
  };
  auto read_result = [&]() {
    std::string_view data;
    if (read_once(result.fd, data)) result.Feed(data, outcome, spec.max_result_bytes);
  };
  auto write_stdin = [&]() {
    std::size_t left = spec.stdin_data.size() - stdin_offset;
    ssize_t n = ::write(stdin_write.get(), spec.stdin_data.data() + stdin_offset,
                        std::min(left, kReadChunk));
    if (n > 0) {
      stdin_offset += static_cast<std::size_t>(n);
      if (stdin_offset == spec.stdin_data.size()) stdin_write.Reset();
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      return;
    } else {
      if (n < 0 && errno == EPIPE) sigpipe_block.NoteEpipe();
      stdin_write.Reset();  // the child closed its stdin: the rest is not wanted
    }
  };

  const Clock::time_point deadline = start + spec.timeout;
  std::optional<ProcessOutcome::End> killed_for;
  bool main_exited = false;
  Clock::time_point grace_end{};
  const int cancel_fd = cancel != nullptr ? cancel->wait_fd() : -1;

  for (;;) {
    if (main_exited && !out.fd.valid() && !err.fd.valid() && !result.fd.valid()) break;
    if (cancel != nullptr && cancel->fired()) {
      killed_for = ProcessOutcome::End::kCancelled;
      break;
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      killed_for = ProcessOutcome::End::kTimedOut;
      break;
    }
    if (main_exited && now >= grace_end) break;

    Clock::time_point wake = main_exited ? std::min(deadline, grace_end) : deadline;
    int timeout_ms = PollTimeoutMs(wake - now);
    if ((!main_exited && !pidfd.valid()) || (cancel != nullptr && cancel_fd < 0)) {
      timeout_ms = std::min(timeout_ms, kFallbackPollMs);
    }

    enum Slot { kOut, kErr, kResult, kStdin, kPid, kCancel, kSlots };
    std::array<pollfd, kSlots> fds{};
    std::array<int, kSlots> slot_index{};
    nfds_t count = 0;
    auto add = [&](Slot slot, int fd, short events) {
      slot_index[slot] = -1;
      if (fd < 0) return;
      slot_index[slot] = static_cast<int>(count);
      fds[count++] = pollfd{fd, events, 0};
    };
    add(kOut, out.fd.get(), POLLIN);
    add(kErr, err.fd.get(), POLLIN);
    add(kResult, result.fd.get(), POLLIN);
    add(kStdin, stdin_write.get(), POLLOUT);
    add(kPid, main_exited ? -1 : pidfd.get(), POLLIN);
    add(kCancel, cancel_fd, POLLIN);
    auto ready = [&](Slot slot) {
      return slot_index[slot] >= 0 && fds[static_cast<std::size_t>(slot_index[slot])].revents != 0;
    };

    int n = ::poll(fds.data(), count, timeout_ms);
    if (n < 0 && errno != EINTR) {
      int error = errno;
      std::string message = "poll failed while running ";
      message += program;
      message += ": ";
      message += ErrnoText(error);
      return Fail(ErrorCode::kInternal, std::move(message));  // ChildGuard kills and reaps
    }
    if (n > 0) {
      // stdout before stderr: of two lines written in that order, the first comes first.
      if (ready(kOut)) read_log(out);
      if (ready(kErr)) read_log(err);
      if (ready(kResult)) read_result();
      if (ready(kStdin)) write_stdin();
    }
    if (!main_exited && (ready(kPid) || !pidfd.valid())) {
      siginfo_t info;
      std::memset(&info, 0, sizeof(info));
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        main_exited = true;
        grace_end = Clock::now() + kExitGrace;
      }
    }
  }

  child.KillGroup();
  // What the group wrote before it died is still in the pipes.
  for (LogStream* stream : {&out, &err}) {
    for (int i = 0; i < kMaxDrainReads && stream->fd.valid(); ++i) {
      std::string_view data;
      if (!read_once(stream->fd, data)) break;
      if (data.empty()) break;  // nothing more right now
      stream->Feed(data, sink);
    }
  }
  for (int i = 0; i < kMaxDrainReads && result.fd.valid(); ++i) {
    std::string_view data;
    if (!read_once(result.fd, data) || data.empty()) break;
    result.Feed(data, outcome, spec.max_result_bytes);
  }
  out.Flush(sink);
  err.Flush(sink);

  int status = child.Reap();
  if (status < 0) {
    std::string message = "cannot wait for ";
    message += program;
    message += ": ";
    message += ErrnoText(-status);
    return Fail(ErrorCode::kInternal, std::move(message));
  }
  if (killed_for) {
    outcome.end = *killed_for;
  } else if (WIFSIGNALED(status)) {
    outcome.end = ProcessOutcome::End::kSignaled;
    outcome.signal = WTERMSIG(status);
  } else {
    outcome.end = ProcessOutcome::End::kExited;
    outcome.exit_code = WEXITSTATUS(status);
  }
  finish();
  return outcome;
}

}  // namespace bifrost::workflow
