// Device discovery for ganrt._C.cuda_device_count; never throws, so `import ganrt` works without a driver.
#include <cuda_runtime.h>

#include "ops.h"

namespace ganrt {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: clear the error, report none
    return 0;
  }
  return n;
}

}  // namespace ganrt
