// Counter-based normal random numbers shared by the CPU and CUDA kernels: Philox4x32-10 (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC'11) followed by Box-Muller evaluated in double precision.
//
// The whole chain uses only integer operations and IEEE double +, -, *, / and sqrt (no libm calls, whose last
// bits differ between glibc and CUDA), so the CPU and the GPU compute the same doubles up to fused
// multiply-adds (nvcc contracts them by default, the CPU build does not): after rounding to float, eps agree
// within one float ulp.
//
// Element mapping (see ops.h): element g of the stream uses counter g / 4 (low 64 bits of the 128-bit
// counter), key = seed (low word, high word), lane g % 4. The four 32-bit outputs (x0, x1, x2, x3) form the
// Box-Muller pairs (x0, x1) -> lanes 0, 1 and (x2, x3) -> lanes 2, 3:
//   u = (a + 0.5) / 2^32 in (0, 1),  t = b / 2^32 in [0, 1),  r = sqrt(-2 ln u),
//   lane 2k = r cos(2 pi t),  lane 2k+1 = r sin(2 pi t)   with (a, b) = (x0, x1) or (x2, x3).
#pragma once

#include <cstdint>
#include <cmath>
#include <cstring>

#include "macros.h"

namespace ganrt {

struct U32x4 {
  uint32_t x, y, z, w;
};

namespace philox_detail {

constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kW1 = 0xBB67AE85u;  // sqrt(3) - 1

GANRT_HOST_DEVICE GANRT_FORCE_INLINE uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
#if defined(__CUDA_ARCH__)
  *hi = __umulhi(a, b);
  return a * b;
#else
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
#endif
}

GANRT_HOST_DEVICE GANRT_FORCE_INLINE U32x4 round(U32x4 c, uint32_t k0, uint32_t k1) {
  uint32_t hi0, hi1;
  const uint32_t lo0 = mulhilo(kM0, c.x, &hi0);
  const uint32_t lo1 = mulhilo(kM1, c.z, &hi1);
  return U32x4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

GANRT_HOST_DEVICE GANRT_FORCE_INLINE uint64_t double_bits(double v) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(v));
#else
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
#endif
}

GANRT_HOST_DEVICE GANRT_FORCE_INLINE double bits_double(uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
#endif
}

}  // namespace philox_detail

// Philox4x32 with 10 rounds; x is the least significant counter word, as in Random123's philox4x32_10.
GANRT_HOST_DEVICE GANRT_FORCE_INLINE U32x4 philox4x32_10(U32x4 ctr, uint32_t k0, uint32_t k1) {
  using namespace philox_detail;
  ctr = round(ctr, k0, k1);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 1; i < 10; ++i) {
    k0 += kW0;
    k1 += kW1;
    ctr = round(ctr, k0, k1);
  }
  return ctr;
}

namespace philox_detail {

// Exact conversion of an integer below 2^52 to double through the bit pattern of 2^52 + v: integer and
// floating vector operations only, so the CPU loops vectorize (x86 lacks a vector uint64 -> double before
// AVX-512).
GANRT_HOST_DEVICE GANRT_FORCE_INLINE double small_u64_to_double(uint64_t v) {
  return bits_double(v | 0x4330000000000000ull) - 4503599627370496.0;
}

// mask ? a : b for an all-ones / all-zeros 64-bit mask, on bit patterns (branch-free, vectorizable).
GANRT_HOST_DEVICE GANRT_FORCE_INLINE double select_bits(uint64_t mask, double a, double b) {
  return bits_double((double_bits(a) & mask) | (double_bits(b) & ~mask));
}

}  // namespace philox_detail

// ln((a + 0.5) / 2^32) for a < 2^32: the argument lies in (0, 1), so the log is finite and negative.
// 2a + 1 < 2^33 is exact in a double; its exponent is split off exactly, the mantissa is folded into
// [sqrt(1/2), sqrt(2)), and ln of it uses fdlibm's reduction and minimax coefficients (e_log.c, error below
// 2^-58 on this interval): f = m - 1, s = f / (2 + f), ln m = f - s (f - R(s^2)) arranged as in fdlibm.
GANRT_HOST_DEVICE GANRT_FORCE_INLINE double log_uniform_open(uint64_t a) {
  using namespace philox_detail;
  const uint64_t bits = double_bits(small_u64_to_double(2 * a + 1));
  double m = bits_double((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
  // exponent - bias - 33 (u = (2a + 1) 2^-33)
  double k = small_u64_to_double(bits >> 52) - (1023.0 + 33.0);
  const bool big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  k = big ? k + 1.0 : k;
  constexpr double kLg1 = 6.666666666666735130e-01, kLg2 = 3.999999999940941908e-01;
  constexpr double kLg3 = 2.857142874366239149e-01, kLg4 = 2.222219843214978396e-01;
  constexpr double kLg5 = 1.818357216161805012e-01, kLg6 = 1.531383769920937332e-01;
  constexpr double kLg7 = 1.479819860511658591e-01;
  // ln 2 split so that k * kLn2Hi is exact for |k| < 2^20.
  constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (kLg2 + w * (kLg4 + w * kLg6));
  const double t2 = z * (kLg1 + w * (kLg3 + w * (kLg5 + w * kLg7)));
  const double r = t2 + t1;
  const double hfsq = 0.5 * f * f;
  return k * kLn2Hi - ((hfsq - (s * (hfsq + r) + k * kLn2Lo)) - f);
}

// sin and cos of 2 pi b / 2^32 for b < 2^32. The range reduction is exact in integers: bits 31..30 pick the
// quadrant, bit 29 whether the angle within it exceeds pi/4 (then pi/2 - angle is used), leaving an angle in
// [0, pi/4] for fdlibm's minimax kernels (k_sin.c, k_cos.c; error below 1 ulp there).
GANRT_HOST_DEVICE GANRT_FORCE_INLINE void sincos_2pi_u32(uint64_t b, double* sin_out, double* cos_out) {
  using namespace philox_detail;
  const uint64_t quadrant = (b >> 30) & 3u;
  const uint64_t rem = b & 0x3FFFFFFFull;
  const uint64_t fold = 0 - ((b >> 29) & 1u);  // all ones when rem >= 2^29
  const uint64_t t = (rem & ~fold) | ((0x40000000ull - rem) & fold);  // in [0, 2^29]
  constexpr double kTwoPiOver2p32 = 6.283185307179586476925286766559 / 4294967296.0;
  const double x = small_u64_to_double(t) * kTwoPiOver2p32;
  const double z = x * x;
  constexpr double kS1 = -1.66666666666666324348e-01, kS2 = 8.33333333332248946124e-03;
  constexpr double kS3 = -1.98412698298579493134e-04, kS4 = 2.75573137070700676789e-06;
  constexpr double kS5 = -2.50507602534068634195e-08, kS6 = 1.58969099521155010221e-10;
  const double sr = kS2 + z * (kS3 + z * (kS4 + z * (kS5 + z * kS6)));
  const double sin_x = x + z * x * (kS1 + z * sr);
  constexpr double kC1 = 4.16666666666666019037e-02, kC2 = -1.38888888888741095749e-03;
  constexpr double kC3 = 2.48015872894767294178e-05, kC4 = -2.75573143513906633035e-07;
  constexpr double kC5 = 2.08757232129817482790e-09, kC6 = -1.13596475577881948265e-11;
  const double cr = z * (kC1 + z * (kC2 + z * (kC3 + z * (kC4 + z * (kC5 + z * kC6)))));
  const double hz = 0.5 * z;
  const double w = 1.0 - hz;
  const double cos_x = w + (((1.0 - w) - hz) + z * cr);
  // (s, c): sin and cos of the angle within the quadrant; then rotate by quadrant * pi/2.
  const double s = select_bits(fold, cos_x, sin_x);
  const double c = select_bits(fold, sin_x, cos_x);
  const uint64_t odd = 0 - (quadrant & 1u);
  const double rs = select_bits(odd, c, s);
  const double rc = select_bits(odd, s, c);
  *sin_out = bits_double(double_bits(rs) ^ ((quadrant & 2u) << 62));          // negative in quadrants 2, 3
  *cos_out = bits_double(double_bits(rc) ^ (((quadrant + 1u) & 2u) << 62));  // negative in quadrants 1, 2
}

// Box-Muller pair from two 32-bit words (passed widened to 64 bits, which keeps the CPU loops in one lane
// width): z0 = r cos(2 pi t), z1 = r sin(2 pi t), r = sqrt(-2 ln u).
GANRT_HOST_DEVICE GANRT_FORCE_INLINE void box_muller(uint64_t a, uint64_t b, double* z0, double* z1) {
  const double r = sqrt(-2.0 * log_uniform_open(a));
  double s, c;
  sincos_2pi_u32(b, &s, &c);
  *z0 = r * c;
  *z1 = r * s;
}

// The four standard normals of counter `group` (elements 4*group .. 4*group+3 of the stream `seed`).
GANRT_HOST_DEVICE GANRT_FORCE_INLINE void philox_normals4(uint64_t group, uint64_t seed, double out[4]) {
  const U32x4 r = philox4x32_10(U32x4{static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32), 0u, 0u},
                                static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  box_muller(r.x, r.y, &out[0], &out[1]);
  box_muller(r.z, r.w, &out[2], &out[3]);
}

}  // namespace ganrt
