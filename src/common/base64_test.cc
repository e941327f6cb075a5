#include "common/base64.h"

#include <gtest/gtest.h>

namespace bifrost {
namespace {

TEST(Base64Url, Rfc4648Vectors) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg==");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8=");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, s);
  }
}

TEST(Base64Url, UsesUrlSafeAlphabet) {
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64UrlEncode(bytes), "-_-_");
  auto decoded = Base64UrlDecode("-_-_");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, bytes);
}

TEST(Base64Url, StrictDecoding) {
  for (std::string_view bad : {"Zg", "Zg=", "Zm9", "+/+/", "Zg==Zg==", "Z===", "====", "Zm9v\n",
                               "Zh==",  // non-zero trailing bits
                               "Zm9=",  // non-zero trailing bits
                               "Z=g=", "%%%%"}) {
    EXPECT_FALSE(Base64UrlDecode(bad)) << bad;
  }
}

TEST(Base64Url, AllByteValuesRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(all.substr(0, n)));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, all.substr(0, n));
  }
}

}  // namespace
}  // namespace bifrost
