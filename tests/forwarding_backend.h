// Copyright 2026 The convstore Authors.
//
// ForwardingBackend: a StorageBackend that hands every call to another one.
// Tests derive from it to fail, slow down or count one kind of call of the
// real SQLite backend and leave the rest alone.

#ifndef CONVSTORE_TESTS_FORWARDING_BACKEND_H_
#define CONVSTORE_TESTS_FORWARDING_BACKEND_H_

#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "storage_backend.h"

namespace convstore::internal {

class ForwardingBackend : public StorageBackend {
 public:
  explicit ForwardingBackend(std::unique_ptr<StorageBackend> inner)
      : inner_(std::move(inner)) {}

  void SetLogger(std::shared_ptr<spdlog::logger> log) override {
    inner_->SetLogger(std::move(log));
  }
  Status Apply(std::span<const WriteOp> batch) override {
    return inner_->Apply(batch);
  }
  Status WriteDeadLetter(const DeadLetter& d, int64_t message_seq) override {
    return inner_->WriteDeadLetter(d, message_seq);
  }
  Status Maintain() override { return inner_->Maintain(); }
  Status Checkpoint(bool truncate) override {
    return inner_->Checkpoint(truncate);
  }
  uint64_t LastCommittedLsn() override { return inner_->LastCommittedLsn(); }
  StatusOr<BackendCloseReport> Close() override { return inner_->Close(); }
  Status LoadConversation(std::string_view id, size_t max_messages,
                          StoredConversation* out) override {
    return inner_->LoadConversation(id, max_messages, out);
  }
  Status LoadMessages(std::string_view id, int64_t after_seq,
                      int64_t before_seq, size_t max_newest,
                      std::vector<MessagePtr>* out) override {
    return inner_->LoadMessages(id, after_seq, before_seq, max_newest, out);
  }
  Status ListConversations(const ListQuery& q,
                           std::vector<ConversationInfo>* out) override {
    return inner_->ListConversations(q, out);
  }
  Status ScanRecent(
      size_t max_conversations, size_t max_messages,
      const std::function<bool(StoredConversation&&)>& visit) override {
    return inner_->ScanRecent(max_conversations, max_messages, visit);
  }
  Status Counts(StorageCounts* out) override { return inner_->Counts(out); }
  UpkeepCounters upkeep_counters() const override {
    return inner_->upkeep_counters();
  }
  Status SelectPurgeable(
      const PurgeQuery& query,
      const std::function<bool(PurgeCandidates&&)>& visit) override {
    return inner_->SelectPurgeable(query, visit);
  }
  Status TruncateWal(std::chrono::milliseconds timeout) override {
    return inner_->TruncateWal(timeout);
  }
  Status ReadDeadLetters(size_t limit, std::vector<DeadLetter>* out) override {
    return inner_->ReadDeadLetters(limit, out);
  }
  AnalyticsStorage* analytics() override { return inner_->analytics(); }
  CacheStorage* cache() override { return inner_->cache(); }
  AuditStorage* audit() override { return inner_->audit(); }
  KeyStorage* keys() override { return inner_->keys(); }

 private:
  std::unique_ptr<StorageBackend> inner_;
};

}  // namespace convstore::internal

#endif  // CONVSTORE_TESTS_FORWARDING_BACKEND_H_
