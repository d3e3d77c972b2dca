//===- CudaKernels.cpp - kernel templates specialized per launch -----------===//
//
// Each kern family with a CUDA template has an instantiation function here: it checks that the launch is one
// the template handles (dtypes, ranks, static dims it needs, attributes), and writes the wrapper that calls the
// template with the launch's constants. Everything else about the launch (shapes that vary per run, addresses)
// reaches the kernel through QParams at run time.
//
//===----------------------------------------------------------------------===//
#include "qopt/Codegen/Cuda.h"
#include "qopt/Numerics/QuantFormat.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <utility>

namespace qopt::codegen {
namespace {

using num::DType;

const char kPrelude[] = {
#include "CudaPrelude.inc"
};
const char kTemplates[] = {
#include "CudaTemplates.inc"
};

std::string floatLiteral(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(static_cast<float>(v)));
  std::string out = buf;
  if (out.find_first_of(".en") == std::string::npos) // an integral value ("100"): "100f" is no float literal
    out += ".0";
  return out + "f";
}
std::string doubleLiteral(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// The unsigned type of an element of this size, for kernels that only move elements.
const char *elementType(DType t) {
  switch (num::dtypeSize(t)) {
  case 1: return "u8";
  case 2: return "unsigned short";
  case 4: return "unsigned int";
  case 8: return "unsigned long long";
  default: return nullptr;
  }
}

bool isStatic(const OperandDesc &o) {
  for (int64_t d : o.shape)
    if (d < 0)
      return false;
  return true;
}
int64_t lastDim(const OperandDesc &o) { return o.shape.empty() ? 1 : o.shape.back(); }
int64_t rowsIfStatic(const OperandDesc &o) { // -1 when a leading dim is dynamic
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < o.shape.size(); ++d) {
    if (o.shape[d] < 0)
      return -1;
    rows *= o.shape[d];
  }
  return rows;
}
bool allF32(const std::vector<OperandDesc> &ops) {
  for (const OperandDesc &o : ops)
    if (!o.absent && o.dtype != DType::F32)
      return false;
  return true;
}

// The body of a wrapper: the text between the braces of `extern "C" __global__ void NAME(const QParams p)`.
struct Spec {
  std::string body;
  KernelGeometry geometry;
  int minBlocks = 0; // > 0: __launch_bounds__(block, minBlocks), registers capped to keep that many blocks per SM
  int clusterY = 0;  // > 0: clusters of this many blocks along grid y where the architecture has them
  // > 0: a module global of this many zeroed 32-bit words, `qScratch` in the body, for the blocks of one launch to
  // meet in (each session loads its own module and runs its launches in turn, so one launch uses it at a time; a
  // kernel leaves it as it found it where its next launch needs that, e.g. arrival counts back at zero).
  int64_t scratchWords = 0;
};

constexpr uint32_t kWholeRow = 1u << 30; // colsPerBlock covering any last dim: one block per row

// One element per thread over all of operand `operand`, in blocks of 256.
void flatGeometry(Spec &s, uint32_t operand) {
  s.geometry.flat = true;
  s.geometry.colsPerBlock = s.geometry.block = 256;
  s.geometry.geometryOperand = operand;
}

bool elementCopyDtype(const OperandDesc &o, std::string &why) {
  if (!elementType(o.dtype)) {
    why = "no element type of this size";
    return false;
  }
  return true;
}

bool gather(const LaunchDesc &l, Spec &s, std::string &why) {
  const int64_t rank = static_cast<int64_t>(l.inputs[0].shape.size());
  int64_t axis = l.attrs->getInt("axis", 0);
  if (axis < 0)
    axis += rank;
  if (rank == 0 || axis < 0 || axis >= rank) {
    why = "gather from a scalar or along an axis out of range";
    return false;
  }
  DType it = l.inputs[1].dtype;
  if ((it != DType::I64 && it != DType::I32) || !elementCopyDtype(l.inputs[0], why)) {
    why = why.empty() ? "indices that are not int64 or int32" : why;
    return false;
  }
  s.body = std::string("qGather<") + elementType(l.inputs[0].dtype) + ", " + (it == DType::I64 ? "i64" : "int") +
           ", " + std::to_string(axis) + ">(p);";
  flatGeometry(s, 2);
  return true;
}

bool transpose(const LaunchDesc &l, Spec &s, std::string &why) {
  const size_t rank = l.inputs[0].shape.size();
  if (rank == 0 || rank > 8 || !elementCopyDtype(l.inputs[0], why)) {
    why = why.empty() ? "rank 0 or above 8" : why;
    return false;
  }
  std::vector<int64_t> perm;
  if (!l.attrs->getInts("perm", perm)) {
    for (size_t d = 0; d < rank; ++d)
      perm.push_back(static_cast<int64_t>(rank - 1 - d));
  }
  if (perm.size() != rank) {
    why = "a permutation of another rank";
    return false;
  }
  for (int64_t &d : perm)
    d = d < 0 ? d + static_cast<int64_t>(rank) : d;
  // The last dim kept and static, of whole 16-byte vectors: qTransposeRows copies vectors.
  const int64_t last = l.inputs[0].shape.back(), bytes = static_cast<int64_t>(num::dtypeSize(l.inputs[0].dtype));
  const bool rows = perm.back() == static_cast<int64_t>(rank) - 1 && last > 0 && (last * bytes) % 16 == 0;
  std::ostringstream os;
  os << "const int perm[" << rank << "] = {";
  for (size_t d = 0; d < rank; ++d)
    os << (d ? ", " : "") << perm[d];
  os << "}; " << (rows ? "qTransposeRows<" : "qTranspose<") << elementType(l.inputs[0].dtype) << ", " << rank
     << ">(p, perm);";
  s.body = os.str();
  flatGeometry(s, 1);
  if (rows) // a thread per vector
    s.geometry.colsPerBlock = static_cast<uint32_t>(s.geometry.block * (16 / bytes));
  return true;
}

// The module's 16-bit float (qOpToFloat's type): of 16-bit weights, embedding tables and KV caches.
DType opType(const LaunchDesc &l) { return l.bf16 ? DType::BF16 : DType::F16; }

// The kernels' FP8 format of a dtype (weights, an FP8 KV cache): 1 E4M3FN, 2 E5M2; 0 for others.
int fp8Format(DType t) { return t == DType::F8E4M3FN ? 1 : t == DType::F8E5M2 ? 2 : 0; }

// Whether operand i of the launch is present, float32 and of this shape (an FP8 cache's scales, key offsets).
bool f32Operand(const LaunchDesc &l, size_t i, const std::vector<int64_t> &shape) {
  return i < l.inputs.size() && !l.inputs[i].absent && l.inputs[i].dtype == DType::F32 && l.inputs[i].shape == shape;
}

// An FP8 cache's scales (operand `at`: float32, one per kv head) and, where `offsets`, its key offsets (the next
// operand: float32 [kv heads, head dim]) as the template's pointer arguments. False with `why` for other operands.
bool cacheScaleArgs(const LaunchDesc &l, size_t at, int64_t heads, int64_t dim, bool offsets, std::string &args,
                    std::string &why) {
  if (!f32Operand(l, at, {heads}) || (offsets && !f32Operand(l, at + 1, {heads, dim}))) {
    why = "an FP8 cache without float32 scales per kv head (and offsets per kv head and channel)";
    return false;
  }
  args = ", qPtr<const float>(p.t[" + std::to_string(at) + "]), " +
         (offsets ? "qPtr<const float>(p.t[" + std::to_string(at + 1) + "])" : std::string("nullptr"));
  return true;
}

bool kvAppend(const LaunchDesc &l, Spec &s, std::string &why) {
  // An FP8 cache [batch, kv heads, capacity, head dim] along axis 2 of float32 entries: scales (and key offsets)
  // operands 3 (and 4).
  if (const int fp8 = fp8Format(l.inputs[0].dtype)) {
    const OperandDesc &cache = l.inputs[0];
    std::string args;
    if (cache.shape.size() != 4 || l.attrs->getInt("axis", 2) != 2 || l.inputs[1].dtype != DType::F32 ||
        !cacheScaleArgs(l, 3, cache.shape[1], cache.shape[3], l.inputs.size() > 4, args, why)) {
      why = why.empty() ? "an FP8 cache other than [batch, kv heads, capacity, head dim] of float32 entries" : why;
      return false;
    }
    s.body = "qKvAppend<u8, 2, false, " + std::to_string(fp8) + ", " + std::to_string(l.inputs.size()) + ">(p" +
             args + ");";
    flatGeometry(s, 1);
    return true;
  }
  const int64_t rank = static_cast<int64_t>(l.inputs[0].shape.size());
  int64_t axis = l.attrs->getInt("axis", 2);
  if (axis < 0)
    axis += rank;
  // A 16-bit cache (--kv-cache=f16 or bf16, the module's 16-bit float) takes float32 entries, rounded as they are
  // stored.
  const bool half = l.inputs[0].dtype == opType(l) && l.inputs[1].dtype == DType::F32;
  if (axis <= 0 || axis >= rank || !elementCopyDtype(l.inputs[0], why) ||
      (l.inputs[1].dtype != l.inputs[0].dtype && !half)) {
    why = why.empty() ? "an axis out of range, or entries of another dtype than the cache's" : why;
    return false;
  }
  s.body = std::string("qKvAppend<") + elementType(l.inputs[0].dtype) + ", " + std::to_string(axis) +
           (half ? ", true" : "") + ">(p);";
  flatGeometry(s, 1);
  return true;
}

// The kernel type of rotary positions (int64, int32 or float32), or null.
const char *positionType(DType t) {
  return t == DType::I64 ? "i64" : t == DType::I32 ? "int" : t == DType::F32 ? "float" : nullptr;
}

// The cache, entries and length, an FP8 cache's scales (and key offsets), then positions and inv_freq.
bool kvAppendRotary(const LaunchDesc &l, Spec &s, std::string &why) {
  const OperandDesc &x = l.inputs[1];
  const size_t n = l.inputs.size();
  const int64_t style = l.attrs->getInt("style", -1);
  const char *pt = positionType(l.inputs[n - 2].dtype);
  const DType cache = l.inputs[0].dtype;
  const int fp8 = fp8Format(l.inputs[0].dtype);
  if (x.dtype != DType::F32 || (cache != DType::F32 && cache != opType(l) && !fp8) ||
      l.inputs[n - 1].dtype != DType::F32 || x.shape.size() != 4 || !pt || (style != 0 && style != 1) ||
      (fp8 ? n != 6 && n != 7 : n != 5)) {
    why = std::string("not float32 [B, H, S, D] entries into a float32, ") + (l.bf16 ? "bfloat16" : "float16") +
          " or FP8 cache (with its scales)";
    return false;
  }
  std::string args;
  if (fp8 && !cacheScaleArgs(l, 3, x.shape[1], x.shape[3], n == 7, args, why))
    return false;
  s.body = "qKvAppendRotary<" + std::to_string(style) + ", " + pt + ", " +
           (fp8 ? "QFp8<" + std::to_string(fp8) + ">" : cache == opType(l) ? "unsigned short" : "float") + ", " +
           std::to_string(n) + ">(p" + args + ");";
  s.geometry.block = 64;
  s.geometry.colsPerBlock = kWholeRow;
  s.geometry.geometryOperand = 1;
  return true;
}

bool kvAdvance(const LaunchDesc &l, Spec &s, std::string &why) {
  int64_t axis = l.attrs->getInt("axis", 2);
  if (axis < 0 || axis > 7) {
    why = "an axis out of range";
    return false;
  }
  s.body = "qKvAdvance<" + std::to_string(axis) + ">(p);";
  s.geometry.flat = true;
  s.geometry.block = 32;
  s.geometry.colsPerBlock = kWholeRow;
  s.geometry.geometryOperand = 2;
  return true;
}

bool gatedAct(const LaunchDesc &l, Spec &s, std::string &why) {
  int64_t act = l.attrs->getInt("activation", -1);
  if (act < 0 || act > 2 || !allF32(l.inputs)) {
    why = "not float32, or an unknown activation";
    return false;
  }
  // A static last dim of whole float4s: a thread per 4 elements.
  const int64_t last = l.results[0].shape.empty() ? -1 : l.results[0].shape.back();
  const bool vec = last > 0 && last % 4 == 0;
  s.body = "qGatedAct<" + std::to_string(act) + (vec ? ", 4" : "") + ">(p);";
  flatGeometry(s, 2);
  if (vec)
    s.geometry.colsPerBlock = 4 * s.geometry.block;
  return true;
}

bool binary(const LaunchDesc &l, Spec &s, std::string &why) {
  std::string fn(l.attrs->getString("fn", ""));
  flatGeometry(s, 2);
  const DType a = l.inputs[0].dtype, b = l.inputs[1].dtype, y = l.results[0].dtype;
  const int cmp = fn == "equal" ? 0 : fn == "less" ? 1 : fn == "less_equal" ? 2 : fn == "greater" ? 3
                : fn == "greater_equal" ? 4 : -1;
  if (cmp >= 0 && a == b && (a == DType::I64 || a == DType::F32 || a == DType::I32) && y == DType::Bool) {
    s.body = "qCompare<" + std::to_string(cmp) + ", " + (a == DType::I64 ? "i64" : a == DType::I32 ? "int" : "float") +
             ">(p);";
    return true;
  }
  const int logic = fn == "and" ? 0 : fn == "or" ? 1 : fn == "xor" ? 2 : -1;
  if (logic >= 0 && a == DType::Bool && b == DType::Bool && y == DType::Bool) {
    s.body = "qLogic<" + std::to_string(logic) + ">(p);";
    return true;
  }
  int op = fn == "add" ? 0 : fn == "sub" ? 1 : fn == "mul" ? 2 : fn == "div" ? 3 : -1;
  const bool i64 = op >= 0 && op <= 2 && l.inputs[0].dtype == DType::I64 && l.inputs[1].dtype == DType::I64 &&
                   l.results[0].dtype == DType::I64;
  if (op < 0 || (!i64 && (!allF32(l.inputs) || !allF32(l.results))) || l.results[0].shape.size() > 8) {
    why = "binary '" + fn + "' on these dtypes";
    return false;
  }
  s.body = "qBinary<" + std::to_string(op) + (i64 ? ", i64" : "") + ">(p);";
  return true;
}

bool where(const LaunchDesc &l, Spec &s, std::string &why) {
  if (l.inputs[0].dtype != DType::Bool || !elementCopyDtype(l.inputs[1], why) || l.results[0].shape.size() > 8) {
    why = why.empty() ? "a condition that is not bool" : why;
    return false;
  }
  s.body = std::string("qWhere<") + elementType(l.inputs[1].dtype) + ">(p);";
  flatGeometry(s, 3);
  return true;
}

uint32_t normBlock(int64_t C) { return C < 0 || C >= 2048 ? 512 : C >= 512 ? 256 : C >= 128 ? 128 : 64; }

bool rmsNorm(const LaunchDesc &l, Spec &s, std::string &why, bool add) {
  if (!allF32(l.inputs) || l.inputs[0].shape.empty()) {
    why = "not float32";
    return false;
  }
  if (add && l.inputs[0].shape != l.inputs[1].shape) {
    why = "the residual add broadcasts";
    return false;
  }
  s.body = std::string(add ? "qAddRmsNorm" : "qRmsNorm") + "(p, " + doubleLiteral(l.attrs->getFloat("epsilon", 1e-5)) +
           ");";
  s.geometry.block = normBlock(lastDim(l.inputs[0]));
  s.geometry.colsPerBlock = kWholeRow;
  s.geometry.geometryOperand = add ? 4 : 2;
  return true;
}

std::string splitsLiteral(const std::vector<int64_t> &splits) {
  std::ostringstream os;
  os << "const QSplits<" << splits.size() << "> splits = {{";
  for (size_t i = 0; i < splits.size(); ++i)
    os << (i ? ", " : "") << splits[i] << "LL";
  os << "}};";
  return os.str();
}

// Trailing template arguments that have defaults, each (value, default): written up to the last one that differs
// from its default, so that a specialization names only what it changes.
std::string trailingArgs(std::initializer_list<std::pair<int64_t, int64_t>> args) {
  std::string out, pending;
  for (const auto &[value, dflt] : args) {
    pending += ", " + std::to_string(value);
    if (value != dflt)
      out += pending, pending.clear();
  }
  return out;
}

// Rows per block: one for a single static row (decode), else 8.
int linearRows(const OperandDesc &x) { return rowsIfStatic(x) == 1 ? 1 : 8; }

bool linear(const LaunchDesc &l, Spec &s, std::string &why, bool split) {
  const OperandDesc &x = l.inputs[0], &w = l.inputs[1];
  if (!allF32(l.inputs) || w.shape.size() != 2 || !isStatic(w) || x.shape.empty() || lastDim(x) != w.shape[0]) {
    why = "not a float32 product with a static 2-D right operand";
    return false;
  }
  std::vector<int64_t> splits;
  if (!split || !l.attrs->getInts("splits", splits))
    splits = {w.shape[1]};
  if (splits.size() != l.results.size() || splits.size() > 8) {
    why = "more than 8 outputs";
    return false;
  }
  const bool bias = split && l.inputs.size() > 2 && !l.inputs[2].absent;
  const int rows = linearRows(x), kchunk = 8192 / rows > 1024 ? 1024 : 8192 / rows;
  s.body = splitsLiteral(splits) + " qLinear<" + std::to_string(rows) + ", " + std::to_string(kchunk) + ", " +
           std::to_string(splits.size()) + ", " + std::to_string(l.inputs.size()) + ", " + (bias ? "true" : "false") +
           ">(p, splits);";
  s.geometry.block = w.shape[1] >= 256 ? 256 : 128;
  s.geometry.rowsPerBlock = static_cast<uint32_t>(rows);
  s.geometry.colsPerBlock = s.geometry.block;
  s.geometry.cols = static_cast<uint64_t>(w.shape[1]);
  s.geometry.geometryOperand = 0;
  return true;
}

// The SMs of the GPUs the matrix-vector geometry is chosen for (H100/H200; others run the kernels correctly, with
// another balance).
constexpr int64_t kGemvSms = 132;

// qGemvRow's launch for `tiles` tiles of 16 weight rows, K in `chunks` chunks of 4 words, on a GPU of 132 SMs
// (H100/H200; other GPUs run it correctly, with another balance). Registers are capped at 128 per thread for 16
// warps per SM (at 80, 24 warps, the int4 kernel spilled and ran slower): blocksPerSm = 16 / warps, fewer where the
// block's shared memory (x split, `xBytes`, and the reductions) allows fewer. A block's warps form groups side by
// side (warpTiles), each group's warps (ks = warps / warpTiles) split K; a group takes tilesPerBlock tiles one
// after the other over the x the block split once. All blocks are resident at once (one wave). The choice
// maximizes balance (the average tiles per SM over the most any SM takes) x the square root of the warps per SM (up
// to 16) that keep loads in flight x c / (c + 8), c = chunks per warp and tile (a tile's fixed costs, its
// reductions and epilogue, against its chunks) x (warps / 16)^0.05, a slight preference for larger blocks (fewer
// splits of x: at equal balance and chunks per warp, the gated product ran 16% slower in blocks of 4 warps than of
// 16); ties go to more warps per block. Measured on the
// H200 (bench/gpu/README.md, int4 g128, Llama-3-8B's shapes; the weights of a 16-row tile are a warp's stream):
// gated gate/up (1792 tiles of 32 chunks) 33.1 us with 8 warps splitting K over 7 tiles, 28.5 us with 16 warps side
// by side, one tile each (112 blocks); down (256 tiles of 112 chunks) 19.2 -> 16.8 us as 2 groups of 8; o (256 of
// 32) 7.7 -> 6.9 us as 2 groups of 4; q/k/v (384 of 32) stays 4 warps splitting K (9.6 us, 9.7 in 4 groups of 2).
struct RowGemvGeometry {
  int64_t tilesPerBlock = 1; // per group of warps
  int warps = 1, blocksPerSm = 16, warpTiles = 1;
};
RowGemvGeometry rowGemvGeometry(int64_t tiles, int64_t chunks, int64_t xBytes) {
  constexpr int64_t kSms = kGemvSms, kSharedPerSm = 228 << 10, kWarpsPerSm = 16;
  const int64_t perBlockShared = xBytes + 16 * 2 * 32 * 4 + 16 * 8 + 1024; // x, red, sums, the system's 1 KB
  RowGemvGeometry best;
  double bestScore = -1.0;
  for (int warps : {16, 8, 4, 2, 1}) {
    const int64_t resident = std::min<int64_t>(kWarpsPerSm / warps, kSharedPerSm / perBlockShared);
    if (resident < 1)
      continue;
    for (int ks = 1; ks <= warps; ks *= 2) {
      if (ks > 1 && chunks < 4 * ks) // each warp at least two batches of 2 chunks per tile
        break;
      const int groups = warps / ks;
      const double chunksPerWarp = static_cast<double>(chunks) / ks, tileCost = chunksPerWarp / (chunksPerWarp + 8);
      for (int64_t perGroup = std::max<int64_t>(1, (tiles + kSms * resident * groups - 1) / (kSms * resident * groups));
           perGroup <= tiles; ++perGroup) {
        const int64_t perBlock = perGroup * groups, blocks = (tiles + perBlock - 1) / perBlock,
                      perSm = (blocks + kSms - 1) / kSms;
        const double balance = static_cast<double>(tiles) / kSms / static_cast<double>(perSm * perBlock);
        const double score = balance * tileCost *
                             std::sqrt(std::min(1.0, static_cast<double>(perSm * warps) / kWarpsPerSm)) *
                             std::pow(warps / 16.0, 0.05);
        if (score > bestScore + 1e-9) {
          bestScore = score;
          best = {perGroup, warps, static_cast<int>(resident), groups};
        }
        if (perSm == 1)
          break; // more tiles per group only idle SMs
      }
    }
  }
  return best;
}

// The most warps (a power of two) a qGemvMma block of `rt` tiles per warp and `mt` tiles of 8 rows of x reduces
// over: its halving rounds keep half the warps' partial sums in at most 40 KB of static shared memory.
int qGemvMmaMaxWarps(int rt, int mt, bool norm) {
  const int64_t slotBytes = (rt * mt * 4 + (norm ? mt : 0)) * 32 * 4;
  return slotBytes * 8 <= 40960 ? 16 : slotBytes * 4 <= 40960 ? 8 : 4;
}

// The blocks (one an SM) in clusters of `size` that a GPU of kGemvSms SMs runs at once: a cluster lies within one
// GPC, and the GPCs' SM counts differ, so sizes that divide them badly leave SMs out. Measured on an H100 SXM
// (cudaOccupancyMaxActiveClusters; blocks of 512 threads and 120 KB of shared memory): 132 blocks in clusters of 1
// or 2, 117 of 3, 120 of 4, 110 of 5, 102 of 6, 105 of 7, 120 of 8; kept with 5% to spare for another part's GPCs.
// A grid of more clusters runs in two waves (16 rows, K=14336 N=4096: 112 blocks in clusters of 7 took 41.1 us,
// 96 in clusters of 6 24.8).
int64_t clusterBlocks(int size) {
  static constexpr int64_t kMeasured[] = {132, 132, 132, 117, 120, 110, 102, 105, 120};
  return size <= 2 ? kGemvSms : kMeasured[std::min(size, 8)] * 19 / 20;
}

// What qGemvStaged's slices meeting in the launch's scratch (partial sums to L2 and back, an atomic count) costs
// beyond meeting in a cluster (distributed shared memory), in stagedGemvGeometry's units (~0.5 us each at 16 rows):
// the same layout (16 rows, K=4096 N=14336, 112 blocks in 2 slices) took 17.8-17.9 us in clusters and 18.9-19.2
// in the scratch (H100, cold weights, float16 scales; bench/gpu/README.md).
constexpr double kScratchMeet = 2.0;

// qGemvStaged's layout for a product of `rows` rows of x (-1: not known at compile time, up to 16) in `mt` tiles of
// 8, `tiles` 16-row weight tiles and `chunks` 4-word chunks of K (`steps` k-steps each), or warps = 0 where qGemvMma
// takes it: blocks of `warps` warps with `tiles` tiles each, K in `slices` (a cluster's blocks), rings of `stages`
// chunks per warp; its dynamic shared memory: x's float16 fragments of a slice (32 bytes per chunk, k-step and row
// of x, and 32 per chunk and k-step), the rings (1 KB per tile and chunk) and the rows' sums of squares (two parts
// a row). Blocks of 16 warps (one an SM: 128 registers a thread) in one wave of clusters (clusterBlocks); of the
// layouts with 1 or 2 tiles a warp and 1-8 slices of at least 4 chunks, the one of least modelled time: per wave of
// clusters, 16 + (1 + the chunks a warp multiplies per tile) per tile. A block streams its weights at about the
// same rate whatever its layout (~28 GB/s an SM, the loop), so its time is its chunks plus a fixed part (x's split,
// the pipeline's fill, launch and cluster barrier: ~16 chunks) and the reduction of its partial sums (~1 chunk per
// tile a warp). Fitted to the phase timer's layouts and the measured 16-row int4 g128 products (H100, cold weights;
// bench/gpu/README.md): K=4096 N=14336 112 blocks of 1 tile in 2 slices 18.3 us (2 tiles, 4 slices 18.5), K=14336
// N=4096 96 blocks of 1 tile in 6 slices 20.5 us (2 tiles, 8 slices, 64 blocks 28.7 in the timer against 24.3).
// With 5+ static rows the slices may meet in the scratch instead of a cluster, its blocks one an SM wherever they
// fall, at kScratchMeet more: K=14336 N=4096 then takes 128 blocks in 8 slices (16 rows 20.0-20.5 us against
// 21.0-21.3 in 6 slices of a cluster, 8 rows 17.8-18.2 against 17.9-18.1), K=4096 N=14336 stays in its clusters.
// Rows (where qGemvMma's x loads, a lane's own from L1, grow with them): 5-16 on 64+ tiles (8 rows, float16 scales:
// K=4096 N=14336 19.0 -> 16.5 us, K=14336 N=4096 25.1 -> 18.2 against qGemvMma); 2-4 only where the layout's
// blocks take 5/6 of the SMs or more (4 rows, K=4096 N=14336 in 112 blocks: 17.8 -> 16.3 us; K=14336 N=4096 in 96
// blocks stays on qGemvMma: 2 rows 16.8 against 17.8, 4 rows 17.9 against 17.9, float32 scales 17.4 against 18.0).
struct StagedGemvGeometry {
  int warps = 0, tiles = 2, slices = 1, stages = 2;
  bool split = false; // the slices meet in the launch's scratch on sm_90 too (else in a cluster)
  int64_t sharedBytes = 0;
};
StagedGemvGeometry stagedGemvGeometry(int64_t rows, int64_t mt, int64_t tiles, int64_t chunks, int steps,
                                      const GemvTuning &tune) {
  StagedGemvGeometry g;
  if (tune.staged < 0 || (tune.staged == 0 && ((rows >= 0 && rows < 2) || tiles < 64)))
    return g;
  const int warps = tune.warps == 4 || tune.warps == 8 || tune.warps == 16 ? tune.warps : 16;
  const int stages = tune.batch >= 2 && tune.batch <= 4 ? tune.batch : 2;
  auto shared = [&](int rt, int slices) {
    const int64_t sliceChunks = (chunks + slices - 1) / slices;
    return sliceChunks * steps * (32 * mt + 4) * 8 + int64_t{warps} * stages * rt * 1024 + 8 * mt * 8;
  };
  // Tiles a warp: 1 or 2 (tune tiles: 1, 2 or 4); slices: 1-8 of at least 4 chunks (tune ks: that many).
  const bool tunedTiles = tune.tiles == 1 || tune.tiles == 2 || tune.tiles == 4;
  const int tileChoices[2] = {tunedTiles ? tune.tiles : 1, 2};
  double best = 0.0;
  int64_t blocks = 0;
  for (int i = 0; i < (tunedTiles ? 1 : 2); ++i) {
    const int t = tileChoices[i];
    const int64_t columns = (tiles + int64_t{warps} * t - 1) / (int64_t{warps} * t);
    for (int ks = 1; ks <= 8; ++ks) {
      if (tune.slices >= 1 && tune.slices <= 8 ? ks != tune.slices
                                               : (ks > 1 && chunks < 4 * ks) || shared(t, ks) > (200 << 10))
        continue;
      // The slices meet in a cluster (its blocks placed where clusters fit) or in the launch's scratch (blocks
      // anywhere, one an SM; the partial sums' round trip through L2 costs kScratchMeet): the scratch only for 5+
      // static rows (tune split=1 or -1: the one way).
      for (const bool scratch : {false, true}) {
        if (scratch ? ks == 1 || tune.split < 0 || (tune.split == 0 && rows < 5) : tune.split > 0 && ks > 1)
          continue;
        const int64_t fit = scratch ? kGemvSms : clusterBlocks(ks);
        const int64_t waves = (columns * ks + fit - 1) / fit;
        const double cost = static_cast<double>(waves) * (16.0 + t * (1.0 + (chunks + ks - 1) / ks)) +
                            (scratch ? kScratchMeet : 0.0);
        if (g.warps == 0 || cost < best - 1e-9) {
          best = cost, blocks = columns * ks;
          g.warps = warps, g.tiles = t, g.slices = ks, g.stages = stages, g.split = scratch;
        }
      }
    }
  }
  if (tune.staged == 0 && rows >= 2 && rows <= 4 && blocks * 6 < kGemvSms * 5)
    g.warps = 0;
  if (g.warps) {
    g.sharedBytes = shared(g.tiles, g.slices);
    if (g.sharedBytes > (200 << 10))
      g.warps = 0; // K too deep for the slices: qGemvMma
  }
  return g;
}

// matmul_q, matmul_q_split (`split`) and matmul_q_gated (`gated`: one result, act(gate) * up).
bool linearQ(const LaunchDesc &l, Spec &s, std::string &why, bool split, bool gated) {
  const OperandDesc &x = l.inputs[0], &w = l.inputs[1];
  const int64_t bits = l.attrs->getInt("bits", 4), K = x.shape.empty() ? -1 : lastDim(x);
  const int64_t group = bits == 16 ? K : l.attrs->getInt("group_size", K);
  auto given = [&](size_t i) { return l.inputs.size() > i && !l.inputs[i].absent; };
  const bool half = bits == 16 && w.dtype == opType(l) && !given(2) && !given(3);
  const OperandDesc *sc = l.inputs.size() > 2 ? &l.inputs[2] : nullptr;
  // qopt-fuse-norm-product's operands: x normalized in the prologue (4: the rms_norm scale, [K]), a residual added
  // in the epilogue (5).
  const bool norm = given(4), residual = given(5);
  if ((norm && (l.inputs[4].dtype != DType::F32 || l.inputs[4].shape != std::vector<int64_t>{K})) ||
      (residual && (l.inputs[5].dtype != DType::F32 || l.results.size() != 1 || gated))) {
    why = "a norm scale or residual the kernels do not take";
    return false;
  }
  const std::string eps = norm ? ", " + doubleLiteral(l.attrs->getFloat("norm_epsilon", 1e-5)) : "";
  // FP8 weight codes (fp8w): 1 E4M3FN, 2 E5M2. With 8-bit activations (W8A8: act_fp8 over FP8 weights, act_int8
  // over int8 ones; 1 static under act_scale, 2 a scale per row) x is rounded to the weights' format in the kernel
  // that reads it: qGemvRow for one static row (decode), else qLinearQ; the runtime hands products of many rows to
  // cuBLASLt's FP8 or int8 tensor cores.
  const int fp8 = bits == 8 ? fp8Format(w.dtype) : 0;
  if (bits == 8 && w.dtype != DType::I8 && !fp8) {
    why = "8-bit weight codes of an unknown format";
    return false;
  }
  const int64_t actFp8 = l.attrs->getInt("act_fp8", 0), actInt8 = l.attrs->getInt("act_int8", 0);
  const int64_t act8 = actFp8 ? actFp8 : actInt8; // the kernels' ACT: 1 static, 2 per row
  if (actFp8 && (!fp8 || (actFp8 != 1 && actFp8 != 2))) {
    why = "FP8 activations without FP8 weights";
    return false;
  }
  if (actInt8 && (actFp8 || bits != 8 || w.dtype != DType::I8 || (actInt8 != 1 && actInt8 != 2))) {
    why = "INT8 activations without int8 weights";
    return false;
  }
  if ((act8 == 1) != given(6) || (act8 == 1 && !f32Operand(l, 6, {1}))) {
    why = "a static activation scale other than one float32 [1] operand 6 (only with act_fp8 or act_int8 1)";
    return false;
  }
  // The kernels' trailing arguments: the norm's epsilon, then (8-bit activations) the static scale, read from its
  // operand (a literal would make every layer's product a kernel of its own).
  const std::string tail =
      !act8 ? eps : (norm ? eps : ", 0.0") + (act8 == 1 ? ", *qPtr<const float>(p.t[6])" : ", 0.0f");
  if (x.dtype != DType::F32 || w.shape.size() != 2 || !isStatic(w) || K <= 0 || group <= 0 || K % group != 0 ||
      !(half || ((bits == 3 || bits == 4 || bits == 8) && sc && !sc->absent &&
                 (sc->dtype == DType::F32 || (bits != 8 && sc->dtype == DType::F16)) && sc->shape.size() == 2))) {
    why = "an unsupported quantized layout";
    return false;
  }
  const bool zeros = given(3);
  const int hs = !half && sc->dtype == DType::F16 ? 1 : 0; // float16 scales (QScales<1>)
  // Weights in a tile layout (qopt-tile-weights, QuantFormat.h): the few-row products' kernels below read them.
  const int64_t layout = l.attrs->getInt("weight_layout", num::quant::kRowLayout);
  const bool tiled = layout == num::quant::kTileLayout || layout == num::quant::kPairedTileLayout;
  if ((layout != num::quant::kRowLayout && !tiled) ||
      (tiled && !num::quant::canTileRows(w.shape[0], w.shape[1] * static_cast<int64_t>(num::dtypeSize(w.dtype))))) {
    why = "a weight layout the kernels do not read";
    return false;
  }
  const bool perTensor = !half && K / group == 1 && sc->shape == std::vector<int64_t>{1, 1};
  std::vector<int64_t> splits;
  if (!split || !l.attrs->getInts("splits", splits))
    splits = {w.shape[0]};
  if (splits.size() != l.results.size() || splits.size() > 8) {
    why = "more than 8 outputs";
    return false;
  }
  const int64_t act = gated ? l.attrs->getInt("activation", -1) : -1;
  if (gated && (act < 0 || act > 2 || w.shape[0] % 2 != 0)) {
    why = "an unknown activation or an odd number of stacked gate and up channels";
    return false;
  }
  // Rows 16-byte aligned and scale groups of whole words: the tensor-core GEMVs, for decode and any product the
  // runtime does not hand to cuBLASLt (it takes those of more than 16 rows). One static row (decode) of codes:
  // qGemvRow, float32-accurate, x split in shared memory (4 K bytes), geometry from `rowGemvGeometry`. One row of
  // float16 weights: qGemvHalf, whole-row loads, x rounded to float16 in hidden layers and as float16 hi + lo,
  // float32-accurate, in an output head, whose logits decide the greedy token (x rounded there let stories15M
  // awq4's greedy text part from the CPU's at a near tie; hi + lo costs 2-6% per product, 4.4 -> 4.6 ms per
  // Llama-3-8B float16 decode step in every layer; tune exact=1/-1 forces either; qGemvRow's per-block split of x
  // cost that decode 30%, its 1 GB lm_head running 8016 one-warp blocks that each split all of x). Else qGemvMma,
  // x in float16: 8 rows of x per block when the launch has at most 8, else 16; its warps split K, as many as
  // bring the warps in flight to about 16 per SM of a 132-SM GPU while each keeps 2 batches of 4 chunks.
  const int wordK = half ? 8 : bits == 8 ? 16 : 32, chunkK = 4 * wordK;
  // 8-bit activations take qGemvRow's float32 split of x (one row) or qLinearQ: not the float16 fragments of x
  // that qGemvMma and qGemvStaged split.
  const bool actRow = rowsIfStatic(x) == 1 && 4 * K <= (200 << 10) && !(l.tuning && l.tuning->exact < 0);
  if (K % wordK == 0 && (half || perTensor || group % wordK == 0) && (!act8 || actRow)) {
    const int64_t staticRows = rowsIfStatic(x), mt = staticRows >= 1 && staticRows <= 8 ? 1 : 2;
    const int64_t tiles = (w.shape[0] + 15) / 16, chunks = (K + chunkK - 1) / chunkK;
    constexpr int64_t kMaxDynamicShared = 200 << 10;
    const GemvTuning tune = l.tuning ? *l.tuning : GemvTuning{};
    // tune exact=-1: one row of codes on qGemvMma too (x rounded to float16), for measuring it against qGemvRow.
    const bool row = staticRows == 1 && !half && 4 * K <= kMaxDynamicShared && tune.exact >= 0;
    // One row of FP8 codes with a scale per channel or tensor (fp8w): qGemvHalf's whole-row loads, the codes
    // converted by the hardware (sm_89+), x rounded to float16 as for float16 weights, 4 pairs of rows per warp (2,
    // with the next batch of loads in flight during the math, for K of 8192 and more); a gated product takes
    // qGemvRow (float32-accurate; tune half=1 / -1 forces either). Measured on the H200 (bench/gpu, E4M3 per
    // channel, Llama-3-8B's decode products, qGemvRow -> this rule): q/k/v with its norm 12.9 -> 9.2 us, o with the
    // residual 8.6 -> 6.4, down with the residual 22.4 -> 18.6, K=4096 N=14336 21.7 -> 18.3; the gated gate/up with
    // its norm 40.7 us on qGemvRow against 45.0 here.
    const bool fp8Half = fp8 && !actFp8 && (perTensor || group == K) && tune.exact >= 0 &&
                         (tune.half > 0 || (tune.half == 0 && !gated));
    // FP8 codes of the few-row products (qGemvRow, qGemvMma, qGemvStaged) converted by the hardware where the
    // GPU has the instruction (sm_89+; tune cvt=-1: by bit moves everywhere).
    const int cvt = fp8 && tune.cvt < 0 ? 0 : 1;
    if (staticRows == 1 && (half || fp8Half) && !tiled) {
      // qGemvHalf: 2 pairs of rows per warp (tune `tiles`: 1, 2 or 4) and 2 warps splitting K, more (up to 8)
      // where the blocks would leave the GPU's 132 SMs fewer than 2 warps each. Measured on the H200 (bench/gpu,
      // Llama-3-8B's one-row products, 1/2/4 pairs x 2-16 warps): 2 x 2 is the fastest or within 2% of it at every
      // shape (gate/up 55.9 us, down 29.3, q/k/v 14.0, o 9.6; 4 warps: 55.8, 31.5, 15.3, 11.9).
      const bool pipelined = tune.pipe ? tune.pipe == 2 : fp8 && K >= 8192;
      const int rp = tune.tiles == 1 || tune.tiles == 2 || tune.tiles == 4 ? static_cast<int>(tune.tiles)
                     : fp8 && !pipelined                                   ? 4
                                                                           : 2;
      const bool exact = tune.exact > 0 || (tune.exact == 0 && l.outputHead);
      const int64_t halfChunks = (K + (fp8 ? 511 : 255)) / (fp8 ? 512 : 256);
      const int64_t halfTiles = (w.shape[0] + 2 * rp - 1) / (2 * rp);
      int warps = halfChunks >= 2 ? 2 : 1;
      while (warps < 8 && halfTiles * warps < 2 * kGemvSms && halfChunks >= 2 * warps)
        warps *= 2;
      // Groups of warps side by side over the same x (tune `wt`), each with its own tile, the block's warps
      // splitting K `warps` ways per group. Measured on the H200 (bench/gpu, one row, K = 4096): q/k/v with its
      // norm 18.65 us with 2 warps splitting K in 1536 blocks (each reading all of x and the scale from L2), 16.5
      // with 8 groups of one warp (192 blocks; 4 groups of one: 16.5, of two: 17.7); the gated gate/up with its
      // norm is fastest as it was (57.8 us; 8 groups 62.8). Without a norm 2 groups of 2 warps gain 1-3% (o 9.65
      // -> 9.36 us, down 29.2 -> 28.9, q/k/v 13.9 -> 13.8), measured with x rounded (not in heads). Groups only
      // where they leave at least one block per SM (8 groups) or two (2 groups). Tuning either replaces the rule.
      int wg = 1;
      if (tune.warps > 0 || tune.warpTiles > 0) {
        if (tune.warps > 0 && tune.warps <= 16)
          warps = tune.warps;
        if (tune.warpTiles > 0 && tune.warpTiles * warps <= 16)
          wg = static_cast<int>(tune.warpTiles);
      } else if (norm && !gated && halfTiles >= 8 * kGemvSms) {
        wg = 8, warps = 1;
      } else if (!norm && !exact && warps <= 8 && halfTiles >= 2 * 2 * kGemvSms) {
        wg = 2;
      }
      s.body = splitsLiteral(splits) + " qGemvHalf<" + std::to_string(splits.size()) + ", " +
               std::to_string(l.inputs.size()) +
               trailingArgs({{act, -1}, {norm, 0}, {residual, 0}, {rp, 1}, {exact ? 1 : 0, 0}, {wg, 1}, {fp8, 0},
                             {fp8 && tune.cvt >= 0 ? 1 : 0, 0}, {pipelined ? 2 : 1, 1},
                             {tune.batch > 0 && tune.batch <= 4 ? tune.batch : 0, 0}}) + // tune batch: chunks per batch
               ">(p, splits" + eps + ");";
      s.geometry.block = static_cast<uint32_t>(32 * warps * wg);
      s.geometry.rowsPerBlock = 1;
      s.geometry.colsPerBlock = static_cast<uint32_t>(2 * rp * wg);
      s.geometry.cols = static_cast<uint64_t>(w.shape[0]);
      s.geometry.geometryOperand = 0;
      return true;
    }
    if (row) {
      RowGemvGeometry rg = rowGemvGeometry(tiles, chunks, 4 * K);
      if (tune.tiles > 0)
        rg.tilesPerBlock = tune.tiles;
      if (tune.warps > 0 && tune.warps <= 16)
        rg.warps = tune.warps, rg.warpTiles = 1; // the warps split K unless wt says otherwise
      if (tune.blocksPerSm > 0)
        rg.blocksPerSm = tune.blocksPerSm;
      if (tune.warpTiles > 0 && rg.warps % tune.warpTiles == 0)
        rg.warpTiles = tune.warpTiles;
      const int batch = tune.batch > 0 ? tune.batch : 2;
      // A chunk's words in one scale group: the row group's lanes share the scale and zero point loads.
      const bool chunkGroups = tune.groups ? tune.groups > 0 && group % chunkK == 0 : group % chunkK == 0;
      s.body = splitsLiteral(splits) + " qGemvRow<" + std::to_string(bits) + ", " + std::to_string(splits.size()) +
               ", " + std::to_string(l.inputs.size()) + ", " + (zeros ? "true" : "false") + ", " +
               (perTensor ? "true" : "false") +
               trailingArgs({{act, -1}, {rg.tilesPerBlock, 1}, {fp8, 0}, {norm, 0}, {residual, 0}, {batch, 2},
                             {chunkGroups, 0}, {rg.warpTiles, 1}, {act8, 0}, {hs, 0}, {layout, 0}, {cvt, 1}}) +
               ">(p, splits, " + std::to_string(group) + "LL" + tail + ");";
      s.geometry.block = static_cast<uint32_t>(32 * rg.warps);
      s.geometry.rowsPerBlock = 1;
      s.geometry.colsPerBlock = static_cast<uint32_t>(16 * rg.tilesPerBlock * rg.warpTiles);
      s.geometry.cols = static_cast<uint64_t>(w.shape[0]);
      s.geometry.sharedBytes = static_cast<uint32_t>(4 * K);
      s.geometry.geometryOperand = 0;
      s.minBlocks = rg.blocksPerSm;
      return true;
    }
    // A chunk in one group: its scale applied to the float32 products (tune groups=-1: to the float16 weights).
    const bool scaleAfter = !half && (perTensor || group == K || group % chunkK == 0) && tune.groups >= 0;
    const std::string operands = std::to_string(bits) + ", " + std::to_string(mt) + ", " +
                                 std::to_string(splits.size()) + ", " + std::to_string(l.inputs.size()) + ", " +
                                 (zeros ? "true" : "false") + ", " + (perTensor ? "true" : "false") + ", " +
                                 (scaleAfter ? "true" : "false");
    // 2-16 rows of x on 64+ tiles: qGemvStaged where stagedGemvGeometry's rule takes it (tune staged=1/-1 forces
    // either; tiles, warps, ks and batch set its layout). First measured on the H200 (bench/gpu, int4 g128, 16 rows):
    // K=4096 N=14336 29.5 -> 20.7 us, K=14336 N=4096 43.1 -> 32.1 us against qGemvMma.
    const StagedGemvGeometry sg = stagedGemvGeometry(staticRows, mt, tiles, chunks, wordK / 4, tune);
    if (sg.warps) {
      // Scratch where the slices may meet in it (always on sm_80, which has no clusters; on sm_90 where the layout
      // rule or tune split=1 says so): an arrival count and each slice's partial sums (SLOTS words a lane) and sums
      // of squares (XW parts a row of x) per block of grid x, for the blocks of the launch's static rows (one tile
      // of x where the rows are not static; a launch of more takes the slices in one block).
      const bool viaScratch = sg.split;
      std::string scratch;
      if (sg.slices > 1) {
        const int64_t rowTiles = staticRows >= 1 ? (staticRows + 8 * mt - 1) / (8 * mt) : 1;
        const int64_t columns = (w.shape[0] + 16 * sg.tiles * sg.warps - 1) / (16 * sg.tiles * sg.warps);
        const int64_t blocksCap = rowTiles * columns, slots = sg.tiles * mt * 4;
        const int64_t r = 8 * mt, xw = sg.warps > r ? sg.warps / r : 1; // the kernel's R and XW
        const int64_t perSlice = int64_t{sg.warps} * slots * 32 + (norm ? xw * r : 0);
        s.scratchWords = blocksCap * (1 + sg.slices * perSlice);
        scratch = (norm ? "" : ", 0.0") + std::string(", qScratch, ") + std::to_string(blocksCap) + "LL";
      }
      s.body = splitsLiteral(splits) + " qGemvStaged<" + operands +
               trailingArgs({{act, -1}, {fp8, 0}, {norm, 0}, {residual, 0}, {sg.tiles, 2}, {sg.slices, 1},
                             {sg.stages, 2}, {hs, 0}, {layout, 0}, {cvt, 1}, {viaScratch ? 1 : 0, 0}}) +
               ">(p, splits, " + std::to_string(group) + "LL" + eps + scratch + ");";
      s.geometry.block = static_cast<uint32_t>(32 * sg.warps);
      s.geometry.rowsPerBlock = static_cast<uint32_t>(8 * mt);
      s.geometry.colsPerBlock = static_cast<uint32_t>(16 * sg.tiles * sg.warps);
      s.geometry.cols = static_cast<uint64_t>(w.shape[0]);
      s.geometry.gridY = static_cast<uint32_t>(sg.slices);
      s.geometry.sharedBytes = static_cast<uint32_t>(sg.sharedBytes);
      s.geometry.geometryOperand = 0;
      s.clusterY = sg.slices > 1 && !viaScratch ? sg.slices : 0;
      // Registers capped at 128 (16 warps per SM, the blocks of 2 tiles per warp fit) unless tuned.
      s.minBlocks = tune.blocksPerSm > 0 ? tune.blocksPerSm : sg.tiles <= 2 ? 16 / sg.warps : 0;
      return true;
    }
    // Tiles of 16 weight rows per warp over the same x pairs (tune `tiles`: 1, 2, 4 or 8): as many as leave about
    // one block per SM (4 or 2), the block's warps splitting K about 8 chunks each (up to 16 warps); small
    // matrices keep one tile per warp, warps up to 8 while the GPU has fewer than 16 per SM and each keeps 2
    // batches. Measured on the H200 (bench/gpu, int4 g128, 4 and 16 rows of x; torch int4pack 25.7 / 70.3 and
    // 25.1 / 69.3 us in the same call): K=4096 N=14336 30.8 / 96.8 us with one tile and 8 warps, 18.7 / 29.4 with
    // 4 tiles and 4 warps (2 tiles: 30.5 / 50.0, 8 tiles and 8 warps: 20.4 / 29.6); K=14336 N=4096 25.0 / 83.6
    // us with one tile, 21.2 / 43.2 with 2 tiles and 16 warps (4 tiles and 8 warps: 30.5 / 47.5). x's loads and
    // float16 conversions are shared by the tiles; registers (about 180 at 4 tiles and 16 rows) bound them.
    int rt = 1, warps = 1;
    for (int r : {4, 2})
      if (rt == 1 && tiles / r >= kGemvSms * 7 / 8)
        rt = r;
    if (rt > 1)
      while (warps < qGemvMmaMaxWarps(rt, static_cast<int>(mt), norm) && chunks >= 6 * 2 * warps)
        warps *= 2;
    else
      while (warps < 8 && tiles * warps < 2112 && chunks >= 8 * 2 * warps)
        warps *= 2;
    if (tune.tiles == 1 || tune.tiles == 2 || tune.tiles == 4 || tune.tiles == 8)
      rt = static_cast<int>(tune.tiles);
    const int maxWarps = qGemvMmaMaxWarps(rt, static_cast<int>(mt), norm);
    if (tune.warps > 0 && (tune.warps & (tune.warps - 1)) == 0 && tune.warps <= maxWarps)
      warps = tune.warps;
    warps = std::min(warps, maxWarps); // the rule's warps under tuned tiles: within the reduction's shared memory
    s.body = splitsLiteral(splits) + " qGemvMma<" + operands +
             trailingArgs({{act, -1}, {fp8, 0}, {norm, 0}, {residual, 0}, {rt, 1}, {hs, 0}, {layout, 0},
                           {cvt, 1}}) +
             ">(p, splits, " +
             std::to_string(group) + "LL" + eps + ");";
    s.geometry.block = static_cast<uint32_t>(32 * warps);
    s.geometry.rowsPerBlock = static_cast<uint32_t>(8 * mt);
    s.geometry.colsPerBlock = static_cast<uint32_t>(16 * rt);
    if (tune.blocksPerSm > 0)
      s.minBlocks = tune.blocksPerSm;
    else if (warps == 16)
      s.minBlocks = 1; // registers capped at 128 so that a block of 512 threads launches
    s.geometry.cols = static_cast<uint64_t>(w.shape[0]);
    s.geometry.geometryOperand = 0;
    return true;
  }
  // The rest (8-bit activations over several rows, rows that are not 16-byte words, more rows without cuBLASLt):
  // qLinearQ on CUDA cores, a warp per output channel (a gated product's: its gate and up rows), rows as they are.
  if (tiled) {
    why = "weights in the tile layout outside the few-row products' kernels";
    return false;
  }
  const int rows = linearRows(x) == 1 ? 1 : 4, kchunk = rows == 1 ? 2048 : 1024;
  s.body = splitsLiteral(splits) + " qLinearQ<" + std::to_string(bits) + ", " + std::to_string(rows) + ", " +
           std::to_string(kchunk) + ", " + std::to_string(splits.size()) + ", " + std::to_string(l.inputs.size()) +
           ", " + (zeros ? "true" : "false") + ", " + (perTensor ? "true" : "false") +
           trailingArgs({{fp8, 0}, {norm, 0}, {residual, 0}, {act8, 0}, {act, -1}, {hs, 0}}) + ">(p, splits, " +
           std::to_string(group) + "LL" + tail + ");";
  s.geometry.block = 256;
  s.geometry.rowsPerBlock = static_cast<uint32_t>(rows);
  s.geometry.colsPerBlock = 256 / 32;
  s.geometry.cols = static_cast<uint64_t>(gated ? w.shape[0] / 2 : w.shape[0]);
  s.geometry.geometryOperand = 0;
  return true;
}

bool rotary(const LaunchDesc &l, Spec &s, std::string &why) {
  const OperandDesc &x = l.inputs[0], &pos = l.inputs[1];
  int64_t style = l.attrs->getInt("style", -1);
  const char *pt = positionType(pos.dtype);
  if (x.dtype != DType::F32 || l.inputs[2].dtype != DType::F32 || x.shape.size() != 4 || !pt ||
      (style != 0 && style != 1)) {
    why = "not float32 [B, H, S, D]";
    return false;
  }
  s.body = "qRotary<" + std::to_string(style) + ", " + pt + ">(p);";
  s.geometry.block = 64;
  s.geometry.colsPerBlock = kWholeRow;
  s.geometry.geometryOperand = 3;
  return true;
}

// qDecodeAttentionTc's keys per warp in a chunk, and the shared memory it may take.
constexpr int64_t kDecodeTcKeys = 16, kDecodeSharedBudget = 160 << 10;
// Decode attention's blocks: a kv head's rows times as many slices of the keys as bring the launch to about this
// many blocks (a long context's keys streamed by every SM, 132 on an H100/H200 SXM, 108 on an A100), at most 32.
constexpr int64_t kDecodeBlocks = 128, kDecodeMaxSlices = 32;

bool attention(const LaunchDesc &l, Spec &s, std::string &why) {
  const OperandDesc &q = l.inputs[0], &v = l.inputs[2];
  const bool mask = l.inputs.size() > 3 && !l.inputs[3].absent;
  const bool cache = l.inputs.size() > 4 && !l.inputs[4].absent;
  const DType maskType = mask ? l.inputs[3].dtype : DType::Undefined;
  // Keys and values of a 16-bit KV cache (--kv-cache=f16 or bf16, the module's 16-bit float) are read as such by
  // every kernel below; an FP8 one's (fp8, fp8_e5m2) as codes, the kv heads' key and value scales operands 5 and 6.
  const bool halfCache = cache && l.inputs[1].dtype == opType(l) && l.inputs[2].dtype == opType(l);
  const int fp8 = cache && l.inputs[2].dtype == l.inputs[1].dtype ? fp8Format(l.inputs[1].dtype) : 0;
  if (fp8 && (l.inputs[1].shape.size() != 4 || !f32Operand(l, 5, {l.inputs[1].shape[1]}) ||
              !f32Operand(l, 6, {l.inputs[1].shape[1]}))) {
    why = "FP8 caches without float32 key and value scales per kv head";
    return false;
  }
  const std::string scaleArgs = fp8 ? ", qPtr<const float>(p.t[5]), qPtr<const float>(p.t[6])" : "";
  if (!allF32({l.inputs[0]}) || (!halfCache && !fp8 && !allF32({l.inputs[1], l.inputs[2]})) || q.shape.size() != 4 ||
      v.shape.size() != 4 || q.shape[3] < 0 || q.shape[3] > 512 || v.shape[3] < 0 || v.shape[3] > 512 ||
      (mask && ((maskType != DType::Bool && maskType != DType::F32) || l.inputs[3].shape.size() > 4 || cache))) {
    why = "not float32 (keys and values: or a float16 or FP8 cache) with head dims up to 512 and a bool or float32 "
          "mask";
    return false;
  }
  const std::string kvType = halfCache ? ", unsigned short" : fp8 ? ", QFp8<" + std::to_string(fp8) + ">" : "";
  // Rotary queries (qopt-fuse-rotary: positions and inv_freq, the last two operands, after an FP8 cache's scales):
  // rotated as they are loaded, by the decode and the row kernels.
  const size_t r0 = fp8 ? 7 : 5;
  const bool rotary = l.inputs.size() > r0 && !l.inputs[r0].absent;
  const int64_t style = rotary ? l.attrs->getInt("rotary_style", -1) : -1;
  const char *pt = rotary ? positionType(l.inputs[r0].dtype) : "i64";
  if (rotary && (!pt || (style != 0 && style != 1) || l.inputs.size() != r0 + 2 ||
                 l.inputs[r0 + 1].dtype != DType::F32)) {
    why = "rotary queries with other than int64, int32 or float32 positions and float32 frequencies";
    return false;
  }
  // The trailing template arguments: rotary style and position type, then the cache's element type.
  const std::string rot = rotary ? ", " + std::to_string(style) + ", " + pt + kvType
                          : !kvType.empty() ? ", -1, i64" + kvType
                                            : "";
  const bool causal = l.attrs->getInt("causal", 0) != 0, zeroNan = l.attrs->getInt("zero_nan_rows", 0) != 0;
  // Queries of a prompt (more than one row, or a dynamic count) without a mask: the tensor-core kernel, for equal
  // head dims that are multiples of 16 up to 128.
  const int64_t D = q.shape[3];
  // One query row per head over the KV state (a decode step): split over the cache length, a block per KV head's
  // group of query heads and slice of the keys.
  const OperandDesc &k = l.inputs[1];
  const int64_t H = q.shape[1], Hkv = k.shape.size() == 4 ? k.shape[1] : -1;
  const bool decode = cache && !mask && q.shape[2] == 1 && D % 4 == 0 && D <= 256 && k.shape.size() == 4 &&
                      k.shape[3] == D && v.shape[3] == D && H > 0 && Hkv > 0 && H % Hkv == 0 && H / Hkv <= 8;
  if (decode) {
    // Both kernels: a block per KV head's G query heads and slice of the keys (grid y), the slices meeting in the
    // scratch: sized for the cache's batch (a static dim: the runtime's state), else one slice.
    const int64_t G = H / Hkv, rowsCap = k.shape[0] > 0 ? k.shape[0] * Hkv : -1;
    int64_t slices = rowsCap > 0 ? std::clamp<int64_t>(kDecodeBlocks / rowsCap, 1, kDecodeMaxSlices) : 1;
    if (rowsCap > 0 && l.tuning && l.tuning->slices >= 1 && l.tuning->slices <= kDecodeMaxSlices)
      slices = l.tuning->slices;
    s.minBlocks = 1; // the registers a block's threads may take: all of them
    s.geometry.rowsPerBlock = static_cast<uint32_t>(G);
    s.geometry.colsPerBlock = kWholeRow;
    s.geometry.gridY = static_cast<uint32_t>(slices);
    s.geometry.geometryOperand = static_cast<uint32_t>(l.inputs.size());
    // (a count per row, and per row and slice m[G], l[G], o[G][D]: QDecodeSplit)
    s.scratchWords = slices > 1 ? rowsCap * (1 + slices * (2 * G + G * D)) : 0;
    const std::string split = slices > 1 ? "(p, qScratch, " + std::to_string(rowsCap) + ", " : "(p, nullptr, 0, ";
    if ((halfCache || fp8) && D % 16 == 0) {
      // On the tensor cores (qDecodeAttentionTc): 8 warps of 16 keys a chunk (4 or 2 where two stages would not
      // fit in 160 KB: sm_80 grants 163), as many stages as fit (two to eight), QDecodeTcShared's bytes.
      // (The kernel check's --tune warps=W, batch=S: those warps and stages where they fit.)
      const int64_t KS = D + 8;
      int64_t warps = l.tuning && (l.tuning->warps == 2 || l.tuning->warps == 4) ? l.tuning->warps : 8;
      int64_t stage = 0, fixed = 0;
      for (;; warps /= 2) {
        const int64_t chunk = kDecodeTcKeys * warps;
        stage = 2 * chunk * (fp8 ? D + 16 : KS * 2);
        fixed = 16 * KS * 2 + 4 * G * D;
        if (warps == 2 || fixed + 2 * stage <= kDecodeSharedBudget)
          break;
      }
      int64_t stages = std::clamp<int64_t>((kDecodeSharedBudget - fixed) / stage, 2, 8);
      if (l.tuning && l.tuning->batch >= 2 && l.tuning->batch < stages)
        stages = l.tuning->batch;
      s.body = "qDecodeAttentionTc<" + std::to_string(G) + ", " + std::to_string(D) + ", " +
               std::to_string(warps) + ", " + std::to_string(kDecodeTcKeys) + ", " + std::to_string(stages) + ", " +
               (zeroNan ? "true" : "false") + ", " + std::to_string(l.inputs.size()) + ", " +
               (rotary ? std::to_string(style) + ", " + pt : "-1, i64") + ", " + std::to_string(fp8) + ">" + split +
               floatLiteral(l.attrs->getFloat("scale", 1.0)) + scaleArgs + ");";
      s.geometry.block = static_cast<uint32_t>(32 * warps);
      s.geometry.sharedBytes = static_cast<uint32_t>(fixed + stages * stage);
      return true;
    }
    // qDecodeAttention: 512 threads (registers capped at 128 so that the block launches).
    s.body = "qDecodeAttention<" + std::to_string(G) + ", " + std::to_string(D) + ", " +
             (zeroNan ? "true" : "false") + ", " + std::to_string(l.inputs.size()) + rot + ">" + split +
             floatLiteral(l.attrs->getFloat("scale", 1.0)) + scaleArgs + ");";
    s.geometry.block = 512; // the kernel's NT
    return true;
  }
  const bool flash = !mask && !rotary && q.shape[2] != 1 && D % 16 == 0 && D <= 128 &&
                     l.inputs[1].shape.size() == 4 && l.inputs[1].shape[3] == D && v.shape[3] == D;
  if (flash && (halfCache || fp8)) {
    s.body = "qFlashAttentionHalf<" + std::to_string(D) + ", " + (causal ? "true" : "false") + ", " +
             (zeroNan ? "true" : "false") + ", true, " + std::to_string(l.inputs.size()) +
             (fp8 ? ", " + std::to_string(fp8) : "") + ">(p, " + floatLiteral(l.attrs->getFloat("scale", 1.0)) +
             scaleArgs + ");";
    s.geometry.block = 256;
    s.geometry.rowsPerBlock = 128;
    s.geometry.colsPerBlock = kWholeRow;
    s.geometry.planes = true;
    s.geometry.geometryOperand = 0;
    s.geometry.sharedBytes = static_cast<uint32_t>((128 + 4 * 64) * (D + 8) * 2 + (fp8 ? 4 * 64 * D : 0));
    s.minBlocks = 1;
    return true;
  }
  if (flash) {
    s.body = "qFlashAttention<" + std::to_string(D) + ", " + (causal ? "true" : "false") + ", " +
             (zeroNan ? "true" : "false") + ", " + (cache ? "true" : "false") + ", " +
             std::to_string(l.inputs.size()) + ">(p, " + floatLiteral(l.attrs->getFloat("scale", 1.0)) + ");";
    s.geometry.block = 128;
    s.geometry.rowsPerBlock = 64;
    s.geometry.colsPerBlock = kWholeRow;
    s.geometry.planes = true;
    s.geometry.geometryOperand = 0;
    return true;
  }
  const double masked = l.attrs->getFloat("masked_value", -INFINITY);
  const std::string maskedLiteral = std::isinf(masked) ? (masked < 0 ? "-QOPT_INF" : "QOPT_INF") : floatLiteral(masked);
  s.body = std::string("qAttention<") + (causal ? "true" : "false") + ", " + (zeroNan ? "true" : "false") + ", " +
           (cache ? "true" : "false") + ", 1024, " + std::to_string(l.inputs.size()) + ", " +
           (!mask ? "0" : maskType == DType::Bool ? "1" : "2") + rot + ">(p, " +
           floatLiteral(l.attrs->getFloat("scale", 1.0)) + ", " + maskedLiteral + scaleArgs + ");";
  s.geometry.block = 512; // 16 warps for the scores, 4 key groups for the values of a head dim <= 128
  s.geometry.colsPerBlock = kWholeRow;
  s.geometry.geometryOperand = static_cast<uint32_t>(l.inputs.size());
  return true;
}

bool gelu(const LaunchDesc &l, Spec &s, std::string &why) {
  int64_t approx = l.attrs->getInt("approximation", 0);
  if ((approx != 0 && approx != 1) || !allF32(l.inputs)) {
    why = "not float32, or an unknown approximation";
    return false;
  }
  s.body = "qGeluKernel<" + std::to_string(approx) + ">(p);";
  flatGeometry(s, 1);
  return true;
}

bool layerNorm(const LaunchDesc &l, Spec &s, std::string &why, bool add) {
  const OperandDesc &x = l.inputs[0];
  int64_t axis = l.attrs->getInt("axis", -1);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (axis < 0)
    axis += rank;
  if (!allF32(l.inputs) || rank == 0 || axis != rank - 1 || (add && l.inputs[0].shape != l.inputs[1].shape)) {
    why = "not float32 over the last dim with same-shaped addends";
    return false;
  }
  const size_t out = l.inputs.size();
  s.body = std::string(add ? "qAddLayerNorm<" : "qLayerNorm<") + std::to_string(out) + ">(p, " +
           doubleLiteral(l.attrs->getFloat("epsilon", 1e-5)) + ");";
  s.geometry.block = normBlock(lastDim(x));
  s.geometry.colsPerBlock = kWholeRow;
  s.geometry.geometryOperand = static_cast<uint32_t>(add ? out + 1 : out);
  return true;
}

bool castHalf(const LaunchDesc &l, Spec &s, std::string &why) {
  if (l.inputs[0].dtype != opType(l) || l.results[0].dtype != DType::F32) {
    why = std::string("a cast other than ") + (l.bf16 ? "bfloat16" : "float16") + " to float32";
    return false;
  }
  s.body = "qCastHalfToFloat(p);";
  flatGeometry(s, 1);
  return true;
}

} // namespace

const std::string &cudaTemplateSource() {
  static const std::string source = std::string(kPrelude) + "\n" + kTemplates;
  return source;
}

std::string cudaModuleSource(const std::string &wrappers, bool bf16) {
  return (bf16 ? "#define QOPT_BF16 1\n" : "") + cudaTemplateSource() + "\n" + wrappers;
}

bool instantiateCudaKernel(const LaunchDesc &l, CudaKernel &out, std::string &why) {
  static const num::Attrs none;
  LaunchDesc launch = l;
  if (!launch.attrs)
    launch.attrs = &none;
  if (launch.inputs.size() + launch.results.size() > 12) {
    why = "more than 12 operands";
    return false;
  }
  for (const OperandDesc &o : launch.inputs)
    if (o.shape.size() > 8) {
      why = "an operand of rank above 8";
      return false;
    }
  const std::string &f = launch.family;
  Spec s;
  bool ok = false;
  if (f == "gather")
    ok = gather(launch, s, why);
  else if (f == "transpose")
    ok = transpose(launch, s, why);
  else if (f == "kv_append")
    ok = kvAppend(launch, s, why);
  else if (f == "kv_append_rotary")
    ok = kvAppendRotary(launch, s, why);
  else if (f == "kv_advance")
    ok = kvAdvance(launch, s, why);
  else if (f == "gated_act")
    ok = gatedAct(launch, s, why);
  else if (f == "binary")
    ok = binary(launch, s, why);
  else if (f == "rms_norm" || f == "add_rms_norm")
    ok = rmsNorm(launch, s, why, f == "add_rms_norm");
  else if (f == "matmul" || f == "linear_split")
    ok = linear(launch, s, why, f == "linear_split");
  else if (f == "matmul_q" || f == "matmul_q_split" || f == "matmul_q_gated")
    ok = linearQ(launch, s, why, f == "matmul_q_split", f == "matmul_q_gated");
  else if (f == "rotary")
    ok = rotary(launch, s, why);
  else if (f == "attention")
    ok = attention(launch, s, why);
  else if (f == "cast")
    ok = castHalf(launch, s, why);
  else if (f == "gelu")
    ok = gelu(launch, s, why);
  else if (f == "where")
    ok = where(launch, s, why);
  else if (f == "layer_norm" || f == "add_layer_norm")
    ok = layerNorm(launch, s, why, f == "add_layer_norm");
  else
    why = "no CUDA template for '" + f + "'";
  if (!ok)
    return false;
  // The symbol names the whole specialization: the body and the geometry it was written for (a body can be the
  // same for launches of different block sizes or shared memory, e.g. a product's K).
  const KernelGeometry &g = s.geometry;
  std::string bounds = s.minBlocks ? "__launch_bounds__(" + std::to_string(g.block) + ", " +
                                         std::to_string(s.minBlocks) + ") "
                                   : "";
  if (s.clusterY)
    bounds += "QOPT_CLUSTER_Y(" + std::to_string(s.clusterY) + ") ";
  std::string shape = std::to_string(g.block) + "," + std::to_string(g.rowsPerBlock) + "," +
                      std::to_string(g.colsPerBlock) + "," + std::to_string(g.sharedBytes) + "," + bounds;
  if (s.scratchWords > 0)
    shape += "," + std::to_string(g.gridY) + "," + std::to_string(s.scratchWords);
  char name[64];
  std::snprintf(name, sizeof name, "q_%s_%016llx", f.c_str(),
                static_cast<unsigned long long>(contentHash(f + s.body + shape)));
  out.symbol = name;
  std::string globals, locals;
  if (s.scratchWords > 0) {
    globals += "__device__ unsigned " + out.symbol + "_scratch[" + std::to_string(s.scratchWords) + "];\n";
    locals += "unsigned *const qScratch = " + out.symbol + "_scratch; ";
  }
  out.source = globals + "extern \"C\" __global__ void " + bounds + out.symbol +
               "(const QParams p) { qWaitForPrevious(); " + locals + s.body + " }\n";
  out.geometry = s.geometry;
  return true;
}

uint64_t contentHash(const std::string &text, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool parseCudaTarget(const std::string &target, std::vector<std::string> &archs, std::string &error) {
  archs.clear();
  const std::string prefix = "cuda:";
  if (target.compare(0, prefix.size(), prefix) != 0 || target.size() == prefix.size()) {
    error = "target '" + target + "' is not cpu or cuda:ARCH[,ARCH...] (e.g. cuda:sm_90a,sm_80)";
    return false;
  }
  std::stringstream ss(target.substr(prefix.size()));
  std::string a;
  while (std::getline(ss, a, ',')) {
    bool ok = a.size() >= 5 && a.compare(0, 3, "sm_") == 0 && std::isdigit(static_cast<unsigned char>(a[3])) &&
              std::isdigit(static_cast<unsigned char>(a[4]));
    for (size_t i = 5; ok && i < a.size(); ++i)
      ok = std::isdigit(static_cast<unsigned char>(a[i])) || (i + 1 == a.size() && a[i] == 'a');
    if (!ok || std::stoi(a.substr(3, 2)) < 80) {
      error = "CUDA architecture '" + a + "' is not sm_80 or newer (written sm_NN, sm_NNa: e.g. sm_90a, sm_80)";
      return false;
    }
    archs.push_back(a);
  }
  if (archs.empty()) {
    error = "target '" + target + "' names no CUDA architecture";
    return false;
  }
  return true;
}

} // namespace qopt::codegen
