// Copyright 2026 The convstore Authors.
//
// ComputeWindow: which messages of a conversation a History call returns.
// A pure function over any random-access sequence of messages, so the same
// code serves the cache (a deque) and read-through (a vector), and unit
// tests can check it against hand-made conversations.
//
// Rules (also in docs/user-guide.md):
//  * limit: the first `limit` messages; last_n: the newest `last_n`, minus
//    any tool results at the front whose calling assistant message fell
//    outside (the window never starts with an orphaned tool result).
//  * token_budget: whole groups from the newest backwards while they fit. A
//    group is a run of role=tool messages together with the message directly
//    before them (normally the assistant message that made the calls); every
//    other message is a group of its own. Grouping goes by position and role,
//    not by tool_call_id.
//  * pin_system: when last_n or token_budget cut the start of the
//    conversation (after_seq == 0 only), the conversation's first system
//    message is put in front; its tokens are reserved from the budget first.
//
// Thread safety: pure; the caller guards the sequence it passes.

#ifndef CONVSTORE_SRC_HISTORY_WINDOW_H_
#define CONVSTORE_SRC_HISTORY_WINDOW_H_

#include <cstddef>
#include <cstdint>

#include "convstore/types.h"
#include "saturating.h"

namespace convstore::internal {

struct Window {
  size_t begin = 0;  // [begin, end) of the input sequence
  size_t end = 0;
  // Put the conversation's first system message in front.
  bool pin_system = false;
  // The window reached the oldest input message and would have taken older
  // ones had there been any: an input that is only a suffix of the
  // conversation cannot answer this request.
  bool wants_older = false;
};

// `n` messages, oldest first, already filtered to seq > options.after_seq;
// `at(i)` returns the i-th as `const Message&`. `first_system` is the
// conversation's first system message or null.
template <typename At>
Window ComputeWindow(size_t n, At at, const HistoryOptions& options,
                     const Message* first_system) {
  Window w;
  w.end = n;
  // True while the window runs to index 0 and would take older messages.
  bool open_start = true;
  if (options.limit > 0) {
    w.end = n < options.limit ? n : options.limit;
  } else if (options.last_n > 0 && n >= options.last_n) {
    w.begin = n - options.last_n;
    // Exactly last_n: the window runs to index 0 but takes nothing older.
    // Older data decides only whether a tool result there is an orphan
    // (its caller older) or starts the conversation (or the page after
    // after_seq) and is kept.
    open_start = n == options.last_n && at(0).role == Role::kTool;
  }
  const bool cuttable = options.after_seq == 0 && options.limit == 0 &&
                        (options.last_n > 0 || options.token_budget > 0);
  const bool pin = cuttable && options.pin_system && first_system != nullptr;

  if (options.token_budget > 0) {
    int64_t budget = options.token_budget;
    if (pin) budget -= first_system->tokens();
    int64_t used = 0;
    size_t start = w.end;
    while (start > w.begin) {
      // The group ending at start-1: trailing tool results plus the message
      // that called them.
      size_t g = start - 1;
      while (g > w.begin && at(g).role == Role::kTool) --g;
      if (at(g).role == Role::kTool && !(g == 0 && open_start)) {
        // The caller of these results lies before a cut window: orphans.
        open_start = false;
        break;
      }
      // (Tool results at the very start of the input form a group of their
      // own: either the conversation opens with them, or their caller is in
      // older data, which wants_older below asks for.)
      // Saturating: validated counts (at most 2^41 a message) still add up
      // past int64 over millions of messages. used <= max(budget, 0).
      // The pinned system message's tokens are reserved above already.
      int64_t tokens = 0;
      for (size_t i = g; i < start; ++i) {
        if (pin && at(i).seq == first_system->seq) continue;
        tokens = SatAdd(tokens, at(i).tokens());
      }
      if (tokens > budget - used) {
        open_start = false;
        break;
      }
      used += tokens;
      start = g;
    }
    w.begin = start;
  }
  if (!(open_start && w.begin == 0)) {
    while (w.begin < w.end && at(w.begin).role == Role::kTool) ++w.begin;
  }
  // A forward page (limit) is anchored at the oldest input message, so a
  // suffix of the conversation can never answer it.
  w.wants_older = (open_start && w.begin == 0) || options.limit > 0;
  w.pin_system =
      pin && (w.begin == w.end || at(w.begin).seq > first_system->seq);
  return w;
}

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_HISTORY_WINDOW_H_
