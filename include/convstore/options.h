// Copyright 2026 The convstore Authors.
//
// Options for Store::Open. Every field says what it does, its default, and
// what changing it costs. The defaults suit an agent process with a few
// thousand live conversations on a small machine.
//
// Thread safety: a plain value, copied by Store::Open.

#ifndef CONVSTORE_OPTIONS_H_
#define CONVSTORE_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace convstore {

enum class LogLevel : int {
  kTrace = 0,
  kDebug = 1,
  kInfo = 2,
  kWarn = 3,
  kError = 4,
  kOff = 5,
};

// How hard SQLite pushes each commit to stable storage. See
// docs/durability.md for what each guarantees on a power loss.
enum class SyncMode : int {
  // WAL with synchronous=NORMAL: a commit survives a process crash at once;
  // after a power loss the most recent commits (since the last WAL
  // checkpoint) may be lost, but the file is never corrupted.
  kNormal = 0,
  // WAL with synchronous=FULL: every commit is fsynced before it counts as
  // durable, so it also survives a power loss. About one fsync (~0.2 ms here)
  // per batch; with batching the throughput cost is small.
  kFull = 1,
};

// When a write counts as done for its caller; one class per record kind
// (Options::durability). See docs/durability.md.
enum class Durability : int {
  // Queued and acknowledged at once; committed in the next batch, within
  // the loss window (max_flush_delay, batch size). Waits up to
  // Options::queue_full_wait for room when the queue is full.
  kBatched = 0,
  // Queued, then the call waits until the write is committed (a barrier):
  // it survives a crash once the call returns OK. Costs the caller one
  // commit's latency (the writer is woken at once rather than waiting out
  // max_flush_delay); concurrent sync calls share a batch.
  kSync = 1,
  // Queued only while the queue is below 3/4 of its bounds, never waiting;
  // otherwise shed with ResourceExhausted and counted in
  // Stats::best_effort_shed. The first class to go when the disk cannot
  // keep up, so that batched and sync writes keep their room.
  kBestEffort = 2,
};

// The durability class of each record kind.
struct DurabilityClasses {
  // Chat messages (Append). kSync here makes every
  // Append wait for its commit, like AppendOptions::sync. Default: kBatched.
  Durability messages = Durability::kBatched;
  // Audit-log records (audit.h). Default: kSync: AuditLog::Record returns
  // once the record is committed (about one commit's latency per call).
  // kBatched returns once queued: faster, but a crash can lose the last
  // batch window's records (the chain stays valid: ids are assigned at
  // commit). kBestEffort records fail with ResourceExhausted instead of
  // being shed silently. RecordAsync and Prune ignore this (batched, sync).
  Durability audit = Durability::kSync;
  // API-key changes. Default: kSync.
  Durability keys = Durability::kSync;
  // Cache entries (cache.h; recomputable). Default: kBestEffort: a Set,
  // Touch or Increment whose write is shed still takes effect in memory,
  // and the database keeps the entry's previous state for the next Open.
  // Cache deletes always wait for queue room (at least kBatched) so that a
  // deleted entry never comes back. kSync makes every cache write wait for
  // its commit (about one commit's latency per call).
  Durability cache = Durability::kBestEffort;
  // Analytics events. Default: kBatched.
  Durability analytics = Durability::kBatched;
};

// Receives every log line convstore emits at or above Options::log_level.
// Called from the thread that logs (often the background writer); must be
// thread-safe and must not call back into the store.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

struct Options {
  // ---------------------------------------------------------------- Behaviour

  // The SQLite database file. Its directory is created if missing (when
  // create_if_missing is true). Default: "./data/convstore.db".
  std::string path = "./data/convstore.db";

  // Durability class per record kind; see DurabilityClasses. Defaults:
  // messages batched, audit and keys sync, cache best-effort, analytics
  // batched.
  DurabilityClasses durability{};

  // Create the file (and its directory) if it does not exist. If false, Open
  // fails with NotFound for a missing file. Default: true.
  bool create_if_missing = true;

  // Open an existing store to read it, as an inspection tool would beside
  // the application that writes it: SQLite opens the file read-only, no
  // migration runs, and no writer, checkpoint, expiry-sweep or key-usage
  // thread starts. Every call that writes (Append, DeleteConversation,
  // PruneMessages, cache Set/Delete/Touch/Increment, key changes, audit
  // records, analytics records and upkeep) fails with FailedPrecondition and
  // changes nothing. Reads work as usual: a conversation loaded at Open
  // answers from memory, and HistoryOptions::from_storage reads what another
  // process committed since.
  // Open fails with NotFound for a missing file (create_if_missing is
  // ignored) and with FailedPrecondition for a file written by an older
  // convstore (open it read-write once to migrate it). Cost: as a
  // read-write open (warming, reloads), less the threads. Default: false.
  bool read_only = false;

  // Durability of each batch commit; see SyncMode. Default: kNormal.
  SyncMode sync_mode = SyncMode::kNormal;

  // How long Append waits for room when the write queue is full. Zero fails
  // at once with ResourceExhausted. A full queue means the disk cannot keep
  // up (or is failing); nothing is ever dropped: the caller is told.
  // Default: 1 s.
  std::chrono::milliseconds queue_full_wait{1000};

  // Input limits. Anything over them is refused with InvalidArgument and
  // nothing is written.
  // Conversation and user ids: 1..max_id_bytes bytes of UTF-8, no NUL
  // (user_id may be empty). At least 1. Default: 256.
  size_t max_id_bytes = 256;
  // Message content in bytes. Default: 4 MiB; at most 512 MiB (a message is
  // one SQLite row, and SQLite refuses rows over 1e9 bytes).
  size_t max_content_bytes = 4 << 20;
  // Metadata JSON text in bytes. Default: 64 KiB; at most 64 MiB.
  size_t max_metadata_bytes = 64 << 10;
  // tokens_in and tokens_out each must be in [0, max_tokens_per_message].
  // At most 2^40 (Open refuses more with InvalidArgument): token sums over
  // a conversation fit int64 up to 2^23 messages at that limit (about 9 *
  // 10^11 at the default). Default: 10,000,000.
  int64_t max_tokens_per_message = 10'000'000;

  // Run SQLite's quick_check over the whole file at Open and refuse a
  // damaged file with Corruption before anything is written to it. Without
  // it, damage is still reported - as Corruption from the read or commit
  // that meets it - but only when it is met. Cost: reads the whole file once
  // (measured here: a 200k-message file took about 0.7 s longer to open).
  // Default: false.
  bool verify_on_open = false;

  // Conversations to load into memory on Open, most recently active first,
  // as long as they fit the cache bounds. -1: as many as fit; 0: none (every
  // conversation loads on first use). Open refuses values below -1.
  // Default: -1.
  int64_t warm_conversations = -1;

  // Log lines at or above this level go to log_sink. Default: kWarn.
  LogLevel log_level = LogLevel::kWarn;
  // Where log lines go. Empty (the default): standard error.
  LogSink log_sink{};

  // -------------------------------------------------------------- Performance

  // The in-memory cache is bounded three ways; whole conversations are
  // evicted least recently used first when any bound is passed. A
  // conversation with writes not yet durable is never evicted (so reads never
  // miss an acknowledged write); the queue bounds below cap how far that can
  // push memory over the limits.
  //
  // Heap bytes the cached conversations take: messages with their content,
  // ids and metadata, and each entry's own structures, as the allocator
  // rounds them (a 200-byte message costs about 500 bytes, a conversation
  // about 400 more). Default: 256 MiB.
  size_t cache_max_bytes = 256 << 20;
  // Conversations held in memory. Each shard holds 1/cache_shards of it,
  // and at least one: the bound in force is this rounded down to a
  // multiple of cache_shards, and at least cache_shards. Default: 100,000.
  size_t cache_max_conversations = 100'000;
  // Newest messages held in memory per conversation; older ones stay on disk
  // and a History call that needs them reads through. At least 1 (Open
  // refuses 0). Default: 1,000.
  size_t cache_max_messages_per_conversation = 1000;
  // Independent lock shards of the cache. More shards, less contention
  // between threads touching different conversations; each shard enforces
  // 1/shards of the byte and conversation bounds (the per-conversation
  // message bound applies to every conversation as is). 1 to 65536.
  // Default: 32.
  size_t cache_shards = 32;
  // How often, after conversations were evicted from the cache, a
  // background thread asks the allocator to return freed pages to the
  // system (glibc's malloc_trim; nothing with another allocator). Without
  // it, memory freed by evictions stays in glibc's arenas and resident
  // memory climbs well past cache_max_bytes under churn (1.35x the soak's
  // budget at 10M messages; see docs/benchmarks.md). Each release walks the
  // allocator's free lists, off the Append and read paths (its time is not
  // measured on its own; the 4M-message soak ran at 24.6k msg/s with it and
  // 26.1k without, on a loaded machine). Zero: never (the process's own
  // allocator policy applies). Not negative. Default: 1 s.
  std::chrono::milliseconds release_memory_interval{1000};
  // Resident memory (RSS) of the whole process to stay under, in bytes.
  // cache_max_bytes bounds what the cache counts; the allocator's slack on
  // top of it (pages keeping a few live messages among freed ones after
  // millions of evictions) grows with churn and is not counted: 1.27-1.35x
  // the soak's budget at 10M messages without this (docs/benchmarks.md).
  // With a limit, four times a second the store reads the process's RSS
  // (/proc/self/statm, Linux). A reading past 95% of the limit lowers the
  // conversation cache's byte bound by how far it is above both that mark
  // and a high-water mark of RSS that falls 0.1% of the limit per check,
  // and evicts down to it, never below a quarter of cache_max_bytes: a new
  // high cuts what it adds, and while RSS stays above 95% the bound keeps
  // falling by up to 0.1% of the limit per check. Once the high-water mark
  // is under 85% the bound rises back toward cache_max_bytes.
  // Stats::cache_bound_bytes shows the bound in force. It
  // counts the whole process, so set it when the store is most of it; RSS
  // stays over the limit if the rest of the process grows past it. Cost:
  // a lower cache bound means more reads from the database while memory is
  // tight (in the 10M soak the cache ended at 50-51 MiB of its 154).
  // Zero: off.
  // Default: 0.
  size_t memory_limit_bytes = 0;

  // The key-value cache (cache.h, Store::cache()), separate from the
  // conversation cache above.
  //
  // Approximate bytes of cache entries held in memory (namespace, key,
  // value and 144 bytes of bookkeeping per entry on x86-64; the heap
  // block headers of a value stored apart are not counted); past it entries
  // are evicted in approximate least-recently-used order (second chance,
  // see cache.h), from memory and from the database. The bound is one
  // total, not split over the shards: a write evicts from its own shard
  // first, then from others, and any entry up to the whole bound fits.
  // At least 1 KiB. Cost: this much RAM at most; the database file holds
  // about as much again. Default: 64 MiB.
  size_t cache_entries_max_bytes = 64 << 20;
  // Independent lock shards of the key-value cache (lock striping only;
  // each entry's recency is kept within its shard). More shards, less
  // waiting between threads on different keys; each costs about 200
  // bytes while empty (168 bytes of shard on x86-64 plus its heap block).
  // 1 to 65536 (InvalidArgument at Open otherwise). Default: 256.
  size_t cache_entries_shards = 256;
  // Largest value Cache::Set takes, in bytes; bigger values are refused
  // with InvalidArgument. Default: 1 MiB.
  size_t cache_max_value_bytes = 1 << 20;
  // How often a small background thread of the cache removes expired
  // entries from memory (a few hundred per shard lock hold) and queues
  // batched deletes of expired rows in the database. Expired entries are
  // never served in between (Get checks the expiry); the sweep only gives
  // their memory back and keeps the file from growing. Shorter: memory
  // returns sooner, a little more CPU per tick. Zero: no sweep thread
  // (expired entries then go from memory only when read or when the bound
  // needs room, and from the file at the next Open, which deletes every
  // row expired by then). Not negative. Default: 1 s.
  std::chrono::milliseconds cache_sweep_interval{1000};

  // API keys (keys.h, Store::keys()). Every key is held in memory (a few
  // hundred bytes each; keys are expected to number in the thousands).
  //
  // The rate limit of a key created without one (KeySpec::rate_per_s 0):
  // sustained requests per second refilled into a token bucket of
  // keys_default_burst tokens. 0: unlimited (CheckRateLimit always
  // allows). The bucket lives in memory only; a restart refills it.
  // Defaults: 0 (unlimited), burst 0 (taken as max(1, rate) when a rate is
  // set).
  double keys_default_rate_per_s = 0;
  int64_t keys_default_burst = 0;
  // How often the request counts and last-used times of keys used since
  // the last flush are written (one small UPDATE per used key, in one
  // write, however many validations happened). They are also written at
  // Close. Longer: fewer writes; a crash loses up to this much usage.
  // Zero: no periodic flush (only at Close). Not negative. Default: 1 s.
  std::chrono::milliseconds keys_usage_flush_interval{1000};
  // How often this store looks whether another store on the same file (in
  // this process or another) created, revoked or rotated a key, and if so
  // reads every key again. That bounds how long a key revoked elsewhere
  // keeps validating here, and how long a key created elsewhere is unknown
  // here: about this interval plus one read of the keys table (see
  // keys.h, "SEVERAL STORES"). A read-only store refreshes too. Each look
  // is PRAGMA data_version on a connection kept open (not measured on its
  // own); only after a commit anywhere on the file does it read one row
  // (store_meta 'keys_version'), and only after a key change the whole
  // table (about 60 ms for 10,000 keys, timed once by hand with a TSan
  // build beside it, not a benchmark; at most once per interval however
  // many keys changed), on the background
  // thread that flushes usage: ValidateKey never waits for it (it may wait
  // for one key's merge under its shard lock). Shorter: a smaller
  // window, more wake-ups. Zero: keys are read at Open only, as for a store
  // that is the file's only user (a rotation is still checked against the
  // file when it commits). Not negative. Default: 1 s.
  std::chrono::milliseconds keys_refresh_interval{1000};

  // Bounds of the write queue between Append and the background writer.
  // Items: default 262,144. Bytes (message payload): default 64 MiB. Each at
  // least 1 (Open refuses 0).
  size_t queue_max_items = 262'144;
  size_t queue_max_bytes = 64 << 20;

  // A batch (one SQLite transaction) closes when it reaches max_batch_ops
  // writes or max_batch_bytes bytes, or when its oldest write has waited
  // max_flush_delay, or at once when someone waits (Flush, WaitDurable, a
  // sync Append, Close). Bigger batches write faster; a longer delay widens
  // the crash loss window (see docs/durability.md). Open refuses batch
  // bounds of 0 (no write would ever enter a batch) and a delay under 1 ms
  // (the idle writer would spin). Defaults: 8192 ops, 16 MiB, 50 ms.
  size_t max_batch_ops = 8192;
  size_t max_batch_bytes = 16 << 20;
  std::chrono::milliseconds max_flush_delay{50};

  // Batches write no index entry: the messages not yet in the main index are
  // indexed in memory (rebuilt from the file at open). Once that holds this
  // many entries the writer merges them into the main index in one
  // transaction between batches (docs/schema.md, versions 9, 12 and 13).
  // Each merge delays the next batch, and so widens the loss window by its
  // length (docs/durability.md): with 10,000 conversations a merge costs
  // about 5.3 us per conversation it touches plus 0.1 us per entry while the
  // file is small (60-80 ms at 131,072 entries), 130-170 ms at 10M messages
  // (docs/benchmarks.md, "Merges twice as far apart"). Larger: fewer,
  // longer merges; more memory (48-byte entries in per-conversation vectors,
  // plus the merge's copy: about 110 bytes per entry, 14 MB at 131,072,
  // estimated from those sizes, not measured); a longer scan of the
  // unmerged rows at open. 131,072 appends 19-31% faster than 65,536 up to
  // 1M messages over 10,000 conversations (13 messages each per merge). Where
  // most conversations receive one message per merge it gains nothing;
  // index_merge_conversations then starts the merge sooner, which bounds its
  // pause. At least 1. Default: 131,072.
  size_t index_merge_rows = 131'072;
  // The writer also merges once the messages indexed in memory span this
  // many conversations, whatever their count: a merge costs about 5.3 us
  // per conversation it touches, so this bounds its pause where most
  // conversations receive one message per merge (about 0.35 s at the
  // default, estimated from that cost, not timed). Larger: longer pauses
  // there; smaller: more merges. At least 1. Default: 65,536.
  size_t index_merge_conversations = 65'536;

  // Name of a registered SQLite VFS to open the database with (every
  // connection of the store). Empty: SQLite's default (unix). Tests use it
  // to open a store on a fault-injecting VFS. Default: empty.
  std::string sqlite_vfs{};

  // SQLite page cache per connection, in MiB. 1 to 2^20. Default: 64.
  int sqlite_cache_mib = 64;
  // How long SQLite waits on a lock held by another connection or process
  // before a statement reports busy. Default: 5 s.
  std::chrono::milliseconds busy_timeout{5000};
  // WAL pages after which a background thread of the store checkpoints
  // (passive: never blocking writes or reads) the WAL into the database, on
  // a connection of its own, so the writer thread does not stop to copy
  // pages and fsync the file. The WAL starts over once it holds about 4x
  // this many pages (the writer copies the last few itself); at 8x (the
  // checkpoints fall behind, say on a slow disk) the committing writer
  // waits for them and checkpoints itself. A reader holding an old
  // snapshot (a long read transaction, here or in another process) keeps
  // the WAL from starting over, and it grows past 8x until the reader lets
  // go. Smaller: a smaller WAL file and faster WAL lookups for readers,
  // more checkpoints. 0: SQLite checkpoints only at Close. 0 to 2^28 - 1.
  // Default: 4096 pages (16 MiB; the WAL file grows to about 64 MiB, about
  // 128 MiB when the checkpoints fall behind).
  int wal_autocheckpoint_pages = 4096;
  // After a checkpoint the WAL file is truncated to at most this many bytes.
  // -1: no limit (SQLite's meaning); Open refuses values below -1.
  // Default: 64 MiB.
  int64_t journal_size_limit = 64 << 20;
  // Read connections kept for read-through (History misses, listing).
  // At least 1. Default: 4.
  size_t read_connections = 4;

  // When a commit fails with a transient error (busy, I/O error, disk full),
  // the writer keeps the batch and retries with exponential backoff from
  // retry_initial_backoff up to retry_max_backoff (with jitter), forever,
  // while the store reports degraded health after retry_budget of failures.
  // Open needs 1 ms <= retry_initial_backoff <= retry_max_backoff and a
  // retry_budget not negative. Every duration option (these, the flush
  // delay, queue_full_wait, busy_timeout) must be at most 2^31 - 1 ms, and
  // queue_full_wait and busy_timeout not negative. Close keeps its timeout
  // during a backoff.
  // Defaults: 10 ms, 1 s, 5 s.
  std::chrono::milliseconds retry_initial_backoff{10};
  std::chrono::milliseconds retry_max_backoff{1000};
  std::chrono::milliseconds retry_budget{5000};
};

}  // namespace convstore

#endif  // CONVSTORE_OPTIONS_H_
