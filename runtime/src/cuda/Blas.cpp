//===- Blas.cpp - cuBLASLt, opened with dlopen -----------------------------===//
//
// Declares the few cuBLASLt entry points and constants the backend uses, with their C types and the values of
// cublasLt.h / cublas_api.h / library_types.h (stable across releases 12 and 13).
//
//===----------------------------------------------------------------------===//
#include "cuda/Blas.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>

namespace qrt::cuda {

using Status = int;
using Handle = void *;
using Desc = void *;
using Layout = void *;
using Pref = void *;
struct Algo {
  uint64_t data[8];
};
struct Heuristic {
  Algo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

constexpr int kR16F = 2, kR16BF = 14, kR32F = 0, kR8FE4M3 = 28, kR8I = 3, kR32I = 10; // cudaDataType_t
constexpr int kCompute32F = 68, kCompute32I = 72;                        // cublasComputeType_t
constexpr int kOpN = 0, kOpT = 1;    // cublasOperation_t
constexpr int kDescTransA = 3, kDescTransB = 4, kDescAScale = 17, kDescBScale = 18, kDescAScaleMode = 31,
              kDescBScaleMode = 32;
constexpr int32_t kScaleOuterVec32F = 3; // cublasLtMatmulMatrixScale_t
constexpr int kPrefMaxWorkspace = 1, kPrefAlignA = 5, kPrefAlignB = 6, kPrefAlignC = 7, kPrefAlignD = 8;

struct BlasApi {
  Status (*create)(Handle *);
  Status (*destroy)(Handle);
  size_t (*getVersion)();
  const char *(*statusName)(Status);
  Status (*descCreate)(Desc *, int, int);
  Status (*descSet)(Desc, int, const void *, size_t);
  Status (*descDestroy)(Desc);
  Status (*layoutCreate)(Layout *, int, uint64_t, uint64_t, int64_t);
  Status (*layoutDestroy)(Layout);
  Status (*prefCreate)(Pref *);
  Status (*prefSet)(Pref, int, const void *, size_t);
  Status (*prefDestroy)(Pref);
  Status (*heuristic)(Handle, Desc, Layout, Layout, Layout, Layout, Pref, int, Heuristic *, int *);
  Status (*matmul)(Handle, Desc, const void *, const void *, Layout, const void *, Layout, const void *, const void *,
                   Layout, void *, Layout, const Algo *, void *, size_t, CUstream);
};

namespace {

template <typename F> bool load(void *lib, const char *name, F &out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

// The library's entry points, loaded once; null (with why, or nothing when simply absent) otherwise.
const BlasApi *loadApi(bool &absent, std::string &error) {
  static BlasApi a;
  static std::string loadError;
  static bool missing = false, ok = false;
  static std::once_flag once;
  std::call_once(once, [] {
    const char *env = std::getenv("QRT_CUBLASLT");
    const std::string choice = env ? env : "";
    void *lib = nullptr;
    if (!choice.empty() && choice != "require") {
      lib = dlopen(choice.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) {
        loadError = "QRT_CUBLASLT=" + choice + ": " + dlerror();
        return;
      }
    } else {
      for (const char *name : {"libcublasLt.so.13", "libcublasLt.so.12", "/usr/local/cuda/lib64/libcublasLt.so.13",
                               "/usr/local/cuda/lib64/libcublasLt.so.12", "libcublasLt.so"})
        if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
          break;
      if (!lib) {
        missing = true;
        loadError = "cuBLASLt (libcublasLt.so.13 or .so.12) cannot be opened";
        return;
      }
    }
    const bool all = load(lib, "cublasLtCreate", a.create) && load(lib, "cublasLtDestroy", a.destroy) &&
                     load(lib, "cublasLtGetVersion", a.getVersion) &&
                     load(lib, "cublasLtGetStatusName", a.statusName) &&
                     load(lib, "cublasLtMatmulDescCreate", a.descCreate) &&
                     load(lib, "cublasLtMatmulDescSetAttribute", a.descSet) &&
                     load(lib, "cublasLtMatmulDescDestroy", a.descDestroy) &&
                     load(lib, "cublasLtMatrixLayoutCreate", a.layoutCreate) &&
                     load(lib, "cublasLtMatrixLayoutDestroy", a.layoutDestroy) &&
                     load(lib, "cublasLtMatmulPreferenceCreate", a.prefCreate) &&
                     load(lib, "cublasLtMatmulPreferenceSetAttribute", a.prefSet) &&
                     load(lib, "cublasLtMatmulPreferenceDestroy", a.prefDestroy) &&
                     load(lib, "cublasLtMatmulAlgoGetHeuristic", a.heuristic) &&
                     load(lib, "cublasLtMatmul", a.matmul);
    if (!all) {
      loadError = "the cuBLASLt library lacks entry points this runtime uses";
      return;
    }
    ok = true;
  });
  absent = missing;
  if (!ok) {
    error = loadError;
    return nullptr;
  }
  return &a;
}

std::string describeStatus(const BlasApi &a, const char *call, Status s) {
  const char *name = a.statusName ? a.statusName(s) : nullptr;
  return std::string(call) + ": " + (name ? name : "cuBLAS status " + std::to_string(s));
}

// The largest power of two (up to 256 bytes) that the operands' addresses, a row of K elements (`rowBytes`) and a
// result row of ldy floats are all multiples of: the plan's alignment preferences.
unsigned alignment(const void *w, const void *x, const float *y, int64_t rowBytes, int64_t ldy) {
  const uint64_t bits = reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(x) |
                        reinterpret_cast<uintptr_t>(y) | static_cast<uint64_t>(rowBytes) |
                        static_cast<uint64_t>(ldy) * 4 | 256;
  return static_cast<unsigned>(bits & (~bits + 1));
}

} // namespace

struct Gemm::Plan {
  const BlasApi *api = nullptr;
  bool usable = true; // false: an FP8 or int8 product the library refused
  Desc desc = nullptr;
  Layout a = nullptr, b = nullptr, d = nullptr;
  Algo algo{};
  ~Plan() {
    if (desc)
      api->descDestroy(desc);
    for (Layout l : {a, b, d})
      if (l)
        api->layoutDestroy(l);
  }
};

std::unique_ptr<Gemm> Gemm::open(std::string &error) {
  const char *env = std::getenv("QRT_CUBLASLT");
  const std::string choice = env ? env : "";
  error.clear();
  if (choice == "off" || choice == "0")
    return nullptr;
  bool absent = false;
  std::string why;
  const BlasApi *a = loadApi(absent, why);
  if (!a) {
    if (!absent || choice == "require")
      error = why;
    return nullptr;
  }
  std::unique_ptr<Gemm> g(new Gemm);
  g->api = a;
  if (Status s = a->create(&g->handle); s != 0) {
    error = describeStatus(*a, "cublasLtCreate", s);
    return nullptr;
  }
  return g;
}

Gemm::~Gemm() {
  plans.clear();
  if (handle)
    api->destroy(handle);
}

std::string Gemm::describe() const { return "cuBLASLt " + std::to_string(api->getVersion()); }

const Gemm::Plan *Gemm::plan(int64_t M, int64_t N, int64_t K, int64_t ldy, unsigned alignment, Operands kind,
                             const float *const (&fp8Scales)[2], std::string &error) {
  const bool fp8 = kind == Operands::Fp8, int8 = kind == Operands::Int8, optional = fp8 || int8;
  auto key = std::make_tuple(M, N, K, ldy, alignment, static_cast<int>(kind));
  auto it = plans.find(key);
  if (it != plans.end())
    return it->second->usable ? it->second.get() : nullptr; // a product this library refused: refused again
  // FP8 and int8: whatever the library refuses (an attribute an older release lacks, no algorithm for this GPU or
  // shape) leaves the product to the caller's own kernel, remembered so that later calls do not ask again.
  auto refuse = [&](std::unique_ptr<Plan> p) -> const Plan * {
    error.clear();
    p->usable = false;
    plans[key] = std::move(p);
    return nullptr;
  };
  auto p = std::make_unique<Plan>();
  p->api = api;
  const BlasApi &a = *api;
  // Column-major, as cuBLAS sees row-major memory: y^T [N, M] = op(w^T [K, N]) * x^T [K, M] with op = transpose.
  // FP8 (the only layout the library takes for it, "TN"): the weights' scales a vector over the result's cuBLAS
  // rows (our channels), x's over its columns (our rows). int8 ("TN" too): int32 sums, int32 alpha and beta.
  const int opT = kOpT, opN = kOpN, out = int8 ? kR32I : kR32F;
  const int type = fp8 ? kR8FE4M3 : int8 ? kR8I : kind == Operands::BFloat16 ? kR16BF : kR16F;
  const int32_t outerVec = kScaleOuterVec32F;
  Status s = int8 ? a.descCreate(&p->desc, kCompute32I, kR32I) : a.descCreate(&p->desc, kCompute32F, kR32F);
  if (!s)
    s = a.descSet(p->desc, kDescTransA, &opT, sizeof opT);
  if (!s)
    s = a.descSet(p->desc, kDescTransB, &opN, sizeof opN);
  if (!s && fp8)
    s = a.descSet(p->desc, kDescAScaleMode, &outerVec, sizeof outerVec);
  if (!s && fp8)
    s = a.descSet(p->desc, kDescBScaleMode, &outerVec, sizeof outerVec);
  // Outer-vector scales need their pointers before the heuristic (cuBLASLt 13.1 answers it with an invalid value
  // otherwise); each product sets its own again.
  if (!s && fp8)
    s = a.descSet(p->desc, kDescAScale, &fp8Scales[0], sizeof fp8Scales[0]);
  if (!s && fp8)
    s = a.descSet(p->desc, kDescBScale, &fp8Scales[1], sizeof fp8Scales[1]);
  if (!s)
    s = a.layoutCreate(&p->a, type, static_cast<uint64_t>(K), static_cast<uint64_t>(N), K);
  if (!s)
    s = a.layoutCreate(&p->b, type, static_cast<uint64_t>(K), static_cast<uint64_t>(M), K);
  if (!s)
    s = a.layoutCreate(&p->d, out, static_cast<uint64_t>(N), static_cast<uint64_t>(M), ldy);
  if (s && optional)
    return refuse(std::move(p));
  if (s) {
    error = describeStatus(a, "cuBLASLt descriptors", s);
    return nullptr;
  }
  Pref pref = nullptr;
  if ((s = a.prefCreate(&pref))) {
    error = describeStatus(a, "cublasLtMatmulPreferenceCreate", s);
    return nullptr;
  }
  const uint64_t workspace = kWorkspaceBytes;
  const uint32_t align = alignment;
  a.prefSet(pref, kPrefMaxWorkspace, &workspace, sizeof workspace);
  for (int attr : {kPrefAlignA, kPrefAlignB, kPrefAlignC, kPrefAlignD})
    a.prefSet(pref, attr, &align, sizeof align);
  Heuristic h{};
  int found = 0;
  s = a.heuristic(handle, p->desc, p->a, p->b, p->d, p->d, pref, 1, &h, &found);
  a.prefDestroy(pref);
  if (optional && (s || found == 0))
    return refuse(std::move(p));
  if (s || found == 0) {
    error = s ? describeStatus(a, "cublasLtMatmulAlgoGetHeuristic", s)
              : "cuBLASLt has no algorithm for a float16 product of " + std::to_string(M) + "x" + std::to_string(K) +
                    " by " + std::to_string(K) + "x" + std::to_string(N);
    return nullptr;
  }
  p->algo = h.algo;
  return (plans[key] = std::move(p)).get();
}

bool Gemm::run(const void *w, const void *x, float *y, int64_t M, int64_t N, int64_t K, int64_t ldy, bool bf16,
               CUstream stream, void *workspace, std::string &error) {
  // The alignment every operand and row start shares (the heuristic picks vectorized kernels only when allowed).
  const Plan *p = plan(M, N, K, ldy, alignment(w, x, y, K * 2, ldy), bf16 ? Operands::BFloat16 : Operands::Half,
                       {nullptr, nullptr}, error);
  if (!p)
    return false;
  const float one = 1.0f, zero = 0.0f;
  if (Status s = api->matmul(handle, p->desc, &one, w, p->a, x, p->b, &zero, y, p->d, y, p->d, &p->algo, workspace,
                             kWorkspaceBytes, stream)) {
    error = describeStatus(*api, "cublasLtMatmul", s);
    return false;
  }
  return true;
}

bool Gemm::runFp8(const void *w, const float *wScales, const void *x, const float *xScales, float *y, int64_t M,
                  int64_t N, int64_t K, int64_t ldy, CUstream stream, void *workspace, std::string &error) {
  error.clear();
  if (K % 16 != 0)
    return false;
  const Plan *p = plan(M, N, K, ldy, alignment(w, x, y, K, ldy), Operands::Fp8, {wScales, xScales}, error);
  if (!p)
    return false;
  // The scales' addresses change from call to call (slices of one layer's channels): set on the plan's descriptor
  // before each product, which reads them when it is enqueued.
  Status s = api->descSet(p->desc, kDescAScale, &wScales, sizeof wScales);
  if (!s)
    s = api->descSet(p->desc, kDescBScale, &xScales, sizeof xScales);
  const float one = 1.0f, zero = 0.0f;
  if (!s)
    s = api->matmul(handle, p->desc, &one, w, p->a, x, p->b, &zero, y, p->d, y, p->d, &p->algo, workspace,
                    kWorkspaceBytes, stream);
  if (s) {
    error = describeStatus(*api, "cublasLtMatmul (FP8)", s);
    return false;
  }
  return true;
}

bool Gemm::runInt8(const void *w, const void *x, int32_t *y, int64_t M, int64_t N, int64_t K, int64_t ldy,
                   CUstream stream, void *workspace, std::string &error) {
  error.clear();
  if (K % 4 != 0 || ldy % 4 != 0)
    return false;
  const Plan *p = plan(M, N, K, ldy, alignment(w, x, reinterpret_cast<const float *>(y), K, ldy), Operands::Int8,
                       {nullptr, nullptr}, error);
  if (!p)
    return false;
  const int32_t one = 1, zero = 0;
  if (Status s = api->matmul(handle, p->desc, &one, w, p->a, x, p->b, &zero, y, p->d, y, p->d, &p->algo, workspace,
                             kWorkspaceBytes, stream)) {
    error = describeStatus(*api, "cublasLtMatmul (int8)", s);
    return false;
  }
  return true;
}

} // namespace qrt::cuda
