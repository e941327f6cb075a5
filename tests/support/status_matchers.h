// GoogleTest assertions for Status and Result<T>, shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "common/status.h"

#define BIFROST_TEST_CONCAT_INNER_(a, b) a##b
#define BIFROST_TEST_CONCAT_(a, b) BIFROST_TEST_CONCAT_INNER_(a, b)

// Fails the test (returning from it) unless the Status/Result succeeded.
#define ASSERT_OK(expr)                                                   \
  do {                                                                    \
    const auto& bifrost_s_ = (expr);                                      \
    ASSERT_TRUE(bifrost_s_.has_value()) << bifrost_s_.error().ToString(); \
  } while (0)

// `ASSERT_OK_AND_ASSIGN(auto x, Compute());` binds the value or fails the test.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(BIFROST_TEST_CONCAT_(bifrost_r_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)        \
  auto tmp = (expr);                                      \
  ASSERT_TRUE(tmp.has_value()) << tmp.error().ToString(); \
  lhs = std::move(*tmp)

// Fails the test unless the Status/Result failed with `expected_code`.
#define EXPECT_ERROR_CODE(expr, expected_code)                                     \
  do {                                                                             \
    const auto& bifrost_e_ = (expr);                                               \
    if (bifrost_e_.has_value()) {                                                  \
      ADD_FAILURE() << #expr << " succeeded, expected "                            \
                    << ::bifrost::ErrorCodeName(expected_code);                    \
    } else {                                                                       \
      EXPECT_EQ(::bifrost::ErrorCodeName(bifrost_e_.error().code()),               \
                ::bifrost::ErrorCodeName(expected_code))                           \
          << bifrost_e_.error().ToString();                                        \
    }                                                                              \
  } while (0)
