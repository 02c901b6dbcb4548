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

TEST_CASE("KeysWithEntriesIn leaves out a batch not yet published",
          "[message_overlay]") {
  // Add puts a batch's rows in before it raises top; readers scan ids above
  // top from the file. Entries above top counted here were counted twice.
  MessageOverlay o;
  o.Reset(10, 12,
          std::vector<OverlayRow>{{1, 1, 11, 100, 1, 1, false},
                                  {2, 1, 12, 200, 1, 1, false}});
  // Rows 13 and 14 in, top still 12: the state while Add is part way.
  o.Add(std::vector<OverlayRow>{{1, 2, 13, 300, 1, 1, false},
                                {3, 1, 14, 400, 1, 1, false}},
        /*top=*/12);
  const MessageOverlay::KeysView v = o.KeysWithEntriesIn(10, 14);
  CHECK(v.top == 12);
  size_t counted = 0;
  for (const auto& k : v.keys) counted += static_cast<size_t>(k.summary.count);
  CHECK(counted == 2);  // ids 11 and 12; 13 and 14 are the caller's to scan
  CHECK(v.keys.size() == 2);
}

TEST_CASE("KeysWithEntriesIn sums each key's entries in the id range",
          "[message_overlay]") {
  MessageOverlay o;
  // conv 1: 500 then an older 300; conv 2: 700; conv 3 only below 12.
  // Fields: conv_key, seq, id, created_at_us, tokens_in, tokens_out, system.
  o.Reset(10, 14,
          std::vector<OverlayRow>{{3, 1, 11, 900, 1, 1, false},
                                  {1, 1, 12, 500, 2, 3, false},
                                  {2, 1, 13, 700, 4, 5, true},
                                  {1, 2, 14, 300, 6, 7, true}});
  auto sums = [&](int64_t after, int64_t through) {
    std::vector<MessageOverlay::KeySummary> out =
        o.KeysWithEntriesIn(after, through).keys;
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.conv_key < b.conv_key;
    });
    return out;
  };
  // (conv_key, last_at_us) of each
  auto bounds = [&](int64_t after, int64_t through) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const auto& k : sums(after, through)) {
      out.emplace_back(k.conv_key, k.summary.last_at_us);
    }
    return out;
  };
  using B = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(bounds(10, 14) == B{{1, 500}, {2, 700}, {3, 900}});
  CHECK(bounds(11, 14) == B{{1, 500}, {2, 700}});
  CHECK(bounds(10, 12) == B{{1, 500}, {3, 900}});
  {
    const auto all = sums(10, 14);
    REQUIRE(all.size() == 3);
    const UnmergedSummary& one = all[0].summary;
    CHECK(one.count == 2);
    CHECK(one.tokens_in == 8);
    CHECK(one.tokens_out == 10);
    CHECK(one.first_id == 12);
    CHECK(one.first_at_us == 500);  // the first appended, not the oldest
    CHECK(one.last_at_us == 500);
    CHECK(one.last_seq == 2);
    CHECK(one.first_system_seq == 2);
    CHECK(all[1].summary.first_system_seq == 1);
    CHECK(all[2].summary.first_system_seq == 0);
  }
  o.Add(std::vector<OverlayRow>{{2, 2, 15, 650}, {1, 3, 16, 800}}, 16);
  CHECK(bounds(10, 16) == B{{1, 800}, {2, 700}, {3, 900}});
  // A partial drop leaves the sums of what is left.
  o.DropThrough(13);
  CHECK(bounds(13, 16) == B{{1, 800}, {2, 650}});
  CHECK(sums(13, 16)[0].summary.count == 2);
  o.DropThrough(16);
  o.Add(std::vector<OverlayRow>{{2, 3, 17, 100}}, 17);
  CHECK(bounds(16, 17) == B{{2, 100}});
}

TEST_CASE("EntriesIn groups the id range by conversation in key order",
          "[message_overlay]") {
  MessageOverlay o;
  // Fields: conv_key, seq, id. conv 9 only below 12, conv 4 only above 15.
  o.Reset(10, 16,
          std::vector<OverlayRow>{{9, 1, 11},
                                  {7, 5, 12},
                                  {2, 1, 13},
                                  {7, 6, 14},
                                  {2, 2, 15},
                                  {4, 1, 16}});
  // (conv_key, [(seq, id)...]) per group.
  using G =
      std::vector<std::pair<int64_t, std::vector<std::pair<int64_t, int64_t>>>>;
  auto groups = [&](int64_t after, int64_t through,
                    const absl::flat_hash_set<int64_t>& skip = {}) {
    MessageOverlay::Grouped g;
    g.entries.push_back({});  // replaced, not added to
    o.EntriesIn(after, through, skip, &g);
    CHECK(g.base == 10);
    CHECK(g.top == 16);
    REQUIRE(g.starts.size() == g.conv_keys.size() + 1);
    CHECK(g.starts.front() == 0);
    CHECK(g.starts.back() == g.entries.size());
    G out;
    for (size_t i = 0; i < g.conv_keys.size(); ++i) {
      auto& [key, pairs] = out.emplace_back();
      key = g.conv_keys[i];
      for (size_t j = g.starts[i]; j < g.starts[i + 1]; ++j) {
        pairs.emplace_back(g.entries[j].seq, g.entries[j].id);
      }
    }
    return out;
  };
  CHECK(groups(10, 16) == G{{2, {{1, 13}, {2, 15}}},
                            {4, {{1, 16}}},
                            {7, {{5, 12}, {6, 14}}},
                            {9, {{1, 11}}}});
  // Conversations with no entry in the range have no group.
  CHECK(groups(11, 15) == G{{2, {{1, 13}, {2, 15}}}, {7, {{5, 12}, {6, 14}}}});
  CHECK(groups(12, 13) == G{{2, {{1, 13}}}});
  CHECK(groups(16, 16).empty());
  // Skipped conversations have no group.
  CHECK(groups(10, 16, {2, 9}) == G{{4, {{1, 16}}}, {7, {{5, 12}, {6, 14}}}});
}

TEST_CASE("UnmergedSummary parts merge in any order", "[message_overlay]") {
  // A conversation's entries 1..4 (id = seq + 100), seq 3 a system message.
  std::vector<OverlayEntry> e;
  for (int64_t seq = 1; seq <= 4; ++seq) {
    e.push_back({seq, seq + 100, 1000 - seq * 10, seq, 2 * seq, seq == 3});
  }
  UnmergedSummary forward;
  for (const OverlayEntry& x : e) forward.Add(x);
  UnmergedSummary low, high;
  high.Add(e[3]);
  high.Add(e[2]);
  low.Add(e[1]);
  low.Add(e[0]);
  high.Merge(low);
  for (const UnmergedSummary& sum : {forward, high}) {
    CHECK(sum.count == 4);
    CHECK(sum.tokens_in == 10);
    CHECK(sum.tokens_out == 20);
    CHECK(sum.first_at_us == 990);  // of seq 1, the lowest id
    CHECK(sum.last_at_us == 990);   // the largest created_at_us
    CHECK(sum.last_seq == 4);
    CHECK(sum.first_system_seq == 3);
  }
  // Added to a row: the row's first_at_us and pinned system message win
  // once set; last_at_us and last_seq take the larger.
  ConversationInfo info;
  info.message_count = 5;
  info.first_at_us = 7;
  info.last_at_us = 2000;
  info.last_seq = 0;
  int64_t pinned = 0;
  forward.AddTo(&info, &pinned);
  CHECK(info.message_count == 9);
  CHECK(info.first_at_us == 7);
  CHECK(info.last_at_us == 2000);
  CHECK(info.last_seq == 4);
  CHECK(pinned == 3);
  int64_t already = 1;
  forward.AddTo(&info, &already);
  CHECK(already == 1);
  // Nothing to add changes nothing.
  ConversationInfo empty;
  int64_t none = 0;
  UnmergedSummary().AddTo(&empty, &none);
  CHECK(empty.first_at_us == 0);
  CHECK(none == 0);
}

}  // namespace
}  // namespace convstore::internal
