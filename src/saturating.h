// Copyright 2026 The convstore Authors.
//
// Saturating integer arithmetic. Sums over integers read from a file. A file
// edited or damaged outside the store can hold any int64 in a count, token,
// time or seq column, and the b-tree checks do not look at values. Sums the
// store forms from such values saturate at the int64 limits instead of
// overflowing, which is undefined behaviour; the answer is then wrong only for
// the damaged conversation, as any answer from a lying file is.
//
// Thread safety: free functions without state.

#ifndef CONVSTORE_SRC_SATURATING_H_
#define CONVSTORE_SRC_SATURATING_H_

#include <cmath>
#include <cstdint>
#include <limits>

namespace convstore::internal {

// a + b, or the int64 limit it passes.
inline int64_t SatAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max()
               : std::numeric_limits<int64_t>::min();
}

// v rounded toward zero, or the int64 limit it passes (NaN gives 0). A
// plain cast of a double outside the int64 range is undefined behaviour.
inline int64_t SatFromDouble(double v) {
  // 2^63 is exact as a double; every double below it fits int64.
  constexpr double kLimit = 9223372036854775808.0;
  if (std::isnan(v)) return 0;
  if (v >= kLimit) return std::numeric_limits<int64_t>::max();
  if (v < -kLimit) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SATURATING_H_
