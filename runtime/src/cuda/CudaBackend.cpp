//===- CudaBackend.cpp - the CUDA backend ----------------------------------===//
//
// Runs the kernels qopt generated into model.bin's kernels section (one cubin per architecture plus PTX) on the
// first GPU, through the driver API opened at run time (Driver.h). Weights are uploaded once when the session
// starts; the arena and the state live in device memory; every kernel is launched on one stream with the
// geometry its record gives (DeviceKernel), and kernels report operands out of range through a status word that
// every synchronization checks. Families without a kernel in the file are not bound here: the session runs them
// on the host and moves their operands (Backend::hostFallback). Linear layers of many rows go to cuBLASLt
// where it can be opened (Blas.h), their operands converted to float16 by the module's helper kernels.
//
//===----------------------------------------------------------------------===//
#include "Backend.h"
#include "cuda/Blas.h"
#include "cuda/Driver.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

namespace qrt {
namespace {

using namespace cuda;
namespace num = qopt::num;

// Linear layers of at least this many rows run on cuBLASLt where it opens; fewer stay in their generated kernel
// (qGemvMma streams each weight once, which beats dequantizing a float16 copy of codes for the library; float16
// weights need no copy, and the library multiplies them faster from 2 rows up).
constexpr int64_t kLibraryMinRows = 17, kLibraryMinRowsHalf = 2;

// The kernels' parameter block: QTensor and QParams in lib/Codegen/cuda/prelude.cuh, byte for byte.
struct QTensor {
  const void *data;
  int64_t shape[8];
  int32_t rank;
  int32_t pad;
};
struct QParams {
  QTensor t[kMaxKernelOperands];
  int *status;
};
static_assert(sizeof(QTensor) == 80, "QTensor must match the kernels' layout");
static_assert(sizeof(QParams) == 80 * kMaxKernelOperands + 8, "QParams must match the kernels' layout");

// The kernels' status codes (prelude.cuh).
const char *statusText(int code) {
  switch (code) {
  case 1: return "a KV cache append or read past the cache's capacity (the sequence reached the compiled context bound)";
  case 2: return "an index out of range";
  case 3: return "operands of other shapes than the kernel was generated for";
  default: return "an unknown error";
  }
}

struct Bound {
  CUfunction fn = nullptr;
  const DeviceKernel *record = nullptr;
  bool library = false; // a matmul_q family: products of kLibraryMinRows+ rows go to cuBLASLt
  bool split = false;
};

// The module's helper kernels for library products (the end of lib/Codegen/cuda/kernels.cuh).
// Their 16-bit float is the module's: float16, or bfloat16 where the module marks it (`bf16`).
struct Helpers {
  bool bf16 = false;
  CUfunction toHalf = nullptr;
  CUfunction dequant[3][2] = {}; // [3, 4, 8 bits][zero points]
  CUfunction dequantHalfScales[2][2] = {}; // [3, 4 bits][zero points], float16 scales (absent: older modules)
  CUfunction fp8Quantize = nullptr; // W8A8 FP8's activations (null in a model.bin older than it)
  CUfunction dequantFp8 = nullptr;  // FP8 codes to float16 (fp8w; likewise)
  CUfunction int8Quantize = nullptr, int8Scale = nullptr; // W8A8 int8's activations and epilogue (likewise)
};

struct Buffer {
  CUdeviceptr ptr = 0;
  size_t capacity = 0;
};

class CudaBackend final : public Backend {
public:
  explicit CudaBackend(const Driver &d) : d(d) {}
  ~CudaBackend() override {
    if (!ctx)
      return;
    d.cuCtxSetCurrent(ctx);
    if (stream)
      d.cuStreamSynchronize(stream);
    for (CUgraphExec g : graphs)
      d.cuGraphExecDestroy(g);
    for (CUdeviceptr p : allocations)
      d.cuMemFree(p);
    for (auto &b : dynamic)
      if (b.ptr)
        d.cuMemFree(b.ptr);
    for (Buffer *b : {&scratchX, &scratchW, &workspace, &argmaxIds})
      if (b->ptr)
        d.cuMemFree(b->ptr);
    gemm.reset(); // before the context goes
    if (module)
      d.cuModuleUnload(module);
    if (stream)
      d.cuStreamDestroy(stream);
    d.cuDevicePrimaryCtxRelease(device);
  }

  const char *name() const override { return "cuda"; }
  bool hostFallback() const override { return true; }
  bool canCapture() const override { return true; }

  Graph capture(const std::function<bool(std::string &)> &body, std::string &error) override {
    if (!check(d.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture", error))
      return nullptr;
    capturing = true;
    const bool ok = body(error);
    capturing = false;
    CUgraph graph = nullptr;
    CUresult rc = d.cuStreamEndCapture(stream, &graph);
    if (!ok) {
      if (graph)
        d.cuGraphDestroy(graph);
      return nullptr;
    }
    if (!check(rc, "cuStreamEndCapture", error))
      return nullptr;
    CUgraphExec exec = nullptr;
    rc = d.cuGraphInstantiateWithFlags(&exec, graph, 0);
    d.cuGraphDestroy(graph);
    if (!check(rc, "cuGraphInstantiateWithFlags", error))
      return nullptr;
    graphs.push_back(exec);
    return exec;
  }
  bool replay(Graph graph, std::string &error) override {
    return check(d.cuGraphLaunch(static_cast<CUgraphExec>(graph), stream), "cuGraphLaunch", error);
  }
  uint64_t deviceBytes() const override {
    uint64_t total = allocated + scratchX.capacity + scratchW.capacity + workspace.capacity + argmaxIds.capacity;
    for (const Buffer &b : dynamic)
      total += b.capacity;
    return total;
  }

  std::string deviceInfo() const override {
    char name[256] = {};
    int major = 0, minor = 0;
    d.cuDeviceGetName(name, sizeof name - 1, device);
    d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
    d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
    return std::string(name) + " (sm_" + std::to_string(major * 10 + minor) +
           "); products of 17+ rows (16-bit weights: 2+): " +
           (gemm ? gemm->describe() + (helpers.bf16 ? " (bfloat16 operands)" : "") : "generated kernels") +
           (pdl ? "; programmatic dependent launch" : "");
  }

  bool prepare(const Model &m, std::string &error) override {
    model = &m;
    if (!check(d.cuDeviceGet(&device, 0), "cuDeviceGet", error) ||
        !check(d.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain", error) ||
        !check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent", error) ||
        !check(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate", error))
      return false;
    if (!loadModule(error) || !openLibrary(error))
      return false;
    // Weights: the file's section in one allocation and one copy; external weights each their own.
    if (m.weightsSize) {
      if (!allocate(m.weightsSize, weightsBase, "the weights", error) ||
          !upload(reinterpret_cast<void *>(weightsBase), m.weights, m.weightsSize, error))
        return false;
    }
    for (size_t i = 0; i < m.values.size(); ++i) {
      const Value &v = m.values[i];
      if (v.storage != qopt::format::Storage::External || !v.maxBytes)
        continue;
      CUdeviceptr p = 0;
      if (!allocate(v.maxBytes, p, "weight '" + v.name + "'", error) ||
          !upload(reinterpret_cast<void *>(p), v.data, v.maxBytes, error))
        return false;
      external[i] = p;
    }
    if (!allocate(m.arenaBytes, arenaBase, "the activation arena", error) ||
        !allocate(m.stateBytes, stateBase, "the session state (KV cache)", error) ||
        !allocate(sizeof(int), statusWord, "the status word", error))
      return false;
    stateSize = m.stateBytes;
    if (!check(d.cuMemsetD8Async(statusWord, 0, sizeof(int), stream), "cuMemsetD8Async", error))
      return false;
    return resetState(error) && synchronize(error);
  }

  void *arenaAddress(uint64_t offset) override { return reinterpret_cast<void *>(arenaBase + offset); }
  void *stateAddress(uint64_t offset) override { return reinterpret_cast<void *>(stateBase + offset); }
  const void *weightAddress(const Model &m, const Value &v) override {
    if (v.storage == qopt::format::Storage::External) {
      auto it = external.find(static_cast<size_t>(&v - m.values.data()));
      return it == external.end() ? nullptr : reinterpret_cast<const void *>(it->second);
    }
    return reinterpret_cast<const void *>(weightsBase + static_cast<uint64_t>(v.data - m.weights));
  }

  void *dynamicBuffer(uint32_t id, size_t bytes) override {
    if (id >= dynamic.size())
      dynamic.resize(id + 1);
    std::string error; // the interface reports a failed allocation as null
    return ensure(dynamic[id], bytes, "a run-time buffer", error) ? reinterpret_cast<void *>(dynamic[id].ptr) : nullptr;
  }

  bool upload(void *device, const void *host, size_t bytes, std::string &error) override {
    // From pageable memory the call returns once the bytes are staged: the caller may reuse `host`.
    return !bytes || check(d.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(device), host, bytes, stream),
                           "cuMemcpyHtoDAsync", error);
  }
  bool download(void *host, const void *device, size_t bytes, std::string &error) override {
    if (bytes && !check(d.cuMemcpyDtoHAsync(host, reinterpret_cast<CUdeviceptr>(device), bytes, stream),
                        "cuMemcpyDtoHAsync", error))
      return false;
    return synchronize(error);
  }
  bool synchronize(std::string &error) override {
    int status = 0;
    if (!check(d.cuMemcpyDtoHAsync(&status, statusWord, sizeof status, stream), "cuMemcpyDtoHAsync", error) ||
        !check(d.cuStreamSynchronize(stream), "cuStreamSynchronize (a kernel failed)", error))
      return false;
    if (status) {
      d.cuMemsetD8Async(statusWord, 0, sizeof(int), stream);
      error = std::string("a kernel reported ") + statusText(status) +
              (lastKernel.empty() ? "" : " (kernels launched since the last check include " + lastKernel + ")");
      return false;
    }
    return true;
  }
  bool argmaxRows(const void *x, int64_t rows, int64_t cols, int64_t *ids, std::string &error) override {
    if (!argmaxFn.fn || rows > 0x7fffffff / kMaxRowBlocks)
      return Backend::argmaxRows(x, rows, cols, ids, error);
    if (!rows)
      return true;
    const size_t bytes = static_cast<size_t>(rows) * sizeof(int64_t);
    if (!ensure(argmaxIds, bytes, "argmax results", error))
      return false;
    CUdeviceptr in = reinterpret_cast<CUdeviceptr>(x), out = argmaxIds.ptr;
    long long n = cols;
    void *params[] = {&in, &n, &out};
    return launchRows(argmaxFn, rows, cols, params, error) &&
           download(ids, reinterpret_cast<const void *>(argmaxIds.ptr), bytes, error);
  }
  bool sampleRows(const void *x, int64_t rows, int64_t cols, const Sampling &s, const double *uniforms, int64_t *ids,
                  std::string &error) override {
    if (s.temperature == 0.0f)
      return argmaxRows(x, rows, cols, ids, error);
    if (!sampleFn.fn || rows > 0x7fffffff / kMaxRowBlocks)
      return Backend::sampleRows(x, rows, cols, s, uniforms, ids, error);
    if (!rows)
      return true;
    const size_t bytes = static_cast<size_t>(rows) * sizeof(int64_t); // the ids, then the uniform numbers
    if (!ensure(argmaxIds, 2 * bytes, "sampling's numbers", error))
      return false;
    CUdeviceptr in = reinterpret_cast<CUdeviceptr>(x), out = argmaxIds.ptr, u = argmaxIds.ptr + bytes;
    if (!upload(reinterpret_cast<void *>(u), uniforms, bytes, error))
      return false;
    long long n = cols, topK = s.topK;
    float temperature = s.temperature, topP = s.topP;
    void *params[] = {&in, &n, &temperature, &topK, &topP, &u, &out};
    return launchRows(sampleFn, rows, cols, params, error) &&
           download(ids, reinterpret_cast<const void *>(argmaxIds.ptr), bytes, error);
  }
  bool resetState(std::string &error) override {
    return !stateSize || check(d.cuMemsetD8Async(stateBase, 0, stateSize, stream), "cuMemsetD8Async", error);
  }

  Kernel bind(const num::KernelFamily &family, const std::string &variant, std::string &error) override {
    if (variant.empty()) {
      error = std::string("no CUDA kernel for '") + family.name + "' in this model.bin (compiled for the CPU, or a "
              "launch no kernel template covers)";
      return nullptr;
    }
    if (!module) {
      error = "the model.bin has no kernels section (compile it with --target=cuda:ARCH)";
      return nullptr;
    }
    auto it = boundKernels.find(variant);
    if (it != boundKernels.end())
      return &it->second;
    const DeviceKernel *record = nullptr;
    for (const DeviceKernel &k : model->deviceKernels)
      if (k.symbol == variant)
        record = &k;
    if (!record) {
      error = "kernel '" + variant + "' has no launch record in the kernels section";
      return nullptr;
    }
    Bound b;
    b.record = record;
    const std::string f = family.name;
    b.split = f == "matmul_q_split";
    b.library = gemm && helpers.toHalf && (f == "matmul_q" || b.split);
    if (!check(d.cuModuleGetFunction(&b.fn, module, variant.c_str()), ("cuModuleGetFunction(" + variant + ")").c_str(),
               error))
      return nullptr;
    // Dynamic shared memory is granted per function: by default only what the function's static shared memory
    // leaves of 48 KB (qGemvRow's 48 KB split of x for K = 12288 and its 4 KB of reductions would not launch).
    const uint32_t shared = record->launch.sharedBytes;
    if (shared > 0 &&
        !check(d.cuFuncSetAttribute(b.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(shared)),
               ("cuFuncSetAttribute(" + variant + ", " + std::to_string(shared) + " bytes of shared memory)").c_str(),
               error))
      return nullptr;
    return &(boundKernels[variant] = b);
  }

  bool launch(Kernel kernel, num::KernelArgs &args, std::string &error) override {
    const Bound &b = *static_cast<const Bound *>(kernel);
    const DeviceKernel &dk = *b.record;
    if (b.library && !args.inputs.empty() && args.inputs[0] && args.inputs[0]->rank() > 0) {
      const num::Tensor &x = *args.inputs[0];
      const int64_t K = x.shape.back();
      // Few rows stay in the generated kernel, which streams the weights once through the tensor cores.
      const num::Tensor *w = args.in(1);
      const bool half = w && w->dtype == (helpers.bf16 ? num::DType::BF16 : num::DType::F16);
      if (K > 0 && x.numel() / K >= (half ? kLibraryMinRowsHalf : kLibraryMinRows)) {
        bool declined = false;
        const bool ok = libraryProduct(b, args, declined, error);
        if (ok || !declined)
          return ok;
      }
    }
    const qopt::format::KernelLaunch &k = dk.launch;
    QParams p;
    std::memset(&p, 0, sizeof p);
    size_t n = 0;
    auto add = [&](const num::Tensor *t) {
      if (n >= kMaxKernelOperands)
        return false;
      QTensor &q = p.t[n++];
      if (!t) {
        q.rank = -1;
        return true;
      }
      if (t->rank() > 8)
        return false;
      q.data = t->data;
      q.rank = static_cast<int32_t>(t->rank());
      for (int64_t i = 0; i < t->rank(); ++i)
        q.shape[i] = t->shape[i];
      return true;
    };
    for (const num::Tensor *t : args.inputs)
      if (!add(t))
        return fail(dk, "more than 12 operands or a rank above 8", error);
    for (const num::Tensor *t : args.outputs)
      if (!add(t))
        return fail(dk, "more than 12 operands or a rank above 8", error);
    if (k.operand >= n || p.t[k.operand].rank < 0)
      return fail(dk, "its geometry names an absent operand", error);
    p.status = reinterpret_cast<int *>(statusWord);
    // The grid: rows x cols of the geometry operand, in tiles.
    const QTensor &g = p.t[k.operand];
    uint64_t numel = 1;
    for (int i = 0; i < g.rank; ++i)
      numel *= static_cast<uint64_t>(g.shape[i]);
    const uint64_t last = g.rank ? static_cast<uint64_t>(g.shape[g.rank - 1]) : 1;
    uint64_t rows = k.flat ? 1 : (last ? numel / last : 0), cols = k.flat ? numel : k.cols ? k.cols : last;
    if (!rows || !cols || !numel)
      return true; // nothing to compute
    uint64_t rowTiles = (rows + k.rowsPerBlock - 1) / k.rowsPerBlock;
    if (k.planes && g.rank >= 2) { // each plane's rows tiled on their own
      const uint64_t inner = static_cast<uint64_t>(g.shape[g.rank - 2]);
      rowTiles = rows / inner * ((inner + k.rowsPerBlock - 1) / k.rowsPerBlock);
    }
    const uint64_t grid = rowTiles * ((cols + k.colsPerBlock - 1) / k.colsPerBlock);
    if (grid > 0x7fffffffu)
      return fail(dk, "a grid of " + std::to_string(grid) + " blocks", error);
    void *params[] = {&p};
    lastKernel = dk.symbol;
    CUresult rc;
    if (pdl) {
      CUlaunchAttribute attr = {};
      attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
      attr.value.programmaticStreamSerializationAllowed = 1;
      const CUlaunchConfig config = {static_cast<unsigned>(grid), k.gridY, 1, k.block, 1, 1, k.sharedBytes, stream,
                                     &attr, 1};
      rc = d.cuLaunchKernelEx(&config, b.fn, params, nullptr);
    } else {
      rc = d.cuLaunchKernel(b.fn, static_cast<unsigned>(grid), k.gridY, 1, k.block, 1, 1, k.sharedBytes, stream,
                            params, nullptr);
    }
    if (rc != CUDA_SUCCESS) {
      error = describe(d, (std::string(pdl ? "cuLaunchKernelEx(" : "cuLaunchKernel(") + dk.symbol + ")").c_str(), rc);
      return false;
    }
    return true;
  }

private:
  // cuBLASLt and the module's helper kernels; a model.bin without the helpers (older than them) keeps every
  // product in its generated kernel.
  bool openLibrary(std::string &error) {
    if (!module)
      return true;
    findRowHelper(argmaxFn, "qopt_argmax_cluster_rows", "qopt_argmax_rows");
    findRowHelper(sampleFn, "qopt_sample_cluster_rows", "qopt_sample_rows");
    // Blocks per row for the cluster helpers: clusters (sm_90 and later, through cuLaunchKernelEx) of up to 8
    // (QRT_ROW_BLOCKS=N caps it; 1 is one block a row).
    rowBlocksCap = computeCapability >= 90 && d.cuLaunchKernelEx ? kMaxRowBlocks : 1;
    if (const char *env = std::getenv("QRT_ROW_BLOCKS"))
      rowBlocksCap = std::min(rowBlocksCap, std::max(1, std::atoi(env)));
    // Programmatic dependent launch: kernels that wait for their predecessor themselves (the marker) on a driver
    // with cuLaunchKernelEx. QRT_PDL=0 turns it off.
    CUfunction marker = nullptr;
    const char *pdlEnv = std::getenv("QRT_PDL");
    pdl = d.cuLaunchKernelEx && !(pdlEnv && std::string(pdlEnv) == "0") &&
          d.cuModuleGetFunction(&marker, module, "qopt_waits_for_previous") == CUDA_SUCCESS;
    const char *env = std::getenv("QRT_CUBLASLT");
    const std::string choice = env ? env : "";
    const bool required = !choice.empty() && choice != "off" && choice != "0";
    std::string why;
    gemm = Gemm::open(why);
    if (gemm) {
      static const char *names[3][2] = {{"qopt_dequant_half_b3", "qopt_dequant_half_b3z"},
                                        {"qopt_dequant_half_b4", "qopt_dequant_half_b4z"},
                                        {"qopt_dequant_half_b8", "qopt_dequant_half_b8z"}};
      bool all = d.cuModuleGetFunction(&helpers.toHalf, module, "qopt_half_from_float") == CUDA_SUCCESS;
      CUfunction bf16Marker = nullptr; // a module compiled for bfloat16 operands (qopt --act-dtype=bf16)
      helpers.bf16 = d.cuModuleGetFunction(&bf16Marker, module, "qopt_operands_bf16") == CUDA_SUCCESS;
      for (int b = 0; b < 3; ++b)
        for (int z = 0; z < 2; ++z)
          all = all && d.cuModuleGetFunction(&helpers.dequant[b][z], module, names[b][z]) == CUDA_SUCCESS;
      static const char *halfScaleNames[2][2] = {{"qopt_dequant_half_b3h", "qopt_dequant_half_b3zh"},
                                                 {"qopt_dequant_half_b4h", "qopt_dequant_half_b4zh"}};
      for (int b = 0; b < 2; ++b)
        for (int z = 0; z < 2; ++z)
          if (d.cuModuleGetFunction(&helpers.dequantHalfScales[b][z], module, halfScaleNames[b][z]) != CUDA_SUCCESS)
            helpers.dequantHalfScales[b][z] = nullptr;
      if (d.cuModuleGetFunction(&helpers.fp8Quantize, module, "qopt_fp8_quantize_rows") != CUDA_SUCCESS)
        helpers.fp8Quantize = nullptr;
      if (d.cuModuleGetFunction(&helpers.dequantFp8, module, "qopt_dequant_half_fp8") != CUDA_SUCCESS)
        helpers.dequantFp8 = nullptr;
      if (d.cuModuleGetFunction(&helpers.int8Quantize, module, "qopt_int8_quantize_rows") != CUDA_SUCCESS ||
          d.cuModuleGetFunction(&helpers.int8Scale, module, "qopt_int8_scale_rows") != CUDA_SUCCESS)
        helpers.int8Quantize = helpers.int8Scale = nullptr;
      if (!all) {
        helpers = Helpers();
        gemm.reset();
        why = "the model.bin's kernels lack the helpers for library products (compiled by an older qopt)";
      }
    }
    if (!gemm && required) {
      error = "QRT_CUBLASLT=" + choice + ": " + (why.empty() ? "cuBLASLt cannot be used" : why);
      return false;
    }
    return true;
  }

  // Grows a buffer to at least `bytes` (a null one to at least 1); never during a recording (libraryProduct
  // declines there).
  bool ensure(Buffer &b, size_t bytes, const char *what, std::string &error) {
    if (b.ptr && b.capacity >= bytes)
      return true;
    d.cuStreamSynchronize(stream); // a kernel may still read the old buffer
    if (b.ptr)
      d.cuMemFree(b.ptr);
    b = Buffer();
    if (CUresult rc = d.cuMemAlloc(&b.ptr, bytes ? bytes : 1); rc != CUDA_SUCCESS) {
      b.ptr = 0;
      error = std::string("cannot allocate ") + std::to_string(bytes) + " bytes of GPU memory for " + what + ": " +
              describe(d, "cuMemAlloc", rc);
      return false;
    }
    b.capacity = bytes;
    return true;
  }

  bool launchHelper(CUfunction fn, int64_t threads, void **params, const char *what, std::string &error) {
    const int64_t blocks = (threads + 255) / 256;
    if (blocks > 0x7fffffff) {
      error = std::string(what) + ": a grid of " + std::to_string(blocks) + " blocks";
      return false;
    }
    return !blocks || check(d.cuLaunchKernel(fn, static_cast<unsigned>(blocks), 1, 1, 256, 1, 1, 0, stream, params,
                                             nullptr),
                            what, error);
  }

  // A linear layer of many rows through cuBLASLt: x to float16 once, then for each result, in slices of at
  // most kSliceElements weights, the weights to float16 (when they are codes) and one product into the result's
  // columns. The dequantized slice is the price of the library's tensor cores: about 4 bytes written and read per
  // weight, small next to the product's arithmetic at prompt lengths.
  //
  // Under a recording nothing may be allocated (nor the stream synchronized): a product whose scratch does not fit
  // the buffers a previous run grew is `declined` and runs in its generated kernel.
  bool libraryProduct(const Bound &b, num::KernelArgs &args, bool &declined, std::string &error) {
    static constexpr int64_t kSliceElements = 64ll << 20;
    const DeviceKernel &dk = *b.record;
    static const num::Attrs none;
    const num::Attrs &attrs = args.attrs ? *args.attrs : none;
    const num::Tensor &x = *args.inputs[0];
    const num::Tensor *w = args.in(1), *scales = args.in(2), *zeros = args.in(3);
    const int64_t K = x.shape.back(), M = x.numel() / K, bits = attrs.getInt("bits", 4);
    const int64_t group = bits == 16 ? K : attrs.getInt("group_size", K);
    // A norm prologue or residual epilogue (operands 4, 5: qopt-fuse-norm-product) is the generated kernel's.
    if (args.in(4) || args.in(5)) {
      declined = true;
      return false;
    }
    // FP8 codes: W8A8 (act_fp8) on the FP8 tensor cores; under float activations (fp8w) dequantized to float16
    // like integer codes (a module without that helper keeps them in the generated kernel, as below).
    const int fp8 = !w || bits != 8 ? 0 : w->dtype == num::DType::F8E4M3FN ? 1 : w->dtype == num::DType::F8E5M2 ? 2 : 0;
    if (fp8 && attrs.getInt("act_fp8", 0))
      return fp8Product(b, args, declined, error);
    // int8 activations (W8A8 SmoothQuant) on the int8 tensor cores, or the generated kernel (which rounds x): never
    // the float16 path below, which would not.
    if (attrs.getInt("act_int8", 0))
      return int8Product(b, args, declined, error);
    const int bi = !w ? -1 : bits == 3 || bits == 4 ? (w->dtype == num::DType::U8 ? bits - 3 : -1)
                           : bits == 8 && w->dtype == num::DType::I8 ? 2 : -1;
    // int3/int4 scales may be float16 (QuantFormat.h): their own helpers.
    const bool halfScales = scales && scales->dtype == num::DType::F16;
    if (!w || w->rank() != 2 ||
        (bits == 16 ? w->dtype != (helpers.bf16 ? num::DType::BF16 : num::DType::F16) || w->shape[1] != K
                    : (bi < 0 && !fp8) || !scales || group <= 0 || K % group != 0 ||
                          (scales->dtype != num::DType::F32 && !(halfScales && (bi == 0 || bi == 1)))))
      return fail(dk, "operands of another layout than its library product takes", error);
    CUfunction dequant = fp8 ? helpers.dequantFp8 : bi < 0 ? nullptr
                         : halfScales                    ? helpers.dequantHalfScales[bi][zeros ? 1 : 0]
                                                         : helpers.dequant[bi][zeros ? 1 : 0];
    if (bits != 16 && !dequant) { // a helper the module lacks: the generated kernel runs it
      declined = true;
      return false;
    }
    const int64_t N = w->shape[0], rowBytes = w->shape[1] * static_cast<int64_t>(num::dtypeSize(w->dtype));
    // Codes in the tile layout (QuantFormat.h; never float16 weights, which keep their rows): the helpers read a
    // slice's rows from the whole weight. A module whose helpers predate the layout has no such weight.
    const int64_t layout = attrs.getInt("weight_layout", 0);
    if (layout < 0 || layout > 2)
      return fail(dk, "a weight layout its library product does not read", error);
    const int tiled = static_cast<int>(layout); // the helpers' parameter: 0 rows, 1 or 2 tiles
    if (tiled && bits == 16) { // (the library reads float16 weights as rows; qopt never tiles them)
      declined = true;
      return false;
    }
    std::vector<int64_t> splits;
    if (!resultSplits(b, args, N, splits))
      return fail(dk, "results that do not match its splits", error);
    const bool perTensor = bits != 16 && scales->numel() == 1 && K / group == 1;
    const int64_t groups = perTensor ? 0 : K / group;
    const int64_t sliceRows = bits == 16 ? N : std::max<int64_t>(1, kSliceElements / K);
    const size_t xBytes = static_cast<size_t>(M * K) * 2, wBytes = static_cast<size_t>(std::min(sliceRows, N) * K) * 2;
    if (capturing && (scratchX.capacity < xBytes || workspace.capacity < Gemm::kWorkspaceBytes ||
                      (bits != 16 && scratchW.capacity < wBytes))) {
      declined = true;
      return false;
    }
    if (!ensure(scratchX, xBytes, "float16 activations", error) ||
        !ensure(workspace, Gemm::kWorkspaceBytes, "the cuBLASLt workspace", error) ||
        (bits != 16 && !ensure(scratchW, wBytes, "float16 weights", error)))
      return false;
    const void *xf = x.data;
    void *xh = reinterpret_cast<void *>(scratchX.ptr);
    int64_t n = M * K;
    void *toHalf[] = {&xf, &xh, &n};
    if (!launchHelper(helpers.toHalf, (n + 7) / 8, toHalf, "qopt_half_from_float", error))
      return false;
    lastKernel = dk.symbol + " (cuBLASLt)";
    int64_t first = 0;
    for (size_t s = 0; s < splits.size(); ++s) {
      float *y = static_cast<float *>(args.outputs[s]->data);
      for (int64_t r0 = 0; r0 < splits[s]; r0 += sliceRows) {
        const int64_t rows = std::min(sliceRows, splits[s] - r0), row = first + r0;
        const void *wh = static_cast<const uint8_t *>(w->data) + row * rowBytes;
        if (bits != 16) {
          const void *codes = tiled ? w->data : wh, *sc = static_cast<const uint8_t *>(scales->data) +
                                         row * groups * static_cast<int64_t>(num::dtypeSize(scales->dtype));
          const void *zp = zeros ? static_cast<const uint8_t *>(zeros->data) + row * groups : nullptr;
          void *out = reinterpret_cast<void *>(scratchW.ptr);
          int64_t rowsArg = rows, kArg = K, bytesArg = rowBytes, groupArg = group, row0 = tiled ? row : 0, nArg = N;
          int per = perTensor ? 1 : 0, format = fp8, tiledArg = tiled; // (helpers of older modules: 9 or 10)
          void *params[] = {&codes, &sc, &zp, &out, &rowsArg, &kArg, &bytesArg, &groupArg, &per, &format, &tiledArg,
                            &row0, &nArg};
          if (!launchHelper(dequant, rows * ((K + 7) / 8), params, "qopt_dequant_half", error))
            return false;
          wh = out;
        }
        if (!gemm->run(wh, xh, y + r0, M, rows, K, splits[s], helpers.bf16, stream,
                       reinterpret_cast<void *>(workspace.ptr), error))
          return fail(dk, error, error);
      }
      first += splits[s];
    }
    return true;
  }

  // The output channels of each result of a library product: a matmul_q_split's "splits" (summing to N, one per
  // result), else all N in one.
  static bool resultSplits(const Bound &b, const num::KernelArgs &args, int64_t N, std::vector<int64_t> &splits) {
    if (!b.split || !args.attrs || !args.attrs->getInts("splits", splits))
      splits = {N};
    int64_t total = 0;
    for (int64_t n : splits)
      total += n;
    return splits.size() == args.outputs.size() && total == N;
  }

  // W8A8's activations for a library product: x's M rows of K to 8-bit codes (scratchX, which the caller has grown
  // to activationCodeBytes(M, K) + 4 M bytes) and one scale per row after them, by the module's helper `fn` (one
  // block per row; the static scale `actScale`, device memory, or null for scales per row; the FP8 helper takes
  // its format `fp8` last, the int8 one has no such parameter).
  static size_t activationCodeBytes(int64_t M, int64_t K) { return (static_cast<size_t>(M * K) + 255) / 256 * 256; }
  bool quantizeRows(CUfunction fn, const char *name, const num::Tensor &x, int64_t M, int64_t K,
                    const float *actScale, int fp8, void *&codes, float *&xScales, std::string &error) {
    const void *xf = x.data;
    codes = reinterpret_cast<void *>(scratchX.ptr);
    xScales = reinterpret_cast<float *>(scratchX.ptr + activationCodeBytes(M, K));
    int64_t kArg = K;
    const float *scaleArg = actScale;
    void *params[] = {&xf, &codes, &xScales, &kArg, &scaleArg, &fp8}; // the driver reads as many as `fn` takes
    lastKernel = name;
    return check(d.cuLaunchKernel(fn, static_cast<unsigned>(M), 1, 1, 256, 1, 1, 0, stream, params, nullptr),
                 (std::string("cuLaunchKernel(") + name + ")").c_str(), error);
  }

  // A W8A8 product's static activation scale (act 1: operand 6, float32 [1], in device memory); null otherwise.
  static const float *staticActScale(const num::KernelArgs &args, int64_t act) {
    const num::Tensor *a = args.in(6);
    return act == 1 && a && a->dtype == num::DType::F32 && a->numel() == 1 ? static_cast<const float *>(a->data)
                                                                            : nullptr;
  }

  // A W8A8 FP8 product of many rows (matmul_q with act_fp8 over E4M3 weights with a scale per channel): x's rows to
  // FP8 codes and their scales by the module's helper (the reference's rounding, static or per-row scales), then for
  // each result one cuBLASLt product of the codes with the weights' codes as stored (no copy), the row and channel
  // scales applied in its epilogue. Declined (the generated kernel runs) on GPUs without FP8 tensor cores (before
  // sm_89: checked first, so that no rounding of x is launched in vain), for E5M2 (the library has no E5M2 x E5M2
  // product), per-tensor or grouped weight scales, and shapes the library takes no FP8 product for.
  bool fp8Product(const Bound &b, num::KernelArgs &args, bool &declined, std::string &error) {
    const DeviceKernel &dk = *b.record;
    const num::Attrs &attrs = *args.attrs;
    const num::Tensor &x = *args.inputs[0], &w = *args.in(1);
    const num::Tensor *scales = args.in(2);
    const int64_t K = x.shape.back(), M = x.numel() / K, N = w.rank() == 2 ? w.shape[0] : 0;
    const int64_t act = attrs.getInt("act_fp8", 0);
    const float *actScale = staticActScale(args, act);
    if (!helpers.fp8Quantize || computeCapability < 89 || w.dtype != num::DType::F8E4M3FN || w.rank() != 2 ||
        w.shape[1] != K || !scales || scales->numel() != N || N < 2 || K % 16 != 0 ||
        (act == 1 && !actScale) || (act != 1 && act != 2)) {
      declined = true;
      return false;
    }
    std::vector<int64_t> splits;
    if (!resultSplits(b, args, N, splits))
      return fail(dk, "results that do not match its splits", error);
    const size_t xBytes = activationCodeBytes(M, K) + 4 * M;
    if (capturing && (scratchX.capacity < xBytes || workspace.capacity < Gemm::kWorkspaceBytes)) {
      declined = true;
      return false;
    }
    if (!ensure(scratchX, xBytes, "FP8 activations", error) ||
        !ensure(workspace, Gemm::kWorkspaceBytes, "the cuBLASLt workspace", error))
      return false;
    void *codes = nullptr;
    float *xScales = nullptr;
    if (!quantizeRows(helpers.fp8Quantize, "qopt_fp8_quantize_rows", x, M, K, actScale, /*fp8=*/1, codes, xScales,
                      error))
      return false;
    lastKernel = dk.symbol + " (cuBLASLt FP8)";
    int64_t first = 0;
    for (size_t s = 0; s < splits.size(); ++s) {
      const void *ws = static_cast<const uint8_t *>(w.data) + first * K;
      const float *sc = static_cast<const float *>(scales->data) + first;
      if (!gemm->runFp8(ws, sc, codes, xScales, static_cast<float *>(args.outputs[s]->data), M, splits[s], K,
                        splits[s], stream, reinterpret_cast<void *>(workspace.ptr), error)) {
        if (!error.empty())
          return fail(dk, error, error);
        if (s > 0) // the library took the first result's product and refused this one's: not expected
          return fail(dk, "cuBLASLt took some of its FP8 products and not others", error);
        declined = true; // no FP8 algorithm here: the generated kernel (which rounds x itself)
        return false;
      }
      first += splits[s];
    }
    return true;
  }

  // A W8A8 int8 product of many rows (matmul_q with act_int8 over int8 weights with a scale per channel, no zero
  // points): x's rows to int8 codes and their scales by the module's helper (the reference's rounding, static or
  // per-row scales), then for each result, a slice of rows at a time, one cuBLASLt int8 product (IMMA, exact int32
  // sums) of the codes with the weights' codes as stored, and the helper epilogue multiplying each sum by its row's
  // and channel's scales into the float32 result. Declined (the generated kernel runs) for grouped weight scales,
  // K not a multiple of 4 or too deep for int32 sums, and shapes the library takes no int8 product for.
  bool int8Product(const Bound &b, num::KernelArgs &args, bool &declined, std::string &error) {
    static constexpr int64_t kSliceSums = 32ll << 20; // int32 sums per slice of rows (128 MB)
    const DeviceKernel &dk = *b.record;
    const num::Attrs &attrs = *args.attrs;
    const num::Tensor &x = *args.inputs[0], &w = *args.in(1);
    const num::Tensor *scales = args.in(2);
    const int64_t K = x.shape.back(), M = x.numel() / K, N = w.rank() == 2 ? w.shape[0] : 0;
    const int64_t act = attrs.getInt("act_int8", 0);
    const float *actScale = staticActScale(args, act);
    if (!helpers.int8Quantize || !helpers.int8Scale || w.dtype != num::DType::I8 || w.rank() != 2 ||
        w.shape[1] != K || !scales || scales->numel() != N || args.in(3) || N < 1 || K % 4 != 0 || K > 131072 ||
        (act == 1 && !actScale) || (act != 1 && act != 2)) {
      declined = true;
      return false;
    }
    std::vector<int64_t> splits;
    if (!resultSplits(b, args, N, splits))
      return fail(dk, "results that do not match its splits", error);
    int64_t widest = 0;
    for (int64_t n : splits)
      widest = std::max(widest, (n + 3) / 4 * 4);
    const int64_t sliceRows = std::max<int64_t>(1, std::min(M, kSliceSums / std::max<int64_t>(widest, 1)));
    const size_t xBytes = activationCodeBytes(M, K) + 4 * M;
    const size_t sumBytes = static_cast<size_t>(sliceRows * widest) * 4;
    if (capturing && (scratchX.capacity < xBytes || scratchW.capacity < sumBytes ||
                      workspace.capacity < Gemm::kWorkspaceBytes)) {
      declined = true;
      return false;
    }
    if (!ensure(scratchX, xBytes, "int8 activations", error) || !ensure(scratchW, sumBytes, "int32 sums", error) ||
        !ensure(workspace, Gemm::kWorkspaceBytes, "the cuBLASLt workspace", error))
      return false;
    void *codes = nullptr;
    float *xScales = nullptr;
    if (!quantizeRows(helpers.int8Quantize, "qopt_int8_quantize_rows", x, M, K, actScale, /*fp8=*/0, codes, xScales,
                      error))
      return false;
    int32_t *sums = reinterpret_cast<int32_t *>(scratchW.ptr);
    int64_t first = 0;
    for (size_t s = 0; s < splits.size(); ++s) {
      const int64_t cols = splits[s], ld = (cols + 3) / 4 * 4; // the sums' rows: a multiple of 4 for the library
      for (int64_t m0 = 0; m0 < M; m0 += sliceRows) {
        const int64_t rows = std::min(sliceRows, M - m0);
        lastKernel = dk.symbol + " (cuBLASLt int8)";
        if (!gemm->runInt8(static_cast<const uint8_t *>(w.data) + first * K,
                           static_cast<const uint8_t *>(codes) + m0 * K, sums, rows, cols, K, ld, stream,
                           reinterpret_cast<void *>(workspace.ptr), error)) {
          if (!error.empty())
            return fail(dk, error, error);
          if (s > 0 || m0 > 0) // the library took some of this layer's products and refused another: not expected
            return fail(dk, "cuBLASLt took some of its int8 products and not others", error);
          declined = true; // no int8 algorithm here: the generated kernel (which rounds x itself)
          return false;
        }
        const int32_t *acc = sums;
        const float *xs = xScales + m0, *ws = static_cast<const float *>(scales->data) + first;
        float *y = static_cast<float *>(args.outputs[s]->data) + m0 * cols;
        int64_t ldArg = ld, rowsArg = rows, colsArg = cols;
        void *scaleParams[] = {&acc, &ldArg, &xs, &ws, &y, &colsArg, &rowsArg, &colsArg};
        lastKernel = "qopt_int8_scale_rows";
        if (!check(d.cuLaunchKernel(helpers.int8Scale, static_cast<unsigned>((cols + 1023) / 1024),
                                    static_cast<unsigned>(std::min<int64_t>(rows, 65535)), 1, 256, 1, 1, 0, stream,
                                    scaleParams, nullptr),
                   "cuLaunchKernel(qopt_int8_scale_rows)", error))
          return false;
      }
      first += cols;
    }
    return true;
  }

  bool check(CUresult rc, const char *call, std::string &error) {
    if (rc == CUDA_SUCCESS)
      return true;
    error = describe(d, call, rc);
    return false;
  }
  bool fail(const DeviceKernel &k, const std::string &why, std::string &error) {
    error = "kernel '" + k.symbol + "': " + why;
    return false;
  }
  bool allocate(uint64_t bytes, CUdeviceptr &out, const std::string &what, std::string &error) {
    CUresult rc = d.cuMemAlloc(&out, bytes ? static_cast<size_t>(bytes) : 64);
    if (rc != CUDA_SUCCESS) {
      error = "cannot allocate " + std::to_string(bytes) + " bytes of GPU memory for " + what + ": " +
              describe(d, "cuMemAlloc", rc);
      return false;
    }
    allocations.push_back(out);
    allocated += bytes;
    return true;
  }

  struct RowHelper { // qopt_argmax_cluster_rows, qopt_sample_cluster_rows (or the older helpers)
    CUfunction fn = nullptr; // null: none in this model.bin (older than the helpers)
    const char *symbol = "";
    bool cluster = false; // a row over a cluster's blocks
  };
  // A row helper of the module: the cluster version (a row over the blocks of a cluster, grid x = rows * blocks),
  // else the one-block-a-row version a model.bin older than it has (grid x = rows), else none.
  void findRowHelper(RowHelper &h, const char *cluster, const char *single) {
    h = RowHelper();
    if (d.cuModuleGetFunction(&h.fn, module, cluster) == CUDA_SUCCESS) {
      h.symbol = cluster, h.cluster = true;
    } else if (d.cuModuleGetFunction(&h.fn, module, single) == CUDA_SUCCESS) {
      h.symbol = single;
    } else {
      h.fn = nullptr;
    }
  }
  // Launches a row helper over `rows` rows of `cols` values, 1024 threads a block: a cluster of blocks per row where
  // the GPU has clusters, as many as give each block about 16 values a thread (a 128256-token row: 8).
  bool launchRows(const RowHelper &h, int64_t rows, int64_t cols, void **params, std::string &error) {
    lastKernel = h.symbol;
    const int64_t wanted = h.cluster ? (cols + kRowValuesPerBlock - 1) / kRowValuesPerBlock : 1;
    const unsigned blocks = static_cast<unsigned>(std::clamp<int64_t>(wanted, 1, rowBlocksCap));
    if (blocks > 1) {
      CUlaunchAttribute attr = {};
      attr.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      attr.value.clusterDim = {blocks, 1, 1};
      const CUlaunchConfig config = {static_cast<unsigned>(rows) * blocks, 1, 1, 1024, 1, 1, 0, stream, &attr, 1};
      if (d.cuLaunchKernelEx(&config, h.fn, params, nullptr) == CUDA_SUCCESS)
        return true;
      rowBlocksCap = 1; // a cluster this GPU cannot place (a launch's configuration error leaves the context usable)
    }
    return check(d.cuLaunchKernel(h.fn, static_cast<unsigned>(rows), 1, 1, 1024, 1, 1, 0, stream, params, nullptr),
                 h.symbol, error);
  }

  // The image for this GPU: a cubin of its exact architecture (sm_90a needs 9.0), else one of the same major
  // version and a lower minor one (not an arch-specific 'a' build), else PTX no newer than the GPU.
  bool loadModule(std::string &error) {
    if (model->deviceImages.empty())
      return true; // bind says what is missing
    int major = 0, minor = 0;
    if (!check(d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
               "cuDeviceGetAttribute", error) ||
        !check(d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
               "cuDeviceGetAttribute", error))
      return false;
    const int cc = major * 10 + minor;
    computeCapability = cc;
    const DeviceImage *best = nullptr;
    int bestRank = -1;
    std::string have;
    for (const DeviceImage &img : model->deviceImages) {
      have += (have.empty() ? "" : ", ") + img.arch;
      const bool ptx = img.format == qopt::format::ImageFormat::Ptx;
      const std::string digits = img.arch.substr(img.arch.find('_') + 1);
      const bool specific = !digits.empty() && digits.back() == 'a';
      const int arch = std::atoi(digits.c_str());
      int rank = -1;
      if (!ptx && arch == cc)
        rank = 3000 + arch;
      else if (!ptx && !specific && arch / 10 == major && arch < cc)
        rank = 2000 + arch;
      else if (ptx && arch <= cc)
        rank = 1000 + arch;
      if (rank > bestRank) {
        bestRank = rank;
        best = &img;
      }
    }
    if (!best) {
      error = "the model.bin's kernels (" + have + ") do not run on this GPU (compute capability " +
              std::to_string(major) + "." + std::to_string(minor) + "): recompile with --target=cuda:sm_" +
              std::to_string(cc);
      return false;
    }
    std::vector<uint8_t> text; // PTX must end with a NUL for the driver
    const void *image = best->data;
    if (best->format == qopt::format::ImageFormat::Ptx && (best->size == 0 || best->data[best->size - 1] != 0)) {
      text.assign(best->data, best->data + best->size);
      text.push_back(0);
      image = text.data();
    }
    return check(d.cuModuleLoadData(&module, image), ("cuModuleLoadData(" + best->arch + ")").c_str(), error);
  }

  const Driver &d;
  const Model *model = nullptr;
  CUdevice device = 0;
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  CUmodule module = nullptr;
  CUdeviceptr weightsBase = 0, arenaBase = 0, stateBase = 0, statusWord = 0;
  uint64_t stateSize = 0;
  std::vector<CUdeviceptr> allocations;
  uint64_t allocated = 0;
  std::vector<CUgraphExec> graphs;
  std::map<size_t, CUdeviceptr> external;
  std::map<std::string, Bound> boundKernels;
  std::vector<Buffer> dynamic;
  std::unique_ptr<Gemm> gemm;
  Helpers helpers;
  Buffer scratchX, scratchW, workspace; // library products: float16 activations and weights, cuBLASLt's workspace
  static constexpr int kMaxRowBlocks = 8;              // the portable cluster size
  static constexpr int64_t kRowValuesPerBlock = 16384; // 16 values a thread
  RowHelper argmaxFn, sampleFn;                        // the argmax and sampling helpers
  int rowBlocksCap = 1;                                // the most blocks a row helper's cluster takes on this GPU
  bool pdl = false;                                    // generated kernels: programmatic stream serialization
  int computeCapability = 0;                           // the GPU's, e.g. 90 (set when the module loads)
  Buffer argmaxIds; // the row helpers' results (and the sampling helper's uniform numbers)
  std::string lastKernel;
  bool capturing = false; // inside capture(): no allocation, no synchronization
};

} // namespace

std::unique_ptr<Backend> createCudaBackend(std::string &error) {
  const Driver *d = driver(error);
  if (!d)
    return nullptr;
  int count = 0;
  if (CUresult rc = d->cuDeviceGetCount(&count); rc != CUDA_SUCCESS || count == 0) {
    error = rc != CUDA_SUCCESS ? describe(*d, "cuDeviceGetCount", rc) : "the CUDA driver sees no GPU";
    return nullptr;
  }
  return std::make_unique<CudaBackend>(*d);
}

} // namespace qrt
