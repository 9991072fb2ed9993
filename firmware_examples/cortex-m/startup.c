/* Minimal Cortex-M startup: vector table, RAM initialisation, FPU on, C++ constructors, main, exit. */
#include <stdint.h>

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top__;
extern int main(void);
extern void __libc_init_array(void);
extern void PlatformPrintC(const char* text);
extern void PlatformExitC(int code) __attribute__((noreturn));
extern void SysTick_Handler(void);

typedef void (*Handler)(void);
extern const Handler g_vectors[16];

void Reset_Handler(void) {
  /* Exceptions use this image's table wherever the board maps it (STM32 flash sits at 0x08000000). */
  *(volatile uint32_t*)0xE000ED08 = (uint32_t)g_vectors;
  /* Full access to CP10/CP11: the code is compiled hard-float and would fault on its first FP instruction. */
  *(volatile uint32_t*)0xE000ED88 |= 0xFu << 20;
  __asm__ volatile("dsb\n isb");

  /* .data lives in flash and is copied to RAM; .bss (with the tensor arena) starts zeroed. */
  uint32_t* src = &__data_load__;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;

  /* Static constructors (the TFLM op resolver and interpreter are function-local statics, others may not be). */
  __libc_init_array();
  PlatformExitC(main());
}

/* Any fault ends the run with a distinct exit code instead of hanging the emulator. */
void Fault_Handler(void) {
  PlatformPrintC("fault: hard/mem/bus/usage fault\n");
  PlatformExitC(3);
}

/* __libc_init_array calls these; there is no crti/crtn with -nostartfiles. */
void _init(void) {}
void _fini(void) {}

__attribute__((section(".vectors"), used)) const Handler g_vectors[16] = {
    (Handler)&__stack_top__, /* initial stack pointer */
    Reset_Handler,           /* reset */
    Fault_Handler,           /* NMI */
    Fault_Handler,           /* HardFault */
    Fault_Handler,           /* MemManage */
    Fault_Handler,           /* BusFault */
    Fault_Handler,           /* UsageFault */
    0, 0, 0, 0,              /* reserved (SecureFault on v8-M, unused here) */
    Fault_Handler,           /* SVCall */
    Fault_Handler,           /* DebugMonitor */
    0,                       /* reserved */
    Fault_Handler,           /* PendSV */
    SysTick_Handler,         /* SysTick: counts timer wraps (platform.cc) */
};
