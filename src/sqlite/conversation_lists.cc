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

}  // namespace

Status SqliteBackend::RecentWith(Reader* r, const ListQuery& q,
                                 std::vector<ListedConversation>* out) {
  out->clear();
  absl::flat_hash_set<int64_t> moved;
  Status s = UnmergedConversations(&r->unmerged, &moved);
  if (!s.ok()) return s;
  ConversationInfo bound;
  bound.last_at_us =
      q.has_cursor ? q.cursor_last_at_us : std::numeric_limits<int64_t>::max();
  bound.conversation_id = q.has_cursor ? q.cursor_id : "";
  auto wanted = [&](const ConversationInfo& c) {
    return c.message_count > 0 &&
           (q.user_id.empty() || c.user_id == q.user_id) &&
           NewerFirst(bound, c);
  };
  // The conversations whose index position may lag, read by key.
  for (int64_t key : moved) {
    r->by_key.Bind(1, key);
    if (r->by_key.Step(&s)) {
      ListedConversation c{r->by_key.Int(0), r->by_key.Int(1),
                           ReadInfo(r->by_key, 2)};
      if (wanted(c.info)) out->push_back(std::move(c));
    }
    r->by_key.Reset();
    if (!s.ok()) return s;
  }
  // The rest from the index, where activity_at_us is their last_at_us. Up
  // to moved.size() of its rows are lagging ones and skipped, so it reads
  // that many more.
  Stmt& st = q.user_id.empty() ? r->list_all : r->list_user;
  if (q.user_id.empty()) {
    st.Bind(1, 0);
  } else {
    st.BindText(1, q.user_id);
  }
  st.Bind(2, bound.last_at_us);
  // Without a cursor the bound is (INT64_MAX, ""): every row is below it.
  st.BindText(3, bound.conversation_id);
  constexpr auto kMax =
      static_cast<size_t>(std::numeric_limits<int64_t>::max());
  const size_t limit = std::min(q.limit, kMax);
  st.Bind(4, static_cast<int64_t>(std::min(kMax - moved.size(), limit) +
                                  moved.size()));
  while (st.Step(&s)) {
    if (moved.contains(st.Int(0))) continue;
    out->push_back({st.Int(0), st.Int(1), ReadInfo(st, 2)});
  }
  st.Reset();
  if (!s.ok()) return s;
  std::sort(out->begin(), out->end(),
            [](const ListedConversation& a, const ListedConversation& b) {
              return NewerFirst(a.info, b.info);
            });
  if (out->size() > limit) out->resize(limit);
  return Status::OK();
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
