// Copyright 2026 The convstore Authors.
//
// SQL of the dead_letters table (schema v2, docs/schema.md): writing one
// dead letter in its own transaction and reading the newest ones.
//
// Thread safety: each function uses only the connection it is given, which
// its caller owns (the writer's for Insert, a reader's for Select).

#ifndef CONVSTORE_SRC_SQLITE_DEAD_LETTER_TABLE_H_
#define CONVSTORE_SRC_SQLITE_DEAD_LETTER_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "convstore/dead_letter.h"
#include "convstore/status.h"
#include "sqlite/sqlite_handle.h"

namespace convstore::internal {

// In one transaction: inserts `d`, raises store_meta.last_lsn to d.lsn
// (the write is settled, so a later session does not reuse its LSN) and,
// for a message (`message_seq` > 0), its conversation's last_seq to that
// seq (it was acknowledged: a later append must not be given it again;
// best effort, the dead letter is written without it). On failure nothing
// is written.
Status InsertDeadLetter(Db* db, const DeadLetter& d, int64_t message_seq);

// The newest `limit` dead letters, newest first.
Status SelectDeadLetters(Db* db, size_t limit, std::vector<DeadLetter>* out);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_SQLITE_DEAD_LETTER_TABLE_H_
