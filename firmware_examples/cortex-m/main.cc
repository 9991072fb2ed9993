// Bare-metal Cortex-M firmware (QEMU mps2/mps3 and netduinoplus2 machines, STM32 NUCLEO boards).
// Runs the test inputs embedded in test_data.cc, compares every raw output with the TFLite-Micro Python
// interpreter's output for the same input (also embedded), prints on the console (semihosting or the board's
// USART), and exits 0 only if
// all outputs are identical: the exit code is the test verdict. It also reports what each inference costs in
// ticks of the core's SysTick timer (instructions under `qemu-system-arm -icount shift=0`, cycles on hardware),
// a calibration of those ticks against a loop of known length, and a per-op profile of one extra inference.
#include "classifier.h"
#include "model_settings.h"
#include "op_profiler.h"
#include "platform.h"
#include "test_data.h"

namespace {
int mismatches = 0;
OpProfiler profiler;
constexpr uint32_t kCalibrationIterations = 100000;  // 2 instructions each

uint32_t TimeLoop(uint32_t iterations) {
  const uint32_t start = PlatformTicks();
  PlatformCalibrationLoop(iterations);
  return PlatformTicks() - start;
}
}  // namespace

// Timer and cycle counter on, calibration, then the shared TFLM setup (ops, interpreter, arena, profiler).
bool setup() {
  PlatformInit();
  // ticks are cycles of this clock on hardware (QEMU's SysTick runs at its machine's fixed clock instead).
  PlatformPrintf("clock hz=%lu source=%s\n", static_cast<unsigned long>(PlatformClockHz()), PlatformClockSource());
  // Two loop lengths: their difference is exactly 2 × kCalibrationIterations instructions, call overhead cancels.
  const uint32_t one = TimeLoop(kCalibrationIterations);
  const uint32_t two = TimeLoop(2 * kCalibrationIterations);
  PlatformPrintf("calibration instructions=%lu ticks=%lu\n", static_cast<unsigned long>(2 * kCalibrationIterations),
                 static_cast<unsigned long>(two - one));
  if (!ClassifierSetup(&profiler)) return false;
  PlatformPrintf("arena used %u of %d bytes\n", static_cast<unsigned>(ClassifierArenaUsedBytes()),
                 kTensorArenaSize);
  return true;
}

// One input per call: read -> invoke -> report, as a sensor loop would.
bool loop(int index) {
  ModelIo scores[kNumClasses];
  const uint32_t start_cycles = PlatformCycles();
  const uint32_t start_ticks = PlatformTicks();
  if (!ClassifierInvoke(kTestInputs[index], scores)) return false;
  const uint32_t ticks = PlatformTicks() - start_ticks;
  const uint32_t cycles = PlatformCycles() - start_cycles;

  const int best = ClassifierArgMax(scores);
  PlatformPrintf("result %d class=%d label=%s q=", index, best, kCategoryLabels[best]);
  bool same = true;
  for (int i = 0; i < kNumClasses; ++i) {
    PlatformPrintf(i ? ",%d" : "%d", scores[i]);
    same = same && scores[i] == kTestExpected[index][i];
  }
  // DWT cycles only mean something on hardware; QEMU has no cycle counter and reports 0.
  PlatformPrintf(" ticks=%lu cycles=%lu match=%d\n", static_cast<unsigned long>(ticks),
                 static_cast<unsigned long>(cycles), same ? 1 : 0);
  if (!same) ++mismatches;
  return true;
}

// One more inference of the first input with the profiler on: ticks per op type, and the whole for comparison.
bool profile() {
  ModelIo scores[kNumClasses];
  profiler.Enable(true);
  const uint32_t start = PlatformTicks();
  const bool ok = ClassifierInvoke(kTestInputs[0], scores);
  const uint32_t ticks = PlatformTicks() - start;
  profiler.Enable(false);
  if (!ok) return false;
  PlatformPrintf("profile input=0 ticks=%lu\n", static_cast<unsigned long>(ticks));
  profiler.Print();
  return true;
}

int main() {
  if (!setup()) return 2;
  for (int i = 0; i < kNumTestInputs; ++i) {
    if (!loop(i)) return 2;
  }
  if (!profile()) return 2;
  PlatformPrintf("%s: %d of %d outputs identical to the TFLite-Micro reference\n",
                 mismatches ? "FAIL" : "PASS", kNumTestInputs - mismatches, kNumTestInputs);
  return mismatches ? 1 : 0;
}
