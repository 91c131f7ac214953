// CPU kernels of the fused instance norm + affine + residual + activation (contract in ops.h).
//
// Storage float32, float64 or bfloat16. bf16 values are widened to float on load and rounded (to nearest even,
// as PyTorch does) only when the result is stored, so a bf16 call computes exactly what the float32 kernel
// computes on the widened input, plus one rounding of the output.
//
// NCHW work unit: a chunk of kChunk consecutive elements of one (n, c) plane. A chunk's statistics come from one
// read pass of shifted sums (sum d, sum d^2 with d = x - shift, shift = the mean of the chunk's first 16
// elements: exact for large-mean planes, where x - shift loses nothing, and needing no provisional-mean pass over
// the whole chunk); chunks merge with Chan's formula in double in chunk order. Planes are processed whole by one
// thread when there are enough of them (the plane then stays in L2 between the statistics and the normalization
// pass); with fewer planes than threads the chunks of a plane are spread over threads and merged in the same
// order, so results do not depend on the thread count.
//
// NHWC (channels_last) work unit: a block of consecutive positions of one image, all channels, about
// kBlockElems elements, read in memory order with one vector of accumulators per group of channels. Each block
// has its own per-channel shift (the mean of its first 16 positions) and turns its float sums into double every
// kGroup positions, so a channel's float chain is as short as a lane's in the NCHW reduction; blocks merge per
// channel in block order (Chan's formula), which again makes results independent of the thread count. A
// channels_last tensor is thus normalized in place of its layout, without the two transposing copies a
// contiguous-only kernel would need.
//
// Instruction sets: the hot loops are compiled three times (AVX-512, AVX2, baseline SSE2) and the widest one the
// CPU supports is picked once at load time. Reductions keep the same 128 bytes of logical accumulators in every
// variant (two 64-byte vectors, four 32-byte or eight 16-byte ones, lane l always summing elements l mod L) and
// add them up in the same order; NHWC lanes are channels, each summed in position order whatever the width; with
// -ffp-contract=off every variant gives bit-identical results.
// The 32/64-byte vector helpers below only ever run inlined into the AVX2/AVX-512 variants (all internal to
// this file), so GCC's note that passing such vectors by value has a different ABI without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/activation.h"
#include "common/bfloat16.h"
#include "common/dispatch.h"
#include "common/parallel.h"
#include "common/welford.h"
#include "ops.h"

namespace ganrt {
namespace {

constexpr int64_t kChunk = 4096;
// NHWC blocks: big enough that per-block work (a shift, one merge per channel) is noise, small enough (64 KiB of
// float) to stay in L2 and to give several pieces per thread on the 64x64x256 planes of a ResNet generator.
constexpr int64_t kBlockElems = 16384;
// NHWC positions summed in float before the sums move to double (the NCHW lanes sum 32 elements each, too).
constexpr int64_t kGroup = 32;

// The arithmetic type of a storage type: bf16 computes in float.
template <typename S>
struct Compute {
  using type = S;
};
template <>
struct Compute<BFloat16> {
  using type = float;
};

// Type of the per-plane statistics (mean, rstd, sum_dy, sum_dy_xhat): double for float64, float otherwise.
template <typename S>
using AccOf = std::conditional_t<std::is_same_v<S, double>, double, float>;

// bf16 <-> float bit patterns for a float vector of VB bytes. Spelled out per width: GCC 12 rejects
// __builtin_convertvector on vector types whose size depends on a template parameter.
template <int VB>
struct Bf16Bits;
#define GANRT_BF16_BITS(VB)                                                                          \
  template <>                                                                                        \
  struct Bf16Bits<VB> {                                                                              \
    typedef uint16_t Half __attribute__((vector_size(VB / 2)));                                      \
    typedef uint32_t Bits __attribute__((vector_size(VB)));                                          \
    static GANRT_FORCE_INLINE Bits widen(Half h) { return __builtin_convertvector(h, Bits); }        \
    static GANRT_FORCE_INLINE Half narrow(Bits b) { return __builtin_convertvector(b, Half); }       \
  };
GANRT_BF16_BITS(16)
GANRT_BF16_BITS(32)
GANRT_BF16_BITS(64)
#undef GANRT_BF16_BITS

// GCC/Clang vector types of VB bytes of the compute type: they vectorize without -ffast-math and sum in a fixed
// order. VB must be a width the variant's instruction set has natively (wider generic vectors get their compares
// lowered to scalar code). Loads and stores convert from and to the storage type S.
template <typename S, int VB>
struct Lanes {
  using T = typename Compute<S>::type;
  typedef T Vec __attribute__((vector_size(VB)));
  static constexpr int kWidth = VB / static_cast<int>(sizeof(T));
  static constexpr int kUnroll = 128 / VB;                 // vectors of accumulators
  static constexpr int kStep = kWidth * kUnroll;           // elements per iteration = logical lanes

  static GANRT_FORCE_INLINE Vec load(const S* p) {
    if constexpr (std::is_same_v<S, BFloat16>) {
      typename Bf16Bits<VB>::Half h;
      std::memcpy(&h, p, sizeof h);
      return (Vec)(Bf16Bits<VB>::widen(h) << 16);
    } else {
      Vec v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
  }
  static GANRT_FORCE_INLINE void store(S* p, Vec v) {
    if constexpr (std::is_same_v<S, BFloat16>) {
      // float_to_bf16 on every lane: round to nearest even, NaN -> 0x7FC0.
      using Bits = typename Bf16Bits<VB>::Bits;
      const Bits u = (Bits)v;
      const Bits nan = (Bits)(v != v);
      const Bits rounded = (u + (0x7FFFu + ((u >> 16) & 1u))) >> 16;
      const auto h = Bf16Bits<VB>::narrow((rounded & ~nan) | (nan & 0x7FC0u));
      std::memcpy(p, &h, sizeof h);
    } else {
      std::memcpy(p, &v, sizeof v);
    }
  }
  static GANRT_FORCE_INLINE T load1(const S* p) {
    if constexpr (std::is_same_v<S, BFloat16>) {
      return bf16_to_float(*p);
    } else {
      return *p;
    }
  }
  static GANRT_FORCE_INLINE void store1(S* p, T v) {
    if constexpr (std::is_same_v<S, BFloat16>) {
      *p = float_to_bf16(v);
    } else {
      *p = v;
    }
  }
  // Per-channel constants (NHWC), stored in the compute type.
  static GANRT_FORCE_INLINE Vec ld(const T* p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static GANRT_FORCE_INLINE Vec splat(T s) { return Vec{} + s; }
  static GANRT_FORCE_INLINE T lane(Vec v, int j) { return v[j]; }
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

// The same interface as Lanes, one element wide: the scalar channels at the end of an NHWC row.
template <typename S>
struct One {
  using T = typename Compute<S>::type;
  using Vec = T;
  static constexpr int kWidth = 1;
  static GANRT_FORCE_INLINE Vec load(const S* p) { return Lanes<S, 16>::load1(p); }
  static GANRT_FORCE_INLINE void store(S* p, Vec v) { Lanes<S, 16>::store1(p, v); }
  static GANRT_FORCE_INLINE Vec ld(const T* p) { return *p; }
  static GANRT_FORCE_INLINE Vec splat(T s) { return s; }
  static GANRT_FORCE_INLINE T lane(Vec v, int) { return v; }
};

// NHWC channel tiles: f(L, c, U) for tiles of U vectors of L starting at channel c, where L is Lanes<S, VB>
// (then One<S> for the channels left over) and U = kTile while whole tiles fit, then 1. A tile's constants and
// accumulators live in registers while it sweeps down a block's positions, and kTile independent vectors hide
// the latency of the accumulating adds. Every channel sees the same sequence of operations whatever the tile,
// the vector width or the instruction set.
constexpr int kTile = 4;
template <int U>
using TileTag = std::integral_constant<int, U>;

template <typename S, int VB, typename F>
GANRT_FORCE_INLINE void for_channel_tiles(int64_t count, const F& f) {
  using V = Lanes<S, VB>;
  int64_t c = 0;
  for (; c + kTile * V::kWidth <= count; c += kTile * V::kWidth) f(V{}, c, TileTag<kTile>{});
  for (; c + V::kWidth <= count; c += V::kWidth) f(V{}, c, TileTag<1>{});
  for (; c < count; ++c) f(One<S>{}, c, TileTag<1>{});
}

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

template <typename S, int VB>
GANRT_FORCE_INLINE Stats chunk_stats(const S* x, int64_t len) {
  using V = Lanes<S, VB>;
  using T = typename V::T;
  using Vec = typename V::Vec;
  constexpr int W = V::kWidth, U = V::kUnroll;
  // The shift is the mean of the first (up to) 16 elements: close enough to the chunk mean that the sums of d
  // and d^2 over <= 4096 elements lose nothing that matters in T, even when a single element (say a corner pixel)
  // is an outlier; and x - shift is exact when x is within a factor 2 of shift, which keeps large-mean planes
  // (1e4 +- 1) precise. Four fixed partial sums keep this short dependency chain cheap for small planes.
  const int64_t head = std::min<int64_t>(len, 16);
  double h[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t k = 0; k < head; ++k) h[k % 4] += static_cast<double>(V::load1(x + k));
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
    const double d = static_cast<double>(V::load1(x + i) - shift);
    sum_d += d;
    sum_d2 += d * d;
  }
  return welford_from_shifted_sums<double>(static_cast<double>(len), shift, sum_d, sum_d2);
}

template <typename S, int VB>
GANRT_FORCE_INLINE Stats plane_stats(const S* x, int64_t m) {
  Stats s;
  for (int64_t b = 0; b < m; b += kChunk) s = welford_merge(s, chunk_stats<S, VB>(x + b, std::min(kChunk, m - b)));
  return s;
}

// Per-plane constants of the normalization, shared by both layouts: y = act(((x - hi) - lo) * scale + bias
// [+ residual]) with the double mean split into hi + lo in T, so that x - hi is exact near the mean and
// large-mean planes (1e4 +- 1 in float32) keep full precision.
template <typename S>
struct NormConstants {
  using T = typename Compute<S>::type;
  T hi, lo, scale, bias;

  static NormConstants make(const InstanceNormActParams& p, int64_t plane, const Stats& s) {
    using Acc = AccOf<S>;
    const Acc rstd = static_cast<Acc>(1.0 / std::sqrt(s.variance() + p.eps));
    static_cast<Acc*>(p.mean)[plane] = static_cast<Acc>(s.mean);
    static_cast<Acc*>(p.rstd)[plane] = rstd;
    const int64_t ch = plane < p.c ? plane : plane % p.c;  // N = 1 (the common case) needs no division
    const T w = p.weight ? Lanes<S, 16>::load1(static_cast<const S*>(p.weight) + ch) : T(1);
    NormConstants k;
    k.bias = p.bias ? Lanes<S, 16>::load1(static_cast<const S*>(p.bias) + ch) : T(0);
    k.scale = w * static_cast<T>(rstd);
    k.hi = static_cast<T>(s.mean);
    k.lo = static_cast<T>(s.mean - static_cast<double>(k.hi));
    return k;
  }
};

template <typename S, Activation A, int VB>
struct Forward {
  const InstanceNormActParams& p;
  using V = Lanes<S, VB>;
  using T = typename V::T;
  using Vec = typename V::Vec;

  // Normalizes elements [b, e) of `plane`.
  GANRT_FORCE_INLINE void normalize(int64_t plane, int64_t b, int64_t e, const NormConstants<S>& k) const {
    const int64_t off = plane * p.plane_size;
    const S* x = static_cast<const S*>(p.x) + off;
    const S* res = p.residual ? static_cast<const S*>(p.residual) + off : nullptr;
    S* y = static_cast<S*>(p.y) + off;
    const T slope = static_cast<T>(p.negative_slope);
    const Vec vhi = V::splat(k.hi), vlo = V::splat(k.lo), vscale = V::splat(k.scale), vbias = V::splat(k.bias);
    const Vec vslope = V::splat(slope);
    int64_t i = b;
    if (res) {
      for (; i + V::kWidth <= e; i += V::kWidth)
        V::store(y + i, activate<A>(((V::load(x + i) - vhi) - vlo) * vscale + vbias + V::load(res + i), vslope));
      for (; i < e; ++i)
        V::store1(y + i,
                  activate<A>(((V::load1(x + i) - k.hi) - k.lo) * k.scale + k.bias + V::load1(res + i), slope));
    } else {
      for (; i + V::kWidth <= e; i += V::kWidth)
        V::store(y + i, activate<A>(((V::load(x + i) - vhi) - vlo) * vscale + vbias, vslope));
      for (; i < e; ++i) V::store1(y + i, activate<A>(((V::load1(x + i) - k.hi) - k.lo) * k.scale + k.bias, slope));
    }
  }

  void run() const {
    const int64_t planes = p.n * p.c, m = p.plane_size;
    const int64_t chunks = (m + kChunk - 1) / kChunk;
    if (planes >= p.num_threads || chunks == 1) {
      parallel_for(planes, parallel_grain(planes, m, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
        run_isa<VB>([&]() GANRT_HOT {
          for (int64_t plane = b; plane < e; ++plane) {
            const Stats s = plane_stats<S, VB>(static_cast<const S*>(p.x) + plane * m, m);
            normalize(plane, 0, m, NormConstants<S>::make(p, plane, s));
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
              chunk_stats<S, VB>(static_cast<const S*>(p.x) + plane * m + start, std::min(kChunk, m - start));
        }
      });
    });
    std::vector<NormConstants<S>> consts(static_cast<size_t>(planes));
    for (int64_t plane = 0; plane < planes; ++plane) {
      Stats s;
      for (int64_t k = 0; k < chunks; ++k) s = welford_merge(s, partial[plane * chunks + k]);
      consts[plane] = NormConstants<S>::make(p, plane, s);
    }
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
          normalize(plane, start, std::min(m, start + kChunk), consts[plane]);
        }
      });
    });
  }
};

// Block geometry of an NHWC tensor: positions [block * per_block, ...) of image n form item n * blocks + block.
struct Blocks {
  int64_t per_block, blocks, items;

  Blocks(int64_t n, int64_t c, int64_t positions)
      : per_block(std::max<int64_t>(1, kBlockElems / c)),
        blocks((positions + per_block - 1) / per_block),
        items(n * blocks) {}

  int64_t begin(int64_t item) const { return (item % blocks) * per_block; }
  int64_t end(int64_t item, int64_t positions) const { return std::min(positions, begin(item) + per_block); }
};

template <typename S, Activation A, int VB>
struct ForwardNHWC {
  const InstanceNormActParams& p;
  using V = Lanes<S, VB>;
  using T = typename V::T;

  // Per-channel statistics of positions [b, e) of image n into out[0 .. C).
  GANRT_FORCE_INLINE void block_stats(int64_t n, int64_t b, int64_t e, Stats* out) const {
    const int64_t C = p.c, len = e - b;
    const S* x = static_cast<const S*>(p.x) + (n * p.plane_size + b) * C;
    const int64_t head = std::min<int64_t>(len, 16);
    for_channel_tiles<S, VB>(C, [&](auto L, int64_t c, auto tile) GANRT_HOT {
      using Lc = decltype(L);
      using Vec = typename Lc::Vec;
      constexpr int U = decltype(tile)::value, W = Lc::kWidth;
      // Shift: the mean of the block's first (up to) 16 positions, as the NCHW chunks do.
      Vec shift[U] = {};
      for (int64_t k = 0; k < head; ++k)
        for (int u = 0; u < U; ++u) shift[u] += Lc::load(x + k * C + c + u * W);
      for (int u = 0; u < U; ++u) shift[u] = shift[u] / static_cast<T>(head);
      double s1[U * W] = {}, s2[U * W] = {};
      for (int64_t g = 0; g < len; g += kGroup) {
        Vec a1[U] = {}, a2[U] = {};
        for (int64_t k = g; k < std::min(len, g + kGroup); ++k)
          for (int u = 0; u < U; ++u) {
            const Vec d = Lc::load(x + k * C + c + u * W) - shift[u];
            a1[u] += d;
            a2[u] += d * d;
          }
        for (int u = 0; u < U; ++u)
          for (int j = 0; j < W; ++j) {
            s1[u * W + j] += static_cast<double>(Lc::lane(a1[u], j));
            s2[u * W + j] += static_cast<double>(Lc::lane(a2[u], j));
          }
      }
      for (int u = 0; u < U; ++u)
        for (int j = 0; j < W; ++j)
          out[c + u * W + j] = welford_from_shifted_sums<double>(static_cast<double>(len), Lc::lane(shift[u], j),
                                                                 s1[u * W + j], s2[u * W + j]);
    });
  }

  // Positions [b, e) of image n, with the image's per-channel constants hi, lo, scale, bias (C each).
  GANRT_FORCE_INLINE void normalize(int64_t n, int64_t b, int64_t e, const T* hi, const T* lo, const T* scale,
                                    const T* bias) const {
    const int64_t C = p.c, off = (n * p.plane_size + b) * C, len = e - b;
    const S* x = static_cast<const S*>(p.x) + off;
    const S* res = p.residual ? static_cast<const S*>(p.residual) + off : nullptr;
    S* y = static_cast<S*>(p.y) + off;
    const T slope = static_cast<T>(p.negative_slope);
    for_channel_tiles<S, VB>(C, [&](auto L, int64_t c, auto tile) GANRT_HOT {
      using Lc = decltype(L);
      using Vec = typename Lc::Vec;
      constexpr int U = decltype(tile)::value, W = Lc::kWidth;
      Vec vhi[U], vlo[U], vscale[U], vbias[U];
      for (int u = 0; u < U; ++u) {
        vhi[u] = Lc::ld(hi + c + u * W);
        vlo[u] = Lc::ld(lo + c + u * W);
        vscale[u] = Lc::ld(scale + c + u * W);
        vbias[u] = Lc::ld(bias + c + u * W);
      }
      const Vec vslope = Lc::splat(slope);
      for (int64_t k = 0; k < len; ++k)
        for (int u = 0; u < U; ++u) {
          const int64_t i = k * C + c + u * W;
          Vec z = ((Lc::load(x + i) - vhi[u]) - vlo[u]) * vscale[u] + vbias[u];
          if (res) z = z + Lc::load(res + i);
          Lc::store(y + i, activate<A>(z, vslope));
        }
    });
  }

  void run() const {
    const int64_t C = p.c, m = p.plane_size, planes = p.n * C;
    const Blocks blk(p.n, C, m);
    std::vector<Stats> partial(static_cast<size_t>(blk.items * C));
    const int64_t grain = parallel_grain(blk.items, blk.per_block * C, p.num_threads);
    parallel_for(blk.items, grain, p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it)
          block_stats(it / blk.blocks, blk.begin(it), blk.end(it, m), &partial[it * C]);
      });
    });
    // Plane (n, c) merges its blocks in block order; the constants are laid out like the channels of a row.
    std::vector<T> consts(static_cast<size_t>(4 * planes));
    T *hi = consts.data(), *lo = hi + planes, *scale = lo + planes, *bias = scale + planes;
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t n = plane / C, c = plane % C;
      Stats s;
      for (int64_t k = 0; k < blk.blocks; ++k) s = welford_merge(s, partial[(n * blk.blocks + k) * C + c]);
      const NormConstants<S> k = NormConstants<S>::make(p, plane, s);
      hi[plane] = k.hi;
      lo[plane] = k.lo;
      scale[plane] = k.scale;
      bias[plane] = k.bias;
    }
    parallel_for(blk.items, grain, p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t n = it / blk.blocks, o = n * C;
          normalize(n, blk.begin(it), blk.end(it, m), hi + o, lo + o, scale + o, bias + o);
        }
      });
    });
  }
};

// Backward per-plane constants, shared by both layouts: grad_x = k (g - c1 - xhat c2) with k = w rstd, rewritten
// per element as k g - a (x - mean) - k c1 with the plane constant a = k c2 rstd (two multiplies and two
// subtractions per element, no xhat). Also stores the plane's sums (sum_dy_xhat = rstd * S2).
template <typename S>
struct GradConstants {
  using T = typename Compute<S>::type;
  T mean, k, a, kc1;

  static GradConstants make(const InstanceNormActBackwardParams& p, int64_t plane, double dy, double dy_xc) {
    using Acc = AccOf<S>;
    Acc* sum_dy = static_cast<Acc*>(p.sum_dy);
    Acc* sum_dy_xhat = static_cast<Acc*>(p.sum_dy_xhat);
    const Acc rstd_acc = static_cast<const Acc*>(p.rstd)[plane];
    sum_dy[plane] = static_cast<Acc>(dy);
    sum_dy_xhat[plane] = static_cast<Acc>(static_cast<double>(rstd_acc) * dy_xc);
    GradConstants g;
    g.mean = static_cast<const Acc*>(p.mean)[plane];
    const T rstd = rstd_acc;
    const T inv_m = static_cast<T>(1.0 / static_cast<double>(p.plane_size));
    const T c1 = static_cast<T>(sum_dy[plane]) * inv_m;
    const T c2 = static_cast<T>(sum_dy_xhat[plane]) * inv_m;
    const T w = p.weight ? Lanes<S, 16>::load1(static_cast<const S*>(p.weight) + (plane < p.c ? plane : plane % p.c))
                         : T(1);
    g.k = w * rstd;
    g.a = g.k * c2 * rstd;
    g.kc1 = g.k * c1;
    return g;
  }
};

template <typename S, Activation A, int VB>
struct Backward {
  const InstanceNormActBackwardParams& p;
  using V = Lanes<S, VB>;
  using T = typename V::T;
  using Vec = typename V::Vec;

  // Per plane: S1 = sum(g), S2 = sum(g * (x - mean)) with g = grad_y * act'(y); rstd is applied once per
  // plane (sum_dy_xhat = rstd * S2) instead of once per element.
  struct Sums {
    double dy = 0.0, dy_xc = 0.0;
  };

  GANRT_FORCE_INLINE Sums chunk_sums(int64_t plane, int64_t b, int64_t e) const {
    constexpr int W = V::kWidth, U = V::kUnroll;
    const int64_t off = plane * p.plane_size;
    const S* gy = static_cast<const S*>(p.grad_y) + off;
    const S* y = static_cast<const S*>(p.y) + off;
    const S* x = static_cast<const S*>(p.x) + off;
    const T mean = static_cast<const AccOf<S>*>(p.mean)[plane];
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
      const T g = activation_grad<A>(V::load1(gy + i), V::load1(y + i), slope);
      s.dy += g;
      s.dy_xc += g * (V::load1(x + i) - mean);
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

  // grad_x and grad_residual over elements [b, e) of `plane`, using the plane's constants.
  GANRT_FORCE_INLINE void elementwise(int64_t plane, int64_t b, int64_t e, const GradConstants<S>& k) const {
    const int64_t off = plane * p.plane_size;
    const S* gy = static_cast<const S*>(p.grad_y) + off;
    const S* y = static_cast<const S*>(p.y) + off;
    const T slope = static_cast<T>(p.negative_slope);
    const Vec vslope = V::splat(slope);
    if (p.grad_residual) {
      S* gr = static_cast<S*>(p.grad_residual) + off;
      int64_t i = b;
      for (; i + V::kWidth <= e; i += V::kWidth)
        V::store(gr + i, activation_grad<A>(V::load(gy + i), V::load(y + i), vslope));
      for (; i < e; ++i) V::store1(gr + i, activation_grad<A>(V::load1(gy + i), V::load1(y + i), slope));
    }
    if (!p.grad_x) return;
    const S* x = static_cast<const S*>(p.x) + off;
    S* gx = static_cast<S*>(p.grad_x) + off;
    const Vec vk = V::splat(k.k), va = V::splat(k.a), vmean = V::splat(k.mean), vkc1 = V::splat(k.kc1);
    int64_t i = b;
    for (; i + V::kWidth <= e; i += V::kWidth) {
      const Vec g = activation_grad<A>(V::load(gy + i), V::load(y + i), vslope);
      V::store(gx + i, (vk * g - va * (V::load(x + i) - vmean)) - vkc1);
    }
    for (; i < e; ++i) {
      const T g = activation_grad<A>(V::load1(gy + i), V::load1(y + i), slope);
      V::store1(gx + i, (k.k * g - k.a * (V::load1(x + i) - k.mean)) - k.kc1);
    }
  }

  void run() const {
    const int64_t planes = p.n * p.c, m = p.plane_size;
    const int64_t chunks = (m + kChunk - 1) / kChunk;
    if (planes >= p.num_threads || chunks == 1) {
      parallel_for(planes, parallel_grain(planes, m, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
        run_isa<VB>([&]() GANRT_HOT {
          for (int64_t plane = b; plane < e; ++plane) {
            const Sums s = plane_sums(plane);
            elementwise(plane, 0, m, GradConstants<S>::make(p, plane, s.dy, s.dy_xc));
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
    std::vector<GradConstants<S>> consts(static_cast<size_t>(planes));
    for (int64_t plane = 0; plane < planes; ++plane) {
      Sums s;
      for (int64_t k = 0; k < chunks; ++k) {
        s.dy += partial[plane * chunks + k].dy;
        s.dy_xc += partial[plane * chunks + k].dy_xc;
      }
      consts[plane] = GradConstants<S>::make(p, plane, s.dy, s.dy_xc);
    }
    parallel_for(items, parallel_grain(items, kChunk, p.num_threads), p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t plane = it / chunks, start = (it % chunks) * kChunk;
          elementwise(plane, start, std::min(m, start + kChunk), consts[plane]);
        }
      });
    });
  }
};

template <typename S, Activation A, int VB>
struct BackwardNHWC {
  const InstanceNormActBackwardParams& p;
  using V = Lanes<S, VB>;
  using T = typename V::T;

  // Per-channel sums of g and g * (x - mean) over positions [b, e) of image n into dy[0 .. C), dy_xc[0 .. C).
  GANRT_FORCE_INLINE void block_sums(int64_t n, int64_t b, int64_t e, const T* mean, double* dy,
                                     double* dy_xc) const {
    const int64_t C = p.c, off = (n * p.plane_size + b) * C, len = e - b;
    const S* gy = static_cast<const S*>(p.grad_y) + off;
    const S* y = static_cast<const S*>(p.y) + off;
    const S* x = static_cast<const S*>(p.x) + off;
    const T slope = static_cast<T>(p.negative_slope);
    for_channel_tiles<S, VB>(C, [&](auto L, int64_t c, auto tile) GANRT_HOT {
      using Lc = decltype(L);
      using Vec = typename Lc::Vec;
      constexpr int U = decltype(tile)::value, W = Lc::kWidth;
      const Vec vslope = Lc::splat(slope);
      Vec vmean[U];
      for (int u = 0; u < U; ++u) vmean[u] = Lc::ld(mean + c + u * W);
      double s1[U * W] = {}, s2[U * W] = {};
      for (int64_t g0 = 0; g0 < len; g0 += kGroup) {
        Vec a1[U] = {}, a2[U] = {};
        for (int64_t k = g0; k < std::min(len, g0 + kGroup); ++k)
          for (int u = 0; u < U; ++u) {
            const int64_t i = k * C + c + u * W;
            const Vec g = activation_grad<A>(Lc::load(gy + i), Lc::load(y + i), vslope);
            a1[u] += g;
            a2[u] += g * (Lc::load(x + i) - vmean[u]);
          }
        for (int u = 0; u < U; ++u)
          for (int j = 0; j < W; ++j) {
            s1[u * W + j] += static_cast<double>(Lc::lane(a1[u], j));
            s2[u * W + j] += static_cast<double>(Lc::lane(a2[u], j));
          }
      }
      for (int j = 0; j < U * W; ++j) {
        dy[c + j] = s1[j];
        dy_xc[c + j] = s2[j];
      }
    });
  }

  GANRT_FORCE_INLINE void elementwise(int64_t n, int64_t b, int64_t e, const T* mean, const T* k, const T* a,
                                      const T* kc1) const {
    const int64_t C = p.c, off = (n * p.plane_size + b) * C, len = e - b;
    const S* gy = static_cast<const S*>(p.grad_y) + off;
    const S* y = static_cast<const S*>(p.y) + off;
    const S* x = static_cast<const S*>(p.x) + off;
    S* gr = p.grad_residual ? static_cast<S*>(p.grad_residual) + off : nullptr;
    S* gx = p.grad_x ? static_cast<S*>(p.grad_x) + off : nullptr;
    const T slope = static_cast<T>(p.negative_slope);
    for_channel_tiles<S, VB>(C, [&](auto L, int64_t c, auto tile) GANRT_HOT {
      using Lc = decltype(L);
      using Vec = typename Lc::Vec;
      constexpr int U = decltype(tile)::value, W = Lc::kWidth;
      const Vec vslope = Lc::splat(slope);
      Vec vmean[U], vk[U], va[U], vkc1[U];
      for (int u = 0; u < U; ++u) {
        vmean[u] = Lc::ld(mean + c + u * W);
        vk[u] = Lc::ld(k + c + u * W);
        va[u] = Lc::ld(a + c + u * W);
        vkc1[u] = Lc::ld(kc1 + c + u * W);
      }
      for (int64_t pos = 0; pos < len; ++pos)
        for (int u = 0; u < U; ++u) {
          const int64_t i = pos * C + c + u * W;
          const Vec g = activation_grad<A>(Lc::load(gy + i), Lc::load(y + i), vslope);
          if (gr) Lc::store(gr + i, g);
          if (gx) Lc::store(gx + i, (vk[u] * g - va[u] * (Lc::load(x + i) - vmean[u])) - vkc1[u]);
        }
    });
  }

  void run() const {
    const int64_t C = p.c, m = p.plane_size, planes = p.n * C;
    const Blocks blk(p.n, C, m);
    std::vector<T> consts(static_cast<size_t>(4 * planes));
    T *mean = consts.data(), *k = mean + planes, *a = k + planes, *kc1 = a + planes;
    for (int64_t plane = 0; plane < planes; ++plane) mean[plane] = static_cast<const AccOf<S>*>(p.mean)[plane];
    std::vector<double> partial(static_cast<size_t>(2 * blk.items * C));
    const int64_t grain = parallel_grain(blk.items, blk.per_block * C, p.num_threads);
    parallel_for(blk.items, grain, p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t n = it / blk.blocks;
          double* out = &partial[2 * it * C];
          block_sums(n, blk.begin(it), blk.end(it, m), mean + n * C, out, out + C);
        }
      });
    });
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t n = plane / C, c = plane % C;
      double dy = 0.0, dy_xc = 0.0;
      for (int64_t b = 0; b < blk.blocks; ++b) {
        const double* part = &partial[2 * (n * blk.blocks + b) * C];
        dy += part[c];
        dy_xc += part[C + c];
      }
      const GradConstants<S> g = GradConstants<S>::make(p, plane, dy, dy_xc);
      k[plane] = g.k;
      a[plane] = g.a;
      kc1[plane] = g.kc1;
    }
    parallel_for(blk.items, grain, p.num_threads, [&](int64_t b, int64_t e) {
      run_isa<VB>([&]() GANRT_HOT {
        for (int64_t it = b; it < e; ++it) {
          const int64_t n = it / blk.blocks, o = n * C;
          elementwise(n, blk.begin(it), blk.end(it, m), mean + o, k + o, a + o, kc1 + o);
        }
      });
    });
  }
};

#undef GANRT_HOT

template <template <typename, Activation, int> class K, typename S, Activation A, typename P>
void run_widest(const P& p) {
  switch (kVectorBytes) {
    case 64: K<S, A, 64>{p}.run(); break;
    case 32: K<S, A, 32>{p}.run(); break;
    default: K<S, A, 16>{p}.run(); break;
  }
}

}  // namespace

void instance_norm_act_forward_cpu(const InstanceNormActParams& p, DType dtype) {
  constexpr const char* op = "instance_norm_act_forward_cpu";
  dispatch_cpu_float_bf16(dtype, op, [&](auto t) {
    using S = typename decltype(t)::type;
    dispatch_activation(p.act, op, [&](auto a) {
      if (p.channels_last) {
        run_widest<ForwardNHWC, S, decltype(a)::value>(p);
      } else {
        run_widest<Forward, S, decltype(a)::value>(p);
      }
    });
  });
}

void instance_norm_act_backward_cpu(const InstanceNormActBackwardParams& p, DType dtype) {
  constexpr const char* op = "instance_norm_act_backward_cpu";
  dispatch_cpu_float_bf16(dtype, op, [&](auto t) {
    using S = typename decltype(t)::type;
    dispatch_activation(p.act, op, [&](auto a) {
      if (p.channels_last) {
        run_widest<BackwardNHWC, S, decltype(a)::value>(p);
      } else {
        run_widest<Backward, S, decltype(a)::value>(p);
      }
    });
  });
}

}  // namespace ganrt
