// Copyright 2026 The convstore Authors.
//
// SqliteBackend, unmerged messages: keeping the in-memory overlay in step
// with the file (SyncOverlay), merging it into the index (Maintain),
// finding a snapshot's unmerged messages for a read (Unmerged), and the
// duplicate (conversation, seq) check that no index makes at batch time.
// docs/architecture.md, "Unmerged messages", has the design and the argument.

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "clock.h"
#include "sqlite/sqlite_backend.h"

namespace convstore::internal {

Status SqliteBackend::UnmergedReads::Prepare(Db* db) {
  Status s = db->Prepare(kReadMergeState, &meta);
  if (s.ok()) {
    s = db->Prepare(
        "SELECT seq, id, created_at_us, tokens_in, tokens_out, role"
        " FROM messages WHERE id > ?1 AND id <= ?2"
        " AND conv_key = ?3 AND seq > ?4 AND seq < ?5 ORDER BY id",
        &scan);
  }
  if (s.ok()) {
    s = db->Prepare(
        "SELECT conv_key, seq, id, created_at_us, tokens_in, tokens_out, role"
        " FROM messages WHERE id > ?1 AND id <= ?2 ORDER BY id",
        &rows);
  }
  return s;
}

namespace {

// An OverlayEntry from columns (seq, id, created_at_us, tokens_in,
// tokens_out, role) starting at `c`.
OverlayEntry EntryAt(const Stmt& st, int c) {
  return {st.Int(c),     st.Int(c + 1),
          st.Int(c + 2), st.Int(c + 3),
          st.Int(c + 4), st.Int(c + 5) == static_cast<int64_t>(Role::kSystem)};
}

}  // namespace

// Why no read misses a committed message (docs/architecture.md, "Unmerged
// messages"). In the caller's snapshot S, the merged index holds every message
// with id <= wm (S's merged_through_id), and the other messages of S are
// exactly those with wm < id <= hi (S's last_message_id; ids are never
// reused). The overlay, copied afterwards, holds every committed message
// with base < id <= top. Whatever commits or merges came between S and the
// copy, the three id ranges below cover (wm, hi] without overlap:
//  - (max(wm, base), min(hi, top)]: overlay entries. Entries above hi are
//    later batches S cannot see; entries at or below wm are merged in S.
//  - (wm, min(base, hi)]: a merge committed after S and dropped these from
//    the overlay; scanned from `messages` in S.
//  - (max(top, wm), hi]: committed but not in the overlay yet (our writer
//    between COMMIT and publishing, or another process's writes); scanned.
// Both scans are id ranges of the rowid table, and empty in the usual case.
Status SqliteBackend::UnmergedReads::ReadMergeState(int64_t* wm, int64_t* hi) {
  Status s;
  if (meta.Step(&s)) {
    *wm = meta.Int(0);
    *hi = meta.Int(1);
  }
  meta.Reset();
  return s;
}

Status SqliteBackend::Unmerged(UnmergedReads* st, int64_t conv_key,
                               int64_t after_seq, int64_t before_seq,
                               std::vector<OverlayEntry>* out) {
  out->clear();
  int64_t wm = 0;
  int64_t hi = 0;
  Status s = st->ReadMergeState(&wm, &hi);
  if (!s.ok() || hi <= wm) return s;
  if (snapshot_hook_) snapshot_hook_();
  MessageOverlay::View v = overlay_.Get(conv_key, after_seq, before_seq);
  auto scan = [&](int64_t lo_id, int64_t hi_id) {
    if (!s.ok() || hi_id <= lo_id) return;
    st->scan.Bind(1, lo_id);
    st->scan.Bind(2, hi_id);
    st->scan.Bind(3, conv_key);
    st->scan.Bind(4, after_seq);
    st->scan.Bind(5, before_seq);
    while (st->scan.Step(&s)) out->push_back(EntryAt(st->scan, 0));
    st->scan.Reset();
  };
  scan(wm, std::min(v.base, hi));
  const int64_t lo = std::max(wm, v.base);
  const int64_t up = std::min(hi, v.top);
  for (const OverlayEntry& e : v.entries) {
    if (e.id > lo && e.id <= up) out->push_back(e);
  }
  scan(std::max(v.top, wm), hi);
  // Each source is in id order and the ranges ascend, so `out` is in id
  // order, which within a conversation is seq order.
  return s;
}

// The same three ranges as Unmerged, for every conversation at once.
Status SqliteBackend::UnmergedConversations(
    UnmergedReads* st, int64_t* wm,
    std::vector<MessageOverlay::KeySummary>* out) {
  out->clear();
  *wm = 0;
  int64_t hi = 0;
  Status s = st->ReadMergeState(wm, &hi);
  if (!s.ok() || hi <= *wm) return s;
  if (snapshot_hook_) snapshot_hook_();
  // The overlay holds entries in (base, top] only, so asking for (wm, hi]
  // yields the first range.
  MessageOverlay::KeysView v = overlay_.KeysWithEntriesIn(*wm, hi);
  *out = std::move(v.keys);
  // The scanned ranges are empty in the usual case; when they are not, a
  // key found in both sums the parts (the ranges do not overlap).
  absl::flat_hash_map<int64_t, size_t> pos;  // conv_key -> index in *out
  auto scan = [&](int64_t lo_id, int64_t hi_id) {
    if (!s.ok() || hi_id <= lo_id) return;
    if (pos.empty()) {
      for (size_t i = 0; i < out->size(); ++i) pos[(*out)[i].conv_key] = i;
    }
    st->rows.Bind(1, lo_id);
    st->rows.Bind(2, hi_id);
    while (st->rows.Step(&s)) {
      const int64_t key = st->rows.Int(0);
      auto [it, inserted] = pos.try_emplace(key, out->size());
      if (inserted) out->push_back({key, UnmergedSummary()});
      (*out)[it->second].summary.Add(EntryAt(st->rows, 1));
    }
    st->rows.Reset();
  };
  scan(*wm, std::min(v.base, hi));
  scan(std::max(v.top, *wm), hi);
  return s;
}

Status SqliteBackend::UnmergedPart(UnmergedReads* st, int64_t wm,
                                   int64_t conv_key, int64_t row_through,
                                   const UnmergedSummary* above_wm,
                                   UnmergedSummary* out) {
  *out = UnmergedSummary();
  if (above_wm == nullptr) return Status::OK();
  if (row_through <= wm) {
    *out = *above_wm;
    return Status::OK();
  }
  // A purge folded this conversation's messages up to row_through into its
  // row after the last merge; only those above count. Rare.
  std::vector<OverlayEntry> entries;
  Status s = Unmerged(st, conv_key, std::numeric_limits<int64_t>::min(),
                      std::numeric_limits<int64_t>::max(), &entries);
  for (const OverlayEntry& e : entries) {
    if (e.id > row_through) out->Add(e);
  }
  return s;
}

Status SqliteBackend::CheckDuplicateSeqs(
    int64_t key, int64_t merged_through, size_t n,
    const std::function<int64_t(size_t)>& seq_at) {
  if (!row_exists_.prepared()) {
    Status s = writer_->Prepare(
        "SELECT 1 FROM messages WHERE id = ?1 AND conv_key = ?2 AND seq = ?3",
        &row_exists_);
    if (!s.ok()) return s;
  }
  absl::flat_hash_map<int64_t, int64_t> stored;  // seq -> unmerged id
  for (const OverlayEntry& e : overlay_.EntriesOf(key)) {
    if (e.id > merged_through) stored[e.seq] = e.id;
  }
  absl::flat_hash_map<int64_t, bool> in_batch;
  for (size_t i = 0; i < n; ++i) {
    const int64_t seq = seq_at(i);
    bool dup = !in_batch.emplace(seq, true).second;
    Status s;
    if (!dup) {
      int64_t id = 0;
      s = Mended(key, merged_through,
                 [&] { return chunks_.Find(key, seq, &id); });
      if (!s.ok()) return s;
      dup = id != 0;
    }
    auto it = stored.find(seq);
    if (!dup && it != stored.end()) {
      row_exists_.Bind(1, it->second);
      row_exists_.Bind(2, key);
      row_exists_.Bind(3, seq);
      dup = row_exists_.Step(&s);
      row_exists_.Reset();
      if (!s.ok()) return s;
    }
    if (dup) {
      // What SQLite's UNIQUE constraint said when an index table caught it.
      return Status::InvalidArgument(
          "UNIQUE constraint failed: (conversation key " + std::to_string(key) +
          ", seq " + std::to_string(seq) + ") is already stored");
    }
  }
  return Status::OK();
}

Status SqliteBackend::Mended(int64_t key, int64_t merged_through,
                             absl::FunctionRef<Status()> op) {
  Status s = op();
  if (!s.IsCorruption()) return s;
  if (log_ != nullptr) {
    log_->warn(
        "rebuilding the index rows of conversation key {} from its messages: "
        "{}",
        key, s.ToString());
  }
  s = chunks_.Rebuild(key, merged_through);
  return s.ok() ? op() : s;
}

void SqliteBackend::ForgetCachedRows() {
  key_cache_.clear();
  key_generation_ = NewKeyGeneration();
  user_set_.clear();
  last_seq_.clear();
}

Status SqliteBackend::SyncOverlay(int64_t* merged_through, int64_t* last_id) {
  // Under the write lock, so nothing changes these until COMMIT.
  Status s;
  *merged_through = 0;
  *last_id = 0;
  bool missing = true;
  if (read_meta_.Step(&s)) {
    missing = read_meta_.IsNull(0) || read_meta_.IsNull(1);
    *merged_through = read_meta_.Int(0);
    *last_id = read_meta_.Int(1);
  }
  read_meta_.Reset();
  if (!s.ok()) return s;
  // Read as 0, a missing row would hand out ids that are taken or below
  // the watermark, where no read looks for them. Ids above 2^62 (a billion
  // a second for 146 years) are damage, and a batch's ids above one would
  // overflow.
  constexpr int64_t kMaxMessageId = int64_t{1} << 62;
  if (missing || *merged_through < 0 || *last_id < *merged_through ||
      *last_id > kMaxMessageId) {
    return Status::Corruption(
        "store_meta's merged_through_id and last_message_id are missing or "
        "inconsistent (" +
        std::to_string(*merged_through) + ", " + std::to_string(*last_id) +
        ")");
  }
  // Another connection committed since our last transaction: another
  // process, which may have deleted a conversation whose key we cached
  // (appends under it would belong to no row) or set a user. Our own
  // commits do not change this connection's data_version.
  int64_t version = 0;
  if (data_version_.Step(&s)) version = data_version_.Int(0);
  data_version_.Reset();
  if (!s.ok()) return s;
  if (version != seen_data_version_) {
    ForgetCachedRows();
    // It may have removed rows the overlay has entries for, and linked
    // audit records onto the chain: the next record of ours goes after
    // its, not after our last. (The first reading, at open, follows no
    // commit: the overlay was just read, and the head is read next.)
    if (seen_data_version_ != -1) {
      overlay_exact_ = false;
      s = audit_->LoadHead(writer_.get());
      if (!s.ok()) return s;
    }
    seen_data_version_ = version;
  }
  const int64_t base = overlay_.base();
  const int64_t top = overlay_.top();
  if (!overlay_stale_ && *merged_through == base && *last_id == top) {
    return Status::OK();
  }
  // Another process wrote or merged since our last transaction (or the file
  // went back, which only a restored copy could do: start over). Its
  // messages may have raised a conversation's last seq.
  last_seq_.clear();
  const bool restart =
      overlay_stale_ || *merged_through < base || *last_id < top;
  const int64_t from =
      restart ? *merged_through : std::max(top, *merged_through);
  std::vector<OverlayRow> rows;
  scan_tail_.Bind(1, from);
  while (scan_tail_.Step(&s)) {
    const OverlayEntry e = EntryAt(scan_tail_, 1);
    rows.push_back({scan_tail_.Int(0), e.seq, e.id, e.created_at_us,
                    e.tokens_in, e.tokens_out, e.system});
  }
  scan_tail_.Reset();
  if (!s.ok()) return s;
  if (restart) {
    overlay_exact_ = false;
    overlay_.Reset(*merged_through, *last_id, rows);
    overlay_stale_ = false;
    // What the writer cached about conversations came from the newer file:
    // a key may name no row here, a user may not be set here.
    ForgetCachedRows();
  } else {
    overlay_.DropThrough(*merged_through);
    overlay_.Add(rows, *last_id);
  }
  return Status::OK();
}

Status SqliteBackend::MergeInput(int64_t merged_through, int64_t last_id) {
  MessageOverlay::Grouped& in = merge_input_;
  if (overlay_exact_) {
    // The usual case: the overlay names exactly these rows, less the
    // deleted conversations', so they need not be read back
    // (docs/benchmarks.md, "The merge reads the overlay").
    overlay_.EntriesIn(merged_through, last_id, deleted_since_merge_, &in);
    if (in.base == merged_through && in.top == last_id) {
      // Id order is seq order within a conversation (the overlay's
      // invariant 3); what MessageChunks::Add needs is the latter.
      auto by_seq = [](const OverlayEntry& a, const OverlayEntry& b) {
        return a.seq < b.seq;
      };
      for (size_t i = 0; i < in.conv_keys.size(); ++i) {
        const auto first = in.entries.begin() + in.starts[i];
        const auto last = in.entries.begin() + in.starts[i + 1];
        if (!std::is_sorted(first, last, by_seq))
          std::sort(first, last, by_seq);
      }
      return Status::OK();
    }
  }
  // Read back from `messages`: rows purged since they were appended, or
  // removed by another connection, still have entries in the overlay but
  // must not be indexed.
  merges_rescanned_.fetch_add(1, std::memory_order_relaxed);
  in.Clear();
  Status s;
  merge_rows_.Bind(1, merged_through);
  int64_t key = 0;
  while (merge_rows_.Step(&s)) {
    if (merge_rows_.Int(0) != key) {
      in.Close(key);
      key = merge_rows_.Int(0);
    }
    OverlayEntry& e = in.entries.emplace_back();
    e.seq = merge_rows_.Int(1);
    e.id = merge_rows_.Int(2);
  }
  in.Close(key);
  merge_rows_.Reset();
  return s;
}

Status SqliteBackend::MergeUnmerged() {
  // Enough entries, or enough conversations: the merge's time grows with
  // both (Options::index_merge_conversations). Open refuses bounds of 0;
  // the floors of 1 are for a backend built directly.
  if (overlay_.size() < std::max<size_t>(1, options_.index_merge_rows) &&
      overlay_.conversations() <
          std::max<size_t>(1, options_.index_merge_conversations)) {
    return Status::OK();
  }
  // One bulk merge: the unmerged messages, read in (conv_key, seq) order, go
  // into the index together, one row per conversation (message_chunks.h), so
  // each of its pages is written once per merge rather than once per batch.
  // The watermark moves in the same transaction.
  const int64_t start_us = MonoMicros();
  Status s = writer_->Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  int64_t merged_through = 0;
  int64_t last_id = 0;
  s = SyncOverlay(&merged_through, &last_id);
  if (s.ok() && last_id > merged_through) {
    s = MergeInput(merged_through, last_id);
    const MessageOverlay::Grouped& in = merge_input_;
    size_t damaged = 0;
    std::pair<int64_t, int64_t> damaged_at;  // the first: conv_key, row id
    for (size_t i = 0; s.ok() && i < in.conv_keys.size(); ++i) {
      const int64_t key = in.conv_keys[i];
      merge_run_.clear();
      for (size_t j = in.starts[i]; j < in.starts[i + 1]; ++j) {
        if (!IndexableSeq(in.entries[j].seq)) {
          // A damaged row: left out (message_chunks.h).
          if (damaged++ == 0) damaged_at = {key, in.entries[j].id};
          continue;
        }
        merge_run_.push_back({in.entries[j].seq, in.entries[j].id});
      }
      s = Mended(key, merged_through,
                 [&] { return chunks_.Add(key, merge_run_); });
      if (s.ok() && merge_hook_) merge_hook_();
    }
    if (damaged > 0 && log_ != nullptr) {
      log_->warn(
          "merge: {} message rows with a seq outside 1..2^62 (damaged) left "
          "out of the index, the first conv_key {} row id {}",
          damaged, damaged_at.first, damaged_at.second);
    }
    if (s.ok()) {
      Stmt st;
      s = writer_->Prepare(
          "UPDATE store_meta SET value = ?1 WHERE key = 'merged_through_id'",
          &st);
      if (s.ok()) {
        st.Bind(1, last_id);
        s = st.Exec();
      }
    }
    // The summaries catch up (schema version 11), and with them the
    // activity indexes (version 10): after this no message lies above the
    // watermark. Conversations without one need nothing (a purge folded
    // theirs, ApplyPurge).
    MessageOverlay::KeysView v =
        overlay_.KeysWithEntriesIn(merged_through, last_id);
    // In key order, so the updates walk the conversations table front to
    // back instead of in hash order: 19-30% less time folding
    // (docs/benchmarks.md, "Folds in key order").
    std::sort(v.keys.begin(), v.keys.end(),
              [](const MessageOverlay::KeySummary& a,
                 const MessageOverlay::KeySummary& b) {
                return a.conv_key < b.conv_key;
              });
    for (size_t i = 0; s.ok() && i < v.keys.size(); ++i) {
      const MessageOverlay::KeySummary& k = v.keys[i];
      bool folded = false;
      s = Fold(k.conv_key, k.summary, last_id, merged_through, &folded);
      // Not folded: a purge folded part of them since the last merge, or
      // the conversation is gone.
      if (s.ok() && !folded) s = FoldAbove(k.conv_key, last_id);
    }
  }
  if (s.ok()) s = writer_->Exec("COMMIT");
  if (!s.ok()) {
    if (sqlite3_get_autocommit(writer_->raw()) == 0) {
      (void)writer_->Exec("ROLLBACK");
    }
    return s.WithPrefix("merging the unmerged messages into the index");
  }
  // After COMMIT only. A reader whose snapshot predates the merge no longer
  // finds these entries here and scans `messages` for them (Unmerged).
  overlay_.DropThrough(last_id);
  // Empty now (SyncOverlay made last_id its top), so exact.
  overlay_exact_ = true;
  deleted_since_merge_.clear();
  // Only merges that commit are counted. The count is released last, so a
  // reader that sees it also sees this merge's time and overlay drop.
  const int64_t us = MonoMicros() - start_us;
  merge_total_us_.fetch_add(us, std::memory_order_relaxed);
  if (us > merge_max_us_.load(std::memory_order_relaxed)) {
    merge_max_us_.store(us, std::memory_order_relaxed);  // one writer
  }
  merges_.fetch_add(1, std::memory_order_release);
  return Status::OK();
}

UpkeepCounters SqliteBackend::upkeep_counters() const {
  UpkeepCounters c;
  c.index_merges = merges_.load(std::memory_order_acquire);  // first
  c.index_merge_total_us = merge_total_us_.load(std::memory_order_relaxed);
  c.index_merge_max_us = merge_max_us_.load(std::memory_order_relaxed);
  c.unmerged_messages = overlay_.size();
  return c;
}

}  // namespace convstore::internal
