// Copyright 2026 The convstore Authors.
//
// KeyStorage: the reads the API keys need from the database (every key, at
// Open and again whenever another store on the file changed one), reached
// through StorageBackend::keys() (null for a backend without the api_keys
// table). Writes go through the write path as KeyOps.
//
// Thread safety: may be called from any thread; each call runs in one read
// transaction and sees whole committed batches only.

#ifndef CONVSTORE_SRC_KEYS_KEY_STORAGE_H_
#define CONVSTORE_SRC_KEYS_KEY_STORAGE_H_

#include <cstdint>
#include <functional>

#include "convstore/status.h"
#include "keys/key_op.h"

namespace convstore::internal {

class KeyStorage {
 public:
  virtual ~KeyStorage() = default;
  // Calls `visit` with every stored key (revoked and expired ones too),
  // until it returns false.
  virtual Status ScanAll(const std::function<bool(KeyRow&&)>& visit) = 0;
  // A number that changes whenever a transaction that changed a key's
  // definition (create, revoke, rotate - not usage counts) has committed,
  // from any connection or process. Cheap when nothing at all was committed
  // since the last call; otherwise one row read.
  virtual StatusOr<int64_t> DefinitionsVersion() = 0;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_KEYS_KEY_STORAGE_H_
