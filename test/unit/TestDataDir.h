//===- TestDataDir.h - where the unit tests find test/unit/data ------------===//
//
// The fixtures (tokenizers, .npy files) live in test/unit/data. A test binary finds them, in order, from: its
// first non-flag command-line argument, the QOPT_TEST_DATA_DIR environment variable, a QOPT_TEST_DATA_DIR macro
// set by the build, or the data/ folder next to this header's path as the compiler saw it (absolute in CMake
// builds), so a test runs from any working directory without skipping.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_TEST_UNIT_TESTDATADIR_H
#define QOPT_TEST_UNIT_TESTDATADIR_H

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace qopt::test {

inline std::string testDataDir() {
  // gtest_main owns main(); GetArgvs() is how gtest exposes the arguments it did not consume.
  std::vector<std::string> args = ::testing::internal::GetArgvs();
  for (size_t i = 1; i < args.size(); ++i)
    if (!args[i].empty() && args[i][0] != '-')
      return args[i];
  if (const char *env = std::getenv("QOPT_TEST_DATA_DIR"))
    if (*env)
      return env;
#ifdef QOPT_TEST_DATA_DIR
  return QOPT_TEST_DATA_DIR;
#else
  std::string file = __FILE__;
  size_t slash = file.find_last_of('/');
  return (slash == std::string::npos ? std::string(".") : file.substr(0, slash)) + "/data";
#endif
}

inline std::string testDataPath(const std::string &name) { return testDataDir() + "/" + name; }

} // namespace qopt::test

#endif // QOPT_TEST_UNIT_TESTDATADIR_H
