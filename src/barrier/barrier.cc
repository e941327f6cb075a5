#include "barrier/barrier.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/base64.h"
#include "common/text.h"

namespace bifrost::barrier {
namespace {

constexpr std::uint8_t kBindingVersion = 0x01;
constexpr std::uint8_t kWrapFormat = 0x01;
constexpr std::size_t kKeyIdSize = 16;
// ListDataKeys page size: Open reads every key at start, so a page per 1000 organizations.
constexpr std::size_t kDataKeyPage = 1000;
// How many organizations a refusal names before "and N more".
constexpr std::size_t kMaxOrgsNamed = 10;
// Attempts to find or make a scope's active key when another writer races us to it.
constexpr int kActiveKeyAttempts = 3;

constexpr std::string_view kConfigPurpose = "config";
constexpr std::string_view kAuditPurpose = "audit";
constexpr std::string_view kActive = "active";
constexpr std::string_view kRetired = "retired";

void AppendU16(crypto::SecureBuffer& out, std::size_t n) {
  const std::uint8_t bytes[2] = {static_cast<std::uint8_t>(n >> 8),
                                 static_cast<std::uint8_t>(n & 0xFF)};
  out.Append(std::span<const std::uint8_t>(bytes, 2));
}

// kind byte ('g' global, 'o' organization) || u16 BE len(id) || id. The kind byte keeps the
// global scope apart from any organization id; the length makes the encoding unambiguous.
void AppendScope(crypto::SecureBuffer& out, const store::Scope& scope) {
  const std::uint8_t kind = static_cast<std::uint8_t>(scope.is_global() ? 'g' : 'o');
  out.Append(std::span<const std::uint8_t>(&kind, 1));
  const std::string_view id = scope.is_global() ? std::string_view() : scope.org_id();
  AppendU16(out, id.size());
  out.Append(id);
}

// Binding header || value. The header is authenticated together with the value by the
// Fernet MAC, which is what ties the ciphertext to its row.
crypto::SecureBuffer BoundPlaintext(const store::Scope& scope, std::string_view key,
                                    std::string_view value) {
  crypto::SecureBuffer out;
  out.Append(std::span<const std::uint8_t>(&kBindingVersion, 1));
  AppendScope(out, scope);
  AppendU16(out, key.size());
  out.Append(key);
  out.Append(value);
  return out;
}

// The header of a wrapped key's plaintext: 0x01 || purpose ('c' config, 'a' audit) || scope.
// Authenticated with the key bytes under the master key, so a wrapped key copied onto another
// scope's (or purpose's) row fails to unwrap there.
crypto::SecureBuffer WrapHeader(std::string_view purpose, const store::Scope& scope) {
  crypto::SecureBuffer out;
  const std::uint8_t head[2] = {kWrapFormat,
                                static_cast<std::uint8_t>(purpose == kAuditPurpose ? 'a' : 'c')};
  out.Append(std::span<const std::uint8_t>(head, 2));
  AppendScope(out, scope);
  return out;
}

std::string ScopeLabel(const store::Scope& scope) {
  if (scope.is_global()) return "the global scope";
  std::string label = "organization ";
  label += scope.org_id();
  return label;
}

std::string RowName(const store::Scope& scope, std::string_view key) {
  std::string name = "config ";
  name += QuoteForMessage(key);
  name += " in ";
  name += ScopeLabel(scope);
  return name;
}

std::string DataKeyName(const store::DataKeyRow& row) {
  std::string name = row.purpose == kAuditPurpose ? "audit key " : "data key ";
  name += row.id;
  if (row.purpose != kAuditPurpose) {
    name += " of ";
    name += ScopeLabel(row.scope);
  }
  return name;
}

std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

template <typename Set>
std::vector<std::string> ToVector(const Set& set) {
  return std::vector<std::string>(set.begin(), set.end());
}

Status CheckBindable(const store::Scope& scope, std::string_view key) {
  if (scope.name().size() > 0xFFFF || key.size() > 0xFFFF) {
    return Fail(ErrorCode::kInvalidArgument, "scope or key too long to bind");
  }
  return Ok();
}

// A Fernet key's 32 bytes, which FernetKey only hands out in text form.
Result<crypto::SecureBuffer> FernetKeyBytes(const crypto::FernetKey& key) {
  const crypto::SecureBuffer text = key.ToBase64();
  const auto size = Base64UrlDecodedSize(text.view());
  if (!size || *size != crypto::kFernetKeySize) {
    return Fail(ErrorCode::kInternal, "a data key has an unexpected encoding");
  }
  crypto::SecureBuffer raw(*size);
  const auto written = Base64UrlDecodeInto(text.view(), raw.mutable_bytes());
  if (!written || *written != crypto::kFernetKeySize) {
    return Fail(ErrorCode::kInternal, "a data key has an unexpected encoding");
  }
  return raw;
}

// The wrapped form of `key_bytes` (docs/storage-format.md, "Data keys").
Result<std::string> WrapKeyBytes(const crypto::FernetKey& master, std::string_view purpose,
                                 const store::Scope& scope, std::span<const std::uint8_t> key_bytes,
                                 std::int64_t now_seconds) {
  crypto::SecureBuffer plaintext = WrapHeader(purpose, scope);
  plaintext.Append(key_bytes);
  return master.Encrypt(plaintext.view(), now_seconds);
}

// The key bytes of a stored row, after every check but the key's id: the purpose is known,
// its master key is configured, the token authenticates under it, and the header names the
// row's own purpose and scope.
Result<crypto::SecureBuffer> UnwrapKeyBytes(const crypto::Keyring& ring,
                                            const store::DataKeyRow& row,
                                            std::int64_t now_seconds) {
  if (row.purpose != kConfigPurpose && row.purpose != kAuditPurpose) {
    return Fail(ErrorCode::kCorrupt, "data key " + row.id + " has an unknown purpose");
  }
  const crypto::FernetKey* master = ring.Find(row.master_key_id);
  if (master == nullptr) {
    return Fail(ErrorCode::kKeyMismatch, DataKeyName(row) + " is wrapped by master key " +
                                             row.master_key_id + ", which is not configured");
  }
  auto plaintext = master->Decrypt(row.wrapped, {.now_seconds = now_seconds});
  if (!plaintext) {
    return Fail(ErrorCode::kIntegrity,
                "wrapped " + DataKeyName(row) + " failed its integrity check (" +
                    std::string(crypto::FernetErrorMessage(plaintext.error())) + ")");
  }
  const crypto::SecureBuffer header = WrapHeader(row.purpose, row.scope);
  // Lengths are public; the header bytes are compared in constant time.
  if (plaintext->size() != header.size() + crypto::kFernetKeySize ||
      !header.Equals(plaintext->view().substr(0, header.size()))) {
    return Fail(ErrorCode::kIntegrity,
                "wrapped " + DataKeyName(row) + " is bound to another scope; it was copied here");
  }
  return crypto::SecureBuffer::From(plaintext->view().substr(header.size()));
}

Result<DataKey> UnwrapConfigKey(const crypto::Keyring& ring, const store::DataKeyRow& row,
                                std::int64_t now_seconds) {
  if (row.purpose != kConfigPurpose) {
    return Fail(ErrorCode::kIntegrity, "data key " + row.id + " is not a config key");
  }
  BIFROST_ASSIGN_OR_RETURN(const crypto::SecureBuffer bytes,
                           UnwrapKeyBytes(ring, row, now_seconds));
  BIFROST_ASSIGN_OR_RETURN(crypto::FernetKey key, crypto::FernetKey::FromBytes(bytes.bytes()));
  // The header binds scope and purpose; the id binds the row itself (two keys of one scope
  // swapped between their rows would otherwise each open the other's values).
  if (key.id() != row.id) {
    return Fail(ErrorCode::kIntegrity,
                "wrapped " + DataKeyName(row) + " holds a key with another id");
  }
  return DataKey{.id = row.id, .scope = row.scope, .key = std::move(key)};
}

Result<crypto::MacKey> UnwrapAuditKey(const crypto::Keyring& ring, const store::DataKeyRow& row,
                                      std::int64_t now_seconds) {
  if (row.purpose != kAuditPurpose) {
    return Fail(ErrorCode::kIntegrity, "data key " + row.id + " is not an audit key");
  }
  BIFROST_ASSIGN_OR_RETURN(const crypto::SecureBuffer bytes,
                           UnwrapKeyBytes(ring, row, now_seconds));
  BIFROST_ASSIGN_OR_RETURN(crypto::MacKey key, crypto::MacKey::FromBytes(bytes.bytes()));
  if (key.id() != row.id) {
    return Fail(ErrorCode::kIntegrity,
                "wrapped " + DataKeyName(row) + " holds a key with another id");
  }
  return key;
}

// Checks that the id inside a wrapped key matches its row, whatever its purpose.
Status CheckUnwrappedId(const store::DataKeyRow& row, const crypto::SecureBuffer& bytes) {
  std::string id;
  if (row.purpose == kAuditPurpose) {
    BIFROST_ASSIGN_OR_RETURN(const crypto::MacKey key, crypto::MacKey::FromBytes(bytes.bytes()));
    id = key.id();
  } else {
    BIFROST_ASSIGN_OR_RETURN(const crypto::FernetKey key,
                             crypto::FernetKey::FromBytes(bytes.bytes()));
    id = key.id();
  }
  if (id != row.id) {
    return Fail(ErrorCode::kIntegrity,
                "wrapped " + DataKeyName(row) + " holds a key with another id");
  }
  return Ok();
}

std::string ScopeKey(const store::Scope& scope) {
  if (scope.is_global()) return "g";
  std::string key = "o:";
  key += scope.org_id();
  return key;
}

}  // namespace

// What the barrier keeps between calls: the store it was opened on, and unwrapped data keys.
//
// `keys` may hold any key that was unwrapped from an authentic row (or made here), even one
// made in a transaction that later rolled back: a key is only ever used for envelopes that
// name it, and such an envelope exists only if the key did. `active`, which decides what new
// values are sealed with, holds only keys read from committed state, never one made inside
// a caller's transaction that might still roll back. `forgotten` holds the scopes of
// organizations deleted through this barrier: a read that raced with the deletion (its
// snapshot older than the delete) must not put their keys back into memory afterwards. (An
// organization re-created with the same id, which only an import does, is then served
// without caching: correct, one unwrap per use.) Deletions by other processes are not
// announced: Open confirms through the caller's transaction that a cached key's row still
// exists before using it, and drops the key when it does not (FindKey).
struct Barrier::Cache {
  store::Store* store = nullptr;  // the store Open checked; outlives the barrier

  std::mutex mutex;
  std::unordered_map<std::string, DataKey> keys;        // by key id
  std::unordered_map<std::string, std::string> active;  // ScopeKey -> key id
  std::unordered_set<std::string> created;              // ids made by CreateDataKey
  std::unordered_set<std::string> forgotten;            // ScopeKeys of deleted orgs

  std::optional<DataKey> Find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = keys.find(id);
    if (it == keys.end()) return std::nullopt;
    return it->second;
  }

  std::optional<DataKey> Active(const store::Scope& scope) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto id = active.find(ScopeKey(scope));
    if (id == active.end()) return std::nullopt;
    const auto it = keys.find(id->second);
    if (it == keys.end()) return std::nullopt;
    return it->second;
  }

  void Put(const DataKey& key) {
    std::lock_guard<std::mutex> lock(mutex);
    PutLocked(key);
  }

  // `key` was read as its scope's active key from committed state.
  void SetActive(const DataKey& key) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!PutLocked(key)) return;
    active.insert_or_assign(ScopeKey(key.scope), key.id);
  }

  void DropActive(const store::Scope& scope) {
    std::lock_guard<std::mutex> lock(mutex);
    active.erase(ScopeKey(scope));
  }

  void NoteCreated(const DataKey& key) {
    std::lock_guard<std::mutex> lock(mutex);
    created.insert(key.id);
    PutLocked(key);
  }

  bool WasCreatedHere(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex);
    return created.contains(id);
  }

  // The key's row is gone from the store (another process deleted its organization).
  void Drop(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex);
    keys.erase(id);
    std::erase_if(active, [&](const auto& entry) { return entry.second == id; });
  }

  void Forget(const store::Scope& scope) {
    std::lock_guard<std::mutex> lock(mutex);
    const std::string scope_key = ScopeKey(scope);
    active.erase(scope_key);
    std::erase_if(keys, [&](const auto& entry) { return entry.second.scope == scope; });
    if (!scope.is_global()) forgotten.insert(scope_key);
  }

  // The key for `row` from memory, else unwrapped (and kept).
  Result<DataKey> Unwrap(const crypto::Keyring& ring, const store::DataKeyRow& row,
                         std::int64_t now_seconds) {
    if (auto cached = Find(row.id);
        cached && cached->scope == row.scope && row.purpose == kConfigPurpose) {
      return std::move(*cached);
    }
    BIFROST_ASSIGN_OR_RETURN(DataKey key, UnwrapConfigKey(ring, row, now_seconds));
    Put(key);
    return key;
  }

 private:
  bool PutLocked(const DataKey& key) {
    if (forgotten.contains(ScopeKey(key.scope))) return false;
    keys.insert_or_assign(key.id, key);
    return true;
  }
};

Barrier::Barrier(crypto::Keyring keyring, const Clock& clock)
    : keyring_(std::move(keyring)), clock_(&clock), cache_(std::make_shared<Cache>()) {}

namespace {

// What Open learns about the data keys and sealed values before deciding anything.
struct KeyUse {
  std::size_t data_keys = 0;       // every stored key, all purposes
  std::size_t readable_keys = 0;   // ... whose master key is configured
  std::int64_t legacy_values = 0;  // values sealed directly by a master key
  std::int64_t readable_legacy = 0;
  std::set<std::string> masters;          // every master key needed (for "none")
  std::set<std::string> missing_masters;  // the unconfigured ones among them
  bool missing_for_legacy = false;        // some missing master seals values directly
  bool global_affected = false;
  bool audit_affected = false;
  std::set<std::string> orgs_affected;  // ids
};

Result<KeyUse> SurveyKeys(const crypto::Keyring& ring, store::Txn& txn,
                          const std::vector<store::KeyCheckRow>& recorded) {
  KeyUse use;
  std::unordered_set<std::string> data_key_ids;
  std::string after;
  while (true) {
    BIFROST_ASSIGN_OR_RETURN(const auto page, txn.ListDataKeys(after, kDataKeyPage));
    for (const auto& row : page) {
      ++use.data_keys;
      data_key_ids.insert(row.id);
      use.masters.insert(row.master_key_id);
      if (ring.Find(row.master_key_id) != nullptr) {
        ++use.readable_keys;
        continue;
      }
      use.missing_masters.insert(row.master_key_id);
      if (row.purpose == kAuditPurpose) {
        use.audit_affected = true;
      } else if (row.scope.is_global()) {
        use.global_affected = true;
      } else {
        use.orgs_affected.insert(row.scope.org_id());
      }
    }
    if (page.size() < kDataKeyPage) break;
    after = page.back().id;
  }
  // A value whose key id is not a data key's was sealed directly by a master key, the format
  // before data keys, and needs that master key. Every master key that ever sealed was the
  // primary of some start, so it is in the key checks; a value naming a key found neither
  // there nor among the data keys lost its key for good (its data key was destroyed with
  // its organization, or the row was forged) and no configuration could open it: it is not
  // a reason to refuse the start, and reading it fails on its own.
  std::unordered_set<std::string> known_masters;
  for (const auto& check : recorded) known_masters.insert(check.key_id);
  BIFROST_ASSIGN_OR_RETURN(const auto counts, txn.CountSealedConfigs());
  for (const auto& count : counts) {
    if (data_key_ids.contains(count.key_id)) continue;
    const bool configured = ring.Find(count.key_id) != nullptr;
    if (!configured && !known_masters.contains(count.key_id)) continue;
    use.legacy_values += count.count;
    use.masters.insert(count.key_id);
    if (configured) {
      use.readable_legacy += count.count;
      continue;
    }
    use.missing_masters.insert(count.key_id);
    use.missing_for_legacy = true;
    if (count.scope.is_global()) {
      use.global_affected = true;
    } else {
      use.orgs_affected.insert(count.scope.org_id());
    }
  }
  return use;
}

std::vector<std::string> RingIds(const crypto::Keyring& ring) {
  std::vector<std::string> ids;
  for (const auto& key : ring.keys()) ids.push_back(key.id());
  return ids;
}

// "organizations acme (<id>), beta (<id>) and 3 more", by name.
Result<std::string> OrgList(store::Txn& txn, const std::set<std::string>& ids) {
  BIFROST_ASSIGN_OR_RETURN(const auto orgs, txn.ListOrgs());  // by name
  std::vector<std::string> named;
  std::set<std::string> unnamed = ids;  // only if a key outlived its org: not by the schema
  for (const auto& org : orgs) {
    if (!ids.contains(org.id)) continue;
    unnamed.erase(org.id);
    named.push_back(org.name + " (" + org.id + ")");
  }
  for (const auto& id : unnamed) named.push_back("(" + id + ")");
  std::string out = named.size() == 1 ? "organization " : "organizations ";
  const std::size_t shown = std::min(named.size(), kMaxOrgsNamed);
  const std::size_t hidden = named.size() - shown;
  named.resize(shown);
  out += Join(named);
  if (hidden > 0) {
    out += " and ";
    out += std::to_string(hidden);
    out += " more";
  }
  return out;
}

// The refusal for a key set that leaves some data key or value unreadable (never succeeds).
Status RefuseUnreadableKeys(const crypto::Keyring& ring, store::Txn& txn, const KeyUse& use) {
  const std::string configured = Join(RingIds(ring));
  if (use.readable_keys == 0 && use.readable_legacy == 0) {
    std::string message = "none of the ";
    if (use.data_keys > 0) {
      message += std::to_string(use.data_keys);
      message += " data keys";
    }
    if (use.legacy_values > 0) {
      message += use.data_keys > 0 ? " and " : "";
      message += std::to_string(use.legacy_values);
      message += " values sealed directly by a master key";
    }
    message += use.legacy_values > 0 ? " can be opened" : " can be unwrapped";
    message += " with the configured keys: they are ";
    message += use.legacy_values > 0 ? "sealed by" : "wrapped by";
    message += " master key(s) ";
    message += Join(ToVector(use.masters));
    message += ", the configured key(s) are ";
    message += configured;
    message +=
        " (BIFROST_SECRET_KEY, BIFROST_SECRET_KEY_PREVIOUS); set BIFROST_SECRET_KEY to this "
        "database's key, or list it in BIFROST_SECRET_KEY_PREVIOUS";
    return Fail(ErrorCode::kKeyMismatch, std::move(message));
  }
  std::vector<std::string> subjects;
  if (use.global_affected) subjects.emplace_back("the global scope");
  if (!use.orgs_affected.empty()) {
    BIFROST_ASSIGN_OR_RETURN(std::string orgs, OrgList(txn, use.orgs_affected));
    subjects.push_back(std::move(orgs));
  }
  if (use.audit_affected) subjects.emplace_back("the audit keys of earlier master keys");
  const bool several = use.missing_masters.size() > 1;
  std::string message = "a previous master key is still needed but not configured: ";
  message += Join(subjects);
  message += " cannot be read: their data keys are wrapped by";
  if (use.missing_for_legacy) message += ", or their values sealed directly by,";
  message += several ? " master keys " : " master key ";
  message += Join(ToVector(use.missing_masters));
  message += several ? ". List those keys" : ". List that key";
  message +=
      " in BIFROST_SECRET_KEY_PREVIOUS and run `bifrost keys rotate` to re-wrap them under the "
      "current key before removing ";
  message += several ? "them." : "it.";
  return Fail(ErrorCode::kKeyMismatch, std::move(message));
}

}  // namespace

Result<Barrier> Barrier::Open(crypto::Keyring keyring, store::Store& store, const Clock& clock,
                              OpenOptions options) {
  Barrier barrier(std::move(keyring), clock);
  barrier.cache_->store = &store;
  const crypto::Keyring& ring = barrier.keyring_;
  const crypto::FernetKey& primary = ring.primary();

  // One transaction for every check and write, so the checks hold for what is written. A
  // refusal returns before Commit: nothing is written.
  BIFROST_ASSIGN_OR_RETURN(
      auto txn, store.Begin(options.read_only ? store::TxnMode::kRead : store::TxnMode::kWrite));

  // (a) Every data key, and every value sealed directly by a master key, must be readable.
  BIFROST_ASSIGN_OR_RETURN(const auto recorded, txn->ListKeyChecks());
  BIFROST_ASSIGN_OR_RETURN(const KeyUse use, SurveyKeys(ring, *txn, recorded));
  if (!use.missing_masters.empty()) {
    return Fail(RefuseUnreadableKeys(ring, *txn, use).error());
  }

  // (b) The key checks.
  bool record_primary = false;
  if (recorded.empty()) {
    // A database that already holds sealed values or data keys but no key check was
    // tampered with or damaged: refuse rather than adopt whatever key we were given.
    BIFROST_ASSIGN_OR_RETURN(const auto sealed, txn->ListConfigsNotSealedBy("", 1));
    if (!sealed.empty() || use.data_keys > 0) {
      return Fail(ErrorCode::kCorrupt,
                  "the database holds encrypted values but no record of its key; refusing "
                  "to guess which key it uses");
    }
    record_primary = true;
  } else {
    bool any_known = false;
    bool primary_known = false;
    for (const auto& key : ring.keys()) {
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
      for (const auto& row : recorded) theirs.push_back(row.key_id);
      return Fail(ErrorCode::kKeyMismatch,
                  "BIFROST_SECRET_KEY does not match this database: it was created with key " +
                      Join(theirs) + ", the configured key is " + Join(RingIds(ring)));
    }
    record_primary = !primary_known;
  }
  if (options.read_only) return barrier;

  bool wrote = false;
  if (record_primary) {
    BIFROST_RETURN_IF_ERROR(txn->InsertKeyCheck({.key_id = primary.id(),
                                                 .check_value = primary.CheckValue(),
                                                 .added_at = clock.NowMicros()}));
    wrote = true;
  }

  // (c) The audit key of every previous master key, wrapped under the primary, so that the
  // records it signed stay verifiable once that master key is dropped.
  for (const auto& key : ring.keys()) {
    if (key.id() == primary.id()) continue;
    BIFROST_ASSIGN_OR_RETURN(const crypto::MacKey audit_key, crypto::DeriveAuditKey(key));
    BIFROST_ASSIGN_OR_RETURN(const auto existing, txn->GetDataKey(audit_key.id()));
    if (existing) continue;
    const crypto::SecureBuffer bytes = audit_key.ExportBytes();
    BIFROST_ASSIGN_OR_RETURN(std::string wrapped,
                             WrapKeyBytes(primary, kAuditPurpose, store::Scope::Global(),
                                          bytes.bytes(), clock.NowSeconds()));
    BIFROST_RETURN_IF_ERROR(txn->InsertDataKey({.id = audit_key.id(),
                                                .purpose = std::string(kAuditPurpose),
                                                .scope = store::Scope::Global(),
                                                .state = std::string(kRetired),
                                                .wrapped = std::move(wrapped),
                                                .master_key_id = primary.id(),
                                                .created_at = clock.NowMicros()}));
    wrote = true;
  }
  if (wrote) BIFROST_RETURN_IF_ERROR(txn->Commit());
  return barrier;
}

Result<Barrier::Sealed> Barrier::Seal(const store::Scope& scope, std::string_view key,
                                      std::string_view plaintext) const {
  BIFROST_RETURN_IF_ERROR(CheckBindable(scope, key));
  if (auto active = cache_->Active(scope)) return SealWith(*active, scope, key, plaintext);

  for (int attempt = 1;; ++attempt) {
    // The committed active key, if there is one: a read transaction does not hold the writer.
    {
      BIFROST_ASSIGN_OR_RETURN(auto txn, cache_->store->Begin(store::TxnMode::kRead));
      BIFROST_ASSIGN_OR_RETURN(const auto rows, txn->ListScopeDataKeys(scope));
      if (!rows.empty() && rows.front().state == kActive) {
        BIFROST_ASSIGN_OR_RETURN(DataKey active,
                                 cache_->Unwrap(keyring_, rows.front(), clock_->NowSeconds()));
        cache_->SetActive(active);
        return SealWith(active, scope, key, plaintext);
      }
    }
    // None yet: make it in a transaction of our own, which sees any key made meanwhile. A
    // creator racing us on a backend with concurrent writers makes one of us fail on the
    // one-active-key rule (kAlreadyExists); the loser reads the winner's key.
    Result<DataKey> made = [&]() -> Result<DataKey> {
      BIFROST_ASSIGN_OR_RETURN(auto txn, cache_->store->Begin(store::TxnMode::kWrite));
      BIFROST_ASSIGN_OR_RETURN(DataKey active, ActiveKey(*txn, scope));
      BIFROST_RETURN_IF_ERROR(txn->Commit());
      return active;
    }();
    if (made) {
      cache_->SetActive(*made);  // committed now
      return SealWith(*made, scope, key, plaintext);
    }
    if (made.error().code() != ErrorCode::kAlreadyExists || attempt >= kActiveKeyAttempts) {
      return Fail(made.error());
    }
  }
}

Result<Barrier::Sealed> Barrier::EnsureCurrent(store::Txn& txn, const store::Scope& scope,
                                               std::string_view key, std::string_view plaintext,
                                               Sealed sealed) const {
  BIFROST_ASSIGN_OR_RETURN(const auto rows, txn.ListScopeDataKeys(scope));
  const bool has_active = !rows.empty() && rows.front().state == kActive;
  if (has_active && rows.front().id == sealed.key_id) return sealed;

  // The active key changed since Seal (a rotation started), or the value was sealed some
  // other way: seal again under the key this transaction sees as active.
  std::optional<DataKey> current;
  if (has_active) {
    BIFROST_ASSIGN_OR_RETURN(current, cache_->Unwrap(keyring_, rows.front(), clock_->NowSeconds()));
    if (cache_->WasCreatedHere(current->id)) {
      // Possibly made by this very transaction, which may still roll back: not a key to
      // seal later values with. The next Seal reads the committed state instead.
      cache_->DropActive(scope);
    } else {
      // Made by another writer and visible here, so committed.
      cache_->SetActive(*current);
    }
  } else {
    BIFROST_ASSIGN_OR_RETURN(current, CreateDataKey(txn, scope, kActive));
  }
  return SealWith(*current, scope, key, plaintext);
}

Result<DataKey> Barrier::ActiveKey(store::Txn& txn, const store::Scope& scope) const {
  BIFROST_ASSIGN_OR_RETURN(const auto rows, txn.ListScopeDataKeys(scope));
  if (!rows.empty() && rows.front().state == kActive) {
    return cache_->Unwrap(keyring_, rows.front(), clock_->NowSeconds());
  }
  return CreateDataKey(txn, scope, kActive);
}

Result<DataKey> Barrier::CreateDataKey(store::Txn& txn, const store::Scope& scope,
                                       std::string_view state) const {
  if (state != kActive && state != kRetired) {
    return Fail(ErrorCode::kInvalidArgument,
                "a data key's state is 'active' or 'retired', not " + QuoteForMessage(state));
  }
  BIFROST_RETURN_IF_ERROR(CheckBindable(scope, ""));
  const crypto::FernetKey& primary = keyring_.primary();
  BIFROST_ASSIGN_OR_RETURN(crypto::FernetKey key, crypto::FernetKey::Generate());
  BIFROST_ASSIGN_OR_RETURN(const crypto::SecureBuffer bytes, FernetKeyBytes(key));
  BIFROST_ASSIGN_OR_RETURN(std::string wrapped, WrapKeyBytes(primary, kConfigPurpose, scope,
                                                             bytes.bytes(), clock_->NowSeconds()));
  BIFROST_RETURN_IF_ERROR(txn.InsertDataKey({.id = key.id(),
                                             .purpose = std::string(kConfigPurpose),
                                             .scope = scope,
                                             .state = std::string(state),
                                             .wrapped = std::move(wrapped),
                                             .master_key_id = primary.id(),
                                             .created_at = clock_->NowMicros()}));
  DataKey data_key{.id = key.id(), .scope = scope, .key = std::move(key)};
  cache_->NoteCreated(data_key);
  return data_key;
}

Result<Barrier::Sealed> Barrier::SealWith(const DataKey& data_key, const store::Scope& scope,
                                          std::string_view key, std::string_view plaintext) const {
  if (data_key.scope != scope) {
    return Fail(ErrorCode::kInvalidArgument, "data key " + data_key.id + " of " +
                                                 ScopeLabel(data_key.scope) +
                                                 " cannot seal a value of " + ScopeLabel(scope));
  }
  BIFROST_RETURN_IF_ERROR(CheckBindable(scope, key));
  const crypto::SecureBuffer bound = BoundPlaintext(scope, key, plaintext);
  BIFROST_ASSIGN_OR_RETURN(std::string token,
                           data_key.key.Encrypt(bound.view(), clock_->NowSeconds()));
  std::string envelope;
  envelope.reserve(kEnvelopePrefix.size() + data_key.id.size() + 1 + token.size());
  envelope += kEnvelopePrefix;
  envelope += data_key.id;
  envelope += ':';
  envelope += token;
  return Sealed{std::move(envelope), data_key.id};
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

// Errors are phrased to follow "stored secret of <row> " (Open adds it): a key of another
// scope means the envelope was copied here.
Result<std::optional<DataKey>> Barrier::FindKey(store::Txn& txn, const store::Scope& scope,
                                                const std::string& key_id) const {
  constexpr std::string_view kOtherScope =
      "is bound to a different row; it was copied here (its data key belongs to another "
      "scope)";
  std::optional<DataKey> cached = cache_->Find(key_id);
  if (cached && cached->scope != scope) {
    return Fail(ErrorCode::kIntegrity, std::string(kOtherScope));
  }
  // Even a key in memory is used only while `txn` still sees its row: another process may
  // have deleted its organization (crypto-shredding), and an old copy of the organization's
  // rows restored since must not open from this process's memory. A primary-key lookup;
  // the wrapped key is not unwrapped again.
  BIFROST_ASSIGN_OR_RETURN(const auto row, txn.GetDataKey(key_id));
  if (!row || row->purpose != kConfigPurpose || row->scope != scope) {
    if (cached) cache_->Drop(key_id);
    if (!row) return std::optional<DataKey>();  // unknown, as if never cached
    return Fail(ErrorCode::kIntegrity, std::string(kOtherScope));
  }
  if (cached) return cached;
  auto key = cache_->Unwrap(keyring_, *row, clock_->NowSeconds());
  if (!key) return Fail(key.error().code(), "cannot be opened: " + key.error().message());
  return std::optional<DataKey>(std::move(*key));
}

Result<crypto::SecureBuffer> Barrier::Open(store::Txn& txn, const store::Scope& scope,
                                           std::string_view key, std::string_view envelope) const {
  auto key_id = EnvelopeKeyId(envelope);
  if (!key_id) {
    return Fail(ErrorCode::kCorrupt,
                "stored secret of " + RowName(scope, key) + " is " + key_id.error().message());
  }
  auto data_key = FindKey(txn, scope, *key_id);
  if (!data_key) {
    return Fail(data_key.error().code(),
                "stored secret of " + RowName(scope, key) + " " + data_key.error().message());
  }
  // Its scope's data key, else a master key of the ring: a value sealed directly by the
  // master key, the format before data keys, still opens (a data-key rotation re-seals it).
  const crypto::FernetKey* fernet_key =
      data_key->has_value() ? &(*data_key)->key : keyring_.Find(*key_id);
  if (fernet_key == nullptr) {
    std::string message = "stored secret of " + RowName(scope, key) + " was sealed by key ";
    message += *key_id;
    message += scope.is_global() ? ", which this database does not have"
                                 : ", which this database no longer has (its organization was "
                                   "deleted)";
    message += " and which is not configured";
    return Fail(ErrorCode::kKeyMismatch, std::move(message));
  }
  const std::string_view token = envelope.substr(kEnvelopePrefix.size() + kKeyIdSize + 1);
  auto bound = fernet_key->Decrypt(token, {.now_seconds = clock_->NowSeconds()});
  if (!bound) {
    return Fail(ErrorCode::kIntegrity,
                "stored secret of " + RowName(scope, key) + " failed its integrity check (" +
                    std::string(crypto::FernetErrorMessage(bound.error())) + ")");
  }
  // The binding header was authenticated with the value; compare it with the row we read.
  const crypto::SecureBuffer expected_header = BoundPlaintext(scope, key, "");
  if (bound->size() < expected_header.size() ||
      !expected_header.Equals(bound->view().substr(0, expected_header.size()))) {
    return Fail(ErrorCode::kIntegrity, "stored secret of " + RowName(scope, key) +
                                           " is bound to a different row; it was copied here");
  }
  return crypto::SecureBuffer::From(bound->view().substr(expected_header.size()));
}

Result<store::DataKeyRow> Barrier::Rewrap(const store::DataKeyRow& row) const {
  const std::int64_t now = clock_->NowSeconds();
  BIFROST_ASSIGN_OR_RETURN(const crypto::SecureBuffer bytes, UnwrapKeyBytes(keyring_, row, now));
  BIFROST_RETURN_IF_ERROR(CheckUnwrappedId(row, bytes));
  const crypto::FernetKey& primary = keyring_.primary();
  BIFROST_ASSIGN_OR_RETURN(std::string wrapped,
                           WrapKeyBytes(primary, row.purpose, row.scope, bytes.bytes(), now));
  store::DataKeyRow out = row;
  out.wrapped = std::move(wrapped);
  out.master_key_id = primary.id();
  return out;
}

void Barrier::Forget(const store::Scope& scope) const { cache_->Forget(scope); }

Result<std::vector<crypto::MacKey>> Barrier::AuditKeys(store::Txn& txn) const {
  std::vector<crypto::MacKey> keys;
  std::unordered_set<std::string> seen;
  for (const auto& master : keyring_.keys()) {
    BIFROST_ASSIGN_OR_RETURN(crypto::MacKey key, crypto::DeriveAuditKey(master));
    if (seen.insert(key.id()).second) keys.push_back(std::move(key));
  }
  const std::int64_t now = clock_->NowSeconds();
  std::string after;
  while (true) {
    BIFROST_ASSIGN_OR_RETURN(const auto page, txn.ListDataKeys(after, kDataKeyPage));
    for (const auto& row : page) {
      // One whose master key is not configured cannot be unwrapped with this ring (Open
      // refuses such a ring, but a key may have been added since).
      if (row.purpose != kAuditPurpose || seen.contains(row.id) ||
          keyring_.Find(row.master_key_id) == nullptr) {
        continue;
      }
      BIFROST_ASSIGN_OR_RETURN(crypto::MacKey key, UnwrapAuditKey(keyring_, row, now));
      seen.insert(key.id());
      keys.push_back(std::move(key));
    }
    if (page.size() < kDataKeyPage) break;
    after = page.back().id;
  }
  return keys;
}

}  // namespace bifrost::barrier
