// Copyright 2026 The convstore Authors.
//
// Options::read_only: a store opened to inspect a file, beside the
// application that writes it. It reads what the file holds, refuses every
// write with FailedPrecondition, starts no thread that writes, and never
// migrates or changes the file.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "convstore/convstore.h"
#include "sqlite/migrations.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"
#include "thread_testutil.h"

namespace convstore {
namespace {

using internal::Db;
using std::chrono::hours;
using std::chrono::milliseconds;
using test::Hist;
using test::Msg;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

int64_t QueryInt(const std::string& path, const std::string& sql) {
  std::unique_ptr<Db> db;
  REQUIRE(Db::OpenReadOnly(path, &db).ok());
  int64_t v = -1;
  Status s = db->QueryInt(sql, &v);
  INFO(sql << ": " << s.ToString());
  REQUIRE(s.ok());
  return v;
}

// Rows of every kind the test writes, and the last LSN committed.
std::string FileState(const std::string& path) {
  std::string out;
  for (const char* sql :
       {"SELECT count(*) FROM messages", "SELECT count(*) FROM conversations",
        "SELECT count(*) FROM cache_entries", "SELECT count(*) FROM api_keys",
        "SELECT count(*) FROM audit_log", "SELECT count(*) FROM dead_letters",
        "SELECT count(*) FROM analytics_sessions",
        "SELECT count(*) FROM analytics_turns",
        "SELECT value FROM store_meta WHERE key = 'last_lsn'"}) {
    out += std::to_string(QueryInt(path, sql)) + " ";
  }
  return out;
}

int ThreadsNamed(const std::string& name) {
  int n = 0;
  for (const auto& [tid, thread] : test::ThreadNames()) n += thread == name;
  return n;
}

KeySpec Spec(const std::string& name) {
  KeySpec k;
  k.name = name;
  k.owner = "o";
  return k;
}

AuditEvent Event(const std::string& action) {
  AuditEvent e;
  e.actor = "a";
  e.action = action;
  e.outcome = "ok";
  return e;
}

SessionStart Session(const std::string& id) {
  SessionStart st;
  st.session_id = id;
  return st;
}

TurnMetrics Turn(const std::string& session) {
  TurnMetrics t;
  t.session_id = session;
  return t;
}

MessageRetention KeepOne() {
  MessageRetention r;
  r.max_messages_per_conversation = 1;
  return r;
}

HistoryOptions FromStorage() {
  HistoryOptions h;
  h.from_storage = true;
  return h;
}

TEST_CASE("A read-only store reads a live file and refuses every write",
          "[read_only]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  // The application, which keeps the file open throughout.
  std::unique_ptr<Store> app = OpenOrDie(o);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(app->Append("c1", Msg(Role::kUser, "m" + std::to_string(i))).ok());
  }
  REQUIRE(app->cache().Set("ns", "k", "v", hours(1)).ok());
  StatusOr<CreatedKey> key = app->keys().CreateKey(Spec("n"));
  REQUIRE(key.ok());
  REQUIRE(app->audit().Record(Event("x.y")).ok());
  REQUIRE(app->analytics().StartSession(Session("s1")).ok());
  REQUIRE(app->Flush().ok());
  const std::string before = FileState(o.path);
  const int writers = ThreadsNamed("convstore-wr");
  const int checkpointers = ThreadsNamed("convstore-ckpt");
  const int sweepers = ThreadsNamed("convstore-sweep");
  const int flushers = ThreadsNamed("convstore-keys");
  REQUIRE(writers == 1);

  Options ro = o;
  ro.read_only = true;
  std::unique_ptr<Store> r = OpenOrDie(ro);
  // No writer, checkpoint or sweep thread of its own. Its keys thread
  // only refreshes (keys_refresh_interval): it flushes no usage.
  CHECK(ThreadsNamed("convstore-wr") == writers);
  CHECK(ThreadsNamed("convstore-ckpt") == checkpointers);
  CHECK(ThreadsNamed("convstore-sweep") == sweepers);
  CHECK(ThreadsNamed("convstore-keys") == flushers + 1);

  // Reads.
  std::vector<MessagePtr> h = Hist(r.get(), "c1");
  REQUIRE(h.size() == 3);
  CHECK(h[2]->content == "m2");
  StatusOr<ConversationPage> page = r->ListConversations({});
  REQUIRE(page.ok());
  CHECK(page->conversations.size() == 1);
  StatusOr<std::string> v = r->cache().Get("ns", "k");
  REQUIRE(v.ok());
  CHECK(*v == "v");
  StatusOr<std::vector<KeyInfo>> keys = r->keys().ListKeys(std::nullopt);
  REQUIRE(keys.ok());
  CHECK(keys->size() == 1);
  CHECK(r->keys().ValidateKey(key->secret).ok());
  StatusOr<AuditVerification> verified = r->audit().Verify();
  REQUIRE(verified.ok());
  CHECK(verified->ok);
  StatusOr<std::vector<SessionSummary>> sessions =
      r->analytics().RecentSessions({});
  REQUIRE(sessions.ok());
  CHECK(sessions->size() == 1);
  StatusOr<ConsistencyReport> consistent =
      r->analytics().CheckConsistency(/*repair=*/false);
  INFO(consistent.status().ToString());
  CHECK(consistent.ok());
  CHECK(r->Flush().ok());  // nothing of its own to wait for

  // Every write: FailedPrecondition, and nothing changes.
  auto refused = [](const Status& s) {
    INFO(s.ToString());
    return s.IsFailedPrecondition() &&
           s.message().find("read-only") != std::string::npos;
  };
  CHECK(refused(r->Append("c1", Msg(Role::kUser, "no")).status()));
  CHECK(refused(r->Append("new", Msg(Role::kUser, "no")).status()));
  CHECK(refused(r->DeleteConversation("c1").status()));
  CHECK(refused(r->PruneMessages(KeepOne()).status()));
  CHECK(refused(r->cache().Set("ns", "k2", "v", hours(1))));
  CHECK(refused(r->cache().Delete("ns", "k")));
  CHECK(refused(r->cache().Touch("ns", "k", hours(2))));
  CHECK(refused(r->cache().Increment("ns", "n", 1, hours(1)).status()));
  CHECK(refused(r->keys().CreateKey(Spec("n2")).status()));
  CHECK(refused(r->keys().RevokeKey(key->info.id)));
  CHECK(refused(r->keys().RotateKey(key->info.id, hours(1)).status()));
  CHECK(refused(r->audit().Record(Event("x.z"))));
  CHECK(refused(r->audit().RecordAsync(Event("x.z"))));
  CHECK(refused(r->audit().Prune(INT64_MAX).status()));
  CHECK(refused(r->analytics().StartSession(Session("s2"))));
  CHECK(refused(r->analytics().RecordTurn(Turn("s1"))));
  CHECK(refused(r->analytics().Cleanup({}).status()));
  CHECK(refused(r->analytics().CheckConsistency(/*repair=*/true).status()));
  // What was refused left memory as it was.
  CHECK(Hist(r.get(), "c1").size() == 3);
  CHECK(*r->cache().Get("ns", "k") == "v");
  CHECK(r->cache().Get("ns", "k2").status().IsNotFound());
  CHECK(r->keys().ValidateKey(key->secret).ok());
  CHECK(r->GetStats().appended_lsn == r->GetStats().durable_lsn);
  CHECK(FileState(o.path) == before);

  // What the application commits later, the file's readers see.
  REQUIRE(app->Append("c1", Msg(Role::kUser, "m3")).ok());
  REQUIRE(app->Flush().ok());
  CHECK(Hist(r.get(), "c1", FromStorage()).size() == 4);
  CHECK(ThreadsNamed("convstore-wr") == writers);

  StatusOr<CloseReport> closed = r->Close();
  REQUIRE(closed.ok());
  CHECK(closed->written == 0);
  // The application goes on, unharmed.
  REQUIRE(app->Append("c1", Msg(Role::kUser, "m4")).ok());
  REQUIRE(app->Flush().ok());
  CHECK(Hist(app.get(), "c1").size() == 5);
  CHECK(app->GetStats().dead_letters == 0);
  REQUIRE(app->Close().ok());
  CHECK(Hist(OpenOrDie(o).get(), "c1").size() == 5);
}

TEST_CASE("A read-only store leaves a WAL with frames as it found it",
          "[read_only]") {
  // The last connection to a file to close checkpoints its WAL into the
  // file, unless it is read-only: every connection of a read-only store
  // must be, the readers of the audit log, the cache, the keys and the
  // analytics included.
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    std::unique_ptr<Store> app = OpenOrDie(o);
    REQUIRE(app->Append("c1", Msg(Role::kUser, "m0")).ok());
    REQUIRE(app->cache().Set("ns", "k", "v", hours(1)).ok());
    REQUIRE(app->audit().Record(Event("x.y")).ok());
    REQUIRE(app->Close().ok());
  }
  {
    // A commit left in the WAL, as a process killed before its
    // checkpoint leaves it.
    std::unique_ptr<Db> db;
    REQUIRE(Db::Open(o.path, /*create=*/false, &db).ok());
    REQUIRE(sqlite3_db_config(db->raw(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
                              nullptr) == SQLITE_OK);
    // (A change SQLite sees as one: an unchanged row writes no page.)
    REQUIRE(db->Exec("UPDATE store_meta SET value = value + 1"
                     " WHERE key = 'last_lsn'")
                .ok());
  }
  const std::string wal = o.path + "-wal";
  REQUIRE(std::filesystem::exists(wal));
  const auto wal_size = std::filesystem::file_size(wal);
  REQUIRE(wal_size > 0);
  auto bytes = [&] {
    std::ifstream in(o.path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = bytes();

  Options ro = o;
  ro.read_only = true;
  // Each kind's reader on its own, as the tool's commands use them (no
  // warming: the message readers, read-only from the start, would
  // otherwise be the last to close).
  ro.warm_conversations = 0;
  for (int kind = 0; kind < 5; ++kind) {
    INFO("kind " << kind);
    std::unique_ptr<Store> r = OpenOrDie(ro);
    switch (kind) {
      case 0:
        CHECK(r->audit().Verify().ok());
        break;
      case 1:
        CHECK(r->cache().Get("ns", "k").ok());
        break;
      case 2:
        CHECK(r->keys().ListKeys(std::nullopt).ok());
        break;
      case 3:
        CHECK(r->analytics().RecentSessions({}).ok());
        break;
      default:
        CHECK(Hist(r.get(), "c1").size() == 1);
        CHECK(r->GetStats().db_conversations == 1);
    }
    REQUIRE(r->Close().ok());
    CHECK(bytes() == before);
    REQUIRE(std::filesystem::exists(wal));
    CHECK(std::filesystem::file_size(wal) == wal_size);
  }
}

TEST_CASE("A read-only open creates nothing and migrates nothing",
          "[read_only]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.read_only = true;

  SECTION("a missing file is NotFound, whatever create_if_missing says") {
    o.create_if_missing = true;
    StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK(s.status().IsNotFound());
    CHECK_FALSE(std::filesystem::exists(o.path));
  }
  SECTION("a file one schema version behind is refused, not migrated") {
    {
      std::unique_ptr<Db> db;
      REQUIRE(Db::Open(o.path, /*create=*/true, &db).ok());
      REQUIRE(db->Exec("PRAGMA journal_mode = WAL").ok());
      REQUIRE(internal::Migrate(db.get(), internal::LatestSchemaVersion() - 1)
                  .ok());
    }
    const int64_t version =
        QueryInt(o.path, "SELECT max(version) FROM schema_migrations");
    REQUIRE(version == internal::LatestSchemaVersion() - 1);
    StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    INFO(s.status().ToString());
    CHECK(s.status().IsFailedPrecondition());
    CHECK(s.status().message().find("open it read-write once") !=
          std::string::npos);
    CHECK(QueryInt(o.path, "SELECT max(version) FROM schema_migrations") ==
          version);
    // A read-write open migrates it, and then it opens read-only.
    Options rw = o;
    rw.read_only = false;
    REQUIRE(OpenOrDie(rw)->Close().ok());
    CHECK(Store::Open(o).ok());
  }
  SECTION("an empty file is refused") {
    {
      std::unique_ptr<Db> db;
      REQUIRE(Db::Open(o.path, /*create=*/true, &db).ok());
    }
    StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    INFO(s.status().ToString());
    CHECK(s.status().IsFailedPrecondition());
    CHECK(std::filesystem::file_size(o.path) == 0);
  }
}

}  // namespace
}  // namespace convstore
