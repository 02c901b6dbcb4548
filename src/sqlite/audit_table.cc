// Copyright 2026 The convstore Authors.

#include "sqlite/audit_table.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>
#include <variant>

#include "audit/audit_chain.h"

namespace convstore::internal {
namespace {

constexpr const char* kColumns =
    "id, ts_us, actor, action, resource, outcome, details_json,"
    " source_address, prev_hash, hash";

const char* AuditWriterSql(int which) {
  switch (which) {
    case 0:
      return "INSERT INTO audit_log(id, ts_us, actor, action, resource,"
             " outcome, details_json, source_address, prev_hash, hash)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    case 1:
      return "SELECT coalesce(max(id), 0) FROM audit_log WHERE ts_us < ?1";
    case 2:
      return "SELECT hash FROM audit_log WHERE id = ?1";
    case 3:
      return "SELECT count(*) FROM audit_log WHERE id <= ?1";
    case 4:
      return "DELETE FROM audit_log WHERE id <= ?1";
    case 5:
      return "INSERT INTO audit_anchor(slot, anchor_id, anchor_hash,"
             " pruned_at_us) VALUES (1, ?1, ?2, ?3) ON CONFLICT(slot) DO"
             " UPDATE SET anchor_id = excluded.anchor_id,"
             " anchor_hash = excluded.anchor_hash,"
             " pruned_at_us = excluded.pruned_at_us";
    default:
      return "SELECT anchor_id, anchor_hash FROM audit_anchor WHERE slot = 1";
  }
}

const char* SqliteTypeName(int type) {
  switch (type) {
    case SQLITE_INTEGER:
      return "INTEGER";
    case SQLITE_FLOAT:
      return "REAL";
    case SQLITE_TEXT:
      return "TEXT";
    case SQLITE_BLOB:
      return "BLOB";
    default:
      return "NULL";
  }
}

AuditRow ReadRow(const Stmt& st) {
  AuditRow r;
  // Bytes read the same whatever the type, so the hash alone would pass a
  // retyped field that Query's filters (column = text) no longer match.
  // Checked first: reading a value converts it, and its type is then lost.
  static constexpr int kTypes[] = {
      SQLITE_INTEGER, SQLITE_INTEGER, SQLITE_TEXT, SQLITE_TEXT, SQLITE_TEXT,
      SQLITE_TEXT,    SQLITE_TEXT,    SQLITE_TEXT, SQLITE_BLOB, SQLITE_BLOB};
  static constexpr const char* kNames[] = {
      "id",      "ts_us",        "actor",          "action",    "resource",
      "outcome", "details_json", "source_address", "prev_hash", "hash"};
  for (int i = 0; i < 10; ++i) {
    if (st.ColumnType(i) != kTypes[i]) {
      r.type_error = std::string(kNames[i]) + " is stored as " +
                     SqliteTypeName(st.ColumnType(i)) + ", not " +
                     SqliteTypeName(kTypes[i]);
      break;
    }
  }
  r.id = st.Int(0);
  r.ts_us = st.Int(1);
  r.event.actor = st.Text(2);
  r.event.action = st.Text(3);
  r.event.resource = st.Text(4);
  r.event.outcome = st.Text(5);
  r.event.details_json = st.Text(6);
  r.event.source_address = st.Text(7);
  r.prev_hash.assign(st.BlobView(8));
  r.hash.assign(st.BlobView(9));
  return r;
}

// Runs a one-row query; *found false when it returned no row.
Status StepOnce(Stmt* st, bool* found) {
  Status s;
  *found = st->Step(&s);
  return s;
}

}  // namespace

SqliteAudit::SqliteAudit(std::string path, std::string vfs,
                         std::chrono::milliseconds busy_timeout, bool read_only)
    : reader_(std::move(path), std::move(vfs), busy_timeout, read_only) {
  committed_.hash = GenesisHash();
  pending_ = committed_;
}

SqliteAudit::~SqliteAudit() {
  ReleaseWriter();
  CloseReader();
}

void SqliteAudit::ReleaseWriter() {
  for (Stmt& st : writer_stmts_) st = Stmt();
}

Status SqliteAudit::Prepared(Db* writer, WriterStmt which, Stmt** out) {
  Stmt* st = &writer_stmts_[which];
  if (!st->prepared()) {
    Status s = writer->Prepare(AuditWriterSql(which), st);
    if (!s.ok()) return s;
  }
  *out = st;
  return Status::OK();
}

Status SqliteAudit::LoadHead(Db* writer) {
  Head head;
  head.hash = GenesisHash();
  Stmt st;
  Status s = writer->Prepare(
      "SELECT id, ts_us, hash FROM audit_log ORDER BY id DESC LIMIT 1", &st);
  if (!s.ok()) return s;
  if (st.Step(&s)) {
    head.id = st.Int(0);
    head.ts_us = st.Int(1);
    head.hash.assign(st.BlobView(2));
  } else if (s.ok()) {
    Stmt anchor;
    s = writer->Prepare(AuditWriterSql(kGetAnchor), &anchor);
    if (!s.ok()) return s;
    if (anchor.Step(&s)) {
      head.id = anchor.Int(0);
      head.hash.assign(anchor.BlobView(1));
    }
  }
  if (!s.ok()) return s.WithPrefix("loading the audit chain head");
  committed_ = head;
  pending_ = head;
  return Status::OK();
}

Status SqliteAudit::Append(Db* writer, const AuditEvent& event, int64_t ts_us,
                           int64_t* id) {
  Stmt* st = nullptr;
  Status s = Prepared(writer, kInsert, &st);
  if (!s.ok()) return s;
  Head next;
  next.id = pending_.id + 1;
  next.ts_us = std::max(ts_us, pending_.ts_us);
  next.hash = AuditRecordHash(pending_.hash, next.id, next.ts_us, event);
  if (next.hash.size() != kAuditHashBytes) {
    return Status::Internal("SHA-256 is not available from OpenSSL");
  }
  st->Bind(1, next.id);
  st->Bind(2, next.ts_us);
  st->BindText(3, event.actor);
  st->BindText(4, event.action);
  st->BindText(5, event.resource);
  st->BindText(6, event.outcome);
  st->BindText(7, event.details_json);
  st->BindText(8, event.source_address);
  st->BindBlob(9, pending_.hash);
  st->BindBlob(10, next.hash);
  s = st->Exec();
  if (!s.ok()) return s;
  pending_ = std::move(next);
  *id = pending_.id;
  return Status::OK();
}

Status SqliteAudit::Prune(Db* writer, const AuditPrune& op) {
  AuditPruneResult result;
  Stmt* st = nullptr;
  bool found = false;
  int64_t upto = 0;
  Status s = Prepared(writer, kPruneUpto, &st);
  if (!s.ok()) return s;
  st->Bind(1, op.before_us);
  s = StepOnce(st, &found);
  if (found) upto = st->Int(0);
  st->Reset();
  if (!s.ok()) return s;
  if (upto > 0) {
    s = Prepared(writer, kPruneHash, &st);
    if (!s.ok()) return s;
    st->Bind(1, upto);
    s = StepOnce(st, &found);
    if (found) result.anchor_hash.assign(st->BlobView(0));
    st->Reset();
    if (!s.ok()) return s;
    s = Prepared(writer, kPruneCount, &st);
    if (!s.ok()) return s;
    st->Bind(1, upto);
    s = StepOnce(st, &found);
    if (found) result.deleted = st->Int(0);
    st->Reset();
    if (!s.ok()) return s;
    s = Prepared(writer, kPruneDelete, &st);
    if (!s.ok()) return s;
    st->Bind(1, upto);
    s = st->Exec();
    if (!s.ok()) return s;
    s = Prepared(writer, kSetAnchor, &st);
    if (!s.ok()) return s;
    st->Bind(1, upto);
    st->BindBlob(2, result.anchor_hash);
    st->Bind(3, op.ts_us);
    s = st->Exec();
    if (!s.ok()) return s;
    result.anchor_id = upto;
  } else {
    s = Prepared(writer, kGetAnchor, &st);
    if (!s.ok()) return s;
    s = StepOnce(st, &found);
    if (found) {
      result.anchor_id = st->Int(0);
      result.anchor_hash.assign(st->BlobView(1));
    }
    st->Reset();
    if (!s.ok()) return s;
  }
  AuditEvent e;
  e.actor = "system";
  e.action = "audit.prune";
  e.outcome = "success";
  e.details_json = nlohmann::json{{"deleted", result.deleted},
                                  {"before_us", op.before_us},
                                  {"anchor_id", result.anchor_id},
                                  {"anchor_hash", HexOf(result.anchor_hash)}}
                       .dump();
  s = Append(writer, e, op.ts_us, &result.prune_record_id);
  if (!s.ok()) return s;
  if (op.result != nullptr) *op.result = std::move(result);
  return Status::OK();
}

Status SqliteAudit::Apply(Db* writer, const AuditOp& op) {
  return std::visit(
      [&](const auto& r) -> Status {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, AuditAppend>) {
          int64_t id = 0;
          return Append(writer, r.event, r.ts_us, &id);
        } else {
          return Prune(writer, r);
        }
      },
      op.record);
}

Status SqliteAudit::Read(const std::function<Status(Db*)>& fn) {
  return reader_.Read(fn);
}

void SqliteAudit::CloseReader() { reader_.Close(); }

Status SqliteAudit::Select(const AuditQuery& query,
                           std::vector<AuditRow>* out) {
  out->clear();
  std::string sql =
      std::string("SELECT ") + kColumns + " FROM audit_log WHERE id < ?1";
  // ?2.. are the filters that are set, in this order.
  std::vector<std::function<void(Stmt*, int)>> binds;
  if (query.from_us > 0) {
    sql += " AND ts_us >= ?" + std::to_string(binds.size() + 2);
    binds.push_back([&](Stmt* st, int i) { st->Bind(i, query.from_us); });
  }
  if (query.to_us > 0) {
    sql += " AND ts_us < ?" + std::to_string(binds.size() + 2);
    binds.push_back([&](Stmt* st, int i) { st->Bind(i, query.to_us); });
  }
  const std::pair<const char*, const std::optional<std::string>*> text[] = {
      {"actor", &query.actor},
      {"action", &query.action},
      {"resource", &query.resource},
      {"outcome", &query.outcome}};
  for (const auto& [column, value] : text) {
    if (!value->has_value()) continue;
    sql += std::string(" AND ") + column + " = ?" +
           std::to_string(binds.size() + 2);
    binds.push_back([v = value](Stmt* st, int i) { st->BindText(i, **v); });
  }
  sql += " ORDER BY id DESC LIMIT ?" + std::to_string(binds.size() + 2);
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(sql, &st);
    if (!s.ok()) return s;
    st.Bind(1, query.before_id > 0 ? query.before_id
                                   : std::numeric_limits<int64_t>::max());
    for (size_t i = 0; i < binds.size(); ++i) {
      binds[i](&st, static_cast<int>(i) + 2);
    }
    st.Bind(static_cast<int>(binds.size()) + 2,
            static_cast<int64_t>(query.limit) + 1);
    while (st.Step(&s)) out->push_back(ReadRow(st));
    return s;
  });
}

Status SqliteAudit::ScanChain(
    const std::function<void(int64_t anchor_id, std::string anchor_hash)>&
        anchor,
    const std::function<bool(AuditRow&&)>& visit) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(AuditWriterSql(kGetAnchor), &st);
    if (!s.ok()) return s;
    int64_t anchor_id = 0;
    std::string anchor_hash;
    if (st.Step(&s)) {
      anchor_id = st.Int(0);
      anchor_hash.assign(st.BlobView(1));
    }
    if (!s.ok()) return s;
    anchor(anchor_id, std::move(anchor_hash));
    Stmt rows;
    s = db->Prepare(
        std::string("SELECT ") + kColumns + " FROM audit_log ORDER BY id",
        &rows);
    if (!s.ok()) return s;
    while (rows.Step(&s)) {
      if (!visit(ReadRow(rows))) break;
    }
    return s;
  });
}

}  // namespace convstore::internal
