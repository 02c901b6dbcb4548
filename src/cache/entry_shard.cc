// Copyright 2026 The convstore Authors.

#include "cache/entry_shard.h"

#include <iterator>

namespace convstore::internal {

CacheEntry* EntryShard::Find(std::string_view ns, std::string_view key) {
  auto it = map_.find(NsKeyView{ns, key});
  return it == map_.end() ? nullptr : &*it->second;
}

EntryShard::EntryRef EntryShard::RefOf(const CacheEntry* e) { return e->self; }

void EntryShard::MarkUsed(CacheEntry* e) { e->referenced = true; }

CacheEntry* EntryShard::Put(std::string_view ns, std::string_view key,
                            std::shared_ptr<const std::string> value,
                            int64_t expires_at_us, bool as_oldest) {
  const size_t bytes = CacheEntryBytes(ns, key, value->size());
  CacheEntry* e = Find(ns, key);
  if (e == nullptr) {
    EntryRef it =
        as_oldest ? lru_.emplace(lru_.end()) : lru_.emplace(lru_.begin());
    it->ns.assign(ns);
    it->key.assign(key);
    it->self = it;
    map_.emplace(NsKeyView{it->ns, it->key}, it);
    e = &*it;
  } else {
    MarkUsed(e);
    bytes_ -= e->bytes;
  }
  e->value = std::move(value);
  e->bytes = bytes;
  bytes_ += bytes;
  SetExpiry(e, expires_at_us);
  return e;
}

void EntryShard::SetExpiry(CacheEntry* e, int64_t expires_at_us) {
  if (e->expires_at_us > 0) by_expiry_.erase({e->expires_at_us, e});
  e->expires_at_us = expires_at_us;
  if (expires_at_us > 0) by_expiry_.insert({expires_at_us, e});
}

void EntryShard::Erase(EntryRef it) {
  if (it->expires_at_us > 0) by_expiry_.erase({it->expires_at_us, &*it});
  bytes_ -= it->bytes;
  map_.erase(NsKeyView{it->ns, it->key});
  lru_.erase(it);
}

void EntryShard::Remove(CacheEntry* e) { Erase(RefOf(e)); }

void EntryShard::EvictOver(
    size_t budget, const CacheEntry* keep,
    std::vector<std::pair<std::string, std::string>>* evicted) {
  // A pass looks at each entry present when it starts once, oldest
  // first. The first may only clear flags (every entry referenced); the
  // second then finds them unreferenced, so the bound holds.
  for (int pass = 0; pass < 2 && bytes_ > budget; ++pass) {
    // The entries not yet looked at are the `left` ones just before the
    // end: second chances move to the front, ahead of all of them.
    size_t left = lru_.size();
    while (bytes_ > budget && left > 0) {
      --left;
      auto cur = std::prev(lru_.end());
      if (&*cur == keep || cur->referenced) {
        // `keep`, just written, is the most recent entry (its flag stays).
        if (&*cur != keep) cur->referenced = false;
        lru_.splice(lru_.begin(), lru_, cur);
      } else {
        evicted->emplace_back(cur->ns, cur->key);
        Erase(cur);
        ++evictions;
      }
    }
  }
}

size_t EntryShard::RemoveExpired(int64_t now_us, size_t limit) {
  size_t n = 0;
  while (n < limit && !by_expiry_.empty() &&
         by_expiry_.begin()->first <= now_us) {
    Erase(RefOf(by_expiry_.begin()->second));
    ++n;
  }
  expirations += n;
  return n;
}

}  // namespace convstore::internal
