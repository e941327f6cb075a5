// The storage backend conformance suite: one set of tests, written against the Store/Txn
// interface only, that every backend must pass (Vault's idea: backends are interchangeable
// because one suite defines what "works" means).
//
// A backend joins by compiling tests/store_conformance.cc into its test binary and
// instantiating the suite with a factory that opens a fresh, empty store:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
//       ::testing::Values(StoreFactory{"sqlite", [](const std::string& dir) { ... }}),
//       StoreFactoryName);
//
// Each test gets its own empty scratch directory (created under $TMPDIR or /tmp, removed
// afterwards); a file-based backend keeps its data there, a server-based one may use it for
// nothing but must still hand out an empty store.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "store/store.h"

namespace bifrost::store {

struct StoreFactory {
  std::string name;  // a valid GoogleTest name: letters, digits, underscores
  // Opens an empty store keeping its files under `scratch_dir`. Fails the test (with
  // ADD_FAILURE) and returns null if it cannot.
  std::function<std::unique_ptr<Store>(const std::string& scratch_dir)> open;
};

// The name generator for INSTANTIATE_TEST_SUITE_P.
std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info);

// How GoogleTest prints a factory in failure messages: its name.
void PrintTo(const StoreFactory& factory, std::ostream* os);

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }
  const std::string& scratch_dir() const { return scratch_dir_; }

 private:
  std::string scratch_dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace bifrost::store
