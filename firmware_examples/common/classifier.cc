#include "classifier.h"

#include <cstring>

#include "model_data.h"
#include "model_ops.h"
#include "model_settings.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
// Static arena sized at export from a measurement in the TFLite-Micro interpreter (see model_settings.h).
alignas(16) uint8_t tensor_arena[kTensorArenaSize];
tflite::MicroInterpreter* interpreter = nullptr;
}  // namespace

bool ClassifierSetup(tflite::MicroProfilerInterface* profiler) {
  // Read the flatbuffer in place: the weights stay in flash, nothing is copied to RAM.
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema %d != supported %d", model->version(), TFLITE_SCHEMA_VERSION);
    return false;
  }

  // Only the ops this model uses are registered, so only their kernels are linked.
  static ModelOpResolver resolver;
  if (RegisterModelOps(resolver) != kTfLiteOk) {
    MicroPrintf("op registration failed");
    return false;
  }

  // Static storage: no heap on microcontrollers, and the interpreter outlives setup.
  static tflite::MicroInterpreter static_interpreter(model, resolver, tensor_arena, kTensorArenaSize,
                                                    /*resource_variables=*/nullptr, profiler);
  interpreter = &static_interpreter;
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed: arena of %d bytes too small?", kTensorArenaSize);
    return false;
  }

  // The generated settings and the model must agree, or every later read would be wrong.
  const TfLiteTensor* input = interpreter->input(0);
  const TfLiteTensor* output = interpreter->output(0);
  constexpr TfLiteType kIoType = sizeof(ModelIo) == 1 ? kTfLiteInt8 : kTfLiteInt16;
  if (input->type != kIoType || input->bytes != kInputSize * sizeof(ModelIo) ||
      output->type != kIoType || output->bytes != kNumClasses * sizeof(ModelIo)) {
    MicroPrintf("model I/O does not match model_settings.h");
    return false;
  }
  return true;
}

bool ClassifierInvoke(const ModelIo* input, ModelIo* scores) {
  // Inputs are already in the model's quantization (int8 edgeghost exports: q = pixel - 128).
  std::memcpy(interpreter->input(0)->data.data, input, kInputSize * sizeof(ModelIo));
  if (interpreter->Invoke() != kTfLiteOk) {
    MicroPrintf("Invoke failed");
    return false;
  }
  std::memcpy(scores, interpreter->output(0)->data.data, kNumClasses * sizeof(ModelIo));
  return true;
}

size_t ClassifierArenaUsedBytes() { return interpreter->arena_used_bytes(); }

int ClassifierArgMax(const ModelIo* scores) {
  int best = 0;
  for (int i = 1; i < kNumClasses; ++i) {
    if (scores[i] > scores[best]) best = i;
  }
  return best;
}
