// A local command's view of an installation (`bifrost keys ...`, `bifrost import ...`,
// `bifrost audit verify`): the keys from the environment, the database in the data
// directory, the barrier checked against it, and an audit log to record what the command
// does. The server may be running on the same data directory at the same time.
#pragma once

#include <memory>
#include <string>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::keys {

struct LocalInstallation {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<barrier::Barrier> barrier;
  std::unique_ptr<audit::AuditLog> audit;  // database sink only; null when read_only
};

struct LocalOptions {
  std::string data_dir;    // "" is an error naming --data / BIFROST_DATA
  std::string command;     // for messages: "keys rotate"
  bool read_only = false;  // check only: the barrier writes nothing, no audit log
};

// Takes the keys out of the environment (keys/key_source.h) first, whatever else fails;
// then opens the existing database (never creates one: "no database in DIR") and the
// barrier (which refuses keys that do not fit the database, with its message).
Result<LocalInstallation> OpenLocalInstallation(const LocalOptions& options, const Clock& clock);

// Who runs this process, for the audit log: "operator alice (uid 1000)".
std::string OperatorName();

}  // namespace bifrost::keys
