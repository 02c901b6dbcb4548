// Copyright 2026 The convstore Authors.
//
// Soak run: streams many messages through many conversations with the whole
// store held to one memory budget, checks that reads stay complete while
// conversations are evicted and read back, and reports peak RSS against
// the budget as one JSON line (benchmarks/run.sh stores it in
// benchmarks/results/soak.json).
//
//   convstore_soak [--messages N] [--conversations N] [--budget-mib N]
//                  [--threads N] [--dir DIR] [--memory-limit-mib N]
//
// The budget is split between the store's bounded parts (docs/benchmarks.md):
// 60% message cache, 10% write queue (queued messages are also in the cache,
// which may exceed its bound by them: they cannot be evicted until durable),
// 20% SQLite page caches (writer and readers), and 10% left for the process
// itself (code, thread stacks, allocator slack). The whole budget is also
// the store's memory_limit_bytes, which lowers the cache's bound when the
// allocator's slack pushes RSS up (docs/benchmarks.md, "Memory limit");
// --memory-limit-mib sets another limit, 0 none (to measure without it).

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"

namespace {

namespace fs = std::filesystem;

int64_t PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmHWM:", 0) == 0)
      return std::atoll(line.c_str() + 6) * 1024;
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

int64_t Arg(int argc, char** argv, const char* name, int64_t def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  }
  return def;
}

std::string StrArg(int argc, char** argv, const char* name, std::string def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t messages = Arg(argc, argv, "--messages", 10'000'000);
  const int64_t convs = Arg(argc, argv, "--conversations", 100'000);
  const int64_t budget_mib = Arg(argc, argv, "--budget-mib", 256);
  const int threads = static_cast<int>(Arg(argc, argv, "--threads", 2));
  const int64_t limit_mib = Arg(argc, argv, "--memory-limit-mib", budget_mib);
  const fs::path dir = StrArg(
      argc, argv, "--dir", "/tmp/convstore_soak_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);

  const size_t budget = static_cast<size_t>(budget_mib) << 20;
  convstore::Options o;
  o.path = (dir / "soak.db").string();
  o.log_level = convstore::LogLevel::kError;
  o.cache_max_bytes = budget * 6 / 10;
  // The budget is the process's: the store holds its RSS under it by
  // lowering the cache's bound when the allocator's slack grows.
  o.memory_limit_bytes = static_cast<size_t>(limit_mib) << 20;
  o.queue_max_bytes = budget / 10;
  o.read_connections = 2;
  // Writer plus readers share the SQLite part.
  const size_t per_connection = budget / 5 / (1 + o.read_connections);
  o.sqlite_cache_mib = std::max<int>(1, static_cast<int>(per_connection >> 20));
  auto opened = convstore::Store::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<convstore::Store> store = std::move(opened).value();

  std::vector<std::atomic<int64_t>> acked(static_cast<size_t>(convs));
  for (auto& a : acked) a.store(0);
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> reads{0};
  std::atomic<int64_t> incomplete{0};
  std::atomic<int64_t> errors{0};
  const std::string content(200, 'x');
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      convstore::Message m;
      m.role = convstore::Role::kUser;
      m.content = content;
      m.tokens_in = 50;
      for (;;) {
        const int64_t i = next.fetch_add(1);
        if (i >= messages) break;
        // Thread t owns the conversations congruent to t, so its acked
        // counts are exact.
        const int64_t c = ((i / threads) % (convs / threads)) * threads + t;
        const std::string id = "soak-" + std::to_string(c);
        auto r = store->Append(id, m);
        if (!r.ok()) {
          ++errors;
          continue;
        }
        acked[static_cast<size_t>(c)].store(r->seq, std::memory_order_release);
        if (i % 50 == 0) {
          // Read back an older conversation of this thread: likely evicted.
          const int64_t rc =
              static_cast<int64_t>(rng() %
                                   static_cast<uint64_t>(convs / threads)) *
                  threads +
              t;
          const int64_t want = acked[static_cast<size_t>(rc)].load();
          auto h = store->History("soak-" + std::to_string(rc),
                                  {.last_n = 20, .pin_system = false});
          ++reads;
          if (!h.ok()) {
            ++errors;
            continue;
          }
          const int64_t n = std::min<int64_t>(20, want);
          bool ok = static_cast<int64_t>(h->size()) == n;
          for (int64_t k = 0; ok && k < n; ++k) {
            ok = (*h)[static_cast<size_t>(k)]->seq == want - n + 1 + k;
          }
          if (!ok) ++incomplete;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  convstore::Status flushed = store->Flush(std::chrono::minutes(10));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  convstore::Stats st = store->GetStats();
  auto closed = store->Close();
  store.reset();
  const int64_t peak = PeakRssBytes();
  std::printf(
      "{\"messages\": %lld, \"conversations\": %lld, \"budget_bytes\": %zu, "
      "\"memory_limit_bytes\": %zu, "
      "\"peak_rss_bytes\": %lld, \"rss_to_budget\": %.3f, \"seconds\": %.1f, "
      "\"messages_per_second\": %.0f, \"reads\": %lld, "
      "\"incomplete_reads\": %lld, \"errors\": %lld, \"cache_evictions\": "
      "%llu, \"cache_pinned_drops\": %llu, \"cache_eviction_walks\": %llu, "
      "\"cached_bytes\": %llu, \"cache_bound_bytes\": %llu, "
      "\"queue_bytes_high_water\": %llu, "
      "\"flush_ok\": %s, \"close_ok\": %s}\n",
      static_cast<long long>(messages), static_cast<long long>(convs), budget,
      o.memory_limit_bytes, static_cast<long long>(peak),
      static_cast<double>(peak) / budget, secs, messages / secs,
      static_cast<long long>(reads.load()),
      static_cast<long long>(incomplete.load()),
      static_cast<long long>(errors.load()),
      static_cast<unsigned long long>(st.cache_evictions),
      static_cast<unsigned long long>(st.cache_pinned_drops),
      static_cast<unsigned long long>(st.cache_eviction_walks),
      static_cast<unsigned long long>(st.cached_bytes),
      static_cast<unsigned long long>(st.cache_bound_bytes),
      static_cast<unsigned long long>(st.queue_bytes_high_water),
      flushed.ok() ? "true" : "false", closed.ok() ? "true" : "false");
  fs::remove_all(dir);
  return incomplete.load() == 0 && errors.load() == 0 && flushed.ok() &&
                 closed.ok()
             ? 0
             : 1;
}
