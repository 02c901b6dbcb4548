// Copyright 2026 The convstore Authors.
//
// SqliteBackend: StorageBackend on one SQLite file in WAL mode.
//
// One writer connection (used only by the background writer thread) and a
// small pool of reader connections (any thread). WAL lets readers run while
// the writer commits; each read runs in its own read transaction, so it sees
// whole batches only.
//
// The messages above the merge watermark are indexed in memory
// (MessageOverlay) rather than by a table each batch writes; every read
// combines the merged index (message_chunks) with them (Unmerged below; the
// argument that no read misses a committed message is in docs/architecture.md,
// "Unmerged messages").
//
// Thread safety: see StorageBackend. The reader pool is guarded by pool_mu_;
// overlay_ has its own mutex (the writer updates it after COMMIT, readers
// copy from it); the writer connection, its statements, key_cache_ and
// pending_ belong to the writer thread alone.

#ifndef CONVSTORE_SRC_SQLITE_SQLITE_BACKEND_H_
#define CONVSTORE_SRC_SQLITE_SQLITE_BACKEND_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/functional/function_ref.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convstore/options.h"
#include "mutex.h"
#include "sqlite/analytics_tables.h"
#include "sqlite/audit_table.h"
#include "sqlite/cache_table.h"
#include "sqlite/keys_table.h"
#include "sqlite/message_chunks.h"
#include "sqlite/message_overlay.h"
#include "sqlite/sqlite_handle.h"
#include "sqlite/unmerged_summary.h"
#include "sqlite/wal_checkpointer.h"
#include "storage_backend.h"

namespace convstore::internal {

class SqliteBackend final : public StorageBackend {
 public:
  // Opens or creates options.path, configures it and runs migrations.
  static Status Open(const Options& options,
                     std::unique_ptr<SqliteBackend>* out);
  ~SqliteBackend() override;

  Status Apply(std::span<const WriteOp> batch) override;
  Status Checkpoint(bool truncate) override;
  // Merges the unmerged messages into the merged index once the overlay holds
  // Options::index_merge_rows entries, and reports a failed background
  // checkpoint.
  Status Maintain() override;
  void SetLogger(std::shared_ptr<spdlog::logger> log) override {
    log_ = std::move(log);
  }
  uint64_t LastCommittedLsn() override { return last_lsn_; }
  StatusOr<BackendCloseReport> Close() override;

  Status LoadConversation(std::string_view conversation_id, size_t max_messages,
                          StoredConversation* out) override;
  Status LoadMessages(std::string_view conversation_id, int64_t after_seq,
                      int64_t before_seq, size_t max_newest,
                      std::vector<MessagePtr>* out) override;
  Status ListConversations(const ListQuery& query,
                           std::vector<ConversationInfo>* out) override;
  Status ScanRecent(
      size_t max_conversations, size_t max_messages,
      const std::function<bool(StoredConversation&&)>& visit) override;
  Status Counts(StorageCounts* out) override;
  UpkeepCounters upkeep_counters() const override;
  Status SelectPurgeable(
      const PurgeQuery& query,
      const std::function<bool(PurgeCandidates&&)>& visit) override;
  Status WriteDeadLetter(const DeadLetter& d, int64_t message_seq) override;
  Status ReadDeadLetters(size_t limit, std::vector<DeadLetter>* out) override;
  Status TruncateWal(std::chrono::milliseconds timeout) override;
  AnalyticsStorage* analytics() override { return analytics_.get(); }
  CacheStorage* cache() override { return cache_entries_.get(); }
  AuditStorage* audit() override { return audit_.get(); }
  KeyStorage* keys() override { return api_keys_.get(); }

  // Tests only: runs inside each conversation read, after its snapshot is
  // taken and before the overlay is consulted, so a test can commit a merge
  // in between. Set before any read starts.
  void SetSnapshotHookForTest(std::function<void()> hook) {
    snapshot_hook_ = std::move(hook);
  }
  // Tests only: runs in each Apply just before COMMIT (`committed` false)
  // and just after it (true), on the writer thread; it may throw, as an
  // allocation failing there would. Set before the first Apply.
  void SetApplyHookForTest(std::function<void(bool committed)> hook) {
    apply_hook_ = std::move(hook);
  }
  // Tests only: runs inside a merge's transaction after each conversation's
  // index row is written; it may throw. Set before the first Maintain.
  void SetMergeHookForTest(std::function<void()> hook) {
    merge_hook_ = std::move(hook);
  }
  // Merges so far that read their entries back from `messages` rather
  // than take them from the overlay (a purge of an unmerged row, another
  // connection's commit or a restart of the overlay came before them).
  uint64_t merges_rescanned() const {
    return merges_rescanned_.load(std::memory_order_relaxed);
  }
  // Checkpoint passes run so far (all zero when wal_autocheckpoint_pages is
  // 0: SQLite then checkpoints only at Close).
  WalCheckpointer::Passes checkpoint_passes() {
    return checkpointer_ != nullptr ? checkpointer_->passes()
                                    : WalCheckpointer::Passes{};
  }

 private:
  struct Reader;
  class ReaderLease;
  // The merge watermark and the highest message id ever assigned, read in
  // one statement (so from one snapshot).
  static constexpr const char* kReadMergeState =
      "SELECT (SELECT value FROM store_meta WHERE key = 'merged_through_id'),"
      " (SELECT value FROM store_meta WHERE key = 'last_message_id')";
  // Statements a connection needs to find the unmerged messages of its
  // snapshot.
  struct UnmergedReads {
    Stmt meta;  // merged_through_id, last_message_id
    Stmt scan;  // one conversation's messages in an id range
    Stmt rows;  // every message in an id range (for the summaries)
    Status Prepare(Db* db);
    // This snapshot's merge watermark and highest assigned message id.
    Status ReadMergeState(int64_t* wm, int64_t* hi);
  };

  explicit SqliteBackend(const Options& options);
  // Opens the main connection: the writer's, or with Options::read_only
  // one that only reads.
  Status OpenWriter();
  // Links a key change's audit record onto the chain inside the change's
  // transaction; a record refused by its content is dropped (logged), not
  // the change.
  Status ApplyKeyAudit(const KeyOp& op);
  // The writer's pragmas (WAL, sync mode) and migrations.
  Status ConfigureWriter();
  // A read-only open's checks: WAL mode and the current schema version.
  Status OpenForReading();
  Status Configure(Db* db, bool writer);
  // Finds (or, if `create`, inserts) the integer key of a conversation.
  // Returns 0 when absent and not created.
  Status ResolveKey(const std::string& id, bool create, int64_t* key);
  // As above for an append's id, through the id's memo when it is of the
  // current key_generation_ (no lookup by string), setting it otherwise.
  Status ResolveKey(const SharedId& id, bool create, int64_t* key);
  Status ApplyInTransaction(std::span<const WriteOp> batch);
  // Binds message row `row` (0-based) of an INSERT into `messages` that
  // takes its rows' values in the order of insert_msg_.
  static void BindMessageRow(Stmt* st, int row, int64_t id, int64_t key,
                             uint64_t lsn, const Message& m);
  // Removes the rows of a retention batch (sqlite/message_retention.cc).
  // The unmerged-message methods below live in sqlite/unmerged_messages.cc.
  // First folds the unmerged messages of each conversation it touches into
  // its summary (the reads could no longer count a removed one, and an
  // unpinned system message must not hand its pin to an unmerged one).
  // `last_id`: as SyncOverlay returned it.
  Status ApplyPurge(const PurgeMessagesOp& op, int64_t merged_through,
                    int64_t last_id);
  // Takes an idle reader, or opens one while fewer than read_connections
  // are open, waiting until `deadline` for one to come free: Unavailable
  // then; FailedPrecondition once the backend is closed.
  Status AcquireReader(std::unique_ptr<Reader>* out,
                       CondVar::Clock::time_point deadline);
  void ReleaseReader(std::unique_ptr<Reader> reader);
  Status LoadWith(Reader* r, std::string_view id, int64_t after_seq,
                  int64_t before_seq, size_t max_messages,
                  StoredConversation* out);
  // Inside a read transaction on the connection of `st`: the (seq, id) of
  // conv_key's messages with after_seq < seq < before_seq that this
  // snapshot's merged index does not hold, ascending. Entries whose rows
  // were deleted may be included; they match no row.
  Status Unmerged(UnmergedReads* st, int64_t conv_key, int64_t after_seq,
                  int64_t before_seq, std::vector<OverlayEntry>* out);
  // Inside a read transaction on the connection of `st`: this snapshot's
  // watermark, and the conversations with a message above it (possibly a
  // few more, whose rows were deleted since), each with the summary of those
  // messages, in no particular order.
  Status UnmergedConversations(UnmergedReads* st, int64_t* wm,
                               std::vector<MessageOverlay::KeySummary>* out);
  // What conv_key's unmerged messages add to its row, whose
  // summarized_through_id is `row_through`: `above_wm` (its entry from
  // UnmergedConversations, null if none) unless a purge folded part of them
  // into the row since the merge (row_through > wm), then read exactly.
  Status UnmergedPart(UnmergedReads* st, int64_t wm, int64_t conv_key,
                      int64_t row_through, const UnmergedSummary* above_wm,
                      UnmergedSummary* out);
  // A conversation row with the keys the read paths need, its unmerged
  // messages added.
  struct ListedConversation {
    int64_t key = 0;
    int64_t first_system_seq = 0;
    ConversationInfo info;
  };
  // Reads the row `st` stands on (the Reader's conversation-row layout) and
  // adds its unmerged part. `lagging`: UnmergedConversations' answer by key.
  Status ReadListed(
      Reader* r, const Stmt& st, int64_t wm,
      const absl::flat_hash_map<int64_t, UnmergedSummary>& lagging,
      ListedConversation* out);
  // Inside a read transaction on r: up to q.limit conversations with
  // messages (of q.user_id if set, below q's cursor if any), in descending
  // (last_at_us, conversation_id) order (sqlite/conversation_lists.cc).
  // `unmerged_count`, if not null, gets the number of messages above the
  // watermark (for ScanRecent's estimate).
  Status RecentWith(Reader* r, const ListQuery& q,
                    std::vector<ListedConversation>* out,
                    int64_t* unmerged_count = nullptr);
  // Writer, inside the batch transaction: reads the watermark and the last
  // assigned id, and brings overlay_ up to date with what other processes
  // committed since this one last wrote.
  Status SyncOverlay(int64_t* merged_through, int64_t* last_id);
  // Writer: the merge half of Maintain.
  Status MergeUnmerged();
  // Writer, inside the merge's transaction, overlay_ synced: the messages
  // with merged_through < id <= last_id, grouped by conversation in
  // (conv_key, seq) order, into merge_input_ (only seq and id are set when
  // read back). From overlay_ while overlay_exact_, otherwise read back
  // from `messages`.
  Status MergeInput(int64_t merged_through, int64_t last_id);
  // Writer: forgets what it cached about conversation rows (keys, set
  // users, last seqs), after a rollback or another connection's commit.
  void ForgetCachedRows();
  // Rolls back the writer's open transaction, if any, and forgets what the
  // writer cached about rows inside it.
  void RollBackWrite();
  // Set up at the start of a writer-thread call (Apply, Maintain,
  // WriteDeadLetter); an exception leaving the call before Dismiss rolls
  // the writer's transaction back and marks what the writer caches about
  // the file (keys, the overlay) for rebuilding.
  class WriterExceptionGuard {
   public:
    explicit WriterExceptionGuard(SqliteBackend* b) : b_(b) {}
    ~WriterExceptionGuard();
    WriterExceptionGuard(const WriterExceptionGuard&) = delete;
    WriterExceptionGuard& operator=(const WriterExceptionGuard&) = delete;
    void Dismiss() { b_ = nullptr; }

   private:
    SqliteBackend* b_;
  };
  // Writer: InvalidArgument if one of the n seqs (seq_at(0..n-1)) of
  // conversation `key` repeats within them or is already stored.
  Status CheckDuplicateSeqs(int64_t key, int64_t merged_through, size_t n,
                            const std::function<int64_t(size_t)>& seq_at);
  // Writer: the highest seq stored for conversation `key` (its row's
  // last_seq or an unmerged message's), cached in last_seq_. Internal if
  // the row is missing.
  Status LastSeq(int64_t key, int64_t* last_seq);
  // Writer: conversation `key`'s row's last_seq and summarized_through_id;
  // *found false if there is no row.
  Status ReadRowState(int64_t key, bool* found, int64_t* last_seq,
                      int64_t* through);
  // Writer, inside a transaction: adds `sum` to conversation `key`'s row
  // and sets its summarized_through_id to `through`, if that is at most
  // `if_through_at_most`; *folded says whether it did.
  Status Fold(int64_t key, const UnmergedSummary& sum, int64_t through,
              int64_t if_through_at_most, bool* folded);
  // Writer, inside a transaction, the overlay complete up to `through`:
  // folds every message of `key` above its row's summarized_through_id
  // into the row (nothing if the row is gone or there is none).
  Status FoldAbove(int64_t key, int64_t through);

  const Options options_;

  // The store's logger (null until SetLogger; set before the writer thread
  // starts, used only on it).
  std::shared_ptr<spdlog::logger> log_;
  // Runs `op`, a use of chunks_ for conversation `key`. If that finds the
  // conversation's packed rows damaged (Corruption), rebuilds them from its
  // messages with id <= merged_through (MessageChunks::Rebuild, logged) and
  // runs `op` again. Writer thread, inside its transaction.
  Status Mended(int64_t key, int64_t merged_through,
                absl::FunctionRef<Status()> op);

  // Writer thread only.
  std::unique_ptr<Db> writer_;
  Stmt find_key_, insert_conv_, insert_msg_, set_user_, delete_msg_,
      delete_conv_, delete_dead_msgs_, set_lsn_, read_meta_, scan_tail_,
      set_last_id_, fold_, row_state_, data_version_, merge_rows_;
  // A batch's messages go kInsertGroup rows to one INSERT (insert_msgs_),
  // the rest one to a statement (insert_msg_): one statement run and reset
  // per group instead of per row (docs/benchmarks.md, "Rows inserted 32 to
  // a statement").
  static constexpr size_t kInsertGroup = 32;
  // Values per row of those INSERTs (id, conv_key, lsn, kMessageColumns).
  static constexpr int kMessageRowValues = 13;
  Stmt insert_msgs_;
  // The merged index (message_chunks) on the writer connection.
  MessageChunks chunks_;
  // The exact duplicate check (prepared on first use).
  Stmt row_exists_;
  // Retention (prepared on first use).
  Stmt purge_msg_, count_purged_, unpin_system_;
  // A batch's appends, sorted by (conversation key, LSN) before insert.
  struct PendingInsert {
    int64_t key;
    const AppendMessageOp* op;
    uint64_t lsn;
  };
  std::vector<PendingInsert> inserts_;
  // Rows the batch being applied inserted; published to overlay_ after
  // COMMIT.
  std::vector<OverlayRow> pending_;
  int64_t batch_top_ = 0;  // last_message_id after that batch
  // What the batch being applied removed above the watermark:
  // conversations it deleted that had unmerged entries, and whether it
  // purged an unmerged message. Published after COMMIT (below).
  std::vector<int64_t> batch_deleted_;
  bool batch_purged_ = false;
  // True while every entry of overlay_ names a row `messages` still holds,
  // except the entries of deleted_since_merge_'s conversations: a merge then
  // indexes the overlay's entries instead of reading the rows back
  // (MergeInput). A committed purge of an unmerged message, another
  // connection's commit or a restart of the overlay (SyncOverlay) makes it
  // false; each merge, which empties the overlay, makes it true again.
  bool overlay_exact_ = true;
  // A committed batch's rows may be missing from overlay_ (publishing them
  // ran out of memory): the next transaction rebuilds it from the file
  // (SyncOverlay). Readers are right meanwhile: they scan the rows above
  // the overlay's top, which did not move.
  bool overlay_stale_ = false;
  absl::flat_hash_set<int64_t> deleted_since_merge_;
  // A merge's input and one conversation's run of it, kept across merges
  // so that a merge maps no fresh pages (about 3 MiB per 65,536 entries).
  MessageOverlay::Grouped merge_input_;
  std::vector<IndexEntry> merge_run_;
  // Merges that read their entries back from `messages`; written by the
  // writer thread.
  std::atomic<uint64_t> merges_rescanned_{0};
  // Merges done and their times (written by the writer thread, read by
  // upkeep_counters on any thread).
  std::atomic<uint64_t> merges_{0};
  std::atomic<int64_t> merge_total_us_{0};
  std::atomic<int64_t> merge_max_us_{0};
  // Checkpoints the WAL off the writer thread (null when
  // wal_autocheckpoint_pages is 0). Stopped before the writer closes.
  std::unique_ptr<WalCheckpointer> checkpointer_;
  absl::flat_hash_map<std::string, int64_t> key_cache_;
  // Names the writer's current view of which id has which key: the
  // IdMemo of a SharedId holds a key only for the generation it was set in.
  // Every change that may make a cached key wrong (ForgetCachedRows, a
  // delete) moves to a new one, taken from a process-wide counter so that
  // no two backends ever share one.
  uint64_t key_generation_ = NewKeyGeneration();
  static uint64_t NewKeyGeneration();
  // Conversations whose stored user_id is known to be set (so a batch
  // need not try to set it); forgotten with key_cache_.
  absl::flat_hash_set<int64_t> user_set_;
  // The writer forgets what it caches per conversation (keys, set users,
  // last seqs) past this many, so a process that touches millions of
  // conversations does not grow without bound.
  static constexpr size_t kMaxCachedRows = 1 << 20;
  // LastSeq's answers, kept up to date by each batch; forgotten with
  // key_cache_ and whenever another process wrote.
  absl::flat_hash_map<int64_t, int64_t> last_seq_;
  // PRAGMA data_version as of the last batch: it changes when another
  // connection (another process) commits, which may have deleted a
  // conversation or set a user these caches know of.
  int64_t seen_data_version_ = -1;
  uint64_t last_lsn_ = 0;
  // Analytics tables: writes on the writer thread, reads on its own
  // connection.
  std::unique_ptr<SqliteAnalytics> analytics_;
  // The key-value cache table: writes on the writer thread, reads on its
  // own connection.
  std::unique_ptr<SqliteCache> cache_entries_;
  // The audit log: the chain head and writes on the writer thread, reads
  // on its own connection.
  std::unique_ptr<SqliteAudit> audit_;
  // The API keys table: writes on the writer thread, read once at Open on a
  // connection of its own.
  std::unique_ptr<SqliteKeys> api_keys_;

  // Index of the messages above the merge watermark.
  MessageOverlay overlay_;
  std::function<void()> snapshot_hook_;             // tests only
  std::function<void(bool committed)> apply_hook_;  // tests only
  std::function<void()> merge_hook_;                // tests only

  Mutex pool_mu_;
  CondVar pool_cv_;
  std::vector<std::unique_ptr<Reader>> idle_readers_ ABSL_GUARDED_BY(pool_mu_);
  size_t open_readers_ ABSL_GUARDED_BY(pool_mu_) = 0;
  bool pool_closed_ ABSL_GUARDED_BY(pool_mu_) = false;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_SQLITE_BACKEND_H_
