// Copyright 2026 The convstore Authors.
//
// SqliteBackend, summaries folded at merge (schema version 11): a batch
// inserts its messages and leaves the conversations row alone; the merge
// (and a purge, before it removes rows) folds each conversation's unmerged
// messages into the row's summary columns. The writer keeps what the
// duplicate check needs, the highest stored seq of each conversation, in
// memory. docs/architecture.md, "Summaries folded at merge", has the
// design; readers add the unmerged part themselves (UnmergedPart).

#include <algorithm>
#include <string>

#include "sqlite/sqlite_backend.h"

namespace convstore::internal {

Status SqliteBackend::ReadRowState(int64_t key, bool* found, int64_t* last_seq,
                                   int64_t* through) {
  Status s;
  *found = false;
  row_state_.Bind(1, key);
  if (row_state_.Step(&s)) {
    *found = true;
    *last_seq = row_state_.Int(0);
    *through = row_state_.Int(1);
  }
  row_state_.Reset();
  return s;
}

Status SqliteBackend::LastSeq(int64_t key, int64_t* last_seq) {
  auto it = last_seq_.find(key);
  if (it != last_seq_.end()) {
    *last_seq = it->second;
    return Status::OK();
  }
  bool found = false;
  int64_t row_through = 0;
  Status s = ReadRowState(key, &found, last_seq, &row_through);
  if (!s.ok()) return s;
  if (!found) {
    return Status::Internal("conversation row " + std::to_string(key) +
                            " missing");
  }
  // The unmerged messages lie above every merged one; entries of purged
  // rows are at most the row's last_seq anyway (it never goes down).
  for (const OverlayEntry& e : overlay_.EntriesOf(key)) {
    *last_seq = std::max(*last_seq, e.seq);
  }
  if (last_seq_.size() >= kMaxCachedRows) last_seq_.clear();
  last_seq_.emplace(key, *last_seq);
  return Status::OK();
}

Status SqliteBackend::Fold(int64_t key, const UnmergedSummary& sum,
                           int64_t through, int64_t if_through_at_most,
                           bool* folded) {
  fold_.Bind(1, sum.count);
  fold_.Bind(2, sum.tokens_in);
  fold_.Bind(3, sum.tokens_out);
  fold_.Bind(4, sum.first_at_us);
  fold_.Bind(5, sum.last_at_us);
  fold_.Bind(6, sum.last_seq);
  fold_.Bind(7, sum.first_system_seq);
  fold_.Bind(8, through);
  fold_.Bind(9, key);
  fold_.Bind(10, if_through_at_most);
  Status s = fold_.Exec();
  *folded = s.ok() && sqlite3_changes(writer_->raw()) > 0;
  return s;
}

Status SqliteBackend::FoldAbove(int64_t key, int64_t through) {
  bool found = false;
  int64_t row_last_seq = 0;
  int64_t row_through = 0;
  Status s = ReadRowState(key, &found, &row_last_seq, &row_through);
  if (!s.ok() || !found || row_through >= through) return s;
  UnmergedSummary sum;
  for (const OverlayEntry& e : overlay_.EntriesOf(key)) {
    if (e.id > row_through && e.id <= through) sum.Add(e);
  }
  if (sum.count == 0) return Status::OK();
  bool folded = false;
  s = Fold(key, sum, through, row_through, &folded);
  if (s.ok() && !folded) {
    return Status::Internal("conversation row " + std::to_string(key) +
                            " changed while its summary was folded");
  }
  return s;
}

}  // namespace convstore::internal
