// HttpClient over Boost.Beast: one kept-alive connection, plain TCP or TLS.
//
// Every network step is an asynchronous Asio operation driven by `io_context::run_until` with
// the request's deadline, so a timeout is the same thing for resolving, connecting, the TLS
// handshake, writing and reading: when the deadline passes the connection is closed, the
// pending operation completes with `operation_aborted`, and Send reports kUnavailable.
#include "client/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <exception>
#include <utility>

#include "common/text.h"

namespace bifrost::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

// A response larger than this is refused rather than buffered (a config list is far smaller).
constexpr std::uint64_t kMaxResponseBodyBytes = 64ull << 20;

struct Endpoint {
  bool tls = false;
  std::string host;         // for resolving and certificate checks: "::1", not "[::1]"
  std::string port;         // decimal
  std::string host_header;  // "host:port", IPv6 in brackets
  std::string display;      // "https://host:port", for messages
};

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsRegNameChar(char c) { return IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_'; }

Result<Endpoint> ParseAddress(std::string_view address) {
  auto invalid = [&](std::string_view why) {
    return Fail(ErrorCode::kInvalidArgument,
                "bifrost address " + QuoteForMessage(address) + " " + std::string(why) +
                    " (expected http://HOST[:PORT] or https://HOST[:PORT])");
  };
  Endpoint ep;
  std::string_view rest;
  if (address.starts_with("http://")) {
    rest = address.substr(7);
  } else if (address.starts_with("https://")) {
    ep.tls = true;
    rest = address.substr(8);
  } else {
    return invalid("has no http:// or https:// scheme");
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find('@') != std::string_view::npos) {
    // User information could be a password: never quote it back.
    return Fail(ErrorCode::kInvalidArgument,
                "the bifrost address must not contain user information (user:password@)");
  }
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    return invalid("has a path, query or fragment");
  }
  std::string_view host;
  std::string_view port;
  bool ipv6 = false;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return invalid("has an unclosed '['");
    host = rest.substr(1, close - 1);
    boost::system::error_code ec;
    (void)asio::ip::make_address_v6(std::string(host), ec);
    if (ec || host.empty()) return invalid("has an invalid IPv6 address");
    ipv6 = true;
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("has text after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return invalid("has an empty port");
    }
  } else {
    const auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return invalid("has an empty port");
    }
    if (host.empty()) return invalid("has no host");
    if (!std::all_of(host.begin(), host.end(), IsRegNameChar)) {
      return invalid("has an invalid host name");
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return invalid("has an invalid port");
    }
    const int number = std::stoi(std::string(port));
    if (number < 1 || number > 65535) return invalid("has a port outside 1-65535");
    ep.port = std::to_string(number);
  } else {
    ep.port = ep.tls ? "443" : "80";
  }
  ep.host = std::string(host);
  const std::string bracketed = ipv6 ? "[" + ep.host + "]" : ep.host;
  ep.host_header = bracketed + ":" + ep.port;
  ep.display = std::string(ep.tls ? "https://" : "http://") + ep.host_header;
  return ep;
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

// Errors that mean "the peer closed or reset the connection".
bool IsConnectionClosed(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == ssl::error::stream_truncated;
}

bool IsIdempotent(http::verb verb) {
  return verb == http::verb::get || verb == http::verb::head || verb == http::verb::put ||
         verb == http::verb::delete_ || verb == http::verb::options;
}

bool HasHeaderUnsafeChar(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string ToLower(beast::string_view s) {
  std::string out(s.data(), s.size());
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

class BeastHttpClient final : public HttpClient {
 public:
  BeastHttpClient(Endpoint endpoint, int timeout_ms, std::unique_ptr<ssl::context> tls_context)
      : endpoint_(std::move(endpoint)),
        timeout_(std::chrono::milliseconds(timeout_ms)),
        tls_context_(std::move(tls_context)),
        resolver_(ioc_) {}

  ~BeastHttpClient() override { CloseConnection(); }

  Result<HttpResult> Send(std::string_view method, std::string_view target,
                          std::optional<std::string_view> json_body,
                          std::optional<std::string_view> bearer) override {
    try {
      return SendOrThrow(method, target, json_body, bearer);
    } catch (const std::exception& e) {
      CloseConnection();
      return Fail(ErrorCode::kInternal,
                  "HTTP request to bifrost at " + endpoint_.display + " failed: " + e.what());
    }
  }

 private:
  // Why an exchange failed, and whether it is safe to try it again on a new connection.
  struct ExchangeFailure {
    error_code ec;
    bool before_response = false;  // no byte of a response had arrived
    bool during_write = false;
  };

  Result<HttpResult> SendOrThrow(std::string_view method, std::string_view target,
                                 std::optional<std::string_view> json_body,
                                 std::optional<std::string_view> bearer) {
    const http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
    if (verb == http::verb::unknown) {
      return Fail(ErrorCode::kInvalidArgument, "unknown HTTP method " + QuoteForMessage(method));
    }
    if (!target.starts_with('/') || target.find(' ') != std::string_view::npos ||
        HasHeaderUnsafeChar(target)) {
      return Fail(ErrorCode::kInvalidArgument, "request target " + QuoteForMessage(target) +
                                                   " must start with '/' and be percent-encoded");
    }
    if (bearer && (bearer->empty() || HasHeaderUnsafeChar(*bearer) ||
                   bearer->find(' ') != std::string_view::npos)) {
      // Never quote the token.
      return Fail(ErrorCode::kInvalidArgument,
                  "the token is empty or contains characters not allowed in an HTTP header");
    }

    http::request<http::string_body> request{verb, std::string(target), 11};
    request.set(http::field::host, endpoint_.host_header);
    request.set(http::field::user_agent, "bifrost-client");
    request.set(http::field::accept, "application/json");
    if (bearer) request.set(http::field::authorization, "Bearer " + std::string(*bearer));
    if (json_body) {
      request.set(http::field::content_type, "application/json");
      request.body() = std::string(*json_body);
    }
    request.prepare_payload();
    request.keep_alive(true);

    const auto deadline = SteadyClock::now() + timeout_;
    bool reused = false;
    if (IsOpen() && !IdleConnectionIsUsable()) CloseConnection();
    if (IsOpen()) {
      reused = true;
    } else {
      BIFROST_RETURN_IF_ERROR(Connect(deadline));
    }

    auto result = Exchange(request, deadline);
    if (!result && reused && result.error().before_response &&
        (IsConnectionClosed(result.error().ec) || result.error().during_write) &&
        (IsIdempotent(verb) || result.error().during_write)) {
      // The server closed the kept-alive connection between our check and the request: the
      // request was not processed, so it is sent once more on a fresh connection.
      CloseConnection();
      BIFROST_RETURN_IF_ERROR(Connect(deadline));
      result = Exchange(request, deadline);
    }
    if (!result) {
      CloseConnection();
      return Fail(ErrorCode::kUnavailable, DescribeExchangeFailure(result.error()));
    }
    return std::move(*result);
  }

  // Runs one asynchronous operation to completion or until the deadline. `start` receives a
  // `std::optional<error_code>&` that its completion handler must set.
  template <typename Start>
  error_code Run(Start&& start, SteadyClock::time_point deadline) {
    std::optional<error_code> done;
    start(done);
    ioc_.restart();
    ioc_.run_until(deadline);
    if (!done) {
      // Deadline: abort whatever is pending, then let its handler run.
      resolver_.cancel();
      CloseSockets();
      ioc_.restart();
      ioc_.run();
      return asio::error::timed_out;
    }
    return *done;
  }

  Status Connect(SteadyClock::time_point deadline) {
    CloseConnection();
    auto unreachable = [&](const std::string& reason) {
      CloseConnection();
      return Fail(ErrorCode::kUnavailable,
                  "cannot reach bifrost at " + endpoint_.display + ": " + reason);
    };

    tcp::resolver::results_type endpoints;
    error_code ec = Run(
        [&](std::optional<error_code>& done) {
          resolver_.async_resolve(endpoint_.host, endpoint_.port,
                                  [&](const error_code& e, tcp::resolver::results_type r) {
                                    endpoints = std::move(r);
                                    done = e;
                                  });
        },
        deadline);
    if (ec)
      return unreachable("cannot resolve host " + QuoteForMessage(endpoint_.host) + ": " +
                         Describe(ec));

    socket_.emplace(ioc_);
    ec = Run(
        [&](std::optional<error_code>& done) {
          asio::async_connect(*socket_, endpoints,
                              [&](const error_code& e, const tcp::endpoint&) { done = e; });
        },
        deadline);
    if (ec) return unreachable(Describe(ec));
    socket_->set_option(tcp::no_delay(true), ec);

    if (endpoint_.tls) {
      tls_.emplace(*socket_, *tls_context_);
      SSL* native = tls_->native_handle();
      if (IsIpLiteral(endpoint_.host)) {
        // No SNI for an IP address (RFC 6066); the certificate must name the IP.
        X509_VERIFY_PARAM* param = SSL_get0_param(native);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, endpoint_.host.c_str()) != 1) {
          return unreachable("cannot set up verification of IP address " + endpoint_.host);
        }
      } else {
        if (SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(endpoint_.host.c_str())) != 1 ||
            SSL_set1_host(native, endpoint_.host.c_str()) != 1) {
          return unreachable("cannot set up verification of host name " +
                             QuoteForMessage(endpoint_.host));
        }
        SSL_set_hostflags(native, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      }
      ec = Run(
          [&](std::optional<error_code>& done) {
            tls_->async_handshake(ssl::stream_base::client, [&](const error_code& e) { done = e; });
          },
          deadline);
      if (ec) {
        std::string reason = "TLS handshake failed: " + Describe(ec);
        const long verify = SSL_get_verify_result(native);
        if (verify != X509_V_OK) {
          reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
        }
        return unreachable(reason);
      }
    }
    buffer_.clear();
    return Ok();
  }

  std::expected<HttpResult, ExchangeFailure> Exchange(http::request<http::string_body>& request,
                                                      SteadyClock::time_point deadline) {
    ExchangeFailure failure;
    failure.before_response = true;
    failure.ec = Run(
        [&](std::optional<error_code>& done) {
          auto handler = [&](const error_code& e, std::size_t) { done = e; };
          if (tls_) {
            http::async_write(*tls_, request, handler);
          } else {
            http::async_write(*socket_, request, handler);
          }
        },
        deadline);
    if (failure.ec) {
      failure.during_write = true;
      return std::unexpected(failure);
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBodyBytes);
    if (request.method() == http::verb::head) parser.skip(true);
    const bool had_buffered = buffer_.size() > 0;
    failure.ec = Run(
        [&](std::optional<error_code>& done) {
          auto handler = [&](const error_code& e, std::size_t) { done = e; };
          if (tls_) {
            http::async_read(*tls_, buffer_, parser, handler);
          } else {
            http::async_read(*socket_, buffer_, parser, handler);
          }
        },
        deadline);
    if (failure.ec) {
      failure.before_response = !had_buffered && !parser.got_some();
      return std::unexpected(failure);
    }

    http::response<http::string_body> response = parser.release();
    HttpResult result;
    result.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      std::string name = ToLower(field.name_string());
      const beast::string_view value = field.value();
      auto [it, inserted] = result.headers.emplace(name, std::string(value.data(), value.size()));
      if (!inserted) {
        it->second += ", ";
        it->second.append(value.data(), value.size());
      }
    }
    result.body = std::move(response.body());
    if (!response.keep_alive()) CloseConnection();
    return result;
  }

  bool IsOpen() const { return socket_.has_value() && socket_->is_open(); }

  // A kept-alive connection on which the server has since sent anything (normally its FIN
  // when it closed the idle connection) is not reused.
  bool IdleConnectionIsUsable() {
    if (buffer_.size() > 0) return false;
    pollfd pfd{};
    pfd.fd = socket_->native_handle();
    pfd.events = POLLIN;
    const int ready = ::poll(&pfd, 1, 0);
    return ready == 0;
  }

  void CloseSockets() {
    if (socket_ && socket_->is_open()) {
      error_code ignored;
      socket_->shutdown(tcp::socket::shutdown_both, ignored);
      socket_->close(ignored);
    }
  }

  void CloseConnection() {
    CloseSockets();
    tls_.reset();
    socket_.reset();
    buffer_.clear();
  }

  std::string DescribeExchangeFailure(const ExchangeFailure& failure) const {
    if (failure.ec == asio::error::timed_out) {
      return "bifrost at " + endpoint_.display + " did not answer within " +
             std::to_string(timeout_.count()) + " ms";
    }
    if (failure.before_response && IsConnectionClosed(failure.ec)) {
      return "bifrost at " + endpoint_.display + " closed the connection without answering" +
             (endpoint_.tls ? "" : " (does it serve https?)");
    }
    return "request to bifrost at " + endpoint_.display + " failed: " + Describe(failure.ec);
  }

  static std::string Describe(const error_code& ec) {
    if (ec == asio::error::timed_out || ec == asio::error::operation_aborted) {
      return "timed out";
    }
    if (IsConnectionClosed(ec)) return "the server closed the connection";
    return ec.message();
  }

  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<ssl::context> tls_context_;
  asio::io_context ioc_;
  tcp::resolver resolver_;
  std::optional<tcp::socket> socket_;
  std::optional<ssl::stream<tcp::socket&>> tls_;
  beast::flat_buffer buffer_;
};

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const ClientOptions& options) {
  BIFROST_ASSIGN_OR_RETURN(Endpoint endpoint, ParseAddress(options.address));
  if (options.timeout_ms <= 0) {
    return Fail(ErrorCode::kInvalidArgument, "the HTTP timeout must be positive");
  }
  std::unique_ptr<ssl::context> tls_context;
  if (endpoint.tls) {
    try {
      tls_context = std::make_unique<ssl::context>(ssl::context::tls_client);
    } catch (const std::exception& e) {
      return Fail(ErrorCode::kInternal, std::string("cannot create a TLS context: ") + e.what());
    }
    SSL_CTX_set_min_proto_version(tls_context->native_handle(), TLS1_2_VERSION);
    tls_context->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (!options.ca_file.empty()) {
      tls_context->load_verify_file(options.ca_file, ec);
      if (ec) {
        return Fail(ErrorCode::kInvalidArgument, "cannot load CA certificates from " +
                                                     QuoteForMessage(options.ca_file) +
                                                     " (BIFROST_CACERT): " + ec.message());
      }
    } else {
      tls_context->set_default_verify_paths(ec);
      if (ec) {
        return Fail(ErrorCode::kInternal,
                    "cannot load the system's CA certificates: " + ec.message());
      }
    }
  }
  return std::unique_ptr<HttpClient>(
      new BeastHttpClient(std::move(endpoint), options.timeout_ms, std::move(tls_context)));
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0x0f]);
    }
  }
  return out;
}

}  // namespace bifrost::client
