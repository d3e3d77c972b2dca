//===- FuzzModelBin.cpp - fuzz the runtime's model.bin loader and execution -===//
//
// The input is a model.bin image. Random bytes almost never pass the CRC32 checks, which the every-bit-flip
// test (test/reliability/bitflip.test) already covers, so this target first repairs the checksums (and the
// header's file size) of a copy, then loads it through the public C API: mutations reach the value table, the
// program and the kernels' operands. A model that loads is run once on zero inputs at its planned bounds
// (RunOnZeros.h), and its embedded tokenizer (if any) is created: whatever the loader accepted must execute
// without a memory error.
//
//===----------------------------------------------------------------------===//
#include "RunOnZeros.h"

#include "qopt/Format/ModelBin.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace qopt::format;

void repairChecksums(uint8_t *bytes, size_t size) {
  if (size < sizeof(FileHeader))
    return;
  FileHeader h;
  std::memcpy(&h, bytes, sizeof h);
  h.fileSize = size;
  uint64_t tableBytes = uint64_t(h.numSections) * sizeof(SectionEntry);
  if (h.numSections <= 64 && h.sectionTableOffset <= size && tableBytes <= size - h.sectionTableOffset) {
    auto *table = bytes + h.sectionTableOffset;
    for (uint32_t i = 0; i < h.numSections; ++i) {
      SectionEntry s;
      std::memcpy(&s, table + i * sizeof s, sizeof s);
      if (s.offset <= size && s.size <= size - s.offset) {
        s.crc = crc32(bytes + s.offset, s.size);
        std::memcpy(table + i * sizeof s, &s, sizeof s);
      }
    }
    h.sectionTableCrc = crc32(table, tableBytes);
  }
  h.headerCrc = 0;
  h.headerCrc = crc32(&h, sizeof h);
  std::memcpy(bytes, &h, sizeof h);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A 64-byte aligned copy, as the loader requires, whose checksums the harness may rewrite.
  size_t alloc = (size + 63) / 64 * 64 + 64;
  auto *image = static_cast<uint8_t *>(std::aligned_alloc(64, alloc));
  std::memcpy(image, data, size);
  repairChecksums(image, size);
  qrt_model *model = nullptr;
  if (qopt::fuzz::ok(qrt_model_load_from_memory(image, size, nullptr, &model))) {
    qopt::fuzz::runOnZeros(model);
    qrt_tokenizer *tok = nullptr;
    if (qopt::fuzz::ok(qrt_tokenizer_create(model, &tok))) {
      int32_t ids[64];
      size_t count = 0;
      qopt::fuzz::ok(qrt_tokenizer_encode(tok, "Once upon a time", 1, 0, ids, 64, &count));
      for (size_t i = 0; i < count && i < 64; ++i)
        qrt_tokenizer_decode(tok, i ? ids[i - 1] : 1, ids[i]);
      qrt_tokenizer_free(tok);
    }
    qrt_model_free(model);
  }
  std::free(image);
  return 0;
}
