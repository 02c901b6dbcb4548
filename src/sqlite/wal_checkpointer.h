// Copyright 2026 The convstore Authors.
//
// WalCheckpointer: copies the WAL back into the database file on a thread
// of its own, so the writer thread does not spend its time between batches
// on checkpoints (copying the frames and fsyncing the database file). With
// SQLite's auto-checkpoint on the writer connection that copy took about
// 20-40% of the writer's time with an empty file (docs/benchmarks.md,
// "Checkpoints off the writer thread").
//
// The writer connection's auto-checkpoint is replaced by a WAL hook that
// calls AfterCommit with the WAL's size after each commit:
//
// - Once `threshold` frames have arrived that no pass has copied yet, the
//   background thread runs a PASSIVE checkpoint on its own connection. A
//   passive checkpoint never blocks the writer or readers; it copies the
//   frames no reader still needs and fsyncs the database file.
// - A passive pass that runs while the writer commits almost never copies
//   the whole WAL, and SQLite starts the WAL over only when it has been
//   copied in full: left alone the file would grow for as long as writes
//   keep coming. So once the WAL holds `4 * threshold` frames and the
//   background has copied all but at most `threshold` of them, the writer
//   runs one passive pass itself, inside its commit: it copies the rest,
//   and the next batch starts the WAL over. At `8 * threshold` frames (the
//   background is behind, for example on a slow disk) the
//   committing writer waits for a pass in progress to end and then
//   checkpoints itself, as SQLite's auto-checkpoint would. The WAL stays
//   below about 8 thresholds plus one transaction unless a reader holds a
//   snapshot older than the frames (no checkpoint may copy past it, and the
//   WAL cannot start over while it is held) or one transaction is larger.
//
// A failed pass loses nothing (the frames stay in the WAL, and the next pass
// copies them); LastError reports it until a pass succeeds.
//
// Thread safety: AfterCommit runs on the writer thread (the thread that owns
// the writer connection); LastError, passes and Stop from any thread (each
// Stop returns once the thread has ended). The destructor stops the thread
// too and must not race with other calls. The checkpointer's own connection is
// used only by its thread. State shared with that thread is guarded by mu_.

#ifndef CONVSTORE_SRC_SQLITE_WAL_CHECKPOINTER_H_
#define CONVSTORE_SRC_SQLITE_WAL_CHECKPOINTER_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "convstore/status.h"
#include "mutex.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

class WalCheckpointer {
 public:
  // How many checkpoint passes ran, by whom.
  struct Passes {
    uint64_t background = 0;
    uint64_t writer = 0;
  };

  // Opens a connection of its own on `path` (an existing WAL-mode database;
  // `vfs` as for Db::Open) and starts the thread. `threshold_frames` > 0.
  static Status Start(const std::string& path, const std::string& vfs,
                      int threshold_frames,
                      std::unique_ptr<WalCheckpointer>* out);
  // Stops the thread (a pass in progress finishes first).
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Installs AfterCommit as `writer`'s WAL hook, replacing SQLite's
  // auto-checkpoint on it. Uninstall before closing `writer` or destroying
  // this object.
  void Install(sqlite3* writer);
  static void Uninstall(sqlite3* writer);

  // After a commit on `writer` left `frames` frames in its WAL: asks the
  // background thread for a pass, or runs one on `writer` itself (see the
  // header comment). Writer thread only.
  void AfterCommit(sqlite3* writer, int frames) ABSL_LOCKS_EXCLUDED(mu_);

  // The error of the last pass if it failed; OK once a pass succeeds (or
  // if none ran). A busy pass (another connection is checkpointing) is not
  // a failure and changes nothing.
  Status LastError() ABSL_LOCKS_EXCLUDED(mu_);
  Passes passes() ABSL_LOCKS_EXCLUDED(mu_);

  // Stops the thread and returns once it has ended; idempotent, and safe
  // from several threads at once.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  WalCheckpointer(std::unique_ptr<Db> db, int threshold_frames);
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  // Records the result of a pass that found `log` frames in the WAL and
  // copied through frame `copied`.
  void Finish(int rc, int log, int copied, sqlite3* db, bool background)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<Db> db_;
  const int threshold_;
  Mutex mu_;
  CondVar cv_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The WAL frame through which the last pass copied; 0 after a pass
  // copied the whole WAL (the next commit starts it over).
  int copied_ ABSL_GUARDED_BY(mu_) = 0;
  Passes passes_ ABSL_GUARDED_BY(mu_);
  Status error_ ABSL_GUARDED_BY(mu_);  // of the last pass that ran
  std::thread thread_;
  std::once_flag joined_;  // the first Stop joins thread_
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_WAL_CHECKPOINTER_H_
