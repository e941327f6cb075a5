#include "crypto/random.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "common/text.h"

namespace bifrost::crypto {
namespace {

TEST(Random, UuidsAreCanonicalVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = NewUuidV4();
    ASSERT_TRUE(id);
    EXPECT_TRUE(IsCanonicalUuid(*id)) << *id;
    EXPECT_EQ((*id)[14], '4');
    EXPECT_NE(std::string("89ab").find((*id)[19]), std::string::npos);
    seen.insert(*id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Random, BytesAreNotConstant) {
  std::array<std::uint8_t, 32> a{}, b{};
  ASSERT_TRUE(RandomBytes(a));
  ASSERT_TRUE(RandomBytes(b));
  EXPECT_NE(a, b);
}

// Small requests come from a per-thread block of CSPRNG output. After fork() the child
// must not hand out the bytes its parent hands out next (that would repeat IVs).
TEST(Random, ForkedChildDoesNotRepeatParentBytes) {
  std::array<std::uint8_t, 16> warm{};
  ASSERT_TRUE(RandomBytes(warm));  // fills this thread's block
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::array<std::uint8_t, 16> child{};
    const bool ok = static_cast<bool>(RandomBytes(child));
    [[maybe_unused]] auto n = write(fds[1], child.data(), ok ? child.size() : 0);
    _exit(0);
  }
  close(fds[1]);
  std::array<std::uint8_t, 16> parent{};
  ASSERT_TRUE(RandomBytes(parent));
  std::array<std::uint8_t, 16> child{};
  ASSERT_EQ(read(fds[0], child.data(), child.size()), 16);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  EXPECT_NE(parent, child);
}

TEST(Random, LargeRequestsBypassThePool) {
  std::vector<std::uint8_t> big(100000, 0);
  ASSERT_TRUE(RandomBytes(big));
  EXPECT_GT(std::count(big.begin(), big.end(), 0), 0);  // about 390 zero bytes expected
  EXPECT_LT(std::count(big.begin(), big.end(), 0), 1000);
}

}  // namespace
}  // namespace bifrost::crypto
