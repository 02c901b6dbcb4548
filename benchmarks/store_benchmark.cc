// Copyright 2026 The convstore Authors.
//
// The store's throughput and latency. Every target in docs/benchmarks.md is
// a ratio against a reference_benchmark.cc figure from the same run. Run
// all of it with benchmarks/run.sh; a single one with e.g.
//   ./build-bench/benchmarks/convstore_benchmark
//       --benchmark_filter=BM_Store_HistoryHot
// Each benchmark works in a fresh directory under $TMPDIR (or /tmp).

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace convstore::bench {
namespace {

// Append from range(0) threads over kConversations interleaved
// conversations, then Flush: items_per_second counts messages made durable.
// range(1) is the number of messages already in the file (old history of
// the same conversations, see CopyStoreFixture).
//
// Steady state: every Options::index_merge_rows messages the writer merges
// them into the file's index, one transaction the next batch waits for
// (docs/architecture.md). Each iteration appends exactly that many, so
// each pays for exactly one merge: the one its predecessor's last commit
// started (the warm-up's, for the first). The warm-up also takes the
// first merge after open, which reads the index's pages cold, out of the
// timed part; `merge_max_ms` (the longest merge since open) shows it.
void BM_Store_AppendDurable(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t existing = state.range(1);
  fs::path dir = ScratchDir("append_durable");
  Options o = BenchOptions(dir);
  // The cache holds every conversation at every database size, so the
  // timed part reads nothing from the file and what changes with the size
  // is the writer's work alone. Warming at open would fill it with old
  // history (up to the bound) and appends would then evict conversations;
  // the warm-up below loads what appending needs.
  o.cache_max_bytes = size_t{1} << 30;
  o.warm_conversations = 0;
  if (existing > 0) CopyStoreFixture(existing, dir);
  auto store = MustOpen(o);
  std::vector<std::string> ids;
  for (int c = 0; c < kConversations; ++c) ids.push_back(ConvId(c));
  // Thread t appends to conversations t, t + threads, t + 2 * threads, ...
  // in turn, resuming where its previous round stopped: all of them when
  // `threads` divides kConversations (1, 2 and 4 do).
  std::vector<int64_t> cursor(static_cast<size_t>(threads), 0);
  auto append = [&](int64_t n) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      const int64_t mine = n / threads + (t < n % threads ? 1 : 0);
      workers.emplace_back([&, t, mine] {
        Message m = BenchMessage(t);
        int64_t at = cursor[static_cast<size_t>(t)];  // no shared writes
        for (int64_t k = 0; k < mine; ++k, ++at) {
          const int64_t conv = (at % (kConversations / threads)) * threads + t;
          MustOk(store->Append(ids[static_cast<size_t>(conv)], m).status(),
                 "Append");
        }
        cursor[static_cast<size_t>(t)] = at;
      });
    }
    for (auto& w : workers) w.join();
    MustOk(store->Flush(), "Flush");
  };
  // Warm-up, untimed. Touch every conversation once, so the timed part
  // measures appending, not the first read of a cold conversation
  // (HistoryCold); append until the writer has merged once; then bring the
  // unmerged messages to exactly one merge's worth, which starts a merge.
  for (const std::string& id : ids) {
    MustOk(store->Append(id, BenchMessage(0)).status(), "warm-up Append");
  }
  MustOk(store->Flush(), "warm-up Flush");
  const int64_t per_merge = static_cast<int64_t>(o.index_merge_rows);
  Stats now = store->GetStats();
  const uint64_t merges_at_open = now.index_merges;
  for (int64_t added = 0; now.index_merges == merges_at_open; added += 4096) {
    if (added > 4 * per_merge) {
      Fail("no index merge after " + std::to_string(added) +
           " messages: " + now.background_error);
    }
    append(4096);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    now = store->GetStats();
  }
  // Everything is flushed and that merge is done, so this count is exact.
  const int64_t to_merge =
      per_merge - static_cast<int64_t>(now.unmerged_messages);
  if (to_merge <= 0) {
    Fail(std::to_string(now.unmerged_messages) +
         " unmerged messages after a merge: at least one merge's worth (" +
         std::to_string(per_merge) + ")");
  }
  append(to_merge);
  const Stats before = store->GetStats();
  for (auto _ : state) append(per_merge);
  state.SetItemsProcessed(state.iterations() * per_merge);
  // Where the time went: reads of evicted conversations, commits, and
  // merges completed while the timed part ran (the writer's time in them).
  // `before` and `after` are taken while a merge runs (at least 100 ms
  // here); a host stalled that long could move one merge across either.
  const Stats after = store->GetStats();
  state.counters["cache_misses"] =
      static_cast<double>(after.cache_misses - before.cache_misses);
  state.counters["batches"] =
      static_cast<double>(after.batches_committed - before.batches_committed);
  state.counters["merges"] =
      static_cast<double>(after.index_merges - before.index_merges);
  state.counters["merge_ms"] =
      static_cast<double>(after.index_merge_total_us -
                          before.index_merge_total_us) /
      1000.0;
  state.counters["merge_max_ms"] =
      static_cast<double>(after.index_merge_max_us) / 1000.0;
  MustOk(store->Close().status(), "Close");
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_AppendDurable)
    ->ArgNames({"threads", "rows"})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({4, 0})
    ->Args({2, 1'000'000})
    ->Args({2, 10'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Per-call Append latency with the writer committing in the background,
// in a closed loop: the calls outrun the writer. Copied: the caller keeps
// its message (Append copies it, strings and all). Moved: the caller hands
// over a message it built (the copy that stands for building it is made
// outside the timed call), as an agent does with the text its model
// returned, and a binding with the message it converted.
// Before timing, the calls fill the cache until every shard is at its
// bytes bound (the cache's messages stop growing): every timed call then
// runs in the loop's steady state, where the writer is behind, every
// conversation pinned, and each call drops a durable message. (Until
// 2026-12-07 timing began on an empty store, and then briefly at the first
// drop, when only the fullest shard was at its bound; the share of calls
// that found their shard still filling, touching new pages and dropping
// nothing, depended on how many iterations Google Benchmark chose. See
// docs/benchmarks.md, "The closed loop's regime".) `rejected` counts timed
// calls that failed; it must be 0.
void AppendLatency(benchmark::State& state, bool moved) {
  fs::path dir = ScratchDir("append_latency");
  auto store = MustOpen(BenchOptions(dir));
  const Message m = BenchMessage(0);
  std::vector<std::string> ids;
  for (int c = 0; c < 1000; ++c) ids.push_back(ConvId(c));
  size_t i = 0;
  // Filled: by the end of a batch of 20,000 calls a message has been
  // dropped, and the batch added under 0.02% (about 110) to the cached
  // messages. A shard still filling adds all its calls, about 600 of 20,000
  // for the 31 of 1,000 conversations it holds on average. The bound holds
  // about 540k messages here; 8M calls would be 15 times that.
  Stats before = store->GetStats();
  for (int64_t n = 0;; n += 20'000) {
    if (n > 8'000'000) Fail("the cache never reached its bytes bound");
    for (int k = 0; k < 20'000; ++k) {
      MustOk(store->Append(ids[i++ % ids.size()], m).status(), "fill Append");
    }
    const Stats now = store->GetStats();
    const bool full =
        now.cache_pinned_drops > 0 &&
        now.cached_messages * 10000 <= before.cached_messages * 10002;
    before = now;
    if (full) break;
  }
  LatencySampler lat;
  int64_t rejected = 0;
  for (auto _ : state) {
    const std::string& id = ids[i++ % ids.size()];
    Message built;
    if (moved) built = m;
    const auto t0 = Clock::now();
    auto r = moved ? store->Append(id, std::move(built)) : store->Append(id, m);
    const auto t1 = Clock::now();
    if (!r.ok()) ++rejected;
    lat.Add(t1 - t0);
  }
  lat.Report(state);
  // Which regime the timed calls ran in: reads back of evicted
  // conversations, whole conversations evicted, and messages dropped from
  // pinned ones.
  const Stats stats = store->GetStats();
  state.counters["cache_misses"] =
      static_cast<double>(stats.cache_misses - before.cache_misses);
  state.counters["evictions"] =
      static_cast<double>(stats.cache_evictions - before.cache_evictions);
  state.counters["pinned_drops"] =
      static_cast<double>(stats.cache_pinned_drops - before.cache_pinned_drops);
  state.counters["rejected"] = static_cast<double>(rejected);
  state.counters["cached_messages"] =
      static_cast<double>(stats.cached_messages);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
void BM_Store_AppendLatency(benchmark::State& state) {
  AppendLatency(state, /*moved=*/false);
}
BENCHMARK(BM_Store_AppendLatency);
void BM_Store_AppendLatencyMoved(benchmark::State& state) {
  AppendLatency(state, /*moved=*/true);
}
BENCHMARK(BM_Store_AppendLatencyMoved);

// The same Append at a paced rate of range(0) calls per second, below what
// the writer commits, so the queue never fills: the per-call cost an agent
// server sees, without the backpressure BM_Store_AppendLatency's closed loop
// (about 4 us per call in real time here) runs into. `rejected` counts calls
// that failed (queue full); it must stay 0 for the figures to mean this.
// Every conversation is first filled to its cached-message bound (100
// here, so all 1,000 stay well inside the cache budget), as in a
// long-running server: each call then trims one message and recycles memory
// instead of faulting in new pages or reading an evicted conversation back.
void BM_Store_AppendLatencyPaced(benchmark::State& state) {
  constexpr int kBound = 100;
  fs::path dir = ScratchDir("append_latency_paced");
  Options options = BenchOptions(dir);
  options.cache_max_messages_per_conversation = kBound;
  auto store = MustOpen(options);
  const Message m = BenchMessage(0);
  std::vector<std::string> ids;
  for (int c = 0; c < 1000; ++c) ids.push_back(ConvId(c));
  for (int k = 0; k < kBound; ++k) {
    for (const std::string& id : ids) (void)store->Append(id, m);
  }
  MustOk(store->Flush(), "Flush");
  const auto interval =
      std::chrono::nanoseconds(1'000'000'000 / state.range(0));
  LatencySampler lat;
  size_t i = 0;
  int64_t rejected = 0;
  auto next = Clock::now();
  for (auto _ : state) {
    next += interval;
    while (Clock::now() < next) {
    }
    auto t0 = Clock::now();
    auto r = store->Append(ids[i++ % ids.size()], m);
    auto t1 = Clock::now();
    if (!r.ok()) ++rejected;
    lat.Add(t1 - t0);
  }
  lat.Report(state);
  state.counters["rejected"] = static_cast<double>(rejected);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_AppendLatencyPaced)
    ->ArgNames({"per_s"})
    ->Arg(50'000)
    ->Arg(100'000)
    ->UseRealTime();

// Append to a cache shard held over its byte bound by range(0)
// conversations whose writes are not yet durable (the writer commits
// nothing while it runs), so the shard may evict none of them. With
// range(1)=0 every call appends to one conversation, which holds durable
// messages only a call that does not keep it may drop; with range(1)=1
// every call starts a new conversation. Either way each call must stay
// O(1), not search the shard's entries: `walks` counts the searches over
// the whole run, setup included.
void BM_Store_AppendOverBound(benchmark::State& state) {
  fs::path dir = ScratchDir("append_over_bound");
  Options o = BenchOptions(dir);
  o.cache_shards = 1;
  o.cache_max_bytes = 1 << 20;
  o.max_flush_delay = std::chrono::hours(1);
  o.max_batch_ops = o.queue_max_items;
  auto store = MustOpen(o);
  const Message m = BenchMessage(0);
  for (int i = 0; i < 16; ++i) (void)store->Append("k", m);
  MustOk(store->Flush(), "Flush");
  for (int64_t c = 0; c < state.range(0); ++c) {
    MustOk(store->Append(ConvId(c), m).status(), "Append");
  }
  const uint64_t lsn = store->GetStats().durable_lsn;
  const bool fresh = state.range(1) != 0;
  int64_t next = state.range(0);
  LatencySampler lat;
  for (auto _ : state) {
    const std::string id = fresh ? ConvId(next++) : std::string("k");
    auto t0 = Clock::now();
    auto r = store->Append(id, m);
    auto t1 = Clock::now();
    MustOk(r.status(), "Append");
    lat.Add(t1 - t0);
  }
  lat.Report(state);
  const Stats stats = store->GetStats();
  if (stats.durable_lsn != lsn) {
    // The figures assume nothing became durable (and so evictable) here.
    Fail("the writer committed during the run (durable lsn " +
         std::to_string(lsn) + " -> " + std::to_string(stats.durable_lsn) +
         ")");
  }
  state.counters["walks"] = static_cast<double>(stats.cache_eviction_walks);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_AppendOverBound)
    ->ArgNames({"pinned", "new"})
    ->Args({5'000, 0})
    ->Args({5'000, 1})
    ->Iterations(20'000);

// Times History(last 20) over conversations ConvId(0..n-1) in a cycle and
// reports the percentiles; every answer must hold 20 messages.
void TimeLast20(benchmark::State& state, Store* store, int n) {
  std::vector<std::string> ids;
  for (int c = 0; c < n; ++c) ids.push_back(ConvId(c));
  HistoryOptions h;
  h.last_n = 20;
  LatencySampler lat;
  size_t c = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = store->History(ids[c++ % ids.size()], h);
    auto t1 = Clock::now();
    MustOk(r.status(), "History");
    if (r->size() != 20) Fail("History returned other than 20 messages");
    lat.Add(t1 - t0);
  }
  lat.Report(state);
}

// The newest 20 messages of a cached conversation.
void BM_Store_HistoryHot(benchmark::State& state) {
  fs::path dir = ScratchDir("history_hot");
  auto store = MustOpen(BenchOptions(dir));
  for (int c = 0; c < 100; ++c) {
    for (int i = 0; i < 100; ++i)
      (void)store->Append(ConvId(c), BenchMessage(i));
  }
  (void)store->Flush();
  TimeLast20(state, store.get(), 100);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_HistoryHot);

// The newest 20 messages of a conversation that is not in memory, in a file
// of range(0) messages: a read-through from SQLite.
void BM_Store_HistoryCold(benchmark::State& state) {
  fs::path dir = ScratchDir("history_cold");
  Options o = BenchOptions(dir);
  CopyStoreFixture(state.range(0), dir);
  o.warm_conversations = 0;
  // Small enough that reading conversations in a cycle evicts each one long
  // before it comes round again.
  o.cache_max_conversations = 1000;
  o.cache_shards = 4;
  auto store = MustOpen(o);
  TimeLast20(state, store.get(), kConversations);
  state.counters["cache_misses"] =
      static_cast<double>(store->GetStats().cache_misses);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_HistoryCold)->Arg(1'000'000);

// One ListConversations page (the 20 most recently active, or the 20 most
// recent of one user) over kConversations conversations of 100 users, with
// range(0) of them lagging: holding a message that no merge has folded
// into the activity indexes yet (schema version 10), so the listing must
// place them itself. Under a steady write load most active conversations
// are in that state between merges.
void BM_Store_ListConversations(benchmark::State& state) {
  const int64_t lagging = state.range(0);
  const bool by_user = state.range(1) != 0;
  fs::path dir = ScratchDir("list_conversations");
  Options o = BenchOptions(dir);
  o.index_merge_rows = 1;  // every batch merged
  auto store = MustOpen(o);
  Message m = BenchMessage(0);
  auto append = [&](int64_t c) {
    m.user_id = "user-" + std::to_string(c % 100);
    MustOk(store->Append(ConvId(c), m).status(), "Append");
  };
  for (int c = 0; c < kConversations; ++c) append(c);
  MustOk(store->Flush(), "Flush");
  (void)store->Close();
  o.index_merge_rows = size_t{1} << 30;  // nothing merged from here on
  store = MustOpen(o);
  for (int64_t c = 0; c < lagging; ++c) append(c * kConversations / lagging);
  MustOk(store->Flush(), "Flush");
  ListOptions q;
  q.limit = 20;
  if (by_user) q.user_id = "user-7";
  LatencySampler lat;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = store->ListConversations(q);
    auto t1 = Clock::now();
    MustOk(r.status(), "ListConversations");
    if (r->conversations.size() != 20) {
      Fail("ListConversations returned other than 20 conversations");
    }
    lat.Add(t1 - t0);
  }
  lat.Report(state);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_ListConversations)
    ->ArgNames({"lagging", "by_user"})
    ->Args({0, 0})
    ->Args({1'000, 0})
    ->Args({10'000, 0})
    ->Args({10'000, 1});

// Open and warm a file of range(0) messages (kConversations conversations)
// with a cache large enough to hold all of it: items_per_second counts
// messages loaded into memory (compare with BM_Reference_SqliteScan).
void BM_Store_Reopen(benchmark::State& state) {
  fs::path dir = ScratchDir("reopen");
  Options o = BenchOptions(dir);
  CopyStoreFixture(state.range(0), dir);
  o.cache_max_bytes = size_t{4} << 30;
  int64_t loaded = 0;
  for (auto _ : state) {
    auto store = MustOpen(o);
    loaded += static_cast<int64_t>(store->GetStats().cached_messages);
    state.PauseTiming();
    (void)store->Close();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(loaded);
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_Reopen)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace convstore::bench

int main(int argc, char** argv) {
  convstore::bench::AddContext();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
