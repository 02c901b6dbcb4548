// Copyright 2026 The convstore Authors.
//
// SqliteBackend: StorageBackend on one SQLite file in WAL mode.
//
// One writer connection (used only by the background writer thread) and a
// small pool of reader connections (any thread). WAL lets readers run while
// the writer commits; each read runs in its own read transaction, so it sees
// whole batches only.
//
// Thread safety: see StorageBackend. The reader pool is guarded by pool_mu_;
// the writer connection, its statements and key_cache_ belong to the writer
// thread alone.

#ifndef CONVSTORE_SRC_SQLITE_SQLITE_BACKEND_H_
#define CONVSTORE_SRC_SQLITE_SQLITE_BACKEND_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>

#include <memory>
#include <string>
#include <vector>

#include "convstore/options.h"
#include "mutex.h"
#include "sqlite/analytics_tables.h"
#include "sqlite/audit_table.h"
#include "sqlite/cache_table.h"
#include "sqlite/keys_table.h"
#include "sqlite/sqlite_handle.h"
#include "storage_backend.h"

namespace convstore::internal {

class SqliteBackend final : public StorageBackend {
 public:
  // Opens or creates options.path, configures it and runs migrations.
  static Status Open(const Options& options,
                     std::unique_ptr<SqliteBackend>* out);
  ~SqliteBackend() override;

  Status Apply(std::span<const WriteOp> batch) override;
  Status Checkpoint(bool truncate) override;
  // Merges recent_message_index into message_index once it holds
  // Options::index_merge_rows entries.
  Status Maintain() override;
  uint64_t LastCommittedLsn() override { return last_lsn_; }
  Status Close() override;

  Status LoadConversation(std::string_view conversation_id, size_t max_messages,
                          StoredConversation* out) override;
  Status LoadMessages(std::string_view conversation_id, int64_t after_seq,
                      int64_t before_seq,
                      std::vector<MessagePtr>* out) override;
  Status ListConversations(const ListQuery& query,
                           std::vector<ConversationInfo>* out) override;
  Status ScanRecent(
      size_t max_conversations, size_t max_messages,
      const std::function<bool(StoredConversation&&)>& visit) override;
  Status Counts(StorageCounts* out) override;
  Status SelectPurgeable(
      const PurgeQuery& query,
      const std::function<bool(PurgeCandidates&&)>& visit) override;
  Status WriteDeadLetter(const DeadLetter& d) override;
  Status ReadDeadLetters(size_t limit, std::vector<DeadLetter>* out) override;
  AnalyticsStorage* analytics() override { return analytics_.get(); }
  CacheStorage* cache() override { return cache_entries_.get(); }
  AuditStorage* audit() override { return audit_.get(); }
  KeyStorage* keys() override { return api_keys_.get(); }

 private:
  struct Reader;
  class ReaderLease;

  explicit SqliteBackend(const Options& options);
  Status OpenWriter();
  Status Configure(Db* db, bool writer);
  // Finds (or, if `create`, inserts) the integer key of a conversation.
  // Returns 0 when absent and not created.
  Status ResolveKey(const std::string& id, bool create, int64_t* key);
  Status ApplyInTransaction(std::span<const WriteOp> batch);
  // Removes the rows of a retention batch (sqlite/message_retention.cc).
  Status ApplyPurge(const PurgeMessagesOp& op);
  Status AcquireReader(std::unique_ptr<Reader>* out);
  void ReleaseReader(std::unique_ptr<Reader> reader);
  Status LoadWith(Reader* r, std::string_view id, int64_t after_seq,
                  int64_t before_seq, size_t max_messages,
                  StoredConversation* out);

  const Options options_;

  // Writer thread only.
  std::unique_ptr<Db> writer_;
  Stmt find_key_, insert_conv_, insert_msg_, insert_recent_, update_conv_,
      delete_msgs_, delete_index_, delete_recent_, delete_conv_, set_lsn_;
  // Retention (prepared on first use).
  Stmt purge_msg_, purge_index_, purge_recent_, count_purged_, unpin_system_;
  // Entries in recent_message_index (approximate: deletes do not lower it;
  // another process's rows are counted at the next open).
  size_t recent_rows_ = 0;
  size_t added_recent_ = 0;  // by the batch being applied
  uint64_t merges_ = 0;
  absl::flat_hash_map<std::string, int64_t> key_cache_;
  uint64_t last_lsn_ = 0;
  // Analytics tables: writes on the writer thread, reads on its own
  // connection.
  std::unique_ptr<SqliteAnalytics> analytics_;
  // The key-value cache table: writes on the writer thread, reads on its
  // own connection.
  std::unique_ptr<SqliteCache> cache_entries_;
  // The audit log: the chain head and writes on the writer thread, reads
  // on its own connection.
  std::unique_ptr<SqliteAudit> audit_;
  // The API keys table: writes on the writer thread, read once at Open on a
  // connection of its own.
  std::unique_ptr<SqliteKeys> api_keys_;

  Mutex pool_mu_;
  CondVar pool_cv_;
  std::vector<std::unique_ptr<Reader>> idle_readers_ ABSL_GUARDED_BY(pool_mu_);
  size_t open_readers_ ABSL_GUARDED_BY(pool_mu_) = 0;
  bool pool_closed_ ABSL_GUARDED_BY(pool_mu_) = false;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_SQLITE_BACKEND_H_
