#include "common/status.h"

#include <gtest/gtest.h>

namespace bifrost {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Fail(ErrorCode::kInvalidArgument, std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  BIFROST_ASSIGN_OR_RETURN(int half, Half(x));
  return Half(half);
}

Status CheckEven(int x) {
  BIFROST_RETURN_IF_ERROR(Half(x));
  return Ok();
}

TEST(Status, PropagatesErrorsAndValues) {
  EXPECT_EQ(*Quarter(8), 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "3 is odd");
  EXPECT_EQ(bad.error().ToString(), "invalid_argument: 3 is odd");
  EXPECT_TRUE(CheckEven(2));
  EXPECT_FALSE(CheckEven(3));
}

TEST(Status, CodeNamesAreDistinct) {
  std::set<std::string_view> names;
  for (auto c : {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
                 ErrorCode::kConflict, ErrorCode::kIntegrity, ErrorCode::kKeyMismatch,
                 ErrorCode::kCorrupt, ErrorCode::kUnavailable, ErrorCode::kFailedPrecondition,
                 ErrorCode::kUnauthenticated, ErrorCode::kPermissionDenied,
                 ErrorCode::kInternal}) {
    names.insert(ErrorCodeName(c));
  }
  EXPECT_EQ(names.size(), 12u);
}

}  // namespace
}  // namespace bifrost
