// Copyright 2026 The convstore Authors.
//
// Store: a conversation memory for AI agents. Reads are answered from RAM;
// writes return at once and reach SQLite in batches on a background thread.
//
//   convstore::Options options;
//   options.path = "agent.db";
//   auto store = convstore::Store::Open(options);
//   if (!store.ok()) return fail(store.status());
//   convstore::Message m;
//   m.role = convstore::Role::kUser;
//   m.content = "hello";
//   auto r = (*store)->Append("conv-1", m);
//   auto window = (*store)->History("conv-1", {.last_n = 20});
//   convstore::Status s = (*store)->Close().status();
//
// DURABILITY CONTRACT (full text and tests: docs/durability.md)
//  * Append returns once the write is in memory and queued. Its history is
//    visible to every later History call at once, from any thread.
//  * A write is durable (committed to SQLite) once Flush() returns OK after
//    it, WaitDurable(lsn) returns OK, a sync Append returns OK, or Close()
//    returns OK.
//  * Process crash (kill -9): durable writes survive; writes not yet durable
//    are lost - at most the writes of the last max_flush_delay (default
//    50 ms) plus the batch being committed, and never more than the queue
//    bound. What survives of a conversation is always a gap-free prefix of
//    what was appended, in order.
//  * Power loss: with SyncMode::kFull as a crash; with kNormal (default) the
//    last commits before the loss may also roll back, the file stays valid.
//  * Order: per conversation, appends and deletes reach the database in the
//    order they were acknowledged; a queued append never resurrects a
//    deleted conversation.
//  * Durability classes (Options::durability): messages batched (as above),
//    audit and key changes sync (committed before the call returns), cache
//    entries best-effort (shed first, once the queue is 3/4 full; counted).
//  * Failures: busy, I/O errors and disk full are retried with backoff;
//    writes stay in memory (within the queue bound). Past retry_budget,
//    Health/Flush/Close/GetStats report a sticky error until a commit
//    succeeds. A record the database refuses for good is not dropped: it
//    becomes a dead letter (DeadLetters(), Stats::dead_letters).
//
// Thread safety: every method may be called from any number of threads at
// once. Close() may be called once; calls after (or during) it return
// FailedPrecondition, except Flush and WaitDurable, which still say whether
// the writes they cover were made durable (see there), and GetStats and
// Health. The destructor must not race other calls.

#ifndef CONVSTORE_STORE_H_
#define CONVSTORE_STORE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "convstore/analytics.h"
#include "convstore/audit.h"
#include "convstore/cache.h"
#include "convstore/dead_letter.h"
#include "convstore/keys.h"
#include "convstore/options.h"
#include "convstore/retention.h"
#include "convstore/stats.h"
#include "convstore/status.h"
#include "convstore/types.h"

namespace convstore {

class Store {
 public:
  // Opens (creating if allowed) the database at options.path, applies schema
  // migrations, warms the cache and starts the background writer. Fails with
  // NotSupported for a file from a newer convstore, Corruption for a file
  // that is not a (healthy) convstore database, IOError when the path cannot
  // be opened or written.
  static StatusOr<std::unique_ptr<Store>> Open(const Options& options);

  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Best-effort Close(): drains and commits what it can, logs the outcome.
  // Call Close() yourself to learn whether everything was written.
  virtual ~Store() = default;

  // Appends `message` to the conversation (created on first append) and
  // returns its seq and LSN. Cheap: validates, updates memory, enqueues; it
  // does not wait for the disk unless options.sync is set. Fails with
  // InvalidArgument for bad input (nothing written), ResourceExhausted when
  // the write queue stays full for Options::queue_full_wait, and
  // FailedPrecondition after Close.
  //
  // `message` is taken by value: Append(id, std::move(m)) hands its strings
  // over without copying them (one allocation and copy fewer per call);
  // Append(id, m) copies m and leaves it as it was. A moved-from message is
  // left valid but unspecified, even when Append fails.
  virtual StatusOr<AppendResult> Append(std::string_view conversation_id,
                                        Message message,
                                        const AppendOptions& options = {}) = 0;

  // Messages of the conversation, oldest first, filtered by `options`. A
  // conversation that does not exist (or was deleted) has no messages: the
  // result is empty, not an error. Served from memory when cached; otherwise
  // read from the database and cached.
  virtual StatusOr<std::vector<MessagePtr>> History(
      std::string_view conversation_id, const HistoryOptions& options = {}) = 0;

  // One page of conversation summaries, most recently active first. Includes
  // writes not yet durable. Never reads message content.
  virtual StatusOr<ConversationPage> ListConversations(
      const ListOptions& options = {}) = 0;

  // Deletes the conversation from memory at once and from disk through the
  // ordered write path. Returns the LSN of the delete (usable with
  // WaitDurable). Deleting a conversation that does not exist is OK. The
  // delete carries a "conversation.delete" audit record (audit.h), committed
  // in the same transaction as the delete, which also removes the
  // conversation's dead letters from the table (not from the fallback
  // file). Deleted bytes are zeroed in the file; copies in the WAL last
  // until it is truncated, by TruncateWal or by Close (see
  // CloseReport::wal_truncated; docs/durability.md, "Erasure").
  virtual StatusOr<uint64_t> DeleteConversation(
      std::string_view conversation_id) = 0;

  // Returns OK once every write acknowledged before the call is committed.
  // DeadlineExceeded if that takes longer than `timeout`; the sticky
  // background error if the writer is failing. During and after Close it
  // answers the same question: OK if Close committed every write
  // acknowledged, FailedPrecondition if it gave up on some.
  virtual Status Flush(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) = 0;

  // Returns OK once the write with this LSN (and every earlier one) is
  // committed. Same errors as Flush; InvalidArgument for an LSN not handed
  // out yet. Also during and after Close, so that a caller whose write
  // raced a shutdown learns whether it is durable: OK if
  // lsn <= CloseReport::last_durable_lsn (during Close it waits, up to
  // `timeout`, for the drain to commit it), else FailedPrecondition saying
  // that the store closed before the write was made durable (it is lost,
  // as after a crash).
  virtual Status WaitDurable(uint64_t lsn, std::chrono::milliseconds timeout =
                                               std::chrono::seconds(30)) = 0;

  // Copies the write-ahead log into the database file and truncates the
  // log to zero bytes. After DeleteConversation, PruneMessages or
  // Analytics::DeleteSession have committed, the WAL may still hold earlier
  // copies of what they removed; once this returns OK it holds none
  // (docs/durability.md, "Erasure"), without closing the store. Waits up to
  // `timeout` for a transaction in progress and for readers (of this or
  // another process) of older frames; Unavailable if they still hold the
  // WAL then (nothing is lost; call again). It tries in slices of at most
  // 100 ms (a quarter of busy_timeout) a slice apart, holding the write
  // lock only during a slice, so the writer's commits get through between
  // them. The wait for one of the store's reader connections (all of
  // Options::read_connections busy) counts against `timeout` too.
  // InvalidArgument for a negative timeout, FailedPrecondition after Close
  // or on a read-only store. A Close called meanwhile waits for it to
  // return (so for at most `timeout`) before its own checkpoint.
  virtual Status TruncateWal(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) = 0;

  // Stops taking calls, waits for the calls already inside (a sync Append
  // up to its sync_timeout, a TruncateWal up to its timeout, a read in
  // progress: a History with from_storage up to its 30 s Flush, a
  // PruneMessages run up to its first Flush (30 s) and the batch it is
  // committing), drains the queue, commits, checkpoints and truncates the
  // WAL, closes the database. Returns the report, or the error that kept
  // some writes from being committed (they are counted in `remaining`; as
  // after a crash, they are lost). Waits at most `timeout` for the drain.
  // A WAL another connection keeps from being truncated is not an error:
  // the report says so (CloseReport::wal_truncated), which matters after
  // an erasure.
  virtual StatusOr<CloseReport> Close(
      std::chrono::milliseconds timeout = std::chrono::seconds(60)) = 0;

  // The newest `limit` (1..10000) dead letters - writes the database
  // refused for good and the writer set aside (dead_letter.h) - newest
  // first, from the dead_letters table. Ones that went to the
  // `<path>.deadletter.jsonl` file (when the table could not take them) are
  // only in that file.
  virtual StatusOr<std::vector<DeadLetter>> DeadLetters(size_t limit = 100) = 0;

  // Applies `retention` (retention.h) to the stored messages: removes what
  // it selects in batches through the ordered write path, each committed
  // before the next, and drops the same messages from memory. Safe while
  // the store is in use. InvalidArgument for a negative age or count or a
  // batch size out of range; the writer's error if a batch cannot commit
  // (batches already committed stay removed).
  virtual StatusOr<RetentionReport> PruneMessages(
      const MessageRetention& retention) = 0;

  // A consistent snapshot of counters; see stats.h.
  virtual Stats GetStats() = 0;

  // OK while the writer commits normally; otherwise the sticky background
  // error (the store keeps retrying and clears it when a commit succeeds).
  virtual Status Health() = 0;

  // Voice-agent session analytics recorded through this store's writer
  // (analytics.h). Lives as long as the store.
  virtual Analytics& analytics() = 0;

  // The namespaced key-value cache with TTL kept by this store (cache.h):
  // in memory, persisted write-behind, reloaded on Open. Lives as long as
  // the store.
  virtual Cache& cache() = 0;

  // The tamper-evident audit log kept by this store (audit.h): Record,
  // Query, Verify, Prune. Deletes and retention runs are recorded in it
  // automatically. Lives as long as the store.
  virtual AuditLog& audit() = 0;
  // The API keys kept by this store (keys.h): all in memory, changes
  // committed before the call returns, usage written behind. Lives as long
  // as the store.
  virtual Keys& keys() = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_STORE_H_
