// Copyright 2026 The convstore Authors.
//
// WritePath: how a record kind other than messages (keys, audit records,
// cache entries, analytics) hands a write to the engine. StoreImpl
// implements it; modules depend only on this interface, so their tests can
// run against a fake.
//
// Thread safety: every method may be called from any thread. Submit assigns
// LSNs in call order per calling thread; a module that needs its records in
// a global order (the audit chain) calls Submit under its own lock.

#ifndef CONVSTORE_SRC_WRITE_PATH_H_
#define CONVSTORE_SRC_WRITE_PATH_H_

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "convstore/options.h"
#include "convstore/status.h"
#include "write_op.h"

namespace convstore::internal {

// The durability class of a write: the public enum (convstore/options.h,
// docs/durability.md), so a module passes Options::durability.<kind> as is.
//  kBatched: waits up to Options::queue_full_wait for room.
//  kSync: then waits until committed (or fails with the writer's error /
//    DeadlineExceeded, the write staying queued).
//  kBestEffort: queued only while the queue is below 3/4 of its bounds;
//    otherwise shed with ResourceExhausted (Stats::best_effort_shed).
using Durability = ::convstore::Durability;

class WritePath {
 public:
  virtual ~WritePath() = default;
  // Reserves `bytes` against the queue bound, gives the write the next LSN
  // and enqueues it. Returns the LSN, or ResourceExhausted when the queue is
  // full, FailedPrecondition once the store is closing, or (kSync) the
  // error that kept the write from becoming durable within `sync_timeout`.
  virtual StatusOr<uint64_t> Submit(
      WritePayload payload, size_t bytes, Durability durability,
      std::chrono::milliseconds sync_timeout = std::chrono::seconds(30)) = 0;
  // As Submit with kSync, for a write whose effect is the point (a purge, a
  // prune): a write the database refused for good is that refusal, where
  // Submit says OK (the dead letter it is set aside as keeps a record's
  // data, but a purge set aside removed nothing).
  virtual StatusOr<uint64_t> SubmitApplied(
      WritePayload payload, size_t bytes,
      std::chrono::milliseconds sync_timeout) = 0;
  // The highest LSN committed so far.
  virtual uint64_t DurableLsn() const = 0;

  // Submit in two steps, for a module that enqueues under a lock of its own
  // (so that its memory order and the LSN order agree) and must not wait
  // for queue room while holding that lock:
  //  1. Reserve(bytes, durability), before locking: waits for room as
  //     Submit does for the class (kSync as kBatched); ResourceExhausted
  //     when there is none (at once, for kBestEffort past 3/4).
  //  2. Under the lock, SubmitReserved(payload, bytes, durability): never
  //     waits for room; the LSN, or FailedPrecondition once the store is
  //     closing (the room is then given back). It does not wait for the
  //     commit: a kSync caller waits itself, after unlocking.
  //  Or CancelReserved(bytes) when the write will not be submitted.
  // `bytes` must be the same in each call for one write.
  virtual Status Reserve(size_t bytes, Durability durability) = 0;
  virtual StatusOr<uint64_t> SubmitReserved(WritePayload payload, size_t bytes,
                                            Durability durability) = 0;
  virtual void CancelReserved(size_t bytes) = 0;

  // Step 1 for a best-effort write that may still turn out to change
  // nothing (a cache Touch of a missing entry, a refused Increment): as
  // Reserve(bytes, kBestEffort), except that a shed (ResourceExhausted) is
  // not counted in Stats::best_effort_shed. The caller calls NoteShed()
  // once it has applied the write without queuing it, and not at all if
  // the write was refused.
  virtual Status ReserveBestEffortUncounted(size_t bytes) = 0;
  virtual void NoteShed() = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_WRITE_PATH_H_
