// Copyright 2026 The convstore Authors.
//
// Schema version 5: the key-value cache table (docs/schema.md).

#ifndef CONVSTORE_SRC_SQLITE_CACHE_SCHEMA_H_
#define CONVSTORE_SRC_SQLITE_CACHE_SCHEMA_H_

namespace convstore::internal {

// A rowid table (values can be large; WITHOUT ROWID suits small rows only)
// with the (ns, key) identity as a unique index. The partial index on
// expiry serves the sweep's purges and its count of expired rows; entries
// without expiry (0) stay out of it.
inline constexpr const char* kCacheSchemaV5 = R"sql(
CREATE TABLE cache_entries (
  id            INTEGER PRIMARY KEY,
  ns            TEXT NOT NULL,
  key           TEXT NOT NULL,
  value         BLOB NOT NULL,
  expires_at_us INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  UNIQUE (ns, key)
);
CREATE INDEX cache_entries_by_expiry
  ON cache_entries(expires_at_us) WHERE expires_at_us > 0;
)sql";

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_CACHE_SCHEMA_H_
