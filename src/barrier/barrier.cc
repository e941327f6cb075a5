#include "barrier/barrier.h"

#include <algorithm>

#include "common/text.h"

namespace bifrost::barrier {
namespace {

constexpr std::uint8_t kBindingVersion = 0x01;
constexpr std::size_t kKeyIdSize = 16;

void AppendU16(crypto::SecureBuffer& out, std::size_t n) {
  const std::uint8_t bytes[2] = {static_cast<std::uint8_t>(n >> 8),
                                 static_cast<std::uint8_t>(n & 0xFF)};
  out.Append(std::span<const std::uint8_t>(bytes, 2));
}

// Binding header || value. The header is authenticated together with the value by the
// Fernet MAC, which is what ties the ciphertext to its row. The scope is written as a kind
// byte and an id, so the global scope and an organization can never be taken for each other
// whatever the organization's id.
crypto::SecureBuffer BoundPlaintext(const store::Scope& scope, std::string_view key,
                                    std::string_view value) {
  crypto::SecureBuffer out;
  const std::uint8_t header[2] = {kBindingVersion,
                                  static_cast<std::uint8_t>(scope.is_global() ? 'g' : 'o')};
  out.Append(std::span<const std::uint8_t>(header, 2));
  const std::string_view id = scope.is_global() ? std::string_view() : scope.org_id();
  AppendU16(out, id.size());
  out.Append(id);
  AppendU16(out, key.size());
  out.Append(key);
  out.Append(value);
  return out;
}

std::string RowName(const store::Scope& scope, std::string_view key) {
  return "config " + QuoteForMessage(key) + " in " +
         (scope.is_global() ? std::string("the global scope")
                            : "organization " + std::string(scope.org_id()));
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

}  // namespace

Result<Barrier> Barrier::Open(crypto::Keyring keyring, store::Store& store, const Clock& clock) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(const auto recorded, txn->ListKeyChecks());

  const auto& primary = keyring.primary();
  if (recorded.empty()) {
    // A database that already holds sealed values but no key check was tampered with or
    // damaged: refuse rather than adopt whatever key we were given.
    BIFROST_ASSIGN_OR_RETURN(const auto sealed, txn->ListConfigsNotSealedBy("", 1));
    if (!sealed.empty()) {
      return Fail(ErrorCode::kCorrupt,
                  "the database holds encrypted values but no record of its key; refusing "
                  "to guess which key it uses");
    }
  } else {
    bool any_known = false;
    bool primary_known = false;
    for (const auto& key : keyring.keys()) {
      const std::string check = key.CheckValue();
      for (const auto& row : recorded) {
        if (row.key_id == key.id() && row.check_value == check) {
          any_known = true;
          if (key.id() == primary.id()) primary_known = true;
        }
      }
    }
    if (!any_known) {
      std::vector<std::string> theirs;
      std::vector<std::string> ours;
      for (const auto& row : recorded) theirs.push_back(row.key_id);
      for (const auto& key : keyring.keys()) ours.push_back(key.id());
      return Fail(ErrorCode::kKeyMismatch,
                  "BIFROST_SECRET_KEY does not match this database: it was created with key " +
                      JoinIds(theirs) + ", the configured key is " + JoinIds(ours));
    }
    if (primary_known) return Barrier(std::move(keyring), clock);  // nothing to write
  }
  BIFROST_RETURN_IF_ERROR(txn->InsertKeyCheck(
      {.key_id = primary.id(), .check_value = primary.CheckValue(), .added_at = clock.NowMicros()}));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return Barrier(std::move(keyring), clock);
}

Result<Barrier::Sealed> Barrier::Seal(const store::Scope& scope, std::string_view key,
                                      std::string_view plaintext) const {
  if (scope.name().size() > 0xFFFF || key.size() > 0xFFFF) {
    return Fail(ErrorCode::kInvalidArgument, "scope or key too long to bind");
  }
  const crypto::SecureBuffer bound = BoundPlaintext(scope, key, plaintext);
  BIFROST_ASSIGN_OR_RETURN(auto sealed, keyring_.Encrypt(bound.view(), clock_->NowSeconds()));
  std::string envelope;
  envelope.reserve(kEnvelopePrefix.size() + sealed.key_id.size() + 1 + sealed.token.size());
  envelope += kEnvelopePrefix;
  envelope += sealed.key_id;
  envelope += ':';
  envelope += sealed.token;
  return Sealed{std::move(envelope), std::move(sealed.key_id)};
}

Result<std::string> Barrier::EnvelopeKeyId(std::string_view envelope) {
  if (!envelope.starts_with(kEnvelopePrefix) ||
      envelope.size() < kEnvelopePrefix.size() + kKeyIdSize + 1 ||
      envelope[kEnvelopePrefix.size() + kKeyIdSize] != ':') {
    return Fail(ErrorCode::kCorrupt, "not a sealed value in a known format");
  }
  std::string id(envelope.substr(kEnvelopePrefix.size(), kKeyIdSize));
  const bool hex = std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (!hex) return Fail(ErrorCode::kCorrupt, "sealed value has a malformed key id");
  return id;
}

Result<crypto::SecureBuffer> Barrier::Open(const store::Scope& scope, std::string_view key,
                                           std::string_view envelope) const {
  auto key_id = EnvelopeKeyId(envelope);
  if (!key_id) {
    return Fail(ErrorCode::kCorrupt,
                "stored secret of " + RowName(scope, key) + " is " + key_id.error().message());
  }
  const crypto::FernetKey* fernet_key = keyring_.Find(*key_id);
  if (fernet_key == nullptr) {
    return Fail(ErrorCode::kKeyMismatch, "stored secret of " + RowName(scope, key) +
                                             " was sealed by key " + *key_id +
                                             ", which is not configured");
  }
  const std::string_view token = envelope.substr(kEnvelopePrefix.size() + kKeyIdSize + 1);
  auto bound = fernet_key->Decrypt(token, {.now_seconds = clock_->NowSeconds()});
  if (!bound) {
    return Fail(ErrorCode::kIntegrity, "stored secret of " + RowName(scope, key) +
                                           " failed its integrity check (" +
                                           std::string(crypto::FernetErrorMessage(bound.error())) +
                                           ")");
  }
  // The binding header was authenticated with the value; compare it with the row we read.
  const crypto::SecureBuffer expected_header = BoundPlaintext(scope, key, "");
  if (bound->size() < expected_header.size() ||
      !expected_header.Equals(bound->view().substr(0, expected_header.size()))) {
    return Fail(ErrorCode::kIntegrity, "stored secret of " + RowName(scope, key) +
                                           " is bound to a different row; it was copied here");
  }
  crypto::SecureBuffer value = crypto::SecureBuffer::From(bound->view().substr(expected_header.size()));
  return value;
}

}  // namespace bifrost::barrier
