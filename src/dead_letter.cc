// Copyright 2026 The convstore Authors.

#include "dead_letter.h"

#include <absl/strings/escaping.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <variant>

#include "clock.h"

namespace convstore::internal {
namespace {

using nlohmann::json;

// Dumps without throwing: invalid UTF-8 (the very thing a record may have
// been refused for) is replaced, not an exception.
std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json MessageJson(const Message& m) {
  return json{{"seq", m.seq},
              {"role", RoleName(m.role)},
              {"content", m.content},
              {"user_id", m.user_id},
              {"tokens_in", m.tokens_in},
              {"tokens_out", m.tokens_out},
              {"tool_call_id", m.tool_call_id},
              {"tool_name", m.tool_name},
              {"metadata", m.metadata},
              {"created_at_us", m.created_at_us}};
}

// A cache write: kind cache_upsert / cache_delete / cache_purge, key
// "<ns>/<key>", the value base64 (it may be any bytes).
void CacheDeadLetter(const CacheOp& op, DeadLetter* d) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, CacheUpsert>) {
          d->kind = "cache_upsert";
          d->key = r.ns + "/" + r.key;
          d->payload = Dump(
              json{{"value_base64",
                    r.value != nullptr ? absl::Base64Escape(*r.value) : ""},
                   {"expires_at_us", r.expires_at_us},
                   {"updated_at_us", r.updated_at_us}});
        } else if constexpr (std::is_same_v<T, CacheDelete>) {
          d->kind = "cache_delete";
          d->key = r.ns + "/" + r.key;
          d->payload = "{}";
        } else {
          d->kind = "cache_purge";
          d->payload =
              Dump(json{{"cutoff_us", r.cutoff_us}, {"limit", r.limit}});
        }
      },
      op.record);
}

// An audit write: kind "audit", key the action, payload the event (or the
// prune request). Ids and hashes are not part of it: they are assigned at
// commit, and a refused record never got them.
void AuditDeadLetter(const AuditOp& op, DeadLetter* d) {
  d->kind = "audit";
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, AuditAppend>) {
          const AuditEvent& e = r.event;
          d->key = e.action;
          d->payload = Dump(json{{"actor", e.actor},
                                 {"action", e.action},
                                 {"resource", e.resource},
                                 {"outcome", e.outcome},
                                 {"details_json", e.details_json},
                                 {"source_address", e.source_address},
                                 {"ts_us", r.ts_us}});
        } else {
          d->key = "audit.prune";
          d->payload =
              Dump(json{{"before_us", r.before_us}, {"ts_us", r.ts_us}});
        }
      },
      op.record);
}

// A key write: kind key_put / key_usage, key the key id (or the ids). The
// hash is left out (it is enough to validate nothing, but a dead letter is
// for people to read, and there is no reason to spread it); the secret is
// never in an op to begin with.
json KeyRowJson(const KeyRow& r) {
  return json{{"name", r.name},
              {"owner", r.owner},
              {"scopes", r.scopes},
              {"created_us", r.created_us},
              {"expires_us", r.expires_us},
              {"revoked_us", r.revoked_us},
              {"rate_per_s", r.rate_per_s},
              {"burst", r.burst},
              {"rotated_from", r.rotated_from},
              {"replaced_by", r.replaced_by}};
}

void KeyDeadLetter(const KeyOp& op, DeadLetter* d) {
  if (const auto* put = std::get_if<KeyPut>(&op.record)) {
    d->kind = "key_put";
    d->key = put->row.id;
    d->payload = Dump(KeyRowJson(put->row));
    return;
  }
  if (const auto* rot = std::get_if<KeyRotate>(&op.record)) {
    // key: the old key (the one a person would look for), then the new one.
    d->kind = "key_rotate";
    d->key = rot->old_end.id + "," + rot->successor.id;
    d->payload = Dump(json{{"old", KeyRowJson(rot->old_end)},
                           {"new_id", rot->successor.id},
                           {"new", KeyRowJson(rot->successor)}});
    return;
  }
  const auto& flush = std::get<KeyUsageFlush>(op.record);
  d->kind = "key_usage";
  json keys = json::array();
  for (const KeyUsage& u : flush.keys) {
    if (!d->key.empty()) d->key += ",";
    d->key += u.id;
    keys.push_back({u.id, u.request_count, u.last_used_us});
  }
  d->payload = Dump(json{{"keys", std::move(keys)}});
}

}  // namespace

DeadLetter MakeDeadLetter(const WriteOp& op, const Status& error) {
  DeadLetter d;
  d.lsn = op.lsn;
  d.error = error.ToString();
  d.created_at_us = WallMicros();
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, AppendMessageOp>) {
          d.kind = "message";
          d.key = p.conversation_id;
          d.payload = p.message != nullptr ? Dump(MessageJson(*p.message))
                                           : std::string("null");
        } else if constexpr (std::is_same_v<T, DeleteConversationOp>) {
          d.kind = "delete_conversation";
          d.key = p.conversation_id;
          d.payload = "{}";
        } else if constexpr (std::is_same_v<T, PurgeMessagesOp>) {
          d.kind = "purge_messages";
          json rows = json::array();
          for (const StoredMessageRef& r : p.rows) {
            rows.push_back({r.row_id, r.conversation_key, r.seq});
          }
          d.payload = Dump(json{{"rows", std::move(rows)}});
        } else if constexpr (std::is_same_v<T, Boxed<CacheOp>>) {
          CacheDeadLetter(*p, &d);
        } else if constexpr (std::is_same_v<T, Boxed<AuditOp>>) {
          AuditDeadLetter(*p, &d);
        } else if constexpr (std::is_same_v<T, Boxed<KeyOp>>) {
          KeyDeadLetter(*p, &d);
        } else {
          // A record kind without a description here: its type is still
          // named, so it is never anonymous.
          d.kind = "record kind #" + std::to_string(op.payload.index());
          d.payload = "{}";
        }
      },
      op.payload);
  return d;
}

std::string DeadLetterFilePath(const std::string& db_path) {
  return db_path + ".deadletter.jsonl";
}

std::string DeadLetterToJson(const DeadLetter& d) {
  return Dump(json{{"lsn", d.lsn},
                   {"kind", d.kind},
                   {"key", d.key},
                   {"payload", d.payload},
                   {"error", d.error},
                   {"created_at_us", d.created_at_us}});
}

Status DeadLetterFromJson(const std::string& line, DeadLetter* out) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("dead-letter line is not a JSON object");
  }
  auto str = [&](const char* k, std::string* v) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    *v = it->get<std::string>();
    return true;
  };
  auto num = [&](const char* k, auto* v) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer()) return false;
    *v = it->get<std::decay_t<decltype(*v)>>();
    return true;
  };
  if (!num("lsn", &out->lsn) || !str("kind", &out->kind) ||
      !str("key", &out->key) || !str("payload", &out->payload) ||
      !str("error", &out->error) ||
      !num("created_at_us", &out->created_at_us)) {
    return Status::InvalidArgument("dead-letter line lacks a field");
  }
  out->id = 0;
  return Status::OK();
}

Status AppendDeadLetterFile(const std::string& path, const DeadLetter& d) {
  std::string line = DeadLetterToJson(d) + "\n";
  // Read access only for the check below; a file we may only write to
  // still takes the record.
  bool readable = true;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EACCES) {
    readable = false;
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  if (fd < 0) {
    return Status::IOError("open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::IOError("stat " + path + ": " + std::strerror(e));
  }
  // A write cut short (a full disk) may have left a line without its end:
  // start on a line of our own, so this record reads back whole. (Another
  // process appending in between at worst leaves an empty line.)
  char last = '\n';
  if (readable && st.st_size > 0 &&
      ::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
    line.insert(line.begin(), '\n');
  }
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      // The part written stays (truncating could cut another process's
      // record appended meanwhile); the next record starts a new line.
      ::close(fd);
      return Status::IOError("write " + path + ": " + std::strerror(e));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return Status::IOError("fsync " + path + ": " + std::strerror(e));
  }
  ::close(fd);
  if (st.st_size == 0) {
    // A new file's directory entry is durable only once its directory is.
    // Best effort: the record itself is written and synced, and some file
    // systems refuse to sync a directory.
    const std::string dir =
        std::filesystem::path(path).parent_path().empty()
            ? std::string(".")
            : std::filesystem::path(path).parent_path().string();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }
  return Status::OK();
}

}  // namespace convstore::internal
