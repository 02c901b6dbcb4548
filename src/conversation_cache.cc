// Copyright 2026 The convstore Authors.

#include "conversation_cache.h"

#include <absl/hash/hash.h>

#include <algorithm>
#include <utility>

#include "saturating.h"
#include "write_op.h"

namespace convstore::internal {
namespace {

// The heap a malloc of `n` bytes takes with glibc: an 8-byte header, the
// whole rounded up to 16 bytes, at least 32. (Only glibc's was measured;
// with another allocator the charge is an estimate.)
constexpr size_t Chunk(size_t n) {
  return n + 8 <= 32 ? 32 : (n + 8 + 15) / 16 * 16;
}
// make_shared's control block: a vtable pointer and two counts.
constexpr size_t kControlBlock = sizeof(void*) + 2 * sizeof(int);
// Two slots of the entry's RingDeque per message: it is at most half empty
// while it grows.
constexpr size_t kRingSlots = 2 * sizeof(CachedMessage);
// The flat map's slot and control byte, over its load factor (7/16 to 7/8
// of the slots are in use: 1.6 slots per entry on average).
constexpr size_t kMapSlot =
    (sizeof(std::string_view) + sizeof(std::unique_ptr<int>) + 1) * 8 / 5;
// std::list's node: two links and the pointer.
constexpr size_t kLruNode = Chunk(3 * sizeof(void*));
// SharedId's make_shared of the id and the writer's memo.
constexpr size_t kSharedId = Chunk(kControlBlock + SharedId::kRepBytes);
constexpr size_t kPerConversationOverhead =
    Chunk(sizeof(CachedConversation)) + kMapSlot + kLruNode + kSharedId;
// Copies of the id: the entry's id, its info's conversation_id and the
// shared id; each allocates once the id outgrows the inline buffer.
constexpr size_t kIdCopies = 3;

// The heap a string holds: none while its text is inline, else its
// buffer's chunk (capacity, which a moved-in string may have well above
// its size).
size_t StringHeap(const std::string& s) {
  const size_t inline_capacity = std::string().capacity();
  return s.capacity() > inline_capacity ? Chunk(s.capacity() + 1) : 0;
}

// The message alone, without the ring slots that hold it.
size_t MessageHeap(const Message& m) {
  return Chunk(kControlBlock + sizeof(Message)) + StringHeap(m.content) +
         StringHeap(m.user_id) + StringHeap(m.tool_call_id) +
         StringHeap(m.tool_name) + StringHeap(m.metadata);
}

// Whether a slot of c's ring holds `m` itself (not a copy read again).
bool RingHolds(const CachedConversation& c, const Message* m) {
  if (c.messages.empty()) return false;
  const int64_t front = c.messages.front().message->seq;
  if (m->seq < front || m->seq > c.messages.back().message->seq) return false;
  return c.messages[static_cast<size_t>(m->seq - front)].message.get() == m;
}

}  // namespace

size_t CachedMessageBytes(const Message& m) {
  return MessageHeap(m) + kRingSlots;
}

size_t HeldApartBytes(const Message& m) { return MessageHeap(m); }

size_t CachedConversationBytes(std::string_view id) {
  const size_t inline_capacity = std::string().capacity();
  const size_t copy = id.size() > inline_capacity ? Chunk(id.size() + 1) : 0;
  return kPerConversationOverhead + kIdCopies * copy;
}

ConversationCache::ConversationCache(const CacheLimits& limits)
    : limits_(limits),
      shard_max_bytes_(0),
      shard_max_conversations_(std::max<size_t>(
          1, limits.max_conversations / std::max<size_t>(1, limits.shards))) {
  size_t n = std::max<size_t>(1, limits.shards);
  shards_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->owner_ = this;
  }
  SetMaxBytes(limits.max_bytes);
}

ConversationCache::Shard& ConversationCache::ShardFor(std::string_view id) {
  // The shard comes from the hash's high bits: each shard's map uses the
  // same hash, and its low 7 bits are the map's per-slot tag, which would
  // otherwise be the same few values for every key of a shard (more false
  // tag matches, each a string compare).
  const uint64_t h = absl::HashOf(id);
  return *shards_[(h >> 32) % shards_.size()];
}

CachedConversation* ConversationCache::Shard::Find(std::string_view id) {
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  CachedConversation* c = it->second.get();
  lru_.splice(lru_.begin(), lru_, c->lru);
  return c;
}

CachedConversation* ConversationCache::Shard::Peek(std::string_view id) {
  auto it = map_.find(id);
  return it == map_.end() ? nullptr : it->second.get();
}

CachedConversation* ConversationCache::Shard::Insert(std::string_view id,
                                                     bool as_oldest) {
  auto c = std::make_unique<CachedConversation>();
  c->id = std::string(id);
  c->info.conversation_id = c->id;
  c->bytes = CachedConversationBytes(id);
  bytes_ += c->bytes;
  evict_futile_lsn_ = kNoFutileWalk;  // the new entry may be evictable
  // The new entry may be evictable, but a call keeping it finds the same.
  if (futile_walk_lsn_ != kNoFutileWalk) {
    if (futile_new_ == nullptr) {
      futile_new_ = c.get();
    } else {
      futile_walk_lsn_ = kNoFutileWalk;
    }
  }
  if (as_oldest) {
    lru_.push_back(c.get());
    c->lru = std::prev(lru_.end());
  } else {
    lru_.push_front(c.get());
    c->lru = lru_.begin();
  }
  CachedConversation* raw = c.get();
  map_.emplace(std::string_view(raw->id), std::move(c));
  return raw;
}

void ConversationCache::Shard::PrefetchForAdd(
    const CachedConversation* c) const {
#if defined(__GNUC__)
  if (const CachedMessage* slot = c->messages.next_back_slot()) {
    __builtin_prefetch(slot, /*rw=*/1);
    // A slot to fill means a buffer, which holds at least one message.
    __builtin_prefetch(&c->messages.front());
  }
#else
  (void)c;
#endif
}

void ConversationCache::Shard::Add(CachedConversation* c, MessagePtr m,
                                   uint64_t lsn) {
  const Message& msg = *m;
  ConversationInfo& info = c->info;
  if (info.message_count == 0) info.first_at_us = msg.created_at_us;
  // Validated tokens (at most 2^40 each) still add up past int64 in time.
  ++info.message_count;
  info.tokens_in = SatAdd(info.tokens_in, msg.tokens_in);
  info.tokens_out = SatAdd(info.tokens_out, msg.tokens_out);
  info.last_at_us = std::max(info.last_at_us, msg.created_at_us);
  info.last_seq = msg.seq;
  if (info.user_id.empty()) info.user_id = msg.user_id;
  if (c->messages.empty() && msg.seq == 1) c->complete = true;
  // Loads set first_system from the database, so a null one here means no
  // earlier system message exists.
  if (c->first_system == nullptr && msg.role == Role::kSystem) {
    c->first_system = m;
  }
  size_t b = CachedMessageBytes(msg);
  c->bytes += b;
  bytes_ += b;
  ++messages_;
  c->messages.push_back({std::move(m), lsn});
  if (lsn > c->pending_lsn) c->pending_lsn = lsn;
}

void ConversationCache::Shard::Load(CachedConversation* c,
                                    StoredConversation&& stored) {
  c->info = std::move(stored.info);
  c->first_system = std::move(stored.first_system);
  // Only the run after the last gap in the seqs is cached (invariant 2: a
  // contiguous run ending at last_seq): a retention purge that kept the
  // first system message, or a write set aside, leaves gaps, and the entry
  // is indexed by seq arithmetic. Nothing is cached when the newest stored
  // message is not last_seq (the age rule removed the newest ones; the next
  // Add takes last_seq + 1). The system message stays pinned in
  // first_system.
  std::vector<MessagePtr>& msgs = stored.messages;
  size_t run = msgs.size();
  if (!msgs.empty() && msgs.back()->seq == c->info.last_seq) {
    while (run > 1 && msgs[run - 2]->seq + 1 == msgs[run - 1]->seq) --run;
    --run;  // index of the run's first message
  }
  c->complete =
      msgs.empty() ? c->info.last_seq == 0 : run == 0 && msgs.front()->seq == 1;
  c->only_system_before = false;
  msgs.erase(msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(run));
  for (MessagePtr& m : msgs) {
    size_t b = CachedMessageBytes(*m);
    c->bytes += b;
    bytes_ += b;
    ++messages_;
    c->messages.push_back({std::move(m), 0});
  }
  ChargeSystemApart(c);
}

void ConversationCache::Shard::Prepend(CachedConversation* c,
                                       const std::vector<MessagePtr>& older) {
  if (older.empty()) return;
  const int64_t end = c->messages.empty()
                          ? c->info.last_seq
                          : c->messages.front().message->seq - 1;
  if (older.back()->seq != end ||
      older.front()->seq + static_cast<int64_t>(older.size()) - 1 != end) {
    return;
  }
  const size_t cap = owner_->limits_.max_messages_per_conversation;
  const size_t room = cap > c->messages.size() ? cap - c->messages.size() : 0;
  const size_t take = std::min(room, older.size());
  for (size_t i = older.size(); i > older.size() - take; --i) {
    const MessagePtr& m = older[i - 1];
    size_t b = CachedMessageBytes(*m);
    c->bytes += b;
    bytes_ += b;
    ++messages_;
    c->messages.push_front({m, 0});
  }
  if (take > 0) futile_walk_lsn_ = kNoFutileWalk;  // durable bytes to drop
  if (take == older.size() && older.front()->seq == 1) c->complete = true;
}

void ConversationCache::Shard::Clear(CachedConversation* c, uint64_t lsn) {
  for (const CachedMessage& cm : c->messages) {
    size_t b = CachedMessageBytes(*cm.message);
    c->bytes -= b;
    bytes_ -= b;
  }
  messages_ -= c->messages.size();
  c->messages.clear();
  c->info = ConversationInfo();
  c->info.conversation_id = c->id;
  c->complete = true;
  c->only_system_before = false;
  c->first_system.reset();
  ChargeSystemApart(c);
  c->pending_lsn = std::max(c->pending_lsn, lsn);
}

bool ConversationCache::Shard::ForgetRefusedDelete(CachedConversation* c,
                                                   uint64_t lsn) {
  if (c->pending_lsn != lsn) return false;
  Erase(c);
  // The walks remembered compare entry addresses; start afresh.
  futile_walk_lsn_ = kNoFutileWalk;
  evict_futile_lsn_ = kNoFutileWalk;
  return true;
}

void ConversationCache::Shard::PopFront(CachedConversation* c) {
  size_t b = CachedMessageBytes(*c->messages.front().message);
  c->bytes -= b;
  bytes_ -= b;
  --messages_;
  c->complete = false;
  c->only_system_before = false;
  const bool was_system =
      c->messages.front().message.get() == c->first_system.get();
  c->messages.pop_front();
  if (was_system) ChargeSystemApart(c);  // still held by first_system
#if defined(__GNUC__)
  if (!c->messages.empty()) {
    // The next drop is likely this entry's new front, a message written
    // long ago and no longer in the CPU's caches: start loading it (the
    // control block make_shared put right before it, and the string
    // fields the drop reads) now.
    const char* next =
        reinterpret_cast<const char*>(c->messages.front().message.get()) -
        kControlBlock;
    for (size_t off = 0; off < kControlBlock + sizeof(Message); off += 64) {
      __builtin_prefetch(next + off);
    }
  }
#endif
}

void ConversationCache::Shard::Trim(CachedConversation* c,
                                    uint64_t durable_lsn) {
  size_t max = owner_->limits_.max_messages_per_conversation;
  if (max == 0) max = 1;
  while (c->messages.size() > max && c->messages.front().lsn <= durable_lsn) {
    PopFront(c);
  }
}

void ConversationCache::Shard::DropThrough(CachedConversation* c, int64_t seq,
                                           bool system_removed,
                                           uint64_t durable_lsn) {
  c->only_system_before = false;
  if (system_removed) {
    c->first_system.reset();
    ChargeSystemApart(c);
  }
  while (!c->messages.empty() && c->messages.front().message->seq <= seq &&
         c->messages.front().lsn <= durable_lsn) {
    PopFront(c);
  }
}

void ConversationCache::Shard::ChargeSystemApart(CachedConversation* c) {
  const Message* sys = c->first_system.get();
  const size_t want =
      sys != nullptr && !RingHolds(*c, sys) ? HeldApartBytes(*sys) : 0;
  c->bytes = c->bytes - c->system_apart_bytes + want;
  bytes_ = bytes_ - c->system_apart_bytes + want;
  c->system_apart_bytes = want;
}

void ConversationCache::Shard::Erase(CachedConversation* c) {
  bytes_ -= c->bytes;
  messages_ -= c->messages.size();
  lru_.erase(c->lru);
  map_.erase(map_.find(std::string_view(c->id)));  // destroys c
}

void ConversationCache::Shard::Enforce(uint64_t durable_lsn,
                                       const CachedConversation* keep) {
  if (keep != nullptr) Trim(const_cast<CachedConversation*>(keep), durable_lsn);
  const size_t max_bytes =
      owner_->shard_max_bytes_.load(std::memory_order_relaxed);
  auto over = [&] {
    return map_.size() > owner_->shard_max_conversations_ || bytes_ > max_bytes;
  };
  if (!over()) return;
  // Whether only `keep` could give more: a skipped `keep` that is durable
  // could be evicted, and one that is pinned could drop the durable
  // messages in its front, by a later call that does not keep it.
  const bool keep_blocks =
      keep != nullptr &&
      (keep->pending_lsn <= durable_lsn ||
       (!keep->messages.empty() && keep->messages.front().lsn <= durable_lsn));
  if (durable_lsn == futile_walk_lsn_ &&
      (futile_bytes_over_ || bytes_ <= max_bytes) &&
      (futile_keep_ == nullptr || futile_keep_ == keep) &&
      (futile_new_ == nullptr || futile_new_ == keep)) {
    // Nothing but `keep` may have changed since a walk found nothing to do.
    if (keep_blocks) futile_keep_ = keep;
    futile_new_ = nullptr;
    return;
  }
  walks_.Add(1);
  const bool keep_evictable =
      keep != nullptr && keep->pending_lsn <= durable_lsn;
  if (durable_lsn == evict_futile_lsn_ &&
      (evict_futile_keep_ == nullptr || evict_futile_keep_ == keep)) {
    // The last walk at this durable LSN found every entry but `keep` pinned.
    // Entries become evictable only when the durable LSN moves or by an
    // Insert (which forgets that walk), so looking again would find none:
    // over the bytes bound with every entry pinned, an Append then drops
    // one durable message below instead of looking at every entry.
    if (keep_evictable) evict_futile_keep_ = keep;
  } else {
    size_t scanned = 0;
    auto it = lru_.end();
    while (over() && it != lru_.begin()) {
      --it;
      ++scanned;
      CachedConversation* c = *it;
      if (c == keep || c->pending_lsn > durable_lsn) continue;
      it = std::next(it);  // Erase invalidates c's node only
      Erase(c);
      evictions_.Add(1);
    }
    eviction_scans_.Add(scanned);
    // Still over: the walk reached the most recent entry.
    evict_futile_lsn_ = over() ? durable_lsn : kNoFutileWalk;
    evict_futile_keep_ = keep_evictable ? keep : nullptr;
  }
  // Every entry left but `keep` is pinned. While bytes are still over, the
  // pinned ones, least recently used first, drop their durable messages in
  // front of the first that is not: pinning then holds over the bound only
  // what is not yet durable. (Entries being written are the ones an agent
  // reads next, so whole durable conversations went first.)
  for (auto p = lru_.rbegin(); bytes_ > max_bytes && p != lru_.rend(); ++p) {
    CachedConversation* c = *p;
    if (c == keep) continue;
    while (bytes_ > max_bytes && !c->messages.empty() &&
           c->messages.front().lsn <= durable_lsn) {
      PopFront(c);
      pinned_drops_.Add(1);
    }
  }
  futile_walk_lsn_ = over() ? durable_lsn : kNoFutileWalk;
  futile_bytes_over_ = bytes_ > max_bytes;
  futile_keep_ = keep_blocks ? keep : nullptr;
  futile_new_ = nullptr;
}

void ConversationCache::Shard::CollectDirty(
    uint64_t durable_lsn, std::vector<const CachedConversation*>* out) const {
  for (const auto& [id, c] : map_) {
    if (c->pending_lsn > durable_lsn) out->push_back(c.get());
  }
}

CacheCounters ConversationCache::Shard::Counters() const {
  return {map_.size(), messages_, bytes_};
}

CacheCounters ConversationCache::Totals() {
  CacheCounters t;
  for (auto& s : shards_) {
    MutexLock lock(&s->mu);
    CacheCounters c = s->Counters();
    t.conversations += c.conversations;
    t.messages += c.messages;
    t.bytes += c.bytes;
  }
  return t;
}

bool ConversationCache::SetMaxBytes(size_t total) {
  const size_t per_shard = std::max<size_t>(1, total / shards_.size());
  return shard_max_bytes_.exchange(per_shard, std::memory_order_relaxed) !=
         per_shard;
}

void ConversationCache::EnforceAll(uint64_t durable_lsn, bool bound_changed) {
  for (auto& s : shards_) {
    MutexLock lock(&s->mu);
    if (bound_changed) s->futile_walk_lsn_ = Shard::kNoFutileWalk;
    s->Enforce(durable_lsn, nullptr);
  }
}

bool ConversationCache::Full() {
  for (auto& s : shards_) {
    MutexLock lock(&s->mu);
    if (s->map_.size() >= shard_max_conversations_ ||
        s->bytes_ >= shard_max_bytes_.load(std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace convstore::internal
