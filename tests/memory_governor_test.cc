// Copyright 2026 The convstore Authors.
//
// MemoryGovernor (src/memory_governor.h): the bound it sets for each
// resident-memory reading, the RSS reader itself, and a store whose cache
// is held down by Options::memory_limit_bytes and still reads complete.

#include "memory_governor.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"
#include "logging.h"
#include "testutil.h"

namespace convstore::internal {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

std::shared_ptr<spdlog::logger> Log() {
  Options o;
  o.log_level = LogLevel::kError;
  return MakeLogger(o);
}

// A governor on a fake RSS reading, recording what it applies.
struct Harness {
  explicit Harness(size_t limit, size_t decay = 0) {
    MemoryGovernor::Config c;
    c.limit = limit;
    c.configured = 100 * kMiB;
    c.floor = 25 * kMiB;
    c.decay = decay;
    governor = std::make_unique<MemoryGovernor>(
        c, [this] { return rss; }, [this](size_t b) { Applied(b); }, Log());
  }
  void Applied(size_t bound) {
    ++calls;
    const size_t last = applied.empty() ? 100 * kMiB : applied.back();
    if (bound != last) applied.push_back(bound);
  }
  size_t rss = 0;
  int calls = 0;                // apply calls: one per check with a reading
  std::vector<size_t> applied;  // each change of the bound
  std::unique_ptr<MemoryGovernor> governor;
};

TEST_CASE(
    "the governor cuts the bound by each new RSS high past 95% of "
    "the limit",
    "[memory]") {
  Harness h(200 * kMiB);  // acts over 190 MiB, gives back under 170 MiB
  h.rss = 150 * kMiB;     // low, but the bound is already at its maximum
  CHECK(h.governor->Tick() == 100 * kMiB);
  h.rss = 185 * kMiB;  // between the marks: nothing
  CHECK(h.governor->Tick() == 100 * kMiB);
  CHECK(h.applied.empty());
  // First reading past 190 MiB: the whole excess over it comes off.
  h.rss = 210 * kMiB;
  CHECK(h.governor->Tick() == 80 * kMiB);
  // High but no new high (no decay here): no cut.
  CHECK(h.governor->Tick() == 80 * kMiB);
  h.rss = 205 * kMiB;
  CHECK(h.governor->Tick() == 80 * kMiB);
  // A swing down and back up to the old high cuts nothing either.
  h.rss = 120 * kMiB;
  CHECK(h.governor->Tick() == 80 * kMiB);
  h.rss = 210 * kMiB;
  CHECK(h.governor->Tick() == 80 * kMiB);
  // A new high: what it adds comes off.
  h.rss = 215 * kMiB;
  CHECK(h.governor->Tick() == 75 * kMiB);
  // Never below the floor.
  h.rss = 400 * kMiB;
  CHECK(h.governor->Tick() == 25 * kMiB);
  h.rss = 500 * kMiB;
  CHECK(h.governor->Tick() == 25 * kMiB);
  CHECK(h.applied == std::vector<size_t>{80 * kMiB, 75 * kMiB, 25 * kMiB});
  CHECK(h.governor->bound() == 25 * kMiB);
}

TEST_CASE(
    "the governor raises the bound once its RSS high-water mark is "
    "under 85% of the limit",
    "[memory]") {
  // The mark falls 200 MiB per check: each reading is the mark at the next.
  Harness h(200 * kMiB, 200 * kMiB);
  h.rss = 260 * kMiB;
  CHECK(h.governor->Tick() == 30 * kMiB);
  // Between 85% and 95% of the limit: held.
  h.rss = 180 * kMiB;
  CHECK(h.governor->Tick() == 30 * kMiB);
  // 20 MiB under the 170 MiB mark: a quarter of it back.
  h.rss = 150 * kMiB;
  CHECK(h.governor->Tick() == 35 * kMiB);
  h.rss = 10 * kMiB;
  CHECK(h.governor->Tick() == 75 * kMiB);
  // Back to the configured bound, not past it.
  CHECK(h.governor->Tick() == 100 * kMiB);
  CHECK(h.governor->Tick() == 100 * kMiB);
  CHECK(h.applied ==
        std::vector<size_t>{30 * kMiB, 35 * kMiB, 75 * kMiB, 100 * kMiB});

  // Without decay the mark stays at the high: a dip gives nothing back.
  Harness held(200 * kMiB);
  held.rss = 260 * kMiB;
  CHECK(held.governor->Tick() == 30 * kMiB);
  held.rss = 10 * kMiB;
  CHECK(held.governor->Tick() == 30 * kMiB);
  CHECK(held.governor->Tick() == 30 * kMiB);
}

TEST_CASE("RSS held above 95% of the limit keeps cutting by the decay",
          "[memory]") {
  Harness h(200 * kMiB, 1 * kMiB);
  h.rss = 200 * kMiB;
  CHECK(h.governor->Tick() == 90 * kMiB);  // 10 MiB over the 190 MiB mark
  // The same reading again is 1 MiB over the fallen high-water mark.
  CHECK(h.governor->Tick() == 89 * kMiB);
  CHECK(h.governor->Tick() == 88 * kMiB);
  // Under the fallen mark: nothing.
  h.rss = 196 * kMiB;
  CHECK(h.governor->Tick() == 88 * kMiB);
  CHECK(h.calls == 4);  // apply runs at every check, changed or not
}

TEST_CASE("a governor without a limit or a reading changes nothing",
          "[memory]") {
  Harness off(0);
  off.rss = 500 * kMiB;
  CHECK(off.governor->Tick() == 100 * kMiB);
  off.governor->Start();  // no thread without a limit
  off.governor->Stop();
  Harness unreadable(200 * kMiB);
  unreadable.rss = 0;
  CHECK(unreadable.governor->Tick() == 100 * kMiB);
  CHECK(off.calls == 0);
  CHECK(unreadable.calls == 0);
}

TEST_CASE("ProcessRssBytes sees memory the process touches", "[memory]") {
  const size_t before = ProcessRssBytes();
  REQUIRE(before > 0);
  constexpr size_t kTouch = 64 * kMiB;
  std::unique_ptr<char[]> block(new char[kTouch]);
  std::memset(block.get(), 1, kTouch);
  const size_t after = ProcessRssBytes();
  CHECK(after >= before + kTouch / 2);
  CHECK(block[kTouch - 1] == 1);
}

TEST_CASE(
    "a store over its memory limit shrinks its cache and reads stay "
    "complete",
    "[memory]") {
  test::TempDir dir;
  Options o = test::TestOptions(dir);
  o.cache_max_bytes = 8 * kMiB;
  o.cache_shards = 4;
  // Any test process is over one byte: the governor takes the bound to its
  // floor, a quarter of cache_max_bytes.
  o.memory_limit_bytes = 1;
  auto store = test::OpenOrDie(o);
  const std::string content(1000, 'm');
  for (int c = 0; c < 40; ++c) {
    for (int i = 0; i < 100; ++i) {
      REQUIRE(store
                  ->Append("conv-" + std::to_string(c),
                           test::Msg(Role::kUser, content))
                  .ok());
    }
  }
  REQUIRE(store->Flush(std::chrono::seconds(30)).ok());
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Stats st = store->GetStats();
  while ((st.cache_bound_bytes > 2 * kMiB || st.cached_bytes > 2 * kMiB) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    st = store->GetStats();
  }
  CHECK(st.cache_bound_bytes == 2 * kMiB);
  CHECK(st.cached_bytes <= 2 * kMiB);
  CHECK(st.cache_evictions > 0);
  for (int c = 0; c < 40; ++c) {
    auto h = test::Hist(store.get(), "conv-" + std::to_string(c),
                        {.last_n = 100, .pin_system = false});
    REQUIRE(h.size() == 100);
    CHECK(h.front()->seq == 1);
    CHECK(h.back()->seq == 100);
  }
}

}  // namespace
}  // namespace convstore::internal
