// Copyright 2026 The convstore Authors.
//
// UnsyncedWrites: what a power cut would take back. The fault VFS
// (fault_vfs.h) reports to it, while recording is on, every write and
// truncation of a database or WAL file together with the bytes it
// replaced; an fsync of a file forgets that file's entries, since the disk
// now holds them. After a simulated cut, Rewind() puts every file back
// the way the disk may have it: the state of its last fsync, plus any
// chosen subset of the later writes, applied in their order (a drive may
// have written some of its cache back before the power went; SQLite
// assumes no more than that, and that a write does not damage the bytes
// around it).
//
// Compiled into the library with the fault VFS; only tests use it
// (power_loss_test.cc). Memory: every unsynced write is
// kept twice (old and new bytes) until its file is synced.
//
// Thread safety: every method may be called from any thread; one mutex
// serializes them (and, through the VFS, the writes they record).

#ifndef CONVSTORE_SRC_SQLITE_UNSYNCED_WRITES_H_
#define CONVSTORE_SRC_SQLITE_UNSYNCED_WRITES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convstore/status.h"
#include "mutex.h"

namespace convstore::internal {

class UnsyncedWrites {
 public:
  // One change not yet synced. A truncation has `truncate` set, `offset`
  // its new size and `old_bytes` the tail it cut.
  struct Change {
    bool truncate = false;
    int64_t offset = 0;
    std::string old_bytes;  // what was there (within the old size)
    std::string new_bytes;  // a write's bytes
    int64_t old_size = 0;   // the file's size before the change
  };

  // The VFS holds this around each recorded change (reading the old bytes,
  // Record, the write) and each fsync (the sync, Synced), so that no write
  // slips between a sync and forgetting what it covered.
  Mutex* mu() ABSL_LOCK_RETURNED(mu_) { return &mu_; }

  // Before `path` changes.
  void Record(const std::string& path, Change change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `path` was fsynced: its changes so far are on the disk, and so is every
  // deletion before it (see Deleted).
  void Synced(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `path`, holding `bytes`, is about to be deleted without a sync of its
  // directory (SQLite deletes the WAL so at its last close): a cut before
  // the next fsync of any file brings it back, with what an fsync had put
  // on the disk. (An assumption: on ext4 and xfs an fsync, or an fdatasync
  // that changes a file's size, commits the file system's journal with the
  // deletion in it; an fdatasync that only overwrites blocks may not.) If
  // the name is created again before that, the new file is what comes back.
  void Deleted(const std::string& path, std::string bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Changes not yet synced, over all files.
  size_t pending() ABSL_LOCKS_EXCLUDED(mu_);

  // After the cut, with no connection left open on the files: recreates
  // the files deleted since their last sync, rewrites each file to its
  // synced state plus the changes `keep` chooses (called once per change,
  // in the order they were made, per file). Clears the record. IOError if
  // a file cannot be rewritten.
  Status Rewind(
      const std::function<bool(const std::string& path, size_t index)>& keep)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Mutex mu_;
  std::map<std::string, std::vector<Change>> changes_ ABSL_GUARDED_BY(mu_);
  // A file deleted since the last fsync of any file: its bytes then, and
  // its changes not yet synced (taken out of changes_, so that a file
  // created again under the name starts a record of its own).
  struct DeletedFile {
    std::string bytes;
    std::vector<Change> changes;
  };
  std::map<std::string, DeletedFile> deleted_ ABSL_GUARDED_BY(mu_);
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_UNSYNCED_WRITES_H_
