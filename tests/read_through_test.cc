// Copyright 2026 The convstore Authors.
//
// How the store reads conversations that are not (wholly) in memory: an
// Append loads only a few newest messages, History loads what it needs and
// keeps what it read, and answers stay complete and in order throughout.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::Hist;
using test::Msg;
using test::OpenOrDie;
using test::Seqs;
using test::TempDir;
using test::TestOptions;

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t s = from; s <= to; ++s) out.push_back(s);
  return out;
}

// A file with conversation "long" of `n` messages (a system prompt first),
// reopened with nothing in memory.
std::unique_ptr<Store> ColdStore(const TempDir& dir, int n, Options* o) {
  *o = TestOptions(dir);
  {
    auto s = OpenOrDie(*o);
    REQUIRE(s->Append("long", Msg(Role::kSystem, "rules")).ok());
    for (int i = 2; i <= n; ++i) {
      REQUIRE(
          s->Append("long", Msg(Role::kUser, "m" + std::to_string(i))).ok());
    }
    REQUIRE(s->Close().ok());
  }
  o->warm_conversations = 0;
  return OpenOrDie(*o);
}

TEST_CASE("an Append to a cold conversation loads only its newest messages",
          "[read_through]") {
  TempDir dir;
  Options o;
  auto s = ColdStore(dir, 300, &o);
  REQUIRE(s->GetStats().cached_messages == 0);
  StatusOr<AppendResult> r = s->Append("long", Msg(Role::kUser, "new"));
  REQUIRE(r.ok());
  CHECK(r->seq == 301);
  const uint64_t cached = s->GetStats().cached_messages;
  CHECK(cached > 1);
  CHECK(cached < 100);
  // Reads are complete all the same, with the system prompt pinned.
  CHECK(Seqs(Hist(s.get(), "long")) == Range(1, 301));
  std::vector<MessagePtr> last = Hist(s.get(), "long", {.last_n = 3});
  CHECK(Seqs(last) == std::vector<int64_t>{1, 299, 300, 301});
  CHECK(last.front()->content == "rules");
  CHECK(last.back()->content == "new");
}

TEST_CASE("A History that loads a cold conversation counts one miss, no hit",
          "[read_through]") {
  TempDir dir;
  Options o;
  auto s = ColdStore(dir, 200, &o);
  const Stats cold = s->GetStats();
  // Loaded and answered from what was loaded.
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 10, .pin_system = false})) ==
        Range(191, 200));
  const Stats loaded = s->GetStats();
  CHECK(loaded.cache_misses == cold.cache_misses + 1);
  CHECK(loaded.cache_hits == cold.cache_hits);
  // Answered from memory.
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 5, .pin_system = false})) ==
        Range(196, 200));
  const Stats warm = s->GetStats();
  CHECK(warm.cache_misses == loaded.cache_misses);
  CHECK(warm.cache_hits == loaded.cache_hits + 1);
  // Past the cached part: read through, one miss.
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 50, .pin_system = false})) ==
        Range(151, 200));
  const Stats older = s->GetStats();
  CHECK(older.cache_misses == warm.cache_misses + 1);
  CHECK(older.cache_hits == warm.cache_hits);
}

TEST_CASE("History keeps what it read through", "[read_through]") {
  TempDir dir;
  Options o;
  auto s = ColdStore(dir, 200, &o);
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 10, .pin_system = false})) ==
        Range(191, 200));
  CHECK(s->GetStats().cached_messages == 10);
  // Wider: the older part is read and kept in front of the cached part.
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 50, .pin_system = false})) ==
        Range(151, 200));
  CHECK(s->GetStats().cached_messages == 50);
  const uint64_t misses = s->GetStats().cache_misses;
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 40, .pin_system = false})) ==
        Range(161, 200));
  CHECK(s->GetStats().cache_misses == misses);  // served from memory
  // Paging back past the cached part still works.
  CHECK(Seqs(Hist(s.get(), "long",
                  {.after_seq = 100, .last_n = 5, .pin_system = false})) ==
        Range(196, 200));
  CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 0, .limit = 3})) ==
        Range(1, 3));
}

TEST_CASE("the per-conversation bound caps what a read-through keeps",
          "[read_through]") {
  TempDir dir;
  Options o;
  {
    auto cold = ColdStore(dir, 120, &o);
    REQUIRE(cold->Close().ok());
  }
  o.cache_max_messages_per_conversation = 30;
  auto s = OpenOrDie(o);
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 100, .pin_system = false})) ==
        Range(21, 120));
  CHECK(s->GetStats().cached_messages <= 30);
  StatusOr<AppendResult> r = s->Append("long", Msg(Role::kUser, "x"));
  REQUIRE(r.ok());
  CHECK(r->seq == 121);
  CHECK(Seqs(Hist(s.get(), "long")) == Range(1, 121));
}

}  // namespace
}  // namespace convstore
