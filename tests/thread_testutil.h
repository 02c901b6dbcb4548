// Copyright 2026 The convstore Authors.
//
// This process's threads as Linux shows them in /proc/self/task: their
// names, and the CPU time of one of them.

#ifndef CONVSTORE_TESTS_THREAD_TESTUTIL_H_
#define CONVSTORE_TESTS_THREAD_TESTUTIL_H_

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace convstore::test {

// Thread id -> name of every thread of this process.
inline std::map<std::string, std::string> ThreadNames() {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    out[e.path().filename().string()] = name;
  }
  return out;
}

// CPU time (user + system) of the thread named `name`, in milliseconds at
// the kernel's clock-tick granularity; -1 if there is none.
inline int64_t ThreadCpuMs(const std::string& name) {
  for (const auto& [tid, n] : ThreadNames()) {
    if (n != name) continue;
    std::ifstream stat("/proc/self/task/" + tid + "/stat");
    std::string line;
    std::getline(stat, line);
    // The fields after the ")" that ends the name: state is the 3rd,
    // utime and stime the 14th and 15th.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    int64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoll(field);
      if (i == 15) stime = std::stoll(field);
    }
    return (utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
  }
  return -1;
}

}  // namespace convstore::test

#endif  // CONVSTORE_TESTS_THREAD_TESTUTIL_H_
