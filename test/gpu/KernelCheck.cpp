//===- KernelCheck.cpp - every CUDA kernel template against its CPU reference --===//
//
// For each case (a kernel family, its attributes and operand shapes, chosen to hit one-row and many-row paths and
// dims that are not multiples of any tile): generates the specialization as qopt would, compiles it with NVRTC,
// runs it through the runtime's CUDA backend on random non-zero inputs, and compares every result with the
// family's CPU reference kernel on the same inputs. Prints one line per case and `N passed, N failed` last.
//   qopt-gpu-kernel-check [--arch sm_90a]        (needs a GPU and NVRTC; scripts/test-gpu.sh runs it; a list
//                                                 such as sm_90a,sm_80 compiles for each, the GPU's first)
//   qopt-gpu-kernel-check --bench [--arch ...]    the linear kernels, decode attention and add_rms_norm at
//                                                 Llama-3-8B shapes: checked, then timed (bench/gpu/gemm.sh
//                                                 prints the linear ones next to PyTorch's)
//                                                 (and the runtime's argmax/sampling helpers: --only "row
//                                                 helper")
//   ... --cold                                     timed products take their weights from copies in turn,
//                                                 256 MB or more in all: read from DRAM, not L2, as in decode
//   ... --tiles                                    every product whose weight the tile layout takes, in it
//   ... --only TEXT                                only the cases whose name contains TEXT (e.g. under ncu);
//                                                 TEXT|TEXT...: any of them
//   ... --list                                     the selected cases' names, nothing compiled or run
//   ... --shard I/N                                only every Nth case from the Ith (0-based): N processes
//                                                 with I = 0 .. N - 1 compile (or check) all cases in parallel
//   ... --cache DIR                                NVRTC's images cached in DIR by content hash (default:
//                                                 qopt's cache, $QOPT_CACHE_DIR/cuda or ~/.cache/qopt/cuda;
//                                                 '' for none): a second run compiles nothing
//   ... --compile-only                             each case's kernel generated and compiled (into --cache),
//                                                 nothing run: no GPU needed (CI; warming a cache for a GPU run)
//   ... --act-dtype bf16                           every kernel compiled for bfloat16 operands (qopt
//                                                 --act-dtype=bf16): 16-bit weights, tables and KV caches
//                                                 bfloat16 (float16 scales stay), tolerances for its rounding
//   ... --tune tiles=T,warps=W,bps=B,batch=U       matrix-vector kernels with these choices instead of the
//                                                 compiler's (any subset, also groups=G, wt=V, exact=E,
//                                                 staged=S, ks=K, half=H, cvt=C, pipe=P, split=X; repeat
//                                                 --tune to compare several); ks=K also decode attention's
//                                                 key slices
//
//===----------------------------------------------------------------------===//
#include "Backend.h"
#include "qopt/Codegen/Cuda.h"
#include "qopt/Numerics/Fp8.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/ThreadPool.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace num = qopt::num;
namespace cg = qopt::codegen;
using num::DType;

namespace {

struct Operand {
  DType dtype = DType::F32;
  num::Shape shape;
  // Empty: uniform floats in [-1, 1], non-zero (float32, or float16 for an F16 operand).
  std::function<void(std::vector<uint8_t> &, std::mt19937 &)> fill;
  bool absent = false;
};

struct Case {
  std::string name, family;
  num::Attrs attrs = {};
  std::vector<Operand> inputs = {};
  int numOutputs = 1;
  double tolerance = 2e-5; // max |gpu - cpu| / max(1, max |cpu|)
  int timed = 0; // > 0: after 25 ms of launches, 5 runs of this many launches back to back: the median run's mean
  std::string cublas = "off"; // QRT_CUBLASLT: "require" sends products of 17+ rows (float16 weights: 2+) to cuBLASLt
  // Recorded as a CUDA graph and replayed: 1 on a fresh backend (a library product has no scratch yet, so it must
  // decline and run its generated kernel), 2 after a plain launch grew the scratch (the library inside the graph).
  int captured = 0;
  bool outputHead = false; // generated as a model's output head (one row of float16 weights: x as hi + lo)
  cg::GemvTuning tune = {}; // the matrix-vector kernels' choices when no --tune is given
  // A product's weight in a tile layout on the GPU (weight_layout 1 or 2, QuantFormat.h), permuted from the rows
  // the reference reads (withTiles, --tiles); 0: rows.
  int64_t layout = 0;
};

Operand f32(num::Shape s) { return {DType::F32, std::move(s), nullptr, false}; }
Operand f16(num::Shape s) { return {DType::F16, std::move(s), nullptr, false}; }
Operand ints(DType t, num::Shape s, std::vector<int64_t> values) {
  return {t, std::move(s),
          [t, values](std::vector<uint8_t> &b, std::mt19937 &) {
            for (size_t i = 0; i < values.size(); ++i) {
              if (t == DType::I64)
                reinterpret_cast<int64_t *>(b.data())[i] = values[i];
              else
                reinterpret_cast<int32_t *>(b.data())[i] = static_cast<int32_t>(values[i]);
            }
          },
          false};
}
Operand bytes(DType t, num::Shape s, int lo, int hi) {
  return {t, std::move(s),
          [lo, hi](std::vector<uint8_t> &b, std::mt19937 &rng) {
            std::uniform_int_distribution<int> d(lo, hi);
            for (uint8_t &v : b)
              v = static_cast<uint8_t>(d(rng));
          },
          false};
}
Operand positiveF32(num::Shape s) {
  return {DType::F32, std::move(s),
          [](std::vector<uint8_t> &b, std::mt19937 &rng) {
            std::uniform_real_distribution<float> d(0.01f, 0.1f);
            for (size_t i = 0; i < b.size() / 4; ++i)
              reinterpret_cast<float *>(b.data())[i] = d(rng);
          },
          false};
}
Operand absent() { return {DType::F32, {}, nullptr, true}; }
// Float32 operands of these values (an FP8 cache's scales and key offsets, a static activation scale).
Operand floats(num::Shape s, std::vector<double> values) {
  return {DType::F32, std::move(s),
          [values](std::vector<uint8_t> &b, std::mt19937 &) {
            for (size_t i = 0; i < values.size() && i < b.size() / 4; ++i)
              reinterpret_cast<float *>(b.data())[i] = static_cast<float>(values[i]);
          },
          false};
}
// An int3/int4 product with float16 scales (QuantFormat.h: the quantizers' layout where every scale is a float16
// value), the same range as positiveF32's.
Case withHalfScales(Case c) {
  c.name += " f16 scales";
  c.inputs[2] = {DType::F16, c.inputs[2].shape,
                 [](std::vector<uint8_t> &b, std::mt19937 &rng) {
                   std::uniform_real_distribution<float> d(0.01f, 0.1f);
                   for (size_t i = 0; i < b.size() / 2; ++i)
                     reinterpret_cast<uint16_t *>(b.data())[i] = num::floatToHalf(d(rng));
                 },
                 false};
  return c;
}
// A product whose weight the tile layout takes (QuantFormat.h: 16-row tiles of 64-byte chunks).
bool tileable(const Case &c) {
  if (c.family.rfind("matmul_q", 0) != 0 || c.inputs.size() < 2 || c.inputs[1].absent ||
      c.inputs[1].shape.size() != 2 || c.inputs[1].dtype == DType::F16 || // (16-bit weights: qGemvHalf's rows)
      c.inputs[1].dtype == DType::BF16 ||
      c.attrs.getInt("act_fp8", 0) || c.attrs.getInt("act_int8", 0)) // (W8A8: the library reads the codes' rows)
    return false;
  const num::Shape &w = c.inputs[1].shape;
  return num::quant::canTileRows(w[0], w[1] * static_cast<int64_t>(num::dtypeSize(c.inputs[1].dtype)));
}
// In tile layout `layout`, by default qopt-tile-weights' choice for a weight only this product reads: rows paired
// as a gated product pairs them (2), else 16 consecutive rows (1).
Case withTiles(Case c, int64_t layout = 0) {
  c.layout = layout ? layout : c.family == "matmul_q_gated" ? 2 : 1;
  c.name += c.layout == 2 ? " paired tiles" : " tiles";
  return c;
}
// A product of int4 codes with asymmetric groups of `group` (zero points), x [M, K] and N weight rows (a gated
// product's gate and up rows stacked), the operands after those appended by the caller.
Case int4Product(std::string name, std::string family, int64_t M, int64_t K, int64_t N, int64_t group) {
  Case c{std::move(name), std::move(family)};
  c.attrs.setInt("bits", 4);
  c.attrs.setInt("group_size", group);
  c.inputs = {f32({M, K}), bytes(DType::U8, {N, K / 2}, 0, 255), positiveF32({N, K / group}),
              bytes(DType::U8, {N, K / group}, 0, 15)};
  return c;
}
// Float16 weights, uniform in [-0.05, 0.05].
Operand halfWeights(num::Shape s) {
  return {DType::F16, std::move(s),
          [](std::vector<uint8_t> &b, std::mt19937 &rng) {
            std::uniform_real_distribution<float> d(-1.0f, 1.0f);
            for (size_t i = 0; i < b.size() / 2; ++i)
              reinterpret_cast<uint16_t *>(b.data())[i] = num::floatToHalf(d(rng) * 0.05f);
          },
          false};
}

// A decode attention case with its queries rotated as they are loaded (qopt-fuse-rotary): rotary style `style` at
// the new token's position (batch 1), head dim D.
Case withRotaryQueries(Case c, int64_t style, int64_t position, int64_t D) {
  c.name += " rotary style=" + std::to_string(style);
  c.attrs.setInt("rotary_style", style);
  c.inputs.push_back(ints(DType::I64, {1, 1}, {position}));
  c.inputs.push_back(positiveF32({D / 2}));
  return c;
}

// Float32 values around and past every FP8 code (E4M3's and E5M2's ranges, 2^-20 to 2^20): both signs, every
// exponent, the 13 leading mantissa bits in all combinations (ties between codes, subnormal codes' ties and the
// saturation boundaries among them), then zeros, infinities, NaNs, the largest float and a float subnormal.
Operand fp8Sweep(num::Shape s) {
  return {DType::F32, std::move(s),
          [](std::vector<uint8_t> &b, std::mt19937 &) {
            uint32_t *v = reinterpret_cast<uint32_t *>(b.data());
            const size_t n = b.size() / 4;
            size_t i = 0;
            for (uint32_t special : {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                                     0x7F7FFFFFu, 0xFF7FFFFFu, 0x00000001u, 0x80000001u})
              v[i++] = special;
            for (uint32_t sign = 0; sign < 2; ++sign)
              for (uint32_t e = 127 - 20; e < 127 + 20; ++e)
                for (uint32_t m = 0; m < 8192 && i < n; ++m)
                  v[i++] = sign << 31 | e << 23 | m << 10;
          },
          false};
}

// Random FP8 codes of every finite value (no NaN, no E5M2 infinity).
Operand fp8Codes(DType code, num::Shape s) {
  return {code, std::move(s),
          [code](std::vector<uint8_t> &b, std::mt19937 &rng) {
            std::uniform_int_distribution<int> d(0, 255);
            for (uint8_t &v : b) {
              do
                v = static_cast<uint8_t>(d(rng));
              while (code == DType::F8E4M3FN ? (v & 0x7F) == 0x7F : (v & 0x7C) == 0x7C);
            }
          },
          false};
}

std::vector<Case> cases() {
  std::vector<Case> out;
  auto add = [&](Case c) { out.push_back(std::move(c)); };
  for (int64_t M : {1, 3, 17}) {
    for (auto [K, N] : {std::pair<int64_t, int64_t>{64, 64}, {300, 130}, {1030, 257}}) {
      Case c{"matmul M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N), "matmul"};
      c.inputs = {f32({M, K}), f32({K, N})};
      add(c);
    }
    Case s{"linear_split+bias M=" + std::to_string(M), "linear_split"};
    s.attrs.setInts("splits", {100, 30, 27});
    s.inputs = {f32({1, M, 72}), f32({72, 157}), f32({157})};
    s.numOutputs = 3;
    add(s);
    // Quantized: asymmetric int4 g32, symmetric int4 g64, int8 per channel, int4 per tensor, 3-bit g32.
    struct Q {
      const char *what;
      int64_t bits, group, K, N;
      bool zeros, perTensor;
    };
    for (Q q : {Q{"int4 asym g32", 4, 32, 320, 130, true, false}, Q{"int4 sym g64", 4, 64, 320, 33, false, false},
                Q{"int8 channel", 8, 200, 200, 77, false, false}, Q{"int4 tensor", 4, 96, 96, 40, true, true},
                Q{"int3 g32", 3, 32, 64, 50, true, false}}) {
      Case c{std::string("matmul_q ") + q.what + " M=" + std::to_string(M), "matmul_q"};
      c.attrs.setInt("bits", q.bits);
      c.attrs.setInt("group_size", q.group);
      c.attrs.setInt("symmetric", q.zeros ? 0 : 1);
      const int64_t groups = q.K / q.group, rows = q.perTensor ? 1 : q.N, cols = q.perTensor ? 1 : groups;
      const int maxCode = q.bits == 3 ? 7 : 15;
      c.inputs = {f32({M, q.K}),
                  q.bits == 8 ? bytes(DType::I8, {q.N, q.K}, 0, 255)
                              : bytes(DType::U8, {q.N, (q.K + 1) / 2}, 0, q.bits == 3 ? 0x77 : 255),
                  positiveF32({rows, cols})};
      if (q.bits == 3) // both nibbles within the 3-bit grid
        c.inputs[1].fill = [](std::vector<uint8_t> &b, std::mt19937 &rng) {
          std::uniform_int_distribution<int> d(0, 7);
          for (uint8_t &v : b)
            v = static_cast<uint8_t>(d(rng) | d(rng) << 4);
        };
      if (q.zeros)
        c.inputs.push_back(bytes(DType::U8, {rows, cols}, 0, maxCode));
      add(c);
      if (q.bits != 8)
        add(withHalfScales(c));
    }
    // FP8 weight codes per output channel (--quantize=fp8w), both formats: qGemvHalf at one row (and qGemvRow, the
    // gated products' kernel, tuned with half=-1), qGemvMma above.
    for (DType code : {DType::F8E4M3FN, DType::F8E5M2}) {
      Case f{std::string("matmul_q fp8 ") + (code == DType::F8E4M3FN ? "e4m3" : "e5m2") + " channel M=" +
                 std::to_string(M),
             "matmul_q"};
      f.attrs.setInt("bits", 8);
      f.attrs.setInt("group_size", 320);
      f.inputs = {f32({M, 320}), fp8Codes(code, {130, 320}), positiveF32({130, 1})};
      add(f);
      if (M == 1) {
        Case r = f;
        r.name += " (qGemvRow)";
        r.tune.half = -1;
        add(r);
      }
      Case o{f.name + " K=172 (qLinearQ)", "matmul_q"}; // rows that are not 16-byte words
      o.attrs.setInt("bits", 8);
      o.attrs.setInt("group_size", 172);
      o.inputs = {f32({M, 172}), fp8Codes(code, {64, 172}), positiveF32({64, 1})};
      add(o);
    }
    // One row of FP8 codes on qGemvHalf (a gated product tuned there with half=1): K in chunks of 512 codes, one
    // partly past K.
    if (M == 1)
      for (DType code : {DType::F8E4M3FN, DType::F8E5M2}) {
        Case h{std::string("matmul_q fp8 ") + (code == DType::F8E4M3FN ? "e4m3" : "e5m2") +
                   " channel M=1 K=1040 N=70 (qGemvHalf)",
               "matmul_q"};
        h.attrs.setInt("bits", 8);
        h.attrs.setInt("group_size", 1040);
        h.inputs = {f32({1, 1040}), fp8Codes(code, {70, 1040}), positiveF32({70, 1})};
        h.tune.half = 1;
        add(h);
        Case g{h.name + " gated +norm", "matmul_q_gated"};
        g.attrs = h.attrs;
        g.attrs.setInt("activation", 0);
        g.attrs.setFloat("norm_epsilon", 1e-5);
        g.inputs = {f32({1, 1040}), fp8Codes(code, {140, 1040}), positiveF32({140, 1}), absent(), f32({1040})};
        g.tune.half = 1;
        add(g);
        // 2 chunks per batch (tune batch): 3 chunks, so the last batch is half past K.
        Case b{h.name + " 2 chunks per batch", "matmul_q"};
        b.attrs = h.attrs;
        b.inputs = h.inputs;
        b.tune.half = 1, b.tune.batch = 2;
        add(b);
      }
    // W8A8 FP8 (act_fp8): x rounded to the weights' format, static (operand 6) or per row; at one row qGemvRow,
    // else qLinearQ, and at 17 rows also cuBLASLt's FP8 tensor cores (E4M3; E5M2 products decline to the kernel).
    for (int64_t act : {1, 2})
      for (DType code : {DType::F8E4M3FN, DType::F8E5M2}) {
        if (act == 1 && code == DType::F8E5M2)
          continue;
        Case a{std::string("matmul_q fp8 ") + (code == DType::F8E4M3FN ? "e4m3" : "e5m2") +
                   (act == 1 ? " act static" : " act dynamic") + " M=" + std::to_string(M),
               "matmul_q"};
        a.attrs.setInt("bits", 8);
        a.attrs.setInt("group_size", 320);
        a.attrs.setInt("act_fp8", act);
        a.inputs = {f32({M, 320}), fp8Codes(code, {130, 320}), positiveF32({130, 1})};
        if (act == 1) // x in [-1, 1]: some values saturate at 448 * scale
          a.inputs.insert(a.inputs.end(), {absent(), absent(), absent(), floats({1}, {0.9 / 448.0})});
        add(a);
      }
    // W8A8 int8 (act_int8, SmoothQuant's): x rounded to int8 under its scale, int8 weights per channel and in
    // groups (the library product takes per-channel scales; grouped ones stay in the generated kernel).
    for (int64_t act : {1, 2})
      for (int64_t group : {320, 64}) {
        Case a{std::string("matmul_q int8 act ") + (act == 1 ? "static" : "dynamic") +
                   (group == 320 ? " channel" : " g64") + " M=" + std::to_string(M),
               "matmul_q"};
        a.attrs.setInt("bits", 8);
        a.attrs.setInt("group_size", group);
        a.attrs.setInt("symmetric", 1);
        a.attrs.setInt("act_int8", act);
        a.inputs = {f32({M, 320}), bytes(DType::I8, {130, 320}, 0, 255), positiveF32({130, 320 / group})};
        if (act == 1) // x in [-1, 1]: some values clamp at 127 * scale
          a.inputs.insert(a.inputs.end(), {absent(), absent(), absent(), floats({1}, {0.9 / 127.0})});
        add(a);
      }
    // Gated products on qLinearQ (a warp's gate and up rows): 8-bit activations over several rows, and rows that
    // are not 16-byte words (int4 at K = 200; asymmetric, groups of 40).
    for (DType codes : {DType::I8, DType::F8E4M3FN}) {
      const bool int8 = codes == DType::I8;
      Case a{std::string("matmul_q_gated ") + (int8 ? "int8" : "fp8 e4m3") + " act dynamic M=" + std::to_string(M),
             "matmul_q_gated"};
      a.attrs.setInt("bits", 8);
      a.attrs.setInt("group_size", 320);
      a.attrs.setInt("symmetric", 1);
      a.attrs.setInt("activation", 0);
      a.attrs.setInt(int8 ? "act_int8" : "act_fp8", 2);
      a.inputs = {f32({M, 320}), int8 ? bytes(DType::I8, {140, 320}, 0, 255) : fp8Codes(codes, {140, 320}),
                  positiveF32({140, 1})};
      add(a);
    }
    {
      Case a{"matmul_q_gated int4 g40 K=200 gelu M=" + std::to_string(M), "matmul_q_gated"};
      a.attrs.setInt("bits", 4);
      a.attrs.setInt("group_size", 40);
      a.attrs.setInt("activation", 1);
      a.inputs = {f32({M, 200}), bytes(DType::U8, {90, 100}, 0, 255), positiveF32({90, 5}),
                  bytes(DType::U8, {90, 5}, 0, 15)};
      add(a);
    }
    {
      Case a{"matmul_q int8 act dynamic +norm M=" + std::to_string(M), "matmul_q"};
      a.attrs.setInt("bits", 8);
      a.attrs.setInt("group_size", 256);
      a.attrs.setInt("symmetric", 1);
      a.attrs.setInt("act_int8", 2);
      a.attrs.setFloat("norm_epsilon", 1e-5);
      a.inputs = {f32({M, 256}), bytes(DType::I8, {72, 256}, 0, 255), positiveF32({72, 1}), absent(), f32({256})};
      add(a);
    }
    {
      // The same with the layer's norm fused in front (the norm then the rounding, as the reference).
      Case a{"matmul_q fp8 e4m3 act dynamic +norm M=" + std::to_string(M), "matmul_q"};
      a.attrs.setInt("bits", 8);
      a.attrs.setInt("group_size", 256);
      a.attrs.setInt("act_fp8", 2);
      a.attrs.setFloat("norm_epsilon", 1e-5);
      a.inputs = {f32({M, 256}), fp8Codes(DType::F8E4M3FN, {72, 256}), positiveF32({72, 1}), absent(), f32({256})};
      add(a);
    }
    // float16 weights [N, K] (a GPU target's float layers), alone and split.
    auto halves = [](num::Shape shape) {
      return Operand{DType::F16, std::move(shape),
                     [](std::vector<uint8_t> &b, std::mt19937 &rng) {
                       std::uniform_real_distribution<float> d(-1.0f, 1.0f);
                       for (size_t i = 0; i < b.size() / 2; ++i)
                         reinterpret_cast<uint16_t *>(b.data())[i] = num::floatToHalf(d(rng));
                     },
                     false};
    };
    Case h{"matmul_q f16 M=" + std::to_string(M) + " K=300 N=130", "matmul_q"};
    h.attrs.setInt("bits", 16);
    h.inputs = {f32({M, 300}), halves({130, 300})};
    add(h);
    Case ht{"matmul_q f16 M=" + std::to_string(M) + " K=1032 N=77", "matmul_q"}; // a partial chunk of 256 k
    ht.attrs.setInt("bits", 16);
    ht.inputs = {f32({M, 1032}), halves({77, 1032})};
    add(ht);
    Case hv{"matmul_q f16 M=" + std::to_string(M) + " K=512 N=200", "matmul_q"}; // 16-byte words at M = 1
    hv.attrs.setInt("bits", 16);
    hv.inputs = {f32({1, M, 512}), halves({200, 512})};
    add(hv);
    Case hs{"matmul_q_split f16 M=" + std::to_string(M), "matmul_q_split"};
    hs.attrs.setInt("bits", 16);
    hs.attrs.setInts("splits", {100, 30, 27});
    hs.inputs = {f32({1, M, 72}), halves({157, 72})};
    hs.numOutputs = 3;
    add(hs);
    Case qs{"matmul_q_split int4 g32 M=" + std::to_string(M), "matmul_q_split"};
    qs.attrs.setInt("bits", 4);
    qs.attrs.setInt("group_size", 32);
    qs.attrs.setInts("splits", {64, 32, 32});
    qs.inputs = {f32({M, 96}), bytes(DType::U8, {128, 48}, 0, 255), positiveF32({128, 3}),
                 bytes(DType::U8, {128, 3}, 0, 15)};
    qs.numOutputs = 3;
    add(qs);
    // 4096: rows of whole float4s per thread (the 16-byte path); the others one float at a time.
    for (int64_t C : {64, 288, 1000, 4096}) {
      Case n{"rms_norm rows=" + std::to_string(M) + " C=" + std::to_string(C), "rms_norm"};
      n.attrs.setFloat("epsilon", 1e-5);
      n.inputs = {f32({M, C}), f32({C})};
      add(n);
      Case a{"add_rms_norm rows=" + std::to_string(M) + " C=" + std::to_string(C), "add_rms_norm"};
      a.attrs.setFloat("epsilon", 1e-6);
      a.inputs = {f32({1, M, C}), f32({1, M, C}), f32({C})};
      a.numOutputs = 2;
      add(a);
    }
    Case one{"rms_norm rows=" + std::to_string(M) + " C=2048 scale [1]", "rms_norm"};
    one.attrs.setFloat("epsilon", 1e-5);
    one.inputs = {f32({M, 2048}), f32({1})};
    add(one);
    for (int64_t C : {64, 768}) {
      Case ln{"layer_norm+bias rows=" + std::to_string(M) + " C=" + std::to_string(C), "layer_norm"};
      ln.attrs.setFloat("epsilon", 1e-5);
      ln.inputs = {f32({M, C}), f32({C}), f32({C})};
      add(ln);
      Case al{"add_layer_norm+bias rows=" + std::to_string(M) + " C=" + std::to_string(C), "add_layer_norm"};
      al.attrs.setFloat("epsilon", 1e-5);
      al.inputs = {f32({1, M, C}), f32({1, M, C}), f32({C}), f32({C})};
      al.numOutputs = 2;
      add(al);
    }
    Case gl{"gelu erf n=" + std::to_string(M * 300), "gelu"};
    gl.inputs = {f32({M, 300})};
    add(gl);
    for (int64_t style : {0, 1}) {
      Case r{"rotary style=" + std::to_string(style) + " S=" + std::to_string(M), "rotary"};
      r.attrs.setInt("style", style);
      std::vector<int64_t> pos;
      for (int64_t i = 0; i < M; ++i)
        pos.push_back(7 + 3 * i);
      r.inputs = {f32({1, 3, M, 16}), ints(DType::I64, {1, M}, pos), positiveF32({8})};
      add(r);
    }
    // Gate and up layers stacked (36 channels each: the last tile of 8 is partial), the activation in the product's
    // epilogue: int4 (qGemvRow at one row, qGemvMma above) and float16 weights (qGemvMma).
    Case qg{"matmul_q_gated int4 g32 silu M=" + std::to_string(M), "matmul_q_gated"};
    qg.attrs.setInt("bits", 4);
    qg.attrs.setInt("group_size", 32);
    qg.attrs.setInt("activation", 0);
    qg.inputs = {f32({M, 96}), bytes(DType::U8, {72, 48}, 0, 255), positiveF32({72, 3}),
                 bytes(DType::U8, {72, 3}, 0, 15)};
    add(qg);
    Case hg{"matmul_q_gated f16 gelu_tanh M=" + std::to_string(M), "matmul_q_gated"};
    hg.attrs.setInt("bits", 16);
    hg.attrs.setInt("activation", 2);
    hg.inputs = {f32({1, M, 72}), halves({100, 72})};
    add(hg);
    // qopt-fuse-norm-product's operands: x normalized in the prologue (operand 4: the rms_norm scale, [K]) and a
    // residual added in the epilogue (operand 5): qGemvRow at one row of codes, qGemvMma above and for float16
    // weights, qLinearQ for rows that are not 16-byte words (int8, K = 200).
    auto fused = [&](Case c, bool norm, bool residual) {
      const int64_t K = c.inputs[0].shape.back();
      c.name += std::string(norm ? " +norm" : "") + (residual ? " +residual" : "");
      c.attrs.setFloat("norm_epsilon", 1e-5);
      while (c.inputs.size() < 4)
        c.inputs.push_back(absent());
      c.inputs.push_back(norm ? f32({K}) : absent());
      if (residual) {
        num::Shape r = c.inputs[0].shape;
        r.back() = c.inputs[1].shape[0];
        c.inputs.push_back(f32(r));
      }
      add(c);
    };
    Case fq{"matmul_q int4 g32 M=" + std::to_string(M) + " K=96 N=130", "matmul_q"};
    fq.attrs.setInt("bits", 4);
    fq.attrs.setInt("group_size", 32);
    fq.inputs = {f32({M, 96}), bytes(DType::U8, {130, 48}, 0, 255), positiveF32({130, 3}),
                 bytes(DType::U8, {130, 3}, 0, 15)};
    fused(fq, true, true);
    fused(fq, false, true);
    fused(fq, true, false);
    Case fh{"matmul_q f16 M=" + std::to_string(M) + " K=512 N=200", "matmul_q"};
    fh.attrs.setInt("bits", 16);
    fh.inputs = {f32({1, M, 512}), halves({200, 512})};
    fused(fh, true, true);
    Case fs{"matmul_q_split int4 g32 M=" + std::to_string(M), "matmul_q_split"};
    fs.attrs.setInt("bits", 4);
    fs.attrs.setInt("group_size", 32);
    fs.attrs.setInts("splits", {64, 32, 32});
    fs.inputs = qs.inputs;
    fs.numOutputs = 3;
    fused(fs, true, false);
    Case fi{"matmul_q int8 channel M=" + std::to_string(M) + " K=200 (qLinearQ)", "matmul_q"};
    fi.attrs.setInt("bits", 8);
    fi.attrs.setInt("group_size", 200);
    fi.inputs = {f32({M, 200}), bytes(DType::I8, {77, 200}, 0, 255), positiveF32({77, 1})};
    fused(fi, true, true);
    fused(qg, true, false);
    fused(hg, true, false);
    Case g{"gated_act silu n=" + std::to_string(M * 172), "gated_act"};
    g.attrs.setInt("activation", 0);
    g.inputs = {f32({M, 172}), f32({M, 172})};
    add(g);
    Case ge{"gated_act gelu_tanh n=" + std::to_string(M * 172), "gated_act"};
    ge.attrs.setInt("activation", 2);
    ge.inputs = {f32({M, 172}), f32({M, 172})};
    add(ge);
    Case go{"gated_act silu rows of 171 (one element a thread) n=" + std::to_string(M * 171), "gated_act"};
    go.attrs.setInt("activation", 0);
    go.inputs = {f32({M, 171}), f32({M, 171})};
    add(go);
    // Attention over a cache holding `len` earlier positions (GQA: 4 query heads, 2 kv heads); 1500 keys are more
    // than one chunk of the online softmax (1024), so the running max and sum carry across chunks.
    if (M <= 3)
      for (auto [len, positions] : {std::pair<int64_t, int64_t>{21, 64}, {1500, 2048}}) {
        Case at{"attention cache len=" + std::to_string(len) + " S=" + std::to_string(M), "attention"};
        at.attrs.setInt("causal", 1);
        at.attrs.setFloat("scale", 0.25);
        at.inputs = {f32({1, 4, M, 16}), f32({1, 2, positions, 16}), f32({1, 2, positions, 16}), absent(),
                     ints(DType::I64, {1}, {len})};
        if (M > 1) // more than one query: the tensor-core kernel (float16 operands)
          at.tolerance = 4e-3;
        add(at);
      }
    // Decode over the KV state split over the cache length (qDecodeAttention: 8 slices; GQA groups of 1 to 8 heads;
    // head dims 8 to 256): one key (most slices empty), fewer keys than slices, several chunks of 128 per slice,
    // and a full cache.
    if (M == 1)
      for (auto [H, Hkv, D, len, cap] : std::vector<std::array<int64_t, 5>>{
               {4, 4, 8, 0, 16}, {8, 2, 48, 5, 64}, {32, 8, 128, 1000, 1024}, {16, 2, 64, 2047, 2048},
               {8, 1, 256, 300, 512}}) {
        Case ad{"attention decode split H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                    " D=" + std::to_string(D) + " keys=" + std::to_string(len + 1),
                "attention"};
        ad.attrs.setInt("causal", 1);
        ad.attrs.setFloat("scale", 1.0 / std::sqrt(static_cast<double>(D)));
        ad.inputs = {f32({1, H, 1, D}), f32({1, Hkv, cap, D}), f32({1, Hkv, cap, D}), absent(),
                     ints(DType::I64, {1}, {len})};
        add(ad);
        if (D != 48 && D != 128)
          continue;
        // The queries rotated as they are loaded (qopt-fuse-rotary), at the new token's position.
        add(withRotaryQueries(ad, D == 48 ? 0 : 1, len, D));
      }
    // Rotary queries in the row kernel (qAttention: groups of more than 8 heads), int32 positions, batch 2.
    if (M == 1) {
      Case ar{"attention decode rotary H=18 Hkv=1 D=16 (row kernel)", "attention"};
      ar.attrs.setInt("causal", 1);
      ar.attrs.setFloat("scale", 0.25);
      ar.attrs.setInt("rotary_style", 1);
      ar.inputs = {f32({2, 18, 1, 16}), f32({2, 1, 40, 16}), f32({2, 1, 40, 16}), absent(),
                   ints(DType::I64, {1}, {30}), ints(DType::I32, {2, 1}, {30, 12}), positiveF32({8})};
      add(ar);
    }
    // Masks: bool [B, 1, S, T] (masked scores to -inf, one fully masked row when S > 1), and float additive [S, T].
    {
      std::vector<int64_t> keep;
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < M; ++j)
            keep.push_back((b == 1 && i == M - 1 && M > 1) ? 0 : (j <= i || (i + j) % 3 == 0) ? 1 : 0);
      Case am{"attention bool mask S=" + std::to_string(M), "attention"};
      am.attrs.setFloat("scale", 0.125);
      am.attrs.setFloat("masked_value", -std::numeric_limits<double>::infinity());
      am.attrs.setInt("zero_nan_rows", 1);
      am.inputs = {f32({2, 4, M, 24}), f32({2, 2, M, 24}), f32({2, 2, M, 24}),
                   {DType::Bool, {2, 1, M, M},
                    [keep](std::vector<uint8_t> &b, std::mt19937 &) {
                      for (size_t k = 0; k < keep.size(); ++k)
                        b[k] = static_cast<uint8_t>(keep[k]);
                    },
                    false}};
      add(am);
      Case af{"attention additive mask S=" + std::to_string(M), "attention"};
      af.attrs.setFloat("scale", 0.125);
      af.inputs = {f32({1, 4, M, 24}), f32({1, 4, M, 24}), f32({1, 4, M, 24}), f32({M, M})};
      add(af);
    }
    Case ac{"attention causal S=" + std::to_string(M), "attention"};
    ac.attrs.setInt("causal", 1);
    ac.attrs.setFloat("scale", 0.125);
    ac.inputs = {f32({2, 4, M, 24}), f32({2, 4, M, 24}), f32({2, 4, M, 24})};
    add(ac);
  }
  Case kv{"kv_append 3 at 5", "kv_append"};
  kv.attrs.setInt("axis", 2);
  kv.inputs = {f32({1, 2, 64, 16}), f32({1, 2, 3, 16}), ints(DType::I64, {1}, {5})};
  add(kv);
  // A float16 KV cache (--kv-cache=f16): entries rounded as they are stored (the CPU's rounding bit for bit; keys
  // rotated first within a float16 step of the reference's rotation), decode attention over halves (the split
  // kernel, rotary queries, the row kernel), prompt attention streaming the cache into the tensor cores
  // (qFlashAttentionHalf: 128-row query tiles, the last partial; GQA; key tiles partly past the cache's length;
  // causal and not) and the row kernel for a head dim the tensor cores do not take.
  Case kvh{"kv_append f16 cache 3 at 5", "kv_append"};
  kvh.attrs.setInt("axis", 2);
  kvh.inputs = {f16({1, 2, 64, 16}), f32({1, 2, 3, 16}), ints(DType::I64, {1}, {5})};
  kvh.tolerance = 0;
  add(kvh);
  for (int64_t style : {0, 1}) {
    Case kr{"kv_append_rotary f16 cache style=" + std::to_string(style) + " 3 at 5", "kv_append_rotary"};
    kr.attrs.setInt("axis", 2);
    kr.attrs.setInt("style", style);
    kr.inputs = {f16({2, 2, 64, 16}), f32({2, 2, 3, 16}), ints(DType::I64, {1}, {5}),
                 ints(DType::I64, {2, 3}, {5, 6, 7, 105, 106, 107}), positiveF32({8})};
    kr.tolerance = 1e-3;
    add(kr);
  }
  // Decode over a float16 cache: on the tensor cores for head dims that are multiples of 16 (qDecodeAttentionTc:
  // one key, fewer keys than slices, a slice's last chunk partly filled, several chunks, a full cache; groups of 1
  // to 8 heads), the CUDA-core kernel otherwise (D = 8, 20).
  for (auto [H, Hkv, D, len, cap] : std::vector<std::array<int64_t, 5>>{{8, 2, 48, 5, 64},
                                                                      {32, 8, 128, 1000, 1024},
                                                                      {8, 1, 256, 300, 512},
                                                                      {4, 4, 64, 0, 16},
                                                                      {16, 2, 64, 2047, 2048},
                                                                      {32, 8, 128, 130, 4096},
                                                                      {4, 4, 8, 40, 64},
                                                                      {6, 2, 20, 600, 1024}}) {
    Case ad{"attention decode split f16 cache H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                " D=" + std::to_string(D) + " keys=" + std::to_string(len + 1),
            "attention"};
    ad.attrs.setInt("causal", 1);
    ad.attrs.setFloat("scale", 1.0 / std::sqrt(static_cast<double>(D)));
    ad.inputs = {f32({1, H, 1, D}), f16({1, Hkv, cap, D}), f16({1, Hkv, cap, D}), absent(),
                 ints(DType::I64, {1}, {len})};
    ad.tolerance = D % 16 ? 2e-5 : 4e-3; // the tensor cores round q and the probabilities to float16
    add(ad);
    if (D == 128)
      add(withRotaryQueries(ad, 1, len, D));
    if (len >= 1000) { // several slices meeting in the scratch: a second launch (the replay) finds it as the first
      Case again = ad;
      again.name += " launched twice";
      again.captured = 2;
      add(again);
    }
  }
  {
    Case ar{"attention decode rotary H=18 Hkv=1 D=16 (row kernel) f16 cache", "attention"};
    ar.attrs.setInt("causal", 1);
    ar.attrs.setFloat("scale", 0.25);
    ar.attrs.setInt("rotary_style", 1);
    ar.inputs = {f32({2, 18, 1, 16}), f16({2, 1, 40, 16}), f16({2, 1, 40, 16}), absent(),
                 ints(DType::I64, {1}, {30}), ints(DType::I32, {2, 1}, {30, 12}), positiveF32({8})};
    add(ar);
  }
  for (auto [H, Hkv, D, S, len, cap, causal] : std::vector<std::array<int64_t, 7>>{{4, 2, 64, 17, 0, 64, 1},
                                                                                  {4, 2, 64, 17, 21, 64, 1},
                                                                                  {8, 2, 128, 200, 100, 512, 1},
                                                                                  {4, 1, 128, 300, 1500, 2048, 1},
                                                                                  {4, 4, 32, 130, 70, 256, 0},
                                                                                  {4, 2, 24, 3, 21, 64, 1}}) {
    Case ap{"attention prompt f16 cache H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                " D=" + std::to_string(D) + " S=" + std::to_string(S) + " len=" + std::to_string(len) +
                (causal ? " causal" : "") + (D % 16 ? " (row kernel)" : ""),
            "attention"};
    ap.attrs.setInt("causal", causal);
    ap.attrs.setFloat("scale", 1.0 / std::sqrt(static_cast<double>(D)));
    ap.inputs = {f32({1, H, S, D}), f16({1, Hkv, cap, D}), f16({1, Hkv, cap, D}), absent(),
                 ints(DType::I64, {1}, {len})};
    ap.tolerance = D % 16 ? 2e-5 : 4e-3; // the tensor cores round q and the probabilities to float16
    add(ap);
  }
  // An FP8 KV cache (--kv-cache=fp8, fp8_e5m2; per-kv-head scales): entries stored as the reference's codes (its
  // float product with the inverse scale, rounded bit for bit; keys rotated first, whose float results may differ
  // from the CPU's rotation in the last place: with this seed no code flips), decode attention over the codes (the
  // split kernel with rotary queries, the row kernel), prompt attention moving them into float16 tiles for the
  // tensor cores (qFlashAttentionHalf) and the row kernel for a head dim the tensor cores do not take.
  for (DType code : {DType::F8E4M3FN, DType::F8E5M2}) {
    const std::string fmt = code == DType::F8E4M3FN ? " e4m3" : " e5m2";
    const double unit = code == DType::F8E4M3FN ? 0.01 : 1e-4; // largest entries about 4.5 and 5.7
    auto headScales = [unit](int64_t heads, double step) {
      std::vector<double> v;
      for (int64_t h = 0; h < heads; ++h)
        v.push_back(unit * (1.0 + step * static_cast<double>(h)));
      return v;
    };
    Case ka{"kv_append fp8" + fmt + " cache 3 at 5", "kv_append"};
    ka.attrs.setInt("axis", 2);
    ka.inputs = {fp8Codes(code, {2, 2, 64, 16}), f32({2, 2, 3, 16}), ints(DType::I64, {1}, {5}),
                 floats({2}, headScales(2, 0.37))};
    ka.tolerance = 0;
    add(ka);
    for (int64_t style : {0, 1}) {
      Case kr{"kv_append_rotary fp8" + fmt + " cache style=" + std::to_string(style) + " 3 at 5", "kv_append_rotary"};
      kr.attrs.setInt("axis", 2);
      kr.attrs.setInt("style", style);
      kr.inputs = {fp8Codes(code, {2, 2, 64, 16}), f32({2, 2, 3, 16}), ints(DType::I64, {1}, {5}),
                   floats({2}, headScales(2, 0.5)), ints(DType::I64, {2, 3}, {5, 6, 7, 105, 106, 107}),
                   positiveF32({8})};
      kr.tolerance = 0;
      add(kr);
    }
    // Centered keys (qopt-kv-state center-keys): codes of (x - offsets[head, channel]) / the head's scale.
    std::vector<double> offsets;
    for (int64_t i = 0; i < 2 * 16; ++i)
      offsets.push_back(0.37 * static_cast<double>(i % 7) - 1.1);
    // Every rounding case of the conversion (scale 1): the hardware's (sm_89+) codes equal the reference's.
    Case sweep{"kv_append fp8" + fmt + " conversion sweep", "kv_append"};
    sweep.attrs.setInt("axis", 2);
    sweep.inputs = {fp8Codes(code, {1, 1, 2568, 256}), fp8Sweep({1, 1, 2568, 256}), ints(DType::I64, {1}, {0}),
                    floats({1}, {1.0})};
    sweep.tolerance = 0;
    add(sweep);
    Case ko{ka.name + " centered", "kv_append"};
    ko.attrs = ka.attrs;
    ko.inputs = ka.inputs;
    ko.inputs.push_back(floats({2, 16}, offsets));
    ko.tolerance = 0;
    add(ko);
    Case kro{"kv_append_rotary fp8" + fmt + " cache style=0 3 at 5 centered", "kv_append_rotary"};
    kro.attrs.setInt("axis", 2);
    kro.attrs.setInt("style", 0);
    kro.inputs = {fp8Codes(code, {2, 2, 64, 16}), f32({2, 2, 3, 16}), ints(DType::I64, {1}, {5}),
                  floats({2}, headScales(2, 0.5)), floats({2, 16}, offsets),
                  ints(DType::I64, {2, 3}, {5, 6, 7, 105, 106, 107}), positiveF32({8})};
    kro.tolerance = 0;
    add(kro);
    for (auto [H, Hkv, D, len, cap] : std::vector<std::array<int64_t, 5>>{
             {8, 2, 48, 5, 64}, {32, 8, 128, 1000, 1024}, {16, 2, 64, 2047, 2048}, {18, 1, 16, 30, 40}}) {
      Case ad{"attention decode fp8" + fmt + " cache H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                  " D=" + std::to_string(D) + " keys=" + std::to_string(len + 1) + (H / Hkv > 8 ? " (row kernel)" : ""),
              "attention"};
      ad.attrs.setInt("causal", 1);
      ad.attrs.setFloat("scale", 1.0 / std::sqrt(static_cast<double>(D)));
      ad.inputs = {f32({1, H, 1, D}), fp8Codes(code, {1, Hkv, cap, D}), fp8Codes(code, {1, Hkv, cap, D}), absent(),
                   ints(DType::I64, {1}, {len}), floats({Hkv}, headScales(Hkv, 0.25)),
                   floats({Hkv}, headScales(Hkv, -0.1))};
      ad.tolerance = H / Hkv <= 8 ? 4e-3 : 2e-5; // the tensor cores (qDecodeAttentionTc) round q and the probabilities
      add(ad);
      if (len >= 1000) { // (as for the float16 cache)
        Case again = ad;
        again.name += " launched twice";
        again.captured = 2;
        add(again);
      }
      if (D != 48)
        add(withRotaryQueries(ad, 1, len, D));
    }
    for (auto [H, Hkv, D, S, len, cap, causal] : std::vector<std::array<int64_t, 7>>{
             {4, 2, 64, 17, 21, 64, 1}, {8, 2, 128, 200, 100, 512, 1}, {4, 4, 32, 130, 70, 256, 0},
             {4, 2, 24, 3, 21, 64, 1}}) {
      Case ap{"attention prompt fp8" + fmt + " cache H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                  " D=" + std::to_string(D) + " S=" + std::to_string(S) + " len=" + std::to_string(len) +
                  (causal ? " causal" : "") + (D % 16 ? " (row kernel)" : ""),
              "attention"};
      ap.attrs.setInt("causal", causal);
      ap.attrs.setFloat("scale", 1.0 / std::sqrt(static_cast<double>(D)));
      ap.inputs = {f32({1, H, S, D}), fp8Codes(code, {1, Hkv, cap, D}), fp8Codes(code, {1, Hkv, cap, D}), absent(),
                   ints(DType::I64, {1}, {len}), floats({Hkv}, headScales(Hkv, 0.25)),
                   floats({Hkv}, headScales(Hkv, 0.1))};
      ap.tolerance = D % 16 ? 2e-5 : 4e-3; // the tensor cores round q and the probabilities to float16
      add(ap);
    }
  }
  // Layers of more 16-row tiles (2113) than one wave of one-warp blocks holds (132 SMs x 16): qGemvRow takes 2 tiles
  // per block, the last block one (plain: its last tile 10 rows), plain and gated.
  Case many{"matmul_q int4 g32 M=1 K=64 N=33802 (tiles per block)", "matmul_q"};
  many.attrs.setInt("bits", 4);
  many.attrs.setInt("group_size", 32);
  many.inputs = {f32({1, 64}), bytes(DType::U8, {33802, 32}, 0, 255), positiveF32({33802, 2}),
                 bytes(DType::U8, {33802, 2}, 0, 15)};
  add(many);
  Case manyGated{"matmul_q_gated int4 g32 M=1 K=64 N=2x16904 (tiles per block)", "matmul_q_gated"};
  manyGated.attrs = many.attrs;
  manyGated.attrs.setInt("activation", 1);
  manyGated.inputs = {f32({1, 64}), bytes(DType::U8, {33808, 32}, 0, 255), positiveF32({33808, 2}),
                      bytes(DType::U8, {33808, 2}, 0, 15)};
  add(manyGated);
  // One row with K = 12288 (qGemvRow): 48 KB of x split in dynamic shared memory next to its static reductions,
  // past the 48 KB a function gets without asking.
  add(int4Product("matmul_q int4 g128 M=1 K=12288 N=40 (48 KB of shared x)", "matmul_q", 1, 12288, 40, 128));
  // A few rows of x on layers wide enough for several 16-row tiles per warp (qGemvMma: 4 tiles where N / 64
  // blocks about fill the GPU, else 2; the last tile partial), with a norm and a residual fused, a gated product
  // (its last gate tile partial), int8 codes, and K deep enough for 16 warps (registers capped at 128).
  for (int64_t M : {3, 17}) {
    Case wide = int4Product("matmul_q int4 g128 M=" + std::to_string(M) +
                                " K=1536 N=7400 (4 tiles per warp) +norm +residual",
                            "matmul_q", M, 1536, 7400, 128);
    wide.attrs.setFloat("norm_epsilon", 1e-5);
    wide.inputs.insert(wide.inputs.end(), {f32({1536}), f32({M, 7400})});
    add(wide);
  }
  Case wideGated = int4Product("matmul_q_gated int4 g64 M=5 K=1024 N=2x3700 (4 tiles per warp) +norm",
                               "matmul_q_gated", 5, 1024, 7400, 64);
  wideGated.attrs.setInt("activation", 0);
  wideGated.attrs.setFloat("norm_epsilon", 1e-5);
  wideGated.inputs.push_back(f32({1024}));
  add(wideGated);
  Case wide8{"matmul_q int8 channel M=6 K=1024 N=3688 (2 tiles per warp)", "matmul_q"};
  wide8.attrs.setInt("bits", 8);
  wide8.attrs.setInt("group_size", 1024);
  wide8.inputs = {f32({6, 1024}), bytes(DType::I8, {3688, 1024}, 0, 255), positiveF32({3688, 1})};
  add(wide8);
  add(int4Product("matmul_q int4 g128 M=17 K=12288 N=3700 (2 tiles per warp, 16 warps)", "matmul_q", 17, 12288,
                  3700, 128));
  // The compiler sends the products above of more than 4 rows to qGemvStaged (x split once per block, K in a
  // cluster's slices; at 3 rows their blocks would leave SMs idle), the others to qGemvMma: each also on the other
  // kernel, and qGemvStaged's own corners: a last chunk of one word and a last slice of one chunk, 4 tiles per warp,
  // 2 chunks in flight, float16 and FP8 codes.
  for (Case c : std::vector<Case>(out.end() - 5, out.end())) {
    const bool staged = num::numElements(c.inputs[0].shape) / c.inputs[0].shape.back() > 4; // the rule's choice
    c.name += staged ? " [qGemvMma]" : " [qGemvStaged]";
    c.tune.staged = staged ? -1 : 1;
    add(c);
  }
  Case odd = int4Product("matmul_q int4 g32 M=9 K=1056 N=2100 (staged, 5 slices of 9 chunks, one word past 8) "
                         "+residual",
                         "matmul_q", 9, 1056, 2100, 32);
  odd.inputs.insert(odd.inputs.end(), {absent(), f32({9, 2100})});
  odd.tune.staged = 1, odd.tune.slices = 5;
  add(odd);
  Case four = odd;
  four.name = "matmul_q int4 g32 M=16 K=1056 N=2100 (staged, 4 tiles per warp, 2 chunks in flight, 3 slices)";
  four.inputs[0] = f32({16, 1056}), four.inputs[5] = f32({16, 2100});
  four.tune.tiles = 4, four.tune.batch = 2, four.tune.slices = 3, four.tune.warps = 4;
  add(four);
  Case halfW{"matmul_q f16 M=4 K=2048 N=1100 (staged)", "matmul_q"};
  halfW.attrs.setInt("bits", 16);
  halfW.inputs = {f32({4, 2048}), halfWeights({1100, 2048})};
  halfW.tolerance = 4e-3;
  halfW.tune.staged = 1;
  add(halfW);
  Case fp8W{"matmul_q fp8 e4m3 M=4 K=1024 N=1500 (staged)", "matmul_q"};
  fp8W.attrs.setInt("bits", 8);
  fp8W.attrs.setInt("group_size", 1024);
  fp8W.inputs = {f32({4, 1024}), fp8Codes(DType::F8E4M3FN, {1500, 1024}), positiveF32({1500, 1})};
  fp8W.tolerance = 4e-3;
  fp8W.tune.staged = 1;
  add(fp8W);
  Case fp8Bits = fp8W;
  fp8Bits.name = "matmul_q fp8 e4m3 M=4 K=1024 N=1500 (staged, bit moves)";
  fp8Bits.tune.cvt = -1;
  add(fp8Bits);
  // Weights in the tile layout (qopt-tile-weights; the reference reads the rows they were permuted from): one
  // row (qGemvRow) over several tiles per block, with K split by its warps, a gated product's gate and up rows
  // paired, a norm and a residual; 3 rows (qGemvMma), 17 rows in 16-row tiles of x (qGemvMma, the rows a prompt
  // chunk takes without cuBLASLt), 16 rows on qGemvStaged over a cluster's slices; asymmetric and symmetric int4,
  // float16 scales, int3, int8 and FP8 codes (FP8 at one row on qGemvRow: qGemvHalf reads rows), per tensor.
  for (int64_t M : {1, 3, 16, 17}) {
    const std::string m = " M=" + std::to_string(M);
    auto addTiled = [&](Case c) { // x rounded to float16 by the kernels of more than one row
      c.tolerance = M > 1 ? 4e-3 : c.tolerance;
      add(withTiles(std::move(c)));
    };
    Case t = int4Product("matmul_q int4 g64" + m + " K=1024 N=1120 +norm +residual", "matmul_q", M, 1024, 1120, 64);
    t.attrs.setFloat("norm_epsilon", 1e-5);
    t.inputs.insert(t.inputs.end(), {f32({1024}), f32({M, 1120})});
    addTiled(t);
    addTiled(withHalfScales(t));
    Case tg = int4Product("matmul_q_gated int4 g128" + m + " K=768 N=2x528", "matmul_q_gated", M, 768, 1056, 128);
    tg.attrs.setInt("activation", 0);
    addTiled(tg);
    Case ts{"matmul_q_split int4 sym g32" + m + " K=256 N=64+32+32", "matmul_q_split"};
    ts.attrs.setInt("bits", 4);
    ts.attrs.setInt("group_size", 32);
    ts.attrs.setInt("symmetric", 1);
    ts.attrs.setInts("splits", {64, 32, 32});
    ts.inputs = {f32({M, 256}), bytes(DType::U8, {128, 128}, 0, 255), positiveF32({128, 8})};
    ts.numOutputs = 3;
    addTiled(ts);
    Case t3 = int4Product("matmul_q int3 g32" + m + " K=384 N=96", "matmul_q", M, 384, 96, 32);
    t3.attrs.setInt("bits", 3);
    t3.inputs[1] = bytes(DType::U8, {96, 192}, 0, 0x77), t3.inputs[3] = bytes(DType::U8, {96, 12}, 0, 7);
    t3.inputs[1].fill = [](std::vector<uint8_t> &b, std::mt19937 &rng) {
      std::uniform_int_distribution<int> d(0, 7);
      for (uint8_t &v : b)
        v = static_cast<uint8_t>(d(rng) | d(rng) << 4);
    };
    addTiled(t3);
    Case t8{"matmul_q int8 channel" + m + " K=512 N=80", "matmul_q"};
    t8.attrs.setInt("bits", 8);
    t8.attrs.setInt("group_size", 512);
    t8.inputs = {f32({M, 512}), bytes(DType::I8, {80, 512}, 0, 255), positiveF32({80, 1})};
    addTiled(t8);
    Case tf{"matmul_q_gated fp8 e4m3" + m + " K=640 N=2x48 +norm", "matmul_q_gated"};
    tf.attrs.setInt("bits", 8);
    tf.attrs.setInt("group_size", 640);
    tf.attrs.setInt("activation", 2);
    tf.attrs.setFloat("norm_epsilon", 1e-5);
    tf.inputs = {f32({M, 640}), fp8Codes(DType::F8E4M3FN, {96, 640}), positiveF32({96, 1}), absent(), f32({640})};
    addTiled(tf);
    Case bits = tf; // the codes by bit moves (sm_80's way; sm_89+ convert by the instruction unless tuned so)
    bits.name += " (bit moves)";
    bits.tune.cvt = -1;
    addTiled(bits);
    Case tt = int4Product("matmul_q int4 tensor" + m + " K=128 N=32", "matmul_q", M, 128, 32, 128);
    tt.inputs[2] = positiveF32({1, 1}), tt.inputs[3] = bytes(DType::U8, {1, 1}, 0, 15);
    addTiled(tt);
  }
  // A gated product's weight as a prompt reads it (matmul_q_split over the paired tiles; through cuBLASLt too), and
  // a gated product over tiles of consecutive rows.
  for (int64_t M : {1, 16, 17}) {
    Case ps = int4Product("matmul_q_split int4 g128 M=" + std::to_string(M) + " K=768 N=528+528", "matmul_q_split", M,
                          768, 1056, 128);
    ps.attrs.setInts("splits", {528, 528});
    ps.numOutputs = 2;
    ps.tolerance = M > 1 ? 4e-3 : ps.tolerance;
    add(withTiles(ps, 2));
    Case pg = int4Product("matmul_q_gated int4 g128 M=" + std::to_string(M) + " K=768 N=2x528", "matmul_q_gated", M,
                          768, 1056, 128);
    pg.attrs.setInt("activation", 0);
    pg.tolerance = ps.tolerance;
    add(withTiles(pg, 1));
  }
  // Staged with the tile layout: a cluster's 4 slices, 2 tiles per warp.
  Case stagedTiles = int4Product("matmul_q int4 g128 M=12 K=2048 N=2048 (staged, 4 slices)", "matmul_q", 12, 2048,
                                 2048, 128);
  stagedTiles.tune.staged = 1, stagedTiles.tune.slices = 4;
  stagedTiles.tolerance = 4e-3;
  add(withTiles(stagedTiles));
  for (int64_t style : {0, 1}) { // keys rotated as they are stored: 3 positions of 2 sequences at 5
    Case kr{"kv_append_rotary style=" + std::to_string(style) + " 3 at 5", "kv_append_rotary"};
    kr.attrs.setInt("axis", 2);
    kr.attrs.setInt("style", style);
    kr.inputs = {f32({2, 2, 64, 16}), f32({2, 2, 3, 16}), ints(DType::I64, {1}, {5}),
                 ints(DType::I64, {2, 3}, {5, 6, 7, 105, 106, 107}), positiveF32({8})};
    add(kr);
  }
  Case adv{"kv_advance", "kv_advance"};
  adv.attrs.setInt("axis", 2);
  adv.inputs = {ints(DType::I64, {1}, {5}), ints(DType::I64, {4}, {1, 2, 3, 16})};
  add(adv);
  Case ga{"gather ids (one negative)", "gather"};
  ga.inputs = {f32({50, 24}), ints(DType::I64, {1, 7}, {0, 3, 49, -1, 17, 17, 2})};
  add(ga);
  // prefill_last's row of the head's input: index -1 along the sequence axis of [batch, sequence, features].
  Case gl{"gather last position, axis 1", "gather"};
  gl.attrs.setInt("axis", 1);
  gl.inputs = {f32({2, 37, 72}), ints(DType::I64, {1}, {-1})};
  add(gl);
  Case gm{"gather ids along axis 2", "gather"};
  gm.attrs.setInt("axis", 2);
  gm.inputs = {f32({3, 4, 9, 5}), ints(DType::I32, {2, 2}, {8, 0, -3, 4})};
  add(gm);
  Case tr{"transpose 0,2,1,3", "transpose"};
  tr.attrs.setInts("perm", {0, 2, 1, 3});
  tr.inputs = {f32({2, 3, 5, 7})};
  add(tr);
  // The last dim kept, of whole 16-byte vectors (qTransposeRows): a prompt's heads split and merged, and a float16
  // tensor of 8-element rows with two dims swapped around it.
  Case heads{"transpose rows [1, 37, 8, 128] 0,2,1,3", "transpose"};
  heads.attrs.setInts("perm", {0, 2, 1, 3});
  heads.inputs = {f32({1, 37, 8, 128})};
  add(heads);
  Case halfRows{"transpose rows f16 [3, 5, 2, 8] 2,0,1,3", "transpose"};
  halfRows.attrs.setInts("perm", {2, 0, 1, 3});
  halfRows.inputs = {bytes(DType::F16, {3, 5, 2, 8}, 0, 0x3b)}; // finite float16 values
  add(halfRows);
  Case ca{"cast f16 -> f32", "cast"};
  ca.attrs.setInt("to", static_cast<int64_t>(DType::F32));
  ca.inputs = {{DType::F16, {7, 45},
                [](std::vector<uint8_t> &b, std::mt19937 &rng) {
                  std::uniform_real_distribution<float> d(-100.0f, 100.0f);
                  for (size_t i = 0; i < b.size() / 2; ++i)
                    reinterpret_cast<uint16_t *>(b.data())[i] = num::floatToHalf(d(rng));
                },
                false}};
  add(ca);
  Case bi{"binary add broadcast", "binary"};
  bi.attrs.setString("fn", "add");
  bi.inputs = {f32({3, 1, 5}), f32({4, 5})};
  add(bi);
  Case bl{"binary add int64 broadcast", "binary"};
  bl.attrs.setString("fn", "add");
  bl.inputs = {ints(DType::I64, {2, 3}, {1, 2, 3, -4, 5, 600000000000}), ints(DType::I64, {3}, {7, -8, 9})};
  add(bl);
  Case lt{"binary less_equal int64 -> bool", "binary"};
  lt.attrs.setString("fn", "less_equal");
  lt.inputs = {ints(DType::I64, {1, 1, 1, 5}, {0, 1, 2, 3, 4}), ints(DType::I64, {1, 1, 4, 1}, {0, 1, 2, 3})};
  add(lt);
  auto boolsOf = [](num::Shape shape) {
    return Operand{DType::Bool, std::move(shape),
                   [](std::vector<uint8_t> &b, std::mt19937 &rng) {
                     for (uint8_t &v : b)
                       v = static_cast<uint8_t>(rng() & 1);
                   },
                   false};
  };
  Case an{"binary and (broadcast)", "binary"};
  an.attrs.setString("fn", "and");
  an.inputs = {boolsOf({3, 1, 7}), boolsOf({4, 7})};
  add(an);
  Case wh{"where (broadcast)", "where"};
  wh.inputs = {boolsOf({2, 1, 5}), f32({3, 5}), f32({})};
  add(wh);
  Case bm{"binary div", "binary"};
  bm.attrs.setString("fn", "div");
  bm.inputs = {f32({6, 33}), positiveF32({6, 33})};
  add(bm);
  // Prompt-sized products: the float16 and int8 layouts, and int4 slices of rows (a 40000-row layer is dequantized
  // in two slices at K = 1100, not a multiple of 8 or of the tile).
  for (int64_t M : {64, 300}) {
    Case h{"matmul_q_split f16 M=" + std::to_string(M) + " K=256", "matmul_q_split"};
    h.attrs.setInt("bits", 16);
    h.attrs.setInts("splits", {200, 56, 56});
    h.inputs = {f32({1, M, 256}), f16({312, 256})};
    h.numOutputs = 3;
    add(h);
    Case q8{"matmul_q int8 channel M=" + std::to_string(M), "matmul_q"};
    q8.attrs.setInt("bits", 8);
    q8.attrs.setInt("group_size", 200);
    q8.attrs.setInt("symmetric", 1);
    q8.inputs = {f32({M, 200}), bytes(DType::I8, {77, 200}, 0, 255), positiveF32({77, 1})};
    add(q8);
  }
  // Prompt attention on tensor cores (head dims that are multiples of 16): causal with GQA, over a cache (one and
  // several key tiles; query tiles that end mid-plane), without causality over two batches, and a head dim of 48
  // (an odd count of 16-wide steps, stories15M's).
  struct F {
    int64_t B, H, Hkv, S, keys, len, D;
    bool causal;
  };
  for (F f : {F{1, 4, 2, 100, 100, -1, 64, true}, F{1, 4, 2, 70, 256, 37, 128, true},
              F{1, 4, 2, 130, 2048, 1500, 128, true}, F{2, 4, 4, 80, 80, -1, 32, false},
              F{1, 6, 6, 65, 65, -1, 48, true}}) {
    Case a{"attention tensor cores S=" + std::to_string(f.S) + " D=" + std::to_string(f.D) +
               (f.len >= 0 ? " cache len=" + std::to_string(f.len) : std::string()) + (f.causal ? " causal" : ""),
           "attention"};
    a.attrs.setInt("causal", f.causal ? 1 : 0);
    a.attrs.setFloat("scale", 1.0 / std::sqrt(static_cast<double>(f.D)));
    a.inputs = {f32({f.B, f.H, f.S, f.D}), f32({f.B, f.Hkv, f.keys, f.D}), f32({f.B, f.Hkv, f.keys, f.D})};
    if (f.len >= 0)
      a.inputs.insert(a.inputs.end(), {absent(), ints(DType::I64, {1}, {f.len})});
    a.tolerance = 4e-3;
    add(a);
  }
  // Deep products: K split over a block's warps, a last chunk of k partly past K, scales applied per chunk (groups
  // of whole chunks, per channel: one row's scale loads shared by its lanes) or per word.
  for (int64_t M : {1, 3, 17}) {
    struct D {
      const char *what;
      int64_t bits, group, K, N;
      bool zeros;
    };
    for (D q : {D{"int4 asym channel", 4, 4160, 4160, 72, true}, D{"int4 sym g128", 4, 128, 2048, 50, false},
                D{"int4 asym g32", 4, 32, 2080, 40, true}, D{"int8 sym g64", 8, 64, 2112, 40, false},
                D{"int4 asym g256", 4, 256, 2304, 40, true}, D{"int4 asym channel", 4, 3072, 3072, 24, true}}) {
      Case c{std::string("matmul_q ") + q.what + " M=" + std::to_string(M) + " K=" + std::to_string(q.K), "matmul_q"};
      c.attrs.setInt("bits", q.bits);
      c.attrs.setInt("group_size", q.group);
      c.attrs.setInt("symmetric", q.zeros ? 0 : 1);
      c.inputs = {f32({M, q.K}),
                  q.bits == 8 ? bytes(DType::I8, {q.N, q.K}, 0, 255) : bytes(DType::U8, {q.N, q.K / 2}, 0, 255),
                  positiveF32({q.N, q.K / q.group})};
      if (q.zeros)
        c.inputs.push_back(bytes(DType::U8, {q.N, q.K / q.group}, 0, 15));
      add(c);
      if (q.bits != 8)
        add(withHalfScales(c));
    }
    Case h{"matmul_q f16 M=" + std::to_string(M) + " K=2056 N=40", "matmul_q"};
    h.attrs.setInt("bits", 16);
    h.inputs = {f32({M, 2056}), bytes(DType::F16, {40, 2056}, 0, 0)};
    h.inputs[1].fill = [](std::vector<uint8_t> &b, std::mt19937 &rng) {
      std::uniform_real_distribution<float> d(-1.0f, 1.0f);
      for (size_t i = 0; i < b.size() / 2; ++i)
        reinterpret_cast<uint16_t *>(b.data())[i] = num::floatToHalf(d(rng));
    };
    add(h);
  }
  // A one-row product whose split x needs more than the default 48 KB of shared memory (4 K = 51,200 bytes): the
  // runtime's per-function opt-in (cuFuncSetAttribute).
  Case wide{"matmul_q int4 sym g128 M=1 K=12800 N=40 (50 KB shared)", "matmul_q"};
  wide.attrs.setInt("bits", 4);
  wide.attrs.setInt("group_size", 128);
  wide.attrs.setInt("symmetric", 1);
  wide.inputs = {f32({1, 12800}), bytes(DType::U8, {40, 6400}, 0, 255), positiveF32({40, 100})};
  add(wide);
  Case big{"matmul_q int4 asym g100 M=33 K=1100 N=40000", "matmul_q"};
  big.attrs.setInt("bits", 4);
  big.attrs.setInt("group_size", 100);
  big.attrs.setInt("symmetric", 0);
  big.inputs = {f32({33, 1100}), bytes(DType::U8, {40000, 550}, 0, 255), positiveF32({40000, 11}),
                bytes(DType::U8, {40000, 11}, 0, 15)};
  add(big);
  add(withHalfScales(big));
  // W8A8 FP8 at prompt sizes, split into three results (the weights' scales and the results' columns offset per
  // result in cuBLASLt), and a decode step's gated product with its norm (qGemvRow rounding x after the norm).
  for (int64_t act : {1, 2}) {
    Case w{std::string("matmul_q_split fp8 e4m3 act ") + (act == 1 ? "static" : "dynamic") + " M=300 K=512",
           "matmul_q_split"};
    w.attrs.setInt("bits", 8);
    w.attrs.setInt("group_size", 512);
    w.attrs.setInt("act_fp8", act);
    w.attrs.setInts("splits", {256, 64, 48});
    w.inputs = {f32({300, 512}), fp8Codes(DType::F8E4M3FN, {368, 512}), positiveF32({368, 1})};
    if (act == 1)
      w.inputs.insert(w.inputs.end(), {absent(), absent(), absent(), floats({1}, {1.0 / 448.0})});
    w.numOutputs = 3;
    add(w);
  }
  // W8A8 int8 the same way (cuBLASLt's int8 product and the epilogue per result; a result of 37 channels, whose
  // int32 sums the runtime pads to rows of 40), and K = 1100 (not a multiple of 16: qLinearQ; the library still
  // takes it, K being a multiple of 4).
  for (int64_t act : {1, 2}) {
    Case w{std::string("matmul_q_split int8 act ") + (act == 1 ? "static" : "dynamic") + " M=300 K=512",
           "matmul_q_split"};
    w.attrs.setInt("bits", 8);
    w.attrs.setInt("group_size", 512);
    w.attrs.setInt("symmetric", 1);
    w.attrs.setInt("act_int8", act);
    w.attrs.setInts("splits", {256, 64, 37});
    w.inputs = {f32({300, 512}), bytes(DType::I8, {357, 512}, 0, 255), positiveF32({357, 1})};
    if (act == 1)
      w.inputs.insert(w.inputs.end(), {absent(), absent(), absent(), floats({1}, {1.0 / 127.0})});
    w.numOutputs = 3;
    add(w);
  }
  Case i8k{"matmul_q int8 act dynamic M=33 K=1100", "matmul_q"};
  i8k.attrs.setInt("bits", 8);
  i8k.attrs.setInt("group_size", 1100);
  i8k.attrs.setInt("symmetric", 1);
  i8k.attrs.setInt("act_int8", 2);
  i8k.inputs = {f32({33, 1100}), bytes(DType::I8, {200, 1100}, 0, 255), positiveF32({200, 1})};
  add(i8k);
  Case ig{"matmul_q_gated int8 act dynamic +norm M=1 K=1024 N=2x300", "matmul_q_gated"};
  ig.attrs.setInt("bits", 8);
  ig.attrs.setInt("group_size", 1024);
  ig.attrs.setInt("symmetric", 1);
  ig.attrs.setInt("activation", 0);
  ig.attrs.setInt("act_int8", 2);
  ig.attrs.setFloat("norm_epsilon", 1e-6);
  ig.inputs = {f32({1, 1024}), bytes(DType::I8, {600, 1024}, 0, 255), positiveF32({600, 1}), absent(), f32({1024})};
  add(ig);
  Case fg{"matmul_q_gated fp8 e4m3 act dynamic +norm M=1 K=1024 N=2x300", "matmul_q_gated"};
  fg.attrs.setInt("bits", 8);
  fg.attrs.setInt("group_size", 1024);
  fg.attrs.setInt("activation", 0);
  fg.attrs.setInt("act_fp8", 2);
  fg.attrs.setFloat("norm_epsilon", 1e-6);
  fg.inputs = {f32({1, 1024}), fp8Codes(DType::F8E4M3FN, {600, 1024}), positiveF32({600, 1}), absent(), f32({1024})};
  add(fg);
  // The same with static scales (operand 6 after an absent residual): x normalized, then rounded under the scale.
  for (Case c : {ig, fg}) {
    const bool int8 = c.attrs.getInt("act_int8", 0) != 0;
    c.name.replace(c.name.find("dynamic"), 7, "static");
    c.attrs.setInt(int8 ? "act_int8" : "act_fp8", 1);
    c.inputs.insert(c.inputs.end(), {absent(), floats({1}, {int8 ? 3.0 / 127.0 : 3.0 / 448.0})});
    add(c);
  }
  // Products recorded as CUDA graphs (static entries of 2+ rows, e.g. batched decode): before any scratch exists
  // (the generated kernel) and after (cuBLASLt inside the graph).
  for (int mode : {1, 2}) {
    Case g{std::string("matmul_q_split int4 g32 M=17 recorded") + (mode == 1 ? " first" : " after a run"),
           "matmul_q_split"};
    g.attrs.setInt("bits", 4);
    g.attrs.setInt("group_size", 32);
    g.attrs.setInts("splits", {64, 32, 32});
    g.inputs = {f32({17, 96}), bytes(DType::U8, {128, 48}, 0, 255), positiveF32({128, 3}),
                bytes(DType::U8, {128, 3}, 0, 15)};
    g.numOutputs = 3;
    g.cublas = "require";
    g.captured = mode;
    add(g);
  }
  // Quantized and float16 products of 2+ rows round x (and dequantized weights) to float16 on the tensor cores, in
  // the generated kernel (qGemvMma) and in cuBLASLt alike: float16-level tolerance. One row of codes (qGemvRow,
  // qLinearQ) is float32-accurate: the default tolerance. One row of float16 weights (or of FP8 codes tuned onto
  // it, half=1) on qGemvHalf rounds x to float16 in hidden layers (float16-level tolerance) and is float32-accurate
  // as an output head (x as hi + lo): each such case runs both ways. Every product of 17+ rows also runs through cuBLASLt (and float16 weights'
  // products of 2+ rows with QRT_CUBLASLT=require).
  // Every product that runs qGemvStaged (tuned onto it, or by the rule: 5+ rows over 64+ tiles of weights; at
  // 2-4 rows the cases' blocks would leave SMs idle) also with its K slices meeting in the launch's scratch (tune
  // split=1), the way they meet on an A100, which has no clusters; of 5+ rows, where the rule may take the scratch
  // on sm_90 too, also in a cluster (split=-1).
  const size_t listed = out.size();
  for (size_t i = 0; i < listed; ++i) {
    const Case &c = out[i];
    const int64_t rows = num::numElements(c.inputs[0].shape) / c.inputs[0].shape.back();
    if (c.family.rfind("matmul_q", 0) != 0 || c.captured || rows < 2 || c.tune.staged < 0 ||
        (c.tune.staged == 0 && (rows < 5 || (c.inputs[1].shape[0] + 15) / 16 < 64)))
      continue;
    Case twin = c;
    twin.name += " [scratch]";
    twin.tune.split = 1;
    out.push_back(twin);
    if (rows >= 5 && c.tune.split == 0) {
      twin.name = c.name + " [cluster]";
      twin.tune.split = -1;
      out.push_back(twin);
    }
  }
  const size_t generated = out.size();
  for (size_t i = 0; i < generated; ++i) {
    Case &c = out[i];
    if (c.family.rfind("matmul_q", 0) != 0)
      continue;
    const int64_t rows = num::numElements(c.inputs[0].shape) / c.inputs[0].shape.back();
    if (rows == 1 && (c.inputs[1].dtype == DType::F16 || c.tune.half > 0)) {
      Case head = c;
      head.name += " [output head]";
      head.outputHead = true;
      c.tolerance = 4e-3;
      out.push_back(head);
      continue;
    }
    if (rows > 1)
      c.tolerance = 4e-3;
    auto given = [&c](size_t i) { return c.inputs.size() > i && !c.inputs[i].absent; };
    if (c.family == "matmul_q_gated" || given(4) || given(5)) // the generated kernels only (the library GEMMs take
      continue;                                               // no gate, norm or residual; a static scale, yes)
    if (c.captured || c.tune.split || rows < (c.inputs[1].dtype == DType::F16 ? 2 : 17))
      continue;
    Case lib = c;
    lib.name += " [cuBLASLt]";
    lib.cublas = "require";
    lib.tolerance = 4e-3;
    out.push_back(lib);
  }
  return out;
}

// How cases run: the GPU architectures compiled for (cubins only, no PTX: the first is the GPU's; more for
// --compile-only), NVRTC's image cache (empty: none), and whether to stop once the case's kernel is compiled (no
// GPU, no reference).
struct RunOptions {
  std::vector<std::string> archs = {"sm_90a"};
  std::string cacheDir;
  bool compileOnly = false;
  bool cold = false; // timed products rotate over copies of their weights (--cold)
  bool bf16 = false; // the kernels compiled for bfloat16 operands (--act-dtype bf16; asBf16's cases)
};

// A case for a module of bfloat16 operands: its float16 operands (weights, embedding rows, KV caches; not an int3 /
// int4 product's float16 scales, operand 2, which stay the quantizers' layout) hold the bfloat16 of the values
// they would hold, and its tolerance allows bfloat16's rounding where float16's was allowed (8 significant bits
// against 11: x8; float32-accurate paths, x as hi + lo, 16 bits against 22: 1e-4).
Case asBf16(Case c) {
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Operand &o = c.inputs[i];
    if (o.absent || o.dtype != DType::F16 || (i == 2 && c.family.rfind("matmul_q", 0) == 0))
      continue;
    o.dtype = DType::BF16;
    if (auto fill = o.fill)
      o.fill = [fill](std::vector<uint8_t> &b, std::mt19937 &rng) {
        fill(b, rng);
        for (size_t k = 0; k < b.size() / 2; ++k) {
          uint16_t &h = reinterpret_cast<uint16_t *>(b.data())[k];
          h = num::floatToBf16(num::halfToFloat(h));
        }
      };
  }
  return c;
}
double bf16Tolerance(double t) { return t >= 1e-3 ? 8 * t : t > 0 ? std::max(t, 1e-4) : t; }

// --cold: a timed product's launches take their weights from copies, in turn, that add up to at least this many
// bytes (5 times the 50 MB L2 of an H100 or H200), so that every launch reads its weights from DRAM, as a decode
// step does (each layer's weights once per step). Back to back on one copy, a matrix that fits in L2 (Llama-3-8B's
// int4 products, 29 MB; float16 q/k/v, 50 MB) is partly read from L2.
constexpr size_t kColdBytes = size_t{256} << 20;
constexpr size_t kMaxColdCopies = 64;

bool runCase(const Case &c, const RunOptions &opt, const cg::GemvTuning *tuning, std::mt19937 &rng,
             std::string &detail) {
  const num::KernelFamily *family = num::lookupFamily(c.family);
  if (!family) {
    detail = "no family";
    return false;
  }
  // Host operands.
  std::vector<std::vector<uint8_t>> hostIn(c.inputs.size());
  std::vector<num::Tensor> in(c.inputs.size());
  num::KernelArgs args;
  args.attrs = &c.attrs;
  args.pool = &num::defaultThreadPool(); // the reference of a prompt-sized product is billions of flops
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Operand &o = c.inputs[i];
    if (o.absent) {
      args.inputs.push_back(nullptr);
      continue;
    }
    in[i].dtype = o.dtype;
    in[i].shape = o.shape;
    hostIn[i].resize(in[i].bytes());
    if (o.fill) {
      o.fill(hostIn[i], rng);
    } else {
      std::uniform_real_distribution<float> d(0.05f, 1.0f);
      std::bernoulli_distribution sign(0.5);
      for (int64_t k = 0; k < in[i].numel(); ++k) {
        const float v = sign(rng) ? d(rng) : -d(rng);
        if (o.dtype == DType::F16 || o.dtype == DType::BF16)
          reinterpret_cast<uint16_t *>(hostIn[i].data())[k] =
              o.dtype == DType::F16 ? num::floatToHalf(v) : num::floatToBf16(v);
        else
          reinterpret_cast<float *>(hostIn[i].data())[k] = v;
      }
    }
    in[i].data = hostIn[i].data();
    args.inputs.push_back(&in[i]);
  }
  std::vector<num::Tensor> ref(c.numOutputs);
  for (num::Tensor &t : ref)
    args.outputs.push_back(&t);
  if (!num::inferShapes(*family, args, detail))
    return false;
  std::vector<std::vector<uint8_t>> refData(c.numOutputs);
  for (int k = 0; k < c.numOutputs; ++k) {
    refData[k].resize(ref[k].bytes());
    if (family->inPlace == k) // updated in place: starts as the operand
      std::memcpy(refData[k].data(), hostIn[static_cast<size_t>(family->inPlace)].data(), refData[k].size());
    ref[k].data = refData[k].data();
  }
  // The CUDA kernel, as qopt generates it (a tiled weight: its attribute and bytes on the GPU only).
  num::Attrs gpuAttrs = c.attrs;
  std::vector<uint8_t> tiledWeight;
  if (c.layout) {
    const int64_t N = in[1].shape[0], rowBytes = static_cast<int64_t>(hostIn[1].size()) / N;
    gpuAttrs.setInt("weight_layout", c.layout);
    tiledWeight.resize(hostIn[1].size());
    num::quant::tileRows(c.layout, hostIn[1].data(), N, rowBytes, tiledWeight.data());
  }
  auto deviceBytes = [&](size_t i) -> const std::vector<uint8_t> & {
    return i == 1 && c.layout ? tiledWeight : hostIn[i];
  };
  cg::LaunchDesc desc;
  desc.family = c.family;
  desc.attrs = &gpuAttrs;
  desc.tuning = tuning;
  desc.outputHead = c.outputHead;
  desc.bf16 = opt.bf16;
  for (size_t i = 0; i < c.inputs.size(); ++i)
    desc.inputs.push_back({c.inputs[i].dtype, c.inputs[i].shape, c.inputs[i].absent});
  for (const num::Tensor &t : ref)
    desc.results.push_back({t.dtype, t.shape, false});
  cg::CudaKernel kernel;
  if (!cg::instantiateCudaKernel(desc, kernel, detail)) {
    detail = "no kernel: " + detail;
    return false;
  }
  std::vector<cg::CudaImage> images;
  if (!cg::compileCuda(kernel.source, opt.archs, opt.cacheDir, images, detail, /*ptx=*/false, opt.bf16))
    return false;
  if (opt.compileOnly) {
    detail = "compiled (" + kernel.symbol + ")";
    return true;
  }
  qrt::Model model;
  for (const cg::CudaImage &img : images)
    model.deviceImages.push_back({img.arch, static_cast<qopt::format::ImageFormat>(img.format), img.bytes.data(),
                                  img.bytes.size()});
  const cg::KernelGeometry &g = kernel.geometry;
  model.deviceKernels.push_back(
      {kernel.symbol, {g.block, g.gridY, g.rowsPerBlock, g.colsPerBlock, g.cols, g.sharedBytes, g.geometryOperand, g.flat,
                               g.planes}});
  std::string err;
  setenv("QRT_CUBLASLT", c.cublas.c_str(), 1);
  std::unique_ptr<qrt::Backend> backend = qrt::createCudaBackend(err);
  if (!backend || !backend->prepare(model, err)) {
    detail = err;
    return false;
  }
  qrt::Backend::Kernel bound = backend->bind(*family, kernel.symbol, err);
  if (!bound) {
    detail = err;
    return false;
  }
  std::vector<num::Tensor> devIn(in), devOut(ref);
  num::KernelArgs dargs;
  dargs.attrs = &gpuAttrs;
  uint32_t id = 0;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (c.inputs[i].absent) {
      dargs.inputs.push_back(nullptr);
      continue;
    }
    devIn[i].data = backend->dynamicBuffer(id++, hostIn[i].size());
    if (!backend->upload(devIn[i].data, deviceBytes(i).data(), hostIn[i].size(), err)) {
      detail = err;
      return false;
    }
    dargs.inputs.push_back(&devIn[i]);
  }
  for (int k = 0; k < c.numOutputs; ++k) {
    if (family->inPlace == k) {
      devOut[k].data = devIn[static_cast<size_t>(family->inPlace)].data;
    } else {
      devOut[k].data = backend->dynamicBuffer(id++, refData[k].size());
      std::vector<uint8_t> poison(refData[k].size(), 0xff); // NaN everywhere the kernel does not write
      backend->upload(devOut[k].data, poison.data(), poison.size(), err);
    }
    dargs.outputs.push_back(&devOut[k]);
  }
  if (c.captured == 2 && (!backend->launch(bound, dargs, err) || !backend->synchronize(err))) {
    detail = err;
    return false;
  }
  if (c.captured) {
    for (int k = 0; k < c.numOutputs; ++k) { // the replay must write every result again
      std::vector<uint8_t> poison(refData[k].size(), 0xff);
      backend->upload(devOut[k].data, poison.data(), poison.size(), err);
    }
    qrt::Backend::Graph graph =
        backend->capture([&](std::string &e) { return backend->launch(bound, dargs, e); }, err);
    if (!graph || !backend->replay(graph, err) || !backend->synchronize(err)) {
      detail = "recorded: " + err;
      return false;
    }
  } else if (!backend->launch(bound, dargs, err) || !backend->synchronize(err)) {
    detail = err;
    return false;
  }
  // The reference.
  if (!family->reference(args, detail))
    return false;
  double worst = 0;
  for (int k = 0; k < c.numOutputs; ++k) {
    std::vector<uint8_t> got(refData[k].size());
    if (!backend->download(got.data(), devOut[k].data, got.size(), err)) {
      detail = err;
      return false;
    }
    const bool fp8 = ref[k].dtype == DType::F8E4M3FN || ref[k].dtype == DType::F8E5M2;
    const bool half = ref[k].dtype == DType::F16 || ref[k].dtype == DType::BF16;
    if (ref[k].dtype != DType::F32 && !half && !fp8) {
      if (got != refData[k]) {
        detail = "result " + std::to_string(k) + " differs";
        return false;
      }
      continue;
    }
    // FP8 results that must be exact (an FP8 KV cache's codes) are compared code for code (the sign of a zero
    // counts), a NaN code for a NaN code of either sign (float arithmetic need not keep a NaN's sign: the GPU's
    // products give the canonical positive NaN where the CPU's keep the operand's); float16 and other FP8 results
    // as the floats they hold.
    if (fp8 && c.tolerance == 0) {
      const bool e4m3 = ref[k].dtype == DType::F8E4M3FN;
      auto isNan = [e4m3](uint8_t code) { return e4m3 ? (code & 0x7F) == 0x7F : (code & 0x7F) > 0x7C; };
      int64_t differ = 0, first = -1;
      for (int64_t i = 0; i < ref[k].numel(); ++i) {
        const uint8_t g = got[static_cast<size_t>(i)], r = ref[k].as<uint8_t>()[i];
        if (g != r && !(isNan(g) && isNan(r)) && differ++ == 0)
          first = i;
      }
      if (differ > 0) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "result %d: %lld codes differ, first element %lld: 0x%02x, the reference's 0x%02x", k,
                      static_cast<long long>(differ), static_cast<long long>(first),
                      got[static_cast<size_t>(first)], ref[k].as<uint8_t>()[first]);
        detail = buf;
        return false;
      }
      continue;
    }
    // 16-bit and FP8 results (a 16-bit or FP8 KV cache) are compared as the floats they hold.
    std::vector<float> gotHalf, refHalf;
    if (half) {
      auto widen = ref[k].dtype == DType::BF16 ? num::bf16ToFloat : num::halfToFloat;
      for (int64_t i = 0; i < ref[k].numel(); ++i) {
        gotHalf.push_back(widen(reinterpret_cast<const uint16_t *>(got.data())[i]));
        refHalf.push_back(widen(ref[k].as<uint16_t>()[i]));
      }
    } else if (fp8) {
      const num::Fp8Format f = ref[k].dtype == DType::F8E4M3FN ? num::Fp8Format::E4M3FN : num::Fp8Format::E5M2;
      for (int64_t i = 0; i < ref[k].numel(); ++i) {
        gotHalf.push_back(num::fp8ToFloat(got[static_cast<size_t>(i)], f));
        refHalf.push_back(num::fp8ToFloat(ref[k].as<uint8_t>()[i], f));
      }
    }
    const float *a = gotHalf.empty() ? reinterpret_cast<const float *>(got.data()) : gotHalf.data();
    const float *b = refHalf.empty() ? ref[k].as<float>() : refHalf.data();
    double scale = 1, diff = 0;
    for (int64_t i = 0; i < ref[k].numel(); ++i)
      scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    for (int64_t i = 0; i < ref[k].numel(); ++i) {
      if (std::isnan(a[i]) != std::isnan(b[i])) {
        detail = "result " + std::to_string(k) + " element " + std::to_string(i) + ": NaN mismatch";
        return false;
      }
      if (!std::isnan(a[i]))
        diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    }
    worst = std::max(worst, diff / scale);
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "max rel error %.2e", worst);
  detail = buf;
  if (c.timed > 0 && worst <= c.tolerance) {
    double weightBytes = 0;
    for (size_t i = 1; i < c.inputs.size(); ++i)
      if (!c.inputs[i].absent)
        weightBytes += static_cast<double>(hostIn[i].size());
    // The launches' operands: these, or with --cold copies of every operand but x (a product's weights, and its
    // norm scale and residual, which are small), launch i taking copy i % copies.
    const bool product = c.family.rfind("matmul", 0) == 0;
    const size_t copies = opt.cold && product && weightBytes > 0
                              ? std::clamp<size_t>(static_cast<size_t>(kColdBytes / weightBytes) + 1, 1, kMaxColdCopies)
                              : 1;
    std::vector<std::vector<num::Tensor>> copyIn(copies - 1, devIn);
    std::vector<num::KernelArgs> sets(copies, dargs);
    for (size_t r = 1; r < copies; ++r)
      for (size_t i = 1; i < c.inputs.size(); ++i) {
        if (c.inputs[i].absent)
          continue;
        copyIn[r - 1][i].data = backend->dynamicBuffer(id++, hostIn[i].size());
        if (!copyIn[r - 1][i].data) {
          detail = "no device memory for copy " + std::to_string(r) + " of the weights (--cold)";
          return false;
        }
        if (!backend->upload(copyIn[r - 1][i].data, deviceBytes(i).data(), hostIn[i].size(), err)) {
          detail = err;
          return false;
        }
        sets[r].inputs[i] = &copyIn[r - 1][i];
      }
    // Back-to-back launches on one stream: the mean is the kernel's time once it exceeds the launch rate. Warm-up:
    // 25 ms of launches (with 10 launches, the first of several tunings of a case read ~1 us slow on an H100 where
    // every tuning was the same kernel), then the median of 5 runs.
    using Clock = std::chrono::steady_clock;
    const auto warm = Clock::now();
    for (int i = 0; i < 10 || Clock::now() - warm < std::chrono::milliseconds(25); ++i) {
      backend->launch(bound, sets[static_cast<size_t>(i) % copies], err);
      if (i % 64 == 63)
        backend->synchronize(err);
    }
    backend->synchronize(err);
    std::array<double, 5> runs;
    for (double &run : runs) {
      const auto t0 = Clock::now();
      for (int i = 0; i < c.timed; ++i)
        backend->launch(bound, sets[static_cast<size_t>(i) % copies], err);
      if (!backend->synchronize(err)) {
        detail = err;
        return false;
      }
      run = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / c.timed;
    }
    std::sort(runs.begin(), runs.end());
    const double us = runs[runs.size() / 2];
    const int64_t K = c.inputs[0].shape.back(), M = num::numElements(c.inputs[0].shape) / K;
    if (c.family.rfind("matmul", 0) == 0 && M >= 64) // compute-bound: 2 M K N flops
      std::snprintf(buf, sizeof buf, "max rel error %.2e, %.2f us, %.0f TFLOP/s", worst, us,
                    2.0 * static_cast<double>(M * K) * static_cast<double>(ref[0].shape.back()) / us * 1e-6);
    else if (c.family.rfind("matmul", 0) == 0)
      std::snprintf(buf, sizeof buf, "max rel error %.2e, %.2f us, %.0f GB/s of weights", worst, us,
                    weightBytes / us * 1e-3);
    else // attention reads only the cache's filled positions: no meaningful byte count here
      std::snprintf(buf, sizeof buf, "max rel error %.2e, %.2f us", worst, us);
    detail = buf;
    if (copies > 1)
      detail += ", weights from " + std::to_string(copies) + " copies in turn";
  }
  return worst <= c.tolerance;
}

// A CUDA backend holding one compiled module: every module carries the runtime's helper kernels
// (qopt_argmax_cluster_rows, qopt_sample_cluster_rows), which the helper checks below run through the backend (a
// row over a cluster of 1 to 8 blocks by its width, on a GPU with clusters; QRT_ROW_BLOCKS caps it).
std::unique_ptr<qrt::Backend> helperBackend(const RunOptions &opt, std::vector<cg::CudaImage> &images,
                                            std::string &detail) {
  cg::LaunchDesc desc; // any kernel
  num::Attrs attrs;
  attrs.setInt("activation", 0);
  desc.family = "gated_act";
  desc.attrs = &attrs;
  desc.inputs = {{DType::F32, {1, 8}, false}, {DType::F32, {1, 8}, false}};
  desc.results = {{DType::F32, {1, 8}, false}};
  desc.bf16 = opt.bf16;
  cg::CudaKernel kernel;
  if (!cg::instantiateCudaKernel(desc, kernel, detail) ||
      !cg::compileCuda(kernel.source, opt.archs, opt.cacheDir, images, detail, /*ptx=*/false, opt.bf16))
    return nullptr;
  qrt::Model model;
  for (const cg::CudaImage &img : images)
    model.deviceImages.push_back({img.arch, static_cast<qopt::format::ImageFormat>(img.format), img.bytes.data(),
                                  img.bytes.size()});
  std::unique_ptr<qrt::Backend> backend = qrt::createCudaBackend(detail);
  if (!backend || !backend->prepare(model, detail))
    return nullptr;
  return backend;
}

// Rows whose choice the helpers must get right: ties, NaN, infinities, a row of NaN.
std::vector<std::vector<float>> specialRows() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  return {
      {1, 3, 3, 2},               // a tie: the lower index
      {nan, -1, nan, -0.5f, nan}, // NaN never chosen
      {-inf, -inf, -inf},         // all -inf: the first
      {nan, nan},                 // all NaN: 0
      {-2, inf, 5, inf},          // +inf, tied
  };
}

// Three copies of `row` in the backend's memory (a block per row), or null with `error` set.
const void *threeCopies(qrt::Backend &backend, const std::vector<float> &row, std::string &error) {
  std::vector<float> m;
  for (int k = 0; k < 3; ++k)
    m.insert(m.end(), row.begin(), row.end());
  void *dev = backend.dynamicBuffer(0, m.size() * sizeof(float));
  if (!dev)
    error = "no device memory for " + std::to_string(m.size()) + " floats";
  return dev && backend.upload(dev, m.data(), m.size() * sizeof(float), error) ? dev : nullptr;
}

// The runtime's argmax helper against qrt::argmaxRow: the special rows and rows up to a 128256-wide vocabulary
// (one to eight blocks a row; the largest value tied across blocks in the widest).
bool runArgmaxCheck(const RunOptions &opt, std::mt19937 &rng, std::string &detail) {
  std::vector<cg::CudaImage> images;
  std::unique_ptr<qrt::Backend> backend = helperBackend(opt, images, detail);
  if (!backend)
    return false;
  std::string err;
  std::vector<std::vector<float>> rows = specialRows();
  std::uniform_real_distribution<float> u(-30.0f, 30.0f);
  for (int64_t cols : {1, 33, 1000, 20001, 50000, 128256}) {
    std::vector<float> r(static_cast<size_t>(cols));
    for (float &v : r)
      v = u(rng);
    r[static_cast<size_t>(cols / 3)] = 31.0f; // the maximum, also at the end of the longest row
    if (cols > 1000)
      r.back() = 31.0f, r[7] = 30.5f;
    rows.push_back(r);
  }
  for (const std::vector<float> &r : rows) {
    const int64_t cols = static_cast<int64_t>(r.size());
    const void *dev = threeCopies(*backend, r, err);
    int64_t ids[3] = {-5, -5, -5};
    if (!dev || !backend->argmaxRows(dev, 3, cols, ids, err)) {
      detail = err;
      return false;
    }
    const int64_t want = qrt::argmaxRow(r.data(), cols);
    for (int64_t id : ids)
      if (id != want) {
        detail = "a row of " + std::to_string(cols) + ": " + std::to_string(id) + ", expected " + std::to_string(want);
        return false;
      }
  }
  detail = std::to_string(rows.size()) + " rows";
  return true;
}

// The runtime's sampling helper against qrt::sampleRow: temperature, top_k, top_p and the draw over rows with ties, NaN
// and infinities and over rows of one to eight blocks (20001: not whole float4s; 128256 wide: one with many equal
// values), each row three times with three uniform numbers. The GPU adds the probability masses in another order, so a
// token that differs must be the reference's for a number or a top_p within rounding (1e-7, 1e-6) of the one given (the
// GPU's top_p masses are fixed-point sums of 2^-40 units).
bool runSampleCheck(const RunOptions &opt, std::mt19937 &rng, std::string &detail) {
  std::vector<cg::CudaImage> images;
  std::unique_ptr<qrt::Backend> backend = helperBackend(opt, images, detail);
  if (!backend)
    return false;
  std::string err;
  std::vector<std::vector<float>> rows = specialRows();
  rows.push_back({0.0f, 5.0f, 4.0f, 4.0f, 1.0f, -0.0f}); // -0 and +0 one value
  std::normal_distribution<float> d(0.0f, 3.0f);
  const int64_t widths[5] = {1000, 20001, 50000, 128256, 128256};
  for (int w = 0; w < 5; ++w) {
    std::vector<float> r(static_cast<size_t>(widths[w]));
    const bool steps = w == 4; // values on a grid of 0.25: many equal
    for (float &v : r)
      v = steps ? std::round(d(rng) * 4.0f) / 4.0f : d(rng);
    rows.push_back(r);
  }
  const qrt::Sampling params[] = {{1.0f, 0, 1.0f},   {0.7f, 50, 1.0f}, {1.0f, 0, 0.9f},
                                  {1.3f, 40, 0.8f},  {2.0f, 1, 1.0f},  {0.5f, 0, 0.05f},
                                  {1.0f, 3, 0.999f}, {0.8f, 100000, 0.5f}};
  const double uniforms[3] = {0.0, 0.37, 0.999999};
  int exact = 0, rounding = 0;
  for (const std::vector<float> &r : rows)
    for (const qrt::Sampling &s : params) {
      const int64_t cols = static_cast<int64_t>(r.size());
      const void *dev = threeCopies(*backend, r, err);
      int64_t ids[3] = {-5, -5, -5};
      if (!dev || !backend->sampleRows(dev, 3, cols, s, uniforms, ids, err)) {
        detail = err;
        return false;
      }
      for (int k = 0; k < 3; ++k) {
        const int64_t want = qrt::sampleRow(r.data(), cols, s, uniforms[k]);
        if (ids[k] == want) {
          ++exact;
          continue;
        }
        bool near = false;
        for (double du : {-1e-7, 1e-7}) {
          const double u = std::min(std::max(uniforms[k] + du, 0.0), 0.9999999);
          near = near || qrt::sampleRow(r.data(), cols, s, u) == ids[k];
        }
        for (float dp : {-1e-6f, 1e-6f}) {
          qrt::Sampling t = s;
          t.topP = std::min(1.0f, s.topP + dp);
          near = near || qrt::sampleRow(r.data(), cols, t, uniforms[k]) == ids[k];
        }
        if (!near) {
          detail = "a row of " + std::to_string(cols) + ", temperature " + std::to_string(s.temperature) + ", top_k " +
                   std::to_string(s.topK) + ", top_p " + std::to_string(s.topP) + ", u " +
                   std::to_string(uniforms[k]) + ": " + std::to_string(ids[k]) + ", expected " + std::to_string(want);
          return false;
        }
        ++rounding;
      }
    }
  detail = std::to_string(exact) + " draws as the reference, " + std::to_string(rounding) + " within rounding";
  return true;
}

// The row helpers timed on one 128256-wide row of logits (normal, sigma 3) as a generator calls them once a token:
// the uniform number uploaded, the launch, the id downloaded; the median of 200 calls after 20, per setting.
void benchRowHelpers(const RunOptions &opt, std::mt19937 &rng, int &passed, int &failed) {
  std::vector<cg::CudaImage> images;
  std::string detail;
  std::unique_ptr<qrt::Backend> backend = helperBackend(opt, images, detail);
  std::vector<float> row(128256);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (float &v : row)
    v = d(rng);
  void *dev = backend ? backend->dynamicBuffer(0, row.size() * sizeof(float)) : nullptr;
  if (!dev || !backend->upload(dev, row.data(), row.size() * sizeof(float), detail)) {
    std::printf("FAIL row helpers: %s\n", detail.empty() ? "no device memory" : detail.c_str());
    ++failed;
    return;
  }
  const struct {
    const char *name;
    qrt::Sampling s;
  } settings[] = {{"argmax", {0.0f, 0, 1.0f}},         {"temperature 0.8", {0.8f, 0, 1.0f}},
                  {"top-k 40", {0.8f, 40, 1.0f}},      {"top-p 0.9", {0.8f, 0, 0.9f}},
                  {"top-k 40 top-p 0.9", {0.8f, 40, 0.9f}}};
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (const auto &[name, s] : settings) {
    std::vector<double> us;
    bool ok = true;
    for (int i = 0; i < 220 && ok; ++i) {
      const double uniform = u(rng);
      int64_t id = -1;
      const auto t0 = std::chrono::steady_clock::now();
      ok = backend->sampleRows(dev, 1, static_cast<int64_t>(row.size()), s, &uniform, &id, detail);
      const auto t1 = std::chrono::steady_clock::now();
      if (i >= 20)
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      else // the first calls' tokens the reference's (a number within rounding of a boundary: ~1e-7 a call)
        ok = ok && id == qrt::sampleRow(row.data(), static_cast<int64_t>(row.size()), s, uniform);
    }
    if (ok) {
      std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
      std::printf("PASS row helper %s, 128256 values: %.1f us a call (median of %zu)\n", name, us[us.size() / 2],
                  us.size());
    } else {
      std::printf("FAIL row helper %s: %s\n", name, detail.empty() ? "a token not the reference's" : detail.c_str());
    }
    (ok ? passed : failed)++;
  }
}

// The linear layers of a Llama-3-8B-shaped model (K, N) at decode batch sizes: float16 weights and int4 g128
// (asymmetric; scales float32 and float16), timed.
std::vector<Case> benchCases() {
  std::vector<Case> out;
  for (auto [K, N] : {std::pair<int64_t, int64_t>{4096, 14336}, {14336, 4096}})
    for (int64_t M : {1, 2, 4, 8, 16, 512}) {
      const std::string shape = " M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N);
      Case h{"f16" + shape, "matmul_q"};
      h.attrs.setInt("bits", 16);
      h.inputs = {f32({M, K}), halfWeights({N, K})};
      h.timed = 200;
      Case q{"int4 g128" + shape, "matmul_q"};
      q.attrs.setInt("bits", 4);
      q.attrs.setInt("group_size", 128);
      q.inputs = {f32({M, K}), bytes(DType::U8, {N, K / 2}, 0, 255), positiveF32({N, K / 128}),
                  bytes(DType::U8, {N, K / 128}, 0, 15)};
      q.timed = 200;
      h.tolerance = q.tolerance = 4e-3;
      // Up to 16 rows the generated kernel (the runtime's choice for codes; float16 weights go to cuBLASLt from 2
      // rows, shown next to it); prompt-sized products as the runtime runs them where it can: cuBLASLt.
      if (M == 512)
        for (Case *c : {&h, &q}) {
          c->name += " [cuBLASLt]";
          c->cublas = "require";
          c->timed = 50;
        }
      out.push_back(h);
      out.push_back(q);
      out.push_back(withHalfScales(q)); // the layout qopt's quantizers write (float16 scales)
      if (M > 1 && M < 512) {
        h.name += " [cuBLASLt]";
        h.cublas = "require";
        out.push_back(h);
      }
    }
  // FP8 E4M3 weight codes per channel (fp8w), one row.
  for (auto [K, N] : {std::pair<int64_t, int64_t>{4096, 14336}, {14336, 4096}}) {
    Case f{"fp8 e4m3 M=1 K=" + std::to_string(K) + " N=" + std::to_string(N), "matmul_q"};
    f.attrs.setInt("bits", 8);
    f.attrs.setInt("group_size", K);
    f.inputs = {f32({1, K}), fp8Codes(DType::F8E4M3FN, {N, K}), positiveF32({N, 1})};
    f.tolerance = 4e-3;
    f.timed = 200;
    out.push_back(f);
  }
  // W8A8 FP8 (E4M3 per channel, x per row) at prompt sizes on cuBLASLt's FP8 tensor cores, W8A8 int8 on its int8
  // ones (with the rounding of x and the scaling epilogue), next to float16 weights on cuBLASLt (x rounded to
  // float16, the weights as stored): bench/gpu/gemm_torch.py times torch's F.linear and _scaled_mm with the same
  // scales.
  for (int64_t M : {2048, 4096}) {
    const std::string shape = " M=" + std::to_string(M) + " K=4096 N=14336 [cuBLASLt]";
    Case f{"fp8 e4m3 act dynamic" + shape, "matmul_q"};
    f.attrs.setInt("bits", 8);
    f.attrs.setInt("group_size", 4096);
    f.attrs.setInt("act_fp8", 2);
    f.inputs = {f32({M, 4096}), fp8Codes(DType::F8E4M3FN, {14336, 4096}), positiveF32({14336, 1})};
    Case i{"int8 act dynamic" + shape, "matmul_q"};
    i.attrs.setInt("bits", 8);
    i.attrs.setInt("group_size", 4096);
    i.attrs.setInt("symmetric", 1);
    i.attrs.setInt("act_int8", 2);
    i.inputs = {f32({M, 4096}), bytes(DType::I8, {14336, 4096}, 0, 255), positiveF32({14336, 1})};
    Case h{"f16" + shape, "matmul_q"};
    h.attrs.setInt("bits", 16);
    h.inputs = {f32({M, 4096}), halfWeights({14336, 4096})};
    for (Case *c : {&f, &i, &h}) {
      c->tolerance = 4e-3;
      c->cublas = "require";
      c->timed = 20;
      out.push_back(*c);
    }
  }
  // A decode step's gate/up product with its gated activation (matmul_q_gated: 2 x 14336 stacked rows), int4 g128
  // (qGemvRow, 4 tiles per block) and float16 (qGemvMma).
  for (int bits : {4, 16}) {
    Case g{std::string(bits == 4 ? "int4 g128" : "f16") + " gated M=1 K=4096 N=2x14336", "matmul_q_gated"};
    g.attrs.setInt("bits", bits);
    g.attrs.setInt("activation", 0);
    if (bits == 4) {
      g.attrs.setInt("group_size", 128);
      g.inputs = {f32({1, 4096}), bytes(DType::U8, {28672, 2048}, 0, 255), positiveF32({28672, 32}),
                  bytes(DType::U8, {28672, 32}, 0, 15)};
    } else {
      g.inputs = {f32({1, 4096}), halfWeights({28672, 4096})};
    }
    g.tolerance = 4e-3;
    g.timed = 200;
    out.push_back(g);
    // The same with the layer's rms_norm in the product's prologue (qopt-fuse-norm-product): its cost over the
    // plain product, against the add_rms_norm launch it replaces (below).
    g.name += " +norm";
    g.attrs.setFloat("norm_epsilon", 1e-5);
    if (bits == 16)
      g.inputs.push_back(absent()), g.inputs.push_back(absent());
    g.inputs.push_back(f32({4096}));
    out.push_back(g);
  }
  // The other one-row products of a Llama-3-8B layer: q/k/v stacked (N = 4096 + 2 x 1024) and o.
  for (int64_t N : {6144, 4096}) {
    Case q{"int4 g128 M=1 K=4096 N=" + std::to_string(N), "matmul_q"};
    q.attrs.setInt("bits", 4);
    q.attrs.setInt("group_size", 128);
    q.inputs = {f32({1, 4096}), bytes(DType::U8, {N, 2048}, 0, 255), positiveF32({N, 32}),
                bytes(DType::U8, {N, 32}, 0, 15)};
    q.tolerance = 4e-3;
    q.timed = 200;
    out.push_back(q);
  }
  // The float16 one-row products the gated one and the K = 4096 / 14336 matrices above leave out: q/k/v, o, and
  // the 128256-row lm_head (qGemvHalf).
  // With N = 6144 and 128256, the same with an rms_norm in the prologue (qopt-fuse-norm-product's float16 rule).
  for (int64_t N : {6144, 4096, 128256}) {
    Case h{"f16 M=1 K=4096 N=" + std::to_string(N), "matmul_q"};
    h.attrs.setInt("bits", 16);
    h.inputs = {f32({1, 4096}), f16({N, 4096})};
    h.tolerance = 4e-3;
    h.timed = 200;
    h.outputHead = N == 128256; // generated as a head is: x as float16 hi + lo
    out.push_back(h);
    if (N == 4096)
      continue;
    h.name += " +norm";
    h.attrs.setFloat("norm_epsilon", 1e-5);
    h.inputs.push_back(absent()), h.inputs.push_back(absent());
    h.inputs.push_back(f32({4096}));
    out.push_back(h);
  }
  // fp8w's one-row products of a Llama-3-8B decode step (E4M3 per channel): gate/up gated with its norm, q/k/v with
  // its norm, o and down with the residual add.
  auto fp8Row = [&](const std::string &name, const char *family, int64_t K, int64_t N) {
    Case f{"fp8 e4m3 " + name + " M=1 K=" + std::to_string(K) + " N=" + std::to_string(N), family};
    f.attrs.setInt("bits", 8);
    f.attrs.setInt("group_size", K);
    f.inputs = {f32({1, K}), fp8Codes(DType::F8E4M3FN, {N, K}), positiveF32({N, 1})};
    f.tolerance = 4e-3;
    f.timed = 200;
    return f;
  };
  {
    Case g = fp8Row("gated +norm", "matmul_q_gated", 4096, 28672);
    g.attrs.setInt("activation", 0);
    g.attrs.setFloat("norm_epsilon", 1e-5);
    g.inputs.push_back(absent()), g.inputs.push_back(f32({4096}));
    out.push_back(g);
    Case q = fp8Row("+norm", "matmul_q", 4096, 6144);
    q.attrs.setFloat("norm_epsilon", 1e-5);
    q.inputs.push_back(absent()), q.inputs.push_back(f32({4096}));
    out.push_back(q);
    for (auto [K, N] : {std::pair<int64_t, int64_t>{4096, 4096}, {14336, 4096}}) {
      Case r = fp8Row("+residual", "matmul_q", K, N);
      r.inputs.push_back(absent()), r.inputs.push_back(absent()), r.inputs.push_back(f32({1, N}));
      out.push_back(r);
    }
  }
  // The down projection with the residual add in its epilogue, int4 g128 one row (qGemvRow).
  Case dr{"int4 g128 M=1 K=14336 N=4096 +residual", "matmul_q"};
  dr.attrs.setInt("bits", 4);
  dr.attrs.setInt("group_size", 128);
  dr.inputs = {f32({1, 14336}), bytes(DType::U8, {4096, 7168}, 0, 255), positiveF32({4096, 112}),
               bytes(DType::U8, {4096, 112}, 0, 15), absent(), f32({1, 4096})};
  dr.tolerance = 4e-3;
  dr.timed = 200;
  out.push_back(dr);
  // The rest of a decode step at the same shapes: attention of one query over the KV state (32 heads, 8 KV heads,
  // head dim 128, a 4096-position cache holding 255 or 4095 earlier positions, an 8192-position one holding 8191;
  // float32, float16 and FP8 caches) and the residual add + RMSNorm.
  for (int64_t len : {255, 4095, 8191}) {
    const int64_t cap = len < 4096 ? 4096 : 8192;
    Case a{"attention decode H=32 Hkv=8 D=128 keys=" + std::to_string(len + 1), "attention"};
    a.attrs.setInt("causal", 1);
    a.attrs.setFloat("scale", 1.0 / std::sqrt(128.0));
    a.inputs = {f32({1, 32, 1, 128}), f32({1, 8, cap, 128}), f32({1, 8, cap, 128}), absent(),
                ints(DType::I64, {1}, {len})};
    a.timed = 200;
    out.push_back(a);
    Case ah = a;
    ah.name = "attention decode f16 cache H=32 Hkv=8 D=128 keys=" + std::to_string(len + 1);
    ah.inputs[1] = f16({1, 8, cap, 128});
    ah.inputs[2] = f16({1, 8, cap, 128});
    ah.tolerance = 4e-3; // the tensor cores round q and the probabilities to float16
    out.push_back(ah);
    Case a8 = a; // an FP8 cache (--kv-cache=fp8): E4M3 codes, per-kv-head scales
    a8.name = "attention decode fp8 cache H=32 Hkv=8 D=128 keys=" + std::to_string(len + 1);
    a8.inputs[1] = fp8Codes(DType::F8E4M3FN, {1, 8, cap, 128});
    a8.inputs[2] = fp8Codes(DType::F8E4M3FN, {1, 8, cap, 128});
    a8.inputs.push_back(floats({8}, std::vector<double>(8, 0.01)));
    a8.inputs.push_back(floats({8}, std::vector<double>(8, 0.005)));
    a8.tolerance = 4e-3;
    out.push_back(a8);
  }
  // A 512-token prompt chunk after 1536 earlier positions (tensor cores): 2 * 2 * 32 * 512 * ~1792 * 128 flops.
  Case pf{"attention prefill H=32 Hkv=8 D=128 S=512 keys=2048", "attention"};
  pf.attrs.setInt("causal", 1);
  pf.attrs.setFloat("scale", 1.0 / std::sqrt(128.0));
  pf.inputs = {f32({1, 32, 512, 128}), f32({1, 8, 2048, 128}), f32({1, 8, 2048, 128}), absent(),
               ints(DType::I64, {1}, {1536})};
  pf.tolerance = 4e-3;
  pf.timed = 20;
  out.push_back(pf);
  // The same over a float16 cache (qFlashAttentionHalf), and a whole 2048-token prompt (one prefill chunk) both
  // ways: 2 * 2 * 32 * 2048 * ~1024 * 128 flops.
  Case pfh = pf;
  pfh.name = "attention prefill f16 cache H=32 Hkv=8 D=128 S=512 keys=2048";
  pfh.inputs[1] = f16({1, 8, 2048, 128});
  pfh.inputs[2] = f16({1, 8, 2048, 128});
  out.push_back(pfh);
  Case whole = pf;
  whole.name = "attention prefill H=32 Hkv=8 D=128 S=2048 keys=2048";
  whole.inputs[0] = f32({1, 32, 2048, 128});
  whole.inputs[4] = ints(DType::I64, {1}, {0});
  out.push_back(whole);
  Case wholeHalf = whole;
  wholeHalf.name = "attention prefill f16 cache H=32 Hkv=8 D=128 S=2048 keys=2048";
  wholeHalf.inputs[1] = f16({1, 8, 2048, 128});
  wholeHalf.inputs[2] = f16({1, 8, 2048, 128});
  out.push_back(wholeHalf);
  Case wholeFp8 = whole;
  wholeFp8.name = "attention prefill fp8 cache H=32 Hkv=8 D=128 S=2048 keys=2048";
  wholeFp8.inputs[1] = fp8Codes(DType::F8E4M3FN, {1, 8, 2048, 128});
  wholeFp8.inputs[2] = fp8Codes(DType::F8E4M3FN, {1, 8, 2048, 128});
  wholeFp8.inputs.push_back(floats({8}, std::vector<double>(8, 0.01)));
  wholeFp8.inputs.push_back(floats({8}, std::vector<double>(8, 0.005)));
  out.push_back(wholeFp8);
  // The residual add and norm of a decode step, then the memory-bound launches of a 2048-token prompt: the add and
  // norm, the gated activation, the heads' split (the float32 bytes each reads and writes: 128, 352 and 64 MB).
  for (int64_t rows : {1, 2048}) {
    Case n{std::string(rows > 1 ? "prompt " : "") + "add_rms_norm rows=" + std::to_string(rows) + " C=4096",
           "add_rms_norm"};
    n.attrs.setFloat("epsilon", 1e-5);
    n.inputs = {f32({1, rows, 4096}), f32({1, rows, 4096}), f32({4096})};
    n.numOutputs = 2;
    n.timed = rows > 1 ? 50 : 200;
    out.push_back(n);
  }
  Case pg{"prompt gated_act silu 2048x14336", "gated_act"};
  pg.attrs.setInt("activation", 0);
  pg.inputs = {f32({1, 2048, 14336}), f32({1, 2048, 14336})};
  pg.timed = 50;
  out.push_back(pg);
  Case pt{"prompt transpose rows [1, 2048, 32, 128] 0,2,1,3", "transpose"};
  pt.attrs.setInts("perm", {0, 2, 1, 3});
  pt.inputs = {f32({1, 2048, 32, 128})};
  pt.timed = 50;
  out.push_back(pt);
  return out;
}

} // namespace

int main(int argc, char **argv) {
  RunOptions opt;
  opt.cacheDir = cg::defaultCudaCacheDir();
  bool bench = false, tiles = false, list = false;
  std::string only;
  int shard = 0, shards = 1;
  std::vector<std::pair<std::string, cg::GemvTuning>> tunings;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--arch" && i + 1 < argc) {
      opt.archs.clear();
      std::stringstream list(argv[++i]);
      for (std::string a; std::getline(list, a, ',');)
        opt.archs.push_back(a);
    }
    else if (std::string(argv[i]) == "--cache" && i + 1 < argc)
      opt.cacheDir = argv[++i];
    else if (std::string(argv[i]) == "--compile-only")
      opt.compileOnly = true;
    else if (std::string(argv[i]) == "--tune" && i + 1 < argc) {
      cg::GemvTuning t;
      const std::string spec = argv[++i];
      std::stringstream ss(spec);
      std::string item;
      bool ok = true;
      while (ok && spec != "default" && std::getline(ss, item, ',')) {
        const size_t eq = item.find('=');
        const std::string key = item.substr(0, eq);
        int *field = key == "tiles" ? &t.tiles : key == "warps" ? &t.warps : key == "bps" ? &t.blocksPerSm
                     : key == "batch" ? &t.batch : key == "groups" ? &t.groups
                     : key == "wt" ? &t.warpTiles : key == "exact" ? &t.exact : key == "staged" ? &t.staged
                     : key == "ks" ? &t.slices : key == "half" ? &t.half : key == "cvt" ? &t.cvt
                     : key == "pipe" ? &t.pipe : key == "split" ? &t.split : nullptr;
        ok = field && eq != std::string::npos && std::sscanf(item.c_str() + eq + 1, "%d", field) == 1;
      }
      if (!ok) {
        std::fprintf(stderr, "--tune takes tiles=T,warps=W,bps=B,batch=U,groups=G,wt=V,exact=E,staged=S,ks=K,"
                             "half=H,cvt=C,pipe=P,split=X (any of them; 0 or absent: the compiler's choice; groups, "
                             "exact, staged, half, cvt and split 1 or -1) or default\n");
        return 2;
      }
      tunings.emplace_back(spec, t);
    }
    else if (std::string(argv[i]) == "--bench")
      bench = true;
    else if (std::string(argv[i]) == "--cold")
      opt.cold = true;
    else if (std::string(argv[i]) == "--tiles")
      tiles = true;
    else if (std::string(argv[i]) == "--list")
      list = true;
    else if (std::string(argv[i]) == "--act-dtype" && i + 1 < argc) {
      const std::string a = argv[++i];
      if (a != "f16" && a != "bf16") {
        std::fprintf(stderr, "--act-dtype takes f16 or bf16\n");
        return 2;
      }
      opt.bf16 = a == "bf16";
    }
    else if (std::string(argv[i]) == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (std::string(argv[i]) == "--shard" && i + 1 < argc) {
      if (std::sscanf(argv[++i], "%d/%d", &shard, &shards) != 2 || shards < 1 || shard < 0 || shard >= shards) {
        std::fprintf(stderr, "--shard takes I/N with 0 <= I < N\n");
        return 2;
      }
    } else {
      const bool help = std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h";
      if (!help)
        std::fprintf(stderr, "qopt-gpu-kernel-check: error: unknown argument or missing value: '%s'\n", argv[i]);
      std::fprintf(help ? stdout : stderr,
                   "usage: qopt-gpu-kernel-check [--arch sm_90a[,sm_80]] [--bench] [--cold] [--tiles]\n"
                   "         [--only TEXT|...] [--list] [--shard I/N] [--cache DIR] [--compile-only]\n"
                   "         [--act-dtype f16|bf16] [--tune K=V,...|default]...\n"
                   "(the options are described at the top of test/gpu/KernelCheck.cpp)\n");
      return help ? 0 : 2;
    }
  }
  std::mt19937 rng(1234);
  int passed = 0, failed = 0;
  if (tunings.empty())
    tunings.emplace_back("", cg::GemvTuning{});
  std::vector<Case> all = bench ? benchCases() : cases();
  if (tiles) // every product whose weight the tile layout takes, in it
    for (Case &c : all)
      if (tileable(c) && !c.layout)
        c = withTiles(std::move(c));
  std::vector<std::string> wanted; // --only's alternatives
  for (size_t at = 0;;) {
    const size_t bar = only.find('|', at);
    wanted.push_back(only.substr(at, bar == std::string::npos ? std::string::npos : bar - at));
    if (bar == std::string::npos)
      break;
    at = bar + 1;
  }
  auto selected = [&](const std::string &name) {
    return std::any_of(wanted.begin(), wanted.end(),
                       [&](const std::string &w) { return name.find(w) != std::string::npos; });
  };
  for (size_t index = 0; index < all.size(); ++index) {
    const Case &c = all[index];
    if (!selected(c.name) || static_cast<int>(index % shards) != shard)
      continue;
    if (list) {
      std::printf("%s\n", c.name.c_str());
      continue;
    }
    for (const auto &[spec, tuning] : tunings) { // each --tune (the matrix-vector kernels)
      std::string detail;
      Case tuned = opt.bf16 ? asBf16(c) : c;
      // One row on qGemvHalf (float16 weights, or FP8 codes: the compiler's rule for a product that is not gated,
      // K a multiple of 16, or tuned there with half=1): x float32-accurate (exact=1) or rounded (exact=-1, or FP8
      // codes outside an output head) everywhere.
      const DType wt = c.family.rfind("matmul_q", 0) == 0 ? tuned.inputs[1].dtype : DType::F32;
      const cg::GemvTuning &t = spec.empty() ? c.tune : tuning;
      const bool fp8Half = (wt == DType::F8E4M3FN || wt == DType::F8E5M2) && !c.attrs.getInt("act_fp8", 0) &&
                           !c.layout && c.inputs[0].shape.back() % 16 == 0 && t.exact >= 0 &&
                           (t.half > 0 || (t.half == 0 && c.family != "matmul_q_gated"));
      const bool halfRow = (wt == DType::F16 || wt == DType::BF16 || fp8Half) &&
                           num::numElements(c.inputs[0].shape) == c.inputs[0].shape.back();
      if (halfRow && (t.exact != 0 || (fp8Half && !c.outputHead)))
        tuned.tolerance = t.exact > 0 ? 2e-5 : 4e-3;
      if (opt.bf16)
        tuned.tolerance = bf16Tolerance(tuned.tolerance);
      bool ok = runCase(tuned, opt, spec.empty() ? &c.tune : &tuning, rng, detail);
      const std::string name = spec.empty() ? c.name : c.name + " [" + spec + "]";
      std::printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
      std::fflush(stdout);
      (ok ? passed : failed)++;
    }
  }
  if (list)
    return 0;
  if (!bench && !opt.compileOnly && shard == 0 && selected("argmax helper")) {
    std::string detail;
    const bool ok = runArgmaxCheck(opt, rng, detail);
    std::printf("%s argmax helper: %s\n", ok ? "PASS" : "FAIL", detail.c_str());
    (ok ? passed : failed)++;
  }
  if (!bench && !opt.compileOnly && shard == 0 && selected("sample helper")) {
    std::string detail;
    const bool ok = runSampleCheck(opt, rng, detail);
    std::printf("%s sample helper: %s\n", ok ? "PASS" : "FAIL", detail.c_str());
    (ok ? passed : failed)++;
  }
  if (bench && !opt.compileOnly && shard == 0 && selected("row helper"))
    benchRowHelpers(opt, rng, passed, failed);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
