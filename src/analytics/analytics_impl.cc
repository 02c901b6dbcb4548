// Copyright 2026 The convstore Authors.
//
// AnalyticsImpl, recording side: validation and submission.

#include "analytics/analytics_impl.h"

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "analytics/turn_fields.h"
#include "clock.h"
#include "validation.h"

namespace convstore {

const char* SessionStatusName(SessionStatus s) {
  switch (s) {
    case SessionStatus::kActive:
      return "active";
    case SessionStatus::kCompleted:
      return "completed";
    case SessionStatus::kFailed:
      return "failed";
    case SessionStatus::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kLow:
      return "low";
    case Severity::kMedium:
      return "medium";
    case Severity::kHigh:
      return "high";
    case Severity::kCritical:
      return "critical";
  }
  return "unknown";
}

const char* GroupByName(GroupBy g) {
  switch (g) {
    case GroupBy::kNone:
      return "none";
    case GroupBy::kTenant:
      return "tenant";
    case GroupBy::kModel:
      return "model";
    case GroupBy::kProvider:
      return "provider";
    case GroupBy::kFinalState:
      return "final_state";
  }
  return "none";
}

bool ParseGroupBy(std::string_view name, GroupBy* out) {
  for (GroupBy g : {GroupBy::kNone, GroupBy::kTenant, GroupBy::kModel,
                    GroupBy::kProvider, GroupBy::kFinalState}) {
    if (name == GroupByName(g)) {
      *out = g;
      return true;
    }
  }
  return false;
}

namespace internal {
namespace {

constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxTextBytes = 64 << 10;

Status Invalid(std::string_view field, std::string_view why) {
  return Status::InvalidArgument(std::string(field) + " " + std::string(why));
}

// An id: 1..256 bytes of UTF-8 without control characters, DEL (0x7F)
// included as for conversation ids (empty allowed unless `required`).
Status CheckId(std::string_view field, std::string_view v, bool required) {
  if (v.empty()) {
    return required ? Invalid(field, "is required") : Status::OK();
  }
  if (v.size() > kMaxIdBytes) {
    return Invalid(field, "is longer than 256 bytes");
  }
  if (!IsValidUtf8(v)) return Invalid(field, "is not valid UTF-8");
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) {
      return Invalid(field, "contains a control character");
    }
  }
  return Status::OK();
}

Status CheckText(std::string_view field, std::string_view v) {
  if (v.size() > kMaxTextBytes) return Invalid(field, "is longer than 64 KiB");
  if (!IsValidUtf8(v)) return Invalid(field, "is not valid UTF-8");
  return Status::OK();
}

Status CheckJson(std::string_view field, std::string_view v) {
  Status s = CheckText(field, v);
  if (s.ok() && !v.empty() && !IsJsonObject(v)) {
    s = Invalid(field, "is not a JSON object");
  }
  return s;
}

// The latest time a record may carry: 2^62 us (about the year 148,000).
// Above it the hour arithmetic of rollups and query ranges would near the
// int64 limit, and a time at INT64_MAX lies in no query range (ranges end
// before to_us).
constexpr int64_t kMaxRecordMicros = int64_t{1} << 62;

Status CheckTime(std::string_view field, int64_t* us) {
  if (*us < 0) return Invalid(field, "is negative");
  if (*us > kMaxRecordMicros) {
    return Invalid(field, "is after 2^62 us (about the year 148,000)");
  }
  if (*us == 0) *us = WallMicros();
  return Status::OK();
}

Status CheckNumber(std::string_view field, const std::optional<double>& v,
                   double lo, double hi) {
  if (!v) return Status::OK();
  if (!std::isfinite(*v)) return Invalid(field, "is not a finite number");
  if (*v < lo || *v > hi) {
    return Invalid(field, "is out of range [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "]: " + std::to_string(*v));
  }
  return Status::OK();
}

constexpr double kHuge = 1e15;
// Token and character counts of one turn: at most 2^40, so that sums over
// 2^23 turns fit int64 (as Options::max_tokens_per_message for messages).
constexpr int64_t kMaxTurnCount = int64_t{1} << 40;

Status CheckTurn(TurnMetrics* t) {
  Status s = CheckId("session_id", t->session_id, true);
  if (s.ok() && t->turn_number < 0) s = Invalid("turn_number", "is negative");
  if (s.ok()) s = CheckTime("at_us", &t->at_us);
  for (const TurnField& f : TurnFields()) {
    if (!s.ok()) break;
    if (f.real != nullptr) {
      // Latencies, durations, counts and cost are never negative.
      const double hi =
          std::string_view(f.name) == "stt_confidence" ? 1 : kHuge;
      s = CheckNumber(f.name, t->*f.real, 0, hi);
    } else if (t->*f.integer && *(t->*f.integer) < 0) {
      s = Invalid(f.name, "is negative");
    } else if (t->*f.integer && *(t->*f.integer) > kMaxTurnCount) {
      // Sums over turns (rollups, aggregates) must not overflow int64.
      s = Invalid(f.name, "is above 2^40");
    }
  }
  for (const TurnTextField& f : TurnTextFields()) {
    if (!s.ok()) break;
    s = CheckId(f.name, t->*f.member, false);
  }
  return s;
}

size_t Bytes(std::initializer_list<std::string_view> parts) {
  size_t n = sizeof(AnalyticsOp);
  for (std::string_view p : parts) n += p.size();
  return n;
}

}  // namespace

Durability AnalyticsDurability(const Options& options) {
  return options.durability.analytics;
}

AnalyticsImpl::AnalyticsImpl(const Options& options, WritePath* write_path,
                             AnalyticsStorage* storage, HistoryFn history,
                             WaitFn wait_durable, ClosedFn closed,
                             std::shared_ptr<spdlog::logger> log)
    : options_(options),
      write_path_(write_path),
      storage_(storage),
      history_(std::move(history)),
      wait_durable_(std::move(wait_durable)),
      closed_(std::move(closed)),
      log_(std::move(log)) {}

Status AnalyticsImpl::Submit(AnalyticsOp op, size_t bytes,
                             Durability durability) {
  return Track(
      write_path_->Submit(WritePayload(std::move(op)), bytes, durability));
}

Status AnalyticsImpl::SubmitUpkeep(AnalyticsOp op) {
  return Track(write_path_->SubmitApplied(WritePayload(std::move(op)),
                                          sizeof(AnalyticsOp),
                                          std::chrono::seconds(30)));
}

Status AnalyticsImpl::Track(const StatusOr<uint64_t>& lsn) {
  if (!lsn.ok()) return lsn.status();
  uint64_t prev = last_lsn_.load(std::memory_order_relaxed);
  while (prev < *lsn && !last_lsn_.compare_exchange_weak(
                            prev, *lsn, std::memory_order_acq_rel)) {
  }
  return Status::OK();
}

Status AnalyticsImpl::StartSession(const SessionStart& start) {
  SessionStart r = start;
  Status s = CheckId("session_id", r.session_id, true);
  if (s.ok()) s = CheckId("conversation_id", r.conversation_id, false);
  if (s.ok()) s = CheckId("user_id", r.user_id, false);
  if (s.ok()) s = CheckId("tenant", r.tenant, false);
  if (s.ok()) s = CheckId("channel", r.channel, false);
  if (s.ok()) s = CheckJson("metadata", r.metadata);
  if (s.ok()) s = CheckTime("started_at_us", &r.started_at_us);
  if (!s.ok()) return s;
  const size_t bytes = Bytes({r.session_id, r.conversation_id, r.user_id,
                              r.tenant, r.channel, r.metadata});
  return Submit({std::move(r)}, bytes, AnalyticsDurability(options_));
}

Status AnalyticsImpl::EndSession(const SessionEnd& end) {
  SessionEnd r = end;
  Status s = CheckId("session_id", r.session_id, true);
  const int status = static_cast<int>(r.status);
  if (s.ok() && (status < 1 || status > 3)) {
    s = Invalid("status", "must be completed, failed or abandoned");
  }
  if (s.ok()) s = CheckId("final_state", r.final_state, false);
  if (s.ok()) s = CheckTime("ended_at_us", &r.ended_at_us);
  if (!s.ok()) return s;
  const size_t bytes = Bytes({r.session_id, r.final_state});
  return Submit({std::move(r)}, bytes, AnalyticsDurability(options_));
}

Status AnalyticsImpl::RecordTurn(const TurnMetrics& turn) {
  TurnMetrics r = turn;
  Status s = CheckTurn(&r);
  if (!s.ok()) return s;
  const size_t bytes =
      Bytes({r.session_id, r.stt_model, r.stt_provider, r.llm_model,
             r.llm_provider, r.tts_model, r.tts_provider});
  return Submit({std::move(r)}, bytes, AnalyticsDurability(options_));
}

Status AnalyticsImpl::RecordSample(const MediaSample& sample) {
  MediaSample r = sample;
  Status s = CheckId("session_id", r.session_id, false);
  if (s.ok()) s = CheckTime("at_us", &r.at_us);
  if (s.ok()) s = CheckNumber("latency_ms", r.latency_ms, 0, kHuge);
  if (s.ok()) s = CheckNumber("jitter_ms", r.jitter_ms, 0, kHuge);
  if (s.ok()) s = CheckNumber("packet_loss", r.packet_loss, 0, 1);
  if (s.ok()) s = CheckNumber("buffer_ms", r.buffer_ms, 0, kHuge);
  if (!s.ok()) return s;
  std::vector<Metric> metrics;
  const std::pair<const char*, std::optional<double>> fields[] = {
      {"media.latency_ms", r.latency_ms},
      {"media.jitter_ms", r.jitter_ms},
      {"media.packet_loss", r.packet_loss},
      {"media.buffer_ms", r.buffer_ms}};
  for (const auto& [name, v] : fields) {
    if (v) metrics.push_back({r.session_id, name, *v, {}, r.at_us});
  }
  if (metrics.empty()) {
    return Status::InvalidArgument("media sample has no field set");
  }
  const size_t bytes =
      Bytes({r.session_id}) + metrics.size() * (sizeof(Metric) + 16);
  return Submit({std::move(metrics)}, bytes, AnalyticsDurability(options_));
}

Status AnalyticsImpl::RecordMetric(const Metric& metric) {
  Metric r = metric;
  Status s = CheckId("session_id", r.session_id, false);
  if (s.ok()) s = CheckId("name", r.name, true);
  if (s.ok() && r.name.size() > 128) {
    s = Invalid("name", "is longer than 128 bytes");
  }
  // Series reads a turn field by that name, so such a metric could never
  // be read back.
  if (s.ok() && FindTurnField(r.name) != nullptr) {
    s = Invalid("name", "is the name of a turn field (record it in the turn)");
  }
  if (s.ok() && !std::isfinite(r.value)) {
    s = Invalid("value", "is not a finite number");
  }
  if (s.ok()) s = CheckTime("at_us", &r.at_us);
  size_t bytes = Bytes({r.session_id, r.name});
  for (const auto& [k, v] : r.tags) {
    if (s.ok()) s = CheckId("tag name", k, true);
    if (s.ok()) s = CheckText("tag value", v);
    bytes += k.size() + v.size() + 64;
  }
  if (!s.ok()) return s;
  std::vector<Metric> one;
  one.push_back(std::move(r));
  return Submit({std::move(one)}, bytes, AnalyticsDurability(options_));
}

Status AnalyticsImpl::RecordError(const ErrorRecord& error) {
  ErrorRecord r = error;
  Status s = CheckId("session_id", r.session_id, true);
  if (s.ok()) s = CheckId("type", r.type, true);
  const int sev = static_cast<int>(r.severity);
  if (s.ok() && (sev < 1 || sev > 4)) {
    s = Invalid("severity", "must be low, medium, high or critical");
  }
  if (s.ok()) s = CheckText("message", r.message);
  if (s.ok()) s = CheckJson("context", r.context);
  if (s.ok()) s = CheckTime("at_us", &r.at_us);
  if (!s.ok()) return s;
  const size_t bytes = Bytes({r.session_id, r.type, r.message, r.context});
  return Submit({std::move(r)}, bytes, AnalyticsDurability(options_));
}

Status AnalyticsImpl::RecordEvent(const Event& event) {
  Event r = event;
  Status s = CheckId("session_id", r.session_id, true);
  if (s.ok()) s = CheckTime("at_us", &r.at_us);
  size_t bytes = Bytes({r.session_id});
  if (!s.ok()) return s;
  if (const auto* t = std::get_if<StateTransition>(&r.body)) {
    s = CheckId("from_state", t->from_state, false);
    if (s.ok()) s = CheckId("to_state", t->to_state, true);
    if (s.ok()) s = CheckText("trigger", t->trigger);
    if (s.ok()) s = CheckNumber("latency_ms", t->latency_ms, 0, kHuge);
    bytes += t->from_state.size() + t->to_state.size() + t->trigger.size();
  } else if (const auto* sl = std::get_if<SlotExtraction>(&r.body)) {
    s = CheckId("slot name", sl->name, true);
    if (s.ok()) s = CheckText("slot value", sl->value);
    if (s.ok()) s = CheckNumber("confidence", sl->confidence, 0, 1);
    if (s.ok()) s = CheckId("method", sl->method, false);
    bytes += sl->name.size() + sl->value.size() + sl->method.size();
  } else if (const auto* f = std::get_if<Feedback>(&r.body)) {
    if (f->rating < 1 || f->rating > 5) {
      s = Invalid("rating", "must be 1..5, got " + std::to_string(f->rating));
    }
    if (s.ok()) s = CheckText("feedback text", f->text);
    if (s.ok()) s = CheckId("feedback type", f->type, false);
    bytes += f->text.size() + f->type.size();
  } else if (const auto* sys = std::get_if<SystemEvent>(&r.body)) {
    s = CheckId("event name", sys->name, true);
    if (s.ok()) s = CheckJson("event data", sys->data);
    bytes += sys->name.size() + sys->data.size();
  }
  if (!s.ok()) return s;
  return Submit({std::move(r)}, bytes, AnalyticsDurability(options_));
}

StatusOr<int64_t> AnalyticsImpl::DeleteSession(std::string_view session_id) {
  Status s = BeforeQuery();
  if (!s.ok()) return s;
  if (options_.read_only) return ReadOnlyRefusal();
  s = CheckId("session_id", session_id, true);
  if (!s.ok()) return s;
  AnalyticsSessionDelete del{std::string(session_id),
                             std::make_shared<int64_t>(0)};
  std::shared_ptr<int64_t> removed = del.removed;
  s = SubmitUpkeep({std::move(del)});
  if (audit_sink_ != nullptr) {
    AuditEvent e;
    e.actor = "system";
    e.action = "analytics.session.delete";
    e.resource = std::string(session_id);
    e.outcome = s.ok() ? "success" : "failure";
    nlohmann::json details{{"removed", s.ok() ? *removed : 0}};
    if (!s.ok()) details["error"] = s.ToString();
    e.details_json =
        details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    Status as = audit_sink_->Record(std::move(e), /*wait=*/true);
    if (!as.ok()) {
      log_->error(
          "audit record for an analytics session delete not written: {}",
          as.ToString());
    }
  }
  if (!s.ok()) return s;
  return *removed;
}

Status AnalyticsImpl::BeforeQuery() {
  // Checked here, not only by WaitDurable: a store that recorded nothing
  // itself has no write to wait for.
  if (closed_ != nullptr && closed_()) {
    return Status::FailedPrecondition("store is closed");
  }
  if (storage_ == nullptr) {
    return Status::NotSupported("this storage backend keeps no analytics");
  }
  const uint64_t lsn = last_lsn_.load(std::memory_order_acquire);
  if (lsn == 0) return Status::OK();
  return wait_durable_(lsn);
}

Status ResolveRange(const TimeRange& range, int64_t* from_us, int64_t* to_us) {
  *to_us = range.to_us != 0 ? range.to_us : WallMicros() + 1;
  if (range.from_us != 0) {
    *from_us = range.from_us;
  } else {
    if (!std::isfinite(range.last_hours) || range.last_hours <= 0) {
      return Status::InvalidArgument("last_hours must be > 0");
    }
    // A span reaching back past kLongAgoMicros starts there: casting a
    // larger double to int64 is undefined, and the subtraction could
    // overflow.
    const double span_us = range.last_hours * 3600e6;
    const double room =
        static_cast<double>(*to_us) - static_cast<double>(kLongAgoMicros);
    *from_us = span_us >= room || span_us >= 9.0e18
                   ? kLongAgoMicros
                   : *to_us - static_cast<int64_t>(span_us);
  }
  if (*from_us >= *to_us) {
    return Status::InvalidArgument("time range is empty (from >= to)");
  }
  return Status::OK();
}

}  // namespace internal
}  // namespace convstore
