// Copyright 2026 The convstore Authors.
//
// MemoryReleaser: a background thread that, every interval in which the
// store freed memory (conversations evicted from the cache), asks the
// allocator to return its free pages to the operating system (glibc's
// malloc_trim). Without it, glibc keeps the chunks that millions of
// evict-and-reload cycles free in its per-thread arenas, and the process's
// resident memory grows past the store's configured bounds while the live
// data stays within them (docs/benchmarks.md, "Soak RSS").
//
// The call is process-wide and walks the allocator's free lists while
// holding one arena lock at a time (its duration is logged at debug level;
// not measured on its own yet); it runs off the Append and read paths. With
// another allocator (no glibc) the thread is not started.
//
// Thread safety: Start and Stop from one thread (the store's Open and
// Close); releases() from any thread.

#ifndef CONVSTORE_SRC_MEMORY_RELEASER_H_
#define CONVSTORE_SRC_MEMORY_RELEASER_H_

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "periodic_thread.h"

namespace convstore::internal {

class MemoryReleaser {
 public:
  // `churn` returns a count that grows whenever memory was freed in bulk
  // (the cache's evictions and pinned drops); a tick that sees no growth does
  // nothing.
  MemoryReleaser(std::chrono::milliseconds interval,
                 std::function<uint64_t()> churn,
                 std::shared_ptr<spdlog::logger> log);
  ~MemoryReleaser();
  MemoryReleaser(const MemoryReleaser&) = delete;
  MemoryReleaser& operator=(const MemoryReleaser&) = delete;

  // Starts the thread unless the interval is zero or the allocator is not
  // glibc's.
  void Start();
  // Stops and joins the thread; idempotent.
  void Stop() { thread_.Stop(); }
  // One tick: releases if `churn` grew since the last release. The thread
  // calls it; tests call it directly, on a releaser not started. Returns
  // whether it released.
  bool Tick();

  uint64_t releases() const {
    return releases_.load(std::memory_order_relaxed);
  }

 private:
  const std::chrono::milliseconds interval_;
  const std::function<uint64_t()> churn_;
  const std::shared_ptr<spdlog::logger> log_;
  uint64_t last_churn_ = 0;  // the thread's (or a test's) own
  std::atomic<uint64_t> releases_{0};
  PeriodicThread thread_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_MEMORY_RELEASER_H_
