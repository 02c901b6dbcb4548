// Copyright 2026 The convstore Authors.

#include "sqlite/turn_columns.h"

#include <optional>

namespace convstore::internal {

std::string TurnNumberColumns(std::string_view prefix, TurnFieldFilter keep) {
  std::string cols = std::string(prefix) + "interrupted";
  for (const TurnField& f : TurnFields()) {
    if (keep != nullptr && !keep(f)) continue;
    cols += ", ";
    cols += prefix;
    cols += f.name;
  }
  return cols;
}

int ReadTurnNumbers(const Stmt& st, int c, TurnMetrics* t,
                    TurnFieldFilter keep) {
  t->interrupted.reset();
  if (!st.IsNull(c)) t->interrupted = st.Int(c) != 0;
  ++c;
  for (const TurnField& f : TurnFields()) {
    if (keep != nullptr && !keep(f)) continue;
    const bool null = st.IsNull(c);
    if (f.real != nullptr) {
      t->*f.real = null ? std::nullopt : std::optional<double>(st.Double(c));
    } else {
      t->*f.integer = null ? std::nullopt : std::optional<int64_t>(st.Int(c));
    }
    ++c;
  }
  return c;
}

}  // namespace convstore::internal
