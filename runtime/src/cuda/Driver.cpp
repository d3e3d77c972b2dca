//===- Driver.cpp - loading the CUDA driver API ----------------------------===//
#include "cuda/Driver.h"

#include <dlfcn.h>
#include <mutex>

namespace qrt::cuda {
namespace {

template <typename F> bool load(void *lib, const char *name, F &out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

} // namespace

const Driver *driver(std::string &error) {
  static Driver d;
  static std::string loadError;
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      loadError = "no CUDA driver (libcuda.so.1 cannot be opened: this machine has no NVIDIA GPU driver)";
      return;
    }
    // The _v2 entry points are the 64-bit ones the driver's headers map the plain names to.
    bool all = load(lib, "cuInit", d.cuInit) && load(lib, "cuDeviceGetCount", d.cuDeviceGetCount) &&
               load(lib, "cuDeviceGet", d.cuDeviceGet) && load(lib, "cuDeviceGetName", d.cuDeviceGetName) &&
               load(lib, "cuDeviceGetAttribute", d.cuDeviceGetAttribute) &&
               load(lib, "cuDeviceTotalMem_v2", d.cuDeviceTotalMem) &&
               load(lib, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain) &&
               load(lib, "cuDevicePrimaryCtxRelease_v2", d.cuDevicePrimaryCtxRelease) &&
               load(lib, "cuCtxSetCurrent", d.cuCtxSetCurrent) && load(lib, "cuMemAlloc_v2", d.cuMemAlloc) &&
               load(lib, "cuMemFree_v2", d.cuMemFree) && load(lib, "cuMemGetInfo_v2", d.cuMemGetInfo) &&
               load(lib, "cuMemcpyHtoDAsync_v2", d.cuMemcpyHtoDAsync) &&
               load(lib, "cuMemcpyDtoHAsync_v2", d.cuMemcpyDtoHAsync) &&
               load(lib, "cuMemsetD8Async", d.cuMemsetD8Async) && load(lib, "cuStreamCreate", d.cuStreamCreate) &&
               load(lib, "cuStreamDestroy_v2", d.cuStreamDestroy) &&
               load(lib, "cuStreamSynchronize", d.cuStreamSynchronize) &&
               load(lib, "cuModuleLoadData", d.cuModuleLoadData) && load(lib, "cuModuleUnload", d.cuModuleUnload) &&
               load(lib, "cuModuleGetFunction", d.cuModuleGetFunction) &&
               load(lib, "cuFuncSetAttribute", d.cuFuncSetAttribute) &&
               load(lib, "cuLaunchKernel", d.cuLaunchKernel) &&
               load(lib, "cuStreamBeginCapture_v2", d.cuStreamBeginCapture) &&
               load(lib, "cuStreamEndCapture", d.cuStreamEndCapture) &&
               load(lib, "cuGraphInstantiateWithFlags", d.cuGraphInstantiateWithFlags) &&
               load(lib, "cuGraphLaunch", d.cuGraphLaunch) && load(lib, "cuGraphExecDestroy", d.cuGraphExecDestroy) &&
               load(lib, "cuGraphDestroy", d.cuGraphDestroy) && load(lib, "cuGetErrorString", d.cuGetErrorString) &&
               load(lib, "cuGetErrorName", d.cuGetErrorName);
    if (!all) {
      loadError = "the CUDA driver (libcuda.so.1) lacks entry points this runtime uses (too old a driver)";
      return;
    }
    if (!load(lib, "cuLaunchKernelEx", d.cuLaunchKernelEx))
      d.cuLaunchKernelEx = nullptr;
    if (CUresult rc = d.cuInit(0); rc != CUDA_SUCCESS) {
      loadError = describe(d, "cuInit", rc);
      return;
    }
    ok = true;
  });
  if (!ok) {
    error = loadError;
    return nullptr;
  }
  return &d;
}

std::string describe(const Driver &d, const char *call, CUresult rc) {
  const char *name = nullptr, *text = nullptr;
  d.cuGetErrorName(rc, &name);
  d.cuGetErrorString(rc, &text);
  return std::string(call) + ": " + (name ? std::string(name) : "CUDA error " + std::to_string(rc)) +
         (text ? std::string(" (") + text + ")" : std::string());
}

} // namespace qrt::cuda
