// The barrier: the single place where config values are encrypted and decrypted, and where
// data keys are wrapped and unwrapped.
//
// Everything below the barrier (the store, the database files, backups) only ever sees
// sealed envelopes and wrapped keys; everything above it gets plaintext only by calling
// Open(). Reading this file and barrier.cc answers "where does plaintext exist?".
//
// Envelope encryption (docs/storage-format.md, "Data keys"): the master keys (the keyring,
// from BIFROST_SECRET_KEY and BIFROST_SECRET_KEY_PREVIOUS) never seal a config value. Each
// scope (an organization, or the global scope) has its own random data key, stored wrapped
// under a master key; values are sealed with their scope's active data key. Rotating the
// master key re-wraps data keys (work proportional to the number of scopes); rotating a
// scope's data key re-seals its values. Deleting an organization deletes its data keys, so
// its values cannot be opened again even from an old copy of their rows.
//
// A sealed value is bound to its row: the scope (organization id or "global") and the
// config key are authenticated inside the Fernet token, so an envelope copied onto another
// row or into another organization fails with kIntegrity instead of decrypting. A wrapped
// data key is bound the same way to its scope and purpose.
//
// A Barrier can only be created by checking its keyring against the database
// (Barrier::Open), so a process holding a Barrier is known to hold a key this database was
// used with and to be able to unwrap every data key: a wrong or missing key is refused
// before anything is read or written.
//
// Thread-safety: Seal, Open and the other const methods may be called from any thread. The
// barrier caches unwrapped data keys (guarded by a mutex); a key another process created or
// rotated is read from the store on first use, through the caller's transaction, and a cached
// key is used only while that transaction still finds its row (another process may have
// destroyed it: an organization deleted, a rotation finished).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "crypto/fernet.h"
#include "crypto/keyring.h"
#include "crypto/mac.h"
#include "crypto/secure_buffer.h"
#include "store/store.h"

namespace bifrost::barrier {

// The envelope's format tag; the version of docs/storage-format.md it follows.
inline constexpr std::string_view kEnvelopePrefix = "bf1:";

// An unwrapped data key of one scope. Key material: never log it.
struct DataKey {
  std::string id;  // key.id()
  store::Scope scope = store::Scope::Global();
  crypto::FernetKey key;
};

struct OpenOptions {
  // Only check, never write: no key check or audit key is recorded (audit verify, keys
  // status). Open still refuses a key set that does not fit the database.
  bool read_only = false;
};

class Barrier {
 public:
  // Verifies `keyring` against the database:
  //  - key checks: a fresh database records the primary key's check value; otherwise at
  //    least one key of the ring must be recorded there, or kKeyMismatch ("does not match
  //    this database") and nothing is written. A primary not yet recorded is recorded.
  //  - data keys: every data key (and every value sealed directly by a master key, the
  //    format before data keys) must be wrapped by a key of the ring. If none can be
  //    unwrapped: kKeyMismatch naming the master keys they need. If some cannot: kKeyMismatch
  //    naming the organizations that cannot be read and the missing master key ids, with
  //    what to do (BIFROST_SECRET_KEY_PREVIOUS).
  //  - audit keys: for every non-primary key of the ring, the audit MAC key derived from it
  //    is stored wrapped under the primary (purpose "audit"), so audit records made under a
  //    master key stay verifiable after that key is dropped.
  // `store` and `clock` must outlive the barrier: Seal uses the store on its own.
  static Result<Barrier> Open(crypto::Keyring keyring, store::Store& store, const Clock& clock,
                              OpenOptions options = {});

  struct Sealed {
    std::string envelope;  // what the store keeps in the value column
    std::string key_id;    // the data key that sealed it
  };
  // Encrypts `plaintext` for the row (scope, key) under the scope's active data key (made,
  // in a write transaction of its own, when the scope has none yet).
  Result<Sealed> Seal(const store::Scope& scope, std::string_view key,
                      std::string_view plaintext) const;

  // For a writer inside its write transaction, about to store `sealed` (made by Seal before
  // the transaction began): if the scope's active data key changed in between (a rotation
  // started), seals `plaintext` again with the current key; otherwise returns `sealed`. After
  // this no value is ever written under a retired key, which is what lets a rotation finish.
  Result<Sealed> EnsureCurrent(store::Txn& txn, const store::Scope& scope, std::string_view key,
                               std::string_view plaintext, Sealed sealed) const;

  // The scope's active data key as `txn` sees it, created in `txn` when it has none (`txn`
  // must then be a write transaction). For writers that seal inside one transaction: the
  // import, organization creation, a rotation.
  Result<DataKey> ActiveKey(store::Txn& txn, const store::Scope& scope) const;
  // Makes a new data key for `scope` and stores it (wrapped under the primary) in `txn` with
  // the given state ("active" | "retired"). The caller retires the old active key first.
  Result<DataKey> CreateDataKey(store::Txn& txn, const store::Scope& scope,
                                std::string_view state) const;
  // Encrypts `plaintext` for the row (scope, key) under `data_key` (which must be of `scope`).
  Result<Sealed> SealWith(const DataKey& data_key, const store::Scope& scope, std::string_view key,
                          std::string_view plaintext) const;

  // Decrypts an envelope read from the row (scope, key) in `txn`. A data key not yet in
  // memory is read through `txn`, so it comes from the same snapshot as the row. kIntegrity
  // when the value was tampered with or belongs to another row, kKeyMismatch when its key is
  // unknown (its organization was deleted, or its master key is not configured), kCorrupt
  // when it is not an envelope at all. Messages never contain plaintext or envelope bytes.
  Result<crypto::SecureBuffer> Open(store::Txn& txn, const store::Scope& scope,
                                    std::string_view key, std::string_view envelope) const;

  // The id of the key in a well-formed envelope, without decrypting it.
  static Result<std::string> EnvelopeKeyId(std::string_view envelope);

  // The row re-wrapped under the primary master key (wrapped and master_key_id replaced).
  // kKeyMismatch if its master key is not in the ring, kIntegrity if it does not unwrap.
  Result<store::DataKeyRow> Rewrap(const store::DataKeyRow& row) const;

  // Drops the cached keys of a scope (its organization was deleted): crypto-shredding
  // reaches memory too.
  void Forget(const store::Scope& scope) const;

  // Every audit MAC key this ring can verify with: the one derived from each master key of
  // the ring (primary first), then the stored audit keys, unwrapped through `txn`.
  Result<std::vector<crypto::MacKey>> AuditKeys(store::Txn& txn) const;

  const crypto::Keyring& keyring() const { return keyring_; }

 private:
  struct Cache;
  Barrier(crypto::Keyring keyring, const Clock& clock);

  // The data key with this id for `scope`: from the cache, else read through `txn` and
  // unwrapped. nullopt when `txn` has no such key of that scope.
  Result<std::optional<DataKey>> FindKey(store::Txn& txn, const store::Scope& scope,
                                         const std::string& key_id) const;

  crypto::Keyring keyring_;
  const Clock* clock_;
  std::shared_ptr<Cache> cache_;  // shared_ptr: a Barrier is movable
};

}  // namespace bifrost::barrier
