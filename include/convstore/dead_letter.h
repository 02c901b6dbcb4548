// Copyright 2026 The convstore Authors.
//
// DeadLetter: an acknowledged write the database refused for good (a
// constraint violation, a value too big, a type mismatch). The writer sets
// it aside instead of blocking the queue or dropping it: into the
// `dead_letters` table (in its own transaction) or, if even that fails,
// as a JSON line in `<db path>.deadletter.jsonl`. Store::DeadLetters reads
// the table; Stats::dead_letters counts them. See docs/durability.md.
//
// Thread safety: a plain value.

#ifndef CONVSTORE_DEAD_LETTER_H_
#define CONVSTORE_DEAD_LETTER_H_

#include <cstdint>
#include <string>

namespace convstore {

struct DeadLetter {
  // The write's LSN (LSNs of a later session may repeat it; `id` is unique).
  uint64_t lsn = 0;
  // Row id in the dead_letters table (0 for one read from the file).
  int64_t id = 0;
  // What the write was: "message", "delete_conversation", or another
  // record kind's name.
  std::string kind;
  // The conversation id (or the record's key) it was for.
  std::string key;
  // The record as JSON text (a message: all its fields), so it can be
  // inspected and replayed by hand.
  std::string payload;
  // The database's error.
  std::string error;
  // Wall-clock micros when it was set aside.
  int64_t created_at_us = 0;
};

}  // namespace convstore

#endif  // CONVSTORE_DEAD_LETTER_H_
