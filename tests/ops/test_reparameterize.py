"""Philox4x32-10 + Box-Muller normals (ganrt.ops.standard_normal) and ganrt.ops.reparameterize."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch

from ganrt.ops import (
    philox4x32_10_ref,
    reparameterize,
    reparameterize_ref,
    standard_normal,
    standard_normal_ref,
)
from tests.tolerances import (
    BACKWARD,
    FORWARD,
    GRADCHECK,
    NORMALITY_P_MIN,
    PHILOX_STREAM,
    STAT_SIGMAS,
    assert_close,
)

# Published known-answer vectors of philox4x32-10 (Random123 kat_vectors): counter words 0..3, key words 0..1.
PHILOX_KAT = {
    "zeros": ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    "ones": (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    "pi_digits": (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
}


@pytest.mark.parametrize("case", PHILOX_KAT.values(), ids=PHILOX_KAT.keys())
def test_philox_reference_known_answer_vectors(case):
    counter, key, expected = case
    assert tuple(int(v) for v in philox4x32_10_ref(counter, key)) == expected


@pytest.mark.parametrize("case", PHILOX_KAT.values(), ids=PHILOX_KAT.keys())
def test_philox_kernel_known_answer_vectors(case):
    from ganrt import _C

    counter, key, expected = case
    assert tuple(_C.philox4x32_10(counter, key)) == expected


STREAMS = {
    "seed0_offset0": (0, 0),  # counter 0, key 0: the first KAT vector through Box-Muller
    "odd_offset": (123456789, 7),
    "high_key_word": (0xA4093822_299F31D0, 3),
    "high_counter_word": (2**64 - 1, (5 << 34) + 2),
}


@pytest.mark.parametrize("stream", STREAMS.values(), ids=STREAMS.keys())
def test_kernel_matches_reference_stream(stream):
    # The reference's Philox is checked against the KAT vectors above, so this pins the kernel's Philox words,
    # counter/key layout, lane order and Box-Muller form end to end.
    seed, offset = stream
    z = standard_normal(4099, seed=seed, offset=offset, dtype=torch.float64)
    assert_close(z, standard_normal_ref(4099, seed=seed, offset=offset), PHILOX_STREAM, "float64 stream")
    z32 = standard_normal(4099, seed=seed, offset=offset)
    assert_close(
        z32, standard_normal_ref(4099, seed=seed, offset=offset), FORWARD[torch.float32], "float32 stream"
    )


def test_statistics_of_a_million_samples():
    z = standard_normal(1_000_000, seed=20240601).double()
    n = z.numel()
    assert torch.isfinite(z).all()
    assert abs(z.mean().item()) < STAT_SIGMAS / math.sqrt(n)
    assert abs(z.var().item() - 1.0) < STAT_SIGMAS * math.sqrt(2.0 / n)
    # Box-Muller partners (lanes 0/1 and 2/3) must be uncorrelated.
    corr = torch.corrcoef(torch.stack([z[0::2], z[1::2]]))[0, 1].item()
    assert abs(corr) < STAT_SIGMAS / math.sqrt(n / 2)
    sample = z.numpy()
    assert scipy.stats.normaltest(sample).pvalue > NORMALITY_P_MIN
    assert scipy.stats.kstest(sample, "norm").pvalue > NORMALITY_P_MIN


def test_same_seed_and_offset_give_same_values():
    a = standard_normal((3, 5, 7), seed=11, offset=5)
    b = standard_normal((3, 5, 7), seed=11, offset=5)
    assert torch.equal(a, b)
    assert torch.equal(a.flatten(), standard_normal(105, seed=11, offset=5))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 1001], ids=lambda k: f"offset{k}")
def test_offset_shifts_the_stream(k):
    n = 37
    assert torch.equal(standard_normal(n, seed=3, offset=k), standard_normal(n + k, seed=3)[k:])


def test_different_seeds_and_counters_differ():
    base = standard_normal(64, seed=0)
    others = {
        "seed 1": standard_normal(64, seed=1),
        "seed 2**32 (high key word)": standard_normal(64, seed=1 << 32),
        "offset 4 * 2**32 (high counter word)": standard_normal(64, seed=0, offset=4 << 32),
    }
    for what, other in others.items():
        assert (base != other).all(), what


def test_extreme_seed_and_offset():
    top = standard_normal(8, seed=2**64 - 1, offset=2**64 - 9)
    assert torch.isfinite(top).all()
    assert torch.equal(top[4:], standard_normal(4, seed=2**64 - 1, offset=2**64 - 5))
    assert_close(top, standard_normal_ref(8, seed=2**64 - 1, offset=2**64 - 9), FORWARD[torch.float32], "top")
    with pytest.raises(ValueError, match=r"offset \+ numel must be < 2\*\*64"):
        standard_normal(9, seed=0, offset=2**64 - 9)


def test_float64_and_float32_agree():
    z32 = standard_normal(4096, seed=5)
    z64 = standard_normal(4096, seed=5, dtype=torch.float64)
    assert z64.dtype == torch.float64
    assert_close(z32, z64, FORWARD[torch.float32], "float32 vs float64 stream")


def test_thread_count_does_not_change_values():
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = standard_normal(100_003, seed=9, offset=1)
        torch.set_num_threads(2)
        b = standard_normal(100_003, seed=9, offset=1)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a, b)


def test_empty_shape():
    assert standard_normal((0, 3), seed=1).shape == (0, 3)


def _mu_logvar(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    logvar = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.5).to(dtype)
    return mu, logvar


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (3, 128), (2, 3, 5, 7)], ids=["1", "3x128", "2x3x5x7"])
def test_matches_reference(shape, dtype):
    mu, logvar = _mu_logvar(shape, dtype)
    mu.requires_grad_()
    logvar.requires_grad_()
    z = reparameterize(mu, logvar, seed=42, offset=6)
    eps = standard_normal(shape, seed=42, offset=6, dtype=torch.float64)
    mu_r, lv_r = (t.detach().double().requires_grad_() for t in (mu, logvar))
    z_ref = reparameterize_ref(mu_r, lv_r, eps)
    assert z.dtype == dtype
    assert_close(z, z_ref, FORWARD[dtype], "z")
    grad_z = torch.randn(shape, dtype=torch.float64)
    grads = torch.autograd.grad(z, (mu, logvar), grad_z.to(dtype))
    grads_ref = torch.autograd.grad(z_ref, (mu_r, lv_r), grad_z)
    assert_close(grads[0], grads_ref[0], BACKWARD[dtype], "grad mu")
    assert_close(grads[1], grads_ref[1], BACKWARD[dtype], "grad logvar")


def test_non_contiguous_inputs_use_logical_order():
    mu, logvar = _mu_logvar((6, 10))
    z = reparameterize(mu.t(), logvar.t(), seed=1)
    assert torch.equal(z, reparameterize(mu.t().contiguous(), logvar.t().contiguous(), seed=1))


def test_gradcheck_float64():
    mu, logvar = _mu_logvar((3, 4), torch.float64, seed=2)
    inputs = (mu.requires_grad_(), logvar.requires_grad_())

    def fn(mu, logvar):
        return reparameterize(mu, logvar, seed=123, offset=1)

    assert torch.autograd.gradcheck(fn, inputs, **GRADCHECK)
    assert torch.autograd.gradgradcheck(fn, inputs, **GRADCHECK)


def test_opcheck():
    mu, logvar = _mu_logvar((4, 9))
    torch.library.opcheck(torch.ops.ganrt.reparameterize.default, (mu.requires_grad_(), logvar, 5, 2))
    torch.library.opcheck(torch.ops.ganrt.reparameterize_backward.default, (torch.randn(4, 9), logvar, 5, 2))
    torch.library.opcheck(
        torch.ops.ganrt.standard_normal.default, ((3, 5), -1, 3, torch.float32, torch.device("cpu"))
    )


ERRORS = {
    "shape_mismatch": (
        lambda: reparameterize(torch.zeros(2, 3), torch.zeros(3, 2), seed=0),
        ValueError,
        r"logvar must have the shape of mu \(2, 3\), got \(3, 2\)",
    ),
    "dtype_mismatch": (
        lambda: reparameterize(torch.zeros(3), torch.zeros(3, dtype=torch.float64), seed=0),
        TypeError,
        r"logvar must have the dtype of mu \(float32\), got float64",
    ),
    "int_dtype": (
        lambda: reparameterize(torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64), seed=0),
        TypeError,
        r"mu must be float32 or float64 on CPU, got int64",
    ),
    "half_on_cpu": (
        lambda: reparameterize(torch.zeros(3).half(), torch.zeros(3).half(), seed=0),
        TypeError,
        r"mu must be float32 or float64 on CPU, got float16",
    ),
    "seed_negative": (
        lambda: reparameterize(torch.zeros(3), torch.zeros(3), seed=-1),
        ValueError,
        r"seed must be in \[0, 2\*\*64 - 1\], got -1",
    ),
    "seed_too_big": (
        lambda: standard_normal(3, seed=2**64),
        ValueError,
        r"seed must be in \[0, 2\*\*64 - 1\]",
    ),
    "seed_float": (
        lambda: standard_normal(3, seed=1.5),
        TypeError,
        r"seed must be an int in \[0, 2\*\*64 - 1\], got float",
    ),
    "seed_bool": (lambda: standard_normal(3, seed=True), TypeError, r"seed must be an int"),
    "offset_negative": (
        lambda: reparameterize(torch.zeros(3), torch.zeros(3), seed=0, offset=-4),
        ValueError,
        r"offset must be in \[0, 2\*\*64 - 1\], got -4",
    ),
    "normal_dtype": (
        lambda: standard_normal(3, seed=0, dtype=torch.float16),
        TypeError,
        r"dtype must be one of float32, float64 on CPU, got float16",
    ),
    "normal_device": (
        lambda: standard_normal(3, seed=0, device="meta"),
        ValueError,
        r"device must be a CPU or CUDA device, got meta",
    ),
    "normal_shape": (
        lambda: standard_normal((2, -1), seed=0),
        ValueError,
        r"shape must have non-negative sizes",
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_errors(case):
    fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()


def test_registered_op_and_eager_fast_path_agree():
    mu, logvar = _mu_logvar((5, 33))
    fast = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
    op = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
    z_fast = reparameterize(*fast, seed=8, offset=2)
    z_op = torch.ops.ganrt.reparameterize(*op, 8, 2)
    assert torch.equal(z_fast, z_op)
    grad = torch.randn_like(z_op)
    for g_fast, g_op in zip(torch.autograd.grad(z_fast, fast, grad), torch.autograd.grad(z_op, op, grad)):
        assert torch.equal(g_fast, g_op)


def test_autocast_samples_in_float32():
    # Under autocast the op is on the fp32 side (like exp): bf16 mu/logvar are widened, z and gradients
    # are what the fp32 op gives on the widened inputs, on the eager path and the registered op alike.
    mu, logvar = torch.randn(4, 33).to(torch.bfloat16), (torch.randn(4, 33) * 2).to(torch.bfloat16)
    leaves = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = reparameterize(*leaves, seed=11, offset=5)
        z_op = torch.ops.ganrt.reparameterize(mu, logvar, 11, 5)
    expected = reparameterize(mu.float(), logvar.float(), seed=11, offset=5)
    assert z.dtype == z_op.dtype == torch.float32
    assert torch.equal(z, expected) and torch.equal(z_op, expected)
    grads = torch.autograd.grad(z.sum(), leaves)
    assert [g.dtype for g in grads] == [torch.bfloat16, torch.bfloat16]
