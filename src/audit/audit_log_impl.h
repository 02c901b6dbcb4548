// Copyright 2026 The convstore Authors.
//
// AuditLogImpl: the AuditLog a Store hands out (include/convstore/audit.h)
// and the AuditSink the store's own parts (API keys, conversation deletes,
// retention runs) write through. It validates events and queues them as
// AuditOps; the chain itself (ids, hashes) is built by the backend on the
// writer thread, which sees the records in commit order. Reads go to
// AuditStorage.
//
// Thread safety: all methods are thread-safe; the object holds no mutable
// state of its own (the write path and the storage are thread-safe).

#ifndef CONVSTORE_SRC_AUDIT_AUDIT_LOG_IMPL_H_
#define CONVSTORE_SRC_AUDIT_AUDIT_LOG_IMPL_H_

#include <functional>

#include "audit/audit_storage.h"
#include "audit_sink.h"
#include "convstore/audit.h"
#include "convstore/options.h"
#include "write_path.h"

namespace convstore::internal {

// Input limits of an AuditEvent (documented in audit_types.h and audit.h).
inline constexpr size_t kAuditMaxActorBytes = 256;
inline constexpr size_t kAuditMaxActionBytes = 256;
inline constexpr size_t kAuditMaxResourceBytes = 1024;
inline constexpr size_t kAuditMaxOutcomeBytes = 64;
inline constexpr size_t kAuditMaxDetailsBytes = 64 * 1024;
inline constexpr size_t kAuditMaxSourceBytes = 256;
inline constexpr size_t kAuditMaxQueryLimit = 10000;

// InvalidArgument naming the first bad field, or OK.
Status ValidateAuditEvent(const AuditEvent& e);

class AuditLogImpl final : public AuditLog, public AuditSink {
 public:
  using NowFn = std::function<int64_t()>;  // wall-clock microseconds
  using ClosedFn = std::function<bool()>;  // true once the store is closing

  // `storage` may be null (a backend without audit tables): Record still
  // queues, Query, Verify and Prune fail with NotSupported.
  AuditLogImpl(const Options& options, WritePath* write_path,
               AuditStorage* storage, NowFn now, ClosedFn closed);

  // AuditLog.
  Status Record(AuditEvent event) override;
  Status RecordAsync(AuditEvent event) override;
  StatusOr<AuditPage> Query(const AuditQuery& query) override;
  StatusOr<AuditVerification> Verify() override;
  StatusOr<AuditPruneReport> Prune(int64_t before_us) override;

  // AuditSink: wait=true is Record, wait=false is RecordAsync.
  Status Record(AuditEvent event, bool wait) override;

 private:
  // FailedPrecondition once the store is closing; NotSupported without
  // storage.
  Status CheckReadable() const;

  const Durability durability_;
  WritePath* const write_path_;
  AuditStorage* const storage_;
  const NowFn now_;
  const ClosedFn closed_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_AUDIT_AUDIT_LOG_IMPL_H_
