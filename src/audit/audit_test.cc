// The audit log on a real SQLite store: the chain and its macs, the JSON-lines form, group
// commit under concurrency, the file sink (failure, recovery, catch-up, refusal), retention,
// and Verify against tampering done directly on the database file and the log file.
#include "audit/audit.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "tests/support/status_matchers.h"
#include "tests/support/subprocess.h"

namespace bifrost::audit {
namespace {

constexpr UnixMicros kT0 = 1'700'000'000'000'000;
constexpr UnixMicros kSecond = 1'000'000;

crypto::MacKey KeyFromSeed(std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(crypto::kMacKeySize);
  std::iota(bytes.begin(), bytes.end(), seed);
  auto key = crypto::MacKey::FromBytes(bytes);
  if (!key) std::abort();
  return std::move(*key);
}

Event MakeEvent(std::string detail) {
  Event event;
  event.action = std::string(actions::kConfigReveal);
  event.outcome = Outcome::kSuccess;
  event.org_id = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0001";
  event.config_key = "DATABASE_URL";
  event.actor_id = "tok-1";
  event.actor_name = "deploy bot";
  event.client_address = "127.0.0.1:5000";
  event.request_id = "req-1";
  event.detail = std::move(detail);
  return event;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs `sql` on the database file behind the store's back, with Python's sqlite3 module
// (only store/sqlite/ may include sqlite3.h; tests/check_layering.sh).
void TamperWith(const std::string& db_path, const std::string& sql) {
  const char* python = std::getenv("BIFROST_PYTHON");
  const auto result = testing::RunProcess({python ? python : BIFROST_PYTHON, "-c",
                                           "import sqlite3, sys\n"
                                           "c = sqlite3.connect(sys.argv[1], timeout=10)\n"
                                           "c.executescript(sys.argv[2])\n"
                                           "c.commit()\n"
                                           "c.close()\n",
                                           db_path, sql});
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(); }

  void TearDown() override {
    log_.reset();
    store_.reset();
  }

  void OpenStore() {
    store::SqliteOptions options;
    options.data_dir = dir_.path() + "/data";
    options.clock = &clock_;
    auto opened = store::SqliteStore::Open(options);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    store_ = std::move(*opened);
  }

  std::string DbPath() const { return store_->database_path(); }
  std::string FilePath() const { return dir_.path() + "/audit.jsonl"; }

  Result<std::unique_ptr<AuditLog>> OpenLog(AuditLogOptions options = {}) {
    return AuditLog::Open(*store_, KeyFromSeed(1), clock_, std::move(options));
  }

  void StartLog(AuditLogOptions options = {}) {
    auto log = OpenLog(std::move(options));
    ASSERT_TRUE(log.has_value()) << log.error().ToString();
    log_ = std::move(*log);
  }

  // Records `n` events, one second apart.
  void RecordN(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_OK(log_->Record(MakeEvent("event " + std::to_string(i))));
      clock_.AdvanceMicros(kSecond);
    }
  }

  std::vector<store::AuditRow> AllRows() {
    auto txn = store_->Begin(store::TxnMode::kRead);
    if (!txn) {
      ADD_FAILURE() << txn.error().ToString();
      return {};
    }
    auto rows = (*txn)->ScanAudit(std::numeric_limits<std::int64_t>::min(), 1'000'000);
    if (!rows) {
      ADD_FAILURE() << rows.error().ToString();
      return {};
    }
    return std::move(*rows);
  }

  VerifyReport VerifyWith(std::string file_path = "") {
    std::vector<crypto::MacKey> keys;
    keys.push_back(KeyFromSeed(1));
    VerifyOptions options;
    options.file_path = std::move(file_path);
    auto report = Verify(*store_, keys, options);
    if (!report) {
      ADD_FAILURE() << report.error().ToString();
      return {};
    }
    return *report;
  }

  testing::TempDir dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<AuditLog> log_;
};

// ---- The chain and its macs

TEST_F(AuditTest, ChainOfRecordsVerifies) {
  StartLog();
  RecordN(5);
  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), 5u);
  const crypto::MacKey key = KeyFromSeed(1);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].seq, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(rows[i].time, kT0 + static_cast<std::int64_t>(i) * kSecond);
    EXPECT_EQ(rows[i].prev_mac, i == 0 ? std::string(kGenesisMac) : rows[i - 1].mac);
    EXPECT_EQ(rows[i].key_id, key.id());
    EXPECT_EQ(rows[i].mac, ChainMac(key, rows[i]));
    EXPECT_EQ(rows[i].mac.size(), 64u);
  }
  const VerifyReport report = VerifyWith();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 5);
  EXPECT_EQ(report.first_seq, 1);
  EXPECT_EQ(report.last_seq, 5);
  EXPECT_FALSE(report.checkpoint);
  EXPECT_EQ(log_->stats().records, 5u);
  EXPECT_TRUE(log_->stats().healthy);
  EXPECT_FALSE(log_->has_file_sink());
}

// A master-key rotation changes the audit key: records before it verify with the old key,
// records after it with the new one, and a record the old key signs after the rotation's
// own record (someone holding the rotated-away key appending to the tail) is refused.
TEST_F(AuditTest, AMasterKeyRotationRetiresTheOldAuditKey) {
  const crypto::MacKey old_key = KeyFromSeed(1);
  const crypto::MacKey new_key = KeyFromSeed(2);
  ASSERT_OK(AppendDirect(*store_, old_key, clock_, MakeEvent("before")));
  // Servers restarted with the new key sign with it before the rotation finishes.
  ASSERT_OK(AppendDirect(*store_, new_key, clock_, MakeEvent("during")));
  Event finished = MakeEvent("re-wrapped 3 data keys");
  finished.action = std::string(actions::kKeysRotateMaster);
  ASSERT_OK(AppendDirect(*store_, new_key, clock_, finished));
  ASSERT_OK(AppendDirect(*store_, new_key, clock_, MakeEvent("after")));

  std::vector<crypto::MacKey> keys;
  keys.push_back(KeyFromSeed(2));
  keys.push_back(KeyFromSeed(1));
  auto report = Verify(*store_, keys, {});
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->records, 4);

  // A forged tail: well-formed and correctly chained, signed by the retired key.
  ASSERT_OK(AppendDirect(*store_, old_key, clock_, MakeEvent("forged")));
  report = Verify(*store_, keys, {});
  ASSERT_OK(report);
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->bad_seq, 5);
  EXPECT_NE(report->problem.find("record 3 retired"), std::string::npos) << report->problem;
}

TEST_F(AuditTest, AFailedMasterKeyRotationRetiresNothing) {
  const crypto::MacKey old_key = KeyFromSeed(1);
  const crypto::MacKey new_key = KeyFromSeed(2);
  std::vector<crypto::MacKey> keys;
  keys.push_back(KeyFromSeed(2));
  keys.push_back(KeyFromSeed(1));
  ASSERT_OK(AppendDirect(*store_, old_key, clock_, MakeEvent("before")));
  Event failed = MakeEvent("stopped (unavailable)");
  failed.action = std::string(actions::kKeysRotateMaster);
  failed.outcome = Outcome::kError;
  ASSERT_OK(AppendDirect(*store_, new_key, clock_, failed));
  ASSERT_OK(AppendDirect(*store_, old_key, clock_, MakeEvent("old key still in use")));
  auto report = Verify(*store_, keys, {});
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_F(AuditTest, EmptyLogVerifies) {
  const VerifyReport report = VerifyWith();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 0);
  EXPECT_EQ(report.first_seq, 0);
}

TEST(AuditChain, ChainMacCoversEveryField) {
  const crypto::MacKey key = KeyFromSeed(1);
  Event event = MakeEvent("detail");
  event.execution_id = "exec-1";
  const store::AuditRow base = MakeRow(event, 7, kT0, kGenesisMac, key);
  EXPECT_EQ(base.mac, ChainMac(key, base));
  EXPECT_EQ(base.seq, 7);
  EXPECT_EQ(base.outcome, "success");

  std::vector<std::function<void(store::AuditRow&)>> edits = {
      [](auto& r) { r.seq += 1; },
      [](auto& r) { r.time += 1; },
      [](auto& r) { r.action = "config.update"; },
      [](auto& r) { r.outcome = "denied"; },
      [](auto& r) { r.org_id = "0b7e5c1e-6a43-4c1a-9d57-3f1f2b0a0002"; },
      [](auto& r) { r.config_key = "OTHER"; },
      [](auto& r) { r.actor_id = "tok-2"; },
      [](auto& r) { r.actor_name = "someone else"; },
      [](auto& r) { r.client_address = "127.0.0.1:5001"; },
      [](auto& r) { r.request_id = "req-2"; },
      [](auto& r) { r.execution_id = "exec-2"; },
      [](auto& r) { r.detail = "detaiL"; },
      [](auto& r) { r.key_id = "0000000000000000"; },
      [](auto& r) { r.prev_mac[0] = '1'; },
      // Absent is not empty, for every optional field.
      [](auto& r) { r.org_id = std::nullopt; },
      [](auto& r) { r.config_key = std::nullopt; },
      [](auto& r) { r.actor_id = std::nullopt; },
      [](auto& r) { r.actor_name = std::nullopt; },
      [](auto& r) { r.execution_id = std::nullopt; },
      [](auto& r) { r.org_id = ""; },
      [](auto& r) { r.execution_id = ""; },
      // A byte moved across a field boundary.
      [](auto& r) {
        r.client_address += "r";
        r.request_id = "eq-1";
      },
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    store::AuditRow edited = base;
    edits[i](edited);
    EXPECT_NE(ChainMac(key, edited), base.mac) << "edit " << i;
  }
  // The stored mac itself is not part of its input.
  store::AuditRow other_mac = base;
  other_mac.mac = std::string(64, 'f');
  EXPECT_EQ(ChainMac(key, other_mac), base.mac);
  // Another key, another mac.
  EXPECT_NE(ChainMac(KeyFromSeed(2), base), base.mac);

  // nullopt and "" differ even when everything else is equal.
  store::AuditRow absent = base;
  store::AuditRow empty = base;
  absent.actor_name = std::nullopt;
  empty.actor_name = "";
  EXPECT_NE(ChainMac(key, absent), ChainMac(key, empty));
}

TEST(AuditChain, CheckpointMacCoversEveryField) {
  const crypto::MacKey key = KeyFromSeed(1);
  store::AuditCheckpoint base{10, std::string(64, 'a'), kT0, key.id(), ""};
  const std::string mac = CheckpointMac(key, base);
  std::vector<std::function<void(store::AuditCheckpoint&)>> edits = {
      [](auto& c) { c.first_seq = 11; }, [](auto& c) { c.prev_mac[63] = 'b'; },
      [](auto& c) { c.created_at += 1; }, [](auto& c) { c.key_id = std::string(16, '1'); }};
  for (std::size_t i = 0; i < edits.size(); ++i) {
    store::AuditCheckpoint edited = base;
    edits[i](edited);
    EXPECT_NE(CheckpointMac(key, edited), mac) << "edit " << i;
  }
  base.mac = "anything";
  EXPECT_EQ(CheckpointMac(key, base), mac);
}

TEST(AuditChain, MakeRowCleansInvalidUtf8) {
  const crypto::MacKey key = KeyFromSeed(1);
  Event event = MakeEvent(std::string("bad \xff byte and a \0 nul", 22));
  const store::AuditRow row = MakeRow(event, 1, kT0, kGenesisMac, key);
  EXPECT_EQ(row.detail, "bad \xEF\xBF\xBD byte and a \xEF\xBF\xBD nul");
  auto parsed = ParseJsonLine(ToJsonLine(row));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
  EXPECT_EQ(parsed->detail, row.detail);
  EXPECT_EQ(parsed->mac, ChainMac(key, *parsed));
}

// ---- JSON lines

bool SameRow(const store::AuditRow& a, const store::AuditRow& b) {
  return a.seq == b.seq && a.time == b.time && a.action == b.action && a.outcome == b.outcome &&
         a.org_id == b.org_id && a.config_key == b.config_key && a.actor_id == b.actor_id &&
         a.actor_name == b.actor_name && a.client_address == b.client_address &&
         a.request_id == b.request_id && a.execution_id == b.execution_id && a.detail == b.detail &&
         a.key_id == b.key_id && a.prev_mac == b.prev_mac && a.mac == b.mac;
}

TEST(AuditJson, RoundTrip) {
  const crypto::MacKey key = KeyFromSeed(1);
  Event full = MakeEvent("quote \" backslash \\ newline \n unicode é 🔑");
  full.execution_id = "exec-1";
  Event sparse;
  sparse.action = std::string(actions::kAuthFailure);
  sparse.outcome = Outcome::kDenied;
  sparse.actor_name = "";  // empty, not absent
  // 2026-12-02T04:01:17.123456Z
  const UnixMicros time = 1'796'184'077'123'456;
  for (const Event* event : {&full, &sparse}) {
    const store::AuditRow row = MakeRow(*event, 42, time, kGenesisMac, key);
    const std::string line = ToJsonLine(row);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto parsed = ParseJsonLine(line);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString() << "\n" << line;
    EXPECT_TRUE(SameRow(*parsed, row)) << line;
    EXPECT_EQ(ToJsonLine(*parsed), line);
  }
  const std::string line = ToJsonLine(MakeRow(sparse, 42, time, kGenesisMac, key));
  EXPECT_EQ(line.rfind(
                R"({"seq":42,"time":"2026-12-02T04:01:17.123456Z","time_us":1796184077123456,)", 0),
            0u)
      << line;
  EXPECT_NE(line.find(R"("org_id":null)"), std::string::npos);
  EXPECT_NE(line.find(R"("actor_name":"")"), std::string::npos);
  EXPECT_NE(line.find(R"("outcome":"denied")"), std::string::npos);
}

TEST(AuditJson, TimeFormat) {
  const crypto::MacKey key = KeyFromSeed(1);
  const Event event = MakeEvent("");
  auto time_of = [&](UnixMicros t) {
    auto parsed = nlohmann::json::parse(ToJsonLine(MakeRow(event, 1, t, kGenesisMac, key)));
    return parsed["time"].get<std::string>();
  };
  EXPECT_EQ(time_of(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(time_of(1), "1970-01-01T00:00:00.000001Z");
  EXPECT_EQ(time_of(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(time_of(951'782'400'000'000), "2000-02-29T00:00:00.000000Z");
}

TEST(AuditJson, StrictParse) {
  const crypto::MacKey key = KeyFromSeed(1);
  const std::string good = ToJsonLine(MakeRow(MakeEvent("d"), 3, kT0, kGenesisMac, key));
  ASSERT_TRUE(ParseJsonLine(good).has_value());
  auto with = [&](const std::function<void(nlohmann::ordered_json&)>& edit) {
    auto j = nlohmann::ordered_json::parse(good);
    edit(j);
    return j.dump();
  };
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"[]", "JSON object"},
      {"42", "JSON object"},
      {good + "x", "not valid JSON"},
      {good.substr(0, good.size() - 1), "not valid JSON"},
      {with([](auto& j) { j.erase("seq"); }), "'seq'"},
      {with([](auto& j) { j.erase("org_id"); }), "'org_id'"},
      {with([](auto& j) { j.erase("mac"); }), "'mac'"},
      {with([](auto& j) { j["extra"] = 1; }), "unknown field 'extra'"},
      {with([](auto& j) { j["seq"] = "3"; }), "'seq'"},
      {with([](auto& j) { j["seq"] = 3.0; }), "'seq'"},
      {with([](auto& j) { j["seq"] = 0; }), "'seq'"},
      {with([](auto& j) { j["seq"] = 18446744073709551615u; }), "'seq'"},
      {with([](auto& j) { j["time_us"] = nullptr; }), "'time_us'"},
      {with([](auto& j) { j["time_us"] = kT0 + 1; }), "'time' does not match"},
      {with([](auto& j) { j["time"] = "2023-11-14T22:13:20Z"; }), "'time' does not match"},
      {with([](auto& j) { j["action"] = nullptr; }), "'action'"},
      {with([](auto& j) { j["org_id"] = 5; }), "'org_id'"},
      {with([](auto& j) { j["actor_name"] = nlohmann::json::array(); }), "'actor_name'"},
      {with([](auto& j) { j["detail"] = nlohmann::json::object(); }), "'detail'"},
      {with([](auto& j) { j["execution_id"] = false; }), "'execution_id'"},
      {R"({"seq":1,"seq":2})", "duplicate"},
      {good.substr(0, 10) + "\n" + good.substr(10), "single line"},
  };
  for (const auto& [line, expected] : bad) {
    auto parsed = ParseJsonLine(line);
    ASSERT_FALSE(parsed.has_value()) << line;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message().find(expected), std::string::npos)
        << line << " -> " << parsed.error().message();
  }
}

// ---- Group commit

TEST_F(AuditTest, ConcurrentSubmitsAreGroupedIntoOneChain) {
  StartLog();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  constexpr int kTotal = kThreads * kPerThread;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  auto callback = [&](Status status) {
    (status ? ok : failed).fetch_add(1);
    std::lock_guard lock(mu);
    ++done;
    cv.notify_all();
  };
  {
    // The writer slot is held while the threads submit, so the writer cannot commit
    // anything and everything piles up in the queue: the first group takes what it took
    // before it blocked, the next one the rest. Group commit then must write >= 2 groups
    // and far fewer than one per record.
    ASSERT_OK_AND_ASSIGN(auto blocker, store_->Begin(store::TxnMode::kWrite));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string detail = "t";
          detail += std::to_string(t);
          detail += " i";
          detail += std::to_string(i);
          log_->Submit(MakeEvent(std::move(detail)), callback);
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done == kTotal; });
  }
  EXPECT_EQ(ok.load(), kTotal);
  EXPECT_EQ(failed.load(), 0);
  const AuditStats stats = log_->stats();
  EXPECT_EQ(stats.records, static_cast<std::uint64_t>(kTotal));
  EXPECT_GE(stats.groups, 1u);
  EXPECT_LE(stats.groups, 2u);
  EXPECT_LT(stats.groups, stats.records);

  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kTotal));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].seq, static_cast<std::int64_t>(i + 1));
  }
  const VerifyReport report = VerifyWith();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, kTotal);
}

TEST_F(AuditTest, MaxGroupLimitsTheGroupSize) {
  AuditLogOptions options;
  options.max_group = 10;
  StartLog(options);
  std::atomic<int> ok{0};
  std::promise<void> all_done;
  std::atomic<int> done{0};
  {
    ASSERT_OK_AND_ASSIGN(auto blocker, store_->Begin(store::TxnMode::kWrite));
    for (int i = 0; i < 100; ++i) {
      log_->Submit(MakeEvent(std::to_string(i)), [&](Status s) {
        if (s) ok.fetch_add(1);
        if (done.fetch_add(1) + 1 == 100) all_done.set_value();
      });
    }
  }
  all_done.get_future().wait();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_GE(log_->stats().groups, 10u);
  EXPECT_TRUE(VerifyWith().ok);
}

TEST_F(AuditTest, InTxnAndSubmitShareOneChain) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  std::thread service([&] {
    for (int i = 0; i < 30; ++i) {
      auto txn = store_->Begin(store::TxnMode::kWrite);
      ASSERT_TRUE(txn.has_value()) << txn.error().ToString();
      auto hook = log_->InTxn(MakeEvent("in txn " + std::to_string(i)));
      ASSERT_OK(hook(**txn));
      ASSERT_OK((*txn)->Commit());
    }
  });
  for (int i = 0; i < 30; ++i) {
    log_->Submit(MakeEvent("submitted " + std::to_string(i)), [&](Status s) {
      if (s) ok.fetch_add(1);
      done.fetch_add(1);
    });
  }
  service.join();
  ASSERT_OK(log_->SyncAndWait());
  EXPECT_EQ(done.load(), 30);  // Sync completes after everything queued before it
  EXPECT_EQ(ok.load(), 30);

  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), 60u);
  int in_txn = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].seq, static_cast<std::int64_t>(i + 1));
    if (rows[i].detail.starts_with("in txn")) ++in_txn;
  }
  EXPECT_EQ(in_txn, 30);
  const VerifyReport report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.file_records, 60);
}

TEST_F(AuditTest, InTxnRollsBackWithItsTransaction) {
  StartLog();
  RecordN(1);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK(log_->InTxn(MakeEvent("rolled back"))(*txn));
  }  // no Commit
  RecordN(1);
  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].seq, 2);
  EXPECT_TRUE(VerifyWith().ok);
}

// ---- The file sink

TEST_F(AuditTest, FileSinkGetsIdenticalLines) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  EXPECT_TRUE(log_->has_file_sink());
  EXPECT_TRUE(log_->stats().file_sink);
  RecordN(3);
  {
    ASSERT_OK_AND_ASSIGN(auto txn, store_->Begin(store::TxnMode::kWrite));
    ASSERT_OK(log_->InTxn(MakeEvent("from a service"))(*txn));
    ASSERT_OK(txn->Commit());
  }
  ASSERT_OK(log_->SyncAndWait());
  RecordN(1);

  const auto rows = AllRows();
  const auto lines = ReadLines(FilePath());
  ASSERT_EQ(rows.size(), 5u);
  ASSERT_EQ(lines.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(lines[i], ToJsonLine(rows[i]));

  struct stat st {};
  ASSERT_EQ(::stat(FilePath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const VerifyReport report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.file_records, 5);
  EXPECT_EQ(report.file_first_seq, 1);
  EXPECT_EQ(report.file_last_seq, 5);
}

TEST_F(AuditTest, SyncWithoutFileSinkCompletesInOrder) {
  StartLog();
  std::vector<int> order;
  std::mutex mu;
  std::promise<void> finished;
  log_->Submit(MakeEvent("a"), [&](Status s) {
    EXPECT_TRUE(s.has_value());
    std::lock_guard lock(mu);
    order.push_back(1);
  });
  log_->Sync([&](Status s) {
    EXPECT_TRUE(s.has_value());
    std::lock_guard lock(mu);
    order.push_back(2);
    finished.set_value();
  });
  finished.get_future().wait();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  ASSERT_OK(log_->SyncAndWait());
}

TEST_F(AuditTest, FileSinkFailureFailsTheGroupButKeepsTheDatabaseRecord) {
  std::mutex mu;
  std::vector<std::optional<Error>> health;
  AuditLogOptions options;
  options.file_path = "/dev/full";  // every write fails with ENOSPC
  options.on_health_change = [&](const std::optional<Error>& error) {
    std::lock_guard lock(mu);
    health.push_back(error);
  };
  StartLog(options);
  const Status first = log_->Record(MakeEvent("one"));
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(first.error().message().find("the audit log could not record this request: "),
            std::string::npos)
      << first.error().message();
  EXPECT_NE(first.error().message().find("/dev/full"), std::string::npos);
  const Status second = log_->Record(MakeEvent("two"));
  EXPECT_FALSE(second.has_value());
  EXPECT_FALSE(log_->SyncAndWait().has_value());

  const AuditStats stats = log_->stats();
  EXPECT_EQ(stats.records, 0u);
  EXPECT_EQ(stats.failed_records, 2u);
  EXPECT_EQ(stats.failed_groups, 2u);
  EXPECT_FALSE(stats.healthy);
  EXPECT_NE(stats.last_error.find("/dev/full"), std::string::npos);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(health.size(), 1u);  // one transition, however many failures
    ASSERT_TRUE(health[0].has_value());
  }
  // Over-reported, never under-reported: the records are in the database.
  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].detail, "one");
  EXPECT_TRUE(VerifyWith().ok);
}

TEST_F(AuditTest, FileSinkRecoversWhenThePathIsRepointed) {
  const std::string link = dir_.path() + "/audit-link.jsonl";
  ASSERT_EQ(::symlink("/dev/full", link.c_str()), 0);
  std::mutex mu;
  std::vector<std::optional<Error>> health;
  AuditLogOptions options;
  options.file_path = link;
  options.on_health_change = [&](const std::optional<Error>& error) {
    std::lock_guard lock(mu);
    health.push_back(error);
  };
  StartLog(options);
  EXPECT_FALSE(log_->Record(MakeEvent("one")).has_value());
  EXPECT_FALSE(log_->Record(MakeEvent("two")).has_value());

  // The operator fixes the sink: the path now names a regular file (created on open).
  ASSERT_EQ(::unlink(link.c_str()), 0);
  ASSERT_EQ(::symlink(FilePath().c_str(), link.c_str()), 0);
  ASSERT_OK(log_->Record(MakeEvent("three")));
  ASSERT_OK(log_->Record(MakeEvent("four")));

  // The records that failed earlier were caught up from the database.
  const auto rows = AllRows();
  const auto lines = ReadLines(FilePath());
  ASSERT_EQ(rows.size(), 4u);
  ASSERT_EQ(lines.size(), 4u);
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(lines[i], ToJsonLine(rows[i]));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(health.size(), 2u);
    EXPECT_TRUE(health[0].has_value());
    EXPECT_FALSE(health[1].has_value());
  }
  const AuditStats stats = log_->stats();
  EXPECT_TRUE(stats.healthy);
  EXPECT_EQ(stats.records, 2u);
  EXPECT_EQ(stats.failed_records, 2u);
  const VerifyReport report = VerifyWith(link);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.file_records, 4);
}

TEST_F(AuditTest, ARotatedFileIsFollowedByTheNewFileAtThePath) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  RecordN(3);
  // logrotate's "create": rename the file away and create an empty one in its place.
  const std::string rotated = FilePath() + ".1";
  ASSERT_EQ(::rename(FilePath().c_str(), rotated.c_str()), 0);
  { std::ofstream create(FilePath()); }
  RecordN(2);
  EXPECT_EQ(ReadLines(rotated).size(), 3u);
  const auto lines = ReadLines(FilePath());
  ASSERT_EQ(lines.size(), 2u);
  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(lines[0], ToJsonLine(rows[3]));
  EXPECT_EQ(lines[1], ToJsonLine(rows[4]));
  EXPECT_EQ(log_->stats().failed_records, 0u);
  // Deleted outright: the next record goes to a file created at the path, not to the void.
  ASSERT_EQ(::unlink(FilePath().c_str()), 0);
  RecordN(1);
  ASSERT_EQ(ReadLines(FilePath()).size(), 1u);
  EXPECT_EQ(ReadLines(FilePath())[0], ToJsonLine(AllRows().back()));
}

TEST_F(AuditTest, APipeIsRefusedAsTheFileSink) {
  const std::string fifo = dir_.path() + "/audit.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  AuditLogOptions options;
  options.file_path = fifo;
  auto opened = OpenLog(options);  // must not block waiting for a reader
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message().find("pipe"), std::string::npos) << opened.error().message();
}

TEST_F(AuditTest, NewFileStartsWithTheNextRecord) {
  StartLog();
  RecordN(3);
  log_.reset();
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  EXPECT_TRUE(ReadLines(FilePath()).empty());
  RecordN(2);
  const auto lines = ReadLines(FilePath());
  ASSERT_EQ(lines.size(), 2u);
  ASSERT_OK_AND_ASSIGN(const auto first, ParseJsonLine(lines[0]));
  EXPECT_EQ(first.seq, 4);
  const VerifyReport report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.file_first_seq, 4);
  EXPECT_EQ(report.file_last_seq, 5);
}

TEST_F(AuditTest, OpenCatchesUpAFileThatIsBehindAndCutsAPartialLine) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  RecordN(3);
  log_.reset();
  // Records the file never saw, then a crash in the middle of an append.
  ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("direct 1")));
  ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("direct 2")));
  {
    std::ofstream out(FilePath(), std::ios::app);
    out << R"({"seq":4,"time":"2023-11-)";
  }
  StartLog(options);
  const auto rows = AllRows();
  const auto lines = ReadLines(FilePath());
  ASSERT_EQ(rows.size(), 5u);
  ASSERT_EQ(lines.size(), 5u);
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(lines[i], ToJsonLine(rows[i]));
  RecordN(1);
  const VerifyReport report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.file_records, 6);
}

TEST_F(AuditTest, OpenRefusesAFileAheadOfTheDatabase) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  RecordN(3);
  log_.reset();
  // Another (empty) database with the same file.
  store_.reset();
  std::filesystem::remove_all(dir_.path() + "/data");
  OpenStore();
  ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("only one")));
  auto refused = OpenLog(options);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find(FilePath()), std::string::npos);
  EXPECT_NE(refused.error().message().find("record 3"), std::string::npos)
      << refused.error().message();
  EXPECT_EQ(ReadLines(FilePath()).size(), 3u);  // untouched
}

TEST_F(AuditTest, OpenRefusesAFileThatDoesNotMatchTheDatabase) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  RecordN(3);
  log_.reset();
  store_.reset();
  std::filesystem::remove_all(dir_.path() + "/data");
  OpenStore();
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("different")));
  }
  auto refused = OpenLog(options);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("record 3"), std::string::npos)
      << refused.error().message();
}

TEST_F(AuditTest, OpenRefusesAFileThatIsNotAnAuditLog) {
  {
    std::ofstream out(FilePath());
    out << "hello\nthis is not an audit log\nno";
  }
  AuditLogOptions options;
  options.file_path = FilePath();
  auto refused = OpenLog(options);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(testing::ReadFileOrEmpty(FilePath()), "hello\nthis is not an audit log\nno");
}

// ---- Stop

// A clock that blocks the first caller until released: holds the writer thread inside a
// group, so that what is queued behind it is deterministic.
class GateClock final : public Clock {
 public:
  UnixMicros NowMicros() const override {
    std::unique_lock lock(mu_);
    if (!entered_) {
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    return kT0;
  }
  void WaitEntered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable bool entered_ = false;
  bool open_ = false;
};

TEST_F(AuditTest, StopFailsWhatIsQueuedAndRefusesLaterSubmits) {
  GateClock gate;
  auto opened = AuditLog::Open(*store_, KeyFromSeed(1), gate, {});
  ASSERT_TRUE(opened.has_value());
  log_ = std::move(*opened);

  std::promise<Status> first;
  log_->Submit(MakeEvent("in flight"), [&](Status s) { first.set_value(std::move(s)); });
  gate.WaitEntered();  // the writer holds this record's group
  std::vector<std::promise<Status>> queued(3);
  for (auto& p : queued) {
    log_->Submit(MakeEvent("queued"), [&p](Status s) { p.set_value(std::move(s)); });
  }
  std::thread stopper([&] { log_->Stop(); });
  // Wait until Stop has begun: a Submit is then refused on the calling thread.
  struct Probe {
    std::promise<Status> result;
    std::thread::id called_on;  // written before `result` is set
  };
  std::vector<std::future<Status>> probes;
  std::optional<Status> refused;
  while (!refused) {
    auto probe = std::make_shared<Probe>();
    auto f = probe->result.get_future();
    log_->Submit(MakeEvent("probe"), [probe](Status s) {
      probe->called_on = std::this_thread::get_id();
      probe->result.set_value(std::move(s));
    });
    if (f.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      refused = f.get();
      EXPECT_EQ(probe->called_on, std::this_thread::get_id());
      break;
    }
    // Queued before Stop began: the writer is held by the gate, so Stop fails it.
    probes.push_back(std::move(f));
    std::this_thread::yield();
  }
  gate.Open();
  stopper.join();
  ASSERT_FALSE(refused->has_value());
  EXPECT_EQ(refused->error().code(), ErrorCode::kUnavailable);
  for (auto& probe : probes) EXPECT_FALSE(probe.get().has_value());

  EXPECT_TRUE(first.get_future().get().has_value());  // its group was already being written
  for (auto& p : queued) {
    const Status s = p.get_future().get();
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable);
    EXPECT_NE(s.error().message().find("shut down"), std::string::npos);
  }
  log_->Stop();  // idempotent
  EXPECT_EQ(AllRows().size(), 1u);
  const Status late = log_->Record(MakeEvent("late"));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), ErrorCode::kUnavailable);
}

// ---- AppendDirect and key rotation

TEST_F(AuditTest, AppendDirectAndALaterLogContinueOneChain) {
  ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("init")));
  StartLog();
  RecordN(2);
  log_.reset();
  // After a key rotation: records under the new key continue the same chain.
  ASSERT_OK(AppendDirect(*store_, KeyFromSeed(9), clock_, MakeEvent("rotated")));
  std::vector<crypto::MacKey> both;
  both.push_back(KeyFromSeed(1));
  both.push_back(KeyFromSeed(9));
  ASSERT_OK_AND_ASSIGN(const auto report, Verify(*store_, both, {}));
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 4);

  const VerifyReport old_only = VerifyWith();
  EXPECT_FALSE(old_only.ok);
  EXPECT_EQ(old_only.bad_seq, 4);
  EXPECT_NE(old_only.problem.find("record 4 names audit key " + KeyFromSeed(9).id() +
                                  ", which was not given"),
            std::string::npos)
      << old_only.problem;
}

// ---- Retention

TEST_F(AuditTest, PruneKeepsASignedCheckpointAndVerifies) {
  AuditLogOptions options;
  options.file_path = FilePath();
  StartLog(options);
  RecordN(10);  // record n at kT0 + (n-1) s
  ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, log_->Prune(kT0 + 5 * kSecond));
  EXPECT_EQ(deleted, 5);
  const auto rows = AllRows();
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows.front().seq, 6);
  EXPECT_EQ(rows.back().seq, 11);
  EXPECT_EQ(rows.back().action, actions::kAuditPrune);
  EXPECT_EQ(rows.back().detail, "deleted 5 records, seq 1..5; kept from 6");

  VerifyReport report = VerifyWith();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_TRUE(report.checkpoint);
  EXPECT_EQ(report.first_seq, 6);
  EXPECT_EQ(report.last_seq, 11);
  // The file keeps everything, including the prune record.
  report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.file_first_seq, 1);
  EXPECT_EQ(report.file_last_seq, 11);

  // Nothing older than the cutoff any more: no write at all.
  ASSERT_OK_AND_ASSIGN(const std::int64_t again, log_->Prune(kT0 + 5 * kSecond));
  EXPECT_EQ(again, 0);
  EXPECT_EQ(AllRows().size(), 6u);

  // Everything is older: only the newest record is kept (then the new prune record).
  ASSERT_OK_AND_ASSIGN(const std::int64_t all, log_->Prune(kT0 + 1000 * kSecond));
  EXPECT_EQ(all, 5);
  const auto after = AllRows();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].seq, 11);
  EXPECT_EQ(after[1].detail, "deleted 5 records, seq 6..10; kept from 11");
  report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  RecordN(1);
  EXPECT_TRUE(VerifyWith(FilePath()).ok);

  // Removing the head of the kept part is not hidden by the checkpoint.
  TamperWith(DbPath(), "DELETE FROM audit_log WHERE seq = 11;");
  report = VerifyWith();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 11);
  EXPECT_NE(report.problem.find("record 11 is missing"), std::string::npos) << report.problem;
}

TEST_F(AuditTest, PruneOfAnEmptyLogDoesNothing) {
  StartLog();
  ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, log_->Prune(kT0 + 1000 * kSecond));
  EXPECT_EQ(deleted, 0);
  EXPECT_TRUE(AllRows().empty());
}

TEST_F(AuditTest, PruneNeverDeletesWhatTheFileHasNotGot) {
  // Three records from before the file sink existed: the file starts after them.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("before the file")));
  }
  const std::string link = dir_.path() + "/audit-link.jsonl";
  ASSERT_EQ(::symlink("/dev/full", link.c_str()), 0);
  AuditLogOptions options;
  options.file_path = link;
  StartLog(options);
  EXPECT_FALSE(log_->Record(MakeEvent("not in the file")).has_value());  // seq 4
  EXPECT_FALSE(log_->Record(MakeEvent("not in the file")).has_value());  // seq 5

  // Everything is older than the cutoff, but 4 and 5 must stay for the file's catch-up.
  clock_.AdvanceMicros(1000 * kSecond);
  auto pruned = log_->Prune(clock_.NowMicros());
  ASSERT_FALSE(pruned.has_value());  // the prune record (seq 6) cannot reach the file either
  EXPECT_EQ(pruned.error().code(), ErrorCode::kUnavailable);
  auto rows = AllRows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.front().seq, 4);
  EXPECT_EQ(rows.back().detail, "deleted 3 records, seq 1..3; kept from 4");

  // Once the sink works again it receives 4, 5 and 6, and the two agree.
  ASSERT_EQ(::unlink(link.c_str()), 0);
  ASSERT_EQ(::symlink(FilePath().c_str(), link.c_str()), 0);
  ASSERT_OK(log_->SyncAndWait());
  EXPECT_EQ(ReadLines(FilePath()).size(), 3u);
  const VerifyReport report = VerifyWith(FilePath());
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_TRUE(report.checkpoint);
  EXPECT_EQ(report.file_first_seq, 4);
  EXPECT_EQ(report.file_last_seq, 6);
}

// ---- Tampering with the database

class AuditTamperTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    StartLog();
    RecordN(10);
    ASSERT_TRUE(VerifyWith().ok);
  }

  void ExpectBroken(std::int64_t bad_seq, const std::string& words) {
    const VerifyReport report = VerifyWith();
    EXPECT_FALSE(report.ok);
    EXPECT_EQ(report.bad_seq, bad_seq) << report.problem;
    EXPECT_NE(report.problem.find(words), std::string::npos) << report.problem;
  }
};

TEST_F(AuditTamperTest, DeletedMiddleRecord) {
  TamperWith(DbPath(), "DELETE FROM audit_log WHERE seq = 5;");
  ExpectBroken(5, "record 5 is missing (record 4 is followed by record 6)");
}

TEST_F(AuditTamperTest, DeletedFirstRecord) {
  TamperWith(DbPath(), "DELETE FROM audit_log WHERE seq = 1;");
  ExpectBroken(1, "record 1 is missing");
}

TEST_F(AuditTamperTest, EditedField) {
  TamperWith(DbPath(), "UPDATE audit_log SET outcome = 'denied' WHERE seq = 7;");
  ExpectBroken(7, "record 7 was changed or reordered: its mac does not match its content");
}

TEST_F(AuditTamperTest, EditedOptionalFieldToEmpty) {
  TamperWith(DbPath(), "UPDATE audit_log SET actor_name = '' WHERE seq = 3;");
  ExpectBroken(3, "record 3 was changed");
}

TEST_F(AuditTamperTest, SwappedRecords) {
  TamperWith(DbPath(),
             "UPDATE audit_log SET seq = 1000 WHERE seq = 3;"
             "UPDATE audit_log SET seq = 3 WHERE seq = 8;"
             "UPDATE audit_log SET seq = 8 WHERE seq = 1000;");
  ExpectBroken(3, "record 3 was changed or reordered");
}

TEST_F(AuditTamperTest, ReplacedMacAndPrevMacWithoutTheKey) {
  // Recomputing a mac needs the key; copying another record's mac does not help.
  TamperWith(DbPath(),
             "UPDATE audit_log SET mac = (SELECT mac FROM audit_log WHERE seq = 4) "
             "WHERE seq = 6;");
  ExpectBroken(6, "record 6 was changed");
}

TEST_F(AuditTamperTest, DeletedCheckpointSuccessor) {
  ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, log_->Prune(kT0 + 4 * kSecond));
  EXPECT_EQ(deleted, 4);
  ASSERT_TRUE(VerifyWith().ok);
  TamperWith(DbPath(), "DELETE FROM audit_log WHERE seq = 5;");
  ExpectBroken(5,
               "record 5 is missing (the retention checkpoint says the log begins at record "
               "5, but the first record is record 6)");
}

TEST_F(AuditTamperTest, EditedCheckpoint) {
  ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, log_->Prune(kT0 + 4 * kSecond));
  EXPECT_EQ(deleted, 4);
  // Claiming the log begins later, to hide a deleted record.
  TamperWith(DbPath(),
             "UPDATE audit_checkpoint SET first_seq = 6;"
             "DELETE FROM audit_log WHERE seq = 5;");
  const VerifyReport report = VerifyWith();
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.problem.find("retention checkpoint was changed"), std::string::npos)
      << report.problem;
}

TEST_F(AuditTamperTest, DeletedCheckpoint) {
  ASSERT_OK_AND_ASSIGN(const std::int64_t deleted, log_->Prune(kT0 + 4 * kSecond));
  EXPECT_EQ(deleted, 4);
  TamperWith(DbPath(), "DELETE FROM audit_checkpoint;");
  ExpectBroken(1,
               "record 1 is missing (the first record is record 5 and there is no retention "
               "checkpoint)");
}

// ---- Tampering with the file

class AuditFileTamperTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    AuditLogOptions options;
    options.file_path = FilePath();
    StartLog(options);
    RecordN(5);
    log_.reset();
    ASSERT_TRUE(VerifyWith(FilePath()).ok);
    content_ = testing::ReadFileOrEmpty(FilePath());
  }

  void Rewrite(const std::string& content) {
    std::ofstream out(FilePath(), std::ios::trunc | std::ios::binary);
    out << content;
  }

  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < content_.size()) {
      const auto end = content_.find('\n', start);
      lines.push_back(content_.substr(start, end - start + 1));
      start = end + 1;
    }
    return lines;
  }

  VerifyReport Check() { return VerifyWith(FilePath()); }

  std::string content_;
};

TEST_F(AuditFileTamperTest, RemovedFromTheEnd) {
  const auto lines = Lines();
  Rewrite(lines[0] + lines[1] + lines[2] + lines[3]);
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 5);
  EXPECT_NE(report.problem.find(FilePath() + " ends at record 4 but the database has records up "
                                             "to 5: records were removed from the end of the file"),
            std::string::npos)
      << report.problem;
  EXPECT_EQ(report.file_records, 4);
}

TEST_F(AuditFileTamperTest, PartialLastLine) {
  Rewrite(content_.substr(0, content_.size() - 20));
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 5);
  EXPECT_NE(report.problem.find("partial line (line 5"), std::string::npos) << report.problem;
}

TEST_F(AuditFileTamperTest, RemovedFromTheMiddle) {
  const auto lines = Lines();
  Rewrite(lines[0] + lines[1] + lines[3] + lines[4]);
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 3);
  EXPECT_NE(report.problem.find("record 3 is missing from"), std::string::npos) << report.problem;
}

TEST_F(AuditFileTamperTest, EditedLine) {
  std::string edited = content_;
  const auto at = edited.find("event 2");
  ASSERT_NE(at, std::string::npos);
  edited[at] = 'E';
  Rewrite(edited);
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 3);
  EXPECT_NE(report.problem.find("record 3 (line 3 of"), std::string::npos) << report.problem;
}

TEST_F(AuditFileTamperTest, GarbageLine) {
  const auto lines = Lines();
  Rewrite(lines[0] + "not json\n" + lines[2]);
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 2);
  EXPECT_NE(report.problem.find("line 2 of " + FilePath() + " is not a record"), std::string::npos)
      << report.problem;
}

TEST_F(AuditFileTamperTest, DatabaseTailRemoved) {
  TamperWith(DbPath(), "DELETE FROM audit_log WHERE seq = 5;");
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 5);
  EXPECT_NE(report.problem.find("records were removed from the end of the database"),
            std::string::npos)
      << report.problem;
}

TEST_F(AuditFileTamperTest, FileOfAnotherDatabase) {
  store_.reset();
  std::filesystem::remove_all(dir_.path() + "/data");
  OpenStore();
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(AppendDirect(*store_, KeyFromSeed(1), clock_, MakeEvent("other")));
  }
  const VerifyReport report = Check();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_seq, 1);
  EXPECT_NE(report.problem.find("differs from record 1 in the database"), std::string::npos)
      << report.problem;
}

TEST_F(AuditFileTamperTest, MissingFileIsAnError) {
  std::vector<crypto::MacKey> keys;
  keys.push_back(KeyFromSeed(1));
  VerifyOptions options;
  options.file_path = dir_.path() + "/nope.jsonl";
  auto report = Verify(*store_, keys, options);
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace bifrost::audit
