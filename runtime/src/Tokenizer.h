//===- Tokenizer.h - llama2.c's tokenizer.bin: load, encode, decode -------===//
//
// The runtime's text front end for llama2.c-style models (stories15M, stories260K). It reproduces run.c's
// encode/decode token for token, so prompts give the same ids as the reference implementation, while replacing
// run.c's sorted-array binary searches with a hash map and its O(n^2)-per-merge rescans with a priority queue.
//
// tokenizer.bin (little-endian): int32 max_token_length, then per token: float32 score, int32 length, `length`
// bytes of piece (not NUL-terminated). Ids 0/1/2 are <unk>/BOS/EOS and ids 3..258 are the byte pieces <0x00>..<0xFF>.
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_RUNTIME_TOKENIZER_H
#define QOPT_RUNTIME_TOKENIZER_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace qrt {

class Tokenizer {
public:
  static constexpr int32_t kBos = 1;
  static constexpr int32_t kEos = 2;
  static constexpr int32_t kByteOffset = 3; // id of byte b is b + 3 (byte fallback)

  // Parses a tokenizer.bin image holding exactly `vocabSize` tokens (the model header's vocab size). Every count
  // and length is checked against the bytes that remain, so a truncated or corrupt file, or one for another
  // vocab size, gives a message instead of a crash. On failure `out` is left unchanged. Pieces are cut at an
  // embedded NUL byte, because run.c sees them as C strings.
  static bool load(const uint8_t *data, size_t size, int32_t vocabSize, Tokenizer &out, std::string &error);
  static bool loadFile(const std::string &path, int32_t vocabSize, Tokenizer &out, std::string &error);

  // run.c's encode(): optional BOS, a dummy-prefix " " token when text is non-empty, each UTF-8 codepoint looked
  // up as a piece (bytes + 3 when absent), then repeatedly merge the adjacent pair whose concatenation is a piece
  // with the highest score (leftmost on ties, scores must exceed -1e10), then optional EOS. Like run.c, the text
  // ends at its first NUL byte. An empty vector only if !bos && !eos && text is empty.
  std::vector<int32_t> encode(const std::string &text, bool bos, bool eos) const;

  // run.c's decode(): the piece of `token`, minus one leading space right after BOS, and the raw byte for
  // "<0xXX>" pieces. Unlike run.c's C string, byte 0x00 comes back as a one-byte string. Out-of-range ids give "".
  std::string decode(int32_t prev, int32_t token) const;

  // run.c's safe_printf() filter: a piece that is a single byte that is neither printable nor whitespace (a
  // stray byte of a split UTF-8 sequence, a control code) becomes "", anything else is returned as is.
  static std::string safePiece(const std::string &piece);

  int32_t vocabSize() const { return static_cast<int32_t>(pieces.size()); }
  int32_t maxTokenLength() const { return maxTokenLen; }
  // Piece bytes and score of an id (empty/0 when out of range).
  const std::string &piece(int32_t id) const;
  float score(int32_t id) const;
  // Id of an exact piece, -1 when absent. With duplicate pieces the lowest id wins.
  int32_t lookup(const std::string &piece) const;

private:
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::unordered_map<std::string, int32_t> index;
  int32_t maxTokenLen = 0;
};

} // namespace qrt

#endif // QOPT_RUNTIME_TOKENIZER_H
