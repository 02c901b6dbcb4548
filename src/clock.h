// Copyright 2026 The convstore Authors.
//
// Time helpers. Wall-clock microseconds are what the store records in
// created_at; monotonic microseconds measure ages and latencies.

#ifndef CONVSTORE_SRC_CLOCK_H_
#define CONVSTORE_SRC_CLOCK_H_

#include <chrono>
#include <cstdint>

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

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CLOCK_H_
