// Copyright 2026 The convstore Authors.

#include "cache/entry_table.h"

#include <cassert>
#include <limits>
#include <utility>

namespace convstore::internal {

namespace {

constexpr uint16_t kPassedMax = std::numeric_limits<uint16_t>::max();

// Load limit: 80% of the slots. Six slots a bucket keep the probe to the
// home bucket for nearly every key at this load.
constexpr size_t MaxLoad(size_t buckets) {
  return buckets * EntryTable::kSlots * 4 / 5;
}

}  // namespace

CacheEntry* EntryTable::Find(const HashedNsKey& k) const {
  if (buckets_ == nullptr) return nullptr;
  const uint16_t tag = TagOf(k.hash);
  size_t b = k.hash & mask_;
  // Erases can leave every bucket marked `passed` (a key placed past a
  // full bucket, that bucket emptied later), so the walk also stops after
  // every bucket.
  for (size_t seen = 0; seen <= mask_; ++seen) {
    const Bucket& bucket = buckets_[b];
    for (int i = 0; i < kSlots; ++i) {
      if (bucket.tags[i] != tag) continue;
      CacheEntry* e = bucket.entries[i];
      // A tag match is all but certainly the entry about to be read: fetch
      // its later lines (key, inline value) with the first, not after it.
      const char* block = reinterpret_cast<const char*>(e);
      __builtin_prefetch(block + 64);
      __builtin_prefetch(block + 128);
      __builtin_prefetch(block + 192);
      if (e->hash() == k.hash && e->key() == k.view.key &&
          e->ns() == k.view.ns) {
        return e;
      }
    }
    if (bucket.passed == 0) return nullptr;
    b = (b + 1) & mask_;
  }
  return nullptr;
}

void EntryTable::Insert(CacheEntry* e) {
  if (size_ >= grow_at_) Grow();
  Place(e->hash(), e);
  ++size_;
}

void EntryTable::Place(uint64_t hash, CacheEntry* e) {
  size_t b = hash & mask_;
  for (;;) {
    Bucket& bucket = buckets_[b];
    for (int i = 0; i < kSlots; ++i) {
      if (bucket.tags[i] != 0) continue;
      bucket.tags[i] = TagOf(hash);
      bucket.entries[i] = e;
      hashes_[b * kSlots + i] = hash;
      return;
    }
    if (bucket.passed != kPassedMax) ++bucket.passed;
    b = (b + 1) & mask_;
  }
}

void EntryTable::Locate(const CacheEntry* e, size_t* bucket, int* slot) const {
  size_t b = e->hash() & mask_;
  for (;;) {
    for (int i = 0; i < kSlots; ++i) {
      if (buckets_[b].entries[i] == e && buckets_[b].tags[i] != 0) {
        *bucket = b;
        *slot = i;
        return;
      }
    }
    assert(buckets_[b].passed > 0 && "entry not in the table");
    b = (b + 1) & mask_;
  }
}

void EntryTable::Replace(const CacheEntry* old, CacheEntry* fresh) {
  size_t b = 0;
  int i = 0;
  Locate(old, &b, &i);
  buckets_[b].entries[i] = fresh;
}

void EntryTable::Erase(const CacheEntry* e) {
  size_t at = 0;
  int slot = 0;
  Locate(e, &at, &slot);
  buckets_[at].tags[slot] = 0;
  buckets_[at].entries[slot] = nullptr;
  // The buckets it passed on its way no longer have it past them.
  for (size_t b = e->hash() & mask_; b != at; b = (b + 1) & mask_) {
    uint16_t& passed = buckets_[b].passed;
    if (passed != kPassedMax) --passed;
  }
  --size_;
}

void EntryTable::Grow() {
  const size_t old_count = bucket_count();
  const size_t count = old_count == 0 ? 2 : old_count * 2;
  // Both arrays first: if either allocation throws, the table is as it was.
  std::unique_ptr<Bucket[]> buckets(new Bucket[count]());
  std::unique_ptr<uint64_t[]> hashes(new uint64_t[count * kSlots]);
  std::unique_ptr<Bucket[]> old_buckets =
      std::exchange(buckets_, std::move(buckets));
  std::unique_ptr<uint64_t[]> old_hashes =
      std::exchange(hashes_, std::move(hashes));
  mask_ = count - 1;
  grow_at_ = MaxLoad(count);
  for (size_t b = 0; b < old_count; ++b) {
    for (int i = 0; i < kSlots; ++i) {
      if (old_buckets[b].tags[i] == 0) continue;
      Place(old_hashes[b * kSlots + i], old_buckets[b].entries[i]);
    }
  }
}

}  // namespace convstore::internal
