// STM32 boards, register level (no vendor HAL): clock tree from the internal 16 MHz HSI through the main PLL to
// the documented top speed, flash wait states and caches, and the ST-LINK virtual COM port at 115200 8N1.
//
//   EDGEGHOST_STM32F405  STM32F405 (Netduino Plus 2; QEMU `netduinoplus2`): 168 MHz, USART1 (PA9/PA10)   RM0090
//   EDGEGHOST_STM32F446  STM32F446RE (NUCLEO-F446RE): 180 MHz with over-drive, USART2 (PA2/PA3)           RM0390
//   EDGEGHOST_STM32L4R5  STM32L4R5ZI (NUCLEO-L4R5ZI): 120 MHz in range-1 boost, LPUART1 (PG7/PG8)         RM0432
//   EDGEGHOST_SEMIHOSTING_EXIT  end the run with a semihosting exit (emulator builds: QEMU's exit status)
//
// Every wait for a ready flag is bounded: a clock that does not come up (an emulator that models no RCC, a
// broken crystal) leaves the core on its reset clock, and BoardClockSource() says so in the firmware's log.
#include "board.h"
#include "semihosting.h"

namespace {

inline volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

// True once (reg & mask) == value; false after ~1e5 polls (milliseconds on hardware).
bool WaitFor(uint32_t address, uint32_t mask, uint32_t value) {
  for (int i = 0; i < 100000; ++i) {
    if ((Reg(address) & mask) == value) return true;
  }
  return false;
}

constexpr uint32_t kBaud = 115200;
uint32_t clock_hz = 16000000;  // every one of these chips can run from the 16 MHz HSI
const char* clock_source = "hsi";
uint32_t console_clock_hz = 16000000;  // the USART's bus clock (APB1/APB2) after ClockInit

#if defined(EDGEGHOST_STM32F405) || defined(EDGEGHOST_STM32F446)
// --- STM32F4 (RM0090 / RM0390) --------------------------------------------------------------------------------
constexpr uint32_t kRcc = 0x40023800, kPwr = 0x40007000, kFlash = 0x40023C00, kGpioA = 0x40020000;
constexpr uint32_t RCC_CR = kRcc + 0x00, RCC_PLLCFGR = kRcc + 0x04, RCC_CFGR = kRcc + 0x08;
constexpr uint32_t RCC_AHB1ENR = kRcc + 0x30, RCC_APB1ENR = kRcc + 0x40, RCC_APB2ENR = kRcc + 0x44;
constexpr uint32_t PWR_CR = kPwr + 0x00, PWR_CSR = kPwr + 0x04, FLASH_ACR = kFlash + 0x00;
constexpr uint32_t GPIO_MODER = 0x00, GPIO_OSPEEDR = 0x08, GPIO_AFRL = 0x20, GPIO_AFRH = 0x24;
#if defined(EDGEGHOST_STM32F405)
constexpr uint32_t kTargetHz = 168000000, kPllN = 168;  // HSI/8 = 2 MHz; ×168 = 336 MHz VCO; /2 = 168 MHz
constexpr uint32_t kUsart = 0x40011000;                  // USART1 on APB2 (PA9 TX, PA10 RX, AF7)
constexpr int kTxPin = 9, kRxPin = 10;
#else
constexpr uint32_t kTargetHz = 180000000, kPllN = 180;  // HSI/8 = 2 MHz; ×180 = 360 MHz VCO; /2 = 180 MHz
constexpr uint32_t kUsart = 0x40004400;                  // USART2 on APB1: the NUCLEO's ST-LINK VCP (PA2/PA3, AF7)
constexpr int kTxPin = 2, kRxPin = 3;
#endif
constexpr uint32_t USART_SR = kUsart + 0x00, USART_DR = kUsart + 0x04, USART_BRR = kUsart + 0x08,
                   USART_CR1 = kUsart + 0x0C;

void ClockInit() {
  Reg(RCC_APB1ENR) |= 1u << 28;  // PWREN
  Reg(PWR_CR) |= 3u << 14;       // VOS: scale 1 (F405 has only bit 14; bit 15 is reserved there and reads 0)
  Reg(RCC_CR) |= 1u << 0;        // HSION (on after reset; kept explicit)
  if (!WaitFor(RCC_CR, 1u << 1, 1u << 1)) {
    clock_source = "hsi (HSIRDY never set: no clock control modelled)";
    return;
  }
  // PLLSRC = HSI (bit 22 = 0), PLLM = 8, PLLN, PLLP = /2 (00), PLLQ = 7 (48 MHz class for USB at 168 MHz);
  // PLLR = 2 on the F446 (bits 30:28, reserved on the F405).
  uint32_t pllcfgr = (8u << 0) | (kPllN << 6) | (0u << 16) | (7u << 24);
#if defined(EDGEGHOST_STM32F446)
  pllcfgr |= 2u << 28;
#endif
  Reg(RCC_PLLCFGR) = pllcfgr;
  Reg(RCC_CR) |= 1u << 24;  // PLLON
  if (!WaitFor(RCC_CR, 1u << 25, 1u << 25)) {
    clock_source = "hsi (PLL did not lock)";
    return;
  }
#if defined(EDGEGHOST_STM32F446)
  // Above 168 MHz the F446 needs over-drive (RM0390 5.1.4): ODEN, wait ODRDY, ODSWEN, wait ODSWRDY.
  Reg(PWR_CR) |= 1u << 16;
  if (!WaitFor(PWR_CSR, 1u << 16, 1u << 16)) {
    clock_source = "hsi (over-drive not ready)";
    return;
  }
  Reg(PWR_CR) |= 1u << 17;
  if (!WaitFor(PWR_CSR, 1u << 17, 1u << 17)) {
    clock_source = "hsi (over-drive switch not ready)";
    return;
  }
#endif
  // 5 wait states for 150–180 MHz at 2.7–3.6 V; prefetch, instruction and data caches on (the ART accelerator).
  Reg(FLASH_ACR) = 5u | (1u << 8) | (1u << 9) | (1u << 10);
  if (!WaitFor(FLASH_ACR, 0xFu, 5u)) {
    clock_source = "hsi (flash latency not accepted)";
    return;
  }
  // AHB /1, APB1 /4 (PPRE1 = 101), APB2 /2 (PPRE2 = 100), then SYSCLK = PLL (SW = 10) and wait for SWS = 10.
  Reg(RCC_CFGR) = (Reg(RCC_CFGR) & ~0xFCF3u) | (5u << 10) | (4u << 13) | 2u;
  if (!WaitFor(RCC_CFGR, 3u << 2, 2u << 2)) {
    clock_source = "hsi (switch to PLL not confirmed)";
    return;
  }
  clock_hz = kTargetHz;
  clock_source = "pll";
  console_clock_hz = kUsart == 0x40011000 ? kTargetHz / 2 : kTargetHz / 4;  // APB2 /2 or APB1 /4
}

void ConsoleInit() {
  Reg(RCC_AHB1ENR) |= 1u << 0;  // GPIOA
  if (kUsart == 0x40011000) Reg(RCC_APB2ENR) |= 1u << 4;   // USART1EN
  else Reg(RCC_APB1ENR) |= 1u << 17;                        // USART2EN
  __asm__ volatile("dsb");
  const int pins[] = {kTxPin, kRxPin};
  for (int pin : pins) {
    Reg(kGpioA + GPIO_MODER) = (Reg(kGpioA + GPIO_MODER) & ~(3u << (2 * pin))) | (2u << (2 * pin));  // alternate
    Reg(kGpioA + GPIO_OSPEEDR) |= 2u << (2 * pin);                                                    // fast
    const uint32_t afr = pin < 8 ? GPIO_AFRL : GPIO_AFRH;
    const int shift = 4 * (pin % 8);
    Reg(kGpioA + afr) = (Reg(kGpioA + afr) & ~(0xFu << shift)) | (7u << shift);  // AF7 = USART1/2
  }
  Reg(USART_BRR) = (console_clock_hz + kBaud / 2) / kBaud;  // 16× oversampling: mantissa.fraction in one value
  Reg(USART_CR1) = (1u << 13) | (1u << 3) | (1u << 2);    // UE, TE, RE; 8 data bits, no parity
}

// The console registers the shared code below uses: status (TXE bit 7, RXNE bit 5, TC bit 6), transmit, receive.
constexpr uint32_t kConsoleStatus = USART_SR, kConsoleTx = USART_DR, kConsoleRx = USART_DR;

#elif defined(EDGEGHOST_STM32L4R5)
// --- STM32L4+ (RM0432) ----------------------------------------------------------------------------------------
constexpr uint32_t kRcc = 0x40021000, kPwr = 0x40007000, kFlash = 0x40022000, kGpioG = 0x48001800;
constexpr uint32_t RCC_CR = kRcc + 0x00, RCC_CFGR = kRcc + 0x08, RCC_PLLCFGR = kRcc + 0x0C;
constexpr uint32_t RCC_AHB2ENR = kRcc + 0x4C, RCC_APB1ENR1 = kRcc + 0x58, RCC_APB1ENR2 = kRcc + 0x5C;
constexpr uint32_t PWR_CR1 = kPwr + 0x00, PWR_CR2 = kPwr + 0x04, PWR_SR2 = kPwr + 0x14, PWR_CR5 = kPwr + 0x80;
constexpr uint32_t FLASH_ACR = kFlash + 0x00;
constexpr uint32_t kTargetHz = 120000000;
constexpr uint32_t kLpuart = 0x40008000;  // LPUART1: the NUCLEO-L4R5ZI's ST-LINK VCP (PG7 TX, PG8 RX, AF8)
constexpr uint32_t LPUART_CR1 = kLpuart + 0x00, LPUART_BRR = kLpuart + 0x0C, LPUART_ISR = kLpuart + 0x1C,
                   LPUART_RDR = kLpuart + 0x24, LPUART_TDR = kLpuart + 0x28;

void ClockInit() {
  Reg(RCC_APB1ENR1) |= 1u << 28;  // PWREN
  __asm__ volatile("dsb");
  Reg(RCC_CR) |= 1u << 8;  // HSION: the core starts on MSI 4 MHz
  if (!WaitFor(RCC_CR, 1u << 10, 1u << 10)) {
    clock_source = "msi (HSIRDY never set: no clock control modelled)";
    clock_hz = console_clock_hz = 4000000;
    return;
  }
  // Range 1 boost mode for > 80 MHz (RM0432 6.2.9): AHB /2 during the switch, R1MODE = 0, 5 wait states.
  Reg(PWR_CR1) = (Reg(PWR_CR1) & ~(3u << 9)) | (1u << 9);  // VOS = range 1
  WaitFor(PWR_SR2, 1u << 10, 0);                            // VOSF clear
  Reg(PWR_CR5) &= ~(1u << 8);                               // R1MODE = 0: boost
  Reg(FLASH_ACR) = 5u | (1u << 8) | (1u << 9) | (1u << 10); // LATENCY 5, PRFTEN, ICEN, DCEN
  if (!WaitFor(FLASH_ACR, 0xFu, 5u)) {
    clock_source = "msi (flash latency not accepted)";
    clock_hz = console_clock_hz = 4000000;
    return;
  }
  // PLL: source HSI16 (PLLSRC = 10), PLLM = /2 (field 1) = 8 MHz, PLLN = 30 → 240 MHz VCO, PLLR = /2 → 120 MHz.
  Reg(RCC_PLLCFGR) = 2u | (1u << 4) | (30u << 8) | (1u << 24);  // PLLREN
  Reg(RCC_CR) |= 1u << 24;                                       // PLLON
  if (!WaitFor(RCC_CR, 1u << 25, 1u << 25)) {
    clock_source = "msi (PLL did not lock)";
    clock_hz = console_clock_hz = 4000000;
    return;
  }
  Reg(RCC_CFGR) = (Reg(RCC_CFGR) & ~0x3FF3u) | (8u << 4) | 3u;  // HPRE = /2, APB1/APB2 /1, SW = PLL
  if (!WaitFor(RCC_CFGR, 3u << 2, 3u << 2)) {
    clock_source = "msi (switch to PLL not confirmed)";
    clock_hz = console_clock_hz = 4000000;
    return;
  }
  for (volatile int i = 0; i < 200; ++i) {  // ≥ 1 µs at 60 MHz before AHB goes to /1
  }
  Reg(RCC_CFGR) &= ~(0xFu << 4);
  clock_hz = kTargetHz;
  clock_source = "pll";
  console_clock_hz = kTargetHz;  // LPUART1SEL = PCLK1 (reset value), APB1 undivided
}

void ConsoleInit() {
  Reg(PWR_CR2) |= 1u << 9;          // IOSV: PG2..PG15 are powered from VDDIO2, isolated until this is set
  Reg(RCC_AHB2ENR) |= 1u << 6;      // GPIOG
  Reg(RCC_APB1ENR2) |= 1u << 0;     // LPUART1EN
  __asm__ volatile("dsb");
  const int pins[] = {7, 8};
  for (int pin : pins) {
    Reg(kGpioG + 0x00) = (Reg(kGpioG + 0x00) & ~(3u << (2 * pin))) | (2u << (2 * pin));  // MODER: alternate
    const uint32_t afr = kGpioG + (pin < 8 ? 0x20 : 0x24);
    const int shift = 4 * (pin % 8);
    Reg(afr) = (Reg(afr) & ~(0xFu << shift)) | (8u << shift);  // AF8 = LPUART1
  }
  // LPUART: BRR = 256 × f_ck / baud (RM0432 53.4.7).
  Reg(LPUART_BRR) = static_cast<uint32_t>((256ull * console_clock_hz + kBaud / 2) / kBaud);
  Reg(LPUART_CR1) = (1u << 3) | (1u << 2) | (1u << 0);  // TE, RE, UE
}

constexpr uint32_t kConsoleStatus = LPUART_ISR, kConsoleTx = LPUART_TDR, kConsoleRx = LPUART_RDR;

#else
#error "board_stm32.cc: define EDGEGHOST_STM32F405, EDGEGHOST_STM32F446 or EDGEGHOST_STM32L4R5 (board.mk does)"
#endif

// Status bits at the same places on the USART (SR) and the LPUART (ISR).
constexpr uint32_t kTxe = 1u << 7, kTc = 1u << 6, kRxne = 1u << 5;

void PutChar(char c) {
  while (!(Reg(kConsoleStatus) & kTxe)) {
  }
  Reg(kConsoleTx) = static_cast<uint8_t>(c);
}

int GetChar() {
  while (!(Reg(kConsoleStatus) & kRxne)) {
  }
  return static_cast<int>(Reg(kConsoleRx) & 0xFF);
}

void WaitTransmitted() { WaitFor(kConsoleStatus, kTc, kTc); }

}  // namespace

void BoardInit() {
  ClockInit();
  ConsoleInit();
}

void BoardWrite(const char* text) {
  static char previous = 0;
  for (; *text; ++text) {
    if (*text == '\n' && previous != '\r') PutChar('\r');  // serial terminals want CR LF
    PutChar(*text);
    previous = *text;
  }
}

int BoardReadChar() { return GetChar(); }

void BoardExit(int code) {
  WaitTransmitted();
#if defined(EDGEGHOST_SEMIHOSTING_EXIT)
  SemihostExit(code);
#endif
  // On a board the verdict line has gone out over the UART; nothing else to do.
  for (;;) {
    __asm__ volatile("wfi");
  }
}

uint32_t BoardClockHz() { return clock_hz; }

const char* BoardClockSource() { return clock_source; }
