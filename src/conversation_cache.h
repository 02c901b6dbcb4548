// Copyright 2026 The convstore Authors.
//
// ConversationCache: the bounded in-memory image of recently used
// conversations, split into independently locked shards.
//
// Thread safety: each Shard is guarded by its own mutex; every method of
// Shard requires it held (annotated). The hit/miss/eviction counters live
// in their shard: only the holder of its mutex bumps them, and anyone may
// read them (and ConversationCache's sums) without a lock.
//
// Invariants:
//  1. An entry whose pending_lsn is above the durable LSN (it has writes not
//     yet committed, including a delete) is never evicted, and no message
//     that is not durable is ever trimmed from it. So an entry missing from
//     the cache has nothing queued, and the database alone is its truth.
//  2. entry.messages is a contiguous run of seqs ending at info.last_seq;
//     `complete` means it starts at seq 1 (nothing older exists). Stored
//     seqs may have gaps (retention keeps the first system message and
//     removes what follows it): Load keeps only the run after the last gap.
//  3. Shard byte/count totals equal the sum over its entries. An entry's
//     bytes count every message it keeps alive: the ring's, and
//     first_system when the ring no longer holds it.
//  4. Each shard enforces 1/shards of every bound, evicting whole
//     conversations least recently used first. If only pinned entries (1.)
//     are left and the shard is still over its byte bound, they lose the
//     durable messages in front of their first one not yet durable, least
//     recently used first, so pinning holds over the bound only messages
//     that are not yet durable, plus the entries' fixed overhead.

#ifndef CONVSTORE_SRC_CONVERSATION_CACHE_H_
#define CONVSTORE_SRC_CONVERSATION_CACHE_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/types.h"
#include "mutex.h"
#include "ring_deque.h"
#include "storage_backend.h"
#include "write_op.h"

namespace convstore::internal {

struct CachedMessage {
  MessagePtr message;
  uint64_t lsn;  // 0 for messages loaded from the database (durable)
};

struct CachedConversation {
  std::string id;
  // `id` for queued appends to share; made by the first Append (null until
  // then, so entries only read pay nothing).
  SharedId shared_id;
  ConversationInfo info;
  RingDeque<CachedMessage> messages;  // oldest first
  bool complete = false;
  // Not complete, but the only stored message older than `messages` is
  // first_system (a retention run that kept the prompt left a gap after
  // it): the entry and first_system together are the whole conversation.
  // Learnt by a read-through that found exactly that; forgotten with the
  // front of `messages` (PopFront) and by DropThrough.
  bool only_system_before = false;
  // The conversation's first system message, kept even when trimmed.
  MessagePtr first_system;
  // What first_system costs while no ring slot holds it (trimmed from
  // `messages`, or loaded apart from the cached run): it stays in memory,
  // so `bytes` counts it (invariant 3). 0 while the ring holds it.
  size_t system_apart_bytes = 0;
  // LSN of the newest write that touched this conversation.
  uint64_t pending_lsn = 0;
  size_t bytes = 0;
  std::list<CachedConversation*>::iterator lru;
};

struct CacheLimits {
  size_t max_bytes = 256 << 20;
  size_t max_conversations = 100'000;
  size_t max_messages_per_conversation = 1000;
  size_t shards = 32;
};

struct CacheCounters {
  uint64_t conversations = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
};

// A count only a shard's lock holder bumps (so Add must be called with the
// shard's mutex held: two unlocked bumps could lose one) and anyone reads
// without the lock. The count sits in its shard, so appends on different
// shards do not pass one cache line between cores. The bump is a plain
// load and store, not a locked read-modify-write: on x86 a locked
// instruction also waits for the thread's earlier stores to reach the
// cache, such as Add's store into a cold ring slot right before Enforce.
class ShardCounter {
 public:
  void Add(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class ConversationCache {
 public:
  class Shard {
   public:
    Mutex mu;

    // The entry for `id`, marked most recently used; null if absent.
    CachedConversation* Find(std::string_view id)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // The entry for `id` without touching its recency; null if absent.
    CachedConversation* Peek(std::string_view id)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Adds an empty entry for `id` (which must be absent), as the most
    // recently used one, or the least when `as_oldest` (cache warming loads
    // newest first).
    CachedConversation* Insert(std::string_view id, bool as_oldest = false)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Fills a new entry with what the database holds (all durable).
    void Load(CachedConversation* c, StoredConversation&& stored)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Adds durable messages read through from the database in front of the
    // cached ones, newest first, as far as the per-conversation bound
    // allows. `older` must be contiguous and end right before the first
    // cached seq (otherwise nothing is added).
    void Prepend(CachedConversation* c, const std::vector<MessagePtr>& older)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Starts loading the ring slot an Add to `c` fills, and the front slot
    // the trim after it reads when the entry is at its message bound. The
    // slot's cache line was last touched by the previous Add to `c` (one
    // round of writes to other conversations ago) or earlier, and is likely
    // out of the CPU's caches by now: the misses then overlap the caller's
    // work before the Add.
    void PrefetchForAdd(const CachedConversation* c) const
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Appends a message (its seq must be info.last_seq + 1) written at
    // `lsn` (0: already durable) and updates the summary as the database
    // will.
    void Add(CachedConversation* c, MessagePtr m, uint64_t lsn)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Empties the entry: the conversation was deleted at `lsn`.
    void Clear(CachedConversation* c, uint64_t lsn)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // The delete at `lsn` was refused by the database: the conversation is
    // still stored. Drops the entry, so the next call loads it, unless
    // something was written to it since (true: dropped).
    bool ForgetRefusedDelete(CachedConversation* c, uint64_t lsn)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Trims durable messages over the per-conversation bound and evicts
    // least recently used durable conversations (never `keep`) until the
    // shard is within its bounds or nothing more may go. Then, while bytes
    // are still over, pinned conversations drop their durable messages
    // (see invariant 4).
    void Enforce(uint64_t durable_lsn, const CachedConversation* keep)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Drops the cached durable messages with seq <= `seq` (retention removed
    // them, or some of them, from the database); the entry stays a suffix,
    // now incomplete, and reads the kept ones through. The pinned first
    // system message goes too only if `system_removed`.
    void DropThrough(CachedConversation* c, int64_t seq, bool system_removed,
                     uint64_t durable_lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Entries with writes above durable_lsn (their summaries are newer than
    // the database's).
    void CollectDirty(uint64_t durable_lsn,
                      std::vector<const CachedConversation*>* out) const
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    CacheCounters Counters() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // A read answered from the entry, or one that went to the database.
    void RecordHit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { hits_.Add(1); }
    void RecordMiss() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { misses_.Add(1); }

   private:
    friend class ConversationCache;
    void Trim(CachedConversation* c, uint64_t durable_lsn)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Drops the oldest cached message (the caller checked it is durable).
    void PopFront(CachedConversation* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    // Sets c->system_apart_bytes (and the totals) to what first_system
    // costs now: its message if no ring slot holds it, else nothing.
    void ChargeSystemApart(CachedConversation* c)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
    void Erase(CachedConversation* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

    ConversationCache* owner_ = nullptr;
    // Keyed by a view of the entry's own id (entries never move), so the
    // id is not stored twice.
    absl::flat_hash_map<std::string_view, std::unique_ptr<CachedConversation>>
        map_ ABSL_GUARDED_BY(mu);
    std::list<CachedConversation*> lru_ ABSL_GUARDED_BY(mu);  // front: newest
    size_t messages_ ABSL_GUARDED_BY(mu) = 0;
    size_t bytes_ ABSL_GUARDED_BY(mu) = 0;
    // Bumped under mu, read by ConversationCache's sums without it.
    ShardCounter hits_;
    ShardCounter misses_;
    ShardCounter evictions_;
    ShardCounter pinned_drops_;
    ShardCounter walks_;
    ShardCounter eviction_scans_;
    // The durable LSN at which the last eviction walk ended over a bound
    // with every entry pinned by writes not yet durable and none holding a
    // durable message it may drop (kNoFutileWalk: none since), except
    // futile_keep_ when not null: the kept entry of that walk, durable or
    // holding durable messages. futile_new_ is the one entry inserted since
    // (a second insert forgets the walk). Until the durable LSN moves or
    // Prepend adds durable messages, a call that keeps futile_keep_ (any,
    // when null) and futile_new_ (when not null) would find the same, and
    // skips the walk: an over-budget Append stays O(1) while the writer
    // catches up, also when agents append to one conversation again and
    // again or start new ones. Both pointers are only compared, never
    // followed; a reused address comes only from an Insert, which a
    // pending futile_new_ turns into forgetting the walk.
    static constexpr uint64_t kNoFutileWalk = ~uint64_t{0};
    uint64_t futile_walk_lsn_ ABSL_GUARDED_BY(mu) = kNoFutileWalk;
    // Whether that walk ended over the byte bound. One that ended over the
    // conversation bound alone never reached the pinned entries' durable
    // messages: once bytes go over, the next call walks.
    bool futile_bytes_over_ ABSL_GUARDED_BY(mu) = false;
    // The durable LSN at which the last walk's eviction part reached the
    // most recent entry still over a bound (kNoFutileWalk: none since, or
    // an Insert), so that every entry but evict_futile_keep_ (when not
    // null: the kept entry of that walk, evictable then) was pinned. At the
    // same durable LSN a walk that keeps evict_futile_keep_ (any, when
    // null) skips evicting and goes on to the pinned entries' durable
    // messages: with the writer behind and the cache at its bytes bound, an
    // Append costs one dropped message, not a look at every entry.
    uint64_t evict_futile_lsn_ ABSL_GUARDED_BY(mu) = kNoFutileWalk;
    const CachedConversation* evict_futile_keep_ ABSL_GUARDED_BY(mu) = nullptr;
    const CachedConversation* futile_keep_ ABSL_GUARDED_BY(mu) = nullptr;
    const CachedConversation* futile_new_ ABSL_GUARDED_BY(mu) = nullptr;
  };

  explicit ConversationCache(const CacheLimits& limits);
  ConversationCache(const ConversationCache&) = delete;
  ConversationCache& operator=(const ConversationCache&) = delete;

  Shard& ShardFor(std::string_view id);
  size_t shard_count() const { return shards_.size(); }
  Shard& shard(size_t i) { return *shards_[i]; }
  const CacheLimits& limits() const { return limits_; }

  // Sums Counters() over all shards (each read under its own lock).
  CacheCounters Totals();
  // True when a shard is at its conversation or byte bound: warming stops.
  bool Full();
  // The byte bound in force over all shards (limits().max_bytes unless
  // SetMaxBytes changed it).
  size_t max_bytes() const {
    return shard_max_bytes_.load(std::memory_order_relaxed) * shards_.size();
  }
  // Changes the byte bound (split over the shards as at construction, so
  // max_bytes() is `total` rounded down to a multiple of the shard count).
  // A lower bound is enforced by the next write to each shard, or at once
  // by EnforceAll. Returns whether the bound changed.
  bool SetMaxBytes(size_t total);
  // Evicts every shard down to its bounds, as Enforce with no entry kept.
  // `bound_changed` forgets each shard's last futile walk (it was against
  // the old bound).
  void EnforceAll(uint64_t durable_lsn, bool bound_changed);

  // Sums over the shards, each read without its lock (so a sum taken
  // while others write may be a moment old).
  uint64_t hits() const { return Sum(&Shard::hits_); }
  uint64_t misses() const { return Sum(&Shard::misses_); }
  uint64_t evictions() const { return Sum(&Shard::evictions_); }
  // Durable messages dropped from pinned entries by Enforce (invariant 4).
  uint64_t pinned_drops() const { return Sum(&Shard::pinned_drops_); }
  // Enforce calls that walked a shard's recency list (over a bound and not
  // skipped as futile).
  uint64_t walks() const { return Sum(&Shard::walks_); }
  // Entries the eviction part of those walks looked at.
  uint64_t eviction_scans() const { return Sum(&Shard::eviction_scans_); }

 private:
  // `counter` summed over the shards (shards_ never changes after
  // construction, so no lock is needed to walk it).
  uint64_t Sum(ShardCounter Shard::*counter) const {
    uint64_t total = 0;
    for (const auto& s : shards_) total += ((*s).*counter).Get();
    return total;
  }

  const CacheLimits limits_;
  // Per shard: what SetMaxBytes last set (limits_.max_bytes at first).
  std::atomic<size_t> shard_max_bytes_;
  const size_t shard_max_conversations_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// What the cache charges against its byte bound, meant to be the heap the
// entry really holds (docs/benchmarks.md, "What a cache entry costs";
// conversation_cache_test.cc compares it with the allocator's own count).
// One message: its make_shared block (the Message and the control block),
// the buffer of each string not short enough to be inline (by capacity),
// and two slots of the entry's RingDeque (at most half empty while it
// grows), each as glibc's malloc rounds it.
size_t CachedMessageBytes(const Message& m);
// The same message held apart from any ring (first_system once trimmed):
// CachedMessageBytes without the ring slots.
size_t HeldApartBytes(const Message& m);
// An entry with no messages: the entry itself, its map slot, recency node
// and shared id (charged from the start, though the first Append makes
// it), and the copies of an id too long for the string's inline buffer.
// Not counted: a conversation owner's user_id longer than that buffer.
// The first system message held apart from the cached run is charged on
// its own (CachedConversation::system_apart_bytes).
size_t CachedConversationBytes(std::string_view id);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CONVERSATION_CACHE_H_
