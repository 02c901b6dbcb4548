// Copyright 2026 The convstore Authors.
//
// ComputeWindow against hand-built conversations: last_n, limit, token
// budgets with tool-call groups, system pinning and the wants_older signal.

#include "history_window.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace convstore::internal {
namespace {

Message M(Role role, int64_t tokens_in, int64_t tokens_out = 0,
          std::string tool_call_id = "") {
  Message m;
  m.role = role;
  m.content = RoleName(role);
  m.tokens_in = tokens_in;
  m.tokens_out = tokens_out;
  m.tool_call_id = std::move(tool_call_id);
  return m;
}

// Numbers the messages seq = first_seq, first_seq + 1, ...
std::vector<Message> Conv(std::initializer_list<Message> messages,
                          int64_t first_seq = 1) {
  std::vector<Message> v(messages);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i].seq = first_seq + static_cast<int64_t>(i);
  }
  return v;
}

Window Run(const std::vector<Message>& v, const HistoryOptions& o,
           const Message* first_system) {
  return ComputeWindow(
      v.size(), [&](size_t i) -> const Message& { return v[i]; }, o,
      first_system);
}

std::string Describe(const Window& w) {
  return "[" + std::to_string(w.begin) + "," + std::to_string(w.end) +
         ") pin=" + std::to_string(w.pin_system) +
         " older=" + std::to_string(w.wants_older);
}

// The seqs a History call would return for this window.
std::vector<int64_t> Seqs(const std::vector<Message>& v, const Window& w,
                          const Message* first_system) {
  std::vector<int64_t> out;
  if (w.pin_system) out.push_back(first_system->seq);
  for (size_t i = w.begin; i < w.end; ++i) out.push_back(v[i].seq);
  return out;
}

HistoryOptions LastN(size_t n, bool pin = false) {
  HistoryOptions o;
  o.last_n = n;
  o.pin_system = pin;
  return o;
}

HistoryOptions Budget(int64_t budget, bool pin = false) {
  HistoryOptions o;
  o.token_budget = budget;
  o.pin_system = pin;
  return o;
}

// seq:     1       2      3             4          5          6       7
// tokens: 10       5      4            20          6          7       3
//          S       U      A(call c1)   T(c1)      T(c1)      A       U
// Groups from the newest: [7]=3, [6]=7, [3,4,5]=30, [2]=5, [1]=10.
std::vector<Message> ToolConversation() {
  return Conv({M(Role::kSystem, 10), M(Role::kUser, 5),
               M(Role::kAssistant, 0, 4, "c1"), M(Role::kTool, 20, 0, "c1"),
               M(Role::kTool, 6, 0, "c1"), M(Role::kAssistant, 0, 7),
               M(Role::kUser, 3)});
}

std::vector<Message> PlainConversation() {
  return Conv({M(Role::kUser, 1), M(Role::kAssistant, 1), M(Role::kUser, 1),
               M(Role::kAssistant, 1), M(Role::kUser, 1)});
}

TEST_CASE("No options: the whole input, which may want older data",
          "[history_window]") {
  auto v = ToolConversation();
  HistoryOptions o;
  CHECK(Describe(Run(v, o, &v[0])) == "[0,7) pin=0 older=1");
  CHECK(Describe(Run({}, o, nullptr)) == "[0,0) pin=0 older=1");
}

TEST_CASE("last_n takes the newest messages", "[history_window]") {
  auto v = PlainConversation();
  CHECK(Describe(Run(v, LastN(1), nullptr)) == "[4,5) pin=0 older=0");
  CHECK(Describe(Run(v, LastN(3), nullptr)) == "[2,5) pin=0 older=0");
  CHECK(Seqs(v, Run(v, LastN(3), nullptr), nullptr) ==
        std::vector<int64_t>{3, 4, 5});
  // Everything fits: the window runs to the oldest input message and would
  // take older ones if the input were only a suffix.
  CHECK(Describe(Run(v, LastN(9), nullptr)) == "[0,5) pin=0 older=1");
  // pin_system is harmless without a system message.
  CHECK(Describe(Run(v, LastN(3, true), nullptr)) == "[2,5) pin=0 older=0");
}

TEST_CASE("last_n drops tool results orphaned at the front",
          "[history_window]") {
  auto v = ToolConversation();
  // last_n=1,2 cut between groups.
  CHECK(Describe(Run(v, LastN(1), nullptr)) == "[6,7) pin=0 older=0");
  CHECK(Describe(Run(v, LastN(2), nullptr)) == "[5,7) pin=0 older=0");
  // last_n=3 starts at seq 5 (a tool result), last_n=4 at seq 4: both lose
  // their caller (seq 3), so they are dropped.
  CHECK(Describe(Run(v, LastN(3), nullptr)) == "[5,7) pin=0 older=0");
  CHECK(Describe(Run(v, LastN(4), nullptr)) == "[5,7) pin=0 older=0");
  // last_n=5 starts at the caller and keeps the whole group.
  CHECK(Describe(Run(v, LastN(5), nullptr)) == "[2,7) pin=0 older=0");
  CHECK(Seqs(v, Run(v, LastN(5), nullptr), nullptr) ==
        std::vector<int64_t>{3, 4, 5, 6, 7});

  // A window made only of orphans ends up empty.
  auto t = Conv({M(Role::kUser, 1), M(Role::kAssistant, 1, 0, "c"),
                 M(Role::kTool, 1, 0, "c"), M(Role::kTool, 1, 0, "c")});
  CHECK(Describe(Run(t, LastN(2), nullptr)) == "[4,4) pin=0 older=0");
  CHECK(Describe(Run(t, LastN(3), nullptr)) == "[1,4) pin=0 older=0");
}

TEST_CASE("limit takes the oldest messages (forward page)",
          "[history_window]") {
  auto v = PlainConversation();
  HistoryOptions o;
  o.limit = 2;
  CHECK(Describe(Run(v, o, nullptr)) == "[0,2) pin=0 older=1");
  o.limit = 5;
  CHECK(Describe(Run(v, o, nullptr)) == "[0,5) pin=0 older=1");
  o.limit = 50;
  CHECK(Describe(Run(v, o, nullptr)) == "[0,5) pin=0 older=1");

  // A page that starts with a tool result keeps it: forward paging must not
  // skip messages.
  auto all = ToolConversation();
  std::vector<Message> after3(all.begin() + 3, all.end());  // seqs 4..7
  HistoryOptions page;
  page.after_seq = 3;
  page.limit = 2;
  Window w = Run(after3, page, &all[0]);
  CHECK(Describe(w) == "[0,2) pin=0 older=1");
  CHECK(Seqs(after3, w, &all[0]) == std::vector<int64_t>{4, 5});
}

TEST_CASE("token_budget takes whole groups from the newest",
          "[history_window]") {
  auto v = ToolConversation();
  // Exactly exhausted at a group boundary: 3 + 7 = 10.
  CHECK(Describe(Run(v, Budget(10), nullptr)) == "[5,7) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(9), nullptr)) == "[6,7) pin=0 older=0");
  // The tool group (30 tokens) does not fit in 39 - 10 = 29: dropped whole,
  // never a lone tool result.
  CHECK(Describe(Run(v, Budget(39), nullptr)) == "[5,7) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(40), nullptr)) == "[2,7) pin=0 older=0");
  CHECK(Seqs(v, Run(v, Budget(40), nullptr), nullptr) ==
        std::vector<int64_t>{3, 4, 5, 6, 7});
  CHECK(Describe(Run(v, Budget(44), nullptr)) == "[2,7) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(45), nullptr)) == "[1,7) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(54), nullptr)) == "[1,7) pin=0 older=0");
  // Everything (55 tokens) fits: the window would take older messages.
  CHECK(Describe(Run(v, Budget(55), nullptr)) == "[0,7) pin=0 older=1");
  CHECK(Describe(Run(v, Budget(1000), nullptr)) == "[0,7) pin=0 older=1");
  // Not even the newest message fits.
  CHECK(Describe(Run(v, Budget(2), nullptr)) == "[7,7) pin=0 older=0");
}

TEST_CASE("token_budget drops a too-big newest tool group whole",
          "[history_window]") {
  // seq 1 U(1), seq 2 A call (5), seq 3 T result (50): group [2,3] = 55.
  auto v = Conv({M(Role::kUser, 1), M(Role::kAssistant, 0, 5, "x"),
                 M(Role::kTool, 50, 0, "x")});
  CHECK(Describe(Run(v, Budget(20), nullptr)) == "[3,3) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(54), nullptr)) == "[3,3) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(55), nullptr)) == "[1,3) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(56), nullptr)) == "[0,3) pin=0 older=1");
}

TEST_CASE("token_budget within a last_n window stops before orphans",
          "[history_window]") {
  auto v = ToolConversation();
  HistoryOptions o = Budget(1000);
  o.last_n = 3;  // starts at seq 5, a tool result whose caller is cut off
  CHECK(Describe(Run(v, o, nullptr)) == "[5,7) pin=0 older=0");
  o.last_n = 5;  // starts at the caller: the group is kept
  CHECK(Describe(Run(v, o, nullptr)) == "[2,7) pin=0 older=0");
  o.token_budget = 12;  // last_n=5 then budget: 3 + 7 fit, the group not
  CHECK(Describe(Run(v, o, nullptr)) == "[5,7) pin=0 older=0");
}

TEST_CASE("A tool group at the input's start asks for older data",
          "[history_window]") {
  // A cached suffix seqs 4..7 of ToolConversation: the caller of seqs 4 and
  // 5 (seq 3) is not in the input, but may be in older data.
  auto all = ToolConversation();
  std::vector<Message> suffix(all.begin() + 3, all.end());
  Window w = Run(suffix, Budget(1000), nullptr);
  CHECK(w.wants_older);
  CHECK_FALSE(w.pin_system);
  // With the caller in the input, the same budget is answered in place.
  std::vector<Message> longer(all.begin() + 2, all.end());
  CHECK(Describe(Run(longer, Budget(1000), nullptr)) == "[0,5) pin=0 older=1");
  CHECK(Describe(Run(longer, Budget(40), nullptr)) == "[0,5) pin=0 older=1");
  CHECK(Describe(Run(longer, Budget(39), nullptr)) == "[3,5) pin=0 older=0");
  // If the budget runs out before reaching the tool group, no older data
  // is needed.
  Window cut = Run(suffix, Budget(9), nullptr);
  CHECK(Describe(cut) == "[3,4) pin=0 older=0");
}

TEST_CASE("pin_system with last_n", "[history_window]") {
  // S1 U2 A3 U4 U5, 10 + 4 x 5 tokens.
  auto v =
      Conv({M(Role::kSystem, 10), M(Role::kUser, 5), M(Role::kAssistant, 0, 5),
            M(Role::kUser, 5), M(Role::kUser, 5)});
  const Message* sys = &v[0];
  Window w = Run(v, LastN(2, true), sys);
  CHECK(Describe(w) == "[3,5) pin=1 older=0");
  CHECK(Seqs(v, w, sys) == std::vector<int64_t>{1, 4, 5});
  // The pinned message does not count against last_n.
  CHECK(Describe(Run(v, LastN(4, true), sys)) == "[1,5) pin=1 older=0");
  // The system message is inside the window: no pin. last_n == n takes
  // exactly the input, so older data would not change it.
  CHECK(Describe(Run(v, LastN(5, true), sys)) == "[0,5) pin=0 older=0");
  CHECK(Describe(Run(v, LastN(9, true), sys)) == "[0,5) pin=0 older=1");
  // pin_system off.
  CHECK(Describe(Run(v, LastN(2, false), sys)) == "[3,5) pin=0 older=0");

  // The first system message need not be the first message.
  auto u = Conv({M(Role::kUser, 1), M(Role::kSystem, 1), M(Role::kAssistant, 1),
                 M(Role::kUser, 1)});
  CHECK(Describe(Run(u, LastN(2, true), &u[1])) == "[2,4) pin=1 older=0");
  CHECK(Describe(Run(u, LastN(3, true), &u[1])) == "[1,4) pin=0 older=0");

  // A cached suffix (seqs 3..5) still pins the older system message.
  std::vector<Message> suffix(v.begin() + 2, v.end());
  CHECK(Describe(Run(suffix, LastN(2, true), sys)) == "[1,3) pin=1 older=0");
  CHECK(Describe(Run(suffix, LastN(5, true), sys)) == "[0,3) pin=1 older=1");
}

TEST_CASE("pin_system with token_budget reserves the system tokens",
          "[history_window]") {
  // S1(10) U2(5) A3(5) U4(5).
  auto v = Conv({M(Role::kSystem, 10), M(Role::kUser, 5),
                 M(Role::kAssistant, 0, 5), M(Role::kUser, 5)});
  const Message* sys = &v[0];
  // 20 - 10 reserved = 10: U4 and A3.
  Window w = Run(v, Budget(20, true), sys);
  CHECK(Describe(w) == "[2,4) pin=1 older=0");
  CHECK(Seqs(v, w, sys) == std::vector<int64_t>{1, 3, 4});
  // Without pinning the same budget reaches one message further.
  CHECK(Describe(Run(v, Budget(20, false), sys)) == "[1,4) pin=0 older=0");
  CHECK(Describe(Run(v, Budget(19, true), sys)) == "[3,4) pin=1 older=0");
  // Everything fits, S1 in its reserve where it stands (it used to be
  // charged twice, and was pinned in front instead: the same seqs).
  CHECK(Describe(Run(v, Budget(25, true), sys)) == "[0,4) pin=0 older=1");
  CHECK(Describe(Run(v, Budget(35, true), sys)) == "[0,4) pin=0 older=1");
}

TEST_CASE("pin_system when nothing fits the budget", "[history_window]") {
  // S1(10) U2(5) U3(50): after reserving 10 of 20, U3 does not fit.
  auto v = Conv({M(Role::kSystem, 10), M(Role::kUser, 5), M(Role::kUser, 50)});
  Window w = Run(v, Budget(20, true), &v[0]);
  CHECK(Describe(w) == "[3,3) pin=1 older=0");
  CHECK(Seqs(v, w, &v[0]) == std::vector<int64_t>{1});
}

TEST_CASE("No pin with after_seq or limit", "[history_window]") {
  auto v =
      Conv({M(Role::kSystem, 10), M(Role::kUser, 5), M(Role::kAssistant, 0, 5),
            M(Role::kUser, 5), M(Role::kUser, 5)});
  const Message* sys = &v[0];
  std::vector<Message> after2(v.begin() + 2, v.end());  // seqs 3..5

  HistoryOptions o = LastN(1, true);
  o.after_seq = 2;
  CHECK(Describe(Run(after2, o, sys)) == "[2,3) pin=0 older=0");
  o = Budget(5, true);
  o.after_seq = 2;
  CHECK(Describe(Run(after2, o, sys)) == "[2,3) pin=0 older=0");

  HistoryOptions page;
  page.limit = 2;
  page.pin_system = true;
  CHECK(Describe(Run(after2, page, sys)) == "[0,2) pin=0 older=1");
  // limit with a token budget: the budget windows within the page. A forward
  // page is anchored at the oldest input message, so it always wants older
  // data: a cached suffix must not answer it (regression: the cache once
  // answered History(limit=10, token_budget=3) with the newest messages).
  page.token_budget = 5;
  CHECK(Describe(Run(after2, page, sys)) == "[1,2) pin=0 older=1");
}

// The header promises wants_older only when the window "would have taken
// older ones had there been any". last_n equal to the input size takes the
// newest last_n messages, all present, so older data cannot change the
// answer; reporting wants_older makes the store read SQLite needlessly.
TEST_CASE("last_n equal to the input size does not want older data",
          "[history_window]") {
  auto v = PlainConversation();
  CHECK(Describe(Run(v, LastN(5), nullptr)) == "[0,5) pin=0 older=0");
}

// Tool results right after after_seq (or at the conversation's start) are
// returned as is. With exactly last_n of them left, the window was taken
// for cut and they were dropped as orphans: last_n=2 returned nothing where
// last_n=3 returned both.
TEST_CASE("last_n equal to the input keeps tool results at its start",
          "[history_window]") {
  // seqs 3, 4 after after_seq=2 (their caller).
  auto v = Conv({M(Role::kTool, 1, 0, "c"), M(Role::kTool, 1, 0, "c")}, 3);
  HistoryOptions o = LastN(2);
  o.after_seq = 2;
  // The input may be a suffix: older data decides (wants_older).
  CHECK(Describe(Run(v, o, nullptr)) == "[0,2) pin=0 older=1");
  o.last_n = 3;
  CHECK(Describe(Run(v, o, nullptr)) == "[0,2) pin=0 older=1");
  // With the caller in the input, the same last_n cuts and drops them.
  auto w = Conv({M(Role::kAssistant, 1, 0, "c"), M(Role::kTool, 1, 0, "c"),
                 M(Role::kTool, 1, 0, "c")},
                2);
  CHECK(Describe(Run(w, LastN(2), nullptr)) == "[3,3) pin=0 older=0");
}

// A first system message inside the walked range was charged twice: once
// reserved for the pin, once in its group, so pinning shrank the window.
TEST_CASE("pin_system does not charge a system message inside the window",
          "[history_window]") {
  // seq 1 user (10), 2 system (100), 3 user (10).
  auto v =
      Conv({M(Role::kUser, 10), M(Role::kSystem, 100), M(Role::kUser, 10)});
  CHECK(Seqs(v, Run(v, Budget(125, false), &v[1]), &v[1]) ==
        std::vector<int64_t>{1, 2, 3});
  CHECK(Seqs(v, Run(v, Budget(125, true), &v[1]), &v[1]) ==
        std::vector<int64_t>{1, 2, 3});
  // Too small for all: the pinned prompt plus the newest message that fit.
  CHECK(Seqs(v, Run(v, Budget(115, true), &v[1]), &v[1]) ==
        std::vector<int64_t>{2, 3});
}

// A conversation may begin with a role=tool message (Append accepts it).
// When such a complete conversation is windowed by a budget, the returned
// window must still respect the budget: the store uses [begin, end) as is
// for complete conversations and for from_storage reads.
TEST_CASE("A leading tool result does not disable the token budget",
          "[history_window]") {
  auto v = Conv({M(Role::kTool, 100), M(Role::kUser, 1)});
  Window w = Run(v, Budget(50), nullptr);
  int64_t used = 0;
  for (size_t i = w.begin; i < w.end; ++i) used += v[i].tokens();
  CHECK(used <= 50);
  // The leading tool group (100 tokens) does not fit; with its caller from
  // older data it would be bigger still, so older data cannot change the
  // window: wants_older is false.
  CHECK(Describe(w) == "[1,2) pin=0 older=0");
  // When the same group does fit, the caller may be in older data.
  Window fits = Run(v, Budget(500), nullptr);
  CHECK(Describe(fits) == "[0,2) pin=0 older=1");
}

}  // namespace
}  // namespace convstore::internal
