// A small persistent CPU thread pool for the CPU kernels.
//
// Why not OpenMP: PyTorch wheels ship their own libgomp, and a second OpenMP runtime in the same process
// oversubscribes cores or deadlocks after fork. The pool is created on first use, grows to the largest thread
// count requested, and is rebuilt in a forked child (its threads do not survive fork).
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
// `min_work` elements per piece so small jobs stay on one thread (waking a thread costs microseconds).
inline int64_t parallel_grain(int64_t n, int64_t cost, int num_threads, int64_t min_work = 32768) {
  if (cost < 1) cost = 1;
  int64_t grain = (min_work + cost - 1) / cost;
  // About four pieces per thread keeps threads busy when the machine is shared.
  const int64_t balanced = (n + 4 * static_cast<int64_t>(num_threads) - 1) / (4 * static_cast<int64_t>(num_threads));
  if (balanced > grain) grain = balanced;
  return grain < 1 ? 1 : grain;
}

}  // namespace ganrt
