// The protocol's codes as Centrifuge documents them.
#include "session/protocol.hpp"

#include <gtest/gtest.h>

namespace sb::proto {
namespace {

TEST(protocol_codes, documented_values) {
  EXPECT_EQ(error_message(error_code::token_expired), "token expired");
  EXPECT_EQ(error_message(error_code::unrecoverable_position), "unrecoverable position");
  EXPECT_TRUE(error_temporary(error_code::too_many_requests));
  EXPECT_FALSE(error_temporary(error_code::bad_request));
  EXPECT_EQ(disconnect_reason(disconnect_code::expired), "connection expired");
  EXPECT_EQ(disconnect_reason(disconnect_code::slow), "slow");
  EXPECT_TRUE(disconnect_reconnects(disconnect_code::slow));
  EXPECT_TRUE(disconnect_reconnects(disconnect_code::shutdown));
  EXPECT_FALSE(disconnect_reconnects(disconnect_code::bad_request));
  EXPECT_FALSE(disconnect_reconnects(disconnect_code::invalid_token));
  EXPECT_TRUE(disconnect_reconnects(4000));
  EXPECT_FALSE(disconnect_reconnects(4500));
}

}  // namespace
}  // namespace sb::proto
