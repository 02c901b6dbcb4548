// Copyright 2026 The convstore Authors.
//
// Shared by the libFuzzer targets: a scratch directory per fuzzer process
// (on /dev/shm when it exists, so a file write costs no disk I/O), file
// helpers, and a check that aborts with a message, since a fuzzer reports
// only crashes.

#ifndef CONVSTORE_FUZZ_FUZZ_UTIL_H_
#define CONVSTORE_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "convstore/convstore.h"

namespace convstore::fuzz {

// Aborts the fuzzer with `what` when `ok` is false.
inline void Check(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
  std::abort();
}

// The scratch directory of this process, created on first use and removed
// at exit.
inline const std::filesystem::path& ScratchDir() {
  // Never destroyed, so the exit handler below can still read it.
  static const std::filesystem::path* const dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    // mkdtemp, not a name from the pid: two fuzzers in different pid
    // namespaces (containers) sharing /dev/shm would otherwise share a
    // directory, and each other's locks on the database in it.
    std::string name = (base / "convstore_fuzz_XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    return new std::filesystem::path(name);
  }();
  static const bool cleanup_registered = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    });
    return true;
  }();
  (void)cleanup_registered;
  return *dir;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replaces the database at `path` (and any -wal / -shm of it) by `bytes`.
inline void ResetDb(const std::string& path, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::remove(path + "-wal", ec);
  std::filesystem::remove(path + "-shm", ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Check(out.good(), "write " + path);
}

// The bytes of a fresh store file opened with `options` (at `name` in
// ScratchDir()) and closed: copying them is much cheaper than running the
// migrations for every input.
inline std::string NewStoreBytes(Options options, const std::string& name) {
  options.path = (ScratchDir() / name).string();
  {
    StatusOr<std::unique_ptr<Store>> s = Store::Open(options);
    Check(s.ok(), "open template: " + s.status().ToString());
    Check((*s)->Close().ok(), "close template");
  }
  return ReadFile(options.path);
}

}  // namespace convstore::fuzz

#endif  // CONVSTORE_FUZZ_FUZZ_UTIL_H_
