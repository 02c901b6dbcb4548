// Copyright 2026 The convstore Authors.
//
// Erasure: what DeleteConversation, PruneMessages and Cache::Delete remove
// must leave the files, not only the tables. SQLite frees a deleted row's
// cell (and its overflow pages) but leaves the bytes where they were unless
// secure_delete is on, and the WAL keeps earlier frames until they are
// overwritten or the file is truncated. The store sets secure_delete on
// every connection that writes, and Close truncates the WAL, so once the
// store is closed no byte of erased content is left in the directory
// (docs/durability.md, "Erasure"). While the store is open, copies may
// remain in the WAL; these tests check the closed state only.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "clock.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::Msg;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

constexpr int64_t kDayUs = 86'400'000'000;

// Every file in `dir` whose bytes contain `needle`.
std::vector<std::string> FilesContaining(const TempDir& dir,
                                         const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) {
      found.push_back(entry.path().filename().string());
    }
  }
  return found;
}

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

}  // namespace
}  // namespace convstore
