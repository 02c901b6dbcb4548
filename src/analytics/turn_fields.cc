// Copyright 2026 The convstore Authors.

#include "analytics/turn_fields.h"

#include <cmath>
#include <cstring>

namespace convstore::internal {
namespace {

using T = TurnMetrics;

constexpr TurnField kFields[] = {
    {"eou_delay_ms", true, &T::eou_delay_ms, nullptr},
    {"transcription_delay_ms", true, &T::transcription_delay_ms, nullptr},
    {"stt_ttfb_ms", true, &T::stt_ttfb_ms, nullptr},
    {"stt_duration_ms", true, &T::stt_duration_ms, nullptr},
    {"llm_ttft_ms", true, &T::llm_ttft_ms, nullptr},
    {"llm_duration_ms", true, &T::llm_duration_ms, nullptr},
    {"tts_ttfb_ms", true, &T::tts_ttfb_ms, nullptr},
    {"tts_duration_ms", true, &T::tts_duration_ms, nullptr},
    {"e2e_ms", true, &T::e2e_ms, nullptr},
    {"stt_audio_s", false, &T::stt_audio_s, nullptr},
    {"stt_confidence", false, &T::stt_confidence, nullptr},
    {"tokens_per_s", false, &T::tokens_per_s, nullptr},
    {"tts_audio_s", false, &T::tts_audio_s, nullptr},
    {"cost", false, &T::cost, nullptr},
    {"prompt_tokens", false, nullptr, &T::prompt_tokens},
    {"completion_tokens", false, nullptr, &T::completion_tokens},
    {"cached_tokens", false, nullptr, &T::cached_tokens},
    {"tts_characters", false, nullptr, &T::tts_characters},
};

constexpr TurnTextField kTextFields[] = {
    {"stt_model", &T::stt_model}, {"stt_provider", &T::stt_provider},
    {"llm_model", &T::llm_model}, {"llm_provider", &T::llm_provider},
    {"tts_model", &T::tts_model}, {"tts_provider", &T::tts_provider},
};

}  // namespace

std::span<const TurnField> TurnFields() { return kFields; }
std::span<const TurnTextField> TurnTextFields() { return kTextFields; }

const TurnField* FindTurnField(std::string_view name) {
  for (const TurnField& f : kFields) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::optional<double> TurnFieldValue(const TurnField& f, const TurnMetrics& t) {
  if (f.real != nullptr) return t.*f.real;
  const std::optional<int64_t>& v = t.*f.integer;
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

double Percentile(std::span<const double> sorted, double p) {
  const double rank = p * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = lo + 1 < sorted.size() ? lo + 1 : lo;
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace convstore::internal
