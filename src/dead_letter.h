// Copyright 2026 The convstore Authors.
//
// Turning a refused write into a DeadLetter, and the last-resort
// dead-letter file (`<db path>.deadletter.jsonl`, one JSON object a line)
// used when the database cannot take the dead letter either.
//
// Thread safety: free functions; AppendDeadLetterFile is called only from
// the writer thread (one appender per store; another process appending to
// the same file appends with O_APPEND too, and a line one of them cut short
// is followed by a new line, not continued).

#ifndef CONVSTORE_SRC_DEAD_LETTER_H_
#define CONVSTORE_SRC_DEAD_LETTER_H_

#include <string>

#include "convstore/dead_letter.h"
#include "convstore/status.h"
#include "write_op.h"

namespace convstore::internal {

// Describes `op` (kind, key, payload as JSON) with the database's `error`.
DeadLetter MakeDeadLetter(const WriteOp& op, const Status& error);

// The dead-letter file next to the database at `db_path`.
std::string DeadLetterFilePath(const std::string& db_path);

// Appends `d` as one JSON line to `path` (created 0600 if missing) and
// fsyncs it. IOError if it cannot.
Status AppendDeadLetterFile(const std::string& path, const DeadLetter& d);

// The JSON line AppendDeadLetterFile writes (no newline), and back. Parse
// never throws: a malformed line gives InvalidArgument.
std::string DeadLetterToJson(const DeadLetter& d);
Status DeadLetterFromJson(const std::string& line, DeadLetter* out);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_DEAD_LETTER_H_
