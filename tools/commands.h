// Copyright 2026 The convstore Authors.
//
// The read-only subcommands of the convstore tool (stats, history,
// conversations) and the text/JSON printers the demo shares with them.
//
// Every Run* function writes its result to `out` and returns a Status; it
// never throws. The read commands open the database with
// create_if_missing=false and warm_conversations=0, so a mistyped path is a
// NotFound error rather than a new empty file. Otherwise the open is the
// whole of Store::Open (migrations, the key-value cache's reload and
// expiry, the writer): the user guide tells users to run the commands on a
// file no other process has open.

#ifndef CONVSTORE_TOOLS_COMMANDS_H_
#define CONVSTORE_TOOLS_COMMANDS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "convstore/convstore.h"

namespace convstore::tools {

struct StatsArgs {
  std::string db;
  bool json = false;
};

struct HistoryArgs {
  std::string db;
  std::string conversation;
  size_t last = 0;  // 0: the whole conversation
  bool json = false;
};

struct ConversationsArgs {
  std::string db;
  std::string user;  // empty: every user
  size_t limit = 0;  // 0: all conversations (follows next_cursor)
  // The next_cursor a page with --limit printed: the page after it.
  std::string cursor;
  bool json = false;
};

struct PruneArgs {
  std::string db;
  int64_t max_age_hours = 0;  // 0: no age rule
  int64_t max_messages = 0;   // 0: no count rule
  bool drop_system = false;   // also remove the first system message
  bool json = false;
};

Status RunStats(const StatsArgs& args, std::ostream& out);
// Applies message retention (Store::PruneMessages) and prints the report.
Status RunPrune(const PruneArgs& args, std::ostream& out);
Status RunHistory(const HistoryArgs& args, std::ostream& out);
Status RunConversations(const ConversationsArgs& args, std::ostream& out);

// Opens an existing database for the read commands (see above): read-only
// (Options::read_only), so they may run beside the application that has it
// open, and never migrate or write it.
StatusOr<std::unique_ptr<Store>> OpenForReading(const std::string& db);
// Opens an existing database for a command that writes it (prune, and the
// demo's check of a previous demo file).
StatusOr<std::unique_ptr<Store>> OpenExisting(const std::string& db);

// Closes `store` and returns `status` if it is an error, else the Close
// outcome.
Status CloseAfter(Store& store, Status status);

// Text printers, aligned for a terminal. `indent` prefixes every line.
void PrintStatsText(const Stats& stats, std::ostream& out,
                    const std::string& indent = "");
void PrintMessagesText(const std::vector<MessagePtr>& messages,
                       std::ostream& out, const std::string& indent = "");
void PrintCloseReportText(const CloseReport& report, std::ostream& out);

// "2026-03-01 10:00:00.123" (UTC) for microseconds since the Unix epoch.
std::string FormatTimestamp(int64_t micros);
// "850 us", "12.3 ms", "1.20 s".
std::string FormatDuration(int64_t micros);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_COMMANDS_H_
