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

#include "convstore/status.h"
#include "write_op.h"

namespace convstore::internal {

// The durability class of a write (docs/durability.md).
enum class Durability {
  // Queued; durable within the loss window (max_flush_delay, batch size).
  // Waits up to Options::queue_full_wait for room when the queue is full.
  kBatched,
  // Queued, then Submit waits until it is committed (or fails with the
  // writer's error / DeadlineExceeded, the write staying queued).
  kSync,
  // Queued only if there is room right now; otherwise shed with
  // ResourceExhausted (counted), never waiting. For caches.
  kBestEffort,
};

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
  // The highest LSN committed so far.
  virtual uint64_t DurableLsn() const = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_WRITE_PATH_H_
