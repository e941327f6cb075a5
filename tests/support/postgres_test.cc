#include "tests/support/postgres_test.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/subprocess.h"

namespace bifrost::testing {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string Trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::string ClusterScript() {
  std::string source = Env("BIFROST_SOURCE_DIR");
#ifdef BIFROST_SOURCE_DIR
  if (source.empty()) source = BIFROST_SOURCE_DIR;
#endif
  return source + "/tests/support/postgres_cluster.sh";
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 random(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 12; ++i) suffix += kHex[random() % 16];
  return suffix;
}

// Lower-case letters, digits and '_' only: the name is spliced into CREATE DATABASE.
std::string SafeLabel(std::string_view label) {
  std::string safe;
  for (char c : label) {
    const auto u = static_cast<unsigned char>(c);
    safe += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_';
  }
  if (safe.size() > 30) safe.resize(30);
  return safe;
}

// The databases this process created on the shared cluster, dropped when it exits (each test
// case runs in a process of its own under ctest), so that a full run does not fill the disk
// with hundreds of copies of template1. BIFROST_TEST_KEEP_DATABASES=1 keeps them for a look.
class CreatedDatabases {
 public:
  void Add(std::string admin_url, std::string name) {
    std::lock_guard lock(mu_);
    created_.emplace_back(std::move(admin_url), std::move(name));
  }
  ~CreatedDatabases() {
    if (Env("BIFROST_TEST_KEEP_DATABASES") == "1") return;
    for (const auto& [admin_url, name] : created_) {
      // Best effort: WITH (FORCE) ends connections a crashed server left behind.
      (void)RunProcess({"psql", "-X", "-q", "-d", admin_url, "-c",
                        "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"});
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> created_;
};

CreatedDatabases& Created() {
  static CreatedDatabases created;
  return created;
}

std::string CreateDatabase(const std::string& admin_url, std::string_view label,
                           bool drop_at_exit) {
  const std::string name = "bifrost_" + SafeLabel(label) + "_" + RandomSuffix();
  const ProcessResult created = RunProcess({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                                            admin_url, "-c", "CREATE DATABASE " + name});
  if (created.exit_code != 0) {
    ADD_FAILURE() << "CREATE DATABASE " << name << " failed: " << created.err;
    return "";
  }
  if (drop_at_exit) Created().Add(admin_url, name);
  return WithDatabase(admin_url, name);
}

}  // namespace

std::string PostgresAdminUrl() {
  std::string url = Env("BIFROST_TEST_POSTGRES_URL");
  if (!url.empty()) return url;
  const std::string file = Env("BIFROST_TEST_POSTGRES_URL_FILE");
  if (file.empty()) return "";
  return Trim(ReadFileOrEmpty(file));
}

std::string PostgresClusterDir() {
  std::string dir = Env("BIFROST_TEST_POSTGRES_DIR");
  if (!dir.empty()) return dir;
  const std::string file = Env("BIFROST_TEST_POSTGRES_URL_FILE");
  if (file.empty()) return "";
  // The fixture keeps the cluster's directory next to the URL file.
  const std::string dir_file = file.substr(0, file.rfind('/') + 1) + "dir";
  return Trim(ReadFileOrEmpty(dir_file));
}

std::string PostgresDataDir() {
  const std::string dir = PostgresClusterDir();
  return dir.empty() ? "" : dir + "/data";
}

bool TestBackendIsPostgres() { return Env("BIFROST_TEST_BACKEND") == "postgresql"; }

std::string NewPostgresDatabase(std::string_view label, const std::string& admin_url) {
  const std::string admin = admin_url.empty() ? PostgresAdminUrl() : admin_url;
  if (admin.empty()) {
    ADD_FAILURE() << "no PostgreSQL test cluster: run this test through ctest (fixture "
                     "`postgres`) or set BIFROST_TEST_POSTGRES_URL";
    return "";
  }
  return CreateDatabase(admin, label, /*drop_at_exit=*/true);
}

std::string WithDatabase(const std::string& url, std::string_view database) {
  // postgresql://user@host:port/DB?params  or  postgresql://user@/DB?host=...
  const std::size_t scheme = url.find("://");
  const std::size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path == std::string::npos) return url + "/" + std::string(database);
  const std::size_t query = url.find('?', path);
  std::string result = url.substr(0, path + 1);
  result += database;
  if (query != std::string::npos) result += url.substr(query);
  return result;
}

std::string RunSql(const std::string& url, const std::string& sql) {
  const ProcessResult ran = RunProcess(
      {"psql", "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql});
  EXPECT_EQ(ran.exit_code, 0) << sql << ": " << ran.err;
  return ran.out;
}

PostgresCluster::PostgresCluster(Options options) : options_(options) {
  // Under /tmp whatever $TMPDIR says: the cluster's own user must be able to reach it.
  char pattern[] = "/tmp/bifrost-pg.XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  dir_ = pattern;
  std::vector<std::string> argv = {ClusterScript(), "start", dir_};
  if (options_.port != 0) {
    argv.push_back("--port");
    argv.push_back(std::to_string(options_.port));
  }
  if (options_.ssl) argv.push_back("--ssl");
  if (!options_.fsync) argv.push_back("--no-fsync");
  const ProcessResult started = RunProcess(argv);
  if (started.exit_code != 0) {
    ADD_FAILURE() << "starting a PostgreSQL cluster failed: " << started.err;
    return;
  }
  url_ = Trim(started.out);
}

PostgresCluster::~PostgresCluster() {
  if (dir_.empty()) return;
  const ProcessResult destroyed = RunProcess({ClusterScript(), "destroy", dir_});
  if (destroyed.exit_code != 0) ADD_FAILURE() << "destroying the cluster: " << destroyed.err;
}

std::string PostgresCluster::NewDatabase(std::string_view label) {
  if (url_.empty()) {
    ADD_FAILURE() << "the cluster did not start";
    return "";
  }
  return CreateDatabase(url_, label, /*drop_at_exit=*/false);  // the cluster goes anyway
}

bool PostgresCluster::Stop(bool immediate) {
  const ProcessResult stopped =
      RunProcess({ClusterScript(), "stop", dir_, immediate ? "immediate" : "fast"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  return stopped.exit_code == 0;
}

bool PostgresCluster::Start() {
  const ProcessResult started = RunProcess({ClusterScript(), "start", dir_});
  EXPECT_EQ(started.exit_code, 0) << started.err;
  return started.exit_code == 0;
}

bool PostgresCluster::Restart() {
  const ProcessResult restarted = RunProcess({ClusterScript(), "restart", dir_});
  EXPECT_EQ(restarted.exit_code, 0) << restarted.err;
  return restarted.exit_code == 0;
}

int PostgresCluster::FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace bifrost::testing
