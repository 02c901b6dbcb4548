// Copyright 2026 The convstore Authors.

#include "sqlite/cache_table.h"

#include <type_traits>
#include <utility>
#include <variant>

namespace convstore::internal {
namespace {

const char* CacheWriterSql(int which) {
  switch (which) {
    case 0:
      return "INSERT INTO cache_entries(ns, key, value, expires_at_us,"
             " updated_at_us) VALUES (?1, ?2, ?3, ?4, ?5)"
             " ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value,"
             " expires_at_us = excluded.expires_at_us,"
             " updated_at_us = excluded.updated_at_us";
    case 1:
      return "DELETE FROM cache_entries WHERE ns = ?1 AND key = ?2";
    default:
      return "DELETE FROM cache_entries WHERE id IN (SELECT id FROM"
             " cache_entries WHERE expires_at_us > 0 AND expires_at_us <= ?1"
             " ORDER BY expires_at_us LIMIT ?2)";
  }
}

}  // namespace

SqliteCache::SqliteCache(std::string path, std::string vfs,
                         std::chrono::milliseconds busy_timeout, bool read_only)
    : reader_(std::move(path), std::move(vfs), busy_timeout, read_only) {}

SqliteCache::~SqliteCache() {
  ReleaseWriter();
  CloseReader();
}

void SqliteCache::ReleaseWriter() {
  for (Stmt& st : writer_stmts_) st = Stmt();
}

Status SqliteCache::Prepared(Db* writer, WriterStmt which, Stmt** out) {
  Stmt* st = &writer_stmts_[which];
  if (!st->prepared()) {
    Status s = writer->Prepare(CacheWriterSql(which), st);
    if (!s.ok()) return s;
  }
  *out = st;
  return Status::OK();
}

Status SqliteCache::Apply(Db* writer, const CacheOp& op) {
  return std::visit(
      [&](const auto& r) -> Status {
        using T = std::decay_t<decltype(r)>;
        Stmt* st = nullptr;
        Status s;
        if constexpr (std::is_same_v<T, CacheUpsert>) {
          s = Prepared(writer, kUpsert, &st);
          if (!s.ok()) return s;
          st->BindText(1, r.ns);
          st->BindText(2, r.key);
          st->BindBlob(3, r.value != nullptr ? std::string_view(*r.value)
                                             : std::string_view());
          st->Bind(4, r.expires_at_us);
          st->Bind(5, r.updated_at_us);
        } else if constexpr (std::is_same_v<T, CacheDelete>) {
          s = Prepared(writer, kDelete, &st);
          if (!s.ok()) return s;
          st->BindText(1, r.ns);
          st->BindText(2, r.key);
        } else {
          s = Prepared(writer, kPurge, &st);
          if (!s.ok()) return s;
          st->Bind(1, r.cutoff_us);
          st->Bind(2, static_cast<int64_t>(r.limit));
        }
        return st->Exec();
      },
      op.record);
}

Status SqliteCache::Read(const std::function<Status(Db*)>& fn) {
  return reader_.Read(fn);
}

void SqliteCache::CloseReader() { reader_.Close(); }

Status SqliteCache::ScanLive(int64_t now_us,
                             const std::function<bool(CacheRow&&)>& visit) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        "SELECT ns, key, value, expires_at_us, updated_at_us FROM"
        " cache_entries WHERE expires_at_us = 0 OR expires_at_us > ?1"
        " ORDER BY updated_at_us DESC",
        &st);
    if (!s.ok()) return s;
    st.Bind(1, now_us);
    while (st.Step(&s)) {
      CacheRow row;
      row.ns = st.Text(0);
      row.key = st.Text(1);
      row.value.assign(st.BlobView(2));
      row.expires_at_us = st.Int(3);
      row.updated_at_us = st.Int(4);
      if (!visit(std::move(row))) break;
    }
    return s;
  });
}

Status SqliteCache::CountExpired(int64_t now_us, int64_t* out) {
  return Read([&](Db* db) {
    Stmt st;
    Status s = db->Prepare(
        "SELECT count(*) FROM cache_entries WHERE expires_at_us > 0 AND"
        " expires_at_us <= ?1",
        &st);
    if (!s.ok()) return s;
    st.Bind(1, now_us);
    *out = st.Step(&s) ? st.Int(0) : 0;
    return s;
  });
}

Status SqliteCache::CountRows(int64_t* out) {
  return Read([&](Db* db) {
    return db->QueryInt("SELECT count(*) FROM cache_entries", out);
  });
}

}  // namespace convstore::internal
