#include "routing/channel_rules.hpp"

#include <gtest/gtest.h>

namespace {

using namespace sb::routing;

channel_rules make_rules() {
  channel_options top;
  top.allow_subscribe_for_client = true;
  channel_options chat;
  chat.allow_publish_for_subscriber = true;
  channel_options dialogs;
  dialogs.allow_user_limited_channels = true;
  return channel_rules(top, {{"chat", chat}, {"dialogs", dialogs}}, 32);
}

TEST(channel_rules, resolves_namespaces) {
  auto r = make_rules();
  ASSERT_NE(r.resolve("news"), nullptr);
  EXPECT_TRUE(r.resolve("news")->allow_subscribe_for_client);
  ASSERT_NE(r.resolve("chat:room1"), nullptr);
  EXPECT_TRUE(r.resolve("chat:room1")->allow_publish_for_subscriber);
  EXPECT_EQ(r.resolve("nope:room1"), nullptr);
  // A ':' inside the user part is not a namespace boundary.
  ASSERT_NE(r.resolve("#42:x"), nullptr);
  EXPECT_TRUE(r.resolve("#42:x")->allow_subscribe_for_client);
  EXPECT_TRUE(r.resolve("dialogs:#42,43")->allow_user_limited_channels);
}

TEST(channel_rules, checks_names) {
  auto r = make_rules();
  EXPECT_EQ(r.check_name("chat:ok-name_1.2"), name_check::ok);
  EXPECT_EQ(r.check_name(""), name_check::empty);
  EXPECT_EQ(r.check_name(std::string(33, 'a')), name_check::too_long);
  EXPECT_EQ(r.check_name("has space"), name_check::bad_character);
  EXPECT_EQ(r.check_name("tab\there"), name_check::bad_character);
  EXPECT_EQ(r.check_name("ünïcode"), name_check::ok);
}

TEST(channel_rules, user_limited_channels) {
  EXPECT_TRUE(channel_rules::user_in_channel("dialogs:#42", "42"));
  EXPECT_TRUE(channel_rules::user_in_channel("dialogs:#42,43", "43"));
  EXPECT_FALSE(channel_rules::user_in_channel("dialogs:#42,43", "4"));
  EXPECT_FALSE(channel_rules::user_in_channel("dialogs:#42,43", "44"));
  EXPECT_FALSE(channel_rules::user_in_channel("dialogs:#", ""));
  EXPECT_FALSE(channel_rules::user_in_channel("dialogs:42", "42"));
  EXPECT_TRUE(channel_rules::is_user_limited("#1"));
  EXPECT_FALSE(channel_rules::is_user_limited("chat:1"));
}

}  // namespace
