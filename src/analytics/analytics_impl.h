// Copyright 2026 The convstore Authors.
//
// AnalyticsImpl: the Analytics a Store hands out. Recording validates and
// submits AnalyticsOps through the WritePath (analytics_impl.cc); queries
// wait for this store's own analytics writes to be durable, fetch rows
// through AnalyticsStorage (raw rows, and for Aggregate the hourly turn
// rollups) and compute groups, rates and percentiles in memory
// (analytics_queries.cc); retention runs purge batches through
// the writer (analytics_retention.cc).
//
// Thread safety: all methods are thread-safe; the only mutable state is the
// atomic last_lsn_.
//
// Invariants:
//  1. last_lsn_ >= the LSN of every analytics write acknowledged so far, so
//     waiting for it makes a query see them all.

#ifndef CONVSTORE_SRC_ANALYTICS_ANALYTICS_IMPL_H_
#define CONVSTORE_SRC_ANALYTICS_ANALYTICS_IMPL_H_

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "analytics/analytics_op.h"
#include "analytics/analytics_storage.h"
#include "audit_sink.h"
#include "convstore/analytics.h"
#include "convstore/options.h"
#include "write_path.h"

namespace convstore::internal {

// The durability class of analytics writes: Options::durability.analytics.
Durability AnalyticsDurability(const Options& options);

class AnalyticsImpl final : public Analytics {
 public:
  using HistoryFn =
      std::function<StatusOr<std::vector<MessagePtr>>(std::string_view)>;
  using WaitFn = std::function<Status(uint64_t lsn)>;
  using ClosedFn = std::function<bool()>;  // true once the store is closing

  // `storage` may be null (a backend without analytics tables): recording
  // still queues, every query fails with NotSupported. Once `closed`
  // says true, every query and upkeep call fails with FailedPrecondition
  // (recording does through the WritePath).
  AnalyticsImpl(const Options& options, WritePath* write_path,
                AnalyticsStorage* storage, HistoryFn history,
                WaitFn wait_durable, ClosedFn closed,
                std::shared_ptr<spdlog::logger> log);

  Status StartSession(const SessionStart& start) override;
  Status EndSession(const SessionEnd& end) override;
  Status RecordTurn(const TurnMetrics& turn) override;
  Status RecordSample(const MediaSample& sample) override;
  Status RecordMetric(const Metric& metric) override;
  Status RecordError(const ErrorRecord& error) override;
  Status RecordEvent(const Event& event) override;

  StatusOr<std::vector<SessionSummary>> RecentSessions(
      const SessionQuery& query) override;
  StatusOr<SessionDetail> GetSession(std::string_view session_id) override;
  StatusOr<AggregateResult> Aggregate(const AggregateQuery& query) override;
  StatusOr<std::vector<SeriesPoint>> Series(const SeriesQuery& query) override;

  StatusOr<CleanupReport> Cleanup(const CleanupOptions& options) override;
  StatusOr<ConsistencyReport> CheckConsistency(bool repair) override;
  StatusOr<int64_t> DeleteSession(std::string_view session_id) override;

  // Where Cleanup records its "retention.analytics" audit event. Set once
  // by the Store before the object is shared; null: not audited.
  void set_audit_sink(AuditSink* sink) { audit_sink_ = sink; }

 private:
  // Queues `op` and records its LSN.
  Status Submit(AnalyticsOp op, size_t bytes, Durability durability);
  // An upkeep step (a purge, a repair, a shrink): queued and waited for; a
  // step the database refuses is an error (WritePath::SubmitApplied).
  Status SubmitUpkeep(AnalyticsOp op);
  // Raises last_lsn_ to a submitted write's LSN; passes an error through.
  Status Track(const StatusOr<uint64_t>& lsn);
  // Checks that the store is open and that there is storage to query, then
  // waits until every analytics write acknowledged so far is durable.
  Status BeforeQuery();

  const Options options_;
  WritePath* const write_path_;
  AnalyticsStorage* const storage_;
  const HistoryFn history_;
  const WaitFn wait_durable_;
  const ClosedFn closed_;
  const std::shared_ptr<spdlog::logger> log_;  // the store's logger
  std::atomic<uint64_t> last_lsn_{0};
  AuditSink* audit_sink_ = nullptr;
};

// [from, to) of a TimeRange, resolved against the wall clock.
Status ResolveRange(const TimeRange& range, int64_t* from_us, int64_t* to_us);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_ANALYTICS_ANALYTICS_IMPL_H_
