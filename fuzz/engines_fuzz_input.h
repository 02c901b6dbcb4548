// Copyright 2026 The convstore Authors.
//
// The inputs of engines_ops_fuzzer.cc: fuzzer-chosen strings, numbers,
// times and JSON that reach the API's checks, and what the public headers
// say about each (Valid: must be taken, must be refused, either).

#ifndef CONVSTORE_FUZZ_ENGINES_FUZZ_INPUT_H_
#define CONVSTORE_FUZZ_ENGINES_FUZZ_INPUT_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "convstore/convstore.h"
#include "fuzz_util.h"

namespace convstore::fuzz {

inline constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
// A fixed past time (November 2023) and the latest analytics time.
inline constexpr int64_t kOld = 1'700'000'000'000'000;
inline constexpr int64_t kLatest = int64_t{1} << 62;
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

inline int64_t Now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- What the headers say about an input.

// kYes: the call must take it; kNo: InvalidArgument; kMaybe: either (the
// header leaves it open, or the fuzzer does not work it out).
enum class Valid { kYes, kNo, kMaybe };

Valid operator&(Valid a, Valid b) {
  if (a == Valid::kNo || b == Valid::kNo) return Valid::kNo;
  if (a == Valid::kMaybe || b == Valid::kMaybe) return Valid::kMaybe;
  return Valid::kYes;
}
inline Valid If(bool ok) { return ok ? Valid::kYes : Valid::kNo; }

// Well-formed UTF-8 by the table of the Unicode standard (3-7), written
// apart from the library's check.
inline bool Utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    unsigned lo = 0x80, hi = 0xbf;
    size_t extra;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
    } else if (c == 0xe0) {
      extra = 2, lo = 0xa0;
    } else if (c == 0xed) {
      extra = 2, hi = 0x9f;
    } else if (c >= 0xe1 && c <= 0xef) {
      extra = 2;
    } else if (c == 0xf0) {
      extra = 3, lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) {
      extra = 3;
    } else if (c == 0xf4) {
      extra = 3, hi = 0x8f;
    } else {
      return false;
    }
    if (n - i <= extra) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k <= extra; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return false;
    }
    i += extra + 1;
  }
  return true;
}

inline bool HasNul(std::string_view s) { return s.find('\0') != s.npos; }
inline bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

// Text of min..max bytes of UTF-8; NUL refused when `nul` is kNo, open
// when kMaybe.
inline Valid TextRule(std::string_view s, size_t min, size_t max,
                      Valid nul = Valid::kYes) {
  Valid v = If(s.size() >= min && s.size() <= max && Utf8(s));
  if (HasNul(s)) v = v & nul;
  return v;
}
// An analytics id: the header says UTF-8 (1..256 bytes for a session id);
// control characters are refused like a conversation id's.
inline Valid AnalyticsId(std::string_view s, bool required) {
  if (s.empty()) return If(!required);
  Valid v = If(Utf8(s));
  if (s.size() > 256) v = v & (required ? Valid::kNo : Valid::kMaybe);
  if (HasControl(s)) v = v & Valid::kMaybe;
  return v;
}

inline std::string Show(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 60)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return s.size() > 60 ? out + "...(" + std::to_string(s.size()) + ")" : out;
}

inline void Expect(const Status& s, Valid v, const std::string& what) {
  switch (v) {
    case Valid::kYes:
      Check(s.ok(), what + " refused valid input: " + s.ToString());
      break;
    case Valid::kNo:
      Check(s.IsInvalidArgument(),
            what + " did not refuse bad input: " + s.ToString());
      break;
    case Valid::kMaybe:
      Check(s.ok() || s.IsInvalidArgument(), what + ": " + s.ToString());
      break;
  }
}

// --- Fuzzer-chosen values.

// Strings that reach the checks: empty, NUL, bad UTF-8 of each kind,
// lengths at the limits (64, 128, 256, 1024), control characters.
inline std::string Str(FuzzedDataProvider& in, size_t max_random = 80) {
  static const size_t kLengths[] = {63,  64,  65,  127,  128,  129,
                                    255, 256, 257, 1023, 1024, 1025};
  switch (in.ConsumeIntegralInRange<int>(0, 11)) {
    case 0:
      return std::string();
    case 1:
      return std::string("a\0b", 3);
    case 2:
      return "\xff\xfe";
    case 3:
      return "\xed\xa0\x80";  // a UTF-16 surrogate
    case 4:
      return "\xc0\xaf";  // an overlong '/'
    case 5:
      return "\xf4\x90\x80\x80";  // past U+10FFFF
    case 6:
      return std::string(in.PickValueInArray(kLengths), 'x');
    case 7:
      return "tab\there";
    case 8:
      return "\xc3\xbcn\xc3\xaf \xe2\x9c\x93 \xf0\x9d\x84\x9e";
    default:
      return in.ConsumeRandomLengthString(max_random);
  }
}

// One of `names` (so calls meet each other), or sometimes Str().
template <size_t N>
inline std::string Pick(FuzzedDataProvider& in, const char* const (&names)[N]) {
  if (in.ConsumeIntegralInRange<int>(0, 5) != 0)
    return in.PickValueInArray(names);
  return Str(in);
}

// A JSON object text (or empty), and whether it is one.
inline std::string Json(FuzzedDataProvider& in, Valid* v) {
  static const char* const kGood[] = {"", "{}", R"({"a":[1,2,{"b":null}]})",
                                      "{\"\xe2\x9c\x93\":\"x\"}"};
  static const char* const kBad[] = {"[1,2]",      "{",     "{\"a\":}", "null",
                                     "{\"a\":1}x", "\"s\"", "{'a':1}"};
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
    case 1:
      *v = Valid::kYes;
      return in.PickValueInArray(kGood);
    case 2:
      *v = Valid::kNo;
      return in.PickValueInArray(kBad);
    default: {
      std::string s = in.ConsumeRandomLengthString(40);
      *v = s.empty() ? Valid::kYes : Valid::kMaybe;
      return s;
    }
  }
}

inline int64_t Int64(FuzzedDataProvider& in) {
  static const int64_t kEdges[] = {
      0, 1, -1, kMax64, kMin64, kMax64 - 1, kMin64 + 1, int64_t{1} << 40};
  return in.ConsumeBool() ? in.PickValueInArray(kEdges)
                          : in.ConsumeIntegral<int64_t>();
}

// A cache ttl; *lasting: an entry with it outlives the input; *valid: not
// negative.
inline std::chrono::milliseconds Ttl(FuzzedDataProvider& in, bool* lasting,
                                     Valid* valid) {
  static const int64_t kMs[] = {0, 1, 3, 3'600'000, kMax64, -1, kMin64};
  const int64_t ms = in.PickValueInArray(kMs);
  *lasting = ms == 0 || ms >= 3'600'000;
  *valid = If(ms >= 0);
  return std::chrono::milliseconds(ms);
}

// A recording time: 0 (now), old, the latest allowed, or out of range.
inline int64_t At(FuzzedDataProvider& in, Valid* v, int64_t* ts) {
  static const int64_t kAt[] = {0,  kOld,        1,      kLatest,
                                -1, kLatest + 1, kMax64, kMin64};
  const int64_t at = in.PickValueInArray(kAt);
  *v = If(at >= 0 && at <= kLatest);
  *ts = at == 0 ? Now() : at;
  return at;
}

// A latency in ms, present or not, and whether it is valid.
inline std::optional<double> Ms(FuzzedDataProvider& in, Valid* v,
                                double hi = 1e15) {
  static const double kVals[] = {820, 0, -1, kNaN, kInf, 1e15, 1e16, 0.5};
  if (in.ConsumeBool()) return std::nullopt;
  const double d = in.PickValueInArray(kVals);
  *v = *v & If(std::isfinite(d) && d >= 0 && d <= hi);
  return d;
}

// Names the calls share, so that they meet each other.
inline constexpr const char* kNs[] = {"tools", "rate", "n"};
inline constexpr const char* kKeys[] = {"k0", "k1", "weather:paris"};
inline constexpr const char* kOwners[] = {"tenant-7", "acme"};
inline constexpr const char* kScopes[] = {"chat:write", "chat:read", "admin"};
inline constexpr const char* kSessions[] = {"s0", "s1", "s2"};
inline constexpr const char* kConvs[] = {"c0", "c1", "c2"};

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_ENGINES_FUZZ_INPUT_H_
