// Copyright 2026 The convstore Authors.

#include "table.h"

#include <algorithm>
#include <sstream>

namespace convstore::tools {

size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void Pad(std::ostream& out, const std::string& s, size_t width, bool right) {
  const size_t w = Width(s);
  const std::string fill(w < width ? width - w : 0, ' ');
  if (right) {
    out << fill << s;
  } else {
    out << s << fill;
  }
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<bool>& right_align,
                const std::vector<std::vector<std::string>>& rows,
                std::ostream& out, const std::string& indent) {
  const size_t cols = header.size();
  std::vector<size_t> width(cols, 0);
  for (size_t c = 0; c < cols; ++c) width[c] = Width(header[c]);
  // A right-aligned last column (a number) is padded too; a left-aligned
  // one is not, and may hold several lines.
  const size_t padded = right_align[cols - 1] ? cols : cols - 1;
  for (const auto& row : rows) {
    for (size_t c = 0; c < padded; ++c) {
      width[c] = std::max(width[c], Width(row[c]));
    }
  }
  size_t last_col = indent.size();
  for (size_t c = 0; c + 1 < cols; ++c) last_col += width[c] + 2;
  const std::string continuation(last_col, ' ');
  // Lines end without trailing spaces (an empty last cell left two, and
  // padding before it).
  auto emit = [&out](std::string line) {
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  };
  auto print_row = [&](const std::vector<std::string>& row) {
    std::ostringstream line;
    line << indent;
    for (size_t c = 0; c + 1 < cols; ++c) {
      Pad(line, row[c], width[c], right_align[c]);
      line << "  ";
    }
    const std::string& tail = row[cols - 1];
    if (padded == cols) {
      Pad(line, tail, width[cols - 1], true);
      emit(line.str());
      return;
    }
    size_t begin = 0;
    while (true) {
      size_t nl = tail.find('\n', begin);
      line << tail.substr(begin, nl - begin);
      emit(line.str());
      if (nl == std::string::npos) break;
      begin = nl + 1;
      line.str("");
      line << continuation;
    }
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

}  // namespace convstore::tools
