//===- ModelBin.h - the model.bin file format ------------------------------===//
//
// model.bin is what the compiler hands to the runtime: one file, mmapped, holding the execution plan (a list of
// kernel launches over a value table), the weights (aligned so they can be used in place) and an optional
// tokenizer. This header is the single definition of its layout; the writer (lib/Serialize) and the loader
// (runtime/) both include it. All integers are little-endian.
//
//   FileHeader                      fixed 64 bytes at offset 0
//   SectionEntry[numSections]       at header.sectionTableOffset
//   sections                        each at an offset aligned to kSectionAlign, CRC32-checked
//
// Section payloads are encoded with ByteWriter/ByteReader (ByteStream.h): u32 counts, length-prefixed strings.
//   kMeta:      u32 n, n x (str key, str value)
//   kValues:    u32 n, n x ValueRecord (see encodeValue in the writer / decodeValue in the loader)
//   kProgram:   u64 arenaBytes (the session's: the largest entry's), u64 stateBytes, u64 hostBytes (the host
//               arena: the largest entry's), u32 nEntries, nEntries x (str name, u64 entryArenaBytes,
//               u64 entryHostBytes, u32 nInputs, ids, u32 nOutputs, nOutputs x (str name, u32 id),
//                u32 nInstr, nInstr x (str family, str variant, u32 n, ids, u32 n, ids, u32 nAttrs, attrs))
//               Entries share the value table: weights and state once, inputs and arena values per entry.
//   kWeights:   raw bytes, each weight at a kWeightAlign-aligned offset inside the section
//   kTokenizer: the tokenizer file as given to `qopt --tokenizer`
//   kKernels:   device code (a CUDA target): u32 nImages, nImages x (str arch, u8 ImageFormat, u64 size, bytes),
//               u32 nSymbols, nSymbols x (str symbol, u32 block, u32 gridY, u32 rowsPerBlock, u32 colsPerBlock,
//               u64 cols, u32 sharedBytes, u32 operand, u8 mode): the kernels instructions name as their
//               variant, and how to launch each (KernelGeometry in lib/Codegen's Cuda.h)
//
//===----------------------------------------------------------------------===//
#ifndef QOPT_FORMAT_MODELBIN_H
#define QOPT_FORMAT_MODELBIN_H

#include <cstdint>

namespace qopt::format {

constexpr char kMagic[8] = {'Q', 'O', 'P', 'T', 'M', 'D', 'L', '\0'};
// The major version changes when a loader of the previous version could misread a file; minor when fields are
// only added in ways old loaders reject cleanly.
// 1.1: Storage::External. 2.0: Storage::State, the program's state size and its entries (a 1.x loader would
// misread the program section). 3.0: each instruction names its kernel family and a variant (empty: the
// backend's default implementation); inputs have arena slots; Storage::Host and the program's host arena size.
// 3.1: the kernels section (a 3.0 loader skips it, then fails cleanly to bind the variants it names).
// 3.2: kernel launch geometry mode 2, planes. 3.3: tensor dtypes float8e4m3fn (17) and float8e5m2 (19), FP8
// weight codes (a 3.2 loader rejects their dtype code). 4.0: launches may read a weight in a tile layout (their
// `weight_layout` attribute, QuantFormat.h), whose bytes a 3.x loader would read as rows. A writer marks a file 4.0
// only where a launch does, 3.3 otherwise (kRowsVersion), so that 3.x loaders still read every file they can; a 4.x
// loader reads 3.x files too (kOldestVersionMajor). 5.0: the kernels section is compiled for bfloat16 operands
// (qopt --act-dtype=bf16; its helpers make bfloat16 values, which a 4.x runtime would hand cuBLASLt as float16):
// marked only then, 4.0 or 3.3 otherwise.
constexpr uint32_t kVersionMajor = 5;
constexpr uint32_t kVersionMinor = 0;
constexpr uint32_t kTilesVersionMajor = 4, kTilesVersionMinor = 0;
constexpr uint32_t kRowsVersionMajor = 3, kRowsVersionMinor = 3;
constexpr uint32_t kOldestVersionMajor = 3;
constexpr uint64_t kSectionAlign = 4096; // page: weights can be mmapped and used in place
constexpr uint64_t kWeightAlign = 64;    // cache line / widest vector load

enum class SectionKind : uint32_t {
  Meta = 1,
  Values = 2,
  Program = 3,
  Weights = 4,
  Tokenizer = 5,
  Kernels = 6,
};
constexpr uint32_t kNumSectionKinds = 6;

// Device code in the kernels section.
enum class ImageFormat : uint8_t {
  Cubin = 1, // machine code for one architecture (arch "sm_90a")
  Ptx = 2,   // PTX the driver compiles for any newer GPU (arch "compute_80")
};
// How the runtime launches one kernel of the kernels section: gridDim.x covers operand `operand` (an index into the
// instruction's inputs then results) as rows (all dims but the last) in tiles of rowsPerBlock times cols (its last
// dim, or `cols` if non-zero) in tiles of colsPerBlock, or all its elements as cols if `flat`; with `planes` the
// rows of each plane (all dims but the last two) are tiled separately (planes x ceil(rows / rowsPerBlock) tiles,
// version 3.2); gridDim.y = gridY. Encoded as u32 block, gridY, rowsPerBlock, colsPerBlock, u64 cols, u32
// sharedBytes, operand, u8 mode (0 rows, 1 flat, 2 planes).
struct KernelLaunch {
  uint32_t block = 0, gridY = 1, rowsPerBlock = 1, colsPerBlock = 1;
  uint64_t cols = 0;
  uint32_t sharedBytes = 0, operand = 0;
  bool flat = false;
  bool planes = false;
};
// Limits the loader enforces on a kernel record.
constexpr uint32_t kMaxBlock = 1024;
constexpr uint32_t kMaxGridY = 65535;
constexpr uint32_t kMaxKernelShared = 227 * 1024;

struct FileHeader {
  char magic[8];
  uint32_t versionMajor;
  uint32_t versionMinor;
  uint64_t fileSize;
  uint64_t sectionTableOffset;
  uint32_t numSections;
  uint32_t sectionTableCrc; // CRC32 of the section table
  uint32_t headerCrc;       // CRC32 of this header with headerCrc = 0
  uint32_t reserved[5];
};
static_assert(sizeof(FileHeader) == 64, "FileHeader must stay 64 bytes");

struct SectionEntry {
  uint32_t kind; // SectionKind
  uint32_t flags;
  uint64_t offset;
  uint64_t size;
  uint32_t crc; // CRC32 of the payload
  uint32_t reserved;
};
static_assert(sizeof(SectionEntry) == 32, "SectionEntry must stay 32 bytes");

// Where a value's bytes live at run time.
enum class Storage : uint8_t {
  Input = 1,  // bound by the caller (qrt_session_set_input), uploaded to its arena slot at `offset` for each run
  Weight = 2, // in the weights section, read-only
  Arena = 3,  // in the activation arena at a planned offset
  Dynamic = 4, // sized at run time: its shape depends on values only known then (no plan bound)
  External = 5, // a weight whose bytes the host supplies at load time (qrt_model_load_with_options); its
                // offset field is its index among the file's external weights
  State = 6,    // in the session's state memory at `offset` (static shape): kept from one run to the next, zero
                // when the session starts or is reset (a KV cache). Written only by kernels that update an
                // operand in place (KernelFamily::inPlace), whose result is a State value at the operand's offset.
  Host = 7,     // in the session's host arena at `offset`: a result of an instruction the session runs on the host
                // with the reference kernel (shape arithmetic), uploaded where a device kernel reads it. An
                // instruction's results are all Host or none; a host instruction reads only Host, Input and
                // weight values (any value if its kernel reads only shapes).
};

// Attribute payload kinds in an instruction record.
enum class AttrKind : uint8_t {
  Int = 1,    // i64
  Float = 2,  // f64
  String = 3, // str
  Ints = 4,   // u32 n, n x i64
  Floats = 5, // u32 n, n x f64
};

constexpr uint32_t kNoValue = 0xffffffffu; // an absent optional kernel operand
constexpr uint32_t kMaxRank = 16;

uint32_t crc32(const void *data, uint64_t size, uint32_t seed = 0);

} // namespace qopt::format

#endif // QOPT_FORMAT_MODELBIN_H
