// The workflow runtime of `bifrost serve` (docs/workflows.md): the loaded catalog, a queue of
// executions and a fixed number of workers that run each one in its own sandboxed child
// process, with an execution token of its organization, a time limit, output limits and
// redaction of every secret value it saw.
//
// Executions are rows of the store (store::ExecutionRow): inserted "pending" when asked for,
// "running" when a worker takes them, and finished with their (redacted) result, error and
// logs. Thread-safety: every method may be called from any thread.
//
// Several nodes (`bifrost serve` processes on one PostgreSQL database) each run a Runtime.
// Each is a node with a fresh id (store::NodeRow) and stamps it on the executions it
// inserts; only that node runs them, and only it finishes their rows. With a shared store a
// background thread keeps the node's heartbeat, fails the executions of nodes whose
// heartbeat stopped (their process died: nothing can finish them), and acts on cancel
// requests other nodes recorded for its executions (Txn::RequestExecutionCancel).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth/auth.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"
#include "workflow/catalog.h"

namespace bifrost::workflow {

struct RuntimeOptions {
  std::string workflows_dir;  // "" = no workflows (every run is kNotFound)
  std::string python;         // interpreter for Python workflows (absolute path)
  std::string api_address;    // BIFROST_ADDR given to executions; set later by SetApiAddress
  std::string ca_file;        // BIFROST_CACERT given to executions ("" = none)
  std::string work_root;      // where the SDK and the executions' own directories go
  // The user workflows run as when the server runs as root ("" = keep the server's user,
  // which only root can refuse). Ignored when the server is not root.
  std::string run_as_user = "nobody";
  bool landlock = true;  // confine the file system with Landlock when the kernel has it
  // Start even when workflows would be confined by nothing: no Landlock and the server's
  // own user (Create refuses that otherwise).
  bool allow_unconfined = false;
  // Files and directories no workflow may read (the data directory, key files, the TLS
  // key): Create refuses to start when one lies inside a path the sandbox lets workflows
  // read, such as /opt or the workflows directory.
  std::vector<std::string> protected_paths;
  int max_concurrent = 4;
  std::size_t max_queued = 1000;
  std::int64_t default_timeout_seconds = 60;
  std::int64_t max_timeout_seconds = 3600;
  std::size_t max_log_bytes = 1 << 20;
  std::size_t max_result_bytes = 1 << 20;
  std::size_t max_error_bytes = 64 * 1024;

  // This node among several: a name for people (host and listen address; "" = the host
  // name), and whether other nodes share the store (PostgreSQL). Without a shared store
  // every unfinished execution of another node is ended at start, as a previous server's;
  // with one, only those of nodes whose heartbeat is older than `orphan_after`.
  std::string node_name;
  bool shared_store = false;
  // With a shared store: how often the node's heartbeat is written (and dead nodes'
  // executions failed), after how long without one a node is taken for dead, and how often
  // cancel requests for this node's executions (and other nodes' executions being waited
  // for) are looked for. orphan_after must be at least twice heartbeat_interval.
  std::chrono::milliseconds heartbeat_interval{5000};
  std::chrono::milliseconds orphan_after{30000};
  std::chrono::milliseconds poll_interval{1000};
};

// One line to the server's log: level ("info", "warn", "error"), message, and fields.
using RuntimeLog = std::function<void(std::string_view level, std::string_view message,
                                      const std::vector<std::pair<std::string, std::string>>&)>;

struct StartRequest {
  std::string workflow;
  std::string org_id;
  std::string parameters = "{}";  // a JSON object, as text
  std::string caller_id;
  std::string caller_name;
  // Whether the caller may write the organization's config: the execution's token may then
  // too, and only then.
  bool may_write = false;
};

class Runtime {
 public:
  // Writes the SDK, prepares the sandbox, ends executions a previous server left unfinished,
  // loads the catalog (a load failure is logged, not fatal: the catalog is then empty with
  // the error) and starts the workers. `store`, `tokens`, `clock` must outlive it.
  static Result<std::unique_ptr<Runtime>> Create(RuntimeOptions options, store::Store& store,
                                                 auth::ExecutionTokens& tokens, const Clock& clock,
                                                 RuntimeLog log);
  ~Runtime();  // Shutdown()
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The address executions reach the server at (known once it is bound).
  void SetApiAddress(std::string address);

  // Scans the directory again; the new catalog replaces the old one for runs started after.
  // kFailedPrecondition when the server has no workflows directory.
  Result<std::shared_ptr<const Catalog>> Reload();
  std::shared_ptr<const Catalog> catalog() const;
  bool enabled() const { return !options_.workflows_dir.empty(); }

  // Queues an execution. kNotFound for an unknown workflow or organization, kUnavailable
  // when the queue is full or the runtime is stopping. `before_commit` runs in the insert's
  // transaction (the audit record).
  Result<store::ExecutionRow> Start(
      const StartRequest& request,
      const store::CommitHookWith<store::ExecutionRow>& before_commit = {});

  // Cancels a pending or running execution: a pending one ends at once, a running one when
  // its process group is killed (soon after). An execution another node runs is cancelled
  // by that node (within about poll_interval): the request is recorded and the row returned
  // still pending or running. kNotFound if unknown; kFailedPrecondition if it has already
  // finished. Returns the row as it is now.
  Result<store::ExecutionRow> Cancel(std::string_view id, std::string_view by);

  // The stored row; for a running execution, the logs so far (redacted) in place of the
  // stored (empty) ones.
  Result<std::optional<store::ExecutionRow>> Get(std::string_view id);

  // Calls `done` (from another thread, or at once) when the execution has finished or
  // `deadline` has passed, whichever comes first. At most `max waiters` callbacks wait at
  // once; past that `done` is called at once. With a shared store an execution another node
  // runs is watched through the store (every poll_interval).
  void WhenFinished(std::string_view id, std::chrono::steady_clock::time_point deadline,
                    std::function<void()> done);

  // A secret value an execution was given (a reveal by its token) or wrote: redacted from
  // its output. No effect for an execution that is not running.
  void NoteSecret(std::string_view execution_id, std::string_view value);

  // Stops taking work, cancels pending executions, kills running ones, ends waiters, joins
  // the workers and the node's thread, and removes the node's row. Idempotent.
  void Shutdown();

  struct Stats {
    std::size_t queued = 0;
    std::size_t running = 0;
  };
  Stats stats() const;

  // This node's id (store::NodeRow::id), stamped on the executions it inserts.
  const std::string& node_id() const { return node_id_; }

 private:
  struct Running;
  struct Waiter {
    std::string id;
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> done;
    bool remote = false;  // another node runs it: watched through the store
  };

  Runtime(RuntimeOptions options, store::Store& store, auth::ExecutionTokens& tokens,
          const Clock& clock, RuntimeLog log);
  void WorkerLoop();
  void TimerLoop();
  void NodeLoop();
  // Writes the node's heartbeat; when the row was gone (other nodes took this node for
  // dead), stops the executions whose rows they ended. Then fails dead nodes' executions.
  void Heartbeat();
  // Stops the executions of this node whose rows another node ended.
  void AbandonEndedExecutions();
  void PollCancelRequests();
  void PollRemoteWaiters();
  Status RegisterNode();
  Status FailOrphans(UnixMicros stale_before);
  // Records an execution's new state unless its row has already finished (another node
  // ended it, taking this one for dead): then kFailedPrecondition and nothing is written.
  Status Save(const store::ExecutionRow& row);
  void Execute(const std::string& id);
  void Finish(const std::string& id);
  Result<Catalog> Scan();
  // kFailedPrecondition when a protected path is readable through the sandbox's rules.
  Status CheckProtectedPaths() const;
  void Log(std::string_view level, std::string_view message,
           const std::vector<std::pair<std::string, std::string>>& fields = {}) const;

  RuntimeOptions options_;
  store::Store* store_;
  auth::ExecutionTokens* tokens_;
  const Clock* clock_;
  RuntimeLog log_;
  std::string node_id_;
  std::string node_name_;
  UnixMicros node_started_at_ = 0;
  bool node_registered_ = false;
  bool heartbeat_failing_ = false;  // only the node thread touches it
  // When this node's heartbeat was recorded again after failing (the node thread's; 0: it
  // never failed). Other nodes' heartbeats are judged stale only once this node has been
  // recording its own for orphan_after since then: after a database outage every heartbeat
  // is old, and the node that gets through first must not take the others for dead.
  UnixMicros heartbeats_ok_since_ = 0;
  std::string sdk_dir_;
  int run_as_uid_ = -1;
  int run_as_gid_ = -1;
  bool landlock_ = false;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable timer_cv_;
  std::condition_variable node_cv_;
  bool stopping_ = false;
  std::string api_address_;
  std::shared_ptr<const Catalog> catalog_;
  std::mutex reload_mu_;           // one scan at a time
  std::deque<std::string> queue_;  // pending execution ids
  std::size_t starting_ = 0;       // Start()s between their limit check and their queueing
  std::map<std::string, std::shared_ptr<Running>, std::less<>> active_;  // pending or running
  std::vector<Waiter> waiters_;
  std::vector<std::thread> workers_;
  std::thread timer_;
  std::thread node_;  // only with a shared store
};

}  // namespace bifrost::workflow
