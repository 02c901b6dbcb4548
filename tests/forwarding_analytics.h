// Copyright 2026 The convstore Authors.
//
// ForwardingAnalytics: an AnalyticsStorage that hands every call to another
// one. Tests derive from it to count or fail one kind of read of the real
// SQLite analytics tables and leave the rest alone.

#ifndef CONVSTORE_TESTS_FORWARDING_ANALYTICS_H_
#define CONVSTORE_TESTS_FORWARDING_ANALYTICS_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analytics/analytics_storage.h"

namespace convstore::internal {

class ForwardingAnalytics : public AnalyticsStorage {
 public:
  explicit ForwardingAnalytics(AnalyticsStorage* inner) : inner_(inner) {}

  Status ListSessions(const SessionQuery& q,
                      std::vector<SessionSummary>* out) override {
    return inner_->ListSessions(q, out);
  }
  Status SessionCounts(std::string_view id, int64_t* turns, int64_t* errors,
                       std::vector<double>* e2e) override {
    return inner_->SessionCounts(id, turns, errors, e2e);
  }
  Status LoadSession(std::string_view id, SessionDetail* out,
                     bool* found) override {
    return inner_->LoadSession(id, out, found);
  }
  Status ScanSessions(int64_t from_us, int64_t to_us,
                      std::vector<SessionSummary>* out) override {
    return inner_->ScanSessions(from_us, to_us, out);
  }
  Status ScanTurns(int64_t from_us, int64_t to_us, bool with_keys,
                   const std::function<void(const TurnRow&)>& row) override {
    return inner_->ScanTurns(from_us, to_us, with_keys, row);
  }
  Status ScanRollups(
      int64_t from_us, int64_t to_us, bool with_keys,
      const std::function<Status(const RollupRow&)>& row) override {
    return inner_->ScanRollups(from_us, to_us, with_keys, row);
  }
  Status ScanErrors(int64_t from_us, int64_t to_us,
                    std::vector<ErrorRow>* out) override {
    return inner_->ScanErrors(from_us, to_us, out);
  }
  Status ScanSlots(int64_t from_us, int64_t to_us,
                   std::vector<SlotRow>* out) override {
    return inner_->ScanSlots(from_us, to_us, out);
  }
  Status ScanValues(std::string_view metric, bool turn_field,
                    std::string_view session_id, int64_t from_us, int64_t to_us,
                    std::vector<std::pair<int64_t, double>>* out) override {
    return inner_->ScanValues(metric, turn_field, session_id, from_us, to_us,
                              out);
  }
  Status MaxId(AnalyticsTable table, int64_t* out) override {
    return inner_->MaxId(table, out);
  }
  Status CountPurgeable(const AnalyticsPurge& p, int64_t at_most,
                        int64_t* out) override {
    return inner_->CountPurgeable(p, at_most, out);
  }
  Status Export(const AnalyticsPurge& p,
                const std::function<Status(std::string&&)>& line) override {
    return inner_->Export(p, line);
  }
  Status CountOrphans(ConsistencyReport* out) override {
    return inner_->CountOrphans(out);
  }
  Status TruncateWal() override { return inner_->TruncateWal(); }
  int64_t FileBytes() override { return inner_->FileBytes(); }

 private:
  AnalyticsStorage* inner_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_TESTS_FORWARDING_ANALYTICS_H_
