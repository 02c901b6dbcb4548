// Copyright 2026 The convstore Authors.

#include "sqlite/message_rows.h"

#include <algorithm>
#include <memory>
#include <string>

#include "validation.h"

namespace convstore::internal {

MessagePtr ReadMessageAt(const Stmt& st, int c) {
  auto m = std::make_shared<Message>();
  m->seq = st.Int(c + 0);
  m->role = static_cast<Role>(st.Int(c + 1));
  m->content = st.Text(c + 2);
  m->user_id = st.Text(c + 3);
  // Counts outside what Append accepts come only from a damaged file; held
  // to that range, sums over them (Message::tokens(), a token budget) stay
  // far from overflowing.
  m->tokens_in = std::clamp<int64_t>(st.Int(c + 4), 0, kMaxTokensPerMessage);
  m->tokens_out = std::clamp<int64_t>(st.Int(c + 5), 0, kMaxTokensPerMessage);
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

Status CheckSummary(const ConversationInfo& info, int64_t first_system_seq) {
  auto in_range = [](int64_t v) { return v >= 0 && v <= kMaxSummaryValue; };
  // Token sums only add (saturating), and valid ones can pass 2^62 (2^22
  // messages of 2^40 tokens): only their sign is checked.
  if (in_range(info.message_count) && info.tokens_in >= 0 &&
      info.tokens_out >= 0 && in_range(info.last_seq) &&
      first_system_seq >= 0 && first_system_seq <= info.last_seq) {
    return Status::OK();
  }
  return Status::Corruption(
      "conversation '" + info.conversation_id +
      "' has a summary the store cannot have written (message_count " +
      std::to_string(info.message_count) + ", tokens " +
      std::to_string(info.tokens_in) + "/" + std::to_string(info.tokens_out) +
      ", last_seq " + std::to_string(info.last_seq) + ", first system seq " +
      std::to_string(first_system_seq) + ")");
}

}  // namespace convstore::internal
