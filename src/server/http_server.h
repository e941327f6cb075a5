// The HTTP/1.1 server: Boost.Beast on a fixed pool of threads running one io_context.
//
// It turns bytes into HttpRequest values, calls one dispatcher per request and writes the
// HttpResponse back; it knows nothing of routes, tokens or config. Per request it:
//   - assigns a request id (16 random hex characters), returned as X-Request-Id;
//   - percent-decodes the path and parses the query (server/request_target.h);
//   - adds "Cache-Control: no-store" (responses carry secrets) and
//     "X-Content-Type-Options: nosniff" to every response;
//   - writes one access-log line (server/access_log.h).
//
// Limits, so a slow or hostile client cannot hold resources:
//   - at most max_connections connections are open at once (TLS handshakes in progress
//     count); a connection beyond that is accepted and closed at once, with a warning in
//     the log at most once a second;
//   - a request's headers must arrive within header_timeout of its first byte (a new
//     connection must send its first byte within header_timeout too, after the TLS
//     handshake, which has the same bound); too slow: the connection is closed;
//   - a kept-alive connection with no new request within idle_timeout is closed;
//   - the body must arrive within body_timeout, a response be written within write_timeout;
//   - a body above max_body_bytes (by Content-Length, or while reading a chunked body) gets
//     413 payload_too_large without the dispatcher being called, and the connection is
//     closed; headers above max_header_bytes get 431; malformed HTTP gets 400; all close;
//   - bodies are buffered whole before the dispatcher (which authenticates) runs, so all
//     bodies being received or handled at once share one budget, max_inflight_body_bytes,
//     charged with a body's declared size (Content-Length, or each chunk's size as it is
//     announced) before its bytes are read, and released when its request is done. A body
//     that does not fit gets 503 unavailable ("server busy", Retry-After: 1) and the
//     connection is closed;
//   - when accept() fails (typically out of file descriptors: EMFILE/ENFILE) the server
//     waits briefly before accepting again, logging at most one line a second.
//
// A response with a `hold` is parked without blocking a pool thread until it is released
// (from any thread), or until hold_timeout passes (503). A release that comes after the
// server stopped is ignored; the held body is wiped either way.
//
// The dispatcher runs on a pool thread and may block (it does database work). An exception
// escaping it becomes a 500 (nothing about the exception reaches the client or the log: its
// what() could quote request data).
//
// Thread-safety: Start, Stop and the accessors may be called from any thread except a pool
// thread (Stop from inside the dispatcher would wait for itself).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "server/access_log.h"
#include "server/http_types.h"

namespace bifrost::server {

// Handles one request. `request` is the server's own copy and may be moved from. The
// dispatcher fills `log` for the access log (e.g. the authenticated token's id).
using Dispatcher = std::function<HttpResponse(HttpRequest& request, RequestLog& log)>;

// Names the route template of a request, for the access log ("" when none). The server logs
// this instead of the raw path.
using RouteNamer = std::function<std::string(const HttpRequest& request)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";  // "host:port", "[v6]:port"; port 0 = any free port
  std::string tls_cert_file;           // PEM chain; with tls_key_file, serve HTTPS (TLS 1.2+)
  std::string tls_key_file;            // PEM private key
  int threads = 4;                     // the pool; at least 1
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  // Connections open at once, TLS handshakes included; at least 1.
  std::size_t max_connections = 1024;
  // Request bodies in flight at once, by declared size; at least max_body_bytes.
  std::size_t max_inflight_body_bytes = std::size_t{64} << 20;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds write_timeout{60'000};
  // How long Stop() lets dispatched requests finish before cutting connections.
  std::chrono::milliseconds shutdown_grace{10'000};
  // How long a held response (HttpResponse::hold) may wait for its release; after that the
  // client gets 503 unavailable and the held body is wiped unsent.
  std::chrono::milliseconds hold_timeout{15'000};
  AccessLog* log = nullptr;  // request and error lines; nullptr: no logging. Must outlive.
  RouteNamer route_namer;    // optional; without it the access log's route is null
};

// A parsed "host:port" listen address.
struct ListenAddress {
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 0;
};
// kInvalidArgument for anything but host:port / [v6]:port with a port in 0..65535.
Result<ListenAddress> ParseListenAddress(std::string_view text);
// True for "localhost" and loopback IP literals (127.0.0.0/8, ::1). Other host names are
// treated as not loopback (no DNS lookup is trusted for this decision).
bool IsLoopbackHost(std::string_view host);

class HttpServer {
 public:
  // Loads the TLS certificate and key (if any), resolves and binds the address and starts
  // listening, but accepts nothing yet. kInvalidArgument for bad options, kFailedPrecondition
  // when the address cannot be bound or the TLS files cannot be loaded, with the reason.
  static Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options,
                                                    Dispatcher dispatcher);
  ~HttpServer();  // Stop()s if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the pool and begins accepting. Once only.
  void Start();

  // Graceful shutdown: stops accepting, closes every connection that has no request
  // dispatched (idle ones, and those still in their TLS handshake or sending headers or a
  // body), lets dispatched requests finish (their responses carry "Connection: close") for
  // up to shutdown_grace, then stops the pool and closes what is left. Returns when every
  // pool thread has exited. Idempotent.
  void Stop();

  std::uint16_t port() const;             // the bound port (the real one when 0 was asked)
  const std::string& bound_host() const;  // the bound address, e.g. "127.0.0.1" or "::1"
  bool tls() const;

  // Connections open right now (for tests and diagnostics).
  std::size_t open_connections() const;
  // Bytes of the in-flight body budget taken right now (for tests and diagnostics).
  std::size_t inflight_body_bytes() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bifrost::server
