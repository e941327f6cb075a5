// Pieces of the audit module shared by its .cc files; not part of its interface.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/mac.h"
#include "store/store.h"

namespace bifrost::audit::internal {

// The canonical encodings that ChainMac and CheckpointMac cover (label first, then every
// field but mac, each framed); for checking a mac with MacKey::VerifyHex.
std::string RecordContent(const store::AuditRow& row);
std::string CheckpointContent(const store::AuditCheckpoint& checkpoint);

// Where the next record of a chain goes.
struct ChainTail {
  std::int64_t next_seq = 1;
  std::string prev_mac;
};

// The tail as `txn` sees it: after the newest record; else where the retention checkpoint
// says the kept part begins (a pruned log whose records are all gone); else the genesis.
Result<ChainTail> ReadTail(store::Txn& txn);

// Appends `events` to the chain inside `txn` (the tail is read in it, so appends by other
// transactions are never overwritten or forked) and returns the rows as inserted.
Result<std::vector<store::AuditRow>> AppendEvents(store::Txn& txn, const crypto::MacKey& key,
                                                  const Clock& clock,
                                                  std::span<const Event* const> events);

// "strerror(errno)" without the thread-safety problem of strerror.
std::string ErrnoMessage(int error);

// Owns a file descriptor: closes it unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace bifrost::audit::internal
