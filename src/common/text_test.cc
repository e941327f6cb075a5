#include "common/text.h"

#include <gtest/gtest.h>

namespace bifrost {
namespace {

TEST(Utf8, AcceptsWellFormed) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("Müller GmbH"));
  EXPECT_TRUE(IsValidUtf8("日本語"));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x94\x91"));  // U+1F511
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST(Utf8, RejectsMalformed) {
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("ok\xE2\x82"));  // truncated at the end
}

TEST(Text, ControlChars) {
  EXPECT_FALSE(HasControlChar("Acme Corp"));
  EXPECT_TRUE(HasControlChar("a\nb"));
  EXPECT_TRUE(HasControlChar(std::string_view("a\0b", 3)));
  EXPECT_TRUE(HasControlChar("\x7F"));
}

TEST(Text, Uuid) {
  EXPECT_TRUE(IsCanonicalUuid("123e4567-e89b-42d3-a456-426614174000"));
  EXPECT_FALSE(IsCanonicalUuid("123E4567-E89B-42D3-A456-426614174000"));
  EXPECT_FALSE(IsCanonicalUuid("123e4567e89b42d3a456426614174000"));
  EXPECT_FALSE(IsCanonicalUuid("123e4567-e89b-42d3-a456-42661417400g"));
  EXPECT_FALSE(IsCanonicalUuid(""));
  std::array<std::uint8_t, 16> bytes{};
  for (std::size_t i = 0; i < 16; ++i) bytes[i] = static_cast<std::uint8_t>(i * 17);
  EXPECT_EQ(FormatUuid(bytes), "00112233-4455-6677-8899-aabbccddeeff");
}

TEST(Text, CanonicalInt64) {
  EXPECT_EQ(ParseCanonicalInt64("0"), 0);
  EXPECT_EQ(ParseCanonicalInt64("42"), 42);
  EXPECT_EQ(ParseCanonicalInt64("-42"), -42);
  EXPECT_EQ(ParseCanonicalInt64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseCanonicalInt64("-9223372036854775808"), INT64_MIN);
  for (std::string_view bad : {"", "-", "+1", "01", "-0", "1.0", "1e3", " 1", "1 ", "abc",
                               "9223372036854775808", "-9223372036854775809", "0x10"}) {
    EXPECT_FALSE(ParseCanonicalInt64(bad)) << bad;
  }
}

}  // namespace
}  // namespace bifrost

namespace bifrost {
namespace {

TEST(Text, QuoteForMessage) {
  EXPECT_EQ(QuoteForMessage("retries"), "'retries'");
  EXPECT_EQ(QuoteForMessage("a\nb'c"), "'a\\x0ab\\x27c'");
  EXPECT_EQ(QuoteForMessage(std::string(100, 'k')), "'" + std::string(64, 'k') + "...'");
}

}  // namespace
}  // namespace bifrost

namespace bifrost {
namespace {

TEST(TextHelpers, AsciiLowerTrimAndGroupThousands) {
  EXPECT_EQ(AsciiLower("Application/JSON; Charset=UTF-8 É"), "application/json; charset=utf-8 É");
  EXPECT_EQ(TrimSpacesAndTabs(" \t a b\t "), "a b");
  EXPECT_EQ(TrimSpacesAndTabs("\n x \n"), "\n x \n");  // only spaces and tabs
  EXPECT_EQ(GroupThousands(0), "0");
  EXPECT_EQ(GroupThousands(999), "999");
  EXPECT_EQ(GroupThousands(1000), "1,000");
  EXPECT_EQ(GroupThousands(2'000'000), "2,000,000");
  EXPECT_EQ(GroupThousands(-1'234'567), "-1,234,567");
}

TEST(TextTest, ToStorableTextKeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(ToStorableText(""), "");
  EXPECT_EQ(ToStorableText("Müller GmbH\n\ttab"), "Müller GmbH\n\ttab");
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(ToStorableText(std::string("a\0b", 3)), "a" + replacement + "b");
  EXPECT_EQ(ToStorableText("x\xFFy"), "x" + replacement + "y");
  // A character cut after its first byte (output cut at a size limit).
  EXPECT_EQ(ToStorableText("caf\xC3"), "caf" + replacement);
  // An overlong encoding of '/' and a lone continuation byte.
  EXPECT_EQ(ToStorableText("\xC0\xAF\x80"), replacement + replacement + replacement);
  for (const std::string& text : {std::string("ok"), std::string("a\0b", 3),
                                  std::string("\xF0\x9F\x98"), std::string("\xED\xA0\x80")}) {
    const std::string stored = ToStorableText(text);
    EXPECT_TRUE(IsValidUtf8(stored)) << stored;
    EXPECT_EQ(stored.find('\0'), std::string::npos);
  }
}

}  // namespace
}  // namespace bifrost
