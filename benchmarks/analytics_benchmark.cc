// Copyright 2026 The convstore Authors.
//
// Analytics query benchmarks over a month of voice-agent data: 1M turns in
// 100k sessions (10 turns each, one session every ~26 s for 30 days, five
// tenants, three models), with errors and slot events. The fixture is built
// once through the store's analytics API and cached like the message
// fixtures (bench_util.h).
//
//   BM_Analytics_Aggregate24h  the last 24 h of the month (~33k turns):
//                              counts, rates, p50/p95/p99 of every latency
//                              (hourly rollups + raw edges; sketches within
//                              1%). Arg: the GroupBy (0 none, 1 tenant,
//                              2 model, 3 provider, 4 final state).
//   BM_Analytics_AggregateMonth  the whole month (1M turns), same args.
//   BM_Analytics_Series24h     e2e_ms in 5-minute buckets over 24 h.
//   BM_Analytics_RecordTurn    RecordTurn throughput (batched durability).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "sqlite/migrations.h"

namespace convstore::bench {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kDay = 24 * 3600 * kSec;
// The fixture's month ends here (a fixed instant, so the cache is reusable).
constexpr int64_t kEnd = 1'800'000'000 * kSec;
constexpr int64_t kSessions = 100'000;
constexpr int64_t kTurnsPerSession = 10;

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

TurnMetrics FixtureTurn(int64_t session, int64_t n, int64_t at_us) {
  static const char* kModels[] = {"gpt-4o", "claude-3-5", "llama-3"};
  static const char* kProviders[] = {"openai", "anthropic", "groq"};
  const uint64_t h = Mix(static_cast<uint64_t>(session * 64 + n));
  TurnMetrics t;
  t.session_id = "sess-" + std::to_string(session);
  t.turn_number = n;
  t.at_us = at_us;
  t.interrupted = h % 10 == 0;
  t.eou_delay_ms = 200 + static_cast<double>(h % 300);
  t.stt_ttfb_ms = 80 + static_cast<double>((h >> 8) % 200);
  t.llm_ttft_ms = 150 + static_cast<double>((h >> 16) % 900);
  t.tts_ttfb_ms = 60 + static_cast<double>((h >> 24) % 250);
  t.e2e_ms = *t.eou_delay_ms + *t.stt_ttfb_ms + *t.llm_ttft_ms + *t.tts_ttfb_ms;
  t.prompt_tokens = 500 + static_cast<int64_t>((h >> 32) % 1500);
  t.completion_tokens = 20 + static_cast<int64_t>((h >> 40) % 200);
  t.cost = 0.0001 * static_cast<double>(*t.prompt_tokens);
  const int m = static_cast<int>(session % 3);
  t.llm_model = kModels[m];
  t.llm_provider = kProviders[m];
  return t;
}

fs::path AnalyticsFixture(const fs::path& dir) {
  const char* env = std::getenv("CONVSTORE_BENCH_FIXTURES");
  const fs::path base =
      env != nullptr ? fs::path(env) : fs::path("/tmp/convstore_fixtures");
  fs::create_directories(base);
  const fs::path fixture =
      base / ("analytics_v" + std::to_string(internal::LatestSchemaVersion()) +
              "_1M.db");
  if (!fs::exists(fixture)) {
    std::fprintf(stderr, "building fixture %s (1M turns, once)...\n",
                 fixture.c_str());
    const fs::path tmp = fixture.string() + ".building";
    fs::remove(tmp);
    Options o;
    o.path = tmp.string();
    o.log_level = LogLevel::kError;
    o.warm_conversations = 0;
    o.max_batch_ops = 65536;
    o.max_batch_bytes = 64 << 20;
    o.queue_max_items = 1 << 20;
    {
      auto store = MustOpen(o);
      Analytics& a = store->analytics();
      const int64_t start = kEnd - 30 * kDay;
      const int64_t spacing = 30 * kDay / kSessions;
      auto ok = [](const Status& s) { MustOk(s, "fixture"); };
      for (int64_t s = 0; s < kSessions; ++s) {
        const int64_t t0 = start + s * spacing;
        const std::string id = "sess-" + std::to_string(s);
        ok(a.StartSession({id, "", "user-" + std::to_string(s % 5000),
                           "tenant-" + std::to_string(s % 5), "phone", "",
                           t0}));
        for (int64_t n = 1; n <= kTurnsPerSession; ++n) {
          ok(a.RecordTurn(FixtureTurn(s, n, t0 + n * 2 * kSec)));
        }
        if (s % 20 == 0) {
          ok(a.RecordError({id, t0 + 5 * kSec, "stt_timeout", Severity::kHigh,
                            "no transcript", "", false}));
        }
        ok(a.RecordEvent(
            {id, t0 + 3 * kSec,
             SlotExtraction{"date", "monday", 0.9, "llm", s % 4 != 0}}));
        const bool failed = Mix(static_cast<uint64_t>(s)) % 10 == 0;
        ok(a.EndSession(
            {id, failed ? SessionStatus::kFailed : SessionStatus::kCompleted,
             failed ? "error" : "goodbye", t0 + 24 * kSec}));
      }
      MustOk(store->Close(std::chrono::hours(1)).status(), "fixture Close");
    }
    fs::rename(tmp, fixture);
  }
  const fs::path out = dir / "analytics.db";
  fs::copy_file(fixture, out, fs::copy_options::overwrite_existing);
  return out;
}

std::unique_ptr<Store> OpenFixture(const std::string& name) {
  const fs::path dir = ScratchDir(name);
  Options o = BenchOptions(dir);
  o.path = AnalyticsFixture(dir).string();
  o.warm_conversations = 0;
  return MustOpen(o);
}

void RunAggregate(benchmark::State& state, int64_t hours) {
  auto store = OpenFixture("analytics_aggregate");
  AggregateQuery q;
  q.range.to_us = kEnd;
  q.range.from_us = kEnd - hours * 3600 * kSec;
  q.group_by = static_cast<GroupBy>(state.range(0));
  state.SetLabel(GroupByName(q.group_by));
  int64_t turns = 0;
  for (auto _ : state) {
    auto r = store->analytics().Aggregate(q);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    turns = 0;
    for (const GroupAggregate& g : r->groups) turns += g.turns;
    benchmark::DoNotOptimize(r->groups.data());
  }
  state.counters["turns"] = static_cast<double>(turns);
  state.counters["turns_per_s"] = benchmark::Counter(
      static_cast<double>(turns) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  (void)store->Close();
}

void BM_Analytics_Aggregate24h(benchmark::State& state) {
  RunAggregate(state, 24);
}
BENCHMARK(BM_Analytics_Aggregate24h)
    ->Unit(benchmark::kMillisecond)
    ->ArgName("group")
    ->DenseRange(0, 4);

void BM_Analytics_AggregateMonth(benchmark::State& state) {
  RunAggregate(state, 30 * 24);
}
BENCHMARK(BM_Analytics_AggregateMonth)
    ->Unit(benchmark::kMillisecond)
    ->ArgName("group")
    ->DenseRange(0, 4)
    ->Iterations(3);

void BM_Analytics_Series24h(benchmark::State& state) {
  auto store = OpenFixture("analytics_series");
  SeriesQuery q;
  q.metric = "e2e_ms";
  q.range.to_us = kEnd;
  q.range.from_us = kEnd - kDay;
  size_t points = 0;
  for (auto _ : state) {
    auto r = store->analytics().Series(q);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    points = r->size();
  }
  state.counters["points"] = static_cast<double>(points);
  (void)store->Close();
}
BENCHMARK(BM_Analytics_Series24h)->Unit(benchmark::kMillisecond);

void BM_Analytics_RecordTurn(benchmark::State& state) {
  const fs::path dir = ScratchDir("analytics_record");
  auto store = MustOpen(BenchOptions(dir));
  Analytics& a = store->analytics();
  int64_t i = 0;
  for (auto _ : state) {
    TurnMetrics t = FixtureTurn(i / 10, i % 10, kEnd + i);
    if (!a.RecordTurn(t).ok()) {
      state.SkipWithError("RecordTurn failed");
      break;
    }
    ++i;
  }
  if (!store->Flush().ok()) state.SkipWithError("Flush failed");
  state.SetItemsProcessed(state.iterations());
  (void)store->Close();
}
BENCHMARK(BM_Analytics_RecordTurn)->UseRealTime();

}  // namespace
}  // namespace convstore::bench
