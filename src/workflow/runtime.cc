#include "workflow/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "common/text.h"
#include "config/json_text.h"
#include "crypto/random.h"
#include "crypto/secure_buffer.h"
#include "workflow/process.h"
#include "workflow/python_sdk.h"
#include "workflow/redactor.h"
#include "workflow/sandbox.h"

namespace bifrost::workflow {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxWaiters = 10'000;
// An execution token outlives the time limit by this much at most (it is revoked as soon as
// the execution ends; this only bounds a token whose revocation was somehow missed).
constexpr std::int64_t kTokenGraceSeconds = 60;
// A result may nest this deep, like a config value (a deeper one fails the execution).
constexpr std::size_t kMaxResultDepth = 64;

std::string ErrnoText() { return std::strerror(errno); }

// A new private directory under `root`, owned by the workflows' user.
Result<std::string> MakeWorkDir(const std::string& root, std::string_view prefix, int uid,
                                int gid) {
  std::string pattern = root + "/" + std::string(prefix) + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                "cannot create a working directory under " + root + ": " + ErrnoText());
  }
  if (uid >= 0 && ::chown(pattern.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
    const std::string reason = ErrnoText();
    ::rmdir(pattern.c_str());
    return Fail(ErrorCode::kUnavailable,
                "cannot hand " + pattern + " to the workflows' user: " + reason);
  }
  return pattern;
}

void RemoveTree(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

// Removes a directory a workflow had for its own, as the workflows' user: a process of the
// workflow that outlived it may still change the tree, and the server (root) must not be the
// one following what it put there. rm walks with directory descriptors and never follows a
// symbolic link.
void RemoveWorkDir(const std::string& path, int uid, int gid) {
  ProcessSpec spec;
  spec.argv = {"/bin/rm", "-rf", "--", path};
  spec.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  spec.run_as_uid = uid;
  spec.run_as_gid = gid;
  spec.timeout = std::chrono::seconds(30);
  spec.max_log_bytes = 4096;
  // That user may not remove the directory itself from its parent: the server does, and
  // rmdir removes only an empty directory, never what a link points to. A failure leaves it
  // to the system's cleaning of temporary files; nothing in it is the server's (the
  // execution's token is dead, its output was redacted).
  (void)RunProcess(spec);
  ::rmdir(path.c_str());
}

// Wipes a string that held a token (the environment entry of an execution).
void WipeString(std::string& text) {
  crypto::SecureWipe(text.data(), text.size());
  text.clear();
}

// Cuts `text` to at most `limit` bytes; says whether it did.
// Cuts `text` to at most `limit` bytes, never inside a UTF-8 sequence.
bool CutTo(std::string& text, std::size_t limit) {
  if (text.size() <= limit) return false;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return true;
}

bool IsFinal(std::string_view status) { return status != "pending" && status != "running"; }

// The host name, for a node that was given no name.
std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "unknown host";
  return name;
}

constexpr std::string_view kStoppedServer = "the server stopped before the execution finished";
constexpr std::string_view kStoppedNode =
    "the server node running the execution stopped before it finished";

std::string Seconds(std::int64_t seconds) {
  std::string text = std::to_string(seconds);
  text += seconds == 1 ? " second" : " seconds";
  return text;
}

}  // namespace

struct Runtime::Running {
  store::ExecutionRow row;  // as inserted (pending)
  std::string org_name;
  WorkflowDef def;
  std::int64_t timeout_seconds = 0;
  bool may_write = false;
  bool started = false;
  bool cancelled = false;
  std::string cancelled_by;
  // Another node ended its row, taking this node for dead: nothing more is recorded.
  bool abandoned = false;
  CancelSignal cancel;
  Redactor redactor;
  std::mutex logs_mu;
  std::string live_logs;  // what it printed so far, capped
  bool live_cut = false;
};

Runtime::Runtime(RuntimeOptions options, store::Store& store, auth::ExecutionTokens& tokens,
                 const Clock& clock, RuntimeLog log)
    : options_(std::move(options)),
      store_(&store),
      tokens_(&tokens),
      clock_(&clock),
      log_(std::move(log)),
      api_address_(options_.api_address) {}

Result<std::unique_ptr<Runtime>> Runtime::Create(RuntimeOptions options, store::Store& store,
                                                 auth::ExecutionTokens& tokens, const Clock& clock,
                                                 RuntimeLog log) {
  if (options.max_concurrent < 1 || options.max_concurrent > 256) {
    return Fail(ErrorCode::kInvalidArgument, "--workflow-concurrency must be between 1 and 256");
  }
  if (options.default_timeout_seconds < 1 ||
      options.default_timeout_seconds > options.max_timeout_seconds) {
    return Fail(ErrorCode::kInvalidArgument,
                "--workflow-timeout must be between 1 and " + Seconds(options.max_timeout_seconds));
  }
  if (options.shared_store) {
    using std::chrono::milliseconds;
    if (options.heartbeat_interval < milliseconds(1) || options.poll_interval < milliseconds(1)) {
      return Fail(ErrorCode::kInvalidArgument,
                  "the node heartbeat and poll intervals must be at least one millisecond");
    }
    if (options.orphan_after < 2 * options.heartbeat_interval) {
      return Fail(ErrorCode::kInvalidArgument,
                  "a node must be taken for dead only after at least two missed heartbeats "
                  "(orphan_after >= 2 * heartbeat_interval)");
    }
  }
  if (options.work_root.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    options.work_root = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::unique_ptr<Runtime> runtime(
      new Runtime(std::move(options), store, tokens, clock, std::move(log)));
  Runtime& self = *runtime;

  BIFROST_ASSIGN_OR_RETURN(self.node_id_, crypto::NewUuidV4());
  self.node_name_ = self.options_.node_name.empty() ? HostName() : self.options_.node_name;
  self.node_started_at_ = clock.NowMicros();
  BIFROST_RETURN_IF_ERROR(self.RegisterNode());

  // Executions a stopped server left behind can never finish now. Alone on its store, this
  // node ends every one it does not run; beside other nodes, only those of nodes whose
  // heartbeat stopped.
  if (self.options_.shared_store) {
    const auto orphan_after =
        std::chrono::duration_cast<std::chrono::microseconds>(self.options_.orphan_after);
    BIFROST_RETURN_IF_ERROR(self.FailOrphans(clock.NowMicros() - orphan_after.count()));
  } else {
    BIFROST_RETURN_IF_ERROR(self.FailOrphans(std::numeric_limits<UnixMicros>::max()));
  }

  auto empty = std::make_shared<Catalog>();
  empty->loaded_at = clock.NowMicros();
  self.catalog_ = empty;
  if (self.enabled()) {
    if (::geteuid() == 0 && !self.options_.run_as_user.empty()) {
      BIFROST_ASSIGN_OR_RETURN(const UserIds ids, LookupUser(self.options_.run_as_user));
      self.run_as_uid_ = ids.uid;
      self.run_as_gid_ = ids.gid;
    } else if (::geteuid() == 0) {
      self.Log("warn",
               "workflows run as root (--workflow-user \"\"): they can read the data directory "
               "and key files unless Landlock confines them");
    }
    if (self.options_.landlock) {
      self.landlock_ = LandlockAbi() > 0;
      if (!self.landlock_) {
        self.Log("warn",
                 "this kernel has no Landlock: workflows are confined only by the permissions "
                 "of their user");
      }
    }
    if (!self.landlock_ && self.run_as_uid_ < 0 && !self.options_.allow_unconfined) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "workflows would run as the server's own user with no file-system "
                  "confinement (this kernel has no Landlock), so they could read the data "
                  "directory and key files: run the server as root (workflows then run as "
                  "--workflow-user), or accept the risk with --workflow-allow-unconfined");
    }
    if (self.landlock_) BIFROST_RETURN_IF_ERROR(self.CheckProtectedPaths());
    BIFROST_ASSIGN_OR_RETURN(self.sdk_dir_, WritePythonSdk(self.options_.work_root));
    auto loaded = self.Reload();
    if (!loaded) {
      auto failed = std::make_shared<Catalog>();
      failed->loaded_at = clock.NowMicros();
      failed->errors.push_back({self.options_.workflows_dir, loaded.error().message()});
      self.catalog_ = failed;
      self.Log("error", "cannot load workflows", {{"message", loaded.error().message()}});
    }
  }
  for (int i = 0; i < self.options_.max_concurrent; ++i) {
    self.workers_.emplace_back([&self] { self.WorkerLoop(); });
  }
  self.timer_ = std::thread([&self] { self.TimerLoop(); });
  if (self.options_.shared_store) self.node_ = std::thread([&self] { self.NodeLoop(); });
  return runtime;
}

Status Runtime::RegisterNode() {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  const UnixMicros now = clock_->NowMicros();
  BIFROST_RETURN_IF_ERROR(txn->UpsertNode(
      {.id = node_id_, .name = node_name_, .started_at = node_started_at_, .heartbeat_at = now}));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  node_registered_ = true;
  Log("info", "workflow runtime node registered", {{"node_id", node_id_}, {"node", node_name_}});
  return Ok();
}

Status Runtime::FailOrphans(UnixMicros stale_before) {
  const bool alone = !options_.shared_store;
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(
      const std::int64_t ended,
      txn->FailOrphanedExecutions(alone ? kStoppedServer : kStoppedNode, clock_->NowMicros(),
                                  node_id_, stale_before));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  if (ended > 0) {
    Log("warn",
        alone ? "executions left unfinished by a previous server were marked failed"
              : "executions of server nodes that stopped were marked failed",
        {{"count", std::to_string(ended)}});
  }
  return Ok();
}

Status Runtime::Save(const store::ExecutionRow& row) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(const auto stored, txn->GetExecution(row.id));
  if (!stored.has_value()) return Fail(ErrorCode::kNotFound, "execution not found");
  if (IsFinal(stored->status)) {
    return Fail(ErrorCode::kFailedPrecondition,
                "execution " + row.id + " was already ended (" + stored->status +
                    ") by another server node, which took this one for stopped");
  }
  BIFROST_RETURN_IF_ERROR(txn->UpdateExecution(row));
  return txn->Commit();
}

void Runtime::NodeLoop() {
  using SteadyClock = std::chrono::steady_clock;
  auto next_heartbeat = SteadyClock::now() + options_.heartbeat_interval;
  auto next_poll = SteadyClock::now() + options_.poll_interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    node_cv_.wait_until(lock, std::min(next_heartbeat, next_poll), [this] { return stopping_; });
    if (stopping_) return;
    const auto now = SteadyClock::now();
    const bool beat = now >= next_heartbeat;
    const bool poll = now >= next_poll;
    lock.unlock();
    if (beat) {
      Heartbeat();
      next_heartbeat = SteadyClock::now() + options_.heartbeat_interval;
    }
    if (poll) {
      PollCancelRequests();
      PollRemoteWaiters();
      next_poll = SteadyClock::now() + options_.poll_interval;
    }
    lock.lock();
  }
}

void Runtime::Heartbeat() {
  bool was_taken_for_dead = false;
  auto written = [&]() -> Status {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(const auto nodes, txn->ListNodes());
    was_taken_for_dead = std::none_of(nodes.begin(), nodes.end(), [&](const store::NodeRow& node) {
      return node.id == node_id_;
    });
    BIFROST_RETURN_IF_ERROR(txn->UpsertNode({.id = node_id_,
                                             .name = node_name_,
                                             .started_at = node_started_at_,
                                             .heartbeat_at = clock_->NowMicros()}));
    return txn->Commit();
  }();
  if (!written) {
    // Said once per outage, not at every beat.
    if (!heartbeat_failing_) {
      Log("error", "cannot record this node's heartbeat",
          {{"node_id", node_id_}, {"message", written.error().message()}});
    }
    heartbeat_failing_ = true;
    return;
  }
  if (heartbeat_failing_) {
    Log("info", "this node's heartbeat is recorded again");
    heartbeats_ok_since_ = clock_->NowMicros();
  }
  heartbeat_failing_ = false;

  if (was_taken_for_dead) {
    // Its heartbeat was missing for longer than orphan_after, so another node ended its
    // executions as left behind. Those rows stay ended: their processes are stopped and
    // whatever they produce is dropped.
    Log("warn",
        "this node's heartbeat was missing for too long and other nodes took it for stopped; "
        "the executions they ended here are stopped",
        {{"node_id", node_id_}});
    AbandonEndedExecutions();
  }

  const auto orphan_after =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.orphan_after);
  const UnixMicros now = clock_->NowMicros();
  if (now - heartbeats_ok_since_ < orphan_after.count()) return;
  const Status swept = FailOrphans(now - orphan_after.count());
  if (!swept) {
    Log("error", "cannot end the executions of stopped server nodes",
        {{"message", swept.error().message()}});
  }
}

void Runtime::AbandonEndedExecutions() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, running] : active_) ids.push_back(id);
  }
  std::set<std::string> ended;
  {
    auto txn = store_->Begin(store::TxnMode::kRead);
    if (!txn) return;  // the next beat finds the row missing no more; Save still guards
    for (const std::string& id : ids) {
      auto row = (*txn)->GetExecution(id);
      if (row && (!row->has_value() || IsFinal((*row)->status))) ended.insert(id);
    }
  }
  std::vector<std::string> finished_now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& id : ended) {
      const auto it = active_.find(id);
      if (it == active_.end()) continue;
      Running& running = *it->second;
      running.abandoned = true;
      running.cancelled = true;
      if (running.started) {
        running.cancel.Fire();
      } else {
        queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
        finished_now.push_back(id);
      }
    }
  }
  for (const std::string& id : finished_now) Finish(id);
}

void Runtime::PollCancelRequests() {
  std::vector<store::ExecutionRow> requested;
  auto listed = [&]() -> Status {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
    for (const char* status : {"pending", "running"}) {
      store::ExecutionFilter filter;
      filter.node_id = node_id_;
      filter.cancel_requested = true;
      filter.status = status;
      filter.limit = options_.max_queued + static_cast<std::size_t>(options_.max_concurrent) + 1;
      BIFROST_ASSIGN_OR_RETURN(auto rows, txn->ListExecutions(filter));
      for (auto& row : rows) requested.push_back(std::move(row));
    }
    return Ok();
  }();
  if (!listed) {
    Log("error", "cannot read cancel requests for this node's executions",
        {{"message", listed.error().message()}});
    return;
  }
  for (const store::ExecutionRow& row : requested) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto it = active_.find(row.id);
      if (it == active_.end() || it->second->cancelled) continue;
    }
    const std::string by = row.cancel_requested_by.value_or("another server node");
    auto cancelled = Cancel(row.id, by);
    if (!cancelled && cancelled.error().code() != ErrorCode::kFailedPrecondition) {
      Log("error", "cannot cancel an execution another node asked to cancel",
          {{"execution_id", row.id}, {"message", cancelled.error().message()}});
    }
  }
}

void Runtime::PollRemoteWaiters() {
  std::set<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Waiter& waiter : waiters_) {
      if (waiter.remote) ids.insert(waiter.id);
    }
  }
  if (ids.empty()) return;
  std::set<std::string, std::less<>> ended;
  {
    auto txn = store_->Begin(store::TxnMode::kRead);
    if (!txn) return;  // tried again at the next poll; deadlines still end the waits
    for (const std::string& id : ids) {
      auto row = (*txn)->GetExecution(id);
      if (row && (!row->has_value() || IsFinal((*row)->status))) ended.insert(id);
    }
  }
  std::vector<std::function<void()>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->remote && ended.contains(it->id)) {
        done.push_back(std::move(it->done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& callback : done) callback();
}

Runtime::~Runtime() {
  Shutdown();
  if (!sdk_dir_.empty()) RemoveTree(sdk_dir_);
}

Status Runtime::CheckProtectedPaths() const {
  SandboxPaths readable = SystemSandboxPaths(options_.python);
  readable.read.push_back(options_.workflows_dir);
  if (!options_.ca_file.empty()) readable.read.push_back(options_.ca_file);
  const auto resolve = [](const std::string& path) {
    std::error_code ignored;
    std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ignored);
    return resolved.empty() ? std::filesystem::absolute(path, ignored) : resolved;
  };
  for (const std::string& wanted : options_.protected_paths) {
    if (wanted.empty()) continue;
    const std::string inner = resolve(wanted).string();
    for (const std::string& allowed : readable.read) {
      const std::string outer = resolve(allowed).string();
      if (outer.empty() || outer == "/") continue;
      if (inner == outer || inner.starts_with(outer + "/")) {
        return Fail(ErrorCode::kFailedPrecondition,
                    wanted + " lies inside " + allowed +
                        ", which workflows may read: keep the data directory and key files "
                        "outside the workflows directory and the system paths workflows read "
                        "(docs/workflows.md, \"Isolation\")");
      }
    }
  }
  return Ok();
}

void Runtime::Log(std::string_view level, std::string_view message,
                  const std::vector<std::pair<std::string, std::string>>& fields) const {
  if (log_) log_(level, message, fields);
}

void Runtime::SetApiAddress(std::string address) {
  std::lock_guard<std::mutex> lock(mu_);
  api_address_ = std::move(address);
}

std::shared_ptr<const Catalog> Runtime::catalog() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_;
}

Result<Catalog> Runtime::Scan() {
  BIFROST_ASSIGN_OR_RETURN(const std::string work, MakeWorkDir(options_.work_root, "bifrost-scan-",
                                                               run_as_uid_, run_as_gid_));
  ScanEnvironment env;
  env.python = options_.python;
  env.sdk_dir = sdk_dir_;
  env.work_dir = work;
  env.run_as_uid = run_as_uid_;
  env.run_as_gid = run_as_gid_;
  int ruleset = -1;
  if (landlock_) {
    SandboxPaths paths = SystemSandboxPaths(options_.python);
    paths.read.push_back(options_.workflows_dir);
    paths.read.push_back(sdk_dir_);
    paths.read_write.push_back(work);
    auto made = MakeLandlockRuleset(paths);
    if (!made) {
      RemoveWorkDir(work, run_as_uid_, run_as_gid_);
      return Fail(std::move(made.error()));
    }
    ruleset = *made;
  }
  env.landlock_ruleset_fd = ruleset;
  auto catalog = LoadCatalog(options_.workflows_dir, env, options_.max_timeout_seconds, *clock_);
  if (ruleset >= 0) ::close(ruleset);
  RemoveWorkDir(work, run_as_uid_, run_as_gid_);
  return catalog;
}

Result<std::shared_ptr<const Catalog>> Runtime::Reload() {
  if (!enabled()) {
    return Fail(ErrorCode::kFailedPrecondition,
                "this server has no workflows directory; start it with --workflows DIR");
  }
  std::lock_guard<std::mutex> reload(reload_mu_);
  BIFROST_ASSIGN_OR_RETURN(Catalog scanned, Scan());
  auto shared = std::make_shared<const Catalog>(std::move(scanned));
  {
    std::lock_guard<std::mutex> lock(mu_);
    catalog_ = shared;
  }
  Log("info", "workflows loaded",
      {{"workflows", std::to_string(shared->workflows.size())},
       {"broken_files", std::to_string(shared->errors.size())}});
  for (const LoadError& error : shared->errors) {
    Log("warn", "workflow file skipped", {{"file", error.file}, {"error", error.error}});
  }
  return shared;
}

Result<store::ExecutionRow> Runtime::Start(
    const StartRequest& request, const store::CommitHookWith<store::ExecutionRow>& before_commit) {
  const std::shared_ptr<const Catalog> current = catalog();
  const WorkflowDef* def = current->Find(request.workflow);
  if (def == nullptr) {
    return Fail(ErrorCode::kNotFound, "no workflow named " + QuoteForMessage(request.workflow) +
                                          " is loaded (`bifrost workflow list` shows them)");
  }
  auto running = std::make_shared<Running>();
  running->def = *def;
  running->may_write = request.may_write;
  running->timeout_seconds = def->timeout_seconds.value_or(options_.default_timeout_seconds);
  BIFROST_ASSIGN_OR_RETURN(std::string id, crypto::NewUuidV4());
  store::ExecutionRow& row = running->row;
  row.id = id;
  row.workflow = def->name;
  row.org_id = request.org_id;
  row.caller_id = request.caller_id;
  row.caller_name = request.caller_name;
  row.status = "pending";
  row.parameters = request.parameters;
  row.timeout_seconds = running->timeout_seconds;
  row.created_at = clock_->NowMicros();
  row.node_id = node_id_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Fail(ErrorCode::kUnavailable, "the server is stopping");
    // Executions being inserted count against the limit too, so that concurrent starts
    // cannot all pass the check before any of them is queued.
    const std::size_t waiting = queue_.size() + starting_;
    if (waiting >= options_.max_queued) {
      return Fail(ErrorCode::kUnavailable, "too many executions are waiting (" +
                                               std::to_string(waiting) +
                                               "); try again when some have finished");
    }
    ++starting_;
    active_.emplace(id, running);
  }
  auto inserted = [&]() -> Status {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(auto org, txn->GetOrgById(request.org_id));
    if (!org.has_value()) return Fail(ErrorCode::kNotFound, "organization not found");
    running->org_name = org->name;
    BIFROST_RETURN_IF_ERROR(txn->InsertExecution(row));
    if (before_commit) BIFROST_RETURN_IF_ERROR(before_commit(*txn, row));
    return txn->Commit();
  }();
  bool stopped = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --starting_;
    if (!inserted) {
      active_.erase(id);
    } else if (stopping_) {
      // Shutdown came between the check and the commit: nobody will run it.
      stopped = true;
    } else {
      queue_.push_back(id);
    }
  }
  if (!inserted) return Fail(std::move(inserted.error()));
  if (stopped) {
    store::ExecutionRow ended = row;
    ended.status = "cancelled";
    ended.error = "the server stopped before the execution started";
    ended.finished_at = clock_->NowMicros();
    (void)Save(ended);
    Finish(id);
    return Fail(ErrorCode::kUnavailable, "the server is stopping");
  }
  work_cv_.notify_one();
  return row;
}

void Runtime::WorkerLoop() {
  while (true) {
    std::string id;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = std::move(queue_.front());
      queue_.pop_front();
    }
    Execute(id);
  }
}

void Runtime::Execute(const std::string& id) {
  std::shared_ptr<Running> running;
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = active_.find(id);
    if (it == active_.end()) return;
    running = it->second;
    if (running->cancelled) return;  // Cancel() ended it
    running->started = true;
    address = api_address_;
  }
  store::ExecutionRow row = running->row;
  const auto save = [&](const store::ExecutionRow& update) {
    Status saved = Save(update);
    if (!saved && saved.error().code() == ErrorCode::kFailedPrecondition) {
      Log("warn", "the outcome of an execution another node already ended is dropped",
          {{"execution_id", update.id},
           {"status", update.status},
           {"message", saved.error().message()}});
    } else if (!saved) {
      Log("error", "cannot record the state of an execution",
          {{"execution_id", update.id},
           {"status", update.status},
           {"message", saved.error().message()}});
    }
    return saved;
  };

  row.status = "running";
  row.started_at = clock_->NowMicros();
  if (!save(row)) {
    Finish(id);
    return;
  }

  std::string error;
  std::string status = "failed";
  bool stopped_short = false;
  std::optional<std::string> result;
  bool logs_cut = false;
  std::string logs;
  auto work = MakeWorkDir(options_.work_root, "bifrost-exec-", run_as_uid_, run_as_gid_);
  int ruleset = -1;
  if (work && landlock_) {
    SandboxPaths paths = SystemSandboxPaths(options_.python);
    paths.read.push_back(running->def.file);
    paths.read.push_back(options_.workflows_dir);
    paths.read.push_back(sdk_dir_);
    if (!options_.ca_file.empty()) paths.read.push_back(options_.ca_file);
    paths.read_write.push_back(*work);
    auto made = MakeLandlockRuleset(paths);
    if (made) {
      ruleset = *made;
    } else {
      error = "cannot prepare the sandbox: " + made.error().message();
    }
  }
  if (!work) error = work.error().message();
  if (error.empty() && address.empty()) {
    error = "the server has no address for executions yet; try again";
  }

  if (error.empty()) {
    const UnixMicros now = clock_->NowMicros();
    auto token = tokens_->Issue(
        {.execution_id = id,
         .workflow = row.workflow,
         .org_id = row.org_id,
         .expires_at = now + (running->timeout_seconds + kTokenGraceSeconds) * 1'000'000,
         .may_write = running->may_write});
    if (!token) {
      error = token.error().message();
    } else {
      // The token is dead once the execution ends, but it is not for anyone to read.
      running->redactor.Add(token->view());
      ProcessSpec spec;
      if (running->def.kind == WorkflowDef::Kind::kPython) {
        spec.argv = {options_.python, "-m", "bifrost._run", running->def.file,
                     running->def.function};
      } else {
        spec.argv = {running->def.file};
      }
      std::string token_entry = "BIFROST_TOKEN=";
      token_entry.append(token->view());
      // Built entry by entry: an initializer list would leave an unwiped copy of the token.
      spec.env.reserve(16);
      for (std::string entry :
           {std::string("PATH=/usr/local/bin:/usr/bin:/bin"), std::string("LANG=C.UTF-8"),
            "HOME=" + *work, "TMPDIR=" + *work, "BIFROST_ADDR=" + address}) {
        spec.env.push_back(std::move(entry));
      }
      spec.env.push_back(std::move(token_entry));
      for (std::string entry :
           {"BIFROST_EXECUTION_ID=" + id, "BIFROST_WORKFLOW=" + row.workflow,
            "BIFROST_ORG_ID=" + row.org_id, "BIFROST_ORG_NAME=" + running->org_name,
            std::string("BIFROST_RESULT_FD=3")}) {
        spec.env.push_back(std::move(entry));
      }
      if (!options_.ca_file.empty()) spec.env.push_back("BIFROST_CACERT=" + options_.ca_file);
      if (running->def.kind == WorkflowDef::Kind::kPython) {
        spec.env.push_back("PYTHONPATH=" + sdk_dir_);
        spec.env.push_back("PYTHONUNBUFFERED=1");
        spec.env.push_back("PYTHONDONTWRITEBYTECODE=1");
      }
      Json parameters = Json::parse(row.parameters, nullptr, /*allow_exceptions=*/false);
      if (!parameters.is_object()) parameters = Json::object();
      const Json input = {{"execution_id", id},
                          {"workflow", row.workflow},
                          {"org", {{"id", row.org_id}, {"name", running->org_name}}},
                          {"caller", {{"id", row.caller_id}, {"name", row.caller_name}}},
                          {"parameters", std::move(parameters)}};
      spec.stdin_data = input.dump();
      spec.working_dir = *work;
      spec.timeout = std::chrono::seconds(running->timeout_seconds);
      // Kept a little past the limit, so a secret cut at the limit is still recognized
      // and removed whole (see Redactor::Apply).
      spec.max_log_bytes = options_.max_log_bytes;
      spec.max_result_bytes = options_.max_result_bytes;
      spec.run_as_uid = run_as_uid_;
      spec.run_as_gid = run_as_gid_;
      spec.landlock_ruleset_fd = ruleset;
      const std::size_t live_limit = options_.max_log_bytes;
      auto outcome = RunProcess(spec, &running->cancel, [&](std::string_view chunk) {
        std::lock_guard<std::mutex> lock(running->logs_mu);
        if (running->live_logs.size() < live_limit) {
          running->live_logs.append(chunk.substr(0, live_limit - running->live_logs.size()));
        }
      });
      tokens_->Revoke(id);
      for (std::string& entry : spec.env) WipeString(entry);
      if (!outcome) {
        error = outcome.error().message();
      } else {
        logs = std::move(outcome->logs);
        logs_cut = outcome->logs_truncated;
        stopped_short = outcome->end != ProcessOutcome::End::kExited;
        switch (outcome->end) {
          case ProcessOutcome::End::kTimedOut:
            status = "timeout";
            error = "the execution did not finish within its time limit of " +
                    Seconds(running->timeout_seconds) + " and was stopped";
            break;
          case ProcessOutcome::End::kCancelled: {
            std::lock_guard<std::mutex> lock(mu_);
            status = "cancelled";
            error = "cancelled by " + (running->cancelled_by.empty() ? std::string("the server")
                                                                     : running->cancelled_by);
            break;
          }
          case ProcessOutcome::End::kSignaled:
            error = "the workflow process was killed by signal " + std::to_string(outcome->signal);
            break;
          case ProcessOutcome::End::kExited: {
            std::optional<std::string> reported_error;
            if (outcome->result_too_large) {
              reported_error = "the result is larger than the limit of " +
                               std::to_string(options_.max_result_bytes) + " bytes";
            } else if (outcome->result.find_first_not_of(" \t\r\n") != std::string::npos) {
              // Nesting is bounded before anything recursive (serialising) touches it.
              const auto checked =
                  config::json_text::Check(outcome->result, {.max_depth = kMaxResultDepth});
              const bool nested_too_deep =
                  checked && checked->kind == config::json_text::CheckError::Kind::kTooDeep;
              Json document =
                  nested_too_deep ? Json() : Json::parse(outcome->result, nullptr, false);
              const auto state = document.is_object() ? document.find("status") : document.end();
              if (!document.is_object() || state == document.end() || !state->is_string()) {
                reported_error = nested_too_deep
                                     ? "the result nests deeper than " +
                                           std::to_string(kMaxResultDepth) + " levels"
                                     : std::string(
                                           "the workflow wrote something other than a result "
                                           "document to its result channel (see docs/workflows.md, "
                                           "\"The process protocol\")");
              } else if (*state == "success") {
                const auto value = document.find("result");
                result = value == document.end() ? std::string("null") : value->dump();
              } else {
                const auto text = document.find("error");
                reported_error = text != document.end() && text->is_string()
                                     ? text->get<std::string>()
                                     : std::string("the workflow failed without saying why");
              }
            }
            if (outcome->exit_code == 0 && !reported_error.has_value()) {
              status = "success";
              if (!result.has_value()) result = "null";
            } else {
              result.reset();
              error = reported_error.value_or("the workflow process exited with status " +
                                              std::to_string(outcome->exit_code));
            }
            break;
          }
        }
      }
    }
  }
  if (ruleset >= 0) ::close(ruleset);
  if (work) RemoveWorkDir(*work, run_as_uid_, run_as_gid_);

  // Nothing the execution saw of a secret leaves redaction. Output that stopped short (cut
  // at the limit, or the process killed while writing) may end inside a secret.
  // Whatever bytes the process wrote (binary, NUL, a character cut at the limit) are stored
  // as valid UTF-8: a store may refuse anything else (PostgreSQL does), and a row that
  // cannot be saved would leave the execution running forever.
  row.logs = ToStorableText(running->redactor.Apply(logs, logs_cut || stopped_short));
  if (CutTo(row.logs, options_.max_log_bytes)) logs_cut = true;
  row.logs_truncated = logs_cut;
  if (result.has_value()) result = running->redactor.ApplyToJson(*result);
  row.result = std::move(result);
  if (!error.empty()) {
    const bool cut = error.size() > options_.max_error_bytes;
    if (cut) error.resize(options_.max_error_bytes);
    row.error = ToStorableText(running->redactor.Apply(error, cut));
  }
  row.status = status;
  row.finished_at = clock_->NowMicros();
  {
    std::lock_guard<std::mutex> lock(running->logs_mu);
    crypto::SecureWipe(running->live_logs.data(), running->live_logs.size());
    running->live_logs.clear();
  }
  crypto::SecureWipe(logs.data(), logs.size());
  (void)save(row);
  Finish(id);
}

void Runtime::Finish(const std::string& id) {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(id);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->id == id) {
        done.push_back(std::move(it->done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& callback : done) callback();
}

Result<store::ExecutionRow> Runtime::Cancel(std::string_view id, std::string_view by) {
  std::shared_ptr<Running> running;
  bool end_now = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = active_.find(id);
    if (it != active_.end()) {
      running = it->second;
      if (!running->cancelled) {
        running->cancelled = true;
        running->cancelled_by = std::string(by);
        if (!running->started) {
          end_now = true;
          queue_.erase(std::remove(queue_.begin(), queue_.end(), std::string(id)), queue_.end());
        }
      }
    }
  }
  if (running == nullptr) {
    const auto finished = [](const store::ExecutionRow& row) {
      return Fail(ErrorCode::kFailedPrecondition,
                  "execution " + row.id + " has already finished (" + row.status + ")");
    };
    BIFROST_ASSIGN_OR_RETURN(auto row, Get(id));
    if (!row.has_value()) return Fail(ErrorCode::kNotFound, "execution not found");
    if (IsFinal(row->status)) return finished(*row);
    // Another node runs it: that node cancels it when it sees the request.
    auto requested = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
      BIFROST_RETURN_IF_ERROR(txn->RequestExecutionCancel(id, by));
      return txn->Commit();
    }();
    if (!requested && requested.error().code() != ErrorCode::kFailedPrecondition) {
      return Fail(std::move(requested.error()));
    }
    BIFROST_ASSIGN_OR_RETURN(row, Get(id));
    if (!row.has_value()) return Fail(ErrorCode::kNotFound, "execution not found");
    if (!requested) return finished(*row);
    return std::move(*row);
  }
  if (end_now) {
    store::ExecutionRow row = running->row;
    row.status = "cancelled";
    row.error = "cancelled by " + std::string(by) + " before it started";
    row.finished_at = clock_->NowMicros();
    Status saved = Save(row);
    Finish(std::string(id));
    if (!saved) return Fail(std::move(saved.error()));
  } else {
    running->cancel.Fire();
  }
  BIFROST_ASSIGN_OR_RETURN(auto now, Get(id));
  if (!now.has_value()) return Fail(ErrorCode::kNotFound, "execution not found");
  return std::move(*now);
}

Result<std::optional<store::ExecutionRow>> Runtime::Get(std::string_view id) {
  std::optional<store::ExecutionRow> row;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kRead));
    BIFROST_ASSIGN_OR_RETURN(row, txn->GetExecution(id));
  }
  if (!row.has_value() || row->status != "running") return row;
  std::shared_ptr<Running> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = active_.find(id);
    if (it != active_.end()) running = it->second;
  }
  if (running != nullptr) {
    std::lock_guard<std::mutex> lock(running->logs_mu);
    // Output so far may end inside a secret: a trailing piece of one is redacted too.
    row->logs = running->redactor.Apply(running->live_logs, /*cut_at_end=*/true);
  }
  return row;
}

void Runtime::WhenFinished(std::string_view id, std::chrono::steady_clock::time_point deadline,
                           std::function<void()> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && waiters_.size() < kMaxWaiters) {
      // Not running here: with a shared store, perhaps on another node.
      const bool remote = !active_.contains(id);
      if (!remote || options_.shared_store) {
        waiters_.push_back({std::string(id), deadline, std::move(done), remote});
        timer_cv_.notify_one();
        return;
      }
    }
  }
  done();
}

void Runtime::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::function<void()>> due;
    auto next = now + std::chrono::hours(1);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline <= now) {
        due.push_back(std::move(it->done));
        it = waiters_.erase(it);
      } else {
        next = std::min(next, it->deadline);
        ++it;
      }
    }
    if (!due.empty()) {
      lock.unlock();
      for (auto& callback : due) callback();
      lock.lock();
      continue;
    }
    timer_cv_.wait_until(lock, next);
  }
}

void Runtime::NoteSecret(std::string_view execution_id, std::string_view value) {
  std::shared_ptr<Running> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = active_.find(execution_id);
    if (it == active_.end()) return;
    running = it->second;
  }
  running->redactor.Add(value);
}

void Runtime::Shutdown() {
  std::vector<std::shared_ptr<Running>> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, running] : active_) {
      running->cancelled = true;
      running->cancelled_by = "the server stopping";
      if (running->started) {
        running->cancel.Fire();
      } else {
        pending.push_back(running);
      }
    }
    queue_.clear();
  }
  work_cv_.notify_all();
  timer_cv_.notify_all();
  node_cv_.notify_all();
  if (node_.joinable()) node_.join();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  if (timer_.joinable()) timer_.join();
  for (const auto& running : pending) {
    store::ExecutionRow row = running->row;
    row.status = "cancelled";
    row.error = "the server stopped before the execution started";
    row.finished_at = clock_->NowMicros();
    if (!running->abandoned) (void)Save(row);
    Finish(running->row.id);
  }
  std::vector<std::function<void()>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& waiter : waiters_) left.push_back(std::move(waiter.done));
    waiters_.clear();
  }
  for (auto& callback : left) callback();

  // Every execution of this node has ended: it leaves the store's list of nodes.
  if (node_registered_) {
    auto removed = [&]() -> Status {
      BIFROST_ASSIGN_OR_RETURN(auto txn, store_->Begin(store::TxnMode::kWrite));
      BIFROST_RETURN_IF_ERROR(txn->DeleteNode(node_id_));
      return txn->Commit();
    }();
    if (!removed && removed.error().code() != ErrorCode::kNotFound) {
      Log("warn", "cannot remove this node from the store's list of nodes",
          {{"node_id", node_id_}, {"message", removed.error().message()}});
    }
  }
}

Runtime::Stats Runtime::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats stats;
  stats.queued = queue_.size();
  stats.running = active_.size() - std::min(active_.size(), queue_.size());
  return stats;
}

}  // namespace bifrost::workflow
