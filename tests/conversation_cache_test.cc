// Copyright 2026 The convstore Authors.
//
// ConversationCache: summaries kept by Add and Load, per-conversation trim
// of durable messages only, LRU eviction by count and bytes that never drops
// undurable or kept entries (over the byte bound, pinned entries lose only
// their durable messages), deletes, dirty collection and counters.

#include "conversation_cache.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mutex.h"

// Whether glibc's malloc serves this process, so that mallinfo2 (glibc
// 2.33) counts what the cache allocates: not under the sanitizers, whose
// allocator it does not see.
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 33)
#define CONVSTORE_GLIBC_MALLINFO2 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#undef CONVSTORE_GLIBC_MALLINFO2
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef CONVSTORE_GLIBC_MALLINFO2
#endif
#endif

namespace convstore::internal {
namespace {

using Shard = ConversationCache::Shard;

MessagePtr Msg(int64_t seq, Role role = Role::kUser, std::string content = "",
               int64_t created_at = 0, std::string user_id = "",
               int64_t tokens_in = 0, int64_t tokens_out = 0) {
  auto m = std::make_shared<Message>();
  m->seq = seq;
  m->role = role;
  m->content = content.empty() ? "message " + std::to_string(seq) : content;
  m->created_at_us = created_at;
  m->user_id = std::move(user_id);
  m->tokens_in = tokens_in;
  m->tokens_out = tokens_out;
  return m;
}

CacheLimits OneShard(size_t max_conversations, size_t max_bytes,
                     size_t max_messages = 1000) {
  CacheLimits l;
  l.max_bytes = max_bytes;
  l.max_conversations = max_conversations;
  l.max_messages_per_conversation = max_messages;
  l.shards = 1;
  return l;
}

// What an empty entry for an id of `id_size` bytes charges.
size_t EmptyEntryBytes(size_t id_size) {
  return CachedConversationBytes(std::string(id_size, 'x'));
}

std::vector<int64_t> Seqs(const CachedConversation& c) {
  std::vector<int64_t> out;
  for (const CachedMessage& m : c.messages) out.push_back(m.message->seq);
  return out;
}

std::vector<uint64_t> Lsns(const CachedConversation& c) {
  std::vector<uint64_t> out;
  for (const CachedMessage& m : c.messages) out.push_back(m.lsn);
  return out;
}

TEST_CASE("Insert, Find and Add keep the conversation summary",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(10, 1 << 20));
  Shard& s = cache.ShardFor("c1");
  CHECK(&s == &cache.ShardFor("c1"));
  MutexLock lock(&s.mu);
  CHECK(s.Find("c1") == nullptr);
  CachedConversation* c = s.Insert("c1");
  REQUIRE(c != nullptr);
  CHECK(s.Find("c1") == c);
  CHECK(c->id == "c1");
  CHECK(c->info.conversation_id == "c1");
  CHECK(c->info.message_count == 0);
  CHECK(c->bytes == EmptyEntryBytes(2));

  MessagePtr m1 = Msg(1, Role::kSystem, "be brief", 100, "", 5, 0);
  MessagePtr m2 = Msg(2, Role::kUser, "hi", 200, "alice", 7, 0);
  MessagePtr m3 = Msg(3, Role::kAssistant, "hello", 150, "bob", 0, 11);
  MessagePtr m4 = Msg(4, Role::kSystem, "second system", 300, "carol", 1, 2);
  s.Add(c, m1, 1);
  s.Add(c, m2, 2);
  s.Add(c, m3, 0);  // durable already
  s.Add(c, m4, 9);

  const ConversationInfo& info = c->info;
  CHECK(info.conversation_id == "c1");
  CHECK(info.message_count == 4);
  CHECK(info.tokens_in == 13);
  CHECK(info.tokens_out == 13);
  CHECK(info.first_at_us == 100);
  CHECK(info.last_at_us == 300);  // the maximum, not the last appended
  CHECK(info.last_seq == 4);
  CHECK(info.user_id == "alice");  // first non-empty user id
  CHECK(c->first_system == m1);    // the first, not the later one
  CHECK(c->complete);
  CHECK(c->pending_lsn == 9);
  CHECK(Seqs(*c) == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(Lsns(*c) == std::vector<uint64_t>{1, 2, 0, 9});
  CHECK(c->messages[1].message == m2);  // shared, not copied

  size_t want_bytes = EmptyEntryBytes(2) + CachedMessageBytes(*m1) +
                      CachedMessageBytes(*m2) + CachedMessageBytes(*m3) +
                      CachedMessageBytes(*m4);
  CHECK(c->bytes == want_bytes);
  CacheCounters k = s.Counters();
  CHECK(k.conversations == 1);
  CHECK(k.messages == 4);
  CHECK(k.bytes == want_bytes);

  // last_at tracks the maximum even when clocks go backwards.
  s.Add(c, Msg(5, Role::kUser, "", 250), 10);
  CHECK(c->info.last_at_us == 300);
  CHECK(c->info.last_seq == 5);
  CHECK(c->pending_lsn == 10);
}

TEST_CASE("Add to an entry that does not start at seq 1 is incomplete",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(10, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  CachedConversation* c = s.Insert("c");
  s.Add(c, Msg(5, Role::kSystem), 3);
  CHECK_FALSE(c->complete);
  CHECK(c->info.message_count == 1);
  CHECK(c->info.last_seq == 5);
  // No earlier system message is known to the entry, so this one is taken.
  REQUIRE(c->first_system != nullptr);
  CHECK(c->first_system->seq == 5);
}

StoredConversation Stored(int64_t first_seq, int64_t last_seq,
                          MessagePtr first_system) {
  StoredConversation st;
  st.exists = true;
  st.info.conversation_id = "c";
  st.info.user_id = "owner";
  st.info.message_count = last_seq;
  st.info.tokens_in = 40;
  st.info.tokens_out = 2;
  st.info.first_at_us = 10;
  st.info.last_at_us = 99;
  st.info.last_seq = last_seq;
  for (int64_t seq = first_seq; seq <= last_seq && first_seq > 0; ++seq) {
    st.messages.push_back(Msg(seq));
  }
  st.first_system = std::move(first_system);
  return st;
}

TEST_CASE("Load takes the stored summary and sets complete",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(10, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  MessagePtr sys = Msg(1, Role::kSystem);

  SECTION("a suffix is incomplete") {
    CachedConversation* c = s.Insert("c");
    StoredConversation st = Stored(8, 10, sys);
    // The system message (seq 1) is held apart from the run and charged.
    size_t want = c->bytes + HeldApartBytes(*sys);
    for (const MessagePtr& m : st.messages) want += CachedMessageBytes(*m);
    s.Load(c, std::move(st));
    CHECK_FALSE(c->complete);
    CHECK(c->info.user_id == "owner");
    CHECK(c->info.message_count == 10);
    CHECK(c->info.tokens_in == 40);
    CHECK(c->info.first_at_us == 10);
    CHECK(c->info.last_at_us == 99);
    CHECK(c->info.last_seq == 10);
    CHECK(c->first_system == sys);
    CHECK(Seqs(*c) == std::vector<int64_t>{8, 9, 10});
    CHECK(Lsns(*c) == std::vector<uint64_t>{0, 0, 0});
    CHECK(c->pending_lsn == 0);
    CHECK(c->bytes == want);
    CHECK(s.Counters().messages == 3);
    CHECK(s.Counters().bytes == want);
    // New writes continue the summary.
    s.Add(c, Msg(11, Role::kUser, "", 120, "", 1, 1), 4);
    CHECK(c->info.message_count == 11);
    CHECK(c->info.tokens_in == 41);
    CHECK(c->info.tokens_out == 3);
    CHECK(c->info.last_at_us == 120);
    CHECK(c->info.first_at_us == 10);
    CHECK(c->info.user_id == "owner");
    CHECK_FALSE(c->complete);
    CHECK(c->first_system == sys);
    CHECK(c->pending_lsn == 4);
  }
  SECTION("all messages from seq 1 is complete") {
    CachedConversation* c = s.Insert("c");
    s.Load(c, Stored(1, 3, sys));
    CHECK(c->complete);
    CHECK(Seqs(*c) == std::vector<int64_t>{1, 2, 3});
  }
  SECTION("an empty new conversation is complete") {
    CachedConversation* c = s.Insert("c");
    StoredConversation st;
    s.Load(c, std::move(st));
    CHECK(c->complete);
    CHECK(c->messages.empty());
    CHECK(c->info.last_seq == 0);
    CHECK(c->first_system == nullptr);
  }
  SECTION("a summary without loaded messages is incomplete") {
    CachedConversation* c = s.Insert("c");
    s.Load(c, Stored(0, 5, nullptr));
    CHECK_FALSE(c->complete);
    CHECK(c->messages.empty());
    CHECK(c->info.last_seq == 5);
  }
}

TEST_CASE("Trim drops only durable messages and clears complete",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(10, 1 << 20, /*max_messages=*/3));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  CachedConversation* c = s.Insert("c");
  std::vector<MessagePtr> msgs;
  for (int64_t seq = 1; seq <= 5; ++seq) {
    msgs.push_back(Msg(seq, seq == 1 ? Role::kSystem : Role::kUser));
    s.Add(c, msgs.back(), static_cast<uint64_t>(seq));  // lsn = seq
  }
  const size_t full_bytes = c->bytes;
  REQUIRE(c->complete);

  // Nothing durable: nothing may go, even over the bound.
  s.Enforce(/*durable_lsn=*/0, c);
  CHECK(Seqs(*c) == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(c->complete);

  // Only lsn 1 is durable: one message goes, the entry stays over bound.
  // The system message leaves the ring but stays held (first_system), so
  // only its ring slots stop being charged.
  s.Enforce(1, c);
  CHECK(Seqs(*c) == std::vector<int64_t>{2, 3, 4, 5});
  CHECK_FALSE(c->complete);
  const size_t slots = CachedMessageBytes(*msgs[0]) - HeldApartBytes(*msgs[0]);
  CHECK(c->bytes == full_bytes - slots);

  // Everything durable: trimmed to the bound of 3.
  s.Enforce(5, c);
  CHECK(Seqs(*c) == std::vector<int64_t>{3, 4, 5});
  CHECK(c->bytes == full_bytes - slots - CachedMessageBytes(*msgs[1]));
  // The summary and the first system message survive the trim.
  CHECK(c->info.message_count == 5);
  CHECK(c->info.last_seq == 5);
  CHECK(c->first_system == msgs[0]);
  CacheCounters k = s.Counters();
  CHECK(k.conversations == 1);
  CHECK(k.messages == 3);
  CHECK(k.bytes == c->bytes);
  CHECK(cache.evictions() == 0);
}

TEST_CASE("A trimmed first system message stays charged while it is held",
          "[conversation_cache]") {
  // A 10 KB prompt and two short messages per conversation, at most two
  // messages cached: every conversation trims its prompt from the ring but
  // keeps it in first_system, so the prompt's heap must stay charged.
  const std::string prompt(10'000, 'p');
  const size_t entry =
      EmptyEntryBytes(1) + HeldApartBytes(*Msg(1, Role::kSystem, prompt)) +
      CachedMessageBytes(*Msg(2)) + CachedMessageBytes(*Msg(3));
  // Room for three such conversations, not four.
  ConversationCache cache(OneShard(1000, 3 * entry + entry / 2, 2));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  auto fill = [&](const char* id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    CachedConversation* c = s.Insert(id);
    s.Add(c, Msg(1, Role::kSystem, prompt), 1);
    s.Add(c, Msg(2), 1);
    s.Add(c, Msg(3), 1);
    s.Enforce(/*durable_lsn=*/1, c);
    return c;
  };
  for (const char* id : {"a", "b", "c"}) {
    CachedConversation* c = fill(id);
    CHECK(Seqs(*c) == std::vector<int64_t>{2, 3});
    REQUIRE(c->first_system != nullptr);
    CHECK(c->first_system->seq == 1);
    CHECK(c->system_apart_bytes == HeldApartBytes(*c->first_system));
    CHECK(c->bytes == entry);
  }
  CHECK(s.Counters().bytes == 3 * entry);
  CHECK(cache.evictions() == 0);
  // A fourth no longer fits: without the prompts' charge all four would.
  fill("d");
  CHECK(cache.evictions() == 1);
  CHECK(s.Find("a") == nullptr);
  CHECK(s.Counters().bytes == 3 * entry);

  SECTION("a removed system message is no longer charged") {
    CachedConversation* b = s.Find("b");
    s.DropThrough(b, 2, /*system_removed=*/true, 1);
    CHECK(b->first_system == nullptr);
    CHECK(b->system_apart_bytes == 0);
    CHECK(b->bytes == EmptyEntryBytes(1) + CachedMessageBytes(*Msg(3)));
    CHECK(s.Counters().bytes == 2 * entry + b->bytes);
  }
  SECTION("a cleared conversation is back to an empty entry") {
    CachedConversation* c = s.Find("c");
    s.Clear(c, 2);
    CHECK(c->system_apart_bytes == 0);
    CHECK(c->bytes == EmptyEntryBytes(1));
    CHECK(s.Counters().bytes == 2 * entry + EmptyEntryBytes(1));
  }
  SECTION("a load charges the system message only when the run lacks it") {
    MessagePtr sys = Msg(1, Role::kSystem, prompt);
    CachedConversation* whole = s.Insert("w");
    StoredConversation st = Stored(1, 3, sys);
    st.messages[0] = sys;  // the run holds the very same message
    s.Load(whole, std::move(st));
    CHECK(whole->system_apart_bytes == 0);
    CachedConversation* copy = s.Insert("x");
    s.Load(copy, Stored(1, 3, sys));  // a copy of seq 1 in the run
    CHECK(copy->system_apart_bytes == HeldApartBytes(*sys));
    CachedConversation* apart = s.Insert("y");
    s.Load(apart, Stored(2, 3, sys));
    CHECK(apart->system_apart_bytes == HeldApartBytes(*sys));
    CHECK(s.Counters().bytes ==
          3 * entry + whole->bytes + copy->bytes + apart->bytes);
  }
}

TEST_CASE("Trim stops at the oldest message that is not durable",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(10, 1 << 20, /*max_messages=*/1));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  CachedConversation* c = s.Insert("c");
  s.Add(c, Msg(1), 0);
  s.Add(c, Msg(2), 7);
  s.Add(c, Msg(3), 0);  // durable, but behind an undurable one
  s.Enforce(6, c);
  CHECK(Seqs(*c) == std::vector<int64_t>{2, 3});
  CHECK_FALSE(c->complete);
  s.Enforce(7, c);
  CHECK(Seqs(*c) == std::vector<int64_t>{3});
}

// Adds one message of `content_size` bytes at `lsn` to a new entry `id`.
CachedConversation* AddConversation(Shard& s, const std::string& id,
                                    uint64_t lsn, size_t content_size = 10)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  CachedConversation* c = s.Insert(id);
  s.Add(c, Msg(1, Role::kUser, std::string(content_size, 'x')), lsn);
  return c;
}

TEST_CASE("LRU eviction by conversation count", "[conversation_cache]") {
  ConversationCache cache(OneShard(3, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  for (const char* id : {"a", "b", "c"}) {
    CachedConversation* c = AddConversation(s, id, 0);
    s.Enforce(0, c);
  }
  CHECK(cache.evictions() == 0);
  CHECK(s.Counters().conversations == 3);

  REQUIRE(s.Find("a") != nullptr);  // LRU order now: a c b (newest first)
  CachedConversation* d = AddConversation(s, "d", 0);
  s.Enforce(0, d);  // d a c b: b goes
  CHECK(cache.evictions() == 1);
  CHECK(s.Counters().conversations == 3);
  CHECK(s.Find("b") == nullptr);
  REQUIRE(s.Find("c") != nullptr);  // c d a
  CachedConversation* e = AddConversation(s, "e", 0);
  s.Enforce(0, e);  // e c d a: a goes
  CHECK(cache.evictions() == 2);
  CHECK(s.Find("a") == nullptr);
  CHECK(s.Find("c") != nullptr);
  CHECK(s.Find("d") != nullptr);
  CHECK(s.Find("e") != nullptr);
  CacheCounters k = s.Counters();
  CHECK(k.conversations == 3);
  CHECK(k.messages == 3);
  size_t one = EmptyEntryBytes(1) +
               CachedMessageBytes(*Msg(1, Role::kUser, std::string(10, 'x')));
  CHECK(k.bytes == 3 * one);
}

TEST_CASE("An entry inserted as oldest is evicted first",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(2, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  AddConversation(s, "new", 0);
  CachedConversation* warm = s.Insert("warm", /*as_oldest=*/true);
  s.Add(warm, Msg(1), 0);
  CachedConversation* x = AddConversation(s, "x", 0);
  s.Enforce(0, x);
  CHECK(s.Find("warm") == nullptr);
  CHECK(s.Find("new") != nullptr);
  CHECK(cache.evictions() == 1);
}

TEST_CASE("LRU eviction by bytes", "[conversation_cache]") {
  const size_t one =
      EmptyEntryBytes(1) +
      CachedMessageBytes(*Msg(1, Role::kUser, std::string(1000, 'x')));
  // Room for three such conversations, not four.
  ConversationCache cache(OneShard(1000, 3 * one + one / 2));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  for (const char* id : {"a", "b", "c"}) {
    CachedConversation* c = AddConversation(s, id, 0, 1000);
    REQUIRE(c->bytes == one);
    s.Enforce(0, c);
  }
  CHECK(cache.evictions() == 0);
  CHECK(s.Counters().bytes == 3 * one);
  REQUIRE(s.Find("a") != nullptr);  // a c b
  CachedConversation* d = AddConversation(s, "d", 0, 1000);
  s.Enforce(0, d);
  CHECK(cache.evictions() == 1);
  CHECK(s.Find("b") == nullptr);
  CHECK(s.Counters().bytes == 3 * one);
  CHECK(s.Counters().conversations == 3);

  // One big conversation pushes out as many old ones as needed.
  CachedConversation* big = AddConversation(s, "e", 0, 2 * one + 1000);
  s.Enforce(0, big);  // e d a c: c, a and d go
  CHECK(cache.evictions() == 4);
  CHECK(s.Counters().conversations == 1);
  CHECK(s.Find("e") == big);
  CHECK(s.Counters().bytes == big->bytes);
}

TEST_CASE("Eviction never drops undurable entries or the kept one",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(2, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  AddConversation(s, "a", 5);  // oldest, not durable until 5
  AddConversation(s, "b", 6);
  CachedConversation* c = AddConversation(s, "c", 0);
  s.Enforce(/*durable_lsn=*/4, c);  // a and b pending, c kept: none goes
  CHECK(cache.evictions() == 0);
  CHECK(s.Counters().conversations == 3);

  s.Enforce(5, nullptr);  // a is durable now and least recently used
  CHECK(cache.evictions() == 1);
  CHECK(s.Counters().conversations == 2);

  // Order c b (c newest). Keep b, the least recently used: c goes instead.
  CachedConversation* b = s.Find("b");
  REQUIRE(b != nullptr);                               // b c
  CachedConversation* d = AddConversation(s, "d", 0);  // d b c
  s.Enforce(6, d);
  CHECK(cache.evictions() == 2);
  CHECK(s.Find("c") == nullptr);
  CHECK(s.Find("b") == b);
  CHECK(s.Find("d") == d);
  // Order d b: keeping the LRU entry b while over bound takes d.
  CachedConversation* e = AddConversation(s, "e", 0);  // e d b
  s.Enforce(6, b);
  CHECK(s.Find("d") == nullptr);
  CHECK(s.Find("b") == b);
  CHECK(s.Find("e") == e);
  CHECK(cache.evictions() == 3);
}

TEST_CASE("A walk that found only pinned entries resumes when one may go",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(2, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  AddConversation(s, "a", 5);
  AddConversation(s, "b", 6);
  CachedConversation* c = AddConversation(s, "c", 7);
  s.Enforce(4, c);  // all pinned: the walk is remembered at durable LSN 4
  CHECK(cache.evictions() == 0);

  // A newly inserted durable entry may go although the LSN has not moved.
  CachedConversation* d = AddConversation(s, "d", 0);  // d c b a
  s.Enforce(4, c);
  CHECK(cache.evictions() == 1);
  CHECK(s.Peek("d") == nullptr);
  s.Enforce(4, nullptr);  // still all pinned at 4
  CHECK(cache.evictions() == 1);
  s.Enforce(5, nullptr);  // a became durable
  CHECK(cache.evictions() == 2);
  CHECK(s.Peek("a") == nullptr);

  // A durable kept entry is not "pinned": a later call without it evicts
  // it, at the same durable LSN.
  ConversationCache cache2(OneShard(1, 1 << 20));
  Shard& s2 = cache2.shard(0);
  MutexLock lock2(&s2.mu);
  CachedConversation* x = AddConversation(s2, "x", 0);
  AddConversation(s2, "y", 9);  // y x
  s2.Enforce(3, x);             // y pinned, x kept
  CHECK(cache2.evictions() == 0);
  CHECK(cache2.walks() == 1);
  s2.Enforce(3, x);  // keeping x again would find the same: no walk
  CHECK(cache2.walks() == 1);
  s2.Enforce(3, nullptr);
  CHECK(cache2.walks() == 2);
  CHECK(cache2.evictions() == 1);
  CHECK(s2.Peek("x") == nullptr);
  (void)d;
}

TEST_CASE("A new entry the next call keeps does not make it walk again",
          "[conversation_cache]") {
  // Agents starting conversations while the writer is behind: each Append
  // inserts an entry, adds a write not yet durable and keeps the entry.
  ConversationCache cache(OneShard(1, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  CachedConversation* a = AddConversation(s, "a", 5);
  CachedConversation* b = AddConversation(s, "b", 6);
  s.Enforce(4, b);
  REQUIRE(cache.walks() == 1);
  for (int i = 0; i < 20; ++i) {
    CachedConversation* c = AddConversation(s, "n" + std::to_string(i), 7);
    s.Enforce(4, c);
  }
  CHECK(cache.walks() == 1);
  CHECK(s.Counters().conversations == 22);

  // A new durable entry, kept: skipped, but a call without it evicts it.
  CachedConversation* d = AddConversation(s, "d", 0);
  s.Enforce(4, d);
  CHECK(cache.walks() == 1);
  s.Enforce(4, a);
  CHECK(cache.walks() == 2);
  CHECK(s.Peek("d") == nullptr);
  CHECK(cache.evictions() == 1);

  // Two entries inserted before the next call: that call walks.
  AddConversation(s, "e", 0);
  CachedConversation* f = AddConversation(s, "f", 8);
  s.Enforce(4, f);
  CHECK(cache.walks() == 3);
  CHECK(s.Peek("e") == nullptr);
  CHECK(cache.evictions() == 2);
}

TEST_CASE("Over the byte bound, pinned entries drop their durable messages",
          "[conversation_cache]") {
  // fill adds "a": seqs 1-4 durable (LSNs 1-4) and 5-6 not (LSNs 8, 9),
  // with a first system message at seq 1.
  auto fill = [](Shard& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    CachedConversation* a = s.Insert("a");
    s.Add(a, Msg(1, Role::kSystem, std::string(1000, 's')), 1);
    for (int64_t seq = 2; seq <= 6; ++seq) {
      s.Add(a, Msg(seq, Role::kUser, std::string(1000, 'x')),
            seq <= 4 ? static_cast<uint64_t>(seq) : seq + 3);
    }
    return a;
  };
  const size_t msg_bytes =
      CachedMessageBytes(*Msg(2, Role::kUser, std::string(1000, 'x')));
  // What fill's entry charges, measured on a cache of its own.
  const size_t full = [&] {
    ConversationCache probe(OneShard(10, 1 << 20));
    Shard& p = probe.shard(0);
    MutexLock lock(&p.mu);
    return fill(p)->bytes;
  }();
  // Dropping the system message frees only its ring slots: first_system
  // still holds it, and it stays charged.
  const size_t system_slots =
      CachedMessageBytes(*Msg(1, Role::kSystem, std::string(1000, 's'))) -
      HeldApartBytes(*Msg(1, Role::kSystem, std::string(1000, 's')));
  // Over the bound by this much, exactly three durable drops are needed.
  const size_t over = system_slots + 3 * msg_bytes / 2;

  SECTION("only as many as the bound needs, oldest first") {
    // Room for the entry minus the system message's slots and 1.5
    // messages: three durable ones go.
    ConversationCache cache(OneShard(10, full - over));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    const MessagePtr system = a->first_system;
    s.Enforce(/*durable_lsn=*/5, nullptr);
    CHECK(Seqs(*a) == std::vector<int64_t>{4, 5, 6});
    CHECK_FALSE(a->complete);
    CHECK(a->first_system == system);  // kept, as by Trim
    CHECK(a->info.message_count == 6);
    CHECK(cache.evictions() == 0);
    CHECK(s.Counters().bytes == a->bytes);
    CHECK(s.Counters().messages == 3);
  }
  SECTION("never a message that is not durable, however far over") {
    ConversationCache cache(OneShard(10, 1));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    s.Enforce(/*durable_lsn=*/8, nullptr);  // 5 is durable now, 6 is not
    CHECK(Seqs(*a) == std::vector<int64_t>{6});
    CHECK(Lsns(*a) == std::vector<uint64_t>{9});
    CHECK(s.Peek("a") == a);
    // Durable messages prepended later (a read-through) go at the next
    // walk, although the durable LSN has not moved.
    s.Prepend(a, {Msg(4), Msg(5)});
    REQUIRE(Seqs(*a) == std::vector<int64_t>{4, 5, 6});
    s.Enforce(8, nullptr);
    CHECK(Seqs(*a) == std::vector<int64_t>{6});
  }
  SECTION("least recently used first, and only while over") {
    // Two pinned entries: dropping a's three durable messages is enough,
    // so the newer one keeps all of its.
    ConversationCache cache(OneShard(10, 2 * full - over));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    CachedConversation* b = s.Insert("b");
    s.Add(b, Msg(1, Role::kUser, std::string(1000, 'x')), 2);
    s.Add(b, Msg(2, Role::kUser, std::string(1000, 'x')), 3);
    for (int64_t seq = 3; seq <= 6; ++seq) {
      s.Add(b, Msg(seq, Role::kUser, std::string(1000, 'x')), 6 + seq);
    }
    s.Enforce(5, nullptr);
    CHECK(Seqs(*a) == std::vector<int64_t>{4, 5, 6});
    CHECK(Seqs(*b).size() == 6);
    CHECK(cache.pinned_drops() == 3);
  }
  SECTION("a pinned kept entry's durable messages go at a later walk") {
    ConversationCache cache(OneShard(10, 1));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    s.Enforce(5, a);  // over, nothing else to do: but a is not done with
    CHECK(Seqs(*a).size() == 6);
    s.Enforce(5, nullptr);  // same durable LSN
    CHECK(Seqs(*a) == std::vector<int64_t>{5, 6});
  }
  SECTION("appending to a pinned kept entry again does not walk again") {
    // An agent appends to one conversation again and again while the shard
    // stays over its bound: each Append keeps that entry, which holds
    // durable messages only a walk without it may drop. After the first
    // walk, the next ones with the same kept entry would find the same.
    ConversationCache cache(OneShard(10, 1));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    CachedConversation* k = s.Insert("k");
    s.Add(k, Msg(1), 2);   // durable at 5
    s.Add(k, Msg(2), 20);  // not yet
    s.Enforce(5, k);
    CHECK(cache.walks() == 1);
    CHECK(Seqs(*a) == std::vector<int64_t>{5, 6});
    CHECK(Seqs(*k) == std::vector<int64_t>{1, 2});
    for (int64_t seq = 3; seq <= 5; ++seq) {
      s.Add(k, Msg(seq), 18 + seq);
      s.Enforce(5, k);
    }
    CHECK(cache.walks() == 1);
    CHECK(Seqs(*k) == std::vector<int64_t>{1, 2, 3, 4, 5});
    // A call that does not keep k walks and drops its durable message; the
    // next one finds nothing more.
    s.Enforce(5, nullptr);
    CHECK(cache.walks() == 2);
    CHECK(Seqs(*k) == std::vector<int64_t>{2, 3, 4, 5});
    s.Enforce(5, nullptr);
    s.Enforce(5, k);
    CHECK(cache.walks() == 2);
    s.Enforce(8, k);  // the durable LSN moved: a's seq 5 may go
    CHECK(cache.walks() == 3);
    CHECK(Seqs(*a) == std::vector<int64_t>{6});
  }
  SECTION("whole durable conversations go first") {
    // a (least recently used, pinned) then b (durable): evicting b is
    // enough, and a keeps everything.
    ConversationCache cache(OneShard(10, full + msg_bytes / 2));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    AddConversation(s, "b", 0, 1000);
    s.Enforce(5, nullptr);
    CHECK(s.Peek("b") == nullptr);
    CHECK(cache.evictions() == 1);
    CHECK(Seqs(*a) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
    CHECK(a->complete);
  }
  SECTION("the kept entry and a count bound drop nothing") {
    ConversationCache cache(OneShard(10, 1));
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    CachedConversation* a = fill(s);
    s.Enforce(5, a);
    CHECK(Seqs(*a).size() == 6);

    ConversationCache by_count(OneShard(1, 1 << 20));
    Shard& t = by_count.shard(0);
    MutexLock tlock(&t.mu);
    CachedConversation* x = fill(t);
    AddConversation(t, "y", 7);  // two pinned entries over a bound of one
    t.Enforce(5, nullptr);
    CHECK(t.Counters().conversations == 2);
    CHECK(Seqs(*x).size() == 6);
  }
}

TEST_CASE("A walk over the count bound alone does not excuse a later bytes one",
          "[conversation_cache]") {
  // A walk that ended over the conversation bound, with bytes under, was
  // remembered as futile: an Add at the same durable LSN that then took
  // bytes over skipped the walk, and pinned entries kept durable messages
  // over the byte bound (invariant 4).
  struct Setup {
    CachedConversation *a, *b, *n;
  };
  auto setup = [](Shard& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    Setup e;
    e.a = s.Insert("a");
    for (int64_t seq = 1; seq <= 4; ++seq) s.Add(e.a, Msg(seq), 1);  // durable
    s.Add(e.a, Msg(5), 100);                                         // pinned
    e.b = AddConversation(s, "b", 101);
    e.n = AddConversation(s, "n", 102);  // three entries, bound two
    return e;
  };
  // The byte bound: what the three entries take, plus 100.
  ConversationCache probe(OneShard(2, 1 << 20));
  size_t bound = 0;
  {
    MutexLock lock(&probe.shard(0).mu);
    setup(probe.shard(0));
    bound = probe.shard(0).Counters().bytes + 100;
  }
  ConversationCache cache(OneShard(2, bound));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  const Setup e = setup(s);
  s.Enforce(10, e.n);  // every entry pinned: nothing to evict, bytes under
  CHECK(s.Counters().conversations == 3);
  CHECK(s.Counters().bytes <= cache.max_bytes());
  CHECK(Seqs(*e.a).size() == 5);
  // b grows past the byte bound at the same durable LSN.
  s.Add(e.b, Msg(2, Role::kUser, std::string(600, 'x')), 103);
  s.Enforce(10, e.b);
  CHECK(s.Counters().bytes <= cache.max_bytes());
  CHECK(cache.pinned_drops() > 0);
  CHECK(Seqs(*e.a).front() > 1);  // a dropped its oldest durable messages
}

// The closed-loop Append at the bytes bound with the writer behind: every
// entry pinned, each call appends to another one and must drop one durable
// message. Only the first walk at a durable LSN looks at the entries for
// one to evict; until the durable LSN moves or an entry is inserted, the
// next walks go straight to the drop.
TEST_CASE("Walks at one durable LSN look for evictable entries once",
          "[conversation_cache]") {
  constexpr int kEntries = 50;
  ConversationCache cache(OneShard(1000, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  std::vector<CachedConversation*> entries;  // oldest first in the LRU
  for (int i = 0; i < kEntries; ++i) {
    CachedConversation* c = s.Insert("c" + std::to_string(i));
    for (int64_t seq = 1; seq <= 4; ++seq) s.Add(c, Msg(seq), 1);  // durable
    s.Add(c, Msg(5), 100);                                         // pinned
    entries.push_back(c);
  }
  // At the bound: each Add of a message as big goes over by that message.
  cache.SetMaxBytes(s.Counters().bytes);
  uint64_t lsn = 100;
  for (CachedConversation* c : entries) {
    s.Add(c, Msg(c->info.last_seq + 1), ++lsn);
    s.Enforce(10, c);
  }
  CHECK(cache.evictions() == 0);
  CHECK(cache.walks() == kEntries);
  CHECK(cache.pinned_drops() == kEntries);  // one per call
  // The first walk looked at every entry, the others at none.
  CHECK(cache.eviction_scans() == kEntries);

  SECTION("an insert forgets it: the new entry may be evictable") {
    CachedConversation* fresh = s.Insert("fresh");
    s.Add(fresh, Msg(1), 2);  // durable at 10
    s.Enforce(10, entries[0]);
    CHECK(cache.eviction_scans() == 2 * kEntries + 1);
    CHECK(s.Peek("fresh") == nullptr);
    CHECK(cache.evictions() == 1);
  }
  SECTION("a moved durable LSN forgets it") {
    s.Add(entries[0], Msg(entries[0]->info.last_seq + 1), ++lsn);
    s.Enforce(11, entries[0]);
    CHECK(cache.eviction_scans() == 2 * kEntries);
    CHECK(cache.evictions() == 0);
  }
  SECTION("an evictable kept entry goes at a walk that does not keep it") {
    CachedConversation* k = entries[0];  // durable at 101, nothing else
    auto append = [&](int i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      CachedConversation* c = entries[static_cast<size_t>(i)];
      s.Add(c, Msg(c->info.last_seq + 1), ++lsn);
    };
    append(1);
    s.Enforce(101, k);
    CHECK(cache.eviction_scans() == 2 * kEntries);
    append(2);
    s.Enforce(101, k);  // the same LSN and kept entry: no look
    CHECK(cache.eviction_scans() == 2 * kEntries);
    REQUIRE(s.Peek("c0") != nullptr);
    append(3);
    s.Enforce(101, entries[3]);  // another kept entry: looks, evicts k
    CHECK(cache.eviction_scans() == 2 * kEntries + 1);
    CHECK(s.Peek("c0") == nullptr);
    CHECK(cache.evictions() == 1);
  }
}

TEST_CASE("Clear empties a deleted conversation and pins it until durable",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(1, 1 << 20));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  CachedConversation* c = s.Insert("gone");
  const size_t empty = c->bytes;
  s.Add(c, Msg(1, Role::kSystem, "sys", 5, "u", 3, 0), 2);
  s.Add(c, Msg(2, Role::kUser, "hi", 6, "u", 4, 0), 3);
  s.Clear(c, 8);
  CHECK(c->messages.empty());
  CHECK(c->bytes == empty);
  CHECK(c->complete);
  CHECK(c->first_system == nullptr);
  CHECK(c->pending_lsn == 8);
  CHECK(c->info.conversation_id == "gone");
  CHECK(c->info.message_count == 0);
  CHECK(c->info.tokens_in == 0);
  CHECK(c->info.last_seq == 0);
  CHECK(c->info.user_id.empty());
  CHECK(c->info.first_at_us == 0);
  CHECK(c->info.last_at_us == 0);
  CacheCounters k = s.Counters();
  CHECK(k.conversations == 1);
  CHECK(k.messages == 0);
  CHECK(k.bytes == empty);

  // A clear at a lower lsn does not lower pending_lsn.
  s.Clear(c, 5);
  CHECK(c->pending_lsn == 8);

  // The tombstone is pinned until the delete is durable.
  AddConversation(s, "other", 0);  // over the bound of one conversation
  s.Enforce(7, nullptr);           // "other" is newer; "gone" is pinned
  CHECK(s.Find("gone") == c);      // gone other
  CHECK(s.Find("other") == nullptr);
  CHECK(cache.evictions() == 1);

  // The conversation starts over at seq 1.
  s.Add(c, Msg(1, Role::kUser, "again", 9, "v"), 9);
  CHECK(c->complete);
  CHECK(c->info.message_count == 1);
  CHECK(c->info.user_id == "v");
  CHECK(c->pending_lsn == 9);
}

TEST_CASE("CollectDirty returns entries with undurable writes",
          "[conversation_cache]") {
  CacheLimits limits = OneShard(100, 1 << 20);
  limits.shards = 4;
  ConversationCache cache(limits);
  auto add = [&](const std::string& id, uint64_t lsn) {
    Shard& s = cache.ShardFor(id);
    MutexLock lock(&s.mu);
    AddConversation(s, id, lsn);
  };
  add("a", 3);
  add("b", 0);
  add("c", 7);
  add("d", 5);
  {
    Shard& s = cache.ShardFor("d");
    MutexLock lock(&s.mu);
    s.Clear(s.Find("d"), 9);  // a delete is a write too
  }
  auto dirty = [&](uint64_t durable) {
    std::vector<const CachedConversation*> out;
    for (size_t i = 0; i < cache.shard_count(); ++i) {
      Shard& s = cache.shard(i);
      MutexLock lock(&s.mu);
      s.CollectDirty(durable, &out);
    }
    std::vector<std::string> ids;
    for (const CachedConversation* c : out) ids.push_back(c->id);
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  CHECK(dirty(0) == std::vector<std::string>{"a", "c", "d"});
  CHECK(dirty(2) == std::vector<std::string>{"a", "c", "d"});
  CHECK(dirty(3) == std::vector<std::string>{"c", "d"});
  CHECK(dirty(7) == std::vector<std::string>{"d"});
  CHECK(dirty(9).empty());
}

TEST_CASE("Totals add up the shards' counters", "[conversation_cache]") {
  CacheLimits limits;
  limits.shards = 4;
  ConversationCache cache(limits);
  CHECK(cache.shard_count() == 4);
  uint64_t want_messages = 0;
  uint64_t want_bytes = 0;
  for (int i = 0; i < 20; ++i) {
    std::string id = "conv-" + std::to_string(i);
    Shard& s = cache.ShardFor(id);
    MutexLock lock(&s.mu);
    CachedConversation* c = s.Insert(id);
    want_bytes += EmptyEntryBytes(id.size());
    for (int seq = 1; seq <= i % 5; ++seq) {
      MessagePtr m = Msg(seq, Role::kUser, std::string(seq * 10, 'y'));
      s.Add(c, m, 0);
      want_bytes += CachedMessageBytes(*m);
      ++want_messages;
    }
  }
  CacheCounters sum;
  for (size_t i = 0; i < cache.shard_count(); ++i) {
    Shard& s = cache.shard(i);
    MutexLock lock(&s.mu);
    CacheCounters k = s.Counters();
    sum.conversations += k.conversations;
    sum.messages += k.messages;
    sum.bytes += k.bytes;
  }
  CacheCounters t = cache.Totals();
  CHECK(t.conversations == 20);
  CHECK(t.messages == want_messages);
  CHECK(want_messages == 40);  // 4 x (0 + 1 + 2 + 3 + 4)
  CHECK(t.bytes == want_bytes);
  CHECK(sum.conversations == t.conversations);
  CHECK(sum.messages == t.messages);
  CHECK(sum.bytes == t.bytes);
}

TEST_CASE("Full reports a shard at its bound", "[conversation_cache]") {
  ConversationCache cache(OneShard(2, 1 << 20));
  CHECK_FALSE(cache.Full());
  {
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    AddConversation(s, "a", 0);
  }
  CHECK_FALSE(cache.Full());
  {
    Shard& s = cache.shard(0);
    MutexLock lock(&s.mu);
    AddConversation(s, "b", 0);
  }
  CHECK(cache.Full());

  ConversationCache small(OneShard(100, EmptyEntryBytes(1) + 10));
  {
    Shard& s = small.shard(0);
    MutexLock lock(&s.mu);
    AddConversation(s, "a", 0, 10);
  }
  CHECK(small.Full());
}

TEST_CASE("Counters bumped on each shard are summed over all of them",
          "[conversation_cache]") {
  CacheLimits limits;
  limits.shards = 4;
  ConversationCache cache(limits);
  REQUIRE(cache.shard_count() == 4);
  for (size_t i = 0; i < cache.shard_count(); ++i) {
    Shard& s = cache.shard(i);
    MutexLock lock(&s.mu);
    for (size_t k = 0; k <= i; ++k) s.RecordHit();  // 1 + 2 + 3 + 4
    if (i % 2 == 1) s.RecordMiss();                 // shards 1 and 3
  }
  CHECK(cache.hits() == 10);
  CHECK(cache.misses() == 2);
}

TEST_CASE("Hit, miss and eviction counters", "[conversation_cache]") {
  ConversationCache cache(OneShard(1, 1 << 20));
  CHECK(cache.hits() == 0);
  CHECK(cache.misses() == 0);
  CHECK(cache.evictions() == 0);
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  s.RecordHit();
  s.RecordHit();
  s.RecordHit();
  s.RecordMiss();
  s.RecordMiss();
  CHECK(cache.hits() == 3);
  CHECK(cache.misses() == 2);
  for (int i = 0; i < 5; ++i) {
    CachedConversation* c = AddConversation(s, "c" + std::to_string(i), 0);
    s.Enforce(0, c);
  }
  CHECK(cache.evictions() == 4);
  CHECK(s.Counters().conversations == 1);
  CHECK(s.Find("c4") != nullptr);
  CHECK(cache.hits() == 3);  // Find does not count; the store does
}

TEST_CASE("Prepend adds older durable messages up to the bound",
          "[conversation_cache]") {
  ConversationCache cache(OneShard(10, 1 << 20, /*max_messages=*/5));
  Shard& s = cache.shard(0);
  MutexLock lock(&s.mu);
  CachedConversation* c = s.Insert("c");
  s.Load(c, Stored(8, 10, nullptr));  // seqs 8..10 of 10
  REQUIRE(Seqs(*c) == std::vector<int64_t>{8, 9, 10});
  const size_t bytes_before = c->bytes;

  SECTION("not adjacent: nothing is added") {
    s.Prepend(c, {Msg(5), Msg(6)});
    CHECK(Seqs(*c) == std::vector<int64_t>{8, 9, 10});
    CHECK(c->bytes == bytes_before);
  }
  SECTION("room for two of four: the newest two") {
    MessagePtr m6 = Msg(6);
    MessagePtr m7 = Msg(7);
    s.Prepend(c, {Msg(4), Msg(5), m6, m7});
    CHECK(Seqs(*c) == std::vector<int64_t>{6, 7, 8, 9, 10});
    CHECK(c->bytes ==
          bytes_before + CachedMessageBytes(*m6) + CachedMessageBytes(*m7));
    CHECK(s.Counters().messages == 5);
    CHECK(Lsns(*c) == std::vector<uint64_t>{0, 0, 0, 0, 0});
    CHECK_FALSE(c->complete);
  }
  SECTION("everything down to seq 1 completes the entry") {
    ConversationCache big(OneShard(10, 1 << 20, /*max_messages=*/100));
    Shard& b = big.shard(0);
    MutexLock block(&b.mu);
    CachedConversation* d = b.Insert("d");
    b.Load(d, Stored(8, 10, nullptr));
    std::vector<MessagePtr> older;
    for (int64_t seq = 1; seq <= 7; ++seq) older.push_back(Msg(seq));
    b.Prepend(d, older);
    CHECK(Seqs(*d).size() == 10);
    CHECK(Seqs(*d).front() == 1);
    CHECK(d->complete);
  }
}

// The byte bound is only as good as the charge: an entry's charge must be
// what the allocator really gives it. glibc's own count of bytes in use
// (mallinfo2) before and after filling a cache, for the shapes that matter:
// many short conversations (where per-entry overhead dominates), long ones
// (per-message overhead), and ids too long for the inline buffer.
TEST_CASE("ConversationCache charges what its entries take from the heap",
          "[conversation_cache]") {
#ifndef CONVSTORE_GLIBC_MALLINFO2
  WARN("not glibc's malloc (a sanitizer's, or another libc): not measured");
#else
  struct Shape {
    int conversations;
    int messages;
    size_t id_size;
    size_t content_size;
    size_t content_capacity;  // what a caller's moved-in string may hold
  };
  const Shape shape = GENERATE(
      Shape{20'000, 0, 10, 200, 200},  // empty
      Shape{20'000, 1, 10, 200, 200}, Shape{20'000, 3, 10, 200, 200},
      Shape{20'000, 3, 36, 200, 200},  // UUID ids
      Shape{20'000, 3, 10, 200, 400}, Shape{20'000, 3, 10, 2'000, 2'000},
      Shape{200, 500, 10, 200, 200});
  CAPTURE(shape.conversations, shape.messages, shape.id_size,
          shape.content_size, shape.content_capacity);
  CacheLimits l = OneShard(1'000'000, size_t{1} << 40, 1'000);
  auto cache = std::make_unique<ConversationCache>(l);
  Shard& s = cache->shard(0);
  // In use from the heap, and in blocks of their own (large arrays, such as
  // the map's, are mmap()ed).
  auto in_use = [] {
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
  };
  const size_t before = in_use();
  {
    MutexLock lock(&s.mu);
    for (int i = 0; i < shape.conversations; ++i) {
      std::string id = std::to_string(i);
      id.resize(shape.id_size, 'x');
      CachedConversation* c = s.Insert(id);
      c->shared_id = c->id;  // as the first Append makes it
      for (int seq = 1; seq <= shape.messages; ++seq) {
        auto m = std::make_shared<Message>();
        m->content.reserve(shape.content_capacity);
        m->content.assign(shape.content_size, 'y');
        m->seq = seq;
        s.Add(c, std::move(m), 0);
      }
    }
  }
  const double real = static_cast<double>(in_use() - before);
  size_t charged = 0;
  {
    MutexLock lock(&s.mu);
    charged = s.Counters().bytes;
  }
  CAPTURE(real, charged);
  CHECK(real / static_cast<double>(charged) > 0.9);
  CHECK(real / static_cast<double>(charged) < 1.1);
#endif
}

}  // namespace
}  // namespace convstore::internal
