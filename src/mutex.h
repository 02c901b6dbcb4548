// Copyright 2026 The convstore Authors.
//
// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with
// clang thread-safety annotations, so ABSL_GUARDED_BY and friends can be
// checked.
//
// Why not absl::Mutex: Debian builds abseil without ThreadSanitizer
// instrumentation, so TSan cannot see absl::Mutex's synchronization and
// reports false races on everything it guards; std::mutex goes through
// pthread, which TSan intercepts. It is also cheaper uncontended (about 15 ns
// against 48 ns for Debian's absl::Mutex with deadlock detection, per
// shared/MEASUREMENTS.md).
//
// Lock spins briefly before it blocks. glibc's default mutex sleeps in the
// kernel at the first sign of contention, and a futex wait and wake cost
// microseconds, many times the critical sections here (a shard's map probe,
// a list splice: 50-500 ns). With two threads on different shards of the
// same table, that sleep set the p99 (docs/benchmarks.md, "Spinning before
// blocking"). The spin is bounded (kSpinTries polls: 1.8-2.8 us measured
// on the AMD EPYC hosts we test on), so a holder that was preempted costs a
// waiter that much CPU before it sleeps.
//
// Thread safety: that is the point of the file.

#ifndef CONVSTORE_SRC_MUTEX_H_
#define CONVSTORE_SRC_MUTEX_H_

#include <absl/base/thread_annotations.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace convstore::internal {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    if (mu_.try_lock()) return;
    for (int i = 0; i < kSpinTries; ++i) {
      CpuRelax();
      if (mu_.try_lock()) return;
    }
    mu_.lock();
  }
  // Takes the lock only if it is free at once (no spin, no wait).
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return mu_.try_lock();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis the caller holds the lock (no run-time check).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  static constexpr int kSpinTries = 64;
  static void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  using Clock = std::chrono::steady_clock;

  void SignalAll() { cv_.notify_all(); }

  // Releases `mu` while waiting; returns with it held. False on timeout.
  // Wakes spuriously like any condition variable: re-check the condition.
  bool WaitUntil(Mutex* mu, Clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    bool woke = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();  // still held; ownership stays with the caller
    return woke;
  }

  // Waits until pred() holds (checked with `mu` held) or the deadline
  // passes; returns pred().
  template <typename Pred>
  bool AwaitUntil(Mutex* mu, Clock::time_point deadline, Pred pred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!pred()) {
      if (Clock::now() >= deadline) return pred();
      WaitUntil(mu, deadline);
    }
    return true;
  }

 private:
  std::condition_variable cv_;
};

// A steady-clock deadline `d` from now, saturating instead of overflowing
// for huge durations.
template <typename Duration>
CondVar::Clock::time_point DeadlineAfter(Duration d) {
  auto now = CondVar::Clock::now();
  auto max_wait = std::chrono::hours(24 * 365);
  if (d > max_wait) return now + max_wait;
  return now + std::chrono::duration_cast<CondVar::Clock::duration>(d);
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_MUTEX_H_
