"""Samplers and VAEs: Philox latents give the same images on every backend; decode, encode, interpolate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganrt
from ganrt.ops import standard_normal, tensor_to_images_ref
from ganrt.runtime import VAE, Encoder, Sampler
from tests.tolerances import ONNX, assert_close


def _assert_close_u8(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.fixture(scope="module")
def cgan(artifacts):
    # fp32 on either ONNX backend: compared with the PyTorch model to within a uint8 level.
    with (
        ganrt.load(artifacts["cgan_onnx"], precision="fp32") as onnx_model,
        ganrt.load(artifacts["cgan_run"]) as torch_model,
    ):
        yield onnx_model, torch_model


@pytest.fixture(scope="module")
def vae(artifacts):
    with (
        ganrt.load(
            artifacts["vae_decoder_onnx"], encoder=artifacts["vae_encoder_onnx"], precision="fp32"
        ) as onnx_model,
        ganrt.load(artifacts["vae_run"]) as torch_model,
    ):
        yield onnx_model, torch_model


def test_same_seed_same_images_on_every_backend(cgan):
    onnx_model, torch_model = cgan
    a = onnx_model.sample(6, seed=1234)
    assert a.shape == (6, 16, 16, 3) and a.dtype == np.uint8
    _assert_close_u8(a, torch_model.sample(6, seed=1234))
    np.testing.assert_array_equal(a, onnx_model.sample(6, seed=1234))
    assert not np.array_equal(a, onnx_model.sample(6, seed=1235))


def test_sample_is_philox_latents_through_the_generator(artifacts, cgan):
    from ganrt.models import Run

    generator = Run.load(artifacts["cgan_run"]).generator()
    z = standard_normal((4, 8), seed=7)
    labels = torch.tensor([2, 0, 1, 2])
    with torch.no_grad():
        expected = tensor_to_images_ref(generator(z, labels)).numpy()
    _assert_close_u8(cgan[0].sample(4, seed=7, labels=[2, 0, 1, 2]), expected)
    _assert_close_u8(cgan[0].decode(z.numpy(), labels=labels.numpy()), expected)
    decoded = cgan[0].decode(z, labels=labels)
    assert isinstance(decoded, torch.Tensor) and decoded.dtype == torch.uint8


def test_labels(cgan):
    model = cgan[0]
    default = model.sample(3, seed=5)
    np.testing.assert_array_equal(default, model.sample(3, seed=5, labels=[0, 1, 2]))  # cycles by default
    np.testing.assert_array_equal(
        model.sample(3, seed=5, labels=1), model.sample(3, seed=5, labels=[1, 1, 1])
    )
    assert not np.array_equal(default, model.sample(3, seed=5, labels=0))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        model.sample(2, seed=0, labels=[0, 3])
    with pytest.raises(ValueError, match="one int or 2 ints"):
        model.sample(2, seed=0, labels=[0, 1, 2])
    with pytest.raises(TypeError, match="labels must be integers"):
        model.sample(2, seed=0, labels=[0.5, 1.0])


def test_sample_argument_errors(cgan):
    model = cgan[0]
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        model.sample(2, seed=-1)
    with pytest.raises(ValueError, match=r"latents must be \(N, 8\)"):
        model.decode(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="n must be at most 65536 per call"):
        model.sample(100_000_000)
    assert isinstance(model, Sampler) and not hasattr(model, "encode") and not hasattr(model, "translate")


def test_unseeded_samples_differ(cgan):
    assert not np.array_equal(cgan[0].sample(2), cgan[0].sample(2))


def test_vae_sample_and_decode_agree_across_backends(vae):
    onnx_model, torch_model = vae
    _assert_close_u8(onnx_model.sample(5, seed=11), torch_model.sample(5, seed=11))
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    _assert_close_u8(onnx_model.decode(z), torch_model.decode(z))


def test_vae_encode_matches_the_pytorch_encoder(artifacts, vae):
    from ganrt.data import sample_images
    from ganrt.models import Run

    images = sample_images(16, 3)
    net = Run.load(artifacts["vae_run"]).generator()
    with torch.no_grad():
        mu_ref, logvar_ref = net.encode(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1)
    for model in vae:
        mu, logvar = model.encode(images)
        assert mu.shape == (3, 8) and mu.dtype == np.float32
        assert_close(torch.from_numpy(mu), mu_ref, ONNX, "mu")
        assert_close(torch.from_numpy(logvar), logvar_ref, ONNX, "logvar")


def test_vae_reconstruct(vae):
    from ganrt.data import sample_images

    onnx_model, torch_model = vae
    images = sample_images(16, 2)
    _assert_close_u8(onnx_model.reconstruct(images, seed=3), torch_model.reconstruct(images, seed=3))
    mean = onnx_model.reconstruct(images)
    assert not np.array_equal(mean, onnx_model.reconstruct(images, seed=3))
    # Other sizes are resized to the VAE's 16x16 and back.
    big = sample_images(40, 1)[0]
    assert onnx_model.reconstruct(big).shape == (40, 40, 3)


def test_vae_interpolate(vae):
    onnx_model, torch_model = vae
    path = onnx_model.interpolate(1, 2, steps=5)
    assert path.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(path[0], onnx_model.sample(1, seed=1)[0])
    np.testing.assert_array_equal(path[-1], onnx_model.sample(1, seed=2)[0])
    _assert_close_u8(path, torch_model.interpolate(1, 2, steps=5))
    from ganrt.data import sample_images

    a, b = sample_images(16, 2)
    between = onnx_model.interpolate(a, b, steps=3)
    mu, _ = onnx_model.encode(np.stack([a, b]))
    np.testing.assert_array_equal(between[0], onnx_model.decode(mu[:1])[0])
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        onnx_model.interpolate(1, 2, steps=1)


def test_decoder_alone_is_a_sampler(artifacts):
    """A VAE decoder without its encoder samples and decodes; images to interpolate between need the encoder."""
    with ganrt.load(artifacts["vae_decoder_onnx"]) as model:
        assert type(model) is Sampler and not hasattr(model, "encode")
        with pytest.raises(TypeError, match="images need the VAE's encoder .*encoder="):
            model.interpolate(np.zeros((16, 16, 3), np.uint8), 1)
    with ganrt.load(artifacts["vae_decoder_onnx"], encoder=artifacts["vae_encoder_onnx"]) as model:
        assert type(model) is VAE and hasattr(model, "encode") and hasattr(model, "sample")


def test_encoder_artifact_alone_encodes(artifacts):
    with ganrt.load(artifacts["vae_encoder_onnx"]) as model:
        assert model.metadata.task == "encode"
        mu, logvar = model.encode(np.zeros((16, 16, 3), np.uint8))
        assert mu.shape == logvar.shape == (1, 8)
        assert type(model) is Encoder and not hasattr(model, "sample") and not hasattr(model, "translate")


def test_encoder_must_match_its_decoder(artifacts):
    with pytest.raises(TypeError, match="pairs a VAE decoder"):
        ganrt.load(artifacts["cgan_onnx"], encoder=artifacts["vae_encoder_onnx"])
    with pytest.raises(ganrt.runtime.MetadataError, match="not this decoder.s encoder"):
        ganrt.load(artifacts["vae_decoder_onnx"], encoder=artifacts["vae_decoder_onnx"])
