// Copyright 2026 The convstore Authors.

#include "sqlite/wal_checkpointer.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sqlite/fault_vfs.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"

namespace convstore::internal {
namespace {

using convstore::test::TempDir;

constexpr int kThreshold = 16;  // frames

// A WAL-mode database with one table, on `vfs` (empty: the default VFS).
std::unique_ptr<Db> OpenWriter(const std::string& path,
                               const std::string& vfs = "") {
  std::unique_ptr<Db> db;
  REQUIRE(Db::Open(path, /*create=*/true, &db, vfs).ok());
  REQUIRE(db->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                   "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
              .ok());
  return db;
}

// One transaction of `rows` rows of about 1 KB (about one WAL frame per
// four rows, plus the b-tree pages it touches).
void Write(Db* db, int rows) {
  REQUIRE(db->Exec("BEGIN").ok());
  for (int i = 0; i < rows; ++i) {
    REQUIRE(db->Exec("INSERT INTO t(v) VALUES (randomblob(1000))").ok());
  }
  REQUIRE(db->Exec("COMMIT").ok());
}

int64_t Query(Db* db, const char* sql) {
  int64_t v = -1;
  REQUIRE(db->QueryInt(sql, &v).ok());
  return v;
}

// The fault-injecting VFS, registered, with no fault set.
FaultVfs* CleanFaultVfs() {
  StatusOr<FaultVfs*> v = FaultVfs::Install();
  REQUIRE(v.ok());
  v.value()->Reset();
  return v.value();
}

// A writer connection on a fresh file with a checkpointer installed on it.
struct Fixture {
  explicit Fixture(const std::string& vfs = "")
      : path(dir.File("c.db")), writer(OpenWriter(path, vfs)) {
    REQUIRE(WalCheckpointer::Start(path, vfs, kThreshold, &c).ok());
    c->Install(writer->raw());
  }
  // Stops the checkpointer; returns the rows the writer sees.
  int64_t StopAndCount() {
    WalCheckpointer::Uninstall(writer->raw());
    c.reset();
    return Query(writer.get(), "SELECT count(*) FROM t");
  }

  TempDir dir;
  const std::string path;
  std::unique_ptr<Db> writer;
  std::unique_ptr<WalCheckpointer> c;
};

// Waits up to 10 s for `done()`.
template <typename F>
bool Eventually(F done) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST_CASE("A WAL past the threshold is checkpointed by the background thread",
          "[wal_checkpointer]") {
  Fixture f;
  const int64_t version = Query(f.writer.get(), "PRAGMA data_version");

  Write(f.writer.get(), 8);  // a few frames: below the threshold
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(f.c->passes().background == 0);

  Write(f.writer.get(), 100);  // about 30 frames
  REQUIRE(Eventually([&] { return f.c->passes().background >= 1; }));
  CHECK(f.c->passes().writer == 0);
  CHECK(f.c->LastError().ok());
  // A checkpoint by another connection is not a commit: the writer, which
  // forgets its row caches when data_version moves, keeps them.
  CHECK(Query(f.writer.get(), "PRAGMA data_version") == version);
  // The pass (asked for by the second commit) copied both transactions
  // into the database file: a copy of the file without its WAL has them.
  const std::string copy = f.dir.File("copy.db");
  std::filesystem::copy_file(f.path, copy);
  std::unique_ptr<Db> file_only;
  REQUIRE(Db::Open(copy, /*create=*/false, &file_only).ok());
  CHECK(Query(file_only.get(), "SELECT count(*) FROM t") == 108);
  CHECK(f.StopAndCount() == 108);
}

TEST_CASE("Under continuous writes the WAL starts over and stays bounded",
          "[wal_checkpointer]") {
  Fixture f;
  // About 100 thresholds' worth of frames in small transactions. A passive
  // checkpoint racing the commits rarely copies the whole WAL, and the WAL
  // starts over only after one did: without the writer finishing a pass,
  // the file grows with every commit.
  // Under load the thread may not get a turn before the writer takes over
  // at 8x; keep writing until it has had one.
  int transactions = 0;
  while (transactions < 800 ||
         (f.c->passes().background == 0 && transactions < 100000)) {
    Write(f.writer.get(), 8);
    ++transactions;
  }
  const WalCheckpointer::Passes p = f.c->passes();
  INFO("background " << p.background << ", writer " << p.writer);
  CHECK(p.background >= 1);
  CHECK(p.writer >= 1);
  // The largest the WAL may get: 8 thresholds, plus one transaction (at
  // most 8 frames here) and the frames of the commit that crossed it.
  const int64_t page = Query(f.writer.get(), "PRAGMA page_size");
  const auto wal = std::filesystem::file_size(f.path + "-wal");
  CHECK(wal <=
        static_cast<uintmax_t>((8 * kThreshold + 16) * (page + 24) + 32));
  CHECK(f.c->LastError().ok());
  CHECK(f.StopAndCount() == 8 * transactions);
}

TEST_CASE("A failed background checkpoint is reported until a pass succeeds",
          "[wal_checkpointer]") {
  FaultVfs* vfs = CleanFaultVfs();
  Fixture f(FaultVfs::kName);

  // A WAL-mode commit at synchronous=NORMAL does not fsync; a checkpoint
  // fsyncs the WAL before copying it, and that fails.
  vfs->FailSyncs(FaultVfs::Fault::kIoError);
  Write(f.writer.get(), 100);
  Status error;
  REQUIRE(Eventually([&] {
    error = f.c->LastError();
    return !error.ok();
  }));
  CHECK(error.IsIOError());
  CHECK(f.c->LastError().IsIOError());  // until a pass succeeds
  CHECK(f.c->passes().background == 0);

  vfs->Reset();
  Write(f.writer.get(), 100);  // the next pass copies both transactions
  REQUIRE(Eventually([&] { return f.c->passes().background >= 1; }));
  CHECK(f.c->LastError().ok());
  CHECK(f.StopAndCount() == 200);
}

TEST_CASE(
    "Stop from several threads at once returns in each after the thread ends",
    "[wal_checkpointer]") {
  FaultVfs* vfs = CleanFaultVfs();
  Fixture f(FaultVfs::kName);

  // A pass in progress when Stop is called: its fsync is slowed, so the
  // first Stop's join waits for it while the other callers arrive.
  vfs->DelaySyncs(std::chrono::milliseconds(200));
  Write(f.writer.get(), 100);
  REQUIRE(Eventually([&] { return vfs->syncs() >= 1; }));
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 4; ++i) {
    stoppers.emplace_back([&] { f.c->Stop(); });
  }
  for (std::thread& t : stoppers) t.join();
  vfs->Reset();

  // Every caller returned after the thread ended: more writes past the
  // threshold get no background pass.
  const uint64_t background = f.c->passes().background;
  Write(f.writer.get(), 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(f.c->passes().background == background);
  f.c->Stop();  // idempotent
  CHECK(f.StopAndCount() == 200);
}

}  // namespace
}  // namespace convstore::internal
