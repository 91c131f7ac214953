// bfloat16 storage for the CPU kernels: the upper 16 bits of an IEEE float32, converted to float for all
// arithmetic. The rounding is PyTorch's (c10::BFloat16): round to nearest even, every NaN -> 0x7FC0, so a
// kernel's bf16 output equals what `tensor.to(torch.bfloat16)` makes of the same float.
#pragma once

#include <cstdint>
#include <cstring>

#include "macros.h"

namespace ganrt {

// A distinct type (not a bare uint16_t) so that templates can tell bf16 storage from integer data.
struct BFloat16 {
  uint16_t bits;
};
static_assert(sizeof(BFloat16) == 2, "BFloat16 must be exactly the 16 stored bits");

GANRT_HOST_DEVICE GANRT_FORCE_INLINE float bf16_to_float(BFloat16 v) {
  const uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

GANRT_HOST_DEVICE GANRT_FORCE_INLINE BFloat16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if (f != f) return BFloat16{0x7FC0};
  // Adding 0x7FFF plus the lowest kept bit rounds half-way cases to the even neighbour.
  return BFloat16{static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16)};
}

}  // namespace ganrt
