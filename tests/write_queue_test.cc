// Copyright 2026 The convstore Authors.
//
// WriteQueue: item and byte bounds, the oversized-op rule, room given back
// by Cancel and Release, waiting producers, and lossless multi-producer
// hand-off to the single consumer.

#include "write_queue.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace convstore::internal {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kNoWait{0};

WriteOp AppendOp(uint64_t lsn, const std::string& conversation, size_t bytes,
                 int64_t seq = 0) {
  auto m = std::make_shared<Message>();
  m->content = "m" + std::to_string(lsn);
  m->seq = seq;
  WriteOp op;
  op.lsn = lsn;
  op.bytes = bytes;
  op.payload = AppendMessageOp{conversation, std::move(m)};
  return op;
}

TEST_CASE("A SharedId's copies share one string", "[write_queue]") {
  const std::string id(40, 'u');  // longer than any small-string buffer
  SharedId a(id);
  SharedId b = a;
  CHECK(a.str() == id);
  CHECK(&b.str() == &a.str());
  AppendMessageOp op{b, nullptr};
  CHECK(&op.conversation_id.str() == &a.str());
  const std::string& as_string = op.conversation_id;
  CHECK(as_string == id);
  CHECK(SharedId().str().empty());
  CHECK_FALSE(SharedId());
  CHECK(a);
  CHECK(SharedId("x").str() == "x");
}

TEST_CASE("Reserve within bounds counts items and bytes", "[write_queue]") {
  WriteQueue q(3, 100);
  CHECK(q.items() == 0);
  CHECK(q.bytes() == 0);
  REQUIRE(q.Reserve(10, kNoWait).ok());
  REQUIRE(q.Reserve(20, kNoWait).ok());
  CHECK(q.items() == 2);
  CHECK(q.bytes() == 30);
  CHECK(q.rejections() == 0);
}

TEST_CASE("Best-effort room ends at 3/4 of the bounds and is counted",
          "[write_queue]") {
  WriteQueue q(8, 1000);
  for (int i = 0; i < 6; ++i) REQUIRE(q.ReserveBestEffort(10).ok());
  Status s = q.ReserveBestEffort(10);
  CHECK(s.IsResourceExhausted());
  CHECK(q.shed() == 1);
  CHECK(q.rejections() == 0);
  CHECK(q.items() == 6);
  // The last quarter stays for batched and sync writes.
  REQUIRE(q.Reserve(10, kNoWait).ok());
  REQUIRE(q.Reserve(10, kNoWait).ok());
  CHECK(q.Reserve(10, kNoWait).IsResourceExhausted());
  // The byte bound sheds too.
  WriteQueue b(100, 100);
  REQUIRE(b.ReserveBestEffort(70).ok());
  CHECK(b.ReserveBestEffort(10).IsResourceExhausted());
  CHECK(b.shed() == 1);
  REQUIRE(b.Reserve(30, kNoWait).ok());
}

TEST_CASE("The item bound rejects with ResourceExhausted", "[write_queue]") {
  WriteQueue q(3, 1000);
  for (int i = 0; i < 3; ++i) REQUIRE(q.Reserve(10, kNoWait).ok());
  Status s = q.Reserve(10, kNoWait);
  CHECK(s.IsResourceExhausted());
  CHECK(s.message().find("write queue full (3 writes, 30 bytes") == 0);
  CHECK(q.rejections() == 1);
  CHECK(q.Reserve(0, kNoWait).IsResourceExhausted());
  CHECK(q.rejections() == 2);
  // A failed Reserve takes nothing.
  CHECK(q.items() == 3);
  CHECK(q.bytes() == 30);
}

TEST_CASE("The byte bound rejects with ResourceExhausted", "[write_queue]") {
  WriteQueue q(100, 100);
  REQUIRE(q.Reserve(60, kNoWait).ok());
  REQUIRE(q.Reserve(40, kNoWait).ok());  // exactly at the bound
  CHECK(q.bytes() == 100);
  CHECK(q.Reserve(1, kNoWait).IsResourceExhausted());
  CHECK(q.rejections() == 1);
  CHECK(q.Reserve(0, kNoWait).ok());  // an empty op still fits by bytes
  CHECK(q.items() == 3);
  CHECK(q.bytes() == 100);
}

TEST_CASE("An oversized op is admitted only into an empty queue",
          "[write_queue]") {
  WriteQueue q(10, 100);
  REQUIRE(q.Reserve(150, kNoWait).ok());
  CHECK(q.items() == 1);
  CHECK(q.bytes() == 150);
  // Nothing else fits while it is queued.
  CHECK(q.Reserve(1, kNoWait).IsResourceExhausted());
  CHECK(q.Reserve(150, kNoWait).IsResourceExhausted());
  CHECK(q.rejections() == 2);
  q.Release(1, 150);
  CHECK(q.items() == 0);
  CHECK(q.bytes() == 0);
  // Into a non-empty queue it does not fit.
  REQUIRE(q.Reserve(10, kNoWait).ok());
  CHECK(q.Reserve(150, kNoWait).IsResourceExhausted());
  CHECK(q.rejections() == 3);
  CHECK(q.items() == 1);
  CHECK(q.bytes() == 10);
}

TEST_CASE("Cancel and Release give room back", "[write_queue]") {
  WriteQueue q(2, 100);
  REQUIRE(q.Reserve(50, kNoWait).ok());
  REQUIRE(q.Reserve(50, kNoWait).ok());
  CHECK(q.Reserve(1, kNoWait).IsResourceExhausted());
  q.Cancel(50);
  CHECK(q.items() == 1);
  CHECK(q.bytes() == 50);
  REQUIRE(q.Reserve(30, kNoWait).ok());
  CHECK(q.items() == 2);
  CHECK(q.bytes() == 80);
  q.Release(2, 80);
  CHECK(q.items() == 0);
  CHECK(q.bytes() == 0);
  REQUIRE(q.Reserve(100, kNoWait).ok());
  REQUIRE(q.Reserve(0, kNoWait).ok());
  CHECK(q.rejections() == 1);
}

TEST_CASE("A Reserve that runs out of wait is rejected", "[write_queue]") {
  WriteQueue q(1, 100);
  REQUIRE(q.Reserve(10, kNoWait).ok());
  Status s = q.Reserve(10, milliseconds(20));
  CHECK(s.IsResourceExhausted());
  CHECK(q.rejections() == 1);
  CHECK(q.items() == 1);
}

TEST_CASE("A waiting Reserve succeeds once another thread releases",
          "[write_queue]") {
  WriteQueue q(1, 100);
  REQUIRE(q.Reserve(10, kNoWait).ok());
  std::atomic<bool> done{false};
  Status result = Status::Internal("not run");
  std::thread waiter([&] {
    result = q.Reserve(10, milliseconds(60000));
    done.store(true);
  });
  // The queue is full, so the waiter cannot have got in yet, however long
  // this sleep turns out to be.
  std::this_thread::sleep_for(milliseconds(50));
  CHECK_FALSE(done.load());
  q.Release(1, 10);
  waiter.join();
  CHECK(done.load());
  CHECK(result.ok());
  CHECK(q.items() == 1);
  CHECK(q.bytes() == 10);
  CHECK(q.rejections() == 0);
}

TEST_CASE("Push and PopBulk hand over ops in order for one producer",
          "[write_queue]") {
  WriteQueue q(100, 10000);
  for (uint64_t lsn = 1; lsn <= 5; ++lsn) {
    REQUIRE(q.Reserve(10 * lsn, kNoWait).ok());
    q.Push(AppendOp(lsn, "c", 10 * lsn, static_cast<int64_t>(lsn)));
  }
  REQUIRE(q.Reserve(7, kNoWait).ok());
  WriteOp del;
  del.lsn = 6;
  del.bytes = 7;
  del.payload = DeleteConversationOp{"c"};
  q.Push(std::move(del));

  std::vector<WriteOp> out;
  out.push_back(AppendOp(999, "already there", 0));
  CHECK(q.PopBulk(&out, 3) == 3);
  REQUIRE(out.size() == 4);  // appended, not replaced
  CHECK(out[0].lsn == 999);
  CHECK(q.PopBulk(&out, 100) == 3);
  REQUIRE(out.size() == 7);
  CHECK(q.PopBulk(&out, 100) == 0);
  CHECK(out.size() == 7);

  for (uint64_t lsn = 1; lsn <= 5; ++lsn) {
    const WriteOp& op = out[lsn];
    CHECK(op.lsn == lsn);
    CHECK(op.bytes == 10 * lsn);
    const auto* a = std::get_if<AppendMessageOp>(&op.payload);
    REQUIRE(a != nullptr);
    CHECK(a->conversation_id.str() == "c");
    CHECK(a->message->seq == static_cast<int64_t>(lsn));
    CHECK(a->message->content == "m" + std::to_string(lsn));
  }
  const auto* d = std::get_if<DeleteConversationOp>(&out[6].payload);
  REQUIRE(d != nullptr);
  CHECK(d->conversation_id == "c");
  CHECK(out[6].lsn == 6);

  // Popping does not give room back; Release does.
  CHECK(q.items() == 6);
  CHECK(q.bytes() == 157);
  q.Release(6, 157);
  CHECK(q.items() == 0);
  CHECK(q.bytes() == 0);
}

TEST_CASE("High-water marks track the largest successful reservation",
          "[write_queue]") {
  WriteQueue q(3, 100);
  CHECK(q.items_high_water() == 0);
  CHECK(q.bytes_high_water() == 0);
  REQUIRE(q.Reserve(10, kNoWait).ok());
  REQUIRE(q.Reserve(20, kNoWait).ok());
  REQUIRE(q.Reserve(30, kNoWait).ok());
  CHECK(q.items_high_water() == 3);
  CHECK(q.bytes_high_water() == 60);
  // Rejected attempts do not move the marks.
  CHECK(q.Reserve(5, kNoWait).IsResourceExhausted());
  CHECK(q.items_high_water() == 3);
  CHECK(q.bytes_high_water() == 60);
  q.Release(3, 60);
  REQUIRE(q.Reserve(90, kNoWait).ok());
  CHECK(q.items_high_water() == 3);
  CHECK(q.bytes_high_water() == 90);
  CHECK(q.items() == 1);
  CHECK(q.bytes() == 90);
}

// Four producers push concurrently with one consumer that pops and releases;
// the queue is small enough that producers must wait for room. Every LSN
// comes out exactly once, and each producer's ops keep their order.
TEST_CASE("Multi-producer hand-off loses and duplicates nothing",
          "[write_queue]") {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 5000;
  constexpr uint64_t kTotal = kProducers * kPerProducer;
  WriteQueue q(64, 64 * 100);
  std::atomic<uint64_t> next_lsn{1};
  std::atomic<int> failures{0};

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::string conv = "p" + std::to_string(p);
      for (int i = 1; i <= kPerProducer; ++i) {
        size_t bytes = 1 + static_cast<size_t>(i % 100);
        if (!q.Reserve(bytes, milliseconds(60000)).ok()) {
          failures.fetch_add(1);
          return;
        }
        q.Push(AppendOp(next_lsn.fetch_add(1), conv, bytes, i));
      }
    });
  }

  std::vector<uint64_t> lsns;
  std::vector<int64_t> last_seq(kProducers, 0);
  bool in_order = true;
  uint64_t popped = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  std::vector<WriteOp> batch;
  while (popped < kTotal && std::chrono::steady_clock::now() < deadline &&
         failures.load() == 0) {
    batch.clear();
    size_t n = q.PopBulk(&batch, 37);
    if (n == 0) {
      std::this_thread::yield();
      continue;
    }
    size_t bytes = 0;
    for (const WriteOp& op : batch) {
      lsns.push_back(op.lsn);
      bytes += op.bytes;
      const auto& a = std::get<AppendMessageOp>(op.payload);
      int p = std::stoi(a.conversation_id.str().substr(1));
      if (a.message->seq != last_seq[p] + 1) in_order = false;
      last_seq[p] = a.message->seq;
      if (op.bytes != 1 + static_cast<size_t>(a.message->seq % 100)) {
        in_order = false;
      }
    }
    popped += n;
    q.Release(n, bytes);
  }
  for (std::thread& t : producers) t.join();

  REQUIRE(failures.load() == 0);
  REQUIRE(popped == kTotal);
  CHECK(in_order);
  std::sort(lsns.begin(), lsns.end());
  std::vector<uint64_t> want(kTotal);
  for (uint64_t i = 0; i < kTotal; ++i) want[i] = i + 1;
  CHECK(lsns == want);
  for (int p = 0; p < kProducers; ++p) CHECK(last_seq[p] == kPerProducer);
  batch.clear();
  CHECK(q.PopBulk(&batch, 10) == 0);
  CHECK(q.items() == 0);
  CHECK(q.bytes() == 0);
  CHECK(q.items_high_water() <= 64);
  CHECK(q.items_high_water() >= 1);
  CHECK(q.bytes_high_water() <= 64 * 100);
  CHECK(q.rejections() == 0);
}

}  // namespace
}  // namespace convstore::internal
