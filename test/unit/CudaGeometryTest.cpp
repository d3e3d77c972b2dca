//===- CudaGeometryTest.cpp - launch geometry of the generated GEMVs -------===//
//
// The one-row products of codes (qGemvRow) are launched as one wave on a 132-SM GPU: every block resident at once
// (blocks <= 132 x the blocks per SM its registers are capped for), at most 16 warps per SM under that cap (128
// registers per thread), and the block's shared memory fitting that many blocks. Checked on the specializations the
// compiler writes for Llama-shaped layers, small and large; no GPU or NVRTC needed.
//
//===----------------------------------------------------------------------===//
#include "qopt/Codegen/Cuda.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>

namespace cg = qopt::codegen;
using qopt::num::DType;

namespace {

// The matmul_q(_gated) launch of one row x [1, K] times int4 codes [N, K / 2] with scales and zero points per
// group of `attrs`' group_size.
cg::CudaKernel rowProduct(int64_t K, int64_t N, bool gated, const qopt::num::Attrs &attrs) {
  const int64_t groups = K / attrs.getInt("group_size", K);
  cg::LaunchDesc d;
  d.family = gated ? "matmul_q_gated" : "matmul_q";
  d.attrs = &attrs;
  d.inputs = {{DType::F32, {1, K}}, {DType::U8, {N, K / 2}}, {DType::F32, {N, groups}}, {DType::U8, {N, groups}}};
  d.results = {{DType::F32, {1, gated ? N / 2 : N}}};
  cg::CudaKernel k;
  std::string why;
  EXPECT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
  return k;
}

} // namespace

TEST(CudaGeometry, OneRowProductsRunInOneWave) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 128);
  attrs.setInt("activation", 0);
  struct Shape {
    int64_t K, N;
    bool gated;
  };
  for (const Shape &s : {Shape{4096, 6144, false}, {4096, 4096, false}, {4096, 28672, true}, {14336, 4096, false},
                         {4096, 128256, false}, {8192, 57344, true}, {28672, 8192, false}, {256, 768, false},
                         {768, 288, false}}) {
    SCOPED_TRACE("K=" + std::to_string(s.K) + " N=" + std::to_string(s.N));
    const cg::CudaKernel k = rowProduct(s.K, s.N, s.gated, attrs);
    ASSERT_NE(k.source.find("qGemvRow<"), std::string::npos) << k.source;
    unsigned block = 0, perSm = 0;
    ASSERT_EQ(std::sscanf(k.source.c_str() + k.source.find("__launch_bounds__("), "__launch_bounds__(%u, %u)", &block,
                          &perSm),
              2)
        << k.source;
    EXPECT_EQ(block, k.geometry.block);
    EXPECT_LE(block / 32 * perSm, 16u); // registers: 65536 / (16 warps x 32 lanes) = 128 per thread
    EXPECT_LE(perSm * (k.geometry.sharedBytes + 5 * 1024), 228u * 1024); // x, reductions, the system's 1 KB
    const uint64_t tiles = (static_cast<uint64_t>(s.N) + 15) / 16, perBlock = k.geometry.colsPerBlock / 16;
    const uint64_t blocks = (tiles + perBlock - 1) / perBlock;
    EXPECT_LE(blocks, 132u * perSm); // one wave
    // Balance: the busiest SM takes at most one block's tiles more than the average.
    EXPECT_LE(static_cast<double>((blocks + 131) / 132 * perBlock), static_cast<double>(tiles) / 132.0 + perBlock);
  }
}

// The GPU suite's "tiles per block" cases (qopt-gpu-kernel-check): 2113 tiles of one chunk are more than a wave of
// one-warp blocks holds, so qGemvRow takes 2 tiles per block (1057 blocks, the last with one tile).
TEST(CudaGeometry, ManySmallTilesShareBlocks) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 32);
  attrs.setInt("activation", 1);
  for (bool gated : {false, true}) {
    const cg::CudaKernel k = rowProduct(64, gated ? 33808 : 33802, gated, attrs);
    EXPECT_EQ(k.geometry.block, 32u);
    EXPECT_EQ(k.geometry.colsPerBlock, 32u) << k.source;
    EXPECT_NE(k.source.find("__launch_bounds__(32, 16)"), std::string::npos) << k.source;
  }
}

// Llama-3-8B's decode products take the layouts measured fastest on the H200 (bench/gpu/README.md, 2026-12-03):
// the gated gate/up product as 16 one-warp groups side by side (one tile each), down as 2 groups of 8 warps
// splitting K, o as 2 groups of 4, q/k/v as 4 warps splitting K. Groups of 128 (a chunk of 4 words in one scale
// group) share a row's scale loads between its lanes (CHUNK_GROUPS, the argument after the batch); groups of 32 do not.
TEST(CudaGeometry, LlamaDecodeProductsTakeTheMeasuredLayouts) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 128);
  attrs.setInt("activation", 0);
  struct Expect {
    int64_t K, N;
    bool gated;
    unsigned block, colsPerBlock;
  };
  for (const Expect &e : {Expect{4096, 28672, true, 512, 256}, Expect{14336, 4096, false, 512, 32},
                          Expect{4096, 4096, false, 256, 32}, Expect{4096, 6144, false, 128, 16}}) {
    SCOPED_TRACE("K=" + std::to_string(e.K) + " N=" + std::to_string(e.N));
    const cg::CudaKernel k = rowProduct(e.K, e.N, e.gated, attrs);
    EXPECT_EQ(k.geometry.block, e.block) << k.source;
    EXPECT_EQ(k.geometry.colsPerBlock, e.colsPerBlock) << k.source;
    EXPECT_NE(k.source.find(", 2, 1"), std::string::npos) << k.source; // batch 2, CHUNK_GROUPS
  }
  qopt::num::Attrs g32;
  g32.setInt("bits", 4);
  g32.setInt("group_size", 32);
  const cg::CudaKernel k = rowProduct(4096, 6144, false, g32);
  EXPECT_NE(k.source.find("qGemvRow<4, 1, 4, true, false>(p, splits, 32LL)"), std::string::npos) << k.source;
}

// int3/int4 scales stored as float16 (the quantizers' layout: QuantFormat.h) select each product template's
// QScales<1> (its last argument, HS) and nothing else; 8-bit weights with float16 scales are not a layout.
TEST(CudaGeometry, HalfScalesSelectTheTemplatesHalfReads) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 32);
  for (int64_t M : {1, 4, 16, 40}) {
    SCOPED_TRACE("M=" + std::to_string(M));
    cg::LaunchDesc d;
    d.family = "matmul_q";
    d.attrs = &attrs;
    d.inputs = {{DType::F32, {M, 4096}}, {DType::U8, {6144, 2048}}, {DType::F32, {6144, 128}},
                {DType::U8, {6144, 128}}};
    d.results = {{DType::F32, {M, 6144}}};
    cg::CudaKernel f32, f16;
    std::string why;
    ASSERT_TRUE(cg::instantiateCudaKernel(d, f32, why)) << why;
    d.inputs[2].dtype = DType::F16;
    ASSERT_TRUE(cg::instantiateCudaKernel(d, f16, why)) << why;
    const size_t close = f32.source.find(">(p, splits");
    ASSERT_NE(close, std::string::npos) << f32.source;
    // The same call with HS = 1 appended after the arguments the float32 form spells out (defaults filled in).
    const size_t open = f32.source.rfind('<', close);
    const std::string name = f32.source.substr(f32.source.rfind(' ', open) + 1, open - f32.source.rfind(' ', open) - 1);
    EXPECT_NE(f16.source.find(name + "<"), std::string::npos) << f16.source;
    EXPECT_NE(f16.source.find(", 1>(p, splits"), std::string::npos) << f16.source;
    EXPECT_EQ(f16.geometry.block, f32.geometry.block);
    EXPECT_EQ(f16.geometry.colsPerBlock, f32.geometry.colsPerBlock);
  }
  qopt::num::Attrs int8;
  int8.setInt("bits", 8);
  int8.setInt("group_size", 4096);
  int8.setInt("symmetric", 1);
  cg::LaunchDesc d;
  d.family = "matmul_q";
  d.attrs = &int8;
  d.inputs = {{DType::F32, {1, 4096}}, {DType::I8, {512, 4096}}, {DType::F16, {512, 1}}};
  d.results = {{DType::F32, {1, 512}}};
  cg::CudaKernel k;
  std::string why;
  EXPECT_FALSE(cg::instantiateCudaKernel(d, k, why));
  EXPECT_EQ(why, "an unsupported quantized layout");
}

// A few rows of x on qGemvMma (up to 8 rows, smaller matrices, or by tuning): warps take 4 tiles of 16 weight rows
// where that leaves about a block per SM (Llama's 4096 x 14336 matrices), else 2 (14336 x 4096), each warp about 8
// chunks of K, up to 16 warps; a block of 16 warps caps its registers (launch bounds) so that it launches; small
// matrices keep one tile per warp.
cg::CudaKernel fewRowProduct(int64_t M, int64_t K, int64_t N, const cg::GemvTuning *tune = nullptr) {
  static qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 128);
  cg::LaunchDesc d;
  d.family = "matmul_q";
  d.attrs = &attrs;
  d.inputs = {{DType::F32, {M, K}}, {DType::U8, {N, K / 2}}, {DType::F32, {N, K / 128}}, {DType::U8, {N, K / 128}}};
  d.results = {{DType::F32, {M, N}}};
  d.tuning = tune;
  cg::CudaKernel k;
  std::string why;
  EXPECT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
  return k;
}

TEST(CudaGeometry, FewRowProductsShareXOverTiles) {
  struct Expect {
    int64_t M, K, N;
    unsigned block, cols;
    const char *call;
    bool bounds;
  };
  cg::GemvTuning mma;
  mma.staged = -1;
  for (const Expect &e :
       {Expect{16, 4096, 14336, 128, 64, "qGemvMma<4, 2, 1, 4, true, false, true, -1, 0, 0, 0, 4>(", false},
        Expect{4, 4096, 14336, 128, 64, "qGemvMma<4, 1, 1, 4, true, false, true, -1, 0, 0, 0, 4>(", false},
        Expect{16, 14336, 4096, 512, 32, "qGemvMma<4, 2, 1, 4, true, false, true, -1, 0, 0, 0, 2>(", true},
        Expect{3, 768, 288, 32, 16, "qGemvMma<4, 1, 1, 4, true, false, true>(", false}}) {
    SCOPED_TRACE("M=" + std::to_string(e.M) + " K=" + std::to_string(e.K) + " N=" + std::to_string(e.N));
    const cg::CudaKernel k = fewRowProduct(e.M, e.K, e.N, &mma); // (the rule takes qGemvStaged for the first two)
    EXPECT_NE(k.source.find(e.call), std::string::npos) << k.source;
    EXPECT_EQ(k.geometry.block, e.block) << k.source;
    EXPECT_EQ(k.geometry.colsPerBlock, e.cols) << k.source;
    EXPECT_EQ(k.geometry.gridY, 1u) << k.source;
    EXPECT_EQ(k.source.find("__launch_bounds__(512, 1)") != std::string::npos, e.bounds) << k.source;
  }
}

// 2-16 rows of x on matrices of 64+ tiles (qGemvStaged): blocks of 16 warps with 1 or 2 tiles each over x split
// once per block, K in the slices of a cluster (1-8), in as many blocks as one wave of clusters holds: the least of
// the modelled times (16 + 1 + the chunks a warp multiplies, per tile); at 2-4 rows only where the blocks take 5/6
// of the SMs. Dynamic shared memory for a slice of x's fragments (planes of 8 or 16 rows x 32 bytes and 32 bytes of
// padding per chunk and k-step), the warps' rings of 2 chunks and the rows' sums of squares (two parts a row). K
// too deep for 8 slices in 200 KB, small matrices, and 2-4 rows where the blocks would leave SMs idle, stay on
// qGemvMma. A product of several slices has scratch for them to meet in where there is no cluster (sm_80): an
// arrival count and every slice's partial sums (16 warps x 4 x tiles x 8-row tiles of x words a lane) per column
// of blocks.
TEST(CudaGeometry, StagedProductsSliceKOverAClusterOfBlocks) {
  struct Expect {
    int64_t M, K, N;
    unsigned tiles, slices, shared;
    bool scratch = false; // the slices meet in the scratch on sm_90 too (SPLIT 1, no cluster)
  };
  auto scratchCall = [](const cg::CudaKernel &k, int64_t columns, int64_t slices, int64_t words) {
    const size_t at = k.source.find("_scratch[" + std::to_string(columns * (1 + slices * words)) + "];");
    const std::string call = ">(p, splits, 128LL, 0.0, qScratch, " + std::to_string(columns) + "LL);";
    return at != std::string::npos && k.source.find(call) != std::string::npos;
  };
  for (const Expect &e :
       {// 56 columns of 256 rows x 2 slices: 112 blocks, 16 + 17 (2 tiles in 4 slices: 16 + 2 x 9).
        Expect{16, 4096, 14336, 1, 2, 16 * 8 * 544 + 16 * 2 * 1 * 1024 + 128},
        // The same layout at 4 rows (x in one tile of 8 rows): 112 blocks of 132 SMs.
        Expect{4, 4096, 14336, 1, 2, 16 * 8 * 288 + 16 * 2 * 1 * 1024 + 64},
        // 16 columns of 256 rows x 8 slices of 14 chunks meeting in the scratch: 128 blocks, 16 + 15 + 2, ahead of
        // 6 slices of 19 chunks in clusters (96 blocks: in clusters of 6, 102 fit; 7 slices would be 112 blocks,
        // where 105 fit), 16 + 20.
        Expect{12, 14336, 4096, 1, 8, 14 * 8 * 544 + 16 * 2 * 1 * 1024 + 128, true},
        Expect{8, 14336, 4096, 1, 8, 14 * 8 * 288 + 16 * 2 * 1 * 1024 + 64, true},
        // 112 columns of 256 rows, one slice (no cluster): 16 + 33, where 2 tiles in 2 slices would be 16 + 2 x 17
        // and 2 slices of 1 tile two waves.
        Expect{16, 4096, 28672, 1, 1, 32 * 8 * 544 + 16 * 2 * 1 * 1024 + 128}}) {
    SCOPED_TRACE("M=" + std::to_string(e.M) + " K=" + std::to_string(e.K) + " N=" + std::to_string(e.N));
    const cg::CudaKernel k = fewRowProduct(e.M, e.K, e.N);
    const unsigned mt = e.M > 8 ? 2 : 1;
    const std::string call = "qGemvStaged<4, " + std::to_string(mt) + ", 1, 4, true, false, true, -1, 0, 0, 0, " +
                             std::to_string(e.tiles) + (e.slices > 1 ? ", " + std::to_string(e.slices) : "") +
                             (e.scratch ? ", 2, 0, 0, 1, 1>(" : ">(");
    EXPECT_NE(k.source.find(call), std::string::npos) << k.source;
    EXPECT_EQ(k.source.find("QOPT_CLUSTER_Y(" + std::to_string(e.slices) + ")") != std::string::npos,
              e.slices > 1 && !e.scratch)
        << k.source;
    const int64_t columns = (e.N + 256 * e.tiles - 1) / (256 * e.tiles);
    EXPECT_EQ(scratchCall(k, columns, e.slices, 16 * 4 * e.tiles * mt * 32), e.slices > 1) << k.source;
    EXPECT_EQ(k.source.find("qScratch") != std::string::npos, e.slices > 1) << k.source;
    EXPECT_NE(k.source.find("__launch_bounds__(512, 1)"), std::string::npos) << k.source;
    EXPECT_EQ(k.geometry.block, 512u) << k.source;
    EXPECT_EQ(k.geometry.rowsPerBlock, 8u * mt) << k.source;
    EXPECT_EQ(k.geometry.colsPerBlock, 16u * 16u * e.tiles) << k.source;
    EXPECT_EQ(k.geometry.gridY, e.slices) << k.source;
    EXPECT_EQ(k.geometry.sharedBytes, e.shared) << k.source;
  }
  for (auto [M, K, N] :
       {std::array<int64_t, 3>{16, 65536, 4096}, {16, 768, 288}, {4, 14336, 4096}, {2, 14336, 4096}}) {
    SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N));
    const cg::CudaKernel k = fewRowProduct(M, K, N);
    EXPECT_NE(k.source.find("qGemvMma<"), std::string::npos) << k.source;
  }
  cg::GemvTuning tune; // tuned: 4 rows, 8 warps of 4 tiles, 5 slices, 3 chunks in flight
  tune.staged = 1, tune.warps = 8, tune.tiles = 4, tune.slices = 5, tune.batch = 3;
  const cg::CudaKernel k = fewRowProduct(4, 4096, 14336, &tune);
  EXPECT_NE(k.source.find("qGemvStaged<4, 1, 1, 4, true, false, true, -1, 0, 0, 0, 4, 5, 3>("), std::string::npos)
      << k.source;
  EXPECT_EQ(k.geometry.gridY, 5u) << k.source;
  EXPECT_EQ(k.geometry.sharedBytes, 7u * 8 * (8 * 32 + 32) + 8 * 3 * 4 * 1024 + 64) << k.source;
  // 8 warps of 4 tiles (8 x 4 x 4 x 1 words a lane) over 28 columns of 512 rows.
  EXPECT_TRUE(scratchCall(k, 28, 5, 8 * 4 * 4 * 32)) << k.source;
}

// Where the layout rule prefers it, qGemvStaged's slices meet in the scratch on sm_90 too (SPLIT 1, no cluster
// attribute), and the layout is not bound by where clusters fit: at 16 rows, K=14336 N=4096, 8 slices x 16 columns
// (128 blocks, 14 chunks a warp; clusters of 8 fit only 114 blocks, so in a cluster 6 slices: tune split=-1); a
// norm's sums of squares (16 rows of x, one part each) after the partial sums. Tune split=1 takes the scratch where
// the rule would not (4 rows).
TEST(CudaGeometry, StagedSlicesMeetInScratchWithoutACluster) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 128);
  attrs.setFloat("norm_epsilon", 1e-5);
  cg::LaunchDesc d;
  d.family = "matmul_q";
  d.attrs = &attrs;
  d.inputs = {{DType::F32, {16, 14336}},
              {DType::U8, {4096, 7168}},
              {DType::F32, {4096, 112}},
              {DType::U8, {4096, 112}},
              {DType::F32, {14336}}};
  d.results = {{DType::F32, {16, 4096}}};
  cg::CudaKernel k;
  std::string why;
  // 8 slices of 1 tile a warp meeting in the scratch (SPLIT 1), over x in `mt` tiles of 8 rows.
  auto expectScratch = [&](int mt) {
    ASSERT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
    EXPECT_EQ(k.geometry.gridY, 8u) << k.source;
    EXPECT_EQ(k.geometry.colsPerBlock, 256u) << k.source;
    EXPECT_EQ(k.source.find("QOPT_CLUSTER_Y"), std::string::npos) << k.source;
    EXPECT_NE(k.source.find("qGemvStaged<4, " + std::to_string(mt) +
                            ", 1, 5, true, false, true, -1, 0, 1, 0, 1, 8, 2, 0, 0, 1, 1>(p, splits, 128LL, "
                            "1.0000000000000001e-05, qScratch, 16LL);"),
              std::string::npos)
        << k.source;
  };
  expectScratch(2);
  EXPECT_NE(k.source.find("_scratch[" + std::to_string(16 * (1 + 8 * (16 * 8 * 32 + 16))) + "];"), std::string::npos)
      << k.source;
  cg::GemvTuning tune;
  tune.split = -1;
  d.tuning = &tune;
  ASSERT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
  EXPECT_EQ(k.geometry.gridY, 6u) << k.source;
  EXPECT_NE(k.source.find("QOPT_CLUSTER_Y(6)"), std::string::npos) << k.source;
  EXPECT_NE(k.source.find("qGemvStaged<4, 2, 1, 5, true, false, true, -1, 0, 1, 0, 1, 6>(p, splits, "),
            std::string::npos)
      << k.source;
  // 4 rows: qGemvMma by the rule (96 blocks in clusters leave SMs idle); staged in the scratch when tuned so.
  d.inputs[0].shape = {4, 14336};
  d.results[0].shape = {4, 4096};
  d.tuning = nullptr;
  ASSERT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
  EXPECT_NE(k.source.find("qGemvMma<"), std::string::npos) << k.source;
  tune.split = 1;
  d.tuning = &tune;
  expectScratch(1);
}

// Tuned tiles per warp keep the warps within what the kernel's reduction holds: 8 tiles of 16 rows of x reduce
// over at most 8 warps, where the rule would give 16 at 2 tiles.
TEST(CudaGeometry, TunedTilesBoundTheWarps) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 4);
  attrs.setInt("group_size", 128);
  cg::LaunchDesc d;
  d.family = "matmul_q";
  d.attrs = &attrs;
  d.inputs = {{DType::F32, {16, 14336}}, {DType::U8, {4096, 7168}}, {DType::F32, {4096, 112}},
              {DType::U8, {4096, 112}}};
  d.results = {{DType::F32, {16, 4096}}};
  cg::GemvTuning tune;
  tune.tiles = 8, tune.staged = -1;
  d.tuning = &tune;
  cg::CudaKernel k;
  std::string why;
  ASSERT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
  EXPECT_EQ(k.geometry.block, 256u) << k.source;
  EXPECT_EQ(k.geometry.colsPerBlock, 128u) << k.source;
}

// One row of float16 weights (qGemvHalf): Llama-3-8B's decode products and its lm_head take 2 pairs of rows per
// warp and 2 warps splitting K (the layout measured fastest, or within 2% of it, at every shape on the H200), x
// rounded to float16 in the layers and as float16 hi + lo in the output head (the trailing 1); a layer whose blocks
// would leave the 132 SMs fewer than 2 warps each takes more warps, and K of one chunk (256) one warp.
TEST(CudaGeometry, FloatRowProductsTakeTheMeasuredLayout) {
  qopt::num::Attrs attrs;
  attrs.setInt("bits", 16);
  attrs.setInt("activation", 0);
  auto halfProduct = [&](int64_t K, int64_t N, bool gated, bool head, bool norm) {
    cg::LaunchDesc d;
    d.outputHead = head;
    d.family = gated ? "matmul_q_gated" : "matmul_q";
    d.attrs = &attrs;
    d.inputs = {{DType::F32, {1, K}}, {DType::F16, {N, K}}};
    if (norm) // qopt-fuse-norm-product's operands: absent scales and zero points, the norm's scale
      d.inputs.insert(d.inputs.end(), {{DType::F32, {}, true}, {DType::F32, {}, true}, {DType::F32, {K}}});
    d.results = {{DType::F32, {1, gated ? N / 2 : N}}};
    cg::CudaKernel k;
    std::string why;
    EXPECT_TRUE(cg::instantiateCudaKernel(d, k, why)) << why;
    return k;
  };
  struct Expect {
    int64_t K, N;
    bool gated, head, norm;
    unsigned block, cols;
    const char *call;
  };
  // Llama-3-8B's decode products: gate/up + norm, down (+ residual), q/k/v + norm (8 groups of one warp), o, the
  // head (float32-accurate, one group), a head not the output's; then a small N (more warps split K, too few tiles
  // for groups) and a K of one chunk (one warp per group).
  for (const Expect &e :
       {Expect{4096, 28672, true, false, true, 64, 4, "qGemvHalf<1, 5, 0, 1, 0, 2>(p, splits, "},
        Expect{14336, 4096, false, false, false, 128, 8, "qGemvHalf<1, 2, -1, 0, 0, 2, 0, 2>(p, splits);"},
        Expect{4096, 6144, false, false, true, 256, 32, "qGemvHalf<1, 5, -1, 1, 0, 2, 0, 8>(p, splits, "},
        Expect{4096, 4096, false, false, false, 128, 8, "qGemvHalf<1, 2, -1, 0, 0, 2, 0, 2>(p, splits);"},
        Expect{4096, 128256, false, true, false, 64, 4, "qGemvHalf<1, 2, -1, 0, 0, 2, 1>(p, splits);"},
        Expect{4096, 128256, false, false, false, 128, 8, "qGemvHalf<1, 2, -1, 0, 0, 2, 0, 2>(p, splits);"},
        Expect{4096, 256, false, false, false, 256, 4, "qGemvHalf<1, 2, -1, 0, 0, 2>(p, splits);"},
        Expect{256, 4096, false, false, false, 64, 8, "qGemvHalf<1, 2, -1, 0, 0, 2, 0, 2>(p, splits);"}}) {
    SCOPED_TRACE("K=" + std::to_string(e.K) + " N=" + std::to_string(e.N) + (e.head ? " (head)" : "") +
                 (e.norm ? " +norm" : ""));
    const cg::CudaKernel k = halfProduct(e.K, e.N, e.gated, e.head, e.norm);
    EXPECT_NE(k.source.find(e.call), std::string::npos) << k.source;
    EXPECT_EQ(k.geometry.block, e.block) << k.source;
    EXPECT_EQ(k.geometry.colsPerBlock, e.cols) << k.source;
    EXPECT_EQ(k.geometry.rowsPerBlock, 1u) << k.source;
  }
}

// int8 codes: W8A8 SmoothQuant (act_int8) as FP8's, x rounded to int8 in the kernel that reads it: qGemvRow at one
// row with the int8 weights (no FP8 argument: the activation format follows the weights), qLinearQ above, grouped
// scales too; act_int8 needs int8 weights and, static, its scale as operand 6 (float32 [1]), which the kernel reads
// (so every layer of a shape shares it).
TEST(CudaGeometry, Int8ActivationsRoundInTheKernelThatReadsThem) {
  auto product = [](int64_t M, int64_t act, DType codes, int64_t group, bool gated, double scale, bool &ok,
                    std::string &why) {
    qopt::num::Attrs attrs;
    attrs.setInt("bits", 8);
    attrs.setInt("group_size", group);
    attrs.setInt("symmetric", 1);
    attrs.setInt("activation", 0);
    attrs.setInt("act_int8", act);
    cg::LaunchDesc d;
    d.family = gated ? "matmul_q_gated" : "matmul_q";
    d.attrs = &attrs;
    d.inputs = {{DType::F32, {M, 4096}}, {codes, {1024, 4096}}, {DType::F32, {1024, 4096 / group}}};
    if (scale != 0.0) // the static scale (operand 6; of two values where negative, which the kernels refuse)
      d.inputs.insert(d.inputs.end(), {{DType::Undefined, {}, true},
                                       {DType::Undefined, {}, true},
                                       {DType::Undefined, {}, true},
                                       {DType::F32, {scale > 0.0 ? 1 : 2}}});
    d.results = {{DType::F32, {M, gated ? 512 : 1024}}};
    cg::CudaKernel k;
    ok = cg::instantiateCudaKernel(d, k, why);
    return k.source;
  };
  bool ok = false;
  std::string why;
  std::string src = product(1, 1, DType::I8, 4096, false, 0.25, ok, why);
  ASSERT_TRUE(ok) << why;
  // (7 operands, GATED -1, TILES 1, FP8 0, NORM 0, RESID 0, U 2, CHUNK_GROUPS, WT 1, ACT 1; the static scale last,
  // read from its operand)
  EXPECT_NE(src.find("qGemvRow<8, 1, 7, false, false, -1, 1, 0, 0, 0, 2, 1, 1, 1>(p, splits, 4096LL, 0.0, "
                     "*qPtr<const float>(p.t[6]));"),
            std::string::npos)
      << src;
  src = product(1, 2, DType::I8, 128, true, 0.0, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvRow<8, "), std::string::npos) << src;
  EXPECT_NE(src.find(", 2>(p, splits, 128LL, 0.0, 0.0f);"), std::string::npos) << src; // ACT 2
  for (int64_t M : {3, 16, 64}) {
    SCOPED_TRACE("M=" + std::to_string(M));
    src = product(M, 2, DType::I8, 4096, false, 0.0, ok, why);
    ASSERT_TRUE(ok) << why;
    EXPECT_NE(src.find("qLinearQ<8, 4, 1024, 1, 3, false, false, 0, 0, 0, 2>(p, splits, 4096LL, 0.0, 0.0f);"),
              std::string::npos)
        << src;
  }
  src = product(16, 1, DType::I8, 4096, false, 0.25, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qLinearQ<8, 4, 1024, 1, 7, false, false, 0, 0, 0, 1>(p, splits, 4096LL, 0.0, "
                     "*qPtr<const float>(p.t[6]));"),
            std::string::npos)
      << src;
  src = product(3, 2, DType::I8, 4096, true, 0.0, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qLinearQ<8, 4, 1024, 1, 3, false, false, 0, 0, 0, 2, 0>(p, splits, 4096LL, 0.0, 0.0f);"),
            std::string::npos)
      << src;
  product(1, 2, DType::F8E4M3FN, 4096, false, 0.0, ok, why);
  EXPECT_FALSE(ok);
  EXPECT_EQ(why, "INT8 activations without int8 weights");
  // static without its scale, with a scale of two values, dynamic with one
  for (auto [act, scale] : {std::pair{1, 0.0}, std::pair{1, -1.0}, std::pair{2, 0.25}}) {
    product(1, act, DType::I8, 4096, false, scale, ok, why);
    EXPECT_FALSE(ok);
    EXPECT_EQ(why, "a static activation scale other than one float32 [1] operand 6 (only with act_fp8 or act_int8 1)");
  }
}

// FP8 codes per channel: W8A8 (act_fp8) rounds x in the kernel that reads it, qGemvRow at one row (the static scale
// its last argument, the ACT template argument last) and qLinearQ above (never the float16 fragments of qGemvMma),
// a gated product of several rows too.
TEST(CudaGeometry, Fp8ActivationsRoundInTheKernelThatReadsThem) {
  auto product = [](int64_t M, int64_t act, bool gated, const cg::GemvTuning *tune, bool &ok, std::string &why) {
    qopt::num::Attrs attrs;
    attrs.setInt("bits", 8);
    attrs.setInt("group_size", 4096);
    attrs.setInt("activation", 0);
    if (act)
      attrs.setInt("act_fp8", act);
    cg::LaunchDesc d;
    d.family = gated ? "matmul_q_gated" : "matmul_q";
    d.attrs = &attrs;
    d.inputs = {{DType::F32, {M, 4096}}, {DType::F8E4M3FN, {1024, 4096}}, {DType::F32, {1024, 1}}};
    if (act == 1) // zeros, norm and residual absent, the static scale
      d.inputs.insert(d.inputs.end(), {{DType::Undefined, {}, true},
                                       {DType::Undefined, {}, true},
                                       {DType::Undefined, {}, true},
                                       {DType::F32, {1}}});
    d.results = {{DType::F32, {M, gated ? 512 : 1024}}};
    d.tuning = tune;
    cg::CudaKernel k;
    ok = cg::instantiateCudaKernel(d, k, why);
    return k.source;
  };
  bool ok = false;
  std::string why;
  std::string src = product(1, 1, false, nullptr, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvRow<8, "), std::string::npos) << src;
  EXPECT_NE(src.find(", 1>(p, splits, 4096LL, 0.0, *qPtr<const float>(p.t[6]));"), std::string::npos)
      << src; // ACT 1, its scale
  src = product(1, 2, true, nullptr, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvRow<8, "), std::string::npos) << src;
  EXPECT_NE(src.find(", 2>(p, splits, 4096LL, 0.0, 0.0f);"), std::string::npos) << src; // ACT 2
  for (int64_t M : {3, 16, 64}) {
    SCOPED_TRACE("M=" + std::to_string(M));
    src = product(M, 2, false, nullptr, ok, why);
    ASSERT_TRUE(ok) << why;
    EXPECT_NE(src.find("qLinearQ<8, "), std::string::npos) << src;
    EXPECT_EQ(src.find("qGemvMma"), std::string::npos) << src;
    EXPECT_EQ(src.find("qGemvStaged"), std::string::npos) << src;
  }
  // A gated product of several rows: qLinearQ with the activation (GATED 0) last, a warp per channel of the one
  // result (its gate and up rows).
  src = product(3, 2, true, nullptr, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qLinearQ<8, 4, 1024, 1, 3, false, false, 1, 0, 0, 2, 0>(p, splits, 4096LL, 0.0, 0.0f);"),
            std::string::npos)
      << src;
  // fp8w's one row: qGemvHalf, 4 pairs of rows per warp, its FP8 (1: E4M3FN) and CVT (1) arguments last; K of 8192
  // and more: 2 pairs, loads pipelined (PIPE 2); a gated product qGemvRow. Tuning moves either (half, cvt, pipe).
  src = product(1, 0, false, nullptr, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvHalf<1, 3, -1, 0, 0, 4, 0, 1, 1, 1>(p, splits);"), std::string::npos) << src;
  src = product(1, 0, true, nullptr, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvRow<8, "), std::string::npos) << src;
  cg::GemvTuning tune;
  tune.half = 1;
  src = product(1, 0, true, &tune, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvHalf<1, 3, 0, 0, 0, 4, 0, 1, 1, 1>(p, splits);"), std::string::npos) << src;
  tune = {};
  tune.half = -1;
  src = product(1, 0, false, &tune, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvRow<8, "), std::string::npos) << src;
  tune = {};
  tune.cvt = -1;
  tune.pipe = 2;
  src = product(1, 0, false, &tune, ok, why);
  ASSERT_TRUE(ok) << why;
  EXPECT_NE(src.find("qGemvHalf<1, 3, -1, 0, 0, 2, 0, 1, 1, 0, 2>(p, splits);"), std::string::npos) << src;
}
