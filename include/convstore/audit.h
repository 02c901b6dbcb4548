// Copyright 2026 The convstore Authors.
//
// AuditLog: an append-only, tamper-evident log of who did what, kept in the
// store's database next to the data it describes. Get it from
// Store::audit().
//
//   convstore::AuditLog& audit = store->audit();
//   convstore::AuditEvent e;
//   e.actor = "user-7";
//   e.action = "export.start";
//   e.resource = "conv-42";
//   e.outcome = "success";
//   e.details_json = R"({"format":"jsonl"})";
//   convstore::Status s = audit.Record(e);        // committed when OK
//   auto page = audit.Query({.actor = "user-7"});  // newest first
//   auto v = audit.Verify();  // v->ok, or v->broken_id and v->reason
//
// CHAIN: every record gets the next id (1, 2, 3, ... in commit order) and a
// commit timestamp, and stores hash = SHA-256(prev_hash || encoding of its
// id, timestamp and event fields), where prev_hash is the hash of the record
// before it (32 zero bytes for record 1). The encoding is length-prefixed
// (docs/schema.md, version 6), so bytes cannot be moved from one field to
// another. Records are linked on the store's single writer thread, so
// Record calls from many threads still form one linear chain. Editing,
// deleting, inserting or reordering a stored record breaks the chain at
// that record, and Verify reports the first such break.
//
// LIMITS OF TAMPER EVIDENCE: the chain is not keyed. Someone who can write
// the file and knows this format can rewrite the chain from a point on, or
// cut records off its end, and still have it verify. Record Verify's
// head (last_id, last_hash) somewhere the database's writers cannot reach
// (a ticket, another system's log) and compare it later to detect that.
//
// RETENTION: Prune(before_us) deletes the oldest records and keeps the rest
// verifiable: it stores the id and hash of the last deleted record as the
// anchor, and appends an "audit.prune" record saying how many were dropped.
// Verify then starts from the anchor, which must be the one the newest
// "audit.prune" record names (Record refuses that action). Old rows deleted
// any other way break the chain (kAnchor), even with the anchor rewritten.
//
// AUTOMATIC RECORDS (actor "system"): DeleteConversation
// ("conversation.delete", resource = the conversation id), each
// PruneMessages run ("retention.messages"), each analytics Cleanup run
// ("retention.analytics"), and each Prune ("audit.prune").
//
// DURABILITY (docs/durability.md, "Audit records"): Record uses the class
// Options::durability.audit. With kSync (default) it returns once the
// record is committed. With kBatched it returns once queued; a process
// crash can lose the records of the last batch window. A record is never
// shed silently: if it cannot be queued the call fails. A record the
// database refuses for good becomes a dead letter of kind "audit".
//
// Thread safety: every method may be called from any thread at once.
// Query and Verify read committed records on a connection of their own (a
// record whose Record call has not returned OK may not be seen yet; with
// kSync every acknowledged record is). Verify holds that connection for its
// whole walk, so a Query waits for a running Verify.

#ifndef CONVSTORE_AUDIT_H_
#define CONVSTORE_AUDIT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convstore/audit_types.h"
#include "convstore/status.h"

namespace convstore {

// One stored record.
struct AuditRecord {
  // Position in the chain: 1 for the first record ever, +1 for each next.
  int64_t id = 0;
  // Wall-clock microseconds since the epoch when the record was made
  // (never earlier than the record before it).
  int64_t ts_us = 0;
  AuditEvent event;
  // SHA-256 of this record and of the one before it, lower-case hex.
  std::string hash;
  std::string prev_hash;
};

// Which records Query returns. Every set filter must match (exact,
// byte-wise comparison).
struct AuditQuery {
  // Records with from_us <= ts_us < to_us. 0: no bound on that side.
  int64_t from_us = 0;
  int64_t to_us = 0;
  std::optional<std::string> actor{};
  std::optional<std::string> action{};
  std::optional<std::string> resource{};
  std::optional<std::string> outcome{};
  // Records per page, 1..10000. Default 100.
  size_t limit = 100;
  // Paging: only records with id < before_id (pass the previous page's
  // next_before_id). 0: from the newest.
  int64_t before_id = 0;
};

struct AuditPage {
  // Newest first (descending id).
  std::vector<AuditRecord> records;
  // The before_id of the next page; 0 when this page is the last.
  int64_t next_before_id = 0;
};

// Why the chain is broken at AuditVerification::broken_id.
enum class AuditBreak {
  kNone = 0,
  // The record's stored hash is not the hash of its content: a field was
  // edited (or the hash was).
  kContentHash,
  // The record's prev_hash is not the hash of the record before it: a
  // record was replaced, or records were reordered.
  kPrevHash,
  // The record's id is not the previous id + 1: a record was deleted (or,
  // for the first record without an anchor, the oldest records were).
  kGap,
  // The first record does not continue the prune anchor (its id is not
  // anchor_id + 1, or its prev_hash not the anchor hash), or the anchor is
  // not the one the newest audit.prune record names (broken_id is that
  // record, or anchor_id + 1 when there is none): old records were deleted
  // outside Prune, or the anchor was edited.
  kAnchor,
  // A field is stored with another SQLite type than the store writes (a
  // text field as a BLOB, the time as text): its bytes still hash the
  // same, but Query's filters on it no longer match the record, which a
  // retype thus hides from an investigator.
  kColumnType,
};

// "ok", "content hash mismatch", "prev-hash mismatch", "gap in ids",
// "anchor mismatch", "column type mismatch".
const char* AuditBreakName(AuditBreak reason);

struct AuditVerification {
  bool ok = true;
  // Records checked (including the broken one).
  int64_t records_checked = 0;
  // The prune anchor verification started from (0 and 64 zeros: none).
  int64_t anchor_id = 0;
  std::string anchor_hash;
  // The newest record and its hash (hex) when ok: the head to witness
  // elsewhere. 0 and the anchor hash when there are no records.
  int64_t last_id = 0;
  std::string last_hash;
  // When !ok: the id of the first record at which the chain breaks, the id
  // it should have had there (they differ for kGap and kAnchor), the reason
  // and a human-readable detail.
  int64_t broken_id = 0;
  int64_t expected_id = 0;
  AuditBreak reason = AuditBreak::kNone;
  std::string detail;
};

struct AuditPruneReport {
  // Records deleted by this run.
  int64_t deleted = 0;
  // The anchor after the run (the last deleted record; unchanged when
  // nothing was deleted; 0 when there has never been one).
  int64_t anchor_id = 0;
  std::string anchor_hash;  // hex
  // Id of the "audit.prune" record this run appended.
  int64_t prune_record_id = 0;
};

class AuditLog {
 public:
  virtual ~AuditLog() = default;

  // Appends `event` with the durability class Options::durability.audit.
  // InvalidArgument (and nothing written) when actor, action or outcome is
  // empty, a field is longer than its limit (audit_types.h; details_json
  // at most 64 KiB), a field is not valid UTF-8, or details_json is neither
  // empty nor a JSON object. ResourceExhausted if the queue stays full,
  // FailedPrecondition after Close; with kSync, the writer's error (or
  // DeadlineExceeded) if the record could not be committed in time (it
  // stays queued and is committed when the writer recovers).
  virtual Status Record(AuditEvent event) = 0;

  // As Record, but returns once the record is queued (as the kBatched
  // class), whatever Options::durability.audit says. For hot paths; the
  // record is committed with the next batch (Store::Flush waits for it).
  virtual Status RecordAsync(AuditEvent event) = 0;

  // Committed records matching `query`, newest first. InvalidArgument for
  // a limit out of range or a negative bound.
  virtual StatusOr<AuditPage> Query(const AuditQuery& query) = 0;

  // Walks the whole chain, oldest first, from the anchor (or genesis), and
  // reports whether it is intact, or where it first breaks. Reads and
  // hashes every record once, so its cost grows with the log (Prune keeps
  // it bounded); the walk is one read transaction, so writes go on
  // meanwhile and are not seen.
  virtual StatusOr<AuditVerification> Verify() = 0;

  // Deletes the records made before `before_us` (wall-clock microseconds
  // since the epoch), moves the anchor to the last of them and appends an
  // "audit.prune" record (actor "system"), all in one transaction; returns
  // once that is committed. Prune does not verify what it deletes: run
  // Verify first if that matters.
  virtual StatusOr<AuditPruneReport> Prune(int64_t before_us) = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_AUDIT_H_
