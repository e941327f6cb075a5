// `bifrost import bifrost`: moves a Python Bifrost installation's organizations and config
// entries in from CSV dumps (docs/migrating-from-bifrost.md). A local command: it opens the
// database itself (--data DIR or --database URL), like `keys rotate`, and may run while
// servers serve it.
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/database_flags.h"
#include "cli/local_commands.h"
#include "cli/progress.h"
#include "cli/table.h"
#include "common/clock.h"
#include "common/text.h"
#include "crypto/key_derivation.h"
#include "importer/bifrost_import.h"
#include "keys/installation.h"
#include "keys/key_source.h"

namespace bifrost::cli {
namespace {

using nlohmann::json;

constexpr const char* kTypeNames[] = {"string", "int", "bool", "json", "secret"};

constexpr const char* kFooter =
    R"(Reads CSV dumps of the Python Bifrost's `organizations` and `configs` tables (made
with psql \copy ... CSV HEADER) and imports them in one transaction: organizations keep
their ids and names, entries keep their keys, types, descriptions and times, and every
secret is decrypted with the old installation's key and re-encrypted under this one's.
All or nothing: the first problem (a row that does not validate, a secret that does not
decrypt, an entry that already exists here) is reported with its file, line, config id and
key, and nothing is written. Rows with an integration_id are skipped and counted.

The old installation's BIFROST_SECRET_KEY is read only from --source-key-file (never from
the command line); this installation's key comes from BIFROST_SECRET_KEY (or
BIFROST_SECRET_KEY_FILE), as for `serve`, and its database from --data DIR or --database
URL (BIFROST_DATA or BIFROST_DATABASE_URL). The servers may keep running.

--format json prints one object: dry_run, organizations {total, created, existing},
configs {total, by_type}, secrets {re_encrypted, hkdf, pbkdf2},
skipped_integration_rows, warnings [...], and scopes [{scope ("global"|"org"), name,
org_id, created, total, by_type {string, int, bool, json, secret}}].

Examples:
  bifrost import bifrost --data /var/lib/bifrost --organizations orgs.csv \
      --configs configs.csv --source-key-file old-secret-key.txt --dry-run
  bifrost import bifrost --data /var/lib/bifrost --organizations orgs.csv \
      --configs configs.csv --source-key-file old-secret-key.txt --format json
  BIFROST_DATABASE_URL='postgresql://bifrost@db/bifrost' bifrost import bifrost \
      --organizations orgs.csv --configs configs.csv --source-key-file old-secret-key.txt

Step by step, with the psql commands: docs/migrating-from-bifrost.md)";

struct ImportFlags {
  std::string data_dir;
  std::string database_url;
  std::string organizations;
  std::string configs;
  std::string source_key_file;
  bool dry_run = false;
  Format format = Format::kTable;
};

std::int64_t TypeCount(const importer::ScopeCounts& scope, const char* type) {
  const auto it = scope.by_type.find(type);
  return it == scope.by_type.end() ? 0 : it->second;
}

std::int64_t Total(const importer::ScopeCounts& scope) {
  std::int64_t total = 0;
  for (const auto& [type, count] : scope.by_type) total += count;
  return total;
}

std::map<std::string, std::int64_t> TotalsByType(const importer::ImportReport& report) {
  std::map<std::string, std::int64_t> totals;
  for (const char* type : kTypeNames) totals[type] = 0;
  for (const auto& scope : report.scopes) {
    for (const auto& [type, count] : scope.by_type) totals[type] += count;
  }
  return totals;
}

std::int64_t OrganizationCount(const importer::ImportReport& report) {
  return report.organizations_created + report.organizations_existing;
}

json ReportJson(const importer::ImportReport& report, const std::vector<std::string>& warnings) {
  json scopes = json::array();
  for (const auto& scope : report.scopes) {
    json by_type = json::object();
    for (const char* type : kTypeNames) by_type[type] = TypeCount(scope, type);
    const bool global = scope.org_id.empty();
    scopes.push_back({{"scope", global ? "global" : "org"},
                      {"name", global ? json() : json(scope.label)},
                      {"org_id", global ? json() : json(scope.org_id)},
                      {"created", scope.created},
                      {"total", Total(scope)},
                      {"by_type", std::move(by_type)}});
  }
  return {{"dry_run", report.dry_run},
          {"organizations",
           {{"total", OrganizationCount(report)},
            {"created", report.organizations_created},
            {"existing", report.organizations_existing}}},
          {"configs", {{"total", report.configs}, {"by_type", TotalsByType(report)}}},
          {"secrets",
           {{"re_encrypted", report.secrets_hkdf + report.secrets_pbkdf2},
            {"hkdf", report.secrets_hkdf},
            {"pbkdf2", report.secrets_pbkdf2}}},
          {"skipped_integration_rows", report.skipped_integration},
          {"warnings", warnings},
          {"scopes", std::move(scopes)}};
}

std::string ReportTable(const importer::ImportReport& report, bool ansi) {
  std::vector<TableRow> rows;
  for (const auto& scope : report.scopes) {
    const bool global = scope.org_id.empty();
    TableRow row = {global ? "(global)" : PrintableCell(scope.label, 48),
                    global ? "-" : scope.org_id,
                    global ? "-" : (scope.created ? "created" : "existing")};
    for (const char* type : kTypeNames) row.push_back(GroupThousands(TypeCount(scope, type)));
    row.push_back(GroupThousands(Total(scope)));
    rows.push_back(std::move(row));
  }
  std::string out = RenderTable(
      {"SCOPE", "ID", "STATUS", "STRING", "INT", "BOOL", "JSON", "SECRET", "TOTAL"}, rows, ansi);
  out += "\n";

  const auto by_type = TotalsByType(report);
  std::string configs = GroupThousands(report.configs) + " (";
  bool first = true;
  for (const char* type : kTypeNames) {
    if (!first) configs += ", ";
    first = false;
    configs += type;
    configs += " ";
    configs += GroupThousands(by_type.at(type));
  }
  configs += ")";
  std::string secrets = GroupThousands(report.secrets_hkdf + report.secrets_pbkdf2);
  secrets += " re-encrypted (source key derivation: ";
  secrets += GroupThousands(report.secrets_hkdf);
  secrets += " HKDF, ";
  secrets += GroupThousands(report.secrets_pbkdf2);
  secrets += " PBKDF2)";
  std::string organizations = GroupThousands(OrganizationCount(report));
  organizations += " (";
  organizations += GroupThousands(report.organizations_created);
  organizations += " created, ";
  organizations += GroupThousands(report.organizations_existing);
  organizations += " already here)";
  out +=
      RenderFields({{"Organizations", organizations},
                    {"Configs", configs},
                    {"Secrets", secrets},
                    {"Skipped", GroupThousands(report.skipped_integration) + " integration rows"}},
                   ansi);
  out += report.dry_run ? "dry run: nothing was written\n" : "imported\n";
  return out;
}

std::size_t CountCodePoints(std::string_view text) {
  std::size_t n = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

CliStatus RunImport(const ImportFlags& flags, CliIo& io) {
  ForgetDatabaseUrlVariable();
  BIFROST_CLI_RETURN_IF_ERROR(
      CheckDatabaseFlags("import bifrost", flags.data_dir, flags.database_url));
  // This installation's keys leave the environment first, before anything else is read.
  const Clock& clock = SystemClock::Instance();
  auto installation = keys::OpenLocalInstallation({.data_dir = flags.data_dir,
                                                   .database_url = flags.database_url,
                                                   .command = "import bifrost",
                                                   .read_only = false},
                                                  clock);
  if (!installation) return CommandError(installation.error().message());

  // The old installation's key: from a file only, so it is in no shell history, process
  // list or environment; it lives in wiped memory.
  auto source_secret = keys::ReadKeyFile(flags.source_key_file, "the source key file");
  if (!source_secret) return CommandError(source_secret.error().message());
  if (source_secret->empty()) {
    return CommandError("the source key file " + QuoteForMessage(flags.source_key_file) +
                        " is empty: it must hold the old installation's BIFROST_SECRET_KEY");
  }
  std::vector<std::string> warnings;
  if (!IsValidUtf8(source_secret->view())) {
    warnings.push_back("the source key file is not UTF-8 text; its bytes are used as they are");
  }
  if (CountCodePoints(source_secret->view()) < crypto::kMinSecretKeyChars) {
    warnings.push_back(
        "the source key is shorter than 32 characters: it is used only to read the old "
        "installation's secrets; this installation's own key must be at least 32 characters");
  }
  for (const auto& warning : warnings) *io.err << "bifrost: warning: " << warning << "\n";

  importer::ImportOptions options;
  options.organizations_csv = flags.organizations;
  options.configs_csv = flags.configs;
  options.source_secret = std::move(*source_secret);
  options.dry_run = flags.dry_run;
  options.actor = keys::OperatorName();
  ProgressRenderer renderer(
      *io.err, {.command = "import bifrost", .terminal = ProgressOnTerminal(io), .now = nullptr});
  options.progress = [&renderer](const keys::Progress& progress) { renderer.Update(progress); };
  auto report = importer::ImportBifrost(*installation->store, *installation->barrier,
                                        *installation->audit, clock, options);
  options.source_secret.Clear();
  renderer.Finish();
  if (!report) return CommandError(report.error().message());

  if (flags.format == Format::kJson) {
    *io.out << ReportJson(*report, warnings).dump(2, ' ', false, json::error_handler_t::replace)
            << "\n";
  } else {
    Session session(io);
    *io.out << ReportTable(*report, session.UseAnsi());
  }
  return {};
}

}  // namespace

void AddImportCommands(CLI::App& app, std::function<CliStatus()>& action, CliIo& io) {
  auto* import = app.add_subcommand("import", "Import configuration from another system");
  import->require_subcommand(1);

  auto flags = std::make_shared<ImportFlags>();
  auto* bifrost = import->add_subcommand(
      "bifrost", "Import a Python Bifrost installation from CSV dumps (local, like init)");
  AddDatabaseFlags(bifrost, flags->data_dir, flags->database_url);
  bifrost
      ->add_option("--organizations", flags->organizations,
                   "CSV dump of the organizations table (id, name)")
      ->required()
      ->option_text("FILE");
  bifrost
      ->add_option("--configs", flags->configs,
                   "CSV dump of the configs table (id, key, value, config_type, description, "
                   "organization_id, updated_by, updated_at[, integration_id])")
      ->required()
      ->option_text("FILE");
  bifrost
      ->add_option("--source-key-file", flags->source_key_file,
                   "File holding the old installation's BIFROST_SECRET_KEY")
      ->required()
      ->option_text("FILE");
  bifrost->add_flag("--dry-run", flags->dry_run,
                    "Check and decrypt everything, then roll back: nothing is written");
  bifrost->add_option("--format", flags->format, "Output format")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, Format>{{"table", Format::kTable}, {"json", Format::kJson}}))
      ->option_text("table|json (default table)");
  bifrost->footer(kFooter);
  bifrost->callback([flags, &action, &io] {
    action = [flags, &io]() -> CliStatus { return RunImport(*flags, io); };
  });
}

}  // namespace bifrost::cli
