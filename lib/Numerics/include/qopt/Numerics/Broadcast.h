//===- Broadcast.h - numpy-style broadcast iteration -----------------------===//
//
// Walks an output shape row by row (the innermost dimension is the row) and hands the body the offset of each
// operand at the row start plus its stride along the row (0 when broadcast), so the body is a tight inner loop.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_NUMERICS_BROADCAST_H
#define QOPT_NUMERICS_BROADCAST_H

#include "qopt/Numerics/Tensor.h"

#include <array>

namespace qopt::num {

template <size_t N, typename Body>
void broadcastRows(const Shape &out, const std::array<const Shape *, N> &ins, Body &&body) {
  const size_t rank = out.size();
  // Strides of each operand in output-dimension order, 0 along broadcast dims.
  std::array<std::vector<int64_t>, N> strides;
  for (size_t k = 0; k < N; ++k) {
    const Shape &s = *ins[k];
    strides[k].assign(rank, 0);
    int64_t st = 1;
    for (size_t i = 0; i < s.size(); ++i) {
      size_t d = s.size() - 1 - i, od = rank - 1 - i;
      strides[k][od] = s[d] == 1 ? 0 : st;
      st *= s[d];
    }
  }
  int64_t total = numElements(out);
  if (total <= 0)
    return;
  if (rank == 0) {
    std::array<int64_t, N> off{}, st{};
    body(int64_t(0), off, st, int64_t(1));
    return;
  }
  int64_t rowLen = out[rank - 1];
  std::array<int64_t, N> inner{};
  for (size_t k = 0; k < N; ++k)
    inner[k] = strides[k][rank - 1];
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, N> off{};
  for (int64_t o = 0; o < total; o += rowLen) {
    body(o, off, inner, rowLen);
    // advance the multi-index over dims [0, rank-1)
    for (int64_t d = static_cast<int64_t>(rank) - 2; d >= 0; --d) {
      if (++idx[d] < out[d]) {
        for (size_t k = 0; k < N; ++k)
          off[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < N; ++k)
        off[k] -= strides[k][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

} // namespace qopt::num

#endif // QOPT_NUMERICS_BROADCAST_H
