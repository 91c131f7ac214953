"""The process-wide TensorRT logger's capture windows (ganrt.backends.tensorrt._Capture), without TensorRT.

TensorRT keeps the logger of the first live Builder/Runtime for every later one, so ganrt has one logger and
each build, deserialization or enqueue opens a capture window for the errors logged on its own thread.
``_deliver`` is what that logger's ``log`` calls for ERROR and INTERNAL_ERROR messages; the severity filter
itself needs TensorRT and runs in the ``tensorrt``-marked tests.
"""

from __future__ import annotations

import threading

from ganrt.backends.tensorrt import _Capture


def test_each_window_starts_empty_and_sees_only_its_own_messages():
    capture = _Capture()
    capture._deliver("logged with no window open: dropped")
    with capture.capture() as first:
        capture._deliver("engine 1: bad plan")
    with capture.capture() as second:
        capture._deliver("engine 2: out of memory")
    assert first == ["engine 1: bad plan"]
    assert second == ["engine 2: out of memory"]  # no stale error from an earlier operation


def test_nested_windows_both_receive_messages():
    capture = _Capture()
    with capture.capture() as outer:
        capture._deliver("a")
        with capture.capture() as inner:
            capture._deliver("b")
        capture._deliver("c")
    assert outer == ["a", "b", "c"] and inner == ["b"]
    assert not capture._sinks  # closed windows leave nothing behind


def test_two_threads_with_live_windows_do_not_swap_messages():
    """Two builders/runtimes alive at once (a server loading two engines): each thread's window gets exactly
    the messages logged on that thread."""
    capture = _Capture()
    both_open = threading.Barrier(2)
    results: dict[str, list[str]] = {}

    def worker(name: str) -> None:
        with capture.capture() as errors:
            both_open.wait()
            for i in range(200):
                capture._deliver(f"{name} {i}")
            both_open.wait()
        results[name] = errors

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["left"] == [f"left {i}" for i in range(200)]
    assert results["right"] == [f"right {i}" for i in range(200)]
    assert not capture._sinks
