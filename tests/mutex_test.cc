// Copyright 2026 The convstore Authors.
//
// Mutex: Lock's spin-then-block path keeps mutual exclusion under
// contention, falls back to blocking behind a long holder, and CondVar
// still works with it.

#include "mutex.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <vector>

namespace convstore::internal {
namespace {

TEST_CASE("Contending threads never hold the lock at the same time",
          "[mutex]") {
  Mutex mu;
  int64_t counter = 0;  // unsynchronized except by `mu`
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  constexpr int kThreads = 4;
  constexpr int kRounds = 50'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        MutexLock lock(&mu);
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        ++counter;
        inside.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(overlaps.load() == 0);
  CHECK(counter == int64_t{kThreads} * kRounds);
}

TEST_CASE("A waiter behind a long holder blocks, then gets the lock",
          "[mutex]") {
  Mutex mu;
  std::atomic<bool> acquired{false};
  mu.Lock();
  std::thread waiter([&] {
    MutexLock lock(&mu);
    acquired.store(true);
  });
  // Far longer than the spin: the waiter must have gone to sleep in the
  // blocking lock without taking the mutex.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(acquired.load());
  mu.Unlock();
  waiter.join();
  CHECK(acquired.load());
}

TEST_CASE("CondVar waits and wakes with the spinning lock", "[mutex]") {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    const bool ok =
        cv.AwaitUntil(&mu, DeadlineAfter(std::chrono::seconds(10)), [&] {
          mu.AssertHeld();
          return ready;
        });
    CHECK(ok);
  }
  signaller.join();
}

}  // namespace
}  // namespace convstore::internal
