// Copyright 2026 The convstore Authors.
//
// The audit log (convstore/audit.h): Record and Query with each filter and
// paging, validation, the chain across restarts, Prune with its anchor
// (and tampering around it), concurrent recorders, rollback and dead
// letters, and the automatic records of deletes and retention runs.
// Tampering with the chain itself: audit_tamper_test.cc.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_chain.h"
#include "audit_testutil.h"
#include "backend_testutil.h"
#include "forwarding_backend.h"
#include "sqlite/sqlite_backend.h"
#include "store_impl.h"

namespace convstore::audit_test {
namespace {

using test::Msg;

TEST_CASE("record and query: fields, ids, hashes, newest first", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  AuditEvent e = Ev("user-7", "export.start", "conv-42", "success",
                    R"({"format":"jsonl"})");
  e.source_address = "10.0.0.7";
  REQUIRE(store->audit().Record(e).ok());
  RecordN(store.get(), 3);

  AuditPage page = QueryOrDie(store.get(), {});
  REQUIRE(Ids(page) == std::vector<int64_t>{4, 3, 2, 1});
  CHECK(page.next_before_id == 0);
  const AuditRecord& first = page.records.back();
  CHECK(first.event.actor == "user-7");
  CHECK(first.event.action == "export.start");
  CHECK(first.event.resource == "conv-42");
  CHECK(first.event.outcome == "success");
  CHECK(first.event.details_json == R"({"format":"jsonl"})");
  CHECK(first.event.source_address == "10.0.0.7");
  CHECK(first.prev_hash == std::string(64, '0'));
  CHECK(first.hash.size() == 64);
  CHECK(first.hash ==
        internal::HexOf(internal::AuditRecordHash(internal::GenesisHash(), 1,
                                                  first.ts_us, first.event)));
  // Each record links to the one before it; timestamps never go back.
  for (size_t i = 0; i + 1 < page.records.size(); ++i) {
    CHECK(page.records[i].prev_hash == page.records[i + 1].hash);
    CHECK(page.records[i].ts_us >= page.records[i + 1].ts_us);
  }
  AuditVerification v = VerifyOrDie(store.get());
  CHECK(v.ok);
  CHECK(v.records_checked == 4);
  CHECK(v.last_id == 4);
  CHECK(v.last_hash == page.records.front().hash);
  CHECK(v.anchor_id == 0);
}

TEST_CASE("a query written as in audit.h's example builds warning-free",
          "[audit]") {
  // audit.h shows `audit.Query({.actor = "user-7"})`. With the optional
  // filters left without a default member initializer, GCC's -Wextra
  // (-Wmissing-field-initializers) warned for each filter not named, so
  // the example failed a -Werror build; this test is such a build.
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  REQUIRE(store->audit().Record(Ev("user-7", "export.start")).ok());
  REQUIRE(store->audit().Record(Ev("user-8", "export.start")).ok());
  StatusOr<AuditPage> page = store->audit().Query({.actor = "user-7"});
  REQUIRE(page.ok());
  REQUIRE(page->records.size() == 1);
  CHECK(page->records[0].event.actor == "user-7");
  page = store->audit().Query({.action = "export.start", .limit = 1});
  REQUIRE(page.ok());
  CHECK(page->records.size() == 1);
  CHECK(page->next_before_id != 0);
}

TEST_CASE("query filters each field and pages newest first", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  AuditLog& log = store->audit();
  // id: actor/action/resource/outcome
  REQUIRE(log.Record(Ev("alice", "key.create", "k1")).ok());              // 1
  REQUIRE(log.Record(Ev("bob", "key.create", "k2")).ok());                // 2
  REQUIRE(log.Record(Ev("alice", "key.revoke", "k1")).ok());              // 3
  REQUIRE(log.Record(Ev("bob", "key.validate", "k2", "denied")).ok());    // 4
  REQUIRE(log.Record(Ev("alice", "key.validate", "k1", "denied")).ok());  // 5
  REQUIRE(log.Record(Ev("carol", "key.create", "k3")).ok());              // 6

  AuditQuery q;
  q.actor = "alice";
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{5, 3, 1});
  q = {};
  q.action = "key.create";
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{6, 2, 1});
  q = {};
  q.resource = "k2";
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{4, 2});
  q = {};
  q.outcome = "denied";
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{5, 4});
  q = {};
  q.actor = "alice";
  q.outcome = "denied";
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{5});
  q = {};
  q.actor = "nobody";
  CHECK(QueryOrDie(store.get(), q).records.empty());

  // Time range [from, to): bounds taken from the stored timestamps.
  AuditPage all = QueryOrDie(store.get(), {});
  REQUIRE(all.records.size() == 6);
  const int64_t ts2 = all.records[4].ts_us;  // id 2
  const int64_t ts5 = all.records[1].ts_us;  // id 5
  q = {};
  q.from_us = ts2;
  q.to_us = ts5;
  std::vector<int64_t> expected;
  for (const AuditRecord& r : all.records) {
    if (r.ts_us >= ts2 && r.ts_us < ts5) expected.push_back(r.id);
  }
  CHECK(Ids(QueryOrDie(store.get(), q)) == expected);
  CHECK(std::find(expected.begin(), expected.end(), 2) != expected.end());
  CHECK(std::find(expected.begin(), expected.end(), 5) == expected.end());
  q = {};
  q.from_us = all.records[0].ts_us + 1;
  CHECK(QueryOrDie(store.get(), q).records.empty());

  // Paging: 6 records, pages of 4 then 2.
  q = {};
  q.limit = 4;
  AuditPage p1 = QueryOrDie(store.get(), q);
  CHECK(Ids(p1) == std::vector<int64_t>{6, 5, 4, 3});
  CHECK(p1.next_before_id == 3);
  q.before_id = p1.next_before_id;
  AuditPage p2 = QueryOrDie(store.get(), q);
  CHECK(Ids(p2) == std::vector<int64_t>{2, 1});
  CHECK(p2.next_before_id == 0);
  // An exact fit has no next page.
  q = {};
  q.limit = 6;
  CHECK(QueryOrDie(store.get(), q).next_before_id == 0);
  // Paging combines with a filter.
  q = {};
  q.actor = "alice";
  q.limit = 2;
  AuditPage a1 = QueryOrDie(store.get(), q);
  CHECK(Ids(a1) == std::vector<int64_t>{5, 3});
  q.before_id = a1.next_before_id;
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{1});

  q = {};
  q.limit = 0;
  CHECK(log.Query(q).status().IsInvalidArgument());
  q.limit = 10001;
  CHECK(log.Query(q).status().IsInvalidArgument());
  q.limit = 10000;
  CHECK(log.Query(q).ok());
  q = {};
  q.from_us = -1;
  CHECK(log.Query(q).status().IsInvalidArgument());
}

TEST_CASE("invalid events are refused and write nothing", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  AuditLog& log = store->audit();
  std::vector<AuditEvent> bad;
  bad.push_back(Ev("", "a"));                             // no actor
  bad.push_back(Ev("u", ""));                             // no action
  bad.push_back(Ev("u", "a", "", ""));                    // no outcome
  bad.push_back(Ev("u", "a", "", "success", "[1,2]"));    // not an object
  bad.push_back(Ev("u", "a", "", "success", "{\"x\":"));  // not JSON
  bad.push_back(Ev("u", "a", "", "success", "42"));       // not an object
  bad.push_back(Ev("u\xff", "a"));                        // bad UTF-8
  bad.push_back(Ev("u", "a", "r\xc3"));                   // truncated UTF-8
  bad.push_back(Ev("u", "a", "", "success", "{\"k\":\"\xed\xa0\x80\"}"));
  bad.push_back(Ev(std::string(257, 'u'), "a"));          // actor too long
  bad.push_back(Ev("u", std::string(257, 'a')));          // action too long
  bad.push_back(Ev("u", "a", std::string(1025, 'r')));    // resource
  bad.push_back(Ev("u", "a", "", std::string(65, 'o')));  // outcome
  bad.push_back(Ev("u", "a", "", "success",
                   "{\"k\":\"" + std::string(64 * 1024, 'x') + "\"}"));
  AuditEvent src = Ev("u", "a");
  src.source_address = std::string(257, 's');
  bad.push_back(src);
  for (size_t i = 0; i < bad.size(); ++i) {
    INFO("case " << i);
    CHECK(log.Record(bad[i]).IsInvalidArgument());
    CHECK(log.RecordAsync(bad[i]).IsInvalidArgument());
  }
  REQUIRE(store->Flush().ok());
  CHECK(QueryOrDie(store.get(), {}).records.empty());

  // The limits themselves are accepted.
  AuditEvent max = Ev(std::string(256, 'u'), std::string(256, 'a'),
                      std::string(1024, 'r'), std::string(64, 'o'), "{}");
  max.source_address = std::string(256, 's');
  CHECK(log.Record(max).ok());
  CHECK(log.Record(Ev("u", "a", "", "success", "")).ok());
  CHECK(QueryOrDie(store.get(), {}).records.size() == 2);
  CHECK(VerifyOrDie(store.get()).ok);
}

TEST_CASE("the chain survives a restart and grows on the old head", "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 5);
  {
    auto store = OpenOrDie(o);
    AuditVerification v = VerifyOrDie(store.get());
    CHECK(v.ok);
    CHECK(v.last_id == 5);
    const std::string head = v.last_hash;
    RecordN(store.get(), 2);
    AuditPage page = QueryOrDie(store.get(), {});
    REQUIRE(Ids(page) == std::vector<int64_t>{7, 6, 5, 4, 3, 2, 1});
    CHECK(page.records[1].prev_hash == head);
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  AuditVerification v = VerifyOrDie(store.get());
  CHECK(v.ok);
  CHECK(v.records_checked == 7);
  CHECK(v.last_id == 7);
}

TEST_CASE("two stores on one file link their records onto one chain",
          "[audit]") {
  // Several processes may share a file (each writing its own
  // conversations). Each store kept the head it had loaded at Open: the
  // second one's records took ids the first had used, were refused as
  // dead letters (while Record said OK), and so was every
  // DeleteConversation it made, whose audit record rides on the delete.
  TempDir dir;
  Options o = TestOptions(dir);
  auto a = OpenOrDie(o);
  auto b = OpenOrDie(o);
  REQUIRE(a->audit().Record(Ev("alice", "x1")).ok());
  REQUIRE(b->audit().Record(Ev("bob", "y1")).ok());
  REQUIRE(a->audit().Record(Ev("alice", "x2")).ok());
  REQUIRE(b->Append("b-conv", Msg(Role::kUser, "hi")).ok());
  REQUIRE(b->Flush().ok());
  REQUIRE(b->DeleteConversation("b-conv").ok());
  REQUIRE(b->Flush().ok());
  REQUIRE(a->Flush().ok());
  CHECK(a->GetStats().dead_letters == 0);
  CHECK(b->GetStats().dead_letters == 0);
  AuditPage page = QueryOrDie(a.get(), {});
  CHECK(Ids(page) == std::vector<int64_t>{4, 3, 2, 1});
  CHECK(page.records[0].event.action == "conversation.delete");
  CHECK(VerifyOrDie(b.get()).ok);
  CHECK(b->History("b-conv")->empty());
  REQUIRE(a->Close().ok());
  REQUIRE(b->Close().ok());
  auto c = OpenOrDie(o);
  CHECK(c->History("b-conv")->empty());
  AuditVerification v = VerifyOrDie(c.get());
  CHECK(v.ok);
  CHECK(v.records_checked == 4);
}

TEST_CASE("RecordAsync queues; Flush makes it visible", "[audit]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.max_flush_delay = std::chrono::milliseconds(200);
  auto store = OpenOrDie(o);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(store->audit().RecordAsync(Ev("svc", "key.validate")).ok());
  }
  REQUIRE(store->Flush().ok());
  AuditQuery q;
  q.action = "key.validate";
  CHECK(QueryOrDie(store.get(), q).records.size() == 10);
  CHECK(VerifyOrDie(store.get()).ok);
}

TEST_CASE("batched audit class: Record returns once queued", "[audit]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.audit = Durability::kBatched;
  auto store = OpenOrDie(o);
  RecordN(store.get(), 20);
  REQUIRE(store->Flush().ok());
  CHECK(QueryOrDie(store.get(), {}).records.size() == 20);
  CHECK(VerifyOrDie(store.get()).last_id == 20);
}

TEST_CASE("prune deletes old records, anchors the rest, records itself",
          "[audit]") {
  TempDir dir;
  Options o = TestOptions(dir);
  std::string hash5;
  {
    auto store = OpenOrDie(o);
    RecordN(store.get(), 10);
    AuditPage all = QueryOrDie(store.get(), {});
    REQUIRE(all.records.size() == 10);
    const AuditRecord& r5 = all.records[5];
    const AuditRecord& r6 = all.records[4];
    REQUIRE(r5.id == 5);
    REQUIRE(r6.id == 6);
    REQUIRE(r5.ts_us < r6.ts_us);
    hash5 = r5.hash;

    StatusOr<AuditPruneReport> report = store->audit().Prune(r6.ts_us);
    INFO(report.status().ToString());
    REQUIRE(report.ok());
    CHECK(report->deleted == 5);
    CHECK(report->anchor_id == 5);
    CHECK(report->anchor_hash == hash5);
    CHECK(report->prune_record_id == 11);

    AuditPage page = QueryOrDie(store.get(), {});
    CHECK(Ids(page) == std::vector<int64_t>{11, 10, 9, 8, 7, 6});
    const AuditRecord& pr = page.records.front();
    CHECK(pr.event.actor == "system");
    CHECK(pr.event.action == "audit.prune");
    CHECK(pr.event.outcome == "success");
    nlohmann::json d = nlohmann::json::parse(pr.event.details_json);
    CHECK(d["deleted"] == 5);
    CHECK(d["anchor_id"] == 5);
    CHECK(d["anchor_hash"] == hash5);
    CHECK(d["before_us"] == r6.ts_us);

    AuditVerification v = VerifyOrDie(store.get());
    CHECK(v.ok);
    CHECK(v.anchor_id == 5);
    CHECK(v.anchor_hash == hash5);
    CHECK(v.records_checked == 6);
    CHECK(v.last_id == 11);

    // Nothing older left: a second run deletes nothing, keeps the anchor.
    report = store->audit().Prune(r6.ts_us);
    REQUIRE(report.ok());
    CHECK(report->deleted == 0);
    CHECK(report->anchor_id == 5);
    CHECK(report->anchor_hash == hash5);
    CHECK(report->prune_record_id == 12);
    CHECK(store->audit().Prune(-1).status().IsInvalidArgument());
    REQUIRE(store->Close().ok());
  }
  CHECK(SqlInt(o.path, "SELECT count(*) FROM audit_log") == 7);
  CHECK(SqlInt(o.path, "SELECT anchor_id FROM audit_anchor") == 5);
  {
    // After a restart new records link onto the pruned chain.
    auto store = OpenOrDie(o);
    RecordN(store.get(), 1);
    AuditVerification v = VerifyOrDie(store.get());
    CHECK(v.ok);
    CHECK(v.last_id == 13);
    CHECK(v.records_checked == 8);
    REQUIRE(store->Close().ok());
  }
  SECTION("deleting the oldest remaining record breaks at the anchor") {
    RawExec(o.path, "DELETE FROM audit_log WHERE id = 6");
    auto store = OpenOrDie(o);
    AuditVerification v = VerifyOrDie(store.get());
    CHECK_FALSE(v.ok);
    CHECK(v.broken_id == 7);
    CHECK(v.expected_id == 6);
    CHECK(v.reason == AuditBreak::kAnchor);
  }
  SECTION("an edited anchor hash breaks at the first record") {
    RawExec(o.path, "UPDATE audit_anchor SET anchor_hash = zeroblob(32)");
    ExpectBreak(o, 6, AuditBreak::kAnchor);
  }
  SECTION("a moved anchor id breaks at the first record") {
    RawExec(o.path, "UPDATE audit_anchor SET anchor_id = 4");
    ExpectBreak(o, 6, AuditBreak::kAnchor);
  }
  SECTION("a deleted anchor leaves a gap from genesis") {
    RawExec(o.path, "DELETE FROM audit_anchor");
    ExpectBreak(o, 6, AuditBreak::kGap);
  }
}

TEST_CASE("prune of everything keeps a verifiable one-record chain",
          "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  RecordN(store.get(), 4);
  AuditPage all = QueryOrDie(store.get(), {});
  StatusOr<AuditPruneReport> report =
      store->audit().Prune(all.records.front().ts_us + 1'000'000'000);
  REQUIRE(report.ok());
  CHECK(report->deleted == 4);
  CHECK(report->anchor_id == 4);
  CHECK(report->anchor_hash == all.records.front().hash);
  CHECK(report->prune_record_id == 5);
  AuditVerification v = VerifyOrDie(store.get());
  CHECK(v.ok);
  CHECK(v.records_checked == 1);
  CHECK(v.last_id == 5);
}

TEST_CASE("many threads recording give one linear chain with every record",
          "[audit]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto store = OpenOrDie(o);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditEvent e = Ev("t" + std::to_string(t), "op", std::to_string(i),
                          "success", "{\"i\":" + std::to_string(i) + "}");
        // Half waits for the commit, half only queues; messages share the
        // batches.
        Status s = i % 2 == 0 ? store->audit().Record(e)
                              : store->audit().RecordAsync(e);
        if (!s.ok()) ++failures;
        if (!store->Append("c" + std::to_string(t), Msg(Role::kUser, "m"))
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  REQUIRE(failures.load() == 0);
  REQUIRE(store->Flush().ok());
  AuditVerification v = VerifyOrDie(store.get());
  INFO(v.detail);
  CHECK(v.ok);
  CHECK(v.records_checked == kThreads * kPerThread);
  CHECK(v.last_id == kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    AuditQuery q;
    q.actor = "t" + std::to_string(t);
    q.limit = 1000;
    AuditPage page = QueryOrDie(store.get(), q);
    REQUIRE(page.records.size() == kPerThread);
    // One thread's records keep its order (newest first: i descending).
    std::set<std::string> seen;
    for (size_t k = 0; k < page.records.size(); ++k) {
      CHECK(page.records[k].event.resource ==
            std::to_string(kPerThread - 1 - static_cast<int>(k)));
      seen.insert(page.records[k].event.resource);
    }
    CHECK(seen.size() == kPerThread);
  }
  REQUIRE(store->Close().ok());
  auto reopened = OpenOrDie(o);
  CHECK(VerifyOrDie(reopened.get()).last_id == kThreads * kPerThread);
}

TEST_CASE("DeleteConversation and PruneMessages are audited", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->Append("keep", Msg(Role::kUser, "k")).ok());
    REQUIRE(store->Append("gone", Msg(Role::kUser, "g")).ok());
  }
  REQUIRE(store->DeleteConversation("gone").ok());
  REQUIRE(store->Flush().ok());
  AuditQuery q;
  q.action = "conversation.delete";
  AuditPage page = QueryOrDie(store.get(), q);
  REQUIRE(page.records.size() == 1);
  CHECK(page.records[0].event.actor == "system");
  CHECK(page.records[0].event.resource == "gone");
  CHECK(page.records[0].event.outcome == "success");

  MessageRetention r;
  r.max_messages_per_conversation = 2;
  StatusOr<RetentionReport> report = store->PruneMessages(r);
  REQUIRE(report.ok());
  REQUIRE(report->messages_removed == 3);
  q.action = "retention.messages";
  page = QueryOrDie(store.get(), q);
  REQUIRE(page.records.size() == 1);
  CHECK(page.records[0].event.actor == "system");
  CHECK(page.records[0].event.outcome == "success");
  nlohmann::json d = nlohmann::json::parse(page.records[0].event.details_json);
  CHECK(d["messages_removed"] == 3);
  CHECK(d["conversations_touched"] == 1);
  CHECK(d["max_messages_per_conversation"] == 2);
  CHECK(VerifyOrDie(store.get()).last_id == 2);
}

// Refuses audit appends whose action starts with "POISON", as a database
// constraint would.
class AuditPoisonBackend final : public internal::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  Status Apply(std::span<const internal::WriteOp> batch) override {
    for (const internal::WriteOp& op : batch) {
      const auto* a =
          std::get_if<internal::Boxed<internal::AuditOp>>(&op.payload);
      if (a == nullptr) continue;
      const auto* ap = std::get_if<internal::AuditAppend>(&(*a)->record);
      if (ap != nullptr && ap->event.action.rfind("POISON", 0) == 0) {
        return Status::InvalidArgument("CHECK constraint failed");
      }
    }
    return ForwardingBackend::Apply(batch);
  }
};

TEST_CASE("an audit record the database refuses becomes a dead letter",
          "[audit]") {
  TempDir dir;
  Options o = TestOptions(dir);
  auto backend = std::make_unique<AuditPoisonBackend>(
      internal::backend_test::OpenBackend(o));
  StatusOr<std::unique_ptr<Store>> opened =
      internal::StoreImpl::OpenWithBackend(o, std::move(backend));
  REQUIRE(opened.ok());
  std::unique_ptr<Store> store = std::move(opened).value();
  REQUIRE(store->audit().Record(Ev("u", "before")).ok());
  REQUIRE(store->audit().RecordAsync(Ev("u", "POISON.x", "res")).ok());
  REQUIRE(store->audit().Record(Ev("u", "after")).ok());
  REQUIRE(store->Flush().ok());
  StatusOr<std::vector<DeadLetter>> dl = store->DeadLetters();
  REQUIRE(dl.ok());
  REQUIRE(dl->size() == 1);
  CHECK((*dl)[0].kind == "audit");
  CHECK((*dl)[0].key == "POISON.x");
  nlohmann::json p = nlohmann::json::parse((*dl)[0].payload);
  CHECK(p["actor"] == "u");
  CHECK(p["resource"] == "res");
  CHECK(store->GetStats().dead_letters == 1);
  // The refused record never got an id: the chain has no hole.
  AuditPage page = QueryOrDie(store.get(), {});
  REQUIRE(Ids(page) == std::vector<int64_t>{2, 1});
  CHECK(page.records[0].event.action == "after");
  AuditVerification v = VerifyOrDie(store.get());
  CHECK(v.ok);
  CHECK(v.last_id == 2);
}

TEST_CASE("the audit log is the store's AuditSink", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  auto* impl = dynamic_cast<internal::StoreImpl*>(store.get());
  REQUIRE(impl != nullptr);
  internal::AuditSink* sink = impl->audit_sink();
  REQUIRE(sink != nullptr);
  REQUIRE(sink->Record(Ev("key-1", "key.create", "key-1"), true).ok());
  REQUIRE(sink->Record(Ev("key-1", "key.validate", "", "denied"), false).ok());
  CHECK(sink->Record(Ev("", "key.create"), true).IsInvalidArgument());
  REQUIRE(store->Flush().ok());
  AuditQuery q;
  q.actor = "key-1";
  CHECK(Ids(QueryOrDie(store.get(), q)) == std::vector<int64_t>{2, 1});
}

TEST_CASE("an analytics Cleanup run is audited", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  CleanupOptions c;
  c.older_than = std::chrono::hours(1);
  StatusOr<CleanupReport> r = store->analytics().Cleanup(c);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  AuditQuery q;
  q.action = "retention.analytics";
  AuditPage page = QueryOrDie(store.get(), q);
  REQUIRE(page.records.size() == 1);
  CHECK(page.records[0].event.actor == "system");
  nlohmann::json d = nlohmann::json::parse(page.records[0].event.details_json);
  CHECK(d["turns"] == 0);
  CHECK(d["sessions"] == 0);
  CHECK(VerifyOrDie(store.get()).last_id == 1);
}

TEST_CASE("the audit log refuses calls after Close", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  RecordN(store.get(), 1);
  REQUIRE(store->Close().ok());
  CHECK(store->audit().Record(Ev("u", "a")).IsFailedPrecondition());
  CHECK(store->audit().RecordAsync(Ev("u", "a")).IsFailedPrecondition());
  CHECK(store->audit().Query({}).status().IsFailedPrecondition());
  CHECK(store->audit().Verify().status().IsFailedPrecondition());
  CHECK(store->audit().Prune(1).status().IsFailedPrecondition());
}

TEST_CASE("a batch rolled back mid-way relinks its records on retry",
          "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 3);
  // The database refuses one record in the middle of a batch, after the
  // batch already linked and inserted the record before it.
  RawExec(
      o.path,
      "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log"
      " WHEN NEW.action = 'POISON' BEGIN SELECT RAISE(ABORT, 'poison'); END;");
  o.max_flush_delay = std::chrono::milliseconds(300);
  o.log_level = LogLevel::kOff;
  auto store = OpenOrDie(o);
  REQUIRE(store->audit().RecordAsync(Ev("u", "ok1")).ok());
  REQUIRE(store->audit().RecordAsync(Ev("u", "POISON")).ok());
  REQUIRE(store->audit().RecordAsync(Ev("u", "ok2")).ok());
  REQUIRE(store->Flush().ok());
  CHECK(store->GetStats().dead_letters == 1);
  AuditPage page = QueryOrDie(store.get(), {});
  REQUIRE(Ids(page) == std::vector<int64_t>{5, 4, 3, 2, 1});
  CHECK(page.records[0].event.action == "ok2");
  CHECK(page.records[1].event.action == "ok1");
  AuditVerification v = VerifyOrDie(store.get());
  INFO(v.detail);
  CHECK(v.ok);
  CHECK(v.last_id == 5);
}

}  // namespace
}  // namespace convstore::audit_test
