// Copyright 2026 The convstore Authors.
//
// engines_ops_fuzzer.cc: Append and PruneMessages, checked against a model
// of the stored messages of three conversations.

#ifndef CONVSTORE_FUZZ_ENGINES_FUZZ_MESSAGES_H_
#define CONVSTORE_FUZZ_ENGINES_FUZZ_MESSAGES_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convstore/convstore.h"
#include "engines_fuzz_input.h"
#include "fuzz_util.h"

namespace convstore::fuzz {

struct Msg {
  int64_t seq = 0;
  Role role = Role::kUser;
  bool old = false;
  std::string content;
};
struct Conversation {
  std::vector<Msg> stored;
  int64_t next_seq = 1;
  // The first system message ever appended: its seq while stored, else 0.
  int64_t first_system = 0;
  bool had_system = false;
  // It was removed: the store may pin another system message now (the
  // next one to be merged into its index), which the model leaves open.
  bool lost_system = false;
};

class MessageOps {
 public:
  using hours = std::chrono::hours;

  explicit MessageOps(FuzzedDataProvider& in) : in_(in) {}

  void set_store(Store* store) { store_ = store; }

  // After a reopen: every conversation holds what it held.
  void CheckAll() {
    for (const auto& [id, c] : convs_) CheckConversation(id);
  }

  void Append() {
    const std::string id = in_.PickValueInArray(kConvs);
    Message m;
    m.role = in_.ConsumeBool() ? Role::kSystem : Role::kUser;
    Conversation& c = convs_[id];
    m.content = "m" + std::to_string(c.next_seq);
    const bool old = in_.ConsumeBool();
    m.created_at_us = old ? kOld : 0;
    StatusOr<AppendResult> r = store_->Append(id, m);
    Check(r.ok(), "Append: " + r.status().ToString());
    Check(r->seq == c.next_seq, "Append seq");
    if (m.role == Role::kSystem && !c.had_system) {
      c.first_system = c.next_seq;
      c.had_system = true;
    }
    c.stored.push_back({c.next_seq, m.role, old, m.content});
    ++c.next_seq;
  }

  void CheckConversation(const std::string& id) {
    const Conversation& c = convs_[id];
    for (bool from_storage : {false, true}) {
      HistoryOptions h;
      h.from_storage = from_storage;
      StatusOr<std::vector<MessagePtr>> got = store_->History(id, h);
      Check(got.ok(), "History: " + got.status().ToString());
      bool same = got->size() == c.stored.size();
      for (size_t i = 0; same && i < c.stored.size(); ++i) {
        const Message& m = *(*got)[i];
        same = m.seq == c.stored[i].seq && m.role == c.stored[i].role &&
               m.content == c.stored[i].content;
      }
      Check(same, "History of " + id + (from_storage ? " (storage)" : "") +
                      " has " + std::to_string(got->size()) +
                      " messages, model " + std::to_string(c.stored.size()));
    }
  }

  void PruneMessages() {
    MessageRetention r;
    static const int64_t kAges[] = {0, 1, 876'000, kMax64, -1, kMin64};
    r.max_age = hours(in_.PickValueInArray(kAges));
    static const int64_t kCounts[] = {0, 1, 2, 5, kMax64, -1, kMin64};
    r.max_messages_per_conversation = in_.PickValueInArray(kCounts);
    r.keep_first_system = in_.ConsumeBool();
    static const size_t kBatch[] = {
        1, 2, 2000, 100000, 0, 100001, std::numeric_limits<size_t>::max()};
    r.batch_rows = in_.PickValueInArray(kBatch);
    const Valid v =
        If(r.max_age.count() >= 0 && r.max_messages_per_conversation >= 0 &&
           r.batch_rows >= 1 && r.batch_rows <= 100000);
    StatusOr<RetentionReport> rep = store_->PruneMessages(r);
    Expect(rep.status(), v, "PruneMessages");
    if (!rep.ok()) return;
    // Old messages (2023) are past an age of 1 hour and within 876,000
    // hours (100 years); new ones within both.
    const bool age_rule = r.max_age.count() == 1;
    const int64_t keep = r.max_messages_per_conversation;
    int64_t removed = 0;
    for (auto& [id, c] : convs_) {
      HistoryOptions h;
      h.from_storage = true;
      StatusOr<std::vector<MessagePtr>> got = store_->History(id, h);
      Check(got.ok(), "History: " + got.status().ToString());
      std::vector<Msg> kept;
      size_t j = 0;
      const int64_t n = static_cast<int64_t>(c.stored.size());
      for (int64_t i = 0; i < n; ++i) {
        const Msg& m = c.stored[i];
        const bool stays = j < got->size() && (*got)[j]->seq == m.seq;
        if (stays) {
          Check((*got)[j]->content == m.content, "PruneMessages changed " + id);
          ++j;
          kept.push_back(m);
        }
        const bool pinned = r.keep_first_system && m.seq == c.first_system;
        const bool maybe_pinned =
            r.keep_first_system && c.lost_system && m.role == Role::kSystem;
        const bool selected = (age_rule && m.old) || (keep > 0 && n - i > keep);
        const std::string what = "PruneMessages (age " +
                                 std::to_string(r.max_age.count()) +
                                 "h, keep " + std::to_string(keep) + ") on " +
                                 id + " seq " + std::to_string(m.seq);
        if (pinned || !selected) {
          Check(stays, what + " removed a message its rule keeps");
        } else if (!maybe_pinned) {
          Check(!stays, what + " kept a message its rule removes");
        }
        if (!stays && m.seq == c.first_system) {
          c.first_system = 0;
          c.lost_system = true;
        }
      }
      Check(j == got->size(),
            "PruneMessages: History of " + id + " shows messages not appended");
      removed += n - static_cast<int64_t>(kept.size());
      c.stored = std::move(kept);
    }
    Check(rep->messages_removed == removed,
          "PruneMessages removed " + std::to_string(rep->messages_removed) +
              ", model " + std::to_string(removed));
    for (const auto& [id, c] : convs_) CheckConversation(id);
  }

 private:
  FuzzedDataProvider& in_;
  Store* store_ = nullptr;
  std::map<std::string, Conversation> convs_;
};

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_ENGINES_FUZZ_MESSAGES_H_
