// Portability macros for code compiled both by the host C++ compiler and by nvcc.
#pragma once

#if defined(__CUDACC__)
#define GANRT_HOST_DEVICE __host__ __device__
#define GANRT_FORCE_INLINE __forceinline__
#else
#define GANRT_HOST_DEVICE
#define GANRT_FORCE_INLINE inline __attribute__((always_inline))
#endif
