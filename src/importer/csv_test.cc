#include "importer/csv.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/subprocess.h"

namespace bifrost::importer {
namespace {

class CsvTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content, const std::string& name = "t.csv") {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    return path;
  }

  // Every record of `content` (header included, as a plain record), or the first error.
  Result<std::vector<CsvRecord>> ReadAll(const std::string& content, CsvLimits limits = {}) {
    BIFROST_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(Write(content), limits));
    std::vector<CsvRecord> records;
    for (;;) {
      CsvRecord record;
      BIFROST_ASSIGN_OR_RETURN(const bool more, reader->Next(record));
      if (!more) break;
      records.push_back(std::move(record));
    }
    return records;
  }

  static std::vector<std::string> Fields(const CsvRecord& record) {
    std::vector<std::string> out;
    for (const auto& f : record.fields) out.emplace_back(f);
    return out;
  }

  // The error message of reading `content` with a header of `required` columns.
  std::string ErrorOf(const std::string& content, CsvLimits limits = {},
                      std::initializer_list<std::string_view> required = {}) {
    auto reader = CsvReader::Open(Write(content), limits);
    if (!reader) return reader.error().message();
    if (auto header = (*reader)->ReadHeader(required); !header) return header.error().message();
    CsvRecord record;
    for (;;) {
      auto more = (*reader)->Next(record);
      if (!more) return more.error().message();
      if (!*more) return "";
    }
  }

  std::string PathOf(const std::string& name = "t.csv") const { return dir_.path() + "/" + name; }

  testing::TempDir dir_;
};

using Strings = std::vector<std::string>;

// What psql's \copy ... CSV HEADER writes: quotes only where needed, doubled inside.
TEST_F(CsvTest, ReadsPostgresOutput) {
  const std::string content =
      "id,key,value,description\n"
      "1,plain,\"{\"\"value\"\": \"\"x\"\"}\",\n"
      "2,comma,\"a,b\",\"\"\n"
      "3,newline,\"line one\nline two\r\nline three\",\"say \"\"hi\"\"\"\n"
      "4,unicode,\"{\"\"value\"\": \"\"日本語 🔑 café\"\"}\",naïve\n";
  auto records = ReadAll(content);
  ASSERT_TRUE(records) << records.error().ToString();
  ASSERT_EQ(records->size(), 5u);
  EXPECT_EQ(Fields((*records)[0]), (Strings{"id", "key", "value", "description"}));
  EXPECT_EQ(Fields((*records)[1]), (Strings{"1", "plain", "{\"value\": \"x\"}", ""}));
  EXPECT_EQ(Fields((*records)[2]), (Strings{"2", "comma", "a,b", ""}));
  EXPECT_EQ(Fields((*records)[3]),
            (Strings{"3", "newline", "line one\nline two\r\nline three", "say \"hi\""}));
  EXPECT_EQ(Fields((*records)[4]),
            (Strings{"4", "unicode", "{\"value\": \"日本語 🔑 café\"}", "naïve"}));
  // A record is numbered by the line it starts on, however many lines the one before spans.
  EXPECT_EQ((*records)[0].line, 1);
  EXPECT_EQ((*records)[3].line, 4);
  EXPECT_EQ((*records)[4].line, 7);
}

TEST_F(CsvTest, AcceptsCrlfAMissingFinalNewlineAndAByteOrderMark) {
  auto records = ReadAll("\xEF\xBB\xBFid,name\r\n1,a\r\n2,\"b\"");
  ASSERT_TRUE(records) << records.error().ToString();
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ(Fields((*records)[0]), (Strings{"id", "name"}));
  EXPECT_EQ(Fields((*records)[2]), (Strings{"2", "b"}));
  EXPECT_EQ((*records)[2].line, 3);
}

TEST_F(CsvTest, EmptyFieldsQuotedOrNot) {
  auto records = ReadAll(",\"\",\n\"\",,");
  ASSERT_TRUE(records) << records.error().ToString();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ(Fields((*records)[0]), (Strings{"", "", ""}));
  EXPECT_EQ(Fields((*records)[1]), (Strings{"", "", ""}));
}

TEST_F(CsvTest, HeaderColumnsAreFoundInAnyCaseAndOrder) {
  auto reader = CsvReader::Open(Write("Name,ID,extra\nacme,1,x\n"));
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->ReadHeader({"id", "name"}));
  EXPECT_EQ((*reader)->Column("id"), 1u);
  EXPECT_EQ((*reader)->Column("NAME"), 0u);
  EXPECT_EQ((*reader)->Column("missing"), std::nullopt);
  CsvRecord record;
  ASSERT_TRUE((*reader)->Next(record).value());
  EXPECT_EQ(Fields(record), (Strings{"acme", "1", "x"}));
  EXPECT_EQ(record.line, 2);
  EXPECT_FALSE((*reader)->Next(record).value());
}

TEST_F(CsvTest, BlankLinesAfterTheHeaderAreSkipped) {
  auto reader = CsvReader::Open(Write("id,name\n\n1,a\n\r\n2,b\n\n\n"));
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->ReadHeader({}));
  CsvRecord record;
  ASSERT_TRUE((*reader)->Next(record).value());
  EXPECT_EQ(record.line, 3);
  ASSERT_TRUE((*reader)->Next(record).value());
  EXPECT_EQ(record.line, 5);
  EXPECT_EQ(Fields(record), (Strings{"2", "b"}));
  EXPECT_FALSE((*reader)->Next(record).value());
}

TEST_F(CsvTest, MissingRequiredColumnsAreAllNamed) {
  EXPECT_EQ(ErrorOf("id,value\n", {}, {"id", "key", "value", "config_type"}),
            PathOf() +
                " line 1: the header lacks the column(s) key, config_type (see "
                "docs/migrating-from-bifrost.md for the \\copy commands)");
}

TEST_F(CsvTest, MalformedInputNamesFileAndLine) {
  struct Case {
    std::string content;
    std::string message;
  };
  const std::string p = PathOf();
  for (const Case& c : {
           Case{"a,b\n1,2\n3,\"never closed\n\n", p + " line 3: a quoted column 'b' is never "
                                                      "closed (the file ends inside it)"},
           Case{"a,b\n1,x\"y\n", p + " line 2: a quote inside the unquoted column 'b' (a field "
                                     "with quotes must be quoted, its quotes doubled)"},
           Case{"a,b\n\"1\"x,2\n",
                p + " line 2: unexpected text after the closing quote of column 'a'"},
           Case{"a,b\n1,2\r3,4\n",
                p + " line 2: a carriage return outside quotes is not followed by a line feed"},
           Case{"a,b\n1,2\n3\n", p + " line 3: the record has 1 fields but the header has 2"},
           Case{"a,b\n1,2,3\n", p + " line 2: the record has 3 fields but the header has 2"},
           Case{"a,b\n1,\"\xff\xfe\"\n",
                p + " line 2: column 'b' is not valid UTF-8 (export with client_encoding UTF8)"},
           Case{"a,a\n", p + " line 1: the header names column 'a' twice"},
           Case{"a,,c\n", p + " line 1: column 2 of the header has no name"},
           Case{"", "'" + p + "' is empty: expected a header row (psql \\copy ... CSV HEADER)"},
       }) {
    EXPECT_EQ(ErrorOf(c.content), c.message) << c.content;
  }
}

TEST_F(CsvTest, LimitsFailWithAMessageInsteadOfGrowing) {
  const std::string p = PathOf();
  EXPECT_EQ(ErrorOf("a,b\n1," + std::string(2000, 'x') + "\n", {.max_field_bytes = 1024}),
            p + " line 2: column 'b' is longer than 1 KiB (the limit)");
  EXPECT_EQ(ErrorOf("a,b\n1,\"" + std::string(2000, '\n') + "\"\n", {.max_field_bytes = 1024}),
            p + " line 2: column 'b' is longer than 1 KiB (the limit)");
  EXPECT_EQ(ErrorOf("a,b,c,d\n", {.max_fields = 3}),
            p + " line 1: the record has more than 3 fields (the limit)");
  EXPECT_EQ(ErrorOf("a\n1\n2\n3\n", {.max_records = 2}),
            p + " line 4: the file has more than 2 records (the limit of one import)");
  EXPECT_EQ(ErrorOf("a\n1\n2\n", {.max_records = 2}), "");
}

TEST_F(CsvTest, AfterAnErrorTheReaderStaysFailed) {
  auto reader = CsvReader::Open(Write("a\n\"x\"y\n1\n"));
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->ReadHeader({}));
  CsvRecord record;
  EXPECT_FALSE((*reader)->Next(record));
  auto again = (*reader)->Next(record);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(CsvTest, OpenFailuresNameThePath) {
  auto missing = CsvReader::Open(dir_.path() + "/absent.csv");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "cannot open '" + dir_.path() + "/absent.csv': No such file or directory");
  auto directory = CsvReader::Open(dir_.path());
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().message(),
            "cannot read '" + dir_.path() + "': it is a directory, not a CSV file");
}

// Records and fields that straddle the reader's 64 KiB blocks, and many records: the reader
// streams, one record at a time.
TEST_F(CsvTest, StreamsLargeFilesAcrossBlockBoundaries) {
  std::string content = "n,text\n";
  std::vector<std::string> expected;
  for (int i = 0; i < 20'000; ++i) {
    std::string text = "row " + std::to_string(i);
    if (i % 997 == 0) text += std::string(70'000, 'q') + "\",\n\"";  // several blocks
    expected.push_back(text);
    std::string quoted;
    for (char c : text) {
      if (c == '"') quoted.push_back('"');
      quoted.push_back(c);
    }
    content += std::to_string(i) + ",\"" + quoted + "\"\n";
  }
  auto reader = CsvReader::Open(Write(content));
  ASSERT_TRUE(reader);
  ASSERT_TRUE((*reader)->ReadHeader({"n", "text"}));
  CsvRecord record;
  std::int64_t line = 2;
  for (int i = 0; i < 20'000; ++i) {
    auto more = (*reader)->Next(record);
    ASSERT_TRUE(more && *more) << i;
    ASSERT_EQ(std::string(record.fields[0]), std::to_string(i));
    ASSERT_EQ(std::string(record.fields[1]), expected[static_cast<std::size_t>(i)]) << i;
    ASSERT_EQ(record.line, line) << i;
    line += i % 997 == 0 ? 2 : 1;
  }
  EXPECT_FALSE((*reader)->Next(record).value());
}

// A pipe is read like a file: `--configs <(psql ...)` works.
TEST_F(CsvTest, ReadsFromAPipe) {
  const std::string fifo = dir_.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] {
    std::ofstream out(fifo, std::ios::binary);
    out << "a,b\n1,\"x\ny\"\n";
  });
  auto reader = CsvReader::Open(fifo);
  ASSERT_TRUE(reader) << reader.error().ToString();
  ASSERT_TRUE((*reader)->ReadHeader({"a", "b"}));
  CsvRecord record;
  ASSERT_TRUE((*reader)->Next(record).value());
  EXPECT_EQ(std::string(record.fields[1]), "x\ny");
  EXPECT_FALSE((*reader)->Next(record).value());
  writer.join();
}

TEST_F(CsvTest, WipeEmptiesTheRecord) {
  CsvRecord record;
  record.fields.emplace_back("gAAAAAB-ciphertext-of-some-length");
  record.fields.emplace_back("x");
  record.line = 7;
  record.Wipe();
  EXPECT_TRUE(record.fields.empty());
  CsvField field("some field text that is longer than the inline buffer");
  WipeField(field);
  EXPECT_TRUE(field.empty());
}

}  // namespace
}  // namespace bifrost::importer
