// Copyright 2026 The convstore Authors.
//
// Dead letters: a write the database refuses for good is set aside - into
// the dead_letters table, else the `<db>.deadletter.jsonl` file, else
// logged - counted, and the queue goes on. The poison is forced by a
// backend wrapper around the real SQLite backend that refuses messages
// whose content starts with "POISON" (as SQLite refuses a constraint
// violation or an oversized value).

#include "dead_letter.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend_testutil.h"
#include "convstore/convstore.h"
#include "forwarding_backend.h"
#include "sqlite/sqlite_backend.h"
#include "store_impl.h"
#include "testutil.h"

namespace convstore::internal {
namespace {

using test::Hist;
using test::Msg;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

class PoisonBackend final : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;

  bool fail_dead_letters = false;

  Status Apply(std::span<const WriteOp> batch) override {
    for (const WriteOp& op : batch) {
      const auto* a = std::get_if<AppendMessageOp>(&op.payload);
      if (a != nullptr && a->message->content.rfind("POISON", 0) == 0) {
        return Status::InvalidArgument(
            "INSERT: CHECK constraint failed (sqlite code 275)");
      }
      const auto* d = std::get_if<DeleteConversationOp>(&op.payload);
      if (d != nullptr && d->conversation_id.rfind("POISON", 0) == 0) {
        return Status::InvalidArgument(
            "DELETE: constraint failed (sqlite code 19)");
      }
    }
    return ForwardingBackend::Apply(batch);
  }
  Status WriteDeadLetter(const DeadLetter& d, int64_t message_seq) override {
    if (fail_dead_letters) {
      return Status::IOError("dead letter: database or disk is full");
    }
    return ForwardingBackend::WriteDeadLetter(d, message_seq);
  }
};

// Log lines, captured for checks.
struct Logs {
  std::mutex mu;
  std::vector<std::string> lines;
  bool Contains(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu);
    for (const std::string& l : lines) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

Options PoisonOptions(const TempDir& dir, Logs* logs) {
  Options o = TestOptions(dir);
  o.log_level = LogLevel::kError;
  o.log_sink = [logs](LogLevel, std::string_view m) {
    std::lock_guard<std::mutex> lock(logs->mu);
    logs->lines.emplace_back(m);
  };
  return o;
}

std::unique_ptr<Store> OpenPoison(const Options& o, bool fail_dead_letters) {
  auto backend = std::make_unique<PoisonBackend>(backend_test::OpenBackend(o));
  backend->fail_dead_letters = fail_dead_letters;
  StatusOr<std::unique_ptr<Store>> s =
      StoreImpl::OpenWithBackend(o, std::move(backend));
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(s).value();
}

// Appends c-0..c-4, the poison, c-5..c-9 to "a" and 10 messages to "b";
// returns the poison's LSN.
uint64_t AppendWithPoison(Store* store) {
  for (int i = 0; i < 5; ++i) {
    REQUIRE(
        store->Append("a", Msg(Role::kUser, "c-" + std::to_string(i))).ok());
  }
  Message poison = Msg(Role::kTool, "POISON payload", 3, 4);
  poison.tool_name = "search";
  StatusOr<AppendResult> p = store->Append("a", poison);
  REQUIRE(p.ok());
  for (int i = 5; i < 10; ++i) {
    REQUIRE(
        store->Append("a", Msg(Role::kUser, "c-" + std::to_string(i))).ok());
    REQUIRE(
        store->Append("b", Msg(Role::kUser, "b-" + std::to_string(i))).ok());
  }
  return p->lsn;
}

void CheckOthersStored(const Options& o) {
  auto store = OpenOrDie(o);
  HistoryOptions h;
  h.from_storage = true;
  std::vector<std::string> want;
  for (int i = 0; i < 10; ++i) want.push_back("c-" + std::to_string(i));
  CHECK(test::Contents(Hist(store.get(), "a", h)) == want);
  CHECK(Hist(store.get(), "b", h).size() == 5);
  REQUIRE(store->Close().ok());
}

TEST_CASE("A delete the database refuses leaves the conversation readable",
          "[dead_letter]") {
  // The emptied cache entry stood for the conversation after the refusal:
  // History answered nothing and the next append was given seq 1 (refused
  // in turn as a duplicate), while the file kept every message.
  TempDir dir;
  Logs logs;
  Options o = PoisonOptions(dir, &logs);
  auto store = OpenPoison(o, false);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(
        store->Append("POISON-conv", Msg(Role::kUser, "m" + std::to_string(i)))
            .ok());
  }
  REQUIRE(store->Flush().ok());
  REQUIRE(store->DeleteConversation("POISON-conv").ok());
  REQUIRE(store->Flush().ok());
  CHECK(store->GetStats().dead_letters == 1);
  CHECK(test::Contents(Hist(store.get(), "POISON-conv")) ==
        std::vector<std::string>{"m0", "m1", "m2"});
  StatusOr<AppendResult> r =
      store->Append("POISON-conv", Msg(Role::kUser, "m3"));
  REQUIRE(r.ok());
  CHECK(r->seq == 4);
  REQUIRE(store->Flush().ok());
  CHECK(store->GetStats().dead_letters == 1);
  REQUIRE(store->Close().ok());
}

TEST_CASE("A poison record's seq is not handed out again", "[dead_letter]") {
  // Its seq was acknowledged. The stored last_seq stayed below it, so after
  // a restart (or an eviction) the next append got the same seq.
  TempDir dir;
  Logs logs;
  Options o = PoisonOptions(dir, &logs);
  {
    auto store = OpenPoison(o, false);
    REQUIRE(store->Append("a", Msg(Role::kUser, "c-0")).ok());
    StatusOr<AppendResult> p = store->Append("a", Msg(Role::kUser, "POISON"));
    REQUIRE(p.ok());
    CHECK(p->seq == 2);
    // A conversation whose only message is refused.
    StatusOr<AppendResult> q = store->Append("new", Msg(Role::kUser, "POISON"));
    REQUIRE(q.ok());
    CHECK(q->seq == 1);
    REQUIRE(store->Flush().ok());
    CHECK(store->GetStats().dead_letters == 2);
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  // Listed only once it holds a message.
  StatusOr<ConversationPage> page = store->ListConversations(ListOptions());
  REQUIRE(page.ok());
  REQUIRE(page->conversations.size() == 1);
  CHECK(page->conversations[0].conversation_id == "a");
  StatusOr<AppendResult> a = store->Append("a", Msg(Role::kUser, "c-1"));
  REQUIRE(a.ok());
  CHECK(a->seq == 3);
  StatusOr<AppendResult> n = store->Append("new", Msg(Role::kUser, "n-1"));
  REQUIRE(n.ok());
  CHECK(n->seq == 2);
  REQUIRE(store->Flush().ok());
  HistoryOptions h;
  h.from_storage = true;
  CHECK(test::Contents(Hist(store.get(), "a", h)) ==
        std::vector<std::string>{"c-0", "c-1"});
  CHECK(test::Contents(Hist(store.get(), "new", h)) ==
        std::vector<std::string>{"n-1"});
  page = store->ListConversations(ListOptions());
  REQUIRE(page.ok());
  CHECK(page->conversations.size() == 2);
  REQUIRE(store->Close().ok());
}

TEST_CASE(
    "A poison record goes to the dead_letters table and the queue goes on",
    "[dead_letter]") {
  TempDir dir;
  Logs logs;
  Options o = PoisonOptions(dir, &logs);
  uint64_t poison_lsn = 0;
  {
    auto store = OpenPoison(o, false);
    poison_lsn = AppendWithPoison(store.get());
    Status f = store->Flush();
    INFO(f.ToString());
    REQUIRE(f.ok());  // one bad record does not block the rest
    CHECK(store->Health().ok());
    Stats st = store->GetStats();
    CHECK(st.writes_failed == 1);
    CHECK(st.dead_letters == 1);
    CHECK(st.dead_letters_in_file == 0);
    CHECK(st.rows_committed == 15);
    StatusOr<std::vector<DeadLetter>> dl = store->DeadLetters(10);
    REQUIRE(dl.ok());
    REQUIRE(dl->size() == 1);
    const DeadLetter& d = dl->front();
    CHECK(d.lsn == poison_lsn);
    CHECK(d.kind == "message");
    CHECK(d.key == "a");
    CHECK(d.id > 0);
    CHECK(d.created_at_us > 0);
    CHECK(d.error.find("CHECK constraint failed") != std::string::npos);
    CHECK(d.payload.find("\"content\":\"POISON ") != std::string::npos);
    CHECK(d.payload.find("\"tool_name\":\"search\"") != std::string::npos);
    CHECK(d.payload.find("\"seq\":6") != std::string::npos);
    CHECK(
        logs.Contains("set aside as a dead letter in the dead_letters table"));
    CHECK_FALSE(logs.Contains("POISON"));  // the payload is never logged
    CHECK(store->DeadLetters(0).status().IsInvalidArgument());
    REQUIRE(store->Close().ok());
    CHECK(store->DeadLetters(1).status().IsFailedPrecondition());
    CHECK_FALSE(std::filesystem::exists(DeadLetterFilePath(o.path)));
  }
  CheckOthersStored(o);
  // Still readable after reopening, and the poison's LSN is not reused.
  auto store = OpenOrDie(o);
  StatusOr<std::vector<DeadLetter>> dl = store->DeadLetters(10);
  REQUIRE(dl.ok());
  REQUIRE(dl->size() == 1);
  CHECK(dl->front().lsn == poison_lsn);
  StatusOr<AppendResult> r = store->Append("c", Msg(Role::kUser, "after"));
  REQUIRE(r.ok());
  CHECK(r->lsn > poison_lsn);
  REQUIRE(store->Close().ok());
}

TEST_CASE("DeleteConversation removes the conversation's dead letters",
          "[dead_letter]") {
  TempDir dir;
  Logs logs;
  Options o = PoisonOptions(dir, &logs);
  {
    auto store = OpenPoison(o, false);
    (void)AppendWithPoison(store.get());
    // "p" has no stored row at all: its only message was refused.
    REQUIRE(store->Append("p", Msg(Role::kUser, "POISON alone")).ok());
    REQUIRE(store->Append("b", Msg(Role::kUser, "POISON of b")).ok());
    REQUIRE(store->Flush().ok());
    StatusOr<std::vector<DeadLetter>> dl = store->DeadLetters(10);
    REQUIRE(dl.ok());
    REQUIRE(dl->size() == 3);
    for (const char* id : {"a", "p"}) {
      StatusOr<uint64_t> del = store->DeleteConversation(id);
      REQUIRE(del.ok());
      REQUIRE(store->WaitDurable(*del).ok());
    }
    dl = store->DeadLetters(10);
    REQUIRE(dl.ok());
    REQUIRE(dl->size() == 1);  // "b"'s stays
    CHECK(dl->front().key == "b");
    CHECK(dl->front().payload.find("POISON of b") != std::string::npos);
    REQUIRE(store->Close().ok());
  }
  // Gone from the file, not only from the table (secure_delete).
  std::ifstream in(o.path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  CHECK(bytes.find("POISON payload") == std::string::npos);
  CHECK(bytes.find("POISON alone") == std::string::npos);
  CHECK(bytes.find("POISON of b") != std::string::npos);
}

TEST_CASE("A poison record the table cannot take goes to the file",
          "[dead_letter]") {
  TempDir dir;
  Logs logs;
  Options o = PoisonOptions(dir, &logs);
  uint64_t poison_lsn = 0;
  {
    auto store = OpenPoison(o, /*fail_dead_letters=*/true);
    poison_lsn = AppendWithPoison(store.get());
    REQUIRE(store->Flush().ok());
    Stats st = store->GetStats();
    CHECK(st.writes_failed == 1);
    CHECK(st.dead_letters == 1);
    CHECK(st.dead_letters_in_file == 1);
    StatusOr<std::vector<DeadLetter>> dl = store->DeadLetters(10);
    REQUIRE(dl.ok());
    CHECK(dl->empty());
    CHECK(logs.Contains(".deadletter.jsonl"));
    REQUIRE(store->Close().ok());
  }
  std::ifstream in(DeadLetterFilePath(o.path));
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 1);
  DeadLetter d;
  Status s = DeadLetterFromJson(lines[0], &d);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(d.lsn == poison_lsn);
  CHECK(d.kind == "message");
  CHECK(d.key == "a");
  CHECK(d.payload.find("POISON") != std::string::npos);
  CHECK(d.error.find("CHECK constraint failed") != std::string::npos);
  auto perms =
      std::filesystem::status(DeadLetterFilePath(o.path)).permissions();
  CHECK((perms & std::filesystem::perms::others_read) ==
        std::filesystem::perms::none);
  CheckOthersStored(o);
}

TEST_CASE(
    "A poison record that cannot be set aside at all is logged and counted",
    "[dead_letter]") {
  TempDir dir;
  Logs logs;
  Options o = PoisonOptions(dir, &logs);
  // A directory where the file would go: the append fails.
  std::filesystem::create_directories(DeadLetterFilePath(o.path));
  {
    auto store = OpenPoison(o, /*fail_dead_letters=*/true);
    uint64_t lsn = AppendWithPoison(store.get());
    REQUIRE(store->Flush().ok());
    Stats st = store->GetStats();
    CHECK(st.writes_failed == 1);
    CHECK(st.dead_letters == 0);
    CHECK(logs.Contains("write lsn " + std::to_string(lsn)));
    CHECK(logs.Contains("could not be set aside"));
    StatusOr<CloseReport> r = store->Close();
    REQUIRE(r.ok());
    CHECK(r->failed == 1);
  }
  CheckOthersStored(o);
}

TEST_CASE("Dead-letter JSON lines round-trip and reject garbage",
          "[dead_letter]") {
  WriteOp op;
  op.lsn = 42;
  auto m = std::make_shared<Message>(Msg(Role::kUser, "bad \xc3 utf8"));
  m->seq = 7;
  op.payload = AppendMessageOp{"conv", m};
  DeadLetter d = MakeDeadLetter(op, Status::InvalidArgument("too big"));
  CHECK(d.kind == "message");
  CHECK(d.key == "conv");
  CHECK(d.error == "InvalidArgument: too big");
  DeadLetter back;
  REQUIRE(DeadLetterFromJson(DeadLetterToJson(d), &back).ok());
  CHECK(back.lsn == 42);
  CHECK(back.payload == d.payload);
  CHECK(back.error == d.error);
  CHECK(back.created_at_us == d.created_at_us);

  WriteOp del;
  del.lsn = 3;
  del.payload = DeleteConversationOp{"gone"};
  DeadLetter dd = MakeDeadLetter(del, Status::InvalidArgument("x"));
  CHECK(dd.kind == "delete_conversation");
  CHECK(dd.key == "gone");

  DeadLetter junk;
  CHECK(DeadLetterFromJson("not json", &junk).IsInvalidArgument());
  CHECK(DeadLetterFromJson("[1,2]", &junk).IsInvalidArgument());
  CHECK(DeadLetterFromJson("{\"lsn\":1}", &junk).IsInvalidArgument());
}

TEST_CASE("A dead-letter line cut short does not swallow the next record",
          "[dead_letter]") {
  // A write that failed part way (a full disk) left a line without its
  // end; the next record was appended to it and neither line parsed.
  TempDir dir;
  const std::string path = dir.File("dead.jsonl");
  WriteOp op;
  op.lsn = 9;
  op.payload = DeleteConversationOp{"gone"};
  const DeadLetter d = MakeDeadLetter(op, Status::InvalidArgument("x"));
  {
    std::ofstream out(path, std::ios::binary);
    out << DeadLetterToJson(d).substr(0, 15);  // no newline
  }
  REQUIRE(AppendDeadLetterFile(path, d).ok());
  REQUIRE(AppendDeadLetterFile(path, d).ok());
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 3);
  DeadLetter back;
  CHECK(DeadLetterFromJson(lines[0], &back).IsInvalidArgument());
  for (size_t i = 1; i < 3; ++i) {
    INFO("line " << i);
    REQUIRE(DeadLetterFromJson(lines[i], &back).ok());
    CHECK(back.lsn == 9);
    CHECK(back.key == "gone");
  }
}

}  // namespace
}  // namespace convstore::internal
