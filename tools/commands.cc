// Copyright 2026 The convstore Authors.

#include "commands.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <utility>

#include "json_output.h"
#include "printable.h"
#include "table.h"

namespace convstore::tools {
namespace {

// Page size used when listing every conversation.
constexpr size_t kListPage = 1000;

json MessageToJson(const Message& m) {
  json j;
  j["seq"] = m.seq;
  j["role"] = RoleName(m.role);
  j["content"] = m.content;
  j["user_id"] = m.user_id;
  j["tokens_in"] = m.tokens_in;
  j["tokens_out"] = m.tokens_out;
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.tool_name.empty()) j["tool_name"] = m.tool_name;
  if (!m.metadata.empty()) {
    // Stored verbatim; embed it as JSON when it parses (it was validated as a
    // JSON object on Append), else as the raw text.
    json meta = json::parse(m.metadata, nullptr, /*allow_exceptions=*/false);
    if (meta.is_discarded()) {
      j["metadata"] = m.metadata;
    } else {
      j["metadata"] = std::move(meta);
    }
  }
  j["created_at_us"] = m.created_at_us;
  j["created_at"] = FormatTimestamp(m.created_at_us);
  return j;
}

json ConversationToJson(const ConversationInfo& c) {
  return json{{"conversation_id", c.conversation_id},
              {"user_id", c.user_id},
              {"message_count", c.message_count},
              {"tokens_in", c.tokens_in},
              {"tokens_out", c.tokens_out},
              {"first_at_us", c.first_at_us},
              {"last_at_us", c.last_at_us},
              {"first_at", FormatTimestamp(c.first_at_us)},
              {"last_at", FormatTimestamp(c.last_at_us)},
              {"last_seq", c.last_seq}};
}

json StatsToJson(const Stats& s) {
  return json{{"cached_conversations", s.cached_conversations},
              {"cached_messages", s.cached_messages},
              {"cached_bytes", s.cached_bytes},
              {"cache_hits", s.cache_hits},
              {"cache_misses", s.cache_misses},
              {"cache_evictions", s.cache_evictions},
              {"cache_pinned_drops", s.cache_pinned_drops},
              {"cache_eviction_walks", s.cache_eviction_walks},
              {"cache_bound_bytes", s.cache_bound_bytes},
              {"db_conversations", s.db_conversations},
              {"db_messages", s.db_messages},
              {"queue_items", s.queue_items},
              {"queue_bytes", s.queue_bytes},
              {"queue_items_high_water", s.queue_items_high_water},
              {"queue_bytes_high_water", s.queue_bytes_high_water},
              {"queue_rejections", s.queue_rejections},
              {"best_effort_shed", s.best_effort_shed},
              {"oldest_unflushed_age_us", s.oldest_unflushed_age_us},
              {"appended_lsn", s.appended_lsn},
              {"durable_lsn", s.durable_lsn},
              {"batches_committed", s.batches_committed},
              {"rows_committed", s.rows_committed},
              {"writes_failed", s.writes_failed},
              {"dead_letters", s.dead_letters},
              {"dead_letters_in_file", s.dead_letters_in_file},
              {"commit_errors", s.commit_errors},
              {"retries", s.retries},
              {"commit_latency_p50_us", s.commit_latency_p50_us},
              {"commit_latency_p99_us", s.commit_latency_p99_us},
              {"enqueue_to_durable_p50_us", s.enqueue_to_durable_p50_us},
              {"enqueue_to_durable_p99_us", s.enqueue_to_durable_p99_us},
              {"index_merges", s.index_merges},
              {"index_merge_total_us", s.index_merge_total_us},
              {"index_merge_max_us", s.index_merge_max_us},
              {"unmerged_messages", s.unmerged_messages},
              {"background_error", s.background_error}};
}

std::string FormatBytes(uint64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", bytes);
  } else if (bytes < (uint64_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  }
  return buf;
}

// "a / b" for a pair of counters.
template <typename A, typename B>
std::string Pair(A a, B b) {
  return std::to_string(a) + " / " + std::to_string(b);
}

// The text shown in the history table's content column: the tool-call tag,
// then the content.
std::string ContentCell(const Message& m) {
  std::string tag;
  if (m.role == Role::kTool) {
    tag = "[result";
    if (!m.tool_name.empty()) tag += " of " + m.tool_name;
    if (!m.tool_call_id.empty()) tag += " id=" + m.tool_call_id;
    tag += "] ";
  } else if (!m.tool_call_id.empty() || !m.tool_name.empty()) {
    tag = "[call";
    if (!m.tool_name.empty()) tag += " " + m.tool_name;
    if (!m.tool_call_id.empty()) tag += " id=" + m.tool_call_id;
    tag += "] ";
  }
  return Printable(tag + m.content);
}

}  // namespace

std::string FormatTimestamp(int64_t micros) {
  if (micros <= 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "-";
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s.%03d", date,
                static_cast<int>((micros % 1000000) / 1000));
  return buf;
}

std::string FormatDuration(int64_t micros) {
  char buf[32];
  if (micros < 1000) {
    std::snprintf(buf, sizeof(buf), "%" PRId64 " us", micros);
  } else if (micros < 1000000) {
    std::snprintf(buf, sizeof(buf), "%.1f ms", micros / 1000.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f s", micros / 1e6);
  }
  return buf;
}

StatusOr<std::unique_ptr<Store>> OpenExisting(const std::string& db) {
  Options options;
  options.path = db;
  options.create_if_missing = false;
  options.warm_conversations = 0;
  return Store::Open(options);
}

StatusOr<std::unique_ptr<Store>> OpenForReading(const std::string& db) {
  Options options;
  options.path = db;
  options.read_only = true;
  options.warm_conversations = 0;
  return Store::Open(options);
}

Status CloseAfter(Store& store, Status status) {
  StatusOr<CloseReport> closed = store.Close();
  if (!status.ok()) return status;
  return closed.ok() ? Status::OK() : closed.status();
}

void PrintStatsText(const Stats& s, std::ostream& out,
                    const std::string& indent) {
  auto us = [](int64_t v) { return FormatDuration(v); };
  const std::vector<
      std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>
      groups = {
          {"memory",
           {{"conversations", std::to_string(s.cached_conversations)},
            {"messages", std::to_string(s.cached_messages)},
            {"bytes", std::to_string(s.cached_bytes) + " (" +
                          FormatBytes(s.cached_bytes) + ")"},
            {"bound", std::to_string(s.cache_bound_bytes) + " (" +
                          FormatBytes(s.cache_bound_bytes) + ")"},
            {"hits / misses", Pair(s.cache_hits, s.cache_misses)},
            {"evictions / pinned drops",
             Pair(s.cache_evictions, s.cache_pinned_drops)},
            {"eviction walks", std::to_string(s.cache_eviction_walks)}}},
          {"database",
           {{"conversations", std::to_string(s.db_conversations)},
            {"messages", std::to_string(s.db_messages)}}},
          {"write queue",
           {{"items / bytes", Pair(s.queue_items, s.queue_bytes)},
            {"high water items / bytes",
             Pair(s.queue_items_high_water, s.queue_bytes_high_water)},
            {"rejections", std::to_string(s.queue_rejections)},
            {"best-effort shed", std::to_string(s.best_effort_shed)},
            {"oldest unflushed write", s.oldest_unflushed_age_us > 0
                                           ? us(s.oldest_unflushed_age_us)
                                           : std::string("-")}}},
          {"writer",
           {{"appended / durable lsn", Pair(s.appended_lsn, s.durable_lsn)},
            {"batches committed", std::to_string(s.batches_committed)},
            {"rows committed", std::to_string(s.rows_committed)},
            {"writes failed", std::to_string(s.writes_failed)},
            {"dead letters (in file)",
             Pair(s.dead_letters, s.dead_letters_in_file)},
            {"commit errors / retries", Pair(s.commit_errors, s.retries)},
            {"commit latency p50 / p99",
             us(s.commit_latency_p50_us) + " / " + us(s.commit_latency_p99_us)},
            {"enqueue->durable p50 / p99", us(s.enqueue_to_durable_p50_us) +
                                               " / " +
                                               us(s.enqueue_to_durable_p99_us)},
            {"index merges (total / longest)",
             std::to_string(s.index_merges) + " (" +
                 us(s.index_merge_total_us) + " / " + us(s.index_merge_max_us) +
                 ")"},
            {"unmerged messages", std::to_string(s.unmerged_messages)},
            {"health", s.background_error.empty() ? std::string("OK")
                                                  : s.background_error}}}};
  size_t width = 0;
  for (const auto& g : groups) {
    for (const auto& row : g.second) width = std::max(width, row.first.size());
  }
  for (const auto& g : groups) {
    out << indent << g.first << "\n";
    for (const auto& row : g.second) {
      out << indent << "  ";
      Pad(out, row.first, width, false);
      out << "  " << row.second << "\n";
    }
  }
}

void PrintMessagesText(const std::vector<MessagePtr>& messages,
                       std::ostream& out, const std::string& indent) {
  std::vector<std::vector<std::string>> rows;
  int64_t prev_seq = 0;
  for (const MessagePtr& m : messages) {
    if (prev_seq != 0 && m->seq > prev_seq + 1) {
      rows.push_back({"...", "", "", "", "",
                      "(" + std::to_string(m->seq - prev_seq - 1) +
                          " messages not shown)"});
    }
    prev_seq = m->seq;
    rows.push_back({std::to_string(m->seq), FormatTimestamp(m->created_at_us),
                    RoleName(m->role), std::to_string(m->tokens_in),
                    std::to_string(m->tokens_out), ContentCell(*m)});
  }
  PrintTable({"SEQ", "TIME (UTC)", "ROLE", "IN", "OUT", "CONTENT"},
             {true, false, false, true, true, false}, rows, out, indent);
}

void PrintCloseReportText(const CloseReport& r, std::ostream& out) {
  out << "written " << r.written << ", remaining " << r.remaining << ", failed "
      << r.failed << ", last durable lsn " << r.last_durable_lsn;
}

Status RunStats(const StatsArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  const Stats stats = (*store)->GetStats();
  // Dead letters kept in the database, newest first (the payload is left out:
  // `sqlite3 <db> "SELECT * FROM dead_letters"` shows it).
  StatusOr<std::vector<DeadLetter>> dead = (*store)->DeadLetters(20);
  if (!dead.ok()) return CloseAfter(**store, dead.status());
  if (args.json) {
    json j = StatsToJson(stats);
    j["dead_letters_newest"] = json::array();
    for (const DeadLetter& d : *dead) {
      j["dead_letters_newest"].push_back(
          json{{"id", d.id},
               {"lsn", d.lsn},
               {"kind", d.kind},
               {"key", d.key},
               {"error", d.error},
               {"created_at_us", d.created_at_us}});
    }
    PrintJson(j, out);
  } else {
    out << "file " << args.db
        << " (memory and writer counters cover this process only; the read "
           "commands do not warm the cache)\n";
    PrintStatsText(stats, out);
    out << "dead letters in the database (newest " << dead->size() << ")\n";
    for (const DeadLetter& d : *dead) {
      out << "  #" << d.id << " lsn " << d.lsn << " " << Printable(d.kind)
          << " '" << Printable(d.key) << "' at "
          << FormatTimestamp(d.created_at_us) << ": " << Printable(d.error)
          << "\n";
    }
  }
  return CloseAfter(**store, Status::OK());
}

Status RunHistory(const HistoryArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  HistoryOptions options;
  options.last_n = args.last;
  StatusOr<std::vector<MessagePtr>> history =
      (*store)->History(args.conversation, options);
  if (!history.ok()) return CloseAfter(**store, history.status());
  if (history->empty()) {
    return CloseAfter(**store,
                      Status::NotFound("no conversation '" + args.conversation +
                                       "' in " + args.db));
  }
  if (args.json) {
    json messages = json::array();
    for (const MessagePtr& m : *history) messages.push_back(MessageToJson(*m));
    PrintJson(json{{"conversation_id", args.conversation},
                   {"messages", std::move(messages)}},
              out);
  } else {
    PrintMessagesText(*history, out);
  }
  return CloseAfter(**store, Status::OK());
}

Status RunPrune(const PruneArgs& args, std::ostream& out) {
  // Checked before the file is opened: without a rule the run would remove
  // nothing and say so as if it had looked.
  if (args.max_age_hours == 0 && args.max_messages == 0) {
    return Status::InvalidArgument(
        "give --max-age-hours or --max-messages (or both)");
  }
  StatusOr<std::unique_ptr<Store>> store = OpenExisting(args.db);
  if (!store.ok()) return store.status();
  MessageRetention r;
  r.max_age = std::chrono::hours(args.max_age_hours);
  r.max_messages_per_conversation = args.max_messages;
  r.keep_first_system = !args.drop_system;
  StatusOr<RetentionReport> report = (*store)->PruneMessages(r);
  if (!report.ok()) return CloseAfter(**store, report.status());
  if (args.json) {
    PrintJson(json{{"messages_removed", report->messages_removed},
                   {"conversations_touched", report->conversations_touched},
                   {"batches", report->batches}},
              out);
  } else {
    out << "removed " << report->messages_removed << " messages of "
        << report->conversations_touched << " conversations in "
        << report->batches << " batches\n";
  }
  return CloseAfter(**store, Status::OK());
}

Status RunConversations(const ConversationsArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  std::vector<ConversationInfo> all;
  ListOptions options;
  options.user_id = args.user;
  options.limit = args.limit > 0 ? args.limit : kListPage;
  options.cursor = args.cursor;  // a malformed one is InvalidArgument
  std::string next_cursor;
  while (true) {
    StatusOr<ConversationPage> page = (*store)->ListConversations(options);
    if (!page.ok()) return CloseAfter(**store, page.status());
    for (ConversationInfo& c : page->conversations) all.push_back(std::move(c));
    next_cursor = page->next_cursor;
    if (args.limit > 0 || next_cursor.empty()) break;
    options.cursor = next_cursor;
  }
  if (args.json) {
    json list = json::array();
    for (const ConversationInfo& c : all) list.push_back(ConversationToJson(c));
    json j{{"conversations", std::move(list)}};
    if (!next_cursor.empty()) j["next_cursor"] = next_cursor;
    PrintJson(j, out);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const ConversationInfo& c : all) {
      rows.push_back({Printable(c.conversation_id), Printable(c.user_id),
                      std::to_string(c.message_count),
                      std::to_string(c.tokens_in), std::to_string(c.tokens_out),
                      FormatTimestamp(c.first_at_us),
                      FormatTimestamp(c.last_at_us)});
    }
    PrintTable({"CONVERSATION", "USER", "MESSAGES", "TOKENS IN", "TOKENS OUT",
                "FIRST (UTC)", "LAST ACTIVITY (UTC)"},
               {false, false, true, true, true, false, false}, rows, out, "");
    out << all.size() << (all.size() == 1 ? " conversation" : " conversations");
    if (!args.user.empty()) out << " of user " << Printable(args.user);
    if (!next_cursor.empty()) {
      out << " (more exist: --cursor " << next_cursor << " for the next page)";
    }
    out << "\n";
  }
  return CloseAfter(**store, Status::OK());
}

}  // namespace convstore::tools
