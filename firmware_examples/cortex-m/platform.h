// The hardware seam of the bare-metal targets: console, exit code, clock, timer, cycle counter. The board layer
// (board.h) carries console and exit: semihosting on the MPS boards, the USART on STM32 boards. The rest of the
// firmware never touches hardware directly.
#ifndef EDGEGHOST_PLATFORM_H_
#define EDGEGHOST_PLATFORM_H_

#include <cstdarg>
#include <cstdint>

// Prints a NUL-terminated string on the console.
void PlatformPrint(const char* text);

// printf-style convenience over PlatformPrint (integers and strings; no floats, to keep newlib-nano small).
void PlatformPrintf(const char* format, ...);
void PlatformVPrintf(const char* format, va_list args);

// Ends the program; under QEMU `code` becomes the emulator's exit status.
[[noreturn]] void PlatformExit(int code);

// Blocks for the next console byte (-1 where there is no console input).
int PlatformReadChar();

// The processor clock the board code set up (0 where the board sets it) and how it came about.
uint32_t PlatformClockHz();
const char* PlatformClockSource();

// Sets up clocks and console, then starts the cycle counter and the tick timer.
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
