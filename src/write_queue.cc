// Copyright 2026 The convstore Authors.

#include "write_queue.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <utility>

namespace convstore::internal {
namespace {

void RaiseHighWater(std::atomic<size_t>* hw, size_t value) {
  size_t cur = hw->load(std::memory_order_relaxed);
  while (value > cur &&
         !hw->compare_exchange_weak(cur, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

WriteQueue::WriteQueue(size_t max_items, size_t max_bytes)
    : max_items_(max_items == 0 ? 1 : max_items),
      max_bytes_(max_bytes == 0 ? 1 : max_bytes),
      queue_(std::min<size_t>(max_items_, kPreallocatedItems)),
      consumer_token_(queue_) {}

bool WriteQueue::TryReserve(size_t bytes, size_t max_items, size_t max_bytes) {
  // seq_cst, as items() and Writer::sleeping(): with the writer's store of
  // sleeping_ and its load of items(), the two sides form a Dekker pair, so
  // either the producer sees the writer asleep and nudges it, or the writer
  // sees the full batch before it sleeps. (On x86 the same instructions as
  // acq_rel and relaxed.)
  size_t items = items_.fetch_add(1, std::memory_order_seq_cst) + 1;
  size_t total = bytes_.fetch_add(bytes, std::memory_order_acq_rel) + bytes;
  // An oversized op may enter an otherwise empty queue.
  bool fits = items <= max_items && (total <= max_bytes || items == 1);
  if (!fits) {
    items_.fetch_sub(1, std::memory_order_acq_rel);
    bytes_.fetch_sub(bytes, std::memory_order_acq_rel);
    return false;
  }
  RaiseHighWater(&items_hw_, items);
  RaiseHighWater(&bytes_hw_, total);
  return true;
}

Status WriteQueue::Reserve(size_t bytes, std::chrono::milliseconds wait) {
  if (TryReserve(bytes, max_items_, max_bytes_)) return Status::OK();
  if (wait.count() > 0) {
    auto deadline = DeadlineAfter(wait);
    MutexLock lock(&wait_mu_);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    bool ok = false;
    for (;;) {
      if (TryReserve(bytes, max_items_, max_bytes_)) {
        ok = true;
        break;
      }
      if (CondVar::Clock::now() >= deadline) break;
      // Release() signals under wait_mu_ after freeing room; the 5 ms cap
      // bounds the cost of a wakeup lost to a concurrent TryReserve.
      room_cv_.WaitUntil(&wait_mu_,
                         std::min(deadline, CondVar::Clock::now() +
                                                std::chrono::milliseconds(5)));
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    if (ok) return Status::OK();
  }
  rejections_.fetch_add(1, std::memory_order_relaxed);
  return Status::ResourceExhausted(
      "write queue full (" + std::to_string(items()) + " writes, " +
      std::to_string(this->bytes()) +
      " bytes not yet durable): the database is not keeping up or is failing;"
      " retry later or raise Options::queue_max_items/queue_max_bytes");
}

Status WriteQueue::ReserveBestEffort(size_t bytes) {
  Status s = ReserveBestEffortUncounted(bytes);
  if (!s.ok()) NoteShed();
  return s;
}

Status WriteQueue::ReserveBestEffortUncounted(size_t bytes) {
  if (TryReserve(bytes, max_items_ / 4 * 3, max_bytes_ / 4 * 3)) {
    return Status::OK();
  }
  return Status::ResourceExhausted(
      "best-effort write shed: the write queue is past 3/4 of its bounds (" +
      std::to_string(items()) + " writes, " + std::to_string(this->bytes()) +
      " bytes not yet durable)");
}

void WriteQueue::Cancel(size_t bytes) { Release(1, bytes); }

void WriteQueue::Push(WriteOp op) {
  const uint64_t lsn = op.lsn;
  if (!queue_.enqueue(std::move(op))) {
    // Only an allocation failure gets here. The op holds an LSN the writer
    // must commit before any later one; losing it would stall every later
    // write silently, so stop loudly instead.
    std::fprintf(stderr,
                 "convstore: out of memory enqueuing write lsn %llu; "
                 "aborting\n",
                 static_cast<unsigned long long>(lsn));
    std::abort();
  }
}

size_t WriteQueue::PopBulk(std::vector<WriteOp>* out, size_t max) {
  // Appends as it dequeues: no `max` default-constructed slots to fill and
  // destroy on every call (the writer polls often, mostly finding few ops).
  return queue_.try_dequeue_bulk(consumer_token_, std::back_inserter(*out),
                                 max);
}

void WriteQueue::Release(size_t items, size_t bytes) {
  items_.fetch_sub(items, std::memory_order_acq_rel);
  bytes_.fetch_sub(bytes, std::memory_order_acq_rel);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    MutexLock lock(&wait_mu_);
    room_cv_.SignalAll();
  }
}

}  // namespace convstore::internal
