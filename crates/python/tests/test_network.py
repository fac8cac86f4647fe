"""The whole-network view, `convmat.network_norms` and `convmat.onnx.Model.norms`, against dense SVDs of the
layers' matrices (tests/golden/sequential/norms.json by xtask/oracle/sequential_norms.py from torch and
numpy; crates/onnx/tests/golden/network_norms.json by xtask/oracle/network_norms.py from onnxruntime):
every layer's interval holds its norm, with the keys and names of `convmat svd --json`'s network view."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import convmat
import convmat.onnx

ROOT = Path(__file__).resolve().parents[3]
SEQ = ROOT / "tests" / "golden" / "sequential"
ORACLE = json.loads((SEQ / "norms.json").read_text())
ONNX = ROOT / "crates" / "onnx" / "tests" / "golden"


def brackets(result, expect, rel=1e-9):
    assert [(l.name, l.op, l.rows, l.cols) for l in result.layers] == [
        (e["name"], e["op"], e["rows"], e["cols"]) for e in expect
    ]
    for got, want in zip(result.layers, expect):
        s = want["sigma1"]
        assert got.lower <= s * (1 + rel) and s <= got.upper * (1 + rel), (got.name, s, got.lower, got.upper)
    assert result.product_upper == pytest.approx(math.prod(l.upper for l in result.layers), rel=1e-12)


@pytest.mark.parametrize("form", ["sequential", "list"])
def test_sequential_text_with_a_state_dict(form):
    weights = np.load(SEQ / "weights.npz")
    layers = ORACLE["sequential"] if form == "sequential" else ORACLE["layers_text"]
    r = convmat.network_norms(layers, ORACLE["input_shape"], weights=weights, tol=1e-6)
    brackets(r, ORACLE["layers"])
    assert r.not_one_lipschitz == ["3 (GELU)"]
    assert r.layers[2].activations == ["ReLU", "MaxPool2d"]
    assert r.layers[0].certificate == "interlacing" and r.layers[3].certificate == "exact"
    assert r.layers[0].input_shape == (3, 24, 24) and r.layers[3].output_shape == (10,)
    assert r.largest == max(range(4), key=lambda i: r.layers[i].upper)


def test_onnx_model_norms_match_the_cli_view():
    oracle = json.loads((ONNX / "network_norms.json").read_text())
    for name in ["torch_cnn", "torch_transpose"]:
        r = convmat.onnx.load(ONNX / f"{name}.onnx").norms(tol=1e-6)
        expect = oracle[name]["blocks"]
        assert [l.name for l in r.layers] == [b["name"] for b in expect]
        for got, want in zip(r.layers, expect):
            s = want["sigma1"]  # float32 model outputs: 1e-6 relative
            assert got.lower <= s * (1 + 1e-6) and s * (1 - 1e-6) <= got.upper, (name, got.name)
        assert isinstance(r, convmat.NetworkNorms) and r.not_one_lipschitz == []


def test_bad_input_raises_one_clear_error():
    w = dict(np.load(SEQ / "weights.npz"))
    seq = "Sequential(Conv2d(3, 8, 3, padding=1), ReLU(), Conv2d(8, 8, 3))"
    cases = [
        (dict(layers=seq, input_shape=(3, 24, 24), weights=w, tol=2), "invalid tol 2"),
        (dict(layers=seq, input_shape=(3, 24, 24), weights=w, tol="1e-6"), "invalid tol"),
        (dict(layers=seq, input_shape=(3, 24, 24)), "needs weights="),
        (dict(layers=seq, input_shape=(4, 24, 24), weights=w), "layer 1"),
        (dict(layers="Sequential(Conv2d(3, 8, 3), BatchNorm2d(8))", input_shape=(3, 24, 24), weights=w), "fold"),
        (dict(layers="Sequential(ReLU(), Conv2d(3, 8, 3))", input_shape=(3, 24, 24), weights=w), "'1.weight'"),
        (dict(layers=42, input_shape=(3, 24, 24), weights=w), "torch.nn.Sequential"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(convmat.ConvmatError, match=None) as e:
            convmat.network_norms(kwargs.pop("layers"), kwargs.pop("input_shape"), **kwargs)
        assert fragment in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_torch_sequential_reads_its_modules_and_state_dict():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(*[eval("nn." + t, {"nn": nn}) for t in ORACLE["layers_text"]])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(SEQ / "weights.npz").items()})
    r = convmat.network_norms(net, ORACLE["input_shape"], tol=1e-6)
    brackets(r, ORACLE["layers"])
    assert "padding_mode='reflect'" in r.layers[1].nodes[0]
