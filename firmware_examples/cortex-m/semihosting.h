// Arm semihosting (Arm "Semihosting for AArch32 and AArch64", v2): the M-profile trap and the calls edgeghost
// uses. Shared by the MPS boards' console (board_semihosting.cc) and the emulator-build exit of board_stm32.cc.
#ifndef EDGEGHOST_SEMIHOSTING_H_
#define EDGEGHOST_SEMIHOSTING_H_

#include <cstdint>

constexpr int kSysWrite0 = 0x04;
constexpr int kSysReadc = 0x07;
constexpr int kSysExitExtended = 0x20;
constexpr uint32_t kApplicationExit = 0x20026;  // ADP_Stopped_ApplicationExit

// BKPT 0xAB is the M-profile semihosting trap; the debugger or QEMU services it and returns in r0.
inline int Semihost(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

// Ends the program with `code` as the emulator's exit status (the extended form carries the code itself).
inline void SemihostExit(int code) {
  const uint32_t block[2] = {kApplicationExit, static_cast<uint32_t>(code)};
  Semihost(kSysExitExtended, block);
}

#endif  // EDGEGHOST_SEMIHOSTING_H_
