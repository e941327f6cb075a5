// LoadCatalog on real directories: the Python scan (`python -m bifrost._discover`, with the
// SDK written by WritePythonSdk) and executables asked to --bifrost-describe themselves;
// broken files, duplicate and invalid names, invalid timeouts and hung scanners. The scans
// here run as the test's own user without Landlock (runtime_test.cc covers the sandboxed
// scan through Runtime).
#include "workflow/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"
#include "workflow/python_sdk.h"

namespace bifrost::workflow {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPython[] = "/usr/bin/python3";
constexpr std::int64_t kMaxTimeout = 3600;

// An executable that answers --bifrost-describe with `describe_body` (shell lines).
std::string Describer(std::string_view describe_body) {
  std::string text = "#!/bin/sh\nif [ \"$1\" = --bifrost-describe ]; then\n";
  text += describe_body;
  text += "\nfi\nexit 0\n";
  return text;
}

std::string EchoDescription(std::string_view json) {
  std::string body = "echo '";
  body += json;
  body += "'; exit 0";
  return Describer(body);
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = root_.path() + "/workflows";
    work_ = root_.path() + "/work";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(work_.c_str(), 0700), 0);
    auto sdk = WritePythonSdk(root_.path());
    ASSERT_TRUE(sdk.has_value()) << sdk.error().ToString();
    env_.python = kPython;
    env_.sdk_dir = *sdk;
    env_.work_dir = work_;
    env_.python_timeout = 60s;
    env_.describe_timeout = 10s;
  }

  void Write(const std::string& name, const std::string& content, mode_t mode = 0644) {
    const std::string path = dir_ + "/" + name;
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << content;
      ASSERT_TRUE(out.good()) << path;
    }
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  Result<Catalog> Load() { return LoadCatalog(dir_, env_, kMaxTimeout, clock_); }

  std::string Path(std::string_view name) const {
    std::string path = dir_;
    path += "/";
    path += name;
    return path;
  }

  // The errors by file.
  static std::map<std::string, std::string> ErrorsByFile(const Catalog& catalog) {
    std::map<std::string, std::string> errors;
    for (const LoadError& error : catalog.errors) {
      EXPECT_FALSE(errors.contains(error.file)) << "two errors for " << error.file;
      errors[error.file] = error.error;
    }
    return errors;
  }

  static std::vector<std::string> Names(const Catalog& catalog) {
    std::vector<std::string> names;
    for (const WorkflowDef& def : catalog.workflows) names.push_back(def.name);
    return names;
  }

  bifrost::testing::TempDir root_;
  std::string dir_;
  std::string work_;
  ScanEnvironment env_;
  FakeClock clock_{1'700'000'123'000'000};
};

TEST_F(CatalogTest, PythonScanLoadsGoodFilesAndReportsBrokenOnes) {
  Write("good.py",
        "from bifrost import workflow\n"
        "print('printed while imported')\n"
        "\n"
        "@workflow(name='good', description='A good one', timeout_seconds=5)\n"
        "async def good_fn(context):\n"
        "    return 1\n"
        "\n"
        "@workflow\n"
        "def plain(context):\n"
        "    return 2\n"
        "\n"
        "class Group:\n"
        "    @workflow(name='nested')\n"
        "    def inner(context):\n"
        "        return 3\n");
  Write("broken.py", "from bifrost import workflow\ndef oops(:\n    pass\n");
  Write("later_dup.py",
        "from bifrost import workflow\n"
        "@workflow(name='good')\n"
        "def again(context):\n"
        "    return 4\n"
        "@workflow(name='unique_in_dup')\n"
        "def fine(context):\n"
        "    return 5\n");
  Write("zero_timeout.py",
        "from bifrost import workflow\n"
        "@workflow(name='zero', timeout_seconds=0)\n"
        "def zero(context):\n"
        "    return 0\n");
  Write("huge_timeout.py",
        "from bifrost import workflow\n"
        "@workflow(name='huge', timeout_seconds=3601)\n"
        "def huge(context):\n"
        "    return 0\n");
  // A name the decorator would refuse, set by hand: the server checks it again.
  Write("bad_name.py",
        "from bifrost._workflow import MARKER, WorkflowInfo\n"
        "def sneaky(context):\n"
        "    return 0\n"
        "setattr(sneaky, MARKER, WorkflowInfo('bad name!'))\n");
  Write("raises.py", "raise RuntimeError('no import for you')\n");
  // Skipped: private and hidden files, other files, directories.
  Write("_private.py",
        "from bifrost import workflow\n@workflow(name='private')\ndef p(context): pass\n");
  Write(".hidden.py",
        "from bifrost import workflow\n@workflow(name='hidden')\ndef h(context): pass\n");
  Write("notes.txt", "not a workflow\n");
  ASSERT_EQ(::mkdir((dir_ + "/subdir").c_str(), 0755), 0);
  Write("subdir/inner.py",
        "from bifrost import workflow\n@workflow(name='inner')\ndef i(context): pass\n");

  ASSERT_OK_AND_ASSIGN(const Catalog catalog, Load());
  EXPECT_EQ(Names(catalog), (std::vector<std::string>{"good", "nested", "plain", "unique_in_dup"}));
  EXPECT_EQ(catalog.loaded_at, clock_.NowMicros());

  const WorkflowDef* good = catalog.Find("good");
  ASSERT_NE(good, nullptr);
  EXPECT_EQ(good->kind, WorkflowDef::Kind::kPython);
  EXPECT_EQ(good->file, Path("good.py"));
  EXPECT_EQ(good->function, "good_fn");
  EXPECT_EQ(good->description, "A good one");
  EXPECT_EQ(good->timeout_seconds, std::optional<std::int64_t>(5));

  const WorkflowDef* plain = catalog.Find("plain");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->function, "plain");
  EXPECT_EQ(plain->description, "");
  EXPECT_EQ(plain->timeout_seconds, std::nullopt);

  const WorkflowDef* nested = catalog.Find("nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->function, "Group.inner");

  const WorkflowDef* unique = catalog.Find("unique_in_dup");
  ASSERT_NE(unique, nullptr);
  EXPECT_EQ(unique->file, Path("later_dup.py"));

  const auto errors = ErrorsByFile(catalog);
  EXPECT_EQ(errors.size(), 6u);
  ASSERT_TRUE(errors.contains(Path("broken.py")));
  EXPECT_THAT(errors.at(Path("broken.py")), HasSubstr("SyntaxError"));
  ASSERT_TRUE(errors.contains(Path("later_dup.py")));
  EXPECT_THAT(errors.at(Path("later_dup.py")), HasSubstr("'good'"));
  EXPECT_THAT(errors.at(Path("later_dup.py")), HasSubstr("already defined in good.py"));
  ASSERT_TRUE(errors.contains(Path("zero_timeout.py")));
  EXPECT_THAT(errors.at(Path("zero_timeout.py")), HasSubstr("timeout_seconds"));
  ASSERT_TRUE(errors.contains(Path("huge_timeout.py")));
  EXPECT_THAT(errors.at(Path("huge_timeout.py")), HasSubstr("'huge'"));
  EXPECT_THAT(errors.at(Path("huge_timeout.py")), HasSubstr("between 1 and 3600"));
  ASSERT_TRUE(errors.contains(Path("bad_name.py")));
  EXPECT_THAT(errors.at(Path("bad_name.py")), HasSubstr("must match"));
  ASSERT_TRUE(errors.contains(Path("raises.py")));
  EXPECT_EQ(errors.at(Path("raises.py")), "RuntimeError: no import for you");
  for (const auto& [file, error] : errors) {
    EXPECT_EQ(error.find('\n'), std::string::npos) << file << ": not one line: " << error;
  }
}

TEST_F(CatalogTest, ExecutablesDescribeThemselves) {
  Write("ok",
        Describer("echo 'ignored' >&2\n"
                  "echo '{\"name\":\"exe_ok\",\"description\":\"does things\","
                  "\"timeout_seconds\":7}'\nexit 0"),
        0755);
  Write("name_only", EchoDescription(R"({"name":"exe_plain"})"), 0755);
  Write("null_timeout", EchoDescription(R"({"name":"exe_null","timeout_seconds":null})"), 0755);
  Write("exits1", Describer("echo '{\"name\":\"x\"}'; exit 1"), 0755);
  Write("not_json", Describer("echo hello; exit 0"), 0755);
  Write("array", Describer("echo '[\"exe\"]'; exit 0"), 0755);
  Write("bad_name", EchoDescription(R"({"name":"no spaces allowed"})"), 0755);
  Write("no_name", EchoDescription(R"({"description":"nameless"})"), 0755);
  std::string long_name(129, 'n');
  std::string long_description = R"({"name":")";
  long_description += long_name;
  long_description += R"("})";
  Write("long_name", EchoDescription(long_description), 0755);
  Write("string_timeout", EchoDescription(R"({"name":"exe_str","timeout_seconds":"5"})"), 0755);
  Write("float_timeout", EchoDescription(R"({"name":"exe_float","timeout_seconds":1.5})"), 0755);
  Write("zero_timeout", EchoDescription(R"({"name":"exe_zero","timeout_seconds":0})"), 0755);
  Write("big_timeout", EchoDescription(R"({"name":"exe_big","timeout_seconds":3601})"), 0755);
  Write("max_timeout", EchoDescription(R"({"name":"exe_max","timeout_seconds":3600})"), 0755);
  // Not executable, hidden or private: not workflows at all.
  Write("data.json", R"({"name":"data"})", 0644);
  Write(".hidden", EchoDescription(R"({"name":"hidden"})"), 0755);
  Write("_private", EchoDescription(R"({"name":"private"})"), 0755);
  // No .py file: the Python interpreter is never needed.
  env_.python = "/nonexistent/python3";

  ASSERT_OK_AND_ASSIGN(const Catalog catalog, Load());
  EXPECT_EQ(Names(catalog),
            (std::vector<std::string>{"exe_max", "exe_null", "exe_ok", "exe_plain"}));
  const WorkflowDef* ok = catalog.Find("exe_ok");
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->kind, WorkflowDef::Kind::kExecutable);
  EXPECT_EQ(ok->file, Path("ok"));
  EXPECT_EQ(ok->function, "");
  EXPECT_EQ(ok->description, "does things");
  EXPECT_EQ(ok->timeout_seconds, std::optional<std::int64_t>(7));
  EXPECT_EQ(catalog.Find("exe_plain")->timeout_seconds, std::nullopt);
  EXPECT_EQ(catalog.Find("exe_null")->timeout_seconds, std::nullopt);
  EXPECT_EQ(catalog.Find("exe_max")->timeout_seconds, std::optional<std::int64_t>(3600));

  const auto errors = ErrorsByFile(catalog);
  EXPECT_EQ(errors.size(), 10u);
  const std::map<std::string, std::string> expected = {
      {"exits1", "exited with status 1"},
      {"not_json", "without printing a JSON object"},
      {"array", "without printing a JSON object"},
      {"bad_name", "must match"},
      {"no_name", "must match"},
      {"long_name", "must match"},
      {"string_timeout", "whole number"},
      {"float_timeout", "whole number"},
      {"zero_timeout", "between 1 and 3600"},
      {"big_timeout", "between 1 and 3600"},
  };
  for (const auto& [file, text] : expected) {
    ASSERT_TRUE(errors.contains(Path(file))) << file;
    EXPECT_THAT(errors.at(Path(file)), HasSubstr(text)) << file;
  }
  EXPECT_EQ(catalog.loaded_at, clock_.NowMicros());
}

TEST_F(CatalogTest, DescribeThatHangsIsCutAtItsTimeout) {
  Write("hangs", Describer("sleep 30"), 0755);
  Write("fine", EchoDescription(R"({"name":"fine"})"), 0755);
  env_.describe_timeout = 1s;
  const auto began = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(const Catalog catalog, Load());
  EXPECT_LT(std::chrono::steady_clock::now() - began, 20s);
  EXPECT_EQ(Names(catalog), std::vector<std::string>{"fine"});
  ASSERT_EQ(catalog.errors.size(), 1u);
  EXPECT_EQ(catalog.errors[0].file, Path("hangs"));
  EXPECT_THAT(catalog.errors[0].error, HasSubstr("did not finish in time"));
}

TEST_F(CatalogTest, DescribeRunsInTheScanEnvironment) {
  // The description carries the names of the variables it was run with.
  Write("envdump",
        Describer("names=$(tr '\\0' '\\n' < /proc/$$/environ | cut -d= -f1 | sort | tr '\\n' ' ')\n"
                  "printf '{\"name\":\"envdump\",\"description\":\"%s\"}\\n' \"$names\"\n"
                  "exit 0"),
        0755);
  ASSERT_EQ(::setenv("BIFROST_CATALOG_TEST_LEAK", "1", 1), 0);
  auto loaded = Load();
  ::unsetenv("BIFROST_CATALOG_TEST_LEAK");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  const WorkflowDef* def = loaded->Find("envdump");
  ASSERT_NE(def, nullptr) << (loaded->errors.empty() ? "" : loaded->errors[0].error);
  const std::string& names = def->description;
  for (const char* name : {"PATH ", "HOME ", "TMPDIR ", "LANG "}) {
    EXPECT_THAT(names, HasSubstr(name));
  }
  EXPECT_THAT(names, Not(HasSubstr("BIFROST_TOKEN")));
  EXPECT_THAT(names, Not(HasSubstr("BIFROST_ORG")));
  EXPECT_THAT(names, Not(HasSubstr("BIFROST_EXECUTION_ID")));
  EXPECT_THAT(names, Not(HasSubstr("LEAK"))) << "the server's environment reached the child";
}

TEST_F(CatalogTest, DuplicateNamesAcrossFilesAndKinds) {
  Write("a_flows.py",
        "from bifrost import workflow\n"
        "@workflow(name='shared')\n"
        "def shared(context):\n"
        "    return 1\n");
  Write("b_exe", EchoDescription(R"({"name":"shared"})"), 0755);
  Write("x1", EchoDescription(R"({"name":"twin","description":"first"})"), 0755);
  Write("x2", EchoDescription(R"({"name":"twin","description":"second"})"), 0755);

  ASSERT_OK_AND_ASSIGN(const Catalog catalog, Load());
  EXPECT_EQ(Names(catalog), (std::vector<std::string>{"shared", "twin"}));
  // The Python file wins over the executable; of two executables, the first by file name.
  EXPECT_EQ(catalog.Find("shared")->kind, WorkflowDef::Kind::kPython);
  EXPECT_EQ(catalog.Find("shared")->file, Path("a_flows.py"));
  EXPECT_EQ(catalog.Find("twin")->file, Path("x1"));
  EXPECT_EQ(catalog.Find("twin")->description, "first");

  const auto errors = ErrorsByFile(catalog);
  EXPECT_EQ(errors.size(), 2u);
  ASSERT_TRUE(errors.contains(Path("b_exe")));
  EXPECT_THAT(errors.at(Path("b_exe")), HasSubstr(Path("a_flows.py")));
  ASSERT_TRUE(errors.contains(Path("x2")));
  EXPECT_THAT(errors.at(Path("x2")), HasSubstr(Path("x1")));
}

// A dangling symlink (a workflow deleted while a link to it stays, an editor's leftover)
// is not a workflow; it must not make the whole directory unreadable.
TEST_F(CatalogTest, DanglingSymlinkIsSkipped) {
  ASSERT_EQ(::symlink((root_.path() + "/nowhere").c_str(), Path("dangling").c_str()), 0);
  auto alone = Load();
  EXPECT_TRUE(alone.has_value()) << alone.error().ToString();
  if (alone) {
    EXPECT_TRUE(alone->workflows.empty());
  }

  Write("fine", EchoDescription(R"({"name":"fine"})"), 0755);
  ASSERT_EQ(::symlink((root_.path() + "/nowhere").c_str(), Path("zz_dangling").c_str()), 0);
  auto mixed = Load();
  ASSERT_TRUE(mixed.has_value()) << mixed.error().ToString();
  EXPECT_EQ(Names(*mixed), std::vector<std::string>{"fine"});
}

// A symlink to an executable elsewhere is a workflow like any other.
TEST_F(CatalogTest, SymlinkToExecutableIsLoaded) {
  const std::string target = root_.path() + "/elsewhere";
  {
    std::ofstream out(target);
    out << EchoDescription(R"({"name":"linked"})");
  }
  ASSERT_EQ(::chmod(target.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(target.c_str(), Path("link").c_str()), 0);
  ASSERT_OK_AND_ASSIGN(const Catalog catalog, Load());
  EXPECT_EQ(Names(catalog), std::vector<std::string>{"linked"});
  EXPECT_TRUE(catalog.errors.empty());
}

TEST_F(CatalogTest, EmptyDirectoryIsAnEmptyCatalog) {
  ASSERT_OK_AND_ASSIGN(const Catalog catalog, Load());
  EXPECT_TRUE(catalog.workflows.empty());
  EXPECT_TRUE(catalog.errors.empty());
  EXPECT_EQ(catalog.loaded_at, clock_.NowMicros());
}

TEST_F(CatalogTest, MissingOrNonDirectoryIsNotFound) {
  EXPECT_ERROR_CODE(LoadCatalog(root_.path() + "/missing", env_, kMaxTimeout, clock_),
                    ErrorCode::kNotFound);
  Write("file.py", "x = 1\n");
  EXPECT_ERROR_CODE(LoadCatalog(Path("file.py"), env_, kMaxTimeout, clock_), ErrorCode::kNotFound);
}

TEST_F(CatalogTest, PythonScannerThatCannotRunIsUnavailable) {
  Write("flows.py", "x = 1\n");
  env_.python = "/nonexistent/python3";
  auto loaded = Load();
  EXPECT_ERROR_CODE(loaded, ErrorCode::kUnavailable);
  if (!loaded) {
    EXPECT_THAT(loaded.error().message(), HasSubstr("/nonexistent/python3"));
  }
}

TEST_F(CatalogTest, PythonScannerThatHangsIsUnavailable) {
  Write("slow.py", "import time\ntime.sleep(30)\n");
  env_.python_timeout = 1s;
  const auto began = std::chrono::steady_clock::now();
  auto loaded = Load();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 20s);
  EXPECT_ERROR_CODE(loaded, ErrorCode::kUnavailable);
  if (!loaded) {
    EXPECT_THAT(loaded.error().message(), HasSubstr("did not finish in time"));
  }
}

TEST_F(CatalogTest, MaxTimeoutBoundsPythonAndExecutables) {
  Write("flows.py",
        "from bifrost import workflow\n"
        "@workflow(name='py_ten', timeout_seconds=10)\n"
        "def ten(context):\n"
        "    return 1\n"
        "@workflow(name='py_eleven', timeout_seconds=11)\n"
        "def eleven(context):\n"
        "    return 1\n");
  Write("ten", EchoDescription(R"({"name":"exe_ten","timeout_seconds":10})"), 0755);
  Write("eleven", EchoDescription(R"({"name":"exe_eleven","timeout_seconds":11})"), 0755);
  auto loaded = LoadCatalog(dir_, env_, 10, clock_);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  EXPECT_EQ(Names(*loaded), (std::vector<std::string>{"exe_ten", "py_ten"}));
  const auto errors = ErrorsByFile(*loaded);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors.at(Path("flows.py")), HasSubstr("between 1 and 10"));
  EXPECT_THAT(errors.at(Path("eleven")), HasSubstr("between 1 and 10"));
}

TEST(CatalogNamesTest, IsValidWorkflowName) {
  EXPECT_TRUE(IsValidWorkflowName("a"));
  EXPECT_TRUE(IsValidWorkflowName("call_api"));
  EXPECT_TRUE(IsValidWorkflowName("Nightly.Report-2"));
  EXPECT_TRUE(IsValidWorkflowName(std::string(128, 'x')));
  EXPECT_FALSE(IsValidWorkflowName(std::string(129, 'x')));
  EXPECT_FALSE(IsValidWorkflowName(""));
  EXPECT_FALSE(IsValidWorkflowName("has space"));
  EXPECT_FALSE(IsValidWorkflowName("a/b"));
  EXPECT_FALSE(IsValidWorkflowName("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidWorkflowName(std::string_view("a\0b", 3)));
}

TEST(CatalogFindTest, FindsByExactName) {
  Catalog catalog;
  for (const char* name : {"alpha", "beta", "gamma"}) {
    WorkflowDef def;
    def.name = name;
    catalog.workflows.push_back(def);
  }
  ASSERT_NE(catalog.Find("beta"), nullptr);
  EXPECT_EQ(catalog.Find("beta")->name, "beta");
  EXPECT_EQ(catalog.Find("gamma")->name, "gamma");
  EXPECT_EQ(catalog.Find("alpha")->name, "alpha");
  EXPECT_EQ(catalog.Find("bet"), nullptr);
  EXPECT_EQ(catalog.Find("delta"), nullptr);
  EXPECT_EQ(catalog.Find(""), nullptr);
  EXPECT_EQ(Catalog().Find("alpha"), nullptr);
}

// WritePythonSdk (python_sdk.h): what the catalog's scanner imports.
TEST(CatalogPythonSdkTest, WritesEveryFileReadableByOthers) {
  bifrost::testing::TempDir root;
  ASSERT_OK_AND_ASSIGN(const std::string sdk, WritePythonSdk(root.path()));
  EXPECT_TRUE(sdk.starts_with(root.path() + "/"));
  struct stat info {};
  ASSERT_EQ(::stat(sdk.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0755u);
  ASSERT_FALSE(PythonSdkFiles().empty());
  bool has_discover = false;
  for (const EmbeddedFile& file : PythonSdkFiles()) {
    std::string path = sdk;
    path += "/";
    path += file.path;
    EXPECT_EQ(bifrost::testing::ReadFileOrEmpty(path), file.content) << path;
    ASSERT_EQ(::stat(path.c_str(), &info), 0) << path;
    EXPECT_EQ(info.st_mode & 07777, 0444u) << path;
    const std::string parent = std::filesystem::path(path).parent_path().string();
    ASSERT_EQ(::stat(parent.c_str(), &info), 0) << parent;
    EXPECT_EQ(info.st_mode & 07777, 0755u) << parent;
    if (file.path == "bifrost/_discover.py") has_discover = true;
  }
  EXPECT_TRUE(has_discover);
  // A second call makes a second directory.
  ASSERT_OK_AND_ASSIGN(const std::string again, WritePythonSdk(root.path()));
  EXPECT_NE(again, sdk);
}

// The documented modes hold whatever the server's umask is (a server started with
// UMask=0077 still runs its workflows as another user, who must read the SDK).
TEST(CatalogPythonSdkTest, ModesDoNotDependOnTheUmask) {
  bifrost::testing::TempDir root;
  const mode_t saved = ::umask(077);
  auto written = WritePythonSdk(root.path());
  ::umask(saved);
  ASSERT_TRUE(written.has_value()) << written.error().ToString();
  struct stat info {};
  ASSERT_EQ(::stat(written->c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0755u) << *written;
  const std::string package = *written + "/bifrost";
  ASSERT_EQ(::stat(package.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0755u) << package;
  const std::string init = package + "/__init__.py";
  ASSERT_EQ(::stat(init.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0444u) << init;
}

TEST(CatalogPythonSdkTest, UnwritableParentIsUnavailable) {
  bifrost::testing::TempDir root;
  auto written = WritePythonSdk(root.path() + "/does/not/exist");
  EXPECT_ERROR_CODE(written, ErrorCode::kUnavailable);
  if (!written) {
    EXPECT_THAT(written.error().message(), HasSubstr(root.path() + "/does/not/exist"));
  }
}

}  // namespace
}  // namespace bifrost::workflow
