// Bare-metal Cortex-M firmware (QEMU mps2-an386 / mps3-an547, or a real board with a debug probe).
// Runs the test inputs embedded in test_data.cc, compares every int8 output with the TFLite-Micro Python
// interpreter's output for the same input (also embedded), prints over semihosting, and exits 0 only if
// all outputs are identical: the exit code is the test verdict.
#include "classifier.h"
#include "model_settings.h"
#include "platform.h"
#include "test_data.h"

namespace {
int mismatches = 0;
}  // namespace

// Cycle counter on, then the shared TFLM setup (ops, interpreter, arena).
bool setup() {
  PlatformInit();
  if (!ClassifierSetup()) return false;
  PlatformPrintf("arena used %u of %d bytes\n", static_cast<unsigned>(ClassifierArenaUsedBytes()),
                 kTensorArenaSize);
  return true;
}

// One input per call: read -> invoke -> report, as a sensor loop would.
bool loop(int index) {
  int8_t scores[kNumClasses];
  const uint32_t start = PlatformCycles();
  if (!ClassifierInvoke(kTestInputs[index], scores)) return false;
  const uint32_t cycles = PlatformCycles() - start;

  const int best = ClassifierArgMax(scores);
  PlatformPrintf("result %d class=%d label=%s q=", index, best, kCategoryLabels[best]);
  bool same = true;
  for (int i = 0; i < kNumClasses; ++i) {
    PlatformPrintf(i ? ",%d" : "%d", scores[i]);
    same = same && scores[i] == kTestExpected[index][i];
  }
  // Cycles only mean something on hardware; QEMU has no cycle counter and reports 0.
  PlatformPrintf(" cycles=%lu match=%d\n", static_cast<unsigned long>(cycles), same ? 1 : 0);
  if (!same) ++mismatches;
  return true;
}

int main() {
  if (!setup()) return 2;
  for (int i = 0; i < kNumTestInputs; ++i) {
    if (!loop(i)) return 2;
  }
  PlatformPrintf("%s: %d of %d outputs identical to the TFLite-Micro reference\n",
                 mismatches ? "FAIL" : "PASS", kNumTestInputs - mismatches, kNumTestInputs);
  return mismatches ? 1 : 0;
}
