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


if __name__ == "__main__":
    main()
