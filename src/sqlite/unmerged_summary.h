// Copyright 2026 The convstore Authors.
//
// OverlayEntry: one message above the merge watermark, as the overlay and
// the reads hold it. UnmergedSummary: what a conversation's messages above
// its row's summarized_through_id add to the summary columns of its row
// (schema version 11; docs/architecture.md, "Summaries folded at merge").
//
// Batches no longer update the conversations row: the merge folds each
// conversation's unmerged messages into it, and a reader adds the rest
// from the overlay or from `messages`. The fields mirror the row's
// additive columns; Add and Merge take entries and parts in any order.
//
// Thread safety: a value type; no shared state.

#ifndef CONVSTORE_SRC_SQLITE_UNMERGED_SUMMARY_H_
#define CONVSTORE_SRC_SQLITE_UNMERGED_SUMMARY_H_

#include <algorithm>
#include <cstdint>
#include <limits>

#include "convstore/types.h"
#include "saturating.h"

namespace convstore::internal {

struct OverlayEntry {
  int64_t seq = 0;
  int64_t id = 0;
  int64_t created_at_us = 0;
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  bool system = false;  // role is Role::kSystem
};

struct UnmergedSummary {
  int64_t count = 0;
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  // Of the message with the lowest id (the first appended).
  int64_t first_id = std::numeric_limits<int64_t>::max();
  int64_t first_at_us = 0;
  int64_t last_at_us = 0;  // the largest created_at_us
  int64_t last_seq = 0;
  // The lowest seq of a system message, 0 if none (within a conversation
  // seq order is id order, so this is the first one appended).
  int64_t first_system_seq = 0;

  void Add(const OverlayEntry& e) {
    UnmergedSummary one;
    one.count = 1;
    one.tokens_in = e.tokens_in;
    one.tokens_out = e.tokens_out;
    one.first_id = e.id;
    one.first_at_us = e.created_at_us;
    one.last_at_us = e.created_at_us;
    one.last_seq = e.seq;
    one.first_system_seq = e.system ? e.seq : 0;
    Merge(one);
  }

  void Merge(const UnmergedSummary& o) {
    if (o.count == 0) return;
    if (count == 0) {
      *this = o;
      return;
    }
    count = SatAdd(count, o.count);
    tokens_in = SatAdd(tokens_in, o.tokens_in);
    tokens_out = SatAdd(tokens_out, o.tokens_out);
    if (o.first_id < first_id) {
      first_id = o.first_id;
      first_at_us = o.first_at_us;
    }
    last_at_us = std::max(last_at_us, o.last_at_us);
    last_seq = std::max(last_seq, o.last_seq);
    if (o.first_system_seq != 0 &&
        (first_system_seq == 0 || o.first_system_seq < first_system_seq)) {
      first_system_seq = o.first_system_seq;
    }
  }

  // The row's summary (info, first_system_seq) with these messages added,
  // as the merge's fold writes it.
  void AddTo(ConversationInfo* info, int64_t* row_first_system_seq) const {
    if (count == 0) return;
    // The row's sums come from the file (see saturating.h).
    info->message_count = SatAdd(info->message_count, count);
    info->tokens_in = SatAdd(info->tokens_in, tokens_in);
    info->tokens_out = SatAdd(info->tokens_out, tokens_out);
    if (info->first_at_us == 0) info->first_at_us = first_at_us;
    info->last_at_us = std::max(info->last_at_us, last_at_us);
    info->last_seq = std::max(info->last_seq, last_seq);
    if (*row_first_system_seq == 0) *row_first_system_seq = first_system_seq;
  }
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_UNMERGED_SUMMARY_H_
