// Copyright 2026 The convstore Authors.
//
// Erasure: what DeleteConversation, PruneMessages, Cache::Delete and
// Analytics::DeleteSession remove
// must leave the files, not only the tables. SQLite frees a deleted row's
// cell (and its overflow pages) but leaves the bytes where they were unless
// secure_delete is on, and the WAL keeps earlier frames until they are
// overwritten or the file is truncated. The store sets secure_delete on
// every connection that writes, and Close truncates the WAL, so once the
// store is closed (with CloseReport::wal_truncated) no byte of erased
// content is left in the directory (docs/durability.md, "Erasure"). While
// the store is open, copies may remain in the WAL until TruncateWal.

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "analytics_testutil.h"
#include "audit_testutil.h"
#include "clock.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::FilesContaining;
using test::Msg;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

constexpr int64_t kDayUs = 86'400'000'000;

// A message whose every text field carries `tag`, with a content long
// enough (6 KiB) to need an overflow page besides the short ones.
Message Tagged(const std::string& tag, int i, bool large) {
  Message m = Msg(i % 2 == 0 ? Role::kUser : Role::kTool,
                  tag + "-content-" + std::to_string(i));
  if (large) m.content += std::string(6 * 1024, 'x') + tag + "-tail";
  if (i % 2 == 1) {
    m.tool_call_id = tag + "-call-" + std::to_string(i);
    m.tool_name = tag + "-tool";
  }
  m.metadata = "{\"note\":\"" + tag + "-meta\"}";
  return m;
}

void AppendTagged(Store* store, const std::string& conv, const std::string& tag,
                  int n, int64_t created_at_us = 0) {
  for (int i = 0; i < n; ++i) {
    Message m = Tagged(tag, i, /*large=*/i % 5 == 0);
    m.created_at_us = created_at_us == 0 ? 0 : created_at_us + i;
    REQUIRE(store->Append(conv, std::move(m)).ok());
  }
}

// Writes `erased` and `kept` conversations, then closes and reopens, so
// that the rows are in the main file (Close checkpoints) before they are
// removed, not only in the WAL.
Options FilledStore(const TempDir& dir, int64_t erased_created_at_us = 0) {
  Options o = TestOptions(dir);
  o.index_merge_rows = 16;  // some rows merged into the index, some not
  auto store = OpenOrDie(o);
  AppendTagged(store.get(), "erased", "ERASEDTAG", 60, erased_created_at_us);
  AppendTagged(store.get(), "kept", "KEPTTAG", 20);
  REQUIRE(store->cache().Set("ns", "gone", "ERASEDTAG-cache-value", {}).ok());
  REQUIRE(store->cache().Set("ns", "stays", "KEPTTAG-cache-value", {}).ok());
  REQUIRE(store->Close().ok());
  REQUIRE(FilesContaining(dir, "ERASEDTAG") ==
          std::vector<std::string>{"test.db"});
  return o;
}

TEST_CASE("DeleteConversation leaves no byte of its messages in the files",
          "[erasure]") {
  TempDir dir;
  const Options o = FilledStore(dir);
  {
    auto store = OpenOrDie(o);
    StatusOr<uint64_t> del = store->DeleteConversation("erased");
    REQUIRE(del.ok());
    REQUIRE(store->WaitDurable(*del).ok());
    REQUIRE(store->cache().Delete("ns", "gone").ok());
    REQUIRE(store->Close().ok());
  }
  CHECK(FilesContaining(dir, "ERASEDTAG").empty());
  // The scan finds what was kept, so an empty result above means something.
  CHECK(FilesContaining(dir, "KEPTTAG-content-3") ==
        std::vector<std::string>{"test.db"});
  CHECK(FilesContaining(dir, "KEPTTAG-cache-value") ==
        std::vector<std::string>{"test.db"});
  auto store = OpenOrDie(o);
  CHECK(test::Hist(store.get(), "kept").size() == 20);
  CHECK(test::Hist(store.get(), "erased").empty());
  REQUIRE(store->Close().ok());
}

TEST_CASE("PruneMessages leaves no byte of what it removed in the files",
          "[erasure]") {
  TempDir dir;
  // "erased" is ten days old; "kept" is new.
  const Options o = FilledStore(dir, internal::WallMicros() - 10 * kDayUs);
  {
    auto store = OpenOrDie(o);
    MessageRetention r;
    r.max_age = std::chrono::hours(24 * 5);
    r.batch_rows = 7;  // several transactions
    StatusOr<RetentionReport> report = store->PruneMessages(r);
    INFO(report.status().ToString());
    REQUIRE(report.ok());
    CHECK(report->messages_removed == 60);
    REQUIRE(store->Close().ok());
  }
  CHECK(FilesContaining(dir, "ERASEDTAG-content").empty());
  CHECK(FilesContaining(dir, "ERASEDTAG-call").empty());
  CHECK(FilesContaining(dir, "ERASEDTAG-meta").empty());
  CHECK(FilesContaining(dir, "ERASEDTAG-tail").empty());
  CHECK(FilesContaining(dir, "KEPTTAG-content-3") ==
        std::vector<std::string>{"test.db"});
}

TEST_CASE("TruncateWal leaves no erased byte while the store stays open",
          "[erasure]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto store = OpenOrDie(o);
  // Written and deleted in this session: the content is in WAL frames.
  AppendTagged(store.get(), "erased", "ERASEDTAG", 40);
  AppendTagged(store.get(), "kept", "KEPTTAG", 10);
  REQUIRE(store->Flush().ok());
  StatusOr<uint64_t> del = store->DeleteConversation("erased");
  REQUIRE(del.ok());
  REQUIRE(store->WaitDurable(*del).ok());

  // A reader of another connection holding a snapshot keeps the WAL.
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(o.path.c_str(), &reader, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM messages;", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  Status busy = store->TruncateWal(std::chrono::milliseconds(50));
  INFO(busy.ToString());
  CHECK(busy.IsUnavailable());
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close_v2(reader);

  Status s = store->TruncateWal();
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(std::filesystem::file_size(o.path + "-wal") == 0);
  CHECK(FilesContaining(dir, "ERASEDTAG").empty());
  CHECK(FilesContaining(dir, "KEPTTAG-content-3") ==
        std::vector<std::string>{"test.db"});
  // The store goes on writing.
  REQUIRE(store->Append("kept", Msg(Role::kUser, "after")).ok());
  REQUIRE(store->Flush().ok());
  CHECK(store->TruncateWal(std::chrono::milliseconds(-1)).IsInvalidArgument());
  REQUIRE(store->Close().ok());
  CHECK(store->TruncateWal().IsFailedPrecondition());

  Options ro = o;
  ro.read_only = true;
  auto reading = OpenOrDie(ro);
  CHECK(reading->TruncateWal().IsFailedPrecondition());
  CHECK(test::Hist(reading.get(), "kept").size() == 11);
  REQUIRE(reading->Close().ok());
}

TEST_CASE("TruncateWal waiting for a reader does not degrade the writer",
          "[erasure]") {
  // A TRUNCATE checkpoint holds the write lock while it waits for readers:
  // one wait longer than busy_timeout failed the writer's batch, and Flush
  // reported the store degraded.
  TempDir dir;
  Options o = TestOptions(dir);
  o.busy_timeout = std::chrono::milliseconds(300);
  o.retry_budget = std::chrono::milliseconds(300);
  auto store = OpenOrDie(o);
  AppendTagged(store.get(), "kept", "KEPTTAG", 10);
  REQUIRE(store->Flush().ok());
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(o.path.c_str(), &reader, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM messages;", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  Status truncated;
  std::thread t(
      [&] { truncated = store->TruncateWal(std::chrono::seconds(2)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->Append("kept", Msg(Role::kUser, "during")).ok());
    Status f = store->Flush(std::chrono::seconds(5));
    INFO(f.ToString());
    CHECK(f.ok());
    CHECK(store->Health().ok());
  }
  t.join();
  CHECK(truncated.IsUnavailable());  // the reader held it throughout
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close_v2(reader);
  CHECK(store->TruncateWal().ok());
  REQUIRE(store->Close().ok());
}

// A connection of its own that holds a read snapshot (as a reader in
// another process would) until Release.
class SnapshotReader {
 public:
  explicit SnapshotReader(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY,
                            nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db_, "BEGIN; SELECT count(*) FROM messages;", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
  }
  ~SnapshotReader() { Release(); }
  void Release() {
    if (db_ == nullptr) return;
    (void)sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST_CASE("Close reports whether it truncated the WAL", "[erasure][close]") {
  // Close turns a truncation another connection blocks into OK (nothing is
  // lost); the report must still say that the WAL kept the deleted bytes.
  TempDir dir;
  Options o = TestOptions(dir);
  o.busy_timeout = std::chrono::milliseconds(200);  // Close's wait for it
  {
    auto store = OpenOrDie(o);
    AppendTagged(store.get(), "erased", "ERASEDTAG", 20);
    REQUIRE(store->Flush().ok());
    StatusOr<uint64_t> del = store->DeleteConversation("erased");
    REQUIRE(del.ok());
    REQUIRE(store->WaitDurable(*del).ok());
    SnapshotReader reader(o.path);
    StatusOr<CloseReport> r = store->Close();
    INFO(r.status().ToString());
    REQUIRE(r.ok());  // every write is in the database
    CHECK(r->remaining == 0);
    CHECK_FALSE(r->wal_truncated);
    const std::vector<std::string> holding =
        FilesContaining(dir, "ERASEDTAG-content-3");
    CHECK(std::find(holding.begin(), holding.end(), "test.db-wal") !=
          holding.end());
  }
  {
    auto store = OpenOrDie(o);
    StatusOr<CloseReport> r = store->Close();
    REQUIRE(r.ok());
    CHECK(r->wal_truncated);
  }
  CHECK(FilesContaining(dir, "ERASEDTAG").empty());
  // A read-only store never checkpoints.
  Options ro = o;
  ro.read_only = true;
  auto reading = OpenOrDie(ro);
  StatusOr<CloseReport> r = reading->Close();
  REQUIRE(r.ok());
  CHECK_FALSE(r->wal_truncated);
}

TEST_CASE("Close waits for a TruncateWal in progress", "[erasure][close]") {
  // TruncateWal was not counted among the calls Close waits for: Close
  // ran its own checkpoint while TruncateWal's reader connection held the
  // checkpoint lock or waited for a reader, failed to truncate, and
  // returned while TruncateWal still worked on the file.
  // The TruncateWal thread gets `head_start` to be inside before Close; on
  // a loaded machine it may not be (it then fails with FailedPrecondition,
  // which shows nothing), so the run is tried again with a longer one.
  bool checked = false;
  for (auto head_start = std::chrono::milliseconds(300);
       !checked && head_start <= std::chrono::milliseconds(2400);
       head_start *= 2) {
    TempDir dir;
    Options o = TestOptions(dir);
    o.busy_timeout = std::chrono::milliseconds(200);  // 50 ms slices
    auto store = OpenOrDie(o);
    AppendTagged(store.get(), "kept", "KEPTTAG", 10);
    REQUIRE(store->Flush().ok());
    SnapshotReader reader(o.path);
    Status truncated = Status::Internal("not run");
    std::atomic<bool> truncate_returned{false};
    std::thread t([&] {
      truncated = store->TruncateWal(std::chrono::seconds(5));
      truncate_returned = true;
    });
    std::this_thread::sleep_for(head_start);  // inside
    // The reader goes after Close has begun: the TruncateWal in progress
    // gets the WAL, and Close, after it, truncates again.
    std::thread release([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      reader.Release();
    });
    StatusOr<CloseReport> r = store->Close();
    const bool returned_before_close = truncate_returned.load();
    release.join();
    t.join();
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    if (truncated.code() == StatusCode::kFailedPrecondition) continue;  // late
    checked = true;
    CHECK(returned_before_close);
    INFO(truncated.ToString());
    CHECK(truncated.ok());
    CHECK(r->wal_truncated);
  }
  CHECK(checked);
}

TEST_CASE("TruncateWal waits for a pooled reader no longer than its timeout",
          "[erasure]") {
  // With every pooled reader leased, TruncateWal waited for one without
  // its timeout (up to a day): here until the other TruncateWal let go.
  TempDir dir;
  Options o = TestOptions(dir);
  o.read_connections = 1;
  auto store = OpenOrDie(o);
  AppendTagged(store.get(), "kept", "KEPTTAG", 10);
  REQUIRE(store->Flush().ok());
  SnapshotReader reader(o.path);
  // Holds the only reader connection for its whole 3 s.
  Status first;
  std::thread t([&] { first = store->TruncateWal(std::chrono::seconds(3)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  Status second = store->TruncateWal(std::chrono::milliseconds(200));
  const auto waited = std::chrono::steady_clock::now() - t0;
  INFO(second.ToString());
  CHECK(second.IsUnavailable());
  CHECK(waited < std::chrono::milliseconds(1500));
  t.join();
  INFO(first.ToString());
  CHECK(first.IsUnavailable());  // the reader held the WAL throughout
  // Other reads still wait for a connection as before.
  CHECK(test::Hist(store.get(), "kept").size() == 10);
  reader.Release();
  CHECK(store->TruncateWal().ok());
  REQUIRE(store->Close().ok());
}

// A session of every kind of record, each carrying `tag`.
void RecordTaggedSession(Analytics& a, const std::string& session,
                         const std::string& tag) {
  using test::RequireOk;
  RequireOk(
      a.StartSession({session, "conv-" + tag, "user-" + tag, "acme", "phone",
                      "{\"note\":\"" + tag + "-start\"}", test::kT0}));
  for (int i = 1; i <= 3; ++i) {
    TurnMetrics t = test::Turn(session, i, test::kT0 + i * test::kSec,
                               100.0 * i, "gpt", "openai");
    t.stt_model = tag + "-stt";
    RequireOk(a.RecordTurn(t));
  }
  RequireOk(a.RecordMetric({session, tag + "-metric", 1, {}, test::kT0}));
  RequireOk(a.RecordError({session, test::kT0 + 5 * test::kSec, "llm_error",
                           Severity::kHigh, tag + "-error", "", false}));
  RequireOk(a.RecordEvent(
      {session, test::kT0 + 6 * test::kSec, SystemEvent{tag + "-event", ""}}));
  RequireOk(a.EndSession({session, SessionStatus::kCompleted, "done",
                          test::kT0 + 60 * test::kSec}));
}

TEST_CASE("Analytics::DeleteSession erases the session and nothing else",
          "[erasure]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    RecordTaggedSession(store->analytics(), "gone", "ERASEDTAG");
    RecordTaggedSession(store->analytics(), "stays", "KEPTTAG");
    REQUIRE(store->Close().ok());  // into the main file, not only the WAL
  }
  {
    auto store = OpenOrDie(o);
    Analytics& a = store->analytics();
    StatusOr<int64_t> removed = a.DeleteSession("gone");
    INFO(removed.status().ToString());
    REQUIRE(removed.ok());
    // The session row, 3 turns, a metric, an error and an event.
    CHECK(*removed == 7);
    CHECK(a.GetSession("gone").status().IsNotFound());
    StatusOr<SessionDetail> kept = a.GetSession("stays");
    REQUIRE(kept.ok());
    CHECK(kept->turns.size() == 3);
    StatusOr<AggregateResult> agg =
        a.Aggregate(test::DataSetHour(GroupBy::kNone));
    REQUIRE(agg.ok());
    REQUIRE(agg->groups.size() == 1);
    CHECK(agg->groups[0].turns == 3);  // from the rollups: only "stays"
    StatusOr<ConsistencyReport> c = a.CheckConsistency(false);
    REQUIRE(c.ok());
    CHECK(c->stale_rollups == 0);
    CHECK(c->orphan_turns + c->orphan_metrics + c->orphan_errors +
              c->orphan_events ==
          0);
    // Again: nothing left, not an error.
    removed = a.DeleteSession("gone");
    REQUIRE(removed.ok());
    CHECK(*removed == 0);
    CHECK(a.DeleteSession("").status().IsInvalidArgument());
    CHECK(a.DeleteSession(std::string(257, 'x')).status().IsInvalidArgument());
    AuditQuery q;
    q.action = "analytics.session.delete";
    AuditPage page = audit_test::QueryOrDie(store.get(), q);
    REQUIRE(page.records.size() == 2);
    CHECK(page.records[0].event.resource == "gone");
    CHECK(page.records[0].event.outcome == "success");
    REQUIRE(store->Close().ok());
    CHECK(a.DeleteSession("stays").status().IsFailedPrecondition());
  }
  CHECK(FilesContaining(dir, "ERASEDTAG").empty());
  CHECK(FilesContaining(dir, "KEPTTAG-error") ==
        std::vector<std::string>{"test.db"});
  Options ro = o;
  ro.read_only = true;
  auto store = OpenOrDie(ro);
  CHECK(store->analytics()
            .DeleteSession("stays")
            .status()
            .IsFailedPrecondition());
  REQUIRE(store->analytics().GetSession("stays").ok());
  REQUIRE(store->Close().ok());
}

}  // namespace
}  // namespace convstore
