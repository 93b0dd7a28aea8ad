// flat_string_map against std::map as the reference, through growth,
// collisions and bulk removal.
#include "troupe/flat_string_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

namespace troupe {
namespace {

// Built by appending: `"k" + std::to_string(i)` trips GCC 12's false
// -Wrestrict positive (GCC bug 105329).
std::string key(const char* prefix, unsigned i) {
  std::string k(prefix);
  k += std::to_string(i);
  return k;
}

TEST(FlatStringMap, EmptyFindsNothing) {
  flat_string_map<int> m;
  EXPECT_EQ(m.find("a"), nullptr);
  EXPECT_EQ(m.find(""), nullptr);
  EXPECT_TRUE(m.empty());
}

TEST(FlatStringMap, InsertFindAndUpdateInPlace) {
  flat_string_map<int> m;
  m.insert("alice", 1);
  m.insert("", 2);                     // the empty key is a key like any other
  m.insert(std::string(100, 'k'), 3);  // longer than the small-string buffer
  ASSERT_NE(m.find("alice"), nullptr);
  EXPECT_EQ(*m.find("alice"), 1);
  EXPECT_EQ(*m.find(""), 2);
  EXPECT_EQ(*m.find(std::string(100, 'k')), 3);
  EXPECT_EQ(m.find("alic"), nullptr);
  *m.find("alice") = 10;
  EXPECT_EQ(*m.find("alice"), 10);
  EXPECT_EQ(m.size(), 3u);
}

TEST(FlatStringMap, MoveOnlyValuesSurviveGrowthAndRemoval) {
  flat_string_map<std::unique_ptr<int>> m;
  for (unsigned i = 0; i < 1000; ++i) m.insert(key("k", i), std::make_unique<int>(i));
  EXPECT_EQ(m.erase_if([](std::string_view, const std::unique_ptr<int>& v) { return *v % 2 == 0; }), 500u);
  for (unsigned i = 0; i < 1000; ++i) {
    auto* v = m.find(key("k", i));
    if (i % 2 == 0) {
      EXPECT_EQ(v, nullptr) << i;
    } else {
      ASSERT_NE(v, nullptr) << i;
      EXPECT_EQ(**v, i);
    }
  }
}

TEST(FlatStringMap, AgreesWithStdMapUnderRandomWork) {
  flat_string_map<int> m;
  std::map<std::string, int> reference;
  std::mt19937 rng(12345);  // fixed: a failure reproduces
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 2000; ++i) {
      auto k = key("key", rng() % 5000);
      if (auto* v = m.find(k)) {
        ASSERT_TRUE(reference.contains(k)) << k;
        ++*v;
        ++reference[k];
      } else {
        ASSERT_FALSE(reference.contains(k)) << k;
        m.insert(k, 1);
        reference[k] = 1;
      }
    }
    const int residue = round % 7;
    m.erase_if([&](std::string_view, int v) { return v % 7 == residue; });
    std::erase_if(reference, [&](const auto& kv) { return kv.second % 7 == residue; });
    ASSERT_EQ(m.size(), reference.size());
    std::size_t visited = 0;
    m.for_each([&](std::string_view key, int v) {
      ++visited;
      auto it = reference.find(std::string(key));
      ASSERT_NE(it, reference.end()) << key;
      EXPECT_EQ(it->second, v) << key;
    });
    EXPECT_EQ(visited, reference.size());
  }
}

TEST(FlatStringMap, AMovedFromMapIsEmptyAndUsable) {
  flat_string_map<int> a;
  for (unsigned i = 0; i < 100; ++i) a.insert(key("k", i), 1);
  flat_string_map<int> b = std::move(a);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): that is the point
  EXPECT_EQ(a.find("k3"), nullptr);
  a.insert("k3", 3);
  EXPECT_EQ(*a.find("k3"), 3);
  b = std::move(a);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(a.find("k3"), nullptr);
}

TEST(FlatStringMap, ClearEmptiesAndTheMapStaysUsable) {
  flat_string_map<int> m;
  for (int i = 0; i < 100; ++i) m.insert(std::to_string(i), i);
  m.clear();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.find("5"), nullptr);
  m.insert("5", 5);
  EXPECT_EQ(*m.find("5"), 5);
}

}  // namespace
}  // namespace troupe
