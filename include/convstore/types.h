// Copyright 2026 The convstore Authors.
//
// The records the store keeps and the small per-call option structs.
//
// Thread safety: plain values. A MessagePtr points at an immutable Message
// that stays valid for as long as the caller holds the pointer, whatever the
// store does meanwhile (eviction, deletion, Close).

#ifndef CONVSTORE_TYPES_H_
#define CONVSTORE_TYPES_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace convstore {

// Who wrote a message. Stored as a small integer; the numbers never change.
enum class Role : int {
  kSystem = 0,
  kUser = 1,
  kAssistant = 2,
  kTool = 3,
};

// "system", "user", "assistant", "tool".
const char* RoleName(Role role);
// Parses the names above; returns false for anything else.
bool ParseRole(const std::string& name, Role* out);

// One conversation turn. On Append the store reads the input fields and fills
// the `seq` and (if zero) `created_at_us` fields itself.
struct Message {
  Role role = Role::kUser;
  // UTF-8 text. Validated on Append; limited by Options::max_content_bytes.
  std::string content{};
  // Who sent it (may be empty). The first non-empty user_id appended to a
  // conversation becomes the conversation's owner in ListConversations.
  std::string user_id{};
  // Token counts as your model reported them. A message's size for
  // HistoryOptions::token_budget is tokens_in + tokens_out, so record prompt
  // side messages in tokens_in and generated ones in tokens_out. Must be
  // between 0 and Options::max_tokens_per_message.
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  // Tool calls. An assistant message that calls a tool sets tool_call_id (and
  // usually tool_name); the role=kTool message carrying the result sets the
  // same tool_call_id. History keeps role=kTool messages together with the
  // message directly before them (the assistant message that made the call
  // when you append in the usual order); it goes by position and role, not
  // by matching tool_call_id.
  std::string tool_call_id{};
  std::string tool_name{};
  // Optional metadata: empty, or a JSON object as text (validated on Append,
  // stored verbatim).
  std::string metadata{};
  // Microseconds since the Unix epoch. 0 on Append means "now".
  int64_t created_at_us = 0;
  // Per-conversation sequence number, 1, 2, 3, ... in append order. Set by
  // the store; ignored on Append.
  int64_t seq = 0;

  int64_t tokens() const { return tokens_in + tokens_out; }
};

using MessagePtr = std::shared_ptr<const Message>;

// What Append hands back.
struct AppendResult {
  // The message's per-conversation sequence number (1 for the first message).
  int64_t seq = 0;
  // The global write sequence number of this write (log sequence number).
  // Pass it to Store::WaitDurable to wait for this one write.
  uint64_t lsn = 0;
};

// Per-call options for Append.
struct AppendOptions {
  // If true, Append returns only once this write is committed to the
  // database (as WaitDurable(lsn, sync_timeout) would), so a process crash
  // cannot lose it. If that wait fails (DeadlineExceeded, or the writer's
  // error), the message is nonetheless in memory and queued - visible to
  // History and still to be written - and the Status message names its seq
  // and lsn. Costs one batch commit of latency (about
  // Options::max_flush_delay at most, usually much less under load).
  bool sync = false;
  // How long a sync Append waits for durability before it returns
  // DeadlineExceeded (the write stays queued and will still be written).
  std::chrono::milliseconds sync_timeout{10000};
};

// Per-call options for History. Filters apply in this order: after_seq,
// then limit (oldest first) or last_n (newest first), then token_budget.
struct HistoryOptions {
  // Only messages with seq > after_seq (forward paging: pass the last seq
  // you have seen). 0 means from the beginning.
  int64_t after_seq = 0;
  // If non-zero, at most this many of the OLDEST messages remaining (one
  // page when paging forward with after_seq). Cannot be combined with last_n.
  size_t limit = 0;
  // If non-zero, only the newest last_n messages (the usual prompt window).
  size_t last_n = 0;
  // If non-zero, the newest messages whose tokens() add up to at most this
  // budget. An assistant message and the tool results that follow it are kept
  // or dropped together, so the window never starts with an orphaned tool
  // result.
  int64_t token_budget = 0;
  // When last_n or token_budget cut the start of the conversation, keep the
  // conversation's first system message anyway, in front. It does not count
  // against last_n; its tokens do count against token_budget.
  bool pin_system = true;
  // Read from the database instead of memory (after the writes acknowledged
  // so far are durable: it implies a Flush of pending writes). Does not
  // change what the cache holds. Slower; meant for verification.
  bool from_storage = false;
};

// Summary of one conversation, as ListConversations returns it.
struct ConversationInfo {
  std::string conversation_id;
  std::string user_id;
  int64_t message_count = 0;
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  int64_t first_at_us = 0;  // created_at of the first message
  int64_t last_at_us = 0;   // created_at of the newest message
  int64_t last_seq = 0;
};

struct ListOptions {
  // Only conversations owned by this user; empty means all users.
  std::string user_id{};
  // Opaque cursor from a previous page's next_cursor; empty for the first.
  std::string cursor{};
  // Page size, 1..10000.
  size_t limit = 100;
};

struct ConversationPage {
  // Most recently active first.
  std::vector<ConversationInfo> conversations;
  // Pass as ListOptions::cursor to get the next page; empty when this is the
  // last page.
  std::string next_cursor;
};

// What Close reports.
struct CloseReport {
  // Writes committed to the database over the store's lifetime.
  uint64_t written = 0;
  // Writes acknowledged but not durable when Close gave up (0 on success).
  uint64_t remaining = 0;
  // Writes that could not be stored (rejected by the database).
  uint64_t failed = 0;
  // Every write with lsn <= last_durable_lsn is in the database.
  uint64_t last_durable_lsn = 0;
  // True if Close copied the write-ahead log into the database file and
  // truncated it to zero bytes: the WAL then holds no earlier copy of what
  // was deleted or pruned (docs/durability.md, "Erasure"). False when
  // another connection (a reader in another process, say) kept older
  // frames for longer than Options::busy_timeout: Close still returns OK,
  // since every write is in the database, and the copies stay in the WAL
  // until a later TruncateWal or a Close that truncates. Always false for a
  // read-only store, which never checkpoints. Default false.
  bool wal_truncated = false;
};

}  // namespace convstore

#endif  // CONVSTORE_TYPES_H_
