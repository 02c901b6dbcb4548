// Copyright 2026 The convstore Authors.
//
// Tests of src/sqlite/sqlite_backend.h through the StorageBackend seam:
// WriteOps are built by hand and applied, then read back with every read
// method and compared with hand-computed expectations.

#include "sqlite/sqlite_backend.h"

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backend_testutil.h"
#include "sqlite/fault_vfs.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"
#include "write_op.h"

namespace convstore::internal {
namespace {

using test::TempDir;

using namespace backend_test;  // NOLINT(build/namespaces)

TEST_CASE("every field round-trips exactly", "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);

  std::vector<Message> want;
  {
    Message m = Make(1, Role::kSystem, "You are a helpful assistant.",
                     1'700'000'000'000'001);
    want.push_back(m);
  }
  {
    Message m =
        Make(2, Role::kUser,
             "héllo wörld — 日本語 🎉 \"double\" 'single' `tick` \\ \n\t",
             1'700'000'000'000'002, "user-ü");
    m.tokens_in = 17;
    m.metadata = R"({"lang":"de","nested":{"a":[1,2,3]},"q":"it's"})";
    want.push_back(m);
  }
  {
    Message m =
        Make(3, Role::kAssistant, "'); DROP TABLE messages; -- \" OR 1=1; --",
             1'700'000'000'000'003, "'; DELETE FROM conversations; --");
    m.tokens_in = 9'000'000'000;  // beyond 32 bits
    m.tokens_out = 7'000'000'001;
    m.tool_call_id = "call_'\"x";
    m.tool_name = "search\"; DROP TABLE x; --";
    want.push_back(m);
  }
  {
    Message m = Make(4, Role::kTool, std::string("nul\0inside", 10),
                     1'700'000'000'000'004);
    m.tool_call_id = "call_'\"x";
    m.tool_name = "search\"; DROP TABLE x; --";
    m.tokens_out = 3;
    want.push_back(m);
  }
  {
    Message m = Make(5, Role::kAssistant, "", 1'700'000'000'000'005);
    want.push_back(m);  // empty content, every optional field empty
  }

  {
    auto b = OpenBackend(o);
    BatchBuilder bb;
    for (const Message& m : want) bb.Append("conv'; --", m);
    RequireCommit(&bb, b.get());

    StoredConversation c = Load(b.get(), "conv'; --");
    REQUIRE(c.exists);
    REQUIRE(c.messages.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("message " << i);
      CheckSameMessage(*c.messages[i], want[i]);
    }
    REQUIRE(b->Close().ok());
  }

  // Again from a fresh backend on the same file.
  auto b = OpenBackend(o);
  StoredConversation c = Load(b.get(), "conv'; --");
  REQUIRE(c.exists);
  REQUIRE(c.messages.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("message " << i);
    CheckSameMessage(*c.messages[i], want[i]);
  }
  const ConversationInfo& info = c.info;
  CHECK(info.conversation_id == "conv'; --");
  CHECK(info.user_id == "user-ü");  // the first non-empty user_id
  CHECK(info.message_count == 5);
  CHECK(info.tokens_in == 17 + 9'000'000'000);
  CHECK(info.tokens_out == 7'000'000'001 + 3);
  CHECK(info.first_at_us == 1'700'000'000'000'001);
  CHECK(info.last_at_us == 1'700'000'000'000'005);
  CHECK(info.last_seq == 5);
  REQUIRE(c.first_system != nullptr);
  CheckSameMessage(*c.first_system, want[0]);

  // The injection texts were data, not SQL.
  CHECK(Counts(b.get()).messages == 5);
  CHECK(Counts(b.get()).conversations == 1);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("LoadMessages returns the open range between two seqs",
          "[sqlite_backend]") {
  TempDir dir;
  auto b = OpenBackend(BackendOptions(dir));
  BatchBuilder bb;
  for (int64_t seq = 1; seq <= 10; ++seq) {
    bb.Append("c",
              Make(seq, Role::kUser, "m" + std::to_string(seq), 1000 + seq));
    // Spread over three batches.
    if (seq == 3 || seq == 7) RequireCommit(&bb, b.get());
  }
  bb.Append("other", Make(1, Role::kUser, "x", 5000));
  RequireCommit(&bb, b.get());

  using V = std::vector<int64_t>;
  CHECK(Seqs(LoadRange(b.get(), "c", 0, 0)) ==
        V{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(Seqs(LoadRange(b.get(), "c", 3, 0)) == V{4, 5, 6, 7, 8, 9, 10});
  CHECK(Seqs(LoadRange(b.get(), "c", 0, 4)) == V{1, 2, 3});
  CHECK(Seqs(LoadRange(b.get(), "c", 3, 7)) == V{4, 5, 6});
  CHECK(Seqs(LoadRange(b.get(), "c", 5, 6)).empty());
  CHECK(Seqs(LoadRange(b.get(), "c", 9, 0)) == V{10});
  CHECK(Seqs(LoadRange(b.get(), "c", 10, 0)).empty());
  CHECK(Seqs(LoadRange(b.get(), "c", 0, 1)).empty());
  CHECK(Seqs(LoadRange(b.get(), "c", 0, 100)).size() == 10);
  CHECK(LoadRange(b.get(), "missing", 0, 0).empty());
  std::vector<MessagePtr> r = LoadRange(b.get(), "c", 3, 5);
  REQUIRE(r.size() == 1);
  CHECK(r[0]->content == "m4");
  CHECK(r[0]->created_at_us == 1004);

  // LoadConversation's tail: the newest max_messages, oldest first.
  StoredConversation c = Load(b.get(), "c", 4);
  CHECK(Seqs(c.messages) == V{7, 8, 9, 10});
  CHECK(c.info.message_count == 10);  // the summary counts all of them
  CHECK(Seqs(Load(b.get(), "c", 100).messages).size() == 10);
  CHECK_FALSE(Load(b.get(), "missing").exists);
}

// Five conversations with known activity times:
//   e: 50, later 500 (u1)   d: 300 (u2)   c: 300 (u1)   a: 100, 200 (u1)
//   b: 150 (u2)
// Most recent first, ties broken by id descending: e d c a b.
void FillFive(StorageBackend* b, BatchBuilder* bb) {
  Message m = Make(1, Role::kUser, "a1", 100, "u1");
  m.tokens_in = 3;
  bb->Append("a", m);
  bb->Append("e", Make(1, Role::kUser, "e1", 50, "u1"));
  bb->Append("b", Make(1, Role::kUser, "b1", 150, "u2"));
  m = Make(2, Role::kAssistant, "a2", 200, "u1");
  m.tokens_out = 11;
  bb->Append("a", m);
  RequireCommit(bb, b);
  bb->Append("c", Make(1, Role::kUser, "c1", 300, "u1"));
  bb->Append("d", Make(1, Role::kUser, "d1", 300, "u2"));
  RequireCommit(bb, b);
  // e becomes the most recent in a later batch.
  bb->Append("e", Make(2, Role::kAssistant, "e2", 500, "u1"));
  RequireCommit(bb, b);
}

TEST_CASE("ListConversations orders by last activity and pages",
          "[sqlite_backend]") {
  TempDir dir;
  auto b = OpenBackend(BackendOptions(dir));
  BatchBuilder bb;
  FillFive(b.get(), &bb);

  using S = std::vector<std::string>;
  ListQuery all;
  std::vector<ConversationInfo> infos = List(b.get(), all);
  CHECK(Ids(infos) == S{"e", "d", "c", "a", "b"});

  // Summaries are complete.
  REQUIRE(infos.size() == 5);
  const ConversationInfo& a = infos[3];
  CHECK(a.user_id == "u1");
  CHECK(a.message_count == 2);
  CHECK(a.tokens_in == 3);
  CHECK(a.tokens_out == 11);
  CHECK(a.first_at_us == 100);
  CHECK(a.last_at_us == 200);
  CHECK(a.last_seq == 2);
  CHECK(infos[0].first_at_us == 50);
  CHECK(infos[0].last_at_us == 500);
  CHECK(infos[0].message_count == 2);

  SECTION("user filter") {
    ListQuery q;
    q.user_id = "u1";
    CHECK(Ids(List(b.get(), q)) == S{"e", "c", "a"});
    q.user_id = "u2";
    CHECK(Ids(List(b.get(), q)) == S{"d", "b"});
    q.user_id = "nobody";
    CHECK(List(b.get(), q).empty());
    q.user_id = "u1' OR '1'='1";
    CHECK(List(b.get(), q).empty());
  }

  SECTION("limit") {
    ListQuery q;
    q.limit = 3;
    CHECK(Ids(List(b.get(), q)) == S{"e", "d", "c"});
    q.limit = 1;
    CHECK(Ids(List(b.get(), q)) == S{"e"});
  }

  SECTION("cursor paging, all users") {
    ListQuery q;
    q.limit = 2;
    std::vector<std::vector<std::string>> pages;
    for (int i = 0; i < 10; ++i) {
      std::vector<ConversationInfo> page = List(b.get(), q);
      if (page.empty()) break;
      pages.push_back(Ids(page));
      q.has_cursor = true;
      q.cursor_last_at_us = page.back().last_at_us;
      q.cursor_id = page.back().conversation_id;
    }
    CHECK(pages == std::vector<S>{{"e", "d"}, {"c", "a"}, {"b"}});
  }

  SECTION("cursor paging inside a tie and per user") {
    ListQuery q;
    q.has_cursor = true;
    q.cursor_last_at_us = 300;
    q.cursor_id = "d";
    CHECK(Ids(List(b.get(), q)) == S{"c", "a", "b"});
    q.user_id = "u1";
    q.cursor_last_at_us = 500;
    q.cursor_id = "e";
    q.limit = 1;
    CHECK(Ids(List(b.get(), q)) == S{"c"});
    q.cursor_last_at_us = 300;
    q.cursor_id = "c";
    CHECK(Ids(List(b.get(), q)) == S{"a"});
    q.cursor_last_at_us = 100;
    q.cursor_id = "a";
    CHECK(List(b.get(), q).empty());
  }

  SECTION("a deleted conversation leaves the list") {
    bb.Delete("d");
    RequireCommit(&bb, b.get());
    CHECK(Ids(List(b.get(), all)) == S{"e", "c", "a", "b"});
  }
}

TEST_CASE("ScanRecent visits the most recent conversations first",
          "[sqlite_backend]") {
  TempDir dir;
  auto b = OpenBackend(BackendOptions(dir));
  BatchBuilder bb;
  FillFive(b.get(), &bb);

  std::vector<StoredConversation> seen;
  auto collect = [&](StoredConversation&& c) {
    seen.push_back(std::move(c));
    return true;
  };

  SECTION("all of them") {
    REQUIRE(b->ScanRecent(100, 0, collect).ok());
    REQUIRE(seen.size() == 5);
    std::vector<int64_t> last;
    for (const auto& c : seen) last.push_back(c.info.last_at_us);
    CHECK(last == std::vector<int64_t>{500, 300, 300, 200, 150});
    CHECK(seen[0].info.conversation_id == "e");
    CHECK(seen[3].info.conversation_id == "a");
    CHECK(seen[4].info.conversation_id == "b");
    CHECK(Seqs(seen[0].messages) == std::vector<int64_t>{1, 2});
    CHECK(seen[0].messages[1]->content == "e2");
    for (const auto& c : seen) CHECK(c.exists);
  }
  SECTION("bounded conversations and messages") {
    REQUIRE(b->ScanRecent(3, 1, collect).ok());
    REQUIRE(seen.size() == 3);
    CHECK(seen[0].info.conversation_id == "e");
    // c and d tie at 300; both must be there.
    std::set<std::string> rest = {seen[1].info.conversation_id,
                                  seen[2].info.conversation_id};
    CHECK(rest == std::set<std::string>{"c", "d"});
    // Only the newest message of each.
    REQUIRE(seen[0].messages.size() == 1);
    CHECK(seen[0].messages[0]->content == "e2");
    CHECK(seen[0].info.message_count == 2);
  }
  SECTION("the visitor stops the scan") {
    size_t calls = 0;
    REQUIRE(b->ScanRecent(100, 0, [&](StoredConversation&&) {
               return ++calls < 2;
             }).ok());
    CHECK(calls == 2);
  }
  SECTION("deleted conversations are not visited") {
    bb.Delete("e").Delete("b");
    RequireCommit(&bb, b.get());
    REQUIRE(b->ScanRecent(100, 0, collect).ok());
    REQUIRE(seen.size() == 3);
    for (const auto& c : seen) {
      CHECK(c.info.conversation_id != "e");
      CHECK(c.info.conversation_id != "b");
    }
  }
}

TEST_CASE("Counts follows appends and deletes", "[sqlite_backend]") {
  TempDir dir;
  auto b = OpenBackend(BackendOptions(dir));
  StorageCounts c = Counts(b.get());
  CHECK(c.conversations == 0);
  CHECK(c.messages == 0);
  BatchBuilder bb;
  FillFive(b.get(), &bb);
  c = Counts(b.get());
  CHECK(c.conversations == 5);
  CHECK(c.messages == 7);
  bb.Delete("a").Delete("never-existed");
  RequireCommit(&bb, b.get());
  c = Counts(b.get());
  CHECK(c.conversations == 4);
  CHECK(c.messages == 5);
}

TEST_CASE("LastCommittedLsn survives reopen", "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  {
    auto b = OpenBackend(o);
    CHECK(b->LastCommittedLsn() == 0);
    CHECK(b->Apply({}).ok());  // an empty batch changes nothing
    CHECK(b->LastCommittedLsn() == 0);
    BatchBuilder bb;
    bb.Append("c", Make(1, Role::kUser, "x", 10));
    bb.Append("c", Make(2, Role::kUser, "y", 11));
    RequireCommit(&bb, b.get());
    CHECK(b->LastCommittedLsn() == 2);
    // A delete of nothing still moves the LSN.
    bb.Delete("nothing");
    RequireCommit(&bb, b.get());
    CHECK(b->LastCommittedLsn() == 3);
    REQUIRE(b->Close().ok());
  }
  {
    auto b = OpenBackend(o);
    CHECK(b->LastCommittedLsn() == 3);
    BatchBuilder bb(4);
    bb.Append("c", Make(3, Role::kUser, "z", 12));
    RequireCommit(&bb, b.get());
    CHECK(b->LastCommittedLsn() == 4);
    // Closed by the destructor only.
  }
  auto b = OpenBackend(o);
  CHECK(b->LastCommittedLsn() == 4);
  CHECK(Seqs(Load(b.get(), "c").messages) == std::vector<int64_t>{1, 2, 3});
}

TEST_CASE("a delete then a re-append in one batch keeps only the new messages",
          "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;

  SECTION("the conversation existed before the batch") {
    for (int64_t s = 1; s <= 3; ++s) {
      Message m = Make(s, Role::kUser, "old" + std::to_string(s), 100 + s);
      m.tokens_in = 100;
      bb.Append("c", m);
    }
    RequireCommit(&bb, b.get());
    bb.Append("c", Make(4, Role::kUser, "old4", 104));
  }
  SECTION("the conversation is created in the same batch") {
    bb.Append("c", Make(1, Role::kUser, "old1", 101));
    bb.Append("c", Make(2, Role::kUser, "old2", 102));
  }
  bb.Append("other", Make(1, Role::kUser, "keep", 150));
  bb.Delete("c");
  Message n1 = Make(1, Role::kSystem, "new1", 200);
  n1.tokens_in = 5;
  Message n2 = Make(2, Role::kUser, "new2", 201, "u9");
  n2.tokens_out = 7;
  bb.Append("c", n1);
  bb.Append("c", n2);
  RequireCommit(&bb, b.get());
  CHECK(b->LastCommittedLsn() == bb.last_lsn());

  auto check = [&](StorageBackend* be) {
    StoredConversation c = Load(be, "c");
    REQUIRE(c.exists);
    REQUIRE(c.messages.size() == 2);
    CheckSameMessage(*c.messages[0], n1);
    CheckSameMessage(*c.messages[1], n2);
    CHECK(c.info.message_count == 2);
    CHECK(c.info.tokens_in == 5);
    CHECK(c.info.tokens_out == 7);
    CHECK(c.info.first_at_us == 200);
    CHECK(c.info.last_at_us == 201);
    CHECK(c.info.last_seq == 2);
    CHECK(c.info.user_id == "u9");
    REQUIRE(c.first_system != nullptr);
    CHECK(c.first_system->content == "new1");
    CHECK(Seqs(LoadRange(be, "c", 0, 0)) == std::vector<int64_t>{1, 2});
    CHECK(Load(be, "other").messages.size() == 1);
    StorageCounts n = Counts(be);
    CHECK(n.conversations == 2);
    CHECK(n.messages == 3);
  };
  check(b.get());
  REQUIRE(b->Close().ok());
  // No stray rows of the old incarnation.
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages") == 3);
  CHECK(RawInt(o.path, "SELECT count(*) FROM conversations") == 2);
  CHECK(IntegrityCheck(o.path) == "ok");
  auto reopened = OpenBackend(o);
  check(reopened.get());

  // Appending after the re-creation continues the new numbering.
  BatchBuilder more(bb.last_lsn() + 1);
  more.Append("c", Make(3, Role::kUser, "new3", 202));
  RequireCommit(&more, reopened.get());
  CHECK(Seqs(Load(reopened.get(), "c").messages) ==
        std::vector<int64_t>{1, 2, 3});
}

// Rows go 32 to an INSERT and the rest one at a time: 78 live appends over
// three conversations (two groups and 14 single rows), interleaved with a
// conversation appended to and deleted in the same batch, whose rows are
// dropped before grouping.
TEST_CASE("a batch's rows are inserted in groups and singly, each once",
          "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  std::map<std::string, std::vector<Message>> want;
  const std::map<std::string, int> counts = {{"a", 40}, {"b", 33}, {"c", 5}};
  for (int i = 0; i < 40; ++i) {
    for (const auto& [id, n] : counts) {
      if (i >= n) continue;
      const int64_t seq = i + 1;
      Message m = Make(seq, i % 2 ? Role::kAssistant : Role::kUser,
                       id + " message " + std::to_string(seq), 1000 + i,
                       i % 7 == 0 ? "user-" + id : "");
      m.tokens_in = i;
      m.tokens_out = 2 * i;
      if (i % 5 == 0) {
        m.tool_call_id = "call-" + std::to_string(i);
        m.tool_name = "lookup";
        m.metadata = "{\"i\":" + std::to_string(i) + "}";
      }
      bb.Append(id, m);
      want[id].push_back(m);
    }
    if (i < 20) bb.Append("gone", Make(i + 1, Role::kUser, "gone", 1000 + i));
  }
  bb.Delete("gone");
  RequireCommit(&bb, b.get());

  auto check = [&](StorageBackend* be) {
    for (const auto& [id, msgs] : want) {
      StoredConversation c = Load(be, id);
      REQUIRE(c.exists);
      REQUIRE(c.messages.size() == msgs.size());
      for (size_t i = 0; i < msgs.size(); ++i) {
        CheckSameMessage(*c.messages[i], msgs[i]);
      }
    }
    CHECK_FALSE(Load(be, "gone").exists);
    CHECK(Counts(be).messages == 78);
  };
  check(b.get());
  REQUIRE(b->Close().ok());
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages") == 78);
  // Ids are contiguous and follow (conversation, seq), as one row per
  // statement wrote them.
  CHECK(RawInt(o.path, "SELECT max(id) - min(id) + 1 FROM messages") == 78);
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM messages x JOIN messages y"
               " ON y.id = x.id + 1"
               " WHERE (y.conv_key, y.seq) <= (x.conv_key, x.seq)") == 0);
  CHECK(IntegrityCheck(o.path) == "ok");
  check(OpenBackend(o).get());
}

TEST_CASE("a delete in a later batch removes everything", "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  for (int64_t s = 1; s <= 20; ++s) {
    bb.Append("gone", Make(s, s == 1 ? Role::kSystem : Role::kUser,
                           "m" + std::to_string(s), 100 + s, "u1"));
    if (s % 7 == 0) RequireCommit(&bb, b.get());
  }
  bb.Append("stay", Make(1, Role::kUser, "s", 50, "u1"));
  RequireCommit(&bb, b.get());
  REQUIRE(Load(b.get(), "gone").messages.size() == 20);

  bb.Delete("gone");
  RequireCommit(&bb, b.get());
  CHECK(b->LastCommittedLsn() == bb.last_lsn());

  auto check = [&](StorageBackend* be) {
    StoredConversation c = Load(be, "gone");
    CHECK_FALSE(c.exists);
    CHECK(c.messages.empty());
    CHECK(c.first_system == nullptr);
    CHECK(LoadRange(be, "gone", 0, 0).empty());
    ListQuery q;
    CHECK(Ids(List(be, q)) == std::vector<std::string>{"stay"});
    q.user_id = "u1";
    CHECK(Ids(List(be, q)) == std::vector<std::string>{"stay"});
    size_t visited = 0;
    REQUIRE(be->ScanRecent(100, 0, [&](StoredConversation&& sc) {
                CHECK(sc.info.conversation_id == "stay");
                ++visited;
                return true;
              }).ok());
    CHECK(visited == 1);
    StorageCounts n = Counts(be);
    CHECK(n.conversations == 1);
    CHECK(n.messages == 1);
  };
  check(b.get());
  REQUIRE(b->Close().ok());
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages") == 1);
  CHECK(RawInt(o.path, "SELECT count(*) FROM conversations") == 1);
  CHECK(IntegrityCheck(o.path) == "ok");
  auto reopened = OpenBackend(o);
  check(reopened.get());

  // The id can be used again, from seq 1.
  BatchBuilder more(bb.last_lsn() + 1);
  more.Append("gone", Make(1, Role::kUser, "reborn", 900));
  RequireCommit(&more, reopened.get());
  StoredConversation c = Load(reopened.get(), "gone");
  REQUIRE(c.messages.size() == 1);
  CHECK(c.messages[0]->content == "reborn");
  CHECK(c.info.message_count == 1);
  CHECK(c.info.first_at_us == 900);
}

TEST_CASE("first_system is returned when only a tail is loaded",
          "[sqlite_backend]") {
  TempDir dir;
  auto b = OpenBackend(BackendOptions(dir));
  BatchBuilder bb;
  // s: a system prompt, then nine turns.
  bb.Append("s", Make(1, Role::kSystem, "be brief", 100));
  for (int64_t q = 2; q <= 10; ++q) {
    bb.Append("s", Make(q, q % 2 == 0 ? Role::kUser : Role::kAssistant,
                        "t" + std::to_string(q), 100 + q));
  }
  // late: the first system message comes after a user turn; a second one
  // follows it.
  bb.Append("late", Make(1, Role::kUser, "hi", 200));
  bb.Append("late", Make(2, Role::kSystem, "first system", 201));
  bb.Append("late", Make(3, Role::kSystem, "second system", 202));
  for (int64_t q = 4; q <= 8; ++q) {
    bb.Append("late", Make(q, Role::kUser, "u" + std::to_string(q), 200 + q));
  }
  // none: no system message at all.
  for (int64_t q = 1; q <= 5; ++q) {
    bb.Append("none", Make(q, Role::kUser, "n" + std::to_string(q), 300 + q));
  }
  RequireCommit(&bb, b.get());

  using V = std::vector<int64_t>;
  StoredConversation s = Load(b.get(), "s", 3);
  CHECK(Seqs(s.messages) == V{8, 9, 10});
  REQUIRE(s.first_system != nullptr);
  CHECK(s.first_system->seq == 1);
  CHECK(s.first_system->role == Role::kSystem);
  CHECK(s.first_system->content == "be brief");
  CHECK(s.first_system->created_at_us == 100);

  s = Load(b.get(), "s");  // everything: first_system is the first message
  REQUIRE(s.messages.size() == 10);
  REQUIRE(s.first_system != nullptr);
  CHECK(s.first_system->seq == 1);
  CHECK(s.first_system->content == "be brief");

  StoredConversation late = Load(b.get(), "late", 2);
  CHECK(Seqs(late.messages) == V{7, 8});
  REQUIRE(late.first_system != nullptr);
  CHECK(late.first_system->seq == 2);
  CHECK(late.first_system->content == "first system");
  late = Load(b.get(), "late", 7);  // the tail holds both system messages
  CHECK(Seqs(late.messages) == V{2, 3, 4, 5, 6, 7, 8});
  REQUIRE(late.first_system != nullptr);
  CHECK(late.first_system->seq == 2);
  late = Load(b.get(), "late", 6);  // the tail holds only the second
  REQUIRE(late.first_system != nullptr);
  CHECK(late.first_system->seq == 2);
  CHECK(late.first_system->content == "first system");

  StoredConversation none = Load(b.get(), "none", 2);
  CHECK(Seqs(none.messages) == V{4, 5});
  CHECK(none.first_system == nullptr);
  CHECK(Load(b.get(), "none").first_system == nullptr);
}

// The writer remembers each conversation's key with the id its appends
// share (IdMemo); whatever may change the key must make it look again.
TEST_CASE("a remembered conversation key is not used after it may be wrong",
          "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  auto b = OpenBackend(o);
  const SharedId c("c");
  BatchBuilder bb;
  bb.AppendShared(c, Make(1, Role::kUser, "old1", 100));
  RequireCommit(&bb, b.get());
  const int64_t old_key = RawInt(
      o.path, "SELECT conv_key FROM conversations WHERE conversation_id = 'c'");
  std::vector<std::string> want;

  SECTION("a delete in the same batch") {
    bb.Delete("c");
    bb.AppendShared(c, Make(1, Role::kUser, "new1", 200));
    RequireCommit(&bb, b.get());
    want = {"new1"};
  }
  SECTION("a delete in an earlier batch") {
    bb.Delete("c");
    RequireCommit(&bb, b.get());
    bb.AppendShared(c, Make(1, Role::kUser, "new1", 200));
    RequireCommit(&bb, b.get());
    want = {"new1"};
  }
  SECTION("a delete by another connection (another process)") {
    {
      auto other = OpenBackend(o);
      BatchBuilder ob(bb.last_lsn() + 1);
      ob.Delete("c");
      RequireCommit(&ob, other.get());
      REQUIRE(other->Close().ok());
    }
    BatchBuilder after(bb.last_lsn() + 2);
    after.AppendShared(c, Make(1, Role::kUser, "new1", 200));
    RequireCommit(&after, b.get());
    want = {"new1"};
  }
  SECTION("a rolled-back batch that created the conversation") {
    const SharedId fresh("fresh");
    bb.AppendShared(fresh, Make(1, Role::kUser, "f1", 200));
    bb.AppendShared(c, Make(1, Role::kUser, "dup", 201));  // seq 1 again
    CHECK(bb.Commit(b.get()).IsInvalidArgument());
    BatchBuilder retry(bb.last_lsn() - 1);
    retry.AppendShared(fresh, Make(1, Role::kUser, "f1", 200));
    RequireCommit(&retry, b.get());
    StoredConversation f = Load(b.get(), "fresh");
    REQUIRE(f.exists);
    REQUIRE(f.messages.size() == 1);
    CHECK(f.messages[0]->content == "f1");
    want = {"old1"};
  }

  StoredConversation got = Load(b.get(), "c");
  REQUIRE(got.exists);
  std::vector<std::string> contents;
  for (const MessagePtr& m : got.messages) contents.push_back(m->content);
  CHECK(contents == want);
  CHECK(got.info.message_count == static_cast<int64_t>(want.size()));
  REQUIRE(b->Close().ok());
  // Every message belongs to a conversation row, and a re-created
  // conversation has a key of its own.
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM messages WHERE conv_key NOT IN "
               "(SELECT conv_key FROM conversations)") == 0);
  if (want[0] == "new1") {
    CHECK(
        RawInt(
            o.path,
            "SELECT conv_key FROM conversations WHERE conversation_id = 'c'") !=
        old_key);
  }
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("a rejected batch applies nothing and the next one works",
          "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("a", Make(1, Role::kUser, "a1", 100));
  RequireCommit(&bb, b.get());

  // A new conversation, then a duplicate (conversation, seq): the database
  // refuses the whole batch.
  bb.Append("fresh", Make(1, Role::kUser, "f1", 200));
  bb.Append("a", Make(2, Role::kUser, "a2", 201));
  bb.Append("a", Make(1, Role::kUser, "dup", 202));
  Status s = bb.Commit(b.get());
  INFO(s.ToString());
  CHECK(s.IsInvalidArgument());
  CHECK(b->LastCommittedLsn() == 1);
  CHECK_FALSE(Load(b.get(), "fresh").exists);
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1});
  CHECK(Counts(b.get()).messages == 1);

  // Without the bad record the same writes go in, including the new
  // conversation whose row the failed transaction had created.
  BatchBuilder retry(2);
  retry.Append("fresh", Make(1, Role::kUser, "f1", 200));
  retry.Append("a", Make(2, Role::kUser, "a2", 201));
  RequireCommit(&retry, b.get());
  CHECK(b->LastCommittedLsn() == 3);
  StoredConversation f = Load(b.get(), "fresh");
  REQUIRE(f.exists);
  CHECK(f.messages.size() == 1);
  CHECK(f.info.message_count == 1);
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1, 2});
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("out of memory in Apply keeps the file and the index whole",
          "[sqlite_backend]") {
  // The writer turns an exception from Apply into a retryable error
  // (writer_test.cc); the backend must leave nothing half done behind it.
  TempDir dir;
  Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("a", Make(1, Role::kUser, "a1", 100));
  RequireCommit(&bb, b.get());
  bool throw_before = false;
  bool throw_after = false;
  b->SetApplyHookForTest([&](bool committed) {
    if (committed ? throw_after : throw_before) throw std::bad_alloc();
  });

  // Before COMMIT: the exception passes through, and the transaction, with
  // the row of a conversation it created, is rolled back.
  throw_before = true;
  BatchBuilder lost(2);
  lost.Append("fresh", Make(1, Role::kUser, "f1", 200));
  lost.Append("a", Make(2, Role::kUser, "a2", 201));
  CHECK_THROWS_AS(lost.Commit(b.get()), std::bad_alloc);
  throw_before = false;
  CHECK(b->LastCommittedLsn() == 1);
  CHECK_FALSE(Load(b.get(), "fresh").exists);
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1});

  // The writer retries the same writes: they go in once.
  BatchBuilder retry(2);
  retry.Append("fresh", Make(1, Role::kUser, "f1", 200));
  retry.Append("a", Make(2, Role::kUser, "a2", 201));
  RequireCommit(&retry, b.get());

  // After COMMIT: the batch is committed, so Apply says so (a failure
  // would have it written twice), though its rows never reached the
  // overlay. Readers still find them, and the next transaction rebuilds
  // the overlay from the file.
  throw_after = true;
  BatchBuilder after(4);
  after.Append("a", Make(3, Role::kUser, "a3", 300));
  after.Append("late", Make(1, Role::kUser, "l1", 301));
  RequireCommit(&after, b.get());
  throw_after = false;
  CHECK(b->LastCommittedLsn() == 5);
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1, 2, 3});
  CHECK(Seqs(LoadRange(b.get(), "a", 1, 0)) == std::vector<int64_t>{2, 3});
  CHECK(Seqs(Load(b.get(), "late").messages) == std::vector<int64_t>{1});
  BatchBuilder next(6);
  next.Append("a", Make(4, Role::kUser, "a4", 400));
  RequireCommit(&next, b.get());
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1, 2, 3, 4});
  // The merge indexes every message once.
  RequireMaintain(b.get());
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(Seqs(Load(b.get(), "fresh").messages) == std::vector<int64_t>{1});
  CHECK(Seqs(Load(b.get(), "late").messages) == std::vector<int64_t>{1});
  CHECK(Counts(b.get()).messages == 6);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
  auto reopened = OpenBackend(o);
  CHECK(Seqs(Load(reopened.get(), "a").messages) ==
        std::vector<int64_t>{1, 2, 3, 4});
  CHECK(Counts(reopened.get()).messages == 6);
  REQUIRE(reopened->Close().ok());
}

TEST_CASE("out of memory in a merge leaves no transaction open",
          "[sqlite_backend]") {
  // The writer turns an exception from Maintain into a logged failure and
  // commits the next batch: a merge transaction left open would fail every
  // later BEGIN, and a half-stepped statement would ignore new bindings.
  TempDir dir;
  Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  for (int c = 0; c < 3; ++c) {
    for (int i = 1; i <= 4; ++i) {
      bb.Append("c" + std::to_string(c),
                Make(i, Role::kUser, "m" + std::to_string(i), 100 + i));
    }
  }
  RequireCommit(&bb, b.get());
  int throws = 1;
  b->SetMergeHookForTest([&] {
    if (throws > 0) {
      --throws;
      throw std::bad_alloc();
    }
  });
  CHECK_THROWS_AS(b->Maintain(), std::bad_alloc);
  BatchBuilder next(bb.last_lsn() + 1);
  next.Append("c0", Make(5, Role::kUser, "m5", 105));
  RequireCommit(&next, b.get());
  CHECK(Seqs(Load(b.get(), "c0").messages) ==
        std::vector<int64_t>{1, 2, 3, 4, 5});
  RequireMaintain(b.get());
  for (int c = 0; c < 3; ++c) {
    CHECK(Seqs(Load(b.get(), "c" + std::to_string(c)).messages).size() ==
          (c == 0 ? 5u : 4u));
  }
  CHECK(Counts(b.get()).messages == 13);
  CHECK(
      RawInt(o.path,
             "SELECT value FROM store_meta WHERE key = 'merged_through_id'") ==
      13);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("readers see whole batches only", "[sqlite_backend]") {
  TempDir dir;
  auto b = OpenBackend(BackendOptions(dir));
  constexpr int kBatches = 60;
  constexpr int kPerBatch = 10;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      StoredConversation c;
      if (!b->LoadConversation("c", 0, &c).ok()) {
        ++bad;
        continue;
      }
      ++reads;
      if (!c.exists) continue;
      const auto n = static_cast<int64_t>(c.messages.size());
      if (n % kPerBatch != 0 || c.info.message_count != n ||
          c.info.last_seq != n) {
        ++bad;
      }
    }
  });
  // Interleave for real: before every tenth batch, wait (bounded) until the
  // reader has completed another read, so a reader thread that is scheduled
  // late still overlaps the commits instead of seeing only the final state.
  auto wait_for_read_after = [&](int seen) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (reads.load() <= seen &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  };
  BatchBuilder bb;
  int64_t seq = 0;
  for (int i = 0; i < kBatches; ++i) {
    if (i % 10 == 0) wait_for_read_after(reads.load());
    for (int j = 0; j < kPerBatch; ++j) {
      ++seq;
      bb.Append("c", Make(seq, Role::kUser, "m", seq));
    }
    RequireCommit(&bb, b.get());
  }
  done = true;
  reader.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() >= kBatches / 10);
  CHECK(Load(b.get(), "c").messages.size() == kBatches * kPerBatch);
}

// Commits `batches` batches of 50 messages of about 1 KB to conversation
// "w" (a few WAL frames each), seqs from `*seq` on.
void WriteFrames(StorageBackend* b, BatchBuilder* bb, int batches,
                 int64_t* seq) {
  for (int i = 0; i < batches; ++i) {
    for (int k = 0; k < 50; ++k) {
      ++*seq;
      bb->Append("w", Make(*seq, Role::kUser, std::string(1000, 'x'), *seq));
    }
    RequireCommit(bb, b);
  }
}

TEST_CASE("Checkpoints run off the writer thread", "[sqlite_backend]") {
  TempDir dir;
  Options o = BackendOptions(dir);
  o.wal_autocheckpoint_pages = 16;
  BatchBuilder bb;
  int64_t seq = 0;

  SECTION("a WAL past the threshold is copied by the checkpoint thread") {
    auto b = OpenBackend(o);
    // About 30 frames: past the threshold, below the 8x at which the writer
    // would checkpoint itself if the thread had not run yet.
    WriteFrames(b.get(), &bb, 2, &seq);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (b->checkpoint_passes().background == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(b->checkpoint_passes().background >= 1);
    RequireMaintain(b.get());
    REQUIRE(b->Close().ok());
    // Close stopped the thread and emptied the WAL (SQLite removes the
    // file when the last connection closes).
    const std::string wal = o.path + "-wal";
    CHECK((!std::filesystem::exists(wal) ||
           std::filesystem::file_size(wal) == 0));
    auto again = OpenBackend(o);
    CHECK(Load(again.get(), "w").info.message_count == seq);
  }

  SECTION("with wal_autocheckpoint_pages 0 nothing checkpoints before Close") {
    o.wal_autocheckpoint_pages = 0;
    auto b = OpenBackend(o);
    WriteFrames(b.get(), &bb, 40, &seq);
    const auto wal = std::filesystem::file_size(o.path + "-wal");
    CHECK(wal > 40u * 50 * 1000);  // every frame is still in the WAL
    CHECK(b->checkpoint_passes().background == 0);
    CHECK(b->checkpoint_passes().writer == 0);
  }

  SECTION("a failed pass is reported by Maintain until a pass succeeds") {
    StatusOr<FaultVfs*> v = FaultVfs::Install();
    REQUIRE(v.ok());
    FaultVfs* vfs = v.value();
    vfs->Reset();
    o.sqlite_vfs = FaultVfs::kName;
    auto b = OpenBackend(o);
    // Open leaves the WAL checkpointed, and the commit that starts it over
    // syncs its header: that commit runs before syncs fail. It is one small
    // message (a few frames, below the threshold), so no pass is asked for:
    // a pass that copied the whole WAL while syncs still worked would make
    // a commit below start the WAL over again and fail (a flaky COMMIT
    // IOError under ASan when this was a 50-message batch).
    ++seq;
    bb.Append("w", Make(seq, Role::kUser, "x", seq));
    RequireCommit(&bb, b.get());
    REQUIRE(b->checkpoint_passes().background == 0);
    // Commits do not fsync at synchronous=NORMAL; a checkpoint does.
    vfs->FailSyncs(FaultVfs::Fault::kIoError);
    WriteFrames(b.get(), &bb, 40, &seq);
    Status s;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (s.ok() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      s = b->Maintain();
    }
    {
      INFO(s.ToString());
      CHECK(s.IsIOError());
      CHECK(s.ToString().find("checkpointing the WAL") != std::string::npos);
    }
    CHECK(b->Maintain().IsIOError());  // still failing: no pass succeeded
    vfs->Reset();
    WriteFrames(b.get(), &bb, 2, &seq);  // asks for the next pass
    const auto again_deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!(s = b->Maintain()).ok() &&
           std::chrono::steady_clock::now() < again_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    RequireMaintain(b.get());
    REQUIRE(b->Close().ok());
    auto again = OpenBackend(o);
    CHECK(Load(again.get(), "w").info.message_count == seq);
  }
}

}  // namespace
}  // namespace convstore::internal
