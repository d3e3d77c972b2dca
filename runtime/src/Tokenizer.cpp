//===- Tokenizer.cpp - llama2.c tokenizer, bit-compatible with run.c ------===//
//
// Loading validates every field before sizing anything from it. Encoding follows run.c step by step; the only
// change is the data structure for the merge loop: run.c rescans all adjacent pairs after every merge, which is
// quadratic in the prompt length. Here each live pair's candidate (merged id, score) sits in a max-heap ordered by
// (score, then leftmost position); a merge only invalidates the pairs touching the merged token, which are
// re-pushed with a bumped version. Positions are the original indices of each pair's left token, which keep
// their order through merges, so "smallest position" is exactly run.c's "first index" tie-break.
//
//===----------------------------------------------------------------------===//
#include "Tokenizer.h"
#include "ReadFile.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <queue>

namespace qrt {

namespace {

// Largest max_token_length accepted: real tokenizers use 27 (Llama 2) or less; this only rejects garbage.
constexpr int32_t kMaxPieceLength = 1 << 16;

int32_t readI32(const uint8_t *p) {
  int32_t v;
  std::memcpy(&v, p, 4); // the format is little-endian, as is every host the runtime targets
  return v;
}

float readF32(const uint8_t *p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

bool Tokenizer::load(const uint8_t *data, size_t size, int32_t vocabSize, Tokenizer &out, std::string &error) {
  if (vocabSize < 259) {
    error = "tokenizer: vocab size " + std::to_string(vocabSize) +
            " is too small: ids 0-2 are <unk>/BOS/EOS and byte fallback needs ids 3-258, so at least 259 tokens";
    return false;
  }
  if (!data && size > 0) {
    error = "tokenizer: null data";
    return false;
  }
  if (size < 4) {
    error = "tokenizer: file is " + std::to_string(size) + " bytes, too short for the max_token_length header";
    return false;
  }
  Tokenizer t;
  t.maxTokenLen = readI32(data);
  if (t.maxTokenLen <= 0 || t.maxTokenLen > kMaxPieceLength) {
    error = "tokenizer: max_token_length " + std::to_string(t.maxTokenLen) + " is outside [1, " +
            std::to_string(kMaxPieceLength) + "]; not a tokenizer.bin?";
    return false;
  }
  // Each token takes at least 8 bytes: reserve no more than the file can hold (a hostile vocab size of 2^31
  // must not reserve 64 GB before the first check fails).
  size_t fits = std::min(static_cast<size_t>(vocabSize), (size - 4) / 8);
  t.pieces.reserve(fits);
  t.scores.reserve(fits);
  size_t off = 4;
  for (int32_t i = 0; i < vocabSize; ++i) {
    if (size - off < 8) {
      error = "tokenizer: file ends at byte " + std::to_string(size) + " inside token " + std::to_string(i) + " of " +
              std::to_string(vocabSize) + " (truncated, or the vocab size does not match this file)";
      return false;
    }
    float score = readF32(data + off);
    int32_t len = readI32(data + off + 4);
    off += 8;
    if (len < 0 || len > t.maxTokenLen) {
      error = "tokenizer: token " + std::to_string(i) + " has length " + std::to_string(len) +
              " outside [0, max_token_length=" + std::to_string(t.maxTokenLen) + "] at byte " + std::to_string(off - 4);
      return false;
    }
    if (size - off < static_cast<size_t>(len)) {
      error = "tokenizer: token " + std::to_string(i) + " needs " + std::to_string(len) + " bytes at byte " +
              std::to_string(off) + " but only " + std::to_string(size - off) + " remain (truncated file)";
      return false;
    }
    // run.c keeps each piece as a C string, so lookups, merges and printing all stop at an embedded NUL.
    const char *bytes = reinterpret_cast<const char *>(data + off);
    const void *nul = std::memchr(bytes, 0, static_cast<size_t>(len));
    size_t keep = nul ? static_cast<size_t>(static_cast<const char *>(nul) - bytes) : static_cast<size_t>(len);
    t.pieces.emplace_back(bytes, keep);
    t.scores.push_back(score);
    off += static_cast<size_t>(len);
  }
  if (off != size) {
    error = "tokenizer: " + std::to_string(size - off) + " bytes remain after " + std::to_string(vocabSize) +
            " tokens: the file holds more tokens than the model's vocab size (vocab size mismatch)";
    return false;
  }
  t.index.reserve(t.pieces.size());
  for (int32_t i = 0; i < vocabSize; ++i)
    t.index.emplace(t.pieces[static_cast<size_t>(i)], i); // emplace keeps the first (lowest) id of a duplicate
  out = std::move(t);
  return true;
}

bool Tokenizer::loadFile(const std::string &path, int32_t vocabSize, Tokenizer &out, std::string &error) {
  std::vector<uint8_t> bytes;
  if (!readWholeFile(path, bytes, error)) {
    error = "tokenizer: " + error;
    return false;
  }
  if (!load(bytes.data(), bytes.size(), vocabSize, out, error)) {
    error += " (" + path + ")";
    return false;
  }
  return true;
}

const std::string &Tokenizer::piece(int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= vocabSize())
    return empty;
  return pieces[static_cast<size_t>(id)];
}

float Tokenizer::score(int32_t id) const {
  if (id < 0 || id >= vocabSize())
    return 0.0f;
  return scores[static_cast<size_t>(id)];
}

int32_t Tokenizer::lookup(const std::string &s) const {
  auto it = index.find(s);
  return it == index.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::encode(const std::string &textIn, bool bos, bool eos) const {
  std::vector<int32_t> tokens;
  if (pieces.empty())
    return tokens; // not loaded
  // run.c works on a C string: the text ends at the first NUL.
  size_t len = std::strlen(textIn.c_str());
  const char *text = textIn.data();
  tokens.reserve(len + 3);
  if (bos)
    tokens.push_back(kBos);
  if (len > 0) {
    // add_dummy_prefix, as sentencepiece does. run.c would push -1 for a vocab without " "; fall back to the
    // space's byte token instead, the same rule as for any piece that is missing.
    int32_t space = lookup(" ");
    tokens.push_back(space >= 0 ? space : kByteOffset + ' ');
  }

  // Split into UTF-8 codepoints (at most 4 bytes; a lead byte or a 4-byte run closes one), look each up.
  std::string cp;
  for (size_t c = 0; c < len; ++c) {
    unsigned char byte = static_cast<unsigned char>(text[c]);
    if ((byte & 0xC0) != 0x80)
      cp.clear();
    cp.push_back(static_cast<char>(byte));
    unsigned char next = c + 1 < len ? static_cast<unsigned char>(text[c + 1]) : 0;
    if ((next & 0xC0) == 0x80 && cp.size() < 4)
      continue;
    int32_t id = lookup(cp);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : cp)
        tokens.push_back(kByteOffset + b);
    }
    cp.clear();
  }

  // Merge. Nodes form a doubly linked list over the initial positions.
  const int32_t n = static_cast<int32_t>(tokens.size());
  if (n >= 2) {
    std::vector<int32_t> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
    std::vector<uint32_t> version(static_cast<size_t>(n), 0);
    std::vector<char> alive(static_cast<size_t>(n), 1);
    for (int32_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    struct Cand {
      float score;
      int32_t pos;
      int32_t id;
      uint32_t version;
    };
    // Max-heap: higher score first, then lower position (priority_queue pops the "largest").
    auto lower = [](const Cand &a, const Cand &b) {
      if (a.score != b.score)
        return a.score < b.score;
      return a.pos > b.pos;
    };
    std::priority_queue<Cand, std::vector<Cand>, decltype(lower)> heap(lower);
    std::string buf;
    auto pushPair = [&](int32_t i) {
      int32_t j = next[i];
      if (j < 0)
        return;
      const std::string &a = pieces[static_cast<size_t>(tokens[i])];
      const std::string &b = pieces[static_cast<size_t>(tokens[j])];
      buf.assign(a);
      buf.append(b);
      int32_t id = lookup(buf);
      if (id < 0)
        return;
      float s = scores[static_cast<size_t>(id)];
      // run.c starts from best_score = -1e10 and takes strictly greater scores: NaN and <= -1e10 never merge.
      if (!(s > -1e10f))
        return;
      heap.push({s, i, id, version[i]});
    };
    for (int32_t i = 0; i + 1 < n; ++i)
      pushPair(i);
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      if (!alive[c.pos] || version[c.pos] != c.version)
        continue; // stale: a neighbour changed since this candidate was made
      int32_t i = c.pos, j = next[i];
      tokens[i] = c.id;
      int32_t k = next[j];
      next[i] = k;
      if (k >= 0)
        prev[k] = i;
      alive[j] = 0;
      ++version[i];
      pushPair(i);
      if (prev[i] >= 0) {
        ++version[prev[i]];
        pushPair(prev[i]);
      }
    }
    std::vector<int32_t> merged;
    merged.reserve(static_cast<size_t>(n) + 1);
    for (int32_t i = 0; i >= 0; i = next[i])
      merged.push_back(tokens[i]);
    tokens.swap(merged);
  }
  if (eos)
    tokens.push_back(kEos);
  return tokens;
}

std::string Tokenizer::decode(int32_t prev, int32_t token) const {
  if (token < 0 || token >= vocabSize())
    return std::string();
  const std::string &p = pieces[static_cast<size_t>(token)];
  size_t start = 0;
  // Sentencepiece strips the leading whitespace of the first piece after BOS.
  if (prev == kBos && !p.empty() && p[0] == ' ')
    start = 1;
  // run.c: sscanf(piece, "<0x%02hhX>", &byte) == 1, i.e. "<0x", optional whitespace (skipped by %X), then one or
  // two hex digits; whatever follows is not checked.
  if (p.compare(start, 3, "<0x") == 0) {
    size_t q = start + 3;
    while (q < p.size() && (p[q] == ' ' || (p[q] >= '\t' && p[q] <= '\r')))
      ++q;
    int hi = q < p.size() ? hexDigit(p[q]) : -1;
    if (hi >= 0) {
      int lo = q + 1 < p.size() ? hexDigit(p[q + 1]) : -1;
      int value = lo >= 0 ? hi * 16 + lo : hi;
      return std::string(1, static_cast<char>(value));
    }
  }
  return p.substr(start);
}

std::string Tokenizer::safePiece(const std::string &piece) {
  if (piece.size() == 1) {
    unsigned char b = static_cast<unsigned char>(piece[0]);
    // isprint() || isspace() in the C locale, spelled out so the user's locale cannot change it.
    bool printable = (b >= 0x20 && b <= 0x7E) || (b >= 0x09 && b <= 0x0D);
    if (!printable)
      return std::string();
  }
  return piece;
}

} // namespace qrt
