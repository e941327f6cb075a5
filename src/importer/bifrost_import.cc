#include "importer/bifrost_import.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <optional>
#include <set>
#include <utility>

#include "common/text.h"
#include "config/config_types.h"
#include "importer/csv.h"
#include "importer/legacy_value.h"

namespace bifrost::importer {
namespace {

using config::ConfigType;

constexpr std::array<ConfigType, 5> kTypes = {ConfigType::kString, ConfigType::kInt,
                                              ConfigType::kBool, ConfigType::kJson,
                                              ConfigType::kSecret};
// Who an entry was last changed by when the dump does not say.
constexpr std::string_view kDefaultUpdatedBy = "import";

struct OrgInput {
  std::int64_t line = 0;
  std::string id;  // canonical lower-case UUID
  std::string name;
  std::optional<UnixMicros> created_at;
};

struct ConfigInput {
  std::int64_t line = 0;
  std::string source_id;              // the row's id in the old database, for messages
  std::optional<std::string> org_id;  // nullopt: the global scope
  std::string key;
  ConfigType type = ConfigType::kString;
  // The canonical text; for a secret its stored, still encrypted form (opened again, with
  // the derivation that worked, when it is sealed).
  CsvField value;
  LegacySecretKeys::Kdf kdf = LegacySecretKeys::Kdf::kHkdf;
  std::string description;
  std::string updated_by;
  std::optional<UnixMicros> created_at;
  std::optional<UnixMicros> updated_at;

  store::Scope scope() const {
    return org_id ? store::Scope::Org(*org_id) : store::Scope::Global();
  }
};

// A timestamp as PostgreSQL prints one ("2024-05-01 12:34:56.789+00", "... +05:30", no zone
// for a timestamp without time zone, read as UTC) or RFC 3339. nullopt otherwise (BC dates,
// "infinity"): the caller uses the import time.
std::optional<UnixMicros> ParseTimestamp(std::string_view text) {
  text = TrimSpacesAndTabs(text);
  if (text.size() < 10) return std::nullopt;
  if (auto t = ParseRfc3339(text)) return t;
  std::string s(text);
  if (s.size() > 10 && s[10] == ' ') s[10] = 'T';
  // The zone, if any, starts at the last sign after the date.
  const std::size_t sign = s.find_last_of("+-");
  if (sign != std::string::npos && sign > 10) {
    const std::string zone = s.substr(sign + 1);
    if (zone.size() == 2) {
      s += ":00";  // "+05"
    } else if (zone.size() == 4 && zone.find(':') == std::string::npos) {
      s.insert(sign + 3, ":");  // "+0530"
    } else if (zone.size() == 8 && zone[2] == ':' && zone[5] == ':') {
      return std::nullopt;  // a historic offset with seconds: not worth guessing
    }
  } else if (!s.ends_with('Z') && !s.ends_with('z')) {
    s += 'Z';
  }
  return ParseRfc3339(s);
}

std::string ScopeText(const std::optional<std::string>& org_id) {
  return org_id ? "organization " + *org_id : std::string("the global scope");
}

// A prefix naming a config row: "configs.csv line 12 (config <id>, key 'api_key')".
std::string RowName(const std::string& path, std::int64_t line, std::string_view source_id,
                    std::string_view key) {
  std::string out = path;
  out += " line ";
  out += std::to_string(line);
  out += " (config ";
  out += source_id.empty() ? std::string("without id") : QuoteForMessage(source_id);
  if (!key.empty()) {
    out += ", key ";
    out += QuoteForMessage(key);
  }
  out += ")";
  return out;
}

std::string RowName(const std::string& path, const ConfigInput& row) {
  return RowName(path, row.line, row.source_id, row.key);
}

// `error` with `prefix` ("FILE line N ...: ") in front of its message, its code kept.
Error Prefixed(std::string_view prefix, const Error& error) {
  std::string message(prefix);
  message += ": ";
  message += error.message();
  return Error(error.code(), std::move(message));
}

Error Invalid(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

// ---- Reading and checking the files (nothing is written) ----

Result<std::vector<OrgInput>> ReadOrganizations(const std::string& path) {
  BIFROST_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path));
  BIFROST_RETURN_IF_ERROR(reader->ReadHeader({"id", "name"}));
  const std::size_t id_column = *reader->Column("id");
  const std::size_t name_column = *reader->Column("name");
  const auto created_column = reader->Column("created_at");

  std::vector<OrgInput> orgs;
  std::map<std::string, std::int64_t> lines_by_id;
  std::map<std::string, std::int64_t> lines_by_name;
  CsvRecord record;
  for (;;) {
    BIFROST_ASSIGN_OR_RETURN(const bool more, reader->Next(record));
    if (!more) break;
    const std::string where = reader->Where(record.line);
    OrgInput org;
    org.line = record.line;
    // PostgreSQL prints UUIDs in lower case; a hand-edited file may not.
    org.id = AsciiLower(record.fields[id_column]);
    if (!IsCanonicalUuid(org.id)) {
      return Fail(Invalid(where + ": organization id " + QuoteForMessage(record.fields[id_column]) +
                          " is not a UUID (8-4-4-4-12 hex digits)"));
    }
    org.name = std::string(record.fields[name_column]);
    if (auto valid = config::ValidateOrgName(org.name); !valid) {
      return Fail(Invalid(where + ": " + valid.error().message() +
                          "; rename it in the old installation (or in the file) first"));
    }
    if (created_column) org.created_at = ParseTimestamp(record.fields[*created_column]);
    if (const auto it = lines_by_id.find(org.id); it != lines_by_id.end()) {
      return Fail(Invalid(where + ": organization " + org.id + " is listed twice (also on line " +
                          std::to_string(it->second) + ")"));
    }
    if (const auto it = lines_by_name.find(org.name); it != lines_by_name.end()) {
      return Fail(Invalid(where + ": the organization name " + QuoteForMessage(org.name) +
                          " is used twice (also on line " + std::to_string(it->second) +
                          "); names are unique here"));
    }
    lines_by_id.emplace(org.id, org.line);
    lines_by_name.emplace(org.name, org.line);
    orgs.push_back(std::move(org));
  }
  return orgs;
}

struct ConfigsRead {
  std::vector<ConfigInput> rows;
  std::int64_t skipped_integration = 0;
  std::int64_t secrets_hkdf = 0;
  std::int64_t secrets_pbkdf2 = 0;
};

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Reports progress every this many rows.
constexpr std::int64_t kProgressEvery = 1000;
constexpr std::string_view kCheckingPhase = "checking configs";
constexpr std::string_view kWritingPhase = "writing configs";
// Every row is held in memory until the one transaction commits: the values and descriptions
// of one import may total at most this much (a larger installation is imported in parts,
// split by organization).
constexpr std::size_t kMaxImportBytes = std::size_t{1} << 30;

// The number of lines after the header: an upper bound of the records in a CSV file (a
// quoted field may span lines), read only to give the first phase a total.
std::int64_t EstimateRecords(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  std::int64_t lines = 0;
  std::array<char, 1 << 16> chunk{};
  while (in) {
    in.read(chunk.data(), chunk.size());
    lines += std::count(chunk.data(), chunk.data() + in.gcount(), '\n');
  }
  return std::max<std::int64_t>(0, lines - 1);
}

void Report(const keys::ProgressFn& progress, std::string_view phase, std::int64_t done,
            std::int64_t total) {
  if (progress) progress({.phase = std::string(phase), .scope = "", .done = done, .total = total});
}

Result<ConfigsRead> ReadConfigs(const std::string& path, const LegacySecretKeys& keys,
                                const keys::ProgressFn& progress) {
  // A named pipe (`--configs <(psql ...)`) can be read once only: no estimate then.
  const std::int64_t estimate = progress && IsRegularFile(path) ? EstimateRecords(path) : 0;
  std::int64_t seen = 0;
  std::size_t held = 0;  // bytes of values, descriptions and keys kept so far
  const config::Limits limits;
  BIFROST_ASSIGN_OR_RETURN(auto reader, CsvReader::Open(path));
  BIFROST_RETURN_IF_ERROR(
      reader->ReadHeader({"id", "key", "value", "config_type", "organization_id"}));
  const std::size_t id_column = *reader->Column("id");
  const std::size_t key_column = *reader->Column("key");
  const std::size_t value_column = *reader->Column("value");
  const std::size_t type_column = *reader->Column("config_type");
  const std::size_t org_column = *reader->Column("organization_id");
  const auto description_column = reader->Column("description");
  const auto updated_by_column = reader->Column("updated_by");
  const auto updated_at_column = reader->Column("updated_at");
  const auto created_at_column = reader->Column("created_at");
  const auto integration_column = reader->Column("integration_id");

  ConfigsRead read;
  // (org id or "" for global, key) -> line, to refuse a key given twice in one scope.
  std::map<std::pair<std::string, std::string>, std::int64_t> lines_by_entry;
  CsvRecord record;
  for (;;) {
    BIFROST_ASSIGN_OR_RETURN(const bool more, reader->Next(record));
    if (!more) break;
    if (++seen % kProgressEvery == 0) {
      Report(progress, kCheckingPhase, seen, std::max(estimate, seen));
    }
    // Integration settings belong to the old installation's integrations, which this one
    // does not have: counted, not imported.
    if (integration_column && !TrimSpacesAndTabs(record.fields[*integration_column]).empty()) {
      ++read.skipped_integration;
      continue;
    }
    ConfigInput row;
    row.line = record.line;
    row.source_id = std::string(record.fields[id_column]);
    const std::string_view key = record.fields[key_column];
    if (auto valid = config::ValidateKey(key); !valid) {
      return Fail(Prefixed(RowName(path, row.line, row.source_id, ""), valid.error()));
    }
    row.key = std::string(key);
    const std::string where = RowName(path, row);

    auto type = ParseLegacyConfigType(record.fields[type_column]);
    if (!type) return Fail(Prefixed(where, type.error()));
    row.type = *type;

    const std::string org_id = AsciiLower(TrimSpacesAndTabs(record.fields[org_column]));
    if (!org_id.empty()) {
      if (!IsCanonicalUuid(org_id)) {
        return Fail(Invalid(where + ": organization_id " +
                            QuoteForMessage(record.fields[org_column]) + " is not a UUID"));
      }
      row.org_id = org_id;
    }

    auto value = CanonicalLegacyValue(row.type, row.key, record.fields[value_column], limits);
    if (!value) return Fail(Prefixed(where, value.error()));
    row.value.assign(value->data(), value->size());
    crypto::SecureWipe(value->data(), value->size());
    if (row.type == ConfigType::kSecret) {
      // Opened here only to prove it can be (and to learn with which derivation), before
      // anything is written; the plaintext is wiped at once and opened again to be sealed.
      auto opened = keys.Open(row.key, row.value, limits);
      if (!opened) return Fail(Prefixed(where, opened.error()));
      row.kdf = opened->kdf;
      ++(row.kdf == LegacySecretKeys::Kdf::kHkdf ? read.secrets_hkdf : read.secrets_pbkdf2);
    }

    if (description_column) row.description = std::string(record.fields[*description_column]);
    if (auto valid = config::ValidateDescription(row.key, row.description, limits); !valid) {
      return Fail(Prefixed(where, valid.error()));
    }
    if (updated_by_column) row.updated_by = std::string(record.fields[*updated_by_column]);
    if (row.updated_by.empty()) row.updated_by = kDefaultUpdatedBy;
    if (auto valid = config::ValidateActor(row.updated_by); !valid) {
      return Fail(Invalid(where + ": updated_by: " + valid.error().message()));
    }
    if (updated_at_column) row.updated_at = ParseTimestamp(record.fields[*updated_at_column]);
    if (created_at_column) row.created_at = ParseTimestamp(record.fields[*created_at_column]);

    const auto entry = std::make_pair(row.org_id.value_or(""), row.key);
    if (const auto it = lines_by_entry.find(entry); it != lines_by_entry.end()) {
      return Fail(Invalid(where + ": " + ScopeText(row.org_id) + " has key " +
                          QuoteForMessage(row.key) + " twice (also on line " +
                          std::to_string(it->second) + "); keep one of the rows"));
    }
    lines_by_entry.emplace(entry, row.line);
    held += row.value.size() + row.description.size() + row.key.size();
    if (held > kMaxImportBytes) {
      return Fail(Invalid(where + ": the configs file holds more than 1 GiB of values and "
                                  "descriptions, more than one import takes; split it by "
                                  "organization and import the parts one after another"));
    }
    read.rows.push_back(std::move(row));
  }
  Report(progress, kCheckingPhase, seen, seen);
  return read;
}

// ---- Writing ----

std::string Detail(const ImportReport& report, std::int64_t organizations,
                   const std::map<std::string, std::int64_t>& by_type) {
  std::string detail = std::to_string(organizations);
  detail += " organizations (";
  detail += std::to_string(report.organizations_created);
  detail += " created), ";
  detail += std::to_string(report.configs);
  detail += " configs (by type";
  bool first = true;
  for (const ConfigType type : kTypes) {
    detail += first ? " " : ", ";
    first = false;
    const std::string name(config::ConfigTypeName(type));
    detail += name;
    detail += " ";
    const auto it = by_type.find(name);
    detail += std::to_string(it == by_type.end() ? 0 : it->second);
  }
  detail += "), ";
  detail += std::to_string(report.secrets_hkdf + report.secrets_pbkdf2);
  detail += " secrets re-encrypted, ";
  detail += std::to_string(report.skipped_integration);
  detail += " integration rows skipped";
  return detail;
}

ScopeCounts EmptyCounts(std::string label, std::string org_id, bool created) {
  ScopeCounts counts;
  counts.label = std::move(label);
  counts.org_id = std::move(org_id);
  counts.created = created;
  for (const ConfigType type : kTypes)
    counts.by_type[std::string(config::ConfigTypeName(type))] = 0;
  return counts;
}

}  // namespace

Result<ImportReport> ImportBifrost(store::Store& store, const barrier::Barrier& barrier,
                                   audit::AuditLog& audit, const Clock& clock,
                                   const ImportOptions& options) {
  const config::Limits limits;
  // 1. Read and check everything, and open every secret once, before taking the writer
  //    slot: a bad row costs nothing and blocks nobody.
  BIFROST_ASSIGN_OR_RETURN(const std::vector<OrgInput> orgs,
                           ReadOrganizations(options.organizations_csv));
  BIFROST_ASSIGN_OR_RETURN(
      const LegacySecretKeys keys,
      LegacySecretKeys::Create(options.source_secret.view(), "the source key"));
  BIFROST_ASSIGN_OR_RETURN(ConfigsRead read,
                           ReadConfigs(options.configs_csv, keys, options.progress));
  const std::string& configs_path = options.configs_csv;

  ImportReport report;
  report.dry_run = options.dry_run;
  report.skipped_integration = read.skipped_integration;
  report.secrets_hkdf = read.secrets_hkdf;
  report.secrets_pbkdf2 = read.secrets_pbkdf2;

  const UnixMicros now = clock.NowMicros();
  BIFROST_ASSIGN_OR_RETURN(std::unique_ptr<store::Txn> txn, store.Begin(store::TxnMode::kWrite));

  // 2. Check the database: organizations that exist must be the same ones, and no entry may
  //    exist already (the import never overwrites).
  std::map<std::string, ScopeCounts> scopes;  // by org id
  std::set<std::string> existing_orgs;        // scopes that already have rows to collide with
  std::vector<const OrgInput*> to_create;
  for (const OrgInput& org : orgs) {
    const std::string where = options.organizations_csv + " line " + std::to_string(org.line);
    BIFROST_ASSIGN_OR_RETURN(const auto by_id, txn->GetOrgById(org.id));
    if (by_id) {
      if (by_id->name != org.name) {
        return Fail(ErrorCode::kAlreadyExists,
                    where + ": organization " + org.id + " already exists here named " +
                        QuoteForMessage(by_id->name) + ", not " + QuoteForMessage(org.name) +
                        "; rename one of them so the names agree");
      }
      ++report.organizations_existing;
      existing_orgs.insert(org.id);
      scopes.emplace(org.id, EmptyCounts(org.name, org.id, false));
      continue;
    }
    BIFROST_ASSIGN_OR_RETURN(const auto by_name, txn->GetOrgByName(org.name));
    if (by_name) {
      return Fail(ErrorCode::kAlreadyExists, where + ": the name " + QuoteForMessage(org.name) +
                                                 " is taken here by another organization (" +
                                                 by_name->id + ", not " + org.id +
                                                 "); rename one of them");
    }
    to_create.push_back(&org);
    scopes.emplace(org.id, EmptyCounts(org.name, org.id, true));
  }
  for (const ConfigInput& row : read.rows) {
    if (!row.org_id || scopes.contains(*row.org_id)) continue;
    // An organization not in the file may be one this installation already has.
    BIFROST_ASSIGN_OR_RETURN(const auto org, txn->GetOrgById(*row.org_id));
    if (!org) {
      return Fail(ErrorCode::kNotFound,
                  RowName(configs_path, row) + ": organization " + *row.org_id + " is neither in " +
                      options.organizations_csv + " nor in this installation");
    }
    existing_orgs.insert(org->id);
    scopes.emplace(org->id, EmptyCounts(org->name, org->id, false));
  }
  std::optional<std::string> first_conflict;
  std::int64_t conflicts = 0;
  for (const ConfigInput& row : read.rows) {
    if (row.org_id && !existing_orgs.contains(*row.org_id)) continue;  // created below
    BIFROST_ASSIGN_OR_RETURN(const auto existing, txn->GetConfig(row.scope(), row.key));
    if (!existing) continue;
    if (++conflicts == 1) {
      first_conflict = RowName(configs_path, row) + ": " + ScopeText(row.org_id) +
                       " already has config " + QuoteForMessage(row.key) + " here";
    }
  }
  if (conflicts > 0) {
    std::string message = *first_conflict;
    if (conflicts > 1) {
      message += " (and ";
      message += std::to_string(conflicts - 1);
      message += " more rows collide with existing entries)";
    }
    message += "; the import never overwrites: delete the entries here or drop the rows from ";
    message += configs_path;
    return Fail(ErrorCode::kAlreadyExists, std::move(message));
  }

  // 3. Write: organizations with their data keys, then every entry, secrets sealed under
  //    their scope's active data key as this transaction sees it.
  std::map<std::string, barrier::DataKey> data_keys;  // by org id, "" for global
  auto data_key_of = [&](const store::Scope& scope) -> Result<const barrier::DataKey*> {
    const std::string id = scope.is_global() ? "" : scope.org_id();
    if (auto it = data_keys.find(id); it != data_keys.end()) return &it->second;
    BIFROST_ASSIGN_OR_RETURN(barrier::DataKey key, barrier.ActiveKey(*txn, scope));
    return &data_keys.emplace(id, std::move(key)).first->second;
  };
  for (const OrgInput* org : to_create) {
    const std::string where = options.organizations_csv + " line " + std::to_string(org->line);
    const store::OrgRow row{
        .id = org->id, .name = org->name, .created_at = org->created_at.value_or(now)};
    if (auto inserted = txn->InsertOrg(row); !inserted) {
      return Fail(Prefixed(where, inserted.error()));
    }
    if (auto key = data_key_of(store::Scope::Org(org->id)); !key) {
      return Fail(Prefixed(where, key.error()));
    }
    ++report.organizations_created;
  }

  ScopeCounts global = EmptyCounts("global", "", false);
  bool global_used = false;
  std::map<std::string, std::int64_t> by_type;
  const auto rows_total = static_cast<std::int64_t>(read.rows.size());
  std::int64_t written = 0;
  Report(options.progress, kWritingPhase, 0, rows_total);
  for (const ConfigInput& input : read.rows) {
    if (++written % kProgressEvery == 0) {
      Report(options.progress, kWritingPhase, written, rows_total);
    }
    const store::Scope scope = input.scope();
    store::ConfigRow row;
    row.scope = scope;
    row.key = input.key;
    row.type = std::string(config::ConfigTypeName(input.type));
    row.description = input.description;
    row.updated_by = input.updated_by;
    row.updated_at = input.updated_at.value_or(now);
    row.created_at = input.created_at.value_or(row.updated_at);
    if (input.type == ConfigType::kSecret) {
      auto opened = keys.OpenWith(input.kdf, input.key, input.value, limits);
      if (!opened) return Fail(Prefixed(RowName(configs_path, input), opened.error()));
      auto key = data_key_of(scope);
      if (!key) return Fail(Prefixed(RowName(configs_path, input), key.error()));
      auto sealed = barrier.SealWith(**key, scope, input.key, opened->plaintext.view());
      opened->plaintext.Clear();
      if (!sealed) return Fail(Prefixed(RowName(configs_path, input), sealed.error()));
      row.value = std::move(sealed->envelope);
      row.key_id = std::move(sealed->key_id);
    } else {
      row.value = std::string(input.value);
    }
    if (auto inserted = txn->InsertConfig(row); !inserted) {
      return Fail(Prefixed(RowName(configs_path, input), inserted.error()));
    }
    ScopeCounts& counts = input.org_id ? scopes.at(*input.org_id) : global;
    global_used = global_used || !input.org_id;
    ++counts.by_type[row.type];
    ++by_type[row.type];
    ++report.configs;
  }

  Report(options.progress, kWritingPhase, rows_total, rows_total);
  if (global_used) report.scopes.push_back(std::move(global));
  std::vector<ScopeCounts> orgs_counts;
  for (auto& [id, counts] : scopes) orgs_counts.push_back(std::move(counts));
  std::sort(orgs_counts.begin(), orgs_counts.end(),
            [](const ScopeCounts& a, const ScopeCounts& b) { return a.label < b.label; });
  for (auto& counts : orgs_counts) report.scopes.push_back(std::move(counts));

  // 4. A dry run stops here: the transaction rolls back when `txn` goes, with everything it
  //    wrote (organizations, data keys, entries), and nothing is audited.
  if (options.dry_run) return report;

  audit::Event event;
  event.action = std::string(audit::actions::kImportBifrost);
  event.outcome = audit::Outcome::kSuccess;
  event.actor_name = options.actor;
  event.detail = Detail(report, static_cast<std::int64_t>(orgs.size()), by_type);
  BIFROST_RETURN_IF_ERROR(audit.InTxn(std::move(event))(*txn));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return report;
}

}  // namespace bifrost::importer
