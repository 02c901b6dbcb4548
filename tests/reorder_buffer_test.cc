// Copyright 2026 The convstore Authors.
//
// ReorderBuffer: hands values out in LSN order whatever order they arrive
// in, holds a value until every smaller LSN has come, grows past its first
// ring without losing or misplacing a held value, refuses a repeated or
// already handed-out LSN, and reports the held value with the smallest LSN.
// Checked against a std::map over random arrival orders.

#include "reorder_buffer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

namespace convstore::internal {
namespace {

// Move-only, like WriteOp, with a payload that shows a value was moved
// whole (a moved-from one has a null `tag`).
struct Item {
  uint64_t lsn = 0;
  std::unique_ptr<uint64_t> tag;
};

Item MakeItem(uint64_t lsn) {
  return Item{lsn, std::make_unique<uint64_t>(lsn)};
}

// Far more than any test here holds.
constexpr size_t kMax = size_t{1} << 20;

// Takes every value that is due; checks each is whole and in order.
std::vector<uint64_t> Drain(ReorderBuffer<Item>* r) {
  std::vector<uint64_t> out;
  while (r->Next() != nullptr) {
    const uint64_t want = r->next_lsn();
    Item it = r->TakeNext();
    REQUIRE(it.lsn == want);
    REQUIRE(it.tag != nullptr);
    REQUIRE(*it.tag == want);
    out.push_back(it.lsn);
  }
  return out;
}

TEST_CASE("ReorderBuffer holds a value until every smaller LSN arrives",
          "[reorder_buffer]") {
  ReorderBuffer<Item> r(10, kMax);
  CHECK(r.empty());
  CHECK(r.Oldest() == nullptr);
  REQUIRE(r.Put(MakeItem(12)));
  REQUIRE(r.Put(MakeItem(11)));
  CHECK(r.Next() == nullptr);  // 10 is missing
  CHECK(Drain(&r).empty());
  CHECK(r.size() == 2);
  REQUIRE(r.Oldest() != nullptr);
  CHECK(r.Oldest()->lsn == 11);
  REQUIRE(r.Put(MakeItem(10)));
  CHECK(r.Oldest()->lsn == 10);
  CHECK(Drain(&r) == std::vector<uint64_t>{10, 11, 12});
  CHECK(r.empty());
  CHECK(r.next_lsn() == 13);
  CHECK(r.Oldest() == nullptr);
}

TEST_CASE("ReorderBuffer refuses an LSN it holds or has handed out",
          "[reorder_buffer]") {
  ReorderBuffer<Item> r(1, kMax);
  REQUIRE(r.Put(MakeItem(2)));
  Item again = MakeItem(2);
  CHECK_FALSE(r.Put(std::move(again)));
  CHECK(again.tag != nullptr);  // left with the caller
  REQUIRE(r.Put(MakeItem(1)));
  CHECK(Drain(&r) == std::vector<uint64_t>{1, 2});
  Item old = MakeItem(2);
  CHECK_FALSE(r.Put(std::move(old)));
  CHECK(old.tag != nullptr);
  CHECK(r.empty());
  CHECK(r.next_lsn() == 3);
}

TEST_CASE("ReorderBuffer refuses an LSN max_slots or more ahead",
          "[reorder_buffer]") {
  constexpr size_t kSlots = ReorderBuffer<Item>::kMinSlots;
  // Rounded up to a power of two.
  ReorderBuffer<Item> r(5, 3 * kSlots);
  CHECK(r.max_slots() == 4 * kSlots);
  Item far = MakeItem(5 + 4 * kSlots);
  CHECK_FALSE(r.Put(std::move(far)));
  CHECK(far.tag != nullptr);
  Item huge = MakeItem(~uint64_t{0});
  CHECK_FALSE(r.Put(std::move(huge)));
  CHECK(r.slots() == kSlots);                    // refused before growing
  REQUIRE(r.Put(MakeItem(5 + 4 * kSlots - 1)));  // the last that fits
  CHECK(r.slots() == 4 * kSlots);
  CHECK(r.Oldest()->lsn == 5 + 4 * kSlots - 1);
  // A huge bound stops at kMaxSlots instead of overflowing.
  ReorderBuffer<Item> big(1, ~size_t{0});
  CHECK(big.max_slots() == ReorderBuffer<Item>::kMaxSlots);
}

TEST_CASE("ReorderBuffer grows past its ring and keeps every held value",
          "[reorder_buffer]") {
  constexpr size_t kSlots = ReorderBuffer<Item>::kMinSlots;
  // Starts where the ring wraps, so held values sit on both sides of slot 0
  // when it grows.
  const uint64_t first = 3 * kSlots - 5;
  ReorderBuffer<Item> r(first, kMax);
  // Everything but `first` arrives, in order, reaching far beyond the
  // ring: it doubles three times, each time holding every value so far.
  const uint64_t n = 5 * kSlots;
  for (uint64_t lsn = first + 1; lsn < first + n; ++lsn) {
    REQUIRE(r.Put(MakeItem(lsn)));
  }
  CHECK(r.slots() == 8 * kSlots);
  CHECK(r.size() == n - 1);
  CHECK(r.Next() == nullptr);
  CHECK(r.Oldest()->lsn == first + 1);
  REQUIRE(r.Put(MakeItem(first)));
  std::vector<uint64_t> want(n);
  std::iota(want.begin(), want.end(), first);
  CHECK(Drain(&r) == want);
  CHECK(r.empty());
}

TEST_CASE("ReorderBuffer matches an ordered map over random arrivals",
          "[reorder_buffer]") {
  std::mt19937_64 rng(7);
  ReorderBuffer<Item> r(1, kMax);
  std::map<uint64_t, bool> held;  // the model: LSNs arrived, not handed out
  uint64_t model_next = 1;
  uint64_t issued = 0;         // LSNs 1..issued exist
  std::vector<uint64_t> late;  // issued, not yet arrived
  for (int round = 0; round < 400; ++round) {
    // A window of new LSNs arrives shuffled, some of it held back a round
    // or more (a producer slow to push), and at times a burst far ahead.
    const uint64_t burst = (round % 50 == 49) ? 3000 : rng() % 200;
    std::vector<uint64_t> fresh(burst);
    std::iota(fresh.begin(), fresh.end(), issued + 1);
    issued += burst;
    std::shuffle(fresh.begin(), fresh.end(), rng);
    std::vector<uint64_t> now;
    for (uint64_t lsn : fresh) (rng() % 10 == 0 ? late : now).push_back(lsn);
    if (rng() % 3 == 0) {
      now.insert(now.end(), late.begin(), late.end());
      late.clear();
    }
    for (uint64_t lsn : now) {
      REQUIRE(r.Put(MakeItem(lsn)));
      held[lsn] = true;
    }
    // The model hands out the contiguous run from model_next.
    std::vector<uint64_t> want;
    while (held.count(model_next) > 0) {
      held.erase(model_next);
      want.push_back(model_next++);
    }
    REQUIRE(Drain(&r) == want);
    REQUIRE(r.next_lsn() == model_next);
    REQUIRE(r.size() == held.size());
    if (held.empty()) {
      REQUIRE(r.Oldest() == nullptr);
    } else {
      REQUIRE(r.Oldest() != nullptr);
      REQUIRE(r.Oldest()->lsn == held.begin()->first);
    }
  }
}

}  // namespace
}  // namespace convstore::internal
