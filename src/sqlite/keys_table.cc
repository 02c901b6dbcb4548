// Copyright 2026 The convstore Authors.

#include "sqlite/keys_table.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>
#include <variant>

#include "keys/key_secret.h"

namespace convstore::internal {
namespace {

using nlohmann::json;

const char* KeysWriterSql(int which) {
  switch (which) {
    case 0:
      return "INSERT INTO api_keys(id, prefix, name, owner, scopes_json, hash,"
             " created_us, expires_us, revoked_us, rate_per_s, burst,"
             " rotated_from, replaced_by, request_count, last_used_us)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
             " ?14, ?15)"
             // A key's end only ever comes closer: a revocation, a
             // successor or a shortened expiry already stored stays, even
             // when a put made from an older copy of the key (another
             // store on the file) would undo it.
             " ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
             " owner = excluded.owner, scopes_json = excluded.scopes_json,"
             " hash = excluded.hash,"
             " expires_us = CASE WHEN api_keys.expires_us = 0"
             " THEN excluded.expires_us WHEN excluded.expires_us = 0"
             " THEN api_keys.expires_us"
             " ELSE min(api_keys.expires_us, excluded.expires_us) END,"
             " revoked_us = CASE WHEN api_keys.revoked_us != 0"
             " THEN api_keys.revoked_us ELSE excluded.revoked_us END,"
             " rate_per_s = excluded.rate_per_s, burst = excluded.burst,"
             " rotated_from = excluded.rotated_from,"
             " replaced_by = CASE WHEN api_keys.replaced_by != ''"
             " THEN api_keys.replaced_by ELSE excluded.replaced_by END";
    case 1:
      return "UPDATE api_keys SET request_count = ?2, last_used_us = ?3"
             " WHERE id = ?1";
    case 2:
      return "SELECT revoked_us, replaced_by FROM api_keys WHERE id = ?1";
    default:
      return "INSERT INTO store_meta(key, value) VALUES ('keys_version', 1)"
             " ON CONFLICT(key) DO UPDATE SET value = value + 1";
  }
}

}  // namespace

SqliteKeys::SqliteKeys(std::string path, std::string vfs,
                       std::chrono::milliseconds busy_timeout, bool read_only)
    : reader_(std::move(path), std::move(vfs), busy_timeout, read_only) {}

SqliteKeys::~SqliteKeys() {
  ReleaseWriter();
  CloseReader();
}

void SqliteKeys::ReleaseWriter() {
  for (Stmt& st : writer_stmts_) st = Stmt();
}

void SqliteKeys::CloseReader() { reader_.Close(); }

Status SqliteKeys::Prepared(Db* writer, WriterStmt which, Stmt** out) {
  Stmt* st = &writer_stmts_[which];
  if (!st->prepared()) {
    Status s = writer->Prepare(KeysWriterSql(which), st);
    if (!s.ok()) return s;
  }
  *out = st;
  return Status::OK();
}

Status SqliteKeys::Put(Db* writer, const KeyRow& r) {
  Stmt* st = nullptr;
  Status s = Prepared(writer, kPut, &st);
  if (!s.ok()) return s;
  // Bound text must outlive Exec: keep these locals alive until then.
  const std::string prefix = KeyPrefix(r.id);
  const std::string scopes =
      json(r.scopes).dump(-1, ' ', false, json::error_handler_t::replace);
  st->BindText(1, r.id);
  st->BindText(2, prefix);
  st->BindText(3, r.name);
  st->BindText(4, r.owner);
  st->BindText(5, scopes);
  st->BindBlob(6, r.hash);
  st->Bind(7, r.created_us);
  st->Bind(8, r.expires_us);
  st->Bind(9, r.revoked_us);
  st->BindDouble(10, r.rate_per_s);
  st->Bind(11, r.burst);
  st->BindText(12, r.rotated_from);
  st->BindText(13, r.replaced_by);
  st->Bind(14, r.request_count);
  st->Bind(15, r.last_used_us);
  return st->Exec();
}

Status SqliteKeys::Rotate(Db* writer, const KeyOp& op, const KeyRotate& rot,
                          bool* applied) {
  // Decided here, under SQLite's write lock, on the stored row: this
  // store's memory may be stale (another store on the file revoked or
  // rotated the key since it last looked), and a rotation from a stale
  // copy must not give a revoked key a live successor, nor a key two.
  Stmt* check = nullptr;
  Status s = Prepared(writer, kCheckOld, &check);
  if (!s.ok()) return s;
  check->BindText(1, rot.old_end.id);
  bool found = false;
  int64_t revoked_us = 0;
  std::string replaced_by;
  if (check->Step(&s)) {
    found = true;
    revoked_us = check->Int(0);
    replaced_by = check->Text(1);
  }
  check->Reset();
  if (!s.ok()) return s;
  KeyOutcome::Refusal refusal = KeyOutcome::kNone;
  if (!found) {
    refusal = KeyOutcome::kMissing;
  } else if (revoked_us != 0) {
    refusal = KeyOutcome::kRevoked;
  } else if (!replaced_by.empty()) {
    refusal = KeyOutcome::kRotated;
  }
  // Set on every attempt: a batch applied again after a failed one decides
  // again, and the attempt that commits is the one the caller reads.
  if (op.outcome != nullptr) op.outcome->Set(refusal, replaced_by);
  *applied = refusal == KeyOutcome::kNone;
  if (!*applied) return Status::OK();
  s = Put(writer, rot.successor);
  if (s.ok()) s = Put(writer, rot.old_end);
  return s;
}

Status SqliteKeys::Apply(Db* writer, const KeyOp& op, bool* applied) {
  *applied = true;
  if (const auto* flush = std::get_if<KeyUsageFlush>(&op.record)) {
    Stmt* st = nullptr;
    Status s = Prepared(writer, kUsage, &st);
    if (!s.ok()) return s;
    for (const KeyUsage& u : flush->keys) {
      st->BindText(1, u.id);
      st->Bind(2, u.request_count);
      st->Bind(3, u.last_used_us);
      s = st->Exec();
      if (!s.ok()) return s;
    }
    return Status::OK();
  }
  Status s;
  if (const auto* put = std::get_if<KeyPut>(&op.record)) {
    s = Put(writer, put->row);
  } else {
    s = Rotate(writer, op, std::get<KeyRotate>(op.record), applied);
  }
  if (!s.ok()) return s;
  // Raised for a refused rotation too: the store that proposed it then
  // reads the keys again and drops the successor it holds in memory.
  Stmt* bump = nullptr;
  s = Prepared(writer, kBumpVersion, &bump);
  if (s.ok()) s = bump->Exec();
  return s;
}

StatusOr<int64_t> SqliteKeys::DefinitionsVersion() {
  MutexLock lock(&mu_);
  int64_t version = version_;
  int64_t seen = seen_data_version_;
  Status s = reader_.Read([&](Db* db) {
    int64_t data_version = 0;
    Status r = db->QueryInt("PRAGMA data_version", &data_version);
    if (!r.ok() || data_version == seen) return r;
    // Someone committed: whether it was a key change is in one row. A file
    // without the row (no key change yet) reads as 0.
    r = db->QueryInt(
        "SELECT coalesce((SELECT value FROM store_meta"
        " WHERE key = 'keys_version'), 0)",
        &version);
    if (r.ok()) seen = data_version;
    return r;
  });
  if (!s.ok()) return s;
  seen_data_version_ = seen;
  version_ = version;
  return version;
}

Status SqliteKeys::ScanAll(const std::function<bool(KeyRow&&)>& visit) {
  return reader_.Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        "SELECT id, name, owner, scopes_json, hash, created_us, expires_us,"
        " revoked_us, rate_per_s, burst, rotated_from, replaced_by,"
        " request_count, last_used_us FROM api_keys ORDER BY created_us, id",
        &st);
    if (!s.ok()) return s;
    while (st.Step(&s)) {
      KeyRow row;
      row.id = st.Text(0);
      row.name = st.Text(1);
      row.owner = st.Text(2);
      json scopes = json::parse(st.TextView(3), nullptr,
                                /*allow_exceptions=*/false);
      if (scopes.is_array()) {
        for (const json& sc : scopes) {
          if (sc.is_string()) row.scopes.push_back(sc.get<std::string>());
        }
      }
      row.hash.assign(st.BlobView(4));
      row.created_us = st.Int(5);
      row.expires_us = st.Int(6);
      row.revoked_us = st.Int(7);
      row.rate_per_s = st.Double(8);
      row.burst = st.Int(9);
      row.rotated_from = st.Text(10);
      row.replaced_by = st.Text(11);
      row.request_count = st.Int(12);
      row.last_used_us = st.Int(13);
      if (!visit(std::move(row))) break;
    }
    return s;
  });
}

}  // namespace convstore::internal
