// Copyright 2026 The convstore Authors.
//
// Schema version 3: the voice-agent analytics tables (docs/schema.md).

#ifndef CONVSTORE_SRC_SQLITE_ANALYTICS_SCHEMA_H_
#define CONVSTORE_SRC_SQLITE_ANALYTICS_SCHEMA_H_

namespace convstore::internal {

// Every table has an INTEGER PRIMARY KEY `id` (insertion order, used to
// bound retention batches) and an index on its time column (range queries
// and retention). Events keep their variant in generic columns; see
// docs/schema.md for the mapping.
inline constexpr const char* kAnalyticsSchemaV3 = R"sql(
CREATE TABLE analytics_sessions (
  id              INTEGER PRIMARY KEY,
  session_id      TEXT NOT NULL UNIQUE,
  conversation_id TEXT NOT NULL DEFAULT '',
  user_id         TEXT NOT NULL DEFAULT '',
  tenant          TEXT NOT NULL DEFAULT '',
  channel         TEXT NOT NULL DEFAULT '',
  metadata        TEXT,
  started_at_us   INTEGER NOT NULL DEFAULT 0,
  ended_at_us     INTEGER NOT NULL DEFAULT 0,
  status          INTEGER NOT NULL DEFAULT 0,
  final_state     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX analytics_sessions_by_start
  ON analytics_sessions(started_at_us);
CREATE INDEX analytics_sessions_by_tenant
  ON analytics_sessions(tenant, started_at_us);
CREATE TABLE analytics_turns (
  id                     INTEGER PRIMARY KEY,
  session_id             TEXT NOT NULL,
  turn_number            INTEGER NOT NULL,
  at_us                  INTEGER NOT NULL,
  interrupted            INTEGER,
  eou_delay_ms           REAL,
  transcription_delay_ms REAL,
  stt_ttfb_ms            REAL,
  stt_duration_ms        REAL,
  llm_ttft_ms            REAL,
  llm_duration_ms        REAL,
  tts_ttfb_ms            REAL,
  tts_duration_ms        REAL,
  e2e_ms                 REAL,
  stt_audio_s            REAL,
  stt_confidence         REAL,
  tokens_per_s           REAL,
  tts_audio_s            REAL,
  cost                   REAL,
  prompt_tokens          INTEGER,
  completion_tokens      INTEGER,
  cached_tokens          INTEGER,
  tts_characters         INTEGER,
  stt_model              TEXT,
  stt_provider           TEXT,
  llm_model              TEXT,
  llm_provider           TEXT,
  tts_model              TEXT,
  tts_provider           TEXT
);
CREATE INDEX analytics_turns_by_time ON analytics_turns(at_us);
CREATE INDEX analytics_turns_by_session
  ON analytics_turns(session_id, turn_number);
CREATE TABLE analytics_metrics (
  id         INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL DEFAULT '',
  name       TEXT NOT NULL,
  value      REAL NOT NULL,
  tags       TEXT,
  at_us      INTEGER NOT NULL
);
CREATE INDEX analytics_metrics_by_name ON analytics_metrics(name, at_us);
CREATE INDEX analytics_metrics_by_session
  ON analytics_metrics(session_id, at_us);
CREATE INDEX analytics_metrics_by_time ON analytics_metrics(at_us);
CREATE TABLE analytics_errors (
  id         INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  at_us      INTEGER NOT NULL,
  type       TEXT NOT NULL,
  severity   INTEGER NOT NULL,
  message    TEXT NOT NULL DEFAULT '',
  context    TEXT,
  resolved   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX analytics_errors_by_time ON analytics_errors(at_us);
CREATE INDEX analytics_errors_by_session ON analytics_errors(session_id);
CREATE TABLE analytics_events (
  id         INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  at_us      INTEGER NOT NULL,
  kind       INTEGER NOT NULL,
  name       TEXT,
  value      TEXT,
  detail     TEXT,
  number     REAL,
  flag       INTEGER
);
CREATE INDEX analytics_events_by_time ON analytics_events(at_us);
CREATE INDEX analytics_events_by_session ON analytics_events(session_id);
)sql";

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_ANALYTICS_SCHEMA_H_
