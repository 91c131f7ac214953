// Mergeable mean/variance statistics (Chan et al.'s parallel form of Welford's update).
//
// Partial statistics of disjoint pieces of a plane are combined with merge(); the result does not suffer the
// cancellation of sum(x^2) - n*mean^2, so planes with a large mean (e.g. 1e4 +- 1) keep their variance.
// Callers merge partials in a fixed order, which makes the results independent of the thread count.
#pragma once

#include "macros.h"

namespace ganrt {

template <typename Acc>
struct WelfordStats {
  Acc count = Acc(0);
  Acc mean = Acc(0);
  Acc m2 = Acc(0);  // sum of squared deviations from `mean`

  GANRT_HOST_DEVICE GANRT_FORCE_INLINE Acc variance() const {  // biased (divides by count), as instance norm
    return count > Acc(0) ? m2 / count : Acc(0);
  }
};

template <typename Acc>
GANRT_HOST_DEVICE GANRT_FORCE_INLINE WelfordStats<Acc> welford_merge(const WelfordStats<Acc>& a,
                                                                    const WelfordStats<Acc>& b) {
  if (b.count == Acc(0)) return a;
  if (a.count == Acc(0)) return b;
  WelfordStats<Acc> r;
  r.count = a.count + b.count;
  const Acc delta = b.mean - a.mean;
  const Acc wb = b.count / r.count;
  r.mean = a.mean + delta * wb;
  r.m2 = a.m2 + b.m2 + delta * delta * a.count * wb;
  return r;
}

// Statistics of a piece from its "corrected two-pass" sums: n values, a provisional mean `shift`, and the sums
// of d = x - shift and d^2. Exact in exact arithmetic for any shift; numerically good when shift is near the
// mean, since then sum_d is small and sum_d2 ~ the true m2.
template <typename Acc>
GANRT_HOST_DEVICE GANRT_FORCE_INLINE WelfordStats<Acc> welford_from_shifted_sums(Acc n, Acc shift, Acc sum_d,
                                                                                Acc sum_d2) {
  WelfordStats<Acc> r;
  r.count = n;
  const Acc md = sum_d / n;
  r.mean = shift + md;
  const Acc m2 = sum_d2 - sum_d * md;
  r.m2 = m2 > Acc(0) ? m2 : Acc(0);
  return r;
}

}  // namespace ganrt
