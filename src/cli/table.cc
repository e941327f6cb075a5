#include "cli/table.h"

#include <algorithm>

#include "common/text.h"

namespace bifrost::cli {
namespace {

constexpr std::string_view kBold = "\x1b[1m";
constexpr std::string_view kReset = "\x1b[0m";

void AppendHexEscape(std::string& out, unsigned char b) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out.push_back(kHex[b >> 4]);
  out.push_back(kHex[b & 0x0f]);
}

void AppendPadded(std::string& out, std::string_view cell, std::size_t width) {
  out += cell;
  const std::size_t w = DisplayWidth(cell);
  if (w < width) out.append(width - w, ' ');
}

}  // namespace

std::size_t DisplayWidth(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string PrintableCell(std::string_view text, std::size_t max_width) {
  // Each piece is one displayed unit (a character or an escape), so cutting is exact.
  std::vector<std::string> pieces;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::string piece;
    if (b == '\n') {
      piece = "\\n";
    } else if (b == '\t') {
      piece = "\\t";
    } else if (b == '\r') {
      piece = "\\r";
    } else if (b < 0x20 || b == 0x7f) {
      AppendHexEscape(piece, b);
    } else if (b < 0x80) {
      piece.push_back(static_cast<char>(b));
    } else if (const std::size_t len = Utf8SequenceLength(text.substr(i)); len > 0) {
      piece = std::string(text.substr(i, len));
      i += len;
      pieces.push_back(std::move(piece));
      continue;
    } else {
      AppendHexEscape(piece, b);
    }
    pieces.push_back(std::move(piece));
    ++i;
  }
  std::size_t total = 0;
  for (const auto& p : pieces) total += DisplayWidth(p);
  std::string out;
  if (max_width > 0 && total > max_width) {
    const std::size_t budget = max_width > 3 ? max_width - 3 : 0;
    std::size_t used = 0;
    for (const auto& p : pieces) {
      const std::size_t w = DisplayWidth(p);
      if (used + w > budget) break;
      out += p;
      used += w;
    }
    out += "...";
    return out;
  }
  for (const auto& p : pieces) out += p;
  return out;
}

std::string RenderTable(const TableRow& header, const std::vector<TableRow>& rows, bool ansi) {
  const std::size_t columns = header.size();
  std::vector<TableRow> cells;
  cells.reserve(rows.size() + 1);
  cells.push_back({});
  for (const auto& h : header) cells.back().push_back(PrintableCell(h));
  for (const auto& row : rows) {
    TableRow printable;
    for (std::size_t c = 0; c < columns; ++c) {
      printable.push_back(c < row.size() ? PrintableCell(row[c]) : std::string());
    }
    cells.push_back(std::move(printable));
  }
  std::vector<std::size_t> widths(columns, 0);
  for (const auto& row : cells) {
    for (std::size_t c = 0; c < columns; ++c) {
      widths[c] = std::max(widths[c], DisplayWidth(row[c]));
    }
  }
  std::string out;
  for (std::size_t r = 0; r < cells.size(); ++r) {
    std::string line;
    for (std::size_t c = 0; c < columns; ++c) {
      const bool last = c + 1 == columns;
      if (last) {
        line += cells[r][c];
      } else {
        AppendPadded(line, cells[r][c], widths[c]);
        line += "  ";
      }
    }
    // The last column is not padded; a short last cell must not leave trailing spaces either.
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (r == 0 && ansi) {
      out += kBold;
      out += line;
      out += kReset;
    } else {
      out += line;
    }
    out += '\n';
  }
  return out;
}

std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields,
                         bool ansi) {
  std::size_t width = 0;
  for (const auto& [label, value] : fields) {
    width = std::max(width, DisplayWidth(PrintableCell(label)) + 1);
  }
  std::string out;
  for (const auto& [label, value] : fields) {
    const std::string printable_label = PrintableCell(label) + ":";
    if (ansi) out += kBold;
    out += printable_label;
    if (ansi) out += kReset;
    out.append(width - DisplayWidth(printable_label) + 2, ' ');
    out += PrintableCell(value);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  }
  return out;
}

}  // namespace bifrost::cli
