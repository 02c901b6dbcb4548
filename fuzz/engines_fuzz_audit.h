// Copyright 2026 The convstore Authors.
//
// engines_ops_fuzzer.cc: AuditLog calls (Record, RecordAsync, Query, Verify,
// Prune) checked against a count of the records of actor "fz" and the
// newest of them.

#ifndef CONVSTORE_FUZZ_ENGINES_FUZZ_AUDIT_H_
#define CONVSTORE_FUZZ_ENGINES_FUZZ_AUDIT_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convstore/convstore.h"
#include "engines_fuzz_input.h"
#include "fuzz_util.h"

namespace convstore::fuzz {

class AuditOps {
 public:
  explicit AuditOps(FuzzedDataProvider& in) : in_(in) {}

  void set_store(Store* store) { store_ = store; }

  // After a reopen: the chain verifies and every record is there.
  void CheckAll() {
    VerifyAudit();
    CountAudit();
  }

  void RecordAudit() {
    AuditEvent e;
    static const char* const kActors[] = {"fz", "fz", "user-7"};
    static const char* const kActions[] = {"export.start", "key.create",
                                           "audit.prune", ""};
    static const char* const kOutcomes[] = {"success", "denied", ""};
    e.actor = Pick(in_, kActors);
    e.action = Pick(in_, kActions);
    e.resource = in_.ConsumeBool() ? "conv-42" : Str(in_);
    e.outcome = Pick(in_, kOutcomes);
    Valid json;
    e.details_json = Json(in_, &json);
    e.source_address = in_.ConsumeBool() ? "" : Str(in_);
    const Valid v = TextRule(e.actor, 1, 256) & TextRule(e.action, 1, 256) &
                    If(e.action != "audit.prune") &
                    TextRule(e.resource, 0, 1024) & TextRule(e.outcome, 1, 64) &
                    json & TextRule(e.source_address, 0, 256);
    const bool async = in_.ConsumeBool();
    Status s =
        async ? store_->audit().RecordAsync(e) : store_->audit().Record(e);
    Expect(s, v, "audit Record");
    if (s.ok() && e.actor == "fz") {
      ++fz_records_;
      last_fz_ = e;
    }
  }

  // The records of actor "fz", after a Flush: as many as recorded, the
  // newest as recorded, in order.
  void CountAudit() {
    Check(store_->Flush().ok(), "Flush");
    AuditQuery q;
    q.actor = "fz";
    q.limit = 10000;
    StatusOr<AuditPage> p = store_->audit().Query(q);
    Check(p.ok(), "audit Query: " + p.status().ToString());
    Check(static_cast<int64_t>(p->records.size()) == fz_records_,
          "audit has " + std::to_string(p->records.size()) +
              " records of fz, model " + std::to_string(fz_records_));
    for (size_t i = 0; i < p->records.size(); ++i) {
      const AuditRecord& r = p->records[i];
      Check(r.event.actor == "fz", "audit Query filter");
      if (i > 0) {
        Check(r.id < p->records[i - 1].id && r.ts_us <= p->records[i - 1].ts_us,
              "audit Query order");
      }
    }
    if (fz_records_ > 0) {
      const AuditEvent& got = p->records[0].event;
      const AuditEvent& want = *last_fz_;
      Check(got.action == want.action && got.resource == want.resource &&
                got.outcome == want.outcome &&
                got.details_json == want.details_json &&
                got.source_address == want.source_address,
            "audit record reads back different: " + Show(got.resource));
    }
  }

  void QueryAudit() {
    if (in_.ConsumeBool()) {
      CountAudit();
      return;
    }
    AuditQuery q;
    static const size_t kLimits[] = {1, 3, 10000, 0, 10001};
    q.limit = in_.PickValueInArray(kLimits);
    q.from_us = in_.ConsumeBool() ? 0 : Int64(in_);
    q.to_us = in_.ConsumeBool() ? 0 : Int64(in_);
    q.before_id = in_.ConsumeBool() ? 0 : Int64(in_);
    if (in_.ConsumeBool()) q.actor = Str(in_);
    if (in_.ConsumeBool()) q.action = Str(in_);
    if (in_.ConsumeBool()) q.resource = Str(in_);
    if (in_.ConsumeBool()) q.outcome = Str(in_);
    const Valid v = If(q.limit >= 1 && q.limit <= 10000 && q.from_us >= 0 &&
                       q.to_us >= 0 && q.before_id >= 0);
    StatusOr<AuditPage> p = store_->audit().Query(q);
    Expect(p.status(), v, "audit Query");
    if (p.ok()) Check(p->records.size() <= q.limit, "audit Query limit");
  }

  void VerifyAudit() {
    StatusOr<AuditVerification> v = store_->audit().Verify();
    Check(v.ok(), "audit Verify: " + v.status().ToString());
    Check(v->ok, "audit chain broken at " + std::to_string(v->broken_id) +
                     ": " + AuditBreakName(v->reason) + " " + v->detail);
    Check(v->last_id >= last_audit_id_, "audit head went back");
    last_audit_id_ = v->last_id;
  }

  void PruneAudit() {
    static const int64_t kBefore[] = {0,     1, kOld, -1, kMin64, 3'600'000'000,
                                      kMax64};
    int64_t before = in_.PickValueInArray(kBefore);
    if (before == 3'600'000'000) before += Now();
    StatusOr<AuditPruneReport> r = store_->audit().Prune(before);
    Expect(r.status(), If(before >= 0), "audit Prune");
    if (!r.ok()) return;
    Check(r->prune_record_id > 0, "audit Prune record");
    if (before <= kOld) {
      Check(r->deleted == 0, "audit Prune deleted new records");
    } else {
      Check(r->deleted >= fz_records_, "audit Prune kept old records");
      fz_records_ = 0;
      last_fz_.reset();
    }
    VerifyAudit();
  }

 private:
  FuzzedDataProvider& in_;
  Store* store_ = nullptr;
  int64_t fz_records_ = 0;
  std::optional<AuditEvent> last_fz_;
  int64_t last_audit_id_ = 0;
};

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_ENGINES_FUZZ_AUDIT_H_
