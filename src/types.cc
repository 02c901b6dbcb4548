// Copyright 2026 The convstore Authors.

#include "convstore/types.h"

namespace convstore {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kSystem:
      return "system";
    case Role::kUser:
      return "user";
    case Role::kAssistant:
      return "assistant";
    case Role::kTool:
      return "tool";
  }
  return "unknown";
}

bool ParseRole(const std::string& name, Role* out) {
  for (Role r : {Role::kSystem, Role::kUser, Role::kAssistant, Role::kTool}) {
    if (name == RoleName(r)) {
      *out = r;
      return true;
    }
  }
  return false;
}

}  // namespace convstore
