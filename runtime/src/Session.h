//===- Session.h - running a model's program -------------------------------===//
#ifndef QRT_SESSION_H
#define QRT_SESSION_H

#include "Backend.h"

#include <map>

namespace qrt {

class Session {
public:
  Session(const Model &model, std::unique_ptr<Backend> backend);
  ~Session();
  bool prepare(std::string &error);
  // Returns 0 on success or a qrt_status_code.
  int setInput(const std::string &name, qopt::num::DType dtype, const std::vector<int64_t> &shape,
               const void *data, std::string &error);
  int run(std::string &error);
  // Zeroes the session state (the KV cache and its length): the next run starts a new sequence.
  void reset();
  const qopt::num::Tensor *output(const std::string &name) const;

private:
  const Model &model;
  std::unique_ptr<Backend> backend;
  std::vector<qopt::num::Tensor> tensors; // current dtype/shape/data of every value
  std::vector<std::vector<uint8_t>> inputData;
  std::vector<bool> inputSet;
  bool ran = false;
  // QRT_PROFILE=1: seconds and launches per kernel name, printed to stderr when the session ends.
  bool profile = false;
  std::map<std::string, std::pair<double, int64_t>> kernelTime;
  int64_t profiledRuns = 0, profiledLaunches = 0; // complete runs, and their kernel launches
};

} // namespace qrt

#endif // QRT_SESSION_H
