// Copyright 2026 The convstore Authors.

#include "memory_releaser.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <utility>

#include "clock.h"

namespace convstore::internal {
namespace {

constexpr bool kCanRelease =
#if defined(__GLIBC__)
    true;
#else
    false;
#endif

void ReleaseFreePages() {
#if defined(__GLIBC__)
  // Pad 0: keep nothing spare at the heap tops; free pages inside the
  // heaps are returned too (madvise DONTNEED).
  (void)malloc_trim(0);
#endif
}

}  // namespace

MemoryReleaser::MemoryReleaser(std::chrono::milliseconds interval,
                               std::function<uint64_t()> churn,
                               std::shared_ptr<spdlog::logger> log)
    : interval_(interval), churn_(std::move(churn)), log_(std::move(log)) {}

MemoryReleaser::~MemoryReleaser() { Stop(); }

void MemoryReleaser::Start() {
  if (interval_.count() <= 0 || !kCanRelease) return;
  last_churn_ = churn_();
  thread_.Start("convstore-trim", interval_, [this] { Tick(); });
}

bool MemoryReleaser::Tick() {
  const uint64_t churn = churn_();
  if (churn == last_churn_) return false;
  last_churn_ = churn;
  const int64_t t0 = MonoMicros();
  ReleaseFreePages();
  releases_.fetch_add(1, std::memory_order_relaxed);
  log_->debug("returned free heap pages to the system in {} us",
              MonoMicros() - t0);
  return true;
}

}  // namespace convstore::internal
