// Copyright 2026 The convstore Authors.
//
// AuditSink: the seam through which the store's own parts (API keys,
// conversation deletion, retention runs) write audit events without depending
// on how the audit log is built. The audit log implements it; tests may pass
// a recording fake.
//
// Thread safety: implementations must accept Record from any thread at once.

#ifndef CONVSTORE_AUDIT_SINK_H_
#define CONVSTORE_AUDIT_SINK_H_

#include "convstore/audit_types.h"
#include "convstore/status.h"

namespace convstore::internal {

class AuditSink {
 public:
  virtual ~AuditSink() = default;

  // Appends `event` to the audit log. With wait=true, returns once the record
  // is as durable as Options::durability.audit promises (committed, for the
  // default sync class). With wait=false it only queues the record and
  // returns at once (for hot paths such as a failed key validation); the
  // record is then committed with the next batch.
  virtual Status Record(AuditEvent event, bool wait) = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_AUDIT_SINK_H_
