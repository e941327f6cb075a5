// Verify: walks the chain in the database, then the JSON-lines file against it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "audit/audit.h"
#include "audit/internal.h"

namespace bifrost::audit {
namespace {

constexpr std::size_t kPage = 1000;
constexpr std::size_t kReadChunk = 1 << 20;
constexpr std::size_t kMaxLineBytes = std::size_t{16} << 20;

std::string Num(std::int64_t n) { return std::to_string(n); }

// The records of a read transaction in ascending seq order, a page at a time.
class Cursor {
 public:
  explicit Cursor(store::Txn& txn) : txn_(txn) {}

  Result<std::optional<store::AuditRow>> Next() {
    if (index_ == page_.size()) {
      if (exhausted_) return std::optional<store::AuditRow>();
      BIFROST_ASSIGN_OR_RETURN(page_, txn_.ScanAudit(from_, kPage));
      index_ = 0;
      exhausted_ =
          page_.size() < kPage || page_.back().seq == std::numeric_limits<std::int64_t>::max();
      if (page_.empty()) return std::optional<store::AuditRow>();
      from_ = page_.back().seq + (exhausted_ ? 0 : 1);
    }
    return std::optional<store::AuditRow>(std::move(page_[index_++]));
  }

 private:
  store::Txn& txn_;
  std::int64_t from_ = std::numeric_limits<std::int64_t>::min();  // rows below 1 too
  std::vector<store::AuditRow> page_;
  std::size_t index_ = 0;
  bool exhausted_ = false;
};

// The lines of a file, each without its '\n'. Reads at most `limit` bytes: the size the
// file had before the database snapshot was taken (see Verify).
class LineReader {
 public:
  LineReader(int fd, std::size_t limit, std::string path)
      : fd_(fd), left_(limit), path_(std::move(path)) {}

  // False at the end of the file. `complete` is false for a last line without '\n'.
  Result<bool> Next(std::string& line, bool& complete) {
    for (;;) {
      const auto newline = buffer_.find('\n', pos_);
      if (newline != std::string::npos) {
        line.assign(buffer_, pos_, newline - pos_);
        pos_ = newline + 1;
        complete = true;
        return true;
      }
      if (left_ == 0) {
        if (pos_ == buffer_.size()) return false;
        line.assign(buffer_, pos_);
        pos_ = buffer_.size();
        complete = false;
        return true;
      }
      if (buffer_.size() - pos_ > kMaxLineBytes) {
        return Fail(ErrorCode::kInvalidArgument,
                    "the audit file " + path_ + " has a line longer than 16 MiB");
      }
      buffer_.erase(0, pos_);
      pos_ = 0;
      const std::size_t want = std::min(left_, kReadChunk);
      const std::size_t old = buffer_.size();
      buffer_.resize(old + want);
      const ssize_t n = ::read(fd_, buffer_.data() + old, want);
      if (n < 0 && errno == EINTR) {
        buffer_.resize(old);
        continue;
      }
      if (n < 0) {
        const int error = errno;
        return Fail(ErrorCode::kUnavailable,
                    "cannot read the audit file " + path_ + ": " + internal::ErrnoMessage(error));
      }
      buffer_.resize(old + static_cast<std::size_t>(n));
      left_ = n == 0 ? 0 : left_ - static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
  std::size_t left_;
  std::string path_;
  std::string buffer_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<VerifyReport> Verify(store::Store& store, const std::vector<crypto::MacKey>& keys,
                            const VerifyOptions& options) {
  VerifyReport report;
  // Only the first problem is reported; the walk goes on to fill in the counters.
  auto problem = [&report](std::int64_t seq, std::string message) {
    if (!report.ok) return;
    report.ok = false;
    report.bad_seq = seq;
    report.problem = std::move(message);
  };
  std::unordered_map<std::string, const crypto::MacKey*> by_id;
  for (const auto& key : keys) by_id.emplace(key.id(), &key);
  auto key_for = [&by_id](const std::string& id) -> const crypto::MacKey* {
    const auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second;
  };

  // The file is sized before the database snapshot is taken: the log appends to the file
  // only after the database commit, so every whole line within that size is a record the
  // snapshot has. (Records committed but not yet in the file at that moment, a group in
  // flight, can make a live log's file look short by a few records.)
  const std::string& path = options.file_path;
  std::optional<internal::Fd> file;
  std::size_t file_size = 0;
  if (!path.empty()) {
    file.emplace(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (file->get() < 0) {
      const int error = errno;
      return Fail(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                  "cannot open the audit file " + path + ": " + internal::ErrnoMessage(error));
    }
    struct stat st {};
    if (::fstat(file->get(), &st) != 0) {
      const int error = errno;
      return Fail(ErrorCode::kUnavailable,
                  "cannot stat the audit file " + path + ": " + internal::ErrnoMessage(error));
    }
    if (!S_ISREG(st.st_mode)) {
      return Fail(ErrorCode::kInvalidArgument, "the audit file " + path + " is not a regular file");
    }
    file_size = static_cast<std::size_t>(st.st_size);
  }

  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kRead));

  // ---- The database chain.
  BIFROST_ASSIGN_OR_RETURN(const auto checkpoint, txn->GetAuditCheckpoint());
  std::string expected_prev(kGenesisMac);
  std::int64_t expected_first = 1;
  if (checkpoint) {
    report.checkpoint = true;
    expected_prev = checkpoint->prev_mac;
    expected_first = checkpoint->first_seq;
    const crypto::MacKey* key = key_for(checkpoint->key_id);
    if (key == nullptr) {
      problem(0, "the retention checkpoint names audit key " + checkpoint->key_id +
                     ", which was not given");
    } else if (!key->VerifyHex({internal::CheckpointContent(*checkpoint)}, checkpoint->mac)) {
      problem(0, "the retention checkpoint was changed: its mac does not match its content");
    }
  }

  {
    Cursor cursor(*txn);
    std::optional<store::AuditRow> prev;
    // A finished master-key rotation (an authentic `keys.rotate_master` success record,
    // signed by the new key) retires the audit keys that signed records before it: a record
    // after it signed by one of them was made with a master key the operator rotated away,
    // perhaps because it leaked. retired: key -> seq of the rotation that retired it.
    std::unordered_set<std::string> seen_keys;
    std::unordered_map<std::string, std::int64_t> retired_keys;
    for (;;) {
      BIFROST_ASSIGN_OR_RETURN(auto next, cursor.Next());
      if (!next) break;
      store::AuditRow& row = *next;
      ++report.records;
      if (!prev) report.first_seq = row.seq;
      report.last_seq = row.seq;
      const std::string seq = Num(row.seq);

      if (!prev) {
        if (checkpoint && row.seq < expected_first) {
          problem(row.seq, "record " + seq +
                               " is older than the retention checkpoint, which "
                               "says the log begins at record " +
                               Num(expected_first));
        } else if (row.seq != expected_first) {
          std::string message = "record ";
          message += Num(expected_first);
          message += " is missing (";
          if (checkpoint) {
            message += "the retention checkpoint says the log begins at record ";
            message += Num(expected_first);
            message += ", but the first record is record ";
            message += seq;
          } else {
            message += "the first record is record ";
            message += seq;
            message += " and there is no retention checkpoint";
          }
          message += ")";
          problem(expected_first, std::move(message));
        }
      } else if (row.seq != prev->seq + 1) {
        // Rows come ordered by seq (the primary key), so this is a gap, never a repeat.
        problem(prev->seq + 1, "record " + Num(prev->seq + 1) + " is missing (record " +
                                   Num(prev->seq) + " is followed by record " + seq + ")");
      }

      const crypto::MacKey* key = key_for(row.key_id);
      const auto retired = retired_keys.find(row.key_id);
      if (key == nullptr) {
        problem(row.seq,
                "record " + seq + " names audit key " + row.key_id + ", which was not given");
      } else if (retired != retired_keys.end()) {
        problem(row.seq, "record " + seq + " is signed by audit key " + row.key_id +
                             ", which the master-key rotation of record " + Num(retired->second) +
                             " retired: a record made after it with the old master key was "
                             "not made by a server of this installation (or one was still "
                             "running with the old key)");
      } else if (!key->VerifyHex({internal::RecordContent(row)}, row.mac)) {
        problem(row.seq,
                "record " + seq + " was changed or reordered: its mac does not match its content");
      } else if (row.prev_mac != (prev ? prev->mac : expected_prev)) {
        // Its own mac is right, so the record is authentic but does not belong here: the
        // record before it was replaced by another authentic one.
        if (prev) {
          problem(row.seq, "record " + seq + " does not follow record " + Num(prev->seq) +
                               ": its prev_mac is not the mac of record " + Num(prev->seq) +
                               " (one of them was replaced)");
        } else if (checkpoint) {
          problem(row.seq, "record " + seq +
                               " does not follow the retention checkpoint: its prev_mac is "
                               "not the one the checkpoint names");
        } else {
          problem(row.seq, "record " + seq +
                               " does not begin the chain: its prev_mac is not the genesis value");
        }
      }
      if (key != nullptr && report.ok) {
        seen_keys.insert(row.key_id);
        if (row.action == actions::kKeysRotateMaster && row.outcome == "success") {
          for (const auto& id : seen_keys) {
            if (id != row.key_id) retired_keys.emplace(id, row.seq);
          }
        }
      }
      prev = std::move(row);
    }
    if (!prev && checkpoint) {
      problem(expected_first, "record " + Num(expected_first) +
                                  " is missing (the retention checkpoint says the log begins "
                                  "there, but the database has no records)");
    }
  }

  // ---- The file, line by line, against its own chain and against the database.
  if (file) {
    LineReader lines(file->get(), file_size, path);
    Cursor db(*txn);
    std::optional<store::AuditRow> db_row;
    bool db_started = false;
    std::optional<store::AuditRow> prev;
    std::int64_t line_number = 0;
    bool partial = false;
    std::string line;
    bool complete = true;
    for (;;) {
      BIFROST_ASSIGN_OR_RETURN(const bool more, lines.Next(line, complete));
      if (!more) break;
      ++line_number;
      const std::string where = "line " + Num(line_number) + " of " + path;
      if (!complete) {
        partial = true;
        break;
      }
      auto parsed = ParseJsonLine(line);
      if (!parsed) {
        problem(prev ? prev->seq + 1 : 0, where + " is not a record: " + parsed.error().message());
        break;  // the chain cannot be followed past it
      }
      store::AuditRow& row = *parsed;
      ++report.file_records;
      if (!prev) report.file_first_seq = row.seq;
      report.file_last_seq = row.seq;
      const std::string seq = Num(row.seq);

      if (prev && row.seq != prev->seq + 1) {
        if (row.seq > prev->seq + 1) {
          problem(prev->seq + 1, "record " + Num(prev->seq + 1) + " is missing from " + path +
                                     " (record " + Num(prev->seq) + " is followed by record " +
                                     seq + " on line " + Num(line_number) + ")");
        } else {
          problem(row.seq, where + " is record " + seq + ", which does not come after record " +
                               Num(prev->seq) + ": records were reordered or repeated");
        }
      }
      const crypto::MacKey* key = key_for(row.key_id);
      if (key == nullptr) {
        problem(row.seq, "record " + seq + " (" + where + ") names audit key " + row.key_id +
                             ", which was not given");
      } else if (!key->VerifyHex({internal::RecordContent(row)}, row.mac)) {
        problem(row.seq, "record " + seq + " (" + where +
                             ") was changed: its mac does not match its content");
      } else if (prev ? row.prev_mac != prev->mac : (row.seq == 1 && row.prev_mac != kGenesisMac)) {
        problem(row.seq, "record " + seq + " (" + where + ") does not follow the record before it");
      }

      // The same record in the database, if it still has it (the file may reach back
      // further than a pruned database).
      if (!db_started || (db_row && db_row->seq < row.seq)) {
        db_started = true;
        for (;;) {
          BIFROST_ASSIGN_OR_RETURN(db_row, db.Next());
          if (!db_row || db_row->seq >= row.seq) break;
        }
      }
      if (db_row && db_row->seq == row.seq && db_row->mac != row.mac) {
        problem(row.seq, "record " + seq + " (" + where + ") differs from record " + seq +
                             " in the database");
      }
      prev = std::move(row);
    }

    if (partial) {
      problem(report.file_records > 0 ? report.file_last_seq + 1 : 0,
              path + " ends with a partial line (line " + Num(line_number) +
                  " has no line break): an append did not finish, or the file was cut");
    }
    if (report.records > 0 && report.file_records == 0) {
      problem(report.first_seq,
              path + " has no records, but the database has records up to " + Num(report.last_seq));
    } else if (report.file_records > 0 && report.file_last_seq < report.last_seq) {
      problem(report.file_last_seq + 1, path + " ends at record " + Num(report.file_last_seq) +
                                            " but the database has records up to " +
                                            Num(report.last_seq) +
                                            ": records were removed from the end of the file");
    } else if (report.file_records > 0 && report.file_last_seq > report.last_seq) {
      problem(report.last_seq + 1, path + " has records up to " + Num(report.file_last_seq) +
                                       " but the database ends at record " + Num(report.last_seq) +
                                       ": records were removed from the end of the database");
    }
  }
  return report;
}

}  // namespace bifrost::audit
