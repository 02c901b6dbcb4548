// Copyright 2026 The convstore Authors.

#include "sqlite/dead_letter_table.h"

#include <string>

namespace convstore::internal {

Status InsertDeadLetter(Db* db, const DeadLetter& d) {
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
