// Public launchers of the ganrt core. Kernels see raw pointers, sizes and a stream only (no torch, no pybind11),
// so the same functions serve the PyTorch ops, the runtime's pre/post-processing and a TensorRT plugin.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ganrt {

enum class DType : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3, UInt8 = 4 };
enum class Activation : int { None = 0, ReLU = 1, LeakyReLU = 2 };

// Errors from launchers (bad configuration, CUDA runtime errors) are reported as exceptions of this type;
// bindings turn them into Python RuntimeError. Launchers never exit() or print.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// y = act(weight[c] * (x - mean) * rstd + bias[c] + residual), one (n, c) plane at a time.
// x, residual, y: contiguous (N, C, H, W) of `dtype`, or contiguous (N, H, W, C) (PyTorch's channels_last)
// when `channels_last`; weight, bias: (C,) of `dtype` or null; residual may be null. mean, rstd: (N*C,)
// accumulator type (double for Float64, float otherwise), written. dtype: float32, float64 or bfloat16 on CPU
// (bf16 is loaded into float; statistics and arithmetic never run in bf16), float32, float16 or bfloat16 on
// CUDA (NCHW only).
struct InstanceNormActParams {
  const void* x = nullptr;
  const void* weight = nullptr;
  const void* bias = nullptr;
  const void* residual = nullptr;
  void* y = nullptr;
  void* mean = nullptr;
  void* rstd = nullptr;
  int64_t n = 0, c = 0, plane_size = 0;
  // double so float64 runs use the caller's exact values (a float 0.2 would be off by 1.5e-8 relative);
  // float kernels round them once.
  double eps = 1e-5;
  double negative_slope = 0.2;
  Activation act = Activation::LeakyReLU;
  bool channels_last = false;  // CPU only
  int num_threads = 1;         // CPU only
  // CUDA only: device scratch for the split path (planes larger than one block holds), at least
  // instance_norm_act_forward_workspace_cuda(n, c, plane_size) bytes, 8-byte aligned, ordered on the launch's
  // stream like the tensors. The caller allocates it (torch's caching allocator; a TensorRT plugin's
  // workspace), so launches allocate nothing themselves and stay capturable into CUDA graphs.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// Backward from the saved output y, in the layout and dtype of the forward pass (the activation mask is y > 0,
// valid because negative_slope >= 0):
//   g = grad_y * act'(y);  grad_residual = g (if requested);
//   sum_dy[p] = sum(g), sum_dy_xhat[p] = sum(g * xhat) per plane (accumulator type, (N*C,));
//   grad_x = weight[c] * rstd * (g - sum_dy/M - xhat * sum_dy_xhat/M).
// grad_weight[c] / grad_bias[c] are the sums of sum_dy_xhat / sum_dy over n (done by the caller).
struct InstanceNormActBackwardParams {
  const void* grad_y = nullptr;
  const void* x = nullptr;
  const void* y = nullptr;
  const void* weight = nullptr;
  const void* mean = nullptr;
  const void* rstd = nullptr;
  void* grad_x = nullptr;         // may be null when x needs no grad
  void* grad_residual = nullptr;  // may be null
  void* sum_dy = nullptr;
  void* sum_dy_xhat = nullptr;
  int64_t n = 0, c = 0, plane_size = 0;
  double negative_slope = 0.2;
  Activation act = Activation::LeakyReLU;
  bool channels_last = false;  // all of grad_y, x, y, grad_x, grad_residual in (N, H, W, C); CPU only
  int num_threads = 1;
  // CUDA only: split-path scratch as in the forward, instance_norm_act_backward_workspace_cuda() bytes.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

void instance_norm_act_forward_cpu(const InstanceNormActParams& p, DType dtype);
void instance_norm_act_backward_cpu(const InstanceNormActBackwardParams& p, DType dtype);

// Philox4x32-10 normals. Element i of a call uses the global index g = offset + i (offset + numel <= 2^64 - 1):
// counter = (g / 4) as a 128-bit number (low 64 bits), key = seed (low word, high word),
// lane = g % 4; lanes (0,1) and (2,3) are Box-Muller pairs (a, b) of the four 32-bit outputs, in double:
// u = (a + 0.5) / 2^32, t = b / 2^32, r = sqrt(-2 ln u), lane 0/2 = r cos(2 pi t), lane 1/3 = r sin(2 pi t)
// (common/philox.h). So standard_normal(n, seed, offset=k) equals elements k.. of standard_normal(n + k, seed, 0).
void standard_normal_cpu(void* out, DType dtype, int64_t numel, uint64_t seed, uint64_t offset, int num_threads);
// z = mu + exp(0.5 * logvar) * eps; eps_out may be null.
void reparameterize_forward_cpu(const void* mu, const void* logvar, void* z, void* eps_out, DType dtype,
                                int64_t numel, uint64_t seed, uint64_t offset, int num_threads);
// grad_logvar = grad_z * 0.5 * exp(0.5 * logvar) * eps, with eps recomputed from (seed, offset).
void reparameterize_backward_cpu(const void* grad_z, const void* logvar, void* grad_logvar, DType dtype,
                                 int64_t numel, uint64_t seed, uint64_t offset, int num_threads);

// uint8 (N, H, W, C) -> (N, C, H, W) in [-1, 1]: x / 127.5 - 1.
void images_to_tensor_cpu(const uint8_t* src, void* dst, DType dtype, int64_t n, int64_t h, int64_t w, int64_t c,
                          int num_threads);
// (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C): round-to-nearest of (x + 1) * 127.5, clamped to [0, 255].
void tensor_to_images_cpu(const void* src, DType dtype, uint8_t* dst, int64_t n, int64_t c, int64_t h, int64_t w,
                          int num_threads);

#ifdef GANRT_WITH_CUDA
// CUDA launchers: same contracts, run asynchronously on `stream` (a cudaStream_t passed as void*).
void instance_norm_act_forward_cuda(const InstanceNormActParams& p, DType dtype, void* stream);
void instance_norm_act_backward_cuda(const InstanceNormActBackwardParams& p, DType dtype, void* stream);
// Workspace bytes the launchers above need for these sizes (0 when every plane fits one block); host-only.
size_t instance_norm_act_forward_workspace_cuda(int64_t n, int64_t c, int64_t plane_size);
size_t instance_norm_act_backward_workspace_cuda(int64_t n, int64_t c, int64_t plane_size);
void standard_normal_cuda(void* out, DType dtype, int64_t numel, uint64_t seed, uint64_t offset, void* stream);
void reparameterize_forward_cuda(const void* mu, const void* logvar, void* z, void* eps_out, DType dtype,
                                 int64_t numel, uint64_t seed, uint64_t offset, void* stream);
void reparameterize_backward_cuda(const void* grad_z, const void* logvar, void* grad_logvar, DType dtype,
                                  int64_t numel, uint64_t seed, uint64_t offset, void* stream);
void images_to_tensor_cuda(const uint8_t* src, void* dst, DType dtype, int64_t n, int64_t h, int64_t w, int64_t c,
                           void* stream);
void tensor_to_images_cuda(const void* src, DType dtype, uint8_t* dst, int64_t n, int64_t c, int64_t h, int64_t w,
                           void* stream);
int cuda_device_count();  // 0 when no driver or device
#endif

}  // namespace ganrt
