// Copyright 2026 The convstore Authors.

#include "sqlite/sqlite_handle.h"

#include <string>

namespace convstore::internal {

bool IsSqliteError(const Status& s) {
  return !s.ok() && s.message().find("(sqlite code ") != std::string::npos;
}

Status SqliteStatus(int rc, std::string_view what, sqlite3* db) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) {
    return Status::OK();
  }
  std::string msg(what);
  msg += ": ";
  msg += (db != nullptr && sqlite3_errcode(db) == rc) ? sqlite3_errmsg(db)
                                                      : sqlite3_errstr(rc);
  msg += " (sqlite code " + std::to_string(rc) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(msg);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
      return Status::IOError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(msg);
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return Status::InvalidArgument(msg);
    default:
      return Status::Internal(msg);
  }
}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    o.stmt_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

bool Stmt::Step(Status* status) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = SqliteStatus(rc, "step", db_);
  return false;
}

Status Stmt::Exec() {
  Status s;
  while (Step(&s)) {
  }
  Reset();
  return s;
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

Status Db::Open(const std::string& path, bool create, std::unique_ptr<Db>* out,
                const std::string& vfs) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  Status s = OpenFlags(path, flags, out, vfs);
  // Debian's SQLite is built with SQLITE_SECURE_DELETE, most others are
  // not: without it a deleted message's bytes stay in the file's free
  // space. A connection setting; it reads and writes nothing. It costs the
  // deletes (retention, DeleteConversation, the merge's index rewrites)
  // the zeroing of what they free, which the benchmarks on Debian already
  // include.
  if (s.ok()) s = (*out)->Exec("PRAGMA secure_delete = ON");
  if (!s.ok()) out->reset();
  return s;
}

Status SyncWal(sqlite3* db) {
  sqlite3_file* wal = nullptr;
  int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
  if (rc != SQLITE_OK) return SqliteStatus(rc, "the WAL's file handle", db);
  if (wal == nullptr || wal->pMethods == nullptr) return Status::OK();
  rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
  // Not through the connection: its error message is not this call's.
  return SqliteStatus(rc, "fsync of the WAL", nullptr);
}

Status Db::OpenReadOnly(const std::string& path, std::unique_ptr<Db>* out,
                        const std::string& vfs) {
  return OpenFlags(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, out, vfs);
}

Status Db::OpenFlags(const std::string& path, int flags,
                     std::unique_ptr<Db>* out, const std::string& vfs) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags,
                           vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, "sqlite3_open_v2", raw);
    sqlite3_close_v2(raw);
    return s;
  }
  sqlite3_extended_result_codes(raw, 1);
  out->reset(new Db(raw));
  return Status::OK();
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (err != nullptr) sqlite3_free(err);
  return SqliteStatus(rc, text.substr(0, 60), db_);
}

Status Db::Prepare(std::string_view sql, Stmt* out) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteStatus(rc, "prepare " + std::string(sql.substr(0, 60)), db_);
  }
  *out = Stmt(db_, stmt);
  return Status::OK();
}

Status Db::QueryInt(std::string_view sql, int64_t* out) {
  Stmt st;
  Status s = Prepare(sql, &st);
  if (!s.ok()) return s;
  *out = 0;
  if (st.Step(&s)) *out = st.Int(0);
  return s;
}

}  // namespace convstore::internal
