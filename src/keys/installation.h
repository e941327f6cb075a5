// A local command's view of an installation (`bifrost keys ...`, `bifrost import ...`,
// `bifrost audit verify`): the keys from the environment, the database (in the data
// directory, or the PostgreSQL database of --database), the barrier checked against it, and
// an audit log to record what the command does. Servers may be serving the same database at
// the same time.
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
  // The database: exactly one of the two (store/open/open_store.h); neither, or both, is an
  // error naming --data / BIFROST_DATA and --database / BIFROST_DATABASE_URL.
  std::string data_dir;
  std::string database_url;
  std::string command;     // for messages: "keys rotate"
  bool read_only = false;  // check only: the barrier writes nothing, no audit log
};

// Takes the keys out of the environment (keys/key_source.h) first, whatever else fails;
// then opens the existing database (never creates one: "no database in DIR"; a PostgreSQL
// database must have been through `bifrost init`) and the barrier (which refuses keys that
// do not fit the database, with its message).
Result<LocalInstallation> OpenLocalInstallation(const LocalOptions& options, const Clock& clock);

// Who runs this process, for the audit log: "operator alice (uid 1000)".
std::string OperatorName();

}  // namespace bifrost::keys
