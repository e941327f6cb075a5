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
  // user:password@host: the password may hold '/', '?', '#' or '@' unencoded, so it runs
  // from the first ':' to the last '@' of the whole text (as PostgresStore::RedactUrl): more
  // than the password may be hidden, never less.
  const auto at_any = url.rfind('@');
  std::size_t authority_end = authority;
  if (at_any != std::string_view::npos && at_any >= authority) {
    authority_end = at_any;
    const auto colon = url.substr(authority, at_any - authority).find(':');
    if (colon != std::string_view::npos) {
      for (std::size_t i = authority + colon + 1; i < at_any; ++i) text[i] = '*';
    }
  }
  // ...?password=secret&sslpassword=secret&...
  const auto query = url.find('?', authority_end);
  if (query == std::string_view::npos) return;
  std::size_t pos = query + 1;
  while (pos < url.size()) {
    std::size_t end = url.find('&', pos);
    if (end == std::string_view::npos) end = url.size();
    const std::string_view pair = url.substr(pos, end - pos);
    for (const std::string_view key :
         {std::string_view("password="), std::string_view("sslpassword=")}) {
      if (pair.starts_with(key)) {
        for (std::size_t i = pos + key.size(); i < end; ++i) text[i] = '*';
      }
    }
    pos = end + 1;
  }
}

}  // namespace bifrost::cli
