// Copyright 2026 The convstore Authors.
//
// Raw SQLite access for tests that damage or inspect a closed store file
// behind the store's back (tampering, corrupt blobs, foreign files).

#ifndef CONVSTORE_TESTS_SQLITE_TESTUTIL_H_
#define CONVSTORE_TESTS_SQLITE_TESTUTIL_H_

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <string>

namespace convstore::test {

// Runs `sql` (one or more statements) on the file at `path`; REQUIREs
// success and shows SQLite's message otherwise.
inline void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err != nullptr ? err : ""));
  sqlite3_free(err);
  sqlite3_close_v2(db);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace convstore::test

#endif  // CONVSTORE_TESTS_SQLITE_TESTUTIL_H_
