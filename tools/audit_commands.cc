// Copyright 2026 The convstore Authors.

#include "audit_commands.h"

#include <string>
#include <vector>

#include "commands.h"
#include "json_output.h"
#include "printable.h"
#include "table.h"

namespace convstore::tools {
Status RunAuditVerify(const AuditVerifyArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  StatusOr<AuditVerification> v = (*store)->audit().Verify();
  if (!v.ok()) return CloseAfter(**store, v.status());
  if (args.json) {
    PrintJson(json{{"ok", v->ok},
                   {"records_checked", v->records_checked},
                   {"anchor_id", v->anchor_id},
                   {"anchor_hash", v->anchor_hash},
                   {"last_id", v->last_id},
                   {"last_hash", v->last_hash},
                   {"broken_id", v->broken_id},
                   {"expected_id", v->expected_id},
                   {"reason", AuditBreakName(v->reason)},
                   {"detail", v->detail}},
              out);
  } else if (v->ok) {
    out << "audit chain ok: " << v->records_checked << " records";
    if (v->anchor_id > 0) out << " after anchor " << v->anchor_id;
    out << "\nhead: id " << v->last_id << " hash " << v->last_hash << "\n";
  } else {
    out << "audit chain BROKEN at id " << v->broken_id << " ("
        << AuditBreakName(v->reason) << "): " << Printable(v->detail) << "\n";
  }
  Status s;
  if (!v->ok) {
    s = Status::Corruption("audit chain broken at id " +
                           std::to_string(v->broken_id));
  }
  return CloseAfter(**store, s);
}

Status RunAuditList(const AuditListArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  AuditQuery q;
  if (!args.actor.empty()) q.actor = args.actor;
  if (!args.action.empty()) q.action = args.action;
  q.limit = args.limit;
  StatusOr<AuditPage> page = (*store)->audit().Query(q);
  if (!page.ok()) return CloseAfter(**store, page.status());
  if (args.json) {
    json arr = json::array();
    for (const AuditRecord& r : page->records) {
      arr.push_back(json{{"id", r.id},
                         {"ts_us", r.ts_us},
                         {"actor", r.event.actor},
                         {"action", r.event.action},
                         {"resource", r.event.resource},
                         {"outcome", r.event.outcome},
                         {"details_json", r.event.details_json},
                         {"source_address", r.event.source_address},
                         {"prev_hash", r.prev_hash},
                         {"hash", r.hash}});
    }
    PrintJson(arr, out);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const AuditRecord& r : page->records) {
      rows.push_back({std::to_string(r.id), FormatTimestamp(r.ts_us),
                      Printable(r.event.actor), Printable(r.event.action),
                      Printable(r.event.resource), Printable(r.event.outcome),
                      Printable(r.event.details_json)});
    }
    PrintTable({"ID", "TIME (UTC)", "ACTOR", "ACTION", "RESOURCE", "OUTCOME",
                "DETAILS"},
               {true, false, false, false, false, false, false}, rows, out);
  }
  return CloseAfter(**store, Status::OK());
}

}  // namespace convstore::tools
