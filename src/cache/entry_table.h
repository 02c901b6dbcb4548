// Copyright 2026 The convstore Authors.
//
// EntryTable: the hash index of one cache shard, (namespace, key) to its
// CacheEntry, laid out so a lookup typically misses the CPU cache twice:
// one 64-byte bucket line, then the entry itself (whose later lines are
// prefetched together with its first).
//
// Why not absl::flat_hash_set: its control bytes and its slots are separate
// arrays, so a lookup in a table larger than the CPU cache is three
// dependent misses (control group, slot with the entry pointer, entry).
// perf of BM_Cache_Get at 100,000 entries put a third of EntryShard::Find
// on the slot and two thirds on the entry.
//
// Layout: a power-of-two array of buckets, each one cache line holding six
// 16-bit tags, six entry pointers and a count. A key's home bucket comes
// from the hash's low bits, its tag from bits 16-31 (the shard uses bits
// 40 and up; past 65,536 buckets in one shard, home and tag bits overlap
// and a tag tells fewer keys of a bucket apart). Lookup compares the tags in
// the home bucket, reads an entry only on a tag match (1 in 65,535 for another
// key) and goes on to the next bucket only if an entry whose home is this
// bucket or an earlier one was placed past it (`passed` > 0). The full hashes
// sit in a side array read only when the table grows, so growing under the
// shard lock never reads an entry.
//
// Thread safety: none; the owning EntryShard's lock guards every call.

#ifndef CONVSTORE_SRC_CACHE_ENTRY_TABLE_H_
#define CONVSTORE_SRC_CACHE_ENTRY_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cache/cache_entry.h"

namespace convstore::internal {

class EntryTable {
 public:
  EntryTable() = default;
  EntryTable(const EntryTable&) = delete;
  EntryTable& operator=(const EntryTable&) = delete;

  // The entry with k's namespace and key, or null.
  CacheEntry* Find(const HashedNsKey& k) const;
  // Adds `e`; no entry with its namespace and key may be present.
  void Insert(CacheEntry* e);
  // Puts `fresh` where `old` (present, same namespace and key) is.
  void Replace(const CacheEntry* old, CacheEntry* fresh);
  // Removes `e` (present).
  void Erase(const CacheEntry* e);

  size_t size() const { return size_; }
  // How many keys were placed past `bucket` on their way from their home
  // (for tests).
  uint16_t passed(size_t bucket) const { return buckets_[bucket].passed; }
  // Buckets allocated (for tests and memory figures).
  size_t bucket_count() const { return mask_ + (buckets_ ? 1 : 0); }

  static constexpr int kSlots = 6;

 private:
  struct alignas(64) Bucket {
    uint16_t tags[kSlots];  // 0: slot empty
    // Entries stored past this bucket whose home is this bucket or an
    // earlier one on their probe path; sticky at its maximum.
    uint16_t passed;
    uint16_t unused;
    CacheEntry* entries[kSlots];
  };
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

  static uint16_t TagOf(uint64_t hash) {
    const auto t = static_cast<uint16_t>(hash >> 16);
    return t == 0 ? 1 : t;
  }
  // Places (hash, e) in the first free slot from its home bucket; the
  // table has room.
  void Place(uint64_t hash, CacheEntry* e);
  // Where `e` is: the bucket and slot, found by pointer from its home.
  void Locate(const CacheEntry* e, size_t* bucket, int* slot) const;
  void Grow();

  std::unique_ptr<Bucket[]> buckets_;   // mask_ + 1 of them, or null
  std::unique_ptr<uint64_t[]> hashes_;  // kSlots per bucket
  size_t mask_ = 0;
  size_t size_ = 0;
  size_t grow_at_ = 0;  // size that makes the next Insert grow first
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_ENTRY_TABLE_H_
