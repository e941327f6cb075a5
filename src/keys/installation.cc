#include "keys/installation.h"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/mac.h"
#include "keys/key_source.h"
#include "store/open/open_store.h"

namespace bifrost::keys {

Result<LocalInstallation> OpenLocalInstallation(const LocalOptions& options, const Clock& clock) {
  // The keys leave the environment first, whatever else goes wrong.
  auto environment = TakeKeysFromEnvironment();
  const store::StoreLocation location{.data_dir = options.data_dir,
                                      .database_url = options.database_url};
  // A local command never creates a database.
  BIFROST_RETURN_IF_ERROR(
      store::CheckLocation(location, store::Expect::kInitialized, options.command));
  if (!environment) return Fail(std::move(environment.error()));
  if (!environment->current) {
    return Fail(ErrorCode::kFailedPrecondition, std::string(MissingKeyMessage()));
  }
  auto keyring = BuildKeyring(*environment->current, environment->previous);
  environment->current.reset();  // wiped
  environment->previous.clear();
  if (!keyring) return Fail(std::move(keyring.error()));

  LocalInstallation installation;
  BIFROST_ASSIGN_OR_RETURN(installation.store,
                           store::OpenStore(location, {.expect = store::Expect::kInitialized,
                                                       .clock = &clock,
                                                       .command = options.command}));
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
