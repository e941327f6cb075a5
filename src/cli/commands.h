// The client commands: each one turns parsed flags into API calls and prints the result.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>

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

CliStatus Whoami(Session& session, Format format);

}  // namespace bifrost::cli
