// The hardware seam of the bare-metal targets: text out, exit code, timer, cycle counter. Semihosting carries the
// first two to the host (QEMU or a debug probe); the rest of the firmware never touches hardware directly.
#ifndef EDGEGHOST_PLATFORM_H_
#define EDGEGHOST_PLATFORM_H_

#include <cstdint>

// Prints a NUL-terminated string on the host's stdout.
void PlatformPrint(const char* text);

// printf-style convenience over PlatformPrint (integers and strings; no floats, to keep newlib-nano small).
void PlatformPrintf(const char* format, ...);

// Ends the program; under QEMU `code` becomes the emulator's exit status.
[[noreturn]] void PlatformExit(int code);

// Starts the cycle counter and the tick timer.
void PlatformInit();

// Cycles since PlatformInit from the DWT counter; 0 where the core or emulator has none (QEMU).
uint32_t PlatformCycles();

// Ticks of the core's SysTick timer, clocked by the processor clock, extended to 32 bits by counting its 24-bit
// wraps in an interrupt. Under `qemu-system-arm -icount shift=0` every guest instruction advances virtual time by
// 1 ns, so ticks × (1e9 / clock Hz) counts instructions; on hardware it counts cycles like the DWT counter.
uint32_t PlatformTicks();

// A loop of exactly 2 × `iterations` instructions (subs + bne), for calibrating ticks against instructions.
void PlatformCalibrationLoop(uint32_t iterations);

#endif  // EDGEGHOST_PLATFORM_H_
