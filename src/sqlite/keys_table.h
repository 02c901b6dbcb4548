// Copyright 2026 The convstore Authors.
//
// SqliteKeys: the api_keys table of schema v7 (docs/schema.md). Writes run
// on the writer's connection inside the batch transaction; the reads (every
// key, and the definitions version) use a connection of their own, kept
// open so PRAGMA data_version can tell whether anyone committed since the
// last look.
//
// Every op that changes a key's definition (a put, a rotation, refused or
// not) raises store_meta 'keys_version' in its transaction: a store polls
// that one row, not the table, to learn that another store on the file
// changed a key. Usage flushes leave it alone.
//
// Thread safety: Apply and ReleaseWriter only on the writer thread.
// ScanAll, DefinitionsVersion and CloseReader may be called from any
// thread; the reader connection serializes them.

#ifndef CONVSTORE_SRC_SQLITE_KEYS_TABLE_H_
#define CONVSTORE_SRC_SQLITE_KEYS_TABLE_H_

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "keys/key_op.h"
#include "keys/key_storage.h"
#include "mutex.h"
#include "sqlite/reader_connection.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class SqliteKeys final : public KeyStorage {
 public:
  SqliteKeys(std::string path, std::string vfs,
             std::chrono::milliseconds busy_timeout, bool read_only = false);
  ~SqliteKeys() override;

  // Writer thread: applies `op` inside the writer's open transaction.
  // *applied is false for a rotation the stored row refused (op.outcome
  // says why; nothing of it is written, so its audit record must not be
  // either), true otherwise.
  Status Apply(Db* writer, const KeyOp& op, bool* applied);
  // Writer thread: finalizes the statements prepared on the writer.
  void ReleaseWriter();
  // Closes the reader connection for good (the store is closing).
  void CloseReader();

  Status ScanAll(const std::function<bool(KeyRow&&)>& visit) override;
  StatusOr<int64_t> DefinitionsVersion() override;

 private:
  enum WriterStmt { kPut, kUsage, kCheckOld, kBumpVersion, kNumWriterStmts };
  Status Prepared(Db* writer, WriterStmt which, Stmt** out);
  Status Put(Db* writer, const KeyRow& r);
  // A rotation: checks the old key's stored row, then writes both rows.
  Status Rotate(Db* writer, const KeyOp& op, const KeyRotate& rot,
                bool* applied);

  // Writer thread only.
  Stmt writer_stmts_[kNumWriterStmts];

  ReaderConnection reader_;
  Mutex mu_;  // the cached version below
  int64_t seen_data_version_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_KEYS_TABLE_H_
