// Copyright 2026 The convstore Authors.
//
// SqliteBackend, conversations by recent activity: ListConversations pages
// and ScanRecent's choice of what to warm. Both order by last_at_us, which
// the activity indexes hold as activity_at_us, refreshed at each merge
// (schema version 10). Only conversations with a message above the merge
// watermark can have moved since; RecentWith reads those by key and places
// them by their current last_at_us (docs/architecture.md, "Unmerged
// messages").

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sqlite/backend_reader.h"
#include "sqlite/message_rows.h"
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

}  // namespace

Status SqliteBackend::RecentWith(Reader* r, const ListQuery& q,
                                 std::vector<ListedConversation>* out) {
  out->clear();
  // Conversations whose index position may lag, newest bound first. A
  // lagging conversation's last_at_us is the larger of its activity_at_us
  // and its unmerged messages' created_at_us, so it is at most
  // max(activity_at_us, bound).
  std::vector<MessageOverlay::KeyAt> lagging;
  Status s = UnmergedConversations(&r->unmerged, &lagging);
  if (!s.ok()) return s;
  if (!q.user_id.empty() && lagging.size() > kMaxLaggingReadsBlind) {
    // Most would be another user's, each read by key to find that out:
    // keep only this user's, known from a covering scan of its index.
    absl::flat_hash_set<int64_t> mine;
    r->user_keys.BindText(1, q.user_id);
    while (r->user_keys.Step(&s)) mine.insert(r->user_keys.Int(0));
    r->user_keys.Reset();
    if (!s.ok()) return s;
    std::erase_if(lagging, [&](const MessageOverlay::KeyAt& k) {
      return !mine.contains(k.conv_key);
    });
  }
  // A heap, newest bound on top: a page takes only its first few.
  auto lower_bound_first = [](const MessageOverlay::KeyAt& a,
                              const MessageOverlay::KeyAt& b) {
    return a.max_created_at_us < b.max_created_at_us;
  };
  std::make_heap(lagging.begin(), lagging.end(), lower_bound_first);
  ConversationInfo bound;
  bound.last_at_us =
      q.has_cursor ? q.cursor_last_at_us : std::numeric_limits<int64_t>::max();
  bound.conversation_id = q.has_cursor ? q.cursor_id : "";
  auto wanted = [&](const ConversationInfo& c) {
    return c.message_count > 0 &&
           (q.user_id.empty() || c.user_id == q.user_id) &&
           NewerFirst(bound, c);
  };
  // Two streams merged by the highest last_at_us each may still yield: the
  // activity index (exact rows, ordered by activity_at_us, which is at most
  // last_at_us) and the lagging conversations by bound (each read by key
  // when its turn comes). A row read from either is exact; it is emitted
  // once no unread conversation can be newer, i.e. once its last_at_us is
  // above both streams' next values (strictly: ties order by id).
  Stmt& st = q.user_id.empty() ? r->list_all : r->list_user;
  if (q.user_id.empty()) {
    st.Bind(1, 0);
  } else {
    st.BindText(1, q.user_id);
  }
  st.Bind(2, bound.last_at_us);
  // Without a cursor the bound is (INT64_MAX, ""): every row is below it.
  st.BindText(3, bound.conversation_id);
  st.Bind(4, -1);  // no LIMIT: stepped only as far as the page needs
  auto older = [](const ListedConversation& a, const ListedConversation& b) {
    return NewerFirst(b.info, a.info);
  };
  std::vector<ListedConversation> ready;  // a heap, newest on top
  absl::flat_hash_set<int64_t> seen;
  auto offer = [&](ListedConversation c) {
    if (!seen.insert(c.key).second || !wanted(c.info)) return;
    ready.push_back(std::move(c));
    std::push_heap(ready.begin(), ready.end(), older);
  };
  bool index_row = st.Step(&s);
  constexpr int kActivityColumn = 10;
  while (s.ok() && out->size() < q.limit) {
    constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
    const int64_t a = index_row ? st.Int(kActivityColumn) : kNone;
    const int64_t u =
        lagging.empty() ? kNone : lagging.front().max_created_at_us;
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
      offer({st.Int(0), st.Int(1), ReadInfo(st, 2)});
      index_row = st.Step(&s);
      continue;
    }
    std::pop_heap(lagging.begin(), lagging.end(), lower_bound_first);
    const int64_t key = lagging.back().conv_key;
    lagging.pop_back();
    if (seen.contains(key)) continue;
    r->by_key.Bind(1, key);
    if (r->by_key.Step(&s)) {
      offer({r->by_key.Int(0), r->by_key.Int(1), ReadInfo(r->by_key, 2)});
    }
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
    s = RecentWith(r.get(), q, &recent);
    if (s.ok()) {
      s = r->db->QueryInt(
          "SELECT coalesce(sum(message_count), 0) FROM conversations", &total);
    }
    if (!r->db->Exec("COMMIT").ok()) (void)r->db->Exec("ROLLBACK");
    if (!s.ok()) return s;
    for (ListedConversation& c : recent) {
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
