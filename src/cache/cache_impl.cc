// Copyright 2026 The convstore Authors.

#include "cache/cache_impl.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "validation.h"

namespace convstore::internal {
namespace {

Status CheckName(const char* what, std::string_view v, size_t max) {
  if (v.empty()) {
    return Status::InvalidArgument(std::string("cache ") + what + " is empty");
  }
  if (v.size() > max) {
    return Status::InvalidArgument(std::string("cache ") + what + " is " +
                                   std::to_string(v.size()) +
                                   " bytes, more than " + std::to_string(max));
  }
  if (v.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string("cache ") + what +
                                   " contains NUL");
  }
  if (!IsValidUtf8(v)) {
    return Status::InvalidArgument(std::string("cache ") + what +
                                   " is not valid UTF-8");
  }
  return Status::OK();
}

Status CheckNsKey(std::string_view ns, std::string_view key) {
  Status s = CheckName("namespace", ns, kCacheMaxNsBytes);
  if (s.ok()) s = CheckName("key", key, kCacheMaxKeyBytes);
  return s;
}

size_t OpBytes(std::string_view ns, std::string_view key, size_t value) {
  return sizeof(WriteOp) + ns.size() + key.size() + value;
}

// Purges of kCachePurgeBatch rows that `rows` expired rows need.
int64_t PurgeBatchesFor(int64_t rows) {
  const auto batch = static_cast<int64_t>(kCachePurgeBatch);
  return (rows + batch - 1) / batch;
}

// A counter's text: an optional '-' and decimal digits, nothing else (no
// sign '+', no spaces), within int64.
bool ParseCounter(std::string_view text, int64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// The largest value a row can hold: below SQLite's default
// SQLITE_MAX_LENGTH (1e9) and INT_MAX, the bind length.
constexpr size_t kCacheValueLimit = size_t{512} << 20;
// The smallest useful bound: a few small entries.
constexpr size_t kCacheMinBytes = 1024;

}  // namespace

CacheImpl::CacheImpl(const Options& options, WritePath* write_path,
                     CacheStorage* storage, WaitFn wait_durable, NowFn now,
                     std::shared_ptr<spdlog::logger> log)
    : options_(options),
      write_path_(write_path),
      storage_(storage),
      wait_durable_(std::move(wait_durable)),
      now_(std::move(now)),
      log_(std::move(log)),
      durability_(options.durability.cache),
      max_bytes_(options.cache_entries_max_bytes) {
  // ValidateOptions refuses 0 at Open; a test's direct construction still
  // gets one shard.
  const size_t n = std::max<size_t>(1, options.cache_entries_shards);
  shards_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<EntryShard>(&total_bytes_));
  }
}

CacheImpl::~CacheImpl() { Stop(); }

Status CacheImpl::ValidateOptions(const Options& options) {
  if (options.cache_max_value_bytes > kCacheValueLimit) {
    return Status::InvalidArgument(
        "Options::cache_max_value_bytes is " +
        std::to_string(options.cache_max_value_bytes) + "; at most " +
        std::to_string(kCacheValueLimit) + " bytes fit one database row");
  }
  if (options.cache_entries_max_bytes < kCacheMinBytes) {
    return Status::InvalidArgument(
        "Options::cache_entries_max_bytes is " +
        std::to_string(options.cache_entries_max_bytes) + "; at least " +
        std::to_string(kCacheMinBytes) + " bytes are needed");
  }
  if (options.cache_entries_shards == 0 ||
      options.cache_entries_shards > kMaxCacheShards) {
    return Status::InvalidArgument(
        "Options::cache_entries_shards is " +
        std::to_string(options.cache_entries_shards) + "; it must be 1 to " +
        std::to_string(kMaxCacheShards));
  }
  return Status::OK();
}

EntryShard& CacheImpl::ShardFor(const HashedNsKey& k) {
  // The shard comes from the hash's top bits: the shard's own set uses the
  // low 7 bits as control bytes, which a `h % n` shard choice would fix.
  return *shards_[(k.hash >> 40) % shards_.size()];
}

Status CacheImpl::CheckOpen() const {
  if (stopped_.load(std::memory_order_relaxed)) {
    return Status::FailedPrecondition("store is closed");
  }
  return Status::OK();
}

Status CacheImpl::ExpiryFor(std::chrono::milliseconds ttl, int64_t now_us,
                            int64_t* out) const {
  if (ttl.count() < 0) {
    return Status::InvalidArgument("cache ttl is negative (" +
                                   std::to_string(ttl.count()) + " ms)");
  }
  if (ttl.count() == 0) {
    *out = 0;
    return Status::OK();
  }
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t ttl_ms = ttl.count();
  *out = ttl_ms > (max - now_us) / 1000 ? max : now_us + ttl_ms * 1000;
  return Status::OK();
}

StatusOr<uint64_t> CacheImpl::Queue(CacheOp op, size_t bytes,
                                    Durability durability, bool count_shed) {
  if (durability == Durability::kSync) durability = Durability::kBatched;
  StatusOr<uint64_t> lsn =
      write_path_->Submit(WritePayload(std::move(op)), bytes, durability);
  if (!lsn.ok() && durability == Durability::kBestEffort &&
      lsn.status().IsResourceExhausted()) {
    if (count_shed) shed_.fetch_add(1, std::memory_order_relaxed);
    return uint64_t{0};
  }
  return lsn;
}

bool CacheImpl::OverBound() const {
  return total_bytes_.load(std::memory_order_relaxed) > max_bytes_;
}

void CacheImpl::Evict(EntryShard& shard, const CacheEntry* keep,
                      int64_t now_us) {
  if (!OverBound()) return;
  std::vector<std::pair<std::string, std::string>> evicted;
  // Expired entries go first (their rows with the next purge), so a live
  // entry is never evicted while an expired one holds bytes here.
  shard.EvictOver(max_bytes_, now_us, keep, &evicted);
  // The rows go too, so the file stays about as big as memory. Never
  // waiting: a shed delete leaves a row that a later Open reloads only if
  // it still has time left and fits.
  for (auto& [ns, key] : evicted) {
    const size_t bytes = OpBytes(ns, key, 0);
    (void)Queue(CacheOp{CacheDelete{std::move(ns), std::move(key)}}, bytes,
                Durability::kBestEffort, /*count_shed=*/false);
  }
}

void CacheImpl::EvictElsewhere(const EntryShard* written, int64_t now_us) {
  if (!OverBound()) return;
  const size_t n = shards_.size();
  const size_t start = evict_cursor_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n && OverBound(); ++i) {
    EntryShard& shard = *shards_[(start + i) % n];
    if (&shard == written) continue;  // its own walk took what it could
    MutexLock lock(&shard.mu);
    Evict(shard, nullptr, now_us);
  }
}

StatusOr<bool> CacheImpl::ReserveRoom(size_t bytes, Durability d) {
  if (d == Durability::kSync) d = Durability::kBatched;
  if (d != Durability::kBestEffort) {
    Status s = write_path_->Reserve(bytes, d);
    if (!s.ok()) return s;
    return true;
  }
  // Counted by CountShed, once the write is applied: a Touch of a missing
  // entry or a refused Increment changes nothing, so nothing was shed.
  Status s = write_path_->ReserveBestEffortUncounted(bytes);
  if (s.ok()) return true;
  if (s.IsResourceExhausted()) return false;
  return s;
}

void CacheImpl::CountShed() {
  shed_.fetch_add(1, std::memory_order_relaxed);
  write_path_->NoteShed();
}

StatusOr<uint64_t> CacheImpl::SubmitInto(WritePayload payload, size_t bytes,
                                         bool reserved, Durability d) {
  if (!reserved) return uint64_t{0};
  return write_path_->SubmitReserved(std::move(payload), bytes, d);
}

WritePayload CacheImpl::UpsertPayload(const HashedNsKey& k,
                                      std::shared_ptr<const std::string> value,
                                      int64_t expires_at_us, int64_t now_us) {
  CacheUpsert up;
  up.ns.assign(k.view.ns);
  up.key.assign(k.view.key);
  up.value = std::move(value);
  up.expires_at_us = expires_at_us;
  up.updated_at_us = now_us;
  return WritePayload(CacheOp{std::move(up)});
}

StatusOr<uint64_t> CacheImpl::QueueUpsert(
    EntryShard& shard, const HashedNsKey& k, WritePayload payload,
    std::shared_ptr<const std::string> value, CacheEntryPtr fresh,
    int64_t expires_at_us, int64_t now_us, size_t bytes, bool reserved,
    CacheEntryPtr* replaced) {
  StatusOr<uint64_t> lsn =
      SubmitInto(std::move(payload), bytes, reserved, durability_);
  if (!lsn.ok()) return lsn;
  if (fresh == nullptr) fresh = CacheEntry::Create(k, value);
  CacheEntry* e = shard.Put(k, std::move(fresh), expires_at_us, replaced);
  if (!reserved) CountShed();  // applied, not queued
  Evict(shard, e, now_us);
  return lsn;
}

CacheEntry* CacheImpl::FindLive(EntryShard& shard, const HashedNsKey& k,
                                int64_t now_us) {
  CacheEntry* e = shard.Find(k);
  if (e != nullptr && IsExpired(e->expires_at_us, now_us)) {
    // Its row goes with the next purge of expired rows.
    shard.Remove(e);
    ++shard.expirations;
    e = nullptr;
  }
  return e;
}

Status CacheImpl::AfterWrite(uint64_t lsn) {
  if (durability_ != Durability::kSync || lsn == 0) return Status::OK();
  Status s = wait_durable_(lsn);
  if (!s.ok()) {
    return s.WithPrefix("cache write applied in memory as lsn " +
                        std::to_string(lsn) + ", but not yet durable");
  }
  return s;
}

Status CacheImpl::Set(std::string_view ns, std::string_view key,
                      std::string_view value, std::chrono::milliseconds ttl) {
  Status s = CheckOpen();
  if (s.ok()) s = CheckNsKey(ns, key);
  if (!s.ok()) return s;
  if (value.size() > options_.cache_max_value_bytes) {
    return Status::InvalidArgument(
        "cache value is " + std::to_string(value.size()) +
        " bytes, more than Options::cache_max_value_bytes (" +
        std::to_string(options_.cache_max_value_bytes) + ")");
  }
  if (CacheEntryBytes(ns, key, value.size()) > max_bytes_) {
    return Status::InvalidArgument(
        "cache entry of " + std::to_string(value.size()) +
        " value bytes does not fit Options::cache_entries_max_bytes (" +
        std::to_string(max_bytes_) + " bytes)");
  }
  int64_t expires = 0;
  s = ExpiryFor(ttl, now_(), &expires);
  if (!s.ok()) return s;
  auto v = std::make_shared<const std::string>(value);
  // Queue room is taken before the shard lock, so a full queue never
  // stalls readers of the shard.
  const size_t bytes = OpBytes(ns, key, value.size());
  StatusOr<bool> reserved = ReserveRoom(bytes, durability_);
  if (!reserved.ok()) return reserved.status();
  // The time after waiting for room (up to queue_full_wait): the entry
  // lives `ttl` from when it is written.
  const int64_t now = now_();
  (void)ExpiryFor(ttl, now, &expires);
  uint64_t lsn = 0;
  const HashedNsKey k(NsKeyView{ns, key});
  // Made and (when replaced) destroyed outside the shard lock, as is the
  // queued op (not made at all when shed): the lock is held only to take
  // the op's LSN and apply the entry. (A reader beside a busy writer did
  // not measurably gain from the op moving out; docs/benchmarks.md.)
  CacheEntryPtr fresh = CacheEntry::Create(k, v);
  WritePayload payload =
      *reserved ? UpsertPayload(k, v, expires, now) : WritePayload();
  CacheEntryPtr replaced;
  EntryShard& shard = ShardFor(k);
  {
    MutexLock lock(&shard.mu);
    StatusOr<uint64_t> r = QueueUpsert(shard, k, std::move(payload),
                                       std::move(v), std::move(fresh), expires,
                                       now, bytes, *reserved, &replaced);
    if (!r.ok()) return r.status();
    lsn = *r;
  }
  EvictElsewhere(&shard, now);
  return AfterWrite(lsn);
}

StatusOr<std::string> CacheImpl::Get(std::string_view ns,
                                     std::string_view key) {
  Status s = CheckOpen();
  if (s.ok()) s = CheckNsKey(ns, key);
  if (!s.ok()) return s;
  const int64_t now = now_();
  const HashedNsKey k(NsKeyView{ns, key});
  // A small value is copied out of the entry's block under the lock into
  // this buffer, and into the result after unlocking: no allocation while
  // the shard is held.
  char small[kCacheInlineValueMax];
  size_t small_size = 0;
  std::shared_ptr<const std::string> shared;
  {
    EntryShard& shard = ShardFor(k);
    MutexLock lock(&shard.mu);
    CacheEntry* e = shard.Find(k);
    if (e != nullptr && IsExpired(e->expires_at_us, now)) {
      // Its row goes with the sweep's next purge.
      shard.Remove(e);
      ++shard.expirations;
      e = nullptr;
    }
    if (e == nullptr) {
      ++shard.misses;
      return Status::NotFound("no live cache entry");
    }
    ++shard.hits;
    shard.MarkUsed(e);
    // A large value is shared and copied after unlocking, so it does not
    // hold up the shard.
    shared = e->shared_value();
    if (shared == nullptr) {
      const std::string_view v = e->value();
      small_size = v.size();
      if (small_size > 0) std::memcpy(small, v.data(), small_size);
    }
  }
  if (shared != nullptr) return std::string(*shared);
  return std::string(small, small_size);
}

Status CacheImpl::Delete(std::string_view ns, std::string_view key) {
  Status s = CheckOpen();
  if (s.ok()) s = CheckNsKey(ns, key);
  if (!s.ok()) return s;
  // Never shed: a delete lost on the way would let the entry come back
  // at the next Open.
  const Durability d = durability_ == Durability::kBestEffort
                           ? Durability::kBatched
                           : durability_;
  const size_t bytes = OpBytes(ns, key, 0);
  StatusOr<bool> reserved = ReserveRoom(bytes, d);  // waits unlocked
  if (!reserved.ok()) return reserved.status();
  uint64_t lsn = 0;
  // Built before locking, like Set's op.
  WritePayload payload(CacheOp{CacheDelete{std::string(ns), std::string(key)}});
  {
    const HashedNsKey k(NsKeyView{ns, key});
    EntryShard& shard = ShardFor(k);
    MutexLock lock(&shard.mu);
    StatusOr<uint64_t> r = SubmitInto(std::move(payload), bytes, *reserved, d);
    if (!r.ok()) return r.status();
    lsn = *r;
    if (CacheEntry* e = shard.Find(k); e != nullptr) shard.Remove(e);
  }
  return AfterWrite(lsn);
}

Status CacheImpl::Touch(std::string_view ns, std::string_view key,
                        std::chrono::milliseconds ttl) {
  Status s = CheckOpen();
  if (s.ok()) s = CheckNsKey(ns, key);
  if (!s.ok()) return s;
  int64_t expires = 0;
  s = ExpiryFor(ttl, now_(), &expires);
  if (!s.ok()) return s;
  const HashedNsKey k(NsKeyView{ns, key});
  EntryShard& shard = ShardFor(k);
  // The queued upsert carries the whole value, which the writer rewrites,
  // so it takes queue room for all of it (as Set does), not for the names
  // alone: the queue and batch byte bounds then bound Touches of large
  // values too. The size is read under the lock first; room is reserved
  // outside it (waiting for room never holds the shard).
  size_t value_size = 0;
  {
    MutexLock lock(&shard.mu);
    CacheEntry* e = FindLive(shard, k, now_());
    if (e == nullptr) return Status::NotFound("no live cache entry to touch");
    value_size = e->value().size();
  }
  uint64_t lsn = 0;
  int64_t now = 0;
  for (;;) {
    const size_t bytes = OpBytes(ns, key, value_size);
    StatusOr<bool> reserved = ReserveRoom(bytes, durability_);
    if (!reserved.ok()) return reserved.status();
    // Expiry is judged after waiting for room: an entry that expired during
    // the wait is not revived.
    now = now_();
    (void)ExpiryFor(ttl, now, &expires);
    MutexLock lock(&shard.mu);
    CacheEntry* e = FindLive(shard, k, now);
    if (e == nullptr) {
      if (*reserved) write_path_->CancelReserved(bytes);
      return Status::NotFound("no live cache entry to touch");
    }
    if (*reserved && e->value().size() > value_size) {
      // Rewritten with a larger value meanwhile: the room is too small for
      // what the op would carry. Given back, and taken again for the new
      // size after unlocking. (Only a concurrent Set that grows the value
      // each time can make this go round again.)
      write_path_->CancelReserved(bytes);
      value_size = e->value().size();
      continue;
    }
    // A smaller value now is charged the room taken (`bytes` must match).
    std::shared_ptr<const std::string> value = e->SharedValue();
    WritePayload payload =
        *reserved ? UpsertPayload(k, value, expires, now) : WritePayload();
    StatusOr<uint64_t> r =
        QueueUpsert(shard, k, std::move(payload), std::move(value), nullptr,
                    expires, now, bytes, *reserved, /*replaced=*/nullptr);
    if (!r.ok()) return r.status();
    lsn = *r;
    break;
  }
  EvictElsewhere(&shard, now);
  return AfterWrite(lsn);
}

StatusOr<int64_t> CacheImpl::Increment(std::string_view ns,
                                       std::string_view key, int64_t delta,
                                       std::chrono::milliseconds ttl) {
  Status s = CheckOpen();
  if (s.ok()) s = CheckNsKey(ns, key);
  if (!s.ok()) return s;
  int64_t new_expires = 0;
  s = ExpiryFor(ttl, now_(), &new_expires);
  if (!s.ok()) return s;
  int64_t result = 0;
  uint64_t lsn = 0;
  // Room for the longest counter text ("-9223372036854775808").
  const size_t bytes = OpBytes(ns, key, 20);
  StatusOr<bool> reserved = ReserveRoom(bytes, durability_);
  if (!reserved.ok()) return reserved.status();
  // Expiry is judged after waiting for room: a counter whose window ended
  // during the wait starts again rather than counting on.
  const int64_t now = now_();
  (void)ExpiryFor(ttl, now, &new_expires);
  // Room not used by a refused Increment goes back.
  auto refuse = [&](Status error) {
    if (*reserved) write_path_->CancelReserved(bytes);
    return error;
  };
  const HashedNsKey k(NsKeyView{ns, key});
  EntryShard& shard = ShardFor(k);
  {
    MutexLock lock(&shard.mu);
    CacheEntry* e = shard.Find(k);
    if (e != nullptr && IsExpired(e->expires_at_us, now)) {
      shard.Remove(e);
      ++shard.expirations;
      e = nullptr;
    }
    int64_t current = 0;
    int64_t expires = new_expires;
    if (e != nullptr) {
      if (!ParseCounter(e->value(), &current)) {
        return refuse(Status::FailedPrecondition(
            "cache entry is not an integer counter"));
      }
      expires = e->expires_at_us;
    }
    if (__builtin_add_overflow(current, delta, &result)) {
      return refuse(
          Status::InvalidArgument("cache counter would overflow int64"));
    }
    auto text = std::make_shared<const std::string>(std::to_string(result));
    if (CacheEntryBytes(ns, key, text->size()) > max_bytes_) {
      return refuse(
          Status::InvalidArgument("cache counter entry does not fit "
                                  "Options::cache_entries_max_bytes (" +
                                  std::to_string(max_bytes_) + " bytes)"));
    }
    WritePayload payload =
        *reserved ? UpsertPayload(k, text, expires, now) : WritePayload();
    StatusOr<uint64_t> r =
        QueueUpsert(shard, k, std::move(payload), std::move(text), nullptr,
                    expires, now, bytes, *reserved, /*replaced=*/nullptr);
    if (!r.ok()) return r.status();
    lsn = *r;
  }
  EvictElsewhere(&shard, now);
  s = AfterWrite(lsn);
  if (!s.ok()) return s;
  return result;
}

CacheStats CacheImpl::GetStats() {
  CacheStats st;
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    st.hits += shard->hits;
    st.misses += shard->misses;
    st.expirations += shard->expirations;
    st.evictions += shard->evictions;
    st.entries += shard->size();
    st.bytes += shard->bytes();
  }
  st.persist_shed = shed_.load(std::memory_order_relaxed);
  st.reloaded = reloaded_.load(std::memory_order_relaxed);
  st.purge_batches = purge_batches_.load(std::memory_order_relaxed);
  return st;
}

Status CacheImpl::Reload() {
  if (storage_ == nullptr) return Status::OK();
  std::vector<std::pair<std::string, std::string>> over;
  uint64_t loaded = 0;
  Status s = storage_->ScanLive(now_(), [&](CacheRow&& row) {
    if (CheckNsKey(row.ns, row.key).ok()) {
      const HashedNsKey k(NsKeyView{row.ns, row.key});
      EntryShard& shard = ShardFor(k);
      MutexLock lock(&shard.mu);
      const size_t bytes = CacheEntryBytes(row.ns, row.key, row.value.size());
      // Newest first, so each row goes in as the least recently used.
      if (shard.Find(k) == nullptr &&
          total_bytes_.load(std::memory_order_relaxed) + bytes <= max_bytes_) {
        shard.Put(k,
                  CacheEntry::Create(k, std::make_shared<const std::string>(
                                            std::move(row.value))),
                  row.expires_at_us, /*replaced=*/nullptr, /*as_oldest=*/true);
        ++loaded;
        return true;
      }
    }
    over.emplace_back(std::move(row.ns), std::move(row.key));
    return true;
  });
  if (!s.ok()) return s.WithPrefix("reloading cache entries");
  reloaded_.store(loaded, std::memory_order_relaxed);
  // A read-only store leaves the rows it does not load where they are.
  if (options_.read_only) return Status::OK();
  // Rows past the bound (their eviction's delete was shed): drop them now.
  for (auto& [ns, key] : over) {
    const size_t bytes = OpBytes(ns, key, 0);
    (void)Queue(CacheOp{CacheDelete{std::move(ns), std::move(key)}}, bytes,
                Durability::kBestEffort, /*count_shed=*/false);
  }
  if (!over.empty()) {
    log_->info("cache reload: {} rows over the bound queued for deletion",
               over.size());
  }
  // Expired rows are never loaded. The sweep deletes them, 64 batches a
  // tick; without a sweep thread nothing else would, so all of them go now.
  const int64_t now = now_();
  const int64_t expired = options_.cache_sweep_interval.count() > 0
                              ? PurgeExpiredRows(now)
                              : PurgeAllExpiredRows(now);
  if (expired > 0) {
    log_->info("cache reload: {} expired rows queued for deletion", expired);
  }
  return Status::OK();
}

void CacheImpl::Start() {
  // Only when there is no sweep: purges Reload had no room for, now that
  // the writer drains the queue.
  int64_t queued = 0;
  while (reload_purges_left_ > 0 &&
         QueuePurge(reload_cutoff_us_, Durability::kBatched)) {
    --reload_purges_left_;
    ++queued;
  }
  if (queued > 0) {
    log_->info("cache: {} more purges of expired rows queued", queued);
  }
  if (reload_purges_left_ > 0) {
    log_->warn(
        "cache: {} purges of expired rows not queued (write queue full); "
        "their rows stay until the next Open",
        reload_purges_left_);
    reload_purges_left_ = 0;
  }
  sweeper_.Start("convstore-sweep", options_.cache_sweep_interval,
                 [this] { SweepOnce(); });
}

void CacheImpl::Stop() {
  stopped_.store(true, std::memory_order_relaxed);
  sweeper_.Stop();
}

void CacheImpl::SweepOnce() {
  const int64_t now = now_();
  // Memory: a bounded number of entries per lock hold, so a Get waits at
  // most for one short batch.
  size_t expired = 0;
  for (const auto& shard : shards_) {
    size_t n;
    do {
      MutexLock lock(&shard->mu);
      n = shard->RemoveExpired(now, kCachePurgeBatch);
      expired += n;
    } while (n == kCachePurgeBatch);
  }
  const int64_t rows = PurgeExpiredRows(now);
  if (expired > 0 || rows > 0) {
    log_->debug("cache sweep: {} expired entries dropped, {} expired rows",
                expired, rows);
  }
}

}  // namespace convstore::internal

namespace convstore::internal {

int64_t CacheImpl::PurgeExpiredRows(int64_t now_us) {
  // Purges of kCachePurgeBatch rows, once the previous ones are committed.
  // Best-effort: an expired row is never served or reloaded, so a shed
  // purge only delays giving its space back.
  int64_t rows = 0;
  if (storage_ == nullptr || stopped_.load(std::memory_order_relaxed) ||
      write_path_->DurableLsn() <
          last_purge_lsn_.load(std::memory_order_relaxed)) {
    return 0;
  }
  Status s = storage_->CountExpired(now_us, &rows);
  if (!s.ok()) {
    log_->warn("cache: counting expired rows: {}", s.ToString());
    return 0;
  }
  constexpr int64_t kMaxPurgesPerCall = 64;
  const int64_t batches =
      std::min<int64_t>(kMaxPurgesPerCall, PurgeBatchesFor(rows));
  for (int64_t i = 0; i < batches; ++i) {
    if (!QueuePurge(now_us, Durability::kBestEffort)) break;
  }
  return rows;
}

int64_t CacheImpl::PurgeAllExpiredRows(int64_t now_us) {
  // Bounded batches all the same (one short statement each), as many as
  // the rows need: every purge deletes up to kCachePurgeBatch of the rows
  // expired at now_us, and rows written later expire after it.
  int64_t rows = 0;
  if (storage_ == nullptr) return 0;
  Status s = storage_->CountExpired(now_us, &rows);
  if (!s.ok()) {
    log_->warn("cache: counting expired rows: {}", s.ToString());
    return 0;
  }
  int64_t left = PurgeBatchesFor(rows);
  // The writer has not started: the queue holds only this reload's
  // writes, and its best-effort room (3/4 of queue_max_items, 196,608
  // purges by default) takes some 50M rows. Start queues any left over.
  while (left > 0 && QueuePurge(now_us, Durability::kBestEffort)) --left;
  reload_purges_left_ = left;
  reload_cutoff_us_ = now_us;
  return rows;
}

bool CacheImpl::QueuePurge(int64_t cutoff_us, Durability d) {
  StatusOr<uint64_t> lsn =
      Queue(CacheOp{CachePurgeExpired{cutoff_us, kCachePurgeBatch}},
            sizeof(WriteOp), d, /*count_shed=*/false);
  if (!lsn.ok() || *lsn == 0) return false;
  last_purge_lsn_.store(*lsn, std::memory_order_relaxed);
  purge_batches_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace convstore::internal
