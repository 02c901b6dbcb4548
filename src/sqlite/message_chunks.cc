// Copyright 2026 The convstore Authors.

#include "sqlite/message_chunks.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "varint.h"

namespace convstore::internal {
namespace {

// Far above kMaxChunkEntries; a row claiming more is damaged, and
// refusing it bounds what a damaged row can make a reader allocate.
constexpr int64_t kMaxDecodedEntries = int64_t{1} << 16;

constexpr int64_t kNoBound = std::numeric_limits<int64_t>::max();

Status Malformed(int64_t conv_key, int64_t first_seq, const char* why) {
  return Status::Corruption("packed message index row (conversation key " +
                            std::to_string(conv_key) + ", first_seq " +
                            std::to_string(first_seq) + ") is damaged: " + why);
}

// What message_index's primary key said about a repeated (conv_key, seq).
Status Duplicate(int64_t conv_key, int64_t seq) {
  return Status::InvalidArgument(
      "UNIQUE constraint failed: (conversation key " +
      std::to_string(conv_key) + ", seq " + std::to_string(seq) +
      ") is already indexed");
}

Status PrepareChunkInsert(Db* db, Stmt* st) {
  return db->Prepare(
      "INSERT INTO message_chunks(conv_key, first_seq, n, entries)"
      " VALUES (?1, ?2, ?3, ?4)",
      st);
}

// Runs `st`, an insert of (conv_key, first_seq, n, entries), for one run;
// *buf is scratch.
Status InsertRun(Stmt* st, int64_t key, std::span<const IndexEntry> run,
                 std::string* buf) {
  buf->clear();
  EncodeChunk(run, buf);
  st->Bind(1, key);
  st->Bind(2, run.front().seq);
  st->Bind(3, static_cast<int64_t>(run.size()));
  st->BindBlob(4, *buf);
  return st->Exec();
}

}  // namespace

void EncodeChunk(std::span<const IndexEntry> entries, std::string* out) {
  int64_t seq = entries.front().seq;
  int64_t id = 0;
  for (const IndexEntry& e : entries) {
    PutVarint(static_cast<uint64_t>(e.seq - seq), out);
    PutVarint(ZigZag(e.id - id), out);
    seq = e.seq;
    id = e.id;
  }
}

Status DecodeChunk(int64_t conv_key, int64_t first_seq, int64_t n,
                   std::string_view bytes, std::vector<IndexEntry>* out) {
  // A pair takes at least 2 bytes: checked before anything is reserved.
  if (n < 1 || n > kMaxDecodedEntries ||
      static_cast<uint64_t>(n) > bytes.size() / 2) {
    return Malformed(conv_key, first_seq, "implausible pair count");
  }
  if (first_seq < 0) return Malformed(conv_key, first_seq, "negative seq");
  out->reserve(out->size() + static_cast<size_t>(n));
  int64_t seq = first_seq;
  int64_t id = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint64_t dseq = 0;
    uint64_t did = 0;
    if (!GetVarint(&bytes, &dseq) || !GetVarint(&bytes, &did)) {
      return Malformed(conv_key, first_seq, "truncated");
    }
    if ((i == 0) != (dseq == 0) ||
        dseq > static_cast<uint64_t>(kNoBound - seq)) {
      return Malformed(conv_key, first_seq, "seqs do not rise");
    }
    const int64_t delta = UnZigZag(did);
    if (__builtin_add_overflow(id, delta, &id) || id <= 0) {
      return Malformed(conv_key, first_seq, "message id out of range");
    }
    seq += static_cast<int64_t>(dseq);
    out->push_back({seq, id});
  }
  if (!bytes.empty()) return Malformed(conv_key, first_seq, "trailing bytes");
  return Status::OK();
}

Status MessageChunks::Prepare(Db* db, bool writer) {
  db_ = db;
  constexpr const char* kColumns =
      "SELECT first_seq, n, entries FROM message_chunks WHERE conv_key = ?1";
  Status s = db->Prepare(
      std::string(kColumns) + " AND first_seq < ?2 ORDER BY first_seq DESC",
      &desc_);
  if (s.ok()) {
    s = db->Prepare(
        std::string(kColumns) + " AND first_seq <= ?2 ORDER BY first_seq",
        &asc_);
  }
  if (s.ok()) {
    s = db->Prepare(
        "SELECT first_seq, n, entries FROM message_tails WHERE conv_key = ?1",
        &tail_get_);
  }
  if (!writer) return s;
  if (s.ok()) s = PrepareChunkInsert(db, &insert_);
  if (s.ok()) {
    s = db->Prepare(
        "DELETE FROM message_chunks WHERE conv_key = ?1 AND first_seq = ?2",
        &erase_);
  }
  if (s.ok()) {
    s = db->Prepare("DELETE FROM message_chunks WHERE conv_key = ?1",
                    &erase_all_);
  }
  if (s.ok()) {
    s = db->Prepare(
        "INSERT OR REPLACE INTO message_tails(conv_key, first_seq, n, entries)"
        " VALUES (?1, ?2, ?3, ?4)",
        &tail_put_);
  }
  if (s.ok()) {
    s = db->Prepare("DELETE FROM message_tails WHERE conv_key = ?1",
                    &tail_erase_);
  }
  return s;
}

Status MessageChunks::DecodeRow(const Stmt& st, int64_t key,
                                std::vector<IndexEntry>* run) {
  run->clear();
  return DecodeChunk(key, st.Int(0), st.Int(1), st.BlobView(2), run);
}

Status MessageChunks::Tail(int64_t key, int64_t* first,
                           std::vector<IndexEntry>* run) {
  Status s;
  run->clear();
  *first = kNoBound;
  tail_get_.Bind(1, key);
  if (tail_get_.Step(&s)) {
    *first = tail_get_.Int(0);
    s = DecodeRow(tail_get_, key, run);
  }
  tail_get_.Reset();
  return s;
}

Status MessageChunks::Newest(int64_t key, int64_t after, int64_t before,
                             size_t limit, std::vector<IndexEntry>* out) {
  const size_t start = out->size();
  // Takes the run's entries in (after, before), newest first; true once
  // no older run can add any.
  auto take = [&](int64_t first, const std::vector<IndexEntry>& run) {
    for (auto it = run.rbegin(); it != run.rend(); ++it) {
      if (it->seq >= before) continue;
      if (it->seq <= after) break;
      out->push_back(*it);
      if (limit > 0 && out->size() - start >= limit) break;
    }
    // Older runs hold only seqs below `first`.
    return first <= after || (limit > 0 && out->size() - start >= limit);
  };
  int64_t first = 0;
  std::vector<IndexEntry> run;
  Status s = Tail(key, &first, &run);
  if (!s.ok() || (!run.empty() && take(first, run))) return s;
  desc_.Bind(1, key);
  desc_.Bind(2, before);
  bool done = false;
  while (!done && desc_.Step(&s)) {
    first = desc_.Int(0);
    s = DecodeRow(desc_, key, &run);
    if (!s.ok()) break;
    done = take(first, run);
  }
  desc_.Reset();
  return s;
}

Status MessageChunks::UpTo(int64_t key, int64_t up_to,
                           std::vector<IndexEntry>* out) {
  return Range(key, std::numeric_limits<int64_t>::min(), up_to, 0, out);
}

Status MessageChunks::Range(int64_t key, int64_t after, int64_t up_to,
                            size_t limit, std::vector<IndexEntry>* out) {
  Status s;
  const size_t room = limit == 0 ? std::numeric_limits<size_t>::max() : limit;
  size_t taken = 0;
  asc_.Bind(1, key);
  asc_.Bind(2, up_to);
  std::vector<IndexEntry> run;
  auto take = [&] {
    for (const IndexEntry& e : run) {
      if (taken == room) return;
      if (e.seq > after && e.seq <= up_to) {
        out->push_back(e);
        ++taken;
      }
    }
  };
  while (taken < room && asc_.Step(&s)) {
    s = DecodeRow(asc_, key, &run);
    if (!s.ok()) break;
    take();
  }
  asc_.Reset();
  int64_t first = 0;
  if (s.ok() && taken < room) s = Tail(key, &first, &run);
  if (s.ok() && taken < room && first <= up_to) take();
  return s;
}

Status MessageChunks::LastRunBelow(int64_t key, int64_t before, int64_t* first,
                                   std::vector<IndexEntry>* run) {
  Status s;
  run->clear();
  *first = 0;
  desc_.Bind(1, key);
  desc_.Bind(2, before);
  if (desc_.Step(&s)) {
    *first = desc_.Int(0);
    s = DecodeRow(desc_, key, run);
  }
  desc_.Reset();
  return s;
}

Status MessageChunks::Find(int64_t key, int64_t seq, int64_t* id) {
  *id = 0;
  if (seq == kNoBound) return Status::OK();
  int64_t first = 0;
  std::vector<IndexEntry> run;
  Status s = Tail(key, &first, &run);
  if (s.ok() && seq < first) s = LastRunBelow(key, seq + 1, &first, &run);
  auto it = std::lower_bound(
      run.begin(), run.end(), seq,
      [](const IndexEntry& e, int64_t v) { return e.seq < v; });
  if (s.ok() && it != run.end() && it->seq == seq) *id = it->id;
  return s;
}

Status MessageChunks::Write(int64_t key, std::span<const IndexEntry> entries,
                            bool had_tail) {
  const size_t len = RunLength(key);
  const size_t full = entries.size() - entries.size() % len;
  for (size_t i = 0; i < full; i += len) {
    Status s = InsertRun(&insert_, key, entries.subspan(i, len), &buf_);
    if (s.IsInvalidArgument()) {
      // A row already starts there: the tail (which decoded) does not lie
      // above the rows, so the file was edited or damaged. Corruption lets
      // the writer rebuild the conversation's rows (SqliteBackend::Mended).
      return Status::Corruption(
          "packed message index of conversation key " + std::to_string(key) +
          ": its tail overlaps its rows (" + s.ToString() + ")");
    }
    if (!s.ok()) return s;
  }
  if (full < entries.size()) {
    return InsertRun(&tail_put_, key, entries.subspan(full), &buf_);
  }
  if (!had_tail) return Status::OK();
  tail_erase_.Bind(1, key);
  return tail_erase_.Exec();
}

Status MessageChunks::Add(int64_t key, std::span<const IndexEntry> entries) {
  if (entries.empty()) return Status::OK();
  if (!IndexableSeq(entries.front().seq) || !IndexableSeq(entries.back().seq)) {
    return Status::Corruption("message index of conversation key " +
                              std::to_string(key) + ": seq out of range");
  }
  // A repeated seq would encode as a pair no reader accepts.
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].seq <= entries[i - 1].seq) {
      return Duplicate(key, entries[i].seq);
    }
  }
  int64_t first = 0;
  std::vector<IndexEntry> tail;
  Status s = Tail(key, &first, &tail);
  if (!s.ok()) return s;
  const bool had_tail = !tail.empty();
  const int64_t low = entries.front().seq;
  int64_t top = 0;
  if (had_tail) {
    top = tail.back().seq;
  } else {
    std::vector<IndexEntry> run;
    s = LastRunBelow(key, kNoBound, &first, &run);
    if (!s.ok()) return s;
    if (!run.empty()) top = run.back().seq;
  }
  if (low > top) {
    // The usual case: the entries follow every indexed one.
    tail.insert(tail.end(), entries.begin(), entries.end());
    return Write(key, tail, had_tail);
  }
  // Rare: a seq at or below an indexed one (another process appended to
  // the same conversation in between). The tail and the rows from the
  // newest back to the first that lies wholly below `low` are merged with
  // the entries and written again.
  std::vector<IndexEntry> old(tail.rbegin(), tail.rend());  // newest first
  std::vector<int64_t> firsts;
  std::vector<IndexEntry> run;
  desc_.Bind(1, key);
  desc_.Bind(2, kNoBound);
  while (desc_.Step(&s)) {
    s = DecodeRow(desc_, key, &run);
    if (!s.ok() || run.back().seq < low) break;
    firsts.push_back(desc_.Int(0));
    old.insert(old.end(), run.rbegin(), run.rend());
  }
  desc_.Reset();
  if (!s.ok()) return s;
  std::reverse(old.begin(), old.end());
  std::vector<IndexEntry> all;
  all.reserve(old.size() + entries.size());
  auto by_seq = [](const IndexEntry& a, const IndexEntry& b) {
    return a.seq < b.seq;
  };
  std::merge(old.begin(), old.end(), entries.begin(), entries.end(),
             std::back_inserter(all), by_seq);
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].seq == all[i - 1].seq) return Duplicate(key, all[i].seq);
  }
  for (int64_t f : firsts) {
    erase_.Bind(1, key);
    erase_.Bind(2, f);
    s = erase_.Exec();
    if (!s.ok()) return s;
  }
  return Write(key, all, had_tail);
}

Status MessageChunks::Remove(int64_t key, std::vector<int64_t> seqs) {
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  // Each row is read and rewritten once however many of its seqs go.
  std::vector<IndexEntry> run;
  std::vector<IndexEntry> kept;
  // Keeps the entries of `run` whose seqs are not in seqs[i, j).
  auto keep = [&](size_t i, size_t j) {
    kept.clear();
    size_t k = i;
    for (const IndexEntry& e : run) {
      while (k < j && seqs[k] < e.seq) ++k;
      if (k == j || seqs[k] != e.seq) kept.push_back(e);
    }
    return kept.size() != run.size();
  };
  int64_t tail_first = 0;
  Status s = Tail(key, &tail_first, &run);
  if (!s.ok()) return s;
  const size_t in_rows = static_cast<size_t>(
      std::lower_bound(seqs.begin(), seqs.end(), tail_first) - seqs.begin());
  if (!run.empty() && keep(in_rows, seqs.size())) {
    if (kept.empty()) {
      tail_erase_.Bind(1, key);
      s = tail_erase_.Exec();
    } else {
      s = InsertRun(&tail_put_, key, kept, &buf_);
    }
    if (!s.ok()) return s;
  }
  size_t i = 0;
  while (i < in_rows) {
    int64_t first = 0;
    s = LastRunBelow(key, seqs[i] + 1, &first, &run);
    if (!s.ok()) return s;
    if (run.empty() || run.back().seq < seqs[i]) {
      ++i;  // between rows or below them all: not indexed
      continue;
    }
    // seqs[i, j) lie within this row's range.
    size_t j = i;
    while (j < in_rows && seqs[j] <= run.back().seq) ++j;
    if (keep(i, j)) {
      erase_.Bind(1, key);
      erase_.Bind(2, first);
      s = erase_.Exec();
      if (s.ok() && !kept.empty()) s = InsertRun(&insert_, key, kept, &buf_);
      if (!s.ok()) return s;
    }
    i = j;
  }
  return Status::OK();
}

Status MessageChunks::RemoveAll(int64_t key) {
  erase_all_.Bind(1, key);
  Status s = erase_all_.Exec();
  if (!s.ok()) return s;
  tail_erase_.Bind(1, key);
  return tail_erase_.Exec();
}

Status MessageChunks::Rebuild(int64_t key, int64_t through) {
  Status s;
  if (!rebuild_.prepared()) {
    s = db_->Prepare(
        "SELECT seq, id FROM messages WHERE conv_key = ?1 AND id <= ?2"
        " ORDER BY seq",
        &rebuild_);
    if (!s.ok()) return s;
  }
  std::vector<IndexEntry> entries;
  rebuild_.Bind(1, key);
  rebuild_.Bind(2, through);
  while (rebuild_.Step(&s)) {
    if (IndexableSeq(rebuild_.Int(0)))
      entries.push_back({rebuild_.Int(0), rebuild_.Int(1)});
  }
  rebuild_.Reset();
  if (s.ok()) s = RemoveAll(key);
  if (s.ok()) s = Add(key, entries);
  return s;
}

Status PackMessageIndex(Db* db) {
  // Version 12's layout: every run a message_chunks row (message_tails
  // comes with version 13, which keeps these rows as they are).
  Stmt read, insert;
  Status s = PrepareChunkInsert(db, &insert);
  if (s.ok()) {
    s = db->Prepare(
        "SELECT conv_key, seq, message_id FROM message_index"
        " ORDER BY conv_key, seq",
        &read);
  }
  if (!s.ok()) return s;
  std::string buf;
  int64_t key = 0;
  std::vector<IndexEntry> entries;
  auto flush = [&] {
    const std::span<const IndexEntry> all(entries);
    for (size_t i = 0; s.ok() && i < all.size(); i += kMaxChunkEntries) {
      s = InsertRun(&insert, key,
                    all.subspan(i, std::min(kMaxChunkEntries, all.size() - i)),
                    &buf);
    }
    entries.clear();
  };
  while (s.ok() && read.Step(&s)) {
    if (read.Int(0) != key) {
      flush();
      key = read.Int(0);
    }
    entries.push_back({read.Int(1), read.Int(2)});
  }
  read.Reset();
  if (s.ok()) flush();
  if (s.ok()) s = db->Exec("DROP TABLE message_index");
  return s;
}

}  // namespace convstore::internal
