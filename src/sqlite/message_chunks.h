// Copyright 2026 The convstore Authors.
//
// MessageChunks: the packed message index (schema version 12). Table
// message_chunks holds each conversation's merged (seq, message id) pairs a
// run at a time: one row per run of up to kMaxChunkEntries pairs, keyed
// (conv_key, first_seq). A merge writes about one row per conversation it
// touches instead of one per message, so it dirties fewer pages and its
// B-tree inserts fall from one per message to one per run
// (docs/benchmarks.md, "A packed index, prototyped").
//
// The runs of one conversation never overlap in seq: Add rewrites the runs
// that new entries would overlap. So the run with the greatest
// first_seq <= s is the only one that can hold seq s, and a reader walking
// runs newest first can stop as soon as it has enough. Callers hold the
// connection's transaction: every method reads or writes inside it.
//
// Thread safety: used by one thread at a time, like the connection its
// statements are prepared on.

#ifndef CONVSTORE_SRC_SQLITE_MESSAGE_CHUNKS_H_
#define CONVSTORE_SRC_SQLITE_MESSAGE_CHUNKS_H_

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/status.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

// One message as the index knows it.
struct IndexEntry {
  int64_t seq = 0;
  int64_t id = 0;
};

// Pairs per row at most. A merge writes one row per conversation it
// touches, so with 10,000 interleaved conversations rows hold about 7 pairs
// of about 4 bytes each (docs/benchmarks.md, "The packed index, built"),
// and a cold History of the newest 20 reads three or four rows.
inline constexpr size_t kMaxChunkEntries = 128;

// A run's bytes: per pair, varint(seq - previous seq) (the first against
// first_seq, so 0) and zigzag varint(id - previous id) (the first against 0).
// `entries` must be non-empty with strictly rising seqs.
void EncodeChunk(std::span<const IndexEntry> entries, std::string* out);
// Appends the `n` pairs of one row to *out; Corruption if the bytes do not
// decode to exactly n pairs with rising seqs and positive ids.
Status DecodeChunk(int64_t conv_key, int64_t first_seq, int64_t n,
                   std::string_view bytes, std::vector<IndexEntry>* out);

class MessageChunks {
 public:
  // Prepares the reading statements on `db`, with `writer` the writing
  // ones too. `db` must outlive this object's use.
  Status Prepare(Db* db, bool writer);

  // Appends the entries with after < seq < before, newest first, at most
  // `limit` of them (0: all).
  Status Newest(int64_t key, int64_t after, int64_t before, size_t limit,
                std::vector<IndexEntry>* out);
  // Appends the entries with seq <= up_to, oldest first.
  Status UpTo(int64_t key, int64_t up_to, std::vector<IndexEntry>* out);
  // The message id indexed at (key, seq), or 0.
  Status Find(int64_t key, int64_t seq, int64_t* id);

  // Writer only. Adds one conversation's entries (strictly rising seqs).
  // Entries above every indexed seq of the conversation (the usual case)
  // become new rows; otherwise the rows they overlap are rewritten with
  // them. A seq already indexed is refused with InvalidArgument.
  Status Add(int64_t key, std::span<const IndexEntry> entries);
  // Writer only. Removes the entries with these seqs; absent ones are
  // ignored.
  Status Remove(int64_t key, std::vector<int64_t> seqs);
  // Writer only. Removes every entry of the conversation.
  Status RemoveAll(int64_t key);
  // Writer only. Replaces the conversation's rows with the pairs of its
  // messages with id <= `through` (the merged ones), read from `messages`:
  // the repair for rows that do not decode. A full scan of `messages`
  // (which has no conv_key index).
  Status Rebuild(int64_t key, int64_t through);
  // Forgets the cached highest seqs (after a rollback, or when another
  // process may have written).
  void Forget() { top_.clear(); }

 private:
  // Decodes the row `st` is on (columns first_seq, n, entries) into *run,
  // replacing its contents.
  static Status DecodeRow(const Stmt& st, int64_t key,
                          std::vector<IndexEntry>* run);
  // Reads the newest row with first_seq < before into *run (empty if
  // none); *first is its first_seq.
  Status LastRunBelow(int64_t key, int64_t before, int64_t* first,
                      std::vector<IndexEntry>* run);
  // Writes `entries` as rows of at most kMaxChunkEntries pairs.
  Status Write(int64_t key, std::span<const IndexEntry> entries);
  Status Rewrite(int64_t key, int64_t first,
                 std::span<const IndexEntry> entries);

  Stmt desc_;  // rows with first_seq < ?2, newest first
  Stmt asc_;   // rows with first_seq <= ?2, oldest first
  Stmt insert_, erase_, erase_all_;
  Stmt rebuild_;  // prepared on first use
  Db* db_ = nullptr;
  std::string buf_;
  // conv_key -> an upper bound of its highest indexed seq (exact after
  // Add; a Remove may leave it high, which costs Add one look, never a
  // wrong answer). Bounded like the writer's other per-conversation caches.
  absl::flat_hash_map<int64_t, int64_t> top_;
  static constexpr size_t kMaxCachedTops = 1 << 20;
};

// Migration 12's backfill: packs message_index into message_chunks and
// drops it.
Status PackMessageIndex(Db* db);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_MESSAGE_CHUNKS_H_
