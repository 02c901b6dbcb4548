// Copyright 2026 The convstore Authors.
//
// The keys subcommand of the convstore tool: `keys list` prints every API
// key (of one owner, when given) with its state, usage and limits. It never
// prints a secret or a secret's hash: the store does not hand them out.
// Opens the database like the read commands (commands.h) and never throws.

#ifndef CONVSTORE_TOOLS_KEYS_COMMANDS_H_
#define CONVSTORE_TOOLS_KEYS_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "convstore/convstore.h"

namespace convstore::tools {

struct KeysListArgs {
  std::string db;
  std::string owner;  // empty: every owner
  bool json = false;
};

// "active", "revoked" or "expired" at `now_us` (revocation wins).
const char* KeyStateName(const KeyInfo& key, int64_t now_us);

// Prints the keys oldest first; an empty list is OK (prints "no keys" or
// "[]").
Status RunKeysList(const KeysListArgs& args, std::ostream& out);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_KEYS_COMMANDS_H_
