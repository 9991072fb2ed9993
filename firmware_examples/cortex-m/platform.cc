// SysTick tick timer, DWT cycle counter, console and exit over the board layer (board.h), TFLite-Micro's
// logging/time hooks and the newlib system calls for bare-metal Cortex-M.
#include "platform.h"

#include <cstdarg>
#include <cstdio>

#include "board.h"

#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_time.h"

namespace {
// Cortex-M debug registers for the cycle counter.
volatile uint32_t* const kDemcr = reinterpret_cast<volatile uint32_t*>(0xE000EDFC);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<volatile uint32_t*>(0xE0001000);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<volatile uint32_t*>(0xE0001004);

// SysTick (Armv7-M/Armv8-M architecture manuals, "SysTick"): the same addresses on every Cortex-M core.
volatile uint32_t* const kSysTickCsr = reinterpret_cast<volatile uint32_t*>(0xE000E010);
volatile uint32_t* const kSysTickRvr = reinterpret_cast<volatile uint32_t*>(0xE000E014);
volatile uint32_t* const kSysTickCvr = reinterpret_cast<volatile uint32_t*>(0xE000E018);
volatile uint32_t* const kIcsr = reinterpret_cast<volatile uint32_t*>(0xE000ED04);
constexpr uint32_t kSysTickMask = 0x00FFFFFF;  // 24-bit down-counter
constexpr uint32_t kPendSysTick = 1u << 26;    // ICSR.PENDSTSET
volatile uint32_t systick_wraps = 0;

}  // namespace

void PlatformPrint(const char* text) { BoardWrite(text); }

void PlatformVPrintf(const char* format, va_list args) {
  char line[256];
  vsnprintf(line, sizeof(line), format, args);
  PlatformPrint(line);
}

void PlatformPrintf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  PlatformVPrintf(format, args);
  va_end(args);
}

void PlatformExit(int code) { BoardExit(code); }

int PlatformReadChar() { return BoardReadChar(); }

uint32_t PlatformClockHz() { return BoardClockHz(); }

const char* PlatformClockSource() { return BoardClockSource(); }

void PlatformInit() {
  BoardInit();  // clocks and console first: everything after may print
  *kDemcr |= 1u << 24;  // TRCENA: power the DWT unit
  *kDwtCyccnt = 0;
  *kDwtCtrl |= 1u;  // CYCCNTENA
  // SysTick from the processor clock (CLKSOURCE=1), wrap interrupt on (TICKINT), counting (ENABLE).
  *kSysTickRvr = kSysTickMask;
  *kSysTickCvr = 0;
  *kSysTickCsr = 0x7;
  // A cleared counter reads 0 until its first reload (one tick later): wait, or the first reading would look
  // like a full period already elapsed.
  while (*kSysTickCvr == 0) {
  }
}

uint32_t PlatformCycles() { return *kDwtCyccnt; }

// One wrap every 2^24 ticks (0.67 s at 25 MHz): a handful of instructions per wrap, negligible in any count.
extern "C" void SysTick_Handler() { systick_wraps = systick_wraps + 1; }

uint32_t PlatformTicks() {
  uint32_t wraps, value, pending;
  do {  // re-read if the wrap interrupt ran in between
    wraps = systick_wraps;
    value = *kSysTickCvr;
    pending = *kIcsr & kPendSysTick;
  } while (wraps != systick_wraps);
  const uint32_t elapsed = kSysTickMask - value;
  // Wrapped but its interrupt not yet taken: the count restarted, so add the wrap here.
  if (pending && elapsed < (kSysTickMask >> 1)) ++wraps;
  return wraps * (kSysTickMask + 1) + elapsed;
}

void PlatformCalibrationLoop(uint32_t iterations) {
  __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(iterations) : : "cc");
}

// TFLite-Micro's logging goes to the same console.
extern "C" void DebugLog(const char* format, va_list args) { PlatformVPrintf(format, args); }

extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format, va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}

namespace tflite {
uint32_t ticks_per_second() { return 0; }  // the clock is board-specific; edgeghost converts ticks on the host
uint32_t GetCurrentTimeTicks() { return PlatformTicks(); }
}  // namespace tflite

// C entry points for startup.c.
extern "C" void PlatformPrintC(const char* text) { PlatformPrint(text); }
extern "C" void PlatformExitC(int code) { PlatformExit(code); }

// The newlib system calls the linked code can reach. There are no files or processes: stdio goes through
// PlatformPrint instead, and static destructors never run (main's return ends the program).
extern "C" {
void* __dso_handle = nullptr;
extern char __heap_start__, __heap_end__;
void* _sbrk(int increment) {
  static char* brk = &__heap_start__;
  if (brk + increment > &__heap_end__) return reinterpret_cast<void*>(-1);
  char* old = brk;
  brk += increment;
  return old;
}
void _exit(int code) { PlatformExit(code); }
int _kill(int, int) { return -1; }
int _getpid() { return 1; }
int _write(int, const char* data, int length) {
  // The console takes terminated strings; print in chunks.
  char chunk[65];
  for (int done = 0; done < length;) {
    int n = length - done < 64 ? length - done : 64;
    for (int i = 0; i < n; ++i) chunk[i] = data[done + i];
    chunk[n] = '\0';
    PlatformPrint(chunk);
    done += n;
  }
  return length;
}
int _read(int, char*, int) { return -1; }
int _close(int) { return -1; }
int _lseek(int, int, int) { return -1; }
int _isatty(int) { return 1; }
struct stat;
int _fstat(int, struct stat*) { return -1; }
}
