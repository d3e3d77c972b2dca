//===- CudaLibraryTest.cpp - choosing cuBLASLt (QRT_CUBLASLT) --------------===//
//
// The CUDA backend opens cuBLASLt at run time, as QRT_CUBLASLT says. These cases need neither a GPU nor a CUDA
// library: turned off, nothing is opened and nothing is wrong; a named library that cannot be opened is an error
// that names the variable (the library is opened once per process, so the failing case comes last).
//
//===----------------------------------------------------------------------===//
#include "cuda/Blas.h"

#include <gtest/gtest.h>

#include <cstdlib>

using qrt::cuda::Gemm;

TEST(CudaLibrary, TurnedOff) {
  setenv("QRT_CUBLASLT", "off", 1);
  std::string error = "stale";
  EXPECT_EQ(Gemm::open(error), nullptr);
  EXPECT_EQ(error, "");
}

TEST(CudaLibrary, NamedLibraryMissing) {
  setenv("QRT_CUBLASLT", "/nonexistent/libcublasLt.so.13", 1);
  std::string error;
  EXPECT_EQ(Gemm::open(error), nullptr);
  EXPECT_EQ(error.rfind("QRT_CUBLASLT=/nonexistent/libcublasLt.so.13: ", 0), 0u) << error;
}
