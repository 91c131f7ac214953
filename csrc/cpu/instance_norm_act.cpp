// CPU kernels of the fused instance norm + affine + residual + activation (contract in ops.h).
//
// Work unit: a chunk of kChunk consecutive elements of one (n, c) plane. A chunk's statistics come from one
// read pass of shifted sums (sum d, sum d^2 with d = x - shift, shift = the mean of the chunk's first 16
// elements: exact for large-mean planes, where x - shift loses nothing, and needing no provisional-mean pass over
// the whole chunk); chunks merge with Chan's formula in double in chunk order. Planes are processed whole by one thread when there are enough of them (the plane then
// stays in L2 between the statistics and the normalization pass); with fewer planes than threads the chunks of
// a plane are spread over threads and merged in the same order, so results do not depend on the thread count.
//
// Instruction sets: the hot loops are compiled three times (AVX-512, AVX2, baseline SSE2) and the widest one the
// CPU supports is picked once at load time. Reductions keep the same 128 bytes of logical accumulators in every
// variant (two 64-byte vectors, four 32-byte or eight 16-byte ones, lane l always summing elements l mod L) and
// add them up in the same order; with -ffp-contract=off every variant gives bit-identical results.
// The 32/64-byte vector helpers below only ever run inlined into the AVX2/AVX-512 variants (all internal to
// this file), so GCC's note that passing such vectors by value has a different ABI without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/activation.h"
#include "common/dispatch.h"
#include "common/parallel.h"
#include "common/welford.h"
#include "ops.h"

namespace ganrt {
namespace {

constexpr int64_t kChunk = 4096;

// GCC/Clang vector types of VB bytes: they vectorize without -ffast-math and sum in a fixed order. VB must be a
// width the variant's instruction set has natively (wider generic vectors get their compares lowered to scalar
// code).
template <typename T, int VB>
struct Lanes {
  typedef T Vec __attribute__((vector_size(VB)));
  static constexpr int kWidth = VB / static_cast<int>(sizeof(T));
  static constexpr int kUnroll = 128 / VB;                 // vectors of accumulators
  static constexpr int kStep = kWidth * kUnroll;           // elements per iteration = logical lanes

  static GANRT_FORCE_INLINE Vec load(const T* p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static GANRT_FORCE_INLINE Vec splat(T s) { return Vec{} + s; }
  // Sum of the logical lanes l = u * kWidth + j in an order fixed by l alone (four double partials over l mod 4,
  // combined pairwise), so every VB gives the same result; four independent chains instead of one keep this
  // per-chunk cost small next to the 256-element planes of the 512@16^2 shape.
  static GANRT_FORCE_INLINE double sum(const Vec (&v)[kUnroll]) {
    static_assert(kWidth % 2 == 0 && kStep % 4 == 0, "lane bookkeeping assumes four partials");
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    for (int u = 0; u < kUnroll; ++u)
      for (int j = 0; j < kWidth; ++j) s[(u * kWidth + j) % 4] += v[u][j];
    return (s[0] + s[1]) + (s[2] + s[3]);
  }
};

// Runs f (an always-inline lambda holding a hot loop) inside a function compiled for the instruction set whose
// vector width is VB bytes, so the loop is vectorized for it.
template <typename F>
__attribute__((target("avx512f"))) void run_avx512(const F& f) {
  f();
}
template <typename F>
__attribute__((target("avx2"))) void run_avx2(const F& f) {
  f();
}
template <typename F>
void run_baseline(const F& f) {
  f();
}
template <int VB, typename F>
GANRT_FORCE_INLINE void run_isa(const F& f) {
  if constexpr (VB == 64) {
    run_avx512(f);
  } else if constexpr (VB == 32) {
    run_avx2(f);
  } else {
    run_baseline(f);
  }
}

#define GANRT_HOT __attribute__((always_inline))

int detect_vector_bytes() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return 64;
  if (__builtin_cpu_supports("avx2")) return 32;
#endif
  return 16;
}
const int kVectorBytes = detect_vector_bytes();

using Stats = WelfordStats<double>;

template <typename T, int VB>
GANRT_FORCE_INLINE Stats chunk_stats(const T* x, int64_t len) {
  using V = Lanes<T, VB>;
  using Vec = typename V::Vec;
  constexpr int W = V::kWidth, U = V::kUnroll;
  // The shift is the mean of the first (up to) 16 elements: close enough to the chunk mean that the sums of d
  // and d^2 over <= 4096 elements lose nothing that matters in T, even when a single element (say a corner pixel)
  // is an outlier; and x - shift is exact when x is within a factor 2 of shift, which keeps large-mean planes
  // (1e4 +- 1) precise. Four fixed partial sums keep this short dependency chain cheap for small planes.
  const int64_t head = std::min<int64_t>(len, 16);
  double h[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t k = 0; k < head; ++k) h[k % 4] += static_cast<double>(x[k]);
  const T shift = static_cast<T>(((h[0] + h[1]) + (h[2] + h[3])) / static_cast<double>(head));
  const Vec vshift = V::splat(shift);
  Vec d1[U] = {}, d2[U] = {};
  int64_t i = 0;
  for (; i + V::kStep <= len; i += V::kStep)
    for (int u = 0; u < U; ++u) {
      const Vec d = V::load(x + i + u * W) - vshift;
      d1[u] += d;
      d2[u] += d * d;
    }
  double sum_d = V::sum(d1), sum_d2 = V::sum(d2);
  for (; i < len; ++i) {
    const double d = static_cast<double>(x[i] - shift);
    sum_d += d;
    sum_d2 += d * d;
  }
  return welford_from_shifted_sums<double>(static_cast<double>(len), shift, sum_d, sum_d2);
}

template <typename T, int VB>
GANRT_FORCE_INLINE Stats plane_stats(const T* x, int64_t m) {
  Stats s;
  for (int64_t b = 0; b < m; b += kChunk) s = welford_merge(s, chunk_stats<T, VB>(x + b, std::min(kChunk, m - b)));
  return s;
}

template <typename T, Activation A, int VB>
struct Forward {
  const InstanceNormActParams& p;
  using Acc = T;  // accumulator type of mean/rstd: double for float64, float for float32

  void finish_plane(int64_t plane, const Stats& s) const {
    static_cast<Acc*>(p.mean)[plane] = static_cast<Acc>(s.mean);
    static_cast<Acc*>(p.rstd)[plane] = static_cast<Acc>(1.0 / std::sqrt(s.variance() + p.eps));
  }

  // Normalizes elements [b, e) of `plane` with the stored rstd and the double `mean`, split into hi + lo in T:
  // x - hi is exact near the mean, so large-mean planes (1e4 +- 1 in float32) keep full precision.
  GANRT_FORCE_INLINE void normalize(int64_t plane, int64_t b, int64_t e, double mean) const {
    const int64_t off = plane * p.plane_size;
    const int64_t ch = plane < p.c ? plane : plane % p.c;  // N = 1 (the common case) needs no division
    const T* x = static_cast<const T*>(p.x) + off;
    const T* res = p.residual ? static_cast<const T*>(p.residual) + off : nullptr;
    T* y = static_cast<T*>(p.y) + off;
    const T w = p.weight ? static_cast<const T*>(p.weight)[ch] : T(1);
    const T bias = p.bias ? static_cast<const T*>(p.bias)[ch] : T(0);
    const T scale = w * static_cast<const Acc*>(p.rstd)[plane];
    const T hi = static_cast<T>(mean);
    const T lo = static_cast<T>(mean - static_cast<double>(hi));
    const T slope = static_cast<T>(p.negative_slope);
    if (res) {
      for (int64_t i = b; i < e; ++i) y[i] = activate<A>(((x[i] - hi) - lo) * scale + bias + res[i], slope);
    } else {
      for (int64_t i = b; i < e; ++i) y[i] = activate<A>(((x[i] - hi) - lo) * scale + bias, slope);
    }
  }

  void run() const {
    const int64_t planes = p.n * p.c, m = p.plane_size;
    const int64_t chunks = (m + kChunk - 1) / kChunk;
    if (planes >= p.num_threads || chunks == 1) {
      parallel_for(planes, parallel_grain(planes, m, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
        run_isa<VB>([&]() GANRT_HOT {
          for (int64_t plane = b; plane < e; ++plane) {
            const Stats s = plane_stats<T, VB>(static_cast<const T*>(p.x) + plane * m, m);
            finish_plane(plane, s);
            normalize(plane, 0, m, s.mean);
          }
        });
      });
      return;
    }
    // Few large planes: statistics of all chunks in parallel, merge per plane in chunk order, then normalize.
    const int64_t items = planes * chunks;
    std::vector<Stats> partial(static_cast<size_t>(items));
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
          partial[it] =
              chunk_stats<T, VB>(static_cast<const T*>(p.x) + plane * m + start, std::min(kChunk, m - start));
        }
      });
    });
    std::vector<double> means(static_cast<size_t>(planes));
    for (int64_t plane = 0; plane < planes; ++plane) {
      Stats s;
      for (int64_t k = 0; k < chunks; ++k) s = welford_merge(s, partial[plane * chunks + k]);
      finish_plane(plane, s);
      means[plane] = s.mean;
    }
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
          normalize(plane, start, std::min(m, start + kChunk), means[plane]);
        }
      });
    });
  }
};

template <typename T, Activation A, int VB>
struct Backward {
  const InstanceNormActBackwardParams& p;
  using Acc = T;

  // Per plane: S1 = sum(g), S2 = sum(g * (x - mean)) with g = grad_y * act'(y); rstd is applied once per
  // plane (sum_dy_xhat = rstd * S2) instead of once per element.
  struct Sums {
    double dy = 0.0, dy_xc = 0.0;
  };

  GANRT_FORCE_INLINE Sums chunk_sums(int64_t plane, int64_t b, int64_t e) const {
    using V = Lanes<T, VB>;
    using Vec = typename V::Vec;
    constexpr int W = V::kWidth, U = V::kUnroll;
    const int64_t off = plane * p.plane_size;
    const T* gy = static_cast<const T*>(p.grad_y) + off;
    const T* y = static_cast<const T*>(p.y) + off;
    const T* x = static_cast<const T*>(p.x) + off;
    const T mean = static_cast<const Acc*>(p.mean)[plane];
    const T slope = static_cast<T>(p.negative_slope);
    const Vec vmean = V::splat(mean), vslope = V::splat(slope);
    Vec a1[U] = {}, a2[U] = {};
    int64_t i = b;
    for (; i + V::kStep <= e; i += V::kStep)
      for (int u = 0; u < U; ++u) {
        const int64_t k = i + u * W;
        const Vec g = activation_grad<A>(V::load(gy + k), V::load(y + k), vslope);
        a1[u] += g;
        a2[u] += g * (V::load(x + k) - vmean);
      }
    Sums s;
    s.dy = V::sum(a1);
    s.dy_xc = V::sum(a2);
    for (; i < e; ++i) {
      const T g = activation_grad<A>(gy[i], y[i], slope);
      s.dy += g;
      s.dy_xc += g * (x[i] - mean);
    }
    return s;
  }

  GANRT_FORCE_INLINE Sums plane_sums(int64_t plane) const {
    Sums s;
    for (int64_t b = 0; b < p.plane_size; b += kChunk) {
      const Sums c = chunk_sums(plane, b, std::min(p.plane_size, b + kChunk));
      s.dy += c.dy;
      s.dy_xc += c.dy_xc;
    }
    return s;
  }

  void finish_plane(int64_t plane, const Sums& s) const {
    static_cast<Acc*>(p.sum_dy)[plane] = static_cast<Acc>(s.dy);
    const double rstd = static_cast<const Acc*>(p.rstd)[plane];
    static_cast<Acc*>(p.sum_dy_xhat)[plane] = static_cast<Acc>(rstd * s.dy_xc);
  }

  // grad_x and grad_residual over elements [b, e) of `plane`, using the plane's sums already stored:
  // grad_x = k (g - c1 - xhat c2) with k = w rstd, rewritten per element as k g - a (x - mean) - k c1 with the
  // plane constant a = k c2 rstd (two multiplies and two subtractions per element, no xhat).
  GANRT_FORCE_INLINE void elementwise(int64_t plane, int64_t b, int64_t e) const {
    const int64_t off = plane * p.plane_size;
    const T* gy = static_cast<const T*>(p.grad_y) + off;
    const T* y = static_cast<const T*>(p.y) + off;
    const T slope = static_cast<T>(p.negative_slope);
    if (p.grad_residual) {
      T* gr = static_cast<T*>(p.grad_residual) + off;
      for (int64_t i = b; i < e; ++i) gr[i] = activation_grad<A>(gy[i], y[i], slope);
    }
    if (!p.grad_x) return;
    const T* x = static_cast<const T*>(p.x) + off;
    T* gx = static_cast<T*>(p.grad_x) + off;
    const T mean = static_cast<const Acc*>(p.mean)[plane];
    const T rstd = static_cast<const Acc*>(p.rstd)[plane];
    const T inv_m = static_cast<T>(1.0 / static_cast<double>(p.plane_size));
    const T c1 = static_cast<const Acc*>(p.sum_dy)[plane] * inv_m;
    const T c2 = static_cast<const Acc*>(p.sum_dy_xhat)[plane] * inv_m;
    const T w = p.weight ? static_cast<const T*>(p.weight)[plane < p.c ? plane : plane % p.c] : T(1);
    const T k = w * rstd;
    const T a = k * c2 * rstd;
    const T kc1 = k * c1;
    for (int64_t i = b; i < e; ++i) {
      const T g = activation_grad<A>(gy[i], y[i], slope);
      gx[i] = (k * g - a * (x[i] - mean)) - kc1;
    }
  }

  void run() const {
    const int64_t planes = p.n * p.c, m = p.plane_size;
    const int64_t chunks = (m + kChunk - 1) / kChunk;
    if (planes >= p.num_threads || chunks == 1) {
      parallel_for(planes, parallel_grain(planes, m, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
        run_isa<VB>([&]() GANRT_HOT {
          for (int64_t plane = b; plane < e; ++plane) {
            finish_plane(plane, plane_sums(plane));
            elementwise(plane, 0, m);
          }
        });
      });
      return;
    }
    const int64_t items = planes * chunks;
    std::vector<Sums> partial(static_cast<size_t>(items));
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
          partial[it] = chunk_sums(plane, start, std::min(m, start + kChunk));
        }
      });
    });
    for (int64_t plane = 0; plane < planes; ++plane) {
      Sums s;
      for (int64_t k = 0; k < chunks; ++k) {
        s.dy += partial[plane * chunks + k].dy;
        s.dy_xc += partial[plane * chunks + k].dy_xc;
      }
      finish_plane(plane, s);
    }
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
          elementwise(plane, start, std::min(m, start + kChunk));
        }
      });
    });
  }
};

#undef GANRT_HOT

template <template <typename, Activation, int> class K, typename T, Activation A, typename P>
void run_widest(const P& p) {
  switch (kVectorBytes) {
    case 64: K<T, A, 64>{p}.run(); break;
    case 32: K<T, A, 32>{p}.run(); break;
    default: K<T, A, 16>{p}.run(); break;
  }
}

}  // namespace

void instance_norm_act_forward_cpu(const InstanceNormActParams& p, DType dtype) {
  constexpr const char* op = "instance_norm_act_forward_cpu";
  dispatch_cpu_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    dispatch_activation(p.act, op, [&](auto a) { run_widest<Forward, T, decltype(a)::value>(p); });
  });
}

void instance_norm_act_backward_cpu(const InstanceNormActBackwardParams& p, DType dtype) {
  constexpr const char* op = "instance_norm_act_backward_cpu";
  dispatch_cpu_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    dispatch_activation(p.act, op, [&](auto a) { run_widest<Backward, T, decltype(a)::value>(p); });
  });
}

}  // namespace ganrt
