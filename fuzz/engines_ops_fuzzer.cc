// Copyright 2026 The convstore Authors.
//
// libFuzzer target: a random sequence of calls on the store's engines -
// API keys, the key-value cache, the audit log, analytics - and
// PruneMessages, with Flush and Close + reopen in between, on a fresh store
// (a template file copied per input). Inputs are drawn to reach the
// rejections: invalid UTF-8, NULs, empty and oversized strings, int64
// extremes, NaN and infinities, bad JSON, negative durations.
//
// It aborts when
//  * a call returns a code its header does not document for it (Internal,
//    Corruption, IOError on valid use, ...), refuses an input the header
//    says is valid, or takes one it says is not;
//  * a small model disagrees: cache values read back as set, and absent
//    after Delete; a key validates with its secret until revoked or
//    rotated away and is refused with the right code after; usage counts
//    survive Close; the audit chain verifies and its records read back as
//    recorded; analytics sessions hold what was recorded, and Cleanup,
//    DeleteSession and CheckConsistency count and remove what they should;
//    PruneMessages removes exactly what its rule selects;
//  * after a Close: PRAGMA integrity_check is not "ok", a call to the
//    closed store is not FailedPrecondition, or, reopened, anything
//    acknowledged is gone.
//
// Each engine's calls and model are in fuzz/engines_fuzz_<engine>.h; the
// inputs and what the headers say about them in engines_fuzz_input.h.
//
// The first input byte picks the options: bit 0 a 2 KiB cache bound (so
// entries are evicted; the model then only checks values), bit 1 the other
// durability classes (keys and audit batched, cache and analytics sync).
//
//   ./build-fuzz/fuzz/engines_ops_fuzzer -max_total_time=45 CORPUS_DIR

#include <fuzzer/FuzzedDataProvider.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "convstore/convstore.h"
#include "engines_fuzz_analytics.h"
#include "engines_fuzz_audit.h"
#include "engines_fuzz_cache.h"
#include "engines_fuzz_input.h"
#include "engines_fuzz_keys.h"
#include "engines_fuzz_messages.h"
#include "fuzz_util.h"

namespace convstore::fuzz {
namespace {

using std::chrono::milliseconds;

struct Mode {
  bool tight_cache = false;
  bool other_classes = false;
};

Options FuzzOptions(const std::string& path, const Mode& mode) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = milliseconds(1);
  o.max_content_bytes = 256;
  o.cache_shards = 1;
  o.cache_max_conversations = 2;
  o.cache_max_messages_per_conversation = 4;
  o.read_connections = 1;
  o.sqlite_cache_mib = 1;
  o.cache_entries_shards = 2;
  o.cache_max_value_bytes = 512;
  o.cache_entries_max_bytes = mode.tight_cache ? 2048 : 1 << 20;
  o.cache_sweep_interval = milliseconds(5);
  o.keys_usage_flush_interval = milliseconds(5);
  o.keys_refresh_interval = milliseconds(5);
  if (mode.other_classes) {
    o.durability.keys = Durability::kBatched;
    o.durability.audit = Durability::kBatched;
    o.durability.cache = Durability::kSync;
    o.durability.analytics = Durability::kSync;
  }
  return o;
}

// A fresh store file, made once: copying it is much cheaper than running
// the migrations for every input.
const std::string& EmptyStoreBytes() {
  static const std::string* const bytes = new std::string(
      NewStoreBytes(FuzzOptions("", {}), "engines_template.db"));
  return *bytes;
}

class Run {
 public:
  Run(FuzzedDataProvider& in, std::string path, Mode mode)
      : in_(in),
        path_(std::move(path)),
        mode_(mode),
        cache_(in, mode.tight_cache),
        keys_(in),
        audit_(in),
        analytics_(in),
        messages_(in) {
    Open();
  }

  // CONVSTORE_FUZZ_VERBOSE=1 prints each step's call and time, to replay
  // one input by hand.
  void Step() {
    static const bool verbose =
        std::getenv("CONVSTORE_FUZZ_VERBOSE") != nullptr;
    const int op = in_.ConsumeIntegralInRange<int>(0, 29);
    const auto start = std::chrono::steady_clock::now();
    Do(op);
    if (verbose) {
      std::fprintf(
          stderr, "op %d: %lld ms\n", op,
          static_cast<long long>(std::chrono::duration_cast<milliseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count()));
    }
  }

  void Finish() {
    Reopen();
    Check(store_->Close().ok(), "last Close");
  }

 private:
  void Do(int op) {
    switch (op) {
      // clang-format off
      case 0: case 1: cache_.CacheSet(); break;
      case 2: case 3: cache_.CacheGet(); break;
      case 4: cache_.CacheDelete(); break;
      case 5: cache_.CacheTouch(); break;
      case 6: cache_.CacheIncrement(); break;
      case 7: keys_.CreateKey(); break;
      case 8: case 9: keys_.ValidateKey(); break;
      case 10: keys_.RevokeKey(); break;
      case 11: keys_.RotateKey(); break;
      case 12: keys_.ListKeys(); break;
      case 13: keys_.RateLimit(); break;
      case 14: audit_.RecordAudit(); break;
      case 15: audit_.QueryAudit(); break;
      case 16: audit_.VerifyAudit(); break;
      case 17: audit_.PruneAudit(); break;
      case 18: analytics_.RecordSession(); break;
      case 19: case 20: analytics_.RecordTurnOrSample(); break;
      case 21: analytics_.RecordMetricErrorEvent(); break;
      case 22: analytics_.GetSession(); break;
      case 23: analytics_.Queries(); break;
      case 24: analytics_.Cleanup(); break;
      case 25: analytics_.DeleteOrRepair(); break;
      case 26: messages_.Append(); break;
      case 27: messages_.PruneMessages(); break;
      case 28: Check(store_->Flush().ok(), "Flush"); break;
      default: if (++reopens_ <= 3) Reopen(); break;
        // clang-format on
    }
  }

  void Open() {
    StatusOr<std::unique_ptr<Store>> s = Store::Open(FuzzOptions(path_, mode_));
    Check(s.ok(), "open: " + s.status().ToString());
    store_ = std::move(s).value();
    cache_.set_store(store_.get());
    keys_.set_store(store_.get());
    audit_.set_store(store_.get());
    analytics_.set_store(store_.get());
    messages_.set_store(store_.get());
  }

  // Close, check the file and the closed store, reopen: everything
  // acknowledged is still there.
  void Reopen() {
    StatusOr<CloseReport> c = store_->Close();
    Check(c.ok(), "Close: " + c.status().ToString());
    Check(c->failed == 0 && c->remaining == 0, "Close left writes");
    CheckClosed();
    store_.reset();
    CheckIntegrity();
    Open();
    cache_.CheckAll();
    keys_.CheckAll();
    audit_.CheckAll();
    analytics_.CheckAll();
    messages_.CheckAll();
  }

  // Every call on a closed store is FailedPrecondition.
  void CheckClosed() {
    auto closed = [](const Status& s, const char* what) {
      Check(s.IsFailedPrecondition(),
            std::string(what) + " after Close: " + s.ToString());
    };
    closed(store_->cache().Get("n", "k").status(), "cache Get");
    closed(store_->cache().Set("n", "k", "v", milliseconds(0)), "cache Set");
    closed(store_->keys().ListKeys(std::nullopt).status(), "ListKeys");
    closed(store_->keys().CreateKey({"n", "o", {}, 0, 0, 0}).status(),
           "CreateKey");
    if (std::optional<std::string> secret = keys_.AnySecret()) {
      closed(store_->keys().ValidateKey(*secret).status(), "ValidateKey");
    }
    AuditEvent e{"fz", "x.y", "", "success", "", ""};
    closed(store_->audit().Record(e), "audit Record");
    closed(store_->audit().Verify().status(), "audit Verify");
    TurnMetrics t;
    t.session_id = "s0";
    closed(store_->analytics().RecordTurn(t), "RecordTurn");
    closed(store_->analytics().GetSession("s0").status(), "GetSession");
    MessageRetention r;
    r.max_messages_per_conversation = 1;
    closed(store_->PruneMessages(r).status(), "PruneMessages");
  }

  void CheckIntegrity() {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    Check(rc == SQLITE_OK, "sqlite3_open_v2");
    std::string result;
    rc = sqlite3_exec(
        db, "PRAGMA integrity_check",
        [](void* out, int, char** values, char**) {
          *static_cast<std::string*>(out) += values[0] ? values[0] : "NULL";
          return 0;
        },
        &result, nullptr);
    sqlite3_close(db);
    Check(rc == SQLITE_OK && result == "ok", "integrity_check: " + result);
  }

  FuzzedDataProvider& in_;
  const std::string path_;
  const Mode mode_;
  std::unique_ptr<Store> store_;
  // Reopens in this input: at most 3 (and the last one in Finish), since
  // each costs an open and a full check (15-40 ms).
  int reopens_ = 0;
  CacheOps cache_;
  KeyOps keys_;
  AuditOps audit_;
  AnalyticsOps analytics_;
  MessageOps messages_;
};

// libFuzzer's -timeout does not work here: its SIGALRM can land on one
// of the store's threads, where libFuzzer ignores it. So a thread of our
// own aborts an input that runs longer than CONVSTORE_FUZZ_TIMEOUT seconds
// (default 300: the slowest input seen on a loaded machine took 159 s by
// the wall clock, see docs/durability.md), after printing every thread's
// stack three times, 2 s apart, with gdb when CONVSTORE_FUZZ_GDB is set.
// Inputs are timed on the monotonic clock, and the report gives the
// process's CPU time and the wall clock's move over the same input: a
// spinning input burns CPU, a stalled one (a paused VM, memory pressure)
// does not, and a wall-clock step alone is not a slow input.
std::atomic<int64_t> input_started_ms{0};      // steady clock; 0: none yet
std::atomic<int64_t> input_started_cpu_ms{0};  // process CPU time
std::atomic<int64_t> input_started_wall_ms{0};

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

void MarkInputStart() {
  input_started_cpu_ms.store(ProcessCpuMs());
  input_started_wall_ms.store(Now() / 1000);
  input_started_ms.store(SteadyMs());
}

void StartWatchdog() {
  static const bool started = [] {
    const char* env = std::getenv("CONVSTORE_FUZZ_TIMEOUT");
    const int64_t limit_ms = (env != nullptr ? std::atoll(env) : 300) * 1000;
    std::thread([limit_ms] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const int64_t started_ms = input_started_ms.load();
        const int64_t ran_ms = SteadyMs() - started_ms;
        if (started_ms == 0 || ran_ms <= limit_ms) continue;
        std::fprintf(
            stderr,
            "fuzz check failed: input ran %lld ms (monotonic; limit %lld), "
            "process CPU %lld ms meanwhile, wall clock moved %lld ms\n",
            static_cast<long long>(ran_ms), static_cast<long long>(limit_ms),
            static_cast<long long>(ProcessCpuMs() -
                                   input_started_cpu_ms.load()),
            static_cast<long long>(Now() / 1000 -
                                   input_started_wall_ms.load()));
        if (std::getenv("CONVSTORE_FUZZ_GDB") != nullptr) {
          const std::string pid = std::to_string(getpid());
          const std::string cmd =
              "(ls -li " + ScratchDir().string() + "; ls -l /proc/" + pid +
              "/fd; cat /proc/locks; grep -E 'VmRSS|VmSwap' /proc/" + pid +
              "/status; cat /proc/pressure/cpu /proc/pressure/memory; "
              "for i in 1 2 3; do gdb -p " +
              pid + " -batch -ex 'thread apply all bt'; sleep 2; done) >&2";
          (void)std::system(cmd.c_str());
        }
        std::abort();
      }
    }).detach();
    return true;
  }();
  (void)started;
}

}  // namespace
}  // namespace convstore::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convstore::fuzz;
  if (size == 0) return 0;
  Mode mode;
  mode.tight_cache = (data[0] & 1) != 0;
  mode.other_classes = (data[0] & 2) != 0;
  StartWatchdog();
  MarkInputStart();
  const std::string path = (ScratchDir() / "engines.db").string();
  ResetDb(path, EmptyStoreBytes());
  FuzzedDataProvider in(data + 1, size - 1);
  Run run(in, path, mode);
  for (int step = 0; step < 48 && in.remaining_bytes() > 0; ++step) {
    run.Step();
  }
  run.Finish();
  input_started_ms.store(0);
  return 0;
}
