//===- Nvrtc.cpp - CUDA C++ to cubin and PTX with NVRTC, opened at run time --===//
//
// NVRTC is found with dlopen (QOPT_NVRTC names the library; else libnvrtc.so.13, .12, libnvrtc.so, then the same
// under /usr/local/cuda/lib64), so nothing in qopt's build depends on a CUDA toolkit. Images are cached under
// the cache directory by a hash of the source, the architecture, the options and NVRTC's version.
//
//===----------------------------------------------------------------------===//
#include "qopt/Codegen/Cuda.h"

#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace qopt::codegen {
namespace {

// The part of nvrtc.h this file uses (the C ABI is stable across releases).
using nvrtcResult = int;
using nvrtcProgram = struct _nvrtcProgram *;

struct Nvrtc {
  void *lib = nullptr;
  nvrtcResult (*version)(int *, int *) = nullptr;
  const char *(*errorString)(nvrtcResult) = nullptr;
  nvrtcResult (*create)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                        const char *const *) = nullptr;
  nvrtcResult (*compile)(nvrtcProgram, int, const char *const *) = nullptr;
  nvrtcResult (*destroy)(nvrtcProgram *) = nullptr;
  nvrtcResult (*logSize)(nvrtcProgram, size_t *) = nullptr;
  nvrtcResult (*log)(nvrtcProgram, char *) = nullptr;
  nvrtcResult (*cubinSize)(nvrtcProgram, size_t *) = nullptr;
  nvrtcResult (*cubin)(nvrtcProgram, char *) = nullptr;
  nvrtcResult (*ptxSize)(nvrtcProgram, size_t *) = nullptr;
  nvrtcResult (*ptx)(nvrtcProgram, char *) = nullptr;
  int major = 0, minor = 0;
  std::string error;
};

template <typename F> bool sym(void *lib, const char *name, F &out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

const Nvrtc &nvrtc() {
  static const Nvrtc n = [] {
    Nvrtc r;
    std::vector<std::string> names;
    if (const char *env = std::getenv("QOPT_NVRTC"))
      names.push_back(env);
    for (const char *base : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}) {
      names.push_back(base);
      names.push_back(std::string("/usr/local/cuda/lib64/") + base);
    }
    for (const std::string &name : names)
      if ((r.lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)))
        break;
    if (!r.lib) {
      r.error = "CUDA code generation needs NVRTC (libnvrtc.so from a CUDA 12 or 13 toolkit); none was found "
                "(set QOPT_NVRTC to its path)";
      return r;
    }
    bool ok = sym(r.lib, "nvrtcVersion", r.version) && sym(r.lib, "nvrtcGetErrorString", r.errorString) &&
              sym(r.lib, "nvrtcCreateProgram", r.create) && sym(r.lib, "nvrtcCompileProgram", r.compile) &&
              sym(r.lib, "nvrtcDestroyProgram", r.destroy) && sym(r.lib, "nvrtcGetProgramLogSize", r.logSize) &&
              sym(r.lib, "nvrtcGetProgramLog", r.log) && sym(r.lib, "nvrtcGetCUBINSize", r.cubinSize) &&
              sym(r.lib, "nvrtcGetCUBIN", r.cubin) && sym(r.lib, "nvrtcGetPTXSize", r.ptxSize) &&
              sym(r.lib, "nvrtcGetPTX", r.ptx);
    if (!ok || r.version(&r.major, &r.minor) != 0) {
      r.error = "the NVRTC library found lacks the functions qopt uses";
      r.lib = nullptr;
    }
    return r;
  }();
  return n;
}

bool readFile(const std::string &path, std::vector<uint8_t> &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return false;
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !out.empty();
}

// Written to a temporary name, then renamed: a concurrent qopt never reads half an image.
void writeFile(const std::string &dir, const std::string &name, const std::vector<uint8_t> &bytes) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/')
    cur = "";
  while (std::getline(ss, part, '/')) {
    cur += part + "/";
    if (!part.empty())
      ::mkdir(cur.c_str(), 0755);
  }
  std::string tmp = dir + "/" + name + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
      return;
  }
  std::rename(tmp.c_str(), (dir + "/" + name).c_str());
}

bool compileOne(const Nvrtc &n, const std::string &source, const std::string &arch, bool ptx,
                std::vector<uint8_t> &out, std::string &error) {
  nvrtcProgram prog = nullptr;
  if (int rc = n.create(&prog, source.c_str(), "qopt_kernels.cu", 0, nullptr, nullptr)) {
    error = std::string("nvrtcCreateProgram: ") + n.errorString(rc);
    return false;
  }
  const std::string archOpt = "--gpu-architecture=" + arch;
  const char *opts[] = {archOpt.c_str(), "--std=c++17", "-default-device"};
  int rc = n.compile(prog, 3, opts);
  if (rc != 0) {
    size_t size = 0;
    n.logSize(prog, &size);
    std::string log(size, '\0');
    if (size)
      n.log(prog, log.data());
    error = "NVRTC failed to compile the kernels for " + arch + ": " + n.errorString(rc) + "\n" + log;
    n.destroy(&prog);
    return false;
  }
  size_t size = 0;
  if (ptx ? n.ptxSize(prog, &size) : n.cubinSize(prog, &size)) {
    error = "NVRTC produced no image for " + arch;
    n.destroy(&prog);
    return false;
  }
  out.resize(size);
  rc = ptx ? n.ptx(prog, reinterpret_cast<char *>(out.data())) : n.cubin(prog, reinterpret_cast<char *>(out.data()));
  n.destroy(&prog);
  if (rc != 0) {
    error = "NVRTC produced no image for " + arch;
    return false;
  }
  return true;
}

} // namespace

bool compileCuda(const std::string &wrappers, const std::vector<std::string> &archs, const std::string &cacheDir,
                 std::vector<CudaImage> &images, std::string &error, bool withPtx, bool bf16) {
  const Nvrtc &n = nvrtc();
  if (!n.lib) {
    error = n.error;
    return false;
  }
  const std::string source = cudaModuleSource(wrappers, bf16);
  // Cubins for each architecture; PTX for the oldest, which the driver compiles for a GPU no cubin fits.
  std::vector<std::pair<std::string, bool>> jobs;
  std::string oldest;
  for (const std::string &a : archs) {
    jobs.push_back({a, false});
    std::string compute = "compute_" + a.substr(3);
    if (oldest.empty() || compute < oldest)
      oldest = compute;
  }
  if (withPtx)
    jobs.push_back({oldest, true});
  images.clear();
  for (auto &[arch, ptx] : jobs) {
    char key[32];
    std::snprintf(key, sizeof key, "%016llx",
                  static_cast<unsigned long long>(contentHash(source, contentHash(arch + (ptx ? ".ptx." : ".cubin.") +
                                                                      std::to_string(n.major) + "." +
                                                                      std::to_string(n.minor)))));
    const std::string name = std::string(key) + "." + arch + (ptx ? ".ptx" : ".cubin");
    CudaImage img;
    img.arch = arch;
    img.format = ptx ? kPtx : kCubin;
    if (cacheDir.empty() || !readFile(cacheDir + "/" + name, img.bytes)) {
      if (!compileOne(n, source, arch, ptx, img.bytes, error))
        return false;
      if (!cacheDir.empty())
        writeFile(cacheDir, name, img.bytes);
    }
    images.push_back(std::move(img));
  }
  return true;
}

std::string defaultCudaCacheDir() {
  if (const char *d = std::getenv("QOPT_CACHE_DIR"))
    return std::string(d) + "/cuda";
  if (const char *d = std::getenv("XDG_CACHE_HOME"))
    return std::string(d) + "/qopt/cuda";
  if (const char *d = std::getenv("HOME"))
    return std::string(d) + "/.cache/qopt/cuda";
  return "";
}

} // namespace qopt::codegen
