// Copyright 2026 The convstore Authors.
//
// Input validation for the public API: every check that keeps bad input out
// of memory and the database, each failing with an InvalidArgument that
// names the field and the limit.
//
// Thread safety: pure functions.

#ifndef CONVSTORE_SRC_VALIDATION_H_
#define CONVSTORE_SRC_VALIDATION_H_

#include <string_view>

#include "convstore/options.h"
#include "convstore/status.h"
#include "convstore/types.h"

namespace convstore::internal {

// True if `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);
// True if `s` parses as a JSON object.
bool IsJsonObject(std::string_view s);

// 1..max_id_bytes of UTF-8 without NUL or control characters.
Status ValidateConversationId(std::string_view id, const Options& options);
// The fields of a message on Append (role, content, ids, tokens, metadata).
Status ValidateMessage(const Message& m, const Options& options);
Status ValidateHistoryOptions(const HistoryOptions& o);

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_VALIDATION_H_
