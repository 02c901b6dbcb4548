// Copyright 2026 The convstore Authors.
//
// The column lists of `messages` and `conversations` rows as the backend
// reads them, and the functions that turn a result row into a Message or a
// ConversationInfo. Shared by the backend's read paths.
//
// Thread safety: stateless.

#ifndef CONVSTORE_SRC_SQLITE_MESSAGE_ROWS_H_
#define CONVSTORE_SRC_SQLITE_MESSAGE_ROWS_H_

#include <cstdint>

#include "convstore/status.h"
#include "convstore/types.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

inline constexpr const char* kMessageColumns =
    "seq, role, content, user_id, tokens_in, tokens_out, tool_call_id, "
    "tool_name, metadata, created_at_us";

inline constexpr const char* kConversationColumns =
    "conversation_id, user_id, message_count, tokens_in, tokens_out, "
    "first_at_us, last_at_us, last_seq";

// Reads kMessageColumns starting at column `c`.
MessagePtr ReadMessageAt(const Stmt& st, int c);
inline MessagePtr ReadMessage(const Stmt& st) { return ReadMessageAt(st, 0); }

// Reads kConversationColumns starting at column `first_col`.
ConversationInfo ReadInfo(const Stmt& st, int first_col);

// The largest count, token sum or seq a conversation's summary can reach:
// 2^62, a billion messages a second for 146 years.
inline constexpr int64_t kMaxSummaryValue = int64_t{1} << 62;

// Corruption unless the summary of conversation `info` (with the seq of its
// first system message, 0 if none) is one the store could have written:
// the message count and seqs from 0 to kMaxSummaryValue, token sums not
// negative, the system message's seq at most last_seq. The store forms
// `last_seq + 1` and sums from a loaded summary; a file edited or damaged
// outside the store can hold any integer, and refusing such a summary here
// keeps that arithmetic from overflowing.
Status CheckSummary(const ConversationInfo& info, int64_t first_system_seq);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_MESSAGE_ROWS_H_
