// Copyright 2026 The convstore Authors.
//
// API keys (include/convstore/keys.h). Unit tests drive KeysImpl on a
// recording WritePath, fake clocks and a recording AuditSink, so expiry,
// rotation overlap, rate limits and usage coalescing are exact; store tests
// run the whole path (queue, writer, SQLite), reopen the file, and grep the
// logs and the database bytes for the secret.

#include <absl/strings/escaping.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "audit_sink.h"
#include "backend_testutil.h"
#include "convstore/convstore.h"
#include "dead_letter.h"
#include "forwarding_backend.h"
#include "keys/key_secret.h"
#include "keys/keys_impl.h"
#include "logging.h"
#include "mutex.h"
#include "sqlite/migrations.h"
#include "store_impl.h"
#include "testutil.h"
#include "write_path.h"

namespace convstore {
namespace {

using internal::KeyOp;
using internal::KeyPut;
using internal::KeysImpl;
using internal::KeyUsageFlush;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

constexpr int64_t kT0 = 1'700'000'000'000'000;  // fake wall clock start
constexpr int64_t kSecond = 1'000'000;

// Records every submitted key op in LSN order.
class RecordingWritePath final : public internal::WritePath {
 public:
  StatusOr<uint64_t> Submit(internal::WritePayload payload, size_t bytes,
                            Durability durability,
                            milliseconds sync_timeout) override {
    (void)bytes;
    (void)durability;
    (void)sync_timeout;
    WaitForRoom();
    if (full.load()) return Status::ResourceExhausted("queue full");
    internal::MutexLock lock(&mu_);
    ops_.push_back(*std::get<internal::Boxed<KeyOp>>(payload));
    return static_cast<uint64_t>(ops_.size());
  }
  StatusOr<uint64_t> SubmitApplied(internal::WritePayload payload, size_t bytes,
                                   milliseconds sync_timeout) override {
    return Submit(std::move(payload), bytes, Durability::kSync, sync_timeout);
  }
  Status Reserve(size_t bytes, Durability durability) override {
    (void)bytes;
    (void)durability;
    WaitForRoom();
    if (full.load()) return Status::ResourceExhausted("queue full");
    return Status::OK();
  }
  Status ReserveBestEffortUncounted(size_t bytes) override {
    return Reserve(bytes, Durability::kBestEffort);
  }
  void NoteShed() override {}
  // While `no_room` is set, Submit and Reserve wait (a full queue), and
  // `waiting` counts the callers doing so. After PauseAt(n), the n-th call
  // from then on (only that one) waits until Resume; `paused` counts it.
  void WaitForRoom() {
    std::unique_lock<std::mutex> lock(room_mu_);
    if (pause_at > 0 && --pause_at == 0) {
      ++paused;
      room_cv_.wait(lock, [&] { return !hold; });
      --paused;
      return;
    }
    ++waiting;
    room_cv_.wait(lock, [&] { return !no_room; });
    --waiting;
  }
  void PauseAt(int n) {
    std::lock_guard<std::mutex> lock(room_mu_);
    pause_at = n;
    hold = true;
  }
  void Resume() {
    std::lock_guard<std::mutex> lock(room_mu_);
    hold = false;
    room_cv_.notify_all();
  }
  std::atomic<int> paused{0};
  void SetNoRoom(bool on) {
    std::lock_guard<std::mutex> lock(room_mu_);
    no_room = on;
    room_cv_.notify_all();
  }
  std::atomic<int> waiting{0};
  StatusOr<uint64_t> SubmitReserved(internal::WritePayload payload,
                                    size_t bytes,
                                    Durability durability) override {
    (void)bytes;
    (void)durability;
    const KeyOp& op = *std::get<internal::Boxed<KeyOp>>(payload);
    if (op.outcome != nullptr) op.outcome->Set(refusal, refusal_replaced_by);
    // A change's audit record rides on its op, committed with it: here the
    // op counts as committed once queued, and the record as waited for.
    if (op.audit != nullptr && audit_sink != nullptr) {
      (void)audit_sink->Record(op.audit->event, /*wait=*/true);
    }
    internal::MutexLock lock(&mu_);
    ops_.push_back(op);
    return static_cast<uint64_t>(ops_.size());
  }
  internal::AuditSink* audit_sink = nullptr;
  // What the "writer" decides about every rotation (set before it runs).
  internal::KeyOutcome::Refusal refusal = internal::KeyOutcome::kNone;
  std::string refusal_replaced_by;
  void CancelReserved(size_t bytes) override { (void)bytes; }
  uint64_t DurableLsn() const override {
    internal::MutexLock lock(&mu_);
    return ops_.size();
  }
  std::vector<KeyOp> ops() const {
    internal::MutexLock lock(&mu_);
    return ops_;
  }
  size_t usage_ops() const {
    size_t n = 0;
    for (const KeyOp& op : ops()) {
      n += std::holds_alternative<KeyUsageFlush>(op.record) ? 1 : 0;
    }
    return n;
  }

  std::atomic<bool> full{false};

 private:
  std::mutex room_mu_;
  std::condition_variable room_cv_;
  bool no_room = false;
  int pause_at = 0;
  bool hold = false;
  mutable internal::Mutex mu_;
  std::vector<KeyOp> ops_ ABSL_GUARDED_BY(mu_);
};

class RecordingAuditSink final : public internal::AuditSink {
 public:
  Status Record(AuditEvent event, bool wait) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({std::move(event), wait});
    return Status::OK();
  }
  std::vector<std::pair<AuditEvent, bool>> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<AuditEvent, bool>> events_;
};

// Polls `pred` for up to 10 s.
bool EventuallyTrue(const std::function<bool()>& pred) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// The keys table of a file other stores share, as the test sets it: each
// Set is a commit that changed a key (the version moves). While `fail` is
// set, every read fails.
class FakeKeyStorage final : public internal::KeyStorage {
 public:
  Status ScanAll(
      const std::function<bool(internal::KeyRow&&)>& visit) override {
    if (fail.load()) return Status::IOError("disk I/O error");
    std::vector<internal::KeyRow> rows;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rows = rows_;
    }
    for (internal::KeyRow& row : rows) {
      if (!visit(std::move(row))) break;
    }
    return Status::OK();
  }
  StatusOr<int64_t> DefinitionsVersion() override {
    if (fail.load()) return Status::IOError("disk I/O error");
    std::lock_guard<std::mutex> lock(mu_);
    return version_;
  }
  void Set(std::vector<internal::KeyRow> rows) {
    std::lock_guard<std::mutex> lock(mu_);
    rows_ = std::move(rows);
    ++version_;
  }
  std::atomic<bool> fail{false};

 private:
  std::mutex mu_;
  std::vector<internal::KeyRow> rows_;
  int64_t version_ = 0;
};

// A KeysImpl on a RecordingWritePath, a recording audit sink and clocks
// the test moves (wall and monotonic move together); with `storage`, a
// file to refresh from.
struct Harness {
  explicit Harness(Options o = Options(),
                   internal::KeyStorage* storage = nullptr)
      : options(std::move(o)) {
    path.audit_sink = &audit;
    options.log_level = LogLevel::kError;
    options.keys_usage_flush_interval = milliseconds(0);  // tests flush
    keys = std::make_unique<KeysImpl>(
        options, &path, storage, &audit,
        [this](uint64_t) {
          if (on_wait) on_wait();
          return durable_fails.load() ? Status::IOError("disk full")
                                      : Status::OK();
        },
        [this] {
          if (hold_wall.load()) {
            ++wall_waiters;
            while (hold_wall.load()) {
              std::this_thread::sleep_for(milliseconds(1));
            }
          }
          return now.load();
        },
        [this] { return now.load() - kT0; }, internal::MakeLogger(options));
  }
  void Advance(microseconds d) { now.fetch_add(d.count()); }
  // The row the last put of key `id` wrote: what the file holds after it.
  internal::KeyRow StoredRow(const std::string& id) {
    internal::KeyRow row;
    for (const KeyOp& op : path.ops()) {
      const auto* put = std::get_if<KeyPut>(&op.record);
      if (put != nullptr && put->row.id == id) row = put->row;
    }
    REQUIRE(row.id == id);
    return row;
  }
  CreatedKey Create(KeySpec spec) {
    StatusOr<CreatedKey> r = keys->CreateKey(spec);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }

  Options options;
  RecordingWritePath path;
  RecordingAuditSink audit;
  std::atomic<bool> durable_fails{false};  // every commit wait fails
  // Runs in every commit wait (set while no call runs).
  std::function<void()> on_wait;
  // While set, every read of the wall clock waits; wall_waiters counts them.
  std::atomic<bool> hold_wall{false};
  std::atomic<int> wall_waiters{0};
  std::atomic<int64_t> now{kT0};
  std::unique_ptr<KeysImpl> keys;
};

KeySpec Spec(std::string name = "ci", std::string owner = "tenant-1",
             std::vector<std::string> scopes = {"chat:read", "chat:write"}) {
  KeySpec s;
  s.name = std::move(name);
  s.owner = std::move(owner);
  s.scopes = std::move(scopes);
  return s;
}

std::string RandomPart(const std::string& secret) {
  return secret.substr(internal::kSecretTag.size() + internal::kKeyIdChars + 1);
}

std::string Sha256(const std::string& s) {
  std::string out(32, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// Every text field of a KeyInfo, joined: what a caller could print.
std::string Dump(const KeyInfo& k) {
  std::string s = k.id + "|" + k.prefix + "|" + k.name + "|" + k.owner + "|" +
                  k.rotated_from + "|" + k.replaced_by;
  for (const std::string& sc : k.scopes) s += "|" + sc;
  return s;
}

TEST_CASE("a spec written with designated initializers builds warning-free",
          "[keys]") {
  // `CreateKey({.name = ..., .owner = ...})`, as keys.h writes it but
  // without scopes: KeySpec's strings and scopes had no default member
  // initializer, so GCC's -Wextra warned for each one not named and a
  // -Werror build (this one) failed.
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  StatusOr<CreatedKey> k =
      store->keys().CreateKey({.name = "ci", .owner = "tenant-7"});
  REQUIRE(k.ok());
  CHECK(k->info.scopes.empty());
  CHECK(store->keys().ValidateKey(k->secret).ok());
  REQUIRE(store->Close().ok());
}

TEST_CASE("CreateKey returns a well-formed secret once and stores its hash",
          "[keys]") {
  Harness h;
  CreatedKey k = h.Create(Spec());
  const std::string& secret = k.secret;
  REQUIRE(secret.size() == 56);
  CHECK(secret.substr(0, 4) == "csk_");
  CHECK(secret.substr(4, 8) == k.info.id);
  CHECK(secret[12] == '_');
  CHECK(k.info.prefix == "csk_" + k.info.id);
  CHECK(k.info.name == "ci");
  CHECK(k.info.owner == "tenant-1");
  CHECK(k.info.scopes == std::vector<std::string>{"chat:read", "chat:write"});
  CHECK(k.info.created_at_us == kT0);
  CHECK(k.info.request_count == 0);
  std::string_view id;
  CHECK(internal::ParseSecret(secret, &id));

  // One put, carrying the SHA-256 of the secret and nothing of the secret.
  std::vector<KeyOp> ops = h.path.ops();
  REQUIRE(ops.size() == 1);
  const auto& put = std::get<KeyPut>(ops[0].record);
  CHECK(put.row.id == k.info.id);
  CHECK(put.row.hash == Sha256(secret));
  CHECK(put.row.hash.find(RandomPart(secret)) == std::string::npos);

  // Two keys never share a secret or an id.
  CreatedKey k2 = h.Create(Spec());
  CHECK(k2.secret != secret);
  CHECK(k2.info.id != k.info.id);
  CHECK(RandomPart(k2.secret) != RandomPart(secret));
}

TEST_CASE("ValidateKey accepts the secret and checks scope, with exact codes",
          "[keys]") {
  Harness h;
  CreatedKey k = h.Create(Spec());
  StatusOr<KeyInfo> ok = h.keys->ValidateKey(k.secret);
  REQUIRE(ok.ok());
  CHECK(ok->id == k.info.id);
  CHECK(ok->request_count == 1);
  CHECK(ok->last_used_at_us == kT0);
  REQUIRE(h.keys->ValidateKey(k.secret, "chat:write").ok());

  StatusOr<KeyInfo> no_scope = h.keys->ValidateKey(k.secret, "admin");
  REQUIRE_FALSE(no_scope.ok());
  CHECK(no_scope.status().code() == StatusCode::kPermissionDenied);
  CHECK(no_scope.status().message() == "API key lacks the required scope");

  // Right id, wrong random part: the same answer as an unknown key.
  std::string wrong = k.secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  StatusOr<KeyInfo> bad = h.keys->ValidateKey(wrong);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kUnauthenticated);
  CHECK(bad.status().message() == "invalid API key");

  std::string unknown = k.secret;
  unknown[4] = unknown[4] == 'a' ? 'b' : 'a';  // another id
  StatusOr<KeyInfo> unk = h.keys->ValidateKey(unknown);
  REQUIRE_FALSE(unk.ok());
  CHECK(unk.status().code() == StatusCode::kUnauthenticated);
  CHECK(unk.status().message() == "invalid API key");

  // Only the successful validations counted.
  StatusOr<std::vector<KeyInfo>> list = h.keys->ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].request_count == 2);
}

TEST_CASE("malformed secrets get the unknown-key answer and are not echoed",
          "[keys]") {
  Harness h;
  CreatedKey k = h.Create(Spec());
  const std::string s = k.secret;
  const std::vector<std::string> malformed = {
      "",
      "csk_",
      s.substr(0, s.size() - 1),                        // short
      s + "A",                                          // long
      "xsk_" + s.substr(4),                             // wrong tag
      s.substr(0, 12) + "-" + s.substr(13),             // wrong separator
      "csk_" + std::string("ABCDEFGH") + s.substr(12),  // id upper case
      s.substr(0, 20) + "!" + s.substr(21),             // not base64url
      s.substr(0, 20) + std::string(1, '\0') + s.substr(21),
      "Bearer " + s,
      std::string(4096, 'x'),
  };
  for (const std::string& m : malformed) {
    StatusOr<KeyInfo> r = h.keys->ValidateKey(m);
    INFO("input of " << m.size() << " bytes");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kUnauthenticated);
    CHECK(r.status().message() == "invalid API key");
  }
  // The real one still works.
  CHECK(h.keys->ValidateKey(s).ok());
}

TEST_CASE("ParseSecret accepts exactly [a-z0-9] in the id, base64url after",
          "[keys]") {
  Harness h;
  const std::string s = h.Create(Spec()).secret;
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool lower = c >= 'a' && c <= 'z';
    const bool digit = c >= '0' && c <= '9';
    const bool upper = c >= 'A' && c <= 'Z';
    const bool in_id = lower || digit;
    const bool in_random = lower || digit || upper || c == '-' || c == '_';
    INFO("byte " << b);
    for (size_t pos : {size_t{4}, size_t{11}}) {  // first, last id char
      std::string m = s;
      m[pos] = c;
      std::string_view id;
      CHECK(internal::ParseSecret(m, &id) == in_id);
      if (in_id) CHECK(id == m.substr(4, 8));
      CHECK(internal::IsKeyId(m.substr(4, 8)) == in_id);
    }
    {  // the separator after the id
      std::string m = s;
      m[12] = c;
      std::string_view id;
      CHECK(internal::ParseSecret(m, &id) == (c == '_'));
    }
    for (size_t pos : {size_t{13}, size_t{34}, s.size() - 1}) {
      std::string m = s;
      m[pos] = c;
      std::string_view id;
      CHECK(internal::ParseSecret(m, &id) == in_random);
    }
  }
}

TEST_CASE("revoked and expired keys are denied; revoke is idempotent",
          "[keys]") {
  Harness h;
  CreatedKey a = h.Create(Spec("a"));
  KeySpec exp_spec = Spec("b");
  exp_spec.expires_at_us = kT0 + 60 * kSecond;
  CreatedKey b = h.Create(exp_spec);
  CHECK(b.info.expires_at_us == kT0 + 60 * kSecond);

  REQUIRE(h.keys->RevokeKey(a.info.id).ok());
  StatusOr<KeyInfo> r = h.keys->ValidateKey(a.secret);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(r.status().message() == "API key is not active");
  const size_t ops_before = h.path.ops().size();
  CHECK(h.keys->RevokeKey(a.info.id).ok());  // again: OK, no new write
  CHECK(h.path.ops().size() == ops_before);
  CHECK(h.keys->RevokeKey("zzzzzzzz").IsNotFound());
  CHECK(h.keys->RevokeKey("not an id").IsNotFound());

  h.Advance(microseconds(59 * kSecond));
  CHECK(h.keys->ValidateKey(b.secret).ok());
  h.Advance(microseconds(kSecond));
  StatusOr<KeyInfo> e = h.keys->ValidateKey(b.secret);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().code() == StatusCode::kPermissionDenied);
  CHECK(e.status().message() == "API key is not active");
}

TEST_CASE("a repeated RevokeKey waits for the first one's commit", "[keys]") {
  // A revocation the caller was told is not durable used to be OK on the
  // next call, with nothing waited for: a crash then brought the key back.
  Harness h;
  CreatedKey a = h.Create(Spec());
  h.durable_fails = true;
  Status first = h.keys->RevokeKey(a.info.id);
  CHECK(first.code() == StatusCode::kIOError);
  CHECK(first.message().find("not yet durable") != std::string::npos);
  const size_t ops = h.path.ops().size();
  // Revoked in memory at once (validation refuses the key), not yet on disk.
  CHECK(h.keys->ValidateKey(a.secret).status().code() ==
        StatusCode::kPermissionDenied);
  CHECK(h.keys->RevokeKey(a.info.id).code() == StatusCode::kIOError);
  h.durable_fails = false;
  CHECK(h.keys->RevokeKey(a.info.id).ok());
  CHECK(h.path.ops().size() == ops);  // waited for, not written again
}

TEST_CASE("key changes wait for queue room without the key's lock", "[keys]") {
  // Room was waited for under the shard lock: with the queue full, every
  // validation of a key on that shard waited too (up to queue_full_wait).
  Harness h;
  CreatedKey a = h.Create(Spec());
  h.path.SetNoRoom(true);
  std::thread revoke([&] { (void)h.keys->RevokeKey(a.info.id); });
  REQUIRE(EventuallyTrue([&] { return h.path.waiting.load() == 1; }));
  std::future<bool> validated = std::async(
      std::launch::async, [&] { return h.keys->ValidateKey(a.secret).ok(); });
  const bool done =
      validated.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  h.path.SetNoRoom(false);
  revoke.join();
  CHECK(done);
  CHECK(validated.get());  // the revocation had not been applied yet
  CHECK(h.keys->ValidateKey(a.secret).status().code() ==
        StatusCode::kPermissionDenied);
}

TEST_CASE("a key revoked or rotated during its rotation gets no live successor",
          "[keys]") {
  // The revoked check ran on a snapshot taken before the new key was made:
  // a revoke in between left a live successor of a revoked key, and two
  // rotations at once both succeeded with two live successors.
  Harness h;
  CreatedKey a = h.Create(Spec());
  // RotateKey's reservation (for both keys' rows) waits, after its first
  // look at the old key.
  h.path.PauseAt(1);
  StatusOr<CreatedKey> rotated = Status::Internal("not run");
  std::thread rotate(
      [&] { rotated = h.keys->RotateKey(a.info.id, microseconds(0)); });
  REQUIRE(EventuallyTrue([&] { return h.path.paused.load() == 1; }));
  std::string other_secret;
  SECTION("revoked meanwhile") { CHECK(h.keys->RevokeKey(a.info.id).ok()); }
  SECTION("rotated meanwhile") {
    StatusOr<CreatedKey> other = h.keys->RotateKey(a.info.id, microseconds(0));
    REQUIRE(other.ok());
    other_secret = other->secret;
  }
  h.path.Resume();
  rotate.join();
  INFO(rotated.status().ToString());
  CHECK(rotated.status().code() == StatusCode::kFailedPrecondition);
  StatusOr<std::vector<KeyInfo>> keys = h.keys->ListKeys(std::nullopt);
  REQUIRE(keys.ok());
  int live = 0;
  for (const KeyInfo& k : *keys) {
    if (k.revoked_at_us == 0 && k.id != a.info.id) ++live;
  }
  CHECK(live == (other_secret.empty() ? 0 : 1));
  if (!other_secret.empty()) CHECK(h.keys->ValidateKey(other_secret).ok());
}

TEST_CASE(
    "a batched rotation refused while a refresh runs gets no live "
    "successor",
    "[keys][shared_file]") {
  // With kBatched, RotateKey queued the rotation and made the new key's
  // entry after it: a Refresh in between saw the writer's refusal (the LSN
  // durable, the key not in the file) before there was a key to drop, and
  // marked the file as read, so the refused key validated here until
  // another key changed on the file.
  FakeKeyStorage file;
  Options o;
  o.durability.keys = Durability::kBatched;
  Harness h(o, &file);
  CreatedKey a = h.Create(Spec());
  internal::KeyRow stored = h.StoredRow(a.info.id);
  file.Set({stored});
  REQUIRE(h.keys->Refresh().ok());
  // Another store revokes the key; this one has not looked yet. The
  // recording path commits on queuing, so the rotation is durable at once
  // and, its successor not in the file, was refused.
  stored.revoked_us = kT0;
  file.Set({stored});
  std::future<Status> refresh;
  h.keys->SetRotationHookForTest([&] {
    refresh = std::async(std::launch::async, [&] { return h.keys->Refresh(); });
    // Time for it to finish, unless it is held off until the new key is in
    // memory.
    (void)refresh.wait_for(milliseconds(200));
  });
  StatusOr<CreatedKey> r = h.keys->RotateKey(a.info.id, microseconds(0));
  REQUIRE(r.ok());  // kBatched: the refusal is not known to the call
  REQUIRE(refresh.valid());
  CHECK(refresh.get().ok());
  CHECK(h.keys->Refresh().ok());  // the background thread's next look
  CHECK(h.keys->ValidateKey(r->secret).status().code() ==
        StatusCode::kUnauthenticated);
  CHECK(h.keys->ValidateKey(a.secret).status().code() ==
        StatusCode::kPermissionDenied);
}

TEST_CASE("undoing a refused rotation keeps what a refresh loaded meanwhile",
          "[keys][shared_file]") {
  // Merge gave the key the file's row but left its put_lsn at the
  // rotation's LSN, so the undo of the refused (kSync) rotation cleared
  // the successor and the expiry another store had given it: the key
  // validated past that store's overlap until the next forced refresh.
  FakeKeyStorage file;
  Harness h(Options(), &file);  // kSync
  CreatedKey a = h.Create(Spec());
  internal::KeyRow stored = h.StoredRow(a.info.id);
  file.Set({stored});
  REQUIRE(h.keys->Refresh().ok());
  // Another store rotates the key with a one-second overlap; this one has
  // not looked yet, and its writer refuses its own rotation.
  internal::KeyRow successor = stored;
  successor.id = "othrstor";
  successor.rotated_from = stored.id;
  stored.replaced_by = successor.id;
  stored.expires_us = kT0 + kSecond;
  file.Set({stored, successor});
  h.path.refusal = internal::KeyOutcome::kRotated;
  h.path.refusal_replaced_by = successor.id;
  // While RotateKey waits for its commit, a refresh reads the file; then
  // the file cannot be read (RotateKey's own forced refresh fails).
  h.on_wait = [&] {
    CHECK(h.keys->Refresh().ok());
    file.fail = true;
  };
  StatusOr<CreatedKey> r = h.keys->RotateKey(a.info.id, std::chrono::hours(1));
  h.on_wait = nullptr;
  INFO(r.status().ToString());
  CHECK(r.status().IsFailedPrecondition());
  file.fail = false;
  CHECK(h.keys->Refresh().ok());  // the next look: nothing changed
  StatusOr<std::vector<KeyInfo>> list = h.keys->ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  const KeyInfo& old = (*list)[0].id == a.info.id ? (*list)[0] : (*list)[1];
  CHECK(old.replaced_by == successor.id);
  CHECK(old.expires_at_us == kT0 + kSecond);
  h.Advance(microseconds(2 * kSecond));
  CHECK(h.keys->ValidateKey(a.secret).status().code() ==
        StatusCode::kPermissionDenied);
}

TEST_CASE("extreme expiries and rates neither overflow nor misreport",
          "[keys]") {
  Harness h;
  KeySpec far = Spec();
  far.expires_at_us = std::numeric_limits<int64_t>::max();
  CreatedKey a = h.Create(far);
  h.Advance(microseconds(kSecond));
  StatusOr<CreatedKey> b = h.keys->RotateKey(a.info.id, microseconds(0));
  REQUIRE(b.ok());
  CHECK(b->info.expires_at_us == std::numeric_limits<int64_t>::max());
  CHECK(h.keys->ValidateKey(b->secret).ok());

  KeySpec slow = Spec();
  slow.rate_per_s = 1e-13;  // one request in 300,000 years
  slow.burst = 1;
  CreatedKey c = h.Create(slow);
  CHECK(h.keys->CheckRateLimit(c.info.id)->allowed);
  StatusOr<RateDecision> d = h.keys->CheckRateLimit(c.info.id);
  REQUIRE(d.ok());
  CHECK_FALSE(d->allowed);
  CHECK(d->retry_after == microseconds::max());

  KeySpec wide = Spec();
  wide.rate_per_s = 1;
  wide.burst = std::numeric_limits<int64_t>::max();
  CreatedKey w = h.Create(wide);
  d = h.keys->CheckRateLimit(w.info.id);
  REQUIRE(d.ok());
  CHECK(d->allowed);
  CHECK(d->remaining > 0);

  KeySpec fast = Spec();
  fast.rate_per_s = 1e30;  // burst 0: the rate, capped
  CreatedKey f = h.Create(fast);
  CHECK(h.keys->CheckRateLimit(f.info.id)->allowed);
}

TEST_CASE("CreateKey refuses bad specs and writes nothing", "[keys]") {
  Harness h;
  KeySpec s = Spec();
  s.name = "";
  CHECK(h.keys->CreateKey(s).status().IsInvalidArgument());
  s = Spec();
  s.owner = std::string(300, 'o');
  CHECK(h.keys->CreateKey(s).status().IsInvalidArgument());
  s = Spec();
  s.scopes = {""};
  CHECK(h.keys->CreateKey(s).status().IsInvalidArgument());
  s = Spec();
  s.expires_at_us = kT0;  // not in the future
  CHECK(h.keys->CreateKey(s).status().IsInvalidArgument());
  s = Spec();
  s.rate_per_s = -1;
  CHECK(h.keys->CreateKey(s).status().IsInvalidArgument());
  s = Spec();
  s.name = "\xff\xfe";
  CHECK(h.keys->CreateKey(s).status().IsInvalidArgument());
  CHECK(h.path.ops().empty());
  // A full queue: the error comes back and memory is unchanged.
  h.path.full = true;
  CHECK(h.keys->CreateKey(Spec()).status().IsResourceExhausted());
  h.path.full = false;
  CHECK(h.keys->ListKeys(std::nullopt)->empty());
}

TEST_CASE("RotateKey keeps the old key valid for the overlap only", "[keys]") {
  Options o;
  o.keys_default_rate_per_s = 0;
  Harness h(o);
  KeySpec spec = Spec("deploy", "tenant-9", {"deploy"});
  spec.rate_per_s = 7;
  spec.burst = 11;
  CreatedKey old = h.Create(spec);
  h.Advance(microseconds(kSecond));
  StatusOr<CreatedKey> rotated =
      h.keys->RotateKey(old.info.id, std::chrono::minutes(10));
  REQUIRE(rotated.ok());
  const KeyInfo& n = rotated->info;
  CHECK(n.id != old.info.id);
  CHECK(n.name == "deploy");
  CHECK(n.owner == "tenant-9");
  CHECK(n.scopes == std::vector<std::string>{"deploy"});
  CHECK(n.rate_per_s == 7);
  CHECK(n.burst == 11);
  CHECK(n.rotated_from == old.info.id);
  CHECK(n.expires_at_us == 0);
  CHECK(rotated->secret != old.secret);

  StatusOr<std::vector<KeyInfo>> list = h.keys->ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].id == old.info.id);
  CHECK((*list)[0].replaced_by == n.id);
  CHECK((*list)[0].expires_at_us == kT0 + kSecond + 600 * kSecond);

  // Both work during the overlap.
  h.Advance(microseconds(599 * kSecond));
  CHECK(h.keys->ValidateKey(old.secret, "deploy").ok());
  CHECK(h.keys->ValidateKey(rotated->secret, "deploy").ok());
  // At its end the old one is expired; the new one goes on.
  h.Advance(microseconds(kSecond));
  StatusOr<KeyInfo> r = h.keys->ValidateKey(old.secret, "deploy");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(h.keys->ValidateKey(rotated->secret, "deploy").ok());

  // An expired (or revoked) key is not rotated; unknown ids are NotFound.
  CHECK(h.keys->RotateKey(old.info.id, microseconds(0))
            .status()
            .IsFailedPrecondition());
  CHECK(h.keys->RotateKey("abcdefgh", microseconds(0)).status().IsNotFound());

  // Zero overlap: the old key stops at once.
  StatusOr<CreatedKey> again = h.keys->RotateKey(n.id, microseconds(0));
  REQUIRE(again.ok());
  CHECK(h.keys->ValidateKey(rotated->secret).status().code() ==
        StatusCode::kPermissionDenied);
  CHECK(h.keys->ValidateKey(again->secret).ok());
}

TEST_CASE("a key rotated already is refused before a new key is made",
          "[keys]") {
  // Within the overlap the old key is still live; rotating it again used
  // to insert a third key, find the "race" and revoke that key: a stray
  // revoked key in ListKeys and a key.revoke with no key.create.
  Harness h;
  CreatedKey a = h.Create(Spec());
  StatusOr<CreatedKey> b = h.keys->RotateKey(a.info.id, std::chrono::hours(1));
  REQUIRE(b.ok());
  const size_t audited = h.audit.events().size();
  StatusOr<CreatedKey> c = h.keys->RotateKey(a.info.id, std::chrono::hours(1));
  INFO(c.status().ToString());
  CHECK(c.status().IsFailedPrecondition());
  CHECK(c.status().message().find("already rotated to " + b->info.id) !=
        std::string::npos);
  StatusOr<std::vector<KeyInfo>> list = h.keys->ListKeys(std::nullopt);
  REQUIRE(list.ok());
  CHECK(list->size() == 2);
  CHECK(h.audit.events().size() == audited);
  CHECK(h.keys->ValidateKey(a.secret).ok());  // still in its overlap
  CHECK(h.keys->ValidateKey(b->secret).ok());
}

TEST_CASE("a rotated key with a lifetime gets the same lifetime again",
          "[keys]") {
  Harness h;
  KeySpec spec = Spec();
  spec.expires_at_us = kT0 + 3600 * kSecond;  // one hour
  CreatedKey old = h.Create(spec);
  h.Advance(microseconds(600 * kSecond));
  StatusOr<CreatedKey> r =
      h.keys->RotateKey(old.info.id, microseconds(7200 * kSecond));
  REQUIRE(r.ok());
  CHECK(r->info.expires_at_us == kT0 + 600 * kSecond + 3600 * kSecond);
  // The overlap never extends the old key past its own expiry.
  StatusOr<std::vector<KeyInfo>> list = h.keys->ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].expires_at_us == kT0 + 3600 * kSecond);
  CHECK(h.keys->RotateKey(old.info.id, microseconds(-1))
            .status()
            .IsInvalidArgument());
}

TEST_CASE("ListKeys filters by owner and shows neither secret nor hash",
          "[keys]") {
  Harness h;
  CreatedKey a = h.Create(Spec("a", "alice"));
  h.Advance(microseconds(1));
  CreatedKey b = h.Create(Spec("b", "bob"));
  h.Advance(microseconds(1));
  CreatedKey c = h.Create(Spec("c", "alice"));
  StatusOr<std::vector<KeyInfo>> alice = h.keys->ListKeys("alice");
  REQUIRE(alice.ok());
  REQUIRE(alice->size() == 2);
  CHECK((*alice)[0].id == a.info.id);
  CHECK((*alice)[1].id == c.info.id);
  StatusOr<std::vector<KeyInfo>> all = h.keys->ListKeys(std::nullopt);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  CHECK(h.keys->ListKeys("nobody")->empty());
  for (const KeyInfo& k : *all) {
    const std::string text = Dump(k);
    for (const CreatedKey* ck : {&a, &b, &c}) {
      CHECK(text.find(ck->secret) == std::string::npos);
      CHECK(text.find(RandomPart(ck->secret)) == std::string::npos);
      CHECK(text.find(Sha256(ck->secret)) == std::string::npos);
    }
  }
}

TEST_CASE("a million validations are a handful of usage writes", "[keys]") {
  Harness h;
  CreatedKey a = h.Create(Spec("a"));
  CreatedKey b = h.Create(Spec("b"));
  const size_t puts = h.path.ops().size();
  constexpr int kValidations = 1'000'000;
  constexpr int kFlushEvery = 100'000;  // ten flush intervals
  for (int i = 1; i <= kValidations; ++i) {
    REQUIRE(h.keys->ValidateKey(i % 2 == 0 ? a.secret : b.secret).ok());
    if (i % kFlushEvery == 0) CHECK(h.keys->FlushUsage() == 2);
  }
  // Nothing used since the last flush: nothing to write.
  CHECK(h.keys->FlushUsage() == 0);
  std::vector<KeyOp> ops = h.path.ops();
  CHECK(ops.size() - puts == 10);
  CHECK(h.path.usage_ops() <= 10);
  size_t usage_rows = 0;
  int64_t last_a = 0;
  for (const KeyOp& op : ops) {
    if (const auto* f = std::get_if<KeyUsageFlush>(&op.record)) {
      usage_rows += f->keys.size();
      for (const auto& u : f->keys) {
        if (u.id == a.info.id) last_a = u.request_count;
      }
    }
  }
  CHECK(usage_rows == 20);  // one UPDATE per used key per flush
  CHECK(last_a == kValidations / 2);
}

TEST_CASE("a usage flush the queue refuses is carried by the next one",
          "[keys]") {
  Harness h;
  CreatedKey a = h.Create(Spec());
  REQUIRE(h.keys->ValidateKey(a.secret).ok());
  h.path.full = true;
  CHECK(h.keys->FlushUsage() == 0);
  h.path.full = false;
  REQUIRE(h.keys->ValidateKey(a.secret).ok());
  CHECK(h.keys->FlushUsage() == 1);
  const KeyOp last = h.path.ops().back();
  const auto& f = std::get<KeyUsageFlush>(last.record);
  REQUIRE(f.keys.size() == 1);
  CHECK(f.keys[0].request_count == 2);
}

TEST_CASE("a validation racing Stop fails or counts a use the last flush has",
          "[keys]") {
  // A ValidateKey past its open check when Stop ran counted its use after
  // Stop's last flush had read the key: a success whose use was never
  // written.
  Harness h;
  CreatedKey a = h.Create(Spec());
  REQUIRE(h.keys->ValidateKey(a.secret).ok());
  // The racing validation waits at its clock read: past the open check,
  // before the shard lock.
  h.hold_wall = true;
  StatusOr<KeyInfo> racing = Status::Internal("not run");
  std::thread validate([&] { racing = h.keys->ValidateKey(a.secret); });
  REQUIRE(EventuallyTrue([&] { return h.wall_waiters.load() == 1; }));
  h.keys->Stop();
  h.hold_wall = false;
  validate.join();
  INFO(racing.status().ToString());
  CHECK((racing.ok() ||
         racing.status().code() == StatusCode::kFailedPrecondition));
  int64_t flushed = 0;
  for (const KeyOp& op : h.path.ops()) {
    const auto* flush = std::get_if<KeyUsageFlush>(&op.record);
    if (flush == nullptr) continue;
    for (const internal::KeyUsage& u : flush->keys) {
      if (u.id == a.info.id) flushed = u.request_count;
    }
  }
  CHECK(flushed == (racing.ok() ? 2 : 1));
}

TEST_CASE("the token bucket allows the burst, then one per 1/rate", "[keys]") {
  Options o;
  o.keys_default_rate_per_s = 5;
  o.keys_default_burst = 0;  // taken as the rate
  Harness h(o);
  KeySpec spec = Spec();
  spec.rate_per_s = 2;
  spec.burst = 3;
  CreatedKey k = h.Create(spec);
  for (int i = 0; i < 3; ++i) {
    StatusOr<RateDecision> d = h.keys->CheckRateLimit(k.info.id);
    REQUIRE(d.ok());
    CHECK(d->allowed);
    CHECK(d->remaining == 2 - i);
    CHECK(d->retry_after == microseconds(0));
  }
  StatusOr<RateDecision> d = h.keys->CheckRateLimit(k.info.id);
  REQUIRE(d.ok());
  CHECK_FALSE(d->allowed);
  CHECK(d->retry_after == microseconds(500'000));
  h.Advance(microseconds(250'000));
  d = h.keys->CheckRateLimit(k.info.id);
  CHECK_FALSE(d->allowed);
  CHECK(d->retry_after == microseconds(250'000));
  h.Advance(microseconds(250'000));
  d = h.keys->CheckRateLimit(k.info.id);
  CHECK(d->allowed);
  CHECK_FALSE(h.keys->CheckRateLimit(k.info.id)->allowed);
  // A long pause refills to the burst, not beyond.
  h.Advance(microseconds(3600 * kSecond));
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    allowed += h.keys->CheckRateLimit(k.info.id)->allowed ? 1 : 0;
  }
  CHECK(allowed == 3);

  // A key without its own limit gets the Options default (5/s, burst 5).
  CreatedKey def = h.Create(Spec("default"));
  CHECK(def.info.rate_per_s == 5);
  CHECK(def.info.burst == 5);
  allowed = 0;
  for (int i = 0; i < 10; ++i) {
    allowed += h.keys->CheckRateLimit(def.info.id)->allowed ? 1 : 0;
  }
  CHECK(allowed == 5);
  CHECK(h.keys->CheckRateLimit("abcdefgh").status().IsNotFound());
  // Ids that are not 8 id characters name no key (keys are looked up by
  // the id packed into an integer, which only such ids fill).
  CHECK(h.keys->CheckRateLimit("").status().IsNotFound());
  CHECK(h.keys->CheckRateLimit(k.info.id.substr(0, 7)).status().IsNotFound());
  CHECK(h.keys->CheckRateLimit(k.info.id + "x").status().IsNotFound());
}

TEST_CASE("without a rate, CheckRateLimit always allows", "[keys]") {
  Harness h;  // Options default: unlimited
  CreatedKey k = h.Create(Spec());
  CHECK(k.info.rate_per_s == 0);
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(h.keys->CheckRateLimit(k.info.id)->allowed);
  }
}

TEST_CASE("changes and failed validations are audited, never the secret",
          "[keys][audit]") {
  Harness h;
  CreatedKey k = h.Create(Spec());
  REQUIRE(h.keys->ValidateKey(k.secret).ok());  // success: not audited
  std::string wrong = k.secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  CHECK_FALSE(h.keys->ValidateKey(wrong).ok());
  CHECK_FALSE(h.keys->ValidateKey("garbage " + k.secret).ok());
  CHECK_FALSE(h.keys->ValidateKey(k.secret, "admin").ok());
  StatusOr<CreatedKey> r = h.keys->RotateKey(k.info.id, std::chrono::hours(1));
  REQUIRE(r.ok());
  REQUIRE(h.keys->RevokeKey(r->info.id).ok());
  CHECK_FALSE(h.keys->ValidateKey(r->secret).ok());

  std::vector<std::pair<AuditEvent, bool>> ev = h.audit.events();
  REQUIRE(ev.size() == 7);
  auto check = [&](size_t i, const char* action, const char* outcome, bool wait,
                   const std::string& resource, const char* reason) {
    INFO("event " << i << ": " << ev[i].first.action << " "
                  << ev[i].first.details_json);
    CHECK(ev[i].first.action == action);
    CHECK(ev[i].first.outcome == outcome);
    CHECK(ev[i].second == wait);
    CHECK(ev[i].first.resource == resource);
    CHECK_FALSE(ev[i].first.actor.empty());
    if (reason != nullptr) {
      CHECK(ev[i].first.details_json.find(std::string("\"reason\":\"") +
                                          reason + "\"") != std::string::npos);
    }
  };
  check(0, "key.create", "success", true, k.info.id, nullptr);
  check(1, "key.validate", "denied", false, k.info.id, "wrong_secret");
  check(2, "key.validate", "denied", false, "", "malformed");
  check(3, "key.validate", "denied", false, k.info.id, "missing_scope");
  check(4, "key.rotate", "success", true, k.info.id, nullptr);
  check(5, "key.revoke", "success", true, r->info.id, nullptr);
  check(6, "key.validate", "denied", false, r->info.id, "revoked");
  CHECK(ev[1].first.details_json.find(k.info.prefix) != std::string::npos);
  for (const auto& [e, wait] : ev) {
    const std::string all = e.actor + e.action + e.resource + e.outcome +
                            e.details_json + e.source_address;
    for (const std::string& secret : {k.secret, r->secret, wrong}) {
      CHECK(all.find(secret) == std::string::npos);
      CHECK(all.find(RandomPart(secret)) == std::string::npos);
    }
  }
}

TEST_CASE("a key change whose wait failed is audited with the change",
          "[keys][audit]") {
  // The audit record used to be queued only after the commit wait
  // succeeded. A revoke whose wait failed (a degraded disk) still commits
  // later, and the retry returns OK at once as the key is revoked already:
  // the revocation was never audited. It now rides on the change itself.
  Harness h;
  CreatedKey a = h.Create(Spec());
  h.durable_fails = true;
  CHECK_FALSE(h.keys->RevokeKey(a.info.id).ok());
  StatusOr<CreatedKey> b = h.keys->CreateKey(Spec("b"));
  CHECK_FALSE(b.ok());
  h.durable_fails = false;
  REQUIRE(h.keys->RevokeKey(a.info.id).ok());
  std::vector<std::string> actions;
  for (const auto& [e, wait] : h.audit.events()) actions.push_back(e.action);
  CHECK(actions ==
        std::vector<std::string>{"key.create", "key.revoke", "key.create"});
  // Each change's op carries its own record; usage flushes carry none.
  size_t carried = 0;
  for (const KeyOp& op : h.path.ops()) carried += op.audit != nullptr;
  CHECK(carried == 3);
}

TEST_CASE("a flood of failed validations is coalesced in the audit log",
          "[keys][audit]") {
  Harness h;
  CreatedKey k = h.Create(Spec());
  std::string wrong = k.secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (int i = 0; i < 1000; ++i) {
    CHECK(h.keys->ValidateKey(wrong).status().IsUnauthenticated());
    CHECK(h.keys->ValidateKey("csk_nosuchid_x").status().IsUnauthenticated());
  }
  // The first of each kind is recorded at once; the rest only counted.
  REQUIRE(h.audit.events().size() == 3);  // create, wrong_secret, 1st unknown
  CHECK(h.keys->FlushDenials() == 2);
  std::vector<std::pair<AuditEvent, bool>> ev = h.audit.events();
  REQUIRE(ev.size() == 5);
  int repeats_seen = 0;
  for (size_t i = 3; i < 5; ++i) {
    INFO(ev[i].first.details_json);
    CHECK(ev[i].first.action == "key.validate");
    CHECK(ev[i].first.outcome == "denied");
    CHECK_FALSE(ev[i].second);  // never waited for
    CHECK(ev[i].first.details_json.find("\"repeated\":999") !=
          std::string::npos);
    ++repeats_seen;
  }
  CHECK(repeats_seen == 2);
  // Nothing left to report; the next denial opens a new window at once.
  CHECK(h.keys->FlushDenials() == 0);
  CHECK_FALSE(h.keys->ValidateKey(wrong).ok());
  CHECK(h.audit.events().size() == 6);
}

TEST_CASE("key writes become readable dead letters without the hash",
          "[keys][dead_letter]") {
  Harness h;
  CreatedKey k = h.Create(Spec());
  REQUIRE(h.keys->ValidateKey(k.secret).ok());
  REQUIRE(h.keys->FlushUsage() == 1);
  std::vector<KeyOp> ops = h.path.ops();
  REQUIRE(ops.size() == 2);
  internal::WriteOp put;
  put.lsn = 7;
  put.payload = ops[0];
  DeadLetter d = internal::MakeDeadLetter(put, Status::InvalidArgument("x"));
  CHECK(d.kind == "key_put");
  CHECK(d.key == k.info.id);
  CHECK(d.payload.find("\"owner\":\"tenant-1\"") != std::string::npos);
  const std::string hash = std::get<KeyPut>(ops[0].record).row.hash;
  CHECK(d.payload.find(hash) == std::string::npos);
  CHECK(d.payload.find(absl::BytesToHexString(hash)) == std::string::npos);
  CHECK(d.payload.find(RandomPart(k.secret)) == std::string::npos);
  internal::WriteOp usage;
  usage.lsn = 8;
  usage.payload = ops[1];
  d = internal::MakeDeadLetter(usage, Status::InvalidArgument("x"));
  CHECK(d.kind == "key_usage");
  CHECK(d.key == k.info.id);
  CHECK(d.payload.find("\"keys\"") != std::string::npos);
}

// --------------------------------------------------------------- Store tests

int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

CreatedKey MustCreate(Store* store, KeySpec spec) {
  StatusOr<CreatedKey> r = store->keys().CreateKey(spec);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("key changes are committed when the call returns (sync class)",
          "[keys][store]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_flush_delay = milliseconds(10'000);  // only a barrier commits soon
  auto store = OpenOrDie(o);
  CreatedKey k = MustCreate(store.get(), Spec());
  CHECK(QueryInt(o.path, "SELECT count(*) FROM api_keys WHERE id = '" +
                             k.info.id + "' AND revoked_us = 0") == 1);
  REQUIRE(store->keys().RevokeKey(k.info.id).ok());
  CHECK(QueryInt(o.path, "SELECT count(*) FROM api_keys WHERE id = '" +
                             k.info.id + "' AND revoked_us > 0") == 1);
  // The keys tables arrived in v7; the file is at the newest version.
  CHECK(QueryInt(o.path, "SELECT max(version) FROM schema_migrations") ==
        internal::LatestSchemaVersion());
  CHECK(internal::LatestSchemaVersion() >= 7);
  REQUIRE(store->Close().ok());
  CHECK(store->keys().ValidateKey(k.secret).status().IsFailedPrecondition());
}

TEST_CASE("a revocation whose audit record the database refuses still holds",
          "[keys][store]") {
  // The record rides on the change; refused with it, the revocation became
  // a dead letter while RevokeKey said OK, and the key validated again.
  TempDir dir;
  Options o = TestOptions(dir);
  CreatedKey k;
  {
    auto store = OpenOrDie(o);
    k = MustCreate(store.get(), Spec());
    REQUIRE(store->Close().ok());
  }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
    const int rc =
        sqlite3_exec(db,
                     "CREATE TRIGGER refuse_revoke BEFORE INSERT ON audit_log"
                     " WHEN NEW.action = 'key.revoke'"
                     " BEGIN SELECT RAISE(ABORT, 'refused'); END",
                     nullptr, nullptr, nullptr);
    sqlite3_close_v2(db);
    REQUIRE(rc == SQLITE_OK);
  }
  {
    auto store = OpenOrDie(o);
    REQUIRE(store->keys().RevokeKey(k.info.id).ok());
    REQUIRE(store->Flush().ok());
    CHECK(store->GetStats().dead_letters == 0);
    CHECK_FALSE(store->keys().ValidateKey(k.secret).ok());
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  StatusOr<KeyInfo> r = store->keys().ValidateKey(k.secret);
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  CHECK(QueryInt(o.path,
                 "SELECT count(*) FROM audit_log"
                 " WHERE action = 'key.revoke'") == 0);
  CHECK(store->audit().Verify()->ok);
}

TEST_CASE("a stored revocation outlives a put from an older copy of the key",
          "[keys][store]") {
  // Two stores on one file each hold their own copy of the keys. B, which
  // has not seen A's revocation, rotates the key and writes its whole row:
  // that put used to store revoked_us = 0, so after a reopen the revoked
  // key validated again. The file keeps the key's end once stored.
  TempDir dir;
  Options o = TestOptions(dir);
  CreatedKey k;
  {
    auto a = OpenOrDie(o);
    k = MustCreate(a.get(), Spec());
    Options stale = o;
    stale.keys_refresh_interval = milliseconds(0);
    auto b = OpenOrDie(stale);
    REQUIRE(a->keys().RevokeKey(k.info.id).ok());
    // The writer now refuses the rotation on the stored row, so the put of
    // the old copy never reaches the upsert; B's revocation of its stale
    // copy does, and must not move the first revocation's time either.
    const int64_t revoked_at =
        QueryInt(o.path, "SELECT revoked_us FROM api_keys WHERE id = '" +
                             k.info.id + "'");
    CHECK(b->keys()
              .RotateKey(k.info.id, std::chrono::hours(1))
              .status()
              .IsFailedPrecondition());
    REQUIRE(b->keys().RevokeKey(k.info.id).ok());
    CHECK(QueryInt(o.path, "SELECT revoked_us FROM api_keys WHERE id = '" +
                               k.info.id + "'") == revoked_at);
    REQUIRE(b->Close().ok());
    REQUIRE(a->Close().ok());
  }
  auto c = OpenOrDie(o);
  StatusOr<KeyInfo> r = c->keys().ValidateKey(k.secret);
  CHECK(r.status().code() == StatusCode::kPermissionDenied);
  StatusOr<std::vector<KeyInfo>> list = c->keys().ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].revoked_at_us > 0);
  REQUIRE(c->Close().ok());
}

TEST_CASE("keys, revocations and usage counts survive a restart",
          "[keys][store]") {
  TempDir dir;
  Options o = TestOptions(dir);
  CreatedKey a, b, c;
  {
    auto store = OpenOrDie(o);
    a = MustCreate(store.get(), Spec("a", "alice"));
    b = MustCreate(store.get(), Spec("b", "bob"));
    KeySpec cs = Spec("c", "alice", {"x"});
    cs.rate_per_s = 3;
    cs.burst = 4;
    c = MustCreate(store.get(), cs);
    for (int i = 0; i < 5; ++i)
      REQUIRE(store->keys().ValidateKey(a.secret).ok());
    REQUIRE(store->keys().RevokeKey(b.info.id).ok());
    REQUIRE(store->Close().ok());  // flushes the usage counts
  }
  auto store = OpenOrDie(o);
  Keys& keys = store->keys();
  StatusOr<std::vector<KeyInfo>> list = keys.ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  const KeyInfo& la = (*list)[0];
  CHECK(la.id == a.info.id);
  CHECK(la.request_count == 5);
  CHECK(la.last_used_at_us > 0);
  CHECK((*list)[1].revoked_at_us > 0);
  CHECK((*list)[2].scopes == std::vector<std::string>{"x"});
  CHECK((*list)[2].rate_per_s == 3);
  CHECK((*list)[2].burst == 4);
  StatusOr<KeyInfo> r = keys.ValidateKey(a.secret);
  REQUIRE(r.ok());
  CHECK(r->request_count == 6);
  CHECK(keys.ValidateKey(b.secret).status().code() ==
        StatusCode::kPermissionDenied);
  CHECK(keys.ValidateKey(c.secret, "x").ok());
  REQUIRE(store->Close().ok());
}

TEST_CASE("the periodic flush writes usage without Close", "[keys][store]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.keys_usage_flush_interval = milliseconds(20);
  auto store = OpenOrDie(o);
  CreatedKey a = MustCreate(store.get(), Spec());
  for (int i = 0; i < 1000; ++i)
    REQUIRE(store->keys().ValidateKey(a.secret).ok());
  const std::string q =
      "SELECT request_count FROM api_keys WHERE id = '" + a.info.id + "'";
  int64_t n = 0;
  for (int i = 0; i < 500 && n != 1000; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    REQUIRE(store->Flush().ok());
    n = QueryInt(o.path, q);
  }
  CHECK(n == 1000);
  REQUIRE(store->Close().ok());
}

TEST_CASE("in the store, a burst of validations commits a few usage writes",
          "[keys][store]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.keys_usage_flush_interval = milliseconds(50);
  auto store = OpenOrDie(o);
  CreatedKey a = MustCreate(store.get(), Spec());
  REQUIRE(store->Flush().ok());
  const uint64_t before = store->GetStats().rows_committed;
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kValidations = 200'000;
  for (int i = 0; i < kValidations; ++i) {
    REQUIRE(store->keys().ValidateKey(a.secret).ok());
  }
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  std::this_thread::sleep_for(milliseconds(120));  // at least one more tick
  REQUIRE(store->Flush().ok());
  const uint64_t writes = store->GetStats().rows_committed - before;
  // At most one usage write per flush tick, whatever the number of
  // validations: ticks = time / interval, plus the tick after the loop.
  const auto ticks =
      std::chrono::duration_cast<milliseconds>(elapsed + milliseconds(120))
          .count() /
      50;
  INFO("writes " << writes << ", ticks " << ticks);
  CHECK(writes >= 1);
  CHECK(writes <= static_cast<uint64_t>(ticks) + 2);
  CHECK(writes < 1000);
  REQUIRE(store->Close().ok());
  CHECK(QueryInt(o.path, "SELECT request_count FROM api_keys WHERE id = '" +
                             a.info.id + "'") == kValidations);
}

TEST_CASE("the secret is in no log line and nowhere in the database files",
          "[keys][store]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.log_level = LogLevel::kTrace;
  auto logs = std::make_shared<std::vector<std::string>>();
  auto mu = std::make_shared<std::mutex>();
  o.log_sink = [logs, mu](LogLevel, std::string_view m) {
    std::lock_guard<std::mutex> lock(*mu);
    logs->emplace_back(m);
  };
  auto store = OpenOrDie(o);
  Keys& keys = store->keys();
  CreatedKey a = MustCreate(store.get(), Spec());
  CreatedKey b = MustCreate(store.get(), Spec("b"));
  std::vector<std::string> secrets = {a.secret, b.secret};
  std::vector<std::string> errors;
  auto note = [&](const Status& s) { errors.push_back(s.ToString()); };
  REQUIRE(keys.ValidateKey(a.secret, "chat:read").ok());
  note(keys.ValidateKey(a.secret, "admin").status());
  std::string wrong = a.secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  note(keys.ValidateKey(wrong).status());
  note(keys.ValidateKey(a.secret + "x").status());
  StatusOr<CreatedKey> rot = keys.RotateKey(a.info.id, std::chrono::hours(1));
  REQUIRE(rot.ok());
  secrets.push_back(rot->secret);
  REQUIRE(keys.RevokeKey(b.info.id).ok());
  note(keys.ValidateKey(b.secret).status());
  note(keys.RevokeKey("nothere1"));
  REQUIRE(store->Flush().ok());

  // The store's audit log got every change and every failed validation
  // (asynchronous ones included, after the Flush), and no secret.
  StatusOr<AuditPage> page = store->audit().Query({});
  REQUIRE(page.ok());
  std::map<std::string, int> seen;  // "action/outcome" -> records
  for (const AuditRecord& r : page->records) {
    ++seen[r.event.action + "/" + r.event.outcome];
    for (const std::string& s : secrets) {
      CHECK(r.event.details_json.find(RandomPart(s).substr(0, 16)) ==
            std::string::npos);
    }
  }
  CHECK(seen["key.create/success"] == 2);
  CHECK(seen["key.rotate/success"] == 1);
  CHECK(seen["key.revoke/success"] == 1);
  CHECK(seen["key.validate/denied"] == 4);
  StatusOr<AuditVerification> verified = store->audit().Verify();
  REQUIRE(verified.ok());
  CHECK(verified->ok);

  auto check_files = [&](const char* when) {
    for (const char* suffix : {"", "-wal", ".deadletter.jsonl"}) {
      const std::string bytes = ReadAll(o.path + suffix);
      INFO(when << ": file " << o.path + suffix);
      for (const std::string& s : secrets) {
        CHECK(bytes.find(s) == std::string::npos);
        CHECK(bytes.find(RandomPart(s)) == std::string::npos);
        CHECK(bytes.find(RandomPart(s).substr(0, 16)) == std::string::npos);
      }
    }
  };
  // Sanity: the files hold the keys' public ids, so the grep can hit.
  CHECK((ReadAll(o.path) + ReadAll(o.path + "-wal")).find(a.info.id) !=
        std::string::npos);
  check_files("before close");
  REQUIRE(store->Close().ok());
  check_files("after close");

  std::lock_guard<std::mutex> lock(*mu);
  CHECK_FALSE(logs->empty());  // trace level: the grep has lines to search
  for (const std::string& s : secrets) {
    for (const std::string& line : *logs) {
      CHECK(line.find(s) == std::string::npos);
      CHECK(line.find(RandomPart(s).substr(0, 16)) == std::string::npos);
    }
    for (const std::string& e : errors) {
      CHECK(e.find(s) == std::string::npos);
      CHECK(e.find(RandomPart(s).substr(0, 16)) == std::string::npos);
    }
  }
  for (const std::string& e : errors) {
    CHECK(e.find(wrong) == std::string::npos);
  }
}

TEST_CASE("validation runs in parallel with creates and revokes",
          "[keys][store][concurrency]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.keys_usage_flush_interval = milliseconds(5);
  auto store = OpenOrDie(o);
  Keys& keys = store->keys();
  std::vector<CreatedKey> stable;
  for (int i = 0; i < 4; ++i) stable.push_back(MustCreate(store.get(), Spec()));
  std::atomic<bool> stop{false};
  std::atomic<int> churned{0};
  std::vector<std::string> churn_secrets;
  std::mutex churn_mu;
  std::atomic<int> unexpected{0};
  std::vector<std::atomic<int64_t>> ok_counts(stable.size());

  std::thread admin([&] {
    for (int i = 0; i < 40; ++i) {
      StatusOr<CreatedKey> k = keys.CreateKey(Spec("churn"));
      if (!k.ok()) {
        unexpected.fetch_add(1);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(churn_mu);
        churn_secrets.push_back(k->secret);
      }
      if (!keys.RevokeKey(k->info.id).ok()) unexpected.fetch_add(1);
      churned.fetch_add(1);
    }
    stop.store(true);
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      size_t i = static_cast<size_t>(t);
      while (!stop.load()) {
        const size_t which = i % stable.size();
        StatusOr<KeyInfo> r =
            keys.ValidateKey(stable[which].secret, "chat:read");
        if (r.ok()) {
          ok_counts[which].fetch_add(1);
        } else {
          unexpected.fetch_add(1);
        }
        std::string churn;
        {
          std::lock_guard<std::mutex> lock(churn_mu);
          if (!churn_secrets.empty()) {
            churn = churn_secrets[i % churn_secrets.size()];
          }
        }
        if (!churn.empty()) {
          StatusOr<KeyInfo> c = keys.ValidateKey(churn);
          // Created, then revoked: OK before the revocation, denied after.
          if (!c.ok() && !c.status().IsPermissionDenied()) unexpected++;
        }
        (void)keys.ListKeys("tenant-1");
        ++i;
      }
    });
  }
  admin.join();
  for (std::thread& t : readers) t.join();
  CHECK(unexpected.load() == 0);
  CHECK(churned.load() == 40);
  StatusOr<std::vector<KeyInfo>> list = keys.ListKeys(std::nullopt);
  REQUIRE(list.ok());
  CHECK(list->size() == stable.size() + 40);
  for (size_t i = 0; i < stable.size(); ++i) {
    for (const KeyInfo& k : *list) {
      if (k.id == stable[i].info.id) {
        CHECK(k.request_count == ok_counts[i].load());
      }
    }
  }
  REQUIRE(store->Close().ok());
  // And the database agrees after the final flush.
  int64_t stored = QueryInt(o.path, "SELECT sum(request_count) FROM api_keys");
  int64_t counted = 0;
  for (auto& n : ok_counts) counted += n.load();
  CHECK(stored >= counted);  // churn keys add their successes on top
}

// ------------------------------------------- Several stores on one file
//
// Each store holds its own copy of the keys. These open two on one file
// (as two processes would) and check that one sees the other's changes
// within keys_refresh_interval, and that rotations are decided on the file.

// A store on `o`'s file that looks for other stores' key changes every
// 20 ms, or never (`refresh` 0: it stays as stale as the test needs).
std::unique_ptr<Store> OpenSharing(Options o, milliseconds refresh) {
  o.keys_refresh_interval = refresh;
  return OpenOrDie(o);
}

constexpr milliseconds kShortRefresh(20);

StatusCode ValidateCode(Store* store, const std::string& secret) {
  return store->keys().ValidateKey(secret).status().code();
}

TEST_CASE(
    "a key another store revoked stops validating here within the "
    "refresh interval",
    "[keys][store][shared_file]") {
  // Keys were read at Open only: a key revoked by another process kept
  // validating here until this one reopened the file.
  TempDir dir;
  Options o = TestOptions(dir);
  auto a = OpenSharing(o, kShortRefresh);
  CreatedKey k = MustCreate(a.get(), Spec());
  auto b = OpenSharing(o, kShortRefresh);
  REQUIRE(a->keys().ValidateKey(k.secret).ok());
  REQUIRE(b->keys().RevokeKey(k.info.id).ok());
  // Bounded poll: the window is 20 ms plus a read; 10 s is only the cap.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(EventuallyTrue([&] {
    return ValidateCode(a.get(), k.secret) == StatusCode::kPermissionDenied;
  }));
  INFO("seen after " << std::chrono::duration_cast<milliseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count()
                     << " ms");
  StatusOr<std::vector<KeyInfo>> list = a->keys().ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].revoked_at_us > 0);
  REQUIRE(b->Close().ok());
  REQUIRE(a->Close().ok());
}

TEST_CASE(
    "a key another store created validates here within the refresh "
    "interval",
    "[keys][store][shared_file]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto a = OpenSharing(o, kShortRefresh);
  auto b = OpenSharing(o, kShortRefresh);
  CreatedKey k = MustCreate(b.get(), Spec("from-b", "tenant-b", {"x"}));
  CHECK(EventuallyTrue([&] { return a->keys().ValidateKey(k.secret).ok(); }));
  StatusOr<KeyInfo> r = a->keys().ValidateKey(k.secret, "x");
  REQUIRE(r.ok());
  CHECK(r->owner == "tenant-b");
  REQUIRE(b->Close().ok());
  REQUIRE(a->Close().ok());
}

TEST_CASE("a key another store created can be revoked here at once",
          "[keys][store][shared_file]") {
  // No periodic refresh: RevokeKey of an id this store does not know reads
  // the keys again first, instead of answering NotFound.
  TempDir dir;
  Options o = TestOptions(dir);
  auto a = OpenSharing(o, milliseconds(0));
  auto b = OpenSharing(o, milliseconds(0));
  CreatedKey k = MustCreate(b.get(), Spec());
  REQUIRE(a->keys().RevokeKey(k.info.id).ok());
  CHECK(QueryInt(o.path, "SELECT revoked_us > 0 FROM api_keys WHERE id = '" +
                             k.info.id + "'") == 1);
  CHECK(a->keys().RevokeKey("zzzzzzzz").IsNotFound());
  REQUIRE(b->Close().ok());
  REQUIRE(a->Close().ok());
}

TEST_CASE(
    "a stale store's rotation of a key another store revoked is "
    "refused, and no successor is stored",
    "[keys][store][shared_file]") {
  // A, which had not seen B's revocation, rotated the key: the successor
  // was inserted and lived, a live key descended from a revoked one.
  TempDir dir;
  Options o = TestOptions(dir);
  auto a = OpenSharing(o, milliseconds(0));  // never refreshes by itself
  CreatedKey k = MustCreate(a.get(), Spec());
  auto b = OpenSharing(o, milliseconds(0));
  REQUIRE(b->keys().RevokeKey(k.info.id).ok());
  REQUIRE(a->keys().ValidateKey(k.secret).ok());  // stale, as intended
  StatusOr<CreatedKey> r =
      a->keys().RotateKey(k.info.id, std::chrono::hours(1));
  INFO(r.status().ToString());
  CHECK(r.status().IsFailedPrecondition());
  CHECK(r.status().message().find("revoked") != std::string::npos);
  CHECK(QueryInt(o.path, "SELECT count(*) FROM api_keys") == 1);
  CHECK(QueryInt(o.path,
                 "SELECT count(*) FROM api_keys WHERE replaced_by"
                 " != '' OR rotated_from != ''") == 0);
  CHECK(QueryInt(o.path,
                 "SELECT count(*) FROM audit_log"
                 " WHERE action = 'key.rotate'") == 0);
  // The refusal taught A the revocation, and it holds no successor.
  CHECK(ValidateCode(a.get(), k.secret) == StatusCode::kPermissionDenied);
  StatusOr<std::vector<KeyInfo>> list = a->keys().ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK(list->front().replaced_by.empty());
  REQUIRE(b->Close().ok());
  REQUIRE(a->Close().ok());
  CHECK(OpenOrDie(o)->audit().Verify()->ok);
}

TEST_CASE("two stores rotating one key: exactly one rotation succeeds",
          "[keys][store][shared_file]") {
  // Each store checked only its own copy, so both rotated the key and it
  // had two live successors.
  TempDir dir;
  Options o = TestOptions(dir);
  auto a = OpenSharing(o, milliseconds(0));
  CreatedKey k = MustCreate(a.get(), Spec());
  auto b = OpenSharing(o, milliseconds(0));
  std::vector<StatusOr<CreatedKey>> results;
  SECTION("one after the other") {
    results.push_back(a->keys().RotateKey(k.info.id, std::chrono::hours(1)));
    results.push_back(b->keys().RotateKey(k.info.id, std::chrono::hours(1)));
    REQUIRE(results[0].ok());
    INFO(results[1].status().ToString());
    CHECK(results[1].status().message().find("already rotated to " +
                                             results[0]->info.id) !=
          std::string::npos);
  }
  SECTION("at once") {
    auto rotate = [&](Store* s) {
      return s->keys().RotateKey(k.info.id, std::chrono::hours(1));
    };
    std::future<StatusOr<CreatedKey>> fa =
        std::async(std::launch::async, rotate, a.get());
    std::future<StatusOr<CreatedKey>> fb =
        std::async(std::launch::async, rotate, b.get());
    results.push_back(fa.get());
    results.push_back(fb.get());
  }
  int succeeded = 0;
  std::string winner_secret, loser_store_secret;
  for (const StatusOr<CreatedKey>& r : results) {
    if (r.ok()) {
      ++succeeded;
      winner_secret = r->secret;
    } else {
      INFO(r.status().ToString());
      CHECK(r.status().IsFailedPrecondition());
    }
  }
  CHECK(succeeded == 1);
  CHECK(
      QueryInt(o.path, "SELECT count(*) FROM api_keys WHERE rotated_from = '" +
                           k.info.id + "'") == 1);
  CHECK(QueryInt(o.path, "SELECT count(*) FROM api_keys") == 2);
  // Both stores end up holding just the winner's successor.
  for (Store* s : {a.get(), b.get()}) {
    REQUIRE(s->Close().ok());
  }
  auto c = OpenOrDie(o);
  if (!winner_secret.empty()) CHECK(c->keys().ValidateKey(winner_secret).ok());
  CHECK(c->audit().Verify()->ok);
}

TEST_CASE("a read-only store sees a revocation within the refresh interval",
          "[keys][store][shared_file][read_only]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto w = OpenSharing(o, kShortRefresh);
  CreatedKey k = MustCreate(w.get(), Spec());
  Options ro = o;
  ro.read_only = true;
  auto r = OpenSharing(ro, kShortRefresh);
  REQUIRE(r->keys().ValidateKey(k.secret).ok());
  REQUIRE(w->keys().RevokeKey(k.info.id).ok());
  CHECK(EventuallyTrue([&] {
    return ValidateCode(r.get(), k.secret) == StatusCode::kPermissionDenied;
  }));
  REQUIRE(r->Close().ok());
  REQUIRE(w->Close().ok());
}

TEST_CASE(
    "a rotation refused after the call returned (batched) drops its "
    "successor within the refresh interval",
    "[keys][store][shared_file]") {
  // With the keys class kBatched, RotateKey returns before the writer
  // decides; the refused successor must not keep validating here.
  TempDir dir;
  Options o = TestOptions(dir);
  Options batched = o;
  batched.durability.keys = Durability::kBatched;
  batched.keys_refresh_interval = kShortRefresh;
  auto a = OpenOrDie(batched);
  CreatedKey k = MustCreate(a.get(), Spec());
  REQUIRE(a->Flush().ok());
  batched.keys_refresh_interval = milliseconds(0);
  auto b = OpenOrDie(batched);
  // B is stale (it never refreshes); A revokes, then B rotates.
  REQUIRE(a->keys().RevokeKey(k.info.id).ok());
  REQUIRE(a->Flush().ok());
  StatusOr<CreatedKey> r = b->keys().RotateKey(k.info.id, microseconds(0));
  REQUIRE(r.ok());  // not decided yet
  REQUIRE(b->Flush().ok());
  CHECK(QueryInt(o.path, "SELECT count(*) FROM api_keys") == 1);
  // B drops the successor at its next refresh: the refusal raised the
  // file's keys version. B refreshes on no schedule; a RevokeKey of an id
  // it does not know makes it look (as the background thread would).
  CHECK(b->keys().RevokeKey("zzzzzzzz").IsNotFound());
  CHECK(ValidateCode(b.get(), r->secret) == StatusCode::kUnauthenticated);
  CHECK(ValidateCode(b.get(), k.secret) == StatusCode::kPermissionDenied);
  StatusOr<std::vector<KeyInfo>> list = b->keys().ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK(list->front().replaced_by.empty());
  REQUIRE(b->Close().ok());
  REQUIRE(a->Close().ok());
}

// Commits batches until one carries a rotation, then fails every later one:
// the file is left as a crash right after that commit would leave it.
class StopAfterRotationBackend final : public internal::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;

  std::atomic<bool> stopped{false};

  Status Apply(std::span<const internal::WriteOp> batch) override {
    if (stopped.load()) return Status::IOError("disk I/O error (stopped)");
    Status s = ForwardingBackend::Apply(batch);
    for (const internal::WriteOp& op : batch) {
      const auto* k = std::get_if<internal::Boxed<KeyOp>>(&op.payload);
      if (k == nullptr) continue;
      const auto* put = std::get_if<KeyPut>(&(*k)->record);
      const bool rotation =
          std::holds_alternative<internal::KeyRotate>((*k)->record) ||
          (put != nullptr && !put->row.rotated_from.empty());
      if (s.ok() && rotation) stopped = true;
    }
    return s;
  }
};

TEST_CASE("a rotation commits whole: no new key without the old key's end",
          "[keys][store]") {
  // RotateKey used to queue the new key and the old key's end as two
  // writes: a crash between their commits left a new key with no audit
  // record beside an old key still live and rotatable again.
  TempDir dir;
  Options o = TestOptions(dir);
  CreatedKey old;
  {
    auto store = OpenOrDie(o);
    old = MustCreate(store.get(), Spec("old"));
    REQUIRE(store->Close().ok());
  }
  // One write per transaction, so a rotation made of several writes would
  // be cut between them; kBatched, so RotateKey does not wait for commits
  // that never come.
  o.max_batch_ops = 1;
  o.durability.keys = Durability::kBatched;
  o.retry_budget = std::chrono::milliseconds(100);
  auto backend = std::make_unique<StopAfterRotationBackend>(
      internal::backend_test::OpenBackend(o));
  StopAfterRotationBackend* stop = backend.get();
  StatusOr<std::unique_ptr<Store>> opened =
      internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  REQUIRE(opened.ok());
  std::unique_ptr<Store> store = std::move(opened).value();
  StatusOr<CreatedKey> rotated =
      store->keys().RotateKey(old.info.id, std::chrono::hours(0));
  REQUIRE(rotated.ok());
  for (int i = 0; i < 500 && !stop->stopped.load(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  REQUIRE(stop->stopped.load());

  // What a restart would load: the file as the last commit left it.
  Options ro = TestOptions(dir);
  ro.read_only = true;
  auto reader = OpenOrDie(ro);
  StatusOr<std::vector<KeyInfo>> list = reader->keys().ListKeys(std::nullopt);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  const KeyInfo& stored_old =
      (*list)[0].id == old.info.id ? (*list)[0] : (*list)[1];
  CHECK(stored_old.replaced_by == rotated->info.id);
  CHECK(reader->keys().ValidateKey(old.secret).status().code() ==
        StatusCode::kPermissionDenied);
  AuditQuery q;
  q.action = "key.rotate";
  q.resource = old.info.id;
  StatusOr<AuditPage> audited = reader->audit().Query(q);
  REQUIRE(audited.ok());
  CHECK(audited->records.size() == 1);
  REQUIRE(reader->Close().ok());
  (void)store->Close(milliseconds(200));
}

}  // namespace
}  // namespace convstore
