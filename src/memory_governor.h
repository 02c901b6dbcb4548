// Copyright 2026 The convstore Authors.
//
// MemoryGovernor: holds the process's resident memory near
// Options::memory_limit_bytes by moving the conversation cache's byte
// bound. The cache's own accounting counts what it holds; what it cannot
// see is the allocator's slack: pages that keep a few live 200-byte chunks
// among freed ones after millions of evict-and-reload cycles, which no
// trim returns (docs/benchmarks.md, "Soak RSS"). The governor measures the
// result instead of estimating it.
//
// Each check reads the process's RSS and keeps a high-water mark of it
// that falls by `decay` per check. A reading past 95% of the limit lowers
// the bound by how far it is above both that 95% mark and the high-water
// mark, never below `floor`: a new high by what it adds, a reading that
// stays at (or returns to) a recent high by at most the decay since, so
// while RSS stays above 95% the bound keeps falling slowly (the store's
// decay: 0.1% of the limit per check, about 24% a minute). The evictions
// leave freed chunks that later messages reuse instead of new pages; RSS
// swings by tens of MiB within seconds (the releaser returns free pages,
// and reusing free chunks touches them again), and cutting by each swing
// would mostly punch holes in pages that stay resident. Once the mark is
// under 85% of the limit the bound rises by a quarter of the room (from
// the mark to 85%) per check, up to the configured bound. The 5% under the
// limit absorbs what grows between two checks (measured in
// docs/benchmarks.md, "Memory limit"). `apply` runs at every check, so
// entries that could not be evicted at one (writes not yet durable) go at
// a later one.
//
// Thread safety: Start and Stop from one thread (Open and Close); Tick runs
// on the governor's thread (tests call it directly on a governor not
// started); bound() from any thread.

#ifndef CONVSTORE_SRC_MEMORY_GOVERNOR_H_
#define CONVSTORE_SRC_MEMORY_GOVERNOR_H_

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include "periodic_thread.h"

namespace convstore::internal {

// The process's resident set in bytes (/proc/self/statm), or 0 where it
// cannot be read.
size_t ProcessRssBytes();

class MemoryGovernor {
 public:
  struct Config {
    size_t limit = 0;       // RSS to stay under; 0: the governor is off
    size_t configured = 0;  // the bound with no pressure (cache_max_bytes)
    size_t floor = 0;       // lowest bound it sets
    size_t decay = 0;       // what the RSS high-water mark falls per check
    std::chrono::milliseconds interval{250};
  };
  // `rss` reads resident memory (ProcessRssBytes outside tests); `apply`
  // puts the bound in force and evicts down to it (at every check).
  MemoryGovernor(Config config, std::function<size_t()> rss,
                 std::function<void(size_t)> apply,
                 std::shared_ptr<spdlog::logger> log);
  ~MemoryGovernor() { Stop(); }
  MemoryGovernor(const MemoryGovernor&) = delete;
  MemoryGovernor& operator=(const MemoryGovernor&) = delete;

  // Starts the checks unless the limit is zero.
  void Start();
  void Stop() { thread_.Stop(); }
  // One check; returns the bound in force after it.
  size_t Tick();

  size_t bound() const { return bound_.load(std::memory_order_relaxed); }

 private:
  const Config config_;
  const std::function<size_t()> rss_;
  const std::function<void(size_t)> apply_;
  const std::shared_ptr<spdlog::logger> log_;
  std::atomic<size_t> bound_;
  size_t high_water_ = 0;  // Tick's own: highest RSS, less decay per check
  PeriodicThread thread_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_MEMORY_GOVERNOR_H_
