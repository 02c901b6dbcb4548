// Copyright 2026 The convstore Authors.
//
// Tests of src/writer.h against a fake StorageBackend that keeps committed
// writes in memory, records every Apply call, and can be told to fail,
// reject one LSN for good, sleep, or block. The queue is the real WriteQueue.

#include "writer.h"

#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "clock.h"
#include "logging.h"
#include "storage_backend.h"
#include "thread_testutil.h"
#include "write_op.h"
#include "write_queue.h"

namespace convstore::internal {
namespace {

using std::chrono::milliseconds;
using Lsns = std::vector<uint64_t>;

// An in-memory StorageBackend with fault knobs. All methods are safe to call
// from any thread.
class FakeBackend final : public StorageBackend {
 public:
  struct Attempt {
    Lsns lsns;
    int64_t front_enqueued_mono_us = 0;
    int64_t mono_us = 0;  // when Apply was entered
    bool ok = false;
  };

  Status Apply(std::span<const WriteOp> batch) override {
    Attempt a;
    a.mono_us = MonoMicros();
    for (const WriteOp& op : batch) a.lsns.push_back(op.lsn);
    if (!batch.empty())
      a.front_enqueued_mono_us = batch.front().enqueued_mono_us;

    std::unique_lock<std::mutex> lock(mu_);
    if (throw_next_ > 0) {
      // As an allocation failing inside the backend would; nothing applied.
      --throw_next_;
      attempts_.push_back(a);
      throw std::bad_alloc();
    }
    ++in_apply_;
    max_in_apply_ = std::max(max_in_apply_, in_apply_);
    cv_.notify_all();
    cv_.wait(lock, [&] { return !gate_closed_; });
    if (sleep_.count() > 0) {
      milliseconds d = sleep_;
      lock.unlock();
      std::this_thread::sleep_for(d);
      lock.lock();
    }
    --in_apply_;

    Status result;
    const size_t index = attempts_.size();
    if (!fail_queue_.empty()) {
      result = fail_queue_.front();
      fail_queue_.pop_front();
    } else if (script_ && !(result = script_(index, a.lsns)).ok()) {
    } else if (fail_always_) {
      result = fail_status_;
    } else if (fail_next_ > 0) {
      --fail_next_;
      result = fail_status_;
    } else if (poison_lsn_ != 0 && std::find(a.lsns.begin(), a.lsns.end(),
                                             poison_lsn_) != a.lsns.end()) {
      result = Status::InvalidArgument("poison record");
    }
    a.ok = result.ok();
    attempts_.push_back(a);
    if (!result.ok()) return result;

    committed_.push_back(a.lsns);
    for (const WriteOp& op : batch) {
      if (const auto* ap = std::get_if<AppendMessageOp>(&op.payload)) {
        messages_[ap->conversation_id.str()].push_back(ap->message);
      } else {
        messages_.erase(
            std::get<DeleteConversationOp>(op.payload).conversation_id);
      }
    }
    last_lsn_ = a.lsns.empty() ? last_lsn_ : a.lsns.back();
    cv_.notify_all();
    return Status::OK();
  }
  Status Maintain() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++maintain_calls_;
    if (throw_in_maintain_ > 0) {
      --throw_in_maintain_;
      throw std::bad_alloc();
    }
    return Status::OK();
  }
  Status Checkpoint(bool) override { return Status::OK(); }
  uint64_t LastCommittedLsn() override {
    std::lock_guard<std::mutex> lock(mu_);
    return last_lsn_;
  }
  StatusOr<BackendCloseReport> Close() override { return BackendCloseReport(); }
  Status LoadConversation(std::string_view, size_t,
                          StoredConversation* out) override {
    *out = StoredConversation();
    return Status::OK();
  }
  Status LoadMessages(std::string_view, int64_t, int64_t, size_t,
                      std::vector<MessagePtr>* out) override {
    out->clear();
    return Status::OK();
  }
  Status ListConversations(const ListQuery&,
                           std::vector<ConversationInfo>* out) override {
    out->clear();
    return Status::OK();
  }
  Status ScanRecent(size_t, size_t,
                    const std::function<bool(StoredConversation&&)>&) override {
    return Status::OK();
  }
  Status Counts(StorageCounts* out) override {
    *out = StorageCounts();
    return Status::OK();
  }

  // --- Knobs.
  void FailNext(int n, Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = n;
    fail_status_ = std::move(s);
  }
  void FailAlways(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_always_ = true;
    fail_status_ = std::move(s);
  }
  void StopFailing() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_always_ = false;
    fail_next_ = 0;
    fail_queue_.clear();
    script_ = nullptr;
    throw_next_ = 0;
  }
  // The next Applies fail with these, in order (before any other knob).
  void FailWithSequence(std::vector<Status> seq) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_queue_.assign(seq.begin(), seq.end());
  }
  // Called with each Apply's 0-based index and LSNs; a non-OK result fails
  // that Apply.
  void SetScript(std::function<Status(size_t, const Lsns&)> script) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(script);
  }
  void RejectBatchesWith(uint64_t lsn) {
    std::lock_guard<std::mutex> lock(mu_);
    poison_lsn_ = lsn;
  }
  // Takes dead letters (as the SQLite backend's table does) instead of
  // refusing them, which sends them to the dead-letter file.
  void AcceptDeadLetters() {
    std::lock_guard<std::mutex> lock(mu_);
    accept_dead_letters_ = true;
  }
  // The next n Applies, Maintains or WriteDeadLetters throw std::bad_alloc.
  void ThrowInApply(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    throw_next_ = n;
  }
  void ThrowInMaintain(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    throw_in_maintain_ = n;
  }
  void ThrowInDeadLetter(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    throw_in_dead_letter_ = n;
  }
  int maintain_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return maintain_calls_;
  }
  Status WriteDeadLetter(const DeadLetter& d, int64_t message_seq) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (throw_in_dead_letter_ > 0) {
      --throw_in_dead_letter_;
      throw std::bad_alloc();
    }
    if (!accept_dead_letters_) {
      return StorageBackend::WriteDeadLetter(d, message_seq);
    }
    dead_letter_lsns_.push_back(d.lsn);
    return Status::OK();
  }
  Lsns dead_letter_lsns() {
    std::lock_guard<std::mutex> lock(mu_);
    return dead_letter_lsns_;
  }
  void SleepInApply(milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    sleep_ = d;
  }
  void CloseGate() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_closed_ = true;
  }
  void OpenGate() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_closed_ = false;
    cv_.notify_all();
  }
  // Lets every current and future Apply finish (for teardown).
  void Release() {
    StopFailing();
    SleepInApply(milliseconds(0));
    OpenGate();
  }
  // Waits until an Apply call is in progress (e.g. held at the gate).
  bool WaitInApply(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return in_apply_ > 0; });
  }

  // --- Observations.
  std::vector<Lsns> committed() {
    std::lock_guard<std::mutex> lock(mu_);
    return committed_;
  }
  Lsns committed_flat() {
    std::lock_guard<std::mutex> lock(mu_);
    Lsns out;
    for (const Lsns& b : committed_) out.insert(out.end(), b.begin(), b.end());
    return out;
  }
  std::vector<Attempt> attempts() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  size_t attempt_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_.size();
  }
  int max_in_apply() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_in_apply_;
  }
  std::vector<MessagePtr> messages(const std::string& conv) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = messages_.find(conv);
    return it == messages_.end() ? std::vector<MessagePtr>() : it->second;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool gate_closed_ = false;
  int in_apply_ = 0;
  int max_in_apply_ = 0;
  milliseconds sleep_{0};
  bool fail_always_ = false;
  int fail_next_ = 0;
  Status fail_status_;
  uint64_t poison_lsn_ = 0;
  bool accept_dead_letters_ = false;
  int throw_next_ = 0;
  int throw_in_maintain_ = 0;
  int throw_in_dead_letter_ = 0;
  int maintain_calls_ = 0;
  Lsns dead_letter_lsns_;
  std::deque<Status> fail_queue_;
  std::function<Status(size_t, const Lsns&)> script_;
  std::vector<Attempt> attempts_;
  std::vector<Lsns> committed_;
  std::map<std::string, std::vector<MessagePtr>> messages_;
  uint64_t last_lsn_ = 0;
};

Options WriterOptions() {
  Options o;
  // FakeBackend keeps no dead letters, so a poison write falls back to
  // `<path>.deadletter.jsonl`; a directory that does not exist keeps that
  // file out of the working directory (the failure is logged and counted).
  o.path = "/nonexistent-convstore-writer-test/w.db";
  o.log_level = LogLevel::kOff;
  o.max_batch_ops = 64;
  o.max_batch_bytes = 16 << 20;
  o.max_flush_delay = milliseconds(5);
  o.retry_initial_backoff = milliseconds(1);
  o.retry_max_backoff = milliseconds(5);
  o.retry_budget = milliseconds(50);
  return o;
}

// Log lines the writer produced, for the tests that read them.
struct LogCapture {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> lines;

  size_t Count(LogLevel level, const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& [l, text] : lines) {
      if (l == level && text.find(needle) != std::string::npos) ++n;
    }
    return n;
  }
};

// The fake backend, a real queue and the writer, torn down in an order that
// cannot hang even when a test stops half-way.
class Harness {
 public:
  explicit Harness(Options o, LogCapture* capture = nullptr)
      : options_(std::move(o)), queue_(1 << 20, size_t{1} << 32) {
    if (capture != nullptr) {
      options_.log_level = LogLevel::kWarn;
      options_.log_sink = [capture](LogLevel level, std::string_view msg) {
        std::lock_guard<std::mutex> lock(capture->mu);
        capture->lines.emplace_back(level, std::string(msg));
      };
    }
    writer_ = std::make_unique<Writer>(&backend_, &queue_, options_,
                                       MakeLogger(options_), /*first_lsn=*/1);
  }
  ~Harness() {
    backend_.Release();
    writer_.reset();
  }

  FakeBackend& backend() { return backend_; }
  WriteQueue& queue() { return queue_; }
  Writer& writer() { return *writer_; }

  // Reserves room and pushes an append of message `lsn` to `conv`. Safe on
  // any thread; false if the queue refused.
  bool Push(uint64_t lsn, const std::string& conv = "c", size_t bytes = 0) {
    auto m = std::make_shared<Message>();
    m->seq = static_cast<int64_t>(lsn);
    m->content = "m" + std::to_string(lsn);
    WriteOp op;
    op.lsn = lsn;
    op.bytes = bytes != 0 ? bytes : MessageBytes(*m);
    op.enqueued_mono_us = MonoMicros();
    op.payload = AppendMessageOp{conv, std::move(m)};
    if (!queue_.Reserve(op.bytes, milliseconds(10000)).ok()) return false;
    queue_.Push(std::move(op));
    return true;
  }
  void PushRange(uint64_t first, uint64_t last) {
    for (uint64_t l = first; l <= last; ++l) REQUIRE(Push(l));
  }

 private:
  Options options_;
  FakeBackend backend_;
  WriteQueue queue_;
  std::unique_ptr<Writer> writer_;
};

absl::Time In(absl::Duration d) { return absl::Now() + d; }

// Polls `pred` until it holds or `timeout` passes; returns pred().
bool Eventually(const std::function<bool()>& pred,
                milliseconds timeout = milliseconds(30000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

Lsns Range(uint64_t first, uint64_t last) {
  Lsns out(last - first + 1);
  std::iota(out.begin(), out.end(), first);
  return out;
}

// Every committed batch is a contiguous ascending run, and the runs follow
// each other with no gap.
void CheckContiguous(const std::vector<Lsns>& batches, uint64_t first) {
  uint64_t next = first;
  for (size_t i = 0; i < batches.size(); ++i) {
    INFO("batch " << i);
    REQUIRE_FALSE(batches[i].empty());
    for (uint64_t lsn : batches[i]) {
      REQUIRE(lsn == next);
      ++next;
    }
  }
}

TEST_CASE("writes pushed out of order by many threads commit in LSN order",
          "[writer]") {
  Options o = WriterOptions();
  Harness h(o);
  constexpr uint64_t kTotal = 20000;
  constexpr int kThreads = 4;

  // Hand out every LSN once, in a random order, split across the threads:
  // each thread pushes its share in that random order too.
  Lsns order = Range(1, kTotal);
  std::mt19937_64 rng(Catch::rngSeed());
  std::shuffle(order.begin(), order.end(), rng);

  h.writer().Start();
  std::atomic<int> push_failures{0};
  std::atomic<bool> done{false};
  std::atomic<int> went_backwards{0};
  std::thread watcher([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t d = h.writer().durable_lsn();
      if (d < last) ++went_backwards;
      last = d;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (size_t i = t; i < order.size(); i += kThreads) {
        if (!h.Push(order[i], "c" + std::to_string(order[i] % 7))) {
          ++push_failures;
        }
      }
    });
  }
  for (auto& p : producers) p.join();
  REQUIRE(push_failures.load() == 0);

  Status s = h.writer().WaitDurable(kTotal, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  done = true;
  watcher.join();
  CHECK(went_backwards.load() == 0);

  std::vector<Lsns> batches = h.backend().committed();
  CheckContiguous(batches, 1);
  CHECK(h.backend().committed_flat() == Range(1, kTotal));
  for (const Lsns& b : batches) CHECK(b.size() <= o.max_batch_ops);
  CHECK(h.backend().attempt_count() == batches.size());  // no failures
  CHECK(h.backend().max_in_apply() == 1);                // one writer thread

  // Per conversation, messages arrive in LSN order.
  for (int c = 0; c < 7; ++c) {
    std::vector<MessagePtr> ms = h.backend().messages("c" + std::to_string(c));
    CHECK(ms.size() >= kTotal / 7);
    for (size_t i = 1; i < ms.size(); ++i) {
      REQUIRE(ms[i - 1]->seq < ms[i]->seq);
    }
  }

  WriterCounters wc = h.writer().counters();
  CHECK(wc.rows_committed == kTotal);
  CHECK(wc.batches_committed == batches.size());
  CHECK(wc.writes_failed == 0);
  CHECK(wc.commit_errors == 0);
  CHECK(wc.retries == 0);
  CHECK(h.writer().durable_lsn() == kTotal);
  CHECK(h.queue().items() == 0);
  CHECK(h.queue().bytes() == 0);
  CHECK(h.writer().health().ok());
  CHECK(h.writer().Stop(kTotal, In(absl::Seconds(30))).ok());
}

TEST_CASE("a batch closes when it reaches max_batch_ops or max_batch_bytes",
          "[writer]") {
  Options o = WriterOptions();
  // Far longer than the waits below: only a full batch can commit.
  o.max_flush_delay = milliseconds(600000);

  SECTION("by operations") {
    o.max_batch_ops = 10;
    Harness h(o);
    h.PushRange(1, 100);
    h.writer().Start();
    REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 100; }));
    std::vector<Lsns> batches = h.backend().committed();
    CheckContiguous(batches, 1);
    REQUIRE(batches.size() == 10);
    for (const Lsns& b : batches) CHECK(b.size() == 10);

    // A partial batch waits for its age (600 s), so nothing moves.
    h.PushRange(101, 105);
    std::this_thread::sleep_for(milliseconds(100));
    CHECK(h.writer().durable_lsn() == 100);
    CHECK(h.backend().committed().size() == 10);
    CHECK(h.queue().items() == 5);

    Status s = h.writer().Stop(105, In(absl::Seconds(30)));
    INFO(s.ToString());
    CHECK(s.ok());
    batches = h.backend().committed();
    REQUIRE(batches.size() == 11);
    CHECK(batches.back() == Range(101, 105));
  }
  SECTION("by bytes") {
    o.max_batch_ops = 100000;
    o.max_batch_bytes = 3000;
    Harness h(o);
    for (uint64_t l = 1; l <= 30; ++l) REQUIRE(h.Push(l, "c", 1000));
    h.writer().Start();
    REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 30; }));
    std::vector<Lsns> batches = h.backend().committed();
    CheckContiguous(batches, 1);
    REQUIRE(batches.size() == 10);
    for (const Lsns& b : batches) CHECK(b.size() == 3);
    CHECK(h.writer().Stop(30, In(absl::Seconds(30))).ok());
  }
}

TEST_CASE("the writer does not spin while a write is reserved but not pushed",
          "[writer]") {
  // With max_batch_ops = 1, one reserved write (an Append reading its
  // conversation from disk holds room before it pushes), or one write
  // waiting behind it, made queue items() reach a full batch: the writer
  // skipped its wait every turn and spun until the push came.
  Options o = WriterOptions();
  o.max_batch_ops = 1;
  Harness h(o);
  REQUIRE(h.queue().Reserve(100, milliseconds(0)).ok());  // LSN 1's room
  REQUIRE(h.Push(2));  // waits in the reorder buffer for LSN 1
  h.writer().Start();
  REQUIRE(Eventually([] { return test::ThreadCpuMs("convstore-wr") >= 0; }));
  const int64_t before = test::ThreadCpuMs("convstore-wr");
  std::this_thread::sleep_for(milliseconds(400));
  const int64_t used = test::ThreadCpuMs("convstore-wr") - before;
  INFO("writer CPU over 400 ms: " << used << " ms");
  CHECK(used < 150);
  h.queue().Cancel(100);
  REQUIRE(h.Push(1));
  REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 2; }));
  CHECK(h.writer().Stop(2, In(absl::Seconds(30))).ok());
}

TEST_CASE("a batch closes when its oldest write reaches max_flush_delay",
          "[writer]") {
  Options o = WriterOptions();
  o.max_flush_delay = milliseconds(30);
  o.max_batch_ops = 1000;
  Harness h(o);
  h.PushRange(1, 3);
  h.writer().Start();
  // Nobody asks for a flush: only the age can close the batch.
  REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 3; }));
  CHECK(h.backend().committed() == std::vector<Lsns>{{1, 2, 3}});

  h.PushRange(4, 5);
  REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 5; }));
  CheckContiguous(h.backend().committed(), 1);
  CHECK(h.backend().committed_flat() == Range(1, 5));

  // No batch was committed before its oldest write was max_flush_delay old.
  for (const FakeBackend::Attempt& a : h.backend().attempts()) {
    INFO("batch starting at lsn " << a.lsns.front());
    CHECK(a.mono_us - a.front_enqueued_mono_us >= 30000);
  }
  CHECK(h.writer().Stop(5, In(absl::Seconds(30))).ok());
}

TEST_CASE("WaitDurable wakes the writer before max_flush_delay", "[writer]") {
  Options o = WriterOptions();
  // Far longer than WaitDurable's timeout: an OK means the writer was woken.
  o.max_flush_delay = milliseconds(600000);
  Harness h(o);
  h.writer().Start();

  h.PushRange(1, 3);
  Status s = h.writer().WaitDurable(3, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(h.writer().durable_lsn() >= 3);
  CHECK(h.backend().committed_flat() == Range(1, 3));
  // Already durable: OK at once, even with a deadline in the past.
  CHECK(h.writer().WaitDurable(2, absl::Now() - absl::Seconds(1)).ok());

  // Several waiters at once, each for its own write.
  h.PushRange(4, 7);
  std::vector<Status> results(4);
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      results[i] = h.writer().WaitDurable(4 + i, In(absl::Seconds(60)));
    });
  }
  for (auto& w : waiters) w.join();
  for (const Status& r : results) {
    INFO(r.ToString());
    CHECK(r.ok());
  }
  CHECK(h.backend().committed_flat() == Range(1, 7));

  // A write that never arrives times out with DeadlineExceeded.
  s = h.writer().WaitDurable(100, In(absl::Milliseconds(50)));
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kDeadlineExceeded);
  CHECK(h.writer().Stop(7, In(absl::Seconds(30))).ok());
}

TEST_CASE("transient failures are retried until the batch commits",
          "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  // Long enough that the writer never turns degraded in this test.
  o.retry_budget = milliseconds(60000);
  Harness h(o);
  Status failure;
  SECTION("IOError") { failure = Status::IOError("disk hiccup"); }
  SECTION("Unavailable") { failure = Status::Unavailable("database busy"); }
  h.backend().FailNext(5, failure);
  h.PushRange(1, 20);
  h.writer().Start();

  Status s = h.writer().WaitDurable(20, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  // The batch was retried whole and committed once: nothing lost or doubled.
  std::vector<FakeBackend::Attempt> attempts = h.backend().attempts();
  REQUIRE(attempts.size() == 6);
  for (size_t i = 0; i < attempts.size(); ++i) {
    CHECK(attempts[i].lsns == Range(1, 20));
    CHECK(attempts[i].ok == (i == 5));
  }
  CHECK(h.backend().committed() == std::vector<Lsns>{Range(1, 20)});
  CHECK(h.backend().messages("c").size() == 20);

  WriterCounters wc = h.writer().counters();
  CHECK(wc.commit_errors == 5);
  CHECK(wc.retries >= 4);
  CHECK(wc.rows_committed == 20);
  CHECK(wc.batches_committed == 1);
  CHECK(wc.writes_failed == 0);
  CHECK(h.writer().health().ok());
  CHECK(h.queue().items() == 0);
  CHECK(h.writer().Stop(20, In(absl::Seconds(30))).ok());
}

TEST_CASE("retries counts every re-attempt of a failed batch", "[writer]") {
  // Regression: retries used to count only failed re-attempts, so a single
  // transient failure followed by a successful retry showed zero. Once the
  // batch commits, every error was followed by one retry.
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  o.retry_budget = milliseconds(60000);
  int failures = GENERATE(1, 3);
  Harness h(o);
  h.backend().FailNext(failures, Status::IOError("disk hiccup"));
  h.PushRange(1, 5);
  h.writer().Start();
  REQUIRE(h.writer().WaitDurable(5, In(absl::Seconds(60))).ok());
  REQUIRE(h.backend().attempt_count() == static_cast<size_t>(failures) + 1);
  WriterCounters wc = h.writer().counters();
  CHECK(wc.commit_errors == static_cast<uint64_t>(failures));
  CHECK(wc.retries == static_cast<uint64_t>(failures));
  CHECK(h.writer().Stop(5, In(absl::Seconds(30))).ok());
}

TEST_CASE("a persistent failure turns sticky and clears after recovery",
          "[writer]") {
  LogCapture logs;
  Options o = WriterOptions();  // retry_budget 50 ms
  o.max_batch_ops = 1000;
  Harness h(o, &logs);
  h.backend().FailAlways(Status::IOError("disk gone"));
  h.PushRange(1, 3);
  h.writer().Start();

  Status s = h.writer().WaitDurable(3, In(absl::Seconds(60)));
  INFO(s.ToString());
  CHECK(s.IsIOError());
  CHECK(s.message().find("disk gone") != std::string::npos);
  Status health = h.writer().health();
  INFO(health.ToString());
  CHECK(health.IsIOError());
  CHECK(h.writer().durable_lsn() == 0);
  CHECK(h.queue().items() == 3);  // the writes are kept, not dropped
  CHECK(h.backend().committed().empty());

  // It keeps retrying while degraded, and says so in the log only once.
  const size_t before = h.backend().attempt_count();
  REQUIRE(
      Eventually([&] { return h.backend().attempt_count() >= before + 10; }));
  CHECK(h.writer().health().IsIOError());
  CHECK(h.writer().WaitDurable(3, In(absl::Seconds(60))).IsIOError());
  CHECK(logs.Count(LogLevel::kError, "disk gone") == 1);
  CHECK(h.writer().counters().commit_errors >= 10);

  // Recovery: the same writes commit, and the error clears.
  h.backend().StopFailing();
  REQUIRE(Eventually([&] { return h.writer().health().ok(); }));
  s = h.writer().WaitDurable(3, In(absl::Seconds(60)));
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(h.backend().committed() == std::vector<Lsns>{{1, 2, 3}});
  CHECK(h.queue().items() == 0);
  CHECK(h.writer().counters().writes_failed == 0);
  CHECK(logs.Count(LogLevel::kWarn, "recovered") == 1);

  // Later writes go through normally.
  h.PushRange(4, 6);
  CHECK(h.writer().WaitDurable(6, In(absl::Seconds(60))).ok());
  CHECK(h.writer().Stop(6, In(absl::Seconds(30))).ok());
  CHECK(h.backend().committed_flat() == Range(1, 6));
}

TEST_CASE("a poison write is isolated and the rest commit", "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  Harness h(o);
  h.backend().RejectBatchesWith(5);
  std::vector<uint64_t> refused;  // OnSetAside, on the writer thread
  std::mutex refused_mu;
  h.writer().OnSetAside([&](const WriteOp& op) {
    std::lock_guard<std::mutex> lock(refused_mu);
    refused.push_back(op.lsn);
  });
  h.PushRange(1, 10);
  h.writer().Start();

  Status s = h.writer().WaitDurable(10, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(h.backend().committed_flat() == Lsns{1, 2, 3, 4, 6, 7, 8, 9, 10});
  std::vector<FakeBackend::Attempt> attempts = h.backend().attempts();
  REQUIRE_FALSE(attempts.empty());
  CHECK(attempts[0].lsns == Range(1, 10));  // the whole batch first
  CHECK_FALSE(attempts[0].ok);
  for (const FakeBackend::Attempt& a : attempts) {
    if (!a.ok)
      CHECK(std::find(a.lsns.begin(), a.lsns.end(), 5) != a.lsns.end());
  }
  CHECK(h.backend().messages("c").size() == 9);

  WriterCounters wc = h.writer().counters();
  CHECK(wc.writes_failed == 1);
  CHECK(wc.rows_committed == 9);
  CHECK(h.writer().health().ok());  // a bad record is not a sick database
  CHECK(h.writer().durable_lsn() == 10);
  CHECK(h.queue().items() == 0);
  {
    std::lock_guard<std::mutex> lock(refused_mu);
    CHECK(refused == std::vector<uint64_t>{5});
  }

  // Afterwards, batches are whole again.
  h.PushRange(11, 15);
  REQUIRE(h.writer().WaitDurable(15, In(absl::Seconds(60))).ok());
  CHECK(h.backend().committed().back() == Range(11, 15));
  CHECK(h.writer().counters().writes_failed == 1);
  CHECK(h.writer().Stop(15, In(absl::Seconds(30))).ok());
}

TEST_CASE("an exception from the backend is retried, not fatal", "[writer]") {
  // No exception may leave the writer thread (std::terminate would end the
  // process). One from Apply is a retryable error: the batch is kept and
  // committed once the backend stops throwing.
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  o.retry_budget = milliseconds(60000);
  LogCapture log;
  Harness h(o, &log);
  h.backend().ThrowInApply(3);
  h.PushRange(1, 20);
  h.writer().Start();

  Status s = h.writer().WaitDurable(20, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::vector<FakeBackend::Attempt> attempts = h.backend().attempts();
  REQUIRE(attempts.size() == 4);
  for (const FakeBackend::Attempt& a : attempts) CHECK(a.lsns == Range(1, 20));
  CHECK(h.backend().committed() == std::vector<Lsns>{Range(1, 20)});
  WriterCounters wc = h.writer().counters();
  CHECK(wc.commit_errors == 3);
  CHECK(wc.rows_committed == 20);
  CHECK(wc.writes_failed == 0);
  CHECK(log.Count(LogLevel::kError,
                  "out of memory in the storage backend's "
                  "Apply") == 3);
  CHECK(h.writer().health().ok());
  CHECK(h.writer().Stop(20, In(absl::Seconds(30))).ok());
}

TEST_CASE("a backend that keeps throwing degrades the writer until it stops",
          "[writer]") {
  Options o = WriterOptions();
  Harness h(o);
  h.backend().ThrowInApply(1 << 30);
  h.PushRange(1, 5);
  h.writer().Start();
  REQUIRE(Eventually([&] { return !h.writer().health().ok(); }));
  Status sticky = h.writer().health();
  CHECK(sticky.code() == StatusCode::kResourceExhausted);
  CHECK(sticky.message().find("out of memory") != std::string::npos);
  Status flush = h.writer().WaitDurable(5, In(absl::Seconds(5)));
  CHECK(flush.code() == StatusCode::kResourceExhausted);
  CHECK(h.writer().durable_lsn() == 0);

  h.backend().StopFailing();
  REQUIRE(h.writer().WaitDurable(5, In(absl::Seconds(60))).ok());
  CHECK(h.backend().committed_flat() == Range(1, 5));
  CHECK(h.writer().health().ok());
  CHECK(h.writer().Stop(5, In(absl::Seconds(30))).ok());
}

TEST_CASE("an exception from upkeep or from setting aside loses nothing else",
          "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  LogCapture log;
  Harness h(o, &log);
  h.backend().ThrowInMaintain(2);
  h.backend().ThrowInDeadLetter(1);
  h.backend().AcceptDeadLetters();
  h.backend().RejectBatchesWith(5);
  h.PushRange(1, 10);
  h.writer().Start();

  REQUIRE(h.writer().WaitDurable(10, In(absl::Seconds(60))).ok());
  // The poison write's dead letter threw; the writer fell back to the file,
  // which cannot be made here, so it is counted in writes_failed only.
  CHECK(h.backend().committed_flat() == Lsns{1, 2, 3, 4, 6, 7, 8, 9, 10});
  CHECK(h.backend().dead_letter_lsns().empty());
  WriterCounters wc = h.writer().counters();
  CHECK(wc.writes_failed == 1);
  CHECK(wc.dead_letters == 0);
  CHECK(log.Count(LogLevel::kError, "storage backend's WriteDeadLetter") == 1);

  // Upkeep (after each committed batch) threw twice and was called again
  // after later commits.
  for (uint64_t first = 11; first <= 16; first += 5) {
    h.PushRange(first, first + 4);
    REQUIRE(h.writer().WaitDurable(first + 4, In(absl::Seconds(60))).ok());
  }
  REQUIRE(Eventually([&] { return h.backend().maintain_calls() >= 3; }));
  CHECK(log.Count(LogLevel::kError, "storage backend's Maintain") == 2);
  CHECK(log.Count(LogLevel::kWarn, "storage upkeep failed") == 1);
  CHECK(h.writer().health().ok());
  CHECK(h.writer().Stop(20, In(absl::Seconds(30))).ok());
}

TEST_CASE("a write whose LSN is taken twice or far ahead is set aside",
          "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  o.queue_max_items = 1000;  // LSNs 2,048 or more ahead are refused
  LogCapture log;
  Harness h(o, &log);
  // Not the database's refusal: the hook that lets memory forget a refused
  // delete must not run (the first copy of a write taken twice may still
  // be waiting to commit).
  std::atomic<int> hooked{0};
  h.writer().OnSetAside([&](const WriteOp&) { ++hooked; });
  h.writer().Start();
  h.PushRange(1, 3);
  REQUIRE(h.writer().WaitDurable(3, In(absl::Seconds(60))).ok());
  // A bug before the queue: LSN 2 again (committed already), 4 twice, and
  // one far beyond the window. The old min-heap held the stale 2 at its
  // front forever, and nothing after it committed.
  REQUIRE(h.Push(2));
  REQUIRE(h.Push(4));
  REQUIRE(h.Push(4));
  REQUIRE(h.Push(5 + 4096));
  REQUIRE(h.Push(5));
  REQUIRE(h.Push(6));
  Status s = h.writer().WaitDurable(6, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(h.backend().committed_flat() == Range(1, 6));  // each once
  REQUIRE(Eventually([&] { return h.writer().counters().writes_failed == 3; }));
  CHECK(h.writer().counters().rows_committed == 6);
  CHECK(log.Count(LogLevel::kError, "outside the writer's window") == 3);
  CHECK(hooked.load() == 0);
  CHECK(h.writer().health().ok());
  // The refused writes' room is given back: nothing is left reserved.
  REQUIRE(Eventually([&] { return h.queue().items() == 0; }));
  CHECK(h.queue().bytes() == 0);
  CHECK(h.writer().Stop(6, In(absl::Seconds(30))).ok());
}

TEST_CASE("the sticky error is the first error of the episode", "[writer]") {
  Options o = WriterOptions();  // retry_budget 50 ms
  o.max_batch_ops = 1000;
  Harness h(o);
  h.backend().FailWithSequence({Status::IOError("first failure")});
  h.backend().FailAlways(Status::Unavailable("later failure"));
  h.PushRange(1, 2);
  h.writer().Start();
  REQUIRE(Eventually([&] { return !h.writer().health().ok(); }));
  Status health = h.writer().health();
  INFO(health.ToString());
  CHECK(health.IsIOError());
  CHECK(health.message().find("first failure") != std::string::npos);
  Status s = h.writer().WaitDurable(2, In(absl::Seconds(60)));
  INFO(s.ToString());
  CHECK(s.IsIOError());
  h.backend().StopFailing();
  REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 2; }));
  CHECK(h.writer().health().ok());
  CHECK(h.writer().Stop(2, In(absl::Seconds(30))).ok());
}

TEST_CASE("a poison write after a degraded spell leaves no stale error",
          "[writer]") {
  // The store was degraded (the file locked past retry_budget); once the
  // lock went, the batch was rejected for its poison write. The rejection
  // was reported to a waiting Flush as the old sticky error, and the dead
  // letter's commit did not clear it: Health stayed degraded while idle.
  Options o = WriterOptions();  // retry_budget 50 ms
  o.max_batch_ops = 1000;
  Harness h(o);
  h.backend().AcceptDeadLetters();
  h.backend().RejectBatchesWith(1);
  h.backend().FailAlways(Status::Unavailable("database is locked"));
  h.PushRange(1, 1);
  h.writer().Start();
  REQUIRE(Eventually([&] { return h.writer().health().IsUnavailable(); }));
  h.backend().StopFailing();  // the lock is gone; lsn 1 is still poison
  Status s = h.writer().WaitDurable(1, In(absl::Seconds(60)));
  INFO(s.ToString());
  CHECK(s.ok());
  INFO(h.writer().health().ToString());
  CHECK(h.writer().health().ok());
  CHECK(h.backend().dead_letter_lsns() == Lsns{1});
  CHECK(h.writer().counters().writes_failed == 1);
  CHECK(h.writer().Stop(1, In(absl::Seconds(30))).ok());
}

TEST_CASE("transient failures while isolating a poison write are retried",
          "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  o.retry_budget = milliseconds(60000);
  Harness h(o);
  h.backend().RejectBatchesWith(3);
  // Apply #0 is the whole batch (rejected); #1..#3 would be the isolated
  // apply of lsn 1: make them fail transiently.
  h.backend().SetScript([](size_t index, const Lsns&) {
    return index >= 1 && index <= 3 ? Status::Unavailable("busy")
                                    : Status::OK();
  });
  h.PushRange(1, 6);
  h.writer().Start();
  Status s = h.writer().WaitDurable(6, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(h.backend().committed_flat() == Lsns{1, 2, 4, 5, 6});
  std::vector<FakeBackend::Attempt> attempts = h.backend().attempts();
  REQUIRE(attempts.size() >= 5);
  for (size_t i = 1; i <= 4; ++i) CHECK(attempts[i].lsns == Lsns{1});
  CHECK(attempts[4].ok);
  WriterCounters wc = h.writer().counters();
  CHECK(wc.writes_failed == 1);
  CHECK(wc.rows_committed == 5);
  CHECK(wc.retries == 3);
  CHECK(h.writer().health().ok());
  CHECK(h.queue().items() == 0);
  CHECK(h.writer().Stop(6, In(absl::Seconds(30))).ok());
}

TEST_CASE("Stop drains every write up to the final LSN", "[writer]") {
  Options o = WriterOptions();
  o.max_flush_delay = milliseconds(600000);  // only Stop makes them commit
  o.max_batch_ops = 16;
  Harness h(o);
  h.writer().Start();

  SECTION("pushed before Stop") {
    Lsns order = Range(1, 300);
    std::mt19937_64 rng(Catch::rngSeed());
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::thread> producers;
    std::atomic<int> push_failures{0};
    for (int t = 0; t < 3; ++t) {
      producers.emplace_back([&, t] {
        for (size_t i = t; i < order.size(); i += 3) {
          if (!h.Push(order[i])) ++push_failures;
        }
      });
    }
    for (auto& p : producers) p.join();
    REQUIRE(push_failures.load() == 0);
  }
  std::thread late;
  SECTION("one write still in flight when Stop is called") {
    for (uint64_t l = 1; l <= 300; ++l) {
      if (l != 150) REQUIRE(h.Push(l));
    }
    late = std::thread([&] {
      std::this_thread::sleep_for(milliseconds(100));
      (void)h.Push(150);
    });
  }

  Status s = h.writer().Stop(300, In(absl::Seconds(60)));
  if (late.joinable()) late.join();
  INFO(s.ToString());
  CHECK(s.ok());
  CheckContiguous(h.backend().committed(), 1);
  CHECK(h.backend().committed_flat() == Range(1, 300));
  for (const Lsns& b : h.backend().committed()) CHECK(b.size() <= 16);
  CHECK(h.writer().durable_lsn() == 300);
  CHECK(h.queue().items() == 0);
  CHECK(h.writer().counters().rows_committed == 300);

  // After Stop, waiting for a write that never came fails at once.
  s = h.writer().WaitDurable(301, In(absl::Seconds(60)));
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("Stop gives up at its deadline while the backend fails", "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  Harness h(o);
  h.backend().FailAlways(Status::IOError("disk gone"));
  h.PushRange(1, 5);
  h.writer().Start();
  REQUIRE(Eventually([&] { return h.backend().attempt_count() > 0; }));

  Status s = h.writer().Stop(5, In(absl::Milliseconds(200)));
  INFO(s.ToString());
  CHECK_FALSE(s.ok());
  CHECK(s.IsIOError());
  CHECK(h.writer().durable_lsn() < 5);
  CHECK(h.writer().durable_lsn() == 0);
  CHECK(h.backend().committed().empty());
  CHECK(h.queue().items() == 5);  // still accounted as not durable
  CHECK(h.writer().WaitDurable(5, In(absl::Seconds(1))).code() !=
        StatusCode::kOk);
}

TEST_CASE("Stop during a long backoff returns at its deadline", "[writer]") {
  // The backoff's end was computed once, before Stop set a deadline: Stop
  // woke the writer, which went back to sleep until the backoff ended.
  Options o = WriterOptions();
  o.retry_initial_backoff = milliseconds(20'000);
  o.retry_max_backoff = milliseconds(20'000);  // 10-20 s with jitter
  Harness h(o);
  h.backend().FailAlways(Status::IOError("disk gone"));
  h.PushRange(1, 3);
  h.writer().Start();
  REQUIRE(Eventually([&] { return h.backend().attempt_count() > 0; }));
  const auto t0 = std::chrono::steady_clock::now();
  Status s = h.writer().Stop(3, In(absl::Milliseconds(100)));
  const auto waited = std::chrono::steady_clock::now() - t0;
  INFO(s.ToString());
  CHECK(s.IsIOError());
  // Well under the 10 s the backoff lasts at the least.
  CHECK(waited < std::chrono::seconds(5));
  CHECK(h.backend().attempt_count() == 1);
  CHECK(h.queue().items() == 3);
}

TEST_CASE("Stop gives up at its deadline while the backend is slow",
          "[writer]") {
  // Stop's contract: "Gives up at `deadline`". Each Apply succeeds, only
  // slowly, so the deadline must also be checked between successful commits.
  Options o = WriterOptions();
  o.max_batch_ops = 1;  // one write per Apply
  Harness h(o);
  h.backend().SleepInApply(milliseconds(200));
  h.PushRange(1, 20);
  h.writer().Start();
  Status s = h.writer().Stop(20, In(absl::Milliseconds(300)));
  INFO(s.ToString());
  CHECK(s.code() == StatusCode::kDeadlineExceeded);
  CHECK(h.writer().durable_lsn() < 20);
  // What did commit is a prefix, and exactly what the queue released.
  const uint64_t durable = h.writer().durable_lsn();
  CHECK(h.backend().committed_flat() == Range(1, durable));
  CHECK(h.queue().items() == 20 - durable);
}

TEST_CASE("queue room is released only after commit", "[writer]") {
  Options o = WriterOptions();
  o.max_batch_ops = 1000;
  Harness h(o);
  h.backend().CloseGate();
  h.PushRange(1, 10);
  const size_t bytes = h.queue().bytes();
  REQUIRE(bytes > 0);
  h.writer().Start();
  h.writer().Wake(10);

  // The writer has pulled the batch and is inside Apply, held at the gate.
  REQUIRE(h.backend().WaitInApply(milliseconds(30000)));
  CHECK(h.queue().items() == 10);
  CHECK(h.queue().bytes() == bytes);
  CHECK(h.writer().durable_lsn() == 0);

  h.backend().OpenGate();
  Status s = h.writer().WaitDurable(10, In(absl::Seconds(60)));
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(h.queue().items() == 0);
  CHECK(h.queue().bytes() == 0);
  CHECK(h.queue().items_high_water() == 10);

  SECTION("and not after a failed commit") {
    h.backend().FailAlways(Status::IOError("disk gone"));
    h.PushRange(11, 12);
    h.writer().Wake(12);
    REQUIRE(Eventually([&] { return !h.writer().health().ok(); }));
    CHECK(h.queue().items() == 2);
    h.backend().StopFailing();
    REQUIRE(Eventually([&] { return h.writer().durable_lsn() == 12; }));
    CHECK(h.writer().WaitDurable(12, In(absl::Seconds(60))).ok());
    CHECK(h.queue().items() == 0);
  }
  CHECK(h.writer().Stop(h.writer().durable_lsn(), In(absl::Seconds(30))).ok());
}

}  // namespace
}  // namespace convstore::internal
