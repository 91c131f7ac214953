// Persistent thread pool behind ganrt::parallel_for (see common/parallel.h).
#include "common/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ganrt {
namespace {

// Upper bound on pool threads: far above any core count this runs on, low enough that a bogus request
// cannot exhaust the process.
constexpr int kMaxThreads = 256;

thread_local bool t_inside_pool_task = false;

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
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      wanted_ = num_workers;
      joined_ = 0;
      ++generation_;
    }
    work_cv_.notify_all();
    t_inside_pool_task = true;
    job.work(mu_);
    t_inside_pool_task = false;
    std::unique_lock<std::mutex> lock(mu_);
    // Every piece was claimed by the caller's loop or by a worker that is still inside; once none is inside,
    // all are finished. Clearing job_ under the lock stops late wakers from touching the finished job.
    done_cv_.wait(lock, [&] { return inside_ == 0; });
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
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (job_ == nullptr || joined_ >= wanted_) continue;
      Job* job = job_;
      ++joined_;
      ++inside_;
      lock.unlock();
      t_inside_pool_task = true;
      job->work(mu_);
      t_inside_pool_task = false;
      lock.lock();
      if (--inside_ == 0) done_cv_.notify_all();
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  size_t threads_ = 0;       // workers started (touched by the pool holder only)
  uint64_t generation_ = 0;  // bumped per job so sleeping workers notice it
  Job* job_ = nullptr;
  int wanted_ = 0;  // workers allowed to join the current job
  int joined_ = 0;
  int inside_ = 0;  // workers currently running pieces of job_
};

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
