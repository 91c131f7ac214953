// Helpers shared by the CUDA launchers: storage types, dtype dispatch, launch checks, reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "common/dispatch.h"
#include "ops.h"

namespace ganrt {
namespace cuda {

// Storage types load and store through float: all arithmetic (and every accumulation) runs in fp32.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// float32 / float16 / bfloat16 -> f(TypeTag<float | __half | __nv_bfloat16>).
template <typename F>
void dispatch_cuda_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::Float32: f(TypeTag<float>{}); return;
    case DType::Float16: f(TypeTag<__half>{}); return;
    case DType::BFloat16: f(TypeTag<__nv_bfloat16>{}); return;
    default: throw_unsupported_dtype(op, d, "float32, float16, bfloat16");
  }
}

inline void check(cudaError_t err, const char* op, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so it is not reported again by the next launch
    throw Error(std::string(op) + ": " + what + " failed: " + cudaGetErrorName(err) + " (" +
                cudaGetErrorString(err) + ")");
  }
}

// After a launch: configuration errors (too many blocks or threads, no device, a kernel image missing for this
// GPU's architecture) surface here. Faults inside the kernel appear later, on synchronization.
inline void check_launch(const char* op) { check(cudaGetLastError(), op, "kernel launch"); }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Blocks for `work` items of `per_block` each, capped for grid-stride loops.
inline unsigned grid_for(int64_t work, int64_t per_block, int64_t cap = int64_t(1) << 20) {
  int64_t blocks = (work + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < cap ? blocks : cap);
}

// Butterfly sum over a full warp: every lane ends with the bit-identical total (each step adds the same two
// values on both partners, and float addition is commutative).
__device__ __forceinline__ float warp_allreduce(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sums N values over a group of GROUP consecutive threads (GROUP = 32, or the whole block when larger); every
// thread of the group receives the totals. smem: at least N * 32 floats. Deterministic: fixed order.
template <int GROUP, int N>
__device__ __forceinline__ void group_allreduce(float (&v)[N], float* smem) {
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = warp_allreduce(v[i]);
  if constexpr (GROUP > 32) {
    constexpr int kWarps = GROUP / 32;
    const int warp = threadIdx.x / 32;
    __syncthreads();  // earlier readers of smem are done
    if ((threadIdx.x & 31) == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) smem[i * 32 + warp] = v[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < N; ++i) {
      float s = 0.f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) s += smem[i * 32 + w];
      v[i] = s;
    }
  }
}

// Split paths take their scratch from a workspace the caller allocated (torch's caching allocator in
// ganrt.ops, a TensorRT plugin's workspace): a launcher then allocates nothing, so it is capturable into CUDA
// graphs and never hands memory back to the driver between calls (a stream-ordered pool with the default
// release threshold of 0 returns it at every synchronisation). Checked before any launch.
inline void check_workspace(const void* workspace, size_t bytes, size_t needed, const char* op) {
  if (needed == 0) return;
  if (workspace == nullptr || bytes < needed)
    throw Error(std::string(op) + ": the split path needs a device workspace of " + std::to_string(needed) +
                " bytes, got " + (workspace ? std::to_string(bytes) + " bytes" : std::string("none")) +
                " (allocate the size the *_workspace_cuda() query returns)");
  if (reinterpret_cast<uintptr_t>(workspace) % 8 != 0)
    throw Error(std::string(op) + ": the workspace must be 8-byte aligned");
}

}  // namespace cuda
}  // namespace ganrt
