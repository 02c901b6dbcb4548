// Copyright 2026 The convstore Authors.
//
// SqliteAnalytics, write side: the v3 schema and the writer's inserts,
// upserts and upkeep steps.

#include <sqlite3.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analytics/turn_fields.h"
#include "analytics/turn_rollup.h"
#include "sqlite/analytics_rollups.h"
#include "sqlite/analytics_tables.h"

namespace convstore::internal {

namespace {

void BindOpt(Stmt* st, int idx, const std::optional<double>& v) {
  if (v) {
    st->BindDouble(idx, *v);
  } else {
    st->BindNull(idx);
  }
}

void BindOptInt(Stmt* st, int idx, const std::optional<int64_t>& v) {
  if (v) {
    st->Bind(idx, *v);
  } else {
    st->BindNull(idx);
  }
}

std::string TurnInsertSql() {
  std::string cols = "session_id, turn_number, at_us, interrupted";
  std::string params = "?, ?, ?, ?";
  for (const TurnField& f : TurnFields()) {
    cols += std::string(", ") + f.name;
    params += ", ?";
  }
  for (const TurnTextField& f : TurnTextFields()) {
    cols += std::string(", ") + f.name;
    params += ", ?";
  }
  return "INSERT INTO analytics_turns(" + cols + ") VALUES (" + params + ")";
}

std::string AnalyticsWriterSql(int which) {
  switch (which) {
    case 0:
      return "INSERT INTO analytics_sessions(session_id, conversation_id,"
             " user_id, tenant, channel, metadata, started_at_us)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
             " ON CONFLICT(session_id) DO UPDATE SET"
             " conversation_id = excluded.conversation_id,"
             " user_id = excluded.user_id, tenant = excluded.tenant,"
             " channel = excluded.channel, metadata = excluded.metadata,"
             " started_at_us = excluded.started_at_us";
    case 1:
      return "INSERT INTO analytics_sessions(session_id, ended_at_us, status,"
             " final_state) VALUES (?1, ?2, ?3, ?4)"
             " ON CONFLICT(session_id) DO UPDATE SET"
             " ended_at_us = excluded.ended_at_us, status = excluded.status,"
             " final_state = excluded.final_state";
    case 2:
      return TurnInsertSql();
    case 3:
      return "INSERT INTO analytics_metrics(session_id, name, value, tags,"
             " at_us) VALUES (?, ?, ?, ?, ?)";
    case 6:
      return RollupGetSql();
    case 7:
      return RollupPutSql();
    case 4:
      return "INSERT INTO analytics_errors(session_id, at_us, type, severity,"
             " message, context, resolved) VALUES (?, ?, ?, ?, ?, ?, ?)";
    default:
      return "INSERT INTO analytics_events(session_id, at_us, kind, name,"
             " value, detail, number, flag) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
  }
}

}  // namespace

const char* AnalyticsTableName(AnalyticsTable t) {
  switch (t) {
    case AnalyticsTable::kSessions:
      return "analytics_sessions";
    case AnalyticsTable::kTurns:
      return "analytics_turns";
    case AnalyticsTable::kMetrics:
      return "analytics_metrics";
    case AnalyticsTable::kErrors:
      return "analytics_errors";
    case AnalyticsTable::kEvents:
      return "analytics_events";
  }
  return "analytics_turns";
}

const char* AnalyticsTimeColumn(AnalyticsTable t) {
  // A session's time is its last known activity: an open session counts
  // from its start, an ended one from its end, and one whose start was
  // never recorded is not taken for ancient.
  return t == AnalyticsTable::kSessions ? "max(started_at_us, ended_at_us)"
                                        : "at_us";
}

SqliteAnalytics::SqliteAnalytics(std::string path, std::string vfs,
                                 std::chrono::milliseconds busy_timeout,
                                 bool read_only)
    : reader_(std::move(path), std::move(vfs), busy_timeout, read_only) {}

SqliteAnalytics::~SqliteAnalytics() {
  ReleaseWriter();
  CloseReader();
}

void SqliteAnalytics::ReleaseWriter() {
  for (Stmt& st : writer_stmts_) st = Stmt();
}

Status SqliteAnalytics::Prepared(Db* writer, WriterStmt which, Stmt** out) {
  Stmt* st = &writer_stmts_[which];
  if (!st->prepared()) {
    Status s = writer->Prepare(AnalyticsWriterSql(which), st);
    if (!s.ok()) return s;
  }
  *out = st;
  return Status::OK();
}

Status SqliteAnalytics::ApplyTurn(Db* writer, const TurnMetrics& t) {
  Stmt* st = nullptr;
  Status s = Prepared(writer, kTurn, &st);
  if (!s.ok()) return s;
  int i = 1;
  st->BindText(i++, t.session_id);
  st->Bind(i++, t.turn_number);
  st->Bind(i++, t.at_us);
  if (t.interrupted) {
    st->Bind(i++, *t.interrupted ? 1 : 0);
  } else {
    st->BindNull(i++);
  }
  for (const TurnField& f : TurnFields()) {
    if (f.real != nullptr) {
      BindOpt(st, i++, t.*f.real);
    } else {
      BindOptInt(st, i++, t.*f.integer);
    }
  }
  for (const TurnTextField& f : TurnTextFields()) {
    st->BindTextOrNull(i++, t.*f.member);
  }
  s = st->Exec();
  Stmt* get = nullptr;
  Stmt* put = nullptr;
  if (s.ok()) s = Prepared(writer, kRollupGet, &get);
  if (s.ok()) s = Prepared(writer, kRollupPut, &put);
  if (!s.ok()) return s;
  return AddTurnToRollup(writer, get, put, t);
}

Status SqliteAnalytics::ApplyMetrics(Db* writer,
                                     const std::vector<Metric>& metrics) {
  Stmt* st = nullptr;
  Status s = Prepared(writer, kMetric, &st);
  if (!s.ok()) return s;
  for (const Metric& m : metrics) {
    std::string tags;
    if (!m.tags.empty()) {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& [k, v] : m.tags) j[k] = v;
      tags = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    st->BindText(1, m.session_id);
    st->BindText(2, m.name);
    st->BindDouble(3, m.value);
    st->BindTextOrNull(4, tags);
    st->Bind(5, m.at_us);
    s = st->Exec();
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status SqliteAnalytics::ApplyEvent(Db* writer, const Event& e) {
  Stmt* st = nullptr;
  Status s = Prepared(writer, kEvent, &st);
  if (!s.ok()) return s;
  st->BindText(1, e.session_id);
  st->Bind(2, e.at_us);
  st->Bind(3, static_cast<int64_t>(e.body.index()) + 1);
  std::optional<double> number;
  std::optional<int64_t> flag;
  if (const auto* t = std::get_if<StateTransition>(&e.body)) {
    st->BindTextOrNull(4, t->from_state);
    st->BindTextOrNull(5, t->to_state);
    st->BindTextOrNull(6, t->trigger);
    number = t->latency_ms;
  } else if (const auto* sl = std::get_if<SlotExtraction>(&e.body)) {
    st->BindTextOrNull(4, sl->name);
    st->BindTextOrNull(5, sl->value);
    st->BindTextOrNull(6, sl->method);
    number = sl->confidence;
    if (sl->validated) flag = *sl->validated ? 1 : 0;
  } else if (const auto* f = std::get_if<Feedback>(&e.body)) {
    st->BindTextOrNull(4, f->type);
    st->BindTextOrNull(5, f->text);
    number = f->rating;
  } else if (const auto* sys = std::get_if<SystemEvent>(&e.body)) {
    st->BindTextOrNull(4, sys->name);
    st->BindTextOrNull(6, sys->data);
  }
  BindOpt(st, 7, number);
  BindOptInt(st, 8, flag);
  return st->Exec();
}

Status SqliteAnalytics::Apply(Db* writer, const AnalyticsOp& op) {
  Stmt* st = nullptr;
  Status s;
  if (const auto* start = std::get_if<SessionStart>(&op.record)) {
    s = Prepared(writer, kStart, &st);
    if (!s.ok()) return s;
    st->BindText(1, start->session_id);
    st->BindText(2, start->conversation_id);
    st->BindText(3, start->user_id);
    st->BindText(4, start->tenant);
    st->BindText(5, start->channel);
    st->BindTextOrNull(6, start->metadata);
    st->Bind(7, start->started_at_us);
    return st->Exec();
  }
  if (const auto* end = std::get_if<SessionEnd>(&op.record)) {
    s = Prepared(writer, kEnd, &st);
    if (!s.ok()) return s;
    st->BindText(1, end->session_id);
    st->Bind(2, end->ended_at_us);
    st->Bind(3, static_cast<int64_t>(end->status));
    st->BindText(4, end->final_state);
    return st->Exec();
  }
  if (const auto* turn = std::get_if<TurnMetrics>(&op.record)) {
    return ApplyTurn(writer, *turn);
  }
  if (const auto* metrics = std::get_if<std::vector<Metric>>(&op.record)) {
    return ApplyMetrics(writer, *metrics);
  }
  if (const auto* e = std::get_if<ErrorRecord>(&op.record)) {
    s = Prepared(writer, kError, &st);
    if (!s.ok()) return s;
    st->BindText(1, e->session_id);
    st->Bind(2, e->at_us);
    st->BindText(3, e->type);
    st->Bind(4, static_cast<int64_t>(e->severity));
    st->BindText(5, e->message);
    st->BindTextOrNull(6, e->context);
    st->Bind(7, e->resolved ? 1 : 0);
    return st->Exec();
  }
  if (const auto* ev = std::get_if<Event>(&op.record)) {
    return ApplyEvent(writer, *ev);
  }
  if (const auto* p = std::get_if<AnalyticsPurge>(&op.record)) {
    const std::string table = AnalyticsTableName(p->table);
    // The batch: up to `limit` rows older than the cut-off that existed
    // when the run started (the same rows for both statements below, in
    // one transaction).
    const std::string batch = "SELECT id FROM " + table + " WHERE " +
                              AnalyticsTimeColumn(p->table) +
                              " < ?1 AND id <= ?2 LIMIT ?3";
    auto bind = [&](Stmt* stmt) {
      stmt->Bind(1, p->cutoff_us);
      stmt->Bind(2, p->max_id);
      stmt->Bind(3, static_cast<int64_t>(p->limit));
    };
    // Rollups follow their turns: each hour this batch removes turns from
    // is rebuilt from the turns left in it - only those hours, at most
    // `limit` of them, however far apart. (Dropping every rollup before
    // the cut-off hour also dropped those of old turns a batch did not
    // remove: a run that stopped early, or a turn backfilled during the
    // run, whose id is above max_id.)
    std::vector<int64_t> hours;
    if (p->table == AnalyticsTable::kTurns) {
      Stmt span;
      s = writer->Prepare(
          "SELECT DISTINCT at_us FROM analytics_turns WHERE id IN (" + batch +
              ")",
          &span);
      if (!s.ok()) return s;
      bind(&span);
      while (span.Step(&s)) hours.push_back(RollupBucket(span.Int(0)));
      span.Reset();
      if (!s.ok()) return s;
      std::sort(hours.begin(), hours.end());
      hours.erase(std::unique(hours.begin(), hours.end()), hours.end());
    }
    Stmt del;
    s = writer->Prepare("DELETE FROM " + table + " WHERE id IN (" + batch + ")",
                        &del);
    if (!s.ok()) return s;
    bind(&del);
    s = del.Exec();
    // Before the rebuilds below, whose statements reset the count.
    if (s.ok() && p->removed != nullptr) {
      *p->removed = sqlite3_changes(writer->raw());
    }
    for (size_t i = 0; s.ok() && i < hours.size(); ++i) {
      s = RebuildTurnRollups(writer, hours[i], RollupBucketEnd(hours[i]));
    }
    return s;
  }
  if (std::holds_alternative<AnalyticsRepair>(op.record)) {
    return writer->Exec(
        "DELETE FROM analytics_turns WHERE session_id NOT IN"
        " (SELECT session_id FROM analytics_sessions);"
        "DELETE FROM analytics_metrics WHERE session_id <> '' AND session_id"
        " NOT IN (SELECT session_id FROM analytics_sessions);"
        "DELETE FROM analytics_errors WHERE session_id NOT IN"
        " (SELECT session_id FROM analytics_sessions);"
        "DELETE FROM analytics_events WHERE session_id NOT IN"
        " (SELECT session_id FROM analytics_sessions);"
        "DELETE FROM analytics_turn_rollups WHERE session_id NOT IN"
        " (SELECT session_id FROM analytics_sessions);");
  }
  if (std::holds_alternative<AnalyticsRollupRebuild>(op.record)) {
    return BackfillTurnRollups(writer);
  }
  if (const auto* d = std::get_if<AnalyticsSessionDelete>(&op.record)) {
    // Every table has an index on session_id. The rollups are per
    // (hour, session, model, provider): the session's go whole, and no
    // other session's rollup changes.
    int64_t removed = 0;
    for (const char* table :
         {"analytics_turns", "analytics_metrics", "analytics_errors",
          "analytics_events", "analytics_sessions", "analytics_turn_rollups"}) {
      Stmt del;
      s = writer->Prepare(
          std::string("DELETE FROM ") + table + " WHERE session_id = ?1", &del);
      if (!s.ok()) return s;
      del.BindText(1, d->session_id);
      s = del.Exec();
      if (!s.ok()) return s;
      if (std::string_view(table) != "analytics_turn_rollups") {
        removed += sqlite3_changes(writer->raw());
      }
    }
    if (d->removed != nullptr) *d->removed = removed;
    return Status::OK();
  }
  if (std::holds_alternative<AnalyticsShrink>(op.record)) {
    // Runs to completion (the pragma returns no rows we need).
    return writer->Exec("PRAGMA incremental_vacuum");
  }
  return Status::Internal("unknown analytics record");
}

}  // namespace convstore::internal
