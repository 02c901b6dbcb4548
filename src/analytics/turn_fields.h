// Copyright 2026 The convstore Authors.
//
// The numeric fields of TurnMetrics, by name: one table drives the SQL
// columns, validation, the aggregate percentiles and the series query, so a
// new field is added in one place.
//
// Thread safety: constant data.

#ifndef CONVSTORE_SRC_ANALYTICS_TURN_FIELDS_H_
#define CONVSTORE_SRC_ANALYTICS_TURN_FIELDS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "convstore/analytics_types.h"

namespace convstore::internal {

struct TurnField {
  const char* name;  // also the SQL column
  // A latency in ms: must be >= 0; gets percentiles in Aggregate.
  bool latency;
  std::optional<double> TurnMetrics::*real;      // null for integer fields
  std::optional<int64_t> TurnMetrics::*integer;  // null for real fields
};

struct TurnTextField {
  const char* name;
  std::string TurnMetrics::*member;
};

std::span<const TurnField> TurnFields();
std::span<const TurnTextField> TurnTextFields();
// The field named `name`, or null.
const TurnField* FindTurnField(std::string_view name);
// The field's value as a double, if present.
std::optional<double> TurnFieldValue(const TurnField& f, const TurnMetrics& t);

// Exact percentile of sorted `v` (non-empty), linear between the nearest
// ranks: rank p*(n-1).
double Percentile(std::span<const double> sorted, double p);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_ANALYTICS_TURN_FIELDS_H_
