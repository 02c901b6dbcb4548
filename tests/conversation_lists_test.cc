// Copyright 2026 The convstore Authors.
//
// Conversations by recent activity (sqlite/conversation_lists.cc): the
// activity indexes hold activity_at_us, which a merge or a purge brings
// level with last_at_us (schema version 10). Conversations with messages
// above the merge watermark may lag there; ListConversations and
// ScanRecent must still place them by their newest message, whichever
// process wrote it.

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "backend_testutil.h"

namespace convstore::internal {
namespace {

using namespace backend_test;  // NOLINT(build/namespaces)
using S = std::vector<std::string>;

// How many conversations the activity index holds behind their newest
// message.
constexpr const char* kLagging =
    "SELECT count(*) FROM conversations WHERE activity_at_us <> last_at_us";

// Merges only when Maintain is called, and then everything.
Options MergeOnDemand(const TempDir& dir) {
  Options o = BackendOptions(dir);
  o.index_merge_rows = 1;
  return o;
}

void RequireMaintain(StorageBackend* b) {
  Status s = b->Maintain();
  INFO(s.ToString());
  REQUIRE(s.ok());
}

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
  const int64_t id = RawInt(o.path, "SELECT max(id) FROM messages");
  const int64_t key = RawInt(
      o.path, "SELECT conv_key FROM conversations WHERE conversation_id = 'a'");
  WriteOp op;
  op.lsn = bb.last_lsn() + 1;
  op.bytes = 64;
  op.payload = PurgeMessagesOp{{StoredMessageRef{id, key, 2}}};
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

}  // namespace
}  // namespace convstore::internal
