// Arm MPS2/MPS3 boards under QEMU (or any core with a debugger attached): console and exit code by semihosting.
#include "board.h"

namespace {
// Semihosting operations (Arm "Semihosting for AArch32 and AArch64", v2).
constexpr int kSysWrite0 = 0x04;
constexpr int kSysReadc = 0x07;
constexpr int kSysExitExtended = 0x20;
constexpr uint32_t kApplicationExit = 0x20026;

// BKPT 0xAB is the M-profile semihosting trap; the debugger or QEMU services it and returns in r0.
int Semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
}  // namespace

void BoardInit() {}

void BoardWrite(const char* text) { Semihost(kSysWrite0, text); }

int BoardReadChar() { return Semihost(kSysReadc, nullptr); }

void BoardExit(int code) {
  // The extended form carries the exit code itself, not just "stopped", so CI sees pass/fail.
  const uint32_t block[2] = {kApplicationExit, static_cast<uint32_t>(code)};
  Semihost(kSysExitExtended, block);
  for (;;) {
  }
}

uint32_t BoardClockHz() { return 0; }  // the FPGA image sets it; edgeghost knows it per QEMU machine

const char* BoardClockSource() { return "board"; }
