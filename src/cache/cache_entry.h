// Copyright 2026 The convstore Authors.
//
// CacheEntry: one key-value cache entry in one heap block - a fixed header
// followed by the namespace, the key and, for values of up to
// kCacheInlineValueMax bytes, the value itself. A Get of a small entry
// then reads the hash bucket and this block (usually two adjacent cache
// lines) and nothing else; the old layout (list node, map slot, shared
// value's control block and its separate string buffer) missed on each.
// Larger values stay in a shared immutable string, copied outside the
// shard lock and queued for the writer without copying.
//
// Thread safety: an entry belongs to one EntryShard and is read and
// written under that shard's lock; the type itself has no locking.

#ifndef CONVSTORE_SRC_CACHE_CACHE_ENTRY_H_
#define CONVSTORE_SRC_CACHE_CACHE_ENTRY_H_

#include <absl/hash/hash.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace convstore::internal {

// Values up to this many bytes live inside the entry's block and are
// copied under the shard lock (about as long as a cache miss); longer ones
// are shared, so a large copy never holds the shard.
inline constexpr size_t kCacheInlineValueMax = 512;

// (namespace, key) of a lookup, with its hash computed once: the shard
// choice and the shard's hash set both use it.
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

struct HashedNsKey {
  explicit HashedNsKey(NsKeyView k) : view(k), hash(absl::HashOf(k)) {}
  NsKeyView view;
  uint64_t hash;
};

class CacheEntry;
struct CacheEntryDeleter {
  void operator()(CacheEntry* e) const;
};
// Owns an entry not (or no longer) in a shard: created before taking the
// shard lock, or replaced under it and destroyed after unlocking.
using CacheEntryPtr = std::unique_ptr<CacheEntry, CacheEntryDeleter>;

class CacheEntry {
 public:
  // A new entry holding copies of ns and key and the value (inline when it
  // is at most kCacheInlineValueMax bytes, else `value` itself is kept).
  // Its `bytes` is set to CacheEntryBytes().
  static CacheEntryPtr Create(const HashedNsKey& k,
                              std::shared_ptr<const std::string> value);
  static void Destroy(CacheEntry* e);

  CacheEntry(const CacheEntry&) = delete;
  CacheEntry& operator=(const CacheEntry&) = delete;

  std::string_view ns() const { return {chars(), ns_size_}; }
  std::string_view key() const { return {chars() + ns_size_, key_size_}; }
  std::string_view value() const {
    return shared_
               ? std::string_view(*shared_)
               : std::string_view(chars() + ns_size_ + key_size_, value_size_);
  }
  // The value as a shared string: the entry's own when it is out of line,
  // else a copy (at most kCacheInlineValueMax bytes).
  std::shared_ptr<const std::string> SharedValue() const;
  // The out-of-line value, or null when the value is inline.
  const std::shared_ptr<const std::string>& shared_value() const {
    return shared_;
  }
  uint64_t hash() const { return hash_; }

  int64_t expires_at_us = 0;  // wall clock; 0: never
  size_t bytes = 0;           // what the entry counts against the budget
  // Read or rewritten since the eviction walk last passed it.
  bool referenced = false;
  // Neighbours in the shard's recency list (EntryShard owns the links).
  CacheEntry* newer = nullptr;
  CacheEntry* older = nullptr;

 private:
  CacheEntry() = default;
  ~CacheEntry() = default;
  char* chars() { return reinterpret_cast<char*>(this + 1); }
  const char* chars() const { return reinterpret_cast<const char*>(this + 1); }

  uint64_t hash_ = 0;
  std::shared_ptr<const std::string> shared_;  // null: value inline
  uint32_t ns_size_ = 0;
  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;  // inline value bytes
};

// Bookkeeping bytes counted per entry on top of ns, key and value: the
// entry's header and allocator rounding, its hash-index slot and expiry
// index slot, roughly.
inline constexpr size_t kCacheEntryOverhead = sizeof(CacheEntry) + 64;

inline size_t CacheEntryBytes(std::string_view ns, std::string_view key,
                              size_t value_bytes) {
  return ns.size() + key.size() + value_bytes + kCacheEntryOverhead;
}

inline bool IsExpired(int64_t expires_at_us, int64_t now_us) {
  return expires_at_us > 0 && expires_at_us <= now_us;
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_CACHE_ENTRY_H_
