"""The dynamic batcher on real models (no HTTP): merging, splitting, queue bound, timeouts, draining."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ganrt.serve.batching import Batcher, DrainingError, QueueFullError
from ganrt.serve.metrics import ServerMetrics


def _metrics() -> ServerMetrics:
    return ServerMetrics(queue_depths=dict, in_flight=dict)


def _z(seed: int, rows: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 16)).astype(np.float32)


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_concurrent_requests_merge_and_split_exactly(loaded_models):
    model = loaded_models["dcgan"]
    metrics = _metrics()

    async def main():
        batcher = Batcher("g", [model], max_batch=8, max_delay_s=0.0, max_queue=64, metrics=metrics)
        batcher.start()
        sizes = [1, 2, 1, 3, 1]  # 8 rows: one call
        outs = await asyncio.gather(
            *(batcher.infer({"z": _z(i, n)}, timeout_s=30) for i, n in enumerate(sizes))
        )
        await batcher.close()
        return sizes, outs

    sizes, outs = _run(main())
    for i, (n, out) in enumerate(zip(sizes, outs, strict=True)):
        assert out["image"].shape == (n, 3, 32, 32)
        np.testing.assert_array_equal(out["image"], model.infer({"z": _z(i, n)})["image"])
    assert metrics.batch_size.counts(model="g")[8] == 1
    assert metrics.batch_requests.counts(model="g")[8] == 1


def test_max_batch_caps_rows_and_one_disables_merging(loaded_models):
    model = loaded_models["dcgan"]

    async def main(max_batch):
        metrics = _metrics()
        batcher = Batcher("g", [model], max_batch=max_batch, max_delay_s=0.0, max_queue=64, metrics=metrics)
        batcher.start()
        await asyncio.gather(*(batcher.infer({"z": _z(i)}, timeout_s=30) for i in range(10)))
        await batcher.close()
        return metrics.batch_size.counts(model="g")

    capped = _run(main(4))
    assert capped[4] == 2 and capped[2] == 1  # 4 + 4 + 2 rows
    off = _run(main(1))
    assert off[1] == 10 and sum(off.values()) == 10


def test_different_image_sizes_are_not_merged(loaded_models):
    model = loaded_models["pix2pix"]
    metrics = _metrics()
    rng = np.random.default_rng(0)
    images = [rng.uniform(-1, 1, (1, 3, s, s)).astype(np.float32) for s in (32, 64, 32, 64)]

    async def main():
        batcher = Batcher("t", [model], max_batch=8, max_delay_s=0.0, max_queue=64, metrics=metrics)
        batcher.start()
        outs = await asyncio.gather(*(batcher.infer({"image": x}, timeout_s=30) for x in images))
        await batcher.close()
        return outs

    outs = _run(main())
    for x, out in zip(images, outs, strict=True):
        np.testing.assert_array_equal(out["output"], model.infer({"image": x})["output"])
    assert metrics.batch_size.counts(model="t")[2] == 2  # the two 32s together, the two 64s together


def test_full_queue_refuses_instead_of_growing(loaded_models):
    model = loaded_models["dcgan"]

    async def main():
        batcher = Batcher("g", [model], max_batch=1, max_delay_s=0.0, max_queue=2)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.infer({"z": _z(i)}, timeout_s=30) for i in range(5)), return_exceptions=True
        )
        after = await batcher.infer({"z": _z(9)}, timeout_s=30)
        await batcher.close()
        return results, after

    results, after = _run(main())
    refused = [r for r in results if isinstance(r, QueueFullError)]
    assert len(refused) == 3, results  # the first two were queued before the batcher ran
    assert "2 requests queued" in str(refused[0])
    assert after["image"].shape == (1, 3, 32, 32)


def test_timeout_drops_the_request_and_the_batcher_continues(loaded_models):
    model = loaded_models["dcgan"]

    async def main():
        batcher = Batcher("g", [model], max_batch=4, max_delay_s=0.0, max_queue=8)
        batcher.start()
        with pytest.raises(TimeoutError):
            await batcher.infer({"z": _z(0)}, timeout_s=1e-6)
        out = await batcher.infer({"z": _z(1)}, timeout_s=30)
        depth = batcher.queue_depth
        await batcher.close()
        return out, depth

    out, depth = _run(main())
    np.testing.assert_array_equal(out["image"], model.infer({"z": _z(1)})["image"])
    assert depth == 0


def test_close_drains_queued_work_then_refuses(loaded_models):
    model = loaded_models["dcgan"]

    async def main():
        batcher = Batcher("g", [model], max_batch=2, max_delay_s=0.0, max_queue=16)
        batcher.start()
        pending = [asyncio.ensure_future(batcher.infer({"z": _z(i)}, timeout_s=30)) for i in range(6)]
        await asyncio.sleep(0)  # let every request reach the queue
        await batcher.close()
        outs = [p.result() for p in pending]  # all done once close() returns
        with pytest.raises(DrainingError, match="shutting down"):
            await batcher.infer({"z": _z(0)}, timeout_s=30)
        return outs

    outs = _run(main())
    assert len(outs) == 6 and all(o["image"].shape == (1, 3, 32, 32) for o in outs)


def test_waits_for_partners_only_under_concurrency(loaded_models):
    """A lone request runs at once; with other requests in flight the oldest waits up to max_delay_s."""
    model = loaded_models["dcgan"]
    metrics = _metrics()

    async def main():
        batcher = Batcher("g", [model], max_batch=8, max_delay_s=5.0, max_queue=16, metrics=metrics)
        batcher.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with batcher.track():
            await batcher.infer({"z": _z(0)}, timeout_s=30)
        lone = loop.time() - t0

        async def late_partner():
            with batcher.track():
                await asyncio.sleep(0.2)  # still receiving its body when the first request is queued
                return await batcher.infer({"z": _z(2)}, timeout_s=30)

        async def first():
            with batcher.track():
                return await batcher.infer({"z": _z(1)}, timeout_s=30)

        partner = asyncio.ensure_future(late_partner())
        await asyncio.sleep(0)
        await asyncio.gather(first(), partner)
        await batcher.close()
        return lone

    lone = _run(main())
    assert lone < 2.0, f"a lone request waited {lone:.2f} s for partners"
    assert metrics.batch_size.counts(model="g")[2] == 1  # the first request waited for the late one


def test_instances_run_batches_concurrently(onnx_models):
    import threading

    import ganrt

    instances = [ganrt.load(onnx_models["dcgan"], threads=1, backend="onnxruntime") for _ in range(2)]
    used: list[int] = []
    active = [0]
    peak = [0]
    lock = threading.Lock()

    def call(model, feeds):
        with lock:
            used.append(instances.index(model))
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return model.infer(feeds)
        finally:
            with lock:
                active[0] -= 1

    async def main():
        batcher = Batcher("g", instances, max_batch=1, max_delay_s=0.0, max_queue=64)
        batcher.start()
        outs = await asyncio.gather(
            *(batcher.run(call, {"z": _z(i, 64)}, kind="infer", timeout_s=60) for i in range(8))
        )
        await batcher.close()
        return outs

    try:
        outs = _run(main())
        for i, out in enumerate(outs):
            np.testing.assert_array_equal(out["image"], instances[0].infer({"z": _z(i, 64)})["image"])
    finally:
        for model in instances:
            model.close()
    assert set(used) == {0, 1}, used
    assert peak[0] == 2, "the two instances never computed at the same time"


def test_invalid_configuration():
    with pytest.raises(ValueError, match="max_batch must be >= 1, got 0"):
        Batcher("g", [object()], max_batch=0, max_delay_s=0, max_queue=1)
    with pytest.raises(ValueError, match="max_queue must be >= 1"):
        Batcher("g", [object()], max_batch=1, max_delay_s=0, max_queue=0)
    with pytest.raises(ValueError, match="at least one model"):
        Batcher("g", [], max_batch=1, max_delay_s=0, max_queue=1)
