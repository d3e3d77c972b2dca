//===- RunOnZeros.h - run a loaded model, for the fuzz targets --------------===//
//
// Creates a session, binds zeros to every input at its planned bounds, runs, and fetches every output. Failures
// must come back as statuses with a message (abort otherwise, so the fuzzer reports them); a run that succeeds
// must have all its outputs. Models that would take more than 64 MiB of arena or 8M input elements are skipped:
// a large but valid model is a resource limit, not a bug.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_FUZZ_RUNONZEROS_H
#define QOPT_FUZZ_RUNONZEROS_H

#include "qrt.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace qopt::fuzz {

// Reports a broken property and aborts, so that the fuzzer saves the input.
[[noreturn]] inline void broken(const char *what, const char *detail = "") {
  std::fprintf(stderr, "property broken: %s %s\n", what, detail);
  std::abort();
}

// True if `st` is success; frees it otherwise, after checking that it says why.
inline bool ok(qrt_status st) {
  if (!st)
    return true;
  const char *msg = qrt_status_message(st);
  if (!msg || !*msg)
    broken("a failure status without a message");
  qrt_status_free(st);
  return false;
}

inline void runOnZeros(const qrt_model *model) {
  if (qrt_model_arena_bytes(model) > (uint64_t(64) << 20) || qrt_model_state_bytes(model) > (uint64_t(64) << 20))
    return;
  qrt_session_options opts = {"cpu", 1};
  qrt_session *session = nullptr;
  if (!ok(qrt_session_create(model, &opts, &session)))
    return;
  bool bound = true;
  for (int32_t i = 0; i < qrt_model_num_inputs(model) && bound; ++i) {
    qrt_tensor info;
    if (!ok(qrt_model_input_info(model, i, &info)))
      broken("no info for an input index in range");
    int64_t shape[QRT_MAX_RANK];
    uint64_t elems = 1; // no overflow: the loader bounds every value's elements by 2^59
    for (int32_t d = 0; d < info.rank; ++d) {
      shape[d] = info.shape[d] >= 0 ? info.shape[d] : qrt_model_input_max_dim(model, i, d);
      elems *= static_cast<uint64_t>(shape[d] < 0 ? 0 : shape[d]);
    }
    if (elems > (uint64_t(8) << 20)) {
      bound = false;
      break;
    }
    std::vector<uint8_t> zeros(elems * qrt_dtype_size(info.dtype) + 1);
    bound = ok(qrt_session_set_input(session, qrt_model_input_name(model, i), info.dtype, shape, info.rank,
                                     zeros.data()));
  }
  auto runAndFetch = [&] {
    if (!ok(qrt_session_run(session)))
      return;
    for (int32_t i = 0; i < qrt_model_num_outputs(model); ++i) {
      qrt_tensor out;
      if (qrt_status st = qrt_session_get_output(session, qrt_model_output_name(model, i), &out))
        broken("a successful run lacks an output:", qrt_status_message(st));
    }
  };
  if (bound) {
    runAndFetch();
    // With state (a KV cache): a second run continues from the first (at the bounds it no longer fits and must
    // fail cleanly), and after a reset the first run's result comes again.
    if (qrt_model_state_bytes(model) > 0) {
      runAndFetch();
      if (!ok(qrt_session_reset(session)))
        broken("qrt_session_reset failed on a live session");
      runAndFetch();
    }
  }
  qrt_session_free(session);
}

} // namespace qopt::fuzz

#endif // QOPT_FUZZ_RUNONZEROS_H
