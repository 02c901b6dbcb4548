// Copyright 2026 The convstore Authors.
//
// Retention of conversation messages: Store::PruneMessages removes stored
// messages older than a maximum age and/or beyond a maximum count per
// conversation, in small batches through the ordered write path.
//
// What a run guarantees:
//  * Only messages that were durable when the run started are considered;
//    a message appended during the run is never removed by it.
//  * Within a conversation, what remains is the newest part (plus the
//    conversation's first system message when keep_first_system is set),
//    unless created_at times are out of order (set by the caller, or a
//    clock that stepped back): the age rule removes old messages wherever
//    they sit. History and after_seq paging work across such gaps, and the
//    count rule keeps the newest N messages stored, not the newest N seqs.
//  * Each batch is one short transaction of the writer, so appends and
//    reads go on between batches.
//  * The conversation summaries (ListConversations: message_count and token
//    totals) keep counting every message ever appended; Stats counts the
//    messages actually stored.
//
// Thread safety: plain values; safe to copy between threads.

#ifndef CONVSTORE_RETENTION_H_
#define CONVSTORE_RETENTION_H_

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace convstore {

struct MessageRetention {
  // Remove messages whose created_at is older than this. 0: no age limit.
  // Cost: reads every stored message row once (a full scan of the
  // messages table, on a reader connection). Default 0.
  std::chrono::hours max_age{0};
  // Keep at most this many of the newest messages of each conversation on
  // disk. 0: no count limit. Cost: one index range read per conversation.
  // Default 0.
  int64_t max_messages_per_conversation = 0;
  // Keep each conversation's first system message (its prompt), whatever
  // its age or position. Default true.
  bool keep_first_system = true;
  // Messages removed per write op (one writer transaction each). Larger
  // batches finish sooner but hold the writer longer. 1..100000; default
  // 2000.
  size_t batch_rows = 2000;
};

struct RetentionReport {
  // Messages removed from the database.
  int64_t messages_removed = 0;
  // Conversations that lost at least one message.
  int64_t conversations_touched = 0;
  // Write ops (transactions) the removal took.
  int64_t batches = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_RETENTION_H_
