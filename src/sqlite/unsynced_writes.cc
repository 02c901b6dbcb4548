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

void UnsyncedWrites::Synced(const std::string& path) {
  changes_.erase(path);
  // An fsync commits the file system's journal, with every earlier change
  // of a directory in it (ext4, xfs): earlier deletions stay done.
  deleted_.clear();
}

void UnsyncedWrites::Deleted(const std::string& path, std::string bytes) {
  DeletedFile& d = deleted_[path];
  d.bytes = std::move(bytes);
  auto it = changes_.find(path);
  if (it == changes_.end()) return;
  d.changes = std::move(it->second);
  changes_.erase(it);
}

size_t UnsyncedWrites::pending() {
  MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [path, changes] : changes_) n += changes.size();
  return n;
}

Status UnsyncedWrites::Rewind(
    const std::function<bool(const std::string&, size_t)>& keep) {
  std::map<std::string, std::vector<Change>> all;
  std::map<std::string, DeletedFile> deleted;
  {
    MutexLock lock(&mu_);
    all.swap(changes_);
    deleted.swap(deleted_);
  }
  for (auto& [path, d] : deleted) {
    // The directory entry's removal was never synced: the file is back,
    // unless a new one took the name.
    if (all.count(path) != 0) continue;
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return Errno("create", path);
    }
    Status s = PutBytes(fd, path, 0, d.bytes);
    ::close(fd);
    if (!s.ok()) return s;
    all[path] = std::move(d.changes);  // taken back below
  }
  for (const auto& [path, changes] : all) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      // Deleted with its directory synced: nothing of it comes back.
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
