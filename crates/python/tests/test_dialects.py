"""Every rounding and overflow dialect through convmat.apply, on documented vectors: the QONNX spec's
rounding table, Vitis HLS's ap_fixed<3,2,.,AP_SAT> examples and hls4ml #68. A 1x1 identity layer makes the
output cast all that acts."""
import numpy as np
import pytest

import convmat

IDENTITY = convmat.Conv(np.ones((1, 1, 1)))


def cast(x, **kw):
    return convmat.apply(IDENTITY, np.array([[x]], dtype=np.float64), **kw)[0, 0].tolist()


# docs/qonnx-custom-ops/quant_op.md: 5.5, 2.5, -2.5, -5.5 under each rounding_mode
@pytest.mark.parametrize(
    "mode, expect",
    [
        ("HALF_DOWN", [5, 2, -2, -5]),
        ("HALF_UP", [6, 3, -3, -6]),
        ("qonnx:ROUND", [6, 2, -2, -6]),
        ("UP", [6, 3, -3, -6]),
        ("DOWN", [5, 2, -2, -5]),
        ("CEIL", [6, 3, -2, -5]),
        ("FLOOR", [5, 2, -3, -6]),
    ],
)
def test_qonnx_rounding_modes(mode, expect):
    got = cast([5.5, 2.5, -2.5, -5.5], dtype="q8.4", out_dtype="int8", rounding=mode, raw=True)
    assert got == expect


@pytest.mark.parametrize(
    "q, expect",
    [("AP_RND", [1.5, -1.0]), ("AP_RND_ZERO", [1.0, -1.0]), ("AP_RND_MIN_INF", [1.0, -1.5]), ("AP_RND_INF", [1.5, -1.5])],
)
def test_vitis_examples(q, expect):
    assert cast([1.25, -1.25], dtype="q4.4", out_dtype=f"ap_fixed<3,2,{q},AP_SAT>") == expect
    assert cast([1.25, -1.25], dtype="q4.4", out_dtype="q2.1", rounding=q, overflow="AP_SAT") == expect


def test_hls4ml_issue_68():
    assert cast([8.99], dtype="q8.8", out_dtype="ap_fixed<10,4>") == [-7.015625]
    assert cast([8.99], dtype="q8.8", out_dtype="ap_fixed<10,4,AP_TRN_ZERO,AP_SAT>") == [7.984375]
    # an ap_fixed input type quantizes with its own AP_TRN, AP_WRAP
    assert cast([8.99], dtype="ap_fixed<10,4>", raw=True) == [-449 * 64]


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(out_dtype="ap_fixed<8,3,AP_RND,AP_SAT>", rounding="floor"), "conflicts"),
        (dict(out_dtype="q4.4", rounding="HALF_SIDEWAYS"), "AP_RND_MIN_INF"),
        (dict(out_dtype="q4.4", overflow="clip"), "AP_WRAP_SM"),
        (dict(out_dtype="ap_fixed<0,0>"), "word length 0"),
        (dict(out_dtype="q4.4", rounding=3), "rounding"),
    ],
)
def test_bad_dialect_input_raises_one_line(kw, match):
    with pytest.raises(convmat.ConvmatError, match=match) as info:
        cast([0.5], dtype="q4.4", **kw)
    assert "\n" not in str(info.value)
