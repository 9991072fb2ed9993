// Arduino sketch (Arduino TFLite-Micro library, e.g. Nano 33 BLE Sense): runs the embedded test inputs in a
// loop and prints class, raw scores and microseconds per inference on Serial.
#include <TensorFlowLite.h>  // makes the Arduino builder add the TFLM library (headers used by classifier.cpp)

#include "classifier.h"
#include "model_settings.h"
#include "test_data.h"

namespace {
bool ready = false;
int next_input = 0;
}  // namespace

// Serial first (errors are reported there), then interpreter, ops and the arena measured at export.
void setup() {
  Serial.begin(115200);
  while (!Serial) {
  }
  ready = ClassifierSetup();
  if (!ready) {
    Serial.println("setup failed");
    return;
  }
  Serial.print("arena used ");
  Serial.print(static_cast<unsigned long>(ClassifierArenaUsedBytes()));
  Serial.print(" of ");
  Serial.println(kTensorArenaSize);
}

// One input per call: read -> invoke -> report, then wait a second.
void loop() {
  if (!ready) return;
  ModelIo scores[kNumClasses];
  const unsigned long start = micros();
  if (!ClassifierInvoke(kTestInputs[next_input], scores)) return;
  const unsigned long us = micros() - start;

  // Reference kernels (or CMSIS-NN on Arm boards) should reproduce the embedded outputs exactly.
  int differing = 0;
  for (int i = 0; i < kNumClasses; ++i) differing += scores[i] != kTestExpected[next_input][i];
  const int best = ClassifierArgMax(scores);
  Serial.print("result ");
  Serial.print(next_input);
  Serial.print(" class=");
  Serial.print(best);
  Serial.print(" label=");
  Serial.print(kCategoryLabels[best]);
  Serial.print(" q=");
  for (int i = 0; i < kNumClasses; ++i) {
    if (i) Serial.print(",");
    Serial.print(scores[i]);
  }
  Serial.print(" us=");
  Serial.print(us);
  Serial.print(" differing=");
  Serial.println(differing);
  next_input = (next_input + 1) % kNumTestInputs;
  delay(1000);
}
