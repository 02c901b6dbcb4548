// Copyright 2026 The convstore Authors.
//
// The audit chain's hashing and its checker (docs/schema.md, version 6).
//
//   hash = SHA-256(prev_hash || Encode(id, ts_us, actor, action, resource,
//                                      outcome, details_json,
//                                      source_address))
//
// Encode writes id and ts_us as 8-byte big-endian two's complement, then
// each of the six strings as its length (8-byte big-endian) followed by its
// bytes. Genesis prev_hash is 32 zero bytes.
//
// Thread safety: pure functions; a ChainChecker belongs to one thread.

#ifndef CONVSTORE_SRC_AUDIT_AUDIT_CHAIN_H_
#define CONVSTORE_SRC_AUDIT_AUDIT_CHAIN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "convstore/audit.h"
#include "convstore/audit_types.h"

namespace convstore::internal {

inline constexpr size_t kAuditHashBytes = 32;

// 32 zero bytes: the prev_hash of record 1.
std::string GenesisHash();

// The canonical, length-prefixed encoding of a record's content.
std::string EncodeAuditRecord(int64_t id, int64_t ts_us, const AuditEvent& e);

// SHA-256(prev_hash || EncodeAuditRecord(...)), 32 raw bytes.
std::string AuditRecordHash(std::string_view prev_hash, int64_t id,
                            int64_t ts_us, const AuditEvent& e);

// Lower-case hex of raw bytes.
std::string HexOf(std::string_view bytes);

// A stored record with raw hashes, as the backend reads it.
struct AuditRow {
  int64_t id = 0;
  int64_t ts_us = 0;
  AuditEvent event;
  std::string prev_hash;  // raw bytes
  std::string hash;       // raw bytes
  // Empty, or which stored column does not have the SQLite type the store
  // writes (ChainChecker reports it as AuditBreak::kColumnType).
  std::string type_error;
};

// Checks rows fed in ascending id order against the chain rules; stops
// at the first break.
class ChainChecker {
 public:
  // anchor_id 0 and an empty anchor_hash: no anchor (start at genesis).
  ChainChecker(int64_t anchor_id, std::string anchor_hash);
  // False once the chain is broken (the result says where).
  bool Check(const AuditRow& row);
  // After the last row: the anchor must be the one the newest audit.prune
  // record in the chain names (a record inside the chain, so it cannot be
  // changed unseen), and with no such record there must be no anchor.
  // Otherwise records were deleted from the front and the anchor moved to
  // fit them: kAnchor.
  void Finish();
  const AuditVerification& result() const { return result_; }

 private:
  void Break(const AuditRow& row, AuditBreak reason, std::string detail);

  bool anchored_;
  std::string anchor_hash_;  // raw, as read
  // What the newest audit.prune record says the anchor is.
  bool attested_ = false;
  int64_t attested_id_ = 0;
  std::string attested_hash_;  // hex
  int64_t attested_by_ = 0;    // that record's id
  int64_t expected_id_;
  std::string expected_prev_;
  AuditVerification result_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_AUDIT_AUDIT_CHAIN_H_
