// A small CPU thread pool for the CPU kernels.
//
// Why not compile with OpenMP: PyTorch wheels ship their own libgomp, and a second OpenMP runtime in the same
// process oversubscribes cores or deadlocks after fork. Instead, parallel_for runs its pieces on the OpenMP
// runtime the process has already loaded (PyTorch's), found at run time, so ganrt's kernels and torch's ops
// share one team of threads; without one (or in a forked child) it uses its own persistent pool, created on
// first use, grown to the largest thread count requested and rebuilt in a forked child.
#pragma once

#include <cstdint>
#include <functional>

namespace ganrt {

// Calls fn(begin, end) on disjoint pieces covering [0, n), each at most `grain` long (except when run
// inline), on up to `num_threads` threads including the caller; returns when all pieces are done and rethrows
// the first exception a piece threw. Runs inline when one thread suffices, when called from inside a pool task,
// or while another caller's job occupies the pool. Pieces must not depend on which thread runs them.
void parallel_for(int64_t n, int64_t grain, int num_threads, const std::function<void(int64_t, int64_t)>& fn);

// Grain that spreads `n` items of roughly `cost` elements each over `num_threads` threads, with at least
// `min_work` elements per piece so small jobs stay on the caller's thread: waking a worker costs microseconds
// of scheduler latency, and more when it has to take a core from PyTorch's spinning OpenMP threads, so a piece
// must be worth tens of microseconds (64K elements: ~40-80 us in the norm kernels).
inline int64_t parallel_grain(int64_t n, int64_t cost, int num_threads, int64_t min_work = 65536) {
  if (cost < 1) cost = 1;
  int64_t grain = (min_work + cost - 1) / cost;
  // About four pieces per thread keeps threads busy when the machine is shared.
  const int64_t balanced = (n + 4 * static_cast<int64_t>(num_threads) - 1) / (4 * static_cast<int64_t>(num_threads));
  if (balanced > grain) grain = balanced;
  return grain < 1 ? 1 : grain;
}

}  // namespace ganrt
