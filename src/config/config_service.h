// Organizations and their configuration, on top of a store and the barrier.
//
// Tenant isolation by construction: code that serves a request for one organization is
// handed a ScopeConfig for that organization (ConfigService::ForOrg). Every method of a
// ScopeConfig takes config keys only; it cannot name another organization, so a request
// for org A cannot read, write or list org B. Lookups in an organization fall back to the
// global scope (an org entry overrides the global entry of the same key).
//
// Writes are all-or-nothing: a value is validated (and sealed, for secrets) before the
// write transaction starts, and a rejected write changes nothing. Secrets are sealed with
// their scope's data key (barrier/barrier.h); inside the write transaction the barrier checks
// that key is still the scope's active one, so a write racing a key rotation is sealed again
// under the new key rather than stored under the retired one.
//
// Thread-safety: ConfigService and ScopeConfig are safe to use from many threads; they
// hold no mutable state of their own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "barrier/barrier.h"
#include "common/clock.h"
#include "common/status.h"
#include "config/config_types.h"
#include "crypto/secure_buffer.h"
#include "store/store.h"

namespace bifrost::config {

struct ConfigWrite {
  std::string key;
  ConfigType type = ConfigType::kString;
  crypto::SecureBuffer value;  // the plaintext, whatever the type; wiped after use
  std::string description;
  std::string actor;  // recorded as updated_by
  // nullopt: create or replace; 0: create only (kAlreadyExists if present);
  // n > 0: replace only if the stored version is n (kConflict otherwise, kNotFound if absent).
  std::optional<std::int64_t> expected_version;
};

// A resolved entry together with its plaintext value (any type). The value is wiped when
// this goes out of scope.
struct RevealedValue {
  ConfigEntry entry;
  crypto::SecureBuffer value;
};

class ScopeConfig;

class ConfigService {
 public:
  // `store`, `barrier` and `clock` must outlive the service.
  ConfigService(store::Store& store, const barrier::Barrier& barrier, const Clock& clock,
                Limits limits = {});

  // Organizations. `id` keeps a given UUID (imports); otherwise a random one is made. The
  // organization's data key is created in the same transaction.
  // `before_commit` (optional) runs inside the write transaction, after the change and
  // before the commit (the audit record of the change); its error rolls everything back.
  Result<Organization> CreateOrganization(
      std::string_view name, std::optional<std::string> id = std::nullopt,
      const store::CommitHookWith<Organization>& before_commit = {});
  Result<Organization> GetOrganization(std::string_view id) const;
  Result<Organization> GetOrganizationByName(std::string_view name) const;
  Result<std::vector<Organization>> ListOrganizations() const;
  // Deletes the organization and all of its config, and its data keys (crypto-shredding: its
  // secrets cannot be opened again, not even from a backup of their rows; see
  // docs/storage-format.md for values from before data keys). Once the deletion committed,
  // the barrier forgets the keys and the store releases the deleted bytes from its files
  // (store::Store::ReleaseDeletedData; a brief wait). If that
  // release fails the organization is deleted all the same and this returns success, but
  // `on_release_failure` (optional) is told why: the wrapped key may remain in the store's
  // files (the SQLite WAL) until the next checkpoint.
  Status DeleteOrganization(std::string_view id, const store::CommitHook& before_commit = {},
                            const std::function<void(const Error&)>& on_release_failure = {});

  // The view of one organization (kNotFound if it does not exist), or of the global scope.
  Result<ScopeConfig> ForOrg(std::string_view org_id) const;
  ScopeConfig ForGlobal() const;

  const Limits& limits() const { return limits_; }

 private:
  friend class ScopeConfig;
  store::Store* store_;
  const barrier::Barrier* barrier_;
  const Clock* clock_;
  Limits limits_;
};

// A view of one scope. Make one per request (ConfigService::ForOrg checks the organization
// exists); a view kept after its organization was deleted sees only the global entries.
class ScopeConfig {
 public:
  const store::Scope& scope() const { return scope_; }

  // Creates or replaces the entry in this scope (see ConfigWrite::expected_version).
  // `before_commit` as for CreateOrganization; it sees the entry as written (version 1: a
  // new entry).
  Result<ConfigEntry> Set(const ConfigWrite& write,
                          const store::CommitHookWith<ConfigEntry>& before_commit = {}) const;
  // Changes only the description of this scope's own entry: value, type (and a secret's
  // sealed value) are kept, the version increases. kNotFound if this scope has no such entry
  // (a global entry seen from an organization is not its own); kConflict when
  // `expected_version` is given and differs. `before_commit` as for Set.
  Result<ConfigEntry> SetDescription(
      std::string_view key, std::string_view description, std::string_view actor,
      std::optional<std::int64_t> expected_version,
      const store::CommitHookWith<ConfigEntry>& before_commit = {}) const;
  // The entry visible in this scope: the org's own, else the global one. kNotFound if
  // neither exists. A secret's value is not included.
  Result<ConfigEntry> Get(std::string_view key) const;
  // Like Get, with the plaintext value (decrypted for secrets).
  Result<RevealedValue> Reveal(std::string_view key) const;
  // The merged view, ordered by key: this scope's entries, plus global entries it does not
  // override. Each entry says where it came from. No secret values.
  Result<std::vector<ConfigEntry>> List() const;
  // Deletes this scope's own entry (never the global one behind it). kNotFound if absent.
  Status Delete(std::string_view key, std::optional<std::int64_t> expected_version = {},
                const store::CommitHook& before_commit = {}) const;

 private:
  friend class ConfigService;
  ScopeConfig(const ConfigService& service, store::Scope scope)
      : service_(&service), scope_(std::move(scope)) {}

  // The row for `key` in this scope or, failing that, in the global scope.
  Result<std::optional<store::ConfigRow>> Resolve(store::Txn& txn, std::string_view key) const;
  ConfigEntry ToEntry(const store::ConfigRow& row) const;

  const ConfigService* service_;
  store::Scope scope_;
};

}  // namespace bifrost::config
