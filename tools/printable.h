// Copyright 2026 The convstore Authors.
//
// Printable: stored text as the tool prints it to a terminal. Stored
// strings come from callers (audit actors, key names, message content,
// database errors), and a control character in them, such as ESC, would
// otherwise reach the operator's terminal as a command.
//
// Thread-safety: stateless; safe from any thread.

#ifndef CONVSTORE_TOOLS_PRINTABLE_H_
#define CONVSTORE_TOOLS_PRINTABLE_H_

#include <cstdio>
#include <string>
#include <string_view>

namespace convstore::tools {

// `s` with every control character but newline and tab escaped: \r, \xNN
// for the others (DEL included), and \u00NN for the C1 controls U+0080 to
// U+009F (UTF-8 C2 80 to C2 9F; some terminals take C2 9B for ESC [). Other
// UTF-8 passes unchanged.
inline std::string Printable(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const unsigned char next =
        i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", next);
      r += buf;
      ++i;
    } else if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) {
      r.push_back(static_cast<char>(c));
    } else if (c == '\r') {
      r += "\\r";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      r += buf;
    }
  }
  return r;
}

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_PRINTABLE_H_
