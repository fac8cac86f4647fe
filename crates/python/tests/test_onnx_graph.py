"""Whole graphs (issue 24) against onnxruntime: the committed goldens of crates/onnx/tests/golden/graphs
(xtask/oracle/graph_golden.py: torch modules with residual Adds, Concats, Splits, channel shuffles,
squeeze-and-excitation, LayerNorm and GELU, run by onnxruntime with every tensor). `Model.run` matches
them; the files `Model.export` writes, composed in graph order by NumPy alone (blocks from their `.npz`,
junctions and nonlinearities by ONNX semantics from the manifest's `graph`), as a verifier would, too."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import convmat
import convmat.onnx

GRAPHS = Path(__file__).resolve().parents[2] / "onnx" / "tests" / "golden" / "graphs"
LISTING = json.loads((GRAPHS / "graphs.json").read_text())["models"]


def golden(model):
    z = np.load(GRAPHS / f"{model}.npz")
    tensors = {t["name"]: z[t["key"]] for t in LISTING[model]["tensors"]}
    return z["x"], tensors


def rel(got, want):
    return float(np.abs(np.asarray(got, np.float64) - want).max() / np.abs(want).max())


def broadcast_to_batch(v, n, shape):
    return v.reshape(n, *shape)


def maxpool(x, p):
    """ONNX MaxPool on (N, C, *spatial): pads are -inf, windows from the manifest's typed parameters."""
    k, st, dil, pb, out = p["kernel"], p["strides"], p["dilations"], p["pads_begin"], p["output"]
    r = len(k)
    span = [pb[d] + (out[d] - 1) * st[d] + (k[d] - 1) * dil[d] + 1 for d in range(r)]
    pad = [(0, 0), (0, 0)] + [(pb[d], max(0, span[d] - pb[d] - x.shape[2 + d])) for d in range(r)]
    padded = np.pad(x, pad, constant_values=-np.inf)
    y = np.full(x.shape[:2] + tuple(out), -np.inf)
    for taps in np.ndindex(*k):
        idx = tuple(slice(taps[d] * dil[d], taps[d] * dil[d] + st[d] * (out[d] - 1) + 1, st[d]) for d in range(r))
        y = np.maximum(y, padded[(slice(None), slice(None)) + idx])
    return y


def nonlinearity(p, ins):
    from scipy.special import erf

    x = ins[0]
    f = p["nonlinearity"]
    if f == "Relu":
        return np.maximum(x, 0)
    if f == "LeakyRelu":
        return np.where(x >= 0, x, p["alpha"] * x)
    if f == "Clip":
        lo = -np.inf if p["min"] is None else p["min"]
        hi = np.inf if p["max"] is None else p["max"]
        return np.clip(x, lo, hi)
    if f == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if f == "HardSigmoid":
        return np.clip(p["alpha"] * x + p["beta"], 0, 1)
    if f == "HardSwish":
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if f == "Tanh":
        return np.tanh(x)
    if f == "Erf":
        return erf(x)
    if f == "Mul":
        return ins[0] * ins[1]
    if f == "Div":
        return ins[0] / ins[1]
    if f == "MaxPool":
        return maxpool(x, p)
    if f == "Softmax":
        e = np.exp(x - x.max(axis=p["axis"], keepdims=True))
        return e / e.sum(axis=p["axis"], keepdims=True)
    if f == "LayerNorm":
        axes = tuple(range(p["axis"], x.ndim))
        shape = x.shape[p["axis"]:]
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        return (x - mean) / np.sqrt(var + p["epsilon"]) * np.reshape(p["scale"], shape) + np.reshape(p["bias"], shape)
    raise AssertionError(f"the test has no NumPy form for {f}")


def junction(p, ins, shapes, n):
    j = p["junction"]
    x = ins[0]
    if j == "Add":
        return [ins[0] + ins[1]]
    if j == "Sub":
        return [ins[0] - ins[1]]
    if j == "Concat":
        return [np.concatenate(ins, axis=p["axis"])]
    if j == "Split":
        return np.split(x, np.cumsum(p["sizes"])[:-1], axis=p["axis"])
    if j == "Slice":
        idx = [slice(None)] * x.ndim
        for a, b, s, c in zip(p["axes"], p["starts"], p["steps"], p["counts"]):
            stop = b + s * c
            idx[a] = slice(b, stop if stop >= 0 else None, s)
        return [x[tuple(idx)]]
    if j == "Transpose":
        return [np.transpose(x, p["perm"])]
    if j == "Reshape":
        return [x.reshape(n, *shapes[0])]
    raise AssertionError(f"the test has no NumPy form for {j}")


@pytest.mark.parametrize("model", sorted(LISTING))
def test_run_matches_onnxruntime_at_every_tensor(model):
    x, want = golden(model)
    m = convmat.onnx.load(GRAPHS / f"{model}.onnx", input_shape=x.shape[1:])
    y, tensors = m.run(x, trace=True)
    assert y.dtype == np.float32 and y.shape == want["y"].shape
    assert rel(y, want["y"]) <= 1e-5
    shared = [t for t in tensors if t in want]
    assert len(shared) * 3 >= len(want) * 2, (len(shared), len(want))
    for t in shared:
        assert rel(tensors[t], want[t]) <= 1e-5, t
    # float64, one sample
    y1 = m.run(x[1], dtype="float64")
    assert y1.dtype == np.float64 and y1.shape == want["y"].shape[1:]
    assert rel(y1, want["y"][1]) <= 1e-5


@pytest.mark.parametrize("model", sorted(LISTING))
def test_exported_files_composed_by_numpy_reproduce_onnxruntime(model, tmp_path):
    x, want = golden(model)
    m = convmat.onnx.load(GRAPHS / f"{model}.onnx", input_shape=x.shape[1:])
    m.export(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    n = x.shape[0]
    env = {"x": x.astype(np.float64)}
    for node in manifest["graph"]:
        ins = [env[t] for t in node["inputs"]]
        shapes = node["output_shapes"]
        if node["kind"] == "block":
            a = sp.load_npz(tmp_path / node["file"])
            b = np.load(tmp_path / node["file"])["bias"]
            outs = [broadcast_to_batch((ins[0].reshape(n, -1) @ a.T) + b, n, shapes[0])]
        elif node["kind"] == "junction":
            outs = junction(node["params"], ins, shapes, n)
        else:
            outs = [nonlinearity(node["params"], ins)]
        for t, v, s in zip(node["outputs"], outs, shapes):
            assert v.shape == (n, *s), (node["name"], v.shape, s)
            env[t] = v
    assert rel(env["y"], want["y"]) <= 1e-5
    # blocks keep their manifest meaning: one entry per block file
    blocks = [g for g in manifest["graph"] if g["kind"] == "block"]
    assert [b["file"] for b in manifest["blocks"]] == [g["file"] for g in blocks]
    assert [(g.name, g.kind) for g in m.graph] == [(g["name"], g["kind"]) for g in manifest["graph"]]


def test_bad_graph_input_is_one_clear_error():
    m = convmat.onnx.load(GRAPHS / "resnet_basic.onnx", input_shape=(4, 6, 6))
    with pytest.raises(convmat.ConvmatError, match=r"\[3, 6, 6\]"):
        m.run(np.zeros((1, 3, 6, 6)))
    with pytest.raises(convmat.ConvmatError, match="float32, float64"):
        m.run(np.zeros((1, 4, 6, 6)), dtype="float16")
