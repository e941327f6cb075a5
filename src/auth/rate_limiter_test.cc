// FailureLimiter on a fake clock: the count, the exact wait, the sliding window, Reset, the
// bound on keys and use from many threads.
#include "auth/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace bifrost::auth {
namespace {

constexpr UnixMicros kT0 = 1'700'000'000'000'000;
constexpr UnixMicros kSecond = 1'000'000;
constexpr UnixMicros kWindow = 600 * kSecond;

TEST(FailureLimiterTest, AllowsUpToMaxFailuresThenBlocks) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 3, kWindow);
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.RecordFailure("ana");
  EXPECT_GT(limiter.RetryAfter("ana"), 0);
  // Other keys are not affected.
  EXPECT_EQ(limiter.RetryAfter("bob"), 0);
  EXPECT_EQ(limiter.RetryAfter("an"), 0);
  EXPECT_EQ(limiter.RetryAfter("ana "), 0);
}

TEST(FailureLimiterTest, RetryAfterIsWhenTheOldestFailureLeavesTheWindow) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 3, kWindow);
  limiter.RecordFailure("ana");
  clock.Set(kT0 + 1 * kSecond);
  limiter.RecordFailure("ana");
  clock.Set(kT0 + 2 * kSecond);
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), kWindow - 2 * kSecond);
  clock.Set(kT0 + 5 * kSecond);
  EXPECT_EQ(limiter.RetryAfter("ana"), kWindow - 5 * kSecond);
  clock.Set(kT0 + kWindow - 1);
  EXPECT_EQ(limiter.RetryAfter("ana"), 1);
  clock.Set(kT0 + kWindow);
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
}

TEST(FailureLimiterTest, WindowSlides) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 3, kWindow);
  for (int i = 0; i < 3; ++i) {
    clock.Set(kT0 + i * kSecond);
    limiter.RecordFailure("ana");
  }
  // The first failure has left: one more try, and its failure blocks again until the
  // second one leaves.
  clock.Set(kT0 + kWindow);
  ASSERT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 1 * kSecond);
  clock.Set(kT0 + kWindow + 1 * kSecond);
  ASSERT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 1 * kSecond);

  // Once every failure has left, the key starts from nothing.
  clock.Set(kT0 + 3 * kWindow);
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.RecordFailure("ana");
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
}

TEST(FailureLimiterTest, FailuresSpreadOverTimeNeverBlock) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 3, kWindow);
  // Two failures per window at most.
  for (int i = 0; i < 20; ++i) {
    clock.Set(kT0 + i * (kWindow / 2));
    EXPECT_EQ(limiter.RetryAfter("ana"), 0) << i;
    limiter.RecordFailure("ana");
  }
}

TEST(FailureLimiterTest, FailuresWhileBlockedCountInTheWindow) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 2, kWindow);
  limiter.RecordFailure("ana");
  clock.Set(kT0 + 10 * kSecond);
  limiter.RecordFailure("ana");
  clock.Set(kT0 + 20 * kSecond);
  limiter.RecordFailure("ana");  // a caller that did not check RetryAfter
  // Of the three, the two newest decide: blocked until the one at 10 s leaves.
  EXPECT_EQ(limiter.RetryAfter("ana"), kWindow - 10 * kSecond);
  clock.Set(kT0 + kWindow + 10 * kSecond);
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
}

TEST(FailureLimiterTest, ResetForgetsOneKey) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 2, kWindow);
  for (int i = 0; i < 2; ++i) {
    limiter.RecordFailure("ana");
    limiter.RecordFailure("bob");
  }
  EXPECT_EQ(limiter.tracked_keys(), 2U);
  ASSERT_GT(limiter.RetryAfter("ana"), 0);
  limiter.Reset("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
  EXPECT_EQ(limiter.RetryAfter("bob"), kWindow);
  EXPECT_EQ(limiter.tracked_keys(), 1U);
  // Counting starts again from zero.
  limiter.RecordFailure("ana");
  EXPECT_EQ(limiter.RetryAfter("ana"), 0);
  limiter.Reset("nobody");
  EXPECT_EQ(limiter.tracked_keys(), 2U);
}

TEST(FailureLimiterTest, NeverWaitsLongerThanTheWindowWhenTheClockGoesBack) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 1, kWindow);
  limiter.RecordFailure("ana");
  clock.Set(kT0 - 3600 * kSecond);
  EXPECT_EQ(limiter.RetryAfter("ana"), kWindow);
}

TEST(FailureLimiterTest, DropsExpiredKeysFirstWhenFull) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 1, 10 * kSecond, /*max_keys=*/4);
  limiter.RecordFailure("a");
  clock.Set(kT0 + 1 * kSecond);
  limiter.RecordFailure("b");
  clock.Set(kT0 + 15 * kSecond);  // "a" and "b" have left the window
  limiter.RecordFailure("c");
  clock.Set(kT0 + 16 * kSecond);
  limiter.RecordFailure("d");
  EXPECT_EQ(limiter.tracked_keys(), 4U);
  clock.Set(kT0 + 17 * kSecond);
  limiter.RecordFailure("e");
  // Both expired keys went, no live one.
  EXPECT_EQ(limiter.tracked_keys(), 3U);
  for (const char* key : {"c", "d", "e"}) EXPECT_GT(limiter.RetryAfter(key), 0) << key;
}

TEST(FailureLimiterTest, AKeyExpiresExactlyOneWindowAfterItsLastFailure) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 1, 10 * kSecond, /*max_keys=*/3);
  limiter.RecordFailure("a");
  clock.Set(kT0 + 1 * kSecond);
  limiter.RecordFailure("b");
  clock.Set(kT0 + 5 * kSecond);
  limiter.RecordFailure("c");
  // At 11 s, "b" (at 1 s) has just left the window, so it goes with "a".
  clock.Set(kT0 + 11 * kSecond);
  limiter.RecordFailure("d");
  EXPECT_EQ(limiter.tracked_keys(), 2U);
  EXPECT_EQ(limiter.RetryAfter("c"), 4 * kSecond);
  EXPECT_EQ(limiter.RetryAfter("d"), 10 * kSecond);
}

TEST(FailureLimiterTest, DropsTheKeyWithTheOldestLastFailureWhenFullOfLiveKeys) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 2, kWindow, /*max_keys=*/3);
  limiter.RecordFailure("early-first-late-last");
  limiter.RecordFailure("early-first-late-last");  // blocked
  clock.Set(kT0 + 1 * kSecond);
  limiter.RecordFailure("middle");
  limiter.RecordFailure("middle");  // blocked
  clock.Set(kT0 + 2 * kSecond);
  limiter.RecordFailure("late");
  clock.Set(kT0 + 3 * kSecond);
  limiter.RecordFailure("early-first-late-last");  // now its last failure is the newest
  // A failure of a key already tracked evicts nothing.
  EXPECT_EQ(limiter.tracked_keys(), 3U);

  clock.Set(kT0 + 4 * kSecond);
  limiter.RecordFailure("new");
  EXPECT_EQ(limiter.tracked_keys(), 3U);
  EXPECT_EQ(limiter.RetryAfter("middle"), 0);  // dropped: its last failure was at 1 s
  EXPECT_GT(limiter.RetryAfter("early-first-late-last"), 0);
  limiter.RecordFailure("late");
  EXPECT_GT(limiter.RetryAfter("late"), 0);  // kept its failure from 2 s
  limiter.RecordFailure("new");
  EXPECT_GT(limiter.RetryAfter("new"), 0);
}

TEST(FailureLimiterTest, StaysWithinMaxKeysUnderAStreamOfNewKeys) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 3, kWindow, /*max_keys=*/1000);
  for (int i = 0; i < 10'000; ++i) {
    clock.AdvanceMicros(1);
    limiter.RecordFailure("client-" + std::to_string(i));
    ASSERT_LE(limiter.tracked_keys(), 1000U) << i;
  }
  // The newest key is always kept.
  limiter.RecordFailure("client-9999");
  limiter.RecordFailure("client-9999");
  EXPECT_GT(limiter.RetryAfter("client-9999"), 0);
}

TEST(FailureLimiterTest, ConcurrentUseKeepsCountsExact) {
  FakeClock clock(kT0);
  constexpr int kThreads = 8;
  constexpr int kRounds = 2000;
  FailureLimiter limiter(clock, 5, kWindow);
  std::atomic<int> blocked_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = "own-" + std::to_string(t);
      for (int i = 0; i < kRounds; ++i) {
        if (limiter.RetryAfter("shared") > 0) blocked_seen.fetch_add(1);
        limiter.RecordFailure("shared");
        limiter.RecordFailure("many-" + std::to_string(t) + "-" + std::to_string(i % 50));
        if (i == 3) {
          // Three failures of its own key so far: never blocked by the other threads.
          EXPECT_EQ(limiter.RetryAfter(own), 0);
        }
        if (i < 4) limiter.RecordFailure(own);
        if (i % 100 == 0) limiter.Reset("many-" + std::to_string(t) + "-0");
        (void)limiter.tracked_keys();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_GT(blocked_seen.load(), 0);
  EXPECT_EQ(limiter.RetryAfter("shared"), kWindow);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(limiter.RetryAfter("own-" + std::to_string(t)), 0) << t;
    EXPECT_EQ(limiter.RetryAfter("many-" + std::to_string(t) + "-1"), kWindow) << t;
  }
  // "shared", 8 own keys and 8 x 50 "many" keys.
  EXPECT_EQ(limiter.tracked_keys(), 1U + kThreads + kThreads * 50U);
}

TEST(FailureLimiterTest, ConcurrentUseWithEvictionAndAMovingClock) {
  FakeClock clock(kT0);
  FailureLimiter limiter(clock, 3, 1000, /*max_keys=*/64);
  std::atomic<bool> done{false};
  std::thread ticker([&] {
    while (!done.load()) clock.AdvanceMicros(7);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string key = std::to_string(t) + ":" + std::to_string(i % 97);
        const UnixMicros wait = limiter.RetryAfter(key);
        EXPECT_GE(wait, 0);
        EXPECT_LE(wait, 1000);
        limiter.RecordFailure(key);
        EXPECT_LE(limiter.tracked_keys(), 64U);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  done.store(true);
  ticker.join();
  EXPECT_LE(limiter.tracked_keys(), 64U);
}

TEST(FailureLimiterDeathTest, RefusesALimitThatCannotWork) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const FakeClock clock(kT0);
  EXPECT_DEATH(FailureLimiter(clock, 0, kWindow), "FailureLimiter");
  EXPECT_DEATH(FailureLimiter(clock, 3, 0), "FailureLimiter");
  EXPECT_DEATH(FailureLimiter(clock, 3, kWindow, 0), "FailureLimiter");
}

}  // namespace
}  // namespace bifrost::auth
