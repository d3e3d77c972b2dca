//===- FuzzTokenizer.cpp - fuzz the llama2.c tokenizer.bin reader ---------===//
//
// The input is a tokenizer.bin image. It is loaded with the vocab size its own records spell out (so that
// mutations reach encode and decode), with one more (which must fail: the file is short), and with the largest
// vocab size (which must fail without reserving memory for it). A loaded tokenizer encodes fixed texts and the
// input's own tail as text, every id must be in range, and every id decodes (after BOS and after another id).
//
//===----------------------------------------------------------------------===//
#include "Tokenizer.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace {

// The number of whole token records after the 4-byte header (what a well-formed file's vocab size would be).
int32_t countRecords(const uint8_t *data, size_t size) {
  if (size < 4)
    return 0;
  size_t off = 4;
  int32_t n = 0;
  while (size - off >= 8 && n < (1 << 20)) {
    int32_t len;
    std::memcpy(&len, data + off + 4, 4);
    if (len < 0 || static_cast<size_t>(len) > size - off - 8)
      break;
    off += 8 + static_cast<size_t>(len);
    ++n;
  }
  return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int32_t n = countRecords(data, size);
  std::string error;
  qrt::Tokenizer big;
  if (qrt::Tokenizer::load(data, size, std::numeric_limits<int32_t>::max(), big, error))
    std::abort(); // cannot hold 2^31 tokens
  qrt::Tokenizer t;
  if (!qrt::Tokenizer::load(data, size, n, t, error)) {
    if (error.empty())
      std::abort();
    return 0;
  }
  qrt::Tokenizer more;
  if (qrt::Tokenizer::load(data, size, n + 1, more, error))
    std::abort();
  if (t.vocabSize() != n)
    std::abort();
  std::string tail(reinterpret_cast<const char *>(data) + (size > 64 ? size - 64 : 0), size > 64 ? 64 : size);
  for (const std::string &text : {std::string(), std::string("Once upon a time"), std::string("\xc3\xa9t\xc3\xa9 \xe2\x82\xac 1 2"),
                                   std::string("\xff\xfe\x80 broken utf-8 \xe2\x82"), tail}) {
    for (int flags = 0; flags < 4; ++flags)
      for (int32_t id : t.encode(text, flags & 1, flags & 2))
        if (id < 0 || id >= n)
          std::abort();
  }
  for (int32_t id = -1; id <= n; ++id) {
    t.decode(qrt::Tokenizer::kBos, id);
    qrt::Tokenizer::safePiece(t.decode(id, id));
  }
  return 0;
}
