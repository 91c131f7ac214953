// CUDA kernels of the Philox normals and the VAE reparameterization. The random numbers come from the exact
// host/device code in common/philox.h that the CPU kernels run, so (seed, offset, index) gives the same eps on
// both. Backward recomputes eps from (seed, offset) instead of reading a saved tensor: no eps buffer to keep
// between passes, one more Philox + Box-Muller evaluation (compute that is cheap next to the memory traffic).
#include "common/philox.h"
#include "cuda/cuda_utils.cuh"
#include "ops.h"

namespace ganrt {
namespace {

using cuda::from_float;
using cuda::to_float;

constexpr int kThreads = 256;

// One thread per Philox counter (four consecutive stream positions); f(i, eps) for each of its elements that lies
// in the call's range [0, numel). Grid-stride over the counters covering offset .. offset + numel - 1.
template <typename F>
__device__ __forceinline__ void for_each_normal(int64_t numel, uint64_t seed, uint64_t offset, F&& f) {
  const uint64_t first_group = offset / 4;
  const uint64_t groups = (offset + static_cast<uint64_t>(numel) - 1) / 4 - first_group + 1;
  for (uint64_t t = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < groups;
       t += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t group = first_group + t;
    double eps[4];
    philox_normals4(group, seed, eps);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t g = group * 4 + lane;
      if (g >= offset && g - offset < static_cast<uint64_t>(numel)) f(static_cast<int64_t>(g - offset), eps[lane]);
    }
  }
}

// eps as the output dtype stores it, widened back to float: z uses exactly the eps that eps_out holds.
template <typename T>
__device__ __forceinline__ float rounded_eps(double e) {
  return to_float(from_float<T>(static_cast<float>(e)));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) standard_normal_kernel(T* out, int64_t numel, uint64_t seed,
                                                                   uint64_t offset) {
  for_each_normal(numel, seed, offset, [&](int64_t i, double e) { out[i] = from_float<T>(static_cast<float>(e)); });
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    reparameterize_forward_kernel(const T* mu, const T* logvar, T* z, T* eps_out, int64_t numel, uint64_t seed,
                                  uint64_t offset) {
  for_each_normal(numel, seed, offset, [&](int64_t i, double e) {
    const float et = rounded_eps<T>(e);
    z[i] = from_float<T>(to_float(mu[i]) + expf(0.5f * to_float(logvar[i])) * et);
    if (eps_out) eps_out[i] = from_float<T>(et);
  });
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    reparameterize_backward_kernel(const T* grad_z, const T* logvar, T* grad_logvar, int64_t numel, uint64_t seed,
                                   uint64_t offset) {
  for_each_normal(numel, seed, offset, [&](int64_t i, double e) {
    grad_logvar[i] =
        from_float<T>(to_float(grad_z[i]) * rounded_eps<T>(e) * expf(0.5f * to_float(logvar[i])) * 0.5f);
  });
}

unsigned groups_grid(int64_t numel, uint64_t offset) {
  const uint64_t groups = (offset + static_cast<uint64_t>(numel) - 1) / 4 - offset / 4 + 1;
  return cuda::grid_for(static_cast<int64_t>(groups), kThreads);
}

}  // namespace

void standard_normal_cuda(void* out, DType dtype, int64_t numel, uint64_t seed, uint64_t offset, void* stream) {
  constexpr const char* op = "standard_normal_cuda";
  cuda::dispatch_cuda_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    standard_normal_kernel<T><<<groups_grid(numel, offset), kThreads, 0, cuda::as_stream(stream)>>>(
        static_cast<T*>(out), numel, seed, offset);
  });
  cuda::check_launch(op);
}

void reparameterize_forward_cuda(const void* mu, const void* logvar, void* z, void* eps_out, DType dtype,
                                 int64_t numel, uint64_t seed, uint64_t offset, void* stream) {
  constexpr const char* op = "reparameterize_forward_cuda";
  cuda::dispatch_cuda_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    reparameterize_forward_kernel<T><<<groups_grid(numel, offset), kThreads, 0, cuda::as_stream(stream)>>>(
        static_cast<const T*>(mu), static_cast<const T*>(logvar), static_cast<T*>(z), static_cast<T*>(eps_out),
        numel, seed, offset);
  });
  cuda::check_launch(op);
}

void reparameterize_backward_cuda(const void* grad_z, const void* logvar, void* grad_logvar, DType dtype,
                                  int64_t numel, uint64_t seed, uint64_t offset, void* stream) {
  constexpr const char* op = "reparameterize_backward_cuda";
  cuda::dispatch_cuda_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    reparameterize_backward_kernel<T><<<groups_grid(numel, offset), kThreads, 0, cuda::as_stream(stream)>>>(
        static_cast<const T*>(grad_z), static_cast<const T*>(logvar), static_cast<T*>(grad_logvar), numel, seed,
        offset);
  });
  cuda::check_launch(op);
}

}  // namespace ganrt
