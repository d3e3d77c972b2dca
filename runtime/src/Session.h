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
  // Runs the first specialized entry whose inputs take the shapes set (the one-token decode step), else the
  // general entry.
  int run(std::string &error);
  // Runs the named entry; an error if the inputs set do not fit it.
  int runEntry(const std::string &name, std::string &error);
  // The entry the last run ran (null before the first run).
  const Entry *lastEntry() const { return last; }
  // Zeroes the session state (the KV cache and its length): the next run starts a new sequence.
  void reset();
  const qopt::num::Tensor *output(const std::string &name) const;

private:
  const Model &model;
  std::unique_ptr<Backend> backend;
  int execute(const Entry &entry, std::string &error);
  bool fits(const Entry &entry, std::string *why) const;

  std::vector<qopt::num::Tensor> tensors; // current dtype/shape/data of every value
  // The inputs set, by their index in the general entry (every entry's inputs match them by name).
  std::vector<std::vector<uint8_t>> inputData;
  std::vector<qopt::num::Shape> inputShape;
  std::vector<bool> inputSet;
  const Entry *last = nullptr;
  // QRT_PROFILE=1: seconds and launches per kernel name, runs and launches per entry, printed to stderr when the
  // session ends.
  bool profile = false;
  std::map<std::string, std::pair<double, int64_t>> kernelTime;
  std::map<std::string, std::pair<int64_t, int64_t>> entryRuns; // entry -> complete runs, their kernel launches
};

} // namespace qrt

#endif // QRT_SESSION_H
