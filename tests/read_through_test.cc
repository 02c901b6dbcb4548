// Copyright 2026 The convstore Authors.
//
// How the store reads conversations that are not (wholly) in memory: an
// Append loads only a few newest messages, History loads what it needs and
// keeps what it read, and answers stay complete and in order throughout.

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "backend_testutil.h"
#include "convstore/convstore.h"
#include "forwarding_backend.h"
#include "store_impl.h"
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

// Counts what History reads through: LoadMessages calls and the messages
// they return.
class CountingBackend final : public internal::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  Status LoadMessages(std::string_view id, int64_t after_seq,
                      int64_t before_seq, size_t max_newest,
                      std::vector<MessagePtr>* out) override {
    Status s = ForwardingBackend::LoadMessages(id, after_seq, before_seq,
                                               max_newest, out);
    ++calls;
    read += out->size();
    return s;
  }
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> read{0};
};

// The store file in `dir` opened through a CountingBackend with nothing in
// memory.
std::unique_ptr<Store> OpenCounted(const TempDir& dir,
                                   CountingBackend** counting) {
  Options o = TestOptions(dir);
  o.warm_conversations = 0;
  auto backend =
      std::make_unique<CountingBackend>(internal::backend_test::OpenBackend(o));
  *counting = backend.get();
  StatusOr<std::unique_ptr<Store>> opened =
      internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  INFO(opened.status().ToString());
  REQUIRE(opened.ok());
  return std::move(opened).value();
}

// ColdStore's file with `n` messages of 10 tokens each (a system prompt
// first), reopened through a CountingBackend with nothing in memory.
std::unique_ptr<Store> CountedColdStore(const TempDir& dir, int n,
                                        CountingBackend** counting) {
  {
    auto s = OpenOrDie(TestOptions(dir));
    REQUIRE(s->Append("long", Msg(Role::kSystem, "rules", 5, 5)).ok());
    for (int i = 2; i <= n; ++i) {
      REQUIRE(s->Append("long", Msg(Role::kUser, "m" + std::to_string(i), 5, 5))
                  .ok());
    }
    REQUIRE(s->Close().ok());
  }
  return OpenCounted(dir, counting);
}

// Retention of CountedColdStore's 3,000 messages down to the newest 1,000
// and the system prompt: {1, 2001..3000}, with a gap after the prompt.
void KeepNewest1000(Store* s) {
  MessageRetention keep;
  keep.max_messages_per_conversation = 1000;
  StatusOr<RetentionReport> pruned = s->PruneMessages(keep);
  REQUIRE(pruned.ok());
  CHECK(pruned->messages_removed == 1999);
}

// History of "long" with `h` answers the same from memory as from the file.
void SameAsFile(Store* s, HistoryOptions h) {
  INFO("after " << h.after_seq << " limit " << h.limit << " last_n " << h.last_n
                << " budget " << h.token_budget << " pin " << h.pin_system);
  std::vector<int64_t> mem = Seqs(Hist(s, "long", h));
  h.from_storage = true;
  CHECK(mem == Seqs(Hist(s, "long", h)));
}

TEST_CASE("A read-through reads only what the window can take",
          "[read_through]") {
  // Under the shard lock: reading a long conversation's whole older part
  // for one page stalled every conversation of that shard, and paging
  // forward through n messages read O(n^2) of them.
  TempDir dir;
  CountingBackend* counting = nullptr;
  auto s = CountedColdStore(dir, 3000, &counting);
  REQUIRE(Seqs(Hist(s.get(), "long", {.last_n = 10, .pin_system = false})) ==
          Range(2991, 3000));
  const uint64_t read0 = counting->read;

  SECTION("a forward page") {
    CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 0, .limit = 20})) ==
          Range(1, 20));
    CHECK(counting->read - read0 == 20);
    CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 1500, .limit = 25})) ==
          Range(1501, 1525));
    CHECK(counting->read - read0 == 45);
    // A page that runs into the cached part reads up to it.
    CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 2980, .limit = 15})) ==
          Range(2981, 2995));
    CHECK(counting->read - read0 == 55);
  }
  SECTION("a token budget") {
    // 30 messages of 10 tokens: one read of the newest 64 older ones.
    CHECK(Seqs(Hist(s.get(), "long",
                    {.token_budget = 300, .pin_system = false})) ==
          Range(2971, 3000));
    CHECK(counting->read - read0 == 64);
    // 500: reads of 64, 128, 256 and 512 older ones.
    counting->read = 0;
    CHECK(Seqs(Hist(s.get(), "long",
                    {.token_budget = 5000, .pin_system = false})) ==
          Range(2501, 3000));
    CHECK(counting->read <= 64 + 128 + 256 + 512);
  }
  SECTION("last_n") {
    CHECK(Seqs(Hist(s.get(), "long", {.last_n = 40, .pin_system = false})) ==
          Range(2961, 3000));
    CHECK(counting->read - read0 == 30);
  }
}

TEST_CASE("last_n over cached tool results reads one message more and not all",
          "[read_through]") {
  // With exactly last_n cached and a tool result first, the window asks
  // whether that result's caller is older; the read-through then read the
  // whole older part of the conversation under the shard lock.
  TempDir dir;
  {
    auto s = OpenOrDie(TestOptions(dir));
    for (int i = 1; i <= 2000; ++i) {
      REQUIRE(
          s->Append("long", Msg(Role::kUser, "m" + std::to_string(i))).ok());
    }
    Message call = Msg(Role::kAssistant, "call");
    call.tool_call_id = "c";
    REQUIRE(s->Append("long", call).ok());  // seq 2001
    for (int i = 0; i < 2; ++i) {
      Message r = Msg(Role::kTool, "result");
      r.tool_call_id = "c";
      REQUIRE(s->Append("long", r).ok());  // seqs 2002, 2003
    }
    REQUIRE(s->Close().ok());
  }
  CountingBackend* counting = nullptr;
  auto s = OpenCounted(dir, &counting);
  // Loads the newest 2: both tool results; their caller is older.
  HistoryOptions last2{.last_n = 2, .pin_system = false};
  CHECK(Seqs(Hist(s.get(), "long", last2)).empty());
  CHECK(counting->read == 1);
  // The caller is in the window with last_n = 3.
  CHECK(Seqs(Hist(s.get(), "long", {.last_n = 3, .pin_system = false})) ==
        std::vector<int64_t>{2001, 2002, 2003});
}

TEST_CASE("A forward page over a retention gap reads through the gap",
          "[read_through]") {
  TempDir dir;
  CountingBackend* counting = nullptr;
  auto s = CountedColdStore(dir, 3000, &counting);
  KeepNewest1000(s.get());
  REQUIRE(Seqs(Hist(s.get(), "long", {.last_n = 10, .pin_system = false})) ==
          Range(2991, 3000));
  std::vector<int64_t> want = {1};
  for (int64_t seq = 2001; seq <= 2019; ++seq) want.push_back(seq);
  CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 0, .limit = 20})) == want);
  CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 1, .limit = 3})) ==
        Range(2001, 2003));
  CHECK(Seqs(Hist(s.get(), "long", {.after_seq = 2990, .limit = 30})) ==
        Range(2991, 3000));
  // Every page agrees with the file.
  for (int64_t after : {0, 1, 2, 1999, 2000, 2500, 2989, 2999, 3000}) {
    for (size_t limit : {1, 7, 500, 4000}) {
      SameAsFile(s.get(), {.after_seq = after, .limit = limit});
    }
  }
}

TEST_CASE("A conversation reloaded over a retention gap reads through once",
          "[read_through]") {
  // Retention that keeps the prompt leaves a gap after it; a reloaded entry
  // caches the run after the gap. A History reaching past it used to read
  // from SQLite on every call.
  TempDir dir;
  CountingBackend* counting = nullptr;
  {
    auto s = CountedColdStore(dir, 3000, &counting);
    KeepNewest1000(s.get());
    REQUIRE(s->Close().ok());
  }
  auto s = OpenCounted(dir, &counting);
  std::vector<int64_t> want = {1};
  for (int64_t seq = 2001; seq <= 3000; ++seq) want.push_back(seq);
  CHECK(Seqs(Hist(s.get(), "long")) == want);
  const uint64_t calls = counting->calls;
  CHECK(calls >= 1);
  // From memory now, and the same as the file for every window.
  auto same_as_file = [&](HistoryOptions h) { SameAsFile(s.get(), h); };
  for (int64_t after : {0, 1, 2, 2000, 2001, 2999}) {
    for (size_t last_n : {0, 1, 999, 1000, 1001, 5000}) {
      for (bool pin : {true, false}) {
        same_as_file({.after_seq = after, .last_n = last_n, .pin_system = pin});
      }
    }
  }
  for (int64_t budget : {5, 10, 9990, 10000, 10010, 1'000'000}) {
    for (bool pin : {true, false}) {
      same_as_file({.token_budget = budget, .pin_system = pin});
    }
  }
  CHECK(counting->calls == calls);
  // An append trims the front of the run (the per-conversation bound is
  // 1,000): the entry no longer knows what lies before it.
  REQUIRE(s->Append("long", Msg(Role::kUser, "new", 5, 5)).ok());
  want.push_back(3001);
  CHECK(Seqs(Hist(s.get(), "long")) == want);
  CHECK(counting->calls > calls);
  same_as_file({});
}

TEST_CASE("Close waits for a read through in progress", "[read_through]") {
  // History checked closed_ without counting itself in: Close ran its
  // final checkpoint while the read held a snapshot (so the WAL was not
  // truncated) and returned while the read still used the file.
  TempDir dir;
  Options o = TestOptions(dir);
  o.warm_conversations = 0;
  o.busy_timeout = std::chrono::milliseconds(200);  // Close's wait for it
  {
    auto store = OpenOrDie(o);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(store->Append("cold", Msg(Role::kUser, "m")).ok());
    }
    REQUIRE(store->Close().ok());
  }
  auto backend = internal::backend_test::OpenBackend(o);
  std::atomic<bool> armed{false};
  std::atomic<bool> inside{false};
  std::atomic<bool> release{false};
  backend->SetSnapshotHookForTest([&] {
    if (!armed.exchange(false)) return;
    inside = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  StatusOr<std::unique_ptr<Store>> opened =
      internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  REQUIRE(opened.ok());
  std::unique_ptr<Store> store = std::move(opened).value();
  // Frames in the WAL, so that the read's snapshot holds some.
  REQUIRE(store->Append("warm", Msg(Role::kUser, "w")).ok());
  REQUIRE(store->Flush().ok());
  armed = true;
  StatusOr<std::vector<MessagePtr>> read = Status::Internal("not run");
  std::atomic<bool> read_returned{false};
  std::thread reading([&] {
    read = store->History("cold");
    read_returned = true;
  });
  while (!inside) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread releasing([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    release = true;
  });
  StatusOr<CloseReport> r = store->Close();
  const bool read_before_close = read_returned.load();
  releasing.join();
  reading.join();
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(read_before_close);
  CHECK(r->wal_truncated);
  INFO(read.status().ToString());
  REQUIRE(read.ok());
  CHECK(read->size() == 5);
}

}  // namespace
}  // namespace convstore
