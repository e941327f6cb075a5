#include "workflow/python_sdk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace bifrost::workflow {
namespace {

Status WriteFile(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    return Fail(ErrorCode::kUnavailable,
                "cannot write " + path + ": " + std::string(std::strerror(errno)));
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return Fail(ErrorCode::kUnavailable,
                  "cannot write " + path + ": " + std::string(std::strerror(error)));
    }
    done += static_cast<std::size_t>(n);
  }
  // The mode asked for, whatever the umask took away: the workflows' user reads it.
  const int changed = ::fchmod(fd, 0444);
  ::close(fd);
  if (changed != 0) {
    return Fail(ErrorCode::kUnavailable,
                "cannot set the mode of " + path + ": " + std::string(std::strerror(errno)));
  }
  return Ok();
}

}  // namespace

Result<std::string> WritePythonSdk(const std::string& parent) {
  std::string pattern = parent + "/bifrost-sdk-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Fail(ErrorCode::kUnavailable, "cannot create a directory for the Python SDK under " +
                                             parent + ": " + std::string(std::strerror(errno)));
  }
  const std::string root = pattern;
  // Readable by the workflows' user (which may not be the server's): the code is public.
  if (::chmod(root.c_str(), 0755) != 0) {
    return Fail(ErrorCode::kUnavailable,
                "cannot set the mode of " + root + ": " + std::string(std::strerror(errno)));
  }
  for (const EmbeddedFile& file : PythonSdkFiles()) {
    const std::string path = root + "/" + std::string(file.path);
    const std::string dir = path.substr(0, path.rfind('/'));
    if ((::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) || ::chmod(dir.c_str(), 0755) != 0) {
      return Fail(ErrorCode::kUnavailable,
                  "cannot create " + dir + ": " + std::string(std::strerror(errno)));
    }
    BIFROST_RETURN_IF_ERROR(WriteFile(path, file.content));
  }
  return root;
}

}  // namespace bifrost::workflow
