// The SQLite schema, as an ordered list of migrations, and the code that applies them.
//
// A migration is never edited once released: a schema change is a new entry with the next
// version. The database records every applied migration in `schema_migrations`; opening a
// database applies the missing ones in order, each recorded in the same transaction, and
// refuses a database whose recorded version is newer than this binary knows.
// docs/storage-format.md describes the tables.
#pragma once

#include <span>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/sqlite/connection.h"

namespace bifrost::store::sqlite_internal {

struct Migration {
  int version;            // 1, 2, 3, ... without gaps
  std::string_view name;  // short lower_snake description, recorded in the database
  const char* sql;        // constant SQL, possibly several statements
};

// Every migration this binary knows, in version order.
std::span<const Migration> Migrations();

// The newest schema version this binary knows.
int LatestSchemaVersion();

// Brings the database behind `writer` up to LatestSchemaVersion() inside one
// BEGIN IMMEDIATE transaction, so that two processes opening a fresh database at once
// cannot both migrate: the second waits for the first and then finds nothing to do.
// Returns the schema version afterwards. kFailedPrecondition if the database is newer than
// this binary; the transaction is rolled back on any failure.
Result<int> ApplyMigrations(Connection& writer, const Clock& clock);

}  // namespace bifrost::store::sqlite_internal
