// Copyright 2026 The convstore Authors.
//
// WriteOp: one acknowledged write on its way from the API to the database.
// Every record kind the store persists (messages, conversation deletes,
// analytics and cache entries, audit records, API keys) is one
// alternative of WriteOp::payload, so all of them share one queue, one LSN
// order and one batch commit.

#ifndef CONVSTORE_SRC_WRITE_OP_H_
#define CONVSTORE_SRC_WRITE_OP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "analytics/analytics_op.h"
#include "audit/audit_op.h"
#include "cache/cache_op.h"
#include "convstore/types.h"
#include "keys/key_op.h"

namespace convstore::internal {

// What a backend's writer remembers about a conversation id it resolved
// (SqliteBackend: the conversation's key), kept with the id so that a batch
// finds it without a lookup by string. Only the writer thread of the store
// whose queue carries the id reads or writes it (the queue orders the
// appending thread's construction before it). `generation` names the
// writer's view of the file it came from; 0 is none.
struct IdMemo {
  int64_t key = 0;
  uint64_t generation = 0;
};

// An immutable conversation id that copies share. The cache entry makes one
// for all the appends to its conversation, so an Append copies a pointer
// instead of allocating the id on the caller's thread for the writer's
// thread to free (a malloc and a free that cross threads, per message).
class SharedId {
 public:
  SharedId() = default;  // null (reads as ""), without allocating
  // Implicit, so one-off ops (and tests) may pass a string.
  SharedId(std::string_view id)  // NOLINT(google-explicit-constructor)
      : rep_(std::make_shared<Rep>(id)) {}
  SharedId(const char* id)  // NOLINT(google-explicit-constructor)
      : SharedId(std::string_view(id)) {}
  SharedId(const std::string& id)  // NOLINT(google-explicit-constructor)
      : SharedId(std::string_view(id)) {}

  explicit operator bool() const { return rep_ != nullptr; }
  const std::string& str() const {
    return rep_ != nullptr ? rep_->id : Empty();
  }
  operator const std::string&() const {  // NOLINT(google-explicit-constructor)
    return str();
  }
  // The writer's memo for this id (see IdMemo), shared by the copies; null
  // for a null SharedId.
  IdMemo* memo() const { return rep_ != nullptr ? &rep_->memo : nullptr; }

  // What make_shared allocates for one id beside its control block (and
  // the text's own heap buffer once it outgrows the inline one).
  static constexpr size_t kRepBytes = sizeof(std::string) + sizeof(IdMemo);

 private:
  struct Rep {
    explicit Rep(std::string_view s) : id(s) {}
    const std::string id;
    IdMemo memo;
  };
  static_assert(sizeof(Rep) == kRepBytes, "kRepBytes is the size of Rep");
  static const std::string& Empty() {
    static const std::string* const empty = new std::string();
    return *empty;
  }
  std::shared_ptr<Rep> rep_;
};

// Append one message to a conversation. The message is shared with the
// in-memory cache (immutable) and the id with the cache entry, so enqueuing
// copies no content.
struct AppendMessageOp {
  SharedId conversation_id;
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
// A record kind much larger than a message append, held on the heap. A
// WriteOp is one slot of the write queue and of every batch, and a variant
// is as large as its largest alternative: inline, an analytics turn made
// every slot 576 bytes (150 MB of queue at the default 262,144 items, 38 MB
// of it preallocated). Boxed, a slot is 80 bytes and only the rarer kinds
// pay one allocation. Implicit from T, so `WritePayload(KeyOp{...})` reads
// as before; copies are deep.
template <typename T>
class Boxed {
 public:
  Boxed(T value)  // NOLINT(google-explicit-constructor): see above
      : p_(std::make_unique<T>(std::move(value))) {}
  Boxed(const Boxed& o) : p_(std::make_unique<T>(*o)) {}
  Boxed& operator=(const Boxed& o) {
    p_ = std::make_unique<T>(*o);
    return *this;
  }
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(Boxed&&) noexcept = default;

  const T& operator*() const { return *p_; }
  T& operator*() { return *p_; }
  const T* operator->() const { return p_.get(); }
  T* operator->() { return p_.get(); }

 private:
  std::unique_ptr<T> p_;  // null only once moved from
};

using WritePayload = std::variant<AppendMessageOp, DeleteConversationOp,
                                  PurgeMessagesOp, Boxed<AnalyticsOp>,
                                  Boxed<CacheOp>, Boxed<AuditOp>, Boxed<KeyOp>>;

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
// The queue's slot size: keep large record kinds Boxed.
static_assert(sizeof(WriteOp) <= 96, "WriteOp grew: box the large payload");
// The writer moves ops between its buffers where an exception would lose
// one (Writer::Pull, CommitIsolated).
static_assert(std::is_nothrow_move_constructible_v<WriteOp> &&
                  std::is_nothrow_move_assignable_v<WriteOp>,
              "WriteOp moves must not throw");

// Approximate heap bytes of a message: what the queue and cache count.
inline size_t MessageBytes(const Message& m) {
  return sizeof(Message) + m.content.size() + m.user_id.size() +
         m.tool_call_id.size() + m.tool_name.size() + m.metadata.size();
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_WRITE_OP_H_
