// Copyright 2026 The convstore Authors.
//
// Faults under the store, injected through the FaultVfs shim
// (src/sqlite/fault_vfs.h) or a second connection: disk full during a
// batch, EIO on fsync, another connection holding the write lock, slow
// fsync; and the durability classes (best-effort shedding, sync messages).
// Each test checks, after reopening the file without faults, that every
// acknowledged write is present, in order.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"
#include "sqlite/fault_vfs.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"
#include "write_path.h"

namespace convstore {
namespace {

using internal::FaultVfs;
using std::chrono::milliseconds;
using test::Hist;
using test::Msg;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

FaultVfs* Vfs() {
  StatusOr<FaultVfs*> v = FaultVfs::Install();
  REQUIRE(v.ok());
  (*v)->Reset();
  return *v;
}

// Options on the fault VFS with a short retry budget, so a fault turns into
// degraded health quickly.
Options FaultOptions(const TempDir& dir) {
  Options o = TestOptions(dir);
  o.sqlite_vfs = FaultVfs::kName;
  o.log_level = LogLevel::kOff;
  o.retry_initial_backoff = milliseconds(2);
  o.retry_max_backoff = milliseconds(20);
  o.retry_budget = milliseconds(100);
  return o;
}

// Appends `n` messages to each of `convs` conversations, round robin;
// every Append must be acknowledged. Records what was acknowledged.
void AppendAll(Store* store, int convs, int n,
               std::map<std::string, std::vector<std::string>>* acked) {
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < convs; ++c) {
      std::string id = "c" + std::to_string(c);
      std::string content = id + "-" + std::to_string((*acked)[id].size());
      StatusOr<AppendResult> r = store->Append(id, Msg(Role::kUser, content));
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      (*acked)[id].push_back(content);
    }
  }
}

// Waits (bounded) until Health() reports an error and returns it.
Status AwaitDegraded(Store* store) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store->Health().ok() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  return store->Health();
}

// Reopens the file on the default VFS and checks that every conversation
// holds exactly what was acknowledged, in order.
void CheckAllPresent(
    const Options& faulty,
    const std::map<std::string, std::vector<std::string>>& acked) {
  Options o = faulty;
  o.sqlite_vfs.clear();
  o.warm_conversations = 0;
  auto store = OpenOrDie(o);
  for (const auto& [id, contents] : acked) {
    HistoryOptions h;
    h.from_storage = true;
    std::vector<MessagePtr> got = Hist(store.get(), id, h);
    std::vector<std::string> got_contents = test::Contents(got);
    INFO("conversation " << id);
    CHECK(got_contents == contents);
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i]->seq == static_cast<int64_t>(i + 1));
    }
  }
  std::unique_ptr<internal::Db> db;
  REQUIRE(internal::Db::Open(o.path, false, &db).ok());
  int64_t ok = 0;
  REQUIRE(db->QueryInt("SELECT count(*) FROM pragma_integrity_check "
                       "WHERE integrity_check = 'ok'",
                       &ok)
              .ok());
  CHECK(ok == 1);
  REQUIRE(store->Close().ok());
}

// A commit fault (disk full or EIO, on write or fsync) while a workload
// runs: the writes stay in memory, Health/Flush/Stats report the fault with
// IOError, and once it clears everything is written.
void RunCommitFault(Options o, const std::function<void(FaultVfs*)>& inject,
                    const std::function<uint64_t(FaultVfs*)>& injected,
                    const std::string& expect_in_error) {
  FaultVfs* vfs = Vfs();
  std::map<std::string, std::vector<std::string>> acked;
  {
    auto store = OpenOrDie(o);
    AppendAll(store.get(), 4, 10, &acked);
    REQUIRE(store->Flush().ok());

    inject(vfs);
    AppendAll(store.get(), 4, 50, &acked);
    Status h = AwaitDegraded(store.get());
    INFO(h.ToString());
    CHECK(h.IsIOError());
    CHECK(h.message().find(expect_in_error) != std::string::npos);
    CHECK(injected(vfs) > 0);
    // Flush reports the sticky error rather than waiting out its timeout.
    Status f = store->Flush(std::chrono::seconds(20));
    CHECK(f.IsIOError());
    Stats st = store->GetStats();
    CHECK(st.background_error == h.ToString());
    CHECK(st.durable_lsn < st.appended_lsn);
    CHECK(st.commit_errors > 0);
    CHECK(st.writes_failed == 0);
    // Reads still see every acknowledged write (from memory).
    for (const auto& [id, contents] : acked) {
      CHECK(test::Contents(Hist(store.get(), id)) == contents);
    }
    // More writes are still taken while degraded (within the queue bound).
    AppendAll(store.get(), 4, 5, &acked);

    vfs->Reset();  // space returns / the device recovers
    Status ok = store->Flush(std::chrono::seconds(20));
    INFO(ok.ToString());
    REQUIRE(ok.ok());
    CHECK(store->Health().ok());
    CHECK(store->GetStats().background_error.empty());
    StatusOr<CloseReport> r = store->Close();
    REQUIRE(r.ok());
    CHECK(r->remaining == 0);
    CHECK(r->failed == 0);
  }
  CheckAllPresent(o, acked);
}

TEST_CASE("Disk full during a batch loses nothing once space returns",
          "[fault]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  RunCommitFault(
      o, [](FaultVfs* v) { v->FailWrites(FaultVfs::Fault::kDiskFull); },
      [](FaultVfs* v) { return v->failed_writes(); }, "full");
}

TEST_CASE("EIO on write during a batch loses nothing once it clears",
          "[fault]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  RunCommitFault(
      o, [](FaultVfs* v) { v->FailWrites(FaultVfs::Fault::kIoError); },
      [](FaultVfs* v) { return v->failed_writes(); }, "I/O error");
}

TEST_CASE("EIO on fsync (synchronous=FULL) loses nothing once it clears",
          "[fault]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  o.sync_mode = SyncMode::kFull;  // NORMAL does not fsync the WAL on commit
  RunCommitFault(
      o, [](FaultVfs* v) { v->FailSyncs(FaultVfs::Fault::kIoError); },
      [](FaultVfs* v) { return v->failed_syncs(); }, "I/O error");
}

TEST_CASE("ENOSPC on fsync (synchronous=FULL) loses nothing", "[fault]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  o.sync_mode = SyncMode::kFull;
  RunCommitFault(
      o, [](FaultVfs* v) { v->FailSyncs(FaultVfs::Fault::kDiskFull); },
      [](FaultVfs* v) { return v->failed_syncs(); }, "full");
}

// Another connection holds BEGIN IMMEDIATE for ~3 s while the store takes
// appends, a sync append and a Flush: the writer meets busy, retries with
// backoff, and no caller sees an error; nothing is lost.
TEST_CASE("A second connection holding the write lock for 3 s",
          "[fault][lock]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.log_level = LogLevel::kOff;
  o.busy_timeout = milliseconds(200);  // so the writer sees busy and retries
  o.retry_initial_backoff = milliseconds(5);
  o.retry_max_backoff = milliseconds(100);
  o.retry_budget = std::chrono::seconds(30);  // not degraded for a 3 s hold
  std::map<std::string, std::vector<std::string>> acked;
  {
    auto store = OpenOrDie(o);
    AppendAll(store.get(), 3, 5, &acked);
    REQUIRE(store->Flush().ok());

    std::unique_ptr<internal::Db> other;
    REQUIRE(internal::Db::Open(o.path, false, &other).ok());
    REQUIRE(other->Exec("BEGIN IMMEDIATE").ok());
    std::thread holder([&] {
      std::this_thread::sleep_for(std::chrono::seconds(3));
      REQUIRE(other->Exec("COMMIT").ok());
    });
    AppendAll(store.get(), 3, 40, &acked);
    AppendOptions sync;
    sync.sync = true;
    sync.sync_timeout = std::chrono::seconds(30);
    StatusOr<AppendResult> r =
        store->Append("c0", Msg(Role::kUser, "c0-sync"), sync);
    acked["c0"].push_back("c0-sync");
    INFO(r.status().ToString());
    CHECK(r.ok());
    Status f = store->Flush(std::chrono::seconds(30));
    INFO(f.ToString());
    CHECK(f.ok());
    holder.join();
    Stats st = store->GetStats();
    CHECK(st.commit_errors > 0);  // the lock was really met
    CHECK(st.retries > 0);
    CHECK(st.background_error.empty());
    CHECK(store->Health().ok());
    REQUIRE(store->Close().ok());
  }
  CheckAllPresent(o, acked);
}

// The same through the VFS, past the retry budget: the store degrades with
// Unavailable, and recovers by itself when the lock is released.
TEST_CASE("Write lock busy past the retry budget degrades, then recovers",
          "[fault][lock]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  o.busy_timeout = milliseconds(10);
  FaultVfs* vfs = Vfs();
  std::map<std::string, std::vector<std::string>> acked;
  {
    auto store = OpenOrDie(o);
    AppendAll(store.get(), 2, 5, &acked);
    REQUIRE(store->Flush().ok());
    vfs->HoldWriteLock(true);
    AppendAll(store.get(), 2, 20, &acked);
    Status h = AwaitDegraded(store.get());
    INFO(h.ToString());
    CHECK(h.IsUnavailable());
    CHECK(vfs->busy_locks() > 0);
    CHECK(store->Flush(std::chrono::seconds(5)).IsUnavailable());
    vfs->HoldWriteLock(false);
    Status f = store->Flush(std::chrono::seconds(20));
    INFO(f.ToString());
    REQUIRE(f.ok());
    CHECK(store->Health().ok());
    REQUIRE(store->Close().ok());
  }
  CheckAllPresent(o, acked);
}

// Every fsync takes 20 ms (synchronous=FULL): Flush still completes, and
// the writes acknowledged but not durable never exceed the queue bound
// (the loss window in count).
TEST_CASE("Slow fsync: Flush completes and the loss window holds", "[fault]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  o.sync_mode = SyncMode::kFull;
  o.queue_max_items = 32;
  o.queue_full_wait = std::chrono::seconds(30);
  o.retry_budget = std::chrono::seconds(30);
  FaultVfs* vfs = Vfs();
  std::map<std::string, std::vector<std::string>> acked;
  {
    auto store = OpenOrDie(o);
    vfs->DelaySyncs(milliseconds(20));
    uint64_t max_pending = 0;
    for (int i = 0; i < 300; ++i) {
      std::string id = "c" + std::to_string(i % 3);
      std::string content = id + "-" + std::to_string(acked[id].size());
      StatusOr<AppendResult> r = store->Append(id, Msg(Role::kUser, content));
      REQUIRE(r.ok());
      acked[id].push_back(content);
      // Only this thread appends, so the two LSNs are consistent here.
      Stats st = store->GetStats();
      max_pending = std::max(max_pending, st.appended_lsn - st.durable_lsn);
    }
    CHECK(max_pending <= o.queue_max_items);
    CHECK(max_pending > 1);  // the slow disk did hold writes back
    Status f = store->Flush(std::chrono::seconds(30));
    INFO(f.ToString());
    REQUIRE(f.ok());
    CHECK(vfs->syncs() > 0);
    CHECK(store->Health().ok());
    vfs->Reset();
    REQUIRE(store->Close().ok());
  }
  CheckAllPresent(o, acked);
}

TEST_CASE("Best-effort writes are shed first when the queue fills",
          "[fault][durability]") {
  TempDir dir;
  Options o = FaultOptions(dir);
  o.queue_max_items = 16;
  o.queue_full_wait = milliseconds(0);
  o.retry_budget = std::chrono::seconds(30);
  FaultVfs* vfs = Vfs();
  std::map<std::string, std::vector<std::string>> acked;
  {
    auto store = OpenOrDie(o);
    auto* path = dynamic_cast<internal::WritePath*>(store.get());
    REQUIRE(path != nullptr);
    vfs->FailWrites(FaultVfs::Fault::kIoError);  // nothing drains
    int best_effort_ok = 0;
    for (int i = 0; i < 14; ++i) {
      StatusOr<uint64_t> r = path->Submit(
          internal::DeleteConversationOp{"gone"}, 64, o.durability.cache);
      if (r.ok()) {
        ++best_effort_ok;
      } else {
        CHECK(r.status().IsResourceExhausted());
      }
    }
    CHECK(best_effort_ok == 12);  // 3/4 of 16
    // The last quarter is still there for batched messages.
    AppendAll(store.get(), 1, 4, &acked);
    CHECK(store->Append("c0", Msg(Role::kUser, "x"))
              .status()
              .IsResourceExhausted());
    Stats st = store->GetStats();
    CHECK(st.best_effort_shed == 2);
    CHECK(st.queue_rejections == 1);
    vfs->Reset();
    REQUIRE(store->Flush(std::chrono::seconds(20)).ok());
    REQUIRE(store->Close().ok());
  }
  CheckAllPresent(o, acked);
}

TEST_CASE("Messages of the sync class are durable when Append returns",
          "[durability]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_flush_delay = std::chrono::seconds(10);  // batching alone would wait
  o.durability.messages = Durability::kSync;
  std::map<std::string, std::vector<std::string>> acked;
  {
    auto store = OpenOrDie(o);
    for (int i = 0; i < 5; ++i) {
      StatusOr<AppendResult> r =
          store->Append("c0", Msg(Role::kUser, "m" + std::to_string(i)));
      REQUIRE(r.ok());
      acked["c0"].push_back("m" + std::to_string(i));
      CHECK(store->GetStats().durable_lsn >= r->lsn);
    }
    REQUIRE(store->Close().ok());
  }
  CheckAllPresent(o, acked);
}

TEST_CASE("Analytics reads open the file through Options::sqlite_vfs",
          "[fault]") {
  // They used SQLite's default VFS: with an encrypting VFS or one that
  // locks differently, analytics queries, Cleanup's WAL truncation and the
  // orphan check failed or mixed lock protocols on one WAL.
  FaultVfs* vfs = Vfs();
  TempDir dir;
  auto store = OpenOrDie(FaultOptions(dir));
  Analytics& a = store->analytics();
  REQUIRE(a.StartSession({"s", "", "", "", "", "", 0}).ok());
  REQUIRE(store->Flush().ok());
  const uint64_t before = vfs->main_opens();
  StatusOr<std::vector<SessionSummary>> recent = a.RecentSessions({});
  REQUIRE(recent.ok());
  CHECK(recent->size() == 1);
  CHECK(vfs->main_opens() > before);  // the analytics reader's connection
  REQUIRE(store->Close().ok());
}

}  // namespace
}  // namespace convstore
