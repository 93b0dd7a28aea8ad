// The broker's stores (transport/broker/store*.hpp): the same contract for
// the in-memory and the SQLite store, and what only a file can show: a
// process killed mid-batch loses no committed batch and leaves no half
// batch; a full, read-only, corrupt or locked store says so clearly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include "broker/store_memory.hpp"
#include "broker/store_sqlite.hpp"

#include <sqlite3.h>

namespace troupe::durable {
namespace {

namespace fs = std::filesystem;

// "m<seq>": the message id make() gives seq. (Appended, not `"m" + ...`:
// GCC 12 warns -Wrestrict on that at -O2, a false positive.)
std::string id_of(std::uint64_t seq) { return std::string("m").append(std::to_string(seq)); }

message make(std::uint64_t seq, std::string id = {}) {
  message m;
  m.seq = seq;
  m.id = id.empty() ? id_of(seq) : id;
  m.address = "counter/x";
  m.method = "add";
  m.args = std::string("\x91\x01", 2);
  m.accepted = 1000 + static_cast<unix_ms>(seq);
  return m;
}

class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/troupe-store-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    std::system(("chattr -R -i " + path_.string() + " 2>/dev/null").c_str());
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---- the contract, for both stores ----------------------------------------

struct store_factory {
  const char* name;
  std::function<std::unique_ptr<store>(const std::string& dir)> open;
};

class store_contract : public ::testing::TestWithParam<store_factory> {
 protected:
  temp_dir dir;
  std::unique_ptr<store> s = GetParam().open(dir.file("s.db"));
};

TEST_P(store_contract, AddedMessagesComeBackInSeqOrder) {
  batch b;
  for (std::uint64_t seq : {3, 1, 2}) b.added.push_back(make(seq));
  ASSERT_EQ(s->commit(b), "");
  const auto p = s->pending();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].seq, 1u);
  EXPECT_EQ(p[2].seq, 3u);
  EXPECT_EQ(p[0].args, std::string("\x91\x01", 2));
  EXPECT_EQ(p[0].address, "counter/x");
  EXPECT_EQ(p[0].accepted, 1001);
}

TEST_P(store_contract, FinishedMessageLeavesPendingAndKeepsItsResult) {
  batch b;
  b.added = {make(1), make(2)};
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  b.finished.push_back({1, "m1", result{"ok", "\x07", 5000}});
  ASSERT_EQ(s->commit(b), "");
  ASSERT_EQ(s->pending().size(), 1u);
  const auto r = s->find_result("m1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, "ok");
  EXPECT_EQ(r->value, "\x07");
  EXPECT_FALSE(s->find_result("m2"));
}

TEST_P(store_contract, RescheduleDeadLettersRetryAndPurge) {
  batch b;
  b.added = {make(1), make(2)};
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  b.rescheduled.push_back({1, 2, 1, 9000, "actor_error: boom"});
  ASSERT_EQ(s->commit(b), "");
  auto p = s->pending();
  EXPECT_EQ(p[0].attempts, 2u);
  EXPECT_EQ(p[0].lost, 1u);
  EXPECT_EQ(p[0].not_before, 9000);
  EXPECT_EQ(p[0].last_error, "actor_error: boom");

  b.clear();
  auto dead_msg = p[0];
  b.died.push_back({dead_msg, "attempts", 9500});
  b.finished.push_back({0, dead_msg.id,
                        result{"actor_error",
                               "\xa4"
                               "boom",
                               9500}});
  ASSERT_EQ(s->commit(b), "");
  EXPECT_EQ(s->pending().size(), 1u);
  EXPECT_EQ(s->dead_count(), 1u);
  auto d = s->dead_letter_at(1);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, "attempts");
  EXPECT_EQ(d->msg.attempts, 2u);
  EXPECT_EQ(s->dead_letters(0, 10).size(), 1u);
  EXPECT_TRUE(s->dead_letters(1, 10).empty());

  // Retried: the dead letter goes, its result is forgotten, it is pending again.
  b.clear();
  auto again = d->msg;
  again.seq = 3;
  again.attempts = 0;
  b.added.push_back(again);
  b.revived.push_back(1);
  b.forgotten.push_back(again.id);
  ASSERT_EQ(s->commit(b), "");
  EXPECT_EQ(s->dead_count(), 0u);
  EXPECT_FALSE(s->find_result(again.id));
  EXPECT_EQ(s->pending().size(), 2u);

  b.clear();
  b.died.push_back({make(2), "poison", 10000});
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  b.purged.push_back(2);
  ASSERT_EQ(s->commit(b), "");
  EXPECT_EQ(s->dead_count(), 0u);
}

// An outcome is kept until the retention has passed its finish, and gone
// once the retention has passed every outcome of its period: the SQLite
// store empties one of its two outcome tables at a time (so it may keep an
// outcome up to about twice the retention); the memory one is exact.
TEST_P(store_contract, OldResultsExpire) {
  auto finish = [&](std::uint64_t seq, unix_ms at) {
    batch b;
    b.added = {make(seq)};
    b.finished = {{seq, id_of(seq), result{"ok", "", at}}};
    return s->commit(b);
  };
  auto expire_before = [&](unix_ms t) {
    batch b;
    b.expire_results_before = t;
    return s->commit(b);
  };
  ASSERT_EQ(finish(1, 100), "");
  ASSERT_EQ(finish(2, 900), "");
  ASSERT_EQ(expire_before(500), "");
  EXPECT_TRUE(s->find_result("m2"));
  ASSERT_EQ(expire_before(1000), "");
  EXPECT_FALSE(s->find_result("m1"));
  EXPECT_FALSE(s->find_result("m2"));

  ASSERT_EQ(finish(3, 1500), "");
  ASSERT_EQ(expire_before(1200), "");
  EXPECT_TRUE(s->find_result("m3"));
  ASSERT_EQ(expire_before(1600), "");
  EXPECT_FALSE(s->find_result("m3"));
}

TEST_P(store_contract, AForgottenResultIsGoneFromEitherPeriod) {
  batch b;
  b.added = {make(1)};
  b.finished = {{1, "m1", result{"ok", "", 100}}};
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  b.expire_results_before = 50;  // the SQLite store starts a new period: m1 is in the older one now
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  b.forgotten = {"m1"};
  ASSERT_EQ(s->commit(b), "");
  EXPECT_FALSE(s->find_result("m1"));
}

// Batches of every size: the SQLite store writes rows 64, 8 and 1 at a time.
TEST_P(store_contract, LargeBatchesKeepEveryRow) {
  batch b;
  for (std::uint64_t seq = 1; seq <= 150; ++seq) b.added.push_back(make(seq));
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  for (std::uint64_t seq = 1; seq <= 73; ++seq)
    b.finished.push_back({seq, id_of(seq), result{"ok", "", 100}});
  ASSERT_EQ(s->commit(b), "");
  const auto left = s->pending();
  ASSERT_EQ(left.size(), 77u);
  EXPECT_EQ(left.front().seq, 74u);
  EXPECT_EQ(left.back().seq, 150u);
  for (std::uint64_t seq = 1; seq <= 150; ++seq)
    EXPECT_EQ(s->find_result(id_of(seq)).has_value(), seq <= 73) << seq;
}

TEST_P(store_contract, RemembersRegisteredWorkers) {
  batch b;
  b.workers_joined = {"w1", "w2"};
  ASSERT_EQ(s->commit(b), "");
  b.clear();
  b.workers_left = {"w1"};
  ASSERT_EQ(s->commit(b), "");
  EXPECT_EQ(s->workers(), std::vector<std::string>{"w2"});
}

TEST_P(store_contract, EmptyBatchIsNothing) { EXPECT_EQ(s->commit(batch{}), ""); }

INSTANTIATE_TEST_SUITE_P(
    stores, store_contract,
    ::testing::Values(
        store_factory{"memory", [](const std::string&) { return std::make_unique<memory_store>(); }},
        store_factory{"sqlite", [](const std::string& p) { return std::make_unique<sqlite_store>(p); }}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- only a file ------------------------------------------------------------

TEST(sqlite_store_file, ReopenedStoreHasWhatWasCommittedAndTheNextSeq) {
  temp_dir dir;
  {
    sqlite_store s(dir.file("s.db"));
    batch b;
    b.added = {make(1), make(7)};
    b.finished = {{1, "m1", result{"ok", "x", 1}}};
    ASSERT_EQ(s.commit(b), "");
  }
  sqlite_store s(dir.file("s.db"));
  EXPECT_GE(s.next_seq(), 8u);  // past every seq used (a reservation: maybe past that too)
  ASSERT_EQ(s.pending().size(), 1u);
  EXPECT_EQ(s.pending()[0].seq, 7u);
  EXPECT_TRUE(s.find_result("m1"));
}

// A store written by schema 1 (one `results` table with a rowid and a
// unique id) opens with its outcomes, pending messages and sequence.
TEST(sqlite_store_file, ASchemaOneStoreIsMigrated) {
  temp_dir dir;
  const auto path = dir.file("v1.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* v1 = R"sql(
CREATE TABLE troupe_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE pending(
  seq INTEGER PRIMARY KEY, id BLOB NOT NULL, address TEXT NOT NULL, method TEXT NOT NULL,
  args BLOB NOT NULL, tell INTEGER NOT NULL, attempts INTEGER NOT NULL, lost INTEGER NOT NULL,
  not_before INTEGER NOT NULL, accepted INTEGER NOT NULL, last_error TEXT NOT NULL);
CREATE TABLE results(
  seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, status TEXT NOT NULL, value BLOB NOT NULL,
  finished INTEGER NOT NULL);
INSERT INTO troupe_meta(key, value) VALUES ('schema', 1), ('next_seq', 5);
INSERT INTO pending VALUES (4, CAST('m4' AS BLOB), 'counter/x', 'add', x'9101', 1, 0, 0, 0, 1004, '');
INSERT INTO results VALUES (9, CAST('m9' AS BLOB), 'ok', x'2a', 1009);
)sql";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  {
    sqlite_store s(path);
    const auto r = s.find_result("m9");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, "ok");
    EXPECT_EQ(r->value, "\x2a");
    EXPECT_EQ(s.next_seq(), 10u);  // past the outcome's seq, not only the recorded 5
    ASSERT_EQ(s.pending().size(), 1u);
    EXPECT_EQ(s.pending()[0].id, "m4");
  }
  sqlite_store again(path);  // and opens again as schema 2
  EXPECT_TRUE(again.find_result("m9"));
}

TEST(sqlite_store_file, AStoreFromANewerSchemaIsRefusedWithAClearError) {
  temp_dir dir;
  const auto path = dir.file("newer.db");
  { sqlite_store s(path); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "UPDATE troupe_meta SET value = 3 WHERE key = 'schema'", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  try {
    sqlite_store s(path);
    FAIL() << "opened a store of a newer schema";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 3"), std::string::npos) << e.what();
  }
}

// A child commits batches of 100 messages and reports each batch once its
// commit returned; it is SIGKILLed while writing. Every reported batch is
// there after reopening, and no batch is there in part.
TEST(sqlite_store_file, KillNineMidBatchLosesNoCommittedBatchAndLeavesNoHalfBatch) {
  temp_dir dir;
  const auto path = dir.file("crash.db");
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::uint64_t first_seq;
    {
      sqlite_store s(path);
      first_seq = s.next_seq();
    }
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      sqlite_store s(path);
      for (std::uint64_t seq = first_seq;; seq += 100) {
        batch b;
        for (std::uint64_t i = 0; i < 100; ++i) b.added.push_back(make(seq + i));
        if (!s.commit(b).empty()) _exit(3);
        const std::uint64_t last = seq + 99;
        if (write(fds[1], &last, sizeof last) != sizeof last) _exit(4);
      }
    }
    close(fds[1]);
    std::uint64_t confirmed = 0, last = 0;
    int batches = 0;
    while (batches < 20 + round * 7 && read(fds[0], &last, sizeof last) == sizeof last) {
      confirmed = last;
      ++batches;
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    // Batches reported after we stopped reading were committed too.
    while (read(fds[0], &last, sizeof last) == sizeof last) confirmed = last;
    close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status));

    sqlite_store s(path);
    const auto p = s.pending();
    std::set<std::uint64_t> seqs;
    for (const auto& m : p) seqs.insert(m.seq);
    for (std::uint64_t seq = first_seq; seq <= confirmed; ++seq) ASSERT_TRUE(seqs.count(seq)) << seq;
    EXPECT_EQ(p.size() % 100, 0u) << "a batch was written in part";
    EXPECT_GE(s.next_seq(), confirmed + 1);
  }
}

// A full disk, made by a file size limit in a child: commits fail with a
// message, nothing of a failed batch is kept, and what was committed before
// stays.
TEST(sqlite_store_file, FullDiskFailsTheCommitAndKeepsEarlierBatches) {
  temp_dir dir;
  const auto path = dir.file("full.db");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);  // an over-limit write fails with EFBIG instead
    rlimit lim{256 * 1024, 256 * 1024};
    setrlimit(RLIMIT_FSIZE, &lim);
    try {
      sqlite_store s(path);
      std::uint64_t seq = 1;
      for (int i = 0; i < 10000; ++i, seq += 10) {
        batch b;
        for (int j = 0; j < 10; ++j) {
          b.added.push_back(make(seq + static_cast<std::uint64_t>(j)));
          b.added.back().args.assign(1000, 'x');
        }
        const auto e = s.commit(b);
        if (!e.empty()) {
          const std::string line = std::to_string(seq - 1) + "\n" + e;
          [[maybe_unused]] auto n = write(fds[1], line.data(), line.size());
          _exit(0);
        }
      }
    } catch (const std::exception& e) {
      [[maybe_unused]] auto n = write(fds[1], e.what(), std::strlen(e.what()));
      _exit(5);
    }
    _exit(6);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << out;
  const auto nl = out.find('\n');
  const auto committed = std::stoull(out.substr(0, nl));
  const auto error = out.substr(nl + 1);
  EXPECT_NE(error.find("store " + path), std::string::npos) << error;
  EXPECT_NE(error.find("the disk is full"), std::string::npos) << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_GT(committed, 0u);

  sqlite_store s(path);
  const auto p = s.pending();
  EXPECT_EQ(p.size(), committed) << "the failed batch was kept, or a committed one lost";
}

TEST(sqlite_store_file, CorruptFileIsRefusedWithAClearError) {
  temp_dir dir;
  const auto path = dir.file("corrupt.db");
  std::ofstream(path) << std::string(8192, 'z');
  try {
    sqlite_store s(path);
    FAIL() << "opened a corrupt store";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt or not a troupe store"), std::string::npos) << e.what();
  }
}

TEST(sqlite_store_file, MissingDirectoryIsRefusedWithAClearError) {
  try {
    sqlite_store s("/nonexistent-troupe-dir/x/store.db");
    FAIL() << "opened a store in a missing directory";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be written"), std::string::npos) << e.what();
  }
}

// Root ignores file modes, so read-only is made with the immutable attribute.
TEST(sqlite_store_file, ReadOnlyStoreIsRefusedWithAClearError) {
  temp_dir dir;
  const auto path = dir.file("ro.db");
  { sqlite_store s(path); }
  if (std::system(("chattr +i " + path + " " + dir.path().string() + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "chattr +i is not available here";
  try {
    sqlite_store s(path);
    FAIL() << "opened a read-only store for writing";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be written"), std::string::npos) << e.what();
  }
}

TEST(sqlite_store_file, SecondOpenerIsRefusedWhileTheFirstHoldsIt) {
  temp_dir dir;
  const auto path = dir.file("locked.db");
  sqlite_store first(path);
  try {
    sqlite_store second(path);
    FAIL() << "two stores on one file";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("another process"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace troupe::durable
