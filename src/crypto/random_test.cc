#include "crypto/random.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace bifrost::crypto
