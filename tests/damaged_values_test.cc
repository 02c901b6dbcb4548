// Copyright 2026 The convstore Authors.
//
// Extreme integers in a damaged file (issue 4: bad input never crashes).
// SQLite checks a file's structure, not what its integers mean: a file
// edited outside the store, or damaged in a way the b-tree checks miss, can
// hold the largest or smallest int64 in any column. Each case writes one
// such value into a store file and then uses the store every way a caller
// can: Open must refuse the file or every call must return a Status. Under
// the sanitizer builds (-fno-sanitize-recover) a signed overflow on the way
// aborts the test. Where the damage is confined to one conversation, the
// conversation next to it must read back and take appends as before.
//
// tests/bad_input_test.cc covers damaged bytes and foreign files.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "clock.h"
#include "convstore/convstore.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::Contents;
using test::OpenOrDie;
using test::TempDir;

constexpr int64_t kT0 = 1'700'000'000'000'000;
constexpr const char* kVictim = "victim";
constexpr const char* kBystander = "bystander";

Options Quiet(const std::string& path) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.retry_budget = std::chrono::milliseconds(50);
  o.queue_full_wait = std::chrono::milliseconds(50);
  return o;
}

Message Numbered(Role role, int i) {
  Message m = test::Msg(role, "message " + std::to_string(i), i, 2 * i);
  m.user_id = "owner";
  m.created_at_us = kT0 + i;
  return m;
}

// The victim has 70 messages and the bystander 6, each starting with a
// system prompt. With `merged` every message is in the packed index (the
// victim's fill a message_chunks row and start a message_tails row);
// without it every one is above the merge watermark.
void MakeSeed(const std::string& path, bool merged) {
  Options o = Quiet(path);
  if (merged) o.index_merge_rows = 1;
  auto store = OpenOrDie(o);
  for (int i = 1; i <= 70; ++i) {
    for (const char* c : {kVictim, kBystander}) {
      if (c == kBystander && i > 6) continue;
      const Role role = i == 1 ? Role::kSystem : Role::kUser;
      REQUIRE(store->Append(c, Numbered(role, i)).ok());
    }
  }
  REQUIRE(store->Close().ok());
}

// Runs `sql` on the file; the number of rows it changed.
int ChangedRows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err != nullptr ? err : ""));
  sqlite3_free(err);
  const int changed = sqlite3_total_changes(db);
  sqlite3_close_v2(db);
  REQUIRE(rc == SQLITE_OK);
  return changed;
}

std::vector<std::string> Expected(int n) {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) out.push_back("message " + std::to_string(i));
  return out;
}

// Every read a caller can make of `id`; each must return. The results are
// not checked: the file lies about the conversation.
void ReadEveryWay(Store* store, const std::string& id) {
  for (bool from_storage : {false, true}) {
    HistoryOptions h;
    h.from_storage = from_storage;
    (void)store->History(id, h);
    h.last_n = 2;
    (void)store->History(id, h);
    h.last_n = 0;
    h.token_budget = 9;
    (void)store->History(id, h);
    h.token_budget = 0;
    h.after_seq = 3;
    h.limit = 2;
    (void)store->History(id, h);
  }
}

// Uses the store every way; `bystander_ok` when the damage left the other
// conversation alone, so that it must read back and take an append.
void Exercise(const Options& o, bool bystander_ok) {
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(o);
  if (!opened.ok()) {
    INFO(opened.status().ToString());
    CHECK(!opened.status().message().empty());
    return;
  }
  Store* store = opened->get();
  for (const char* c : {kVictim, kBystander}) ReadEveryWay(store, c);
  (void)store->ListConversations(ListOptions());
  ListOptions by_user;
  by_user.user_id = "owner";
  (void)store->ListConversations(by_user);
  (void)store->GetStats();
  (void)store->Health();
  StatusOr<AppendResult> v = store->Append(kVictim, Numbered(Role::kUser, 7));
  StatusOr<AppendResult> b =
      store->Append(kBystander, Numbered(Role::kUser, 7));
  (void)store->Flush();
  ReadEveryWay(store, kVictim);
  if (bystander_ok) {
    INFO("bystander append: " << b.status().ToString());
    REQUIRE(b.ok());
    CHECK(b->seq == 7);
    for (bool from_storage : {false, true}) {
      HistoryOptions h;
      h.from_storage = from_storage;
      StatusOr<std::vector<MessagePtr>> got = store->History(kBystander, h);
      INFO("bystander history: " << got.status().ToString());
      REQUIRE(got.ok());
      CHECK(Contents(*got) == Expected(7));
    }
  }
  MessageRetention by_count;
  by_count.max_messages_per_conversation = 3;
  (void)store->PruneMessages(by_count);
  MessageRetention by_age;
  by_age.max_age = std::chrono::hours(1);
  (void)store->PruneMessages(by_age);
  ReadEveryWay(store, kVictim);
  (void)store->DeleteConversation(kVictim);
  (void)store->Close();
}

struct Damage {
  const char* what;
  std::string sql;  // `V` stands for the extreme value
  bool confined;    // only the victim conversation is affected
};

std::string Replace(std::string sql, const std::string& value) {
  for (size_t at = sql.find('V'); at != std::string::npos;
       at = sql.find('V', at + value.size())) {
    sql.replace(at, 1, value);
  }
  return sql;
}

const std::vector<Damage>& Damages() {
  static const auto* const list = [] {
    auto* d = new std::vector<Damage>();
    const std::string conv = " WHERE conversation_id = 'victim'";
    const std::string key =
        " WHERE conv_key = (SELECT conv_key FROM conversations" + conv + ")";
    for (const char* column :
         {"message_count", "tokens_in", "tokens_out", "first_at_us",
          "last_at_us", "last_seq", "first_system_seq", "purged_count",
          "activity_at_us", "summarized_through_id"}) {
      d->push_back(
          {column,
           std::string("UPDATE conversations SET ") + column + " = V" + conv,
           true});
    }
    for (const char* column : {"id", "conv_key", "seq", "lsn", "role",
                               "tokens_in", "tokens_out", "created_at_us"}) {
      d->push_back({column,
                    std::string("UPDATE messages SET ") + column +
                        " = V WHERE id = (SELECT max(id) FROM messages" + key +
                        ")",
                    true});
    }
    d->push_back({"every message's tokens",
                  "UPDATE messages SET tokens_in = V, tokens_out = V" + key,
                  true});
    for (const char* table : {"message_chunks", "message_tails"}) {
      for (const char* column : {"first_seq", "n"}) {
        d->push_back(
            {column,
             std::string("UPDATE ") + table + " SET " + column + " = V" + key,
             true});
      }
    }
    for (const char* meta :
         {"last_lsn", "last_message_id", "merged_through_id"}) {
      d->push_back(
          {meta,
           std::string("UPDATE store_meta SET value = V WHERE key = '") + meta +
               "'",
           false});
    }
    return d;
  }();
  return *list;
}

TEST_CASE("Extreme integers in a damaged file give a Status and no UB",
          "[bad_input]") {
  TempDir dir;
  for (bool merged : {false, true}) {
    const std::string seed = dir.File(merged ? "merged.db" : "unmerged.db");
    MakeSeed(seed, merged);
    for (const Damage& damage : Damages()) {
      for (const char* value :
           {"9223372036854775807", "-9223372036854775808"}) {
        INFO((merged ? "merged: " : "unmerged: ")
             << Replace(damage.sql, value));
        // Warmed at Open, and not: then every read goes through to the file.
        for (int64_t warm : {-1, 0}) {
          const std::string path = dir.File("victim.db");
          std::filesystem::remove(path + "-wal");
          std::filesystem::remove(path + "-shm");
          std::filesystem::copy_file(
              seed, path, std::filesystem::copy_options::overwrite_existing);
          // The packed index is empty while nothing is merged.
          if (ChangedRows(path, Replace(damage.sql, value)) == 0) {
            CHECK(!merged);
            CHECK((damage.sql.find("message_chunks") != std::string::npos ||
                   damage.sql.find("message_tails") != std::string::npos));
            continue;
          }
          Options o = Quiet(path);
          o.warm_conversations = warm;
          Exercise(o, damage.confined);
        }
      }
    }
  }
}

TEST_CASE("A summary the store cannot have written reads as Corruption",
          "[bad_input]") {
  TempDir dir;
  const std::string path = dir.File("lying.db");
  // Merged: the conversations row holds the whole summary (an unmerged
  // message adds to it, and would make up for a small negative count).
  MakeSeed(path, /*merged=*/true);
  const std::string where = " WHERE conversation_id = 'victim'";
  std::string set;
  SECTION("last_seq at the int64 limit") {
    set = "last_seq = 9223372036854775807";
  }
  SECTION("a negative message count") { set = "message_count = -5"; }
  SECTION("a negative token sum") { set = "tokens_out = -1"; }
  SECTION("the first system message after the last") {
    set = "first_system_seq = 71";
  }
  REQUIRE(ChangedRows(path, "UPDATE conversations SET " + set + where) == 1);
  for (int64_t warm : {-1, 0}) {
    Options o = Quiet(path);
    o.warm_conversations = warm;
    auto store = OpenOrDie(o);
    StatusOr<AppendResult> a =
        store->Append(kVictim, Numbered(Role::kUser, 71));
    INFO(a.status().ToString());
    CHECK(a.status().code() == StatusCode::kCorruption);
    CHECK(a.status().message().find("'victim'") != std::string::npos);
    for (bool from_storage : {false, true}) {
      HistoryOptions h;
      h.from_storage = from_storage;
      CHECK(store->History(kVictim, h).status().code() ==
            StatusCode::kCorruption);
      StatusOr<std::vector<MessagePtr>> b = store->History(kBystander, h);
      REQUIRE(b.ok());
      CHECK(Contents(*b) == Expected(6));
    }
    REQUIRE(store->Close().ok());
  }
}

TEST_CASE("A damaged message seq stays out of the index and stops nothing",
          "[bad_input]") {
  // A merge wrote such a seq into the packed index, whose reader refuses
  // it (or overflowed encoding it): every later merge and delete of the
  // conversation failed, and with it every batch: the writer stopped.
  TempDir dir;
  const std::string seed = dir.File("seed.db");
  MakeSeed(seed, /*merged=*/false);
  for (const char* value :
       {"-5", "0", "-9223372036854775808", "9223372036854775807"}) {
    INFO("seq " << value);
    const std::string path = dir.File("victim.db");
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    std::filesystem::copy_file(
        seed, path, std::filesystem::copy_options::overwrite_existing);
    REQUIRE(
        ChangedRows(path, std::string("UPDATE messages SET seq = ") + value +
                              " WHERE id = (SELECT max(id) FROM messages WHERE "
                              "conv_key = (SELECT conv_key FROM conversations "
                              "WHERE conversation_id = 'victim'))") == 1);
    Options o = Quiet(path);
    o.index_merge_rows = 1;  // a merge after every batch
    auto store = OpenOrDie(o);
    REQUIRE(store->Append(kBystander, Numbered(Role::kUser, 7)).ok());
    Status f = store->Flush();
    INFO(f.ToString());
    REQUIRE(f.ok());
    (void)store->DeleteConversation(kVictim);
    REQUIRE(store->Append(kBystander, Numbered(Role::kUser, 8)).ok());
    f = store->Flush();
    INFO(f.ToString());
    REQUIRE(f.ok());
    CHECK(store->Health().ok());
    HistoryOptions h;
    h.from_storage = true;
    StatusOr<std::vector<MessagePtr>> got = store->History(kBystander, h);
    REQUIRE(got.ok());
    CHECK(Contents(*got) == Expected(8));
    REQUIRE(store->Close().ok());
  }
}

TEST_CASE("A damaged index row skips one conversation of a retention run",
          "[bad_input]") {
  // The retention connection does not mend the packed index: a Corruption
  // there stopped the whole run, every time, for every conversation.
  TempDir dir;
  const std::string path = dir.File("chunks.db");
  MakeSeed(path, /*merged=*/true);
  REQUIRE(ChangedRows(path,
                      "UPDATE message_chunks SET n = 0 WHERE conv_key = "
                      "(SELECT conv_key FROM conversations WHERE "
                      "conversation_id = 'victim')") > 0);
  auto store = OpenOrDie(Quiet(path));
  MessageRetention by_count;
  by_count.max_messages_per_conversation = 3;
  StatusOr<RetentionReport> r = store->PruneMessages(by_count);
  INFO(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK(r.status().message().find("skipped by the count rule") !=
        std::string::npos);
  HistoryOptions h;
  h.from_storage = true;
  StatusOr<std::vector<MessagePtr>> b = store->History(kBystander, h);
  REQUIRE(b.ok());
  // The prompt and the newest 3.
  CHECK(Contents(*b) == std::vector<std::string>{"message 1", "message 4",
                                                 "message 5", "message 6"});
  REQUIRE(store->Close().ok());
}

TEST_CASE("Token counts beyond what Append takes read back held to its range",
          "[bad_input]") {
  TempDir dir;
  const std::string path = dir.File("tokens.db");
  MakeSeed(path, /*merged=*/true);
  REQUIRE(ChangedRows(path,
                      "UPDATE messages SET tokens_in = 9223372036854775807,"
                      " tokens_out = -3 WHERE conv_key = 2 AND seq = 2") == 1);
  Options o = Quiet(path);
  o.warm_conversations = 0;
  auto store = OpenOrDie(o);
  HistoryOptions h;
  h.from_storage = true;
  std::vector<MessagePtr> got = test::Hist(store.get(), kBystander, h);
  REQUIRE(got.size() == 6);
  CHECK(got[1]->tokens_in == int64_t{1} << 40);
  CHECK(got[1]->tokens_out == 0);
  CHECK(got[2]->tokens_in == 3);  // its neighbours as written
  // A budget below that message's count stops before it.
  h.from_storage = false;
  h.token_budget = 1'000'000;
  h.pin_system = false;
  CHECK(test::Seqs(test::Hist(store.get(), kBystander, h)) ==
        std::vector<int64_t>{3, 4, 5, 6});
  REQUIRE(store->Close().ok());
}

// Analytics rows read back: sums over turns and hourly rollups, a feedback
// rating stored as a double, a session's duration. Each damage is applied
// to a fresh copy; every query must return (any Status).
TEST_CASE("Extreme values in a damaged analytics file give a Status and no UB",
          "[bad_input]") {
  TempDir dir;
  const std::string seed = dir.File("analytics.db");
  // Two hours ago, whole hours before now: the rollups cover them.
  const int64_t h0 =
      (internal::WallMicros() / 3'600'000'000 - 2) * int64_t{3'600'000'000};
  {
    auto store = OpenOrDie(Quiet(seed));
    Analytics& a = store->analytics();
    REQUIRE(a.StartSession({"s", "", "", "t", "", "", h0}).ok());
    for (int i = 1; i <= 3; ++i) {
      TurnMetrics t;
      t.session_id = "s";
      t.turn_number = i;
      t.at_us = h0 + i * 60'000'000;
      t.e2e_ms = 100.0 * i;
      t.prompt_tokens = 10;
      t.completion_tokens = 5;
      t.llm_model = "m";
      REQUIRE(a.RecordTurn(t).ok());
    }
    REQUIRE(a.RecordEvent({"s", h0 + 1, Feedback{4, "", "csat"}}).ok());
    REQUIRE(
        a.EndSession({"s", SessionStatus::kCompleted, "done", h0 + 600'000'000})
            .ok());
    REQUIRE(store->Close().ok());
  }
  const std::string max = "9223372036854775807";
  const std::string min = "-9223372036854775808";
  const std::vector<std::string> damages = {
      "UPDATE analytics_turns SET prompt_tokens = " + max +
          ", completion_tokens = " + max + ", cached_tokens = " + max,
      "UPDATE analytics_turn_rollups SET turns = " + max +
          ", interrupted = " + max + ", prompt_tokens = " + max,
      "UPDATE analytics_events SET number = 1e300",
      "UPDATE analytics_events SET number = -1e300",
      "UPDATE analytics_sessions SET started_at_us = " + min +
          ", ended_at_us = " + max,
  };
  for (const std::string& damage : damages) {
    INFO(damage);
    const std::string path = dir.File("victim.db");
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    std::filesystem::copy_file(
        seed, path, std::filesystem::copy_options::overwrite_existing);
    REQUIRE(ChangedRows(path, damage) > 0);
    StatusOr<std::unique_ptr<Store>> opened = Store::Open(Quiet(path));
    if (!opened.ok()) continue;
    Analytics& a = (*opened)->analytics();
    for (bool exact : {false, true}) {
      AggregateQuery q;
      q.range.from_us = h0 - 3'600'000'000;
      q.range.to_us = h0 + 7'200'000'000;
      q.exact_percentiles = exact;
      (void)a.Aggregate(q);
      q.group_by = GroupBy::kModel;
      (void)a.Aggregate(q);
    }
    (void)a.RecentSessions({});
    (void)a.GetSession("s");
    SeriesQuery sq;
    sq.metric = "e2e_ms";
    sq.range.from_us = h0 - 3'600'000'000;
    sq.range.to_us = h0 + 7'200'000'000;
    (void)a.Series(sq);
    // A turn added to a damaged rollup row.
    TurnMetrics t;
    t.session_id = "s";
    t.turn_number = 9;
    t.at_us = h0 + 120'000'000;
    t.e2e_ms = 50;
    t.prompt_tokens = 1;
    t.llm_model = "m";
    (void)a.RecordTurn(t);
    (void)(*opened)->Flush();
    (void)a.Aggregate({});
    (void)a.CheckConsistency(false);
    (void)(*opened)->Close();
  }
}

}  // namespace
}  // namespace convstore
