// Copyright 2026 The convstore Authors.
//
// Crash survival: a child process appends to many conversations (and now
// and then deletes one), calling Flush() at checkpoints; after each Flush
// that returned OK it reports, through a pipe, how many messages of each
// conversation that Flush acknowledged. The parent SIGKILLs the child at a
// random moment, reopens the database and checks the durability contract:
//  * every message acknowledged by a completed Flush is there;
//  * each conversation is a gap-free prefix (seq 1..k) of what the
//    deterministic generator appended, field by field, and never mixes
//    messages from before and after a delete;
//  * summaries agree with the messages, and PRAGMA integrity_check is ok;
//  * the unflushed loss stays within the stated count window: of what
//    Append had acknowledged by the child's last report, at most
//    queue_max_items writes are missing.
//
// The child uses no Catch2 macros and leaves with _exit.

#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "crash_testutil.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::OpenOrDie;
using test::TempDir;

constexpr int kConvs = 50;
// Conversations 0..kDeletable-1 are sometimes deleted by the child; the
// others only grow, so for them every acknowledged message must be present.
constexpr int kDeletable = 5;
constexpr uint32_t kMagic = 0xC0FFEE01;
constexpr int kMaxRounds = 100000;  // the child is killed long before
constexpr int64_t kT0 = 1'600'000'000'000'000;

// The child's queue bound: the count part of the loss window.
constexpr size_t kQueueMaxItems = 256;

// One report, written after every round: what Append had acknowledged so
// far, and whether a Flush() that returned OK covers it. Smaller than
// PIPE_BUF, so a write is atomic and the parent never sees half of one.
struct Ack {
  uint32_t magic = kMagic;
  uint32_t round = 0;
  uint32_t flushed = 0;  // 1: a completed Flush acknowledged all of it
  std::array<uint32_t, kConvs> count{};  // messages of the current epoch
  std::array<uint32_t, kConvs> epoch{};  // deletes so far
};
static_assert(sizeof(Ack) <= PIPE_BUF);

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string ConvId(int c) { return "conv-" + std::to_string(c); }

// The message the child appends as `seq` of conversation `c` in `epoch`.
Message Generate(uint64_t seed, int c, uint32_t epoch, int64_t seq) {
  const uint64_t h = Mix(seed ^ Mix(static_cast<uint64_t>(c) << 40 ^
                                    static_cast<uint64_t>(epoch) << 32 ^
                                    static_cast<uint64_t>(seq)));
  Message m;
  static constexpr Role kRoles[] = {Role::kUser, Role::kAssistant, Role::kTool,
                                    Role::kAssistant};
  m.role = seq == 1 && c % 3 == 0 ? Role::kSystem : kRoles[h % 4];
  m.content = "c" + std::to_string(c) + "/e" + std::to_string(epoch) + "/s" +
              std::to_string(seq) + "/" +
              std::string(static_cast<size_t>((h >> 8) % 300),
                          static_cast<char>('a' + (h >> 20) % 26)) +
              " ✓ ünïcode";
  m.user_id = "user" + std::to_string(c % 7);
  m.tokens_in = static_cast<int64_t>((h >> 24) % 100);
  m.tokens_out = static_cast<int64_t>((h >> 32) % 100);
  if (m.role == Role::kTool || (h >> 40) % 3 == 0) {
    m.tool_call_id = "call-" + std::to_string((h >> 44) % 1000);
    m.tool_name = "tool" + std::to_string((h >> 50) % 4);
  }
  if ((h >> 54) % 5 == 0) {
    m.metadata = "{\"h\":" + std::to_string(h % 100000) + "}";
  }
  m.created_at_us = kT0 + seq * 1000 + epoch;
  m.seq = seq;
  return m;
}

// Runs in the child; never returns.
[[noreturn]] void CrashChild(const std::string& path, uint64_t seed, int fd) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(2);  // commits in between too
  o.queue_max_items = kQueueMaxItems;
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(o);
  if (!opened.ok()) {
    std::fprintf(stderr, "crash child: open: %s\n",
                 opened.status().ToString().c_str());
    ::_exit(2);
  }
  std::unique_ptr<Store> store = std::move(opened).value();
  std::mt19937_64 rng(seed);
  Ack ack;
  for (int round = 0; round < kMaxRounds; ++round) {
    const int n = 1 + static_cast<int>(rng() % 120);
    for (int k = 0; k < n; ++k) {
      const int c = static_cast<int>(rng() % kConvs);
      if (c < kDeletable && rng() % 40 == 0) {
        if (!store->DeleteConversation(ConvId(c)).ok()) ::_exit(3);
        ++ack.epoch[c];
        ack.count[c] = 0;
        continue;
      }
      const int64_t seq = static_cast<int64_t>(ack.count[c]) + 1;
      StatusOr<AppendResult> r =
          store->Append(ConvId(c), Generate(seed, c, ack.epoch[c], seq));
      if (!r.ok()) {
        std::fprintf(stderr, "crash child: append: %s\n",
                     r.status().ToString().c_str());
        ::_exit(4);
      }
      if (r->seq != seq) ::_exit(5);
      ++ack.count[c];
    }
    ack.flushed = 0;
    if (rng() % 4 != 0) {  // leave some writes unflushed
      Status s = store->Flush();
      if (!s.ok()) {
        std::fprintf(stderr, "crash child: flush: %s\n", s.ToString().c_str());
        ::_exit(6);
      }
      ack.flushed = 1;
    }
    ack.round = static_cast<uint32_t>(round);
    if (::write(fd, &ack, sizeof(ack)) != static_cast<ssize_t>(sizeof(ack))) {
      ::_exit(7);
    }
  }
  if (!store->Close().ok()) ::_exit(8);
  ::_exit(0);
}

std::string Describe(const Message& m) {
  return "seq=" + std::to_string(m.seq) + " role=" + RoleName(m.role) +
         " content=[" + m.content + "] user=[" + m.user_id +
         "] in=" + std::to_string(m.tokens_in) +
         " out=" + std::to_string(m.tokens_out) + " call=[" + m.tool_call_id +
         "] tool=[" + m.tool_name + "] meta=[" + m.metadata +
         "] at=" + std::to_string(m.created_at_us);
}

// One fork / random kill / reopen / verify cycle.
void CrashOnce(uint64_t seed) {
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.File("crash/store.db");
  std::mt19937_64 rng(Mix(seed));
  const auto delay =
      std::chrono::milliseconds(static_cast<int64_t>(rng() % 600));
  INFO("kill after " << delay.count() << " ms");

  const crash_test::Killed k = crash_test::RunAndKill(
      [&](int fd) { CrashChild(path, seed, fd); }, delay);
  const std::string& buf = k.reports;
  const int status = k.status;
  INFO("child status " << status);
  if (WIFEXITED(status)) {
    REQUIRE(WEXITSTATUS(status) == 0);  // finished every round (unlikely)
  } else {
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
  }

  // The newest flushed report (`acked`) and the newest report of all
  // (`appended`: acknowledged by Append, maybe not yet durable).
  REQUIRE(buf.size() % sizeof(Ack) == 0);
  const size_t records = buf.size() / sizeof(Ack);
  Ack acked;
  Ack appended;
  size_t flushes = 0;
  uint32_t last_round = 0;
  for (size_t i = 0; i < records; ++i) {
    Ack a;
    std::memcpy(&a, buf.data() + i * sizeof(Ack), sizeof(Ack));
    REQUIRE(a.magic == kMagic);
    if (i > 0) REQUIRE(a.round > last_round);
    last_round = a.round;
    appended = a;
    if (a.flushed == 1) {
      acked = a;
      ++flushes;
    }
  }
  INFO(flushes << " acknowledged flushes, last in round " << acked.round << "; "
               << records << " rounds reported");
  if (flushes > 0) REQUIRE(std::filesystem::exists(path));

  Options o = test::TestOptions(dir);
  o.path = path;
  o.warm_conversations = 0;  // every History reads through
  auto store = OpenOrDie(o);
  int64_t total = 0;
  int64_t unflushed_lost = 0;  // acknowledged by Append, not in the file
  std::map<std::string, int64_t> lengths;
  for (int c = 0; c < kConvs; ++c) {
    INFO("conversation " << c << ": acknowledged " << acked.count[c]
                         << " in epoch " << acked.epoch[c]);
    StatusOr<std::vector<MessagePtr>> h = store->History(ConvId(c));
    REQUIRE(h.ok());
    const std::vector<MessagePtr>& got = *h;
    total += static_cast<int64_t>(got.size());
    if (!got.empty()) lengths[ConvId(c)] = static_cast<int64_t>(got.size());
    uint32_t epoch = 0;
    if (!got.empty()) {
      REQUIRE(std::sscanf(got[0]->content.c_str(), "c%*d/e%" SCNu32 "/",
                          &epoch) == 1);
    }
    if (c >= kDeletable) {
      REQUIRE(epoch == 0);
      CHECK(got.size() >= acked.count[c]);
      unflushed_lost +=
          std::max<int64_t>(0, static_cast<int64_t>(appended.count[c]) -
                                   static_cast<int64_t>(got.size()));
    } else if (!got.empty()) {
      // Never older than the acknowledged delete; the acknowledged epoch
      // keeps every acknowledged message.
      CHECK(epoch >= acked.epoch[c]);
      if (epoch == acked.epoch[c]) CHECK(got.size() >= acked.count[c]);
    }
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("message " << i);
      REQUIRE(got[i]->seq == static_cast<int64_t>(i) + 1);
      CHECK(Describe(*got[i]) ==
            Describe(Generate(seed, c, epoch, static_cast<int64_t>(i) + 1)));
    }
  }
  // The count part of the loss window (docs/durability.md): what was lost
  // of the acknowledged appends fits in the queue bound.
  INFO("acknowledged by Append but lost: " << unflushed_lost);
  CHECK(unflushed_lost <= static_cast<int64_t>(kQueueMaxItems));
  // Summaries agree with the messages.
  ListOptions lo;
  lo.limit = 1000;
  StatusOr<ConversationPage> page = store->ListConversations(lo);
  REQUIRE(page.ok());
  std::map<std::string, int64_t> listed;
  for (const ConversationInfo& info : page->conversations) {
    listed[info.conversation_id] = info.message_count;
    CHECK(info.last_seq == info.message_count);
  }
  CHECK(listed == lengths);
  Stats st = store->GetStats();
  CHECK(st.db_messages == static_cast<uint64_t>(total));
  REQUIRE(store->Close().ok());
  store.reset();

  int64_t rows = -1;
  CHECK(crash_test::IntegrityCheck(path, "SELECT count(*) FROM messages",
                                   &rows) == "ok");
  CHECK(rows == total);
}

uint64_t BaseSeed() {
  return Mix(static_cast<uint64_t>(Catch::rngSeed()) * 1000003u + 17);
}

TEST_CASE("SIGKILL at a random moment keeps every flushed message", "[crash]") {
  const uint64_t base = BaseSeed();
  for (int i = 0; i < 25; ++i) {
    INFO("iteration " << i);
    CrashOnce(Mix(base + static_cast<uint64_t>(i)));
  }
}

TEST_CASE("SIGKILL at a random moment, 200 iterations", "[crash][slow]") {
  const uint64_t base = BaseSeed() ^ 0xabcdef;
  for (int i = 0; i < 200; ++i) {
    INFO("iteration " << i);
    CrashOnce(Mix(base + static_cast<uint64_t>(i)));
  }
}

}  // namespace
}  // namespace convstore
