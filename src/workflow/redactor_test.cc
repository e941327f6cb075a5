#include "workflow/redactor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace bifrost::workflow {
namespace {

std::size_t CountRedacted(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t at = text.find(kRedacted); at != std::string_view::npos;
       at = text.find(kRedacted, at + kRedacted.size())) {
    ++count;
  }
  return count;
}

TEST(RedactorTest, NoSecretsLeavesTextAlone) {
  Redactor redactor;
  EXPECT_EQ(redactor.size(), 0u);
  EXPECT_EQ(redactor.Apply("hello world"), "hello world");
  EXPECT_EQ(redactor.Apply(""), "");
  EXPECT_EQ(redactor.Apply("hello", true), "hello");
}

TEST(RedactorTest, RawForm) {
  Redactor redactor;
  redactor.Add("s3cr3t-value");
  EXPECT_EQ(redactor.size(), 1u);
  EXPECT_EQ(redactor.Apply("token=s3cr3t-value end"), "token=[REDACTED] end");
  EXPECT_EQ(redactor.Apply("s3cr3t-value"), "[REDACTED]");
  EXPECT_EQ(redactor.Apply("s3cr3t-valu"), "s3cr3t-valu");
  EXPECT_EQ(redactor.Apply(""), "");
}

TEST(RedactorTest, QuoteAndBackslashJsonAndRepr) {
  Redactor redactor;
  const std::string secret = "pa\"ss\\word";
  redactor.Add(secret);
  std::string text = "raw ";
  text += secret;
  EXPECT_EQ(redactor.Apply(text), "raw [REDACTED]");
  // JSON (nlohmann, Python json.dumps): pa\"ss\\word
  EXPECT_EQ(redactor.Apply(nlohmann::json(secret).dump()), "\"[REDACTED]\"");
  EXPECT_EQ(redactor.Apply(R"({"k": "pa\"ss\\word"})"), R"({"k": "[REDACTED]"})");
  // Python repr: 'pa"ss\\word'
  EXPECT_EQ(redactor.Apply(R"(x='pa"ss\\word')"), "x='[REDACTED]'");
}

TEST(RedactorTest, JsonInsideJsonIsRedacted) {
  // A workflow returning json.dumps({...}) of something that holds the secret: its result
  // document holds the secret escaped twice.
  const std::string secret = "pa\"ss\\w\xc3\xa9rd";
  Redactor redactor;
  redactor.Add(secret);
  for (const bool ascii : {false, true}) {
    const nlohmann::json inner = {{"authorization", "Bearer " + secret}};
    const std::string inner_text = inner.dump(-1, ' ', ascii);
    const std::string result = nlohmann::json(inner_text).dump(-1, ' ', ascii);
    const std::string redacted = redactor.ApplyToJson(result);
    EXPECT_EQ(redacted.find("pa"), std::string::npos) << redacted;
    EXPECT_NE(redacted.find(std::string(kRedacted)), std::string::npos) << redacted;
    EXPECT_TRUE(nlohmann::json::accept(redacted)) << redacted;
    // The same text printed as a log line.
    EXPECT_EQ(redactor.Apply(result).find("pa"), std::string::npos);
  }
}

TEST(RedactorTest, NewlineForms) {
  Redactor redactor;
  redactor.Add("line1\nline2");
  EXPECT_EQ(redactor.Apply("a line1\nline2 b"), "a [REDACTED] b");
  // JSON and repr both spell it line1\nline2.
  EXPECT_EQ(redactor.Apply(R"("line1\nline2")"), "\"[REDACTED]\"");
  EXPECT_EQ(redactor.Apply("line1"), "line1");
}

TEST(RedactorTest, ControlCharacterForms) {
  Redactor redactor;
  redactor.Add(
      std::string("ab\x01"
                  "cd"));
  EXPECT_EQ(redactor.Apply(std::string("<ab\x01"
                                       "cd>")),
            "<[REDACTED]>");
  EXPECT_EQ(redactor.Apply(R"(<ab\u0001cd>)"), "<[REDACTED]>");  // JSON
  EXPECT_EQ(redactor.Apply(R"(<ab\x01cd>)"), "<[REDACTED]>");    // Python repr
  EXPECT_EQ(redactor.Apply(nlohmann::json(std::string("ab\x01"
                                                      "cd"))
                               .dump()),
            "\"[REDACTED]\"");
}

TEST(RedactorTest, DeleteCharacterForms) {
  Redactor redactor;
  redactor.Add(
      std::string("ab\x7f"
                  "cd"));
  EXPECT_EQ(redactor.Apply(std::string("<ab\x7f"
                                       "cd>")),
            "<[REDACTED]>");                                     // raw and JSON
  EXPECT_EQ(redactor.Apply(R"(<ab\u007fcd>)"), "<[REDACTED]>");  // Python json.dumps ASCII
  EXPECT_EQ(redactor.Apply(R"(<ab\x7fcd>)"), "<[REDACTED]>");    // Python repr
}

TEST(RedactorTest, TabAndCarriageReturnForms) {
  Redactor redactor;
  redactor.Add("a\tb\rcd");
  EXPECT_EQ(redactor.Apply("<a\tb\rcd>"), "<[REDACTED]>");
  EXPECT_EQ(redactor.Apply(R"(<a\tb\rcd>)"), "<[REDACTED]>");
}

TEST(RedactorTest, NonAsciiForms) {
  Redactor redactor;
  redactor.Add("café-secret");
  EXPECT_EQ(redactor.Apply("x café-secret y"), "x [REDACTED] y");        // raw, JSON, repr
  EXPECT_EQ(redactor.Apply(R"("caf\u00e9-secret")"), "\"[REDACTED]\"");  // json.dumps
  // Upper-case hex is not what Python emits.
  EXPECT_EQ(redactor.Apply(R"(caf\u00E9-secret)"), R"(caf\u00E9-secret)");
}

TEST(RedactorTest, EmojiAboveBmpUsesSurrogatePairs) {
  Redactor redactor;
  redactor.Add("key\U0001F600key");
  EXPECT_EQ(redactor.Apply("<key\U0001F600key>"), "<[REDACTED]>");
  EXPECT_EQ(redactor.Apply(R"(<key\ud83d\ude00key>)"), "<[REDACTED]>");
}

TEST(RedactorTest, ReprQuoteSpellings) {
  Redactor redactor;
  // Both quotes: repr quotes with ' and escapes it: 'it\'s"both'
  redactor.Add("it's\"both");
  EXPECT_EQ(redactor.Apply(R"(['it\'s"both'])"), "['[REDACTED]']");
  EXPECT_EQ(redactor.Apply(R"(it's\"both)"), "[REDACTED]");  // JSON

  // Only a single quote: repr uses double quotes ("it's only"); \' is matched too.
  Redactor single;
  single.Add("it's only");
  EXPECT_EQ(single.Apply(R"(["it's only"])"), "[\"[REDACTED]\"]");
  EXPECT_EQ(single.Apply(R"(['it\'s only'])"), "['[REDACTED]']");
}

TEST(RedactorTest, ReprOfNonPrintableNonAscii) {
  Redactor redactor;
  redactor.Add("ab\u00a0cd\u200b");
  // Python: repr('ab\xa0cd\u200b') == "'ab\\xa0cd\\u200b'"
  EXPECT_EQ(redactor.Apply(R"('ab\xa0cd\u200b')"), "'[REDACTED]'");
  EXPECT_EQ(redactor.Apply(R"("ab\u00a0cd\u200b")"), "\"[REDACTED]\"");  // json.dumps
  EXPECT_EQ(redactor.Apply("ab\u00a0cd\u200b"), "[REDACTED]");
}

TEST(RedactorTest, LongestMatchWins) {
  Redactor redactor;
  redactor.Add("abcd1234");
  redactor.Add("abcd1234efgh");
  EXPECT_EQ(redactor.size(), 2u);
  EXPECT_EQ(redactor.Apply("x abcd1234efgh x"), "x [REDACTED] x");
  EXPECT_EQ(redactor.Apply("x abcd1234efgX x"), "x [REDACTED]efgX x");
  EXPECT_EQ(redactor.Apply("abcd1234abcd1234efgh"), "[REDACTED][REDACTED]");

  // The same, added in the other order.
  Redactor reversed;
  reversed.Add("abcd1234efgh");
  reversed.Add("abcd1234");
  EXPECT_EQ(reversed.Apply("x abcd1234efgh x"), "x [REDACTED] x");
}

TEST(RedactorTest, OverlappingSecretsScanLeftToRight) {
  Redactor redactor;
  redactor.Add("aaaabbbb");
  redactor.Add("bbbbcccc");
  // The leftmost match is taken and its bytes are not scanned again.
  EXPECT_EQ(redactor.Apply("aaaabbbbcccc"), "[REDACTED]cccc");
  EXPECT_EQ(redactor.Apply("xbbbbcccc"), "x[REDACTED]");
}

TEST(RedactorTest, AdjacentOccurrences) {
  Redactor redactor;
  redactor.Add("SECRET");
  EXPECT_EQ(redactor.Apply("SECRETSECRET"), "[REDACTED][REDACTED]");
  EXPECT_EQ(redactor.Apply("SECRETSECRETSECRET!"), "[REDACTED][REDACTED][REDACTED]!");
  EXPECT_EQ(redactor.Apply("SECRE SECRET ECRET"), "SECRE [REDACTED] ECRET");
}

TEST(RedactorTest, ReplacementIsNotRescanned) {
  Redactor redactor;
  redactor.Add("REDACTED]x");
  redactor.Add("SECRET");
  EXPECT_EQ(redactor.Apply("SECRETx"), "[REDACTED]x");
}

TEST(RedactorTest, ShortSecretsAreIgnored) {
  Redactor redactor;
  redactor.Add("");
  redactor.Add("1");
  redactor.Add("yes");
  redactor.Add("\u00e9\u00e9\u00e9");  // 3 code points, 6 bytes
  redactor.Add("\xff\xfe\xfd");        // not UTF-8: 3 bytes
  EXPECT_EQ(redactor.size(), 0u);
  EXPECT_EQ(redactor.Apply("1 yes \u00e9\u00e9\u00e9"), "1 yes \u00e9\u00e9\u00e9");

  redactor.Add("abcd");                      // 4 characters: redacted
  redactor.Add("\u00e9\u00e9\u00e9\u00e9");  // 4 code points
  redactor.Add("\xff\xfe\xfd\xfc");          // 4 bytes, not UTF-8
  EXPECT_EQ(redactor.size(), 3u);
  EXPECT_EQ(redactor.Apply("abcd \u00e9\u00e9\u00e9\u00e9 \xff\xfe\xfd\xfc"),
            "[REDACTED] [REDACTED] [REDACTED]");
}

TEST(RedactorTest, InvalidUtf8SecretGetsJsonEscapes) {
  Redactor redactor;
  redactor.Add("\xff\n\xfe\"x");
  EXPECT_EQ(redactor.Apply("<\xff\n\xfe\"x>"), "<[REDACTED]>");
  EXPECT_EQ(redactor.Apply("<\xff\\n\xfe\\\"x>"), "<[REDACTED]>");
}

TEST(RedactorTest, DuplicateAddIsIgnored) {
  Redactor redactor;
  redactor.Add("duplicate-secret");
  redactor.Add("duplicate-secret");
  redactor.Add(std::string("duplicate-secret"));
  EXPECT_EQ(redactor.size(), 1u);
  redactor.Add("duplicate-secreT");
  EXPECT_EQ(redactor.size(), 2u);
  EXPECT_EQ(redactor.Apply("duplicate-secret"), "[REDACTED]");
}

TEST(RedactorTest, CutAtEndRedactsATrailingPrefix) {
  Redactor redactor;
  redactor.Add("SECRETVALUE");
  // A prefix of length 1 and of length n-1.
  EXPECT_EQ(redactor.Apply("log S", true), "log [REDACTED]");
  EXPECT_EQ(redactor.Apply("log SECRETVALU", true), "log [REDACTED]");
  // Without cut_at_end the tail stays.
  EXPECT_EQ(redactor.Apply("log S", false), "log S");
  EXPECT_EQ(redactor.Apply("log SECRETVALU"), "log SECRETVALU");
  // A tail that is not a prefix is kept.
  EXPECT_EQ(redactor.Apply("log SECX", true), "log SECX");
  EXPECT_EQ(redactor.Apply("log X", true), "log X");
  // A whole occurrence at the end, and one followed by a piece of the next.
  EXPECT_EQ(redactor.Apply("log SECRETVALUE", true), "log [REDACTED]");
  EXPECT_EQ(redactor.Apply("SECRETVALUESEC", true), "[REDACTED][REDACTED]");
  // The earliest start wins: "SSEC" ends with "SEC", but "SSEC" is no prefix itself.
  EXPECT_EQ(redactor.Apply("SSEC", true), "S[REDACTED]");
  EXPECT_EQ(redactor.Apply("", true), "");
}

TEST(RedactorTest, CutAtEndPrefersTheLongerCutForm) {
  Redactor redactor;
  redactor.Add("abcd1234");
  redactor.Add("abcd1234efgh");
  // "abcd1234" matches in full, but the text may have been cut inside the longer secret.
  EXPECT_EQ(redactor.Apply("xx abcd1234ef", true), "xx [REDACTED]");
  EXPECT_EQ(redactor.Apply("xx abcd1234ef", false), "xx [REDACTED]ef");
}

TEST(RedactorTest, CutAtEndMatchesEscapedForms) {
  Redactor redactor;
  redactor.Add("ab\"cdef");
  // A JSON string cut inside the escaped quote.
  EXPECT_EQ(redactor.Apply(R"({"k": "ab\)", true), R"({"k": "[REDACTED])");
}

TEST(RedactorTest, ApplyToJsonKeepsValidDocuments) {
  Redactor redactor;
  redactor.Add("SECRET-1234");
  const std::string doc = R"({"token": "SECRET-1234", "n": 1, "list": ["xSECRET-1234x"]})";
  const std::string redacted = redactor.ApplyToJson(doc);
  EXPECT_EQ(redacted, R"({"token": "[REDACTED]", "n": 1, "list": ["x[REDACTED]x"]})");
  EXPECT_TRUE(nlohmann::json::accept(redacted));
  EXPECT_EQ(redactor.ApplyToJson("null"), "null");
}

TEST(RedactorTest, ApplyToJsonWrapsWhatNoLongerParses) {
  Redactor redactor;
  redactor.Add("12345678");
  const std::string redacted = redactor.ApplyToJson(R"({"n": 12345678})");
  ASSERT_TRUE(nlohmann::json::accept(redacted));
  const auto parsed = nlohmann::json::parse(redacted);
  ASSERT_TRUE(parsed.is_string());
  EXPECT_EQ(parsed.get<std::string>(), R"({"n": [REDACTED]})");
}

TEST(RedactorTest, ApplyToJsonWrapsInvalidInput) {
  Redactor redactor;
  redactor.Add("SECRET-1234");
  const std::string redacted = redactor.ApplyToJson("not json SECRET-1234");
  ASSERT_TRUE(nlohmann::json::accept(redacted));
  EXPECT_EQ(nlohmann::json::parse(redacted).get<std::string>(), "not json [REDACTED]");
  // Ill-formed UTF-8 does not throw.
  const std::string bad = redactor.ApplyToJson("\xff SECRET-1234");
  EXPECT_TRUE(nlohmann::json::accept(bad));
  EXPECT_EQ(bad.find("SECRET"), std::string::npos);
}

TEST(RedactorTest, ApplyToJsonWithSecretAcrossTokens) {
  Redactor redactor;
  redactor.Add("1, \"b");
  const std::string redacted = redactor.ApplyToJson(R"({"a": 1, "b": 2})");
  ASSERT_TRUE(nlohmann::json::accept(redacted));
  EXPECT_EQ(nlohmann::json::parse(redacted).get<std::string>(), R"({"a": [REDACTED]": 2})");
}

TEST(RedactorTest, ConcurrentAddAndApply) {
  Redactor redactor;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&redactor, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string secret = "secret-";
        secret += std::to_string(t);
        secret += '-';
        secret += std::to_string(i);
        redactor.Add(secret);
        std::string text = "<";
        text += secret;
        text += '>';
        EXPECT_EQ(redactor.Apply(text), "<[REDACTED]>");
      }
    });
  }
  std::vector<std::thread> readers;
  for (int t = 0; t < kThreads; ++t) {
    readers.emplace_back([&redactor, &stop] {
      while (!stop.load()) {
        std::string out = redactor.Apply("secret-0-0 and secret-1-1 and more text", true);
        EXPECT_FALSE(out.empty());
        (void)redactor.size();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  stop = true;
  for (auto& thread : readers) thread.join();
  EXPECT_EQ(redactor.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(redactor.Apply("secret-3-49 secret-0-0"), "[REDACTED] [REDACTED]");
}

TEST(RedactorTest, LargeTextWithManySecrets) {
  Redactor redactor;
  std::mt19937 rng(42);
  const std::string alphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\"\\\n";
  std::vector<std::string> secrets;
  for (int i = 0; i < 50; ++i) {
    std::string secret;
    for (int j = 0; j < 24; ++j) secret += alphabet[rng() % alphabet.size()];
    secrets.push_back(secret);
    redactor.Add(secret);
  }
  ASSERT_EQ(redactor.size(), 50u);

  // 1 MiB of log-like text made of letters, with a secret every 10 KiB or so.
  std::string text;
  std::size_t planted = 0;
  while (text.size() < (1u << 20)) {
    for (int j = 0; j < 10'000; ++j) text += static_cast<char>('a' + rng() % 26);
    text += ' ';
    text += secrets[planted % secrets.size()];
    text += '\n';
    ++planted;
  }
  const std::string out = redactor.Apply(text);
  EXPECT_EQ(CountRedacted(out), planted);
  for (const std::string& secret : secrets) EXPECT_EQ(out.find(secret), std::string::npos);

  // The worst case for the first-byte index: every byte starts many forms.
  Redactor same_start;
  for (int i = 0; i < 10; ++i) {
    std::string secret(20, 'a');
    secret += std::to_string(i);
    same_start.Add(secret);
  }
  const std::string as(1u << 20, 'a');
  std::string expected = as.substr(0, as.size() - 20);  // 20 'a's start every secret
  expected += kRedacted;
  EXPECT_EQ(same_start.Apply(as, true), expected);
  EXPECT_EQ(same_start.Apply(as, false), as);
}

}  // namespace
}  // namespace bifrost::workflow
