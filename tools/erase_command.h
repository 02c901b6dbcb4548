// Copyright 2026 The convstore Authors.
//
// The erase subcommand of the convstore tool: deletes conversations
// (Store::DeleteConversation) and analytics sessions
// (Analytics::DeleteSession) named on the command line, waits for each
// delete to commit, truncates the WAL and closes the store, which truncates
// it again (CloseReport::wal_truncated): once it returns OK no byte of what
// it erased is left in the database's files
// (docs/durability.md, "Erasure"): SQLite zeroes the deleted rows and the
// pages they free, but copies of rows it moved between pages earlier (when
// pages split or merged) can stay in pages' free space; `vacuum` rewrites
// the whole file after the close so that none is left, at a cost in time
// and temporary space proportional to the file's size. Run it while no
// application has the file open: a running store keeps serving what it
// holds in memory, and its connections keep the WAL from being truncated
// (the command then fails with Unavailable). Never throws.

#ifndef CONVSTORE_TOOLS_ERASE_COMMAND_H_
#define CONVSTORE_TOOLS_ERASE_COMMAND_H_

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "convstore/convstore.h"

namespace convstore::tools {

struct EraseArgs {
  std::string db;
  std::vector<std::string> conversations;
  std::vector<std::string> sessions;
  // How long Store::TruncateWal may wait for other connections (another
  // process reading the file) before the command fails.
  std::chrono::milliseconds wal_timeout{30000};
  // After the close, VACUUM the file (then truncate its WAL): see above.
  bool vacuum = false;
  bool json = false;
};

// InvalidArgument (before the file is opened) when nothing is named;
// Unavailable when another connection kept the WAL from being truncated
// (the deletes are committed; run it again once that process is gone).
Status RunErase(const EraseArgs& args, std::ostream& out);

// RunErase's last step, on a store whose deletes have committed:
// Store::TruncateWal (waiting up to `wal_timeout`), then Store::Close. OK
// only if the close truncated the WAL too (CloseReport::wal_truncated);
// Unavailable when another connection kept either truncation from
// finishing; the close's error if it failed. The store is closed however
// it ends.
Status CloseErased(Store& store, std::chrono::milliseconds wal_timeout);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_ERASE_COMMAND_H_
