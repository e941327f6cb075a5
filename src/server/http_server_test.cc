#include "server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
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

TEST_F(HttpServerTlsTest, ACertificateWithoutItsKeyIsRefused) {
  auto options = Options();
  options.tls_cert_file = cert_;
  options.tls_key_file = cert_;  // not a key
  const auto server = HttpServer::Create(std::move(options), Echo);
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message().find("TLS private key"), std::string::npos)
      << server.error().message();
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
