// Copyright 2026 The convstore Authors.
//
// The part of `convstore demo` beyond conversations: the same store, through
// the same writer, also holds an API key, cache entries with TTLs, a
// voice-agent session per conversation with per-turn metrics, and the audit
// log. RecordServices writes them before the restart and remembers what it
// wrote; VerifyServices checks after the reopen that each survived (and
// that an expired cache entry did not).

#ifndef CONVSTORE_TOOLS_DEMO_SERVICES_H_
#define CONVSTORE_TOOLS_DEMO_SERVICES_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "convstore/convstore.h"

namespace convstore::tools {

// One conversation the demo wrote: its id and user.
struct DemoConversation {
  std::string id;
  std::string user;
  size_t user_turns = 0;  // a session records one turn per user message
};

// What RecordServices wrote, to compare with after the reopen.
struct DemoServices {
  // The key's secret lives only here, in this process's memory: the store
  // keeps its hash.
  std::string key_id;
  std::string key_secret;
  int64_t validations = 0;
  std::map<std::string, std::string> cache_live;  // key -> value, ns "tools"
  std::string cache_expired_key;                  // ns "tools", ttl 1 ms
  std::string counter_key;                        // ns "rate"
  int64_t counter = 0;
  // Per tenant: sessions, and each turn's end-to-end latency.
  struct Tenant {
    int64_t sessions = 0;
    std::vector<double> e2e_ms;
  };
  std::map<std::string, Tenant> tenants;
};

// Records the key, cache entries, sessions and an audit record. Narrates
// one line per kind to `out` with `indent`.
Status RecordServices(Store& store,
                      const std::vector<DemoConversation>& conversations,
                      DemoServices* written, std::ostream& out,
                      const std::string& indent);

// Checks each kind against `written`, one line each; adds the number that
// differ to `*failures`. Errors only when a call fails outright.
Status VerifyServices(Store& store, const DemoServices& written,
                      std::ostream& out, const std::string& indent,
                      size_t* failures);

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_DEMO_SERVICES_H_
