// The checks behind raw JSON values: the number grammar, the full value
// check (what simdjson's DOM refuses but Centrifuge passes through is
// accepted), the depth limit and trailing bytes.
#include "session/json_validate.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sb::proto::json {
namespace {

TEST(json_validate, number_grammar) {
  EXPECT_EQ(number_length("0"), 1u);
  EXPECT_EQ(number_length("-12.5e+3,"), 8u);
  EXPECT_EQ(number_length("01"), 1u);  // a leading zero ends the number
  EXPECT_EQ(number_length("1."), 0u);
  EXPECT_EQ(number_length("-"), 0u);
  EXPECT_EQ(number_length("1e"), 0u);
  EXPECT_TRUE(valid_number("123456789012345678901234567890"));
  EXPECT_FALSE(valid_number("1 "));
  EXPECT_FALSE(valid_number(""));
  EXPECT_EQ(trim_right("1 \t\r\n"), "1");
}

TEST(json_validate, values) {
  for (std::string_view ok : {R"({"a":[1,2,{"b":null}],"c":"\u00e9\ud800"})", "[]", "{}", "\"x\"", "true", "-0.5e-7",
                              "123456789012345678901234567890", " [ 1 , 2 ] "}) {
    EXPECT_EQ(validate(ok, 64), parse_error::none) << ok;
  }
  for (std::string_view bad : {"", "{", "[1,]", R"({"a"})", R"({"a":1,})", "tru", "\"\\x\"", "\"\\u12\"", "1 2",
                               "{}x", "\"a\nb\"", "nul"}) {
    EXPECT_EQ(validate(bad, 64), parse_error::bad_json) << bad;
  }
}

TEST(json_validate, depth_limit_is_a_bad_command) {
  std::string deep(10, '[');
  deep += std::string(10, ']');
  EXPECT_EQ(validate(deep, 10), parse_error::none);
  EXPECT_EQ(validate(deep, 9), parse_error::bad_command);
  std::string deepest(max_validate_depth, '[');
  deepest += std::string(max_validate_depth, ']');
  EXPECT_EQ(validate(deepest, max_validate_depth), parse_error::none);
}

}  // namespace
}  // namespace sb::proto::json
