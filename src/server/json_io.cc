#include "server/json_io.h"

#include <chrono>
#include <cstdio>
#include <limits>
#include <new>
#include <utility>
#include <vector>

#include "common/text.h"
#include "config/json_text.h"
#include "crypto/secure_buffer.h"

namespace bifrost::server::json_io {
namespace {

// Builds the document from SAX events, so the same single pass can stop at the depth limit,
// refuse duplicate keys and wipe every string from the lexer's buffer once it is copied.
// (nlohmann's own DOM parser offers none of the three.)
class DocumentBuilder final : public nlohmann::json_sax<Json> {
 public:
  explicit DocumentBuilder(const ParseOptions& options) : options_(options) {}

  bool null() override { return Add(Json(nullptr)); }
  bool boolean(bool value) override { return Add(Json(value)); }
  bool number_integer(number_integer_t value) override { return Add(Json(value)); }
  bool number_unsigned(number_unsigned_t value) override { return Add(Json(value)); }
  bool number_float(number_float_t value, const string_t&) override { return Add(Json(value)); }
  bool string(string_t& value) override {
    const bool added = Add(Json(value));
    crypto::SecureWipe(value.data(), value.size());
    return added;
  }
  bool binary(binary_t&) override { return false; }  // not produced by the JSON reader
  bool start_object(std::size_t) override { return Open(Json::object()); }
  bool key(string_t& value) override {
    pending_key_ = value;
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(Json::array()); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    // The token text is deliberately dropped: it may be part of a secret.
    error_position_ = position;
    return false;
  }

  Json TakeDocument() { return std::move(root_); }

  std::string ErrorMessage() const {
    if (too_deep_) {
      return "nests deeper than " + std::to_string(options_.max_depth) + " levels";
    }
    if (duplicate_key_) {
      return "has the key " + QuoteForMessage(*duplicate_key_) + " twice in one object";
    }
    return "is not valid JSON (error at byte " + std::to_string(error_position_) + ")";
  }

 private:
  // Places `value` in the innermost open container (or makes it the document) and returns
  // where it now lives, or nullptr after a duplicate key.
  Json* Place(Json&& value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Json& parent = *open_.back();
    if (parent.is_array()) {
      parent.get_ref<Json::array_t&>().push_back(std::move(value));
      return &parent.get_ref<Json::array_t&>().back();
    }
    auto& members = parent.get_ref<Json::object_t&>();
    auto [it, inserted] = members.try_emplace(pending_key_, nullptr);
    if (!inserted && options_.reject_duplicate_keys) {
      duplicate_key_ = pending_key_;
      return nullptr;
    }
    it->second = std::move(value);
    return &it->second;
  }

  bool Add(Json&& value) { return Place(std::move(value)) != nullptr; }

  bool Open(Json&& container) {
    if (open_.size() >= options_.max_depth) {
      too_deep_ = true;
      return false;
    }
    // Safe to keep: a container's parent is not modified again until the container closes.
    Json* placed = Place(std::move(container));
    if (placed == nullptr) return false;
    open_.push_back(placed);
    return true;
  }

  bool Close() {
    open_.pop_back();
    return true;
  }

  const ParseOptions& options_;
  Json root_;
  std::vector<Json*> open_;
  std::string pending_key_;
  bool too_deep_ = false;
  std::optional<std::string> duplicate_key_;
  std::size_t error_position_ = 0;
};

// application/json, optionally with parameters; a charset parameter must say UTF-8, the
// only encoding JSON may use between systems (RFC 8259 section 8.1).
bool IsJsonContentType(std::string_view header) {
  std::size_t semicolon = header.find(';');
  if (AsciiLower(TrimSpacesAndTabs(header.substr(0, semicolon))) != "application/json")
    return false;
  while (semicolon != std::string_view::npos) {
    header.remove_prefix(semicolon + 1);
    semicolon = header.find(';');
    const std::string_view parameter = TrimSpacesAndTabs(header.substr(0, semicolon));
    const std::size_t equals = parameter.find('=');
    if (equals == std::string_view::npos) continue;
    if (AsciiLower(TrimSpacesAndTabs(parameter.substr(0, equals))) != "charset") continue;
    std::string_view value = TrimSpacesAndTabs(parameter.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (AsciiLower(value) != "utf-8") return false;
  }
  return true;
}

// Parses `text`; on failure, what is wrong with it as a predicate ("is not valid JSON ...").
std::expected<Json, std::string> Parse(std::string_view text, const ParseOptions& options) {
  DocumentBuilder builder(options);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &builder, Json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (...) {
    // sax_parse reports syntax errors through parse_error(); anything else still must not
    // escape as an exception whose message may carry a fragment of the input.
    ok = false;
  }
  if (!ok) return std::unexpected(builder.ErrorMessage());
  return builder.TakeDocument();
}

// What a valid JSON text that is not an object is, from its first byte.
std::string_view KindOfText(std::string_view text) {
  switch (text.empty() ? '\0' : text.front()) {
    case '[':
      return "an array";
    case '"':
      return "a string";
    case 't':
    case 'f':
      return "a boolean";
    case 'n':
      return "null";
    default:
      return "a number";
  }
}

// ParseObjectBody and ParseObjectBodyKeeping. The whole body is checked as text first (syntax,
// depth, duplicate keys), which needs no number to fit a double; then each member but the
// kept one is parsed on its own, wiping strings as ParseJson does.
std::expected<ObjectBody, std::string> ParseBody(const HttpRequest& request,
                                                 std::optional<std::string_view> kept) {
  if (request.body.empty()) {
    return std::unexpected(std::string("the request body is empty; a JSON object is required"));
  }
  if (!IsJsonContentType(request.Header("content-type"))) {
    return std::unexpected(
        std::string("the request body must be JSON sent with Content-Type: application/json"));
  }
  if (!IsValidUtf8(request.body)) {
    return std::unexpected(std::string("the request body is not valid UTF-8"));
  }
  if (const auto error = config::json_text::Check(
          request.body, {.max_depth = kMaxBodyDepth, .reject_duplicate_keys = true})) {
    switch (error->kind) {
      case config::json_text::CheckError::Kind::kTooDeep:
        return std::unexpected(
            "the request body nests deeper than " + std::to_string(kMaxBodyDepth) +
            " levels (the object and a value of at most " + std::to_string(kMaxJsonDepth) + ")");
      case config::json_text::CheckError::Kind::kDuplicateKey:
        return std::unexpected("the request body has the key " + QuoteForMessage(error->key) +
                               " twice in one object");
      case config::json_text::CheckError::Kind::kSyntax:
        break;
    }
    // Counted from 1, as the parser counts: one past the end for a body that stops early.
    return std::unexpected("the request body is not valid JSON (error at byte " +
                           std::to_string(error->offset + 1) + ")");
  }
  const std::string_view text = config::json_text::Trim(request.body);
  if (text.front() != '{') {
    return std::unexpected("the request body is " + std::string(KindOfText(text)) +
                           "; a JSON object is required");
  }
  ObjectBody body{.document = Json::object(), .kept = std::nullopt};
  for (const auto& [name, value_text] : config::json_text::Members(text)) {
    if (kept && name == *kept) {
      body.kept = value_text;
      body.document[name] = nullptr;
      continue;
    }
    auto value = Parse(value_text, {.max_depth = kMaxJsonDepth, .reject_duplicate_keys = true});
    if (!value) {
      // The text is valid JSON, so the parser refused a number no double can hold (1e400).
      WipeStrings(body.document);
      return std::unexpected("field " + QuoteForMessage(name) +
                             " of the request body holds a number out of range");
    }
    body.document[name] = std::move(*value);
  }
  return body;
}

}  // namespace

std::string_view KindName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported JSON value";
  }
}

std::expected<Json, std::string> ParseJson(std::string_view text, const ParseOptions& options) {
  auto document = Parse(text, options);
  if (!document) return std::unexpected("the JSON document " + document.error());
  return document;
}

std::expected<ObjectBody, std::string> ParseObjectBodyKeeping(const HttpRequest& request,
                                                              std::string_view member) {
  return ParseBody(request, member);
}

std::expected<Json, std::string> ParseObjectBody(const HttpRequest& request) {
  auto body = ParseBody(request, std::nullopt);
  if (!body) return std::unexpected(std::move(body.error()));
  return std::move(body->document);
}

std::optional<std::string> FindUnknownField(const Json& object,
                                            std::initializer_list<std::string_view> allowed,
                                            std::string_view what) {
  for (const auto& [name, value] : object.items()) {
    bool known = false;
    for (std::string_view field : allowed) known = known || field == name;
    if (!known) {
      std::string list;
      for (std::string_view field : allowed) {
        if (!list.empty()) list += ", ";
        list += field;
      }
      return "unknown field " + QuoteForMessage(name) + " in " + std::string(what) +
             "; the fields are " + list;
    }
  }
  return std::nullopt;
}

std::expected<std::optional<std::string>, std::string> OptionalString(const Json& object,
                                                                      std::string_view field) {
  const auto it = object.find(field);
  if (it == object.end()) return std::nullopt;
  if (!it->is_string()) {
    return std::unexpected("field '" + std::string(field) + "' must be a string, not " +
                           std::string(KindName(*it)));
  }
  return it->get<std::string>();
}

std::expected<std::optional<std::int64_t>, std::string> OptionalInt64(const Json& object,
                                                                      std::string_view field) {
  const auto it = object.find(field);
  if (it == object.end()) return std::nullopt;
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::unexpected("field '" + std::string(field) +
                             "' is outside the signed 64-bit integer range");
    }
    return static_cast<std::int64_t>(value);
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  return std::unexpected(
      "field '" + std::string(field) + "' must be an integer, not " +
      std::string(it->is_number_float() ? "a fractional number" : KindName(*it)));
}

std::string FormatTimestamp(UnixMicros micros) { return FormatRfc3339(micros); }

Json TimestampOrNull(const std::optional<UnixMicros>& micros) {
  if (!micros) return nullptr;
  return FormatTimestamp(*micros);
}

std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<std::string> DumpWithStringField(const Json& document, std::string_view field,
                                               std::string_view text) {
  if (!document.is_object() || !IsValidUtf8(text)) return std::nullopt;
  const auto member = document.find(field);
  if (member == document.end() || !member->is_null()) return std::nullopt;
  const std::string skeleton = Dump(document);
  // Inside a serialised string every '"' is escaped, so the unescaped `"field":null` can
  // only be the member itself.
  const std::string needle = Dump(Json(field)) + ":null";
  const std::size_t at = skeleton.find(needle);
  if (at == std::string::npos) return std::nullopt;
  const std::size_t value_at = at + needle.size() - 4;  // where "null" starts

  std::string out;
  out.reserve(skeleton.size() + 2 + 6 * text.size());  // "\u00XX" is the longest escape
  out.append(skeleton, 0, value_at);
  out.push_back('"');
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[byte >> 4]);
          out.push_back(kHex[byte & 0xF]);
        } else {
          out.push_back(c);  // UTF-8 passes through, as Dump() writes it
        }
      }
    }
  }
  out.push_back('"');
  out.append(skeleton, value_at + 4);
  return out;
}

std::optional<std::string> DumpWithRawField(const Json& document, std::string_view field,
                                            std::string_view json_text) {
  if (!document.is_object()) return std::nullopt;
  if (config::json_text::Check(json_text, {.max_depth = kMaxJsonDepth})) return std::nullopt;
  return config::json_text::ReplaceNullMember(Dump(document), field,
                                              config::json_text::Trim(json_text));
}

void WipeStrings(Json& value) {
  if (value.is_string()) {
    auto& text = value.get_ref<std::string&>();
    crypto::SecureWipe(text.data(), text.size());
  } else if (value.is_structured()) {
    for (auto& child : value) WipeStrings(child);
  }
}

}  // namespace bifrost::server::json_io
