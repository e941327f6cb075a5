#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/text.h"
#include "crypto/random.h"
#include "crypto/secure_buffer.h"
#include "server/errors.h"
#include "server/request_target.h"

namespace bifrost::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

constexpr std::size_t kReadChunk = 4096;
// After an error response that closes the connection, unread request bytes are drained for
// at most this long (so the client sees the response instead of a reset).
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr std::size_t kLingerBytes = 4 << 20;
// A failing accept() (e.g. out of file descriptors) is retried after this pause instead of
// spinning: the listening socket stays readable while the backlog holds connections.
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
// The TLS 1.2 cipher suites: forward-secret key exchange (ECDHE) with an AEAD cipher only, in
// the server's order of preference. TLS 1.3 keeps OpenSSL's defaults (all of them are).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string NewRequestId() {
  std::array<std::uint8_t, 8> bytes{};
  if (crypto::RandomBytes(bytes)) {
    return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  // The CSPRNG failing is not a reason to drop a request; ids need only be unique.
  static std::atomic<std::uint64_t> counter{0};
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(counter.fetch_add(1) | (1ULL << 63)));
  return buf;
}

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsValidHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), IsTokenChar);
}

bool IsValidHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Errors that end a connection without anything to answer: the peer went away, a timeout
// fired, or we cancelled the operation.
bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer;
}

// Converts Beast's (Boost's) string_view.
std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called (from any thread) when the server stops: finish the dispatched request, if any,
  // then close. Every other connection (idle, in its TLS handshake, sending its headers or
  // body) closes at once.
  virtual void Shutdown() = 0;
};

// What the server and all of its sessions share. Sessions hold it by shared_ptr, so it
// outlives every session however the io_context is torn down.
struct ServerShared {
  HttpServerOptions options;
  Dispatcher dispatcher;
  std::atomic<bool> stopping{false};

  // Whether the event loop still exists: a held response's release (from another thread)
  // posts to it only under this lock and while this is true. Stop() clears it before the
  // loop is destroyed.
  std::mutex loop_mu;
  bool loop_alive = true;  // guarded by loop_mu

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint64_t, std::weak_ptr<SessionBase>> sessions;  // guarded by mu
  std::uint64_t next_session_id = 0;                             // guarded by mu

  // Session objects alive, counted from construction (before the TLS handshake) to
  // destruction: what max_connections caps.
  std::atomic<std::size_t> connections{0};
  // The part of max_inflight_body_bytes that sessions hold.
  std::atomic<std::size_t> body_bytes_in_flight{0};

  // Takes `bytes` of the body budget; false (and nothing taken) when they do not fit.
  bool ReserveBodyBytes(std::size_t bytes) {
    std::size_t taken = body_bytes_in_flight.load();
    do {
      if (bytes > options.max_inflight_body_bytes - taken) return false;
    } while (!body_bytes_in_flight.compare_exchange_weak(taken, taken + bytes));
    return true;
  }
  void ReleaseBodyBytes(std::size_t bytes) { body_bytes_in_flight.fetch_sub(bytes); }

  void LogError(std::string_view msg, std::initializer_list<LogField> fields = {}) const {
    if (options.log != nullptr) options.log->Error(msg, fields);
  }
};

// One connection. Everything it does runs on its own strand, so its members need no locks.
// Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <typename Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <typename... StreamArgs>
  Session(std::shared_ptr<ServerShared> shared, std::string client, StreamArgs&&... args)
      : shared_(std::move(shared)),
        stream_(std::forward<StreamArgs>(args)...),
        client_(std::move(client)) {
    shared_->connections.fetch_add(1);
  }

  ~Session() override {
    ReleaseBodyBudget();
    shared_->connections.fetch_sub(1);
    std::lock_guard lock(shared_->mu);
    shared_->sessions.erase(id_);
    shared_->cv.notify_all();
  }

  // Registers the session and starts it; the session keeps itself alive through its
  // pending operations.
  void Run() {
    {
      std::lock_guard lock(shared_->mu);
      id_ = shared_->next_session_id++;
      shared_->sessions.emplace(id_, this->weak_from_this());
    }
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void Shutdown() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->shutdown_ = true;
      // Only a dispatched request (its handler running, or its response being written) is
      // let finish. A client still sending headers or a body could take up to body_timeout
      // and is not owed an answer: its pending read is cancelled and the connection closes.
      if (self->phase_ != Phase::kDispatching && self->phase_ != Phase::kWriting) {
        beast::get_lowest_layer(self->stream_).cancel();
      }
    });
  }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kDispatching, kWriting, kLingering, kClosed };

  const HttpServerOptions& options() const { return shared_->options; }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void Begin() {
    if (shutdown_ || shared_->stopping.load()) return Close();
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      lowest().expires_after(options().header_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->WaitForRequest();
                              });
    } else {
      WaitForRequest();
    }
  }

  // Waits for the first byte of the next request: up to header_timeout on a new connection,
  // idle_timeout between requests of a kept-alive one.
  void WaitForRequest() {
    if (shutdown_ || shared_->stopping.load()) return Close();
    parser_.emplace();
    parser_->body_limit(options().max_body_bytes);
    parser_->header_limit(
        static_cast<std::uint32_t>(std::min<std::size_t>(options().max_header_bytes, UINT32_MAX)));
    parser_->on_chunk_header(on_chunk_header_);
    if (buffer_.size() > 0) return ReadHeader();  // pipelined request already buffered
    phase_ = Phase::kIdle;
    lowest().expires_after(first_request_ ? options().header_timeout : options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    phase_ = Phase::kReading;
    start_ = SteadyClock::now();
    entry_ = RequestLogEntry{};
    entry_.request_id = NewRequestId();
    entry_.client_address = client_;
    over_budget_ = false;
    lowest().expires_after(options().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    // Set as soon as the request line is parsed, so refused requests are logged with it.
    entry_.method = std::string(Sv(parser_->get().method_string()));
    if (ec) return OnReadError(ec);
    const auto& request = parser_->get();
    if (parser_->is_done()) return Dispatch();
    if (shutdown_) return Close();
    // The body's declared size is charged to the budget before any of it is read (and
    // before "100 Continue" invites it): Beast reserves a Content-Length body's whole size
    // up front. A chunked body is charged chunk by chunk, in OnChunkHeader.
    if (const auto length = parser_->content_length(); length && !ReserveBodyBudget(*length)) {
      return RefuseBusy();
    }
    const auto expect = request[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      continue_.emplace(http::status::continue_, request.version());
      lowest().expires_after(options().write_timeout);
      http::async_write(stream_, *continue_,
                        [self = this->shared_from_this()](beast::error_code write_ec, std::size_t) {
                          self->continue_.reset();
                          if (write_ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (shutdown_) return Close();
    lowest().expires_after(options().body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Dispatch();
                     });
  }

  // Called by the parser for each chunk header of a chunked body (after it checked the chunk
  // against body_limit): charges the chunk to the body budget, or fails the read.
  void OnChunkHeader(std::uint64_t size, beast::string_view, beast::error_code& ec) {
    if (size > SIZE_MAX || !ReserveBodyBudget(static_cast<std::size_t>(size))) {
      over_budget_ = true;
      ec = net::error::no_buffer_space;
    }
  }

  bool ReserveBodyBudget(std::size_t bytes) {
    if (!shared_->ReserveBodyBytes(bytes)) return false;
    body_reserved_ += bytes;
    return true;
  }

  void ReleaseBodyBudget() {
    if (body_reserved_ == 0) return;
    shared_->ReleaseBodyBytes(body_reserved_);
    body_reserved_ = 0;
  }

  void RefuseBusy() {
    NameRefusedRoute();
    HttpResponse response = ErrorResponse(
        503, "unavailable", "server busy: too many request bodies in flight; retry later");
    response.headers.emplace_back("Retry-After", "1");
    RespondAndClose(std::move(response));
  }

  void OnReadError(beast::error_code ec) {
    if (over_budget_) return RefuseBusy();
    if (ec == http::error::body_limit) {
      NameRefusedRoute();
      return RespondAndClose(ErrorResponse(413, "payload_too_large",
                                           "the request body is larger than the limit of " +
                                               std::to_string(options().max_body_bytes) +
                                               " bytes"));
    }
    if (ec == http::error::header_limit) {
      return RespondAndClose(ErrorResponse(431, "request_header_fields_too_large",
                                           "the request headers are larger than the limit of " +
                                               std::to_string(options().max_header_bytes) +
                                               " bytes"));
    }
    if (IsHttpParseError(ec)) {
      return RespondAndClose(ErrorResponse(400, "bad_request", "malformed HTTP request"));
    }
    Close();  // timeout, the peer went away, or cancelled by Shutdown()
  }

  // The route of a request refused before dispatch (its headers were read), so the access
  // log says which endpoint is sent oversized bodies.
  void NameRefusedRoute() {
    if (!options().route_namer || !parser_) return;
    auto target = ParseRequestTarget(Sv(parser_->get().target()));
    if (!target) return;
    HttpRequest request;
    request.method = std::string(Sv(parser_->get().method_string()));
    request.path = std::move(target->path);
    try {
      entry_.route_template = options().route_namer(request);
    } catch (...) {
      // Only the log line loses its route.
    }
  }

  void Dispatch() {
    phase_ = Phase::kDispatching;
    lowest().expires_never();
    auto& raw = parser_->get();
    const unsigned version = raw.version();
    const bool head = raw.method() == http::verb::head;
    const bool keep_alive = raw.keep_alive();

    HttpRequest request;
    request.method = std::string(Sv(raw.method_string()));
    request.request_id = entry_.request_id;
    request.client_address = client_;
    auto target = ParseRequestTarget(Sv(raw.target()));
    if (!target) {
      return RespondAndClose(ErrorResponse(400, "bad_request", target.error().message()));
    }
    request.path = std::move(target->path);
    request.query = std::move(target->query);
    for (const auto& field : raw) {
      std::string name(Sv(field.name_string()));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      auto [it, inserted] = request.headers.try_emplace(std::move(name), Sv(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second += Sv(field.value());
      }
    }
    request.body = std::move(raw.body());
    WipeRawRequest();

    HttpResponse response;
    RequestLog request_log;
    try {
      if (options().route_namer) entry_.route_template = options().route_namer(request);
      response = shared_->dispatcher(request, request_log);
    } catch (...) {
      // Deliberately nothing of the exception: its what() may quote the request.
      shared_->LogError("request handler threw an exception",
                        {{"request_id", std::string_view(entry_.request_id)}});
      response = ErrorResponse(
          500, "internal",
          "internal error; the server log has the details under request id " + entry_.request_id);
    }
    // Wipe what the request carried (tokens in headers, values in the body) as soon as the
    // handler is done with it.
    for (auto& [name, value] : request.headers) crypto::SecureWipe(value.data(), value.size());
    crypto::SecureWipe(request.body.data(), request.body.size());
    request.body = std::string();  // the memory the budget was charged for
    ReleaseBodyBudget();
    entry_.token_id = std::move(request_log.token_id);

    if (response.hold) return Hold(std::move(response), version, keep_alive, head);
    const bool keep = keep_alive && !shutdown_ && !shared_->stopping.load();
    Respond(std::move(response), version, keep, head);
  }

  // Parks a response until its hold releases it (its audit record is durable, so many
  // requests can share one fsync) or hold_timeout passes. The pool thread is free
  // meanwhile. The release may come from any thread at any time, also after this session or
  // the whole server is gone: it holds only a weak reference to the session and posts to
  // the session's strand only while the event loop is alive. The timer's pending wait keeps
  // the session alive while it is held.
  void Hold(HttpResponse response, unsigned version, bool keep_alive, bool head) {
    ResponseHold hold = std::move(response.hold);
    response.hold = nullptr;
    held_ = std::make_unique<HeldResponse>(std::move(response));
    hold_timer_.emplace(stream_.get_executor());
    hold_timer_->expires_after(options().hold_timeout);
    hold_timer_->async_wait(
        [self = this->shared_from_this(), version, keep_alive, head](beast::error_code ec) {
          if (ec) return;  // cancelled: released in time
          std::string message = "the response was not released within ";
          message += std::to_string(self->options().hold_timeout.count());
          message += " ms (its audit record is not durable yet); try again (request id ";
          message += self->entry_.request_id;
          message += ")";
          HttpResponse timed_out = ErrorResponse(503, "unavailable", message);
          timed_out.headers.emplace_back("Retry-After", "1");
          self->Release(std::move(timed_out), version, keep_alive, head);
        });
    std::weak_ptr<Session> weak = this->weak_from_this();
    std::shared_ptr<ServerShared> shared = shared_;
    hold([weak = std::move(weak), shared = std::move(shared), version, keep_alive,
          head](std::optional<HttpResponse> replacement) {
      std::lock_guard lock(shared->loop_mu);
      if (!shared->loop_alive) return;
      auto self = weak.lock();
      if (!self) return;
      net::post(self->stream_.get_executor(),
                [self, replacement = std::move(replacement), version, keep_alive, head]() mutable {
                  self->Release(std::move(replacement), version, keep_alive, head);
                });
    });
  }

  // Sends the held response, or `replacement` in its place (the held body is wiped). The
  // first of the release and the timeout wins; the other finds nothing held.
  void Release(std::optional<HttpResponse> replacement, unsigned version, bool keep_alive,
               bool head) {
    if (!held_) return;
    const std::unique_ptr<HeldResponse> held = std::move(held_);
    if (hold_timer_) hold_timer_->cancel();
    HttpResponse out;
    if (replacement) {
      out = std::move(*replacement);
      out.hold = nullptr;
    } else {
      out = std::move(held->response);
    }
    const bool keep = keep_alive && !shutdown_ && !shared_->stopping.load();
    Respond(std::move(out), version, keep, head);
  }

  // A response waiting for its release; its body (a secret) is wiped if it is dropped.
  struct HeldResponse {
    explicit HeldResponse(HttpResponse r) : response(std::move(r)) {}
    ~HeldResponse() { crypto::SecureWipe(response.body.data(), response.body.size()); }
    HeldResponse(const HeldResponse&) = delete;
    HeldResponse& operator=(const HeldResponse&) = delete;
    HttpResponse response;
  };

  void RespondAndClose(HttpResponse response) {
    const unsigned version = parser_ ? parser_->get().version() : 11;
    WipeRawRequest();
    ReleaseBodyBudget();
    Respond(std::move(response), version, /*keep_alive=*/false, /*head=*/false);
  }

  // The raw request holds what the handler's copy held (an Authorization header, secret
  // values in the body): wipe Beast's copies of the header values, and the read buffer's
  // storage when no pipelined bytes are waiting in it, instead of leaving them in freed
  // memory. (The header values live in heap blocks the parser owns; writing through the
  // const view is writing to non-const memory about to be freed.)
  void WipeRawRequest() {
    if (parser_) {
      for (const auto& field : parser_->get()) {
        const auto value = field.value();
        crypto::SecureWipe(const_cast<char*>(value.data()), value.size());
      }
      auto& body = parser_->get().body();
      crypto::SecureWipe(body.data(), body.size());
      parser_.reset();
    }
    if (buffer_.size() == 0) {
      buffer_.clear();
      const auto storage = buffer_.prepare(buffer_.capacity());
      crypto::SecureWipe(storage.data(), storage.size());
    }
  }

  void Respond(HttpResponse response, unsigned version, bool keep_alive, bool head) {
    phase_ = Phase::kWriting;
    if (response.status < 100 || response.status > 599) {
      shared_->LogError("handler returned an invalid status",
                        {{"request_id", std::string_view(entry_.request_id)},
                         {"status", static_cast<std::int64_t>(response.status)}});
      response = ErrorResponse(500, "internal", "internal error");
    }
    entry_.status = response.status;

    response_ = {};
    response_.version(version);
    response_.result(static_cast<unsigned>(response.status));
    for (const auto& [name, value] : response.headers) {
      if (!IsValidHeaderName(name) || !IsValidHeaderValue(value)) {
        shared_->LogError("handler set an invalid response header; dropped",
                          {{"request_id", std::string_view(entry_.request_id)}});
        continue;
      }
      response_.set(name, value);
    }
    const bool bodiless = response.status == 204 || response.status == 304 || response.status < 200;
    if (!bodiless && !response.content_type.empty()) {
      response_.set(http::field::content_type, response.content_type);
    }
    response_.set("X-Request-Id", entry_.request_id);
    response_.set(http::field::cache_control, "no-store");
    response_.set("X-Content-Type-Options", "nosniff");
    // The web UI's policy on every response (docs/web-ui.md): scripts and styles only from
    // this origin, never inline; no framing; no referrer leaves with a link.
    response_.set(
        "Content-Security-Policy",
        boost::beast::string_view(kContentSecurityPolicy.data(), kContentSecurityPolicy.size()));
    response_.set("X-Frame-Options", "DENY");
    response_.set("Referrer-Policy", "no-referrer");
    response_.keep_alive(keep_alive);
    if (!bodiless) response_.body() = std::move(response.body);
    response_.prepare_payload();
    if (head) response_.body().clear();  // Content-Length stays that of the GET response
    close_after_write_ = !keep_alive;

    lowest().expires_after(options().write_timeout);
    http::async_write(stream_, response_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnWrite(ec);
                      });
  }

  void OnWrite(beast::error_code ec) {
    entry_.duration_ms =
        std::chrono::duration<double, std::milli>(SteadyClock::now() - start_).count();
    if (options().log != nullptr) options().log->Request(entry_);
    crypto::SecureWipe(response_.body().data(), response_.body().size());
    response_.body().clear();
    if (ec) return Close();
    if (close_after_write_) return CloseGracefully();
    first_request_ = false;
    WaitForRequest();
  }

  // Ends a connection we answered with "Connection: close": half-closes, then reads and
  // discards what the client is still sending (a body we refused) for a short while, so
  // that closing does not reset the connection before the client has read our response.
  void CloseGracefully() {
    phase_ = Phase::kLingering;
    if constexpr (kTls) {
      lowest().expires_after(std::min(options().write_timeout, kLingerTime));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      lowest().expires_after(kLingerTime);
      Drain();
    }
  }

  void Drain() {
    if (shutdown_ || drained_ > kLingerBytes) return Close();
    lowest().async_read_some(net::buffer(drain_buffer_), [self = this->shared_from_this()](
                                                             beast::error_code ec, std::size_t n) {
      if (ec) return self->Close();
      self->drained_ += n;
      self->Drain();
    });
  }

  void Close() {
    phase_ = Phase::kClosed;
    WipeRawRequest();  // a partly read request
    ReleaseBodyBudget();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  std::shared_ptr<ServerShared> shared_;
  Stream stream_;
  std::string client_;
  std::uint64_t id_ = 0;

  beast::flat_buffer buffer_;
  // Before parser_, which refers to it.
  std::function<void(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_header_ =
      [this](std::uint64_t size, beast::string_view extensions, beast::error_code& ec) {
        OnChunkHeader(size, extensions, ec);
      };
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  http::response<http::string_body> response_;
  RequestLogEntry entry_;
  SteadyClock::time_point start_;

  Phase phase_ = Phase::kIdle;
  bool first_request_ = true;
  bool shutdown_ = false;
  bool close_after_write_ = false;
  bool over_budget_ = false;       // this request's body did not fit the budget
  std::size_t body_reserved_ = 0;  // of the body budget, held by this request
  std::array<char, kReadChunk> drain_buffer_{};
  std::size_t drained_ = 0;
  std::unique_ptr<HeldResponse> held_;           // a response waiting for its release
  std::optional<net::steady_timer> hold_timer_;  // its deadline
};

}  // namespace

class HttpServer::Impl {
 public:
  explicit Impl(std::shared_ptr<ServerShared> shared)
      : shared_(std::move(shared)),
        loop_(std::make_unique<Loop>(std::max(1, shared_->options.threads))) {}

  ~Impl() { Stop(); }

  Status Init() {
    const auto& options = shared_->options;
    if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
      BIFROST_RETURN_IF_ERROR(LoadTls(options.tls_cert_file, options.tls_key_file));
    }
    BIFROST_ASSIGN_OR_RETURN(const ListenAddress address, ParseListenAddress(options.listen));
    return Bind(address);
  }

  void Start() {
    std::lock_guard lock(state_mu_);
    if (started_ || stopped_) return;
    started_ = true;
    net::dispatch(acceptor().get_executor(), [this] { Accept(); });
    const int threads = std::max(1, shared_->options.threads);
    threads_.reserve(static_cast<std::size_t>(threads));
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { RunPool(); });
  }

  void Stop() {
    std::lock_guard lock(state_mu_);
    if (stopped_) return;
    stopped_ = true;
    shared_->stopping.store(true);
    if (!started_) {
      loop_.reset();
      return;
    }
    // 1. Stop accepting. Done on the acceptor's strand, so once it has run no accept
    //    handler can create another session.
    std::promise<void> closed;
    net::post(acceptor().get_executor(), [this, &closed] {
      beast::error_code ignored;
      acceptor().close(ignored);
      loop_->retry_timer.cancel();
      closed.set_value();
    });
    closed.get_future().wait();

    // 2. Tell every session. The shared_ptrs are taken under the lock but released outside
    //    it: a session's destructor takes the same lock.
    std::vector<std::shared_ptr<SessionBase>> live;
    {
      std::lock_guard sessions_lock(shared_->mu);
      for (const auto& [id, weak] : shared_->sessions) {
        if (auto session = weak.lock()) live.push_back(std::move(session));
      }
    }
    for (const auto& session : live) session->Shutdown();
    live.clear();

    // 3. Let requests in flight finish, within the grace period.
    {
      std::unique_lock sessions_lock(shared_->mu);
      const bool drained = shared_->cv.wait_for(sessions_lock, shared_->options.shutdown_grace,
                                                [&] { return shared_->sessions.empty(); });
      if (!drained) {
        const auto left = static_cast<std::int64_t>(shared_->sessions.size());
        sessions_lock.unlock();
        if (shared_->options.log != nullptr) {
          shared_->options.log->Warn("shutdown grace period over; closing connections",
                                     {{"connections", left}});
        }
      }
    }

    // 4. Stop the pool, then destroy the loop: the handlers still queued go with it, and
    //    with them the last references to the sessions, which close their sockets.
    loop_->work.reset();
    loop_->ioc.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    {
      std::lock_guard loop_lock(shared_->loop_mu);
      shared_->loop_alive = false;
    }
    loop_.reset();
  }

  std::uint16_t port() const { return port_; }
  const std::string& bound_host() const { return bound_host_; }
  bool tls() const { return tls_ctx_.has_value(); }
  std::size_t open_connections() const {
    std::lock_guard lock(shared_->mu);
    return shared_->sessions.size();
  }
  std::size_t inflight_body_bytes() const { return shared_->body_bytes_in_flight.load(); }

 private:
  Status LoadTls(const std::string& cert_file, const std::string& key_file) {
    if (cert_file.empty() || key_file.empty()) {
      return Fail(ErrorCode::kInvalidArgument,
                  "TLS needs both a certificate file and a private key file");
    }
    tls_ctx_.emplace(ssl::context::tls_server);
    auto& ctx = *tls_ctx_;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                    ssl::context::single_dh_use | ssl::context::no_compression);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx.native_handle(), kTls12Ciphers) != 1) {
      tls_ctx_.reset();
      return Fail(ErrorCode::kFailedPrecondition,
                  "this OpenSSL supports none of the TLS 1.2 cipher suites Bifrost allows");
    }
    // Our order, not the client's, picks the cipher; no TLS compression (CRIME); no
    // renegotiation (a client-initiated one costs the server a handshake per request).
    SSL_CTX_set_options(ctx.native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE |
                                                 SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    beast::error_code ec;
    ctx.use_certificate_chain_file(cert_file, ec);
    if (ec) {
      tls_ctx_.reset();
      return Fail(
          ErrorCode::kFailedPrecondition,
          "cannot load the TLS certificate " + QuoteForMessage(cert_file) + ": " + ec.message());
    }
    ctx.use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) {
      tls_ctx_.reset();
      return Fail(
          ErrorCode::kFailedPrecondition,
          "cannot load the TLS private key " + QuoteForMessage(key_file) + ": " + ec.message());
    }
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      tls_ctx_.reset();
      return Fail(ErrorCode::kFailedPrecondition,
                  "the TLS private key " + QuoteForMessage(key_file) +
                      " does not belong to the certificate " + QuoteForMessage(cert_file));
    }
    return Ok();
  }

  Status Bind(const ListenAddress& address) {
    std::vector<tcp::endpoint> endpoints;
    beast::error_code ec;
    const auto literal = net::ip::make_address(address.host, ec);
    if (!ec) {
      endpoints.emplace_back(literal, address.port);
    } else {
      tcp::resolver resolver(ioc());
      const auto results =
          resolver.resolve(address.host, std::to_string(address.port),
                           tcp::resolver::passive | tcp::resolver::numeric_service, ec);
      if (ec) {
        return Fail(
            ErrorCode::kFailedPrecondition,
            "cannot resolve listen host " + QuoteForMessage(address.host) + ": " + ec.message());
      }
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    std::string last_error = "no address";
    for (const auto& endpoint : endpoints) {
      beast::error_code bind_ec;
      acceptor().open(endpoint.protocol(), bind_ec);
      if (!bind_ec) acceptor().set_option(net::socket_base::reuse_address(true), bind_ec);
      if (!bind_ec) acceptor().bind(endpoint, bind_ec);
      if (!bind_ec) acceptor().listen(net::socket_base::max_listen_connections, bind_ec);
      if (!bind_ec) {
        const auto local = acceptor().local_endpoint(bind_ec);
        if (!bind_ec) {
          port_ = local.port();
          bound_host_ = local.address().to_string();
          return Ok();
        }
      }
      last_error = FormatEndpoint(endpoint) + ": " + bind_ec.message();
      beast::error_code ignored;
      acceptor().close(ignored);
    }
    return Fail(
        ErrorCode::kFailedPrecondition,
        "cannot listen on " + QuoteForMessage(shared_->options.listen) + " (" + last_error + ")");
  }

  void RunPool() {
    // Nothing may escape a pool thread: an exception would terminate the process.
    while (true) {
      try {
        loop_->ioc.run();
        return;
      } catch (const std::exception&) {
        shared_->LogError("unexpected exception in the HTTP server's event loop");
      } catch (...) {
        shared_->LogError("unexpected exception in the HTTP server's event loop");
      }
    }
  }

  void Accept() {
    acceptor().async_accept(
        net::make_strand(ioc()), [this](beast::error_code ec, tcp::socket socket) {
          if (ec == net::error::operation_aborted || !acceptor().is_open()) return;
          if (ec) {
            // Out of file descriptors (EMFILE/ENFILE) is the usual cause, and it lasts: pause
            // instead of spinning on the still-readable listener, and keep the log readable.
            std::int64_t suppressed = 0;
            if (accept_log_throttle_.Allow(SteadyClock::now(), &suppressed)) {
              shared_->LogError(
                  "accept failed; retrying shortly",
                  {{"error", std::string_view(ec.message())}, {"suppressed", suppressed}});
            }
            loop_->retry_timer.expires_after(kAcceptRetryDelay);
            loop_->retry_timer.async_wait([this](beast::error_code wait_ec) {
              if (!wait_ec && acceptor().is_open()) Accept();
            });
            return;
          }
          if (shared_->connections.load() >= shared_->options.max_connections) {
            // Closed at once: a connection beyond the cap costs an fd for no longer than this.
            beast::error_code ignored;
            socket.close(ignored);
            std::int64_t suppressed = 0;
            if (shared_->options.log != nullptr &&
                cap_log_throttle_.Allow(SteadyClock::now(), &suppressed)) {
              shared_->options.log->Warn(
                  "connection limit reached; closing new connections",
                  {{"max_connections", static_cast<std::int64_t>(shared_->options.max_connections)},
                   {"suppressed", suppressed}});
            }
            return Accept();
          }
          StartSession(std::move(socket));
          Accept();
        });
  }

  void StartSession(tcp::socket socket) {
    beast::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    socket.set_option(tcp::no_delay(true), ec);
    std::string client = FormatEndpoint(remote);
    if (tls_ctx_) {
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(shared_, std::move(client),
                                                                      std::move(socket), *tls_ctx_)
          ->Run();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(shared_, std::move(client), std::move(socket))
          ->Run();
    }
  }

  // The event loop and the I/O objects that belong to it, destroyed together by Stop().
  struct Loop {
    explicit Loop(int threads)
        : ioc(threads),
          acceptor(net::make_strand(ioc)),
          retry_timer(acceptor.get_executor()),
          work(net::make_work_guard(ioc)) {}
    net::io_context ioc;
    tcp::acceptor acceptor;
    net::steady_timer retry_timer;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  };

  // Destruction runs bottom-up: the loop (and with it every session still queued) goes
  // before the TLS context the sessions' streams refer to.
  std::shared_ptr<ServerShared> shared_;
  std::optional<ssl::context> tls_ctx_;
  std::unique_ptr<Loop> loop_;
  // Shorthands, valid while loop_ lives.
  net::io_context& ioc() { return loop_->ioc; }
  tcp::acceptor& acceptor() { return loop_->acceptor; }
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::string bound_host_;
  LogThrottle accept_log_throttle_;
  LogThrottle cap_log_throttle_;

  std::mutex state_mu_;
  bool started_ = false;
  bool stopped_ = false;
};

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kInvalidArgument, "listen address " + QuoteForMessage(text) + " " +
                                                 std::string(why) +
                                                 " (expected HOST:PORT or [IPv6]:PORT)");
  };
  ListenAddress address;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("is malformed");
    }
    address.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    address.host = std::string(text.substr(0, colon));
    if (address.host.find(':') != std::string::npos) {
      return bad("has an IPv6 address without brackets");
    }
    port_text = text.substr(colon + 1);
  }
  if (address.host.empty()) return bad("has no host");
  if (HasControlChar(address.host) || address.host.find_first_of(" /") != std::string::npos) {
    return bad("has an invalid host");
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("has an invalid port");
  }
  address.port = static_cast<std::uint16_t>(port);
  return address;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  beast::error_code ec;
  const auto address = net::ip::make_address(std::string(host), ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                       Dispatcher dispatcher) {
  if (!dispatcher) return Fail(ErrorCode::kInvalidArgument, "the HTTP server needs a dispatcher");
  if (options.threads < 1 || options.threads > 1024) {
    return Fail(ErrorCode::kInvalidArgument,
                "threads must be between 1 and 1024, not " + std::to_string(options.threads));
  }
  if (options.max_body_bytes == 0) {
    return Fail(ErrorCode::kInvalidArgument, "the maximum body size must be positive");
  }
  if (options.max_header_bytes < 1024) {
    return Fail(ErrorCode::kInvalidArgument, "the maximum header size must be at least 1024");
  }
  if (options.max_connections == 0) {
    return Fail(ErrorCode::kInvalidArgument, "the connection limit must be positive");
  }
  if (options.max_inflight_body_bytes < options.max_body_bytes) {
    return Fail(ErrorCode::kInvalidArgument,
                "the in-flight body budget (" + std::to_string(options.max_inflight_body_bytes) +
                    " bytes) must be at least the maximum body size (" +
                    std::to_string(options.max_body_bytes) + " bytes)");
  }
  for (const auto timeout : {options.header_timeout, options.idle_timeout, options.body_timeout,
                             options.write_timeout}) {
    if (timeout.count() <= 0) {
      return Fail(ErrorCode::kInvalidArgument, "timeouts must be positive");
    }
  }
  auto shared = std::make_shared<ServerShared>();
  shared->options = std::move(options);
  shared->dispatcher = std::move(dispatcher);
  auto impl = std::make_unique<Impl>(std::move(shared));
  BIFROST_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Start() { impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
std::uint16_t HttpServer::port() const { return impl_->port(); }
const std::string& HttpServer::bound_host() const { return impl_->bound_host(); }
bool HttpServer::tls() const { return impl_->tls(); }
std::size_t HttpServer::open_connections() const { return impl_->open_connections(); }
std::size_t HttpServer::inflight_body_bytes() const { return impl_->inflight_body_bytes(); }

}  // namespace bifrost::server
