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

#include "analytics/turn_fields.h"
#include "convstore/analytics_types.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

// Selects which TurnFields() entries a column list holds; nullptr: all.
using TurnFieldFilter = bool (*)(const TurnField&);

// "<p>interrupted, <p><field>, ..." for every TurnFields() entry that
// `keep` accepts, with `prefix` (e.g. "t.") before each column name.
std::string TurnNumberColumns(std::string_view prefix,
                              TurnFieldFilter keep = nullptr);

// Reads TurnNumberColumns(prefix, keep) from `st`, starting at column `c`,
// into *t, overwriting each of those fields (NULL: empty) and leaving the
// fields `keep` rejects untouched; returns the next column.
int ReadTurnNumbers(const Stmt& st, int c, TurnMetrics* t,
                    TurnFieldFilter keep = nullptr);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_TURN_COLUMNS_H_
