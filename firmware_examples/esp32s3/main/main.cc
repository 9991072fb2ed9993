// ESP32-S3 firmware (ESP-IDF + esp-tflite-micro with ESP-NN): runs the embedded test inputs in a loop and
// prints class, raw scores and CPU cycles per inference on the serial console.
#include <cstdio>

#include "classifier.h"
#include "esp_cpu.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "model_settings.h"
#include "test_data.h"

namespace {
int next_input = 0;
}  // namespace

// Interpreter, exactly the model's ops and the arena measured at export.
bool setup() {
  if (!ClassifierSetup()) return false;
  printf("arena used %u of %d bytes\n", static_cast<unsigned>(ClassifierArenaUsedBytes()), kTensorArenaSize);
  return true;
}

// One input per call: read -> invoke -> report.
void loop() {
  ModelIo scores[kNumClasses];
  const uint32_t start = esp_cpu_get_cycle_count();
  if (!ClassifierInvoke(kTestInputs[next_input], scores)) return;
  const uint32_t cycles = esp_cpu_get_cycle_count() - start;

  // ESP-NN kernels are optimized rewrites: compare with the reference outputs, but expect rare 1-LSB differences.
  int differing = 0;
  for (int i = 0; i < kNumClasses; ++i) differing += scores[i] != kTestExpected[next_input][i];
  const int best = ClassifierArgMax(scores);
  printf("result %d class=%d label=%s q=", next_input, best, kCategoryLabels[best]);
  for (int i = 0; i < kNumClasses; ++i) printf(i ? ",%d" : "%d", scores[i]);
  printf(" cycles=%lu differing=%d\n", static_cast<unsigned long>(cycles), differing);
  next_input = (next_input + 1) % kNumTestInputs;
}

extern "C" void app_main(void) {
  if (!setup()) {
    printf("setup failed\n");
    return;
  }
  while (true) {
    loop();
    vTaskDelay(pdMS_TO_TICKS(1000));  // one result per second on the console; also feeds the task watchdog
  }
}
