// MLPerf Tiny console and clock on a bare-metal board (STM32 targets): the USART of the board layer and the
// SysTick timer, which counts processor cycles; microseconds at the clock the board code set up.
#include <cstdarg>

#include "platform.h"
#include "submitter_implemented.h"

namespace {
uint64_t total = 0;  // ticks since th_timestamp_initialize
uint32_t last = 0;
}  // namespace

// Clocks, console and the tick timer (the board layer under platform.cc).
void th_serialport_initialize() { PlatformInit(); }

void th_timestamp_initialize() {
  total = 0;
  last = PlatformTicks();
}

uint32_t th_timestamp() {
  // The 32-bit tick count wraps every 2^32 cycles (24 s at 180 MHz): accumulate differences in 64 bits, which
  // holds while the runner asks at least that often (it asks before and after every timed window).
  const uint32_t now = PlatformTicks();
  total += static_cast<uint32_t>(now - last);
  last = now;
  const uint32_t mhz = PlatformClockHz() / 1000000;
  const uint32_t us = static_cast<uint32_t>(total / (mhz ? mhz : 1));
  th_printf("m-lap-us-%lu\r\n", static_cast<unsigned long>(us));
  return us;
}

void th_printf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  PlatformVPrintf(format, args);
  va_end(args);
}

int th_getchar() { return PlatformReadChar(); }
