// Copyright 2026 The convstore Authors.
//
// What a merge indexes (SqliteBackend::MergeInput): the overlay's entries
// while every one of them names a row that still exists, less deleted
// conversations; the rows read back from `messages` after a purge or
// another connection's commit, which may have removed rows the overlay
// still names (docs/architecture.md, "Unmerged messages"; measured in
// docs/benchmarks.md, "The merge reads the overlay").

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "backend_testutil.h"
#include "sqlite_testutil.h"

namespace convstore::internal {
namespace {

using namespace backend_test;  // NOLINT(build/namespaces)

constexpr const char* kIndexedCount =
    "SELECT (SELECT coalesce(sum(n), 0) FROM message_chunks) +"
    " (SELECT coalesce(sum(n), 0) FROM message_tails)";

// Index pairs (in message_chunks and message_tails) of conversation `conv`.
int64_t IndexedOf(const std::string& path, const std::string& conv) {
  const std::string key =
      "(SELECT conv_key FROM conversations WHERE conversation_id = '" + conv +
      "')";
  return RawInt(path,
                "SELECT (SELECT coalesce(sum(n), 0) FROM message_chunks WHERE"
                " conv_key = " +
                    key +
                    ") + (SELECT coalesce(sum(n), 0) FROM message_tails WHERE"
                    " conv_key = " +
                    key + ")");
}

// Options whose Maintain merges whatever is unmerged.
Options MergeAll(const TempDir& dir) {
  Options o = BackendOptions(dir);
  o.index_merge_rows = 1;
  return o;
}

// Appends seqs first..last of `conv` (content "conv#seq") to the batch.
void AppendSeqs(BatchBuilder* bb, const std::string& conv, int64_t first,
                int64_t last) {
  for (int64_t seq = first; seq <= last; ++seq) {
    bb->Append(conv, Make(seq, Role::kUser, conv + "#" + std::to_string(seq),
                          1000 + seq));
  }
}

// `conv` reads back as exactly `seqs`, each with its own content.
void CheckSeqs(StorageBackend* b, const std::string& conv,
               const std::vector<int64_t>& seqs) {
  INFO(conv);
  StoredConversation got = Load(b, conv);
  REQUIRE(got.exists);
  CHECK(Seqs(got.messages) == seqs);
  for (const MessagePtr& m : got.messages) {
    CHECK(m->content == conv + "#" + std::to_string(m->seq));
  }
}

TEST_CASE("a merge indexes the overlay's entries without reading them back",
          "[merge_input]") {
  TempDir dir;
  Options o = MergeAll(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  // Interleaved over three batches, so each conversation's rows are apart.
  for (int64_t first = 1; first <= 7; first += 3) {
    for (const char* conv : {"a", "b", "c"}) {
      AppendSeqs(&bb, conv, first, first + 2);
    }
    RequireCommit(&bb, b.get());
  }
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 0);
  CHECK(RawInt(o.path, kIndexedCount) == 27);
  for (const char* conv : {"a", "b", "c"}) {
    CHECK(IndexedOf(o.path, conv) == 9);
    CheckSeqs(b.get(), conv, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
  // Reopened, the overlay is read from the file and still exact.
  REQUIRE(b->Close().ok());
  b = OpenBackend(o);
  AppendSeqs(&bb, "a", 10, 12);
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 0);
  CHECK(IndexedOf(o.path, "a") == 12);
  CheckSeqs(b.get(), "a", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("a conversation deleted before the merge is left out of the index",
          "[merge_input]") {
  TempDir dir;
  Options o = MergeAll(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  AppendSeqs(&bb, "gone", 1, 4);
  AppendSeqs(&bb, "kept", 1, 4);
  RequireCommit(&bb, b.get());
  const std::string gone_key = std::to_string(
      RawInt(o.path,
             "SELECT conv_key FROM conversations WHERE conversation_id ="
             " 'gone'"));
  bb.Delete("gone");
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 0);
  // The overlay still had "gone"'s four entries; none was indexed.
  CHECK(RawInt(o.path, kIndexedCount) == 4);
  for (const char* table : {"message_chunks", "message_tails"}) {
    CHECK(RawInt(o.path, std::string("SELECT count(*) FROM ") + table +
                             " WHERE conv_key = " + gone_key) == 0);
  }
  CHECK_FALSE(Load(b.get(), "gone").exists);
  CheckSeqs(b.get(), "kept", {1, 2, 3, 4});
  // Re-created (a new key), it is indexed again.
  AppendSeqs(&bb, "gone", 1, 2);
  RequireCommit(&bb, b.get());
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 0);
  CHECK(IndexedOf(o.path, "gone") == 2);
  CheckSeqs(b.get(), "gone", {1, 2});
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("a purge before the merge makes it read the rows back",
          "[merge_input]") {
  TempDir dir;
  Options o = MergeAll(dir);
  auto b = OpenBackend(o);
  BatchBuilder bb;
  AppendSeqs(&bb, "p", 1, 6);
  AppendSeqs(&bb, "q", 1, 3);
  RequireCommit(&bb, b.get());
  std::vector<WriteOp> purge{PurgeOp(o.path, "p", 2, bb.last_lsn() + 1)};
  Status s = b->Apply(purge);
  INFO(s.ToString());
  REQUIRE(s.ok());
  BatchBuilder next(bb.last_lsn() + 2);
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 1);
  // Seq 2's entry is still in the overlay, but its row is gone.
  CHECK(IndexedOf(o.path, "p") == 5);
  CHECK(RawInt(o.path, kIndexedCount) == 8);
  CheckSeqs(b.get(), "p", {1, 3, 4, 5, 6});
  // That merge emptied the overlay: the next one takes it as it is.
  AppendSeqs(&next, "p", 7, 8);
  RequireCommit(&next, b.get());
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 1);
  CheckSeqs(b.get(), "p", {1, 3, 4, 5, 6, 7, 8});
  CheckSeqs(b.get(), "q", {1, 2, 3});
  // Purging a merged row leaves the overlay exact.
  std::vector<WriteOp> merged_purge{
      PurgeOp(o.path, "q", 1, next.last_lsn() + 1)};
  s = b->Apply(merged_purge);
  INFO(s.ToString());
  REQUIRE(s.ok());
  BatchBuilder last(next.last_lsn() + 2);
  AppendSeqs(&last, "q", 4, 4);
  RequireCommit(&last, b.get());
  RequireMaintain(b.get());
  CHECK(b->merges_rescanned() == 1);
  CheckSeqs(b.get(), "q", {2, 3, 4});
  REQUIRE(b->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

TEST_CASE("another connection's commit makes the next merge read rows back",
          "[merge_input]") {
  // Two backends on one file stand for two processes. "two" purges a row
  // "one" appended and has not merged: nothing tells "one" which, so its
  // merge reads the rows back.
  TempDir dir;
  Options o = MergeAll(dir);
  auto one = OpenBackend(o);
  auto two = OpenBackend(o);
  BatchBuilder bb1;
  AppendSeqs(&bb1, "x", 1, 4);
  RequireCommit(&bb1, one.get());
  std::vector<WriteOp> purge{PurgeOp(o.path, "x", 1, 1000)};
  Status s = two->Apply(purge);
  INFO(s.ToString());
  REQUIRE(s.ok());
  RequireMaintain(one.get());
  CHECK(one->merges_rescanned() == 1);
  CHECK(IndexedOf(o.path, "x") == 3);
  for (StorageBackend* b : {one.get(), two.get()}) CheckSeqs(b, "x", {2, 3, 4});
  AppendSeqs(&bb1, "x", 5, 6);
  RequireCommit(&bb1, one.get());
  RequireMaintain(one.get());
  CHECK(one->merges_rescanned() == 1);
  CheckSeqs(one.get(), "x", {2, 3, 4, 5, 6});
  REQUIRE(one->Close().ok());
  REQUIRE(two->Close().ok());
  CHECK(IntegrityCheck(o.path) == "ok");
}

}  // namespace
}  // namespace convstore::internal
