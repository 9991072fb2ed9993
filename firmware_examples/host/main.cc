// Host (Linux) firmware: the same TFLite-Micro classifier as on the microcontroller, fed from a file.
//   usage: edgeghost_fw IMAGES.bin
// IMAGES.bin holds N raw inputs of kInputSize ModelIo elements each (int8 edgeghost models: pixel - 128, NHWC).
// Prints one "result" line per image: class, label, raw scores, dequantized scores, time.
#include <chrono>
#include <cstdio>
#include <vector>

#include "classifier.h"
#include "model_settings.h"

namespace {
std::vector<ModelIo> images;
int num_images = 0;
int next_image = 0;
}  // namespace

// Reads every input once up front, so the timed loop measures inference only.
bool setup(const char* path) {
  FILE* f = std::fopen(path, "rb");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot open %s\n", path);
    return false;
  }
  std::fseek(f, 0, SEEK_END);
  const long bytes = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  const long input_bytes = static_cast<long>(kInputSize * sizeof(ModelIo));
  if (bytes <= 0 || bytes % input_bytes != 0) {
    std::fprintf(stderr, "%s: %ld bytes is not a multiple of the input size %ld\n", path, bytes, input_bytes);
    std::fclose(f);
    return false;
  }
  images.resize(bytes / sizeof(ModelIo));
  const size_t got = std::fread(images.data(), 1, bytes, f);
  std::fclose(f);
  if (got != static_cast<size_t>(bytes)) return false;
  num_images = static_cast<int>(bytes / input_bytes);
  // Interpreter, ops and arena: the part shared with every microcontroller target.
  if (!ClassifierSetup()) return false;
  std::printf("arena used %zu of %d bytes\n", ClassifierArenaUsedBytes(), kTensorArenaSize);
  return true;
}

// One image per call: input -> invoke -> report, like a sensor loop on a board.
bool loop() {
  ModelIo scores[kNumClasses];
  const ModelIo* input = images.data() + static_cast<size_t>(next_image) * kInputSize;
  const auto start = std::chrono::steady_clock::now();
  if (!ClassifierInvoke(input, scores)) return false;
  const auto stop = std::chrono::steady_clock::now();
  const double us = std::chrono::duration<double, std::micro>(stop - start).count();

  const int best = ClassifierArgMax(scores);
  std::printf("result %d class=%d label=%s q=", next_image, best, kCategoryLabels[best]);
  for (int i = 0; i < kNumClasses; ++i) std::printf(i ? ",%d" : "%d", scores[i]);
  // Dequantize with the output's own scale/zero-point so the scores read as the float model's logits.
  std::printf(" scores=");
  for (int i = 0; i < kNumClasses; ++i) {
    std::printf(i ? ",%.4f" : "%.4f", kOutputScale * (scores[i] - kOutputZeroPoint));
  }
  std::printf(" us=%.1f\n", us);
  ++next_image;
  return true;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s IMAGES.bin\n", argv[0]);
    return 2;
  }
  if (!setup(argv[1])) return 1;
  while (next_image < num_images) {
    if (!loop()) return 1;
  }
  return 0;
}
