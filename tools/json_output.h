// Copyright 2026 The convstore Authors.
//
// How the tool's subcommands print JSON: one place, so every --json output
// is indented the same way and none of them throws.
//
// Thread-safety: stateless; safe from any thread.

#ifndef CONVSTORE_TOOLS_JSON_OUTPUT_H_
#define CONVSTORE_TOOLS_JSON_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <ostream>

namespace convstore::tools {

// The JSON type of the tool's output: objects keep the order the code
// writes their fields in, which is the order a reader expects.
using json = nlohmann::ordered_json;

// Writes `j` indented by two spaces, then a newline. Invalid UTF-8 (a file
// edited by hand, or the very content a record was refused for) is
// replaced with U+FFFD instead of throwing.
inline void PrintJson(const json& j, std::ostream& out) {
  out << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_JSON_OUTPUT_H_
