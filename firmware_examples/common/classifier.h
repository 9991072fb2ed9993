// The model-independent core every edgeghost firmware shares: TFLite-Micro set up over the generated model.
// Targets only add their seams (where images come from, where results go, how time is read).
#ifndef EDGEGHOST_CLASSIFIER_H_
#define EDGEGHOST_CLASSIFIER_H_

#include <cstddef>
#include <cstdint>

#include "model_settings.h"  // ModelIo: the model's raw input/output type (int8_t, or int16_t for int16x8)

namespace tflite {
class MicroProfilerInterface;
}  // namespace tflite

// Maps the model, registers exactly its ops and allocates tensors in the static arena; `profiler` (optional)
// receives TFLite-Micro's per-op BeginEvent/EndEvent calls.
// Returns false after logging why (bad schema version, op registration, arena too small, wrong I/O shape).
bool ClassifierSetup(tflite::MicroProfilerInterface* profiler = nullptr);

// Runs one raw input of kInputSize elements and copies the kNumClasses raw scores into `scores`.
bool ClassifierInvoke(const ModelIo* input, ModelIo* scores);

// Bytes of the arena the interpreter actually used (valid after ClassifierSetup).
size_t ClassifierArenaUsedBytes();

// Index of the highest score (first one on ties, like numpy.argmax).
int ClassifierArgMax(const ModelIo* scores);

#endif  // EDGEGHOST_CLASSIFIER_H_
