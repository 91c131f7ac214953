#include <cuda_runtime.h>
#include "ops.h"
namespace ganrt {
int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
  return n;
}
}
