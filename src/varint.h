// Copyright 2026 The convstore Authors.
//
// LEB128 varints (7 bits a byte, low first) and zigzag for signed deltas:
// the compact integer encoding of the analytics latency sketches and the
// packed message index (sqlite/message_chunks.h).
//
// Thread safety: free functions without state.

#ifndef CONVSTORE_SRC_VARINT_H_
#define CONVSTORE_SRC_VARINT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace convstore::internal {

inline void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads one varint from the front of *in and drops it; false (and *in
// unspecified) if *in ends first or the value needs more than 64 bits.
inline bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in->empty()) return false;
    const auto b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    if (shift == 63 && b > 1) return false;  // bits beyond the 64th
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

// Maps small negative and positive values to small unsigned ones.
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_VARINT_H_
