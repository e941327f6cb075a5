// Reading the CSV files that psql's `\copy (SELECT ...) TO 'file' CSV HEADER` writes.
//
// The format is RFC 4180 as PostgreSQL produces it: fields separated by commas; a field that
// holds a comma, a quote, a carriage return or a line feed is quoted, with each quote inside
// it doubled; records end in LF (or CRLF); the first record is the header. An unquoted empty
// field (PostgreSQL's NULL) and a quoted empty one ("") both read as "" here: none of the
// importer's columns tells them apart. A UTF-8 byte order mark at the very start is skipped,
// and so are empty lines after the header of a file with several columns (no such record
// can exist; an editor may leave one at the end).
//
// The reader streams: it holds one record at a time, so a file of any length costs memory in
// proportion to its largest record. Every field must be valid UTF-8 and at most
// CsvLimits::max_field_bytes long, a record has at most max_fields fields and a file at most
// max_records records, so malformed or hostile input fails with a message instead of
// exhausting memory. Messages name the file and the line where the offending record begins
// ("configs.csv line 12: ..."), and never quote a field (it may be a secret).
//
// Fields may hold encrypted secrets, so everything read passes through buffers that are
// overwritten before they are freed: the read buffer, and the fields (CsvField uses
// crypto::WipingAllocator, and CsvRecord::Wipe clears the short fields kept inline).
//
// Thread-safety: a CsvReader is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "crypto/secure_buffer.h"

namespace bifrost::importer {

// A string whose heap blocks are wiped when freed (also when it grows).
using CsvField = std::basic_string<char, std::char_traits<char>, crypto::WipingAllocator<char>>;

// Overwrites the bytes `field` holds and empties it. Its spare capacity holds nothing to wipe
// as long as a field only ever grows by appending and is emptied only through this function
// (a reallocation wipes the old block), which is how this module uses them. O(size).
void WipeField(CsvField& field);

struct CsvLimits {
  std::size_t max_field_bytes = std::size_t{1} << 20;  // 1 MiB
  std::size_t max_fields = 256;                        // per record
  std::int64_t max_records = 2'000'000;                // data records (the header excluded)
};

struct CsvRecord {
  std::int64_t line = 0;  // the line of the file where the record begins (from 1)
  std::vector<CsvField> fields;

  // Wipes every field and empties the record.
  void Wipe();
};

class CsvReader {
 public:
  // Opens `path` for reading (a regular file or a pipe; not a directory).
  // kInvalidArgument "cannot open 'PATH': <reason>".
  static Result<std::unique_ptr<CsvReader>> Open(const std::string& path, CsvLimits limits = {});
  ~CsvReader();  // closes the file and wipes the read buffer
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record into `record` (its old contents wiped). Returns false at the end of
  // the file. kInvalidArgument naming the file and line for malformed CSV, a field that is
  // not UTF-8 or too long, too many fields or records, and (after ReadHeader) a record whose
  // field count differs from the header's. After an error the reader is unusable.
  Result<bool> Next(CsvRecord& record);

  // Reads the first record as the header: column names, compared in any letter case. Refuses
  // an empty file, an empty or repeated name, and a file missing one of `required` (all the
  // missing ones are named). Must be the first call of Next/ReadHeader.
  Status ReadHeader(std::initializer_list<std::string_view> required);

  // The position of a column of the header, or nullopt when the file has no such column.
  std::optional<std::size_t> Column(std::string_view name) const;

  // The path as given to Open: the name of the file in messages.
  const std::string& path() const { return path_; }

  // "PATH line N: <what>": the prefix every message about a record of this file carries.
  std::string Where(std::int64_t line) const;

 private:
  CsvReader(std::string path, int fd, CsvLimits limits);
  // Makes at least one unread byte available; false at end of file.
  Result<bool> Fill();
  // Next without the error bookkeeping; `blank` tells an empty line.
  Result<bool> ReadRecord(CsvRecord& record, bool& blank);
  Error Malformed(std::int64_t line, std::string what) const;
  std::string FieldName(std::size_t index) const;
  // Ends the field being read: checks it and appends it to `record`.
  Status EndField(CsvRecord& record, CsvField& field);

  std::string path_;
  int fd_ = -1;
  CsvLimits limits_;
  std::vector<char, crypto::WipingAllocator<char>> buffer_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  bool failed_ = false;
  bool started_ = false;      // the byte order mark check is done
  std::int64_t line_ = 1;     // the line of the next unread byte
  std::int64_t records_ = 0;  // data records read
  bool header_read_ = false;
  std::vector<std::string> columns_;  // lower-cased header names
  CsvField scratch_;                  // the field being read
};

}  // namespace bifrost::importer
