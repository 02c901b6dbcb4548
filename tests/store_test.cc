// Copyright 2026 The convstore Authors.
//
// Store semantics through the public API (include/convstore/store.h):
// sequence numbers and LSNs, History windows, ListConversations ordering and
// paging, deletes, Flush/WaitDurable/Close, stats, input validation, Open
// errors and the cache bounds with read-through.

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "convstore/convstore.h"
#include "testutil.h"
#include "thread_testutil.h"

namespace convstore {
namespace {

using test::Contents;
using test::Hist;
using test::Msg;
using test::OpenOrDie;
using test::Seqs;
using test::TempDir;
using test::TestOptions;

constexpr int64_t kT0 = 1'700'000'000'000'000;  // a fixed created_at base

// Every field of a message, for comparisons that print a readable diff.
std::string Describe(const Message& m) {
  return "seq=" + std::to_string(m.seq) + " role=" + RoleName(m.role) +
         " content=[" + m.content + "] user=[" + m.user_id +
         "] in=" + std::to_string(m.tokens_in) +
         " out=" + std::to_string(m.tokens_out) + " call=[" + m.tool_call_id +
         "] tool=[" + m.tool_name + "] meta=[" + m.metadata +
         "] at=" + std::to_string(m.created_at_us);
}

std::vector<std::string> DescribeAll(const std::vector<MessagePtr>& v) {
  std::vector<std::string> out;
  for (const MessagePtr& m : v) out.push_back(Describe(*m));
  return out;
}

AppendResult Add(Store* store, std::string_view id, const Message& m) {
  StatusOr<AppendResult> r = store->Append(id, m);
  INFO("Append(" << id << "): " << r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

Message At(Message m, int64_t created_at_us, std::string user = "") {
  m.created_at_us = created_at_us;
  m.user_id = std::move(user);
  return m;
}

std::vector<ConversationInfo> ListAll(Store* store, const std::string& user,
                                      size_t page_size) {
  std::vector<ConversationInfo> all;
  ListOptions o;
  o.user_id = user;
  o.limit = page_size;
  for (int pages = 0; pages < 10000; ++pages) {
    StatusOr<ConversationPage> p = store->ListConversations(o);
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    CHECK(p->conversations.size() <= page_size);
    all.insert(all.end(), p->conversations.begin(), p->conversations.end());
    if (p->next_cursor.empty()) return all;
    o.cursor = p->next_cursor;
  }
  FAIL("ListConversations never returned an empty cursor");
  return all;
}

std::vector<std::string> Ids(const std::vector<ConversationInfo>& v) {
  std::vector<std::string> out;
  for (const ConversationInfo& c : v) out.push_back(c.conversation_id);
  return out;
}

Options SlowFlushOptions(const TempDir& dir) {
  Options o = TestOptions(dir);
  // Writes stay queued until someone waits for them.
  o.max_flush_delay = std::chrono::hours(1);
  return o;
}

// ----------------------------------------------------------------- Append

TEST_CASE("Options written with designated initializers build warning-free",
          "[store]") {
  // Store::Open({.path = ...}): Options' durability, log_sink and
  // sqlite_vfs had no default member initializer, so GCC's -Wextra warned
  // for each and a -Werror build (this one) failed.
  TempDir dir;
  StatusOr<std::unique_ptr<Store>> store =
      Store::Open({.path = dir.File("x.db"), .log_level = LogLevel::kError});
  REQUIRE(store.ok());
  REQUIRE((*store)->Close().ok());
}

TEST_CASE("Append assigns seq 1,2,3 per conversation and increasing LSNs",
          "[store]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  const std::vector<std::string> order = {"a", "a", "b", "a", "b", "c", "a"};
  std::map<std::string, int64_t> expect_seq;
  uint64_t last_lsn = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    AppendResult r = Add(store.get(), order[i],
                         Msg(Role::kUser, order[i] + std::to_string(i)));
    CHECK(r.seq == ++expect_seq[order[i]]);
    CHECK(r.lsn > last_lsn);
    last_lsn = r.lsn;
  }
  CHECK(Seqs(Hist(store.get(), "a")) == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(Contents(Hist(store.get(), "a")) ==
        std::vector<std::string>{"a0", "a1", "a3", "a6"});
  CHECK(Seqs(Hist(store.get(), "b")) == std::vector<int64_t>{1, 2});
  CHECK(Seqs(Hist(store.get(), "c")) == std::vector<int64_t>{1});
  CHECK(store->GetStats().appended_lsn == last_lsn);
}

TEST_CASE("Append keeps every field and fills created_at when absent",
          "[store]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Message call;
  call.role = Role::kAssistant;
  call.content = "calling the weather tool ☀";
  call.user_id = "u-1";
  call.tokens_in = 12;
  call.tokens_out = 34;
  call.tool_call_id = "call_7";
  call.tool_name = "weather";
  call.metadata = R"({"model":"x","temp":0.5,"tags":["a","ü"]})";
  call.created_at_us = kT0 + 5;
  Message result = Msg(Role::kTool, "{\"celsius\": 21}", 3, 0);
  result.tool_call_id = "call_7";
  result.tool_name = "weather";
  const int64_t before =
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  Add(store.get(), "conv", call);
  Add(store.get(), "conv", result);
  const int64_t after = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();

  auto check = [&](const std::vector<MessagePtr>& got) {
    REQUIRE(got.size() == 2);
    Message want = call;
    want.seq = 1;
    CHECK(Describe(*got[0]) == Describe(want));
    CHECK(got[1]->seq == 2);
    CHECK(got[1]->role == Role::kTool);
    CHECK(got[1]->content == result.content);
    CHECK(got[1]->tool_call_id == "call_7");
    CHECK(got[1]->tool_name == "weather");
    CHECK(got[1]->tokens_in == 3);
    CHECK(got[1]->created_at_us >= before);
    CHECK(got[1]->created_at_us <= after);
  };
  check(Hist(store.get(), "conv"));
  check(Hist(store.get(), "conv", {.from_storage = true}));
  std::vector<MessagePtr> mem = Hist(store.get(), "conv");
  REQUIRE(store->Close().ok());
  store = OpenOrDie(TestOptions(dir));
  std::vector<MessagePtr> reopened = Hist(store.get(), "conv");
  check(reopened);
  CHECK(DescribeAll(reopened) == DescribeAll(mem));
}

// ---------------------------------------------------------------- History

// seq  role       tokens  tool_call_id
//  1   system      10
//  2   user         5
//  3   assistant    7     c1 (calls two tools)
//  4   tool        20     c1
//  5   tool         3     c1
//  6   assistant    4
//  7   user         6
void AppendToolConversation(Store* store, const std::string& id) {
  Message sys = Msg(Role::kSystem, "you are helpful", 10);
  Message user = Msg(Role::kUser, "what's the weather?", 5);
  Message call = Msg(Role::kAssistant, "", 0, 7);
  call.tool_call_id = "c1";
  call.tool_name = "weather";
  Message r1 = Msg(Role::kTool, "sunny", 20);
  r1.tool_call_id = "c1";
  Message r2 = Msg(Role::kTool, "21C", 3);
  r2.tool_call_id = "c1";
  Message answer = Msg(Role::kAssistant, "sunny, 21C", 0, 4);
  Message thanks = Msg(Role::kUser, "thanks", 6);
  for (const Message& m : {sys, user, call, r1, r2, answer, thanks}) {
    Add(store, id, m);
  }
}

// The same windows whatever answers them: memory, from_storage, or a cold
// store that reads through.
void CheckToolWindows(Store* store, const std::string& id, bool from_storage) {
  using V = std::vector<int64_t>;
  auto seqs = [&](HistoryOptions o) {
    o.from_storage = from_storage;
    return Seqs(Hist(store, id, o));
  };
  CHECK(seqs({}) == V{1, 2, 3, 4, 5, 6, 7});
  // last_n: never starts with an orphaned tool result; system pinned.
  CHECK(seqs({.last_n = 2}) == V{1, 6, 7});
  CHECK(seqs({.last_n = 3}) == V{1, 6, 7});
  CHECK(seqs({.last_n = 4}) == V{1, 6, 7});
  CHECK(seqs({.last_n = 5}) == V{1, 3, 4, 5, 6, 7});
  CHECK(seqs({.last_n = 6}) == V{1, 2, 3, 4, 5, 6, 7});
  CHECK(seqs({.last_n = 7}) == V{1, 2, 3, 4, 5, 6, 7});
  CHECK(seqs({.last_n = 100}) == V{1, 2, 3, 4, 5, 6, 7});
  CHECK(seqs({.last_n = 2, .pin_system = false}) == V{6, 7});
  CHECK(seqs({.last_n = 4, .pin_system = false}) == V{6, 7});
  // token_budget: the call (7) and its results (20 + 3) are one group of 30.
  // Pinned system (10) is reserved first.
  CHECK(seqs({.token_budget = 40}) == V{1, 6, 7});
  CHECK(seqs({.token_budget = 49}) == V{1, 6, 7});
  CHECK(seqs({.token_budget = 50}) == V{1, 3, 4, 5, 6, 7});
  CHECK(seqs({.token_budget = 55}) == V{1, 2, 3, 4, 5, 6, 7});
  CHECK(seqs({.token_budget = 1000}) == V{1, 2, 3, 4, 5, 6, 7});
  CHECK(seqs({.token_budget = 39, .pin_system = false}) == V{6, 7});
  CHECK(seqs({.token_budget = 40, .pin_system = false}) == V{3, 4, 5, 6, 7});
  CHECK(seqs({.token_budget = 44, .pin_system = false}) == V{3, 4, 5, 6, 7});
  CHECK(seqs({.token_budget = 45, .pin_system = false}) == V{2, 3, 4, 5, 6, 7});
  CHECK(seqs({.token_budget = 5, .pin_system = false}) == V{});
  // last_n then token_budget.
  CHECK(seqs({.last_n = 5, .token_budget = 30, .pin_system = false}) ==
        V{6, 7});
  // Forward paging with limit + after_seq.
  CHECK(seqs({.limit = 3}) == V{1, 2, 3});
  CHECK(seqs({.after_seq = 3, .limit = 3}) == V{4, 5, 6});
  CHECK(seqs({.after_seq = 6, .limit = 3}) == V{7});
  CHECK(seqs({.after_seq = 7, .limit = 3}) == V{});
  CHECK(seqs({.after_seq = 4}) == V{5, 6, 7});
  CHECK(seqs({.after_seq = 100}) == V{});
}

TEST_CASE("Append takes over a moved message's text and copies a kept one",
          "[store]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  // Longer than any short-string buffer, so a move hands over the heap
  // buffer itself and a copy makes a new one.
  const std::string text(300, 'x');
  Message kept = Msg(Role::kUser, text, 1, 0);
  REQUIRE(store->Append("conv", kept).ok());  // an lvalue: copied
  CHECK(kept.content == text);                // the caller's message is kept

  Message handed = Msg(Role::kAssistant, text + "y", 0, 1);
  const char* buffer = handed.content.data();
  StatusOr<AppendResult> r = store->Append("conv", std::move(handed));
  REQUIRE(r.ok());
  CHECK(r->seq == 2);

  std::vector<MessagePtr> got = Hist(store.get(), "conv");
  REQUIRE(got.size() == 2);
  CHECK(got[0]->content == text);
  CHECK(got[1]->content == text + "y");
  // No copy of the moved text: the stored message owns the same buffer.
  CHECK(got[1]->content.data() == buffer);
  REQUIRE(store->Flush().ok());
}

TEST_CASE("History windows: last_n, paging, token budget, pin_system",
          "[store][history]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto store = OpenOrDie(o);
  AppendToolConversation(store.get(), "tools");
  SECTION("from memory") { CheckToolWindows(store.get(), "tools", false); }
  SECTION("from storage") { CheckToolWindows(store.get(), "tools", true); }
  SECTION("cold store reading through") {
    REQUIRE(store->Close().ok());
    o.warm_conversations = 0;
    store = OpenOrDie(o);
    CheckToolWindows(store.get(), "tools", false);
  }
  SECTION("cold store, per-conversation cache smaller than the window") {
    REQUIRE(store->Close().ok());
    o.warm_conversations = 0;
    o.cache_max_messages_per_conversation = 2;
    store = OpenOrDie(o);
    CheckToolWindows(store.get(), "tools", false);
  }
}

TEST_CASE("History rejects contradictory options", "[store][history]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Add(store.get(), "c", Msg(Role::kUser, "x"));
  CHECK(store->History("c", {.limit = 2, .last_n = 2})
            .status()
            .IsInvalidArgument());
  CHECK(store->History("c", {.after_seq = -1}).status().IsInvalidArgument());
  CHECK(store->History("c", {.token_budget = -5}).status().IsInvalidArgument());
}

TEST_CASE("History paging with limit and after_seq visits every message once",
          "[store][history]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  for (int i = 1; i <= 25; ++i) {
    Add(store.get(), "long", Msg(Role::kUser, "m" + std::to_string(i)));
  }
  for (bool from_storage : {false, true}) {
    std::vector<int64_t> seen;
    int64_t after = 0;
    for (int page = 0; page < 100; ++page) {
      auto got =
          Hist(store.get(), "long",
               {.after_seq = after, .limit = 7, .from_storage = from_storage});
      if (got.empty()) break;
      CHECK(got.size() <= 7);
      for (const MessagePtr& m : got) {
        CHECK(m->content == "m" + std::to_string(m->seq));
        seen.push_back(m->seq);
      }
      after = got.back()->seq;
    }
    std::vector<int64_t> want;
    for (int i = 1; i <= 25; ++i) want.push_back(i);
    CHECK(seen == want);
  }
}

TEST_CASE("History from_storage equals memory after Flush",
          "[store][history]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  AppendToolConversation(store.get(), "t");
  for (int i = 0; i < 30; ++i) {
    Message m = Msg(i % 2 ? Role::kAssistant : Role::kUser,
                    "turn " + std::to_string(i) + " ✓", i, 2 * i);
    m.metadata = "{\"i\":" + std::to_string(i) + "}";
    Add(store.get(), "t", m);
  }
  REQUIRE(store->Flush().ok());
  for (HistoryOptions o : std::vector<HistoryOptions>{
           {},
           {.last_n = 5},
           {.after_seq = 3, .limit = 10},
           {.token_budget = 100},
           {.token_budget = 100, .pin_system = false}}) {
    std::vector<MessagePtr> mem = Hist(store.get(), "t", o);
    o.from_storage = true;
    std::vector<MessagePtr> disk = Hist(store.get(), "t", o);
    CHECK(DescribeAll(mem) == DescribeAll(disk));
  }
}

TEST_CASE("History of a conversation that does not exist is empty",
          "[store][history]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Add(store.get(), "exists", Msg(Role::kUser, "hi"));
  CHECK(Hist(store.get(), "nope").empty());
  CHECK(Hist(store.get(), "nope", {.last_n = 3}).empty());
  CHECK(Hist(store.get(), "nope", {.after_seq = 2, .limit = 1}).empty());
  CHECK(Hist(store.get(), "nope", {.from_storage = true}).empty());
  // Reading it did not create it.
  StatusOr<ConversationPage> page = store->ListConversations();
  REQUIRE(page.ok());
  CHECK(Ids(page->conversations) == std::vector<std::string>{"exists"});
}

// ------------------------------------------------------- ListConversations

TEST_CASE("ListConversations orders by last activity and reports summaries",
          "[store][list]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  // c0..c4 at increasing times; then c1 becomes the most recent.
  for (int i = 0; i < 5; ++i) {
    std::string id = "c" + std::to_string(i);
    Add(store.get(), id,
        At(Msg(Role::kUser, "q", 3, 0), kT0 + i * 100, i % 2 ? "bob" : "ann"));
    Add(store.get(), id,
        At(Msg(Role::kAssistant, "a", 0, 4), kT0 + i * 100 + 1));
  }
  Add(store.get(), "c1", At(Msg(Role::kUser, "again", 2, 0), kT0 + 1000));

  auto check = [&](Store* s) {
    std::vector<ConversationInfo> all = ListAll(s, "", 100);
    REQUIRE(Ids(all) == std::vector<std::string>{"c1", "c4", "c3", "c2", "c0"});
    const ConversationInfo& c1 = all[0];
    CHECK(c1.user_id == "bob");
    CHECK(c1.message_count == 3);
    CHECK(c1.tokens_in == 5);
    CHECK(c1.tokens_out == 4);
    CHECK(c1.first_at_us == kT0 + 100);
    CHECK(c1.last_at_us == kT0 + 1000);
    CHECK(c1.last_seq == 3);
    const ConversationInfo& c0 = all[4];
    CHECK(c0.user_id == "ann");
    CHECK(c0.message_count == 2);
    CHECK(c0.first_at_us == kT0);
    CHECK(c0.last_at_us == kT0 + 1);
    CHECK(Ids(ListAll(s, "bob", 100)) == std::vector<std::string>{"c1", "c3"});
    CHECK(Ids(ListAll(s, "ann", 100)) ==
          std::vector<std::string>{"c4", "c2", "c0"});
    CHECK(ListAll(s, "nobody", 100).empty());
    CHECK(Ids(ListAll(s, "", 2)) ==
          std::vector<std::string>{"c1", "c4", "c3", "c2", "c0"});
  };
  SECTION("pending") { check(store.get()); }
  SECTION("durable") {
    REQUIRE(store->Flush().ok());
    check(store.get());
  }
  SECTION("reopened") {
    REQUIRE(store->Close().ok());
    store = OpenOrDie(TestOptions(dir));
    check(store.get());
  }
  ListOptions zero;
  zero.limit = 0;
  CHECK(store->ListConversations(zero).status().IsInvalidArgument());
  ListOptions garbage;
  garbage.cursor = "garbage";
  CHECK(store->ListConversations(garbage).status().IsInvalidArgument());
}

TEST_CASE("ListConversations cursor paging has no duplicates or misses",
          "[store][list]") {
  TempDir dir;
  auto store = OpenOrDie(SlowFlushOptions(dir));
  // 23 durable conversations, some with equal last activity (ties are
  // broken by id).
  for (int i = 0; i < 23; ++i) {
    std::string id = "d" + std::to_string(100 + i);
    Add(store.get(), id,
        At(Msg(Role::kUser, "x"), kT0 + (i / 2) * 10, i % 3 ? "u1" : "u2"));
  }
  REQUIRE(store->Flush().ok());
  // Then pending writes: five new conversations and fresh activity on two
  // old ones.
  for (int i = 0; i < 5; ++i) {
    Add(store.get(), "p" + std::to_string(i),
        At(Msg(Role::kUser, "y"), kT0 + 5000 + i * 10, "u1"));
  }
  Add(store.get(), "d105", At(Msg(Role::kUser, "z"), kT0 + 3000, "u1"));
  Add(store.get(), "d110", At(Msg(Role::kUser, "z"), kT0 + 9000, "u1"));
  Stats st = store->GetStats();
  REQUIRE(st.durable_lsn < st.appended_lsn);  // really still queued

  // Expected order, computed by hand from the rules: last_at desc, id desc.
  std::vector<std::pair<int64_t, std::string>> rows;
  for (int i = 0; i < 23; ++i) {
    rows.push_back({kT0 + (i / 2) * 10, "d" + std::to_string(100 + i)});
  }
  for (auto& r : rows) {
    if (r.second == "d105") r.first = kT0 + 3000;
    if (r.second == "d110") r.first = kT0 + 9000;
  }
  for (int i = 0; i < 5; ++i) {
    rows.push_back({kT0 + 5000 + i * 10, "p" + std::to_string(i)});
  }
  std::sort(rows.rbegin(), rows.rend());
  std::vector<std::string> expected;  // newest first
  for (auto& r : rows) expected.push_back(r.second);

  for (size_t page : {1, 3, 4, 7, 28, 100}) {
    INFO("page size " << page);
    std::vector<std::string> got = Ids(ListAll(store.get(), "", page));
    CHECK(got == expected);
    CHECK(std::set<std::string>(got.begin(), got.end()).size() == got.size());
  }
  std::vector<std::string> u2;
  for (int i = 0; i < 23; i += 3) u2.push_back("d" + std::to_string(100 + i));
  std::vector<std::string> want_u2;
  for (const std::string& id : expected) {
    if (std::find(u2.begin(), u2.end(), id) != u2.end()) want_u2.push_back(id);
  }
  CHECK(Ids(ListAll(store.get(), "u2", 2)) == want_u2);
  CHECK(store->GetStats().durable_lsn < store->GetStats().appended_lsn);
}

TEST_CASE(
    "ListConversations includes queued writes and excludes pending "
    "deletes",
    "[store][list]") {
  TempDir dir;
  auto store = OpenOrDie(SlowFlushOptions(dir));
  Add(store.get(), "old", At(Msg(Role::kUser, "o", 1, 0), kT0, "u"));
  Add(store.get(), "gone", At(Msg(Role::kUser, "g"), kT0 + 10, "u"));
  REQUIRE(store->Flush().ok());
  Add(store.get(), "new", At(Msg(Role::kUser, "n", 2, 0), kT0 + 20, "u"));
  Add(store.get(), "old", At(Msg(Role::kUser, "o2", 4, 0), kT0 + 30, "u"));
  StatusOr<uint64_t> del = store->DeleteConversation("gone");
  REQUIRE(del.ok());
  Stats st = store->GetStats();
  REQUIRE(st.durable_lsn < st.appended_lsn);
  REQUIRE(st.durable_lsn < *del);

  std::vector<ConversationInfo> all = ListAll(store.get(), "", 10);
  REQUIRE(Ids(all) == std::vector<std::string>{"old", "new"});
  CHECK(all[0].message_count == 2);
  CHECK(all[0].tokens_in == 5);
  CHECK(all[0].last_seq == 2);
  CHECK(all[1].message_count == 1);
  CHECK(Ids(ListAll(store.get(), "u", 1)) ==
        std::vector<std::string>{"old", "new"});
  CHECK(Hist(store.get(), "gone").empty());
  CHECK(store->GetStats().durable_lsn < *del);

  REQUIRE(store->Flush().ok());
  CHECK(Ids(ListAll(store.get(), "", 10)) ==
        std::vector<std::string>{"old", "new"});
  Stats after = store->GetStats();
  CHECK(after.db_conversations == 2);
  CHECK(after.db_messages == 3);
}

// ----------------------------------------------------------------- Delete

TEST_CASE("DeleteConversation then Append restarts at seq 1 for good",
          "[store][delete]") {
  TempDir dir;
  Options o = TestOptions(dir);
  const bool pending = GENERATE(false, true);
  INFO("old writes still queued at delete: " << pending);
  if (pending) o.max_flush_delay = std::chrono::hours(1);
  auto store = OpenOrDie(o);
  for (int i = 1; i <= 5; ++i) {
    Add(store.get(), "x", Msg(Role::kUser, "old-" + std::to_string(i), 1, 1));
  }
  Add(store.get(), "keep", Msg(Role::kUser, "kept"));
  if (!pending) REQUIRE(store->Flush().ok());
  StatusOr<uint64_t> del = store->DeleteConversation("x");
  REQUIRE(del.ok());
  CHECK(*del == store->GetStats().appended_lsn);
  CHECK(Hist(store.get(), "x").empty());
  AppendResult r1 = Add(store.get(), "x", Msg(Role::kUser, "new-1"));
  AppendResult r2 = Add(store.get(), "x", Msg(Role::kUser, "new-2"));
  CHECK(r1.seq == 1);
  CHECK(r2.seq == 2);
  CHECK(r1.lsn > *del);

  const std::vector<std::string> want = {"new-1", "new-2"};
  auto check = [&](Store* s) {
    std::vector<MessagePtr> h = Hist(s, "x");
    CHECK(Contents(h) == want);
    CHECK(Seqs(h) == std::vector<int64_t>{1, 2});
    std::vector<ConversationInfo> all = ListAll(s, "", 10);
    REQUIRE(all.size() == 2);
    for (const ConversationInfo& c : all) {
      if (c.conversation_id != "x") continue;
      CHECK(c.message_count == 2);
      CHECK(c.tokens_in == 0);
      CHECK(c.last_seq == 2);
    }
    CHECK(Contents(Hist(s, "keep")) == std::vector<std::string>{"kept"});
  };
  check(store.get());
  REQUIRE(store->Flush().ok());
  check(store.get());
  CHECK(Contents(Hist(store.get(), "x", {.from_storage = true})) == want);
  REQUIRE(store->Close().ok());
  for (int64_t warm : {-1, 0}) {
    o.warm_conversations = warm;
    store = OpenOrDie(o);
    check(store.get());
    CHECK(store->GetStats().db_messages == 3);
    REQUIRE(store->Close().ok());
  }
}

TEST_CASE("DeleteConversation of an unknown conversation is OK",
          "[store][delete]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  StatusOr<uint64_t> del = store->DeleteConversation("never-existed");
  REQUIRE(del.ok());
  CHECK(*del > 0);
  CHECK(store->WaitDurable(*del).ok());
  CHECK(Hist(store.get(), "never-existed").empty());
  CHECK(store->DeleteConversation("").status().IsInvalidArgument());
  CHECK(Add(store.get(), "never-existed", Msg(Role::kUser, "a")).seq == 1);
}

// ---------------------------------------------------- Flush / WaitDurable

TEST_CASE("Flush and WaitDurable make writes durable", "[store][durability]") {
  TempDir dir;
  auto store = OpenOrDie(SlowFlushOptions(dir));
  AppendResult a = Add(store.get(), "c", Msg(Role::kUser, "1"));
  AppendResult b = Add(store.get(), "c", Msg(Role::kUser, "2"));
  CHECK(store->GetStats().durable_lsn < a.lsn);
  CHECK(store->WaitDurable(a.lsn).ok());
  CHECK(store->GetStats().durable_lsn >= a.lsn);
  Add(store.get(), "c", Msg(Role::kUser, "3"));
  CHECK(store->Flush().ok());
  Stats st = store->GetStats();
  CHECK(st.durable_lsn == st.appended_lsn);
  CHECK(st.durable_lsn > b.lsn);
  CHECK(st.db_messages == 3);
  // A flush with nothing pending is OK at once.
  CHECK(store->Flush(std::chrono::milliseconds(0)).ok());
  CHECK(store->WaitDurable(b.lsn, std::chrono::milliseconds(0)).ok());
}

TEST_CASE("WaitDurable on an LSN not handed out is InvalidArgument",
          "[store][durability]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  AppendResult a = Add(store.get(), "c", Msg(Role::kUser, "1"));
  CHECK(store->WaitDurable(a.lsn + 1).IsInvalidArgument());
  CHECK(store->WaitDurable(a.lsn + 1'000'000).IsInvalidArgument());
  CHECK(store->WaitDurable(UINT64_MAX).IsInvalidArgument());
  CHECK(store->WaitDurable(a.lsn).ok());
}

TEST_CASE("AppendOptions::sync returns a durable write",
          "[store][durability]") {
  TempDir dir;
  auto store = OpenOrDie(SlowFlushOptions(dir));
  StatusOr<AppendResult> r =
      store->Append("c", Msg(Role::kUser, "now"), {.sync = true});
  REQUIRE(r.ok());
  CHECK(store->GetStats().durable_lsn >= r->lsn);
}

// ------------------------------------------------------------------ Close

TEST_CASE("Close reports what it wrote and closes the store",
          "[store][close]") {
  TempDir dir;
  auto store = OpenOrDie(SlowFlushOptions(dir));
  uint64_t last = 0;
  for (int i = 0; i < 40; ++i) {
    last = Add(store.get(), "c" + std::to_string(i % 4),
               Msg(Role::kUser, std::to_string(i)))
               .lsn;
  }
  StatusOr<uint64_t> del = store->DeleteConversation("c3");
  REQUIRE(del.ok());
  last = *del;
  CHECK(store->GetStats().durable_lsn < last);  // Close must drain these
  StatusOr<CloseReport> report = store->Close();
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->remaining == 0);
  CHECK(report->failed == 0);
  CHECK(report->last_durable_lsn == last);
  CHECK(report->written == 41);

  CHECK(store->Append("c0", Msg(Role::kUser, "late"))
            .status()
            .IsFailedPrecondition());
  CHECK(store->History("c0").status().IsFailedPrecondition());
  CHECK(store->ListConversations().status().IsFailedPrecondition());
  CHECK(store->DeleteConversation("c0").status().IsFailedPrecondition());
  CHECK(store->Close().status().IsFailedPrecondition());
  store.reset();  // the destructor after Close is harmless

  store = OpenOrDie(TestOptions(dir));
  CHECK(Hist(store.get(), "c0").size() == 10);
  CHECK(Hist(store.get(), "c3").empty());
  CHECK(store->GetStats().appended_lsn == last);
}

TEST_CASE("WaitDurable after Close says whether Close made the write durable",
          "[store][close]") {
  // A caller that got an lsn and raced a shutdown asks whether its write
  // is durable: it used to get FailedPrecondition even when Close had
  // committed it.
  TempDir dir;
  {
    auto store = OpenOrDie(SlowFlushOptions(dir));  // queued until Close
    AppendResult a = Add(store.get(), "c", Msg(Role::kUser, "1"));
    StatusOr<CloseReport> r = store->Close();
    REQUIRE(r.ok());
    REQUIRE(r->last_durable_lsn >= a.lsn);
    Status s = store->WaitDurable(a.lsn);
    INFO(s.ToString());
    CHECK(s.ok());
    CHECK(store->Flush().ok());
    CHECK(store->WaitDurable(a.lsn + 1).IsInvalidArgument());
  }
  // A Close that gives up with a write not committed: another connection
  // holds the write lock.
  Options o = TestOptions(dir);
  o.log_level = LogLevel::kOff;
  o.busy_timeout = std::chrono::milliseconds(50);
  auto store = OpenOrDie(o);
  AppendResult durable = Add(store.get(), "c", Msg(Role::kUser, "2"));
  REQUIRE(store->Flush().ok());
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open_v2(o.path.c_str(), &other, SQLITE_OPEN_READWRITE,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  AppendResult pending = Add(store.get(), "c", Msg(Role::kUser, "3"));
  StatusOr<CloseReport> r = store->Close(std::chrono::milliseconds(300));
  CHECK_FALSE(r.ok());
  CHECK(store->WaitDurable(durable.lsn).ok());
  Status late = store->WaitDurable(pending.lsn);
  INFO(late.ToString());
  CHECK(late.IsFailedPrecondition());
  CHECK(late.ToString().find("before write lsn " +
                             std::to_string(pending.lsn)) != std::string::npos);
  CHECK(store->Flush().IsFailedPrecondition());
  // The other calls stay refused.
  CHECK(store->History("c").status().IsFailedPrecondition());
  CHECK(store->TruncateWal().IsFailedPrecondition());
  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close_v2(other);
}

TEST_CASE("The destructor writes what Close would", "[store][close]") {
  TempDir dir;
  {
    auto store = OpenOrDie(SlowFlushOptions(dir));
    for (int i = 0; i < 10; ++i) Add(store.get(), "c", Msg(Role::kUser, "m"));
  }
  auto store = OpenOrDie(TestOptions(dir));
  CHECK(Seqs(Hist(store.get(), "c")) ==
        std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
}

// ------------------------------------------------------------------ Stats

TEST_CASE("GetStats counters are consistent", "[store][stats]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Stats s0 = store->GetStats();
  CHECK(s0.appended_lsn == 0);
  CHECK(s0.durable_lsn == 0);
  CHECK(s0.cached_conversations == 0);
  CHECK(s0.db_messages == 0);

  for (int i = 0; i < 10; ++i) {
    Add(store.get(), i % 2 ? "odd" : "even",
        Msg(Role::kUser, "message " + std::to_string(i)));
  }
  Stats s1 = store->GetStats();
  CHECK(s1.appended_lsn == 10);
  CHECK(s1.durable_lsn <= s1.appended_lsn);
  CHECK(s1.cached_conversations == 2);
  CHECK(s1.cached_messages == 10);
  CHECK(s1.cached_bytes > 0);
  CHECK(s1.queue_items_high_water > 0);
  CHECK(s1.queue_bytes_high_water > 0);
  CHECK(s1.queue_rejections == 0);

  REQUIRE(store->Flush().ok());
  Stats s2 = store->GetStats();
  CHECK(s2.durable_lsn == 10);
  CHECK(s2.appended_lsn == 10);
  CHECK(s2.db_conversations == 2);
  CHECK(s2.db_messages == 10);
  CHECK(s2.batches_committed > 0);
  CHECK(s2.batches_committed <= 10);
  CHECK(s2.rows_committed == 10);
  CHECK(s2.queue_items == 0);
  CHECK(s2.queue_bytes == 0);
  CHECK(s2.oldest_unflushed_age_us == 0);
  CHECK(s2.writes_failed == 0);
  CHECK(s2.commit_errors == 0);
  CHECK(s2.commit_latency_p50_us <= s2.commit_latency_p99_us);
  CHECK(s2.enqueue_to_durable_p50_us <= s2.enqueue_to_durable_p99_us);
  CHECK(s2.background_error.empty());
  CHECK(store->Health().ok());

  Hist(store.get(), "odd");
  Stats s3 = store->GetStats();
  CHECK(s3.cache_hits > s2.cache_hits);
  CHECK(s3.cache_misses == s2.cache_misses);
  Hist(store.get(), "missing");
  Stats s4 = store->GetStats();
  CHECK(s4.cache_misses > s3.cache_misses);
}

TEST_CASE("GetStats reports index merges and unmerged messages",
          "[store][stats]") {
  TempDir dir;
  Options o = SlowFlushOptions(dir);  // each Flush commits one batch
  o.index_merge_rows = 8;
  auto store = OpenOrDie(o);
  for (int i = 0; i < 5; ++i) Add(store.get(), "c", Msg(Role::kUser, "m"));
  REQUIRE(store->Flush().ok());
  Stats st = store->GetStats();
  CHECK(st.index_merges == 0);
  CHECK(st.unmerged_messages == 5);
  for (int i = 0; i < 5; ++i) Add(store.get(), "c", Msg(Role::kUser, "m"));
  REQUIRE(store->Flush().ok());
  // The writer merges right after the commit that Flush waited for.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store->GetStats().index_merges == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  st = store->GetStats();
  CHECK(st.index_merges == 1);
  CHECK(st.unmerged_messages == 0);
  CHECK(st.index_merge_max_us > 0);
  CHECK(st.index_merge_total_us == st.index_merge_max_us);
  CHECK(st.db_messages == 10);
}

TEST_CASE("GetStats shows queued writes while the writer waits",
          "[store][stats]") {
  TempDir dir;
  auto store = OpenOrDie(SlowFlushOptions(dir));
  for (int i = 0; i < 5; ++i) Add(store.get(), "c", Msg(Role::kUser, "m"));
  Stats st = store->GetStats();
  CHECK(st.appended_lsn == 5);
  CHECK(st.durable_lsn == 0);
  CHECK(st.queue_items == 5);
  CHECK(st.queue_bytes > 0);
  CHECK(st.queue_items_high_water >= 5);
  CHECK(st.db_messages == 0);
  REQUIRE(store->Flush().ok());
  CHECK(store->GetStats().queue_items == 0);
  CHECK(store->GetStats().db_messages == 5);
}

// ------------------------------------------------------------- Validation

TEST_CASE("Bad input is refused with InvalidArgument and nothing is stored",
          "[store][validation]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_content_bytes = 1024;
  auto store = OpenOrDie(o);
  const Message ok = Msg(Role::kUser, "fine");

  struct Case {
    std::string name;
    std::string id;
    Message m;
  };
  std::vector<Case> cases;
  cases.push_back({"empty id", "", ok});
  cases.push_back({"oversized id", std::string(257, 'i'), ok});
  cases.push_back({"NUL in id", std::string("a\0b", 3), ok});
  cases.push_back({"invalid UTF-8 id", "id\xff", ok});
  auto with = [&](auto edit) {
    Message m = ok;
    edit(m);
    return m;
  };
  cases.push_back({"truncated UTF-8 content", "v",
                   with([](Message& m) { m.content = "abc\xc3"; })});
  cases.push_back({"surrogate in content", "v",
                   with([](Message& m) { m.content = "\xed\xa0\x80"; })});
  cases.push_back({"overlong UTF-8 content", "v",
                   with([](Message& m) { m.content = "\xc0\xaf"; })});
  cases.push_back({"content over max_content_bytes", "v", with([](Message& m) {
                     m.content = std::string(1025, 'x');
                   })});
  for (const char* meta : {"[1,2]", "42", "\"s\"", "null", "{not json", "{"}) {
    cases.push_back({std::string("metadata ") + meta, "v",
                     with([&](Message& m) { m.metadata = meta; })});
  }
  cases.push_back(
      {"negative tokens_in", "v", with([](Message& m) { m.tokens_in = -1; })});
  cases.push_back({"negative tokens_out", "v",
                   with([](Message& m) { m.tokens_out = -7; })});
  cases.push_back({"unknown role", "v",
                   with([](Message& m) { m.role = static_cast<Role>(9); })});
  cases.push_back({"invalid UTF-8 user_id", "v",
                   with([](Message& m) { m.user_id = "\x80"; })});
  cases.push_back({"NUL in user_id", "v", with([](Message& m) {
                     m.user_id = std::string("u\0", 2);
                   })});

  for (const Case& c : cases) {
    INFO(c.name);
    StatusOr<AppendResult> r = store->Append(c.id, c.m);
    CHECK(r.status().IsInvalidArgument());
    CHECK(!r.status().message().empty());
  }
  Stats st = store->GetStats();
  CHECK(st.appended_lsn == 0);
  CHECK(st.cached_messages == 0);
  CHECK(Hist(store.get(), "v").empty());
  CHECK(store->History("").status().IsInvalidArgument());
  CHECK(store->History(std::string("a\0b", 3)).status().IsInvalidArgument());

  // The limits themselves are allowed, and no seq was consumed.
  Message edge = ok;
  edge.content = std::string(1024, 'x');
  edge.metadata = "{}";
  CHECK(Add(store.get(), "v", edge).seq == 1);
  CHECK(Add(store.get(), std::string(256, 'i'), ok).seq == 1);
  REQUIRE(store->Flush().ok());
  st = store->GetStats();
  CHECK(st.db_messages == 2);
  CHECK(st.db_conversations == 2);
  CHECK(ListAll(store.get(), "", 10).size() == 2);
}

TEST_CASE("SQL-looking strings are stored verbatim", "[store][validation]") {
  TempDir dir;
  Options o = TestOptions(dir);
  const std::string id = "x'); DROP TABLE messages;--";
  const std::string user = "' OR '1'='1";
  Message m = Msg(Role::kUser, "Robert'); DROP TABLE conversations; -- \"%_\\");
  m.user_id = user;
  m.tool_call_id = "1; DELETE FROM messages";
  m.tool_name = "`; --";
  m.metadata = R"({"q":"'; DROP TABLE store_meta; --"})";
  m.created_at_us = kT0;
  {
    auto store = OpenOrDie(o);
    Add(store.get(), id, m);
    Add(store.get(), "innocent", At(Msg(Role::kUser, "hi"), kT0 + 1, "alice"));
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  std::vector<MessagePtr> h = Hist(store.get(), id);
  REQUIRE(h.size() == 1);
  Message want = m;
  want.seq = 1;
  CHECK(Describe(*h[0]) == Describe(want));
  CHECK(Ids(ListAll(store.get(), user, 10)) == std::vector<std::string>{id});
  CHECK(Ids(ListAll(store.get(), "", 10)) ==
        std::vector<std::string>{"innocent", id});
  CHECK(Hist(store.get(), "innocent").size() == 1);
}

// ------------------------------------------------------------------- Open

TEST_CASE("Open with create_if_missing=false on a missing file is NotFound",
          "[store][open]") {
  TempDir dir;
  Options o = TestOptions(dir, "absent.db");
  o.create_if_missing = false;
  StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
  CHECK(s.status().IsNotFound());
  CHECK(!std::filesystem::exists(o.path));
  o.path = dir.File("no/such/dir/absent.db");
  CHECK(Store::Open(o).status().IsNotFound());
  CHECK(!std::filesystem::exists(dir.File("no")));
}

TEST_CASE("Open creates missing directories", "[store][open]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.path = dir.File("a/b/c/store.db");
  {
    auto store = OpenOrDie(o);
    Add(store.get(), "c", Msg(Role::kUser, "x"));
  }
  auto store = OpenOrDie(o);
  CHECK(Hist(store.get(), "c").size() == 1);
}

TEST_CASE("Open on an unusable path returns an error", "[store][open]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.path = dir.path().string();  // a directory, not a file
  CHECK(!Store::Open(o).ok());
  o.path = "";
  CHECK(!Store::Open(o).ok());

  const std::string ro = dir.File("readonly");
  std::filesystem::create_directories(ro);
  REQUIRE(::chmod(ro.c_str(), 0555) == 0);
  if (::access(ro.c_str(), W_OK) == 0) {
    WARN(
        "running with write access to a 0555 directory (root?): "
        "skipping the read-only directory check");
  } else {
    o.path = ro + "/store.db";
    StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK(!s.ok());
    INFO(s.status().ToString());
    o.path = ro + "/sub/store.db";
    CHECK(!Store::Open(o).ok());
  }
  (void)::chmod(ro.c_str(), 0755);
}

// ----------------------------------------------------------- Cache bounds

TEST_CASE("Evicted conversations read back complete", "[store][cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_shards = 1;
  o.cache_max_conversations = 3;
  auto store = OpenOrDie(o);
  const int kConvs = 12;
  const int kMsgs = 4;
  for (int c = 0; c < kConvs; ++c) {
    for (int i = 1; i <= kMsgs; ++i) {
      Add(store.get(), "conv" + std::to_string(c),
          Msg(Role::kUser, std::to_string(c) + "/" + std::to_string(i)));
    }
    REQUIRE(store->Flush().ok());  // durable, so it may be evicted
  }
  // Twice: the second pass reads conversations the first pass evicted again.
  for (int pass = 0; pass < 2; ++pass) {
    for (int c = 0; c < kConvs; ++c) {
      std::vector<MessagePtr> h = Hist(store.get(), "conv" + std::to_string(c));
      std::vector<std::string> want;
      for (int i = 1; i <= kMsgs; ++i) {
        want.push_back(std::to_string(c) + "/" + std::to_string(i));
      }
      CHECK(Contents(h) == want);
      CHECK(Seqs(h) == std::vector<int64_t>{1, 2, 3, 4});
    }
  }
  Stats st = store->GetStats();
  CHECK(st.cache_evictions > 0);
  CHECK(st.cached_conversations <= 3);
  CHECK(st.cache_misses >= static_cast<uint64_t>(kConvs));
  // An evicted conversation keeps counting from where it was.
  CHECK(Add(store.get(), "conv0", Msg(Role::kUser, "0/5")).seq == 5);
}

TEST_CASE("Byte-bounded cache evicts and still reads back complete",
          "[store][cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_shards = 1;
  o.cache_max_bytes = 64 << 10;
  auto store = OpenOrDie(o);
  const std::string pad(4000, 'p');
  for (int c = 0; c < 20; ++c) {
    for (int i = 0; i < 3; ++i) {
      Add(store.get(), "c" + std::to_string(c),
          Msg(Role::kUser, std::to_string(i) + pad));
    }
    REQUIRE(store->Flush().ok());
  }
  for (int c = 0; c < 20; ++c) {
    std::vector<MessagePtr> h = Hist(store.get(), "c" + std::to_string(c));
    REQUIRE(h.size() == 3);
    for (int i = 0; i < 3; ++i) CHECK(h[i]->content == std::to_string(i) + pad);
  }
  Stats st = store->GetStats();
  CHECK(st.cache_evictions > 0);
  CHECK(st.cached_bytes <= o.cache_max_bytes);
}

TEST_CASE(
    "Over the byte bound, conversations with writes not yet durable "
    "keep only those and read the rest back",
    "[store][cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_shards = 1;
  o.cache_max_bytes = 64 << 10;
  o.max_flush_delay = std::chrono::seconds(60);  // durable only at Flush
  auto store = OpenOrDie(o);
  const std::string pad(4000, 'p');
  auto id = [](int c) { return "c" + std::to_string(c); };
  auto content = [&](int i) { return std::to_string(i) + pad; };
  const int kConvs = 10;
  for (int c = 0; c < kConvs; ++c) {
    for (int i = 0; i < 3; ++i) {
      Add(store.get(), id(c),
          Msg(i == 0 ? Role::kSystem : Role::kUser, content(i)));
    }
  }
  REQUIRE(store->Flush().ok());
  // A fourth message each, not durable: every conversation is pinned, and
  // together they are about 160 KiB against a 64 KiB bound.
  for (int c = 0; c < kConvs; ++c) {
    Add(store.get(), id(c), Msg(Role::kUser, content(3)));
  }
  Stats st = store->GetStats();
  CHECK(st.cached_conversations == kConvs);
  CHECK(st.appended_lsn - st.durable_lsn == kConvs);
  // Every durable message left the cached runs but those of the
  // conversation appended to last (Enforce keeps them). What stays, over
  // the bound, is what no drop frees: each conversation's message not yet
  // durable, and its first system message, held apart for pin_system and
  // charged like any message.
  CHECK(st.cached_messages == kConvs + 3);
  CHECK(st.cached_bytes >= 2 * kConvs * pad.size());
  CHECK(st.cached_bytes > o.cache_max_bytes);
  CHECK(st.cache_pinned_drops >= 3 * (kConvs - 2));
  // Each read-through fills one entry and the next read's Enforce empties
  // it again, so every pass reads through most conversations.
  for (int pass = 0; pass < 4; ++pass) {
    const uint64_t misses = store->GetStats().cache_misses;
    for (int c = 0; c < kConvs; ++c) {
      switch (pass) {
        case 0: {
          std::vector<MessagePtr> h = Hist(store.get(), id(c));
          REQUIRE(h.size() == 4);  // the system message once, in its place
          for (int i = 0; i < 4; ++i) CHECK(h[i]->content == content(i));
          break;
        }
        case 1:
          CHECK(Seqs(Hist(store.get(), id(c), {.last_n = 2})) ==
                std::vector<int64_t>{1, 3, 4});
          break;
        case 2:
          CHECK(Seqs(Hist(store.get(), id(c),
                          {.last_n = 3, .pin_system = false})) ==
                std::vector<int64_t>{2, 3, 4});
          break;
        default:
          CHECK(Seqs(Hist(store.get(), id(c), {.after_seq = 1})) ==
                std::vector<int64_t>{2, 3, 4});
      }
    }
    CHECK(store->GetStats().cache_misses - misses >= kConvs / 2);
  }
  REQUIRE(store->Flush().ok());
  REQUIRE(store->Close().ok());
  store = OpenOrDie(o);
  for (int c = 0; c < kConvs; ++c) {
    CHECK(Hist(store.get(), id(c)).size() == 4);
  }
}

TEST_CASE(
    "Appending again and again to a conversation of a shard over its bound "
    "searches the shard once until a write is durable",
    "[store][cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_shards = 1;
  o.cache_max_bytes = 16 << 10;
  o.max_flush_delay = std::chrono::seconds(60);  // durable only at Flush
  auto store = OpenOrDie(o);
  for (int i = 0; i < 3; ++i) Add(store.get(), "k", Msg(Role::kUser, "old"));
  REQUIRE(store->Flush().ok());
  // Ten pinned conversations of about 4 KiB each hold the shard over its
  // bound; "k" (durable) is evicted to make room.
  for (int c = 0; c < 10; ++c) {
    Add(store.get(), "c" + std::to_string(c),
        Msg(Role::kUser, std::string(4000, 'p')));
  }
  const uint64_t walks = store->GetStats().cache_eviction_walks;
  // Each Append keeps "k" (read back, then holding durable messages only a
  // call that does not keep it may drop): a walk would find what the last
  // one did.
  for (int i = 0; i < 50; ++i) Add(store.get(), "k", Msg(Role::kUser, "new"));
  Stats st = store->GetStats();
  CHECK(st.cache_eviction_walks - walks <= 1);
  const uint64_t walks_before_flush = st.cache_eviction_walks;
  CHECK(st.cached_bytes > o.cache_max_bytes);
  CHECK(Hist(store.get(), "k").size() == 53);
  // Once the writes are durable the next write evicts down to the bound.
  REQUIRE(store->Flush().ok());
  Add(store.get(), "k", Msg(Role::kUser, "after"));
  st = store->GetStats();
  CHECK(st.cache_eviction_walks == walks_before_flush + 1);
  CHECK(st.cached_bytes <= o.cache_max_bytes);
  CHECK(Hist(store.get(), "c3").size() == 1);
}

TEST_CASE("Per-conversation message bound reads older messages through",
          "[store][cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_max_messages_per_conversation = 4;
  auto store = OpenOrDie(o);
  const int kMsgs = 30;
  for (int i = 1; i <= kMsgs; ++i) {
    Add(store.get(), "long",
        Msg(i == 1 ? Role::kSystem : Role::kUser, "m" + std::to_string(i), 1,
            0));
    if (i % 5 == 0) REQUIRE(store->Flush().ok());
  }
  Add(store.get(), "other", Msg(Role::kUser, "x"));  // trims after the flush

  auto check = [&](Store* s) {
    std::vector<MessagePtr> all = Hist(s, "long");
    REQUIRE(all.size() == kMsgs);
    for (int i = 0; i < kMsgs; ++i) {
      CHECK(all[i]->seq == i + 1);
      CHECK(all[i]->content == "m" + std::to_string(i + 1));
    }
    CHECK(Seqs(Hist(s, "long", {.last_n = 3})) ==
          std::vector<int64_t>{1, 28, 29, 30});
    CHECK(Seqs(Hist(s, "long", {.last_n = 6, .pin_system = false})) ==
          std::vector<int64_t>{25, 26, 27, 28, 29, 30});
    CHECK(Seqs(Hist(s, "long", {.after_seq = 10, .limit = 5})) ==
          std::vector<int64_t>{11, 12, 13, 14, 15});
    CHECK(Seqs(Hist(s, "long", {.token_budget = 8})) ==
          std::vector<int64_t>{1, 24, 25, 26, 27, 28, 29, 30});
    CHECK(Hist(s, "long", {.after_seq = 1}).size() == kMsgs - 1);
  };
  check(store.get());
  REQUIRE(store->Close().ok());
  store = OpenOrDie(o);  // warm: loads only the newest 4 per conversation
  Stats st = store->GetStats();
  CHECK(st.cached_messages <= 4 + 1);
  check(store.get());
  CHECK(store->GetStats().cache_misses > st.cache_misses);
  CHECK(Add(store.get(), "long", Msg(Role::kUser, "m31")).seq == 31);
  CHECK(Hist(store.get(), "long").size() == kMsgs + 1);
}

TEST_CASE("Every background thread of a store is named and ends at Close",
          "[store][threads]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.memory_limit_bytes = size_t{1} << 30;  // starts the memory limit thread
  // ThreadSanitizer starts a thread of its own when the process creates its
  // first thread, and keeps it: one started and joined here makes it exist
  // before the snapshot, so that only the store's threads count as new.
  std::thread([] {}).join();
  const std::map<std::string, std::string> before = test::ThreadNames();
  // Open starts every thread (StoreImpl::Open).
  auto store = OpenOrDie(o);
  REQUIRE(store->Append("c", Msg(Role::kUser, "hello")).ok());
  std::set<std::string> names;
  for (const auto& [tid, name] : test::ThreadNames()) {
    if (before.count(tid) > 0) continue;
    INFO("thread " << tid << " is named '" << name << "'");
    CHECK(name.rfind("convstore-", 0) == 0);
    names.insert(name);
  }
  // Writer, checkpoints, cache sweep, key usage flush, memory limit, and
  // (glibc only) the memory releaser.
  std::set<std::string> expected = {"convstore-wr", "convstore-ckpt",
                                    "convstore-sweep", "convstore-keys",
                                    "convstore-mlim"};
#if defined(__GLIBC__)
  expected.insert("convstore-trim");
#endif
  CHECK(names == expected);
  REQUIRE(store->Close().ok());
  store.reset();
  for (const auto& [tid, name] : test::ThreadNames()) {
    INFO("thread " << tid << " ('" << name << "') outlived Close");
    CHECK(before.count(tid) == 1);
  }
}

// Descriptors of this process open on `path` or its -wal / -shm files.
int OpenDescriptors(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target = fs::weakly_canonical(path);
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    const fs::path to = fs::read_symlink(e.path(), ec);
    if (ec) continue;
    const std::string s = to.string();
    if (s.rfind(target.string(), 0) == 0) ++n;
  }
  return n;
}

TEST_CASE("Close releases every handle on the database file", "[store]") {
  // A prepared statement left unfinalized kept the writer connection (its
  // descriptors and the -shm mapping) alive after Close, until the Store
  // object went away.
  TempDir dir;
  const std::string path = dir.File("handles.db");
  auto store = OpenOrDie(TestOptions(dir, "handles.db"));
  for (int i = 0; i < 100; ++i) {  // a batch large enough for grouped rows
    REQUIRE(store->Append("c", Msg(Role::kUser, "m")).ok());
  }
  REQUIRE(store->Flush().ok());
  auto h = store->History("c", HistoryOptions{.from_storage = true});
  REQUIRE(h.ok());
  CHECK(OpenDescriptors(path) > 0);
  REQUIRE(store->Close().ok());
  CHECK(OpenDescriptors(path) == 0);
}

}  // namespace
}  // namespace convstore
