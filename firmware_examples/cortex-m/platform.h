// The hardware seam of the bare-metal targets: text out, exit code, cycle counter. Semihosting carries the
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

// Cycles since PlatformInit from the DWT counter; 0 where the core or emulator has none (QEMU).
uint32_t PlatformCycles();

// Starts the cycle counter.
void PlatformInit();

#endif  // EDGEGHOST_PLATFORM_H_
