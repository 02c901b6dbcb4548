// Copyright 2026 The convstore Authors.
//
// LatencyHistogram: exact small values, the documented 1/16 relative error
// bound (never under-reporting), empty and out-of-range inputs.

#include "latency_histogram.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace convstore::internal {
namespace {

// Largest value the histogram can represent: the upper edge of its last
// bucket (33 octaves of 16 sub-buckets; the last octave spans [2^35, 2^36)).
constexpr int64_t kMaxRepresentable = (int64_t{1} << 36) - 1;

// True if `reported` is an upper bound of `actual` within 1/16 of it.
bool WithinBound(int64_t actual, int64_t reported) {
  return reported >= actual && (reported - actual) * 16 <= actual;
}

TEST_CASE("Empty histogram reports zero", "[latency_histogram]") {
  LatencyHistogram h;
  CHECK(h.count() == 0);
  CHECK(h.Percentile(0.0) == 0);
  CHECK(h.Percentile(0.5) == 0);
  CHECK(h.Percentile(0.99) == 0);
  CHECK(h.Percentile(1.0) == 0);
}

TEST_CASE("Values below 32 are reported exactly", "[latency_histogram]") {
  for (int64_t v = 0; v < 32; ++v) {
    LatencyHistogram h;
    h.Record(v);
    INFO("v = " << v);
    CHECK(h.count() == 1);
    CHECK(h.Percentile(0.0) == v);
    CHECK(h.Percentile(0.5) == v);
    CHECK(h.Percentile(1.0) == v);
  }
}

TEST_CASE("Reported value is the upper edge of the sample's bucket",
          "[latency_histogram]") {
  // Hand-computed bucket edges: from 32 on, a bucket in octave o (values
  // with bit_width o + 4) spans 2^(o-1) values.
  struct Case {
    int64_t value;
    int64_t reported;
  };
  const Case cases[] = {
      {32, 33},       {33, 33},           {34, 35},     {63, 63},
      {64, 67},       {100, 103},         {99, 99},     {1000, 1023},
      {1024, 1087},   {1087, 1087},       {1088, 1151}, {65535, 65535},
      {65536, 69631}, {1000000, 1015807},
  };
  for (const Case& c : cases) {
    LatencyHistogram h;
    h.Record(c.value);
    INFO("value = " << c.value);
    CHECK(h.Percentile(0.5) == c.reported);
    CHECK(WithinBound(c.value, c.reported));
  }
}

TEST_CASE("Every value up to 2^36 is within 1/16 and never under-reported",
          "[latency_histogram]") {
  std::vector<int64_t> values;
  for (int64_t v = 0; v < 5000; ++v) values.push_back(v);
  // Both edges of every power of two, and its neighbours.
  for (int bit = 5; bit < 36; ++bit) {
    int64_t p = int64_t{1} << bit;
    for (int64_t d : {-2, -1, 0, 1, 2}) values.push_back(p + d);
    values.push_back(p + p / 2);
  }
  values.push_back(kMaxRepresentable);
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int64_t> dist(0, kMaxRepresentable);
  for (int i = 0; i < 20000; ++i) values.push_back(dist(rng));

  for (int64_t v : values) {
    LatencyHistogram h;
    h.Record(v);
    int64_t got = h.Percentile(0.5);
    if (!WithinBound(v, got)) {
      FAIL("value " << v << " reported as " << got);
    }
  }
  SUCCEED();
}

TEST_CASE("Percentiles of 1..100", "[latency_histogram]") {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 100; ++v) h.Record(v);
  CHECK(h.count() == 100);
  // rank = floor(q * 99): the (rank+1)-th smallest sample's bucket edge.
  CHECK(h.Percentile(0.0) == 1);
  CHECK(h.Percentile(0.1) == 10);   // rank 9 -> 10 (exact below 32)
  CHECK(h.Percentile(0.5) == 51);   // rank 49 -> 50 in [50, 51]
  CHECK(h.Percentile(0.9) == 91);   // rank 89 -> 90 in [88, 91]
  CHECK(h.Percentile(0.99) == 99);  // rank 98 -> 99 in [96, 99]
  CHECK(h.Percentile(1.0) == 103);  // rank 99 -> 100 in [100, 103]
  // Out-of-range quantiles clamp to [0, 1].
  CHECK(h.Percentile(-0.5) == 1);
  CHECK(h.Percentile(7.0) == 103);
}

TEST_CASE("Percentiles match a sorted model within 1/16",
          "[latency_histogram]") {
  std::mt19937_64 rng(777);
  // Log-uniform values from 1 us to about 17 minutes.
  std::uniform_real_distribution<double> exp_dist(0.0, 30.0);
  std::vector<int64_t> model;
  LatencyHistogram h;
  for (int i = 0; i < 10000; ++i) {
    auto v = static_cast<int64_t>(std::exp2(exp_dist(rng)));
    model.push_back(v);
    h.Record(v);
  }
  std::sort(model.begin(), model.end());
  REQUIRE(h.count() == model.size());
  int64_t previous = 0;
  for (double q :
       {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    auto rank = static_cast<size_t>(q * static_cast<double>(model.size() - 1));
    int64_t want = model[rank];
    int64_t got = h.Percentile(q);
    INFO("q = " << q << " want " << want << " got " << got);
    CHECK(WithinBound(want, got));
    CHECK(got >= previous);  // monotonic in q
    previous = got;
  }
}

TEST_CASE("Negative durations count as zero", "[latency_histogram]") {
  LatencyHistogram h;
  h.Record(-5);
  h.Record(std::numeric_limits<int64_t>::min());
  CHECK(h.count() == 2);
  CHECK(h.Percentile(0.0) == 0);
  CHECK(h.Percentile(1.0) == 0);
  h.Record(7);
  CHECK(h.count() == 3);
  CHECK(h.Percentile(0.5) == 0);
  CHECK(h.Percentile(1.0) == 7);
}

TEST_CASE("Huge durations clamp into the last bucket", "[latency_histogram]") {
  LatencyHistogram h;
  h.Record(std::numeric_limits<int64_t>::max());
  h.Record(int64_t{1} << 40);
  h.Record(int64_t{1} << 36);
  CHECK(h.count() == 3);
  CHECK(h.Percentile(0.0) == kMaxRepresentable);
  CHECK(h.Percentile(1.0) == kMaxRepresentable);
  // A small sample still ranks below the clamped ones.
  h.Record(3);
  CHECK(h.Percentile(0.0) == 3);
  CHECK(h.Percentile(1.0) == kMaxRepresentable);
}

}  // namespace
}  // namespace convstore::internal
