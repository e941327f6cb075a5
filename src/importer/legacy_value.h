// Values as the Python Bifrost stores them, turned into what this installation stores.
//
// The Python Bifrost keeps every config value in a JSONB column as {"value": <v>}, with the
// type in a `config_type` enum column. Its API takes every value as a string, so <v> may be
// the typed JSON value (5, true, {...}) or a string holding it ("5", "true", "{...}"); both
// are accepted where they are unambiguous. The result is the canonical text of
// docs/design.md ("Config model") and is checked with config::ValidateValue, so an imported
// value is exactly one the API would accept:
//
//   string  a JSON string: its content.
//   int     a JSON integer, or a string holding a decimal integer (surrounding spaces, a '+'
//           and leading zeros allowed): canonical 64-bit decimal.
//   bool    true/false, or the strings "true"/"false" in any letter case: "true" / "false".
//   json    any JSON value: its exact text as the dump has it (numbers and member order are
//           kept). A JSON string whose content is itself a JSON document (what the Python
//           API stored for json entries) is that document; any other string is kept as the
//           JSON string it is.
//   secret  a non-empty JSON string: its content, the stored form (base64url of a Fernet
//           token), still encrypted. LegacySecretKeys opens it.
//
// Error messages name the rule that was broken and never the value: callers prefix the row
// ("configs.csv line 12 (config <id>, key 'api_key'): ").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config_types.h"
#include "crypto/fernet.h"
#include "crypto/secure_buffer.h"

namespace bifrost::importer {

// The `config_type` column: string, int, bool, json or secret, in any letter case (an enum
// dumped by name reads "SECRET").
Result<config::ConfigType> ParseLegacyConfigType(std::string_view text);

// The canonical text of the value in `jsonb` (the `value` column) for an entry of `type`
// and `key`, validated against `limits`. For secrets: the still encrypted stored text, whose
// plaintext LegacySecretKeys::Open validates.
Result<std::string> CanonicalLegacyValue(config::ConfigType type, std::string_view key,
                                         std::string_view jsonb, const config::Limits& limits);

// The old installation's master keys, derived from its BIFROST_SECRET_KEY both ways it was
// ever derived (crypto::DeriveLegacyHkdfKey, then crypto::DeriveLegacyPbkdf2Key), to open
// its secrets. Key material: never log it. Immutable after Create; share freely.
class LegacySecretKeys {
 public:
  enum class Kdf { kHkdf, kPbkdf2 };

  // Derives both keys (the PBKDF2 one costs 100,000 iterations). `source` names the secret
  // in messages. kInvalidArgument when the secret is empty.
  static Result<LegacySecretKeys> Create(std::string_view source_secret, std::string_view source);

  struct Opened {
    crypto::SecureBuffer plaintext;
    Kdf kdf = Kdf::kHkdf;  // the derivation whose key opened it
  };
  // Opens a stored secret (base64url of a Fernet token): with the HKDF key, then the PBKDF2
  // key; validates the plaintext as a secret value of `key` (non-empty UTF-8 within
  // `limits`). Stored values never expire: no TTL. kIntegrity when neither key opens it,
  // kInvalidArgument when it is not the stored form of a token or the plaintext is not a
  // valid secret. Messages contain neither the value nor the plaintext.
  Result<Opened> Open(std::string_view key, std::string_view stored,
                      const config::Limits& limits) const;

  // Opens with one derivation only (the one an earlier Open reported): no second MAC check
  // for the values of a PBKDF2 installation.
  Result<Opened> OpenWith(Kdf kdf, std::string_view key, std::string_view stored,
                          const config::Limits& limits) const;

 private:
  LegacySecretKeys(crypto::FernetKey hkdf, crypto::FernetKey pbkdf2)
      : hkdf_(std::move(hkdf)), pbkdf2_(std::move(pbkdf2)) {}
  crypto::FernetKey hkdf_;
  crypto::FernetKey pbkdf2_;
};

std::string_view KdfName(LegacySecretKeys::Kdf kdf);  // "HKDF" | "PBKDF2"

}  // namespace bifrost::importer
