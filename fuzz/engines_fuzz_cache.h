// Copyright 2026 The convstore Authors.
//
// engines_ops_fuzzer.cc: Cache calls (Set, Get, Delete, Touch, Increment)
// checked against a model of the entries.

#ifndef CONVSTORE_FUZZ_ENGINES_FUZZ_CACHE_H_
#define CONVSTORE_FUZZ_ENGINES_FUZZ_CACHE_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convstore/convstore.h"
#include "engines_fuzz_input.h"
#include "fuzz_util.h"

namespace convstore::fuzz {

struct CacheValue {
  std::string value;
  // False: the entry may have expired or been evicted (it is never
  // resurrected, and if it is read, it reads `value`).
  bool sure = true;
};

class CacheOps {
 public:
  using milliseconds = std::chrono::milliseconds;

  CacheOps(FuzzedDataProvider& in, bool tight) : in_(in), tight_(tight) {}

  void set_store(Store* store) { store_ = store; }

  // After a reopen: every entry reads back, unless it may have gone.
  void CheckAll() {
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = CheckCacheEntry(it);
    }
  }

  static Valid NsKey(std::string_view ns, std::string_view key) {
    return TextRule(ns, 1, 256, Valid::kNo) &
           TextRule(key, 1, 1024, Valid::kNo);
  }

  bool Sure(bool lasting) const { return lasting && !tight_; }

  void Unsure() {
    if (tight_) {
      for (auto& [k, v] : cache_) v.sure = false;
    }
  }

  void CacheSet() {
    const std::string ns = Pick(in_, kNs), key = Pick(in_, kKeys);
    static const char* const kValues[] = {"0",
                                          "42",
                                          "-7",
                                          "9223372036854775807",
                                          "-9223372036854775808",
                                          "9223372036854775808",
                                          "+5",
                                          " 5",
                                          "-",
                                          "007",
                                          "-0",
                                          ""};
    std::string value;
    if (in_.ConsumeBool()) {
      value = in_.PickValueInArray(kValues);
    } else {
      value = in_.ConsumeRandomLengthString(600);
    }
    bool lasting;
    Valid v;
    const milliseconds ttl = Ttl(in_, &lasting, &v);
    v = v & NsKey(ns, key) & If(value.size() <= 512);
    Status s = store_->cache().Set(ns, key, value, ttl);
    Expect(s, v, "cache Set(" + Show(ns) + ", " + Show(key) + ")");
    if (!s.ok()) return;
    Unsure();
    cache_[{ns, key}] = CacheValue{value, Sure(lasting)};
  }

  using CacheIt =
      std::map<std::pair<std::string, std::string>, CacheValue>::iterator;

  CacheIt CheckCacheEntry(CacheIt it) {
    const auto& [ns, key] = it->first;
    StatusOr<std::string> got = store_->cache().Get(ns, key);
    const std::string what = "cache Get(" + Show(ns) + ", " + Show(key) + ")";
    if (got.ok()) {
      Check(*got == it->second.value, what + " reads " + Show(*got) +
                                          ", model " + Show(it->second.value));
      return std::next(it);
    }
    Check(got.status().IsNotFound(), what + ": " + got.status().ToString());
    Check(!it->second.sure, what + " lost a live entry");
    return cache_.erase(it);
  }

  void CacheGet() {
    const std::string ns = Pick(in_, kNs), key = Pick(in_, kKeys);
    auto it = cache_.find({ns, key});
    if (it != cache_.end()) {
      CheckCacheEntry(it);
      return;
    }
    StatusOr<std::string> got = store_->cache().Get(ns, key);
    const Valid v = NsKey(ns, key);
    if (v == Valid::kNo) {
      Expect(got.status(), v, "cache Get");
      return;
    }
    Check(got.status().IsNotFound(),
          "cache Get of a missing entry (" + Show(ns) + ", " + Show(key) +
              "): " + (got.ok() ? Show(*got) : got.status().ToString()));
  }

  void CacheDelete() {
    const std::string ns = Pick(in_, kNs), key = Pick(in_, kKeys);
    Status s = store_->cache().Delete(ns, key);
    Expect(s, NsKey(ns, key), "cache Delete");
    if (s.ok()) cache_.erase({ns, key});
  }

  void CacheTouch() {
    const std::string ns = Pick(in_, kNs), key = Pick(in_, kKeys);
    bool lasting;
    Valid v;
    const milliseconds ttl = Ttl(in_, &lasting, &v);
    v = v & NsKey(ns, key);
    Status s = store_->cache().Touch(ns, key, ttl);
    auto it = cache_.find({ns, key});
    if (v == Valid::kYes && s.IsNotFound()) {
      Check(it == cache_.end() || !it->second.sure,
            "cache Touch lost a live entry");
      if (it != cache_.end()) cache_.erase(it);
      return;
    }
    Expect(s, v, "cache Touch");
    if (!s.ok()) return;
    Check(it != cache_.end(), "cache Touch found a deleted entry");
    Unsure();
    it->second.sure = Sure(lasting);
  }

  static bool ParseCounter(const std::string& s, int64_t* out) {
    size_t i = 0;
    const bool neg = !s.empty() && s[0] == '-';
    if (neg) i = 1;
    if (i == s.size()) return false;
    int64_t v = 0;  // accumulated negative, to reach INT64_MIN
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      if (__builtin_mul_overflow(v, 10, &v) ||
          __builtin_sub_overflow(v, s[i] - '0', &v)) {
        return false;
      }
    }
    if (!neg && v == kMin64) return false;
    *out = neg ? v : -v;
    return true;
  }

  void CacheIncrement() {
    const std::string ns = Pick(in_, kNs), key = Pick(in_, kKeys);
    const int64_t delta = Int64(in_);
    bool lasting;
    Valid v;
    const milliseconds ttl = Ttl(in_, &lasting, &v);
    v = v & NsKey(ns, key);
    StatusOr<int64_t> r = store_->cache().Increment(ns, key, delta, ttl);
    const std::string what = "cache Increment by " + std::to_string(delta);
    if (v != Valid::kYes) {  // ns, key and ttl are either valid or not
      Expect(r.status(), v, what);
      return;
    }
    auto it = cache_.find({ns, key});
    // The outcomes if the entry is there, and if it is not.
    int64_t current = 0, sum = 0;
    const bool present = it != cache_.end();
    const bool counter = present && ParseCounter(it->second.value, &current);
    const bool overflow = __builtin_add_overflow(current, delta, &sum);
    if (r.ok()) {
      const bool as_present = present && counter && !overflow && *r == sum;
      const bool as_missing = (!present || !it->second.sure) && *r == delta;
      Check(as_present || as_missing,
            what + " returned " + std::to_string(*r) + ", model " +
                (present ? Show(it->second.value) : "missing"));
      Unsure();
      if (!present) {
        cache_[{ns, key}] = CacheValue{std::to_string(*r), Sure(lasting)};
      } else {
        it->second.value = std::to_string(*r);
        if (!as_present) it->second.sure = false;  // restarted, new expiry
      }
      return;
    }
    Check(present, what + " of a missing entry: " + r.status().ToString());
    if (r.status().IsFailedPrecondition()) {
      Check(!counter, what + " refused a counter");
    } else {
      Check(r.status().IsInvalidArgument() && counter && overflow,
            what + ": " + r.status().ToString());
    }
  }

 private:
  FuzzedDataProvider& in_;
  const bool tight_;  // a 2 KiB bound: any entry may be evicted
  Store* store_ = nullptr;
  std::map<std::pair<std::string, std::string>, CacheValue> cache_;
};

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_ENGINES_FUZZ_CACHE_H_
