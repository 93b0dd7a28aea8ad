// The broker's store in an embedded SQLite database (docs/durability.md):
// WAL mode with synchronous=FULL, so a commit returns only once its pages
// are fsync'd, and the file locked for this process alone (two brokers on
// one store would run each message twice).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "broker/store.hpp"

struct sqlite3;  // <sqlite3.h>, kept out of this header

namespace troupe::durable {

class sqlite_store final : public store {
 public:
  // Opens (creating when missing) the store at `path` and takes its lock.
  // Throws store_error saying why it cannot be used: the file is not a
  // database or is corrupt, it or its directory is read-only, another
  // broker holds it, the disk is full.
  explicit sqlite_store(std::string path);
  ~sqlite_store() override;
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

  std::string commit(const batch& b) override;
  std::vector<message> pending() override;
  std::uint64_t next_seq() override;
  std::vector<std::string> workers() override;
  std::optional<result> find_result(std::string_view id) override;
  std::vector<dead_letter> dead_letters(std::uint64_t after, std::size_t limit) override;
  std::optional<dead_letter> dead_letter_at(std::uint64_t seq) override;
  std::uint64_t dead_count() override;
  std::string describe() const override { return path_; }

 private:
  struct statements;
  std::string write(const batch& b);
  std::string path_;
  ::sqlite3* db_ = nullptr;
  std::unique_ptr<statements> st_;
  std::uint64_t next_seq_ = 1;
  // The two outcome tables (store_sqlite.cpp): which one takes new
  // outcomes, and the newest finish time in each, as committed; and as the
  // batch being written would leave them.
  struct result_tables {
    int current = 0;
    std::int64_t current_newest = 0, other_newest = 0;
  };
  result_tables results_, written_results_;
  // The sequence's reservation on disk, as committed and as the batch being
  // written leaves it (store_sqlite.cpp, write).
  static constexpr std::uint64_t seq_block = 4096;
  std::uint64_t seq_reserved_ = 1, written_seq_reserved_ = 1;
};

}  // namespace troupe::durable
