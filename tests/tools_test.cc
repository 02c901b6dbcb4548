// Copyright 2026 The convstore Authors.
//
// The convstore tool's subcommands (keys, cache, erase, the read commands,
// the demo), called as functions on a database a store wrote and closed:
// what they print (text and JSON), their filters, that no secret is
// printed, what erase leaves in the files, and errors for a missing file.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "analytics_commands.h"
#include "audit_commands.h"
#include "cache_commands.h"
#include "commands.h"
#include "convstore/convstore.h"
#include "demo.h"
#include "erase_command.h"
#include "keys_commands.h"
#include "testutil.h"

namespace convstore {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

// A single-value query on the file, through a connection of its own.
int64_t RawInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return v;
}

KeySpec Spec(std::string name, std::string owner) {
  KeySpec s;
  s.name = std::move(name);
  s.owner = std::move(owner);
  s.scopes = {"chat:read", "chat:write"};
  return s;
}

// Three keys of "acme" (one revoked, one rotated into a fourth) and one of
// "globex"; the secrets are returned so tests can grep for them.
std::vector<std::string> WriteKeys(const Options& o) {
  std::unique_ptr<Store> store = OpenOrDie(o);
  Keys& keys = store->keys();
  std::vector<std::string> secrets;
  StatusOr<CreatedKey> a = keys.CreateKey(Spec("prod", "acme"));
  StatusOr<CreatedKey> b = keys.CreateKey(Spec("old", "acme"));
  StatusOr<CreatedKey> c = keys.CreateKey(Spec("ci", "globex"));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  REQUIRE(keys.ValidateKey(a->secret, "chat:write").ok());
  REQUIRE(keys.ValidateKey(a->secret).ok());
  REQUIRE(keys.RevokeKey(b->info.id).ok());
  StatusOr<CreatedKey> d =
      keys.RotateKey(a->info.id, std::chrono::microseconds(0));
  REQUIRE(d.ok());
  secrets = {a->secret, b->secret, c->secret, d->secret};
  REQUIRE(store->Close().ok());
  return secrets;
}

TEST_CASE("keys list prints every key with its state and no secret",
          "[tools]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  const std::vector<std::string> secrets = WriteKeys(o);

  std::ostringstream out;
  tools::KeysListArgs args;
  args.db = o.path;
  args.json = true;
  REQUIRE(tools::RunKeysList(args, out).ok());
  const json keys = json::parse(out.str());
  REQUIRE(keys.size() == 4);
  std::multiset<std::string> states;
  for (const json& k : keys) states.insert(k.at("state").get<std::string>());
  // The rotated key expired at once (zero overlap); its replacement is live.
  CHECK(states ==
        std::multiset<std::string>{"active", "active", "expired", "revoked"});
  const json& prod = keys.at(0);  // oldest first
  CHECK(prod.at("name") == "prod");
  CHECK(prod.at("owner") == "acme");
  CHECK(prod.at("request_count") == 2);
  CHECK(prod.at("last_used_at_us").get<int64_t>() > 0);
  CHECK(prod.at("replaced_by") == keys.at(3).at("id"));
  CHECK(keys.at(3).at("rotated_from") == prod.at("id"));
  CHECK(keys.at(1).at("revoked_at_us").get<int64_t>() > 0);
  CHECK(prod.at("scopes") == json::array({"chat:read", "chat:write"}));
  for (const std::string& secret : secrets) {
    CHECK(out.str().find(secret) == std::string::npos);
    // Nor the random part on its own.
    CHECK(out.str().find(secret.substr(13)) == std::string::npos);
  }

  std::ostringstream text;
  args.json = false;
  REQUIRE(tools::RunKeysList(args, text).ok());
  CHECK(text.str().find(prod.at("prefix").get<std::string>() + "  expired") !=
        std::string::npos);
  CHECK(text.str().find("revoked") != std::string::npos);
  CHECK(text.str().find("replaced by " +
                        keys.at(3).at("id").get<std::string>()) !=
        std::string::npos);
  for (const std::string& secret : secrets) {
    CHECK(text.str().find(secret) == std::string::npos);
  }
}

TEST_CASE("keys list filters by owner", "[tools]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  WriteKeys(o);
  tools::KeysListArgs args;
  args.db = o.path;
  args.json = true;
  args.owner = "globex";
  std::ostringstream out;
  REQUIRE(tools::RunKeysList(args, out).ok());
  const json keys = json::parse(out.str());
  REQUIRE(keys.size() == 1);
  CHECK(keys.at(0).at("name") == "ci");

  args.owner = "nobody";
  std::ostringstream none;
  REQUIRE(tools::RunKeysList(args, none).ok());
  CHECK(json::parse(none.str()).empty());
  args.json = false;
  std::ostringstream none_text;
  REQUIRE(tools::RunKeysList(args, none_text).ok());
  CHECK(none_text.str() == "no keys\n");
}

TEST_CASE("cache stats shows what a reload keeps and drops", "[tools]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    std::unique_ptr<Store> store = OpenOrDie(o);
    Cache& cache = store->cache();
    REQUIRE(
        cache.Set("tools", "a", std::string(100, 'x'), milliseconds(0)).ok());
    REQUIRE(cache.Set("tools", "b", "y", std::chrono::hours(1)).ok());
    REQUIRE(cache.Increment("rate", "u1", 3, std::chrono::hours(1)).ok());
    REQUIRE(cache.Set("tools", "short", "z", milliseconds(30)).ok());
    REQUIRE(cache.Set("tools", "gone", "w", milliseconds(0)).ok());
    REQUIRE(cache.Delete("tools", "gone").ok());
    REQUIRE(store->Close().ok());
  }
  std::this_thread::sleep_for(milliseconds(60));  // "short" expires

  tools::CacheStatsArgs args;
  args.db = o.path;
  args.json = true;
  std::ostringstream out;
  REQUIRE(tools::RunCacheStats(args, out).ok());
  const json stats = json::parse(out.str());
  CHECK(stats.at("entries") == 3);
  CHECK(stats.at("reloaded") == 3);
  CHECK(stats.at("bytes").get<uint64_t>() > 100);
  CHECK(stats.at("hits") == 0);
  // The tool opens the file read-only: the expired row ("short") stays for
  // the application's next open or sweep to delete.
  CHECK(stats.at("purge_batches") == 0);
  CHECK(RawInt(o.path, "SELECT count(*) FROM cache_entries") == 4);
  std::ostringstream again;
  REQUIRE(tools::RunCacheStats(args, again).ok());
  CHECK(json::parse(again.str()).at("entries") == 3);
  CHECK(json::parse(again.str()).at("purge_batches") == 0);

  args.json = false;
  std::ostringstream text;
  REQUIRE(tools::RunCacheStats(args, text).ok());
  CHECK(text.str().find("entries      3\n") != std::string::npos);
  CHECK(text.str().find("reloaded     3\n") != std::string::npos);
}

TEST_CASE("keys list and cache stats refuse a missing file and create none",
          "[tools]") {
  TempDir dir;
  const std::string path = dir.File("missing.db");
  std::ostringstream out;
  tools::KeysListArgs keys_args;
  keys_args.db = path;
  CHECK_FALSE(tools::RunKeysList(keys_args, out).ok());
  tools::CacheStatsArgs cache_args;
  cache_args.db = path;
  CHECK_FALSE(tools::RunCacheStats(cache_args, out).ok());
  CHECK(out.str().empty());
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("the demo does not delete a store that holds no conversation",
          "[tools]") {
  // It checked only that every conversation was its own: a store holding
  // only API keys (or audit records, sessions, cache entries) was deleted.
  TempDir dir;
  Options o = TestOptions(dir);
  WriteKeys(o);
  tools::DemoArgs demo;
  demo.db = o.path;
  demo.conversations = 1;
  demo.turns = 3;
  std::ostringstream out;
  Status s = tools::RunDemo(demo, out);
  INFO(s.ToString());
  CHECK(s.IsFailedPrecondition());
  std::ostringstream keys;
  tools::KeysListArgs list;
  list.db = o.path;
  REQUIRE(tools::RunKeysList(list, keys).ok());
  CHECK(keys.str().find("prod") != std::string::npos);
}

TEST_CASE("the demo with one message per conversation passes", "[tools]") {
  // Its only message is the system prompt: no turn, so no latency to
  // compare; the percentiles stayed -1 against an exact 0, a mismatch.
  TempDir dir;
  tools::DemoArgs demo;
  demo.db = dir.File("demo.db");
  demo.conversations = 2;
  demo.turns = 1;
  std::ostringstream out;
  Status s = tools::RunDemo(demo, out);
  INFO(s.ToString() << "\n" << out.str());
  CHECK(s.ok());
  // A second run deletes the first run's file (it holds the demo's own
  // conversations) and passes again.
  CHECK(tools::RunDemo(demo, out).ok());
}

TEST_CASE("the demo refuses more messages than it can hold to check",
          "[tools]") {
  // It keeps every script in memory: 1M messages peaked at about 1 GB, so
  // the 10M it once took would need about 10 GB.
  TempDir dir;
  tools::DemoArgs demo;
  demo.db = dir.File("demo.db");
  demo.conversations = 1001;
  demo.turns = 1000;
  std::ostringstream out;
  Status s = tools::RunDemo(demo, out);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message().find("1000000") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(demo.db));
}

TEST_CASE("the read commands leave the file as it was", "[tools]") {
  // They open it read-only: no migration, no expiry deletes, no writer and
  // no checkpoint, so a closed file stays byte for byte the same.
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    std::unique_ptr<Store> store = OpenOrDie(o);
    REQUIRE(store->Append("c", test::Msg(Role::kUser, "hello")).ok());
    REQUIRE(store->cache().Set("ns", "short", "v", milliseconds(1)).ok());
    REQUIRE(store->Close().ok());
  }
  std::this_thread::sleep_for(milliseconds(5));  // "short" expires
  auto bytes = [&] {
    std::ifstream in(o.path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = bytes();
  REQUIRE(before.size() > 0);
  std::ostringstream out;
  tools::StatsArgs stats;
  stats.db = o.path;
  CHECK(tools::RunStats(stats, out).ok());
  tools::HistoryArgs history;
  history.db = o.path;
  history.conversation = "c";
  CHECK(tools::RunHistory(history, out).ok());
  tools::ConversationsArgs conversations;
  conversations.db = o.path;
  CHECK(tools::RunConversations(conversations, out).ok());
  tools::KeysListArgs keys;
  keys.db = o.path;
  CHECK(tools::RunKeysList(keys, out).ok());
  tools::CacheStatsArgs cache;
  cache.db = o.path;
  CHECK(tools::RunCacheStats(cache, out).ok());
  tools::AuditVerifyArgs verify;
  verify.db = o.path;
  CHECK(tools::RunAuditVerify(verify, out).ok());
  tools::AuditListArgs audit;
  audit.db = o.path;
  CHECK(tools::RunAuditList(audit, out).ok());
  tools::SessionsArgs sessions;
  sessions.db = o.path;
  CHECK(tools::RunSessions(sessions, out).ok());
  CHECK(bytes() == before);
  CHECK(RawInt(o.path, "SELECT count(*) FROM cache_entries") == 1);
}

TEST_CASE("prune without a rule is refused before the file is opened",
          "[tools]") {
  TempDir dir;
  tools::PruneArgs prune;
  prune.db = dir.File("missing.db");
  std::ostringstream out;
  CHECK(tools::RunPrune(prune, out).IsInvalidArgument());
  CHECK(out.str().empty());
}

TEST_CASE("erase deletes conversations and sessions down to the bytes",
          "[tools]") {
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    std::unique_ptr<Store> store = OpenOrDie(o);
    for (const char* id : {"gone", "kept"}) {
      for (int i = 0; i < 5; ++i) {
        REQUIRE(
            store
                ->Append(id, test::Msg(Role::kUser, std::string(id) + "-said-" +
                                                        std::to_string(i)))
                .ok());
      }
      SessionStart start;
      start.session_id = std::string("call-") + id;
      start.conversation_id = id;
      start.metadata = std::string("{\"who\":\"") + id + "-meta\"}";
      start.started_at_us = 1'600'000'000'000'000;
      REQUIRE(store->analytics().StartSession(start).ok());
    }
    REQUIRE(store->Close().ok());
  }
  REQUIRE(test::FileBytes(o.path).find("gone-said-3") != std::string::npos);
  REQUIRE(test::FileBytes(o.path).find("gone-meta") != std::string::npos);

  tools::EraseArgs args;
  args.db = o.path;
  args.conversations = {"gone", "never-was"};
  args.sessions = {"call-gone", "call-none"};
  args.json = true;
  std::ostringstream out;
  Status s = tools::RunErase(args, out);
  INFO(s.ToString());
  REQUIRE(s.ok());
  const json j = json::parse(out.str());
  CHECK(j["conversations"] == json::array({"gone", "never-was"}));
  CHECK(j["sessions"][0]["id"] == "call-gone");
  CHECK(j["sessions"][0]["records"] == 1);
  CHECK(j["sessions"][1]["records"] == 0);

  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const std::string bytes = test::FileBytes(entry.path().string());
    INFO(entry.path().string());
    CHECK(bytes.find("gone-said") == std::string::npos);
    CHECK(bytes.find("gone-meta") == std::string::npos);
  }
  const std::string bytes = test::FileBytes(o.path);
  CHECK(bytes.find("kept-said-3") != std::string::npos);
  CHECK(bytes.find("kept-meta") != std::string::npos);
  std::unique_ptr<Store> store = OpenOrDie(o);
  CHECK(test::Hist(store.get(), "gone").empty());
  CHECK(test::Hist(store.get(), "kept").size() == 5);
  CHECK(store->analytics().GetSession("call-gone").status().IsNotFound());
  CHECK(store->analytics().GetSession("call-kept").ok());
  REQUIRE(store->Close().ok());
}

TEST_CASE("erase fails when another connection keeps the WAL", "[tools]") {
  // Close says OK when a reader blocks its truncation; erase used to rely
  // on Close and exited 0 with the deleted text still in the WAL.
  TempDir dir;
  const Options o = TestOptions(dir);
  {
    std::unique_ptr<Store> store = OpenOrDie(o);
    REQUIRE(store->Append("gone", test::Msg(Role::kUser, "gone-said")).ok());
    REQUIRE(store->Close().ok());
  }
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(o.path.c_str(), &reader, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM messages;", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  tools::EraseArgs args;
  args.db = o.path;
  args.conversations = {"gone"};
  args.wal_timeout = milliseconds(200);
  std::ostringstream out;
  Status s = tools::RunErase(args, out);
  INFO(s.ToString());
  CHECK(s.IsUnavailable());
  CHECK(out.str().empty());
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close_v2(reader);
  // The delete committed; a second run truncates the WAL.
  args.wal_timeout = milliseconds(30000);
  REQUIRE(tools::RunErase(args, out).ok());
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    INFO(entry.path().string());
    CHECK(test::FileBytes(entry.path().string()).find("gone-said") ==
          std::string::npos);
  }
}

TEST_CASE("erase fails when Close could not truncate the WAL", "[tools]") {
  // TruncateWal succeeding is not enough: what Close commits after it (a
  // queued write here; another process's write in general) can be kept in
  // the WAL by a reader. Close says OK then, and erase exited 0 without
  // looking at CloseReport::wal_truncated.
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_flush_delay = std::chrono::hours(1);  // the append waits for Close
  o.busy_timeout = milliseconds(200);         // Close's wait for the reader
  std::unique_ptr<Store> store = OpenOrDie(o);
  REQUIRE(store->TruncateWal().ok());
  // Begun on the empty WAL, the reader reads the main file, which no
  // checkpoint may then change: TruncateWal still succeeds, Close's not.
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(o.path.c_str(), &reader, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM messages;", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  REQUIRE(store->Append("c", test::Msg(Role::kUser, "late")).ok());
  Status s = tools::CloseErased(*store, milliseconds(200));
  INFO(s.ToString());
  CHECK(s.IsUnavailable());
  CHECK(store->Close().status().IsFailedPrecondition());  // closed all the same
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close_v2(reader);
}

TEST_CASE("erase --vacuum leaves no old copy of a moved row", "[tools]") {
  // A review found copies of moved cells left in pages' free space, which
  // secure_delete does not zero, with plain SQLite tables filled in random
  // order. Here: interleaved conversations, cache keys in no order, deletes
  // that empty half the pages; erase --vacuum must leave a sound file with
  // none of the deleted text and every kept row.
  TempDir dir;
  const Options o = TestOptions(dir);
  auto id = [](int c) { return "conv-" + std::to_string(c); };
  {
    std::unique_ptr<Store> store = OpenOrDie(o);
    for (int i = 0; i < 300; ++i) {
      for (int c = 0; c < 20; ++c) {
        REQUIRE(
            store
                ->Append(id(c), test::Msg(Role::kUser,
                                          id(c) + "-msg-" + std::to_string(i) +
                                              "-" + std::string(150, 'p')))
                .ok());
      }
    }
    // Cache rows go in by key, in no order: pages split and cells move.
    for (int k = 0; k < 4000; ++k) {
      const std::string key = std::to_string((k * 7919) % 4000);
      REQUIRE(
          store->cache()
              .Set("ns", key, "cachev-" + key + "-" + std::string(200, 'v'), {})
              .ok());
    }
    REQUIRE(store->Flush().ok());
    for (int k = 0; k < 4000; k += 2) {
      REQUIRE(store->cache().Delete("ns", std::to_string(k)).ok());
    }
    for (int c = 1; c <= 10; ++c) {
      StatusOr<uint64_t> del = store->DeleteConversation(id(c));
      REQUIRE(del.ok());
      REQUIRE(store->WaitDurable(*del).ok());
    }
    REQUIRE(store->Close().ok());
  }
  tools::EraseArgs args;
  args.db = o.path;
  args.conversations = {"conv-0"};
  args.vacuum = true;
  std::ostringstream out;
  Status s = tools::RunErase(args, out);
  INFO(s.ToString());
  REQUIRE(s.ok());
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const std::string bytes = test::FileBytes(entry.path().string());
    for (int c = 0; c <= 10; ++c) {  // every deleted conversation
      INFO(entry.path().string() << ", " << id(c));
      CHECK(bytes.find(id(c) + "-msg-") == std::string::npos);
    }
    int cache_left = 0;  // deleted cache values
    for (int k = 0; k < 4000; k += 2) {
      if (bytes.find("cachev-" + std::to_string(k) + "-") !=
          std::string::npos) {
        ++cache_left;
      }
    }
    INFO(entry.path().string());
    CHECK(cache_left == 0);
  }
  CHECK(test::FileBytes(o.path).find("conv-15-msg-299-") != std::string::npos);
  std::unique_ptr<Store> store = OpenOrDie(o);
  CHECK(test::Hist(store.get(), "conv-15").size() == 300);
  CHECK(test::Hist(store.get(), "conv-0").empty());
  REQUIRE(store->Close().ok());
}

TEST_CASE("erase refuses an empty list before and a missing file at opening",
          "[tools]") {
  TempDir dir;
  tools::EraseArgs args;
  args.db = dir.File("missing.db");
  std::ostringstream out;
  CHECK(tools::RunErase(args, out).IsInvalidArgument());
  args.conversations = {"c"};
  CHECK(tools::RunErase(args, out).IsNotFound());
  CHECK(out.str().empty());
  CHECK_FALSE(std::filesystem::exists(args.db));
}

TEST_CASE("stats --json has every counter of the user guide's table",
          "[tools]") {
  TempDir dir;
  Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    REQUIRE(store->Append("c", test::Msg(Role::kUser, "hi")).ok());
    REQUIRE(store->Close().ok());
  }
  tools::StatsArgs args;
  args.db = o.path;
  args.json = true;
  std::ostringstream out;
  REQUIRE(tools::RunStats(args, out).ok());
  const json j = json::parse(out.str());
  for (const char* field :
       {"cache_pinned_drops", "cache_eviction_walks", "cache_bound_bytes",
        "cache_evictions", "db_messages", "durable_lsn"}) {
    INFO(field);
    CHECK(j.contains(field));
  }
  CHECK(j["cache_bound_bytes"].get<uint64_t>() > 0);
}

TEST_CASE("audit list and keys list print control characters escaped",
          "[tools]") {
  // Audit fields and key names come from callers; an ESC in them reached
  // the operator's terminal as an escape sequence.
  TempDir dir;
  Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    AuditEvent e;
    e.actor =
        "mallory\x1b[2J\xc2\x9b"
        "2J";  // ESC [, and CSI (U+009B)
    e.action = "login";
    e.outcome = "failure";
    REQUIRE(store->audit().Record(e).ok());
    KeySpec k = Spec("name\x1b]0;x\x07", "acme");
    REQUIRE(store->keys().CreateKey(k).ok());
    REQUIRE(store->Close().ok());
  }
  std::ostringstream audit;
  tools::AuditListArgs list;
  list.db = o.path;
  REQUIRE(tools::RunAuditList(list, audit).ok());
  CHECK(audit.str().find("mallory\\x1b[2J\\u009b2J") != std::string::npos);
  CHECK(audit.str().find('\x1b') == std::string::npos);
  std::ostringstream keys;
  tools::KeysListArgs klist;
  klist.db = o.path;
  Status ks = tools::RunKeysList(klist, keys);
  INFO(ks.ToString());
  REQUIRE(ks.ok());
  CHECK(keys.str().find('\x1b') == std::string::npos);
  CHECK(keys.str().find('\x07') == std::string::npos);
}

TEST_CASE("sessions and audit list print their columns aligned", "[tools]") {
  // They printed each row's fields two spaces apart, so a longer id pushed
  // the rest of its row out of line with the header.
  TempDir dir;
  Options o = TestOptions(dir);
  const int64_t started = 1'600'000'000'000'000;
  {
    auto store = OpenOrDie(o);
    for (const char* id : {"a", "a-much-longer-session-id"}) {
      SessionStart start;
      start.session_id = id;
      start.tenant = id;
      start.started_at_us = started;
      REQUIRE(store->analytics().StartSession(start).ok());
    }
    for (const char* actor : {"al", "a-much-longer-actor-name"}) {
      AuditEvent e;
      e.actor = actor;
      e.action = "login";
      e.outcome = "success";
      REQUIRE(store->audit().Record(e).ok());
    }
    REQUIRE(store->Close().ok());
  }
  auto lines = [](const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) v.push_back(line);
    return v;
  };
  // Every row has `cell` where the header has `column`.
  auto check_column = [&](const std::string& text, const std::string& column,
                          const std::string& cell) {
    INFO(text);
    std::vector<std::string> v = lines(text);
    REQUIRE(v.size() == 3);
    const size_t at = v[0].find(column);
    REQUIRE(at != std::string::npos);
    CHECK(v[1].find(cell) == at);
    CHECK(v[2].find(cell) == at);
  };
  std::ostringstream sessions;
  tools::SessionsArgs sargs;
  sargs.db = o.path;
  REQUIRE(tools::RunSessions(sargs, sessions).ok());
  check_column(sessions.str(), "STARTED", tools::FormatTimestamp(started));
  check_column(sessions.str(), "STATUS", "active");
  // Its last column, a number, is right-aligned too: every line as long.
  const std::vector<std::string> rows = lines(sessions.str());
  CHECK(rows[1].size() == rows[0].size());
  CHECK(rows[2].size() == rows[0].size());
  std::ostringstream audit;
  tools::AuditListArgs aargs;
  aargs.db = o.path;
  REQUIRE(tools::RunAuditList(aargs, audit).ok());
  check_column(audit.str(), "ACTION", "login");
  check_column(audit.str(), "OUTCOME", "success");
}

TEST_CASE("conversations pages with --limit and --cursor", "[tools]") {
  // A page printed a next_cursor the command had no option to take.
  TempDir dir;
  Options o = TestOptions(dir);
  {
    auto store = OpenOrDie(o);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(
          store->Append("c" + std::to_string(i), test::Msg(Role::kUser, "m"))
              .ok());
    }
    REQUIRE(store->Close().ok());
  }
  tools::ConversationsArgs args;
  args.db = o.path;
  args.limit = 2;
  args.json = true;
  std::set<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    std::ostringstream out;
    REQUIRE(tools::RunConversations(args, out).ok());
    const json j = json::parse(out.str());
    for (const json& c : j["conversations"]) {
      CHECK(seen.insert(c["conversation_id"].get<std::string>()).second);
    }
    if (!j.contains("next_cursor")) break;
    args.cursor = j["next_cursor"].get<std::string>();
  }
  CHECK(seen.size() == 5);
  args.cursor = "not a cursor";
  std::ostringstream out;
  CHECK(tools::RunConversations(args, out).IsInvalidArgument());
}

}  // namespace
}  // namespace convstore
