#include "keys/key_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include "crypto/key_derivation.h"

namespace bifrost::keys {
namespace {

// A key file larger than this is certainly not a key (and not read whole into memory).
constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

constexpr std::string_view kMissingKey =
    "BIFROST_SECRET_KEY is not set (or set BIFROST_SECRET_KEY_FILE to a file holding it)";

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

void Warn(const std::string& text) { std::fprintf(stderr, "bifrost: warning: %s\n", text.c_str()); }

// Removes `name` from the environment and overwrites each of its "NAME=value" entries,
// name included. unsetenv only drops the pointer: the text would otherwise stay in memory
// and in /proc/self/environ, which shows the environment block the process started with.
// (An entry is either in that block or was made by setenv, whose strings glibc never frees,
// so the memory is still ours to overwrite after unsetenv.)
void EraseVariable(const char* name) {
  const std::size_t name_length = std::strlen(name);
  std::vector<char*> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, name, name_length) == 0 && (*entry)[name_length] == '=') {
      entries.push_back(*entry);
    }
  }
  ::unsetenv(name);
  for (char* entry : entries) crypto::SecureWipe(entry, std::strlen(entry));
}

// The value of one variable (nullopt when unset or empty), copied into wiped memory before
// the variable is erased.
std::optional<crypto::SecureBuffer> TakeVariable(const char* name) {
  std::optional<crypto::SecureBuffer> value;
  if (const char* raw = std::getenv(name); raw != nullptr && raw[0] != '\0') {
    value = crypto::SecureBuffer::From(std::string_view(raw));
  }
  EraseVariable(name);
  return value;
}

// A path is not a secret, but it is taken out of the environment too, so that a child
// process does not learn where the key lives.
std::string TakePath(const char* name) {
  std::string path;
  if (const char* raw = std::getenv(name); raw != nullptr) path = raw;
  EraseVariable(name);
  return path;
}

// The keys in `text`, one per line: "\n" or "\r\n" line ends, blank lines (empty or only
// spaces and tabs) skipped. Each key is named "<source> line N", N counting every line, so
// that a message points at the line the operator wrote.
std::vector<Secret> SplitLines(const crypto::SecureBuffer& text, std::string_view source) {
  std::vector<Secret> keys;
  const std::string_view all = text.view();
  std::size_t start = 0;
  std::size_t line_number = 0;
  while (start <= all.size()) {
    std::size_t end = all.find('\n', start);
    const bool last = end == std::string_view::npos;
    if (last) end = all.size();
    std::string_view line = all.substr(start, end - start);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool blank = line.find_first_not_of(" \t") == std::string_view::npos;
    if (!blank) {
      std::string name(source);
      name += " line ";
      name += std::to_string(line_number);
      keys.push_back(Secret{crypto::SecureBuffer::From(line), std::move(name)});
    }
    if (last) break;
    start = end + 1;
  }
  return keys;
}

}  // namespace

Result<crypto::SecureBuffer> ReadKeyFile(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Fail(ErrorCode::kFailedPrecondition,
                "cannot open " + std::string(what) + " '" + path + "': " + ErrnoText(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    Warn(std::string(what) + " '" + path + "' may be read by group or others (mode " + mode +
         "); chmod 600 it");
  }
  crypto::SecureBuffer contents(kMaxKeyFileBytes + 1);
  std::size_t size = 0;
  while (size < contents.size()) {
    const ssize_t n = ::read(fd, contents.data() + size, contents.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Fail(ErrorCode::kFailedPrecondition,
                  "cannot read " + std::string(what) + " '" + path + "': " + ErrnoText(err));
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (size > kMaxKeyFileBytes) {
    std::string message(what);
    message += " '" + path + "' is larger than ";
    message += std::to_string(kMaxKeyFileBytes);
    message += " bytes";
    return Fail(ErrorCode::kInvalidArgument, std::move(message));
  }
  if (size > 0 && contents.data()[size - 1] == '\n') {
    --size;
    if (size > 0 && contents.data()[size - 1] == '\r') --size;
  }
  contents.Resize(size);
  return contents;
}

Result<EnvironmentKeys> TakeKeysFromEnvironment() {
  // All four leave the environment before anything can fail.
  std::optional<crypto::SecureBuffer> current = TakeVariable(kSecretKeyEnv);
  const std::string current_file = TakePath(kSecretKeyFileEnv);
  std::optional<crypto::SecureBuffer> previous = TakeVariable(kPreviousKeyEnv);
  const std::string previous_file = TakePath(kPreviousKeyFileEnv);

  if (current && !current_file.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "both BIFROST_SECRET_KEY and BIFROST_SECRET_KEY_FILE are set; set only one");
  }
  if (previous && !previous_file.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "both BIFROST_SECRET_KEY_PREVIOUS and BIFROST_SECRET_KEY_PREVIOUS_FILE are set; "
                "set only one");
  }

  EnvironmentKeys keys;
  if (current) {
    keys.current = Secret{std::move(*current), kSecretKeyEnv};
  } else if (!current_file.empty()) {
    BIFROST_ASSIGN_OR_RETURN(auto text, ReadKeyFile(current_file, kSecretKeyFileEnv));
    keys.current = Secret{std::move(text), kSecretKeyFileEnv};
  }

  if (previous) {
    keys.previous = SplitLines(*previous, kPreviousKeyEnv);
  } else if (!previous_file.empty()) {
    BIFROST_ASSIGN_OR_RETURN(auto text, ReadKeyFile(previous_file, kPreviousKeyFileEnv));
    keys.previous = SplitLines(text, kPreviousKeyFileEnv);
  }

  // Previous keys only open what is already stored; without a current key nothing could be
  // sealed, and the operator most likely moved the wrong variable.
  if (!keys.previous.empty() && !keys.current) {
    return Fail(ErrorCode::kInvalidArgument,
                "BIFROST_SECRET_KEY_PREVIOUS is set but BIFROST_SECRET_KEY is not: previous "
                "keys only decrypt; set the current key in BIFROST_SECRET_KEY (or "
                "BIFROST_SECRET_KEY_FILE)");
  }
  return keys;
}

Result<crypto::Keyring> BuildKeyring(const Secret& current, const std::vector<Secret>& previous) {
  BIFROST_ASSIGN_OR_RETURN(auto primary,
                           crypto::DeriveMasterKey(current.text.view(), current.source));
  std::vector<crypto::FernetKey> others;
  others.reserve(previous.size());
  for (std::size_t i = 0; i < previous.size(); ++i) {
    BIFROST_ASSIGN_OR_RETURN(auto key,
                             crypto::DeriveMasterKey(previous[i].text.view(), previous[i].source));
    // Keys are compared by their derived ids (equal ids are equal keys): the messages name
    // where the keys came from, never the keys.
    if (key.id() == primary.id()) {
      return Fail(ErrorCode::kInvalidArgument, previous[i].source + " is the current key (" +
                                                   current.source +
                                                   "); list only older keys there");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (others[j].id() == key.id()) {
        return Fail(ErrorCode::kInvalidArgument,
                    previous[i].source + " repeats " + previous[j].source + "; list each key once");
      }
    }
    others.push_back(std::move(key));
  }
  return crypto::Keyring::Create(std::move(primary), std::move(others));
}

std::string_view MissingKeyMessage() { return kMissingKey; }

}  // namespace bifrost::keys
