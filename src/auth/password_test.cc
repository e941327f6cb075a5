// Argon2id password hashing: the PHC format, salts, the length rules, and refusal of stored
// strings that are malformed, of another algorithm or version, or too costly to verify.
#include "auth/password.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/status_matchers.h"

namespace bifrost::auth {
namespace {

using namespace std::string_literals;

// Cheap enough for unit tests; the default cost is used where the format is the point.
constexpr PasswordCost kFastCost{.memory_kib = 1024, .passes = 1, .lanes = 1};

constexpr std::string_view kPassword = "correct horse battery staple";

// Hashes made outside this code (libargon2's argon2_hash with a fixed salt) of kPassword
// unless said otherwise. Each is one that libargon2 itself verifies, so refusing it tests
// VerifyPassword's own rules rather than a hash mismatch.
constexpr std::string_view kExternalHash =
    "$argon2id$v=19$m=1024,t=1,p=1$Fyg5SltsfY6fsMHS4/QFFg$"
    "85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4";
constexpr std::string_view kPasses16 =
    "$argon2id$v=19$m=1024,t=16,p=1$JjdIWWp7jJ2uv9Dh8gMUJQ$"
    "udLRa126PrMHIbCJxAJIJfP+CSGj0pWaLFOlQsO0lBo";
constexpr std::string_view kPasses17 =
    "$argon2id$v=19$m=1024,t=17,p=1$JzhJWmt8jZ6vwNHi8wQVJg$"
    "q5a5BO4rgOFQa0S2Akn6UGB+3XASl7LNQDMsgcKOZbg";
constexpr std::string_view kLanes16 =
    "$argon2id$v=19$m=1024,t=1,p=16$JjdIWWp7jJ2uv9Dh8gMUJQ$"
    "kuWTj/BEfuDnliXRLjvpNMCG09FCjGdta9yT3+Ooxc0";
constexpr std::string_view kLanes17 =
    "$argon2id$v=19$m=1024,t=1,p=17$JzhJWmt8jZ6vwNHi8wQVJg$"
    "sFQFhTo2IkAM9gs6TKNOZCKgTbvSOXO8hN3E+OKjJBc";
constexpr std::string_view kArgon2i =
    "$argon2i$v=19$m=1024,t=1,p=1$Fic4SVprfI2er8DR4vMEFQ$"
    "xV9i5UGThjsvxvi3kn/Sr9essYtYqTOy9TDoY7aauBk";
constexpr std::string_view kArgon2d =
    "$argon2d$v=19$m=1024,t=1,p=1$FSY3SFlqe4ydrr/Q4fIDFA$"
    "blJbtRyoUFoEQh3pcaShA32FNnhBVVTj8jbcq4zXCTU";
constexpr std::string_view kVersion16 =
    "$argon2id$v=16$m=1024,t=1,p=1$FCU2R1hpeoucrb7P4PECEw$"
    "T8BUFcMaEHbdaBKPrbMDPgsy6T0aVCZZ5e5aTMEhEwQ";
// The same, without "v=" (which libargon2 reads as version 16).
constexpr std::string_view kNoVersion =
    "$argon2id$m=1024,t=1,p=1$FCU2R1hpeoucrb7P4PECEw$"
    "T8BUFcMaEHbdaBKPrbMDPgsy6T0aVCZZ5e5aTMEhEwQ";
// Of "short-pass1" (11 bytes) and of "twelve bytes\0 and more".
constexpr std::string_view kShortPasswordHash =
    "$argon2id$v=19$m=1024,t=1,p=1$Fyg5SltsfY6fsMHS4/QFFg$"
    "VjMccVtnjAlUGC620B7MwEvWq9jjBW+oJEUH9/e+9RA";
constexpr std::string_view kNulPasswordHash =
    "$argon2id$v=19$m=1024,t=1,p=1$Fyg5SltsfY6fsMHS4/QFFg$"
    "zPxhrce1XFPn/OCneAxnJLFnLroxHS2sA0Ni5lk39JQ";

// `text` with the character at `pos` replaced by `c`.
std::string WithCharAt(std::string text, std::size_t pos, char c) {
  text.at(pos) = c;
  return text;
}

TEST(ValidatePasswordTest, AcceptsTwelveTo1024Bytes) {
  ASSERT_OK(ValidatePassword(std::string(12, 'a')));
  ASSERT_OK(ValidatePassword(std::string(1024, 'a')));
  ASSERT_OK(ValidatePassword("pässwörd-ünïcode"));  // bytes, not characters
}

TEST(ValidatePasswordTest, RefusesOtherLengthsWithoutQuotingThePassword) {
  for (const std::string& bad : {""s, "elevenbytes"s, std::string(1025, 'x')}) {
    const Status status = ValidatePassword(bad);
    EXPECT_ERROR_CODE(status, ErrorCode::kInvalidArgument);
    if (!status) {
      EXPECT_EQ(status.error().message(), "a password is 12 to 1024 bytes");
    }
  }
}

TEST(ValidatePasswordTest, RefusesNulByte) {
  const std::string password = "twelve bytes\0 and more"s;
  ASSERT_EQ(password.size(), 22U);
  const Status status = ValidatePassword(password);
  EXPECT_ERROR_CODE(status, ErrorCode::kInvalidArgument);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message(), "a password must not contain a NUL byte");
  EXPECT_EQ(status.error().message().find("twelve"), std::string::npos);
}

TEST(HashPasswordTest, DefaultCostHasThePhcFormat) {
  ASSERT_OK_AND_ASSIGN(const std::string phc, HashPassword(kPassword));
  // 16-byte salt and 32-byte hash, unpadded standard base64 (22 and 43 characters).
  EXPECT_TRUE(std::regex_match(
      phc,
      std::regex(R"(\$argon2id\$v=19\$m=65536,t=3,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43})")))
      << phc;
  EXPECT_TRUE(VerifyPassword(kPassword, phc));
}

TEST(HashPasswordTest, RoundTrips) {
  ASSERT_OK_AND_ASSIGN(const std::string phc, HashPassword(kPassword, kFastCost));
  EXPECT_TRUE(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$")) << phc;
  EXPECT_TRUE(VerifyPassword(kPassword, phc));
}

TEST(HashPasswordTest, WrongPasswordDoesNotVerify) {
  ASSERT_OK_AND_ASSIGN(const std::string phc, HashPassword(kPassword, kFastCost));
  EXPECT_FALSE(VerifyPassword("correct horse battery stapl", phc));
  EXPECT_FALSE(VerifyPassword("correct horse battery staplf", phc));
  EXPECT_FALSE(VerifyPassword("Correct horse battery staple", phc));
  EXPECT_FALSE(VerifyPassword(std::string(kPassword) + " ", phc));
}

TEST(HashPasswordTest, EachHashHasItsOwnSalt) {
  std::set<std::string> hashes;
  std::set<std::string> salts;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(const std::string phc, HashPassword(kPassword, kFastCost));
    EXPECT_TRUE(VerifyPassword(kPassword, phc));
    hashes.insert(phc);
    // "$argon2id$v=19$m=1024,t=1,p=1$<salt>$<hash>": the salt is the fifth field.
    const std::size_t salt_start = phc.find('$', phc.find("p=")) + 1;
    salts.insert(phc.substr(salt_start, phc.find('$', salt_start) - salt_start));
  }
  EXPECT_EQ(hashes.size(), 4U);
  EXPECT_EQ(salts.size(), 4U);
}

TEST(HashPasswordTest, LengthLimitsAndBinaryBytes) {
  const std::string longest(1024, 'z');
  ASSERT_OK_AND_ASSIGN(const std::string phc, HashPassword(longest, kFastCost));
  EXPECT_TRUE(VerifyPassword(longest, phc));
  EXPECT_FALSE(VerifyPassword(std::string(1023, 'z'), phc));

  const std::string binary = "\x01\xff\x80 bytes \x7f\xfe\xc3\xa9";
  ASSERT_OK_AND_ASSIGN(const std::string binary_phc, HashPassword(binary, kFastCost));
  EXPECT_TRUE(VerifyPassword(binary, binary_phc));
}

TEST(HashPasswordTest, RefusesInvalidPasswords) {
  EXPECT_ERROR_CODE(HashPassword("elevenbytes", kFastCost), ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(HashPassword(std::string(1025, 'x'), kFastCost), ErrorCode::kInvalidArgument);
  EXPECT_ERROR_CODE(HashPassword("twelve bytes\0 and more"s, kFastCost),
                    ErrorCode::kInvalidArgument);
}

TEST(HashPasswordTest, RefusesCostsItCouldNotVerify) {
  for (const PasswordCost cost :
       {PasswordCost{.memory_kib = 1024, .passes = 0, .lanes = 1},
        PasswordCost{.memory_kib = 1024, .passes = 17, .lanes = 1},
        PasswordCost{.memory_kib = 1024, .passes = 1, .lanes = 0},
        PasswordCost{.memory_kib = 1024, .passes = 1, .lanes = 17},
        PasswordCost{.memory_kib = 7, .passes = 1, .lanes = 1},
        PasswordCost{.memory_kib = 1024 * 1024 + 1, .passes = 1, .lanes = 1}}) {
    SCOPED_TRACE(std::to_string(cost.memory_kib) + " KiB, " + std::to_string(cost.passes) +
                 " passes, " + std::to_string(cost.lanes) + " lanes");
    EXPECT_ERROR_CODE(HashPassword(kPassword, cost), ErrorCode::kInvalidArgument);
  }
}

TEST(VerifyPasswordTest, AcceptsArgon2idHashesMadeElsewhere) {
  EXPECT_TRUE(VerifyPassword(kPassword, kExternalHash));
  EXPECT_FALSE(VerifyPassword("correct horse battery stapl", kExternalHash));
}

TEST(VerifyPasswordTest, AcceptsParametersUpToTheLimits) {
  EXPECT_TRUE(VerifyPassword(kPassword, kPasses16));
  EXPECT_TRUE(VerifyPassword(kPassword, kLanes16));
}

TEST(VerifyPasswordTest, RefusesParametersBeyondTheLimits) {
  // Correct hashes of the right password: only the limits can refuse them.
  EXPECT_FALSE(VerifyPassword(kPassword, kPasses17));
  EXPECT_FALSE(VerifyPassword(kPassword, kLanes17));
  // More than 1 GiB; verifying these for real would allocate it.
  const std::string tail = "$Fyg5SltsfY6fsMHS4/QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4";
  for (const std::string& params :
       {"m=1048577,t=1,p=1"s, "m=4294967295,t=1,p=1"s, "m=18446744073709551616,t=1,p=1"s,
        "m=1024,t=4294967296,p=1"s, "m=1024,t=1,p=99999999999999999999999"s}) {
    EXPECT_FALSE(VerifyPassword(kPassword, "$argon2id$v=19$" + params + tail)) << params;
  }
}

TEST(VerifyPasswordTest, RefusesOtherAlgorithmsAndVersions) {
  EXPECT_FALSE(VerifyPassword(kPassword, kArgon2i));
  EXPECT_FALSE(VerifyPassword(kPassword, kArgon2d));
  EXPECT_FALSE(VerifyPassword(kPassword, kVersion16));
  EXPECT_FALSE(VerifyPassword(kPassword, kNoVersion));
  EXPECT_FALSE(
      VerifyPassword(kPassword, "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"));
  EXPECT_FALSE(VerifyPassword(kPassword,
                              "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$"
                              "nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"));
}

TEST(VerifyPasswordTest, RefusesPasswordsOutsideTheRules) {
  // libargon2 would verify both; the length and NUL rules come first.
  EXPECT_FALSE(VerifyPassword("short-pass1", kShortPasswordHash));
  EXPECT_FALSE(VerifyPassword("twelve bytes\0 and more"s, kNulPasswordHash));
  EXPECT_FALSE(VerifyPassword("", kExternalHash));
  EXPECT_FALSE(VerifyPassword(std::string(1025, 'x'), kExternalHash));
}

TEST(VerifyPasswordTest, RefusesMalformedStringsWithoutCrashing) {
  const std::string good(kExternalHash);
  std::vector<std::string> bad = {
      "",
      "$",
      "$argon2id",
      "$argon2id$",
      "$argon2id$v=19$",
      "$argon2id$v=19$m=1024,t=1,p=1",
      "$argon2id$v=19$m=1024,t=1,p=1$",
      "$argon2id$v=19$m=1024,t=1,p=1$$",
      "$argon2id$v=19$m=,t=1,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=-1,t=1,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=+1024,t=1,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$t=1,m=1024,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=1024 "
      ",t=1,p=1$Fyg5SltsfY6fsMHS4/QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=1024,t=0,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=1024,t=1,p=0$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=4,t=1,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=1024,t=1,p=1$!!!!$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "$argon2id$v=19$m=1024,t=1,p=1$Fyg5SltsfY6fsMHS4/QFFg$",
      "$ARGON2ID$v=19$m=1024,t=1,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      "argon2id$v=19$m=1024,t=1,p=1$Fyg5SltsfY6fsMHS4/"
      "QFFg$85tmtDEFqHjyNY7NqbIfcEV2fVde4w3j4uAt9cRY4z4",
      " " + good,
      good + " ",
      good + "$",
      good + "\0"s,
      good.substr(0, good.size() - 1),
      WithCharAt(good, good.size() - 5, 'A'),  // one hash character changed ('R' in good)
      WithCharAt(good, 20, '\0'),
      "$argon2id$v=19$m=1024,t=1,p=1$" + std::string(600, 'A') + "$" + std::string(43, 'A'),
      std::string(100'000, '$'),
  };
  for (const std::string& phc : bad) {
    EXPECT_FALSE(VerifyPassword(kPassword, phc)) << phc;
  }
}

TEST(DummyPasswordHashTest, IsOneDefaultCostHashThatMatchesNothingGuessable) {
  const std::string& dummy = DummyPasswordHash();
  EXPECT_TRUE(dummy.starts_with("$argon2id$v=19$m=65536,t=3,p=1$")) << dummy;
  EXPECT_EQ(&DummyPasswordHash(), &dummy);
  EXPECT_FALSE(VerifyPassword(kPassword, dummy));
}

TEST(DummyPasswordHashTest, EveryThreadSeesTheSameHash) {
  std::vector<const std::string*> seen(4, nullptr);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = &DummyPasswordHash(); });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string* s : seen) EXPECT_EQ(s, &DummyPasswordHash());
}

}  // namespace
}  // namespace bifrost::auth
