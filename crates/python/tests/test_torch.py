"""Against real PyTorch modules: skipped where torch is not importable (CI never installs it).

Run with a Python that has torch, e.g. `python -m pytest crates/python/tests/test_torch.py` after
`pip install ./crates/python`.
"""

import numpy as np
import pytest

import convmat

torch = pytest.importorskip("torch")


def random_module(rng):
    rank = int(rng.integers(1, 4))
    transposed = bool(rng.integers(0, 2))
    g = int(rng.choice([1, 1, 2, 3]))
    c_in, c_out = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, rank))
    stride = tuple(int(v) for v in rng.integers(1, 3, rank))
    dilation = tuple(int(v) for v in rng.integers(1, 3, rank))
    bias = bool(rng.integers(0, 2))
    size = tuple(int(v) for v in rng.integers(5, 8 if rank == 3 else 10, rank))
    if transposed:
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        padding = tuple(int(v) for v in rng.integers(0, 2, rank))
        cls = [torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d][rank - 1]
        m = cls(c_in, c_out, k, stride=stride, padding=padding, output_padding=output_padding, groups=g,
                bias=bias, dilation=dilation)
    else:
        mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"]))
        choice = int(rng.integers(0, 3))
        if choice == 0:
            padding = "same"
            stride = 1
        elif choice == 1:
            padding = "valid"
        else:
            padding = tuple(int(v) for v in rng.integers(0, 3, rank))
        if mode == "reflect" and padding not in ("valid",):
            # reflect needs padding < input size; sizes are >= 5 and padding <= 2 * dilation
            pass
        cls = [torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d][rank - 1]
        m = cls(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=g, bias=bias,
                padding_mode=mode)
    return m, (c_in,) + size


def test_random_modules_over_every_option():
    rng = np.random.default_rng(14)
    checked = 0
    for _ in range(300):
        m, shape = random_module(rng)
        x = torch.randn((1,) + shape, dtype=torch.float64)
        try:
            want = m.double()(x).detach().numpy().ravel()
        except RuntimeError:
            # PyTorch refuses this one (output empty, padding too large for reflect, ...): so must we
            with pytest.raises(convmat.ConvmatError):
                convmat.matrix(m, shape)
            continue
        A = convmat.matrix(m, shape, dtype="float64")
        b = convmat.bias_vector(m, shape, dtype="float64")
        np.testing.assert_allclose(A @ x.numpy().ravel() + b, want, atol=1e-10, err_msg=repr(m))
        op = convmat.operator(m, shape)
        np.testing.assert_allclose(op @ x.numpy().ravel() + b, want, atol=1e-10, err_msg=repr(m))
        checked += 1
    assert checked > 150


def test_issue_example_float32_module_with_grad():
    conv = torch.nn.Conv2d(3, 16, 3, stride=2, padding=1)
    assert conv.weight.requires_grad
    x = torch.randn(3, 32, 32)
    A = convmat.matrix(conv, (3, 32, 32))
    b = convmat.bias_vector(conv, (3, 32, 32))
    assert abs(A @ x.numpy().ravel() + b - conv(x[None]).detach().numpy().ravel()).max() < 1e-5
    layer = convmat.Conv(conv.weight, conv.bias, stride=2, padding=1)  # tensors that require grad
    assert (convmat.matrix(layer, (3, 32, 32)) != A).nnz == 0


def test_apply_matches_module_in_float():
    m = torch.nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, padding_mode="circular")
    x = torch.randn(5, 4, 9, 8)
    np.testing.assert_allclose(convmat.apply(m, x), m(x).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(convmat.apply(m, x[0]), m(x[:1]).detach().numpy()[0], atol=1e-5)


def test_singular_values_match_numpy_svd():
    for m, shape in [
        (torch.nn.Conv2d(3, 4, 3, padding=1), (3, 6, 7)),
        (torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (3, 4, 4)),
        (torch.nn.Conv1d(2, 3, 4, stride=2, padding=1, padding_mode="reflect"), (2, 11)),
    ]:
        A = convmat.matrix(m, shape, format="dense", dtype="float64")
        want = np.linalg.svd(A, compute_uv=False)
        s = convmat.singular_values(m, shape)
        np.testing.assert_allclose(s.values, want, atol=1e-10 * want[0])
        top = convmat.singular_values(m, shape, 2, method="lanczos", tol=1e-10)
        np.testing.assert_allclose(top.values, want[:2], rtol=1e-8)


def test_modules_that_are_not_convolutions_are_refused():
    for m in [torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]:
        with pytest.raises(convmat.ConvmatError, match="not a convolution"):
            convmat.matrix(m, (3, 8, 8))
    with pytest.raises(convmat.ConvmatError, match="uninitialized|Lazy"):
        convmat.matrix(torch.nn.LazyConv2d(4, 3), (3, 8, 8))


def test_fixed_point_is_the_exact_integer_convolution():
    """Stored integers out equal torch's convolution of the stored integers (exact in float64)."""
    rng = np.random.default_rng(7)
    m = torch.nn.Conv2d(2, 3, 3, padding=1, stride=2, bias=False, dtype=torch.float64)
    x = rng.uniform(-1.2, 1.2, (4, 2, 9, 8))
    y = convmat.apply(m, x, dtype="q1.7", raw=True)

    def q17(v):  # MATLAB fi(v, 1, 8, 7): nearest (ties toward +inf), saturate
        return np.clip(np.floor(v * 128 + 0.5), -128, 127)

    w = q17(m.weight.detach().numpy())
    want = torch.nn.functional.conv2d(torch.from_numpy(q17(x)), torch.from_numpy(w), padding=1, stride=2)
    np.testing.assert_array_equal(y, want.numpy().astype(np.int64))
