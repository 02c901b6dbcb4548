// Copyright 2026 The convstore Authors.
//
// KeysImpl: the Keys a Store hands out (include/convstore/keys.h). Every
// key lives in memory in one of a fixed set of shards (by id); a change is
// applied to its shard and queued through the WritePath as a KeyOp while
// the shard lock is held, so the LSN order of one key's writes is the order
// memory saw them. Validation never touches the database.
//
// Other stores on the file: Refresh reads every key again when a key's
// definition changed in the file since the last read (another store's
// create, revoke or rotate, or this store's own), and merges: a key with a
// put of this store still queued (put_lsn above the durable LSN) keeps its
// definition and takes every end the file has (revoked, successor, earlier
// expiry); any other key takes the file's definition, except that a key
// revoked in memory stays revoked. Usage counts keep the larger of the two.
// The background thread calls it every Options::keys_refresh_interval. A
// rotation is decided by the writer on the stored row (KeyRotate).
//
// Usage counts are bumped in memory on each successful validation and the
// key's id is put on its shard's dirty list; FlushUsage drains the lists
// into one KeyUsageFlush op holding each used key once. A small thread
// calls it every Options::keys_usage_flush_interval, and Stop calls it a
// last time, so a million validations of one key between flushes cost one
// UPDATE. A validation that takes its shard lock after Stop began fails as
// after Close instead of counting a use that last flush may have missed.
//
// Audit: with a sink, create/revoke/rotate are recorded and waited for
// after their commit; failed validations are recorded without waiting.
//
// Thread safety: all public methods are thread-safe. Start/Stop are called
// by the Store (Stop may be called more than once).
//
// Invariants:
//  1. A key's op is queued before its memory changes, under the shard
//     lock; if queuing fails, memory is left as it was.
//  2. An id is on its shard's dirty list iff its entry's usage_dirty is
//     set (or the entry is gone).
//  3. No secret is stored, logged or audited: only its hash (in KeyRow)
//     and its id/prefix leave CreateKey.
//  4. An entry's put_lsn is the LSN of the last op of this store that
//     writes its definition, while memory holds that op's result (0: none
//     since the entry last took the file's row, in Reload or a Refresh).
//     A rotation's op writes both keys; it is queued under the old key's
//     shard lock, and the new key's entry is made after it, under its own.
//  5. No Refresh runs between a rotation's queuing and the making of its
//     new key's entry (RotateKey holds refresh_mu_ across both), so a
//     Refresh that sees the rotation's LSN durable also sees the new key.

#ifndef CONVSTORE_SRC_KEYS_KEYS_IMPL_H_
#define CONVSTORE_SRC_KEYS_KEYS_IMPL_H_

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>
#include <spdlog/logger.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit_sink.h"
#include "convstore/keys.h"
#include "convstore/options.h"
#include "keys/key_op.h"
#include "keys/key_secret.h"
#include "keys/key_storage.h"
#include "keys/token_bucket.h"
#include "mutex.h"
#include "periodic_thread.h"
#include "write_path.h"

namespace convstore::internal {

// Input limits of KeySpec (documented in keys.h).
inline constexpr size_t kKeyMaxNameBytes = 256;
inline constexpr size_t kKeyMaxScopeBytes = 128;
inline constexpr size_t kKeyMaxScopes = 64;
// Lock shards of the key table. Every validation takes its key's shard
// lock, so two threads validating at once wait on each other whenever their
// keys share a shard: at 16 shards that set the p99 of two validating
// threads (1.02-1.77 us at 10,000 keys); at 256 it is 0.79-0.95 us, near
// what two threads on two separate stores give (docs/benchmarks.md, "Key
// lock shards"). A shard is about 100 bytes and a mostly empty table.
inline constexpr size_t kKeyShards = 256;

class KeysImpl final : public Keys {
 public:
  using WaitFn = std::function<Status(uint64_t lsn)>;
  using NowFn = std::function<int64_t()>;  // microseconds

  // `storage` may be null (nothing to reload); `audit` may be null (no
  // auditing). `wall` gives wall-clock time (created, expiry, last used),
  // `mono` monotonic time (rate-limit buckets).
  KeysImpl(const Options& options, WritePath* write_path, KeyStorage* storage,
           AuditSink* audit, WaitFn wait_durable, NowFn wall, NowFn mono,
           std::shared_ptr<spdlog::logger> log);
  ~KeysImpl() override;

  // Loads every stored key.
  Status Reload();
  // Reads every key again if a key's definition changed in the file since
  // the last read (always, with `force`), and merges them into memory (see
  // above). OK without storage. Called by the background thread; tests
  // call it directly.
  Status Refresh(bool force = false);
  // Starts the background thread: usage flush every
  // keys_usage_flush_interval (not for a read-only store), Refresh every
  // keys_refresh_interval (with storage). Nothing if both are off.
  void Start();
  // Stops the flush thread, flushes usage a last time; later calls fail
  // with FailedPrecondition, and so does a ValidateKey under way that had
  // not counted its use yet. Idempotent.
  void Stop();
  // Queues the usage of every key used since the last flush as one op.
  // Returns the number of keys in it (0: nothing queued). Called by the
  // flush thread and Stop; tests call it directly.
  size_t FlushUsage();
  // Audits the failed validations coalesced since the last call: one record
  // per (reason, key, scope) that was denied again after its first record
  // (details "repeated": n), plus one for denials past the tracking bound.
  // Returns the records written. Called with FlushUsage.
  size_t FlushDenials();

  StatusOr<CreatedKey> CreateKey(const KeySpec& spec) override;
  using Keys::ValidateKey;
  StatusOr<KeyInfo> ValidateKey(std::string_view secret,
                                std::string_view required_scope) override;
  Status RevokeKey(std::string_view id) override;
  StatusOr<CreatedKey> RotateKey(std::string_view id,
                                 std::chrono::microseconds overlap) override;
  StatusOr<std::vector<KeyInfo>> ListKeys(
      std::optional<std::string> owner) override;
  StatusOr<RateDecision> CheckRateLimit(std::string_view id) override;

  // Tests only: runs in RotateKey after the rotation is queued and before
  // the new key's entry is made (refresh_mu_ held, no shard lock). Set
  // before any rotation starts.
  void SetRotationHookForTest(std::function<void()> hook) {
    rotation_hook_ = std::move(hook);
  }

 private:
  struct Entry {
    // Sets row and the inline copy of its hash.
    void Set(KeyRow r);
    KeyRow row;
    // row.hash again, inline: the compare on the validation path then
    // touches no memory outside the map slot. Empty (no match possible)
    // when row.hash is not kKeyHashBytes long.
    KeyHash hash{};
    // row.scopes again, inline in the slot for the same reason: the scope
    // check and the KeyInfo copy read no heap block (a dependent miss).
    absl::InlinedVector<std::string, 4> scopes;
    bool hash_ok = false;
    bool usage_dirty = false;
    // The LSN of this process's revocation of the key (0: none, or it was
    // revoked before the store opened). A RevokeKey repeated after one
    // that could not wait out its commit waits for this one.
    uint64_t revoke_lsn = 0;
    // Invariant 4: a Refresh leaves this entry's definition to memory
    // while this LSN is not yet durable.
    uint64_t put_lsn = 0;
    TokenBucket bucket;
  };
  // Keys are ids packed by PackId: a lookup hashes one integer and builds
  // no string.
  struct Shard {
    Mutex mu;
    absl::flat_hash_map<uint64_t, Entry> keys ABSL_GUARDED_BY(mu);
    std::vector<uint64_t> dirty ABSL_GUARDED_BY(mu);
  };

  // The 8 characters of a key id (IsKeyId) as one integer, and back.
  static uint64_t PackId(std::string_view id);
  static std::string UnpackId(uint64_t key);
  Shard& ShardFor(uint64_t key);
  Status CheckOpen() const;
  // Refreshes (not forced) when key `key` is not in memory: a key another
  // store made since the last refresh can then be revoked or rotated here
  // at once. Only for RevokeKey and RotateKey, never ValidateKey (a flood
  // of unknown ids must not become a flood of reads).
  void RefreshIfUnknown(uint64_t key);
  // Merges `file`, the stored row of entry `e`, into it (see above).
  static void Merge(Entry* e, KeyRow file, uint64_t durable);
  // A rotation the writer refused: drops the new key `new_key` and gives
  // the old key back the end it had, where op `lsn` is still their last.
  void UndoRotation(uint64_t old_key, uint64_t new_key, uint64_t lsn,
                    int64_t old_expires_us);
  // Queues a put of `row` (kSync as kBatched: the caller waits after
  // unlocking). Returns the LSN.
  // Queue room for one put of about `bytes`, reserved before a shard lock
  // is taken (a full queue must not stall ValidateKey on that shard), and
  // given back unless Put uses it.
  class Room {
   public:
    explicit Room(KeysImpl* keys) : keys_(keys) {}
    ~Room();
    Room(const Room&) = delete;
    Room& operator=(const Room&) = delete;
    // Before the lock: waits for room as the durability class says.
    Status Reserve(size_t bytes);
    // Under the lock: queues `row` (charged the reserved bytes), with the
    // change's audit record when there is one.
    StatusOr<uint64_t> Put(const KeyRow& row,
                           std::shared_ptr<const AuditAppend> audit = nullptr);
    // Under the lock: queues `op` (charged the reserved bytes).
    StatusOr<uint64_t> Submit(KeyOp op);

   private:
    KeysImpl* const keys_;
    size_t bytes_ = 0;
    bool held_ = false;
  };
  // The class key puts are queued in: a kSync caller waits after
  // unlocking (AfterWrite).
  Durability QueueClass() const;
  // After unlocking: waits for `lsn` when the class is kSync.
  Status AfterWrite(uint64_t lsn, std::string_view id);
  // Makes a key from `spec`-like fields, stores and queues it; the LSN of
  // its put in *lsn. Does not wait. With `audit_create`, the put carries a
  // key.create record.
  StatusOr<CreatedKey> Insert(KeyRow row, uint64_t* lsn, bool audit_create);
  // The audit record a key change carries (null without an audit log).
  std::shared_ptr<const AuditAppend> ChangeRecord(std::string action,
                                                  std::string resource,
                                                  std::string details_json);
  // Audits (when there is a sink). Never fails the caller: a failure is
  // logged.
  void Audit(std::string action, std::string resource, std::string outcome,
             std::string details_json, bool wait);
  // A failed validation: audits the first of its kind (reason, key, scope)
  // at once, not waiting, and counts repeats for FlushDenials, so a flood
  // of bad keys costs the write queue at most two records per kind and
  // flush interval. Returns `result`.
  Status Deny(Status result, std::string_view reason, std::string_view id,
              std::string_view scope);
  void AuditDenial(std::string_view reason, std::string_view id,
                   std::string_view scope, int64_t repeated);

  const Options options_;
  WritePath* const write_path_;
  KeyStorage* const storage_;
  AuditSink* const audit_;
  const WaitFn wait_durable_;
  const NowFn wall_;
  const NowFn mono_;
  const std::shared_ptr<spdlog::logger> log_;
  const Durability durability_;
  std::vector<std::unique_ptr<Shard>> shards_;

  std::atomic<bool> stopped_{false};

  // Serializes Refresh, and holds it off while a rotation makes its new
  // key (invariant 5); taken before any shard lock, never under one.
  Mutex refresh_mu_;
  // The DefinitionsVersion the keys in memory were last read at.
  int64_t loaded_version_ ABSL_GUARDED_BY(refresh_mu_) = -1;

  // Failed validations since the last FlushDenials, by kind.
  struct DenialKind {
    std::string reason, id, scope;
    int64_t repeats = 0;  // after the first, which was recorded at once
  };
  static constexpr size_t kMaxDenialKinds = 1024;
  Mutex deny_mu_;
  absl::flat_hash_map<std::string, DenialKind> denials_
      ABSL_GUARDED_BY(deny_mu_);
  int64_t denials_untracked_ ABSL_GUARDED_BY(deny_mu_) = 0;

  PeriodicThread flusher_;
  std::function<void()> rotation_hook_;  // tests only
};

// The public view of a stored key (no hash).
KeyInfo ToKeyInfo(const KeyRow& row);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_KEYS_KEYS_IMPL_H_
