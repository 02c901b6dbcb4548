// Copyright 2026 The convstore Authors.
//
// The cache subcommand of the convstore tool: `cache stats` opens the
// database, which reloads the cache entries that still have time left, and
// prints the cache's counters. Hits, misses and evictions count this
// process only (the tool's own open), so from the tool they show what the
// file holds: live entries and their bytes, how many were reloaded, and the
// delete batches the open queued for expired rows. Never throws.

#ifndef CONVSTORE_TOOLS_CACHE_COMMANDS_H_
#define CONVSTORE_TOOLS_CACHE_COMMANDS_H_

#include <ostream>
#include <string>

#include "convstore/convstore.h"

namespace convstore::tools {

struct CacheStatsArgs {
  std::string db;
  bool json = false;
};

Status RunCacheStats(const CacheStatsArgs& args, std::ostream& out);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_CACHE_COMMANDS_H_
