// Copyright 2026 The convstore Authors.
//
// The erase subcommand of the convstore tool: deletes conversations
// (Store::DeleteConversation) and analytics sessions
// (Analytics::DeleteSession) named on the command line, waits for each
// delete to commit, and closes the store, which truncates the WAL: once it
// returns OK no byte of what it erased is left in the database's files
// (docs/durability.md, "Erasure"). Run it while no application has the
// file open: a running store keeps serving what it holds in memory, and
// its connections keep the WAL from being truncated. Never throws.

#ifndef CONVSTORE_TOOLS_ERASE_COMMAND_H_
#define CONVSTORE_TOOLS_ERASE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "convstore/convstore.h"

namespace convstore::tools {

struct EraseArgs {
  std::string db;
  std::vector<std::string> conversations;
  std::vector<std::string> sessions;
  bool json = false;
};

// InvalidArgument (before the file is opened) when nothing is named.
Status RunErase(const EraseArgs& args, std::ostream& out);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_ERASE_COMMAND_H_
