// Copyright 2026 The convstore Authors.
//
// The audit subcommands of the convstore tool: `audit verify` walks the
// chain and prints the verdict and the head to witness; `audit list` prints
// the newest records. Both open the database like the read commands
// (commands.h) and never throw.

#ifndef CONVSTORE_TOOLS_AUDIT_COMMANDS_H_
#define CONVSTORE_TOOLS_AUDIT_COMMANDS_H_

#include <cstddef>
#include <ostream>
#include <string>

#include "convstore/convstore.h"

namespace convstore::tools {

struct AuditVerifyArgs {
  std::string db;
  bool json = false;
};

struct AuditListArgs {
  std::string db;
  std::string actor;   // empty: any
  std::string action;  // empty: any
  size_t limit = 50;
  bool json = false;
};

// Prints the verification; returns Corruption when the chain is broken
// (so the tool exits non-zero).
Status RunAuditVerify(const AuditVerifyArgs& args, std::ostream& out);
Status RunAuditList(const AuditListArgs& args, std::ostream& out);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_AUDIT_COMMANDS_H_
