// Copyright 2026 The convstore Authors.
//
// Conversations by recent activity (sqlite/conversation_lists.cc): the
// activity indexes hold activity_at_us, which a merge or a purge brings
// level with last_at_us (schema version 10). Conversations with messages
// above the merge watermark may lag there; ListConversations and
// ScanRecent must still place them by their newest message, whichever
// process wrote it.

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend_testutil.h"
#include "sqlite/fault_vfs.h"

namespace convstore::internal {
namespace {

using namespace backend_test;  // NOLINT(build/namespaces)
using S = std::vector<std::string>;

// How many conversations the activity index holds behind their newest
// message: those with messages their row does not summarize yet (schema
// version 11; the row's activity_at_us is its last_at_us).
constexpr const char* kLagging =
    "SELECT count(DISTINCT m.conv_key) FROM messages m"
    " JOIN conversations c ON c.conv_key = m.conv_key"
    " WHERE m.id > c.summarized_through_id";

S Page(StorageBackend* b, size_t limit, const std::string& user = "") {
  ListQuery q;
  q.limit = limit;
  q.user_id = user;
  return Ids(List(b, q));
}

// Every conversation, a page of `limit` at a time through the cursor.
S AllPages(StorageBackend* b, size_t limit) {
  ListQuery q;
  q.limit = limit;
  S out;
  for (int i = 0; i < 100; ++i) {
    std::vector<ConversationInfo> page = List(b, q);
    if (page.empty()) break;
    for (const ConversationInfo& c : page) out.push_back(c.conversation_id);
    q.has_cursor = true;
    q.cursor_last_at_us = page.back().last_at_us;
    q.cursor_id = page.back().conversation_id;
  }
  return out;
}

S Recent(StorageBackend* b, size_t max_conversations) {
  S out;
  Status s = b->ScanRecent(max_conversations, 0, [&](StoredConversation&& c) {
    out.push_back(c.info.conversation_id);
    return true;
  });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

// a@100 b@200 c@300 d@400, merged: the index is level with every one.
void FillMerged(StorageBackend* b, BatchBuilder* bb) {
  bb->Append("a", Make(1, Role::kUser, "a1", 100, "u1"))
      .Append("b", Make(1, Role::kUser, "b1", 200, "u2"))
      .Append("c", Make(1, Role::kUser, "c1", 300, "u1"))
      .Append("d", Make(1, Role::kUser, "d1", 400, "u2"));
  RequireCommit(bb, b);
  RequireMaintain(b);
}

TEST_CASE("a conversation with unmerged messages lists by its newest one",
          "[conversation_lists]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  CHECK(RawInt(o.path, kLagging) == 0);
  CHECK(AllPages(b.get(), 10) == S{"d", "c", "b", "a"});

  // "a" moves to the front; the index still has it at 100.
  bb.Append("a", Make(2, Role::kUser, "a2", 500));
  RequireCommit(&bb, b.get());
  REQUIRE(RawInt(o.path, kLagging) == 1);
  REQUIRE(RawInt(o.path,
                 "SELECT activity_at_us FROM conversations"
                 " WHERE conversation_id = 'a'") == 100);

  CHECK(Page(b.get(), 10) == S{"a", "d", "c", "b"});
  CHECK(Page(b.get(), 1) == S{"a"});
  CHECK(Page(b.get(), 2) == S{"a", "d"});
  for (size_t limit : {1, 2, 3}) {
    INFO("page size " << limit);
    CHECK(AllPages(b.get(), limit) == S{"a", "d", "c", "b"});
  }
  CHECK(Page(b.get(), 10, "u1") == S{"a", "c"});
  CHECK(Page(b.get(), 10, "u2") == S{"d", "b"});
  CHECK(Recent(b.get(), 2) == S{"a", "d"});
  CHECK(Recent(b.get(), 10) == S{"a", "d", "c", "b"});

  SECTION("the summary is the current one") {
    std::vector<ConversationInfo> top = List(b.get(), ListQuery());
    REQUIRE(!top.empty());
    CHECK(top[0].last_at_us == 500);
    CHECK(top[0].message_count == 2);
    CHECK(top[0].user_id == "u1");
  }
  SECTION("a merge brings the index level") {
    RequireMaintain(b.get());
    CHECK(RawInt(o.path, kLagging) == 0);
    CHECK(AllPages(b.get(), 1) == S{"a", "d", "c", "b"});
    CHECK(Page(b.get(), 10, "u1") == S{"a", "c"});
  }
  SECTION("the order survives a reopen") {
    REQUIRE(b->Close().ok());
    b = OpenBackend(o);
    CHECK(AllPages(b.get(), 2) == S{"a", "d", "c", "b"});
  }
  SECTION("a conversation moved below the cursor stays off that page") {
    // The cursor after "d" in the new order: "a" is above it.
    ListQuery q;
    q.has_cursor = true;
    q.cursor_last_at_us = 400;
    q.cursor_id = "d";
    CHECK(Ids(List(b.get(), q)) == S{"c", "b"});
  }
}

TEST_CASE("a conversation's user is set once and lists under that user",
          "[conversation_lists]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  // The first message has no user; the second names one, the third another.
  bb.Append("x", Make(1, Role::kSystem, "x1", 100));
  RequireCommit(&bb, b.get());
  bb.Append("x", Make(2, Role::kUser, "x2", 200, "u1"));
  RequireCommit(&bb, b.get());
  bb.Append("x", Make(3, Role::kUser, "x3", 300, "u2"));
  RequireCommit(&bb, b.get());
  CHECK(Page(b.get(), 10, "u1") == S{"x"});
  CHECK(Page(b.get(), 10, "u2").empty());
  RequireMaintain(b.get());
  CHECK(Page(b.get(), 10, "u1") == S{"x"});
  // Deleted and re-created: a new row, whose first user wins again.
  bb.Delete("x").Append("x", Make(1, Role::kUser, "y1", 400, "u2"));
  RequireCommit(&bb, b.get());
  CHECK(Page(b.get(), 10, "u2") == S{"x"});
  CHECK(Page(b.get(), 10, "u1").empty());
}

TEST_CASE("another process's unmerged messages move its conversations too",
          "[conversation_lists]") {
  // Two backends on one file stand for two processes; neither has the
  // other's batches in its overlay.
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto one = OpenBackend(o);
  auto two = OpenBackend(o);
  BatchBuilder bb1;
  BatchBuilder bb2(1000);
  FillMerged(one.get(), &bb1);
  // "a" gets an old timestamp and a new one: found by scanning, it must be
  // placed by the newer.
  bb2.Append("b", Make(2, Role::kUser, "b2", 600))
      .Append("a", Make(2, Role::kUser, "a2", 150))
      .Append("a", Make(3, Role::kUser, "a3", 550));
  RequireCommit(&bb2, two.get());
  CHECK(AllPages(one.get(), 1) == S{"b", "a", "d", "c"});
  CHECK(Recent(one.get(), 2) == S{"b", "a"});
  // one writes too, then merges its rows and two's; two has not synced its
  // overlay since, and still holds b2 as unmerged.
  bb1.Append("c", Make(2, Role::kUser, "c2", 650));
  RequireCommit(&bb1, one.get());
  CHECK(AllPages(two.get(), 1) == S{"c", "b", "a", "d"});
  RequireMaintain(one.get());
  CHECK(RawInt(o.path, kLagging) == 0);
  CHECK(AllPages(two.get(), 3) == S{"c", "b", "a", "d"});
  CHECK(AllPages(one.get(), 3) == S{"c", "b", "a", "d"});
}

TEST_CASE("a purge of a conversation's only unmerged rows keeps its place",
          "[conversation_lists]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  bb.Append("a", Make(2, Role::kUser, "a2", 700));
  RequireCommit(&bb, b.get());
  // Retention removes a2, the only row of "a" above the watermark. Its
  // summary keeps last_at_us 700 (message_count counts every append).
  const WriteOp op = PurgeOp(o.path, "a", 2, bb.last_lsn() + 1);
  REQUIRE(b->Apply(std::vector<WriteOp>{op}).ok());
  CHECK(RawInt(o.path, kLagging) == 0);
  // Reopened, the overlay is rebuilt from the rows, which no longer name
  // "a": only the index can place it.
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CHECK(AllPages(b.get(), 2) == S{"a", "d", "c", "b"});
  CHECK(Load(b.get(), "a").info.last_at_us == 700);
}

// Many conversations, some lagging with a newer message, some with an
// unmerged message older than their newest (a caller's own timestamps),
// many sharing a timestamp: every page, cursor walk, user page and
// ScanRecent must equal a full sort by (last_at_us, id), before and after
// the merge. The listing reads a lagging conversation only when its
// newest unmerged message could place it on the page.
TEST_CASE("listings equal a full sort whatever the mix of lagging rows",
          "[conversation_lists]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  constexpr int kConvs = 200;  // above 64 lagging: a user page narrows them
  struct Conv {
    std::string id, user;
    int64_t last_at = 0;
    int64_t seq = 0;
  };
  std::vector<Conv> convs;
  uint64_t rng = 12345;
  auto next = [&](int64_t mod) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((rng >> 33) % static_cast<uint64_t>(mod));
  };
  auto append = [&](Conv& c, int64_t at) {
    c.seq += 1;
    bb.Append(c.id, Make(c.seq, Role::kUser, "m", at, c.user));
    c.last_at = std::max(c.last_at, at);
  };
  for (int i = 0; i < kConvs; ++i) {
    Conv c;
    c.id = "c" + std::to_string(100 + i);
    c.user = "u" + std::to_string(i % 3);
    convs.push_back(c);
    // Times in 10-step buckets: ties are frequent.
    append(convs.back(), 1000 + 10 * next(40));
  }
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  for (int round = 0; round < 2; ++round) {
    for (Conv& c : convs) {
      switch (next(4)) {
        case 0:  // newer than anything merged
          append(c, 1500 + 10 * next(40));
          break;
        case 1:  // an old timestamp: last_at_us does not move
          append(c, 900 + next(100));
          break;
        default:
          break;
      }
    }
    RequireCommit(&bb, b.get());
  }
  auto expected = [&](const std::string& user) {
    std::vector<const Conv*> sorted;
    for (const Conv& c : convs) {
      if (user.empty() || c.user == user) sorted.push_back(&c);
    }
    std::sort(sorted.begin(), sorted.end(), [](const Conv* x, const Conv* y) {
      return x->last_at != y->last_at ? x->last_at > y->last_at : x->id > y->id;
    });
    S ids;
    for (const Conv* c : sorted) ids.push_back(c->id);
    return ids;
  };
  auto check_all = [&] {
    const S all = expected("");
    for (size_t limit : {1, 3, 10, 199, 200, 300}) {
      INFO("limit " << limit);
      S want(all.begin(),
             all.begin() + static_cast<ptrdiff_t>(std::min(limit, all.size())));
      CHECK(Page(b.get(), limit) == want);
      CHECK(Recent(b.get(), limit) == want);
    }
    CHECK(AllPages(b.get(), 7) == all);
    for (const std::string user : {"u0", "u1", "u2"}) {
      INFO("user " << user);
      const S mine = expected(user);
      CHECK(Page(b.get(), 100, user) == mine);
      CHECK(Page(b.get(), 4, user) ==
            S(mine.begin(),
              mine.begin() +
                  std::min<ptrdiff_t>(4, static_cast<ptrdiff_t>(mine.size()))));
    }
  };
  REQUIRE(RawInt(o.path, kLagging) > 0);
  check_all();
  RequireMaintain(b.get());
  CHECK(RawInt(o.path, kLagging) == 0);
  check_all();
}

TEST_CASE("a lagging conversation's old index row inside a page is read past",
          "[conversation_lists]") {
  // "a" and "d" lag: the index still has them at 100 and 400, inside the
  // pages after the cursor. There they must be neither listed a second
  // time nor counted against the page, which must stay full.
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  bb.Append("a", Make(2, Role::kUser, "a2", 600))
      .Append("d", Make(2, Role::kUser, "d2", 500));
  RequireCommit(&bb, b.get());
  REQUIRE(RawInt(o.path, kLagging) == 2);
  ListQuery q;
  q.has_cursor = true;
  q.cursor_last_at_us = 500;
  q.cursor_id = "d";
  q.limit = 1;
  CHECK(Ids(List(b.get(), q)) == S{"c"});
  q.limit = 2;
  CHECK(Ids(List(b.get(), q)) == S{"c", "b"});
  q.limit = 1;
  q.user_id = "u2";
  CHECK(Ids(List(b.get(), q)) == S{"b"});
  for (size_t limit : {1, 2, 3}) {
    INFO("page size " << limit);
    CHECK(AllPages(b.get(), limit) == S{"a", "d", "c", "b"});
  }
}

TEST_CASE("a merge between a listing's snapshot and its overlay copy",
          "[conversation_lists]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  bb.Append("a", Make(2, Role::kUser, "a2", 500));
  RequireCommit(&bb, b.get());
  REQUIRE(RawInt(o.path, kLagging) == 1);
  // In the snapshot "a" lags; the merge empties the overlay before the
  // listing looks at it.
  int merges = 0;
  b->SetSnapshotHookForTest([&] {
    if (merges++ == 0) RequireMaintain(b.get());
  });
  CHECK(Page(b.get(), 1) == S{"a"});
  REQUIRE(merges == 1);
  CHECK(RawInt(o.path, kLagging) == 0);
  b->SetSnapshotHookForTest(nullptr);
  CHECK(AllPages(b.get(), 1) == S{"a", "d", "c", "b"});

  bb.Append("b", Make(2, Role::kUser, "b2", 700));
  RequireCommit(&bb, b.get());
  merges = 0;
  b->SetSnapshotHookForTest([&] {
    if (merges++ == 0) RequireMaintain(b.get());
  });
  CHECK(Page(b.get(), 2, "u2") == S{"b", "d"});
  REQUIRE(merges == 1);
  b->SetSnapshotHookForTest(nullptr);
  CHECK(AllPages(b.get(), 2) == S{"b", "a", "d", "c"});
}

TEST_CASE("equal last_at_us: the larger id first, lagging or not",
          "[conversation_lists]") {
  // Descending (last_at_us, conversation_id), ids compared bytewise.
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("e", Make(1, Role::kUser, "e1", 50, "u2"));
  FillMerged(b.get(), &bb);
  // "a" and "e" lag at 400, level with "d", which does not.
  bb.Append("a", Make(2, Role::kUser, "a2", 400))
      .Append("e", Make(2, Role::kUser, "e2", 400));
  RequireCommit(&bb, b.get());
  REQUIRE(RawInt(o.path, kLagging) == 2);
  CHECK(Page(b.get(), 10) == S{"e", "d", "a", "c", "b"});
  for (size_t limit : {1, 2, 3, 4}) {
    INFO("page size " << limit);
    CHECK(AllPages(b.get(), limit) == S{"e", "d", "a", "c", "b"});
  }
  CHECK(Page(b.get(), 10, "u2") == S{"e", "d", "b"});
  CHECK(Recent(b.get(), 3) == S{"e", "d", "a"});
  RequireMaintain(b.get());
  CHECK(AllPages(b.get(), 1) == S{"e", "d", "a", "c", "b"});
}

TEST_CASE("a conversation last active at INT64_MAX is listed",
          "[conversation_lists]") {
  // created_at_us may be any non-negative value. The first page's bound
  // was (INT64_MAX, ""), which no such row is below.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("late", Make(1, Role::kUser, "l1", kMax))
      .Append("normal", Make(1, Role::kUser, "n1", 100));
  RequireCommit(&bb, b.get());
  for (bool merged : {false, true}) {
    INFO((merged ? "merged" : "lagging"));
    if (merged) RequireMaintain(b.get());
    CHECK(Page(b.get(), 10) == S{"late", "normal"});
    CHECK(AllPages(b.get(), 1) == S{"late", "normal"});
    CHECK(Recent(b.get(), 5) == S{"late", "normal"});
  }
}

TEST_CASE("limit 0 lists nothing; SIZE_MAX lists everything",
          "[conversation_lists]") {
  // The public ListConversations rejects 0 (ListOptions::limit is
  // 1..10000); the backend returns an empty page for it.
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  bb.Append("a", Make(2, Role::kUser, "a2", 500));
  RequireCommit(&bb, b.get());
  REQUIRE(RawInt(o.path, kLagging) == 1);
  CHECK(Page(b.get(), 0).empty());
  CHECK(Page(b.get(), SIZE_MAX) == S{"a", "d", "c", "b"});
  CHECK(Page(b.get(), SIZE_MAX, "u1") == S{"a", "c"});
  CHECK(Recent(b.get(), SIZE_MAX) == S{"a", "d", "c", "b"});
}

// A purge of a2 and an append of a3 to "a", as one batch when `together`.
ConversationInfo PurgeAndAppend(const Options& o, bool together) {
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  bb.Append("a", Make(2, Role::kUser, "a2", 700));
  RequireCommit(&bb, b.get());
  const WriteOp purge = PurgeOp(o.path, "a", 2, bb.last_lsn() + 1);
  BatchBuilder rest(purge.lsn + 1);
  rest.Append("a", Make(3, Role::kUser, "a3", 800));
  std::vector<WriteOp> batch{purge};
  if (!together) {
    REQUIRE(b->Apply(batch).ok());
    RequireCommit(&rest, b.get());
  } else {
    // The builder's op, after the purge in the same batch.
    WriteOp append;
    append.lsn = purge.lsn + 1;
    append.bytes = 64;
    append.payload = AppendMessageOp{
        "a", std::make_shared<const Message>(Make(3, Role::kUser, "a3", 800))};
    batch.push_back(append);
    REQUIRE(b->Apply(batch).ok());
  }
  CHECK(AllPages(b.get(), 1) == S{"a", "d", "c", "b"});
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1, 3});
  const ConversationInfo info = Load(b.get(), "a").info;
  CHECK(info.last_at_us == 800);
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CHECK(AllPages(b.get(), 1) == S{"a", "d", "c", "b"});
  CHECK(Page(b.get(), 1, "u1") == S{"a"});
  CHECK(Seqs(Load(b.get(), "a").messages) == std::vector<int64_t>{1, 3});
  CHECK(Load(b.get(), "a").info.last_at_us == 800);
  CHECK(Load(b.get(), "a").info.message_count == info.message_count);
  return info;
}

TEST_CASE("a purge and an append to one conversation in one batch",
          "[conversation_lists]") {
  TempDir dir;
  TempDir apart_dir;
  const ConversationInfo together = PurgeAndAppend(MergeOnDemand(dir), true);
  const ConversationInfo apart =
      PurgeAndAppend(MergeOnDemand(apart_dir), false);
  CHECK(together.message_count == apart.message_count);
  CHECK(together.last_at_us == apart.last_at_us);
  CHECK(together.last_seq == 3);
}

TEST_CASE("a user set by a batch that rolled back is set by the retry",
          "[conversation_lists]") {
  StatusOr<FaultVfs*> vfs = FaultVfs::Install();
  REQUIRE(vfs.ok());
  (*vfs)->Reset();
  TempDir dir;
  Options o = MergeOnDemand(dir);
  o.sqlite_vfs = FaultVfs::kName;
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("x", Make(1, Role::kSystem, "x1", 100));
  RequireCommit(&bb, b.get());
  bb.Append("x", Make(2, Role::kUser, "x2", 200, "u1"));
  (*vfs)->FailWrites(FaultVfs::Fault::kIoError);
  Status failed = bb.Commit(b.get());
  (*vfs)->Reset();
  INFO(failed.ToString() << " messages "
                         << RawInt(o.path, "SELECT count(*) FROM messages"));
  REQUIRE_FALSE(failed.ok());
  REQUIRE(RawInt(o.path,
                 "SELECT count(*) FROM conversations"
                 " WHERE user_id = 'u1'") == 0);
  bb.Append("x", Make(2, Role::kUser, "x2", 200, "u1"));
  RequireCommit(&bb, b.get());
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM conversations"
               " WHERE user_id = 'u1'") == 1);
  CHECK(Page(b.get(), 10, "u1") == S{"x"});
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CHECK(Page(b.get(), 10, "u1") == S{"x"});
}

// Copies `from` over the open database at `to` with the backup API, as a
// restore under running processes would.
void RestoreOver(const std::string& from, const std::string& to) {
  std::unique_ptr<Db> src;
  std::unique_ptr<Db> dst;
  REQUIRE(Db::Open(from, false, &src).ok());
  REQUIRE(Db::Open(to, false, &dst).ok());
  sqlite3_backup* bk =
      sqlite3_backup_init(dst->raw(), "main", src->raw(), "main");
  REQUIRE(bk != nullptr);
  CHECK(sqlite3_backup_step(bk, -1) == SQLITE_DONE);
  REQUIRE(sqlite3_backup_finish(bk) == SQLITE_OK);
}

TEST_CASE("an older copy restored under an open store forgets cached keys",
          "[conversation_lists]") {
  // The restored file's last message id is below the overlay's top: the
  // writer starts its overlay over, and must not trust what it cached about
  // conversations from the newer file either.
  TempDir dir;
  TempDir copy_dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("x", Make(1, Role::kSystem, "x1", 100));
  RequireCommit(&bb, b.get());
  const std::string old_copy = copy_dir.File("old.db");
  {
    std::unique_ptr<Db> db;
    REQUIRE(Db::Open(o.path, false, &db).ok());
    REQUIRE(db->Exec("VACUUM INTO '" + old_copy + "'").ok());
  }
  // Newer than the copy: x gets a user, y exists.
  bb.Append("x", Make(2, Role::kUser, "x2", 200, "u1"))
      .Append("y", Make(1, Role::kUser, "y1", 300, "u2"));
  RequireCommit(&bb, b.get());
  RestoreOver(old_copy, o.path);
  REQUIRE(RawInt(o.path, "SELECT count(*) FROM conversations") == 1);
  bb.Append("x", Make(2, Role::kUser, "x2", 400, "u1"))
      .Append("y", Make(1, Role::kUser, "y1", 500, "u2"));
  Status s = bb.Commit(b.get());
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(Page(b.get(), 10) == S{"y", "x"});
  CHECK(Page(b.get(), 10, "u1") == S{"x"});
  CHECK(Page(b.get(), 10, "u2") == S{"y"});
  CHECK(Load(b.get(), "y").info.message_count == 1);
}

TEST_CASE(
    "a cursor page reads a lagging conversation whose bound is newer "
    "than the snapshot",
    "[conversation_lists]") {
  // "a" lags at 350 in the listing's snapshot; a batch committed after it
  // gives "a" a message at 900, which the overlay's bound for "a" includes.
  // That bound says nothing about "a" in the snapshot: below the cursor
  // (400, "d") it must still be listed.
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  FillMerged(b.get(), &bb);
  bb.Append("a", Make(2, Role::kUser, "a2", 350));
  RequireCommit(&bb, b.get());
  int fired = 0;
  b->SetSnapshotHookForTest([&] {
    if (fired++ > 0) return;
    bb.Append("a", Make(3, Role::kUser, "a3", 900));
    RequireCommit(&bb, b.get());
  });
  ListQuery q;
  q.has_cursor = true;
  q.cursor_last_at_us = 400;
  q.cursor_id = "d";
  q.limit = 10;
  CHECK(Ids(List(b.get(), q)) == S{"a", "c", "b"});
  REQUIRE(fired == 1);
  b->SetSnapshotHookForTest(nullptr);
  CHECK(Ids(List(b.get(), q)) == S{"c", "b"});
}

// Each conversation's message count and last_at_us as a reader must see
// them: its row plus its messages the row does not summarize yet.
constexpr const char* kCurrent =
    "SELECT c.conversation_id, c.user_id,"
    " c.message_count + (SELECT count(*) FROM messages m"
    "  WHERE m.conv_key = c.conv_key AND m.id > c.summarized_through_id) AS n,"
    " max(c.last_at_us, coalesce((SELECT max(created_at_us) FROM messages m"
    "  WHERE m.conv_key = c.conv_key AND m.id > c.summarized_through_id), 0))"
    " AS last_at FROM conversations c";

// The listing order straight from the file: each row's summary plus its
// messages above summarized_through_id (schema version 11).
S Oracle(const std::string& path, const std::string& user) {
  std::unique_ptr<Db> db;
  REQUIRE(Db::Open(path, false, &db).ok());
  Stmt st;
  REQUIRE(db->Prepare(std::string("SELECT conversation_id FROM (") + kCurrent +
                          ") WHERE n > 0 AND (?1 = '' OR user_id = ?1)"
                          " ORDER BY last_at DESC, conversation_id DESC",
                      &st)
              .ok());
  st.BindText(1, user);
  S out;
  Status s;
  while (st.Step(&s)) out.push_back(st.Text(0));
  REQUIRE(s.ok());
  return out;
}

// The last_at_us of one conversation, straight from the file.
int64_t LastAt(const std::string& path, const std::string& id) {
  return RawInt(path, std::string("SELECT last_at FROM (") + kCurrent +
                          ") WHERE conversation_id = '" + id + "'");
}

// Every page of one user's (or everyone's) through the cursor.
S UserPages(StorageBackend* b, size_t limit, const std::string& user) {
  ListQuery q;
  q.limit = limit;
  q.user_id = user;
  S out;
  for (int i = 0; i < 1000; ++i) {
    std::vector<ConversationInfo> page = List(b, q);
    if (page.empty()) break;
    for (const ConversationInfo& c : page) out.push_back(c.conversation_id);
    q.has_cursor = true;
    q.cursor_last_at_us = page.back().last_at_us;
    q.cursor_id = page.back().conversation_id;
  }
  return out;
}

TEST_CASE("listings stay exact with two writers, deletes, purges, late users",
          "[conversation_lists]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto one = OpenBackend(o);
  auto two = OpenBackend(o);
  BatchBuilder bb1;
  BatchBuilder bb2(1u << 30);
  uint64_t rng = GENERATE(as<uint64_t>{}, 777, 1, 2, 3, 4, 5);
  INFO("seed " << rng);
  auto next = [&](int64_t mod) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>((rng >> 33) % static_cast<uint64_t>(mod));
  };
  struct Conv {
    std::string id, user;
    int64_t seq = 0;
    bool user_set = false;
  };
  constexpr int kConvs = 150;
  std::vector<Conv> convs;
  for (int i = 0; i < kConvs; ++i) {
    convs.push_back(
        {"c" + std::to_string(100 + i), "u" + std::to_string(i % 3), 0, false});
  }
  const S users = {"", "u0", "u1", "u2"};
  for (int round = 0; round < 12; ++round) {
    INFO("round " << round);
    for (int k = 0; k < 2; ++k) {
      BatchBuilder& bb = k == 0 ? bb1 : bb2;
      StorageBackend* b = k == 0 ? one.get() : two.get();
      for (size_t i = 0; i < convs.size(); ++i) {
        Conv& c = convs[i];
        // Deletable ones are written by one only: a writer caches keys,
        // and another process's delete is outside this review.
        const bool deletable = i % 4 == 0;
        if (deletable && k == 1) continue;
        const int64_t r = next(10);
        if (r < 3) {
          // No user at first for some: set by a later message.
          const bool with_user = c.seq > 0 || next(2) == 0;
          c.seq += 1;
          const int64_t at = next(2) == 0 ? 1000 + 10 * (round * 20 + next(40))
                                          : 500 + next(300);
          bb.Append(c.id, Make(c.seq, Role::kUser, "m", at,
                               with_user ? c.user : std::string()));
        } else if (deletable && r == 3 && next(4) == 0 && c.seq > 0) {
          bb.Delete(c.id);
          c.seq = 0;
        }
      }
      RequireCommit(&bb, b);
    }
    // A purge of a few unmerged rows, by either.
    if (round % 3 == 1) {
      std::unique_ptr<Db> db;
      REQUIRE(Db::Open(o.path, false, &db).ok());
      Stmt st;
      REQUIRE(db->Prepare("SELECT id, conv_key, seq FROM messages"
                          " WHERE id > (SELECT value FROM store_meta WHERE"
                          " key = 'merged_through_id') ORDER BY id DESC"
                          " LIMIT 15",
                          &st)
                  .ok());
      PurgeMessagesOp purge;
      Status s;
      while (st.Step(&s)) {
        purge.rows.push_back({st.Int(0), st.Int(1), st.Int(2)});
      }
      REQUIRE(s.ok());
      st = Stmt();
      db.reset();
      WriteOp op;
      op.lsn = bb1.last_lsn() + 1;
      op.bytes = 64;
      op.payload = std::move(purge);
      REQUIRE(one->Apply(std::vector<WriteOp>{op}).ok());
    }
    if (round % 4 == 3) RequireMaintain(next(2) == 0 ? one.get() : two.get());
    // Writes and merges between a listing's snapshot and its overlay copy.
    for (int trial = 0; trial < 24; ++trial) {
      INFO("trial " << trial);
      SqliteBackend* b = trial % 2 == 0 ? one.get() : two.get();
      const std::string& user = users[static_cast<size_t>(trial / 2) % 4];
      const int64_t action = next(5);
      int fired = 0;
      b->SetSnapshotHookForTest([&] {
        if (fired++ > 0) return;
        SqliteBackend* w = (action % 2 == 0) ? one.get() : two.get();
        BatchBuilder& wb = (action % 2 == 0) ? bb1 : bb2;
        if (action >= 3) {
          RequireMaintain(w);
          return;
        }
        for (size_t i = 1; i < convs.size(); i += 4) {
          if (next(3) != 0) continue;
          Conv& c = convs[i];
          c.seq += 1;
          wb.Append(c.id, Make(c.seq, Role::kUser, "m",
                               5000 + round * 100 + next(100), c.user));
        }
        RequireCommit(&wb, w);
      });
      for (size_t limit : {size_t{3}, size_t{1000}}) {
        fired = 0;
        const S want = Oracle(o.path, user);
        const S got = Page(b, limit, user);
        CHECK(got ==
              S(want.begin(), want.begin() + static_cast<ptrdiff_t>(std::min(
                                                 limit, want.size()))));
      }
      // A cursor page, from a conversation part way down.
      for (size_t limit : {size_t{3}, size_t{1000}}) {
        const S all = Oracle(o.path, user);
        if (all.size() < 2) continue;
        const size_t at =
            static_cast<size_t>(next(static_cast<int64_t>(all.size())));
        ListQuery q;
        q.user_id = user;
        q.limit = limit;
        q.has_cursor = true;
        q.cursor_id = all[at];
        q.cursor_last_at_us = LastAt(o.path, all[at]);
        S want(all.begin() + static_cast<ptrdiff_t>(at) + 1, all.end());
        if (want.size() > limit) want.resize(limit);
        fired = 0;
        INFO("cursor at " << at);
        CHECK(Ids(List(b, q)) == want);
      }
      b->SetSnapshotHookForTest(nullptr);
    }
    for (StorageBackend* b : {one.get(), two.get()}) {
      for (const std::string& user : users) {
        INFO("user '" << user << "'");
        const S want = Oracle(o.path, user);
        for (size_t limit : {1, 5, 64, 1000}) {
          INFO("limit " << limit);
          CHECK(UserPages(b, limit, user) == want);
        }
      }
    }
  }
}

}  // namespace
}  // namespace convstore::internal
