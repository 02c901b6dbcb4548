// Copyright 2026 The convstore Authors.
//
// AuditStorage: the reads the audit log needs from the database, reached
// through StorageBackend::audit() (null for a backend without the audit
// tables). Writes go through the write path as AuditOps.
//
// Thread safety: every method may be called from any thread; each call
// runs in one read transaction and sees whole committed batches only.

#ifndef CONVSTORE_SRC_AUDIT_AUDIT_STORAGE_H_
#define CONVSTORE_SRC_AUDIT_AUDIT_STORAGE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "audit/audit_chain.h"
#include "convstore/audit.h"
#include "convstore/status.h"

namespace convstore::internal {

class AuditStorage {
 public:
  virtual ~AuditStorage() = default;
  // At most query.limit + 1 rows matching `query`, newest first (the extra
  // row tells the caller there is another page).
  virtual Status Select(const AuditQuery& query,
                        std::vector<AuditRow>* out) = 0;
  // In one read transaction: the anchor (0 and "" when none), then every
  // record in ascending id order until `visit` returns false.
  virtual Status ScanChain(
      const std::function<void(int64_t anchor_id, std::string anchor_hash)>&
          anchor,
      const std::function<bool(AuditRow&&)>& visit) = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_AUDIT_AUDIT_STORAGE_H_
