// Copyright 2026 The convstore Authors.
//
// WriteQueue: the bounded hand-off between Append (many producer threads)
// and the background writer (one consumer).
//
// Thread safety: Reserve/Cancel/Push may be called from any thread;
// PopBulk only from the single writer thread; Release from the writer once
// the ops it popped are committed or set aside.
//
// Invariants:
//  1. Reserved room is held from Reserve until Release (after commit, or
//     once the writer sets the op aside) or Cancel (the op was never
//     pushed), so the bounds cap the writes that are acknowledged but not
//     durable - the crash loss window in count.
//  2. The underlying moodycamel queue is FIFO per producer only; callers
//     must not rely on cross-thread order (the writer restores LSN order).
//  3. Nothing is dropped: Reserve either succeeds or returns
//     ResourceExhausted (counted in rejections()).

#ifndef CONVSTORE_SRC_WRITE_QUEUE_H_
#define CONVSTORE_SRC_WRITE_QUEUE_H_

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "convstore/status.h"
#include "mutex.h"
#include "write_op.h"

namespace convstore::internal {

class WriteQueue {
 public:
  WriteQueue(size_t max_items, size_t max_bytes);
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  // Takes room for one op of `bytes`, waiting up to `wait` when the queue is
  // full. An op larger than max_bytes is admitted only into an empty queue
  // (so it cannot starve). ResourceExhausted when no room came in time.
  Status Reserve(size_t bytes, std::chrono::milliseconds wait);
  // Takes room for a best-effort op only while the queue (counting it)
  // stays within 3/4 of both bounds; never waits. ResourceExhausted
  // otherwise (counted in shed(), not in rejections()), so best-effort
  // writes are the first to go and leave the last quarter to others.
  Status ReserveBestEffort(size_t bytes);
  // As ReserveBestEffort, but a shed is not counted: the caller counts it
  // with NoteShed() once the write it would have queued took effect.
  Status ReserveBestEffortUncounted(size_t bytes);
  void NoteShed() { shed_.fetch_add(1, std::memory_order_relaxed); }
  // Gives back room taken by Reserve for an op that will not be pushed.
  void Cancel(size_t bytes);
  // Enqueues an op whose room was reserved. Lock-free. Aborts the process
  // if the queue cannot allocate (see write_queue.cc).
  void Push(WriteOp op);
  // Writer: moves up to `max` queued ops into `out` (appended). Returns the
  // number moved.
  size_t PopBulk(std::vector<WriteOp>* out, size_t max);
  // Writer: returns the room of `items` committed ops totalling `bytes`.
  void Release(size_t items, size_t bytes);

  // seq_cst: see TryReserve.
  size_t items() const { return items_.load(std::memory_order_seq_cst); }
  size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  size_t items_high_water() const {
    return items_hw_.load(std::memory_order_relaxed);
  }
  size_t bytes_high_water() const {
    return bytes_hw_.load(std::memory_order_relaxed);
  }
  uint64_t rejections() const {
    return rejections_.load(std::memory_order_relaxed);
  }
  uint64_t shed() const { return shed_.load(std::memory_order_relaxed); }

 private:
  // Takes room if the queue then holds at most max_items/max_bytes.
  bool TryReserve(size_t bytes, size_t max_items, size_t max_bytes);

  // Slots allocated up front (80 bytes each, 1.3 MB); the queue allocates
  // more blocks as it fills, up to max_items, and keeps them for reuse.
  static constexpr size_t kPreallocatedItems = 16384;

  const size_t max_items_;
  const size_t max_bytes_;
  moodycamel::ConcurrentQueue<WriteOp> queue_;
  moodycamel::ConsumerToken consumer_token_;
  std::atomic<size_t> items_{0};
  std::atomic<size_t> bytes_{0};
  std::atomic<size_t> items_hw_{0};
  std::atomic<size_t> bytes_hw_{0};
  std::atomic<uint64_t> rejections_{0};
  std::atomic<uint64_t> shed_{0};
  // Producers waiting for room sleep here; Release wakes them.
  Mutex wait_mu_;
  CondVar room_cv_;
  std::atomic<int> waiters_{0};
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_WRITE_QUEUE_H_
