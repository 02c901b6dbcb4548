// Copyright 2026 The convstore Authors.

#include "sqlite/analytics_rollups.h"

#include <limits>
#include <map>
#include <string>
#include <tuple>

#include "analytics/turn_fields.h"
#include "analytics/turn_rollup.h"
#include "sqlite/turn_columns.h"

namespace convstore::internal {
namespace {

constexpr const char* kUpsertSql =
    "INSERT INTO analytics_turn_rollups(hour_us, session_id, llm_model,"
    " llm_provider, first_at_us, turns, interrupted, prompt_tokens,"
    " completion_tokens, cached_tokens, cost, latencies)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    " ON CONFLICT(hour_us, session_id, llm_model, llm_provider) DO UPDATE SET"
    " first_at_us = excluded.first_at_us, turns = excluded.turns,"
    " interrupted = excluded.interrupted,"
    " prompt_tokens = excluded.prompt_tokens,"
    " completion_tokens = excluded.completion_tokens,"
    " cached_tokens = excluded.cached_tokens, cost = excluded.cost,"
    " latencies = excluded.latencies";

constexpr const char* kGetSql =
    "SELECT first_at_us, turns, interrupted, prompt_tokens,"
    " completion_tokens, cached_tokens, cost, latencies"
    " FROM analytics_turn_rollups WHERE hour_us = ?1 AND session_id = ?2"
    " AND llm_model = ?3 AND llm_provider = ?4";

struct Key {
  int64_t hour_us;
  std::string session_id, model, provider;
  bool operator<(const Key& o) const {
    return std::tie(hour_us, session_id, model, provider) <
           std::tie(o.hour_us, o.session_id, o.model, o.provider);
  }
};

Status Write(Stmt* put, const Key& k, const TurnRollup& r) {
  Stmt& st = *put;
  const std::string blob = r.SerializeLatencies();
  st.Bind(1, k.hour_us);
  st.BindText(2, k.session_id);
  st.BindText(3, k.model);
  st.BindText(4, k.provider);
  st.Bind(5, r.first_at_us);
  st.Bind(6, r.turns);
  st.Bind(7, r.interrupted);
  st.Bind(8, r.prompt_tokens);
  st.Bind(9, r.completion_tokens);
  st.Bind(10, r.cached_tokens);
  st.BindDouble(11, r.cost);
  st.BindBlob(12, blob);
  return st.Exec();
}

// The turn columns a rollup reads, in TurnMetrics order for ReadRollupTurn.
std::string TurnSelect() {
  return "SELECT session_id, at_us, " + TurnNumberColumns("") +
         ", coalesce(llm_model, ''), coalesce(llm_provider, '')"
         " FROM analytics_turns";
}

void ReadRollupTurn(const Stmt& st, TurnMetrics* t) {
  int c = 0;
  t->session_id.assign(st.TextView(c++));
  t->at_us = st.Int(c++);
  c = ReadTurnNumbers(st, c, t);
  t->llm_model.assign(st.TextView(c++));
  t->llm_provider.assign(st.TextView(c++));
}

}  // namespace

const char* RollupGetSql() { return kGetSql; }
const char* RollupPutSql() { return kUpsertSql; }

Status AddTurnToRollup(Db* db, Stmt* get, Stmt* put, const TurnMetrics& t) {
  const Key k{RollupBucket(t.at_us), t.session_id, t.llm_model, t.llm_provider};
  Stmt& st = *get;
  Status s;
  st.Bind(1, k.hour_us);
  st.BindText(2, k.session_id);
  st.BindText(3, k.model);
  st.BindText(4, k.provider);
  TurnRollup r;
  if (st.Step(&s)) {
    r.first_at_us = st.Int(0);
    r.turns = st.Int(1);
    r.interrupted = st.Int(2);
    r.prompt_tokens = st.Int(3);
    r.completion_tokens = st.Int(4);
    r.cached_tokens = st.Int(5);
    r.cost = st.Double(6);
    if (!MergeLatencyBlob(st.BlobView(7), r.latencies).ok()) {
      // The turn is already inserted: rebuilding the hour includes it.
      st.Reset();
      return RebuildTurnRollups(db, k.hour_us, RollupBucketEnd(k.hour_us));
    }
  }
  st.Reset();
  if (!s.ok()) return s;
  r.Add(t);
  return Write(put, k, r);
}

namespace {

// RebuildTurnRollups, or with `every_row` every rollup from every turn
// (a range cannot hold a turn at INT64_MAX).
Status Rebuild(Db* db, bool every_row, int64_t from_us, int64_t to_us) {
  Stmt del;
  Status s =
      db->Prepare(std::string("DELETE FROM analytics_turn_rollups") +
                      (every_row ? "" : " WHERE hour_us >= ? AND hour_us < ?"),
                  &del);
  if (!s.ok()) return s;
  if (!every_row) {
    del.Bind(1, from_us);
    del.Bind(2, to_us);
  }
  s = del.Exec();
  if (!s.ok()) return s;
  // Ordered by session so only one session's rollups are held at a time.
  Stmt st;
  s = db->Prepare(TurnSelect() +
                      (every_row ? "" : " WHERE at_us >= ? AND at_us < ?") +
                      " ORDER BY session_id",
                  &st);
  if (!s.ok()) return s;
  if (!every_row) {
    st.Bind(1, from_us);
    st.Bind(2, to_us);
  }
  Stmt put;
  s = db->Prepare(kUpsertSql, &put);
  if (!s.ok()) return s;
  std::map<Key, TurnRollup> pending;
  std::string session;
  auto flush = [&]() {
    for (const auto& [k, r] : pending) {
      Status ws = Write(&put, k, r);
      if (!ws.ok()) return ws;
    }
    pending.clear();
    return Status::OK();
  };
  TurnMetrics t;
  while (st.Step(&s)) {
    ReadRollupTurn(st, &t);
    if (t.session_id != session) {
      Status fs = flush();
      if (!fs.ok()) return fs;
      session = t.session_id;
    }
    pending[{RollupBucket(t.at_us), t.session_id, t.llm_model, t.llm_provider}]
        .Add(t);
  }
  if (!s.ok()) return s;
  return flush();
}

}  // namespace

Status RebuildTurnRollups(Db* db, int64_t from_us, int64_t to_us) {
  return Rebuild(db, /*every_row=*/false, from_us, to_us);
}

Status BackfillTurnRollups(Db* db) {
  return Rebuild(db, /*every_row=*/true, 0, 0);
}

Status CountStaleRollups(Db* db, int64_t* out) {
  const std::string h = std::to_string(kRollupBucketUs);
  // RollupBucket in SQL: the times before the first whole hour share
  // INT64_MIN (SQLite would turn the overflowing difference into a REAL).
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const std::string first = std::to_string(RollupBucketAtOrAfter(kMin));
  const std::string min = "(" + std::to_string(kMin + 1) + " - 1)";
  return db->QueryInt(
      "WITH t AS (SELECT CASE WHEN at_us < " + first + " THEN " + min +
          " ELSE at_us - ((at_us % " + h + ") + " + h + ") % " + h +
          " END AS hour_us, session_id, coalesce(llm_model, '') AS m,"
          " coalesce(llm_provider, '') AS p, count(*) AS n"
          " FROM analytics_turns GROUP BY 1, 2, 3, 4)"
          " SELECT count(*) FROM t FULL OUTER JOIN analytics_turn_rollups r"
          " ON r.hour_us = t.hour_us AND r.session_id = t.session_id"
          " AND r.llm_model = t.m AND r.llm_provider = t.p"
          " WHERE t.n IS NOT r.turns",
      out);
}

Status ScanTurnRollups(Db* db, int64_t from_us, int64_t to_us, bool with_keys,
                       const std::function<Status(const RollupRow&)>& row) {
  Stmt st;
  Status s = db->Prepare(
      std::string("SELECT r.session_id, r.llm_model, r.llm_provider,"
                  " r.first_at_us, r.turns, r.interrupted, r.prompt_tokens,"
                  " r.completion_tokens, r.cached_tokens, r.cost,"
                  " r.latencies") +
          (with_keys ? ", coalesce(s.tenant, ''), coalesce(s.final_state, '')"
                       " FROM analytics_turn_rollups r LEFT JOIN"
                       " analytics_sessions s ON s.session_id = r.session_id"
                     : " FROM analytics_turn_rollups r") +
          " WHERE r.hour_us >= ? AND r.hour_us < ?",
      &st);
  if (!s.ok()) return s;
  st.Bind(1, from_us);
  st.Bind(2, to_us);
  RollupRow r;
  while (st.Step(&s)) {
    r.session_id.assign(st.TextView(0));
    r.llm_model.assign(st.TextView(1));
    r.llm_provider.assign(st.TextView(2));
    r.first_at_us = st.Int(3);
    r.turns = st.Int(4);
    r.interrupted = st.Int(5);
    r.prompt_tokens = st.Int(6);
    r.completion_tokens = st.Int(7);
    r.cached_tokens = st.Int(8);
    r.cost = st.Double(9);
    r.latencies = st.BlobView(10);
    if (with_keys) {
      r.keys.tenant.assign(st.TextView(11));
      r.keys.final_state.assign(st.TextView(12));
    }
    Status rs = row(r);
    if (!rs.ok()) return rs;
  }
  return s;
}

}  // namespace convstore::internal
