//===- ConstantStorage.cpp - file-backed storage for large constants -------===//
#include "qopt/Dialect/NN/ConstantStorage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

using namespace mlir;

namespace qopt::nn {
namespace {

std::atomic<bool> filesFailed{false};
std::atomic<uint64_t> fileBytes{0}; // alive

// An unlinked temporary file of `bytes` (its blocks reserved first, so that writing the pages cannot fail later for
// want of space), mapped shared; null if that cannot be had.
void *mapTemporaryFile(size_t bytes) {
  std::string path = constantFileDirectory() + "/qopt-constant-XXXXXX"; // (mkstemp fills in the X's)
  const int fd = mkstemp(path.data());
  if (fd < 0)
    return nullptr;
  unlink(path.c_str());
  void *data = posix_fallocate(fd, 0, static_cast<off_t>(bytes)) == 0
                   ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                   : MAP_FAILED;
  close(fd); // (the mapping keeps the file)
  return data == MAP_FAILED ? nullptr : data;
}

} // namespace

AsmResourceBlob allocateConstantBlob(size_t bytes, size_t align, bool *fileBacked) {
  if (fileBacked)
    *fileBacked = false;
  if (bytes >= kFileBackedBytes && !filesFailed.load(std::memory_order_relaxed)) {
    if (void *data = mapTemporaryFile(bytes)) { // page-aligned, zeroed
      fileBytes.fetch_add(bytes, std::memory_order_relaxed);
      if (fileBacked)
        *fileBacked = true;
      return AsmResourceBlob(ArrayRef<char>(static_cast<const char *>(data), bytes), align,
                             [](void *p, size_t size, size_t) {
                               munmap(p, size);
                               fileBytes.fetch_sub(size, std::memory_order_relaxed);
                             },
                             /*dataIsMutable=*/true);
    }
    filesFailed.store(true, std::memory_order_relaxed);
  }
  AsmResourceBlob blob = HeapAsmResourceBlob::allocate(bytes, align, /*dataIsMutable=*/true);
  std::memset(blob.getMutableData().data(), 0, bytes);
  return blob;
}

AsmResourceBlob copyConstantBlob(ArrayRef<char> data, size_t align, bool *fileBacked) {
  AsmResourceBlob blob = allocateConstantBlob(data.size(), align, fileBacked);
  if (!data.empty())
    std::memcpy(blob.getMutableData().data(), data.data(), data.size());
  return blob;
}

uint64_t fileBackedConstantBytes() { return fileBytes.load(std::memory_order_relaxed); }

bool constantFilesFailed() { return filesFailed.load(std::memory_order_relaxed); }

std::string constantFileDirectory() {
  const char *env = std::getenv("TMPDIR");
  return env && *env ? env : "/tmp";
}

} // namespace qopt::nn
