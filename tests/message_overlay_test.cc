// Copyright 2026 The convstore Authors.
//
// MessageOverlay on its own: coverage (base, top], adding batches, dropping
// merged entries, and what a reader's copy holds. The reads that combine it
// with SQLite are in message_index_test.cc.

#include "sqlite/message_overlay.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace convstore::internal {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

std::vector<int64_t> SeqsOf(const MessageOverlay::View& v) {
  std::vector<int64_t> out;
  for (const OverlayEntry& e : v.entries) out.push_back(e.seq);
  return out;
}

TEST_CASE("the overlay holds rows above its base, per conversation",
          "[message_overlay]") {
  MessageOverlay o;
  const std::vector<OverlayRow> rows = {
      {1, 1, 11}, {2, 1, 12}, {1, 2, 13}, {1, 3, 14}};
  o.Reset(10, 14, rows);
  CHECK(o.base() == 10);
  CHECK(o.top() == 14);
  CHECK(o.size() == 4);
  CHECK(SeqsOf(o.Get(1, 0, kMax)) == std::vector<int64_t>{1, 2, 3});
  CHECK(SeqsOf(o.Get(1, 1, 3)) == std::vector<int64_t>{2});
  CHECK(SeqsOf(o.Get(2, 0, kMax)) == std::vector<int64_t>{1});
  CHECK(o.Get(3, 0, kMax).entries.empty());
  CHECK(o.EntriesOf(1).size() == 3);
}

TEST_CASE("Add raises top and skips rows it already holds",
          "[message_overlay]") {
  MessageOverlay o;
  o.Reset(0, 0, {});
  std::vector<OverlayRow> batch;
  for (int64_t i = 1; i <= 1000; ++i) batch.push_back({i % 7, i, i});
  o.Add(batch, 1000);
  CHECK(o.top() == 1000);
  CHECK(o.size() == 1000);
  // The same rows again (a re-sync that overlaps) change nothing.
  o.Add(batch, 1000);
  CHECK(o.size() == 1000);
  // A batch of another writer: ids above, top with them.
  o.Add(std::vector<OverlayRow>{{3, 2000, 1001}}, 1001);
  CHECK(o.top() == 1001);
  CHECK(o.Get(3, 1999, kMax).entries.size() == 1);
}

TEST_CASE("DropThrough removes merged entries and moves the base",
          "[message_overlay]") {
  MessageOverlay o;
  const std::vector<OverlayRow> rows = {
      {1, 1, 1}, {2, 1, 2}, {1, 2, 3}, {2, 2, 4}, {1, 3, 5}};
  o.Reset(0, 5, rows);
  SECTION("part of it") {
    o.DropThrough(3);
    CHECK(o.base() == 3);
    CHECK(o.top() == 5);
    CHECK(o.size() == 2);
    CHECK(SeqsOf(o.Get(1, 0, kMax)) == std::vector<int64_t>{3});
    CHECK(SeqsOf(o.Get(2, 0, kMax)) == std::vector<int64_t>{2});
  }
  SECTION("all of it, and beyond what it held") {
    o.DropThrough(9);  // another process wrote and merged ids 6..9
    CHECK(o.base() == 9);
    CHECK(o.top() == 9);
    CHECK(o.size() == 0);
    CHECK(o.Get(1, 0, kMax).entries.empty());
  }
  SECTION("an older watermark changes nothing") {
    o.DropThrough(0);
    CHECK(o.size() == 5);
    CHECK(o.base() == 0);
  }
  // The view carries the coverage the reader must check against.
  MessageOverlay::View v = o.Get(1, 0, kMax);
  CHECK(v.base == o.base());
  CHECK(v.top == o.top());
}

TEST_CASE("KeysWithEntriesIn bounds each key's newest created_at_us",
          "[message_overlay]") {
  MessageOverlay o;
  // conv 1: 500 then an older 300; conv 2: 700; conv 3 only below 12.
  o.Reset(
      10, 14,
      std::vector<OverlayRow>{
          {3, 1, 11, 900}, {1, 1, 12, 500}, {2, 1, 13, 700}, {1, 2, 14, 300}});
  auto bounds = [&](int64_t after, int64_t through) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const MessageOverlay::KeyAt& k :
         o.KeysWithEntriesIn(after, through).keys) {
      out.emplace_back(k.conv_key, k.max_created_at_us);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  using B = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(bounds(10, 14) == B{{1, 500}, {2, 700}, {3, 900}});
  CHECK(bounds(11, 14) == B{{1, 500}, {2, 700}});
  o.Add(std::vector<OverlayRow>{{2, 2, 15, 650}, {1, 3, 16, 800}}, 16);
  CHECK(bounds(10, 16) == B{{1, 800}, {2, 700}, {3, 900}});
  // A partial drop keeps a key's bound (an upper bound is enough) until
  // the key has no entries left.
  o.DropThrough(13);
  CHECK(bounds(13, 16) == B{{1, 800}, {2, 700}});
  o.DropThrough(16);
  o.Add(std::vector<OverlayRow>{{2, 3, 17, 100}}, 17);
  CHECK(bounds(16, 17) == B{{2, 100}});
}

}  // namespace
}  // namespace convstore::internal
