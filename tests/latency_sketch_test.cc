// Copyright 2026 The convstore Authors.
//
// LatencySketch: the 1% relative error bound against exact percentiles
// (turn_fields.h Percentile) on several distributions, merge equals adding
// everything to one sketch, serialization round trips, and bad blobs are a
// Corruption Status.

#include "analytics/latency_sketch.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analytics/turn_fields.h"
#include "analytics/turn_rollup.h"

namespace convstore::internal {
namespace {

constexpr double kPs[] = {0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1};

// Checks every quantile of kPs against the exact one.
void CheckBound(std::vector<double> values) {
  LatencySketch sk;
  for (double v : values) sk.Add(v);
  std::sort(values.begin(), values.end());
  REQUIRE(sk.count() == static_cast<int64_t>(values.size()));
  CHECK(sk.min() == values.front());
  CHECK(sk.max() == values.back());
  for (double p : kPs) {
    const double exact = Percentile(values, p);
    const double got = sk.Quantile(p);
    INFO("p=" << p << " exact=" << exact << " sketch=" << got);
    CHECK(std::abs(got - exact) <=
          LatencySketch::kRelativeError * exact * (1 + 1e-12));
  }
}

TEST_CASE("sketch quantiles are within 1% of exact ones", "[sketch]") {
  std::mt19937_64 rng(42);
  SECTION("uniform 0..2000 ms") {
    std::uniform_real_distribution<double> d(0, 2000);
    std::vector<double> v(20000);
    for (double& x : v) x = d(rng);
    CheckBound(v);
  }
  SECTION("lognormal, heavy tail") {
    std::lognormal_distribution<double> d(6, 1.5);
    std::vector<double> v(20000);
    for (double& x : v) x = d(rng);
    CheckBound(v);
  }
  SECTION("integers with many ties") {
    std::vector<double> v;
    for (int i = 0; i < 5000; ++i) v.push_back(100 + (i % 7) * 50);
    CheckBound(v);
  }
  SECTION("edge values: zeros, tiny, huge, DBL_MAX") {
    std::vector<double> v = {
        0,        0,     1e-300,
        4.9e-324, 1e-3,  1,
        1e15,     1e300, std::numeric_limits<double>::max(),
        123.4,    0,     5e-7};
    CheckBound(v);
  }
  SECTION("one value and two values") {
    CheckBound({7});
    CheckBound({0});
    CheckBound({10, 1000});
  }
}

TEST_CASE("an empty sketch answers 0", "[sketch]") {
  LatencySketch sk;
  CHECK(sk.empty());
  CHECK(sk.Quantile(0.5) == 0);
}

std::string Bytes(const LatencySketch& sk) {
  std::string out;
  sk.AppendTo(&out);
  return out;
}

TEST_CASE("merging sketches equals adding every value to one", "[sketch]") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(5, 1);
  LatencySketch all, a, b, c;
  for (int i = 0; i < 3000; ++i) {
    const double x = i % 100 == 0 ? 0 : d(rng);
    all.Add(x);
    (i % 3 == 0 ? a : i % 3 == 1 ? b : c).Add(x);
  }
  LatencySketch merged;
  merged.Merge(a);
  merged.Merge(b);
  // Through the serialized form too, as the rollup query merges them.
  std::string blob = Bytes(c);
  std::string_view view = blob;
  REQUIRE(merged.MergeFrom(&view).ok());
  CHECK(view.empty());
  CHECK(merged.count() == all.count());
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
  CHECK(merged.sum() == Catch::Detail::Approx(all.sum()));
  for (double p : kPs) CHECK(merged.Quantile(p) == all.Quantile(p));
}

TEST_CASE("a sketch round-trips through its serialized form", "[sketch]") {
  LatencySketch sk;
  for (double x : {0.0, 3.0, 3.0, 250.0, 1e9}) sk.Add(x);
  const std::string blob = Bytes(sk);
  LatencySketch back;
  std::string_view view = blob;
  REQUIRE(back.MergeFrom(&view).ok());
  CHECK(Bytes(back) == blob);
  CHECK(back.count() == 5);
  CHECK(back.sum() == sk.sum());
}

TEST_CASE("a corrupt sketch blob is a Corruption status", "[sketch]") {
  LatencySketch sk;
  for (double x : {0.0, 5.0, 80.0, 900.0}) sk.Add(x);
  const std::string good = Bytes(sk);
  auto parse = [](std::string bad) {
    LatencySketch into;
    into.Add(42);
    std::string_view view = bad;
    Status s = into.MergeFrom(&view);
    // A failed parse leaves the sketch as it was.
    CHECK(into.count() == 1);
    CHECK(into.Quantile(0.5) == 42);
    return s;
  };
  CHECK(parse("").IsCorruption());
  CHECK(parse(std::string(1, '\x02') + good.substr(1)).IsCorruption());
  // Every truncation fails.
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("truncated to " << n);
    CHECK(parse(good.substr(0, n)).IsCorruption());
  }
  // A NaN max, and a huge bucket count.
  std::string nan_max = good;
  const double nan = std::nan("");
  std::memcpy(&nan_max[1 + 1 + 16], &nan, 8);
  CHECK(parse(nan_max).IsCorruption());
  std::string huge =
      good.substr(0, good.size() - 1) + "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
  CHECK(parse(huge).IsCorruption());
  // Random garbage never crashes.
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string g = good;
    g[rng() % g.size()] = static_cast<char>(rng());
    LatencySketch into;
    std::string_view view = g;
    (void)into.MergeFrom(&view);
  }
}

TEST_CASE("a rollup latency blob merges per field and rejects bad fields",
          "[sketch]") {
  TurnRollup r;
  TurnMetrics t;
  t.at_us = 5;
  t.e2e_ms = 800;
  t.llm_ttft_ms = 0;
  r.Add(t);
  std::vector<LatencySketch> into(TurnFields().size());
  REQUIRE(MergeLatencyBlob(r.SerializeLatencies(), into).ok());
  const TurnField* e2e = FindTurnField("e2e_ms");
  const size_t i = static_cast<size_t>(e2e - TurnFields().data());
  CHECK(into[i].count() == 1);
  CHECK(into[i].max() == 800);
  std::vector<LatencySketch> fresh(TurnFields().size());
  CHECK(MergeLatencyBlob("", fresh).IsCorruption());
  // Field 200 does not exist; "cost" is not a latency field.
  CHECK(MergeLatencyBlob(std::string("\x01\xc8", 2), fresh).IsCorruption());
  const size_t cost =
      static_cast<size_t>(FindTurnField("cost") - TurnFields().data());
  std::string bad(1, '\x01');
  bad.push_back(static_cast<char>(cost));
  LatencySketch one;
  one.Add(1);
  one.AppendTo(&bad);
  CHECK(MergeLatencyBlob(bad, fresh).IsCorruption());
  CHECK(RollupBucket(kRollupBucketUs + 1) == kRollupBucketUs);
  CHECK(RollupBucket(-1) == -kRollupBucketUs);
}

}  // namespace
}  // namespace convstore::internal
