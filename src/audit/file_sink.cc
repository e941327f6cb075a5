#include "audit/file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "audit/audit.h"
#include "audit/internal.h"

namespace bifrost::audit::internal {
namespace {

// No record comes near this; a file whose last line is longer is not an audit file, and is
// not read (or truncated) any further.
constexpr off_t kMaxLineBytes = off_t{16} << 20;
constexpr std::size_t kChunkBytes = 64 * 1024;

// The start of every line ToJsonLine writes: lets a file that is nothing but one partial
// line (a crash during its first append) be told apart from a file that is not ours.
constexpr std::string_view kRecordStart = R"({"seq":)";

Status Unavailable(const std::string& path, std::string_view what, int error) {
  std::string message = "cannot ";
  message += what;
  message += " the audit file ";
  message += path;
  message += ": ";
  message += ErrnoMessage(error);
  return Fail(ErrorCode::kUnavailable, std::move(message));
}

// Reads exactly [offset, offset + size) of `fd`.
Result<std::string> ReadAt(int fd, off_t offset, std::size_t size, const std::string& path) {
  std::string out(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pread(fd, out.data() + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(Unavailable(path, "read", errno).error());
    if (n == 0)
      return Fail(ErrorCode::kUnavailable, "the audit file " + path + " shrank while it was read");
    done += static_cast<std::size_t>(n);
  }
  return out;
}

// The offset of the last '\n' in [end - limit, end), or nullopt if there is none.
Result<std::optional<off_t>> FindNewlineBefore(int fd, off_t end, off_t limit,
                                               const std::string& path) {
  const off_t stop = end > limit ? end - limit : 0;
  off_t chunk_end = end;
  while (chunk_end > stop) {
    const off_t chunk_start = chunk_end - stop > static_cast<off_t>(kChunkBytes)
                                  ? chunk_end - static_cast<off_t>(kChunkBytes)
                                  : stop;
    BIFROST_ASSIGN_OR_RETURN(
        const std::string chunk,
        ReadAt(fd, chunk_start, static_cast<std::size_t>(chunk_end - chunk_start), path));
    const auto pos = chunk.rfind('\n');
    if (pos != std::string::npos)
      return std::optional<off_t>(chunk_start + static_cast<off_t>(pos));
    chunk_end = chunk_start;
  }
  return std::optional<off_t>();
}

// Makes a newly created file's directory entry durable. Best effort: the directory may not
// be readable, and the records themselves are fdatasync'd either way.
void SyncParentDirectory(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) (void)::fsync(fd.get());
}

}  // namespace

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::optional<store::AuditRow>> FileSink::Open() {
  Close();
  const auto refuse_pipe = [&] {
    return Fail(ErrorCode::kFailedPrecondition,
                "the audit file " + path_ +
                    " is a pipe or a socket; it must be a regular file (or a device)");
  };
  struct stat at_path {};
  if (::stat(path_.c_str(), &at_path) == 0 &&
      (S_ISFIFO(at_path.st_mode) || S_ISSOCK(at_path.st_mode))) {
    return refuse_pipe();
  }
  // O_NONBLOCK so that a FIFO without a reader cannot block the open (it fails with ENXIO
  // instead); cleared again below for what is kept.
  Fd fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600));
  if (fd.get() < 0) return Fail(Unavailable(path_, "open", errno).error());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Fail(Unavailable(path_, "stat", errno).error());
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) return refuse_pipe();
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Fail(Unavailable(path_, "configure", errno).error());
  }
  regular_ = S_ISREG(st.st_mode);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (!regular_) {
    // A device or a pipe: nothing to read back, nothing to truncate.
    good_size_ = 0;
    fd_ = fd.release();
    return std::optional<store::AuditRow>();
  }

  // The write descriptor is append-only; read through a second one, checked to be the
  // same file (the path could have been replaced in between).
  const Fd reader(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (reader.get() < 0) return Fail(Unavailable(path_, "open", errno).error());
  struct stat rst {};
  if (::fstat(reader.get(), &rst) != 0) return Fail(Unavailable(path_, "stat", errno).error());
  if (rst.st_dev != st.st_dev || rst.st_ino != st.st_ino) {
    return Fail(ErrorCode::kUnavailable,
                "the audit file " + path_ + " was replaced while it was being opened");
  }
  const off_t size = rst.st_size;
  if (size == 0) {
    SyncParentDirectory(path_);
    good_size_ = 0;
    fd_ = fd.release();
    return std::optional<store::AuditRow>();
  }

  auto not_ours = [&](std::string_view why) {
    std::string message = "the audit file ";
    message += path_;
    message += ' ';
    message += why;
    message += ": it is not an audit log (nothing was changed in it)";
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  };

  BIFROST_ASSIGN_OR_RETURN(const auto last_newline,
                           FindNewlineBefore(reader.get(), size, kMaxLineBytes + 1, path_));
  std::optional<store::AuditRow> last;
  off_t complete_end = 0;  // the file up to here is whole lines
  if (!last_newline) {
    // No complete line at all: the file is one partial line, which is only ours to cut
    // away if it begins the way every record does.
    if (size > kMaxLineBytes) return not_ours("does not end with a line break");
    BIFROST_ASSIGN_OR_RETURN(const std::string head,
                             ReadAt(reader.get(), 0,
                                    static_cast<std::size_t>(std::min<off_t>(
                                        size, static_cast<off_t>(kRecordStart.size()))),
                                    path_));
    if (head != kRecordStart.substr(0, head.size()))
      return not_ours("does not begin with a record");
  } else {
    complete_end = *last_newline + 1;
    BIFROST_ASSIGN_OR_RETURN(
        const auto previous_newline,
        FindNewlineBefore(reader.get(), *last_newline, kMaxLineBytes + 1, path_));
    if (!previous_newline && *last_newline > kMaxLineBytes) {
      return not_ours("has a last line longer than 16 MiB");
    }
    const off_t start = previous_newline ? *previous_newline + 1 : 0;
    BIFROST_ASSIGN_OR_RETURN(
        const std::string line,
        ReadAt(reader.get(), start, static_cast<std::size_t>(*last_newline - start), path_));
    auto row = ParseJsonLine(line);
    if (!row)
      return not_ours("ends with a line that is not a record (" + row.error().message() + ")");
    last = std::move(*row);
  }

  if (complete_end < size) {
    // A partial line after the last whole record: an append that a crash interrupted. Its
    // record was committed to the database first, so the catch-up writes it again whole.
    if (::ftruncate(fd.get(), complete_end) != 0) {
      return Fail(Unavailable(path_, "truncate the partial last line of", errno).error());
    }
    if (::fdatasync(fd.get()) != 0) return Fail(Unavailable(path_, "sync", errno).error());
  }
  good_size_ = complete_end;
  fd_ = fd.release();
  return last;
}

Status FileSink::Append(std::string_view lines) {
  if (fd_ < 0) {
    return Fail(ErrorCode::kUnavailable, "the audit file " + path_ + " is not open");
  }
  if (regular_) {
    // Where to cut back to if this append fails: the file as it is now, not as it was
    // after our last append (someone may have truncated it since, e.g. copytruncate).
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int error = errno;
      Close();
      return Unavailable(path_, "stat", error);
    }
    good_size_ = st.st_size;
  }
  int error = 0;
  std::string_view what = "write";
  // One write loop for the whole group; a short write continues where it stopped.
  std::string_view left = lines;
  while (!left.empty()) {
    const ssize_t n = ::write(fd_, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  // A device or pipe may not support syncing (EINVAL); the write is all there is then.
  if (error == 0 && ::fdatasync(fd_) != 0 && (regular_ || (errno != EINVAL && errno != EROFS))) {
    error = errno;
    what = "sync";
  }
  if (error != 0) {
    // Undo whatever part of the group reached the file, so that it never holds a record
    // twice or half of one. If even that fails, the next Open() cuts a partial line away.
    if (regular_ && ::ftruncate(fd_, good_size_) != 0) {
      // Nothing more to do here; see above.
    }
    Close();
    return Unavailable(path_, what, error);
  }
  good_size_ += static_cast<off_t>(lines.size());
  return Ok();
}

bool FileSink::Replaced() const {
  if (fd_ < 0 || !regular_) return false;
  struct stat open_file {};
  struct stat at_path {};
  if (::fstat(fd_, &open_file) != 0 || open_file.st_nlink == 0) return true;
  if (::stat(path_.c_str(), &at_path) != 0) return true;
  return at_path.st_dev != dev_ || at_path.st_ino != ino_;
}

void FileSink::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace bifrost::audit::internal
