#include "workflow/sandbox.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace bifrost::workflow {
namespace {

// The file-system rights of Landlock ABI 1-3 (what the headers of the oldest supported
// kernel know); newer kernels accept them unchanged.
constexpr std::uint64_t kReadRights =
    LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr std::uint64_t kFileReadRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE;
constexpr std::uint64_t kWriteRights =
    LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM;
constexpr std::uint64_t kAbi1Rights =
    kReadRights | kWriteRights | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK;
constexpr std::uint64_t kRefer = 1ULL << 13;     // ABI 2
constexpr std::uint64_t kTruncate = 1ULL << 14;  // ABI 3

long CreateRuleset(const void* attr, std::size_t size, std::uint32_t flags) {
  return ::syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

long AddRule(int ruleset, const landlock_path_beneath_attr* attr) {
  return ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, attr, 0);
}

std::string ErrnoText(int error) { return std::strerror(error); }

}  // namespace

int LandlockAbi() {
  const long abi = CreateRuleset(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

SandboxPaths SystemSandboxPaths(const std::string& interpreter) {
  SandboxPaths paths;
  paths.read = {"/usr",
                "/bin",
                "/sbin",
                "/lib",
                "/lib32",
                "/lib64",
                "/libx32",
                "/opt",
                "/proc",
                "/dev/zero",
                "/dev/random",
                "/dev/urandom",
                "/dev/fd",
                "/sys/devices/system/cpu",
                "/etc/ssl",
                "/etc/ca-certificates",
                "/etc/ld.so.cache",
                "/etc/ld.so.conf",
                "/etc/ld.so.conf.d",
                "/etc/localtime",
                "/etc/timezone",
                "/etc/hosts",
                "/etc/host.conf",
                "/etc/resolv.conf",
                "/etc/nsswitch.conf",
                "/etc/gai.conf",
                "/etc/services",
                "/etc/protocols",
                "/etc/passwd",
                "/etc/group",
                "/etc/mime.types"};
  // Writing to /dev/null is how programs throw output away.
  paths.read_write = {"/dev/null"};
  // Debian's Python reads its site configuration from /etc/python3.X.
  std::error_code ignored;
  std::filesystem::directory_iterator it("/etc", ignored);
  for (; !ignored && it != std::filesystem::directory_iterator(); it.increment(ignored)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with("python3")) paths.read.push_back(it->path().string());
  }
  // An interpreter installed elsewhere (pyenv, a virtual environment): its prefix, the
  // directory above the one holding the executable.
  if (!interpreter.empty()) {
    char resolved[PATH_MAX];
    if (::realpath(interpreter.c_str(), resolved) != nullptr) {
      const std::filesystem::path prefix =
          std::filesystem::path(resolved).parent_path().parent_path();
      if (prefix != "/" && !prefix.empty()) paths.read.push_back(prefix.string());
    }
  }
  return paths;
}

Result<int> MakeLandlockRuleset(const SandboxPaths& paths) {
  const int abi = LandlockAbi();
  if (abi <= 0) {
    return Fail(ErrorCode::kFailedPrecondition, "Landlock is not available in this kernel");
  }
  std::uint64_t handled = kAbi1Rights;
  if (abi >= 2) handled |= kRefer;
  if (abi >= 3) handled |= kTruncate;
  // The ruleset attribute of ABI 6, which the headers of older kernels do not have: with
  // `scoped`, a confined process can neither signal nor reach through an abstract UNIX
  // socket any process outside its own Landlock domain (the server, other executions).
  struct RulesetAttrV6 {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;
    std::uint64_t scoped;
  };
  constexpr std::uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
  constexpr std::uint64_t kScopeSignal = 1ULL << 1;
  RulesetAttrV6 attr{};
  attr.handled_access_fs = handled;
  std::size_t attr_size = sizeof(landlock_ruleset_attr);  // handled_access_fs alone
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
    attr_size = sizeof(attr);
  }
  const long ruleset = CreateRuleset(&attr, attr_size, 0);
  if (ruleset < 0) {
    return Fail(ErrorCode::kUnavailable, "cannot create a Landlock ruleset: " + ErrnoText(errno));
  }
  const int fd = static_cast<int>(ruleset);
  const auto add = [&](const std::string& path, std::uint64_t rights) -> Status {
    const int path_fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (path_fd < 0) return Ok();  // absent on this system: nothing to allow
    struct stat st {};
    if (::fstat(path_fd, &st) != 0) {
      ::close(path_fd);
      return Ok();
    }
    landlock_path_beneath_attr rule{};
    // A file takes only the rights that apply to files.
    rule.allowed_access = S_ISDIR(st.st_mode)
                              ? rights
                              : (rights & (kFileReadRights | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                           (abi >= 3 ? kTruncate : 0)));
    rule.allowed_access &= handled;
    rule.parent_fd = path_fd;
    const long added = AddRule(fd, &rule);
    const int error = errno;
    ::close(path_fd);
    if (added != 0) {
      return Fail(ErrorCode::kUnavailable,
                  "cannot allow " + path + " in the Landlock ruleset: " + ErrnoText(error));
    }
    return Ok();
  };
  for (const std::string& path : paths.read) {
    if (Status status = add(path, kReadRights); !status) {
      ::close(fd);
      return Fail(std::move(status.error()));
    }
  }
  std::uint64_t write = kReadRights | kWriteRights;
  if (abi >= 2) write |= kRefer;
  if (abi >= 3) write |= kTruncate;
  for (const std::string& path : paths.read_write) {
    if (Status status = add(path, write); !status) {
      ::close(fd);
      return Fail(std::move(status.error()));
    }
  }
  return fd;
}

Result<UserIds> LookupUser(const std::string& name) {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  if (size <= 0) size = 16384;
  std::string buffer(static_cast<std::size_t>(size), '\0');
  struct passwd entry {};
  struct passwd* found = nullptr;
  const int rc = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    return Fail(ErrorCode::kNotFound, "no user named '" + name + "' on this system");
  }
  return UserIds{static_cast<int>(found->pw_uid), static_cast<int>(found->pw_gid)};
}

}  // namespace bifrost::workflow
