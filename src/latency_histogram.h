// Copyright 2026 The convstore Authors.
//
// LatencyHistogram: percentiles of durations in microseconds, with bounded
// memory and bounded relative error.
//
// Buckets are log-linear: 16 sub-buckets per power of two, so a reported
// percentile is within 1/16 (6.25%) of the true value, from 1 us to 2^36 us
// (~19 h); larger values land in the last bucket.
//
// Thread safety: not synchronized; the owner guards it.

#ifndef CONVSTORE_SRC_LATENCY_HISTOGRAM_H_
#define CONVSTORE_SRC_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace convstore::internal {

class LatencyHistogram {
 public:
  void Record(int64_t micros);
  // The value at quantile q in [0, 1]; 0 when empty. Reports the upper edge
  // of the bucket holding the q-th sample, so it never under-reports.
  int64_t Percentile(double q) const;
  uint64_t count() const { return count_; }

 private:
  static constexpr int kSubBits = 4;  // 16 sub-buckets per octave
  static constexpr int kOctaves = 33;
  static constexpr int kBuckets = kOctaves << kSubBits;
  static int BucketOf(uint64_t v);
  static int64_t UpperEdge(int bucket);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_LATENCY_HISTOGRAM_H_
