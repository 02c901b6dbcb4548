// Copyright 2026 The convstore Authors.
//
// Restart survival: a child process (fork) opens the store, appends a
// deterministic workload, closes and exits; the parent opens the same file
// and compares every field of every message, in order, against a model of
// what was appended. Both warm (warm_conversations = -1) and lazy (0) opens
// must answer the same, and LSNs keep increasing across processes.
//
// The child never touches Catch2: it reports through its exit code and a
// pipe, and leaves with _exit.

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convstore/convstore.h"
#include "testutil.h"

namespace convstore {
namespace {

using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

constexpr int64_t kT0 = 1'600'000'000'000'000;  // 2020, well before "now"
const char kAutoTime[] = "auto-time";  // its messages get created_at from Open

// One write of the workload, with what the store must answer.
struct Op {
  bool is_delete = false;
  std::string conv;
  Message m;             // for appends; m.seq is the expected seq
  int64_t seq_want = 0;  // expected AppendResult::seq
};

// What the child tells the parent.
struct ChildReport {
  uint64_t first_lsn = 0;
  uint64_t last_lsn = 0;
  uint64_t written = 0;
  uint64_t remaining = 0;
  uint64_t last_durable_lsn = 0;
  int64_t wall_before_us = 0;
  int64_t wall_after_us = 0;
};

int64_t WallNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The model: conversation id -> its messages, seq order.
using Model = std::map<std::string, std::vector<Message>>;

// Builds `count` writes spread over `convs` (deterministic interleaving),
// continuing the model's conversations; updates the model. Every field is
// set; ids, content and metadata carry non-ASCII text.
std::vector<Op> MakeWorkload(Model* model,
                             const std::vector<std::string>& convs, int count,
                             int64_t time_base, uint32_t seed) {
  std::vector<Op> ops;
  uint32_t x = seed;
  auto next = [&x] {
    x = x * 1664525u + 1013904223u;
    return x >> 8;
  };
  for (int i = 0; i < count; ++i) {
    const std::string& conv = convs[next() % convs.size()];
    std::vector<Message>& msgs = (*model)[conv];
    const int64_t n = static_cast<int64_t>(msgs.size());  // 0-based position
    Message m;
    // system first, then user / assistant calling a tool / tool result /
    // assistant answer.
    static constexpr Role kCycle[] = {Role::kUser, Role::kAssistant,
                                      Role::kTool, Role::kAssistant};
    m.role = n == 0 ? Role::kSystem : kCycle[(n - 1) % 4];
    m.content = "héllo wörld 👋 你好 «" + conv + "» #" + std::to_string(n) +
                "\n\t\"quoted\" 'single' \\ back";
    if (i % 17 == 5) m.content += std::string(100 * 1024, 'z');  // big one
    if (m.role == Role::kAssistant && (n - 1) % 4 == 1) {
      m.tool_call_id = conv + "-call-" + std::to_string(n);
      m.tool_name = "search_ü";
    }
    if (m.role == Role::kTool) {
      m.tool_call_id = conv + "-call-" + std::to_string(n - 1);
      m.tool_name = "search_ü";
    }
    m.user_id = conv == "gamma" ? "" : "user-of-" + conv;
    m.tokens_in = n * 3 + 1;
    m.tokens_out = m.role == Role::kAssistant ? n * 2 + 5 : 0;
    if (n % 3 == 0) {
      m.metadata = "{\"n\":" + std::to_string(n) +
                   ",\"tag\":\"ü✓\",\"nested\":{\"a\":[1,2,3]}}";
    }
    m.created_at_us = conv == kAutoTime ? 0 : time_base + i * 10;
    m.seq = n + 1;
    msgs.push_back(m);
    ops.push_back({false, conv, m, n + 1});
  }
  return ops;
}

void AddDelete(Model* model, std::vector<Op>* ops, const std::string& conv) {
  (*model)[conv].clear();
  Op op;
  op.is_delete = true;
  op.conv = conv;
  ops->push_back(op);
}

// Runs in the child. Returns the exit code: 0 on success.
int ChildMain(const Options& options, const std::vector<Op>& ops, int fd) {
  ChildReport rep;
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "child: open: %s\n",
                 opened.status().ToString().c_str());
    return 2;
  }
  std::unique_ptr<Store> store = std::move(opened).value();
  rep.wall_before_us = WallNowUs();
  for (const Op& op : ops) {
    uint64_t lsn = 0;
    if (op.is_delete) {
      StatusOr<uint64_t> d = store->DeleteConversation(op.conv);
      if (!d.ok()) return 3;
      lsn = *d;
    } else {
      StatusOr<AppendResult> r = store->Append(op.conv, op.m);
      if (!r.ok()) {
        std::fprintf(stderr, "child: append: %s\n",
                     r.status().ToString().c_str());
        return 4;
      }
      if (r->seq != op.seq_want) {
        std::fprintf(stderr, "child: seq %lld, want %lld\n",
                     static_cast<long long>(r->seq),
                     static_cast<long long>(op.seq_want));
        return 5;
      }
      lsn = r->lsn;
    }
    if (lsn <= rep.last_lsn) return 6;
    if (rep.first_lsn == 0) rep.first_lsn = lsn;
    rep.last_lsn = lsn;
  }
  rep.wall_after_us = WallNowUs();
  StatusOr<CloseReport> closed = store->Close();
  if (!closed.ok()) {
    std::fprintf(stderr, "child: close: %s\n",
                 closed.status().ToString().c_str());
    return 7;
  }
  rep.written = closed->written;
  rep.remaining = closed->remaining;
  rep.last_durable_lsn = closed->last_durable_lsn;
  store.reset();
  if (::write(fd, &rep, sizeof(rep)) != static_cast<ssize_t>(sizeof(rep))) {
    return 8;
  }
  return 0;
}

// Forks, runs ChildMain in the child, waits for it and returns its report.
ChildReport RunChild(const Options& options, const std::vector<Op>& ops) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    int code = ChildMain(options, ops, fds[1]);
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildReport rep;
  size_t got = 0;
  auto* buf = reinterpret_cast<char*>(&rep);
  while (got < sizeof(rep)) {
    ssize_t n = ::read(fds[0], buf + got, sizeof(rep) - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child status " << status);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got == sizeof(rep));
  return rep;
}

std::string Describe(const Message& m, bool with_time = true) {
  return "seq=" + std::to_string(m.seq) + " role=" + RoleName(m.role) +
         " content=[" + m.content.substr(0, 200) +
         "] len=" + std::to_string(m.content.size()) + " user=[" + m.user_id +
         "] in=" + std::to_string(m.tokens_in) +
         " out=" + std::to_string(m.tokens_out) + " call=[" + m.tool_call_id +
         "] tool=[" + m.tool_name + "] meta=[" + m.metadata + "]" +
         (with_time ? " at=" + std::to_string(m.created_at_us) : "");
}

std::vector<std::string> DescribeAll(const std::vector<MessagePtr>& v) {
  std::vector<std::string> out;
  for (const MessagePtr& m : v) out.push_back(Describe(*m));
  return out;
}

std::vector<MessagePtr> Hist(Store* store, const std::string& id,
                             const HistoryOptions& o = {}) {
  StatusOr<std::vector<MessagePtr>> r = store->History(id, o);
  INFO("History(" << id << "): " << r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

// Every conversation of the model reads back exactly; auto-time messages
// carry a created_at from the child's run.
void CheckAgainstModel(Store* store, const Model& model,
                       const ChildReport& rep) {
  for (const auto& [conv, want] : model) {
    INFO("conversation " << conv);
    std::vector<MessagePtr> got = Hist(store, conv);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("message " << i);
      if (conv == kAutoTime) {
        CHECK(Describe(*got[i], false) == Describe(want[i], false));
        CHECK(got[i]->created_at_us >= rep.wall_before_us);
        CHECK(got[i]->created_at_us <= rep.wall_after_us);
      } else {
        CHECK(Describe(*got[i]) == Describe(want[i]));
        // Byte-exact content, not only the prefix Describe shows.
        CHECK(got[i]->content == want[i].content);
      }
    }
  }
}

// ListConversations against summaries computed from the model.
void CheckListing(Store* store, const Model& model) {
  ListOptions lo;
  lo.limit = 1000;
  StatusOr<ConversationPage> page = store->ListConversations(lo);
  REQUIRE(page.ok());
  CHECK(page->next_cursor.empty());
  std::map<std::string, ConversationInfo> got;
  std::vector<std::string> order;
  for (const ConversationInfo& c : page->conversations) {
    got[c.conversation_id] = c;
    order.push_back(c.conversation_id);
  }
  std::vector<std::pair<int64_t, std::string>> want_order;
  size_t live = 0;
  for (const auto& [conv, msgs] : model) {
    INFO("conversation " << conv);
    if (msgs.empty()) {
      CHECK(got.count(conv) == 0);
      continue;
    }
    ++live;
    REQUIRE(got.count(conv) == 1);
    const ConversationInfo& c = got[conv];
    int64_t in = 0, out = 0, last_at = 0;
    std::string user;
    for (const Message& m : msgs) {
      in += m.tokens_in;
      out += m.tokens_out;
      last_at = std::max(last_at, m.created_at_us);
      if (user.empty()) user = m.user_id;
    }
    CHECK(c.message_count == static_cast<int64_t>(msgs.size()));
    CHECK(c.last_seq == static_cast<int64_t>(msgs.size()));
    CHECK(c.tokens_in == in);
    CHECK(c.tokens_out == out);
    CHECK(c.user_id == user);
    if (conv != kAutoTime) {
      CHECK(c.first_at_us == msgs.front().created_at_us);
      CHECK(c.last_at_us == last_at);
      want_order.push_back({last_at, conv});
    }
  }
  CHECK(page->conversations.size() == live);
  std::sort(want_order.rbegin(), want_order.rend());
  std::vector<std::string> want_ids;
  // auto-time's messages are stamped "now", newer than every fixed time.
  if (model.count(kAutoTime) && !model.at(kAutoTime).empty()) {
    want_ids.push_back(kAutoTime);
  }
  for (auto& w : want_order) want_ids.push_back(w.second);
  CHECK(order == want_ids);
}

// A few windows, to compare warm and lazy opens.
std::vector<std::vector<std::string>> Windows(Store* store,
                                              const Model& model) {
  std::vector<std::vector<std::string>> out;
  for (const auto& [conv, msgs] : model) {
    for (const HistoryOptions& o : std::vector<HistoryOptions>{
             {},
             {.last_n = 5},
             {.after_seq = 3, .limit = 4},
             {.token_budget = 200},
             {.token_budget = 200, .pin_system = false}}) {
      out.push_back(DescribeAll(Hist(store, conv, o)));
    }
  }
  return out;
}

Options ChildOptions(const TempDir& dir) {
  Options o = TestOptions(dir);
  o.path = dir.File("restart/store.db");
  return o;
}

const std::vector<std::string> kConvs = {"alpha", "βeta-会話", "gamma",
                                         "tools", kAutoTime,   "doomed"};

TEST_CASE("Everything written by one process reads back in the next",
          "[restart]") {
  TempDir dir;
  const Options options = ChildOptions(dir);
  Model model;
  std::vector<Op> ops = MakeWorkload(&model, kConvs, 240, kT0, 7);
  // "doomed" is deleted and then reborn: only the reborn part may survive.
  AddDelete(&model, &ops, "doomed");
  std::vector<Op> more =
      MakeWorkload(&model, {"doomed", "alpha"}, 9, kT0 + 100'000, 11);
  ops.insert(ops.end(), more.begin(), more.end());
  REQUIRE(!model["doomed"].empty());
  REQUIRE(model["doomed"].size() < 9);  // really restarted
  REQUIRE(model["doomed"].front().seq == 1);

  const ChildReport rep = RunChild(options, ops);
  CHECK(rep.remaining == 0);
  CHECK(rep.last_durable_lsn == rep.last_lsn);
  CHECK(rep.written == ops.size());
  CHECK(rep.last_lsn - rep.first_lsn + 1 == ops.size());

  std::vector<std::vector<std::string>> windows[2];
  int idx = 0;
  for (int64_t warm : {-1, 0}) {
    INFO("warm_conversations " << warm);
    Options o = options;
    o.warm_conversations = warm;
    o.create_if_missing = false;  // it must be there
    auto store = OpenOrDie(o);
    Stats st = store->GetStats();
    CHECK(st.appended_lsn == rep.last_lsn);
    CHECK(st.durable_lsn == rep.last_lsn);
    size_t live = 0;
    for (const auto& [conv, msgs] : model) live += msgs.empty() ? 0 : 1;
    CHECK(live == kConvs.size());
    CHECK(st.db_conversations == live);
    if (warm == 0) {
      CHECK(st.cached_conversations == 0);
    } else {
      CHECK(st.cached_conversations == live);
    }
    CheckAgainstModel(store.get(), model, rep);
    CheckListing(store.get(), model);
    windows[idx++] = Windows(store.get(), model);
    REQUIRE(store->Close().ok());
  }
  CHECK(windows[0] == windows[1]);
}

TEST_CASE("LSNs and seqs continue across processes", "[restart]") {
  TempDir dir;
  const Options options = ChildOptions(dir);
  Model model;
  std::vector<Op> gen1 = MakeWorkload(&model, kConvs, 60, kT0, 3);
  const ChildReport rep1 = RunChild(options, gen1);
  CHECK(rep1.last_lsn - rep1.first_lsn + 1 == gen1.size());

  // The parent appends once in between.
  uint64_t parent_lsn = 0;
  {
    auto store = OpenOrDie(options);
    Message m;
    m.role = Role::kUser;
    m.content = "from the parent";
    m.user_id = "user-of-alpha";
    m.created_at_us = kT0 + 50'000;
    StatusOr<AppendResult> r = store->Append("alpha", m);
    REQUIRE(r.ok());
    CHECK(r->lsn > rep1.last_lsn);
    CHECK(r->seq == static_cast<int64_t>(model["alpha"].size()) + 1);
    m.seq = r->seq;
    model["alpha"].push_back(m);
    parent_lsn = r->lsn;
    REQUIRE(store->Close().ok());
  }

  // A second child continues every conversation and adds a new one.
  std::vector<std::string> convs2 = kConvs;
  convs2.push_back("late-comer");
  std::vector<Op> gen2 = MakeWorkload(&model, convs2, 80, kT0 + 60'000, 5);
  AddDelete(&model, &gen2, "gamma");
  const ChildReport rep2 = RunChild(options, gen2);
  CHECK(rep2.first_lsn > parent_lsn);
  CHECK(rep2.last_lsn - rep2.first_lsn + 1 == gen2.size());

  ChildReport both = rep1;
  both.wall_after_us = rep2.wall_after_us;  // auto-time spans both runs
  for (int64_t warm : {-1, 0}) {
    INFO("warm_conversations " << warm);
    Options o = options;
    o.warm_conversations = warm;
    auto store = OpenOrDie(o);
    CHECK(store->GetStats().appended_lsn == rep2.last_lsn);
    CheckAgainstModel(store.get(), model, both);
    CheckListing(store.get(), model);
    CHECK(Hist(store.get(), "gamma").empty());
    REQUIRE(store->Close().ok());
  }
}

}  // namespace
}  // namespace convstore
