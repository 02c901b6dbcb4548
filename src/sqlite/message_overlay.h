// Copyright 2026 The convstore Authors.
//
// MessageOverlay: the in-memory index of the messages that the merged index
// (message_chunks) does not hold yet (docs/schema.md, version 9;
// docs/architecture.md, "Unmerged messages").
//
// The file keeps one watermark, store_meta 'merged_through_id': every
// message with id <= it is in the merged index. Message ids are never reused
// (store_meta 'last_message_id' is the highest ever assigned), so the
// messages above the watermark are a contiguous tail of `messages`. The
// overlay holds, per conv_key, the (seq, id) of that tail as far as this
// process knows it: it is rebuilt from `messages` at open, the writer adds
// each batch's rows after COMMIT, and drops merged ones after a merge.
//
// Thread safety: every method may be called from any thread; one mutex
// guards the state. Readers copy what they need (Get), so nothing returned
// refers into the map.
//
// Invariants:
//  1. base() <= top().
//  2. Complete: every message committed with base() < id <= top() has its
//     entry here (entries are never removed for deleted or purged rows; an
//     entry whose row is gone matches nothing, since ids are not reused).
//  3. Each conversation's entries are in increasing id order, which is
//     increasing seq order (within a conversation id order is seq order).

#ifndef CONVSTORE_SRC_SQLITE_MESSAGE_OVERLAY_H_
#define CONVSTORE_SRC_SQLITE_MESSAGE_OVERLAY_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mutex.h"
#include "sqlite/unmerged_summary.h"

namespace convstore::internal {

struct OverlayRow {
  int64_t conv_key = 0;
  int64_t seq = 0;
  int64_t id = 0;
  int64_t created_at_us = 0;
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  bool system = false;
  OverlayEntry entry() const {
    return {seq, id, created_at_us, tokens_in, tokens_out, system};
  }
};

class MessageOverlay {
 public:
  // What a reader gets: the coverage at the moment of the copy and the
  // entries of one conversation within a seq range, ascending.
  struct View {
    int64_t base = 0;
    int64_t top = 0;
    std::vector<OverlayEntry> entries;
  };

  MessageOverlay() = default;
  MessageOverlay(const MessageOverlay&) = delete;
  MessageOverlay& operator=(const MessageOverlay&) = delete;

  // Replaces everything: `rows` (ascending id) are every message with
  // base < id <= top.
  void Reset(int64_t base, int64_t top, std::span<const OverlayRow> rows);
  // Adds rows (ascending id, all above top()) and raises top() to `top`:
  // every message with old top < id <= `top` is among `rows`.
  void Add(std::span<const OverlayRow> rows, int64_t top);
  // After a merge that moved every id <= `through` into the merged index:
  // drops those entries; base() becomes `through` (top() at least that).
  void DropThrough(int64_t through);

  // Entries of `conv_key` with after_seq < seq < before_seq.
  View Get(int64_t conv_key, int64_t after_seq, int64_t before_seq) const;
  // Every entry of `conv_key`.
  std::vector<OverlayEntry> EntriesOf(int64_t conv_key) const;
  // The coverage at the moment of the copy and the conversations with an
  // entry whose id lies in (after_id, through_id], each with the summary of
  // those entries. In no particular order.
  struct KeySummary {
    int64_t conv_key = 0;
    UnmergedSummary summary;
  };
  struct KeysView {
    int64_t base = 0;
    int64_t top = 0;
    std::vector<KeySummary> keys;
  };
  KeysView KeysWithEntriesIn(int64_t after_id, int64_t through_id) const;
  // Entries grouped by conversation in increasing conv_key order: group i
  // is conv_keys[i] with entries [starts[i], starts[i + 1]) (starts has one
  // element more than conv_keys).
  struct Grouped {
    int64_t base = 0;  // the coverage at the moment of the copy
    int64_t top = 0;
    std::vector<int64_t> conv_keys;
    std::vector<size_t> starts;
    std::vector<OverlayEntry> entries;
    // Empties the groups, keeping the vectors' memory.
    void Clear();
    // Ends the group of `conv_key` with the entries added since the last
    // one; nothing if there are none.
    void Close(int64_t conv_key);
  };
  // Replaces *out with the coverage and every entry whose id lies in
  // (after_id, through_id], each group in id order, leaving out the
  // conversations in `skip`: what a merge indexes when no row was removed
  // since other than deleted conversations'. Reuses *out's memory, so a
  // merge that passes the same one each time maps no fresh pages.
  void EntriesIn(int64_t after_id, int64_t through_id,
                 const absl::flat_hash_set<int64_t>& skip, Grouped* out) const;

  int64_t base() const;
  int64_t top() const;
  // Entries held, including those whose rows were deleted since.
  size_t size() const;
  // Conversations with an entry held.
  size_t conversations() const;

 private:
  mutable Mutex mu_;
  int64_t base_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t top_ ABSL_GUARDED_BY(mu_) = 0;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, std::vector<OverlayEntry>> by_conv_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_MESSAGE_OVERLAY_H_
