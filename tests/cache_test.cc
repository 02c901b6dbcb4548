// Copyright 2026 The convstore Authors.
//
// The key-value cache (include/convstore/cache.h). Unit tests drive
// CacheImpl on a recording WritePath and a fake clock, so expiry and the
// sweep are exact; store tests run the whole path (queue, writer, SQLite)
// and reopen the file to check what survives a restart.

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "cache/cache_impl.h"
#include "convstore/convstore.h"
#include "dead_letter.h"
#include "logging.h"
#include "mutex.h"
#include "sqlite/fault_vfs.h"
#include "testutil.h"
#include "validation.h"
#include "write_path.h"

namespace convstore {
namespace {

using internal::CacheDelete;
using internal::CacheImpl;
using internal::CacheOp;
using internal::CachePurgeExpired;
using internal::CacheUpsert;
using std::chrono::milliseconds;
using test::OpenOrDie;
using test::TempDir;
using test::TestOptions;

constexpr int64_t kT0 = 1'700'000'000'000'000;  // fake wall clock start

// Records every submitted cache op in LSN order. `full` makes every
// non-sync submit fail with ResourceExhausted (a full queue); `shed` fails
// only best-effort ones (a queue past 3/4).
class RecordingWritePath final : public internal::WritePath {
 public:
  StatusOr<uint64_t> Submit(internal::WritePayload payload, size_t bytes,
                            Durability durability,
                            milliseconds sync_timeout) override {
    (void)sync_timeout;
    if (full.load() || (shed.load() && durability == Durability::kBestEffort)) {
      return Status::ResourceExhausted("queue full");
    }
    internal::MutexLock lock(&mu_);
    ops_.push_back(*std::get<internal::Boxed<CacheOp>>(payload));
    durabilities_.push_back(durability);
    bytes_.push_back(bytes);
    return static_cast<uint64_t>(ops_.size());
  }
  StatusOr<uint64_t> SubmitApplied(internal::WritePayload payload, size_t bytes,
                                   milliseconds sync_timeout) override {
    return Submit(std::move(payload), bytes, Durability::kSync, sync_timeout);
  }
  Status Reserve(size_t bytes, Durability durability) override {
    (void)bytes;
    if (full.load() || (shed.load() && durability == Durability::kBestEffort)) {
      return Status::ResourceExhausted("queue full");
    }
    if (on_reserve) on_reserve();  // the time a wait for room takes
    outstanding.fetch_add(1);
    return Status::OK();
  }
  std::function<void()> on_reserve;
  StatusOr<uint64_t> SubmitReserved(internal::WritePayload payload,
                                    size_t bytes,
                                    Durability durability) override {
    outstanding.fetch_sub(1);
    internal::MutexLock lock(&mu_);
    ops_.push_back(*std::get<internal::Boxed<CacheOp>>(payload));
    durabilities_.push_back(durability);
    bytes_.push_back(bytes);
    return static_cast<uint64_t>(ops_.size());
  }
  void CancelReserved(size_t bytes) override {
    (void)bytes;
    outstanding.fetch_sub(1);
  }
  Status ReserveBestEffortUncounted(size_t bytes) override {
    return Reserve(bytes, Durability::kBestEffort);
  }
  void NoteShed() override { shed_notes.fetch_add(1); }
  uint64_t DurableLsn() const override {
    internal::MutexLock lock(&mu_);
    return ops_.size();
  }
  std::vector<CacheOp> ops() const {
    internal::MutexLock lock(&mu_);
    return ops_;
  }
  std::vector<Durability> durabilities() const {
    internal::MutexLock lock(&mu_);
    return durabilities_;
  }
  // The queue bytes each op was charged, in LSN order.
  std::vector<size_t> op_bytes() const {
    internal::MutexLock lock(&mu_);
    return bytes_;
  }

  std::atomic<bool> full{false};
  std::atomic<bool> shed{false};
  // Reservations neither submitted nor cancelled (0 between calls).
  std::atomic<int> outstanding{0};
  // Shed writes reported applied (Stats::best_effort_shed in a store).
  std::atomic<int> shed_notes{0};

 private:
  mutable internal::Mutex mu_;
  std::vector<CacheOp> ops_ ABSL_GUARDED_BY(mu_);
  std::vector<Durability> durabilities_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> bytes_ ABSL_GUARDED_BY(mu_);
};

// A store on the fault VFS whose commits a test can hold back
// (FailWrites): quiet, and retrying quickly once they may go through.
// Installs the VFS and resets its faults.
Options HeldBackOptions(const TempDir& dir, internal::FaultVfs** vfs) {
  StatusOr<internal::FaultVfs*> installed = internal::FaultVfs::Install();
  REQUIRE(installed.ok());
  *vfs = *installed;
  (*vfs)->Reset();
  Options o = TestOptions(dir);
  o.sqlite_vfs = internal::FaultVfs::kName;
  o.log_level = LogLevel::kOff;
  o.retry_initial_backoff = milliseconds(2);
  o.retry_max_backoff = milliseconds(20);
  o.retry_budget = std::chrono::seconds(30);
  return o;
}

// A CacheImpl on a RecordingWritePath and a clock the test moves.
struct Harness {
  explicit Harness(Options o = Options()) : options(std::move(o)) {
    options.log_level = LogLevel::kError;
    cache = std::make_unique<CacheImpl>(
        options, &path, nullptr, [](uint64_t) { return Status::OK(); },
        [this] { return now.load(); }, internal::MakeLogger(options));
  }
  void Advance(milliseconds d) { now.fetch_add(d.count() * 1000); }

  Options options;
  RecordingWritePath path;
  std::atomic<int64_t> now{kT0};
  std::unique_ptr<CacheImpl> cache;
};

std::string GetOr(Cache& c, std::string_view ns, std::string_view key,
                  std::string missing = "<missing>") {
  StatusOr<std::string> r = c.Get(ns, key);
  if (!r.ok()) {
    INFO(r.status().ToString());
    REQUIRE(r.status().IsNotFound());
    return missing;
  }
  return *r;
}

TEST_CASE("expiry is judged after waiting for queue room", "[cache]") {
  // The time was read before the wait: a rate-limit counter whose window
  // ended during it counted on (and was written already expired), Touch
  // revived an expired entry, and Set's entry lived `ttl` less the wait.
  Harness h;
  Cache& c = *h.cache;
  REQUIRE(c.Increment("rl", "ip", 60, milliseconds(1000)).ok());
  h.Advance(milliseconds(500));
  REQUIRE(c.Set("s", "t", "v", milliseconds(1200)).ok());
  h.path.on_reserve = [&] { h.Advance(milliseconds(1000)); };
  StatusOr<int64_t> n = c.Increment("rl", "ip", 1, milliseconds(1000));
  REQUIRE(n.ok());
  CHECK(*n == 1);  // a new window, not 61
  CHECK(c.Touch("s", "t", milliseconds(1000)).code() == StatusCode::kNotFound);
  REQUIRE(c.Set("s", "fresh", "v", milliseconds(1500)).ok());
  h.path.on_reserve = nullptr;
  h.Advance(milliseconds(1400));
  CHECK(GetOr(c, "s", "fresh") == "v");  // 1.5 s from its write
}

int64_t CountRows(const std::string& db_path, const char* where = "1") {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  std::string sql =
      std::string("SELECT count(*) FROM cache_entries WHERE ") + where;
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

TEST_CASE("Cache Set, Get and Delete round-trip and queue ordered ops",
          "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  REQUIRE(c.Set("tools", "weather", "sunny", milliseconds(0)).ok());
  REQUIRE(
      c.Set("tools", "other", std::string("a\0b", 3), milliseconds(0)).ok());
  CHECK(GetOr(c, "tools", "weather") == "sunny");
  CHECK(GetOr(c, "tools", "other") == std::string("a\0b", 3));
  CHECK(GetOr(c, "other-ns", "weather") == "<missing>");
  REQUIRE(c.Set("tools", "weather", "rain", milliseconds(0)).ok());
  CHECK(GetOr(c, "tools", "weather") == "rain");
  REQUIRE(c.Delete("tools", "weather").ok());
  CHECK(GetOr(c, "tools", "weather") == "<missing>");
  // Deleting a missing entry is OK and still reaches the database.
  REQUIRE(c.Delete("tools", "never-set").ok());

  std::vector<CacheOp> ops = h.path.ops();
  REQUIRE(ops.size() == 5);
  CHECK(std::get<CacheUpsert>(ops[0].record).key == "weather");
  CHECK(*std::get<CacheUpsert>(ops[0].record).value == "sunny");
  CHECK(*std::get<CacheUpsert>(ops[2].record).value == "rain");
  CHECK(std::get<CacheDelete>(ops[3].record).key == "weather");
  CHECK(std::get<CacheDelete>(ops[4].record).key == "never-set");
  // Upserts are best-effort by default; deletes are never shed.
  std::vector<Durability> d = h.path.durabilities();
  CHECK(d[0] == Durability::kBestEffort);
  CHECK(d[3] == Durability::kBatched);

  CacheStats st = c.GetStats();
  CHECK(st.entries == 1);
  CHECK(st.hits == 3);
  CHECK(st.misses == 2);
  CHECK(st.bytes > 0);
}

TEST_CASE("Cache refuses bad input with InvalidArgument and changes nothing",
          "[cache]") {
  Options o;
  o.cache_max_value_bytes = 1000;
  Harness h(o);
  Cache& c = *h.cache;
  REQUIRE(c.Set("ns", "k", "v", milliseconds(0)).ok());
  const std::string long_ns(257, 'n');
  const std::string long_key(1025, 'k');
  const std::string big(1001, 'x');
  const std::string nul("a\0b", 3);
  const std::string bad_utf8("\xff\xfe");
  auto invalid = [](const Status& s) {
    INFO(s.ToString());
    CHECK(s.IsInvalidArgument());
  };
  invalid(c.Set("", "k", "v", milliseconds(0)));
  invalid(c.Set("ns", "", "v", milliseconds(0)));
  invalid(c.Set(long_ns, "k", "v", milliseconds(0)));
  invalid(c.Set("ns", long_key, "v", milliseconds(0)));
  invalid(c.Set(nul, "k", "v", milliseconds(0)));
  invalid(c.Set("ns", bad_utf8, "v", milliseconds(0)));
  invalid(c.Set("ns", "k", big, milliseconds(0)));
  invalid(c.Set("ns", "k", "v", milliseconds(-1)));
  invalid(c.Touch("ns", "k", milliseconds(-5)));
  invalid(c.Increment("ns", "n", 1, milliseconds(-1)).status());
  invalid(c.Get("", "k").status());
  invalid(c.Get("ns", long_key).status());
  invalid(c.Delete(long_ns, "k"));
  // Exactly at the limits is fine.
  CHECK(c.Set(std::string(256, 'n'), std::string(1024, 'k'),
              std::string(1000, 'x'), milliseconds(0))
            .ok());
  CHECK(GetOr(c, "ns", "k") == "v");
  CHECK(h.path.ops().size() == 2);
}

TEST_CASE("Cache entry expires on read at its TTL", "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  REQUIRE(c.Set("s", "k", "v", milliseconds(1000)).ok());
  REQUIRE(c.Set("s", "forever", "v", milliseconds(0)).ok());
  CHECK(std::get<CacheUpsert>(h.path.ops()[0].record).expires_at_us ==
        kT0 + 1'000'000);
  CHECK(std::get<CacheUpsert>(h.path.ops()[1].record).expires_at_us == 0);
  h.Advance(milliseconds(999));
  CHECK(GetOr(c, "s", "k") == "v");
  h.Advance(milliseconds(1));
  CHECK(GetOr(c, "s", "k") == "<missing>");
  h.Advance(std::chrono::hours(24 * 365));
  CHECK(GetOr(c, "s", "forever") == "v");
  CacheStats st = c.GetStats();
  CHECK(st.expirations == 1);
  CHECK(st.entries == 1);
  CHECK(st.misses == 1);
}

TEST_CASE("Cache Touch gives a live entry a new expiry", "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  REQUIRE(c.Set("s", "k", "v", milliseconds(100)).ok());
  h.Advance(milliseconds(90));
  REQUIRE(c.Touch("s", "k", milliseconds(100)).ok());
  h.Advance(milliseconds(90));
  CHECK(GetOr(c, "s", "k") == "v");
  REQUIRE(c.Touch("s", "k", milliseconds(0)).ok());  // never expires now
  h.Advance(std::chrono::hours(1));
  CHECK(GetOr(c, "s", "k") == "v");
  CHECK(c.Touch("s", "missing", milliseconds(10)).IsNotFound());
  REQUIRE(c.Set("s", "short", "v", milliseconds(10)).ok());
  h.Advance(milliseconds(10));
  CHECK(c.Touch("s", "short", milliseconds(10)).IsNotFound());
  CHECK(h.path.outstanding.load() == 0);
  // The touches were persisted as upserts carrying the same value.
  std::vector<CacheOp> ops = h.path.ops();
  REQUIRE(ops.size() == 4);
  const auto& touched = std::get<CacheUpsert>(ops[2].record);
  CHECK(*touched.value == "v");
  CHECK(touched.expires_at_us == 0);
}

TEST_CASE("Cache Touch charges the queue for the value it carries", "[cache]") {
  // Touch reserved room for the names and 512 bytes whatever the value,
  // while its upsert carries (and the writer rewrites) the whole value:
  // Touches of large values went past the queue's and batches' byte
  // bounds.
  Harness h;
  Cache& c = *h.cache;
  auto last_charge = [&] {
    const std::vector<CacheOp> ops = h.path.ops();
    const std::vector<size_t> bytes = h.path.op_bytes();
    REQUIRE(!ops.empty());
    const auto& up = std::get<CacheUpsert>(ops.back().record);
    INFO("value " << up.value->size() << " bytes, charged " << bytes.back());
    CHECK(bytes.back() >= up.value->size());
    return bytes.back();
  };
  const std::string big(100'000, 'b');
  REQUIRE(c.Set("n", "k", big, milliseconds(0)).ok());
  const size_t set_charge = last_charge();
  for (int i = 0; i < 3; ++i) {
    REQUIRE(c.Touch("n", "k", milliseconds(1000)).ok());
    CHECK(last_charge() == set_charge);  // what Set charged for it
  }
  // A value grown while the Touch waited for room: the smaller room is
  // given back and room for the new value taken.
  REQUIRE(c.Set("n", "g", "small", milliseconds(0)).ok());
  std::atomic<bool> grow{true};
  h.path.on_reserve = [&] {
    if (grow.exchange(false)) {
      CHECK(c.Set("n", "g", big, milliseconds(0)).ok());
    }
  };
  REQUIRE(c.Touch("n", "g", milliseconds(0)).ok());
  h.path.on_reserve = nullptr;
  CHECK(*std::get<CacheUpsert>(h.path.ops().back().record).value == big);
  CHECK(last_charge() == set_charge);
  CHECK(h.path.outstanding.load() == 0);
  // Nothing to touch: no room taken at all.
  CHECK(c.Touch("n", "missing", milliseconds(0)).IsNotFound());
  CHECK(h.path.outstanding.load() == 0);
}

TEST_CASE("Cache values either side of the inline bound round-trip exactly",
          "[cache]") {
  // Values up to kCacheInlineValueMax bytes live in the entry's own block,
  // longer ones in a shared string; rewrites move an entry between the two.
  Harness h;
  Cache& c = *h.cache;
  const size_t bound = internal::kCacheInlineValueMax;
  auto value = [](size_t n, char first) {
    std::string v(n, 'x');
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>(first + i % 23);
    return v;
  };
  const size_t sizes[] = {0, 1, 15, 16, bound - 1, bound, bound + 1, 4096};
  char first = 'a';
  for (size_t n : sizes) {
    const std::string v = value(n, first++);
    REQUIRE(c.Set("s", "k", v, milliseconds(0)).ok());
    REQUIRE(c.Set("s", "k" + std::to_string(n), v, milliseconds(0)).ok());
    INFO("value bytes " << n);
    CHECK(GetOr(c, "s", "k") == v);
    // Touch queues the value it has (copied or shared) and keeps it.
    REQUIRE(c.Touch("s", "k", milliseconds(0)).ok());
    CHECK(*std::get<CacheUpsert>(h.path.ops().back().record).value == v);
    CHECK(GetOr(c, "s", "k") == v);
  }
  // Every key written once still holds its own value.
  first = 'a';
  for (size_t n : sizes) {
    CHECK(GetOr(c, "s", "k" + std::to_string(n)) == value(n, first++));
  }
  CacheStats st = c.GetStats();
  CHECK(st.entries == std::size(sizes) + 1);
  // A counter grows from inline text and stays exact.
  REQUIRE(c.Increment("s", "n", 41, milliseconds(0)).ok());
  CHECK(*c.Increment("s", "n", 1, milliseconds(0)) == 42);
  CHECK(GetOr(c, "s", "n") == "42");
}

TEST_CASE("Cache sweep drops expired entries and queues purges", "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  for (int i = 0; i < 600; ++i) {
    REQUIRE(
        c.Set("s", "short" + std::to_string(i), "v", milliseconds(10 + i % 3))
            .ok());
  }
  REQUIRE(c.Set("s", "long", "v", milliseconds(60'000)).ok());
  REQUIRE(c.Set("s", "forever", "v", milliseconds(0)).ok());
  h.cache->SweepOnce();
  CHECK(c.GetStats().entries == 602);  // nothing expired yet
  h.Advance(milliseconds(12));
  h.cache->SweepOnce();
  CacheStats st = c.GetStats();
  CHECK(st.entries == 2);
  CHECK(st.expirations == 600);
  CHECK(st.hits + st.misses == 0);  // the sweep is not a read
  CHECK(GetOr(c, "s", "long") == "v");
  CHECK(GetOr(c, "s", "forever") == "v");
}

TEST_CASE("Cache evicts least recently used entries at its byte bound",
          "[cache]") {
  Options o;
  o.cache_entries_shards = 1;
  const size_t per_entry =
      internal::CacheEntryBytes("s", "k00", 1000);  // all keys 3 bytes
  o.cache_entries_max_bytes = per_entry * 10;
  Harness h(o);
  Cache& c = *h.cache;
  const std::string value(1000, 'x');
  auto key = [](int i) {
    return std::string("k") + (i < 10 ? "0" : "") + std::to_string(i);
  };
  for (int i = 0; i < 10; ++i) {
    REQUIRE(c.Set("s", key(i), value, milliseconds(0)).ok());
  }
  CHECK(c.GetStats().entries == 10);
  CHECK(c.GetStats().evictions == 0);
  REQUIRE(GetOr(c, "s", key(0)) == value);  // k00 is now recently used
  REQUIRE(c.Set("s", key(10), value, milliseconds(0)).ok());
  REQUIRE(c.Set("s", key(11), value, milliseconds(0)).ok());
  CacheStats st = c.GetStats();
  CHECK(st.entries == 10);
  CHECK(st.evictions == 2);
  CHECK(st.bytes <= o.cache_entries_max_bytes);
  CHECK(GetOr(c, "s", key(0)) == value);
  CHECK(GetOr(c, "s", key(1)) == "<missing>");
  CHECK(GetOr(c, "s", key(2)) == "<missing>");
  CHECK(GetOr(c, "s", key(3)) == value);
  // The evicted rows are deleted from the database too.
  std::vector<std::string> deleted;
  for (const CacheOp& op : h.path.ops()) {
    if (const auto* d = std::get_if<CacheDelete>(&op.record)) {
      deleted.push_back(d->key);
    }
  }
  CHECK(deleted == std::vector<std::string>{key(1), key(2)});
  // An entry that cannot fit the bound at all is refused, not evicting all.
  CHECK(c.Set("s", "huge", std::string(per_entry * 10, 'x'), milliseconds(0))
            .IsInvalidArgument());
  CHECK(c.GetStats().entries == 10);
}

TEST_CASE(
    "Cache eviction gives read entries a second chance and holds the bound",
    "[cache]") {
  Options o;
  o.cache_entries_shards = 1;
  o.cache_entries_max_bytes = internal::CacheEntryBytes("s", "k0", 100) * 4;
  Harness h(o);
  Cache& c = *h.cache;
  const std::string value(100, 'v');
  auto key = [](int i) { return "k" + std::to_string(i); };
  for (int i = 0; i < 4; ++i) {
    REQUIRE(c.Set("s", key(i), value, milliseconds(0)).ok());
  }
  // Every entry read: the walk clears all flags, then evicts the oldest.
  for (int i = 0; i < 4; ++i) REQUIRE(GetOr(c, "s", key(i)) == value);
  REQUIRE(c.Set("s", key(4), value, milliseconds(0)).ok());
  CacheStats st = c.GetStats();
  CHECK(st.entries == 4);
  CHECK(st.evictions == 1);
  CHECK(st.bytes <= o.cache_entries_max_bytes);
  // k1 read again: k2 is now the oldest unreferenced entry (k4, written
  // last, is not passed over for it).
  REQUIRE(GetOr(c, "s", key(1)) == value);
  REQUIRE(c.Set("s", key(5), value, milliseconds(0)).ok());
  st = c.GetStats();
  CHECK(st.entries == 4);
  CHECK(st.evictions == 2);
  CHECK(st.bytes <= o.cache_entries_max_bytes);
  std::vector<std::string> deleted;
  for (const CacheOp& op : h.path.ops()) {
    if (const auto* d = std::get_if<CacheDelete>(&op.record)) {
      deleted.push_back(d->key);
    }
  }
  CHECK(deleted == std::vector<std::string>{key(0), key(2)});
  CHECK(GetOr(c, "s", key(0)) == "<missing>");
  CHECK(GetOr(c, "s", key(2)) == "<missing>");
  for (int i : {1, 3, 4, 5}) CHECK(GetOr(c, "s", key(i)) == value);
}

TEST_CASE("Cache eviction drops expired entries before live ones", "[cache]") {
  // The walk went by recency and the second-chance mark only: a live entry
  // without expiry was evicted (its row deleted too) while an expired one,
  // never to be served again, kept its bytes.
  Options o;
  o.cache_entries_shards = 1;
  o.cache_sweep_interval = milliseconds(0);
  const std::string value(200, 'x');
  const size_t per = internal::CacheEntryBytes("n", "k0", value.size());
  o.cache_entries_max_bytes = per * 2 + 10;  // two entries
  Harness h(o);
  Cache& c = *h.cache;
  REQUIRE(c.Set("n", "k0", value, milliseconds(0)).ok());   // live, oldest
  REQUIRE(c.Set("n", "k1", value, milliseconds(10)).ok());  // expires
  REQUIRE(GetOr(c, "n", "k1") == value);  // marked: a second chance if live
  h.Advance(milliseconds(20));            // k1 expired; no sweep removed it
  REQUIRE(c.Set("n", "k2", value, milliseconds(0)).ok());
  CacheStats st = c.GetStats();
  CHECK(st.evictions == 0);
  CHECK(st.expirations == 1);
  CHECK(st.entries == 2);
  CHECK(st.bytes <= o.cache_entries_max_bytes);
  CHECK(GetOr(c, "n", "k0") == value);
  CHECK(GetOr(c, "n", "k2") == value);
  // No delete was queued: the expired row goes with the purges of expired
  // rows, the live one stays on disk.
  auto deletes = [&] {
    std::vector<std::string> keys;
    for (const CacheOp& op : h.path.ops()) {
      if (const auto* d = std::get_if<CacheDelete>(&op.record)) {
        keys.push_back(d->key);
      }
    }
    return keys;
  };
  CHECK(deletes().empty());
  // With nothing expired, live entries go by second chance as before: k0
  // and k2 were both read just now, so the walk unmarks both and evicts
  // the older, k0.
  REQUIRE(c.Set("n", "k3", value, milliseconds(0)).ok());
  st = c.GetStats();
  CHECK(st.evictions == 1);
  CHECK(st.expirations == 1);
  CHECK(deletes() == std::vector<std::string>{"k0"});
  CHECK(GetOr(c, "n", "k2") == value);
  CHECK(GetOr(c, "n", "k3") == value);
}

TEST_CASE("Cache bound is cache-wide: a big entry evicts from other shards",
          "[cache]") {
  Options o;
  o.cache_entries_shards = 16;
  const std::string value(100, 'v');
  const size_t small = internal::CacheEntryBytes("s", "k00", value.size());
  o.cache_entries_max_bytes = small * 64;  // 1/16 of it would hold 4
  Harness h(o);
  Cache& c = *h.cache;
  auto key = [](int i) {
    return std::string("k") + (i < 10 ? "0" : "") + std::to_string(i);
  };
  for (int i = 0; i < 64; ++i) {
    REQUIRE(c.Set("s", key(i), value, milliseconds(0)).ok());
  }
  // The whole bound fills, however unevenly the keys hash over the shards.
  CacheStats st = c.GetStats();
  CHECK(st.entries == 64);
  CHECK(st.evictions == 0);
  CHECK(st.bytes == o.cache_entries_max_bytes);
  // Half the bound in one entry: far more than its own shard holds, so
  // the other shards give way.
  const std::string big(small * 32, 'b');
  REQUIRE(c.Set("s", "big", big, milliseconds(0)).ok());
  st = c.GetStats();
  CHECK(st.bytes <= o.cache_entries_max_bytes);
  CHECK(st.evictions >= 32);
  CHECK(st.entries == 65 - st.evictions);
  CHECK(GetOr(c, "s", "big") == big);
  // Each evicted entry is gone from memory and its row's delete is queued.
  std::vector<std::string> deleted;
  for (const CacheOp& op : h.path.ops()) {
    if (const auto* d = std::get_if<CacheDelete>(&op.record)) {
      deleted.push_back(d->key);
    }
  }
  CHECK(deleted.size() == st.evictions);
  for (const std::string& k : deleted) CHECK(GetOr(c, "s", k) == "<missing>");
  int live = 0;
  for (int i = 0; i < 64; ++i) live += GetOr(c, "s", key(i)) == value;
  CHECK(live == static_cast<int>(st.entries) - 1);
  // An entry larger than the whole bound is still refused.
  CHECK(c.Set("s", "huge", std::string(o.cache_entries_max_bytes, 'x'),
              milliseconds(0))
            .IsInvalidArgument());
}

TEST_CASE("Cache holds its cache-wide bound under concurrent writers",
          "[cache]") {
  Options o;
  o.cache_entries_shards = 8;
  o.cache_entries_max_bytes = 64 << 10;
  Harness h(o);
  Cache& c = *h.cache;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1500;
  std::atomic<int> failed{0};  // Catch2 assertions are not thread-safe
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Mostly small values, every 50th a quarter of the bound.
        const size_t n = i % 50 == 0 ? (16 << 10) : 200 + i % 300;
        const std::string k = std::to_string(t) + ":" + std::to_string(i);
        const char fill = static_cast<char>('a' + t);
        if (!c.Set("s", k, std::string(n, fill), milliseconds(0)).ok()) {
          failed.fetch_add(1);
        }
        (void)c.Get("s", std::to_string(t) + ":" + std::to_string(i / 2));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failed.load() == 0);
  CacheStats st = c.GetStats();
  CHECK(st.bytes <= o.cache_entries_max_bytes);
  // Every key was written once: each is either held or evicted.
  CHECK(st.entries + st.evictions == kThreads * kPerThread);
  size_t deletes = 0;
  for (const CacheOp& op : h.path.ops()) {
    deletes += std::holds_alternative<CacheDelete>(op.record);
  }
  CHECK(deletes == st.evictions);
}

TEST_CASE("Cache Increment counts, keeps its window and refuses non-counters",
          "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  StatusOr<int64_t> r = c.Increment("rate", "u1", 1, milliseconds(1000));
  REQUIRE(r.ok());
  CHECK(*r == 1);
  h.Advance(milliseconds(600));
  // A later increment with another ttl keeps the window of the first.
  r = c.Increment("rate", "u1", 5, milliseconds(1000));
  REQUIRE(r.ok());
  CHECK(*r == 6);
  CHECK(GetOr(c, "rate", "u1") == "6");
  h.Advance(milliseconds(400));
  r = c.Increment("rate", "u1", 1, milliseconds(1000));
  REQUIRE(r.ok());
  CHECK(*r == 1);  // new window
  r = c.Increment("rate", "u1", -3, milliseconds(0));
  REQUIRE(r.ok());
  CHECK(*r == -2);

  REQUIRE(c.Set("rate", "text", "hello", milliseconds(0)).ok());
  CHECK(c.Increment("rate", "text", 1, milliseconds(0))
            .status()
            .IsFailedPrecondition());
  CHECK(GetOr(c, "rate", "text") == "hello");
  REQUIRE(c.Set("rate", "big",
                std::to_string(std::numeric_limits<int64_t>::max()),
                milliseconds(0))
              .ok());
  CHECK(c.Increment("rate", "big", 1, milliseconds(0))
            .status()
            .IsInvalidArgument());
  CHECK(h.path.outstanding.load() == 0);  // refused: queue room given back
  // The counter's last state went to the database as decimal text.
  const std::vector<CacheOp> ops = h.path.ops();
  const auto& last = std::get<CacheUpsert>(ops[3].record);
  CHECK(*last.value == "-2");
  CHECK(last.expires_at_us == kT0 + 2'000'000);
}

TEST_CASE("Cache Increment from many threads loses no count", "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        (void)c.Increment("usage", "tokens", 3, milliseconds(0));
        (void)c.Increment("usage", "t" + std::to_string(t % 2), 1,
                          milliseconds(0));
        (void)c.Get("usage", "tokens");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(GetOr(c, "usage", "tokens") ==
        std::to_string(3 * kThreads * kPerThread));
  CHECK(GetOr(c, "usage", "t0") == std::to_string(kThreads / 2 * kPerThread));
  CHECK(GetOr(c, "usage", "t1") == std::to_string(kThreads / 2 * kPerThread));
  // Per key, the queued values increase in LSN order (memory order).
  int64_t last = 0;
  for (const CacheOp& op : h.path.ops()) {
    const auto& up = std::get<CacheUpsert>(op.record);
    if (up.key != "tokens") continue;
    CHECK(std::stoll(*up.value) == last + 3);
    last = std::stoll(*up.value);
  }
  CHECK(last == 3 * kThreads * kPerThread);
}

TEST_CASE("Cache: a shed write is served from memory; a full queue fails",
          "[cache]") {
  Harness h;
  Cache& c = *h.cache;
  REQUIRE(c.Set("s", "k", "old", milliseconds(0)).ok());
  h.path.shed = true;
  REQUIRE(c.Set("s", "k", "new", milliseconds(0)).ok());
  CHECK(GetOr(c, "s", "k") == "new");
  CHECK(c.GetStats().persist_shed == 1);
  // A delete is never shed: it takes the batched path and lands.
  REQUIRE(c.Delete("s", "k").ok());
  CHECK(GetOr(c, "s", "k") == "<missing>");
  CHECK(h.path.ops().size() == 2);
  // A queue full for batched writes too: the delete fails and memory keeps
  // the entry (nothing half-done).
  h.path.shed = false;
  REQUIRE(c.Set("s", "k2", "v", milliseconds(0)).ok());
  h.path.full = true;
  CHECK(c.Delete("s", "k2").IsResourceExhausted());
  CHECK(GetOr(c, "s", "k2") == "v");
}

TEST_CASE("Cache counts a shed only for a write it applied", "[cache]") {
  // The shed was counted when queue room was refused, before the call
  // knew whether it would change anything: a Touch of a missing entry or a
  // refused Increment counted in persist_shed (and best_effort_shed).
  Harness h;
  Cache& c = *h.cache;
  REQUIRE(c.Set("n", "text", "abc", milliseconds(0)).ok());
  REQUIRE(c.Set("n", "max", std::to_string(std::numeric_limits<int64_t>::max()),
                milliseconds(0))
              .ok());
  REQUIRE(c.Set("n", "short", "v", milliseconds(10)).ok());
  h.Advance(milliseconds(10));
  h.path.shed = true;
  // Refused: nothing changed, so nothing was shed.
  CHECK(c.Touch("n", "missing", milliseconds(1000)).IsNotFound());
  CHECK(c.Touch("n", "short", milliseconds(1000)).IsNotFound());
  CHECK(c.Increment("n", "text", 1, milliseconds(0))
            .status()
            .IsFailedPrecondition());
  CHECK(
      c.Increment("n", "max", 1, milliseconds(0)).status().IsInvalidArgument());
  CHECK(c.GetStats().persist_shed == 0);
  CHECK(h.path.shed_notes.load() == 0);
  // Applied in memory without being queued: each counts once.
  REQUIRE(c.Set("n", "text", "def", milliseconds(0)).ok());
  REQUIRE(c.Touch("n", "text", milliseconds(1000)).ok());
  StatusOr<int64_t> n = c.Increment("n", "count", 5, milliseconds(0));
  REQUIRE(n.ok());
  CHECK(*n == 5);
  CHECK(GetOr(c, "n", "text") == "def");
  CHECK(c.GetStats().persist_shed == 3);
  CHECK(h.path.shed_notes.load() == 3);
  CHECK(h.path.ops().size() == 3);  // only the writes before shedding
  CHECK(h.path.outstanding.load() == 0);
}

TEST_CASE("Cache calls fail with FailedPrecondition once stopped", "[cache]") {
  Harness h;
  REQUIRE(h.cache->Set("s", "k", "v", milliseconds(0)).ok());
  h.cache->Stop();
  h.cache->Stop();  // idempotent
  CHECK(h.cache->Get("s", "k").status().IsFailedPrecondition());
  CHECK(h.cache->Set("s", "k", "v", milliseconds(0)).IsFailedPrecondition());
}

TEST_CASE("Cache writes the database refuses become described dead letters",
          "[cache]") {
  internal::WriteOp op;
  op.lsn = 42;
  CacheUpsert up;
  up.ns = "tools";
  up.key = "k";
  up.value = std::make_shared<const std::string>(std::string("\xff\0", 2));
  up.expires_at_us = 123;
  op.payload = CacheOp{up};
  DeadLetter d = internal::MakeDeadLetter(op, Status::InvalidArgument("no"));
  CHECK(d.lsn == 42);
  CHECK(d.kind == "cache_upsert");
  CHECK(d.key == "tools/k");
  CHECK(d.payload.find("\"value_base64\":\"/wA=\"") != std::string::npos);
  CHECK(d.payload.find("\"expires_at_us\":123") != std::string::npos);
  op.payload = CacheOp{CacheDelete{"tools", "k"}};
  d = internal::MakeDeadLetter(op, Status::InvalidArgument("no"));
  CHECK(d.kind == "cache_delete");
  CHECK(d.key == "tools/k");
  op.payload = CacheOp{CachePurgeExpired{5, 256}};
  CHECK(internal::MakeDeadLetter(op, Status::InvalidArgument("no")).kind ==
        "cache_purge");
}

// ------------------------------------------------------------------ Store

TEST_CASE(
    "Store cache survives a restart: live entries back, expired and "
    "deleted ones not",
    "[cache][restart]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.cache = Durability::kBatched;  // nothing shed in this test
  o.cache_sweep_interval = milliseconds(0);
  {
    auto store = OpenOrDie(o);
    Cache& c = store->cache();
    REQUIRE(c.Set("tools", "hour", "h", std::chrono::hours(1)).ok());
    REQUIRE(c.Set("tools", "forever", std::string("\0bin", 4), milliseconds(0))
                .ok());
    REQUIRE(c.Set("tools", "short", "s", milliseconds(200)).ok());
    REQUIRE(c.Set("tools", "gone", "g", std::chrono::hours(1)).ok());
    REQUIRE(c.Delete("tools", "gone").ok());
    REQUIRE(c.Set("tools", "set-again", "1", std::chrono::hours(1)).ok());
    REQUIRE(c.Delete("tools", "set-again").ok());
    REQUIRE(c.Set("tools", "set-again", "2", std::chrono::hours(1)).ok());
    for (int i = 0; i < 7; ++i) {
      REQUIRE(c.Increment("usage", "calls", 1, std::chrono::hours(1)).ok());
    }
    REQUIRE(store->Close().ok());
  }
  std::this_thread::sleep_for(milliseconds(300));  // "short" is expired now
  CHECK(CountRows(o.path) == 5);  // the expired row is still on disk
  {
    auto store = OpenOrDie(o);
    Cache& c = store->cache();
    CHECK(GetOr(c, "tools", "hour") == "h");
    CHECK(GetOr(c, "tools", "forever") == std::string("\0bin", 4));
    CHECK(GetOr(c, "tools", "short") == "<missing>");
    CHECK(GetOr(c, "tools", "gone") == "<missing>");
    CHECK(GetOr(c, "tools", "set-again") == "2");
    CHECK(GetOr(c, "usage", "calls") == "7");
    StatusOr<int64_t> n = c.Increment("usage", "calls", 1, milliseconds(0));
    REQUIRE(n.ok());
    CHECK(*n == 8);
    CacheStats st = c.GetStats();
    CHECK(st.reloaded == 4);
    CHECK(st.expirations == 0);  // never loaded, so never expired in memory
    REQUIRE(store->Close().ok());
  }
  // With no sweep thread, Open itself queued the expired row's deletion.
  CHECK(CountRows(o.path) == 4);
}

TEST_CASE("Store cache: Open without a sweep deletes every expired row",
          "[cache][restart]") {
  // Reload queued at most 64 purges of 256 rows, as one sweep tick does:
  // with no sweep thread to delete the rest, 20,000 expired rows left
  // 3,616 in the file for good.
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.cache = Durability::kBatched;
  o.cache_sweep_interval = milliseconds(0);
  constexpr int kRows = 20'000;
  constexpr uint64_t kBatches = (kRows + 255) / 256;  // 79
  auto fill = [&] {
    auto store = OpenOrDie(o);
    for (int i = 0; i < kRows; ++i) {
      REQUIRE(store->cache()
                  .Set("n", std::to_string(i), "v", milliseconds(1))
                  .ok());
    }
    REQUIRE(store->cache().Set("n", "keep", "v", milliseconds(0)).ok());
    REQUIRE(store->Close().ok());
    std::this_thread::sleep_for(milliseconds(20));  // all but one expired
    REQUIRE(CountRows(o.path) == kRows + 1);
  };
  fill();
  {
    auto store = OpenOrDie(o);
    CHECK(store->cache().GetStats().purge_batches == kBatches);
    CHECK(store->cache().GetStats().reloaded == 1);
    REQUIRE(store->Close().ok());
  }
  CHECK(CountRows(o.path) == 1);
  // A queue too small for the purges before the writer starts: Reload
  // queues what its best-effort room takes (12 of 16 items), Start the
  // rest once the writer drains it.
  fill();
  {
    Options small = o;
    small.queue_max_items = 16;
    auto store = OpenOrDie(small);
    CHECK(store->cache().GetStats().purge_batches == kBatches);
    REQUIRE(store->Close().ok());
  }
  CHECK(CountRows(o.path) == 1);
}

TEST_CASE("Store cache: a Delete after shed writes wins after a restart",
          "[cache][restart]") {
  TempDir dir;
  internal::FaultVfs* vfs = nullptr;
  Options o = HeldBackOptions(dir, &vfs);
  o.queue_max_items = 16;
  o.queue_full_wait = milliseconds(0);
  o.cache_sweep_interval = milliseconds(0);
  {
    auto store = OpenOrDie(o);
    Cache& c = store->cache();
    REQUIRE(c.Set("ns", "old", "v1", milliseconds(0)).ok());
    REQUIRE(store->Flush().ok());
    vfs->FailWrites(internal::FaultVfs::Fault::kIoError);  // no commits
    // Best-effort writes fill the queue up to 3/4 of its 16 items.
    for (int i = 0; i < 12; ++i) {
      REQUIRE(c.Set("fill", std::to_string(i), "x", milliseconds(0)).ok());
    }
    CHECK(c.GetStats().persist_shed == 0);
    REQUIRE(c.Set("ns", "old", "v2", milliseconds(0)).ok());  // shed
    REQUIRE(c.Set("ns", "new", "n1", milliseconds(0)).ok());  // shed
    CHECK(c.GetStats().persist_shed == 2);
    CHECK(GetOr(c, "ns", "old") == "v2");  // memory has the shed value
    // Deletes are not shed: they take the last quarter of the queue.
    REQUIRE(c.Delete("ns", "old").ok());
    REQUIRE(c.Delete("ns", "new").ok());
    vfs->Reset();
    REQUIRE(store->Flush(std::chrono::seconds(20)).ok());
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  Cache& c = store->cache();
  CHECK(GetOr(c, "ns", "old") == "<missing>");  // v1 on disk was deleted
  CHECK(GetOr(c, "ns", "new") == "<missing>");
  CHECK(GetOr(c, "fill", "11") == "x");
  CHECK(c.GetStats().reloaded == 12);
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache: refused writes while shedding count no shed",
          "[cache]") {
  // Stats::best_effort_shed and CacheStats::persist_shed counted a Touch
  // of a missing entry and a refused Increment as shed writes.
  TempDir dir;
  internal::FaultVfs* vfs = nullptr;
  Options o = HeldBackOptions(dir, &vfs);
  o.queue_max_items = 16;
  o.queue_full_wait = milliseconds(0);
  o.cache_sweep_interval = milliseconds(0);
  auto store = OpenOrDie(o);
  Cache& c = store->cache();
  REQUIRE(c.Set("n", "text", "abc", milliseconds(0)).ok());
  REQUIRE(c.Set("n", "max", std::to_string(std::numeric_limits<int64_t>::max()),
                milliseconds(0))
              .ok());
  REQUIRE(store->Flush().ok());
  vfs->FailWrites(internal::FaultVfs::Fault::kIoError);  // no commits
  // Best-effort writes fill the queue up to 3/4 of its 16 items.
  for (int i = 0; i < 12; ++i) {
    REQUIRE(c.Set("fill", std::to_string(i), "x", milliseconds(0)).ok());
  }
  REQUIRE(store->GetStats().best_effort_shed == 0);
  CHECK(c.Touch("n", "missing", milliseconds(1000)).IsNotFound());
  CHECK(c.Increment("n", "text", 1, milliseconds(0))
            .status()
            .IsFailedPrecondition());
  CHECK(
      c.Increment("n", "max", 1, milliseconds(0)).status().IsInvalidArgument());
  CHECK(store->GetStats().best_effort_shed == 0);
  CHECK(c.GetStats().persist_shed == 0);
  // Applied in memory, shed on the way to the database: counted.
  REQUIRE(c.Touch("n", "text", milliseconds(0)).ok());
  REQUIRE(c.Increment("n", "count", 1, milliseconds(0)).ok());
  CHECK(store->GetStats().best_effort_shed == 2);
  CHECK(c.GetStats().persist_shed == 2);
  vfs->Reset();
  REQUIRE(store->Flush(std::chrono::seconds(20)).ok());
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache: Touches of a large value are held to the queue bound",
          "[cache]") {
  // Each Touch was charged about 600 bytes while it queued the whole value:
  // with the writer held back, a 1 MiB queue took any number of Touches of
  // a 256 KiB value (and a batch as many), each rewriting all of it.
  TempDir dir;
  internal::FaultVfs* vfs = nullptr;
  Options o = HeldBackOptions(dir, &vfs);
  o.durability.cache = Durability::kBatched;  // waits, never shed
  o.queue_max_bytes = 1 << 20;
  o.queue_full_wait = milliseconds(0);
  o.cache_sweep_interval = milliseconds(0);
  auto store = OpenOrDie(o);
  Cache& c = store->cache();
  const std::string value(256 << 10, 'v');
  REQUIRE(c.Set("n", "big", value, milliseconds(0)).ok());
  REQUIRE(store->Flush().ok());
  vfs->FailWrites(internal::FaultVfs::Fault::kIoError);  // no commits
  REQUIRE(store->GetStats().queue_bytes == 0);
  for (int i = 1; i <= 3; ++i) {
    REQUIRE(c.Touch("n", "big", milliseconds(60'000)).ok());
    CHECK(store->GetStats().queue_bytes >= i * value.size());
  }
  // A fourth would take the queue past its 1 MiB: refused.
  CHECK(c.Touch("n", "big", milliseconds(0)).IsResourceExhausted());
  CHECK(store->GetStats().queue_bytes <= o.queue_max_bytes);
  CHECK(GetOr(c, "n", "big") == value);
  vfs->Reset();
  REQUIRE(store->Flush(std::chrono::seconds(20)).ok());
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache: a Delete waiting for queue room does not block Get",
          "[cache]") {
  TempDir dir;
  internal::FaultVfs* vfs = nullptr;
  Options o = HeldBackOptions(dir, &vfs);
  o.queue_max_items = 8;
  o.queue_full_wait = std::chrono::seconds(20);
  o.cache_entries_shards = 1;  // every key on the Delete's shard
  auto store = OpenOrDie(o);
  Cache& c = store->cache();
  REQUIRE(c.Set("ns", "k", "v", milliseconds(0)).ok());
  REQUIRE(store->Flush().ok());
  vfs->FailWrites(internal::FaultVfs::Fault::kIoError);  // no commits
  Message m;
  m.role = Role::kUser;
  m.content = "fill";
  for (int i = 0; i < 8; ++i) REQUIRE(store->Append("conv", m).ok());
  std::atomic<bool> deleted{false};
  std::thread deleter([&] {
    CHECK(c.Delete("ns", "k").ok());  // waits for room
    deleted.store(true);
  });
  std::this_thread::sleep_for(milliseconds(200));
  // Served while the Delete waits: the shard lock is not held meanwhile.
  CHECK(GetOr(c, "ns", "k") == "v");
  CHECK_FALSE(deleted.load());
  vfs->Reset();  // commits resume, room returns, the Delete goes in
  deleter.join();
  CHECK(GetOr(c, "ns", "k") == "<missing>");
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache: Open refuses cache options that cannot work",
          "[cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_max_value_bytes = size_t{1} << 30;  // past what one row takes
  StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
  CHECK(s.status().IsInvalidArgument());
  CHECK(s.status().ToString().find("cache_max_value_bytes") !=
        std::string::npos);
  o = TestOptions(dir);
  o.cache_entries_max_bytes = 1000;  // not even a few small entries
  s = Store::Open(o);
  CHECK(s.status().IsInvalidArgument());
  CHECK(s.status().ToString().find("cache_entries_max_bytes") !=
        std::string::npos);
  o = TestOptions(dir);
  o.cache_entries_shards = internal::kMaxCacheShards + 1;
  s = Store::Open(o);
  CHECK(s.status().IsInvalidArgument());
  CHECK(s.status().ToString().find("cache_entries_shards") !=
        std::string::npos);
  // The bound is not split over the shards: 8000 bytes over 64 shards
  // (125 bytes each, less than one entry) is fine.
  o = TestOptions(dir);
  o.cache_entries_max_bytes = 8000;
  o.cache_entries_shards = 64;
  s = Store::Open(o);
  REQUIRE(s.ok());
  CHECK((*s)->cache()
            .Set("ns", "k", std::string(4000, 'v'), milliseconds(0))
            .ok());
  CHECK(GetOr((*s)->cache(), "ns", "k") == std::string(4000, 'v'));
  REQUIRE((*s)->Close().ok());
}

TEST_CASE("Store cache: bad cache options create no file or directory",
          "[cache]") {
  // Open refused these only after the backend had created the directory
  // and the database file (and run the migrations), where every other
  // option out of its range creates nothing (docs/user-guide.md, "Errors").
  TempDir dir;
  for (int which = 0; which < 3; ++which) {
    INFO("case " << which);
    Options o = TestOptions(dir, "sub/test.db");
    if (which == 0) o.cache_entries_shards = 0;
    if (which == 1) o.cache_entries_max_bytes = 10;
    if (which == 2) o.cache_max_value_bytes = size_t{1} << 30;
    StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
    CHECK(s.status().IsInvalidArgument());
    CHECK_FALSE(std::filesystem::exists(o.path));
    CHECK_FALSE(std::filesystem::exists(dir.File("sub")));
  }
}

TEST_CASE("Store cache: Open refuses zero cache_entries_shards", "[cache]") {
  // Zero was taken silently and used as one shard, where every other
  // option out of its range is refused.
  TempDir dir;
  Options o = TestOptions(dir);
  o.cache_entries_shards = 0;
  StatusOr<std::unique_ptr<Store>> s = Store::Open(o);
  INFO(s.status().ToString());
  CHECK(s.status().IsInvalidArgument());
  CHECK(s.status().ToString().find("cache_entries_shards") !=
        std::string::npos);
  o.cache_entries_shards = 1;
  s = Store::Open(o);
  REQUIRE(s.ok());
  REQUIRE((*s)->Close().ok());
}

TEST_CASE("Store cache: Increment takes only plain decimal counters",
          "[cache]") {
  TempDir dir;
  auto store = OpenOrDie(TestOptions(dir));
  Cache& c = store->cache();
  for (const char* text : {"+7", " 7", "7 ", "0x7", "", "7.0"}) {
    INFO("value [" << text << "]");
    REQUIRE(c.Set("n", "k", text, milliseconds(0)).ok());
    CHECK(c.Increment("n", "k", 1, milliseconds(0))
              .status()
              .IsFailedPrecondition());
    CHECK(GetOr(c, "n", "k") == text);  // unchanged
  }
  REQUIRE(c.Set("n", "k", "-7", milliseconds(0)).ok());
  StatusOr<int64_t> v = c.Increment("n", "k", 10, milliseconds(0));
  REQUIRE(v.ok());
  CHECK(*v == 3);
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache sweep deletes expired rows from disk", "[cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.cache = Durability::kBatched;
  o.cache_sweep_interval = milliseconds(20);
  auto store = OpenOrDie(o);
  Cache& c = store->cache();
  for (int i = 0; i < 600; ++i) {
    REQUIRE(c.Set("s", "k" + std::to_string(i), "v", milliseconds(50)).ok());
  }
  REQUIRE(c.Set("s", "keep", "v", milliseconds(0)).ok());
  REQUIRE(store->Flush().ok());
  // (How many rows are on disk now depends on how fast the sets ran.)
  // Wait (bounded) for the sweep to drop the expired entries and for its
  // purges to be committed.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (c.GetStats().entries == 1) {
      REQUIRE(store->Flush().ok());
      if (CountRows(o.path) == 1) break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK(c.GetStats().entries == 1);
  CHECK(c.GetStats().expirations == 600);
  CHECK(c.GetStats().purge_batches >= 3);  // 600 rows, 256 per purge
  CHECK(CountRows(o.path) == 1);
  CHECK(GetOr(c, "s", "keep") == "v");
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache: evicted entries leave the disk too", "[cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.cache = Durability::kBatched;
  o.cache_entries_shards = 2;
  o.cache_entries_max_bytes = 64 << 10;
  {
    auto store = OpenOrDie(o);
    for (int i = 0; i < 500; ++i) {
      REQUIRE(store->cache()
                  .Set("s", "k" + std::to_string(i), std::string(1000, 'x'),
                       milliseconds(0))
                  .ok());
    }
    CacheStats st = store->cache().GetStats();
    CHECK(st.evictions > 400);
    CHECK(st.bytes <= o.cache_entries_max_bytes);
    REQUIRE(store->Close().ok());
    CHECK(CountRows(o.path) == static_cast<int64_t>(st.entries));
  }
  auto store = OpenOrDie(o);
  CacheStats st = store->cache().GetStats();
  CHECK(st.reloaded == static_cast<uint64_t>(CountRows(o.path)));
  CHECK(GetOr(store->cache(), "s", "k499") == std::string(1000, 'x'));
  CHECK(GetOr(store->cache(), "s", "k0") == "<missing>");
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache: concurrent increments are exact after a restart",
          "[cache][restart]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.cache = Durability::kBatched;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  {
    auto store = OpenOrDie(o);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) {
          if (!store->cache()
                   .Increment("usage", "tokens", 2, milliseconds(0))
                   .ok()) {
            failures.fetch_add(1);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    CHECK(failures.load() == 0);
    CHECK(GetOr(store->cache(), "usage", "tokens") ==
          std::to_string(2 * kThreads * kPerThread));
    REQUIRE(store->Close().ok());
  }
  auto store = OpenOrDie(o);
  CHECK(GetOr(store->cache(), "usage", "tokens") ==
        std::to_string(2 * kThreads * kPerThread));
  REQUIRE(store->Close().ok());
}

TEST_CASE("Store cache with the sync class is durable when Set returns",
          "[cache]") {
  TempDir dir;
  Options o = TestOptions(dir);
  o.durability.cache = Durability::kSync;
  o.max_flush_delay = milliseconds(1000);  // only the sync wait commits soon
  auto store = OpenOrDie(o);
  REQUIRE(store->cache().Set("s", "k", "v", milliseconds(0)).ok());
  Stats st = store->GetStats();
  CHECK(st.durable_lsn == st.appended_lsn);
  CHECK(CountRows(o.path) == 1);
  REQUIRE(store->cache().Delete("s", "k").ok());
  CHECK(CountRows(o.path) == 0);
  REQUIRE(store->Close().ok());
  CHECK(store->cache().Get("s", "k").status().IsFailedPrecondition());
}

}  // namespace
}  // namespace convstore
