//===- bitflip.cpp - every single-bit corruption of a model.bin is caught --===//
//
// Flips each bit of a model.bin in turn (in a scratch copy), loads it through the public C API and, if it loads,
// runs it on fixed inputs. Every flip must be rejected with an error status (at load, session creation or run) or
// give outputs byte-identical to the original's; a crash fails the test by itself. Prints the counts.
//   qrt-bitflip MODEL.bin SCRATCH_FILE
//
//===----------------------------------------------------------------------===//
#include "qrt.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

bool ok(qrt_status st) {
  qrt_status_free(st);
  return st == nullptr;
}

// Runs the model at `path` on deterministic inputs (dynamic dims = 1); false if any step reports an error.
bool runModel(const char *path, std::vector<std::vector<uint8_t>> &outputs) {
  qrt_model *model = nullptr;
  qrt_session *session = nullptr;
  bool good = ok(qrt_model_load(path, &model)) && ok(qrt_session_create(model, nullptr, &session));
  for (int32_t i = 0; good && i < qrt_model_num_inputs(model); ++i) {
    qrt_tensor info;
    good = ok(qrt_model_input_info(model, i, &info));
    if (!good)
      break;
    int64_t n = 1;
    for (int32_t d = 0; d < info.rank; ++d) {
      info.shape[d] = info.shape[d] < 0 ? 1 : info.shape[d];
      n *= info.shape[d];
    }
    const size_t item = qrt_dtype_size(info.dtype);
    std::vector<uint8_t> data(static_cast<size_t>(n) * item);
    for (int64_t e = 0; e < n; ++e) {
      if (info.dtype == QRT_FLOAT32) {
        float v = std::sin(0.37f * static_cast<float>(e + 1));
        std::memcpy(data.data() + e * item, &v, sizeof v);
      } else if (item > 0) {
        uint64_t v = static_cast<uint64_t>(e % 7);
        std::memcpy(data.data() + e * item, &v, item);
      }
    }
    good = ok(qrt_session_set_input(session, qrt_model_input_name(model, i), info.dtype, info.shape, info.rank,
                                    data.data()));
  }
  good = good && ok(qrt_session_run(session));
  // A model with state (a KV cache) runs a second time, reading what the first run left there.
  if (good && qrt_model_state_bytes(model) > 0)
    good = ok(qrt_session_run(session));
  outputs.clear();
  for (int32_t i = 0; good && i < qrt_model_num_outputs(model); ++i) {
    qrt_tensor t;
    good = ok(qrt_session_get_output(session, qrt_model_output_name(model, i), &t));
    if (!good)
      break;
    int64_t n = 1;
    for (int32_t d = 0; d < t.rank; ++d)
      n *= t.shape[d];
    const auto *p = static_cast<const uint8_t *>(t.data);
    outputs.emplace_back(p, p + static_cast<size_t>(n) * qrt_dtype_size(t.dtype));
  }
  if (session)
    qrt_session_free(session);
  if (model)
    qrt_model_free(model);
  return good;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: qrt-bitflip MODEL.bin SCRATCH_FILE\n");
    return 2;
  }
  std::vector<uint8_t> file;
  if (FILE *f = std::fopen(argv[1], "rb")) {
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
      file.insert(file.end(), buf, buf + n);
    std::fclose(f);
  }
  std::vector<std::vector<uint8_t>> reference, got;
  if (file.empty() || !runModel(argv[1], reference)) {
    std::fprintf(stderr, "qrt-bitflip: the original model does not run\n");
    return 1;
  }
  int fd = ::open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::pwrite(fd, file.data(), file.size(), 0) != static_cast<ssize_t>(file.size())) {
    std::fprintf(stderr, "qrt-bitflip: cannot write '%s'\n", argv[2]);
    return 1;
  }
  uint64_t rejected = 0, identical = 0, differing = 0;
  for (size_t at = 0; at < file.size(); ++at)
    for (int bit = 0; bit < 8; ++bit) {
      uint8_t flipped = static_cast<uint8_t>(file[at] ^ (1u << bit));
      if (::pwrite(fd, &flipped, 1, static_cast<off_t>(at)) != 1)
        return 1;
      if (!runModel(argv[2], got)) {
        ++rejected;
      } else if (got == reference) {
        ++identical;
      } else {
        ++differing;
        std::fprintf(stderr, "qrt-bitflip: byte %zu bit %d loads and runs with different outputs\n", at, bit);
      }
      if (::pwrite(fd, &file[at], 1, static_cast<off_t>(at)) != 1)
        return 1;
    }
  ::close(fd);
  std::printf("%zu bits flipped: %llu rejected, %llu ran identically, %llu ran differently\n", file.size() * 8,
              static_cast<unsigned long long>(rejected), static_cast<unsigned long long>(identical),
              static_cast<unsigned long long>(differing));
  return differing == 0 ? 0 : 1;
}
