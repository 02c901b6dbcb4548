// Copyright 2026 The convstore Authors.
//
// TurnRollup: what Aggregate needs from the turns of one (hour, session,
// llm_model, llm_provider) key, kept as turns arrive
// (analytics_turn_rollups, schema v8): counts, token and cost sums, and a
// LatencySketch per latency field. Keyed per session so grouping by
// tenant or final state joins the sessions table; keyed per hour so a
// query's whole hours come from rollups and only its edges from raw turns.
//
// The latency sketches are stored in one BLOB: byte 1 (version), then per
// non-empty field the byte index of the field in TurnFields() (fields are
// only ever appended there) and the sketch (latency_sketch.h).
//
// Thread safety: values; no shared state.

#ifndef CONVSTORE_SRC_ANALYTICS_TURN_ROLLUP_H_
#define CONVSTORE_SRC_ANALYTICS_TURN_ROLLUP_H_

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/latency_sketch.h"
#include "convstore/analytics_types.h"
#include "convstore/status.h"

namespace convstore::internal {

// The width of a rollup bucket: one hour.
inline constexpr int64_t kRollupBucketUs = int64_t{3600} * 1'000'000;

// The start of the hour bucket holding `at_us` (floor, also below 0). The
// times before the first whole hour of the int64 range (less than an hour
// above INT64_MIN; never recorded, but a damaged file may hold them) share
// the bucket INT64_MIN instead of overflowing.
int64_t RollupBucket(int64_t at_us);
// The first bucket start at or after `at_us` (ceiling); INT64_MAX when
// there is none (`at_us` in the last partial hour below INT64_MAX).
int64_t RollupBucketAtOrAfter(int64_t at_us);
// The end (exclusive) of the bucket that RollupBucket numbers `hour_us`:
// the next bucket's start, INT64_MAX for the last one.
int64_t RollupBucketEnd(int64_t hour_us);

struct TurnRollup {
  // The earliest turn's time: decides a session's model/provider group.
  int64_t first_at_us = std::numeric_limits<int64_t>::max();
  int64_t turns = 0, interrupted = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  double cost = 0;
  // One per TurnFields() entry (only latency fields are ever filled).
  std::vector<LatencySketch> latencies;

  TurnRollup();
  void Add(const TurnMetrics& t);
  // The latency BLOB of this rollup.
  std::string SerializeLatencies() const;
};

// Merges a latency BLOB into `into` (one sketch per TurnFields() entry).
// Corruption for a malformed BLOB; then `into` may hold part of it, so
// callers drop the whole result on error.
Status MergeLatencyBlob(std::string_view blob, std::span<LatencySketch> into);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_ANALYTICS_TURN_ROLLUP_H_
