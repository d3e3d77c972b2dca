//===- Model.cpp - model.bin loader and validator --------------------------===//
//
// Safe for untrusted files: every offset and count is checked against the bytes it refers to before use, with
// overflow-safe arithmetic, and every section's CRC32 is verified, so a single flipped bit anywhere is rejected.
//
//===----------------------------------------------------------------------===//
#include "Model.h"

#include "qopt/Format/ByteStream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace qopt;
using format::ByteReader;

namespace qrt {

class MappedFile {
public:
  ~MappedFile() {
    if (base && base != MAP_FAILED)
      munmap(base, size);
  }
  void *base = nullptr;
  uint64_t size = 0;
};

Model::Model() = default;
Model::~Model() = default;

namespace {

enum { kIo = 1, kFormat = 2 };

bool fail(std::string &error, int &code, int c, std::string msg) {
  error = std::move(msg);
  code = c;
  return false;
}

bool within(uint64_t off, uint64_t len, uint64_t total) { return off <= total && len <= total - off; }

// Elements of one value at most, so that its byte size (8-byte elements at most) stays below 2^62.
constexpr uint64_t kMaxElements = uint64_t(1) << 59;

} // namespace

std::unique_ptr<Model> Model::load(const std::string &path, const WeightResolver &resolver, std::string &error,
                                   int &code) {
  auto file = std::make_unique<MappedFile>();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail(error, code, kIo, path + ": cannot open: " + std::strerror(errno));
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(error, code, kIo, path + ": not a regular file");
    return nullptr;
  }
  file->size = static_cast<uint64_t>(st.st_size);
  if (file->size < sizeof(format::FileHeader)) {
    ::close(fd);
    fail(error, code, kFormat, path + ": too small to be a model.bin (" + std::to_string(file->size) + " bytes)");
    return nullptr;
  }
  file->base = mmap(nullptr, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (file->base == MAP_FAILED) {
    fail(error, code, kIo, path + ": mmap failed: " + std::strerror(errno));
    return nullptr;
  }
  auto model = loadImage(static_cast<const uint8_t *>(file->base), file->size, path, resolver, error, code);
  if (model)
    model->file = std::move(file);
  return model;
}

std::unique_ptr<Model> Model::loadImage(const uint8_t *bytes, uint64_t size, const std::string &name,
                                        const WeightResolver &resolver, std::string &error, int &code) {
  auto model = std::unique_ptr<Model>(new Model());
  auto bad = [&](const std::string &msg) {
    fail(error, code, kFormat, name + ": " + msg);
    return nullptr;
  };
  if (size < sizeof(format::FileHeader))
    return bad("too small to be a model.bin (" + std::to_string(size) + " bytes)");
  if (reinterpret_cast<uintptr_t>(bytes) % kImageAlignment != 0)
    return bad("the image is not aligned to " + std::to_string(kImageAlignment) + " bytes");
  format::FileHeader h;
  std::memcpy(&h, bytes, sizeof h);
  if (std::memcmp(h.magic, format::kMagic, sizeof h.magic) != 0)
    return bad("not a qopt model.bin (bad magic)");
  if (h.versionMajor < format::kOldestVersionMajor || h.versionMajor > format::kVersionMajor)
    return bad("format version " + std::to_string(h.versionMajor) + "." + std::to_string(h.versionMinor) +
               " is not supported by this runtime (it reads versions " + std::to_string(format::kOldestVersionMajor) +
               ".x to " + std::to_string(format::kVersionMajor) + ".x)");
  uint32_t headerCrc = h.headerCrc;
  h.headerCrc = 0;
  if (format::crc32(&h, sizeof h) != headerCrc)
    return bad("header checksum mismatch (file damaged)");
  if (h.fileSize != size)
    return bad("file is " + std::to_string(size) + " bytes but its header says " +
               std::to_string(h.fileSize) + " (truncated or padded)");
  if (h.numSections == 0 || h.numSections > 64 ||
      !within(h.sectionTableOffset, uint64_t(h.numSections) * sizeof(format::SectionEntry), size))
    return bad("section table out of bounds");
  std::vector<format::SectionEntry> sections(h.numSections);
  std::memcpy(sections.data(), bytes + h.sectionTableOffset, sections.size() * sizeof(format::SectionEntry));
  if (format::crc32(sections.data(), sections.size() * sizeof(format::SectionEntry)) != h.sectionTableCrc)
    return bad("section table checksum mismatch (file damaged)");

  const format::SectionEntry *found[format::kNumSectionKinds + 1] = {};
  for (const auto &s : sections) {
    if (!within(s.offset, s.size, size) || s.offset % format::kSectionAlign != 0)
      return bad("section " + std::to_string(s.kind) + " out of bounds or misaligned");
    if (format::crc32(bytes + s.offset, s.size) != s.crc)
      return bad("section " + std::to_string(s.kind) + " checksum mismatch (file damaged)");
    if (s.kind >= 1 && s.kind <= format::kNumSectionKinds) {
      if (found[s.kind])
        return bad("duplicate section " + std::to_string(s.kind));
      found[s.kind] = &s;
    }
  }
  for (auto k : {format::SectionKind::Meta, format::SectionKind::Values, format::SectionKind::Program,
                 format::SectionKind::Weights})
    if (!found[static_cast<uint32_t>(k)])
      return bad("missing section " + std::to_string(static_cast<uint32_t>(k)));
  auto sec = [&](format::SectionKind k) { return found[static_cast<uint32_t>(k)]; };

  const auto *ws = sec(format::SectionKind::Weights);
  model->weights = bytes + ws->offset;
  model->weightsSize = ws->size;
  if (const auto *ts = sec(format::SectionKind::Tokenizer)) {
    model->tokenizer = bytes + ts->offset;
    model->tokenizerSize = ts->size;
  }

  if (const auto *ks = sec(format::SectionKind::Kernels)) { // device code
    ByteReader r(bytes + ks->offset, ks->size);
    uint32_t ni = r.count(13);
    for (uint32_t i = 0; i < ni && r.ok(); ++i) {
      DeviceImage img;
      img.arch = r.str();
      uint8_t f = r.u8();
      img.size = r.u64();
      img.data = r.take(img.size);
      if (!img.data || img.size == 0)
        return bad("kernels section: image " + std::to_string(i) + " is malformed");
      if (img.arch.empty() || img.arch.size() > 32 || img.arch.find('\0') != std::string::npos ||
          (f != static_cast<uint8_t>(format::ImageFormat::Cubin) && f != static_cast<uint8_t>(format::ImageFormat::Ptx)))
        return bad("kernels section: image " + std::to_string(i) + " has a bad architecture or format");
      img.format = static_cast<format::ImageFormat>(f);
      model->deviceImages.push_back(img);
    }
    uint32_t nk = r.count(37);
    for (uint32_t i = 0; i < nk && r.ok(); ++i) {
      DeviceKernel k;
      k.symbol = r.str();
      format::KernelLaunch &l = k.launch;
      l.block = r.u32();
      l.gridY = r.u32();
      l.rowsPerBlock = r.u32();
      l.colsPerBlock = r.u32();
      l.cols = r.u64();
      l.sharedBytes = r.u32();
      l.operand = r.u32();
      const uint8_t mode = r.u8();
      l.flat = mode == 1;
      l.planes = mode == 2;
      if (!r.ok())
        break;
      if (k.symbol.empty() || k.symbol.size() > 256 || k.symbol.find('\0') != std::string::npos || l.block == 0 ||
          l.block > format::kMaxBlock || l.block % 32 != 0 || l.gridY == 0 || l.gridY > format::kMaxGridY ||
          l.rowsPerBlock == 0 || l.colsPerBlock == 0 || l.sharedBytes > format::kMaxKernelShared ||
          l.operand >= kMaxKernelOperands || mode > 2 || l.cols > kMaxElements)
        return bad("kernels section: kernel " + std::to_string(i) + " has an invalid launch record");
      for (const DeviceKernel &o : model->deviceKernels)
        if (o.symbol == k.symbol)
          return bad("kernels section: kernel '" + k.symbol + "' is recorded twice");
      model->deviceKernels.push_back(std::move(k));
    }
    if (!r.ok() || r.remaining() != 0)
      return bad("kernels section is malformed");
  }

  { // metadata
    const auto *s = sec(format::SectionKind::Meta);
    ByteReader r(bytes + s->offset, s->size);
    uint32_t n = r.count(8);
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
      std::string k = r.str();
      model->meta[k] = r.str();
    }
    if (!r.ok())
      return bad("metadata section is malformed");
  }

  { // values
    const auto *s = sec(format::SectionKind::Values);
    ByteReader r(bytes + s->offset, s->size);
    uint32_t n = r.count(24);
    model->values.resize(n);
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
      Value &v = model->values[i];
      v.name = r.str();
      if (v.name.find('\0') != std::string::npos) // the C API names values by C string
        return bad("value " + std::to_string(i) + " has a name with a NUL byte");
      int dt = r.u8();
      int storage = r.u8();
      uint32_t rank = r.u8();
      r.u8();
      if (!r.ok())
        break;
      if (!num::isValidDType(dt))
        return bad("value '" + v.name + "' has unknown dtype code " + std::to_string(dt));
      if (storage < 1 || storage > 7)
        return bad("value '" + v.name + "' has unknown storage " + std::to_string(storage));
      if (rank > format::kMaxRank)
        return bad("value '" + v.name + "' has rank " + std::to_string(rank) + " > " +
                   std::to_string(format::kMaxRank));
      v.dtype = static_cast<num::DType>(dt);
      v.storage = static_cast<format::Storage>(storage);
      v.dims.resize(rank);
      v.maxDims.resize(rank);
      for (uint32_t d = 0; d < rank; ++d) {
        v.dims[d] = r.i64();
        v.maxDims[d] = r.i64();
      }
      v.offset = r.u64();
      v.maxBytes = r.u64();
      if (!r.ok())
        break;
      // Bounded whatever the order of the dims: the product of the non-zero ones (an empty value of 2^62 x 2^62 x 0
      // would still make kernels compute strides and row products that overflow).
      uint64_t elems = 1, nonZero = 1;
      for (uint32_t d = 0; d < rank; ++d) {
        bool runtimeSized = storage == static_cast<int>(format::Storage::Dynamic) && v.dims[d] < 0;
        if (v.dims[d] < -1 || v.maxDims[d] < 0 || (!runtimeSized && v.dims[d] >= 0 && v.dims[d] != v.maxDims[d]))
          return bad("value '" + v.name + "' has an invalid dim");
        uint64_t m = static_cast<uint64_t>(v.maxDims[d]);
        if (m && nonZero > kMaxElements / m)
          return bad("value '" + v.name + "' is too large");
        nonZero *= m ? m : 1;
        elems *= m;
      }
      uint64_t need = elems * num::dtypeSize(v.dtype);
      if (v.storage == format::Storage::Weight) {
        if (need != v.maxBytes || !within(v.offset, v.maxBytes, ws->size))
          return bad("weight '" + v.name + "' lies outside the weights section");
        if (v.offset % format::kWeightAlign != 0)
          return bad("weight '" + v.name + "' is not aligned to " + std::to_string(format::kWeightAlign) + " bytes");
        v.data = model->weights + v.offset;
      } else if (v.storage == format::Storage::External) {
        if (need != v.maxBytes)
          return bad("external weight '" + v.name + "' has a size that does not match its shape");
        if (!resolver)
          return bad("weight '" + v.name +
                     "' is external: load the model with qrt_model_load_with_options and a weight resolver");
        v.data = static_cast<const uint8_t *>(resolver(v.offset, v.name, v.dtype, v.maxBytes));
        if (!v.data)
          return bad("the weight resolver has no data for external weight '" + v.name + "'");
        if (reinterpret_cast<uintptr_t>(v.data) % num::dtypeSize(v.dtype) != 0)
          return bad("the weight resolver's data for '" + v.name + "' is not aligned to its element size");
      } else if (v.storage == format::Storage::State &&
                 (need != v.maxBytes || std::any_of(v.dims.begin(), v.dims.end(), [](int64_t d) { return d < 0; }))) {
        return bad("state value '" + v.name + "' must have a static shape and a slot of its size");
      } else if ((v.storage == format::Storage::Arena || v.storage == format::Storage::Input ||
                  v.storage == format::Storage::Host) &&
                 need != v.maxBytes) {
        return bad("value '" + v.name + "' has a slot of " + std::to_string(v.maxBytes) +
                   " bytes but its bound needs " + std::to_string(need));
      }
    }
    if (!r.ok())
      return bad("value table is malformed");
  }

  { // program
    const auto *s = sec(format::SectionKind::Program);
    ByteReader r(bytes + s->offset, s->size);
    model->arenaBytes = r.u64();
    model->stateBytes = r.u64();
    const uint32_t nv = static_cast<uint32_t>(model->values.size());
    auto readIds = [&](std::vector<uint32_t> &ids, bool allowAbsent) {
      uint32_t n = r.count(4);
      ids.resize(n);
      for (uint32_t i = 0; i < n; ++i) {
        ids[i] = r.u32();
        if (!(allowAbsent && ids[i] == format::kNoValue) && ids[i] >= nv)
          return false;
      }
      return r.ok();
    };
    model->hostBytes = r.u64();
    // The planner places each slot (rounded up to 64 bytes) at 0 or at the end of another, so an arena is at most
    // the sum of its slots: a larger claim is a damaged or hostile file asking for memory it never uses. The
    // device arena holds arena values and inputs; the host arena host values; the state its values.
    auto checkRegion = [&](uint64_t size, const std::string &region,
                           std::initializer_list<format::Storage> kinds) -> std::string {
      uint64_t slots = 0;
      for (const Value &v : model->values) {
        if (std::find(kinds.begin(), kinds.end(), v.storage) == kinds.end())
          continue;
        if (!within(v.offset, v.maxBytes, size) || v.offset % format::kWeightAlign != 0)
          return "value '" + v.name + "' lies outside the " + region + " or is not aligned to " +
                 std::to_string(format::kWeightAlign) + " bytes";
        slots += (std::max<uint64_t>(v.maxBytes, 1) + 63) / 64 * 64; // maxBytes <= 2^62: no overflow
        if (slots > kMaxElements * 8)
          return "the " + region + "'s slots add up to more than 2^62 bytes";
      }
      if (size > slots)
        return "the " + region + " is " + std::to_string(size) + " bytes but its slots add up to " +
               std::to_string(slots);
      return "";
    };
    for (std::string err : {checkRegion(model->arenaBytes, "arena", {format::Storage::Arena, format::Storage::Input}),
                            checkRegion(model->stateBytes, "state", {format::Storage::State}),
                            checkRegion(model->hostBytes, "host arena", {format::Storage::Host})})
      if (!err.empty())
        return bad(err);
    // Entries: one program each over the shared values (weights, state), with their own inputs and arena values.
    uint32_t ne = r.count(32);
    if (ne == 0 || ne > 16)
      return bad("the program has " + std::to_string(ne) + " entries (1 to 16 expected)");
    model->entries.resize(ne);
    for (uint32_t en = 0; en < ne && r.ok(); ++en) {
      Entry &e = model->entries[en];
      e.name = r.str();
      e.arenaBytes = r.u64();
      e.hostBytes = r.u64();
      const std::string where = ne > 1 ? "entry '" + e.name + "': " : "";
      if (!r.ok())
        break;
      if (e.name.empty() || e.name.find('\0') != std::string::npos || e.arenaBytes > model->arenaBytes ||
          e.hostBytes > model->hostBytes)
        return bad("entry " + std::to_string(en) + " has an empty name, a NUL in it, or an arena larger than the "
                   "session's");
      for (uint32_t p = 0; p < en; ++p)
        if (model->entries[p].name == e.name)
          return bad("two entries are named '" + e.name + "'");
      // Inputs are defined in the entry that binds them; arena values once their instruction ran; the rest
      // (weights, state) always.
      std::vector<bool> defined(nv, false), updated(nv, false);
      for (uint32_t i = 0; i < nv; ++i)
        defined[i] = model->values[i].storage != format::Storage::Arena &&
                     model->values[i].storage != format::Storage::Dynamic &&
                     model->values[i].storage != format::Storage::Input &&
                     model->values[i].storage != format::Storage::Host;
      if (!readIds(e.inputs, false))
        return bad(where + "input table is malformed");
      uint32_t nout = r.count(8);
      for (uint32_t i = 0; i < nout && r.ok(); ++i) {
        e.outputNames.push_back(r.str());
        if (e.outputNames.back().find('\0') != std::string::npos)
          return bad(where + "output " + std::to_string(i) + " has a name with a NUL byte");
        uint32_t id = r.u32();
        if (id >= nv)
          return bad(where + "output table is malformed");
        e.outputs.push_back(id);
      }
      if (!r.ok())
        return bad(where + "output table is malformed");
      for (uint32_t id : e.inputs)
        if (model->values[id].storage != format::Storage::Input)
          return bad(where + "graph input '" + model->values[id].name + "' is not an input value");
      // Hosts bind inputs and fetch outputs by name: each name must pick out one.
      std::set<std::string> names(e.outputNames.begin(), e.outputNames.end());
      if (names.size() != e.outputNames.size())
        return bad(where + "two graph outputs have the same name");
      names.clear();
      for (uint32_t id : e.inputs)
        if (!names.insert(model->values[id].name).second)
          return bad(where + "two graph inputs are named '" + model->values[id].name + "'");
      for (uint32_t id : e.inputs)
        defined[id] = true;
      // Every entry takes the inputs and gives the outputs of the first (the general one), by name, dtype and rank.
      if (en > 0) {
        const Entry &first = model->entries[0];
        bool same = e.inputs.size() == first.inputs.size() && e.outputNames.size() == first.outputNames.size();
        for (size_t j = 0; same && j < e.inputs.size(); ++j) {
          const Value &a = model->values[e.inputs[j]], &b = model->values[first.inputs[j]];
          same = a.name == b.name && a.dtype == b.dtype && a.dims.size() == b.dims.size();
        }
        for (size_t j = 0; same && j < e.outputNames.size(); ++j)
          same = e.outputNames[j] == first.outputNames[j];
        if (!same)
          return bad(where + "its inputs or outputs differ from entry '" + first.name + "''s");
      }
      uint32_t ni = r.count(16);
      e.program.resize(ni);
      for (uint32_t i = 0; i < ni && r.ok(); ++i) {
        Instr &in = e.program[i];
        std::string kname = r.str();
        in.variant = r.str();
        in.family = num::lookupFamily(kname);
        if (!in.family)
          return bad(where + "instruction " + std::to_string(i) + " names unknown kernel family '" + kname + "'");
        if (!readIds(in.inputs, true) || !readIds(in.outputs, false))
          return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") has invalid operand ids");
        uint32_t na = r.count(6);
        for (uint32_t k = 0; k < na && r.ok(); ++k) {
          num::Attr a;
          a.key = r.str();
          auto kind = static_cast<format::AttrKind>(r.u8());
          switch (kind) {
          case format::AttrKind::Int: a.kind = num::AttrKind::Int; a.i = r.i64(); break;
          case format::AttrKind::Float: a.kind = num::AttrKind::Float; a.f = r.f64(); break;
          case format::AttrKind::String: a.kind = num::AttrKind::String; a.s = r.str(); break;
          case format::AttrKind::Ints: {
            a.kind = num::AttrKind::Ints;
            uint32_t c = r.count(8);
            for (uint32_t j = 0; j < c; ++j) a.ints.push_back(r.i64());
            break;
          }
          case format::AttrKind::Floats: {
            a.kind = num::AttrKind::Floats;
            uint32_t c = r.count(8);
            for (uint32_t j = 0; j < c; ++j) a.floats.push_back(r.f64());
            break;
          }
          default:
            return bad(where + "instruction " + std::to_string(i) + " has an attribute of unknown kind");
          }
          in.attrs.add(std::move(a));
        }
        if (!r.ok())
          break;
        const num::KernelFamily &k = *in.family;
        int nin = static_cast<int>(in.inputs.size()), nout = static_cast<int>(in.outputs.size());
        int wantOut = k.numOutputs >= 0 ? k.numOutputs : static_cast<int>(in.attrs.getInt("num_outputs", -1));
        if (nin < k.minInputs || (k.maxInputs >= 0 && nin > k.maxInputs) || nout != wantOut)
          return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") has the wrong number of operands");
        for (int j = 0; j < nin; ++j) {
          uint32_t id = in.inputs[j];
          if (id == format::kNoValue) {
            if (j < k.minInputs)
              return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") lacks required operand " +
                         std::to_string(j));
            continue;
          }
          if (!defined[id])
            return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") reads '" +
                       model->values[id].name + "' before it is computed");
        }
        // A view of state (planned as the state's own bytes, no launch): within that state, for shapes that make
        // the kernel a view (states have static shapes: checked here once).
        if (k.isView && k.inPlace < 0 && nout == 1 && nin > 0 && in.inputs[0] != format::kNoValue &&
            model->values[in.outputs[0]].storage == format::Storage::State &&
            model->values[in.inputs[0]].storage == format::Storage::State) {
          const Value &res = model->values[in.outputs[0]], &st = model->values[in.inputs[0]];
          if (res.offset != st.offset || res.maxBytes != st.maxBytes || res.dtype != st.dtype ||
              !k.isView(st.dims, in.attrs) || updated[in.outputs[0]])
            return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") views state '" + st.name +
                       "' as '" + res.name + "', which is not the same bytes");
          updated[in.outputs[0]] = true;
          in.view = true;
          continue;
        }
        // A kernel that updates an operand in place writes a state value: its result is that state, after.
        if (k.inPlace >= 0 || (nout > 0 && model->values[in.outputs[0]].storage == format::Storage::State)) {
          const Value *res = nout == 1 ? &model->values[in.outputs[0]] : nullptr;
          const Value *st = k.inPlace >= 0 && k.inPlace < nin && in.inputs[k.inPlace] != format::kNoValue
                                ? &model->values[in.inputs[k.inPlace]]
                                : nullptr;
          if (!res || !st || res->storage != format::Storage::State || st->storage != format::Storage::State ||
              res->offset != st->offset || res->maxBytes != st->maxBytes || res->dtype != st->dtype ||
              res->dims != st->dims || updated[in.outputs[0]])
            return bad(where + "instruction " + std::to_string(i) + " (" + kname +
                       ") must update a state operand in place, its one result that state");
          updated[in.outputs[0]] = true;
          continue;
        }
        // A host instruction (results in the host arena) runs the reference kernel on host memory: it reads host
        // values, inputs (the session keeps their bytes) and weights (in the mapped file), or only shapes.
        in.host = nout > 0 && model->values[in.outputs[0]].storage == format::Storage::Host;
        for (uint32_t id : in.outputs)
          if ((model->values[id].storage == format::Storage::Host) != in.host)
            return bad(where + "instruction " + std::to_string(i) + " (" + kname +
                       ") has results both in the host arena and outside it");
        if (in.host) {
          if (!in.variant.empty())
            return bad(where + "instruction " + std::to_string(i) + " (" + kname +
                       ") runs on the host, which has only the reference kernels, but names variant '" + in.variant +
                       "'");
          for (uint32_t id : in.inputs) {
            format::Storage st = id == format::kNoValue ? format::Storage::Host : model->values[id].storage;
            if (!k.readsShapesOnly && st != format::Storage::Host && st != format::Storage::Input &&
                !model->values[id].isWeight())
              return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") runs on the host but reads '" +
                         model->values[id].name + "', which is in device memory");
          }
        }
        for (uint32_t id : in.outputs) {
          bool computed = model->values[id].storage == format::Storage::Arena ||
                          model->values[id].storage == format::Storage::Dynamic ||
                          model->values[id].storage == format::Storage::Host;
          if (!computed || defined[id])
            return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") writes '" +
                       model->values[id].name + "' which is not a fresh arena value");
          defined[id] = true;
        }
        // Kernels assume their results alias neither their operands nor each other (the planner gives values live
        // at the same instruction disjoint slots); a file that breaks this would make a kernel read what it is
        // writing (an overlapping memcpy, say).
        auto region = [](format::Storage st) { // 1: the device arena, 2: the host arena, 0: neither
          return st == format::Storage::Arena || st == format::Storage::Input ? 1 : st == format::Storage::Host ? 2 : 0;
        };
        auto slotOverlap = [&](uint32_t a, uint32_t b) {
          const Value &x = model->values[a], &y = model->values[b];
          return region(x.storage) && region(x.storage) == region(y.storage) && x.maxBytes && y.maxBytes &&
                 x.offset < y.offset + y.maxBytes && y.offset < x.offset + x.maxBytes;
        };
        // A view kernel's result may instead be its input's memory (the planner's alias): the same offset, within
        // the input's slot. The session then launches nothing.
        in.view = k.isView && nout == 1 && nin > 0 && in.inputs[0] != format::kNoValue &&
                  model->values[in.outputs[0]].storage == format::Storage::Arena &&
                  region(model->values[in.inputs[0]].storage) == 1 &&
                  model->values[in.outputs[0]].offset == model->values[in.inputs[0]].offset;
        if (in.view && model->values[in.outputs[0]].maxBytes > model->values[in.inputs[0]].maxBytes)
          return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") views '" +
                     model->values[in.inputs[0]].name + "' as the larger '" + model->values[in.outputs[0]].name + "'");
        // A kernel that may write its result over an operand (KernelFamily::overwrites) may have it in exactly
        // that operand's slot: element j of the result reads only element j of it.
        auto overwrite = [&](size_t j, uint32_t out) {
          const Value &x = model->values[in.inputs[j]], &y = model->values[out];
          return nout == 1 && j < 32 && (k.overwrites >> j & 1) && x.storage == y.storage &&
                 x.offset == y.offset && y.maxBytes <= x.maxBytes;
        };
        for (size_t o = 0; o < in.outputs.size(); ++o) {
          uint32_t out = in.outputs[o];
          for (size_t j = 0; j < in.inputs.size(); ++j)
            if (uint32_t id = in.inputs[j]; id != format::kNoValue && !(in.view && j == 0) && !overwrite(j, out) &&
                                           slotOverlap(out, id))
              return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") writes '" +
                         model->values[out].name + "' over its operand '" + model->values[id].name +
                         "' (their arena slots overlap)");
          for (size_t p = 0; p < o; ++p)
            if (slotOverlap(out, in.outputs[p]))
              return bad(where + "instruction " + std::to_string(i) + " (" + kname + ") has results '" +
                         model->values[in.outputs[p]].name + "' and '" + model->values[out].name +
                         "' whose arena slots overlap");
        }
      }
      if (!r.ok())
        return bad("program section is malformed");
      for (const Instr &in : e.program)
        e.launches += in.view || in.host ? 0 : 1;
      for (uint32_t id : e.outputs)
        if (!defined[id])
          return bad(where + "graph output '" + model->values[id].name + "' is never computed");
    }
    if (!r.ok())
      return bad("program section is malformed");
  }
  return model;
}

} // namespace qrt
