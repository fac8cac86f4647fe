"""Writes the small example files README's examples read, reproducibly (fixed seeds):

- ``examples/x.npy``: an input batch ``(2, 64, 8, 8)`` in [-1, 1), float32, for ``convmat apply``;
- ``examples/conv4x3.npy``: a small ``Conv2d(3, 4, 3)`` weight in [-1, 1), float32, whose matrix is
  small enough to see its structure in README's pictures;
- ``examples/model.safetensors``: the ``state_dict`` of ``Sequential(conv1=Conv2d(3, 16, 3, stride=2,
  padding=1))`` (torch seed 0), for ``convmat build --weights ... --layer conv1``;
- ``examples/cnn.onnx``: README's small CNN (torch seed 0) exported by ``torch.onnx.export``;
- ``examples/range_w.npy``, ``examples/range_b.npy``: an int8-valued ``Conv2d(8, 4, 3)`` weight (channel 3
  all negative) and its bias (channel 1's 30000), float64, for ``convmat range``;
- ``examples/one.npy``, ``examples/pm125.npy``: a ``1x1`` identity weight and the input ``[[[1.25, -1.25]]]``
  for the rounding-dialect example;
- ``examples/qconv.onnx``, ``examples/qconv_x.npy``: a quantized ``QuantizeLinear -> QLinearConv ->
  DequantizeLinear`` model built with onnx.helper (uint8 activations, zero point 128; per-channel int8
  weights; an int32 bias) and a float input batch ``(2, 3, 8, 8)``, for ``convmat range --weights`` and
  ``convmat run`` on quantized models;
- ``examples/resnet_x.npy``: the input batch ``(2, 4, 6, 6)`` of the ResNet basic-block golden
  (``crates/onnx/tests/golden/graphs/resnet_basic.npz``), for ``convmat run``.

The example weight of the spectra and fixed-point examples is ``benches/data/w64_rng0.npy``
(``Conv2d(64, 64, 3)``'s weight, float64, from ``xtask/oracle/lowrank_peer.py``'s seeded generator).

Run from the repository root: ``python examples/make_examples.py`` (needs numpy; torch, onnx and
safetensors for the last two: ``pip install "./crates/python[examples]"``). Recorded with torch
2.15.0, onnx 1.23.2, NumPy 2.4.6.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def cnn():
    """README's small CNN (the ONNX section's), with torch's default initialisation at seed 0."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, padding_mode="reflect"), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10)).eval()


def main() -> None:
    rng = np.random.default_rng(0)
    np.save(HERE / "x.npy", rng.uniform(-1, 1, (2, 64, 8, 8)).astype(np.float32))
    np.save(HERE / "conv4x3.npy", np.random.default_rng(1).uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32))
    w = np.random.default_rng(2).integers(-128, 128, (4, 8, 3, 3)).astype(np.float64)
    w[3] = -(np.abs(w[3]) % 127) - 1
    np.save(HERE / "range_w.npy", w)
    np.save(HERE / "range_b.npy", np.array([0.0, 30000.0, -1000.0, 500.0]))
    np.save(HERE / "one.npy", np.ones((1, 1, 1)))
    np.save(HERE / "pm125.npy", np.array([[[1.25, -1.25]]]))
    golden = HERE.parent / "crates" / "onnx" / "tests" / "golden" / "graphs" / "resnet_basic.npz"
    np.save(HERE / "resnet_x.npy", np.load(golden)["x"])

    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("conv1", torch.nn.Conv2d(3, 16, 3, stride=2, padding=1))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(HERE / "model.safetensors"))

    net = cnn()
    torch.onnx.export(net, torch.randn(1, 1, 28, 28), str(HERE / "cnn.onnx"), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    qconv()


def qconv():
    """A quantized convolution: QuantizeLinear -> QLinearConv (per-channel int8 weights in [-64, 63], an
    int32 bias, padding 1) -> DequantizeLinear, numpy seed 5."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    w = rng.integers(-64, 64, (4, 3, 3, 3)).astype(np.int8)
    arr = lambda name, v, t: numpy_helper.from_array(np.asarray(v, dtype=t), name)
    inits = [arr("x_scale", 0.02, np.float32), arr("x_zp", 128, np.uint8), arr("w", w, np.int8),
             arr("w_scale", [0.01, 0.004, 0.02, 0.008], np.float32), arr("w_zp", [0, 0, 0, 0], np.int8),
             arr("y_scale", 0.05, np.float32), arr("y_zp", 128, np.uint8),
             arr("B", rng.integers(-2000, 2000, 4), np.int32)]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="quant"),
             helper.make_node("QLinearConv", ["xq", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "B"],
                              ["yq"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("DequantizeLinear", ["yq", "y_scale", "y_zp"], ["y"], name="dequant")]
    graph = helper.make_graph(nodes, "qconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "qconv.onnx")
    np.save(HERE / "qconv_x.npy", rng.normal(0, 1, (2, 3, 8, 8)).astype(np.float32))


if __name__ == "__main__":
    main()
