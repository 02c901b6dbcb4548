// Copyright 2026 The convstore Authors.

#include "store_impl.h"

#include <absl/strings/escaping.h>
#include <absl/strings/numbers.h>
#include <absl/time/time.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <thread>
#include <utility>

#include "clock.h"
#include "history_window.h"
#include "logging.h"
#include "sqlite/sqlite_backend.h"
#include "validation.h"

namespace convstore {

StatusOr<std::unique_ptr<Store>> Store::Open(const Options& options) {
  namespace fs = std::filesystem;
  if (options.path.empty())
    return Status::InvalidArgument("Options::path is empty");
  // SQLite takes a C string: the path would silently end at the NUL.
  if (options.path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("Options::path contains a NUL byte");
  }
  // Before anything touches the file: bad options create nothing (the
  // cache's options too: OpenWithBackend checks them again, too late for
  // that, after the backend created and migrated the file).
  Status valid = internal::ValidateStoreOptions(options);
  if (valid.ok()) valid = internal::CacheImpl::ValidateOptions(options);
  if (!valid.ok()) return valid;
  std::error_code ec;
  fs::path path(options.path);
  bool exists = fs::exists(path, ec);
  if (!exists && options.read_only) {
    return Status::NotFound(options.path +
                            " does not exist (a read-only open creates none)");
  }
  if (!exists && !options.create_if_missing) {
    return Status::NotFound(options.path +
                            " does not exist and create_if_missing is false");
  }
  if (!exists && path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status::IOError("cannot create directory " +
                             path.parent_path().string() + ": " + ec.message());
    }
  }
  std::unique_ptr<internal::SqliteBackend> backend;
  Status s = internal::SqliteBackend::Open(options, &backend);
  if (!s.ok()) return s.WithPrefix("open " + options.path);
  return internal::StoreImpl::OpenWithBackend(options, std::move(backend));
}

namespace internal {
namespace {

std::string EncodeCursor(const ConversationInfo& c) {
  return std::to_string(c.last_at_us) + ":" +
         absl::BytesToHexString(c.conversation_id);
}

bool DecodeCursor(const std::string& cursor, ListQuery* q) {
  size_t colon = cursor.find(':');
  if (colon == std::string::npos) return false;
  std::string hex = cursor.substr(colon + 1);
  if (hex.size() % 2 != 0 ||
      hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return false;
  }
  if (!absl::SimpleAtoi(cursor.substr(0, colon), &q->cursor_last_at_us)) {
    return false;
  }
  q->cursor_id = absl::HexStringToBytes(hex);
  q->has_cursor = true;
  return true;
}

// Descending (last_at_us, conversation_id): the ListConversations order.
bool NewerFirst(const ConversationInfo& a, const ConversationInfo& b) {
  if (a.last_at_us != b.last_at_us) return a.last_at_us > b.last_at_us;
  return a.conversation_id > b.conversation_id;
}

}  // namespace

// Messages an Append on an uncached conversation loads with its summary.
constexpr size_t kAppendLoadMessages = 16;
// The first read through for a token budget: the newest this many older
// messages, doubled while the budget reaches past them.
constexpr size_t kFirstOlderRead = 64;
// The widest seq range ReadOldest reads at once.
constexpr int64_t kMaxSpan = int64_t{1} << 20;

StoreImpl::StoreImpl(const Options& options,
                     std::unique_ptr<StorageBackend> backend,
                     std::shared_ptr<spdlog::logger> log)
    : options_(options),
      log_(std::move(log)),
      backend_(std::move(backend)),
      queue_(options.queue_max_items, options.queue_max_bytes),
      cache_(CacheLimits{
          options.cache_max_bytes, options.cache_max_conversations,
          options.cache_max_messages_per_conversation, options.cache_shards}),
      next_lsn_(backend_->LastCommittedLsn() + 1) {
  writer_ = std::make_unique<Writer>(backend_.get(), &queue_, options_, log_,
                                     next_lsn_.load());
  // A delete the database refused leaves the conversation stored: its
  // emptied entry must not stand for it (it would answer History with
  // nothing and hand out seq 1 again). Shard locks are never held while
  // waiting for the writer, so the writer may take one here.
  writer_->OnSetAside([this](const WriteOp& op) {
    const auto* d = std::get_if<DeleteConversationOp>(&op.payload);
    if (d == nullptr) return;
    ConversationCache::Shard& shard = cache_.ShardFor(d->conversation_id);
    MutexLock lock(&shard.mu);
    CachedConversation* c = shard.Peek(d->conversation_id);
    if (c != nullptr && !shard.ForgetRefusedDelete(c, op.lsn)) {
      log_->error(
          "delete of '{}' (lsn {}) refused by the database; its cache entry "
          "has later writes (up to lsn {}) and is kept",
          d->conversation_id, op.lsn, c->pending_lsn);
    }
  });
  analytics_ = std::make_unique<AnalyticsImpl>(
      options_, this, backend_->analytics(),
      [this](std::string_view id) { return History(id, HistoryOptions{}); },
      [this](uint64_t lsn) {
        return WaitDurable(lsn, std::chrono::seconds(30));
      },
      [this] { return closed_.load(); }, log_);
  kv_cache_ = std::make_unique<CacheImpl>(
      options_, this, backend_->cache(),
      [this](uint64_t lsn) {
        return writer_->WaitDurable(lsn, absl::Now() + absl::Seconds(30));
      },
      [] { return WallMicros(); }, log_);
  audit_ = std::make_unique<AuditLogImpl>(
      options_, this, backend_->audit(), [] { return WallMicros(); },
      [this] { return closed_.load(); });
  analytics_->set_audit_sink(audit_.get());
  keys_ = std::make_unique<KeysImpl>(
      options_, this, backend_->keys(), audit_.get(),
      [this](uint64_t lsn) {
        return writer_->WaitDurable(lsn, absl::Now() + absl::Seconds(30));
      },
      [] { return WallMicros(); }, [] { return MonoMicros(); }, log_);
  releaser_ = std::make_unique<MemoryReleaser>(
      options_.release_memory_interval,
      [this] { return cache_.evictions() + cache_.pinned_drops(); }, log_);
  MemoryGovernor::Config governor;
  governor.limit = options_.memory_limit_bytes;
  governor.configured = cache_.max_bytes();
  governor.floor = governor.configured / 4;
  // 0.1% of the limit per quarter-second check: a mark at 95% of the
  // limit falls under 85% in about 25 s.
  governor.decay = governor.limit / 1000;
  governor_ = std::make_unique<MemoryGovernor>(
      governor, ProcessRssBytes,
      [this, configured = governor.configured](size_t bound) {
        const bool changed = cache_.SetMaxBytes(bound);
        // At the configured bound the shards' own writes enforce it, as
        // without a limit: no sweep of every shard lock four times a second.
        if (changed || bound < configured) {
          cache_.EnforceAll(writer_->durable_lsn(), changed);
        }
      },
      log_);
}

void StoreImpl::AuditSystem(std::string action, std::string resource,
                            std::string outcome, std::string details_json,
                            bool wait) {
  AuditEvent e;
  e.actor = "system";
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.outcome = std::move(outcome);
  e.details_json = std::move(details_json);
  const std::string what = e.action + " '" + e.resource + "'";
  Status s = audit_->Record(std::move(e), wait);
  if (!s.ok()) {
    log_->error("audit record for {} not written: {}", what, s.ToString());
  }
}

StatusOr<std::unique_ptr<Store>> StoreImpl::OpenWithBackend(
    const Options& options, std::unique_ptr<StorageBackend> backend) {
  Status s = ValidateStoreOptions(options);
  if (s.ok()) s = CacheImpl::ValidateOptions(options);
  if (!s.ok()) {
    (void)backend->Close();
    return s;
  }
  auto log = MakeLogger(options);
  backend->SetLogger(log);
  std::unique_ptr<StoreImpl> store(
      new StoreImpl(options, std::move(backend), log));
  int64_t t0 = MonoMicros();
  s = store->Warm();
  if (s.ok()) s = store->kv_cache_->Reload();
  if (s.ok()) s = store->keys_->Reload();
  if (!s.ok()) {
    (void)store->backend_->Close();
    {
      MutexLock lock(&store->close_mu_);  // as annotated; nobody else has it
      store->close_done_ = true;
    }
    return s.WithPrefix("warming the caches");
  }
  CacheCounters c = store->cache_.Totals();
  log->info("opened {}: warmed {} conversations, {} messages in {} ms",
            options.path, c.conversations, c.messages,
            (MonoMicros() - t0) / 1000);
  // A read-only store writes nothing: no writer (Flush has nothing to
  // wait for), no expiry sweep, no key-usage flush; its keys thread only
  // refreshes.
  if (!options.read_only) {
    store->writer_->Start();
    store->kv_cache_->Start();
  }
  store->keys_->Start();
  store->releaser_->Start();
  store->governor_->Start();
  return std::unique_ptr<Store>(std::move(store));
}

StoreImpl::~StoreImpl() {
  bool done;
  {
    MutexLock lock(&close_mu_);
    done = close_done_;
  }
  if (done) return;
  StatusOr<CloseReport> r = Close(std::chrono::seconds(60));
  if (!r.ok()) log_->error("close in destructor: {}", r.status().ToString());
}

Status StoreImpl::Warm() {
  if (options_.warm_conversations == 0) return Status::OK();
  size_t max = options_.warm_conversations < 0
                   ? options_.cache_max_conversations
                   : static_cast<size_t>(options_.warm_conversations);
  size_t count = 0;
  size_t bytes = 0;
  return backend_->ScanRecent(
      max, options_.cache_max_messages_per_conversation,
      [&](StoredConversation&& conv) {
        std::string id = conv.info.conversation_id;
        ConversationCache::Shard& shard = cache_.ShardFor(id);
        MutexLock lock(&shard.mu);
        if (shard.Find(id) != nullptr) return true;
        CachedConversation* c = shard.Insert(id, /*as_oldest=*/true);
        shard.Load(c, std::move(conv));
        bytes += c->bytes;
        ++count;
        // Stop before the bounds would evict what was just loaded.
        return count < options_.cache_max_conversations &&
               bytes + bytes / 8 < options_.cache_max_bytes;
      });
}

Status StoreImpl::LoadEntry(ConversationCache::Shard& shard,
                            std::string_view id, size_t max_messages,
                            CachedConversation** out) {
  *out = nullptr;
  StoredConversation stored;
  Status s = backend_->LoadConversation(
      id,
      std::clamp<size_t>(max_messages, 1,
                         options_.cache_max_messages_per_conversation),
      &stored);
  if (!s.ok()) return s.WithPrefix("read-through");
  if (!stored.exists) return Status::OK();
  *out = shard.Insert(id);
  shard.Load(*out, std::move(stored));
  return Status::OK();
}

StatusOr<AppendResult> StoreImpl::Append(std::string_view conversation_id,
                                         Message message,
                                         const AppendOptions& options) {
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  if (options_.read_only) return ReadOnlyRefusal();
  Status s = ValidateConversationId(conversation_id, options_);
  if (s.ok()) s = ValidateMessage(message, options_);
  if (!s.ok()) return s;

  auto m = std::make_shared<Message>(std::move(message));
  if (m->created_at_us == 0) m->created_at_us = WallMicros();
  const size_t bytes = MessageBytes(*m);
  const Durability durability = options_.durability.messages;
  s = durability == Durability::kBestEffort
          ? queue_.ReserveBestEffort(bytes)
          : queue_.Reserve(bytes, options_.queue_full_wait);
  if (!s.ok()) return s;

  AppendResult result;
  {
    ConversationCache::Shard& shard = cache_.ShardFor(conversation_id);
    MutexLock lock(&shard.mu);
    CachedConversation* c = shard.Find(conversation_id);
    if (c != nullptr) {
      shard.PrefetchForAdd(c);
      shard.RecordHit();
    } else {
      shard.RecordMiss();
      // Appending needs only the summary (for the next seq); a few newest
      // messages come along for a History call that usually follows.
      s = LoadEntry(shard, conversation_id, kAppendLoadMessages, &c);
      if (!s.ok()) {
        queue_.Cancel(bytes);
        return s;
      }
      if (c == nullptr) c = shard.Insert(conversation_id);
    }
    m->seq = c->info.last_seq + 1;
    result.seq = m->seq;
    // Everything that allocates happens before the LSN is taken: an LSN
    // that never reaches the queue would stall the writer for good.
    WriteOp op;
    op.bytes = bytes;
    if (!c->shared_id) c->shared_id = c->id;
    op.payload = AppendMessageOp{c->shared_id, m};
    result.lsn = next_lsn_.fetch_add(1, std::memory_order_acq_rel);
    op.lsn = result.lsn;
    op.enqueued_mono_us = MonoMicros();
    queue_.Push(std::move(op));
    shard.Add(c, std::move(m), result.lsn);
    shard.Enforce(writer_->durable_lsn(), c);
  }
  if (writer_->sleeping() && queue_.items() >= options_.max_batch_ops) {
    writer_->Nudge();
  }
  if (options.sync || durability == Durability::kSync) {
    s = writer_->WaitDurable(
        result.lsn, absl::Now() + absl::FromChrono(options.sync_timeout));
    if (!s.ok()) {
      return s.WithPrefix("acknowledged as seq " + std::to_string(result.seq) +
                          ", lsn " + std::to_string(result.lsn) +
                          ", but not yet durable");
    }
  }
  return result;
}

Status StoreImpl::Answer(ConversationCache::Shard& shard, CachedConversation* c,
                         const HistoryOptions& options,
                         std::vector<MessagePtr>* out, bool miss_counted) {
  const auto& msgs = c->messages;
  const int64_t first_seq =
      msgs.empty() ? c->info.last_seq + 1 : msgs.front().message->seq;
  size_t start = 0;
  if (options.after_seq >= first_seq) {
    start = std::min<size_t>(
        msgs.size(), static_cast<size_t>(options.after_seq - first_seq) + 1);
  }
  Window w = ComputeWindow(
      msgs.size() - start,
      [&](size_t i) -> const Message& { return *msgs[start + i].message; },
      options, c->first_system.get());
  if (c->complete || !w.wants_older || options.after_seq >= first_seq - 1) {
    if (!miss_counted) shard.RecordHit();
    out->reserve(w.end - w.begin + (w.pin_system ? 1 : 0));
    if (w.pin_system) out->push_back(c->first_system);
    for (size_t i = w.begin; i < w.end; ++i) {
      out->push_back(msgs[start + i].message);
    }
    return Status::OK();
  }
  std::vector<MessagePtr> all;
  auto window_all = [&](const std::vector<MessagePtr>& older) {
    all.assign(older.begin(), older.end());
    for (size_t i = start; i < msgs.size(); ++i) {
      const MessagePtr& m = msgs[i].message;
      if (all.empty() || m->seq > all.back()->seq) all.push_back(m);
    }
    w = ComputeWindow(
        all.size(), [&](size_t i) -> const Message& { return *all[i]; },
        options, c->first_system.get());
  };
  if (c->only_system_before) {
    // Older than the entry, only the pinned prompt is stored.
    std::vector<MessagePtr> older;
    const MessagePtr& sys = c->first_system;
    if (sys->seq > options.after_seq && sys->seq < first_seq) {
      older.push_back(sys);
    }
    window_all(older);
    if (!miss_counted) shard.RecordHit();
    if (w.pin_system) out->push_back(sys);
    out->insert(out->end(), all.begin() + w.begin, all.begin() + w.end);
    return Status::OK();
  }
  // The window reaches past the cached suffix: read the older, durable
  // messages through and window over them and the suffix. Only as many as
  // the window can take are read (under the shard lock): counted, not
  // computed from seqs, which may have gaps (retention).
  if (!miss_counted) shard.RecordMiss();
  std::vector<MessagePtr> older;
  Status s;
  if (options.limit > 0) {
    s = ReadOldest(c->id, options.after_seq, first_seq, options.limit, &older);
    if (s.ok()) window_all(older);
  } else {
    // The newest of the older messages, in reads that double until the
    // window stops short of what was read (or everything was). last_n
    // alone needs last_n - cached of them; with exactly last_n cached it
    // asks only whether a tool result at the window's start is an orphan,
    // which the one message before it answers. No bound reads all.
    size_t newest = 0;  // all
    if (options.last_n > 0) {
      newest = options.last_n > msgs.size() ? options.last_n - msgs.size() : 1;
    }
    if (options.token_budget > 0) newest = std::max(newest, kFirstOlderRead);
    for (;;) {
      s = backend_->LoadMessages(c->id, options.after_seq, first_seq, newest,
                                 &older);
      if (!s.ok()) break;
      window_all(older);
      const bool everything = newest == 0 || older.size() < newest;
      if (everything && options.after_seq == 0 && older.size() == 1 &&
          c->first_system != nullptr && older[0]->seq == c->first_system->seq) {
        // Remembered, so the next call past the gap stays in memory.
        c->only_system_before = true;
      }
      if (everything || !w.wants_older) break;
      newest *= 2;
    }
  }
  if (!s.ok()) return s.WithPrefix("read-through");
  shard.Prepend(c, older);
  if (w.pin_system) out->push_back(c->first_system);
  out->insert(out->end(), all.begin() + w.begin, all.begin() + w.end);
  shard.Enforce(writer_->durable_lsn(), c);
  return Status::OK();
}

Status StoreImpl::ReadOldest(const std::string& id, int64_t after_seq,
                             int64_t before_seq, size_t count,
                             std::vector<MessagePtr>* out) {
  // Seq ranges from after_seq, each twice as wide as the one before, until
  // they hold `count` messages or reach before_seq. Without gaps the first
  // range, `count` seqs wide, is the answer.
  out->clear();
  std::vector<MessagePtr> part;
  int64_t lo = after_seq;
  int64_t span = static_cast<int64_t>(std::min<size_t>(count, kMaxSpan));
  while (out->size() < count && lo < before_seq - 1) {
    const int64_t hi = before_seq - lo > span + 1 ? lo + span + 1 : before_seq;
    Status s = backend_->LoadMessages(id, lo, hi, 0, &part);
    if (!s.ok()) return s;
    out->insert(out->end(), part.begin(), part.end());
    lo = hi - 1;
    span = std::min(span * 2, kMaxSpan);
  }
  if (out->size() > count) out->resize(count);
  return Status::OK();
}

StatusOr<std::vector<MessagePtr>> StoreImpl::History(
    std::string_view conversation_id, const HistoryOptions& options) {
  // Counted for Close: a read through holds a snapshot that would keep
  // Close's checkpoint from truncating the WAL.
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  Status s = ValidateConversationId(conversation_id, options_);
  if (s.ok()) s = ValidateHistoryOptions(options);
  if (!s.ok()) return s;
  std::vector<MessagePtr> out;
  if (options.from_storage) {
    s = Flush(std::chrono::seconds(30));
    if (!s.ok())
      return s.WithPrefix("from_storage needs pending writes durable");
    StoredConversation stored;
    s = backend_->LoadConversation(conversation_id, 0, &stored);
    if (!s.ok()) return s;
    std::vector<MessagePtr>& all = stored.messages;
    auto first = std::partition_point(
        all.begin(), all.end(),
        [&](const MessagePtr& m) { return m->seq <= options.after_seq; });
    size_t start = static_cast<size_t>(first - all.begin());
    Window w = ComputeWindow(
        all.size() - start,
        [&](size_t i) -> const Message& { return *all[start + i]; }, options,
        stored.first_system.get());
    if (w.pin_system) out.push_back(stored.first_system);
    out.insert(out.end(), all.begin() + start + w.begin,
               all.begin() + start + w.end);
    return out;
  }
  ConversationCache::Shard& shard = cache_.ShardFor(conversation_id);
  MutexLock lock(&shard.mu);
  CachedConversation* c = shard.Find(conversation_id);
  const bool loaded = c == nullptr;
  if (loaded) {
    shard.RecordMiss();
    // last_n alone says how much is needed; otherwise load up to the bound.
    const bool only_last_n = options.last_n > 0 && options.token_budget == 0 &&
                             options.after_seq == 0;
    s = LoadEntry(shard, conversation_id,
                  only_last_n ? options.last_n
                              : options_.cache_max_messages_per_conversation,
                  &c);
    if (!s.ok()) return s;
    if (c == nullptr) return out;  // no such conversation
    shard.Enforce(writer_->durable_lsn(), c);
  }
  s = Answer(shard, c, options, &out, /*miss_counted=*/loaded);
  if (!s.ok()) return s;
  return out;
}

StatusOr<ConversationPage> StoreImpl::ListConversations(
    const ListOptions& options) {
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  if (options.limit == 0 || options.limit > 10000) {
    return Status::InvalidArgument("limit must be in 1..10000");
  }
  ListQuery q;
  q.user_id = options.user_id;
  if (!options.cursor.empty() && !DecodeCursor(options.cursor, &q)) {
    return Status::InvalidArgument("malformed cursor");
  }
  // Conversations with writes not yet durable: the cache has their newest
  // summary (and knows about pending deletes); the database has the rest.
  const uint64_t durable = writer_->durable_lsn();
  absl::flat_hash_map<std::string, ConversationInfo> dirty;
  for (size_t i = 0; i < cache_.shard_count(); ++i) {
    ConversationCache::Shard& shard = cache_.shard(i);
    std::vector<const CachedConversation*> found;
    MutexLock lock(&shard.mu);
    shard.CollectDirty(durable, &found);
    for (const CachedConversation* c : found) dirty[c->id] = c->info;
  }
  q.limit = options.limit + dirty.size();
  std::vector<ConversationInfo> rows;
  Status s = backend_->ListConversations(q, &rows);
  if (!s.ok()) return s;
  const bool db_may_have_more = rows.size() == q.limit;
  std::vector<ConversationInfo> merged;
  merged.reserve(rows.size() + dirty.size());
  for (ConversationInfo& r : rows) {
    if (!dirty.contains(r.conversation_id)) merged.push_back(std::move(r));
  }
  ConversationInfo bound;
  bound.last_at_us = q.cursor_last_at_us;
  bound.conversation_id = q.cursor_id;
  for (auto& [id, info] : dirty) {
    if (info.message_count == 0) continue;  // deleted
    if (!q.user_id.empty() && info.user_id != q.user_id) continue;
    if (q.has_cursor && !NewerFirst(bound, info)) continue;
    merged.push_back(info);
  }
  std::sort(merged.begin(), merged.end(), NewerFirst);
  ConversationPage page;
  bool more = db_may_have_more || merged.size() > options.limit;
  if (merged.size() > options.limit) merged.resize(options.limit);
  page.conversations = std::move(merged);
  if (more && !page.conversations.empty()) {
    page.next_cursor = EncodeCursor(page.conversations.back());
  }
  return page;
}

StatusOr<uint64_t> StoreImpl::DeleteConversation(
    std::string_view conversation_id) {
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  if (options_.read_only) return ReadOnlyRefusal();
  Status s = ValidateConversationId(conversation_id, options_);
  if (!s.ok()) return s;
  const size_t bytes = sizeof(WriteOp) + conversation_id.size();
  s = queue_.Reserve(bytes, options_.queue_full_wait);
  if (!s.ok()) return s;
  // The audit record rides on the delete op: one LSN, one transaction.
  AuditAppend record;
  record.event.actor = "system";
  record.event.action = "conversation.delete";
  record.event.resource = std::string(conversation_id);
  record.event.outcome = "success";
  record.ts_us = WallMicros();
  auto audit = std::make_shared<const AuditAppend>(std::move(record));
  ConversationCache::Shard& shard = cache_.ShardFor(conversation_id);
  MutexLock lock(&shard.mu);
  CachedConversation* c = shard.Find(conversation_id);
  if (c == nullptr) c = shard.Insert(conversation_id);
  WriteOp op;
  op.bytes = bytes;
  op.payload = DeleteConversationOp{c->id, std::move(audit)};
  uint64_t lsn = next_lsn_.fetch_add(1, std::memory_order_acq_rel);
  op.lsn = lsn;
  op.enqueued_mono_us = MonoMicros();
  queue_.Push(std::move(op));
  shard.Clear(c, lsn);
  shard.Enforce(writer_->durable_lsn(), c);
  return lsn;
}

StatusOr<uint64_t> StoreImpl::Submit(WritePayload payload, size_t bytes,
                                     Durability durability,
                                     std::chrono::milliseconds sync_timeout) {
  return SubmitAndWait(std::move(payload), bytes, durability, sync_timeout,
                       /*refusal_is_error=*/false, nullptr);
}

StatusOr<uint64_t> StoreImpl::SubmitApplied(
    WritePayload payload, size_t bytes,
    std::chrono::milliseconds sync_timeout) {
  return SubmitAndWait(std::move(payload), bytes, Durability::kSync,
                       sync_timeout, /*refusal_is_error=*/true, nullptr);
}

StatusOr<uint64_t> StoreImpl::SubmitAndWait(
    WritePayload payload, size_t bytes, Durability durability,
    std::chrono::milliseconds sync_timeout, bool refusal_is_error,
    Submitted* out) {
  Submitted ignored;
  if (out == nullptr) out = &ignored;
  *out = Submitted();
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  Status s = Reserve(bytes, durability);
  if (!s.ok()) return s;
  // Watched only when waited for: TakeRefusal forgets the LSN.
  StatusOr<uint64_t> pushed =
      Enqueue(std::move(payload), bytes,
              refusal_is_error && durability == Durability::kSync);
  if (!pushed.ok()) return pushed;
  out->queued = true;
  const uint64_t lsn = *pushed;
  if (durability == Durability::kSync) {
    s = writer_->WaitDurable(lsn, absl::Now() + absl::FromChrono(sync_timeout));
    // Taken whatever the wait's outcome, so the LSN is forgotten.
    Status refused =
        refusal_is_error ? writer_->TakeRefusal(lsn) : Status::OK();
    out->refused = !refused.ok();
    if (!s.ok()) {
      return s.WithPrefix("acknowledged as lsn " + std::to_string(lsn) +
                          ", but not yet durable");
    }
    if (!refused.ok()) {
      return refused.WithPrefix("write lsn " + std::to_string(lsn) +
                                " refused by the database and set aside as a "
                                "dead letter");
    }
  }
  return lsn;
}

uint64_t StoreImpl::DurableLsn() const { return writer_->durable_lsn(); }

Status StoreImpl::Reserve(size_t bytes, Durability durability) {
  if (options_.read_only) return ReadOnlyRefusal();
  return durability == Durability::kBestEffort
             ? queue_.ReserveBestEffort(bytes)
             : queue_.Reserve(bytes, options_.queue_full_wait);
}

StatusOr<uint64_t> StoreImpl::SubmitReserved(WritePayload payload, size_t bytes,
                                             Durability durability) {
  (void)durability;  // chosen at Reserve; the caller waits for kSync
  return Enqueue(std::move(payload), bytes, /*watch=*/false);
}

StatusOr<uint64_t> StoreImpl::Enqueue(WritePayload payload, size_t bytes,
                                      bool watch) {
  InflightGuard guard(this);
  if (guard.closed()) {
    queue_.Cancel(bytes);
    return Status::FailedPrecondition("store is closed");
  }
  WriteOp op;
  op.bytes = bytes;
  op.payload = std::move(payload);
  const uint64_t lsn = next_lsn_.fetch_add(1, std::memory_order_acq_rel);
  op.lsn = lsn;
  op.enqueued_mono_us = MonoMicros();
  if (watch) writer_->WatchRefusal(lsn);
  queue_.Push(std::move(op));
  if (writer_->sleeping() && queue_.items() >= options_.max_batch_ops) {
    writer_->Nudge();
  }
  return lsn;
}

void StoreImpl::CancelReserved(size_t bytes) { queue_.Cancel(bytes); }

Status StoreImpl::ReserveBestEffortUncounted(size_t bytes) {
  if (options_.read_only) return ReadOnlyRefusal();
  return queue_.ReserveBestEffortUncounted(bytes);
}

void StoreImpl::NoteShed() { queue_.NoteShed(); }

Status StoreImpl::Flush(std::chrono::milliseconds timeout) {
  return AwaitDurable(appended_lsn(), timeout);
}

Status StoreImpl::WaitDurable(uint64_t lsn, std::chrono::milliseconds timeout) {
  if (lsn > appended_lsn()) {
    return Status::InvalidArgument("lsn " + std::to_string(lsn) +
                                   " has not been handed out yet");
  }
  return AwaitDurable(lsn, timeout);
}

Status StoreImpl::AwaitDurable(uint64_t lsn,
                               std::chrono::milliseconds timeout) {
  // No closed_ check: during Close the writer still commits every LSN
  // handed out (or gives up at Close's timeout), and after it durable_lsn
  // is final, so the answer is the truth either way.
  Status s = writer_->WaitDurable(lsn, absl::Now() + absl::FromChrono(timeout));
  if (s.ok() || !writer_->stopped()) return s;
  const uint64_t durable = writer_->durable_lsn();
  if (durable >= lsn) return Status::OK();  // committed as the writer stopped
  return Status::FailedPrecondition(
      "store closed before write lsn " + std::to_string(lsn) +
      " was made durable (durable up to lsn " + std::to_string(durable) + ")");
}

StatusOr<CloseReport> StoreImpl::Close(std::chrono::milliseconds timeout) {
  MutexLock lock(&close_mu_);
  if (close_done_) return Status::FailedPrecondition("store already closed");
  close_done_ = true;
  releaser_->Stop();
  governor_->Stop();
  // The cache's sweep thread queues writes: it stops before the drain.
  kv_cache_->Stop();
  // Queues the last usage counts while the store still takes writes.
  keys_->Stop();
  closed_.store(true, std::memory_order_seq_cst);
  // A call inside may be waiting for queue room or for its write to be
  // durable (the writer still runs): yield at first, then sleep briefly.
  for (int spins = 0; !inflight_.Idle(); ++spins) {
    if (spins < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  const uint64_t final_lsn = appended_lsn();
  Status s = writer_->Stop(final_lsn, absl::Now() + absl::FromChrono(timeout));
  WriterCounters wc = writer_->counters();
  CloseReport report;
  report.written = wc.rows_committed;
  report.failed = wc.writes_failed;
  report.last_durable_lsn = writer_->durable_lsn();
  report.remaining = final_lsn - report.last_durable_lsn;
  StatusOr<BackendCloseReport> closed = backend_->Close();
  if (closed.ok()) report.wal_truncated = closed->wal_truncated;
  if (s.ok()) s = closed.status();
  log_->info(
      "closed {}: {} written, {} failed, {} remaining, durable lsn {}, WAL {}",
      options_.path, report.written, report.failed, report.remaining,
      report.last_durable_lsn,
      report.wal_truncated ? "truncated" : "not truncated");
  if (!s.ok()) {
    return s.WithPrefix("close: " + std::to_string(report.remaining) +
                        " acknowledged writes not committed (durable up to "
                        "lsn " +
                        std::to_string(report.last_durable_lsn) + ")");
  }
  return report;
}

Stats StoreImpl::GetStats() {
  Stats st;
  // durable first: whatever is durable was appended, so durable <= appended
  // holds however much happens between the two reads.
  st.durable_lsn = writer_->durable_lsn();
  st.appended_lsn = appended_lsn();
  CacheCounters cc = cache_.Totals();
  st.cached_conversations = cc.conversations;
  st.cached_messages = cc.messages;
  st.cached_bytes = cc.bytes;
  st.cache_hits = cache_.hits();
  st.cache_misses = cache_.misses();
  st.cache_evictions = cache_.evictions();
  st.cache_pinned_drops = cache_.pinned_drops();
  st.cache_eviction_walks = cache_.walks();
  st.cache_bound_bytes = cache_.max_bytes();
  {
    StorageCounts counts;
    InflightGuard guard(this);  // a read transaction, as in History
    if (!guard.closed() && backend_->Counts(&counts).ok()) {
      st.db_conversations = counts.conversations;
      st.db_messages = counts.messages;
    }
  }
  st.queue_items = queue_.items();
  st.queue_bytes = queue_.bytes();
  st.queue_items_high_water = queue_.items_high_water();
  st.queue_bytes_high_water = queue_.bytes_high_water();
  st.queue_rejections = queue_.rejections();
  st.best_effort_shed = queue_.shed();
  WriterCounters wc = writer_->counters();
  st.batches_committed = wc.batches_committed;
  st.rows_committed = wc.rows_committed;
  st.writes_failed = wc.writes_failed;
  st.commit_errors = wc.commit_errors;
  st.retries = wc.retries;
  st.dead_letters = wc.dead_letters;
  st.dead_letters_in_file = wc.dead_letters_in_file;
  st.commit_latency_p50_us = wc.commit_p50_us;
  st.commit_latency_p99_us = wc.commit_p99_us;
  st.enqueue_to_durable_p50_us = wc.e2d_p50_us;
  st.enqueue_to_durable_p99_us = wc.e2d_p99_us;
  const UpkeepCounters uc = backend_->upkeep_counters();
  st.index_merges = uc.index_merges;
  st.index_merge_total_us = uc.index_merge_total_us;
  st.index_merge_max_us = uc.index_merge_max_us;
  st.unmerged_messages = uc.unmerged_messages;
  Status h = writer_->health();
  if (!h.ok()) st.background_error = h.ToString();
  if (st.durable_lsn < st.appended_lsn) {
    int64_t oldest = writer_->oldest_pending_mono_us();
    if (oldest > 0) st.oldest_unflushed_age_us = MonoMicros() - oldest;
  }
  return st;
}

StatusOr<std::vector<DeadLetter>> StoreImpl::DeadLetters(size_t limit) {
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  if (limit == 0 || limit > 10000) {
    return Status::InvalidArgument("limit must be in 1..10000");
  }
  std::vector<DeadLetter> out;
  Status s = backend_->ReadDeadLetters(limit, &out);
  if (!s.ok()) return s;
  return out;
}

Status StoreImpl::TruncateWal(std::chrono::milliseconds timeout) {
  // Counted for Close, which waits for it (at most `timeout`) before its
  // own checkpoint: a TruncateWal holding the write lock or a snapshot
  // then could keep Close from truncating, and one still running after
  // Close returned would work on a file the caller thinks closed.
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  if (options_.read_only) return ReadOnlyRefusal();
  if (timeout.count() < 0 || timeout.count() > INT32_MAX) {
    return Status::InvalidArgument("timeout must be 0..2^31-1 ms");
  }
  return backend_->TruncateWal(timeout);
}

Status StoreImpl::Health() { return writer_->health(); }

}  // namespace internal
}  // namespace convstore
