// Copyright 2026 The convstore Authors.
//
// KeyOp: the write op of the API keys (one alternative of WritePayload),
// and KeyRow, a key as the database stores it. A put carries a key's whole
// definition (so the last one applied wins) but never its usage counts; a
// usage flush carries the absolute counts of the keys used since the last
// one, so flushes are idempotent and coalesce any number of validations.

#ifndef CONVSTORE_SRC_KEYS_KEY_OP_H_
#define CONVSTORE_SRC_KEYS_KEY_OP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "audit/audit_op.h"

namespace convstore::internal {

// One API key. `hash` is the SHA-256 of the secret (32 bytes); the secret
// itself is never in a KeyRow.
struct KeyRow {
  std::string id;
  std::string name;
  std::string owner;
  std::vector<std::string> scopes;
  std::string hash;
  int64_t created_us = 0;
  int64_t expires_us = 0;  // 0: never
  int64_t revoked_us = 0;  // 0: not revoked
  double rate_per_s = 0;   // effective; 0: unlimited
  int64_t burst = 0;
  std::string rotated_from;
  std::string replaced_by;
  int64_t request_count = 0;
  int64_t last_used_us = 0;
};

// Insert key `row`, or update its definition (name .. replaced_by); the
// usage columns of an existing row are left alone.
struct KeyPut {
  KeyRow row;
};

struct KeyUsage {
  std::string id;
  int64_t request_count = 0;
  int64_t last_used_us = 0;
};

// Sets the usage columns of each listed key (one UPDATE each).
struct KeyUsageFlush {
  std::vector<KeyUsage> keys;
};

struct KeyOp {
  std::variant<KeyPut, KeyUsageFlush> record;
  // The audit record of a key change (key.create, key.revoke, key.rotate),
  // linked onto the audit chain in the change's own transaction: it is
  // written exactly when the change is, whether or not the caller's wait
  // for the commit succeeded. Null: not audited. Immutable once queued.
  std::shared_ptr<const AuditAppend> audit;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_KEYS_KEY_OP_H_
