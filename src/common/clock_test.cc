#include "common/clock.h"

#include <gtest/gtest.h>

namespace bifrost {
namespace {

constexpr UnixMicros kSecond = 1'000'000;

TEST(Rfc3339Test, FormatsUtcWithMicroseconds) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatRfc3339(1'764'648'077'123'456), "2025-12-02T04:01:17.123456Z");
}

TEST(Rfc3339Test, ParsesWhatItFormats) {
  for (const UnixMicros t : {UnixMicros{0}, UnixMicros{1'764'648'077'123'456},
                             UnixMicros{951'782'400'000'000} /* 2000-02-29 */}) {
    EXPECT_EQ(ParseRfc3339(FormatRfc3339(t)), std::optional<UnixMicros>(t)) << t;
  }
}

TEST(Rfc3339Test, ParsesDatesOffsetsAndFractions) {
  const UnixMicros midnight = 1'764'633'600 * kSecond;  // 2025-12-02T00:00:00Z
  EXPECT_EQ(ParseRfc3339("2025-12-02"), midnight);
  EXPECT_EQ(ParseRfc3339("2025-12-02T00:00:00Z"), midnight);
  EXPECT_EQ(ParseRfc3339("2025-12-02t00:00:00z"), midnight);
  EXPECT_EQ(ParseRfc3339("2025-12-02T01:30:00+01:30"), midnight);
  EXPECT_EQ(ParseRfc3339("2025-12-01T23:00:00-01:00"), midnight);
  EXPECT_EQ(ParseRfc3339("2025-12-02T00:00:00.5Z"), midnight + kSecond / 2);
  // More than six digits are truncated, not rounded.
  EXPECT_EQ(ParseRfc3339("2025-12-02T00:00:00.123456999Z"), midnight + 123'456);
}

TEST(Rfc3339Test, RefusesWhatIsNotOne) {
  for (const char* bad :
       {"", "2025", "2025-13-01", "2025-02-30", "2025-12-02T", "2025-12-02T24:00:00Z",
        "2025-12-02T00:00:00", "2025-12-02T00:00:00.Z", "2025-12-02T00:00:00.1234567890Z",
        "2025-12-02T00:00:00+0100", "2025-12-02 00:00:00Z", "2025-12-02T00:00:00Zx",
        "yesterday", "-2025-12-02"}) {
    EXPECT_EQ(ParseRfc3339(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace bifrost
