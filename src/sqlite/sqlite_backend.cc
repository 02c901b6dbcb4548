// Copyright 2026 The convstore Authors.

#include "sqlite/sqlite_backend.h"

#include <spdlog/logger.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "saturating.h"
#include "sqlite/backend_reader.h"
#include "sqlite/dead_letter_table.h"
#include "sqlite/message_rows.h"
#include "sqlite/migrations.h"

namespace convstore::internal {
namespace {

// One conversation's appends of a batch, as the duplicate check needs them.
struct Delta {
  int64_t first_seq = 0;
  int64_t last_seq = 0;
  // The batch's seqs of this conversation rise in LSN order (as Append
  // assigns them); if not, the duplicate check takes the exact path.
  bool ordered = true;
  std::string_view user_id;
};

// One conversation's appends of a batch, [first, last) in LSN order.
template <typename It>
Delta Summarize(It first, It last) {
  Delta d;
  for (It p = first; p != last; ++p) {
    const Message& m = *p->op->message;
    if (p == first) {
      d.first_seq = m.seq;
    } else if (m.seq <= d.last_seq) {
      d.ordered = false;
    }
    d.last_seq = std::max(d.last_seq, m.seq);
    if (d.user_id.empty()) d.user_id = m.user_id;
  }
  return d;
}

}  // namespace

SqliteBackend::SqliteBackend(const Options& options)
    : options_(options),
      // With Options::read_only every connection opens read-only: the last
      // one to close would otherwise checkpoint the WAL into the file.
      analytics_(std::make_unique<SqliteAnalytics>(
          options.path, options.sqlite_vfs, options.busy_timeout,
          options.read_only)),
      cache_entries_(std::make_unique<SqliteCache>(
          options.path, options.sqlite_vfs, options.busy_timeout,
          options.read_only)),
      audit_(std::make_unique<SqliteAudit>(options.path, options.sqlite_vfs,
                                           options.busy_timeout,
                                           options.read_only)),
      api_keys_(std::make_unique<SqliteKeys>(options.path, options.sqlite_vfs,
                                             options.busy_timeout,
                                             options.read_only)) {}

SqliteBackend::~SqliteBackend() { (void)Close(); }

Status SqliteBackend::Open(const Options& options,
                           std::unique_ptr<SqliteBackend>* out) {
  std::unique_ptr<SqliteBackend> b(new SqliteBackend(options));
  Status s = b->OpenWriter();
  if (!s.ok()) return s;
  *out = std::move(b);
  return Status::OK();
}

Status SqliteBackend::Configure(Db* db, bool writer) {
  // Store::Open refuses the options below their floors here (validation.cc);
  // the floors keep a backend built directly (tests) working.
  std::string sql =
      "PRAGMA busy_timeout = " + std::to_string(options_.busy_timeout.count()) +
      ";PRAGMA cache_size = -" +
      std::to_string(std::max(1, options_.sqlite_cache_mib) * 1024) +
      ";PRAGMA temp_store = MEMORY;";
  if (writer) {
    // Takes effect only for a new file (before its first table), so that
    // retention can give freed pages back (analytics Cleanup). Issued only
    // then: on an existing file the pragma commits a write of page 1 even
    // when nothing changes, and a file about to be refused (newer schema)
    // must stay untouched.
    int64_t pages = 0;
    Status s = db->QueryInt("PRAGMA page_count", &pages);
    if (!s.ok()) return s;
    if (pages == 0) sql += "PRAGMA auto_vacuum = INCREMENTAL;";
    sql += "PRAGMA journal_mode = WAL;PRAGMA synchronous = ";
    sql += options_.sync_mode == SyncMode::kFull ? "FULL" : "NORMAL";
    sql += ";PRAGMA wal_autocheckpoint = " +
           std::to_string(options_.wal_autocheckpoint_pages) +
           ";PRAGMA journal_size_limit = " +
           std::to_string(options_.journal_size_limit) + ";";
  }
  return db->Exec(sql);
}

Status SqliteBackend::ConfigureWriter() {
  // SQLite opens a file it may not write read-only without a word; the
  // store would then fail only at its first commit, retrying forever.
  if (sqlite3_db_readonly(writer_->raw(), "main") == 1) {
    return Status::IOError(options_.path +
                           " can only be opened read-only (file permissions "
                           "or attributes); the store must write to it");
  }
  Status s = Configure(writer_.get(), /*writer=*/true);
  // Switching a new file to WAL upgrades a read lock to a write lock, and
  // SQLite does not call the busy handler for an upgrade (it could
  // deadlock): when several processes create the file at once, all but one
  // get SQLITE_BUSY at once. The pragmas are idempotent; retry them for up
  // to busy_timeout.
  const auto deadline =
      std::chrono::steady_clock::now() + options_.busy_timeout;
  while (s.IsUnavailable() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = Configure(writer_.get(), /*writer=*/true);
  }
  if (!s.ok()) return s;
  int64_t mode_ok = 0;
  s = writer_->QueryInt("SELECT journal_mode = 'wal' FROM pragma_journal_mode",
                        &mode_ok);
  if (s.ok() && mode_ok == 0) {
    return Status::IOError("could not switch " + options_.path +
                           " to WAL mode (read-only or unsupported file "
                           "system?)");
  }
  return Migrate(writer_.get(), LatestSchemaVersion());
}

Status SqliteBackend::OpenForReading() {
  Status s = Configure(writer_.get(), /*writer=*/false);
  if (!s.ok()) return s;
  // A store's file is in WAL mode from its first open on; a read-only
  // connection cannot switch it.
  int64_t mode_ok = 0;
  s = writer_->QueryInt("SELECT journal_mode = 'wal' FROM pragma_journal_mode",
                        &mode_ok);
  if (s.ok() && mode_ok == 0) {
    return Status::FailedPrecondition(
        options_.path +
        " is not in WAL mode: not a store a read-write open "
        "finished; a read-only open cannot set it up");
  }
  if (!s.ok()) return s;
  return CheckSchemaCurrent(writer_.get());
}

Status SqliteBackend::OpenWriter() {
  Status s =
      options_.read_only
          ? Db::OpenReadOnly(options_.path, &writer_, options_.sqlite_vfs)
          : Db::Open(options_.path, options_.create_if_missing, &writer_,
                     options_.sqlite_vfs);
  if (!s.ok()) return s;
  // Before the first read: several processes opening a fresh file at once
  // take turns on its locks instead of failing with SQLITE_BUSY.
  sqlite3_busy_timeout(writer_->raw(),
                       static_cast<int>(options_.busy_timeout.count()));
  // The first real read is where SQLite notices a file that is not a
  // database, and another application's database is refused before any
  // PRAGMA below writes to it (journal_mode=WAL is stored in the file).
  s = CheckOwnership(writer_.get());
  if (!s.ok()) return s;
  if (options_.read_only) {
    s = OpenForReading();
  } else {
    s = ConfigureWriter();
  }
  if (!s.ok()) return s;
  if (options_.verify_on_open) {
    // A structural check of every page; a damaged file is refused, not
    // written to.
    Stmt check;
    s = writer_->Prepare("PRAGMA quick_check(1)", &check);
    if (!s.ok()) return s;
    std::string verdict;
    if (check.Step(&s)) verdict = check.Text(0);
    if (!s.ok()) return s;
    if (verdict != "ok") {
      return Status::Corruption("quick_check of " + options_.path +
                                " failed: " + verdict);
    }
  }

  const std::string insert_head =
      std::string("INSERT INTO messages(id, conv_key, lsn, ") +
      kMessageColumns + ") VALUES ";
  std::string row_values = "(?";
  for (int i = 1; i < kMessageRowValues; ++i) row_values += ", ?";
  row_values += ")";
  const std::string insert_msg = insert_head + row_values;
  std::string insert_msgs = insert_head + row_values;
  for (size_t i = 1; i < kInsertGroup; ++i) insert_msgs += ", " + row_values;
  struct {
    Stmt* stmt;
    std::string sql;
  } prepared[] = {
      {&find_key_,
       "SELECT conv_key FROM conversations WHERE conversation_id = ?"},
      {&insert_conv_, "INSERT INTO conversations(conversation_id) VALUES (?)"},
      {&insert_msg_, insert_msg},
      {&insert_msgs_, insert_msgs},
      // The merge's (and a purge's) fold of unmerged messages into the
      // summary (schema version 11). activity_at_us follows last_at_us.
      {&fold_,
       "UPDATE conversations SET message_count = message_count + ?1,"
       " tokens_in = tokens_in + ?2, tokens_out = tokens_out + ?3,"
       " first_at_us = CASE WHEN first_at_us = 0 THEN ?4 ELSE first_at_us END,"
       " last_at_us = max(last_at_us, ?5), last_seq = max(last_seq, ?6),"
       " first_system_seq = CASE WHEN first_system_seq = 0 THEN ?7"
       " ELSE first_system_seq END, activity_at_us = max(last_at_us, ?5),"
       " summarized_through_id = ?8"
       " WHERE conv_key = ?9 AND summarized_through_id <= ?10"},
      {&data_version_, "PRAGMA data_version"},
      {&row_state_,
       "SELECT last_seq, summarized_through_id FROM conversations"
       " WHERE conv_key = ?"},
      // user_id is indexed, and an UPDATE that
      // assigns an indexed column rewrites its index entry even when the
      // value stays (schema version 10).
      {&set_user_,
       "UPDATE conversations SET user_id = ?1"
       " WHERE conv_key = ?2 AND user_id = ''"},
      {&delete_msg_, "DELETE FROM messages WHERE id = ?1 AND conv_key = ?2"},
      {&delete_conv_, "DELETE FROM conversations WHERE conv_key = ?"},
      // No index: the table holds only writes the database refused.
      {&delete_dead_msgs_,
       "DELETE FROM dead_letters WHERE kind = 'message' AND record_key = ?"},
      {&set_lsn_,
       "UPDATE store_meta SET value = max(value, ?) WHERE key = 'last_lsn'"},
      {&read_meta_, kReadMergeState},
      {&scan_tail_,
       "SELECT conv_key, seq, id, created_at_us, tokens_in, tokens_out, role"
       " FROM messages WHERE id > ? ORDER BY id"},
      {&set_last_id_,
       "UPDATE store_meta SET value = max(value, ?)"
       " WHERE key = 'last_message_id'"},
      // What a merge adds to the index, grouped by conversation.
      {&merge_rows_,
       "SELECT conv_key, seq, id FROM messages WHERE id > ?1"
       " ORDER BY conv_key, seq"},
  };
  for (auto& p : prepared) {
    s = writer_->Prepare(p.sql, p.stmt);
    if (!s.ok()) return s;
  }
  s = chunks_.Prepare(writer_.get(), /*writer=*/true);
  if (!s.ok()) return s;
  int64_t lsn = 0;
  s = writer_->QueryInt("SELECT value FROM store_meta WHERE key = 'last_lsn'",
                        &lsn);
  if (!s.ok()) return s;
  last_lsn_ = static_cast<uint64_t>(lsn);
  // Rebuild the overlay: every message above the watermark (normally fewer
  // than index_merge_rows; more only if a merge was cut short).
  s = writer_->Exec("BEGIN");
  if (!s.ok()) return s;
  int64_t merged_through = 0;
  int64_t last_id = 0;
  s = SyncOverlay(&merged_through, &last_id);
  if (s.ok()) {
    // New messages take the ids above last_message_id: a row already
    // there would make every insert fail.
    int64_t top = 0;
    s = writer_->QueryInt("SELECT coalesce(max(id), 0) FROM messages", &top);
    if (s.ok() && top > last_id) {
      s = Status::Corruption("messages hold id " + std::to_string(top) +
                             ", above store_meta's last_message_id " +
                             std::to_string(last_id));
    }
  }
  if (!writer_->Exec("COMMIT").ok()) (void)writer_->Exec("ROLLBACK");
  if (!s.ok()) return s.WithPrefix("loading the unmerged messages");
  s = audit_->LoadHead(writer_.get());
  if (!s.ok() || options_.read_only || options_.wal_autocheckpoint_pages <= 0) {
    return s;
  }
  // From here on checkpoints run off the writer thread (WalCheckpointer);
  // the hook replaces SQLite's auto-checkpoint on the writer connection.
  s = WalCheckpointer::Start(options_.path, options_.sqlite_vfs,
                             options_.wal_autocheckpoint_pages, &checkpointer_);
  if (!s.ok()) return s;
  checkpointer_->Install(writer_->raw());
  return Status::OK();
}

uint64_t SqliteBackend::NewKeyGeneration() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

Status SqliteBackend::ResolveKey(const SharedId& id, bool create,
                                 int64_t* key) {
  IdMemo* memo = id.memo();
  // Generations start at 1 and a memo is set only with a key, so a memo of
  // this generation holds one.
  if (memo != nullptr && memo->generation == key_generation_) {
    *key = memo->key;
    return Status::OK();
  }
  Status s = ResolveKey(id.str(), create, key);
  if (s.ok() && memo != nullptr && *key != 0) {
    *memo = IdMemo{*key, key_generation_};
  }
  return s;
}

Status SqliteBackend::ResolveKey(const std::string& id, bool create,
                                 int64_t* key) {
  auto it = key_cache_.find(id);
  if (it != key_cache_.end()) {
    *key = it->second;
    return Status::OK();
  }
  *key = 0;
  Status s;
  find_key_.BindText(1, id);
  if (find_key_.Step(&s)) *key = find_key_.Int(0);
  find_key_.Reset();
  if (!s.ok()) return s;
  if (*key == 0 && create) {
    insert_conv_.BindText(1, id);
    s = insert_conv_.Exec();
    if (!s.ok()) return s;
    *key = sqlite3_last_insert_rowid(writer_->raw());
    last_seq_[*key] = 0;
  }
  if (*key != 0) {
    if (key_cache_.size() >= kMaxCachedRows) key_cache_.clear();
    key_cache_.emplace(id, *key);
  }
  return Status::OK();
}

Status SqliteBackend::ApplyInTransaction(std::span<const WriteOp> batch) {
  // Kept across batches, so a batch's bookkeeping maps no fresh pages.
  std::vector<PendingInsert>& inserts = inserts_;
  inserts.clear();
  absl::flat_hash_map<int64_t, bool> deleted;
  int64_t merged_through = 0;
  int64_t next_id = 0;
  Status s = SyncOverlay(&merged_through, &next_id);
  if (!s.ok()) return s;
  // Pass 1, in LSN order: resolve keys and apply deletes. A conversation
  // re-created after a delete gets a fresh key (AUTOINCREMENT never reuses
  // one), so deferring the inserts below cannot cross a delete.
  for (const WriteOp& op : batch) {
    if (const auto* a = std::get_if<AppendMessageOp>(&op.payload)) {
      int64_t key = 0;
      s = ResolveKey(a->conversation_id, /*create=*/true, &key);
      if (!s.ok()) return s;
      inserts.push_back({key, a, op.lsn});
    } else if (const auto* del_op =
                   std::get_if<DeleteConversationOp>(&op.payload)) {
      const DeleteConversationOp& del = *del_op;
      int64_t key = 0;
      s = ResolveKey(del.conversation_id, /*create=*/false, &key);
      if (!s.ok()) return s;
      key_cache_.erase(del.conversation_id);
      key_generation_ = NewKeyGeneration();
      user_set_.erase(key);
      last_seq_.erase(key);
      if (del.audit != nullptr) {
        s = audit_->Apply(writer_.get(), AuditOp{*del.audit});
        if (!s.ok()) return s;
      }
      // Its messages set aside as dead letters go too (even with no row
      // left: every one of them may have been refused); the delete is an
      // erasure (docs/durability.md, "Erasure").
      delete_dead_msgs_.BindText(1, del.conversation_id);
      s = delete_dead_msgs_.Exec();
      if (!s.ok()) return s;
      if (key == 0) continue;
      deleted[key] = true;
      // The merged messages through the index, the unmerged ones through
      // the overlay (complete after SyncOverlay; its entries stay until the
      // next merge, matching no row once this commits).
      std::vector<int64_t> ids;
      std::vector<IndexEntry> merged;
      s = Mended(key, merged_through, [&] {
        merged.clear();
        return chunks_.UpTo(key, std::numeric_limits<int64_t>::max(), &merged);
      });
      if (!s.ok()) return s;
      for (const IndexEntry& e : merged) ids.push_back(e.id);
      bool unmerged = false;
      for (const OverlayEntry& e : overlay_.EntriesOf(key)) {
        if (e.id > merged_through) {
          ids.push_back(e.id);
          unmerged = true;
        }
      }
      // Its unmerged entries, if any, now name no row: the next merge
      // leaves them out (MergeInput), once this commits.
      if (unmerged) batch_deleted_.push_back(key);
      for (int64_t row : ids) {
        delete_msg_.Bind(1, row);
        delete_msg_.Bind(2, key);
        s = delete_msg_.Exec();
        if (!s.ok()) return s;
      }
      s = chunks_.RemoveAll(key);
      if (!s.ok()) return s;
      delete_conv_.Bind(1, key);
      s = delete_conv_.Exec();
      if (!s.ok()) return s;
    } else if (const auto* purge = std::get_if<PurgeMessagesOp>(&op.payload)) {
      s = ApplyPurge(*purge, merged_through, next_id);
      if (!s.ok()) return s;
    } else if (const auto* an = std::get_if<Boxed<AnalyticsOp>>(&op.payload)) {
      s = analytics_->Apply(writer_.get(), **an);
      if (!s.ok()) return s;
    } else if (const auto* co = std::get_if<Boxed<CacheOp>>(&op.payload)) {
      s = cache_entries_->Apply(writer_.get(), **co);
      if (!s.ok()) return s;
    } else if (const auto* au = std::get_if<Boxed<AuditOp>>(&op.payload)) {
      s = audit_->Apply(writer_.get(), **au);
      if (!s.ok()) return s;
    } else if (const auto* ko = std::get_if<Boxed<KeyOp>>(&op.payload)) {
      bool applied = false;
      s = api_keys_->Apply(writer_.get(), **ko, &applied);
      if (s.ok() && applied && (*ko)->audit != nullptr) {
        s = ApplyKeyAudit(**ko);
      }
      if (!s.ok()) return s;
    } else {
      return Status::Internal("SqliteBackend cannot apply write kind " +
                              std::to_string(op.payload.index()));
    }
  }
  // Pass 2: insert grouped by conversation (a conversation's rows of one
  // batch are then adjacent in `messages`). Rows append at the end of
  // `messages` whatever the order, with ids above every id ever assigned
  // (store_meta 'last_message_id'), never SQLite's max(id) + 1, which
  // reuses the ids of deleted rows at the end of the table.
  std::sort(inserts.begin(), inserts.end(),
            [](const PendingInsert& a, const PendingInsert& b) {
              return a.key != b.key ? a.key < b.key : a.lsn < b.lsn;
            });
  // Batches leave the summary columns to the merge (schema version 11), so
  // the duplicate (conversation, seq) check, which no index makes before
  // the merge, compares with the highest stored seq: a batch whose seqs rise
  // above it cannot repeat one; otherwise CheckDuplicateSeqs decides
  // exactly. A deleted conversation's appends all precede its delete (a
  // re-created one has a new key): they are dropped.
  for (auto first = inserts.begin(); first != inserts.end();) {
    const int64_t key = first->key;
    auto last = first;
    while (last != inserts.end() && last->key == key) ++last;
    if (deleted.contains(key)) {
      first = last;
      continue;
    }
    const Delta d = Summarize(first, last);
    int64_t stored_last = 0;
    s = LastSeq(key, &stored_last);
    if (!s.ok()) return s;
    if (!d.ordered || d.first_seq <= stored_last) {
      s = CheckDuplicateSeqs(
          key, merged_through, static_cast<size_t>(last - first),
          [&](size_t i) {
            return first[static_cast<ptrdiff_t>(i)].op->message->seq;
          });
      if (!s.ok()) return s;
    }
    last_seq_[key] = std::max(stored_last, d.last_seq);
    if (!d.user_id.empty() && !user_set_.contains(key)) {
      set_user_.BindText(1, d.user_id);
      set_user_.Bind(2, key);
      s = set_user_.Exec();
      if (!s.ok()) return s;
      if (user_set_.size() >= kMaxCachedRows) user_set_.clear();
      user_set_.insert(key);
    }
    first = last;
  }
  // A deleted conversation's appends are dropped: they are compacted out
  // first, so the rows left go kInsertGroup to a statement.
  std::erase_if(
      inserts, [&](const PendingInsert& p) { return deleted.contains(p.key); });
  for (size_t i = 0; i < inserts.size();) {
    const bool group = inserts.size() - i >= kInsertGroup;
    Stmt* st = group ? &insert_msgs_ : &insert_msg_;
    const size_t n = group ? kInsertGroup : 1;
    for (size_t r = 0; r < n; ++r) {
      const PendingInsert& p = inserts[i + r];
      const Message& m = *p.op->message;
      const int64_t id = ++next_id;
      BindMessageRow(st, static_cast<int>(r), id, p.key, p.lsn, m);
      pending_.push_back({p.key, m.seq, id, m.created_at_us, m.tokens_in,
                          m.tokens_out, m.role == Role::kSystem});
    }
    s = st->Exec();
    if (!s.ok()) return s;
    i += n;
  }
  batch_top_ = next_id;
  if (!pending_.empty()) {
    set_last_id_.Bind(1, next_id);
    s = set_last_id_.Exec();
    if (!s.ok()) return s;
  }
  set_lsn_.Bind(1, static_cast<int64_t>(batch.back().lsn));
  return set_lsn_.Exec();
}

void SqliteBackend::BindMessageRow(Stmt* st, int row, int64_t id, int64_t key,
                                   uint64_t lsn, const Message& m) {
  const int b = row * kMessageRowValues;  // insert_msg_'s columns, in order
  st->Bind(b + 1, id);
  st->Bind(b + 2, key);
  st->Bind(b + 3, static_cast<int64_t>(lsn));
  st->Bind(b + 4, m.seq);
  st->Bind(b + 5, static_cast<int64_t>(m.role));
  st->BindText(b + 6, m.content);
  st->BindTextOrNull(b + 7, m.user_id);
  st->Bind(b + 8, m.tokens_in);
  st->Bind(b + 9, m.tokens_out);
  st->BindTextOrNull(b + 10, m.tool_call_id);
  st->BindTextOrNull(b + 11, m.tool_name);
  st->BindTextOrNull(b + 12, m.metadata);
  st->Bind(b + 13, m.created_at_us);
  static_assert(kMessageRowValues == 13, "bind every value of the row");
}

Status SqliteBackend::ApplyKeyAudit(const KeyOp& op) {
  // In a savepoint: a record the database refuses by its content must not
  // take the key change with it (a revocation set aside as a dead letter
  // would leave the key live while RevokeKey said OK). Any other error
  // fails the batch, which the writer retries whole.
  Status s = writer_->Exec("SAVEPOINT key_audit");
  if (!s.ok()) return s;
  Status a = audit_->Apply(writer_.get(), AuditOp{*op.audit});
  if (a.ok()) return writer_->Exec("RELEASE key_audit");
  if (!a.IsInvalidArgument()) return a;
  log_->error("audit record {} of API key {} refused, the change kept: {}",
              op.audit->event.action, op.audit->event.resource, a.ToString());
  s = writer_->Exec("ROLLBACK TO key_audit");
  if (s.ok()) s = writer_->Exec("RELEASE key_audit");
  return s;
}

Status SqliteBackend::Apply(std::span<const WriteOp> batch) {
  if (batch.empty()) return Status::OK();
  if (writer_ == nullptr) return Status::FailedPrecondition("backend closed");
  Status s = writer_->Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  // Out of memory before COMMIT: nothing of the batch is kept, and the
  // writer retries it (Guarded in writer.cc).
  WriterExceptionGuard guard(this);
  pending_.clear();
  batch_top_ = 0;
  batch_deleted_.clear();
  batch_purged_ = false;
  audit_->BeginBatch();
  s = ApplyInTransaction(batch);
  if (s.ok() && apply_hook_) apply_hook_(/*committed=*/false);
  if (s.ok()) s = writer_->Exec("COMMIT");
  guard.Dismiss();
  if (!s.ok()) {
    // A failed COMMIT may leave the transaction open; roll back so the next
    // attempt starts clean. Keys resolved inside it may be gone.
    RollBackWrite();
    return s;
  }
  last_lsn_ = batch.back().lsn;
  audit_->CommitBatch();
  if (batch_purged_) overlay_exact_ = false;
  // Only now: a reader must never be told of rows that may roll back.
  try {
    if (apply_hook_) apply_hook_(/*committed=*/true);
    if (batch_top_ > 0) overlay_.Add(pending_, batch_top_);
    deleted_since_merge_.insert(batch_deleted_.begin(), batch_deleted_.end());
  } catch (const std::exception& e) {
    // The batch is committed: reporting a failure would write it twice.
    overlay_stale_ = true;
    overlay_exact_ = false;
    if (log_ != nullptr) {
      log_->warn(
          "out of memory after a commit ({}); the index of unmerged "
          "messages is rebuilt from the file by the next transaction",
          e.what());
    }
  }
  pending_.clear();
  return Status::OK();
}

void SqliteBackend::RollBackWrite() {
  // Through the C API: nothing here allocates, so the exception guard's
  // destructor can call it.
  sqlite3* db = writer_->raw();
  if (sqlite3_get_autocommit(db) == 0) {
    (void)sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  ForgetCachedRows();
}

SqliteBackend::WriterExceptionGuard::~WriterExceptionGuard() {
  if (b_ == nullptr || b_->writer_ == nullptr) return;
  // An exception (out of memory) is passing through a writer-thread call:
  // its transaction must not stay open (the next BEGIN would fail for
  // good), and what the writer keeps in memory about the file may be half
  // updated: forget it, and rebuild the overlay from the file (SyncOverlay)
  // in the next transaction. A statement the exception left half-stepped
  // would refuse its next bindings and go on with the old ones: every
  // statement is reset first.
  sqlite3* db = b_->writer_->raw();
  for (sqlite3_stmt* st = sqlite3_next_stmt(db, nullptr); st != nullptr;
       st = sqlite3_next_stmt(db, st)) {
    sqlite3_reset(st);
  }
  b_->RollBackWrite();
  b_->overlay_stale_ = true;
  b_->overlay_exact_ = false;
}

Status SqliteBackend::Maintain() {
  if (writer_ == nullptr) return Status::FailedPrecondition("backend closed");
  WriterExceptionGuard guard(this);
  Status s = MergeUnmerged();
  guard.Dismiss();
  if (!s.ok() || checkpointer_ == nullptr) return s;
  s = checkpointer_->LastError();
  return s.ok() ? s : s.WithPrefix("checkpointing the WAL in the background");
}

Status SqliteBackend::Checkpoint(bool truncate) {
  if (writer_ == nullptr) return Status::FailedPrecondition("backend closed");
  int log_frames = 0;
  int rc = sqlite3_wal_checkpoint_v2(
      writer_->raw(), nullptr,
      truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
      &log_frames, nullptr);
  if (rc != SQLITE_OK || !truncate) {
    return SqliteStatus(rc, "wal checkpoint", writer_->raw());
  }
  // SQLite says OK with no frame count (-1) when it did nothing.
  if (log_frames != 0) {
    return Status::Unavailable("the WAL was not truncated (" +
                               std::to_string(log_frames) + " frames)");
  }
  return Status::OK();
}

StatusOr<BackendCloseReport> SqliteBackend::Close() {
  Status s;
  BackendCloseReport report;
  if (writer_ != nullptr) {
    if (checkpointer_ != nullptr) {
      WalCheckpointer::Uninstall(writer_->raw());
      checkpointer_.reset();  // a pass in progress finishes first
    }
    // A read-only store wrote nothing, and may not write the file.
    if (!options_.read_only) {
      s = Checkpoint(/*truncate=*/true);
      // SQLite does not sync the truncation: without this a power loss
      // could bring the cut frames back. Every commit is in the database
      // already, so a failed fsync only means the WAL may come back.
      Status synced = s.ok() ? SyncWal(writer_->raw()) : Status::OK();
      if (!synced.ok() && log_ != nullptr) {
        log_->warn("close: the truncated WAL of {} was not synced: {}",
                   options_.path, synced.ToString());
      }
      report.wal_truncated = s.ok() && synced.ok();
    }
    // Busy readers of other processes can keep a truncating checkpoint from
    // finishing; that is not a failure of Close (every commit is in the
    // database or the WAL), but the WAL keeps what it holds, deleted
    // content included: the report says so.
    if (s.IsUnavailable()) {
      if (log_ != nullptr) {
        log_->warn(
            "close: the WAL of {} was not truncated (another connection "
            "kept it): {}",
            options_.path, s.ToString());
      }
      s = Status::OK();
    }
    find_key_ = Stmt();
    insert_conv_ = Stmt();
    insert_msg_ = Stmt();
    insert_msgs_ = Stmt();
    fold_ = Stmt();
    row_state_ = Stmt();
    data_version_ = Stmt();
    set_user_ = Stmt();
    delete_msg_ = Stmt();
    read_meta_ = Stmt();
    scan_tail_ = Stmt();
    set_last_id_ = Stmt();
    merge_rows_ = Stmt();
    chunks_ = MessageChunks();
    row_exists_ = Stmt();
    purge_msg_ = Stmt();
    count_purged_ = Stmt();
    unpin_system_ = Stmt();
    delete_conv_ = Stmt();
    delete_dead_msgs_ = Stmt();
    set_lsn_ = Stmt();
    analytics_->ReleaseWriter();
    cache_entries_->ReleaseWriter();
    audit_->ReleaseWriter();
    api_keys_->ReleaseWriter();
    writer_.reset();
  }
  analytics_->CloseReader();
  cache_entries_->CloseReader();
  audit_->CloseReader();
  api_keys_->CloseReader();
  MutexLock lock(&pool_mu_);
  pool_closed_ = true;
  open_readers_ -= idle_readers_.size();
  idle_readers_.clear();
  pool_cv_.SignalAll();
  if (!s.ok()) return s;
  return report;
}

Status SqliteBackend::AcquireReader(std::unique_ptr<Reader>* out,
                                    CondVar::Clock::time_point deadline) {
  {
    MutexLock lock(&pool_mu_);
    // At least 1 for a backend built directly; Open refuses 0.
    size_t cap = std::max<size_t>(1, options_.read_connections);
    const bool free = pool_cv_.AwaitUntil(&pool_mu_, deadline, [&]() {
      pool_mu_.AssertHeld();
      return pool_closed_ || !idle_readers_.empty() || open_readers_ < cap;
    });
    if (pool_closed_) return Status::FailedPrecondition("store is closed");
    if (!free) {
      return Status::Unavailable(
          "all " + std::to_string(cap) +
          " reader connections (Options::read_connections) stayed in use");
    }
    if (!idle_readers_.empty()) {
      *out = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Status::OK();
    }
    ++open_readers_;
  }
  auto r = std::make_unique<Reader>();
  Status s = options_.read_only
                 ? Db::OpenReadOnly(options_.path, &r->db, options_.sqlite_vfs)
                 : Db::Open(options_.path, /*create=*/false, &r->db,
                            options_.sqlite_vfs);
  if (s.ok()) s = Configure(r->db.get(), /*writer=*/false);
  const std::string conv_sql =
      std::string("SELECT conv_key, first_system_seq, ") +
      kConversationColumns +
      ", activity_at_us, summarized_through_id FROM conversations WHERE ";
  // The row's summary covers its messages up to summarized_through_id
  // (column 11); activity_at_us (column 10) is its last_at_us. Readers add
  // the unmerged messages (UnmergedPart), and RecentWith orders
  // conversations that have some itself.
  const std::string page =
      "(activity_at_us, conversation_id) < (?2, ?3) AND message_count > 0"
      " ORDER BY activity_at_us DESC, conversation_id DESC LIMIT ?4";
  if (s.ok()) {
    s = r->db->Prepare(conv_sql + "conversation_id = ?", &r->find_conv);
  }
  if (s.ok()) s = r->db->Prepare(conv_sql + "conv_key = ?", &r->by_key);
  if (s.ok()) s = r->chunks.Prepare(r->db.get(), /*writer=*/false);
  if (s.ok()) {
    s = r->db->Prepare(std::string("SELECT ") + kMessageColumns +
                           " FROM messages WHERE id = ?1 AND conv_key = ?2"
                           " AND seq = ?3",
                       &r->by_id);
  }
  if (s.ok()) s = r->unmerged.Prepare(r->db.get());
  if (s.ok()) {
    s = r->db->Prepare(conv_sql + "?1 = ?1 AND " + page, &r->list_all);
  }
  if (s.ok())
    s = r->db->Prepare(conv_sql + "user_id = ?1 AND " + page, &r->list_user);
  if (s.ok()) {
    s = r->db->Prepare(
        "SELECT conv_key FROM conversations WHERE user_id = ?1"
        " LIMIT ?2",
        &r->user_keys);
  }
  if (!s.ok()) {
    MutexLock lock(&pool_mu_);
    --open_readers_;
    pool_cv_.SignalAll();
    return s;
  }
  *out = std::move(r);
  return Status::OK();
}

void SqliteBackend::ReleaseReader(std::unique_ptr<Reader> reader) {
  MutexLock lock(&pool_mu_);
  if (pool_closed_) {
    --open_readers_;
    return;  // `reader` closes its connection as it goes out of scope
  }
  idle_readers_.push_back(std::move(reader));
  pool_cv_.SignalAll();
}

Status SqliteBackend::LoadWith(Reader* r, std::string_view id,
                               int64_t after_seq, int64_t before_seq,
                               size_t max_messages, StoredConversation* out) {
  *out = StoredConversation();
  // One read transaction: the summary and the messages come from the same
  // committed state.
  Status s = r->db->Exec("BEGIN");
  if (!s.ok()) return s;
  int64_t key = 0;
  int64_t first_system_seq = 0;
  int64_t row_through = 0;
  r->find_conv.BindText(1, id);
  if (r->find_conv.Step(&s)) {
    key = r->find_conv.Int(0);
    first_system_seq = r->find_conv.Int(1);
    out->exists = true;
    out->info = ReadInfo(r->find_conv, 2);
    row_through = r->find_conv.Int(kSummarizedThroughColumn);
  }
  r->find_conv.Reset();
  std::vector<OverlayEntry> unmerged;
  auto fetch = [&](int64_t seq, int64_t row) -> MessagePtr {
    MessagePtr m;
    r->by_id.Bind(1, row);
    r->by_id.Bind(2, key);
    r->by_id.Bind(3, seq);
    if (r->by_id.Step(&s)) m = ReadMessage(r->by_id);
    r->by_id.Reset();
    return m;  // null if the row was deleted or purged
  };
  if (s.ok() && key != 0) {
    const int64_t before =
        before_seq > 0 ? before_seq : std::numeric_limits<int64_t>::max();
    // Every unmerged message: those above the row's summarized_through_id
    // complete its summary (schema version 11), those in the range are read.
    s = Unmerged(&r->unmerged, key, std::numeric_limits<int64_t>::min(),
                 std::numeric_limits<int64_t>::max(), &unmerged);
    UnmergedSummary part;
    for (const OverlayEntry& e : unmerged) {
      if (e.id > row_through) part.Add(e);
    }
    part.AddTo(&out->info, &first_system_seq);
    if (s.ok()) s = CheckSummary(out->info, first_system_seq);
    // Newest first: the unmerged messages (above every merged one of the
    // conversation), then the merged ones below them.
    int64_t index_before = before;
    for (auto it = unmerged.rbegin(); s.ok() && it != unmerged.rend(); ++it) {
      if (it->seq <= after_seq || it->seq >= before) continue;
      if (max_messages > 0 && out->messages.size() >= max_messages) break;
      index_before = std::min(index_before, it->seq);
      if (MessagePtr m = fetch(it->seq, it->id)) {
        out->messages.push_back(std::move(m));
      }
    }
    const size_t have = out->messages.size();
    if (s.ok() && (max_messages == 0 || have < max_messages)) {
      std::vector<IndexEntry> merged;
      s = r->chunks.Newest(key, after_seq, index_before,
                           max_messages == 0 ? 0 : max_messages - have,
                           &merged);
      for (size_t i = 0; s.ok() && i < merged.size(); ++i) {
        // Null if the row is missing (a file edited outside the store).
        if (MessagePtr m = fetch(merged[i].seq, merged[i].id)) {
          out->messages.push_back(std::move(m));
        }
      }
    }
    std::reverse(out->messages.begin(), out->messages.end());
    if (s.ok() && first_system_seq > 0 && after_seq == 0) {
      // Found by seq, not by position: a row missing from the middle (a
      // file edited or damaged outside the store) must neither pin the
      // wrong message nor index past the end.
      auto it = std::lower_bound(
          out->messages.begin(), out->messages.end(), first_system_seq,
          [](const MessagePtr& m, int64_t seq) { return m->seq < seq; });
      if (it != out->messages.end() && (*it)->seq == first_system_seq) {
        out->first_system = *it;
      } else {
        std::vector<OverlayEntry> pinned;
        s = Unmerged(&r->unmerged, key, first_system_seq - 1,
                     first_system_seq + 1, &pinned);
        if (s.ok() && !pinned.empty()) {
          out->first_system = fetch(pinned[0].seq, pinned[0].id);
        }
      }
      if (s.ok() && out->first_system == nullptr) {
        int64_t row = 0;
        s = r->chunks.Find(key, first_system_seq, &row);
        if (s.ok() && row != 0) {
          out->first_system = fetch(first_system_seq, row);
        }
      }
    }
  }
  if (!r->db->Exec("COMMIT").ok()) (void)r->db->Exec("ROLLBACK");
  // An empty summary row is a conversation whose creating batch held only
  // messages that a later delete in the same batch removed; treat as absent.
  // One with a last_seq holds no message but has handed seqs out (messages
  // set aside as dead letters, InsertDeadLetter): it exists, so the next
  // append continues after them.
  if (out->exists && out->info.message_count == 0 && out->info.last_seq == 0) {
    *out = StoredConversation();
  }
  return s;
}

Status SqliteBackend::LoadConversation(std::string_view conversation_id,
                                       size_t max_messages,
                                       StoredConversation* out) {
  ReaderLease r(this);
  Status s = r.Acquire();
  if (!s.ok()) return s;
  return LoadWith(r.get(), conversation_id, 0, 0, max_messages, out);
}

Status SqliteBackend::LoadMessages(std::string_view conversation_id,
                                   int64_t after_seq, int64_t before_seq,
                                   size_t max_newest,
                                   std::vector<MessagePtr>* out) {
  ReaderLease r(this);
  Status s = r.Acquire();
  if (!s.ok()) return s;
  StoredConversation conv;
  s = LoadWith(r.get(), conversation_id, after_seq, before_seq, max_newest,
               &conv);
  if (s.ok()) *out = std::move(conv.messages);
  return s;
}

Status SqliteBackend::Counts(StorageCounts* out) {
  ReaderLease r(this);
  Status s = r.Acquire();
  if (!s.ok()) return s;
  Stmt st;
  s = r->db->Prepare(
      // total() and the CAST cannot overflow on a damaged row, as sum()
      // can (saturating.h).
      "SELECT count(*),"
      " CAST(total(max(message_count - purged_count, 0)) AS INTEGER)"
      " FROM conversations WHERE message_count > 0",
      &st);
  if (!s.ok()) return s;
  s = r->db->Exec("BEGIN");
  if (!s.ok()) return s;
  int64_t conversations = 0;
  int64_t messages = 0;
  if (st.Step(&s)) {
    conversations = st.Int(0);
    messages = st.Int(1);
  }
  st.Reset();
  // The rows count merged messages only (schema version 11): add the
  // others, and the conversations that have nothing else.
  std::vector<MessageOverlay::KeySummary> keys;
  int64_t wm = 0;
  if (s.ok()) s = UnmergedConversations(&r->unmerged, &wm, &keys);
  for (size_t i = 0; s.ok() && i < keys.size(); ++i) {
    const MessageOverlay::KeySummary& k = keys[i];
    r->by_key.Bind(1, k.conv_key);
    if (r->by_key.Step(&s)) {
      const int64_t row_count = r->by_key.Int(4);  // message_count
      UnmergedSummary part;
      s = UnmergedPart(&r->unmerged, wm, k.conv_key,
                       r->by_key.Int(kSummarizedThroughColumn), &k.summary,
                       &part);
      messages = SatAdd(messages, part.count);
      if (row_count == 0 && part.count > 0) ++conversations;
    }
    r->by_key.Reset();
  }
  if (!r->db->Exec("COMMIT").ok()) (void)r->db->Exec("ROLLBACK");
  if (!s.ok()) return s;
  out->conversations = static_cast<uint64_t>(conversations);
  out->messages = static_cast<uint64_t>(messages);
  return s;
}

Status SqliteBackend::WriteDeadLetter(const DeadLetter& d,
                                      int64_t message_seq) {
  WriterExceptionGuard guard(this);
  Status s = InsertDeadLetter(writer_.get(), d, message_seq);
  guard.Dismiss();
  if (s.ok()) {
    last_lsn_ = std::max<uint64_t>(last_lsn_, d.lsn);
    // A message's dead letter may have made its conversation's row, or
    // raised its last_seq: read both afresh (dead letters are rare).
    if (message_seq > 0) ForgetCachedRows();
  }
  return s;
}

Status SqliteBackend::ReadDeadLetters(size_t limit,
                                      std::vector<DeadLetter>* out) {
  ReaderLease r(this);
  Status s = r.Acquire();
  if (!s.ok()) return s;
  return SelectDeadLetters(r->db.get(), limit, out);
}

Status SqliteBackend::TruncateWal(std::chrono::milliseconds timeout) {
  // On a pooled reader connection: the writer thread keeps committing. A
  // TRUNCATE checkpoint takes the write lock (waiting for a transaction in
  // progress, during which the writer's next batch waits in turn), waits
  // for readers of older frames, copies the WAL and truncates the file.
  // SQLite returns BUSY at once, without the busy handler, while another
  // connection holds the checkpoint lock (the checkpoint thread in a
  // pass): try again until the deadline.
  // The wait for a pooled reader counts against the timeout too: with
  // every reader leased (long reads, other TruncateWal calls) it could
  // otherwise take as long as any read's.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ReaderLease r(this);
  Status s = r.AcquireUntil(deadline);
  if (!s.ok()) {
    return s.IsUnavailable()
               ? s.WithPrefix("the WAL was not truncated within " +
                              std::to_string(timeout.count()) + " ms")
               : s;
  }
  sqlite3* db = r->db->raw();
  int rc = SQLITE_OK;
  int log_frames = 0;
  // Each attempt waits at most a short slice: while a TRUNCATE checkpoint
  // waits for readers it holds the write lock, and a writer kept out for
  // its whole busy_timeout would fail its batch and report the store
  // degraded. Attempts are a slice apart, longer than the longest sleep of
  // SQLite's busy handler (100 ms), so a waiting writer gets the lock.
  const int64_t slice_ms =
      std::clamp<int64_t>(options_.busy_timeout.count() / 4, 1, 100);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    sqlite3_busy_timeout(db,
                         static_cast<int>(std::max<int64_t>(
                             0, std::min<int64_t>(left.count(), slice_ms))));
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                   &log_frames, nullptr);
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::max<int64_t>(slice_ms, 2)));
  }
  sqlite3_busy_timeout(db, static_cast<int>(options_.busy_timeout.count()));
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
    return Status::Unavailable(
        "the WAL was not truncated within " + std::to_string(timeout.count()) +
        " ms: another connection holds the write lock or reads older frames");
  }
  if (rc != SQLITE_OK) return SqliteStatus(rc, "wal checkpoint (truncate)", db);
  // SQLite says OK with no frame count (-1) when it did nothing.
  if (log_frames != 0) {
    return Status::Internal("the WAL was not truncated (" +
                            std::to_string(log_frames) + " frames)");
  }
  // SQLite does not sync the truncation: make it survive a power loss.
  return SyncWal(db);
}

}  // namespace convstore::internal
