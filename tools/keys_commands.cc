// Copyright 2026 The convstore Authors.

#include "keys_commands.h"

#include <chrono>
#include <optional>
#include <sstream>
#include <vector>

#include "commands.h"
#include "json_output.h"
#include "printable.h"

namespace convstore::tools {
namespace {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string JoinScopes(const std::vector<std::string>& scopes) {
  std::string out;
  for (const std::string& s : scopes) {
    if (!out.empty()) out += ",";
    out += s;
  }
  return out.empty() ? "-" : out;
}

std::string RateText(const KeyInfo& k) {
  if (k.rate_per_s <= 0) return "unlimited";
  std::ostringstream s;
  s << k.rate_per_s << "/s burst " << k.burst;
  return s.str();
}

json KeyJson(const KeyInfo& k, int64_t now_us) {
  return json{{"id", k.id},
              {"prefix", k.prefix},
              {"name", k.name},
              {"owner", k.owner},
              {"scopes", k.scopes},
              {"state", KeyStateName(k, now_us)},
              {"created_at_us", k.created_at_us},
              {"expires_at_us", k.expires_at_us},
              {"revoked_at_us", k.revoked_at_us},
              {"request_count", k.request_count},
              {"last_used_at_us", k.last_used_at_us},
              {"rate_per_s", k.rate_per_s},
              {"burst", k.burst},
              {"rotated_from", k.rotated_from},
              {"replaced_by", k.replaced_by}};
}

void PrintKeyText(const KeyInfo& k, int64_t now_us, std::ostream& out) {
  out << Printable(k.prefix) << "  " << KeyStateName(k, now_us) << "  "
      << Printable(k.name) << "  owner " << Printable(k.owner) << "\n";
  out << "    scopes " << Printable(JoinScopes(k.scopes)) << "; created "
      << FormatTimestamp(k.created_at_us);
  if (k.expires_at_us > 0)
    out << "; expires " << FormatTimestamp(k.expires_at_us);
  if (k.revoked_at_us > 0)
    out << "; revoked " << FormatTimestamp(k.revoked_at_us);
  out << "\n    " << k.request_count << " requests";
  if (k.last_used_at_us > 0) {
    out << ", last " << FormatTimestamp(k.last_used_at_us);
  }
  out << "; rate " << RateText(k);
  if (!k.rotated_from.empty()) {
    out << "; replaces " << Printable(k.rotated_from);
  }
  if (!k.replaced_by.empty()) {
    out << "; replaced by " << Printable(k.replaced_by);
  }
  out << "\n";
}

}  // namespace

const char* KeyStateName(const KeyInfo& key, int64_t now_us) {
  if (key.revoked_at_us > 0) return "revoked";
  if (key.expires_at_us > 0 && key.expires_at_us <= now_us) return "expired";
  return "active";
}

Status RunKeysList(const KeysListArgs& args, std::ostream& out) {
  StatusOr<std::unique_ptr<Store>> store = OpenForReading(args.db);
  if (!store.ok()) return store.status();
  std::optional<std::string> owner;
  if (!args.owner.empty()) owner = args.owner;
  StatusOr<std::vector<KeyInfo>> keys = (*store)->keys().ListKeys(owner);
  if (!keys.ok()) return CloseAfter(**store, keys.status());
  const int64_t now_us = NowMicros();
  if (args.json) {
    json arr = json::array();
    for (const KeyInfo& k : *keys) arr.push_back(KeyJson(k, now_us));
    PrintJson(arr, out);
  } else if (keys->empty()) {
    out << "no keys\n";
  } else {
    for (const KeyInfo& k : *keys) PrintKeyText(k, now_us, out);
  }
  return CloseAfter(**store, Status::OK());
}

}  // namespace convstore::tools
