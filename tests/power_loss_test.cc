// Copyright 2026 The convstore Authors.
//
// Power loss (docs/durability.md, "Power loss"), simulated in one process:
// the fault VFS records every change to the database and its WAL that no
// fsync has covered yet (src/sqlite/unsynced_writes.h); at a random moment
// of a workload of appends (over conversations, with Flushes), deletes of
// conversations, PruneMessages runs, analytics turns, cache sets,
// sync audit records and sync key creations, the power is cut (every later
// write fails), the store is closed, and the files are put back the way a disk
// may hold them after the cut: their last fsynced state plus none, some (chosen
// at random) or a prefix of the writes that followed. Then the file is reopened
// with the ordinary VFS and must hold:
//  * a sound database (PRAGMA integrity_check) that the store opens;
//  * an LSN prefix of what was acknowledged: each conversation a gap-free
//    run of its appends (from the first seq the last prune left), the audit
//    chain verifiable with the workload's records 1..m, every cache value one
//    the workload set, whole, the keys present the first ones created, the
//    session's turns a gap-free run with no orphan or stale rollup, and all
//    of them together the state of one prefix of the workload's order (no
//    commit survives without the ones before it);
//  * with SyncMode::kFull, everything a Flush or a sync call returned OK
//    for (with kNormal those may roll back: the contract);
//  * a store that takes new writes and keeps them over a clean reopen.

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "crash_testutil.h"
#include "sqlite/fault_vfs.h"
#include "sqlite/unsynced_writes.h"
#include "testutil.h"

namespace convstore {
namespace {

using internal::FaultVfs;
using internal::UnsyncedWrites;
using test::OpenOrDie;
using test::TempDir;

constexpr int kConvs = 8;
constexpr int kCacheKeys = 16;
// The analytics session the workload's turns go to, and its start.
constexpr const char* kSession = "power-call";
constexpr int64_t kTurnT0 = 1'600'000'000'000'000;

std::string ConvId(int c) { return "power-" + std::to_string(c); }

std::string Content(int c, int64_t epoch, int64_t seq) {
  return "c" + std::to_string(c) + "/e" + std::to_string(epoch) + "/s" +
         std::to_string(seq) + "/" +
         std::string(static_cast<size_t>(40 + (c * 37 + seq * 11) % 300),
                     static_cast<char>('a' + (c + seq) % 26));
}

std::string CacheKey(int k) { return "key-" + std::to_string(k); }

std::string CacheValue(int k, int64_t version) {
  return "k" + std::to_string(k) + "/v" + std::to_string(version) + "/" +
         std::string(static_cast<size_t>(20 + (k * 53 + version * 7) % 900),
                     static_cast<char>('A' + (k + version) % 26));
}

// Which unsynced writes the disk kept.
enum class Kept { kNone, kSome, kPrefix };

// PruneMessages keeps this many newest messages of each conversation.
constexpr int64_t kKeep = 5;

// One op of the workload: an append to conversation `target` or its
// deletion, a PruneMessages run (after a Flush), a sync audit record, a
// cache Set of key `target`, or a sync CreateKey.
struct Op {
  enum Kind {
    kAppend,
    kDelete,
    kPrune,
    kAudit,
    kCacheSet,
    kCreateKey,
    kTurn
  } kind = kAppend;
  int target = 0;
};

// What a prefix of the ops leaves: messages appended to each conversation
// (its last seq), how many of them were pruned (seqs 1..cut) and its
// deletions so far, audit records, each cache key's version (0: never
// set) and keys created.
struct State {
  std::vector<int64_t> messages = std::vector<int64_t>(kConvs, 0);
  std::vector<int64_t> cut = std::vector<int64_t>(kConvs, 0);
  std::vector<int64_t> epoch = std::vector<int64_t>(kConvs, 0);
  int64_t audits = 0;
  std::vector<int64_t> cache = std::vector<int64_t>(kCacheKeys, 0);
  int64_t keys = 0;
  int64_t turns = 0;  // of the analytics session kSession

  void Apply(const Op& op) {
    switch (op.kind) {
      case Op::kAppend:
        ++messages[op.target];
        break;
      case Op::kDelete:
        ++epoch[op.target];
        messages[op.target] = 0;
        cut[op.target] = 0;
        break;
      case Op::kPrune:
        for (int c = 0; c < kConvs; ++c) {
          cut[c] = std::max(cut[c], messages[c] - kKeep);
        }
        break;
      case Op::kAudit:
        ++audits;
        break;
      case Op::kCacheSet:
        ++cache[op.target];
        break;
      case Op::kCreateKey:
        ++keys;
        break;
      case Op::kTurn:
        ++turns;
        break;
    }
  }
  // Whether `stored` (read back from a file) is this state. A
  // conversation with no messages does not show how often it was deleted.
  bool Matches(const State& stored) const {
    for (int c = 0; c < kConvs; ++c) {
      if (stored.messages[c] != messages[c]) return false;
      if (messages[c] == 0) continue;
      if (stored.epoch[c] != epoch[c] || stored.cut[c] != cut[c]) {
        return false;
      }
    }
    return audits == stored.audits && cache == stored.cache &&
           keys == stored.keys && turns == stored.turns;
  }
};

// What the workload did before the cut: its ops in order, how many of
// them a Flush or a sync call had acknowledged as committed, and the
// secrets of the keys it created.
struct Done {
  std::vector<Op> ops;
  size_t acked = 0;
  std::vector<std::string> secrets;
};

// Records unsynced changes into `unsynced` while alive; resets the fault
// VFS (recording off, power back) when it goes, even if a REQUIRE throws.
class Recording {
 public:
  Recording(FaultVfs* vfs, UnsyncedWrites* unsynced) : vfs_(vfs) {
    vfs_->Reset();
    vfs_->RecordUnsynced(unsynced);
  }
  ~Recording() { vfs_->Reset(); }
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;

 private:
  FaultVfs* vfs_;
};

Done RunUntilCut(Store* store, FaultVfs* vfs, std::mt19937_64* rng,
                 size_t cut_at) {
  Done d;
  State s;
  // The session the turns go to, committed before the first op.
  SessionStart start;
  start.session_id = kSession;
  start.started_at_us = kTurnT0;
  REQUIRE(store->analytics().StartSession(start).ok());
  REQUIRE(store->Flush().ok());
  while (d.ops.size() < cut_at) {
    const uint64_t r = (*rng)() % 100;
    Op op;
    if (r < 3) {
      op.kind = Op::kAudit;
      AuditEvent e;
      e.actor = "power";
      e.action = "power.record";
      e.resource = "rec-" + std::to_string(s.audits + 1);
      e.outcome = "success";
      // kSync by default: committed when it returns OK.
      REQUIRE(store->audit().Record(e).ok());
    } else if (r < 4) {
      op.kind = Op::kCreateKey;
      KeySpec spec;
      spec.name = "power key " + std::to_string(s.keys);
      spec.owner = "power";
      spec.scopes = {"chat:write"};
      StatusOr<CreatedKey> k = store->keys().CreateKey(spec);  // kSync
      REQUIRE(k.ok());
      d.secrets.push_back(k->secret);
    } else if (r < 5) {
      op.kind = Op::kDelete;
      op.target = static_cast<int>((*rng)() % kConvs);
      REQUIRE(store->DeleteConversation(ConvId(op.target)).ok());
    } else if (r < 6) {
      op.kind = Op::kPrune;
      REQUIRE(store->Flush().ok());  // it selects from the file
      MessageRetention keep;
      keep.max_messages_per_conversation = kKeep;
      keep.keep_first_system = false;
      keep.batch_rows = 100000;  // one transaction
      REQUIRE(store->PruneMessages(keep).ok());
    } else if (r < 10) {
      op.kind = Op::kTurn;
      TurnMetrics t;
      t.session_id = kSession;
      t.turn_number = s.turns + 1;
      t.at_us = kTurnT0 + t.turn_number * 1000;
      t.e2e_ms = static_cast<double>(t.turn_number % 997);
      t.llm_model = "model-a";
      REQUIRE(store->analytics().RecordTurn(t).ok());
    } else if (r < 20) {
      op.kind = Op::kCacheSet;
      op.target = static_cast<int>((*rng)() % kCacheKeys);
      REQUIRE(store->cache()
                  .Set("power", CacheKey(op.target),
                       CacheValue(op.target, s.cache[op.target] + 1),
                       std::chrono::milliseconds(0))
                  .ok());
    } else {
      op.target = static_cast<int>((*rng)() % kConvs);
      const int64_t seq = s.messages[op.target] + 1;
      Message m =
          test::Msg(Role::kUser, Content(op.target, s.epoch[op.target], seq));
      m.created_at_us = 1'600'000'000'000'000 + seq;
      StatusOr<AppendResult> a = store->Append(ConvId(op.target), m);
      REQUIRE(a.ok());
      REQUIRE(a->seq == seq);
    }
    s.Apply(op);
    d.ops.push_back(op);
    if (op.kind == Op::kAudit || op.kind == Op::kCreateKey ||
        op.kind == Op::kPrune) {
      d.acked = d.ops.size();
    } else if (r % 20 == 7) {
      REQUIRE(store->Flush().ok());
      d.acked = d.ops.size();
    }
  }
  // A shed cache write may leave the older value by contract (best
  // effort); the queue never gets near 3/4 full here.
  REQUIRE(store->cache().GetStats().persist_shed == 0);
  vfs->CutPower();
  return d;
}

// The length of the longest prefix of `ops` whose state `stored` is, or -1
// if it is the state of no prefix. The longest: ops that change nothing (a
// prune with nothing to remove, an append then the delete of that
// conversation) make several prefixes leave the same state.
int64_t PrefixLength(const std::vector<Op>& ops, const State& stored) {
  State s;
  int64_t longest = s.Matches(stored) ? 0 : -1;
  for (size_t i = 0; i < ops.size(); ++i) {
    s.Apply(ops[i]);
    if (s.Matches(stored)) longest = static_cast<int64_t>(i + 1);
  }
  return longest;
}
// What the reopened store holds, each part checked for its own
// soundness.
State Stored(Store* store, const Done& d) {
  State st;
  HistoryOptions all;
  all.from_storage = true;
  for (int c = 0; c < kConvs; ++c) {
    INFO("conversation " << c);
    const std::vector<MessagePtr> h = test::Hist(store, ConvId(c), all);
    if (h.empty()) continue;
    long long epoch = 0;
    REQUIRE(std::sscanf(h[0]->content.c_str(), "c%*d/e%lld/", &epoch) == 1);
    const int64_t first = h[0]->seq;
    for (size_t i = 0; i < h.size(); ++i) {
      // Gap-free, from the first seq a prune left.
      REQUIRE(h[i]->seq == first + static_cast<int64_t>(i));
      CHECK(h[i]->content == Content(c, epoch, h[i]->seq));
    }
    st.messages[c] = h.back()->seq;
    st.cut[c] = first - 1;
    st.epoch[c] = epoch;
  }
  StatusOr<AuditVerification> v = store->audit().Verify();
  REQUIRE(v.ok());
  INFO("audit break at " << v->broken_id << ": " << v->detail);
  CHECK(v->ok);
  AuditQuery q;
  q.actor = "power";
  q.limit = 10000;
  StatusOr<AuditPage> page = store->audit().Query(q);
  REQUIRE(page.ok());
  std::vector<AuditRecord> records(page->records.rbegin(),
                                   page->records.rend());
  for (size_t i = 0; i < records.size(); ++i) {
    CHECK(records[i].event.resource == "rec-" + std::to_string(i + 1));
  }
  st.audits = static_cast<int64_t>(records.size());
  for (int k = 0; k < kCacheKeys; ++k) {
    INFO("cache key " << k);
    StatusOr<std::string> got = store->cache().Get("power", CacheKey(k));
    if (!got.ok()) {
      REQUIRE(got.status().code() == StatusCode::kNotFound);
      continue;
    }
    long long version = 0;
    REQUIRE(std::sscanf(got->c_str(), "k%*d/v%lld/", &version) == 1);
    CHECK(*got == CacheValue(k, version));  // never torn or mixed
    st.cache[k] = version;
  }
  StatusOr<std::vector<KeyInfo>> keys = store->keys().ListKeys(std::nullopt);
  REQUIRE(keys.ok());
  st.keys = static_cast<int64_t>(keys->size());
  StatusOr<SessionDetail> session = store->analytics().GetSession(kSession);
  if (session.ok()) {
    for (size_t i = 0; i < session->turns.size(); ++i) {
      const TurnMetrics& t = session->turns[i];
      REQUIRE(t.turn_number == static_cast<int64_t>(i + 1));  // gap-free
      CHECK(t.at_us == kTurnT0 + t.turn_number * 1000);
      CHECK(t.e2e_ms == static_cast<double>(t.turn_number % 997));
    }
    st.turns = static_cast<int64_t>(session->turns.size());
  } else {
    REQUIRE(session.status().code() == StatusCode::kNotFound);
  }
  // The turns' hourly rollups were written in the same transactions.
  StatusOr<ConsistencyReport> consistent =
      store->analytics().CheckConsistency(false);
  REQUIRE(consistent.ok());
  CHECK(consistent->orphan_turns == 0);
  CHECK(consistent->stale_rollups == 0);
  for (size_t i = 0; i < d.secrets.size(); ++i) {
    INFO("key " << i);
    // The keys present are the first ones created.
    CHECK(store->keys().ValidateKey(d.secrets[i], "chat:write").ok() ==
          (static_cast<int64_t>(i) < st.keys));
  }
  return st;
}

void CheckAfterCut(const Options& o, const Done& d, SyncMode mode) {
  CHECK(crash_test::IntegrityCheck(o.path) == "ok");
  auto store = OpenOrDie(o);
  const State stored = Stored(store.get(), d);
  const int64_t prefix = PrefixLength(d.ops, stored);
  INFO("ops " << d.ops.size() << ", acknowledged " << d.acked
              << ", surviving prefix " << prefix);
  if (std::getenv("POWER_LOSS_VERBOSE") != nullptr) {
    std::fprintf(stderr, "ops %zu, acknowledged %zu, surviving %lld\n",
                 d.ops.size(), d.acked, static_cast<long long>(prefix));
  }
  REQUIRE(prefix >= 0);  // one order, no commit without those before it
  if (mode == SyncMode::kFull) {
    CHECK(prefix >= static_cast<int64_t>(d.acked));
  }

  // It takes new writes, and a clean reopen keeps them.
  for (int c = 0; c < kConvs; ++c) {
    StatusOr<AppendResult> a =
        store->Append(ConvId(c), test::Msg(Role::kUser, "after"));
    REQUIRE(a.ok());
    CHECK(a->seq == stored.messages[c] + 1);
  }
  REQUIRE(store->cache()
              .Set("power", CacheKey(0), "after", std::chrono::milliseconds(0))
              .ok());
  REQUIRE(store->Close().ok());
  store = OpenOrDie(o);
  HistoryOptions all;
  all.from_storage = true;
  for (int c = 0; c < kConvs; ++c) {
    const std::vector<MessagePtr> h = test::Hist(store.get(), ConvId(c), all);
    REQUIRE(h.size() ==
            static_cast<size_t>(stored.messages[c] - stored.cut[c] + 1));
    CHECK(h.back()->content == "after");
  }
  StatusOr<std::string> after = store->cache().Get("power", CacheKey(0));
  REQUIRE(after.ok());
  CHECK(*after == "after");
  StatusOr<AuditVerification> again = store->audit().Verify();
  REQUIRE(again.ok());
  CHECK(again->ok);
  REQUIRE(store->Close().ok());
  CHECK(crash_test::IntegrityCheck(o.path) == "ok");
}

FaultVfs* Vfs() {
  StatusOr<FaultVfs*> installed = FaultVfs::Install();
  REQUIRE(installed.ok());
  return *installed;
}

// A store in `dir` on the fault VFS, with `mode`; quiet, since the cut
// makes every write fail.
Options OnFaultVfs(const TempDir& dir, SyncMode mode) {
  Options o = test::TestOptions(dir);
  o.sqlite_vfs = FaultVfs::kName;
  o.sync_mode = mode;
  o.log_level = LogLevel::kOff;
  return o;
}

void CutOnce(uint64_t seed, SyncMode mode, Kept kept) {
  INFO("seed " << seed << ", kept " << static_cast<int>(kept));
  FaultVfs* vfs = Vfs();
  UnsyncedWrites unsynced;
  Recording recording(vfs, &unsynced);

  TempDir dir;
  Options o = OnFaultVfs(dir, mode);
  o.max_flush_delay = std::chrono::milliseconds(1);
  // Checkpoints, WAL restarts and index merges within a short run.
  o.wal_autocheckpoint_pages = 16;
  o.journal_size_limit = 64 << 10;
  o.index_merge_rows = 64;

  std::mt19937_64 rng(seed);
  const size_t cut_at = 50 + rng() % 1500;
  Done d;
  {
    auto store = OpenOrDie(o);
    d = RunUntilCut(store.get(), vfs, &rng, cut_at);
    // Whatever Close says: the disk is gone. It must not hang or crash.
    (void)store->Close(std::chrono::milliseconds(50));
  }
  const size_t pending = unsynced.pending();
  INFO(pending << " changes not synced at the cut");
  std::bernoulli_distribution half(0.5);
  std::map<std::string, size_t> prefix_of;  // per file, for kPrefix
  REQUIRE(unsynced
              .Rewind([&](const std::string& path, size_t i) {
                switch (kept) {
                  case Kept::kNone:
                    return false;
                  case Kept::kSome:
                    return half(rng);
                  case Kept::kPrefix: {
                    auto it = prefix_of.find(path);
                    if (it == prefix_of.end()) {
                      it = prefix_of.emplace(path, rng() % 64).first;
                    }
                    return i < it->second;
                  }
                }
                return false;
              })
              .ok());
  vfs->Reset();

  Options plain = o;
  plain.sqlite_vfs.clear();
  plain.log_level = LogLevel::kError;
  CheckAfterCut(plain, d, mode);
}

uint64_t Seed(int i) {
  return static_cast<uint64_t>(Catch::rngSeed()) * 1000003u +
         static_cast<uint64_t>(i);
}

TEST_CASE("power loss with SyncMode::kFull keeps every acknowledged write",
          "[power_loss]") {
  for (int i = 0; i < 6; ++i) {
    CutOnce(Seed(i), SyncMode::kFull, static_cast<Kept>(i % 3));
  }
}

TEST_CASE("power loss with SyncMode::kNormal leaves a sound prefix",
          "[power_loss]") {
  for (int i = 0; i < 6; ++i) {
    CutOnce(Seed(100 + i), SyncMode::kNormal, static_cast<Kept>(i % 3));
  }
}

TEST_CASE("power loss cut 60 times at random", "[power_loss][slow]") {
  for (int i = 0; i < 60; ++i) {
    CutOnce(Seed(1000 + i), i % 2 == 0 ? SyncMode::kFull : SyncMode::kNormal,
            static_cast<Kept>(i % 3));
  }
}

// Erasure across a power cut: once TruncateWal (or Close) has returned OK,
// the WAL's old frames, which hold what a delete removed, must not come
// back with a cut that takes back every write no fsync covered.
TEST_CASE("a WAL truncated for erasure stays truncated after a power cut",
          "[power_loss]") {
  const bool by_close = GENERATE(false, true);
  INFO((by_close ? "Close" : "TruncateWal"));
  FaultVfs* vfs = Vfs();
  UnsyncedWrites unsynced;
  Recording recording(vfs, &unsynced);
  TempDir dir;
  const Options o = OnFaultVfs(dir, SyncMode::kFull);
  {
    auto store = OpenOrDie(o);
    for (int i = 0; i < 200; ++i) {
      const std::string n = std::to_string(i);
      REQUIRE(store->Append("erased", test::Msg(Role::kUser, "ERASEDTAG-" + n))
                  .ok());
      REQUIRE(
          store->Append("kept", test::Msg(Role::kUser, "KEPTTAG-" + n)).ok());
    }
    REQUIRE(store->Flush().ok());
    StatusOr<uint64_t> del = store->DeleteConversation("erased");
    REQUIRE(del.ok());
    REQUIRE(store->WaitDurable(*del).ok());
    if (by_close) {
      StatusOr<CloseReport> closed = store->Close();
      REQUIRE(closed.ok());
      REQUIRE(closed->wal_truncated);
    } else {
      REQUIRE(store->TruncateWal().ok());
    }
    vfs->CutPower();
    (void)store->Close(std::chrono::milliseconds(50));
  }
  REQUIRE(
      unsynced.Rewind([](const std::string&, size_t) { return false; }).ok());
  vfs->Reset();
  // The WAL only: the main file may keep stale copies of deleted cells in
  // the unallocated middle of a page SQLite rebuilt when it moved cells,
  // which secure_delete does not zero (docs/durability.md, "Erasure"; with
  // small commits on a loaded machine, about 1 run in 12 here).
  const std::vector<std::string> holding =
      test::FilesContaining(dir, "ERASEDTAG");
  std::string names;
  for (const std::string& f : holding) names += f + " ";
  INFO("files holding the deleted content: " << names);
  CHECK(std::count(holding.begin(), holding.end(), "test.db-wal") == 0);
  // The scan finds what was kept, so an empty result above means something.
  CHECK(test::FilesContaining(dir, "KEPTTAG-199") ==
        std::vector<std::string>{"test.db"});
  CHECK(crash_test::IntegrityCheck(o.path) == "ok");
}

}  // namespace
}  // namespace convstore
