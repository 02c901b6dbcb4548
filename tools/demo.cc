// Copyright 2026 The convstore Authors.

#include "demo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "convstore/convstore.h"
#include "demo_services.h"

namespace convstore::tools {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

constexpr char kIdPrefix[] = "demo-";
// The demo holds every script in memory to check what the store returns:
// 1M messages took 0.97 GB of peak RSS (with the store) and 36 s on the
// 2-core CI host (`/usr/bin/time -v convstore demo --conversations 1000
// --turns 1000`, RelWithDebInfo build, 2026-12-07).
constexpr size_t kMaxTotalMessages = 1'000'000;
constexpr size_t kLastTurnsShown = 6;
// Where the narration of a step starts, after "N. label".
const std::string kIndent(16, ' ');

struct Topic {
  const char* slug;
  const char* system_prompt;
  const char* tool;
  std::vector<const char*> asks;
};

const std::vector<Topic>& Topics() {
  static const std::vector<Topic> topics = {
      {"travel",
       "You are a travel assistant. Be concise and always confirm dates.",
       "search_flights",
       {"Find me a flight from Lisbon to Berlin next Friday.",
        "Anything earlier in the morning?", "And a return on Sunday evening?",
        "Is there a direct option, even if it costs more?"}},
      {"code-review",
       "You are a senior C++ reviewer. Point at the line, then explain.",
       "run_tests",
       {"Why does this loop read one element past the end of the vector?",
        "Can you suggest a fix that keeps it branch-free?",
        "Does the fix handle an empty input?",
        "Please rerun the tests with the patch applied."}},
      {"support",
       "You are a support agent for a photo-sharing app. Be kind and precise.",
       "lookup_account",
       {"My uploads have been stuck at 99% since yesterday.",
        "I already tried logging out and in again.",
        "It is the Android app, version 5.2.",
        "Can you check whether my storage quota is full?"}},
      {"research",
       "You summarise research papers for a busy engineer.",
       "search_papers",
       {"What is the state of the art in write-ahead logging for SSDs?",
        "Summarise the strongest paper in three sentences.",
        "What are its limitations?", "Which follow-up work addresses them?"}},
      {"cooking",
       "You are a friendly cooking assistant. Use metric units.",
       "convert_units",
       {"I have leeks, potatoes and cream. What can I cook tonight?",
        "How long does the soup need to simmer?", "Can I freeze leftovers?",
        "The recipe says 2 cups of stock; in ml?"}},
      {"budget",
       "You help with personal budgeting. Never give investment advice.",
       "get_transactions",
       {"How much did I spend on groceries last month?",
        "Compare that with the month before.",
        "Which subscriptions could I cancel?",
        "Set a reminder to review this next month."}},
  };
  return topics;
}

const std::vector<const char*>& Users() {
  static const std::vector<const char*> users = {"alice", "bob", "carol"};
  return users;
}

const std::vector<const char*>& Filler() {
  static const std::vector<const char*> filler = {
      "Let me walk you through it step by step.",
      "Here is the short version first, details below.",
      "I checked this against the information you gave me earlier.",
      "There are two reasonable options; the first is simpler.",
      "One caveat: this depends on details I cannot verify from here.",
      "If that does not work, tell me what you see and we will dig deeper.",
      "I kept the answer brief; ask if you want the full reasoning.",
      "That matches what we discussed a few turns ago.",
  };
  return filler;
}

int64_t Tokens(const std::string& text) {
  return std::max<int64_t>(1, static_cast<int64_t>(text.size() / 4));
}

// One simulated conversation: what is appended, in order. After the appends
// each message's seq (and created_at, read back from memory) is filled in,
// so it is exactly what History must return.
struct Script {
  std::string id;
  std::string user;
  std::vector<Message> messages;
};

Script MakeScript(size_t index, size_t turns) {
  const Topic& topic = Topics()[index % Topics().size()];
  std::mt19937 rng(static_cast<uint32_t>(index + 1));
  auto pick = [&rng](size_t n) {
    return static_cast<size_t>(rng() % static_cast<uint32_t>(n));
  };
  Script s;
  char id[64];
  std::snprintf(id, sizeof(id), "%s%02zu-%s", kIdPrefix, index + 1, topic.slug);
  s.id = id;
  s.user = Users()[index % Users().size()];
  const std::string channel = index % 2 == 0 ? "web" : "slack";

  auto add = [&](Role role, std::string content) -> Message& {
    Message m;
    m.role = role;
    m.content = std::move(content);
    m.user_id = s.user;
    s.messages.push_back(std::move(m));
    return s.messages.back();
  };
  auto full = [&] { return s.messages.size() >= turns; };

  Message& system = add(Role::kSystem, topic.system_prompt);
  system.tokens_in = Tokens(system.content);
  for (size_t k = 0; !full(); ++k) {
    std::string ask = topic.asks[k % topic.asks.size()];
    if (k >= topic.asks.size()) ask += " (follow-up " + std::to_string(k) + ")";
    Message& user = add(Role::kUser, ask);
    user.tokens_in = Tokens(user.content);
    user.metadata = json{{"channel", channel}, {"turn", k}}.dump();
    if (full()) break;

    if (pick(3) == 0) {  // about a third of the answers need a tool
      const std::string call_id =
          "call_" + std::to_string(index + 1) + "_" + std::to_string(k);
      Message& call =
          add(Role::kAssistant,
              json{{"query", ask}, {"max_results", 1 + pick(5)}}.dump());
      call.tool_call_id = call_id;
      call.tool_name = topic.tool;
      call.tokens_out = Tokens(call.content);
      call.metadata =
          json{{"model", "demo-llm"}, {"finish_reason", "tool_calls"}}.dump();
      if (full()) break;
      Message& result =
          add(Role::kTool,
              json{{"ok", true},
                   {"results", 1 + pick(5)},
                   {"summary", std::string(topic.slug) + " data for turn " +
                                   std::to_string(k)}}
                  .dump());
      result.tool_call_id = call_id;
      result.tool_name = topic.tool;
      result.tokens_in = Tokens(result.content);
      if (full()) break;
    }
    std::string answer;
    for (size_t n = 1 + pick(3); n > 0; --n) {
      answer += Filler()[pick(Filler().size())];
      if (n > 1) answer += " ";
    }
    Message& reply = add(Role::kAssistant, answer);
    reply.tokens_out = Tokens(reply.content);
    reply.metadata = json{{"model", "demo-llm"},
                          {"finish_reason", "stop"},
                          {"latency_ms", 200 + pick(1300)}}
                         .dump();
  }
  return s;
}

// The first field in which `got` differs from `want`, or "" if none does.
// created_at is compared only when `want` has one.
std::string FirstDifference(const Message& want, const Message& got) {
  if (got.seq != want.seq) return "seq";
  if (got.role != want.role) return "role";
  if (got.content != want.content) return "content";
  if (got.user_id != want.user_id) return "user_id";
  if (got.tokens_in != want.tokens_in) return "tokens_in";
  if (got.tokens_out != want.tokens_out) return "tokens_out";
  if (got.tool_call_id != want.tool_call_id) return "tool_call_id";
  if (got.tool_name != want.tool_name) return "tool_name";
  if (got.metadata != want.metadata) return "metadata";
  if (want.created_at_us != 0 && got.created_at_us != want.created_at_us) {
    return "created_at";
  }
  return "";
}

// "" if `got` is exactly `want`, else what differs first.
std::string Compare(const std::vector<Message>& want,
                    const std::vector<MessagePtr>& got) {
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    std::string field = FirstDifference(want[i], *got[i]);
    if (!field.empty()) {
      return "message " + std::to_string(i + 1) + ": " + field + " differs";
    }
  }
  if (got.size() != want.size()) {
    return std::to_string(got.size()) + " messages, expected " +
           std::to_string(want.size());
  }
  return "";
}

int64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() -
                                                               start)
      .count();
}

void Step(std::ostream& out, int n, const char* label) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%d. %-13s", n, label);
  out << buf;
}

// Nearest-rank percentile of sorted values.
int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  size_t rank = static_cast<size_t>(std::ceil(p * n));  // 1-based
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

std::string Micros(int64_t nanos) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f us", static_cast<double>(nanos) / 1e3);
  return buf;
}

// Deletes `path` and its SQLite side files so the demo starts from nothing,
// unless the file holds conversations the demo did not write.
Status RemovePreviousDemo(const std::string& path, bool* removed) {
  namespace fs = std::filesystem;
  std::error_code ec;
  *removed = false;
  if (fs::exists(path, ec)) {
    if (!fs::is_regular_file(path, ec)) {
      return Status::FailedPrecondition(path + " exists and is not a file");
    }
    const std::string refuse =
        "; the demo deletes its database first and will not delete this "
        "file. Pass --db with another path";
    StatusOr<std::unique_ptr<Store>> store = OpenExisting(path);
    if (!store.ok()) {
      return Status::FailedPrecondition(
          path + " is not a convstore database (" + store.status().ToString() +
          ")" + refuse);
    }
    ListOptions list;
    list.limit = 1000;
    bool any = false;
    while (true) {
      StatusOr<ConversationPage> page = (*store)->ListConversations(list);
      if (!page.ok()) return CloseAfter(**store, page.status());
      for (const ConversationInfo& c : page->conversations) {
        any = true;
        if (c.conversation_id.rfind(kIdPrefix, 0) != 0) {
          return CloseAfter(
              **store, Status::FailedPrecondition(
                           path + " holds conversation '" + c.conversation_id +
                           "', which the demo did not write" + refuse));
        }
      }
      if (page->next_cursor.empty()) break;
      list.cursor = page->next_cursor;
    }
    // A store with no conversation may still hold keys, audit records,
    // sessions or cache entries: the demo always writes conversations, so
    // this is not one of its files.
    if (!any) {
      return CloseAfter(
          **store,
          Status::FailedPrecondition(
              path + " holds no conversation the demo wrote" + refuse));
    }
    Status s = CloseAfter(**store, Status::OK());
    if (!s.ok()) return s;
    *removed = true;
  }
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::remove(path + suffix, ec);
    if (ec) return Status::IOError("cannot remove " + path + suffix);
  }
  return Status::OK();
}

// Checks every conversation's History against its script, one line each.
// Returns how many differ.
StatusOr<size_t> Verify(Store& store, const std::vector<Script>& scripts,
                        std::ostream& out, bool print_each) {
  size_t id_width = 0;
  for (const Script& s : scripts) id_width = std::max(id_width, s.id.size());
  size_t mismatches = 0;
  for (const Script& s : scripts) {
    StatusOr<std::vector<MessagePtr>> got = store.History(s.id);
    if (!got.ok()) return got.status().WithPrefix("History(" + s.id + ")");
    const std::string diff = Compare(s.messages, *got);
    if (!diff.empty()) ++mismatches;
    if (print_each || !diff.empty()) {
      char line[256];
      std::snprintf(line, sizeof(line), "%-*s  %-5s  %5zu messages  ",
                    static_cast<int>(id_width), s.id.c_str(), s.user.c_str(),
                    got->size());
      out << kIndent << line
          << (diff.empty() ? std::string("OK") : "MISMATCH (" + diff + ")")
          << "\n";
    }
  }
  return mismatches;
}

}  // namespace

Status RunDemo(const DemoArgs& args, std::ostream& out) {
  if (args.conversations == 0 || args.turns == 0) {
    return Status::InvalidArgument("--conversations and --turns must be >= 1");
  }
  if (args.conversations > kMaxTotalMessages / args.turns) {
    return Status::InvalidArgument(
        "--conversations x --turns must be at most " +
        std::to_string(kMaxTotalMessages) +
        " (the demo keeps every message in memory to check it)");
  }
  bool removed = false;
  Status s = RemovePreviousDemo(args.db, &removed);
  if (!s.ok()) return s;

  std::vector<Script> scripts;
  scripts.reserve(args.conversations);
  size_t total = 0;
  for (size_t i = 0; i < args.conversations; ++i) {
    scripts.push_back(MakeScript(i, args.turns));
    total += scripts.back().messages.size();
  }

  out << "convstore demo\n"
      << "  database  " << args.db
      << (removed ? " (previous demo file removed)" : " (new file)") << "\n"
      << "  workload  " << args.conversations << " conversations x "
      << args.turns << " messages = " << total << " appends from "
      << std::min(args.conversations, Users().size())
      << " users: system prompts, user and assistant turns, tool calls with "
         "their results\n\n";

  Options options;
  options.path = args.db;

  // 1. Open a fresh store.
  Clock::time_point t0 = Clock::now();
  StatusOr<std::unique_ptr<Store>> opened = Store::Open(options);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<Store> store = std::move(*opened);
  Step(out, 1, "open");
  out << FormatDuration(MicrosSince(t0)) << "\n";

  // 2. Append round-robin, as an agent server interleaving its sessions.
  std::vector<int64_t> latency_ns;
  latency_ns.reserve(total);
  t0 = Clock::now();
  for (size_t turn = 0; turn < args.turns; ++turn) {
    for (Script& script : scripts) {
      if (turn >= script.messages.size()) continue;
      Message& m = script.messages[turn];
      Clock::time_point c0 = Clock::now();
      StatusOr<AppendResult> r = store->Append(script.id, m);
      latency_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                               Clock::now() - c0)
                               .count());
      if (!r.ok()) {
        return CloseAfter(*store,
                          r.status().WithPrefix("Append(" + script.id + ")"));
      }
      // The expected seq is the position; a store that hands out another
      // one shows up as a seq mismatch below.
      m.seq = static_cast<int64_t>(turn) + 1;
      if (r->seq != m.seq) {
        return CloseAfter(
            *store, Status::Internal("Append(" + script.id + ") returned seq " +
                                     std::to_string(r->seq) + ", expected " +
                                     std::to_string(m.seq)));
      }
    }
  }
  const int64_t append_us = std::max<int64_t>(1, MicrosSince(t0));
  std::sort(latency_ns.begin(), latency_ns.end());
  Step(out, 2, "append");
  char rate[64];
  std::snprintf(
      rate, sizeof(rate), "%.0f msgs/s",
      static_cast<double>(total) * 1e6 / static_cast<double>(append_us));
  out << total << " messages in " << FormatDuration(append_us) << " = " << rate
      << "\n"
      << kIndent << "per call: p50 " << Micros(Percentile(latency_ns, 0.50))
      << ", p99 " << Micros(Percentile(latency_ns, 0.99)) << ", max "
      << Micros(latency_ns.back()) << "\n";

  // The in-memory view must already match; it also tells us the created_at
  // the store stamped on each message, which the reopened file must keep.
  size_t memory_mismatches = 0;
  for (Script& script : scripts) {
    StatusOr<std::vector<MessagePtr>> got = store->History(script.id);
    if (!got.ok()) return CloseAfter(*store, got.status());
    std::string diff = Compare(script.messages, *got);
    if (!diff.empty()) {
      ++memory_mismatches;
      out << kIndent << script.id << ": in-memory History MISMATCH (" << diff
          << ")\n";
      continue;
    }
    for (size_t i = 0; i < got->size(); ++i) {
      script.messages[i].created_at_us = (*got)[i]->created_at_us;
    }
  }
  out << kIndent << "History from memory matches what was appended: "
      << scripts.size() - memory_mismatches << "/" << scripts.size()
      << " conversations\n";

  // 3. The other kinds of record, through the same writer.
  Step(out, 3, "record");
  out << "API key, cache entries, voice sessions and audit, same file:\n";
  std::vector<DemoConversation> conversations;
  for (const Script& script : scripts) {
    DemoConversation c{script.id, script.user, 0};
    for (const Message& m : script.messages) {
      if (m.role == Role::kUser) ++c.user_turns;
    }
    conversations.push_back(std::move(c));
  }
  DemoServices services;
  s = RecordServices(*store, conversations, &services, out, kIndent);
  if (!s.ok()) return CloseAfter(*store, s);

  // 4. Flush: everything acknowledged becomes durable.
  t0 = Clock::now();
  s = store->Flush();
  if (!s.ok()) return CloseAfter(*store, s);
  Step(out, 4, "flush");
  Stats flushed = store->GetStats();
  out << FormatDuration(MicrosSince(t0)) << " (durable lsn "
      << flushed.durable_lsn << " of " << flushed.appended_lsn << ", "
      << flushed.batches_committed
      << (flushed.batches_committed == 1 ? " batch)\n" : " batches)\n")
      << kIndent << "commit p50 "
      << FormatDuration(flushed.commit_latency_p50_us) << ", p99 "
      << FormatDuration(flushed.commit_latency_p99_us)
      << "; enqueue->durable p50 "
      << FormatDuration(flushed.enqueue_to_durable_p50_us) << ", p99 "
      << FormatDuration(flushed.enqueue_to_durable_p99_us) << "\n";

  // 5. Close.
  t0 = Clock::now();
  StatusOr<CloseReport> report = store->Close();
  const int64_t close_us = MicrosSince(t0);
  store.reset();
  if (!report.ok()) return report.status();
  Step(out, 5, "close");
  out << FormatDuration(close_us) << ": ";
  PrintCloseReportText(*report, out);
  out << "\n";
  if (report->remaining != 0 || report->failed != 0) {
    return Status::Internal("close left writes uncommitted");
  }

  // 6. Reopen the same file: the cache warms from disk.
  t0 = Clock::now();
  opened = Store::Open(options);
  if (!opened.ok()) return opened.status().WithPrefix("reopen");
  store = std::move(*opened);
  const int64_t reopen_us = MicrosSince(t0);
  Stats warmed = store->GetStats();
  Step(out, 6, "reopen");
  out << FormatDuration(reopen_us) << " (warmed " << warmed.cached_conversations
      << " conversations, " << warmed.cached_messages
      << " messages into memory)\n";

  // 7. Verify every conversation against what was appended, then the
  // other kinds.
  Step(out, 7, "verify");
  out << "History after reopen vs. what was appended:\n";
  StatusOr<size_t> mismatches = Verify(*store, scripts, out, true);
  if (!mismatches.ok()) return CloseAfter(*store, mismatches.status());
  size_t service_failures = 0;
  out << kIndent << "The other records after reopen:\n";
  s = VerifyServices(*store, services, out, kIndent, &service_failures);
  if (!s.ok()) return CloseAfter(*store, s);
  const size_t failed = *mismatches + memory_mismatches + service_failures;
  if (failed == 0) {
    out << kIndent << "verdict: OK, all " << scripts.size()
        << " conversations and every other record survived the restart "
           "intact\n";
  } else {
    out << kIndent << "verdict: MISMATCH in " << *mismatches << " of "
        << scripts.size() << " conversations after reopen";
    if (memory_mismatches > 0) out << ", " << memory_mismatches << " in memory";
    if (service_failures > 0) {
      out << ", " << service_failures << " kind(s) of other record";
    }
    out << "\n";
  }

  // The last few turns of one conversation, as an agent would load its
  // prompt window.
  HistoryOptions window;
  window.last_n = kLastTurnsShown;
  StatusOr<std::vector<MessagePtr>> last =
      store->History(scripts.front().id, window);
  if (!last.ok()) return CloseAfter(*store, last.status());
  out << "\nLast " << kLastTurnsShown << " messages of " << scripts.front().id
      << " (History with last_n=" << kLastTurnsShown
      << "; the system prompt stays pinned in front):\n";
  PrintMessagesText(*last, out, "  ");

  out << "\nStats after reopen:\n";
  PrintStatsText(store->GetStats(), out, "  ");

  // 8. Close again.
  report = store->Close();
  store.reset();
  if (!report.ok()) return report.status();
  out << "\n";
  Step(out, 8, "close");
  PrintCloseReportText(*report, out);
  out << "\n";

  if (failed != 0) {
    return Status::Internal(std::to_string(failed) +
                            " conversation(s) or record kind(s) did not read "
                            "back as written");
  }
  const std::string& db = args.db;
  out << "\nLook inside with:\n"
      << "  convstore conversations --db " << db << "\n"
      << "  convstore history --db " << db << " --conversation "
      << scripts.front().id << " --last 10\n"
      << "  convstore stats --db " << db << " --json\n"
      << "  convstore aggregate --db " << db << " --group-by tenant\n"
      << "  convstore keys list --db " << db << "\n"
      << "  convstore cache stats --db " << db << "\n"
      << "  convstore audit verify --db " << db << "\n";
  return Status::OK();
}

}  // namespace convstore::tools
