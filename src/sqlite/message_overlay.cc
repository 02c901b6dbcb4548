// Copyright 2026 The convstore Authors.

#include "sqlite/message_overlay.h"

#include <algorithm>

namespace convstore::internal {

void MessageOverlay::Reset(int64_t base, int64_t top,
                           std::span<const OverlayRow> rows) {
  MutexLock lock(&mu_);
  by_conv_.clear();
  size_ = 0;
  base_ = base;
  top_ = std::max(base, top);
  for (const OverlayRow& r : rows) {
    by_conv_[r.conv_key].push_back(r.entry());
    ++size_;
  }
}

void MessageOverlay::Add(std::span<const OverlayRow> rows, int64_t top) {
  // A few hundred rows per hold of the lock, so a reader copying one
  // conversation's entries never waits for a whole batch. Rows added before
  // top_ moves are above it, where readers do not take entries from the
  // overlay yet (they scan that id range), so a part-added batch is fine.
  constexpr size_t kRowsPerLock = 256;
  for (size_t i = 0; i < rows.size(); i += kRowsPerLock) {
    MutexLock lock(&mu_);
    const size_t end = std::min(rows.size(), i + kRowsPerLock);
    for (size_t j = i; j < end; ++j) {
      const OverlayRow& r = rows[j];
      if (r.id <= top_) continue;  // already held
      by_conv_[r.conv_key].push_back(r.entry());
      ++size_;
    }
  }
  MutexLock lock(&mu_);
  top_ = std::max(top_, top);
}

void MessageOverlay::DropThrough(int64_t through) {
  absl::flat_hash_map<int64_t, std::vector<OverlayEntry>> dropped;
  MutexLock lock(&mu_);
  if (through <= base_) return;
  if (through >= top_) {
    // Everything goes (the usual merge): swap, and free the entries after
    // the lock is released (`dropped` is destroyed after `lock`).
    dropped.swap(by_conv_);
    size_ = 0;
    base_ = through;
    top_ = through;
    return;
  }
  for (auto it = by_conv_.begin(); it != by_conv_.end();) {
    std::vector<OverlayEntry>& v = it->second;
    auto keep = std::find_if(v.begin(), v.end(), [&](const OverlayEntry& e) {
      return e.id > through;
    });
    size_ -= static_cast<size_t>(keep - v.begin());
    v.erase(v.begin(), keep);
    if (v.empty()) {
      by_conv_.erase(it++);
    } else {
      ++it;
    }
  }
  base_ = through;
  top_ = std::max(top_, through);
}

MessageOverlay::View MessageOverlay::Get(int64_t conv_key, int64_t after_seq,
                                         int64_t before_seq) const {
  MutexLock lock(&mu_);
  View v;
  v.base = base_;
  v.top = top_;
  auto it = by_conv_.find(conv_key);
  if (it == by_conv_.end()) return v;
  for (const OverlayEntry& e : it->second) {
    if (e.seq > after_seq && e.seq < before_seq) v.entries.push_back(e);
  }
  return v;
}

std::vector<OverlayEntry> MessageOverlay::EntriesOf(int64_t conv_key) const {
  MutexLock lock(&mu_);
  auto it = by_conv_.find(conv_key);
  if (it == by_conv_.end()) return {};
  return it->second;
}

MessageOverlay::KeysView MessageOverlay::KeysWithEntriesIn(
    int64_t after_id, int64_t through_id) const {
  MutexLock lock(&mu_);
  KeysView v;
  v.base = base_;
  v.top = top_;
  // Entries above top_ belong to a batch Add has not published: the caller
  // scans those ids from the file (range 3 in Unmerged), so counting them
  // here would count them twice.
  through_id = std::min(through_id, top_);
  if (through_id <= after_id) return v;
  v.keys.reserve(by_conv_.size());
  for (const auto& [key, entries] : by_conv_) {
    // Ascending ids (invariant 3): the first id above after_id decides.
    auto it = std::upper_bound(
        entries.begin(), entries.end(), after_id,
        [](int64_t id, const OverlayEntry& e) { return id < e.id; });
    if (it == entries.end() || it->id > through_id) continue;
    KeySummary& k = v.keys.emplace_back();
    k.conv_key = key;
    for (; it != entries.end() && it->id <= through_id; ++it) {
      k.summary.Add(*it);
    }
  }
  return v;
}

void MessageOverlay::Grouped::Clear() {
  conv_keys.clear();
  starts.assign(1, 0);
  entries.clear();
}

void MessageOverlay::Grouped::Close(int64_t conv_key) {
  if (entries.size() == starts.back()) return;
  conv_keys.push_back(conv_key);
  starts.push_back(entries.size());
}

void MessageOverlay::EntriesIn(int64_t after_id, int64_t through_id,
                               const absl::flat_hash_set<int64_t>& skip,
                               Grouped* out) const {
  out->Clear();
  MutexLock lock(&mu_);
  out->base = base_;
  out->top = top_;
  if (through_id <= after_id) return;
  // Every key not skipped, sorted, then compacted in place to those with
  // entries in the range.
  std::vector<int64_t>& keys = out->conv_keys;
  keys.reserve(by_conv_.size());
  for (const auto& [key, entries] : by_conv_) {
    if (!skip.contains(key)) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  out->entries.reserve(size_);
  size_t kept = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::vector<OverlayEntry>& entries = by_conv_.find(keys[i])->second;
    // Ascending ids (invariant 3).
    auto it = std::upper_bound(
        entries.begin(), entries.end(), after_id,
        [](int64_t id, const OverlayEntry& e) { return id < e.id; });
    for (; it != entries.end() && it->id <= through_id; ++it) {
      out->entries.push_back(*it);
    }
    if (out->entries.size() == out->starts.back()) continue;  // none
    keys[kept++] = keys[i];
    out->starts.push_back(out->entries.size());
  }
  keys.resize(kept);
}

int64_t MessageOverlay::base() const {
  MutexLock lock(&mu_);
  return base_;
}

int64_t MessageOverlay::top() const {
  MutexLock lock(&mu_);
  return top_;
}

size_t MessageOverlay::size() const {
  MutexLock lock(&mu_);
  return size_;
}

size_t MessageOverlay::conversations() const {
  MutexLock lock(&mu_);
  return by_conv_.size();
}

}  // namespace convstore::internal
