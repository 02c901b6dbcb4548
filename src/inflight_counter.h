// Copyright 2026 The convstore Authors.
//
// InflightCounter: how many API calls are inside the store, for Close to
// wait on, counted on separate cache lines so that threads calling at once
// do not bounce one line between cores on every call.
//
// The protocol it serves (StoreImpl): a call does Enter(), then reads the
// closed flag and leaves at once if it is set; Close sets the flag, then
// waits for Idle(). All of these are seq_cst, so in their single total
// order a call whose Enter() follows the flag's store sees the flag, and a
// call that entered before it is counted in whichever stripe it used when
// Idle() reads that stripe. Idle() may see a stripe at 0 while a later
// call enters it; that call then sees the flag.
//
// Thread safety: every method may be called from any thread.

#ifndef CONVSTORE_SRC_INFLIGHT_COUNTER_H_
#define CONVSTORE_SRC_INFLIGHT_COUNTER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace convstore::internal {

class InflightCounter {
 public:
  // Counts the calling thread in; pass the result to Exit.
  size_t Enter() {
    const size_t stripe = ThreadStripe();
    stripes_[stripe].n.fetch_add(1, std::memory_order_seq_cst);
    return stripe;
  }
  void Exit(size_t stripe) {
    stripes_[stripe].n.fetch_sub(1, std::memory_order_seq_cst);
  }
  // True if no call was inside when each stripe was read.
  bool Idle() const {
    for (const Stripe& s : stripes_) {
      if (s.n.load(std::memory_order_seq_cst) != 0) return false;
    }
    return true;
  }

 private:
  static constexpr size_t kStripes = 16;
  struct alignas(64) Stripe {
    std::atomic<int64_t> n{0};
  };

  // Threads take stripes round-robin in the order they first call in.
  static size_t ThreadStripe() {
    static std::atomic<size_t> next{0};
    thread_local const size_t stripe =
        next.fetch_add(1, std::memory_order_relaxed) % kStripes;
    return stripe;
  }

  std::array<Stripe, kStripes> stripes_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_INFLIGHT_COUNTER_H_
