// Copyright 2026 The convstore Authors.
//
// The column lists of `messages` and `conversations` rows as the backend
// reads them, and the functions that turn a result row into a Message or a
// ConversationInfo. Shared by the backend's read paths.
//
// Thread safety: stateless.

#ifndef CONVSTORE_SRC_SQLITE_MESSAGE_ROWS_H_
#define CONVSTORE_SRC_SQLITE_MESSAGE_ROWS_H_

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

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_MESSAGE_ROWS_H_
