// The progress renderer: bar and plain-line formats, rate and ETA from an injected clock,
// and how often each form draws.
#include "cli/progress.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace bifrost::cli {
namespace {

keys::Progress Values(std::int64_t done, std::int64_t total,
                      std::string scope = "organization acme") {
  return {.phase = "re-encrypting values", .scope = std::move(scope), .done = done, .total = total};
}

// A renderer on a string stream with a clock the test moves.
struct Fixture {
  explicit Fixture(bool terminal)
      : renderer(out,
                 {.command = "keys rotate", .terminal = terminal, .now = [this] { return now; }}) {}
  double now = 100.0;
  std::ostringstream out;
  ProgressRenderer renderer;
};

TEST(ProgressFormatTest, GroupsThousands) {
  EXPECT_EQ(GroupThousands(0), "0");
  EXPECT_EQ(GroupThousands(999), "999");
  EXPECT_EQ(GroupThousands(1000), "1,000");
  EXPECT_EQ(GroupThousands(45000), "45,000");
  EXPECT_EQ(GroupThousands(1234567), "1,234,567");
  EXPECT_EQ(GroupThousands(-1234), "-1,234");
}

TEST(ProgressFormatTest, FormatsEta) {
  EXPECT_EQ(FormatEta(0), "0s");
  EXPECT_EQ(FormatEta(-3), "0s");
  EXPECT_EQ(FormatEta(1.05), "1s");
  EXPECT_EQ(FormatEta(59.4), "59s");
  EXPECT_EQ(FormatEta(125), "2m05s");
  EXPECT_EQ(FormatEta(3599), "59m59s");
  EXPECT_EQ(FormatEta(3720), "1h02m");
}

TEST(ProgressFormatTest, BarLineAsDocumented) {
  EXPECT_EQ(ProgressRenderer::BarLine(Values(45000, 100000), 52310.0),
            "[=========>          ] 45,000/100,000 values  52,310/s  ETA 1s  "
            "organization acme");
  EXPECT_EQ(ProgressRenderer::BarLine(Values(0, 10), std::nullopt),
            "[>                   ] 0/10 values  organization acme");
  EXPECT_EQ(ProgressRenderer::BarLine(Values(10, 10, "global"), 5.0),
            "[====================] 10/10 values  5/s  ETA 0s  global");
  // A master rotation has no scope; writers may add items beyond the estimate.
  const keys::Progress rewrap{
      .phase = "re-wrapping data keys", .scope = "", .done = 15, .total = 12};
  EXPECT_EQ(ProgressRenderer::BarLine(rewrap, 3.0),
            "[====================] 15/12 data keys  3/s  ETA 0s");
  // Nothing to do is complete, not a division by zero.
  EXPECT_EQ(ProgressRenderer::BarLine(Values(0, 0, "global"), std::nullopt),
            "[====================] 0/0 values  global");
}

TEST(ProgressFormatTest, PlainLineAsDocumented) {
  EXPECT_EQ(ProgressRenderer::PlainLine("keys rotate", Values(45000, 100000), 52310.4),
            "keys rotate: re-encrypting values, organization acme: 45000/100000 (45%), "
            "52310/s, ETA 1s");
  EXPECT_EQ(ProgressRenderer::PlainLine("keys rotate", Values(0, 0, "global"), std::nullopt),
            "keys rotate: re-encrypting values, global: 0/0 (100%)");
  const keys::Progress rewrap{.phase = "re-wrapping data keys", .scope = "", .done = 2, .total = 8};
  EXPECT_EQ(ProgressRenderer::PlainLine("keys rotate", rewrap, 1.0),
            "keys rotate: re-wrapping data keys: 2/8 (25%), 1/s, ETA 6s");
}

TEST(ProgressRendererTest, PlainLinesAtMostOnceASecondAndTheLastOne) {
  Fixture f(/*terminal=*/false);
  f.renderer.Update(Values(0, 1000));  // the first state is drawn: the run has begun
  f.now += 0.5;
  f.renderer.Update(Values(100, 1000));  // too soon
  f.now += 0.5;
  f.renderer.Update(Values(200, 1000));  // a second after the last line: 200 in 1 s
  f.now += 0.25;
  f.renderer.Update(Values(250, 1000));  // too soon; drawn by Finish
  f.renderer.Finish();
  f.renderer.Finish();                   // idempotent
  f.renderer.Update(Values(300, 1000));  // nothing after Finish
  EXPECT_EQ(f.out.str(),
            "keys rotate: re-encrypting values, organization acme: 0/1000 (0%)\n"
            "keys rotate: re-encrypting values, organization acme: 200/1000 (20%), 200/s, "
            "ETA 4s\n"
            "keys rotate: re-encrypting values, organization acme: 250/1000 (25%), 200/s, "
            "ETA 4s\n");
}

TEST(ProgressRendererTest, FinishDrawsNothingMoreWhenTheLastStateWasDrawn) {
  Fixture f(/*terminal=*/false);
  f.renderer.Update(Values(5, 5));
  f.renderer.Finish();
  EXPECT_EQ(f.out.str(), "keys rotate: re-encrypting values, organization acme: 5/5 (100%)\n");
}

TEST(ProgressRendererTest, TerminalBarIsRedrawnInPlace) {
  // Steps are binary fractions, so the sums are exact.
  Fixture f(/*terminal=*/true);
  f.renderer.Update(Values(0, 100));
  f.now += 0.0625;
  f.renderer.Update(Values(10, 100));  // within 0.1 s of the last redraw: not redrawn
  f.now += 0.0625;
  f.renderer.Update(Values(20, 100));  // 20 values in 0.125 s: 160/s, 80 left
  f.now += 0.125;
  f.renderer.Update(Values(100, 100));  // complete: always drawn; 100 in 0.25 s
  f.renderer.Finish();
  EXPECT_EQ(f.out.str(),
            "\r[>                   ] 0/100 values  organization acme\x1b[K"
            "\r[====>               ] 20/100 values  160/s  ETA 1s  organization acme\x1b[K"
            "\r[====================] 100/100 values  400/s  ETA 0s  organization acme\x1b[K"
            "\n");
}

TEST(ProgressRendererTest, RateCountsEveryScopeOfTheRun) {
  Fixture f(/*terminal=*/true);
  f.renderer.Update(Values(0, 300, "global"));
  f.now += 1.0;
  f.renderer.Update(Values(300, 300, "global"));  // 300 in 1 s
  f.now += 1.0;
  // A new scope is drawn at once; the rate counts the 300 before it: 400 in 2 s.
  f.renderer.Update(Values(100, 1000, "organization acme"));
  f.renderer.Finish();
  const std::string out = f.out.str();
  EXPECT_NE(out.find("\r[==>                 ] 100/1,000 values  200/s  ETA 5s  "
                     "organization acme\x1b[K\n"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace bifrost::cli
