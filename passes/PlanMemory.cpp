//===- PlanMemory.cpp - static arena offsets from max shapes and liveness --===//
//
// The runtime computes shapes as it goes; the plan only needs each buffer's largest size. That comes from a dry
// run of the kernels' own shape functions (lib/Numerics) at the bounds of the dynamic input dims: float tensors
// are never computed, small integer tensors (the shape arithmetic) are, because later shapes read them. The
// runtime checks every computed size against the slot reserved here. Session state (kern.state: a KV cache)
// is laid out separately, each state at its own offset for the whole session; a launch that updates a state in
// place gets that state's offset for its result. A view (a reshape, a transpose of unit dims) gets its input's
// offset, and the input's slot lives until the view's last reader. Inputs get arena slots too: the session
// uploads them there.
//
// Shape arithmetic runs on the host: a launch whose results are small integer tensors with a bound, computed
// from host-readable operands (weights, inputs, other host values; any value when the kernel reads only shapes),
// is marked `host` and its results get slots in a separate host arena. A device kernel reading a host value gets
// it uploaded; a shape function reading a device value gets it downloaded (neither happens in an entry whose
// shape arithmetic is folded, like the one-token decode step).
//
//===----------------------------------------------------------------------===//
#include "qopt/Dialect/Kern/KernDialect.h"
#include "qopt/Dialect/NN/NNDialect.h"
#include "qopt/Numerics/Kernels.h"
#include "qopt/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"

namespace qopt {
#define GEN_PASS_DEF_PLANMEMORYPASS
#include "passes/Passes.h.inc"
} // namespace qopt

using namespace mlir;
using namespace qopt;

namespace {

constexpr int64_t kAlign = 64;
constexpr int64_t kMaxEvaluatedElements = 1 << 16;

struct Buffer {
  Value value;
  int64_t bytes = 0;
  int64_t first = 0, last = 0; // instruction indices of definition and last use
  int64_t offset = -1;
};

struct PlanMemoryPass : qopt::impl::PlanMemoryPassBase<PlanMemoryPass> {
  using PlanMemoryPassBase::PlanMemoryPassBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    Builder b(&getContext());
    llvm::StringMap<int64_t> bounds;
    std::string error;
    if (!parseDimBounds(maxDims, bounds, error, func.getSymName())) {
      func.emitError() << error;
      return signalPassFailure();
    }

    struct Info {
      num::Tensor t;
      std::vector<uint8_t> storage;
      bool dynamic = false; // shape known only at run time: allocated then, not planned
    };
    llvm::DenseMap<Value, std::unique_ptr<Info>> info;

    // Arguments: dynamic dims take their named bounds.
    for (BlockArgument arg : func.getArguments()) {
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (!type) {
        func.emitError() << "argument " << arg.getArgNumber() << " must be a ranked tensor";
        return signalPassFailure();
      }
      auto names = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), "nn.dims");
      auto inf = std::make_unique<Info>();
      inf->t.dtype = nn::toDType(type.getElementType());
      for (int64_t d = 0; d < type.getRank(); ++d) {
        int64_t dim = type.getDimSize(d);
        if (ShapedType::isDynamic(dim)) {
          StringRef name = names && d < static_cast<int64_t>(names.size())
                               ? cast<StringAttr>(names[d]).getValue()
                               : StringRef();
          auto it = bounds.find(name);
          if (name.empty() || it == bounds.end()) {
            auto argName = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "nn.name");
            func.emitError() << "dynamic dim " << d << " ('" << name << "') of input '"
                             << (argName ? argName.getValue() : StringRef("?"))
                             << "' has no bound: pass --max-dim " << (name.empty() ? "NAME" : name) << "=N";
            return signalPassFailure();
          }
          dim = it->second;
        }
        inf->t.shape.push_back(dim);
      }
      func.setArgAttr(arg.getArgNumber(), "kern.max_shape", b.getDenseI64ArrayAttr(inf->t.shape));
      info[arg] = std::move(inf);
    }

    // Dry run in program order.
    SmallVector<kern::LaunchOp> launches;
    llvm::DenseMap<Value, int64_t> defIndex, lastUse;
    // Session state: each kern.state at its own offset, for the whole session; an in-place update's result is
    // its state operand's memory.
    llvm::DenseMap<Value, int64_t> stateOffset;
    int64_t stateBytes = 0;
    llvm::DenseMap<Value, Value> viewRoot; // a view's result -> the planned value whose slot it shares
    llvm::DenseSet<Value> hostValues;      // results of launches that run on the host
    // Views of session state (the cached length read as positions): the state's own bytes if no in-place update
    // of that state comes before their last reader, which is known after the dry run.
    struct StateView {
      kern::LaunchOp launch;
      Value input;
      int64_t offset, index;
    };
    SmallVector<StateView> stateViews;
    llvm::DenseMap<Value, size_t> stateViewOf; // a candidate's result -> its index in stateViews
    SmallVector<std::pair<int64_t, int64_t>> updates; // in-place launches: (index, state offset)
    for (BlockArgument arg : func.getArguments())
      defIndex[arg] = -1; // uploaded before the first instruction
    auto hostReadable = [&](Value v) {
      return hostValues.contains(v) || isa<BlockArgument>(v) || v.getDefiningOp<kern::WeightOp>();
    };
    int64_t index = 0;
    for (Operation &op : func.getBody().front()) {
      if (auto st = dyn_cast<kern::StateOp>(op)) {
        auto inf = std::make_unique<Info>();
        auto type = st.getType();
        inf->t.dtype = nn::toDType(type.getElementType());
        inf->t.shape.assign(type.getShape().begin(), type.getShape().end());
        if (!num::withinElementLimit(inf->t.shape)) {
          st.emitError() << "is larger than 2^59 elements";
          return signalPassFailure();
        }
        st.setOffsetAttr(b.getI64IntegerAttr(stateBytes));
        stateOffset[st.getResult()] = stateBytes;
        stateBytes += (std::max<int64_t>(static_cast<int64_t>(inf->t.bytes()), 1) + kAlign - 1) / kAlign * kAlign;
        info[st.getResult()] = std::move(inf);
        continue;
      }
      if (auto w = dyn_cast<kern::WeightOp>(op)) {
        auto inf = std::make_unique<Info>();
        if (!nn::readConstant(w.getValue(), inf->t, inf->storage)) {
          w.emitError() << "cannot read this weight: " << nn::unreadableConstantReason(w.getValue());
          return signalPassFailure();
        }
        info[w.getResult()] = std::move(inf);
        continue;
      }
      auto launch = dyn_cast<kern::LaunchOp>(op);
      if (!launch)
        continue;
      const num::KernelFamily *k = num::lookupFamily(launch.getKernel().str());
      num::Attrs attrs = nn::toKernelAttrs(launch.getAttrs());
      num::KernelArgs args;
      args.attrs = &attrs;
      bool runtimeSized = false;
      for (auto [i, v] : llvm::enumerate(launch.getOperands())) {
        if (isa<NoneType>(v.getType())) {
          args.inputs.push_back(nullptr);
          continue;
        }
        auto found = info.find(v);
        Info *in = found == info.end() ? nullptr : found->second.get();
        if (!in) {
          launch.emitError() << "operand " << i << " has no planned value";
          return signalPassFailure();
        }
        // A shape that depends on values only known at run time makes the result (and everything computed
        // from it) runtime-sized.
        if (in->dynamic || ((k->shapeDataInputs >> i & 1u) && !in->t.data))
          runtimeSized = true;
        args.inputs.push_back(&in->t);
        lastUse[v] = index;
      }
      SmallVector<std::unique_ptr<Info>> outs;
      for (size_t r = 0; r < launch.getNumResults(); ++r) {
        outs.push_back(std::make_unique<Info>());
        args.outputs.push_back(&outs.back()->t);
      }
      if (runtimeSized) {
        SmallVector<Attribute> shapes;
        for (size_t r = 0; r < launch.getNumResults(); ++r) {
          outs[r]->dynamic = true;
          outs[r]->t.dtype = nn::toDType(cast<TensorType>(launch.getResult(r).getType()).getElementType());
          shapes.push_back(b.getDenseI64ArrayAttr({}));
          defIndex[launch.getResult(r)] = index;
          info[launch.getResult(r)] = std::move(outs[r]);
        }
        launch.setMaxShapesAttr(b.getArrayAttr(shapes));
        launches.push_back(launch);
        ++index;
        continue;
      }
      std::string err;
      if (!num::inferShapes(*k, args, err)) {
        launch.emitError() << "at the compiled dim bounds: " << err;
        return signalPassFailure();
      }
      std::vector<std::vector<uint8_t> *> storage;
      for (auto &o : outs)
        storage.push_back(&o->storage);
      bool evaluated = false;
      if (!num::evaluateSmall(*k, args, kMaxEvaluatedElements, /*floats=*/false,
                                  storage, evaluated, err)) {
        launch.emitError() << "evaluating shape arithmetic: " << err;
        return signalPassFailure();
      }
      // A result that is its input's bytes unchanged for every shape it can take (a reshape; a transpose moving
      // only dims that are statically 1) shares the input's slot, when that is an arena slot: no copy, no launch.
      if (k->isView && launch.getNumOperands() > 0 && defIndex.count(launch.getOperand(0)) &&
          !stateOffset.count(launch.getOperand(0)) && !hostValues.contains(launch.getOperand(0)) &&
          !stateViewOf.count(launch.getOperand(0)) && !info[launch.getOperand(0)]->dynamic) {
        Value in = launch.getOperand(0);
        num::Shape sample; // each dynamic dim at 2: a dim that may exceed 1 must not move
        for (int64_t d : cast<RankedTensorType>(in.getType()).getShape())
          sample.push_back(ShapedType::isDynamic(d) ? 2 : d);
        if (k->isView(sample, attrs) && k->isView(info[in]->t.shape, attrs)) {
          // Read before inserting: the insertion may grow the map and move its entries.
          Value root = viewRoot.lookup(in);
          viewRoot[launch.getResult(0)] = root ? root : in;
        }
      }
      if (k->isView && k->inPlace < 0 && launch.getNumOperands() > 0 && launch.getNumResults() == 1) {
        Value in = launch.getOperand(0);
        auto st = stateOffset.find(in);
        auto sv = stateViewOf.find(in);
        if ((st != stateOffset.end() || sv != stateViewOf.end()) && k->isView(info[in]->t.shape, attrs) &&
            cast<RankedTensorType>(launch.getResult(0).getType()).hasStaticShape()) {
          int64_t offset = st != stateOffset.end() ? st->second : stateViews[sv->second].offset;
          stateViewOf[launch.getResult(0)] = stateViews.size();
          stateViews.push_back({launch, in, offset, index});
        }
      }
      // Small bounded integer results from host-readable operands: computed on the host, never launched.
      bool host = k->inPlace < 0 && !viewRoot.count(launch.getResult(0)) && !stateViewOf.count(launch.getResult(0));
      for (auto &o : outs)
        host &= !num::isFloat(o->t.dtype) && o->t.numel() <= kMaxEvaluatedElements;
      for (Value v : launch.getOperands())
        host &= isa<NoneType>(v.getType()) || k->readsShapesOnly || hostReadable(v);
      if (host)
        for (Value r : launch.getResults())
          hostValues.insert(r);
      if (k->inPlace >= 0) {
        auto it = stateOffset.find(launch.getOperand(k->inPlace));
        if (it == stateOffset.end()) {
          launch.emitError() << "updates operand " << k->inPlace << " in place, which is not a kern.state";
          return signalPassFailure();
        }
        int64_t offset = it->second; // read before inserting: the insertion may grow the map
        stateOffset[launch.getResult(0)] = offset;
        updates.push_back({index, offset});
      }
      SmallVector<Attribute> shapes;
      for (size_t r = 0; r < launch.getNumResults(); ++r) {
        // A dim that compile-time shape inference called static must come out the same at the bounds; if not,
        // the IR (and any shape arithmetic folded from it) is wrong for some inputs: refuse to compile.
        auto type = cast<RankedTensorType>(launch.getResult(r).getType());
        for (int64_t d = 0; d < type.getRank(); ++d)
          if (!type.isDynamicDim(d) && (static_cast<size_t>(d) >= outs[r]->t.shape.size() ||
                                        outs[r]->t.shape[d] != type.getDimSize(d))) {
            launch.emitError() << "result " << r << " has static type " << type << " but the kernel computes "
                               << num::shapeStr(outs[r]->t.shape)
                               << " at the compiled dim bounds (shape inference missed a dependence on a "
                                  "dynamic dim; please report)";
            return signalPassFailure();
          }
        shapes.push_back(b.getDenseI64ArrayAttr(outs[r]->t.shape));
        defIndex[launch.getResult(r)] = index;
        info[launch.getResult(r)] = std::move(outs[r]);
      }
      launch.setMaxShapesAttr(b.getArrayAttr(shapes));
      launches.push_back(launch);
      ++index;
    }
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    for (Value v : ret.getOperands())
      lastUse[v] = index; // outputs stay live past the last instruction
    // State views: a view's readers (and those of views of it) must all come before the next in-place update of
    // its state, or it would read the update; such a view is copied instead (and so is any view of it).
    SmallVector<int64_t> lastRead(stateViews.size());
    for (size_t i = stateViews.size(); i-- > 0;) {
      auto it = lastUse.find(stateViews[i].launch.getResult(0));
      lastRead[i] = std::max(lastRead[i], it == lastUse.end() ? stateViews[i].index : it->second);
      if (auto parent = stateViewOf.find(stateViews[i].input); parent != stateViewOf.end())
        lastRead[parent->second] = std::max(lastRead[parent->second], lastRead[i]);
    }
    llvm::DenseSet<Value> stateViewResults;
    for (auto [i, v] : llvm::enumerate(stateViews)) {
      bool ok = !stateViewOf.count(v.input) || stateViewResults.contains(v.input);
      for (auto [at, offset] : updates)
        ok &= !(offset == v.offset && at > v.index && at <= lastRead[i]);
      if (!ok)
        continue;
      stateViewResults.insert(v.launch.getResult(0));
      stateOffset[v.launch.getResult(0)] = v.offset;
    }
    // A slot lives as long as the last reader of any view of it.
    for (auto [view, root] : viewRoot) {
      auto it = lastUse.find(view);
      if (it != lastUse.end()) {
        int64_t last = std::max(lastUse.lookup(root), it->second); // by value: lastUse[root] may grow the map
        lastUse[root] = last;
      }
    }

    // A result written over an operand that dies at its launch (KernelFamily::overwrites: elementwise kernels)
    // takes that operand's slot, which then lives as long as the result. In program order, so that a chain of
    // such results shares one slot.
    llvm::DenseMap<Value, Value> overwriteRoot; // result -> the planned value whose slot it takes
    auto rootOf = [&](Value v) {
      Value r = viewRoot.lookup(v);
      r = r ? r : v;
      Value o = overwriteRoot.lookup(r);
      return o ? o : r;
    };
    for (auto [index, l] : llvm::enumerate(launches)) {
      const num::KernelFamily *k = num::lookupFamily(l.getKernel().str());
      if (!k->overwrites || l.getNumResults() != 1)
        continue;
      Value r = l.getResult(0);
      if (info[r]->dynamic || stateOffset.count(r) || viewRoot.count(r) || hostValues.contains(r))
        continue;
      for (auto [i, v] : llvm::enumerate(l.getOperands())) {
        if (!(k->overwrites >> i & 1) || isa<NoneType>(v.getType()))
          continue;
        Value root = rootOf(v);
        auto last = lastUse.find(root);
        if (isa<BlockArgument>(root) || !defIndex.count(root) || stateOffset.count(root) || stateViewOf.count(root) ||
            hostValues.contains(root) || info[root]->dynamic || last == lastUse.end() ||
            last->second != static_cast<int64_t>(index) || info[root]->t.bytes() < info[r]->t.bytes())
          continue;
        lastUse[root] = std::max<int64_t>(lastUse.lookup(r), index); // the result's readers, if any
        overwriteRoot[r] = root;
        break;
      }
    }

    // Device slots (inputs first, then results in program order) and host slots, packed separately.
    std::vector<Buffer> bufs, hostBufs;
    int64_t total = 0; // the sum of all slots bounds every offset: keep it far from overflow
    auto addBuffer = [&](Value r, std::vector<Buffer> &to) {
      Buffer buf;
      buf.value = r;
      int64_t bytes = static_cast<int64_t>(info[r]->t.bytes()); // <= 2^62: inferShapes bounds the elements
      buf.bytes = (std::max<int64_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
      total += buf.bytes;
      if (total > (int64_t(1) << 62)) {
        func.emitError() << "the planned sizes add up to more than 2^62 bytes";
        return false;
      }
      buf.first = defIndex[r];
      auto it = lastUse.find(r);
      buf.last = it == lastUse.end() ? buf.first : it->second;
      to.push_back(buf);
      return true;
    };
    for (BlockArgument arg : func.getArguments())
      if (!addBuffer(arg, bufs))
        return signalPassFailure();
    for (kern::LaunchOp l : launches)
      for (Value r : l.getResults()) {
        if (info[r]->dynamic || stateOffset.count(r) || viewRoot.count(r) || overwriteRoot.count(r))
          continue;
        if (!addBuffer(r, hostValues.contains(r) ? hostBufs : bufs))
          return signalPassFailure();
      }
    // First-fit (each buffer at the lowest offset free over its lifetime) in a given order; the packing depends on
    // the order, so several are tried and the smallest arena kept: largest first, then longest-lived first, then
    // program order (ties by definition order, for determinism). Returns the arena size and sets each offset.
    auto plan = [](std::vector<Buffer> &bufs) {
      auto pack = [&](const std::vector<size_t> &order, std::vector<int64_t> &offsets) {
        offsets.assign(bufs.size(), 0);
        std::vector<size_t> placed;
        int64_t arena = 0;
        std::vector<std::pair<int64_t, int64_t>> busy;
        for (size_t i : order) {
          const Buffer &buf = bufs[i];
          busy.clear();
          for (size_t j : placed) {
            const Buffer &o = bufs[j];
            if (o.first <= buf.last && buf.first <= o.last)
              busy.push_back({offsets[j], offsets[j] + o.bytes});
          }
          std::sort(busy.begin(), busy.end());
          int64_t at = 0;
          for (auto [s, e] : busy) {
            if (at + buf.bytes <= s)
              break;
            at = std::max(at, e);
          }
          offsets[i] = at;
          arena = std::max(arena, at + buf.bytes);
          placed.push_back(i);
        }
        return arena;
      };
      std::vector<size_t> byDefinition(bufs.size());
      for (size_t i = 0; i < byDefinition.size(); ++i)
        byDefinition[i] = i;
      std::vector<size_t> bySize = byDefinition, byLifetime = byDefinition;
      std::stable_sort(bySize.begin(), bySize.end(),
                       [&](size_t a, size_t c) { return bufs[a].bytes > bufs[c].bytes; });
      std::stable_sort(byLifetime.begin(), byLifetime.end(), [&](size_t a, size_t c) {
        int64_t la = bufs[a].last - bufs[a].first, lc = bufs[c].last - bufs[c].first;
        return la != lc ? la > lc : bufs[a].bytes > bufs[c].bytes;
      });
      int64_t arena = -1;
      std::vector<int64_t> offsets, best;
      for (const std::vector<size_t> *order : {&bySize, &byLifetime, &byDefinition}) {
        int64_t size = pack(*order, offsets);
        if (arena < 0 || size < arena) {
          arena = size;
          best = offsets;
        }
      }
      for (size_t i = 0; i < bufs.size(); ++i)
        bufs[i].offset = best[i];
      return std::max<int64_t>(arena, 0);
    };
    int64_t arena = plan(bufs), hostArena = plan(hostBufs);
    llvm::DenseMap<Value, int64_t> offsetOf;
    for (const std::vector<Buffer> *list : {&bufs, &hostBufs})
      for (const Buffer &buf : *list)
        offsetOf[buf.value] = buf.offset;
    for (BlockArgument arg : func.getArguments())
      func.setArgAttr(arg.getArgNumber(), "kern.offset", b.getI64IntegerAttr(offsetOf[arg]));
    for (kern::LaunchOp l : launches) {
      SmallVector<int64_t> offs;
      for (Value r : l.getResults())
        offs.push_back(info[r]->dynamic ? -1 : stateOffset.count(r) ? stateOffset[r] : offsetOf[rootOf(r)]);
      l.setOffsetsAttr(b.getDenseI64ArrayAttr(offs));
      // Marked for readers of the IR (the runtime tells a view by its offset): nothing is launched.
      if (viewRoot.count(l.getResult(0)) || stateViewResults.contains(l.getResult(0)))
        l->setAttr("view", b.getUnitAttr());
      else
        l->removeAttr("view");
      // Marked for the writer: the results live in the host arena, and the session runs the reference kernel.
      if (hostValues.contains(l.getResult(0)))
        l->setAttr("host", b.getUnitAttr());
      else
        l->removeAttr("host");
      // Marked for readers of the IR: the result is written over an operand's slot.
      if (overwriteRoot.count(l.getResult(0)))
        l->setAttr("in_place", b.getUnitAttr());
      else
        l->removeAttr("in_place");
    }
    func->setAttr("kern.arena_bytes", b.getI64IntegerAttr(arena));
    func->setAttr("kern.host_bytes", b.getI64IntegerAttr(hostArena));
    func->setAttr("kern.state_bytes", b.getI64IntegerAttr(stateBytes));
  }
};
} // namespace
