//===- qrun.cpp - run a model.bin ------------------------------------------===//
//
//   qrun model.bin [--device=cpu|cuda] [--threads N]
//        --input NAME=FILE.npy ... --output-dir DIR       run once, write NAME.npy per output
//        --generate [--prompt TEXT | --prompt-ids I,J,...] [--max-tokens N] [--temperature T] [--top-k K]
//                   [--top-p P] [--seed S]
//        --perplexity FILE [--seq-len N]                   text, or .npy of int32 token ids
//        --bench [--prompt-len P] [--max-tokens N] [--repeat R] [--temperature T --top-k K --top-p P]
//                                                          prefill and decode speed, memory
//
// Uses only the runtime's C API (qrt.h) and the .npy helpers; no compiler code.
//
//===----------------------------------------------------------------------===//
#include "LmDriver.h"
#include "Npy.h"
#include "qrt.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "qrun: error: %s\n", msg.c_str());
  std::exit(1);
}

void check(qrt_status st, const char *what) {
  if (st) {
    std::string msg = std::string(what) + ": " + qrt_status_message(st);
    qrt_status_free(st);
    die(msg);
  }
}

void usage() {
  std::fprintf(stderr,
               "usage: qrun model.bin [--device=cpu|cuda] [--threads N]\n"
               "         --input NAME=FILE.npy ... [--output-dir DIR]\n"
               "       | --generate [--prompt TEXT | --prompt-ids I,J,...] [--max-tokens N] [--temperature T] "
               "[--top-k K] [--top-p P] [--seed S]\n"
               "       | --perplexity FILE(.txt|.npy) [--seq-len N]\n"
               "       | --bench [--prompt-len P] [--max-tokens N] [--repeat R] [--temperature T] [--top-k K] "
               "[--top-p P]\n");
}

struct Options {
  std::string model, device = "cpu", outputDir = ".", prompt, pplFile;
  std::vector<std::pair<std::string, std::string>> inputs;
  std::vector<int32_t> promptIds; // --prompt-ids
  bool generate = false, bench = false;
  int maxTokens = 256, seqLen = 0, threads = 0, promptLen = 32, repeat = 5;
  double temperature = 0.0, topP = 1.0;
  long topK = 0;
  uint64_t seed = 1;
};

long parseInt(const std::string &s, const char *flag, long lo, long hi) {
  char *end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (errno || !end || *end || s.empty() || v < lo || v > hi)
    die(std::string("invalid value '") + s + "' for " + flag);
  return v;
}

Options parse(int argc, char **argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], val;
    size_t eq = a.find('=');
    bool hasEq = a.rfind("--", 0) == 0 && eq != std::string::npos;
    std::string flag = hasEq ? a.substr(0, eq) : a;
    auto value = [&]() -> std::string {
      if (hasEq)
        return a.substr(eq + 1);
      if (i + 1 >= args.size())
        die("missing value for " + flag);
      return args[++i];
    };
    if (flag == "--help" || flag == "-h") {
      usage();
      std::exit(0);
    } else if (flag == "--device") {
      o.device = value();
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(parseInt(value(), "--threads", 0, 1024));
    } else if (flag == "--input") {
      // NAME=FILE: the first '=' after the flag separates them.
      std::string v = hasEq ? a.substr(eq + 1) : value();
      size_t e = v.find('=');
      if (e == std::string::npos || e == 0)
        die("--input expects NAME=FILE.npy, got '" + v + "'");
      o.inputs.push_back({v.substr(0, e), v.substr(e + 1)});
    } else if (flag == "--output-dir") {
      o.outputDir = value();
    } else if (flag == "--generate") {
      o.generate = true;
    } else if (flag == "--prompt") {
      o.prompt = value();
    } else if (flag == "--prompt-ids") {
      // Token ids instead of text (a model without a tokenizer): the output is then ids too.
      std::string v = value();
      o.promptIds.clear();
      for (size_t at = 0; at <= v.size();) {
        size_t comma = std::min(v.find(',', at), v.size());
        o.promptIds.push_back(static_cast<int32_t>(parseInt(v.substr(at, comma - at), "--prompt-ids", 0, INT32_MAX)));
        at = comma + 1;
      }
    } else if (flag == "--max-tokens") {
      o.maxTokens = static_cast<int>(parseInt(value(), "--max-tokens", 0, 1 << 24));
    } else if (flag == "--temperature") {
      std::string v = value();
      char *end = nullptr;
      o.temperature = std::strtod(v.c_str(), &end);
      if (!end || *end || o.temperature < 0 || !std::isfinite(o.temperature))
        die("invalid value '" + v + "' for --temperature");
    } else if (flag == "--top-k") {
      o.topK = parseInt(value(), "--top-k", 0, LONG_MAX);
    } else if (flag == "--top-p") {
      std::string v = value();
      char *end = nullptr;
      o.topP = std::strtod(v.c_str(), &end);
      if (!end || *end || !(o.topP > 0.0 && o.topP <= 1.0))
        die("invalid value '" + v + "' for --top-p (a probability in (0, 1]; 1 keeps every token)");
    } else if (flag == "--seed") {
      o.seed = static_cast<uint64_t>(parseInt(value(), "--seed", 0, LONG_MAX));
    } else if (flag == "--bench") {
      o.bench = true;
    } else if (flag == "--prompt-len") {
      o.promptLen = static_cast<int>(parseInt(value(), "--prompt-len", 1, 1 << 24));
    } else if (flag == "--repeat") {
      o.repeat = static_cast<int>(parseInt(value(), "--repeat", 1, 1000));
    } else if (flag == "--perplexity") {
      o.pplFile = value();
    } else if (flag == "--seq-len") {
      o.seqLen = static_cast<int>(parseInt(value(), "--seq-len", 2, 1 << 24));
    } else if (!a.empty() && a[0] == '-') {
      usage();
      die("unknown option '" + a + "'");
    } else if (o.model.empty()) {
      o.model = a;
    } else {
      die("unexpected argument '" + a + "'");
    }
  }
  if (o.model.empty()) {
    usage();
    die("no model.bin given");
  }
  if (!o.promptIds.empty() && (!o.generate || !o.prompt.empty()))
    die("--prompt-ids goes with --generate, instead of --prompt");
  int modes = (o.generate ? 1 : 0) + (!o.pplFile.empty() ? 1 : 0) + (!o.inputs.empty() ? 1 : 0) + (o.bench ? 1 : 0);
  if (modes != 1) {
    usage();
    die("choose exactly one of --input, --generate, --perplexity, --bench");
  }
  return o;
}

struct Dtype {
  const char *npy;
  qrt_dtype qrt;
  size_t size;
};
const Dtype kDtypes[] = {{"float32", QRT_FLOAT32, 4}, {"float64", QRT_FLOAT64, 8}, {"float16", QRT_FLOAT16, 2},
                         {"int64", QRT_INT64, 8},     {"int32", QRT_INT32, 4},     {"int16", QRT_INT16, 2},
                         {"int8", QRT_INT8, 1},       {"uint8", QRT_UINT8, 1},     {"uint16", QRT_UINT16, 2},
                         {"uint32", QRT_UINT32, 4},   {"uint64", QRT_UINT64, 8},   {"bool", QRT_BOOL, 1}};

const Dtype *byNpy(const std::string &n) {
  for (const Dtype &d : kDtypes)
    if (n == d.npy)
      return &d;
  return nullptr;
}
const Dtype *byQrt(qrt_dtype t) {
  for (const Dtype &d : kDtypes)
    if (t == d.qrt)
      return &d;
  return nullptr;
}


//===-- --input mode -------------------------------------------------------===//

int runOnce(qrt_model *model, qrt_session *session, const Options &o) {
  for (const auto &[name, file] : o.inputs) {
    qrt::NpyArray arr;
    std::string err;
    if (!qrt::readNpy(file, arr, err))
      die(file + ": " + err);
    const Dtype *d = byNpy(arr.dtype);
    if (!d)
      die(file + ": unsupported dtype " + arr.dtype);
    check(qrt_session_set_input(session, name.c_str(), d->qrt, arr.shape.data(),
                                static_cast<int32_t>(arr.shape.size()), arr.data.data()),
          "setting input");
  }
  check(qrt_session_run(session), "run");
  std::error_code ec;
  std::filesystem::create_directories(o.outputDir, ec);
  if (ec)
    die(o.outputDir + ": cannot create directory: " + ec.message());
  for (int32_t i = 0; i < qrt_model_num_outputs(model); ++i) {
    const char *name = qrt_model_output_name(model, i);
    qrt_tensor t;
    check(qrt_session_get_output(session, name, &t), "reading output");
    const Dtype *d = byQrt(t.dtype);
    if (!d)
      die(std::string("output '") + name + "' has a dtype .npy cannot hold here");
    qrt::NpyArray arr;
    arr.dtype = d->npy;
    arr.shape.assign(t.shape, t.shape + t.rank);
    const auto *p = static_cast<const uint8_t *>(t.data);
    arr.data.assign(p, p + qrt::numel(t) * d->size);
    std::string fname = name;
    std::replace_if(fname.begin(), fname.end(), [](char c) { return c == '/' || c == '\\' || c == ':'; }, '_');
    std::string path = o.outputDir + "/" + fname + ".npy", err;
    if (!qrt::writeNpy(path, arr, err))
      die(path + ": " + err);
    std::printf("%s: %s%s\n", name, d->npy, [&] {
      std::string s = "[";
      for (int k = 0; k < t.rank; ++k)
        s += (k ? ", " : "") + std::to_string(t.shape[k]);
      return s + "]";
    }().c_str());
  }
  return 0;
}

//===-- language-model driving ---------------------------------------------===//

std::string safePiece(const std::string &p) {
  if (p.size() == 1 && !std::isprint(static_cast<unsigned char>(p[0])) &&
      !std::isspace(static_cast<unsigned char>(p[0])))
    return "";
  return p;
}

int32_t metaInt(qrt_model *m, const char *key, int32_t dflt) {
  const char *v = qrt_model_metadata(m, key);
  return v ? static_cast<int32_t>(std::atol(v)) : dflt;
}

int generate(qrt_model *model, qrt_session *session, const Options &o) {
  // With --prompt-ids the tokens are given and printed as ids (one line, the prompt's first): no tokenizer.
  const bool ids = !o.promptIds.empty();
  qrt_tokenizer *tok = nullptr;
  if (!ids)
    check(qrt_tokenizer_create(model, &tok), "tokenizer");
  qrt::LmDriver lm;
  std::string lmErr;
  if (!lm.init(model, session, lmErr))
    die(lmErr);
  std::vector<int32_t> tokens = o.promptIds;
  if (!ids) {
    size_t count = 0;
    check(qrt_tokenizer_encode(tok, o.prompt.c_str(), 1, 0, nullptr, 0, &count), "encode");
    tokens.resize(count);
    check(qrt_tokenizer_encode(tok, o.prompt.c_str(), 1, 0, tokens.data(), count, &count), "encode");
  }
  auto print = [&](int32_t prev, int32_t token) {
    if (ids)
      std::printf("%s%d", prev < 0 ? "" : " ", token);
    else
      std::fputs(safePiece(qrt_tokenizer_decode(tok, prev, token)).c_str(), stdout);
  };
  const int32_t eos = metaInt(model, "qopt.eos_token_id", 2);
  const int64_t limit = std::min<int64_t>(lm.maxPositions, lm.hasCache() ? lm.maxPositions : lm.maxSeq);
  if (static_cast<int64_t>(tokens.size()) >= limit)
    die("the prompt (" + std::to_string(tokens.size()) + " tokens) fills the model's " + std::to_string(limit) +
        " positions");
  for (size_t i = ids ? 0 : 1; i < tokens.size(); ++i) // text: the BOS token prints nothing
    print(i ? tokens[i - 1] : -1, tokens[i]);
  std::mt19937_64 rng(o.seed);
  size_t fed = 0; // tokens already in the KV cache
  // The last generated token need not fit: it is printed, never fed.
  int step = 0;
  bool stopped = false; // by the end-of-sequence token
  for (; step < o.maxTokens && static_cast<int64_t>(tokens.size()) <= limit; ++step) {
    // With a cache only the new tokens run; without, the whole sequence again.
    const size_t from = lm.hasCache() ? fed : 0;
    const std::vector<int32_t> run(tokens.begin() + static_cast<std::ptrdiff_t>(from), tokens.end());
    fed = tokens.size();
    int32_t next = 0;
    if (o.temperature == 0.0) { // the argmax where the logits are (on a GPU, one id comes back)
      if (!lm.forwardGreedy(run, static_cast<int64_t>(from), next, lmErr))
        die(lmErr);
    } else { // drawn where the logits are, by this host's seeded numbers (the same tokens on every device)
      qrt_sampling sampling = {static_cast<float>(o.temperature), o.topK, static_cast<float>(o.topP)};
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      if (!lm.forwardSample(run, static_cast<int64_t>(from), sampling, u, next, lmErr))
        die(lmErr);
    }
    if (next == eos) {
      stopped = true;
      break;
    }
    print(tokens.back(), next);
    std::fflush(stdout);
    tokens.push_back(next);
  }
  std::fputs("\n", stdout);
  // Generation cut short by the compiled bound, not by --max-tokens or the end token: say so, since the text alone
  // cannot tell.
  if (!stopped && step < o.maxTokens)
    std::fprintf(stderr,
                 "qrun: stopped after %d tokens: the sequence reached the model's context bound of %lld positions "
                 "(compile with a larger --max-dim to go further, up to the model's own limit)\n",
                 step, static_cast<long long>(limit));
  if (tok)
    qrt_tokenizer_free(tok);
  return 0;
}

//===-- bench --------------------------------------------------------------===//

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Prefill of --prompt-len pseudo-random tokens, then --max-tokens greedy steps, --repeat times from a reset cache;
// prints the medians. Each step's greedy token comes back to the host (the step's end is its arrival); the argmax
// runs where the logits are.
int bench(qrt_model *model, qrt_session *session, const Options &o) {
  qrt::LmDriver lm;
  std::string err;
  if (!lm.init(model, session, err))
    die(err);
  if (!lm.hasCache())
    die("--bench measures decoding: it needs a decoder with a KV cache");
  const int64_t limit = lm.maxPositions;
  if (o.promptLen + static_cast<int64_t>(o.maxTokens) > limit)
    die("--prompt-len " + std::to_string(o.promptLen) + " plus --max-tokens " + std::to_string(o.maxTokens) +
        " exceed the model's " + std::to_string(limit) + " positions");
  std::mt19937 rng(7);
  // Greedy steps, or draws by --temperature / --top-k / --top-p (each where the logits are).
  std::mt19937_64 draws(o.seed);
  const qrt_sampling sampling = {static_cast<float>(o.temperature), o.topK, static_cast<float>(o.topP)};
  auto step = [&](const std::vector<int32_t> &ids, int64_t start, int32_t &next) {
    const bool ok = o.temperature == 0.0
                        ? lm.forwardGreedy(ids, start, next, err)
                        : lm.forwardSample(ids, start, sampling, std::uniform_real_distribution<double>()(draws), next,
                                           err);
    if (!ok)
      die(err);
  };
  std::vector<double> prefill, decode;
  using clock = std::chrono::steady_clock;
  for (int r = 0; r <= o.repeat; ++r) { // run 0 warms up (kernel loading, graph capture)
    lm.resetCache();
    std::vector<int32_t> prompt(static_cast<size_t>(o.promptLen));
    auto t0 = clock::now();
    for (int32_t &t : prompt)
      t = static_cast<int32_t>(3 + rng() % 250); // ids every vocabulary has
    int32_t next = 0;
    step(prompt, 0, next);
    auto t1 = clock::now();
    for (int i = 0; i < o.maxTokens; ++i)
      step({next}, o.promptLen + i, next);
    auto t2 = clock::now();
    if (r == 0)
      continue;
    prefill.push_back(std::chrono::duration<double>(t1 - t0).count());
    decode.push_back(std::chrono::duration<double>(t2 - t1).count());
  }
  const double p = median(prefill), d = median(decode);
  const std::string info = qrt_session_device_info(session);
  std::printf("device %s%s, prompt %d tokens, %d new tokens, median of %d runs\n", o.device.c_str(),
              info.empty() ? "" : (" [" + info + "]").c_str(), o.promptLen, o.maxTokens, o.repeat);
  if (o.temperature != 0.0)
    std::printf("tokens drawn: temperature %g, top-k %ld, top-p %g\n", o.temperature, o.topK, o.topP);
  std::printf("prefill: %.1f tokens/s (%.3f ms)\n", o.promptLen / p, p * 1e3);
  if (o.maxTokens)
    std::printf("decode: %.1f tokens/s (%.3f ms per token)\n", o.maxTokens / d, d * 1e3 / o.maxTokens);
  std::printf("memory: %.1f MiB held by the %s backend (weights, activations, KV state)\n",
              static_cast<double>(qrt_session_memory_bytes(session)) / (1 << 20), o.device.c_str());
  return 0;
}

//===-- perplexity ---------------------------------------------------------===//

int perplexity(qrt_model *model, qrt_session *session, const Options &o) {
  qrt::LmDriver lm;
  std::string lmErr;
  if (!lm.init(model, session, lmErr))
    die(lmErr);
  int64_t L = o.seqLen ? o.seqLen : std::min(lm.maxSeq, lm.maxPositions);
  if (L > lm.maxSeq)
    die("--seq-len " + std::to_string(L) + " exceeds the model's compiled sequence bound " +
        std::to_string(lm.maxSeq));
  std::vector<std::vector<int32_t>> windows;
  bool isNpy = o.pplFile.size() > 4 && o.pplFile.compare(o.pplFile.size() - 4, 4, ".npy") == 0;
  auto cut = [&](const std::vector<int32_t> &stream) {
    for (size_t at = 0; at < stream.size(); at += L) {
      size_t end = std::min(stream.size(), at + static_cast<size_t>(L));
      if (end - at >= 2)
        windows.emplace_back(stream.begin() + at, stream.begin() + end);
    }
  };
  if (isNpy) {
    qrt::NpyArray arr;
    std::string err;
    if (!qrt::readNpy(o.pplFile, arr, err))
      die(o.pplFile + ": " + err);
    if (arr.dtype != "int32" || arr.shape.empty() || arr.shape.size() > 2)
      die(o.pplFile + ": expected a 1-D or 2-D int32 array of token ids");
    const auto *ids = reinterpret_cast<const int32_t *>(arr.data.data());
    if (arr.shape.size() == 1) {
      cut(std::vector<int32_t>(ids, ids + arr.shape[0]));
    } else {
      for (int64_t r = 0; r < arr.shape[0]; ++r) {
        std::vector<int32_t> row;
        for (int64_t c = 0; c < arr.shape[1] && ids[r * arr.shape[1] + c] >= 0; ++c)
          row.push_back(ids[r * arr.shape[1] + c]);
        if (static_cast<int64_t>(row.size()) > L)
          die(o.pplFile + ": row " + std::to_string(r) + " is longer than --seq-len");
        if (row.size() >= 2)
          windows.push_back(row);
      }
    }
  } else {
    std::ifstream in(o.pplFile, std::ios::binary);
    if (!in)
      die(o.pplFile + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    qrt_tokenizer *tok = nullptr;
    check(qrt_tokenizer_create(model, &tok), "tokenizer");
    size_t count = 0;
    check(qrt_tokenizer_encode(tok, text.c_str(), 1, 0, nullptr, 0, &count), "encode");
    std::vector<int32_t> ids(count);
    check(qrt_tokenizer_encode(tok, text.c_str(), 1, 0, ids.data(), count, &count), "encode");
    qrt_tokenizer_free(tok);
    cut(ids);
  }
  if (windows.empty())
    die("no window of at least 2 tokens to evaluate");
  double nll = 0;
  int64_t tokens = 0;
  for (const auto &w : windows) {
    lm.resetCache();
    qrt_tensor logits;
    if (!lm.forward(w, 0, &logits, lmErr))
      die(lmErr);
    int64_t vocab = logits.shape[2];
    const float *base = static_cast<const float *>(logits.data);
    for (size_t t = 0; t + 1 < w.size(); ++t) {
      const float *row = base + t * vocab;
      double mx = *std::max_element(row, row + vocab), sum = 0;
      for (int64_t v = 0; v < vocab; ++v)
        sum += std::exp(static_cast<double>(row[v]) - mx);
      int32_t target = w[t + 1];
      if (target < 0 || target >= vocab)
        die("token id " + std::to_string(target) + " is outside the vocabulary");
      nll += std::log(sum) + mx - row[target];
      ++tokens;
    }
  }
  double mean = nll / static_cast<double>(tokens);
  std::printf("perplexity %.6f nll %.6f tokens %lld\n", std::exp(mean), mean, static_cast<long long>(tokens));
  return 0;
}

} // namespace

static int runTool(const Options &o) {
  qrt_model *model = nullptr;
  check(qrt_model_load(o.model.c_str(), &model), "loading model");
  qrt_session_options so{o.device.c_str(), o.threads};
  qrt_session *session = nullptr;
  check(qrt_session_create(model, &so, &session), "creating session");
  if (int64_t n = qrt_session_host_fallbacks(session))
    std::fprintf(stderr, "qrun: note: %lld instruction%s of the model run%s on the host (no %s kernel in the "
                 "model.bin for %s; compile with --target for this device)\n",
                 static_cast<long long>(n), n == 1 ? "" : "s", n == 1 ? "s" : "", o.device.c_str(),
                 n == 1 ? "it" : "them");
  int rc;
  if (o.bench)
    rc = bench(model, session, o);
  else if (o.generate)
    rc = generate(model, session, o);
  else if (!o.pplFile.empty())
    rc = perplexity(model, session, o);
  else
    rc = runOnce(model, session, o);
  qrt_session_free(session);
  qrt_model_free(model);
  return rc;
}

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  // The runtime reports its own allocation failures as statuses; this catches qrun's (a huge output to write).
  try {
    return runTool(o);
  } catch (const std::bad_alloc &) {
    std::fprintf(stderr, "qrun: error: out of memory\n");
    return 1;
  }
}
