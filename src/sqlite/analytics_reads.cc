// Copyright 2026 The convstore Authors.
//
// SqliteAnalytics, read side: the row fetches behind the analytics queries
// and retention, on a reader connection of its own.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <thread>

#include "analytics/turn_fields.h"
#include "saturating.h"
#include "sqlite/analytics_rollups.h"
#include "sqlite/analytics_tables.h"
#include "sqlite/turn_columns.h"

namespace convstore::internal {
namespace {

constexpr const char* kSessionColumns =
    "s.session_id, s.conversation_id, s.user_id, s.tenant, s.channel,"
    " coalesce(s.metadata, ''), s.started_at_us, s.ended_at_us, s.status,"
    " s.final_state";

SessionSummary ReadSession(const Stmt& st) {
  SessionSummary r;
  r.start.session_id = st.Text(0);
  r.start.conversation_id = st.Text(1);
  r.start.user_id = st.Text(2);
  r.start.tenant = st.Text(3);
  r.start.channel = st.Text(4);
  r.start.metadata = st.Text(5);
  r.start.started_at_us = st.Int(6);
  r.ended_at_us = st.Int(7);
  r.status = static_cast<SessionStatus>(st.Int(8));
  r.final_state = st.Text(9);
  // An end before the start (clocks that disagree) has no duration: a
  // negative one would pull averages down.
  if (r.ended_at_us != 0 && r.start.started_at_us != 0 &&
      r.ended_at_us >= r.start.started_at_us) {
    // In double: the difference of two times from the file may not fit
    // int64.
    r.duration_ms = (static_cast<double>(r.ended_at_us) -
                     static_cast<double>(r.start.started_at_us)) /
                    1000.0;
  }
  return r;
}

// "t.session_id, t.turn_number, t.at_us, t.interrupted, t.<field>..."
const std::string& TurnColumns() {
  static const std::string* cols = [] {
    auto* s = new std::string("t.session_id, t.turn_number, t.at_us, " +
                              TurnNumberColumns("t."));
    for (const TurnTextField& f : TurnTextFields()) {
      *s += std::string(", t.") + f.name;
    }
    return s;
  }();
  return *cols;
}

// Reads TurnColumns() into *t, overwriting every field (so one TurnMetrics
// can be reused across rows without reallocating its strings); returns the
// next column index.
int ReadTurn(const Stmt& st, TurnMetrics* t) {
  int c = 0;
  t->session_id.assign(st.TextView(c++));
  t->turn_number = st.Int(c++);
  t->at_us = st.Int(c++);
  c = ReadTurnNumbers(st, c, t);
  for (const TurnTextField& f : TurnTextFields()) {
    (t->*f.member).assign(st.TextView(c++));
  }
  return c;
}

// The fields Aggregate reads: latencies, tokens and cost.
bool AggregateField(const TurnField& f) {
  const std::string_view n = f.name;
  return f.latency || n == "prompt_tokens" || n == "completion_tokens" ||
         n == "cached_tokens" || n == "cost";
}

// "t.session_id, t.interrupted, <AggregateField columns>, t.llm_model,
// t.llm_provider"
const std::string& AggregateTurnColumns() {
  static const std::string* cols = new std::string(
      "t.session_id, " + TurnNumberColumns("t.", &AggregateField) +
      ", t.llm_model, t.llm_provider");
  return *cols;
}

// Reads AggregateTurnColumns() into *t (other fields untouched); returns
// the next column index.
int ReadAggregateTurn(const Stmt& st, TurnMetrics* t) {
  int c = 0;
  t->session_id.assign(st.TextView(c++));
  c = ReadTurnNumbers(st, c, t, &AggregateField);
  t->llm_model.assign(st.TextView(c++));
  t->llm_provider.assign(st.TextView(c++));
  return c;
}

ErrorRecord ReadError(const Stmt& st) {
  ErrorRecord e;
  e.session_id = st.Text(0);
  e.at_us = st.Int(1);
  e.type = st.Text(2);
  e.severity = static_cast<Severity>(st.Int(3));
  e.message = st.Text(4);
  e.context = st.Text(5);
  e.resolved = st.Int(6) != 0;
  return e;
}

constexpr const char* kErrorColumns =
    "e.session_id, e.at_us, e.type, e.severity, e.message,"
    " coalesce(e.context, ''), e.resolved";

Event ReadEvent(const Stmt& st) {
  Event e;
  e.session_id = st.Text(0);
  e.at_us = st.Int(1);
  const int64_t kind = st.Int(2);
  std::optional<double> number;
  if (!st.IsNull(6)) number = st.Double(6);
  if (kind == 1) {
    e.body = StateTransition{st.Text(3), st.Text(4), st.Text(5), number};
  } else if (kind == 2) {
    SlotExtraction s{st.Text(3), st.Text(4), number, st.Text(5), {}};
    if (!st.IsNull(7)) s.validated = st.Int(7) != 0;
    e.body = s;
  } else if (kind == 3) {
    // Held to int range: a damaged file may hold any double here.
    const int64_t rating = std::clamp<int64_t>(
        SatFromDouble(number.value_or(0)), std::numeric_limits<int>::min(),
        std::numeric_limits<int>::max());
    e.body = Feedback{static_cast<int>(rating), st.Text(4), st.Text(3)};
  } else {
    e.body = SystemEvent{st.Text(3), st.Text(5)};
  }
  return e;
}

Metric ReadMetric(const Stmt& st) {
  Metric m;
  m.session_id = st.Text(0);
  m.name = st.Text(1);
  m.value = st.Double(2);
  m.at_us = st.Int(4);
  const std::string tags = st.Text(3);
  if (!tags.empty()) {
    nlohmann::json j = nlohmann::json::parse(tags, nullptr, false);
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.value().is_string()) {
          m.tags[it.key()] = it.value().get<std::string>();
        }
      }
    }
  }
  return m;
}

// Steps `st` to the end, calling `row` for each row.
template <typename F>
Status ForEach(Stmt* st, F row) {
  Status s;
  while (st->Step(&s)) row(*st);
  return s;
}

}  // namespace

Status SqliteAnalytics::Read(const std::function<Status(Db*)>& fn) {
  return reader_.Read(fn);
}

void SqliteAnalytics::CloseReader() { reader_.Close(); }

Status SqliteAnalytics::ListSessions(const SessionQuery& q,
                                     std::vector<SessionSummary>* out) {
  return Read([&](Db* db) {
    std::string sql = std::string("SELECT ") + kSessionColumns +
                      " FROM analytics_sessions s WHERE s.started_at_us >= ?1";
    if (!q.tenant.empty()) sql += " AND s.tenant = ?3";
    sql += " ORDER BY s.started_at_us DESC, s.id DESC LIMIT ?2";
    Stmt st;
    Status s = db->Prepare(sql, &st);
    if (!s.ok()) return s;
    st.Bind(1, q.since_us);
    st.Bind(2, static_cast<int64_t>(q.limit));
    if (!q.tenant.empty()) st.BindText(3, q.tenant);
    return ForEach(&st, [&](const Stmt& r) { out->push_back(ReadSession(r)); });
  });
}

Status SqliteAnalytics::SessionCounts(std::string_view id, int64_t* turns,
                                      int64_t* errors,
                                      std::vector<double>* e2e) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        "SELECT e2e_ms FROM analytics_turns WHERE session_id = ?", &st);
    if (!s.ok()) return s;
    st.BindText(1, id);
    *turns = 0;
    s = ForEach(&st, [&](const Stmt& r) {
      ++*turns;
      if (!r.IsNull(0)) e2e->push_back(r.Double(0));
    });
    if (!s.ok()) return s;
    Stmt err;
    s = db->Prepare(
        "SELECT count(*) FROM analytics_errors WHERE session_id = ?", &err);
    if (!s.ok()) return s;
    err.BindText(1, id);
    *errors = 0;
    if (err.Step(&s)) *errors = err.Int(0);
    return s;
  });
}

Status SqliteAnalytics::LoadSession(std::string_view id, SessionDetail* out,
                                    bool* found) {
  return Read([&](Db* db) {
    *found = false;
    Stmt st;
    Status s = db->Prepare(std::string("SELECT ") + kSessionColumns +
                               " FROM analytics_sessions s"
                               " WHERE s.session_id = ?",
                           &st);
    if (!s.ok()) return s;
    st.BindText(1, id);
    if (st.Step(&s)) {
      out->summary = ReadSession(st);
      *found = true;
    }
    if (!s.ok()) return s;
    out->summary.start.session_id = std::string(id);
    struct Part {
      std::string sql;
      std::function<void(const Stmt&)> row;
    } parts[] = {
        {"SELECT " + TurnColumns() +
             " FROM analytics_turns t WHERE t.session_id = ?"
             " ORDER BY t.turn_number, t.at_us, t.id",
         [&](const Stmt& r) {
           TurnMetrics t;
           ReadTurn(r, &t);
           out->turns.push_back(std::move(t));
         }},
        {"SELECT session_id, name, value, coalesce(tags, ''), at_us"
         " FROM analytics_metrics WHERE session_id = ? ORDER BY at_us, id",
         [&](const Stmt& r) { out->metrics.push_back(ReadMetric(r)); }},
        {std::string("SELECT ") + kErrorColumns +
             " FROM analytics_errors e WHERE e.session_id = ?"
             " ORDER BY e.at_us, e.id",
         [&](const Stmt& r) { out->errors.push_back(ReadError(r)); }},
        {"SELECT session_id, at_us, kind, name, value, detail, number, flag"
         " FROM analytics_events WHERE session_id = ? ORDER BY at_us, id",
         [&](const Stmt& r) { out->events.push_back(ReadEvent(r)); }},
    };
    for (Part& p : parts) {
      Stmt q;
      s = db->Prepare(p.sql, &q);
      if (!s.ok()) return s;
      q.BindText(1, id);
      s = ForEach(&q, p.row);
      if (!s.ok()) return s;
    }
    if (!out->turns.empty() || !out->metrics.empty() || !out->errors.empty() ||
        !out->events.empty()) {
      *found = true;
    }
    return Status::OK();
  });
}

Status SqliteAnalytics::ScanSessions(int64_t from_us, int64_t to_us,
                                     std::vector<SessionSummary>* out) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(std::string("SELECT ") + kSessionColumns +
                               " FROM analytics_sessions s WHERE"
                               " s.started_at_us >= ? AND s.started_at_us < ?",
                           &st);
    if (!s.ok()) return s;
    st.Bind(1, from_us);
    st.Bind(2, to_us);
    return ForEach(&st, [&](const Stmt& r) { out->push_back(ReadSession(r)); });
  });
}

Status SqliteAnalytics::ScanTurns(
    int64_t from_us, int64_t to_us, bool with_keys,
    const std::function<void(const TurnRow&)>& row) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        with_keys
            ? "SELECT " + AggregateTurnColumns() +
                  ", coalesce(s.tenant, ''), coalesce(s.final_state, '')"
                  " FROM analytics_turns t LEFT JOIN analytics_sessions s"
                  " ON s.session_id = t.session_id"
                  " WHERE t.at_us >= ? AND t.at_us < ? ORDER BY t.at_us, t.id"
            : "SELECT " + AggregateTurnColumns() +
                  " FROM analytics_turns t"
                  " WHERE t.at_us >= ? AND t.at_us < ? ORDER BY t.at_us, t.id",
        &st);
    if (!s.ok()) return s;
    st.Bind(1, from_us);
    st.Bind(2, to_us);
    TurnRow r;
    return ForEach(&st, [&](const Stmt& q) {
      const int c = ReadAggregateTurn(q, &r.turn);
      if (with_keys) {
        r.keys.tenant.assign(q.TextView(c));
        r.keys.final_state.assign(q.TextView(c + 1));
      }
      row(r);
    });
  });
}

Status SqliteAnalytics::ScanRollups(
    int64_t from_us, int64_t to_us, bool with_keys,
    const std::function<Status(const RollupRow&)>& row) {
  return Read([&](Db* db) {
    return ScanTurnRollups(db, from_us, to_us, with_keys, row);
  });
}

Status SqliteAnalytics::ScanErrors(int64_t from_us, int64_t to_us,
                                   std::vector<ErrorRow>* out) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        std::string("SELECT ") + kErrorColumns +
            ", coalesce(s.tenant, ''), coalesce(s.final_state, '')"
            " FROM analytics_errors e LEFT JOIN analytics_sessions s"
            " ON s.session_id = e.session_id"
            " WHERE e.at_us >= ? AND e.at_us < ?",
        &st);
    if (!s.ok()) return s;
    st.Bind(1, from_us);
    st.Bind(2, to_us);
    return ForEach(&st, [&](const Stmt& r) {
      out->push_back({ReadError(r), {r.Text(7), r.Text(8)}});
    });
  });
}

Status SqliteAnalytics::ScanSlots(int64_t from_us, int64_t to_us,
                                  std::vector<SlotRow>* out) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        "SELECT e.session_id, e.number, e.flag, coalesce(s.tenant, ''),"
        " coalesce(s.final_state, '')"
        " FROM analytics_events e LEFT JOIN analytics_sessions s"
        " ON s.session_id = e.session_id"
        " WHERE e.at_us >= ? AND e.at_us < ? AND e.kind = 2",
        &st);
    if (!s.ok()) return s;
    st.Bind(1, from_us);
    st.Bind(2, to_us);
    return ForEach(&st, [&](const Stmt& r) {
      SlotRow row;
      row.session_id = r.Text(0);
      if (!r.IsNull(1)) row.confidence = r.Double(1);
      if (!r.IsNull(2)) row.validated = r.Int(2) != 0;
      row.keys = {r.Text(3), r.Text(4)};
      out->push_back(std::move(row));
    });
  });
}

Status SqliteAnalytics::ScanValues(
    std::string_view metric, bool turn_field, std::string_view session_id,
    int64_t from_us, int64_t to_us,
    std::vector<std::pair<int64_t, double>>* out) {
  return Read([&](Db* db) {
    std::string sql;
    if (turn_field) {
      // `metric` is a known column name (checked by the caller).
      const std::string col(metric);
      sql = "SELECT at_us, " + col + " FROM analytics_turns WHERE " + col +
            " IS NOT NULL AND at_us >= ?2 AND at_us < ?3";
    } else {
      sql =
          "SELECT at_us, value FROM analytics_metrics WHERE name = ?1"
          " AND at_us >= ?2 AND at_us < ?3";
    }
    if (!session_id.empty()) sql += " AND session_id = ?4";
    sql += " ORDER BY at_us";
    Stmt st;
    Status s = db->Prepare(sql, &st);
    if (!s.ok()) return s;
    if (!turn_field) st.BindText(1, metric);
    st.Bind(2, from_us);
    st.Bind(3, to_us);
    if (!session_id.empty()) st.BindText(4, session_id);
    return ForEach(
        &st, [&](const Stmt& r) { out->emplace_back(r.Int(0), r.Double(1)); });
  });
}

Status SqliteAnalytics::MaxId(AnalyticsTable table, int64_t* out) {
  return Read([&](Db* db) {
    return db->QueryInt(std::string("SELECT coalesce(max(id), 0) FROM ") +
                            AnalyticsTableName(table),
                        out);
  });
}

Status SqliteAnalytics::CountPurgeable(const AnalyticsPurge& p, int64_t at_most,
                                       int64_t* out) {
  return Read([&](Db* db) {
    // The LIMIT stops the walk of the time index: a count of 1 costs one
    // probe however many rows are left.
    Stmt st;
    Status s = db->Prepare(std::string("SELECT count(*) FROM (SELECT 1 FROM ") +
                               AnalyticsTableName(p.table) + " WHERE " +
                               AnalyticsTimeColumn(p.table) +
                               " < ? AND id <= ? LIMIT ?)",
                           &st);
    if (!s.ok()) return s;
    st.Bind(1, p.cutoff_us);
    st.Bind(2, p.max_id);
    st.Bind(3, at_most < 0 ? int64_t{-1} : at_most);
    // *out is left alone on failure: Cleanup reports k.count - *out as
    // removed, and 0 would claim everything.
    if (st.Step(&s)) *out = st.Int(0);
    return s;
  });
}

Status SqliteAnalytics::Export(
    const AnalyticsPurge& p, const std::function<Status(std::string&&)>& line) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(std::string("SELECT * FROM ") +
                               AnalyticsTableName(p.table) + " WHERE " +
                               AnalyticsTimeColumn(p.table) +
                               " < ? AND id <= ? ORDER BY id",
                           &st);
    if (!s.ok()) return s;
    st.Bind(1, p.cutoff_us);
    st.Bind(2, p.max_id);
    Status out_status;
    while (out_status.ok() && st.Step(&s)) {
      nlohmann::ordered_json j;
      j["table"] = AnalyticsTableName(p.table);
      for (int c = 0; c < st.ColumnCount(); ++c) {
        switch (st.ColumnType(c)) {
          case SQLITE_INTEGER:
            j[st.ColumnName(c)] = st.Int(c);
            break;
          case SQLITE_FLOAT:
            j[st.ColumnName(c)] = st.Double(c);
            break;
          case SQLITE_NULL:
            break;
          default:
            j[st.ColumnName(c)] = st.Text(c);
        }
      }
      out_status = line(
          j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    return out_status.ok() ? s : out_status;
  });
}

Status SqliteAnalytics::CountOrphans(ConsistencyReport* out) {
  return Read([&](Db* db) {
    struct {
      const char* sql;
      int64_t* count;
    } checks[] = {
        {"SELECT count(*) FROM analytics_turns WHERE session_id NOT IN"
         " (SELECT session_id FROM analytics_sessions)",
         &out->orphan_turns},
        {"SELECT count(*) FROM analytics_metrics WHERE session_id <> '' AND"
         " session_id NOT IN (SELECT session_id FROM analytics_sessions)",
         &out->orphan_metrics},
        {"SELECT count(*) FROM analytics_errors WHERE session_id NOT IN"
         " (SELECT session_id FROM analytics_sessions)",
         &out->orphan_errors},
        {"SELECT count(*) FROM analytics_events WHERE session_id NOT IN"
         " (SELECT session_id FROM analytics_sessions)",
         &out->orphan_events},
    };
    for (auto& c : checks) {
      Status s = db->QueryInt(c.sql, c.count);
      if (!s.ok()) return s;
    }
    return CountStaleRollups(db, &out->stale_rollups);
  });
}

Status SqliteAnalytics::TruncateWal() {
  // SQLite reports BUSY at once, without the busy handler, while another
  // connection holds the checkpoint lock: the store's checkpoint thread may
  // be in a pass. Try again until the busy timeout; after that (readers of
  // other processes keep old frames) the file keeps its WAL, which is not a
  // failure.
  const auto deadline =
      std::chrono::steady_clock::now() + reader_.busy_timeout();
  for (;;) {
    Status s = reader_.IfOpen([](Db* db) {
      int rc = sqlite3_wal_checkpoint_v2(
          db->raw(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
      if (rc != SQLITE_OK) return SqliteStatus(rc, "wal checkpoint", db->raw());
      return SyncWal(db->raw());
    });
    if (!s.IsUnavailable()) return s;
    if (std::chrono::steady_clock::now() >= deadline) return Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int64_t SqliteAnalytics::FileBytes() {
  int64_t total = 0;
  for (const std::string& p : {reader_.path(), reader_.path() + "-wal"}) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(p, ec);
    if (!ec) total += static_cast<int64_t>(n);
  }
  return total;
}

}  // namespace convstore::internal
