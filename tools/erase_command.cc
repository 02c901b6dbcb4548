// Copyright 2026 The convstore Authors.

#include "erase_command.h"

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>

#include "commands.h"
#include "json_output.h"

namespace convstore::tools {
namespace {

// VACUUM on a connection of its own (the store is closed): every page is
// written afresh, so no free space keeps an old copy of a row. Then the
// WAL the VACUUM went through is copied back and truncated.
Status Vacuum(const std::string& path, std::chrono::milliseconds timeout) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  Status s;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, static_cast<int>(timeout.count()));
    rc = sqlite3_exec(db, "VACUUM", nullptr, nullptr, nullptr);
  }
  if (rc == SQLITE_OK) {
    int log = -1;
    int copied = -1;
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                   &log, &copied);
  }
  if (rc != SQLITE_OK) {
    s = Status::Unavailable(std::string("VACUUM of ") + path + ": " +
                            (db != nullptr ? sqlite3_errmsg(db) : "no memory"));
  }
  sqlite3_close_v2(db);
  return s;
}

}  // namespace

Status CloseErased(Store& store, std::chrono::milliseconds wal_timeout) {
  // The WAL still holds earlier frames with the erased bytes. Close
  // truncates it too, but waits for other connections only busy_timeout,
  // in one wait: TruncateWal waits wal_timeout, in slices that let the
  // writer through. What Close commits after it (another process may
  // write too) can still be kept by a reader: Close's report says whether
  // it truncated.
  Status truncated = store.TruncateWal(wal_timeout);
  if (!truncated.ok()) {
    return CloseAfter(
        store, truncated.WithPrefix("deleted, but the WAL still holds copies"));
  }
  StatusOr<CloseReport> closed = store.Close();
  if (!closed.ok()) return closed.status();
  if (!closed->wal_truncated) {
    return Status::Unavailable(
        "deleted, but the WAL still holds copies: another connection kept "
        "Close from truncating it");
  }
  return Status::OK();
}

Status RunErase(const EraseArgs& args, std::ostream& out) {
  if (args.conversations.empty() && args.sessions.empty()) {
    return Status::InvalidArgument(
        "give --conversation or --session (each may repeat)");
  }
  StatusOr<std::unique_ptr<Store>> store = OpenExisting(args.db);
  if (!store.ok()) return store.status();
  Store& s = **store;
  json conversations = json::array();
  for (const std::string& id : args.conversations) {
    StatusOr<uint64_t> lsn = s.DeleteConversation(id);
    if (!lsn.ok()) return CloseAfter(s, lsn.status());
    Status durable = s.WaitDurable(*lsn, std::chrono::seconds(60));
    if (!durable.ok()) return CloseAfter(s, durable);
    conversations.push_back(id);
  }
  json sessions = json::array();
  for (const std::string& id : args.sessions) {
    StatusOr<int64_t> removed = s.analytics().DeleteSession(id);
    if (!removed.ok()) return CloseAfter(s, removed.status());
    sessions.push_back(json{{"id", id}, {"records", *removed}});
  }
  Status closed = CloseErased(s, args.wal_timeout);
  if (!closed.ok()) return closed;
  if (args.vacuum) {
    Status v = Vacuum(args.db, args.wal_timeout);
    if (!v.ok()) return v.WithPrefix("deleted, but not vacuumed");
  }
  if (args.json) {
    PrintJson(json{{"conversations", conversations}, {"sessions", sessions}},
              out);
  } else {
    for (const std::string& id : args.conversations) {
      out << "conversation " << id << ": deleted\n";
    }
    for (const json& session : sessions) {
      out << "session " << session["id"].get<std::string>() << ": "
          << session["records"].get<int64_t>() << " records deleted\n";
    }
  }
  return Status::OK();
}

}  // namespace convstore::tools
