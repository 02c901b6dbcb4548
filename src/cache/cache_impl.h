// Copyright 2026 The convstore Authors.
//
// CacheImpl: the Cache a Store hands out (include/convstore/cache.h).
// Memory is a fixed set of EntryShards; every write is applied to its
// shard and queued through the WritePath as a CacheOp while the shard lock
// is held, so the LSN order of one entry's writes is the order memory saw
// them (a delete can never be overtaken by an older upsert). Reads never
// touch the database.
//
// The sweep runs on a small thread of its own (a PeriodicThread), sleeping
// between ticks (Options::cache_sweep_interval). Not on the
// writer: the writer's loop is the commit path, and taking cache shard
// locks there would put cache contention into commit latency and tie the
// engine to this module; a sleeping thread costs no CPU.
//
// Thread safety: all public methods are thread-safe. Start/Stop are called
// by the Store (Stop may be called more than once).
//
// Invariants:
//  1. A write's op is queued (or shed, best-effort only) before memory
//     changes, under the shard lock; if queuing fails otherwise, memory is
//     left as it was.
//  2. The bound is cache-wide: total_bytes_ (the sum over all shards) is
//     at most cache_entries_max_bytes once a write returns, unless other
//     writes are still in progress (each evicts for its own entry). A write
//     evicts from its own shard under its lock, and only if that shard runs
//     out of other entries from the rest, one shard lock at a time after
//     unlocking its own (so no two shard locks are ever held). The entry
//     just written is never its own write's victim.
//
// So the lock shards are only lock striping: any entry up to the whole
// bound fits, whatever the shard count. Recency is per shard, as it was
// when each shard had its own share: an entry's write drops the expired
// entries of its own shard, then evicts its oldest unmarked entries
// (second chance, so when all there are marked, marked ones go too),
// before colder ones elsewhere (expired ones first there too). Keys hash
// evenly, so shards stay about equally full and equally old; only an
// entry bigger than what its shard holds reaches into the others. Writers
// that find the total over at the same time may together evict a little
// more than needed (at most about one entry each), and one may evict
// another's just-written entry in a third shard.

#ifndef CONVSTORE_SRC_CACHE_CACHE_IMPL_H_
#define CONVSTORE_SRC_CACHE_CACHE_IMPL_H_

#include <absl/base/thread_annotations.h>
#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "cache/cache_op.h"
#include "cache/cache_storage.h"
#include "cache/entry_shard.h"
#include "convstore/cache.h"
#include "convstore/options.h"
#include "mutex.h"
#include "periodic_thread.h"
#include "write_path.h"

namespace convstore::internal {

// Input limits of the cache (documented in cache.h).
inline constexpr size_t kCacheMaxNsBytes = 256;
inline constexpr size_t kCacheMaxKeyBytes = 1024;
// Rows one purge op deletes at most (one short statement in a batch).
inline constexpr size_t kCachePurgeBatch = 256;

class CacheImpl final : public Cache {
 public:
  using WaitFn = std::function<Status(uint64_t lsn)>;
  using NowFn = std::function<int64_t()>;  // wall-clock microseconds

  // `storage` may be null (nothing to reload, no purges counted).
  CacheImpl(const Options& options, WritePath* write_path,
            CacheStorage* storage, WaitFn wait_durable, NowFn now,
            std::shared_ptr<spdlog::logger> log);
  ~CacheImpl() override;

  // InvalidArgument when the cache options cannot work: a value limit past
  // what SQLite stores in one row, a cache_entries_max_bytes too small for
  // even a few small entries, or no shards or more than kMaxCacheShards
  // (validation.h).
  static Status ValidateOptions(const Options& options);

  // Loads the entries with time left from storage (before the writer
  // starts taking this store's writes is fine: deletes of rows over the
  // bound are only queued) and queues purges of the expired rows: up to 64
  // batches when the sweep thread will delete the rest, else one batch for
  // every kCachePurgeBatch of them (those the queue had no best-effort room
  // for are left to Start).
  Status Reload();
  // Without a sweep thread (Options::cache_sweep_interval 0): queues the
  // purges Reload had no room for, waiting for room as a batched write
  // (the writer runs by now). Then starts the sweep thread, if there is
  // one.
  void Start();
  // Stops and joins the sweep thread; later calls fail with
  // FailedPrecondition. Idempotent.
  void Stop();
  // One sweep tick: drops expired entries from memory and queues purges of
  // expired rows. Called by the sweep thread; tests call it directly.
  void SweepOnce();

  Status Set(std::string_view ns, std::string_view key, std::string_view value,
             std::chrono::milliseconds ttl) override;
  StatusOr<std::string> Get(std::string_view ns, std::string_view key) override;
  Status Delete(std::string_view ns, std::string_view key) override;
  Status Touch(std::string_view ns, std::string_view key,
               std::chrono::milliseconds ttl) override;
  StatusOr<int64_t> Increment(std::string_view ns, std::string_view key,
                              int64_t delta,
                              std::chrono::milliseconds ttl) override;
  CacheStats GetStats() override;

 private:
  EntryShard& ShardFor(const HashedNsKey& k);
  // Queues `op` (kSync as kBatched: the caller waits after unlocking).
  // Returns the LSN, 0 when a best-effort write was shed, or the error that
  // kept it from being queued. A shed caller write (count_shed) is counted
  // in CacheStats::persist_shed; the store's own deletes and purges are not.
  StatusOr<uint64_t> Queue(CacheOp op, size_t bytes, Durability durability,
                           bool count_shed = true);
  // Queues purges of the expired rows in storage (at most 64 batches), once
  // the previous purges are committed. Returns the rows counted.
  int64_t PurgeExpiredRows(int64_t now_us);
  // Reload without a sweep thread: queues a purge for every
  // kCachePurgeBatch rows expired at `now_us` while the queue has
  // best-effort room; what it has none for is left in reload_purges_left_.
  // Returns the rows counted.
  int64_t PurgeAllExpiredRows(int64_t now_us);
  // Queues one purge of up to kCachePurgeBatch rows expired at `cutoff_us`
  // in class `d`. False when it was shed or refused.
  bool QueuePurge(int64_t cutoff_us, Durability d);
  // Before the shard lock: reserves queue room for a write of `bytes` in
  // class `d` (waiting for room unless best-effort). True when reserved,
  // false when a best-effort write was shed, or the error. A shed is not
  // counted yet: the write may still be refused (Touch of a missing entry,
  // a non-counter Increment); CountShed counts it once it is applied.
  StatusOr<bool> ReserveRoom(size_t bytes, Durability d);
  // A shed write was applied in memory: counts it in CacheStats::
  // persist_shed and Stats::best_effort_shed.
  void CountShed();
  // Under the shard lock: submits `payload` into the room ReserveRoom took
  // (if `reserved`). The LSN, 0 when shed, or the error (room given back).
  StatusOr<uint64_t> SubmitInto(WritePayload payload, size_t bytes,
                                bool reserved, Durability d);
  // The queued form of an upsert of k written at `now_us`: copies of the
  // names, the value shared, and the op's box (an allocation). Set builds
  // it before taking the shard, so the lock is not held for that work;
  // Touch and Increment learn the value only under the lock.
  static WritePayload UpsertPayload(const HashedNsKey& k,
                                    std::shared_ptr<const std::string> value,
                                    int64_t expires_at_us, int64_t now_us);
  // Submits `payload` (UpsertPayload of k, `value` and `expires_at_us`; see
  // SubmitInto), then applies the upsert, written at `now_us`, to memory
  // (counting the shed if it was not `reserved`) and queues the deletes of
  // whatever the bound evicts. `fresh` is the
  // entry for memory if the caller made it before locking (else it is made
  // here); a replaced entry goes to *replaced.
  StatusOr<uint64_t> QueueUpsert(EntryShard& shard, const HashedNsKey& k,
                                 WritePayload payload,
                                 std::shared_ptr<const std::string> value,
                                 CacheEntryPtr fresh, int64_t expires_at_us,
                                 int64_t now_us, size_t bytes, bool reserved,
                                 CacheEntryPtr* replaced)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Makes room in `shard` (never taking `keep`, just written there) while
  // the total is over the bound: drops its entries expired at `now_us`
  // first, then evicts live ones, queuing the evicted rows' deletes under
  // its lock.
  void Evict(EntryShard& shard, const CacheEntry* keep, int64_t now_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // After a write to `written` is unlocked: if the total is still over the
  // bound (that shard held too little else), makes room in the other
  // shards in turn (as Evict), from a rotating start, until it fits.
  void EvictElsewhere(const EntryShard* written, int64_t now_us);
  // The entries' total is past Options::cache_entries_max_bytes.
  bool OverBound() const;
  // k's entry in `shard` if it is live at `now_us`, else null (an expired
  // one is dropped, counted in `expirations`).
  CacheEntry* FindLive(EntryShard& shard, const HashedNsKey& k, int64_t now_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // After unlocking: waits for `lsn` when the class is kSync.
  Status AfterWrite(uint64_t lsn);
  // Expiry for `ttl` from now; InvalidArgument for a negative ttl.
  Status ExpiryFor(std::chrono::milliseconds ttl, int64_t now_us,
                   int64_t* out) const;
  Status CheckOpen() const;

  const Options options_;
  WritePath* const write_path_;
  CacheStorage* const storage_;
  const WaitFn wait_durable_;
  const NowFn now_;
  const std::shared_ptr<spdlog::logger> log_;
  const Durability durability_;
  const size_t max_bytes_;  // Options::cache_entries_max_bytes
  // Bytes of all entries in all shards (each shard adds its own; read
  // without a lock to decide whether to evict).
  std::atomic<size_t> total_bytes_{0};
  // Where the next EvictElsewhere starts, so no shard is always first.
  std::atomic<size_t> evict_cursor_{0};
  std::vector<std::unique_ptr<EntryShard>> shards_;

  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> shed_{0};
  std::atomic<uint64_t> reloaded_{0};
  std::atomic<uint64_t> purge_batches_{0};
  // LSN of the last purge queued; no new purges until it is durable (the
  // count of expired rows would still include what it deletes).
  std::atomic<uint64_t> last_purge_lsn_{0};
  // Purges of expired rows Reload counted but could not queue (no sweep
  // thread), and their cutoff: Start queues them. Open's thread only
  // (Reload, then Start), so no lock.
  int64_t reload_purges_left_ = 0;
  int64_t reload_cutoff_us_ = 0;

  PeriodicThread sweeper_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_CACHE_IMPL_H_
