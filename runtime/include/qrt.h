/*===- qrt.h - the qopt runtime C API ------------------------------------===*
 *
 * qrt loads a model.bin produced by `qopt` and runs it. It has no dependency on the compiler (no MLIR, no
 * protobuf). Objects are opaque handles; every fallible call returns a qrt_status that is NULL on success and
 * otherwise owns a message the caller frees with qrt_status_free.
 *
 *   qrt_model *model; qrt_session *session;
 *   qrt_status st = qrt_model_load("model.bin", &model);
 *   st = qrt_session_create(model, NULL, &session);
 *   st = qrt_session_set_input(session, "input_ids", QRT_INT64, shape, 2, ids);
 *   st = qrt_session_run(session);
 *   qrt_tensor logits; st = qrt_session_get_output(session, "logits", &logits);
 *
 * The loader validates everything it reads before use (section bounds, checksums, value and kernel tables), so a
 * damaged or hostile file is rejected with a message rather than read out of bounds. No C++ exception leaves this
 * API: a failed allocation anywhere inside a call (a run-time sized buffer, a kernel's scratch memory on a worker
 * thread) comes back as QRT_ERROR_OUT_OF_MEMORY.
 *===---------------------------------------------------------------------===*/
#ifndef QRT_H
#define QRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qrt_status_impl *qrt_status;
typedef struct qrt_model qrt_model;
typedef struct qrt_session qrt_session;
typedef struct qrt_tokenizer qrt_tokenizer;

typedef enum qrt_status_code {
  QRT_OK = 0,
  QRT_ERROR_IO = 1,               /* the file could not be opened or read */
  QRT_ERROR_FORMAT = 2,           /* not a model.bin, damaged, or of another format version */
  QRT_ERROR_INVALID_ARGUMENT = 3, /* a wrong input name, dtype or shape */
  QRT_ERROR_UNSUPPORTED = 4,      /* e.g. a device this runtime was built without */
  QRT_ERROR_EXECUTION = 5,        /* a kernel rejected its operands at run time */
  QRT_ERROR_OUT_OF_MEMORY = 6,    /* an allocation failed (e.g. a buffer whose size the inputs determine) */
} qrt_status_code;

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum qrt_dtype {
  QRT_FLOAT32 = 1,
  QRT_UINT8 = 2,
  QRT_INT8 = 3,
  QRT_UINT16 = 4,
  QRT_INT16 = 5,
  QRT_INT32 = 6,
  QRT_INT64 = 7,
  QRT_BOOL = 9,
  QRT_FLOAT16 = 10,
  QRT_FLOAT64 = 11,
  QRT_UINT32 = 12,
  QRT_UINT64 = 13,
  QRT_BFLOAT16 = 16,
} qrt_dtype;

#define QRT_MAX_RANK 16

typedef struct qrt_tensor {
  qrt_dtype dtype;
  int32_t rank;
  int64_t shape[QRT_MAX_RANK]; /* -1 marks a dynamic dim in qrt_model_input_info */
  const void *data;            /* owned by the session; valid until its next run */
} qrt_tensor;

typedef struct qrt_session_options {
  const char *device; /* "cpu" (default) or "cuda" */
  int32_t num_threads; /* 0: QOPT_NUM_THREADS or all cores */
} qrt_session_options;

qrt_status_code qrt_status_code_of(qrt_status status);
const char *qrt_status_message(qrt_status status);
void qrt_status_free(qrt_status status);

const char *qrt_dtype_name(qrt_dtype dtype);
size_t qrt_dtype_size(qrt_dtype dtype); /* bytes per element, 0 if unknown */

qrt_status qrt_model_load(const char *path, qrt_model **out_model);

/* Supplies the bytes of a weight that the model.bin marks external (written by an embedding compiler that keeps
 * the weights in its own memory, e.g. qopt's calibration): `index` counts the file's external weights from 0.
 * Returns NULL if it has no such weight. The bytes must stay valid and unchanged until the model is freed. */
typedef const void *(*qrt_weight_resolver)(void *user_data, uint64_t index, const char *name, qrt_dtype dtype,
                                           uint64_t bytes);
typedef struct qrt_model_options {
  qrt_weight_resolver resolve_weight; /* required by models with external weights, else may be NULL */
  void *user_data;                    /* passed to resolve_weight */
} qrt_model_options;
/* qrt_model_load with options; `options` may be NULL. */
qrt_status qrt_model_load_with_options(const char *path, const qrt_model_options *options, qrt_model **out_model);
/* Loads a model.bin image held in memory (received over a network, embedded in a binary), with the same checks as
 * a file. `data` must start on a 64-byte boundary and stay valid and unchanged until the model is freed: weights
 * are read in place. */
qrt_status qrt_model_load_from_memory(const void *data, size_t size, const qrt_model_options *options,
                                      qrt_model **out_model);
void qrt_model_free(qrt_model *model);
int32_t qrt_model_num_inputs(const qrt_model *model);
int32_t qrt_model_num_outputs(const qrt_model *model);
const char *qrt_model_input_name(const qrt_model *model, int32_t index);
const char *qrt_model_output_name(const qrt_model *model, int32_t index);
/* dtype, rank and dims (-1 where dynamic) of an input; data is NULL. */
qrt_status qrt_model_input_info(const qrt_model *model, int32_t index, qrt_tensor *out_info);
/* The largest value a dynamic input dim may take in the general entry (the compile-time plan's bound), -1 if
 * static. */
int64_t qrt_model_input_max_dim(const qrt_model *model, int32_t index, int32_t dim);
/* The same bound in entry `entry` (see qrt_model_entry_name): entries may be planned for different bounds (qopt's
 * --max-dim ENTRY:NAME=N), e.g. `prefill_last` for a whole prompt and `prefill` for shorter scoring windows. -1 if
 * static there or out of range. */
int64_t qrt_model_entry_input_max_dim(const qrt_model *model, int32_t entry, int32_t index, int32_t dim);
/* Bytes of activation memory each session allocates up front (the compile-time plan, sized for the bounds of
 * dynamic dims); values sized only at run time come on top. Lets a host check a model against its memory before
 * creating a session. */
uint64_t qrt_model_arena_bytes(const qrt_model *model);
/* Bytes of state each session keeps from one run to the next (a decoder's KV cache, sized for the compiled
 * context bound, and its length); 0 for a model without. A model with state continues the sequence of the
 * previous run: run with the next tokens only, and call qrt_session_reset to start a new sequence. */
uint64_t qrt_model_state_bytes(const qrt_model *model);
/* A model.bin holds one or more entries (programs over the same weights and state): the first is general (every
 * input size up to the bounds); a decoder with its KV cache in state also has `decode`, specialized for one new
 * token (static shapes, no shape arithmetic at run time), and, where its outputs are output heads' (logits),
 * `prefill_last`: the general entry computing the last position's row of each output only ([..., 1, vocab]),
 * which is all generation reads of a prompt. qrt_session_run runs the first static entry whose input shapes
 * match the inputs set, else the general one; other entries run by name (qrt_session_run_entry). Entry 0 is
 * named `prefill` then, else `main`. */
int32_t qrt_model_num_entries(const qrt_model *model);
const char *qrt_model_entry_name(const qrt_model *model, int32_t index);
/* A metadata value written by the compiler, or NULL. */
const char *qrt_model_metadata(const qrt_model *model, const char *key);

qrt_status qrt_session_create(const qrt_model *model, const qrt_session_options *options,
                              qrt_session **out_session);
void qrt_session_free(qrt_session *session);
/* Instructions of the model (over all its entries) that this session's device has no kernel for, which it runs on
 * the host with the reference kernels, moving their operands (0 on the CPU, and for a model compiled for the
 * session's GPU whose every launch has a kernel). */
int64_t qrt_session_host_fallbacks(const qrt_session *session);
/* Bytes the session's backend holds: on a GPU its device memory (weights, activation arena, KV state, buffers);
 * on the CPU the arena, state and buffers (the weights are the mapped file). */
uint64_t qrt_session_memory_bytes(const qrt_session *session);
/* The session's device and how it runs products, e.g. "NVIDIA H200 (sm_90); products of 2+ rows: cuBLASLt
 * 130100"; "" on the CPU. Valid until the next call on this thread. */
const char *qrt_session_device_info(const qrt_session *session);
/* Copies the data; shape must match the input's static dims and stay within its planned bounds. */
qrt_status qrt_session_set_input(qrt_session *session, const char *name, qrt_dtype dtype, const int64_t *shape,
                                 int32_t rank, const void *data);
qrt_status qrt_session_run(qrt_session *session);
/* Runs the named entry (see qrt_model_entry_name) instead of the one qrt_session_run picks; an error if the
 * inputs set do not have shapes it takes. */
qrt_status qrt_session_run_entry(qrt_session *session, const char *entry);
/* Zeroes the session's state (see qrt_model_state_bytes): the next run starts a new sequence. */
qrt_status qrt_session_reset(qrt_session *session);
/* The named output of the last run, in host memory (copied from the device on the first request after a run);
 * its data stays valid until the session's next run. */
qrt_status qrt_session_get_output(qrt_session *session, const char *name, qrt_tensor *out_tensor);
/* Rows [first, first + count) of the named output viewed as a matrix [rows, its last dim]: out_tensor is
 * [count, last dim], and only those bytes come from the device (a generator needs the last position's logits, not
 * the whole prompt's: 1 GB for 2048 positions of a 128K vocabulary). Valid until the next run. */
qrt_status qrt_session_get_output_rows(qrt_session *session, const char *name, int64_t first, int64_t count,
                                       qrt_tensor *out_tensor);
/* out_ids[i] = the index of the largest value in row first + i of the named float32 output viewed as [rows, its
 * last dim] (the lowest such index; NaN is never chosen, and a row of NaN gives 0), for i < count. Computed where the
 * output lives: on a GPU only the indices cross to the host (greedy decoding's next token, not 128K logits). */
qrt_status qrt_session_argmax_rows(qrt_session *session, const char *name, int64_t first, int64_t count,
                                   int64_t *out_ids);

/* How qrt_session_sample_rows draws a token from a row of logits, in this order: the softmax of row / temperature;
 * only the top_k most likely tokens (0: every token; ties with the k-th all stay); of those, only the most likely
 * whose probabilities add up to top_p (in (0, 1]; 1: every token; ties at the boundary all stay). */
typedef struct qrt_sampling {
  float temperature; /* > 0; 0 is the argmax (qrt_session_argmax_rows; top_k and top_p unused) */
  int64_t top_k;
  float top_p;
} qrt_sampling;
/* out_ids[i] = the token drawn from row first + i of the named float32 output (viewed as [rows, its last dim]) by
 * the uniform random number uniforms[i] in [0, 1): the first token, in index order, at which the running
 * probability of the tokens that stay exceeds uniforms[i] (so the caller's random numbers decide, and the same
 * numbers choose the same tokens on every device, up to the rounding of the sums). NaN values are never chosen.
 * Computed where the output lives: on a GPU only the ids cross to the host. */
qrt_status qrt_session_sample_rows(qrt_session *session, const char *name, int64_t first, int64_t count,
                                   const qrt_sampling *sampling, const double *uniforms, int64_t *out_ids);

/* A llama2.c tokenizer.bin file with `vocab_size` tokens. */
qrt_status qrt_tokenizer_load(const char *path, int32_t vocab_size, qrt_tokenizer **out_tokenizer);
/* The tokenizer embedded with `qopt --tokenizer`; QRT_ERROR_UNSUPPORTED if there is none. */
qrt_status qrt_tokenizer_create(const qrt_model *model, qrt_tokenizer **out_tokenizer);
void qrt_tokenizer_free(qrt_tokenizer *tokenizer);
int32_t qrt_tokenizer_vocab_size(const qrt_tokenizer *tokenizer);
/* Writes up to `capacity` ids to `out_ids`; *out_count receives the full count (call again if larger). */
qrt_status qrt_tokenizer_encode(const qrt_tokenizer *tokenizer, const char *text, int32_t add_bos,
                                int32_t add_eos, int32_t *out_ids, size_t capacity, size_t *out_count);
/* The text of `token` following `prev_token`; valid until the next decode call on this tokenizer. */
const char *qrt_tokenizer_decode(qrt_tokenizer *tokenizer, int32_t prev_token, int32_t token);

#ifdef __cplusplus
}
#endif

#endif /* QRT_H */
