// MLPerf Tiny command loop: commands from th_getchar, replies through th_printf (io_host.cc: stdin/stdout;
// io_board.cc: the board's UART and hardware timer).
// Commands end with '%': name, profile, timestamp, db load N, db HEX..., infer N [W], results.
#include <cstdlib>
#include <cstring>

#include "model_settings.h"
#include "submitter_implemented.h"

namespace {
constexpr int kMaxCommand = 8192;  // a `db` line carries up to ~4 KB of hex
constexpr int kMaxBuffer = kInputSize;  // one input of the model (H × W × C uint8 pixels)
uint8_t db_buffer[kMaxBuffer];
size_t db_size = 0;
size_t db_pos = 0;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `db load N` starts a transfer; `db HEX` appends bytes until N have arrived.
void DataBuffer(char* args) {
  char* sub = std::strtok(args, " ");
  if (sub == nullptr) {
    th_printf("e-[db needs a subcommand]\r\n");
  } else if (std::strcmp(sub, "load") == 0) {
    const char* n = std::strtok(nullptr, " ");
    const long size = n ? std::atol(n) : 0;
    if (size <= 0 || size > kMaxBuffer) {
      th_printf("e-[db load needs 1..%d bytes]\r\n", kMaxBuffer);
      return;
    }
    db_size = static_cast<size_t>(size);
    db_pos = 0;
    th_printf("m-[Expecting %d bytes]\r\n", static_cast<int>(db_size));
  } else {
    for (const char* p = sub; p[0] && p[1] && db_pos < db_size; p += 2) {
      const int hi = HexDigit(p[0]), lo = HexDigit(p[1]);
      if (hi < 0 || lo < 0) {
        th_printf("e-[invalid hex]\r\n");
        return;
      }
      db_buffer[db_pos++] = static_cast<uint8_t>(hi * 16 + lo);
    }
    if (db_pos == db_size) th_printf("m-load-done\r\n");
  }
}

// `infer N W`: W untimed warm-up runs, then N timed runs between two timestamps, then the scores.
void Infer(char* args) {
  const char* n_arg = std::strtok(args, " ");
  const char* w_arg = std::strtok(nullptr, " ");
  const int n = n_arg ? std::atoi(n_arg) : 1;
  const int warmup = w_arg ? std::atoi(w_arg) : 10;
  if (n <= 0 || warmup < 0) {
    th_printf("e-[infer needs N > 0 and W >= 0]\r\n");
    return;
  }
  th_load_tensor();
  th_printf("m-warmup-start-%d\r\n", warmup);
  for (int i = 0; i < warmup; ++i) th_infer();
  th_printf("m-warmup-done\r\n");
  th_printf("m-infer-start-%d\r\n", n);
  const uint32_t start = th_timestamp();
  for (int i = 0; i < n; ++i) th_infer();
  const uint32_t stop = th_timestamp();
  th_printf("m-infer-done\r\n");
  th_printf("m-time-elapsed: %lu us\r\n", static_cast<unsigned long>(stop - start));
  th_results();
}

void Dispatch(char* line) {
  char* args = std::strchr(line, ' ');
  if (args) *args++ = '\0';
  if (std::strcmp(line, "name") == 0) {
    th_printf("m-name-dut-[%s]\r\n", TH_VENDOR_NAME_STRING);
  } else if (std::strcmp(line, "profile") == 0) {
    th_printf("m-profile-[%s]\r\nm-model-[%s]\r\n", EE_FW_VERSION, TH_MODEL_VERSION);
  } else if (std::strcmp(line, "timestamp") == 0) {
    th_timestamp();
  } else if (std::strcmp(line, "db") == 0) {
    DataBuffer(args);
  } else if (std::strcmp(line, "infer") == 0) {
    Infer(args);
  } else if (std::strcmp(line, "results") == 0) {
    th_results();
  } else if (line[0] != '\0') {
    th_printf("e-[Unknown command: %s]\r\n", line);
  }
  th_printf("m-ready\r\n");
}
}  // namespace

size_t ee_get_buffer(uint8_t* buffer, size_t max_len) {
  const size_t n = db_pos < max_len ? db_pos : max_len;
  std::memcpy(buffer, db_buffer, n);
  return n;
}

int main() {
  // setup(): console and clock, model, then tell the runner we listen.
  th_serialport_initialize();
  th_timestamp_initialize();
  th_final_initialize();
  th_printf("m-init-done\r\nm-ready\r\n");
  // loop(): collect characters up to the '%' terminator, then run the command.
  static char line[kMaxCommand + 1];
  int pos = 0;
  for (int c = th_getchar(); c >= 0; c = th_getchar()) {
    if (c == '%') {
      line[pos] = '\0';
      Dispatch(line);
      pos = 0;
    } else if (c != '\r' && c != '\n' && pos < kMaxCommand) {
      line[pos++] = static_cast<char>(c);
    }
  }
  return 0;
}
