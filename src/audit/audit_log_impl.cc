// Copyright 2026 The convstore Authors.

#include "audit/audit_log_impl.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "validation.h"

namespace convstore::internal {
namespace {

Status CheckField(std::string_view value, const char* name, size_t max,
                  bool required) {
  if (required && value.empty()) {
    return Status::InvalidArgument(std::string("audit event ") + name +
                                   " is required");
  }
  if (value.size() > max) {
    return Status::InvalidArgument(std::string("audit event ") + name + " is " +
                                   std::to_string(value.size()) +
                                   " bytes, more than " + std::to_string(max));
  }
  if (!IsValidUtf8(value)) {
    return Status::InvalidArgument(std::string("audit event ") + name +
                                   " is not valid UTF-8");
  }
  return Status::OK();
}

AuditRecord ToRecord(AuditRow&& row) {
  AuditRecord r;
  r.id = row.id;
  r.ts_us = row.ts_us;
  r.event = std::move(row.event);
  r.hash = HexOf(row.hash);
  r.prev_hash = HexOf(row.prev_hash);
  return r;
}

}  // namespace

Status ValidateAuditEvent(const AuditEvent& e) {
  struct Field {
    const std::string& value;
    const char* name;
    size_t max;
    bool required;
  };
  const Field fields[] = {
      {e.actor, "actor", kAuditMaxActorBytes, true},
      {e.action, "action", kAuditMaxActionBytes, true},
      {e.resource, "resource", kAuditMaxResourceBytes, false},
      {e.outcome, "outcome", kAuditMaxOutcomeBytes, true},
      {e.details_json, "details_json", kAuditMaxDetailsBytes, false},
      {e.source_address, "source_address", kAuditMaxSourceBytes, false},
  };
  for (const Field& f : fields) {
    Status s = CheckField(f.value, f.name, f.max, f.required);
    if (!s.ok()) return s;
  }
  if (!e.details_json.empty() && !IsJsonObject(e.details_json)) {
    return Status::InvalidArgument(
        "audit event details_json is not a JSON object");
  }
  // Verify trusts the anchor the newest audit.prune record names
  // (ChainChecker::Finish): only Prune writes one.
  if (e.action == "audit.prune") {
    return Status::InvalidArgument(
        "audit action audit.prune is reserved for AuditLog::Prune");
  }
  return Status::OK();
}

AuditLogImpl::AuditLogImpl(const Options& options, WritePath* write_path,
                           AuditStorage* storage, NowFn now, ClosedFn closed)
    : durability_(options.durability.audit),
      write_path_(write_path),
      storage_(storage),
      now_(std::move(now)),
      closed_(std::move(closed)) {}

Status AuditLogImpl::CheckReadable() const {
  if (closed_ != nullptr && closed_()) {
    return Status::FailedPrecondition("store is closed");
  }
  if (storage_ == nullptr) {
    return Status::NotSupported("this backend keeps no audit log");
  }
  return Status::OK();
}

Status AuditLogImpl::Record(AuditEvent event, bool wait) {
  Status s = ValidateAuditEvent(event);
  if (!s.ok()) return s;
  // RecordAsync never waits for the commit, but never drops to best-effort
  // either: an audit record is not shed silently.
  const Durability durability = wait || durability_ == Durability::kBestEffort
                                    ? durability_
                                    : Durability::kBatched;
  const size_t bytes = sizeof(WriteOp) + sizeof(AuditOp) + event.actor.size() +
                       event.action.size() + event.resource.size() +
                       event.outcome.size() + event.details_json.size() +
                       event.source_address.size();
  AuditOp op{AuditAppend{std::move(event), now_()}};
  StatusOr<uint64_t> lsn =
      write_path_->Submit(WritePayload(std::move(op)), bytes, durability);
  return lsn.status();
}

Status AuditLogImpl::Record(AuditEvent event) {
  return Record(std::move(event), /*wait=*/true);
}

Status AuditLogImpl::RecordAsync(AuditEvent event) {
  return Record(std::move(event), /*wait=*/false);
}

StatusOr<AuditPage> AuditLogImpl::Query(const AuditQuery& query) {
  if (query.limit == 0 || query.limit > kAuditMaxQueryLimit) {
    return Status::InvalidArgument("audit query limit must be in 1..10000");
  }
  if (query.from_us < 0 || query.to_us < 0 || query.before_id < 0) {
    return Status::InvalidArgument(
        "audit query bounds and before_id must not be negative");
  }
  Status s = CheckReadable();
  if (!s.ok()) return s;
  std::vector<AuditRow> rows;
  s = storage_->Select(query, &rows);
  if (!s.ok()) return s;
  AuditPage page;
  const bool more = rows.size() > query.limit;
  if (more) rows.resize(query.limit);
  page.records.reserve(rows.size());
  for (AuditRow& r : rows) page.records.push_back(ToRecord(std::move(r)));
  if (more) page.next_before_id = page.records.back().id;
  return page;
}

StatusOr<AuditVerification> AuditLogImpl::Verify() {
  Status s = CheckReadable();
  if (!s.ok()) return s;
  std::optional<ChainChecker> checker;
  s = storage_->ScanChain(
      [&](int64_t anchor_id, std::string anchor_hash) {
        checker.emplace(anchor_id, std::move(anchor_hash));
      },
      [&](AuditRow&& row) { return checker->Check(row); });
  if (!s.ok()) return s;
  if (!checker.has_value()) return Status::Internal("audit anchor not read");
  checker->Finish();
  return checker->result();
}

StatusOr<AuditPruneReport> AuditLogImpl::Prune(int64_t before_us) {
  if (before_us < 0) {
    return Status::InvalidArgument("audit prune time must not be negative");
  }
  Status s = CheckReadable();
  if (!s.ok()) return s;
  auto result = std::make_shared<AuditPruneResult>();
  AuditOp op{AuditPrune{before_us, now_(), result}};
  // Always sync: the report is read back from the committed op.
  StatusOr<uint64_t> lsn = write_path_->SubmitApplied(
      WritePayload(std::move(op)), sizeof(WriteOp) + sizeof(AuditOp),
      std::chrono::seconds(60));
  if (!lsn.ok()) return lsn.status();
  if (result->prune_record_id == 0) {
    // Refused and set aside, where the writer could not note the refusal
    // (out of memory in WatchRefusal): SubmitApplied said OK.
    return Status::Internal(
        "audit prune was refused by the database (see DeadLetters)");
  }
  AuditPruneReport report;
  report.deleted = result->deleted;
  report.anchor_id = result->anchor_id;
  report.anchor_hash = HexOf(result->anchor_hash);
  report.prune_record_id = result->prune_record_id;
  return report;
}

}  // namespace convstore::internal
