// Copyright 2026 The convstore Authors.

#include "memory_governor.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace convstore::internal {

size_t ProcessRssBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0;
  unsigned long resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<size_t>(resident) * static_cast<size_t>(page)
                  : 0;
}

MemoryGovernor::MemoryGovernor(Config config, std::function<size_t()> rss,
                               std::function<void(size_t)> apply,
                               std::shared_ptr<spdlog::logger> log)
    : config_(config),
      rss_(std::move(rss)),
      apply_(std::move(apply)),
      log_(std::move(log)),
      bound_(config.configured) {}

void MemoryGovernor::Start() {
  if (config_.limit == 0) return;
  thread_.Start("convstore-mlim", config_.interval, [this] { Tick(); });
}

size_t MemoryGovernor::Tick() {
  const size_t bound = bound_.load(std::memory_order_relaxed);
  const size_t rss = rss_();
  if (rss == 0 || config_.limit == 0) return bound;
  const size_t floor = std::min(config_.floor, config_.configured);
  // The law and why: memory_governor.h.
  const size_t high = config_.limit - config_.limit / 20;
  const size_t low = config_.limit - config_.limit / 20 * 3;
  const size_t mark =
      high_water_ > config_.decay ? high_water_ - config_.decay : 0;
  size_t next = bound;
  if (rss > high && rss > mark) {
    const size_t cut = rss - std::max(mark, high);
    next = bound > floor + cut ? bound - cut : floor;
  } else if (std::max(rss, mark) < low && bound < config_.configured) {
    next =
        std::min(config_.configured, bound + (low - std::max(rss, mark)) / 4);
  }
  high_water_ = std::max(rss, mark);
  // Every check, not only on a change: entries that could not be evicted
  // at the last one (writes not yet durable) may go now.
  apply_(next);
  if (next != bound) {
    bound_.store(next, std::memory_order_relaxed);
    log_->log(next == floor ? spdlog::level::warn : spdlog::level::debug,
              "resident memory {} MiB against a limit of {} MiB: cache bound "
              "{} -> {} MiB{}",
              rss >> 20, config_.limit >> 20, bound >> 20, next >> 20,
              next == floor ? " (its floor)" : "");
  }
  return next;
}

}  // namespace convstore::internal
