"""Mistakes a newcomer makes get an answer saying what was probably meant (the library's messages,
shared with the command line)."""

import warnings

import numpy as np
import pytest

import convmat


def check(fn, *fragments):
    with pytest.raises(convmat.ConvmatError) as e:
        fn()
    for f in fragments:
        assert f in str(e.value), f"{str(e.value)!r} lacks {f!r}"


def test_input_shape_is_one_sample_with_channels():
    layer = convmat.Conv(np.ones((16, 3, 3, 3)), padding=1)
    for call in (convmat.matrix, convmat.spectral_norm, convmat.estimate):
        check(lambda: call(layer, (32, 32)), "lacks the channel dimension", "(C, *spatial)", "probably [3, 32, 32]")
        check(lambda: call(layer, (1, 3, 32, 32)), "includes the batch dimension", "probably [3, 32, 32]")


def test_a_conv_transpose_weight_without_transposed_gets_the_hint():
    w = np.ones((3, 16, 3, 3))  # ConvTranspose2d(3, 16, 3).weight: (C_in, C_out, kh, kw)
    check(lambda: convmat.matrix(convmat.Conv(w), (3, 8, 8)), "transposed=True")
    assert convmat.matrix(convmat.Conv(w, transposed=True), (3, 8, 8)).shape == (16 * 10 * 10, 3 * 8 * 8)


def test_a_tensorflow_layout_weight_is_an_error_or_a_warning():
    # (kh, kw, C_in, C_out) = (5, 5, 3, 16): PyTorch's reading (5 channels in) cannot take 3 channels
    check(lambda: convmat.matrix(convmat.Conv(np.ones((5, 5, 3, 16))), (3, 6, 6)), "TensorFlow", "transpose(3, 2, 0, 1)")
    # (3, 3, 3, 16): PyTorch's reading Conv2d(3, 3, (3, 16)) is valid on 3x32x32 but implausible
    tf = convmat.Conv(np.ones((3, 3, 3, 16)))
    with pytest.warns(UserWarning, match="TensorFlow"):
        convmat.matrix(tf, (3, 32, 32))
    # the same weight transposed to PyTorch's layout, and an ordinary layer: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convmat.matrix(convmat.Conv(np.ones((3, 3, 3, 16)).transpose(3, 2, 0, 1)), (3, 32, 32))
        convmat.matrix(convmat.Conv(np.ones((16, 3, 3, 3))), (3, 32, 32))


def test_spectral_norm_documents_its_arguments():
    doc = convmat.spectral_norm.__doc__
    for word in ("input_shape : ", "(C, *spatial)", "tol : ", "(upper - lower) / lower <= tol"):
        assert word in doc, word


def test_same_conventions_of_the_peers_are_one_flipped_kernel_plus_padding():
    # README "Conventions": convmat's flip="same" centres as MATLAB (start k // 2 of the full convolution),
    # SciPy's convolve2d "same" at (k - 1) // 2, PyLops' Convolve2D default (offset 0) at 0
    scipy_signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    k, (h, w) = 4, (7, 9)
    kernel = rng.standard_normal((k, k))
    x = rng.standard_normal((h, w))
    full = scipy_signal.convolve2d(x, kernel, "full")

    def conv(**options):
        layer = convmat.Conv(options.pop("weight", kernel[None, None]), **options)
        return convmat.matrix(layer, (1, h, w), format="dense", dtype="float64") @ x.ravel()

    flipped = kernel[::-1, ::-1][None, None].copy()
    for start, got in [
        (k // 2, conv(flip="same")),  # MATLAB conv2(x, kernel, 'same')
        (k // 2, conv(weight=flipped, padding=(k - 1 - k // 2,) * 2 + (k // 2,) * 2)),
        ((k - 1) // 2, conv(weight=flipped, padding=(k - 1 - (k - 1) // 2,) * 2 + ((k - 1) // 2,) * 2)),
        (0, conv(weight=flipped, padding=(k - 1, k - 1, 0, 0))),  # PyLops' causal default
    ]:
        np.testing.assert_allclose(got, full[start:start + h, start:start + w].ravel(), atol=1e-12)
    np.testing.assert_allclose(
        full[(k - 1) // 2:(k - 1) // 2 + h, (k - 1) // 2:(k - 1) // 2 + w], scipy_signal.convolve2d(x, kernel, "same")
    )
