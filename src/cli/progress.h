// Progress of a long local command (`bifrost keys rotate`) on stderr.
//
// On a terminal: one line redrawn in place with "\r", at most ten times a second (and
// whenever the phase or scope changes or a phase completes):
//   [=========>          ] 45,000/100,000 values  52,310/s  ETA 1s  organization acme
// Elsewhere (a pipe, a file, a log collector): plain lines, at most one a second, plus the
// last state when the command finishes:
//   keys rotate: re-encrypting values, organization acme: 45000/100000 (45%), 52310/s, ETA 1s
//
// The rate is items per second over the whole run (every scope), measured from the first
// update; the ETA is for the current phase and scope. Both are left out until the rate is
// known. Time comes from an injected monotonic clock, so the output is deterministic in tests.
//
// Thread-safety: none; one renderer per command, called from the thread that runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "cli/cli.h"
#include "common/text.h"
#include "keys/keys.h"

namespace bifrost::cli {

struct ProgressOptions {
  std::string command = "keys rotate";  // the prefix of plain lines
  bool terminal = false;                // draw the bar (stderr is a terminal)
  // Monotonic time in seconds; a steady clock when empty.
  std::function<double()> now;
};

class ProgressRenderer {
 public:
  // `out` must outlive the renderer.
  ProgressRenderer(std::ostream& out, ProgressOptions options);
  ~ProgressRenderer();  // Finish()
  ProgressRenderer(const ProgressRenderer&) = delete;
  ProgressRenderer& operator=(const ProgressRenderer&) = delete;

  // Takes a new state; draws it when due (see above).
  void Update(const keys::Progress& progress);
  // Draws the last state if it was not drawn yet and ends the bar's line. Idempotent; the
  // renderer draws nothing more afterwards.
  void Finish();

  // The two line formats, for a state and a rate in items per second (nullopt: unknown).
  static std::string BarLine(const keys::Progress& progress, std::optional<double> rate);
  static std::string PlainLine(std::string_view command, const keys::Progress& progress,
                               std::optional<double> rate);

 private:
  void Draw(double now);
  std::optional<double> Rate(double now) const;

  std::ostream& out_;
  ProgressOptions options_;
  std::optional<keys::Progress> last_;  // the latest state
  bool last_drawn_ = false;
  bool drew_bar_ = false;  // the terminal line needs a newline at the end
  bool finished_ = false;
  std::optional<double> start_;      // time of the first update
  std::optional<double> last_draw_;  // time of the last line drawn
  std::int64_t earlier_items_ = 0;   // items of the phases and scopes before the current one
};

// Whether to draw the bar: io.err is the process's stderr, a terminal that understands "\r"
// and erasing to the end of the line (TERM is not "dumb").
bool ProgressOnTerminal(CliIo& io);

// "45s", "2m05s", "1h02m": a duration in whole seconds, rounded.
std::string FormatEta(double seconds);

}  // namespace bifrost::cli
