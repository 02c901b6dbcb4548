// Copyright 2026 The convstore Authors.
//
// AuditOp: the write op of the audit log (one alternative of WritePayload).
// An append carries one event; a prune deletes the oldest records, moves
// the anchor and appends its own "audit.prune" record. Ids, timestamps and
// hashes are assigned by the backend on the writer thread, in commit order,
// so the chain is linear whatever the order of the callers.

#ifndef CONVSTORE_SRC_AUDIT_AUDIT_OP_H_
#define CONVSTORE_SRC_AUDIT_AUDIT_OP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "convstore/audit_types.h"

namespace convstore::internal {

struct AuditAppend {
  AuditEvent event;
  // Wall clock when the event was recorded; the stored ts_us is this or
  // the previous record's ts_us, whichever is later.
  int64_t ts_us = 0;
};

// What a prune did, filled in by the backend on the writer thread (each
// attempt overwrites it) and read by the caller once the op is durable
// (the writer's durable-LSN lock orders the two).
struct AuditPruneResult {
  int64_t deleted = 0;
  int64_t anchor_id = 0;
  std::string anchor_hash;  // 32 bytes; empty when there is no anchor
  int64_t prune_record_id = 0;
};

// Deletes the records with ts_us < before_us (a prefix of the chain, as
// timestamps never decrease), anchors the rest on the last of them and
// appends the "audit.prune" record.
struct AuditPrune {
  int64_t before_us = 0;
  int64_t ts_us = 0;  // when the prune was requested
  std::shared_ptr<AuditPruneResult> result;
};

struct AuditOp {
  std::variant<AuditAppend, AuditPrune> record;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_AUDIT_AUDIT_OP_H_
