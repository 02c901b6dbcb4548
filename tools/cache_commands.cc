// Copyright 2026 The convstore Authors.

#include "cache_commands.h"

#include "commands.h"
#include "json_output.h"

namespace convstore::tools {

Status RunCacheStats(const CacheStatsArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  const CacheStats s = (*store)->cache().GetStats();
  if (args.json) {
    const json j{{"entries", s.entries},
                 {"bytes", s.bytes},
                 {"reloaded", s.reloaded},
                 {"hits", s.hits},
                 {"misses", s.misses},
                 {"expirations", s.expirations},
                 {"evictions", s.evictions},
                 {"persist_shed", s.persist_shed},
                 {"purge_batches", s.purge_batches}};
    PrintJson(j, out);
  } else {
    out << "entries      " << s.entries << "\n"
        << "bytes        " << s.bytes << "\n"
        << "reloaded     " << s.reloaded << "\n"
        << "expirations  " << s.expirations << "\n"
        << "evictions    " << s.evictions << "\n"
        << "shed         " << s.persist_shed << "\n"
        << "purge        " << s.purge_batches << " batches\n"
        << "(every count but entries and bytes covers this process only: "
           "the reload and what it expired or evicted)\n";
  }
  return CloseAfter(**store, Status::OK());
}

}  // namespace convstore::tools
