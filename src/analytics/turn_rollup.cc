// Copyright 2026 The convstore Authors.

#include "analytics/turn_rollup.h"

#include <algorithm>
#include <limits>

#include "analytics/turn_fields.h"
#include "saturating.h"

namespace convstore::internal {
namespace {
constexpr uint8_t kBlobVersion = 1;

// at_us - RollupBucket(at_us) where that does not saturate: 0 .. 1 h - 1.
int64_t IntoHour(int64_t at_us) {
  const int64_t r = at_us % kRollupBucketUs;
  return r < 0 ? r + kRollupBucketUs : r;
}

}  // namespace

int64_t RollupBucket(int64_t at_us) {
  int64_t start = 0;
  if (__builtin_sub_overflow(at_us, IntoHour(at_us), &start)) {
    return std::numeric_limits<int64_t>::min();
  }
  return start;
}

int64_t RollupBucketAtOrAfter(int64_t at_us) {
  const int64_t r = IntoHour(at_us);
  return r == 0 ? at_us : SatAdd(at_us, kRollupBucketUs - r);
}

int64_t RollupBucketEnd(int64_t hour_us) {
  if (hour_us == std::numeric_limits<int64_t>::min()) {
    return RollupBucketAtOrAfter(hour_us);
  }
  return SatAdd(hour_us, kRollupBucketUs);
}

TurnRollup::TurnRollup() : latencies(TurnFields().size()) {}

void TurnRollup::Add(const TurnMetrics& t) {
  first_at_us = std::min(first_at_us, t.at_us);
  // Saturating: the rollup row may come from a damaged file.
  turns = SatAdd(turns, 1);
  if (t.interrupted.value_or(false)) interrupted = SatAdd(interrupted, 1);
  prompt_tokens = SatAdd(prompt_tokens, t.prompt_tokens.value_or(0));
  completion_tokens =
      SatAdd(completion_tokens, t.completion_tokens.value_or(0));
  cached_tokens = SatAdd(cached_tokens, t.cached_tokens.value_or(0));
  cost += t.cost.value_or(0);
  const auto fields = TurnFields();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!fields[i].latency) continue;
    if (auto v = TurnFieldValue(fields[i], t)) latencies[i].Add(*v);
  }
}

std::string TurnRollup::SerializeLatencies() const {
  std::string out(1, static_cast<char>(kBlobVersion));
  for (size_t i = 0; i < latencies.size(); ++i) {
    if (latencies[i].empty()) continue;
    out.push_back(static_cast<char>(i));
    latencies[i].AppendTo(&out);
  }
  return out;
}

Status MergeLatencyBlob(std::string_view blob, std::span<LatencySketch> into) {
  if (blob.empty() || static_cast<uint8_t>(blob.front()) != kBlobVersion) {
    return Status::Corruption("turn rollup: unknown latency blob version");
  }
  blob.remove_prefix(1);
  const auto fields = TurnFields();
  while (!blob.empty()) {
    const auto field = static_cast<uint8_t>(blob.front());
    blob.remove_prefix(1);
    if (field >= fields.size() || field >= into.size() ||
        !fields[field].latency) {
      return Status::Corruption("turn rollup: bad latency field " +
                                std::to_string(field));
    }
    Status s = into[field].MergeFrom(&blob);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace convstore::internal
