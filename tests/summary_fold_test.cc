// Copyright 2026 The convstore Authors.
//
// Summaries folded at merge (schema version 11, sqlite/summary_fold.cc):
// batches leave the conversations row alone and the merge (or a purge)
// folds the unmerged messages into it. Whatever the mix of merged and
// unmerged messages, purges, reopens and processes, a conversation's
// summary must be what its appends say, and a repeated seq must still be
// refused.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend_testutil.h"
#include "sqlite/fault_vfs.h"
#include "sqlite/migrations.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {
namespace {

using namespace backend_test;  // NOLINT(build/namespaces)

// What each conversation's summary must say: every message ever appended
// counts (message_count includes purged ones); `stored` is what is left.
struct Model {
  struct Conv {
    ConversationInfo info;
    int64_t stored = 0;
    int64_t first_system_seq = 0;  // the pinned system message, 0 if none
  };
  std::map<std::string, Conv> convs;

  void Append(BatchBuilder* bb, const std::string& id, const Message& m) {
    bb->Append(id, m);
    Conv& c = convs[id];
    ConversationInfo& i = c.info;
    i.conversation_id = id;
    if (i.user_id.empty()) i.user_id = m.user_id;
    if (i.message_count == 0) i.first_at_us = m.created_at_us;
    ++i.message_count;
    i.tokens_in += m.tokens_in;
    i.tokens_out += m.tokens_out;
    i.last_at_us = std::max(i.last_at_us, m.created_at_us);
    i.last_seq = std::max(i.last_seq, m.seq);
    ++c.stored;
    if (m.role == Role::kSystem && c.first_system_seq == 0) {
      c.first_system_seq = m.seq;
    }
  }
};

Message Msg(int64_t seq, Role role, int64_t at_us, int64_t tokens) {
  Message m = Make(seq, role, "m" + std::to_string(seq), at_us, "u");
  m.tokens_in = tokens;
  m.tokens_out = 2 * tokens;
  return m;
}

void CheckInfo(const ConversationInfo& got, const ConversationInfo& want) {
  INFO(want.conversation_id);
  CHECK(got.conversation_id == want.conversation_id);
  CHECK(got.user_id == want.user_id);
  CHECK(got.message_count == want.message_count);
  CHECK(got.tokens_in == want.tokens_in);
  CHECK(got.tokens_out == want.tokens_out);
  CHECK(got.first_at_us == want.first_at_us);
  CHECK(got.last_at_us == want.last_at_us);
  CHECK(got.last_seq == want.last_seq);
}

// Every way a summary is read: by id, in a listing, in ScanRecent, and
// the totals.
void CheckAgainst(StorageBackend* b, const Model& model) {
  uint64_t stored = 0;
  for (const auto& [id, c] : model.convs) {
    const StoredConversation conv = Load(b, id);
    REQUIRE(conv.exists);
    CheckInfo(conv.info, c.info);
    CHECK(static_cast<int64_t>(conv.messages.size()) == c.stored);
    if (c.first_system_seq == 0) {
      CHECK(conv.first_system == nullptr);
    } else {
      REQUIRE(conv.first_system != nullptr);
      CHECK(conv.first_system->seq == c.first_system_seq);
    }
    stored += static_cast<uint64_t>(c.stored);
  }
  ListQuery q;
  q.limit = 1000;
  const std::vector<ConversationInfo> listed = List(b, q);
  REQUIRE(listed.size() == model.convs.size());
  for (const ConversationInfo& i : listed) {
    CheckInfo(i, model.convs.at(i.conversation_id).info);
  }
  size_t scanned = 0;
  Status s = b->ScanRecent(1000, 0, [&](StoredConversation&& c) {
    CheckInfo(c.info, model.convs.at(c.info.conversation_id).info);
    ++scanned;
    return true;
  });
  REQUIRE(s.ok());
  CHECK(scanned == model.convs.size());
  const StorageCounts counts = Counts(b);
  CHECK(counts.conversations == model.convs.size());
  CHECK(counts.messages == stored);
}

// The same from both processes.
void CheckBoth(StorageBackend* one, StorageBackend* two, const Model& model) {
  CheckAgainst(one, model);
  CheckAgainst(two, model);
}

TEST_CASE("a summary counts unmerged messages wherever it is read",
          "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  auto other = OpenBackend(o);  // another process: its overlay stays empty
  Model model;
  BatchBuilder bb;
  // Within "a" a later message carries an older timestamp; "b" starts
  // with a user message, so its system message comes later.
  model.Append(&bb, "a", Msg(1, Role::kSystem, 500, 1));
  model.Append(&bb, "b", Msg(1, Role::kUser, 100, 2));
  model.Append(&bb, "a", Msg(2, Role::kUser, 300, 3));
  RequireCommit(&bb, b.get());
  model.Append(&bb, "b", Msg(2, Role::kSystem, 200, 4));
  model.Append(&bb, "c", Msg(1, Role::kUser, 900, 5));
  RequireCommit(&bb, b.get());
  CheckBoth(b.get(), other.get(), model);

  RequireMaintain(b.get());
  CheckBoth(b.get(), other.get(), model);

  // Merged and unmerged at once.
  model.Append(&bb, "a", Msg(3, Role::kUser, 700, 6));
  model.Append(&bb, "d", Msg(1, Role::kAssistant, 50, 7));
  RequireCommit(&bb, b.get());
  CheckBoth(b.get(), other.get(), model);

  // Reopened: the overlay is rebuilt from the rows above the watermark.
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CheckAgainst(b.get(), model);

  // The other process appends: b finds those rows by scanning, then merges
  // them with its own.
  BatchBuilder bb2(1000);
  model.Append(&bb2, "a", Msg(4, Role::kSystem, 800, 8));
  model.Append(&bb2, "e", Msg(1, Role::kUser, 10, 9));
  RequireCommit(&bb2, other.get());
  CheckBoth(b.get(), other.get(), model);
  model.Append(&bb, "b", Msg(3, Role::kUser, 1000, 10));
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  CheckBoth(b.get(), other.get(), model);
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CheckAgainst(b.get(), model);
}

TEST_CASE("a purge of unmerged rows folds them into the summary first",
          "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  auto other = OpenBackend(o);
  Model model;
  BatchBuilder bb;
  model.Append(&bb, "x", Msg(1, Role::kSystem, 100, 1));
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  // Seqs 2..5 unmerged, 3 a second system message.
  for (int64_t seq = 2; seq <= 5; ++seq) {
    model.Append(
        &bb, "x",
        Msg(seq, seq == 3 ? Role::kSystem : Role::kUser, 100 * seq, seq));
  }
  RequireCommit(&bb, b.get());
  // Retention removes 2 and 3 (unmerged), then the pinned 1 (merged).
  uint64_t lsn = bb.last_lsn();
  std::vector<WriteOp> purge{PurgeOp(o.path, "x", 2, ++lsn),
                             PurgeOp(o.path, "x", 3, ++lsn)};
  REQUIRE(b->Apply(purge).ok());
  model.convs["x"].stored -= 2;
  CheckBoth(b.get(), other.get(), model);
  REQUIRE(b->Apply(std::vector<WriteOp>{PurgeOp(o.path, "x", 1, ++lsn)}).ok());
  model.convs["x"].stored -= 1;
  // Unpinned: the next system message appended takes its place, not the
  // purged seq 3 whose overlay entry is still there.
  model.convs["x"].first_system_seq = 0;
  CheckAgainst(b.get(), model);
  BatchBuilder more(lsn + 1);
  model.Append(&more, "x", Msg(6, Role::kSystem, 50, 6));
  model.Append(&more, "x", Msg(7, Role::kUser, 650, 7));
  RequireCommit(&more, b.get());
  CheckBoth(b.get(), other.get(), model);
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CheckAgainst(b.get(), model);
  // The merge folds only what the purge did not.
  RequireMaintain(b.get());
  CheckBoth(b.get(), other.get(), model);
}

TEST_CASE("a repeated seq is refused whether or not the writer knows it",
          "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  for (int64_t seq = 1; seq <= 3; ++seq) {
    bb.Append("a", Msg(seq, Role::kUser, seq, 1));
  }
  RequireCommit(&bb, b.get());
  auto refused = [&](StorageBackend* to, BatchBuilder* with) {
    Status s = with->Commit(to);
    INFO(s.ToString());
    CHECK(s.IsInvalidArgument());
  };
  bb.Append("a", Msg(3, Role::kUser, 4, 1));
  refused(b.get(), &bb);
  // Reopened, so nothing is cached: found in the overlay.
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  bb.Append("a", Msg(2, Role::kUser, 4, 1));
  refused(b.get(), &bb);
  // Merged: found in the index.
  RequireMaintain(b.get());
  bb.Append("a", Msg(3, Role::kUser, 4, 1));
  refused(b.get(), &bb);
  // This writer appends 4 (and knows it as the last), another process
  // appends 5.
  bb.Append("a", Msg(4, Role::kUser, 5, 1));
  RequireCommit(&bb, b.get());
  auto other = OpenBackend(o);
  BatchBuilder bb2(1000);
  bb2.Append("a", Msg(5, Role::kUser, 6, 1));
  RequireCommit(&bb2, other.get());
  bb.Append("a", Msg(5, Role::kUser, 7, 1));
  refused(b.get(), &bb);
  bb.Append("a", Msg(6, Role::kUser, 7, 1));
  RequireCommit(&bb, b.get());
  CHECK(Load(b.get(), "a").info.message_count == 6);
  CHECK(Load(b.get(), "a").info.last_seq == 6);
}

// The pinned system message is purged while a later system
// message (appended while it was pinned) is still unmerged. As with the
// cache, and as when both were unmerged (the purge folds first), the later
// one must not become pinned: only a system message appended after the
// purge takes its place.
TEST_CASE(
    "unpinning a merged system message does not pin an "
    "unmerged one appended before",
    "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  auto other = OpenBackend(o);
  Model model;
  BatchBuilder bb;
  model.Append(&bb, "x", Msg(1, Role::kSystem, 100, 1));
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  model.Append(&bb, "x", Msg(2, Role::kSystem, 200, 2));
  model.Append(&bb, "x", Msg(3, Role::kUser, 300, 3));
  RequireCommit(&bb, b.get());
  uint64_t lsn = bb.last_lsn();
  REQUIRE(b->Apply(std::vector<WriteOp>{PurgeOp(o.path, "x", 1, ++lsn)}).ok());
  model.convs["x"].stored -= 1;
  model.convs["x"].first_system_seq = 0;
  CheckBoth(b.get(), other.get(), model);
  RequireMaintain(b.get());
  CheckBoth(b.get(), other.get(), model);
}

// Another process deletes a conversation this writer has cached (key and
// last seq). An append to that id afterwards starts it again, as after a
// delete of our own: the writer sees the other commit (PRAGMA
// data_version) and forgets what it cached.
TEST_CASE(
    "an append after another process deleted the "
    "conversation is not lost",
    "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("a", Msg(1, Role::kUser, 1, 1));
  RequireCommit(&bb, b.get());
  auto other = OpenBackend(o);
  BatchBuilder bb2(1000);
  bb2.Delete("a");
  RequireCommit(&bb2, other.get());
  bb.Append("a", Msg(1, Role::kUser, 2, 1));
  RequireCommit(&bb, b.get());
  const StoredConversation c = Load(b.get(), "a");
  CHECK(c.exists);
  CHECK(c.messages.size() == 1);
  CHECK(c.info.message_count == 1);
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM messages WHERE conv_key NOT IN"
               " (SELECT conv_key FROM conversations)") == 0);
}

TEST_CASE("purges and merges by the other process interleaved",
          "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  auto other = OpenBackend(o);
  Model model;
  BatchBuilder bb;
  for (int64_t seq = 1; seq <= 3; ++seq) {
    model.Append(&bb, "x", Msg(seq, Role::kUser, 100 * seq, seq));
  }
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  model.Append(&bb, "x", Msg(4, Role::kSystem, 50, 4));
  model.Append(&bb, "x", Msg(5, Role::kUser, 900, 5));
  RequireCommit(&bb, b.get());
  BatchBuilder bb2(1000);
  model.Append(&bb2, "y", Msg(1, Role::kUser, 10, 1));
  RequireCommit(&bb2, other.get());
  uint64_t lsn = 2000;
  REQUIRE(
      other->Apply(std::vector<WriteOp>{PurgeOp(o.path, "x", 5, ++lsn)}).ok());
  model.convs["x"].stored -= 1;
  CheckBoth(b.get(), other.get(), model);
  BatchBuilder bb3(3000);
  model.Append(&bb3, "x", Msg(6, Role::kUser, 950, 6));
  RequireCommit(&bb3, b.get());
  CheckBoth(b.get(), other.get(), model);
  // A repeated seq, after the other process purged and merged.
  RequireMaintain(other.get());
  CheckBoth(b.get(), other.get(), model);
  bb3.Append("x", Msg(6, Role::kUser, 960, 1));
  CHECK_FALSE(bb3.Commit(b.get()).ok());
  model.Append(&bb3, "x", Msg(7, Role::kUser, 970, 7));
  RequireCommit(&bb3, b.get());
  REQUIRE(
      other->Apply(std::vector<WriteOp>{PurgeOp(o.path, "x", 4, ++lsn)}).ok());
  model.convs["x"].stored -= 1;
  model.convs["x"].first_system_seq = 0;
  CheckBoth(b.get(), other.get(), model);
  RequireMaintain(b.get());
  CheckBoth(b.get(), other.get(), model);
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CheckAgainst(b.get(), model);
}

// A v10 file between merges: conversation "p" has messages 3-4
// unmerged, so its activity_at_us (refreshed by v10 only at a merge) is
// still 200 while last_at_us is 500. v11 sets summarized_through_id = 4,
// so the first v11 merge's fold skips "p" (nothing above 4) and no longer
// runs v10's activity UPDATE: the listing must still put "p" (500) before
// "q" (300).
TEST_CASE("the first merge after v10->v11 refreshes activity",
          "[summary_fold]") {
  TempDir dir;
  Options o = MergeOnDemand(dir);
  {
    std::unique_ptr<Db> db;
    REQUIRE(Db::Open(o.path, /*create=*/true, &db).ok());
    REQUIRE(Migrate(db.get(), 10).ok());
    std::string sql =
        "INSERT INTO conversations(conv_key, conversation_id, message_count,"
        " tokens_in, last_seq, first_at_us, last_at_us, activity_at_us)"
        " VALUES (1, 'p', 4, 40, 4, 100, 500, 200),"
        " (2, 'q', 1, 10, 1, 300, 300, 300);"
        "UPDATE store_meta SET value = 5 WHERE key = 'last_lsn';"
        "UPDATE store_meta SET value = 3 WHERE key = 'merged_through_id';"
        "UPDATE store_meta SET value = 5 WHERE key = 'last_message_id';";
    const int64_t conv[] = {1, 1, 2, 1, 1};
    const int64_t seq[] = {1, 2, 1, 3, 4};
    const int64_t at[] = {100, 200, 300, 400, 500};
    for (int i = 0; i < 5; ++i) {
      const std::string n = std::to_string(i + 1);
      sql +=
          "INSERT INTO messages(id, conv_key, seq, lsn, role, content,"
          " tokens_in, tokens_out, created_at_us) VALUES (" +
          n + ", " + std::to_string(conv[i]) + ", " + std::to_string(seq[i]) +
          ", " + n + ", 1, 'm" + n + "', 10, 0, " + std::to_string(at[i]) +
          ");";
      if (i < 3) {
        sql += "INSERT INTO message_index(conv_key, seq, message_id) VALUES (" +
               std::to_string(conv[i]) + ", " + std::to_string(seq[i]) + ", " +
               n + ");";
      }
    }
    Status s = db->Exec(sql);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  auto b = OpenBackend(o);
  auto order = [&] {
    ListQuery q;
    q.limit = 10;
    std::vector<std::string> ids;
    for (const ConversationInfo& i : List(b.get(), q)) {
      ids.push_back(i.conversation_id);
    }
    return ids;
  };
  CHECK(order() == std::vector<std::string>{"p", "q"});
  RequireMaintain(b.get());
  CHECK(order() == std::vector<std::string>{"p", "q"});
  CHECK(RawInt(o.path,
               "SELECT activity_at_us FROM conversations"
               " WHERE conversation_id = 'p'") == 500);
}

// Random appends (both processes), purges of random stored
// messages (merged or not, the pinned one included), merges by either
// process and reopens, every read path checked against the model.
TEST_CASE("random mix against the model", "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  std::unique_ptr<SqliteBackend> procs[2] = {OpenBackend(o), OpenBackend(o)};
  Model model;
  std::map<std::string, std::vector<int64_t>> stored;  // seqs left
  const unsigned seed = GENERATE(range(1u, 21u));
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  uint64_t lsn = 1;
  const std::vector<std::string> ids = {"a", "b", "c", "d"};
  for (int step = 0; step < 300; ++step) {
    INFO("step " << step);
    const int what = static_cast<int>(rng() % 10);
    auto& b = procs[rng() % 2];
    if (what < 5) {
      BatchBuilder bb(lsn);
      const int n = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) {
        const std::string& id = ids[rng() % ids.size()];
        const int64_t seq = model.convs[id].info.last_seq + 1;
        const Role role = rng() % 3 == 0 ? Role::kSystem : Role::kUser;
        model.Append(&bb, id,
                     Msg(seq, role, 1 + static_cast<int64_t>(rng() % 1000),
                         static_cast<int64_t>(rng() % 7)));
        stored[id].push_back(seq);
      }
      RequireCommit(&bb, b.get());
      lsn = bb.last_lsn() + 1;
    } else if (what < 7) {
      const std::string& id = ids[rng() % ids.size()];
      auto& v = stored[id];
      if (v.empty()) continue;
      const size_t at = rng() % v.size();
      const int64_t seq = v[at];
      v.erase(v.begin() + static_cast<ptrdiff_t>(at));
      Status s =
          b->Apply(std::vector<WriteOp>{PurgeOp(o.path, id, seq, lsn++)});
      INFO(s.ToString());
      REQUIRE(s.ok());
      Model::Conv& c = model.convs[id];
      --c.stored;
      if (c.first_system_seq == seq) c.first_system_seq = 0;
    } else if (what < 8) {
      RequireMaintain(b.get());
    } else if (what < 9) {
      // Deletes; the other process is reopened (its cached key would name a
      // deleted row: see the test above).
      const std::string& id = ids[rng() % ids.size()];
      if (!model.convs.contains(id)) continue;
      BatchBuilder bb(lsn);
      bb.Delete(id);
      RequireCommit(&bb, b.get());
      lsn = bb.last_lsn() + 1;
      model.convs.erase(id);
      stored.erase(id);
      auto& o2 = procs[0].get() == b.get() ? procs[1] : procs[0];
      REQUIRE(o2->Close().ok());
      o2 = OpenBackend(o);
    } else {
      REQUIRE(b->Close().ok());
      b = OpenBackend(o);
    }
    if (step % 5 == 0) {
      CheckAgainst(procs[0].get(), model);
      CheckAgainst(procs[1].get(), model);
    }
  }
  CheckAgainst(procs[0].get(), model);
  CheckAgainst(procs[1].get(), model);
}

// A purge that folds, a merge that folds, and an append batch
// all fail at commit and roll back; the retries must count each message
// once and still refuse a repeated seq.
TEST_CASE("folds that roll back", "[summary_fold]") {
  StatusOr<FaultVfs*> vfs = FaultVfs::Install();
  REQUIRE(vfs.ok());
  (*vfs)->Reset();
  TempDir dir;
  Options o = MergeOnDemand(dir);
  o.sqlite_vfs = FaultVfs::kName;
  auto b = OpenBackend(o);
  auto other = OpenBackend(o);
  Model model;
  BatchBuilder bb;
  model.Append(&bb, "x", Msg(1, Role::kSystem, 100, 1));
  model.Append(&bb, "x", Msg(2, Role::kUser, 200, 2));
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  model.Append(&bb, "x", Msg(3, Role::kSystem, 300, 3));
  model.Append(&bb, "x", Msg(4, Role::kUser, 400, 4));
  RequireCommit(&bb, b.get());
  uint64_t lsn = bb.last_lsn();
  // The purge of unmerged 4 fails.
  std::vector<WriteOp> purge{PurgeOp(o.path, "x", 4, ++lsn)};
  (*vfs)->FailWrites(FaultVfs::Fault::kIoError);
  CHECK_FALSE(b->Apply(purge).ok());
  (*vfs)->Reset();
  CheckBoth(b.get(), other.get(), model);
  // An append batch with a new conversation fails.
  BatchBuilder bb2(lsn + 1);
  bb2.Append("x", Msg(5, Role::kUser, 500, 5));
  bb2.Append("y", Msg(1, Role::kUser, 50, 1));
  (*vfs)->FailWrites(FaultVfs::Fault::kIoError);
  CHECK_FALSE(bb2.Commit(b.get()).ok());
  (*vfs)->Reset();
  CheckAgainst(b.get(), model);
  // A merge fails.
  (*vfs)->FailWrites(FaultVfs::Fault::kIoError);
  CHECK_FALSE(b->Maintain().ok());
  (*vfs)->Reset();
  CheckBoth(b.get(), other.get(), model);
  // Retries.
  REQUIRE(
      b->Apply(std::vector<WriteOp>{PurgeOp(o.path, "x", 4, lsn + 10)}).ok());
  model.convs["x"].stored -= 1;
  BatchBuilder bb3(lsn + 20);
  model.Append(&bb3, "x", Msg(5, Role::kUser, 500, 5));
  model.Append(&bb3, "y", Msg(1, Role::kUser, 50, 1));
  RequireCommit(&bb3, b.get());
  CheckBoth(b.get(), other.get(), model);
  bb3.Append("y", Msg(1, Role::kUser, 60, 1));
  CHECK_FALSE(bb3.Commit(b.get()).ok());
  bb3.Append("x", Msg(5, Role::kUser, 60, 1));
  CHECK_FALSE(bb3.Commit(b.get()).ok());
  RequireMaintain(b.get());
  CheckBoth(b.get(), other.get(), model);
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  CheckAgainst(b.get(), model);
}

// retention's choices when messages are unmerged, from the
// writer's process and from another (empty overlay), before and after a
// purge folded the conversation.
TEST_CASE("retention choices with unmerged messages", "[summary_fold]") {
  TempDir dir;
  const Options o = MergeOnDemand(dir);
  auto b = OpenBackend(o);
  auto other = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("x", Msg(1, Role::kUser, 100, 1));
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  // 2 is the first system message, unmerged; 2..7 unmerged.
  for (int64_t seq = 2; seq <= 7; ++seq) {
    bb.Append("x", Msg(seq, seq == 2 || seq == 4 ? Role::kSystem : Role::kUser,
                       100 * seq, 1));
  }
  RequireCommit(&bb, b.get());
  auto choose = [&](StorageBackend* from, const PurgeQuery& q) {
    std::vector<int64_t> seqs;
    Status s = from->SelectPurgeable(q, [&](PurgeCandidates&& c) {
      for (const auto& r : c.rows) seqs.push_back(r.seq);
      return true;
    });
    INFO(s.ToString());
    REQUIRE(s.ok());
    std::sort(seqs.begin(), seqs.end());
    return seqs;
  };
  PurgeQuery count;
  count.keep_newest = 2;
  PurgeQuery age;
  age.created_before_us = 450;  // 1..4
  PurgeQuery both = age;
  both.keep_newest = 5;  // count takes 1..2, age 3, 4
  using V = std::vector<int64_t>;
  for (StorageBackend* from : {static_cast<StorageBackend*>(b.get()),
                               static_cast<StorageBackend*>(other.get())}) {
    CHECK(choose(from, count) == V{1, 3, 4, 5});
    CHECK(choose(from, age) == V{1, 3, 4});
    CHECK(choose(from, both) == V{1, 3, 4});
  }
  // A purge of unmerged 3 folds x; 8 appended after.
  uint64_t lsn = bb.last_lsn();
  REQUIRE(b->Apply(std::vector<WriteOp>{PurgeOp(o.path, "x", 3, ++lsn)}).ok());
  BatchBuilder bb2(lsn + 1);
  bb2.Append("x", Msg(8, Role::kUser, 800, 1));
  RequireCommit(&bb2, b.get());
  for (StorageBackend* from : {static_cast<StorageBackend*>(b.get()),
                               static_cast<StorageBackend*>(other.get())}) {
    // last_seq 8, purged 1: 7 left, keep 2 -> up to 6, spare 2.
    CHECK(choose(from, count) == V{1, 4, 5, 6});
    CHECK(choose(from, age) == V{1, 4});
  }
}

}  // namespace
}  // namespace convstore::internal
