// Copyright 2026 The convstore Authors.

#include "sqlite/wal_checkpointer.h"

#include <algorithm>
#include <chrono>
#include <climits>

#include "thread_name.h"

namespace convstore::internal {
namespace {

// The WAL size (in thresholds) at which the writer finishes a pass itself so
// that the WAL can start over, and at which it checkpoints regardless.
constexpr int kWriterFinishes = 4;
constexpr int kWriterTakesOver = 8;

int OnCommit(void* self, sqlite3* db, const char* /*schema*/, int frames) {
  static_cast<WalCheckpointer*>(self)->AfterCommit(db, frames);
  return SQLITE_OK;
}

}  // namespace

Status WalCheckpointer::Start(const std::string& path, const std::string& vfs,
                              int threshold_frames,
                              std::unique_ptr<WalCheckpointer>* out) {
  if (threshold_frames <= 0) {
    return Status::InvalidArgument("checkpoint threshold must be positive");
  }
  std::unique_ptr<Db> db;
  Status s = Db::Open(path, /*create=*/false, &db, vfs);
  if (!s.ok()) return s.WithPrefix("opening the checkpoint connection");
  // A checkpoint reads WAL frames and writes pages; it needs no page cache.
  s = db->Exec("PRAGMA cache_size = -64");
  if (!s.ok()) return s;
  // Far beyond any useful WAL size; keeps kWriterTakesOver * threshold in
  // an int.
  threshold_frames = std::min(threshold_frames, INT_MAX / kWriterTakesOver);
  std::unique_ptr<WalCheckpointer> c(
      new WalCheckpointer(std::move(db), threshold_frames));
  c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  NameThread(c->thread_, "convstore-ckpt");
  *out = std::move(c);
  return Status::OK();
}

WalCheckpointer::WalCheckpointer(std::unique_ptr<Db> db, int threshold_frames)
    : db_(std::move(db)), threshold_(threshold_frames) {}

WalCheckpointer::~WalCheckpointer() { Stop(); }

void WalCheckpointer::Install(sqlite3* writer) {
  sqlite3_wal_hook(writer, &OnCommit, this);
}

void WalCheckpointer::Uninstall(sqlite3* writer) {
  sqlite3_wal_hook(writer, nullptr, nullptr);
}

void WalCheckpointer::AfterCommit(sqlite3* writer, int frames) {
  {
    MutexLock lock(&mu_);
    // The WAL started over since the last pass.
    if (frames < copied_) copied_ = 0;
    const int uncopied = frames - copied_;
    if (frames >= kWriterTakesOver * threshold_) {
      // The background is behind: this commit waits for its pass to end
      // (or cancels one not yet begun) and copies the rest itself.
      requested_ = false;
      while (running_) {
        cv_.WaitUntil(&mu_, CondVar::Clock::now() + std::chrono::seconds(3600));
      }
    } else if (requested_ || running_) {
      return;
    } else if (frames < kWriterFinishes * threshold_ || uncopied > threshold_) {
      if (uncopied >= threshold_) {
        requested_ = true;
        cv_.SignalAll();
      }
      return;
    }
  }
  // The background thread is idle and cannot start a pass now (only this
  // thread requests one), so this pass runs alone and, with no reader
  // holding old frames, copies the whole WAL: the next commit starts it
  // over.
  int log = 0;
  int copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(
      writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  MutexLock lock(&mu_);
  Finish(rc, log, copied, writer, /*background=*/false);
}

void WalCheckpointer::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      while (!requested_ && !stop_) {
        cv_.WaitUntil(&mu_, CondVar::Clock::now() + std::chrono::seconds(3600));
      }
      if (stop_) return;
      requested_ = false;
      running_ = true;
    }
    int log = 0;
    int copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(
        db_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    MutexLock lock(&mu_);
    running_ = false;
    Finish(rc, log, copied, db_->raw(), /*background=*/true);
    cv_.SignalAll();  // a writer may wait for this pass (AfterCommit)
  }
}

void WalCheckpointer::Finish(int rc, int log, int copied, sqlite3* db,
                             bool background) {
  if (rc == SQLITE_OK) {
    // A pass that copied the whole WAL lets the next commit start it over:
    // counting from 0 then can only overestimate what is left to copy (if
    // a reader kept the WAL from starting over), which asks for one more
    // pass; counting from `copied` would miss a restart whose first commit
    // is already longer than `copied` frames.
    copied_ = copied == log ? 0 : copied;
    ++(background ? passes_.background : passes_.writer);
    error_ = Status::OK();
  } else if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) {
    error_ = SqliteStatus(rc, "wal checkpoint", db);
  }
}

Status WalCheckpointer::LastError() {
  MutexLock lock(&mu_);
  return error_;
}

WalCheckpointer::Passes WalCheckpointer::passes() {
  MutexLock lock(&mu_);
  return passes_;
}

void WalCheckpointer::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  // Concurrent callers wait in call_once until the first one's join ends.
  std::call_once(joined_, [this] {
    if (thread_.joinable()) thread_.join();
  });
}

}  // namespace convstore::internal
