#include "server/http_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/access_log.h"
#include "server/errors.h"
#include "server/http_test_client.h"
#include "tests/support/subprocess.h"

namespace bifrost::server {
namespace {

using testing::Str;
using testing::TestConnection;
using testing::TestResponse;

// A one-shot gate a dispatcher can wait on, and a test can wait for a dispatcher to reach.
class Gate {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `condition` until it holds; false if it still does not after 20 s (a broken server
// fails the test instead of hanging it; no test asserts on how long it took).
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// An ostream for an AccessLog whose text a test may read while server threads write.
class SharedLogStream {
 public:
  std::ostream& stream() { return stream_; }
  std::string Text() {
    std::lock_guard lock(buf_.mu);
    return buf_.text;
  }
  std::vector<nlohmann::json> Lines() {
    // Split by hand rather than through an istringstream: this also runs while the process is
    // out of file descriptors, where UBSan's vptr check trips inside the stream's constructor.
    std::vector<nlohmann::json> lines;
    const std::string text = Text();
    for (std::size_t start = 0; start < text.size();) {
      const std::size_t end = std::min(text.find('\n', start), text.size());
      if (end > start) lines.push_back(nlohmann::json::parse(text.substr(start, end - start)));
      start = end + 1;
    }
    return lines;
  }

 private:
  struct Buffer : std::streambuf {
    int_type overflow(int_type c) override {
      if (c != traits_type::eof()) {
        std::lock_guard lock(mu);
        text.push_back(static_cast<char>(c));
      }
      return c;
    }
    std::streamsize xsputn(const char* data, std::streamsize n) override {
      std::lock_guard lock(mu);
      text.append(data, static_cast<std::size_t>(n));
      return n;
    }
    std::mutex mu;
    std::string text;
  };
  Buffer buf_;
  std::ostream stream_{&buf_};
};

// Echoes what the server parsed, as JSON, so tests can check it.
HttpResponse Echo(HttpRequest& request, RequestLog&) {
  nlohmann::json body = {
      {"method", request.method},        {"path", request.path}, {"query", request.query},
      {"headers", request.headers},      {"body", request.body}, {"request_id", request.request_id},
      {"client", request.client_address}};
  HttpResponse response;
  response.body = body.dump();
  return response;
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerOptions Options() {
    HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.log = &log_;
    return options;
  }

  void Start(HttpServerOptions options, Dispatcher dispatcher) {
    auto server = HttpServer::Create(std::move(options), std::move(dispatcher));
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
    server_->Start();
    ASSERT_NE(server_->port(), 0);
  }

  void StartEcho() {
    Start(Options(), [this](HttpRequest& request, RequestLog& log) {
      ++dispatched_;
      return Echo(request, log);
    });
  }

  // The log's lines, once every pool thread has stopped (lines are written after responses
  // are sent, so only a stopped server's log is complete).
  std::vector<nlohmann::json> StopAndReadLog() {
    server_->Stop();
    std::vector<nlohmann::json> lines;
    std::istringstream in(log_stream_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  std::ostringstream log_stream_;
  AccessLog log_{log_stream_};
  SharedLogStream shared_log_;  // for tests that read the log while the server runs
  AccessLog shared_access_log_{shared_log_.stream()};
  std::atomic<int> dispatched_{0};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartEcho();
  TestConnection connection(server_->port());
  const TestResponse first = connection.Request("GET", "/one");
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_TRUE(first.keep_alive());
  const TestResponse second = connection.Request("POST", "/two", "{}");
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(second.body())["path"], "/two");
  EXPECT_EQ(nlohmann::json::parse(second.body())["body"], "{}");
  EXPECT_EQ(dispatched_.load(), 2);
  EXPECT_EQ(server_->open_connections(), 1u);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartEcho();
  TestConnection connection(server_->port());
  connection.SendRaw(
      "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(nlohmann::json::parse(connection.Read().body())["path"], "/first");
  EXPECT_EQ(nlohmann::json::parse(connection.Read().body())["path"], "/second");
}

TEST_F(HttpServerTest, EveryResponseHasARequestIdAndNoStore) {
  StartEcho();
  TestConnection connection(server_->port());
  const TestResponse first = connection.Request("GET", "/x");
  const TestResponse second = connection.Request("GET", "/x");
  const std::regex hex16("^[0-9a-f]{16}$");
  for (const auto* response : {&first, &second}) {
    const std::string id = Str((*response)["X-Request-Id"]);
    EXPECT_TRUE(std::regex_match(id, hex16)) << id;
    EXPECT_EQ(Str((*response)["Cache-Control"]), "no-store");
    EXPECT_EQ(Str((*response)["X-Content-Type-Options"]), "nosniff");
    EXPECT_EQ(Str((*response)["Content-Type"]), "application/json");
    // The dispatcher saw the same id.
    EXPECT_EQ(nlohmann::json::parse(response->body())["request_id"], id);
  }
  EXPECT_NE(Str(first["X-Request-Id"]), Str(second["X-Request-Id"]));
}

TEST_F(HttpServerTest, DecodesPathQueryHeadersAndClientAddress) {
  StartEcho();
  TestConnection connection(server_->port());
  const TestResponse response =
      connection.Request("PUT", "/orgs/a%20b/configs/caf%C3%A9?x=1&msg=hello+world%21&x=2&flag",
                         "the body", {{"X-Custom-Header", "Value"}});
  ASSERT_EQ(response.result_int(), 200);
  const auto echoed = nlohmann::json::parse(response.body());
  EXPECT_EQ(echoed["method"], "PUT");
  EXPECT_EQ(echoed["path"], "/orgs/a b/configs/caf\xC3\xA9");
  EXPECT_EQ(echoed["query"], (nlohmann::json{{"x", "2"}, {"msg", "hello world!"}, {"flag", ""}}));
  EXPECT_EQ(echoed["headers"]["x-custom-header"], "Value");
  EXPECT_EQ(echoed["headers"]["host"], "localhost");
  EXPECT_EQ(echoed["body"], "the body");
  const std::string client = echoed["client"];
  EXPECT_EQ(client.rfind("127.0.0.1:", 0), 0u) << client;
}

TEST_F(HttpServerTest, AnEncodedSlashInThePathIs400) {
  StartEcho();
  TestConnection connection(server_->port());
  const TestResponse response = connection.Request("GET", "/configs/a%2Fb");
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "bad_request");
  EXPECT_EQ(dispatched_.load(), 0);
  EXPECT_TRUE(connection.WaitForClose());
}

TEST_F(HttpServerTest, OversizedBodyIs413WithoutDispatching) {
  auto options = Options();
  options.max_body_bytes = 1000;
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  {
    // Declared by Content-Length: refused before the body is read.
    TestConnection connection(server_->port());
    connection.SendRaw("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n");
    const TestResponse response = connection.Read();
    EXPECT_EQ(response.result_int(), 413);
    EXPECT_FALSE(response.keep_alive());
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "payload_too_large");
    EXPECT_EQ(Str(response["Cache-Control"]), "no-store");
    EXPECT_TRUE(connection.WaitForClose());
  }
  {
    // Chunked: refused once the chunks add up to more than the limit.
    TestConnection connection(server_->port());
    const std::string chunk(600, 'a');
    connection.SendRaw("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" +
                       chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n");
    const TestResponse response = connection.Read();
    EXPECT_EQ(response.result_int(), 413);
    EXPECT_TRUE(connection.WaitForClose());
  }
  {
    // At the limit is fine.
    TestConnection connection(server_->port());
    EXPECT_EQ(connection.Request("POST", "/x", std::string(1000, 'b')).result_int(), 200);
  }
  EXPECT_EQ(dispatched_.load(), 1);
}

TEST_F(HttpServerTest, ExpectContinueGetsA100BeforeTheBody) {
  StartEcho();
  TestConnection connection(server_->port());
  connection.SendRaw(
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(connection.ReadInterim().result_int(), 100);
  connection.SendRaw("hello");
  const TestResponse response = connection.Read();
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(response.body())["body"], "hello");
}

TEST_F(HttpServerTest, GarbageIs400AndCloses) {
  StartEcho();
  for (const char* garbage :
       {"this is not http\r\n\r\n", "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        // Ambiguous framing (request smuggling) is refused, not guessed.
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n"
        "\r\nhello!",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}) {
    TestConnection connection(server_->port());
    connection.SendRaw(garbage);
    const TestResponse response = connection.Read();
    EXPECT_EQ(response.result_int(), 400) << garbage;
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "bad_request");
    EXPECT_TRUE(connection.WaitForClose()) << garbage;
  }
  EXPECT_EQ(dispatched_.load(), 0);
}

TEST_F(HttpServerTest, OversizedHeadersAre431) {
  auto options = Options();
  options.max_header_bytes = 2048;
  Start(std::move(options), Echo);
  TestConnection connection(server_->port());
  connection.SendRaw("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  EXPECT_EQ(connection.Read().result_int(), 431);
  EXPECT_TRUE(connection.WaitForClose());
}

TEST_F(HttpServerTest, HeaderTimeoutClosesAConnectionThatNeverFinishesItsHeaders) {
  auto options = Options();
  options.header_timeout = std::chrono::milliseconds(200);
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  {
    TestConnection connection(server_->port());
    connection.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n");  // no blank line, ever
    EXPECT_TRUE(connection.WaitForClose());
  }
  {
    TestConnection silent(server_->port());  // never sends a byte
    EXPECT_TRUE(silent.WaitForClose());
  }
  EXPECT_EQ(dispatched_.load(), 0);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  auto options = Options();
  options.idle_timeout = std::chrono::milliseconds(200);
  Start(std::move(options), Echo);
  TestConnection connection(server_->port());
  EXPECT_EQ(connection.Request("GET", "/x").result_int(), 200);
  EXPECT_TRUE(connection.WaitForClose());
}

TEST_F(HttpServerTest, DispatcherExceptionIs500AndTheServerGoesOn) {
  Start(Options(), [](HttpRequest& request, RequestLog&) -> HttpResponse {
    if (request.path == "/throw") throw std::runtime_error("secret detail: hunter2");
    if (request.path == "/throw-int") throw 42;
    HttpResponse response;
    response.body = "{}";
    return response;
  });
  TestConnection connection(server_->port());
  for (const char* path : {"/throw", "/throw-int"}) {
    const TestResponse response = connection.Request("GET", path);
    EXPECT_EQ(response.result_int(), 500);
    const auto body = nlohmann::json::parse(response.body());
    EXPECT_EQ(body["error"]["code"], "internal");
    EXPECT_NE(body["error"]["message"].get<std::string>().find(Str(response["X-Request-Id"])),
              std::string::npos);
    EXPECT_EQ(response.body().find("hunter2"), std::string::npos);
  }
  EXPECT_EQ(connection.Request("GET", "/fine").result_int(), 200);
  const auto lines = StopAndReadLog();
  for (const auto& line : lines) EXPECT_EQ(line.dump().find("hunter2"), std::string::npos);
}

TEST_F(HttpServerTest, HandlerHeadersAreSentButHeaderInjectionIsDropped) {
  Start(Options(), [](HttpRequest&, RequestLog&) {
    HttpResponse response;
    response.status = 201;
    response.body = "{}";
    response.headers = {{"Location", "/things/1"},
                        {"X-Evil", "a\r\nInjected: yes"},
                        {"Bad Name", "x"},
                        {"Cache-Control", "public"}};
    return response;
  });
  TestConnection connection(server_->port());
  const TestResponse response = connection.Request("POST", "/things");
  EXPECT_EQ(response.result_int(), 201);
  EXPECT_EQ(Str(response["Location"]), "/things/1");
  EXPECT_EQ(response.count("Injected"), 0u);
  EXPECT_EQ(response.count("X-Evil"), 0u);
  EXPECT_EQ(Str(response["Cache-Control"]), "no-store");  // the server's wins
}

TEST_F(HttpServerTest, NoContentHasNoBody) {
  Start(Options(), [](HttpRequest&, RequestLog&) {
    HttpResponse response;
    response.status = 204;
    response.body = "ignored";
    return response;
  });
  TestConnection connection(server_->port());
  const TestResponse first = connection.Request("DELETE", "/x");
  EXPECT_EQ(first.result_int(), 204);
  EXPECT_EQ(first.body(), "");
  EXPECT_EQ(connection.Request("DELETE", "/x").result_int(), 204);  // framing intact
}

TEST_F(HttpServerTest, ABlockedRequestDoesNotHoldUpOthers) {
  Gate release;
  Gate entered;
  Start(Options(), [&](HttpRequest& request, RequestLog& log) {
    if (request.path == "/slow") {
      entered.Open();
      release.Wait();
    }
    return Echo(request, log);
  });
  auto slow = std::async(std::launch::async, [&] {
    TestConnection connection(server_->port());
    return connection.Request("GET", "/slow").result_int();
  });
  entered.Wait();
  TestConnection fast(server_->port());
  EXPECT_EQ(fast.Request("GET", "/fast").result_int(), 200);
  release.Open();
  EXPECT_EQ(slow.get(), 200);
}

// ---- Held responses (HttpResponse::hold)

// Collects the release functions of held responses, to call them later from the test.
struct Releases {
  std::mutex mu;
  std::vector<ReleaseResponse> pending;
  Gate held;
  ResponseHold Hold() {
    return [this](ReleaseResponse release) {
      {
        std::lock_guard lock(mu);
        pending.push_back(std::move(release));
      }
      held.Open();
    };
  }
  ReleaseResponse Take() {
    std::lock_guard lock(mu);
    ReleaseResponse release = std::move(pending.front());
    pending.erase(pending.begin());
    return release;
  }
};

TEST_F(HttpServerTest, AHeldResponseLeavesWhenReleasedWithoutHoldingAPoolThread) {
  Releases releases;
  HttpServerOptions options = Options();
  options.threads = 1;  // one pool thread: a held response must not occupy it
  Start(options, [&](HttpRequest& request, RequestLog& log) {
    HttpResponse response = Echo(request, log);
    if (request.path == "/held") response.hold = releases.Hold();
    return response;
  });
  auto held = std::async(std::launch::async, [&] {
    TestConnection connection(server_->port());
    const TestResponse response = connection.Request("GET", "/held");
    return std::make_pair(response.result_int(), std::string(response.body()));
  });
  releases.held.Wait();
  TestConnection other(server_->port());
  EXPECT_EQ(other.Request("GET", "/free").result_int(), 200);
  // Released from another thread, as the audit writer does.
  std::thread([release = releases.Take()] { release(std::nullopt); }).join();
  const auto [status, body] = held.get();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(nlohmann::json::parse(body)["path"], "/held");
}

TEST_F(HttpServerTest, AReleaseWithAReplacementSendsItInstead) {
  Releases releases;
  Start(Options(), [&](HttpRequest& request, RequestLog& log) {
    HttpResponse response = Echo(request, log);
    response.body = "{\"secret\":\"sk_live_held_canary\"}";
    response.hold = releases.Hold();
    return response;
  });
  auto held = std::async(std::launch::async, [&] {
    TestConnection connection(server_->port());
    const TestResponse response = connection.Request("GET", "/held");
    return std::make_pair(response.result_int(), std::string(response.body()));
  });
  releases.held.Wait();
  releases.Take()(ErrorResponse(503, "unavailable", "not recorded"));
  const auto [status, body] = held.get();
  EXPECT_EQ(status, 503);
  EXPECT_EQ(body.find("sk_live_held_canary"), std::string::npos) << body;
}

TEST_F(HttpServerTest, AResponseNeverReleasedGets503AtTheHoldTimeout) {
  Releases releases;
  HttpServerOptions options = Options();
  options.hold_timeout = std::chrono::milliseconds(200);
  Start(options, [&](HttpRequest& request, RequestLog& log) {
    HttpResponse response = Echo(request, log);
    response.body = "{\"secret\":\"sk_live_held_canary\"}";
    response.hold = releases.Hold();
    return response;
  });
  TestConnection connection(server_->port());
  const TestResponse response = connection.Request("GET", "/held");
  EXPECT_EQ(response.result_int(), 503);
  EXPECT_EQ(std::string(response.body()).find("sk_live_held_canary"), std::string::npos);
  EXPECT_EQ(Str(response["Retry-After"]), "1");
  // The late release finds nothing to send, and the connection goes on.
  releases.Take()(std::nullopt);
  EXPECT_EQ(connection.Request("GET", "/held").result_int(), 503);
}

TEST_F(HttpServerTest, AReleaseAfterTheServerStoppedIsIgnored) {
  Releases releases;
  HttpServerOptions options = Options();
  options.shutdown_grace = std::chrono::milliseconds(100);
  Start(options, [&](HttpRequest& request, RequestLog& log) {
    HttpResponse response = Echo(request, log);
    response.hold = releases.Hold();
    return response;
  });
  auto held = std::async(std::launch::async, [&] {
    TestConnection connection(server_->port());
    connection.SendRaw("GET /held HTTP/1.1\r\nHost: x\r\n\r\n");
    return connection.WaitForClose();
  });
  releases.held.Wait();
  server_->Stop();  // the held request does not finish within the grace period
  EXPECT_TRUE(held.get());
  releases.Take()(std::nullopt);  // the session and the event loop are gone: nothing happens
  server_.reset();
}

TEST_F(HttpServerTest, StopLetsARequestInFlightFinishAndClosesIdleConnections) {
  Gate release;
  Gate entered;
  Start(Options(), [&](HttpRequest& request, RequestLog& log) {
    if (request.path == "/slow") {
      entered.Open();
      release.Wait();
    }
    return Echo(request, log);
  });
  TestConnection idle(server_->port());
  EXPECT_EQ(idle.Request("GET", "/warm-up").result_int(), 200);

  auto slow = std::async(std::launch::async, [&] {
    TestConnection connection(server_->port());
    const TestResponse response = connection.Request("GET", "/slow");
    return std::make_pair(response.result_int(), response.keep_alive());
  });
  entered.Wait();
  auto stopped = std::async(std::launch::async, [&] { server_->Stop(); });

  // The idle connection is closed (after the listener: nothing new is accepted now)...
  EXPECT_TRUE(idle.WaitForClose());
  EXPECT_THROW(TestConnection refused(server_->port()), boost::system::system_error);
  // ...while the request in flight still gets its answer, telling the client to go.
  release.Open();
  const auto [status, keep_alive] = slow.get();
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(keep_alive);
  stopped.get();
  EXPECT_EQ(server_->open_connections(), 0u);
  server_->Stop();  // idempotent
}

TEST_F(HttpServerTest, StopClosesConnectionsThatHaveNotSentAWholeRequest) {
  // Only dispatched requests get the grace period: a client that sends half a body (or half
  // its headers) and then nothing must not hold up a shutdown until the grace period ends.
  auto options = Options();
  options.shutdown_grace = std::chrono::seconds(60);
  options.header_timeout = std::chrono::seconds(60);
  options.body_timeout = std::chrono::seconds(60);
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  std::future<void> stopped;
  {
    TestConnection half_body(server_->port());
    half_body.SendRaw(
        "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
    ASSERT_EQ(half_body.ReadInterim().result_int(), 100);  // the server now reads the body
    half_body.SendRaw("ten bytes.");
    TestConnection half_headers(server_->port());
    half_headers.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n");

    stopped = std::async(std::launch::async, [this] { server_->Stop(); });
    // Generous: the point is "not the 60 s grace period", not a timing.
    const bool prompt = stopped.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    EXPECT_TRUE(prompt) << "Stop() waited for connections that never sent a whole request";
    if (prompt) {
      EXPECT_TRUE(half_body.WaitForClose());
      EXPECT_TRUE(half_headers.WaitForClose());
    }
  }  // closing the connections lets a Stop() that waited for them finish
  stopped.get();
  EXPECT_EQ(dispatched_.load(), 0);
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  auto options = Options();
  options.max_connections = 2;
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  auto first = std::make_unique<TestConnection>(server_->port());
  TestConnection second(server_->port());
  ASSERT_EQ(first->Request("GET", "/a").result_int(), 200);
  ASSERT_EQ(second.Request("GET", "/b").result_int(), 200);
  for (int i = 0; i < 3; ++i) {
    TestConnection over(server_->port(), "", std::chrono::seconds(5));
    EXPECT_TRUE(over.WaitForClose());
  }
  EXPECT_EQ(dispatched_.load(), 2);
  // A connection that ends frees its place.
  first.reset();
  ASSERT_TRUE(Eventually([&] { return server_->open_connections() < 2; }));
  TestConnection third(server_->port(), "", std::chrono::seconds(5));
  EXPECT_EQ(third.Request("GET", "/c").result_int(), 200);

  // One warning for the three refusals (at most one a second).
  int warnings = 0;
  for (const auto& line : StopAndReadLog()) {
    if (line["msg"] != "connection limit reached; closing new connections") continue;
    ++warnings;
    EXPECT_EQ(line["level"], "warn");
    EXPECT_EQ(line["max_connections"], 2);
  }
  EXPECT_GE(warnings, 1);
  EXPECT_LE(warnings, 3);
}

TEST_F(HttpServerTest, BodiesBeyondTheInFlightBudgetGet503) {
  auto options = Options();
  options.max_body_bytes = 1000;
  options.max_inflight_body_bytes = 1000;
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  // 800 bytes are charged when the headers arrive, before any of the body.
  TestConnection holder(server_->port());
  holder.SendRaw(
      "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(holder.ReadInterim().result_int(), 100);
  EXPECT_EQ(server_->inflight_body_bytes(), 800u);
  {
    TestConnection refused(server_->port(), "", std::chrono::seconds(5));
    refused.SendRaw("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n" +
                    std::string(300, 'b'));
    const TestResponse response = refused.Read();
    EXPECT_EQ(response.result_int(), 503);
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "unavailable");
    EXPECT_EQ(Str(response["Retry-After"]), "1");
    EXPECT_FALSE(response.keep_alive());
    EXPECT_TRUE(refused.WaitForClose());
  }
  {
    // Chunked: refused when the chunks announced so far (100 + 300) do not fit.
    TestConnection refused(server_->port(), "", std::chrono::seconds(5));
    refused.SendRaw("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" +
                    std::string(100, 'c') + "\r\n12c\r\n" + std::string(300, 'c') +
                    "\r\n0\r\n\r\n");
    const TestResponse response = refused.Read();
    EXPECT_EQ(response.result_int(), 503);
    EXPECT_TRUE(refused.WaitForClose());
  }
  {
    // What is left fits.
    TestConnection fits(server_->port());
    EXPECT_EQ(fits.Request("POST", "/x", std::string(200, 'd')).result_int(), 200);
  }
  holder.SendRaw(std::string(800, 'e'));
  const TestResponse held = holder.Read();
  EXPECT_EQ(held.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(held.body())["body"], std::string(800, 'e'));
  EXPECT_EQ(server_->inflight_body_bytes(), 0u);  // given back once answered
  EXPECT_EQ(holder.Request("POST", "/x", std::string(1000, 'f')).result_int(), 200);
  EXPECT_EQ(dispatched_.load(), 3);
}

TEST_F(HttpServerTest, AStalledBodyIsCutOffAtTheBodyTimeoutAndGivesBackItsBudget) {
  auto options = Options();
  options.max_body_bytes = 1000;
  options.max_inflight_body_bytes = 1000;
  options.body_timeout = std::chrono::milliseconds(200);
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  {
    TestConnection stalled(server_->port());
    stalled.SendRaw("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nthe start");
    EXPECT_TRUE(stalled.WaitForClose());
  }
  // The timer closes the socket, then the session gives the budget back.
  EXPECT_TRUE(Eventually([&] { return server_->inflight_body_bytes() == 0; }));
  TestConnection next(server_->port());
  EXPECT_EQ(next.Request("POST", "/x", std::string(1000, 'a')).result_int(), 200);
  EXPECT_EQ(dispatched_.load(), 1);
}

// Lowers this process's open-file limit for the life of the object.
class FileLimit {
 public:
  explicit FileLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ok_ = ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }
  ~FileLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

int HighestOpenFd() {
  int highest = 2;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 1024;
  while (const dirent* entry = ::readdir(dir)) {
    highest = std::max(highest, std::atoi(entry->d_name));
  }
  ::closedir(dir);
  return highest;
}

TEST_F(HttpServerTest, AcceptOutOfDescriptorsIsRetriedAndLoggedAtMostOncePerSecond) {
  auto& shared_log = shared_log_;
  auto options = Options();
  options.log = &shared_access_log_;
  Start(std::move(options), Echo);

  // Use up every descriptor but one, then connect with that one: the connection waits in the
  // listen backlog and every accept() fails with EMFILE.
  std::vector<int> fillers;
  int client = -1;
  {
    FileLimit limit(static_cast<rlim_t>(HighestOpenFd() + 1 + 32));
    ASSERT_TRUE(limit.ok());
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
    ASSERT_EQ(errno, EMFILE);
    ASSERT_FALSE(fillers.empty());
    ::close(fillers.back());
    fillers.pop_back();
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(client, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server_->port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);

    // Failures keep coming every retry; the log gets one line a second that counts the
    // swallowed ones. (Without the throttle no line ever has "suppressed".)
    const auto throttled_line = [&] {
      for (const auto& line : shared_log.Lines()) {
        if (line["msg"] == "accept failed; retrying shortly" && line.value("suppressed", 0) > 0) {
          return true;
        }
      }
      return false;
    };
    EXPECT_TRUE(Eventually(throttled_line)) << shared_log.Text();
    for (const int fd : fillers) ::close(fd);
    fillers.clear();
  }
  // With descriptors back, the waiting connection is accepted and served.
  const std::string request = "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(client, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  timeval tv{};
  tv.tv_sec = 20;
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(client, buffer, sizeof(buffer), 0)) > 0;) {
    response.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(client);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  for (const auto& line : shared_log.Lines()) {
    if (line["msg"] != "accept failed; retrying shortly") continue;
    EXPECT_EQ(line["level"], "error");
    EXPECT_TRUE(line.contains("error"));
  }
}

TEST_F(HttpServerTest, AccessLogHasOneLinePerRequestAndNoSecrets) {
  auto options = Options();
  options.route_namer = [](const HttpRequest& request) {
    return request.path.starts_with("/things/") ? std::string("/things/{id}") : std::string();
  };
  Start(std::move(options), [](HttpRequest& request, RequestLog& log) {
    if (!request.Header("authorization").empty()) log.token_id = "token-id-1";
    HttpResponse response;
    response.body = "{\"ok\":true}";
    return response;
  });
  std::vector<std::string> request_ids;
  {
    TestConnection connection(server_->port());
    request_ids.push_back(Str(connection.Request(
        "PUT", "/things/raw-path-canary?q=QUERY-CANARY", "{\"value\":\"BODY-CANARY\"}",
        {{"Authorization", "Bearer bft_TOKEN-CANARY"}})["X-Request-Id"]));
    request_ids.push_back(Str(connection.Request("GET", "/elsewhere")["X-Request-Id"]));
  }
  {
    TestConnection connection(server_->port());
    connection.SendRaw(
        "POST /things/x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
        "Authorization: Bearer bft_TOKEN-CANARY\r\n\r\n");
    request_ids.push_back(Str(connection.Read()["X-Request-Id"]));
  }

  const auto lines = StopAndReadLog();
  ASSERT_EQ(lines.size(), 3u) << log_stream_.str();
  const std::regex time_format(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$)");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& line = lines[i];
    EXPECT_TRUE(std::regex_match(line["time"].get<std::string>(), time_format)) << line;
    EXPECT_EQ(line["level"], "info");
    EXPECT_EQ(line["msg"], "request");
    EXPECT_EQ(line["request_id"], request_ids[i]);
    EXPECT_TRUE(line["duration_ms"].is_number());
    EXPECT_GE(line["duration_ms"].get<double>(), 0.0);
    EXPECT_EQ(line["client"].get<std::string>().rfind("127.0.0.1:", 0), 0u);
    EXPECT_TRUE(line.contains("token_id"));
  }
  EXPECT_EQ(lines[0]["method"], "PUT");
  EXPECT_EQ(lines[0]["route"], "/things/{id}");
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_EQ(lines[0]["token_id"], "token-id-1");
  EXPECT_EQ(lines[1]["method"], "GET");
  EXPECT_TRUE(lines[1]["route"].is_null());
  EXPECT_TRUE(lines[1]["token_id"].is_null());
  EXPECT_EQ(lines[2]["method"], "POST");
  EXPECT_EQ(lines[2]["status"], 413);
  EXPECT_EQ(lines[2]["route"], "/things/{id}");

  const std::string full_log = log_stream_.str();
  for (const char* canary : {"TOKEN-CANARY", "BODY-CANARY", "QUERY-CANARY", "raw-path-canary",
                             "Bearer", "authorization", "Authorization"}) {
    EXPECT_EQ(full_log.find(canary), std::string::npos) << canary << " in " << full_log;
  }
}

TEST(HttpServerOptionsTest, BadOptionsAreRefused) {
  const Dispatcher echo = Echo;
  const auto with = [](auto change) {
    HttpServerOptions options;
    change(options);
    return options;
  };
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) { o.threads = 0; }), echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) { o.max_body_bytes = 0; }), echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) { o.max_connections = 0; }), echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) {
                                    o.max_body_bytes = 2000;
                                    o.max_inflight_body_bytes = 1999;
                                  }),
                                  echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) { o.listen = "127.0.0.1"; }), echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) { o.listen = "127.0.0.1:99999"; }), echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) { o.tls_cert_file = "/nonexistent"; }), echo));
  EXPECT_FALSE(HttpServer::Create(with([](auto& o) {
                                    o.tls_cert_file = "/nonexistent.pem";
                                    o.tls_key_file = "/nonexistent.key";
                                  }),
                                  echo));
  EXPECT_FALSE(HttpServer::Create(HttpServerOptions{}, Dispatcher()));
}

TEST(HttpServerOptionsTest, DefaultsBoundConnectionsBodiesAndSlowClients) {
  const HttpServerOptions options;
  EXPECT_EQ(options.max_connections, 1024u);
  EXPECT_EQ(options.max_inflight_body_bytes, std::size_t{64} << 20);
  EXPECT_LE(options.body_timeout, std::chrono::seconds(30));
  EXPECT_LE(options.header_timeout, std::chrono::seconds(30));
}

TEST(HttpServerOptionsTest, ABoundPortCannotBeBoundTwice) {
  const Dispatcher echo = Echo;
  auto first = HttpServer::Create(HttpServerOptions{}, echo);
  ASSERT_TRUE(first);
  HttpServerOptions options;
  options.listen = "127.0.0.1:" + std::to_string((*first)->port());
  const auto second = HttpServer::Create(options, echo);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("cannot listen"), std::string::npos);
}

TEST(ListenAddressTest, Parses) {
  auto v4 = ParseListenAddress("127.0.0.1:8420");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8420);
  auto v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  auto name = ParseListenAddress("localhost:65535");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "localhost");
  for (const char* bad : {"", "8420", ":8420", "host:", "host:-1", "host:65536", "host:8x",
                          "::1:80", "[::1]", "[::1]80", "a b:80"}) {
    EXPECT_FALSE(ParseListenAddress(bad)) << bad;
  }
}

TEST(ListenAddressTest, Loopback) {
  for (const char* host : {"localhost", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.evil.com"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

class HttpServerTlsTest : public HttpServerTest {
 protected:
  void SetUp() override {
    cert_ = dir_.path() + "/cert.pem";
    key_ = dir_.path() + "/key.pem";
    const auto result = bifrost::testing::RunProcess(
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-keyout", key_, "-out", cert_});
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }

  bifrost::testing::TempDir dir_;
  std::string cert_;
  std::string key_;
};

TEST_F(HttpServerTlsTest, RoundTripWithATrustedSelfSignedCertificate) {
  auto options = Options();
  options.tls_cert_file = cert_;
  options.tls_key_file = key_;
  Start(std::move(options), Echo);
  EXPECT_TRUE(server_->tls());
  TestConnection connection(server_->port(), cert_);
  const TestResponse first = connection.Request("POST", "/secure?x=1", "over tls");
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(first.body())["body"], "over tls");
  EXPECT_EQ(Str(first["Cache-Control"]), "no-store");
  // Keep-alive over TLS.
  EXPECT_EQ(connection.Request("GET", "/again").result_int(), 200);
}

TEST_F(HttpServerTlsTest, PlainHttpOnTheTlsPortGetsNothing) {
  auto options = Options();
  options.tls_cert_file = cert_;
  options.tls_key_file = key_;
  Start(std::move(options), [this](HttpRequest& request, RequestLog& log) {
    ++dispatched_;
    return Echo(request, log);
  });
  TestConnection connection(server_->port());
  connection.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(connection.WaitForClose());
  EXPECT_EQ(dispatched_.load(), 0);
}

// The cipher name a TLS 1.2 client offering only `ciphers` negotiates, or "" when the
// handshake fails.
std::string NegotiatedTls12Cipher(std::uint16_t port, const char* ciphers) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), port});
  timeval tv{};
  tv.tv_sec = 20;
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  net::ssl::context ctx(net::ssl::context::tls_client);
  SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx.native_handle(), ciphers) != 1) {
    ADD_FAILURE() << "this OpenSSL cannot offer " << ciphers;
    return "";
  }
  ctx.set_verify_mode(net::ssl::verify_none);
  net::ssl::stream<net::ip::tcp::socket&> tls(socket, ctx);
  boost::system::error_code ec;
  tls.handshake(net::ssl::stream_base::client, ec);
  if (ec) return "";
  return SSL_get_cipher_name(tls.native_handle());
}

TEST_F(HttpServerTlsTest, Tls12OffersOnlyForwardSecretAeadCiphersInTheServersOrder) {
  auto options = Options();
  options.tls_cert_file = cert_;
  options.tls_key_file = key_;
  Start(std::move(options), Echo);
  EXPECT_EQ(NegotiatedTls12Cipher(server_->port(), "AES128-SHA"), "");            // RSA kx, CBC
  EXPECT_EQ(NegotiatedTls12Cipher(server_->port(), "AES256-GCM-SHA384"), "");     // no ECDHE
  EXPECT_EQ(NegotiatedTls12Cipher(server_->port(), "ECDHE-RSA-AES128-SHA"), "");  // CBC
  EXPECT_EQ(NegotiatedTls12Cipher(server_->port(), "ECDHE-RSA-AES256-GCM-SHA384"),
            "ECDHE-RSA-AES256-GCM-SHA384");
  // The server's preference wins over the client's order.
  EXPECT_EQ(NegotiatedTls12Cipher(server_->port(),
                                  "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256"),
            "ECDHE-RSA-AES128-GCM-SHA256");
  // TLS 1.3 keeps OpenSSL's defaults.
  TestConnection connection(server_->port(), cert_);
  EXPECT_EQ(connection.Request("GET", "/x").result_int(), 200);
}

TEST_F(HttpServerTlsTest, TlsHandshakesInProgressCountTowardsTheConnectionCap) {
  auto options = Options();
  options.tls_cert_file = cert_;
  options.tls_key_file = key_;
  options.max_connections = 1;
  Start(std::move(options), Echo);
  {
    TestConnection no_handshake(server_->port());  // plain TCP: never says ClientHello
    ASSERT_TRUE(Eventually([&] { return server_->open_connections() == 1; }));
    EXPECT_THROW(TestConnection refused(server_->port(), cert_, std::chrono::seconds(5)),
                 boost::system::system_error);
  }
  ASSERT_TRUE(Eventually([&] { return server_->open_connections() == 0; }));
  TestConnection connection(server_->port(), cert_);
  EXPECT_EQ(connection.Request("GET", "/x").result_int(), 200);
}

TEST_F(HttpServerTlsTest, ACertificateWithoutItsKeyIsRefused) {
  auto options = Options();
  options.tls_cert_file = cert_;
  options.tls_key_file = cert_;  // not a key
  const auto server = HttpServer::Create(std::move(options), Echo);
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message().find("TLS private key"), std::string::npos)
      << server.error().message();
}

TEST(LogThrottleTest, OneLinePerIntervalThatCountsTheSwallowedEvents) {
  using std::chrono::milliseconds;
  LogThrottle throttle(std::chrono::seconds(1));
  const LogThrottle::TimePoint start{};
  std::int64_t suppressed = -1;
  EXPECT_TRUE(throttle.Allow(start, &suppressed));
  EXPECT_EQ(suppressed, 0);
  for (int i = 1; i < 20; ++i) {
    EXPECT_FALSE(throttle.Allow(start + milliseconds(50 * i), &suppressed)) << i;
  }
  EXPECT_TRUE(throttle.Allow(start + milliseconds(1000), &suppressed));
  EXPECT_EQ(suppressed, 19);
  EXPECT_FALSE(throttle.Allow(start + milliseconds(1500), &suppressed));
  EXPECT_TRUE(throttle.Allow(start + milliseconds(9000), &suppressed));
  EXPECT_EQ(suppressed, 1);
  EXPECT_TRUE(throttle.Allow(start + milliseconds(10'000), &suppressed));
  EXPECT_EQ(suppressed, 0);
}

TEST(AccessLogTest, EventLinesAreJsonWithLevelAndMessage) {
  std::ostringstream out;
  const FakeClock clock(1'700'000'000'000'000);
  AccessLog log(out, clock);
  log.Info("listening", {{"address", std::string_view("http://127.0.0.1:1")},
                         {"threads", std::int64_t{4}},
                         {"dev", true},
                         {"msg", std::string_view("cannot override")}});
  log.Error("quote \" and newline \n in a message");
  std::istringstream in(out.str());
  std::string first;
  std::string second;
  ASSERT_TRUE(std::getline(in, first));
  ASSERT_TRUE(std::getline(in, second));
  const auto a = nlohmann::json::parse(first);
  EXPECT_EQ(a, (nlohmann::json{{"time", "2023-11-14T22:13:20.000000Z"},
                               {"level", "info"},
                               {"msg", "listening"},
                               {"address", "http://127.0.0.1:1"},
                               {"threads", 4},
                               {"dev", true}}));
  const auto b = nlohmann::json::parse(second);
  EXPECT_EQ(b["level"], "error");
  EXPECT_EQ(b["msg"], "quote \" and newline \n in a message");
}

}  // namespace
}  // namespace bifrost::server
