// Copyright 2026 The convstore Authors.

#include "bench_util.h"

#include <fcntl.h>
#include <gnu/libc-version.h>
#include <sqlite3.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "sqlite/migrations.h"

namespace convstore::bench {

fs::path ScratchDir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  fs::path p = fs::path(base != nullptr ? base : "/tmp") /
               ("convstore_bench_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string Content(int64_t i) {
  std::string s = "message " + std::to_string(i) + " ";
  while (s.size() < kContentBytes) s += "lorem ipsum dolor sit amet ";
  s.resize(kContentBytes);
  return s;
}

std::string ConvId(int64_t i) { return "conversation-" + std::to_string(i); }
std::string UserId(int64_t conv) {
  return "user-" + std::to_string(conv % 997);
}

Message BenchMessage(int64_t i) {
  Message m;
  m.role = (i % 2 == 0) ? Role::kUser : Role::kAssistant;
  m.content = Content(i);
  m.tokens_in = 50;
  m.tokens_out = 40;
  return m;
}

Options BenchOptions(const fs::path& dir) {
  Options o;
  o.path = (dir / "bench.db").string();
  o.log_level = LogLevel::kError;
  return o;
}

std::unique_ptr<Store> MustOpen(const Options& options) {
  auto s = Store::Open(options);
  MustOk(s.status(), ("open " + options.path).c_str());
  return std::move(s).value();
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "benchmark failed: %s\n", what.c_str());
  std::abort();
}

LatencySampler::LatencySampler(size_t max_samples) : max_(max_samples) {
  ns_.reserve(max_samples);
}

void LatencySampler::Report(benchmark::State& state) {
  if (ns_.empty()) return;
  std::sort(ns_.begin(), ns_.end());
  auto at = [&](double q) {
    return static_cast<double>(ns_[static_cast<size_t>(q * (ns_.size() - 1))]);
  };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p999_ns"] = at(0.999);
}

namespace {

fs::path FixtureDir() {
  const char* env = std::getenv("CONVSTORE_BENCH_FIXTURES");
  fs::path p =
      env != nullptr ? fs::path(env) : fs::path("/tmp/convstore_fixtures");
  fs::create_directories(p);
  return p;
}

// Writes the copy back to the disk before the caller times anything. A
// fresh copy of the 10M-row fixture is 2.7 GB of dirty page cache in the
// very file the store then fsyncs at its first checkpoint, which would
// charge the benchmark for writing back the copy (a store that has held
// 10M rows for a while has no such backlog).
void SyncFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;  // before anything else can change it
    Fail("fsync " + path.string() + ": " + std::strerror(err));
  }
  ::close(fd);
}

void CopyDb(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  SyncFile(to);
  for (const char* suffix : {"-wal", "-shm"}) {
    fs::path side = from.string() + suffix;
    if (fs::exists(side)) {
      fs::copy_file(side, to.string() + suffix,
                    fs::copy_options::overwrite_existing);
      SyncFile(to.string() + suffix);
    }
  }
}

// The selected one of a transparent-huge-page setting's modes
// ("always [madvise] never" in /sys/kernel/mm/transparent_hugepage/<name>),
// or "unknown".
std::string BracketedSetting(const char* name) {
  std::ifstream in(std::string("/sys/kernel/mm/transparent_hugepage/") + name);
  std::string modes;
  if (!std::getline(in, modes)) return "unknown";
  const size_t from = modes.find('[');
  const size_t to = modes.find(']', from);
  if (from == std::string::npos || to == std::string::npos) return "unknown";
  return modes.substr(from + 1, to - from - 1);
}

}  // namespace

fs::path CopyStoreFixture(int64_t rows, const fs::path& dir) {
  const fs::path fixture =
      FixtureDir() /
      ("store_v" + std::to_string(internal::LatestSchemaVersion()) +
       "_interleaved_" + std::to_string(rows) + ".db");
  if (!fs::exists(fixture)) {
    std::fprintf(stderr, "building fixture %s (%lld rows, once)...\n",
                 fixture.c_str(), static_cast<long long>(rows));
    const fs::path tmp = fixture.string() + ".building";
    fs::remove(tmp);
    Options o;
    o.path = tmp.string();
    o.log_level = LogLevel::kError;
    o.warm_conversations = 0;
    o.max_batch_ops = 65536;
    o.max_batch_bytes = 64 << 20;
    o.queue_max_items = 1 << 20;
    {
      auto store = MustOpen(o);
      // Interleaved over the conversations, as BM_Store_AppendDurable
      // appends: the file is laid out as one grown by that workload (each
      // merge rewrites every conversation's tail in message_tails and moves
      // the tails that fill to message_chunks, in merge order).
      const int64_t per_conv = rows / kConversations;
      for (int64_t i = 0; i < per_conv; ++i) {
        for (int64_t c = 0; c < kConversations; ++c) {
          Message m = BenchMessage(c);
          m.user_id = UserId(c);
          m.content = Content(i * kConversations + c);
          MustOk(store->Append(ConvId(c), m).status(), "fixture Append");
        }
      }
      MustOk(store->Close(std::chrono::hours(1)).status(), "fixture Close");
    }
    fs::rename(tmp, fixture);
  }
  const fs::path out = dir / "bench.db";
  CopyDb(fixture, out);
  return out;
}

void CreateNaiveTable(sqlite3* db, bool indexed) {
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE messages(conversation_id TEXT, seq INTEGER,"
               " role INTEGER, content TEXT, user_id TEXT, tokens_in INTEGER,"
               " tokens_out INTEGER, created_at INTEGER);",
               nullptr, nullptr, nullptr);
  if (indexed) {
    sqlite3_exec(db,
                 "CREATE INDEX messages_conv ON messages(conversation_id, seq)",
                 nullptr, nullptr, nullptr);
  }
}

fs::path NaiveFixture(int64_t rows) {
  const fs::path fixture =
      FixtureDir() / ("naive_" + std::to_string(rows) + ".db");
  if (fs::exists(fixture)) return fixture;
  const fs::path tmp = fixture.string() + ".building";
  fs::remove(tmp);
  sqlite3* db = nullptr;
  sqlite3_open(tmp.c_str(), &db);
  CreateNaiveTable(db, /*indexed=*/true);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?)", -1,
                     &ins, nullptr);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t conv = r % kConversations;
    const std::string id = ConvId(conv);
    const std::string user = UserId(conv);
    const std::string content = Content(r);
    sqlite3_bind_text(ins, 1, id.data(), static_cast<int>(id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 2, r / kConversations + 1);
    sqlite3_bind_int64(ins, 3, r % 2);
    sqlite3_bind_text(ins, 4, content.data(), static_cast<int>(content.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 5, user.data(), static_cast<int>(user.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 6, 50);
    sqlite3_bind_int64(ins, 7, 40);
    sqlite3_bind_int64(ins, 8, r);
    sqlite3_step(ins);
    sqlite3_reset(ins);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_finalize(ins);
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr,
               nullptr);
  sqlite3_close(db);
  fs::rename(tmp, fixture);
  return fixture;
}

void AddContext() {
  std::string cpu = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  long mem_kib = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) mem_kib = std::atol(line.c_str() + 9);
  }
  utsname u{};
  uname(&u);
  const std::string machine =
      cpu + ", " + std::to_string(std::thread::hardware_concurrency()) +
      " cores, " + std::to_string(mem_kib / (1024 * 1024)) + " GiB, " +
      u.sysname + " " + u.release;
  benchmark::AddCustomContext("convstore_machine", machine);
  benchmark::AddCustomContext("convstore_build_type", CMAKE_BUILD_TYPE_NAME);
  // Huge pages change the Append figures (on the Intel Xeon host, 3-16% off
  // the p50 and about 70% of the page faults while the cache fills:
  // docs/benchmarks.md, "Huge pages"), so a result records whether the heap
  // could get them: the kernel's mode and fault-time defragmentation,
  // glibc's version and its tunables (glibc.malloc.hugetlb=1, from glibc
  // 2.35, asks for them in the "madvise" mode).
  const std::string thp = BracketedSetting("enabled");
  const std::string thp_defrag = BracketedSetting("defrag");
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const std::string glibc_tunables = tunables != nullptr ? tunables : "";
  benchmark::AddCustomContext("transparent_hugepage", thp);
  benchmark::AddCustomContext("transparent_hugepage_defrag", thp_defrag);
  benchmark::AddCustomContext("glibc_version", gnu_get_libc_version());
  benchmark::AddCustomContext("glibc_tunables", glibc_tunables);
  benchmark::AddCustomContext("sqlite_version", sqlite3_libversion());
#ifdef NDEBUG
  benchmark::AddCustomContext("convstore_assertions", "off");
#else
  benchmark::AddCustomContext("convstore_assertions", "ON");
  std::fprintf(stderr,
               "\n*** WARNING: assertions are ON (not an NDEBUG build); "
               "numbers are not representative ***\n\n");
#endif
  std::fprintf(stderr,
               "machine: %s; build: %s; transparent huge pages: %s (defrag "
               "%s); glibc %s, GLIBC_TUNABLES: %s\n",
               machine.c_str(), CMAKE_BUILD_TYPE_NAME, thp.c_str(),
               thp_defrag.c_str(), gnu_get_libc_version(),
               glibc_tunables.empty() ? "(unset)" : glibc_tunables.c_str());
}

}  // namespace convstore::bench
