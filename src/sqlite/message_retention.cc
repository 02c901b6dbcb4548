// Copyright 2026 The convstore Authors.
//
// SqliteBackend, message retention: choosing the messages a retention run
// removes (on a connection of its own, so the reader pool stays free) and
// removing them on the writer (one PurgeMessagesOp per transaction).

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sqlite/sqlite_backend.h"

namespace convstore::internal {
namespace {

// Conversations whose oldest messages lie beyond the newest ?1 by their
// rows alone, with what the count rule may not touch. Rows count merged
// messages only (schema version 11): conversations with unmerged ones are
// weighed with those added (Effective below).
constexpr const char* kOverCount =
    "SELECT conv_key FROM conversations WHERE last_seq - purged_count > ?1"
    " ORDER BY conv_key";

// One conversation's row.
constexpr const char* kRow =
    "SELECT conversation_id, last_seq, first_system_seq, purged_count,"
    " summarized_through_id FROM conversations WHERE conv_key = ?1";

// Messages created before ?1, in storage order (which is seq order within
// a conversation). ?2 = 1 spares each conversation's first system message.
// For a conversation with unmerged messages the row's first_system_seq may
// be short of them: those rows are checked again (Effective). What the
// count rule already chose is skipped by the caller (the count rule's
// cuts, see newest_cut).
constexpr const char* kOlderThan =
    "SELECT m.id, m.conv_key, m.seq, c.conversation_id"
    " FROM messages m JOIN conversations c ON c.conv_key = m.conv_key"
    " WHERE m.created_at_us < ?1"
    " AND (?2 = 0 OR m.seq != c.first_system_seq) AND m.id > ?3"
    " ORDER BY m.id";

// Rows chosen in one read transaction before they are handed out. No read
// transaction is open while `visit` runs: it commits the purges, and a
// snapshot held across them would keep every checkpoint from resetting the
// WAL, which would grow by all of them.
constexpr size_t kSegmentRows = 16384;

// What retention needs of one conversation, its unmerged messages added.
struct RetentionRow {
  bool exists = false;
  std::string conversation_id;
  int64_t last_seq = 0;
  int64_t first_system_seq = 0;
  int64_t purged_count = 0;
};

}  // namespace

Status SqliteBackend::SelectPurgeable(
    const PurgeQuery& query,
    const std::function<bool(PurgeCandidates&&)>& visit) {
  std::unique_ptr<Db> db;
  Status s =
      Db::Open(options_.path, /*create=*/false, &db, options_.sqlite_vfs);
  if (s.ok()) s = Configure(db.get(), /*writer=*/false);
  if (!s.ok()) return s.WithPrefix("retention scan");
  bool go_on = true;
  Stmt row;
  UnmergedReads unmerged_reads;
  s = db->Prepare(kRow, &row);
  if (s.ok()) s = unmerged_reads.Prepare(db.get());
  if (!s.ok()) return s;
  // The choices are made in read transactions of up to kSegmentRows rows
  // each, from that transaction's committed state; what the unmerged
  // messages add is read again in each.
  std::vector<MessageOverlay::KeySummary> keys;
  int64_t wm = 0;
  absl::flat_hash_map<int64_t, UnmergedSummary> part_of;
  // The conversations with unmerged messages, as `effective` sees them.
  absl::flat_hash_map<int64_t, RetentionRow> checked;
  auto begin = [&]() -> Status {
    Status b = db->Exec("BEGIN");
    keys.clear();
    part_of.clear();
    checked.clear();
    if (b.ok()) b = UnmergedConversations(&unmerged_reads, &wm, &keys);
    for (const auto& k : keys) part_of.emplace(k.conv_key, k.summary);
    return b;
  };
  // Ends the read transaction, then hands out what it chose.
  std::vector<PurgeCandidates> chosen;
  auto hand_out = [&]() -> Status {
    Status e = db->Exec("COMMIT");
    for (PurgeCandidates& c : chosen) {
      if (e.ok() && go_on) go_on = visit(std::move(c));
    }
    chosen.clear();
    return e;
  };
  auto effective = [&](int64_t key, RetentionRow* out) {
    *out = RetentionRow();
    int64_t row_through = 0;
    row.Bind(1, key);
    if (row.Step(&s)) {
      out->exists = true;
      out->conversation_id = row.Text(0);
      out->last_seq = row.Int(1);
      out->first_system_seq = row.Int(2);
      out->purged_count = row.Int(3);
      row_through = row.Int(4);
    }
    row.Reset();
    if (!s.ok() || !out->exists) return;
    auto it = part_of.find(key);
    UnmergedSummary part;
    s = UnmergedPart(&unmerged_reads, wm, key, row_through,
                     it == part_of.end() ? nullptr : &it->second, &part);
    out->last_seq = std::max(out->last_seq, part.last_seq);
    if (out->first_system_seq == 0) {
      out->first_system_seq = part.first_system_seq;
    }
  };

  Stmt exists;
  MessageChunks index;
  std::vector<IndexEntry> merged;
  std::vector<OverlayEntry> unmerged;
  if (query.keep_newest > 0) {
    s = index.Prepare(db.get(), /*writer=*/false);
    if (s.ok()) {
      s = db->Prepare(
          "SELECT 1 FROM messages WHERE id = ?1 AND conv_key = ?2 AND seq = ?3",
          &exists);
    }
    if (!s.ok()) return s;
  }
  auto stored = [&](int64_t key, const OverlayEntry& e) {
    exists.Bind(1, e.id);
    exists.Bind(2, key);
    exists.Bind(3, e.seq);
    const bool found = exists.Step(&s);
    exists.Reset();
    return found;
  };
  // The seq of the conversation's keep_newest-th newest stored message, 0
  // when it holds fewer: the count rule removes the messages below it.
  // Counted over what is stored, not computed from last_seq: seqs have
  // gaps (an age run that removed messages from the middle, a write set
  // aside), and arithmetic would then remove messages among the newest.
  auto newest_cut = [&](int64_t key) -> int64_t {
    const size_t want = static_cast<size_t>(query.keep_newest);
    size_t have = 0;
    int64_t below = std::numeric_limits<int64_t>::max();
    // The unmerged ones have higher seqs than every merged one. Entries of
    // rows deleted since the last merge match nothing: not counted.
    unmerged.clear();
    s = Unmerged(&unmerged_reads, key, 0, below, &unmerged);
    for (auto it = unmerged.rbegin(); s.ok() && it != unmerged.rend(); ++it) {
      below = std::min(below, it->seq);
      if (!stored(key, *it)) continue;
      if (++have == want) return it->seq;
    }
    if (!s.ok()) return int64_t{0};
    merged.clear();
    s = index.Newest(key, 0, below, want - have, &merged);
    if (!s.ok() || merged.size() < want - have) return int64_t{0};
    return merged.back().seq;
  };

  // Each conversation's cut above 1, found by the count rule; the age rule
  // skips what is below it. A conversation the count rule did not look at
  // stores at most keep_newest messages (rows count at least what is
  // stored), so its cut is 0.
  absl::flat_hash_map<int64_t, int64_t> cuts;
  Status damaged;  // the first conversation the count rule had to skip
  if (query.keep_newest > 0) {
    Stmt convs;
    s = db->Prepare(kOverCount, &convs);
    if (!s.ok()) return s;
    // Chooses the conversation's rows with seq above `after`: at most
    // `limit` merged ones, oldest first, then, once those are all taken,
    // the unmerged ones. Returns the last seq taken when it stopped at
    // `limit` (the conversation goes on in the next segment, above it:
    // what this one chose is removed, or pending in the caller's batch, by
    // then), else 0.
    auto choose = [&](int64_t key, int64_t after, size_t limit) -> int64_t {
      RetentionRow conv;
      effective(key, &conv);
      if (!s.ok() || !conv.exists) return 0;
      const int64_t cut = newest_cut(key);
      if (!s.ok() || cut <= 1) return 0;
      // The latest slice's cut: the age rule spares what the count rule
      // chose, up to the cut of the slice that chose last.
      cuts.insert_or_assign(key, cut);
      PurgeCandidates c;
      c.conversation_id = std::move(conv.conversation_id);
      const int64_t spare = query.keep_first_system ? conv.first_system_seq : 0;
      const int64_t up_to = cut - 1;
      merged.clear();
      s = index.Range(key, after, up_to, limit, &merged);
      if (!s.ok()) return 0;
      for (const IndexEntry& e : merged) {
        if (e.seq != spare) c.rows.push_back({e.id, key, e.seq});
      }
      int64_t resume = 0;
      if (merged.size() == limit) {
        resume = merged.back().seq;
      } else {
        unmerged.clear();
        s = Unmerged(&unmerged_reads, key, std::max<int64_t>(after, 0),
                     up_to + 1, &unmerged);
        if (!s.ok()) return 0;
        for (const OverlayEntry& e : unmerged) {
          if (e.seq == spare) continue;
          const bool found = stored(key, e);
          if (!s.ok()) return 0;
          if (found) c.rows.push_back({e.id, key, e.seq});
        }
      }
      if (!c.rows.empty()) chosen.push_back(std::move(c));
      return resume;
    };
    // By their rows first, then those whose unmerged messages may put them
    // over (the rows of the first kind with unmerged messages included).
    s = begin();
    if (!s.ok()) return s;
    std::vector<int64_t> by_row;
    convs.Bind(1, query.keep_newest);
    while (convs.Step(&s)) {
      const int64_t key = convs.Int(0);
      if (!part_of.contains(key)) by_row.push_back(key);
    }
    convs.Reset();
    if (!s.ok()) return s;
    for (const auto& k : keys) by_row.push_back(k.conv_key);
    std::sort(by_row.begin(), by_row.end());
    // Segments: choose up to kSegmentRows merged rows, end the transaction
    // and hand them out, begin the next. A conversation with more goes on
    // in the next segment, above the last seq chosen (`resume`).
    int64_t resume = 0;
    for (size_t i = 0;;) {
      size_t rows = 0;
      while (s.ok() && i < by_row.size() && rows < kSegmentRows) {
        const size_t before = chosen.size();
        const int64_t next = choose(by_row[i], resume, kSegmentRows - rows);
        if (s.IsCorruption() && !IsSqliteError(s)) {
          // One conversation's damaged index or summary (this connection
          // does not mend it; the writer does when it next rewrites it):
          // the others are chosen as usual, and the run reports it. SQLite's
          // own Corruption (a damaged page) ends the run.
          if (damaged.ok()) {
            damaged =
                s.WithPrefix("conversation key " + std::to_string(by_row[i]) +
                             " skipped by the count rule");
          }
          if (log_ != nullptr) log_->warn("retention: {}", s.ToString());
          s = Status::OK();
          resume = 0;
          ++i;
          continue;
        }
        if (!s.ok()) break;
        if (chosen.size() > before) rows += chosen.back().rows.size();
        resume = next;
        if (resume != 0) break;  // the segment is full
        ++i;
      }
      if (s.ok()) s = hand_out();
      if (!s.ok()) return s;
      if (!go_on || i == by_row.size()) break;
      s = begin();
      if (!s.ok()) return s;
    }
  }

  if (go_on && query.created_before_us > 0) {
    Stmt older;
    s = db->Prepare(kOlderThan, &older);
    if (!s.ok()) return s;
    auto spared = [&](int64_t key, int64_t seq) {
      if (auto it = cuts.find(key); it != cuts.end() && seq < it->second) {
        return true;  // the count rule chose it
      }
      if (!query.keep_first_system || !part_of.contains(key)) return false;
      auto [it, inserted] = checked.try_emplace(key);
      if (inserted) effective(key, &it->second);
      return seq == it->second.first_system_seq;
    };
    // Grouped by conversation a segment at a time (in id order, which is
    // seq order within a conversation), so memory stays bounded and each
    // conversation's rows reach `visit` oldest first. A segment resumes
    // after the last id the one before it read.
    absl::flat_hash_map<int64_t, size_t> slot;
    int64_t after_id = 0;
    for (bool more = true; more && go_on;) {
      s = begin();
      if (!s.ok()) return s;
      older.Bind(1, query.created_before_us);
      older.Bind(2, query.keep_first_system ? 1 : 0);
      older.Bind(3, after_id);
      size_t rows = 0;
      more = false;
      while (older.Step(&s)) {
        after_id = older.Int(0);
        const int64_t key = older.Int(1);
        const int64_t seq = older.Int(2);
        const bool spare = spared(key, seq);
        if (!s.ok()) break;
        if (spare) continue;
        auto [it, inserted] = slot.try_emplace(key, chosen.size());
        if (inserted) {
          chosen.emplace_back();
          chosen.back().conversation_id = older.Text(3);
        }
        chosen[it->second].rows.push_back({after_id, key, seq});
        if (++rows >= kSegmentRows) {
          more = true;
          break;
        }
      }
      older.Reset();
      if (!s.ok()) return s;
      slot.clear();
      s = hand_out();
      if (!s.ok()) return s;
    }
  }
  return damaged;
}

Status SqliteBackend::ApplyPurge(const PurgeMessagesOp& op,
                                 int64_t merged_through, int64_t last_id) {
  if (!purge_msg_.prepared()) {
    struct {
      Stmt* stmt;
      const char* sql;
    } prepared[] = {
        {&purge_msg_,
         "DELETE FROM messages WHERE id = ?1 AND conv_key = ?2 AND seq = ?3"},
        {&count_purged_,
         "UPDATE conversations SET purged_count = purged_count + ?1"
         " WHERE conv_key = ?2"},
        // A removed first system message is no longer pinned; the next
        // system message appended takes its place (as in the cache).
        {&unpin_system_,
         "UPDATE conversations SET first_system_seq = 0"
         " WHERE conv_key = ?1 AND first_system_seq = ?2"},
    };
    for (auto& p : prepared) {
      Status s = writer_->Prepare(p.sql, p.stmt);
      if (!s.ok()) return s;
    }
  }
  // A row above the watermark counts in its conversation's summary through
  // the reads (UnmergedPart) only while it exists: fold first. A merged row
  // may be the pinned system message: fold too, so that unpinning it below
  // cannot let an unmerged system message appended while it was pinned
  // take its place at the next fold (FoldAbove does nothing if the
  // conversation has no unmerged entries above its row).
  absl::flat_hash_set<int64_t> folded;
  for (const StoredMessageRef& r : op.rows) {
    if (!folded.insert(r.conversation_key).second) continue;
    Status s = FoldAbove(r.conversation_key, last_id);
    if (!s.ok()) return s;
  }
  // conv_key -> seqs removed
  absl::flat_hash_map<int64_t, std::vector<int64_t>> removed;
  for (const StoredMessageRef& r : op.rows) {
    purge_msg_.Bind(1, r.row_id);
    purge_msg_.Bind(2, r.conversation_key);
    purge_msg_.Bind(3, r.seq);
    Status s = purge_msg_.Exec();
    if (!s.ok()) return s;
    // Gone already (its conversation was deleted since it was chosen).
    if (sqlite3_changes(writer_->raw()) == 0) continue;
    // An unmerged row's overlay entry now names no row: the next merge
    // reads its pairs back (MergeInput), once this commits.
    if (r.row_id > merged_through) batch_purged_ = true;
    removed[r.conversation_key].push_back(r.seq);
    unpin_system_.Bind(1, r.conversation_key);
    unpin_system_.Bind(2, r.seq);
    s = unpin_system_.Exec();
    if (!s.ok()) return s;
  }
  // A merged row leaves the index; an unmerged row's overlay entry stays
  // until the next merge, which does not index it (it matches no row from
  // now on: ids are never reused).
  for (const auto& entry : removed) {
    const int64_t key = entry.first;
    const std::vector<int64_t>& seqs = entry.second;
    count_purged_.Bind(1, static_cast<int64_t>(seqs.size()));
    count_purged_.Bind(2, key);
    Status s = count_purged_.Exec();
    // Its messages are deleted by now, so rows rebuilt leave them out.
    if (s.ok()) {
      s = Mended(key, merged_through,
                 [&] { return chunks_.Remove(key, seqs); });
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace convstore::internal
