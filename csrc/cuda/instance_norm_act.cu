// CUDA kernels of the fused instance norm + affine + residual + activation (contract in ops.h).
//
// Storage float32 / float16 / bfloat16, arithmetic and statistics in fp32.
// * One-pass path (plane_size <= 8192): a group of threads owns a plane (a warp for <= 128 elements, else the
//   block), keeps its values in registers, and reads x once. Values are taken relative to the plane's first
//   element and the statistics come from a corrected two-pass over the registers, so planes with a large mean
//   (1e4 +- 1) keep their variance and xhat stays exact to fp32 precision.
// * Split path (larger planes): several blocks per plane. Each block writes the (mean, m2) of its 4096-element
//   chunk, a second kernel merges a plane's chunks with Chan's formula in fp64 (a warp per plane, fixed order,
//   hence deterministic), and an elementwise kernel normalizes. The partial statistics live in a workspace the
//   caller passes in the params (instance_norm_act_*_workspace_cuda() bytes).
// Backward mirrors this with the two sums sum(g) and sum(g * xhat) per plane.
#include <algorithm>

#include "common/activation.h"
#include "common/welford.h"
#include "cuda/cuda_utils.cuh"
#include "ops.h"

namespace ganrt {
namespace {

using cuda::from_float;
using cuda::to_float;

constexpr int kSplitThreads = 256;
constexpr int kSplitItems = 16;
constexpr int64_t kSplitChunk = kSplitThreads * kSplitItems;
constexpr int64_t kOnePassMax = 8192;
// Bytes of x per wave of the forward split path: well inside the L2 of the GPUs ganrt targets (40 MB on A100,
// 50 MB on H100/H200), leaving room for the y lines written meanwhile.
constexpr int64_t kSplitWaveBytes = int64_t(16) << 20;

constexpr int block_threads(int group) { return group < 128 ? 128 : group; }

// ---------------------------------------------------------------------------------------------------------------
// Forward, one pass.

template <typename T, int GROUP, int ITEMS>
__global__ void __launch_bounds__(block_threads(GROUP))
    forward_onepass_kernel(const InstanceNormActParams p, int64_t planes) {
  constexpr int kPlanesPerBlock = block_threads(GROUP) / GROUP;
  __shared__ float smem[2 * 32];
  const int lane = threadIdx.x % GROUP;
  const int64_t plane = static_cast<int64_t>(blockIdx.x) * kPlanesPerBlock + threadIdx.x / GROUP;
  const bool active = plane < planes;  // uniform within a group
  const int64_t m = p.plane_size;
  const int64_t base = active ? plane * m : 0;
  const T* x = static_cast<const T*>(p.x) + base;
  const float shift = active ? to_float(x[0]) : 0.f;
  float v[ITEMS];
  float s[1] = {0.f};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t i = lane + static_cast<int64_t>(k) * GROUP;
    v[k] = (active && i < m) ? to_float(x[i]) - shift : 0.f;
    s[0] += v[k];
  }
  cuda::group_allreduce<GROUP>(s, smem);
  const float fm = static_cast<float>(m);
  const float mean0 = s[0] / fm;
  float d[2] = {0.f, 0.f};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t i = lane + static_cast<int64_t>(k) * GROUP;
    if (active && i < m) {
      const float t = v[k] - mean0;
      d[0] += t;
      d[1] += t * t;
    }
  }
  cuda::group_allreduce<GROUP>(d, smem);
  if (!active) return;
  const float corr = d[0] / fm;
  const float var = fmaxf(d[1] / fm - corr * corr, 0.f);
  const float rstd = 1.f / sqrtf(var + static_cast<float>(p.eps));
  const int64_t ch = plane % p.c;
  const float w = p.weight ? to_float(static_cast<const T*>(p.weight)[ch]) : 1.f;
  const float b = p.bias ? to_float(static_cast<const T*>(p.bias)[ch]) : 0.f;
  const float scale = w * rstd;
  const float slope = static_cast<float>(p.negative_slope);
  const T* res = p.residual ? static_cast<const T*>(p.residual) + base : nullptr;
  T* y = static_cast<T*>(p.y) + base;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t i = lane + static_cast<int64_t>(k) * GROUP;
    if (i < m) {
      float o = ((v[k] - mean0) - corr) * scale + b;
      if (res) o += to_float(res[i]);
      y[i] = from_float<T>(activate(o, p.act, slope));
    }
  }
  if (lane == 0) {
    static_cast<float*>(p.mean)[plane] = shift + (mean0 + corr);
    static_cast<float*>(p.rstd)[plane] = rstd;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Forward, split path.

struct ChunkStats {
  double mean, m2;
};

// Block (plane, chunk): (mean, m2) of the chunk, computed like the one-pass kernel relative to its first element.
template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    forward_chunk_stats_kernel(const InstanceNormActParams p, int64_t first_plane, int64_t chunks,
                               ChunkStats* partial) {
  __shared__ float smem[2 * 32];
  const int64_t plane = first_plane + blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t start = chunk * kSplitChunk;
  const int64_t len = min(kSplitChunk, p.plane_size - start);
  const T* x = static_cast<const T*>(p.x) + plane * p.plane_size + start;
  const float shift = to_float(x[0]);
  float v[kSplitItems];
  float s[1] = {0.f};
#pragma unroll
  for (int k = 0; k < kSplitItems; ++k) {
    const int64_t i = threadIdx.x + k * kSplitThreads;
    v[k] = i < len ? to_float(x[i]) - shift : 0.f;
    s[0] += v[k];
  }
  cuda::group_allreduce<kSplitThreads>(s, smem);
  const float fl = static_cast<float>(len);
  const float mean0 = s[0] / fl;
  float d[2] = {0.f, 0.f};
#pragma unroll
  for (int k = 0; k < kSplitItems; ++k) {
    const int64_t i = threadIdx.x + k * kSplitThreads;
    if (i < len) {
      const float t = v[k] - mean0;
      d[0] += t;
      d[1] += t * t;
    }
  }
  cuda::group_allreduce<kSplitThreads>(d, smem);
  if (threadIdx.x == 0) {
    const double corr = static_cast<double>(d[0]) / len;
    partial[plane * chunks + chunk] = ChunkStats{static_cast<double>(shift) + static_cast<double>(mean0) + corr,
                                     fmax(static_cast<double>(d[1]) - static_cast<double>(d[0]) * corr, 0.0)};
  }
}

__device__ __forceinline__ WelfordStats<double> shfl_down_stats(const WelfordStats<double>& s, int offset) {
  WelfordStats<double> r;
  r.count = __shfl_down_sync(0xffffffffu, s.count, offset);
  r.mean = __shfl_down_sync(0xffffffffu, s.mean, offset);
  r.m2 = __shfl_down_sync(0xffffffffu, s.m2, offset);
  return r;
}

// A warp per plane merges its chunks in fp64 (lane l takes chunks l, l + 32, ..., then a fixed tree), and writes
// mean, rstd and mean_lo = the part of the fp64 mean below the fp32 mean's precision.
__global__ void forward_merge_kernel(const InstanceNormActParams p, int64_t first_plane, int64_t end_plane,
                                     int64_t chunks, const ChunkStats* partial, float* mean_lo) {
  const int64_t plane = first_plane + static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (plane >= end_plane) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  WelfordStats<double> s;
  for (int64_t k = lane; k < chunks; k += 32) {
    const ChunkStats c = partial[plane * chunks + k];
    WelfordStats<double> w;
    w.count = static_cast<double>(min(kSplitChunk, p.plane_size - k * kSplitChunk));
    w.mean = c.mean;
    w.m2 = c.m2;
    s = welford_merge(s, w);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s = welford_merge(s, shfl_down_stats(s, o));
  if (lane == 0) {
    const float hi = static_cast<float>(s.mean);
    static_cast<float*>(p.mean)[plane] = hi;
    static_cast<float*>(p.rstd)[plane] = static_cast<float>(1.0 / sqrt(s.variance() + p.eps));
    mean_lo[plane] = static_cast<float>(s.mean - static_cast<double>(hi));
  }
}

template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    forward_normalize_kernel(const InstanceNormActParams p, int64_t first_plane, int64_t chunks,
                             const float* mean_lo) {
  const int64_t plane = first_plane + blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t start = chunk * kSplitChunk;
  const int64_t len = min(kSplitChunk, p.plane_size - start);
  const int64_t base = plane * p.plane_size + start;
  const T* x = static_cast<const T*>(p.x) + base;
  const T* res = p.residual ? static_cast<const T*>(p.residual) + base : nullptr;
  T* y = static_cast<T*>(p.y) + base;
  const float hi = static_cast<const float*>(p.mean)[plane];
  const float lo = mean_lo[plane];
  const int64_t ch = plane % p.c;
  const float w = p.weight ? to_float(static_cast<const T*>(p.weight)[ch]) : 1.f;
  const float b = p.bias ? to_float(static_cast<const T*>(p.bias)[ch]) : 0.f;
  const float scale = w * static_cast<const float*>(p.rstd)[plane];
  const float slope = static_cast<float>(p.negative_slope);
#pragma unroll
  for (int k = 0; k < kSplitItems; ++k) {
    const int64_t i = threadIdx.x + k * kSplitThreads;
    if (i < len) {
      float o = ((to_float(x[i]) - hi) - lo) * scale + b;
      if (res) o += to_float(res[i]);
      y[i] = from_float<T>(activate(o, p.act, slope));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Backward, one pass.

template <typename T, int GROUP, int ITEMS>
__global__ void __launch_bounds__(block_threads(GROUP))
    backward_onepass_kernel(const InstanceNormActBackwardParams p, int64_t planes) {
  constexpr int kPlanesPerBlock = block_threads(GROUP) / GROUP;
  __shared__ float smem[2 * 32];
  const int lane = threadIdx.x % GROUP;
  const int64_t plane = static_cast<int64_t>(blockIdx.x) * kPlanesPerBlock + threadIdx.x / GROUP;
  const bool active = plane < planes;
  const int64_t m = p.plane_size;
  const int64_t base = active ? plane * m : 0;
  const T* gy = static_cast<const T*>(p.grad_y) + base;
  const T* y = static_cast<const T*>(p.y) + base;
  const T* x = static_cast<const T*>(p.x) + base;
  const float mean = active ? static_cast<const float*>(p.mean)[plane] : 0.f;
  const float rstd = active ? static_cast<const float*>(p.rstd)[plane] : 0.f;
  const float slope = static_cast<float>(p.negative_slope);
  float g[ITEMS], xh[ITEMS];
  float s[2] = {0.f, 0.f};
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t i = lane + static_cast<int64_t>(k) * GROUP;
    if (active && i < m) {
      g[k] = activation_grad(to_float(gy[i]), to_float(y[i]), p.act, slope);
      xh[k] = (to_float(x[i]) - mean) * rstd;
    } else {
      g[k] = 0.f;
      xh[k] = 0.f;
    }
    s[0] += g[k];
    s[1] += g[k] * xh[k];
  }
  cuda::group_allreduce<GROUP>(s, smem);
  if (!active) return;
  if (lane == 0) {
    static_cast<float*>(p.sum_dy)[plane] = s[0];
    static_cast<float*>(p.sum_dy_xhat)[plane] = s[1];
  }
  if (p.grad_residual) {
    T* gr = static_cast<T*>(p.grad_residual) + base;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int64_t i = lane + static_cast<int64_t>(k) * GROUP;
      if (i < m) gr[i] = from_float<T>(g[k]);
    }
  }
  if (p.grad_x) {
    T* gx = static_cast<T*>(p.grad_x) + base;
    const float fm = static_cast<float>(m);
    const float c1 = s[0] / fm, c2 = s[1] / fm;
    const float w = p.weight ? to_float(static_cast<const T*>(p.weight)[plane % p.c]) : 1.f;
    const float kw = w * rstd;
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
      const int64_t i = lane + static_cast<int64_t>(k) * GROUP;
      if (i < m) gx[i] = from_float<T>(kw * (g[k] - c1 - xh[k] * c2));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Backward, split path.

template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    backward_chunk_sums_kernel(const InstanceNormActBackwardParams p, int64_t chunks, float2* partial) {
  __shared__ float smem[2 * 32];
  const int64_t plane = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t start = chunk * kSplitChunk;
  const int64_t len = min(kSplitChunk, p.plane_size - start);
  const int64_t base = plane * p.plane_size + start;
  const T* gy = static_cast<const T*>(p.grad_y) + base;
  const T* y = static_cast<const T*>(p.y) + base;
  const T* x = static_cast<const T*>(p.x) + base;
  const float mean = static_cast<const float*>(p.mean)[plane];
  const float rstd = static_cast<const float*>(p.rstd)[plane];
  const float slope = static_cast<float>(p.negative_slope);
  float s[2] = {0.f, 0.f};
#pragma unroll
  for (int k = 0; k < kSplitItems; ++k) {
    const int64_t i = threadIdx.x + k * kSplitThreads;
    if (i < len) {
      const float g = activation_grad(to_float(gy[i]), to_float(y[i]), p.act, slope);
      s[0] += g;
      s[1] += g * ((to_float(x[i]) - mean) * rstd);
    }
  }
  cuda::group_allreduce<kSplitThreads>(s, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = make_float2(s[0], s[1]);
}

__global__ void backward_merge_kernel(const InstanceNormActBackwardParams p, int64_t planes, int64_t chunks,
                                      const float2* partial) {
  const int64_t plane = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (plane >= planes) return;
  const int lane = threadIdx.x % 32;
  double s0 = 0.0, s1 = 0.0;
  for (int64_t k = lane; k < chunks; k += 32) {
    const float2 c = partial[plane * chunks + k];
    s0 += c.x;
    s1 += c.y;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    s0 += __shfl_down_sync(0xffffffffu, s0, o);
    s1 += __shfl_down_sync(0xffffffffu, s1, o);
  }
  if (lane == 0) {
    static_cast<float*>(p.sum_dy)[plane] = static_cast<float>(s0);
    static_cast<float*>(p.sum_dy_xhat)[plane] = static_cast<float>(s1);
  }
}

template <typename T>
__global__ void __launch_bounds__(kSplitThreads)
    backward_elementwise_kernel(const InstanceNormActBackwardParams p, int64_t chunks) {
  const int64_t plane = blockIdx.x / chunks, chunk = blockIdx.x % chunks;
  const int64_t start = chunk * kSplitChunk;
  const int64_t len = min(kSplitChunk, p.plane_size - start);
  const int64_t base = plane * p.plane_size + start;
  const T* gy = static_cast<const T*>(p.grad_y) + base;
  const T* y = static_cast<const T*>(p.y) + base;
  const T* x = static_cast<const T*>(p.x) + base;
  T* gx = p.grad_x ? static_cast<T*>(p.grad_x) + base : nullptr;
  T* gr = p.grad_residual ? static_cast<T*>(p.grad_residual) + base : nullptr;
  const float mean = static_cast<const float*>(p.mean)[plane];
  const float rstd = static_cast<const float*>(p.rstd)[plane];
  const float slope = static_cast<float>(p.negative_slope);
  const float fm = static_cast<float>(p.plane_size);
  const float c1 = static_cast<const float*>(p.sum_dy)[plane] / fm;
  const float c2 = static_cast<const float*>(p.sum_dy_xhat)[plane] / fm;
  const float w = p.weight ? to_float(static_cast<const T*>(p.weight)[plane % p.c]) : 1.f;
  const float kw = w * rstd;
#pragma unroll
  for (int k = 0; k < kSplitItems; ++k) {
    const int64_t i = threadIdx.x + k * kSplitThreads;
    if (i < len) {
      const float g = activation_grad(to_float(gy[i]), to_float(y[i]), p.act, slope);
      if (gr) gr[i] = from_float<T>(g);
      if (gx) gx[i] = from_float<T>(kw * (g - c1 - ((to_float(x[i]) - mean) * rstd) * c2));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Launchers.

constexpr int kMergeThreads = 256;  // 8 planes per block in the merge kernels

// Split-path scratch: per (plane, chunk) partial statistics, plus (forward) the low part of each plane's mean.
size_t forward_workspace(int64_t n, int64_t c, int64_t plane_size) {
  if (plane_size <= kOnePassMax) return 0;
  const int64_t planes = n * c, chunks = (plane_size + kSplitChunk - 1) / kSplitChunk;
  return static_cast<size_t>(planes * chunks) * sizeof(ChunkStats) + static_cast<size_t>(planes) * sizeof(float);
}

size_t backward_workspace(int64_t n, int64_t c, int64_t plane_size) {
  if (plane_size <= kOnePassMax) return 0;
  const int64_t planes = n * c, chunks = (plane_size + kSplitChunk - 1) / kSplitChunk;
  return static_cast<size_t>(planes * chunks) * sizeof(float2);
}

void check_grid(int64_t blocks, const char* op) {
  if (blocks > 0x7FFFFFFF)
    throw Error(std::string(op) + ": " + std::to_string(blocks) + " blocks exceed the CUDA grid limit (2^31 - 1)");
}

template <typename T, int GROUP, int ITEMS>
void launch_forward_onepass(const InstanceNormActParams& p, int64_t planes, cudaStream_t stream) {
  constexpr int kPlanesPerBlock = block_threads(GROUP) / GROUP;
  const int64_t blocks = (planes + kPlanesPerBlock - 1) / kPlanesPerBlock;
  check_grid(blocks, "instance_norm_act_forward_cuda");
  forward_onepass_kernel<T, GROUP, ITEMS><<<static_cast<unsigned>(blocks), block_threads(GROUP), 0, stream>>>(p, planes);
}

template <typename T, int GROUP, int ITEMS>
void launch_backward_onepass(const InstanceNormActBackwardParams& p, int64_t planes, cudaStream_t stream) {
  constexpr int kPlanesPerBlock = block_threads(GROUP) / GROUP;
  const int64_t blocks = (planes + kPlanesPerBlock - 1) / kPlanesPerBlock;
  check_grid(blocks, "instance_norm_act_backward_cuda");
  backward_onepass_kernel<T, GROUP, ITEMS><<<static_cast<unsigned>(blocks), block_threads(GROUP), 0, stream>>>(p, planes);
}

template <typename T>
void forward_cuda(const InstanceNormActParams& p, cudaStream_t stream) {
  constexpr const char* op = "instance_norm_act_forward_cuda";
  const int64_t planes = p.n * p.c, m = p.plane_size;
  if (m <= 128) {
    launch_forward_onepass<T, 32, 4>(p, planes, stream);
  } else if (m <= 512) {
    launch_forward_onepass<T, 128, 4>(p, planes, stream);
  } else if (m <= 2048) {
    launch_forward_onepass<T, 256, 8>(p, planes, stream);
  } else if (m <= kOnePassMax) {
    launch_forward_onepass<T, 512, 16>(p, planes, stream);
  } else {
    const int64_t chunks = (m + kSplitChunk - 1) / kSplitChunk;
    check_grid(planes * chunks, op);
    cuda::check_workspace(p.workspace, p.workspace_bytes, forward_workspace(p.n, p.c, m), op);
    ChunkStats* partial = static_cast<ChunkStats*>(p.workspace);
    float* mean_lo = reinterpret_cast<float*>(partial + planes * chunks);
    // The normalize kernel reads x a second time. In waves of planes small enough to stay in L2 between the
    // statistics pass and the normalize pass, that second read is served from L2, so device memory sees x once
    // and y once, as a copy does; a wave still spans hundreds of blocks, which fills the GPU.
    const int64_t wave = std::max<int64_t>(1, kSplitWaveBytes / (m * static_cast<int64_t>(sizeof(T))));
    for (int64_t first = 0; first < planes; first += wave) {
      const int64_t count = std::min(wave, planes - first);
      const auto blocks = static_cast<unsigned>(count * chunks);
      forward_chunk_stats_kernel<T><<<blocks, kSplitThreads, 0, stream>>>(p, first, chunks, partial);
      cuda::check_launch(op);
      forward_merge_kernel<<<cuda::grid_for(count, kMergeThreads / 32, 0x7FFFFFFF), kMergeThreads, 0, stream>>>(
          p, first, first + count, chunks, partial, mean_lo);
      cuda::check_launch(op);
      forward_normalize_kernel<T><<<blocks, kSplitThreads, 0, stream>>>(p, first, chunks, mean_lo);
      cuda::check_launch(op);
    }
  }
  cuda::check_launch(op);
}

template <typename T>
void backward_cuda(const InstanceNormActBackwardParams& p, cudaStream_t stream) {
  constexpr const char* op = "instance_norm_act_backward_cuda";
  const int64_t planes = p.n * p.c, m = p.plane_size;
  if (m <= 128) {
    launch_backward_onepass<T, 32, 4>(p, planes, stream);
  } else if (m <= 512) {
    launch_backward_onepass<T, 128, 4>(p, planes, stream);
  } else if (m <= 2048) {
    launch_backward_onepass<T, 256, 8>(p, planes, stream);
  } else if (m <= kOnePassMax) {
    launch_backward_onepass<T, 512, 16>(p, planes, stream);
  } else {
    const int64_t chunks = (m + kSplitChunk - 1) / kSplitChunk;
    const int64_t blocks = planes * chunks;
    check_grid(blocks, op);
    cuda::check_workspace(p.workspace, p.workspace_bytes, backward_workspace(p.n, p.c, m), op);
    float2* partial = static_cast<float2*>(p.workspace);
    backward_chunk_sums_kernel<T><<<static_cast<unsigned>(blocks), kSplitThreads, 0, stream>>>(p, chunks, partial);
    cuda::check_launch(op);
    backward_merge_kernel<<<cuda::grid_for(planes, kMergeThreads / 32, 0x7FFFFFFF), kMergeThreads, 0, stream>>>(
        p, planes, chunks, partial);
    if (p.grad_x || p.grad_residual) {
      cuda::check_launch(op);
      backward_elementwise_kernel<T><<<static_cast<unsigned>(blocks), kSplitThreads, 0, stream>>>(p, chunks);
    }
  }
  cuda::check_launch(op);
}

}  // namespace

void instance_norm_act_forward_cuda(const InstanceNormActParams& p, DType dtype, void* stream) {
  cuda::dispatch_cuda_float(dtype, "instance_norm_act_forward_cuda",
                            [&](auto t) { forward_cuda<typename decltype(t)::type>(p, cuda::as_stream(stream)); });
}

size_t instance_norm_act_forward_workspace_cuda(int64_t n, int64_t c, int64_t plane_size) {
  return forward_workspace(n, c, plane_size);
}

size_t instance_norm_act_backward_workspace_cuda(int64_t n, int64_t c, int64_t plane_size) {
  return backward_workspace(n, c, plane_size);
}

void instance_norm_act_backward_cuda(const InstanceNormActBackwardParams& p, DType dtype, void* stream) {
  cuda::dispatch_cuda_float(dtype, "instance_norm_act_backward_cuda",
                            [&](auto t) { backward_cuda<typename decltype(t)::type>(p, cuda::as_stream(stream)); });
}

}  // namespace ganrt
