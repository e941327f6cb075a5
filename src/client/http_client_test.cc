#include "client/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <mutex>
#include <string>

#include "client/testing/fake_http_server.h"
#include "tests/support/subprocess.h"

namespace bifrost::client {
namespace {

using testing::FakeHttpServer;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeTls;

std::unique_ptr<HttpClient> MustCreate(const ClientOptions& options) {
  auto client = HttpClient::Create(options);
  EXPECT_TRUE(client.has_value()) << client.error().ToString();
  return client ? std::move(*client) : nullptr;
}

std::unique_ptr<HttpClient> MustCreate(const std::string& address,
                                       const std::string& ca_file = "") {
  ClientOptions options;
  options.address = address;
  options.ca_file = ca_file;
  options.timeout_ms = 10'000;
  return MustCreate(options);
}

FakeResponse Echo(const FakeRequest& request) {
  FakeResponse response;
  response.body = request.method + " " + request.target + " " + request.body;
  return response;
}

// ---- UrlEncode ----

TEST(UrlEncodeTest, KeepsUnreservedAndEncodesEverythingElse) {
  EXPECT_EQ(UrlEncode(""), "");
  EXPECT_EQ(UrlEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(UrlEncode("a b"), "a%20b");
  EXPECT_EQ(UrlEncode("a/b?c=d&e#f"), "a%2Fb%3Fc%3Dd%26e%23f");
  EXPECT_EQ(UrlEncode("100%"), "100%25");
  EXPECT_EQ(UrlEncode("+"), "%2B");
  EXPECT_EQ(UrlEncode("\xc3\xa9"), "%C3%A9");  // é, byte by byte, upper-case hex
  EXPECT_EQ(UrlEncode(std::string("\0\n", 2)), "%00%0A");
}

// ---- addresses ----

TEST(HttpClientCreateTest, AcceptsHttpAndHttpsAddresses) {
  for (const char* address :
       {"http://127.0.0.1:8420", "http://localhost", "http://localhost/", "https://example.com",
        "https://[::1]:8443", "http://bifrost_internal.example:1"}) {
    EXPECT_TRUE(HttpClient::Create({.address = address}).has_value()) << address;
  }
}

TEST(HttpClientCreateTest, RejectsMalformedAddresses) {
  for (const char* address :
       {"", "127.0.0.1:8420", "ftp://host", "http://", "http://:80",
        "http://host:", "http://host:0", "http://host:65536", "http://host:80x", "http://host/path",
        "http://host?x", "http://[::1", "http://[zz]:80", "http://ho st", "http://::1:80"}) {
    auto client = HttpClient::Create({.address = address});
    ASSERT_FALSE(client.has_value()) << address;
    EXPECT_EQ(client.error().code(), ErrorCode::kInvalidArgument) << address;
  }
}

TEST(HttpClientCreateTest, NeverQuotesUserInformation) {
  auto client = HttpClient::Create({.address = "https://admin:hunter2@host"});
  ASSERT_FALSE(client.has_value());
  EXPECT_EQ(client.error().message().find("hunter2"), std::string::npos)
      << client.error().message();
}

TEST(HttpClientCreateTest, MissingCaFileIsRefused) {
  auto client =
      HttpClient::Create({.address = "https://localhost:1", .ca_file = "/nonexistent/ca.pem"});
  ASSERT_FALSE(client.has_value());
  EXPECT_EQ(client.error().code(), ErrorCode::kInvalidArgument);
}

// ---- plain HTTP ----

TEST(HttpClientTest, SendsRequestAndReadsResponse) {
  FakeHttpServer server([](const FakeRequest& request) {
    FakeResponse response = Echo(request);
    response.status = 201;
    response.headers["X-Request-Id"] = "req-1";
    return response;
  });
  auto client = MustCreate(server.http_address());
  ASSERT_NE(client, nullptr);
  auto result = client->Send("PUT", "/api/v1/x%20y?a=1", R"({"k":1})", "bft_secret");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(result->status, 201);
  EXPECT_EQ(result->body, R"(PUT /api/v1/x%20y?a=1 {"k":1})");
  EXPECT_EQ(result->headers["x-request-id"], "req-1");
  EXPECT_EQ(result->headers["content-type"], "application/json");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer bft_secret");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(requests[0].headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
}

TEST(HttpClientTest, NoBearerAndNoBodyMeansNoSuchHeaders) {
  FakeHttpServer server(Echo);
  auto client = MustCreate(server.http_address());
  ASSERT_TRUE(client->Send("GET", "/healthz").has_value());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);
  EXPECT_EQ(requests[0].headers.count("content-type"), 0u);
}

TEST(HttpClientTest, NonSuccessStatusIsAResultNotAnError) {
  FakeHttpServer server([](const FakeRequest&) {
    return FakeResponse{.status = 404, .body = R"({"error":{"code":"not_found"}})"};
  });
  auto client = MustCreate(server.http_address());
  auto result = client->Send("GET", "/nope");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status, 404);
}

TEST(HttpClientTest, ReusesTheKeptAliveConnection) {
  FakeHttpServer server(Echo);
  auto client = MustCreate(server.http_address());
  for (int i = 0; i < 5; ++i) {
    auto result = client->Send("GET", "/r" + std::to_string(i));
    ASSERT_TRUE(result.has_value()) << result.error().ToString();
    EXPECT_EQ(result->body, "GET /r" + std::to_string(i) + " ");
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, ReconnectsWhenTheServerClosedTheIdleConnection) {
  // Every response claims keep-alive, then the server closes: what an idle timeout does.
  FakeHttpServer server([](const FakeRequest& request) {
    FakeResponse response = Echo(request);
    response.close_after = true;
    return response;
  });
  auto client = MustCreate(server.http_address());
  for (int i = 0; i < 3; ++i) {
    server.WaitUntilClosed(i);  // the connection is idle and closed, as after a timeout
    auto result = client->Send("POST", "/p", "{}");
    ASSERT_TRUE(result.has_value()) << i << ": " << result.error().ToString();
  }
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(server.requests().size(), 3u);  // each request sent exactly once
}

TEST(HttpClientTest, ReconnectsOnceWhenAReusedConnectionDiesUnanswered) {
  // The second request arrives on the kept-alive connection and the server closes it
  // without answering (it raced with the idle timeout): a GET is sent again, once.
  std::mutex mu;
  int seen = 0;
  FakeHttpServer server([&](const FakeRequest& request) {
    std::lock_guard<std::mutex> lock(mu);
    FakeResponse response = Echo(request);
    response.drop = ++seen == 2;
    return response;
  });
  auto client = MustCreate(server.http_address());
  ASSERT_TRUE(client->Send("GET", "/one").has_value());
  auto second = client->Send("GET", "/two");
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(second->body, "GET /two ");
  EXPECT_EQ(server.connections(), 2);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].connection, 1);
  EXPECT_EQ(requests[2].connection, 2);
  EXPECT_EQ(requests[2].target, "/two");
}

TEST(HttpClientTest, DoesNotResendAPostTheServerMayHaveProcessed) {
  std::mutex mu;
  int seen = 0;
  FakeHttpServer server([&](const FakeRequest& request) {
    std::lock_guard<std::mutex> lock(mu);
    FakeResponse response = Echo(request);
    response.drop = ++seen == 2;
    return response;
  });
  auto client = MustCreate(server.http_address());
  ASSERT_TRUE(client->Send("GET", "/one").has_value());
  auto second = client->Send("POST", "/api/v1/orgs", R"({"name":"a"})");
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(server.requests().size(), 2u);
  // The client recovers on the next request.
  EXPECT_TRUE(client->Send("GET", "/three").has_value());
}

TEST(HttpClientTest, ConnectionCloseFromTheServerIsHonoured) {
  FakeHttpServer server([](const FakeRequest& request) {
    FakeResponse response = Echo(request);
    response.keep_alive = false;
    return response;
  });
  auto client = MustCreate(server.http_address());
  ASSERT_TRUE(client->Send("GET", "/a").has_value());
  ASSERT_TRUE(client->Send("GET", "/b").has_value());
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, ReadsLargeBodies) {
  const std::string big(3 << 20, 'x');
  FakeHttpServer server([&](const FakeRequest&) { return FakeResponse{.body = big}; });
  auto client = MustCreate(server.http_address());
  auto result = client->Send("GET", "/big");
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  EXPECT_EQ(result->body.size(), big.size());
}

unsigned short UnusedPort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(
      ioc, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();  // closed again when `acceptor` goes away
}

TEST(HttpClientTest, UnreachableServerIsUnavailableAndNamesTheAddress) {
  const std::string address = "http://127.0.0.1:" + std::to_string(UnusedPort());
  auto client = MustCreate(address);
  auto result = client->Send("GET", "/healthz", std::nullopt, "bft_do_not_print");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(result.error().message().starts_with("cannot reach bifrost at " + address + ": "))
      << result.error().message();
  EXPECT_EQ(result.error().message().find("bft_do_not_print"), std::string::npos);
}

TEST(HttpClientTest, UnresolvableHostIsUnavailable) {
  auto client = MustCreate("http://bifrost.invalid:8420");
  auto result = client->Send("GET", "/healthz");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(result.error().message().starts_with("cannot reach bifrost at "))
      << result.error().message();
}

TEST(HttpClientTest, ServerThatDoesNotAnswerTimesOut) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeHttpServer server([&](const FakeRequest& request) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    return Echo(request);
  });
  auto client = MustCreate(ClientOptions{.address = server.http_address(), .timeout_ms = 200});
  auto result = client->Send("GET", "/slow");
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(result.error().message().find("did not answer within 200 ms"), std::string::npos)
      << result.error().message();
}

TEST(HttpClientTest, RefusesHeaderInjection) {
  FakeHttpServer server(Echo);
  auto client = MustCreate(server.http_address());
  auto bad_token = client->Send("GET", "/x", std::nullopt, "bft_a\r\nX-Evil: 1");
  ASSERT_FALSE(bad_token.has_value());
  EXPECT_EQ(bad_token.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad_token.error().message().find("bft_a"), std::string::npos);
  EXPECT_FALSE(client->Send("GET", "/x y").has_value());
  EXPECT_FALSE(client->Send("GET", "no-slash").has_value());
  EXPECT_FALSE(client->Send("BREW", "/x").has_value());
  EXPECT_TRUE(server.requests().empty());
}

// ---- HTTPS ----

struct CertFiles {
  std::string cert;
  std::string key;
};

// A self-signed certificate made by the openssl command line, as an operator would.
CertFiles MakeSelfSigned(const bifrost::testing::TempDir& dir, const std::string& name,
                         const std::string& subject_alt_names) {
  CertFiles files{dir.path() + "/" + name + ".crt", dir.path() + "/" + name + ".key"};
  const auto result = bifrost::testing::RunProcess(
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", files.key, "-out",
       files.cert, "-subj", "/CN=localhost", "-addext", "subjectAltName=" + subject_alt_names,
       "-days", "1"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return files;
}

class HttpsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new bifrost::testing::TempDir();
    good_ = new CertFiles(MakeSelfSigned(*dir_, "good", "DNS:localhost,IP:127.0.0.1"));
    other_ = new CertFiles(MakeSelfSigned(*dir_, "other", "DNS:localhost,IP:127.0.0.1"));
    wrong_name_ = new CertFiles(MakeSelfSigned(*dir_, "wrong_name", "DNS:other.example"));
  }
  static void TearDownTestSuite() {
    delete wrong_name_;
    delete other_;
    delete good_;
    delete dir_;
  }

  static bifrost::testing::TempDir* dir_;
  static CertFiles* good_;
  static CertFiles* other_;
  static CertFiles* wrong_name_;
};

bifrost::testing::TempDir* HttpsClientTest::dir_ = nullptr;
CertFiles* HttpsClientTest::good_ = nullptr;
CertFiles* HttpsClientTest::other_ = nullptr;
CertFiles* HttpsClientTest::wrong_name_ = nullptr;

TEST_F(HttpsClientTest, TrustedCertificateByIpAndByName) {
  FakeHttpServer server(Echo, FakeTls{good_->cert, good_->key});
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto client = MustCreate(server.https_address(host), good_->cert);
    ASSERT_NE(client, nullptr);
    auto result = client->Send("GET", "/api/v1/whoami", std::nullopt, "bft_x");
    ASSERT_TRUE(result.has_value()) << host << ": " << result.error().ToString();
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->body, "GET /api/v1/whoami ");
  }
}

TEST_F(HttpsClientTest, ReusesAndReconnectsTlsConnections) {
  std::mutex mu;
  int seen = 0;
  FakeHttpServer server(
      [&](const FakeRequest& request) {
        std::lock_guard<std::mutex> lock(mu);
        FakeResponse response = Echo(request);
        response.close_after = ++seen == 3;  // the third answer ends the connection
        return response;
      },
      FakeTls{good_->cert, good_->key});
  auto client = MustCreate(server.https_address(), good_->cert);
  for (int i = 0; i < 5; ++i) {
    if (i == 3) server.WaitUntilClosed(1);
    auto result = client->Send("POST", "/r", "{}");
    ASSERT_TRUE(result.has_value()) << i << ": " << result.error().ToString();
  }
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests().size(), 5u);
}

TEST_F(HttpsClientTest, CertificateFromAnotherCaIsRejected) {
  FakeHttpServer server(Echo, FakeTls{good_->cert, good_->key});
  auto client = MustCreate(server.https_address(), other_->cert);
  auto result = client->Send("GET", "/api/v1/whoami", std::nullopt, "bft_x");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(result.error().message().find("certificate verify failed"), std::string::npos)
      << result.error().message();
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpsClientTest, SelfSignedCertificateIsRejectedWithSystemCas) {
  FakeHttpServer server(Echo, FakeTls{good_->cert, good_->key});
  auto client = MustCreate(server.https_address());
  auto result = client->Send("GET", "/healthz");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpsClientTest, CertificateForAnotherHostIsRejected) {
  // Trusted (it is its own CA) but issued for other.example, not for 127.0.0.1/localhost.
  FakeHttpServer server(Echo, FakeTls{wrong_name_->cert, wrong_name_->key});
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto client = MustCreate(server.https_address(host), wrong_name_->cert);
    auto result = client->Send("GET", "/healthz");
    ASSERT_FALSE(result.has_value()) << host;
    EXPECT_NE(result.error().message().find("mismatch"), std::string::npos)
        << result.error().message();
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(HttpsClientTest, PlainHttpClientAgainstTlsServerFailsCleanly) {
  FakeHttpServer server(Echo, FakeTls{good_->cert, good_->key});
  ClientOptions options;
  options.address = server.http_address();
  options.timeout_ms = 2'000;
  auto client = MustCreate(options);
  auto result = client->Send("GET", "/healthz");
  EXPECT_FALSE(result.has_value());
}

}  // namespace
}  // namespace bifrost::client
