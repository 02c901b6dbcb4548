// Copyright 2026 The convstore Authors.
//
// Analytics recording: validation, survival across a restart, retention
// (Cleanup) and the orphan check. Queries: analytics_query_test.cc.

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "analytics_testutil.h"
#include "audit_testutil.h"
#include "backend_testutil.h"
#include "clock.h"
#include "forwarding_analytics.h"
#include "forwarding_backend.h"
#include "sqlite/fault_vfs.h"
#include "sqlite/migrations.h"
#include "sqlite/sqlite_backend.h"
#include "sqlite/sqlite_handle.h"
#include "sqlite_testutil.h"
#include "store_impl.h"

namespace convstore::test {
namespace {

TEST_CASE(
    "records and queries written with designated initializers build "
    "warning-free",
    "[analytics]") {
  // Event bodies and query structs named by a few fields, as a caller
  // writes them: their strings had no default member initializer, so
  // GCC's -Wextra warned for each one not named and a -Werror build (this
  // one) failed.
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  REQUIRE(a.StartSession({.session_id = "call-1"}).ok());
  REQUIRE(a.RecordEvent({.session_id = "call-1", .body = Feedback{.rating = 5}})
              .ok());
  REQUIRE(a.RecordEvent({.session_id = "call-1",
                         .body = SlotExtraction{.name = "party"}})
              .ok());
  REQUIRE(a.RecordEvent({.session_id = "call-1",
                         .body = StateTransition{.to_state = "greeting"}})
              .ok());
  REQUIRE(a.RecordEvent(
               {.session_id = "call-1", .body = SystemEvent{.name = "hangup"}})
              .ok());
  REQUIRE(a.RecordTurn({.session_id = "call-1", .e2e_ms = 800}).ok());
  REQUIRE(a.EndSession({.session_id = "call-1"}).ok());
  StatusOr<std::vector<SessionSummary>> recent = a.RecentSessions({.limit = 5});
  REQUIRE(recent.ok());
  CHECK(recent->size() == 1);
  StatusOr<std::vector<SeriesPoint>> series = a.Series({.metric = "e2e_ms"});
  REQUIRE(series.ok());
  CHECK(series->size() == 1);
  StatusOr<AggregateResult> agg = a.Aggregate({.group_by = GroupBy::kTenant});
  REQUIRE(agg.ok());
  CHECK(agg->groups.size() == 1);
  StatusOr<SessionDetail> detail = a.GetSession("call-1");
  REQUIRE(detail.ok());
  CHECK(detail->events.size() == 4);
  REQUIRE(store->Close().ok());
}

TEST_CASE("analytics input is validated and nothing bad is queued",
          "[analytics]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  CHECK(a.StartSession({}).IsInvalidArgument());
  CHECK(
      a.StartSession({"s", "", "", "", "", "not json", 0}).IsInvalidArgument());
  CHECK(a.StartSession({"s", "", "", "", "", "[1]", 0}).IsInvalidArgument());
  CHECK(a.StartSession({"s\x01", "", "", "", "", "", 0}).IsInvalidArgument());
  CHECK(a.StartSession({std::string(257, 'x'), "", "", "", "", "", 0})
            .IsInvalidArgument());
  CHECK(a.EndSession({"s", SessionStatus::kActive, "", 0}).IsInvalidArgument());
  CHECK(a.EndSession({"s", static_cast<SessionStatus>(9), "", 0})
            .IsInvalidArgument());

  TurnMetrics t = Turn("s", 1, 0, 10, "", "");
  t.e2e_ms = -1;
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  t.e2e_ms = std::nan("");
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  t.e2e_ms = 10;
  t.llm_ttft_ms = -0.5;
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  t.llm_ttft_ms.reset();
  t.stt_confidence = 1.5;
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  t.stt_confidence.reset();
  t.prompt_tokens = -3;
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  // Counts past 2^40 would let sums over turns overflow int64.
  t.prompt_tokens = (int64_t{1} << 40) + 1;
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  t.prompt_tokens.reset();
  t.tts_characters = std::numeric_limits<int64_t>::max();
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  t.tts_characters.reset();
  t.turn_number = -1;
  CHECK(a.RecordTurn(t).IsInvalidArgument());

  CHECK(a.RecordError({"s", 0, "t", static_cast<Severity>(0), "", "", false})
            .IsInvalidArgument());
  CHECK(a.RecordError({"s", 0, "", Severity::kLow, "", "", false})
            .IsInvalidArgument());
  CHECK(a.RecordError({"s", 0, "t", Severity::kLow, "", "{bad", false})
            .IsInvalidArgument());
  CHECK(a.RecordEvent({"s", 0, Feedback{0, "", ""}}).IsInvalidArgument());
  CHECK(a.RecordEvent({"s", 0, Feedback{6, "", ""}}).IsInvalidArgument());
  CHECK(a.RecordEvent({"s", 0, SlotExtraction{"n", "v", 2.0, "", {}}})
            .IsInvalidArgument());
  CHECK(a.RecordEvent({"s", 0, StateTransition{"a", "", "", {}}})
            .IsInvalidArgument());
  CHECK(a.RecordEvent({"s", 0, SystemEvent{"x", "nope"}}).IsInvalidArgument());
  CHECK(a.RecordSample({"s", 0, {}, {}, {}, {}}).IsInvalidArgument());
  CHECK(a.RecordSample({"s", 0, {}, {}, 1.5, {}}).IsInvalidArgument());
  CHECK(a.RecordMetric({"s", "", 1, {}, 0}).IsInvalidArgument());
  CHECK(a.RecordMetric({"s", "m", std::nan(""), {}, 0}).IsInvalidArgument());
  CHECK(a.RecordMetric({"s", "m", 1, {}, -5}).IsInvalidArgument());
  // Named like a turn field: Series would read the turns, never this.
  CHECK(a.RecordMetric({"s", "e2e_ms", 1, {}, 0}).IsInvalidArgument());
  CHECK(a.RecordMetric({"s", "cost", 1, {}, 0}).IsInvalidArgument());

  // None of the rejected records reached the database.
  auto sessions = a.RecentSessions({});
  RequireOk(sessions.status());
  CHECK(sessions->empty());
  auto agg = a.Aggregate({});
  RequireOk(agg.status());
  CHECK(agg->groups.empty());
  // Valid ones are accepted, and a timestamp of 0 means now.
  RequireOk(a.StartSession({"s", "", "", "", "", "", 0}));
  RequireOk(a.RecordEvent({"s", 0, Feedback{5, "great", "csat"}}));
  auto d = a.GetSession("s");
  RequireOk(d.status());
  const int64_t now = internal::WallMicros();
  CHECK(d->summary.start.started_at_us > now - 60 * kSec);
  CHECK(d->summary.start.started_at_us <= now);
}

TEST_CASE("analytics ids with DEL are refused as control characters",
          "[analytics]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  // 0x7F is a control character, refused in conversation ids too.
  CHECK(a.StartSession({"s\x7f", "", "", "", "", "", 0}).IsInvalidArgument());
  CHECK(
      a.StartSession({"s", "", "", "acme\x7f", "", "", 0}).IsInvalidArgument());
  TurnMetrics t = Turn("s", 1, 0, 10, "gpt\x7f", "");
  CHECK(a.RecordTurn(t).IsInvalidArgument());
  CHECK(a.RecordError({"s", 0, "x\x7f", Severity::kLow, "", "", false})
            .IsInvalidArgument());
  // Nothing reached the database.
  auto sessions = a.RecentSessions({});
  RequireOk(sessions.status());
  CHECK(sessions->empty());
  CHECK(a.GetSession("s").status().IsNotFound());
}

TEST_CASE("analytics times after 2^62 us are refused", "[analytics]") {
  // A time at the top of the int64 range made the hour arithmetic of the
  // rollups overflow, and a turn at INT64_MAX was in no query range at all
  // (ranges end before to_us).
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  constexpr int64_t kLatest = int64_t{1} << 62;
  for (int64_t at : {kLatest + 1, std::numeric_limits<int64_t>::max()}) {
    INFO("at " << at);
    CHECK(a.StartSession({"s", "", "", "", "", "", at}).IsInvalidArgument());
    CHECK(a.EndSession({"s", SessionStatus::kCompleted, "", at})
              .IsInvalidArgument());
    CHECK(a.RecordTurn(Turn("s", 1, at, 10, "m", "p")).IsInvalidArgument());
    CHECK(a.RecordSample({"s", at, 1.0, {}, {}, {}}).IsInvalidArgument());
    CHECK(a.RecordMetric({"s", "m", 1, {}, at}).IsInvalidArgument());
    CHECK(a.RecordError({"s", at, "t", Severity::kLow, "", "", false})
              .IsInvalidArgument());
    CHECK(a.RecordEvent({"s", at, Feedback{5, "", ""}}).IsInvalidArgument());
  }
  CHECK(a.GetSession("s").status().IsNotFound());
  // 2^62 itself (about the year 148,000) is taken.
  RequireOk(a.StartSession({"s", "", "", "", "", "", kLatest}));
  RequireOk(a.RecordTurn(Turn("s", 1, kLatest, 10, "m", "p")));
  RequireOk(a.EndSession({"s", SessionStatus::kCompleted, "", kLatest}));
  auto d = a.GetSession("s");
  RequireOk(d.status());
  CHECK(d->summary.start.started_at_us == kLatest);
  REQUIRE(d->turns.size() == 1);
  CHECK(d->turns[0].at_us == kLatest);
}

TEST_CASE("analytics survive a restart", "[analytics]") {
  TempDir dir;
  {
    auto store = OpenOrDie(TestOptions(dir));
    RecordDataSet(store->analytics());
    RequireOk(store->Close().status());
  }
  auto store = OpenOrDie(TestOptions(dir));
  auto r = store->analytics().Aggregate(DataSetHour(GroupBy::kNone));
  RequireOk(r.status());
  REQUIRE(r->groups.size() == 1);
  CHECK(r->groups[0].turns == 6);
  CHECK(r->groups[0].errors == 3);
  auto d = store->analytics().GetSession("s2");
  RequireOk(d.status());
  CHECK(d->summary.status == SessionStatus::kFailed);
  CHECK(*d->summary.duration_ms == Catch::Detail::Approx(30000));
}

TEST_CASE("a version-1 file is upgraded and takes analytics", "[analytics]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    std::unique_ptr<internal::Db> db;
    RequireOk(internal::Db::Open(o.path, true, &db));
    RequireOk(internal::Migrate(db.get(), 1));
    int64_t version = 0;
    RequireOk(internal::SchemaVersion(db.get(), &version));
    REQUIRE(version == 1);
  }
  auto store = OpenOrDie(o);
  RequireOk(store->analytics().StartSession({"s", "", "", "t", "", "", kT0}));
  RequireOk(store->analytics().RecordTurn(Turn("s", 1, kT0, 9, "m", "p")));
  auto d = store->analytics().GetSession("s");
  RequireOk(d.status());
  CHECK(d->turns.size() == 1);
  // Retention works on such a file too (without shrinking it).
  CleanupOptions c;
  c.older_than = std::chrono::hours(1);
  auto r = store->analytics().Cleanup(c);
  RequireOk(r.status());
  CHECK(r->turns == 1);
  CHECK(r->sessions == 1);
}

TEST_CASE("a session end recorded before its start is merged", "[analytics]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  RequireOk(a.EndSession(
      {"late", SessionStatus::kAbandoned, "hangup", kT0 + 90 * kSec}));
  RequireOk(a.StartSession({"late", "", "", "t", "", "", kT0}));
  auto d = a.GetSession("late");
  RequireOk(d.status());
  CHECK(d->summary.status == SessionStatus::kAbandoned);
  CHECK(d->summary.start.tenant == "t");
  CHECK(*d->summary.duration_ms == Catch::Detail::Approx(90000));
}

TEST_CASE("a session that ends before it starts has no duration",
          "[analytics]") {
  // Clocks that disagree (the end stamped by another host): the duration
  // used to be negative and was averaged into duration_by_final_state.
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  RequireOk(a.StartSession({"skew", "", "", "t", "", "", kT0 + 10 * kSec}));
  RequireOk(
      a.EndSession({"skew", SessionStatus::kCompleted, "done", kT0 + kSec}));
  RequireOk(a.StartSession({"ok", "", "", "t", "", "", kT0}));
  RequireOk(
      a.EndSession({"ok", SessionStatus::kCompleted, "done", kT0 + 4 * kSec}));
  auto d = a.GetSession("skew");
  RequireOk(d.status());
  CHECK(d->summary.status == SessionStatus::kCompleted);
  CHECK_FALSE(d->summary.duration_ms.has_value());
  AggregateQuery q;
  q.range.from_us = kT0;
  q.range.to_us = kT0 + 3600 * kSec;
  auto agg = a.Aggregate(q);
  RequireOk(agg.status());
  REQUIRE(agg->groups.size() == 1);
  const GroupAggregate& g = agg->groups[0];
  REQUIRE(g.duration_by_final_state.size() == 1);
  CHECK(g.duration_by_final_state[0].avg_duration_ms ==
        Catch::Detail::Approx(4000));
  CHECK(g.completed == 2);
}

TEST_CASE("CheckConsistency reports orphans and repairs them", "[analytics]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  RecordDataSet(a);
  // Records for a session that was never started are accepted.
  RequireOk(a.RecordTurn(Turn("ghost", 1, kT0, 5, "", "")));
  RequireOk(a.RecordMetric({"ghost", "m", 1, {}, kT0}));
  RequireOk(a.RecordMetric({"", "m", 1, {}, kT0}));  // no session: not orphan
  RequireOk(a.RecordError({"ghost", kT0, "x", Severity::kLow, "", "", false}));
  RequireOk(a.RecordEvent({"ghost", kT0, SystemEvent{"boot", ""}}));
  auto r = a.CheckConsistency(false);
  RequireOk(r.status());
  CHECK(r->orphan_turns == 1);
  CHECK(r->orphan_metrics == 1);
  CHECK(r->orphan_errors == 1);
  CHECK(r->orphan_events == 1);
  CHECK_FALSE(r->repaired);
  r = a.CheckConsistency(true);
  RequireOk(r.status());
  CHECK(r->repaired);
  r = a.CheckConsistency(false);
  RequireOk(r.status());
  CHECK(r->orphan_turns + r->orphan_metrics + r->orphan_errors +
            r->orphan_events ==
        0);
  CHECK(a.GetSession("ghost").status().IsNotFound());
  // The valid data set is untouched.
  auto agg = a.Aggregate(DataSetHour(GroupBy::kNone));
  RequireOk(agg.status());
  CHECK(agg->groups[0].turns == 6);
  SeriesQuery q;
  q.metric = "m";
  q.range.from_us = kT0;
  q.range.to_us = kT0 + kSec;
  auto series = a.Series(q);
  RequireOk(series.status());
  REQUIRE(series->size() == 1);
  CHECK((*series)[0].count == 1);
}

TEST_CASE(
    "Cleanup removes only old records, archives them and shrinks the "
    "file",
    "[analytics]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  const int64_t now = internal::WallMicros();
  const int64_t day = 24 * 3600 * kSec;
  const int64_t old_at = now - 40 * day;
  const int64_t young_at = now - 29 * day;  // just inside 30 days
  const std::string pad(300, 'p');
  constexpr int kOld = 3000, kYoung = 50;
  RequireOk(a.StartSession({"old", "", "", "", "", "", old_at}));
  RequireOk(a.StartSession({"young", "", "", "", "", "", young_at}));
  // Started long ago but ended recently, and ended without a recorded
  // start: both are younger than the cut-off.
  RequireOk(a.StartSession({"long", "", "", "", "", "", old_at}));
  RequireOk(a.EndSession({"long", SessionStatus::kCompleted, "", young_at}));
  RequireOk(a.EndSession({"endonly", SessionStatus::kFailed, "", young_at}));
  for (int i = 0; i < kOld; ++i) {
    TurnMetrics t = Turn("old", i, old_at + i, 10, pad.substr(0, 250), "p");
    RequireOk(a.RecordTurn(t));
    if (i % 10 == 0) {
      RequireOk(a.RecordError(
          {"old", old_at + i, "e", Severity::kLow, pad, "", false}));
    }
  }
  for (int i = 0; i < kYoung; ++i) {
    RequireOk(a.RecordTurn(Turn("young", i, young_at + i, 20, "m", "p")));
  }
  RequireOk(a.RecordMetric({"young", "m", 1, {}, young_at}));
  RequireOk(a.RecordMetric({"old", "m", 1, {}, old_at}));
  RequireOk(store->Flush());
  const auto young_before = a.GetSession("young");
  RequireOk(young_before.status());

  CleanupOptions o;
  o.batch_rows = 500;  // several purge ops per table
  o.archive_path = dir.File("archive.jsonl");
  auto r = a.Cleanup(o);
  RequireOk(r.status());
  CHECK(r->turns == kOld);
  CHECK(r->errors == kOld / 10);
  CHECK(r->metrics == 1);
  CHECK(r->sessions == 1);
  CHECK(r->events == 0);
  CHECK(r->archived == kOld + kOld / 10 + 2);
  INFO("file " << r->file_bytes_before << " -> " << r->file_bytes_after);
  CHECK(r->file_bytes_after < r->file_bytes_before);

  // The archive holds one JSON object per removed record.
  std::ifstream in(o.archive_path);
  std::string line;
  int lines = 0, turns = 0;
  while (std::getline(in, line)) {
    ++lines;
    if (line.find("\"table\":\"analytics_turns\"") != std::string::npos) {
      ++turns;
    }
  }
  CHECK(lines == r->archived);
  CHECK(turns == kOld);

  // Nothing younger than the cut-off was touched.
  CHECK(a.GetSession("old").status().IsNotFound());
  auto young = a.GetSession("young");
  RequireOk(young.status());
  CHECK(young->turns.size() == young_before->turns.size());
  CHECK(young->metrics.size() == 1);
  CHECK(young->summary.start.started_at_us == young_at);
  RequireOk(a.GetSession("long").status());
  RequireOk(a.GetSession("endonly").status());

  // A second run finds nothing to do.
  r = a.Cleanup(CleanupOptions{});
  RequireOk(r.status());
  CHECK(r->turns + r->errors + r->metrics + r->sessions == 0);
  // Per-kind ages: metrics younger than 1 day survive a 1-hour turn cut.
  CleanupOptions per_kind;
  per_kind.turns = std::chrono::hours(1);
  r = a.Cleanup(per_kind);
  RequireOk(r.status());
  CHECK(r->turns == kYoung);
  CHECK(r->metrics == 0);
  CHECK(r->sessions == 0);
  CleanupOptions zero;
  zero.batch_rows = 0;
  CHECK(a.Cleanup(zero).status().IsInvalidArgument());
  // A size_t past int64 made the round count negative: nothing was removed,
  // and the call said OK.
  CleanupOptions huge;
  huge.batch_rows = std::numeric_limits<size_t>::max();
  CHECK(a.Cleanup(huge).status().IsInvalidArgument());
  huge.batch_rows = 100'001;
  CHECK(a.Cleanup(huge).status().IsInvalidArgument());
  // An age too large to count in microseconds keeps everything (computed
  // naively it overflowed to a cut-off in the future).
  CleanupOptions forever;
  forever.older_than = std::chrono::hours::max();
  r = a.Cleanup(forever);
  RequireOk(r.status());
  CHECK(r->turns + r->errors + r->metrics + r->sessions + r->events == 0);
  RequireOk(a.GetSession("young").status());
}

// Sums the rows CountPurgeable reports: the rows its walk of the time
// index visits.
class CountingAnalytics final : public internal::ForwardingAnalytics {
 public:
  using ForwardingAnalytics::ForwardingAnalytics;
  std::atomic<int64_t> counted{0};
  Status CountPurgeable(const internal::AnalyticsPurge& p, int64_t at_most,
                        int64_t* out) override {
    Status s = ForwardingAnalytics::CountPurgeable(p, at_most, out);
    if (s.ok()) counted += *out;
    return s;
  }
};

class CountingBackend final : public internal::ForwardingBackend {
 public:
  explicit CountingBackend(std::unique_ptr<internal::StorageBackend> inner)
      : ForwardingBackend(std::move(inner)),
        counting(ForwardingBackend::analytics()) {}
  internal::AnalyticsStorage* analytics() override { return &counting; }
  CountingAnalytics counting;
};

// n turns of session "old", 40 days old, turn i at old + i us.
void RecordOldTurns(Analytics& a, int n) {
  const int64_t old_at = internal::WallMicros() - 40 * 24 * 3600 * kSec;
  RequireOk(a.StartSession({"old", "", "", "", "", "", old_at}));
  for (int i = 0; i < n; ++i) {
    RequireOk(a.RecordTurn(Turn("old", i, old_at + i, 10, "m", "p")));
  }
}

// Records `turns` old turns into a new store at o.path, closes it, and
// reopens it with `trigger` (SQL) installed on the file.
std::unique_ptr<Store> OldTurnsWithTrigger(const Options& o, int turns,
                                           const std::string& trigger) {
  {
    auto store = OpenOrDie(o);
    RecordOldTurns(store->analytics(), turns);
    RequireOk(store->Close().status());
  }
  RawExec(o.path, trigger);
  return OpenOrDie(o);
}

// The one retention.analytics audit record's details; *outcome its outcome.
nlohmann::json CleanupAudit(Store* store, std::string* outcome) {
  AuditQuery q;
  q.action = "retention.analytics";
  AuditPage page = audit_test::QueryOrDie(store, q);
  REQUIRE(page.records.size() == 1);
  *outcome = page.records[0].event.outcome;
  return nlohmann::json::parse(page.records[0].event.details_json);
}

// Deletes every turn right after Cleanup's first count of them, as
// another process's Cleanup running at the same time would.
class RacingAnalytics final : public internal::ForwardingAnalytics {
 public:
  RacingAnalytics(internal::AnalyticsStorage* inner, std::string path)
      : ForwardingAnalytics(inner), path_(std::move(path)) {}
  Status CountPurgeable(const internal::AnalyticsPurge& p, int64_t at_most,
                        int64_t* out) override {
    Status s = ForwardingAnalytics::CountPurgeable(p, at_most, out);
    if (!raced_ && p.table == internal::AnalyticsTable::kTurns && at_most < 0) {
      raced_ = true;
      RawExec(path_, "DELETE FROM analytics_turns");
    }
    return s;
  }

 private:
  bool raced_ = false;
  std::string path_;
};

class RacingBackend final : public internal::ForwardingBackend {
 public:
  RacingBackend(std::unique_ptr<internal::StorageBackend> inner,
                std::string path)
      : ForwardingBackend(std::move(inner)),
        racing(ForwardingBackend::analytics(), std::move(path)) {}
  internal::AnalyticsStorage* analytics() override { return &racing; }
  RacingAnalytics racing;
};

TEST_CASE("Cleanup reports and audits only the rows it removed",
          "[analytics]") {
  // The report said count - remaining: rows another Cleanup deleted
  // between the count and the batches were reported and audited as this
  // run's.
  TempDir dir;
  Options o = TestOptions(dir);
  auto backend = std::make_unique<RacingBackend>(
      internal::backend_test::OpenBackend(o), o.path);
  StatusOr<std::unique_ptr<Store>> opened =
      internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  RequireOk(opened.status());
  auto store = std::move(opened).value();
  Analytics& a = store->analytics();
  RecordOldTurns(a, 100);
  RequireOk(store->Flush());
  CleanupOptions c;
  c.batch_rows = 30;
  StatusOr<CleanupReport> r = a.Cleanup(c);
  RequireOk(r.status());
  CHECK(r->turns == 0);
  CHECK(r->sessions == 1);  // "old" itself: nobody else removed it
  std::string outcome;
  nlohmann::json d = CleanupAudit(store.get(), &outcome);
  CHECK(outcome == "success");
  CHECK(d["turns"] == 0);
  CHECK(d["sessions"] == 1);
}

TEST_CASE("Cleanup counts what is left in one probe per batch", "[analytics]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto backend =
      std::make_unique<CountingBackend>(internal::backend_test::OpenBackend(o));
  CountingBackend* counting = backend.get();
  StatusOr<std::unique_ptr<Store>> opened =
      internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  RequireOk(opened.status());
  auto store = std::move(opened).value();
  Analytics& a = store->analytics();
  constexpr int kTurns = 2000;
  RecordOldTurns(a, kTurns);
  RequireOk(store->Flush());

  CleanupOptions c;
  c.batch_rows = 20;  // 100 batches
  StatusOr<CleanupReport> r = a.Cleanup(c);
  RequireOk(r.status());
  CHECK(r->turns == kTurns);
  CHECK(r->sessions == 1);
  // The count before the run (2,000 turns, 1 session) and a probe of one
  // row after each batch. Recounting after every batch visited
  // 2,000 + 1,980 + ... + 20, about 100,000 rows.
  INFO("rows counted " << counting->counting.counted.load());
  CHECK(counting->counting.counted.load() <= 2 * kTurns);
}

TEST_CASE("a Cleanup that fails partway audits what it removed",
          "[analytics]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.log_level = LogLevel::kOff;
  // The fourth batch of 50 (turns 150..199, oldest first) is refused.
  auto store = OldTurnsWithTrigger(
      o, 400,
      "CREATE TRIGGER refuse_purge BEFORE DELETE ON analytics_turns"
      " WHEN OLD.turn_number >= 150 BEGIN SELECT RAISE(ABORT, 'no'); END;");
  CleanupOptions c;
  c.batch_rows = 50;
  StatusOr<CleanupReport> r = store->analytics().Cleanup(c);
  INFO(r.status().ToString());
  CHECK_FALSE(r.ok());
  // The run stopped at the refused batch; it used to go on, each later
  // batch refused in turn and set aside.
  CHECK(store->GetStats().dead_letters == 1);

  std::string outcome;
  nlohmann::json d = CleanupAudit(store.get(), &outcome);
  CHECK(outcome == "failure");
  CHECK(d["turns"] == 150);
  CHECK(d["sessions"] == 0);
  auto left = store->analytics().GetSession("old");
  RequireOk(left.status());
  CHECK(left->turns.size() == 250);
}

TEST_CASE("a Cleanup that leaves old rows behind says so", "[analytics]") {
  TempDir dir;
  // Every batch commits, but one row is silently kept.
  auto store = OldTurnsWithTrigger(
      TestOptions(dir), 100,
      "CREATE TRIGGER keep_one BEFORE DELETE ON analytics_turns"
      " WHEN OLD.turn_number = 5 BEGIN SELECT RAISE(IGNORE); END;");
  CleanupOptions c;
  c.batch_rows = 30;
  StatusOr<CleanupReport> r = store->analytics().Cleanup(c);
  INFO(r.status().ToString());
  // It used to say OK, with 99 of 100 turns removed.
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("1 turns older than the cut-off") !=
        std::string::npos);
  std::string outcome;
  nlohmann::json d = CleanupAudit(store.get(), &outcome);
  CHECK(outcome == "failure");
  CHECK(d["turns"] == 99);
}

TEST_CASE("Cleanup truncates the WAL while another connection checkpoints",
          "[analytics]") {
  TempDir dir;
  Options opts = TestOptions(dir);
  opts.wal_autocheckpoint_pages = 0;  // the frames stay in the WAL
  auto store = OpenOrDie(opts);
  Analytics& a = store->analytics();
  const int64_t now = internal::WallMicros();
  RequireOk(a.StartSession({"s", "", "", "", "", "", now}));
  for (int i = 0; i < 200; ++i) {
    RequireOk(a.RecordTurn(Turn("s", i, now + i, 10, "m", "p")));
  }
  RequireOk(store->Flush());
  const std::string wal = opts.path + "-wal";
  const auto wal_before = std::filesystem::file_size(wal);  // ~120 frames

  // A connection of its own (as the store's checkpoint thread has) runs a
  // pass whose fsync takes 500 ms: it holds the checkpoint lock meanwhile,
  // and SQLite answers a truncating checkpoint with BUSY at once.
  StatusOr<internal::FaultVfs*> v = internal::FaultVfs::Install();
  REQUIRE(v.ok());
  internal::FaultVfs* vfs = v.value();
  vfs->Reset();
  std::unique_ptr<internal::Db> other;
  REQUIRE(internal::Db::Open(opts.path, /*create=*/false, &other,
                             internal::FaultVfs::kName)
              .ok());
  int64_t sessions = 0;  // reads the header: the connection is in WAL mode
  REQUIRE(other->QueryInt("SELECT count(*) FROM analytics_sessions", &sessions)
              .ok());
  vfs->DelaySyncs(std::chrono::milliseconds(500));
  std::thread pass([&] {
    sqlite3_wal_checkpoint_v2(other->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                              nullptr, nullptr);
  });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (vfs->syncs() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(vfs->syncs() >= 1);  // the pass is in its fsync

  auto r = a.Cleanup(CleanupOptions{});  // nothing is old; shrinks
  pass.join();
  vfs->Reset();
  RequireOk(r.status());
  // The WAL was truncated; it holds only the frames of the audit record
  // Cleanup writes last. (A WAL that starts over keeps its file size.)
  const auto wal_after = std::filesystem::file_size(wal);
  INFO("WAL " << wal_before << " -> " << wal_after << " bytes");
  CHECK(wal_after < wal_before / 4);
}

// Descriptors of this process open on `path` or its -wal / -shm files.
int OpenDescriptors(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target = fs::weakly_canonical(path);
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    const fs::path to = fs::read_symlink(e.path(), ec);
    if (ec) continue;
    if (to.string().rfind(target.string(), 0) == 0) ++n;
  }
  return n;
}

TEST_CASE("analytics calls after Close are FailedPrecondition", "[analytics]") {
  // Queries checked for a closed store only while waiting for this store's
  // own writes: a store that had recorded nothing answered them after
  // Close, reopening the file.
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RecordDataSet(store->analytics());
    RequireOk(store->Close().status());
  }
  auto store = OpenOrDie(o);
  Analytics& a = store->analytics();
  auto before = a.RecentSessions({});
  RequireOk(before.status());
  CHECK(before->size() == 3);
  RequireOk(store->Close().status());
  CHECK(OpenDescriptors(o.path) == 0);

  CHECK(a.RecentSessions({}).status().IsFailedPrecondition());
  CHECK(a.GetSession("s1").status().IsFailedPrecondition());
  CHECK(
      a.Aggregate(DataSetHour(GroupBy::kNone)).status().IsFailedPrecondition());
  AggregateQuery fast = DataSetHour(GroupBy::kModel);
  fast.exact_percentiles = false;
  CHECK(a.Aggregate(fast).status().IsFailedPrecondition());
  SeriesQuery sq;
  sq.metric = "e2e_ms";
  sq.range = DataSetHour(GroupBy::kNone).range;
  CHECK(a.Series(sq).status().IsFailedPrecondition());
  CHECK(a.CheckConsistency(false).status().IsFailedPrecondition());
  CHECK(a.CheckConsistency(true).status().IsFailedPrecondition());
  CHECK(a.Cleanup({}).status().IsFailedPrecondition());
  CHECK(a.StartSession({"s9", "", "", "", "", "", 0}).IsFailedPrecondition());
  CHECK(a.RecordTurn(Turn("s9", 1, 0, 10, "m", "p")).IsFailedPrecondition());
  // None of them opened the file again.
  CHECK(OpenDescriptors(o.path) == 0);
}

TEST_CASE("the analytics reader is not reopened after the backend closes",
          "[analytics]") {
  // A query that passed the closed check just before Close reached the
  // reader connection after it, which opened the file again and kept it
  // open.
  TempDir dir;
  const Options o = internal::backend_test::BackendOptions(dir);
  auto backend = internal::backend_test::OpenBackend(o);
  internal::AnalyticsStorage* storage = backend->analytics();
  std::vector<SessionSummary> out;
  RequireOk(storage->ListSessions({}, &out));
  RequireOk(backend->Close().status());
  CHECK(OpenDescriptors(o.path) == 0);
  CHECK(storage->ListSessions({}, &out).IsFailedPrecondition());
  ConsistencyReport report;
  CHECK(storage->CountOrphans(&report).IsFailedPrecondition());
  CHECK(OpenDescriptors(o.path) == 0);
}

TEST_CASE("analytics record and query from many threads at once",
          "[analytics]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  constexpr int kThreads = 4, kTurns = 200;
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      const std::string id = "s" + std::to_string(w);
      CHECK(a.StartSession({id, "", "", "t", "", "", kT0}).ok());
      for (int i = 0; i < kTurns; ++i) {
        CHECK(a.RecordTurn(Turn(id, i, kT0 + i, i, "m", "p")).ok());
      }
    });
  }
  std::thread reader([&] {
    for (int i = 0; i < 20; ++i) {
      auto r = a.Aggregate(DataSetHour(GroupBy::kTenant));
      CHECK(r.ok());
      auto s = a.RecentSessions({});
      CHECK(s.ok());
    }
  });
  for (auto& t : threads) t.join();
  reader.join();
  auto r = a.Aggregate(DataSetHour(GroupBy::kNone));
  RequireOk(r.status());
  REQUIRE(r->groups.size() == 1);
  CHECK(r->groups[0].turns == kThreads * kTurns);
  CHECK(r->groups[0].sessions == kThreads);
}

}  // namespace
}  // namespace convstore::test
