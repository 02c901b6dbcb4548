// Copyright 2026 The convstore Authors.
//
// CacheOp: the write op of the key-value cache (one alternative of
// WritePayload). An upsert carries an entry's whole state (so the last one
// applied wins), a delete removes one entry, a purge removes a small batch
// of expired rows.

#ifndef CONVSTORE_SRC_CACHE_CACHE_OP_H_
#define CONVSTORE_SRC_CACHE_CACHE_OP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

namespace convstore::internal {

// Insert or replace (ns, key). The value is immutable: the string a write
// was given, or a large entry's own value (cache_entry.h), so queuing it
// copies no more than kCacheInlineValueMax bytes.
struct CacheUpsert {
  std::string ns;
  std::string key;
  std::shared_ptr<const std::string> value;
  int64_t expires_at_us = 0;  // wall clock; 0: never
  // Wall clock of the write's call, read before the shard lock: two writes
  // of one key at once may leave the later LSN with the earlier time. It
  // only orders the reload (which rows fit first), where that does not
  // matter.
  int64_t updated_at_us = 0;
};

struct CacheDelete {
  std::string ns;
  std::string key;
};

// Deletes at most `limit` rows whose expiry is in (0, cutoff_us]. Rows
// written after the sweep that queued it expire later than cutoff_us, so
// the purge never touches them whatever their position in the queue.
struct CachePurgeExpired {
  int64_t cutoff_us = 0;
  size_t limit = 0;
};

struct CacheOp {
  std::variant<CacheUpsert, CacheDelete, CachePurgeExpired> record;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_CACHE_OP_H_
