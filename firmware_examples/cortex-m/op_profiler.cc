#include "op_profiler.h"

#include <cstring>

#include "platform.h"

uint32_t OpProfiler::BeginEvent(const char* tag) {
  if (!enabled_) return 0;
  int i = 0;
  while (i < num_entries_ && entries_[i].tag != tag && std::strcmp(entries_[i].tag, tag) != 0) ++i;
  if (i == num_entries_) {
    if (num_entries_ == kMaxOpTypes) return 0;  // more op types than slots: the rest go unprofiled
    entries_[num_entries_++] = {tag, 0, 0};
  }
  open_ = i;
  start_ = PlatformTicks();  // last, so the lookup above is not charged to the op
  return 0;
}

void OpProfiler::EndEvent(uint32_t) {
  const uint32_t now = PlatformTicks();  // first, for the same reason
  if (!enabled_ || open_ < 0) return;
  entries_[open_].count += 1;
  entries_[open_].ticks += now - start_;
  open_ = -1;
}

void OpProfiler::Print() const {
  for (int i = 0; i < num_entries_; ++i) {
    PlatformPrintf("op %s count=%lu ticks=%lu\n", entries_[i].tag, static_cast<unsigned long>(entries_[i].count),
                   static_cast<unsigned long>(entries_[i].ticks));
  }
}
