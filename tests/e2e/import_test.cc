// `bifrost import bifrost` through the real binary: CSV dumps made by Python's
// `cryptography` exactly as the Python Bifrost stores its secrets (HKDF and PBKDF2 keys), then
// every value read back through the API (docs/migrating-from-bifrost.md).
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace bifrost::e2e {
namespace {

using testing::BifrostBinary;
using testing::ProcessResult;
using testing::RunProcess;
using testing::ServerProcess;
using testing::TempDir;

// The old installation's BIFROST_SECRET_KEY: a canary that must appear in no output or file.
const std::string kSourceKey = "old-python-bifrost-key-CANARYKEY-5f1e9a7c3b";
// Older installations often ran with short keys; PBKDF2 ones are tested with this.
const std::string kShortSourceKey = "shortKEYCANARY";

std::string SourceDir() {
  const char* source = std::getenv("BIFROST_SOURCE_DIR");
  return source != nullptr ? source : BIFROST_SOURCE_DIR;
}

struct Dump {
  std::string organizations;
  std::string configs;
  std::string key_file;
  std::string source_key;
  json expected;
};

// Writes a dump with tests/support/make_bifrost_dump.py into `dir`.
Dump MakeDump(const TempDir& dir, const std::string& source_key,
              const std::vector<std::string>& args) {
  Dump dump;
  dump.source_key = source_key;
  dump.key_file = dir.path() + "/old-secret-key.txt";
  {
    std::ofstream out(dump.key_file, std::ios::trunc);
    out << source_key << "\n";
  }
  ::chmod(dump.key_file.c_str(), 0600);
  const std::string out_dir = dir.path() + "/dump";
  std::vector<std::string> argv = {PythonBinary(),
                                   SourceDir() + "/tests/support/make_bifrost_dump.py",
                                   "--out",
                                   out_dir,
                                   "--secret-key-file",
                                   dump.key_file};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult made = RunProcess(argv);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  dump.organizations = out_dir + "/organizations.csv";
  dump.configs = out_dir + "/configs.csv";
  dump.expected = json::parse(testing::ReadFileOrEmpty(out_dir + "/expected.json"), nullptr, false);
  EXPECT_TRUE(dump.expected.is_object()) << "expected.json was not written";
  return dump;
}

ProcessResult Import(const ServerProcess& server, const Dump& dump,
                     const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {BifrostBinary(), "import", "bifrost"};
  const std::vector<std::string> storage = server.StorageArgs();
  argv.insert(argv.end(), storage.begin(), storage.end());
  argv.insert(argv.end(), {"--organizations", dump.organizations, "--configs", dump.configs,
                           "--source-key-file", dump.key_file});
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string key_env = "BIFROST_SECRET_KEY=";
  key_env += server.secret_key();
  return RunProcess(argv, "", {key_env});
}

std::string ScopePath(const json& org_id) {
  if (org_id.is_null()) return "/api/v1/global/configs/";
  std::string path = "/api/v1/orgs/";
  path += org_id.get<std::string>();
  path += "/configs/";
  return path;
}

// Every organization keeps its id and name, and every entry reads back, through the API, as
// the old installation had it: value (secrets revealed), type, description, who and when.
void ExpectEverythingReadsBack(Api& api, const std::string& admin, const json& expected) {
  for (const json& org : expected["organizations"]) {
    const Reply r = api.Call("GET", "/api/v1/orgs/" + org["id"].get<std::string>(), admin);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body["name"], org["name"]);
  }
  for (const json& entry : expected["configs"]) {
    const std::string key = entry["key"].get<std::string>();
    const std::string type = entry["type"].get<std::string>();
    const std::string value = entry["value"].get<std::string>();
    const Reply r = api.Call("GET", ScopePath(entry["org_id"]) + key + "/reveal", admin);
    ASSERT_EQ(r.status, 200) << key << ": " << r.body;
    const json& got = r.json_body;
    EXPECT_EQ(got["type"], type) << key;
    if (type == "string" || type == "secret") {
      EXPECT_EQ(got["value"], value) << key;
    } else if (type == "bool") {
      EXPECT_EQ(got["value"], value == "true") << key;
    } else {
      // int and json are spliced into the body as their stored text: compare it exactly
      // (a 30-digit number or "1.50" would not survive a round trip through a double).
      EXPECT_NE(r.body.find("\"value\":" + value), std::string::npos)
          << key << ": " << r.body << "\nexpected value text: " << value;
    }
    EXPECT_EQ(got["description"], entry["description"]) << key;
    EXPECT_EQ(got["updated_by"], entry["updated_by"]) << key;
    EXPECT_EQ(got["updated_at"], entry["updated_at"]) << key;
    EXPECT_EQ(got["version"], 1) << key;
  }
}

std::set<std::string> OrgIds(Api& api, const std::string& admin) {
  const Reply r = api.Call("GET", "/api/v1/orgs", admin);
  EXPECT_EQ(r.status, 200) << r.body;
  std::set<std::string> ids;
  if (r.json_body.is_array()) {
    for (const json& org : r.json_body) ids.insert(org["id"].get<std::string>());
  }
  return ids;
}

std::vector<json> ImportRecords(Api& api, const std::string& admin) {
  const Reply r = api.Call("GET", "/api/v1/audit?action=import.bifrost", admin);
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<json> records;
  if (r.json_body.is_object() && r.json_body["records"].is_array()) {
    for (const json& record : r.json_body["records"]) records.push_back(record);
  }
  return records;
}

// Everything the process and the server printed, and what the database stored (its files).
void ExpectNoSecretLeaked(const Dump& dump, const ServerProcess& server,
                          const std::vector<const ProcessResult*>& runs) {
  std::vector<std::string> secrets = {dump.source_key};
  for (const json& entry : dump.expected["configs"]) {
    if (entry["type"] == "secret") secrets.push_back(entry["value"].get<std::string>());
  }
  const std::string files = testing::StoredBytes(server.storage());
  const std::string logs = server.Stdout() + server.Stderr();
  for (const std::string& secret : secrets) {
    for (const ProcessResult* run : runs) {
      EXPECT_EQ(run->out.find(secret), std::string::npos) << "stdout has a secret";
      EXPECT_EQ(run->err.find(secret), std::string::npos) << "stderr has a secret";
    }
    EXPECT_EQ(logs.find(secret), std::string::npos) << "the server log has a secret";
    EXPECT_EQ(files.find(secret), std::string::npos) << "the database files have a secret";
  }
}

// An HKDF dump (the current Python Bifrost), imported while the server runs, with --format
// json; every value read back.
TEST(ImportTest, HkdfDumpImportsEveryValue) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  TempDir dir;
  const Dump dump = MakeDump(dir, kSourceKey,
                             {"--kdf", "hkdf", "--orgs", "5", "--configs-per-org", "12",
                              "--global-configs", "7", "--integration-rows", "4"});
  const json& counts = dump.expected["counts"];

  const ProcessResult run = Import(server, dump, {"--format", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_EQ(report["dry_run"], false);
  EXPECT_EQ(report["organizations"]["created"], 5);
  EXPECT_EQ(report["organizations"]["existing"], 0);
  EXPECT_EQ(report["configs"]["total"], counts["configs"]);
  EXPECT_EQ(report["configs"]["by_type"], counts["by_type"]);
  EXPECT_EQ(report["secrets"]["re_encrypted"], counts["secrets"]);
  EXPECT_EQ(report["secrets"]["hkdf"], counts["secrets"]);
  EXPECT_EQ(report["secrets"]["pbkdf2"], 0);
  EXPECT_EQ(report["skipped_integration_rows"], 4);
  EXPECT_EQ(report["warnings"], json::array());
  ASSERT_EQ(report["scopes"].size(), 6u);  // global, then the organizations by name
  EXPECT_EQ(report["scopes"][0]["scope"], "global");
  EXPECT_EQ(report["scopes"][0]["total"], 7);
  for (std::size_t i = 1; i < 6; ++i) {
    EXPECT_EQ(report["scopes"][i]["scope"], "org");
    EXPECT_EQ(report["scopes"][i]["created"], true);
    EXPECT_EQ(report["scopes"][i]["total"], 12);
  }

  std::set<std::string> expected_ids;
  for (const json& org : dump.expected["organizations"]) {
    expected_ids.insert(org["id"].get<std::string>());
  }
  EXPECT_EQ(OrgIds(api, server.admin_token()), expected_ids);
  ExpectEverythingReadsBack(api, server.admin_token(), dump.expected);

  const auto records = ImportRecords(api, server.admin_token());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["outcome"], "success");
  EXPECT_TRUE(records[0]["actor_name"].get<std::string>().starts_with("operator "))
      << records[0].dump();
  std::string detail = "5 organizations (5 created), ";
  detail += std::to_string(counts["configs"].get<int>());
  detail += " configs (by type string ";
  EXPECT_TRUE(records[0]["detail"].get<std::string>().starts_with(detail)) << records[0].dump();
  EXPECT_NE(records[0]["detail"].get<std::string>().find("4 integration rows skipped"),
            std::string::npos);

  // The import's record sits in the audit chain like any other.
  std::string key_env = "BIFROST_SECRET_KEY=";
  key_env += server.secret_key();
  std::vector<std::string> verify_argv = {BifrostBinary(), "audit", "verify"};
  for (const std::string& arg : server.StorageArgs()) verify_argv.push_back(arg);
  const ProcessResult verify = RunProcess(verify_argv, "", {key_env});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  ExpectNoSecretLeaked(dump, server, {&run});
}

// An older installation: PBKDF2 key from a short secret, enum names in upper case, no
// integration_id column; table output.
TEST(ImportTest, Pbkdf2DumpFromAShortKeyImportsEveryValue) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  TempDir dir;
  const Dump dump =
      MakeDump(dir, kShortSourceKey,
               {"--kdf", "pbkdf2", "--orgs", "3", "--configs-per-org", "10", "--global-configs",
                "5", "--upper-case-types", "--no-integration-column"});
  const json& counts = dump.expected["counts"];

  const ProcessResult run = Import(server, dump);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("bifrost: warning: the source key is shorter than 32 characters"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.out.find("SCOPE"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("(global)"), std::string::npos) << run.out;
  for (const json& org : dump.expected["organizations"]) {
    EXPECT_NE(run.out.find(org["id"].get<std::string>() + "  created"), std::string::npos)
        << run.out;
  }
  std::string secrets = std::to_string(counts["secrets"].get<int>());
  secrets += " re-encrypted (source key derivation: 0 HKDF, ";
  secrets += std::to_string(counts["secrets"].get<int>());
  secrets += " PBKDF2)";
  EXPECT_NE(run.out.find(secrets), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("3 (3 created, 0 already here)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("0 integration rows"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("\nimported\n"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("dry run"), std::string::npos) << run.out;

  ExpectEverythingReadsBack(api, server.admin_token(), dump.expected);
  EXPECT_EQ(ImportRecords(api, server.admin_token()).size(), 1u);
  ExpectNoSecretLeaked(dump, server, {&run});
}

// One secret that does not decrypt: the whole import is refused, naming the row, and nothing
// is written (no organization, no entry, no audit record).
TEST(ImportTest, CorruptSecretAbortsNamingTheRowAndWritesNothing) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  const std::string existing = CreateOrg(api, server.admin_token(), "already-here");
  TempDir dir;
  const Dump dump = MakeDump(dir, kSourceKey, {"--orgs", "4", "--corrupt-secret"});
  const json& corrupt = dump.expected["corrupt"];
  ASSERT_TRUE(corrupt.is_object());

  const ProcessResult run = Import(server, dump);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  std::string expected = "bifrost: ";
  expected += dump.configs;
  expected += " line ";
  expected += std::to_string(corrupt["line"].get<int>());
  expected += " (config '";
  expected += corrupt["config_id"].get<std::string>();
  expected += "', key '";
  expected += corrupt["key"].get<std::string>();
  expected +=
      "'): the secret does not decrypt with the source key (neither its HKDF nor its "
      "PBKDF2 derivation opens it): is the source key the old installation's "
      "BIFROST_SECRET_KEY?\n";
  EXPECT_EQ(run.err, expected);

  EXPECT_EQ(OrgIds(api, server.admin_token()), std::set<std::string>{existing});
  const Reply globals = api.Call("GET", "/api/v1/global/configs", server.admin_token());
  EXPECT_EQ(globals.status, 200);
  EXPECT_EQ(globals.json_body, json::array());
  EXPECT_TRUE(ImportRecords(api, server.admin_token()).empty());
  ExpectNoSecretLeaked(dump, server, {&run});
}

// --dry-run does everything and then rolls back; the real run afterwards is unaffected.
TEST(ImportTest, DryRunWritesNothing) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  TempDir dir;
  const Dump dump = MakeDump(dir, kSourceKey, {"--orgs", "3", "--configs-per-org", "5"});

  const ProcessResult dry = Import(server, dump, {"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("dry run: nothing was written\n"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("3 (3 created, 0 already here)"), std::string::npos) << dry.out;
  EXPECT_TRUE(OrgIds(api, server.admin_token()).empty());
  EXPECT_EQ(api.Call("GET", "/api/v1/global/configs", server.admin_token()).json_body,
            json::array());
  EXPECT_TRUE(ImportRecords(api, server.admin_token()).empty());

  const ProcessResult dry_json = Import(server, dump, {"--dry-run", "--format", "json"});
  ASSERT_EQ(dry_json.exit_code, 0) << dry_json.err;
  EXPECT_EQ(json::parse(dry_json.out)["dry_run"], true);

  const ProcessResult real = Import(server, dump);
  ASSERT_EQ(real.exit_code, 0) << real.err;
  ExpectEverythingReadsBack(api, server.admin_token(), dump.expected);
  ExpectNoSecretLeaked(dump, server, {&dry, &dry_json, &real});
}

// Importing the same dump twice: the second run refuses to overwrite, naming a row, and
// changes nothing.
TEST(ImportTest, ASecondImportRefusesToOverwrite) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  Api api(server.address());
  TempDir dir;
  const Dump dump = MakeDump(dir, kSourceKey, {"--orgs", "2", "--configs-per-org", "4"});
  ASSERT_EQ(Import(server, dump).exit_code, 0);

  const ProcessResult again = Import(server, dump);
  EXPECT_EQ(again.exit_code, 1);
  // Progress lines first (not a terminal: plain lines), then the error, alone on its line.
  const std::size_t newline_at = again.err.find("\nbifrost: ");
  ASSERT_TRUE(again.err.starts_with("bifrost: ") || newline_at != std::string::npos) << again.err;
  const std::size_t error_at = again.err.starts_with("bifrost: ") ? 0 : newline_at + 1;
  EXPECT_TRUE(again.err.substr(0, error_at).find("import bifrost: checking configs") == 0 ||
              error_at == 0)
      << again.err;
  const std::string error_line = again.err.substr(error_at);
  EXPECT_TRUE(error_line.starts_with("bifrost: " + dump.configs + " line ")) << again.err;
  EXPECT_NE(again.err.find(" already has config "), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("more rows collide with existing entries); the import never "
                           "overwrites"),
            std::string::npos)
      << again.err;
  EXPECT_EQ(std::count(error_line.begin(), error_line.end(), '\n'), 1) << again.err;
  EXPECT_EQ(ImportRecords(api, server.admin_token()).size(), 1u);
  ExpectEverythingReadsBack(api, server.admin_token(), dump.expected);
}

TEST(ImportTest, UsageErrors) {
  ServerProcess server;
  ASSERT_FALSE(server.address().empty());
  TempDir dir;
  const Dump dump = MakeDump(dir, kSourceKey, {"--orgs", "1", "--configs-per-org", "1"});
  std::string key_env = "BIFROST_SECRET_KEY=";
  key_env += server.secret_key();

  // `bifrost import bifrost --data DIR` (or --database URL), then `args`.
  const auto import_argv = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BifrostBinary(), "import", "bifrost"};
    for (const std::string& arg : server.StorageArgs()) argv.push_back(arg);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };

  // The source key is never taken on the command line.
  const ProcessResult inline_key =
      RunProcess(import_argv({"--organizations", dump.organizations, "--configs", dump.configs,
                              "--source-key", kSourceKey}),
                 "", {key_env});
  EXPECT_EQ(inline_key.exit_code, 2) << inline_key.err;
  EXPECT_EQ(inline_key.err.find(kSourceKey), std::string::npos) << inline_key.err;

  const ProcessResult no_files = RunProcess(import_argv({}), "", {key_env});
  EXPECT_EQ(no_files.exit_code, 2) << no_files.err;

  const ProcessResult help = RunProcess({BifrostBinary(), "import", "bifrost", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("docs/migrating-from-bifrost.md"), std::string::npos) << help.out;

  // Without this installation's key nothing is opened.
  const ProcessResult no_key =
      RunProcess(import_argv({"--organizations", dump.organizations, "--configs", dump.configs,
                              "--source-key-file", dump.key_file}));
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_TRUE(no_key.err.starts_with("bifrost: BIFROST_SECRET_KEY is not set")) << no_key.err;
}

}  // namespace
}  // namespace bifrost::e2e
