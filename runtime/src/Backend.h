//===- Backend.h - the runtime's device interface --------------------------===//
//
// A backend owns device memory (the arena, the session state and the weights' device copies) and launches kernels by name. The
// session, shared by all backends, walks the program, computes every value's shape with the kernels' shape
// functions on the host, checks it against the plan, and asks the backend to launch. The CPU backend is the
// first implementation and the numeric reference; a CUDA backend implements the same interface with its own
// kernel table.
//
//===----------------------------------------------------------------------===//
#ifndef QRT_BACKEND_H
#define QRT_BACKEND_H

#include "Model.h"

#include <memory>
#include <string>

namespace qrt {

class Backend {
public:
  virtual ~Backend() = default;
  virtual const char *name() const = 0;
  // Allocates the arena and makes weights addressable; called once per session.
  virtual bool prepare(const Model &model, std::string &error) = 0;
  virtual uint8_t *arena() = 0;
  // The session's state memory (model.stateBytes, Storage::State values), kept between runs; zero after prepare.
  virtual uint8_t *state() = 0;
  // Zeroes the state (qrt_session_reset).
  virtual void resetState() = 0;
  // Memory for value `id` whose size is only known at run time (Storage::Dynamic); valid until the next call
  // for the same id. Null if it cannot be allocated.
  virtual uint8_t *dynamicBuffer(uint32_t id, size_t bytes) = 0;
  virtual const void *weightData(const Model &model, const Value &value) = 0;
  // Runs one instruction whose operands' shapes are already inferred and whose outputs point into the arena.
  virtual bool launch(const Instr &instr, qopt::num::KernelArgs &args, std::string &error) = 0;
};

std::unique_ptr<Backend> createCpuBackend(int numThreads);

} // namespace qrt

#endif // QRT_BACKEND_H
