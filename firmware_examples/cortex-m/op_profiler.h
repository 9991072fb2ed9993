// Per-op cost from TFLite-Micro's own profiler hooks: the interpreter calls BeginEvent/EndEvent around every
// operator's Invoke (ScopedMicroProfiler in micro_interpreter_graph.cc); this profiler sums PlatformTicks() per
// op type. Off by default, so the plain timed runs carry only the hook's call overhead.
#ifndef EDGEGHOST_OP_PROFILER_H_
#define EDGEGHOST_OP_PROFILER_H_

#include <cstdint>

#include "tensorflow/lite/micro/micro_profiler_interface.h"

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr int kMaxOpTypes = 48;

  uint32_t BeginEvent(const char* tag) override;
  void EndEvent(uint32_t event_handle) override;

  void Enable(bool on) { enabled_ = on; }
  // Prints one "op NAME count=N ticks=T" line per op type, in first-seen order.
  void Print() const;

 private:
  // A static object is never deleted; without this the virtual destructor pulls in operator delete (no heap).
  void operator delete(void*) {}

  struct Entry {
    const char* tag;
    uint32_t count;
    uint32_t ticks;
  };
  Entry entries_[kMaxOpTypes] = {};
  int num_entries_ = 0;
  bool enabled_ = false;
  int open_ = -1;  // entry of the op being timed (ops do not nest in a single-subgraph model)
  uint32_t start_ = 0;
};

#endif  // EDGEGHOST_OP_PROFILER_H_
