// Copyright 2026 The convstore Authors.
//
// StoreImpl: the Store the factory returns. It ties together validation,
// the sharded cache, the write queue, the writer thread and the storage
// backend. docs/architecture.md follows one message through it.
//
// Thread safety: all public methods are thread-safe. Per conversation, the
// shard lock serializes seq and LSN assignment with the cache update, so
// per-conversation LSN order equals acknowledgement order.
//
// Invariants:
//  1. Every LSN handed out is pushed to the queue (room is reserved first;
//     nothing after the LSN assignment can fail).
//  2. A call that passed the closed_ check under an InflightGuard is
//     waited for by Close (inflight_) before the writer's drain: the writes
//     (Append, Delete, Submit), so final_lsn covers every acknowledged
//     write, and the calls that read the backend or checkpoint it (History,
//     ListConversations, DeadLetters, PruneMessages, TruncateWal, the
//     counts of GetStats), so none holds a snapshot or the write lock
//     against Close's final checkpoint, or runs after the backend closed.
//  3. Cache invariants: see conversation_cache.h.

#ifndef CONVSTORE_SRC_STORE_IMPL_H_
#define CONVSTORE_SRC_STORE_IMPL_H_

#include <absl/base/thread_annotations.h>
#include <spdlog/logger.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analytics/analytics_impl.h"
#include "audit/audit_log_impl.h"
#include "cache/cache_impl.h"
#include "conversation_cache.h"
#include "convstore/store.h"
#include "inflight_counter.h"
#include "keys/keys_impl.h"
#include "memory_governor.h"
#include "memory_releaser.h"
#include "mutex.h"
#include "storage_backend.h"
#include "write_path.h"
#include "write_queue.h"
#include "writer.h"

namespace convstore::internal {

class StoreImpl final : public Store, public WritePath {
 public:
  // Opens a store on an already opened backend (tests pass fault-injecting
  // ones). Store::Open builds the SQLite backend and calls this.
  static StatusOr<std::unique_ptr<Store>> OpenWithBackend(
      const Options& options, std::unique_ptr<StorageBackend> backend);
  ~StoreImpl() override;

  StatusOr<AppendResult> Append(std::string_view conversation_id,
                                Message message,
                                const AppendOptions& options) override;
  StatusOr<std::vector<MessagePtr>> History(
      std::string_view conversation_id, const HistoryOptions& options) override;
  StatusOr<ConversationPage> ListConversations(
      const ListOptions& options) override;
  StatusOr<uint64_t> DeleteConversation(
      std::string_view conversation_id) override;
  Status Flush(std::chrono::milliseconds timeout) override;
  Status WaitDurable(uint64_t lsn, std::chrono::milliseconds timeout) override;
  StatusOr<CloseReport> Close(std::chrono::milliseconds timeout) override;
  StatusOr<std::vector<DeadLetter>> DeadLetters(size_t limit) override;
  Status TruncateWal(std::chrono::milliseconds timeout) override;
  StatusOr<RetentionReport> PruneMessages(
      const MessageRetention& retention) override;
  Stats GetStats() override;
  Status Health() override;
  Analytics& analytics() override { return *analytics_; }
  Cache& cache() override { return *kv_cache_; }
  AuditLog& audit() override { return *audit_; }

  // Where the store's own parts (API keys, deletes, retention) write audit
  // events. Lives as long as the store.
  AuditSink* audit_sink() { return audit_.get(); }
  Keys& keys() override { return *keys_; }

  // WritePath, for record kinds other than messages.
  StatusOr<uint64_t> Submit(WritePayload payload, size_t bytes,
                            Durability durability,
                            std::chrono::milliseconds sync_timeout) override;
  StatusOr<uint64_t> SubmitApplied(
      WritePayload payload, size_t bytes,
      std::chrono::milliseconds sync_timeout) override;
  uint64_t DurableLsn() const override;
  // Refuses every write of a store opened with Options::read_only
  // (FailedPrecondition), before it changes anything.
  Status Reserve(size_t bytes, Durability durability) override;
  StatusOr<uint64_t> SubmitReserved(WritePayload payload, size_t bytes,
                                    Durability durability) override;
  void CancelReserved(size_t bytes) override;
  Status ReserveBestEffortUncounted(size_t bytes) override;
  void NoteShed() override;

 private:
  StoreImpl(const Options& options, std::unique_ptr<StorageBackend> backend,
            std::shared_ptr<spdlog::logger> log);

  // Counts a write in flight for Close; fails once the store is closing.
  class InflightGuard;

  // Flush and WaitDurable: OK once `lsn` is durable. After (or during)
  // Close, the same answer: FailedPrecondition once the writer has stopped
  // short of `lsn`.
  Status AwaitDurable(uint64_t lsn, std::chrono::milliseconds timeout);
  Status Warm();
  // What became of a write SubmitAndWait took, whatever it returned.
  struct Submitted {
    bool queued = false;   // it has an LSN: it commits or is set aside
    bool refused = false;  // set aside as a dead letter (kSync, watched)
  };
  // Submit and SubmitApplied: waits for room, enqueues, and for kSync waits
  // for the commit. With `refusal_is_error` as SubmitApplied. `out` may be
  // null.
  StatusOr<uint64_t> SubmitAndWait(WritePayload payload, size_t bytes,
                                   Durability durability,
                                   std::chrono::milliseconds sync_timeout,
                                   bool refusal_is_error, Submitted* out);
  // SubmitReserved; with `watch`, the writer remembers a refusal of the
  // write for TakeRefusal (watched before the write is pushed).
  StatusOr<uint64_t> Enqueue(WritePayload payload, size_t bytes, bool watch);
  // Records an automatic audit event (actor "system"); a failure to record
  // is logged, not returned: the audited operation is already done.
  void AuditSystem(std::string action, std::string resource,
                   std::string outcome, std::string details_json, bool wait);
  // Reads the conversation from the backend into a new cache entry; *out is
  // null when it does not exist.
  Status LoadEntry(ConversationCache::Shard& shard, std::string_view id,
                   size_t max_messages, CachedConversation** out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Answers History from the entry, reading older messages through from the
  // backend when the cached suffix cannot.
  // Messages read through are added to the entry as far as its bound
  // allows, so the next call finds them in memory.
  // Counts the call as a cache hit or miss, unless `miss_counted`: the
  // caller loaded the entry for this call and counted its miss already.
  Status Answer(ConversationCache::Shard& shard, CachedConversation* c,
                const HistoryOptions& options, std::vector<MessagePtr>* out,
                bool miss_counted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // The oldest `count` stored messages of `id` with after_seq < seq <
  // before_seq, oldest first (fewer if there are not that many).
  Status ReadOldest(const std::string& id, int64_t after_seq,
                    int64_t before_seq, size_t count,
                    std::vector<MessagePtr>* out);
  uint64_t appended_lsn() const {
    return next_lsn_.load(std::memory_order_acquire) - 1;
  }

  const Options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<StorageBackend> backend_;
  WriteQueue queue_;
  ConversationCache cache_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<AnalyticsImpl> analytics_;
  // The key-value cache (cache.h); `cache_` is the conversation cache.
  std::unique_ptr<CacheImpl> kv_cache_;
  // The audit log (audit.h); also the store's AuditSink.
  std::unique_ptr<AuditLogImpl> audit_;
  std::unique_ptr<KeysImpl> keys_;
  // Returns freed heap pages to the system after cache evictions (or
  // messages dropped from pinned entries).
  std::unique_ptr<MemoryReleaser> releaser_;
  // Moves the cache's byte bound to hold RSS under memory_limit_bytes.
  std::unique_ptr<MemoryGovernor> governor_;
  std::atomic<uint64_t> next_lsn_;
  std::atomic<bool> closed_{false};
  InflightCounter inflight_;

  Mutex close_mu_;
  bool close_done_ ABSL_GUARDED_BY(close_mu_) = false;
};

// Counts a call in for Close (invariant 2); closed() says whether the call
// must leave at once. Also used by message_retention.cc.
class StoreImpl::InflightGuard {
 public:
  explicit InflightGuard(StoreImpl* s) : s_(s), stripe_(s->inflight_.Enter()) {}
  ~InflightGuard() { s_->inflight_.Exit(stripe_); }
  InflightGuard(const InflightGuard&) = delete;
  InflightGuard& operator=(const InflightGuard&) = delete;
  bool closed() const { return s_->closed_.load(std::memory_order_seq_cst); }

 private:
  StoreImpl* s_;
  size_t stripe_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_STORE_IMPL_H_
