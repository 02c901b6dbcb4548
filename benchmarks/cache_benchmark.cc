// Copyright 2026 The convstore Authors.
//
// The key-value cache (cache.h): Get latency from memory (target: p99 under
// 1 us), alone and with a writer thread on the same shards, and the cost of
// a Set / Increment (memory update plus queuing the write). Run e.g.
//   ./build-bench/benchmarks/convstore_benchmark --benchmark_filter=BM_Cache_
// Each benchmark works in a fresh directory under $TMPDIR (or /tmp).

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace convstore::bench {
namespace {

constexpr size_t kValueBytes = 100;

std::vector<std::string> Keys(int64_t n) {
  std::vector<std::string> keys;
  keys.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) keys.push_back("user:" + std::to_string(i));
  return keys;
}

// A store whose cache holds `n` entries of kValueBytes, all committed.
std::unique_ptr<Store> FilledStore(const fs::path& dir, int64_t n,
                                   const std::vector<std::string>& keys) {
  Options o = BenchOptions(dir);
  o.durability.cache = Durability::kBatched;  // fill without shedding
  auto store = MustOpen(o);
  const std::string value(kValueBytes, 'v');
  for (int64_t i = 0; i < n; ++i) {
    MustOk(store->cache().Set("bench", keys[static_cast<size_t>(i)], value,
                              std::chrono::hours(1)),
           "fill Set");
  }
  MustOk(store->Flush(), "Flush");
  return store;
}

// Get of a live entry among range(0) entries, keys visited in a scattered
// order (a stride coprime with the count). range(1) = 1 adds a thread that
// Sets and Increments other keys of the same cache the whole time.
void BM_Cache_Get(benchmark::State& state) {
  const int64_t n = state.range(0);
  const bool with_writer = state.range(1) != 0;
  fs::path dir = ScratchDir("cache_get");
  const std::vector<std::string> keys = Keys(n);
  auto store = FilledStore(dir, n, keys);
  Cache& cache = store->cache();
  std::atomic<bool> stop{false};
  std::thread writer;
  if (with_writer) {
    writer = std::thread([&] {
      const std::string value(kValueBytes, 'w');
      int64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        (void)cache.Set("other", keys[static_cast<size_t>(i % n)], value,
                        std::chrono::minutes(1));
        (void)cache.Increment("usage", "calls", 1, std::chrono::minutes(1));
        ++i;
      }
    });
  }
  LatencySampler lat;
  const int64_t stride = 7919;  // prime
  int64_t i = 0;
  RequestBuffer request;
  for (auto _ : state) {
    // Untimed: the key arrives with the request being served, already in
    // the CPU cache; only the cache's own memory is cold.
    const std::string_view key = request.Hold(keys[static_cast<size_t>(i)]);
    auto t0 = Clock::now();
    StatusOr<std::string> r = cache.Get("bench", key);
    auto t1 = Clock::now();
    MustOk(r.status(), "Get");
    if (r->size() != kValueBytes) Fail("Get returned a value of another size");
    lat.Add(t1 - t0);
    i = (i + stride) % n;
  }
  stop.store(true);
  if (writer.joinable()) writer.join();
  lat.Report(state);
  CacheStats st = cache.GetStats();
  state.counters["entries"] = static_cast<double>(st.entries);
  state.counters["shed"] = static_cast<double>(st.persist_shed);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Cache_Get)
    ->ArgNames({"entries", "writer"})
    ->Args({10'000, 0})
    ->Args({100'000, 0})
    ->Args({100'000, 1});

// Set of a kValueBytes value over range(0) keys: the memory update plus
// queuing the write (best-effort, the default class).
void BM_Cache_Set(benchmark::State& state) {
  const int64_t n = state.range(0);
  fs::path dir = ScratchDir("cache_set");
  const std::vector<std::string> keys = Keys(n);
  auto store = MustOpen(BenchOptions(dir));
  const std::string value(kValueBytes, 'v');
  LatencySampler lat;
  int64_t i = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    Status s = store->cache().Set("bench", keys[static_cast<size_t>(i % n)],
                                  value, std::chrono::hours(1));
    auto t1 = Clock::now();
    MustOk(s, "Set");
    lat.Add(t1 - t0);
    ++i;
  }
  lat.Report(state);
  state.counters["shed"] =
      static_cast<double>(store->cache().GetStats().persist_shed);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Cache_Set)->ArgNames({"keys"})->Arg(100'000);

// Increment of one hot counter (a rate limit) from one thread.
void BM_Cache_Increment(benchmark::State& state) {
  fs::path dir = ScratchDir("cache_incr");
  auto store = MustOpen(BenchOptions(dir));
  LatencySampler lat;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r =
        store->cache().Increment("rate", "user:1", 1, std::chrono::minutes(1));
    auto t1 = Clock::now();
    MustOk(r.status(), "Increment");
    lat.Add(t1 - t0);
  }
  lat.Report(state);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Cache_Increment);

}  // namespace
}  // namespace convstore::bench
