// Copyright 2026 The convstore Authors.

#include "analytics/latency_sketch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "saturating.h"
#include "varint.h"

namespace convstore::internal {
namespace {

// Built for 0.99% so the 1% bound holds with room for rounding.
constexpr double kBuildError = 0.0099;
const double kGamma = (1 + kBuildError) / (1 - kBuildError);
const double kLogGamma = std::log(kGamma);
// Every positive finite double maps inside this range (about +-37600).
constexpr int32_t kMaxIndex = 40000;
constexpr uint8_t kVersion = 1;
// Far above any real count; rejects blobs whose counts would overflow.
constexpr uint64_t kMaxCount = uint64_t{1} << 50;

int32_t IndexOf(double v) {
  return static_cast<int32_t>(std::ceil(std::log(v) / kLogGamma));
}

// 2*gamma^i/(gamma+1), computed in logs so large i does not overflow
// before the caller clamps it to max.
double Representative(int32_t i) {
  return std::exp(static_cast<double>(i) * kLogGamma -
                  std::log((kGamma + 1) / 2));
}

void PutDouble(double d, std::string* out) {
  uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }
}

bool GetDouble(std::string_view* in, double* d) {
  if (in->size() < 8) return false;
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) {
    bits |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  }
  in->remove_prefix(8);
  std::memcpy(d, &bits, sizeof bits);
  return true;
}

Status Bad(const char* what) {
  return Status::Corruption(std::string("latency sketch: ") + what);
}

}  // namespace

void LatencySketch::Add(double v) {
  if (!(v > 0)) v = 0;  // also NaN
  if (v > std::numeric_limits<double>::max()) {
    v = std::numeric_limits<double>::max();
  }
  min_ = count_ == 0 ? v : std::min(min_, v);
  max_ = count_ == 0 ? v : std::max(max_, v);
  ++count_;
  sum_ += v;
  if (v == 0) {
    ++zeros_;
  } else {
    AddToBucket(IndexOf(v), 1);
  }
}

void LatencySketch::AddToBucket(int32_t index, int64_t n) {
  if (buckets_.empty()) {
    offset_ = index;
    buckets_.assign(1, 0);
  } else if (index < offset_) {
    buckets_.insert(buckets_.begin(), static_cast<size_t>(offset_ - index), 0);
    offset_ = index;
  } else if (index - offset_ >= static_cast<int32_t>(buckets_.size())) {
    buckets_.resize(static_cast<size_t>(index - offset_) + 1, 0);
  }
  int64_t& bucket = buckets_[static_cast<size_t>(index - offset_)];
  bucket = SatAdd(bucket, n);  // merged blobs may come from a damaged file
}

void LatencySketch::Merge(const LatencySketch& other) {
  if (other.count_ == 0) return;
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
  count_ = SatAdd(count_, other.count_);
  zeros_ = SatAdd(zeros_, other.zeros_);
  sum_ += other.sum_;
  for (size_t j = 0; j < other.buckets_.size(); ++j) {
    if (other.buckets_[j] != 0) {
      AddToBucket(other.offset_ + static_cast<int32_t>(j), other.buckets_[j]);
    }
  }
}

double LatencySketch::ValueAtRank(int64_t k) const {
  // The smallest and largest values are known exactly.
  if (k <= 0) return min_;
  if (k >= count_ - 1) return max_;
  if (k < zeros_) return 0;
  int64_t seen = zeros_;
  for (size_t j = 0; j < buckets_.size(); ++j) {
    seen = SatAdd(seen, buckets_[j]);
    if (k < seen) {
      // Clamping keeps the bound: every value lies in [min_, max_].
      return std::clamp(Representative(offset_ + static_cast<int32_t>(j)), min_,
                        max_);
    }
  }
  return max_;
}

double LatencySketch::Quantile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 1.0);
  const double rank = p * static_cast<double>(count_ - 1);
  const auto lo = static_cast<int64_t>(std::floor(rank));
  const double a = ValueAtRank(lo);
  if (lo + 1 >= count_) return a;
  const double b = ValueAtRank(lo + 1);
  return a + (b - a) * (rank - static_cast<double>(lo));
}

void LatencySketch::AppendTo(std::string* out) const {
  out->push_back(static_cast<char>(kVersion));
  PutVarint(static_cast<uint64_t>(zeros_), out);
  PutDouble(sum_, out);
  PutDouble(min_, out);
  PutDouble(max_, out);
  size_t occupied = 0;
  for (int64_t n : buckets_) occupied += n != 0 ? 1 : 0;
  PutVarint(occupied, out);
  int64_t prev = 0;
  for (size_t j = 0; j < buckets_.size(); ++j) {
    if (buckets_[j] == 0) continue;
    const int64_t index = offset_ + static_cast<int64_t>(j);
    const int64_t delta = index - prev;
    PutVarint(ZigZag(delta), out);
    PutVarint(static_cast<uint64_t>(buckets_[j]), out);
    prev = index;
  }
}

Status LatencySketch::MergeFrom(std::string_view* in) {
  std::string_view p = *in;
  if (p.empty() || static_cast<uint8_t>(p.front()) != kVersion) {
    return Bad("unknown version");
  }
  p.remove_prefix(1);
  uint64_t zeros = 0, occupied = 0;
  double sum = 0, lo = 0, hi = 0;
  if (!GetVarint(&p, &zeros) || !GetDouble(&p, &sum) || !GetDouble(&p, &lo) ||
      !GetDouble(&p, &hi) || !GetVarint(&p, &occupied)) {
    return Bad("truncated header");
  }
  if (zeros > kMaxCount || occupied > 2 * kMaxIndex + 1) {
    return Bad("implausible counts");
  }
  if (!std::isfinite(sum) || !std::isfinite(lo) || !std::isfinite(hi) ||
      lo < 0 || hi < lo || sum < 0) {
    return Bad("bad sum, min or max");
  }
  std::vector<std::pair<int32_t, int64_t>> entries;
  entries.reserve(occupied);
  uint64_t total = zeros;
  int64_t index = 0;
  for (uint64_t e = 0; e < occupied; ++e) {
    uint64_t zz = 0, n = 0;
    if (!GetVarint(&p, &zz) || !GetVarint(&p, &n)) {
      return Bad("truncated buckets");
    }
    const int64_t delta = UnZigZag(zz);
    if (e > 0 && delta <= 0) return Bad("bucket indexes not increasing");
    if (delta > 2 * kMaxIndex || delta < -kMaxIndex) {
      return Bad("bucket index out of range");
    }
    index += delta;
    if (index < -kMaxIndex || index > kMaxIndex) {
      return Bad("bucket index out of range");
    }
    if (n == 0 || n > kMaxCount) return Bad("bad bucket count");
    total += n;
    if (total > kMaxCount) return Bad("implausible counts");
    entries.emplace_back(static_cast<int32_t>(index), static_cast<int64_t>(n));
  }
  if (total == 0) return Bad("empty sketch");
  if ((zeros > 0) != (lo == 0)) return Bad("min disagrees with zero count");
  *in = p;
  const auto n = static_cast<int64_t>(total);
  min_ = count_ == 0 ? lo : std::min(min_, lo);
  max_ = count_ == 0 ? hi : std::max(max_, hi);
  // Each blob is checked (kMaxCount); thousands merged are not.
  count_ = SatAdd(count_, n);
  zeros_ = SatAdd(zeros_, static_cast<int64_t>(zeros));
  sum_ += sum;
  for (const auto& [i, c] : entries) AddToBucket(i, c);
  return Status::OK();
}

}  // namespace convstore::internal
