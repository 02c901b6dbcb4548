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

// No secondary index: the ceiling for any SQLite layout on this disk.
void BM_Reference_SqliteAppendOnly(benchmark::State& state) {
  RunBatched(state, /*indexed=*/false, "ref_append_only");
}
BENCHMARK(BM_Reference_SqliteAppendOnly)
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
