// Copyright 2026 The convstore Authors.
//
// Helpers shared by the tests that drive a SqliteBackend directly: options,
// batches with consecutive LSNs, and checked wrappers of the read methods.

#ifndef CONVSTORE_TESTS_BACKEND_TESTUTIL_H_
#define CONVSTORE_TESTS_BACKEND_TESTUTIL_H_

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sqlite/sqlite_backend.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"
#include "write_op.h"

namespace convstore::internal::backend_test {

using test::TempDir;

inline Options BackendOptions(const TempDir& dir) {
  Options o;
  o.path = dir.File("backend.db");
  o.log_level = LogLevel::kOff;
  return o;
}

inline std::unique_ptr<SqliteBackend> OpenBackend(const Options& o) {
  std::unique_ptr<SqliteBackend> b;
  Status s = SqliteBackend::Open(o, &b);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(b != nullptr);
  return b;
}

// Merges only when Maintain is called, and then everything.
inline Options MergeOnDemand(const TempDir& dir) {
  Options o = BackendOptions(dir);
  o.index_merge_rows = 1;
  return o;
}

inline void RequireMaintain(StorageBackend* b) {
  Status s = b->Maintain();
  INFO(s.ToString());
  REQUIRE(s.ok());
}

inline Message Make(int64_t seq, Role role, std::string content,
                    int64_t created_at_us, std::string user_id = "") {
  Message m;
  m.seq = seq;
  m.role = role;
  m.content = std::move(content);
  m.created_at_us = created_at_us;
  m.user_id = std::move(user_id);
  return m;
}

// Builds batches with consecutive LSNs, as the writer hands them over.
class BatchBuilder {
 public:
  explicit BatchBuilder(uint64_t first_lsn = 1) : next_lsn_(first_lsn) {}

  BatchBuilder& Append(const std::string& conv, const Message& m) {
    return AppendShared(SharedId(conv), m);
  }
  // As Append, with an id the caller keeps: its copies share the writer's
  // memo of the conversation's key, as a cache entry's appends do.
  BatchBuilder& AppendShared(const SharedId& conv, const Message& m) {
    WriteOp op;
    op.lsn = next_lsn_++;
    op.bytes = MessageBytes(m);
    op.payload = AppendMessageOp{conv, std::make_shared<const Message>(m)};
    batch_.push_back(std::move(op));
    return *this;
  }
  BatchBuilder& Delete(const std::string& conv) {
    WriteOp op;
    op.lsn = next_lsn_++;
    op.bytes = 64;
    op.payload = DeleteConversationOp{conv};
    batch_.push_back(std::move(op));
    return *this;
  }
  // Applies the pending ops as one batch and starts a new one.
  Status Commit(StorageBackend* b) {
    Status s = b->Apply(batch_);
    batch_.clear();
    return s;
  }
  uint64_t last_lsn() const { return next_lsn_ - 1; }

 private:
  uint64_t next_lsn_;
  std::vector<WriteOp> batch_;
};

inline void RequireCommit(BatchBuilder* bb, StorageBackend* b) {
  Status s = bb->Commit(b);
  INFO(s.ToString());
  REQUIRE(s.ok());
}

inline void CheckSameMessage(const Message& got, const Message& want) {
  CHECK(got.seq == want.seq);
  CHECK(got.role == want.role);
  CHECK(got.content == want.content);
  CHECK(got.user_id == want.user_id);
  CHECK(got.tokens_in == want.tokens_in);
  CHECK(got.tokens_out == want.tokens_out);
  CHECK(got.tool_call_id == want.tool_call_id);
  CHECK(got.tool_name == want.tool_name);
  CHECK(got.metadata == want.metadata);
  CHECK(got.created_at_us == want.created_at_us);
}

inline std::vector<int64_t> Seqs(const std::vector<MessagePtr>& ms) {
  std::vector<int64_t> out;
  for (const MessagePtr& m : ms) out.push_back(m->seq);
  return out;
}

inline std::vector<std::string> Ids(
    const std::vector<ConversationInfo>& infos) {
  std::vector<std::string> out;
  for (const ConversationInfo& i : infos) out.push_back(i.conversation_id);
  return out;
}

inline StoredConversation Load(StorageBackend* b, const std::string& id,
                               size_t max_messages = 0) {
  StoredConversation c;
  Status s = b->LoadConversation(id, max_messages, &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

inline std::vector<MessagePtr> LoadRange(StorageBackend* b,
                                         const std::string& id, int64_t after,
                                         int64_t before,
                                         size_t max_newest = 0) {
  std::vector<MessagePtr> out;
  Status s = b->LoadMessages(id, after, before, max_newest, &out);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

inline std::vector<ConversationInfo> List(StorageBackend* b,
                                          const ListQuery& q) {
  std::vector<ConversationInfo> out;
  Status s = b->ListConversations(q, &out);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

inline StorageCounts Counts(StorageBackend* b) {
  StorageCounts c;
  Status s = b->Counts(&c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

// Runs a single-value query on a separate connection to the file.
inline int64_t RawInt(const std::string& path, const std::string& sql) {
  std::unique_ptr<Db> db;
  REQUIRE(Db::Open(path, false, &db).ok());
  int64_t v = -1;
  Status s = db->QueryInt(sql, &v);
  INFO(sql << ": " << s.ToString());
  REQUIRE(s.ok());
  return v;
}

// The retention write that removes message `seq` of `conversation`, with
// the row id and key read from the file at `path`.
inline WriteOp PurgeOp(const std::string& path, const std::string& conversation,
                       int64_t seq, uint64_t lsn) {
  const std::string key_sql =
      "(SELECT conv_key FROM conversations WHERE conversation_id = '" +
      conversation + "')";
  const int64_t key = RawInt(path, "SELECT " + key_sql);
  const int64_t id =
      RawInt(path, "SELECT id FROM messages WHERE conv_key = " + key_sql +
                       " AND seq = " + std::to_string(seq));
  WriteOp op;
  op.lsn = lsn;
  op.bytes = 64;
  op.payload = PurgeMessagesOp{{StoredMessageRef{id, key, seq}}};
  return op;
}

inline std::string IntegrityCheck(const std::string& path) {
  std::unique_ptr<Db> db;
  REQUIRE(Db::Open(path, false, &db).ok());
  Stmt st;
  REQUIRE(db->Prepare("PRAGMA integrity_check", &st).ok());
  std::string out;
  Status s;
  while (st.Step(&s)) out += st.Text(0);
  REQUIRE(s.ok());
  return out;
}

}  // namespace convstore::internal::backend_test

#endif  // CONVSTORE_TESTS_BACKEND_TESTUTIL_H_
