// The Python face of the ganrt core: the single PYBIND11_MODULE. Signatures mirror ganrt/_C.pyi.
//
// Entry points take raw addresses (tensor.data_ptr(), 0 = absent), sizes and codes. Everything that can be
// checked without touching memory is checked here, once, with messages naming the argument, the requirement
// and the value (ValueError); launcher failures (ganrt::Error, e.g. CUDA errors) become RuntimeError. The GIL
// is released while a kernel runs.
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "common/dispatch.h"
#include "common/philox.h"
#include "ops.h"

namespace py = pybind11;

namespace {

using ganrt::Activation;
using ganrt::DType;

enum class Device { CPU, CUDA };

// Argument checks for one entry point; `op` prefixes every message.
struct Checker {
  const char* op;

  [[noreturn]] void fail(const std::string& msg) const { throw py::value_error(std::string(op) + ": " + msg); }

  Device device(const std::string& d) const {
    if (d == "cpu") return Device::CPU;
    if (d == "cuda") {
#ifndef GANRT_WITH_CUDA
      throw std::runtime_error(std::string(op) +
                               ": device 'cuda' requested but ganrt._C was built without its CUDA kernels "
                               "(rebuild with nvcc on PATH and GANRT_CUDA=AUTO or ON)");
#endif
      return Device::CUDA;
    }
    fail("device must be 'cpu' or 'cuda', got '" + d + "'");
  }

  // A floating dtype the kernels of `dev` implement: float32/float64 on CPU (plus bfloat16 where the CPU
  // kernel has it, `cpu_bf16`), float32/float16/bfloat16 on CUDA.
  DType float_dtype(const char* name, int code, Device dev, bool cpu_bf16 = false) const {
    if (code < 0 || code > 4)
      fail(std::string(name) + " must be a dtype code (0 float32, 1 float64, 2 float16, 3 bfloat16, 4 uint8), got " +
           std::to_string(code));
    const DType d = static_cast<DType>(code);
    const bool ok = dev == Device::CPU
                        ? (d == DType::Float32 || d == DType::Float64 || (cpu_bf16 && d == DType::BFloat16))
                        : (d == DType::Float32 || d == DType::Float16 || d == DType::BFloat16);
    if (!ok)
      fail(std::string(name) + " must be " +
           (dev == Device::CUDA ? "float32, float16 or bfloat16 on cuda"
                                : (cpu_bf16 ? "float32, float64 or bfloat16 on cpu" : "float32 or float64 on cpu")) +
           ", got " + ganrt::dtype_name(d) + " (code " + std::to_string(code) + ")");
    return d;
  }

  // The NHWC variant exists on CPU only; CUDA callers pass NCHW.
  bool layout(bool channels_last, Device dev) const {
    if (channels_last && dev == Device::CUDA)
      fail("channels_last must be false on cuda (the CUDA kernels take contiguous (N, C, H, W)), got true");
    return channels_last;
  }

  Activation activation(int code) const {
    if (code < 0 || code > 2)
      fail("activation must be an activation code (0 none, 1 relu, 2 leaky_relu), got " + std::to_string(code));
    return static_cast<Activation>(code);
  }

  const void* required(const char* name, uintptr_t addr) const {
    if (addr == 0) fail(std::string(name) + " must be a non-null address (tensor.data_ptr()), got 0");
    return reinterpret_cast<const void*>(addr);
  }
  void* required_out(const char* name, uintptr_t addr) const { return const_cast<void*>(required(name, addr)); }
  static const void* optional(uintptr_t addr) { return reinterpret_cast<const void*>(addr); }
  static void* optional_out(uintptr_t addr) { return reinterpret_cast<void*>(addr); }

  int64_t positive(const char* name, int64_t v) const {
    if (v <= 0) fail(std::string(name) + " must be > 0, got " + std::to_string(v));
    return v;
  }

  // Element count of a tensor with the given positive dims; fails when it does not fit int64.
  int64_t product(const char* what, std::initializer_list<int64_t> dims) const {
    int64_t r = 1;
    for (int64_t d : dims)
      if (__builtin_mul_overflow(r, d, &r)) fail(std::string(what) + " overflows int64");
    return r;
  }

  // Finite also after rounding to float, since float kernels use the value as a float.
  double finite(const char* name, double v, bool non_negative) const {
    if (!std::isfinite(v) || !std::isfinite(static_cast<float>(v)) || (non_negative && v < 0.0))
      fail(std::string(name) + " must be finite" + (non_negative ? " and >= 0" : "") + ", got " +
           py::repr(py::float_(v)).cast<std::string>());
    return v;
  }

  // A workspace of `bytes` bytes at `addr`: bytes >= 0, and an address whenever bytes > 0.
  size_t workspace_bytes(uintptr_t addr, int64_t bytes) const {
    if (bytes < 0) fail("workspace_bytes must be >= 0, got " + std::to_string(bytes));
    if (bytes > 0 && addr == 0)
      fail("workspace must be a non-null address when workspace_bytes > 0, got 0 with " + std::to_string(bytes) +
           " bytes");
    return static_cast<size_t>(bytes);
  }

  int threads(int v) const {
    if (v < 1) fail("num_threads must be >= 1, got " + std::to_string(v));
    return v;
  }

  // A Python integer (anything with __index__) in [0, 2**64 - 1].
  uint64_t u64(const char* name, const py::handle& v) const {
    PyObject* index = PyNumber_Index(v.ptr());
    if (index == nullptr) {
      PyErr_Clear();
      throw py::type_error(std::string(op) + ": " + name + " must be an int in [0, 2**64 - 1], got " +
                           py::str(py::type::handle_of(v).attr("__name__")).cast<std::string>());
    }
    const py::object idx = py::reinterpret_steal<py::object>(index);
    const unsigned long long r = PyLong_AsUnsignedLongLong(idx.ptr());
    if (r == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
      PyErr_Clear();
      fail(std::string(name) + " must be in [0, 2**64 - 1], got " + py::repr(idx).cast<std::string>());
    }
    return static_cast<uint64_t>(r);
  }

  // Philox stream positions offset .. offset + numel - 1 must not wrap around 2^64.
  void stream_range(uint64_t offset, int64_t numel) const {
    if (offset > UINT64_MAX - static_cast<uint64_t>(numel))
      fail("offset + numel must be < 2**64, got offset " + std::to_string(offset) + " and numel " +
           std::to_string(numel));
  }
};

[[maybe_unused]] void* as_stream(uintptr_t s) { return reinterpret_cast<void*>(s); }

void instance_norm_act_forward(const std::string& device, int dtype, uintptr_t x, uintptr_t weight, uintptr_t bias,
                               uintptr_t residual, uintptr_t y, uintptr_t mean, uintptr_t rstd, int64_t n,
                               int64_t c, int64_t plane_size, double eps, double negative_slope, int activation,
                               bool channels_last, [[maybe_unused]] uintptr_t stream, int num_threads,
                               uintptr_t workspace, int64_t workspace_bytes) {
  const Checker ck{"instance_norm_act_forward"};
  const Device dev = ck.device(device);
  ganrt::InstanceNormActParams p;
  const DType dt = ck.float_dtype("dtype", dtype, dev, /*cpu_bf16=*/true);
  p.act = ck.activation(activation);
  p.channels_last = ck.layout(channels_last, dev);
  p.x = ck.required("x", x);
  p.y = ck.required_out("y", y);
  p.mean = ck.required_out("mean", mean);
  p.rstd = ck.required_out("rstd", rstd);
  p.weight = Checker::optional(weight);
  p.bias = Checker::optional(bias);
  p.residual = Checker::optional(residual);
  p.n = ck.positive("n", n);
  p.c = ck.positive("c", c);
  p.plane_size = ck.positive("plane_size", plane_size);
  ck.product("n * c * plane_size", {n, c, plane_size});
  p.eps = ck.finite("eps", eps, true);
  p.negative_slope = ck.finite("negative_slope", negative_slope, p.act == Activation::LeakyReLU);
  p.num_threads = ck.threads(num_threads);
  p.workspace = Checker::optional_out(workspace);
  p.workspace_bytes = ck.workspace_bytes(workspace, workspace_bytes);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::instance_norm_act_forward_cpu(p, dt);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::instance_norm_act_forward_cuda(p, dt, as_stream(stream));
#endif
  }
}

void instance_norm_act_backward(const std::string& device, int dtype, uintptr_t grad_y, uintptr_t x, uintptr_t y,
                                uintptr_t weight, uintptr_t mean, uintptr_t rstd, uintptr_t grad_x,
                                uintptr_t grad_residual, uintptr_t sum_dy, uintptr_t sum_dy_xhat, int64_t n,
                                int64_t c, int64_t plane_size, double negative_slope, int activation,
                                bool channels_last, [[maybe_unused]] uintptr_t stream, int num_threads,
                                uintptr_t workspace, int64_t workspace_bytes) {
  const Checker ck{"instance_norm_act_backward"};
  const Device dev = ck.device(device);
  ganrt::InstanceNormActBackwardParams p;
  const DType dt = ck.float_dtype("dtype", dtype, dev, /*cpu_bf16=*/true);
  p.act = ck.activation(activation);
  p.channels_last = ck.layout(channels_last, dev);
  p.grad_y = ck.required("grad_y", grad_y);
  p.x = ck.required("x", x);
  p.y = ck.required("y", y);
  p.mean = ck.required("mean", mean);
  p.rstd = ck.required("rstd", rstd);
  p.sum_dy = ck.required_out("sum_dy", sum_dy);
  p.sum_dy_xhat = ck.required_out("sum_dy_xhat", sum_dy_xhat);
  p.weight = Checker::optional(weight);
  p.grad_x = Checker::optional_out(grad_x);
  p.grad_residual = Checker::optional_out(grad_residual);
  p.n = ck.positive("n", n);
  p.c = ck.positive("c", c);
  p.plane_size = ck.positive("plane_size", plane_size);
  ck.product("n * c * plane_size", {n, c, plane_size});
  p.negative_slope = ck.finite("negative_slope", negative_slope, p.act == Activation::LeakyReLU);
  p.num_threads = ck.threads(num_threads);
  p.workspace = Checker::optional_out(workspace);
  p.workspace_bytes = ck.workspace_bytes(workspace, workspace_bytes);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::instance_norm_act_backward_cpu(p, dt);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::instance_norm_act_backward_cuda(p, dt, as_stream(stream));
#endif
  }
}

// Device scratch bytes instance_norm_act_{forward,backward} need on `device` for these sizes: 0 on CPU and for
// planes one CUDA block holds; otherwise the caller allocates it and passes workspace/workspace_bytes.
int64_t instance_norm_act_workspace(const std::string& device, int64_t n, int64_t c, int64_t plane_size,
                                    bool backward) {
  const Checker ck{"instance_norm_act_workspace"};
  const Device dev = ck.device(device);
  ck.positive("n", n);
  ck.positive("c", c);
  ck.positive("plane_size", plane_size);
  ck.product("n * c * plane_size", {n, c, plane_size});
  if (dev == Device::CPU) return 0;
#ifdef GANRT_WITH_CUDA
  return static_cast<int64_t>(backward ? ganrt::instance_norm_act_backward_workspace_cuda(n, c, plane_size)
                                       : ganrt::instance_norm_act_forward_workspace_cuda(n, c, plane_size));
#else
  (void)backward;
  return 0;  // unreachable: ck.device rejects "cuda" without the CUDA kernels
#endif
}

void standard_normal(const std::string& device, int dtype, uintptr_t out, int64_t numel, const py::object& seed,
                     const py::object& offset, [[maybe_unused]] uintptr_t stream, int num_threads) {
  const Checker ck{"standard_normal"};
  const Device dev = ck.device(device);
  const DType dt = ck.float_dtype("dtype", dtype, dev);
  void* o = ck.required_out("out", out);
  ck.positive("numel", numel);
  const uint64_t s = ck.u64("seed", seed);
  const uint64_t off = ck.u64("offset", offset);
  ck.stream_range(off, numel);
  const int threads = ck.threads(num_threads);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::standard_normal_cpu(o, dt, numel, s, off, threads);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::standard_normal_cuda(o, dt, numel, s, off, as_stream(stream));
#endif
  }
}

void reparameterize_forward(const std::string& device, int dtype, uintptr_t mu, uintptr_t logvar, uintptr_t z,
                            uintptr_t eps_out, int64_t numel, const py::object& seed, const py::object& offset,
                            [[maybe_unused]] uintptr_t stream, int num_threads) {
  const Checker ck{"reparameterize_forward"};
  const Device dev = ck.device(device);
  const DType dt = ck.float_dtype("dtype", dtype, dev);
  const void* m = ck.required("mu", mu);
  const void* lv = ck.required("logvar", logvar);
  void* zp = ck.required_out("z", z);
  void* ep = Checker::optional_out(eps_out);
  ck.positive("numel", numel);
  const uint64_t s = ck.u64("seed", seed);
  const uint64_t off = ck.u64("offset", offset);
  ck.stream_range(off, numel);
  const int threads = ck.threads(num_threads);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::reparameterize_forward_cpu(m, lv, zp, ep, dt, numel, s, off, threads);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::reparameterize_forward_cuda(m, lv, zp, ep, dt, numel, s, off, as_stream(stream));
#endif
  }
}

void reparameterize_backward(const std::string& device, int dtype, uintptr_t grad_z, uintptr_t logvar,
                             uintptr_t grad_logvar, int64_t numel, const py::object& seed, const py::object& offset,
                             [[maybe_unused]] uintptr_t stream, int num_threads) {
  const Checker ck{"reparameterize_backward"};
  const Device dev = ck.device(device);
  const DType dt = ck.float_dtype("dtype", dtype, dev);
  const void* gz = ck.required("grad_z", grad_z);
  const void* lv = ck.required("logvar", logvar);
  void* glv = ck.required_out("grad_logvar", grad_logvar);
  ck.positive("numel", numel);
  const uint64_t s = ck.u64("seed", seed);
  const uint64_t off = ck.u64("offset", offset);
  ck.stream_range(off, numel);
  const int threads = ck.threads(num_threads);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::reparameterize_backward_cpu(gz, lv, glv, dt, numel, s, off, threads);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::reparameterize_backward_cuda(gz, lv, glv, dt, numel, s, off, as_stream(stream));
#endif
  }
}

void images_to_tensor(const std::string& device, int dtype, uintptr_t src, uintptr_t dst, int64_t n, int64_t h,
                      int64_t w, int64_t c, [[maybe_unused]] uintptr_t stream, int num_threads) {
  const Checker ck{"images_to_tensor"};
  const Device dev = ck.device(device);
  const DType dt = ck.float_dtype("dtype", dtype, dev);
  const auto* s = static_cast<const uint8_t*>(ck.required("src", src));
  void* d = ck.required_out("dst", dst);
  ck.positive("n", n);
  ck.positive("h", h);
  ck.positive("w", w);
  ck.positive("c", c);
  ck.product("n * h * w * c", {n, h, w, c});
  const int threads = ck.threads(num_threads);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::images_to_tensor_cpu(s, d, dt, n, h, w, c, threads);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::images_to_tensor_cuda(s, d, dt, n, h, w, c, as_stream(stream));
#endif
  }
}

void tensor_to_images(const std::string& device, int dtype, uintptr_t src, uintptr_t dst, int64_t n, int64_t c,
                      int64_t h, int64_t w, [[maybe_unused]] uintptr_t stream, int num_threads) {
  const Checker ck{"tensor_to_images"};
  const Device dev = ck.device(device);
  const DType dt = ck.float_dtype("dtype", dtype, dev);
  const void* s = ck.required("src", src);
  auto* d = static_cast<uint8_t*>(ck.required_out("dst", dst));
  ck.positive("n", n);
  ck.positive("c", c);
  ck.positive("h", h);
  ck.positive("w", w);
  ck.product("n * c * h * w", {n, c, h, w});
  const int threads = ck.threads(num_threads);
  py::gil_scoped_release nogil;
  if (dev == Device::CPU) {
    ganrt::tensor_to_images_cpu(s, dt, d, n, c, h, w, threads);
  } else {
#ifdef GANRT_WITH_CUDA
    ganrt::tensor_to_images_cuda(s, dt, d, n, c, h, w, as_stream(stream));
#endif
  }
}

// Raw Philox4x32-10 block, exposed so tests can check the published known-answer vectors against the exact
// function the kernels use.
py::tuple philox4x32_10(const py::sequence& counter, const py::sequence& key) {
  const Checker ck{"philox4x32_10"};
  auto words = [&](const char* name, const py::sequence& seq, size_t count) {
    if (seq.size() != count)
      ck.fail(std::string(name) + " must have " + std::to_string(count) + " uint32 words, got " +
              std::to_string(seq.size()));
    uint32_t out[4] = {};
    for (size_t i = 0; i < count; ++i) {
      const py::object item = seq[i];
      const uint64_t v = ck.u64(name, item);
      if (v > UINT32_MAX)
        ck.fail(std::string(name) + "[" + std::to_string(i) + "] must be in [0, 2**32 - 1], got " +
                std::to_string(v));
      out[i] = static_cast<uint32_t>(v);
    }
    return ganrt::U32x4{out[0], out[1], out[2], out[3]};
  };
  const ganrt::U32x4 ctr = words("counter", counter, 4);
  const ganrt::U32x4 k = words("key", key, 2);
  const ganrt::U32x4 r = ganrt::philox4x32_10(ctr, k.x, k.y);
  return py::make_tuple(r.x, r.y, r.z, r.w);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ganrt's compiled kernels (CPU, and CUDA when built with it); see ganrt/_C.pyi.";

  py::register_exception_translator([](std::exception_ptr e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const ganrt::Error& err) {
      PyErr_SetString(PyExc_RuntimeError, err.what());
    }
  });

#ifdef GANRT_WITH_CUDA
  m.attr("cuda_compiled") = true;
  m.def("cuda_device_count", &ganrt::cuda_device_count, py::call_guard<py::gil_scoped_release>());
#else
  m.attr("cuda_compiled") = false;
  m.def("cuda_device_count", []() { return 0; });
#endif

  m.def("instance_norm_act_forward", &instance_norm_act_forward, py::arg("device"), py::arg("dtype"), py::arg("x"),
        py::arg("weight"), py::arg("bias"), py::arg("residual"), py::arg("y"), py::arg("mean"), py::arg("rstd"),
        py::arg("n"), py::arg("c"), py::arg("plane_size"), py::arg("eps"), py::arg("negative_slope"),
        py::arg("activation"), py::arg("channels_last") = false, py::arg("stream") = 0, py::arg("num_threads") = 1,
        py::arg("workspace") = 0, py::arg("workspace_bytes") = 0);
  m.def("instance_norm_act_backward", &instance_norm_act_backward, py::arg("device"), py::arg("dtype"),
        py::arg("grad_y"), py::arg("x"), py::arg("y"), py::arg("weight"), py::arg("mean"), py::arg("rstd"),
        py::arg("grad_x"), py::arg("grad_residual"), py::arg("sum_dy"), py::arg("sum_dy_xhat"), py::arg("n"),
        py::arg("c"), py::arg("plane_size"), py::arg("negative_slope"), py::arg("activation"),
        py::arg("channels_last") = false, py::arg("stream") = 0, py::arg("num_threads") = 1, py::arg("workspace") = 0,
        py::arg("workspace_bytes") = 0);
  m.def("instance_norm_act_workspace", &instance_norm_act_workspace, py::arg("device"), py::arg("n"), py::arg("c"),
        py::arg("plane_size"), py::arg("backward") = false);
  m.def("standard_normal", &standard_normal, py::arg("device"), py::arg("dtype"), py::arg("out"), py::arg("numel"),
        py::arg("seed"), py::arg("offset"), py::arg("stream") = 0, py::arg("num_threads") = 1);
  m.def("reparameterize_forward", &reparameterize_forward, py::arg("device"), py::arg("dtype"), py::arg("mu"),
        py::arg("logvar"), py::arg("z"), py::arg("eps_out"), py::arg("numel"), py::arg("seed"), py::arg("offset"),
        py::arg("stream") = 0, py::arg("num_threads") = 1);
  m.def("reparameterize_backward", &reparameterize_backward, py::arg("device"), py::arg("dtype"),
        py::arg("grad_z"), py::arg("logvar"), py::arg("grad_logvar"), py::arg("numel"), py::arg("seed"),
        py::arg("offset"), py::arg("stream") = 0, py::arg("num_threads") = 1);
  m.def("images_to_tensor", &images_to_tensor, py::arg("device"), py::arg("dtype"), py::arg("src"), py::arg("dst"),
        py::arg("n"), py::arg("h"), py::arg("w"), py::arg("c"), py::arg("stream") = 0, py::arg("num_threads") = 1);
  m.def("tensor_to_images", &tensor_to_images, py::arg("device"), py::arg("dtype"), py::arg("src"), py::arg("dst"),
        py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("stream") = 0, py::arg("num_threads") = 1);
  m.def("philox4x32_10", &philox4x32_10, py::arg("counter"), py::arg("key"));
}
