// Copyright 2026 The convstore Authors.

#include "sqlite/migrations.h"

#include <algorithm>
#include <string>

#include "clock.h"
#include "sqlite/analytics_rollups.h"
#include "sqlite/analytics_schema.h"
#include "sqlite/audit_schema.h"
#include "sqlite/cache_schema.h"
#include "sqlite/keys_schema.h"
#include "sqlite/message_chunks.h"

namespace convstore::internal {
namespace {

// Version 1. See docs/schema.md for why the layout looks like this:
// `messages` is a rowid table that every batch appends to at its end, and
// the (conversation, seq) index is split in two - a small recent part that
// each batch writes and a large merged part that is written only in bulk
// merges - so the pages a batch dirties do not grow with the file.
constexpr const char* kV1 = R"sql(
CREATE TABLE store_meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO store_meta(key, value) VALUES ('last_lsn', 0);
CREATE TABLE conversations (
  conv_key         INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id  TEXT NOT NULL UNIQUE,
  user_id          TEXT NOT NULL DEFAULT '',
  message_count    INTEGER NOT NULL DEFAULT 0,
  tokens_in        INTEGER NOT NULL DEFAULT 0,
  tokens_out       INTEGER NOT NULL DEFAULT 0,
  first_at_us      INTEGER NOT NULL DEFAULT 0,
  last_at_us       INTEGER NOT NULL DEFAULT 0,
  last_seq         INTEGER NOT NULL DEFAULT 0,
  first_system_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_by_activity
  ON conversations(last_at_us, conversation_id);
CREATE INDEX conversations_by_user
  ON conversations(user_id, last_at_us, conversation_id);
CREATE TABLE messages (
  id            INTEGER PRIMARY KEY,
  conv_key      INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  lsn           INTEGER NOT NULL,
  role          INTEGER NOT NULL,
  content       TEXT NOT NULL,
  user_id       TEXT,
  tokens_in     INTEGER NOT NULL,
  tokens_out    INTEGER NOT NULL,
  tool_call_id  TEXT,
  tool_name     TEXT,
  metadata      TEXT,
  created_at_us INTEGER NOT NULL
);
CREATE TABLE message_index (
  conv_key   INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (conv_key, seq)
) WITHOUT ROWID;
CREATE TABLE recent_message_index (
  conv_key   INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (conv_key, seq)
) WITHOUT ROWID;
)sql";

// Version 2 (issue 4): writes the database refused for good, set aside
// by the writer instead of blocking the queue or being dropped.
constexpr const char* kV2 = R"sql(
CREATE TABLE dead_letters (
  id            INTEGER PRIMARY KEY,
  lsn           INTEGER NOT NULL,
  kind          TEXT NOT NULL,
  record_key    TEXT NOT NULL,
  payload       TEXT NOT NULL,
  error         TEXT NOT NULL,
  created_at_us INTEGER NOT NULL
);
)sql";

// Version 4 (issue 6, message retention): how many of a conversation's
// messages retention removed. message_count keeps counting every message
// ever appended; message_count - purged_count are stored.
constexpr const char* kV4 = R"sql(
ALTER TABLE conversations ADD COLUMN purged_count INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 9 (issue 3, throughput): batches stop writing an index entry per
// message. The recent part of the index moves into message_index and is
// dropped; the messages above store_meta 'merged_through_id' are indexed in
// memory instead (sqlite/message_overlay.h) and merged in bulk from
// `messages` itself. 'last_message_id' is the highest message id ever
// assigned: the writer assigns ids above it, so an id is never reused (a
// reused id at or below the watermark would be a message no index holds).
constexpr const char* kV9 = R"sql(
INSERT INTO message_index(conv_key, seq, message_id)
  SELECT conv_key, seq, message_id FROM recent_message_index
  ORDER BY conv_key, seq;
DROP TABLE recent_message_index;
INSERT INTO store_meta(key, value)
  VALUES ('merged_through_id', (SELECT coalesce(max(id), 0) FROM messages));
INSERT INTO store_meta(key, value)
  VALUES ('last_message_id', (SELECT coalesce(max(id), 0) FROM messages));
)sql";

// Version 10 (issue 3, throughput): the two activity indexes key on
// activity_at_us instead of last_at_us. A batch moves last_at_us of every
// conversation it appends to; with last_at_us indexed that moved two index
// entries per conversation per batch, most of a batch's cost. activity_at_us
// is last_at_us as of the last merge: the merge (and a retention purge)
// sets it, so it differs only for conversations with a message above
// 'merged_through_id', and listings order those by their last_at_us
// (docs/architecture.md, "Unmerged messages").
constexpr const char* kV10 = R"sql(
ALTER TABLE conversations ADD COLUMN activity_at_us INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET activity_at_us = last_at_us;
DROP INDEX conversations_by_activity;
DROP INDEX conversations_by_user;
CREATE INDEX conversations_by_activity
  ON conversations(activity_at_us, conversation_id);
CREATE INDEX conversations_by_user
  ON conversations(user_id, activity_at_us, conversation_id);
)sql";

// Version 11 (issue 3, throughput): batches stop updating the summary
// columns; the merge folds each conversation's unmerged messages into them
// (and a purge does, before it removes unmerged rows). summarized_through_id
// says how far: the row covers its messages with id <= it, readers add the
// rest (docs/architecture.md, "Summaries folded at merge"). Rows written
// before this version cover every message they have.
constexpr const char* kV11 = R"sql(
ALTER TABLE conversations
  ADD COLUMN summarized_through_id INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET summarized_through_id =
  (SELECT value FROM store_meta WHERE key = 'last_message_id');
UPDATE conversations SET activity_at_us = last_at_us
  WHERE activity_at_us <> last_at_us;
)sql";

// Version 12 (issue 3, throughput): the merged index packs each
// conversation's (seq, message id) pairs into runs, one row per run
// (sqlite/message_chunks.h), so a merge writes about one row per
// conversation instead of one per message. The backfill (PackMessageIndex)
// packs message_index and drops it. entries holds the n pairs as varint
// deltas.
constexpr const char* kV12 = R"sql(
CREATE TABLE message_chunks (
  conv_key  INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  n         INTEGER NOT NULL,
  entries   BLOB NOT NULL,
  PRIMARY KEY (conv_key, first_seq)
) WITHOUT ROWID;
)sql";

// Version 13 (issue 3, throughput at 10M rows): each conversation's newest
// run, while not full, lives in message_tails, so a merge rewrites that
// small table's rows instead of inserting one row per conversation among
// message_chunks' pages (sqlite/message_chunks.h). Version 12's rows stay
// as they are: every one of them is a valid run, and the next merge of a
// conversation starts its tail.
constexpr const char* kV13 = R"sql(
CREATE TABLE message_tails (
  conv_key  INTEGER PRIMARY KEY,
  first_seq INTEGER NOT NULL,
  n         INTEGER NOT NULL,
  entries   BLOB NOT NULL
) WITHOUT ROWID;
)sql";

constexpr Migration kMigrations[] = {
    {1, "conversations and messages", kV1},
    {2, "dead letters", kV2},
    {3, "voice-agent session analytics", kAnalyticsSchemaV3},
    {4, "message retention", kV4},
    {5, "cache entries", kCacheSchemaV5},
    {6, "audit log", kAuditSchemaV6},
    {7, "api keys", kKeysSchemaV7},
    {8, "analytics turn rollups", kAnalyticsRollupsSchemaV8,
     BackfillTurnRollups},
    {9, "unmerged messages indexed in memory", kV9},
    {10, "activity indexes refreshed at merge", kV10},
    {11, "summaries folded at merge", kV11},
    {12, "packed message index", kV12, PackMessageIndex},
    {13, "message index tails", kV13},
};

bool TableExists(Db* db, const char* name) {
  Stmt st;
  if (!db->Prepare("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                   &st)
           .ok()) {
    return false;
  }
  st.BindText(1, name);
  Status s;
  return st.Step(&s);
}

Status Apply(Db* db, const Migration& m) {
  Status s = db->Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return s;
  // Another process opening the same file may have applied this migration
  // between our version check and our write lock: look again under it.
  int64_t applied = 0;
  if (TableExists(db, "schema_migrations")) {
    Stmt st;
    s = db->Prepare("SELECT count(*) FROM schema_migrations WHERE version = ?",
                    &st);
    if (s.ok()) {
      st.Bind(1, m.version);
      if (st.Step(&s)) applied = st.Int(0);
    }
  }
  if (s.ok() && applied != 0) return db->Exec("COMMIT");
  if (s.ok()) s = db->Exec(m.sql);
  if (s.ok() && m.backfill != nullptr) s = m.backfill(db);
  if (s.ok()) {
    Stmt st;
    s = db->Prepare(
        "INSERT INTO schema_migrations(version, name, applied_at_us) "
        "VALUES (?, ?, ?)",
        &st);
    if (s.ok()) {
      st.Bind(1, m.version);
      st.BindText(2, m.name);
      st.Bind(3, WallMicros());
      s = st.Exec();
    }
  }
  if (s.ok()) {
    s = db->Exec("PRAGMA user_version = " + std::to_string(m.version));
  }
  if (s.ok()) s = db->Exec("COMMIT");
  if (!s.ok()) {
    (void)db->Exec("ROLLBACK");
    return s.WithPrefix("migration " + std::to_string(m.version) + " (" +
                        m.name + ")");
  }
  return s;
}

}  // namespace

std::span<const Migration> AllMigrations() { return kMigrations; }

int LatestSchemaVersion() {
  return kMigrations[std::size(kMigrations) - 1].version;
}

Status SchemaVersion(Db* db, int64_t* out) {
  *out = 0;
  if (!TableExists(db, "schema_migrations")) return Status::OK();
  return db->QueryInt("SELECT coalesce(max(version), 0) FROM schema_migrations",
                      out);
}

Status CheckOwnership(Db* db) {
  // One statement, so one read transaction: read apart, another process
  // creating the file could commit in between and make a fresh file look
  // like a foreign one (no application_id yet, but tables).
  Stmt st;
  Status s = db->Prepare(
      "SELECT (SELECT application_id FROM pragma_application_id),"
      " (SELECT count(*) FROM sqlite_master)",
      &st);
  if (!s.ok()) return s;
  int64_t app_id = 0;
  int64_t objects = 0;
  if (st.Step(&s)) {
    app_id = st.Int(0);
    objects = st.Int(1);
  }
  if (!s.ok()) return s;
  if (app_id == kApplicationId) return Status::OK();
  if (app_id != 0 || objects != 0) {
    return Status::Corruption(
        "not a convstore database: the SQLite file belongs to another "
        "application (application_id " +
        std::to_string(app_id) + ", " + std::to_string(objects) +
        " schema objects)");
  }
  return Status::OK();
}

namespace {

// The schema version of a convstore file (Corruption for another
// application's), as its bookkeeping table says. NotSupported when the
// table or user_version, which a newer convstore sets with each migration
// it applies (so a file whose table lags or was edited still counts as
// newer), is past what this build knows.
Status OwnedSchemaVersion(Db* db, int64_t* current) {
  Status s = CheckOwnership(db);
  if (!s.ok()) return s;
  s = SchemaVersion(db, current);
  if (!s.ok()) return s;
  int64_t user_version = 0;
  s = db->QueryInt("PRAGMA user_version", &user_version);
  if (!s.ok()) return s;
  const int64_t newest = std::max(*current, user_version);
  if (newest > LatestSchemaVersion()) {
    return Status::NotSupported(
        "database schema version " + std::to_string(newest) +
        " is newer than this build of convstore supports (" +
        std::to_string(LatestSchemaVersion()) + "); upgrade convstore");
  }
  return Status::OK();
}

}  // namespace

Status CheckSchemaCurrent(Db* db) {
  int64_t current = 0;
  Status s = OwnedSchemaVersion(db, &current);
  if (!s.ok()) return s;
  if (current == 0) {
    return Status::FailedPrecondition(
        "the file holds no convstore store yet; a read-only open cannot "
        "create one");
  }
  if (current < LatestSchemaVersion()) {
    return Status::FailedPrecondition(
        "database schema version " + std::to_string(current) +
        " is older than this build's (" +
        std::to_string(LatestSchemaVersion()) +
        "); a read-only open does not migrate: open it read-write once");
  }
  return Status::OK();
}

Status Migrate(Db* db, int target) {
  // Checked before anything is written, so a newer file is refused byte
  // for byte untouched.
  int64_t current = 0;
  Status s = OwnedSchemaVersion(db, &current);
  if (!s.ok()) return s;
  // Marking the file and creating the bookkeeping table are one
  // transaction, and the table is created whenever it is missing, so an
  // open interrupted at any point leaves a file the next open can finish.
  // A file marked already is not written to (the pragma rewrites the header
  // even with the same value): one refused later in the open, say for a
  // damaged store_meta, stays byte for byte as it was.
  int64_t app_id = 0;
  int64_t has_table = 0;
  s = db->QueryInt("PRAGMA application_id", &app_id);
  if (s.ok()) {
    s = db->QueryInt(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND"
        " name = 'schema_migrations'",
        &has_table);
  }
  if (!s.ok()) return s;
  const bool marked = app_id == kApplicationId && has_table == 1;
  if (!marked) {
    s = db->Exec(
        "BEGIN IMMEDIATE;"
        "PRAGMA application_id = " +
        std::to_string(kApplicationId) +
        ";"
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "  version INTEGER PRIMARY KEY,"
        "  name TEXT NOT NULL,"
        "  applied_at_us INTEGER NOT NULL);"
        "COMMIT");
  }
  if (!s.ok()) {
    (void)db->Exec("ROLLBACK");
    return s;
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current || m.version > target) continue;
    s = Apply(db, m);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace convstore::internal
