#include "keys/installation.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/mac.h"
#include "keys/key_source.h"
#include "store/sqlite/sqlite_store.h"

namespace bifrost::keys {
namespace {

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

Result<LocalInstallation> OpenLocalInstallation(const LocalOptions& options, const Clock& clock) {
  // The keys leave the environment first, whatever else goes wrong.
  auto environment = TakeKeysFromEnvironment();
  if (options.data_dir.empty()) {
    return Fail(ErrorCode::kInvalidArgument, options.command +
                                                 " needs a data directory: give --data DIR (or set "
                                                 "BIFROST_DATA)");
  }
  const std::string database =
      options.data_dir + "/" + std::string(store::SqliteStore::kDatabaseFileName);
  // SqliteStore::Open would create a database: a local command never does.
  if (!PathExists(database)) {
    return Fail(ErrorCode::kFailedPrecondition, "no database in " + options.data_dir +
                                                    "; run `bifrost init --data " +
                                                    options.data_dir + "` first");
  }
  if (!environment) return Fail(std::move(environment.error()));
  if (!environment->current) {
    return Fail(ErrorCode::kFailedPrecondition, std::string(MissingKeyMessage()));
  }
  auto keyring = BuildKeyring(*environment->current, environment->previous);
  environment->current.reset();  // wiped
  environment->previous.clear();
  if (!keyring) return Fail(std::move(keyring.error()));

  LocalInstallation installation;
  BIFROST_ASSIGN_OR_RETURN(
      installation.store,
      store::SqliteStore::Open({.data_dir = options.data_dir, .clock = &clock}));
  BIFROST_ASSIGN_OR_RETURN(auto barrier,
                           barrier::Barrier::Open(std::move(*keyring), *installation.store, clock,
                                                  {.read_only = options.read_only}));
  installation.barrier = std::make_unique<barrier::Barrier>(std::move(barrier));
  if (!options.read_only) {
    // The records of this command chain under the current master key, as the server's do.
    BIFROST_ASSIGN_OR_RETURN(auto audit_key,
                             crypto::DeriveAuditKey(installation.barrier->keyring().primary()));
    BIFROST_ASSIGN_OR_RETURN(
        installation.audit,
        audit::AuditLog::Open(*installation.store, std::move(audit_key), clock, {}));
  }
  return installation;
}

std::string OperatorName() {
  const uid_t uid = ::getuid();
  std::string uid_text = std::to_string(uid);
  const long suggested = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(suggested > 0 ? static_cast<std::size_t>(suggested) : 4096);
  struct passwd entry {};
  struct passwd* found = nullptr;
  while (true) {
    const int err = ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
    if (err == ERANGE && buffer.size() < (std::size_t{1} << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    break;
  }
  std::string name = "operator ";
  if (found != nullptr && found->pw_name != nullptr && found->pw_name[0] != '\0') {
    name += found->pw_name;
    name += " (uid ";
    name += uid_text;
    name += ")";
  } else {
    name += "uid ";
    name += uid_text;
  }
  return name;
}

}  // namespace bifrost::keys
