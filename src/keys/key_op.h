// Copyright 2026 The convstore Authors.
//
// KeyOp: the write op of the API keys (one alternative of WritePayload),
// and KeyRow, a key as the database stores it. A put carries a key's whole
// definition (so the last one applied wins) but never its usage counts; a
// usage flush carries the absolute counts of the keys used since the last
// one, so flushes are idempotent and coalesce any number of validations.
// A rotation is one op (KeyRotate) that the writer applies only if the old
// key's stored row still allows it, and reports through KeyOutcome.

#ifndef CONVSTORE_SRC_KEYS_KEY_OP_H_
#define CONVSTORE_SRC_KEYS_KEY_OP_H_

#include <absl/base/thread_annotations.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "audit/audit_op.h"
#include "mutex.h"

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

// A rotation: insert `successor` and store `old_end` (the old key with its
// replaced_by and shortened expiry), both or neither. The writer checks the
// old key's stored row in the same transaction: if it is missing, revoked,
// or has a successor already (another store on the file revoked or rotated
// it), nothing is written and the op's outcome says why.
struct KeyRotate {
  KeyRow old_end;
  KeyRow successor;
};

// What the writer decided about a KeyRotate, as of the transaction that
// committed (a batch applied again after a failed attempt decides again).
// Read it once the op's LSN is durable.
class KeyOutcome {
 public:
  enum Refusal { kNone = 0, kMissing, kRevoked, kRotated };
  void Set(Refusal refusal, std::string replaced_by = {}) {
    MutexLock lock(&mu_);
    refusal_ = refusal;
    replaced_by_ = std::move(replaced_by);
  }
  Refusal refusal() const {
    MutexLock lock(&mu_);
    return refusal_;
  }
  // The successor the stored row already had (kRotated).
  std::string replaced_by() const {
    MutexLock lock(&mu_);
    return replaced_by_;
  }

 private:
  mutable Mutex mu_;
  Refusal refusal_ ABSL_GUARDED_BY(mu_) = kNone;
  std::string replaced_by_ ABSL_GUARDED_BY(mu_);
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
  std::variant<KeyPut, KeyUsageFlush, KeyRotate> record;
  // The audit record of a key change (key.create, key.revoke, key.rotate),
  // linked onto the audit chain in the change's own transaction: it is
  // written exactly when the change is, whether or not the caller's wait
  // for the commit succeeded. Null: not audited. Immutable once queued.
  // A refused rotation writes no record.
  std::shared_ptr<const AuditAppend> audit;
  // KeyRotate only: where the writer says whether it applied the rotation.
  std::shared_ptr<KeyOutcome> outcome;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_KEYS_KEY_OP_H_
