"""Oracle for the graph Lipschitz bound (`graph_upper` of `convmat svd --weights MODEL.onnx`, issue 24 §4).

The Lipschitz constant of a network in the 2-norm is at least the spectral norm of its Jacobian at any point,
so every `graph_upper` must be >= the largest ||J(x)||_2 found here. For each golden graph of
crates/onnx/tests/golden/graphs (the torch modules of xtask/oracle/graph_golden.py, rebuilt with the same
seeds and checked against the committed onnxruntime output), the Jacobian of one sample is computed by
torch.autograd in float64 at the golden input and at 16 random points (standard normal, scales 0.1..10),
and its norm by numpy's dense SVD. Writes crates/onnx/tests/golden/graphs/lipschitz.json:
{"models": {name: {"jacobian_norm": max over points, "points": count}}, versions}. Run from the root:
    /work/venv/bin/python xtask/oracle/graph_lipschitz.py
"""

import json
import os
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(__file__))
import graph_golden  # noqa: E402

GOLDEN = "crates/onnx/tests/golden/graphs"


def main():
    out = {}
    for k, (name, module, shape) in enumerate(graph_golden.models()):
        if isinstance(module, onnx.ModelProto):
            continue
        # graph_golden.main's seeding, in the same order
        torch.manual_seed(100 + k)
        for p in module.parameters():
            p.data.copy_(torch.randn(p.shape) * 0.4)
        m = graph_golden.randomise(module, 200 + k).double()
        data = np.load(os.path.join(GOLDEN, f"{name}.npz"))
        x = torch.from_numpy(data["x"].astype(np.float64))
        with torch.no_grad():
            y = m(x).numpy()
        tensors = json.load(open(os.path.join(GOLDEN, "graphs.json")))["models"][name]["tensors"]
        key = next(t["key"] for t in tensors if t["name"] == "y")
        assert np.allclose(y, data[key], rtol=1e-4, atol=1e-5), (name, np.abs(y - data[key]).max())
        rng = np.random.default_rng(7)
        points = [x[0], x[1]] + [torch.from_numpy(rng.standard_normal(shape) * s) for s in np.geomspace(0.1, 10, 16)]
        best = 0.0
        for p in points:
            j = torch.autograd.functional.jacobian(lambda v: m(v[None])[0], p)
            j = j.reshape(int(np.prod(j.shape[: len(j.shape) - len(shape)])), -1).numpy()
            best = max(best, float(np.linalg.svd(j, compute_uv=False)[0]))
        out[name] = {"jacobian_norm": best, "points": len(points)}
        print(f"{name}: max ||J(x)|| = {best:.6g} over {len(points)} points")
    with open(os.path.join(GOLDEN, "lipschitz.json"), "w") as f:
        json.dump({"generator": "xtask/oracle/graph_lipschitz.py", "torch": torch.__version__,
                   "numpy": np.__version__, "models": out}, f, indent=1)


if __name__ == "__main__":
    main()
