// Copyright 2026 The convstore Authors.
//
// AuditEvent: one entry of the tamper-evident audit log (see audit.h for the
// log itself). Plain data; no thread-safety concerns of its own.

#ifndef CONVSTORE_AUDIT_TYPES_H_
#define CONVSTORE_AUDIT_TYPES_H_

#include <string>

namespace convstore {

// What happened, who did it, to what, and how it ended. Every field is stored
// verbatim and covered by the record's chain hash.
struct AuditEvent {
  // Who acted: a key id, a user id, "system" for the store's own actions.
  // Required, at most 256 bytes, valid UTF-8.
  std::string actor{};
  // What was done, dotted lower case by convention: "key.create",
  // "key.validate", "conversation.delete", "retention.messages".
  // Required, at most 256 bytes, valid UTF-8.
  std::string action{};
  // What it was done to: a key id, a conversation id. May be empty; at most
  // 1 KiB, valid UTF-8.
  std::string resource{};
  // How it ended: "success", "failure" or "denied" by convention. Required,
  // at most 64 bytes, valid UTF-8.
  std::string outcome{};
  // Further details as a JSON object, or empty. Never secrets.
  std::string details_json{};
  // Where the request came from (an IP address, a host name), or empty.
  // At most 256 bytes, valid UTF-8.
  std::string source_address{};
};

}  // namespace convstore

#endif  // CONVSTORE_AUDIT_TYPES_H_
