// Copyright 2026 The convstore Authors.
//
// AnalyticsOp: the write op of the analytics module (one alternative of
// WritePayload). Carries one record, or one bounded upkeep step (a purge
// batch, an orphan repair, a shrink) so retention runs through the writer
// in short transactions.

#ifndef CONVSTORE_SRC_ANALYTICS_ANALYTICS_OP_H_
#define CONVSTORE_SRC_ANALYTICS_ANALYTICS_OP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "convstore/analytics_types.h"

namespace convstore::internal {

enum class AnalyticsTable { kSessions, kTurns, kMetrics, kErrors, kEvents };

// Deletes at most `limit` rows of `table` with time < cutoff_us and
// id <= max_id (rows added after the cleanup started are never touched).
struct AnalyticsPurge {
  AnalyticsTable table = AnalyticsTable::kTurns;
  int64_t cutoff_us = 0;
  int64_t max_id = 0;
  size_t limit = 0;
  // If set: the rows the delete removed (not those another connection
  // removed first, nor those a trigger kept), filled in by the backend on
  // the writer thread (each attempt overwrites it) and read by the caller
  // once the op is durable (the writer's durable-LSN lock orders the two).
  std::shared_ptr<int64_t> removed;
};

// Deletes turns, metrics, errors and events whose session does not exist.
struct AnalyticsRepair {};

// Rebuilds every turn rollup from the turns (consistency repair).
struct AnalyticsRollupRebuild {};

// PRAGMA incremental_vacuum: frees the pages purges left empty.
struct AnalyticsShrink {};

// Deletes every row of one session: the session row, its turns and their
// rollups, metrics, errors and events (Analytics::DeleteSession).
struct AnalyticsSessionDelete {
  std::string session_id;
  // If set: the rows removed (rollups not counted), filled in by the
  // backend on the writer thread as AnalyticsPurge::removed is.
  std::shared_ptr<int64_t> removed;
};

struct AnalyticsOp {
  std::variant<SessionStart, SessionEnd, TurnMetrics, std::vector<Metric>,
               ErrorRecord, Event, AnalyticsPurge, AnalyticsRepair,
               AnalyticsRollupRebuild, AnalyticsShrink, AnalyticsSessionDelete>
      record;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_ANALYTICS_ANALYTICS_OP_H_
