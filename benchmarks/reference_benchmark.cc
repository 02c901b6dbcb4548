// Copyright 2026 The convstore Authors.
//
// What plain SQLite achieves with the rows convstore stores: the in-run
// references every store figure is divided by (docs/benchmarks.md). All
// use WAL, synchronous=NORMAL and a prepared statement; rows are spread over
// kConversations interleaved conversations, as the store benchmarks are.

#include <sqlite3.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "bench_util.h"
#include "varint.h"

namespace convstore::bench {
namespace {

// Inserts rows [row, row + n) of the interleaved workload.
class NaiveWriter {
 public:
  NaiveWriter(const fs::path& dir, bool indexed) {
    sqlite3_open((dir / "ref.db").c_str(), &db_);
    CreateNaiveTable(db_, indexed);
    sqlite3_prepare_v2(db_, "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?)", -1,
                       &ins_, nullptr);
    for (int c = 0; c < kConversations; ++c) {
      ids_.push_back(ConvId(c));
      users_.push_back(UserId(c));
    }
    content_ = Content(0);
  }
  ~NaiveWriter() {
    sqlite3_finalize(ins_);
    sqlite3_close(db_);
  }
  void Insert() {
    const size_t conv = static_cast<size_t>(row_ % kConversations);
    sqlite3_bind_text(ins_, 1, ids_[conv].data(),
                      static_cast<int>(ids_[conv].size()), SQLITE_STATIC);
    sqlite3_bind_int64(ins_, 2, row_ / kConversations + 1);
    sqlite3_bind_int64(ins_, 3, row_ % 2);
    sqlite3_bind_text(ins_, 4, content_.data(),
                      static_cast<int>(content_.size()), SQLITE_STATIC);
    sqlite3_bind_text(ins_, 5, users_[conv].data(),
                      static_cast<int>(users_[conv].size()), SQLITE_STATIC);
    sqlite3_bind_int64(ins_, 6, 50);
    sqlite3_bind_int64(ins_, 7, 40);
    sqlite3_bind_int64(ins_, 8, row_);
    if (sqlite3_step(ins_) != SQLITE_DONE) {
      Fail(std::string("INSERT: ") + sqlite3_errmsg(db_));
    }
    sqlite3_reset(ins_);
    ++row_;
  }
  void Exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      Fail(std::string(sql) + ": " + sqlite3_errmsg(db_));
    }
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* ins_ = nullptr;
  std::vector<std::string> ids_;
  std::vector<std::string> users_;
  std::string content_;
  int64_t row_ = 0;
};

// The approach convstore replaces: one INSERT and COMMIT per message.
void BM_Reference_SqliteAutocommit(benchmark::State& state) {
  fs::path dir = ScratchDir("ref_autocommit");
  {
    NaiveWriter w(dir, /*indexed=*/true);
    constexpr int kRows = 1000;
    for (auto _ : state) {
      for (int i = 0; i < kRows; ++i) w.Insert();
    }
    state.SetItemsProcessed(state.iterations() * kRows);
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_Reference_SqliteAutocommit)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The same table and rows, 4096 rows per transaction; range(0) = 1 with the
// (conversation_id, seq) index, 0 without (BM_Reference_SqliteAppendOnly).
void RunBatched(benchmark::State& state, bool indexed, const char* name) {
  fs::path dir = ScratchDir(name);
  {
    NaiveWriter w(dir, indexed);
    constexpr int kBatch = 4096;
    constexpr int kBatches = 8;
    for (auto _ : state) {
      for (int b = 0; b < kBatches; ++b) {
        w.Exec("BEGIN");
        for (int i = 0; i < kBatch; ++i) w.Insert();
        w.Exec("COMMIT");
      }
    }
    state.SetItemsProcessed(state.iterations() * kBatch * kBatches);
  }
  fs::remove_all(dir);
}

void BM_Reference_SqliteBatched(benchmark::State& state) {
  RunBatched(state, /*indexed=*/true, "ref_batched");
}
BENCHMARK(BM_Reference_SqliteBatched)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// No secondary index: the ceiling on this disk for any layout that stores
// one message to a row, at SQLite's default 4 KiB page.
void BM_Reference_SqliteAppendOnly(benchmark::State& state) {
  RunBatched(state, /*indexed=*/false, "ref_append_only");
}
BENCHMARK(BM_Reference_SqliteAppendOnly)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The append-only table's messages, range(0) to a row: each row is
// (id INTEGER PRIMARY KEY, n, payload BLOB), the payload the n messages'
// fields one after another (varints, and strings after their length),
// encoded in the timed part. The conversation goes in as an integer key,
// as the store keeps it, not as BM_Reference_SqliteAppendOnly's text id,
// so per_row:1 is the baseline the packing is measured against. This is
// the ceiling for a layout that packs several messages into a row
// (docs/benchmarks.md, "Several messages to a row: the ceiling"); the
// store does not pack.
void BM_Reference_SqlitePackedAppendOnly(benchmark::State& state) {
  const int per_row = static_cast<int>(state.range(0));
  fs::path dir = ScratchDir("ref_packed");
  {
    sqlite3* db = nullptr;
    sqlite3_open((dir / "ref.db").c_str(), &db);
    auto exec = [&](const char* sql) {
      if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        Fail(std::string(sql) + ": " + sqlite3_errmsg(db));
      }
    };
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    exec(
        "CREATE TABLE blocks(id INTEGER PRIMARY KEY, n INTEGER NOT NULL,"
        " payload BLOB NOT NULL)");
    sqlite3_stmt* ins = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO blocks(n, payload) VALUES (?,?)", -1,
                       &ins, nullptr);
    const std::string content = Content(0);
    std::vector<std::string> users;
    for (int c = 0; c < kConversations; ++c) users.push_back(UserId(c));
    auto put_string = [](const std::string& s, std::string* out) {
      internal::PutVarint(s.size(), out);
      out->append(s);
    };
    constexpr int kBatch = 4096;
    constexpr int kBatches = 8;
    int64_t row = 0;
    std::string payload;
    for (auto _ : state) {
      for (int b = 0; b < kBatches; ++b) {
        exec("BEGIN");
        for (int i = 0; i < kBatch;) {
          payload.clear();
          int n = 0;
          for (; n < per_row && i < kBatch; ++n, ++i, ++row) {
            const int64_t conv = row % kConversations;
            internal::PutVarint(static_cast<uint64_t>(conv + 1), &payload);
            internal::PutVarint(static_cast<uint64_t>(row / kConversations + 1),
                                &payload);
            payload.push_back(static_cast<char>(row % 2));
            put_string(content, &payload);
            put_string(users[static_cast<size_t>(conv)], &payload);
            internal::PutVarint(50, &payload);
            internal::PutVarint(40, &payload);
            internal::PutVarint(static_cast<uint64_t>(row), &payload);
          }
          sqlite3_bind_int(ins, 1, n);
          sqlite3_bind_blob(ins, 2, payload.data(),
                            static_cast<int>(payload.size()), SQLITE_STATIC);
          if (sqlite3_step(ins) != SQLITE_DONE) {
            Fail(std::string("INSERT: ") + sqlite3_errmsg(db));
          }
          sqlite3_reset(ins);
        }
        exec("COMMIT");
      }
    }
    state.SetItemsProcessed(state.iterations() * kBatch * kBatches);
    sqlite3_finalize(ins);
    sqlite3_close(db);
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_Reference_SqlitePackedAppendOnly)
    ->ArgNames({"per_row"})
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

struct ScannedMessage {
  int64_t seq;
  int role;
  std::string content;
  std::string user_id;
  int64_t tokens_in;
  int64_t tokens_out;
  int64_t created_at;
};

// SELECT every row of a range(0)-row file and build per-conversation
// vectors: the reload ceiling BM_Store_Reopen is compared with.
void BM_Reference_SqliteScan(benchmark::State& state) {
  const fs::path file = NaiveFixture(state.range(0));
  int64_t rows = 0;
  for (auto _ : state) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT conversation_id, seq, role, content, user_id,"
                       " tokens_in, tokens_out, created_at FROM messages",
                       -1, &st, nullptr);
    std::unordered_map<std::string, std::vector<ScannedMessage>> convs;
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto text = [&](int col) {
        return std::string(
            reinterpret_cast<const char*>(sqlite3_column_text(st, col)),
            static_cast<size_t>(sqlite3_column_bytes(st, col)));
      };
      convs[text(0)].push_back(ScannedMessage{
          sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2), text(3),
          text(4), sqlite3_column_int64(st, 5), sqlite3_column_int64(st, 6),
          sqlite3_column_int64(st, 7)});
      ++rows;
    }
    benchmark::DoNotOptimize(convs);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  state.SetItemsProcessed(rows);
}
BENCHMARK(BM_Reference_SqliteScan)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace convstore::bench
