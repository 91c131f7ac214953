"""``backend="auto"`` on ONNX: the timed trial, the quality bound on bf16, the selection record and its cache
(content-keyed, rebuilt when corrupt, skipped with a warning when unwritable), forced backends and precisions,
and the fall-back to ONNX Runtime for artifacts OpenVINO cannot read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ganrt
from ganrt.artifact import ArtifactMetadata
from ganrt.backends import openvino as ov_backend
from ganrt.backends.openvino import native_bf16
from ganrt.errors import ArtifactError, BackendUnavailableError
from ganrt.runtime.cache import CacheWarning
from ganrt.runtime.select import REDUCED_MIN_GAIN, TIE, TRIAL_MAX_ROUNDS, TRIAL_MIN_ROUNDS
from tests.backends.test_openvino import inverse_onnx

NATIVE_BF16, WHY_NOT_BF16 = native_bf16()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache root, so this test's loads start cold."""
    root = tmp_path / "cache"
    monkeypatch.setenv("GANRT_CACHE_DIR", str(root))
    return root


def _candidates(selection: dict) -> dict[tuple[str, str], dict]:
    return {(c["backend"], c["precision"]): c for c in selection["candidates"]}


def test_first_load_times_every_candidate_and_records_the_choice(artifacts, cache_dir, photo):
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        info = model.info()
        assert model(photo).shape == photo.shape
    selection = info["selection"]
    found = _candidates(selection)
    assert set(found) == {("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")}
    for key in (("onnxruntime", "fp32"), ("openvino", "fp32")):
        assert found[key]["status"] == "ok" and 0 < found[key]["min_ms"] <= found[key]["median_ms"], found[key]
    bf16 = found["openvino", "bf16"]
    if NATIVE_BF16:
        quality = bf16["quality"]
        assert quality["against"] == "onnxruntime fp32" and quality["samples"] == 3
        assert bf16["status"] == ("ok" if quality["passed"] else "rejected")
        assert quality["passed"] == (quality["psnr_db"] >= 40.0 and quality["uint8_mean_abs"] <= 2.0)
    else:
        assert bf16["status"] == "unavailable" and bf16["reason"] == WHY_NOT_BF16
    winner = selection["winner"]
    assert winner == {"backend": info["backend"], "precision": info["precision"]}
    assert info["selected"].startswith(f"{winner['backend']} {winner['precision']} on cpu")
    # The recorded times justify the winner.
    times = {k: c["min_ms"] for k, c in found.items() if c["status"] == "ok"}
    best = times[winner["backend"], winner["precision"]]
    fp32 = [t for (_, precision), t in times.items() if precision == "fp32"]
    if winner["precision"] == "bf16":
        assert best <= min(fp32) * (1 - REDUCED_MIN_GAIN)
    else:
        assert best <= min(fp32) / (1 - TIE)
    trial = selection["trial"]
    assert trial["size"] == [32, 32] and trial["batch"] == 1 and trial["threads"] == info["threads"]
    assert TRIAL_MIN_ROUNDS <= trial["rounds"] <= TRIAL_MAX_ROUNDS
    assert selection["cache"]["status"] == "written"
    record = json.loads(Path(selection["cache"]["record"]).read_text())
    assert record["format"] == "ganrt-select/2" and record["winner"] == winner
    assert record["key"]["threads"] == info["threads"] and record["key"]["ganrt_version"] == ganrt.__version__
    assert selection["precision_reason"].startswith(winner["precision"])


def test_second_load_reuses_the_record_without_a_trial(artifacts, cache_dir):
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        first = model.info()["selection"]
    record = Path(first["cache"]["record"])
    before = record.read_bytes()
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        second = model.info()
    assert second["selection"]["cache"] == {"status": "hit", "record": str(record)}
    assert second["selection"]["candidates"] == first["candidates"]  # the same measurements: no new trial
    assert (second["backend"], second["precision"]) == tuple(first["winner"].values())
    assert record.read_bytes() == before


def test_the_record_is_keyed_by_contents_threads_and_request(artifacts, cache_dir, tmp_path):
    original = artifacts["pix2pix_onnx"]
    with ganrt.load(original) as model:
        first = model.info()["selection"]
    copy = shutil.copy(original, tmp_path / "elsewhere.onnx")
    with ganrt.load(copy) as model:  # the same bytes at another path
        assert model.info()["selection"]["cache"]["status"] == "hit"
    changed = onnx.load(str(original))
    helper.set_model_props(changed, {**{p.key: p.value for p in changed.metadata_props}, "note": "retrained"})
    onnx.save(changed, copy)
    with ganrt.load(copy) as model:
        other = model.info()["selection"]
    assert other["cache"]["status"] == "written"
    assert other["key"]["artifact_sha256"] != first["key"]["artifact_sha256"]
    with ganrt.load(original, threads=1) as model:
        assert model.info()["selection"]["cache"]["status"] == "written"
    with ganrt.load(original, precision="fp32") as model:
        fp32_only = model.info()["selection"]
    assert fp32_only["cache"]["status"] == "written"
    assert set(_candidates(fp32_only)) == {("onnxruntime", "fp32"), ("openvino", "fp32")}


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (b"{ not json", "unreadable record"),
        (b'{"format": "ganrt-select/0"}', "not a ganrt-select/2 record"),
    ],
    ids=["truncated", "foreign"],
)
def test_a_corrupt_record_is_rebuilt(artifacts, cache_dir, damage, why):
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        record = Path(model.info()["selection"]["cache"]["record"])
    record.write_bytes(damage)
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        rebuilt = model.info()["selection"]
    assert rebuilt["cache"]["status"] == "rebuilt" and why in rebuilt["cache"]["why"]
    assert json.loads(record.read_text())["format"] == "ganrt-select/2"
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        assert model.info()["selection"]["cache"]["status"] == "hit"


def test_a_record_naming_an_unknown_winner_is_rebuilt(artifacts, cache_dir):
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        record = Path(model.info()["selection"]["cache"]["record"])
    document = json.loads(record.read_text())
    document["winner"] = {"backend": "tensorrt", "precision": "fp16"}
    record.write_text(json.dumps(document))
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        assert model.info()["selection"]["cache"]["status"] == "rebuilt"
        assert model.info()["selection"]["cache"]["why"] == "malformed record"


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only directory, or for root (who ignores
    permission bits) a folder of the kernel's read-only sysfs."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").write_bytes(b"")
    except OSError:
        return folder
    (folder / "probe").unlink()
    sysfs = Path("/sys/kernel/ganrt-cache")
    try:
        sysfs.mkdir()
    except OSError:
        return sysfs
    pytest.fail(f"found no unwritable folder to test with ({folder} and {sysfs} were writable)")


def test_an_unwritable_cache_folder_warns_and_runs_without_it(artifacts, tmp_path, monkeypatch, photo):
    root = _unwritable_folder(tmp_path)
    monkeypatch.setenv("GANRT_CACHE_DIR", str(root))
    with pytest.warns(CacheWarning, match=r"cannot be written .*continuing without the cache"):
        model = ganrt.load(artifacts["pix2pix_onnx"])
    with model:
        selection = model.info()["selection"]
        assert selection["cache"] == {"status": "not cached", "record": None}
        assert model(photo).shape == photo.shape
    with pytest.warns(CacheWarning, match="cannot be written"):
        model = ganrt.load(artifacts["pix2pix_onnx"], backend="openvino", precision="fp32")
    with model:
        assert model.info()["cache_dir"] is None and not model.info()["loaded_from_cache"]
        assert model(photo).shape == photo.shape


def test_an_artifact_openvino_cannot_read_falls_back_to_onnxruntime(cache_dir, tmp_path, photo):
    path = inverse_onnx(tmp_path / "inverse.onnx")
    with ganrt.load(path) as model:
        info = model.info()
        np.testing.assert_array_equal(model(photo[:16, :16].copy()), photo[:16, :16])
    assert info["backend"] == "onnxruntime"
    found = _candidates(info["selection"])
    assert found["openvino", "fp32"]["status"] == "failed"
    assert "com.microsoft.Inverse" in found["openvino", "fp32"]["reason"]
    assert "not run: openvino fp32" in info["selected"]
    with pytest.raises(ArtifactError, match=r"OpenVINO cannot read or compile .*com\.microsoft\.Inverse"):
        ganrt.load(path, backend="openvino")


def test_forced_backends_and_precisions(artifacts, cache_dir):
    path = artifacts["pix2pix_onnx"]
    with ganrt.load(path, backend="openvino", precision="fp32") as model:
        info = model.info()
    assert (info["backend"], info["precision"], info["inference_precision"]) == ("openvino", "fp32", "f32")
    assert info["selection"]["precision_reason"] == "fp32: precision='fp32' requested"
    assert "backend='openvino' requested" in info["selected"]
    assert "candidates" not in info["selection"]  # nothing was chosen, so nothing was timed
    with ganrt.load(path, backend="onnxruntime") as model:
        assert (model.backend, model.info()["precision"]) == ("onnxruntime", "fp32")
    with pytest.raises(
        ValueError, match=r"precision='bf16' is not available .*onnxruntime runs it as exported"
    ):
        ganrt.load(path, backend="onnxruntime", precision="bf16")
    with pytest.raises(ValueError, match=r"precision='fp16' .*export it with --precision fp16"):
        ganrt.load(path, precision="fp16")
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'fp16', 'bf16'\)"):
        ganrt.load(path, precision="int8")


@pytest.mark.skipif(not NATIVE_BF16, reason=f"no native bf16 on this CPU: {WHY_NOT_BF16}")
def test_forced_bf16_runs_openvino_bf16_without_the_quality_check(artifacts, cache_dir, photo):
    with ganrt.load(artifacts["pix2pix_onnx"], precision="bf16") as model:
        info = model.info()
        assert model(photo).shape == photo.shape
    assert (info["backend"], info["precision"], info["inference_precision"]) == ("openvino", "bf16", "bf16")
    assert info["artifact_precision"] == "fp32"
    assert "quality check does not apply to a requested precision" in info["selection"]["precision_reason"]


def test_without_native_bf16_auto_leaves_bf16_out_and_forcing_it_fails(
    artifacts, cache_dir, monkeypatch: pytest.MonkeyPatch
):
    why = "this CPU (simulated) has neither AMX-BF16 nor AVX512_BF16, so bf16 would be emulated"
    monkeypatch.setattr(ov_backend, "native_bf16", lambda: (False, why))
    with ganrt.load(artifacts["pix2pix_onnx"]) as model:
        info = model.info()
    bf16 = _candidates(info["selection"])["openvino", "bf16"]
    assert bf16 == {"backend": "openvino", "precision": "bf16", "status": "unavailable", "reason": why}
    assert info["precision"] == "fp32" and why in info["selection"]["precision_reason"]
    with pytest.raises(
        BackendUnavailableError, match=r"precision='bf16' needs a CPU with native bf16 .*simulated"
    ):
        ganrt.load(artifacts["pix2pix_onnx"], precision="bf16")
    with ganrt.load(artifacts["pix2pix_onnx"], backend="openvino") as model:
        assert model.info()["precision"] == "fp32"
        assert "not tried: openvino bf16" in model.info()["selected"]


def cancellation_onnx(path: Path) -> Path:
    """A translator that bf16 cannot compute: ``tanh(k * (conv(x, w + d) - conv(x, w)))`` with d far below a
    bf16 ulp of w, so both convolutions round to the same weights in bf16 and the difference vanishes, while
    fp32 keeps it (and k scales it back to order one)."""
    w = np.random.default_rng(0).uniform(0.5, 1.0, (3, 3, 3, 3)).astype(np.float32)
    d = np.float32(1e-4)
    inits = [
        numpy_helper.from_array(w, "wa"),
        numpy_helper.from_array(w + d, "wb"),
        numpy_helper.from_array(np.array(1.0 / (d * 27), np.float32), "k"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "wa"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["image", "wb"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Sub", ["b", "a"], ["diff"]),
        helper.make_node("Mul", ["diff", "k"], ["scaled"]),
        helper.make_node("Tanh", ["scaled"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cancellation",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    md = ArtifactMetadata(
        family="pix2pix", task="translate", in_channels=3, out_channels=3, image_size=32, multiple=1
    )
    helper.set_model_props(model, md.to_props())
    onnx.save(model, path)
    return path


@pytest.mark.skipif(not NATIVE_BF16, reason=f"no native bf16 on this CPU: {WHY_NOT_BF16}")
def test_bf16_outside_the_quality_bound_is_rejected(cache_dir, tmp_path):
    with ganrt.load(cancellation_onnx(tmp_path / "cancellation.onnx")) as model:
        info = model.info()
    bf16 = _candidates(info["selection"])["openvino", "bf16"]
    assert bf16["status"] == "rejected" and not bf16["quality"]["passed"]
    assert bf16["quality"]["psnr_db"] < 40.0 and "min_ms" not in bf16  # never timed
    assert info["precision"] == "fp32"
    assert info["selection"]["precision_reason"].startswith("fp32: bf16 rejected: outside the quality bound")


def test_cache_root_defaults_to_the_users_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from ganrt.runtime.cache import cache_root

    monkeypatch.delenv("GANRT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "ganrt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "ganrt"
    monkeypatch.setenv("GANRT_CACHE_DIR", "~/elsewhere")
    assert cache_root() == Path(os.path.expanduser("~/elsewhere"))
