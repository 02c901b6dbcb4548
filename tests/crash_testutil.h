// Copyright 2026 The convstore Authors.
//
// What the SIGKILL tests share (crash_test.cc, crash_engines_test.cc): run
// a child process that reports through a pipe, kill it at a moment, collect
// every report it wrote, and check the file SQLite's way. The child must
// leave with _exit and use no Catch2 macros.

#ifndef CONVSTORE_TESTS_CRASH_TESTUTIL_H_
#define CONVSTORE_TESTS_CRASH_TESTUTIL_H_

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace convstore::crash_test {

// Reads whatever is in the pipe until `deadline` (or EOF).
inline void ReadUntil(int fd, std::chrono::steady_clock::time_point deadline,
                      std::string* buf, bool* eof) {
  char chunk[8192];
  while (!*eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n <= 0) {
      *eof = true;
      return;
    }
    buf->append(chunk, static_cast<size_t>(n));
  }
}

struct Killed {
  std::string reports;  // every byte the child wrote to the pipe
  int status = 0;       // from waitpid
  std::chrono::steady_clock::time_point at;  // when it was reaped
};

// Forks; the child runs `child(write_fd)` (which must not return). After
// `delay` the parent SIGKILLs it, reaps it and drains the pipe.
inline Killed RunAndKill(const std::function<void(int)>& child,
                         std::chrono::milliseconds delay) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    child(fds[1]);
    ::_exit(3);  // child() must not return
  }
  ::close(fds[1]);
  Killed k;
  bool eof = false;
  ReadUntil(fds[0], std::chrono::steady_clock::now() + delay, &k.reports, &eof);
  ::kill(pid, SIGKILL);
  REQUIRE(::waitpid(pid, &k.status, 0) == pid);
  k.at = std::chrono::steady_clock::now();
  // The write end is closed now: drain what is left.
  ReadUntil(fds[0], k.at + std::chrono::seconds(10), &k.reports, &eof);
  ::close(fds[0]);
  return k;
}

// PRAGMA integrity_check of the file ("ok" when sound), on a read-only
// connection of its own; `count_sql`, if given, is run too and its value
// stored in *count (-1 if it fails).
inline std::string IntegrityCheck(const std::string& path,
                                  const char* count_sql = nullptr,
                                  int64_t* count = nullptr) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    result = std::string("open: ") + sqlite3_errmsg(db);
    sqlite3_close(db);
    return result;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) ==
      SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (!result.empty()) result += "; ";
      result += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
  } else {
    result = std::string("prepare: ") + sqlite3_errmsg(db);
  }
  sqlite3_finalize(st);
  if (count_sql != nullptr) {
    *count = -1;
    st = nullptr;
    if (sqlite3_prepare_v2(db, count_sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      *count = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return result;
}

}  // namespace convstore::crash_test

#endif  // CONVSTORE_TESTS_CRASH_TESTUTIL_H_
