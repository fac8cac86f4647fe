"""Oracle for `convmat svd --layer "Sequential(...)" --weights STATE_DICT` and `convmat.network_norms` (the
whole-network view of a PyTorch chain): each Conv / Linear layer's spectral norm from its dense matrix, built
by torch (the layer without its bias applied to the identity basis, float64) and numpy's SVD. Independent of
convmat.

Writes tests/golden/sequential/: weights.safetensors and weights.npz (the chain's state_dict, float32, torch's
names `0.weight`, `0.bias`, ...) and norms.json (the chain as text, the input shape, per affine layer its
name, op, rows, cols and sigma1, and the product). Run from the repository root:
    /work/venv/bin/python xtask/oracle/sequential_norms.py
"""

import json
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

OUT = os.path.join("tests", "golden", "sequential")
INPUT = (3, 24, 24)
# zero padding above the dense limit (certified matrix-free), reflect padding (no embedding: the norm
# inequality), a GELU (not 1-Lipschitz), a strided layer, a non-overlapping pool, and a Linear after Flatten
CHAIN = [
    "Conv2d(3, 8, 3, padding=1)",
    "ReLU()",
    "Conv2d(8, 8, 3, padding=1, padding_mode='reflect')",
    "GELU()",
    "Conv2d(8, 16, 3, stride=2)",
    "ReLU()",
    "MaxPool2d(2)",
    "Flatten()",
    "Linear(400, 10)",
]


def main():
    torch.manual_seed(18)
    net = nn.Sequential(*[eval("nn." + t) for t in CHAIN]).double().eval()
    # weights as stored (float32), the oracle's matrices from exactly those values
    state = {k: v.float().contiguous() for k, v in net.state_dict().items()}
    net.load_state_dict({k: v.double() for k, v in state.items()})
    os.makedirs(OUT, exist_ok=True)
    save_file(state, os.path.join(OUT, "weights.safetensors"))
    np.savez(os.path.join(OUT, "weights.npz"), **{k: v.numpy() for k, v in state.items()})
    layers, shape = [], INPUT
    with torch.no_grad():
        for i, m in enumerate(net):
            out_shape = tuple(m(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:])
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                n = int(np.prod(shape))
                basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
                cols = m(basis) - m(torch.zeros(1, *shape, dtype=torch.float64))  # the bias removed
                a = cols.reshape(n, -1).T.numpy()
                layers.append({"name": str(i), "op": type(m).__name__, "rows": a.shape[0], "cols": a.shape[1],
                               "sigma1": float(np.linalg.svd(a, compute_uv=False)[0])})
            shape = out_shape
    out = {"layers_text": CHAIN, "sequential": "Sequential(" + ", ".join(CHAIN) + ")", "input_shape": list(INPUT),
           "layers": layers, "product": float(np.prod([l["sigma1"] for l in layers]))}
    with open(os.path.join(OUT, "norms.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
