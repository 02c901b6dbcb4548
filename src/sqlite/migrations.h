// Copyright 2026 The convstore Authors.
//
// Schema migrations: the ordered list of schema versions and the code that
// brings a database file up to the newest one. docs/schema.md describes each
// version; a new version appends to kMigrations and never edits an old one.
//
// Thread safety: call with exclusive use of the connection.

#ifndef CONVSTORE_SRC_SQLITE_MIGRATIONS_H_
#define CONVSTORE_SRC_SQLITE_MIGRATIONS_H_

#include <cstdint>
#include <span>

#include "convstore/status.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

// "CVST": marks a file as a convstore database (PRAGMA application_id).
inline constexpr int32_t kApplicationId = 0x43565354;

struct Migration {
  int version;
  const char* name;
  const char* sql;
  // Runs after `sql` in the same transaction (backfills); may be null.
  Status (*backfill)(Db* db) = nullptr;
};

// Every migration, in version order.
std::span<const Migration> AllMigrations();
// The version a fully migrated database has.
int LatestSchemaVersion();

// Brings `db` up to `target` (normally LatestSchemaVersion()), each
// migration in its own transaction, recorded in schema_migrations.
// Refuses with NotSupported a database whose version is newer than this
// build knows, and with Corruption a SQLite file that is not a convstore
// database (foreign tables, wrong application_id).
Status Migrate(Db* db, int target);
// OK for an empty file or one marked as convstore's (application_id);
// Corruption for a SQLite file of another application. Reads only.
Status CheckOwnership(Db* db);
// The applied schema version (0 for an empty file).
Status SchemaVersion(Db* db, int64_t* out);
// For a read-only open, which may not migrate: OK when `db` is a convstore
// database at exactly LatestSchemaVersion(). NotSupported for a newer one
// (as Migrate), FailedPrecondition for an older or empty one, Corruption for
// another application's file. Reads only.
Status CheckSchemaCurrent(Db* db);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_MIGRATIONS_H_
