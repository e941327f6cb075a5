#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <utility>

#include "cli/terminal.h"

namespace bifrost::cli {
namespace {

constexpr int kBarWidth = 20;
constexpr double kTerminalInterval = 0.1;  // seconds between redraws of the bar
constexpr double kPlainInterval = 1.0;     // seconds between plain lines

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// What the phase counts: its words after the first ("re-encrypting values" -> "values").
std::string_view Unit(std::string_view phase) {
  const std::size_t space = phase.find(' ');
  return space == std::string_view::npos ? std::string_view("items") : phase.substr(space + 1);
}

std::int64_t Percent(const keys::Progress& progress) {
  if (progress.total <= 0) return 100;
  const std::int64_t done = std::clamp<std::int64_t>(progress.done, 0, progress.total);
  return done * 100 / progress.total;
}

std::optional<double> EtaSeconds(const keys::Progress& progress, std::optional<double> rate) {
  if (!rate || *rate <= 0) return std::nullopt;
  const std::int64_t remaining = std::max<std::int64_t>(0, progress.total - progress.done);
  return static_cast<double>(remaining) / *rate;
}

bool SameSegment(const keys::Progress& a, const keys::Progress& b) {
  return a.phase == b.phase && a.scope == b.scope;
}

}  // namespace

std::string FormatEta(double seconds) {
  const long long total = seconds <= 0 ? 0 : std::llround(seconds);
  char text[48];
  if (total < 60) {
    std::snprintf(text, sizeof(text), "%llds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", total / 3600, (total % 3600) / 60);
  }
  return text;
}

std::string ProgressRenderer::BarLine(const keys::Progress& progress, std::optional<double> rate) {
  int filled = kBarWidth;
  if (progress.total > 0) {
    const std::int64_t done = std::clamp<std::int64_t>(progress.done, 0, progress.total);
    filled = static_cast<int>(done * kBarWidth / progress.total);
  }
  std::string line = "[";
  line.append(static_cast<std::size_t>(filled), '=');
  if (filled < kBarWidth) {
    line += '>';
    line.append(static_cast<std::size_t>(kBarWidth - filled - 1), ' ');
  }
  line += "] ";
  line += GroupThousands(progress.done);
  line += '/';
  line += GroupThousands(progress.total);
  line += ' ';
  line += Unit(progress.phase);
  if (const auto eta = EtaSeconds(progress, rate)) {
    line += "  ";
    line += GroupThousands(std::llround(*rate));
    line += "/s  ETA ";
    line += FormatEta(*eta);
  }
  if (!progress.scope.empty()) {
    line += "  ";
    line += progress.scope;
  }
  return line;
}

std::string ProgressRenderer::PlainLine(std::string_view command, const keys::Progress& progress,
                                        std::optional<double> rate) {
  std::string line(command);
  line += ": ";
  line += progress.phase;
  if (!progress.scope.empty()) {
    line += ", ";
    line += progress.scope;
  }
  line += ": ";
  line += std::to_string(progress.done);
  line += '/';
  line += std::to_string(progress.total);
  line += " (";
  line += std::to_string(Percent(progress));
  line += "%)";
  if (const auto eta = EtaSeconds(progress, rate)) {
    line += ", ";
    line += std::to_string(std::llround(*rate));
    line += "/s, ETA ";
    line += FormatEta(*eta);
  }
  return line;
}

ProgressRenderer::ProgressRenderer(std::ostream& out, ProgressOptions options)
    : out_(out), options_(std::move(options)) {
  if (!options_.now) options_.now = SteadySeconds;
}

ProgressRenderer::~ProgressRenderer() { Finish(); }

std::optional<double> ProgressRenderer::Rate(double now) const {
  if (!start_ || !last_) return std::nullopt;
  const double elapsed = now - *start_;
  const std::int64_t items = earlier_items_ + std::max<std::int64_t>(0, last_->done);
  if (elapsed <= 0 || items <= 0) return std::nullopt;
  return static_cast<double>(items) / elapsed;
}

void ProgressRenderer::Update(const keys::Progress& progress) {
  if (finished_) return;
  const double now = options_.now();
  if (!start_) start_ = now;
  bool due = !last_draw_.has_value();
  if (last_ && !SameSegment(*last_, progress)) {
    earlier_items_ += std::max<std::int64_t>(0, last_->done);
    due = due || options_.terminal;
  }
  if (options_.terminal && progress.done >= progress.total) due = true;
  const double interval = options_.terminal ? kTerminalInterval : kPlainInterval;
  if (last_draw_ && now - *last_draw_ >= interval) due = true;
  last_ = progress;
  last_drawn_ = false;
  if (due) Draw(now);
}

void ProgressRenderer::Draw(double now) {
  const auto rate = Rate(now);
  if (options_.terminal) {
    // "\x1b[K" clears what a longer earlier line left to the right.
    out_ << '\r' << BarLine(*last_, rate) << "\x1b[K" << std::flush;
    drew_bar_ = true;
  } else {
    out_ << PlainLine(options_.command, *last_, rate) << '\n' << std::flush;
  }
  last_draw_ = now;
  last_drawn_ = true;
}

void ProgressRenderer::Finish() {
  if (finished_) return;
  if (last_ && !last_drawn_) Draw(options_.now());
  if (drew_bar_) out_ << '\n' << std::flush;
  finished_ = true;
}

bool ProgressOnTerminal(CliIo& io) {
  if (io.err != &std::cerr || !IsTerminal(STDERR_FILENO)) return false;
  return io.getenv("TERM").value_or("") != "dumb";
}

}  // namespace bifrost::cli
