// Copyright 2026 The convstore Authors.
//
// Several processes on one file (issue 4). The parent forks kProcs children
// that all open the same fresh file at the same moment; each runs
// kThreads threads, each thread owning kConvs conversations that only it
// appends to. After every Flush() that returned OK a thread publishes how
// many messages of each of its conversations are durable, in a shared
// memory block the parent mapped before forking. Threads also read other
// processes' conversations with HistoryOptions::from_storage: a read must
// see at least what the owner had published before the read began, as a
// gap-free prefix of what the owner generated.
//
// Checked: no call in any child fails (in particular no "database is
// locked" / Unavailable reaches a caller), every child exits 0, and the
// parent, reopening the file, finds every conversation to be exactly the
// sequence its owner reported flushed, with PRAGMA integrity_check "ok".
//
// The children use no Catch2 macros and leave with _exit.

#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::TempDir;

constexpr int kProcs = 4;
constexpr int kThreads = 2;
constexpr int kConvs = 4;  // per thread
constexpr int64_t kT0 = 1'650'000'000'000'000;

// Lives in a MAP_SHARED anonymous mapping: lock-free atomics are
// address-free, so they work across the fork.
struct Shared {
  std::atomic<int64_t> durable[kProcs][kThreads][kConvs];
  std::atomic<int> ready;
  std::atomic<int> go;
  std::atomic<int64_t> failures;
  std::atomic<int64_t> busy;  // failures that were Unavailable / locked
  std::atomic<int64_t> appends;
  std::atomic<int64_t> flushes;
  std::atomic<int64_t> foreign_reads;
  std::atomic<int64_t> foreign_messages_checked;
  std::atomic<int> error_claimed;
  char first_error[512];
};
static_assert(std::atomic<int64_t>::is_always_lock_free);

std::string ConvId(int p, int t, int c) {
  return "p" + std::to_string(p) + "-t" + std::to_string(t) + "-c" +
         std::to_string(c);
}

Message Generate(int p, int t, int c, int64_t seq) {
  Message m;
  m.role = seq % 2 == 1 ? Role::kUser : Role::kAssistant;
  m.content = ConvId(p, t, c) + "/" + std::to_string(seq) + "/" +
              std::string(static_cast<size_t>((seq * 37) % 300), 'x');
  m.user_id = "user" + std::to_string(p);
  m.tokens_in = seq % 50;
  m.tokens_out = seq % 7;
  m.created_at_us = kT0 + seq;
  return m;
}

// Empty when `got` is exactly messages 1..got.size() of the generator.
std::string CheckSequence(int p, int t, int c,
                          const std::vector<MessagePtr>& got) {
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t seq = static_cast<int64_t>(i) + 1;
    const Message want = Generate(p, t, c, seq);
    const Message& m = *got[i];
    if (m.seq != seq || m.content != want.content || m.role != want.role ||
        m.user_id != want.user_id || m.tokens_in != want.tokens_in ||
        m.tokens_out != want.tokens_out ||
        m.created_at_us != want.created_at_us) {
      return ConvId(p, t, c) + ": message " + std::to_string(i) + " has seq " +
             std::to_string(m.seq) + ", content '" + m.content.substr(0, 40) +
             "'";
    }
  }
  return std::string();
}

void Fail(Shared* sh, const std::string& what, const Status& s) {
  sh->failures.fetch_add(1);
  if (s.IsUnavailable() || s.message().find("locked") != std::string::npos ||
      s.message().find("busy") != std::string::npos) {
    sh->busy.fetch_add(1);
  }
  if (sh->error_claimed.exchange(1) == 0) {
    std::snprintf(sh->first_error, sizeof(sh->first_error), "%s: %s",
                  what.c_str(), s.ToString().c_str());
  }
}

void ChildThread(Store* store, Shared* sh, int p, int t, uint64_t seed,
                 std::chrono::steady_clock::time_point deadline) {
  std::mt19937_64 rng(seed);
  int64_t appended[kConvs] = {};
  auto append = [&](int c) {
    const int64_t seq = appended[c] + 1;
    StatusOr<AppendResult> r =
        store->Append(ConvId(p, t, c), Generate(p, t, c, seq));
    if (!r.ok()) {
      Fail(sh, "append " + ConvId(p, t, c), r.status());
      return false;
    }
    if (r->seq != seq) {
      Fail(sh, "append " + ConvId(p, t, c),
           Status::Internal("seq " + std::to_string(r->seq) + " expected " +
                            std::to_string(seq)));
      return false;
    }
    appended[c] = seq;
    sh->appends.fetch_add(1);
    return true;
  };
  auto flush = [&]() {
    Status s = store->Flush();
    if (!s.ok()) {
      Fail(sh, "flush", s);
      return false;
    }
    sh->flushes.fetch_add(1);
    for (int c = 0; c < kConvs; ++c) {
      sh->durable[p][t][c].store(appended[c], std::memory_order_release);
    }
    return true;
  };
  for (int c = 0; c < kConvs; ++c) {
    if (!append(c)) return;
  }
  if (!flush()) return;
  while (std::chrono::steady_clock::now() < deadline) {
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int k = 0; k < n; ++k) {
      if (!append(static_cast<int>(rng() % kConvs))) return;
    }
    if (rng() % 2 == 0 && !flush()) return;
    // Read another process's conversation.
    const int q = (p + 1 + static_cast<int>(rng() % (kProcs - 1))) % kProcs;
    const int qt = static_cast<int>(rng() % kThreads);
    const int qc = static_cast<int>(rng() % kConvs);
    const int64_t floor =
        sh->durable[q][qt][qc].load(std::memory_order_acquire);
    HistoryOptions h;
    h.from_storage = true;
    StatusOr<std::vector<MessagePtr>> got =
        store->History(ConvId(q, qt, qc), h);
    if (!got.ok()) {
      Fail(sh, "history " + ConvId(q, qt, qc), got.status());
      return;
    }
    if (static_cast<int64_t>(got->size()) < floor) {
      Fail(sh, "history " + ConvId(q, qt, qc),
           Status::Internal("saw " + std::to_string(got->size()) +
                            " messages, the owner had reported " +
                            std::to_string(floor) + " durable"));
      return;
    }
    std::string bad = CheckSequence(q, qt, qc, *got);
    if (!bad.empty()) {
      Fail(sh, "history", Status::Corruption(bad));
      return;
    }
    sh->foreign_reads.fetch_add(1);
    sh->foreign_messages_checked.fetch_add(static_cast<int64_t>(got->size()));
  }
  flush();
}

// Runs in the child; never returns.
[[noreturn]] void Child(const std::string& path, Shared* sh, int p,
                        double seconds, uint64_t seed) {
  sh->ready.fetch_add(1);
  while (sh->go.load() == 0) std::this_thread::yield();
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(2);
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(o);
  if (!opened.ok()) {
    Fail(sh, "open in child " + std::to_string(p), opened.status());
    ::_exit(2);
  }
  std::unique_ptr<Store> store = std::move(opened).value();
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(ChildThread, store.get(), sh, p, t,
                         seed * 1000 + static_cast<uint64_t>(t), deadline);
  }
  for (std::thread& th : threads) th.join();
  StatusOr<CloseReport> closed = store->Close();
  if (!closed.ok()) {
    Fail(sh, "close", closed.status());
    ::_exit(3);
  }
  ::_exit(sh->failures.load() == 0 ? 0 : 4);
}

std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string out = "cannot open";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close_v2(db);
  return out;
}

struct Totals {
  int64_t appends = 0;
  int64_t verified = 0;
  int64_t foreign_reads = 0;
};

// kProcs children open a fresh file at the same moment and run for
// `seconds`; then the parent verifies. Returns what was done.
Totals RunProcesses(double seconds, uint64_t seed) {
  TempDir dir;
  const std::string path = dir.File("shared.db");
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  Shared* sh = new (mem) Shared();

  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) Child(path, sh, p, seconds, seed + static_cast<uint64_t>(p));
    pids.push_back(pid);
  }
  // Release them together so the fresh file is created and migrated by
  // all four at once.
  const auto wait_until =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (sh->ready.load() < kProcs &&
         std::chrono::steady_clock::now() < wait_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  sh->go.store(1);
  for (int p = 0; p < kProcs; ++p) {
    int status = 0;
    REQUIRE(::waitpid(pids[static_cast<size_t>(p)], &status, 0) ==
            pids[static_cast<size_t>(p)]);
    INFO("child " << p << " first error: " << sh->first_error);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  INFO("first error: " << sh->first_error);
  CHECK(sh->failures.load() == 0);
  CHECK(sh->busy.load() == 0);
  CHECK(sh->foreign_reads.load() > 0);

  Totals totals;
  totals.appends = sh->appends.load();
  totals.foreign_reads = sh->foreign_reads.load();
  CHECK(IntegrityCheck(path) == "ok");
  {
    Options o;
    o.path = path;
    o.log_level = LogLevel::kOff;
    o.warm_conversations = 0;
    auto store = test::OpenOrDie(o);
    for (int p = 0; p < kProcs; ++p) {
      for (int t = 0; t < kThreads; ++t) {
        for (int c = 0; c < kConvs; ++c) {
          const int64_t want = sh->durable[p][t][c].load();
          INFO(ConvId(p, t, c) << " reported " << want << " flushed");
          HistoryOptions h;
          h.from_storage = true;
          std::vector<MessagePtr> got =
              test::Hist(store.get(), ConvId(p, t, c), h);
          // The last Flush of every thread ran after its last Append, so
          // the file holds exactly what was reported, nothing more.
          CHECK(static_cast<int64_t>(got.size()) == want);
          CHECK(CheckSequence(p, t, c, got).empty());
          totals.verified += static_cast<int64_t>(got.size());
        }
      }
    }
    ListOptions lo;
    lo.limit = 1000;
    StatusOr<ConversationPage> page = store->ListConversations(lo);
    REQUIRE(page.ok());
    CHECK(page->conversations.size() ==
          static_cast<size_t>(kProcs * kThreads * kConvs));
    REQUIRE(store->Close().ok());
  }
  CHECK(totals.verified == totals.appends);
  std::printf(
      "multiprocess: %d processes x %d threads x %.0f s: %lld appends, "
      "%lld flushes, %lld foreign reads (%lld messages checked), %lld "
      "messages verified after reopen\n",
      kProcs, kThreads, seconds, static_cast<long long>(totals.appends),
      static_cast<long long>(sh->flushes.load()),
      static_cast<long long>(totals.foreign_reads),
      static_cast<long long>(sh->foreign_messages_checked.load()),
      static_cast<long long>(totals.verified));
  sh->~Shared();
  ::munmap(mem, sizeof(Shared));
  return totals;
}

TEST_CASE("4 processes x 2 threads on one file for 5 s", "[multiprocess]") {
  Totals t = RunProcesses(5.0, 1);
  CHECK(t.appends > 0);
}

TEST_CASE("4 processes x 2 threads on one file for 30 s",
          "[multiprocess][slow]") {
  Totals t = RunProcesses(30.0, 2);
  CHECK(t.appends > 0);
}

// The race of several processes creating and migrating the same fresh
// file: all of them must open it, none may see "table already exists" or
// "database is locked".
TEST_CASE("Simultaneous Open of a fresh file by 4 processes, 15 rounds",
          "[multiprocess]") {
  TempDir dir;
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  for (int round = 0; round < 15; ++round) {
    INFO("round " << round);
    Shared* sh = new (mem) Shared();
    const std::string path = dir.File("fresh_" + std::to_string(round) + ".db");
    std::vector<pid_t> pids;
    for (int p = 0; p < kProcs; ++p) {
      const pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        sh->ready.fetch_add(1);
        while (sh->go.load() == 0) {
        }
        Options o;
        o.path = path;
        o.log_level = LogLevel::kOff;
        StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
        if (!s.ok()) {
          Fail(sh, "open", s.status());
          ::_exit(2);
        }
        Status a = (*s)->Append(ConvId(p, 0, 0), Generate(p, 0, 0, 1)).status();
        if (!a.ok()) {
          Fail(sh, "append", a);
          ::_exit(3);
        }
        StatusOr<CloseReport> c = (*s)->Close();
        if (!c.ok()) {
          Fail(sh, "close", c.status());
          ::_exit(4);
        }
        ::_exit(0);
      }
      pids.push_back(pid);
    }
    while (sh->ready.load() < kProcs) std::this_thread::yield();
    sh->go.store(1);
    for (pid_t pid : pids) {
      int status = 0;
      REQUIRE(::waitpid(pid, &status, 0) == pid);
      INFO("first error: " << sh->first_error);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK(sh->failures.load() == 0);
    CHECK(IntegrityCheck(path) == "ok");
    Options o;
    o.path = path;
    o.log_level = LogLevel::kOff;
    auto store = test::OpenOrDie(o);
    for (int p = 0; p < kProcs; ++p) {
      std::vector<MessagePtr> got = test::Hist(store.get(), ConvId(p, 0, 0));
      CHECK(got.size() == 1);
      CHECK(CheckSequence(p, 0, 0, got).empty());
    }
    REQUIRE(store->Close().ok());
    sh->~Shared();
  }
  ::munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace convstore
