// Copyright 2026 The convstore Authors.

#include "sqlite/dead_letter_table.h"

#include <string>

namespace convstore::internal {
namespace {

// Raises the conversation's last_seq to `seq`, creating its row (with no
// messages, so listings skip it) if it has none.
Status ReserveSeq(Db* db, const std::string& conversation_id, int64_t seq) {
  Stmt st;
  Status s = db->Prepare(
      "INSERT INTO conversations(conversation_id, last_seq) VALUES (?1, ?2)"
      " ON CONFLICT(conversation_id) DO UPDATE SET"
      " last_seq = max(last_seq, excluded.last_seq)",
      &st);
  if (!s.ok()) return s;
  st.BindText(1, conversation_id);
  st.Bind(2, seq);
  return st.Exec();
}

}  // namespace

Status InsertDeadLetter(Db* db, const DeadLetter& d, int64_t message_seq) {
  Status s = db->Exec("BEGIN IMMEDIATE");
  if (!s.ok()) return s.WithPrefix("dead letter");
  Stmt ins;
  s = db->Prepare(
      "INSERT INTO dead_letters(lsn, kind, record_key, payload, error,"
      " created_at_us) VALUES (?, ?, ?, ?, ?, ?)",
      &ins);
  if (s.ok()) {
    ins.Bind(1, static_cast<int64_t>(d.lsn));
    ins.BindText(2, d.kind);
    ins.BindText(3, d.key);
    ins.BindText(4, d.payload);
    ins.BindText(5, d.error);
    ins.Bind(6, d.created_at_us);
    s = ins.Exec();
  }
  if (s.ok()) {
    Stmt lsn;
    s = db->Prepare(
        "UPDATE store_meta SET value = max(value, ?) WHERE key = 'last_lsn'",
        &lsn);
    if (s.ok()) {
      lsn.Bind(1, static_cast<int64_t>(d.lsn));
      s = lsn.Exec();
    }
  }
  if (s.ok() && message_seq > 0) {
    // Best effort, in a savepoint: a conversations row that cannot take it
    // (a full disk, a trigger) must not send the dead letter to the file.
    s = db->Exec("SAVEPOINT reserve_seq");
    if (s.ok()) {
      if (ReserveSeq(db, d.key, message_seq).ok()) {
        s = db->Exec("RELEASE reserve_seq");
      } else {
        s = db->Exec("ROLLBACK TO reserve_seq");
        if (s.ok()) s = db->Exec("RELEASE reserve_seq");
      }
    }
  }
  if (s.ok()) s = db->Exec("COMMIT");
  if (!s.ok()) {
    (void)db->Exec("ROLLBACK");
    return s.WithPrefix("dead letter");
  }
  return Status::OK();
}

Status SelectDeadLetters(Db* db, size_t limit, std::vector<DeadLetter>* out) {
  Stmt st;
  Status s = db->Prepare(
      "SELECT id, lsn, kind, record_key, payload, error, created_at_us"
      " FROM dead_letters ORDER BY id DESC LIMIT ?",
      &st);
  if (!s.ok()) return s;
  st.Bind(1, static_cast<int64_t>(limit));
  while (st.Step(&s)) {
    DeadLetter d;
    d.id = st.Int(0);
    d.lsn = static_cast<uint64_t>(st.Int(1));
    d.kind = st.Text(2);
    d.key = st.Text(3);
    d.payload = st.Text(4);
    d.error = st.Text(5);
    d.created_at_us = st.Int(6);
    out->push_back(std::move(d));
  }
  return s;
}

}  // namespace convstore::internal
