// A store in memory, for tests of the broker core: the same contract as the
// SQLite store, without a file. `fail_with` makes every commit fail with
// that text (a full or read-only disk), so the core's refusals can be
// tested without a real one. Not durable, not thread-safe.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "broker/store.hpp"

namespace troupe::durable {

class memory_store final : public store {
 public:
  std::string commit(const batch& b) override {
    ++commits;
    if (!fail_with.empty()) return fail_with;
    for (const auto& m : b.added) pending_[m.seq] = m;
    for (const auto& f : b.finished) {
      pending_.erase(f.seq);
      results_[f.id] = f.result;
    }
    for (const auto& r : b.rescheduled) {
      auto it = pending_.find(r.seq);
      if (it == pending_.end()) continue;
      it->second.attempts = r.attempts;
      it->second.lost = r.lost;
      it->second.not_before = r.not_before;
      it->second.last_error = r.last_error;
    }
    for (const auto& d : b.died) {
      pending_.erase(d.msg.seq);
      dead_[d.msg.seq] = d;
    }
    for (const auto seq : b.revived) dead_.erase(seq);
    for (const auto& id : b.forgotten) results_.erase(id);
    for (const auto seq : b.purged) dead_.erase(seq);
    if (b.expire_results_before != 0)
      std::erase_if(results_, [&](const auto& kv) { return kv.second.finished < b.expire_results_before; });
    for (const auto& m : b.added) next_ = std::max(next_, m.seq + 1);
    for (const auto& w : b.workers_joined) workers_.insert(w);
    for (const auto& w : b.workers_left) workers_.erase(w);
    return {};
  }

  std::vector<message> pending() override {
    std::vector<message> out;
    for (const auto& [seq, m] : pending_) out.push_back(m);
    return out;
  }
  std::uint64_t next_seq() override { return next_; }
  std::vector<std::string> workers() override { return {workers_.begin(), workers_.end()}; }
  std::optional<result> find_result(std::string_view id) override {
    const auto it = results_.find(std::string(id));
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<dead_letter> dead_letters(std::uint64_t after, std::size_t limit) override {
    std::vector<dead_letter> out;
    for (auto it = dead_.upper_bound(after); it != dead_.end() && out.size() < limit; ++it)
      out.push_back(it->second);
    return out;
  }
  std::optional<dead_letter> dead_letter_at(std::uint64_t seq) override {
    const auto it = dead_.find(seq);
    if (it == dead_.end()) return std::nullopt;
    return it->second;
  }
  std::uint64_t dead_count() override { return dead_.size(); }
  std::string describe() const override { return "memory"; }

  // For tests: what a commit returns while set; commits attempted.
  std::string fail_with;
  std::size_t commits = 0;
  const std::map<std::string, result>& results() const { return results_; }

 private:
  std::map<std::uint64_t, message> pending_;
  std::map<std::string, result> results_;
  std::map<std::uint64_t, dead_letter> dead_;
  std::set<std::string> workers_;
  std::uint64_t next_ = 1;
};

}  // namespace troupe::durable
