// Copyright 2026 The convstore Authors.
//
// SqliteBackend's reader connections: one connection with its statements
// prepared once (Reader), and the scoped lease that takes one from the pool
// and gives it back (ReaderLease). Private to the backend's .cc files.
//
// Thread safety: a Reader is used by one thread at a time, the one holding
// its lease; the pool itself is guarded by SqliteBackend::pool_mu_.

#ifndef CONVSTORE_SRC_SQLITE_BACKEND_READER_H_
#define CONVSTORE_SRC_SQLITE_BACKEND_READER_H_

#include <chrono>
#include <memory>
#include <utility>

#include "sqlite/sqlite_backend.h"

namespace convstore::internal {

// The conversation-row statements (find_conv, by_key, list_all, list_user)
// return conv_key, first_system_seq, kConversationColumns (2 to 9), then:
inline constexpr int kActivityColumn = 10;
inline constexpr int kSummarizedThroughColumn = 11;

struct SqliteBackend::Reader {
  std::unique_ptr<Db> db;
  Stmt find_conv;        // conversation row by id
  Stmt by_key;           // conversation row by conv_key
  MessageChunks chunks;  // the merged index, read only
  Stmt by_id;            // one message by (id, conv_key, seq)
  UnmergedReads unmerged;
  Stmt list_all;   // a page of all conversations, by activity_at_us
  Stmt list_user;  // a page of one user's conversations, by activity_at_us
  Stmt user_keys;  // every conv_key of one user (conversations_by_user)
};

// Returns a reader to the pool however the scope is left.
class SqliteBackend::ReaderLease {
 public:
  explicit ReaderLease(SqliteBackend* b) : b_(b) {}
  ~ReaderLease() {
    if (r_ != nullptr) b_->ReleaseReader(std::move(r_));
  }
  // Waits for a reader as long as a read may (a day); AcquireUntil up to
  // `deadline` (Unavailable then).
  Status Acquire() {
    return AcquireUntil(DeadlineAfter(std::chrono::hours(24)));
  }
  Status AcquireUntil(CondVar::Clock::time_point deadline) {
    return b_->AcquireReader(&r_, deadline);
  }
  Reader* operator->() { return r_.get(); }
  Reader* get() { return r_.get(); }

 private:
  SqliteBackend* b_;
  std::unique_ptr<Reader> r_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_BACKEND_READER_H_
