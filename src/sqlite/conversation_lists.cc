// Copyright 2026 The convstore Authors.
//
// SqliteBackend, conversations by recent activity: ListConversations pages
// and ScanRecent's choice of what to warm. Both order by last_at_us, which
// the activity indexes hold as activity_at_us, refreshed at each merge
// (schema version 10) with the rest of the summary (version 11). Only
// conversations with a message above the merge watermark can have moved
// since; RecentWith adds their unmerged messages to what their rows say and
// places them by the result (docs/architecture.md, "Unmerged messages").

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "saturating.h"
#include "sqlite/backend_reader.h"
#include "sqlite/message_rows.h"
#include "sqlite/unmerged_summary.h"
#include "write_op.h"

namespace convstore::internal {
namespace {

// Descending (last_at_us, conversation_id): the listing order. Ids compare
// bytewise, as SQLite's BINARY collation does.
bool NewerFirst(const ConversationInfo& a, const ConversationInfo& b) {
  if (a.last_at_us != b.last_at_us) return a.last_at_us > b.last_at_us;
  return a.conversation_id > b.conversation_id;
}

// Above this many lagging conversations, a user's page first narrows them
// to that user's (one index scan over the user's conversations) rather
// than reading each by key as its turn comes.
constexpr size_t kMaxLaggingReadsBlind = 64;
// About how many index entries a covering scan reads in the time of one
// read by key (review of the listing walk, stop 16).
constexpr size_t kScanRowsPerRead = 16;

}  // namespace

Status SqliteBackend::ReadListed(
    Reader* r, const Stmt& st, int64_t wm,
    const absl::flat_hash_map<int64_t, UnmergedSummary>& lagging,
    ListedConversation* out) {
  out->key = st.Int(0);
  out->first_system_seq = st.Int(1);
  out->info = ReadInfo(st, 2);
  auto it = lagging.find(out->key);
  UnmergedSummary part;
  Status s =
      UnmergedPart(&r->unmerged, wm, out->key, st.Int(kSummarizedThroughColumn),
                   it == lagging.end() ? nullptr : &it->second, &part);
  part.AddTo(&out->info, &out->first_system_seq);
  return s;
}

Status SqliteBackend::RecentWith(Reader* r, const ListQuery& q,
                                 std::vector<ListedConversation>* out,
                                 int64_t* unmerged_count) {
  out->clear();
  // Conversations with unmerged messages: their rows' summaries lack them
  // (schema version 11), and their index position may lag. A lagging
  // conversation's last_at_us is the larger of its activity_at_us and its
  // unmerged messages' newest created_at_us, so it is at most
  // max(activity_at_us, that).
  std::vector<MessageOverlay::KeySummary> keys;
  int64_t wm = 0;
  Status s = UnmergedConversations(&r->unmerged, &wm, &keys);
  if (!s.ok()) return s;
  if (unmerged_count != nullptr) {
    *unmerged_count = 0;
    for (const auto& k : keys) *unmerged_count += k.summary.count;
  }
  // Each row read gets its unmerged part from here, whichever stream it
  // came from.
  absl::flat_hash_map<int64_t, UnmergedSummary> part_of;
  part_of.reserve(keys.size());
  for (const auto& k : keys) part_of.emplace(k.conv_key, k.summary);
  if (q.has_cursor) {
    // The summary is of this snapshot's unmerged rows, so the
    // conversation's last_at_us is at least the summary's: above the
    // cursor's, it is on an earlier page, no need to read it. (Deep in a
    // walk most lagging conversations are.)
    std::erase_if(keys, [&](const MessageOverlay::KeySummary& k) {
      return k.summary.last_at_us > q.cursor_last_at_us;
    });
  }
  if (!q.user_id.empty() && keys.size() > kMaxLaggingReadsBlind) {
    // Most would be another user's, each read by key to find that out:
    // keep only this user's, known from a covering scan of its index. The
    // scan costs the user's conversations, not the lagging ones: it stops
    // where reading every lagging conversation by key would have been
    // cheaper (a keyed read costs about as much as kScanRowsPerRead index
    // entries), and then they are read blind.
    absl::flat_hash_set<int64_t> mine;
    const size_t cap = keys.size() * kScanRowsPerRead;
    r->user_keys.BindText(1, q.user_id);
    r->user_keys.Bind(2, static_cast<int64_t>(cap));
    while (r->user_keys.Step(&s)) mine.insert(r->user_keys.Int(0));
    r->user_keys.Reset();
    if (!s.ok()) return s;
    if (mine.size() < cap) {
      std::erase_if(keys, [&](const MessageOverlay::KeySummary& k) {
        return !mine.contains(k.conv_key);
      });
    }
  }
  // A heap by the bound, newest on top: a page takes only its first few.
  struct Lagging {
    int64_t conv_key;
    int64_t bound;
  };
  std::vector<Lagging> lagging;
  lagging.reserve(keys.size());
  for (const auto& k : keys)
    lagging.push_back({k.conv_key, k.summary.last_at_us});
  auto lower_bound_first = [](const Lagging& a, const Lagging& b) {
    return a.bound < b.bound;
  };
  std::make_heap(lagging.begin(), lagging.end(), lower_bound_first);
  // Without a cursor the bound is (INT64_MAX, "\xff"), above every row: a
  // valid (UTF-8) id never holds the byte 0xFF, and SQLite compares TEXT
  // bytewise, as std::string does. With "" a conversation last active at
  // INT64_MAX (a valid created_at_us) was never listed.
  ConversationInfo bound;
  bound.last_at_us =
      q.has_cursor ? q.cursor_last_at_us : std::numeric_limits<int64_t>::max();
  bound.conversation_id = q.has_cursor ? q.cursor_id : std::string(1, '\xff');
  auto wanted = [&](const ConversationInfo& c) {
    return c.message_count > 0 &&
           (q.user_id.empty() || c.user_id == q.user_id) &&
           NewerFirst(bound, c);
  };
  // Two streams merged by the highest last_at_us each may still yield: the
  // activity index (rows ordered by activity_at_us, which is at most
  // last_at_us) and the lagging conversations by bound (each read by key
  // when its turn comes). A row read from either, its unmerged part added,
  // is exact; it is emitted once no unread conversation can be newer, i.e.
  // once its last_at_us is above both streams' next values (strictly: ties
  // order by id).
  Stmt& st = q.user_id.empty() ? r->list_all : r->list_user;
  if (q.user_id.empty()) {
    st.Bind(1, 0);
  } else {
    st.BindText(1, q.user_id);
  }
  st.Bind(2, bound.last_at_us);
  st.BindText(3, bound.conversation_id);
  st.Bind(4, -1);  // no LIMIT: stepped only as far as the page needs
  auto older = [](const ListedConversation& a, const ListedConversation& b) {
    return NewerFirst(b.info, a.info);
  };
  std::vector<ListedConversation> ready;  // a heap, newest on top
  absl::flat_hash_set<int64_t> seen;
  auto offer = [&](const Stmt& row) {
    if (!seen.insert(row.Int(0)).second) return;
    ListedConversation c;
    s = ReadListed(r, row, wm, part_of, &c);
    if (!s.ok() || !wanted(c.info)) return;
    ready.push_back(std::move(c));
    std::push_heap(ready.begin(), ready.end(), older);
  };
  bool index_row = st.Step(&s);
  while (s.ok() && out->size() < q.limit) {
    constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
    const int64_t a = index_row ? st.Int(kActivityColumn) : kNone;
    const int64_t u = lagging.empty() ? kNone : lagging.front().bound;
    const bool streams_done = !index_row && lagging.empty();
    if (!ready.empty() &&
        (streams_done || ready.front().info.last_at_us > std::max(a, u))) {
      std::pop_heap(ready.begin(), ready.end(), older);
      out->push_back(std::move(ready.back()));
      ready.pop_back();
      continue;
    }
    if (streams_done) break;
    if (index_row && (a >= u || lagging.empty())) {
      offer(st);
      if (s.ok()) index_row = st.Step(&s);
      continue;
    }
    std::pop_heap(lagging.begin(), lagging.end(), lower_bound_first);
    const int64_t key = lagging.back().conv_key;
    lagging.pop_back();
    if (seen.contains(key)) continue;
    r->by_key.Bind(1, key);
    if (r->by_key.Step(&s)) offer(r->by_key);
    r->by_key.Reset();
  }
  st.Reset();
  return s;
}

Status SqliteBackend::ListConversations(const ListQuery& query,
                                        std::vector<ConversationInfo>* out) {
  out->clear();
  ReaderLease r(this);
  Status s = r.Acquire();
  if (!s.ok()) return s;
  std::vector<ListedConversation> page;
  s = r->db->Exec("BEGIN");
  if (!s.ok()) return s;
  s = RecentWith(r.get(), query, &page);
  if (!r->db->Exec("COMMIT").ok()) (void)r->db->Exec("ROLLBACK");
  if (!s.ok()) return s;
  out->reserve(page.size());
  for (ListedConversation& c : page) out->push_back(std::move(c.info));
  return Status::OK();
}

Status SqliteBackend::ScanRecent(
    size_t max_conversations, size_t max_messages,
    const std::function<bool(StoredConversation&&)>& visit) {
  ReaderLease r(this);
  Status s = r.Acquire();
  if (!s.ok()) return s;
  struct Selected {
    int64_t key;
    int64_t first_system_seq;
    StoredConversation conv;
  };
  std::vector<Selected> selected;
  uint64_t wanted = 0;
  int64_t total = 0;
  {
    // One snapshot for the choice and the total it is weighed against.
    s = r->db->Exec("BEGIN");
    if (!s.ok()) return s;
    ListQuery q;
    q.limit = max_conversations;
    std::vector<ListedConversation> recent;
    int64_t unmerged = 0;
    s = RecentWith(r.get(), q, &recent, &unmerged);
    if (s.ok()) {
      // total() and the CAST cannot overflow, as sum() can on a damaged
      // row (saturating.h); SQLite's CAST clamps at the int64 limits.
      s = r->db->QueryInt(
          "SELECT CAST(total(max(message_count, 0)) AS INTEGER)"
          " FROM conversations",
          &total);
      total = SatAdd(total, unmerged);
    }
    if (!r->db->Exec("COMMIT").ok()) (void)r->db->Exec("ROLLBACK");
    if (!s.ok()) return s;
    for (ListedConversation& c : recent) {
      // Not warmed: a read through reports the damage (CheckSummary).
      if (!CheckSummary(c.info, c.first_system_seq).ok()) continue;
      Selected sel{c.key, c.first_system_seq, StoredConversation()};
      sel.conv.exists = true;
      sel.conv.info = std::move(c.info);
      const auto count = static_cast<uint64_t>(sel.conv.info.message_count);
      wanted +=
          max_messages == 0 ? count : std::min<uint64_t>(count, max_messages);
      selected.push_back(std::move(sel));
    }
  }
  // Few of the stored messages wanted: look each conversation up through
  // the index. Most of them: one sequential pass over `messages` (in
  // append order, so each conversation's rows come in seq order) beats a
  // random lookup per message.
  if (wanted * 4 < static_cast<uint64_t>(total)) {
    for (Selected& sel : selected) {
      StoredConversation conv;
      s = LoadWith(r.get(), sel.conv.info.conversation_id, 0, 0, max_messages,
                   &conv);
      if (!s.ok()) return s;
      if (!conv.exists) continue;
      if (!visit(std::move(conv))) break;
    }
    return Status::OK();
  }
  absl::flat_hash_map<int64_t, size_t> slot;
  for (size_t i = 0; i < selected.size(); ++i) slot[selected[i].key] = i;
  std::vector<std::deque<MessagePtr>> tails(selected.size());
  // Stop holding conversations (least recent first) once the tails pass
  // the cache budget by a margin: the cache could not take them anyway.
  const size_t budget = options_.cache_max_bytes + options_.cache_max_bytes / 4;
  size_t bytes = 0;
  size_t kept = selected.size();
  {
    Stmt st;
    s = r->db->Prepare(std::string("SELECT conv_key, ") + kMessageColumns +
                           " FROM messages ORDER BY id",
                       &st);
    if (!s.ok()) return s;
    while (st.Step(&s)) {
      auto it = slot.find(st.Int(0));
      if (it == slot.end() || it->second >= kept) continue;
      const size_t i = it->second;
      MessagePtr m = ReadMessageAt(st, 1);
      Selected& sel = selected[i];
      if (m->role == Role::kSystem && m->seq == sel.first_system_seq) {
        sel.conv.first_system = m;
      }
      bytes += MessageBytes(*m);
      tails[i].push_back(std::move(m));
      if (max_messages > 0 && tails[i].size() > max_messages) {
        bytes -= MessageBytes(*tails[i].front());
        tails[i].pop_front();
      }
      while (bytes > budget && kept > 1) {
        --kept;
        for (const MessagePtr& d : tails[kept]) bytes -= MessageBytes(*d);
        tails[kept].clear();
      }
    }
    if (!s.ok()) return s;
  }
  for (size_t i = 0; i < kept; ++i) {
    StoredConversation& conv = selected[i].conv;
    conv.messages.assign(std::make_move_iterator(tails[i].begin()),
                         std::make_move_iterator(tails[i].end()));
    tails[i].clear();
    if (!visit(std::move(conv))) break;
  }
  return Status::OK();
}

}  // namespace convstore::internal
