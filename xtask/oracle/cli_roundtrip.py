"""Round trip through the files `convmat build` writes: SciPy / NumPy load them and they must reproduce
PyTorch's layer output. Run by `cargo xtask golden` after the build; needs torch, numpy, scipy, safetensors.

usage: cli_roundtrip.py PATH/TO/convmat
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy.io
import scipy.sparse
import torch
from safetensors.torch import save_file

CONVMAT = sys.argv[1]


def run(*args):
    r = subprocess.run([CONVMAT, *args], capture_output=True, text=True)
    assert r.returncode == 0, (args, r.stderr)


def main():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    checks = 0
    with tempfile.TemporaryDirectory() as d:
        p = lambda n: os.path.join(d, n)  # noqa: E731
        layers = {
            "conv1": torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
            "circ": torch.nn.Conv2d(2, 3, 5, padding=2, padding_mode="circular"),
            "refl": torch.nn.Conv1d(2, 4, 3, dilation=2, padding=2, padding_mode="reflect"),
            "up": torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
            "grp": torch.nn.Conv3d(4, 4, 2, groups=2, bias=False),
        }
        shapes = {"conv1": (3, 9, 10), "circ": (2, 6, 6), "refl": (2, 11), "up": (4, 3, 4), "grp": (4, 3, 3, 4)}
        flags = {
            "conv1": ["--stride", "2", "--padding", "1"],
            "circ": ["--padding", "2", "--padding-mode", "circular"],
            "refl": ["--dilation", "2", "--padding", "2", "--padding-mode", "reflect"],
            "up": ["--transposed", "--stride", "2", "--padding", "1", "--output-padding", "1"],
            "grp": ["--groups", "2"],
        }
        save_file({f"{k}.{n}": t.detach().contiguous() for k, m in layers.items() for n, t in m.named_parameters()},
                  p("model.safetensors"))
        for name, layer in layers.items():
            shape = shapes[name]
            x = torch.from_numpy(rng.standard_normal((1, *shape))).float()
            with torch.no_grad():
                y = layer(x).numpy().ravel().astype(np.float64)
            xs = x.numpy().ravel().astype(np.float64)
            common = ["--weights", p("model.safetensors"), "--layer", name, "--input-shape", ",".join(map(str, shape)),
                      *flags[name], "--quiet"]
            # sparse CSR + expanded bias, SciPy's load_npz
            run("build", *common, "-o", p(f"{name}.npz"))
            a = scipy.sparse.load_npz(p(f"{name}.npz"))
            b = np.load(p(f"{name}.npz")).get("bias", 0.0)
            got = a @ xs + b
            assert np.allclose(got, y, atol=1e-4, rtol=1e-4), (name, "npz", np.abs(got - y).max())
            # CSC, affine column
            run("build", *common, "--format", "csc", "--affine", "-o", p(f"{name}_aff.npz"))
            a = scipy.sparse.load_npz(p(f"{name}_aff.npz"))
            assert a.format == "csc"
            got = a @ np.append(xs, 1.0)
            assert np.allclose(got, y, atol=1e-4, rtol=1e-4), (name, "affine csc", np.abs(got - y).max())
            # dense .npy, f64
            run("build", *common, "--dtype", "f64", "-o", p(f"{name}.npy"))
            a = np.load(p(f"{name}.npy"))
            got = a @ xs + (np.load(p(f"{name}.npz")).get("bias", 0.0))
            assert np.allclose(got, y, atol=1e-4, rtol=1e-4), (name, "npy", np.abs(got - y).max())
            # Matrix Market
            run("build", *common, "--affine", "-o", p(f"{name}.mtx"))
            a = scipy.io.mmread(p(f"{name}.mtx")).tocsr()
            got = a @ np.append(xs, 1.0)
            assert np.allclose(got, y, atol=1e-4, rtol=1e-4), (name, "mtx", np.abs(got - y).max())
            checks += 4
    print(f"cli_roundtrip.py: {checks} files written by convmat build reproduce PyTorch (scipy {scipy.__version__}, torch {torch.__version__.split('+')[0]})")


if __name__ == "__main__":
    main()
