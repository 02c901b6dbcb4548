// Copyright 2026 The convstore Authors.
//
// Store::PruneMessages: the count and age rules, the first system message,
// batching, memory and disk agreeing, restart, and bad options.

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "backend_testutil.h"
#include "clock.h"
#include "forwarding_backend.h"
#include "sqlite_testutil.h"
#include "store_impl.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::Contents;
using test::Hist;
using test::Msg;
using test::OpenOrDie;
using test::Seqs;
using test::TempDir;
using test::TestOptions;
using V = std::vector<int64_t>;

constexpr int64_t kHourUs = 3'600'000'000;

// A system prompt then `n` user/assistant messages, created `age_hours` ago.
void Fill(Store* store, const std::string& id, int n, int64_t age_hours = 0) {
  const int64_t at = internal::WallMicros() - age_hours * kHourUs;
  Message sys = Msg(Role::kSystem, "prompt of " + id);
  sys.created_at_us = at;
  REQUIRE(store->Append(id, sys).ok());
  for (int i = 0; i < n; ++i) {
    Message m = Msg(i % 2 == 0 ? Role::kUser : Role::kAssistant,
                    id + " #" + std::to_string(i), 3, 4);
    m.created_at_us = at + i;
    REQUIRE(store->Append(id, m).ok());
  }
}

HistoryOptions FromStorage() {
  HistoryOptions o;
  o.from_storage = true;
  return o;
}

// Small merges so that the rows a run removes are both merged into
// message_index and not yet (in the in-memory overlay); with a large
// `merge_rows`, all of them are unmerged.
Options RetentionOptions(const TempDir& dir, size_t merge_rows = 7) {
  Options o = TestOptions(dir);
  o.index_merge_rows = merge_rows;
  return o;
}

TEST_CASE("the count rule keeps the newest messages and the system prompt",
          "[retention]") {
  const size_t merge_rows = GENERATE(size_t{7}, size_t{1'000'000});
  INFO("index_merge_rows " << merge_rows);
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir, merge_rows));
  Fill(store.get(), "long", 9);   // seqs 1 (system) .. 10
  Fill(store.get(), "short", 3);  // seqs 1 .. 4: within the limit
  REQUIRE(store->Flush().ok());

  MessageRetention r;
  r.max_messages_per_conversation = 4;
  auto report = store->PruneMessages(r);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 5);  // seqs 2..6
  CHECK(report->conversations_touched == 1);

  CHECK(Seqs(Hist(store.get(), "long", FromStorage())) == V{1, 7, 8, 9, 10});
  // Memory agrees with the disk.
  CHECK(Seqs(Hist(store.get(), "long")) == V{1, 7, 8, 9, 10});
  HistoryOptions last3;
  last3.last_n = 3;
  // The kept prompt is pinned in front of a cut window, as before.
  CHECK(Seqs(Hist(store.get(), "long", last3)) == V{1, 8, 9, 10});
  CHECK(Seqs(Hist(store.get(), "short")) == V{1, 2, 3, 4});

  // Appending goes on after the removal, with the next seq.
  auto next = store->Append("long", Msg(Role::kUser, "after"));
  REQUIRE(next.ok());
  CHECK(next->seq == 11);

  // A second run removes only what the new message pushed out.
  report = store->PruneMessages(r);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 1);
  CHECK(Seqs(Hist(store.get(), "long", FromStorage())) == V{1, 8, 9, 10, 11});

  // Summaries count every message appended; Stats counts what is stored.
  auto page = store->ListConversations();
  REQUIRE(page.ok());
  for (const ConversationInfo& info : page->conversations) {
    if (info.conversation_id == "long") {
      CHECK(info.message_count == 11);
      CHECK(info.last_seq == 11);
    }
  }
  CHECK(store->GetStats().db_messages == 5 + 4);
  REQUIRE(store->Close().ok());
}

TEST_CASE("the age rule removes old messages only", "[retention]") {
  TempDir dir;
  const Options o = RetentionOptions(dir);
  {
    auto store = OpenOrDie(o);
    Fill(store.get(), "old", 6, /*age_hours=*/72);
    Fill(store.get(), "new", 6, /*age_hours=*/1);
    // A conversation whose first part is old and the rest is new.
    Fill(store.get(), "mixed", 4, /*age_hours=*/72);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(store->Append("mixed", Msg(Role::kUser, "fresh")).ok());
    }
    REQUIRE(store->Flush().ok());

    MessageRetention r;
    r.max_age = std::chrono::hours(48);
    r.batch_rows = 3;  // several transactions
    auto report = store->PruneMessages(r);
    INFO(report.status().ToString());
    REQUIRE(report.ok());
    CHECK(report->messages_removed == 6 + 4);
    CHECK(report->conversations_touched == 2);
    CHECK(report->batches == 4);

    CHECK(Seqs(Hist(store.get(), "old")) == V{1});
    CHECK(Seqs(Hist(store.get(), "new")) == V{1, 2, 3, 4, 5, 6, 7});
    CHECK(Seqs(Hist(store.get(), "mixed")) == V{1, 6, 7, 8});
    CHECK(Contents(Hist(store.get(), "mixed", FromStorage()))[1] == "fresh");
    REQUIRE(store->Close().ok());
  }
  // The removal is durable, and the reloaded cache agrees.
  auto store = OpenOrDie(o);
  CHECK(Seqs(Hist(store.get(), "old")) == V{1});
  CHECK(Seqs(Hist(store.get(), "mixed")) == V{1, 6, 7, 8});
  CHECK(Seqs(Hist(store.get(), "new")) == V{1, 2, 3, 4, 5, 6, 7});
  CHECK(store->GetStats().db_messages == 1 + 7 + 4);
  REQUIRE(store->Close().ok());
}

TEST_CASE("keep_first_system = false removes the prompt too", "[retention]") {
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir));
  Fill(store.get(), "c", 5);
  REQUIRE(store->Flush().ok());
  MessageRetention r;
  r.max_messages_per_conversation = 2;
  r.keep_first_system = false;
  auto report = store->PruneMessages(r);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 4);
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{5, 6});
  CHECK(Seqs(Hist(store.get(), "c")) == V{5, 6});
  // The removed prompt is no longer pinned in front of a window.
  HistoryOptions last1;
  last1.last_n = 1;
  CHECK(Seqs(Hist(store.get(), "c", last1)) == V{6});
  HistoryOptions stored_last1 = FromStorage();
  stored_last1.last_n = 1;
  CHECK(Seqs(Hist(store.get(), "c", stored_last1)) == V{6});
  // The next system message appended is the one pinned, in memory and on
  // disk alike.
  REQUIRE(store->Append("c", Msg(Role::kSystem, "new prompt")).ok());
  REQUIRE(store->Append("c", Msg(Role::kUser, "hi")).ok());
  CHECK(Seqs(Hist(store.get(), "c", last1)) == V{7, 8});
  CHECK(Seqs(Hist(store.get(), "c", stored_last1)) == V{7, 8});
  REQUIRE(store->Close().ok());
}

TEST_CASE(
    "keep_first_system = false drops a kept prompt from memory only "
    "if removed",
    "[retention]") {
  // The age rule removes by created_at: a recent prompt at seq 1 stays
  // while older messages after it go. The cache used to drop the pinned
  // prompt whenever its seq was below a removed one.
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir));
  const int64_t now = internal::WallMicros();
  Message sys = Msg(Role::kSystem, "prompt");
  sys.created_at_us = now;
  REQUIRE(store->Append("c", sys).ok());
  for (int i = 0; i < 3; ++i) {
    Message m = Msg(Role::kUser, "old #" + std::to_string(i));
    m.created_at_us = now - 100 * kHourUs;  // seqs 2..4
    REQUIRE(store->Append("c", m).ok());
  }
  REQUIRE(store->Append("c", Msg(Role::kUser, "new")).ok());  // seq 5
  REQUIRE(store->Flush().ok());
  MessageRetention r;
  r.max_age = std::chrono::hours(24);
  r.keep_first_system = false;
  auto report = store->PruneMessages(r);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 3);
  HistoryOptions last1;
  last1.last_n = 1;
  HistoryOptions stored_last1 = FromStorage();
  stored_last1.last_n = 1;
  CHECK(Seqs(Hist(store.get(), "c", stored_last1)) == V{1, 5});
  CHECK(Seqs(Hist(store.get(), "c", last1)) == V{1, 5});
  CHECK(Seqs(Hist(store.get(), "c")) == V{1, 5});
}

TEST_CASE("both rules together remove each message once", "[retention]") {
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir));
  Fill(store.get(), "c", 8, /*age_hours=*/100);  // seqs 1..9, all old
  Fill(store.get(), "d", 8, /*age_hours=*/1);    // seqs 1..9, all new
  REQUIRE(store->Flush().ok());
  MessageRetention r;
  r.max_age = std::chrono::hours(24);
  r.max_messages_per_conversation = 5;
  auto report = store->PruneMessages(r);
  REQUIRE(report.ok());
  // c: everything but the prompt (8); d: seqs 2..4 by count (3).
  CHECK(report->messages_removed == 8 + 3);
  CHECK(report->conversations_touched == 2);
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{1});
  CHECK(Seqs(Hist(store.get(), "d", FromStorage())) == V{1, 5, 6, 7, 8, 9});
  CHECK(store->GetStats().db_messages == 1 + 6);
  REQUIRE(store->Close().ok());
}

TEST_CASE("a deleted conversation stays deleted after retention",
          "[retention]") {
  const size_t merge_rows = GENERATE(size_t{7}, size_t{1'000'000});
  INFO("index_merge_rows " << merge_rows);
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir, merge_rows));
  Fill(store.get(), "gone", 6);
  Fill(store.get(), "kept", 6);
  REQUIRE(store->DeleteConversation("gone").ok());
  MessageRetention r;
  r.max_messages_per_conversation = 3;
  auto report = store->PruneMessages(r);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 3);
  CHECK(Hist(store.get(), "gone", FromStorage()).empty());
  CHECK(Seqs(Hist(store.get(), "kept", FromStorage())) == V{1, 5, 6, 7});
  REQUIRE(store->Close().ok());
}

// User messages with seqs 1..ages.size(), message i created ages[i - 1]
// hours ago (a clock that stepped back, or times the caller set).
void FillAged(Store* store, const std::string& id,
              const std::vector<int64_t>& ages) {
  const int64_t now = internal::WallMicros();
  for (size_t i = 0; i < ages.size(); ++i) {
    Message m = Msg(Role::kUser, id + " #" + std::to_string(i + 1));
    m.created_at_us = now - ages[i] * kHourUs - static_cast<int64_t>(i);
    REQUIRE(store->Append(id, m).ok());
  }
}

TEST_CASE("the count rule counts stored messages across gaps", "[retention]") {
  // The count rule cut at last_seq - N: with a gap among the newest N (here
  // seq 8, removed by an age run) it removed messages it was to keep.
  const size_t merge_rows = GENERATE(size_t{7}, size_t{1'000'000});
  INFO("index_merge_rows " << merge_rows);
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir, merge_rows));
  FillAged(store.get(), "c", {0, 0, 0, 0, 0, 0, 0, 72, 0, 0});
  REQUIRE(store->Flush().ok());
  MessageRetention age;
  age.max_age = std::chrono::hours(48);
  auto report = store->PruneMessages(age);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 1);
  MessageRetention count;
  count.max_messages_per_conversation = 5;
  report = store->PruneMessages(count);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 4);
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{5, 6, 7, 9, 10});
  CHECK(Seqs(Hist(store.get(), "c")) == V{5, 6, 7, 9, 10});
  // Run again: nothing more.
  report = store->PruneMessages(count);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 0);
  REQUIRE(store->Close().ok());
}

TEST_CASE("with both rules, old messages among the newest N still go",
          "[retention]") {
  // The age scan skipped every seq up to last_seq - N as the count rule's;
  // with gaps the count rule had not taken them, and old messages stayed.
  const size_t merge_rows = GENERATE(size_t{7}, size_t{1'000'000});
  INFO("index_merge_rows " << merge_rows);
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir, merge_rows));
  FillAged(store.get(), "c", {30, 30, 72, 72, 72, 72, 72, 0, 0, 0});
  REQUIRE(store->Flush().ok());
  MessageRetention first;
  first.max_age = std::chrono::hours(48);
  auto report = store->PruneMessages(first);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 5);  // seqs 3..7
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{1, 2, 8, 9, 10});
  MessageRetention both;
  both.max_age = std::chrono::hours(24);
  both.max_messages_per_conversation = 5;
  report = store->PruneMessages(both);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 2);
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{8, 9, 10});
  CHECK(Seqs(Hist(store.get(), "c")) == V{8, 9, 10});
  REQUIRE(store->Close().ok());
}

TEST_CASE("after a reload, memory agrees with the disk over retention's gaps",
          "[retention]") {
  // Retention that keeps the first system message leaves a gap behind it
  // ({1, 6, 7, 8} below). A reloaded entry used to cache the gap and then
  // answer after_seq by index arithmetic, and a last_n read-through
  // assumed seqs without gaps.
  const int64_t warm = GENERATE(int64_t{-1}, int64_t{0});
  INFO("warm_conversations " << warm);
  TempDir dir;
  Options o = RetentionOptions(dir);
  o.warm_conversations = warm;
  {
    auto store = OpenOrDie(o);
    Fill(store.get(), "mixed", 4, /*age_hours=*/72);  // seqs 1..5, old
    for (int i = 0; i < 3; ++i) {
      REQUIRE(store->Append("mixed", Msg(Role::kUser, "fresh", 2, 3)).ok());
    }
    Fill(store.get(), "counted", 9);                // seqs 1..10
    Fill(store.get(), "old", 6, /*age_hours=*/72);  // only the prompt stays
    REQUIRE(store->Flush().ok());
    MessageRetention r;
    r.max_age = std::chrono::hours(48);
    REQUIRE(store->PruneMessages(r).ok());
    r = MessageRetention();
    r.max_messages_per_conversation = 4;
    REQUIRE(store->PruneMessages(r).ok());
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  CHECK(Seqs(Hist(store.get(), "mixed", FromStorage())) == V{1, 6, 7, 8});
  CHECK(Seqs(Hist(store.get(), "counted", FromStorage())) == V{1, 7, 8, 9, 10});
  CHECK(Seqs(Hist(store.get(), "old", FromStorage())) == V{1});
  // Appending after the reload continues at last_seq + 1, past the gap.
  auto next = store->Append("old", Msg(Role::kUser, "after the gap"));
  REQUIRE(next.ok());
  CHECK(next->seq == 8);
  CHECK(Seqs(Hist(store.get(), "old", FromStorage())) == V{1, 8});
  std::vector<HistoryOptions> cases;
  for (int64_t after = 0; after <= 11; ++after) {
    HistoryOptions h;
    h.after_seq = after;
    cases.push_back(h);
    for (size_t limit : {1, 2, 3}) {
      h.limit = limit;
      cases.push_back(h);
    }
  }
  for (size_t n = 1; n <= 6; ++n) {
    for (bool pin : {true, false}) {
      HistoryOptions h;
      h.last_n = n;
      h.pin_system = pin;
      cases.push_back(h);
    }
  }
  for (int64_t budget : {1, 5, 10, 20, 100}) {
    HistoryOptions h;
    h.token_budget = budget;
    cases.push_back(h);
  }
  // Twice over: the first pass may read through and prepend, the second
  // answers from what that left in memory.
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string id : {"mixed", "counted", "old"}) {
      for (const HistoryOptions& h : cases) {
        INFO("pass " << pass << ", " << id << ": after_seq " << h.after_seq
                     << ", limit " << h.limit << ", last_n " << h.last_n
                     << ", pin_system " << h.pin_system << ", token_budget "
                     << h.token_budget);
        HistoryOptions disk = h;
        disk.from_storage = true;
        CHECK(Seqs(Hist(store.get(), id, h)) ==
              Seqs(Hist(store.get(), id, disk)));
      }
    }
  }
  REQUIRE(store->Close().ok());
}

TEST_CASE("an age too large to count keeps every message", "[retention]") {
  // hours::max() in microseconds overflows int64: computed naively, the
  // cut-off wrapped to a time in the future and every message went.
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir));
  Fill(store.get(), "c", 4, /*age_hours=*/72);
  REQUIRE(store->Flush().ok());
  for (std::chrono::hours age :
       {std::chrono::hours::max(), std::chrono::hours(3'000'000'000),
        std::chrono::hours(1'000'000'000'000)}) {
    INFO("max_age " << age.count() << " h");
    MessageRetention r;
    r.max_age = age;
    auto report = store->PruneMessages(r);
    INFO(report.status().ToString());
    REQUIRE(report.ok());
    CHECK(report->messages_removed == 0);
  }
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{1, 2, 3, 4, 5});
  // With a count rule alongside, only the count rule removes.
  MessageRetention both;
  both.max_age = std::chrono::hours::max();
  both.max_messages_per_conversation = 2;
  auto report = store->PruneMessages(both);
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 2);
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{1, 4, 5});
  REQUIRE(store->Close().ok());
}

// PRAGMA wal_checkpoint(TRUNCATE) on a connection of its own: true if it
// reset the WAL, which no reader holding a snapshot may be using.
bool TruncateCheckpoint(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  // A first read opens the WAL (before it the connection is not in WAL
  // mode and checkpoints nothing).
  REQUIRE(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  int log = -1;
  int done = -1;
  const int rc = sqlite3_wal_checkpoint_v2(
      db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
  sqlite3_close_v2(db);
  return rc == SQLITE_OK && log == 0;
}

TEST_CASE("no retention snapshot is held while its removals commit",
          "[retention]") {
  // SelectPurgeable used to keep one read transaction over the whole run
  // while `visit` committed the removals: no checkpoint could reset the
  // WAL, which grew by every removal of a large run.
  TempDir dir;
  Options o = internal::backend_test::BackendOptions(dir);
  o.wal_autocheckpoint_pages = 0;  // the WAL keeps the batches below
  o.index_merge_rows = 1'000'000;  // every message stays unmerged
  auto b = internal::backend_test::OpenBackend(o);
  internal::backend_test::BatchBuilder bb;
  constexpr int kConversations = 700;
  constexpr int kPerConversation = 60;  // 42,000 messages: 3 segments
  for (int i = 1; i <= kPerConversation; ++i) {
    for (int c = 0; c < kConversations; ++c) {
      bb.Append("c" + std::to_string(c),
                internal::backend_test::Make(i, Role::kUser, "m", i));
    }
    if (i % 10 == 0) internal::backend_test::RequireCommit(&bb, b.get());
  }
  CHECK(TruncateCheckpoint(o.path));
  for (bool count_rule : {true, false}) {
    INFO((count_rule ? "count rule" : "age rule"));
    internal::PurgeQuery q;
    if (count_rule) q.keep_newest = 30;
    if (!count_rule) q.created_before_us = 40;
    size_t visits = 0;
    size_t rows = 0;
    size_t held = 0;
    Status s = b->SelectPurgeable(q, [&](internal::PurgeCandidates&& c) {
      ++visits;
      rows += c.rows.size();
      // A commit, as the purge the caller submits would be.
      internal::backend_test::BatchBuilder other(1'000'000 + visits);
      other.Append("other-" + std::to_string(visits) + (count_rule ? "c" : "a"),
                   internal::backend_test::Make(1, Role::kUser, "x", 1000));
      internal::backend_test::RequireCommit(&other, b.get());
      if (!TruncateCheckpoint(o.path)) ++held;
      return true;
    });
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(rows == (count_rule ? 30u : 39u) * kConversations);
    CHECK(visits >= kConversations);
    CHECK(held == 0);
  }
  REQUIRE(b->Close().ok());
}

TEST_CASE("a batch the database refuses fails the run and stays in memory",
          "[retention]") {
  TempDir dir;
  Options o = RetentionOptions(dir);
  o.log_level = LogLevel::kOff;
  {
    auto store = OpenOrDie(o);
    Fill(store.get(), "long", 9);  // seqs 1 (system) .. 10
    REQUIRE(store->Close().ok());
  }
  test::RawExec(o.path,
                "CREATE TRIGGER refuse_purge BEFORE DELETE ON messages"
                " WHEN OLD.content = 'long #2'"
                " BEGIN SELECT RAISE(ABORT, 'kept'); END;");
  auto store = OpenOrDie(o);
  REQUIRE(Seqs(Hist(store.get(), "long")).size() == 10);  // cached
  MessageRetention r;
  r.max_messages_per_conversation = 4;
  r.batch_rows = 1;  // seqs 2, 3, then 4 ("long #2") is refused
  auto report = store->PruneMessages(r);
  INFO(report.status().ToString());
  // The refused batch used to count as removed, and the run said OK.
  CHECK_FALSE(report.ok());
  CHECK(store->GetStats().dead_letters == 1);
  const V left{1, 4, 5, 6, 7, 8, 9, 10};
  CHECK(Seqs(Hist(store.get(), "long", FromStorage())) == left);
  // Memory agrees with the disk: the refused message was not dropped.
  CHECK(Seqs(Hist(store.get(), "long")) == left);
}

// Fails every purge with a transient error while `fail` is set.
class FlakyPurgeBackend final : public internal::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  std::atomic<bool> fail{true};
  Status Apply(std::span<const internal::WriteOp> batch) override {
    for (const internal::WriteOp& op : batch) {
      if (fail.load() &&
          std::holds_alternative<internal::PurgeMessagesOp>(op.payload)) {
        return Status::IOError("disk I/O error (sqlite code 10)");
      }
    }
    return ForwardingBackend::Apply(batch);
  }
};

TEST_CASE("a batch whose wait fails leaves memory when it commits later",
          "[retention]") {
  // The wait for a batch fails once the writer is degraded (after
  // retry_budget); the batch stays queued and commits when the writer
  // recovers. Its messages used to stay in memory for good.
  TempDir dir;
  Options o = RetentionOptions(dir);
  o.log_level = LogLevel::kOff;
  o.retry_budget = std::chrono::milliseconds(50);
  auto backend = std::make_unique<FlakyPurgeBackend>(
      internal::backend_test::OpenBackend(o));
  FlakyPurgeBackend* flaky = backend.get();
  auto opened = internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  REQUIRE(opened.ok());
  auto store = std::move(opened).value();
  Fill(store.get(), "long", 9);  // seqs 1 (system) .. 10, cached whole
  REQUIRE(store->Flush().ok());
  MessageRetention r;
  r.max_messages_per_conversation = 4;
  auto report = store->PruneMessages(r);
  INFO(report.status().ToString());
  REQUIRE_FALSE(report.ok());
  flaky->fail = false;
  REQUIRE(store->Flush().ok());  // the queued batch commits
  const V left{1, 7, 8, 9, 10};
  CHECK(Seqs(Hist(store.get(), "long", FromStorage())) == left);
  CHECK(Seqs(Hist(store.get(), "long")) == left);
}

TEST_CASE("the count rule chooses a long conversation in bounded slices",
          "[retention]") {
  // One conversation's excess was chosen whole in one read transaction and
  // one vector (5M messages: about 200 MB), past the 16,384-row segments.
  TempDir dir;
  Options o = internal::backend_test::MergeOnDemand(dir);
  auto b = internal::backend_test::OpenBackend(o);
  constexpr int kMessages = 40'000;
  internal::backend_test::BatchBuilder bb;
  for (int i = 1; i <= kMessages; ++i) {
    bb.Append("long", internal::backend_test::Make(i, Role::kUser, "m", i));
    if (i % 5000 == 0) internal::backend_test::RequireCommit(&bb, b.get());
  }
  internal::backend_test::RequireMaintain(b.get());  // all merged
  for (int i = 1; i <= 5; ++i) {                     // and a few unmerged
    bb.Append("long",
              internal::backend_test::Make(kMessages + i, Role::kUser, "u", 1));
  }
  internal::backend_test::RequireCommit(&bb, b.get());
  internal::PurgeQuery q;
  q.keep_newest = 3;
  std::vector<int64_t> seqs;
  size_t visits = 0, largest = 0;
  // The rows are not removed here: each slice must still start above the
  // last one (the caller's batch may hold them, not yet removed).
  Status s = b->SelectPurgeable(q, [&](internal::PurgeCandidates&& c) {
    ++visits;
    largest = std::max(largest, c.rows.size());
    for (const internal::StoredMessageRef& r : c.rows) seqs.push_back(r.seq);
    return true;
  });
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(largest <= 16'384);
  CHECK(visits >= 3);
  // Every seq but the newest 3, once each, in order.
  REQUIRE(seqs.size() == kMessages + 5 - 3);
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] != static_cast<int64_t>(i) + 1) {
      FAIL("seq " << seqs[i] << " at " << i);
    }
  }
  REQUIRE(b->Close().ok());
}

TEST_CASE("a run over a long conversation removes every slice once",
          "[retention]") {
  TempDir dir;
  Options o = RetentionOptions(dir, /*merge_rows=*/5000);
  auto store = OpenOrDie(o);
  Fill(store.get(), "long", 40'000);  // seqs 1 (system) .. 40,001
  REQUIRE(store->Flush().ok());
  MessageRetention r;
  r.max_messages_per_conversation = 3;
  r.batch_rows = 3000;  // batches straddle the 16,384-row slices
  auto report = store->PruneMessages(r);
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->messages_removed == 40'001 - 1 - 3);
  CHECK(Seqs(Hist(store.get(), "long", FromStorage())) ==
        V{1, 39'999, 40'000, 40'001});
  CHECK(Seqs(Hist(store.get(), "long")) == V{1, 39'999, 40'000, 40'001});
  CHECK(store->GetStats().db_messages == 4);
}

TEST_CASE("retention rejects bad options and does nothing without a rule",
          "[retention]") {
  TempDir dir;
  auto store = OpenOrDie(RetentionOptions(dir));
  Fill(store.get(), "c", 3);
  MessageRetention r;
  r.max_age = std::chrono::hours(-1);
  CHECK(store->PruneMessages(r).status().IsInvalidArgument());
  r = MessageRetention();
  r.max_messages_per_conversation = -2;
  CHECK(store->PruneMessages(r).status().IsInvalidArgument());
  r = MessageRetention();
  r.max_messages_per_conversation = 1;
  r.batch_rows = 0;
  CHECK(store->PruneMessages(r).status().IsInvalidArgument());
  r.batch_rows = 100'001;
  CHECK(store->PruneMessages(r).status().IsInvalidArgument());

  auto none = store->PruneMessages(MessageRetention());
  REQUIRE(none.ok());
  CHECK(none->messages_removed == 0);
  CHECK(Seqs(Hist(store.get(), "c", FromStorage())) == V{1, 2, 3, 4});
  REQUIRE(store->Close().ok());
  CHECK(store->PruneMessages(r).status().IsFailedPrecondition());
}

}  // namespace
}  // namespace convstore
