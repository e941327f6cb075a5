#include "importer/csv.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/text.h"

namespace bifrost::importer {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

std::string Bytes(std::size_t n) {
  if (n % (1024 * 1024) == 0) return std::to_string(n / (1024 * 1024)) + " MiB";
  if (n % 1024 == 0) return std::to_string(n / 1024) + " KiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

void WipeField(CsvField& field) {
  crypto::SecureWipe(field.data(), field.size());
  field.clear();
}

void CsvRecord::Wipe() {
  for (CsvField& field : fields) WipeField(field);
  fields.clear();
}

CsvReader::CsvReader(std::string path, int fd, CsvLimits limits)
    : path_(std::move(path)), fd_(fd), limits_(limits), buffer_(kReadChunk) {}

CsvReader::~CsvReader() {
  if (fd_ >= 0) ::close(fd_);
  WipeField(scratch_);
  // buffer_'s allocator wipes the block when it is freed.
}

Result<std::unique_ptr<CsvReader>> CsvReader::Open(const std::string& path, CsvLimits limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return Fail(ErrorCode::kInvalidArgument, "cannot open '" + path + "': " + std::strerror(error));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Fail(ErrorCode::kInvalidArgument,
                "cannot read '" + path + "': it is a directory, not a CSV file");
  }
  return std::unique_ptr<CsvReader>(new CsvReader(path, fd, limits));
}

std::string CsvReader::Where(std::int64_t line) const {
  std::string out = path_;
  out += " line ";
  out += std::to_string(line);
  return out;
}

Error CsvReader::Malformed(std::int64_t line, std::string what) const {
  std::string message = Where(line);
  message += ": ";
  message += what;
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

std::string CsvReader::FieldName(std::size_t index) const {
  if (index < columns_.size()) return "column " + QuoteForMessage(columns_[index]);
  return "field " + std::to_string(index + 1);
}

Result<bool> CsvReader::Fill() {
  if (pos_ < end_) return true;
  if (eof_) return false;
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
    if (n > 0) {
      pos_ = 0;
      end_ = static_cast<std::size_t>(n);
      break;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    const int error = errno;
    return Fail(ErrorCode::kInvalidArgument,
                "cannot read '" + path_ + "': " + std::strerror(error));
  }
  if (!started_) {
    started_ = true;
    // A byte order mark (spreadsheets write one; psql does not) is not part of the header.
    // The first read of a regular file returns at least three bytes unless it is shorter.
    const std::string_view head(buffer_.data(), end_);
    if (head.starts_with(kByteOrderMark)) pos_ = kByteOrderMark.size();
    if (pos_ == end_) return Fill();
  }
  return true;
}

Status CsvReader::EndField(CsvRecord& record, CsvField& field) {
  const std::size_t index = record.fields.size();
  if (index >= limits_.max_fields) {
    return Fail(Malformed(
        record.line,
        "the record has more than " + std::to_string(limits_.max_fields) + " fields (the limit)"));
  }
  if (!IsValidUtf8(field)) {
    return Fail(Malformed(record.line, FieldName(index) + " is not valid UTF-8 (export with "
                                                          "client_encoding UTF8)"));
  }
  record.fields.emplace_back(field);
  WipeField(field);
  return Ok();
}

Result<bool> CsvReader::Next(CsvRecord& record) {
  if (failed_) return Fail(ErrorCode::kFailedPrecondition, "the CSV reader failed earlier");
  for (;;) {
    bool blank = false;
    auto read = ReadRecord(record, blank);
    if (!read) {
      failed_ = true;
      WipeField(scratch_);
      return read;
    }
    // An empty line cannot be a record of a file with several columns: psql never writes
    // one, and one left at the end by an editor is skipped rather than refused.
    if (*read && blank && header_read_ && columns_.size() > 1) continue;
    return read;
  }
}

Result<bool> CsvReader::ReadRecord(CsvRecord& record, bool& blank) {
  record.Wipe();
  auto fail = [](Error error) -> Result<bool> { return Fail(std::move(error)); };

  BIFROST_ASSIGN_OR_RETURN(const bool more, Fill());
  if (!more) return false;
  record.line = line_;

  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kCarriageReturn };
  State state = State::kFieldStart;
  CsvField& field = scratch_;
  WipeField(field);
  bool record_done = false;
  while (!record_done) {
    auto filled = Fill();
    if (!filled) return fail(filled.error());
    if (!*filled) {
      // End of file: the last record may lack its line end.
      if (state == State::kQuoted) {
        return fail(Malformed(record.line, "a quoted " + FieldName(record.fields.size()) +
                                               " is never closed (the file ends inside it)"));
      }
      break;
    }
    const char c = buffer_[pos_];
    if (state == State::kCarriageReturn) {
      if (c != '\n') {
        return fail(Malformed(record.line,
                              "a carriage return outside quotes is not followed by a line feed"));
      }
      ++pos_;
      ++line_;
      record_done = true;
      break;
    }
    ++pos_;
    if (c == '\n') ++line_;
    switch (state) {
      case State::kFieldStart:
      case State::kUnquoted:
        if (c == ',') {
          if (auto s = EndField(record, field); !s) return fail(s.error());
          state = State::kFieldStart;
          continue;
        }
        if (c == '\n' || c == '\r') {
          blank = state == State::kFieldStart && record.fields.empty();
          if (c == '\n') {
            record_done = true;
          } else {
            state = State::kCarriageReturn;
          }
          continue;
        }
        if (c == '"') {
          if (state == State::kUnquoted) {
            return fail(Malformed(record.line,
                                  "a quote inside the unquoted " + FieldName(record.fields.size()) +
                                      " (a field with quotes must be quoted, its quotes doubled)"));
          }
          state = State::kQuoted;
          continue;
        }
        state = State::kUnquoted;
        break;  // append c
      case State::kQuoted:
        if (c == '"') {
          state = State::kQuoteInQuoted;
          continue;
        }
        break;  // append c, line ends included
      case State::kQuoteInQuoted:
        if (c == '"') {
          state = State::kQuoted;
          break;  // an escaped quote: append one
        }
        if (c == ',') {
          if (auto s = EndField(record, field); !s) return fail(s.error());
          state = State::kFieldStart;
          continue;
        }
        if (c == '\n') {
          record_done = true;
          continue;
        }
        if (c == '\r') {
          state = State::kCarriageReturn;
          continue;
        }
        return fail(Malformed(record.line, "unexpected text after the closing quote of " +
                                               FieldName(record.fields.size())));
      case State::kCarriageReturn:
        break;  // handled above
    }
    if (field.size() >= limits_.max_field_bytes) {
      return fail(Malformed(record.line, FieldName(record.fields.size()) + " is longer than " +
                                             Bytes(limits_.max_field_bytes) + " (the limit)"));
    }
    field.push_back(c);
  }
  if (auto s = EndField(record, field); !s) return fail(s.error());

  if (header_read_ && !(blank && columns_.size() > 1)) {
    if (records_ >= limits_.max_records) {
      return fail(Malformed(record.line, "the file has more than " +
                                             GroupThousands(limits_.max_records) +
                                             " records (the limit of one import)"));
    }
    ++records_;
    if (record.fields.size() != columns_.size()) {
      return fail(Malformed(record.line, "the record has " + std::to_string(record.fields.size()) +
                                             " fields but the header has " +
                                             std::to_string(columns_.size())));
    }
  }
  return true;
}

Status CsvReader::ReadHeader(std::initializer_list<std::string_view> required) {
  if (header_read_ || line_ != 1) {
    return Fail(ErrorCode::kInternal, "the CSV header must be read first");
  }
  CsvRecord header;
  BIFROST_ASSIGN_OR_RETURN(const bool present, Next(header));
  if (!present) {
    return Fail(ErrorCode::kInvalidArgument,
                "'" + path_ + "' is empty: expected a header row (psql \\copy ... CSV HEADER)");
  }
  std::vector<std::string> names;
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    std::string name = AsciiLower(header.fields[i]);
    if (name.empty()) {
      failed_ = true;
      return Fail(
          Malformed(header.line, "column " + std::to_string(i + 1) + " of the header has no name"));
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      failed_ = true;
      return Fail(
          Malformed(header.line, "the header names column " + QuoteForMessage(name) + " twice"));
    }
    names.push_back(std::move(name));
  }
  std::string missing;
  for (std::string_view want : required) {
    if (std::find(names.begin(), names.end(), want) == names.end()) {
      if (!missing.empty()) missing += ", ";
      missing += want;
    }
  }
  if (!missing.empty()) {
    failed_ = true;
    return Fail(Malformed(header.line, "the header lacks the column(s) " + missing +
                                           " (see docs/migrating-from-bifrost.md for the "
                                           "\\copy commands)"));
  }
  columns_ = std::move(names);
  header_read_ = true;
  return Ok();
}

std::optional<std::size_t> CsvReader::Column(std::string_view name) const {
  const std::string wanted = AsciiLower(name);
  const auto it = std::find(columns_.begin(), columns_.end(), wanted);
  if (it == columns_.end()) return std::nullopt;
  return static_cast<std::size_t>(it - columns_.begin());
}

}  // namespace bifrost::importer
