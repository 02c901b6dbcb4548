// Copyright 2026 The convstore Authors.

#include "writer.h"

#include <absl/time/clock.h>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <variant>

#include "clock.h"
#include "dead_letter.h"
#include "thread_name.h"

namespace convstore::internal {
namespace {

// Ops pulled from the queue per PopBulk call.
constexpr size_t kPullMax = 4096;
// How long the writer sleeps while a smaller LSN is still being pushed.
constexpr std::chrono::microseconds kGapWait(200);

// Converts a wall-clock absl deadline to a steady-clock one.
CondVar::Clock::time_point ToSteady(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) {
    return DeadlineAfter(std::chrono::hours(24 * 365));
  }
  absl::Duration left = deadline - absl::Now();
  if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
  return DeadlineAfter(absl::ToChronoMicroseconds(left));
}

bool Retryable(const Status& s) {
  // Only a record the database refuses by its content (constraint, too big,
  // type mismatch) is poison. Everything else - busy, I/O error, disk full,
  // even corruption - says nothing about the records, so they are kept and
  // retried rather than dropped.
  return !s.IsInvalidArgument();
}

// Runs a call into the backend. The StorageBackend contract is a Status,
// never an exception, but an allocation can still fail inside a call
// (std::bad_alloc), and an exception leaving the writer thread would end
// the process (std::terminate). It becomes a retryable error instead: the
// backend has rolled its transaction back (SqliteBackend's
// WriterExceptionGuard) and the writer keeps the ops. The messages fit
// std::string's inline buffer, so making them cannot run out of memory in
// turn.
template <typename F>
Status Guarded(const std::shared_ptr<spdlog::logger>& log, const char* call,
               F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    log->error("out of memory in the storage backend's {}", call);
    return Status::ResourceExhausted("out of memory");
  } catch (const std::exception& e) {
    log->error("the storage backend's {} threw: {}", call, e.what());
    return Status::Internal("backend threw");
  } catch (...) {
    log->error("the storage backend's {} threw", call);
    return Status::Internal("backend threw");
  }
}

}  // namespace

Writer::Writer(StorageBackend* backend, WriteQueue* queue,
               const Options& options, std::shared_ptr<spdlog::logger> log,
               uint64_t first_lsn)
    : backend_(backend),
      queue_(queue),
      options_(options),
      log_(std::move(log)),
      // No pushed write's LSN lies queue_max_items or more above the next
      // one due (ReorderBuffer); twice that leaves a margin.
      reorder_(first_lsn, 2 * std::max<size_t>(options.queue_max_items, 1)),
      rng_(std::random_device{}()),
      durable_lsn_(first_lsn - 1) {
  // Pull's dequeue then never allocates (see there).
  inbox_.reserve(kPullMax);
}

Writer::~Writer() {
  if (thread_.joinable()) {
    (void)Stop(0, absl::Now());
  }
}

void Writer::Start() {
  thread_ = std::thread([this] { Run(); });
  NameThread(thread_, "convstore-wr");
}

void Writer::Wake(uint64_t lsn) {
  MutexLock lock(&mu_);
  want_lsn_ = std::max(want_lsn_, lsn);
  wake_ = true;
  wake_cv_.SignalAll();
}

void Writer::Nudge() {
  MutexLock lock(&mu_);
  wake_ = true;
  wake_cv_.SignalAll();
}

Status Writer::health() {
  MutexLock lock(&mu_);
  return sticky_;
}

WriterCounters Writer::counters() {
  MutexLock lock(&mu_);
  WriterCounters c = counters_;
  c.commit_p50_us = commit_hist_.Percentile(0.50);
  c.commit_p99_us = commit_hist_.Percentile(0.99);
  c.e2d_p50_us = e2d_hist_.Percentile(0.50);
  c.e2d_p99_us = e2d_hist_.Percentile(0.99);
  return c;
}

Status Writer::WaitDurable(uint64_t lsn, absl::Time deadline) {
  if (durable_lsn() >= lsn) return Status::OK();
  Wake(lsn);
  MutexLock lock(&mu_);
  // While degraded, ask for a commit attempt now (not after the backoff)
  // and report its outcome: OK if the fault has cleared, else the sticky
  // error - so a caller neither waits out its timeout nor gets an error
  // the store has already recovered from.
  // Attempts already started may have begun before the fault cleared; only
  // one started after this call counts.
  const uint64_t seen_attempts = attempts_started_.load();
  if (!sticky_.ok()) {
    retry_now_ = true;
    wake_cv_.SignalAll();
  }
  durable_cv_.AwaitUntil(&mu_, ToSteady(deadline), [&]() {
    mu_.AssertHeld();
    return durable_lsn() >= lsn || stopped_ ||
           (!sticky_.ok() && last_failed_attempt_ > seen_attempts);
  });
  if (durable_lsn() >= lsn) return Status::OK();
  if (!sticky_.ok()) return sticky_;
  if (stopped_) {
    return Status::FailedPrecondition("store closed before write " +
                                      std::to_string(lsn) + " became durable");
  }
  return Status::DeadlineExceeded("write " + std::to_string(lsn) +
                                  " not durable in time (durable up to " +
                                  std::to_string(durable_lsn()) + ")");
}

void Writer::WatchRefusal(uint64_t lsn) noexcept {
  MutexLock lock(&mu_);
  try {
    refusals_.emplace(lsn, Status::OK());
  } catch (const std::bad_alloc&) {
    // Unwatched, a refusal reads as OK, as for Submit: the caller holds an
    // LSN that must reach the queue, so this must not throw.
  }
}

Status Writer::TakeRefusal(uint64_t lsn) {
  MutexLock lock(&mu_);
  auto it = refusals_.find(lsn);
  if (it == refusals_.end()) return Status::OK();
  Status s = std::move(it->second);
  refusals_.erase(it);
  return s;
}

Status Writer::Stop(uint64_t final_lsn, absl::Time deadline) {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    final_lsn_ = final_lsn;
    stop_deadline_ = ToSteady(deadline);
    wake_ = true;
    wake_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  stopped_ = true;
  durable_cv_.SignalAll();
  if (durable_lsn() >= final_lsn) return Status::OK();
  if (!sticky_.ok()) return sticky_;
  return Status::DeadlineExceeded(
      std::to_string(final_lsn - durable_lsn()) +
      " writes were not committed before the close deadline");
}

bool Writer::StopDeadlinePassed() {
  return stopping_ && CondVar::Clock::now() >= stop_deadline_;
}

size_t Writer::Pull() {
  // Out of memory here must lose no op (Run catches it and comes back):
  // - inbox_ has room for kPullMax ops, so the dequeue never allocates
  //   (moodycamel's bulk dequeue destroys what it dequeued if the output
  //   throws); ops a failed Pull left in inbox_ go first next time;
  // - ReorderBuffer::Put allocates before it takes the op, and batch_ grows
  //   before an op is taken out of reorder_.
  const size_t held = inbox_.size();
  queue_->PopBulk(&inbox_, kPullMax - inbox_.size());
  const size_t pulled = inbox_.size() - held;
  size_t put = 0;
  try {
    for (; put < inbox_.size(); ++put) {
      // A refused op is left untouched by Put.
      if (!reorder_.Put(std::move(inbox_[put]))) {
        SetAsideUnordered(std::move(inbox_[put]));
      }
    }
  } catch (...) {
    inbox_.erase(inbox_.begin(),
                 inbox_.begin() + static_cast<std::ptrdiff_t>(put));
    throw;
  }
  inbox_.clear();
  while (reorder_.Next() != nullptr && batch_.size() < options_.max_batch_ops &&
         batch_bytes_ < options_.max_batch_bytes) {
    if (batch_.size() == batch_.capacity()) {
      batch_.reserve(std::max<size_t>(16, 2 * batch_.capacity()));
    }
    batch_.push_back(reorder_.TakeNext());
    batch_bytes_ += batch_.back().bytes;
  }
  int64_t oldest = 0;
  if (!batch_.empty()) {
    oldest = batch_.front().enqueued_mono_us;
  } else if (const WriteOp* first = reorder_.Oldest(); first != nullptr) {
    oldest = first->enqueued_mono_us;
  }
  oldest_pending_.store(oldest, std::memory_order_relaxed);
  return pulled;
}

void Writer::Run() {
  const int64_t delay_us =
      std::chrono::duration_cast<std::chrono::microseconds>(
          options_.max_flush_delay)
          .count();
  // Consecutive turns of the loop that ran out of memory in the writer's
  // own work (the backend's calls are Guarded, SetAside catches its own):
  // logged, reported as the sticky error until a turn gets through, and
  // retried after a growing backoff. Every op not yet committed is still
  // in inbox_, reorder_ or batch_.
  int out_of_memory = 0;
  auto ran_out = [&](const char* doing, const std::exception& e) {
    log_->error("the writer ran out of memory {} ({}); retrying", doing,
                e.what());
    {
      MutexLock lock(&mu_);
      if (sticky_.ok()) {
        sticky_ = Status::ResourceExhausted("out of memory");
        sticky_from_oom_ = true;
        durable_cv_.SignalAll();
      }
    }
    return Backoff(out_of_memory++);
  };
  auto got_through = [&] {
    if (out_of_memory == 0) return;
    out_of_memory = 0;
    MutexLock lock(&mu_);
    if (sticky_from_oom_) ClearSticky();
  };
  for (;;) {
    size_t pulled = 0;
    try {
      pulled = Pull();
    } catch (const std::exception& e) {
      if (!ran_out("taking queued writes", e)) break;
      continue;
    }
    uint64_t want = 0;
    bool stopping = false;
    uint64_t final_lsn = 0;
    CondVar::Clock::time_point deadline;
    {
      MutexLock lock(&mu_);
      want = want_lsn_;
      stopping = stopping_;
      final_lsn = final_lsn_;
      deadline = stop_deadline_;
      wake_ = false;
    }
    // Close's deadline bounds the drain even while commits succeed (slowly).
    if (stopping && CondVar::Clock::now() >= deadline) break;
    if (!batch_.empty()) {
      bool full = batch_.size() >= options_.max_batch_ops ||
                  batch_bytes_ >= options_.max_batch_bytes;
      int64_t age = MonoMicros() - batch_.front().enqueued_mono_us;
      if (full || stopping || want >= batch_.front().lsn || age >= delay_us) {
        bool committed = false;
        try {
          // False: Stop's deadline passed while failing.
          committed = CommitBatch();
          if (committed) Maintain();
        } catch (const std::exception& e) {
          // In an error's text or a log line's arguments: batch_ still
          // holds every op not yet committed or set aside.
          if (!ran_out("committing", e)) break;
          continue;
        }
        if (!committed) break;
        got_through();
        continue;
      }
    }
    if (stopping && durable_lsn() >= final_lsn && reorder_.empty() &&
        batch_.empty()) {
      break;
    }
    got_through();
    // Sleep until the batch is due, a flush is asked for, or a producer
    // says a full batch is waiting.
    std::chrono::microseconds timeout(delay_us);
    if (!batch_.empty()) {
      int64_t age = MonoMicros() - batch_.front().enqueued_mono_us;
      timeout = std::chrono::microseconds(std::max<int64_t>(0, delay_us - age));
    } else if (!reorder_.empty() || queue_->items() > 0) {
      timeout = kGapWait;  // an LSN is in flight; it will arrive shortly
    }
    if (stopping) timeout = std::min(timeout, kGapWait);
    MutexLock lock(&mu_);
    sleeping_.store(true, std::memory_order_seq_cst);
    // Re-check the queue after announcing sleep: a producer that saw
    // sleeping_ false did not nudge.
    // A full batch's worth of items in the queue skips the wait, unless
    // this turn pulled none: then they are room reserved for writes not
    // pushed yet (an Append reading its conversation from disk), or writes
    // in reorder_ behind an LSN in flight, and skipping would spin until
    // they come. The wait is short then: a push of a full batch that
    // missed sleeping_ waits at most kGapWait.
    const bool full = queue_->items() >= options_.max_batch_ops;
    if (!wake_ && (!full || pulled == 0)) {
      wake_cv_.WaitUntil(
          &mu_, DeadlineAfter(full ? std::min(timeout, kGapWait) : timeout));
    }
    sleeping_.store(false, std::memory_order_relaxed);
  }
  oldest_pending_.store(0, std::memory_order_relaxed);
}

bool Writer::Backoff(int attempt) {
  auto cap = absl::FromChrono(options_.retry_max_backoff);
  auto base = absl::FromChrono(options_.retry_initial_backoff);
  absl::Duration d = base * (1 << std::min(attempt, 20));
  if (d > cap) d = cap;
  // Full jitter on the upper half, so competing processes spread out.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  d = d * jitter(rng_);
  MutexLock lock(&mu_);
  const auto backoff_end = DeadlineAfter(absl::ToChronoMicroseconds(d));
  // Sleeps out the backoff, or until the stop deadline if that comes first.
  // Stop() sets the deadline during the sleep and wakes it: the end is read
  // again after every wake-up, so Close keeps its timeout however long the
  // backoff.
  for (;;) {
    const auto until = std::min(backoff_end, stop_deadline_);
    const bool woken = wake_cv_.AwaitUntil(&mu_, until, [&]() {
      mu_.AssertHeld();
      return StopDeadlinePassed() || retry_now_ || stop_deadline_ < until;
    });
    if (!woken || StopDeadlinePassed() || retry_now_) break;
  }
  retry_now_ = false;
  return !StopDeadlinePassed();
}

Writer::Outcome Writer::ApplyWithRetry(std::span<const WriteOp> ops,
                                       int64_t* commit_us, Status* error) {
  for (int attempt = 0;; ++attempt) {
    const uint64_t attempt_no = attempts_started_.fetch_add(1) + 1;
    int64_t t0 = MonoMicros();
    Status s = Guarded(log_, "Apply", [&] { return backend_->Apply(ops); });
    int64_t t1 = MonoMicros();
    if (s.ok()) {
      *commit_us = t1 - t0;
      return Outcome::kCommitted;
    }
    *error = s;
    const bool retryable = Retryable(s);
    {
      MutexLock lock(&mu_);
      ++counters_.commit_errors;
      // A degraded WaitDurable awaits this attempt's outcome. A rejection
      // is not one: the writes are tried one by one right after, and their
      // commits (or dead letters) are the answer. Reporting it would hand
      // the waiter the sticky error of a fault that has cleared.
      if (retryable) {
        last_failed_attempt_ = attempt_no;
        durable_cv_.SignalAll();
      }
    }
    if (!retryable) return Outcome::kRejected;
    if (failing_since_us_ == 0) {
      failing_since_us_ = t0;
      first_error_ = s;
      log_->warn("commit failed, will retry: {}", s.ToString());
    }
    int64_t budget_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            options_.retry_budget)
                            .count();
    if (t1 - failing_since_us_ >= budget_us) {
      MutexLock lock(&mu_);
      if (sticky_.ok()) {
        sticky_ = first_error_.WithPrefix("writer degraded, retrying");
        durable_cv_.SignalAll();
        log_->error("{} (writes stay queued in memory)", sticky_.ToString());
      }
    }
    if (!Backoff(attempt)) {
      MutexLock lock(&mu_);
      if (sticky_.ok()) sticky_ = first_error_;
      return Outcome::kGaveUp;
    }
    MutexLock lock(&mu_);
    ++counters_.retries;
  }
}

void Writer::Maintain() {
  Status s = Guarded(log_, "Maintain", [&] { return backend_->Maintain(); });
  if (!s.ok() && !maintain_failing_) {
    log_->warn(
        "storage upkeep failed (nothing is lost; retried after the "
        "next batch): {}",
        s.ToString());
  } else if (s.ok() && maintain_failing_) {
    log_->info("storage upkeep succeeds again");
  }
  maintain_failing_ = !s.ok();
}

bool Writer::CommitBatch() {
  int64_t us = 0;
  Status error;
  switch (ApplyWithRetry(batch_, &us, &error)) {
    case Outcome::kCommitted:
      MarkDurable(batch_, us, 0);
      batch_.clear();
      batch_bytes_ = 0;
      return true;
    case Outcome::kGaveUp:
      log_->error("giving up on {} writes at close: {}", batch_.size(),
                  error.ToString());
      return false;
    case Outcome::kRejected:
      break;
  }
  log_->error(
      "batch of {} writes (lsn {}..{}) rejected: {}; retrying them "
      "one by one",
      batch_.size(), batch_.front().lsn, batch_.back().lsn, error.ToString());
  return CommitIsolated();
}

bool Writer::CommitIsolated() {
  // The ops stay in batch_ until they are done, so neither giving up (Stop
  // reports the rest as remaining) nor an exception (Run catches it and
  // tries again) loses one. Dropping the done ones allocates nothing.
  size_t done = 0;
  auto drop_done = [&] {
    for (size_t i = 0; i < done; ++i) batch_bytes_ -= batch_[i].bytes;
    batch_.erase(batch_.begin(),
                 batch_.begin() + static_cast<std::ptrdiff_t>(done));
  };
  try {
    for (; done < batch_.size(); ++done) {
      std::span<const WriteOp> one(&batch_[done], 1);
      int64_t us = 0;
      Status error;
      switch (ApplyWithRetry(one, &us, &error)) {
        case Outcome::kCommitted:
          MarkDurable(one, us, 0);
          break;
        case Outcome::kRejected:
          SetAside(batch_[done], error);
          NoteRefused(batch_[done], error);
          MarkDurable(one, us, 1);
          break;
        case Outcome::kGaveUp:
          drop_done();
          return false;
      }
    }
  } catch (...) {
    drop_done();
    throw;
  }
  batch_.clear();
  batch_bytes_ = 0;
  return true;
}

void Writer::SetAside(const WriteOp& op, const Status& error) {
  bool saved = false;
  bool to_file = false;
  try {
    TrySetAside(op, error, &saved, &to_file);
  } catch (const std::exception& e) {
    log_->error(
        "write lsn {} not committed and could not be set aside ({}); it is "
        "counted in writes_failed only",
        op.lsn, e.what());
  }
  MutexLock lock(&mu_);
  if (saved) ++counters_.dead_letters;
  if (to_file) ++counters_.dead_letters_in_file;
  // The dead letter committed: the database takes writes again.
  if (saved && !to_file) ClearSticky();
}

void Writer::NoteRefused(const WriteOp& op, const Status& error) {
  {
    // Before MarkDurable moves durable_lsn past it: a waiter that wakes
    // then finds the refusal.
    MutexLock lock(&mu_);
    if (auto it = refusals_.find(op.lsn); it != refusals_.end()) {
      try {
        it->second = error;
      } catch (const std::bad_alloc&) {
        it->second = Status::Internal({});  // still not OK; allocates nothing
      }
    }
  }
  if (on_set_aside_) {
    try {
      on_set_aside_(op);
    } catch (const std::exception& e) {
      log_->error("after setting aside write lsn {}: {}", op.lsn, e.what());
    }
  }
}

void Writer::TrySetAside(const WriteOp& op, const Status& error,
                         bool* saved_out, bool* to_file_out) {
  DeadLetter d = MakeDeadLetter(op, error);
  const auto* append = std::get_if<AppendMessageOp>(&op.payload);
  const int64_t seq = append != nullptr && append->message != nullptr
                          ? append->message->seq
                          : 0;
  Status s = Guarded(log_, "WriteDeadLetter",
                     [&] { return backend_->WriteDeadLetter(d, seq); });
  bool saved = s.ok();
  bool to_file = false;
  if (!saved) {
    const std::string file = DeadLetterFilePath(options_.path);
    Status f = AppendDeadLetterFile(file, d);
    saved = to_file = f.ok();
    if (!f.ok()) s = Status::IOError(s.ToString() + "; " + f.ToString());
  }
  // Set before the log lines, which may run out of memory in turn.
  *saved_out = saved;
  *to_file_out = to_file;
  // The key is an id, not content; the payload is never logged.
  if (!saved) {
    log_->error(
        "write lsn {} ({} for '{}') not committed ({}) and could not be set "
        "aside: {}; it is counted in writes_failed only",
        op.lsn, d.kind, d.key, d.error, s.ToString());
  } else {
    log_->error(
        "write lsn {} ({} for '{}') not committed ({}); set aside as a dead "
        "letter in {}",
        op.lsn, d.kind, d.key, d.error,
        to_file ? DeadLetterFilePath(options_.path)
                : std::string("the dead_letters table"));
  }
}

void Writer::ClearSticky() {
  sticky_from_oom_ = false;
  if (sticky_.ok()) return;
  log_->warn("writer recovered: commits succeed again");
  sticky_ = Status::OK();
}

void Writer::SetAsideUnordered(WriteOp op) {
  // Must not throw: Pull has moved the op in (a short message if the long
  // one cannot be made).
  Status error = Status::Internal("out of window");
  try {
    error = Status::Internal(
        "write lsn " + std::to_string(op.lsn) +
        " arrived outside the writer's window (next due " +
        std::to_string(reorder_.next_lsn()) + ", " +
        std::to_string(reorder_.max_slots()) +
        " ahead at most) or twice; set aside rather than committed twice");
  } catch (const std::bad_alloc&) {
  }
  SetAside(op, error);
  {
    MutexLock lock(&mu_);
    ++counters_.writes_failed;
  }
  queue_->Release(1, op.bytes);
}

void Writer::MarkDurable(std::span<const WriteOp> ops, int64_t commit_us,
                         uint64_t failed) {
  int64_t now = MonoMicros();
  size_t bytes = 0;
  MutexLock lock(&mu_);
  for (const WriteOp& op : ops) {
    bytes += op.bytes;
    e2d_hist_.Record(now - op.enqueued_mono_us);
  }
  commit_hist_.Record(commit_us);
  ++counters_.batches_committed;
  counters_.rows_committed += ops.size() - failed;
  counters_.writes_failed += failed;
  if (failed == 0) ClearSticky();
  // Any completed op, even one set aside as poison, ends a failure episode.
  failing_since_us_ = 0;
  first_error_ = Status::OK();
  durable_lsn_.store(ops.back().lsn, std::memory_order_release);
  durable_cv_.SignalAll();
  queue_->Release(ops.size(), bytes);
}

}  // namespace convstore::internal
