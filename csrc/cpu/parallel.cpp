// Persistent thread pool behind ganrt::parallel_for (see common/parallel.h).
//
// Sharing cores with PyTorch's OpenMP team. After each parallel torch op (a conv) libgomp's workers spin for
// milliseconds waiting for the next region, so with as many threads as cores a separate pool's worker must take
// a core from a spinning OpenMP thread, and a worker preempted mid-piece makes the caller wait for a whole
// scheduler time slice. Two measures:
// (1) When the process already has an OpenMP runtime loaded (PyTorch's libgomp, or libiomp5 / libomp), the
//     pieces run on that runtime's team through its GOMP_parallel entry point, found at run time (nothing is
//     linked, so there is no second OpenMP runtime): the threads that are spinning anyway pick up the work.
//     Only in the process that loaded ganrt, since forked children cannot use their parent's OpenMP team.
// (2) Otherwise the pool below: the caller claims pieces itself, so a late or preempted worker simply does
//     less; workers spin only a few microseconds after a job (to catch back-to-back jobs such as the
//     statistics and normalize passes of one op) before blocking; the caller waits for a worker's last piece
//     by spinning briefly, then yielding its core (which a preempted worker on the same core needs), and only
//     then blocks, since a condvar wake-up of the caller costs scheduler latency on every call.
// Small jobs never get here (parallel_grain's min_work).
#include "common/parallel.h"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ganrt {
namespace {

// Upper bound on pool threads: far above any core count this runs on, low enough that a bogus request
// cannot exhaust the process.
constexpr int kMaxThreads = 256;

thread_local bool t_inside_pool_task = false;

// Spin budgets. A worker's spin after a job is kept to a few microseconds because on a shared 2-core machine
// every spinning microsecond is taken from torch's threads or the caller.
constexpr auto kWorkerSpin = std::chrono::microseconds(5);
constexpr auto kCallerSpin = std::chrono::microseconds(20);
constexpr auto kCallerYield = std::chrono::microseconds(500);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls done() until it holds or `budget` has passed (clock read every 64 polls); with `yield` the core is
// offered to other runnable threads between polls. Returns done()'s last value.
template <typename Pred>
bool spin_until(Pred done, std::chrono::steady_clock::duration budget, bool yield = false) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      if (yield)
        sched_yield();
      else
        cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t grain = 1;
  int64_t num_pieces = 0;
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // first failure, written under Pool::mu_

  // Runs pieces until none is left. Returns with the error recorded (not thrown).
  void work(std::mutex& mu) {
    for (;;) {
      const int64_t piece = next.fetch_add(1, std::memory_order_relaxed);
      if (piece >= num_pieces || failed.load(std::memory_order_relaxed)) return;
      const int64_t begin = piece * grain;
      const int64_t end = std::min(n, begin + grain);
      try {
        (*fn)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed.store(true, std::memory_order_relaxed);
      }
    }
  }
};

class Pool {
 public:
  // Leaked on purpose (see pool()): its detached workers may still be waiting on mu_/work_cv_ at exit.
  Pool() = default;

  bool try_acquire() { return !busy_.exchange(true, std::memory_order_acquire); }
  void release() { busy_.store(false, std::memory_order_release); }

  // Caller holds the pool (try_acquire succeeded).
  void run(Job& job, int num_workers) {
    grow(num_workers);
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      wanted_ = num_workers;
      joined_ = 0;
      generation_.fetch_add(1, std::memory_order_release);
      wake = sleeping_ > 0;
    }
    if (wake) work_cv_.notify_all();
    t_inside_pool_task = true;
    job.work(mu_);
    t_inside_pool_task = false;
    // Every piece was claimed by the caller's loop or by a worker that is still inside; once none is inside,
    // all are finished. The unlocked polls are only a fast path: the decision is taken under the lock, where
    // clearing job_ also stops late wakers from touching the finished job.
    auto none_inside = [&] { return inside_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(none_inside, kCallerSpin)) spin_until(none_inside, kCallerYield, /*yield=*/true);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, none_inside);
    job_ = nullptr;
  }

 private:
  void grow(int num_workers) {
    while (static_cast<int>(threads_) < num_workers) {
      std::thread(&Pool::worker_loop, this).detach();
      ++threads_;
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    auto new_job = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    for (;;) {
      spin_until(new_job, kWorkerSpin);
      std::unique_lock<std::mutex> lock(mu_);
      if (!new_job()) {
        ++sleeping_;
        work_cv_.wait(lock, new_job);
        --sleeping_;
      }
      seen = generation_.load(std::memory_order_relaxed);
      if (job_ == nullptr || joined_ >= wanted_) continue;
      Job* job = job_;
      ++joined_;
      inside_.fetch_add(1, std::memory_order_relaxed);
      lock.unlock();
      t_inside_pool_task = true;
      job->work(mu_);
      t_inside_pool_task = false;
      lock.lock();
      if (inside_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_all();
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  size_t threads_ = 0;       // workers started (touched by the pool holder only)
  // Bumped (under mu_) per job so spinning and sleeping workers notice it.
  std::atomic<uint64_t> generation_{0};
  Job* job_ = nullptr;
  int wanted_ = 0;  // workers allowed to join the current job
  int joined_ = 0;
  int sleeping_ = 0;  // workers blocked on work_cv_
  // Workers currently running pieces of job_; changed under mu_, polled without it by the waiting caller.
  std::atomic<int> inside_{0};
};

// ---- The process's OpenMP runtime, if one is loaded ------------------------------------------------------
// GOMP_parallel(fn, data, num_threads, flags) runs fn(data) on a team of num_threads threads including the
// caller and returns when all are done; libgomp, LLVM's libomp and Intel's libiomp5 all export it (GCC ABI).
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);

const pid_t g_load_pid = getpid();
std::mutex g_omp_mu;
std::atomic<GompParallel> g_omp{nullptr};
unsigned long long g_omp_checked_adds = ~0ull;  // dlpi_adds when the last search found nothing (under g_omp_mu)

struct OmpSearch {
  std::string path;
};

int omp_search_cb(dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<OmpSearch*>(data);
  const char* name = info->dlpi_name;
  if (name == nullptr || *name == '\0') return 0;
  const char* base = std::strrchr(name, '/');
  base = base ? base + 1 : name;
  if (std::strncmp(base, "libgomp", 7) == 0 || std::strncmp(base, "libiomp5", 8) == 0 ||
      std::strncmp(base, "libomp", 6) == 0) {
    search->path = name;
    return 1;
  }
  return 0;
}

// GOMP_parallel of the OpenMP runtime already loaded in this process, or null. The search walks the loaded
// objects again only when libraries were loaded since the last miss (torch may be imported after ganrt._C).
GompParallel openmp_runtime() {
  if (getpid() != g_load_pid) return nullptr;
  GompParallel fn = g_omp.load(std::memory_order_acquire);
  if (fn != nullptr) return fn;
  std::lock_guard<std::mutex> lock(g_omp_mu);
  fn = g_omp.load(std::memory_order_relaxed);
  if (fn != nullptr) return fn;
  unsigned long long adds = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        *static_cast<unsigned long long*>(data) = info->dlpi_adds;
        return 1;
      },
      &adds);
  if (adds == g_omp_checked_adds) return nullptr;
  OmpSearch search;
  dl_iterate_phdr(omp_search_cb, &search);
  if (search.path.empty()) {
    g_omp_checked_adds = adds;
    return nullptr;
  }
  // RTLD_NOLOAD: only a library that is already loaded; the handle is kept, so it stays loaded while in use.
  void* handle = dlopen(search.path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  void* sym = handle ? dlsym(handle, "GOMP_parallel") : nullptr;
  if (sym == nullptr) {
    g_omp_checked_adds = adds;
    return nullptr;
  }
  fn = reinterpret_cast<GompParallel>(sym);
  g_omp.store(fn, std::memory_order_release);
  return fn;
}

struct OmpJob {
  Job* job;
  std::mutex* mu;
};

void omp_region(void* data) {
  auto* j = static_cast<OmpJob*>(data);
  const bool outer = t_inside_pool_task;
  t_inside_pool_task = true;
  j->job->work(*j->mu);
  t_inside_pool_task = outer;
}

// ---- The own pool -------------------------------------------------------------------------------------------
std::mutex g_pool_mu;
Pool* g_pool = nullptr;
pid_t g_pool_pid = 0;

// The pool of this process; a forked child gets a fresh one (the parent's workers do not exist there).
Pool& pool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  const pid_t pid = getpid();
  if (g_pool == nullptr || g_pool_pid != pid) {
    g_pool = new Pool();
    g_pool_pid = pid;
  }
  return *g_pool;
}

}  // namespace

void parallel_for(int64_t n, int64_t grain, int num_threads, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t num_pieces = (n + grain - 1) / grain;
  const int64_t threads = std::min<int64_t>({static_cast<int64_t>(num_threads), num_pieces, kMaxThreads});
  if (threads <= 1 || t_inside_pool_task) {
    fn(0, n);
    return;
  }
  if (const GompParallel omp = openmp_runtime()) {
    Job job;
    job.fn = &fn;
    job.n = n;
    job.grain = grain;
    job.num_pieces = num_pieces;
    std::mutex mu;
    OmpJob data{&job, &mu};
    omp(omp_region, &data, static_cast<unsigned>(threads), 0);
    if (job.error) std::rethrow_exception(job.error);
    return;
  }
  Pool& p = pool();
  if (!p.try_acquire()) {
    // Another thread's job holds the pool: run this one inline rather than queue behind it.
    fn(0, n);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.grain = grain;
  job.num_pieces = num_pieces;
  try {
    p.run(job, static_cast<int>(threads) - 1);
  } catch (...) {
    p.release();
    throw;
  }
  p.release();
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace ganrt
