// Copyright 2026 The convstore Authors.
//
// Helpers shared by the tests: a scratch directory removed at scope exit,
// message builders, and options sized for fast tests.

#ifndef CONVSTORE_TESTS_TESTUTIL_H_
#define CONVSTORE_TESTS_TESTUTIL_H_

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convstore/convstore.h"

namespace convstore::test {

// A fresh directory under $TMPDIR (or /tmp), deleted with its contents when
// the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const char* base = std::getenv("TMPDIR");
    path_ = std::filesystem::path(base != nullptr ? base : "/tmp") /
            ("convstore_test_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter.fetch_add(1)));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

// Options for a test database in `dir`: quiet logging, short flush delay.
inline Options TestOptions(const TempDir& dir,
                           const std::string& name = "test.db") {
  Options o;
  o.path = dir.File(name);
  o.log_level = LogLevel::kError;
  o.max_flush_delay = std::chrono::milliseconds(5);
  return o;
}

// The whole file at `path`, as bytes ("" if it cannot be read).
inline std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

// The names of the files in `dir` whose bytes contain `needle` (erasure
// tests: a deleted marker must be in none of them).
inline std::vector<std::string> FilesContaining(const TempDir& dir,
                                                const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    if (FileBytes(entry.path().string()).find(needle) != std::string::npos) {
      found.push_back(entry.path().filename().string());
    }
  }
  return found;
}

inline Message Msg(Role role, std::string content, int64_t tokens_in = 0,
                   int64_t tokens_out = 0) {
  Message m;
  m.role = role;
  m.content = std::move(content);
  m.tokens_in = tokens_in;
  m.tokens_out = tokens_out;
  return m;
}

inline std::unique_ptr<Store> OpenOrDie(const Options& o) {
  StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
  if (!s.ok()) {
    std::fprintf(stderr, "open failed: %s\n", s.status().ToString().c_str());
    std::abort();
  }
  return std::move(s).value();
}

inline std::vector<int64_t> Seqs(const std::vector<MessagePtr>& v) {
  std::vector<int64_t> out;
  for (const MessagePtr& m : v) out.push_back(m->seq);
  return out;
}

inline std::vector<std::string> Contents(const std::vector<MessagePtr>& v) {
  std::vector<std::string> out;
  for (const MessagePtr& m : v) out.push_back(m->content);
  return out;
}

// History that must succeed.
inline std::vector<MessagePtr> Hist(Store* store, std::string_view id,
                                    const HistoryOptions& o = {}) {
  StatusOr<std::vector<MessagePtr>> r = store->History(id, o);
  INFO("History(" << id << "): " << r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

}  // namespace convstore::test

#endif  // CONVSTORE_TESTS_TESTUTIL_H_
