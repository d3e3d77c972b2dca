//===- ModelLoadTest.cpp - the runtime's loader on hand-built model.bin images --===//
//
// Builds model.bin images byte by byte (no compiler involved) to pin the loader's checks that a compiled model
// never trips: external weights and the weight resolver, in-memory loading, and plan sizes that a damaged or
// hostile file could inflate (arena size, slot sizes, element counts).
//
//===----------------------------------------------------------------------===//
#include "Backend.h"
#include "qrt.h"

#include "qopt/Format/ByteStream.h"
#include "qopt/Format/ModelBin.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace qopt::format;

struct ValueSpec {
  std::string name;
  Storage storage;
  std::vector<int64_t> dims;
  uint64_t offset = 0, maxBytes = 0;
};

// An instruction of the program: a kernel (given fn = "add") and its operand and result value ids.
struct InstrSpec {
  std::string kernel;
  std::vector<uint32_t> inputs, outputs;
  std::string variant = {};
};

// y = x + w on float32 [4]: x an input (uploaded to its arena slot), w a weight (in the file or external), y in
// the arena.
struct Spec {
  std::vector<ValueSpec> values = {{"x", Storage::Input, {4}, 0, 16},
                                   {"w", Storage::Weight, {4}, 0, 16},
                                   {"y", Storage::Arena, {4}, 64, 16}};
  uint64_t arenaBytes = 128;
  uint64_t stateBytes = 0;
  uint64_t hostBytes = 0;
  std::vector<InstrSpec> program = {{"binary", {0, 1}, {2}}};
  std::vector<float> weights = {1, 2, 3, 4};
  uint32_t versionMajor = kVersionMajor, versionMinor = kVersionMinor;
};

// A 64-byte aligned image that the caller frees with std::free.
struct Image {
  uint8_t *data = nullptr;
  size_t size = 0;
  ~Image() { std::free(data); }
};

void build(const Spec &spec, Image &img) {
  ByteWriter values;
  values.u32(static_cast<uint32_t>(spec.values.size()));
  for (const ValueSpec &v : spec.values) {
    values.str(v.name);
    values.u8(1); // float32
    values.u8(static_cast<uint8_t>(v.storage));
    values.u8(static_cast<uint8_t>(v.dims.size()));
    values.u8(0);
    for (int64_t d : v.dims) {
      values.i64(d);
      values.i64(d);
    }
    values.u64(v.offset);
    values.u64(v.maxBytes);
  }
  ByteWriter program;
  program.u64(spec.arenaBytes);
  program.u64(spec.stateBytes);
  program.u64(spec.hostBytes);
  program.u32(1); // entries
  program.str("main");
  program.u64(spec.arenaBytes);
  program.u64(spec.hostBytes);
  program.u32(1); // inputs
  program.u32(0);
  program.u32(1); // outputs
  program.str("y");
  program.u32(2);
  program.u32(static_cast<uint32_t>(spec.program.size()));
  for (const InstrSpec &in : spec.program) {
    program.str(in.kernel);
    program.str(in.variant);
    program.u32(static_cast<uint32_t>(in.inputs.size()));
    for (uint32_t id : in.inputs)
      program.u32(id);
    program.u32(static_cast<uint32_t>(in.outputs.size()));
    for (uint32_t id : in.outputs)
      program.u32(id);
    program.u32(1); // attributes
    program.str("fn");
    program.u8(static_cast<uint8_t>(AttrKind::String));
    program.str("add");
  }
  ByteWriter meta;
  meta.u32(0);
  ByteWriter weights;
  weights.raw(spec.weights.data(), spec.weights.size() * sizeof(float));

  const ByteWriter *secs[] = {&meta, &values, &program, &weights};
  const SectionKind kinds[] = {SectionKind::Meta, SectionKind::Values, SectionKind::Program, SectionKind::Weights};
  std::vector<SectionEntry> table(4);
  uint64_t at = sizeof(FileHeader) + sizeof(SectionEntry) * table.size();
  for (size_t i = 0; i < 4; ++i) {
    at = (at + kSectionAlign - 1) / kSectionAlign * kSectionAlign;
    table[i] = {};
    table[i].kind = static_cast<uint32_t>(kinds[i]);
    table[i].offset = at;
    table[i].size = secs[i]->bytes.size();
    table[i].crc = crc32(secs[i]->bytes.data(), secs[i]->bytes.size());
    at += secs[i]->bytes.size();
  }
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof h.magic);
  h.versionMajor = spec.versionMajor;
  h.versionMinor = spec.versionMinor;
  h.fileSize = at;
  h.sectionTableOffset = sizeof(FileHeader);
  h.numSections = 4;
  h.sectionTableCrc = crc32(table.data(), table.size() * sizeof(SectionEntry));
  h.headerCrc = crc32(&h, sizeof h);
  img.size = at;
  img.data = static_cast<uint8_t *>(std::aligned_alloc(64, (at + 63) / 64 * 64));
  std::memset(img.data, 0, at);
  std::memcpy(img.data, &h, sizeof h);
  std::memcpy(img.data + sizeof h, table.data(), table.size() * sizeof(SectionEntry));
  for (size_t i = 0; i < 4; ++i)
    if (!secs[i]->bytes.empty()) // an external-weights image has an empty weights section
      std::memcpy(img.data + table[i].offset, secs[i]->bytes.data(), secs[i]->bytes.size());
}

// Loads the image; returns the error message, or "" after checking that y = x + w.
std::string loadAndRun(const Image &img, const qrt_model_options *options = nullptr, uint64_t arenaBytes = 128) {
  qrt_model *model = nullptr;
  if (qrt_status st = qrt_model_load_from_memory(img.data, img.size, options, &model)) {
    std::string msg = qrt_status_message(st);
    qrt_status_free(st);
    return msg;
  }
  qrt_session *session = nullptr;
  EXPECT_EQ(qrt_session_create(model, nullptr, &session), nullptr);
  const float x[4] = {10, 20, 30, 40};
  const int64_t shape[1] = {4};
  EXPECT_EQ(qrt_session_set_input(session, "x", QRT_FLOAT32, shape, 1, x), nullptr);
  EXPECT_EQ(qrt_session_run(session), nullptr);
  qrt_tensor y;
  EXPECT_EQ(qrt_session_get_output(session, "y", &y), nullptr);
  const auto *yv = static_cast<const float *>(y.data);
  EXPECT_EQ(yv[0], 11);
  EXPECT_EQ(yv[3], 44);
  // The same output as rows of [rows, last dim]: y [4] is one row of 4.
  qrt_tensor row;
  EXPECT_EQ(qrt_session_get_output_rows(session, "y", 0, 1, &row), nullptr);
  EXPECT_EQ(row.rank, 2);
  EXPECT_EQ(row.shape[0], 1);
  EXPECT_EQ(row.shape[1], 4);
  EXPECT_EQ(static_cast<const float *>(row.data)[3], 44);
  qrt_status past = qrt_session_get_output_rows(session, "y", 1, 1, &row);
  EXPECT_STREQ(qrt_status_message(past), "rows [1, 2) of output 'y', which has 1");
  qrt_status_free(past);
  int64_t id = -1;
  EXPECT_EQ(qrt_session_argmax_rows(session, "y", 0, 1, &id), nullptr);
  EXPECT_EQ(id, 3);
  past = qrt_session_argmax_rows(session, "y", 0, 2, &id);
  EXPECT_STREQ(qrt_status_message(past), "rows [0, 2) of output 'y', which has 1");
  qrt_status_free(past);
  // Sampling (qrt::sampleRow, tested on its own in SamplingTest): top_k 1 is the argmax; u = 0 at a high
  // temperature draws the first token; the parameters are checked.
  double u = 0.999;
  qrt_sampling sampling = {1.0f, 1, 1.0f};
  EXPECT_EQ(qrt_session_sample_rows(session, "y", 0, 1, &sampling, &u, &id), nullptr);
  EXPECT_EQ(id, 3);
  u = 0.0, sampling = {100.0f, 0, 1.0f};
  EXPECT_EQ(qrt_session_sample_rows(session, "y", 0, 1, &sampling, &u, &id), nullptr);
  EXPECT_EQ(id, 0);
  const std::pair<qrt_sampling, const char *> bad[] = {
      {{-1.0f, 0, 1.0f}, "qrt_session_sample_rows: temperature -1.000000 (must be finite and at least 0)"},
      {{1.0f, -2, 1.0f}, "qrt_session_sample_rows: top_k -2 (must be at least 0; 0 keeps every token)"},
      {{1.0f, 0, 0.0f}, "qrt_session_sample_rows: top_p 0.000000 (must be in (0, 1]; 1 keeps every token)"}};
  for (const auto &[params, message] : bad) {
    past = qrt_session_sample_rows(session, "y", 0, 1, &params, &u, &id);
    EXPECT_STREQ(qrt_status_message(past), message);
    qrt_status_free(past);
  }
  u = 1.0, sampling = {1.0f, 0, 1.0f};
  past = qrt_session_sample_rows(session, "y", 0, 1, &sampling, &u, &id);
  EXPECT_STREQ(qrt_status_message(past), "qrt_session_sample_rows: uniforms[0] = 1.000000 (must be in [0, 1))");
  qrt_status_free(past);
  EXPECT_EQ(qrt_model_arena_bytes(model), arenaBytes);
  qrt_session_free(session);
  qrt_model_free(model);
  return "";
}

const float kHostWeights[4] = {1, 2, 3, 4};
struct ResolverLog {
  uint64_t index = 99;
  std::string name;
  qrt_dtype dtype = QRT_INT8;
  uint64_t bytes = 0;
  const void *answer = kHostWeights;
};

const void *resolve(void *user, uint64_t index, const char *name, qrt_dtype dtype, uint64_t bytes) {
  auto *log = static_cast<ResolverLog *>(user);
  log->index = index;
  log->name = name;
  log->dtype = dtype;
  log->bytes = bytes;
  return log->answer;
}

Spec externalSpec() {
  Spec s;
  s.values[1].storage = Storage::External;
  s.values[1].offset = 0; // the first external weight
  s.weights.clear();
  return s;
}

// The greedy choice every backend must reproduce: the lowest index of the largest value, NaN never chosen.
TEST(Argmax, Row) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float tie[] = {1, 3, 3, 2}, nans[] = {nan, -1, nan, -0.5f}, allNan[] = {nan, nan}, minusInf[] = {-inf, -inf},
              plusInf[] = {-2, inf, 5, inf};
  EXPECT_EQ(qrt::argmaxRow(tie, 4), 1);
  EXPECT_EQ(qrt::argmaxRow(nans, 4), 3);
  EXPECT_EQ(qrt::argmaxRow(allNan, 2), 0);
  EXPECT_EQ(qrt::argmaxRow(minusInf, 2), 0);
  EXPECT_EQ(qrt::argmaxRow(plusInf, 4), 1);
  EXPECT_EQ(qrt::argmaxRow(tie, 0), 0);
}

TEST(ModelLoad, FromMemoryRuns) {
  Image img;
  build(Spec(), img);
  EXPECT_EQ(loadAndRun(img), "");
}

// Files of format 3.x (no weight in a tile layout, ModelBin.h), 4.x (tiles) and 5.x (kernels of bfloat16
// operands) load and run; others are refused by name.
TEST(ModelLoad, FormatVersions) {
  for (auto [major, minor] : {std::pair<uint32_t, uint32_t>{kRowsVersionMajor, kRowsVersionMinor}, {3, 0},
                              {kTilesVersionMajor, kTilesVersionMinor}, {kVersionMajor, kVersionMinor}}) {
    Spec spec;
    spec.versionMajor = major, spec.versionMinor = minor;
    Image img;
    build(spec, img);
    EXPECT_EQ(loadAndRun(img), "") << major << "." << minor;
  }
  for (auto [major, minor] : {std::pair<uint32_t, uint32_t>{2, 9}, {6, 0}}) {
    Spec spec;
    spec.versionMajor = major, spec.versionMinor = minor;
    Image img;
    build(spec, img);
    const std::string got = loadAndRun(img), want = "format version " + std::to_string(major) + "." +
                                                    std::to_string(minor) +
                                                    " is not supported by this runtime (it reads versions 3.x to 5.x)";
    EXPECT_NE(got.find(want), std::string::npos) << got;
  }
}

TEST(ModelLoad, FromMemoryNeedsAlignment) {
  Image img;
  build(Spec(), img);
  std::vector<uint8_t> shifted(img.size + 64);
  uint8_t *p = shifted.data() + (64 - reinterpret_cast<uintptr_t>(shifted.data()) % 64) % 64 + 8;
  std::memcpy(p, img.data, img.size);
  qrt_model *model = nullptr;
  qrt_status st = qrt_model_load_from_memory(p, img.size, nullptr, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(qrt_status_code_of(st), QRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(qrt_status_message(st), "qrt_model_load_from_memory: the image must start on a 64-byte boundary");
  qrt_status_free(st);
}

TEST(ModelLoad, ExternalWeightNeedsResolver) {
  Image img;
  build(externalSpec(), img);
  EXPECT_EQ(loadAndRun(img),
            "model image: weight 'w' is external: load the model with qrt_model_load_with_options and a weight "
            "resolver");
}

TEST(ModelLoad, ExternalWeightFromResolver) {
  Image img;
  build(externalSpec(), img);
  ResolverLog log;
  qrt_model_options opts = {resolve, &log};
  EXPECT_EQ(loadAndRun(img, &opts), "");
  EXPECT_EQ(log.index, 0u);
  EXPECT_EQ(log.name, "w");
  EXPECT_EQ(log.dtype, QRT_FLOAT32);
  EXPECT_EQ(log.bytes, 16u);
}

TEST(ModelLoad, ResolverWithoutData) {
  Image img;
  build(externalSpec(), img);
  ResolverLog log;
  log.answer = nullptr;
  qrt_model_options opts = {resolve, &log};
  EXPECT_EQ(loadAndRun(img, &opts), "model image: the weight resolver has no data for external weight 'w'");
  log.answer = reinterpret_cast<const uint8_t *>(kHostWeights) + 1;
  EXPECT_EQ(loadAndRun(img, &opts),
            "model image: the weight resolver's data for 'w' is not aligned to its element size");
}

TEST(ModelLoad, ArenaLargerThanItsSlots) {
  Spec s;
  s.arenaBytes = uint64_t(1) << 40; // a terabyte for one 16-byte value
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: the arena is 1099511627776 bytes but its slots add up to 128");
}

// Session state (Storage::State, a KV cache) is bounded by its values as the arena is, and written only by a
// kernel that updates a state operand in place, its result that same state.
TEST(ModelLoad, StateLargerThanItsValues) {
  Spec s;
  s.values.push_back({"s", Storage::State, {4}, 0, 16});
  s.stateBytes = uint64_t(1) << 40;
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: the state is 1099511627776 bytes but its slots add up to 64");
  s.stateBytes = 8;
  Image img2;
  build(s, img2);
  EXPECT_EQ(loadAndRun(img2), "model image: value 's' lies outside the state or is not aligned to 64 bytes");
}

TEST(ModelLoad, StateWrittenOnlyInPlace) {
  Spec s;
  s.values.push_back({"s", Storage::State, {4}, 0, 16});
  s.values.push_back({"s1", Storage::State, {4}, 0, 16});
  s.stateBytes = 64;
  s.program = {{"binary", {0, 1}, {4}}}; // a pure kernel writing state
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 0 (binary) must update a state operand in place, its one "
                             "result that state");
  s.program = {{"kv_advance", {3, 0}, {2}}}; // an in-place kernel writing the arena
  Image img2;
  build(s, img2);
  EXPECT_EQ(loadAndRun(img2), "model image: instruction 0 (kv_advance) must update a state operand in place, its "
                              "one result that state");
  s.values[4].offset = 64; // the result is another state than the operand
  s.stateBytes = 128;
  s.program = {{"kv_advance", {3, 0}, {4}}};
  Image img3;
  build(s, img3);
  EXPECT_EQ(loadAndRun(img3), "model image: instruction 0 (kv_advance) must update a state operand in place, its "
                              "one result that state");
}

// A view of state (the cached length read as positions) is that state's bytes, with no launch: a view claiming
// other bytes is refused.
TEST(ModelLoad, StateViewIsTheStatesBytes) {
  Spec s;
  s.values.push_back({"s", Storage::State, {4}, 0, 16});
  s.values.push_back({"s1", Storage::State, {4}, 64, 16});
  s.stateBytes = 128;
  s.program.push_back({"squeeze", {3}, {4}});
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 1 (squeeze) views state 's' as 's1', which is not the same "
                             "bytes");
  s.values[4].offset = 0;
  s.stateBytes = 64;
  Image ok;
  build(s, ok);
  EXPECT_EQ(loadAndRun(ok), "");
}

// A view kernel's result may share its input's slot (no launch), but not claim more than that slot.
TEST(ModelLoad, ViewLargerThanItsInput) {
  Spec s;
  s.values.push_back({"z", Storage::Arena, {8}, 64, 32});
  s.program.push_back({"unsqueeze", {2}, {3}});
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 1 (unsqueeze) views 'y' as the larger 'z'");
}

TEST(ModelLoad, SlotSizeMustMatchBound) {
  Spec s;
  s.values[2].maxBytes = 32;
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: value 'y' has a slot of 32 bytes but its bound needs 16");
}

TEST(ModelLoad, ValueTooLarge) {
  Spec s;
  s.values[2].dims = {int64_t(1) << 31, int64_t(1) << 31}; // 2^62 elements
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: value 'y' is too large");
}

TEST(ModelLoad, EmptyValueWithHugeDims) {
  Spec s;
  s.values[2].dims = {0, int64_t(1) << 40, int64_t(1) << 40}; // no elements, but 2^80 per row block
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: value 'y' is too large");
}

TEST(ModelLoad, WeightOutsideItsSection) {
  Spec s;
  s.values[1].offset = 8; // 16 bytes from offset 8 of a 16-byte section
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: weight 'w' lies outside the weights section");
}

TEST(ModelLoad, MisalignedWeight) {
  Spec s;
  s.weights.resize(8);
  s.values[1].offset = 4; // inside the section, but kernels read weights in place with aligned loads
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: weight 'w' is not aligned to 64 bytes");
}

TEST(ModelLoad, MisalignedArenaSlot) {
  Spec s;
  s.arenaBytes = 128;
  s.values[2].offset = 8;
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: value 'y' lies outside the arena or is not aligned to 64 bytes");
}

// A launch may name a variant of its family; the model loads (the family is known), and a backend without that
// implementation refuses the session, naming the instruction.
// A variant names another target's implementation of the family's computation: the CPU runs the reference for
// it, so any model.bin runs on the CPU (loadAndRun checks the outputs).
TEST(ModelLoad, VariantRunsTheReferenceOnTheCpu) {
  Spec s;
  s.program[0].variant = "q_binary_0123456789abcdef";
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "");
}

// The CUDA backend binds a variant only to a kernel of the file's kernels section; without a GPU driver the
// session cannot start at all, with a clean error.
TEST(ModelLoad, CudaWithoutDriverOrKernels) {
  Spec s;
  Image img;
  build(s, img);
  qrt_model *model = nullptr;
  ASSERT_EQ(qrt_model_load_from_memory(img.data, img.size, nullptr, &model), nullptr);
  qrt_session_options opts{"cuda", 0};
  qrt_session *session = nullptr;
  qrt_status st = qrt_session_create(model, &opts, &session);
  if (st) { // no driver here
    EXPECT_NE(std::string(qrt_status_message(st)).find("cannot use the CUDA backend"), std::string::npos);
    qrt_status_free(st);
  } else { // a GPU: the model has no CUDA kernels, so its one instruction runs on the host
    EXPECT_EQ(qrt_session_host_fallbacks(session), 1);
    qrt_session_free(session);
  }
  qrt_model_free(model);
}

TEST(ModelLoad, UnknownKernel) {
  Spec s;
  s.program[0].kernel = "launch_missiles";
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 0 names unknown kernel family 'launch_missiles'");
}

// A C++ host's resolver may throw; the exception must come back as a status, not cross the C API.
const void *throwingResolver(void *user, uint64_t, const char *, qrt_dtype, uint64_t) {
  if (user)
    throw std::bad_alloc();
  throw std::runtime_error("no such weight file");
}

TEST(ModelLoad, ExceptionsBecomeStatuses) {
  Image img;
  build(externalSpec(), img);
  int oom = 1;
  qrt_model_options opts = {throwingResolver, &oom};
  qrt_model *model = nullptr;
  qrt_status st = qrt_model_load_from_memory(img.data, img.size, &opts, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(qrt_status_code_of(st), QRT_ERROR_OUT_OF_MEMORY);
  EXPECT_STREQ(qrt_status_message(st), "out of memory");
  qrt_status_free(st); // the preallocated status: freeing it is a no-op (ASan would report a bad delete)
  EXPECT_EQ(model, nullptr);
  opts.user_data = nullptr;
  st = qrt_model_load_from_memory(img.data, img.size, &opts, &model);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(qrt_status_code_of(st), QRT_ERROR_EXECUTION);
  EXPECT_STREQ(qrt_status_message(st), "qrt_model_load_from_memory: internal error: no such weight file");
  qrt_status_free(st);
}

TEST(ModelLoad, ResultSlotOverlapsOperand) {
  // z = y + w with z given y's slot: the kernel would read what it writes (found by fuzzing: an overlapping
  // memcpy in the copy kernel).
  Spec s;
  s.values.push_back({"z", Storage::Arena, {4}, 64, 16});
  s.program.push_back({"binary", {2, 1}, {3}});
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 1 (binary) writes 'z' over its operand 'y' (their arena "
                             "slots overlap)");
  // Disjoint slots load and run.
  s.values[3].offset = 128;
  s.arenaBytes = 192;
  Image ok;
  build(s, ok);
  EXPECT_EQ(loadAndRun(ok, nullptr, 192), "");
}

// An elementwise kernel that may overwrite an operand (KernelFamily::overwrites; the planner's in-place gated
// activation) may have its result in exactly that operand's slot, and in no other overlapping one.
TEST(ModelLoad, ResultOverwritesOperandWhereTheKernelAllows) {
  auto load = [](const Spec &s) {
    Image img;
    build(s, img);
    qrt_model *model = nullptr;
    std::string msg;
    if (qrt_status st = qrt_model_load_from_memory(img.data, img.size, nullptr, &model)) {
      msg = qrt_status_message(st);
      qrt_status_free(st);
    }
    qrt_model_free(model);
    return msg;
  };
  Spec s;
  s.values.push_back({"z", Storage::Arena, {4}, 64, 16}); // y's slot
  s.program.push_back({"gelu", {2}, {3}});
  EXPECT_EQ(load(s), "");
  s.values[3] = {"z", Storage::Arena, {32}, 0, 128}; // over y, from another offset
  EXPECT_EQ(load(s), "model image: instruction 1 (gelu) writes 'z' over its operand 'y' (their arena slots overlap)");
  s.values[3] = {"z", Storage::Arena, {8}, 64, 32}; // y's offset, but larger than y
  s.arenaBytes = 128;
  EXPECT_EQ(load(s), "model image: instruction 1 (gelu) writes 'z' over its operand 'y' (their arena slots overlap)");
}

// An input has an arena slot (the session uploads it there): a result may not be written over it.
TEST(ModelLoad, ResultSlotOverlapsInput) {
  Spec s;
  s.values[2].offset = 0;
  s.arenaBytes = 64;
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 0 (binary) writes 'y' over its operand 'x' (their arena "
                             "slots overlap)");
}

// A host instruction (its results in the host arena) runs the reference kernel on host memory: it may read host
// values, inputs and weights, but not a value in device memory; and the host arena is bounded by its slots.
TEST(ModelLoad, HostInstructionReadsHostMemory) {
  Spec s;
  s.values.push_back({"h", Storage::Host, {4}, 0, 16});
  s.hostBytes = 64;
  s.program.push_back({"binary", {2, 1}, {3}});
  Image img;
  build(s, img);
  EXPECT_EQ(loadAndRun(img), "model image: instruction 1 (binary) runs on the host but reads 'y', which is in device "
                             "memory");
  s.program[1] = {"binary", {0, 1}, {3}}; // h = x + w on the host
  Image ok;
  build(s, ok);
  EXPECT_EQ(loadAndRun(ok), "");
  s.hostBytes = uint64_t(1) << 40;
  Image big;
  build(s, big);
  EXPECT_EQ(loadAndRun(big), "model image: the host arena is 1099511627776 bytes but its slots add up to 64");
  s.hostBytes = 64;
  s.program[1].variant = "fast";
  Image variant;
  build(s, variant);
  EXPECT_EQ(loadAndRun(variant), "model image: instruction 1 (binary) runs on the host, which has only the "
                                 "reference kernels, but names variant 'fast'");
}

} // namespace
