//===- StandaloneMain.cpp - run a fuzz target over files, without libFuzzer -===//
//
// In builds without -fsanitize=fuzzer the fuzz targets link this driver instead of libFuzzer: it runs
// LLVMFuzzerTestOneInput once on each file named on the command line (each file inside a named directory), so
// the committed regression inputs replay in every build, sanitized or not. libFuzzer's own main does the same
// when given files, so the lit test is the same command in both builds.
//
//===----------------------------------------------------------------------===//
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

namespace {

bool runFile(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    return false;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly the file's size, as libFuzzer passes it, so an overread is caught by ASan.
  std::vector<uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  std::fprintf(stderr, "Executed %s\n", path.c_str());
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  bool ok = true;
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-')
      continue; // a libFuzzer flag: meaningless here
    std::filesystem::path p(arg);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> entries;
      for (const auto &e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file())
          entries.push_back(e.path());
      std::sort(entries.begin(), entries.end());
      for (const auto &e : entries)
        ok &= runFile(e), ++files;
    } else {
      ok &= runFile(p), ++files;
    }
  }
  std::fprintf(stderr, "%d inputs run\n", files);
  return ok ? 0 : 1;
}
