// Import from the Python Bifrost: its `organizations` and `configs` tables, dumped as CSV
// with psql (docs/migrating-from-bifrost.md), into this installation, re-encrypting every
// secret under this installation's keys.
//
// All or nothing: the whole import is one write transaction. Every row is parsed,
// validated and (for secrets) decrypted with the source installation's key and sealed with
// the target scope's data key before anything is committed; the first problem aborts the
// import naming the file, line and config, and nothing is written. --dry-run does all of it
// and rolls back.
//
// Source secrets: the Python Bifrost stores base64url(Fernet token) under a master key
// derived from its BIFROST_SECRET_KEY with HKDF-SHA256 (salt "bifrost_secrets_v1", info
// "bifrost-secrets-encryption"); older installations used PBKDF2-HMAC-SHA256 with 100,000
// iterations and the same salt. Both are tried, HKDF first.
//
// Thread-safety: one import at a time per database (it holds the writer slot throughout).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/secure_buffer.h"
#include "keys/keys.h"
#include "store/store.h"

namespace bifrost::importer {

struct ImportOptions {
  std::string organizations_csv;  // path: columns id, name (header row; extra columns ignored)
  // path: columns id, key, value, config_type, description, organization_id, updated_by,
  // updated_at, and optionally integration_id (header row; any order; extra columns ignored)
  std::string configs_csv;
  crypto::SecureBuffer source_secret;  // the old installation's BIFROST_SECRET_KEY
  bool dry_run = false;
  std::string actor;  // recorded as the audit actor
  // Optional: told how far the import is, every 1,000 rows and at the end of each phase:
  // "checking configs" (reading, validating and decrypting; its total is an estimate from
  // the file's line count until the file is read) and "writing configs".
  keys::ProgressFn progress;
};

struct ScopeCounts {
  std::string label;                            // "global" or the organization's name
  std::string org_id;                           // "" for the global scope
  bool created = false;                         // the organization was created by this import
  std::map<std::string, std::int64_t> by_type;  // "string" | "int" | "bool" | "json" | "secret"
};

struct ImportReport {
  std::vector<ScopeCounts> scopes;  // global first, then organizations by name
  std::int64_t organizations_created = 0;
  std::int64_t organizations_existing = 0;  // same id and name already here: reused
  std::int64_t configs = 0;
  std::int64_t secrets_hkdf = 0;         // secrets that decrypted with the HKDF-derived key
  std::int64_t secrets_pbkdf2 = 0;       // ... with the PBKDF2-derived key
  std::int64_t skipped_integration = 0;  // rows with a non-empty integration_id
  bool dry_run = false;
};

Result<ImportReport> ImportBifrost(store::Store& store, const barrier::Barrier& barrier,
                                   audit::AuditLog& audit, const Clock& clock,
                                   const ImportOptions& options);

}  // namespace bifrost::importer
