#include "config/config_service.h"

#include <map>
#include <optional>

#include "common/text.h"
#include "crypto/random.h"

namespace bifrost::config {
namespace {

Organization ToOrganization(store::OrgRow row) {
  return {std::move(row.id), std::move(row.name), row.created_at};
}

std::string InScope(const store::Scope& scope) {
  return scope.is_global() ? "the global scope" : "organization " + scope.org_id();
}

Result<ConfigType> StoredType(const store::ConfigRow& row) {
  auto type = ParseConfigType(row.type);
  if (!type) {
    return Fail(ErrorCode::kCorrupt, "config " + QuoteForMessage(row.key) + " in " +
                                         InScope(row.scope) + " has an unknown stored type");
  }
  return type;
}

}  // namespace

ConfigService::ConfigService(store::Store& store, const barrier::Barrier& barrier,
                             const Clock& clock, Limits limits)
    : store_(&store), barrier_(&barrier), clock_(&clock), limits_(limits) {}

Result<Organization> ConfigService::CreateOrganization(
    std::string_view name, std::optional<std::string> id,
    const store::CommitHookWith<Organization>& before_commit) {
  BIFROST_RETURN_IF_ERROR(ValidateOrgName(name));
  if (id) {
    if (!IsCanonicalUuid(*id)) {
      return Fail(ErrorCode::kInvalidArgument, "organization id " + QuoteForMessage(*id) +
                                                   " is not a canonical lower-case UUID");
    }
  } else {
    BIFROST_ASSIGN_OR_RETURN(id, crypto::NewUuidV4());
  }
  store::OrgRow row{.id = *id, .name = std::string(name), .created_at = clock_->NowMicros()};
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(const auto by_name, txn->GetOrgByName(name));
  if (by_name) {
    return Fail(ErrorCode::kAlreadyExists,
                "an organization named " + QuoteForMessage(name) + " already exists");
  }
  BIFROST_ASSIGN_OR_RETURN(const auto by_id, txn->GetOrgById(row.id));
  if (by_id) {
    return Fail(ErrorCode::kAlreadyExists, "organization " + row.id + " already exists");
  }
  BIFROST_RETURN_IF_ERROR(txn->InsertOrg(row));
  // The organization's data key is born with it, in the same transaction: every org has
  // one from the start, and a failed creation leaves neither behind.
  BIFROST_RETURN_IF_ERROR(barrier_->ActiveKey(*txn, store::Scope::Org(row.id)));
  Organization created = ToOrganization(std::move(row));
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, created));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return created;
}

Result<Organization> ConfigService::GetOrganization(std::string_view id) const {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(auto row, txn->GetOrgById(id));
  if (!row) {
    return Fail(ErrorCode::kNotFound, "organization " + QuoteForMessage(id) + " does not exist");
  }
  return ToOrganization(std::move(*row));
}

Result<Organization> ConfigService::GetOrganizationByName(std::string_view name) const {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(auto row, txn->GetOrgByName(name));
  if (!row) {
    return Fail(ErrorCode::kNotFound, "no organization is named " + QuoteForMessage(name));
  }
  return ToOrganization(std::move(*row));
}

Result<std::vector<Organization>> ConfigService::ListOrganizations() const {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(auto rows, txn->ListOrgs());
  std::vector<Organization> out;
  out.reserve(rows.size());
  for (auto& row : rows) out.push_back(ToOrganization(std::move(row)));
  return out;
}

Status ConfigService::DeleteOrganization(
    std::string_view id, const store::CommitHook& before_commit,
    const std::function<void(const Error&)>& on_release_failure) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  auto deleted = txn->DeleteOrg(id);
  if (!deleted && deleted.error().code() == ErrorCode::kNotFound) {
    return Fail(ErrorCode::kNotFound, "organization " + QuoteForMessage(id) + " does not exist");
  }
  BIFROST_RETURN_IF_ERROR(deleted);
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  // The store deleted the org's data keys with it (crypto-shredding); drop them from memory
  // too. Only after the commit: a rolled-back deletion leaves the keys in use.
  barrier_->Forget(store::Scope::Org(std::string(id)));
  // And from the files: with a write-ahead log the zeroed key row is only the newest version
  // of its page; the old one stays in the log (and the database file) until a checkpoint.
  // The deletion has committed, so a failure here is reported, not returned.
  txn.reset();
  Status released = store_->ReleaseDeletedData();
  if (!released && on_release_failure) on_release_failure(released.error());
  return Ok();
}

Result<ScopeConfig> ConfigService::ForOrg(std::string_view org_id) const {
  BIFROST_ASSIGN_OR_RETURN(const Organization org, GetOrganization(org_id));
  return ScopeConfig(*this, store::Scope::Org(org.id));
}

ScopeConfig ConfigService::ForGlobal() const { return ScopeConfig(*this, store::Scope::Global()); }

Result<ConfigEntry> ScopeConfig::Set(
    const ConfigWrite& write, const store::CommitHookWith<ConfigEntry>& before_commit) const {
  const ConfigService& s = *service_;
  BIFROST_RETURN_IF_ERROR(ValidateKey(write.key));
  BIFROST_RETURN_IF_ERROR(ValidateValue(write.key, write.type, write.value.view(), s.limits_));
  BIFROST_RETURN_IF_ERROR(ValidateDescription(write.key, write.description, s.limits_));
  BIFROST_RETURN_IF_ERROR(ValidateActor(write.actor));
  if (write.expected_version && *write.expected_version < 0) {
    return Fail(ErrorCode::kInvalidArgument, "expected version must not be negative");
  }

  const UnixMicros now = s.clock_->NowMicros();
  store::ConfigRow row{.scope = scope_,
                       .key = write.key,
                       .type = std::string(ConfigTypeName(write.type)),
                       .value = {},
                       .key_id = std::nullopt,
                       .description = write.description,
                       .created_at = now,
                       .updated_at = now,
                       .updated_by = write.actor,
                       .version = 0};
  std::optional<barrier::Barrier::Sealed> sealed;
  if (write.type == ConfigType::kSecret) {
    // Sealed before the transaction, so the writer slot is held only for the row write.
    BIFROST_ASSIGN_OR_RETURN(sealed, s.barrier_->Seal(scope_, write.key, write.value.view()));
  } else {
    row.value = std::string(write.value.view());
  }

  BIFROST_ASSIGN_OR_RETURN(auto txn, s.store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(const auto existing, txn->GetConfig(scope_, write.key));
  const std::string name = "config " + QuoteForMessage(write.key) + " in " + InScope(scope_);
  if (!existing) {
    if (write.expected_version && *write.expected_version > 0) {
      return Fail(ErrorCode::kNotFound, name + " does not exist");
    }
  } else {
    if (write.expected_version && *write.expected_version == 0) {
      return Fail(ErrorCode::kAlreadyExists, name + " already exists");
    }
    if (write.expected_version && *write.expected_version != existing->version) {
      return Fail(ErrorCode::kConflict, name + " is at version " +
                                            std::to_string(existing->version) + ", not " +
                                            std::to_string(*write.expected_version));
    }
  }
  if (sealed) {
    // A data-key rotation may have started since Seal: the value is written only under the
    // key this transaction sees as active (sealed again if that changed), so a rotation that
    // has re-sealed every row never finds a new one under its retired key.
    BIFROST_ASSIGN_OR_RETURN(
        barrier::Barrier::Sealed current,
        s.barrier_->EnsureCurrent(*txn, scope_, write.key, write.value.view(), std::move(*sealed)));
    row.value = std::move(current.envelope);
    row.key_id = std::move(current.key_id);
  }
  store::ConfigRow stored;
  if (!existing) {
    BIFROST_ASSIGN_OR_RETURN(stored, txn->InsertConfig(row));
  } else {
    BIFROST_ASSIGN_OR_RETURN(stored, txn->UpdateConfig(row, existing->version));
  }
  ConfigEntry entry = ToEntry(stored);
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, entry));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return entry;
}

Result<ConfigEntry> ScopeConfig::SetDescription(
    std::string_view key, std::string_view description, std::string_view actor,
    std::optional<std::int64_t> expected_version,
    const store::CommitHookWith<ConfigEntry>& before_commit) const {
  const ConfigService& s = *service_;
  BIFROST_RETURN_IF_ERROR(ValidateKey(key));
  BIFROST_RETURN_IF_ERROR(ValidateDescription(key, description, s.limits_));
  BIFROST_RETURN_IF_ERROR(ValidateActor(actor));
  BIFROST_ASSIGN_OR_RETURN(auto txn, s.store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(auto existing, txn->GetConfig(scope_, key));
  const std::string name = "config " + QuoteForMessage(key) + " in " + InScope(scope_);
  if (!existing) return Fail(ErrorCode::kNotFound, name + " does not exist");
  if (expected_version && *expected_version != existing->version) {
    return Fail(ErrorCode::kConflict, name + " is at version " + std::to_string(existing->version) +
                                          ", not " + std::to_string(*expected_version));
  }
  BIFROST_RETURN_IF_ERROR(StoredType(*existing));
  const std::int64_t version = existing->version;
  store::ConfigRow row = std::move(*existing);
  row.description = std::string(description);
  row.updated_at = s.clock_->NowMicros();
  row.updated_by = std::string(actor);
  BIFROST_ASSIGN_OR_RETURN(const store::ConfigRow stored, txn->UpdateConfig(row, version));
  ConfigEntry entry = ToEntry(stored);
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, entry));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return entry;
}

Result<std::optional<store::ConfigRow>> ScopeConfig::Resolve(store::Txn& txn,
                                                             std::string_view key) const {
  BIFROST_RETURN_IF_ERROR(ValidateKey(key));
  BIFROST_ASSIGN_OR_RETURN(auto row, txn.GetConfig(scope_, key));
  if (row || scope_.is_global()) return row;
  return txn.GetConfig(store::Scope::Global(), key);
}

Result<ConfigEntry> ScopeConfig::Get(std::string_view key) const {
  BIFROST_ASSIGN_OR_RETURN(auto txn, service_->store_->Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(const auto row, Resolve(*txn, key));
  if (!row) {
    return Fail(ErrorCode::kNotFound, "config " + QuoteForMessage(key) + " is not set in " +
                                          InScope(scope_) +
                                          (scope_.is_global() ? "" : " or the global scope"));
  }
  BIFROST_RETURN_IF_ERROR(StoredType(*row));
  return ToEntry(*row);
}

Result<RevealedValue> ScopeConfig::Reveal(std::string_view key) const {
  BIFROST_ASSIGN_OR_RETURN(auto txn, service_->store_->Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(const auto row, Resolve(*txn, key));
  if (!row) {
    return Fail(ErrorCode::kNotFound, "config " + QuoteForMessage(key) + " is not set in " +
                                          InScope(scope_) +
                                          (scope_.is_global() ? "" : " or the global scope"));
  }
  BIFROST_ASSIGN_OR_RETURN(const ConfigType type, StoredType(*row));
  RevealedValue out{.entry = ToEntry(*row), .value = {}};
  if (type == ConfigType::kSecret) {
    // The row's own scope, not ours: a global secret is bound to the global scope. Its data
    // key, if not yet in memory, is read through the same snapshot as the row.
    BIFROST_ASSIGN_OR_RETURN(out.value,
                             service_->barrier_->Open(*txn, row->scope, row->key, row->value));
  } else {
    out.value = crypto::SecureBuffer::From(row->value);
  }
  return out;
}

Result<std::vector<ConfigEntry>> ScopeConfig::List() const {
  BIFROST_ASSIGN_OR_RETURN(auto txn, service_->store_->Begin(store::TxnMode::kRead));
  std::map<std::string, ConfigEntry> merged;
  if (!scope_.is_global()) {
    BIFROST_ASSIGN_OR_RETURN(const auto globals, txn->ListConfigs(store::Scope::Global()));
    for (const auto& row : globals) {
      BIFROST_RETURN_IF_ERROR(StoredType(row));
      merged.insert_or_assign(row.key, ToEntry(row));
    }
  }
  BIFROST_ASSIGN_OR_RETURN(const auto own, txn->ListConfigs(scope_));
  for (const auto& row : own) {
    BIFROST_RETURN_IF_ERROR(StoredType(row));
    ConfigEntry entry = ToEntry(row);
    entry.overrides_global = merged.contains(row.key);
    merged.insert_or_assign(row.key, std::move(entry));  // the org's entry overrides
  }
  std::vector<ConfigEntry> out;
  out.reserve(merged.size());
  for (auto& [key, entry] : merged) out.push_back(std::move(entry));
  return out;
}

Status ScopeConfig::Delete(std::string_view key, std::optional<std::int64_t> expected_version,
                           const store::CommitHook& before_commit) const {
  BIFROST_RETURN_IF_ERROR(ValidateKey(key));
  BIFROST_ASSIGN_OR_RETURN(auto txn, service_->store_->Begin(store::TxnMode::kWrite));
  auto deleted = txn->DeleteConfig(scope_, key, expected_version);
  if (!deleted && deleted.error().code() == ErrorCode::kNotFound) {
    return Fail(ErrorCode::kNotFound,
                "config " + QuoteForMessage(key) + " is not set in " + InScope(scope_));
  }
  BIFROST_RETURN_IF_ERROR(deleted);
  if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn));
  return txn->Commit();
}

ConfigEntry ScopeConfig::ToEntry(const store::ConfigRow& row) const {
  // Callers have checked the type with StoredType; an unknown type cannot reach here.
  const ConfigType type = ParseConfigType(row.type).value_or(ConfigType::kSecret);
  ConfigEntry entry{.key = row.key,
                    .type = type,
                    .value = std::nullopt,
                    .description = row.description,
                    .scope = row.scope,
                    .source = row.scope.is_global() ? Source::kGlobal : Source::kOrg,
                    .created_at = row.created_at,
                    .updated_at = row.updated_at,
                    .updated_by = row.updated_by,
                    .version = row.version};
  if (type != ConfigType::kSecret) entry.value = row.value;
  return entry;
}

}  // namespace bifrost::config
