// Copyright 2026 The convstore Authors.
//
// StorageBackend: the seam between the write-behind engine and the database.
// SQLite implements it (sqlite/sqlite_backend.h); tests wrap it to inject
// faults; a server backend (PostgreSQL) can implement it later without the
// cache or the writer changing.
//
// Thread safety: Apply, Checkpoint and Close are called only from the single
// writer thread (Close after the writer stopped). Every read method may be
// called from any thread, concurrently with Apply; a read sees only
// committed batches, each either whole or not at all.

#ifndef CONVSTORE_SRC_STORAGE_BACKEND_H_
#define CONVSTORE_SRC_STORAGE_BACKEND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/dead_letter.h"
#include "convstore/status.h"
#include "convstore/types.h"
#include "write_op.h"

namespace spdlog {
class logger;
}  // namespace spdlog

namespace convstore::internal {

class AnalyticsStorage;
class AuditStorage;
class CacheStorage;
class KeyStorage;

// A conversation as stored: its summary and (the newest part of) its
// messages, oldest first.
struct StoredConversation {
  bool exists = false;
  ConversationInfo info;
  std::vector<MessagePtr> messages;
  // The conversation's first system message (null if none), even when it is
  // older than `messages`.
  MessagePtr first_system;
};

// A page request for ListConversations, already decoded from the cursor.
struct ListQuery {
  std::string user_id;  // empty: all users
  // Exclusive upper bound of (last_at_us, conversation_id) in descending
  // order; has_cursor false means from the top.
  bool has_cursor = false;
  int64_t cursor_last_at_us = 0;
  std::string cursor_id;
  size_t limit = 100;
};

// Which stored messages a retention run removes (convstore/retention.h).
struct PurgeQuery {
  // Messages created before this (wall micros); 0: no age rule.
  int64_t created_before_us = 0;
  // Messages beyond the newest `keep_newest` of their conversation; 0: no
  // count rule.
  int64_t keep_newest = 0;
  bool keep_first_system = true;
};

// One conversation's share of a retention run.
struct PurgeCandidates {
  std::string conversation_id;
  // Oldest first; the run removes them in batches.
  std::vector<StoredMessageRef> rows;
};

struct StorageCounts {
  uint64_t conversations = 0;
  uint64_t messages = 0;
};

// What the backend's upkeep (Maintain) has done since it opened: the
// figures behind Stats::index_merge_*. Zero for a backend without such
// upkeep.
struct UpkeepCounters {
  uint64_t index_merges = 0;
  int64_t index_merge_total_us = 0;
  int64_t index_merge_max_us = 0;
  uint64_t unmerged_messages = 0;
};

// What StorageBackend::Close did besides closing (CloseReport).
struct BackendCloseReport {
  // The write-ahead log was copied into the database and truncated to zero
  // bytes. False for a backend without a WAL file, a read-only one, and
  // when other connections kept the WAL.
  bool wal_truncated = false;
};

class StorageBackend {
 public:
  virtual ~StorageBackend() = default;

  // Called once, before the writer thread starts: the store's logger, for
  // what the backend mends on its own (nothing a caller gets a Status for).
  // By default the backend does not log.
  virtual void SetLogger(std::shared_ptr<spdlog::logger> log) { (void)log; }

  // --- Writer thread only.

  // Commits `batch` (in LSN order, contiguous) as one atomic transaction:
  // after a crash either every op of it is in the database or none is.
  // On failure nothing of the batch is applied. InvalidArgument means the
  // batch holds a record the database will never take (constraint, too
  // big); the writer then retries the ops one by one to isolate it. Any
  // other error (busy, I/O, disk full, corruption) says nothing about the
  // records: the writer keeps them and retries.
  virtual Status Apply(std::span<const WriteOp> batch) = 0;
  // Sets aside one write the database refused for good (after Apply of it
  // alone returned InvalidArgument), in its own transaction. For a message,
  // `message_seq` is its seq (0 otherwise): acknowledged, it must not be
  // handed out again. On failure nothing is written and the writer falls
  // back to the dead-letter file.
  virtual Status WriteDeadLetter(const DeadLetter& d, int64_t message_seq) {
    (void)d;
    (void)message_seq;
    return Status::NotSupported("this backend keeps no dead letters");
  }
  // Upkeep between batches (SQLite: merging unmerged messages into its index).
  // Called by the writer after each commit; cheap when there is nothing to do.
  // A failure loses nothing (it is logged and tried again later).
  virtual Status Maintain() { return Status::OK(); }
  // Moves the WAL into the database; `truncate` also shrinks the WAL file.
  virtual Status Checkpoint(bool truncate) = 0;
  // The highest LSN ever committed (0 for a new database).
  virtual uint64_t LastCommittedLsn() = 0;
  // Final checkpoint and close. No call may follow. An error means the
  // final checkpoint failed (every committed write stays in the database
  // or the WAL); a checkpoint that another connection kept from truncating
  // the WAL is not an error, only wal_truncated false.
  virtual StatusOr<BackendCloseReport> Close() = 0;

  // --- Any thread.

  // Loads the conversation's summary and its newest `max_messages`
  // messages (all of them when max_messages is 0).
  virtual Status LoadConversation(std::string_view conversation_id,
                                  size_t max_messages,
                                  StoredConversation* out) = 0;
  // Messages with after_seq < seq < before_seq, oldest first (before_seq 0:
  // no upper bound); only the newest max_newest of them when it is not 0.
  // Seqs may have gaps (retention, writes set aside), so a count bounds a
  // read where seq arithmetic would not.
  virtual Status LoadMessages(std::string_view conversation_id,
                              int64_t after_seq, int64_t before_seq,
                              size_t max_newest,
                              std::vector<MessagePtr>* out) = 0;
  // One page of summaries, most recently active first.
  virtual Status ListConversations(const ListQuery& query,
                                   std::vector<ConversationInfo>* out) = 0;
  // Calls `visit` with the most recently active conversations (newest
  // first), each with its newest max_messages messages, until `visit`
  // returns false or `max_conversations` were visited.
  virtual Status ScanRecent(
      size_t max_conversations, size_t max_messages,
      const std::function<bool(StoredConversation&&)>& visit) = 0;
  virtual Status Counts(StorageCounts* out) = 0;
  // Any thread, any time (also after Close); never touches the database.
  virtual UpkeepCounters upkeep_counters() const { return {}; }
  // Calls `visit` with the committed messages `query` selects, grouped by
  // conversation, until it returns false. Reads only; the removal goes
  // through Apply (PurgeMessagesOp). The choice is made in read
  // transactions of bounded size, none open while `visit` runs (it commits
  // the removals; a snapshot held across them would keep the WAL from being
  // checkpointed), so a conversation may come in several visits. A
  // conversation whose stored index or summary is damaged is skipped and
  // the others are visited; the result is then the first such Corruption.
  virtual Status SelectPurgeable(
      const PurgeQuery& query,
      const std::function<bool(PurgeCandidates&&)>& visit) {
    (void)query;
    (void)visit;
    return Status::NotSupported("this backend has no message retention");
  }
  // Copies the write-ahead log into the database and truncates the log
  // file to zero bytes (Store::TruncateWal), waiting up to `timeout` for
  // the connections that keep it; Unavailable when they still do.
  virtual Status TruncateWal(std::chrono::milliseconds timeout) {
    (void)timeout;
    return Status::NotSupported("this backend keeps no write-ahead log file");
  }
  // The newest `limit` dead letters, newest first.
  virtual Status ReadDeadLetters(size_t limit, std::vector<DeadLetter>* out) {
    (void)limit;
    (void)out;
    return Status::NotSupported("this backend keeps no dead letters");
  }
  // The analytics tables' reads (analytics/analytics_storage.h); null when
  // the backend keeps no analytics. Owned by the backend.
  virtual AnalyticsStorage* analytics() { return nullptr; }
  // The key-value cache table's reads (cache/cache_storage.h); null when
  // the backend keeps no cache entries (nothing is reloaded). Owned by the
  // backend.
  virtual CacheStorage* cache() { return nullptr; }
  // The audit tables' reads (audit/audit_storage.h); null when the backend
  // keeps no audit log (Query and Verify then fail with NotSupported).
  // Owned by the backend.
  virtual AuditStorage* audit() { return nullptr; }
  // The API keys table's read (keys/key_storage.h); null when the backend
  // keeps no keys (nothing is loaded at Open). Owned by the backend.
  virtual KeyStorage* keys() { return nullptr; }
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_STORAGE_BACKEND_H_
