// Copyright 2026 The convstore Authors.
//
// FaultVfs: a SQLite VFS shim for fault-injection tests. It wraps the
// default (unix) VFS and passes every call through, except that on command
// it makes writes or fsyncs fail (SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC,
// like EIO, or SQLITE_FULL, like ENOSPC), makes them slow, or makes write
// lock requests return SQLITE_BUSY as if another process held the lock.
// For power-loss tests it records what an fsync has not yet made durable
// (unsynced_writes.h) and can cut the power: every later change, fsync or
// delete fails.
//
// It is compiled into the library (it costs nothing unless a connection is
// opened on it) but is internal: only tests include this header. A store
// uses it when Options::sqlite_vfs is FaultVfs::kName, after Install().
//
// Thread safety: every method may be called from any thread; the commands
// are atomics read by SQLite's calls on whatever thread makes them. One
// process-wide instance: the commands apply to every connection on the VFS.

#ifndef CONVSTORE_SRC_SQLITE_FAULT_VFS_H_
#define CONVSTORE_SRC_SQLITE_FAULT_VFS_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "convstore/status.h"
#include "sqlite/unsynced_writes.h"

namespace convstore::internal {

class FaultVfs {
 public:
  // The name to put in Options::sqlite_vfs.
  static constexpr const char* kName = "convstore-fault";

  // What a faulted call returns.
  enum class Fault : int {
    kNone = 0,
    kIoError = 1,   // SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC (EIO)
    kDiskFull = 2,  // SQLITE_FULL (ENOSPC)
  };

  // Registers the VFS (once per process, not as the default) and returns
  // the controller. IOError if the default VFS is missing.
  static StatusOr<FaultVfs*> Install();

  // Commands; each takes effect on the next call SQLite makes.
  void FailWrites(Fault f) { write_fault_.store(static_cast<int>(f)); }
  void FailSyncs(Fault f) { sync_fault_.store(static_cast<int>(f)); }
  void DelayWrites(std::chrono::milliseconds d) {
    write_delay_ms_.store(d.count());
  }
  void DelaySyncs(std::chrono::milliseconds d) {
    sync_delay_ms_.store(d.count());
  }
  // While set, every request for a write lock (a RESERVED or stronger lock
  // on the database file, an exclusive WAL shared-memory lock) returns
  // SQLITE_BUSY, as when another process holds the write lock.
  void HoldWriteLock(bool on) { busy_.store(on); }
  // While set (not null), every write and truncation of a database or WAL
  // file, and every fsync of one, is reported to `w`, which must outlive
  // the recording. Set it before the store opens, so that no change goes
  // unrecorded.
  void RecordUnsynced(UnsyncedWrites* w) { unsynced_.store(w); }
  // The power goes: from now on every write, truncation and fsync of a
  // database or WAL file, and every delete, fails (SQLITE_IOERR_WRITE,
  // _TRUNCATE, _FSYNC, _DELETE), so the files stay as they were at this
  // moment until Reset. Then close
  // every connection and call UnsyncedWrites::Rewind.
  void CutPower() { cut_.store(true); }
  // Clears every command and counter.
  void Reset();

  // Calls made and faults injected since the last Reset.
  uint64_t writes() const { return writes_.load(); }
  uint64_t syncs() const { return syncs_.load(); }
  uint64_t failed_writes() const { return failed_writes_.load(); }
  uint64_t failed_syncs() const { return failed_syncs_.load(); }
  uint64_t busy_locks() const { return busy_locks_.load(); }
  // Database files (not WAL or journal) opened through this VFS: one per
  // connection.
  uint64_t main_opens() const { return main_opens_.load(); }

  // The sqlite3_vfs/sqlite3_io_methods callbacks (fault_vfs.cc).
  friend struct FaultVfsCallbacks;

 private:
  FaultVfs() = default;

  std::atomic<int> write_fault_{0};
  std::atomic<int> sync_fault_{0};
  std::atomic<int64_t> write_delay_ms_{0};
  std::atomic<int64_t> sync_delay_ms_{0};
  std::atomic<bool> busy_{false};
  std::atomic<UnsyncedWrites*> unsynced_{nullptr};
  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> failed_writes_{0};
  std::atomic<uint64_t> failed_syncs_{0};
  std::atomic<uint64_t> busy_locks_{0};
  std::atomic<uint64_t> main_opens_{0};
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_FAULT_VFS_H_
