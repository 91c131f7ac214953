"""Run directories: save_run / Run.load round trips, config hashing and the errors for broken runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from ganrt import __version__
from ganrt.families import family as registry_family
from ganrt.models import (
    Run,
    RunError,
    RunNotFoundError,
    build_net,
    config_hash,
    save_run,
)

FAMILIES = {
    "pix2pix": {
        "G": {"arch": "unet_64", "ngf": 4},
        "D": {"arch": "patchgan", "in_channels": 6, "ndf": 4, "n_layers": 2},
    },
    "cyclegan": {
        "G_A": {"arch": "resnet_6blocks", "ngf": 4},
        "G_B": {"arch": "resnet_6blocks", "ngf": 4},
        "D_A": {"arch": "patchgan", "in_channels": 3, "ndf": 4},
        "D_B": {"arch": "patchgan", "in_channels": 3, "ndf": 4},
    },
    "vae": {"VAE": {"arch": "vae", "image_size": 16, "latent_dim": 8, "base_channels": 4}},
    "dcgan": {
        "G": {"arch": "dcgan_g", "latent_dim": 8, "image_size": 16, "ngf": 4, "num_classes": 2},
        "D": {"arch": "dcgan_d", "image_size": 16, "ndf": 4, "num_classes": 2},
    },
}


def _config(family: str) -> dict:
    return {
        "family": family,
        "image_size": 64 if family == "pix2pix" else 16,
        "in_channels": 3,
        "out_channels": 3,
        "data": {"spec": "builtin:faces"},
        "train": {"steps": 3, "lr": 2e-4},
    }


def _save(tmp_path: Path, family: str, name: str = "run") -> tuple[Path, dict[str, torch.nn.Module]]:
    torch.manual_seed(0)
    nets = {name_: build_net(spec, fused=False) for name_, spec in FAMILIES[family].items()}
    return save_run(tmp_path / name, _config(family), nets), nets


@pytest.mark.parametrize("family", list(FAMILIES))
def test_round_trip(tmp_path, family):
    path, nets = _save(tmp_path, family)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "weights.safetensors",
    ]  # no temp files left
    run = Run.load(path)
    assert run.path == path and run.family == family
    assert run.config["format"] == "ganrt-run/1" and run.config["ganrt_version"] == __version__
    assert run.config["nets"] == {k: m.spec for k, m in nets.items()}
    assert run.config["data"] == {"spec": "builtin:faces"} and run.config["train"]["steps"] == 3
    for name, original in nets.items():
        for fused in (True, False):
            loaded = run.net(name, fused=fused)
            assert not loaded.training
            for key, value in original.state_dict().items():
                torch.testing.assert_close(loaded.state_dict()[key], value, atol=0, rtol=0)
    gen = run.generator()
    assert type(gen) is type(nets[registry_family(family).generator])


def test_loaded_generator_computes_the_same(tmp_path):
    path, nets = _save(tmp_path, "pix2pix")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            Run.load(path).generator(fused=True)(x), nets["G"].eval()(x), atol=1e-5, rtol=0
        )


def test_config_hash(tmp_path):
    path, _ = _save(tmp_path, "vae")
    run = Run.load(path)
    h = run.config_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    reordered = dict(reversed(list(run.config.items())))
    assert config_hash(reordered) == h
    assert config_hash({**run.config, "image_size": 32}) != h
    path2, _ = _save(tmp_path, "vae", name="run2")
    assert Run.load(path2).config_hash() == h  # same config, same hash, wherever it lives


def test_save_overwrites_atomically_and_checks_nets(tmp_path):
    path, nets = _save(tmp_path, "vae")
    with torch.no_grad():
        for p in nets["VAE"].parameters():
            p.add_(1.0)
    save_run(path, _config("vae"), nets)
    loaded = Run.load(path).net("VAE")
    torch.testing.assert_close(loaded.fc_mu.weight, nets["VAE"].fc_mu.weight, atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"names \['G'\] but modules were given for \['VAE'\]"):
        save_run(path, {**_config("vae"), "nets": {"G": {"arch": "vae"}}}, nets)
    with pytest.raises(ValueError, match="unknown family 'gan'"):
        save_run(tmp_path / "x", {**_config("vae"), "family": "gan"}, nets)
    with pytest.raises(ValueError, match="'image_size' must be a positive integer"):
        save_run(tmp_path / "x", {**_config("vae"), "image_size": 0}, nets)
    with pytest.raises(ValueError, match="net 'G' is not part of family 'vae'"):
        save_run(tmp_path / "x", _config("vae"), {"G": nets["VAE"]})
    assert not (tmp_path / "x").exists()


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    return _save(tmp_path, "pix2pix")[0]


def _edit_config(run_dir: Path, **changes) -> None:
    config = json.loads((run_dir / "config.json").read_text())
    config.update(changes)
    (run_dir / "config.json").write_text(json.dumps(config))


def test_missing_files(tmp_path, run_dir):
    with pytest.raises(RunNotFoundError, match="does not exist"):
        Run.load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):  # RunNotFoundError is a FileNotFoundError too
        Run.load(tmp_path / "nothing")
    (run_dir / "weights.safetensors").unlink()
    with pytest.raises(RunNotFoundError, match=r"weights\.safetensors: missing"):
        Run.load(run_dir)
    (run_dir / "config.json").unlink()
    with pytest.raises(RunNotFoundError, match=r"config\.json: missing"):
        Run.load(run_dir)


def test_corrupt_config(run_dir):
    (run_dir / "config.json").write_text('{"format": "ganrt-run/1", ')
    with pytest.raises(RunError, match=r"config\.json: not valid JSON"):
        Run.load(run_dir)
    (run_dir / "config.json").write_text("[1, 2]")
    with pytest.raises(RunError, match="expected a JSON object"):
        Run.load(run_dir)


def test_invalid_config(tmp_path):
    cases = {
        "format": ("ganrt-run/9", "'format' must be 'ganrt-run/1'"),
        "family": ("stylegan", "unknown family 'stylegan'"),
        "nets": ({"G": {"arch": "unet_100"}}, "net 'G': unknown architecture 'unet_100'"),
        "in_channels": ("3", "'in_channels' must be a positive integer"),
    }
    for i, (key, (value, message)) in enumerate(cases.items()):
        path, _ = _save(tmp_path, "pix2pix", name=f"run{i}")
        _edit_config(path, **{key: value})
        with pytest.raises(RunError, match=re.escape(message)) as info:
            Run.load(path)
        assert str(path / "config.json") in str(info.value)


def test_truncated_weights(run_dir):
    weights = run_dir / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError, match=r"weights\.safetensors: not a readable safetensors file"):
        Run.load(run_dir)
    weights.write_bytes(b"\x00" * 3)
    with pytest.raises(RunError, match="truncated or corrupt"):
        Run.load(run_dir)


def test_weights_that_do_not_fit_the_spec(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    _edit_config(run_dir, nets={**config["nets"], "G": {**config["nets"]["G"], "ngf": 8}})
    run = Run.load(run_dir)
    with pytest.raises(
        RunError, match=r"weights\.safetensors: weights of net 'G' do not fit its spec .*shape mismatch"
    ):
        run.net("G")
    _edit_config(run_dir, nets={**config["nets"], "G": {**config["nets"]["G"], "norm": "instance"}})
    with pytest.raises(
        RunError, match=r"missing keys \[levels\.0\.down\.bias.*unexpected keys \[levels\.1\.down_norm\.bias"
    ):
        Run.load(run_dir).net("G")
    with pytest.raises(RunError, match=r"no net 'G_A' in this pix2pix run; nets: \['D', 'G'\]"):
        run.net("G_A")


def test_run_without_generator(tmp_path):
    torch.manual_seed(0)
    d = build_net(FAMILIES["pix2pix"]["D"], fused=False)
    path = save_run(tmp_path / "d_only", _config("pix2pix"), {"D": d})
    with pytest.raises(RunError, match="no net 'G'"):
        Run.load(path).generator()
