// Copyright 2026 The convstore Authors.
//
// Keys: API keys for the agent's own API - create, validate, revoke,
// rotate, list - with per-key usage counts and a token-bucket rate limit.
// Get it from Store::keys(). docs/user-guide.md, "API keys", has the whole
// story.
//
//   convstore::Keys& keys = store->keys();
//   auto created = keys.CreateKey({.name = "ci", .owner = "tenant-7",
//                                  .scopes = {"chat:write"}});
//   send_to_user(created->secret);  // shown once, never again
//   ...
//   auto key = keys.ValidateKey(bearer_token, "chat:write");
//   if (!key.ok()) return key.status().code() ==
//       convstore::StatusCode::kUnauthenticated ? Http401() : Http403();
//   auto rate = keys.CheckRateLimit(key->id);
//   if (rate.ok() && !rate->allowed) return Http429(rate->retry_after);
//
// SECRET FORMAT: "csk_<id>_<random>": <id> is the key's 8-character
// public id (lower-case letters and digits; also its display prefix), and
// <random> is 32 bytes from the operating system's CSPRNG in unpadded
// base64url (43 characters): 256 bits nobody can guess. The secret is
// returned once, by CreateKey/RotateKey. The store keeps only its SHA-256
// hash: it never writes the secret to the database, a log line, an audit
// event or an error message, and cannot show it again.
//
// VALIDATION is answered from memory (every key is loaded at Open, and
// read again when another store changes one: SEVERAL STORES) in about a
// microsecond: the id is read from the secret, the key looked up,
// and the hash compared in constant time. A failure says why only by its
// code: kUnauthenticated (malformed text, unknown id, wrong secret - one
// message for all three), kPermissionDenied (revoked or expired: "not
// active"; or lacking the required scope). Failures are audited (repeats
// coalesced per usage flush interval).
//
// DURABILITY (docs/durability.md, "API keys"): CreateKey, RevokeKey and
// RotateKey are in the class Options::durability.keys (default kSync:
// they return once committed). Usage counts (request_count, last_used) are
// kept in memory and written behind, coalesced: at most one small write
// per key per Options::keys_usage_flush_interval, and at Close. A crash
// loses at most the last interval of counts. A ValidateKey that runs
// while Close does either counts a use that Close writes, or fails with
// FailedPrecondition as one after Close would: no successful validation
// goes uncounted. Rate-limit buckets are memory only (a restart refills
// them).
//
// SEVERAL STORES on one file (other processes, or other Stores in this
// one) each hold their own copy of the keys. A store looks every
// Options::keys_refresh_interval (default 1 s) whether a key was created,
// revoked or rotated in the file, and if so reads every key again. So a
// key revoked by another store stops validating here, and a key created
// by another store starts, within about that interval (plus one read of
// the keys table); never sooner than the other store's commit. A store's
// own changes not yet committed are kept, and a key revoked here is never
// made live again by a refresh. RevokeKey and RotateKey of an id this
// store does not know look at the file first. A rotation is decided on
// the file: the transaction that would store it reads the old key's row,
// and if another store revoked or rotated the key meanwhile, nothing is
// stored (with the default kSync class RotateKey then returns
// FailedPrecondition saying which; with kBatched/kAsync the new key it
// returned is dropped at this store's next refresh). Usage counts are
// not summed across stores: each writes its own, and a refresh keeps the
// larger. Rate-limit buckets are per store.
//
// Thread safety: every method may be called from any thread at once.
// Validation of different keys runs in parallel (the key table is
// sharded); a revocation is seen by every validation of this store that
// starts after RevokeKey returns (other stores: SEVERAL STORES above).

#ifndef CONVSTORE_KEYS_H_
#define CONVSTORE_KEYS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/status.h"

namespace convstore {

// What CreateKey makes.
struct KeySpec {
  // A label for people ("ci deploy key"). 1..256 bytes of UTF-8.
  std::string name{};
  // The tenant (user, organisation) the key belongs to; ListKeys filters
  // on it. 1..256 bytes of UTF-8.
  std::string owner{};
  // What the key may do; ValidateKey checks a required scope against this
  // list (exact match). Each 1..128 bytes of UTF-8; at most 64 of them.
  std::vector<std::string> scopes{};
  // Wall-clock expiry in microseconds since the Unix epoch; 0: never. Must
  // be in the future.
  int64_t expires_at_us = 0;
  // Token-bucket rate limit: sustained requests per second and burst size.
  // 0: Options::keys_default_rate_per_s / keys_default_burst. Negative is
  // InvalidArgument.
  double rate_per_s = 0;
  int64_t burst = 0;
};

// A key as ListKeys and ValidateKey show it: never the secret, never its
// hash.
struct KeyInfo {
  std::string id;      // 8 characters, public; also in the secret
  std::string prefix;  // "csk_<id>": safe to display, log, and search for
  std::string name;
  std::string owner;
  std::vector<std::string> scopes;
  int64_t created_at_us = 0;
  int64_t expires_at_us = 0;  // 0: never
  int64_t revoked_at_us = 0;  // 0: not revoked
  // Successful validations since creation and the time of the last one
  // (0: never used). Counted in memory at once; persisted write-behind.
  int64_t request_count = 0;
  int64_t last_used_at_us = 0;
  // The effective limit (the Options default filled in); rate_per_s 0
  // means unlimited.
  double rate_per_s = 0;
  int64_t burst = 0;
  // Rotation links: the key this one replaced, the key that replaced it.
  std::string rotated_from;
  std::string replaced_by;
};

// The result of CreateKey / RotateKey: the key and its secret.
struct CreatedKey {
  KeyInfo info;
  // The full secret, "csk_<id>_<random>". Returned exactly once: the store
  // cannot show it again. Hand it to the user and drop it.
  std::string secret;
};

// The rate limiter's answer for one request.
struct RateDecision {
  bool allowed = false;
  // When !allowed: how long until a request would be allowed. Zero when
  // allowed.
  std::chrono::microseconds retry_after{0};
  // Whole tokens left in the bucket after this request.
  int64_t remaining = 0;
};

class Keys {
 public:
  virtual ~Keys() = default;

  // Makes a key. InvalidArgument for a bad spec; the write's error
  // (ResourceExhausted, DeadlineExceeded, ...) if it could not be made
  // durable - the message then names the key id so it can be revoked;
  // FailedPrecondition after Close.
  virtual StatusOr<CreatedKey> CreateKey(const KeySpec& spec) = 0;

  // The key `secret` belongs to, if it is valid now and (when
  // `required_scope` is not empty) holds that scope. Counts one use.
  //   kUnauthenticated: malformed, unknown, or wrong secret.
  //   kPermissionDenied: revoked, expired, or lacking the scope.
  //   kFailedPrecondition: after Close, or during it (no use counted).
  // Messages are generic and never contain the secret.
  virtual StatusOr<KeyInfo> ValidateKey(std::string_view secret,
                                        std::string_view required_scope) = 0;
  StatusOr<KeyInfo> ValidateKey(std::string_view secret) {
    return ValidateKey(secret, {});
  }

  // Revokes key `id` for good. NotFound for an unknown id; revoking twice
  // is OK (the first revocation time stays), and a second call waits for
  // the first one's commit as the first would have (kSync).
  virtual Status RevokeKey(std::string_view id) = 0;

  // Replaces key `id` with a new key of the same name, owner, scopes and
  // limits (and, if the old key had an expiry, the same lifetime from now). The
  // old key keeps validating for `overlap` more (zero: it expires at once;
  // never later than its own expiry), so clients can switch over. NotFound for
  // an unknown id, FailedPrecondition for a revoked or expired one, for one
  // rotated already (rotate its successor instead), and for one revoked or
  // rotated by another call or another store on the file while this one
  // ran (checked on the stored row when the rotation commits). Refused,
  // nothing is made: a key has at most one successor, and a revoked key
  // none.
  virtual StatusOr<CreatedKey> RotateKey(std::string_view id,
                                         std::chrono::microseconds overlap) = 0;

  // Every key (of `owner`, when given), revoked and expired ones included,
  // oldest first (ties by id). Copies.
  virtual StatusOr<std::vector<KeyInfo>> ListKeys(
      std::optional<std::string> owner) = 0;

  // Takes one token from key `id`'s bucket. allowed=false with
  // retry_after when the bucket is empty (the call then takes nothing).
  // NotFound for an unknown id. Does not validate: call after ValidateKey.
  virtual StatusOr<RateDecision> CheckRateLimit(std::string_view id) = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_KEYS_H_
