"""Argument validation by property: wrong types, shapes and values raise ConvmatError, never
anything else (no TypeError from the binding, no Rust panic, no crash)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convmat

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(min_value=-3, max_value=2**65), max_size=5),
    st.tuples(st.integers(-2, 5), st.text(max_size=2)),
    st.just(object()),
    st.just({"a": 1}),
    st.just(np.array([["a"]])),
    st.just(np.array([1 + 2j])),
)

small = st.integers(min_value=0, max_value=6)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raises_convmat_error(call):
    try:
        call()
    except convmat.ConvmatError as e:
        msg = str(e)
        assert msg and "\n" not in msg
        assert "internal error" not in msg, msg
        return
    except Exception as e:  # anything but ConvmatError is a failure
        raise AssertionError(f"expected ConvmatError, got {type(e).__name__}: {e}") from e
    raise AssertionError("expected ConvmatError, got a result")


@SETTINGS
@given(weight=junk)
def test_junk_weights(weight):
    raises_convmat_error(lambda: convmat.Conv(weight))


@SETTINGS
@given(name=st.sampled_from(["stride", "padding", "dilation", "groups", "padding_mode", "transposed", "output_padding"]),
       value=junk)
def test_junk_options(name, value):
    def call():
        layer = convmat.Conv(np.ones((2, 2, 3, 3)), **{name: value})
        convmat.matrix(layer, (2, 6, 6))

    try:
        call()
    except convmat.ConvmatError:
        return
    # a few junk values are valid options (padding=1, stride=[2, 1], transposed=True, ...)


@SETTINGS
@given(shape=junk)
def test_junk_input_shapes(shape):
    raises_convmat_error(lambda: convmat.matrix(convmat.Conv(np.ones((2, 2, 3, 3))), shape))


@SETTINGS
@given(
    wshape=st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=6),
    ishape=st.lists(small, min_size=0, max_size=5),
    stride=st.integers(min_value=-1, max_value=4),
    padding=st.integers(min_value=-1, max_value=4),
    dilation=st.integers(min_value=-1, max_value=3),
    groups=st.integers(min_value=-1, max_value=4),
    mode=st.sampled_from(["zeros", "reflect", "replicate", "circular", "bogus"]),
    transposed=st.booleans(),
)
def test_random_layers_build_or_raise_convmat_error(wshape, ishape, stride, padding, dilation, groups, mode, transposed):
    """Every combination either builds a matrix of the announced shape or raises ConvmatError."""

    def call():
        layer = convmat.Conv(
            np.ones(wshape), stride=stride, padding=padding, dilation=dilation, groups=groups,
            padding_mode=mode, transposed=transposed,
        )
        A = convmat.matrix(layer, ishape)
        out = layer.output_shape(ishape)
        assert A.shape == (int(np.prod(out)), int(np.prod(ishape)))
        return A

    try:
        call()
    except convmat.ConvmatError as e:
        assert "\n" not in str(e) and "internal error" not in str(e), str(e)


@SETTINGS
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "format": junk,
            "dtype": st.one_of(junk, st.sampled_from(["q0.0", "q99.99", "uq1.", "float16", "q-1.3"])),
            "affine": junk,
            "rows": st.one_of(junk, st.tuples(st.integers(-5, 2**40), st.integers(-5, 2**40))),
            "drop_zeros": junk,
        },
    )
)
def test_junk_matrix_arguments(kwargs):
    layer = convmat.Conv(np.ones((2, 2, 3, 3)))
    try:
        convmat.matrix(layer, (2, 5, 5), **kwargs)
    except convmat.ConvmatError as e:
        assert "\n" not in str(e) and "internal error" not in str(e), str(e)


@SETTINGS
@given(
    x=st.one_of(junk, st.lists(st.floats(), min_size=1, max_size=4)),
    dtype=st.one_of(st.sampled_from(["float32", "float64", "q1.7", "q3.12", "q70.70"]), junk),
    rounding=st.one_of(st.sampled_from(["nearest", "floor", "bogus"]), junk),
    overflow=st.one_of(st.sampled_from(["saturate", "wrap", "bogus"]), junk),
    acc=st.one_of(st.none(), st.sampled_from(["q4.12", "q1.0", "bogus"])),
)
def test_junk_apply_arguments(x, dtype, rounding, overflow, acc):
    layer = convmat.Conv(np.ones((1, 1, 3)))
    try:
        convmat.apply(layer, x, dtype=dtype, rounding=rounding, overflow=overflow, acc_dtype=acc)
    except convmat.ConvmatError as e:
        assert "\n" not in str(e) and "internal error" not in str(e), str(e)


@SETTINGS
@given(k=junk, tol=junk, method=junk)
def test_junk_spectrum_arguments(k, tol, method):
    layer = convmat.Conv(np.ones((2, 2, 3)))
    try:
        convmat.singular_values(layer, (2, 6), k, tol=tol, method=method)
    except convmat.ConvmatError as e:
        assert "\n" not in str(e) and "internal error" not in str(e), str(e)


@SETTINGS
@given(layers=st.one_of(junk, st.lists(st.text(max_size=20), max_size=3)), shape=st.lists(small, max_size=4))
def test_junk_shape_chains(layers, shape):
    try:
        convmat.shapes(shape, layers)
    except convmat.ConvmatError as e:
        assert "\n" not in str(e), str(e)


@SETTINGS
@given(a=junk, b=junk, n=junk)
def test_junk_cconv(a, b, n):
    try:
        convmat.cconv(a, b, n)
    except convmat.ConvmatError as e:
        assert "\n" not in str(e), str(e)


def test_absurd_sizes_are_refused_not_allocated():
    layer = convmat.Conv(np.ones((64, 64, 3, 3)), padding=1)
    raises_convmat_error(lambda: convmat.matrix(layer, (64, 10**6, 10**6)))
    raises_convmat_error(lambda: convmat.matrix(layer, (64, 2**40, 2**40), format="dense"))
