// Copyright 2026 The convstore Authors.

#include "sqlite/message_rows.h"

#include <memory>

namespace convstore::internal {

MessagePtr ReadMessageAt(const Stmt& st, int c) {
  auto m = std::make_shared<Message>();
  m->seq = st.Int(c + 0);
  m->role = static_cast<Role>(st.Int(c + 1));
  m->content = st.Text(c + 2);
  m->user_id = st.Text(c + 3);
  m->tokens_in = st.Int(c + 4);
  m->tokens_out = st.Int(c + 5);
  m->tool_call_id = st.Text(c + 6);
  m->tool_name = st.Text(c + 7);
  m->metadata = st.Text(c + 8);
  m->created_at_us = st.Int(c + 9);
  return m;
}

ConversationInfo ReadInfo(const Stmt& st, int first_col) {
  ConversationInfo info;
  info.conversation_id = st.Text(first_col + 0);
  info.user_id = st.Text(first_col + 1);
  info.message_count = st.Int(first_col + 2);
  info.tokens_in = st.Int(first_col + 3);
  info.tokens_out = st.Int(first_col + 4);
  info.first_at_us = st.Int(first_col + 5);
  info.last_at_us = st.Int(first_col + 6);
  info.last_seq = st.Int(first_col + 7);
  return info;
}

}  // namespace convstore::internal
