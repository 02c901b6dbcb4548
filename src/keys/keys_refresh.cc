// Copyright 2026 The convstore Authors.
//
// KeysImpl's reads of the database: the load at Open, the refresh that
// brings in other stores' key changes, and the background thread that runs
// it next to the usage flush (keys_impl.h has the merge rules).

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "keys/key_secret.h"
#include "keys/keys_impl.h"

namespace convstore::internal {

void KeysImpl::Merge(Entry* e, KeyRow file, uint64_t durable) {
  KeyRow& mine = e->row;
  file.request_count = std::max(file.request_count, mine.request_count);
  file.last_used_us = std::max(file.last_used_us, mine.last_used_us);
  if (e->put_lsn > durable) {
    // A change of this store is still queued: it stands (the upsert keeps
    // the file's ends when it lands), with every end the file has already.
    if (mine.revoked_us == 0) mine.revoked_us = file.revoked_us;
    if (mine.replaced_by.empty()) mine.replaced_by = file.replaced_by;
    if (file.expires_us != 0 &&
        (mine.expires_us == 0 || file.expires_us < mine.expires_us)) {
      mine.expires_us = file.expires_us;
    }
    mine.request_count = file.request_count;
    mine.last_used_us = file.last_used_us;
    return;
  }
  // The file has every change of this store: it is the truth (a rotation
  // the writer refused is undone here), except that a revocation is never
  // undone in memory, even one the file lost (a dead letter).
  if (file.revoked_us == 0) file.revoked_us = mine.revoked_us;
  e->Set(std::move(file));
  // Memory is the file's row now, no longer the result of this store's
  // last op: an UndoRotation of that op (a refused kSync rotation) must
  // not roll it back (invariant 4).
  e->put_lsn = 0;
}

Status KeysImpl::Refresh(bool force) {
  if (storage_ == nullptr) return Status::OK();
  MutexLock refresh_lock(&refresh_mu_);
  StatusOr<int64_t> version = storage_->DefinitionsVersion();
  if (!version.ok()) return version.status();
  if (!force && *version == loaded_version_) return Status::OK();
  // Read before the scan: every put at or below it is committed, so in the
  // rows the scan reads; a put above it may not be (Merge keeps it).
  const uint64_t durable = write_path_->DurableLsn();
  absl::flat_hash_set<uint64_t> stored;
  Status s = storage_->ScanAll([&](KeyRow&& row) {
    if (!IsKeyId(row.id)) {
      log_->warn("API keys: skipping a stored key with a malformed id");
      return true;
    }
    const uint64_t key = PackId(row.id);
    stored.insert(key);
    Shard& shard = ShardFor(key);
    MutexLock lock(&shard.mu);
    auto [it, inserted] = shard.keys.try_emplace(key);
    if (inserted) {
      it->second.Set(std::move(row));
    } else {
      Merge(&it->second, std::move(row), durable);
    }
    return true;
  });
  if (!s.ok()) return s;
  // A key the file does not have, with no put of this store in flight: the
  // successor of a rotation the writer refused (or a key whose put became
  // a dead letter). It never validates again.
  size_t dropped = 0;
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    dropped += absl::erase_if(shard->keys, [&](const auto& kv) {
      return kv.second.put_lsn <= durable && !stored.contains(kv.first);
    });
  }
  if (dropped > 0) {
    log_->warn("API keys: dropped {} keys the database does not have", dropped);
  }
  loaded_version_ = *version;
  return Status::OK();
}

void KeysImpl::RefreshIfUnknown(uint64_t key) {
  if (storage_ == nullptr) return;
  {
    Shard& shard = ShardFor(key);
    MutexLock lock(&shard.mu);
    if (shard.keys.contains(key)) return;
  }
  Status s = Refresh();
  if (!s.ok()) log_->warn("API keys: refresh failed: {}", s.ToString());
}

Status KeysImpl::Reload() {
  if (storage_ == nullptr) return Status::OK();
  Status s = Refresh(/*force=*/true);
  if (!s.ok()) return s.WithPrefix("loading API keys");
  size_t loaded = 0;
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    loaded += shard->keys.size();
  }
  if (loaded > 0) log_->info("loaded {} API keys", loaded);
  return Status::OK();
}

void KeysImpl::Start() {
  using std::chrono::milliseconds;
  using Clock = std::chrono::steady_clock;
  // A read-only store saves no usage, but it refreshes.
  const milliseconds flush =
      options_.read_only ? milliseconds(0) : options_.keys_usage_flush_interval;
  const milliseconds refresh =
      storage_ != nullptr ? options_.keys_refresh_interval : milliseconds(0);
  milliseconds tick(0);
  for (milliseconds d : {flush, refresh}) {
    if (d.count() > 0) tick = tick.count() > 0 ? std::min(tick, d) : d;
  }
  if (tick.count() <= 0) return;
  // One thread for both: it wakes at the shorter interval and runs each
  // job once its own interval has passed.
  flusher_.Start("convstore-keys", tick,
                 [this, flush, refresh, next_flush = Clock::now() + flush,
                  next_refresh = Clock::now(), failing = false]() mutable {
                   const Clock::time_point now = Clock::now();
                   if (refresh.count() > 0 && now >= next_refresh) {
                     next_refresh = now + refresh;
                     Status s = Refresh();
                     // Logged when it starts failing and when it recovers, not
                     // every tick.
                     if (!s.ok() && !failing) {
                       log_->warn(
                           "API keys: refresh failed (retried every {} ms): {}",
                           refresh.count(), s.ToString());
                     } else if (s.ok() && failing) {
                       log_->info("API keys: refresh works again");
                     }
                     failing = !s.ok();
                   }
                   if (flush.count() > 0 && now >= next_flush) {
                     next_flush = now + flush;
                     (void)FlushUsage();
                     (void)FlushDenials();
                   }
                 });
}

}  // namespace convstore::internal
