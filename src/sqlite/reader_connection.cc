// Copyright 2026 The convstore Authors.

#include "sqlite/reader_connection.h"

#include <utility>

namespace convstore::internal {

ReaderConnection::ReaderConnection(std::string path, std::string vfs,
                                   std::chrono::milliseconds busy_timeout,
                                   bool read_only)
    : path_(std::move(path)),
      vfs_(std::move(vfs)),
      busy_timeout_(busy_timeout),
      read_only_(read_only) {}

Status ReaderConnection::Read(const std::function<Status(Db*)>& fn) {
  MutexLock lock(&mu_);
  if (closed_) return Status::FailedPrecondition("store is closed");
  if (db_ == nullptr) {
    Status s = read_only_ ? Db::OpenReadOnly(path_, &db_, vfs_)
                          : Db::Open(path_, /*create=*/false, &db_, vfs_);
    if (s.ok()) {
      s = db_->Exec("PRAGMA busy_timeout = " +
                    std::to_string(busy_timeout_.count()));
    }
    if (!s.ok()) {
      db_.reset();
      return s;
    }
  }
  Status s = db_->Exec("BEGIN");
  if (!s.ok()) return s;
  s = fn(db_.get());
  if (s.ok()) s = db_->Exec("COMMIT");
  // A failed COMMIT leaves the transaction open too, and every later
  // BEGIN on this connection would fail.
  if (!s.ok()) (void)db_->Exec("ROLLBACK");
  return s;
}

Status ReaderConnection::IfOpen(const std::function<Status(Db*)>& fn) {
  MutexLock lock(&mu_);
  if (db_ == nullptr) return Status::OK();
  return fn(db_.get());
}

void ReaderConnection::Close() {
  MutexLock lock(&mu_);
  closed_ = true;
  db_.reset();
}

}  // namespace convstore::internal
