// Copyright 2026 The convstore Authors.
//
// Aggregate over turn rollups (schema v8): the default path (whole hours
// from rollups, the edges from raw turns, percentiles from sketches) must
// equal the exact path (AggregateQuery::exact_percentiles) on counts,
// sums, means and rates, and be within 1% on percentiles, for every
// grouping and for ranges that do not start or end on an hour; also after
// a restart, after retention cut an hour in two, and on a file migrated
// from v7 (the migration backfills the rollups).

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "analytics/analytics_op.h"
#include "analytics/turn_rollup.h"
#include "analytics_testutil.h"
#include "clock.h"
#include "sqlite_testutil.h"
#include "store_impl.h"

namespace convstore::test {
namespace {

using Catch::Detail::Approx;
constexpr int64_t kHour = internal::kRollupBucketUs;

int64_t RawInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return n;
}

// Three hours of turns from `h0` (hour-aligned) on, and 40 minutes before
// it: four tenants' sessions, two models, a session that changes model,
// two models in one hour of one session, several latency fields (with
// zeros), errors, slots and ended sessions.
void RecordHours(Analytics& a, int64_t h0) {
  const char* models[] = {"gpt", "claude"};
  const char* providers[] = {"openai", "anthropic"};
  for (int s = 0; s < 12; ++s) {
    const std::string id = "r" + std::to_string(s);
    const int64_t start = h0 - 40 * 60 * kSec + s * 17 * 60 * kSec;
    RequireOk(a.StartSession(
        {id, "", "u", "tenant-" + std::to_string(s % 4), "phone", "", start}));
    for (int n = 0; n < 30; ++n) {
      const int64_t at = start + n * 7 * 60 * kSec / 3;  // 2m20s apart
      // s % 3 == 2 switches model half way; others keep theirs.
      const int m = s % 3 == 2 ? (n < 15 ? 0 : 1) : s % 2;
      TurnMetrics t = Turn(id, n + 1, at, 300 + (s * 37 + n * 53) % 900,
                           models[m], providers[m]);
      t.llm_ttft_ms = n % 5 == 0 ? 0 : 50.0 + (n * s) % 400;
      t.stt_ttfb_ms = 1e-3 * (n + 1) + (n % 2) * 1e6;
      t.interrupted = (n + s) % 6 == 0;
      t.prompt_tokens = 100 + n;
      t.completion_tokens = 7;
      t.cost = 0.001 * (n + 1);
      RequireOk(a.RecordTurn(t));
    }
    if (s % 3 == 0) {
      RequireOk(a.RecordError({id, start + 90 * kSec, "stt_timeout",
                               Severity::kHigh, "", "", false}));
    }
    RequireOk(a.RecordEvent(
        {id, start + 30 * kSec, SlotExtraction{"d", "x", 0.5, "llm", true}}));
    if (s % 4 != 3) {
      RequireOk(a.EndSession(
          {id, s % 5 == 0 ? SessionStatus::kFailed : SessionStatus::kCompleted,
           s % 5 == 0 ? "error" : "done", start + 80 * 60 * kSec}));
    }
  }
}

void CheckClose(double got, double exact) {
  INFO("sketch " << got << " exact " << exact);
  CHECK(std::abs(got - exact) <= 0.01 * exact * (1 + 1e-9) + 1e-12);
}

// Runs `q` both ways and compares every group.
void CheckMatchesExact(Analytics& a, AggregateQuery q) {
  q.exact_percentiles = true;
  auto exact = a.Aggregate(q);
  q.exact_percentiles = false;
  auto fast = a.Aggregate(q);
  RequireOk(exact.status());
  RequireOk(fast.status());
  REQUIRE(fast->groups.size() == exact->groups.size());
  int64_t turns = 0;
  for (size_t i = 0; i < exact->groups.size(); ++i) {
    const GroupAggregate& e = exact->groups[i];
    const GroupAggregate& f = fast->groups[i];
    INFO("group '" << e.key << "' by " << GroupByName(q.group_by));
    CHECK(f.key == e.key);
    CHECK(f.sessions == e.sessions);
    CHECK(f.ended == e.ended);
    CHECK(f.completed == e.completed);
    CHECK(f.failed == e.failed);
    CHECK(f.turns == e.turns);
    CHECK(f.interrupted == e.interrupted);
    CHECK(f.interruption_rate == Approx(e.interruption_rate));
    CHECK(f.errors == e.errors);
    CHECK(f.error_rate == Approx(e.error_rate));
    CHECK(f.prompt_tokens == e.prompt_tokens);
    CHECK(f.completion_tokens == e.completion_tokens);
    CHECK(f.cost == Approx(e.cost));
    CHECK(f.slots == e.slots);
    CHECK(f.success_rate == Approx(e.success_rate));
    REQUIRE(f.latencies.size() == e.latencies.size());
    for (size_t j = 0; j < e.latencies.size(); ++j) {
      INFO(e.latencies[j].field);
      CHECK(f.latencies[j].field == e.latencies[j].field);
      CHECK(f.latencies[j].count == e.latencies[j].count);
      CHECK(f.latencies[j].max == e.latencies[j].max);
      CHECK(f.latencies[j].mean == Approx(e.latencies[j].mean));
      CheckClose(f.latencies[j].p50, e.latencies[j].p50);
      CheckClose(f.latencies[j].p95, e.latencies[j].p95);
      CheckClose(f.latencies[j].p99, e.latencies[j].p99);
    }
    turns += e.turns;
  }
  // The ranges below all hold turns: the comparison is not vacuous.
  CHECK(turns > 0);
}

void CheckAllGroupings(Analytics& a, int64_t from, int64_t to) {
  for (GroupBy by : {GroupBy::kNone, GroupBy::kTenant, GroupBy::kModel,
                     GroupBy::kProvider, GroupBy::kFinalState}) {
    AggregateQuery q;
    q.range.from_us = from;
    q.range.to_us = to;
    q.group_by = by;
    CheckMatchesExact(a, q);
  }
}

// 2017-07-14T03:00:00Z: hour-aligned.
constexpr int64_t kH0 = 1'500'001'200'000'000;
static_assert(kH0 % kHour == 0);

TEST_CASE("rollup aggregates equal exact ones, percentiles within 1%",
          "[analytics][rollup]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RecordHours(store->analytics(), kH0);
    Analytics& a = store->analytics();
    CheckAllGroupings(a, kH0 - kHour, kH0 + 6 * kHour);  // aligned
    CheckAllGroupings(a, kH0 - 1234 * kSec, kH0 + 2 * kHour + 77 * kSec);
    CheckAllGroupings(a, kH0 + 1800 * kSec, kH0 + 3 * kHour + 1 * kSec);
    CheckAllGroupings(a, kH0 + 60 * kSec, kH0 + 120 * kSec);  // no whole hour
    auto c = a.CheckConsistency(false);
    RequireOk(c.status());
    CHECK(c->stale_rollups == 0);
    REQUIRE(store->Close().ok());
  }
  // Rollups are fewer rows than turns (that is their point) and survive a
  // restart.
  CHECK(RawInt(o.path, "SELECT count(*) FROM analytics_turn_rollups") <
        RawInt(o.path, "SELECT count(*) FROM analytics_turns") / 5);
  auto store = OpenOrDie(o);
  CheckAllGroupings(store->analytics(), kH0 - 1234 * kSec,
                    kH0 + 2 * kHour + 77 * kSec);
}

TEST_CASE("consistency check finds stale rollups and repair rebuilds them",
          "[analytics][rollup]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RecordHours(store->analytics(), kH0);
    REQUIRE(store->Close().ok());
  }
  RawExec(o.path,
          "DELETE FROM analytics_turn_rollups WHERE id % 3 = 0;"
          "UPDATE analytics_turn_rollups SET turns = turns + 1 WHERE id = 1");
  auto store = OpenOrDie(o);
  Analytics& a = store->analytics();
  auto c = a.CheckConsistency(false);
  RequireOk(c.status());
  CHECK(c->stale_rollups > 1);
  CHECK_FALSE(c->repaired);
  c = a.CheckConsistency(true);
  RequireOk(c.status());
  CHECK(c->repaired);
  c = a.CheckConsistency(false);
  RequireOk(c.status());
  CHECK(c->stale_rollups == 0);
  CheckAllGroupings(a, kH0 - 1234 * kSec, kH0 + 2 * kHour + 77 * kSec);
}

TEST_CASE("a corrupt rollup blob is an error, not a crash",
          "[analytics][rollup]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RecordHours(store->analytics(), kH0);
    REQUIRE(store->Close().ok());
  }
  RawExec(o.path, "UPDATE analytics_turn_rollups SET latencies = x'0107ff'");
  auto store = OpenOrDie(o);
  AggregateQuery q;
  q.range.from_us = kH0;
  q.range.to_us = kH0 + 2 * kHour;
  CHECK(store->analytics().Aggregate(q).status().IsCorruption());
  q.exact_percentiles = true;
  RequireOk(store->analytics().Aggregate(q).status());
}

TEST_CASE("retention removes rollups with their turns", "[analytics][rollup]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  const int64_t h0 = internal::RollupBucket(internal::WallMicros()) - 4 * kHour;
  RecordHours(a, h0);
  // The cut-off lies inside an hour that has turns on both sides.
  CleanupOptions c;
  c.older_than = std::chrono::hours(3);
  c.batch_rows = 50;
  auto r = a.Cleanup(c);
  RequireOk(r.status());
  CHECK(r->turns > 0);
  auto check = a.CheckConsistency(false);
  RequireOk(check.status());
  CHECK(check->stale_rollups == 0);
  CheckAllGroupings(a, h0 - kHour, h0 + 6 * kHour);
}

TEST_CASE("a retention batch keeps the rollups of turns it did not remove",
          "[analytics][rollup]") {
  // Each purge batch dropped every rollup before the cut-off hour: after a
  // Cleanup that stopped early (a failed sync wait, a close), or with a
  // turn backfilled during the run (its id above the run's max_id), old
  // turns were left without rollups, and Aggregate left them out.
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Analytics& a = store->analytics();
  const int64_t h0 = internal::RollupBucket(internal::WallMicros()) - 4 * kHour;
  RecordHours(a, h0);
  RequireOk(store->Flush());
  // One batch of 10 turns (session r0's first), as a run that stopped
  // after it.
  internal::AnalyticsPurge purge;
  purge.table = internal::AnalyticsTable::kTurns;
  purge.cutoff_us = h0 + 3 * kHour;
  purge.max_id = std::numeric_limits<int64_t>::max();
  purge.limit = 10;
  internal::WritePath* impl = dynamic_cast<internal::StoreImpl*>(store.get());
  REQUIRE(impl != nullptr);
  StatusOr<uint64_t> lsn =
      impl->Submit(internal::WritePayload(internal::AnalyticsOp{purge}),
                   size_t{64}, Durability::kSync);
  INFO(lsn.status().ToString());
  REQUIRE(lsn.ok());
  auto check = a.CheckConsistency(false);
  RequireOk(check.status());
  CHECK(check->stale_rollups == 0);
  CheckAllGroupings(a, h0 - kHour, h0 + 6 * kHour);
}

TEST_CASE("rollups cover turns at the int64 limits", "[analytics][rollup]") {
  // An older convstore took turns at INT64_MAX, and a damaged file can
  // hold any time. The full rebuild read at_us < INT64_MAX, so such a
  // turn's rollup was dropped and stayed stale after repair; the hour of
  // a turn near INT64_MIN overflowed.
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RequireOk(store->analytics().StartSession({"s", "", "", "", "", "", 0}));
    RequireOk(store->analytics().RecordTurn(
        Turn("s", 1, kH0 + 5 * kSec, 100, "gpt", "openai")));
    REQUIRE(store->Close().ok());
  }
  RawExec(o.path,
          "INSERT INTO analytics_turns (session_id, turn_number, at_us,"
          " e2e_ms, llm_model, llm_provider) VALUES"
          " ('s', 2, 9223372036854775807, 200, 'gpt', 'openai'),"
          " ('s', 3, -9223372036854775807 - 1, 300, 'gpt', 'openai')");
  auto store = OpenOrDie(o);
  Analytics& a = store->analytics();
  auto c = a.CheckConsistency(false);
  RequireOk(c.status());
  CHECK(c->stale_rollups == 2);
  c = a.CheckConsistency(true);
  RequireOk(c.status());
  CHECK(c->repaired);
  c = a.CheckConsistency(false);
  RequireOk(c.status());
  CHECK(c->stale_rollups == 0);
  // The INT64_MIN turn and the kH0 one; INT64_MAX is past every range.
  CheckAllGroupings(a, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max());
  auto all = a.Aggregate({{std::numeric_limits<int64_t>::min(),
                           std::numeric_limits<int64_t>::max(), 24},
                          GroupBy::kNone,
                          false});
  RequireOk(all.status());
  REQUIRE(all->groups.size() == 1);
  CHECK(all->groups[0].turns == 2);
  // Retention removes the two old turns and rebuilds their hours.
  auto r = a.Cleanup({});
  RequireOk(r.status());
  CHECK(r->turns == 2);
  c = a.CheckConsistency(false);
  RequireOk(c.status());
  CHECK(c->stale_rollups == 0);
  CHECK(RawInt(o.path, "SELECT count(*) FROM analytics_turn_rollups") == 1);
}

TEST_CASE("the v8 migration backfills rollups from existing turns",
          "[analytics][rollup]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RecordHours(store->analytics(), kH0);
    REQUIRE(store->Close().ok());
  }
  // Make the file what v7 left: no rollups table, version 7 (and what v9
  // to v13 changed later undone, so that they can run again: the recent
  // index table, no message id watermarks, activity indexed by last_at_us,
  // no summarized_through_id, message_index instead of message_chunks
  // and message_tails;
  // this file has no messages).
  RawExec(o.path,
          "DROP TABLE message_chunks;"
          "DROP TABLE message_tails;"
          "CREATE TABLE message_index (conv_key INTEGER NOT NULL,"
          " seq INTEGER NOT NULL, message_id INTEGER NOT NULL,"
          " PRIMARY KEY (conv_key, seq)) WITHOUT ROWID;"
          "ALTER TABLE conversations DROP COLUMN summarized_through_id;"
          "DROP INDEX conversations_by_activity;"
          "DROP INDEX conversations_by_user;"
          "ALTER TABLE conversations DROP COLUMN activity_at_us;"
          "CREATE INDEX conversations_by_activity"
          " ON conversations(last_at_us, conversation_id);"
          "CREATE INDEX conversations_by_user"
          " ON conversations(user_id, last_at_us, conversation_id);"
          "DROP TABLE analytics_turn_rollups;"
          "DELETE FROM schema_migrations WHERE version >= 8;"
          "CREATE TABLE recent_message_index (conv_key INTEGER NOT NULL,"
          " seq INTEGER NOT NULL, message_id INTEGER NOT NULL,"
          " PRIMARY KEY (conv_key, seq)) WITHOUT ROWID;"
          "DELETE FROM store_meta WHERE key IN ('merged_through_id',"
          " 'last_message_id');"
          "PRAGMA user_version = 7;");
  auto store = OpenOrDie(o);
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM schema_migrations WHERE version = 8") ==
        1);
  CHECK(RawInt(o.path, "SELECT count(*) FROM analytics_turn_rollups") > 0);
  auto c = store->analytics().CheckConsistency(false);
  RequireOk(c.status());
  CHECK(c->stale_rollups == 0);
  CheckAllGroupings(store->analytics(), kH0 - 1234 * kSec,
                    kH0 + 2 * kHour + 77 * kSec);
}

}  // namespace
}  // namespace convstore::test
