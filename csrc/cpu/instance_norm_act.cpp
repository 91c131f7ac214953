// CPU kernels of the fused instance norm + affine + residual + activation (contract in ops.h).
//
// Work unit: a chunk of kChunk consecutive elements of one (n, c) plane. A chunk's statistics come from a
// corrected two-pass over it (the second read hits L1), then chunks merge with Chan's formula in double in
// chunk order. Planes are processed whole by one thread when there are enough of them (the plane then stays in
// L2 between the statistics and the normalization pass); with fewer planes than threads the chunks of a plane
// are spread over threads and merged in the same order, so results do not depend on the thread count.
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

// Reductions keep kUnroll independent accumulators of one SSE register each (GCC/Clang vector types): they
// vectorize without -ffast-math, hide the add latency, and sum in a fixed, thread-count-independent order.
// 16-byte vectors because wider generic vectors get their compares lowered to scalar code on baseline x86-64.
template <typename T>
struct Lanes {
  typedef T Vec __attribute__((vector_size(16)));
  static constexpr int kWidth = 16 / sizeof(T);
  static constexpr int kUnroll = 4;
  static constexpr int kStep = kWidth * kUnroll;  // elements per iteration

  static Vec load(const T* p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static Vec splat(T s) { return Vec{} + s; }
  static double sum(const Vec (&v)[kUnroll]) {
    double s = 0.0;
    for (int u = 0; u < kUnroll; ++u)
      for (int j = 0; j < kWidth; ++j) s += v[u][j];
    return s;
  }
};

using Stats = WelfordStats<double>;

template <typename T>
Stats chunk_stats(const T* x, int64_t len) {
  using V = Lanes<T>;
  using Vec = typename V::Vec;
  constexpr int W = V::kWidth, U = V::kUnroll;
  Vec acc[U] = {};
  int64_t i = 0;
  for (; i + V::kStep <= len; i += V::kStep)
    for (int u = 0; u < U; ++u) acc[u] += V::load(x + i + u * W);
  double sum = V::sum(acc);
  for (; i < len; ++i) sum += x[i];
  // The provisional mean only needs to be close: the second pass measures and removes its error, and x - shift
  // is exact in T when x is near shift, which keeps large-mean planes precise.
  const T shift = static_cast<T>(sum / static_cast<double>(len));
  const Vec vshift = V::splat(shift);
  Vec d1[U] = {}, d2[U] = {};
  for (i = 0; i + V::kStep <= len; i += V::kStep)
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

template <typename T>
Stats plane_stats(const T* x, int64_t m) {
  Stats s;
  for (int64_t b = 0; b < m; b += kChunk) s = welford_merge(s, chunk_stats(x + b, std::min(kChunk, m - b)));
  return s;
}

template <typename T, Activation A>
struct Forward {
  const InstanceNormActParams& p;
  using Acc = T;  // accumulator type of mean/rstd: double for float64, float for float32

  void finish_plane(int64_t plane, const Stats& s) const {
    static_cast<Acc*>(p.mean)[plane] = static_cast<Acc>(s.mean);
    static_cast<Acc*>(p.rstd)[plane] = static_cast<Acc>(1.0 / std::sqrt(s.variance() + p.eps));
  }

  // Normalizes elements [b, e) of `plane` with the stored rstd and the double `mean`, split into hi + lo in T:
  // x - hi is exact near the mean, so large-mean planes (1e4 +- 1 in float32) keep full precision.
  void normalize(int64_t plane, int64_t b, int64_t e, double mean) const {
    const int64_t off = plane * p.plane_size;
    const int64_t ch = plane % p.c;
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
        for (int64_t plane = b; plane < e; ++plane) {
          const Stats s = plane_stats(static_cast<const T*>(p.x) + plane * m, m);
          finish_plane(plane, s);
          normalize(plane, 0, m, s.mean);
        }
      });
      return;
    }
    // Few large planes: statistics of all chunks in parallel, merge per plane in chunk order, then normalize.
    const int64_t items = planes * chunks;
    std::vector<Stats> partial(static_cast<size_t>(items));
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
        partial[it] = chunk_stats(static_cast<const T*>(p.x) + plane * m + start, std::min(kChunk, m - start));
      }
    });
    std::vector<double> means(static_cast<size_t>(planes));
    for (int64_t plane = 0; plane < planes; ++plane) {
      Stats s;
      for (int64_t k = 0; k < chunks; ++k) s = welford_merge(s, partial[plane * chunks + k]);
      finish_plane(plane, s);
      means[plane] = s.mean;
    }
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
        normalize(plane, start, std::min(m, start + kChunk), means[plane]);
      }
    });
  }
};

template <typename T, Activation A>
struct Backward {
  const InstanceNormActBackwardParams& p;
  using Acc = T;

  struct Sums {
    double dy = 0.0, dy_xhat = 0.0;
  };

  // sum(g) and sum(g * xhat) over elements [b, e) of `plane`, g = grad_y * act'(y).
  Sums chunk_sums(int64_t plane, int64_t b, int64_t e) const {
    using V = Lanes<T>;
    using Vec = typename V::Vec;
    constexpr int W = V::kWidth, U = V::kUnroll;
    const int64_t off = plane * p.plane_size;
    const T* gy = static_cast<const T*>(p.grad_y) + off;
    const T* y = static_cast<const T*>(p.y) + off;
    const T* x = static_cast<const T*>(p.x) + off;
    const T mean = static_cast<const Acc*>(p.mean)[plane];
    const T rstd = static_cast<const Acc*>(p.rstd)[plane];
    const T slope = static_cast<T>(p.negative_slope);
    const Vec vmean = V::splat(mean), vrstd = V::splat(rstd), vslope = V::splat(slope);
    Vec a1[U] = {}, a2[U] = {};
    int64_t i = b;
    for (; i + V::kStep <= e; i += V::kStep)
      for (int u = 0; u < U; ++u) {
        const int64_t k = i + u * W;
        const Vec g = activation_grad<A>(V::load(gy + k), V::load(y + k), vslope);
        a1[u] += g;
        a2[u] += g * ((V::load(x + k) - vmean) * vrstd);
      }
    Sums s;
    s.dy = V::sum(a1);
    s.dy_xhat = V::sum(a2);
    for (; i < e; ++i) {
      const T g = activation_grad<A>(gy[i], y[i], slope);
      s.dy += g;
      s.dy_xhat += g * ((x[i] - mean) * rstd);
    }
    return s;
  }

  Sums plane_sums(int64_t plane) const {
    Sums s;
    for (int64_t b = 0; b < p.plane_size; b += kChunk) {
      const Sums c = chunk_sums(plane, b, std::min(p.plane_size, b + kChunk));
      s.dy += c.dy;
      s.dy_xhat += c.dy_xhat;
    }
    return s;
  }

  void finish_plane(int64_t plane, const Sums& s) const {
    static_cast<Acc*>(p.sum_dy)[plane] = static_cast<Acc>(s.dy);
    static_cast<Acc*>(p.sum_dy_xhat)[plane] = static_cast<Acc>(s.dy_xhat);
  }

  // grad_x and grad_residual over elements [b, e) of `plane`, using the plane's sums already stored.
  void elementwise(int64_t plane, int64_t b, int64_t e) const {
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
    const T w = p.weight ? static_cast<const T*>(p.weight)[plane % p.c] : T(1);
    const T k = w * rstd;
    for (int64_t i = b; i < e; ++i) {
      const T g = activation_grad<A>(gy[i], y[i], slope);
      const T xhat = (x[i] - mean) * rstd;
      gx[i] = k * (g - c1 - xhat * c2);
    }
  }

  void run() const {
    const int64_t planes = p.n * p.c, m = p.plane_size;
    const int64_t chunks = (m + kChunk - 1) / kChunk;
    if (planes >= p.num_threads || chunks == 1) {
      parallel_for(planes, parallel_grain(planes, m, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
        for (int64_t plane = b; plane < e; ++plane) {
          finish_plane(plane, plane_sums(plane));
          elementwise(plane, 0, m);
        }
      });
      return;
    }
    const int64_t items = planes * chunks;
    std::vector<Sums> partial(static_cast<size_t>(items));
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
        partial[it] = chunk_sums(plane, start, std::min(m, start + kChunk));
      }
    });
    for (int64_t plane = 0; plane < planes; ++plane) {
      Sums s;
      for (int64_t k = 0; k < chunks; ++k) {
        s.dy += partial[plane * chunks + k].dy;
        s.dy_xhat += partial[plane * chunks + k].dy_xhat;
      }
      finish_plane(plane, s);
    }
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
        elementwise(plane, start, std::min(m, start + kChunk));
      }
    });
  }
};

}  // namespace

void instance_norm_act_forward_cpu(const InstanceNormActParams& p, DType dtype) {
  constexpr const char* op = "instance_norm_act_forward_cpu";
  dispatch_cpu_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    dispatch_activation(p.act, op, [&](auto a) { Forward<T, decltype(a)::value>{p}.run(); });
  });
}

void instance_norm_act_backward_cpu(const InstanceNormActBackwardParams& p, DType dtype) {
  constexpr const char* op = "instance_norm_act_backward_cpu";
  dispatch_cpu_float(dtype, op, [&](auto t) {
    using T = typename decltype(t)::type;
    dispatch_activation(p.act, op, [&](auto a) { Backward<T, decltype(a)::value>{p}.run(); });
  });
}

}  // namespace ganrt
