// Copyright 2026 The convstore Authors.
//
// SqliteKeys: the api_keys table of schema v7 (docs/schema.md). Writes run
// on the writer's connection inside the batch transaction; the read (every
// key, at Open) uses a connection of its own, closed again afterwards.
//
// Thread safety: Apply and ReleaseWriter only on the writer thread. ScanAll
// may be called from any thread; calls are serialized by mu_.

#ifndef CONVSTORE_SRC_SQLITE_KEYS_TABLE_H_
#define CONVSTORE_SRC_SQLITE_KEYS_TABLE_H_

#include <chrono>
#include <functional>
#include <string>

#include "keys/key_op.h"
#include "keys/key_storage.h"
#include "mutex.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class SqliteKeys final : public KeyStorage {
 public:
  SqliteKeys(std::string path, std::string vfs,
             std::chrono::milliseconds busy_timeout, bool read_only = false);
  ~SqliteKeys() override;

  // Writer thread: applies `op` inside the writer's open transaction.
  Status Apply(Db* writer, const KeyOp& op);
  // Writer thread: finalizes the statements prepared on the writer.
  void ReleaseWriter();

  Status ScanAll(const std::function<bool(KeyRow&&)>& visit) override;

 private:
  enum WriterStmt { kPut, kUsage, kNumWriterStmts };
  Status Prepared(Db* writer, WriterStmt which, Stmt** out);

  const std::string path_;
  const std::string vfs_;
  const std::chrono::milliseconds busy_timeout_;
  const bool read_only_;  // Options::read_only: opens SQLITE_OPEN_READONLY

  // Writer thread only.
  Stmt writer_stmts_[kNumWriterStmts];

  Mutex mu_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_KEYS_TABLE_H_
