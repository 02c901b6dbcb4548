// Copyright 2026 The convstore Authors.
//
// The convstore command-line tool: wires the subcommands to CLI11. Errors
// print the Status to stderr and exit 1; nothing is thrown out of main.

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "analytics_commands.h"
#include "audit_commands.h"
#include "cache_commands.h"
#include "commands.h"
#include "demo.h"
#include "erase_command.h"
#include "keys_commands.h"

int main(int argc, char** argv) {
  using convstore::Status;
  namespace tools = convstore::tools;
  // A count as people write it: decimal digits, no sign, no leading zero.
  // CLI11 converts in base 0, so "010" read as 8 and "0x3" as 3, and "-1"
  // became the largest size_t.
  const CLI::Validator kDecimal(
      [](std::string& v) -> std::string {
        const bool digits = !v.empty() && v.find_first_not_of("0123456789") ==
                                              std::string::npos;
        if (!digits || (v.size() > 1 && v[0] == '0')) {
          return "'" + v + "' is not a decimal count";
        }
        return std::string();
      },
      "DECIMAL");
  try {
    CLI::App app{
        "convstore: a conversation memory for AI agents (in-memory cache, "
        "write-behind SQLite)"};
    app.require_subcommand(1);

    tools::DemoArgs demo;
    CLI::App* demo_cmd = app.add_subcommand(
        "demo",
        "Simulate an agent workload, close, reopen and verify that history "
        "survived");
    demo_cmd
        ->add_option("--db", demo.db,
                     "Demo database; deleted first so each run starts clean")
        ->capture_default_str();
    demo_cmd
        ->add_option("--conversations", demo.conversations,
                     "Conversations to simulate")
        ->capture_default_str()
        ->check(kDecimal & CLI::Range(1, 100000));
    demo_cmd
        ->add_option("--turns", demo.turns,
                     "Messages appended to each conversation")
        ->capture_default_str()
        ->check(kDecimal & CLI::Range(1, 1000000));

    tools::StatsArgs stats;
    CLI::App* stats_cmd =
        app.add_subcommand("stats", "Print the store's counters");
    stats_cmd->add_option("--db", stats.db, "Database file")->required();
    stats_cmd->add_flag("--json", stats.json, "Print JSON");

    tools::HistoryArgs history;
    CLI::App* history_cmd = app.add_subcommand(
        "history", "Print a conversation's messages, oldest first");
    history_cmd->add_option("--db", history.db, "Database file")->required();
    history_cmd
        ->add_option("--conversation", history.conversation, "Conversation id")
        ->required();
    history_cmd
        ->add_option("--last", history.last,
                     "Only the newest N messages (the first system message "
                     "stays pinned in front); 0 for all")
        ->capture_default_str()
        ->check(kDecimal & CLI::Range(0, 1000000));
    history_cmd->add_flag("--json", history.json, "Print JSON");

    tools::ConversationsArgs list;
    CLI::App* list_cmd = app.add_subcommand(
        "conversations", "List conversations, most recently active first");
    list_cmd->add_option("--db", list.db, "Database file")->required();
    list_cmd->add_option("--user", list.user, "Only this user's conversations");
    list_cmd
        ->add_option("--limit", list.limit,
                     "At most N conversations (1..10000); default: all")
        ->check(kDecimal & CLI::Range(1, 10000));
    list_cmd->add_option("--cursor", list.cursor,
                         "Start after this page: the next_cursor a page with "
                         "--limit printed");
    list_cmd->add_flag("--json", list.json, "Print JSON");

    tools::PruneArgs prune;
    CLI::App* prune_cmd =
        app.add_subcommand("prune", "Remove old messages (message retention)");
    prune_cmd->add_option("--db", prune.db, "Database file")->required();
    prune_cmd
        ->add_option("--max-age-hours", prune.max_age_hours,
                     "Remove messages older than N hours; 0: no age limit")
        ->check(kDecimal & CLI::Range(0, 1000000000));
    prune_cmd
        ->add_option("--max-messages", prune.max_messages,
                     "Keep at most the newest N messages per conversation; "
                     "0: no limit")
        ->check(kDecimal & CLI::Range(0, 1000000000));
    prune_cmd->add_flag("--drop-system", prune.drop_system,
                        "Also remove each conversation's first system message");
    prune_cmd->add_flag("--json", prune.json, "Print JSON");

    tools::EraseArgs erase;
    CLI::App* erase_cmd = app.add_subcommand(
        "erase",
        "Delete conversations and analytics sessions, and leave no byte of "
        "them in the files (run it while no application has the file open)");
    erase_cmd->add_option("--db", erase.db, "Database file")->required();
    erase_cmd->add_option("--conversation", erase.conversations,
                          "A conversation id (repeatable)");
    erase_cmd->add_option("--session", erase.sessions,
                          "An analytics session id (repeatable)");
    int64_t erase_wal_timeout_ms = 30000;
    erase_cmd
        ->add_option("--wal-timeout-ms", erase_wal_timeout_ms,
                     "How long to wait for other connections to let the WAL "
                     "be truncated")
        ->capture_default_str()
        ->check(kDecimal & CLI::Range(0, 2147483647));
    erase_cmd->add_flag("--vacuum", erase.vacuum,
                        "Then rewrite the whole file (VACUUM), so that no "
                        "old copy of a moved row is left in free space");
    erase_cmd->add_flag("--json", erase.json, "Print JSON");

    tools::SessionsArgs sessions;
    CLI::App* sessions_cmd = app.add_subcommand(
        "sessions", "List analytics sessions, newest first, with summaries");
    sessions_cmd->add_option("--db", sessions.db, "Database file")->required();
    sessions_cmd->add_option("--tenant", sessions.tenant, "Only this tenant");
    sessions_cmd->add_option("--limit", sessions.limit, "At most N sessions")
        ->capture_default_str()
        ->check(kDecimal & CLI::Range(1, 100000));
    sessions_cmd->add_flag("--json", sessions.json, "Print JSON");

    tools::SessionArgs session;
    CLI::App* session_cmd = app.add_subcommand(
        "session", "One session in full: turns, errors, events, transcript");
    session_cmd->add_option("--db", session.db, "Database file")->required();
    session_cmd->add_option("id", session.session, "Session id")->required();
    session_cmd->add_flag("--json", session.json, "Print JSON");

    tools::AggregateArgs aggregate;
    CLI::App* aggregate_cmd = app.add_subcommand(
        "aggregate",
        "Session analytics over the last N hours: rates, latency "
        "percentiles, errors, tokens and cost");
    aggregate_cmd->add_option("--db", aggregate.db, "Database file")
        ->required();
    aggregate_cmd->add_option("--hours", aggregate.hours, "Last N hours")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    aggregate_cmd
        ->add_option("--group-by", aggregate.group_by,
                     "none, tenant, model, provider or final_state")
        ->capture_default_str();
    aggregate_cmd->add_flag(
        "--exact", aggregate.exact,
        "Exact percentiles from every raw turn (slow over long ranges); "
        "default: sketches within 1%");
    aggregate_cmd->add_flag("--json", aggregate.json, "Print JSON");

    tools::SeriesArgs series;
    CLI::App* series_cmd = app.add_subcommand(
        "series", "A metric in time buckets over the last N hours");
    series_cmd->add_option("--db", series.db, "Database file")->required();
    series_cmd
        ->add_option("--metric", series.metric,
                     "A turn field (e2e_ms, llm_ttft_ms, ...) or a metric name")
        ->required();
    series_cmd->add_option("--hours", series.hours, "Last N hours")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    series_cmd->add_option("--bucket", series.bucket, "Bucket: 30s, 5m, 1h, 1d")
        ->capture_default_str();
    series_cmd->add_option("--session", series.session, "Only this session");
    series_cmd->add_flag("--json", series.json, "Print JSON");

    tools::AuditVerifyArgs audit_verify;
    tools::AuditListArgs audit_list;
    CLI::App* audit_cmd =
        app.add_subcommand("audit", "The tamper-evident audit log");
    audit_cmd->require_subcommand(1);
    CLI::App* audit_verify_cmd = audit_cmd->add_subcommand(
        "verify", "Walk the hash chain; exit 1 if it is broken");
    audit_verify_cmd->add_option("--db", audit_verify.db, "Database file")
        ->required();
    audit_verify_cmd->add_flag("--json", audit_verify.json, "Print JSON");
    CLI::App* audit_list_cmd =
        audit_cmd->add_subcommand("list", "The newest audit records");
    audit_list_cmd->add_option("--db", audit_list.db, "Database file")
        ->required();
    audit_list_cmd->add_option("--actor", audit_list.actor, "Only this actor");
    audit_list_cmd->add_option("--action", audit_list.action,
                               "Only this action");
    audit_list_cmd->add_option("--limit", audit_list.limit, "At most N")
        ->capture_default_str()
        ->check(kDecimal & CLI::Range(1, 10000));
    audit_list_cmd->add_flag("--json", audit_list.json, "Print JSON");

    tools::KeysListArgs keys_list;
    CLI::App* keys_cmd = app.add_subcommand("keys", "API keys");
    keys_cmd->require_subcommand(1);
    CLI::App* keys_list_cmd = keys_cmd->add_subcommand(
        "list",
        "Every key, oldest first, with its state, usage and limits (never a "
        "secret)");
    keys_list_cmd->add_option("--db", keys_list.db, "Database file")
        ->required();
    keys_list_cmd->add_option("--owner", keys_list.owner,
                              "Only this owner's keys");
    keys_list_cmd->add_flag("--json", keys_list.json, "Print JSON");

    tools::CacheStatsArgs cache_stats;
    CLI::App* cache_cmd = app.add_subcommand("cache", "The TTL cache");
    cache_cmd->require_subcommand(1);
    CLI::App* cache_stats_cmd = cache_cmd->add_subcommand(
        "stats",
        "Live entries and bytes after a reload, and what the reload dropped");
    cache_stats_cmd->add_option("--db", cache_stats.db, "Database file")
        ->required();
    cache_stats_cmd->add_flag("--json", cache_stats.json, "Print JSON");

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // CLI11 prints the usage error (or the help, which exits 0); any
      // other outcome is an error, which exits 1 like every other.
      return app.exit(e) == 0 ? 0 : 1;
    }

    Status s;
    if (*demo_cmd) {
      s = tools::RunDemo(demo, std::cout);
    } else if (*stats_cmd) {
      s = tools::RunStats(stats, std::cout);
    } else if (*history_cmd) {
      s = tools::RunHistory(history, std::cout);
    } else if (*list_cmd) {
      s = tools::RunConversations(list, std::cout);
    } else if (*prune_cmd) {
      s = tools::RunPrune(prune, std::cout);
    } else if (*erase_cmd) {
      erase.wal_timeout = std::chrono::milliseconds(erase_wal_timeout_ms);
      s = tools::RunErase(erase, std::cout);
    } else if (*sessions_cmd) {
      s = tools::RunSessions(sessions, std::cout);
    } else if (*session_cmd) {
      s = tools::RunSession(session, std::cout);
    } else if (*aggregate_cmd) {
      s = tools::RunAggregate(aggregate, std::cout);
    } else if (*series_cmd) {
      s = tools::RunSeries(series, std::cout);
    } else if (*audit_verify_cmd) {
      s = tools::RunAuditVerify(audit_verify, std::cout);
    } else if (*audit_list_cmd) {
      s = tools::RunAuditList(audit_list, std::cout);
    } else if (*keys_list_cmd) {
      s = tools::RunKeysList(keys_list, std::cout);
    } else if (*cache_stats_cmd) {
      s = tools::RunCacheStats(cache_stats, std::cout);
    }
    std::cout.flush();
    if (!s.ok()) {
      std::cerr << "convstore: " << s.ToString() << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convstore: unexpected error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "convstore: unexpected error\n";
  }
  return 1;
}
