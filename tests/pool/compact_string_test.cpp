#include "pool/compact_string.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace {

using sb::compact_string;

TEST(CompactString, EmptyByDefault) {
  compact_string s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.view(), "");
}

TEST(CompactString, KeepsEveryLengthAroundTheInlineLimit) {
  for (std::size_t n = 0; n <= 70; ++n) {
    std::string text(n, 'a');
    for (std::size_t i = 0; i < n; ++i) text[i] = static_cast<char>('a' + i % 26);
    compact_string s(text);
    EXPECT_EQ(s.view(), text) << n;
    EXPECT_EQ(s.size(), n);
    compact_string copy(s);
    EXPECT_EQ(copy.view(), text);
    compact_string moved(std::move(copy));
    EXPECT_EQ(moved.view(), text);
    EXPECT_TRUE(copy.empty());  // NOLINT: a moved-from name is empty, by contract
    compact_string assigned("x");
    assigned = moved;
    EXPECT_EQ(assigned.view(), text);
    assigned = std::move(moved);
    EXPECT_EQ(assigned.view(), text);
  }
}

TEST(CompactString, InlineUpToThirtyOneCharacters) {
  // The point of the type: typical channel names need no heap block.
  std::string name = "dialogs:#1000000001,1000000002";  // 30 characters
  compact_string s(name);
  const char* p = s.view().data();
  EXPECT_GE(p, reinterpret_cast<const char*>(&s));
  EXPECT_LT(p, reinterpret_cast<const char*>(&s) + sizeof(s));
}

TEST(CompactString, SelfAssignmentKeepsTheValue) {
  compact_string s(std::string(40, 'z'));
  auto& ref = s;
  s = ref;
  EXPECT_EQ(s.view(), std::string(40, 'z'));
}

}  // namespace
