// Copyright 2026 The convstore Authors.
//
// The SQLite message layout: batches index their messages in
// recent_message_index, Maintain() merges it into message_index, and every
// read sees both parts as one (docs/schema.md).

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "backend_testutil.h"

namespace convstore::internal {
namespace {

using namespace backend_test;  // NOLINT(build/namespaces)

constexpr const char* kRecentCount =
    "SELECT count(*) FROM recent_message_index";
constexpr const char* kMergedCount = "SELECT count(*) FROM message_index";

Options MergeEvery(const TempDir& dir, size_t rows) {
  Options o = BackendOptions(dir);
  o.index_merge_rows = rows;
  return o;
}

void RequireMaintain(StorageBackend* b) {
  Status s = b->Maintain();
  INFO(s.ToString());
  REQUIRE(s.ok());
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
  // Every merge emptied the recent part; what is left is under the bound.
  CHECK(RawInt(o.path, kRecentCount) < 7);
  CHECK(RawInt(o.path, kMergedCount) + RawInt(o.path, kRecentCount) == total);
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
  REQUIRE(RawInt(o.path, kRecentCount) > 0);
  const int64_t key = RawInt(
      o.path, "SELECT conv_key FROM conversations WHERE conversation_id='a'");
  bb.Delete("a");
  RequireCommit(&bb, b.get());
  CHECK_FALSE(Load(b.get(), "a").exists);
  const std::string k = std::to_string(key);
  CHECK(RawInt(o.path, "SELECT count(*) FROM messages WHERE conv_key=" + k) ==
        0);
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM message_index WHERE conv_key=" + k) == 0);
  CHECK(RawInt(o.path,
               "SELECT count(*) FROM recent_message_index WHERE "
               "conv_key=" +
                   k) == 0);
  CheckWhole(b.get(), "b", n["b"]);
  // Re-created, it starts over.
  Fill(b.get(), &bb, {"a"}, 2, 4);
  CheckWhole(b.get(), "a", 8);
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
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
    REQUIRE(RawInt(o.path, kRecentCount) == 24);
    REQUIRE(b->Close().ok());
  }
  o.index_merge_rows = 10;
  auto b = OpenBackend(o);
  for (const auto& [c, count] : n) CheckWhole(b.get(), c, count);
  // The count taken at open makes the first Maintain merge.
  RequireMaintain(b.get());
  CHECK(RawInt(o.path, kRecentCount) == 0);
  CHECK(RawInt(o.path, kMergedCount) == 24);
  for (const auto& [c, count] : n) CheckWhole(b.get(), c, count);
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

}  // namespace
}  // namespace convstore::internal
