// Copyright 2026 The convstore Authors.
//
// Schema version 7: the API keys table (docs/schema.md). Version 6 is the
// audit log's.

#ifndef CONVSTORE_SRC_SQLITE_KEYS_SCHEMA_H_
#define CONVSTORE_SRC_SQLITE_KEYS_SCHEMA_H_

namespace convstore::internal {

// Few, small rows, always read whole at Open: a WITHOUT ROWID table keyed
// by the public id. `hash` is the SHA-256 of the secret; the secret itself
// is never stored. Empty strings (not NULL) for "none", 0 for "never".
inline constexpr const char* kKeysSchemaV7 = R"sql(
CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY,
  prefix        TEXT NOT NULL,
  name          TEXT NOT NULL,
  owner         TEXT NOT NULL,
  scopes_json   TEXT NOT NULL,
  hash          BLOB NOT NULL,
  created_us    INTEGER NOT NULL,
  expires_us    INTEGER NOT NULL,
  revoked_us    INTEGER NOT NULL,
  rate_per_s    REAL NOT NULL,
  burst         INTEGER NOT NULL,
  rotated_from  TEXT NOT NULL,
  replaced_by   TEXT NOT NULL,
  request_count INTEGER NOT NULL,
  last_used_us  INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_KEYS_SCHEMA_H_
