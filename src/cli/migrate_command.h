// `bifrost migrate --from-data DIR --to URL`: copies an embedded (SQLite) installation into
// an empty PostgreSQL database, so that several `bifrost serve` nodes can share it
// (docs/deployment.md). A local command: it opens both databases itself.
//
// The copy goes through the store interface, row by row, as stored: secrets stay sealed
// (nothing is decrypted to be copied; each one is opened once with the source's keys to
// prove it can be), tokens and sessions stay hashes, the audit chain keeps its records and
// its signed checkpoint. It reads ONE read transaction of the source (a consistent
// snapshot) and writes ONE write transaction of the target (all or nothing). Server nodes
// are not copied: a node row belongs to one run of a server.
//
// Thread-safety: none; one command at a time.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "cli/cli.h"
#include "cli/cli_error.h"
#include "common/status.h"
#include "store/store.h"

namespace bifrost::cli {

// Registers `bifrost migrate` on `app`; when chosen, its callback sets `action`.
void AddMigrateCommand(CLI::App& app, std::function<CliStatus()>& action, CliIo& io);

namespace migrate {

// How far the copy of one table is: `done` of `total` rows (total as the source counts it).
struct TableProgress {
  std::string table;
  std::int64_t done = 0;
  std::int64_t total = 0;
  bool finished = false;  // the table is copied
};
using ProgressFn = std::function<void(const TableProgress&)>;

struct CopyReport {
  // Rows per table in the snapshot that was copied (Txn::CountRows order, nodes included).
  std::vector<store::TableCount> source;
  std::int64_t secrets = 0;  // secret rows copied, each opened with the source's keys
};

// Copies every row of `source` but its nodes into `target` in one write transaction, and
// commits it. `source_barrier` (opened on `source`) opens each secret before it is copied,
// so a value that cannot be read is found before anything is committed. Errors:
// kFailedPrecondition when `target` is not empty (the message names every table that has
// rows) or a secret does not open (naming its scope and key, never its value); the
// stores' own errors otherwise. On any error nothing is written to `target`.
Result<CopyReport> CopyInstallation(store::Store& source, const barrier::Barrier& source_barrier,
                                    store::Store& target, const ProgressFn& progress = {});

struct CheckReport {
  std::vector<store::TableCount> target;  // rows per table, read after the commit
  // One line per table whose count differs: "configs: 12 in the source, 11 in the target".
  // Nodes are not compared (they are not copied).
  std::vector<std::string> mismatches;
  std::int64_t secrets_opened = 0;
  audit::VerifyReport audit;
};

// Checks a committed copy from fresh transactions of `target`: the row counts against
// `copied`, every secret opened with `target_barrier` (opened on `target`), the audit
// chain walked with the audit keys that barrier knows. A secret that does not open is an
// error (kFailedPrecondition naming it); count mismatches and a broken chain are in the
// report.
Result<CheckReport> CheckCopy(const CopyReport& copied, store::Store& target,
                              const barrier::Barrier& target_barrier);

}  // namespace migrate
}  // namespace bifrost::cli
