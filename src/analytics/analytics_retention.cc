// Copyright 2026 The convstore Authors.
//
// AnalyticsImpl, upkeep side: Cleanup (archive, purge in bounded batches
// through the writer, shrink) and the orphan check.

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "analytics/analytics_impl.h"
#include "clock.h"
#include "validation.h"

namespace convstore::internal {

StatusOr<CleanupReport> AnalyticsImpl::Cleanup(const CleanupOptions& options) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  if (options_.read_only) return ReadOnlyRefusal();
  // As PruneMessages' batch_rows; a size_t past int64 used to become a
  // negative round count, and nothing was removed (with an OK).
  if (options.batch_rows == 0 || options.batch_rows > 100'000) {
    return Status::InvalidArgument("batch_rows must be in 1..100000");
  }
  struct Kind {
    const char* name;
    AnalyticsTable table;
    std::chrono::hours age;
    int64_t* removed;
    AnalyticsPurge purge;
    int64_t count = 0;
  };
  CleanupReport report;
  Kind kinds[] = {
      {"turns", AnalyticsTable::kTurns, options.turns, &report.turns, {}},
      {"metrics",
       AnalyticsTable::kMetrics,
       options.metrics,
       &report.metrics,
       {}},
      {"errors", AnalyticsTable::kErrors, options.errors, &report.errors, {}},
      {"events", AnalyticsTable::kEvents, options.events, &report.events, {}},
      {"sessions",
       AnalyticsTable::kSessions,
       options.sessions,
       &report.sessions,
       {}},
  };
  const int64_t now = WallMicros();
  report.file_bytes_before = storage_->FileBytes();
  for (Kind& k : kinds) {
    const std::chrono::hours age =
        k.age.count() != 0 ? k.age : options.older_than;
    if (age.count() < 0) {
      return Status::InvalidArgument("cleanup ages must not be negative");
    }
    k.purge.table = k.table;
    k.purge.cutoff_us = MicrosBefore(now, age);
    k.purge.limit = options.batch_rows;
    s = storage_->MaxId(k.table, &k.purge.max_id);
    if (s.ok()) s = storage_->CountPurgeable(k.purge, -1, &k.count);
    if (!s.ok()) return s;
  }

  // Archive everything first: if that fails, nothing is deleted.
  if (!options.archive_path.empty()) {
    std::ofstream out(options.archive_path, std::ios::app | std::ios::binary);
    if (!out) {
      return Status::IOError("cannot open archive " + options.archive_path);
    }
    for (Kind& k : kinds) {
      if (k.count == 0) continue;
      s = storage_->Export(k.purge, [&](std::string&& line) {
        out << line << '\n';
        ++report.archived;
        return out ? Status::OK()
                   : Status::IOError("writing archive " + options.archive_path);
      });
      if (!s.ok()) return s;
    }
    out.flush();
    if (!out) {
      return Status::IOError("writing archive " + options.archive_path);
    }
  }

  // Purge: one bounded delete per write op, each committed (kSync) before
  // the next is queued, so the writer interleaves other writes between.
  // After each batch only whether a row is left is asked (one probe of the
  // time index); a full recount per batch made the run quadratic. Each
  // committed batch reports the rows its delete removed; the count before
  // the run minus what is left would also claim the rows another Cleanup
  // (another thread or process) removed meanwhile.
  for (Kind& k : kinds) {
    bool left = k.count > 0;
    const int64_t max_rounds =
        k.count / static_cast<int64_t>(options.batch_rows) + 2;
    for (int64_t round = 0; left && round < max_rounds; ++round) {
      AnalyticsPurge batch = k.purge;
      batch.removed = std::make_shared<int64_t>(0);
      s = SubmitUpkeep({batch});
      if (!s.ok()) break;
      *k.removed += *batch.removed;
      int64_t any = 1;
      s = storage_->CountPurgeable(k.purge, 1, &any);
      if (!s.ok()) break;
      left = any > 0;
    }
    if (left && s.ok()) {
      // Every batch committed, yet rows are left: the batches removed
      // less than they chose (a trigger that ignores deletes).
      int64_t remaining = 0;
      s = storage_->CountPurgeable(k.purge, -1, &remaining);
      if (s.ok()) {
        s = Status::Internal(std::to_string(remaining) + " " + k.name +
                             " older than the cut-off were not removed");
      }
    }
    if (!s.ok()) break;
  }

  if (s.ok() && options.shrink) {
    s = SubmitUpkeep({AnalyticsShrink{}});
    if (s.ok()) s = storage_->TruncateWal();
  }
  report.file_bytes_after = storage_->FileBytes();
  // Every run that got to the purge is audited, a failed one too (it may
  // have removed some batches), as PruneMessages' runs are.
  if (audit_sink_ != nullptr) {
    AuditEvent e;
    e.actor = "system";
    e.action = "retention.analytics";
    e.outcome = s.ok() ? "success" : "failure";
    nlohmann::json details{
        {"sessions", report.sessions}, {"turns", report.turns},
        {"metrics", report.metrics},   {"errors", report.errors},
        {"events", report.events},     {"archived", report.archived}};
    if (!s.ok()) details["error"] = s.ToString();
    e.details_json =
        details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    Status as = audit_sink_->Record(std::move(e), /*wait=*/true);
    if (!as.ok()) {
      log_->error("audit record for analytics cleanup not written: {}",
                  as.ToString());
    }
  }
  if (!s.ok()) {
    log_->error("analytics cleanup stopped: {}", s.ToString());
    return s;
  }
  log_->info(
      "analytics cleanup: removed {} sessions, {} turns, {} metrics, {} "
      "errors, {} events ({} archived); file {} -> {} bytes",
      report.sessions, report.turns, report.metrics, report.errors,
      report.events, report.archived, report.file_bytes_before,
      report.file_bytes_after);
  return report;
}

StatusOr<ConsistencyReport> AnalyticsImpl::CheckConsistency(bool repair) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  // Refused whether or not anything needs repair: the caller asked to write.
  if (repair && options_.read_only) return ReadOnlyRefusal();
  ConsistencyReport report;
  s = storage_->CountOrphans(&report);
  if (!s.ok()) return s;
  const int64_t orphans = report.orphan_turns + report.orphan_metrics +
                          report.orphan_errors + report.orphan_events;
  if (repair && orphans > 0) {
    s = SubmitUpkeep({AnalyticsRepair{}});
    if (!s.ok()) return s;
    report.repaired = true;
    log_->warn(
        "analytics consistency: deleted orphans ({} turns, {} metrics, {} "
        "errors, {} events)",
        report.orphan_turns, report.orphan_metrics, report.orphan_errors,
        report.orphan_events);
  }
  if (repair && report.stale_rollups > 0) {
    s = SubmitUpkeep({AnalyticsRollupRebuild{}});
    if (!s.ok()) return s;
    report.repaired = true;
    log_->warn("analytics consistency: rebuilt turn rollups ({} stale)",
               report.stale_rollups);
  }
  return report;
}

}  // namespace convstore::internal
