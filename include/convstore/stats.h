// Copyright 2026 The convstore Authors.
//
// Stats: one snapshot of what the store holds and how its write path is
// doing, returned by Store::GetStats.
//
// Thread safety: a plain value. The writer's counters are read under one
// lock and are consistent with each other; the cache totals are summed one
// shard at a time, so under concurrent writes they are approximate (each
// shard's part is exact). durable_lsn is read before appended_lsn, so
// durable_lsn <= appended_lsn always holds in one snapshot.

#ifndef CONVSTORE_STATS_H_
#define CONVSTORE_STATS_H_

#include <cstdint>
#include <string>

namespace convstore {

struct Stats {
  // In memory.
  uint64_t cached_conversations = 0;
  uint64_t cached_messages = 0;
  uint64_t cached_bytes = 0;
  uint64_t cache_hits = 0;    // History/Append served from memory
  uint64_t cache_misses = 0;  // reads that went to the database
  uint64_t cache_evictions = 0;
  // Durable messages dropped from conversations that have writes not yet
  // durable (which are never evicted) to bring a shard within its byte
  // bound; History reads them back from the file.
  uint64_t cache_pinned_drops = 0;
  // Times a cache shard over its bounds searched its entries for one to
  // evict or trim. Growing by about one per write means the cache is over
  // its bound with everything left pinned by writes not yet durable: the
  // writer is behind, or cache_max_bytes is small for the queue's bounds.
  uint64_t cache_eviction_walks = 0;
  // The cache's byte bound in force: cache_max_bytes (rounded down to a
  // multiple of cache_shards), or less while Options::memory_limit_bytes
  // holds it down.
  uint64_t cache_bound_bytes = 0;

  // In the database (committed rows; pending writes not included).
  uint64_t db_conversations = 0;
  uint64_t db_messages = 0;

  // Write queue.
  uint64_t queue_items = 0;
  uint64_t queue_bytes = 0;
  uint64_t queue_items_high_water = 0;
  uint64_t queue_bytes_high_water = 0;
  uint64_t queue_rejections = 0;  // Appends refused because it was full
  // Best-effort writes (Durability::kBestEffort) shed because the queue was
  // past 3/4 of its bounds; not counted in queue_rejections. A cache call
  // that turned out to change nothing (Touch of a missing entry, a refused
  // Increment) is not a shed write.
  uint64_t best_effort_shed = 0;
  // Age of the oldest write acknowledged but not yet durable; 0 if none.
  int64_t oldest_unflushed_age_us = 0;

  // Sequence numbers: every write with lsn <= durable_lsn is committed.
  uint64_t appended_lsn = 0;
  uint64_t durable_lsn = 0;

  // Writer.
  uint64_t batches_committed = 0;
  uint64_t rows_committed = 0;  // writes (operations) committed
  uint64_t writes_failed = 0;   // writes the database rejected for good
  // Of writes_failed, those set aside as dead letters (include/convstore/
  // dead_letter.h), and of those, the ones that went to the
  // `<path>.deadletter.jsonl` file because the table could not take them.
  // writes_failed - dead_letters were refused and could not be set aside at
  // all (each logged at error level). This session only.
  uint64_t dead_letters = 0;
  uint64_t dead_letters_in_file = 0;
  uint64_t commit_errors = 0;  // failed commit attempts (each is retried)
  uint64_t retries = 0;
  int64_t commit_latency_p50_us = 0;
  int64_t commit_latency_p99_us = 0;
  int64_t enqueue_to_durable_p50_us = 0;
  int64_t enqueue_to_durable_p99_us = 0;

  // Index merges (SQLite): batches write no index entries; once
  // Options::index_merge_rows messages (or messages of
  // Options::index_merge_conversations conversations) are indexed only in
  // memory, the writer merges them into the file's index in one transaction,
  // and the next batch waits for it (docs/architecture.md, "Unmerged
  // messages"). Counts and times are of this session and of merges that
  // committed (a failed merge is logged and retried); unmerged_messages is now.
  uint64_t index_merges = 0;
  int64_t index_merge_total_us = 0;  // time the writer spent merging
  int64_t index_merge_max_us = 0;    // the longest single merge
  // Messages committed since the last merge, indexed in memory only (rows
  // deleted since then still count until the next merge).
  uint64_t unmerged_messages = 0;

  // Health: empty when healthy; otherwise the sticky background error
  // (Status::ToString()) that Flush and Close also report.
  std::string background_error;
};

}  // namespace convstore

#endif  // CONVSTORE_STATS_H_
