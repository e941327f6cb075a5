// A small HTTP/1.1 client for the CLI, the C++ SDK and the tests: one keep-alive
// connection, plain or TLS, JSON bodies. Not thread-safe: one client per thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bifrost::client {

struct ClientOptions {
  std::string address = "http://127.0.0.1:8420";  // BIFROST_ADDR: http(s)://host:port
  std::string ca_file;      // BIFROST_CACERT: PEM file to trust for https (else system CAs)
  int timeout_ms = 30'000;  // per request: connect, send and receive
};

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
};

class HttpClient {
 public:
  // kInvalidArgument for an address that is not http(s)://host[:port] (no path, no
  // user:password@; the port defaults to 80/443) or a ca_file that cannot be loaded. Nothing
  // is connected yet. https always verifies the peer: the chain against ca_file or the
  // system CAs, and the host name (with SNI) or IP address; TLS 1.2 at least.
  static Result<std::unique_ptr<HttpClient>> Create(const ClientOptions& options);
  virtual ~HttpClient() = default;

  // Sends one request and reads the whole response; reconnects once if the kept-alive
  // connection was closed by the server. `target` is the path with its query, already
  // percent-encoded. `bearer` adds "Authorization: Bearer ...". kUnavailable when the
  // server cannot be reached, with a message naming the address.
  //
  // Any HTTP status is a result, not an error. Errors: kInvalidArgument for an unknown
  // method, a target that is not percent-encoded, or a bearer that could inject a header
  // (never quoted); kUnavailable "cannot reach bifrost at ADDR: <reason>" when connecting or
  // the TLS handshake fails, and a message naming ADDR when the exchange fails or
  // timeout_ms passes. An idle connection the server has closed is replaced before use; a
  // reused connection that dies before any byte of the answer is retried once on a new one,
  // except for a POST whose request was fully written (it may have been processed).
  virtual Result<HttpResult> Send(std::string_view method, std::string_view target,
                                  std::optional<std::string_view> json_body = std::nullopt,
                                  std::optional<std::string_view> bearer = std::nullopt) = 0;
};

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters kept).
std::string UrlEncode(std::string_view s);

}  // namespace bifrost::client
