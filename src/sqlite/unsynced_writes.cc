// Copyright 2026 The convstore Authors.

#include "sqlite/unsynced_writes.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace convstore::internal {

namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

Status PutBytes(int fd, const std::string& path, int64_t offset,
                const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                 static_cast<off_t>(offset) + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("pwrite", path);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status Resize(int fd, const std::string& path, int64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return Errno("ftruncate", path);
  }
  return Status::OK();
}

// Undoes `c` (the file is as `c` left it).
Status Undo(int fd, const std::string& path, const UnsyncedWrites::Change& c) {
  Status s = Resize(fd, path, c.old_size);
  if (s.ok()) s = PutBytes(fd, path, c.offset, c.old_bytes);
  return s;
}

// Applies `c` again (the file is as it was before `c`).
Status Redo(int fd, const std::string& path, const UnsyncedWrites::Change& c) {
  if (c.truncate) return Resize(fd, path, c.offset);
  return PutBytes(fd, path, c.offset, c.new_bytes);
}

}  // namespace

void UnsyncedWrites::Record(const std::string& path, Change change) {
  changes_[path].push_back(std::move(change));
}

void UnsyncedWrites::Synced(const std::string& path) { changes_.erase(path); }

size_t UnsyncedWrites::pending() {
  MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [path, changes] : changes_) n += changes.size();
  return n;
}

Status UnsyncedWrites::Rewind(
    const std::function<bool(const std::string&, size_t)>& keep) {
  std::map<std::string, std::vector<Change>> all;
  {
    MutexLock lock(&mu_);
    all.swap(changes_);
  }
  for (const auto& [path, changes] : all) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      // Deleted since (SQLite removes the WAL at its last close): nothing
      // of it to take back.
      if (errno == ENOENT) continue;
      return Errno("open", path);
    }
    Status s;
    // Back to the state of the last fsync, newest change first...
    for (auto it = changes.rbegin(); s.ok() && it != changes.rend(); ++it) {
      s = Undo(fd, path, *it);
    }
    // ...then forward through the changes the disk kept, in order.
    for (size_t i = 0; s.ok() && i < changes.size(); ++i) {
      if (keep(path, i)) s = Redo(fd, path, changes[i]);
    }
    if (s.ok() && ::fsync(fd) != 0) s = Errno("fsync", path);
    ::close(fd);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace convstore::internal
