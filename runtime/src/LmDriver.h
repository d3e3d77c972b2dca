//===- LmDriver.h - feeding decoder language models through the C API ------===//
//
// Decoder LMs exported from Hugging Face classes share an input convention: input_ids [batch, sequence],
// optional position_ids and attention_mask, and past_key_values.* inputs paired with present.* outputs as a KV
// cache. LmDriver feeds one sequence (batch 1) in that convention and keeps the cache between calls: qopt makes
// the cache session state where it can (qopt-kv-state), and LmDriver copies it only for graphs that still take it
// as inputs. Used by
// qrun (generation, perplexity) and by the compiler's calibration, both through the public C API only.
//
//===----------------------------------------------------------------------===//
#ifndef QRT_LMDRIVER_H
#define QRT_LMDRIVER_H

#include "qrt.h"

#include <string>
#include <vector>

namespace qrt {

// Element count of a tensor returned by the C API.
inline int64_t numel(const qrt_tensor &t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; ++i)
    n *= t.shape[i];
  return n;
}

class LmDriver {
public:
  // False with `error` if the model's inputs are not a decoder LM in the convention above.
  bool init(qrt_model *model, qrt_session *session, std::string &error);
  bool hasCache() const { return !caches.empty() || stateful; }
  // Forget the cached keys and values (start a new sequence).
  void resetCache();
  // Runs `ids` at positions [start, start + n); `*logits` (if not null) is then the float32 [1, n, vocab] output,
  // owned by the session until its next run. With a cache, `start` is the number of positions fed since the last
  // reset, and more ids than the compiled sequence bound (maxSeq; maxSeqLast where prefill_last runs them) run as
  // consecutive chunks within it (chunked prefill: a model compiled with a small sequence bound plans a small
  // activation arena and still takes prompts up to its context); `*logits` then covers the last chunk only,
  // [1, shape[1], vocab]. With `lastOnly`,
  // `*logits` is the last position's row alone, [1, 1, vocab], and only it is fetched from the device. Runs that
  // need no more than the last row (lastOnly, no `logits`, the chunks before the last) take the model's
  // `prefill_last` entry where it has one (only that row's logits computed).
  bool forward(const std::vector<int32_t> &ids, int64_t start, qrt_tensor *logits, std::string &error,
               bool lastOnly = false);

  // forward without `logits`, then `next` = the greedy choice after the last id (argmaxRow of its logits), computed
  // where the logits live: on a GPU one id crosses to the host instead of the vocabulary's logits.
  bool forwardGreedy(const std::vector<int32_t> &ids, int64_t start, int32_t &next, std::string &error);
  // As forwardGreedy, the next token drawn by `sampling` with the uniform number u in [0, 1)
  // (qrt_session_sample_rows: where the logits are).
  bool forwardSample(const std::vector<int32_t> &ids, int64_t start, const qrt_sampling &sampling, double u,
                     int32_t &next, std::string &error);

  int64_t maxPositions = 0; // the model's qopt.max_sequence, else the compiled sequence bound
  int64_t maxSeq = 0;       // the compiled bound of input_ids' sequence dim (the general entry's: scoring)
  int64_t maxSeqLast = 0;   // the same in prefill_last (generation's prompts), maxSeq without that entry

private:
  struct Cache {
    std::string input, output;
    qrt_tensor info;
    int64_t len = 0;
    std::vector<uint8_t> data;
  };
  qrt_session *session = nullptr;
  qrt_dtype idsType = QRT_FLOAT32;
  bool hasPositions = false, hasMask = false;
  std::vector<Cache> caches; // a cache the graph takes as inputs and returns as outputs, copied between runs
  bool stateful = false;     // the cache is session state (qrt_model_state_bytes): nothing to copy
  int64_t position = 0;      // positions in the state's cache
  bool lastEntry = false;    // the model has `prefill_last` (qopt-last-logits-entry)
  int64_t logitsRows = 0;    // rows of the last run's logits output
};

} // namespace qrt

#endif // QRT_LMDRIVER_H
