// Copyright 2026 The convstore Authors.
//
// CacheStorage: the reads the key-value cache needs from the database,
// reached through StorageBackend::cache() (null for a backend without the
// cache table). Writes go through the write path as CacheOps.
//
// Thread safety: every method may be called from any thread; each call
// runs in one read transaction and sees whole committed batches only.

#ifndef CONVSTORE_SRC_CACHE_CACHE_STORAGE_H_
#define CONVSTORE_SRC_CACHE_CACHE_STORAGE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "convstore/status.h"

namespace convstore::internal {

struct CacheRow {
  std::string ns;
  std::string key;
  std::string value;
  int64_t expires_at_us = 0;  // 0: never
  int64_t updated_at_us = 0;
};

class CacheStorage {
 public:
  virtual ~CacheStorage() = default;
  // Calls `visit` with every row that has no expiry or expires after
  // `now_us`, most recently written first, until it returns false.
  virtual Status ScanLive(int64_t now_us,
                          const std::function<bool(CacheRow&&)>& visit) = 0;
  // Rows with an expiry in (0, now_us].
  virtual Status CountExpired(int64_t now_us, int64_t* out) = 0;
  // All rows (tests and the size figure in the docs).
  virtual Status CountRows(int64_t* out) = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_CACHE_CACHE_STORAGE_H_
