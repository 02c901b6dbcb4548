// Copyright 2026 The convstore Authors.
//
// API keys (keys.h): ValidateKey latency from memory (target: p99 under
// 1 us) - parse the id, SHA-256 the secret, look the key up, compare in
// constant time, count the use - alone and with a second thread validating
// other keys of the same store. Run e.g.
//   ./build-bench/benchmarks/convstore_benchmark --benchmark_filter=BM_Keys_
// Each benchmark works in a fresh directory under $TMPDIR (or /tmp).

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace convstore::bench {
namespace {

// A store holding `n` keys; their secrets in *secrets.
std::unique_ptr<Store> StoreWithKeys(const fs::path& dir, int64_t n,
                                     std::vector<std::string>* secrets) {
  Options o = BenchOptions(dir);
  o.durability.keys = Durability::kBatched;  // fill without a commit each
  auto store = MustOpen(o);
  for (int64_t i = 0; i < n; ++i) {
    KeySpec spec;
    spec.name = "bench-" + std::to_string(i);
    spec.owner = "tenant-" + std::to_string(i % 100);
    spec.scopes = {"chat:read", "chat:write"};
    StatusOr<CreatedKey> k = store->keys().CreateKey(spec);
    MustOk(k.status(), "CreateKey");
    secrets->push_back(k->secret);
  }
  MustOk(store->Flush(), "Flush");
  return store;
}

// ValidateKey with a required scope of one of range(0) keys, visited in a
// scattered order. range(1) = 1 adds a thread validating the same keys the
// whole time (shard lock contention).
void BM_Keys_Validate(benchmark::State& state) {
  const int64_t n = state.range(0);
  const bool with_other = state.range(1) != 0;
  fs::path dir = ScratchDir("keys_validate");
  std::vector<std::string> secrets;
  auto store = StoreWithKeys(dir, n, &secrets);
  Keys& keys = store->keys();
  std::atomic<bool> stop{false};
  std::thread other;
  if (with_other) {
    other = std::thread([&] {
      int64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        (void)keys.ValidateKey(secrets[static_cast<size_t>(i % n)]);
        ++i;
      }
    });
  }
  LatencySampler lat;
  const int64_t stride = 7919 % n == 0 ? 1 : 7919;  // prime
  int64_t i = 0;
  RequestBuffer request;
  for (auto _ : state) {
    // Untimed: the secret arrives in the request being served, already in
    // the CPU cache; only the key table is cold.
    const std::string_view secret =
        request.Hold(secrets[static_cast<size_t>(i)]);
    auto t0 = Clock::now();
    StatusOr<KeyInfo> r = keys.ValidateKey(secret, "chat:write");
    auto t1 = Clock::now();
    MustOk(r.status(), "ValidateKey");
    lat.Add(t1 - t0);
    i = (i + stride) % n;
  }
  stop.store(true);
  if (other.joinable()) other.join();
  lat.Report(state);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Keys_Validate)
    ->ArgNames({"keys", "other"})
    ->Args({1'000, 0})
    ->Args({10'000, 0})
    ->Args({10'000, 1});

// A failed validation (wrong secret for an existing id): the same work
// plus the (null here) audit call; shows a flood of bad keys costs no more
// than good ones.
void BM_Keys_ValidateWrong(benchmark::State& state) {
  fs::path dir = ScratchDir("keys_wrong");
  std::vector<std::string> secrets;
  auto store = StoreWithKeys(dir, 1000, &secrets);
  std::string wrong = secrets[0];
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  LatencySampler lat;
  for (auto _ : state) {
    auto t0 = Clock::now();
    StatusOr<KeyInfo> r = store->keys().ValidateKey(wrong);
    auto t1 = Clock::now();
    if (r.ok()) Fail("ValidateKey accepted a wrong secret");
    lat.Add(t1 - t0);
  }
  lat.Report(state);
  (void)store->Close();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_Keys_ValidateWrong);

}  // namespace
}  // namespace convstore::bench
