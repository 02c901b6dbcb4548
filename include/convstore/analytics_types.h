// Copyright 2026 The convstore Authors.
//
// The records of voice-agent session analytics (sessions, per-turn metrics,
// media samples and named metrics, errors, events) and the results of the
// analytics queries. Recorded through Store::analytics() (analytics.h).
//
// Units: durations and latencies in milliseconds (double), timestamps in
// microseconds since the Unix epoch (a timestamp of 0 means "now" when
// recording; a recorded timestamp must be in [0, 2^62], up to about the
// year 148,000, else InvalidArgument). Every metric field is optional: a field
// left empty is stored as NULL and left out of every average and percentile.
//
// Thread safety: plain values; no shared state.

#ifndef CONVSTORE_ANALYTICS_TYPES_H_
#define CONVSTORE_ANALYTICS_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "convstore/types.h"

namespace convstore {

// How a session ended. kActive: not ended yet.
enum class SessionStatus {
  kActive = 0,
  kCompleted = 1,
  kFailed = 2,
  kAbandoned = 3
};
enum class Severity { kLow = 1, kMedium = 2, kHigh = 3, kCritical = 4 };

// "active", "completed", "failed", "abandoned"; "low" ... "critical".
const char* SessionStatusName(SessionStatus s);
const char* SeverityName(Severity s);

// A call or chat session, linked to the conversation holding its transcript.
struct SessionStart {
  std::string session_id{};       // required, 1..256 bytes of UTF-8
  std::string conversation_id{};  // optional: the transcript's conversation
  std::string user_id{};
  std::string tenant{};       // organisation; a grouping key of Aggregate
  std::string channel{};      // "phone", "web", ...
  std::string metadata{};     // empty or a JSON object
  int64_t started_at_us = 0;  // 0: now
};

struct SessionEnd {
  std::string session_id{};
  SessionStatus status = SessionStatus::kCompleted;  // not kActive
  std::string final_state{};  // the agent's state machine state at the end
  int64_t ended_at_us = 0;    // 0: now
};

// One turn's metrics: a superset of what Pipecat / LiveKit Agents emit.
// Latencies (*_ms) must be finite and >= 0; token and character counts in
// [0, 2^40], so that sums over turns fit int64.
struct TurnMetrics {
  std::string session_id{};
  int64_t turn_number = 0;  // >= 0
  int64_t at_us = 0;        // 0: now
  std::optional<bool> interrupted{};
  std::optional<double> eou_delay_ms{};  // end-of-utterance delay
  std::optional<double> transcription_delay_ms{};
  std::optional<double> stt_ttfb_ms{};
  std::optional<double> stt_duration_ms{};
  std::optional<double> stt_audio_s{};
  std::optional<double> stt_confidence{};  // 0..1
  std::optional<double> llm_ttft_ms{};
  std::optional<double> llm_duration_ms{};
  std::optional<int64_t> prompt_tokens{};
  std::optional<int64_t> completion_tokens{};
  std::optional<int64_t> cached_tokens{};
  std::optional<double> tokens_per_s{};
  std::optional<double> tts_ttfb_ms{};
  std::optional<double> tts_duration_ms{};
  std::optional<int64_t> tts_characters{};
  std::optional<double> tts_audio_s{};
  // User stops speaking -> first agent audio.
  std::optional<double> e2e_ms{};
  std::string stt_model{}, stt_provider{};
  std::string llm_model{}, llm_provider{};  // the "model"/"provider" group keys
  std::string tts_model{}, tts_provider{};
  std::optional<double> cost{};  // in the caller's currency unit, >= 0
};

// Network/media quality at one moment; each present field is stored as the
// named metric "media.<field>" (e.g. "media.jitter_ms").
struct MediaSample {
  std::string session_id{};
  int64_t at_us = 0;
  std::optional<double> latency_ms{};
  std::optional<double> jitter_ms{};
  std::optional<double> packet_loss{};  // fraction 0..1
  std::optional<double> buffer_ms{};
};

// Any named numeric metric, as a time series.
struct Metric {
  std::string session_id{};  // may be empty (not tied to a session)
  std::string name{};        // required, 1..128 bytes
  double value = 0;          // finite
  std::map<std::string, std::string> tags{};
  int64_t at_us = 0;
};

struct ErrorRecord {
  std::string session_id{};
  int64_t at_us = 0;
  std::string type{};  // required, e.g. "stt_timeout"
  Severity severity = Severity::kMedium;
  std::string message{};
  std::string context{};  // empty or a JSON object
  bool resolved = false;
};

struct StateTransition {
  std::string from_state{}, to_state{};  // to_state required
  std::string trigger{};
  std::optional<double> latency_ms{};
};
struct SlotExtraction {
  std::string name{};  // required
  std::string value{};
  std::optional<double> confidence{};  // 0..1
  std::string method{};                // "llm", "regex", ...
  std::optional<bool> validated{};
};
struct Feedback {
  int rating = 0;  // 1..5
  std::string text{};
  std::string type{};  // "thumbs", "csat", ...
};
struct SystemEvent {
  std::string name{};  // required
  std::string data{};  // empty or a JSON object
};

struct Event {
  std::string session_id{};
  int64_t at_us = 0;
  std::variant<StateTransition, SlotExtraction, Feedback, SystemEvent> body{};
};

// --- Query results.

struct SessionSummary {
  SessionStart start;  // fields empty when only the end was recorded
  SessionStatus status = SessionStatus::kActive;
  std::string final_state;
  int64_t ended_at_us = 0;  // 0 while active
  // ended - started, in ms; empty while active, without a start, or when
  // the end is before the start (clocks that disagree).
  std::optional<double> duration_ms;
  int64_t turns = 0;
  int64_t errors = 0;
  std::optional<double> e2e_p50_ms, e2e_p95_ms;
};

struct SessionDetail {
  SessionSummary summary;
  std::vector<TurnMetrics> turns;  // by turn_number, then time
  std::vector<Metric> metrics;     // by time (media samples included)
  std::vector<ErrorRecord> errors;
  std::vector<Event> events;
  // History() of start.conversation_id (empty without one).
  std::vector<MessagePtr> transcript;
};

// Percentiles of one latency field over a group's turns (Aggregate: within
// 1%, or exact with AggregateQuery::exact_percentiles).
struct LatencyStats {
  std::string field;  // "e2e_ms", "llm_ttft_ms", ...
  int64_t count = 0;  // turns with the field present
  double mean = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct ErrorCount {
  std::string type;
  Severity severity = Severity::kMedium;
  int64_t count = 0;
  double per_turn = 0;  // count / turns of the group (0 without turns)
};

struct StateDuration {
  std::string final_state;
  int64_t sessions = 0;  // ended sessions with a known duration
  double avg_duration_ms = 0;
};

struct GroupAggregate {
  std::string key;       // the group's value ("" for no grouping or unknown)
  int64_t sessions = 0;  // started in the range
  int64_t ended = 0, completed = 0, failed = 0, abandoned = 0;
  double success_rate = 0;  // completed / ended
  int64_t turns = 0;
  int64_t interrupted = 0;
  double interruption_rate = 0;         // interrupted / turns
  std::vector<LatencyStats> latencies;  // fields with count > 0 only
  int64_t errors = 0;
  double error_rate = 0;  // errors / turns
  std::vector<ErrorCount> errors_by_type;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  double cost = 0;
  std::vector<StateDuration> duration_by_final_state;
  int64_t slots = 0;                // slot extraction events
  double slot_confidence = 0;       // mean over slots with a confidence
  double slot_validation_rate = 0;  // validated / slots with the flag set
};

struct AggregateResult {
  int64_t from_us = 0, to_us = 0;
  std::vector<GroupAggregate> groups;  // sorted by key
};

struct SeriesPoint {
  int64_t bucket_start_us = 0;
  int64_t count = 0;
  double sum = 0, mean = 0, min = 0, max = 0, p50 = 0, p95 = 0;
};

struct CleanupReport {
  int64_t sessions = 0, turns = 0, metrics = 0, errors = 0, events = 0;
  int64_t archived = 0;  // lines written to the archive
  int64_t file_bytes_before = 0, file_bytes_after = 0;
};

struct ConsistencyReport {
  // Records whose session_id names no session (metrics without a session
  // are not counted).
  int64_t orphan_turns = 0, orphan_metrics = 0, orphan_errors = 0,
          orphan_events = 0;
  // Turn rollup rows (schema v8) whose turn count disagrees with the
  // stored turns; repair rebuilds every rollup.
  int64_t stale_rollups = 0;
  bool repaired = false;  // the orphans were deleted
};

}  // namespace convstore

#endif  // CONVSTORE_ANALYTICS_TYPES_H_
