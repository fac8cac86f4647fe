"""The Python API without torch: a stand-in class with nn.Conv2d's attributes, zero-copy arrays,
the operator, fixed point, errors, docstrings."""

import doctest
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import convmat


class StandInTensor:
    """What convmat reads of a torch tensor that requires grad: detach, cpu, double, numpy."""

    def __init__(self, data, requires_grad=True):
        self.data = np.asarray(data, dtype=np.float32)
        self.requires_grad = requires_grad

    def detach(self):
        return StandInTensor(self.data, requires_grad=False)

    def cpu(self):
        return self

    def double(self):
        return StandInTensor(self.data.astype(np.float64), self.requires_grad)

    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.data


class StandInConv2d:
    """The attributes torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode=...) holds."""

    def __init__(self, padding_mode="zeros", bias=True, seed=0):
        rng = np.random.default_rng(seed)
        self.weight = StandInTensor(rng.standard_normal((4, 3, 3, 3)))
        self.bias = StandInTensor(rng.standard_normal(4)) if bias else None
        self.in_channels, self.out_channels, self.kernel_size = 3, 4, (3, 3)
        self.stride, self.padding, self.dilation, self.groups = (2, 2), (1, 1), (1, 1), 1
        self.padding_mode, self.transposed, self.output_padding = padding_mode, False, (0, 0)


def reference_conv2d(w, b, x, stride, pad, mode="zeros"):
    """The obvious loop (cross-correlation, as PyTorch), for the stand-in's options."""
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode=np_mode)
    c_out, _, kh, kw = w.shape
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    y = np.zeros((c_out, oh, ow))
    for o in range(c_out):
        for i in range(oh):
            for j in range(ow):
                y[o, i, j] = np.sum(w[o] * xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw])
        y[o] += 0 if b is None else b[o]
    return y


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_stand_in_module_is_read_by_duck_typing(mode):
    m = StandInConv2d(mode)
    x = np.random.default_rng(1).standard_normal((3, 7, 6))
    A = convmat.matrix(m, x.shape, dtype="float64")
    b = convmat.bias_vector(m, x.shape, dtype="float64")
    want = reference_conv2d(m.weight.data.astype(np.float64), m.bias.data.astype(np.float64), x, 2, 1, mode)
    np.testing.assert_allclose(A @ x.ravel() + b, want.ravel(), atol=1e-12)
    layer = convmat.Conv.from_torch(m)
    assert repr(layer).startswith("convmat.Conv(Conv2d(3, 4, 3, stride=2, padding=(1, 1)")
    np.testing.assert_allclose(convmat.apply(m, x, dtype="float64"), want, atol=1e-12)


def test_arrays_reach_scipy_without_a_copy():
    layer = convmat.Conv(np.ones((8, 4, 3, 3)), padding=1)
    A = convmat.matrix(layer, (4, 16, 16))
    assert A.indices.dtype == np.int32 and A.indptr.dtype == np.int32 and A.dtype == np.float32
    # SciPy holds the very arrays Rust made: following the views down ends at Rust's buffer, not at
    # an array NumPy allocated (a copy would own its data: base None)
    for arr in (A.data, A.indices, A.indptr):
        base = arr
        while isinstance(base, np.ndarray):
            base = base.base
        assert base is not None
    assert A.has_canonical_format
    csc = convmat.matrix(layer, (4, 16, 16), format="csc")
    assert isinstance(csc, sp.csc_array)
    assert (csc != A).nnz == 0


def test_formats_dtypes_affine_rows_agree():
    rng = np.random.default_rng(2)
    layer = convmat.Conv(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), padding=(1, 0), stride=(1, 2))
    shape = (2, 5, 6)
    dense = convmat.matrix(layer, shape, format="dense", dtype="float64")
    assert dense.dtype == np.float64 and dense.flags.c_contiguous
    np.testing.assert_array_equal(convmat.matrix(layer, shape, dtype="float64").toarray(), dense)
    b = convmat.bias_vector(layer, shape, dtype="float64")
    col = convmat.matrix(layer, shape, dtype="float64", affine="column").toarray()
    np.testing.assert_array_equal(col, np.hstack([dense, b[:, None]]))
    hom = convmat.matrix(layer, shape, dtype="float64", affine="homogeneous", format="dense")
    assert hom.shape == (dense.shape[0] + 1, dense.shape[1] + 1) and hom[-1, -1] == 1
    shard = convmat.matrix(layer, shape, dtype="float64", rows=(3, 10)).toarray()
    np.testing.assert_array_equal(shard, dense[3:10])
    f32 = convmat.matrix(layer, shape)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32.toarray(), dense, rtol=1e-6)


def test_drop_zeros_and_fixed_point_matrix():
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1, 1] = 0.5
    w[0, 0, 0, 0] = 0.25
    layer = convmat.Conv(w, padding=1)
    A = convmat.matrix(layer, (1, 4, 4))
    assert convmat.matrix(layer, (1, 4, 4), drop_zeros=True).nnz < A.nnz
    q = convmat.matrix(layer, (1, 4, 4), dtype="q1.7", drop_zeros=True)
    assert q.dtype == np.int64 and set(q.data.tolist()) == {64, 32}  # 0.5 and 0.25 in Q1.7


def test_operator_agrees_with_matrix_and_adjoint():
    rng = np.random.default_rng(3)
    for transposed in (False, True):
        layer = convmat.Conv(rng.standard_normal((3, 2, 3, 3)), stride=2, padding=1, transposed=transposed)
        shape = (3, 5, 5) if transposed else (2, 6, 6)
        A = convmat.matrix(layer, shape, dtype="float64")
        op = convmat.operator(layer, shape)
        assert op.shape == A.shape
        x, y = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0])
        np.testing.assert_allclose(op @ x, A @ x, atol=1e-12)
        np.testing.assert_allclose(op.rmatvec(y), A.T @ y, atol=1e-12)
        X = rng.standard_normal((A.shape[1], 4))
        np.testing.assert_allclose(op @ X, A @ X, atol=1e-12)
        np.testing.assert_allclose(op.H @ y, A.T @ y, atol=1e-12)


def test_singular_values_of_small_layers_match_numpy_svd():
    rng = np.random.default_rng(4)
    layer = convmat.Conv(rng.standard_normal((3, 2, 3, 3)), padding=1, stride=(2, 1), padding_mode="reflect")
    shape = (2, 6, 5)
    want = np.linalg.svd(convmat.matrix(layer, shape, format="dense", dtype="float64"), compute_uv=False)
    s = convmat.singular_values(layer, shape)
    np.testing.assert_allclose(s.values, want, atol=1e-10 * want[0])
    top = convmat.singular_values(layer, shape, 2, method="lanczos", tol=1e-10)
    np.testing.assert_allclose(top.values, want[:2], rtol=1e-8)
    r = convmat.spectral_norm(layer, shape)
    assert r.lower <= r.value <= r.upper and r.value == pytest.approx(want[0], rel=1e-8)


def test_spectral_norm_bounds_by_lanczos_bracket_the_norm():
    rng = np.random.default_rng(5)
    layer = convmat.Conv(rng.standard_normal((8, 8, 3, 3)), padding=1)
    shape = (8, 40, 40)  # 12800 x 12800: auto takes Lanczos
    r = convmat.spectral_norm(layer, shape)
    assert r.method == "lanczos"
    # the certified interval of zero padding (interlacing with circulants + Kato-Temple)
    assert r.lower <= r.value * (1 + 1e-12) and r.value <= r.upper < np.inf
    assert r.certificate in ("kato-temple", "interlacing")
    op = convmat.operator(layer, shape)
    from scipy.sparse.linalg import svds

    s = svds(op, k=1, return_singular_vectors=False, tol=1e-10)[0]
    assert r.lower <= s * (1 + 1e-6) and s <= r.upper * (1 + 1e-9)


def test_cconv_matches_numpy():
    a, b = [2.0, 1, 2, 1], [1.0, 2, 3, 4]
    np.testing.assert_array_equal(convmat.cconv(a, b, 4), [14, 16, 14, 16])
    np.testing.assert_allclose(convmat.cconv(a, b), np.convolve(a, b))
    n = 9
    want = np.real(np.fft.ifft(np.fft.fft(a, n) * np.fft.fft(b, n)))
    np.testing.assert_allclose(convmat.cconv(a, b, n), want, atol=1e-12)


def unaligned(a):
    """The same float64 values in a buffer at an odd address (as np.frombuffer at an offset, or pickle
    protocol 5 buffers as Dask ships arrays, give them)."""
    raw = bytearray(a.size * 8 + 1)
    out = np.frombuffer(raw, dtype=np.float64, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned
    return out


def test_unaligned_arrays_are_read():
    w = np.arange(2 * 3 * 3 * 3, dtype=np.float64).reshape(2, 3, 3, 3) / 7
    layer = convmat.Conv(unaligned(w), bias=unaligned(np.array([0.5, -1.0])), padding=1)
    want = convmat.Conv(w, bias=[0.5, -1.0], padding=1)
    assert (convmat.matrix(layer, (3, 5, 5)) != convmat.matrix(want, (3, 5, 5))).nnz == 0
    x = np.linspace(-1, 1, 75).reshape(3, 5, 5)
    np.testing.assert_array_equal(convmat.apply(layer, unaligned(x)), convmat.apply(want, x))
    op = convmat.operator(want, (3, 5, 5))
    np.testing.assert_array_equal(op @ unaligned(x.ravel()), op @ x.ravel())


def test_gil_is_released_during_builds():
    layer = convmat.Conv(np.ones((32, 32, 3, 3)), padding=1)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=tick)
    t.start()
    for _ in range(3):
        convmat.matrix(layer, (32, 48, 48))
    done.set()
    t.join()
    assert len(ticks) > 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: convmat.Conv(np.ones((2, 3))), "weight shape"),
        (lambda: convmat.Conv(np.ones((4, 3, 3, 3)), groups=3), "groups"),
        (lambda: convmat.matrix(convmat.Conv(np.ones((4, 3, 5, 5))), (3, 3, 3)), "kernel|input"),
        (lambda: convmat.matrix(convmat.Conv(np.ones((4, 3, 3, 3))), (2, 8, 8)), "channels"),
        (lambda: convmat.matrix(convmat.Conv(np.full((1, 1, 3), np.nan)), (1, 5)), "nan|NaN|finite"),
        (lambda: convmat.matrix(object(), (1, 5)), "not a convolution"),
        (lambda: convmat.Conv(np.ones((1, 1, 3)), padding="bogus"), "padding"),
        (lambda: convmat.Conv(np.ones((1, 1, 3)), padding_mode="mirror"), "mirror"),
        (lambda: convmat.matrix(convmat.Conv(np.ones((1, 1, 3))), (1, 5), format="coo"), "format"),
        (lambda: convmat.matrix(convmat.Conv(np.ones((1, 1, 3))), (1, 5), dtype="float16"), "dtype"),
        (lambda: convmat.matrix(convmat.Conv(np.ones((1, 1, 3))), (1, 5), rows=(2, 1)), "rows"),
        (lambda: convmat.singular_values(convmat.Conv(np.ones((1, 1, 3))), (1, 5), 9), "singular values"),
        (lambda: convmat.apply(convmat.Conv(np.ones((1, 1, 3))), np.ones((2, 2, 2, 5))), "shape"),
    ],
)
def test_bad_input_raises_one_clear_line(call, match):
    with pytest.raises(convmat.ConvmatError, match=match) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value) and len(str(info.value)) > 10


def test_docstrings_teach_and_run():
    assert "input_shape" in convmat.matrix.__doc__ and "Examples" in convmat.matrix.__doc__
    failures, tried = doctest.testmod(convmat, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 10 and failures == 0
