// The client commands: each one turns parsed flags into API calls and prints the result.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/api.h"
#include "cli/cli.h"
#include "cli/cli_error.h"

namespace bifrost::cli {

enum class Format { kTable, kJson };

// One invocation: its I/O, and the API connection made on first use from BIFROST_ADDR,
// BIFROST_TOKEN (required: exit 2 without it) and BIFROST_CACERT.
class Session {
 public:
  explicit Session(CliIo& io) : io_(io) {}

  CliResult<Api*> api();
  CliIo& io() { return io_; }
  std::ostream& out() { return *io_.out; }
  std::optional<std::string> GetEnv(const std::string& name) const;
  // ANSI styling: stdout is a terminal, NO_COLOR is unset and TERM is not "dumb".
  bool UseAnsi() const;

 private:
  CliIo& io_;
  std::unique_ptr<Api> api_;
};

// --org ORG | --global (CLI11 already refused both together).
struct ScopeFlags {
  std::string org;  // a name or an id; empty: not given
  bool global = false;
};

struct ConfigSetArgs {
  std::string key;
  std::optional<std::string> value;  // nullopt or "-": read from stdin
  std::optional<std::string> type;
  bool secret = false;
  std::optional<std::string> description;
  ScopeFlags scope;
  Format format = Format::kTable;
};

struct TokenCreateArgs {
  std::string role;
  std::string org;
  std::optional<std::string> name;
  std::optional<std::string> ttl;
  Format format = Format::kTable;
};

CliStatus OrgCreate(Session& session, const std::string& name, Format format);
CliStatus OrgList(Session& session, Format format);
CliStatus OrgDelete(Session& session, const std::string& org, Format format);

CliStatus ConfigSet(Session& session, const ConfigSetArgs& args);
CliStatus ConfigGet(Session& session, const std::string& key, const ScopeFlags& scope,
                    const std::optional<std::string>& default_value, Format format);
CliStatus ConfigList(Session& session, const ScopeFlags& scope, Format format);
CliStatus ConfigDelete(Session& session, const std::string& key, const ScopeFlags& scope,
                       Format format);

CliStatus TokenCreate(Session& session, const TokenCreateArgs& args);
CliStatus TokenList(Session& session, const std::string& org, Format format);
CliStatus TokenRevoke(Session& session, const std::string& id, Format format);

// `audit list`: filters as typed; since/until are checked (and a relative one made absolute)
// by AuditList itself, so that a bad one is a usage error naming its flag.
struct AuditListArgs {
  std::string org;  // a name or an id; empty: the server's default for the token
  std::string key;
  std::string action;
  std::string actor;    // a token's name or id
  std::string outcome;  // success|denied|error (CLI11 checked it); empty: any
  std::string since;    // RFC 3339, a date, or a duration meaning "that long ago"; empty: none
  std::string until;
  int limit = 50;  // records in all, fetched over as many pages as it takes
  Format format = Format::kTable;
};

// Seconds-ago durations count back from `now_micros`. Declared for tests.
CliResult<std::string> AuditTimeQueryValue(std::string_view flag, std::string_view text,
                                           std::int64_t now_micros);

CliStatus AuditList(Session& session, const AuditListArgs& args);

CliStatus Whoami(Session& session, Format format);

// Shared by the command files.
// The id of the organization a command acts on: `org` (a name or an id) when given, else
// the token's own; a platform token without one is a usage error naming `flag`.
CliResult<std::string> OrgIdForCommand(Api& api, const std::string& org, std::string_view flag);
// A value as indented JSON on stdout.
void PrintJsonDocument(Session& session, const nlohmann::json& value);
// A field of a server object as table text: strings as-is, null or absent as "-".
std::string TableField(const nlohmann::json& object, const char* name);

}  // namespace bifrost::cli
