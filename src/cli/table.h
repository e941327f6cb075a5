// Plain-text tables for `--format table` output.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bifrost::cli {

using TableRow = std::vector<std::string>;

// Aligned columns separated by two spaces, a header row first, one line per row, no trailing
// spaces. Cells are made printable (see PrintableCell). With `ansi` the header is bold; it is
// false whenever stdout is not a terminal, so pipes and files never see escape codes.
std::string RenderTable(const TableRow& header, const std::vector<TableRow>& rows, bool ansi);

// "Label:  value" lines with the values aligned; labels bold with `ansi`.
std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields, bool ansi);

// `text` as one printable line: control characters and invalid UTF-8 escaped (\n, \t, \xNN),
// and, when `max_width` > 0, cut to that many characters ending in "...".
std::string PrintableCell(std::string_view text, std::size_t max_width = 0);

// Number of characters (UTF-8 code points) in already-printable text.
std::size_t DisplayWidth(std::string_view text);

}  // namespace bifrost::cli
