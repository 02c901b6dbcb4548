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
    default:
      return "UPDATE api_keys SET request_count = ?2, last_used_us = ?3"
             " WHERE id = ?1";
  }
}

}  // namespace

SqliteKeys::SqliteKeys(std::string path, std::string vfs,
                       std::chrono::milliseconds busy_timeout, bool read_only)
    : path_(std::move(path)),
      vfs_(std::move(vfs)),
      busy_timeout_(busy_timeout),
      read_only_(read_only) {}

SqliteKeys::~SqliteKeys() { ReleaseWriter(); }

void SqliteKeys::ReleaseWriter() {
  for (Stmt& st : writer_stmts_) st = Stmt();
}

Status SqliteKeys::Prepared(Db* writer, WriterStmt which, Stmt** out) {
  Stmt* st = &writer_stmts_[which];
  if (!st->prepared()) {
    Status s = writer->Prepare(KeysWriterSql(which), st);
    if (!s.ok()) return s;
  }
  *out = st;
  return Status::OK();
}

Status SqliteKeys::Apply(Db* writer, const KeyOp& op) {
  if (const auto* put = std::get_if<KeyPut>(&op.record)) {
    Stmt* st = nullptr;
    Status s = Prepared(writer, kPut, &st);
    if (!s.ok()) return s;
    const KeyRow& r = put->row;
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
  const auto& flush = std::get<KeyUsageFlush>(op.record);
  Stmt* st = nullptr;
  Status s = Prepared(writer, kUsage, &st);
  if (!s.ok()) return s;
  for (const KeyUsage& u : flush.keys) {
    st->BindText(1, u.id);
    st->Bind(2, u.request_count);
    st->Bind(3, u.last_used_us);
    s = st->Exec();
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status SqliteKeys::ScanAll(const std::function<bool(KeyRow&&)>& visit) {
  MutexLock lock(&mu_);
  std::unique_ptr<Db> db;
  Status s = read_only_ ? Db::OpenReadOnly(path_, &db, vfs_)
                        : Db::Open(path_, /*create=*/false, &db, vfs_);
  if (s.ok()) {
    s = db->Exec("PRAGMA busy_timeout = " +
                 std::to_string(busy_timeout_.count()));
  }
  if (!s.ok()) return s;
  Stmt st;
  s = db->Prepare(
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
}

}  // namespace convstore::internal
