// Copyright 2026 The convstore Authors.

#include "erase_command.h"

#include <chrono>
#include <memory>
#include <string>

#include "commands.h"
#include "json_output.h"

namespace convstore::tools {

Status RunErase(const EraseArgs& args, std::ostream& out) {
  if (args.conversations.empty() && args.sessions.empty()) {
    return Status::InvalidArgument(
        "give --conversation or --session (each may repeat)");
  }
  StatusOr<std::unique_ptr<Store>> store = OpenExisting(args.db);
  if (!store.ok()) return store.status();
  Store& s = **store;
  json conversations = json::array();
  for (const std::string& id : args.conversations) {
    StatusOr<uint64_t> lsn = s.DeleteConversation(id);
    if (!lsn.ok()) return CloseAfter(s, lsn.status());
    Status durable = s.WaitDurable(*lsn, std::chrono::seconds(60));
    if (!durable.ok()) return CloseAfter(s, durable);
    conversations.push_back(id);
  }
  json sessions = json::array();
  for (const std::string& id : args.sessions) {
    StatusOr<int64_t> removed = s.analytics().DeleteSession(id);
    if (!removed.ok()) return CloseAfter(s, removed.status());
    sessions.push_back(json{{"id", id}, {"records", *removed}});
  }
  // The WAL still holds earlier frames with the erased bytes until Close
  // truncates it: the command succeeds only if Close does.
  Status closed = CloseAfter(s, Status::OK());
  if (!closed.ok()) return closed;
  if (args.json) {
    PrintJson(json{{"conversations", conversations}, {"sessions", sessions}},
              out);
  } else {
    for (const std::string& id : args.conversations) {
      out << "conversation " << id << ": deleted\n";
    }
    for (const json& session : sessions) {
      out << "session " << session["id"].get<std::string>() << ": "
          << session["records"].get<int64_t>() << " records deleted\n";
    }
  }
  return Status::OK();
}

}  // namespace convstore::tools
