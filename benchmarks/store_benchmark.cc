// Copyright 2026 The convstore Authors.
//
// Throughput and latency of the store against raw SQLite measured in the
// same run (ratios, not absolute times, are what the targets in
// docs/benchmarks.md are about). Run:
//   ./build/convstore_benchmark --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
// Each benchmark works in a fresh directory under $TMPDIR (or /tmp).

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kConversations = 10'000;
constexpr size_t kContentBytes = 200;

fs::path ScratchDir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  fs::path p = fs::path(base != nullptr ? base : "/tmp") /
               ("convstore_bench_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string Content(int i) {
  std::string s = "message " + std::to_string(i) + " ";
  while (s.size() < kContentBytes) s += "lorem ipsum dolor sit amet ";
  s.resize(kContentBytes);
  return s;
}

std::string ConvId(int i) { return "conversation-" + std::to_string(i); }

convstore::Options BenchOptions(const fs::path& dir) {
  convstore::Options o;
  o.path = (dir / "bench.db").string();
  o.log_level = convstore::LogLevel::kError;
  return o;
}

std::unique_ptr<convstore::Store> MustOpen(const convstore::Options& o) {
  auto s = convstore::Store::Open(o);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    std::abort();
  }
  return std::move(s).value();
}

void ReportPercentiles(benchmark::State& state, std::vector<int64_t>* ns) {
  if (ns->empty()) return;
  std::sort(ns->begin(), ns->end());
  auto at = [&](double q) {
    return static_cast<double>(
        (*ns)[static_cast<size_t>(q * (ns->size() - 1))]);
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p999_ns"] = at(0.999);
}

// The naive layout convstore replaces: TEXT conversation id + seq index.
void CreateNaiveTable(sqlite3* db) {
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE messages(conversation_id TEXT, seq INTEGER,"
               " role INTEGER, content TEXT, tokens_in INTEGER,"
               " tokens_out INTEGER, created_at INTEGER);"
               "CREATE INDEX messages_conv ON messages(conversation_id, seq);",
               nullptr, nullptr, nullptr);
}

void BM_Reference_SqliteBatched(benchmark::State& state) {
  fs::path dir = ScratchDir("ref_batched");
  sqlite3* db = nullptr;
  sqlite3_open((dir / "ref.db").string().c_str(), &db);
  CreateNaiveTable(db);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO messages VALUES (?, ?, 1, ?, 10, 0, ?)",
                     -1, &ins, nullptr);
  const std::string content = Content(0);
  std::vector<std::string> ids;
  for (int c = 0; c < kConversations; ++c) ids.push_back(ConvId(c));
  int64_t row = 0;
  constexpr int kRowsPerIteration = 4096 * 8;
  for (auto _ : state) {
    for (int b = 0; b < kRowsPerIteration / 4096; ++b) {
      sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
      for (int i = 0; i < 4096; ++i, ++row) {
        const std::string& id = ids[row % kConversations];
        sqlite3_bind_text(ins, 1, id.data(), static_cast<int>(id.size()),
                          SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, row / kConversations + 1);
        sqlite3_bind_text(ins, 3, content.data(),
                          static_cast<int>(content.size()), SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, row);
        sqlite3_step(ins);
        sqlite3_reset(ins);
      }
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
  }
  state.SetItemsProcessed(state.iterations() * kRowsPerIteration);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  fs::remove_all(dir);
}
BENCHMARK(BM_Reference_SqliteBatched)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Append from N threads over 10,000 interleaved conversations, then Flush:
// items_per_second counts messages made durable.
void BM_Store_AppendDurable(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  fs::path dir = ScratchDir("append_durable");
  auto store = MustOpen(BenchOptions(dir));
  const std::string content = Content(0);
  constexpr int kPerIteration = 100'000;
  for (auto _ : state) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        convstore::Message m;
        m.role = convstore::Role::kUser;
        m.content = content;
        m.tokens_in = 50;
        for (int i = t; i < kPerIteration; i += threads) {
          // Each thread owns the conversations congruent to t.
          int conv = (i % (kConversations / threads)) * threads + t;
          auto r = store->Append(ConvId(conv), m);
          if (!r.ok()) std::abort();
        }
      });
    }
    for (auto& w : workers) w.join();
    if (!store->Flush().ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * kPerIteration);
  (void)store->Close();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_AppendDurable)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Per-call Append latency with the writer committing in the background.
void BM_Store_AppendLatency(benchmark::State& state) {
  fs::path dir = ScratchDir("append_latency");
  auto store = MustOpen(BenchOptions(dir));
  convstore::Message m;
  m.role = convstore::Role::kUser;
  m.content = Content(0);
  std::vector<std::string> ids;
  for (int c = 0; c < 1000; ++c) ids.push_back(ConvId(c));
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = store->Append(ids[i++ % ids.size()], m);
    auto t1 = Clock::now();
    benchmark::DoNotOptimize(r);
    if (ns.size() < ns.capacity()) {
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                       .count());
    }
  }
  ReportPercentiles(state, &ns);
  (void)store->Close();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_AppendLatency);

// The newest 20 messages of a cached conversation.
void BM_Store_HistoryHot(benchmark::State& state) {
  fs::path dir = ScratchDir("history_hot");
  auto store = MustOpen(BenchOptions(dir));
  convstore::Message m;
  m.content = Content(0);
  for (int c = 0; c < 100; ++c) {
    for (int i = 0; i < 100; ++i) (void)store->Append(ConvId(c), m);
  }
  (void)store->Flush();
  convstore::HistoryOptions h;
  h.last_n = 20;
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  int c = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = store->History(ConvId(c++ % 100), h);
    auto t1 = Clock::now();
    benchmark::DoNotOptimize(r);
    if (ns.size() < ns.capacity()) {
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                       .count());
    }
  }
  ReportPercentiles(state, &ns);
  (void)store->Close();
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_HistoryHot);

// Open and warm a file of range(0) messages (10,000 conversations).
void BM_Store_Reopen(benchmark::State& state) {
  const int total = static_cast<int>(state.range(0));
  fs::path dir = ScratchDir("reopen");
  convstore::Options o = BenchOptions(dir);
  {
    auto store = MustOpen(o);
    convstore::Message m;
    m.content = Content(0);
    for (int i = 0; i < total; ++i) {
      if (!store->Append(ConvId(i % kConversations), m).ok()) std::abort();
    }
    if (!store->Close().ok()) std::abort();
  }
  uint64_t loaded = 0;
  for (auto _ : state) {
    auto store = MustOpen(o);
    loaded += store->GetStats().cached_messages;
    (void)store->Close();
  }
  state.SetItemsProcessed(static_cast<int64_t>(loaded));
  fs::remove_all(dir);
}
BENCHMARK(BM_Store_Reopen)
    ->Arg(200'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
#ifndef NDEBUG
  std::fprintf(stderr,
               "\n*** WARNING: assertions are ON (not an NDEBUG build); "
               "numbers are not representative ***\n\n");
#endif
  benchmark::AddCustomContext("convstore_build_type", CMAKE_BUILD_TYPE_NAME);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
