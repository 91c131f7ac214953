"""ganrt.load: artifact recognition, backend/device selection, metadata, and every error path of issue 5."""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ganrt
from ganrt.runtime import ArtifactError, BackendUnavailableError, MetadataError
from tests.tolerances import ONNX, assert_close


def test_onnx_loads_with_ganrt_metadata(artifacts):
    with ganrt.load(artifacts["pix2pix_onnx"], backend="onnxruntime") as model:
        info = model.info()
        assert model.backend == "onnxruntime" and model.device == "cpu"
        assert info["family"] == "pix2pix" and info["task"] == "translate"
        assert info["multiple"] == 32 and info["in_channels"] == 3
        assert info["threads"] >= 1 and info["providers"] == ["CPUExecutionProvider"]
        assert "backend='onnxruntime' requested" in info["selected"]
        assert "CPU execution provider" in info["selected"]
        assert info["precision"] == info["artifact_precision"] == "fp32"
        assert "exported with" in info["selection"]["precision_reason"]
        assert info["metadata_source"].startswith("ganrt metadata")
        assert [s.name for s in model.inputs] == ["image"] and [s.name for s in model.outputs] == ["output"]
        assert model.inputs[0].shape == (-1, 3, -1, -1)
        assert model.max_batch is None


def test_run_directory_and_its_weights_file_load_with_torch(artifacts):
    run = artifacts["pix2pix_run"]
    for path in (run, run / "weights.safetensors"):
        with ganrt.load(path) as model:
            assert model.backend == "torch"
            assert model.metadata.config_hash == model.info()["config_hash"] != ""
            assert "run directory" in model.info()["selected"]


def test_closed_model_refuses_calls(artifacts, photo):
    model = ganrt.load(artifacts["pix2pix_onnx"])
    model.close()
    model.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        model(photo)


def test_infer_is_the_raw_graph_call(artifacts):
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 64)).astype(np.float32)
    with (
        ganrt.load(artifacts["pix2pix_onnx"], precision="fp32") as onnx_model,
        ganrt.load(artifacts["pix2pix_run"]) as torch_model,
    ):
        a = onnx_model.infer({"image": x})["output"]
        b = torch_model.infer({"image": x})["output"]
    assert a.shape == (2, 3, 32, 64) and a.dtype == np.float32
    assert_close(torch.from_numpy(a), torch.from_numpy(b), ONNX, "ONNX Runtime vs PyTorch")


def test_infer_rejects_bad_feeds(artifacts):
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        with pytest.raises(ValueError, match=r"no input 'x'; the inputs are \['image'\]"):
            model.infer({"x": np.zeros((1, 3, 32, 32), np.float32)})
        with pytest.raises(ValueError, match="missing input 'image'"):
            model.infer({})
        with pytest.raises(ValueError, match="dimension 0 must be >= 1"):
            model.infer({"image": np.zeros((0, 3, 32, 32), np.float32)})
        with pytest.raises(ValueError, match="multiples of 32, got 30x32"):
            model.infer({"image": np.zeros((1, 3, 30, 32), np.float32)})
        with pytest.raises(TypeError, match="must be float32, got float64"):
            model.infer({"image": np.zeros((1, 3, 32, 32))})
        with pytest.raises(ValueError, match="4-D"):
            model.infer({"image": np.zeros((3, 32, 32), np.float32)})
        with pytest.raises(ValueError, match="shape"):
            model.infer({"image": np.zeros((1, 4, 32, 32), np.float32)})


# ------------------------------------------------------------------------------------------- foreign models
def test_foreign_onnx_lists_what_it_needs(foreign_onnx):
    with pytest.raises(MetadataError, match=r"family=.*image_size=.*multiple=") as excinfo:
        ganrt.load(foreign_onnx)
    # Channels are static in the graph, so they are not asked for.
    assert "in_channels" not in str(excinfo.value)


def test_foreign_onnx_loads_with_overrides(foreign_onnx):
    image = np.arange(48 * 64 * 3, dtype=np.uint32).reshape(48, 64, 3).astype(np.uint8)
    with ganrt.load(foreign_onnx, family="pix2pix", image_size=64, multiple=16, value_range=(0, 1)) as model:
        info = model.info()
        assert info["metadata_source"].startswith("inferred from I/O + overrides")
        assert info["in_channels"] == 3 and info["task"] == "translate"
        # out = 1 - x in [0, 1] is exactly the photographic negative.
        np.testing.assert_array_equal(model(image), 255 - image)


def test_value_range_changes_the_mapping(foreign_onnx):
    image = np.arange(16 * 16 * 3, dtype=np.uint32).reshape(16, 16, 3).astype(np.uint8)
    with ganrt.load(foreign_onnx, family="pix2pix", image_size=16, multiple=16) as model:
        out = model(image).astype(np.float64)
    # In [-1, 1]: 1 - (v / 127.5 - 1) = 2 - v / 127.5 -> (3 - v / 127.5) * 127.5 = 382.5 - v, clamped; the .5
    # ties may round either way.
    assert np.all(np.abs(out - np.clip(382.5 - image, 0, 255)) <= 0.5)


def test_static_graph_batches_and_sizes(foreign_static_onnx):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    with ganrt.load(foreign_static_onnx, family="pix2pix", value_range=(0, 1)) as model:
        assert model.max_batch == 2 and model.metadata.image_size == 16
        # 3 images = a call of 2 and a call of 1 padded to the graph's static batch of 2.
        np.testing.assert_array_equal(model(images), 255 - images)
        big = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        assert model(big).shape == (20, 24, 3)  # fixed-size graph: resized to 16x16 and back
        small = np.ascontiguousarray(images[0, :10, :12])
        np.testing.assert_array_equal(model(small, resize="pad"), 255 - small)
        with pytest.raises(ValueError, match="larger than this model's fixed size 16x16"):
            model(big, resize="pad")
        x = torch.rand(3, 3, 16, 16)
        torch.testing.assert_close(model(x), 1 - x)


def test_overrides_that_contradict_the_graph_are_refused(foreign_onnx):
    with pytest.raises(MetadataError, match="in_channels=1 contradicts"):
        ganrt.load(foreign_onnx, family="pix2pix", image_size=64, multiple=16, in_channels=1)


def test_unknown_override_is_a_type_error(artifacts, foreign_onnx):
    with pytest.raises(TypeError, match="unexpected keyword"):
        ganrt.load(foreign_onnx, colour="blue")
    with pytest.raises(TypeError, match="run directories carry their own config"):
        ganrt.load(artifacts["pix2pix_run"], image_size=64)


# ---------------------------------------------------------------------------------------------- error paths
def test_nonexistent_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model"):
        ganrt.load(tmp_path / "missing.onnx")


def test_unknown_extension(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(ArtifactError, match=r"unknown model file extension '\.h5'"):
        ganrt.load(path)


def test_directory_without_config(tmp_path):
    with pytest.raises(ArtifactError, match="not a ganrt run directory"):
        ganrt.load(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_onnx(artifacts, tmp_path, damage):
    data = artifacts["pix2pix_onnx"].read_bytes()
    broken = {
        "truncated": data[: len(data) // 2],
        "garbage": np.random.default_rng(0).bytes(4096),
        "empty": b"",
    }[damage]
    path = tmp_path / "broken.onnx"
    path.write_bytes(broken)
    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        ganrt.load(path)


def test_truncated_checkpoint(artifacts, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(artifacts["pix2pix_run"], run)
    weights = run / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="weights.safetensors"):
        ganrt.load(run)


def test_corrupt_run_config(artifacts, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(artifacts["pix2pix_run"], run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="config.json"):
        ganrt.load(run)


def test_bare_safetensors_without_config(artifacts, tmp_path):
    path = tmp_path / "weights.safetensors"
    shutil.copy(artifacts["pix2pix_run"] / "weights.safetensors", path)
    with pytest.raises(ArtifactError, match="does not say which network"):
        ganrt.load(path)


class _Payload:
    """Unpickling this would create a file: proof that code from the checkpoint ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_checkpoint_needing_arbitrary_objects_is_refused(tmp_path, writer):
    marker = tmp_path / "code_ran"
    path = tmp_path / "latest_net_G.pth"
    if writer == "torch.save":
        torch.save({"model": _Payload(marker)}, path)
    else:
        with path.open("wb") as f:
            pickle.dump({"model": _Payload(marker)}, f)
    with pytest.raises(ArtifactError, match="refusing to load: this checkpoint needs unpickling arbitrary"):
        ganrt.load(path)
    assert not marker.exists()


def test_plain_state_dict_points_to_import_upstream(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save({"model.0.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ArtifactError, match="ganrt import-upstream"):
        ganrt.load(path)


def test_truncated_pickle_checkpoint(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save({"w": torch.zeros(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="not a readable PyTorch checkpoint"):
        ganrt.load(path)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_engine_without_tensorrt(tmp_path):
    path = tmp_path / "pix2pix.engine"
    path.write_bytes(b"not really a plan")
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed: .*pip install tensorrt"):
        ganrt.load(path)


def test_engine_on_cpu_is_refused(tmp_path):
    path = tmp_path / "pix2pix.plan"
    path.write_bytes(b"plan")
    with pytest.raises(ValueError, match="CUDA devices only"):
        ganrt.load(path, device="cpu")


def test_backend_must_fit_the_artifact(artifacts):
    with pytest.raises(ValueError, match="backend must be one of"):
        ganrt.load(artifacts["pix2pix_onnx"], backend="tflite")
    with pytest.raises(ValueError, match="cannot run a onnx artifact"):
        ganrt.load(artifacts["pix2pix_onnx"], backend="tensorrt")
    with pytest.raises(ValueError, match="cannot run a run artifact"):
        ganrt.load(artifacts["pix2pix_run"], backend="onnxruntime")


def test_bad_device_and_threads(artifacts):
    with pytest.raises(ValueError, match="device must be"):
        ganrt.load(artifacts["pix2pix_onnx"], device="tpu")
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        ganrt.load(artifacts["pix2pix_onnx"], threads=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_requested_without_a_device(artifacts):
    with pytest.raises(BackendUnavailableError, match="needs a CUDA device"):
        ganrt.load(artifacts["pix2pix_onnx"], device="cuda")


def test_threads_are_applied(artifacts):
    with ganrt.load(artifacts["pix2pix_onnx"], threads=1) as model:
        assert model.info()["threads"] == 1


def test_info_is_json_serialisable(artifacts):
    with ganrt.load(artifacts["vae_decoder_onnx"], encoder=artifacts["vae_encoder_onnx"]) as model:
        info = json.loads(json.dumps(model.info()))
    assert info["task"] == "sample" and info["latent_dim"] == 8
    assert [t["name"] for t in info["encoder"]["inputs"]] == ["image", "eps"]


def test_run_directory_net_selects_a_generator(artifacts):
    with ganrt.load(artifacts["pix2pix_run"], net="G") as model:
        assert model.metadata.task == "translate"
    with pytest.raises(ArtifactError, match=r"net must be one of the pix2pix inference nets \('G',\), got 'D'"):
        ganrt.load(artifacts["pix2pix_run"], net="D")
    with pytest.raises(TypeError, match="net= selects a network of a run directory"):
        ganrt.load(artifacts["pix2pix_onnx"], net="G")
