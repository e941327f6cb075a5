// The AuditLog: group commit on one writer thread, the file sink's catch-up, retention.
//
// Who writes what:
//  - the database: the writer thread (groups), a service's own transaction (InTxn), Prune
//    and AppendDirect. Each reads the tail of the chain inside its write transaction, and
//    the store serializes write transactions, so they all extend one chain.
//  - the file: only the writer thread (and Open, before the thread starts). It copies what
//    the database has committed, in seq order, starting after `file_seq_`.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>

#include "audit/audit.h"
#include "audit/file_sink.h"
#include "audit/internal.h"

namespace bifrost::audit {
namespace {

constexpr std::size_t kCatchUpPage = 1000;
constexpr std::string_view kRefusedPrefix = "the audit log could not record this request: ";
constexpr std::string_view kShutDown = "the audit log is shut down";

std::string SeqText(std::int64_t seq) { return std::to_string(seq); }

}  // namespace

class AuditLog::Impl {
 public:
  // A record to append (sync == false) or a Sync marker.
  struct Item {
    bool sync = false;
    Event event;
    std::function<void(Status)> done;
  };

  Impl(store::Store& store, crypto::MacKey key, const Clock& clock, AuditLogOptions options)
      : store_(store), key_(std::move(key)), clock_(clock), options_(std::move(options)) {
    if (!options_.file_path.empty()) {
      file_ = std::make_unique<internal::FileSink>(options_.file_path);
    }
    stats_.file_sink = file_ != nullptr;
  }

  // Opens the file sink, learns where it stands and catches it up (before the thread runs).
  Status OpenFile() {
    BIFROST_ASSIGN_OR_RETURN(auto last, file_->Open());
    Status adopted = AdoptFileTail(last, /*initial=*/true);
    if (!adopted) {
      file_->Close();
      return adopted;
    }
    return CatchUpFile({});
  }

  void Start() {
    writer_ = std::thread([this] { Run(); });
  }

  void Submit(Item item) {
    {
      std::unique_lock lock(mu_);
      if (!stopping_) {
        queue_.push_back(std::move(item));
        lock.unlock();
        cv_.notify_one();
        return;
      }
    }
    item.done(Fail(ErrorCode::kUnavailable, std::string(kShutDown)));
  }

  void Stop() {
    std::lock_guard stop_lock(stop_mu_);
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    // Nothing can be queued any more (Submit sees stopping_), so this drains for good.
    std::deque<Item> rest;
    {
      std::lock_guard lock(mu_);
      rest.swap(queue_);
    }
    for (Item& item : rest) item.done(Fail(ErrorCode::kUnavailable, std::string(kShutDown)));
  }

  Result<std::int64_t> Prune(UnixMicros cutoff);

  AuditStats stats() const {
    std::lock_guard lock(stats_mu_);
    return stats_;
  }

  bool has_file_sink() const { return file_ != nullptr; }

  store::Store& store_;
  const crypto::MacKey key_;
  const Clock& clock_;
  const AuditLogOptions options_;

 private:
  void Run();
  void ProcessGroup(std::vector<Item>& group);
  Result<std::vector<store::AuditRow>> CommitGroup(std::span<const Event* const> events);
  Status CatchUpFile(const std::vector<store::AuditRow>& committed);
  Status AdoptFileTail(const std::optional<store::AuditRow>& last, bool initial);
  Status WriteRows(const std::vector<store::AuditRow>& rows);

  std::unique_ptr<internal::FileSink> file_;  // null without a file sink
  // Every database record with seq <= file_seq_ is in the file (or predates the file).
  // Written by the writer thread; read by Prune, which never deletes past it.
  std::atomic<std::int64_t> file_seq_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::mutex stop_mu_;      // makes Stop() idempotent under concurrent calls
  std::thread writer_;

  mutable std::mutex stats_mu_;
  AuditStats stats_;  // guarded by stats_mu_
};

void AuditLog::Impl::Run() {
  const std::size_t max_group = std::max<std::size_t>(options_.max_group, 1);
  for (;;) {
    std::vector<Item> group;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // Stop() fails what is left
      // Everything queued, up to max_group records; Sync markers ride along in order.
      std::size_t records = 0;
      while (!queue_.empty()) {
        if (!queue_.front().sync) {
          if (records == max_group) break;
          ++records;
        }
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    ProcessGroup(group);
  }
}

void AuditLog::Impl::ProcessGroup(std::vector<Item>& group) {
  std::vector<const Event*> events;
  bool has_sync = false;
  for (const Item& item : group) {
    if (item.sync) {
      has_sync = true;
    } else {
      events.push_back(&item.event);
    }
  }

  // 1. The database: one write transaction, one commit (the fsync) for the whole group.
  Status db = Ok();
  std::vector<store::AuditRow> committed;
  if (!events.empty()) {
    auto rows = CommitGroup(events);
    if (rows) {
      committed = std::move(*rows);
    } else {
      db = Fail(std::move(rows.error()));
    }
  }
  // 2. The file: everything the database has that the file has not (normally just this
  // group's rows), one write and one fdatasync.
  Status file = Ok();
  if ((db && !events.empty()) || has_sync) file = CatchUpFile(committed);

  const Status& records_status = !db ? db : file;
  const bool failed = (!events.empty() && !records_status) || (has_sync && !file);
  const Error* error = nullptr;
  if (failed) error = !records_status && !events.empty() ? &records_status.error() : &file.error();

  bool changed = false;
  {
    std::lock_guard lock(stats_mu_);
    if (!events.empty()) {
      if (records_status) {
        stats_.records += events.size();
        ++stats_.groups;
      } else {
        stats_.failed_records += events.size();
        ++stats_.failed_groups;
      }
    }
    if (failed) stats_.last_error = error->message();
    // A group of Sync markers alone touched only the file: it can show a failure, but not
    // that the database records again.
    if (failed || !events.empty()) {
      changed = stats_.healthy == failed;
      stats_.healthy = !failed;
    }
  }
  if (changed && options_.on_health_change) {
    options_.on_health_change(failed ? std::optional<Error>(*error) : std::nullopt);
  }

  auto refusal = [](const Status& status) -> Status {
    if (status) return Ok();
    std::string message(kRefusedPrefix);
    message += status.error().message();
    return Fail(ErrorCode::kUnavailable, std::move(message));
  };
  const Status record_result = refusal(records_status);
  const Status sync_result = refusal(file);
  for (Item& item : group) item.done(item.sync ? sync_result : record_result);
}

Result<std::vector<store::AuditRow>> AuditLog::Impl::CommitGroup(
    std::span<const Event* const> events) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_.Begin(store::TxnMode::kWrite));
  BIFROST_ASSIGN_OR_RETURN(auto rows, internal::AppendEvents(*txn, key_, clock_, events));
  BIFROST_RETURN_IF_ERROR(txn->Commit());
  return rows;
}

Status AuditLog::Impl::WriteRows(const std::vector<store::AuditRow>& rows) {
  if (rows.empty()) return Ok();
  std::string lines;
  for (const auto& row : rows) {
    lines += ToJsonLine(row);
    lines += '\n';
  }
  BIFROST_RETURN_IF_ERROR(file_->Append(lines));
  file_seq_.store(rows.back().seq);
  return Ok();
}

// Where a (re)opened file stands, checked against the database: its last record must be a
// record the database has, with the same mac. A file without records (new, emptied by
// rotation, or a device) starts after the database's last record when the log opens, and
// continues from where the previous file stopped when it is reopened after a failure.
Status AuditLog::Impl::AdoptFileTail(const std::optional<store::AuditRow>& last, bool initial) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_.Begin(store::TxnMode::kRead));
  BIFROST_ASSIGN_OR_RETURN(const internal::ChainTail tail, internal::ReadTail(*txn));
  const std::int64_t db_last = tail.next_seq - 1;
  const std::string& path = file_->path();
  if (!last) {
    if (initial) file_seq_.store(db_last);
    return Ok();
  }
  if (last->seq > db_last) {
    std::string message = "the audit file ";
    message += path;
    message += " ends at record ";
    message += SeqText(last->seq);
    message += " but the database's last record is ";
    message += SeqText(db_last);
    message += ": the file belongs to another database, or the database lost records";
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  }
  BIFROST_ASSIGN_OR_RETURN(const auto same, txn->ScanAudit(last->seq, 1));
  if (same.empty() || same.front().seq != last->seq) {
    std::string message = "the audit file ";
    message += path;
    message += " ends at record ";
    message += SeqText(last->seq);
    message +=
        ", which the database no longer has (it was pruned): the file cannot be "
        "caught up; move it aside to start a new one";
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  }
  if (same.front().mac != last->mac) {
    std::string message = "record ";
    message += SeqText(last->seq);
    message += " of the audit file ";
    message += path;
    message += " does not match record ";
    message += SeqText(last->seq);
    message += " of the database: the file belongs to another database or was changed";
    return Fail(ErrorCode::kFailedPrecondition, std::move(message));
  }
  file_seq_.store(last->seq);
  return Ok();
}

Status AuditLog::Impl::CatchUpFile(const std::vector<store::AuditRow>& committed) {
  if (!file_) return Ok();
  // Rotated away or deleted since the last append: continue in the file at the path.
  if (file_->is_open() && file_->Replaced()) file_->Close();
  if (!file_->is_open()) {
    // Closed by a failed append: open the path again (it may be a new file by now).
    BIFROST_ASSIGN_OR_RETURN(auto last, file_->Open());
    Status adopted = AdoptFileTail(last, /*initial=*/false);
    if (!adopted) {
      file_->Close();
      return adopted;
    }
  }
  std::int64_t next = file_seq_.load() + 1;
  // The usual case: the file is level with the database up to this group, whose rows are
  // in hand. No read transaction.
  if (!committed.empty() && committed.front().seq == next) return WriteRows(committed);

  // Behind (an earlier failure, or records appended by InTxn): copy from the database, a
  // page at a time, each page one append.
  BIFROST_ASSIGN_OR_RETURN(auto txn, store_.Begin(store::TxnMode::kRead));
  for (;;) {
    BIFROST_ASSIGN_OR_RETURN(auto rows, txn->ScanAudit(next, kCatchUpPage));
    if (rows.empty()) return Ok();
    for (const auto& row : rows) {
      if (row.seq != next) {
        std::string message = "the audit file ";
        message += file_->path();
        message += " needs record ";
        message += SeqText(next);
        message += ", which the database does not have (the next record there is ";
        message += SeqText(row.seq);
        message += ")";
        return Fail(ErrorCode::kFailedPrecondition, std::move(message));
      }
      ++next;
    }
    BIFROST_RETURN_IF_ERROR(WriteRows(rows));
    if (rows.size() < kCatchUpPage) return Ok();
  }
}

Result<std::int64_t> AuditLog::Impl::Prune(UnixMicros cutoff) {
  std::int64_t deleted = 0;
  {
    BIFROST_ASSIGN_OR_RETURN(auto txn, store_.Begin(store::TxnMode::kWrite));
    BIFROST_ASSIGN_OR_RETURN(const auto last, txn->GetLastAudit());
    if (!last) return 0;
    BIFROST_ASSIGN_OR_RETURN(const auto since, txn->FirstAuditSeqSince(cutoff));
    // Nothing as recent as the cutoff: everything is older, but the newest record stays
    // (the chain must keep a tail to continue from).
    std::int64_t keep_from = since ? std::min(*since, last->seq) : last->seq;
    // Never delete a record the file has not received yet: it could not be caught up.
    if (file_) keep_from = std::min(keep_from, file_seq_.load() + 1);
    BIFROST_ASSIGN_OR_RETURN(const auto head,
                             txn->ScanAudit(std::numeric_limits<std::int64_t>::min(), 1));
    if (head.empty() || head.front().seq >= keep_from) return 0;  // nothing to prune

    // The checkpoint carries the mac of the last deleted record, which the first kept one
    // names as prev_mac: the kept part still proves it continues the signed chain.
    BIFROST_ASSIGN_OR_RETURN(const auto around, txn->ScanAudit(keep_from - 1, 2));
    if (around.size() != 2 || around[0].seq != keep_from - 1 || around[1].seq != keep_from) {
      std::string message = "cannot prune the audit log: records ";
      message += SeqText(keep_from - 1);
      message += " and ";
      message += SeqText(keep_from);
      message += " are not both in the database (verify the log)";
      return Fail(ErrorCode::kCorrupt, std::move(message));
    }
    store::AuditCheckpoint checkpoint;
    checkpoint.first_seq = keep_from;
    checkpoint.prev_mac = around[0].mac;
    checkpoint.created_at = clock_.NowMicros();
    checkpoint.key_id = key_.id();
    checkpoint.mac = CheckpointMac(key_, checkpoint);
    BIFROST_ASSIGN_OR_RETURN(deleted, txn->PruneAudit(checkpoint));

    Event event;
    event.action = std::string(actions::kAuditPrune);
    event.outcome = Outcome::kSuccess;
    event.detail = "deleted ";
    event.detail += std::to_string(deleted);
    event.detail += " records, seq ";
    event.detail += SeqText(head.front().seq);
    event.detail += "..";
    event.detail += SeqText(keep_from - 1);
    event.detail += "; kept from ";
    event.detail += SeqText(keep_from);
    const Event* events[] = {&event};
    BIFROST_RETURN_IF_ERROR(internal::AppendEvents(*txn, key_, clock_, events));
    BIFROST_RETURN_IF_ERROR(txn->Commit());
  }
  if (file_) {
    // The prune record must reach the file like any other.
    std::promise<Status> synced;
    auto result = synced.get_future();
    Submit(Item{true, {}, [&synced](Status s) { synced.set_value(std::move(s)); }});
    BIFROST_RETURN_IF_ERROR(result.get());
  }
  return deleted;
}

// ---- AuditLog

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuditLog::~AuditLog() { Stop(); }

Result<std::unique_ptr<AuditLog>> AuditLog::Open(store::Store& store, crypto::MacKey key,
                                                 const Clock& clock, AuditLogOptions options) {
  auto impl = std::make_unique<Impl>(store, std::move(key), clock, std::move(options));
  if (impl->has_file_sink()) BIFROST_RETURN_IF_ERROR(impl->OpenFile());
  impl->Start();
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(impl)));
}

void AuditLog::Submit(Event event, std::function<void(Status)> done) {
  impl_->Submit(Impl::Item{false, std::move(event), std::move(done)});
}

Status AuditLog::Record(Event event) {
  std::promise<Status> recorded;
  auto result = recorded.get_future();
  Submit(std::move(event), [&recorded](Status s) { recorded.set_value(std::move(s)); });
  return result.get();
}

store::CommitHook AuditLog::InTxn(Event event) const {
  const Impl* impl = impl_.get();
  return [impl, event = std::move(event)](store::Txn& txn) -> Status {
    const Event* events[] = {&event};
    BIFROST_RETURN_IF_ERROR(internal::AppendEvents(txn, impl->key_, impl->clock_, events));
    return Ok();
  };
}

void AuditLog::Sync(std::function<void(Status)> done) {
  impl_->Submit(Impl::Item{true, {}, std::move(done)});
}

Status AuditLog::SyncAndWait() {
  std::promise<Status> synced;
  auto result = synced.get_future();
  Sync([&synced](Status s) { synced.set_value(std::move(s)); });
  return result.get();
}

Result<std::int64_t> AuditLog::Prune(UnixMicros cutoff) { return impl_->Prune(cutoff); }

AuditStats AuditLog::stats() const { return impl_->stats(); }

bool AuditLog::has_file_sink() const { return impl_->has_file_sink(); }

void AuditLog::Stop() { impl_->Stop(); }

Status AppendDirect(store::Store& store, const crypto::MacKey& key, const Clock& clock,
                    const Event& event) {
  BIFROST_ASSIGN_OR_RETURN(auto txn, store.Begin(store::TxnMode::kWrite));
  const Event* events[] = {&event};
  BIFROST_RETURN_IF_ERROR(internal::AppendEvents(*txn, key, clock, events));
  return txn->Commit();
}

}  // namespace bifrost::audit
