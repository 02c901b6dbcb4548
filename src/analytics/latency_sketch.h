// Copyright 2026 The convstore Authors.
//
// LatencySketch: a mergeable quantile sketch of non-negative values with a
// relative error bound (the DDSketch idea: logarithmic buckets). A value x
// > 0 goes to bucket i = ceil(log_gamma(x)), which holds (gamma^(i-1),
// gamma^i] and answers with 2*gamma^i/(gamma+1), at most kRelativeError
// away from every value in it; 0 has a bucket of its own. Count, sum, min
// and max are kept exactly.
//
// GUARANTEE: for every p in [0, 1], Quantile(p) is within kRelativeError
// (1%) relative of Percentile(sorted values, p) (turn_fields.h: linear
// between the ranks floor(p*(n-1)) and the next), because each of the two
// ranks is answered within the bound and the interpolation is a convex
// combination. Merge(a, b) gives the same sketch as adding a's and b's
// values to one sketch. Size: one counter per occupied bucket; values from
// 1 ms to 1 hour span about 760 buckets.
//
// Serialized form (stored in analytics_turn_rollups, so it is versioned
// and parsed defensively; a bad blob is a Corruption Status, never a
// crash): byte 1 (version), varint zero count, sum/min/max as 8-byte
// little-endian doubles, varint bucket count, then per bucket the
// zig-zag varint index delta from the previous one and the varint count.
//
// Thread safety: none; a sketch is a value owned by one thread at a time.

#ifndef CONVSTORE_SRC_ANALYTICS_LATENCY_SKETCH_H_
#define CONVSTORE_SRC_ANALYTICS_LATENCY_SKETCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/status.h"

namespace convstore::internal {

class LatencySketch {
 public:
  // The documented bound (1%). Buckets are built for a slightly smaller
  // one so rounding in log() never pushes an answer past it.
  static constexpr double kRelativeError = 0.01;

  // Adds `v`; negative and NaN values count as 0 (callers validate that
  // latencies are finite and >= 0 first).
  void Add(double v);
  void Merge(const LatencySketch& other);

  bool empty() const { return count_ == 0; }
  int64_t count() const { return count_; }
  double sum() const { return sum_; }
  double min() const { return min_; }  // 0 when empty
  double max() const { return max_; }  // 0 when empty
  // The p-quantile (p in [0, 1]) within the GUARANTEE above; 0 when empty.
  double Quantile(double p) const;

  // Appends the serialized form to *out.
  void AppendTo(std::string* out) const;
  // Parses one serialized sketch from the front of *in (advancing it) and
  // merges it into this one. Corruption for a malformed, truncated or
  // implausible sketch; then this sketch is unchanged.
  Status MergeFrom(std::string_view* in);

 private:
  // The value answered for rank k (0-based, k < count_).
  double ValueAtRank(int64_t k) const;
  void AddToBucket(int32_t index, int64_t n);

  int64_t count_ = 0;
  int64_t zeros_ = 0;
  double sum_ = 0, min_ = 0, max_ = 0;
  // buckets_[j] counts bucket index offset_ + j.
  int32_t offset_ = 0;
  std::vector<int64_t> buckets_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_ANALYTICS_LATENCY_SKETCH_H_
