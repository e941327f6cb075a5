// A scripted HTTP/1.1 server for tests of the client and the CLI (header-only; tests only).
//
// Listens on 127.0.0.1 port 0, one thread per connection, plain or TLS. Every request is
// recorded and answered by the test's handler, which can also make the server misbehave the
// way real servers do: close a kept-alive connection after answering without saying so, or
// close it without answering at all.
#pragma once

#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bifrost::client::testing {

struct FakeRequest {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  int connection = 0;  // 1 for the first accepted connection, 2 for the next, ...
};

struct FakeResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
  bool keep_alive = true;    // false: answer with "Connection: close", then close
  bool close_after = false;  // answer (claiming keep-alive), then close silently
  bool drop = false;         // close the connection without answering
};

using FakeHandler = std::function<FakeResponse(const FakeRequest&)>;

struct FakeTls {
  std::string cert_file;  // PEM chain
  std::string key_file;   // PEM private key
};

class FakeHttpServer {
 public:
  explicit FakeHttpServer(FakeHandler handler, std::optional<FakeTls> tls = std::nullopt)
      : handler_(std::move(handler)), acceptor_(ioc_) {
    namespace asio = boost::asio;
    if (tls) {
      tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_context_->use_certificate_chain_file(tls->cert_file);
      tls_context_->use_private_key_file(tls->key_file, asio::ssl::context::pem);
    }
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeHttpServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      // shutdown() wakes the blocked accept() and reads; the owning threads close the fds.
      ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
      for (auto& [index, fd] : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(connection_threads_);
    }
    for (auto& t : threads) t.join();
  }

  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  unsigned short port() const { return port_; }
  std::string http_address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string https_address(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port_);
  }

  int connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return accepted_;
  }
  // Blocks until `n` connections have been closed by the server (no timeout: a hang is a
  // failure the test runner reports).
  void WaitUntilClosed(int n) const {
    std::unique_lock<std::mutex> lock(mu_);
    closed_cv_.wait(lock, [&] { return closed_ >= n; });
  }
  std::vector<FakeRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void AcceptLoop() {
    while (true) {
      boost::asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      std::lock_guard<std::mutex> lock(mu_);
      if (ec || stopping_) return;
      const int index = ++accepted_;
      open_fds_[index] = socket.native_handle();
      connection_threads_.emplace_back(
          [this, index, s = std::move(socket)]() mutable { Serve(std::move(s), index); });
    }
  }

  void Serve(boost::asio::ip::tcp::socket socket, int index) {
    if (tls_context_) {
      boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> stream(socket, *tls_context_);
      boost::system::error_code ec;
      stream.handshake(boost::asio::ssl::stream_base::server, ec);
      if (!ec) ServeRequests(stream, index);
    } else {
      ServeRequests(socket, index);
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(index);
    boost::system::error_code ignored;
    socket.close(ignored);
    ++closed_;
    closed_cv_.notify_all();
  }

  template <typename Stream>
  void ServeRequests(Stream& stream, int index) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> request;
      boost::system::error_code ec;
      http::read(stream, buffer, request, ec);
      if (ec) return;
      FakeRequest recorded;
      recorded.method = std::string(request.method_string());
      recorded.target = std::string(request.target());
      recorded.body = request.body();
      recorded.connection = index;
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (char& c : name) {
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        }
        recorded.headers[name] = std::string(field.value());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(recorded);
      }
      const FakeResponse answer = handler_(recorded);
      if (answer.drop) return;
      http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                                 request.version()};
      response.set(http::field::content_type, answer.content_type);
      for (const auto& [name, value] : answer.headers) response.set(name, value);
      response.body() = answer.body;
      response.keep_alive(answer.keep_alive);
      response.prepare_payload();
      http::write(stream, response, ec);
      if (ec || !answer.keep_alive || answer.close_after) return;
    }
  }

  FakeHandler handler_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;
  unsigned short port_ = 0;
  std::thread accept_thread_;

  mutable std::mutex mu_;
  bool stopping_ = false;
  int accepted_ = 0;
  int closed_ = 0;
  mutable std::condition_variable closed_cv_;
  std::map<int, int> open_fds_;  // connection index -> fd, while its thread may use it
  std::vector<std::thread> connection_threads_;
  std::vector<FakeRequest> requests_;
};

}  // namespace bifrost::client::testing
