// Copyright 2026 The convstore Authors.
//
// MemoryReleaser (src/memory_releaser.h): releases only after churn, runs
// on its own thread at its interval, and stops cleanly.

#include "memory_releaser.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "convstore/options.h"
#include "logging.h"

namespace convstore::internal {
namespace {

using std::chrono::milliseconds;

std::shared_ptr<spdlog::logger> Log() {
  Options o;
  o.log_level = LogLevel::kError;
  return MakeLogger(o);
}

TEST_CASE("MemoryReleaser releases only when the churn count grew",
          "[memory]") {
  std::atomic<uint64_t> evictions{5};
  MemoryReleaser r(
      milliseconds(0), [&] { return evictions.load(); }, Log());
  r.Start();        // interval 0: no thread; Tick still works for the caller
  CHECK(r.Tick());  // 5 is new against the initial 0
  CHECK_FALSE(r.Tick());
  CHECK(r.releases() == 1);
  evictions = 6;
  CHECK(r.Tick());
  CHECK_FALSE(r.Tick());
  CHECK(r.releases() == 2);
  r.Stop();
  r.Stop();  // idempotent
}

TEST_CASE("MemoryReleaser's thread releases after churn and stops promptly",
          "[memory]") {
  std::atomic<uint64_t> evictions{0};
  auto r = std::make_unique<MemoryReleaser>(
      milliseconds(5), [&] { return evictions.load(); }, Log());
  r->Start();
  std::this_thread::sleep_for(milliseconds(50));
  CHECK(r->releases() == 0);  // no churn, no release
  evictions = 100;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (r->releases() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
#if defined(__GLIBC__)
  CHECK(r->releases() == 1);
#else
  CHECK(r->releases() == 0);  // no thread without glibc
#endif
  // Stop wakes the thread out of its wait rather than after the interval.
  auto slow = std::make_unique<MemoryReleaser>(
      std::chrono::hours(1), [&] { return evictions.load(); }, Log());
  slow->Start();
  const auto t0 = std::chrono::steady_clock::now();
  slow->Stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  r->Stop();
}

}  // namespace
}  // namespace convstore::internal
