// The barrier: the single place where config values are encrypted and decrypted.
//
// Everything below the barrier (the store, the database files, backups) only ever sees
// sealed envelopes; everything above it gets plaintext only by calling Open(). Reading this
// file and barrier.cc answers "where does plaintext exist?".
//
// A sealed value is bound to its row: the scope (organization id or "global") and the
// config key are authenticated inside the Fernet token, so an envelope copied onto another
// row or into another organization fails with kIntegrity instead of decrypting. The format
// is specified in docs/storage-format.md.
//
// A Barrier can only be created by checking its keyring against the database
// (Barrier::Open), so a process holding a Barrier is known to hold a key this database was
// used with: a wrong BIFROST_SECRET_KEY is refused before anything is read or written.
//
// Thread-safety: immutable after creation; Seal and Open may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "crypto/keyring.h"
#include "crypto/secure_buffer.h"
#include "store/store.h"

namespace bifrost::barrier {

// The envelope's format tag; the version of docs/storage-format.md it follows.
inline constexpr std::string_view kEnvelopePrefix = "bf1:";

class Barrier {
 public:
  // Verifies `keyring` against the key checks recorded in `store`:
  //  - a fresh database records the primary key's check value;
  //  - otherwise at least one key of the ring must be recorded there, or the result is
  //    kKeyMismatch and nothing is written; a primary not yet recorded (a rotation in
  //    progress) is recorded.
  static Result<Barrier> Open(crypto::Keyring keyring, store::Store& store, const Clock& clock);

  struct Sealed {
    std::string envelope;  // what the store keeps in the value column
    std::string key_id;    // the key that sealed it (the keyring's primary)
  };
  // Encrypts `plaintext` for the row (scope, key) under the primary key.
  Result<Sealed> Seal(const store::Scope& scope, std::string_view key,
                      std::string_view plaintext) const;

  // Decrypts an envelope read from the row (scope, key). kIntegrity when it was tampered
  // with or belongs to another row, kKeyMismatch when it was sealed by a key that is not in
  // the keyring, kCorrupt when it is not an envelope at all. Messages never contain
  // plaintext or envelope bytes.
  Result<crypto::SecureBuffer> Open(const store::Scope& scope, std::string_view key,
                                    std::string_view envelope) const;

  // The id of the key in a well-formed envelope, without decrypting it.
  static Result<std::string> EnvelopeKeyId(std::string_view envelope);

  const crypto::Keyring& keyring() const { return keyring_; }

 private:
  Barrier(crypto::Keyring keyring, const Clock& clock)
      : keyring_(std::move(keyring)), clock_(&clock) {}

  crypto::Keyring keyring_;
  const Clock* clock_;
};

}  // namespace bifrost::barrier
