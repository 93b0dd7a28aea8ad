// The broker's two containers on their own: the generation-checked slot
// table and the deadline heap with removal by index.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "broker/deadline_heap.hpp"
#include "broker/slot_table.hpp"

namespace troupe {
namespace {

TEST(SlotTable, IdsFindTheirSlotUntilItIsReleased) {
  slot_table<int> t;
  const auto a = t.acquire();
  const auto b = t.acquire();
  t[a] = 10;
  t[b] = 20;
  const auto id_a = t.id_of(a);
  EXPECT_NE(id_a, 0u);
  ASSERT_NE(t.find(id_a), nullptr);
  EXPECT_EQ(*t.find(id_a), 10);
  EXPECT_EQ(*t.find(t.id_of(b)), 20);
  EXPECT_EQ(t.live_count(), 2u);
  t.release(a);
  EXPECT_EQ(t.find(id_a), nullptr);
  EXPECT_FALSE(t.live(a));
  EXPECT_EQ(t.live_count(), 1u);
}

TEST(SlotTable, AReusedSlotDoesNotAnswerToItsOldId) {
  slot_table<int> t;
  const auto i = t.acquire();
  const auto old_id = t.id_of(i);
  t.release(i);
  const auto again = t.acquire();
  EXPECT_EQ(again, i) << "freed slots are reused first";
  EXPECT_NE(t.id_of(again), old_id);
  EXPECT_EQ(t.find(old_id), nullptr);
  EXPECT_NE(t.find(t.id_of(again)), nullptr);
}

TEST(SlotTable, ForgedIdsFindNothing) {
  slot_table<int> t;
  const auto i = t.acquire();
  EXPECT_EQ(t.find(0), nullptr);
  EXPECT_EQ(t.find(t.id_of(i) + 1), nullptr);             // next index, never acquired
  EXPECT_EQ(t.find(t.id_of(i) ^ (1ull << 40)), nullptr);  // another generation
  EXPECT_EQ(t.find(~std::uint64_t{0}), nullptr);          // far out of range
  EXPECT_EQ(slot_table<int>::index_of(t.id_of(i)), i);
}

TEST(SlotTable, IdsFitASignedInt64FromAnyStartAndAcrossTheWrap) {
  // A worker library that writes integers as int64 must be able to echo them.
  for (std::uint32_t first : {0u, 1u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    slot_table<int> t(first);
    const auto i = t.acquire();
    for (int reuse = 0; reuse < 3; ++reuse) {
      const auto id = t.id_of(i);
      EXPECT_NE(id, 0u) << first;
      EXPECT_LT(id, std::uint64_t{1} << 63) << first;
      EXPECT_NE(t.find(id), nullptr) << first;
      t.release(i);
      EXPECT_EQ(t.find(id), nullptr) << first;
      EXPECT_EQ(t.acquire(), i);
    }
  }
}

TEST(SlotTable, ValuesKeepWhatTheLastUserLeft) {
  // Buffers inside slots keep their capacity across reuse.
  slot_table<std::string> t;
  const auto i = t.acquire();
  t[i].assign(100, 'x');
  const auto capacity = t[i].capacity();
  t.release(i);
  const auto j = t.acquire();
  ASSERT_EQ(i, j);
  t[j].clear();
  EXPECT_EQ(t[j].capacity(), capacity);
}

using clock_type = std::chrono::steady_clock;
using tp = clock_type::time_point;

tp at(int ms) { return tp{} + std::chrono::milliseconds(ms); }

TEST(DeadlineHeap, PopsInDeadlineOrder) {
  deadline_heap<tp> h;
  h.push(3, at(30));
  h.push(1, at(10));
  h.push(2, at(20));
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.top_index(), 1u);
  EXPECT_EQ(h.top_deadline(), at(10));
  h.pop();
  EXPECT_EQ(h.top_index(), 2u);
  h.pop();
  EXPECT_EQ(h.top_index(), 3u);
  h.pop();
  EXPECT_TRUE(h.empty());
}

TEST(DeadlineHeap, EraseByIndexAndPushAgainMoves) {
  deadline_heap<tp> h;
  h.push(5, at(50));
  h.push(6, at(60));
  h.erase(5);
  EXPECT_FALSE(h.contains(5));
  h.erase(5);  // absent: nothing happens
  h.erase(1000);
  EXPECT_EQ(h.top_index(), 6u);
  h.push(6, at(1));  // moved, not duplicated
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.top_deadline(), at(1));
}

TEST(DeadlineHeap, RandomisedAgainstAnOrderedSet) {
  std::mt19937 rng(12345);
  deadline_heap<tp> h;
  std::set<std::pair<int, std::uint32_t>> reference;  // (deadline, index)
  std::vector<int> deadline_of(500, -1);
  for (int step = 0; step < 20000; ++step) {
    const auto index = static_cast<std::uint32_t>(rng() % 500);
    switch (rng() % 3) {
      case 0: {
        const int d = static_cast<int>(rng() % 1000);
        if (deadline_of[index] >= 0) reference.erase({deadline_of[index], index});
        deadline_of[index] = d;
        reference.insert({d, index});
        h.push(index, at(d));
        break;
      }
      case 1:
        if (deadline_of[index] >= 0) reference.erase({deadline_of[index], index});
        deadline_of[index] = -1;
        h.erase(index);
        break;
      default:
        if (reference.empty()) break;
        // Equal deadlines may come out in any order: compare deadlines.
        ASSERT_EQ(h.top_deadline(), at(reference.begin()->first));
        const auto top = h.top_index();
        reference.erase({deadline_of[top], top});
        deadline_of[top] = -1;
        h.pop();
    }
    ASSERT_EQ(h.size(), reference.size());
  }
}

// What the broker does: deadlines mostly in arrival order (one timeout,
// the clock moving on), some shorter or longer, most ending near the front,
// some anywhere; checked against an ordered set, through compactions.
TEST(DeadlineHeap, MostlyInOrderAgainstAnOrderedSet) {
  std::mt19937 rng(777);
  deadline_heap<tp> h;
  std::set<std::pair<int, std::uint32_t>> reference;  // (deadline, index)
  std::vector<int> deadline_of(3000, -1);
  std::vector<std::uint32_t> held;  // in push order, some already gone
  int now = 0;
  auto forget = [&](std::uint32_t index) {
    if (deadline_of[index] >= 0) reference.erase({deadline_of[index], index});
    deadline_of[index] = -1;
  };
  for (int step = 0; step < 200000; ++step) {
    const auto r = rng() % 100;
    if (r < 45 || reference.empty()) {  // a new request
      now += static_cast<int>(rng() % 3);
      std::uint32_t index = static_cast<std::uint32_t>(rng() % 3000);
      const int d = now + (rng() % 10 == 0 ? static_cast<int>(rng() % 2000) : 1000);
      forget(index);
      deadline_of[index] = d;
      reference.insert({d, index});
      h.push(index, at(d));
      held.push_back(index);
    } else if (r < 90) {  // ends near the front
      const auto k = std::min<std::size_t>(held.size() - 1, rng() % 4);
      const auto index = held[k];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
      forget(index);
      h.erase(index);
    } else if (r < 97) {  // ends anywhere
      const auto index = static_cast<std::uint32_t>(rng() % 3000);
      forget(index);
      h.erase(index);
    } else {  // its deadline passes
      ASSERT_EQ(h.top_deadline(), at(reference.begin()->first));
      const auto top = h.top_index();
      ASSERT_EQ(deadline_of[top], reference.begin()->first);
      forget(top);
      h.pop();
    }
    if (held.size() > 4000) held.erase(held.begin(), held.begin() + 1000);
    ASSERT_EQ(h.size(), reference.size());
    if (!reference.empty()) {
      ASSERT_EQ(h.top_deadline(), at(reference.begin()->first));
    }
  }
}

}  // namespace
}  // namespace troupe
