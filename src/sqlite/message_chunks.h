// Copyright 2026 The convstore Authors.
//
// MessageChunks: the packed message index (schema versions 12 and 13). It
// holds each conversation's merged (seq, message id) pairs a run at a time,
// one row per run of up to kMaxChunkEntries pairs:
//  - message_tails: the conversation's newest run while it is not full,
//    one row keyed conv_key. A merge rewrites it with the new pairs.
//  - message_chunks: the older runs, keyed (conv_key, first_seq). A run
//    moves here once it holds RunLength(conv_key) pairs and is then
//    written again only by a purge, a delete, a rebuild, or a merge whose
//    pairs land below it (another process appended in between).
// So a merge rewrites the tails, a small table whose pages sit together,
// and inserts one run per 64-127 messages into the large one,
// instead of one row per conversation scattered over the large table's
// pages (docs/benchmarks.md, "Tails apart").
//
// The runs of one conversation never overlap in seq, and the tail's seqs
// lie above every message_chunks row's: Add rewrites the runs that new
// entries would overlap. So the run with the greatest first_seq <= s is the
// only one that can hold seq s, and a reader walking runs newest first
// (the tail, then message_chunks) can stop as soon as it has enough.
// Callers hold the connection's transaction: every method reads or writes
// inside it.
//
// Thread safety: used by one thread at a time, like the connection its
// statements are prepared on.

#ifndef CONVSTORE_SRC_SQLITE_MESSAGE_CHUNKS_H_
#define CONVSTORE_SRC_SQLITE_MESSAGE_CHUNKS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/status.h"
#include "sqlite/message_rows.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

// One message as the index knows it.
struct IndexEntry {
  int64_t seq = 0;
  int64_t id = 0;
};

// The seqs the index holds: 1 to 2^62 (a conversation's summary can reach
// no further, message_rows.h). A message row with another seq is damage
// (the store numbers from 1); callers leave it out, since a row encoded
// with it would fail every later read and rewrite of the conversation's
// index, and with them the writer's batches.
inline constexpr int64_t kMaxIndexedSeq = kMaxSummaryValue;
inline bool IndexableSeq(int64_t seq) {
  return seq >= 1 && seq <= kMaxIndexedSeq;
}

// Pairs per row at most. With 10,000 interleaved conversations a pair
// takes about 4 bytes.
inline constexpr size_t kMaxChunkEntries = 128;

// The pairs of a full run of conversation `key`: a tail that reaches it
// moves to message_chunks. 64 to 127, by key, so that conversations that
// grow in step (interleaved appends, a bulk import) fill their tails in
// different merges rather than all in one. A cold History of the newest 20
// reads the tail and at most one row more where the rows are full runs.
// Version 12 wrote about one row of ~7 pairs per conversation per merge
// (docs/benchmarks.md, "The packed index, built"); those rows stay.
inline size_t RunLength(int64_t key) {
  constexpr uint64_t kHalf = kMaxChunkEntries / 2;
  return static_cast<size_t>(kHalf + static_cast<uint64_t>(key) % kHalf);
}

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
  // Appends the entries with after < seq <= up_to, oldest first, at most
  // `limit` of them (0: all). Reads every row up to the last one it takes
  // (rows before `after` too: the caller keeps those few, as retention's
  // slices do, where the entries before `after` are gone or about to go).
  Status Range(int64_t key, int64_t after, int64_t up_to, size_t limit,
               std::vector<IndexEntry>* out);
  // The message id indexed at (key, seq), or 0.
  Status Find(int64_t key, int64_t seq, int64_t* id);

  // Writer only. Adds one conversation's entries (strictly rising seqs).
  // Entries above every indexed seq of the conversation (the usual case)
  // join the tail, whose full runs move to message_chunks; otherwise the
  // tail and the rows they overlap are rewritten with them. A seq already
  // indexed is refused with InvalidArgument.
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

 private:
  // Decodes the row `st` is on (columns first_seq, n, entries) into *run,
  // replacing its contents.
  static Status DecodeRow(const Stmt& st, int64_t key,
                          std::vector<IndexEntry>* run);
  // Reads the conversation's tail into *run (empty if none); *first is its
  // first_seq, or the greatest int64_t if there is none.
  Status Tail(int64_t key, int64_t* first, std::vector<IndexEntry>* run);
  // Reads the newest message_chunks row with first_seq < before into *run
  // (empty if none); *first is its first_seq.
  Status LastRunBelow(int64_t key, int64_t before, int64_t* first,
                      std::vector<IndexEntry>* run);
  // Writes `entries`, which lie above every message_chunks row of the
  // conversation, as full message_chunks rows and a tail of the rest;
  // `had_tail`: a tail row exists that the rest replaces (or is erased).
  Status Write(int64_t key, std::span<const IndexEntry> entries, bool had_tail);

  Stmt desc_;  // message_chunks rows with first_seq < ?2, newest first
  Stmt asc_;   // message_chunks rows with first_seq <= ?2, oldest first
  Stmt tail_get_;
  Stmt insert_, erase_, erase_all_, tail_put_, tail_erase_;
  Stmt rebuild_;  // prepared on first use
  Db* db_ = nullptr;
  std::string buf_;
};

// Migration 12's backfill: packs message_index into message_chunks rows of
// up to kMaxChunkEntries pairs (version 12's layout, which version 13
// reads as is) and drops it.
Status PackMessageIndex(Db* db);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_MESSAGE_CHUNKS_H_
