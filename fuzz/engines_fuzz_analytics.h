// Copyright 2026 The convstore Authors.
//
// engines_ops_fuzzer.cc: Analytics calls (recording, GetSession, the
// queries, Cleanup, DeleteSession, CheckConsistency) checked against a
// model of each session's records and their times.

#ifndef CONVSTORE_FUZZ_ENGINES_FUZZ_ANALYTICS_H_
#define CONVSTORE_FUZZ_ENGINES_FUZZ_ANALYTICS_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convstore/convstore.h"
#include "engines_fuzz_input.h"
#include "fuzz_util.h"

namespace convstore::fuzz {

struct Rec {
  int64_t ts = 0;
  bool e2e = false;
};
struct SessionModel {
  bool row = false;
  int64_t start = 0, end = 0;
  std::vector<Rec> turns, metrics, errors, events;
  int64_t Rows() const {
    return (row ? 1 : 0) + static_cast<int64_t>(turns.size() + metrics.size() +
                                                errors.size() + events.size());
  }
  bool Empty() const { return Rows() == 0; }
};

class AnalyticsOps {
 public:
  using hours = std::chrono::hours;
  using microseconds = std::chrono::microseconds;

  explicit AnalyticsOps(FuzzedDataProvider& in) : in_(in) {}

  void set_store(Store* store) { store_ = store; }

  // After a reopen: every session holds what it held.
  void CheckAll() {
    for (const auto& [id, s] : sessions_) {
      if (!id.empty()) CheckSession(id);
    }
  }

  std::string SessionId(Valid* v) {
    std::string id = Pick(in_, kSessions);
    *v = AnalyticsId(id, true);
    return id;
  }

  void RecordSession() {
    Valid v;
    if (in_.ConsumeBool()) {
      SessionStart st;
      st.session_id = SessionId(&v);
      st.conversation_id = in_.ConsumeBool() ? "" : Pick(in_, kConvs);
      st.user_id = in_.ConsumeBool() ? "" : Str(in_);
      st.tenant = in_.ConsumeBool() ? "acme" : Str(in_);
      st.channel = in_.ConsumeBool() ? "phone" : Str(in_);
      Valid json;
      st.metadata = Json(in_, &json);
      Valid at;
      int64_t ts;
      st.started_at_us = At(in_, &at, &ts);
      v = v & AnalyticsId(st.conversation_id, false) &
          AnalyticsId(st.user_id, false) & AnalyticsId(st.tenant, false) &
          AnalyticsId(st.channel, false) & json & at;
      Status s = store_->analytics().StartSession(st);
      Expect(s, v, "StartSession");
      if (!s.ok()) return;
      SessionModel& m = sessions_[st.session_id];
      m.row = true;
      m.start = ts;
      return;
    }
    SessionEnd end;
    end.session_id = SessionId(&v);
    const int status = in_.ConsumeIntegralInRange<int>(-1, 4);
    end.status = static_cast<SessionStatus>(status);
    end.final_state = in_.ConsumeBool() ? "goodbye" : Str(in_);
    Valid at;
    int64_t ts;
    end.ended_at_us = At(in_, &at, &ts);
    v = v & If(status >= 1 && status <= 3) &
        AnalyticsId(end.final_state, false) & at;
    Status s = store_->analytics().EndSession(end);
    Expect(s, v, "EndSession");
    if (!s.ok()) return;
    SessionModel& m = sessions_[end.session_id];
    m.row = true;
    m.end = ts;
  }

  void RecordTurnOrSample() {
    Valid v, at;
    int64_t ts;
    if (in_.ConsumeIntegralInRange<int>(0, 3) == 0) {
      MediaSample ms;
      ms.session_id = in_.ConsumeBool() ? "" : SessionId(&v);
      v = AnalyticsId(ms.session_id, false);
      ms.at_us = At(in_, &at, &ts);
      v = v & at;
      ms.latency_ms = Ms(in_, &v);
      ms.jitter_ms = Ms(in_, &v);
      ms.packet_loss = Ms(in_, &v, 1);
      ms.buffer_ms = Ms(in_, &v);
      const size_t n = ms.latency_ms.has_value() + ms.jitter_ms.has_value() +
                       ms.packet_loss.has_value() + ms.buffer_ms.has_value();
      v = v & If(n > 0);
      Status s = store_->analytics().RecordSample(ms);
      Expect(s, v, "RecordSample");
      if (!s.ok()) return;
      auto& metrics = sessions_[ms.session_id].metrics;
      for (size_t i = 0; i < n; ++i) metrics.push_back({ts, false});
      return;
    }
    TurnMetrics t;
    t.session_id = SessionId(&v);
    static const int64_t kTurn[] = {0, 5, -1, kMax64};
    t.turn_number = in_.PickValueInArray(kTurn);
    t.at_us = At(in_, &at, &ts);
    v = v & at & If(t.turn_number >= 0);
    t.e2e_ms = Ms(in_, &v);
    t.llm_ttft_ms = Ms(in_, &v);
    t.stt_confidence = Ms(in_, &v, 1);
    if (in_.ConsumeBool()) t.interrupted = in_.ConsumeBool();
    if (in_.ConsumeBool()) {
      static const int64_t kTokens[] = {
          10, 0, -1, int64_t{1} << 40, (int64_t{1} << 40) + 1, kMax64};
      t.prompt_tokens = in_.PickValueInArray(kTokens);
      v = v & If(*t.prompt_tokens >= 0 && *t.prompt_tokens <= int64_t{1} << 40);
    }
    if (in_.ConsumeBool()) {
      t.cost = in_.PickValueInArray({0.01, -0.5, kNaN});
      v = v & If(*t.cost >= 0);
    }
    t.llm_model = in_.ConsumeBool() ? "gpt-4o" : Str(in_);
    t.llm_provider = in_.ConsumeBool() ? "" : "openai";
    v = v & AnalyticsId(t.llm_model, false);
    Status s = store_->analytics().RecordTurn(t);
    Expect(s, v, "RecordTurn");
    if (s.ok())
      sessions_[t.session_id].turns.push_back({ts, t.e2e_ms.has_value()});
  }

  void RecordMetricErrorEvent() {
    Valid v, at;
    int64_t ts;
    switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
      case 0: {
        Metric m;
        m.session_id = in_.ConsumeBool() ? "" : SessionId(&v);
        v = AnalyticsId(m.session_id, false);
        static const char* const kNames[] = {"m", "media.jitter_ms", "e2e_ms",
                                             ""};
        switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
          case 0:
            m.name = in_.PickValueInArray(kNames);
            v = v & If(!m.name.empty() && m.name != "e2e_ms");
            break;
          case 1:
            m.name = std::string(in_.ConsumeBool() ? 128 : 129, 'n');
            v = v & If(m.name.size() == 128);
            break;
          default:
            m.name = Str(in_);
            v = v & (m.name.empty() ? Valid::kNo : Valid::kMaybe);
        }
        m.value = in_.PickValueInArray({1.5, kNaN, kInf, -1e308});
        v = v & If(std::isfinite(m.value));
        if (in_.ConsumeBool()) {
          m.tags[in_.ConsumeBool() ? "k" : ""] =
              in_.ConsumeBool() ? "v" : "\xff";
          v = v & If(m.tags.count("k") == 1 && m.tags["k"] == "v");
        }
        m.at_us = At(in_, &at, &ts);
        v = v & at;
        Status s = store_->analytics().RecordMetric(m);
        Expect(s, v, "RecordMetric");
        if (s.ok()) sessions_[m.session_id].metrics.push_back({ts, false});
        return;
      }
      case 1: {
        ErrorRecord e;
        e.session_id = SessionId(&v);
        e.type = in_.ConsumeBool() ? "stt_timeout" : Str(in_);
        const int sev = in_.ConsumeIntegralInRange<int>(0, 5);
        e.severity = static_cast<Severity>(sev);
        e.message = in_.ConsumeBool() ? "timed out" : Str(in_, 200);
        Valid json;
        e.context = Json(in_, &json);
        e.at_us = At(in_, &at, &ts);
        v = v & AnalyticsId(e.type, true) & If(sev >= 1 && sev <= 4) &
            TextRule(e.message, 0, 65536) & json & at;
        Status s = store_->analytics().RecordError(e);
        Expect(s, v, "RecordError");
        if (s.ok()) sessions_[e.session_id].errors.push_back({ts, false});
        return;
      }
      default: {
        Event e;
        e.session_id = SessionId(&v);
        e.at_us = At(in_, &at, &ts);
        v = v & at;
        switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
          case 0: {
            StateTransition t;
            t.from_state = in_.ConsumeBool() ? "greeting" : Str(in_);
            t.to_state = in_.ConsumeBool() ? "booking" : Str(in_);
            t.latency_ms = Ms(in_, &v);
            v = v & AnalyticsId(t.from_state, false) &
                AnalyticsId(t.to_state, true);
            e.body = t;
            break;
          }
          case 1: {
            SlotExtraction sl;
            sl.name = in_.ConsumeBool() ? "date" : Str(in_);
            sl.value = Str(in_);
            sl.confidence = Ms(in_, &v, 1);
            if (in_.ConsumeBool()) sl.validated = in_.ConsumeBool();
            v = v & AnalyticsId(sl.name, true) & TextRule(sl.value, 0, 65536);
            e.body = sl;
            break;
          }
          case 2: {
            Feedback f;
            f.rating = in_.PickValueInArray(
                {1, 5, 0, 6, std::numeric_limits<int>::min()});
            f.text = in_.ConsumeBool() ? "" : Str(in_);
            v = v & If(f.rating >= 1 && f.rating <= 5) &
                TextRule(f.text, 0, 65536);
            e.body = f;
            break;
          }
          default: {
            SystemEvent se;
            se.name = in_.ConsumeBool() ? "hangup" : Str(in_);
            Valid json;
            se.data = Json(in_, &json);
            v = v & AnalyticsId(se.name, true) & json;
            e.body = se;
          }
        }
        Status s = store_->analytics().RecordEvent(e);
        Expect(s, v, "RecordEvent");
        if (s.ok()) sessions_[e.session_id].events.push_back({ts, false});
        return;
      }
    }
  }

  void CheckSession(const std::string& id) {
    StatusOr<SessionDetail> d = store_->analytics().GetSession(id);
    auto it = sessions_.find(id);
    const bool known = it != sessions_.end() && !it->second.Empty();
    const std::string what = "GetSession(" + Show(id) + ")";
    if (!d.ok()) {
      Check(d.status().IsNotFound(), what + ": " + d.status().ToString());
      Check(!known, what + " lost a session");
      return;
    }
    Check(known, what + " found a session not recorded (or removed)");
    const SessionModel& m = it->second;
    Check(d->turns.size() == m.turns.size() &&
              d->metrics.size() == m.metrics.size() &&
              d->errors.size() == m.errors.size() &&
              d->events.size() == m.events.size(),
          what + " has " + std::to_string(d->turns.size()) + "/" +
              std::to_string(d->metrics.size()) + "/" +
              std::to_string(d->errors.size()) + "/" +
              std::to_string(d->events.size()) + " records, model " +
              std::to_string(m.turns.size()) + "/" +
              std::to_string(m.metrics.size()) + "/" +
              std::to_string(m.errors.size()) + "/" +
              std::to_string(m.events.size()));
  }

  void GetSession() {
    const std::string id =
        in_.ConsumeBool() ? in_.PickValueInArray(kSessions) : Str(in_);
    if (id.empty()) {
      Status s = store_->analytics().GetSession(id).status();
      Check(s.ok() || s.IsNotFound() || s.IsInvalidArgument(),
            "GetSession(\"\"): " + s.ToString());
      return;
    }
    CheckSession(id);
  }

  // Turns (with e2e_ms when `e2e`) and errors recorded in [1, now].
  int64_t CountUpToNow(bool errors, bool e2e) const {
    const int64_t now = Now();
    int64_t n = 0;
    for (const auto& [id, m] : sessions_) {
      for (const Rec& r : errors ? m.errors : m.turns) {
        if (r.ts <= now && (!e2e || r.e2e)) ++n;
      }
    }
    return n;
  }

  void Queries() {
    TimeRange range;
    const bool all = in_.ConsumeBool();
    if (all) {
      range.from_us = 1;
    } else {
      range.from_us = in_.ConsumeBool() ? 0 : Int64(in_);
      range.to_us = in_.ConsumeBool() ? 0 : Int64(in_);
      range.last_hours =
          in_.PickValueInArray({24.0, 0.0, -1.0, kNaN, kInf, 1e300, 1e-9});
    }
    Analytics& a = store_->analytics();
    switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
      case 0: {
        AggregateQuery q;
        q.range = range;
        q.group_by =
            static_cast<GroupBy>(in_.ConsumeIntegralInRange<int>(0, 4));
        q.exact_percentiles = in_.ConsumeBool();
        StatusOr<AggregateResult> r = a.Aggregate(q);
        Check(r.ok() || (!all && r.status().IsInvalidArgument()),
              "Aggregate: " + r.status().ToString());
        if (!all || !r.ok()) return;
        int64_t turns = 0, errors = 0;
        for (const GroupAggregate& g : r->groups) {
          turns += g.turns;
          errors += g.errors;
        }
        Check(turns == CountUpToNow(false, false) &&
                  errors == CountUpToNow(true, false),
              "Aggregate counts " + std::to_string(turns) + " turns, " +
                  std::to_string(errors) + " errors; model " +
                  std::to_string(CountUpToNow(false, false)) + ", " +
                  std::to_string(CountUpToNow(true, false)));
        return;
      }
      case 1: {
        SeriesQuery q;
        q.range = range;
        q.metric = in_.ConsumeBool() ? "e2e_ms" : Str(in_);
        static const int64_t kBuckets[] = {300'000'000, 1, 3'600'000'000,
                                           kMax64,      0, -1};
        q.bucket = microseconds(in_.PickValueInArray(kBuckets));
        StatusOr<std::vector<SeriesPoint>> r = a.Series(q);
        const bool valid = !q.metric.empty() && q.bucket.count() > 0;
        Check(r.ok() || ((!valid || !all) && r.status().IsInvalidArgument()),
              "Series: " + r.status().ToString());
        if (!all || !r.ok() || q.metric != "e2e_ms") return;
        int64_t n = 0;
        for (const SeriesPoint& p : *r) n += p.count;
        Check(n == CountUpToNow(false, true),
              "Series counts " + std::to_string(n) + " e2e values, model " +
                  std::to_string(CountUpToNow(false, true)));
        return;
      }
      default: {
        SessionQuery q;
        static const size_t kLimits[] = {
            1, 50, 100000, 0, 100001, std::numeric_limits<size_t>::max()};
        q.limit = in_.PickValueInArray(kLimits);
        q.tenant = in_.ConsumeBool() ? "" : Str(in_);
        q.since_us = in_.ConsumeBool() ? 0 : Int64(in_);
        StatusOr<std::vector<SessionSummary>> r = a.RecentSessions(q);
        Expect(r.status(), If(q.limit >= 1 && q.limit <= 100000),
               "RecentSessions");
        if (r.ok()) Check(r->size() <= q.limit, "RecentSessions limit");
      }
    }
  }

  void Cleanup() {
    CleanupOptions o;
    static const int64_t kAges[] = {0, 1, 876'000, kMax64, -1};
    auto age = [&] { return hours(in_.PickValueInArray(kAges)); };
    o.older_than = age();
    if (o.older_than.count() == 0) o.older_than = hours(1);
    std::chrono::hours* kinds[] = {&o.sessions, &o.turns, &o.metrics, &o.errors,
                                   &o.events};
    for (hours* h : kinds) *h = age();
    static const size_t kBatch[] = {1, 3, 2000, 0, 100001};
    o.batch_rows = in_.PickValueInArray(kBatch);
    const int archive = in_.ConsumeIntegralInRange<int>(0, 2);
    if (archive == 1)
      o.archive_path = (ScratchDir() / "archive.jsonl").string();
    if (archive == 2) o.archive_path = "/nonexistent-dir/archive.jsonl";
    o.shrink = in_.ConsumeBool();
    // Each kind's age (older_than where it is 0) must not be negative; a
    // negative older_than that no kind uses is left open.
    Valid valid = If(o.batch_rows >= 1 && o.batch_rows <= 100000);
    bool uses_default = false;
    for (hours* h : kinds) {
      valid = valid & If(h->count() >= 0);
      uses_default = uses_default || h->count() == 0;
    }
    if (o.older_than.count() < 0) {
      valid = valid & (uses_default ? Valid::kNo : Valid::kMaybe);
    }
    StatusOr<CleanupReport> r = store_->analytics().Cleanup(o);
    if (valid != Valid::kNo && archive == 2) {
      Check(r.status().IsIOError() ||
                (valid == Valid::kMaybe && r.status().IsInvalidArgument()),
            "Cleanup to a bad archive path: " + r.status().ToString());
      return;
    }
    Expect(r.status(), valid, "Cleanup");
    if (!r.ok()) return;
    const int64_t now = Now();
    // Each kind's cut-off; the model's times are an hour or more from it.
    auto cutoff = [&](hours h) {
      if (h.count() == 0) h = o.older_than;
      return h.count() >= 1'000'000 ? kMin64 : now - h.count() * 3'600'000'000;
    };
    int64_t removed[5] = {0, 0, 0, 0, 0};
    auto purge = [&](std::vector<Rec>& recs, hours h, int64_t* n) {
      const int64_t cut = cutoff(h);
      const size_t before = recs.size();
      recs.erase(std::remove_if(recs.begin(), recs.end(),
                                [&](const Rec& x) { return x.ts < cut; }),
                 recs.end());
      *n += static_cast<int64_t>(before - recs.size());
    };
    for (auto& [id, m] : sessions_) {
      purge(m.turns, o.turns, &removed[1]);
      purge(m.metrics, o.metrics, &removed[2]);
      purge(m.errors, o.errors, &removed[3]);
      purge(m.events, o.events, &removed[4]);
      if (m.row && std::max(m.start, m.end) < cutoff(o.sessions)) {
        m.row = false;
        m.start = m.end = 0;
        ++removed[0];
      }
    }
    const int64_t got[5] = {r->sessions, r->turns, r->metrics, r->errors,
                            r->events};
    for (int i = 0; i < 5; ++i) {
      Check(got[i] == removed[i], "Cleanup removed " + std::to_string(got[i]) +
                                      " of kind " + std::to_string(i) +
                                      ", model " + std::to_string(removed[i]));
    }
    const int64_t total =
        removed[0] + removed[1] + removed[2] + removed[3] + removed[4];
    Check(r->archived == (archive == 1 ? total : 0),
          "Cleanup archived " + std::to_string(r->archived) + " of " +
              std::to_string(total));
  }

  void DeleteOrRepair() {
    if (in_.ConsumeBool()) {
      const bool repair = in_.ConsumeBool();
      StatusOr<ConsistencyReport> r =
          store_->analytics().CheckConsistency(repair);
      Check(r.ok(), "CheckConsistency: " + r.status().ToString());
      int64_t orphans[4] = {0, 0, 0, 0};
      for (auto& [id, m] : sessions_) {
        if (m.row) continue;
        orphans[0] += static_cast<int64_t>(m.turns.size());
        if (!id.empty()) orphans[1] += static_cast<int64_t>(m.metrics.size());
        orphans[2] += static_cast<int64_t>(m.errors.size());
        orphans[3] += static_cast<int64_t>(m.events.size());
        if (repair) {
          m.turns.clear();
          if (!id.empty()) m.metrics.clear();
          m.errors.clear();
          m.events.clear();
        }
      }
      Check(r->orphan_turns == orphans[0] && r->orphan_metrics == orphans[1] &&
                r->orphan_errors == orphans[2] &&
                r->orphan_events == orphans[3],
            "CheckConsistency orphans " + std::to_string(r->orphan_turns) +
                "/" + std::to_string(r->orphan_metrics) + "/" +
                std::to_string(r->orphan_errors) + "/" +
                std::to_string(r->orphan_events) + ", model " +
                std::to_string(orphans[0]) + "/" + std::to_string(orphans[1]) +
                "/" + std::to_string(orphans[2]) + "/" +
                std::to_string(orphans[3]));
      Check(r->stale_rollups == 0,
            "stale rollups: " + std::to_string(r->stale_rollups));
      return;
    }
    Valid v;
    const std::string id = SessionId(&v);
    StatusOr<int64_t> r = store_->analytics().DeleteSession(id);
    Expect(r.status(), v, "DeleteSession(" + Show(id) + ")");
    if (!r.ok()) return;
    auto it = sessions_.find(id);
    const int64_t want = it == sessions_.end() ? 0 : it->second.Rows();
    Check(*r == want, "DeleteSession removed " + std::to_string(*r) +
                          " rows, model " + std::to_string(want));
    if (it != sessions_.end()) sessions_.erase(it);
  }

 private:
  FuzzedDataProvider& in_;
  Store* store_ = nullptr;
  // By session id; "" holds the metrics recorded without one.
  std::map<std::string, SessionModel> sessions_;
};

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_ENGINES_FUZZ_ANALYTICS_H_
