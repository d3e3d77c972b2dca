//===- FusedKernelsTest.cpp - fused kernel families against their parts -----===//
//
// The families fusion passes create (kv_append_rotary, attention with rotary queries, matmul_q_gated, the matmul_q
// families' norm and residual operands) against the launches they replace, run one after the other through the families' own reference code: bit for bit equal, on
// random non-zero inputs; and their shape functions' refusals.
//
//===----------------------------------------------------------------------===//
#include "qopt/Numerics/Kernels.h"
#include "qopt/Numerics/QuantFormat.h"
#include "qopt/Numerics/Tensor.h"
#include "KernelTestBuffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace qopt::num;

namespace {

using qopt::test::Buffer;
using qopt::test::run;

Buffer randomFloats(Shape shape, std::mt19937 &rng, float lo, float hi) {
  Buffer b(DType::F32, std::move(shape));
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < b.t.numel(); ++i) {
    const float v = d(rng);
    b.t.as<float>()[i] = v == 0.0f ? 0.125f : v;
  }
  return b;
}

// Runs an in-place family on `state` (its operand 0); returns the error, empty on success.
std::string update(const char *name, std::vector<const Tensor *> ins, Tensor &state, const Attrs &attrs) {
  const KernelFamily *k = lookupFamily(name);
  EXPECT_NE(k, nullptr) << name;
  EXPECT_EQ(k->inPlace, 0) << name;
  Tensor out;
  KernelArgs args;
  args.inputs = std::move(ins);
  args.outputs = {&out};
  args.attrs = &attrs;
  std::string err;
  if (!inferShapes(*k, args, err))
    return err;
  EXPECT_EQ(out.shape, state.shape);
  out.data = state.data;
  return k->reference(args, err) ? std::string() : err;
}

Buffer positions(int64_t B, int64_t S, int64_t first) {
  Buffer pos(DType::I64, {B, S});
  for (int64_t i = 0; i < B * S; ++i)
    pos.t.as<int64_t>()[i] = first + 5 * i;
  return pos;
}

// kv_append_rotary writes what rotary then kv_append write, chunk after chunk, both styles; a full cache and
// another axis are refused.
TEST(FusedKernels, KvAppendRotaryEqualsRotaryThenAppend) {
  std::mt19937 rng(5);
  const int64_t B = 2, Bc = 3, H = 2, C = 8, D = 6;
  for (int64_t style : {0, 1}) {
    Buffer fused(DType::F32, {Bc, H, C, D}), apart(DType::F32, {Bc, H, C, D}), len(DType::I64, {1});
    Buffer f = randomFloats({D / 2}, rng, 0.01f, 1.0f);
    Attrs attrs;
    attrs.setInt("axis", 2);
    attrs.setInt("style", style);
    for (int64_t S : {3, 1, 2}) {
      Buffer k = randomFloats({B, H, S, D}, rng, -2, 2), pos = positions(B, S, len.t.as<int64_t>()[0]);
      ASSERT_EQ(update("kv_append_rotary", {&fused.t, &k.t, &len.t, &pos.t, &f.t}, fused.t, attrs), "");
      Buffer rotated = run("rotary", {&k.t, &pos.t, &f.t}, attrs);
      ASSERT_EQ(update("kv_append", {&apart.t, &rotated.t, &len.t}, apart.t, attrs), "");
      len.t.as<int64_t>()[0] += S;
    }
    EXPECT_TRUE(fused == apart) << "style " << style;
    float nonzero = 0.0f;
    for (int64_t i = 0; i < fused.t.numel(); ++i)
      nonzero += fused.t.as<float>()[i] != 0.0f;
    EXPECT_EQ(nonzero, B * H * 6 * D); // six positions of each written row, the rest untouched
    Buffer k = randomFloats({B, H, 3, D}, rng, -2, 2), pos = positions(B, 3, 6);
    EXPECT_NE(update("kv_append_rotary", {&fused.t, &k.t, &len.t, &pos.t, &f.t}, fused.t, attrs)
                  .find("kv_append: the cache holds 8 positions; 3 new ones at position 6 do not fit"),
              std::string::npos);
  }
  Buffer cache(DType::F32, {1, 2, 8, 4}), k = randomFloats({1, 2, 1, 4}, rng, -1, 1), len(DType::I64, {1});
  Buffer f = randomFloats({2}, rng, 0.1f, 1.0f), pos = positions(1, 1, 0);
  Attrs axis1;
  axis1.setInt("axis", 1);
  axis1.setInt("style", 0);
  EXPECT_NE(update("kv_append_rotary", {&cache.t, &k.t, &len.t, &pos.t, &f.t}, cache.t, axis1)
                .find("kv_append_rotary: appends along axis 2"),
            std::string::npos);
  Attrs badStyle;
  badStyle.setInt("style", 3);
  EXPECT_NE(update("kv_append_rotary", {&cache.t, &k.t, &len.t, &pos.t, &f.t}, cache.t, badStyle)
                .find("kv_append_rotary: rotary: style must be 0 (rotate_half) or 1 (interleaved)"),
            std::string::npos);
}

// Attention over a cache with rotary queries equals rotary, then attention: one query row (decode) and three,
// grouped heads; positions and inv_freq come together.
TEST(FusedKernels, AttentionRotaryQueriesEqualRotaryThenAttention) {
  std::mt19937 rng(9);
  const int64_t B = 2, H = 4, Hkv = 2, C = 10, D = 8;
  Buffer kc = randomFloats({B, Hkv, C, D}, rng, -1, 1), vc = randomFloats({B, Hkv, C, D}, rng, -2, 2);
  Buffer len(DType::I64, {1}), f = randomFloats({D / 2}, rng, 0.01f, 1.0f);
  len.t.as<int64_t>()[0] = 5;
  for (int64_t S : {1, 3})
    for (int64_t style : {0, 1}) {
      Buffer q = randomFloats({B, H, S, D}, rng, -1, 1), pos = positions(B, S, 5);
      Attrs rot, plain;
      rot.setInt("style", style);
      for (Attrs *a : {&rot, &plain}) {
        a->setFloat("scale", 0.35);
        a->setInt("causal", 1);
      }
      rot.setInt("rotary_style", style);
      Buffer fused = run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t, &pos.t, &f.t}, rot);
      Buffer rotated = run("rotary", {&q.t, &pos.t, &f.t}, rot);
      Buffer apart = run("attention", {&rotated.t, &kc.t, &vc.t, nullptr, &len.t}, plain);
      EXPECT_TRUE(fused == apart) << "S " << S << " style " << style;
      EXPECT_FALSE(fused == run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t}, plain)); // the rotation counts
    }
  Buffer q = randomFloats({B, H, 1, D}, rng, -1, 1), pos = positions(B, 1, 5);
  Attrs attrs;
  attrs.setInt("rotary_style", 0);
  std::string err;
  run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t, &pos.t, nullptr}, attrs, &err);
  EXPECT_NE(err.find("attention: rotary queries need both positions (operand 5) and inv_freq (operand 6), the last"),
            std::string::npos)
      << err;
  Buffer shortFreq = randomFloats({D / 2 - 1}, rng, 0.1f, 1.0f);
  err.clear();
  run("attention", {&q.t, &kc.t, &vc.t, nullptr, &len.t, &pos.t, &shortFreq.t}, attrs, &err);
  EXPECT_NE(err.find("attention: rotary: inv_freq must hold head dim / 2 values"), std::string::npos) << err;
}

// Over an FP8 cache (qopt-kv-state dtype=fp8): kv_append_rotary with the cache's scales and key offsets (operands 3
// and 4, positions and inv_freq after them) writes the codes rotary then kv_append write, and attention with rotary
// queries after the caches' scales (operands 5 and 6, positions and inv_freq 7 and 8) equals rotary then attention.
TEST(FusedKernels, RotaryOverAnFp8CacheEqualsTheTwoLaunches) {
  std::mt19937 rng(13);
  const int64_t B = 1, H = 4, Hkv = 2, C = 8, D = 8, S = 3;
  Buffer fused(DType::F8E4M3FN, {B, Hkv, C, D}), apart(DType::F8E4M3FN, {B, Hkv, C, D}), len(DType::I64, {1});
  len.t.as<int64_t>()[0] = 2;
  Buffer k = randomFloats({B, Hkv, S, D}, rng, -3, 3), f = randomFloats({D / 2}, rng, 0.01f, 1.0f);
  Buffer scales = randomFloats({Hkv}, rng, 0.005f, 0.02f), offsets = randomFloats({Hkv, D}, rng, -1, 1);
  Buffer pos = positions(B, S, 2);
  Attrs attrs;
  attrs.setInt("axis", 2);
  attrs.setInt("style", 1);
  ASSERT_EQ(update("kv_append_rotary", {&fused.t, &k.t, &len.t, &scales.t, &offsets.t, &pos.t, &f.t}, fused.t,
                   attrs),
            "");
  Buffer rotated = run("rotary", {&k.t, &pos.t, &f.t}, attrs);
  ASSERT_EQ(update("kv_append", {&apart.t, &rotated.t, &len.t, &scales.t, &offsets.t}, apart.t, attrs), "");
  EXPECT_TRUE(fused == apart);
  len.t.as<int64_t>()[0] = 4;
  Buffer q = randomFloats({B, H, 1, D}, rng, -1, 1), qpos = positions(B, 1, 4);
  Attrs rot, plain;
  rot.setInt("style", 1);
  for (Attrs *a : {&rot, &plain}) {
    a->setFloat("scale", 0.35);
    a->setInt("causal", 1);
  }
  rot.setInt("rotary_style", 1);
  Buffer got = run("attention", {&q.t, &fused.t, &fused.t, nullptr, &len.t, &scales.t, &scales.t, &qpos.t, &f.t}, rot);
  Buffer qr = run("rotary", {&q.t, &qpos.t, &f.t}, rot);
  EXPECT_TRUE(got == run("attention", {&qr.t, &fused.t, &fused.t, nullptr, &len.t, &scales.t, &scales.t}, plain));
  std::string err;
  run("attention", {&q.t, &fused.t, &fused.t, nullptr, &len.t, &scales.t, &scales.t, &qpos.t}, rot, &err);
  EXPECT_NE(err.find("attention: rotary queries need both positions (operand 7) and inv_freq (operand 8)"),
            std::string::npos)
      << err;
}

// A packed int4 layer of N output channels, K inputs (group 32, asymmetric): weights, scales, zeros.
struct Int4Layer {
  Buffer w, s, z;
  Int4Layer(int64_t N, int64_t K, std::mt19937 &rng)
      : w(DType::U8, {N, K / 2}), s(DType::F32, {N, K / 32}), z(DType::U8, {N, K / 32}) {
    std::uniform_int_distribution<int> byte(0, 255), zero(0, 15);
    std::uniform_real_distribution<float> scale(0.001f, 0.02f);
    for (int64_t i = 0; i < w.t.numel(); ++i)
      w.t.as<uint8_t>()[i] = static_cast<uint8_t>(byte(rng));
    for (int64_t i = 0; i < s.t.numel(); ++i) {
      s.t.as<float>()[i] = scale(rng);
      z.t.as<uint8_t>()[i] = static_cast<uint8_t>(zero(rng));
    }
  }
};

// Float16 weights [N, K] in [-0.2, 0.2].
Buffer halfWeights(int64_t N, int64_t K, std::mt19937 &rng) {
  Buffer h(DType::F16, {N, K});
  std::uniform_real_distribution<float> wd(-0.2f, 0.2f);
  for (int64_t i = 0; i < h.t.numel(); ++i)
    h.t.as<uint16_t>()[i] = floatToHalf(wd(rng));
  return h;
}

// matmul_q_gated equals matmul_q_split into gate and up, then gated_act, for each activation, int4 and float16
// weights, one row and several; odd N and unknown activations are refused.
TEST(FusedKernels, GatedProductEqualsSplitThenGatedAct) {
  std::mt19937 rng(13);
  const int64_t N = 2 * 24, K = 64;
  Int4Layer q(N, K, rng);
  Buffer h = halfWeights(N, K, rng);
  for (int64_t M : {1, 5})
    for (int64_t act : {0, 1, 2})
      for (int bits : {4, 16}) {
        Buffer x = randomFloats({M, K}, rng, -1, 1);
        Attrs attrs;
        attrs.setInt("bits", bits);
        attrs.setInt("group_size", bits == 4 ? 32 : K);
        attrs.setInt("activation", act);
        std::vector<const Tensor *> ins = {&x.t, &q.w.t, &q.s.t, &q.z.t};
        if (bits == 16)
          ins = {&x.t, &h.t};
        Buffer fused = run("matmul_q_gated", ins, attrs);
        ASSERT_EQ(fused.t.shape, (Shape{M, N / 2}));
        Attrs split = attrs;
        split.setInts("splits", {N / 2, N / 2});
        split.setInt("num_outputs", 2);
        const KernelFamily *k = lookupFamily("matmul_q_split");
        Buffer gate(DType::F32, {M, N / 2}), up(DType::F32, {M, N / 2});
        KernelArgs args;
        args.inputs = ins;
        args.outputs = {&gate.t, &up.t};
        args.attrs = &split;
        std::string err;
        ASSERT_TRUE(k->reference(args, err)) << err;
        Buffer apart = run("gated_act", {&gate.t, &up.t}, attrs);
        EXPECT_TRUE(fused == apart) << "M " << M << " act " << act << " bits " << bits;
      }
  Buffer x = randomFloats({1, K}, rng, -1, 1);
  Int4Layer odd(N - 2 + 1, K, rng);
  Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 32);
  attrs.setInt("activation", 0);
  std::string err;
  run("matmul_q_gated", {&x.t, &odd.w.t, &odd.s.t, &odd.z.t}, attrs, &err);
  EXPECT_NE(err.find("matmul_q_gated: the stacked gate and up layers need an even number of output channels, got 47"),
            std::string::npos)
      << err;
  Attrs unknown;
  unknown.setInt("bits", 4);
  unknown.setInt("group_size", 32);
  unknown.setInt("activation", 7);
  err.clear();
  run("matmul_q_gated", {&x.t, &q.w.t, &q.s.t, &q.z.t}, unknown, &err);
  EXPECT_NE(err.find("matmul_q_gated: activation must be 0 (silu), 1 (gelu) or 2 (gelu_tanh), got 7"),
            std::string::npos)
      << err;
}

// The tile layouts (QuantFormat.h) as the GPU's few-row kernels read them: for each tile t, chunk c and row half h,
// a warp's load (lanes 4 g + q, g < 8, q < 4) is 512 contiguous bytes holding word 4 c + q of row 16 t + 8 h + g
// (layout 1) or of row h N / 2 + 8 t + g (layout 2), tiles and chunks in that order; untileRow gives every row back.
TEST(TileLayouts, WarpLoadsAreContiguousAndRowsComeBack) {
  std::mt19937 rng(5);
  const int64_t N = 48, rowBytes = 192, chunks = rowBytes / 64;
  std::vector<uint8_t> rows(N * rowBytes), tiles(rows.size()), row(rowBytes);
  for (uint8_t &b : rows)
    b = static_cast<uint8_t>(rng());
  for (int64_t layout : {quant::kTileLayout, quant::kPairedTileLayout}) {
    quant::tileRows(layout, rows.data(), N, rowBytes, tiles.data());
    const uint8_t *load = tiles.data();
    for (int64_t t = 0; t < N / 16; ++t)
      for (int64_t c = 0; c < chunks; ++c)
        for (int64_t h = 0; h < 2; ++h, load += 512)
          for (int64_t lane = 0; lane < 32; ++lane) {
            const int64_t g = lane / 4, q = lane % 4;
            const int64_t n = layout == quant::kTileLayout ? 16 * t + 8 * h + g : h * N / 2 + 8 * t + g;
            EXPECT_EQ(std::memcmp(load + 16 * lane, rows.data() + n * rowBytes + 16 * (4 * c + q), 16), 0)
                << "layout " << layout << " tile " << t << " chunk " << c << " half " << h << " lane " << lane;
          }
    for (int64_t n = 0; n < N; ++n) {
      quant::untileRow(layout, tiles.data(), n, N, rowBytes, row.data());
      EXPECT_EQ(std::memcmp(row.data(), rows.data() + n * rowBytes, rowBytes), 0) << "layout " << layout << " row " << n;
    }
  }
}

// The CPU kernels read a weight in either tile layout (weight_layout) as the rows it was permuted from: the same
// results bit for bit, for int4, int8 and FP8 codes, plain, split and gated products, one row and several; other
// layouts, and shapes that are not whole tiles, are refused.
TEST(TileLayouts, ProductsReadTiledWeightsAsRows) {
  std::mt19937 rng(21);
  const int64_t N = 32, K = 256;
  Int4Layer q(N, K, rng);
  Buffer i8(DType::I8, {N, K}), f8(DType::F8E4M3FN, {N, K}), s8 = randomFloats({N, 1}, rng, 0.01f, 0.02f);
  for (int64_t i = 0; i < N * K; ++i) {
    i8.t.as<uint8_t>()[i] = static_cast<uint8_t>(rng());
    f8.t.as<uint8_t>()[i] = static_cast<uint8_t>(rng() % 0x7E); // finite E4M3FN codes, both signs below
    f8.t.as<uint8_t>()[i] |= static_cast<uint8_t>(i % 2 ? 0x80 : 0);
  }
  for (const char *family : {"matmul_q", "matmul_q_split", "matmul_q_gated"})
    for (int64_t M : {1, 3})
      for (int codes = 0; codes < 3; ++codes) {
        Buffer x = randomFloats({M, K}, rng, -1, 1);
        const Buffer &w = codes == 0 ? q.w : codes == 1 ? i8 : f8;
        Attrs attrs;
        attrs.setInt("bits", codes == 0 ? 4 : 8);
        attrs.setInt("group_size", codes == 0 ? 32 : K);
        if (std::string(family) == "matmul_q_split") // (one result: `run`'s)
          attrs.setInts("splits", {N});
        if (std::string(family) == "matmul_q_gated")
          attrs.setInt("activation", 0);
        auto product = [&](const Tensor &weights, const Attrs &a) {
          std::vector<const Tensor *> ins = {&x.t, &weights};
          if (codes == 0)
            ins.insert(ins.end(), {&q.s.t, &q.z.t});
          else
            ins.push_back(&s8.t);
          return run(family, ins, a);
        };
        const Buffer expected = product(w.t, attrs);
        for (int64_t layout : {quant::kTileLayout, quant::kPairedTileLayout}) {
          Buffer tiled = w;
          quant::tileRows(layout, w.t.as<uint8_t>(), N, static_cast<int64_t>(w.t.bytes()) / N, tiled.t.as<uint8_t>());
          Attrs a = attrs;
          a.setInt("weight_layout", layout);
          EXPECT_TRUE(product(tiled.t, a) == expected)
              << family << " M " << M << " codes " << codes << " layout " << layout;
        }
      }
  Buffer x = randomFloats({1, K}, rng, -1, 1);
  Attrs attrs;
  attrs.setInt("bits", 8);
  attrs.setInt("group_size", K);
  attrs.setInt("weight_layout", 3);
  std::string err;
  run("matmul_q", {&x.t, &i8.t, &s8.t}, attrs, &err);
  EXPECT_EQ(err, "matmul_q: weight_layout must be 0 (rows), 1 or 2 (tiles of 16 rows: N a multiple of 16 and rows of "
                 "whole 64-byte chunks), got 3 for 32 rows of 256 bytes");
  Buffer rows24(DType::I8, {24, K}), s24 = randomFloats({24, 1}, rng, 0.01f, 0.02f);
  attrs.setInt("weight_layout", 1);
  err.clear();
  run("matmul_q", {&x.t, &rows24.t, &s24.t}, attrs, &err);
  EXPECT_EQ(err, "matmul_q: weight_layout must be 0 (rows), 1 or 2 (tiles of 16 rows: N a multiple of 16 and rows of "
                 "whole 64-byte chunks), got 1 for 24 rows of 256 bytes");
}

// The matmul_q families with a norm scale (operand 4) equal rms_norm then the product, and with a residual
// (operand 5) the binary add of the residual and the product after it (qopt-fuse-norm-product): int4 and float16
// weights, one row and several, scales of K values and of one; a residual on a product of two results or on the
// gated product, and a misshapen scale or residual, are refused.
TEST(FusedKernels, NormAndResidualOperandsEqualRmsNormProductAdd) {
  std::mt19937 rng(17);
  const int64_t N = 2 * 24, K = 64;
  Int4Layer q(N, K, rng);
  Buffer h = halfWeights(N, K, rng);
  for (const char *family : {"matmul_q", "matmul_q_split", "matmul_q_gated"})
    for (int64_t M : {1, 5})
      for (int64_t gn : {K, int64_t{1}})
        for (int bits : {4, 16}) {
          SCOPED_TRACE(std::string(family) + " M " + std::to_string(M) + " gn " + std::to_string(gn) + " bits " +
                       std::to_string(bits));
          const bool gated = std::string(family) == "matmul_q_gated";
          Buffer x = randomFloats({M, K}, rng, -3, 3), g = randomFloats({gn}, rng, 0.5f, 2);
          Buffer r = randomFloats({M, gated ? N / 2 : N}, rng, -2, 2);
          Attrs attrs;
          attrs.setInt("bits", bits);
          attrs.setInt("group_size", bits == 4 ? 32 : K);
          attrs.setInt("activation", 1);
          attrs.setInts("splits", {N});
          attrs.setInt("num_outputs", 1);
          attrs.setFloat("norm_epsilon", 1e-3);
          Attrs normAttrs;
          normAttrs.setFloat("epsilon", 1e-3);
          Buffer n = run("rms_norm", {&x.t, &g.t}, normAttrs);
          std::vector<const Tensor *> ins = {&x.t, &q.w.t, &q.s.t, &q.z.t, &g.t};
          std::vector<const Tensor *> apartIns = {&n.t, &q.w.t, &q.s.t, &q.z.t};
          if (bits == 16) {
            ins = {&x.t, &h.t, nullptr, nullptr, &g.t};
            apartIns = {&n.t, &h.t};
          }
          Buffer product = run(family, apartIns, attrs);
          EXPECT_TRUE(run(family, ins, attrs) == product);
          if (gated)
            continue;
          ins.push_back(&r.t);
          Attrs add;
          add.setString("fn", "add");
          EXPECT_TRUE(run(family, ins, attrs) == run("binary", {&r.t, &product.t}, add));
          // The residual alone, x as it is.
          ins[0] = &n.t;
          ins[4] = nullptr;
          EXPECT_TRUE(run(family, ins, attrs) == run("binary", {&r.t, &product.t}, add));
        }
  Buffer x = randomFloats({1, K}, rng, -1, 1), g = randomFloats({K}, rng, 0.5f, 2);
  Buffer r = randomFloats({1, N}, rng, -1, 1), rHalf = randomFloats({1, N / 2}, rng, -1, 1);
  Buffer badScale = randomFloats({K + 1}, rng, 0.5f, 2), badResidual = randomFloats({1, N + 1}, rng, -1, 1);
  Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 32);
  attrs.setInt("activation", 0);
  auto refusal = [&](const char *family, std::vector<const Tensor *> ins, const Attrs &at) {
    std::string err;
    run(family, std::move(ins), at, &err);
    return err;
  };
  EXPECT_EQ(refusal("matmul_q", {&x.t, &q.w.t, &q.s.t, &q.z.t, &badScale.t}, attrs),
            "matmul_q: the norm scale (operand 4) must be float32 [K] or [1], got float32[65]");
  EXPECT_EQ(refusal("matmul_q", {&x.t, &q.w.t, &q.s.t, &q.z.t, &g.t, &badResidual.t}, attrs),
            "matmul_q: the residual (operand 5) float32[1, 49] must be float32 shaped like the result [1, 48]");
  EXPECT_EQ(refusal("matmul_q_gated", {&x.t, &q.w.t, &q.s.t, &q.z.t, &g.t, &rHalf.t}, attrs),
            "matmul_q: a residual (operand 5) needs a product with one plain result");
  Attrs split = attrs;
  split.setInts("splits", {N / 2, N / 2});
  split.setInt("num_outputs", 2);
  const KernelFamily *k = lookupFamily("matmul_q_split");
  Tensor a, b;
  KernelArgs args;
  args.inputs = {&x.t, &q.w.t, &q.s.t, &q.z.t, nullptr, &rHalf.t};
  args.outputs = {&a, &b};
  args.attrs = &split;
  std::string err;
  EXPECT_FALSE(inferShapes(*k, args, err));
  EXPECT_EQ(err, "matmul_q: a residual (operand 5) needs a product with one plain result");
}

} // namespace
