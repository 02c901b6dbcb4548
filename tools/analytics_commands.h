// Copyright 2026 The convstore Authors.
//
// The analytics subcommands of the convstore tool: sessions, session,
// aggregate, series. Each opens an existing database (OpenForReading), prints
// text or (--json) JSON to `out`, and returns a Status; nothing throws.

#ifndef CONVSTORE_TOOLS_ANALYTICS_COMMANDS_H_
#define CONVSTORE_TOOLS_ANALYTICS_COMMANDS_H_

#include <cstddef>
#include <ostream>
#include <string>

#include "convstore/convstore.h"

namespace convstore::tools {

struct SessionsArgs {
  std::string db;
  std::string tenant;  // empty: all
  size_t limit = 20;
  bool json = false;
};

struct SessionArgs {
  std::string db;
  std::string session;
  bool json = false;
};

struct AggregateArgs {
  std::string db;
  double hours = 24;
  std::string group_by = "none";  // none|tenant|model|provider|final_state
  bool exact = false;             // AggregateQuery::exact_percentiles
  bool json = false;
};

struct SeriesArgs {
  std::string db;
  std::string metric;
  double hours = 24;
  std::string bucket = "5m";  // <n>s, <n>m, <n>h or <n>d
  std::string session;        // empty: all sessions
  bool json = false;
};

Status RunSessions(const SessionsArgs& args, std::ostream& out);
Status RunSession(const SessionArgs& args, std::ostream& out);
Status RunAggregate(const AggregateArgs& args, std::ostream& out);
Status RunSeries(const SeriesArgs& args, std::ostream& out);

// "90s", "5m", "1h", "2d" -> microseconds; InvalidArgument otherwise.
StatusOr<int64_t> ParseBucket(const std::string& text);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_ANALYTICS_COMMANDS_H_
