"""convmat from Python against the committed golden files (tests/golden/cases/*.json).

Each golden file records the case, the oracle that produced the expected values (PyTorch, apytypes,
NumPy) and its version: PyTorch's semantics reach these tests without torch installed.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import convmat

CASES = Path(__file__).resolve().parents[3] / "tests" / "golden" / "cases"


def load(kind):
    out = []
    for path in sorted(CASES.glob("*.json")):
        doc = json.loads(path.read_text())
        if doc["case"]["kind"] == kind:
            out.append(pytest.param(doc, id=path.stem))
    return out


def layer_of(case, expected):
    """A convmat.Conv from a golden case, passing options as PyTorch's constructor takes them."""
    weight = np.array(expected["weight"], dtype=np.float64).reshape(expected.get("weight_shape", -1))
    if "weight_shape" not in expected:
        c_in, c_out, g = case["in_channels"], case["out_channels"], case.get("groups", 1)
        rank = len(case["input"]) - 1
        k = case["kernel_size"]
        k = [k] * rank if isinstance(k, int) else k
        lead = [c_in, c_out // g] if case.get("transposed") else [c_out, c_in // g]
        weight = weight.reshape(lead + list(k))
    padding = case.get("pads", case.get("padding", 0))
    return convmat.Conv(
        weight,
        expected.get("bias"),
        stride=case.get("stride", 1),
        padding=padding,
        dilation=case.get("dilation", 1),
        groups=case.get("groups", 1),
        padding_mode=case.get("padding_mode", "zeros"),
        transposed=case.get("transposed", False),
        output_padding=case.get("output_padding", 0),
    )


def options(layer):
    return dict(
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
        padding_mode=layer.padding_mode,
        transposed=layer.transposed,
        output_padding=layer.output_padding,
    )


@pytest.mark.parametrize("doc", load("conv"))
def test_matrix_and_output_match_pytorch(doc):
    case, e = doc["case"], doc["expected"]
    layer = layer_of(case, e)
    shape = tuple(case["input"])
    assert layer.output_shape(shape) == tuple(e["output_shape"])
    A = convmat.matrix(layer, shape, dtype="float64")
    b = convmat.bias_vector(layer, shape, dtype="float64")
    assert isinstance(A, sp.csr_array) and A.indices.dtype == np.int32 and A.indptr.dtype == np.int32
    if "matrix" in e:
        m = e["matrix"]
        want = sp.csr_array((m["data"], m["indices"], m["indptr"]), shape=tuple(m["shape"])).toarray()
        np.testing.assert_allclose(A.toarray(), want, rtol=0, atol=1e-12)
    x = np.array(e["x"], dtype=np.float64)
    y = np.array(e["y"], dtype=np.float64)
    np.testing.assert_allclose(x @ A.T + b, y, rtol=1e-10, atol=1e-10)
    # the same from the float operator and from apply
    op = convmat.operator(layer, shape)
    np.testing.assert_allclose(op.matmat(x.T).T + b, y, rtol=1e-10, atol=1e-10)
    got = convmat.apply(layer, x.reshape((len(x),) + shape), dtype="float64")
    np.testing.assert_allclose(got.reshape(len(x), -1), y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("doc", load("fixed_conv"))
def test_fixed_point_bit_exact_with_apytypes(doc):
    case, e = doc["case"], doc["expected"]
    layer = layer_of(case, e)
    shape = tuple(case["input"])
    x = np.array(e["x"], dtype=np.float64).reshape((-1,) + shape)
    common = dict(
        dtype=case["input_format"],
        weight_dtype=case["weight_format"],
        rounding=case.get("rounding", "nearest"),
        overflow=case.get("overflow", "saturate"),
        raw=True,
    )
    if "y_raw" in e:
        y = convmat.apply(layer, x, **common)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y.reshape(len(x), -1), np.array(e["y_raw"], dtype=np.int64))
    if "y_out_raw" in e:
        y = convmat.apply(layer, x, out_dtype=case["out_format"], **common)
        np.testing.assert_array_equal(y.reshape(len(x), -1), np.array(e["y_out_raw"], dtype=np.int64))
    if "y_acc_raw" in e:
        y = convmat.apply(layer, x, acc_dtype=case["acc_format"], **common)
        np.testing.assert_array_equal(y.reshape(len(x), -1), np.array(e["y_acc_raw"], dtype=np.int64))
    # the stored-integer matrix is the matrix of apytypes' stored weights
    A = convmat.matrix(layer, shape, dtype=case["weight_format"])
    assert A.dtype == np.int64
    raw = convmat.Conv(np.array(e["w_raw"], dtype=np.float64).reshape(layer.weight.shape), **options(layer))
    np.testing.assert_array_equal(A.toarray(), convmat.matrix(raw, shape, dtype="float64").toarray())


@pytest.mark.parametrize("doc", load("spectrum"))
def test_singular_values_match_numpy(doc):
    case, e = doc["case"], doc["expected"]
    layer = layer_of(case, e)
    shape = tuple(case["input"])
    want = np.array(e["singular_values"])
    s = convmat.singular_values(layer, shape)
    assert s.values.dtype == np.float64 and s.method in ("fft", "dense")
    np.testing.assert_allclose(s.values, want, rtol=0, atol=1e-9 * want[0])
    top = convmat.singular_values(layer, shape, 3, method="lanczos", tol=1e-10)
    np.testing.assert_allclose(top.values, want[:3], rtol=1e-8)
    assert top.method == "lanczos" and top.iterations > 0 and top.residual <= 1e-10
    norm = convmat.spectral_norm(layer, shape)
    assert norm.lower <= want[0] * (1 + 1e-9) and want[0] <= norm.upper * (1 + 1e-9)
    assert norm.value == pytest.approx(want[0], rel=1e-6)


@pytest.mark.parametrize("doc", load("shape_chain"))
def test_shapes_match_pytorch(doc):
    case, e = doc["case"], doc["expected"]
    if "fails_at" in e:
        with pytest.raises(convmat.ConvmatError, match=f"layer {e['fails_at']}"):
            convmat.shapes(case["input"], case["layers"])
        return
    rows = convmat.shapes(case["input"], case["layers"])
    assert [r["output"] for r in rows] == e["outputs"]
    assert [r["params"] for r in rows] == e["params"]
    assert all(r["features"] == int(np.prod(r["output"])) for r in rows)


def test_shapes_of_one_sequential_expression():
    layers = "nn.Sequential(nn.Conv2d(1, 6, 3), nn.MaxPool2d(2), nn.Flatten())"
    assert [r["output"] for r in convmat.shapes((1, 32, 32), layers)] == [[6, 30, 30], [6, 15, 15], [1350]]
