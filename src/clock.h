// Copyright 2026 The convstore Authors.
//
// Time helpers. Wall-clock microseconds are what the store records in
// created_at; monotonic microseconds measure ages and latencies.

#ifndef CONVSTORE_SRC_CLOCK_H_
#define CONVSTORE_SRC_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <limits>

namespace convstore::internal {

inline int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t MonoMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A time before anything the store records (about 146,000 years before
// 1970), far enough from the int64 limits that bucketing it cannot
// overflow.
inline constexpr int64_t kLongAgoMicros =
    std::numeric_limits<int64_t>::min() / 2;

// The wall-clock time `age` (not negative) before `now_us`: the cut-off of
// an "older than age" rule. An age reaching back past kLongAgoMicros (such
// as hours::max() for "keep everything") gives kLongAgoMicros instead of
// overflowing, which would wrap to a time in the future and select
// everything.
inline int64_t MicrosBefore(int64_t now_us, std::chrono::hours age) {
  constexpr int64_t kMicrosPerHour = 3'600'000'000;
  if (age.count() >= (now_us - kLongAgoMicros) / kMicrosPerHour) {
    return kLongAgoMicros;
  }
  return now_us - age.count() * kMicrosPerHour;
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CLOCK_H_
