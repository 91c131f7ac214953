// CPU kernels converting between uint8 NHWC images and NCHW tensors in [-1, 1] (contract in ops.h).
//
// tensor_to_images rounds to nearest (ties to even, as torch.round) after clamping, where the upstream
// pix2pix/CycleGAN code truncates ((x + 1) / 2 * 255).astype(uint8) without clamping: truncation biases every
// pixel down by half a level on average and out-of-range values wrap around.
#include <algorithm>
#include <cstdint>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "ops.h"

namespace ganrt {
namespace {

// Adding and subtracting 1.5 * 2^(mantissa bits) rounds a value of magnitude < 2^(mantissa bits - 1) to an
// integer with the current rounding mode (nearest, ties to even); vectorizes, unlike a call to nearbyint.
template <typename T>
constexpr T kRoundMagic = T(12582912.0);  // 1.5 * 2^23
template <>
constexpr double kRoundMagic<double> = 6755399441055744.0;  // 1.5 * 2^52

template <typename T>
inline uint8_t quantize(T v) {
  T s = (v + T(1)) * T(127.5);
  s = s > T(0) ? s : T(0);  // also maps NaN to 0
  s = s < T(255) ? s : T(255);
  return static_cast<uint8_t>((s + kRoundMagic<T>) - kRoundMagic<T>);
}

template <typename T>
void images_to_tensor_impl(const uint8_t* src, T* dst, int64_t n, int64_t h, int64_t w, int64_t c,
                           int num_threads) {
  // x / 127.5 - 1 evaluated in T once per level, exactly what the elementwise reference computes.
  T lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<T>(v) / T(127.5) - T(1);
  const int64_t rows = n * h;
  parallel_for(rows, parallel_grain(rows, w * c, num_threads), num_threads, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t in = row / h, ih = row % h;
      const uint8_t* s = src + row * w * c;
      for (int64_t ic = 0; ic < c; ++ic) {
        T* d = dst + ((in * c + ic) * h + ih) * w;
        for (int64_t iw = 0; iw < w; ++iw) d[iw] = lut[s[iw * c + ic]];
      }
    }
  });
}

template <typename T>
void tensor_to_images_impl(const T* src, uint8_t* dst, int64_t n, int64_t c, int64_t h, int64_t w,
                           int num_threads) {
  const int64_t rows = n * h;
  parallel_for(rows, parallel_grain(rows, w * c, num_threads), num_threads, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t in = row / h, ih = row % h;
      uint8_t* d = dst + row * w * c;
      for (int64_t ic = 0; ic < c; ++ic) {
        const T* s = src + ((in * c + ic) * h + ih) * w;
        for (int64_t iw = 0; iw < w; ++iw) d[iw * c + ic] = quantize(s[iw]);
      }
    }
  });
}

}  // namespace

void images_to_tensor_cpu(const uint8_t* src, void* dst, DType dtype, int64_t n, int64_t h, int64_t w, int64_t c,
                          int num_threads) {
  dispatch_cpu_float(dtype, "images_to_tensor_cpu", [&](auto t) {
    using T = typename decltype(t)::type;
    images_to_tensor_impl(src, static_cast<T*>(dst), n, h, w, c, num_threads);
  });
}

void tensor_to_images_cpu(const void* src, DType dtype, uint8_t* dst, int64_t n, int64_t c, int64_t h, int64_t w,
                          int num_threads) {
  dispatch_cpu_float(dtype, "tensor_to_images_cpu", [&](auto t) {
    using T = typename decltype(t)::type;
    tensor_to_images_impl(static_cast<const T*>(src), dst, n, c, h, w, num_threads);
  });
}

}  // namespace ganrt
