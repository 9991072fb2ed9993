// MLPerf Tiny image classification: the functions a submitter implements (EEMBC EnergyRunner protocol,
// performance mode). harness.cc parses the runner's commands and calls these; submitter_implemented.cc holds the
// model side, io_host.cc or io_board.cc the console and the clock.
#ifndef EDGEGHOST_SUBMITTER_IMPLEMENTED_H_
#define EDGEGHOST_SUBMITTER_IMPLEMENTED_H_

#include <cstddef>
#include <cstdint>

#define TH_MODEL_VERSION "ic01"       // MLPerf Tiny benchmark id: image classification
#define TH_VENDOR_NAME_STRING "edgeghost"
#define EE_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"

void th_serialport_initialize();              // console (and, on a board, clocks and timer) before anything else
void th_timestamp_initialize();               // zero of th_timestamp
void th_final_initialize();                   // set up the model once, before the first command
void th_load_tensor();                        // db buffer (uint8 pixels) -> model input (int8 = pixel - 128)
void th_infer();                              // one inference
void th_results();                            // prints m-results-[...] with the dequantized scores
uint32_t th_timestamp();                      // prints and returns microseconds (performance mode)
void th_printf(const char* format, ...);      // text to the runner
int th_getchar();                             // next byte from the runner; -1 at the end of input
size_t ee_get_buffer(uint8_t* buffer, size_t max_len);  // bytes received with `db`

#endif  // EDGEGHOST_SUBMITTER_IMPLEMENTED_H_
