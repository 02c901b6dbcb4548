// Copyright 2026 The convstore Authors.
//
// EntryTable (src/cache/entry_table.h), the cache shard's hash index.
// Hashes are forced to chosen values so keys share home buckets, tags and
// whole hashes, which real hashes would do only by chance.

#include "cache/entry_table.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cache/cache_entry.h"

namespace convstore::internal {
namespace {

// A lookup key for "ns"/`key` carrying `hash` instead of its real hash.
struct ForcedKey {
  ForcedKey(std::string k, uint64_t h) : key(std::move(k)), hash(h) {}
  NsKeyView View() const { return NsKeyView{"ns", key}; }
  HashedNsKey Hashed() const {
    HashedNsKey h(View());
    h.hash = hash;
    return h;
  }
  std::string key;
  uint64_t hash;
};

CacheEntryPtr MakeEntry(const ForcedKey& k) {
  return CacheEntry::Create(k.Hashed(),
                            std::make_shared<const std::string>("v"));
}

uint64_t Hash(uint64_t home, uint64_t tag, uint64_t high = 0) {
  return home | (tag << 16) | (high << 32);
}

TEST_CASE("empty table finds nothing", "[entry_table]") {
  EntryTable t;
  ForcedKey k("a", 12345);
  CHECK(t.Find(k.Hashed()) == nullptr);
  CHECK(t.size() == 0);
  CHECK(t.bucket_count() == 0);
}

TEST_CASE("keys with one whole hash are told apart by their key",
          "[entry_table]") {
  EntryTable t;
  ForcedKey a("a", Hash(0, 7)), b("b", Hash(0, 7)), c("c", Hash(0, 7));
  CacheEntryPtr ea = MakeEntry(a), eb = MakeEntry(b);
  t.Insert(ea.get());
  t.Insert(eb.get());
  CHECK(t.Find(a.Hashed()) == ea.get());
  CHECK(t.Find(b.Hashed()) == eb.get());
  CHECK(t.Find(c.Hashed()) == nullptr);
  t.Erase(ea.get());
  CHECK(t.Find(a.Hashed()) == nullptr);
  CHECK(t.Find(b.Hashed()) == eb.get());
  CacheEntryPtr eb2 = MakeEntry(b);
  t.Replace(eb.get(), eb2.get());
  CHECK(t.Find(b.Hashed()) == eb2.get());
  CHECK(t.size() == 1);
}

TEST_CASE("a lookup stops when every bucket has had keys placed past it",
          "[entry_table]") {
  // Two buckets of six slots (the first Insert's size; it grows at 9
  // entries). Nine keys of home 0 fill bucket 0 and put three in bucket 1;
  // bucket 0 is then emptied and four keys of home 1 fill bucket 1 and put
  // one in bucket 0. Both buckets now count keys placed past them.
  EntryTable t;
  std::vector<ForcedKey> keys;
  std::vector<CacheEntryPtr> entries;
  auto add = [&](const std::string& name, uint64_t home) {
    keys.emplace_back(name, Hash(home, 100 + keys.size()));
    entries.push_back(MakeEntry(keys.back()));
    t.Insert(entries.back().get());
  };
  for (int i = 0; i < 9; ++i) add("a" + std::to_string(i), 0);
  for (int i = 0; i < 6; ++i) t.Erase(entries[i].get());
  for (int i = 0; i < 4; ++i) add("b" + std::to_string(i), 1);
  REQUIRE(t.bucket_count() == 2);
  REQUIRE(t.size() == 7);
  ForcedKey absent0("x", Hash(0, 9999)), absent1("y", Hash(1, 9999));
  CHECK(t.Find(absent0.Hashed()) == nullptr);
  CHECK(t.Find(absent1.Hashed()) == nullptr);
  for (size_t i = 6; i < keys.size(); ++i) {
    CHECK(t.Find(keys[i].Hashed()) == entries[i].get());
  }
}

TEST_CASE("a bucket's passed count follows the keys placed past it",
          "[entry_table]") {
  EntryTable t;
  std::vector<ForcedKey> keys;
  std::vector<CacheEntryPtr> entries;
  for (int i = 0; i < 8; ++i) {  // home 0: six fill bucket 0, two go to 1
    keys.emplace_back("k" + std::to_string(i), Hash(0, 100 + i));
    entries.push_back(MakeEntry(keys.back()));
    t.Insert(entries.back().get());
  }
  REQUIRE(t.bucket_count() == 2);
  CHECK(t.passed(0) == 2);
  CHECK(t.passed(1) == 0);
  // A key erased from its home bucket passed nothing.
  t.Erase(entries[0].get());
  CHECK(t.passed(0) == 2);
  // Each key erased from bucket 1 passed bucket 0 on its way.
  t.Erase(entries[6].get());
  CHECK(t.passed(0) == 1);
  t.Erase(entries[7].get());
  CHECK(t.passed(0) == 0);
  CHECK(t.passed(1) == 0);
  for (int i = 1; i < 6; ++i) {
    CHECK(t.Find(keys[i].Hashed()) == entries[i].get());
  }
}

TEST_CASE("random inserts, replaces and erases match a map", "[entry_table]") {
  // 300 keys over 8 home buckets, 3 tags and some whole-hash twins, so
  // probes run past full buckets and tags match other keys.
  std::vector<ForcedKey> keys;
  for (uint64_t i = 0; i < 300; ++i) {
    keys.emplace_back("k" + std::to_string(i),
                      Hash(i % 8, 1 + i % 3, i % 5 == 0 ? 0 : i));
  }
  EntryTable t;
  std::map<size_t, CacheEntryPtr> live;
  std::mt19937 rng(42);
  for (int step = 0; step < 30000; ++step) {
    const size_t i = rng() % keys.size();
    auto it = live.find(i);
    if (it == live.end()) {
      CacheEntryPtr e = MakeEntry(keys[i]);
      t.Insert(e.get());
      live.emplace(i, std::move(e));
    } else if (rng() % 3 == 0) {
      CacheEntryPtr e = MakeEntry(keys[i]);
      t.Replace(it->second.get(), e.get());
      it->second = std::move(e);
    } else {
      t.Erase(it->second.get());
      live.erase(it);
    }
    if (step % 97 == 0 || step > 29900) {
      REQUIRE(t.size() == live.size());
      for (size_t j = 0; j < keys.size(); ++j) {
        auto l = live.find(j);
        CacheEntry* want = l == live.end() ? nullptr : l->second.get();
        REQUIRE(t.Find(keys[j].Hashed()) == want);
      }
    }
  }
}

TEST_CASE("the table grows by doubling and keeps its load under 80%",
          "[entry_table]") {
  EntryTable t;
  std::vector<ForcedKey> keys;
  std::vector<CacheEntryPtr> entries;
  constexpr int kKeys = 20000;
  keys.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    keys.emplace_back("key" + std::to_string(i), 0);
    keys.back().hash = HashedNsKey(keys.back().View()).hash;  // real hash
    entries.push_back(MakeEntry(keys.back()));
    t.Insert(entries.back().get());
    const size_t buckets = t.bucket_count();
    REQUIRE((buckets & (buckets - 1)) == 0);
    REQUIRE(t.size() * 5 <= buckets * EntryTable::kSlots * 4);
  }
  for (int i = 0; i < kKeys; i += 2) t.Erase(entries[i].get());
  for (int i = 0; i < kKeys; ++i) {
    REQUIRE(t.Find(keys[i].Hashed()) ==
            (i % 2 == 0 ? nullptr : entries[i].get()));
  }
  CHECK(t.size() == kKeys / 2);
}

}  // namespace
}  // namespace convstore::internal
