// Copyright 2026 The convstore Authors.
//
// The SQLite message layout: batches append to `messages` only, the
// messages above the merge watermark are indexed in memory (the overlay),
// Maintain() merges them into the merged index (message_chunks), and every read
// sees both as one, whatever merges or other writers commit meanwhile
// (docs/schema.md, docs/architecture.md "Unmerged messages").

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "backend_testutil.h"
#include "sqlite_testutil.h"

namespace convstore::internal {
namespace {

using namespace backend_test;  // NOLINT(build/namespaces)

constexpr const char* kWatermark =
    "SELECT value FROM store_meta WHERE key = 'merged_through_id'";
// Messages that the merged index does not hold yet.
constexpr const char* kUnmergedCount =
    "SELECT count(*) FROM messages WHERE id > (SELECT value FROM store_meta"
    " WHERE key = 'merged_through_id')";
constexpr const char* kMergedCount =
    "SELECT (SELECT coalesce(sum(n), 0) FROM message_chunks) +"
    " (SELECT coalesce(sum(n), 0) FROM message_tails)";
// Every run of the merged index: its rows and the tails.
constexpr const char* kRuns =
    "WITH runs AS (SELECT conv_key, first_seq, n FROM message_chunks"
    " UNION ALL SELECT conv_key, first_seq, n FROM message_tails) ";

Options MergeEvery(const TempDir& dir, size_t rows) {
  Options o = BackendOptions(dir);
  o.index_merge_rows = rows;
  return o;
}

// Appends `per_batch` messages round-robin over `convs` in each of
// `batches` batches, merging after each; returns the seqs per conversation.
std::map<std::string, int64_t> Fill(StorageBackend* b, BatchBuilder* bb,
                                    const std::vector<std::string>& convs,
                                    int batches, int per_batch,
                                    std::map<std::string, int64_t> next = {}) {
  int64_t at = 1000;
  for (int i = 0; i < batches; ++i) {
    for (int j = 0; j < per_batch; ++j) {
      const std::string& c = convs[static_cast<size_t>(i + j) % convs.size()];
      const int64_t seq = ++next[c];
      bb->Append(c,
                 Make(seq, Role::kUser, c + "#" + std::to_string(seq), ++at));
    }
    RequireCommit(bb, b);
    RequireMaintain(b);
  }
  return next;
}

void CheckWhole(StorageBackend* b, const std::string& c, int64_t n) {
  INFO(c);
  StoredConversation got = Load(b, c);
  REQUIRE(got.exists);
  REQUIRE(got.messages.size() == static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    CHECK(got.messages[static_cast<size_t>(k)]->seq == k + 1);
    CHECK(got.messages[static_cast<size_t>(k)]->content ==
          c + "#" + std::to_string(k + 1));
  }
  CHECK(got.info.message_count == n);
  CHECK(got.info.last_seq == n);
}

TEST_CASE("messages read the same before and after merges", "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 7);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  const std::vector<std::string> convs = {"a", "b", "c"};
  auto n = Fill(b.get(), &bb, convs, 10, 5);
  const int64_t total = n["a"] + n["b"] + n["c"];
  REQUIRE(total == 50);
  // Every merge emptied the overlay; what is left is under the bound.
  CHECK(RawInt(o.path, kUnmergedCount) < 7);
  CHECK(RawInt(o.path, kMergedCount) + RawInt(o.path, kUnmergedCount) == total);
  CHECK(RawInt(o.path, kMergedCount) > 0);
  for (const auto& [c, count] : n) CheckWhole(b.get(), c, count);
  // A tail and a range that straddle the two parts.
  CHECK(Seqs(Load(b.get(), "a", 3).messages) ==
        std::vector<int64_t>{n["a"] - 2, n["a"] - 1, n["a"]});
  CHECK(Seqs(LoadRange(b.get(), "b", 2, 6)) == std::vector<int64_t>{3, 4, 5});
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("a delete removes both parts of the index", "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 6);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  auto n = Fill(b.get(), &bb, {"a", "b"}, 5, 4);
  // Leave some of "a" unmerged: committed without a Maintain after.
  for (int i = 0; i < 3; ++i) {
    const int64_t seq = ++n["a"];
    bb.Append("a", Make(seq, Role::kUser, "a#" + std::to_string(seq), 5000));
  }
  RequireCommit(&bb, b.get());
  REQUIRE(RawInt(o.path, kUnmergedCount) > 0);
  const int64_t key = RawInt(
      o.path, "SELECT conv_key FROM conversations WHERE conversation_id='a'");
  bb.Delete("a");
  RequireCommit(&bb, b.get());
  CHECK_FALSE(Load(b.get(), "a").exists);
  const std::string k = std::to_string(key);
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages WHERE conv_key=" + k) ==
        0);
  CHECK(RawInt(o.path, std::string(kRuns) +
                           "SELECT count(*) FROM runs WHERE conv_key=" + k) ==
        0);
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages WHERE conv_key=" + k +
                           " AND id > (" + kWatermark + ")") == 0);
  CheckWhole(b.get(), "b", n["b"]);
  // Re-created, it starts over.
  Fill(b.get(), &bb, {"a"}, 2, 4);
  CheckWhole(b.get(), "a", 8);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

// Makes conversation `conv`'s packed index rows (in message_chunks and
// message_tails) undecodable behind the backend's back.
void DamageIndexRows(const std::string& path, const std::string& conv) {
  const std::string key =
      "(SELECT conv_key FROM conversations WHERE conversation_id = '" + conv +
      "')";
  REQUIRE(RawInt(path,
                 std::string(kRuns) +
                     "SELECT count(*) FROM runs WHERE conv_key = " + key) > 0);
  for (const char* table : {"message_chunks", "message_tails"}) {
    test::RawExec(path, std::string("UPDATE ") + table +
                            " SET entries = x'0080' WHERE conv_key = " + key);
  }
}

TEST_CASE("a damaged index row fails the read and is rebuilt by the next write",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 4);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  auto n = Fill(b.get(), &bb, {"a", "b"}, 4, 4);
  DamageIndexRows(o.path, "a");
  StoredConversation got;
  Status s = b->LoadConversation("a", 0, &got);
  INFO(s.ToString());
  CHECK(s.IsCorruption());
  // The other conversation reads as before.
  CheckWhole(b.get(), "b", n["b"]);
  // The merge that next indexes "a" rebuilds its rows from `messages`.
  n = Fill(b.get(), &bb, {"a"}, 2, 4, n);
  CheckWhole(b.get(), "a", n["a"]);
  CheckWhole(b.get(), "b", n["b"]);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("a delete or purge through a damaged index row loses nothing else",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 4);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  auto n = Fill(b.get(), &bb, {"a", "b", "c"}, 6, 4);
  DamageIndexRows(o.path, "a");
  DamageIndexRows(o.path, "c");
  const std::string a_key = std::to_string(RawInt(
      o.path, "SELECT conv_key FROM conversations WHERE conversation_id='a'"));
  // The delete finds "a"'s messages by a scan instead.
  bb.Delete("a");
  RequireCommit(&bb, b.get());
  CHECK_FALSE(Load(b.get(), "a").exists);
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM messages WHERE conv_key = " + a_key) == 0);
  // The purge removes "c"'s seq 2 and rebuilds the rest of its rows.
  std::vector<WriteOp> purge{PurgeOp(o.path, "c", 2, bb.last_lsn() + 1)};
  Status s = b->Apply(purge);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::vector<int64_t> want;
  for (int64_t k = 1; k <= n["c"]; ++k) {
    if (k != 2) want.push_back(k);
  }
  CHECK(Seqs(Load(b.get(), "c").messages) == want);
  CheckWhole(b.get(), "b", n["b"]);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("another writer's merge below our last seq keeps runs apart",
          "[message_index]") {
  // Two backends on one file stand for two processes. "two" indexes seqs 4
  // and 6-70 of "x" (a full message_chunks row from seq 1 and a tail);
  // "one", which indexed up to 3, then appends 5. Its merge must rewrite
  // that row and the tail, not add a run [5] overlapping them.
  TempDir dir;
  Options o = MergeEvery(dir, 1);
  auto one = OpenBackend(o);
  auto two = OpenBackend(o);
  BatchBuilder bb1;
  BatchBuilder bb2(1000);
  for (int64_t seq = 1; seq <= 3; ++seq) {
    bb1.Append("x", Make(seq, Role::kUser, "x#" + std::to_string(seq), seq));
  }
  RequireCommit(&bb1, one.get());
  RequireMaintain(one.get());
  for (int64_t seq = 4; seq <= 70; ++seq) {
    if (seq == 5) continue;
    bb2.Append("x", Make(seq, Role::kUser, "x#" + std::to_string(seq), seq));
  }
  RequireCommit(&bb2, two.get());
  RequireMaintain(two.get());
  bb1.Append("x", Make(5, Role::kUser, "x#5", 5));
  RequireCommit(&bb1, one.get());
  RequireMaintain(one.get());
  CHECK(RawInt(o.path, kUnmergedCount) == 0);
  // No two runs overlap: each starts above the previous one's last seq,
  // which the next one's first_seq bounds from below.
  CHECK(RawInt(o.path, std::string(kRuns) +
                           "SELECT count(*) FROM runs a JOIN runs b"
                           " ON a.conv_key = b.conv_key"
                           " AND b.first_seq > a.first_seq"
                           " AND b.first_seq <= a.first_seq + a.n - 1") == 0);
  CHECK(RawInt(o.path, "SELECT count(*) FROM message_chunks") == 1);
  CHECK(RawInt(o.path, kMergedCount) == 70);
  for (StorageBackend* b : {one.get(), two.get()}) {
    CheckWhole(b, "x", 70);
    CHECK(Seqs(Load(b, "x", 2).messages) == std::vector<int64_t>{69, 70});
  }
  REQUIRE(one->Close().ok());
  REQUIRE(two->Close().ok());
}

TEST_CASE("the first system message is found in the merged part",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 5);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  bb.Append("s", Make(1, Role::kSystem, "be brief", 10));
  for (int64_t seq = 2; seq <= 4; ++seq) {
    bb.Append("s", Make(seq, Role::kUser, "u" + std::to_string(seq), 10 + seq));
  }
  RequireCommit(&bb, b.get());
  for (int64_t seq = 5; seq <= 12; ++seq) {
    bb.Append("s", Make(seq, Role::kUser, "u" + std::to_string(seq), 10 + seq));
    RequireCommit(&bb, b.get());
    RequireMaintain(b.get());
  }
  StoredConversation got = Load(b.get(), "s", 2);
  CHECK(Seqs(got.messages) == std::vector<int64_t>{11, 12});
  REQUIRE(got.first_system != nullptr);
  CHECK(got.first_system->seq == 1);
  CHECK(got.first_system->content == "be brief");
  // A conversation without one has none, however its tail is read.
  bb.Append("t", Make(1, Role::kUser, "x", 1));
  RequireCommit(&bb, b.get());
  CHECK(Load(b.get(), "t", 1).first_system == nullptr);
}

TEST_CASE("unmerged entries survive a reopen and merge later",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 1000);
  std::map<std::string, int64_t> n;
  {
    auto b = OpenBackend(o);
    BatchBuilder bb;
    n = Fill(b.get(), &bb, {"a", "b", "c"}, 4, 6);
    REQUIRE(RawInt(o.path, kUnmergedCount) == 24);
    REQUIRE(b->Close().ok());
  }
  o.index_merge_rows = 10;
  auto b = OpenBackend(o);
  for (const auto& [c, count] : n) CheckWhole(b.get(), c, count);
  // The count taken at open makes the first Maintain merge.
  RequireMaintain(b.get());
  CHECK(RawInt(o.path, kUnmergedCount) == 0);
  CHECK(RawInt(o.path, kMergedCount) == 24);
  for (const auto& [c, count] : n) CheckWhole(b.get(), c, count);
}

TEST_CASE("upkeep counters report merges and the messages not merged yet",
          "[message_index]") {
  TempDir dir;
  const Options o = MergeEvery(dir, 10);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  UpkeepCounters c = b->upkeep_counters();
  CHECK(c.index_merges == 0);
  CHECK(c.index_merge_total_us == 0);
  CHECK(c.index_merge_max_us == 0);
  CHECK(c.unmerged_messages == 0);

  auto n = Fill(b.get(), &bb, {"a", "b"}, 1, 6);  // under the threshold
  c = b->upkeep_counters();
  CHECK(c.index_merges == 0);
  CHECK(c.unmerged_messages == 6);

  n = Fill(b.get(), &bb, {"a", "b"}, 1, 6, n);
  const UpkeepCounters first = b->upkeep_counters();
  CHECK(first.index_merges == 1);
  CHECK(first.unmerged_messages == 0);
  CHECK(RawInt(o.path, kMergedCount) == 12);
  CHECK(first.index_merge_max_us > 0);
  CHECK(first.index_merge_total_us == first.index_merge_max_us);

  Fill(b.get(), &bb, {"a", "b"}, 2, 6, n);
  c = b->upkeep_counters();
  CHECK(c.index_merges == 2);
  CHECK(c.unmerged_messages == 0);
  // Totals add up; the longest is the longer of the two.
  const int64_t second = c.index_merge_total_us - first.index_merge_total_us;
  CHECK(second > 0);
  CHECK(c.index_merge_max_us == std::max(first.index_merge_max_us, second));
  REQUIRE(b->Close().ok());
  CHECK(b->upkeep_counters().index_merges == 2);  // still readable
}

// What ScanRecent gave for each conversation, in visiting order.
std::vector<StoredConversation> Scan(StorageBackend* b, size_t convs,
                                     size_t msgs) {
  std::vector<StoredConversation> out;
  Status s = b->ScanRecent(convs, msgs, [&](StoredConversation&& c) {
    out.push_back(std::move(c));
    return true;
  });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

TEST_CASE("a merge starts once the unmerged messages span enough conversations",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 1000);
  o.index_merge_conversations = 3;
  auto b = OpenBackend(o);
  BatchBuilder bb;
  // Many messages in two conversations: under both bounds.
  auto n = Fill(b.get(), &bb, {"a", "b"}, 5, 8);
  UpkeepCounters c = b->upkeep_counters();
  CHECK(c.index_merges == 0);
  CHECK(c.unmerged_messages == 40);
  // One message in a third conversation reaches the conversation bound.
  n = Fill(b.get(), &bb, {"c"}, 1, 1, n);
  c = b->upkeep_counters();
  CHECK(c.index_merges == 1);
  CHECK(c.unmerged_messages == 0);
  CHECK(RawInt(o.path, kMergedCount) == 41);
  for (const auto& [conv, count] : n) CheckWhole(b.get(), conv, count);
  // The overlay is empty again, so two conversations do not merge.
  n = Fill(b.get(), &bb, {"a", "b"}, 1, 2, n);
  CHECK(b->upkeep_counters().index_merges == 1);
  CHECK(b->upkeep_counters().unmerged_messages == 2);
}

TEST_CASE("ScanRecent's sequential pass agrees with lookups",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 9);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  std::vector<std::string> convs;
  for (int i = 0; i < 6; ++i) convs.push_back("c" + std::to_string(i));
  bb.Append("sys", Make(1, Role::kSystem, "rules", 1));
  RequireCommit(&bb, b.get());
  auto n = Fill(b.get(), &bb, convs, 8, 5);
  Fill(b.get(), &bb, {"sys"}, 3, 4, {{"sys", 1}});
  // All conversations with all (or most) of their messages: the sequential
  // pass. One conversation with one message: lookups.
  for (size_t max_msgs : {size_t{0}, size_t{4}}) {
    INFO("max_messages " << max_msgs);
    std::vector<StoredConversation> scanned = Scan(b.get(), 100, max_msgs);
    REQUIRE(scanned.size() == convs.size() + 1);
    for (size_t i = 0; i < scanned.size(); ++i) {
      const StoredConversation& got = scanned[i];
      if (i > 0) {
        CHECK(got.info.last_at_us <= scanned[i - 1].info.last_at_us);
      }
      StoredConversation want =
          Load(b.get(), got.info.conversation_id, max_msgs);
      CHECK(Seqs(got.messages) == Seqs(want.messages));
      CHECK(got.info.message_count == want.info.message_count);
      CHECK((got.first_system == nullptr) == (want.first_system == nullptr));
      if (got.first_system != nullptr) {
        CHECK(got.first_system->content == "rules");
      }
    }
  }
  std::vector<StoredConversation> one = Scan(b.get(), 1, 1);
  REQUIRE(one.size() == 1);
  CHECK(one[0].messages.size() == 1);
}

TEST_CASE("ScanRecent's sequential pass stays within the cache budget",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 1000);
  o.cache_max_bytes = 4096;  // a few messages' worth
  auto b = OpenBackend(o);
  BatchBuilder bb;
  std::vector<std::string> convs;
  for (int i = 0; i < 10; ++i) convs.push_back("c" + std::to_string(i));
  Fill(b.get(), &bb, convs, 10, 10);
  std::vector<StoredConversation> scanned = Scan(b.get(), 100, 0);
  CHECK(scanned.size() >= 1);
  CHECK(scanned.size() < convs.size());
  // Those it kept are whole and the most recent ones.
  for (const StoredConversation& c : scanned) {
    CHECK(static_cast<int64_t>(c.messages.size()) == c.info.message_count);
  }
}

// Appends `count` messages to `c` (continuing from n[c]) in one batch,
// without a merge after it.
void AppendUnmerged(StorageBackend* b, BatchBuilder* bb,
                    std::map<std::string, int64_t>* n, const std::string& c,
                    int count) {
  for (int i = 0; i < count; ++i) {
    const int64_t seq = ++(*n)[c];
    bb->Append(
        c, Make(seq, Role::kUser, c + "#" + std::to_string(seq), 10'000 + seq));
  }
  RequireCommit(bb, b);
}

TEST_CASE("a read whose snapshot predates a merge still sees every message",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 8);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  std::map<std::string, int64_t> n;
  AppendUnmerged(b.get(), &bb, &n, "a", 5);
  AppendUnmerged(b.get(), &bb, &n, "b", 5);
  REQUIRE(RawInt(o.path, kUnmergedCount) == 10);
  // The merge commits and empties the overlay after the read took its
  // snapshot (in which the merged index does not hold these messages yet) and
  // before it looks at the overlay.
  int merges = 0;
  b->SetSnapshotHookForTest([&] {
    if (merges++ == 0) RequireMaintain(b.get());
  });
  CheckWhole(b.get(), "a", 5);
  REQUIRE(merges >= 1);
  CHECK(RawInt(o.path, kUnmergedCount) == 0);
  CHECK(RawInt(o.path, kMergedCount) == 10);
  // A tail, a range and the other conversation after the merge.
  CHECK(Seqs(Load(b.get(), "a", 2).messages) == std::vector<int64_t>{4, 5});
  CHECK(Seqs(LoadRange(b.get(), "b", 1, 4)) == std::vector<int64_t>{2, 3});
  CheckWhole(b.get(), "b", 5);
  b->SetSnapshotHookForTest(nullptr);
  // Straddling: some merged, some not.
  AppendUnmerged(b.get(), &bb, &n, "a", 3);
  CHECK(Seqs(Load(b.get(), "a", 4).messages) ==
        std::vector<int64_t>{5, 6, 7, 8});
  CheckWhole(b.get(), "a", 8);
  REQUIRE(b->Close().ok());
}

TEST_CASE("reads on another thread stay whole while batches and merges commit",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 5);
  o.read_connections = 2;
  auto b = OpenBackend(o);
  const std::vector<std::string> convs = {"c0", "c1", "c2", "c3"};
  // Messages of each conversation committed, published after each commit.
  std::atomic<int64_t> committed[4] = {0, 0, 0, 0};
  std::atomic<bool> done{false};
  std::atomic<int64_t> bad{0};
  std::atomic<int64_t> reads{0};
  std::thread reader([&] {
    size_t i = 0;
    while (!done.load()) {
      const size_t c = i++ % convs.size();
      const int64_t at_least = committed[c].load();
      StoredConversation got;
      Status s = b->LoadConversation(convs[c], 0, &got);
      reads.fetch_add(1);
      if (!s.ok()) {
        bad.fetch_add(1);
        continue;
      }
      // Gap-free from 1, and at least what was committed before the read.
      bool ok = static_cast<int64_t>(got.messages.size()) >= at_least;
      for (size_t k = 0; ok && k < got.messages.size(); ++k) {
        ok = got.messages[k]->seq == static_cast<int64_t>(k) + 1;
      }
      if (!ok) bad.fetch_add(1);
    }
  });
  BatchBuilder bb;
  std::map<std::string, int64_t> n;
  for (int batch = 0; batch < 600; ++batch) {
    // Three messages to one or two conversations per batch.
    for (int j = 0; j < 3; ++j) {
      const std::string& c = convs[static_cast<size_t>(batch + j / 2) % 4];
      const int64_t seq = ++n[c];
      bb.Append(c, Make(seq, Role::kUser, c + "#" + std::to_string(seq),
                        batch * 10 + j));
    }
    Status s = bb.Commit(b.get());
    if (s.ok()) s = b->Maintain();
    if (!s.ok()) {
      done = true;
      reader.join();
      FAIL(s.ToString());
    }
    for (size_t c = 0; c < convs.size(); ++c) committed[c] = n[convs[c]];
  }
  // Let the reader go round at least once after the last batch.
  const int64_t seen = reads.load();
  while (reads.load() < seen + 8) std::this_thread::yield();
  done = true;
  reader.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
  for (const std::string& c : convs) CheckWhole(b.get(), c, n[c]);
  REQUIRE(b->Close().ok());
}

TEST_CASE("messages another writer committed are read before this one syncs",
          "[message_index]") {
  // Two backends on one file stand for two processes: each has an overlay
  // of its own, and neither sees the other's commits in it.
  TempDir dir;
  Options o = MergeEvery(dir, 6);
  auto one = OpenBackend(o);
  auto two = OpenBackend(o);
  BatchBuilder bb1;
  BatchBuilder bb2(1000);
  std::map<std::string, int64_t> n;
  AppendUnmerged(one.get(), &bb1, &n, "mine", 2);
  AppendUnmerged(two.get(), &bb2, &n, "theirs", 4);
  CheckWhole(one.get(), "theirs", 4);  // not in one's overlay: scanned
  CheckWhole(two.get(), "mine", 2);
  // two merges everything, its own and one's messages alike.
  RequireMaintain(two.get());
  CHECK(RawInt(o.path, kUnmergedCount) == 0);
  CheckWhole(one.get(), "theirs", 4);
  CheckWhole(one.get(), "mine", 2);
  // one's next batch catches up with the merge, then both go on.
  AppendUnmerged(one.get(), &bb1, &n, "mine", 3);
  AppendUnmerged(two.get(), &bb2, &n, "theirs", 1);
  for (StorageBackend* b : {one.get(), two.get()}) {
    CheckWhole(b, "mine", 5);
    CheckWhole(b, "theirs", 5);
  }
  // one deletes its conversation, including rows two wrote after it.
  bb1.Delete("mine");
  RequireCommit(&bb1, one.get());
  CHECK_FALSE(Load(two.get(), "mine").exists);
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages WHERE seq > 0") == 5);
  RequireMaintain(one.get());
  REQUIRE(one->Close().ok());
  REQUIRE(two->Close().ok());
  auto again = OpenBackend(o);
  CheckWhole(again.get(), "theirs", 5);
  CHECK_FALSE(Load(again.get(), "mine").exists);
}

TEST_CASE("message ids are never reused after the newest rows are deleted",
          "[message_index]") {
  TempDir dir;
  Options o = MergeEvery(dir, 4);
  std::map<std::string, int64_t> n;
  {
    auto b = OpenBackend(o);
    BatchBuilder bb;
    AppendUnmerged(b.get(), &bb, &n, "a", 3);
    AppendUnmerged(b.get(), &bb, &n, "b", 3);  // the highest ids
    RequireMaintain(b.get());
    const int64_t watermark = RawInt(o.path, kWatermark);
    REQUIRE(watermark == RawInt(o.path, "SELECT max(id) FROM messages"));
    bb.Delete("b");
    RequireCommit(&bb, b.get());
    // SQLite alone would give these ids max(id) + 1 = ids at or below the
    // watermark, where neither the merged index nor the overlay looks.
    AppendUnmerged(b.get(), &bb, &n, "a", 2);
    CHECK(RawInt(o.path, "SELECT min(id) FROM messages WHERE seq > 3") >
          watermark);
    CheckWhole(b.get(), "a", 5);
    REQUIRE(b->Close().ok());
  }
  auto b = OpenBackend(o);
  CheckWhole(b.get(), "a", 5);
  CHECK_FALSE(Load(b.get(), "b").exists);
}

TEST_CASE("a copy taken without Close reloads its unmerged messages",
          "[message_index]") {
  // As after a crash before the merge commit: the file holds messages above
  // the watermark and no overlay survives.
  TempDir dir;
  TempDir copy_dir;
  Options o = MergeEvery(dir, 10);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  auto n = Fill(b.get(), &bb, {"a", "b", "c"}, 5, 4);  // 20 messages
  const int64_t unmerged = RawInt(o.path, kUnmergedCount);
  REQUIRE(unmerged > 0);
  REQUIRE(unmerged < 20);
  namespace fs = std::filesystem;
  Options c = MergeEvery(copy_dir, 10);
  fs::copy_file(o.path, c.path);
  fs::copy_file(o.path + "-wal", c.path + "-wal");
  {
    auto crashed = OpenBackend(c);
    CHECK(RawInt(c.path, kUnmergedCount) == unmerged);
    for (const auto& [conv, count] : n) CheckWhole(crashed.get(), conv, count);
    // It goes on writing and merging from there.
    AppendUnmerged(crashed.get(), &bb, &n, "a", 10);
    RequireMaintain(crashed.get());
    CHECK(RawInt(c.path, kUnmergedCount) == 0);
    for (const auto& [conv, count] : n) CheckWhole(crashed.get(), conv, count);
    REQUIRE(crashed->Close().ok());
  }
  CHECK(IntegrityCheck(c.path) == "ok");
  REQUIRE(b->Close().ok());
}

}  // namespace
}  // namespace convstore::internal
