// Copyright 2026 The convstore Authors.

#include "cache/entry_shard.h"

namespace convstore::internal {

EntryShard::~EntryShard() {
  // No lock: nothing else can reach a shard being destroyed.
  CacheEntry* e = newest_;
  while (e != nullptr) {
    CacheEntry* next = e->older;
    CacheEntry::Destroy(e);
    e = next;
  }
}

CacheEntry* EntryShard::Find(const HashedNsKey& k) { return table_.Find(k); }

void EntryShard::Account(size_t added, size_t removed) {
  if (added == removed) return;  // a rewrite of the same size
  // Unsigned wrap-around makes added - removed a signed delta for both.
  bytes_ += added - removed;
  total_->fetch_add(added - removed, std::memory_order_relaxed);
}

void EntryShard::LinkNewest(CacheEntry* e) {
  e->newer = nullptr;
  e->older = newest_;
  if (newest_ != nullptr) newest_->newer = e;
  newest_ = e;
  if (oldest_ == nullptr) oldest_ = e;
}

void EntryShard::LinkOldest(CacheEntry* e) {
  e->older = nullptr;
  e->newer = oldest_;
  if (oldest_ != nullptr) oldest_->older = e;
  oldest_ = e;
  if (newest_ == nullptr) newest_ = e;
}

void EntryShard::LinkInPlaceOf(CacheEntry* old, CacheEntry* fresh) {
  fresh->newer = old->newer;
  fresh->older = old->older;
  (old->newer != nullptr ? old->newer->older : newest_) = fresh;
  (old->older != nullptr ? old->older->newer : oldest_) = fresh;
  old->newer = old->older = nullptr;
}

void EntryShard::Unlink(CacheEntry* e) {
  (e->newer != nullptr ? e->newer->older : newest_) = e->older;
  (e->older != nullptr ? e->older->newer : oldest_) = e->newer;
  e->newer = e->older = nullptr;
}

CacheEntry* EntryShard::Put(const HashedNsKey& k, CacheEntryPtr owned,
                            int64_t expires_at_us, CacheEntryPtr* replaced,
                            bool as_oldest) {
  CacheEntry* fresh = owned.get();
  CacheEntry* old = table_.Find(k);
  if (old == nullptr) {
    // First: if growing the table throws, nothing changed and `owned`
    // still frees the entry.
    table_.Insert(fresh);
    (void)owned.release();
    if (as_oldest) {
      LinkOldest(fresh);
    } else {
      LinkNewest(fresh);
    }
    Account(fresh->bytes, 0);
  } else {
    // The rewrite keeps the entry's place and counts as a use.
    LinkInPlaceOf(old, fresh);
    fresh->referenced = true;
    SetExpiry(old, 0);
    // Same key, same hash: the slot's pointer is swapped in place.
    table_.Replace(old, fresh);
    (void)owned.release();
    Account(fresh->bytes, old->bytes);
    CacheEntryPtr gone(old);
    if (replaced != nullptr) *replaced = std::move(gone);
  }
  SetExpiry(fresh, expires_at_us);
  return fresh;
}

void EntryShard::SetExpiry(CacheEntry* e, int64_t expires_at_us) {
  if (e->expires_at_us > 0) by_expiry_.erase({e->expires_at_us, e});
  e->expires_at_us = expires_at_us;
  if (expires_at_us > 0) by_expiry_.insert({expires_at_us, e});
}

void EntryShard::Remove(CacheEntry* e) {
  SetExpiry(e, 0);
  Account(0, e->bytes);
  table_.Erase(e);
  Unlink(e);
  CacheEntry::Destroy(e);
}

void EntryShard::EvictOver(
    size_t budget, int64_t now_us, const CacheEntry* keep,
    std::vector<std::pair<std::string, std::string>>* evicted) {
  // Expired entries first, from the expiry index: they are dead already,
  // so no live entry may go while one of them holds bytes. (`keep` was
  // just written with time left, so it is never among them; skipped all
  // the same.)
  while (TotalOver(budget)) {
    auto it = by_expiry_.begin();
    if (it != by_expiry_.end() && it->second == keep) ++it;
    if (it == by_expiry_.end() || it->first > now_us) break;
    Remove(it->second);
    ++expirations;
  }
  // A pass looks at each entry present when it starts once, oldest
  // first. The first may only clear flags (every entry referenced); the
  // second then finds them unreferenced, so the total fits the budget
  // unless this shard runs out of entries other than `keep` first.
  for (int pass = 0; pass < 2 && TotalOver(budget); ++pass) {
    // The entries not yet looked at are the `left` oldest: second chances
    // move to the front, ahead of all of them.
    size_t left = table_.size();
    while (TotalOver(budget) && left > 0) {
      --left;
      CacheEntry* cur = oldest_;
      if (cur == keep || cur->referenced) {
        // `keep`, just written, is the most recent entry (its flag stays).
        if (cur != keep) cur->referenced = false;
        Unlink(cur);
        LinkNewest(cur);
      } else {
        evicted->emplace_back(cur->ns(), cur->key());
        Remove(cur);
        ++evictions;
      }
    }
  }
}

size_t EntryShard::RemoveExpired(int64_t now_us, size_t limit) {
  size_t n = 0;
  while (n < limit && !by_expiry_.empty() &&
         by_expiry_.begin()->first <= now_us) {
    Remove(by_expiry_.begin()->second);
    ++n;
  }
  expirations += n;
  return n;
}

}  // namespace convstore::internal
