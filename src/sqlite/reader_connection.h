// Copyright 2026 The convstore Authors.
//
// ReaderConnection: a table module's own read-only use of the database file
// (analytics, audit log, cache entries), kept apart from the writer thread's
// connection so queries never wait for a batch. Opened on first use, closed
// for good by Close.
//
// Thread safety: every method may be called from any thread; calls are
// serialized on one connection.

#ifndef CONVSTORE_SRC_SQLITE_READER_CONNECTION_H_
#define CONVSTORE_SRC_SQLITE_READER_CONNECTION_H_

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "convstore/status.h"
#include "mutex.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class ReaderConnection {
 public:
  // `vfs` empty: SQLite's default VFS.
  ReaderConnection(std::string path, std::string vfs,
                   std::chrono::milliseconds busy_timeout,
                   bool read_only = false);

  // Runs `fn` inside one read transaction (one snapshot), opening the
  // connection first if needed. A failed open is retried by the next call.
  // FailedPrecondition after Close.
  Status Read(const std::function<Status(Db*)>& fn);
  // Runs `fn` outside a transaction if the connection is open (for a WAL
  // checkpoint); OK without calling it otherwise.
  Status IfOpen(const std::function<Status(Db*)>& fn);
  // Closes the connection for good (the store is closing): a later Read
  // fails, so a query that passed its module's closed check just before
  // Close does not open the file again.
  void Close();

  const std::string& path() const { return path_; }
  std::chrono::milliseconds busy_timeout() const { return busy_timeout_; }

 private:
  const std::string path_;
  const std::string vfs_;
  const std::chrono::milliseconds busy_timeout_;
  const bool read_only_;  // Options::read_only: opens SQLITE_OPEN_READONLY
  Mutex mu_;
  std::unique_ptr<Db> db_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_READER_CONNECTION_H_
