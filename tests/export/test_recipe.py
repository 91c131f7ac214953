"""Export recipes: the bundled TOML files are valid, and mistakes in a recipe are errors, not defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganrt.export import ExportError
from ganrt.export.recipe import RECIPE_DIR, Recipe, load_recipe, parse_range, recipe_from_dict

FAMILIES = ("pix2pix", "cyclegan", "vae", "dcgan")


@pytest.mark.parametrize("family", FAMILIES)
def test_bundled_recipes_load(family: str) -> None:
    path = RECIPE_DIR / f"{family}.toml"
    assert path.is_file()
    recipe = load_recipe(None, family)
    assert recipe.family == family and recipe.source == str(path)
    assert recipe.opset >= 18 and recipe.precision == "fp32"
    # The defaults, except CycleGAN's deep ResNet (see export/cyclegan.toml for the measurements).
    fp32 = {"max_abs": 5e-4, "mean_abs": 2e-5} if family == "cyclegan" else {"max_abs": 1e-4}
    assert recipe.thresholds["fp32"] == fp32
    assert recipe.thresholds["fp16"] == {"psnr": 40.0, "uint8_mean_abs": 2.0}
    assert recipe.batch[2] == recipe.triton_max_batch
    assert all(p <= recipe.triton_max_batch for p in recipe.triton_preferred_batch)
    assert recipe.part == ("decoder" if family == "vae" else None)


def test_recipe_for_another_family_is_rejected() -> None:
    with pytest.raises(ExportError, match="is for family 'pix2pix', but the run is a 'vae' run"):
        load_recipe(RECIPE_DIR / "pix2pix.toml", "vae")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"shapes": {"batch": [1, 8]}}, "three integers"),
        ({"shapes": {"batch": [4, 2, 8]}}, "1 <= min <= opt <= max"),
        ({"shapes": {"hieght": [1, 1, 1]}}, r"unknown key\(s\) hieght in \[shapes\]"),
        ({"parity": {"fp16": {"snr": 40}}}, r"unknown key\(s\) snr"),
        ({"parity": {"fp16": {}}}, "must set at least one of"),
        ({"onnx": {"opset": 13}}, r"onnx.opset must be in \[18, 24\]"),
        ({"precision": {"default": "int8"}}, "precision.default must be one of"),
        ({"triton": {"kind": "tpu"}}, "triton.kind must be one of"),
        ({"triton": {"preferred_batch": "4,8"}}, "list of integers"),
        ({"tensorrt": {"workspace_mib": "lots"}}, "tensorrt.workspace_mib must be int"),
        ({"family": "stylegan"}, "family must be one of"),
        ({"export": {}}, r"unknown key\(s\) export in the top level"),
    ],
)
def test_invalid_recipes(data: dict, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        recipe_from_dict(data, source="test.toml")


def test_partial_recipe_keeps_defaults(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[parity.fp16]\npsnr = 45\n[shapes]\nheight = [128, 256, 512]\n")
    recipe = load_recipe(path, "cyclegan")
    assert recipe.family == "cyclegan" and recipe.thresholds == {
        "fp32": {"max_abs": 1e-4},
        "fp16": {"psnr": 45.0},
    }
    assert recipe.height == (128, 256, 512) and recipe.width is None and recipe.batch == Recipe().batch


def test_unreadable_recipes(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        load_recipe(tmp_path / "missing.toml", "vae")
    bad = tmp_path / "bad.toml"
    bad.write_text("family = \n")
    with pytest.raises(ExportError, match="not readable TOML"):
        load_recipe(bad, "vae")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256", (256, 256, 256)),
        ("1:4:8", (1, 4, 8)),
        (8, (8, 8, 8)),
        ([2, 3, 4], (2, 3, 4)),
        ([5], (5, 5, 5)),
    ],
)
def test_parse_range(text: object, expected: tuple[int, int, int]) -> None:
    assert parse_range(text, "batch") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0", "1:2", "a:b:c", "8:4:2", "1:2:3:4"])
def test_parse_range_errors(text: str) -> None:
    with pytest.raises(ExportError, match="batch"):
        parse_range(text, "batch")
