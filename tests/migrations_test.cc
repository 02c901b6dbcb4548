// Copyright 2026 The convstore Authors.
//
// Tests of src/sqlite/migrations.h: a fresh file reaches the latest schema,
// migrating is idempotent, and files this build must not touch (a newer
// schema, another application's database, not SQLite at all, truncated) are
// refused with the documented code and left as they were.

#include "sqlite/migrations.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "convstore/convstore.h"
#include "sqlite/sqlite_handle.h"
#include "testutil.h"

namespace convstore::internal {
namespace {

using test::TempDir;

std::unique_ptr<Db> OpenDb(const std::string& path) {
  std::unique_ptr<Db> db;
  Status s = Db::Open(path, /*create=*/true, &db);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return db;
}

int64_t QueryInt(Db* db, const std::string& sql) {
  int64_t v = -1;
  Status s = db->QueryInt(sql, &v);
  INFO(sql << ": " << s.ToString());
  REQUIRE(s.ok());
  return v;
}

// A `messages` row as the writer stores it: lsn and created_at_us equal to
// the id, content "m<id>"; and its entry in message_index (before v12).
std::string MessageRowSql(int64_t id, int64_t key, int64_t seq, int role,
                          int64_t tokens_in) {
  const std::string n = std::to_string(id);
  return "INSERT INTO messages(id, conv_key, seq, lsn, role, content,"
         " tokens_in, tokens_out, created_at_us) VALUES (" +
         n + ", " + std::to_string(key) + ", " + std::to_string(seq) + ", " +
         n + ", " + std::to_string(role) + ", 'm" + n + "', " +
         std::to_string(tokens_in) + ", 0, " + n + ");";
}
std::string IndexRowSql(int64_t id, int64_t key, int64_t seq) {
  return "INSERT INTO message_index(conv_key, seq, message_id) VALUES (" +
         std::to_string(key) + ", " + std::to_string(seq) + ", " +
         std::to_string(id) + ");";
}

using MigrationRow = std::tuple<int64_t, std::string, int64_t>;

std::vector<MigrationRow> MigrationRows(Db* db) {
  Stmt st;
  REQUIRE(db->Prepare("SELECT version, name, applied_at_us FROM "
                      "schema_migrations ORDER BY version",
                      &st)
              .ok());
  std::vector<MigrationRow> rows;
  Status s;
  while (st.Step(&s)) rows.emplace_back(st.Int(0), st.Text(1), st.Int(2));
  REQUIRE(s.ok());
  return rows;
}

// Every schema object as "type name: sql", in a stable order.
std::vector<std::string> SchemaObjects(Db* db) {
  Stmt st;
  REQUIRE(db->Prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_master "
                      "ORDER BY type, name",
                      &st)
              .ok());
  std::vector<std::string> out;
  Status s;
  while (st.Step(&s)) {
    out.push_back(st.Text(0) + " " + st.Text(1) + ": " + st.Text(2));
  }
  REQUIRE(s.ok());
  return out;
}

bool TableExists(Db* db, const std::string& name) {
  return QueryInt(db,
                  "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                  "name='" +
                      name + "'") == 1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// Runs raw SQL through the sqlite3 C API, bypassing convstore entirely.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(raw);
  INFO(msg);
  REQUIRE(rc == SQLITE_OK);
}

Options QuietOptions(const std::string& path) {
  Options o;
  o.path = path;
  o.log_level = LogLevel::kOff;
  o.max_flush_delay = std::chrono::milliseconds(5);
  return o;
}

TEST_CASE("migration list is well formed", "[migrations]") {
  std::span<const Migration> all = AllMigrations();
  REQUIRE_FALSE(all.empty());
  for (size_t i = 0; i < all.size(); ++i) {
    // Versions are 1, 2, 3, ... with no gap, each named.
    CHECK(all[i].version == static_cast<int>(i) + 1);
    REQUIRE(all[i].name != nullptr);
    CHECK(std::string(all[i].name).size() > 0);
    REQUIRE(all[i].sql != nullptr);
  }
  CHECK(LatestSchemaVersion() == all.back().version);
}

TEST_CASE("a fresh file migrates to the latest version", "[migrations]") {
  TempDir dir;
  auto db = OpenDb(dir.File("fresh.db"));

  int64_t version = -1;
  REQUIRE(SchemaVersion(db.get(), &version).ok());
  CHECK(version == 0);

  Status s = Migrate(db.get(), LatestSchemaVersion());
  INFO(s.ToString());
  REQUIRE(s.ok());

  REQUIRE(SchemaVersion(db.get(), &version).ok());
  CHECK(version == LatestSchemaVersion());
  CHECK(QueryInt(db.get(), "PRAGMA user_version") == LatestSchemaVersion());
  CHECK(QueryInt(db.get(), "PRAGMA application_id") == kApplicationId);
  CHECK(kApplicationId == 0x43565354);  // "CVST"

  // One row per migration, with its name and a plausible time.
  std::vector<MigrationRow> rows = MigrationRows(db.get());
  std::span<const Migration> all = AllMigrations();
  REQUIRE(rows.size() == all.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(std::get<0>(rows[i]) == all[i].version);
    CHECK(std::get<1>(rows[i]) == all[i].name);
    CHECK(std::get<2>(rows[i]) > 1'600'000'000'000'000);  // after 2020
  }

  // The tables the backend relies on exist, and the LSN starts at 0.
  CHECK(TableExists(db.get(), "conversations"));
  CHECK(TableExists(db.get(), "messages"));
  CHECK(TableExists(db.get(), "store_meta"));
  CHECK(QueryInt(db.get(),
                 "SELECT value FROM store_meta WHERE key = "
                 "'last_lsn'") == 0);
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM messages") == 0);
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM conversations") == 0);
}

TEST_CASE("migrating twice is a no-op", "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("twice.db");
  std::vector<MigrationRow> rows_before;
  std::vector<std::string> schema_before;
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), LatestSchemaVersion()).ok());
    rows_before = MigrationRows(db.get());
    schema_before = SchemaObjects(db.get());
    // Again on the same connection.
    Status s = Migrate(db.get(), LatestSchemaVersion());
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(MigrationRows(db.get()) == rows_before);
    CHECK(SchemaObjects(db.get()) == schema_before);
  }
  // And again on a new connection, as a reopened store does.
  auto db = OpenDb(path);
  Status s = Migrate(db.get(), LatestSchemaVersion());
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(MigrationRows(db.get()) == rows_before);
  CHECK(SchemaObjects(db.get()) == schema_before);
  CHECK(QueryInt(db.get(), "PRAGMA user_version") == LatestSchemaVersion());
  CHECK(QueryInt(db.get(), "PRAGMA application_id") == kApplicationId);
  int64_t version = -1;
  REQUIRE(SchemaVersion(db.get(), &version).ok());
  CHECK(version == LatestSchemaVersion());
}

TEST_CASE("migrating a store's file keeps its data", "[migrations]") {
  TempDir dir;
  Options o = QuietOptions(dir.File("data.db"));
  {
    auto store = test::OpenOrDie(o);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(
          store->Append("c", test::Msg(Role::kUser, "m" + std::to_string(i)))
              .ok());
    }
    REQUIRE(store->Close().ok());
  }
  auto db = OpenDb(o.path);
  REQUIRE(Migrate(db.get(), LatestSchemaVersion()).ok());
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM messages") == 5);
  CHECK(MigrationRows(db.get()).size() == AllMigrations().size());
}

TEST_CASE("a database from a newer version is refused untouched",
          "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("newer.db");
  const int newer = LatestSchemaVersion() + 1;
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), LatestSchemaVersion()).ok());
    // What a future convstore would have left behind.
    REQUIRE(db->Exec("INSERT INTO schema_migrations(version, name, "
                     "applied_at_us) VALUES (" +
                     std::to_string(newer) +
                     ", 'from the future', 1);"
                     "PRAGMA user_version = " +
                     std::to_string(newer) +
                     ";"
                     "CREATE TABLE future_table (x INTEGER)")
                .ok());
  }
  auto db = OpenDb(path);
  const std::vector<MigrationRow> rows_before = MigrationRows(db.get());
  const std::vector<std::string> schema_before = SchemaObjects(db.get());

  Status s = Migrate(db.get(), LatestSchemaVersion());
  INFO(s.ToString());
  CHECK(s.IsNotSupported());
  CHECK(s.message().find(std::to_string(newer)) != std::string::npos);

  CHECK(MigrationRows(db.get()) == rows_before);
  CHECK(SchemaObjects(db.get()) == schema_before);
  CHECK(QueryInt(db.get(), "PRAGMA user_version") == newer);
  CHECK(QueryInt(db.get(), "PRAGMA application_id") == kApplicationId);
  int64_t version = -1;
  REQUIRE(SchemaVersion(db.get(), &version).ok());
  CHECK(version == newer);
  db.reset();

  // The public entry point says the same.
  auto opened = Store::Open(QuietOptions(path));
  INFO(opened.status().ToString());
  CHECK(opened.status().IsNotSupported());
  auto check = OpenDb(path);
  CHECK(MigrationRows(check.get()) == rows_before);
  CHECK(SchemaObjects(check.get()) == schema_before);
}

TEST_CASE("another application's SQLite file is refused", "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("foreign.db");

  SECTION("foreign tables, no application_id") {
    RawExec(path,
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
            "INSERT INTO users(name) VALUES ('alice'), ('bob');");
  }
  SECTION("a foreign application_id on an empty file") {
    RawExec(path, "PRAGMA application_id = 1234567;");
  }
  SECTION("a convstore-looking table without the application_id") {
    RawExec(path, "CREATE TABLE conversations (x INTEGER);");
  }

  auto db = OpenDb(path);
  const std::vector<std::string> schema_before = SchemaObjects(db.get());
  const int64_t app_before = QueryInt(db.get(), "PRAGMA application_id");
  const int64_t user_version_before = QueryInt(db.get(), "PRAGMA user_version");

  Status s = Migrate(db.get(), LatestSchemaVersion());
  INFO(s.ToString());
  CHECK(s.IsCorruption());

  // Nothing of ours was written into the file.
  CHECK(SchemaObjects(db.get()) == schema_before);
  CHECK_FALSE(TableExists(db.get(), "schema_migrations"));
  CHECK(QueryInt(db.get(), "PRAGMA application_id") == app_before);
  CHECK(QueryInt(db.get(), "PRAGMA user_version") == user_version_before);
  db.reset();

  auto opened = Store::Open(QuietOptions(path));
  INFO(opened.status().ToString());
  CHECK(opened.status().IsCorruption());
  auto check = OpenDb(path);
  CHECK(SchemaObjects(check.get()) == schema_before);
  CHECK(QueryInt(check.get(), "PRAGMA application_id") == app_before);
}

TEST_CASE("a file that is not SQLite is refused with Corruption",
          "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("garbage.db");
  std::string bytes;
  SECTION("random bytes") {
    std::mt19937 rng(12345);
    bytes.resize(16384);
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  }
  SECTION("a short text file") { bytes = "hello, this is not a database\n"; }
  SECTION("a long text file") {
    for (int i = 0; i < 2000; ++i) {
      bytes += "line " + std::to_string(i) + " of a plain text file\n";
    }
  }
  WriteFile(path, bytes);

  auto opened = Store::Open(QuietOptions(path));
  INFO(opened.status().ToString());
  CHECK(opened.status().IsCorruption());
  // The file is not modified.
  CHECK(ReadFile(path) == bytes);
}

// A store file with 20 conversations of 20 messages, closed so that the WAL
// is checkpointed into it. Returns its bytes.
std::string MakeStoreFile(const TempDir& dir, const std::string& name) {
  const std::string path = dir.File(name);
  {
    auto store = test::OpenOrDie(QuietOptions(path));
    const std::string filler(300, 'x');
    for (int c = 0; c < 20; ++c) {
      for (int i = 0; i < 20; ++i) {
        REQUIRE(store
                    ->Append("conv-" + std::to_string(c),
                             test::Msg(Role::kUser, filler + std::to_string(i)))
                    .ok());
      }
    }
    REQUIRE(store->Close().ok());
  }
  // Close checkpointed the WAL into the main file: all data is in it.
  REQUIRE((!std::filesystem::exists(path + "-wal") ||
           std::filesystem::file_size(path + "-wal") == 0));
  return ReadFile(path);
}

TEST_CASE("a truncated database fails cleanly", "[migrations]") {
  TempDir dir;
  const std::string full = MakeStoreFile(dir, "good.db");
  const size_t page = 4096;
  REQUIRE(full.size() % page == 0);
  REQUIRE(full.size() > 16 * page);

  struct Cut {
    size_t size;
    // Whole pages are missing: SQLite sees the file is shorter than its
    // header says, so opening must fail. A cut inside the last page only
    // zeroes that page's tail, which SQLite cannot always tell from data.
    bool pages_missing;
  };
  const Cut cuts[] = {
      {50, true},
      {100, true},
      {page, true},
      {page + 100, true},
      {full.size() / 2, true},
      {full.size() / 2 + 7, true},
      {full.size() - page, true},
      {full.size() - page + 1, false},
      {full.size() - 100, false},
      {full.size() - 1, false},
  };
  for (const Cut& cut : cuts) {
    INFO("truncated to " << cut.size << " of " << full.size() << " bytes");
    const std::string path =
        dir.File("truncated_" + std::to_string(cut.size) + ".db");
    WriteFile(path, full.substr(0, cut.size));
    auto opened = Store::Open(QuietOptions(path));
    INFO(opened.status().ToString());
    if (cut.pages_missing) {
      // Missing pages are damage, never an empty or partial store.
      CHECK(opened.status().IsCorruption());
    } else {
      CHECK((opened.ok() || opened.status().IsCorruption()));
    }
    if (opened.ok()) {
      // Opened anyway: reading every conversation must not crash, and what
      // it returns is either an error or well-formed messages.
      for (int c = 0; c < 20; ++c) {
        HistoryOptions h;
        h.from_storage = true;
        auto hist = (*opened)->History("conv-" + std::to_string(c), h);
        if (hist.ok()) {
          CHECK(hist->size() <= 20);
          for (const MessagePtr& m : *hist) CHECK(m != nullptr);
        }
      }
      (void)(*opened)->Close();
    }
  }
}

TEST_CASE("a database with a damaged page is refused at open", "[migrations]") {
  // Regression: with Options::verify_on_open SqliteBackend runs PRAGMA
  // quick_check(1) at open. The pragma reports damage as a result row, not
  // as an error code; its verdict used to be ignored, so a damaged file
  // opened.
  TempDir dir;
  std::string bytes = MakeStoreFile(dir, "good.db");
  const size_t page = 4096;
  const size_t victim = bytes.size() / page / 2;  // a page in the middle
  REQUIRE(victim > 1);
  for (size_t i = 0; i < 8; ++i) bytes[victim * page + i] = '\xff';
  const std::string path = dir.File("damaged.db");
  WriteFile(path, bytes);

  Options o = QuietOptions(path);
  o.warm_conversations = 0;  // so only the open-time check can notice
  o.verify_on_open = true;
  auto opened = Store::Open(o);
  INFO(opened.status().ToString());
  CHECK(opened.status().IsCorruption());
  if (opened.ok()) (void)(*opened)->Close();
}

TEST_CASE("without verify_on_open a damaged page is reported when read",
          "[migrations]") {
  TempDir dir;
  std::string bytes = MakeStoreFile(dir, "good.db");
  const size_t page = 4096;
  const size_t pages = bytes.size() / page;
  REQUIRE(pages > 3);
  // Damage every page after the schema pages: whatever History reads next
  // meets it.
  for (size_t p = 2; p < pages; ++p) {
    for (size_t i = 0; i < 8; ++i) bytes[p * page + i] = '\xff';
  }
  const std::string path = dir.File("damaged.db");
  WriteFile(path, bytes);
  Options o = QuietOptions(path);
  o.warm_conversations = 0;
  auto opened = Store::Open(o);
  if (!opened.ok()) {
    // Open touches a damaged page itself: refused, which is fine too.
    CHECK(opened.status().IsCorruption());
    return;
  }
  bool reported = false;
  for (int c = 0; c < 20 && !reported; ++c) {
    auto h = (*opened)->History("conv-" + std::to_string(c));
    if (!h.ok()) {
      INFO(h.status().ToString());
      CHECK(h.status().IsCorruption());
      reported = true;
    }
  }
  CHECK(reported);
  (void)(*opened)->Close();
}

TEST_CASE("a version-1 file upgrades to v2 with dead_letters, data kept",
          "[migrations]") {
  TempDir dir;
  auto db = OpenDb(dir.File("v1.db"));
  REQUIRE(Migrate(db.get(), 1).ok());
  CHECK_FALSE(TableExists(db.get(), "dead_letters"));
  REQUIRE(db->Exec("INSERT INTO conversations(conversation_id) VALUES ('c');"
                   "UPDATE store_meta SET value = 9 WHERE key = 'last_lsn'")
              .ok());
  Status s = Migrate(db.get(), LatestSchemaVersion());
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(TableExists(db.get(), "dead_letters"));
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM dead_letters") == 0);
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM conversations") == 1);
  CHECK(QueryInt(db.get(),
                 "SELECT value FROM store_meta WHERE key = 'last_lsn'") == 9);
  CHECK(QueryInt(db.get(), "SELECT max(version) FROM schema_migrations") >= 2);
}

TEST_CASE("a version-5 file upgrades to v6 with the audit log, data kept",
          "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("v5.db");
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), 5).ok());
    CHECK_FALSE(TableExists(db.get(), "audit_log"));
    CHECK_FALSE(TableExists(db.get(), "audit_anchor"));
    REQUIRE(db->Exec("INSERT INTO conversations(conversation_id) VALUES ('c');"
                     "UPDATE store_meta SET value = 9 WHERE key = 'last_lsn'")
                .ok());
    Status s = Migrate(db.get(), LatestSchemaVersion());
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(TableExists(db.get(), "audit_log"));
    CHECK(TableExists(db.get(), "audit_anchor"));
    CHECK(QueryInt(db.get(), "SELECT count(*) FROM audit_log") == 0);
    CHECK(QueryInt(db.get(), "SELECT count(*) FROM conversations") == 1);
    CHECK(QueryInt(db.get(),
                   "SELECT name = 'audit log' FROM schema_migrations"
                   " WHERE version = 6") == 1);
    CHECK(QueryInt(db.get(), "PRAGMA user_version") == LatestSchemaVersion());
  }
  // A store on the upgraded file starts the chain at id 1.
  Options o;
  o.path = path;
  o.log_level = LogLevel::kError;
  auto store = test::OpenOrDie(o);
  AuditEvent e;
  e.actor = "u";
  e.action = "a";
  e.outcome = "success";
  REQUIRE(store->audit().Record(e).ok());
  auto v = store->audit().Verify();
  REQUIRE(v.ok());
  CHECK(v->ok);
  CHECK(v->last_id == 1);
  REQUIRE(store->Close().ok());
}

TEST_CASE("a version-8 file's recent index rows move into message_index at v9",
          "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("v8.db");
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), 8).ok());
    REQUIRE(TableExists(db.get(), "recent_message_index"));
    // Conversation "c" with six messages: 1-3 merged, 4-6 in the recent
    // part, as a v8 writer leaves them between merges.
    std::string sql =
        "INSERT INTO conversations(conversation_id, message_count, last_seq,"
        " first_at_us, last_at_us) VALUES ('c', 6, 6, 1, 6);"
        "UPDATE store_meta SET value = 6 WHERE key = 'last_lsn';";
    for (int i = 1; i <= 6; ++i) {
      const std::string n = std::to_string(i);
      sql +=
          "INSERT INTO messages(id, conv_key, seq, lsn, role, content,"
          " tokens_in, tokens_out, created_at_us) VALUES (" +
          n + ", 1, " + n + ", " + n + ", 1, 'm" + n + "', 0, 0, " + n + ");";
      sql += std::string("INSERT INTO ") +
             (i <= 3 ? "message_index" : "recent_message_index") +
             "(conv_key, seq, message_id) VALUES (1, " + n + ", " + n + ");";
    }
    REQUIRE(db->Exec(sql).ok());
    Status s = Migrate(db.get(), 9);
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK_FALSE(TableExists(db.get(), "recent_message_index"));
    CHECK(QueryInt(db.get(), "SELECT count(*) FROM message_index") == 6);
    CHECK(QueryInt(db.get(),
                   "SELECT value FROM store_meta"
                   " WHERE key = 'merged_through_id'") == 6);
    CHECK(QueryInt(db.get(),
                   "SELECT value FROM store_meta"
                   " WHERE key = 'last_message_id'") == 6);
  }
  // A store on the upgraded file reads all six and goes on from there.
  Options o = QuietOptions(path);
  o.index_merge_rows = 4;
  for (int round = 0; round < 2; ++round) {
    auto store = test::OpenOrDie(o);
    HistoryOptions h;
    h.from_storage = true;
    auto got = store->History("c", h);
    REQUIRE(got.ok());
    REQUIRE(got->size() == static_cast<size_t>(6 + 3 * round));
    for (size_t i = 0; i < got->size(); ++i) {
      CHECK((*got)[i]->seq == static_cast<int64_t>(i) + 1);
    }
    CHECK((*got)[0]->content == "m1");
    CHECK((*got)[5]->content == "m6");
    Message m;
    m.role = Role::kUser;
    m.content = "after";
    for (int i = 0; i < 3; ++i) REQUIRE(store->Append("c", m).ok());
    REQUIRE(store->Close().ok());
  }
}

TEST_CASE("a version-9 file's activity index is filled at v10",
          "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("v9.db");
  auto db = OpenDb(path);
  REQUIRE(Migrate(db.get(), 9).ok());
  REQUIRE(db->Exec("INSERT INTO conversations(conversation_id, user_id,"
                   " message_count, last_at_us) VALUES ('old', 'u', 1, 10),"
                   " ('new', 'u', 1, 20)")
              .ok());
  Status s = Migrate(db.get(), 10);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(QueryInt(db.get(),
                 "SELECT count(*) FROM conversations"
                 " WHERE activity_at_us = last_at_us") == 2);
  // Both listing indexes key on the new column.
  for (const char* index :
       {"conversations_by_activity", "conversations_by_user"}) {
    INFO(index);
    CHECK(QueryInt(db.get(), std::string("SELECT count(*) FROM"
                                         " pragma_index_info('") +
                                 index + "') WHERE name = 'activity_at_us'") ==
          1);
    CHECK(QueryInt(db.get(), std::string("SELECT count(*) FROM"
                                         " pragma_index_info('") +
                                 index + "') WHERE name = 'last_at_us'") == 0);
  }
}

TEST_CASE("a version-10 file's summaries are not counted twice at v11",
          "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("v10.db");
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), 10).ok());
    // Conversation "c" with four messages, 1-2 merged and 3-4 not, as a
    // v10 writer leaves them between merges: its row counts all four.
    std::string sql =
        "INSERT INTO conversations(conversation_id, message_count, tokens_in,"
        " last_seq, first_at_us, last_at_us, activity_at_us)"
        " VALUES ('c', 4, 40, 4, 1, 4, 2);"
        "UPDATE store_meta SET value = 4 WHERE key = 'last_lsn';"
        "UPDATE store_meta SET value = 2 WHERE key = 'merged_through_id';"
        "UPDATE store_meta SET value = 4 WHERE key = 'last_message_id';";
    for (int i = 1; i <= 4; ++i) {
      sql += MessageRowSql(i, 1, i, 1, 10);
      if (i <= 2) sql += IndexRowSql(i, 1, i);
    }
    REQUIRE(db->Exec(sql).ok());
    Status s = Migrate(db.get(), 11);
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK(QueryInt(db.get(),
                   "SELECT summarized_through_id FROM conversations") == 4);
  }
  // A store reads the row as it is, and a merge adds nothing to it.
  Options o = QuietOptions(path);
  o.index_merge_rows = 1;
  for (int round = 0; round < 2; ++round) {
    auto store = test::OpenOrDie(o);
    ListOptions l;
    l.limit = 10;
    auto page = store->ListConversations(l);
    REQUIRE(page.ok());
    REQUIRE(page->conversations.size() == 1);
    const ConversationInfo& c = page->conversations[0];
    CHECK(c.message_count == 4 + round);
    CHECK(c.tokens_in == 40);
    CHECK(c.last_seq == 4 + round);
    if (round == 0) {
      Message m;
      m.role = Role::kUser;
      m.content = "after";
      REQUIRE(store->Append("c", m).ok());
    }
    REQUIRE(store->Close().ok());
  }
}

TEST_CASE(
    "a version-11 file's index is packed at v12, kept at v13, reads the same",
    "[migrations]") {
  TempDir dir;
  const std::string path = dir.File("v11.db");
  // "a": 300 merged messages (three packed rows) and 2 unmerged; "b": 3
  // merged, the first a system message.
  const int64_t merged_a = 300;
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), 11).ok());
    std::string sql =
        "INSERT INTO conversations(conversation_id, message_count, last_seq,"
        " first_at_us, last_at_us, activity_at_us, summarized_through_id)"
        " VALUES ('a', 300, 300, 1, 300, 300, 300);"
        "INSERT INTO conversations(conversation_id, message_count, last_seq,"
        " first_at_us, last_at_us, activity_at_us, summarized_through_id,"
        " first_system_seq) VALUES ('b', 3, 3, 1, 303, 303, 303, 1);"
        "UPDATE store_meta SET value = 305 WHERE key = 'last_lsn';"
        "UPDATE store_meta SET value = 303 WHERE key = 'merged_through_id';"
        "UPDATE store_meta SET value = 305 WHERE key = 'last_message_id';";
    // Ids 1-300 and 304-305 are "a"'s, 301-303 "b"'s.
    auto add = [&](int64_t id, int64_t key, int64_t seq, bool index) {
      sql += MessageRowSql(id, key, seq, key == 2 && seq == 1 ? 0 : 1, 0);
      if (index) sql += IndexRowSql(id, key, seq);
    };
    for (int64_t i = 1; i <= merged_a; ++i) add(i, 1, i, true);
    for (int64_t i = 1; i <= 3; ++i) add(300 + i, 2, i, true);
    add(304, 1, 301, false);
    add(305, 1, 302, false);
    REQUIRE(db->Exec(sql).ok());
    Status s = Migrate(db.get(), 12);
    INFO(s.ToString());
    REQUIRE(s.ok());
    CHECK_FALSE(TableExists(db.get(), "message_index"));
    CHECK(QueryInt(db.get(), "SELECT sum(n) FROM message_chunks") == 303);
    CHECK(QueryInt(db.get(),
                   "SELECT count(*) FROM message_chunks WHERE conv_key = 1") ==
          3);
  }
  auto check = [&](Store* store, int64_t a_count) {
    auto all = store->History("a", {});
    INFO(all.status().ToString());
    REQUIRE(all.ok());
    REQUIRE(static_cast<int64_t>(all->size()) == a_count);
    for (int64_t i = 0; i < a_count; ++i) {
      CHECK((*all)[static_cast<size_t>(i)]->seq == i + 1);
    }
    CHECK((*all)[0]->content == "m1");
    CHECK((*all)[299]->content == "m300");
    CHECK((*all)[300]->content == "m304");
    auto b = store->History("b", {.last_n = 2});
    REQUIRE(b.ok());
    REQUIRE(b->size() == 3);  // the pinned system message and the last 2
    CHECK((*b)[0]->role == Role::kSystem);
    CHECK((*b)[0]->content == "m301");
    CHECK((*b)[2]->content == "m303");
  };
  // Version 13 adds message_tails and keeps v12's rows as they are.
  {
    auto db = OpenDb(path);
    REQUIRE(Migrate(db.get(), 13).ok());
    CHECK(QueryInt(db.get(), "SELECT count(*) FROM message_tails") == 0);
    CHECK(QueryInt(db.get(), "SELECT sum(n) FROM message_chunks") == 303);
  }
  // Read cold (each store opens with an empty cache), then again after an
  // append and a merge that packs on top of the migrated rows: "a"'s
  // unmerged 301-302 and the new 303 start its tail.
  Options o = QuietOptions(path);
  o.index_merge_rows = 1;
  for (int round = 0; round < 2; ++round) {
    auto store = test::OpenOrDie(o);
    check(store.get(), 302 + round);
    if (round == 0) {
      Message m;
      m.role = Role::kUser;
      m.content = "after";
      REQUIRE(store->Append("a", m).ok());
      REQUIRE(store->Flush(std::chrono::seconds(10)).ok());
    }
    REQUIRE(store->Close().ok());
  }
  auto db = OpenDb(path);
  CHECK(QueryInt(db.get(), "SELECT sum(n) FROM message_chunks") == 303);
  CHECK(QueryInt(db.get(),
                 "SELECT first_seq FROM message_tails WHERE conv_key = 1") ==
        301);
  CHECK(QueryInt(db.get(), "SELECT n FROM message_tails WHERE conv_key = 1") ==
        3);
}
}  // namespace
}  // namespace convstore::internal
