// Copyright 2026 The convstore Authors.
//
// Input validation for the public API: every check that keeps bad input out
// of memory and the database, each failing with an InvalidArgument that
// names the field and the limit.
//
// Thread safety: pure functions.

#ifndef CONVSTORE_SRC_VALIDATION_H_
#define CONVSTORE_SRC_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <limits>
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
// The store's Options at Open, those whose out-of-range values would not
// fail on their own but hang, spin, overflow or break an invariant
// (a writer that never commits, a backoff of 0, a per-conversation bound
// of 0 messages, token sums that overflow), or that the store would have
// to clamp silently (0 shards or read connections, negative intervals).
Status ValidateStoreOptions(const Options& options);
// What every write of a store opened with Options::read_only returns.
Status ReadOnlyRefusal();
// The largest Options::max_tokens_per_message: sums over a conversation of
// up to 2^23 such messages fit int64 (with the default, 10^7, up to 9 * 10^11
// messages).
inline constexpr int64_t kMaxTokensPerMessage = int64_t{1} << 40;
// The largest Options::max_content_bytes and max_metadata_bytes: together
// under SQLite's default SQLITE_MAX_LENGTH (1e9 bytes) for one row.
inline constexpr size_t kMaxContentBytesLimit = size_t{512} << 20;
inline constexpr size_t kMaxMetadataBytesLimit = size_t{64} << 20;
// The most Options::cache_shards and Options::cache_entries_shards (a
// key-value cache shard is 168 bytes on x86-64, plus its heap block and,
// once used, its tables).
inline constexpr size_t kMaxCacheShards = size_t{1} << 16;
// The largest Options::wal_autocheckpoint_pages: the checkpointer counts
// up to 8 times it (kWriterTakesOver) in an int.
inline constexpr int kMaxWalAutocheckpointPages =
    std::numeric_limits<int>::max() / 8;
// The largest Options::sqlite_cache_mib (1 TiB): SQLite takes the size as
// an int of KiB.
inline constexpr int kMaxSqliteCacheMib = 1 << 20;

}  // namespace convstore::internal

#endif  // CONVSTORE_SRC_VALIDATION_H_
