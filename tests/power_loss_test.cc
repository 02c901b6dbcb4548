// Copyright 2026 The convstore Authors.
//
// Power loss (docs/durability.md, "Power loss"), simulated in one process:
// the fault VFS records every change to the database and its WAL that no
// fsync has covered yet (src/sqlite/unsynced_writes.h); at a random moment
// of a workload of appends (over conversations, with Flushes) and audit
// records, the power is cut (every later write fails), the store is
// closed, and the files are put back the way a disk may hold them after
// the cut: their last fsynced state plus none, some (chosen at random) or
// a prefix of the writes that followed. Then the file is reopened with the
// ordinary VFS and must hold:
//  * a sound database (PRAGMA integrity_check) that the store opens;
//  * an LSN prefix of what was acknowledged: each conversation a gap-free
//    prefix of its appends, the audit chain verifiable with the workload's
//    records 1..m, and all of them together a prefix of the workload's one
//    order (no commit survives without the ones before it);
//  * with SyncMode::kFull, everything a Flush or a sync audit Record
//    returned OK for (with kNormal those may roll back: the contract);
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
constexpr int kAuditTarget = -1;  // an op that records an audit event

std::string ConvId(int c) { return "power-" + std::to_string(c); }

std::string Content(int c, int64_t seq) {
  return "c" + std::to_string(c) + "/s" + std::to_string(seq) + "/" +
         std::string(static_cast<size_t>(40 + (c * 37 + seq * 11) % 300),
                     static_cast<char>('a' + (c + seq) % 26));
}

// Which unsynced writes the disk kept.
enum class Kept { kNone, kSome, kPrefix };

// What the workload did before the cut: the order of its ops (a
// conversation index, or kAuditTarget), and how many of them a Flush or a
// sync Record had acknowledged as committed.
struct Done {
  std::vector<int> ops;
  size_t acked = 0;
};

Done RunUntilCut(Store* store, FaultVfs* vfs, std::mt19937_64* rng,
                 size_t cut_at) {
  Done d;
  std::vector<int64_t> count(kConvs, 0);
  uint32_t audits = 0;
  while (d.ops.size() < cut_at) {
    const uint64_t r = (*rng)() % 100;
    if (r < 3) {
      AuditEvent e;
      e.actor = "power";
      e.action = "power.record";
      e.resource = "rec-" + std::to_string(++audits);
      e.outcome = "success";
      d.ops.push_back(kAuditTarget);
      // kSync: committed when it returns OK.
      if (store->audit().Record(e).ok()) d.acked = d.ops.size();
      continue;
    }
    const int c = static_cast<int>((*rng)() % kConvs);
    const int64_t seq = ++count[c];
    Message m = test::Msg(Role::kUser, Content(c, seq));
    m.created_at_us = 1'600'000'000'000'000 + seq;
    StatusOr<AppendResult> a = store->Append(ConvId(c), m);
    REQUIRE(a.ok());
    REQUIRE(a->seq == seq);
    d.ops.push_back(c);
    if (r < 8 && store->Flush().ok()) d.acked = d.ops.size();
  }
  vfs->CutPower();
  return d;
}

// The number of ops from the start of `ops` that the stored counts
// (messages per conversation, audit records) are a prefix of, or -1 if
// they are not the ops of any one prefix.
int64_t PrefixLength(const std::vector<int>& ops,
                     const std::vector<int64_t>& stored, int64_t audits) {
  std::vector<int64_t> seen(kConvs, 0);
  int64_t seen_audits = 0;
  auto matches = [&] { return seen == stored && seen_audits == audits; };
  for (size_t i = 0; i < ops.size(); ++i) {
    if (matches()) return static_cast<int64_t>(i);
    if (ops[i] == kAuditTarget) {
      ++seen_audits;
    } else {
      ++seen[ops[i]];
    }
  }
  return matches() ? static_cast<int64_t>(ops.size()) : -1;
}

void CheckAfterCut(const Options& o, const Done& d, SyncMode mode) {
  CHECK(crash_test::IntegrityCheck(o.path) == "ok");
  auto store = OpenOrDie(o);
  std::vector<int64_t> stored(kConvs, 0);
  HistoryOptions all;
  all.from_storage = true;
  for (int c = 0; c < kConvs; ++c) {
    INFO("conversation " << c);
    const std::vector<MessagePtr> h = test::Hist(store.get(), ConvId(c), all);
    for (size_t i = 0; i < h.size(); ++i) {
      REQUIRE(h[i]->seq == static_cast<int64_t>(i + 1));  // gap-free prefix
      CHECK(h[i]->content == Content(c, h[i]->seq));
    }
    stored[c] = static_cast<int64_t>(h.size());
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
  const auto audits = static_cast<int64_t>(records.size());

  const int64_t prefix = PrefixLength(d.ops, stored, audits);
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
    CHECK(a->seq == stored[c] + 1);
  }
  REQUIRE(store->Close().ok());
  store = OpenOrDie(o);
  for (int c = 0; c < kConvs; ++c) {
    const std::vector<MessagePtr> h = test::Hist(store.get(), ConvId(c), all);
    REQUIRE(h.size() == static_cast<size_t>(stored[c] + 1));
    CHECK(h.back()->content == "after");
  }
  StatusOr<AuditVerification> again = store->audit().Verify();
  REQUIRE(again.ok());
  CHECK(again->ok);
  REQUIRE(store->Close().ok());
  CHECK(crash_test::IntegrityCheck(o.path) == "ok");
}

void CutOnce(uint64_t seed, SyncMode mode, Kept kept) {
  INFO("seed " << seed << ", kept " << static_cast<int>(kept));
  StatusOr<FaultVfs*> installed = FaultVfs::Install();
  REQUIRE(installed.ok());
  FaultVfs* vfs = *installed;
  vfs->Reset();
  UnsyncedWrites unsynced;
  vfs->RecordUnsynced(&unsynced);

  TempDir dir;
  Options o = test::TestOptions(dir);
  o.sqlite_vfs = FaultVfs::kName;
  o.sync_mode = mode;
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.log_level = LogLevel::kOff;  // the cut makes every write fail
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

}  // namespace
}  // namespace convstore
