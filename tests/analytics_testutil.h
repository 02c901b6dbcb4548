// Copyright 2026 The convstore Authors.
//
// The small hand-computed analytics data set shared by the analytics tests
// (expected figures are worked out in analytics_query_test.cc).

#ifndef CONVSTORE_TESTS_ANALYTICS_TESTUTIL_H_
#define CONVSTORE_TESTS_ANALYTICS_TESTUTIL_H_

#include <string>

#include "testutil.h"

namespace convstore::test {

// 1.5e15 us: a multiple of 5 minutes, so 5-minute buckets start at T0.
constexpr int64_t kT0 = 1'500'000'000'000'000;
constexpr int64_t kSec = 1'000'000;

inline TurnMetrics Turn(const std::string& session, int64_t n, int64_t at_us,
                        double e2e, const std::string& model,
                        const std::string& provider) {
  TurnMetrics t;
  t.session_id = session;
  t.turn_number = n;
  t.at_us = at_us;
  t.e2e_ms = e2e;
  t.llm_model = model;
  t.llm_provider = provider;
  return t;
}

inline void RequireOk(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

// s1 (acme, completed "done", 60 s): turns e2e 100..400 on gpt/openai, turn
//    2 interrupted, 10 prompt tokens and cost 0.01 each.
// s2 (acme, failed "error", 30 s): one turn e2e 1000 on claude/anthropic,
//    one stt_timeout/high error.
// s3 (beta, active): one turn e2e 50 on gpt/openai at T0+400 s, errors
//    llm_error/critical and stt_timeout/high, three slot events.
inline void RecordDataSet(Analytics& a) {
  RequireOk(a.StartSession(
      {"s1", "conv-1", "u1", "acme", "phone", R"({"campaign":"x"})", kT0}));
  RequireOk(
      a.StartSession({"s2", "", "u2", "acme", "web", "", kT0 + 10 * kSec}));
  RequireOk(
      a.StartSession({"s3", "", "u3", "beta", "phone", "", kT0 + 20 * kSec}));
  for (int i = 1; i <= 4; ++i) {
    TurnMetrics t = Turn("s1", i, kT0 + i * kSec, 100.0 * i, "gpt", "openai");
    t.interrupted = (i == 2);
    t.prompt_tokens = 10;
    t.cost = 0.01;
    RequireOk(a.RecordTurn(t));
  }
  RequireOk(a.RecordTurn(
      Turn("s2", 1, kT0 + 11 * kSec, 1000, "claude", "anthropic")));
  RequireOk(a.RecordTurn(Turn("s3", 1, kT0 + 400 * kSec, 50, "gpt", "openai")));
  RequireOk(a.RecordError({"s2", kT0 + 12 * kSec, "stt_timeout",
                           Severity::kHigh, "no audio", "", false}));
  RequireOk(
      a.RecordError({"s3", kT0 + 21 * kSec, "llm_error", Severity::kCritical,
                     "500", R"({"code":500})", true}));
  RequireOk(a.RecordError(
      {"s3", kT0 + 22 * kSec, "stt_timeout", Severity::kHigh, "", "", false}));
  RequireOk(a.RecordEvent({"s3", kT0 + 23 * kSec,
                           SlotExtraction{"date", "mon", 0.8, "llm", true}}));
  RequireOk(a.RecordEvent(
      {"s3", kT0 + 24 * kSec, SlotExtraction{"time", "9", 0.6, "llm", false}}));
  RequireOk(a.RecordEvent(
      {"s3", kT0 + 25 * kSec,
       SlotExtraction{"name", "bo", std::nullopt, "regex", true}}));
  RequireOk(
      a.EndSession({"s1", SessionStatus::kCompleted, "done", kT0 + 60 * kSec}));
  RequireOk(
      a.EndSession({"s2", SessionStatus::kFailed, "error", kT0 + 40 * kSec}));
}

// The data set's hour.
inline AggregateQuery DataSetHour(GroupBy by) {
  AggregateQuery q;
  q.range.from_us = kT0;
  q.range.to_us = kT0 + 3600 * kSec;
  q.group_by = by;
  // The worked figures are exact percentiles; the default sketch path is
  // checked against this one in analytics_rollup_test.cc.
  q.exact_percentiles = true;
  return q;
}

}  // namespace convstore::test

#endif  // CONVSTORE_TESTS_ANALYTICS_TESTUTIL_H_
