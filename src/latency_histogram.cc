// Copyright 2026 The convstore Authors.

#include "latency_histogram.h"

#include <bit>

namespace convstore::internal {

int LatencyHistogram::BucketOf(uint64_t v) {
  constexpr uint64_t kSub = 1u << kSubBits;
  if (v < kSub) return static_cast<int>(v);   // exact for small values
  int octave = std::bit_width(v) - kSubBits;  // >= 1
  uint64_t sub = (v >> (octave - 1)) & (kSub - 1);
  int b = (octave << kSubBits) + static_cast<int>(sub);
  return b < kBuckets ? b : kBuckets - 1;
}

int64_t LatencyHistogram::UpperEdge(int bucket) {
  constexpr int64_t kSub = 1 << kSubBits;
  int octave = bucket >> kSubBits;
  int64_t sub = bucket & (kSub - 1);
  if (octave == 0) return sub;
  // Values in this bucket are [(kSub+sub) << (octave-1), next) .
  return ((kSub + sub + 1) << (octave - 1)) - 1;
}

void LatencyHistogram::Record(int64_t micros) {
  if (micros < 0) micros = 0;
  ++buckets_[BucketOf(static_cast<uint64_t>(micros))];
  ++count_;
}

int64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1));
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen > rank) return UpperEdge(b);
  }
  return UpperEdge(kBuckets - 1);
}

}  // namespace convstore::internal
