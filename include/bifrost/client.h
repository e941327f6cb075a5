// The Bifrost C++ SDK: read and write an organization's configuration over the HTTP API.
//
//   #include <bifrost/client.h>
//
//   bifrost::sdk::Client client(bifrost::sdk::ClientOptions::FromEnvironment());
//   const std::string api_key = client.Get("api_key").AsString();
//   const std::int64_t retries = client.Get("retries", bifrost::sdk::ConfigValue::Int(3)).AsInt();
//   client.Set("greeting", bifrost::sdk::ConfigValue::String("hello"));
//
// The semantics mirror the Python SDK (docs/workflows.md): a value is typed by its config's
// type, a missing key is NotFoundError (Python's KeyError), a 403 is PermissionDeniedError
// (PermissionError) and everything else that goes wrong is Error (BifrostError). Nothing is
// ever silently turned into a default. See docs/cpp-sdk.md for the whole reference.
//
// This header depends only on the standard library and nlohmann/json.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bifrost::sdk {

// ---- errors ----

// Anything that goes wrong talking to Bifrost: the server cannot be reached or does not answer
// in time, a 5xx, a 401 (missing, unknown, expired or revoked token), a 4xx other than 403 and
// a missing key, an answer that is not what the API promises, invalid options or arguments,
// and a ConfigValue read as the wrong type. The message says what happened; it never holds a
// config value or a token. Python's `bifrost.BifrostError`.
class Error : public std::runtime_error {
 public:
  // `status`: the HTTP status of the answer the error comes from, 0 when there was none.
  explicit Error(const std::string& message, int status = 0)
      : std::runtime_error(message), status_(status) {}

  // The HTTP status of the server's answer (401, 500, ...), or 0 when the error did not come
  // from an answer (unreachable server, timeout, invalid argument, wrong-type accessor).
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// The key is not set in the organization nor in the global scope it inherits (HTTP 404 on a
// config). Python's `KeyError`. Client::Find and Client::Get with a fallback turn exactly this
// error, and nothing else, into "absent".
class NotFoundError : public Error {
 public:
  explicit NotFoundError(const std::string& message, int status = 404) : Error(message, status) {}
};

// The token is valid but its role or organization does not allow the operation (HTTP 403):
// a reader revealing (Get), a member writing, an execution token naming another
// organization. Python's `PermissionError`.
class PermissionDeniedError : public Error {
 public:
  explicit PermissionDeniedError(const std::string& message, int status = 403)
      : Error(message, status) {}
};

// ---- values ----

// The type of a config entry, as the API names it: "string", "int", "bool", "json", "secret".
enum class ConfigType { kString, kInt, kBool, kJson, kSecret };

// The API name of a type: "string", "int", "bool", "json" or "secret".
std::string_view ConfigTypeName(ConfigType type) noexcept;

// A typed config value: what Client::Get returns and Client::Set writes.
//
// Each accessor reads one type and throws Error (naming the types, never the value) for any
// other: AsString() reads string and secret, AsInt() int, AsBool() bool, AsJson() json.
// Text() reads every type as text.
//
// A json value is kept as the exact JSON text the server stored: numbers of any size or
// precision (123456789012345678901234567890, 1e400), member order and escapes survive
// Text(), and Set() sends that text unchanged. AsJson() parses it with nlohmann::json, which
// turns integers beyond 64 bits into doubles and refuses numbers out of double range.
//
// A secret's text is overwritten (best effort) when the value is destroyed or assigned over;
// copies the caller makes of AsString() or Text() are the caller's to look after.
//
// Client::List() does not reveal secrets: it returns them *masked*, a value of type kSecret
// whose masked() is true and whose AsString() and Text() are "[SECRET]" (the Python SDK's
// string). A masked value cannot be written back with Client::Set.
class ConfigValue {
 public:
  // An empty string (type kString).
  ConfigValue();

  // A string value. `value` must be valid UTF-8 to be written (Client::Set checks).
  static ConfigValue String(std::string value);
  // An int value: a signed 64-bit integer.
  static ConfigValue Int(std::int64_t value);
  // A bool value.
  static ConfigValue Bool(bool value);
  // A json value: any JSON document, serialized compactly. Error if the document cannot be
  // serialized (a string that is not valid UTF-8).
  static ConfigValue Json(const nlohmann::json& value);
  // A json value given as JSON text, kept byte for byte (for numbers no double can hold).
  // Error if `text` is not one valid JSON document (RFC 8259, whitespace around it allowed).
  static ConfigValue JsonText(std::string text);
  // A secret: a string the server stores encrypted and shows only through reveal.
  static ConfigValue Secret(std::string value);
  // A secret whose value is not known: what Client::List() returns for every secret.
  static ConfigValue MaskedSecret();

  // Copies and moves keep the type; a moved-from value is left with an empty text.
  ConfigValue(const ConfigValue& other);
  ConfigValue(ConfigValue&& other) noexcept;
  ConfigValue& operator=(const ConfigValue& other);
  ConfigValue& operator=(ConfigValue&& other) noexcept;
  // Overwrites the value's text (best effort), then frees it.
  ~ConfigValue();

  // The config type of the value.
  ConfigType type() const noexcept { return type_; }
  // True only for a secret returned by Client::List() (its value was not revealed).
  bool masked() const noexcept { return masked_; }

  // The text of a string or secret value ("[SECRET]" for a masked secret). Error for any
  // other type.
  const std::string& AsString() const;
  // The integer of an int value. Error for any other type.
  std::int64_t AsInt() const;
  // The boolean of a bool value. Error for any other type.
  bool AsBool() const;
  // The parsed document of a json value. Error for any other type, and for a document
  // nlohmann::json cannot hold (a number out of double range: read Text() instead).
  nlohmann::json AsJson() const;
  // Every type as text: a string or secret as it is ("[SECRET]" when masked), an int in
  // decimal, a bool as "true" or "false", a json value as its exact JSON text.
  std::string Text() const;

 private:
  ConfigValue(ConfigType type, std::string text, std::int64_t number, bool flag, bool masked);
  [[noreturn]] void ThrowWrongType(std::string_view wanted) const;

  ConfigType type_ = ConfigType::kString;
  bool masked_ = false;
  std::string text_;  // string, secret and json (the exact JSON text)
  std::int64_t int_ = 0;
  bool bool_ = false;
};

// ---- the client ----

// How a Client reaches Bifrost and which scope it works in.
struct ClientOptions {
  // http://HOST[:PORT] or https://HOST[:PORT] (no path). BIFROST_ADDR.
  std::string address = "http://127.0.0.1:8420";
  // The bearer token (bft_... or, inside a workflow, bfx_...). Empty: requests are sent
  // without one and the server answers 401 (Error). BIFROST_TOKEN.
  std::string token;
  // A PEM file of certificates to trust for https; empty: the system's CAs. BIFROST_CACERT.
  std::string ca_file;
  // The organization: its id (a UUID, in any letter case) or its name (looked up once with
  // GET /api/v1/orgs?name=...). BIFROST_ORG_ID, which a workflow execution sets.
  std::optional<std::string> org;
  // Work in the global scope (/api/v1/global/configs; platform administrators only). Must not
  // be combined with `org`.
  bool global = false;
  // Per request: connecting, sending and receiving. A server that takes longer is Error.
  int timeout_ms = 30000;

  // The options from the environment: BIFROST_ADDR (default http://127.0.0.1:8420),
  // BIFROST_TOKEN, BIFROST_CACERT, and BIFROST_ORG_ID as `org` when it is set (inside a
  // workflow). A variable set to the empty string counts as unset. `global` stays false.
  static ClientOptions FromEnvironment();
};

// A connection to Bifrost for one scope: an organization's configs (with the global entries it
// inherits) or the global scope.
//
// The scope is resolved on the first call that needs it, then kept: `options.global` is the
// global scope; `options.org` is that organization (a name is looked up once); otherwise the
// token's own organization (GET /api/v1/whoami, once). A platform administrator's token, which
// belongs to no organization, must set `org` or `global` (Error otherwise).
//
// Keys are 1-255 ASCII letters, digits and underscores; any other key is Error before a request
// is sent. Every call may throw Error (see its comment for NotFoundError and
// PermissionDeniedError).
//
// One kept-alive connection; not thread-safe: use one Client per thread. Movable, not
// copyable.
class Client {
 public:
  // Error if the address is not http(s)://HOST[:PORT], the ca_file cannot be loaded, or both
  // `org` and `global` are set. Nothing is sent yet.
  explicit Client(ClientOptions options);
  ~Client();
  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The value of `key`: the organization's entry, else the global one, typed by the entry's
  // type and with a secret revealed (GET .../configs/{key}/reveal). NotFoundError if the key is
  // set in neither; PermissionDeniedError on 403 (a reader's token may not reveal: Get needs
  // a member's role or above, or an execution token).
  ConfigValue Get(std::string_view key);

  // Get, but `fallback` when the key is not set (NotFoundError only: every other error is
  // still thrown, never turned into the fallback).
  ConfigValue Get(std::string_view key, ConfigValue fallback);

  // Get, but std::nullopt when the key is not set (NotFoundError only).
  std::optional<ConfigValue> Find(std::string_view key);

  // Creates or replaces the entry in this scope (PUT .../configs/{key}); the config type is the
  // value's type. `description`, when given, replaces the entry's description (else it is
  // left empty). Error for a masked secret, or a string, secret or description that is not
  // valid UTF-8 (nothing is sent); Error on 422 (e.g. a value over the size limit);
  // PermissionDeniedError on 403 (e.g. a member's or reader's token).
  void Set(std::string_view key, const ConfigValue& value,
           std::optional<std::string> description = std::nullopt);

  // Every entry of the scope by key: the organization's own and the global ones it does not
  // override, typed as for Get, secrets masked (ConfigValue::masked(); never revealed).
  // PermissionDeniedError on 403.
  std::map<std::string, ConfigValue> List();

  // Deletes this scope's own entry (a global entry behind it stays and becomes visible).
  // True if it was deleted (204), false if this scope had no such entry (404).
  // PermissionDeniedError on 403.
  bool Delete(std::string_view key);

  // The id of the organization this client works in, resolving it if not done yet;
  // std::nullopt for the global scope.
  std::optional<std::string> OrgId();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bifrost::sdk
