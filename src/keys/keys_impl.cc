// Copyright 2026 The convstore Authors.

#include "keys/keys_impl.h"

#include <absl/hash/hash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "keys/key_secret.h"
#include "saturating.h"
#include "validation.h"

namespace convstore::internal {
namespace {

using nlohmann::json;

// One message for every way a secret can fail to identify a key, so the
// answer does not tell a guesser which part was wrong.
constexpr const char* kBadKey = "invalid API key";
constexpr const char* kInactiveKey = "API key is not active";
constexpr const char* kNoScope = "API key lacks the required scope";

Status CheckText(const char* what, std::string_view v, size_t max) {
  if (v.empty()) {
    return Status::InvalidArgument(std::string("key ") + what + " is empty");
  }
  if (v.size() > max) {
    return Status::InvalidArgument(std::string("key ") + what + " is " +
                                   std::to_string(v.size()) +
                                   " bytes, more than " + std::to_string(max));
  }
  if (v.find('\0') != std::string_view::npos || !IsValidUtf8(v)) {
    return Status::InvalidArgument(std::string("key ") + what +
                                   " is not valid UTF-8 without NUL");
  }
  return Status::OK();
}

Status CheckSpec(const KeySpec& spec, int64_t now_us) {
  Status s = CheckText("name", spec.name, kKeyMaxNameBytes);
  if (s.ok()) s = CheckText("owner", spec.owner, kKeyMaxNameBytes);
  if (!s.ok()) return s;
  if (spec.scopes.size() > kKeyMaxScopes) {
    return Status::InvalidArgument("key has more than " +
                                   std::to_string(kKeyMaxScopes) + " scopes");
  }
  for (const std::string& scope : spec.scopes) {
    s = CheckText("scope", scope, kKeyMaxScopeBytes);
    if (!s.ok()) return s;
  }
  if (spec.expires_at_us < 0 ||
      (spec.expires_at_us > 0 && spec.expires_at_us <= now_us)) {
    return Status::InvalidArgument("key expiry is not in the future");
  }
  if (!std::isfinite(spec.rate_per_s) || spec.rate_per_s < 0) {
    return Status::InvalidArgument("key rate_per_s is negative or not finite");
  }
  if (spec.burst < 0) return Status::InvalidArgument("key burst is negative");
  return Status::OK();
}

template <typename T>
void PrefetchEntry(const T& e) {
  const char* p = reinterpret_cast<const char*>(&e);
  for (size_t off = 0; off < sizeof(T); off += 64) {
    __builtin_prefetch(p + off);
  }
}

bool IsExpired(const KeyRow& r, int64_t now_us) {
  return r.expires_us > 0 && now_us >= r.expires_us;
}

size_t RowBytes(const KeyRow& r) {
  size_t n = sizeof(WriteOp) + sizeof(KeyRow) + r.id.size() + r.name.size() +
             r.owner.size() + r.hash.size() + r.rotated_from.size() +
             r.replaced_by.size();
  for (const std::string& s : r.scopes) n += s.size() + sizeof(std::string);
  return n;
}

}  // namespace

namespace {

// ToKeyInfo with the scopes taken from `scopes` (row.scopes or a copy).
template <typename Scopes>
KeyInfo ToKeyInfoWith(const KeyRow& row, const Scopes& scopes) {
  KeyInfo k;
  k.id = row.id;
  k.prefix = KeyPrefix(row.id);
  k.name = row.name;
  k.owner = row.owner;
  k.scopes.assign(scopes.begin(), scopes.end());
  k.created_at_us = row.created_us;
  k.expires_at_us = row.expires_us;
  k.revoked_at_us = row.revoked_us;
  k.request_count = row.request_count;
  k.last_used_at_us = row.last_used_us;
  k.rate_per_s = row.rate_per_s;
  k.burst = row.burst;
  k.rotated_from = row.rotated_from;
  k.replaced_by = row.replaced_by;
  return k;
}

}  // namespace

KeyInfo ToKeyInfo(const KeyRow& row) { return ToKeyInfoWith(row, row.scopes); }

void KeysImpl::Entry::Set(KeyRow r) {
  row = std::move(r);
  scopes.assign(row.scopes.begin(), row.scopes.end());
  hash_ok = row.hash.size() == hash.size();
  hash.fill('\0');
  if (hash_ok) std::copy(row.hash.begin(), row.hash.end(), hash.begin());
}

KeysImpl::KeysImpl(const Options& options, WritePath* write_path,
                   KeyStorage* storage, AuditSink* audit, WaitFn wait_durable,
                   NowFn wall, NowFn mono, std::shared_ptr<spdlog::logger> log)
    : options_(options),
      write_path_(write_path),
      storage_(storage),
      audit_(audit),
      wait_durable_(std::move(wait_durable)),
      wall_(std::move(wall)),
      mono_(std::move(mono)),
      log_(std::move(log)),
      durability_(options.durability.keys) {
  shards_.reserve(kKeyShards);
  for (size_t i = 0; i < kKeyShards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
}

KeysImpl::~KeysImpl() { Stop(); }

uint64_t KeysImpl::PackId(std::string_view id) {
  static_assert(kKeyIdChars == sizeof(uint64_t));
  uint64_t key = 0;
  std::memcpy(&key, id.data(), std::min(id.size(), sizeof(key)));
  return key;
}

std::string KeysImpl::UnpackId(uint64_t key) {
  std::string id(kKeyIdChars, '\0');
  std::memcpy(id.data(), &key, sizeof(key));
  return id;
}

KeysImpl::Shard& KeysImpl::ShardFor(uint64_t key) {
  // The high bits: each shard map takes its slot and tag from the low ones.
  return *shards_[(absl::HashOf(key) >> 32) % shards_.size()];
}

Status KeysImpl::CheckOpen() const {
  if (stopped_.load(std::memory_order_relaxed)) {
    return Status::FailedPrecondition("store is closed");
  }
  return Status::OK();
}

Durability KeysImpl::QueueClass() const {
  return durability_ == Durability::kSync ? Durability::kBatched : durability_;
}

KeysImpl::Room::~Room() {
  if (held_) keys_->write_path_->CancelReserved(bytes_);
}

Status KeysImpl::Room::Reserve(size_t bytes) {
  Status s = keys_->write_path_->Reserve(bytes, keys_->QueueClass());
  if (!s.ok()) return s;
  bytes_ = bytes;
  held_ = true;
  return s;
}

StatusOr<uint64_t> KeysImpl::Room::Put(
    const KeyRow& row, std::shared_ptr<const AuditAppend> audit) {
  return Submit(KeyOp{KeyPut{row}, std::move(audit), nullptr});
}

StatusOr<uint64_t> KeysImpl::Room::Submit(KeyOp op) {
  // Made first: if moving the op runs out of memory, the destructor still
  // gives the room back.
  WritePayload payload(std::move(op));
  held_ = false;  // SubmitReserved gives the room back itself on failure
  return keys_->write_path_->SubmitReserved(std::move(payload), bytes_,
                                            keys_->QueueClass());
}

Status KeysImpl::AfterWrite(uint64_t lsn, std::string_view id) {
  if (durability_ != Durability::kSync || lsn == 0) return Status::OK();
  Status s = wait_durable_(lsn);
  if (!s.ok()) {
    return s.WithPrefix("change of API key " + std::string(id) +
                        " applied in memory as lsn " + std::to_string(lsn) +
                        ", but not yet durable");
  }
  return s;
}

std::shared_ptr<const AuditAppend> KeysImpl::ChangeRecord(
    std::string action, std::string resource, std::string details_json) {
  if (audit_ == nullptr) return nullptr;
  AuditAppend a;
  a.event.actor = "system";
  a.event.action = std::move(action);
  a.event.resource = std::move(resource);
  a.event.outcome = "success";
  a.event.details_json = std::move(details_json);
  a.ts_us = wall_();
  return std::make_shared<const AuditAppend>(std::move(a));
}

namespace {

// What key.create records of a key.
std::string CreateDetails(const KeyInfo& k) {
  return json{{"prefix", k.prefix},
              {"name", k.name},
              {"owner", k.owner},
              {"scopes", k.scopes},
              {"expires_at_us", k.expires_at_us}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

void KeysImpl::Audit(std::string action, std::string resource,
                     std::string outcome, std::string details_json, bool wait) {
  if (audit_ == nullptr) return;
  AuditEvent e;
  e.actor = "system";
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.outcome = std::move(outcome);
  e.details_json = std::move(details_json);
  Status s = audit_->Record(std::move(e), wait);
  if (!s.ok()) log_->warn("API keys: audit record failed: {}", s.ToString());
}

StatusOr<CreatedKey> KeysImpl::Insert(KeyRow row, uint64_t* lsn,
                                      bool audit_create) {
  // Ids and hashes have fixed sizes: the room fits whichever is drawn.
  row.id.assign(kKeyIdChars, 'x');
  row.hash.assign(kKeyHashBytes, 'x');
  Room room(this);
  Status reserved = room.Reserve(RowBytes(row));
  if (!reserved.ok()) return reserved;
  // An id collision (1 in 2.8e12 per pair) just draws again.
  for (int attempt = 0; attempt < 16; ++attempt) {
    Status s = NewKeyId(&row.id);
    if (!s.ok()) return s;
    CreatedKey created;
    s = NewSecret(row.id, &created.secret);
    if (!s.ok()) return s;
    row.hash = HashSecret(created.secret);
    const uint64_t key = PackId(row.id);
    Shard& shard = ShardFor(key);
    MutexLock lock(&shard.mu);
    if (shard.keys.contains(key)) continue;
    created.info = ToKeyInfo(row);
    StatusOr<uint64_t> r =
        room.Put(row, audit_create ? ChangeRecord("key.create", row.id,
                                                  CreateDetails(created.info))
                                   : nullptr);
    if (!r.ok()) return r.status();
    *lsn = *r;
    Entry& e = shard.keys[key];
    e.Set(std::move(row));
    e.put_lsn = *r;
    return created;
  }
  return Status::Internal("could not draw an unused API key id");
}

StatusOr<CreatedKey> KeysImpl::CreateKey(const KeySpec& spec) {
  Status s = CheckOpen();
  if (!s.ok()) return s;
  const int64_t now = wall_();
  s = CheckSpec(spec, now);
  if (!s.ok()) return s;
  KeyRow row;
  row.name = spec.name;
  row.owner = spec.owner;
  row.scopes = spec.scopes;
  row.created_us = now;
  row.expires_us = spec.expires_at_us;
  row.rate_per_s =
      spec.rate_per_s > 0 ? spec.rate_per_s : options_.keys_default_rate_per_s;
  row.burst = spec.burst > 0 ? spec.burst : options_.keys_default_burst;
  if (row.rate_per_s > 0 && row.burst <= 0) {
    row.burst = std::max<int64_t>(1, SatFromDouble(row.rate_per_s));
  }
  uint64_t lsn = 0;
  StatusOr<CreatedKey> created =
      Insert(std::move(row), &lsn, /*audit_create=*/true);
  if (!created.ok()) return created.status();
  s = AfterWrite(lsn, created->info.id);
  if (!s.ok()) return s;
  const KeyInfo& k = created->info;
  log_->info("API key {} created for owner {}", k.prefix, k.owner);
  return created;
}

Status KeysImpl::Deny(Status result, std::string_view reason,
                      std::string_view id, std::string_view scope) {
  if (audit_ == nullptr) return result;
  std::string kind;
  kind.reserve(reason.size() + id.size() + scope.size() + 2);
  kind.append(reason).append(1, '\x1f').append(id).append(1, '\x1f');
  kind.append(scope);
  {
    MutexLock lock(&deny_mu_);
    auto it = denials_.find(kind);
    if (it != denials_.end()) {
      ++it->second.repeats;
      return result;
    }
    if (denials_.size() >= kMaxDenialKinds) {
      ++denials_untracked_;
      return result;
    }
    denials_.emplace(std::move(kind),
                     DenialKind{std::string(reason), std::string(id),
                                std::string(scope), 0});
  }
  AuditDenial(reason, id, scope, 0);
  return result;
}

void KeysImpl::AuditDenial(std::string_view reason, std::string_view id,
                           std::string_view scope, int64_t repeated) {
  json details{{"reason", reason}};
  if (!id.empty()) {
    details["key_id"] = id;
    details["prefix"] = KeyPrefix(id);
  }
  if (!scope.empty()) details["required_scope"] = scope;
  if (repeated > 0) details["repeated"] = repeated;
  Audit("key.validate", std::string(id), "denied",
        details.dump(-1, ' ', false, json::error_handler_t::replace),
        /*wait=*/false);
}

size_t KeysImpl::FlushDenials() {
  if (audit_ == nullptr) return 0;
  absl::flat_hash_map<std::string, DenialKind> kinds;
  int64_t untracked = 0;
  {
    MutexLock lock(&deny_mu_);
    kinds.swap(denials_);
    std::swap(untracked, denials_untracked_);
  }
  size_t written = 0;
  for (const auto& [kind, d] : kinds) {
    if (d.repeats == 0) continue;
    AuditDenial(d.reason, d.id, d.scope, d.repeats);
    ++written;
  }
  if (untracked > 0) {
    AuditDenial("various", {}, {}, untracked);
    ++written;
  }
  return written;
}

StatusOr<KeyInfo> KeysImpl::ValidateKey(std::string_view secret,
                                        std::string_view required_scope) {
  Status s = CheckOpen();
  if (!s.ok()) return s;
  std::string_view id;
  if (!ParseSecret(secret, &id)) {
    // Nothing of the input is recorded: it may be a secret of another kind.
    return Deny(Status::Unauthenticated(kBadKey), "malformed", {}, {});
  }
  const int64_t now = wall_();
  const uint64_t key = PackId(id);
  Shard& shard = ShardFor(key);
  // With many keys the entry is often out of the CPU caches. Find it and
  // start loading all its lines now, so that they arrive while the secret
  // is hashed (SHA-256, ~100 ns) rather than after. Only a hint, so only
  // when the shard is free at once (a busy shard is not waited for twice):
  // the lookup that counts is the one below, under the lock again.
  if (shard.mu.TryLock()) {
    auto it = shard.keys.find(key);
    if (it != shard.keys.end()) PrefetchEntry(it->second);
    shard.mu.Unlock();
  }
  // Hashed outside the lock: inside, it would hold the shard lock ~100 ns
  // longer for every other validation of the shard.
  KeyHash hash;
  HashSecretInto(secret, &hash);
  const char* reason = nullptr;
  {
    MutexLock lock(&shard.mu);
    // Checked again under the lock that Stop's last usage flush takes
    // after setting stopped_ (so relaxed is enough): a validation that
    // gets here after that flush read this shard would count a use no one
    // writes, so it fails as a call after Close does.
    if (stopped_.load(std::memory_order_relaxed)) {
      return Status::FailedPrecondition("store is closed");
    }
    auto it = shard.keys.find(key);
    if (it == shard.keys.end()) {
      reason = "unknown_key";
    } else {
      Entry& e = it->second;
      if (!e.hash_ok ||
          !HashEquals(std::string_view(hash.data(), hash.size()),
                      std::string_view(e.hash.data(), e.hash.size()))) {
        reason = "wrong_secret";
      } else if (e.row.revoked_us != 0) {
        reason = "revoked";
      } else if (IsExpired(e.row, now)) {
        reason = "expired";
      } else if (!required_scope.empty() &&
                 std::find(e.scopes.begin(), e.scopes.end(), required_scope) ==
                     e.scopes.end()) {
        reason = "missing_scope";
      } else {
        ++e.row.request_count;
        e.row.last_used_us = std::max(e.row.last_used_us, now);
        if (!e.usage_dirty) {
          e.usage_dirty = true;
          shard.dirty.push_back(key);
        }
        return ToKeyInfoWith(e.row, e.scopes);
      }
    }
  }
  const std::string_view r(reason);
  if (r == "unknown_key" || r == "wrong_secret") {
    // The id is recorded only for a key that exists.
    return Deny(Status::Unauthenticated(kBadKey), r,
                r == "wrong_secret" ? id : std::string_view(), {});
  }
  if (r == "missing_scope") {
    return Deny(Status::PermissionDenied(kNoScope), r, id, required_scope);
  }
  return Deny(Status::PermissionDenied(kInactiveKey), r, id, {});
}

Status KeysImpl::RevokeKey(std::string_view id) {
  Status s = CheckOpen();
  if (!s.ok()) return s;
  if (!IsKeyId(id)) return Status::NotFound("no such API key");
  RefreshIfUnknown(PackId(id));
  Shard& shard = ShardFor(PackId(id));
  uint64_t lsn = 0;
  bool again = false;
  size_t bytes = 0;
  {
    MutexLock lock(&shard.mu);
    auto it = shard.keys.find(PackId(id));
    if (it == shard.keys.end()) return Status::NotFound("no such API key");
    again = it->second.row.revoked_us != 0;
    lsn = it->second.revoke_lsn;
    bytes = RowBytes(it->second.row);
  }
  Room room(this);
  if (!again) {
    s = room.Reserve(bytes);
    if (!s.ok()) return s;
    MutexLock lock(&shard.mu);
    auto it = shard.keys.find(PackId(id));
    if (it == shard.keys.end()) return Status::NotFound("no such API key");
    Entry& e = it->second;
    again = e.row.revoked_us != 0;  // revoked meanwhile
    lsn = e.revoke_lsn;
    if (!again) {
      KeyRow row = e.row;
      row.revoked_us = std::max<int64_t>(1, wall_());
      StatusOr<uint64_t> r =
          room.Put(row, ChangeRecord("key.revoke", std::string(id),
                                     json{{"prefix", KeyPrefix(id)}}.dump()));
      if (!r.ok()) return r.status();
      lsn = *r;
      e.row.revoked_us = row.revoked_us;
      e.revoke_lsn = lsn;
      e.put_lsn = lsn;
    }
  }
  // Revoked already: by an earlier call, whose commit may not have been
  // waited out (it returned an error), so this one waits for it.
  s = AfterWrite(lsn, id);
  if (!s.ok()) return s;
  if (again) return Status::OK();
  log_->info("API key {} revoked", KeyPrefix(id));
  return Status::OK();
}

namespace {

std::string RotationRefused(std::string_view id, const KeyOutcome& outcome) {
  const std::string key = "API key " + std::string(id);
  switch (outcome.refusal()) {
    case KeyOutcome::kRevoked:
      return key +
             " was revoked in the database (by another store on the file) "
             "before this rotation committed; no new key was made";
    case KeyOutcome::kRotated:
      return key + " was already rotated to " + outcome.replaced_by() +
             " in the database (by another store on the file); rotate that "
             "key instead; no new key was made";
    default:
      return key +
             " is not in the database (its creation did not commit); no new "
             "key was made";
  }
}

}  // namespace

StatusOr<CreatedKey> KeysImpl::RotateKey(std::string_view id,
                                         std::chrono::microseconds overlap) {
  Status s = CheckOpen();
  if (!s.ok()) return s;
  if (overlap.count() < 0) {
    return Status::InvalidArgument("rotation overlap is negative");
  }
  if (!IsKeyId(id)) return Status::NotFound("no such API key");
  const uint64_t old_key = PackId(id);
  RefreshIfUnknown(old_key);
  const int64_t now = wall_();
  Shard& old_shard = ShardFor(old_key);
  KeyRow old;
  {
    MutexLock lock(&old_shard.mu);
    auto it = old_shard.keys.find(old_key);
    if (it == old_shard.keys.end()) return Status::NotFound("no such API key");
    old = it->second.row;
  }
  if (old.revoked_us != 0 || IsExpired(old, now)) {
    return Status::FailedPrecondition(
        "a revoked or expired key is not rotated");
  }
  // Checked before anything is reserved or drawn, for the plain answer.
  if (!old.replaced_by.empty()) {
    return Status::FailedPrecondition(
        "API key " + std::string(id) + " was already rotated to " +
        old.replaced_by + "; rotate that key instead");
  }
  KeyRow row;
  row.name = old.name;
  row.owner = old.owner;
  row.scopes = old.scopes;
  row.created_us = now;
  // A key made with a lifetime gets the same lifetime again (saturating: a
  // far-future expiry such as INT64_MAX stays far in the future).
  row.expires_us =
      old.expires_us > 0
          ? SatAdd(now, std::max<int64_t>(1, old.expires_us - old.created_us))
          : 0;
  row.rate_per_s = old.rate_per_s;
  row.burst = old.burst;
  row.rotated_from = old.id;
  // Ids and hashes have fixed sizes: the room fits whichever is drawn.
  row.id.assign(kKeyIdChars, 'x');
  row.hash.assign(kKeyHashBytes, 'x');
  KeyRow sized = old;
  sized.replaced_by = row.id;
  Room room(this);
  s = room.Reserve(RowBytes(row) + RowBytes(sized) + sizeof(KeyOutcome));
  if (!s.ok()) return s;
  const int64_t overlap_end = SatAdd(now, overlap.count());
  auto outcome = std::make_shared<KeyOutcome>();
  CreatedKey created;
  uint64_t lsn = 0;
  uint64_t new_key = 0;
  int64_t old_expires_us = 0;
  // An id collision (1 in 2.8e12 per pair) just draws again.
  for (int attempt = 0; attempt < 16 && lsn == 0; ++attempt) {
    s = NewKeyId(&row.id);
    if (!s.ok()) return s;
    s = NewSecret(row.id, &created.secret);
    if (!s.ok()) return s;
    row.hash = HashSecret(created.secret);
    new_key = PackId(row.id);
    {
      Shard& shard = ShardFor(new_key);
      MutexLock lock(&shard.mu);
      if (shard.keys.contains(new_key)) continue;
    }
    // No Refresh from the queuing until the new key is in memory (invariant
    // 5): one in between could see the writer refuse the rotation before
    // there is a new key to drop, and mark the file as read, so the refused
    // key would then validate until some other key changed on the file.
    MutexLock refresh_lock(&refresh_mu_);
    {
      // One op writes both keys, queued under the old key's lock: a revoke
      // or rotation of it by this store is then ordered before or after the
      // whole rotation, and the writer decides on the stored row (another
      // store's changes) in the transaction that would write it.
      MutexLock lock(&old_shard.mu);
      auto it = old_shard.keys.find(old_key);
      if (it == old_shard.keys.end()) {
        return Status::NotFound("no such API key");
      }
      Entry& e = it->second;
      if (e.row.revoked_us != 0 || !e.row.replaced_by.empty()) {
        return Status::FailedPrecondition(
            "API key " + std::string(id) +
            " was revoked or rotated while this rotation ran; no new key was "
            "made");
      }
      KeyRow updated = e.row;
      updated.replaced_by = row.id;
      updated.expires_us = updated.expires_us > 0
                               ? std::min(updated.expires_us, overlap_end)
                               : overlap_end;
      // An expiry of 0 means "never": a zero overlap at time 0 still ends.
      if (updated.expires_us == 0) updated.expires_us = 1;
      created.info = ToKeyInfo(row);
      std::shared_ptr<const AuditAppend> record =
          ChangeRecord("key.rotate", std::string(id),
                       json{{"prefix", KeyPrefix(id)},
                            {"new_key_id", row.id},
                            {"new_prefix", created.info.prefix},
                            {"old_expires_at_us", updated.expires_us}}
                           .dump());
      const int64_t new_expiry = updated.expires_us;
      StatusOr<uint64_t> r = room.Submit(KeyOp{
          KeyRotate{std::move(updated), row}, std::move(record), outcome});
      if (!r.ok()) return r.status();
      lsn = *r;
      old_expires_us = e.row.expires_us;
      e.row.replaced_by = row.id;
      e.row.expires_us = new_expiry;
      e.put_lsn = lsn;
    }
    if (rotation_hook_) rotation_hook_();
    Shard& shard = ShardFor(new_key);
    MutexLock lock(&shard.mu);
    Entry& e = shard.keys[new_key];
    e.Set(row);
    e.put_lsn = lsn;
  }
  if (lsn == 0) return Status::Internal("could not draw an unused API key id");
  const std::string new_id = row.id;
  s = AfterWrite(lsn, new_id);
  if (!s.ok()) return s;
  // Committed (kSync): the writer's decision is known. In the other
  // classes a refusal comes after the call; Refresh then drops the new key.
  if (durability_ == Durability::kSync &&
      outcome->refusal() != KeyOutcome::kNone) {
    UndoRotation(old_key, new_key, lsn, old_expires_us);
    // Learns what the other store did (a revocation then holds here at
    // once).
    Status r = Refresh(/*force=*/true);
    if (!r.ok()) log_->warn("API keys: refresh failed: {}", r.ToString());
    return Status::FailedPrecondition(RotationRefused(id, *outcome));
  }
  created.info.rotated_from = old.id;
  log_->info("API key {} rotated to {}", KeyPrefix(id), created.info.prefix);
  return created;
}

void KeysImpl::UndoRotation(uint64_t old_key, uint64_t new_key, uint64_t lsn,
                            int64_t old_expires_us) {
  {
    Shard& shard = ShardFor(new_key);
    MutexLock lock(&shard.mu);
    auto it = shard.keys.find(new_key);
    if (it != shard.keys.end() && it->second.put_lsn == lsn) {
      shard.keys.erase(it);
    }
  }
  Shard& shard = ShardFor(old_key);
  MutexLock lock(&shard.mu);
  auto it = shard.keys.find(old_key);
  if (it != shard.keys.end() && it->second.put_lsn == lsn) {
    it->second.row.replaced_by.clear();
    it->second.row.expires_us = old_expires_us;
  }
}

StatusOr<std::vector<KeyInfo>> KeysImpl::ListKeys(
    std::optional<std::string> owner) {
  Status s = CheckOpen();
  if (!s.ok()) return s;
  std::vector<KeyInfo> out;
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (const auto& [id, e] : shard->keys) {
      if (owner.has_value() && e.row.owner != *owner) continue;
      out.push_back(ToKeyInfo(e.row));
    }
  }
  std::sort(out.begin(), out.end(), [](const KeyInfo& a, const KeyInfo& b) {
    return a.created_at_us != b.created_at_us
               ? a.created_at_us < b.created_at_us
               : a.id < b.id;
  });
  return out;
}

StatusOr<RateDecision> KeysImpl::CheckRateLimit(std::string_view id) {
  Status s = CheckOpen();
  if (!s.ok()) return s;
  if (!IsKeyId(id)) return Status::NotFound("no such API key");
  const int64_t now = mono_();
  Shard& shard = ShardFor(PackId(id));
  MutexLock lock(&shard.mu);
  auto it = shard.keys.find(PackId(id));
  if (it == shard.keys.end()) return Status::NotFound("no such API key");
  Entry& e = it->second;
  return e.bucket.Take(e.row.rate_per_s, e.row.burst, now);
}

size_t KeysImpl::FlushUsage() {
  KeyUsageFlush flush;
  for (const auto& shard : shards_) {
    MutexLock lock(&shard->mu);
    for (uint64_t key : shard->dirty) {
      auto it = shard->keys.find(key);
      if (it == shard->keys.end() || !it->second.usage_dirty) continue;
      it->second.usage_dirty = false;
      flush.keys.push_back(KeyUsage{UnpackId(key), it->second.row.request_count,
                                    it->second.row.last_used_us});
    }
    shard->dirty.clear();
  }
  const size_t n = flush.keys.size();
  if (n == 0) return 0;
  size_t bytes = sizeof(WriteOp);
  for (const KeyUsage& u : flush.keys) bytes += sizeof(KeyUsage) + u.id.size();
  std::vector<std::string> ids;
  ids.reserve(n);
  for (const KeyUsage& u : flush.keys) ids.push_back(u.id);
  StatusOr<uint64_t> lsn = write_path_->Submit(
      WritePayload(KeyOp{std::move(flush), nullptr, nullptr}), bytes,
      Durability::kBatched);
  if (lsn.ok()) return n;
  // Not queued: mark the keys dirty again so the next flush carries them.
  log_->warn("API key usage flush of {} keys not queued: {}", n,
             lsn.status().ToString());
  for (const std::string& id : ids) {
    const uint64_t key = PackId(id);
    Shard& shard = ShardFor(key);
    MutexLock lock(&shard.mu);
    auto it = shard.keys.find(key);
    if (it == shard.keys.end() || it->second.usage_dirty) continue;
    it->second.usage_dirty = true;
    shard.dirty.push_back(key);
  }
  return 0;
}

void KeysImpl::Stop() {
  // New calls fail from here on, and a ValidateKey already past its
  // CheckOpen counts its use either before the flush below reads its
  // shard, or not at all (it sees stopped_ under the shard lock): the last
  // flush carries every use a successful validation counted.
  if (stopped_.exchange(true, std::memory_order_seq_cst)) return;
  flusher_.Stop();
  // A read-only store saves no usage: its counts live in memory only.
  if (options_.read_only) return;
  (void)FlushUsage();
  (void)FlushDenials();
}

}  // namespace convstore::internal
