#include <pybind11/pybind11.h>
#include "ops.h"
namespace py = pybind11;
PYBIND11_MODULE(_C, m) {
#ifdef GANRT_WITH_CUDA
  m.attr("cuda_compiled") = true;
  m.def("cuda_device_count", &ganrt::cuda_device_count);
#else
  m.attr("cuda_compiled") = false;
  m.def("cuda_device_count", []() { return 0; });
#endif
}
