//===- ConstantStorage.h - where the constants passes create live ----------===//
//
// A model's weights are most of the compiler's memory, and passes make new ones: float32 copies of a 16-bit model,
// fused q/k/v and gate/up matrices, AWQ- and SmoothQuant-scaled weights, quantized codes, the float16 weights of a
// CUDA target. Held in heap memory, those of an 8B model alone outgrow a 24 GB machine; a 70B model's outgrow any.
// So every large constant a pass creates is file-backed: an unlinked temporary file under $TMPDIR (else /tmp),
// mapped shared, whose pages the system writes back and drops under memory pressure as it does the model's own
// mmapped external data. The file goes with the blob (the mapping is its last reference).
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_DIALECT_NN_CONSTANTSTORAGE_H
#define QOPT_DIALECT_NN_CONSTANTSTORAGE_H

#include "mlir/IR/AsmState.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace qopt::nn {

// Constants of this many bytes or more are file-backed.
constexpr size_t kFileBackedBytes = size_t{1} << 20;

// `bytes` of zeroed, mutable storage aligned to `align` (at most a page): file-backed from kFileBackedBytes on,
// heap memory below that or where no temporary file can be made (no space, no directory: from then on every blob
// is heap memory, so a full disk costs one failed attempt). `fileBacked`, if given, says which.
mlir::AsmResourceBlob allocateConstantBlob(size_t bytes, size_t align = 64, bool *fileBacked = nullptr);

// The same holding a copy of `data`.
mlir::AsmResourceBlob copyConstantBlob(llvm::ArrayRef<char> data, size_t align = 64, bool *fileBacked = nullptr);

// Bytes of file-backed constants alive now (qopt --time prints it).
uint64_t fileBackedConstantBytes();

// Where the files are made: $TMPDIR, else /tmp.
std::string constantFileDirectory();

// Whether a temporary file could not be made (every large constant since is in heap memory).
bool constantFilesFailed();

} // namespace qopt::nn

#endif // QOPT_DIALECT_NN_CONSTANTSTORAGE_H
