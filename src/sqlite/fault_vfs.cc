// Copyright 2026 The convstore Authors.

#include "sqlite/fault_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>
#include <utility>

#include "mutex.h"

namespace convstore::internal {

// Offset of the WAL write lock among the WAL shared-memory locks (SQLite's
// WAL_WRITE_LOCK, wal.c).
constexpr int kWalWriteLock = 0;

struct FaultVfsCallbacks {
  // A file opened through the shim: our header, then the real file's
  // sqlite3_file (szOsFile of the wrapped VFS) right after it.
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
    bool faultable;  // the main database or its WAL
    // SQLite keeps the name passed to xOpen valid until xClose.
    const char* name;
  };

  static FaultVfs* ctl;
  static sqlite3_vfs* real_vfs;
  static sqlite3_vfs vfs;
  static sqlite3_io_methods methods;

  static sqlite3_file* Real(sqlite3_file* f) {
    return reinterpret_cast<File*>(f)->real;
  }
  static void Sleep(int64_t ms) {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }

  static int Close(sqlite3_file* f) {
    sqlite3_file* r = Real(f);
    return r->pMethods != nullptr ? r->pMethods->xClose(r) : SQLITE_OK;
  }
  static int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
    return Real(f)->pMethods->xRead(Real(f), buf, n, off);
  }
  static int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
    File* file = reinterpret_cast<File*>(f);
    if (file->faultable) {
      ctl->writes_.fetch_add(1);
      if (ctl->cut_.load()) return SQLITE_IOERR_WRITE;
      Sleep(ctl->write_delay_ms_.load());
      int fault = ctl->write_fault_.load();
      if (fault != static_cast<int>(FaultVfs::Fault::kNone)) {
        ctl->failed_writes_.fetch_add(1);
        return fault == static_cast<int>(FaultVfs::Fault::kDiskFull)
                   ? SQLITE_FULL
                   : SQLITE_IOERR_WRITE;
      }
      if (UnsyncedWrites* u = ctl->unsynced_.load()) {
        MutexLock lock(u->mu());
        UnsyncedWrites::Change c;
        c.offset = off;
        c.new_bytes.assign(static_cast<const char*>(buf),
                           static_cast<size_t>(n));
        int rc = Saved(file, off, off + n, &c);
        if (rc != SQLITE_OK) return rc;
        u->Record(file->name, std::move(c));
        return file->real->pMethods->xWrite(file->real, buf, n, off);
      }
    }
    return file->real->pMethods->xWrite(file->real, buf, n, off);
  }
  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    File* file = reinterpret_cast<File*>(f);
    if (file->faultable) {
      if (ctl->cut_.load()) return SQLITE_IOERR_TRUNCATE;
      if (UnsyncedWrites* u = ctl->unsynced_.load()) {
        MutexLock lock(u->mu());
        UnsyncedWrites::Change c;
        c.truncate = true;
        c.offset = size;
        int rc = Saved(file, size, INT64_MAX, &c);
        if (rc != SQLITE_OK) return rc;
        u->Record(file->name, std::move(c));
        return file->real->pMethods->xTruncate(file->real, size);
      }
    }
    return Real(f)->pMethods->xTruncate(Real(f), size);
  }
  // Fills `c`'s old size and the bytes [from, to) the file holds now.
  static int Saved(File* file, sqlite3_int64 from, sqlite3_int64 to,
                   UnsyncedWrites::Change* c) {
    sqlite3_int64 size = 0;
    int rc = file->real->pMethods->xFileSize(file->real, &size);
    if (rc != SQLITE_OK) return rc;
    c->old_size = size;
    to = std::min(to, size);
    if (to <= from) return SQLITE_OK;
    c->old_bytes.resize(static_cast<size_t>(to - from));
    return file->real->pMethods->xRead(file->real, c->old_bytes.data(),
                                       static_cast<int>(to - from), from);
  }
  static int Sync(sqlite3_file* f, int flags) {
    File* file = reinterpret_cast<File*>(f);
    if (file->faultable) {
      ctl->syncs_.fetch_add(1);
      if (ctl->cut_.load()) return SQLITE_IOERR_FSYNC;
      Sleep(ctl->sync_delay_ms_.load());
      int fault = ctl->sync_fault_.load();
      if (fault != static_cast<int>(FaultVfs::Fault::kNone)) {
        ctl->failed_syncs_.fetch_add(1);
        return fault == static_cast<int>(FaultVfs::Fault::kDiskFull)
                   ? SQLITE_FULL
                   : SQLITE_IOERR_FSYNC;
      }
      if (UnsyncedWrites* u = ctl->unsynced_.load()) {
        MutexLock lock(u->mu());
        int rc = file->real->pMethods->xSync(file->real, flags);
        if (rc == SQLITE_OK) u->Synced(file->name);
        return rc;
      }
    }
    return file->real->pMethods->xSync(file->real, flags);
  }
  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    return Real(f)->pMethods->xFileSize(Real(f), size);
  }
  static int Lock(sqlite3_file* f, int level) {
    if (level >= SQLITE_LOCK_RESERVED && ctl->busy_.load()) {
      ctl->busy_locks_.fetch_add(1);
      return SQLITE_BUSY;
    }
    return Real(f)->pMethods->xLock(Real(f), level);
  }
  static int Unlock(sqlite3_file* f, int level) {
    return Real(f)->pMethods->xUnlock(Real(f), level);
  }
  static int CheckReservedLock(sqlite3_file* f, int* out) {
    return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return Real(f)->pMethods->xFileControl(Real(f), op, arg);
  }
  static int SectorSize(sqlite3_file* f) {
    return Real(f)->pMethods->xSectorSize(Real(f));
  }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
  }
  static int ShmMap(sqlite3_file* f, int region, int size, int extend,
                    void volatile** out) {
    return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    // Only the WAL write lock: readers and checkpoints are not blocked by
    // another process's write transaction either.
    if ((flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) &&
        offset == kWalWriteLock && ctl->busy_.load()) {
      ctl->busy_locks_.fetch_add(1);
      return SQLITE_BUSY;
    }
    return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) {
    Real(f)->pMethods->xShmBarrier(Real(f));
  }
  static int ShmUnmap(sqlite3_file* f, int del) {
    return Real(f)->pMethods->xShmUnmap(Real(f), del);
  }
  static int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
    sqlite3_file* r = Real(f);
    if (r->pMethods->iVersion < 3) {
      *out = nullptr;
      return SQLITE_OK;
    }
    return r->pMethods->xFetch(r, off, n, out);
  }
  static int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
    sqlite3_file* r = Real(f);
    if (r->pMethods->iVersion < 3) return SQLITE_OK;
    return r->pMethods->xUnfetch(r, off, p);
  }

  static int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f,
                  int flags, int* out_flags) {
    File* file = reinterpret_cast<File*>(f);
    file->base.pMethods = nullptr;
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    file->faultable = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
    file->name = name;
    if ((flags & SQLITE_OPEN_MAIN_DB) != 0) ctl->main_opens_.fetch_add(1);
    int rc = real_vfs->xOpen(real_vfs, name, file->real, flags, out_flags);
    // SQLite calls xClose only when pMethods is set; the real file may
    // need its close even after a failed open.
    if (file->real->pMethods != nullptr) file->base.pMethods = &methods;
    return rc;
  }
  static int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
    if (ctl->cut_.load()) return SQLITE_IOERR_DELETE;
    if (UnsyncedWrites* u = ctl->unsynced_.load(); u != nullptr && !sync_dir) {
      MutexLock lock(u->mu());
      std::ifstream in(name, std::ios::binary);
      if (in) {
        u->Deleted(name, std::string(std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>()));
      }
      return real_vfs->xDelete(real_vfs, name, sync_dir);
    }
    return real_vfs->xDelete(real_vfs, name, sync_dir);
  }
  static int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return real_vfs->xAccess(real_vfs, name, flags, out);
  }
  static int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return real_vfs->xFullPathname(real_vfs, name, n, out);
  }
  static void* DlOpen(sqlite3_vfs*, const char* name) {
    return real_vfs->xDlOpen(real_vfs, name);
  }
  static void DlError(sqlite3_vfs*, int n, char* out) {
    real_vfs->xDlError(real_vfs, n, out);
  }
  static void (*DlSym(sqlite3_vfs*, void* h, const char* sym))(void) {
    return real_vfs->xDlSym(real_vfs, h, sym);
  }
  static void DlClose(sqlite3_vfs*, void* h) {
    real_vfs->xDlClose(real_vfs, h);
  }
  static int Randomness(sqlite3_vfs*, int n, char* out) {
    return real_vfs->xRandomness(real_vfs, n, out);
  }
  static int SleepVfs(sqlite3_vfs*, int us) {
    return real_vfs->xSleep(real_vfs, us);
  }
  static int CurrentTime(sqlite3_vfs*, double* out) {
    return real_vfs->xCurrentTime(real_vfs, out);
  }
  static int GetLastError(sqlite3_vfs*, int n, char* out) {
    return real_vfs->xGetLastError != nullptr
               ? real_vfs->xGetLastError(real_vfs, n, out)
               : 0;
  }
  static int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
  }
};

FaultVfs* FaultVfsCallbacks::ctl = nullptr;
sqlite3_vfs* FaultVfsCallbacks::real_vfs = nullptr;
sqlite3_vfs FaultVfsCallbacks::vfs = {};
sqlite3_io_methods FaultVfsCallbacks::methods = {};

void FaultVfs::Reset() {
  write_fault_.store(0);
  sync_fault_.store(0);
  write_delay_ms_.store(0);
  sync_delay_ms_.store(0);
  busy_.store(false);
  unsynced_.store(nullptr);
  cut_.store(false);
  writes_.store(0);
  syncs_.store(0);
  failed_writes_.store(0);
  failed_syncs_.store(0);
  busy_locks_.store(0);
  main_opens_.store(0);
}

StatusOr<FaultVfs*> FaultVfs::Install() {
  using C = FaultVfsCallbacks;
  static std::once_flag once;
  static int rc = SQLITE_OK;
  std::call_once(once, [] {
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    if (real == nullptr || real->iVersion < 2) {
      rc = SQLITE_ERROR;
      return;
    }
    C::real_vfs = real;
    C::ctl = new FaultVfs();  // lives as long as the registered VFS
    sqlite3_io_methods& m = C::methods;
    m.iVersion = 3;
    m.xClose = C::Close;
    m.xRead = C::Read;
    m.xWrite = C::Write;
    m.xTruncate = C::Truncate;
    m.xSync = C::Sync;
    m.xFileSize = C::FileSize;
    m.xLock = C::Lock;
    m.xUnlock = C::Unlock;
    m.xCheckReservedLock = C::CheckReservedLock;
    m.xFileControl = C::FileControl;
    m.xSectorSize = C::SectorSize;
    m.xDeviceCharacteristics = C::DeviceCharacteristics;
    m.xShmMap = C::ShmMap;
    m.xShmLock = C::ShmLock;
    m.xShmBarrier = C::ShmBarrier;
    m.xShmUnmap = C::ShmUnmap;
    m.xFetch = C::Fetch;
    m.xUnfetch = C::Unfetch;
    sqlite3_vfs& v = C::vfs;
    v.iVersion = 2;
    v.szOsFile = static_cast<int>(sizeof(C::File)) + real->szOsFile;
    v.mxPathname = real->mxPathname;
    v.zName = kName;
    v.xOpen = C::Open;
    v.xDelete = C::Delete;
    v.xAccess = C::Access;
    v.xFullPathname = C::FullPathname;
    v.xDlOpen = C::DlOpen;
    v.xDlError = C::DlError;
    v.xDlSym = C::DlSym;
    v.xDlClose = C::DlClose;
    v.xRandomness = C::Randomness;
    v.xSleep = C::SleepVfs;
    v.xCurrentTime = C::CurrentTime;
    v.xGetLastError = C::GetLastError;
    v.xCurrentTimeInt64 = C::CurrentTimeInt64;
    rc = sqlite3_vfs_register(&v, /*makeDflt=*/0);
  });
  if (rc != SQLITE_OK) {
    return Status::IOError(std::string("registering the fault VFS: ") +
                           sqlite3_errstr(rc));
  }
  return C::ctl;
}

}  // namespace convstore::internal
