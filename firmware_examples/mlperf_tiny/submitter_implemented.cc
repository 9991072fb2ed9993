// The MLPerf Tiny submitter functions over the edgeghost classifier (shared TFLM setup, generated model).
#include "submitter_implemented.h"

#include "classifier.h"
#include "model_settings.h"

namespace {
int8_t input[kInputSize];
int8_t scores[kNumClasses];
}  // namespace

void th_final_initialize() {
  // Same setup as every edgeghost firmware: exactly the model's ops, arena size measured at export.
  if (!ClassifierSetup()) th_printf("e-[TFLite-Micro setup failed]\r\n");
}

void th_load_tensor() {
  // The runner sends uint8 pixels; the int8 model takes q = pixel - 128 (input scale 1, zero-point -128).
  uint8_t pixels[kInputSize];
  const size_t got = ee_get_buffer(pixels, sizeof(pixels));
  if (got != sizeof(pixels)) {
    th_printf("e-[expected %d input bytes, got %u]\r\n", kInputSize, static_cast<unsigned>(got));
    return;
  }
  for (int i = 0; i < kInputSize; ++i) input[i] = static_cast<int8_t>(pixels[i] - 128);
}

void th_infer() {
  if (!ClassifierInvoke(input, scores)) th_printf("e-[Invoke failed]\r\n");
}

void th_results() {
  // Dequantized with the output's own scale/zero-point, so the runner sees the model's real scores.
  // Three decimals in integer arithmetic: newlib-nano's printf on the boards has no %f.
  th_printf("m-results-[");
  for (int i = 0; i < kNumClasses; ++i) {
    const float value = kOutputScale * (scores[i] - kOutputZeroPoint);
    const long milli = static_cast<long>(value * 1000.0f + (value < 0 ? -0.5f : 0.5f));
    const long whole = (milli < 0 ? -milli : milli) / 1000, frac = (milli < 0 ? -milli : milli) % 1000;
    th_printf("%s%s%ld.%03ld", i ? "," : "", milli < 0 ? "-" : "", whole, frac);
  }
  th_printf("]\r\n");
}
