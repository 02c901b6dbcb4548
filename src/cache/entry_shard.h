// Copyright 2026 The convstore Authors.
//
// EntryShard: one lock shard of the key-value cache's memory: a hash index
// of entries (each one heap block, cache_entry.h; the index is
// entry_table.h) found by (namespace, key), an intrusive recency list
// through the entries, and an expiry index for the sweep.
//
// Thread safety: every method requires `mu` held (annotated); the caller
// (CacheImpl) locks it. Counters are plain fields under the same lock. The
// cache-wide byte total is an atomic shared by all shards.
//
// Invariants:
//  1. The shard owns its entries: each is in table_ exactly once, on the
//     recency list exactly once, and in by_expiry_ exactly when
//     expires_at_us > 0; it is destroyed when it leaves them.
//  2. bytes_ is the sum of the entries' `bytes`, and every change to it is
//     made to *total_ too (so *total_ is the sum over all shards).
//  3. The list runs from newest_ (most recently inserted or given a second
//     chance) to oldest_; `referenced` is set on an entry read or rewritten
//     since the eviction walk last passed it.
//
// Eviction is second chance (CLOCK), an approximation of LRU: a read only
// sets `referenced` (no list splice, which would touch and write both
// neighbours, cache misses on a large cache); the eviction walk moves a
// referenced entry to the front, clearing the flag, and evicts the first
// unreferenced one. Expired entries are dropped before any live one is
// evicted: they can never be served again.

#ifndef CONVSTORE_SRC_CACHE_ENTRY_SHARD_H_
#define CONVSTORE_SRC_CACHE_ENTRY_SHARD_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/btree_set.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cache/cache_entry.h"
#include "cache/entry_table.h"
#include "mutex.h"

namespace convstore::internal {

class EntryShard {
 public:
  // `total` is the cache-wide byte count this shard adds its entries to
  // (not null; it outlives the shard).
  explicit EntryShard(std::atomic<size_t>* total) : total_(total) {}
  ~EntryShard();
  EntryShard(const EntryShard&) = delete;
  EntryShard& operator=(const EntryShard&) = delete;

  Mutex mu;

  // The entry or null; does not change recency.
  CacheEntry* Find(const HashedNsKey& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Gives the entry a second chance at the next eviction walk.
  void MarkUsed(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    e->referenced = true;
  }
  // Inserts k as the most recently used entry (the least recently used
  // with `as_oldest`, for reloading newest first), or replaces its entry
  // in place, marked used. Pointers to a replaced entry are invalid after.
  // `fresh` holds k's ns, key and value (CacheEntry::Create, best called
  // before locking). A replaced entry moves to *replaced, for the caller to
  // destroy after unlocking (or is destroyed here if `replaced` is null).
  CacheEntry* Put(const HashedNsKey& k, CacheEntryPtr fresh,
                  int64_t expires_at_us, CacheEntryPtr* replaced,
                  bool as_oldest = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void SetExpiry(CacheEntry* e, int64_t expires_at_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Removes and destroys the entry.
  void Remove(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Makes room until the cache-wide total is at most `budget` or nothing
  // but `keep` is left here. Entries expired at `now_us` go first, soonest
  // expiry first (counted in `expirations`; their rows are left to the
  // purges of expired rows, as for any expired entry); then entries other
  // than `keep`, oldest unreferenced first (second chance), each evicted
  // (ns, key) appended to *evicted.
  void EvictOver(size_t budget, int64_t now_us, const CacheEntry* keep,
                 std::vector<std::pair<std::string, std::string>>* evicted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Removes up to `limit` entries expired at `now_us`, soonest expiry
  // first; returns how many.
  size_t RemoveExpired(int64_t now_us, size_t limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  size_t bytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return bytes_; }
  size_t size() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return table_.size();
  }

  uint64_t hits ABSL_GUARDED_BY(mu) = 0;
  uint64_t misses ABSL_GUARDED_BY(mu) = 0;
  uint64_t expirations ABSL_GUARDED_BY(mu) = 0;
  uint64_t evictions ABSL_GUARDED_BY(mu) = 0;

 private:
  // Recency list links (no other bookkeeping).
  void LinkNewest(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void LinkOldest(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Puts `fresh` where `old` is in the list; `old` is unlinked.
  void LinkInPlaceOf(CacheEntry* old, CacheEntry* fresh)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Unlink(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Changes bytes_ and *total_ by added - removed (one atomic add, none
  // when they are equal).
  void Account(size_t added, size_t removed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool TotalOver(size_t budget) const {
    return total_->load(std::memory_order_relaxed) > budget;
  }

  EntryTable table_ ABSL_GUARDED_BY(mu);
  CacheEntry* newest_ ABSL_GUARDED_BY(mu) = nullptr;
  CacheEntry* oldest_ ABSL_GUARDED_BY(mu) = nullptr;
  absl::btree_set<std::pair<int64_t, CacheEntry*>> by_expiry_
      ABSL_GUARDED_BY(mu);
  size_t bytes_ ABSL_GUARDED_BY(mu) = 0;
  std::atomic<size_t>* const total_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_ENTRY_SHARD_H_
