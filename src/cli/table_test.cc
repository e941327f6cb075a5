#include "cli/table.h"

#include <gtest/gtest.h>

namespace bifrost::cli {
namespace {

TEST(RenderTableTest, AlignsColumnsUnderAHeader) {
  const std::string table = RenderTable(
      {"KEY", "TYPE", "VALUE"}, {{"retries", "int", "5"}, {"a", "string", "hello world"}}, false);
  EXPECT_EQ(table,
            "KEY      TYPE    VALUE\n"
            "retries  int     5\n"
            "a        string  hello world\n");
}

TEST(RenderTableTest, HeaderOnlyWhenEmptyAndNoTrailingSpaces) {
  EXPECT_EQ(RenderTable({"ID", "NAME"}, {}, false), "ID  NAME\n");
  EXPECT_EQ(RenderTable({"A", "B"}, {{"long value", ""}}, false),
            "A           B\n"
            "long value\n");
}

TEST(RenderTableTest, MissingCellsAreEmpty) {
  EXPECT_EQ(RenderTable({"A", "B", "C"}, {{"1"}}, false), "A  B  C\n1\n");
}

TEST(RenderTableTest, AlignsByCharactersNotBytes) {
  const std::string table = RenderTable({"NAME", "X"}, {{"caf\xc3\xa9", "1"}, {"ab", "2"}}, false);
  EXPECT_EQ(table,
            "NAME  X\n"
            "caf\xc3\xa9  1\n"
            "ab    2\n");
}

TEST(RenderTableTest, AnsiOnlyWhenAskedAndOnlyOnTheHeader) {
  const std::string plain = RenderTable({"ID"}, {{"x"}}, false);
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
  const std::string styled = RenderTable({"ID"}, {{"x"}}, true);
  EXPECT_EQ(styled, "\x1b[1mID\x1b[0m\nx\n");
}

TEST(RenderTableTest, CellsCannotBreakTheLayoutOrInjectEscapes) {
  const std::string table =
      RenderTable({"K", "V"}, {{"a\nb", "\x1b[31mred\t\x7f"}, {"bad\xff", "ok"}}, false);
  EXPECT_EQ(table,
            "K        V\n"
            "a\\nb     \\x1b[31mred\\t\\x7f\n"
            "bad\\xff  ok\n");
  EXPECT_EQ(table.find('\x1b'), std::string::npos);
}

TEST(PrintableCellTest, TruncatesToWidth) {
  EXPECT_EQ(PrintableCell("abcdefghij", 10), "abcdefghij");
  EXPECT_EQ(PrintableCell("abcdefghijk", 10), "abcdefg...");
  EXPECT_EQ(PrintableCell("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4), "\xc3\xa9...");
  EXPECT_EQ(PrintableCell("a\nbcdef", 5), "a...");  // an escape is never cut in half
  EXPECT_EQ(PrintableCell("anything", 0), "anything");
}

TEST(RenderFieldsTest, AlignsValues) {
  EXPECT_EQ(RenderFields({{"Token", "bft_x"}, {"ID", "123"}, {"Expires", "-"}}, false),
            "Token:    bft_x\n"
            "ID:       123\n"
            "Expires:  -\n");
  EXPECT_EQ(RenderFields({{"ID", "1"}}, true), "\x1b[1mID:\x1b[0m  1\n");
}

}  // namespace
}  // namespace bifrost::cli
