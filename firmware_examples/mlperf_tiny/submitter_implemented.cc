// The MLPerf Tiny submitter functions over the edgeghost classifier (shared TFLM setup, generated model).
#include "submitter_implemented.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>

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
  th_printf("m-results-[");
  for (int i = 0; i < kNumClasses; ++i) {
    th_printf(i ? ",%0.3f" : "%0.3f", kOutputScale * (scores[i] - kOutputZeroPoint));
  }
  th_printf("]\r\n");
}

uint32_t th_timestamp() {
  // Performance mode: the device reports its own microsecond clock (a board would read a hardware timer).
  static const auto start = std::chrono::steady_clock::now();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  const uint32_t now = static_cast<uint32_t>(us.count());
  th_printf("m-lap-us-%lu\r\n", static_cast<unsigned long>(now));
  return now;
}

void th_printf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::fflush(stdout);  // the runner waits for each line
}
