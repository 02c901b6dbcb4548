// Copyright 2026 The convstore Authors.
//
// The numeric columns of analytics_turns as one SELECT list and one
// reader, shared by the turn reads (analytics_reads.cc) and the rollup
// rebuilds (analytics_rollups.cc) so the two cannot drift apart.
//
// Thread safety: stateless functions.

#ifndef CONVSTORE_SRC_SQLITE_TURN_COLUMNS_H_
#define CONVSTORE_SRC_SQLITE_TURN_COLUMNS_H_

#include <string>
#include <string_view>

#include "convstore/analytics_types.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

// "<p>interrupted, <p><field>, ..." for every TurnFields() entry, with
// `prefix` (e.g. "t.") before each column name.
std::string TurnNumberColumns(std::string_view prefix);

// Reads TurnNumberColumns() from `st`, starting at column `c`, into *t,
// overwriting each of those fields (NULL: empty); returns the next column.
int ReadTurnNumbers(const Stmt& st, int c, TurnMetrics* t);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_TURN_COLUMNS_H_
