// JSON as text: a strict checker and a few lossless operations on checked text.
//
// A config value of type json is stored exactly as it was sent. Parsing it into a document
// and serialising that again changes it: a 30-digit integer becomes a double, 1e400 is
// refused, members are re-ordered, escapes are rewritten. So nothing here converts a number
// or re-orders a member; the text that goes in is the text that comes out.
//
// Check() is the one function for untrusted text: it accepts exactly RFC 8259 (one value,
// whitespace around it allowed; strings of valid UTF-8 with valid escapes and paired
// surrogates) and works in one iterative pass, so hostile nesting costs no stack. The other
// functions take text that Check() accepted; on anything else they stay within the text's
// bounds but their result is unspecified. None of them throws (allocation failure aside).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bifrost::config::json_text {

inline constexpr std::size_t kUnlimitedDepth = std::numeric_limits<std::size_t>::max();

struct CheckOptions {
  // Objects and arrays may nest this many levels ("[[1]]" is 2; a scalar is 0).
  std::size_t max_depth = kUnlimitedDepth;
  // {"a":1,"a":2} is valid JSON (RFC 8259 only says names SHOULD be unique); request bodies
  // refuse it, because parsers disagree on which one wins.
  bool reject_duplicate_keys = false;
};

struct CheckError {
  enum class Kind { kSyntax, kTooDeep, kDuplicateKey };
  Kind kind = Kind::kSyntax;
  std::size_t offset = 0;  // the byte where the problem was found
  std::string key;         // kDuplicateKey: the repeated member name, decoded
};

// nullopt when `text` is one valid JSON document within the options' limits.
std::optional<CheckError> Check(std::string_view text, const CheckOptions& options = {});

// `text` without the JSON whitespace around it.
std::string_view Trim(std::string_view text);

// The members of a checked object (whitespace around it allowed), in their order: the
// decoded name and the exact text of the value. Empty for anything but an object.
std::vector<std::pair<std::string, std::string_view>> Members(std::string_view object_text);

// The exact text of the first top-level member called `name` of a checked object, or nullopt.
std::optional<std::string_view> Member(std::string_view object_text, std::string_view name);

// The exact texts of the elements of a checked array. Empty for anything but an array.
std::vector<std::string_view> Elements(std::string_view array_text);

// The decoded content of a checked JSON string token ("\"a\\n\"" -> "a\n"); nullopt when
// `token` is not a string.
std::optional<std::string> DecodeString(std::string_view token);

// Checked text without insignificant whitespace; nothing else changes.
std::string Minify(std::string_view text);

// Checked text laid out as nlohmann::json::dump(indent) lays it out (members and elements
// one per line, `"name": value`, empty containers as {} and []), but with every token,
// number and string escape exactly as in `text`.
std::string Indent(std::string_view text, int indent);

// The compact text of an object whose top-level member `name` is null, with that null
// replaced by `value_text` (checked JSON). nullopt when there is no such null member.
std::optional<std::string> ReplaceNullMember(std::string_view object_text, std::string_view name,
                                             std::string_view value_text);

}  // namespace bifrost::config::json_text
