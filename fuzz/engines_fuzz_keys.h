// Copyright 2026 The convstore Authors.
//
// engines_ops_fuzzer.cc: API key calls (CreateKey, ValidateKey, RevokeKey,
// RotateKey, ListKeys, CheckRateLimit) checked against a model of the keys.

#ifndef CONVSTORE_FUZZ_ENGINES_FUZZ_KEYS_H_
#define CONVSTORE_FUZZ_ENGINES_FUZZ_KEYS_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convstore/convstore.h"
#include "engines_fuzz_input.h"
#include "fuzz_util.h"

namespace convstore::fuzz {

struct KeyModel {
  std::string secret, owner;
  std::vector<std::string> scopes;
  // kLive validates; kMaybe may expire any moment; kDead never again.
  enum Life { kLive, kMaybe, kDead } life = kLive;
  bool short_lifetime = false;  // created with a near expiry
  bool revoked = false;
  std::string replaced_by;
  int64_t uses = 0;
  double rate = 0;
  int64_t burst = 0;
  int64_t taken = 0;  // CheckRateLimit allowed since the store opened
};

class KeyOps {
 public:
  using microseconds = std::chrono::microseconds;

  explicit KeyOps(FuzzedDataProvider& in) : in_(in) {}

  void set_store(Store* store) { store_ = store; }

  // A secret of some key, if there is one.
  std::optional<std::string> AnySecret() const {
    if (keys_.empty()) return std::nullopt;
    return keys_.begin()->second.secret;
  }

  // After a reopen: the keys, their state and usage counts are all there;
  // rate-limit buckets start full again.
  void CheckAll() {
    for (auto& [id, k] : keys_) k.taken = 0;
    ListKeysAndCompare(std::nullopt);
    for (auto& [id, k] : keys_) Validate(id, k, k.secret, "");
  }

  void CreateKey() {
    KeySpec spec;
    spec.name = in_.ConsumeBool() ? "ci deploy key" : Str(in_);
    spec.owner = Pick(in_, kOwners);
    static const size_t kMany[] = {64, 65};
    const size_t n = in_.ConsumeBool()
                         ? in_.ConsumeIntegralInRange<size_t>(0, 3)
                         : in_.PickValueInArray(kMany);
    for (size_t i = 0; i < n; ++i) spec.scopes.push_back(Pick(in_, kScopes));
    const int64_t now = Now();
    static const int64_t kExp[] = {0,     1, -1, kMin64, 50'000, 3'600'000'000,
                                   kMax64};
    const int64_t exp = in_.PickValueInArray(kExp);
    spec.expires_at_us =
        exp == 50'000 || exp == 3'600'000'000 ? now + exp : exp;
    static const double kRates[] = {0, 1e-6, 5, 1e300, -1, kNaN, kInf};
    spec.rate_per_s = in_.PickValueInArray(kRates);
    static const int64_t kBursts[] = {0, 1, 3, kMax64, -1};
    spec.burst = in_.PickValueInArray(kBursts);
    Valid v = TextRule(spec.name, 1, 256, Valid::kMaybe) &
              TextRule(spec.owner, 1, 256, Valid::kMaybe) &
              If(spec.scopes.size() <= 64) &
              If(spec.expires_at_us >= 0 && exp != 1) &
              If(std::isfinite(spec.rate_per_s) && spec.rate_per_s >= 0) &
              If(spec.burst >= 0);
    for (const std::string& s : spec.scopes) {
      v = v & TextRule(s, 1, 128, Valid::kMaybe);
    }
    StatusOr<CreatedKey> r = store_->keys().CreateKey(spec);
    Expect(r.status(), v, "CreateKey");
    if (!r.ok()) return;
    const KeyInfo& info = r->info;
    const std::string& id = info.id;
    Check(id.size() == 8 && std::all_of(id.begin(), id.end(),
                                        [](char c) {
                                          return (c >= 'a' && c <= 'z') ||
                                                 (c >= '0' && c <= '9');
                                        }),
          "key id " + Show(id));
    Check(r->secret.size() == 56 && r->secret.rfind("csk_" + id + "_", 0) == 0,
          "secret format");
    Check(info.prefix == "csk_" + id && info.name == spec.name &&
              info.owner == spec.owner && info.scopes == spec.scopes &&
              info.revoked_at_us == 0 && info.request_count == 0 &&
              info.expires_at_us == spec.expires_at_us,
          "CreateKey info");
    Check(keys_.find(id) == keys_.end(), "CreateKey reused an id");
    KeyModel k;
    k.secret = r->secret;
    k.owner = spec.owner;
    k.scopes = spec.scopes;
    k.short_lifetime = exp == 50'000;
    k.life = k.short_lifetime ? KeyModel::kMaybe : KeyModel::kLive;
    k.rate = spec.rate_per_s;
    k.burst = spec.burst;
    if (k.rate > 0 && k.burst <= 0) {
      k.burst = k.rate >= 9.2e18
                    ? kMax64
                    : std::max<int64_t>(1, static_cast<int64_t>(k.rate));
    }
    Check(info.rate_per_s == k.rate && info.burst == k.burst,
          "CreateKey limits " + std::to_string(info.burst));
    keys_[id] = std::move(k);
  }

  // A key id of the model, or one that is not.
  std::string KeyId() {
    if (!keys_.empty() && in_.ConsumeIntegralInRange<int>(0, 4) != 0) {
      auto it = keys_.begin();
      std::advance(it, in_.ConsumeIntegralInRange<size_t>(0, keys_.size() - 1));
      return it->first;
    }
    return in_.ConsumeBool() ? "abcd1234" : Str(in_);
  }

  void Validate(const std::string& id, KeyModel& k, const std::string& secret,
                const std::string& scope) {
    StatusOr<KeyInfo> r = store_->keys().ValidateKey(secret, scope);
    const std::string what =
        "ValidateKey(" + id + ", scope " + Show(scope) + ")";
    const bool scoped =
        scope.empty() ||
        std::find(k.scopes.begin(), k.scopes.end(), scope) != k.scopes.end();
    if (r.ok()) {
      Check(!k.revoked && k.life != KeyModel::kDead && scoped,
            what + " took a key that is not active or lacks the scope");
      Check(r->id == id && r->owner == k.owner, what + " info");
      ++k.uses;
      Check(r->request_count == k.uses,
            what + " count " + std::to_string(r->request_count) + ", model " +
                std::to_string(k.uses));
      return;
    }
    Check(r.status().IsPermissionDenied(), what + ": " + r.status().ToString());
    Check(k.revoked || k.life != KeyModel::kLive || !scoped,
          what + " refused an active key");
    if (k.life == KeyModel::kMaybe && scoped && !k.revoked) {
      k.life = KeyModel::kDead;  // it expired
    }
  }

  void ValidateKey() {
    std::string scope;
    switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
      case 0:
        break;
      case 1:
        scope = in_.PickValueInArray(kScopes);
        break;
      default:
        scope = Str(in_);
    }
    if (keys_.empty() || in_.ConsumeIntegralInRange<int>(0, 3) == 0) {
      std::string secret;
      if (!keys_.empty() && in_.ConsumeBool()) {
        // A real key's secret with one character changed, or cut short.
        secret = keys_.begin()->second.secret;
        if (in_.ConsumeBool()) {
          char& c =
              secret[in_.ConsumeIntegralInRange<size_t>(12, secret.size() - 1)];
          c = c == 'A' ? 'B' : 'A';
        } else {
          secret.resize(in_.ConsumeIntegralInRange<size_t>(0, 55));
        }
      } else {
        secret = in_.ConsumeBool() ? "csk_abcd1234_" + Str(in_) : Str(in_);
      }
      StatusOr<KeyInfo> r = store_->keys().ValidateKey(secret, scope);
      Check(r.status().IsUnauthenticated(),
            "ValidateKey(" + Show(secret) + "): " + r.status().ToString());
      return;
    }
    const std::string id = KeyId();
    auto it = keys_.find(id);
    if (it == keys_.end()) return;
    Validate(id, it->second, it->second.secret, scope);
  }

  void RevokeKey() {
    const std::string id = KeyId();
    Status s = store_->keys().RevokeKey(id);
    auto it = keys_.find(id);
    if (it == keys_.end()) {
      Check(s.IsNotFound(), "RevokeKey(" + Show(id) + "): " + s.ToString());
      return;
    }
    Check(s.ok(), "RevokeKey: " + s.ToString());
    it->second.revoked = true;
    it->second.life = KeyModel::kDead;
  }

  void RotateKey() {
    const std::string id = KeyId();
    static const int64_t kOverlap[] = {0,      1000, 3'600'000'000,
                                       kMax64, -1,   kMin64};
    const int64_t overlap = in_.PickValueInArray(kOverlap);
    StatusOr<CreatedKey> r =
        store_->keys().RotateKey(id, microseconds(overlap));
    const std::string what =
        "RotateKey(" + Show(id) + ", " + std::to_string(overlap) + ")";
    if (overlap < 0) {
      Check(r.status().IsInvalidArgument(),
            what + ": " + r.status().ToString());
      return;
    }
    auto it = keys_.find(id);
    if (it == keys_.end()) {
      Check(r.status().IsNotFound(), what + ": " + r.status().ToString());
      return;
    }
    KeyModel& old = it->second;
    const bool refusable =
        old.revoked || old.life != KeyModel::kLive || !old.replaced_by.empty();
    if (!r.ok()) {
      Check(r.status().IsFailedPrecondition() && refusable,
            what + ": " + r.status().ToString());
      if (!old.revoked && old.replaced_by.empty()) old.life = KeyModel::kDead;
      return;
    }
    Check(
        !old.revoked && old.replaced_by.empty() && old.life != KeyModel::kDead,
        what + " rotated a key that is not active");
    const std::string& nid = r->info.id;
    Check(nid != id && keys_.find(nid) == keys_.end() &&
              r->info.rotated_from == id &&
              r->secret.rfind("csk_" + nid + "_", 0) == 0 &&
              r->info.owner == old.owner && r->info.scopes == old.scopes,
          what + " info");
    KeyModel k;
    k.secret = r->secret;
    k.owner = old.owner;
    k.scopes = old.scopes;
    k.short_lifetime = old.short_lifetime;
    k.life = k.short_lifetime ? KeyModel::kMaybe : KeyModel::kLive;
    k.rate = old.rate;
    k.burst = old.burst;
    old.replaced_by = nid;
    if (overlap == 0) {
      old.life = KeyModel::kDead;
    } else if (overlap == 1000) {
      old.life = KeyModel::kMaybe;
    }
    keys_[nid] = std::move(k);
  }

  void ListKeysAndCompare(std::optional<std::string> owner) {
    StatusOr<std::vector<KeyInfo>> r = store_->keys().ListKeys(owner);
    Check(r.ok(), "ListKeys: " + r.status().ToString());
    size_t want = 0;
    for (const auto& [id, k] : keys_) {
      if (!owner || k.owner == *owner) ++want;
    }
    Check(r->size() == want, "ListKeys has " + std::to_string(r->size()) +
                                 " keys, model " + std::to_string(want));
    for (size_t i = 0; i < r->size(); ++i) {
      const KeyInfo& info = (*r)[i];
      if (i > 0) {
        const KeyInfo& prev = (*r)[i - 1];
        Check(std::make_pair(prev.created_at_us, prev.id) <
                  std::make_pair(info.created_at_us, info.id),
              "ListKeys order");
      }
      auto it = keys_.find(info.id);
      Check(it != keys_.end(), "ListKeys shows unknown " + Show(info.id));
      const KeyModel& k = it->second;
      Check((info.revoked_at_us != 0) == k.revoked &&
                info.replaced_by == k.replaced_by && info.owner == k.owner &&
                info.scopes == k.scopes && info.rate_per_s == k.rate &&
                info.burst == k.burst,
            "ListKeys fields of " + info.id);
      Check(info.request_count == k.uses,
            "ListKeys count of " + info.id + ": " +
                std::to_string(info.request_count) + ", model " +
                std::to_string(k.uses));
    }
  }

  void ListKeys() {
    std::optional<std::string> owner;
    if (in_.ConsumeBool()) owner = Pick(in_, kOwners);
    ListKeysAndCompare(owner);
  }

  void RateLimit() {
    const std::string id = KeyId();
    StatusOr<RateDecision> r = store_->keys().CheckRateLimit(id);
    auto it = keys_.find(id);
    if (it == keys_.end()) {
      Check(r.status().IsNotFound(),
            "CheckRateLimit: " + r.status().ToString());
      return;
    }
    Check(r.ok(), "CheckRateLimit: " + r.status().ToString());
    KeyModel& k = it->second;
    if (k.rate == 0 || k.taken < k.burst) {
      Check(r->allowed, "CheckRateLimit refused within the burst");
    } else if (k.rate <= 1e-6) {
      Check(!r->allowed && r->retry_after.count() > 0,
            "CheckRateLimit allowed past the burst");
    }
    if (r->allowed) ++k.taken;
  }

 private:
  FuzzedDataProvider& in_;
  Store* store_ = nullptr;
  std::map<std::string, KeyModel> keys_;
};

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_ENGINES_FUZZ_KEYS_H_
