// Copyright 2026 The convstore Authors.
//
// Tests of src/sqlite/message_chunks.h: the packed index's encoding, the
// reads (newest first, up to a seq, one seq), Add in and out of seq order,
// Remove, and damaged rows refused with Corruption. Store-level reads
// through it are in message_index_test.cc; the v12 migration that fills it
// is in migrations_test.cc.

#include "sqlite/message_chunks.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sqlite/migrations.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"

namespace convstore::internal {
namespace {

using test::TempDir;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// seqs first..last, message id 1000 + seq * 7 (not adjacent, so the id
// deltas are not all 1).
std::vector<IndexEntry> Run(int64_t first, int64_t last) {
  std::vector<IndexEntry> v;
  for (int64_t s = first; s <= last; ++s) v.push_back({s, 1000 + s * 7});
  return v;
}

std::vector<int64_t> Seqs(const std::vector<IndexEntry>& v) {
  std::vector<int64_t> out;
  for (const IndexEntry& e : v) out.push_back(e.seq);
  return out;
}

void RequireOk(const Status& s) {
  INFO(s.ToString());
  REQUIRE(s.ok());
}

// A migrated file with the chunk table, a writer MessageChunks on it and a
// transaction open.
struct Fixture {
  TempDir dir;
  std::unique_ptr<Db> db;
  MessageChunks chunks;

  Fixture() {
    RequireOk(Db::Open(dir.File("c.db"), /*create=*/true, &db));
    RequireOk(Migrate(db.get(), LatestSchemaVersion()));
    RequireOk(chunks.Prepare(db.get(), /*writer=*/true));
    RequireOk(db->Exec("BEGIN"));
  }
  // message_chunks rows of the conversation.
  int64_t Rows(int64_t key) {
    int64_t n = -1;
    RequireOk(
        db->QueryInt("SELECT count(*) FROM message_chunks WHERE conv_key = " +
                         std::to_string(key),
                     &n));
    return n;
  }
  // Pairs in the conversation's tail (0: none).
  int64_t TailSize(int64_t key) {
    int64_t n = -1;
    RequireOk(db->QueryInt(
        "SELECT coalesce(sum(n), 0) FROM message_tails WHERE conv_key = " +
            std::to_string(key),
        &n));
    return n;
  }
  std::vector<IndexEntry> All(int64_t key) {
    std::vector<IndexEntry> v;
    RequireOk(chunks.UpTo(key, kMax, &v));
    return v;
  }
  // Rows of at most kMaxChunkEntries pairs, each above the one before,
  // and a tail of fewer than RunLength(key) above them all.
  void CheckRows(int64_t key) {
    Stmt st;
    RequireOk(db->Prepare(
        "SELECT first_seq, n, entries, 0 FROM message_chunks WHERE conv_key "
        "= " +
            std::to_string(key) +
            " UNION ALL SELECT first_seq, n, entries, 1 FROM message_tails"
            " WHERE conv_key = " +
            std::to_string(key) + " ORDER BY 4, 1",
        &st));
    Status s;
    int64_t last = 0;
    while (st.Step(&s)) {
      std::vector<IndexEntry> run;
      RequireOk(DecodeChunk(key, st.Int(0), st.Int(1), st.BlobView(2), &run));
      CHECK(run.size() <=
            (st.Int(3) == 1 ? RunLength(key) - 1 : kMaxChunkEntries));
      CHECK(run.front().seq > last);
      last = run.back().seq;
    }
    RequireOk(s);
  }
  // Every pair is where Find looks for it.
  void CheckFindable(int64_t key) {
    for (const IndexEntry& e : All(key)) {
      int64_t id = 0;
      RequireOk(chunks.Find(key, e.seq, &id));
      CHECK(id == e.id);
    }
  }
};

TEST_CASE("a run encodes and decodes to the same pairs", "[message_chunks]") {
  std::vector<IndexEntry> run = {{5, 90}, {6, 20000}, {9, 3}, {400, 1LL << 40}};
  std::string bytes;
  EncodeChunk(run, &bytes);
  std::vector<IndexEntry> back;
  RequireOk(DecodeChunk(1, 5, 4, bytes, &back));
  REQUIRE(back.size() == 4);
  for (size_t i = 0; i < run.size(); ++i) {
    CHECK(back[i].seq == run[i].seq);
    CHECK(back[i].id == run[i].id);
  }
  // Interleaved conversations: small seq steps, id steps of about 10,000.
  std::string dense;
  std::vector<IndexEntry> typical;
  for (int64_t i = 0; i < 128; ++i)
    typical.push_back({i + 1, 5'000'000 + i * 10'000});
  EncodeChunk(typical, &dense);
  CHECK(dense.size() <= 128 * 4 + 4);
}

TEST_CASE("damaged runs are refused with Corruption", "[message_chunks]") {
  std::string bytes;
  EncodeChunk(Run(1, 3), &bytes);
  std::vector<IndexEntry> out;
  RequireOk(DecodeChunk(1, 1, 3, bytes, &out));
  // Wrong count, truncated, trailing bytes, a count no row can have.
  CHECK(DecodeChunk(1, 1, 4, bytes, &out).IsCorruption());
  CHECK(DecodeChunk(1, 1, 2, bytes, &out).IsCorruption());
  CHECK(DecodeChunk(1, 1, 3, bytes.substr(0, bytes.size() - 1), &out)
            .IsCorruption());
  CHECK(DecodeChunk(1, 1, 0, "", &out).IsCorruption());
  CHECK(DecodeChunk(1, 1, int64_t{1} << 40, bytes, &out).IsCorruption());
  // A seq that does not rise, an id that is not positive.
  std::string flat;
  EncodeChunk(std::vector<IndexEntry>{{1, 10}}, &flat);
  flat += std::string("\x00\x02", 2);  // seq +0, id +1
  CHECK(DecodeChunk(1, 1, 2, flat, &out).IsCorruption());
  std::string neg("\x00\x01", 2);  // id -1
  CHECK(DecodeChunk(1, 1, 1, neg, &out).IsCorruption());
  std::string endless(12, '\xff');
  CHECK(DecodeChunk(1, 1, 1, endless, &out).IsCorruption());
  // Ten bytes whose last carries bits beyond the 64th.
  std::string overlong(9, '\xff');
  overlong += '\x7f';
  overlong += '\x02';
  CHECK(DecodeChunk(1, 1, 1, overlong, &out).IsCorruption());
  // A negative first_seq (only a damaged file has one).
  CHECK(DecodeChunk(1, -5, 3, bytes, &out).IsCorruption());
  CHECK(DecodeChunk(1, std::numeric_limits<int64_t>::min(), 3, bytes, &out)
            .IsCorruption());
}

TEST_CASE("RunLength spreads conversations over 64 to 127 pairs",
          "[message_chunks]") {
  CHECK(RunLength(0) == 64);
  CHECK(RunLength(1) == 65);
  CHECK(RunLength(63) == 127);
  CHECK(RunLength(64) == 64);
  CHECK(RunLength(-1) == 127);  // never a key, but no overflow
}

TEST_CASE("Add in seq order fills the tail and moves full runs to rows",
          "[message_chunks]") {
  Fixture f;
  const int64_t L = static_cast<int64_t>(RunLength(7));
  RequireOk(f.chunks.Add(7, Run(1, 2 * L + 44)));
  CHECK(f.Rows(7) == 2);
  CHECK(f.TailSize(7) == 44);
  RequireOk(f.chunks.Add(7, Run(2 * L + 45, 2 * L + 49)));
  CHECK(f.Rows(7) == 2);
  CHECK(f.TailSize(7) == 49);
  CHECK(Seqs(f.All(7)) == Seqs(Run(1, 2 * L + 49)));
  f.CheckRows(7);
  // The tail fills: a full run moves to message_chunks, the rest stays.
  RequireOk(f.chunks.Add(7, Run(2 * L + 50, 3 * L + 16)));
  CHECK(f.Rows(7) == 3);
  CHECK(f.TailSize(7) == 16);
  // Exactly full: no tail is left.
  RequireOk(f.chunks.Add(7, Run(3 * L + 17, 4 * L)));
  CHECK(f.Rows(7) == 4);
  CHECK(f.TailSize(7) == 0);
  RequireOk(f.chunks.Add(7, Run(4 * L + 1, 4 * L + 1)));
  CHECK(f.TailSize(7) == 1);
  f.CheckRows(7);
  CHECK(Seqs(f.All(7)) == Seqs(Run(1, 4 * L + 1)));
  CHECK(f.All(8).empty());
  f.CheckFindable(7);
  int64_t id = -1;
  RequireOk(f.chunks.Find(7, 4 * L + 2, &id));
  CHECK(id == 0);
  RequireOk(f.chunks.Find(7, 0, &id));
  CHECK(id == 0);
  RequireOk(f.chunks.Find(7, kMax, &id));
  CHECK(id == 0);
  // Removing the tail's only pair leaves no tail; the next Add starts one
  // above the newest row.
  const std::vector<int64_t> gone = {2 * L + 50, 3 * L + 17, 4 * L, 4 * L + 1};
  RequireOk(f.chunks.Remove(7, gone));
  CHECK(f.TailSize(7) == 0);
  RequireOk(f.chunks.Add(7, Run(4 * L + 2, 4 * L + 2)));
  std::vector<IndexEntry> want = Run(1, 4 * L + 2);
  std::erase_if(want, [&](const IndexEntry& e) {
    return std::find(gone.begin(), gone.end(), e.seq) != gone.end();
  });
  CHECK(Seqs(f.All(7)) == Seqs(want));
  CHECK(f.Rows(7) == 4);
  CHECK(f.TailSize(7) == 1);
  f.CheckRows(7);
}

TEST_CASE("Newest reads backwards within bounds and stops at the limit",
          "[message_chunks]") {
  Fixture f;
  const int64_t L = static_cast<int64_t>(RunLength(1));
  RequireOk(f.chunks.Add(1, Run(1, 300)));  // rows at 1, L+1, ..., a tail
  std::vector<IndexEntry> v;
  RequireOk(f.chunks.Newest(1, 0, kMax, 20, &v));
  CHECK(Seqs(v).front() == 300);
  CHECK(Seqs(v).back() == 281);
  CHECK(v.size() == 20);
  CHECK(v[0].id == 1000 + 300 * 7);
  // Across row boundaries.
  v.clear();
  RequireOk(f.chunks.Newest(1, 100, 260, 0, &v));
  REQUIRE(v.size() == 159);
  CHECK(v.front().seq == 259);
  CHECK(v.back().seq == 101);
  v.clear();
  RequireOk(f.chunks.Newest(1, L, L + 1, 0, &v));
  CHECK(v.empty());
  v.clear();
  RequireOk(f.chunks.Newest(1, L - 1, L + 2, 5, &v));
  CHECK(Seqs(v) == std::vector<int64_t>{L + 1, L});
  // Across the boundary between the rows and the tail.
  const int64_t tail = 300 / L * L + 1;
  v.clear();
  RequireOk(f.chunks.Newest(1, tail - 3, tail + 2, 0, &v));
  CHECK(Seqs(v) == std::vector<int64_t>{tail + 1, tail, tail - 1, tail - 2});
  // UpTo: oldest first.
  v.clear();
  RequireOk(f.chunks.UpTo(1, 130, &v));
  CHECK(Seqs(v) == Seqs(Run(1, 130)));
}

TEST_CASE("Add below indexed seqs rewrites the rows it overlaps",
          "[message_chunks]") {
  Fixture f;
  const int64_t L = static_cast<int64_t>(RunLength(3));
  // Seqs 1-10 and 20-(2L+29) indexed (rows and a tail); 11-19 arrive
  // later (another process's appends interleaved with ours).
  RequireOk(f.chunks.Add(3, Run(1, 10)));
  RequireOk(f.chunks.Add(3, Run(20, 2 * L + 29)));
  REQUIRE(f.Rows(3) == 2);
  RequireOk(f.chunks.Add(3, Run(11, 19)));
  CHECK(Seqs(f.All(3)) == Seqs(Run(1, 2 * L + 29)));
  CHECK(f.Rows(3) == 2);
  CHECK(f.TailSize(3) == 29);
  f.CheckRows(3);
  f.CheckFindable(3);
  // A seq already indexed is refused, in a row or in the tail, and so is
  // one repeated in the input; nothing is written.
  CHECK(f.chunks.Add(3, Run(15, 15)).IsInvalidArgument());
  CHECK(f.chunks.Add(3, Run(2 * L + 29, 2 * L + 30)).IsInvalidArgument());
  CHECK(f.chunks.Add(3, std::vector<IndexEntry>{{900, 1}, {900, 2}})
            .IsInvalidArgument());
  CHECK(f.chunks.Add(3, std::vector<IndexEntry>{{901, 1}, {900, 2}})
            .IsInvalidArgument());
  CHECK(Seqs(f.All(3)) == Seqs(Run(1, 2 * L + 29)));
  RequireOk(f.chunks.Add(3, Run(2 * L + 30, 2 * L + 31)));
  CHECK(Seqs(f.All(3)) == Seqs(Run(1, 2 * L + 31)));
  f.CheckRows(3);
  // Newest stops early only because runs do not overlap: check it agrees
  // with the whole list.
  std::vector<IndexEntry> v;
  RequireOk(f.chunks.Newest(3, 0, kMax, 0, &v));
  REQUIRE(v.size() == static_cast<size_t>(2 * L + 31));
  CHECK(v.front().seq == 2 * L + 31);
  CHECK(v.back().seq == 1);
}

TEST_CASE("Add below indexed seqs with rows and no tail, or into the gap",
          "[message_chunks]") {
  Fixture f;
  const int64_t L = static_cast<int64_t>(RunLength(9));
  // Seqs 1 to L+1 but 10: exactly one full row and no tail, until seq 10
  // arrives late.
  std::vector<IndexEntry> most = Run(1, L + 1);
  std::erase_if(most, [](const IndexEntry& e) { return e.seq == 10; });
  RequireOk(f.chunks.Add(9, most));
  REQUIRE(f.Rows(9) == 1);
  REQUIRE(f.TailSize(9) == 0);
  RequireOk(f.chunks.Add(9, Run(10, 10)));
  CHECK(Seqs(f.All(9)) == Seqs(Run(1, L + 1)));
  CHECK(f.Rows(9) == 1);
  CHECK(f.TailSize(9) == 1);
  f.CheckRows(9);
  // Into the gap between the newest row and the tail's next pairs: the row
  // is kept, only the tail is rewritten.
  RequireOk(f.chunks.Add(9, Run(L + 5, L + 8)));
  RequireOk(f.chunks.Add(9, Run(L + 2, L + 4)));
  CHECK(Seqs(f.All(9)) == Seqs(Run(1, L + 8)));
  CHECK(f.Rows(9) == 1);
  CHECK(f.TailSize(9) == 8);
  f.CheckRows(9);
  f.CheckFindable(9);
}

TEST_CASE("version 12's rows of 128 are read and rewritten as runs",
          "[message_chunks]") {
  Fixture f;
  // Rows as migration 12 wrote them: 128 pairs each, no tail.
  RequireOk(
      f.db->Exec("CREATE TABLE message_index (conv_key INTEGER NOT NULL,"
                 " seq INTEGER NOT NULL, message_id INTEGER NOT NULL,"
                 " PRIMARY KEY (conv_key, seq)) WITHOUT ROWID"));
  std::string sql;
  for (const IndexEntry& e : Run(1, 300)) {
    if (e.seq == 200) continue;
    sql += "INSERT INTO message_index VALUES (11, " + std::to_string(e.seq) +
           ", " + std::to_string(e.id) + ");";
  }
  RequireOk(f.db->Exec(sql));
  RequireOk(PackMessageIndex(f.db.get()));
  REQUIRE(f.Rows(11) == 3);  // 128, 128, 43
  REQUIRE(f.TailSize(11) == 0);
  std::vector<IndexEntry> v;
  RequireOk(f.chunks.Newest(11, 0, kMax, 3, &v));
  CHECK(Seqs(v) == std::vector<int64_t>{300, 299, 298});
  // 200 lands in the second row: it and the third are rewritten as runs
  // of RunLength(11) and a tail.
  RequireOk(f.chunks.Add(11, Run(200, 200)));
  CHECK(Seqs(f.All(11)) == Seqs(Run(1, 300)));
  const int64_t L = static_cast<int64_t>(RunLength(11));
  CHECK(f.Rows(11) == 1 + (300 - 128) / L);
  CHECK(f.TailSize(11) == (300 - 128) % L);
  f.CheckRows(11);
  f.CheckFindable(11);
  // Above them all, a tail starts.
  RequireOk(f.chunks.Add(11, Run(301, 301)));
  CHECK(f.All(11).back().seq == 301);
}

TEST_CASE("reads at the boundary between the rows and the tail",
          "[message_chunks]") {
  Fixture f;
  const int64_t L = static_cast<int64_t>(RunLength(12));
  RequireOk(f.chunks.Add(12, Run(1, L + 5)));  // a row 1-L, a tail from L+1
  std::vector<IndexEntry> v;
  RequireOk(f.chunks.UpTo(12, L + 1, &v));
  CHECK(Seqs(v) == Seqs(Run(1, L + 1)));
  v.clear();
  RequireOk(f.chunks.UpTo(12, L, &v));
  CHECK(Seqs(v) == Seqs(Run(1, L)));
  // kMax in a Remove is ignored, with a tail and without one.
  RequireOk(f.chunks.Remove(12, {kMax}));
  CHECK(f.All(12).size() == static_cast<size_t>(L + 5));
  // The tail's first two pairs go: it then starts at L+3.
  RequireOk(f.chunks.Remove(12, {L + 1, L + 2}));
  CHECK(f.TailSize(12) == 3);
  int64_t first = 0;
  RequireOk(f.db->QueryInt(
      "SELECT first_seq FROM message_tails WHERE conv_key = 12", &first));
  CHECK(first == L + 3);
  f.CheckRows(12);
  f.CheckFindable(12);
  int64_t id = -1;
  RequireOk(f.chunks.Find(12, L + 1, &id));
  CHECK(id == 0);
  RequireOk(f.chunks.Add(12, Run(L + 6, L + 6)));
  std::vector<IndexEntry> want = Run(1, L + 6);
  std::erase_if(want, [&](const IndexEntry& e) {
    return e.seq == L + 1 || e.seq == L + 2;
  });
  CHECK(Seqs(f.All(12)) == Seqs(want));
  RequireOk(f.chunks.Remove(12, {L + 3, L + 4, L + 5, L + 6}));
  CHECK(f.TailSize(12) == 0);
  RequireOk(f.chunks.Remove(12, {kMax}));
  CHECK(Seqs(f.All(12)) == Seqs(Run(1, L)));
}

TEST_CASE("Add into the middle of full rows rewrites them in order",
          "[message_chunks]") {
  Fixture f;
  std::vector<IndexEntry> gappy;
  for (const IndexEntry& e : Run(1, 400)) {
    if (e.seq != 150 && e.seq != 390) gappy.push_back(e);
  }
  REQUIRE(RunLength(5) == 69);
  RequireOk(f.chunks.Add(5, gappy));  // 398 pairs: 5 rows of 69, 53 more
  CHECK(f.Rows(5) == 5);
  CHECK(f.TailSize(5) == 53);
  RequireOk(f.chunks.Add(5, std::vector<IndexEntry>{{150, 1000 + 150 * 7},
                                                    {390, 1000 + 390 * 7}}));
  CHECK(Seqs(f.All(5)) == Seqs(Run(1, 400)));
  // Rows 1-69 and 70-138 are kept; from 139 on all is written again.
  CHECK(f.Rows(5) == 5);
  CHECK(f.TailSize(5) == 55);
  f.CheckRows(5);
  f.CheckFindable(5);
  std::vector<IndexEntry> v;
  RequireOk(f.chunks.Newest(5, 140, 160, 0, &v));
  CHECK(v.size() == 19);
  CHECK(v[9].seq == 150);
}

TEST_CASE("Rebuild replaces damaged rows with the merged messages' pairs",
          "[message_chunks]") {
  Fixture f;
  std::string sql;
  for (int64_t seq = 1; seq <= 200; ++seq) {
    const std::string id = std::to_string(1000 + seq * 7);
    sql +=
        "INSERT INTO messages(id, conv_key, seq, lsn, role, content,"
        " tokens_in, tokens_out, created_at_us) VALUES (" +
        id + ", 6, " + std::to_string(seq) + ", " + id + ", 1, 'm', 0, 0, 1);";
  }
  RequireOk(f.db->Exec(sql));
  RequireOk(f.chunks.Add(6, Run(1, 150)));
  RequireOk(f.db->Exec("UPDATE message_chunks SET n = 3 WHERE conv_key = 6"));
  std::vector<IndexEntry> v;
  CHECK(f.chunks.UpTo(6, kMax, &v).IsCorruption());
  // Messages above the watermark (ids of seqs 151-200) stay out.
  RequireOk(f.chunks.Rebuild(6, 1000 + 150 * 7));
  CHECK(Seqs(f.All(6)) == Seqs(Run(1, 150)));
  f.CheckRows(6);
  f.CheckFindable(6);
  RequireOk(f.chunks.Add(6, Run(151, 200)));
  CHECK(Seqs(f.All(6)) == Seqs(Run(1, 200)));
  // Only the tail damaged.
  REQUIRE(f.TailSize(6) > 0);
  RequireOk(f.db->Exec(
      "UPDATE message_tails SET entries = x'0080' WHERE conv_key = 6"));
  v.clear();
  CHECK(f.chunks.UpTo(6, kMax, &v).IsCorruption());
  RequireOk(f.chunks.Rebuild(6, 1000 + 200 * 7));
  CHECK(Seqs(f.All(6)) == Seqs(Run(1, 200)));
  f.CheckRows(6);
}

TEST_CASE("Remove rewrites only the rows that lose pairs", "[message_chunks]") {
  Fixture f;
  REQUIRE(RunLength(2) == 66);
  // Rows 1-66, 67-132, 133-198, 199-264, and a tail 265-300.
  RequireOk(f.chunks.Add(2, Run(1, 300)));
  // The first and last of a row, one in the middle of another, an absent
  // seq, a duplicate, and the whole tail with part of the row below it.
  std::vector<int64_t> gone = {1, 132, 200, 200, 999};
  for (int64_t s = 257; s <= 300; ++s) gone.push_back(s);
  RequireOk(f.chunks.Remove(2, gone));
  std::vector<int64_t> want;
  for (int64_t s = 2; s <= 256; ++s) {
    if (s != 132 && s != 200) want.push_back(s);
  }
  CHECK(Seqs(f.All(2)) == want);
  CHECK(f.Rows(2) == 4);
  CHECK(f.TailSize(2) == 0);  // the tail went entirely
  f.CheckFindable(2);
  int64_t id = -1;
  RequireOk(f.chunks.Find(2, 200, &id));
  CHECK(id == 0);
  // Appending after removals still lands above them.
  RequireOk(f.chunks.Add(2, Run(301, 302)));
  CHECK(f.All(2).back().seq == 302);
  f.CheckRows(2);
  // A seq between two rows, one below them all and one between the rows
  // and the tail touch nothing.
  REQUIRE(RunLength(8) == 72);
  RequireOk(f.chunks.Add(8, Run(1, 128)));    // rows 1-72, tail 73-128
  RequireOk(f.chunks.Add(8, Run(200, 327)));  // rows to 287, tail 288-327
  RequireOk(f.chunks.Add(8, Run(400, 410)));
  CHECK(f.Rows(8) == 3);
  CHECK(f.TailSize(8) == 51);
  RequireOk(f.chunks.Remove(8, {0, 150, 350}));
  CHECK(f.Rows(8) == 3);
  CHECK(f.TailSize(8) == 51);
  CHECK(f.All(8).size() == 267);
  // Seqs in a row and in the tail at once.
  RequireOk(f.chunks.Remove(8, {128, 400, 410}));
  CHECK(f.All(8).size() == 264);
  CHECK(f.TailSize(8) == 49);
  f.CheckRows(8);
  f.CheckFindable(8);
  RequireOk(f.chunks.RemoveAll(2));
  CHECK(f.Rows(2) == 0);
  CHECK(f.TailSize(2) == 0);
  RequireOk(f.chunks.Remove(2, {5}));  // nothing left: ignored
  CHECK(f.Rows(2) == 0);
}

TEST_CASE("a tail that does not lie above the rows is Corruption",
          "[message_chunks]") {
  Fixture f;
  const int64_t L = static_cast<int64_t>(RunLength(13));
  RequireOk(f.chunks.Add(13, Run(1, 2 * L + 3)));  // rows at 1 and L+1
  // Edited so that it still decodes but starts where the second row does:
  // the next full run out of it would collide with that row.
  RequireOk(f.db->Exec("UPDATE message_tails SET first_seq = " +
                       std::to_string(L + 1) + " WHERE conv_key = 13"));
  const Status s = f.chunks.Add(13, Run(5 * L, 6 * L));
  INFO(s.ToString());
  CHECK(s.IsCorruption());
}

TEST_CASE("a damaged row is refused by every read", "[message_chunks]") {
  Fixture f;
  const std::string table =
      GENERATE(std::string("message_chunks"), std::string("message_tails"));
  INFO(table);
  RequireOk(f.chunks.Add(4, Run(1, 130)));  // a row of 68, a tail of 62
  RequireOk(f.db->Exec("UPDATE " + table +
                       " SET entries = x'00ff' WHERE conv_key = 4"));
  std::vector<IndexEntry> v;
  CHECK(f.chunks.Newest(4, 0, kMax, 0, &v).IsCorruption());
  CHECK(f.chunks.UpTo(4, kMax, &v).IsCorruption());
  const int64_t in_damaged = table == "message_tails" ? 129 : 3;
  int64_t id = 0;
  CHECK(f.chunks.Find(4, in_damaged, &id).IsCorruption());
  CHECK(f.chunks.Remove(4, {in_damaged}).IsCorruption());
  // An Add reads the tail, and the rows only when it lands below the tail.
  CHECK(f.chunks.Add(4, Run(100, 100)).IsCorruption());
  if (table == "message_tails") {
    CHECK(f.chunks.Add(4, Run(131, 132)).IsCorruption());
  } else {
    RequireOk(f.chunks.Add(4, Run(131, 132)));
  }
}

}  // namespace
}  // namespace convstore::internal
