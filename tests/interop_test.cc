// Fernet interoperability with Python's `cryptography`, as the Python Bifrost uses it, in
// both directions, including its double-base64 stored form and its key derivation.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/base64.h"
#include "crypto/fernet.h"
#include "crypto/key_derivation.h"
#include "tests/support/subprocess.h"

namespace bifrost {
namespace {

using nlohmann::json;

constexpr std::int64_t kNow = 1'750'000'000;

json RunPython(const json& ops) {
  const char* python = std::getenv("BIFROST_PYTHON");
  const char* source = std::getenv("BIFROST_SOURCE_DIR");
  const auto result = testing::RunProcess(
      {python ? python : BIFROST_PYTHON,
       std::string(source ? source : BIFROST_SOURCE_DIR) + "/tests/interop/python_fernet.py"},
      ops.dump());
  EXPECT_EQ(result.exit_code, 0) << result.err;
  if (result.exit_code != 0) return json::array();
  return json::parse(result.out);
}

const std::vector<std::string> kSecrets = {
    "correct-horse-battery-staple-0123456789",
    "a-very-long-BIFROST_SECRET_KEY-with-more-than-sixty-four-characters-in-it-0123456789",
    "ключ-ключ-ключ-ключ-ключ-ключ-клю",
};

const std::vector<std::string> kPlaintexts = {
    "", "sk_live_xxxxx", "p@ss w0rd with spaces", "日本語のパスワード🔑", std::string(5000, 'z'),
    "{\"json\": [1, 2, 3]}",
};

TEST(PythonInterop, SameDerivedKeys) {
  json ops = json::array();
  for (const auto& s : kSecrets) ops.push_back({{"op", "derive"}, {"secret", s}});
  const json results = RunPython(ops);
  ASSERT_EQ(results.size(), kSecrets.size());
  for (std::size_t i = 0; i < kSecrets.size(); ++i) {
    auto key = crypto::DeriveMasterKey(kSecrets[i], "BIFROST_SECRET_KEY");
    ASSERT_TRUE(key);
    EXPECT_EQ(key->ToBase64().view(), results[i]["key"].get<std::string>());
  }
}

TEST(PythonInterop, WeDecryptPythonTokensPlainAndLegacy) {
  json ops = json::array();
  for (const auto& s : kSecrets) {
    for (const auto& p : kPlaintexts) {
      ops.push_back({{"op", "encrypt"}, {"secret", s}, {"plaintext", p}, {"legacy", false}});
      ops.push_back({{"op", "encrypt"}, {"secret", s}, {"plaintext", p}, {"legacy", true}});
    }
  }
  const json results = RunPython(ops);
  ASSERT_EQ(results.size(), ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto key = crypto::DeriveMasterKey(ops[i]["secret"].get<std::string>(), "BIFROST_SECRET_KEY");
    ASSERT_TRUE(key);
    std::string token = results[i]["token"].get<std::string>();
    if (ops[i]["legacy"].get<bool>()) {
      auto inner = crypto::UnwrapLegacyBifrostValue(token);
      ASSERT_TRUE(inner) << "legacy value is not base64";
      token = *inner;
    }
    // Python stamps the real time; decrypt with no TTL, as stored values never expire.
    auto plaintext = key->Decrypt(token, {.now_seconds = kNow});
    ASSERT_TRUE(plaintext) << crypto::FernetErrorMessage(plaintext.error());
    EXPECT_EQ(plaintext->view(), ops[i]["plaintext"].get<std::string>());
  }
}

TEST(PythonInterop, PythonDecryptsOurTokensPlainAndLegacy) {
  json ops = json::array();
  for (const auto& s : kSecrets) {
    auto key = crypto::DeriveMasterKey(s, "BIFROST_SECRET_KEY");
    ASSERT_TRUE(key);
    for (const auto& p : kPlaintexts) {
      auto token = key->Encrypt(p, kNow);
      ASSERT_TRUE(token);
      ops.push_back({{"op", "decrypt"}, {"secret", s}, {"token", *token}, {"legacy", false},
                     {"expect", p}});
      ops.push_back({{"op", "decrypt"}, {"secret", s}, {"token", Base64UrlEncode(*token)},
                     {"legacy", true}, {"expect", p}});
    }
  }
  const json results = RunPython(ops);
  ASSERT_EQ(results.size(), ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    ASSERT_TRUE(results[i].contains("plaintext")) << results[i].dump();
    EXPECT_EQ(results[i]["plaintext"].get<std::string>(), ops[i]["expect"].get<std::string>());
  }
}

TEST(PythonInterop, PythonRejectsOurTokenUnderAnotherKey) {
  auto key = crypto::DeriveMasterKey(kSecrets[0], "BIFROST_SECRET_KEY");
  ASSERT_TRUE(key);
  auto token = key->Encrypt("secret", kNow);
  ASSERT_TRUE(token);
  const json results = RunPython(json::array(
      {{{"op", "decrypt"}, {"secret", kSecrets[1]}, {"token", *token}, {"legacy", false}}}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].value("error", ""), "InvalidToken");
}

}  // namespace
}  // namespace bifrost
