// Copyright 2026 The convstore Authors.
//
// Schema version 6: the audit log (docs/schema.md).

#ifndef CONVSTORE_SRC_SQLITE_AUDIT_SCHEMA_H_
#define CONVSTORE_SRC_SQLITE_AUDIT_SCHEMA_H_

namespace convstore::internal {

// audit_log ids are assigned by the writer (the chain position), not by
// SQLite, so a deleted row's id is never reused. The indexes end in id so
// that a filtered, newest-first page is one index range read. outcome has
// no index of its own: it has a handful of values and is only used next to
// another filter or the time range. audit_anchor has at most one row
// (slot = 1): the last record deleted by Prune.
inline constexpr const char* kAuditSchemaV6 = R"sql(
CREATE TABLE audit_log (
  id             INTEGER PRIMARY KEY,
  ts_us          INTEGER NOT NULL,
  actor          TEXT NOT NULL,
  action         TEXT NOT NULL,
  resource       TEXT NOT NULL,
  outcome        TEXT NOT NULL,
  details_json   TEXT NOT NULL,
  source_address TEXT NOT NULL,
  prev_hash      BLOB NOT NULL,
  hash           BLOB NOT NULL
);
CREATE INDEX audit_log_by_ts ON audit_log(ts_us, id);
CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
CREATE INDEX audit_log_by_action ON audit_log(action, id);
CREATE INDEX audit_log_by_resource ON audit_log(resource, id);
CREATE TABLE audit_anchor (
  slot         INTEGER PRIMARY KEY CHECK (slot = 1),
  anchor_id    INTEGER NOT NULL,
  anchor_hash  BLOB NOT NULL,
  pruned_at_us INTEGER NOT NULL
);
)sql";

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_AUDIT_SCHEMA_H_
