// The JSON-lines sink of the audit log: one record per line, appended and fdatasync'd.
//
// The sink knows nothing of the chain; it opens, appends whole lines, and undoes a failed
// append. Which records go in is the AuditLog's business (audit_log.cc).
//
// Thread-safety: none; used by one thread at a time (the writer thread, or Open before it
// starts).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/store.h"

namespace bifrost::audit::internal {

class FileSink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)) {}
  ~FileSink() { Close(); }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  const std::string& path() const { return path_; }
  bool is_open() const { return fd_ >= 0; }

  // Opens the path (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0600). A pipe or a socket is
  // refused (kFailedPrecondition): a reader that stalls would stall every audited request,
  // and one that goes away would end the process with SIGPIPE. For a regular file:
  // cuts away a trailing partial line (a crash in the middle of an append) and returns the
  // last record, or nullopt when the file is empty. For anything else (a device, a pipe)
  // nothing is read: nullopt. kFailedPrecondition when the file's last line is not a
  // record (it is not an audit file; nothing is truncated then); kUnavailable when the
  // path cannot be opened or repaired.
  Result<std::optional<store::AuditRow>> Open();

  // Writes `lines` (whole lines, each ending in '\n') at the end of the file and
  // fdatasyncs it. On failure (kUnavailable) a regular file is cut back to its size before
  // the call, and the sink is closed so that the next Open() opens the path afresh (a
  // replaced or rotated file is picked up).
  Status Append(std::string_view lines);

  // True when the open regular file is no longer the one at the path: it was renamed away
  // (rotation), deleted, or replaced. The writer then reopens the path before appending, so
  // records never go to a file nobody will read.
  bool Replaced() const;

  void Close();

 private:
  const std::string path_;
  int fd_ = -1;
  bool regular_ = false;
  off_t good_size_ = 0;  // size of a regular file after its last successful append
  dev_t dev_ = 0;        // identity of the open file, to notice rotation
  ino_t ino_ = 0;
};

}  // namespace bifrost::audit::internal
