// The pointwise activation of the fused ops, shared by the CPU and CUDA kernels.
#pragma once

#include "../ops.h"
#include "macros.h"

namespace ganrt {

// Compile-time activation: the CPU loops are instantiated per activation so they stay branch-free and vectorize.
// T may also be a GCC vector type (the CPU reductions use them); hence T{} for zero.
template <Activation A, typename T>
GANRT_HOST_DEVICE GANRT_FORCE_INLINE T activate(T v, T negative_slope) {
  if constexpr (A == Activation::ReLU) {
    return v > T{} ? v : T{};
  } else if constexpr (A == Activation::LeakyReLU) {
    // Both sides computed unconditionally: a select, not a branch, so loops vectorize (GCC will not
    // if-convert a conditional floating multiply under the default -ftrapping-math).
    const T neg = v * negative_slope;
    return v > T{} ? v : neg;
  } else {
    (void)negative_slope;
    return v;
  }
}

// d act / d v times grad, recovered from the saved output y: with negative_slope >= 0 the sign of y equals the
// sign of the pre-activation, so y > 0 selects the identity branch (y == 0 counts as the negative side, as in
// PyTorch's relu/leaky_relu backward).
template <Activation A, typename T>
GANRT_HOST_DEVICE GANRT_FORCE_INLINE T activation_grad(T grad, T y, T negative_slope) {
  if constexpr (A == Activation::ReLU) {
    return y > T{} ? grad : T{};
  } else if constexpr (A == Activation::LeakyReLU) {
    const T neg = grad * negative_slope;
    return y > T{} ? grad : neg;
  } else {
    (void)y;
    (void)negative_slope;
    return grad;
  }
}

// Run-time activation for the CUDA kernels, where the branch is uniform across a launch and costs nothing
// next to the memory traffic, and one instantiation per activation would triple the compile time.
template <typename T>
GANRT_HOST_DEVICE GANRT_FORCE_INLINE T activate(T v, Activation a, T negative_slope) {
  switch (a) {
    case Activation::ReLU: return activate<Activation::ReLU>(v, negative_slope);
    case Activation::LeakyReLU: return activate<Activation::LeakyReLU>(v, negative_slope);
    default: return v;
  }
}

template <typename T>
GANRT_HOST_DEVICE GANRT_FORCE_INLINE T activation_grad(T grad, T y, Activation a, T negative_slope) {
  switch (a) {
    case Activation::ReLU: return activation_grad<Activation::ReLU>(grad, y, negative_slope);
    case Activation::LeakyReLU: return activation_grad<Activation::LeakyReLU>(grad, y, negative_slope);
    default: return grad;
  }
}

}  // namespace ganrt
