// Copyright 2026 The convstore Authors.
//
// Tamper evidence of the audit chain (convstore/audit.h): each test builds
// a log, closes the store, edits the file with raw SQLite (edit a field,
// delete, insert, forge, reorder, drop the oldest rows), reopens it and
// checks that Verify names the exact first broken record and the reason.
// Tampering around a prune anchor: "prune deletes old records..." in
// audit_test.cc.

#include <absl/strings/escaping.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "audit/audit_chain.h"
#include "audit_testutil.h"

namespace convstore::audit_test {
namespace {

TEST_CASE("tamper: an edited field breaks the chain at that record",
          "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 10);
  SECTION("actor") {
    RawExec(o.path, "UPDATE audit_log SET actor = 'mallory' WHERE id = 6");
    ExpectBreak(o, 6, AuditBreak::kContentHash);
  }
  SECTION("details") {
    RawExec(o.path,
            "UPDATE audit_log SET details_json = '{\"x\":1}' WHERE id = 3");
    ExpectBreak(o, 3, AuditBreak::kContentHash);
  }
  SECTION("timestamp") {
    RawExec(o.path, "UPDATE audit_log SET ts_us = ts_us + 1 WHERE id = 10");
    ExpectBreak(o, 10, AuditBreak::kContentHash);
  }
  SECTION("field boundary shifted: actor 'alicea' + action '1'") {
    // Same concatenated bytes ("alice"+"a1" == "alicea"+"1"): only the
    // length prefixes tell them apart.
    RawExec(o.path,
            "UPDATE audit_log SET actor = 'alicea', action = '1' WHERE id = 1");
    ExpectBreak(o, 1, AuditBreak::kContentHash);
  }
  SECTION("hash rewritten to match the edit") {
    // The edited record is consistent again, but its successor's
    // prev_hash still names the original.
    RawExec(o.path, "UPDATE audit_log SET actor = 'mallory' WHERE id = 4");
    std::string hex;
    {
      auto store = OpenOrDie(o);
      AuditQuery q;
      q.before_id = 5;
      q.limit = 2;
      AuditPage page = QueryOrDie(store.get(), q);
      REQUIRE(Ids(page) == std::vector<int64_t>{4, 3});
      AuditEvent e = page.records[0].event;
      hex = internal::HexOf(internal::AuditRecordHash(
          absl::HexStringToBytes(page.records[1].hash), 4,
          page.records[0].ts_us, e));
      REQUIRE(store->Close().ok());
    }
    RawExec(o.path, "UPDATE audit_log SET hash = x'" + hex + "' WHERE id = 4");
    ExpectBreak(o, 5, AuditBreak::kPrevHash);
  }
}

TEST_CASE("tamper: a field retyped to hide a record from Query breaks",
          "[audit]") {
  // The bytes stay the same, so the hash does too; but a BLOB never equals
  // the TEXT a filter binds, and a BLOB time is in no integer range:
  // Query would skip the record while Verify said ok.
  TempDir dir;
  Options o = MakeClosedLog(dir, 5);
  SECTION("actor and resource as BLOB") {
    RawExec(o.path,
            "UPDATE audit_log SET actor = CAST(actor AS BLOB),"
            " resource = CAST(resource AS BLOB) WHERE id = 3");
    {
      auto store = OpenOrDie(o);
      AuditQuery q;
      q.actor = "alice";
      CHECK(QueryOrDie(store.get(), q).records.size() == 4);  // hidden
      REQUIRE(store->Close().ok());
    }
    ExpectBreak(o, 3, AuditBreak::kColumnType);
  }
  SECTION("the time as a BLOB") {
    // (As text the column's integer affinity would turn it back.)
    RawExec(o.path,
            "UPDATE audit_log SET ts_us = CAST(CAST(ts_us AS TEXT) AS BLOB)"
            " WHERE id = 2");
    REQUIRE(SqlInt(o.path,
                   "SELECT typeof(ts_us) = 'blob' FROM audit_log"
                   " WHERE id = 2") == 1);
    ExpectBreak(o, 2, AuditBreak::kColumnType);
  }
  SECTION("the hash as text") {
    RawExec(o.path,
            "UPDATE audit_log SET hash = CAST(hash AS TEXT) WHERE id = 5");
    ExpectBreak(o, 5, AuditBreak::kColumnType);
  }
  CHECK(std::string(AuditBreakName(AuditBreak::kColumnType)) ==
        "column type mismatch");
}

TEST_CASE("tamper: a deleted middle record is a gap at its successor",
          "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 10);
  RawExec(o.path, "DELETE FROM audit_log WHERE id = 5");
  auto store = OpenOrDie(o);
  AuditVerification v = VerifyOrDie(store.get());
  CHECK_FALSE(v.ok);
  CHECK(v.broken_id == 6);
  CHECK(v.expected_id == 5);
  CHECK(v.reason == AuditBreak::kGap);
  CHECK(v.records_checked == 5);
  CHECK(std::string(AuditBreakName(v.reason)) == "gap in ids");
}

TEST_CASE("tamper: a forged record is caught", "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 10);
  SECTION("appended with a copied hash") {
    RawExec(
        o.path,
        "INSERT INTO audit_log SELECT 11, ts_us, 'mallory', action, resource,"
        " outcome, details_json, source_address,"
        " (SELECT hash FROM audit_log WHERE id = 10), hash"
        " FROM audit_log WHERE id = 5");
    ExpectBreak(o, 11, AuditBreak::kContentHash);
  }
  SECTION("inserted past a gap") {
    RawExec(o.path,
            "INSERT INTO audit_log SELECT 20, ts_us, actor, action, resource,"
            " outcome, details_json, source_address, hash, hash"
            " FROM audit_log WHERE id = 10");
    ExpectBreak(o, 20, AuditBreak::kGap);
  }
  SECTION("replacing a record") {
    RawExec(o.path,
            "DELETE FROM audit_log WHERE id = 7;"
            "INSERT INTO audit_log SELECT 7, ts_us, actor, action, resource,"
            " outcome, details_json, source_address, prev_hash, hash"
            " FROM audit_log WHERE id = 2");
    ExpectBreak(o, 7, AuditBreak::kPrevHash);
  }
}

TEST_CASE("tamper: two records swapping ids breaks at the first", "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 10);
  RawExec(o.path,
          "UPDATE audit_log SET id = -4 WHERE id = 4;"
          "UPDATE audit_log SET id = 4 WHERE id = 3;"
          "UPDATE audit_log SET id = 3 WHERE id = -4;");
  REQUIRE(SqlInt(o.path, "SELECT count(*) FROM audit_log") == 10);
  ExpectBreak(o, 3, AuditBreak::kPrevHash);
}

TEST_CASE("tamper: the oldest records deleted without Prune", "[audit]") {
  TempDir dir;
  Options o = MakeClosedLog(dir, 10);
  RawExec(o.path, "DELETE FROM audit_log WHERE id <= 3");
  auto store = OpenOrDie(o);
  AuditVerification v = VerifyOrDie(store.get());
  CHECK_FALSE(v.ok);
  CHECK(v.broken_id == 4);
  CHECK(v.expected_id == 1);
  CHECK(v.reason == AuditBreak::kGap);
}

// Deletes records 1..`to` and sets the anchor so that record `to` + 1
// continues it: what a tamper that knows the anchor rule would do.
void DeleteAndMoveAnchor(const std::string& path, int to) {
  const std::string n = std::to_string(to);
  RawExec(path, "DELETE FROM audit_log WHERE id <= " + n +
                    "; INSERT OR REPLACE INTO audit_anchor VALUES (1, " + n +
                    ", (SELECT prev_hash FROM audit_log WHERE id = " + n +
                    " + 1), 0)");
}

// A log of 10 records pruned of 1..3 (prune record 11 names anchor 3), then
// `more` records.
Options PrunedLog(const TempDir& dir, int more) {
  Options o = TestOptions(dir);
  auto store = OpenOrDie(o);
  RecordN(store.get(), 10);
  AuditPage all = QueryOrDie(store.get(), {});
  REQUIRE(store->audit().Prune(all.records[6].ts_us).ok());
  if (more > 0) RecordN(store.get(), more);
  REQUIRE(VerifyOrDie(store.get()).ok);
  REQUIRE(store->Close().ok());
  return o;
}

TEST_CASE("tamper: the oldest records deleted and the anchor moved to fit",
          "[audit]") {
  // The anchor was taken as given: with the first remaining record's
  // prev_hash as its hash, deleting the oldest records went unseen, and the
  // head (last id and hash) did not change either. The anchor must be the
  // one the newest audit.prune record (inside the chain) names.
  TempDir dir;
  SECTION("without any prune") {
    Options o = MakeClosedLog(dir, 10);
    DeleteAndMoveAnchor(o.path, 3);
    ExpectBreak(o, 4, AuditBreak::kAnchor);
  }
  SECTION("after a prune, moved further") {
    Options o = PrunedLog(dir, 0);
    DeleteAndMoveAnchor(o.path, 6);
    ExpectBreak(o, 11, AuditBreak::kAnchor);
  }
  SECTION("the prune record deleted too") {
    Options o = PrunedLog(dir, 2);  // 12, 13
    DeleteAndMoveAnchor(o.path, 11);
    ExpectBreak(o, 12, AuditBreak::kAnchor);
  }
}

TEST_CASE("audit.prune is reserved for Prune", "[audit]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  AuditEvent e = Ev("system", "audit.prune");
  e.details_json = R"({"anchor_id": 5, "anchor_hash": ""})";
  CHECK(store->audit().Record(e).code() == StatusCode::kInvalidArgument);
  CHECK(store->audit().RecordAsync(e).code() == StatusCode::kInvalidArgument);
  REQUIRE(store->Close().ok());
}

}  // namespace
}  // namespace convstore::audit_test
