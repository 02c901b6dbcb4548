// Copyright 2026 The convstore Authors.
//
// StoreImpl::PruneMessages: message retention (convstore/retention.h). The
// backend chooses the rows from committed data; each batch of them goes
// through the write path as one PurgeMessagesOp, committed (sync class)
// before the next is queued, and is then dropped from the cache.

#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "clock.h"
#include "store_impl.h"
#include "validation.h"

namespace convstore::internal {
namespace {

constexpr size_t kMaxBatchRows = 100'000;

// What one batch removes from one conversation (for the cache).
struct Touched {
  std::string conversation_id;
  std::vector<int64_t> seqs;  // removed (at least one)
};

}  // namespace

StatusOr<RetentionReport> StoreImpl::PruneMessages(
    const MessageRetention& retention) {
  // Counted for Close, so that its checkpoint does not meet the selection's
  // read transactions. Close waits for the run to stop: once it has begun,
  // the next batch's submit fails, so that is at most one batch.
  InflightGuard guard(this);
  if (guard.closed()) return Status::FailedPrecondition("store is closed");
  if (options_.read_only) return ReadOnlyRefusal();
  if (retention.max_age.count() < 0) {
    return Status::InvalidArgument("retention max_age must not be negative");
  }
  if (retention.max_messages_per_conversation < 0) {
    return Status::InvalidArgument(
        "retention max_messages_per_conversation must not be negative");
  }
  if (retention.batch_rows == 0 || retention.batch_rows > kMaxBatchRows) {
    return Status::InvalidArgument("retention batch_rows must be in 1..100000");
  }
  RetentionReport report;
  if (retention.max_age.count() == 0 &&
      retention.max_messages_per_conversation == 0) {
    return report;  // no rule: nothing to remove
  }
  // Only what is durable now is chosen; the scan reads committed data.
  Status s = Flush(std::chrono::seconds(30));
  if (!s.ok()) return s.WithPrefix("retention needs pending writes durable");

  PurgeQuery query;
  if (retention.max_age.count() > 0) {
    // An age older than every message keeps them all (the rule below
    // applies only to a positive cut-off).
    query.created_before_us = MicrosBefore(WallMicros(), retention.max_age);
  }
  query.keep_newest = retention.max_messages_per_conversation;
  query.keep_first_system = retention.keep_first_system;

  PurgeMessagesOp batch;
  std::vector<Touched> touched;
  // `prompt_too`: the pinned prompt may go, if its seq was removed.
  auto drop_from_cache = [&](bool prompt_too) {
    const uint64_t durable = writer_->durable_lsn();
    for (const Touched& t : touched) {
      ConversationCache::Shard& shard = cache_.ShardFor(t.conversation_id);
      MutexLock lock(&shard.mu);
      CachedConversation* c = shard.Peek(t.conversation_id);
      if (c == nullptr) continue;
      // The age rule removes by created_at, wherever a message sits: a
      // pinned prompt below the highest removed seq may have been kept.
      const bool system_removed =
          prompt_too && !retention.keep_first_system &&
          c->first_system != nullptr &&
          std::find(t.seqs.begin(), t.seqs.end(), c->first_system->seq) !=
              t.seqs.end();
      shard.DropThrough(c, *std::max_element(t.seqs.begin(), t.seqs.end()),
                        system_removed, durable);
    }
  };
  auto submit = [&]() -> Status {
    if (batch.rows.empty()) return Status::OK();
    const size_t bytes =
        sizeof(WriteOp) + batch.rows.size() * sizeof(StoredMessageRef);
    const int64_t rows = static_cast<int64_t>(batch.rows.size());
    // A batch the database refuses removed nothing: an error, not a count.
    Submitted done;
    StatusOr<uint64_t> lsn = SubmitAndWait(
        WritePayload(std::move(batch)), bytes, Durability::kSync,
        std::chrono::seconds(60), /*refusal_is_error=*/true, &done);
    batch = PurgeMessagesOp();
    if (lsn.ok()) {
      report.messages_removed += rows;
      ++report.batches;
    }
    // A queued batch the database did not refuse commits, if not yet (the
    // wait timed out, or the writer is degraded: it commits once the writer
    // recovers, or at Close). Its messages leave memory now either way, so
    // that memory does not go on showing them once the disk dropped them
    // (one read through before that commit would cache them again). Not yet
    // committed, it may still be refused: the pinned prompt stays then (the
    // messages read back through if they stay on disk; it would not).
    if (done.queued && !done.refused) drop_from_cache(lsn.ok());
    touched.clear();
    return lsn.status();
  };

  Status failed;
  absl::flat_hash_set<std::string> conversations;
  s = backend_->SelectPurgeable(query, [&](PurgeCandidates&& c) {
    conversations.insert(c.conversation_id);
    for (const StoredMessageRef& r : c.rows) {
      if (touched.empty() ||
          touched.back().conversation_id != c.conversation_id) {
        touched.push_back({c.conversation_id, {}});
      }
      touched.back().seqs.push_back(r.seq);
      batch.rows.push_back(r);
      if (batch.rows.size() >= retention.batch_rows) {
        failed = submit();
        if (!failed.ok()) return false;
      }
    }
    return true;
  });
  // Corruption: the backend skipped a damaged conversation and chose the
  // others' rows all the same; they are removed too.
  if (s.ok() || s.IsCorruption()) {
    Status rest = failed.ok() ? submit() : failed;
    if (!rest.ok()) s = rest;
  }
  report.conversations_touched = static_cast<int64_t>(conversations.size());
  // Every run that got this far is audited, a failed one too (it may have
  // removed some batches).
  nlohmann::json details{
      {"messages_removed", report.messages_removed},
      {"conversations_touched", report.conversations_touched},
      {"batches", report.batches},
      {"max_age_hours", retention.max_age.count()},
      {"max_messages_per_conversation",
       retention.max_messages_per_conversation}};
  if (!s.ok()) details["error"] = s.ToString();
  AuditSystem(
      "retention.messages", "", s.ok() ? "success" : "failure",
      details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      /*wait=*/true);
  if (!s.ok()) {
    log_->error("message retention stopped after {} messages: {}",
                report.messages_removed, s.ToString());
    return s;
  }
  log_->info(
      "message retention: removed {} messages of {} conversations in "
      "{} batches",
      report.messages_removed, report.conversations_touched, report.batches);
  return report;
}

}  // namespace convstore::internal
