// Copyright 2026 The convstore Authors.
//
// Writer: the one background thread that moves acknowledged writes from the
// WriteQueue into the database, one transaction per batch, strictly in LSN
// order.
//
// Thread safety: Wake, Nudge, WaitDurable, Stop (once), and the accessors
// may be called from any thread. The reorder buffer and the current batch
// belong to the writer thread alone.
//
// Invariants:
//  1. durable_lsn only grows, and every op with lsn <= durable_lsn is
//     committed (or, for a record the database rejects for good, counted in
//     writes_failed and logged - never silently dropped). A pushed write
//     whose LSN the reorder buffer refuses (taken twice, or far outside its
//     window: a bug before the queue) is set aside the same way.
//  2. Ops are committed in LSN order with no gaps: an op waits in the
//     reorder buffer until every smaller LSN has been pulled. Append
//     reserves queue room before it takes an LSN, so every LSN handed out is
//     eventually pushed.
//  3. A batch that fails with a transient error is retried as a whole,
//     with capped exponential backoff and jitter, until it commits or Stop's
//     deadline passes. After retry_budget of failures the first error of the
//     episode becomes sticky (Health, Flush, Close report it) until a commit
//     succeeds. Only a record whose content the database refuses
//     (InvalidArgument) is set aside: counted in writes_failed, logged, and
//     kept as a dead letter (table, else file; see dead_letter.h).
//  4. Queue room is released only after commit (or once a write is set
//     aside), so the queue bound also bounds what a crash can lose.
//  5. No exception leaves the writer thread. Running out of memory in a
//     backend call is a retryable error (the backend rolls back; see
//     Guarded in writer.cc). Elsewhere (Pull, the writer's own error texts
//     and log lines) Run catches it: batch_, inbox_ and reorder_ still hold
//     every op not committed or set aside, and it tries again after a
//     backoff, with ResourceExhausted as the sticky error until a commit
//     succeeds. In SetAside the op is counted in writes_failed.

#ifndef CONVSTORE_SRC_WRITER_H_
#define CONVSTORE_SRC_WRITER_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/time/time.h>
#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "convstore/options.h"
#include "convstore/status.h"
#include "latency_histogram.h"
#include "mutex.h"
#include "reorder_buffer.h"
#include "storage_backend.h"
#include "write_queue.h"

namespace convstore::internal {

struct WriterCounters {
  uint64_t batches_committed = 0;
  uint64_t rows_committed = 0;
  uint64_t writes_failed = 0;
  uint64_t commit_errors = 0;
  uint64_t retries = 0;
  uint64_t dead_letters = 0;          // rejected writes set aside
  uint64_t dead_letters_in_file = 0;  // of those, into the file
  int64_t commit_p50_us = 0;
  int64_t commit_p99_us = 0;
  int64_t e2d_p50_us = 0;
  int64_t e2d_p99_us = 0;
};

class Writer {
 public:
  // `first_lsn` is the LSN the first write of this session will carry (one
  // past the last committed).
  Writer(StorageBackend* backend, WriteQueue* queue, const Options& options,
         std::shared_ptr<spdlog::logger> log, uint64_t first_lsn);
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer();

  void Start();
  // Asks for every op up to `lsn` to be committed without waiting for
  // max_flush_delay.
  void Wake(uint64_t lsn);
  // Cheap hint from producers that a full batch is waiting.
  void Nudge();
  // seq_cst: see WriteQueue::TryReserve.
  bool sleeping() const { return sleeping_.load(std::memory_order_seq_cst); }
  // Deadlines are absl::Time for callers' convenience; waits run on the
  // steady clock.
  // OK once durable_lsn >= lsn; the sticky error if the writer is degraded
  // (while degraded it first asks for an immediate retry and returns that
  // attempt's outcome);
  // FailedPrecondition if it stopped first; DeadlineExceeded at `deadline`.
  Status WaitDurable(uint64_t lsn, absl::Time deadline);
  // For a write whose effect is the point (a purge): WatchRefusal(lsn)
  // before the write is pushed makes the writer remember why the database
  // refused it (NoteRefused);
  // TakeRefusal(lsn) after WaitDurable returns that error (OK if the write
  // committed, or has not been handled yet) and forgets the LSN. Every
  // watched LSN must be taken. Out of memory, WatchRefusal watches nothing
  // (it is called between taking an LSN and pushing it, and never throws).
  void WatchRefusal(uint64_t lsn) noexcept;
  Status TakeRefusal(uint64_t lsn);
  // Called on the writer thread for each write the database refused for
  // good, after its dead letter and before durable_lsn passes it, so that
  // memory can forget what it refused (a delete); not for a write set
  // aside for arriving out of order. Must not wait for the writer; an
  // exception from it is logged. Set before Start.
  void OnSetAside(std::function<void(const WriteOp&)> fn) {
    on_set_aside_ = std::move(fn);
  }
  // Commits everything up to `final_lsn`, then stops the thread. Gives up
  // at `deadline`. Returns OK if all of it was committed.
  Status Stop(uint64_t final_lsn, absl::Time deadline);

  // True once Stop has returned: durable_lsn is final.
  bool stopped() {
    MutexLock lock(&mu_);
    return stopped_;
  }
  uint64_t durable_lsn() const {
    return durable_lsn_.load(std::memory_order_acquire);
  }
  // Monotonic micros of the oldest write pulled but not yet durable, or 0.
  int64_t oldest_pending_mono_us() const {
    return oldest_pending_.load(std::memory_order_relaxed);
  }
  Status health();
  WriterCounters counters();

 private:
  void Run();
  // Pulls queued ops into reorder_ and moves the contiguous run into batch_
  // (up to the batch bounds). Returns how many it took off the queue.
  size_t Pull();
  enum class Outcome { kCommitted, kRejected, kGaveUp };
  // Applies `ops` as one transaction, retrying transient failures with
  // backoff (and turning a long episode into the sticky error). kRejected:
  // the database refuses the content for good; kGaveUp: Stop's deadline
  // passed while failing. *error holds the last failure.
  Outcome ApplyWithRetry(std::span<const WriteOp> ops, int64_t* commit_us,
                         Status* error);
  // Backend upkeep after a commit; failures are logged once per episode.
  void Maintain();
  // Commits batch_. False if it gave up because Stop's deadline passed.
  bool CommitBatch();
  // Commits batch_ one op at a time after it was rejected for good, so one
  // bad record cannot block the rest. False as CommitBatch.
  bool CommitIsolated();
  // Sets aside a write the database refused for good: the dead_letters
  // table, else the dead-letter file, else (logged) only counted.
  // Never throws: out of memory on the way counts the op in writes_failed
  // only (logged), as when neither the table nor the file takes it.
  void SetAside(const WriteOp& op, const Status& error);
  // For a write the database refused (not one set aside for arriving out
  // of order, whose first copy may still commit): records the refusal for
  // a watcher (WatchRefusal) and calls the OnSetAside hook. Never throws.
  void NoteRefused(const WriteOp& op, const Status& error);
  // SetAside's work: *saved if the op was kept, *to_file if in the file
  // (both set before it logs).
  void TrySetAside(const WriteOp& op, const Status& error, bool* saved,
                   bool* to_file);
  // Sets aside a write reorder_ refused (its LSN taken twice, or far outside
  // the window: a bug before the queue), counts it in writes_failed and
  // releases its queue room, so it is neither committed twice nor lost.
  void SetAsideUnordered(WriteOp op);
  void MarkDurable(std::span<const WriteOp> ops, int64_t commit_us,
                   uint64_t failed);
  // Sleeps for the retry backoff; false if Stop's deadline passed.
  bool Backoff(int attempt);
  bool StopDeadlinePassed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A commit succeeded (a batch, or a dead letter into the database): the
  // sticky error, if any, is over, and the log says so once.
  void ClearSticky() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  StorageBackend* const backend_;
  WriteQueue* const queue_;
  const Options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::thread thread_;

  // Writer thread only.
  std::vector<WriteOp> inbox_;
  ReorderBuffer<WriteOp> reorder_;  // pulled ops not yet in batch_
  std::vector<WriteOp> batch_;
  size_t batch_bytes_ = 0;
  bool maintain_failing_ = false;
  std::mt19937_64 rng_;
  int64_t failing_since_us_ = 0;  // start of the current failure episode
  Status first_error_;            // its first error

  std::atomic<uint64_t> durable_lsn_;
  std::atomic<int64_t> oldest_pending_{0};
  std::atomic<bool> sleeping_{false};

  Mutex mu_;
  CondVar wake_cv_;     // the writer sleeps on it; Wake/Nudge/Stop signal
  CondVar durable_cv_;  // WaitDurable sleeps on it; commits and errors signal
  uint64_t want_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Set by a WaitDurable while degraded: cut the current backoff short.
  bool retry_now_ ABSL_GUARDED_BY(mu_) = false;
  // Commit attempts started, and the number of the last one that failed.
  std::atomic<uint64_t> attempts_started_{0};
  uint64_t last_failed_attempt_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t final_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  CondVar::Clock::time_point stop_deadline_ ABSL_GUARDED_BY(mu_) =
      CondVar::Clock::time_point::max();
  Status sticky_ ABSL_GUARDED_BY(mu_);
  // sticky_ is the writer running out of memory in its own work: a later
  // turn of the loop that gets through ends it (a commit may not follow
  // while nothing is queued).
  bool sticky_from_oom_ ABSL_GUARDED_BY(mu_) = false;
  WriterCounters counters_ ABSL_GUARDED_BY(mu_);
  std::function<void(const WriteOp&)> on_set_aside_;  // OnSetAside
  // Watched LSNs and, once set aside, why (WatchRefusal).
  absl::flat_hash_map<uint64_t, Status> refusals_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram commit_hist_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram e2d_hist_ ABSL_GUARDED_BY(mu_);
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_WRITER_H_
