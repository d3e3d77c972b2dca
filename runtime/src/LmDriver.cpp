//===- LmDriver.cpp - feeding decoder language models through the C API ----===//
#include "LmDriver.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace qrt {

namespace {
bool ok(qrt_status st, const std::string &what, std::string &error) {
  if (!st)
    return true;
  error = what + ": " + qrt_status_message(st);
  qrt_status_free(st);
  return false;
}
} // namespace

bool LmDriver::init(qrt_model *model, qrt_session *s, std::string &error) {
  session = s;
  for (int32_t i = 0; i < qrt_model_num_inputs(model); ++i) {
    std::string name = qrt_model_input_name(model, i);
    qrt_tensor info;
    if (!ok(qrt_model_input_info(model, i, &info), "model input", error))
      return false;
    if (name == "input_ids") {
      idsType = info.dtype;
      maxSeq = qrt_model_input_max_dim(model, i, 1);
      if (maxSeq < 0)
        maxSeq = info.rank > 1 ? info.shape[1] : 0;
    } else if (name == "position_ids") {
      hasPositions = true;
    } else if (name == "attention_mask") {
      hasMask = true;
    } else if (name.rfind("past_key_values", 0) == 0) {
      if (info.rank != 4) {
        error = "cache input '" + name + "' is not 4-D";
        return false;
      }
      Cache c;
      c.input = name;
      c.output = "present" + name.substr(std::strlen("past_key_values"));
      c.info = info;
      caches.push_back(c);
    } else {
      error = "do not know how to feed input '" + name + "': expected a decoder language model with the Hugging Face "
              "inputs (input_ids, and optionally position_ids, attention_mask, past_key_values.*)";
      return false;
    }
  }
  if (idsType != QRT_INT64 && idsType != QRT_INT32) {
    error = "the model has no int32/int64 input named 'input_ids'";
    return false;
  }
  stateful = qrt_model_state_bytes(model) > 0;
  position = 0;
  maxSeqLast = maxSeq;
  for (int32_t e = 0; e < qrt_model_num_entries(model); ++e)
    if (std::strcmp(qrt_model_entry_name(model, e), "prefill_last") == 0) {
      lastEntry = true;
      for (int32_t i = 0; i < qrt_model_num_inputs(model); ++i)
        if (std::strcmp(qrt_model_input_name(model, i), "input_ids") == 0)
          if (int64_t bound = qrt_model_entry_input_max_dim(model, e, i, 1); bound > 0)
            maxSeqLast = bound;
    }
  const char *ms = qrt_model_metadata(model, "qopt.max_sequence");
  maxPositions = ms ? std::atol(ms) : maxSeq;
  return true;
}

void LmDriver::resetCache() {
  for (Cache &c : caches) {
    c.len = 0;
    c.data.clear();
  }
  if (stateful)
    qrt_status_free(qrt_session_reset(session)); // fails only for a null session
  position = 0;
}

bool LmDriver::forward(const std::vector<int32_t> &ids, int64_t start, qrt_tensor *logits, std::string &error,
                       bool lastOnly) {
  int64_t n = static_cast<int64_t>(ids.size());
  // Runs that read the last row only take prefill_last, whose bound may differ from the general entry's; chunks
  // before the last read nothing, so with every row of the last one wanted all chunks keep within both.
  const bool lastRows = lastEntry && (!logits || lastOnly);
  const int64_t bound = lastRows ? maxSeqLast : lastEntry ? std::min(maxSeq, maxSeqLast) : maxSeq;
  if (hasCache() && bound > 0 && n > bound) {
    for (int64_t at = 0; at < n; at += bound) {
      const int64_t end = std::min(n, at + bound);
      std::vector<int32_t> chunk(ids.begin() + at, ids.begin() + end);
      if (!forward(chunk, start + at, end == n ? logits : nullptr, error, lastOnly))
        return false;
    }
    return true;
  }
  if (stateful && start != position) {
    error = "the KV cache holds " + std::to_string(position) + " positions, so the next tokens start there, not at " +
            std::to_string(start) + " (reset the cache to start a new sequence)";
    return false;
  }
  int64_t shape[2] = {1, n};
  if (idsType == QRT_INT64) {
    std::vector<int64_t> v(ids.begin(), ids.end());
    if (!ok(qrt_session_set_input(session, "input_ids", QRT_INT64, shape, 2, v.data()), "input_ids", error))
      return false;
  } else if (!ok(qrt_session_set_input(session, "input_ids", QRT_INT32, shape, 2, ids.data()), "input_ids", error)) {
    return false;
  }
  if (hasPositions) {
    std::vector<int64_t> pos(n);
    for (int64_t i = 0; i < n; ++i)
      pos[i] = start + i;
    if (!ok(qrt_session_set_input(session, "position_ids", QRT_INT64, shape, 2, pos.data()), "position_ids", error))
      return false;
  }
  if (hasMask) {
    std::vector<int64_t> mask(start + n, 1);
    int64_t ms[2] = {1, start + n};
    if (!ok(qrt_session_set_input(session, "attention_mask", QRT_INT64, ms, 2, mask.data()), "attention_mask",
            error))
      return false;
  }
  for (Cache &c : caches) {
    int64_t s[4] = {1, c.info.shape[1], c.len, c.info.shape[3]};
    if (!ok(qrt_session_set_input(session, c.input.c_str(), c.info.dtype, s, 4, c.data.data()), c.input, error))
      return false;
  }
  // One token takes the static decode entry (qrt_session_run picks it); a prompt whose last row alone is read
  // takes prefill_last.
  const bool lastRow = lastEntry && n > 1 && (!logits || lastOnly);
  if (!ok(lastRow ? qrt_session_run_entry(session, "prefill_last") : qrt_session_run(session), "run", error))
    return false;
  position += n;
  logitsRows = lastRow ? 1 : n;
  for (Cache &c : caches) {
    qrt_tensor t;
    if (!ok(qrt_session_get_output(session, c.output.c_str(), &t), c.output, error))
      return false;
    c.len = t.shape[2];
    const auto *p = static_cast<const uint8_t *>(t.data);
    c.data.assign(p, p + numel(t) * qrt_dtype_size(t.dtype));
  }
  if (!logits)
    return true;
  if (lastOnly) {
    if (!ok(qrt_session_get_output_rows(session, "logits", logitsRows - 1, 1, logits), "logits", error))
      return false;
    logits->rank = 3;
    logits->shape[2] = logits->shape[1];
    logits->shape[1] = logits->shape[0] = 1;
    if (logits->dtype != QRT_FLOAT32) {
      error = "the model's 'logits' output is not float32 [batch, sequence, vocab]";
      return false;
    }
    return true;
  }
  if (!ok(qrt_session_get_output(session, "logits", logits), "logits", error))
    return false;
  if (logits->rank != 3 || logits->dtype != QRT_FLOAT32 || logits->shape[1] != n) {
    error = "the model's 'logits' output is not float32 [batch, sequence, vocab]";
    return false;
  }
  return true;
}

bool LmDriver::forwardGreedy(const std::vector<int32_t> &ids, int64_t start, int32_t &next, std::string &error) {
  return forwardSample(ids, start, qrt_sampling{0.0f, 0, 1.0f}, 0.0, next, error); // temperature 0: the argmax
}

bool LmDriver::forwardSample(const std::vector<int32_t> &ids, int64_t start, const qrt_sampling &sampling, double u,
                             int32_t &next, std::string &error) {
  if (ids.empty()) {
    error = "no tokens to run";
    return false;
  }
  if (!forward(ids, start, nullptr, error))
    return false;
  // The last run's last row (of the last chunk when the ids ran in chunks; forward above).
  int64_t id = 0;
  if (!ok(qrt_session_sample_rows(session, "logits", logitsRows - 1, 1, &sampling, &u, &id), "logits", error))
    return false;
  next = static_cast<int32_t>(id);
  return true;
}

} // namespace qrt
