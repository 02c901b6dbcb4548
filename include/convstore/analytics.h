// Copyright 2026 The convstore Authors.
//
// Analytics: voice-agent session analytics stored beside the conversations,
// through the same write-behind engine (one queue, one LSN order, one batch
// commit). Get it from Store::analytics().
//
//   convstore::Analytics& a = store->analytics();
//   convstore::SessionStart start;
//   start.session_id = "call-1";
//   start.conversation_id = "conv-1";  // its transcript
//   start.tenant = "acme";
//   convstore::Status s = a.StartSession(start);  // InvalidArgument: bad input
//   convstore::TurnMetrics t;
//   t.session_id = "call-1";
//   t.turn_number = 1;
//   t.e2e_ms = 820;
//   t.llm_model = "gpt-4o";
//   s = a.RecordTurn(t);
//   convstore::AggregateQuery q;
//   q.range.last_hours = 24;
//   q.group_by = convstore::GroupBy::kModel;
//   auto agg = a.Aggregate(q);
//
// RECORDING: every Record*/StartSession/EndSession call validates its input
// (InvalidArgument naming the field, nothing written), then queues the
// record with the durability class of analytics writes (batched: durable
// within Options::max_flush_delay, like an Append; Flush() makes it
// durable). A record for a session that was never started is accepted (the
// start may still be queued, or come from another process); until its
// session exists it is an orphan that CheckConsistency reports.
//
// QUERIES read the database. Each query first waits until every analytics
// record this Store acknowledged before the call is committed, so a query
// sees everything recorded before it (read-your-writes); records of other
// processes are seen once they committed them.
//
// After (or during) Store::Close every call returns FailedPrecondition.
//
// Thread safety: every method may be called from any thread at once.

#ifndef CONVSTORE_ANALYTICS_H_
#define CONVSTORE_ANALYTICS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/analytics_types.h"
#include "convstore/status.h"

namespace convstore {

struct SessionQuery {
  // At most this many sessions, newest start first. Default 50.
  size_t limit = 50;
  // Only this tenant's sessions; empty: all.
  std::string tenant{};
  // Only sessions started at or after this time; 0: no bound.
  int64_t since_us = 0;
};

enum class GroupBy { kNone, kTenant, kModel, kProvider, kFinalState };
// "none", "tenant", "model", "provider", "final_state"; parse returns false
// for anything else.
const char* GroupByName(GroupBy g);
bool ParseGroupBy(std::string_view name, GroupBy* out);

// The time range of a query: [from_us, to_us). When from_us is 0 the range
// is the last `last_hours` hours before to_us (to_us 0: now).
struct TimeRange {
  int64_t from_us = 0;
  int64_t to_us = 0;
  double last_hours = 24;
};

struct AggregateQuery {
  TimeRange range{};
  // kModel / kProvider group turns by their llm_model / llm_provider; a
  // session, its errors and its events belong to the group of its first
  // turn in the range that names one (key "" otherwise). kTenant and
  // kFinalState group everything by the session's value.
  GroupBy group_by = GroupBy::kNone;
  // false (default): percentiles come from log-bucket sketches kept per
  // hour as turns arrive (and built on the fly for the partial hours at
  // the range's edges): each p50/p95/p99 is within 1% (relative) of the
  // exact value; counts, sums, means, max and rates stay exact. A month
  // of data (1M turns) answers in about 0.2-0.3 s.
  // true: exact percentiles from every raw turn of the range (linear
  // between the nearest ranks). PERFORMANCE WARNING: reads and holds
  // every latency value; about 1 s per million turns.
  bool exact_percentiles = false;
};

struct SeriesQuery {
  // A latency/number field of TurnMetrics ("e2e_ms", "llm_ttft_ms",
  // "cost", ...; see docs/user-guide.md) or the name of a recorded Metric
  // ("media.jitter_ms", any name passed to RecordMetric).
  std::string metric{};
  TimeRange range{};
  // Bucket width; default 5 minutes. Buckets are aligned to multiples of
  // the width since the epoch; empty buckets are left out.
  std::chrono::microseconds bucket = std::chrono::minutes(5);
  // Only this session's values; empty: all.
  std::string session_id{};
};

// What Cleanup removes. Every record older than its kind's cut-off (by its
// own timestamp; sessions by their end, or their start while not ended) is
// deleted.
struct CleanupOptions {
  // Default cut-off age for every kind. Default 30 days.
  std::chrono::hours older_than = std::chrono::hours(24 * 30);
  // Per-kind cut-offs; 0 hours: use older_than.
  std::chrono::hours sessions{0}, turns{0}, metrics{0}, errors{0}, events{0};
  // Rows deleted per write op, 1 to 100,000 (else InvalidArgument). Each
  // op is one short transaction of the writer, so other writes interleave
  // between them. Default 2000.
  size_t batch_rows = 2000;
  // Non-empty: first append every record to be removed to this file as
  // JSON lines, one object per row: "table" (the table it is removed from)
  // then the row's columns by name, NULL ones left out
  // ({"table":"analytics_turns","id":7,"session_id":"call-1",...});
  // nothing is deleted if that fails.
  std::string archive_path{};
  // Then return freed pages to the file system (PRAGMA incremental_vacuum;
  // the file shrinks at the next checkpoint). Databases created before
  // schema v3 do not have incremental auto-vacuum; for them this is a
  // no-op. Default true.
  bool shrink = true;
};

class Analytics {
 public:
  virtual ~Analytics() = default;

  // --- Recording. Each returns OK once the record is validated and queued.

  // Starting a session again updates its start fields.
  virtual Status StartSession(const SessionStart& start) = 0;
  // status must not be kActive. Duration = ended - started.
  virtual Status EndSession(const SessionEnd& end) = 0;
  virtual Status RecordTurn(const TurnMetrics& turn) = 0;
  virtual Status RecordSample(const MediaSample& sample) = 0;
  virtual Status RecordMetric(const Metric& metric) = 0;
  virtual Status RecordError(const ErrorRecord& error) = 0;
  virtual Status RecordEvent(const Event& event) = 0;

  // --- Queries (see QUERIES above). Percentiles are linearly
  // interpolated between the two nearest ranks (rank p*(n-1)); exact,
  // except Aggregate's, which are within 1% unless
  // AggregateQuery::exact_percentiles.

  // Newest sessions first, each with its summary.
  virtual StatusOr<std::vector<SessionSummary>> RecentSessions(
      const SessionQuery& query = {}) = 0;
  // NotFound if nothing at all was recorded for the session.
  virtual StatusOr<SessionDetail> GetSession(std::string_view session_id) = 0;
  virtual StatusOr<AggregateResult> Aggregate(
      const AggregateQuery& query = {}) = 0;
  virtual StatusOr<std::vector<SeriesPoint>> Series(
      const SeriesQuery& query) = 0;

  // --- Upkeep.

  // Removes old records in small batches through the writer (optionally
  // archiving them first), then shrinks the file. Safe while the store is
  // in use; takes as long as the batches take.
  virtual StatusOr<CleanupReport> Cleanup(
      const CleanupOptions& options = {}) = 0;
  // Counts turns, metrics, errors and events whose session does not exist;
  // with `repair`, deletes them (through the writer).
  virtual StatusOr<ConsistencyReport> CheckConsistency(bool repair) = 0;
  // Erases one session: its session row, turns (and their hourly rollups),
  // metrics, errors and events, in one write op ordered after every record
  // of it acknowledged before the call, committed before the call returns.
  // For erasure requests: the rows' bytes are zeroed in the file; copies in
  // the WAL last until Close truncates it (docs/durability.md, "Erasure").
  // Records of the session made after the call are kept. Returns the rows
  // removed (0 for a session with none: not an error). Audited as
  // "analytics.session.delete" with the session id and the count.
  // InvalidArgument for a bad id; FailedPrecondition after Close or on a
  // read-only store. Cost: one indexed delete per table, on the writer.
  virtual StatusOr<int64_t> DeleteSession(std::string_view session_id) = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_ANALYTICS_H_
