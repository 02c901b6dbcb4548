// Copyright 2026 The convstore Authors.
//
// SqliteAnalytics: the analytics tables of schema v3 and the turn
// rollups of v8 (docs/schema.md, sqlite/analytics_rollups.h).
// Writes run on the writer's connection inside the batch transaction
// (analytics_writes.cc); reads use a connection of their own
// (analytics_reads.cc), each query in one read transaction.
//
// Thread safety: Apply and ReleaseWriter only on the writer thread. The
// AnalyticsStorage reads may be called from any thread; they are
// serialized on their own ReaderConnection.

#ifndef CONVSTORE_SRC_SQLITE_ANALYTICS_TABLES_H_
#define CONVSTORE_SRC_SQLITE_ANALYTICS_TABLES_H_

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "analytics/analytics_op.h"
#include "analytics/analytics_storage.h"
#include "sqlite/reader_connection.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class SqliteAnalytics final : public AnalyticsStorage {
 public:
  // Reads open `path` through `vfs` (Options::sqlite_vfs; empty: SQLite's
  // default), as every other connection of the store does.
  SqliteAnalytics(std::string path, std::string vfs,
                  std::chrono::milliseconds busy_timeout,
                  bool read_only = false);
  ~SqliteAnalytics() override;

  // Writer thread: applies `op` inside the writer's open transaction.
  Status Apply(Db* writer, const AnalyticsOp& op);
  // Writer thread: finalizes the statements prepared on the writer.
  void ReleaseWriter();
  // Closes the reader connection for good; later reads are
  // FailedPrecondition.
  void CloseReader();

  Status ListSessions(const SessionQuery& q,
                      std::vector<SessionSummary>* out) override;
  Status SessionCounts(std::string_view id, int64_t* turns, int64_t* errors,
                       std::vector<double>* e2e) override;
  Status LoadSession(std::string_view id, SessionDetail* out,
                     bool* found) override;
  Status ScanSessions(int64_t from_us, int64_t to_us,
                      std::vector<SessionSummary>* out) override;
  Status ScanTurns(int64_t from_us, int64_t to_us, bool with_keys,
                   const std::function<void(const TurnRow&)>& row) override;
  Status ScanRollups(
      int64_t from_us, int64_t to_us, bool with_keys,
      const std::function<Status(const RollupRow&)>& row) override;
  Status ScanErrors(int64_t from_us, int64_t to_us,
                    std::vector<ErrorRow>* out) override;
  Status ScanSlots(int64_t from_us, int64_t to_us,
                   std::vector<SlotRow>* out) override;
  Status ScanValues(std::string_view metric, bool turn_field,
                    std::string_view session_id, int64_t from_us, int64_t to_us,
                    std::vector<std::pair<int64_t, double>>* out) override;
  Status MaxId(AnalyticsTable table, int64_t* out) override;
  Status CountPurgeable(const AnalyticsPurge& p, int64_t at_most,
                        int64_t* out) override;
  Status Export(const AnalyticsPurge& p,
                const std::function<Status(std::string&&)>& line) override;
  Status CountOrphans(ConsistencyReport* out) override;
  Status TruncateWal() override;
  int64_t FileBytes() override;

 private:
  enum WriterStmt {
    kStart,
    kEnd,
    kTurn,
    kMetric,
    kError,
    kEvent,
    kRollupGet,
    kRollupPut,
    kNumWriterStmts
  };
  // The writer statement `which`, prepared on first use.
  Status Prepared(Db* writer, WriterStmt which, Stmt** out);
  Status ApplyTurn(Db* writer, const TurnMetrics& t);
  Status ApplyMetrics(Db* writer, const std::vector<Metric>& metrics);
  Status ApplyEvent(Db* writer, const Event& e);
  // Runs `fn` on the reader connection inside one read transaction.
  Status Read(const std::function<Status(Db*)>& fn);

  // Writer thread only.
  Stmt writer_stmts_[kNumWriterStmts];

  ReaderConnection reader_;
};

// Helpers shared by the two implementation files.
const char* AnalyticsTableName(AnalyticsTable t);
// The SQL expression of a row's time (for WHERE clauses).
const char* AnalyticsTimeColumn(AnalyticsTable t);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_ANALYTICS_TABLES_H_
