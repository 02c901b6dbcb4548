// Copyright 2026 The convstore Authors.
//
// Bad input, end to end through the public Store API (issue 4). Every bad
// input must give one exact StatusCode, never crash, and leave everything
// else alone: conversations written before and after it read back exactly
// after Flush + Close + reopen, and PRAGMA integrity_check says "ok" when
// the file is ours. File-level damage (truncation, zeroed pages, random
// bytes, a text file, a newer schema, read-only files and directories,
// paths that cannot be created) must be refused with a Status and must not
// modify the file it refused.
//
// tests/validation_test.cc checks the validators one by one and
// tests/migrations_test.cc the migration layer; this file checks what a
// caller sees.

#include <fcntl.h>
#include <linux/fs.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "sqlite/migrations.h"
#include "sqlite_testutil.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::Hist;
using test::OpenOrDie;
using test::RawExec;
using test::TempDir;

constexpr int64_t kT0 = 1'700'000'000'000'000;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// The first row of `sql` on a read-only connection of our own, or the
// SQLite error.
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::string out;
  sqlite3_stmt* st = nullptr;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      out = t != nullptr ? reinterpret_cast<const char*>(t) : "";
    } else {
      out = std::string("error: ") + sqlite3_errmsg(db);
    }
  } else {
    out = std::string("error: ") + sqlite3_errstr(rc);
  }
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return out;
}

std::string IntegrityCheck(const std::string& path) {
  return RawQuery(path, "PRAGMA integrity_check");
}

// Message i of a well-behaved conversation, every field set.
Message Good(const std::string& conv, int i) {
  Message m;
  m.role = i == 1 ? Role::kSystem : (i % 2 == 0 ? Role::kUser : Role::kTool);
  m.content = conv + " message " + std::to_string(i) + " ✓ naïve 日本語";
  m.user_id = "owner-of-" + conv;
  m.tokens_in = i;
  m.tokens_out = 2 * i;
  if (m.role == Role::kTool) {
    m.tool_call_id = "call-" + std::to_string(i);
    m.tool_name = "search";
  }
  if (i % 3 == 0) m.metadata = R"({"i":)" + std::to_string(i) + "}";
  m.created_at_us = kT0 + i;
  return m;
}

std::string Describe(const Message& m) {
  std::ostringstream os;
  os << "seq=" << m.seq << " role=" << static_cast<int>(m.role)
     << " content=" << m.content.size() << ":" << m.content
     << " user=" << m.user_id << " in=" << m.tokens_in
     << " out=" << m.tokens_out << " call=" << m.tool_call_id
     << " tool=" << m.tool_name << " meta=" << m.metadata
     << " at=" << m.created_at_us;
  return os.str();
}

const char* const kKeep[] = {"keep-a", "keep-b", "keep-c"};

// Appends messages first..last to each of kKeep.
void WriteKeep(Store* store, int first, int last) {
  for (int i = first; i <= last; ++i) {
    for (const char* c : kKeep) {
      StatusOr<AppendResult> r = store->Append(c, Good(c, i));
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      REQUIRE(r->seq == i);
    }
  }
}

// Every kKeep conversation holds exactly messages 1..n, field by field,
// both from memory and from storage.
void CheckKeep(Store* store, int n) {
  for (const char* c : kKeep) {
    for (bool from_storage : {false, true}) {
      INFO(c << (from_storage ? " from storage" : " from memory"));
      HistoryOptions h;
      h.from_storage = from_storage;
      std::vector<MessagePtr> got = Hist(store, c, h);
      REQUIRE(got.size() == static_cast<size_t>(n));
      for (int i = 1; i <= n; ++i) {
        Message want = Good(c, i);
        want.seq = i;
        CHECK(Describe(*got[static_cast<size_t>(i - 1)]) == Describe(want));
      }
    }
  }
}

std::vector<std::string> ListedIds(Store* store) {
  ListOptions lo;
  lo.limit = 1000;
  StatusOr<ConversationPage> p = store->ListConversations(lo);
  REQUIRE(p.ok());
  std::vector<std::string> ids;
  for (const ConversationInfo& c : p->conversations) {
    ids.push_back(c.conversation_id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Options Quiet(const std::string& path) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(5);
  return o;
}

// A closed store file with kKeep x 8 messages.
std::string MakeGoodFile(const std::string& path) {
  auto store = OpenOrDie(Quiet(path));
  WriteKeep(store.get(), 1, 8);
  // Enough rows that the file has many pages to damage.
  const std::string filler(500, 'f');
  for (int c = 0; c < 30; ++c) {
    for (int i = 0; i < 10; ++i) {
      REQUIRE(store
                  ->Append("bulk-" + std::to_string(c),
                           test::Msg(Role::kUser, filler))
                  .ok());
    }
  }
  REQUIRE(store->Close().ok());
  REQUIRE(IntegrityCheck(path) == "ok");
  return ReadFile(path);
}

// Open must fail with `code` and leave the file byte for byte as it was.
void ExpectRefused(const Options& o, StatusCode code) {
  const bool existed = std::filesystem::exists(o.path);
  const std::string before = existed ? ReadFile(o.path) : std::string();
  StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
  INFO("Open(" << o.path << "): " << s.status().ToString());
  CHECK(s.status().code() == code);
  CHECK(!s.status().message().empty());
  if (existed) {
    const std::string after = ReadFile(o.path);
    const bool unchanged = after == before;
    size_t at = 0;
    while (at < after.size() && at < before.size() && after[at] == before[at]) {
      ++at;
    }
    INFO("size " << before.size() << " -> " << after.size()
                 << ", first difference at byte " << at);
    CHECK(unchanged);
  }
  if (s.ok()) (void)(*s)->Close();
}

// Sets or clears the immutable attribute (chattr +i); what makes a file or
// directory read-only for root. False when the file system or the process
// capabilities do not allow it.
bool SetImmutable(const std::string& path, bool on) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  ::close(fd);
  return ok;
}

// Makes `path` read-only for this process: chmod, or chattr +i when
// running as root (who ignores the mode bits). Restores it when destroyed
// so the TempDir can be removed.
class ReadOnly {
 public:
  ReadOnly(std::string path, mode_t mode) : path_(std::move(path)) {
    struct stat st {};
    REQUIRE(::stat(path_.c_str(), &st) == 0);
    old_mode_ = st.st_mode & 07777;
    REQUIRE(::chmod(path_.c_str(), mode) == 0);
    if (::access(path_.c_str(), W_OK) == 0) {
      // Root: the mode bits do not stop writes.
      immutable_ = SetImmutable(path_, true);
    }
    effective_ = ::access(path_.c_str(), W_OK) != 0 || immutable_;
  }
  ~ReadOnly() {
    if (immutable_) SetImmutable(path_, false);
    (void)::chmod(path_.c_str(), old_mode_);
  }
  ReadOnly(const ReadOnly&) = delete;
  ReadOnly& operator=(const ReadOnly&) = delete;

  // False when neither mechanism works here: the caller skips.
  bool effective() const { return effective_; }
  const char* how() const { return immutable_ ? "chattr +i (root)" : "chmod"; }

 private:
  std::string path_;
  mode_t old_mode_ = 0644;
  bool immutable_ = false;
  bool effective_ = false;
};

// ------------------------------------------------------------ Messages

TEST_CASE("Bad messages: exact Status, nothing stored, others intact",
          "[bad_input]") {
  TempDir dir;
  Options o = Quiet(dir.File("store.db"));  // default limits
  REQUIRE(o.max_id_bytes == 256);
  REQUIRE(o.max_content_bytes == 4u << 20);
  const Message ok = Good("x", 2);
  auto with = [&](auto edit) {
    Message m = ok;
    edit(m);
    return m;
  };
  struct Case {
    std::string name;
    std::string id;
    Message m;
  };
  std::vector<Case> cases;
  // Conversation ids.
  cases.push_back({"empty conversation id", "", ok});
  cases.push_back({"conversation id of 257 bytes", std::string(257, 'i'), ok});
  cases.push_back({"conversation id of 1 MiB", std::string(1 << 20, 'i'), ok});
  cases.push_back({"NUL in conversation id", std::string("bad\0id", 6), ok});
  cases.push_back({"only a NUL as conversation id", std::string(1, '\0'), ok});
  cases.push_back({"control char in conversation id", "bad\nid", ok});
  cases.push_back({"invalid UTF-8 conversation id", "bad\xff", ok});
  cases.push_back({"lone continuation byte id", "\x80", ok});
  cases.push_back({"surrogate in conversation id", "\xed\xa0\x80", ok});
  // User ids (empty is allowed: "no user").
  cases.push_back({"user id of 257 bytes", "v", with([](Message& m) {
                     m.user_id = std::string(257, 'u');
                   })});
  cases.push_back({"NUL in user id", "v", with([](Message& m) {
                     m.user_id = std::string("u\0v", 3);
                   })});
  cases.push_back({"invalid UTF-8 user id", "v",
                   with([](Message& m) { m.user_id = "\xc3\x28"; })});
  cases.push_back({"tool_name over the id limit", "v", with([](Message& m) {
                     m.tool_name = std::string(300, 't');
                   })});
  cases.push_back({"NUL in tool_call_id", "v", with([](Message& m) {
                     m.tool_call_id = std::string("c\0", 2);
                   })});
  // Content.
  cases.push_back(
      {"content one byte over the 4 MiB default", "v",
       with([](Message& m) { m.content = std::string((4u << 20) + 1, 'c'); })});
  cases.push_back({"content of 16 MiB", "v", with([](Message& m) {
                     m.content = std::string(16u << 20, 'c');
                   })});
  cases.push_back({"invalid UTF-8 content", "v",
                   with([](Message& m) { m.content = "ok then \xfe\xff"; })});
  cases.push_back({"truncated UTF-8 content", "v",
                   with([](Message& m) { m.content = "abc\xe2\x82"; })});
  cases.push_back({"overlong NUL in content", "v",
                   with([](Message& m) { m.content = "a\xc0\x80"; })});
  cases.push_back({"code point past U+10FFFF", "v",
                   with([](Message& m) { m.content = "\xf4\x90\x80\x80"; })});
  // Metadata.
  for (const char* meta :
       {"not json", "{", "{\"a\":}", "[1,2]", "42", "null", "\"str\"",
        "{\"a\":1}{\"b\":2}", "{'single':'quotes'}"}) {
    cases.push_back({std::string("metadata ") + meta, "v",
                     with([&](Message& m) { m.metadata = meta; })});
  }
  cases.push_back({"metadata with a raw NUL", "v", with([](Message& m) {
                     m.metadata = std::string("{\"a\":\"x\0y\"}", 11);
                   })});
  cases.push_back({"metadata with invalid UTF-8", "v",
                   with([](Message& m) { m.metadata = "{\"a\":\"\xff\"}"; })});
  cases.push_back({"metadata over 64 KiB", "v", with([](Message& m) {
                     m.metadata =
                         "{\"a\":\"" + std::string(64 << 10, 'm') + "\"}";
                   })});
  // Token counts and the rest.
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  cases.push_back(
      {"tokens_in -1", "v", with([](Message& m) { m.tokens_in = -1; })});
  cases.push_back({"tokens_out INT64_MIN", "v",
                   with([&](Message& m) { m.tokens_out = kMin; })});
  cases.push_back({"tokens_in INT64_MAX", "v",
                   with([&](Message& m) { m.tokens_in = kMax; })});
  cases.push_back({"tokens_out one over max_tokens_per_message", "v",
                   with([](Message& m) { m.tokens_out = 10'000'001; })});
  cases.push_back(
      {"role 9", "v", with([](Message& m) { m.role = static_cast<Role>(9); })});
  cases.push_back({"role -1", "v",
                   with([](Message& m) { m.role = static_cast<Role>(-1); })});
  cases.push_back({"negative created_at_us", "v",
                   with([](Message& m) { m.created_at_us = -5; })});

  {
    auto store = OpenOrDie(o);
    WriteKeep(store.get(), 1, 5);
    REQUIRE(store->Flush().ok());
    for (const Case& c : cases) {
      INFO(c.name);
      for (bool sync : {false, true}) {
        AppendOptions ao;
        ao.sync = sync;
        StatusOr<AppendResult> r = store->Append(c.id, c.m, ao);
        INFO(r.status().ToString());
        CHECK(r.status().code() == StatusCode::kInvalidArgument);
        CHECK(!r.status().message().empty());
      }
    }
    // Reads and deletes with a bad conversation id.
    for (const std::string& bad :
         {std::string(), std::string(257, 'i'), std::string("a\0b", 3),
          std::string("\xff")}) {
      CHECK(store->History(bad).status().code() ==
            StatusCode::kInvalidArgument);
      CHECK(store->DeleteConversation(bad).status().code() ==
            StatusCode::kInvalidArgument);
    }
    // Bad read options on a good conversation.
    HistoryOptions h;
    h.after_seq = -1;
    CHECK(store->History("keep-a", h).status().code() ==
          StatusCode::kInvalidArgument);
    h = {};
    h.token_budget = kMin;
    CHECK(store->History("keep-a", h).status().code() ==
          StatusCode::kInvalidArgument);
    h = {};
    h.limit = 2;
    h.last_n = 2;
    CHECK(store->History("keep-a", h).status().code() ==
          StatusCode::kInvalidArgument);
    ListOptions lo;
    lo.limit = 0;
    CHECK(store->ListConversations(lo).status().code() ==
          StatusCode::kInvalidArgument);
    lo.limit = 10;
    for (const char* cursor : {"garbage", "1:zz", "x:00", "1:abc", ":"}) {
      INFO("cursor " << cursor);
      lo.cursor = cursor;
      CHECK(store->ListConversations(lo).status().code() ==
            StatusCode::kInvalidArgument);
    }
    CHECK(store->WaitDurable(1u << 30, std::chrono::milliseconds(10)).code() ==
          StatusCode::kInvalidArgument);

    Stats st = store->GetStats();
    CHECK(st.dead_letters == 0);
    WriteKeep(store.get(), 6, 10);
    CheckKeep(store.get(), 10);
    REQUIRE(store->Flush().ok());
    REQUIRE(store->Close().ok());
  }
  CHECK(IntegrityCheck(o.path) == "ok");
  auto store = OpenOrDie(o);
  CheckKeep(store.get(), 10);
  CHECK(ListedIds(store.get()) ==
        std::vector<std::string>{"keep-a", "keep-b", "keep-c"});
  CHECK(Hist(store.get(), "v").empty());
  CHECK(store->GetStats().db_messages == 30);
  REQUIRE(store->Close().ok());
}

TEST_CASE("Odd but valid input is stored verbatim and read back",
          "[bad_input]") {
  TempDir dir;
  Options o = Quiet(dir.File("store.db"));
  struct Case {
    std::string id;
    Message m;
  };
  std::vector<Case> cases;
  auto base = [](std::string content) {
    Message m;
    m.role = Role::kUser;
    m.content = std::move(content);
    m.created_at_us = kT0;
    return m;
  };
  // NUL bytes inside content are data, not terminators.
  cases.push_back({"nul-content", base(std::string("before\0after\0", 13))});
  cases.push_back({"only-nul", base(std::string(4, '\0'))});
  // Exactly the 4 MiB default limit.
  cases.push_back({"max-content", base(std::string(4u << 20, 'M'))});
  cases.push_back({std::string(256, 'L'), base("id of exactly 256 bytes")});
  cases.push_back({"empty-content", base("")});
  // SQL injection, stored and read back verbatim.
  for (const char* sql :
       {"'; DROP TABLE messages; --", "\" OR 1=1 --",
        "x'); DELETE FROM conversations WHERE ('1'='1",
        "1; PRAGMA writable_schema=1; --", "%_\\' ESCAPE '\\"}) {
    Message m = base(sql);
    m.user_id = sql;
    m.tool_call_id = sql;
    m.tool_name = "t";
    const bool plain =
        std::string(sql).find_first_of("\"\\") == std::string::npos;
    m.metadata = std::string(R"({"sql":")") + (plain ? sql : "escaped") + "\"}";
    cases.push_back({std::string("inj:") + sql, m});
  }
  {
    Message m = base("escaped NUL in JSON");
    m.metadata = R"({"a":"x\u0000y","n":[1,{"deep":true}],"e":"\ud83d\ude00"})";
    m.tokens_in = 10'000'000;  // exactly max_tokens_per_message
    m.tokens_out = 0;
    cases.push_back({"json-nul", m});
  }
  cases.push_back(
      {"emoji-😀-id", base("4-byte UTF-8 😀 and U+10FFFF \xf4\x8f\xbf\xbf")});

  auto check_all = [&](Store* store) {
    for (const Case& c : cases) {
      for (bool from_storage : {false, true}) {
        INFO(c.id.substr(0, 40) << (from_storage ? " storage" : " memory"));
        HistoryOptions h;
        h.from_storage = from_storage;
        std::vector<MessagePtr> got = Hist(store, c.id, h);
        REQUIRE(got.size() == 1);
        Message want = c.m;
        want.seq = 1;
        CHECK(got[0]->content.size() == want.content.size());
        CHECK(Describe(*got[0]) == Describe(want));
      }
    }
  };
  {
    auto store = OpenOrDie(o);
    WriteKeep(store.get(), 1, 3);
    for (const Case& c : cases) {
      INFO(c.id.substr(0, 40));
      StatusOr<AppendResult> r = store->Append(c.id, c.m);
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      CHECK(r->seq == 1);
    }
    WriteKeep(store.get(), 4, 6);
    check_all(store.get());
    REQUIRE(store->Close().ok());
  }
  CHECK(IntegrityCheck(o.path) == "ok");
  // The injection did not run: every table is still there.
  CHECK(RawQuery(o.path,
                 "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                 "name IN ('messages','conversations','store_meta')") == "3");
  auto store = OpenOrDie(o);
  check_all(store.get());
  CheckKeep(store.get(), 6);
  CHECK(ListedIds(store.get()).size() == cases.size() + 3);
  REQUIRE(store->Close().ok());
}

// ------------------------------------------------- Cache and analytics

TEST_CASE("Bad cache and analytics input: exact Status, others intact",
          "[bad_input][cache][analytics]") {
  TempDir dir;
  Options o = Quiet(dir.File("store.db"));
  const auto kTtl = std::chrono::milliseconds(0);  // no expiry
  {
    auto store = OpenOrDie(o);
    WriteKeep(store.get(), 1, 4);
    Cache& cache = store->cache();
    REQUIRE(cache.Set("ns", "keep", "value", kTtl).ok());
    struct Key {
      std::string name, ns, key;
    };
    const std::vector<Key> bad_keys = {
        {"empty namespace", "", "k"},
        {"empty key", "ns", ""},
        {"namespace of 257 bytes", std::string(257, 'n'), "k"},
        {"key of 1025 bytes", "ns", std::string(1025, 'k')},
        {"key of 1 MiB", "ns", std::string(1 << 20, 'k')},
        {"NUL in namespace", std::string("n\0s", 3), "k"},
        {"NUL in key", "ns", std::string("k\0", 2)},
        {"invalid UTF-8 key", "ns", "\xff\xfe"},
    };
    for (const Key& k : bad_keys) {
      INFO(k.name);
      CHECK(cache.Set(k.ns, k.key, "v", kTtl).code() ==
            StatusCode::kInvalidArgument);
      CHECK(cache.Get(k.ns, k.key).status().code() ==
            StatusCode::kInvalidArgument);
      CHECK(cache.Delete(k.ns, k.key).code() == StatusCode::kInvalidArgument);
      CHECK(cache.Touch(k.ns, k.key, kTtl).code() ==
            StatusCode::kInvalidArgument);
      CHECK(cache.Increment(k.ns, k.key, 1, kTtl).status().code() ==
            StatusCode::kInvalidArgument);
    }
    for (int64_t ttl : {int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
      INFO("ttl " << ttl);
      const std::chrono::milliseconds t(ttl);
      CHECK(cache.Set("ns", "k", "v", t).code() ==
            StatusCode::kInvalidArgument);
      CHECK(cache.Touch("ns", "keep", t).code() ==
            StatusCode::kInvalidArgument);
      CHECK(cache.Increment("ns", "ctr", 1, t).status().code() ==
            StatusCode::kInvalidArgument);
    }
    // An absurdly long TTL saturates instead of overflowing.
    CHECK(
        cache
            .Set("ns", "forever", "v",
                 std::chrono::milliseconds(std::numeric_limits<int64_t>::max()))
            .ok());
    CHECK(cache
              .Set("ns", "big", std::string(o.cache_max_value_bytes + 1, 'v'),
                   kTtl)
              .code() == StatusCode::kInvalidArgument);
    REQUIRE(
        cache.Increment("ns", "ctr", std::numeric_limits<int64_t>::max(), kTtl)
            .ok());
    CHECK(cache.Increment("ns", "ctr", 1, kTtl).status().code() ==
          StatusCode::kInvalidArgument);
    CHECK(*cache.Get("ns", "ctr") ==
          std::to_string(std::numeric_limits<int64_t>::max()));
    CHECK(*cache.Get("ns", "keep") == "value");

    Analytics& an = store->analytics();
    SessionStart ss;
    ss.session_id = "";
    CHECK(an.StartSession(ss).code() == StatusCode::kInvalidArgument);
    ss.session_id = std::string(257, 's');
    CHECK(an.StartSession(ss).code() == StatusCode::kInvalidArgument);
    ss.session_id = std::string("s\0", 2);
    CHECK(an.StartSession(ss).code() == StatusCode::kInvalidArgument);
    ss.session_id = "\xff";
    CHECK(an.StartSession(ss).code() == StatusCode::kInvalidArgument);
    ss.session_id = "sess";
    ss.metadata = "{not json";
    CHECK(an.StartSession(ss).code() == StatusCode::kInvalidArgument);
    ss.metadata = "";
    ss.started_at_us = -1;
    CHECK(an.StartSession(ss).code() == StatusCode::kInvalidArgument);
    ss.started_at_us = kT0;
    ss.tenant = "'; DROP TABLE sessions; --";
    CHECK(an.StartSession(ss).ok());
    Metric metric;
    metric.name = "";
    CHECK(an.RecordMetric(metric).code() == StatusCode::kInvalidArgument);
    metric.name = std::string(129, 'm');
    CHECK(an.RecordMetric(metric).code() == StatusCode::kInvalidArgument);
    metric.name = "latency";
    metric.value = std::numeric_limits<double>::infinity();
    CHECK(an.RecordMetric(metric).code() == StatusCode::kInvalidArgument);
    metric.value = std::numeric_limits<double>::quiet_NaN();
    CHECK(an.RecordMetric(metric).code() == StatusCode::kInvalidArgument);
    TurnMetrics turn;
    turn.session_id = "sess";
    turn.turn_number = -1;
    CHECK(an.RecordTurn(turn).code() == StatusCode::kInvalidArgument);
    turn.turn_number = 1;
    turn.prompt_tokens = -5;
    CHECK(an.RecordTurn(turn).code() == StatusCode::kInvalidArgument);
    ErrorRecord err;
    err.session_id = "sess";
    err.type = "";
    CHECK(an.RecordError(err).code() == StatusCode::kInvalidArgument);
    err.type = "t";
    err.context = "[1]";
    CHECK(an.RecordError(err).code() == StatusCode::kInvalidArgument);

    WriteKeep(store.get(), 5, 8);
    REQUIRE(store->Flush().ok());
    REQUIRE(store->Close().ok());
  }
  CHECK(IntegrityCheck(o.path) == "ok");
  auto store = OpenOrDie(o);
  CheckKeep(store.get(), 8);
  CHECK(*store->cache().Get("ns", "keep") == "value");
  StatusOr<SessionDetail> sd = store->analytics().GetSession("sess");
  INFO(sd.status().ToString());
  CHECK(sd.ok());
  REQUIRE(store->Close().ok());
}

// ------------------------------------------------------------ Files

TEST_CASE("Damaged and foreign files are refused untouched", "[bad_input]") {
  TempDir dir;
  const std::string good = MakeGoodFile(dir.File("good.db"));
  const size_t page = 4096;
  REQUIRE(good.size() % page == 0);
  REQUIRE(good.size() >= 20 * page);
  const std::string path = dir.File("victim.db");
  Options o = Quiet(path);
  StatusCode want = StatusCode::kCorruption;

  SECTION("truncated to half") {
    WriteFile(path, good.substr(0, good.size() / 2));
  }
  SECTION("truncated to one page") { WriteFile(path, good.substr(0, page)); }
  SECTION("truncated inside the header") {
    WriteFile(path, good.substr(0, 60));
  }
  SECTION("a range of pages zeroed, verify_on_open") {
    std::string bytes = good;
    const size_t pages = bytes.size() / page;
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(pages / 3 * page),
              bytes.begin() + static_cast<std::ptrdiff_t>(pages / 2 * page),
              '\0');
    WriteFile(path, bytes);
    o.verify_on_open = true;
  }
  SECTION("the header page zeroed") {
    std::string bytes = good;
    std::fill(bytes.begin(), bytes.begin() + page, '\0');
    WriteFile(path, bytes);
  }
  SECTION("random bytes") {
    std::mt19937 rng(20260401);
    std::string bytes(64 << 10, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    WriteFile(path, bytes);
  }
  SECTION("random bytes after a valid SQLite header") {
    std::mt19937 rng(7);
    std::string bytes = good.substr(0, 100);
    bytes.resize(good.size());
    for (size_t i = 100; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>(rng());
    }
    WriteFile(path, bytes);
  }
  SECTION("a text file") {
    std::string text;
    for (int i = 0; i < 500; ++i) {
      text += "this is line " + std::to_string(i) + " of a README\n";
    }
    WriteFile(path, text);
  }
  SECTION("another application's SQLite database") {
    RawExec(path, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  }
  SECTION("PRAGMA user_version beyond LatestSchemaVersion()") {
    WriteFile(path, good);
    RawExec(path, "PRAGMA user_version = " +
                      std::to_string(internal::LatestSchemaVersion() + 1));
    want = StatusCode::kNotSupported;
  }
  SECTION("schema_migrations from a newer convstore") {
    WriteFile(path, good);
    const int v = internal::LatestSchemaVersion() + 7;
    RawExec(path,
            "INSERT INTO schema_migrations VALUES (" + std::to_string(v) +
                ", 'future', 1); PRAGMA user_version = " + std::to_string(v));
    want = StatusCode::kNotSupported;
  }
  SECTION("store_meta's last_message_id row deleted") {
    // Read as 0, new messages took ids already in use (every insert failed
    // and was set aside) or below the merge watermark (never read).
    WriteFile(path, good);
    RawExec(path, "DELETE FROM store_meta WHERE key = 'last_message_id'");
  }
  SECTION("store_meta's merge watermark above the last message id") {
    WriteFile(path, good);
    RawExec(path,
            "UPDATE store_meta SET value = value + 1000"
            " WHERE key = 'merged_through_id'");
  }
  SECTION("store_meta's last_message_id below a stored message") {
    WriteFile(path, good);
    RawExec(path,
            "UPDATE store_meta SET value = 1 WHERE key = 'last_message_id';"
            " UPDATE store_meta SET value = 0 WHERE key = 'merged_through_id'");
  }
  ExpectRefused(o, want);
  // Refused twice the same way: the first attempt left nothing behind that
  // changes the verdict.
  ExpectRefused(o, want);
  // The good file next to it is unaffected.
  auto store = OpenOrDie(Quiet(dir.File("good.db")));
  CheckKeep(store.get(), 8);
  REQUIRE(store->Close().ok());
}

TEST_CASE("A message row deleted outside the store does not misplace the pin",
          "[bad_input]") {
  // The pinned system message is looked up by seq among the messages read,
  // not by position: with a row missing in between, position would pick
  // the wrong message (or one past the end).
  TempDir dir;
  const std::string path = dir.File("edited.db");
  {
    auto store = OpenOrDie(Quiet(path));
    for (int i = 1; i <= 5; ++i) {
      Message m;
      m.role = i == 4 ? Role::kSystem : Role::kUser;
      m.content = "m" + std::to_string(i);
      m.created_at_us = kT0 + i;
      REQUIRE(store->Append("c", m).ok());
    }
    REQUIRE(store->Close().ok());
  }
  RawExec(path, "DELETE FROM messages WHERE seq = 2");
  Options o = Quiet(path);
  o.warm_conversations = 0;  // History reads the conversation through
  auto store = OpenOrDie(o);
  HistoryOptions h;
  h.last_n = 1;
  std::vector<MessagePtr> got = Hist(store.get(), "c", h);
  REQUIRE(got.size() == 2);
  CHECK(got[0]->seq == 4);
  CHECK(got[0]->role == Role::kSystem);
  CHECK(got[0]->content == "m4");
  CHECK(got[1]->seq == 5);
  std::vector<MessagePtr> all = Hist(store.get(), "c");
  std::vector<int64_t> seqs;
  for (const MessagePtr& m : all) seqs.push_back(m->seq);
  CHECK(seqs == std::vector<int64_t>{1, 3, 4, 5});
  REQUIRE(store->Close().ok());
}

TEST_CASE(
    "Options that would hang, spin, overflow or be clamped are refused at Open",
    "[bad_input]") {
  // Each of these used to open: a batch bound of 0 committed nothing (Flush
  // and Close timed out with every write pending), a flush delay or backoff
  // of 0 spun the writer, a per-conversation bound of 0 made std::clamp's
  // bounds cross, and token limits past 2^40 let sums overflow.
  TempDir dir;
  const std::string path = dir.File("opts.db");
  struct Case {
    const char* what;
    void (*set)(Options*);
  };
  const Case cases[] = {
      {"cache_max_messages_per_conversation 0",
       [](Options* o) { o->cache_max_messages_per_conversation = 0; }},
      {"max_tokens_per_message 2^40 + 1",
       [](Options* o) { o->max_tokens_per_message = (int64_t{1} << 40) + 1; }},
      {"max_tokens_per_message -1",
       [](Options* o) { o->max_tokens_per_message = -1; }},
      {"keys_default_rate_per_s NaN",
       [](Options* o) {
         o->keys_default_rate_per_s = std::numeric_limits<double>::quiet_NaN();
       }},
      {"keys_default_rate_per_s -1",
       [](Options* o) { o->keys_default_rate_per_s = -1; }},
      {"keys_default_burst -1", [](Options* o) { o->keys_default_burst = -1; }},
      {"queue_max_items 0", [](Options* o) { o->queue_max_items = 0; }},
      {"queue_max_bytes 0", [](Options* o) { o->queue_max_bytes = 0; }},
      {"max_batch_ops 0", [](Options* o) { o->max_batch_ops = 0; }},
      {"max_batch_bytes 0", [](Options* o) { o->max_batch_bytes = 0; }},
      {"max_flush_delay 0",
       [](Options* o) { o->max_flush_delay = std::chrono::milliseconds(0); }},
      {"retry_initial_backoff 0",
       [](Options* o) {
         o->retry_initial_backoff = std::chrono::milliseconds(0);
       }},
      {"retry_max_backoff below retry_initial_backoff",
       [](Options* o) {
         o->retry_initial_backoff = std::chrono::milliseconds(100);
         o->retry_max_backoff = std::chrono::milliseconds(50);
       }},
      {"retry_budget -1",
       [](Options* o) { o->retry_budget = std::chrono::milliseconds(-1); }},
      {"queue_full_wait -1",
       [](Options* o) { o->queue_full_wait = std::chrono::milliseconds(-1); }},
      {"busy_timeout -1",
       [](Options* o) { o->busy_timeout = std::chrono::milliseconds(-1); }},
      {"max_flush_delay milliseconds::max()",
       [](Options* o) {
         o->max_flush_delay = std::chrono::milliseconds::max();
       }},
      {"retry_budget milliseconds::max()",
       [](Options* o) { o->retry_budget = std::chrono::milliseconds::max(); }},
      {"busy_timeout 2^31 ms",
       [](Options* o) {
         o->busy_timeout = std::chrono::milliseconds(int64_t{1} << 31);
       }},
      // The background threads' intervals overflowed their wake-up time.
      {"release_memory_interval milliseconds::max()",
       [](Options* o) {
         o->release_memory_interval = std::chrono::milliseconds::max();
       }},
      {"cache_sweep_interval 2^31 ms",
       [](Options* o) {
         o->cache_sweep_interval = std::chrono::milliseconds(int64_t{1} << 31);
       }},
      {"keys_usage_flush_interval milliseconds::max()",
       [](Options* o) {
         o->keys_usage_flush_interval = std::chrono::milliseconds::max();
       }},
      {"keys_refresh_interval milliseconds::max()",
       [](Options* o) {
         o->keys_refresh_interval = std::chrono::milliseconds::max();
       }},
      // Values the store clamped or read as another value without a word.
      {"release_memory_interval -1",
       [](Options* o) {
         o->release_memory_interval = std::chrono::milliseconds(-1);
       }},
      {"cache_sweep_interval -1",
       [](Options* o) {
         o->cache_sweep_interval = std::chrono::milliseconds(-1);
       }},
      {"keys_usage_flush_interval -1",
       [](Options* o) {
         o->keys_usage_flush_interval = std::chrono::milliseconds(-1);
       }},
      {"keys_refresh_interval -1",
       [](Options* o) {
         o->keys_refresh_interval = std::chrono::milliseconds(-1);
       }},
      {"cache_shards 0", [](Options* o) { o->cache_shards = 0; }},
      {"cache_shards 65537", [](Options* o) { o->cache_shards = 65537; }},
      {"read_connections 0", [](Options* o) { o->read_connections = 0; }},
      {"index_merge_rows 0", [](Options* o) { o->index_merge_rows = 0; }},
      {"index_merge_conversations 0",
       [](Options* o) { o->index_merge_conversations = 0; }},
      {"sqlite_cache_mib 0", [](Options* o) { o->sqlite_cache_mib = 0; }},
      {"sqlite_cache_mib -5", [](Options* o) { o->sqlite_cache_mib = -5; }},
      // Its size in KiB would overflow SQLite's int.
      {"sqlite_cache_mib 2^21",
       [](Options* o) { o->sqlite_cache_mib = 1 << 21; }},
      {"wal_autocheckpoint_pages -1",
       [](Options* o) { o->wal_autocheckpoint_pages = -1; }},
      {"wal_autocheckpoint_pages 2^28",
       [](Options* o) { o->wal_autocheckpoint_pages = 1 << 28; }},
      {"journal_size_limit -2", [](Options* o) { o->journal_size_limit = -2; }},
      {"warm_conversations -2", [](Options* o) { o->warm_conversations = -2; }},
      {"max_id_bytes 0", [](Options* o) { o->max_id_bytes = 0; }},
      // A message SQLite would refuse at every commit.
      {"max_content_bytes 512 MiB + 1",
       [](Options* o) { o->max_content_bytes = (size_t{512} << 20) + 1; }},
      {"max_metadata_bytes 64 MiB + 1",
       [](Options* o) { o->max_metadata_bytes = (size_t{64} << 20) + 1; }},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    Options o = Quiet(path);
    c.set(&o);
    auto store = Store::Open(o);
    INFO(store.status().ToString());
    CHECK(store.status().IsInvalidArgument());
    // The message names the field (the case's first word).
    const std::string field(c.what, std::strchr(c.what, ' '));
    CHECK(store.status().message().find(field) != std::string::npos);
    // Nothing was created.
    CHECK_FALSE(std::filesystem::exists(path));
  }
  // The limits themselves are accepted.
  Options o = Quiet(path);
  o.cache_max_messages_per_conversation = 1;
  o.max_tokens_per_message = int64_t{1} << 40;
  o.max_batch_ops = 1;
  o.max_batch_bytes = 1;
  o.max_flush_delay = std::chrono::milliseconds(1);
  o.retry_initial_backoff = std::chrono::milliseconds(1);
  o.retry_max_backoff = std::chrono::milliseconds(1);
  o.max_content_bytes = size_t{512} << 20;
  o.max_metadata_bytes = size_t{64} << 20;
  o.release_memory_interval = std::chrono::milliseconds(0);  // off
  o.cache_sweep_interval = std::chrono::milliseconds(0);
  o.keys_usage_flush_interval = std::chrono::milliseconds(0);
  o.keys_refresh_interval = std::chrono::milliseconds(0);
  o.cache_shards = 65536;
  o.read_connections = 1;
  o.index_merge_rows = 1;
  o.index_merge_conversations = 1;
  o.sqlite_cache_mib = 1 << 20;  // SQLite allocates pages as it needs them
  o.wal_autocheckpoint_pages = (1 << 28) - 1;
  o.journal_size_limit = -1;
  o.warm_conversations = -1;
  o.max_id_bytes = 1;
  auto store = Store::Open(o);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  Message m;
  m.role = Role::kUser;
  m.content = "at the limits";
  m.tokens_in = int64_t{1} << 40;
  REQUIRE((*store)->Append("c", m).ok());
  REQUIRE((*store)->Append("c", m).ok());
  REQUIRE((*store)->Flush().ok());
  auto h = (*store)->History("c", HistoryOptions{});
  REQUIRE(h.ok());
  CHECK(h->size() == 2);
  REQUIRE((*store)->Close().ok());
}

TEST_CASE("Read-only files and directories, impossible paths", "[bad_input]") {
  TempDir dir;
  SECTION("read-only database file") {
    const std::string path = dir.File("ro.db");
    MakeGoodFile(path);
    ReadOnly ro(path, 0444);
    if (!ro.effective()) {
      WARN("cannot make a file read-only here (root without chattr): skipped");
      return;
    }
    INFO("read-only via " << ro.how());
    ExpectRefused(Quiet(path), StatusCode::kIOError);
  }
  SECTION("database in a read-only directory") {
    const std::string sub = dir.File("rodir");
    std::filesystem::create_directories(sub);
    const std::string path = sub + "/store.db";
    MakeGoodFile(path);
    // Close checkpointed everything; without the -wal and -shm files SQLite
    // must create them next to the database, which the directory forbids.
    // (With them present the store works: only existing files are written.)
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    ReadOnly ro(sub, 0555);
    if (!ro.effective()) {
      WARN("cannot make a directory read-only here: skipped");
      return;
    }
    INFO("read-only via " << ro.how());
    // SQLite needs to create the -wal and -shm files next to it.
    ExpectRefused(Quiet(path), StatusCode::kIOError);
  }
  SECTION("new database in a read-only directory") {
    const std::string sub = dir.File("rodir2");
    std::filesystem::create_directories(sub);
    ReadOnly ro(sub, 0555);
    if (!ro.effective()) {
      WARN("cannot make a directory read-only here: skipped");
      return;
    }
    INFO("read-only via " << ro.how());
    ExpectRefused(Quiet(sub + "/store.db"), StatusCode::kIOError);
    ExpectRefused(Quiet(sub + "/deeper/store.db"), StatusCode::kIOError);
    CHECK(!std::filesystem::exists(sub + "/store.db"));
  }
  SECTION("a parent path component is a regular file") {
    const std::string file = dir.File("plain.txt");
    WriteFile(file, "not a directory");
    ExpectRefused(Quiet(file + "/store.db"), StatusCode::kIOError);
    ExpectRefused(Quiet(file + "/a/b/store.db"), StatusCode::kIOError);
    CHECK(ReadFile(file) == "not a directory");
  }
  SECTION("a path under /proc") {
    ExpectRefused(Quiet("/proc/self/no/such/dir/store.db"),
                  StatusCode::kIOError);
  }
  SECTION("missing without create_if_missing") {
    Options o = Quiet(dir.File("missing/store.db"));
    o.create_if_missing = false;
    ExpectRefused(o, StatusCode::kNotFound);
    CHECK(!std::filesystem::exists(dir.File("missing")));
  }
  SECTION("the path is a directory") {
    ExpectRefused(Quiet(dir.path().string()), StatusCode::kIOError);
  }
  SECTION("the path is empty") {
    ExpectRefused(Quiet(""), StatusCode::kInvalidArgument);
  }
  SECTION("a path with a NUL byte") {
    ExpectRefused(Quiet(dir.File(std::string("a\0b.db", 6))),
                  StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace convstore
