// Test-only: a blocking HTTP client over real sockets, plain or TLS, that can also send raw
// bytes (garbage, partial headers) and wait for the server to close. Header-only so that it
// stays out of bifrost_server; only *_test.cc files include it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bifrost::server::testing {

namespace test_net = boost::asio;
namespace test_http = boost::beast::http;

using TestResponse = test_http::response<test_http::string_body>;

inline std::string Str(boost::beast::string_view s) { return std::string(s.data(), s.size()); }

// One connection to 127.0.0.1:port. Every blocking read gives up after `read_timeout`
// (SO_RCVTIMEO) so that a broken server fails the test instead of hanging it; no test
// asserts on timing.
class TestConnection {
 public:
  explicit TestConnection(std::uint16_t port, const std::string& trusted_cert = "",
                          std::chrono::seconds read_timeout = std::chrono::seconds(20))
      : socket_(ioc_) {
    socket_.connect({test_net::ip::make_address("127.0.0.1"), port});
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(read_timeout.count());
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!trusted_cert.empty()) {
      ssl_ctx_.emplace(test_net::ssl::context::tls_client);
      ssl_ctx_->load_verify_file(trusted_cert);
      ssl_ctx_->set_verify_mode(test_net::ssl::verify_peer);
      tls_.emplace(socket_, *ssl_ctx_);
      SSL_set1_host(tls_->native_handle(), "localhost");
      tls_->handshake(test_net::ssl::stream_base::client);
    }
  }

  ~TestConnection() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void SendRaw(std::string_view bytes) {
    if (tls_) {
      test_net::write(*tls_, test_net::buffer(bytes.data(), bytes.size()));
    } else {
      test_net::write(socket_, test_net::buffer(bytes.data(), bytes.size()));
    }
  }

  void Send(test_http::request<test_http::string_body> request) {
    request.prepare_payload();
    if (tls_) {
      test_http::write(*tls_, request);
    } else {
      test_http::write(socket_, request);
    }
  }

  // Reads one response; throws on a read error (including the server closing first).
  TestResponse Read() {
    TestResponse response;
    if (tls_) {
      test_http::read(*tls_, buffer_, response);
    } else {
      test_http::read(socket_, buffer_, response);
    }
    return response;
  }

  // Reads only a response header (for "100 Continue").
  TestResponse ReadInterim() {
    test_http::response_parser<test_http::empty_body> parser;
    test_http::read_header(socket_, buffer_, parser);
    TestResponse response;
    response.result(parser.get().result_int());
    return response;
  }

  TestResponse Request(std::string_view method, std::string_view target, std::string body = "",
                       std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
    test_http::request<test_http::string_body> request;
    request.method_string(boost::beast::string_view(method.data(), method.size()));
    request.target(boost::beast::string_view(target.data(), target.size()));
    request.version(11);
    request.set(test_http::field::host, "localhost");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = std::move(body);
    Send(std::move(request));
    return Read();
  }

  // Blocks until the server closes the connection (EOF or reset); false if the read timeout
  // passed first or data arrived instead.
  bool WaitForClose() {
    char byte;
    boost::system::error_code ec;
    std::size_t n = 0;
    if (buffer_.size() > 0) return false;
    if (tls_) {
      n = tls_->read_some(test_net::buffer(&byte, 1), ec);
    } else {
      n = socket_.read_some(test_net::buffer(&byte, 1), ec);
    }
    if (n > 0) return false;
    return ec == test_net::error::eof || ec == test_net::error::connection_reset ||
           ec == test_net::ssl::error::stream_truncated;
  }

 private:
  test_net::io_context ioc_;
  test_net::ip::tcp::socket socket_;
  std::optional<test_net::ssl::context> ssl_ctx_;
  std::optional<test_net::ssl::stream<test_net::ip::tcp::socket&>> tls_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace bifrost::server::testing
