// Copyright 2026 The convstore Authors.
//
// RingDeque: order and indexing across wrap-around, growth and shrinking,
// element lifetimes (a popped element is released at once), and that an
// empty deque holds no buffer. Checked against std::deque over a random
// sequence of operations.

#include "ring_deque.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <vector>

namespace convstore::internal {
namespace {

std::vector<int> Contents(const RingDeque<int>& d) {
  std::vector<int> out;
  for (int v : d) out.push_back(v);
  return out;
}

TEST_CASE("RingDeque keeps order across wrap-around and growth",
          "[ring_deque]") {
  RingDeque<int> d;
  CHECK(d.empty());
  CHECK(d.capacity() == 0);
  for (int i = 0; i < 3; ++i) d.push_back(i);
  CHECK(d.capacity() == RingDeque<int>::kMinCapacity);
  d.pop_front();   // head moves to slot 1
  d.push_back(3);  // fills slot 3
  d.push_back(4);  // wraps to slot 0
  CHECK(d.capacity() == 4);
  CHECK(Contents(d) == std::vector<int>{1, 2, 3, 4});
  d.push_back(5);  // full: grows, oldest first
  CHECK(d.capacity() == 8);
  CHECK(Contents(d) == std::vector<int>{1, 2, 3, 4, 5});
  d.push_front(0);
  d.push_front(-1);
  CHECK(Contents(d) == std::vector<int>{-1, 0, 1, 2, 3, 4, 5});
  CHECK(d.front() == -1);
  CHECK(d.back() == 5);
  CHECK(d[3] == 2);
  d[3] = 20;
  CHECK(d[3] == 20);
}

TEST_CASE("RingDeque names the slot the next push_back fills", "[ring_deque]") {
  RingDeque<int> d;
  CHECK(d.next_back_slot() == nullptr);  // no buffer yet
  d.push_back(0);
  d.pop_front();
  CHECK(d.next_back_slot() == nullptr);  // freed again
  for (int i = 0; i < 3; ++i) d.push_back(i);
  d.pop_front();
  d.pop_front();  // head at slot 2: the next pushes wrap around
  for (int i = 3; i < 5; ++i) {
    const int* slot = d.next_back_slot();
    REQUIRE(slot != nullptr);
    d.push_back(i);
    CHECK(slot == &d.back());
  }
  d.push_back(5);
  CHECK(d.size() == d.capacity());
  CHECK(d.next_back_slot() == nullptr);  // the next push reallocates
}

TEST_CASE("RingDeque shrinks as it drains and frees its buffer when empty",
          "[ring_deque]") {
  RingDeque<int> d;
  for (int i = 0; i < 64; ++i) d.push_back(i);
  CHECK(d.capacity() == 64);
  while (d.size() > 16) d.pop_front();
  CHECK(d.capacity() == 32);  // a quarter in use: halved
  CHECK(d.front() == 48);
  while (d.size() > 1) d.pop_front();
  CHECK(d.capacity() == RingDeque<int>::kMinCapacity);
  CHECK(d.front() == 63);
  d.pop_front();
  CHECK(d.empty());
  CHECK(d.capacity() == 0);
  d.push_front(7);  // usable again
  CHECK(Contents(d) == std::vector<int>{7});
  d.clear();
  CHECK(d.capacity() == 0);
  CHECK(d.begin() == d.end());
}

TEST_CASE("RingDeque releases a popped element at once", "[ring_deque]") {
  RingDeque<std::shared_ptr<int>> d;
  auto a = std::make_shared<int>(1);
  auto b = std::make_shared<int>(2);
  d.push_back(a);
  d.push_back(b);
  CHECK(a.use_count() == 2);
  d.pop_front();
  CHECK(a.use_count() == 1);  // not held in the slot it left
  CHECK(b.use_count() == 2);
  d.clear();
  CHECK(b.use_count() == 1);
}

TEST_CASE("RingDeque matches std::deque over random operations",
          "[ring_deque]") {
  std::mt19937 rng(42);
  RingDeque<int> d;
  std::deque<int> want;
  int next = 0;
  for (int step = 0; step < 200'000; ++step) {
    // Phases of 5,000 steps, mostly pushes then mostly pops, so the deque
    // grows to a few thousand elements, wraps, and shrinks again.
    const bool growing = (step / 5'000) % 2 == 0;
    uint32_t op = rng() % 10;
    if (!growing) op = op < 3 ? op * 2 : 6 + op % 3;  // pops 70%
    if (op < 4) {
      d.push_back(next);
      want.push_back(next++);
    } else if (op < 6) {
      d.push_front(next);
      want.push_front(next++);
    } else if (op < 9 && !want.empty()) {
      d.pop_front();
      want.pop_front();
    } else if (op == 9 && rng() % 5000 == 0) {
      d.clear();
      want.clear();
    }
    REQUIRE(d.size() == want.size());
    // At most four slots per element once allocated.
    REQUIRE(d.capacity() <=
            std::max<size_t>(RingDeque<int>::kMinCapacity, 4 * d.size()));
    if (!want.empty()) {
      REQUIRE(d.front() == want.front());
      REQUIRE(d.back() == want.back());
      const size_t i = rng() % want.size();
      REQUIRE(d[i] == want[i]);
    } else {
      REQUIRE(d.capacity() == 0);
    }
  }
  std::vector<int> all(want.begin(), want.end());
  CHECK(Contents(d) == all);
}

}  // namespace
}  // namespace convstore::internal
