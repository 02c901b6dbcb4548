// Copyright 2026 The convstore Authors.
//
// Analytics queries against the hand-computed data set of
// analytics_testutil.h. Worked figures (all turns, sorted e2e):
//   50 100 200 300 400 1000; linear percentiles at rank p*(n-1):
//   p50 = 200 + 0.5*100 = 250, p95 = 400 + 0.75*600 = 850,
//   p99 = 400 + 0.95*600 = 970, mean = 2050/6.

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>

#include "analytics/turn_fields.h"
#include "analytics_testutil.h"

namespace convstore::test {
namespace {

using Catch::Detail::Approx;

const GroupAggregate& Group(const AggregateResult& r, const std::string& key) {
  auto it = std::find_if(r.groups.begin(), r.groups.end(),
                         [&](const GroupAggregate& g) { return g.key == key; });
  REQUIRE(it != r.groups.end());
  return *it;
}

const LatencyStats& Latency(const GroupAggregate& g, const std::string& f) {
  auto it = std::find_if(g.latencies.begin(), g.latencies.end(),
                         [&](const LatencyStats& l) { return l.field == f; });
  REQUIRE(it != g.latencies.end());
  return *it;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<Store> store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  Fixture() { RecordDataSet(a); }
};

TEST_CASE("Percentile interpolates between the nearest ranks", "[analytics]") {
  const std::vector<double> one = {7};
  CHECK(internal::Percentile(one, 0.99) == 7);
  const std::vector<double> v = {10, 20, 30, 40};
  CHECK(internal::Percentile(v, 0.0) == 10);
  CHECK(internal::Percentile(v, 0.5) == Approx(25));
  CHECK(internal::Percentile(v, 1.0) == 40);
  CHECK(internal::Percentile(v, 0.95) == Approx(38.5));
}

TEST_CASE("Aggregate without grouping matches the hand-computed figures",
          "[analytics]") {
  Fixture f;
  auto r = f.a.Aggregate(DataSetHour(GroupBy::kNone));
  RequireOk(r.status());
  REQUIRE(r->groups.size() == 1);
  const GroupAggregate& g = r->groups[0];
  CHECK(g.sessions == 3);
  CHECK(g.ended == 2);
  CHECK(g.completed == 1);
  CHECK(g.failed == 1);
  CHECK(g.success_rate == Approx(0.5));
  CHECK(g.turns == 6);
  CHECK(g.interrupted == 1);
  CHECK(g.interruption_rate == Approx(1.0 / 6));
  const LatencyStats& e2e = Latency(g, "e2e_ms");
  CHECK(e2e.count == 6);
  CHECK(e2e.p50 == Approx(250));
  CHECK(e2e.p95 == Approx(850));
  CHECK(e2e.p99 == Approx(970));
  CHECK(e2e.mean == Approx(2050.0 / 6));
  CHECK(e2e.max == 1000);
  // Only fields that some turn set are reported.
  CHECK(g.latencies.size() == 1);
  CHECK(g.errors == 3);
  CHECK(g.error_rate == Approx(0.5));
  REQUIRE(g.errors_by_type.size() == 2);
  CHECK(g.errors_by_type[0].type == "llm_error");
  CHECK(g.errors_by_type[0].severity == Severity::kCritical);
  CHECK(g.errors_by_type[0].count == 1);
  CHECK(g.errors_by_type[1].type == "stt_timeout");
  CHECK(g.errors_by_type[1].count == 2);
  CHECK(g.errors_by_type[1].per_turn == Approx(2.0 / 6));
  CHECK(g.prompt_tokens == 40);
  CHECK(g.cost == Approx(0.04));
  REQUIRE(g.duration_by_final_state.size() == 2);
  CHECK(g.duration_by_final_state[0].final_state == "done");
  CHECK(g.duration_by_final_state[0].avg_duration_ms == Approx(60000));
  CHECK(g.duration_by_final_state[1].final_state == "error");
  CHECK(g.duration_by_final_state[1].avg_duration_ms == Approx(30000));
  CHECK(g.slots == 3);
  CHECK(g.slot_confidence == Approx(0.7));
  CHECK(g.slot_validation_rate == Approx(2.0 / 3));
}

TEST_CASE("Aggregate groups by tenant, model and final state", "[analytics]") {
  Fixture f;
  auto by_tenant = f.a.Aggregate(DataSetHour(GroupBy::kTenant));
  RequireOk(by_tenant.status());
  REQUIRE(by_tenant->groups.size() == 2);
  const GroupAggregate& acme = Group(*by_tenant, "acme");
  CHECK(acme.sessions == 2);
  CHECK(acme.turns == 5);
  CHECK(Latency(acme, "e2e_ms").p50 == Approx(300));
  CHECK(acme.errors == 1);
  CHECK(acme.success_rate == Approx(0.5));
  const GroupAggregate& beta = Group(*by_tenant, "beta");
  CHECK(beta.sessions == 1);
  CHECK(beta.ended == 0);
  CHECK(beta.errors == 2);
  CHECK(beta.slots == 3);

  auto by_model = f.a.Aggregate(DataSetHour(GroupBy::kModel));
  RequireOk(by_model.status());
  REQUIRE(by_model->groups.size() == 2);
  const GroupAggregate& gpt = Group(*by_model, "gpt");
  CHECK(gpt.turns == 5);
  CHECK(Latency(gpt, "e2e_ms").p50 == Approx(200));
  CHECK(gpt.sessions == 2);  // s1 and s3
  CHECK(gpt.errors == 2);    // s3's
  const GroupAggregate& claude = Group(*by_model, "claude");
  CHECK(claude.turns == 1);
  CHECK(claude.failed == 1);
  CHECK(claude.success_rate == 0);

  auto by_provider = f.a.Aggregate(DataSetHour(GroupBy::kProvider));
  RequireOk(by_provider.status());
  CHECK(Group(*by_provider, "anthropic").turns == 1);

  auto by_state = f.a.Aggregate(DataSetHour(GroupBy::kFinalState));
  RequireOk(by_state.status());
  REQUIRE(by_state->groups.size() == 3);   // "", "done", "error"
  CHECK(Group(*by_state, "").turns == 1);  // s3 is still active
  CHECK(Group(*by_state, "done").turns == 4);
  CHECK(Group(*by_state, "error").errors == 1);
}

TEST_CASE("Aggregate honours the time range", "[analytics]") {
  Fixture f;
  AggregateQuery q = DataSetHour(GroupBy::kNone);
  q.range.to_us = kT0 + 300 * kSec;  // before s3's turn
  auto r = f.a.Aggregate(q);
  RequireOk(r.status());
  REQUIRE(r->groups.size() == 1);
  CHECK(r->groups[0].turns == 5);
  q.range.from_us = kT0 + 3600 * kSec;
  q.range.to_us = kT0 + 7200 * kSec;
  r = f.a.Aggregate(q);
  RequireOk(r.status());
  CHECK(r->groups.empty());
  q.range.to_us = q.range.from_us;
  CHECK(f.a.Aggregate(q).status().IsInvalidArgument());
  // last_hours too large for microseconds in an int64 reaches back to the
  // beginning (converting it was undefined behaviour), from any end.
  for (double hours : {1e13, 1e300}) {
    INFO("last_hours " << hours);
    AggregateQuery all = DataSetHour(GroupBy::kNone);
    all.range.from_us = 0;
    all.range.last_hours = hours;
    r = f.a.Aggregate(all);
    RequireOk(r.status());
    REQUIRE(r->groups.size() == 1);
    CHECK(r->groups[0].turns == 6);
    all.range.to_us = std::numeric_limits<int64_t>::max();
    RequireOk(f.a.Aggregate(all).status());
    all.range.to_us = std::numeric_limits<int64_t>::min() + 1;
    CHECK(f.a.Aggregate(all).status().IsInvalidArgument());
  }
}

TEST_CASE("Aggregate ranges at the int64 limits hold exactly their turns",
          "[analytics]") {
  // The start of the first whole hour of a range beginning in the last
  // hour before INT64_MAX overflowed: it wrapped negative, and the rollup
  // scan took every hour. The hour of a from_us near INT64_MIN overflowed
  // too.
  Fixture f;  // six turns at kT0 .. kT0 + 400 s
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kHour = 3600 * kSec;
  constexpr int64_t kLatest = int64_t{1} << 62;  // the latest record time
  RequireOk(f.a.RecordTurn(Turn("s1", 5, kLatest, 500, "gpt", "openai")));
  struct Case {
    int64_t from, to, turns;
  };
  const Case cases[] = {
      {kMax - 10, kMax, 0},
      {kMax - 10 * kHour, kMax, 0},
      {kMin, kMin + 10, 0},
      {kMin, kMin + 10 * kHour, 0},
      {kMin, kMax, 7},
      {kMin + 1, kMax - 1, 7},
      {-1, kMax, 7},
      {kLatest, kMax, 1},
      {kLatest - 1234 * kSec, kLatest + 3 * kHour + 5, 1},
      {kMin, kLatest, 6},
      {kT0 + 5 * kSec, kMax, 3},
  };
  for (const Case& c : cases) {
    for (bool exact : {false, true}) {
      INFO("[" << c.from << ", " << c.to << ") exact " << exact);
      AggregateQuery q;
      q.range.from_us = c.from;
      q.range.to_us = c.to;
      q.group_by = GroupBy::kModel;
      q.exact_percentiles = exact;
      auto r = f.a.Aggregate(q);
      RequireOk(r.status());
      int64_t turns = 0, e2e = 0;
      for (const GroupAggregate& g : r->groups) {
        turns += g.turns;
        for (const LatencyStats& l : g.latencies) {
          if (l.field == "e2e_ms") e2e += l.count;
        }
      }
      CHECK(turns == c.turns);
      CHECK(e2e == c.turns);
    }
  }
}

TEST_CASE("Series buckets a turn field and a named metric", "[analytics]") {
  Fixture f;
  RequireOk(
      f.a.RecordMetric({"s1", "queue_depth", 1, {{"pod", "a"}}, kT0 + kSec}));
  RequireOk(f.a.RecordMetric({"s1", "queue_depth", 3, {}, kT0 + 2 * kSec}));
  RequireOk(f.a.RecordMetric({"", "queue_depth", 8, {}, kT0 + 301 * kSec}));
  SeriesQuery q;
  q.metric = "e2e_ms";
  q.range.from_us = kT0;
  q.range.to_us = kT0 + 3600 * kSec;
  auto r = f.a.Series(q);
  RequireOk(r.status());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].bucket_start_us == kT0);
  CHECK((*r)[0].count == 5);
  CHECK((*r)[0].mean == Approx(400));
  CHECK((*r)[0].p50 == Approx(300));
  CHECK((*r)[0].min == 100);
  CHECK((*r)[0].max == 1000);
  CHECK((*r)[1].bucket_start_us == kT0 + 300 * kSec);
  CHECK((*r)[1].sum == 50);

  q.metric = "queue_depth";
  q.bucket = std::chrono::minutes(1);
  r = f.a.Series(q);
  RequireOk(r.status());
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].count == 2);
  CHECK((*r)[0].mean == Approx(2));
  CHECK((*r)[1].bucket_start_us == kT0 + 300 * kSec);
  q.session_id = "s1";
  r = f.a.Series(q);
  RequireOk(r.status());
  CHECK(r->size() == 1);

  q.bucket = std::chrono::microseconds(0);
  CHECK(f.a.Series(q).status().IsInvalidArgument());
}

TEST_CASE("RecentSessions summarises the newest sessions", "[analytics]") {
  Fixture f;
  SessionQuery q;
  q.limit = 10;
  auto r = f.a.RecentSessions(q);
  RequireOk(r.status());
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].start.session_id == "s3");
  CHECK((*r)[0].status == SessionStatus::kActive);
  CHECK_FALSE((*r)[0].duration_ms.has_value());
  CHECK((*r)[0].errors == 2);
  const SessionSummary& s1 = (*r)[2];
  CHECK(s1.start.session_id == "s1");
  CHECK(s1.turns == 4);
  CHECK(s1.errors == 0);
  CHECK(*s1.duration_ms == Approx(60000));
  CHECK(*s1.e2e_p50_ms == Approx(250));
  CHECK(*s1.e2e_p95_ms == Approx(385));
  CHECK(s1.final_state == "done");
  q.tenant = "beta";
  r = f.a.RecentSessions(q);
  RequireOk(r.status());
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].start.session_id == "s3");
  q = SessionQuery{};
  q.limit = 1;
  r = f.a.RecentSessions(q);
  RequireOk(r.status());
  CHECK(r->size() == 1);
}

TEST_CASE("GetSession returns turns, errors, events and the transcript",
          "[analytics]") {
  Fixture f;
  REQUIRE(f.store->Append("conv-1", Msg(Role::kUser, "book a table")).ok());
  REQUIRE(f.store->Append("conv-1", Msg(Role::kAssistant, "for when?")).ok());
  RequireOk(
      f.a.RecordEvent({"s1", kT0 + 5 * kSec,
                       StateTransition{"greet", "book", "intent", 12.5}}));
  RequireOk(
      f.a.RecordEvent({"s1", kT0 + 6 * kSec, Feedback{4, "nice", "csat"}}));
  RequireOk(f.a.RecordEvent(
      {"s1", kT0 + 7 * kSec, SystemEvent{"reconnect", R"({"n":1})"}}));
  RequireOk(f.a.RecordSample({"s1", kT0 + 8 * kSec, 40, 3.5, 0.01, {}}));
  auto d = f.a.GetSession("s1");
  RequireOk(d.status());
  CHECK(d->summary.start.tenant == "acme");
  CHECK(d->summary.start.metadata == R"({"campaign":"x"})");
  CHECK(d->summary.status == SessionStatus::kCompleted);
  REQUIRE(d->turns.size() == 4);
  CHECK(d->turns[1].turn_number == 2);
  CHECK(d->turns[1].interrupted == std::optional<bool>(true));
  CHECK(d->turns[0].llm_model == "gpt");
  CHECK_FALSE(d->turns[0].llm_ttft_ms.has_value());
  REQUIRE(d->events.size() == 3);
  const auto& tr = std::get<StateTransition>(d->events[0].body);
  CHECK(tr.from_state == "greet");
  CHECK(tr.to_state == "book");
  CHECK(tr.trigger == "intent");
  CHECK(*tr.latency_ms == Approx(12.5));
  CHECK(std::get<Feedback>(d->events[1].body).rating == 4);
  CHECK(std::get<Feedback>(d->events[1].body).type == "csat");
  CHECK(std::get<SystemEvent>(d->events[2].body).data == R"({"n":1})");
  REQUIRE(d->metrics.size() == 3);
  CHECK(d->metrics[0].name == "media.latency_ms");
  CHECK(d->metrics[1].value == Approx(3.5));
  REQUIRE(d->transcript.size() == 2);
  CHECK(d->transcript[1]->content == "for when?");
  CHECK(d->summary.turns == 4);

  auto s3 = f.a.GetSession("s3");
  RequireOk(s3.status());
  REQUIRE(s3->errors.size() == 2);
  CHECK(s3->errors[0].context == R"({"code":500})");
  CHECK(s3->errors[0].resolved);
  const auto& slot = std::get<SlotExtraction>(s3->events[2].body);
  CHECK(slot.name == "name");
  CHECK_FALSE(slot.confidence.has_value());
  CHECK(slot.validated == std::optional<bool>(true));
  CHECK(f.a.GetSession("nope").status().IsNotFound());
}

}  // namespace
}  // namespace convstore::test
