//===- Api.cpp - the C API over the runtime's C++ internals ----------------===//
#include "qrt.h"

#include "Session.h"
#include "Tokenizer.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <new>
#include <string>

struct qrt_status_impl {
  qrt_status_code code;
  std::string message;
};

struct qrt_model {
  std::unique_ptr<qrt::Model> impl;
};

struct qrt_session {
  std::unique_ptr<qrt::Session> impl;
};

struct qrt_tokenizer {
  qrt::Tokenizer impl;
  std::string last;
};

namespace {
qrt_status makeStatus(int code, std::string msg) {
  return new qrt_status_impl{static_cast<qrt_status_code>(code), std::move(msg)};
}

// Returned when memory ran out, possibly while building a status: preallocated, never freed.
qrt_status_impl outOfMemory{QRT_ERROR_OUT_OF_MEMORY, "out of memory"};
qrt_status_impl unknownError{QRT_ERROR_EXECUTION, "internal error: an unknown exception"};

// Runs the body of an API call, turning any exception into a status: none may cross the C boundary.
template <class Body> qrt_status guarded(const char *call, Body &&body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return &outOfMemory;
  } catch (const std::exception &e) {
    try {
      return makeStatus(QRT_ERROR_EXECUTION, std::string(call) + ": internal error: " + e.what());
    } catch (...) {
      return &outOfMemory;
    }
  } catch (...) {
    return &unknownError;
  }
}

qrt::WeightResolver makeResolver(const qrt_model_options *options) {
  if (!options || !options->resolve_weight)
    return {};
  qrt_model_options opt = *options;
  return [opt](uint64_t index, const std::string &name, qopt::num::DType dtype, uint64_t bytes) {
    return opt.resolve_weight(opt.user_data, index, name.c_str(), static_cast<qrt_dtype>(dtype), bytes);
  };
}

qrt_status finishLoad(std::unique_ptr<qrt::Model> m, int code, const std::string &err, qrt_model **out) {
  if (!m)
    return makeStatus(code, err);
  *out = new qrt_model{std::move(m)};
  return nullptr;
}

} // namespace

extern "C" {

qrt_status_code qrt_status_code_of(qrt_status s) { return s ? s->code : QRT_OK; }
const char *qrt_status_message(qrt_status s) { return s ? s->message.c_str() : "ok"; }
void qrt_status_free(qrt_status s) {
  if (s != &outOfMemory && s != &unknownError)
    delete s;
}

const char *qrt_dtype_name(qrt_dtype d) { return qopt::num::dtypeName(static_cast<qopt::num::DType>(d)); }
size_t qrt_dtype_size(qrt_dtype d) { return qopt::num::dtypeSize(static_cast<qopt::num::DType>(d)); }

qrt_status qrt_model_load(const char *path, qrt_model **out) { return qrt_model_load_with_options(path, nullptr, out); }


qrt_status qrt_model_load_with_options(const char *path, const qrt_model_options *options, qrt_model **out) {
  return guarded("qrt_model_load_with_options", [&]() -> qrt_status {
    if (!path || !out)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_model_load: null argument");
    std::string err;
    int code = 0;
    auto m = qrt::Model::load(path, makeResolver(options), err, code);
    return finishLoad(std::move(m), code, err, out);
  });
}

qrt_status qrt_model_load_from_memory(const void *data, size_t size, const qrt_model_options *options,
                                      qrt_model **out) {
  return guarded("qrt_model_load_from_memory", [&]() -> qrt_status {
    if (!data || !out)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_model_load_from_memory: null argument");
    if (reinterpret_cast<uintptr_t>(data) % qrt::Model::kImageAlignment != 0)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_model_load_from_memory: the image must start on a " +
                                                        std::to_string(qrt::Model::kImageAlignment) +
                                                        "-byte boundary");
    std::string err;
    int code = 0;
    auto m = qrt::Model::loadImage(static_cast<const uint8_t *>(data), size, "model image", makeResolver(options),
                                   err, code);
    return finishLoad(std::move(m), code, err, out);
  });
}

void qrt_model_free(qrt_model *m) { delete m; }

uint64_t qrt_model_arena_bytes(const qrt_model *m) { return m->impl->arenaBytes; }
uint64_t qrt_model_state_bytes(const qrt_model *m) { return m->impl->stateBytes; }
int32_t qrt_model_num_entries(const qrt_model *m) { return static_cast<int32_t>(m->impl->entries.size()); }
const char *qrt_model_entry_name(const qrt_model *m, int32_t i) {
  if (i < 0 || i >= qrt_model_num_entries(m))
    return nullptr;
  return m->impl->entries[static_cast<size_t>(i)].name.c_str();
}

int32_t qrt_model_num_inputs(const qrt_model *m) { return static_cast<int32_t>(m->impl->general().inputs.size()); }
int32_t qrt_model_num_outputs(const qrt_model *m) { return static_cast<int32_t>(m->impl->general().outputs.size()); }

const char *qrt_model_input_name(const qrt_model *m, int32_t i) {
  if (i < 0 || i >= qrt_model_num_inputs(m))
    return nullptr;
  return m->impl->values[m->impl->general().inputs[i]].name.c_str();
}

const char *qrt_model_output_name(const qrt_model *m, int32_t i) {
  if (i < 0 || i >= qrt_model_num_outputs(m))
    return nullptr;
  return m->impl->general().outputNames[i].c_str();
}

qrt_status qrt_model_input_info(const qrt_model *m, int32_t i, qrt_tensor *out) {
  return guarded("qrt_model_input_info", [&]() -> qrt_status {
    if (i < 0 || i >= qrt_model_num_inputs(m) || !out)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_model_input_info: bad index");
    const qrt::Value &v = m->impl->values[m->impl->general().inputs[i]];
    std::memset(out, 0, sizeof *out);
    out->dtype = static_cast<qrt_dtype>(v.dtype);
    out->rank = static_cast<int32_t>(v.dims.size());
    for (size_t d = 0; d < v.dims.size(); ++d)
      out->shape[d] = v.dims[d];
    return nullptr;
  });
}

int64_t qrt_model_input_max_dim(const qrt_model *m, int32_t i, int32_t d) {
  return qrt_model_entry_input_max_dim(m, 0, i, d);
}

int64_t qrt_model_entry_input_max_dim(const qrt_model *m, int32_t e, int32_t i, int32_t d) {
  if (e < 0 || e >= qrt_model_num_entries(m) || i < 0 || i >= qrt_model_num_inputs(m))
    return -1;
  const qrt::Value &v = m->impl->values[m->impl->entries[e].inputs[i]];
  if (d < 0 || d >= static_cast<int32_t>(v.dims.size()) || v.dims[d] >= 0)
    return -1;
  return v.maxDims[d];
}

const char *qrt_model_metadata(const qrt_model *m, const char *key) {
  auto it = m->impl->meta.find(key);
  return it == m->impl->meta.end() ? nullptr : it->second.c_str();
}

qrt_status qrt_session_create(const qrt_model *m, const qrt_session_options *opts, qrt_session **out) {
  return guarded("qrt_session_create", [&]() -> qrt_status {
    if (!m || !out)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_create: null argument");
    std::string device = opts && opts->device ? opts->device : "cpu";
    int threads = opts ? opts->num_threads : 0;
    std::unique_ptr<qrt::Backend> backend;
    if (device == "cpu")
      backend = qrt::createCpuBackend(threads);
    else if (device == "cuda") {
      std::string why;
      backend = qrt::createCudaBackend(why);
      if (!backend)
        return makeStatus(QRT_ERROR_UNSUPPORTED, "cannot use the CUDA backend: " + why);
    }
    else
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "unknown device '" + device + "' (expected cpu or cuda)");
    auto s = std::make_unique<qrt::Session>(*m->impl, std::move(backend));
    std::string err;
    if (!s->prepare(err))
      return makeStatus(QRT_ERROR_EXECUTION, err);
    *out = new qrt_session{std::move(s)};
    return nullptr;
  });
}

void qrt_session_free(qrt_session *s) { delete s; }

qrt_status qrt_session_set_input(qrt_session *s, const char *name, qrt_dtype dtype, const int64_t *shape,
                                 int32_t rank, const void *data) {
  return guarded("qrt_session_set_input", [&]() -> qrt_status {
    if (!s || !name || (rank && !shape) || rank < 0 || rank > QRT_MAX_RANK)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_set_input: bad argument");
    std::vector<int64_t> dims(shape, shape + rank);
    if (!data && qopt::num::numElements(dims) != 0)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_set_input: null data");
    std::string err;
    int code = s->impl->setInput(name, static_cast<qopt::num::DType>(dtype), dims, data, err);
    return code ? makeStatus(code, err) : nullptr;
  });
}

qrt_status qrt_session_run(qrt_session *s) {
  return guarded("qrt_session_run", [&]() -> qrt_status {
    std::string err;
    int code = s->impl->run(err);
    return code ? makeStatus(code, err) : nullptr;
  });
}

qrt_status qrt_session_run_entry(qrt_session *s, const char *entry) {
  return guarded("qrt_session_run_entry", [&]() -> qrt_status {
    if (!s || !entry)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_run_entry: null argument");
    std::string err;
    int code = s->impl->runEntry(entry, err);
    return code ? makeStatus(code, err) : nullptr;
  });
}

int64_t qrt_session_host_fallbacks(const qrt_session *s) {
  return s ? static_cast<int64_t>(s->impl->hostFallbacks()) : 0;
}

uint64_t qrt_session_memory_bytes(const qrt_session *s) { return s ? s->impl->memoryBytes() : 0; }

const char *qrt_session_device_info(const qrt_session *s) {
  if (!s)
    return "";
  thread_local std::string text;
  text = s->impl->deviceInfo();
  return text.c_str();
}

qrt_status qrt_session_reset(qrt_session *s) {
  return guarded("qrt_session_reset", [&]() -> qrt_status {
    if (!s)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_reset: null session");
    std::string err;
    int code = s->impl->reset(err);
    return code ? makeStatus(code, err) : nullptr;
  });
}

qrt_status qrt_session_get_output(qrt_session *s, const char *name, qrt_tensor *out) {
  return guarded("qrt_session_get_output", [&]() -> qrt_status {
    int code = 0;
    std::string err;
    const qopt::num::Tensor *t = s->impl->output(name ? name : "", code, err);
    if (!t)
      return makeStatus(code, err);
    std::memset(out, 0, sizeof *out);
    out->dtype = static_cast<qrt_dtype>(t->dtype);
    out->rank = static_cast<int32_t>(t->shape.size());
    for (size_t d = 0; d < t->shape.size(); ++d)
      out->shape[d] = t->shape[d];
    out->data = t->data;
    return nullptr;
  });
}

qrt_status qrt_session_get_output_rows(qrt_session *s, const char *name, int64_t first, int64_t count,
                                       qrt_tensor *out) {
  return guarded("qrt_session_get_output_rows", [&]() -> qrt_status {
    int code = 0;
    std::string err;
    const qopt::num::Tensor *t = s->impl->outputRows(name ? name : "", first, count, code, err);
    if (!t)
      return makeStatus(code, err);
    std::memset(out, 0, sizeof *out);
    out->dtype = static_cast<qrt_dtype>(t->dtype);
    out->rank = 2;
    out->shape[0] = t->shape[0];
    out->shape[1] = t->shape[1];
    out->data = t->data;
    return nullptr;
  });
}

qrt_status qrt_session_argmax_rows(qrt_session *s, const char *name, int64_t first, int64_t count, int64_t *ids) {
  return guarded("qrt_session_argmax_rows", [&]() -> qrt_status {
    if (count > 0 && !ids)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_argmax_rows: null out_ids");
    int code = 0;
    std::string err;
    if (!s->impl->argmaxRows(name ? name : "", first, count, ids, code, err))
      return makeStatus(code, err);
    return nullptr;
  });
}

qrt_status qrt_session_sample_rows(qrt_session *s, const char *name, int64_t first, int64_t count,
                                   const qrt_sampling *sampling, const double *uniforms, int64_t *ids) {
  return guarded("qrt_session_sample_rows", [&]() -> qrt_status {
    auto invalid = [](const std::string &what) {
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_session_sample_rows: " + what);
    };
    if (!sampling)
      return invalid("null sampling");
    if (count > 0 && (!ids || !uniforms))
      return invalid(ids ? "null uniforms" : "null out_ids");
    if (!(sampling->temperature >= 0.0f) || !std::isfinite(sampling->temperature))
      return invalid("temperature " + std::to_string(sampling->temperature) + " (must be finite and at least 0)");
    if (sampling->top_k < 0)
      return invalid("top_k " + std::to_string(sampling->top_k) + " (must be at least 0; 0 keeps every token)");
    if (!(sampling->top_p > 0.0f && sampling->top_p <= 1.0f))
      return invalid("top_p " + std::to_string(sampling->top_p) + " (must be in (0, 1]; 1 keeps every token)");
    for (int64_t i = 0; i < count; ++i)
      if (!(uniforms[i] >= 0.0 && uniforms[i] < 1.0))
        return invalid("uniforms[" + std::to_string(i) + "] = " + std::to_string(uniforms[i]) +
                       " (must be in [0, 1))");
    qrt::Sampling params;
    params.temperature = sampling->temperature;
    params.topK = sampling->top_k;
    params.topP = sampling->top_p;
    int code = 0;
    std::string err;
    if (!s->impl->sampleRows(name ? name : "", first, count, params, uniforms, ids, code, err))
      return makeStatus(code, err);
    return nullptr;
  });
}

qrt_status qrt_tokenizer_create(const qrt_model *m, qrt_tokenizer **out) {
  return guarded("qrt_tokenizer_create", [&]() -> qrt_status {
    if (!m->impl->tokenizer)
      return makeStatus(QRT_ERROR_UNSUPPORTED, "the model has no embedded tokenizer (compile with --tokenizer)");
    const char *vs = qrt_model_metadata(m, "tokenizer.vocab_size");
    int32_t vocab = vs ? static_cast<int32_t>(std::strtol(vs, nullptr, 10)) : 0;
    auto *t = new qrt_tokenizer();
    std::string err;
    if (!qrt::Tokenizer::load(m->impl->tokenizer, m->impl->tokenizerSize, vocab, t->impl, err)) {
      delete t;
      return makeStatus(QRT_ERROR_FORMAT, "embedded tokenizer: " + err);
    }
    *out = t;
    return nullptr;
  });
}

qrt_status qrt_tokenizer_load(const char *path, int32_t vocab, qrt_tokenizer **out) {
  return guarded("qrt_tokenizer_load", [&]() -> qrt_status {
    if (!path || !out)
      return makeStatus(QRT_ERROR_INVALID_ARGUMENT, "qrt_tokenizer_load: null argument");
    auto *t = new qrt_tokenizer();
    std::string err;
    if (!qrt::Tokenizer::loadFile(path, vocab, t->impl, err)) {
      delete t;
      return makeStatus(QRT_ERROR_FORMAT, err);
    }
    *out = t;
    return nullptr;
  });
}

void qrt_tokenizer_free(qrt_tokenizer *t) { delete t; }

int32_t qrt_tokenizer_vocab_size(const qrt_tokenizer *t) { return t->impl.vocabSize(); }

qrt_status qrt_tokenizer_encode(const qrt_tokenizer *t, const char *text, int32_t bos, int32_t eos,
                                int32_t *outIds, size_t capacity, size_t *outCount) {
  return guarded("qrt_tokenizer_encode", [&]() -> qrt_status {
    std::vector<int32_t> ids = t->impl.encode(text ? text : "", bos != 0, eos != 0);
    if (outCount)
      *outCount = ids.size();
    for (size_t i = 0; i < ids.size() && i < capacity; ++i)
      outIds[i] = ids[i];
    return nullptr;
  });
}

const char *qrt_tokenizer_decode(qrt_tokenizer *t, int32_t prev, int32_t token) {
  try {
    t->last = t->impl.decode(prev, token);
  } catch (...) {
    t->last.clear();
  }
  return t->last.c_str();
}

} // extern "C"
