// Copyright 2026 The convstore Authors.
//
// Concurrency against a model:
//  * appending threads (each owning its conversations) and reader threads:
//    every History is a gap-free prefix of what was appended and holds at
//    least every message acknowledged before the read;
//  * eviction under load while the queue is not drained: a backend that is
//    slow (or stalled) in Apply keeps writes queued while tiny cache bounds
//    evict conversations; every History must still be complete;
//  * deletes racing appends: what survives (in memory, on disk, after
//    reopen) is exactly the appends acknowledged after the conversation's
//    last delete, as seq 1..k.
//
// Worker threads never call Catch2 macros (not thread-safe in Catch2 v2);
// they collect failures in an Errors list that the main thread checks.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"
#include "forwarding_backend.h"
#include "sqlite/sqlite_backend.h"
#include "storage_backend.h"
#include "store_impl.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::Contents;
using test::Hist;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

// Failures seen by worker threads, checked on the main thread.
class Errors {
 public:
  void Add(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    if (list_.size() < 20) list_.push_back(std::move(e));
  }
  void Check() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& e : list_) UNSCOPED_INFO(e);
    CHECK(count_ == 0);
  }

 private:
  std::mutex mu_;
  size_t count_ = 0;
  std::vector<std::string> list_;
};

// The deterministic message `seq` of conversation `conv`: users and
// assistants only, so windows never strip tool results.
Message Gen(const std::string& conv, int64_t seq) {
  Message m;
  m.role = seq % 2 ? Role::kUser : Role::kAssistant;
  m.content = conv + "#" + std::to_string(seq) + " " +
              std::string(static_cast<size_t>(seq * 7 % 50), 'x');
  m.tokens_in = seq % 7 + 1;
  m.created_at_us = 1'600'000'000'000'000 + seq;
  return m;
}

// Checks that `got` is the contiguous run of Gen messages starting at
// first_seq. Returns an error text or "".
std::string CheckRun(const std::string& conv,
                     const std::vector<MessagePtr>& got, int64_t first_seq) {
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t seq = first_seq + static_cast<int64_t>(i);
    const Message want = Gen(conv, seq);
    if (got[i]->seq != seq || got[i]->content != want.content ||
        got[i]->role != want.role || got[i]->tokens_in != want.tokens_in) {
      return conv + ": position " + std::to_string(i) + " has seq " +
             std::to_string(got[i]->seq) + " [" + got[i]->content +
             "], want seq " + std::to_string(seq);
    }
  }
  return "";
}

// One random History call on `conv`, with `acked` messages acknowledged
// before the call and `max_total` ever to be appended. Returns "" if the
// answer is consistent with the model.
std::string ReadAndCheck(Store* store, const std::string& conv, int64_t acked,
                         int64_t max_total, std::mt19937_64& rng) {
  const int kind = static_cast<int>(rng() % 4);
  HistoryOptions o;
  if (kind == 1) o.last_n = 5;
  if (kind == 2) {
    o.after_seq =
        static_cast<int64_t>(rng() % static_cast<uint64_t>(acked + 1));
    o.limit = 10;
  }
  if (kind == 3) o.token_budget = 20;
  StatusOr<std::vector<MessagePtr>> r = store->History(conv, o);
  if (!r.ok()) return conv + ": History: " + r.status().ToString();
  const std::vector<MessagePtr>& got = *r;
  const std::string what = conv + " kind " + std::to_string(kind) + ": ";
  const int64_t n = static_cast<int64_t>(got.size());
  const int64_t first = got.empty() ? 0 : got.front()->seq;
  const int64_t last = got.empty() ? 0 : got.back()->seq;
  std::string e = CheckRun(conv, got, got.empty() ? 1 : first);
  if (!e.empty()) return what + e;
  if (last > max_total) return what + "seq beyond what was appended";
  switch (kind) {
    case 0:
      if (first > 1) return what + "full history does not start at 1";
      if (n < acked) {
        return what + "missing acknowledged messages: " + std::to_string(n) +
               " < " + std::to_string(acked);
      }
      break;
    case 1:
      if (n > 5) return what + "last_n=5 returned " + std::to_string(n);
      if (last < acked) return what + "last_n misses acknowledged messages";
      if (n < 5 && n > 0 && first != 1) return what + "short last_n window";
      if (acked > 0 && n == 0) return what + "empty last_n window";
      break;
    case 2:
      if (n > 10) return what + "limit=10 returned " + std::to_string(n);
      if (n > 0 && first != o.after_seq + 1) return what + "page start";
      if (acked >= o.after_seq + 10 && n != 10) return what + "short page";
      if (acked > o.after_seq && n == 0) return what + "empty page";
      break;
    case 3: {
      int64_t sum = 0;
      for (const MessagePtr& m : got) sum += m->tokens();
      if (sum > 20) return what + "over the token budget";
      if (last < acked) return what + "budget window misses the newest";
      if (n > 0 && first > 1 && sum + Gen(conv, first - 1).tokens() <= 20) {
        return what + "budget window is not maximal";
      }
      if (acked > 0 && n == 0) return what + "empty budget window";
      break;
    }
  }
  return "";
}

// Every conversation holds exactly Gen(conv, 1..count).
void CheckFinal(Store* store, const std::map<std::string, int64_t>& counts,
                bool from_storage) {
  for (const auto& [conv, count] : counts) {
    INFO(conv << " from_storage=" << from_storage);
    std::vector<MessagePtr> got =
        Hist(store, conv, {.from_storage = from_storage});
    CHECK(static_cast<int64_t>(got.size()) == count);
    CHECK(CheckRun(conv, got, 1) == "");
  }
}

TEST_CASE("Appenders and readers: History is always a complete prefix",
          "[concurrency]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_flush_delay = std::chrono::milliseconds(2);
  o.cache_shards = 4;
  o.cache_max_conversations = 8;  // far fewer than the 24 in use
  o.cache_max_messages_per_conversation = 16;
  auto store = OpenOrDie(o);

  constexpr int kAppenders = 4;
  constexpr int kConvsEach = 6;
  constexpr int64_t kMsgs = 150;
  constexpr int kReaders = 3;
  std::vector<std::string> convs;
  for (int a = 0; a < kAppenders; ++a) {
    for (int j = 0; j < kConvsEach; ++j) {
      convs.push_back("t" + std::to_string(a) + "-c" + std::to_string(j));
    }
  }
  std::vector<std::atomic<int64_t>> acked(convs.size());
  for (auto& a : acked) a.store(0);
  std::atomic<int> appenders_left{kAppenders};
  // Appenders start once every reader runs, so reads overlap the writes even
  // when the reader threads are scheduled late on a busy machine.
  std::atomic<int> readers_running{0};
  Errors errors;

  std::vector<std::thread> threads;
  for (int a = 0; a < kAppenders; ++a) {
    threads.emplace_back([&, a] {
      while (readers_running.load() < kReaders) std::this_thread::yield();
      for (int64_t seq = 1; seq <= kMsgs; ++seq) {
        for (int j = 0; j < kConvsEach; ++j) {
          const size_t idx = static_cast<size_t>(a * kConvsEach + j);
          StatusOr<AppendResult> r =
              store->Append(convs[idx], Gen(convs[idx], seq));
          if (!r.ok()) {
            errors.Add("Append: " + r.status().ToString());
            continue;
          }
          if (r->seq != seq) {
            errors.Add(convs[idx] + ": Append returned seq " +
                       std::to_string(r->seq) + ", want " +
                       std::to_string(seq));
          }
          acked[idx].store(seq, std::memory_order_release);
        }
        // Durable entries become evictable: the next appends evict the
        // least recently used ones while readers read them back through.
        if (seq % 30 == 0) {
          Status s = store->Flush();
          if (!s.ok()) errors.Add("Flush: " + s.ToString());
        }
      }
      appenders_left.fetch_sub(1);
    });
  }
  std::atomic<uint64_t> reads{0};
  for (int t = 0; t < kReaders; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
      readers_running.fetch_add(1);
      while (appenders_left.load() > 0) {
        const size_t idx = rng() % convs.size();
        const int64_t before = acked[idx].load(std::memory_order_acquire);
        std::string e =
            ReadAndCheck(store.get(), convs[idx], before, kMsgs, rng);
        if (!e.empty()) errors.Add(e);
        reads.fetch_add(1);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  errors.Check();
  CHECK(reads.load() > 0);

  std::map<std::string, int64_t> counts;
  for (const std::string& c : convs) counts[c] = kMsgs;
  CheckFinal(store.get(), counts, false);
  REQUIRE(store->Flush().ok());
  CheckFinal(store.get(), counts, true);
  Stats st = store->GetStats();
  CHECK(st.cache_evictions > 0);
  CHECK(st.db_messages == convs.size() * kMsgs);
  REQUIRE(store->Close().ok());
  store = OpenOrDie(o);
  CheckFinal(store.get(), counts, false);
}

// Wraps the real SQLite backend: Apply can be slowed down (a slow disk) or
// stalled until released (a disk that does not answer).
class SlowBackend final : public internal::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;

  void SetDelay(std::chrono::microseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    delay_ = d;
  }
  void Stall(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_ = on;
    cv_.notify_all();
  }
  uint64_t applies() {
    std::lock_guard<std::mutex> lock(mu_);
    return applies_;
  }

  Status Apply(std::span<const internal::WriteOp> batch) override {
    std::chrono::microseconds delay;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Bounded, so a broken test cannot hang forever.
      cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !stalled_; });
      delay = delay_;
      ++applies_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    return ForwardingBackend::Apply(batch);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stalled_ = false;
  std::chrono::microseconds delay_{0};
  uint64_t applies_ = 0;
};

// Opens a store on a SlowBackend; *slow stays valid while the store lives.
std::unique_ptr<Store> OpenSlow(const Options& o, SlowBackend** slow) {
  std::filesystem::create_directories(
      std::filesystem::path(o.path).parent_path());
  std::unique_ptr<internal::SqliteBackend> sqlite;
  Status s = internal::SqliteBackend::Open(o, &sqlite);
  INFO(s.ToString());
  REQUIRE(s.ok());
  auto wrapper = std::make_unique<SlowBackend>(std::move(sqlite));
  *slow = wrapper.get();
  StatusOr<std::unique_ptr<Store>> store =
      internal::StoreImpl::OpenWithBackend(o, std::move(wrapper));
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return std::move(store).value();
}

Options TinyCacheOptions(const TempDir& dir) {
  Options o = TestOptions(dir);
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.max_batch_ops = 8;  // a slow disk drains the queue slowly
  o.cache_shards = 1;
  o.cache_max_conversations = 4;
  o.cache_max_messages_per_conversation = 3;
  return o;
}

TEST_CASE("Evicted conversations read back complete while writes are queued",
          "[concurrency][eviction]") {
  TempDir dir;
  const Options o = TinyCacheOptions(dir);
  SlowBackend* slow = nullptr;
  auto store = OpenSlow(o, &slow);
  constexpr int kConvs = 40;
  std::map<std::string, int64_t> counts;
  auto append = [&](const std::string& conv) {
    const int64_t seq = ++counts[conv];
    StatusOr<AppendResult> r = store->Append(conv, Gen(conv, seq));
    INFO(conv << ": " << r.status().ToString());
    REQUIRE(r.ok());
    REQUIRE(r->seq == seq);
  };

  // Phase 1: durable history, most of it evicted.
  for (int c = 0; c < kConvs; ++c) {
    for (int i = 0; i < 6; ++i) append("e" + std::to_string(c));
    REQUIRE(store->Flush().ok());
  }
  const uint64_t evictions_durable = store->GetStats().cache_evictions;
  CHECK(evictions_durable > 0);

  // Phase 2: the disk stops answering. New writes to every conversation
  // (evicted or not) and to new ones stay queued; History must merge the
  // durable part (read through) with the queued part.
  slow->Stall(true);
  for (int c = 0; c < kConvs; ++c) {
    for (int i = 0; i < 5; ++i) append("e" + std::to_string(c));
    for (int i = 0; i < 3; ++i) append("fresh" + std::to_string(c));
  }
  Stats st = store->GetStats();
  REQUIRE(st.durable_lsn < st.appended_lsn);
  const uint64_t pending_from = st.durable_lsn;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [conv, count] : counts) {
      INFO(conv << " pass " << pass);
      std::vector<MessagePtr> all = Hist(store.get(), conv);
      CHECK(static_cast<int64_t>(all.size()) == count);
      CHECK(CheckRun(conv, all, 1) == "");
      std::vector<MessagePtr> page =
          Hist(store.get(), conv, {.after_seq = 4, .limit = 3});
      if (count == 11) {
        CHECK(CheckRun(conv, page, 5) == "");  // durable 5, 6 + queued 7
        CHECK(page.size() == 3);
      }
      std::vector<MessagePtr> tail = Hist(store.get(), conv, {.last_n = 2});
      CHECK(CheckRun(conv, tail, count - 1) == "");
    }
  }
  st = store->GetStats();
  CHECK(st.durable_lsn == pending_from);  // everything above was queued
  CHECK(st.durable_lsn < st.appended_lsn);

  // Phase 3: a slow disk under load. One thread appends to a few random
  // conversations per round, readers check random conversations against the
  // model; conversations become durable a few at a time and are evicted
  // (on the next append or read miss) while others are still queued.
  slow->SetDelay(std::chrono::milliseconds(2));
  slow->Stall(false);
  std::vector<std::string> convs;
  for (const auto& [conv, count] : counts) convs.push_back(conv);
  std::vector<std::atomic<int64_t>> acked(convs.size());
  for (size_t i = 0; i < convs.size(); ++i) acked[i].store(counts[convs[i]]);
  constexpr int kRounds = 40;
  constexpr int kPerRound = 8;
  // The most any conversation can hold: 11 so far plus one per append.
  const int64_t max_total = 11 + kRounds * kPerRound;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads_while_queued{0};
  Errors errors;
  const uint64_t evictions_before = store->GetStats().cache_evictions;
  std::thread appender([&] {
    std::mt19937_64 rng(7);
    for (int round = 0; round < kRounds; ++round) {
      for (int k = 0; k < kPerRound; ++k) {
        const size_t i = rng() % convs.size();
        const int64_t seq = acked[i].load() + 1;
        StatusOr<AppendResult> r = store->Append(convs[i], Gen(convs[i], seq));
        if (!r.ok() || r->seq != seq) {
          errors.Add(convs[i] + ": append " + r.status().ToString());
          continue;
        }
        acked[i].store(seq, std::memory_order_release);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    done.store(true);
  });
  std::vector<std::thread> readers;
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 99);
      // Until the appender is done and the slow disk has caught up.
      bool queued = true;
      while ((!done.load() || queued) &&
             std::chrono::steady_clock::now() < give_up) {
        const size_t i = rng() % convs.size();
        const int64_t before = acked[i].load(std::memory_order_acquire);
        Stats s0 = store->GetStats();
        std::string e =
            ReadAndCheck(store.get(), convs[i], before, max_total, rng);
        if (!e.empty()) errors.Add(e);
        Stats s1 = store->GetStats();
        queued = s1.durable_lsn < s1.appended_lsn;
        // Nothing became durable during the read: it ran while queued.
        if (queued && s0.durable_lsn == s1.durable_lsn) {
          reads_while_queued.fetch_add(1);
        }
      }
    });
  }
  appender.join();
  for (std::thread& th : readers) th.join();
  errors.Check();
  CHECK(reads_while_queued.load() > 0);
  // Every conversation, right away (queue not necessarily drained).
  for (size_t i = 0; i < convs.size(); ++i) counts[convs[i]] = acked[i].load();
  CheckFinal(store.get(), counts, false);
  CHECK(store->GetStats().cache_evictions > evictions_before);

  slow->SetDelay(std::chrono::microseconds(0));
  REQUIRE(store->Flush().ok());
  CheckFinal(store.get(), counts, true);
  REQUIRE(store->Close().ok());
  store = OpenOrDie(o);
  CheckFinal(store.get(), counts, false);
}

// What one Append or Delete call returned.
struct Acked {
  bool is_delete = false;
  std::string conv;
  std::string content;
  int64_t seq = 0;
  uint64_t lsn = 0;
};

void RunDeleteRace(Store* store, const std::vector<std::string>& convs,
                   std::vector<Acked>* log, Errors* errors) {
  constexpr int kAppenders = 3;
  constexpr int kPerAppender = 400;
  std::mutex log_mu;
  std::atomic<int> left{kAppenders};
  // Appends start once the deleter runs, so deletes overlap them even when
  // its thread is scheduled late on a busy machine.
  std::atomic<bool> deleter_running{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kAppenders; ++t) {
    threads.emplace_back([&, t] {
      while (!deleter_running.load()) std::this_thread::yield();
      std::vector<Acked> mine;
      for (int i = 0; i < kPerAppender; ++i) {
        Acked a;
        a.conv = convs[static_cast<size_t>(i + t) % convs.size()];
        a.content = "t" + std::to_string(t) + "-" + std::to_string(i);
        Message m;
        m.role = Role::kUser;
        m.content = a.content;
        StatusOr<AppendResult> r = store->Append(a.conv, m);
        if (!r.ok()) {
          errors->Add("Append: " + r.status().ToString());
          continue;
        }
        a.seq = r->seq;
        a.lsn = r->lsn;
        mine.push_back(a);
      }
      std::lock_guard<std::mutex> lock(log_mu);
      log->insert(log->end(), mine.begin(), mine.end());
      left.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {  // the deleter
    std::mt19937_64 rng(42);
    std::vector<Acked> mine;
    deleter_running.store(true);
    while (left.load() > 0) {
      Acked d;
      d.is_delete = true;
      d.conv = convs[rng() % convs.size()];
      StatusOr<uint64_t> r = store->DeleteConversation(d.conv);
      if (!r.ok()) {
        errors->Add("Delete: " + r.status().ToString());
        continue;
      }
      d.lsn = *r;
      mine.push_back(d);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
    }
    std::lock_guard<std::mutex> lock(log_mu);
    log->insert(log->end(), mine.begin(), mine.end());
  });
  threads.emplace_back([&] {  // a reader: seqs always 1..k, no duplicates
    size_t i = 0;
    while (left.load() > 0) {
      const std::string& conv = convs[i++ % convs.size()];
      StatusOr<std::vector<MessagePtr>> r = store->History(conv);
      if (!r.ok()) {
        errors->Add("History: " + r.status().ToString());
        continue;
      }
      for (size_t k = 0; k < r->size(); ++k) {
        if ((*r)[k]->seq != static_cast<int64_t>(k) + 1) {
          errors->Add(conv + ": History has seq " +
                      std::to_string((*r)[k]->seq) + " at position " +
                      std::to_string(k));
          break;
        }
      }
    }
  });
  for (std::thread& th : threads) th.join();
}

// conversation -> the contents that must survive: the appends acknowledged
// after its last acknowledged delete, in LSN order.
std::map<std::string, std::vector<std::string>> Survivors(
    const std::vector<std::string>& convs, std::vector<Acked> log,
    size_t* deletes) {
  std::sort(log.begin(), log.end(),
            [](const Acked& a, const Acked& b) { return a.lsn < b.lsn; });
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& c : convs) out[c];
  *deletes = 0;
  std::map<std::string, int64_t> next_seq;
  for (const Acked& a : log) {
    if (a.is_delete) {
      out[a.conv].clear();
      next_seq[a.conv] = 0;
      ++*deletes;
      continue;
    }
    // Per conversation, seq follows LSN order and restarts after a delete.
    CHECK(a.seq == ++next_seq[a.conv]);
    out[a.conv].push_back(a.content);
  }
  return out;
}

TEST_CASE("Deletes racing appends never resurrect data",
          "[concurrency][delete]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.cache_shards = 1;
  o.cache_max_conversations = 2;
  const std::vector<std::string> convs = {"race-0", "race-1", "race-2"};
  const bool stalled = GENERATE(false, true);
  INFO("disk stalled during the race: " << stalled);

  SlowBackend* slow = nullptr;
  auto store = OpenSlow(o, &slow);
  // Some durable history first, so deletes also hit stored rows.
  std::vector<Acked> log;
  for (const std::string& c : convs) {
    for (int i = 0; i < 5; ++i) {
      Acked a;
      a.conv = c;
      a.content = "before-" + std::to_string(i);
      StatusOr<AppendResult> r =
          store->Append(c, test::Msg(Role::kUser, a.content));
      REQUIRE(r.ok());
      a.seq = r->seq;
      a.lsn = r->lsn;
      log.push_back(a);
    }
  }
  REQUIRE(store->Flush().ok());
  // Stalled: every append and delete of the race is still queued when it
  // ends, and reaches the database in a few large mixed batches.
  if (stalled) slow->Stall(true);

  Errors errors;
  RunDeleteRace(store.get(), convs, &log, &errors);
  errors.Check();
  if (stalled) {
    Stats st = store->GetStats();
    CHECK(st.durable_lsn < st.appended_lsn);
    slow->Stall(false);
  }
  size_t deletes = 0;
  std::map<std::string, std::vector<std::string>> want =
      Survivors(convs, log, &deletes);
  CHECK(deletes > 0);

  auto check = [&](Store* s, bool from_storage) {
    for (const std::string& c : convs) {
      INFO(c << " from_storage=" << from_storage);
      std::vector<MessagePtr> got = Hist(s, c, {.from_storage = from_storage});
      CHECK(Contents(got) == want[c]);
      for (size_t k = 0; k < got.size(); ++k) {
        CHECK(got[k]->seq == static_cast<int64_t>(k) + 1);
      }
    }
  };
  check(store.get(), false);
  REQUIRE(store->Flush().ok());
  check(store.get(), true);
  REQUIRE(store->Close().ok());
  for (int64_t warm : {-1, 0}) {
    Options reopen = o;
    reopen.warm_conversations = warm;
    auto again = OpenOrDie(reopen);
    check(again.get(), false);
    uint64_t total = 0;
    for (const auto& [c, w] : want) total += w.size();
    CHECK(again->GetStats().db_messages == total);
    REQUIRE(again->Close().ok());
  }
}

}  // namespace
}  // namespace convstore
