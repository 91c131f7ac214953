// CPU kernels of the Philox normals and the VAE reparameterization (contract in ops.h, math in
// common/philox.h).
//
// Backward recomputes eps from (seed, offset) instead of reading a saved eps tensor. Trade-off: the forward
// pass stores nothing beyond its inputs (saving numel elements of memory per VAE step and a write + a read of
// them), at the price of one more Philox + Box-Muller evaluation in backward: about 60 flops per element,
// cheaper than the memory traffic on GPUs and a few ns per element on a CPU core. Both passes use the same
// arithmetic, so the recomputed eps is bit-identical to the forward one.
#include <algorithm>
#include <cstdint>

#include "common/dispatch.h"
#include "common/parallel.h"
#include "common/philox.h"
#include "ops.h"

namespace ganrt {
namespace {

constexpr int kGroupsPerBatch = 64;  // 256 normals (2 KiB of doubles): generated, then consumed from L1

// The normals of counters [group0, group0 + count), count <= kGroupsPerBatch, in stream order into out[4 count].
// Two structure-of-arrays passes (Philox blocks, then Box-Muller over all pairs) so each loop vectorizes. The
// AVX-512 and AVX2 clones widen the lanes where the CPU has them; with -ffp-contract=off (CMakeLists.txt) they
// compute bit-identical results to the baseline clone.
__attribute__((target_clones("avx512f", "avx2", "default"))) void normals_batch(uint64_t group0, int count,
                                                                              uint64_t seed, double* out) {
  uint64_t a[2 * kGroupsPerBatch], b[2 * kGroupsPerBatch];
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int k = 0; k < count; ++k) {
    const uint64_t group = group0 + static_cast<uint64_t>(k);
    const U32x4 r = philox4x32_10(U32x4{static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32), 0u, 0u},
                                  k0, k1);
    a[2 * k] = r.x;
    b[2 * k] = r.y;
    a[2 * k + 1] = r.z;
    b[2 * k + 1] = r.w;
  }
  for (int j = 0; j < 2 * count; ++j) box_muller(a[j], b[j], &out[2 * j], &out[2 * j + 1]);
}

// Calls consume(i0, eps, count) for consecutive runs covering elements [begin, end) of a call with `offset`,
// where eps[j] is the normal of element i0 + j (stream position offset + i0 + j).
template <typename F>
void for_each_normal(uint64_t seed, uint64_t offset, int64_t begin, int64_t end, F&& consume) {
  double buf[4 * kGroupsPerBatch];
  // Counts, not end positions, so nothing overflows when the stream ends at 2^64 - 1 (the binding guarantees
  // offset + numel < 2^64).
  uint64_t g = offset + static_cast<uint64_t>(begin);
  uint64_t remaining = static_cast<uint64_t>(end - begin);
  while (remaining > 0) {
    const uint64_t first = g % 4;  // lanes of the first counter that precede g
    const uint64_t count = std::min<uint64_t>(remaining, 4 * kGroupsPerBatch - first);
    normals_batch(g / 4, static_cast<int>((first + count + 3) / 4), seed, buf);
    consume(static_cast<int64_t>(g - offset), buf + first, static_cast<int64_t>(count));
    g += count;
    remaining -= count;
  }
}

// exp(x) in double, branch-free so the elementwise loops vectorize (a libm call per element costs more than the
// rest of reparameterize). exp(x) = 2^n exp(r), n = round(x / ln 2), |r| <= ln(2)/2, Taylor to degree 13
// (truncation < 1e-17 relative); 2^n is built from two halves so results from overflow (inf) down to the
// subnormals come out right. Max error ~1 ulp; NaN propagates. Float callers round the result once, which
// matches a correctly rounded expf except within ~1e-16 of a rounding boundary.
GANRT_FORCE_INLINE double exp_vec(double x) {
  constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer in the low bits
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  x = x > 710.0 ? 710.0 : x;  // beyond: inf / 0 anyway; keeps n within two normal half-scales
  x = x < -746.0 ? -746.0 : x;
  const double n = (x * kLog2e + kShift) - kShift;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // n = n1 + n2 with both halves in [-538, 513]; 2^k has the bit pattern (k + 1023) << 52.
  const double n1 = (n * 0.5 + kShift) - kShift;
  const double n2 = n - n1;
  auto pow2 = [&](double k) {
    const uint64_t kbits = philox_detail::double_bits(k + kShift) - philox_detail::double_bits(kShift);
    return philox_detail::bits_double((kbits + 1023) << 52);
  };
  return (p * pow2(n1)) * pow2(n2);
}

// out[j] = exp(0.5 * logvar[j]) rounded to T, for a run of at most 4 * kGroupsPerBatch elements. Cloned per
// instruction set like normals_batch: on baseline SSE2 (two doubles per vector) the degree-13 polynomial would
// cost more than a libm call.
template <typename T>
GANRT_FORCE_INLINE void half_exp_impl(const T* logvar, T* out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = static_cast<T>(exp_vec(T(0.5) * logvar[j]));
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void half_exp(const float* logvar, float* out,
                                                                          int64_t n) {
  half_exp_impl(logvar, out, n);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void half_exp(const double* logvar, double* out,
                                                                          int64_t n) {
  half_exp_impl(logvar, out, n);
}

// Elementwise work is split into pieces of at least this many elements (~10 us of work each, well above the cost
// of waking a pool thread).
constexpr int64_t kMinPiece = 4096;

template <typename T>
void standard_normal_impl(T* out, int64_t numel, uint64_t seed, uint64_t offset, int num_threads) {
  parallel_for(numel, parallel_grain(numel, 1, num_threads, kMinPiece), num_threads, [&](int64_t b, int64_t e) {
    for_each_normal(seed, offset, b, e, [&](int64_t i0, const double* eps, int64_t count) {
      for (int64_t j = 0; j < count; ++j) out[i0 + j] = static_cast<T>(eps[j]);
    });
  });
}

template <typename T>
void reparameterize_forward_impl(const T* mu, const T* logvar, T* z, T* eps_out, int64_t numel, uint64_t seed,
                                 uint64_t offset, int num_threads) {
  parallel_for(numel, parallel_grain(numel, 1, num_threads, kMinPiece), num_threads, [&](int64_t b, int64_t e) {
    for_each_normal(seed, offset, b, e, [&](int64_t i0, const double* eps, int64_t count) {
      T sd[4 * kGroupsPerBatch];
      half_exp(logvar + i0, sd, count);
      // Same operation order as mu + exp(0.5 * logvar) * eps in T, the reference computation.
      for (int64_t j = 0; j < count; ++j) z[i0 + j] = mu[i0 + j] + sd[j] * static_cast<T>(eps[j]);
      if (eps_out)
        for (int64_t j = 0; j < count; ++j) eps_out[i0 + j] = static_cast<T>(eps[j]);
    });
  });
}

template <typename T>
void reparameterize_backward_impl(const T* grad_z, const T* logvar, T* grad_logvar, int64_t numel, uint64_t seed,
                                  uint64_t offset, int num_threads) {
  parallel_for(numel, parallel_grain(numel, 1, num_threads, kMinPiece), num_threads, [&](int64_t b, int64_t e) {
    for_each_normal(seed, offset, b, e, [&](int64_t i0, const double* eps, int64_t count) {
      T sd[4 * kGroupsPerBatch];
      half_exp(logvar + i0, sd, count);
      // The chain rule in the order autograd applies it to the reference: ((grad * eps) * std) * 0.5.
      for (int64_t j = 0; j < count; ++j)
        grad_logvar[i0 + j] = grad_z[i0 + j] * static_cast<T>(eps[j]) * sd[j] * T(0.5);
    });
  });
}

}  // namespace

void standard_normal_cpu(void* out, DType dtype, int64_t numel, uint64_t seed, uint64_t offset, int num_threads) {
  dispatch_cpu_float(dtype, "standard_normal_cpu", [&](auto t) {
    using T = typename decltype(t)::type;
    standard_normal_impl(static_cast<T*>(out), numel, seed, offset, num_threads);
  });
}

void reparameterize_forward_cpu(const void* mu, const void* logvar, void* z, void* eps_out, DType dtype,
                                int64_t numel, uint64_t seed, uint64_t offset, int num_threads) {
  dispatch_cpu_float(dtype, "reparameterize_forward_cpu", [&](auto t) {
    using T = typename decltype(t)::type;
    reparameterize_forward_impl(static_cast<const T*>(mu), static_cast<const T*>(logvar), static_cast<T*>(z),
                                static_cast<T*>(eps_out), numel, seed, offset, num_threads);
  });
}

void reparameterize_backward_cpu(const void* grad_z, const void* logvar, void* grad_logvar, DType dtype,
                                 int64_t numel, uint64_t seed, uint64_t offset, int num_threads) {
  dispatch_cpu_float(dtype, "reparameterize_backward_cpu", [&](auto t) {
    using T = typename decltype(t)::type;
    reparameterize_backward_impl(static_cast<const T*>(grad_z), static_cast<const T*>(logvar),
                                 static_cast<T*>(grad_logvar), numel, seed, offset, num_threads);
  });
}

}  // namespace ganrt
