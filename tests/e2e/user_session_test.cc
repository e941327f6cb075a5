// Users and browser sessions through the real binary (docs/web-ui.md): the `bifrost user`
// commands, sign-in with the session cookie and its attributes, CSRF, rate limits, the end
// of a session (sign-out, disable, new password, idle expiry), isolation, the audit trail,
// the security headers, `serve --dev`'s first user, and no password or session token in the
// server's output or database files.
//
// The cookie and the X-CSRF-Token header are sent by a small raw HTTP/1.1 client below (one
// connection per request): client::HttpClient speaks only bearer tokens, on purpose.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

using testing::ProcessResult;

constexpr const char* kCookieName = "bifrost_session";
const std::string kAnaPassword = "ana-correct-horse-7Q";
const std::string kAnaNewPassword = "ana-battery-staple-9Z";
const std::string kOpsPassword = "ops-tr0ub4dor-and-3";

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// ---- a raw HTTP/1.1 client: any header, every Set-Cookie ----

struct HttpReply {
  int status = 0;
  std::string body;
  json json_body;                                   // discarded when not JSON
  std::multimap<std::string, std::string> headers;  // names lower-cased, in order

  std::string Header(const std::string& name) const {
    const auto it = headers.find(Lower(name));
    return it == headers.end() ? "" : it->second;
  }
  bool HasHeader(const std::string& name) const { return headers.contains(Lower(name)); }
  std::vector<std::string> SetCookies() const {
    std::vector<std::string> cookies;
    const auto [begin, end] = headers.equal_range("set-cookie");
    for (auto it = begin; it != end; ++it) cookies.push_back(it->second);
    return cookies;
  }
  std::string ErrorCode() const {
    if (!json_body.is_object() || !json_body.contains("error")) return "";
    return json_body["error"].value("code", "");
  }
  std::string ErrorMessage() const {
    if (!json_body.is_object() || !json_body.contains("error")) return "";
    return json_body["error"].value("message", "");
  }
};

// The port of "http://127.0.0.1:PORT".
int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

std::string DecodeChunked(const std::string& raw) {
  std::string out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    const std::size_t line_end = raw.find("\r\n", pos);
    if (line_end == std::string::npos) break;
    const std::size_t size = std::stoul(raw.substr(pos, line_end - pos), nullptr, 16);
    if (size == 0) break;
    out += raw.substr(line_end + 2, size);
    pos = line_end + 2 + size + 2;
  }
  return out;
}

// One request on a fresh connection ("Connection: close"), the whole answer read.
HttpReply Http(const std::string& address, const std::string& method, const std::string& target,
               const std::vector<std::pair<std::string, std::string>>& headers = {},
               const std::optional<std::string>& body = std::nullopt) {
  HttpReply reply;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    ADD_FAILURE() << "socket() failed";
    return reply;
  }
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  peer.sin_port = htons(static_cast<std::uint16_t>(PortOf(address)));
  peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&peer), sizeof(peer)) != 0) {
    ::close(fd);
    ADD_FAILURE() << "cannot connect to " << address;
    return reply;
  }
  timeval timeout{.tv_sec = 30, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  request += "Connection: close\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  if (body) {
    request += "Content-Type: application/json\r\n";
    request += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  }
  request += "\r\n";
  if (body) request += *body;
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buffer[16384];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    raw.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);

  const std::size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || !raw.starts_with("HTTP/1.1 ")) {
    ADD_FAILURE() << method << " " << target << ": no HTTP answer: " << raw.substr(0, 200);
    return reply;
  }
  reply.status = std::stoi(raw.substr(9, 3));
  std::size_t line_start = raw.find("\r\n") + 2;
  while (line_start < head_end) {
    const std::size_t line_end = raw.find("\r\n", line_start);
    const std::string line = raw.substr(line_start, line_end - line_start);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      reply.headers.emplace(Lower(line.substr(0, colon)), value);
    }
    line_start = line_end + 2;
  }
  reply.body = raw.substr(head_end + 4);
  if (Lower(reply.Header("transfer-encoding")) == "chunked") reply.body = DecodeChunked(reply.body);
  reply.json_body = json::parse(reply.body, nullptr, false);
  return reply;
}

// ---- sessions ----

struct WebSession {
  std::string token;  // bfs_...: the cookie's value
  std::string csrf;
  json user;
  std::string cookie() const { return std::string(kCookieName) + "=" + token; }
};

// The value of the bifrost_session cookie set by `reply` ("" if none).
std::string SessionCookieValue(const HttpReply& reply) {
  for (const std::string& cookie : reply.SetCookies()) {
    const std::string prefix = std::string(kCookieName) + "=";
    if (!cookie.starts_with(prefix)) continue;
    return cookie.substr(prefix.size(), cookie.find(';') - prefix.size());
  }
  return "";
}

HttpReply Login(const std::string& address, const std::string& email, const std::string& password) {
  return Http(address, "POST", "/api/v1/auth/login", {},
              json{{"email", email}, {"password", password}}.dump());
}

// Signs in and returns the session; fails the test unless it works.
WebSession SignIn(const std::string& address, const std::string& email,
                  const std::string& password) {
  const HttpReply r = Login(address, email, password);
  EXPECT_EQ(r.status, 200) << email << ": " << r.body;
  WebSession session;
  session.token = SessionCookieValue(r);
  if (r.json_body.is_object()) {
    session.csrf = r.json_body.value("csrf_token", "");
    session.user = r.json_body.value("user", json());
  }
  EXPECT_FALSE(session.token.empty()) << "no session cookie";
  return session;
}

// A request authenticated by the session cookie; `with_csrf` adds X-CSRF-Token.
HttpReply AsSession(const std::string& address, const WebSession& session,
                    const std::string& method, const std::string& target,
                    const std::optional<json>& body = std::nullopt, bool with_csrf = true) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Cookie", session.cookie()}};
  if (with_csrf) headers.emplace_back("X-CSRF-Token", session.csrf);
  return Http(address, method, target, headers,
              body ? std::optional<std::string>(body->dump()) : std::nullopt);
}

bool IsBase64UrlChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

// The attributes of a Set-Cookie value after the first ';', trimmed, names lower-cased
// ("httponly", "samesite=strict", "path=/").
std::vector<std::string> CookieAttributes(const std::string& set_cookie) {
  std::vector<std::string> attributes;
  std::size_t pos = set_cookie.find(';');
  while (pos != std::string::npos) {
    const std::size_t next = set_cookie.find(';', pos + 1);
    std::string part =
        set_cookie.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    while (!part.empty() && part.back() == ' ') part.pop_back();
    attributes.push_back(Lower(part));
    pos = next;
  }
  return attributes;
}

// `object[name]`, or null when `object` is not an object or lacks it (const operator[] on a
// missing member would abort the whole test binary).
json F(const json& object, const std::string& name) {
  if (!object.is_object()) return json();
  const auto it = object.find(name);
  return it == object.end() ? json() : *it;
}

// A string member, "" when absent or not a string.
std::string S(const json& object, const std::string& name) {
  const json value = F(object, name);
  return value.is_string() ? value.get<std::string>() : "";
}

bool Has(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

// Every regular file under `dir`, concatenated.
std::string AllFiles(const std::string& dir) {
  std::string files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files += testing::ReadFileOrEmpty(entry.path().string());
  }
  return files;
}

std::int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class UserSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(server_.address().empty());
    admin_ = server_.admin_token();
    acme_ = CreateOrg(api_, admin_, "acme");
    beta_ = CreateOrg(api_, admin_, "beta");
  }

  const std::string& address() const { return server_.address(); }

  // `bifrost user ...` as the platform admin (or `token`), `input` on stdin.
  ProcessResult UserCli(const std::vector<std::string>& args, const std::string& input = "",
                        const std::string& token = "") {
    std::vector<std::string> argv = {"user"};
    argv.insert(argv.end(), args.begin(), args.end());
    return server_.Cli(argv, token.empty() ? admin_ : token, input);
  }

  // Creates a user through the API as the platform admin; returns it.
  json CreateUser(const std::string& email, const std::string& password, const std::string& role,
                  const std::optional<std::string>& org_id) {
    json body = {{"email", email}, {"password", password}, {"role", role}};
    if (org_id) body["org_id"] = *org_id;
    const Reply r = api_.Call("POST", "/api/v1/users", admin_, body);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json_body;
  }

  std::vector<json> Audit(const std::string& query) {
    std::string target = "/api/v1/audit?limit=1000";
    if (!query.empty()) target += "&" + query;
    const Reply r = api_.Call("GET", target, admin_);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<json> records;
    if (r.status == 200) {
      for (const auto& record : F(r.json_body, "records")) records.push_back(record);
    }
    return records;
  }

  testing::ServerProcess server_;
  Api api_{server_.address()};
  std::string admin_;
  std::string acme_;
  std::string beta_;
};

// ---- the CLI ----

TEST_F(UserSessionTest, UserCliCreateListDisablePasswd) {
  ProcessResult r =
      UserCli({"create", "--email", "ana@acme.example", "--org", "acme", "--role", "admin"},
              kAnaPassword + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("created user ana@acme.example (")) << r.out;
  EXPECT_TRUE(r.out.ends_with("): admin of acme\n")) << r.out;
  EXPECT_EQ(r.out.find(kAnaPassword), std::string::npos);
  EXPECT_EQ(r.err.find(kAnaPassword), std::string::npos);

  r = UserCli(
      {"create", "--email", "ops@example.com", "--role", "platform-admin", "--format", "json"},
      kOpsPassword);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json ops = json::parse(r.out, nullptr, false);
  EXPECT_EQ(F(ops, "email"), "ops@example.com");
  EXPECT_EQ(F(ops, "role"), "platform-admin");
  EXPECT_TRUE(F(ops, "org_id").is_null());
  EXPECT_EQ(F(ops, "disabled"), false);
  EXPECT_EQ(r.out.find(kOpsPassword), std::string::npos);

  // A password too short is refused by the CLI before anything is sent.
  r = UserCli({"create", "--email", "short@acme.example", "--org", "acme", "--role", "member"},
              "only11bytes\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "bifrost: the password is too short: a password is 12 to 1024 bytes\n");
  EXPECT_EQ(r.out, "");
  // And by the server, which has the last word.
  const Reply short_api = api_.Call("POST", "/api/v1/users", admin_,
                                    json{{"email", "short@acme.example"},
                                         {"password", "only11bytes"},
                                         {"role", "member"},
                                         {"org_id", acme_}});
  EXPECT_TRUE(short_api.status == 400 || short_api.status == 422) << short_api.body;
  // The same email twice: the server refuses (409), the CLI says so.
  r = UserCli({"create", "--email", "ana@acme.example", "--org", "acme", "--role", "member"},
              kAnaPassword + "\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.err.starts_with("bifrost: ")) << r.err;

  // list --format json: the Users, never a password or its hash.
  r = UserCli({"list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json listed = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(listed.is_array()) << r.out;
  std::map<std::string, json> by_email;
  for (const auto& user : listed) by_email[user.value("email", "")] = user;
  ASSERT_TRUE(by_email.contains("ana@acme.example")) << r.out;
  ASSERT_TRUE(by_email.contains("ops@example.com")) << r.out;
  EXPECT_FALSE(by_email.contains("short@acme.example"));
  const json ana = by_email["ana@acme.example"];
  EXPECT_EQ(F(ana, "role"), "admin");
  EXPECT_EQ(F(ana, "org_id"), acme_);
  EXPECT_EQ(F(ana, "disabled"), false);
  EXPECT_TRUE(F(ana, "last_login_at").is_null());
  EXPECT_TRUE(F(ana, "id").is_string());
  EXPECT_TRUE(F(ana, "created_at").is_string());
  EXPECT_TRUE(ana.contains("created_by"));
  EXPECT_EQ(r.out.find("argon2"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("password"), std::string::npos) << r.out;

  // The table: names for orgs, "-" for a platform admin, the state.
  r = UserCli({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::string> lines;
  std::size_t start = 0;
  std::string header;
  while (start < r.out.size()) {
    const std::size_t end = r.out.find('\n', start);
    const std::string line = r.out.substr(start, end - start);
    if (header.empty()) {
      header = line;
    } else {
      lines[line.substr(0, line.find(' '))] = line;
    }
    start = end + 1;
  }
  EXPECT_TRUE(header.starts_with("EMAIL  ")) << r.out;
  for (const char* column : {"ROLE", "ORG", "STATE", "LAST LOGIN", "CREATED"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column << "\n" << r.out;
  }
  const auto cells = [](const std::string& line) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < line.size()) {
      const std::size_t gap = line.find("  ", pos);
      out.push_back(line.substr(pos, gap - pos));
      if (gap == std::string::npos) break;
      pos = line.find_first_not_of(' ', gap);
    }
    return out;
  };
  ASSERT_TRUE(lines.contains("ana@acme.example")) << r.out;
  const auto ana_cells = cells(lines["ana@acme.example"]);
  ASSERT_EQ(ana_cells.size(), 6u) << lines["ana@acme.example"];
  EXPECT_EQ(ana_cells[1], "admin");
  EXPECT_EQ(ana_cells[2], "acme");
  EXPECT_EQ(ana_cells[3], "active");
  EXPECT_EQ(ana_cells[4], "-");  // never signed in
  const auto ops_cells = cells(lines["ops@example.com"]);
  ASSERT_EQ(ops_cells.size(), 6u) << lines["ops@example.com"];
  EXPECT_EQ(ops_cells[1], "platform-admin");
  EXPECT_EQ(ops_cells[2], "-");

  // --org: only that organization's users.
  r = UserCli({"list", "--org", "acme", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json acme_users = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(acme_users.is_array());
  ASSERT_EQ(acme_users.size(), 1u) << r.out;
  EXPECT_EQ(F(acme_users[0], "email"), "ana@acme.example");

  // The password works; passwd replaces it.
  (void)SignIn(address(), "ana@acme.example", kAnaPassword);
  r = UserCli({"passwd", "ana@acme.example"}, kAnaNewPassword + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "changed the password of user ana@acme.example; its sessions have ended\n");
  EXPECT_EQ(Login(address(), "ana@acme.example", kAnaPassword).status, 401);
  (void)SignIn(address(), "ana@acme.example", kAnaNewPassword);
  r = UserCli({"passwd", "ana@acme.example"}, "too short\n");
  EXPECT_EQ(r.exit_code, 2);

  // LAST LOGIN is filled in after a sign-in.
  r = UserCli({"list", "--format", "json"});
  for (const auto& user : json::parse(r.out, nullptr, false)) {
    if (F(user, "email") == "ana@acme.example") {
      EXPECT_TRUE(F(user, "last_login_at").is_string());
    }
  }

  // disable: the user cannot sign in any more.
  r = UserCli({"disable", "ana@acme.example"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("disabled user ana@acme.example (")) << r.out;
  EXPECT_EQ(Login(address(), "ana@acme.example", kAnaNewPassword).status, 401);
  r = UserCli({"list"});
  EXPECT_NE(r.out.find("disabled"), std::string::npos) << r.out;
  r = UserCli({"disable", "nobody@acme.example"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

// ---- sign-in ----

TEST_F(UserSessionTest, SessionCookieAuthenticatesWithCsrfForWrites) {
  const json ana = CreateUser("ana@acme.example", kAnaPassword, "admin", acme_);
  const std::string ana_id = ana.value("id", "");

  const HttpReply login = Login(address(), "ana@acme.example", kAnaPassword);
  ASSERT_EQ(login.status, 200) << login.body;
  // The cookie: bfs_ + 43 base64url characters, HttpOnly, SameSite=Strict, Path=/, and no
  // Secure on plain HTTP.
  std::string set_cookie;
  for (const auto& c : login.SetCookies()) {
    if (c.starts_with(std::string(kCookieName) + "=")) set_cookie = c;
  }
  ASSERT_FALSE(set_cookie.empty()) << "no " << kCookieName << " cookie";
  const std::string token = SessionCookieValue(login);
  ASSERT_TRUE(token.starts_with("bfs_")) << set_cookie;
  EXPECT_EQ(token.size(), 4u + 43u) << token;
  EXPECT_TRUE(std::all_of(token.begin() + 4, token.end(), IsBase64UrlChar)) << token;
  const auto attributes = CookieAttributes(set_cookie);
  EXPECT_TRUE(Has(attributes, "httponly")) << set_cookie;
  EXPECT_TRUE(Has(attributes, "samesite=strict")) << set_cookie;
  EXPECT_TRUE(Has(attributes, "path=/")) << set_cookie;
  EXPECT_FALSE(Has(attributes, "secure")) << set_cookie;
  // The Session.
  ASSERT_TRUE(login.json_body.is_object()) << login.body;
  EXPECT_EQ(F(F(login.json_body, "user"), "email"), "ana@acme.example");
  EXPECT_EQ(F(F(login.json_body, "user"), "id"), ana_id);
  EXPECT_EQ(F(F(login.json_body, "user"), "role"), "admin");
  EXPECT_EQ(F(F(login.json_body, "user"), "org_id"), acme_);
  const std::string csrf = login.json_body.value("csrf_token", "");
  EXPECT_GE(csrf.size(), 16u);
  EXPECT_NE(csrf, token);
  EXPECT_EQ(login.body.find(token), std::string::npos) << "the session token is in the body";
  EXPECT_EQ(F(login.json_body, "idle_timeout_seconds"), 1800);  // default: 30 minutes
  const auto expires = ParseRfc3339(login.json_body.value("expires_at", ""));
  ASSERT_TRUE(expires.has_value()) << login.body;
  EXPECT_GT(*expires, NowMicros());
  EXPECT_LE(*expires, NowMicros() + std::int64_t{12} * 3600 * 1'000'000 + 60'000'000);

  WebSession session{token, csrf, F(login.json_body, "user")};
  // The cookie authenticates reads.
  HttpReply r = AsSession(address(), session, "GET", "/api/v1/auth/session", std::nullopt, false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(F(F(r.json_body, "user"), "email"), "ana@acme.example");
  EXPECT_EQ(F(r.json_body, "csrf_token"), csrf);
  r = AsSession(address(), session, "GET", "/api/v1/orgs/" + acme_ + "/configs", std::nullopt,
                false);
  EXPECT_EQ(r.status, 200) << r.body;
  // Without the cookie there is no session.
  EXPECT_EQ(Http(address(), "GET", "/api/v1/auth/session").status, 401);
  EXPECT_EQ(
      Http(address(), "GET", "/api/v1/auth/session", {{"Cookie", "bifrost_session=bfs_x"}}).status,
      401);

  // A write with the cookie needs the CSRF header, and the right one.
  const std::string put_target = "/api/v1/orgs/" + acme_ + "/configs/retries";
  const json put_body = {{"type", "int"}, {"value", 5}};
  r = AsSession(address(), session, "PUT", put_target, put_body, /*with_csrf=*/false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "csrf_failed") << r.body;
  WebSession wrong_csrf = session;
  wrong_csrf.csrf = csrf.substr(0, csrf.size() - 1) + (csrf.back() == 'A' ? "B" : "A");
  r = AsSession(address(), wrong_csrf, "PUT", put_target, put_body);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "csrf_failed") << r.body;
  EXPECT_EQ(api_.Call("GET", put_target, admin_).status, 404) << "a refused write was stored";
  r = AsSession(address(), session, "PUT", put_target, put_body);
  ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
  // The user is the actor.
  EXPECT_EQ(F(r.json_body, "updated_by"), "user:ana@acme.example/" + ana_id) << r.body;
  const Reply stored = api_.Call("GET", put_target, admin_);
  EXPECT_EQ(F(stored.json_body, "updated_by"), "user:ana@acme.example/" + ana_id) << stored.body;

  // A session never reveals a value, not even one its user's role could read with a token:
  // the answer is a denial, recorded like any other.
  r = AsSession(address(), session, "GET", put_target + "/reveal", std::nullopt, false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.body.find("\"value\""), std::string::npos) << r.body;
  const Reply denials =
      api_.Call("GET", "/api/v1/audit?action=config.reveal&outcome=denied", admin_);
  ASSERT_EQ(denials.status, 200) << denials.body;
  ASSERT_FALSE(denials.json_body["records"].empty()) << denials.body;
  EXPECT_EQ(denials.json_body["records"][0]["actor_name"], "user:ana@acme.example");

  // PATCH and DELETE are writes too.
  r = AsSession(address(), session, "PATCH", put_target, json{{"description", "d"}}, false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "csrf_failed") << r.body;
  r = AsSession(address(), session, "DELETE", put_target, std::nullopt, false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "csrf_failed") << r.body;
  EXPECT_EQ(api_.Call("GET", put_target, admin_).status, 200) << "a refused delete deleted";

  // Bearer tokens still work, and the header wins over the cookie: no CSRF needed, and the
  // token is the actor; a bad header is 401 even beside a live cookie.
  r = Http(address(), "GET", "/api/v1/auth/session",
           {{"Cookie", session.cookie()}, {"Authorization", "Bearer bft_not_a_real_token"}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(api_.Call("GET", "/api/v1/orgs/" + acme_ + "/configs", admin_).status, 200);
  r = Http(address(), "PUT", put_target,
           {{"Cookie", session.cookie()}, {"Authorization", "Bearer " + admin_}},
           json{{"type", "int"}, {"value", 6}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(F(r.json_body, "updated_by").dump().starts_with("\"token:")) << r.body;
}

TEST_F(UserSessionTest, WrongPasswordAndUnknownEmailGetTheSameAnswer) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  const HttpReply wrong = Login(address(), "ana@acme.example", kAnaPassword + "x");
  const HttpReply unknown = Login(address(), "nobody@acme.example", kAnaPassword);
  for (const HttpReply* r : {&wrong, &unknown}) {
    EXPECT_EQ(r->status, 401) << r->body;
    EXPECT_EQ(r->ErrorCode(), "unauthenticated") << r->body;
    EXPECT_EQ(r->ErrorMessage(), "wrong email or password") << r->body;
    EXPECT_TRUE(SessionCookieValue(*r).empty());
  }
  EXPECT_EQ(wrong.json_body, unknown.json_body);
  // Malformed sign-ins are refused without a session.
  for (const std::string& body :
       {std::string("{\"email\": \"ana@acme.example\"}"), std::string("not json"),
        std::string("{\"email\": 5, \"password\": \"" + kAnaPassword + "\"}")}) {
    const HttpReply r = Http(address(), "POST", "/api/v1/auth/login", {}, body);
    EXPECT_GE(r.status, 400) << body;
    EXPECT_LT(r.status, 500) << body;
    EXPECT_TRUE(SessionCookieValue(r).empty());
  }
}

TEST_F(UserSessionTest, SecurityHeadersOnApiAndUi) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  const HttpReply login = Login(address(), "ana@acme.example", kAnaPassword);
  const HttpReply failed = Login(address(), "ana@acme.example", "not the password");
  const HttpReply api =
      Http(address(), "GET", "/api/v1/orgs", {{"Authorization", "Bearer " + admin_}});
  const HttpReply ui = Http(address(), "GET", "/");
  for (const HttpReply* r : {&login, &failed, &api, &ui}) {
    EXPECT_EQ(r->Header("x-frame-options"), "DENY");
    EXPECT_EQ(r->Header("referrer-policy"), "no-referrer");
    EXPECT_EQ(r->Header("x-content-type-options"), "nosniff");
  }
  for (const HttpReply* r : {&login, &failed, &api, &ui}) {
    EXPECT_EQ(r->Header("cache-control"), "no-store");
  }
  // GET / is the UI: HTML, with a Content-Security-Policy that allows no inline script and
  // nothing from another origin.
  ASSERT_EQ(ui.status, 200) << ui.body.substr(0, 300);
  EXPECT_TRUE(Lower(ui.Header("content-type")).starts_with("text/html"))
      << ui.Header("content-type");
  EXPECT_NE(Lower(ui.body).find("<html"), std::string::npos) << ui.body.substr(0, 300);
  const std::string csp = ui.Header("content-security-policy");
  ASSERT_FALSE(csp.empty()) << "GET / has no Content-Security-Policy";
  for (const char* directive :
       {"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
        "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"}) {
    EXPECT_NE(csp.find(directive), std::string::npos) << directive << " missing from " << csp;
  }
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
}

// ---- rate limits ----

TEST_F(UserSessionTest, SessionRateLimitPerAccount) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  CreateUser("bo@acme.example", kAnaPassword, "member", acme_);
  for (int i = 0; i < 5; ++i) {
    const HttpReply r = Login(address(), "ana@acme.example", "wrong password " + std::to_string(i));
    EXPECT_EQ(r.status, 401) << i << ": " << r.body;
  }
  // Above 5 failures: 429 with Retry-After, without checking the password (the right one is
  // refused too, and sets no cookie).
  const HttpReply limited = Login(address(), "ana@acme.example", kAnaPassword);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(limited.ErrorCode(), "rate_limited") << limited.body;
  const std::string retry_after = limited.Header("retry-after");
  ASSERT_FALSE(retry_after.empty());
  ASSERT_TRUE(std::all_of(retry_after.begin(), retry_after.end(), [](char c) {
    return c >= '0' && c <= '9';
  })) << retry_after;
  EXPECT_GT(std::stol(retry_after), 0);
  EXPECT_LE(std::stol(retry_after), 600);
  EXPECT_TRUE(SessionCookieValue(limited).empty());
  // The limit is per account: another account on the same address still signs in.
  (void)SignIn(address(), "bo@acme.example", kAnaPassword);
  // The same email in another letter case is the same account.
  EXPECT_EQ(Login(address(), "ANA@acme.example", kAnaPassword).status, 429);
}

TEST_F(UserSessionTest, SessionRateLimitPerAddress) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  // 20 failures from this address, spread over accounts so that none reaches its own limit.
  for (int i = 0; i < 20; ++i) {
    const std::string email = "nobody" + std::to_string(i % 5) + "@acme.example";
    const HttpReply r = Login(address(), email, "wrong password " + std::to_string(i));
    EXPECT_EQ(r.status, 401) << i << ": " << r.body;
  }
  const HttpReply limited = Login(address(), "ana@acme.example", kAnaPassword);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(limited.ErrorCode(), "rate_limited") << limited.body;
  EXPECT_FALSE(limited.Header("retry-after").empty());
  EXPECT_TRUE(SessionCookieValue(limited).empty());
  // Bearer tokens are not signed in: they keep working from the same address.
  EXPECT_EQ(api_.Call("GET", "/api/v1/orgs", admin_).status, 200);
}

// ---- the end of a session ----

TEST_F(UserSessionTest, DisabledUserCannotSignInAndItsSessionDies) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  const WebSession session = SignIn(address(), "ana@acme.example", kAnaPassword);
  ASSERT_EQ(AsSession(address(), session, "GET", "/api/v1/auth/session").status, 200);
  const ProcessResult disabled = UserCli({"disable", "ana@acme.example", "--format", "json"});
  ASSERT_EQ(disabled.exit_code, 0) << disabled.err;
  EXPECT_EQ(F(json::parse(disabled.out, nullptr, false), "disabled"), true) << disabled.out;
  EXPECT_EQ(AsSession(address(), session, "GET", "/api/v1/auth/session").status, 401);
  EXPECT_EQ(AsSession(address(), session, "GET", "/api/v1/orgs/" + acme_ + "/configs").status, 401);
  const HttpReply login = Login(address(), "ana@acme.example", kAnaPassword);
  EXPECT_EQ(login.status, 401) << login.body;
  EXPECT_TRUE(SessionCookieValue(login).empty());
}

TEST_F(UserSessionTest, PasswdEndsExistingSessions) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  const WebSession first = SignIn(address(), "ana@acme.example", kAnaPassword);
  const WebSession second = SignIn(address(), "ana@acme.example", kAnaPassword);
  EXPECT_NE(first.token, second.token);
  const ProcessResult r = UserCli({"passwd", "ana@acme.example"}, kAnaNewPassword + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(AsSession(address(), first, "GET", "/api/v1/auth/session").status, 401);
  EXPECT_EQ(AsSession(address(), second, "GET", "/api/v1/auth/session").status, 401);
  const WebSession fresh = SignIn(address(), "ana@acme.example", kAnaNewPassword);
  EXPECT_EQ(AsSession(address(), fresh, "GET", "/api/v1/auth/session").status, 200);
}

TEST_F(UserSessionTest, LogoutClearsTheCookieAndEndsTheSession) {
  CreateUser("ana@acme.example", kAnaPassword, "member", acme_);
  const WebSession session = SignIn(address(), "ana@acme.example", kAnaPassword);
  const WebSession other = SignIn(address(), "ana@acme.example", kAnaPassword);
  // Logout is a write: without the CSRF header it is refused and the session lives on.
  HttpReply r = AsSession(address(), session, "POST", "/api/v1/auth/logout", std::nullopt, false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.ErrorCode(), "csrf_failed") << r.body;
  EXPECT_EQ(AsSession(address(), session, "GET", "/api/v1/auth/session").status, 200);

  r = AsSession(address(), session, "POST", "/api/v1/auth/logout");
  EXPECT_EQ(r.status, 204) << r.body;
  std::string cleared;
  for (const auto& c : r.SetCookies()) {
    if (c.starts_with(std::string(kCookieName) + "=")) cleared = c;
  }
  ASSERT_FALSE(cleared.empty()) << "logout does not clear the cookie";
  EXPECT_TRUE(Has(CookieAttributes(cleared), "max-age=0")) << cleared;
  EXPECT_TRUE(SessionCookieValue(r).empty() || !SessionCookieValue(r).starts_with("bfs_"))
      << cleared;
  // The old cookie no longer works, for any route.
  EXPECT_EQ(AsSession(address(), session, "GET", "/api/v1/auth/session").status, 401);
  EXPECT_EQ(AsSession(address(), session, "GET", "/api/v1/orgs/" + acme_ + "/configs").status, 401);
  EXPECT_EQ(AsSession(address(), session, "PUT", "/api/v1/orgs/" + acme_ + "/configs/k",
                      json{{"type", "int"}, {"value", 1}})
                .status,
            401);
  // Only that session ended.
  EXPECT_EQ(AsSession(address(), other, "GET", "/api/v1/auth/session").status, 200);
}

// Behind a trusted proxy, the per-address limit counts the client the proxy forwarded for,
// not the proxy: one noisy client does not lock every other one out.
TEST(SessionProxyTest, TrustedProxyLimitsPerForwardedClient) {
  testing::ServerProcess server({.extra_args = {"--trusted-proxy", "127.0.0.1"}});
  ASSERT_FALSE(server.address().empty()) << server.Stderr();
  Api api(server.address());
  ASSERT_EQ(api.Call("POST", "/api/v1/users", server.admin_token(),
                     json{{"email", "ops@example.com"},
                          {"password", kOpsPassword},
                          {"role", "platform-admin"}})
                .status,
            201);
  const auto login_from = [&](const std::string& forwarded, const std::string& email,
                              const std::string& password) {
    return Http(server.address(), "POST", "/api/v1/auth/login", {{"X-Forwarded-For", forwarded}},
                json{{"email", email}, {"password", password}}.dump());
  };
  // A spoofed hop before the proxy's own entry is not believed: the right-most one counts.
  for (int i = 0; i < 20; ++i) {
    std::string spoofed = "198.51.100.";
    spoofed += std::to_string(i);
    spoofed += ", 203.0.113.7";
    std::string email = "nobody";
    email += std::to_string(i % 5);
    email += "@example.com";
    EXPECT_EQ(login_from(spoofed, email, "wrong password!").status, 401) << i;
  }
  EXPECT_EQ(login_from("203.0.113.7", "ops@example.com", kOpsPassword).status, 429);
  EXPECT_EQ(login_from("203.0.113.8", "ops@example.com", kOpsPassword).status, 200);
  // Without the header, the proxy itself is the client, and it is not limited.
  EXPECT_EQ(Login(server.address(), "ops@example.com", kOpsPassword).status, 200);
  // The records say whom the proxy forwarded for.
  const Reply records = api.Call("GET", "/api/v1/audit?action=auth.login&outcome=denied&limit=1",
                                 server.admin_token());
  ASSERT_EQ(records.status, 200) << records.body;
  EXPECT_NE(records.json_body["records"][0]["detail"].get<std::string>().find(
                "forwarded for 203.0.113.7"),
            std::string::npos)
      << records.body;
}

TEST(SessionExpiryTest, IdleSessionEndsAfterSessionIdle) {
  testing::ServerProcess server(
      {.extra_args = {"--session-idle", "2s", "--session-lifetime", "1h"}});
  ASSERT_FALSE(server.address().empty()) << server.Stderr();
  Api api(server.address());
  const Reply created = api.Call(
      "POST", "/api/v1/users", server.admin_token(),
      json{{"email", "ops@example.com"}, {"password", kOpsPassword}, {"role", "platform-admin"}});
  ASSERT_EQ(created.status, 201) << created.body;

  const HttpReply login = Login(server.address(), "ops@example.com", kOpsPassword);
  ASSERT_EQ(login.status, 200) << login.body;
  EXPECT_EQ(F(login.json_body, "idle_timeout_seconds"), 2) << login.body;
  // expires_at is within --session-lifetime.
  const auto expires = ParseRfc3339(login.json_body.value("expires_at", ""));
  ASSERT_TRUE(expires.has_value()) << login.body;
  EXPECT_LE(*expires, NowMicros() + std::int64_t{3600} * 1'000'000 + 60'000'000) << login.body;
  const WebSession idle{SessionCookieValue(login), login.json_body.value("csrf_token", ""), {}};
  const WebSession busy = SignIn(server.address(), "ops@example.com", kOpsPassword);

  // `busy` is used every 1.2 s and outlives 2 s; `idle`, unused for 3 s, is gone.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(AsSession(server.address(), busy, "GET", "/api/v1/auth/session").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(AsSession(server.address(), busy, "GET", "/api/v1/auth/session").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_EQ(AsSession(server.address(), idle, "GET", "/api/v1/auth/session").status, 401);
  EXPECT_EQ(AsSession(server.address(), idle, "GET", "/api/v1/orgs").status, 401);
  EXPECT_EQ(AsSession(server.address(), busy, "GET", "/api/v1/orgs").status, 200);
  EXPECT_EQ(server.Stop(), 0);
}

// ---- isolation ----

TEST_F(UserSessionTest, OrgUsersStayInTheirOrgAndMembersCannotManageUsers) {
  SetConfig(api_, admin_, "/api/v1/orgs/" + beta_, "beta_only", "string", "b");
  CreateUser("ana@acme.example", kAnaPassword, "admin", acme_);
  CreateUser("mo@acme.example", kAnaPassword, "member", acme_);
  CreateUser("bea@beta.example", kAnaPassword, "admin", beta_);
  const WebSession admin = SignIn(address(), "ana@acme.example", kAnaPassword);
  const WebSession member = SignIn(address(), "mo@acme.example", kAnaPassword);

  // Another organization's configs: 403, for reads and writes.
  HttpReply r = AsSession(address(), admin, "GET", "/api/v1/orgs/" + beta_ + "/configs");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.body.find("beta_only"), std::string::npos);
  r = AsSession(address(), admin, "PUT", "/api/v1/orgs/" + beta_ + "/configs/x",
                json{{"type", "int"}, {"value", 1}});
  EXPECT_EQ(r.status, 403) << r.body;
  r = AsSession(address(), admin, "GET", "/api/v1/orgs/" + acme_ + "/configs");
  EXPECT_EQ(r.status, 200) << r.body;

  // An org admin creates users of its organization only, and never a platform admin.
  r = AsSession(
      address(), admin, "POST", "/api/v1/users",
      json{{"email", "root2@example.com"}, {"password", kOpsPassword}, {"role", "platform-admin"}});
  EXPECT_EQ(r.status, 403) << r.body;
  r = AsSession(address(), admin, "POST", "/api/v1/users",
                json{{"email", "x@beta.example"},
                     {"password", kOpsPassword},
                     {"role", "member"},
                     {"org_id", beta_}});
  EXPECT_EQ(r.status, 403) << r.body;
  r = AsSession(address(), admin, "POST", "/api/v1/users",
                json{{"email", "new@acme.example"},
                     {"password", kOpsPassword},
                     {"role", "member"},
                     {"org_id", acme_}});
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(F(r.json_body, "created_by"), "user:ana@acme.example/" + S(admin.user, "id")) << r.body;
  // It lists its organization's users only, and cannot disable another organization's.
  r = AsSession(address(), admin, "GET", "/api/v1/users");
  ASSERT_EQ(r.status, 200) << r.body;
  for (const auto& user : r.json_body) EXPECT_EQ(F(user, "org_id"), acme_) << user.dump();
  EXPECT_EQ(r.body.find("bea@beta.example"), std::string::npos);
  // Nor take over a user outside its organization: another org's admin, a platform admin.
  CreateUser("ops@example.com", kOpsPassword, "platform-admin", std::nullopt);
  for (const std::string user : {"bea%40beta.example", "ops%40example.com"}) {
    r = AsSession(address(), admin, "POST", "/api/v1/users/" + user + "/disable");
    EXPECT_TRUE(r.status == 403 || r.status == 404) << user << ": " << r.status << " " << r.body;
    r = AsSession(address(), admin, "PUT", "/api/v1/users/" + user + "/password",
                  json{{"password", "taken-over-password"}});
    EXPECT_TRUE(r.status == 403 || r.status == 404) << user << ": " << r.status << " " << r.body;
  }
  EXPECT_EQ(Login(address(), "bea@beta.example", kAnaPassword).status, 200);
  EXPECT_EQ(Login(address(), "ops@example.com", kOpsPassword).status, 200);

  // A member manages no users.
  r = AsSession(address(), member, "POST", "/api/v1/users",
                json{{"email", "m2@acme.example"},
                     {"password", kOpsPassword},
                     {"role", "reader"},
                     {"org_id", acme_}});
  EXPECT_EQ(r.status, 403) << r.body;
  // The CLI with an org admin's token says the same.
  const MintedToken acme_admin_token = MintToken(api_, admin_, "admin", acme_);
  const ProcessResult cli =
      UserCli({"create", "--email", "root3@example.com", "--role", "platform-admin"},
              kOpsPassword + "\n", acme_admin_token.token);
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_TRUE(cli.err.starts_with("bifrost: permission denied: ")) << cli.err;
}

// ---- audit ----

TEST_F(UserSessionTest, AuditRecordsSignInsSignOutsAndTheUserAsActor) {
  const json ana = CreateUser("ana@acme.example", kAnaPassword, "admin", acme_);
  const std::string ana_id = ana.value("id", "");
  const std::string ana_actor = "user:ana@acme.example/" + ana_id;
  const std::string typed = "Typed-Canary-Pw-4711";  // a wrong password: never recorded
  EXPECT_EQ(Login(address(), "ana@acme.example", typed).status, 401);
  EXPECT_EQ(Login(address(), "ghost@acme.example", typed).status, 401);
  const WebSession session = SignIn(address(), "ana@acme.example", kAnaPassword);
  HttpReply r = AsSession(address(), session, "POST", "/api/v1/users",
                          json{{"email", "new@acme.example"},
                               {"password", kOpsPassword},
                               {"role", "reader"},
                               {"org_id", acme_}});
  ASSERT_EQ(r.status, 201) << r.body;
  r = AsSession(address(), session, "PUT", "/api/v1/orgs/" + acme_ + "/configs/region",
                json{{"type", "string"}, {"value", "eu"}});
  ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
  EXPECT_EQ(F(r.json_body, "updated_by"), ana_actor);
  ASSERT_EQ(AsSession(address(), session, "POST", "/api/v1/auth/logout").status, 204);

  // The records name the user as docs/web-ui.md says, "user:<email>/<id>": its id in
  // actor_id and "user:" in actor_name, so that a user is never mistaken for a token that
  // happens to be named like its email.
  const auto names_ana = [&](const json& record) {
    const json name = F(record, "actor_name");
    return F(record, "actor_id") == ana_id &&
           (name == ana_actor || name == "user:ana@acme.example");
  };
  const auto logins = Audit("action=auth.login");
  int successes = 0;
  int denied = 0;
  for (const auto& record : logins) {
    const std::string text = record.dump();
    EXPECT_EQ(text.find("ghost@acme.example"), std::string::npos)
        << "an unknown email is in the audit log: " << text;
    EXPECT_EQ(text.find(typed), std::string::npos) << text;
    EXPECT_EQ(text.find(kAnaPassword), std::string::npos) << text;
    if (F(record, "outcome") == "success") {
      ++successes;
      EXPECT_TRUE(names_ana(record)) << text;
    } else if (F(record, "outcome") == "denied") {
      ++denied;
    }
  }
  EXPECT_EQ(successes, 1) << json(logins).dump();
  EXPECT_EQ(denied, 2) << json(logins).dump();
  // The failure of an existing user names it.
  EXPECT_TRUE(std::any_of(logins.begin(), logins.end(), [&](const json& record) {
    return F(record, "outcome") == "denied" && names_ana(record);
  })) << json(logins).dump();

  const auto logouts = Audit("action=auth.logout");
  ASSERT_EQ(logouts.size(), 1u);
  EXPECT_EQ(F(logouts[0], "outcome"), "success");
  EXPECT_TRUE(names_ana(logouts[0])) << logouts[0].dump();

  const auto creates = Audit("action=user.create");
  ASSERT_EQ(creates.size(), 2u) << json(creates).dump();  // by the admin token, by ana
  EXPECT_TRUE(std::any_of(creates.begin(), creates.end(), names_ana)) << json(creates).dump();
  for (const auto& record : creates) {
    EXPECT_EQ(record.dump().find(kOpsPassword), std::string::npos);
    EXPECT_EQ(record.dump().find(kAnaPassword), std::string::npos);
  }
  // The config write, by the user.
  const auto writes = Audit("key=region");
  EXPECT_TRUE(std::any_of(writes.begin(), writes.end(), names_ana)) << json(writes).dump();
  // No record carries the session token or the CSRF token.
  const std::string all = json(Audit("")).dump();
  EXPECT_EQ(all.find(session.token), std::string::npos);
  EXPECT_EQ(all.find(session.csrf), std::string::npos);
}

// ---- leaks ----

TEST_F(UserSessionTest, PasswordsAndSessionTokensStayOutOfLogsAndDatabaseFiles) {
  ProcessResult r =
      UserCli({"create", "--email", "ana@acme.example", "--org", "acme", "--role", "admin"},
              kAnaPassword + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const WebSession first = SignIn(address(), "ana@acme.example", kAnaPassword);
  ASSERT_TRUE(AsSession(address(), first, "PUT", "/api/v1/orgs/" + acme_ + "/configs/k",
                        json{{"type", "string"}, {"value", "v"}})
                  .status < 300);
  EXPECT_EQ(Login(address(), "ana@acme.example", kAnaNewPassword).status, 401);  // wrong
  r = UserCli({"passwd", "ana@acme.example"}, kAnaNewPassword + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const WebSession second = SignIn(address(), "ana@acme.example", kAnaNewPassword);
  // A session left open (its row is in the database while the server runs) and a closed one.
  ASSERT_EQ(AsSession(address(), second, "GET", "/api/v1/auth/session").status, 200);
  const WebSession third = SignIn(address(), "ana@acme.example", kAnaNewPassword);
  ASSERT_EQ(AsSession(address(), third, "POST", "/api/v1/auth/logout").status, 204);

  // Scan what the database stored (SQLite: the file and its WAL; PostgreSQL: the database's
  // contents and files and the cluster's WAL) while the server still runs, then after a
  // clean stop.
  const auto scan = [&](const std::string& files, const std::string& when) {
    ASSERT_FALSE(files.empty());
    for (const std::string& secret : {kAnaPassword, kAnaNewPassword}) {
      EXPECT_EQ(files.find(secret), std::string::npos) << "a password is in the files " << when;
    }
    for (const WebSession* s : {&first, &second, &third}) {
      EXPECT_EQ(files.find(s->token), std::string::npos)
          << "a session token is in the files " << when;
      // Only its SHA-256 is stored, never the random part alone.
      EXPECT_EQ(files.find(s->token.substr(4)), std::string::npos) << when;
    }
  };
  scan(testing::StoredBytes(server_.storage()), "while serving");
  EXPECT_EQ(server_.Stop(), 0);
  scan(testing::StoredBytes(server_.storage()), "after the stop");
  const std::string logs = server_.Stdout() + server_.Stderr();
  ASSERT_NE(logs.find("/api/v1/auth/login"), std::string::npos)
      << "the access log does not record sign-ins: " << logs.substr(0, 2000);
  for (const std::string& secret : {kAnaPassword, kAnaNewPassword}) {
    EXPECT_EQ(logs.find(secret), std::string::npos) << "a password reached the server log";
  }
  for (const WebSession* s : {&first, &second, &third}) {
    EXPECT_EQ(logs.find(s->token), std::string::npos) << "a session token reached the log";
    EXPECT_EQ(logs.find(s->csrf), std::string::npos) << "a CSRF token reached the log";
  }
}

// ---- serve --dev ----

// serve --dev always runs on SQLite (a data directory, given here), in the PostgreSQL pass
// too; its refusal of --database is checked by
// ServerLifecycle.DevModeGeneratesAKeyOnceAndPrintsAnAdminToken.
TEST(SessionDevModeTest, DevServerPrintsTheAdminUserOnceAndItSignsIn) {
  testing::TempDir dir;
  const testing::ServerProcess::Options dev = {.secret_key = "",
                                               .extra_args = {"--dev"},
                                               .extra_env = {"BIFROST_SECRET_KEY="},
                                               .init = false,
                                               .data_dir = dir.path() + "/dev"};
  std::string password;
  {
    testing::ServerProcess first(dev);
    ASSERT_FALSE(first.address().empty()) << first.Stderr();
    const std::string out = first.Stdout();
    const std::string prefix = "admin user: admin@localhost password: ";
    const auto pos = out.find(prefix);
    ASSERT_NE(pos, std::string::npos) << out;
    const auto end = out.find('\n', pos);
    ASSERT_NE(end, std::string::npos);
    password = out.substr(pos + prefix.size(), end - pos - prefix.size());
    EXPECT_GE(password.size(), 12u) << out;
    EXPECT_EQ(password.find(' '), std::string::npos) << out;
    const WebSession session = SignIn(first.address(), "admin@localhost", password);
    EXPECT_EQ(session.user.value("role", ""), "platform-admin");
    EXPECT_TRUE(F(session.user, "org_id").is_null());
    EXPECT_EQ(first.Stderr().find(password), std::string::npos);
    EXPECT_EQ(AllFiles(first.data_dir()).find(password), std::string::npos);
    EXPECT_EQ(first.Stop(), 0);
  }
  // The second start keeps the user and prints no password.
  testing::ServerProcess second(dev);
  ASSERT_FALSE(second.address().empty()) << second.Stderr();
  EXPECT_EQ(second.Stdout().find("admin user:"), std::string::npos) << second.Stdout();
  (void)SignIn(second.address(), "admin@localhost", password);
  EXPECT_EQ(second.Stop(), 0);
}

}  // namespace
}  // namespace bifrost::e2e
