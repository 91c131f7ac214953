// CUDA kernels converting between uint8 NHWC images and NCHW tensors in [-1, 1] (contract in ops.h). Same
// arithmetic as the CPU kernels: x / 127.5 - 1 in fp32; (x + 1) * 127.5 clamped to [0, 255] (NaN -> 0) and
// rounded to nearest, ties to even.
#include "cuda/cuda_utils.cuh"
#include "ops.h"

namespace ganrt {
namespace {

using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;

// One thread per pixel: reads its c bytes, writes c planes (consecutive threads write consecutive addresses).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    images_to_tensor_kernel(const uint8_t* src, T* dst, int64_t n, int64_t h, int64_t w, int64_t c) {
  const int64_t hw = h * w, pixels = n * hw;
  for (int64_t px = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; px < pixels;
       px += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t in = px / hw, rem = px % hw;
    const uint8_t* s = src + px * c;
    T* d = dst + in * c * hw + rem;
    for (int64_t ic = 0; ic < c; ++ic) d[ic * hw] = from_float<T>(static_cast<float>(s[ic]) / 127.5f - 1.f);
  }
}

__device__ __forceinline__ uint8_t quantize(float v) {
  float s = (v + 1.f) * 127.5f;
  s = s > 0.f ? s : 0.f;  // also maps NaN to 0
  s = s < 255.f ? s : 255.f;
  return static_cast<uint8_t>(rintf(s));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    tensor_to_images_kernel(const T* src, uint8_t* dst, int64_t n, int64_t c, int64_t h, int64_t w) {
  const int64_t hw = h * w, pixels = n * hw;
  for (int64_t px = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; px < pixels;
       px += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t in = px / hw, rem = px % hw;
    const T* s = src + in * c * hw + rem;
    uint8_t* d = dst + px * c;
    for (int64_t ic = 0; ic < c; ++ic) d[ic] = quantize(to_float(s[ic * hw]));
  }
}

}  // namespace

void images_to_tensor_cuda(const uint8_t* src, void* dst, DType dtype, int64_t n, int64_t h, int64_t w, int64_t c,
                           void* stream) {
  constexpr const char* op = "images_to_tensor_cuda";
  cuda::dispatch_cuda_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    images_to_tensor_kernel<T><<<cuda::grid_for(n * h * w, kThreads), kThreads, 0, cuda::as_stream(stream)>>>(
        src, static_cast<T*>(dst), n, h, w, c);
  });
  cuda::check_launch(op);
}

void tensor_to_images_cuda(const void* src, DType dtype, uint8_t* dst, int64_t n, int64_t c, int64_t h, int64_t w,
                           void* stream) {
  constexpr const char* op = "tensor_to_images_cuda";
  cuda::dispatch_cuda_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    tensor_to_images_kernel<T><<<cuda::grid_for(n * h * w, kThreads), kThreads, 0, cuda::as_stream(stream)>>>(
        static_cast<const T*>(src), dst, n, c, h, w);
  });
  cuda::check_launch(op);
}

}  // namespace ganrt
