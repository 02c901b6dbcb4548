// Copyright 2026 The convstore Authors.
//
// TokenBucket: the per-key rate limiter. Holds up to `burst` tokens,
// refilled at `rate_per_s`; each allowed request takes one. Time comes
// from the caller (monotonic microseconds), so tests are exact.
//
// Thread safety: none; the owner's lock guards it (the key's shard).

#ifndef CONVSTORE_SRC_KEYS_TOKEN_BUCKET_H_
#define CONVSTORE_SRC_KEYS_TOKEN_BUCKET_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "convstore/keys.h"
#include "saturating.h"

namespace convstore::internal {

class TokenBucket {
 public:
  // rate_per_s <= 0: unlimited (every request allowed).
  RateDecision Take(double rate_per_s, int64_t burst, int64_t now_us) {
    RateDecision d;
    if (rate_per_s <= 0) {
      d.allowed = true;
      d.remaining = std::numeric_limits<int64_t>::max();
      return d;
    }
    const double cap = static_cast<double>(std::max<int64_t>(1, burst));
    if (!started_) {
      tokens_ = cap;
      started_ = true;
    } else if (now_us > last_us_) {
      tokens_ = std::min(cap, tokens_ + static_cast<double>(now_us - last_us_) *
                                            rate_per_s / 1e6);
    }
    last_us_ = std::max(last_us_, now_us);
    // A hair of tolerance so that exactly 1/rate later counts as refilled
    // despite rounding.
    if (tokens_ >= 1.0 - 1e-9) {
      tokens_ = std::max(0.0, tokens_ - 1.0);
      d.allowed = true;
      d.remaining = SatFromDouble(std::floor(tokens_ + 1e-9));
      return d;
    }
    d.allowed = false;
    // Saturating: a rate of 1e-13 a second means a wait past int64 micros.
    d.retry_after = std::chrono::microseconds(
        SatFromDouble(std::ceil((1.0 - tokens_) * 1e6 / rate_per_s)));
    d.remaining = 0;
    return d;
  }

 private:
  bool started_ = false;
  double tokens_ = 0;
  int64_t last_us_ = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_KEYS_TOKEN_BUCKET_H_
