// Copyright 2026 The convstore Authors.

#include "analytics_commands.h"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "json_output.h"
#include "printable.h"
#include "table.h"

namespace convstore::tools {
namespace {

json Opt(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string Num(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string OptNum(const std::optional<double>& v) { return v ? Num(*v) : "-"; }

json SummaryJson(const SessionSummary& s) {
  json j;
  j["session_id"] = s.start.session_id;
  j["conversation_id"] = s.start.conversation_id;
  j["user_id"] = s.start.user_id;
  j["tenant"] = s.start.tenant;
  j["channel"] = s.start.channel;
  j["started_at_us"] = s.start.started_at_us;
  j["ended_at_us"] = s.ended_at_us;
  j["status"] = SessionStatusName(s.status);
  j["final_state"] = s.final_state;
  j["duration_ms"] = Opt(s.duration_ms);
  j["turns"] = s.turns;
  j["errors"] = s.errors;
  j["e2e_p50_ms"] = Opt(s.e2e_p50_ms);
  j["e2e_p95_ms"] = Opt(s.e2e_p95_ms);
  return j;
}

json GroupJson(const GroupAggregate& g) {
  json j;
  j["key"] = g.key;
  j["sessions"] = g.sessions;
  j["ended"] = g.ended;
  j["completed"] = g.completed;
  j["failed"] = g.failed;
  j["abandoned"] = g.abandoned;
  j["success_rate"] = g.success_rate;
  j["turns"] = g.turns;
  j["interrupted"] = g.interrupted;
  j["interruption_rate"] = g.interruption_rate;
  json lat = json::object();
  for (const LatencyStats& l : g.latencies) {
    lat[l.field] = {{"count", l.count}, {"mean", l.mean}, {"p50", l.p50},
                    {"p95", l.p95},     {"p99", l.p99},   {"max", l.max}};
  }
  j["latency_ms"] = lat;
  j["errors"] = g.errors;
  j["error_rate"] = g.error_rate;
  json errs = json::array();
  for (const ErrorCount& e : g.errors_by_type) {
    errs.push_back({{"type", e.type},
                    {"severity", SeverityName(e.severity)},
                    {"count", e.count},
                    {"per_turn", e.per_turn}});
  }
  j["errors_by_type"] = errs;
  j["prompt_tokens"] = g.prompt_tokens;
  j["completion_tokens"] = g.completion_tokens;
  j["cached_tokens"] = g.cached_tokens;
  j["cost"] = g.cost;
  json dur = json::array();
  for (const StateDuration& d : g.duration_by_final_state) {
    dur.push_back({{"final_state", d.final_state},
                   {"sessions", d.sessions},
                   {"avg_duration_ms", d.avg_duration_ms}});
  }
  j["duration_by_final_state"] = dur;
  j["slots"] = g.slots;
  j["slot_confidence"] = g.slot_confidence;
  j["slot_validation_rate"] = g.slot_validation_rate;
  return j;
}

json TurnJson(const TurnMetrics& t) {
  json j;
  j["turn_number"] = t.turn_number;
  j["at_us"] = t.at_us;
  if (t.interrupted) j["interrupted"] = *t.interrupted;
  if (t.e2e_ms) j["e2e_ms"] = *t.e2e_ms;
  if (t.stt_ttfb_ms) j["stt_ttfb_ms"] = *t.stt_ttfb_ms;
  if (t.llm_ttft_ms) j["llm_ttft_ms"] = *t.llm_ttft_ms;
  if (t.tts_ttfb_ms) j["tts_ttfb_ms"] = *t.tts_ttfb_ms;
  if (t.eou_delay_ms) j["eou_delay_ms"] = *t.eou_delay_ms;
  if (t.prompt_tokens) j["prompt_tokens"] = *t.prompt_tokens;
  if (t.completion_tokens) j["completion_tokens"] = *t.completion_tokens;
  if (t.cost) j["cost"] = *t.cost;
  if (!t.llm_model.empty()) j["llm_model"] = t.llm_model;
  if (!t.llm_provider.empty()) j["llm_provider"] = t.llm_provider;
  return j;
}

json EventJson(const Event& e) {
  json j;
  j["at_us"] = e.at_us;
  if (const auto* t = std::get_if<StateTransition>(&e.body)) {
    j["kind"] = "state_transition";
    j["from"] = t->from_state;
    j["to"] = t->to_state;
    j["trigger"] = t->trigger;
    j["latency_ms"] = Opt(t->latency_ms);
  } else if (const auto* s = std::get_if<SlotExtraction>(&e.body)) {
    j["kind"] = "slot";
    j["name"] = s->name;
    j["value"] = s->value;
    j["confidence"] = Opt(s->confidence);
    j["method"] = s->method;
    j["validated"] = s->validated ? json(*s->validated) : json(nullptr);
  } else if (const auto* f = std::get_if<Feedback>(&e.body)) {
    j["kind"] = "feedback";
    j["rating"] = f->rating;
    j["text"] = f->text;
    j["type"] = f->type;
  } else if (const auto* sys = std::get_if<SystemEvent>(&e.body)) {
    j["kind"] = "system";
    j["name"] = sys->name;
    j["data"] = sys->data;
  }
  return j;
}

}  // namespace

StatusOr<int64_t> ParseBucket(const std::string& text) {
  if (text.size() < 2) {
    return Status::InvalidArgument("bucket must look like 30s, 5m, 1h or 1d");
  }
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1'000'000;
      break;
    case 'm':
      unit = 60'000'000;
      break;
    case 'h':
      unit = 3'600'000'000;
      break;
    case 'd':
      unit = 86'400'000'000;
      break;
    default:
      return Status::InvalidArgument("bucket unit must be s, m, h or d: " +
                                     text);
  }
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9' || n > 1'000'000) {
      return Status::InvalidArgument("bad bucket: " + text);
    }
    n = n * 10 + (c - '0');
  }
  if (n == 0) return Status::InvalidArgument("bucket must be > 0");
  return n * unit;
}

Status RunSessions(const SessionsArgs& args, std::ostream& out) {
  auto store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  SessionQuery q;
  q.limit = args.limit;
  q.tenant = args.tenant;
  auto r = (*store)->analytics().RecentSessions(q);
  if (!r.ok()) return CloseAfter(**store, r.status());
  if (args.json) {
    json j = json::array();
    for (const SessionSummary& s : *r) j.push_back(SummaryJson(s));
    PrintJson(j, out);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const SessionSummary& s : *r) {
      rows.push_back({Printable(s.start.session_id),
                      FormatTimestamp(s.start.started_at_us),
                      Printable(s.start.tenant), SessionStatusName(s.status),
                      Printable(s.final_state), OptNum(s.duration_ms),
                      std::to_string(s.turns), std::to_string(s.errors),
                      OptNum(s.e2e_p50_ms), OptNum(s.e2e_p95_ms)});
    }
    PrintTable(
        {"SESSION", "STARTED (UTC)", "TENANT", "STATUS", "FINAL STATE",
         "DURATION MS", "TURNS", "ERRORS", "E2E P50 MS", "E2E P95 MS"},
        {false, false, false, false, false, true, true, true, true, true}, rows,
        out);
  }
  return CloseAfter(**store, Status::OK());
}

Status RunSession(const SessionArgs& args, std::ostream& out) {
  auto store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  auto d = (*store)->analytics().GetSession(args.session);
  if (!d.ok()) return CloseAfter(**store, d.status());
  json j = SummaryJson(d->summary);
  json turns = json::array();
  for (const TurnMetrics& t : d->turns) turns.push_back(TurnJson(t));
  j["turn_metrics"] = turns;
  json errors = json::array();
  for (const ErrorRecord& e : d->errors) {
    errors.push_back({{"at_us", e.at_us},
                      {"type", e.type},
                      {"severity", SeverityName(e.severity)},
                      {"message", e.message},
                      {"context", e.context},
                      {"resolved", e.resolved}});
  }
  j["error_records"] = errors;
  json events = json::array();
  for (const Event& e : d->events) events.push_back(EventJson(e));
  j["events"] = events;
  json metrics = json::array();
  for (const Metric& m : d->metrics) {
    metrics.push_back(
        {{"at_us", m.at_us}, {"name", m.name}, {"value", m.value}});
  }
  j["metrics"] = metrics;
  if (args.json) {
    json transcript = json::array();
    for (const MessagePtr& m : d->transcript) {
      transcript.push_back({{"seq", m->seq},
                            {"role", RoleName(m->role)},
                            {"content", m->content}});
    }
    j["transcript"] = transcript;
    PrintJson(j, out);
  } else {
    PrintJson(j, out);
    out << "transcript:\n";
    PrintMessagesText(d->transcript, out, "  ");
  }
  return CloseAfter(**store, Status::OK());
}

Status RunAggregate(const AggregateArgs& args, std::ostream& out) {
  AggregateQuery q;
  if (!ParseGroupBy(args.group_by, &q.group_by)) {
    return Status::InvalidArgument(
        "--group-by must be none, tenant, model, provider or final_state");
  }
  q.range.last_hours = args.hours;
  q.exact_percentiles = args.exact;
  auto store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  auto r = (*store)->analytics().Aggregate(q);
  if (!r.ok()) return CloseAfter(**store, r.status());
  json j;
  j["from_us"] = r->from_us;
  j["to_us"] = r->to_us;
  j["group_by"] = GroupByName(q.group_by);
  j["exact_percentiles"] = q.exact_percentiles;
  json groups = json::array();
  for (const GroupAggregate& g : r->groups) groups.push_back(GroupJson(g));
  j["groups"] = groups;
  if (args.json) {
    PrintJson(j, out);
  } else {
    out << "from " << FormatTimestamp(r->from_us) << " to "
        << FormatTimestamp(r->to_us) << ", by " << GroupByName(q.group_by)
        << "\n";
    for (const GroupAggregate& g : r->groups) {
      out << "[" << (g.key.empty() ? "(none)" : Printable(g.key))
          << "] sessions " << g.sessions << ", success "
          << Num(100 * g.success_rate) << "%, turns " << g.turns
          << ", interrupted " << Num(100 * g.interruption_rate) << "%, errors "
          << g.errors << ", cost " << Num(g.cost, 4) << "\n";
      for (const LatencyStats& l : g.latencies) {
        out << "  " << l.field << ": p50 " << Num(l.p50) << "  p95 "
            << Num(l.p95) << "  p99 " << Num(l.p99) << "  (n=" << l.count
            << ")\n";
      }
    }
  }
  return CloseAfter(**store, Status::OK());
}

Status RunSeries(const SeriesArgs& args, std::ostream& out) {
  auto bucket = ParseBucket(args.bucket);
  if (!bucket.ok()) return bucket.status();
  SeriesQuery q;
  q.metric = args.metric;
  q.range.last_hours = args.hours;
  q.bucket = std::chrono::microseconds(*bucket);
  q.session_id = args.session;
  auto store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  auto r = (*store)->analytics().Series(q);
  if (!r.ok()) return CloseAfter(**store, r.status());
  if (args.json) {
    json j = json::array();
    for (const SeriesPoint& p : *r) {
      j.push_back({{"bucket_start_us", p.bucket_start_us},
                   {"count", p.count},
                   {"sum", p.sum},
                   {"mean", p.mean},
                   {"min", p.min},
                   {"max", p.max},
                   {"p50", p.p50},
                   {"p95", p.p95}});
    }
    PrintJson(j, out);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const SeriesPoint& p : *r) {
      rows.push_back({FormatTimestamp(p.bucket_start_us),
                      std::to_string(p.count), Num(p.mean), Num(p.p50),
                      Num(p.p95), Num(p.max)});
    }
    PrintTable({"BUCKET (UTC)", "COUNT", "MEAN", "P50", "P95", "MAX"},
               {false, true, true, true, true, true}, rows, out);
  }
  return CloseAfter(**store, Status::OK());
}

}  // namespace convstore::tools
