// Dispatch from the run-time dtype / activation codes to compile-time types, one helper per axis. An
// unsupported value is reported as ganrt::Error naming the op and the value, never silently ignored.
#pragma once

#include <string>

#include "../ops.h"
#include "bfloat16.h"

namespace ganrt {

template <typename T>
struct TypeTag {
  using type = T;
};

template <Activation A>
struct ActivationTag {
  static constexpr Activation value = A;
};

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::UInt8: return "uint8";
  }
  return "unknown";
}

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::ReLU: return "relu";
    case Activation::LeakyReLU: return "leaky_relu";
  }
  return "unknown";
}

[[noreturn]] inline void throw_unsupported_dtype(const char* op, DType d, const char* supported) {
  throw Error(std::string(op) + ": unsupported dtype " + dtype_name(d) + " (code " +
              std::to_string(static_cast<int>(d)) + "); supported: " + supported);
}

// float32 -> f(TypeTag<float>), float64 -> f(TypeTag<double>): the CPU floating types.
template <typename F>
decltype(auto) dispatch_cpu_float(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    default: throw_unsupported_dtype(op, d, "float32, float64");
  }
}

// float32 / float64 as above, bfloat16 -> f(TypeTag<BFloat16>): kernels that store bf16 and compute in float.
template <typename F>
decltype(auto) dispatch_cpu_float_bf16(DType d, const char* op, F&& f) {
  switch (d) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::BFloat16: return f(TypeTag<BFloat16>{});
    default: throw_unsupported_dtype(op, d, "float32, float64, bfloat16");
  }
}

template <typename F>
decltype(auto) dispatch_activation(Activation a, const char* op, F&& f) {
  switch (a) {
    case Activation::None: return f(ActivationTag<Activation::None>{});
    case Activation::ReLU: return f(ActivationTag<Activation::ReLU>{});
    case Activation::LeakyReLU: return f(ActivationTag<Activation::LeakyReLU>{});
  }
  throw Error(std::string(op) + ": unknown activation code " + std::to_string(static_cast<int>(a)) +
              " (0 none, 1 relu, 2 leaky_relu)");
}

}  // namespace ganrt
