// Copyright 2026 The convstore Authors.
//
// Cache: a namespaced key-value cache with time-to-live, held in memory and
// persisted write-behind through the store's writer, so it survives a
// restart. For tool results, embeddings, usage counters and fixed-window
// rate limits. Get it from Store::cache().
//
//   convstore::Cache& cache = store->cache();
//   convstore::Status s = cache.Set("tools", "weather:paris", "{\"c\":21}",
//                                   std::chrono::minutes(5));
//   auto hit = cache.Get("tools", "weather:paris");  // NotFound once expired
//   // Fixed-window rate limit: at most 60 calls per user per minute.
//   auto n = cache.Increment("rate", "user-7:" + minute, 1,
//                            std::chrono::minutes(1));
//   if (n.ok() && *n > 60) return TooManyRequests();
//
// KEYS: an entry is (namespace, key). Both are 1..256 (namespace) and
// 1..1024 (key) bytes of UTF-8 without NUL; values are any bytes up to
// Options::cache_max_value_bytes. Bad input gets InvalidArgument and
// changes nothing.
//
// TTL: a ttl of zero means "no expiry" (the entry goes only by Delete or
// LRU eviction); a positive ttl expires the entry that long after the call
// (wall clock, microsecond resolution); a negative ttl is InvalidArgument.
// An expired entry is never returned: Get treats it as missing (and drops
// it), and a background sweep (Options::cache_sweep_interval) removes the
// rest from memory and, in small batches, from the database.
//
// BOUND: entries are held within Options::cache_entries_max_bytes; past it
// entries are evicted in approximately least-recently-used order, and their
// rows are deleted from the database too (best-effort deletes: a shed one
// leaves the row, which the next Open reloads only if it has time left and
// fits the bound), so the file holds about as much as memory does.
//
// NOTE: eviction is second chance (CLOCK), not exact LRU: a read or write
// marks an entry, and the eviction walk, from the oldest entry, moves a
// marked entry to the young end (unmarking it) and evicts the first
// unmarked one. Expired entries are dropped (counted as expirations, not
// evictions) before any live entry of their shard is evicted. An entry
// read once since the walk last passed it survives one more walk, however
// long ago that read was. Reads stay cheap: they touch only the entry, not
// its neighbours in a list. Recency is kept per lock shard
// (Options::cache_entries_shards): a write evicts from its own shard first
// (keys hash evenly, so shards age alike) and from the others only when
// its own has nothing else left, so one entry may take up to the whole
// bound.
//
// DURABILITY (docs/durability.md, "Cache entries"): every Set, Touch,
// Increment and Delete is applied to memory and queued as one ordered write
// with the durability class Options::durability.cache (default
// kBestEffort). Best-effort writes are shed when the write queue is past
// 3/4 of its bounds: the call still succeeds and memory is updated, but the
// database keeps the entry's previous state (older value and expiry, or
// nothing) - after a restart that is what comes back. Shed writes are
// counted in CacheStats::persist_shed. A Delete is never shed (it waits for
// queue room like a batched write), so once it is durable (Flush, a clean
// Close, or the kSync class) a deleted entry never comes back after a
// restart; like any batched write, a delete not yet durable at a crash is
// lost. On Open, entries with time left are reloaded (most recently written
// first, within the bound); expired ones never are, and their rows are
// deleted.
//
// Thread safety: every method may be called from any thread at once.
// Operations on one (namespace, key) are linearizable: concurrent
// Increments never lose a count, and the database sees each entry's writes
// in the order memory applied them.

#ifndef CONVSTORE_CACHE_H_
#define CONVSTORE_CACHE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "convstore/status.h"

namespace convstore {

// Counters since Open (entries, bytes: current). Summed one shard at a
// time, so approximate under concurrent writes.
struct CacheStats {
  uint64_t hits = 0;    // Get found a live entry
  uint64_t misses = 0;  // Get found nothing (or an expired entry)
  // Entries removed because their time was up (on read, by the sweep, or
  // ahead of live entries when the bound needs room).
  uint64_t expirations = 0;
  // Entries removed to stay within the bound (approximate LRU order).
  uint64_t evictions = 0;
  uint64_t entries = 0;
  // Approximate bytes held: namespace, key, value and per-entry overhead.
  uint64_t bytes = 0;
  // Writes applied in memory whose persistence was shed (best-effort class,
  // queue past 3/4); the database keeps the entry's previous state.
  uint64_t persist_shed = 0;
  // Entries reloaded from the database at Open.
  uint64_t reloaded = 0;
  // Expired rows deleted from the database by sweep batches queued so far
  // (batches requested; each deletes at most a few hundred rows).
  uint64_t purge_batches = 0;
};

class Cache {
 public:
  virtual ~Cache() = default;

  // Stores `value` under (ns, key), replacing any entry, expiring `ttl`
  // from now (zero: never). May evict least recently used entries.
  // InvalidArgument for bad input, ResourceExhausted when a batched or
  // sync write finds the queue full, FailedPrecondition after Close.
  virtual Status Set(std::string_view ns, std::string_view key,
                     std::string_view value, std::chrono::milliseconds ttl) = 0;

  // The value of a live entry; NotFound if there is none or it expired.
  // Served from memory only (never reads the database), and marks the entry
  // recently used.
  virtual StatusOr<std::string> Get(std::string_view ns,
                                    std::string_view key) = 0;

  // Removes the entry from memory and (ordered after every earlier write of
  // it) from the database. Deleting a missing entry is OK (and still
  // removes any stale row on disk).
  virtual Status Delete(std::string_view ns, std::string_view key) = 0;

  // Gives a live entry a new expiry, `ttl` from now (zero: never).
  // NotFound if there is no live entry. The entry is written again whole,
  // value included: a Touch costs the write queue and the database what a
  // Set of the same value does.
  virtual Status Touch(std::string_view ns, std::string_view key,
                       std::chrono::milliseconds ttl) = 0;

  // Adds `delta` to the integer counter under (ns, key) and returns the new
  // value. A missing (or expired) entry starts from 0 and expires `ttl`
  // after this call (zero: never); an existing counter keeps its expiry, so
  // a counter set up with a window's ttl counts that window only. The value
  // is stored as decimal text ("42"), readable with Get. FailedPrecondition
  // if the entry holds something that is not a decimal int64 (an optional
  // '-' and digits only: no '+', no spaces); InvalidArgument if the sum
  // overflows int64. With the kSync class an error from the commit wait
  // comes after memory was incremented: do not retry blindly, Get the value.
  virtual StatusOr<int64_t> Increment(std::string_view ns, std::string_view key,
                                      int64_t delta,
                                      std::chrono::milliseconds ttl) = 0;

  virtual CacheStats GetStats() = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_CACHE_H_
