#include "workflow/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/landlock.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bifrost::workflow {
namespace {

using namespace std::chrono_literals;
using End = ProcessOutcome::End;
using Clock = std::chrono::steady_clock;

ProcessSpec Sh(std::string script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", std::move(script)};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.timeout = 30s;
  return spec;
}

ProcessOutcome MustRun(const ProcessSpec& spec, const CancelSignal* cancel = nullptr,
                       const std::function<void(std::string_view)>& on_output = {}) {
  auto outcome = RunProcess(spec, cancel, on_output);
  EXPECT_TRUE(outcome.has_value()) << outcome.error().ToString();
  if (!outcome) return {};
  return std::move(*outcome);
}

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "process_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = std::filesystem::canonical(pattern).string();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// True once `pid` is no longer a running `sleep`: gone, a zombie waiting for init, or the
// number reused by something else. Waits up to 5 seconds (SIGKILL is asynchronous).
bool SleepIsGone(pid_t pid) {
  const auto give_up = Clock::now() + 5s;
  for (;;) {
    std::string path = "/proc/";
    path += std::to_string(pid);
    path += "/stat";
    const std::string stat = ReadFile(path);
    if (stat.empty()) return true;
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) {
      return true;
    }
    const std::string comm = stat.substr(open + 1, close - open - 1);
    const char state = stat[close + 2];
    if (comm != "sleep" || state == 'Z' || state == 'X') return true;
    if (Clock::now() > give_up) return false;
    std::this_thread::sleep_for(10ms);
  }
}

pid_t FirstLineAsPid(const std::string& logs) {
  return static_cast<pid_t>(std::stol(logs.substr(0, logs.find('\n'))));
}

// ---- exit status ----

TEST(ProcessTest, ExitCodeZero) {
  ProcessOutcome outcome = MustRun(Sh("exit 0"));
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.signal, 0);
  EXPECT_EQ(outcome.logs, "");
  EXPECT_FALSE(outcome.logs_truncated);
  EXPECT_EQ(outcome.result, "");
  EXPECT_FALSE(outcome.result_too_large);
  EXPECT_GE(outcome.duration.count(), 0);
}

TEST(ProcessTest, ExitCodeNonZero) {
  ProcessOutcome outcome = MustRun(Sh("echo failing; exit 3"));
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.logs, "failing\n");
}

TEST(ProcessTest, DeathBySignal) {
  ProcessOutcome killed = MustRun(Sh("kill -9 $$"));
  EXPECT_EQ(killed.end, End::kSignaled);
  EXPECT_EQ(killed.signal, 9);

  ProcessOutcome terminated = MustRun(Sh("echo before; kill -TERM $$; echo after"));
  EXPECT_EQ(terminated.end, End::kSignaled);
  EXPECT_EQ(terminated.signal, 15);
  EXPECT_EQ(terminated.logs, "before\n");
}

TEST(ProcessTest, SignalDispositionsAreReset) {
  // The test process may ignore SIGPIPE or SIGTERM; the child must not inherit that.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGTERM, &ignore, &saved), 0);
  ProcessOutcome outcome = MustRun(Sh("kill -TERM $$; exit 0"));
  ASSERT_EQ(::sigaction(SIGTERM, &saved, nullptr), 0);
  EXPECT_EQ(outcome.end, End::kSignaled);
  EXPECT_EQ(outcome.signal, SIGTERM);

  // No signal is blocked in the child (SigBlk in /proc/self/status is all zeros).
  ProcessOutcome mask = MustRun(Sh("grep -E '^Sig(Blk|Ign):' /proc/self/status"));
  EXPECT_EQ(mask.logs, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

// ---- output ----

TEST(ProcessTest, StdoutAndStderrAreCaptured) {
  // "out" is in its pipe before "err" is written, and stdout is read first when both are
  // ready: the order is certain.
  ProcessOutcome outcome = MustRun(Sh("echo out; echo err >&2"));
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "out\nerr\n");

  // Here "out2" may be read together with "out", before "err": only each stream's own order
  // is certain.
  ProcessOutcome three = MustRun(Sh("echo out; echo err >&2; echo out2"));
  EXPECT_TRUE(three.logs == "out\nerr\nout2\n" || three.logs == "out\nout2\nerr\n") << three.logs;
}

TEST(ProcessTest, PartialLinesOfTwoStreamsDoNotSplitEachOther) {
  ProcessOutcome outcome =
      MustRun(Sh("printf aaa; sleep 0.05; printf bbb >&2; sleep 0.05; printf 'ccc\\n'; sleep 0.05; "
                 "printf 'ddd\\n' >&2; sleep 0.05; printf 'eee'; printf 'fff' >&2"));
  EXPECT_EQ(outcome.end, End::kExited);
  // Complete lines in the order they were completed; the unfinished ones at the end of file,
  // each in one piece.
  ASSERT_EQ(outcome.logs.substr(0, 14), "aaaccc\nbbbddd\n");
  const std::string rest = outcome.logs.substr(14);
  EXPECT_TRUE(rest == "eeefff" || rest == "fffeee") << rest;
}

TEST(ProcessTest, ManyInterleavedLinesStayWhole) {
  // Both streams write many lines, each in several pieces.
  ProcessOutcome outcome = MustRun(
      Sh("i=0; while [ $i -lt 200 ]; do printf 'out-'; printf 'err-' >&2; printf '%d\\n' $i; "
         "printf '%d\\n' $i >&2; i=$((i+1)); done"));
  EXPECT_EQ(outcome.end, End::kExited);
  std::istringstream lines(outcome.logs);
  std::string line;
  int out_next = 0;
  int err_next = 0;
  while (std::getline(lines, line)) {
    std::string expected_out = "out-";
    expected_out += std::to_string(out_next);
    std::string expected_err = "err-";
    expected_err += std::to_string(err_next);
    if (line == expected_out) {
      ++out_next;
    } else if (line == expected_err) {
      ++err_next;
    } else {
      ADD_FAILURE() << "unexpected line: " << line;
      break;
    }
  }
  EXPECT_EQ(out_next, 200);
  EXPECT_EQ(err_next, 200);
}

TEST(ProcessTest, LastLineWithoutNewlineIsKept) {
  EXPECT_EQ(MustRun(Sh("printf 'x\\ntail'")).logs, "x\ntail");
  EXPECT_EQ(MustRun(Sh("printf 'only'")).logs, "only");
  EXPECT_EQ(MustRun(Sh("printf 'err' >&2")).logs, "err");
}

TEST(ProcessTest, OnOutputSeesEveryAppendedChunk) {
  std::string seen;
  int calls = 0;
  ProcessOutcome outcome =
      MustRun(Sh("echo one; echo two >&2; printf three"), nullptr, [&](std::string_view chunk) {
        EXPECT_FALSE(chunk.empty());
        seen.append(chunk);
        ++calls;
      });
  EXPECT_EQ(outcome.logs, "one\ntwo\nthree");
  EXPECT_EQ(seen, outcome.logs);
  EXPECT_GE(calls, 1);
}

TEST(ProcessTest, ThrowingOnOutputStillKillsAndReaps) {
  TempDir dir;
  std::string script = "echo $$ > ";
  script += dir.path();
  script += "/pid; echo hello; sleep 100";
  EXPECT_THROW(
      (void)RunProcess(Sh(script), nullptr,
                       [](std::string_view) { throw std::runtime_error("callback failed"); }),
      std::runtime_error);
  const std::string pid_text = ReadFile(dir.path() + "/pid");
  ASSERT_FALSE(pid_text.empty());
  // The shell was reaped (so its pid is gone); its sleep was killed.
  const pid_t pid = FirstLineAsPid(pid_text);
  std::string stat_path = "/proc/";
  stat_path += std::to_string(pid);
  stat_path += "/stat";
  EXPECT_TRUE(SleepIsGone(pid)) << ReadFile(stat_path);
}

// ---- stdin ----

TEST(ProcessTest, StdinIsDeliveredAndClosed) {
  ProcessSpec spec = Sh("cat; echo end");
  spec.stdin_data = "hello\nworld";
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "hello\nworldend\n");
}

TEST(ProcessTest, EmptyStdinIsClosedAtOnce) {
  ProcessSpec spec = Sh("cat; echo end");
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "end\n");
}

TEST(ProcessTest, LargeStdinAndLargeOutputDoNotDeadlock) {
  std::string input;
  for (int i = 0; input.size() < 4'000'000; ++i) {
    input += "line ";
    input += std::to_string(i);
    input += '\n';
  }
  ProcessSpec spec = Sh("cat");
  spec.stdin_data = input;
  spec.max_log_bytes = 16u << 20;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_FALSE(outcome.logs_truncated);
  EXPECT_EQ(outcome.logs.size(), input.size());
  EXPECT_TRUE(outcome.logs == input);
}

TEST(ProcessTest, ChildWritingBeforeReadingStdinDoesNotDeadlock) {
  ProcessSpec spec =
      Sh("head -c 3000000 /dev/zero | tr '\\0' x; echo; wc -c | tr -d ' '; echo done");
  spec.stdin_data = std::string(3'000'000, 'i');
  spec.max_log_bytes = 16u << 20;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs.size(), 3'000'000u + 1 + 8 + 5);
  EXPECT_EQ(outcome.logs.substr(3'000'001), "3000000\ndone\n");
}

TEST(ProcessTest, ChildIgnoringStdinDoesNotRaiseSigpipe) {
  ProcessSpec spec = Sh("exec 0<&-; echo closed");
  spec.stdin_data = std::string(4u << 20, 's');
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.logs, "closed\n");

  ProcessSpec quick = Sh("exit 4");
  quick.stdin_data = std::string(4u << 20, 's');
  ProcessOutcome quick_outcome = MustRun(quick);
  EXPECT_EQ(quick_outcome.end, End::kExited);
  EXPECT_EQ(quick_outcome.exit_code, 4);
  // We are still alive, and no SIGPIPE is left pending for this thread.
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(::sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

// ---- result channel ----

TEST(ProcessTest, ResultOnFd3) {
  ProcessOutcome outcome = MustRun(Sh(R"(echo '{"status":"success"}' >&3; echo log)"));
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.result, "{\"status\":\"success\"}\n");
  EXPECT_FALSE(outcome.result_too_large);
  EXPECT_EQ(outcome.logs, "log\n");
}

TEST(ProcessTest, LargeResult) {
  ProcessSpec spec = Sh("head -c 1000000 /dev/zero | tr '\\0' r >&3");
  spec.max_result_bytes = 1'000'000;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_FALSE(outcome.result_too_large);
  EXPECT_EQ(outcome.result, std::string(1'000'000, 'r'));
}

TEST(ProcessTest, ResultTooLarge) {
  ProcessSpec spec = Sh("head -c 100000 /dev/zero | tr '\\0' r >&3; echo still-running");
  spec.max_result_bytes = 16;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_TRUE(outcome.result_too_large);
  EXPECT_EQ(outcome.result, "");
  EXPECT_EQ(outcome.logs, "still-running\n");
}

TEST(ProcessTest, ResultAtTheLimitFits) {
  ProcessSpec spec = Sh("printf 0123456789abcdef >&3");
  spec.max_result_bytes = 16;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_FALSE(outcome.result_too_large);
  EXPECT_EQ(outcome.result, "0123456789abcdef");
}

// ---- log limit ----

TEST(ProcessTest, LogsAreTruncatedAndTheChildKeepsRunning) {
  ProcessSpec spec = Sh("head -c 5000000 /dev/zero; echo done >&3");
  spec.max_log_bytes = 1024;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_TRUE(outcome.logs_truncated);
  EXPECT_EQ(outcome.logs, std::string(1024, '\0'));
  EXPECT_EQ(outcome.result, "done\n");  // the child got past its 5 MB of output
}

TEST(ProcessTest, TruncatedLinesFillTheLimit) {
  ProcessSpec spec = Sh("yes | head -c 5000000; yes e | head -c 100000 >&2");
  spec.max_log_bytes = 1024;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_TRUE(outcome.logs_truncated);
  std::string expected;
  for (int i = 0; i < 512; ++i) expected += "y\n";
  EXPECT_EQ(outcome.logs, expected);
}

TEST(ProcessTest, LogLimitBoundaries) {
  ProcessSpec exact = Sh("printf 'abcd\\n'");
  exact.max_log_bytes = 5;
  ProcessOutcome fits = MustRun(exact);
  EXPECT_EQ(fits.logs, "abcd\n");
  EXPECT_FALSE(fits.logs_truncated);

  exact.max_log_bytes = 4;
  ProcessOutcome cut = MustRun(exact);
  EXPECT_EQ(cut.logs, "abcd");
  EXPECT_TRUE(cut.logs_truncated);

  exact.max_log_bytes = 0;
  ProcessOutcome none = MustRun(exact);
  EXPECT_EQ(none.logs, "");
  EXPECT_TRUE(none.logs_truncated);

  ProcessSpec silent = Sh("exit 0");
  silent.max_log_bytes = 0;
  EXPECT_FALSE(MustRun(silent).logs_truncated);
}

TEST(ProcessTest, LongPartialLineIsFlushedAtTheLimit) {
  // stderr starts a line longer than the limit; stdout's complete line comes before it.
  ProcessSpec spec =
      Sh("echo first; head -c 100000 /dev/zero | tr '\\0' z >&2; sleep 0.05; "
         "echo second");
  spec.max_log_bytes = 100;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_TRUE(outcome.logs_truncated);
  EXPECT_EQ(outcome.logs.size(), 100u);
  std::string expected = "first\n";
  expected.append(94, 'z');
  EXPECT_EQ(outcome.logs, expected);
}

TEST(ProcessTest, TruncationDoesNotCutAUtf8Character) {
  ProcessSpec spec = Sh("printf 'a\\303\\251b'");  // "aéb"
  spec.max_log_bytes = 2;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.logs, "a");
  EXPECT_TRUE(outcome.logs_truncated);
}

// ---- time limit, cancellation, process group ----

TEST(ProcessTest, TimeoutKillsTheChildAndItsGrandchild) {
  ProcessSpec spec = Sh("sleep 100 & echo $!; sleep 100");
  spec.timeout = 500ms;
  const auto before = Clock::now();
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_LT(Clock::now() - before, 10s);
  EXPECT_EQ(outcome.end, End::kTimedOut);
  EXPECT_GE(outcome.duration, 500ms);
  ASSERT_FALSE(outcome.logs.empty());
  EXPECT_TRUE(SleepIsGone(FirstLineAsPid(outcome.logs)));
}

TEST(ProcessTest, GrandchildHoldingThePipesDoesNotHangTheRun) {
  ProcessSpec spec = Sh("sleep 100 & echo $!");
  const auto before = Clock::now();
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_LT(Clock::now() - before, 5s);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.exit_code, 0);
  ASSERT_FALSE(outcome.logs.empty());
  EXPECT_TRUE(SleepIsGone(FirstLineAsPid(outcome.logs)));
}

TEST(ProcessTest, DetachedGrandchildIsKilledToo) {
  // The grandchild closes its copies of the pipes: the run ends at once, and still kills it.
  ProcessSpec spec = Sh("sleep 100 </dev/null >/dev/null 2>&1 3>&- & echo $!");
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  ASSERT_FALSE(outcome.logs.empty());
  EXPECT_TRUE(SleepIsGone(FirstLineAsPid(outcome.logs)));
}

TEST(ProcessTest, OutputOfTheGroupAfterTheMainExitIsKept) {
  // Written while the main process is gone but before the grace period ends.
  ProcessSpec spec = Sh("(sleep 0.02; echo late) & echo early");
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs.substr(0, 6), "early\n");
}

TEST(ProcessTest, CancelBeforeSpawn) {
  TempDir dir;
  CancelSignal cancel;
  EXPECT_FALSE(cancel.fired());
  cancel.Fire();
  cancel.Fire();  // idempotent
  EXPECT_TRUE(cancel.fired());
  std::string script = "touch ";
  script += dir.path();
  script += "/marker";
  ProcessOutcome outcome = MustRun(Sh(script), &cancel);
  EXPECT_EQ(outcome.end, End::kCancelled);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/marker"));
}

TEST(ProcessTest, CancelWhileRunningFromAnotherThread) {
  CancelSignal cancel;
  std::thread firer([&cancel] {
    std::this_thread::sleep_for(200ms);
    cancel.Fire();
  });
  ProcessSpec spec = Sh("sleep 100 & echo $!; sleep 100");
  spec.timeout = 60s;
  const auto before = Clock::now();
  ProcessOutcome outcome = MustRun(spec, &cancel);
  firer.join();
  EXPECT_LT(Clock::now() - before, 5s);
  EXPECT_EQ(outcome.end, End::kCancelled);
  ASSERT_FALSE(outcome.logs.empty());
  EXPECT_TRUE(SleepIsGone(FirstLineAsPid(outcome.logs)));
}

TEST(ProcessTest, OneCancelSignalStopsSeveralRuns) {
  CancelSignal cancel;
  constexpr int kRuns = 3;
  std::vector<ProcessOutcome> outcomes(kRuns);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRuns; ++i) {
    threads.emplace_back(
        [&, i] { outcomes[static_cast<std::size_t>(i)] = MustRun(Sh("sleep 100"), &cancel); });
  }
  std::this_thread::sleep_for(200ms);
  const auto before = Clock::now();
  cancel.Fire();
  for (auto& thread : threads) thread.join();
  EXPECT_LT(Clock::now() - before, 5s);
  for (const ProcessOutcome& outcome : outcomes) EXPECT_EQ(outcome.end, End::kCancelled);
}

TEST(ProcessTest, CancelSignalWaitFd) {
  CancelSignal cancel;
  ASSERT_GE(cancel.wait_fd(), 0);
  EXPECT_NE(::fcntl(cancel.wait_fd(), F_GETFD) & FD_CLOEXEC, 0);
}

// ---- environment, descriptors, directory ----

TEST(ProcessTest, ExactEnvironment) {
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {"A=1", "B=two words", "EMPTY="};
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "A=1\nB=two words\nEMPTY=\n");

  spec.env.clear();
  EXPECT_EQ(MustRun(spec).logs, "");
}

TEST(ProcessTest, ArgumentsArePassedAsIs) {
  ProcessSpec spec = Sh("for a in \"$@\"; do printf '[%s]' \"$a\"; done");
  spec.argv.push_back("zero");
  spec.argv.push_back("one two");
  spec.argv.push_back("");
  spec.argv.push_back("$HOME *");
  EXPECT_EQ(MustRun(spec).logs, "[one two][][$HOME *]");
}

TEST(ProcessTest, OnlyDescriptors0To3ReachTheChild) {
  // Descriptors of the server that are not close-on-exec must not leak either.
  const int leaky_file = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky_file, 0);
  int sockets[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sockets), 0);
  // `ls` lists the descriptors of the shell, its parent (not its own, which include the
  // directory it reads); "; true" keeps the shell from exec-ing ls in its place.
  ProcessOutcome outcome = MustRun(Sh("ls /proc/$$/fd; true"));
  ::close(leaky_file);
  ::close(sockets[0]);
  ::close(sockets[1]);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "0\n1\n2\n3\n");

  // They are the pipes.
  ProcessOutcome kinds =
      MustRun(Sh("readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2 /proc/$$/fd/3; true"));
  std::istringstream lines(kinds.logs);
  std::string line;
  int pipes = 0;
  while (std::getline(lines, line)) pipes += line.rfind("pipe:[", 0) == 0 ? 1 : 0;
  EXPECT_EQ(pipes, 4) << kinds.logs;
}

TEST(ProcessTest, WorkingDirectory) {
  TempDir dir;
  ProcessSpec spec = Sh("pwd; ls");
  spec.working_dir = dir.path();
  std::ofstream(dir.path() + "/file.txt") << "x";
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.logs, dir.path() + "\nfile.txt\n");
}

TEST(ProcessTest, MissingWorkingDirectory) {
  ProcessSpec spec = Sh("pwd");
  spec.working_dir = "/nonexistent/dir/for/process_test";
  auto outcome = RunProcess(spec);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(outcome.error().message().find("/bin/sh"), std::string::npos);
  EXPECT_NE(outcome.error().message().find("/nonexistent/dir/for/process_test"), std::string::npos);
}

// ---- refused and failed starts ----

TEST(ProcessTest, EmptyOrRelativeProgramIsRefused) {
  ProcessSpec empty;
  auto none = RunProcess(empty);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalidArgument);

  for (const char* program : {"sh", "bin/sh", "./sh", ""}) {
    ProcessSpec spec;
    spec.argv = {program, "-c", "exit 0"};
    auto outcome = RunProcess(spec);
    ASSERT_FALSE(outcome.has_value()) << program;
    EXPECT_EQ(outcome.error().code(), ErrorCode::kInvalidArgument) << program;
  }
}

TEST(ProcessTest, NulBytesAreRefused) {
  ProcessSpec spec = Sh("exit 0");
  spec.argv.push_back(std::string("a\0b", 3));
  auto outcome = RunProcess(spec);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kInvalidArgument);

  ProcessSpec env = Sh("exit 0");
  env.env.push_back(std::string("A=\0b", 4));
  auto env_outcome = RunProcess(env);
  ASSERT_FALSE(env_outcome.has_value());
  EXPECT_EQ(env_outcome.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ProcessTest, NonexistentProgramIsUnavailable) {
  ProcessSpec spec;
  spec.argv = {"/nonexistent/program"};
  auto outcome = RunProcess(spec);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(outcome.error().message(),
            "cannot start /nonexistent/program: No such file or directory");
}

TEST(ProcessTest, NonExecutableProgramIsUnavailable) {
  TempDir dir;
  const std::string path = dir.path() + "/not-executable";
  std::ofstream(path) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ProcessSpec spec;
  spec.argv = {path};
  auto outcome = RunProcess(spec);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kUnavailable);
  std::string expected = "cannot start ";
  expected += path;
  expected += ": Permission denied";
  EXPECT_EQ(outcome.error().message(), expected);
}

TEST(ProcessTest, NoPathSearch) {
  TempDir dir;
  ProcessSpec spec;
  spec.argv = {dir.path() + "/sh"};  // a directory on PATH would have one
  spec.env = {"PATH=/bin:/usr/bin"};
  auto outcome = RunProcess(spec);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kUnavailable);
}

// ---- concurrency ----

TEST(ProcessTest, ConcurrentRuns) {
  constexpr int kThreads = 8;
  constexpr int kRunsPerThread = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  const auto before = Clock::now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kRunsPerThread; ++i) {
        std::string tag = std::to_string(t);
        tag += '-';
        tag += std::to_string(i);
        ProcessSpec spec = Sh("cat; echo; echo \"$1\" >&2; printf %s \"$1\" >&3; exit 7");
        spec.argv.push_back("name");
        spec.argv.push_back(tag);
        spec.stdin_data = "in-";
        spec.stdin_data += tag;
        std::string expected = spec.stdin_data;
        expected += '\n';
        expected += tag;
        expected += '\n';
        auto outcome = RunProcess(spec);
        if (!outcome || outcome->end != End::kExited || outcome->exit_code != 7 ||
            outcome->logs != expected || outcome->result != tag) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  // No run waited for another's pipes to close (which a leaked descriptor would cause).
  EXPECT_LT(Clock::now() - before, 30s);
}

// ---- sandbox ----

TEST(ProcessTest, NoNewPrivilegesIsAlwaysSet) {
  ProcessOutcome outcome = MustRun(Sh("grep NoNewPrivs /proc/self/status"));
  EXPECT_EQ(outcome.logs, "NoNewPrivs:\t1\n");
}

TEST(ProcessTest, RunAsRequiresAGroup) {
  ProcessSpec spec = Sh("exit 0");
  spec.run_as_uid = 65534;
  auto outcome = RunProcess(spec);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ProcessTest, RunAsAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  ProcessSpec spec = Sh("id -u; id -g; id -G");
  spec.run_as_uid = 65534;
  spec.run_as_gid = 65534;
  ProcessOutcome outcome = MustRun(spec);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "65534\n65534\n65534\n");
}

TEST(ProcessTest, RunAsFailsWithoutPrivileges) {
  // Checked in a child process that gives up root first (when it has it), so the test runs
  // the same whoever runs the suite: an unprivileged server cannot switch users.
  const auto check = [] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) std::_Exit(3);
    ProcessSpec spec = Sh("exit 0");
    spec.run_as_uid = 0;
    spec.run_as_gid = 0;
    auto outcome = RunProcess(spec);
    if (outcome.has_value()) std::_Exit(4);
    if (outcome.error().code() != ErrorCode::kUnavailable) std::_Exit(5);
    if (outcome.error().message() !=
        "cannot start /bin/sh: sandbox: setgroups: Operation not permitted") {
      std::_Exit(6);
    }
    std::_Exit(0);
  };
  EXPECT_EXIT(check(), ::testing::ExitedWithCode(0), "");
}

TEST(ProcessTest, BadLandlockRulesetFailsTheStart) {
  // Not a ruleset (or no Landlock at all): landlock_restrict_self fails either way.
  const int not_a_ruleset = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(not_a_ruleset, 0);
  ProcessSpec spec = Sh("echo should-not-run");
  spec.landlock_ruleset_fd = not_a_ruleset;
  auto outcome = RunProcess(spec);
  ::close(not_a_ruleset);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(
      outcome.error().message().rfind("cannot start /bin/sh: sandbox: landlock_restrict_self: ", 0),
      0u)
      << outcome.error().message();
}

// A minimal ruleset: reading files and directories is allowed only under `allowed`.
int MakeReadOnlyRuleset(const std::vector<std::string>& allowed) {
  const auto abi =
      ::syscall(SYS_landlock_create_ruleset, nullptr, 0UL, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi <= 0) return -1;
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
  const int ruleset =
      static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0U));
  if (ruleset < 0) return -1;
  for (const std::string& path : allowed) {
    const int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    ::fstat(fd, &st);
    landlock_path_beneath_attr rule{};
    rule.allowed_access = S_ISDIR(st.st_mode)
                              ? (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
                              : LANDLOCK_ACCESS_FS_READ_FILE;
    rule.parent_fd = fd;
    const auto added =
        ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0U);
    ::close(fd);
    if (added != 0) {
      ::close(ruleset);
      return -1;
    }
  }
  return ruleset;
}

TEST(ProcessTest, LandlockRulesetIsApplied) {
  TempDir allowed;
  TempDir denied;
  std::ofstream(allowed.path() + "/ok.txt") << "readable\n";
  std::ofstream(denied.path() + "/secret.txt") << "hidden\n";
  const int ruleset =
      MakeReadOnlyRuleset({"/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", allowed.path()});
  if (ruleset < 0) GTEST_SKIP() << "Landlock is not available";
  std::string script = "cat ";
  script += allowed.path();
  script += "/ok.txt; cat ";
  script += denied.path();
  script += "/secret.txt 2>/dev/null || echo denied";
  ProcessSpec spec = Sh(script);
  spec.landlock_ruleset_fd = ruleset;
  ProcessOutcome outcome = MustRun(spec);
  ::close(ruleset);
  EXPECT_EQ(outcome.end, End::kExited);
  EXPECT_EQ(outcome.logs, "readable\ndenied\n");

  // The ruleset descriptor itself does not reach the child.
  const int again =
      MakeReadOnlyRuleset({"/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache", "/proc"});
  ASSERT_GE(again, 0);
  ProcessSpec fds = Sh("ls /proc/$$/fd; true");
  fds.landlock_ruleset_fd = again;
  ProcessOutcome fd_outcome = MustRun(fds);
  ::close(again);
  EXPECT_EQ(fd_outcome.logs, "0\n1\n2\n3\n");
}

}  // namespace
}  // namespace bifrost::workflow
