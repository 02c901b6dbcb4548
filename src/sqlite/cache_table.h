// Copyright 2026 The convstore Authors.
//
// SqliteCache: the cache_entries table of schema v5 (docs/schema.md).
// Writes run on the writer's connection inside the batch transaction;
// reads (reload at Open, the sweep's count) use a connection of their own.
//
// Thread safety: Apply and ReleaseWriter only on the writer thread. The
// CacheStorage reads may be called from any thread; they are serialized on
// the reader connection by reader_ (one ReaderConnection).

#ifndef CONVSTORE_SRC_SQLITE_CACHE_TABLE_H_
#define CONVSTORE_SRC_SQLITE_CACHE_TABLE_H_

#include <chrono>
#include <functional>
#include <string>

#include "cache/cache_op.h"
#include "cache/cache_storage.h"
#include "sqlite/reader_connection.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class SqliteCache final : public CacheStorage {
 public:
  SqliteCache(std::string path, std::string vfs,
              std::chrono::milliseconds busy_timeout, bool read_only = false);
  ~SqliteCache() override;

  // Writer thread: applies `op` inside the writer's open transaction.
  Status Apply(Db* writer, const CacheOp& op);
  // Writer thread: finalizes the statements prepared on the writer.
  void ReleaseWriter();
  // Closes the reader connection for good; later reads are
  // FailedPrecondition.
  void CloseReader();

  Status ScanLive(int64_t now_us,
                  const std::function<bool(CacheRow&&)>& visit) override;
  Status CountExpired(int64_t now_us, int64_t* out) override;
  Status CountRows(int64_t* out) override;

 private:
  enum WriterStmt { kUpsert, kDelete, kPurge, kNumWriterStmts };
  Status Prepared(Db* writer, WriterStmt which, Stmt** out);
  // Runs `fn` on the reader connection inside one read transaction.
  Status Read(const std::function<Status(Db*)>& fn);

  // Writer thread only.
  Stmt writer_stmts_[kNumWriterStmts];

  ReaderConnection reader_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_CACHE_TABLE_H_
