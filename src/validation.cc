// Copyright 2026 The convstore Authors.

#include "validation.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace convstore::internal {
namespace {

// Each check returns true when the field is acceptable and otherwise sets
// *error. The happy path builds no Status: Append runs these on every call.
bool CheckId(std::string_view what, std::string_view id, bool allow_empty,
             const Options& options, Status* error) {
  if (id.empty()) {
    if (allow_empty) return true;
    *error = Status::InvalidArgument(std::string(what) + " is empty");
    return false;
  }
  if (id.size() > options.max_id_bytes) {
    *error = Status::InvalidArgument(
        std::string(what) + " is " + std::to_string(id.size()) +
        " bytes; the limit is Options::max_id_bytes = " +
        std::to_string(options.max_id_bytes));
    return false;
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      *error = Status::InvalidArgument(std::string(what) +
                                       " contains a NUL or control character");
      return false;
    }
  }
  if (!IsValidUtf8(id)) {
    *error = Status::InvalidArgument(std::string(what) + " is not valid UTF-8");
    return false;
  }
  return true;
}

bool CheckText(std::string_view what, std::string_view text, size_t max,
               Status* error) {
  if (text.size() > max) {
    *error = Status::InvalidArgument(
        std::string(what) + " is " + std::to_string(text.size()) +
        " bytes; the limit is " + std::to_string(max));
    return false;
  }
  if (!IsValidUtf8(text)) {
    *error = Status::InvalidArgument(std::string(what) + " is not valid UTF-8");
    return false;
  }
  return true;
}

bool CheckTokens(std::string_view what, int64_t v, const Options& options,
                 Status* error) {
  if (v >= 0 && v <= options.max_tokens_per_message) return true;
  *error = Status::InvalidArgument(
      std::string(what) + " = " + std::to_string(v) +
      " is outside [0, Options::max_tokens_per_message = " +
      std::to_string(options.max_tokens_per_message) + "]");
  return false;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path: eight bytes at a time while no high bit is set.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, sizeof(word));
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool IsJsonObject(std::string_view s) {
  nlohmann::json j = nlohmann::json::parse(s.begin(), s.end(), nullptr,
                                           /*allow_exceptions=*/false);
  return !j.is_discarded() && j.is_object();
}

Status ValidateConversationId(std::string_view id, const Options& options) {
  Status error;
  CheckId("conversation_id", id, /*allow_empty=*/false, options, &error);
  return error;
}

Status ValidateMessage(const Message& m, const Options& options) {
  int role = static_cast<int>(m.role);
  if (role < static_cast<int>(Role::kSystem) ||
      role > static_cast<int>(Role::kTool)) {
    return Status::InvalidArgument("role " + std::to_string(role) +
                                   " is not one of system, user, assistant,"
                                   " tool");
  }
  Status error;
  if (!CheckText("content", m.content, options.max_content_bytes, &error) ||
      !CheckId("user_id", m.user_id, true, options, &error) ||
      !CheckId("tool_call_id", m.tool_call_id, true, options, &error) ||
      !CheckId("tool_name", m.tool_name, true, options, &error) ||
      !CheckTokens("tokens_in", m.tokens_in, options, &error) ||
      !CheckTokens("tokens_out", m.tokens_out, options, &error) ||
      !CheckText("metadata", m.metadata, options.max_metadata_bytes, &error)) {
    return error;
  }
  if (!m.metadata.empty() && !IsJsonObject(m.metadata)) {
    return Status::InvalidArgument("metadata is not a JSON object");
  }
  if (m.created_at_us < 0) {
    return Status::InvalidArgument("created_at_us is negative");
  }
  return error;
}

Status ValidateHistoryOptions(const HistoryOptions& o) {
  if (o.after_seq < 0) {
    return Status::InvalidArgument("after_seq is negative");
  }
  if (o.limit > 0 && o.last_n > 0) {
    return Status::InvalidArgument(
        "limit (forward page) and last_n (newest) cannot be combined");
  }
  if (o.token_budget < 0) {
    return Status::InvalidArgument("token_budget is negative");
  }
  return Status::OK();
}

Status ValidateStoreOptions(const Options& o) {
  auto invalid = [](const std::string& what) {
    return Status::InvalidArgument("Options::" + what);
  };
  if (o.cache_max_messages_per_conversation == 0) {
    return invalid("cache_max_messages_per_conversation must be at least 1");
  }
  if (o.max_tokens_per_message < 0 ||
      o.max_tokens_per_message > kMaxTokensPerMessage) {
    return invalid("max_tokens_per_message must be in [0, 2^40], not " +
                   std::to_string(o.max_tokens_per_message));
  }
  if (!std::isfinite(o.keys_default_rate_per_s) ||
      o.keys_default_rate_per_s < 0 || o.keys_default_burst < 0) {
    return invalid(
        "keys_default_rate_per_s must be finite and not negative, and "
        "keys_default_burst not negative");
  }
  // A message is one row, and SQLite refuses a value or row longer than
  // its default SQLITE_MAX_LENGTH (1e9 bytes): a bigger one would be
  // acknowledged, then refused at every commit and set aside.
  if (o.max_content_bytes > kMaxContentBytesLimit ||
      o.max_metadata_bytes > kMaxMetadataBytesLimit) {
    return invalid(
        "max_content_bytes must be at most 512 MiB and max_metadata_bytes at "
        "most 64 MiB");
  }
  if (o.queue_max_items == 0 || o.queue_max_bytes == 0) {
    return invalid("queue_max_items and queue_max_bytes must be at least 1");
  }
  // A batch bound of 0 would never let a write into a batch: nothing would
  // commit, and Flush and Close would time out with every write pending.
  if (o.max_batch_ops == 0 || o.max_batch_bytes == 0) {
    return invalid("max_batch_ops and max_batch_bytes must be at least 1");
  }
  // 0 would make the idle writer spin; a write someone waits for (Flush,
  // a sync Append, Close) commits at once whatever the delay.
  if (o.max_flush_delay.count() < 1) {
    return invalid("max_flush_delay must be at least 1 ms");
  }
  if (o.retry_initial_backoff.count() < 1 ||
      o.retry_max_backoff < o.retry_initial_backoff) {
    return invalid(
        "retry backoffs must satisfy 1 ms <= retry_initial_backoff <= "
        "retry_max_backoff");
  }
  // Sizes the store would otherwise have to clamp silently: a cache, pool
  // or merge bound of 0, and a page cache whose size in KiB overflows int.
  if (o.cache_shards == 0 || o.cache_shards > kMaxCacheShards) {
    return invalid("cache_shards must be 1 to " +
                   std::to_string(kMaxCacheShards) + ", not " +
                   std::to_string(o.cache_shards));
  }
  if (o.read_connections == 0) {
    return invalid("read_connections must be at least 1, not 0");
  }
  if (o.index_merge_rows == 0 || o.index_merge_conversations == 0) {
    return invalid(
        "index_merge_rows and index_merge_conversations must be at least 1");
  }
  if (o.sqlite_cache_mib < 1 || o.sqlite_cache_mib > kMaxSqliteCacheMib) {
    return invalid("sqlite_cache_mib must be 1 to " +
                   std::to_string(kMaxSqliteCacheMib) + ", not " +
                   std::to_string(o.sqlite_cache_mib));
  }
  if (o.wal_autocheckpoint_pages < 0 ||
      o.wal_autocheckpoint_pages > kMaxWalAutocheckpointPages) {
    return invalid("wal_autocheckpoint_pages must be 0 (off) to " +
                   std::to_string(kMaxWalAutocheckpointPages) + ", not " +
                   std::to_string(o.wal_autocheckpoint_pages));
  }
  if (o.journal_size_limit < -1) {
    return invalid("journal_size_limit must be -1 (no limit) or more, not " +
                   std::to_string(o.journal_size_limit));
  }
  if (o.warm_conversations < -1) {
    return invalid(
        "warm_conversations must be -1 (all that fit) or more, not " +
        std::to_string(o.warm_conversations));
  }
  if (o.max_id_bytes == 0) {
    return invalid("max_id_bytes must be at least 1, not 0");
  }
  // No duration is negative: the background threads' intervals (0 turns
  // each off) used to read a negative one as 0 without a word. And SQLite
  // takes its busy timeout as an int of ms, and the writer counts in
  // microseconds: past about 24 days a duration would overflow.
  constexpr int64_t kMaxMs = std::numeric_limits<int32_t>::max();
  for (const auto& [name, d] :
       {std::pair<const char*, std::chrono::milliseconds>{"max_flush_delay",
                                                          o.max_flush_delay},
        {"retry_initial_backoff", o.retry_initial_backoff},
        {"retry_max_backoff", o.retry_max_backoff},
        {"retry_budget", o.retry_budget},
        {"queue_full_wait", o.queue_full_wait},
        {"busy_timeout", o.busy_timeout},
        {"release_memory_interval", o.release_memory_interval},
        {"cache_sweep_interval", o.cache_sweep_interval},
        {"keys_usage_flush_interval", o.keys_usage_flush_interval},
        {"keys_refresh_interval", o.keys_refresh_interval}}) {
    if (d.count() < 0 || d.count() > kMaxMs) {
      return invalid(std::string(name) + " must be 0 to 2^31 - 1 ms, not " +
                     std::to_string(d.count()));
    }
  }
  return Status::OK();
}

Status ReadOnlyRefusal() {
  return Status::FailedPrecondition(
      "the store was opened read-only (Options::read_only); it takes no "
      "writes");
}

}  // namespace convstore::internal
