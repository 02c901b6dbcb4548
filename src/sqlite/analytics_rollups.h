// Copyright 2026 The convstore Authors.
//
// Schema version 8 (issue 6): analytics_turn_rollups, one row per (hour,
// session, llm_model, llm_provider) with the TurnRollup of its turns
// (analytics/turn_rollup.h), kept by the writer in the transaction that
// inserts each turn, so Aggregate reads about a tenth of the rows of the
// raw turns and never sorts raw latencies.
//
// Thread safety: every function runs on the connection it is given, with
// exclusive use of it (the writer's, or the reader's inside a read).

#ifndef CONVSTORE_SRC_SQLITE_ANALYTICS_ROLLUPS_H_
#define CONVSTORE_SRC_SQLITE_ANALYTICS_ROLLUPS_H_

#include <cstdint>
#include <functional>

#include "analytics/analytics_storage.h"
#include "convstore/analytics_types.h"
#include "convstore/status.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

inline constexpr const char* kAnalyticsRollupsSchemaV8 = R"sql(
CREATE TABLE analytics_turn_rollups (
  id                INTEGER PRIMARY KEY,
  hour_us           INTEGER NOT NULL,
  session_id        TEXT NOT NULL,
  llm_model         TEXT NOT NULL,
  llm_provider      TEXT NOT NULL,
  first_at_us       INTEGER NOT NULL,
  turns             INTEGER NOT NULL,
  interrupted       INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cached_tokens     INTEGER NOT NULL,
  cost              REAL NOT NULL,
  latencies         BLOB NOT NULL,
  UNIQUE (hour_us, session_id, llm_model, llm_provider)
);
CREATE INDEX analytics_turn_rollups_by_session
  ON analytics_turn_rollups(session_id);
)sql";

// The SQL of the two statements AddTurnToRollup takes prepared (the
// writer caches them).
const char* RollupGetSql();
const char* RollupPutSql();
// Writer: adds `t` (already inserted into analytics_turns) to its rollup.
// A rollup row whose BLOB does not parse is rebuilt from the turns.
Status AddTurnToRollup(Db* db, Stmt* get, Stmt* put, const TurnMetrics& t);

// Deletes the rollups of the buckets in [from_us, to_us) (bucket bounds:
// RollupBucket / RollupBucketEnd values) and builds them again from the
// turns in that range. Retention and AddTurnToRollup use it for the hours
// they touch.
Status RebuildTurnRollups(Db* db, int64_t from_us, int64_t to_us);
// Every rollup again from every turn, whatever its time: the v8
// migration's backfill and the consistency repair.
Status BackfillTurnRollups(Db* db);

// Rollup keys whose turn count disagrees with analytics_turns (including
// turns with no rollup and rollups with no turns).
Status CountStaleRollups(Db* db, int64_t* out);

// Streams the rollups of the hours in [from_us, to_us), with the session's
// tenant and final state when `with_keys`.
Status ScanTurnRollups(Db* db, int64_t from_us, int64_t to_us, bool with_keys,
                       const std::function<Status(const RollupRow&)>& row);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_ANALYTICS_ROLLUPS_H_
