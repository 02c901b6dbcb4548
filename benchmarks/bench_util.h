// Copyright 2026 The convstore Authors.
//
// Shared pieces of the benchmark suite: scratch directories, the message
// shape every benchmark writes (about 200 bytes of content), latency
// percentiles, and prebuilt database files ("fixtures") that are expensive
// to make (1M and 10M rows) and so are built once and reused across runs.

#ifndef CONVSTORE_BENCHMARKS_BENCH_UTIL_H_
#define CONVSTORE_BENCHMARKS_BENCH_UTIL_H_

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/convstore.h"

namespace convstore::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Conversations the write benchmarks spread their messages over.
inline constexpr int kConversations = 10'000;
inline constexpr size_t kContentBytes = 200;

// A fresh, empty directory under $TMPDIR (or /tmp) for one benchmark.
fs::path ScratchDir(const std::string& name);
std::string Content(int64_t i);
std::string ConvId(int64_t i);
std::string UserId(int64_t conv);
// A message like the ones every benchmark writes.
Message BenchMessage(int64_t i);

Options BenchOptions(const fs::path& dir);
std::unique_ptr<Store> MustOpen(const Options& options);

// A call or an expectation the benchmark relies on that fails ends the run
// with `what` (and the status) on stderr, not a bare abort: say, a write
// queue that fills because the options under test make merges longer.
[[noreturn]] void Fail(const std::string& what);
inline void MustOk(const Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

// The bytes of the request a latency benchmark is serving (a key, a
// secret): copied here before the timer starts, as a server has them in
// the CPU cache after parsing the request, so a cold benchmark-side string
// is not timed as part of the call. Reused across iterations.
class RequestBuffer {
 public:
  std::string_view Hold(std::string_view bytes) {
    buf_.assign(bytes.data(), bytes.size());
    return buf_;
  }

 private:
  std::string buf_;
};

// Collects per-call latencies and reports p50_ns, p99_ns, p999_ns counters.
class LatencySampler {
 public:
  explicit LatencySampler(size_t max_samples = 1 << 21);
  void Add(Clock::duration d) {
    if (ns_.size() < max_) ns_.push_back(d.count());
  }
  void Report(benchmark::State& state);

 private:
  size_t max_;
  std::vector<int64_t> ns_;
};

// A convstore database holding `rows` messages over kConversations
// conversations (ids ConvId(0..)), written conversation by conversation as
// an old history would be. Built through the store on first use and kept
// under $CONVSTORE_BENCH_FIXTURES (default /tmp/convstore_fixtures), keyed
// by the schema version, so later runs reuse it. Copied into `dir` (with
// its name) so a benchmark may write to it.
fs::path CopyStoreFixture(int64_t rows, const fs::path& dir);

// A database in the naive layout of the reference benchmarks (see
// reference_benchmark.cc) with `rows` rows, built once and cached likewise.
fs::path NaiveFixture(int64_t rows);

// Creates the naive table: TEXT conversation id + seq, indexed or not.
void CreateNaiveTable(sqlite3* db, bool indexed);

// Prints the machine, the build type and a loud warning when assertions are
// on; also recorded as Google Benchmark context.
void AddContext();

}  // namespace convstore::bench

#endif  // CONVSTORE_BENCHMARKS_BENCH_UTIL_H_
