// Copyright 2026 The convstore Authors.
//
// EntryShard: one lock shard of the key-value cache's memory: a hash map
// from (namespace, key) to an entry in an LRU list, plus an expiry index
// for the sweep.
//
// Thread safety: every method requires `mu` held (annotated); the caller
// (CacheImpl) locks it. Counters are plain fields under the same lock.
//
// Invariants:
//  1. Every entry of lru_ has exactly one map_ slot, keyed by views of that
//     entry's own ns/key strings (list nodes never move, so the views stay
//     valid), and is in by_expiry_ exactly when expires_at_us > 0.
//  2. bytes_ is the sum of the entries' `bytes`.
//  3. lru_ runs from most to least recently inserted or given a second
//     chance; `referenced` is set on an entry read or rewritten since the
//     eviction walk last passed it.
//
// Eviction is second chance (CLOCK), an approximation of LRU: a read only
// sets `referenced` (no list splice, which would touch and write both
// neighbours' nodes, cache misses on a large cache); the eviction walk
// moves a referenced entry to the front, clearing the flag, and evicts
// the first unreferenced one.

#ifndef CONVSTORE_SRC_CACHE_ENTRY_SHARD_H_
#define CONVSTORE_SRC_CACHE_ENTRY_SHARD_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mutex.h"

namespace convstore::internal {

struct CacheEntry {
  std::string ns;
  std::string key;
  std::shared_ptr<const std::string> value;
  int64_t expires_at_us = 0;  // wall clock; 0: never
  size_t bytes = 0;
  // Read or rewritten since the eviction walk last passed it.
  bool referenced = false;
  // This entry's node in its shard's LRU list (nodes never move).
  std::list<CacheEntry>::iterator self;
};

// Bookkeeping bytes counted per entry on top of ns, key and value: the list
// node, the map slot, the shared value's control block and the expiry
// index slot, roughly.
inline constexpr size_t kCacheEntryOverhead = sizeof(CacheEntry) + 128;

inline size_t CacheEntryBytes(std::string_view ns, std::string_view key,
                              size_t value_bytes) {
  return ns.size() + key.size() + value_bytes + kCacheEntryOverhead;
}

inline bool IsExpired(int64_t expires_at_us, int64_t now_us) {
  return expires_at_us > 0 && expires_at_us <= now_us;
}

struct NsKeyView {
  std::string_view ns;
  std::string_view key;
  bool operator==(const NsKeyView& o) const {
    return ns == o.ns && key == o.key;
  }
  template <typename H>
  friend H AbslHashValue(H h, const NsKeyView& k) {
    return H::combine(std::move(h), k.ns, k.key);
  }
};

class EntryShard {
 public:
  using EntryRef = std::list<CacheEntry>::iterator;

  Mutex mu;

  // The entry or null; does not change recency.
  CacheEntry* Find(std::string_view ns, std::string_view key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Gives the entry a second chance at the next eviction walk.
  void MarkUsed(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Inserts or replaces (ns, key) as the most recently used entry (the
  // least recently used with `as_oldest`, for reloading newest first).
  CacheEntry* Put(std::string_view ns, std::string_view key,
                  std::shared_ptr<const std::string> value,
                  int64_t expires_at_us, bool as_oldest = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void SetExpiry(CacheEntry* e, int64_t expires_at_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Remove(CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Evicts entries other than `keep`, oldest unreferenced first (second
  // chance), until bytes() <= budget; appends each evicted (ns, key) to
  // *evicted.
  void EvictOver(size_t budget, const CacheEntry* keep,
                 std::vector<std::pair<std::string, std::string>>* evicted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Removes up to `limit` entries expired at `now_us`, soonest expiry
  // first; returns how many.
  size_t RemoveExpired(int64_t now_us, size_t limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  size_t bytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return bytes_; }
  size_t size() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return map_.size(); }

  uint64_t hits ABSL_GUARDED_BY(mu) = 0;
  uint64_t misses ABSL_GUARDED_BY(mu) = 0;
  uint64_t expirations ABSL_GUARDED_BY(mu) = 0;
  uint64_t evictions ABSL_GUARDED_BY(mu) = 0;

 private:
  EntryRef RefOf(const CacheEntry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Erase(EntryRef it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  std::list<CacheEntry> lru_ ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<NsKeyView, EntryRef> map_ ABSL_GUARDED_BY(mu);
  absl::btree_set<std::pair<int64_t, const CacheEntry*>> by_expiry_
      ABSL_GUARDED_BY(mu);
  size_t bytes_ ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_ENTRY_SHARD_H_
