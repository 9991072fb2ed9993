// Arm MPS2/MPS3 boards under QEMU (or any core with a debugger attached): console and exit code by semihosting.
#include "board.h"
#include "semihosting.h"

void BoardInit() {}

void BoardWrite(const char* text) { Semihost(kSysWrite0, text); }

int BoardReadChar() { return Semihost(kSysReadc, nullptr); }

void BoardExit(int code) {
  SemihostExit(code);  // the exit code itself, not just "stopped", so CI sees pass/fail
  for (;;) {
  }
}

uint32_t BoardClockHz() { return 0; }  // the FPGA image sets it; edgeghost knows it per QEMU machine

const char* BoardClockSource() { return "board"; }
