#include "cli/terminal.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

namespace bifrost::cli {
namespace {

// Written before the handlers are installed, read by them: the terminal state to put back.
termios g_saved_termios{};

extern "C" void RestoreTerminalAndReraise(int signal_number) {
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

}  // namespace

bool IsTerminal(int fd) { return isatty(fd) == 1; }

std::optional<std::string> ReadLineWithoutEcho(std::string_view prompt) {
  std::cerr << prompt << std::flush;
  termios saved{};
  const bool have_terminal = tcgetattr(STDIN_FILENO, &saved) == 0;
  struct sigaction previous[3] = {};
  const int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  if (have_terminal) {
    g_saved_termios = saved;
    struct sigaction restore = {};
    restore.sa_handler = RestoreTerminalAndReraise;
    sigemptyset(&restore.sa_mask);
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &restore, &previous[i]);
    termios silent = saved;
    silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    silent.c_lflag |= ECHONL;  // the newline the user types is still shown
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (have_terminal) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &previous[i], nullptr);
  }
  if (!got) {
    std::cerr << '\n';
    return std::nullopt;
  }
  return line;
}

}  // namespace bifrost::cli
