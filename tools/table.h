// Copyright 2026 The convstore Authors.
//
// The tool's text tables: columns padded to their widest cell, so that a
// listing reads as columns whatever its ids and numbers.
//
// Thread-safety: stateless; safe from any thread.

#ifndef CONVSTORE_TOOLS_TABLE_H_
#define CONVSTORE_TOOLS_TABLE_H_

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace convstore::tools {

// Display width of UTF-8 text (code points; good enough for ids and names).
size_t Width(const std::string& s);

// Writes `s` padded with spaces to `width`, on the left when `right`.
void Pad(std::ostream& out, const std::string& s, size_t width, bool right);

// Prints rows under a header, each line starting with `indent` and columns
// separated by two spaces; `right_align[c]` right-aligns column c (numbers).
// A left-aligned last column is not padded; its continuation lines (after
// '\n') are indented to where it starts. A right-aligned one is padded
// like the others. Lines have no trailing spaces. Every row
// has header.size() cells.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<bool>& right_align,
                const std::vector<std::vector<std::string>>& rows,
                std::ostream& out, const std::string& indent = "");

}  // namespace convstore::tools

#endif  // CONVSTORE_TOOLS_TABLE_H_
