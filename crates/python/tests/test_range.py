"""convmat.accumulator_range against a NumPy brute force written here (every vertex of the input box
through a direct convolution over an explicitly padded input), its witnesses through convmat.apply,
its docstring, and bad arguments."""

import doctest
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convmat
import convmat.range

MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv2d(x, w, stride, pad, mode, groups):
    """PyTorch's Conv2d (no bias) on one sample, by loops over np.pad's padded input."""
    xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad)], mode=MODES[mode])
    cout, cin_g, kh, kw = w.shape
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    y = np.zeros((cout, oh, ow), dtype=np.int64)
    for co in range(cout):
        g = co // (cout // groups)
        for i in range(oh):
            for j in range(ow):
                patch = xp[g * cin_g:(g + 1) * cin_g, i * stride:i * stride + kh, j * stride:j * stride + kw]
                y[co, i, j] = int((patch.astype(np.int64) * w[co].astype(np.int64)).sum())
    return y


def brute(w, bias, shape, stride, pad, mode, groups, lo, hi, xzp, wzp):
    n = int(np.prod(shape))
    best_min = best_max = None
    for bits in itertools.product([lo - xzp, hi - xzp], repeat=n):
        y = conv2d(np.array(bits).reshape(shape), w - wzp, stride, pad, mode, groups) + bias[:, None, None]
        lo_c, hi_c = y.reshape(len(bias), -1).min(axis=1), y.reshape(len(bias), -1).max(axis=1)
        best_min = lo_c if best_min is None else np.minimum(best_min, lo_c)
        best_max = hi_c if best_max is None else np.maximum(best_max, hi_c)
    return best_min, best_max


@pytest.mark.parametrize(
    "mode,stride,pad,groups,dtype,box,xzp,wzp",
    [
        ("zeros", 1, 1, 1, "q8.0", None, 0, 0),
        ("reflect", 2, 1, 2, "q4.0", (-3, 5), 1, 0),
        ("replicate", 1, 2, 1, "uq8.0", None, 128, 2),
        ("circular", 1, 1, 2, "uq3.0", (1, 6), 0, -1),
    ],
)
def test_equals_vertex_brute_force(mode, stride, pad, groups, dtype, box, xzp, wzp):
    rng = np.random.default_rng(7)
    shape = (2, 2, 3)  # 12 inputs: 4096 vertices
    w = rng.integers(-7, 8, size=(4, 2 // groups, 2, 2)).astype(np.float64)
    bias = rng.integers(-50, 51, size=4).astype(np.float64)
    layer = convmat.Conv(w, bias, stride=stride, padding=pad, padding_mode=mode, groups=groups)
    r = convmat.accumulator_range(
        layer, shape, input_dtype=dtype, input_range=box, weight_dtype="q4.0", input_zero_point=xzp,
        weight_zero_point=wzp,
    )
    lo, hi = r.input_bounds
    if box is None:
        signed = not dtype.startswith("u")
        word = int(dtype.lstrip("uq").split(".")[0])
        assert (lo, hi) == ((-(2 ** (word - 1)), 2 ** (word - 1) - 1) if signed else (0, 2**word - 1))
    else:
        assert (lo, hi) == box
    want_min, want_max = brute(w.astype(np.int64), bias.astype(np.int64), shape, stride, pad, mode, groups, lo, hi,
                               xzp, wzp)
    np.testing.assert_array_equal(r.min, want_min)
    np.testing.assert_array_equal(r.max, want_max)
    assert r.min.dtype == np.int64 and r.bits.shape == (4,) and r.at_border.dtype == bool
    assert r.bits_layer == r.bits.max() <= r.datatype_bits
    for c in range(4):
        for which, value in (("min", r.min[c]), ("max", r.max[c])):
            x = r.witness(c, which)
            assert x.shape == shape and x.dtype == np.int64
            assert ((lo <= x) & (x <= hi)).all()
            y = conv2d(x - xzp, w.astype(np.int64) - wzp, stride, pad, mode, groups) + bias.astype(np.int64)[:, None, None]
            assert y.reshape(-1)[r.witness_output(c, which)] == value


def test_witness_through_apply_and_bounds():
    # int8 weights and inputs, no padding and no bias: the extremum is FINN's (every row is the whole kernel)
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(3, 4, 3, 3)).astype(np.float64)
    layer = convmat.Conv(w)
    r = convmat.accumulator_range(layer, (4, 6, 6), input_dtype="q8.0")
    wi = w.reshape(3, -1).astype(np.int64)
    np.testing.assert_array_equal(r.max, np.maximum(wi * -128, wi * 127).sum(axis=1))
    np.testing.assert_array_equal(r.min, np.minimum(wi * -128, wi * 127).sum(axis=1))
    assert not r.at_border.any()
    assert r.datatype_bits == 8 + 8 + 6  # ceil(log2 36)
    np.testing.assert_array_equal(r.l1_norm, np.abs(wi).sum(axis=1))
    for c in range(3):
        y = convmat.apply(layer, r.witness(c, "max"), dtype="q8.0", raw=True)
        assert y.reshape(-1)[r.witness_output(c, "max")] == r.max[c]
    assert "bits_layer" in repr(r)


def test_docstring_runs():
    failures, _ = doctest.testmod(convmat.range, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(input_dtype="int7x"), "invalid input_dtype 'int7x'"),
        (dict(input_dtype="q8.0", input_range=(2, 1)), "input range 2,1 is empty"),
        (dict(input_dtype="q8.0", input_range=(0,)), "invalid input_range"),
        (dict(input_dtype="q8.0", input_zero_point=200), "input zero point 200 is outside q8.0"),
        (dict(input_dtype="q8.0", weight_zero_point=1.5), "invalid weight_zero_point"),
        (dict(input_dtype=8), "invalid input_dtype 8"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    layer = convmat.Conv(np.array([[[1.0, -1.0]]]))
    with pytest.raises(convmat.ConvmatError, match=fragment.replace("(", r"\(")):
        convmat.accumulator_range(layer, (1, 4), **kwargs)


def test_bad_witness_channel():
    r = convmat.accumulator_range(convmat.Conv(np.array([[[1.0, -1.0]]])), (1, 4), input_dtype="q8.0")
    with pytest.raises(convmat.ConvmatError, match="channel 3 is out of range"):
        r.witness(3)
    with pytest.raises(convmat.ConvmatError, match="invalid extremum 'mid'"):
        r.witness(0, "mid")


junk = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
                 st.lists(st.integers(-5, 5), max_size=3))


@settings(max_examples=60, deadline=None)
@given(dtype=junk, box=junk, zp=junk)
def test_junk_arguments_raise_convmat_error_only(dtype, box, zp):
    layer = convmat.Conv(np.array([[[1.0, -1.0]]]))
    try:
        r = convmat.accumulator_range(layer, (1, 4), input_dtype=dtype, input_range=box, input_zero_point=zp)
    except convmat.ConvmatError as e:
        assert "\n" not in str(e)
    else:
        assert r.min[0] <= r.max[0]
