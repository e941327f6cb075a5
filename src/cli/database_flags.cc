#include "cli/database_flags.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "crypto/secure_buffer.h"
#include "store/open/open_store.h"

namespace bifrost::cli {

void AddDatabaseFlags(CLI::App* command, std::string& data_dir, std::string& database_url) {
  command->add_option("--data", data_dir, "Data directory of the embedded SQLite database")
      ->envname(store::kDataDirEnv)
      ->option_text("DIR (env BIFROST_DATA)");
  command
      ->add_option("--database", database_url,
                   "PostgreSQL database shared by several servers, instead of --data "
                   "(prefer the variable or a password file: a URL on the command line is seen "
                   "by `ps`)")
      ->envname(store::kDatabaseUrlEnv)
      ->option_text("URL (postgresql://...; env BIFROST_DATABASE_URL)");
}

CliStatus CheckDatabaseFlags(std::string_view command, const std::string& data_dir,
                             const std::string& database_url, bool allow_neither) {
  if (allow_neither && data_dir.empty() && database_url.empty()) return {};
  auto checked =
      store::ValidateLocation({.data_dir = data_dir, .database_url = database_url}, command);
  if (!checked) return UsageError(checked.error().message());
  return {};
}

void ForgetDatabaseUrlVariable() {
  const std::size_t name_length = std::strlen(store::kDatabaseUrlEnv);
  std::vector<char*> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, store::kDatabaseUrlEnv, name_length) == 0 &&
        (*entry)[name_length] == '=') {
      entries.push_back(*entry);
    }
  }
  ::unsetenv(store::kDatabaseUrlEnv);
  // The entries live in the process's initial environment block or were made by setenv,
  // whose strings glibc never frees: still ours to overwrite.
  for (char* entry : entries) crypto::SecureWipe(entry, std::strlen(entry));
}

void HideUrlPasswordInPlace(char* text) {
  if (text == nullptr) return;
  const std::string_view url(text);
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return;
  const std::size_t authority = scheme + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority);
  if (authority_end == std::string_view::npos) authority_end = url.size();
  // user:password@host: the last '@' of the authority ends the user information.
  const auto at = url.substr(authority, authority_end - authority).rfind('@');
  if (at != std::string_view::npos) {
    const std::size_t user_end = authority + at;
    const auto colon = url.substr(authority, at).find(':');
    if (colon != std::string_view::npos) {
      for (std::size_t i = authority + colon + 1; i < user_end; ++i) text[i] = '*';
    }
  }
  // ...?password=secret&...
  const auto query = url.find('?', authority_end);
  if (query == std::string_view::npos) return;
  std::size_t pos = query + 1;
  while (pos < url.size()) {
    std::size_t end = url.find('&', pos);
    if (end == std::string_view::npos) end = url.size();
    const std::string_view pair = url.substr(pos, end - pos);
    if (pair.starts_with("password=")) {
      for (std::size_t i = pos + 9; i < end; ++i) text[i] = '*';
    }
    pos = end + 1;
  }
}

}  // namespace bifrost::cli
