"""ONNX export of modules using the fused ops (standard ONNX ops only) and ONNX Runtime parity."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

import ganrt.ops
from ganrt.nn import InstanceNormAct2d
from ganrt.ops import reparameterize, reparameterize_ref, standard_normal
from tests.tolerances import ONNX, assert_close


class _Block(nn.Module):
    """The three norm sites of the GAN generators: affine+leaky, relu, residual with no activation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.norm_leaky = InstanceNormAct2d(6, affine=True, activation="leaky_relu", negative_slope=0.2)
        self.norm_relu = InstanceNormAct2d(6, activation="relu")
        self.norm_res = InstanceNormAct2d(6, affine=True, activation="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_leaky(self.conv(x))
        h = self.norm_relu(h)
        return self.norm_res(h, residual=h)


class _Encoder(nn.Module):
    """VAE encoder tail as exported: eps is a graph input, z = reparameterize_ref(mu, logvar, eps)."""

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return reparameterize_ref(mu, logvar, eps)


def _export(model: nn.Module, args: tuple, path, **kwargs) -> tuple[ort.InferenceSession, object]:
    program = torch.onnx.export(
        model, args, dynamo=True, custom_translation_table=ganrt.ops.onnx_translation_table(), **kwargs
    )
    program.save(str(path), external_data=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]), program.model_proto


@pytest.mark.filterwarnings(
    # torch's exporter pickles a pytree spec through copyreg, tripping torch's own LeafSpec deprecation.
    "ignore:.*isinstance\\(treespec, LeafSpec\\).*:FutureWarning"
)
def test_instance_norm_act_exports_to_standard_onnx(tmp_path):
    torch.manual_seed(0)
    model = _Block().eval()
    with torch.no_grad():
        model.norm_leaky.weight.normal_()
        model.norm_res.bias.normal_()
    x = torch.randn(1, 3, 12, 10)
    batch = torch.export.Dim("batch", min=1, max=8)
    session, proto = _export(model, (x,), tmp_path / "block.onnx", dynamic_shapes=({0: batch},))
    ops = [node.op_type for node in proto.graph.node]
    assert all(node.domain in ("", "ai.onnx") for node in proto.graph.node), ops
    assert ops.count("InstanceNormalization") == 3 and "LeakyRelu" in ops and "Relu" in ops and "Add" in ops
    assert "ReduceMean" not in ops  # the statistics outputs are unused and pruned
    for n in (1, 3):
        xb = torch.randn(n, 3, 12, 10)
        (y_onnx,) = session.run(None, {session.get_inputs()[0].name: xb.numpy()})
        with torch.no_grad():
            y = model(xb)
        assert_close(torch.from_numpy(y_onnx), y, ONNX, f"ONNX Runtime vs eager, batch {n}")


@pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*:FutureWarning")
def test_reparameterize_exports_with_eps_input(tmp_path):
    mu, logvar = torch.randn(2, 16), torch.randn(2, 16) * 0.3
    eps = standard_normal((2, 16), seed=77, offset=32)
    session, proto = _export(_Encoder().eval(), (mu, logvar, eps), tmp_path / "enc.onnx")
    assert {node.op_type for node in proto.graph.node} <= {"Exp", "Mul", "Add", "Constant"}
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), (mu, logvar, eps))}
    (z_onnx,) = session.run(None, feeds)
    # Feeding the Philox eps of (seed, offset) reproduces the fused sampling op.
    assert_close(torch.from_numpy(z_onnx), reparameterize(mu, logvar, seed=77, offset=32), ONNX, "z")
    assert np.isfinite(z_onnx).all()


class _RawOp(nn.Module):
    """Returns all three outputs of the registered op, so the statistics translation is checked too."""

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.ops.ganrt.instance_norm_act(x, None, None, r, 1e-3, "relu", 0.0)


@pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*:FutureWarning")
def test_statistics_outputs_translate(tmp_path):
    x, r = torch.randn(2, 3, 5, 7) * 2 + 1, torch.randn(2, 3, 5, 7)
    session, _ = _export(_RawOp().eval(), (x, r), tmp_path / "raw.onnx")
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), (x, r))}
    outputs = session.run(None, feeds)
    for name, got, expected in zip(("y", "mean", "rstd"), outputs, _RawOp()(x, r)):
        assert_close(torch.from_numpy(got), expected, ONNX, name)
