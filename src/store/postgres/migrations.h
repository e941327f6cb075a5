// The PostgreSQL schema, as an ordered list of migrations mirroring SQLite's
// (store/sqlite/migrations.cc) version for version, and the code that applies them.
//
// A migration is never edited once released: a schema change is a new entry with the next
// version, added to both backends under the same number, so that SchemaVersion() is the
// same for the same binary whichever backend it uses. The tables, columns and constraints
// are SQLite's, with PostgreSQL's types: BIGINT for INTEGER, and TEXT COLLATE "C" for text
// (PostgreSQL then compares and sorts bytes, as SQLite does, whatever the database's default
// collation). docs/storage-format.md describes the tables.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "store/postgres/connection.h"

namespace bifrost::store::postgres_internal {

struct Migration {
  int version;            // 1, 2, 3, ... without gaps
  std::string_view name;  // short lower_snake description, recorded in the database
  std::string_view sql;   // constant SQL, possibly several statements
};

// Every migration this binary knows, in version order.
std::span<const Migration> Migrations();

// The newest schema version this binary knows.
int LatestSchemaVersion();

// Brings the database behind `connection` (outside any transaction) up to
// LatestSchemaVersion() in one transaction that first takes an advisory lock (released
// when the transaction ends), so that of several nodes opening one database at once
// exactly one migrates and the others wait for it (up to `wait_ms`) and then find nothing
// to do. Every missing migration is recorded in schema_migrations with `clock`'s time. Returns the
// schema version afterwards. kFailedPrecondition if the database is newer than this binary or the
// user may not create tables; the transaction is rolled back on any failure.
Result<int> ApplyMigrations(Connection& connection, const Clock& clock, int wait_ms);

}  // namespace bifrost::store::postgres_internal
