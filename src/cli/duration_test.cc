#include "cli/duration.h"

#include <gtest/gtest.h>

namespace bifrost::cli {
namespace {

TEST(ParseDurationSecondsTest, SingleUnits) {
  EXPECT_EQ(ParseDurationSeconds("90s"), 90);
  EXPECT_EQ(ParseDurationSeconds("30m"), 1800);
  EXPECT_EQ(ParseDurationSeconds("24h"), 86400);
  EXPECT_EQ(ParseDurationSeconds("7d"), 604800);
  EXPECT_EQ(ParseDurationSeconds("2w"), 1209600);
  EXPECT_EQ(ParseDurationSeconds("1s"), 1);
}

TEST(ParseDurationSecondsTest, CompoundDurations) {
  EXPECT_EQ(ParseDurationSeconds("1h30m"), 5400);
  EXPECT_EQ(ParseDurationSeconds("1d12h"), 129600);
  EXPECT_EQ(ParseDurationSeconds("0h5m"), 300);
}

TEST(ParseDurationSecondsTest, RejectsEverythingElse) {
  for (const char* text : {"", "soon", "30", "m", "30x", "30 m", " 30m", "30m ", "-5m", "+5m",
                           "1.5h", "30M", "0s", "0d0h", "h30", "30mm", "1h 30m"}) {
    EXPECT_EQ(ParseDurationSeconds(text), std::nullopt) << text;
  }
}

TEST(ParseDurationSecondsTest, RejectsOverflow) {
  EXPECT_EQ(ParseDurationSeconds("9223372036854775807s"), 9223372036854775807);
  EXPECT_EQ(ParseDurationSeconds("9223372036854775808s"), std::nullopt);
  EXPECT_EQ(ParseDurationSeconds("9223372036854775807m"), std::nullopt);
  EXPECT_EQ(ParseDurationSeconds("99999999999999999999d"), std::nullopt);
  EXPECT_EQ(ParseDurationSeconds("9223372036854775807s1s"), std::nullopt);
}

}  // namespace
}  // namespace bifrost::cli
