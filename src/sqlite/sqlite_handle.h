// Copyright 2026 The convstore Authors.
//
// Thin RAII owners of a sqlite3 connection and prepared statement, and the
// mapping of SQLite result codes to Status. Nothing here throws.
//
// Thread safety: a Db or Stmt is used by one thread at a time (SQLite is
// opened with SQLITE_OPEN_NOMUTEX; each thread gets its own connection).

#ifndef CONVSTORE_SRC_SQLITE_SQLITE_HANDLE_H_
#define CONVSTORE_SRC_SQLITE_SQLITE_HANDLE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "convstore/status.h"

namespace convstore::internal {

// Maps a SQLite result code to a Status: BUSY/LOCKED -> Unavailable,
// IOERR/FULL/CANTOPEN/READONLY/PERM -> IOError, CORRUPT/NOTADB -> Corruption,
// CONSTRAINT/TOOBIG/MISMATCH/RANGE -> InvalidArgument, others -> Internal.
Status SqliteStatus(int rc, std::string_view what, sqlite3* db);
// Whether `s` is an error SqliteStatus made (SQLite's own; its message
// carries "(sqlite code N)"), not one the store's checks of the values it
// read made (a damaged index row, an implausible summary).
bool IsSqliteError(const Status& s);
// Fsyncs the WAL file of `db`'s main database, through the connection's
// own handle (so through its VFS). SQLite does not sync the WAL after a
// TRUNCATE checkpoint cuts it to zero bytes: until this, a power loss may
// bring back the frames it cut (docs/durability.md, "Erasure"). OK when the
// connection has no WAL file open (it never read: nothing to sync, and a
// checkpoint on it truncated nothing either).
Status SyncWal(sqlite3* db);

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Bind by 1-based index. Text is bound without copying: it must stay
  // alive until Reset().
  void Bind(int idx, int64_t v) { sqlite3_bind_int64(stmt_, idx, v); }
  void BindText(int idx, std::string_view v) {
    sqlite3_bind_text(stmt_, idx, v.data(), static_cast<int>(v.size()),
                      SQLITE_STATIC);
  }
  // Binds NULL for an empty string.
  void BindTextOrNull(int idx, std::string_view v) {
    if (v.empty()) {
      sqlite3_bind_null(stmt_, idx);
    } else {
      BindText(idx, v);
    }
  }
  // Binds bytes as a BLOB (an empty one for empty input), without copying.
  void BindBlob(int idx, std::string_view v) {
    sqlite3_bind_blob(stmt_, idx, v.empty() ? "" : v.data(),
                      static_cast<int>(v.size()), SQLITE_STATIC);
  }
  bool prepared() const { return stmt_ != nullptr; }
  void BindDouble(int idx, double v) { sqlite3_bind_double(stmt_, idx, v); }
  void BindNull(int idx) { sqlite3_bind_null(stmt_, idx); }
  // Steps once: true with a row, false when done; *status set on error.
  bool Step(Status* status);
  // Steps to completion (for statements without rows).
  Status Exec();
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const;
  // The column's text, valid until the next Step/Reset (no copy).
  std::string_view TextView(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return std::string_view();
    return std::string_view(
        reinterpret_cast<const char*>(p),
        static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  // The column's bytes (BLOB or text), valid until the next Step/Reset.
  std::string_view BlobView(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return std::string_view();
    return std::string_view(
        static_cast<const char*>(p),
        static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  int ColumnCount() const { return sqlite3_column_count(stmt_); }
  const char* ColumnName(int col) const {
    return sqlite3_column_name(stmt_, col);
  }
  int ColumnType(int col) const { return sqlite3_column_type(stmt_, col); }
  bool IsNull(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Db {
 public:
  // Opens `path` read-write (creating it if `create`), in WAL mode, on the
  // named SQLite VFS (empty: the default one). The connection has
  // secure_delete on: what it deletes is overwritten with zeros, not only
  // unlinked (docs/durability.md, "Erasure"), whatever the SQLite build's
  // default.
  static Status Open(const std::string& path, bool create,
                     std::unique_ptr<Db>* out, const std::string& vfs = "");
  // Opens an existing `path` for reading only (SQLITE_OPEN_READONLY): any
  // statement that writes fails with SQLITE_READONLY.
  static Status OpenReadOnly(const std::string& path, std::unique_ptr<Db>* out,
                             const std::string& vfs = "");
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* raw() const { return db_; }
  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  Status Prepare(std::string_view sql, Stmt* out);
  // Runs a single-value query ("PRAGMA x", "SELECT count(*) ...").
  Status QueryInt(std::string_view sql, int64_t* out);

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  static Status OpenFlags(const std::string& path, int flags,
                          std::unique_ptr<Db>* out, const std::string& vfs);
  sqlite3* db_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_SQLITE_HANDLE_H_
