// RunInit and RunServe in-process: start-up refusals (one line on stderr, exit 1), the
// printed token, and a real serve that answers over HTTP and stops on SIGTERM.
#include "server/server_app.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "server/http_test_client.h"
#include "tests/support/subprocess.h"

namespace bifrost::server {
namespace {

using bifrost::testing::ReadFileOrEmpty;
using bifrost::testing::TempDir;
using testing::Str;
using testing::TestConnection;

constexpr const char* kKey = "correct horse battery staple, 32+ characters long";
constexpr const char* kOtherKey = "an entirely different key of 32+ characters";

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

template <typename Fn>
Output Capture(Fn fn) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Output output;
  output.exit_code = fn();
  output.out = ::testing::internal::GetCapturedStdout();
  output.err = ::testing::internal::GetCapturedStderr();
  return output;
}

void SetKey(const char* key) {
  ::unsetenv("BIFROST_SECRET_KEY_FILE");
  ::setenv("BIFROST_SECRET_KEY", key, 1);
}

void ClearKey() {
  ::unsetenv("BIFROST_SECRET_KEY");
  ::unsetenv("BIFROST_SECRET_KEY_FILE");
}

Output Init(const std::string& dir, bool json = false) {
  return Capture([&] { return RunInit({.data_dir = dir, .json = json}); });
}

// A failure is exactly one line "bifrost: <reason>".
void ExpectOneLineFailure(const Output& output, const std::string& reason) {
  EXPECT_EQ(output.exit_code, 1);
  EXPECT_EQ(output.err, "bifrost: " + reason + "\n");
  EXPECT_EQ(output.out, "");
}

class ServerAppTest : public ::testing::Test {
 protected:
  void TearDown() override { ClearKey(); }
  std::string Db() const { return dir_.path() + "/data/bifrost.db"; }
  std::string Data() const { return dir_.path() + "/data"; }
  TempDir dir_;
};

TEST_F(ServerAppTest, InitPrintsTheTokenOnceAndRefusesASecondTime) {
  SetKey(kKey);
  const Output first = Init(Data());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(std::regex_match(
      first.out, std::regex("Platform admin token \\(shown once, store it safely\\):\n"
                            "bft_[A-Za-z0-9_-]{43}\n")))
      << first.out;
  EXPECT_EQ(first.err, "");
  EXPECT_EQ(std::getenv("BIFROST_SECRET_KEY"), nullptr);  // taken out of the environment
  const std::string db_before = ReadFileOrEmpty(Db());
  ASSERT_FALSE(db_before.empty());
  struct stat st {};
  ASSERT_EQ(::stat(Db().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  SetKey(kKey);
  const Output second = Init(Data());
  ExpectOneLineFailure(second, Data() +
                                   " already holds a Bifrost database; refusing to initialize "
                                   "it again");
  EXPECT_EQ(ReadFileOrEmpty(Db()), db_before);
}

TEST_F(ServerAppTest, InitJsonOutput) {
  SetKey(kKey);
  const Output output = Init(Data(), /*json=*/true);
  ASSERT_EQ(output.exit_code, 0) << output.err;
  const auto json = nlohmann::json::parse(output.out);
  EXPECT_EQ(json.size(), 3u);
  EXPECT_TRUE(json["token"].get<std::string>().starts_with("bft_"));
  EXPECT_TRUE(std::regex_match(json["token_id"].get<std::string>(),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                          "[0-9a-f]{12}")));
  EXPECT_EQ(json["data_dir"], Data());
}

TEST_F(ServerAppTest, InitWithoutAUsableKeyCreatesNothing) {
  ClearKey();
  ExpectOneLineFailure(Init(Data()),
                       "BIFROST_SECRET_KEY is not set (or set "
                       "BIFROST_SECRET_KEY_FILE to a file holding it)");
  SetKey("too short");
  const Output short_key = Init(Data());
  EXPECT_EQ(short_key.exit_code, 1);
  EXPECT_NE(short_key.err.find("BIFROST_SECRET_KEY is too short"), std::string::npos);
  EXPECT_EQ(std::count(short_key.err.begin(), short_key.err.end(), '\n'), 1);
  EXPECT_EQ(short_key.err.find("too short\n"), std::string::npos);  // the key is not echoed
  ::setenv("BIFROST_SECRET_KEY", kKey, 1);
  ::setenv("BIFROST_SECRET_KEY_FILE", "/x", 1);
  EXPECT_EQ(Init(Data()).exit_code, 1);
  ::setenv("BIFROST_SECRET_KEY_FILE", (dir_.path() + "/missing").c_str(), 1);
  const Output missing_file = Init(Data());
  EXPECT_EQ(missing_file.exit_code, 1);
  EXPECT_NE(missing_file.err.find("cannot open BIFROST_SECRET_KEY_FILE"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(Data()));
}

TEST_F(ServerAppTest, ServeRefusesBadStarts) {
  ClearKey();
  // No database yet.
  ExpectOneLineFailure(
      Capture([&] { return RunServe({.data_dir = Data()}); }),
      "no database in " + Data() + "; run `bifrost init --data " + Data() + "` first");
  SetKey(kKey);
  ASSERT_EQ(Init(Data()).exit_code, 0);

  ClearKey();
  ExpectOneLineFailure(Capture([&] { return RunServe({.data_dir = Data()}); }),
                       "BIFROST_SECRET_KEY is not set (or set BIFROST_SECRET_KEY_FILE to a "
                       "file holding it)");

  SetKey(kOtherKey);
  const Output wrong = Capture([&] { return RunServe({.data_dir = Data()}); });
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_TRUE(wrong.err.starts_with("bifrost: BIFROST_SECRET_KEY does not match this database"))
      << wrong.err;
  EXPECT_EQ(std::getenv("BIFROST_SECRET_KEY"), nullptr);

  SetKey(kKey);
  const Output public_plain =
      Capture([&] { return RunServe({.data_dir = Data(), .listen = "0.0.0.0:0"}); });
  EXPECT_EQ(public_plain.exit_code, 1);
  EXPECT_TRUE(public_plain.err.starts_with(
      "bifrost: refusing to serve plain HTTP on the non-loopback address 0.0.0.0:0"))
      << public_plain.err;

  SetKey(kKey);
  ExpectOneLineFailure(
      Capture([&] { return RunServe({.data_dir = Data(), .tls_cert = "/some/cert.pem"}); }),
      "TLS needs both --tls-cert and --tls-key");

  SetKey(kKey);
  ExpectOneLineFailure(Capture([&] { return RunServe({.data_dir = ""}); }),
                       "serve needs a data directory (give --data DIR or set BIFROST_DATA) or a "
                       "PostgreSQL database (give --database URL or set BIFROST_DATABASE_URL)");

  SetKey(kKey);
  ExpectOneLineFailure(
      Capture([&] {
        return RunServe({.data_dir = Data(), .database_url = "postgresql://db.invalid/bifrost"});
      }),
      "give either --data DIR (BIFROST_DATA) or --database URL (BIFROST_DATABASE_URL), not both");

  SetKey(kKey);
  const Output not_postgres = Capture(
      [&] { return RunServe({.database_url = "mysql://root:CanaryPw-91@db.invalid/bifrost"}); });
  EXPECT_EQ(not_postgres.exit_code, 1);
  EXPECT_TRUE(not_postgres.err.starts_with("bifrost: --database must be a PostgreSQL URL"))
      << not_postgres.err;
  EXPECT_EQ(not_postgres.err.find("CanaryPw-91"), std::string::npos) << not_postgres.err;

  SetKey(kKey);
  const Output dev_pg = Capture(
      [&] { return RunServe({.database_url = "postgresql://db.invalid/bifrost", .dev = true}); });
  EXPECT_EQ(dev_pg.exit_code, 1);
  EXPECT_TRUE(dev_pg.err.starts_with("bifrost: --dev runs on the embedded store")) << dev_pg.err;

  SetKey(kKey);
  ExpectOneLineFailure(
      Capture([&] {
        return RunServe({.database_url = "postgresql://db.invalid/bifrost", .database_pool = 0});
      }),
      "--database-pool must be between 1 and 1000, not 0");

  SetKey(kKey);
  ExpectOneLineFailure(
      Capture([&] { return RunServe({.data_dir = Data(), .max_connections = 0}); }),
      "--max-connections must be positive");

  SetKey(kKey);
  const Output taken = Capture([&] { return RunServe({.data_dir = Data(), .listen = "nope"}); });
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_TRUE(taken.err.starts_with("bifrost: listen address 'nope'")) << taken.err;
}

// Runs RunServe on a thread with stdout sent through a pipe, until it prints its address.
class BackgroundServe {
 public:
  explicit BackgroundServe(ServeOptions options) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    std::fflush(stdout);
    saved_stdout_ = ::dup(1);
    ::dup2(fds[1], 1);
    ::close(fds[1]);
    read_fd_ = fds[0];
    thread_ = std::thread([this, options] {
      exit_code_ = RunServe(options);
      std::fputs("\n<returned>\n", stdout);
      std::fflush(stdout);
    });
    for (std::string line; ReadLine(line);) {
      lines_.push_back(line);
      if (line.starts_with("listening on ") || line == "<returned>") break;
    }
  }

  ~BackgroundServe() { Stop(); }

  // SIGTERM, then the exit code.
  int Stop() {
    if (thread_.joinable()) {
      if (listening()) ::kill(::getpid(), SIGTERM);
      thread_.join();
      std::fflush(stdout);
      ::dup2(saved_stdout_, 1);
      ::close(saved_stdout_);
      for (std::string line; ReadLine(line);) lines_.push_back(line);
      ::close(read_fd_);
    }
    return exit_code_;
  }

  bool listening() const { return !lines_.empty() && lines_.back().starts_with("listening on "); }
  std::uint16_t port() const {
    const std::string& line = lines_.back();
    return static_cast<std::uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  bool ReadLine(std::string& line) {
    line.clear();
    char c;
    while (true) {
      const ssize_t n = ::read(read_fd_, &c, 1);
      if (n <= 0) return !line.empty();
      if (c == '\n') return true;
      line.push_back(c);
    }
  }

  int saved_stdout_ = -1;
  int read_fd_ = -1;
  std::thread thread_;
  int exit_code_ = -1;
  std::vector<std::string> lines_;
};

TEST_F(ServerAppTest, DevModeInitializesOnceServesAndStopsOnSigterm) {
  ClearKey();
  const std::string data = Data();
  ::testing::internal::CaptureStderr();
  std::string admin_token;
  std::string dev_password;
  {
    BackgroundServe serve({.data_dir = data, .listen = "127.0.0.1:0", .dev = true, .threads = 2});
    ASSERT_TRUE(serve.listening()) << ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(serve.lines().size(), 3u);
    EXPECT_TRUE(serve.lines()[0].starts_with("admin token: bft_")) << serve.lines()[0];
    admin_token = serve.lines()[0].substr(std::string("admin token: ").size());
    // The first user, for the web UI: its password once, 43 random characters.
    EXPECT_TRUE(std::regex_match(
        serve.lines()[1], std::regex("admin user: admin@localhost password: [A-Za-z0-9_-]{43}")))
        << "(line withheld: it holds a password)";
    dev_password = serve.lines()[1].substr(serve.lines()[1].rfind(' ') + 1);
    EXPECT_EQ(serve.lines()[2], "listening on http://127.0.0.1:" + std::to_string(serve.port()));

    TestConnection connection(serve.port());
    EXPECT_EQ(connection.Request("GET", "/healthz").result_int(), 200);
    EXPECT_EQ(connection.Request("GET", "/readyz").result_int(), 200);
    const auto missing = connection.Request("GET", "/no/such/thing");
    EXPECT_EQ(missing.result_int(), 404);
    EXPECT_EQ(nlohmann::json::parse(missing.body())["error"]["code"], "not_found");
    const auto wrong_method = connection.Request("DELETE", "/healthz");
    EXPECT_EQ(wrong_method.result_int(), 405);
    EXPECT_EQ(Str(wrong_method["Allow"]), "GET");
    const auto whoami = connection.Request("GET", "/api/v1/whoami", "",
                                           {{"Authorization", "Bearer " + admin_token}});
    EXPECT_EQ(whoami.result_int(), 200) << whoami.body();
    EXPECT_EQ(serve.Stop(), 0);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("bifrost: WARNING: development mode (--dev). NOT FOR PRODUCTION."),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(data + "/secret-key"), std::string::npos);
  EXPECT_EQ(err.find(admin_token), std::string::npos);   // the token is never logged
  EXPECT_EQ(err.find(dev_password), std::string::npos);  // nor the password
  EXPECT_NE(err.find("\"msg\":\"shutting down\""), std::string::npos) << err;
  EXPECT_NE(err.find("\"route\":\"/api/v1/whoami\""), std::string::npos) << err;

  // The key was kept, private, and is reused: the second start opens the same database and
  // makes no second admin token.
  struct stat st {};
  ASSERT_EQ(::stat((data + "/secret-key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string key_text = ReadFileOrEmpty(data + "/secret-key");
  EXPECT_TRUE(std::regex_match(key_text, std::regex("[A-Za-z0-9_-]{43}\n"))) << key_text;

  ::testing::internal::CaptureStderr();
  {
    BackgroundServe again({.data_dir = data, .listen = "127.0.0.1:0", .dev = true});
    ASSERT_TRUE(again.listening()) << ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(again.lines().size(), 1u);
    TestConnection connection(again.port());
    EXPECT_EQ(
        connection
            .Request("GET", "/api/v1/whoami", "", {{"Authorization", "Bearer " + admin_token}})
            .result_int(),
        200);
    EXPECT_EQ(again.Stop(), 0);
  }
  ::testing::internal::GetCapturedStderr();
}

TEST_F(ServerAppTest, ServeCapsConnectionsAndRaisesTheOpenFileLimitToFitTheCap) {
  ClearKey();
  ::testing::internal::CaptureStderr();
  {
    BackgroundServe serve(
        {.data_dir = Data(), .listen = "127.0.0.1:0", .dev = true, .max_connections = 1});
    ASSERT_TRUE(serve.listening()) << ::testing::internal::GetCapturedStderr();
    TestConnection held(serve.port());
    EXPECT_EQ(held.Request("GET", "/healthz").result_int(), 200);
    TestConnection over(serve.port(), "", std::chrono::seconds(5));
    EXPECT_TRUE(over.WaitForClose());
    EXPECT_EQ(serve.Stop(), 0);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("\"max_connections\":1"), std::string::npos) << err;

  // A soft open-file limit too low for the cap is raised, as far as the hard limit allows.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit lowered = saved;
  lowered.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 256);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  ::testing::internal::CaptureStderr();
  rlimit during{};
  {
    BackgroundServe serve(
        {.data_dir = Data(), .listen = "127.0.0.1:0", .dev = true, .max_connections = 2000});
    EXPECT_TRUE(serve.listening());
    ::getrlimit(RLIMIT_NOFILE, &during);
    EXPECT_EQ(serve.Stop(), 0);
  }
  err = ::testing::internal::GetCapturedStderr();
  ::setrlimit(RLIMIT_NOFILE, &saved);
  if (saved.rlim_max == RLIM_INFINITY || saved.rlim_max >= 2000 + 64) {
    EXPECT_GE(during.rlim_cur, rlim_t{2000 + 64});
    EXPECT_EQ(err.find("open-file limit"), std::string::npos) << err;
  } else {
    EXPECT_EQ(during.rlim_cur, saved.rlim_max);
    EXPECT_NE(err.find("open-file limit"), std::string::npos) << err;
  }
}

TEST_F(ServerAppTest, ServeAfterInitWithAKeyFile) {
  const std::string key_file = dir_.path() + "/key";
  {
    std::ofstream out(key_file);
    out << kKey << "\n";
  }
  ::chmod(key_file.c_str(), 0600);
  ClearKey();
  ::setenv("BIFROST_SECRET_KEY_FILE", key_file.c_str(), 1);
  const Output init = Init(Data(), /*json=*/true);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_EQ(std::getenv("BIFROST_SECRET_KEY_FILE"), nullptr);
  const std::string token = nlohmann::json::parse(init.out)["token"];

  // The file's trailing newline is not part of the key: the same text in the variable opens
  // the database.
  SetKey(kKey);
  ::testing::internal::CaptureStderr();
  {
    BackgroundServe serve({.data_dir = Data(), .listen = "localhost:0"});
    ASSERT_TRUE(serve.listening()) << ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(serve.lines().size(), 1u);  // no token printed outside dev mode
    EXPECT_TRUE(serve.lines()[0].starts_with("listening on http://localhost:"));
    TestConnection connection(serve.port());
    EXPECT_EQ(
        connection.Request("GET", "/api/v1/whoami", "", {{"Authorization", "Bearer " + token}})
            .result_int(),
        200);
    EXPECT_EQ(serve.Stop(), 0);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("WARNING"), std::string::npos) << err;
  EXPECT_EQ(err.find(token), std::string::npos);

  // A key file others can read still works, with a warning.
  ::chmod(key_file.c_str(), 0644);
  ClearKey();
  ::setenv("BIFROST_SECRET_KEY_FILE", key_file.c_str(), 1);
  const Output warned = Capture([&] { return RunServe({.data_dir = Data(), .listen = "x:y"}); });
  EXPECT_NE(warned.err.find("bifrost: warning: BIFROST_SECRET_KEY_FILE '" + key_file +
                            "' may be read by group or others (mode 0644); chmod 600 it"),
            std::string::npos)
      << warned.err;
}

}  // namespace
}  // namespace bifrost::server
