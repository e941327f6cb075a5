// JSON in and out of the REST API: strict request-body parsing, field readers that name the
// field they reject, and the wire form of timestamps.
//
// Untrusted input is handled gracefully: nothing here throws (allocation failure aside), every
// rejection is a message fit for a 400 response, and no message quotes the body, so a
// secret in a malformed body never reaches an error message or a log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "config/config_types.h"
#include "server/http_types.h"

namespace bifrost::server::json_io {

using Json = nlohmann::json;

// Nesting limit for JSON values (the config model's): deep enough for any real document,
// shallow enough that no later recursive walk of it can exhaust the stack.
inline constexpr std::size_t kMaxJsonDepth = config::kMaxJsonDepth;
// A request body is one object around such values, so it may nest one level more: a json
// config value of exactly kMaxJsonDepth levels is accepted, one level more is a 400.
inline constexpr std::size_t kMaxBodyDepth = kMaxJsonDepth + 1;

struct ParseOptions {
  std::size_t max_depth = kMaxJsonDepth;
  // Request bodies reject {"a":1,"a":2}: which one a reader takes differs between parsers,
  // and {"type":"string","type":"secret"} must not be ambiguous. Stored values (validated by
  // the config model, which allows duplicates) are read with this off; the last one wins.
  bool reject_duplicate_keys = true;
};

// Parses one JSON document (nothing but whitespace may follow it). The message on failure
// says what is wrong and where (a byte offset), never quoting the input. Strings are copied
// out of the parser's buffer, which is then overwritten, so a secret in the body is not left
// behind in it (best effort: the caller's copy of the text is the caller's to wipe).
std::expected<Json, std::string> ParseJson(std::string_view text, const ParseOptions& options = {});

// The body of a request that must carry a JSON object: Content-Type application/json
// (parameters allowed; a charset must be utf-8), a non-empty body, valid UTF-8, valid JSON
// nesting at most kMaxBodyDepth levels, no duplicate key in any object, an object at the top.
// The message is for a 400 bad_request.
std::expected<Json, std::string> ParseObjectBody(const HttpRequest& request);

// A request body as ParseObjectBody reads it, with one top-level member kept as the exact
// text the client sent: a json config value is stored as sent, never parsed into doubles and
// serialised again (which turns 123456789012345678901234567890 into 1.2345678901234568e+29,
// re-orders members and refuses 1e400).
struct ObjectBody {
  Json document;                         // the kept member, when present, is null here
  std::optional<std::string_view> kept;  // its text, a view into request.body; nullopt if absent
};
std::expected<ObjectBody, std::string> ParseObjectBodyKeeping(const HttpRequest& request,
                                                              std::string_view member);

// A message naming the first member of `object` not in `allowed`, or nullopt.
std::optional<std::string> FindUnknownField(const Json& object,
                                            std::initializer_list<std::string_view> allowed,
                                            std::string_view what);

// Typed optional fields of a JSON object. Absent: nullopt. Present with the wrong JSON type
// (including null): an error message naming the field and the expected type.
std::expected<std::optional<std::string>, std::string> OptionalString(const Json& object,
                                                                      std::string_view field);
// A JSON integer in the signed 64-bit range (1.0 and "1" are not integers).
std::expected<std::optional<std::int64_t>, std::string> OptionalInt64(const Json& object,
                                                                      std::string_view field);

// RFC 3339 in UTC with microseconds: "2026-11-29T14:02:08.123456Z".
std::string FormatTimestamp(UnixMicros micros);
// The timestamp, or JSON null.
Json TimestampOrNull(const std::optional<UnixMicros>& micros);

// Compact serialisation that cannot throw on bad UTF-8 (it is replaced by U+FFFD).
std::string Dump(const Json& value);

// The compact JSON of `document` (an object whose top-level member `field` is null) with
// that member set to the string `text`. The text is escaped straight into the one output
// string, reserved up front, so no intermediate buffer holding it (a JSON string, a growing
// serializer output) is freed unwiped: for a revealed secret or a new token. nullopt when
// `field` is not a null member of `document` or `text` is not valid UTF-8.
std::optional<std::string> DumpWithStringField(const Json& document, std::string_view field,
                                               std::string_view text);

// The compact JSON of `document` (an object whose top-level member `field` is null) with
// that member replaced by `json_text`, verbatim but for surrounding whitespace. nullopt when
// `field` is not a null member of `document` or `json_text` is not one JSON document nesting
// at most kMaxJsonDepth levels (so the response stays valid JSON whatever was stored).
std::optional<std::string> DumpWithRawField(const Json& document, std::string_view field,
                                            std::string_view json_text);

// Overwrites the characters of every string in `value` (best effort for plaintext that had
// to pass through a JSON document, such as a revealed secret).
void WipeStrings(Json& value);

// Calls WipeStrings on a document when the scope ends, however a handler returns.
class WipeOnExit {
 public:
  explicit WipeOnExit(Json& document) : document_(document) {}
  ~WipeOnExit() { WipeStrings(document_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  Json& document_;
};

// "null", "an object", "an array", "a string", "a boolean" or "a number": the kind of a
// JSON value, for error messages that must not quote the value itself.
std::string_view KindName(const Json& value);

}  // namespace bifrost::server::json_io
