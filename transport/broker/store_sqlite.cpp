// The SQLite store. One connection, prepared statements kept for the
// store's life, one transaction per commit(). The tables:
// - pending: messages waiting or running, by seq (the broker's order);
// - results_0 and results_1: the final outcome per message id, expired
//   after a while a table at a time (see `schema`);
// - dead: dead letters, by the seq their message had;
// - workers: the workers registered, for a restarted broker to wait for.
// The broker holds every pending message in memory too, so `pending` is
// read only at start and needs no index but its key.
#include "broker/store_sqlite.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace troupe::durable {
namespace {

// Outcomes live in two tables keyed by message id alone (one b-tree per
// row written, where a rowid table plus a unique index on the id is two):
// new ones go to the current table; when every outcome in the other one is
// past the retention time, that one is emptied at once and becomes the
// current one. So an outcome is kept at least the retention time and at
// most about twice it, and expiring costs no index on time. Schema 1 had
// one `results` table (rowid, unique id); opening it migrates it.
constexpr int schema_version = 2;
constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS troupe_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending(
  seq INTEGER PRIMARY KEY, id BLOB NOT NULL, address TEXT NOT NULL, method TEXT NOT NULL,
  args BLOB NOT NULL, tell INTEGER NOT NULL, attempts INTEGER NOT NULL, lost INTEGER NOT NULL,
  not_before INTEGER NOT NULL, accepted INTEGER NOT NULL, last_error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results_0(
  id BLOB PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, value BLOB NOT NULL,
  finished INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results_1(
  id BLOB PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, value BLOB NOT NULL,
  finished INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead(
  seq INTEGER PRIMARY KEY, id BLOB NOT NULL, address TEXT NOT NULL, method TEXT NOT NULL,
  args BLOB NOT NULL, tell INTEGER NOT NULL, attempts INTEGER NOT NULL, lost INTEGER NOT NULL,
  not_before INTEGER NOT NULL, accepted INTEGER NOT NULL, last_error TEXT NOT NULL,
  reason TEXT NOT NULL, died INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workers(id BLOB PRIMARY KEY);
INSERT OR IGNORE INTO troupe_meta(key, value) VALUES ('schema', 2), ('next_seq', 1),
  ('results_current', 0), ('results_current_newest', 0), ('results_other_newest', 0);
)sql";

// Schema 1's outcomes into the current table of schema 2 (in the open
// transaction), keeping the sequence past them.
constexpr const char* migrate_from_1 = R"sql(
UPDATE troupe_meta SET value = max(value, (SELECT coalesce(max(seq), 0) + 1 FROM results)) WHERE key = 'next_seq';
UPDATE troupe_meta SET value = (SELECT coalesce(max(finished), 0) FROM results) WHERE key = 'results_current_newest';
INSERT OR REPLACE INTO results_0(id, seq, status, value, finished) SELECT id, seq, status, value, finished FROM results;
DROP TABLE results;
UPDATE troupe_meta SET value = 2 WHERE key = 'schema';
)sql";

constexpr const char* message_columns =
    "seq, id, address, method, args, tell, attempts, lost, not_before, accepted, last_error";

// The system's error behind SQLite's last failure, caught before
// sqlite3_reset (which may do more I/O and clear it).
int last_system_errno = 0;

// Why a statement failed, in an operator's words first and SQLite's after.
std::string explain(sqlite3* db, int rc, const std::string& path) {
  const int sys = last_system_errno ? last_system_errno : (db ? sqlite3_system_errno(db) : 0);
  last_system_errno = 0;
  std::string what;
  if (sys == ENOSPC || sys == EDQUOT || sys == EFBIG || (rc & 0xff) == SQLITE_FULL) {
    what = "the disk is full";
  } else if (sys == EROFS || sys == EPERM || sys == EACCES || sys == EBADF) {
    what = "it cannot be written (read-only file or directory, or no permission)";
  } else {
    switch (rc & 0xff) {
      case SQLITE_READONLY:
      case SQLITE_PERM:
      case SQLITE_CANTOPEN:
        what = "it cannot be written (read-only file or directory, or no permission)";
        break;
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
        what = "the file is corrupt or not a troupe store";
        break;
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        what = "another process (another broker?) holds it";
        break;
      case SQLITE_IOERR:
        what = "an I/O error";
        break;
      default:
        what = "an error";
    }
  }
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // The system's word too, when there is one: "File too large", "No space
  // left on device", "Read-only file system".
  if (sys != 0) detail += ": " + std::string(std::strerror(sys));
  return "store " + path + ": " + what + " (" + detail + ")";
}

// A prepared statement, reset after each use.
class statement {
 public:
  statement() = default;
  statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) != SQLITE_OK)
      throw store_error(std::string("store: cannot prepare a statement: ") + sqlite3_errmsg(db));
  }
  statement(statement&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  statement& operator=(statement&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~statement() { sqlite3_finalize(s_); }

  statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  statement& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  statement& blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  // Runs to completion; returns SQLite's code (SQLITE_DONE on success).
  int run() {
    const int rc = step();
    sqlite3_reset(s_);
    return rc;
  }
  int step() {
    errno = 0;
    const int rc = sqlite3_step(s_);
    // SQLite keeps the errno of only some failures (not of a failed write
    // of the log): the failed call's errno, when nothing has touched it since.
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      const int e = errno;
      last_system_errno = sqlite3_system_errno(sqlite3_db_handle(s_));
      if (last_system_errno == 0) last_system_errno = e;
    }
    return rc;
  }
  void reset() { sqlite3_reset(s_); }
  std::int64_t integer(int c) const { return sqlite3_column_int64(s_, c); }
  std::string text(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// Binds `m` to the 11 parameters from `first` on (message_columns' order).
void bind_message(statement& s, const message& m, int first = 1) {
  const int i = first - 1;
  s.bind(i + 1, static_cast<std::int64_t>(m.seq))
      .blob(i + 2, m.id)
      .bind(i + 3, m.address)
      .bind(i + 4, m.method);
  s.blob(i + 5, m.args).bind(i + 6, std::int64_t{m.tell}).bind(i + 7, std::int64_t{m.attempts});
  s.bind(i + 8, std::int64_t{m.lost})
      .bind(i + 9, m.not_before)
      .bind(i + 10, m.accepted)
      .bind(i + 11, m.last_error);
}

// One statement run for many rows: a batch of a few hundred messages costs
// a few statement runs instead of one each, and a run's fixed cost (step,
// reset, cursors, halt) was a good part of SQLite's time per message.
// Statements for 64, 8 and 1 rows: `head` + `row` repeated, comma-joined +
// `tail`, each row taking `params` parameters.
class chunked_statement {
 public:
  static constexpr int sizes[] = {64, 8, 1};

  chunked_statement(sqlite3* db, const std::string& head, const std::string& row, const std::string& tail,
                    int params)
      : params_(params) {
    for (std::size_t k = 0; k < std::size(sizes); ++k) {
      std::string sql = head;
      for (int r = 0; r < sizes[k]; ++r) sql += (r ? "," : "") + row;
      st_[k] = statement(db, sql + tail);
    }
  }

  // Runs over `items`, `bind(statement, first parameter, item)` binding one
  // row; returns SQLite's code of the first failure, or SQLITE_DONE.
  template <class Items, class Bind>
  int run(const Items& items, Bind bind) {
    std::size_t i = 0;
    for (std::size_t k = 0; k < std::size(sizes); ++k) {
      const auto n = static_cast<std::size_t>(sizes[k]);
      for (; items.size() - i >= n; i += n) {
        for (std::size_t r = 0; r < n; ++r) bind(st_[k], 1 + static_cast<int>(r) * params_, items[i + r]);
        if (const int rc = st_[k].run(); rc != SQLITE_DONE) return rc;
      }
    }
    return SQLITE_DONE;
  }

 private:
  int params_;
  statement st_[std::size(sizes)];
};

message read_message(const statement& s) {
  message m;
  m.seq = static_cast<std::uint64_t>(s.integer(0));
  m.id = s.text(1);
  m.address = s.text(2);
  m.method = s.text(3);
  m.args = s.text(4);
  m.tell = s.integer(5) != 0;
  m.attempts = static_cast<std::uint32_t>(s.integer(6));
  m.lost = static_cast<std::uint32_t>(s.integer(7));
  m.not_before = s.integer(8);
  m.accepted = s.integer(9);
  m.last_error = s.text(10);
  return m;
}

dead_letter read_dead(const statement& s) {
  dead_letter d;
  d.msg = read_message(s);
  d.reason = s.text(11);
  d.died = s.integer(12);
  return d;
}

// The outcome tables' statements: `%` names results_0 or results_1.
constexpr const char* add_result_sql =
    "INSERT OR REPLACE INTO results_%(seq, id, status, value, finished) VALUES ";
constexpr const char* forget_sql = "DELETE FROM results_% WHERE id = ?1";
constexpr const char* clear_results_sql = "DELETE FROM results_%";  // SQLite's truncate: no row visited
}  // namespace

struct sqlite_store::statements {
  statement begin, commit, rollback;
  chunked_statement add, finish_pending;
  statement reschedule, die, undie, set_next_seq, set_meta;
  chunked_statement add_result[2];
  statement find_result, forget[2], clear_results[2];
  statement dead_page, dead_one, dead_count, pending_all;
  statement worker_in, worker_out, workers_all;

  explicit statements(sqlite3* db)
      : begin(db, "BEGIN"),
        commit(db, "COMMIT"),
        rollback(db, "ROLLBACK"),
        add(db, std::string("INSERT INTO pending(") + message_columns + ") VALUES ",
            "(?,?,?,?,?,?,?,?,?,?,?)", "", 11),
        finish_pending(db, "DELETE FROM pending WHERE seq IN (", "?", ")", 1),
        reschedule(
            db,
            "UPDATE pending SET attempts = ?2, lost = ?3, not_before = ?4, last_error = ?5 WHERE seq = ?1"),
        die(db, std::string("INSERT OR REPLACE INTO dead(") + message_columns +
                    ", reason, died) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"),
        undie(db, "DELETE FROM dead WHERE seq = ?1"),
        set_next_seq(db, "UPDATE troupe_meta SET value = max(value, ?1) WHERE key = 'next_seq'"),
        set_meta(db, "UPDATE troupe_meta SET value = ?2 WHERE key = ?1"),
        add_result{{db, for_table(add_result_sql, 0), "(?,?,?,?,?)", "", 5},
                   {db, for_table(add_result_sql, 1), "(?,?,?,?,?)", "", 5}},
        // Both tables in one statement run (an id has one outcome): most
        // ids looked up are new, and each run has a fixed cost.
        find_result(db,
                    "SELECT status, value, finished FROM results_0 WHERE id = ?1 "
                    "UNION ALL SELECT status, value, finished FROM results_1 WHERE id = ?1 LIMIT 1"),
        forget{{db, for_table(forget_sql, 0)}, {db, for_table(forget_sql, 1)}},
        clear_results{{db, for_table(clear_results_sql, 0)}, {db, for_table(clear_results_sql, 1)}},
        dead_page(db, std::string("SELECT ") + message_columns +
                          ", reason, died FROM dead WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
        dead_one(db, std::string("SELECT ") + message_columns + ", reason, died FROM dead WHERE seq = ?1"),
        dead_count(db, "SELECT count(*) FROM dead"),
        pending_all(db, std::string("SELECT ") + message_columns + " FROM pending ORDER BY seq"),
        worker_in(db, "INSERT OR IGNORE INTO workers(id) VALUES (?1)"),
        worker_out(db, "DELETE FROM workers WHERE id = ?1"),
        workers_all(db, "SELECT id FROM workers") {}

  // `sql` for results_0 or results_1: `%` names the table.
  static std::string for_table(std::string sql, int table) {
    sql[sql.find('%')] = static_cast<char>('0' + table);
    return sql;
  }
};

sqlite_store::sqlite_store(std::string path) : path_(std::move(path)) {
  int rc = sqlite3_open_v2(path_.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto fail = [&](int code) {
    std::string why = explain(db_, code, path_);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw store_error(why);
  };
  if (rc != SQLITE_OK) fail(rc);
  // Exclusive locking before WAL: no shared-memory file, and a second
  // broker on the same file is refused rather than interleaved.
  const char* setup =
      "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
      "PRAGMA cache_size=-16384; PRAGMA foreign_keys=OFF;";
  if ((rc = sqlite3_exec(db_, setup, nullptr, nullptr, nullptr)) != SQLITE_OK) fail(rc);
  // The schema in a write transaction: it takes the lock now, and proves
  // the file writable before the broker confirms anything.
  if ((rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr)) != SQLITE_OK) fail(rc);
  bool had_v1_results = false;
  try {
    statement v1(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'results'");
    had_v1_results = v1.step() == SQLITE_ROW;
  } catch (const store_error&) {
    fail(sqlite3_errcode(db_));
  }
  if ((rc = sqlite3_exec(db_, schema, nullptr, nullptr, nullptr)) != SQLITE_OK) fail(rc);
  if (had_v1_results && (rc = sqlite3_exec(db_, migrate_from_1, nullptr, nullptr, nullptr)) != SQLITE_OK)
    fail(rc);
  if ((rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr)) != SQLITE_OK) fail(rc);
  try {
    st_ = std::make_unique<statements>(db_);
  } catch (const store_error&) {
    fail(sqlite3_errcode(db_));
  }
  auto meta = [&](std::string_view key) -> std::int64_t {
    statement s(db_, "SELECT value FROM troupe_meta WHERE key = ?1");
    s.bind(1, key);
    return s.step() == SQLITE_ROW ? s.integer(0) : 0;
  };
  if (const auto version = meta("schema"); version != schema_version) {
    st_.reset();
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw store_error("store " + path_ + ": it has schema version " + std::to_string(version) +
                      ", this broker reads " + std::to_string(schema_version) +
                      " (a newer troupe wrote it?)");
  }
  next_seq_ = static_cast<std::uint64_t>(meta("next_seq"));
  // Belt and braces for the sequence: past every seq in a table keyed by it.
  for (const char* table : {"pending", "dead"}) {
    statement m(db_, std::string("SELECT coalesce(max(seq), 0) FROM ") + table);
    if (m.step() == SQLITE_ROW) next_seq_ = std::max(next_seq_, static_cast<std::uint64_t>(m.integer(0)) + 1);
  }
  results_.current = meta("results_current") == 1 ? 1 : 0;
  // Not written in every commit: any outcome already in the current table
  // finished before now (or, from a schema 1 store, at its recorded newest).
  statement any(db_, statements::for_table("SELECT 1 FROM results_% LIMIT 1", results_.current));
  if (any.step() == SQLITE_ROW) {
    const auto opened = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    results_.current_newest = std::max<std::int64_t>(meta("results_current_newest"), opened);
  }
  seq_reserved_ = next_seq_;
  results_.other_newest = meta("results_other_newest");
}

sqlite_store::~sqlite_store() {
  st_.reset();
  if (db_) sqlite3_close_v2(db_);
}

std::string sqlite_store::commit(const batch& b) {
  if (b.empty()) return {};
  int rc = st_->begin.run();
  if (rc != SQLITE_DONE) return explain(db_, rc, path_);
  auto error = write(b);
  if (error.empty()) {
    rc = st_->commit.run();
    if (rc == SQLITE_DONE) {
      results_ = written_results_;
      seq_reserved_ = written_seq_reserved_;
      return {};
    }
    error = explain(db_, rc, path_);
  }
  // All or nothing: a failed batch leaves the store as it was.
  if (!sqlite3_get_autocommit(db_)) st_->rollback.run();
  return error;
}

// The statements of one batch, inside the open transaction; returns the
// first error.
std::string sqlite_store::write(const batch& b) {
  auto check = [&](int rc) { return rc == SQLITE_DONE ? std::string() : explain(db_, rc, path_); };
  std::string e;
  std::uint64_t top = 0;
  if (!(e = check(st_->add.run(b.added,
                               [](statement& s, int first, const message& m) { bind_message(s, m, first); })))
           .empty())
    return e;
  for (const auto& m : b.added) top = std::max(top, m.seq);
  // The sequence is kept as a reservation, written once per seq_block
  // messages rather than in every commit (one page less to sync): a
  // restarted broker starts past it, leaving a gap, never reusing one.
  written_seq_reserved_ = seq_reserved_;
  if (top >= seq_reserved_) {
    written_seq_reserved_ = top + 1 + seq_block;
    if (!(e = check(st_->set_next_seq.bind(1, static_cast<std::int64_t>(written_seq_reserved_)).run()))
             .empty())
      return e;
  }
  for (const auto& r : b.rescheduled) {
    auto& s = st_->reschedule;
    s.bind(1, static_cast<std::int64_t>(r.seq))
        .bind(2, std::int64_t{r.attempts})
        .bind(3, std::int64_t{r.lost});
    s.bind(4, r.not_before).bind(5, r.last_error);
    if (!(e = check(s.run())).empty()) return e;
  }
  for (const auto& d : b.died) {
    bind_message(st_->die, d.msg);
    st_->die.bind(12, d.reason).bind(13, d.died);
    if (!(e = check(st_->die.run())).empty()) return e;
  }
  auto seq_of = [](statement& s, int first, const auto& x) {
    if constexpr (requires { x.msg; }) {
      s.bind(first, static_cast<std::int64_t>(x.msg.seq));
    } else {
      s.bind(first, static_cast<std::int64_t>(x.seq));
    }
  };
  if (!(e = check(st_->finish_pending.run(b.died, seq_of))).empty()) return e;
  if (!(e = check(st_->finish_pending.run(b.finished, seq_of))).empty()) return e;
  auto next = results_;  // the outcome tables as they will be once this commits
  if (b.expire_results_before != 0 && next.other_newest < b.expire_results_before) {
    // Every outcome in the other table is past retention: empty it, and
    // new outcomes go there from now on.
    if (!(e = check(st_->clear_results[1 - next.current].run())).empty()) return e;
    next = {1 - next.current, 0, next.current_newest};
  }
  // An id has one outcome: a retried dead letter's earlier one was
  // forgotten (in both tables) before it could finish again.
  if (!(e = check(st_->add_result[next.current].run(
            b.finished,
            [](statement& s, int first, const batch::finish& f) {
              s.bind(first, static_cast<std::int64_t>(f.seq))
                  .blob(first + 1, f.id)
                  .bind(first + 2, f.result.status);
              s.blob(first + 3, f.result.value).bind(first + 4, f.result.finished);
            })))
           .empty())
    return e;
  for (const auto& f : b.finished) next.current_newest = std::max(next.current_newest, f.result.finished);
  // Which table is current, and the other's newest outcome, change only
  // when they rotate. The current table's newest is kept in memory (a
  // reopened store takes the time it was opened, later than any of them).
  if (next.current != results_.current) {
    for (const auto& [key, value] : {std::pair<const char*, std::int64_t>{"results_current", next.current},
                                     {"results_other_newest", next.other_newest}})
      if (!(e = check(st_->set_meta.bind(1, key).bind(2, value).run())).empty()) return e;
  }
  written_results_ = next;
  for (const auto seq : b.revived)
    if (!(e = check(st_->undie.bind(1, static_cast<std::int64_t>(seq)).run())).empty()) return e;
  for (const auto seq : b.purged)
    if (!(e = check(st_->undie.bind(1, static_cast<std::int64_t>(seq)).run())).empty()) return e;
  for (const auto& id : b.forgotten)
    for (auto& forget : st_->forget)
      if (!(e = check(forget.blob(1, id).run())).empty()) return e;
  for (const auto& w : b.workers_joined)
    if (!(e = check(st_->worker_in.blob(1, w).run())).empty()) return e;
  for (const auto& w : b.workers_left)
    if (!(e = check(st_->worker_out.blob(1, w).run())).empty()) return e;
  return {};
}

std::vector<std::string> sqlite_store::workers() {
  std::vector<std::string> out;
  auto& s = st_->workers_all;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(s.text(0));
  s.reset();
  if (rc != SQLITE_DONE) throw store_error(explain(db_, rc, path_));
  return out;
}

std::vector<message> sqlite_store::pending() {
  std::vector<message> out;
  auto& s = st_->pending_all;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_message(s));
  s.reset();
  if (rc != SQLITE_DONE) throw store_error(explain(db_, rc, path_));
  return out;
}

std::uint64_t sqlite_store::next_seq() { return next_seq_; }

std::optional<result> sqlite_store::find_result(std::string_view id) {
  auto& s = st_->find_result;
  s.blob(1, id);
  const int rc = s.step();
  std::optional<result> out;
  if (rc == SQLITE_ROW) out = result{s.text(0), s.text(1), s.integer(2)};
  s.reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw store_error(explain(db_, rc, path_));
  return out;
}

std::vector<dead_letter> sqlite_store::dead_letters(std::uint64_t after, std::size_t limit) {
  std::vector<dead_letter> out;
  auto& s = st_->dead_page;
  s.bind(1, static_cast<std::int64_t>(after)).bind(2, static_cast<std::int64_t>(limit));
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_dead(s));
  s.reset();
  if (rc != SQLITE_DONE) throw store_error(explain(db_, rc, path_));
  return out;
}

std::optional<dead_letter> sqlite_store::dead_letter_at(std::uint64_t seq) {
  auto& s = st_->dead_one;
  s.bind(1, static_cast<std::int64_t>(seq));
  const int rc = s.step();
  std::optional<dead_letter> out;
  if (rc == SQLITE_ROW) out = read_dead(s);
  s.reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw store_error(explain(db_, rc, path_));
  return out;
}

std::uint64_t sqlite_store::dead_count() {
  auto& s = st_->dead_count;
  const int rc = s.step();
  const auto n = rc == SQLITE_ROW ? static_cast<std::uint64_t>(s.integer(0)) : 0;
  s.reset();
  if (rc != SQLITE_ROW) throw store_error(explain(db_, rc, path_));
  return n;
}

}  // namespace troupe::durable
