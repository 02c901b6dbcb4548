// Copyright 2026 The convstore Authors.
//
// PeriodicThread (src/periodic_thread.h): ticks repeatedly on a thread with
// the given name, Stop wakes and joins it at once, a zero interval starts
// nothing.

#include "periodic_thread.h"

#include <pthread.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace convstore::internal {
namespace {

using std::chrono::milliseconds;

TEST_CASE("PeriodicThread runs its tick repeatedly, named, until stopped",
          "[periodic]") {
  std::atomic<int> ticks{0};
  PeriodicThread t;
  std::atomic<bool> named{false};
  t.Start("convstore-test", milliseconds(1), [&] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    named = std::string(name) == "convstore-test";
    ++ticks;
  });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ticks.load() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  CHECK(ticks.load() >= 3);
  CHECK(named.load());  // the tick runs on a thread with the given name
  t.Stop();
  const int after_stop = ticks.load();
  std::this_thread::sleep_for(milliseconds(20));
  CHECK(ticks.load() == after_stop);  // joined: no tick after Stop
  t.Stop();                           // idempotent
}

TEST_CASE(
    "PeriodicThread: Stop does not wait out the interval; zero starts "
    "nothing",
    "[periodic]") {
  std::atomic<int> ticks{0};
  {
    PeriodicThread t;
    t.Start("convstore-test", std::chrono::hours(1), [&] { ++ticks; });
    const auto t0 = std::chrono::steady_clock::now();
    t.Stop();
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  }
  PeriodicThread zero;
  zero.Start("convstore-test", milliseconds(0), [&] { ++ticks; });
  std::this_thread::sleep_for(milliseconds(20));
  CHECK(ticks.load() == 0);
  PeriodicThread never_started;
  never_started.Stop();
}

}  // namespace
}  // namespace convstore::internal
