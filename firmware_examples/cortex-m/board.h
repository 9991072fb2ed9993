// The board seam under platform.cc: clocks, text out/in and how a run ends. One board_*.cc file is compiled per
// project (the generator copies only the chosen board's file):
//   board_semihosting.cc  Arm MPS2/MPS3 FPGA boards under QEMU: text and exit code through semihosting.
//   board_stm32.cc        STM32F405 / STM32F446 / STM32L4R5: register-level clock set-up, the ST-LINK virtual COM
//                         port USART at 115200 8N1, and (emulator builds only) a semihosting exit.
#ifndef EDGEGHOST_BOARD_H_
#define EDGEGHOST_BOARD_H_

#include <cstdint>

// Clock tree and console; called first by PlatformInit.
void BoardInit();

// Writes a NUL-terminated string to the console.
void BoardWrite(const char* text);

// Blocks for the next console byte; -1 where the board has no console input.
int BoardReadChar();

// Ends the run. `code` becomes QEMU's exit status where the build can tell the emulator (semihosting); on a
// board without a debugger the core sleeps after the last line (the verdict) has gone out.
[[noreturn]] void BoardExit(int code);

// The processor clock this code set up, in Hz (0: set by the board itself, not known to the firmware).
uint32_t BoardClockHz();

// How the clock came about, e.g. "pll" or "hsi (pll did not lock)".
const char* BoardClockSource();

#endif  // EDGEGHOST_BOARD_H_
