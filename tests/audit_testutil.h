// Copyright 2026 The convstore Authors.
//
// Helpers shared by the audit-log tests (audit_test.cc,
// audit_tamper_test.cc): event builders, query/verify wrappers that
// REQUIRE success, and raw SQLite access to a closed store file for
// tampering.

#ifndef CONVSTORE_TESTS_AUDIT_TESTUTIL_H_
#define CONVSTORE_TESTS_AUDIT_TESTUTIL_H_

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "sqlite_testutil.h"
#include "testutil.h"

namespace convstore::audit_test {

using test::OpenOrDie;
using test::RawExec;
using test::TempDir;
using test::TestOptions;

inline AuditEvent Ev(std::string actor, std::string action,
                     std::string resource = "", std::string outcome = "success",
                     std::string details = "") {
  AuditEvent e;
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.outcome = std::move(outcome);
  e.details_json = std::move(details);
  return e;
}

inline std::vector<int64_t> Ids(const AuditPage& page) {
  std::vector<int64_t> out;
  for (const AuditRecord& r : page.records) out.push_back(r.id);
  return out;
}

inline AuditPage QueryOrDie(Store* store, const AuditQuery& q) {
  StatusOr<AuditPage> page = store->audit().Query(q);
  INFO(page.status().ToString());
  REQUIRE(page.ok());
  return std::move(page).value();
}

inline AuditVerification VerifyOrDie(Store* store) {
  StatusOr<AuditVerification> v = store->audit().Verify();
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return std::move(v).value();
}

// Records `n` events "a1".."an" by actor "alice" (resource "r<i>").
inline void RecordN(Store* store, int n) {
  for (int i = 1; i <= n; ++i) {
    Status s = store->audit().Record(
        Ev("alice", "a" + std::to_string(i), "r" + std::to_string(i)));
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
}

inline int64_t SqlInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

// Opens a store, records `n` events, closes it; returns the options.
inline Options MakeClosedLog(const TempDir& dir, int n) {
  Options o = TestOptions(dir);
  auto store = OpenOrDie(o);
  RecordN(store.get(), n);
  REQUIRE(VerifyOrDie(store.get()).ok);
  REQUIRE(store->Close().ok());
  return o;
}

// Reopens and verifies; the chain must break at `id` for `reason`.
inline void ExpectBreak(const Options& o, int64_t id, AuditBreak reason) {
  auto store = OpenOrDie(o);
  AuditVerification v = VerifyOrDie(store.get());
  INFO(v.detail);
  CHECK_FALSE(v.ok);
  CHECK(v.broken_id == id);
  CHECK(v.reason == reason);
  CHECK(store->Close().ok());
}

}  // namespace convstore::audit_test

#endif  // CONVSTORE_TESTS_AUDIT_TESTUTIL_H_
