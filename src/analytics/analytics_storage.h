// Copyright 2026 The convstore Authors.
//
// AnalyticsStorage: the reads the analytics module needs from the
// database. The SQLite backend implements it (sqlite/analytics_tables.h)
// and hands it out through StorageBackend::analytics(); the grouping,
// percentiles and rates are computed by AnalyticsImpl over these rows, so
// another backend only has to fetch them.
//
// Thread safety: every method may be called from any thread; each call
// reads committed data only.

#ifndef CONVSTORE_SRC_ANALYTICS_ANALYTICS_STORAGE_H_
#define CONVSTORE_SRC_ANALYTICS_ANALYTICS_STORAGE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analytics/analytics_op.h"
#include "convstore/analytics.h"
#include "convstore/status.h"

namespace convstore::internal {

// A row with the grouping values of its session ("" if it has none).
struct SessionKeys {
  std::string tenant;
  std::string final_state;
};
struct TurnRow {
  TurnMetrics turn;
  SessionKeys keys;
};
struct ErrorRow {
  ErrorRecord error;
  SessionKeys keys;
};
struct SlotRow {
  std::string session_id;
  SessionKeys keys;
  std::optional<double> confidence;
  std::optional<bool> validated;
};

// One analytics_turn_rollups row (turn_rollup.h); `latencies` is its
// BLOB, valid only during the callback.
struct RollupRow {
  std::string session_id, llm_model, llm_provider;
  SessionKeys keys;
  int64_t first_at_us = 0;
  int64_t turns = 0, interrupted = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  double cost = 0;
  std::string_view latencies;
};

class AnalyticsStorage {
 public:
  virtual ~AnalyticsStorage() = default;

  // Sessions newest start first (only the stored fields; counts left 0).
  virtual Status ListSessions(const SessionQuery& q,
                              std::vector<SessionSummary>* out) = 0;
  // Number of turns and errors and the e2e_ms values of one session.
  virtual Status SessionCounts(std::string_view id, int64_t* turns,
                               int64_t* errors, std::vector<double>* e2e) = 0;
  // *found false when the session row is missing and nothing else was
  // recorded for it.
  virtual Status LoadSession(std::string_view id, SessionDetail* out,
                             bool* found) = 0;

  // Records with from_us <= time < to_us.
  virtual Status ScanSessions(int64_t from_us, int64_t to_us,
                              std::vector<SessionSummary>* out) = 0;
  // Streams the turns oldest first; `row` is reused between calls. Only
  // what Aggregate reads is filled: session_id, interrupted, the latency
  // fields, tokens, cost, llm_model and llm_provider. The session keys are
  // filled only when `with_keys`.
  virtual Status ScanTurns(int64_t from_us, int64_t to_us, bool with_keys,
                           const std::function<void(const TurnRow&)>& row) = 0;
  // Streams the turn rollups of the hours starting in [from_us, to_us)
  // (hour-aligned), in no particular order; stops at the first error
  // `row` returns. Keys as in ScanTurns.
  virtual Status ScanRollups(
      int64_t from_us, int64_t to_us, bool with_keys,
      const std::function<Status(const RollupRow&)>& row) = 0;
  virtual Status ScanErrors(int64_t from_us, int64_t to_us,
                            std::vector<ErrorRow>* out) = 0;
  virtual Status ScanSlots(int64_t from_us, int64_t to_us,
                           std::vector<SlotRow>* out) = 0;
  // (time, value) of a turn field or named metric, oldest first.
  virtual Status ScanValues(std::string_view metric, bool turn_field,
                            std::string_view session_id, int64_t from_us,
                            int64_t to_us,
                            std::vector<std::pair<int64_t, double>>* out) = 0;

  // --- Retention.
  virtual Status MaxId(AnalyticsTable table, int64_t* out) = 0;
  // Rows `p` would remove (all batches), counting no further than
  // `at_most` (negative: no bound); *out is left alone on failure.
  virtual Status CountPurgeable(const AnalyticsPurge& p, int64_t at_most,
                                int64_t* out) = 0;
  // Calls `line` with one JSON object per purgeable row.
  virtual Status Export(const AnalyticsPurge& p,
                        const std::function<Status(std::string&&)>& line) = 0;
  // Fills the orphan counts and stale_rollups.
  virtual Status CountOrphans(ConsistencyReport* out) = 0;
  // Checkpoints and truncates the WAL (best effort: busy is OK).
  virtual Status TruncateWal() = 0;
  // Bytes of the database file plus its WAL.
  virtual int64_t FileBytes() = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_ANALYTICS_ANALYTICS_STORAGE_H_
