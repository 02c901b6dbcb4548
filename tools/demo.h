// Copyright 2026 The convstore Authors.
//
// `convstore demo`: a small simulated agent workload that shows the whole
// life cycle of a store: append, flush, close, reopen, verify, read, stats.

#ifndef CONVSTORE_TOOLS_DEMO_H_
#define CONVSTORE_TOOLS_DEMO_H_

#include <cstddef>
#include <ostream>
#include <string>

#include "convstore/status.h"

namespace convstore::tools {

struct DemoArgs {
  // The demo's own database. It is deleted first (with its -wal and -shm
  // files) so every run starts clean; the demo refuses to delete a file that
  // holds conversations it did not write, or none at all.
  std::string db = "./data/demo.db";
  size_t conversations = 8;
  // Messages appended to each conversation.
  size_t turns = 40;
};

// Runs the demo, narrating to `out`. Returns an error if any step fails,
// including Internal when a conversation read back after the reopen differs
// from what was appended.
Status RunDemo(const DemoArgs& args, std::ostream& out);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_DEMO_H_
