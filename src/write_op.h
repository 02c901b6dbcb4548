// Copyright 2026 The convstore Authors.
//
// WriteOp: one acknowledged write on its way from the API to the database.
// Every record kind the store persists (messages, conversation deletes,
// analytics and cache entries, audit records, API keys) is one
// alternative of WriteOp::payload, so all of them share one queue, one LSN
// order and one batch commit.

#ifndef CONVSTORE_SRC_WRITE_OP_H_
#define CONVSTORE_SRC_WRITE_OP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "analytics/analytics_op.h"
#include "audit/audit_op.h"
#include "cache/cache_op.h"
#include "convstore/types.h"
#include "keys/key_op.h"

namespace convstore::internal {

// Append one message to a conversation. The message is shared with the
// in-memory cache (immutable), so enqueuing copies no content.
struct AppendMessageOp {
  std::string conversation_id;
  MessagePtr message;
};

// Remove a conversation and all its messages.
struct DeleteConversationOp {
  std::string conversation_id;
  // The "conversation.delete" audit record, linked onto the audit chain in
  // the same transaction as the delete (so the two commit, or are set
  // aside, together). Null: not audited. Immutable once queued.
  std::shared_ptr<const AuditAppend> audit = nullptr;
};

// A stored message as the backend names it (ids the backend chose, opaque
// to the engine), so a retention run can remove exactly the rows it chose.
struct StoredMessageRef {
  int64_t row_id = 0;
  int64_t conversation_key = 0;
  int64_t seq = 0;
};

// Remove stored messages chosen by a retention run (retention.h). A row
// that no longer matches all three fields (its conversation was deleted
// meanwhile) is skipped.
struct PurgeMessagesOp {
  std::vector<StoredMessageRef> rows;
};

// Every record kind the engine persists. A new kind adds its op struct
// (in its own header) to this list and a branch to each backend's Apply.
using WritePayload =
    std::variant<AppendMessageOp, DeleteConversationOp, PurgeMessagesOp,
                 AnalyticsOp, CacheOp, AuditOp, KeyOp>;

struct WriteOp {
  // Global write sequence number; the writer commits strictly in LSN order.
  uint64_t lsn = 0;
  // Monotonic time of acknowledgement, for enqueue-to-durable latency and
  // batch age.
  int64_t enqueued_mono_us = 0;
  // Bytes this op holds against the queue's byte bound.
  size_t bytes = 0;
  WritePayload payload;
};

// Approximate heap bytes of a message: what the queue and cache count.
inline size_t MessageBytes(const Message& m) {
  return sizeof(Message) + m.content.size() + m.user_id.size() +
         m.tool_call_id.size() + m.tool_name.size() + m.metadata.size();
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_WRITE_OP_H_
