// Copyright 2026 The convstore Authors.
//
// InflightCounter: Idle() sees every call still inside, from any thread
// and whichever stripe it took.

#include "inflight_counter.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace convstore::internal {
namespace {

TEST_CASE("Idle until a call enters, and again once it exits",
          "[inflight_counter]") {
  InflightCounter c;
  CHECK(c.Idle());
  const size_t a = c.Enter();
  CHECK_FALSE(c.Idle());
  const size_t b = c.Enter();  // same thread, same stripe, counted twice
  CHECK(a == b);
  c.Exit(a);
  CHECK_FALSE(c.Idle());
  c.Exit(b);
  CHECK(c.Idle());
}

TEST_CASE("Calls inside on many threads keep it busy until the last exits",
          "[inflight_counter]") {
  InflightCounter c;
  constexpr int kThreads = 40;  // more than the stripes: some share
  std::atomic<int> entered{0};
  std::atomic<int> released{0};  // threads with index < released may exit
  std::atomic<int> exited{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const size_t stripe = c.Enter();
      entered.fetch_add(1);
      while (released.load() <= i) std::this_thread::yield();
      c.Exit(stripe);
      exited.fetch_add(1);
    });
  }
  while (entered.load() < kThreads) std::this_thread::yield();
  CHECK_FALSE(c.Idle());
  // All but the last exit: whichever stripe it shares, it is still seen.
  released.store(kThreads - 1);
  while (exited.load() < kThreads - 1) std::this_thread::yield();
  CHECK_FALSE(c.Idle());
  released.store(kThreads);
  for (std::thread& t : threads) t.join();
  CHECK(c.Idle());
}

}  // namespace
}  // namespace convstore::internal
