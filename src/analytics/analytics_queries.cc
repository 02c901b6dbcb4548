// Copyright 2026 The convstore Authors.
//
// AnalyticsImpl, query side: groups, rates and percentiles computed over
// the rows AnalyticsStorage fetches for the range. Aggregate reads the
// range's whole hours from the turn rollups (percentiles from their
// sketches, within 1%) and its partial edge hours from raw turns, unless
// the query asks for exact percentiles.

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "analytics/analytics_impl.h"
#include "analytics/latency_sketch.h"
#include "analytics/turn_fields.h"
#include "analytics/turn_rollup.h"
#include "saturating.h"

namespace convstore::internal {
namespace {

double Ratio(double num, double den) { return den > 0 ? num / den : 0; }

struct GroupAcc {
  GroupAggregate out;
  // Values of each TurnFields() entry (latency fields only).
  std::vector<std::vector<double>> latencies{TurnFields().size()};
  // The same values as sketches, when percentiles need not be exact.
  std::vector<LatencySketch> sketches{TurnFields().size()};
  std::map<std::pair<std::string, int>, int64_t> errors;
  std::map<std::string, std::pair<int64_t, double>> durations;
  int64_t slot_confidences = 0;
  double slot_confidence_sum = 0;
  int64_t slots_flagged = 0, slots_validated = 0;
};

// The same value as Percentile() on sorted `v`, found by selection in
// O(n) (v is reordered).
double Select(std::vector<double>* v, double p) {
  const double rank = p * static_cast<double>(v->size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  auto nth = v->begin() + static_cast<std::ptrdiff_t>(lo);
  std::nth_element(v->begin(), nth, v->end());
  const double a = *nth;
  if (lo + 1 >= v->size()) return a;
  const double b = *std::min_element(nth + 1, v->end());
  return a + (b - a) * (rank - static_cast<double>(lo));
}

// Fills mean/p50/p95/p99/max of `v` (non-empty; reordered).
LatencyStats Stats(std::string field, std::vector<double>* v) {
  LatencyStats st;
  st.field = std::move(field);
  st.count = static_cast<int64_t>(v->size());
  double sum = 0;
  for (double x : *v) sum += x;
  st.mean = sum / static_cast<double>(v->size());
  st.max = *std::max_element(v->begin(), v->end());
  st.p50 = Select(v, 0.50);
  st.p95 = Select(v, 0.95);
  st.p99 = Select(v, 0.99);
  return st;
}

LatencyStats SketchStats(std::string field, const LatencySketch& sk) {
  LatencyStats st;
  st.field = std::move(field);
  st.count = sk.count();
  st.mean = sk.sum() / static_cast<double>(sk.count());
  st.max = sk.max();
  st.p50 = sk.Quantile(0.50);
  st.p95 = sk.Quantile(0.95);
  st.p99 = sk.Quantile(0.99);
  return st;
}

}  // namespace

StatusOr<std::vector<SessionSummary>> AnalyticsImpl::RecentSessions(
    const SessionQuery& query) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  if (query.limit == 0 || query.limit > 100000) {
    return Status::InvalidArgument("limit must be 1..100000");
  }
  std::vector<SessionSummary> out;
  s = storage_->ListSessions(query, &out);
  if (!s.ok()) return s;
  for (SessionSummary& summary : out) {
    std::vector<double> e2e;
    s = storage_->SessionCounts(summary.start.session_id, &summary.turns,
                                &summary.errors, &e2e);
    if (!s.ok()) return s;
    if (!e2e.empty()) {
      std::sort(e2e.begin(), e2e.end());
      summary.e2e_p50_ms = Percentile(e2e, 0.50);
      summary.e2e_p95_ms = Percentile(e2e, 0.95);
    }
  }
  return out;
}

StatusOr<SessionDetail> AnalyticsImpl::GetSession(std::string_view session_id) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  SessionDetail d;
  bool found = false;
  s = storage_->LoadSession(session_id, &d, &found);
  if (!s.ok()) return s;
  if (!found) {
    return Status::NotFound("no analytics recorded for session '" +
                            std::string(session_id) + "'");
  }
  d.summary.turns = static_cast<int64_t>(d.turns.size());
  d.summary.errors = static_cast<int64_t>(d.errors.size());
  std::vector<double> e2e;
  for (const TurnMetrics& t : d.turns) {
    if (t.e2e_ms) e2e.push_back(*t.e2e_ms);
  }
  if (!e2e.empty()) {
    std::sort(e2e.begin(), e2e.end());
    d.summary.e2e_p50_ms = Percentile(e2e, 0.50);
    d.summary.e2e_p95_ms = Percentile(e2e, 0.95);
  }
  if (!d.summary.start.conversation_id.empty() && history_) {
    auto h = history_(d.summary.start.conversation_id);
    if (!h.ok()) return h.status();
    d.transcript = std::move(*h);
  }
  return d;
}

StatusOr<AggregateResult> AnalyticsImpl::Aggregate(
    const AggregateQuery& query) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  AggregateResult result;
  s = ResolveRange(query.range, &result.from_us, &result.to_us);
  if (!s.ok()) return s;
  std::vector<SessionSummary> sessions;
  std::vector<ErrorRow> errors;
  std::vector<SlotRow> slots;
  s = storage_->ScanSessions(result.from_us, result.to_us, &sessions);
  if (s.ok()) s = storage_->ScanErrors(result.from_us, result.to_us, &errors);
  if (s.ok()) s = storage_->ScanSlots(result.from_us, result.to_us, &slots);
  if (!s.ok()) return s;

  const GroupBy by = query.group_by;
  auto turn_key = [by](const TurnRow& r) -> const std::string& {
    static const std::string kEmpty;
    switch (by) {
      case GroupBy::kTenant:
        return r.keys.tenant;
      case GroupBy::kFinalState:
        return r.keys.final_state;
      case GroupBy::kModel:
        return r.turn.llm_model;
      case GroupBy::kProvider:
        return r.turn.llm_provider;
      case GroupBy::kNone:
        break;
    }
    return kEmpty;
  };
  // For model/provider: a session belongs to the group of its first turn
  // in the range that names one (turns come oldest first).
  const bool by_turn = by == GroupBy::kModel || by == GroupBy::kProvider;
  std::map<std::string, std::string> session_group;
  std::map<std::string, GroupAcc> groups;
  GroupAcc* last = nullptr;  // turns of a key tend to come in runs
  std::string last_key;
  const bool with_keys = by == GroupBy::kTenant || by == GroupBy::kFinalState;
  const bool exact = query.exact_percentiles;
  auto group = [&](const std::string& key) -> GroupAcc& {
    if (last == nullptr || key != last_key) {
      last = &groups[key];
      last_key = key;
    }
    return *last;
  };
  auto add_turn = [&](const TurnRow& r) {
    const std::string& key = turn_key(r);
    if (by_turn && !key.empty()) {
      session_group.emplace(r.turn.session_id, key);
    }
    GroupAcc& g = group(key);
    const TurnMetrics& t = r.turn;
    ++g.out.turns;
    if (t.interrupted.value_or(false)) ++g.out.interrupted;
    // Saturating sums: rows read back may come from a damaged file.
    g.out.prompt_tokens =
        SatAdd(g.out.prompt_tokens, t.prompt_tokens.value_or(0));
    g.out.completion_tokens =
        SatAdd(g.out.completion_tokens, t.completion_tokens.value_or(0));
    g.out.cached_tokens =
        SatAdd(g.out.cached_tokens, t.cached_tokens.value_or(0));
    g.out.cost += t.cost.value_or(0);
    const auto fields = TurnFields();
    for (size_t i = 0; i < fields.size(); ++i) {
      if (!fields[i].latency) continue;
      if (auto v = TurnFieldValue(fields[i], t)) {
        if (exact) {
          g.latencies[i].push_back(*v);
        } else {
          g.sketches[i].Add(*v);
        }
      }
    }
  };
  // The whole hours inside the range come from the rollups, the partial
  // hours at its edges from the raw turns; oldest part first, so a
  // session's model/provider group is still decided by its first turn.
  // Both bounds saturate at the int64 limits instead of overflowing; a
  // range without a whole hour inside reads raw turns only.
  const int64_t first_hour = RollupBucketAtOrAfter(result.from_us);
  const int64_t end_hour = RollupBucket(result.to_us);
  if (exact || first_hour >= end_hour) {
    s = storage_->ScanTurns(result.from_us, result.to_us, with_keys, add_turn);
  } else {
    s = storage_->ScanTurns(result.from_us, first_hour, with_keys, add_turn);
    // The session's earliest rollup naming a model/provider, by time.
    std::map<std::string, std::pair<int64_t, std::string>> first_named;
    if (s.ok()) {
      s = storage_->ScanRollups(
          first_hour, end_hour, with_keys, [&](const RollupRow& r) {
            static const std::string kNoKey;
            const std::string* key = &kNoKey;
            switch (by) {
              case GroupBy::kTenant:
                key = &r.keys.tenant;
                break;
              case GroupBy::kFinalState:
                key = &r.keys.final_state;
                break;
              case GroupBy::kModel:
                key = &r.llm_model;
                break;
              case GroupBy::kProvider:
                key = &r.llm_provider;
                break;
              case GroupBy::kNone:
                break;
            }
            if (by_turn && !key->empty()) {
              auto [it, added] =
                  first_named.try_emplace(r.session_id, r.first_at_us, *key);
              if (!added && std::make_pair(r.first_at_us, *key) < it->second) {
                it->second = {r.first_at_us, *key};
              }
            }
            GroupAcc& g = group(*key);
            g.out.turns = SatAdd(g.out.turns, r.turns);
            g.out.interrupted = SatAdd(g.out.interrupted, r.interrupted);
            g.out.prompt_tokens = SatAdd(g.out.prompt_tokens, r.prompt_tokens);
            g.out.completion_tokens =
                SatAdd(g.out.completion_tokens, r.completion_tokens);
            g.out.cached_tokens = SatAdd(g.out.cached_tokens, r.cached_tokens);
            g.out.cost += r.cost;
            return MergeLatencyBlob(r.latencies, g.sketches);
          });
    }
    for (auto& [session, named] : first_named) {
      session_group.emplace(session, std::move(named.second));
    }
    if (s.ok()) {
      s = storage_->ScanTurns(end_hour, result.to_us, with_keys, add_turn);
    }
  }
  if (!s.ok()) return s;
  auto record_key = [&](const std::string& session_id,
                        const SessionKeys& keys) -> std::string {
    switch (by) {
      case GroupBy::kTenant:
        return keys.tenant;
      case GroupBy::kFinalState:
        return keys.final_state;
      case GroupBy::kModel:
      case GroupBy::kProvider: {
        auto it = session_group.find(session_id);
        return it == session_group.end() ? std::string() : it->second;
      }
      case GroupBy::kNone:
        break;
    }
    return std::string();
  };

  for (const SessionSummary& ss : sessions) {
    SessionKeys keys{ss.start.tenant, ss.final_state};
    GroupAcc& g = groups[record_key(ss.start.session_id, keys)];
    ++g.out.sessions;
    if (ss.status == SessionStatus::kActive) continue;
    ++g.out.ended;
    if (ss.status == SessionStatus::kCompleted) ++g.out.completed;
    if (ss.status == SessionStatus::kFailed) ++g.out.failed;
    if (ss.status == SessionStatus::kAbandoned) ++g.out.abandoned;
    if (ss.duration_ms) {
      auto& d = g.durations[ss.final_state];
      ++d.first;
      d.second += *ss.duration_ms;
    }
  }
  for (const ErrorRow& e : errors) {
    GroupAcc& g = groups[record_key(e.error.session_id, e.keys)];
    ++g.out.errors;
    ++g.errors[{e.error.type, static_cast<int>(e.error.severity)}];
  }
  for (const SlotRow& sl : slots) {
    GroupAcc& g = groups[record_key(sl.session_id, sl.keys)];
    ++g.out.slots;
    if (sl.confidence) {
      ++g.slot_confidences;
      g.slot_confidence_sum += *sl.confidence;
    }
    if (sl.validated) {
      ++g.slots_flagged;
      if (*sl.validated) ++g.slots_validated;
    }
  }

  for (auto& [key, g] : groups) {
    GroupAggregate& o = g.out;
    o.key = key;
    o.success_rate = Ratio(o.completed, o.ended);
    o.interruption_rate = Ratio(o.interrupted, o.turns);
    o.error_rate = Ratio(o.errors, o.turns);
    // In TurnFields order, so the output is stable.
    const auto fields = TurnFields();
    for (size_t i = 0; i < fields.size(); ++i) {
      if (!g.latencies[i].empty()) {
        o.latencies.push_back(Stats(fields[i].name, &g.latencies[i]));
      } else if (!g.sketches[i].empty()) {
        o.latencies.push_back(SketchStats(fields[i].name, g.sketches[i]));
      }
    }
    for (const auto& [type_sev, n] : g.errors) {
      o.errors_by_type.push_back({type_sev.first,
                                  static_cast<Severity>(type_sev.second), n,
                                  Ratio(n, o.turns)});
    }
    for (const auto& [state, d] : g.durations) {
      o.duration_by_final_state.push_back(
          {state, d.first, d.second / static_cast<double>(d.first)});
    }
    o.slot_confidence = Ratio(g.slot_confidence_sum, g.slot_confidences);
    o.slot_validation_rate = Ratio(g.slots_validated, g.slots_flagged);
    result.groups.push_back(std::move(o));
  }
  return result;
}

StatusOr<std::vector<SeriesPoint>> AnalyticsImpl::Series(
    const SeriesQuery& query) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  if (query.metric.empty())
    return Status::InvalidArgument("metric is required");
  const int64_t width = query.bucket.count();
  if (width <= 0) return Status::InvalidArgument("bucket must be > 0");
  int64_t from = 0, to = 0;
  s = ResolveRange(query.range, &from, &to);
  if (!s.ok()) return s;
  const bool turn_field = FindTurnField(query.metric) != nullptr;
  std::vector<std::pair<int64_t, double>> values;
  s = storage_->ScanValues(query.metric, turn_field, query.session_id, from, to,
                           &values);
  if (!s.ok()) return s;
  std::vector<SeriesPoint> out;
  std::vector<double> bucket;
  auto finish = [&](int64_t start) {
    std::sort(bucket.begin(), bucket.end());
    SeriesPoint p;
    p.bucket_start_us = start;
    p.count = static_cast<int64_t>(bucket.size());
    for (double v : bucket) p.sum += v;
    p.mean = p.sum / static_cast<double>(p.count);
    p.min = bucket.front();
    p.max = bucket.back();
    p.p50 = Percentile(bucket, 0.50);
    p.p95 = Percentile(bucket, 0.95);
    out.push_back(p);
    bucket.clear();
  };
  int64_t current = 0;
  for (const auto& [at, v] : values) {
    const int64_t start = at - at % width;
    if (!bucket.empty() && start != current) finish(current);
    current = start;
    bucket.push_back(v);
  }
  if (!bucket.empty()) finish(current);
  return out;
}

}  // namespace convstore::internal
