// Copyright 2026 The convstore Authors.
//
// SqliteAudit: the audit_log and audit_anchor tables of schema v6
// (docs/schema.md). Writes run on the writer's connection inside the batch
// transaction and link each record onto the chain head; reads (Query,
// Verify) use a connection of their own.
//
// Thread safety: LoadHead, BeginBatch, Apply, CommitBatch and ReleaseWriter
// only on the writer thread. The AuditStorage reads may be called from any
// thread; they are serialized on their own ReaderConnection.
//
// Invariants:
//  1. committed_ is the newest record (or the anchor, or genesis) of the
//     committed database; pending_ is that plus what the open batch
//     appended. A batch that does not commit leaves committed_ as it was,
//     so its retry links from the same head again.
//  2. Ids are pending_.id + 1 and timestamps never go below pending_.ts_us,
//     so the chain is in id order, time order and commit order at once.

#ifndef CONVSTORE_SRC_SQLITE_AUDIT_TABLE_H_
#define CONVSTORE_SRC_SQLITE_AUDIT_TABLE_H_

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_op.h"
#include "audit/audit_storage.h"
#include "sqlite/reader_connection.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class SqliteAudit final : public AuditStorage {
 public:
  SqliteAudit(std::string path, std::string vfs,
              std::chrono::milliseconds busy_timeout, bool read_only = false);
  ~SqliteAudit() override;

  // Writer thread: reads the chain head from the committed database (the
  // newest record, else the anchor, else genesis).
  Status LoadHead(Db* writer);
  // Writer thread: around each batch transaction.
  void BeginBatch() { pending_ = committed_; }
  // No allocation, so it cannot fail after COMMIT (BeginBatch copies
  // pending_ back before the next batch).
  void CommitBatch() noexcept { committed_ = std::move(pending_); }
  // Writer thread: applies `op` inside the writer's open transaction.
  Status Apply(Db* writer, const AuditOp& op);
  // Writer thread: finalizes the statements prepared on the writer.
  void ReleaseWriter();
  // Closes the reader connection for good; later reads are
  // FailedPrecondition.
  void CloseReader();

  Status Select(const AuditQuery& query, std::vector<AuditRow>* out) override;
  Status ScanChain(const std::function<void(int64_t anchor_id,
                                            std::string anchor_hash)>& anchor,
                   const std::function<bool(AuditRow&&)>& visit) override;

 private:
  struct Head {
    int64_t id = 0;
    int64_t ts_us = 0;
    std::string hash;  // raw; genesis when empty chain
  };
  enum WriterStmt {
    kInsert,
    kPruneUpto,
    kPruneHash,
    kPruneCount,
    kPruneDelete,
    kSetAnchor,
    kGetAnchor,
    kNumWriterStmts
  };
  Status Prepared(Db* writer, WriterStmt which, Stmt** out);
  // Links `event` onto pending_ and inserts it; *id is its id.
  Status Append(Db* writer, const AuditEvent& event, int64_t ts_us,
                int64_t* id);
  Status Prune(Db* writer, const AuditPrune& op);
  Status Read(const std::function<Status(Db*)>& fn);

  // Writer thread only.
  Stmt writer_stmts_[kNumWriterStmts];
  Head committed_;
  Head pending_;

  ReaderConnection reader_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_AUDIT_TABLE_H_
