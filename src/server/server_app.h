// `bifrost serve` and `bifrost init`: everything between parsed flags and a running server.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace bifrost::server {

struct ServeOptions {
  // The database: exactly one of the two (store/open/open_store.h). --dev takes only a data
  // directory (./.bifrost-dev when none is given).
  std::string data_dir;                   // --data / BIFROST_DATA; dev mode: ./.bifrost-dev
  std::string database_url;               // --database / BIFROST_DATABASE_URL (PostgreSQL)
  std::string listen = "127.0.0.1:8420";  // --listen / BIFROST_LISTEN; port 0 = any free port
  std::string tls_cert;                   // --tls-cert / BIFROST_TLS_CERT
  std::string tls_key;                    // --tls-key / BIFROST_TLS_KEY
  bool insecure_no_tls = false;           // --insecure-no-tls: plain HTTP on a non-loopback address
  bool dev = false;                       // --dev
  int threads = 4;                        // --threads / BIFROST_THREADS
  std::size_t max_body_bytes = 1 << 20;   // --max-body-bytes (413 above it)
  // --max-connections / BIFROST_MAX_CONNECTIONS: connections open at once (TLS handshakes
  // included); more are accepted and closed at once. The open-file limit is raised to fit
  // it when the hard limit allows, with a warning when it does not.
  std::size_t max_connections = 1024;
  int header_timeout_ms = 10'000;  // a request's headers must arrive within this
  int idle_timeout_ms = 60'000;    // a keep-alive connection idle this long is closed
  // --audit-file / BIFROST_AUDIT_FILE: also write every audit record to this JSON-lines
  // file (appended, fdatasync'ed before the request is answered). "" = database only.
  std::string audit_file;
  // --audit-retention / BIFROST_AUDIT_RETENTION: prune database records older than this
  // many days (at start and hourly), behind a signed checkpoint. 0 = keep everything.
  int audit_retention_days = 0;
  // Workflows (docs/workflows.md). --workflows / BIFROST_WORKFLOWS: the directory to load
  // them from ("" = no workflow runtime).
  std::string workflows_dir;
  // --python: interpreter of Python workflows; "" = /usr/bin/python3, else python3 on PATH
  // (a name without a slash is looked up on PATH).
  std::string python;
  std::string workflow_user = "nobody";       // --workflow-user: run them as this user when root
  int workflow_concurrency = 4;               // --workflow-concurrency: executions at once
  std::size_t workflow_queue = 1000;          // --workflow-queue: waiting executions, at most
  int workflow_timeout_seconds = 60;          // --workflow-timeout: default limit per execution
  std::size_t workflow_max_output = 1 << 20;  // --workflow-max-output: logs and result bytes
  // --workflow-api-url: the address executions call back (BIFROST_ADDR); "" = this server's
  // own listening address (127.0.0.1 when it listens on every address). Needed with TLS when
  // the certificate does not name that address.
  std::string workflow_api_url;
  // --workflow-allow-unconfined: run workflows even when nothing keeps them from the data
  // directory and key files (no Landlock, and no other user to run them as).
  bool workflow_allow_unconfined = false;
  // Web UI sessions (docs/web-ui.md): --session-idle and --session-lifetime.
  std::int64_t session_idle_seconds = 30 * 60;
  std::int64_t session_lifetime_seconds = 12 * 60 * 60;
  // --trusted-proxy: addresses of reverse proxies whose X-Forwarded-For names the client the
  // per-address sign-in limit counts.
  std::vector<std::string> trusted_proxies;
  // --database-pool / BIFROST_DATABASE_POOL: PostgreSQL connections at most (1..1000).
  int database_pool = 8;
  // Filled by RunServe, not a flag: the key files named in the environment, which no
  // workflow may be able to read.
  std::vector<std::string> key_files;
};

// Runs the server until SIGTERM/SIGINT. Prints "listening on http(s)://HOST:PORT" on stdout
// once bound. Reads the master keys (BIFROST_SECRET_KEY / BIFROST_SECRET_KEY_FILE, and
// BIFROST_SECRET_KEY_PREVIOUS / BIFROST_SECRET_KEY_PREVIOUS_FILE during a rotation: see
// keys/key_source.h) and removes them from the environment. Logs the configured master key
// ids and warns about previous keys nothing needs any more. Returns the process exit code; on
// a start-up failure (including keys the barrier refuses for this database, and a database
// that is not initialized or cannot be reached: named without its password) prints one line
// "bifrost: <reason>" on stderr and returns 1. On PostgreSQL the server is one node of
// several: its workflow runtime runs only the executions it was asked for.
int RunServe(const ServeOptions& options);

struct InitOptions {
  std::string data_dir;      // --data: SQLite
  std::string database_url;  // --database: PostgreSQL (exactly one of the two)
  // --format json: {"token": ..., "token_id": ..., "data_dir": ...}; with --database,
  // "database" (the URL without its password) in place of "data_dir".
  bool json = false;
};

// Creates the database in a directory that has none (or the schema in a PostgreSQL
// database that holds no installation) and prints a platform-admin token once. A database
// that is already initialized is refused without touching anything.
int RunInit(const InitOptions& options);

struct AuditVerifyOptions {
  std::string data_dir;      // --data / BIFROST_DATA
  std::string database_url;  // --database / BIFROST_DATABASE_URL (exactly one of the two)
  std::string audit_file;    // --file: also check this JSON-lines sink; "" = no
  bool json = false;         // --format json: the report as one JSON object
};

// `bifrost audit verify`: walks the audit chain of the database (and the file) with every
// audit key the master keys give (those derived from BIFROST_SECRET_KEY and the previous
// keys, and the stored audit keys of master keys rotated away: Barrier::AuditKeys), so a
// chain that spans a master-key rotation verifies. Opens the barrier read-only: nothing is
// written. Prints what it checked; returns 0 when the log is intact, 4 when it is not
// (naming the first record that was changed, removed or reordered), 1 when it cannot check
// (no key, no database, a key that is not this database's, unreadable file).
int RunAuditVerify(const AuditVerifyOptions& options);

}  // namespace bifrost::server
