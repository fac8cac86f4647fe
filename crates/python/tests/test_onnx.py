"""convmat.onnx against the committed ONNX goldens (crates/onnx/tests/golden, written by
xtask/oracle/onnx_golden.py from onnxruntime, cross-checked by torch and onnx.reference): every model's
affine blocks, composed with the nonlinearities between them, reproduce the model's outputs. Then the
export, the listing, bad input, and (where torch and onnxruntime are importable) freshly exported
PyTorch models."""

import doctest
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import convmat
import convmat.onnx

GOLDEN = Path(__file__).resolve().parents[2] / "onnx" / "tests" / "golden"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CASES = json.loads((GOLDEN / "cases.json").read_text())["cases"]


def maxpool(x, act):
    """A 2-d or 1-d MaxPool by the test's own hand (pads are -inf, as ONNX and torch pad)."""
    s, o, p = act.input_shape, act.output_shape, act.params
    k = p["kernel_shape"]
    r = len(k)
    st = p.get("strides", k)
    dil = p.get("dilations", [1] * r)
    pads = p.get("pads", [0] * 2 * r)
    x = x.reshape(s)
    padded = np.pad(x, [(0, 0)] + [(pads[d], pads[r + d] + st[d] * o[1 + d]) for d in range(r)],
                    constant_values=-np.inf)
    y = np.full(o, -np.inf)
    for taps in np.ndindex(*k):
        idx = tuple(slice(taps[d] * dil[d], taps[d] * dil[d] + st[d] * o[1 + d], st[d]) for d in range(r))
        y = np.maximum(y, padded[(slice(None),) + idx])
    return y.ravel()


def activate(act, v):
    if act.op == "Relu":
        return np.maximum(v, 0)
    if act.op == "Tanh":
        return np.tanh(v)
    if act.op == "MaxPool":
        return maxpool(v, act)
    raise AssertionError(f"the test has no {act.op}")


def run(layers, x):
    v = np.asarray(x, dtype=np.float64).ravel()
    for layer in layers:
        assert layer.matrix.shape == (layer.bias.size, int(np.prod(layer.input_shape)))
        v = layer.matrix @ v + layer.bias
        for act in layer.activations:
            v = activate(act, v)
    return v


def close(got, want):
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= 2e-5 * scale


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_blocks_composed_reproduce_the_golden_model(case):
    model = convmat.onnx.load(GOLDEN / case["file"])
    layers = model.affine_layers()
    assert layers and layers[0].input_shape == tuple(case["input_shape"])
    assert layers[-1].output_shape == tuple(case["output_shape"]) or case["output_shape"] == [
        int(np.prod(layers[-1].output_shape))
    ]
    for layer in layers:
        assert isinstance(layer.matrix, sp.csr_array) and layer.matrix.indices.dtype == np.int32
        assert layer.bias.dtype == np.float64 and layer.matrix.dtype == np.float64
        assert layer.activation == (layer.activations[0].op if layer.activations else None)
        assert layer.name in layer.nodes
    for x, y in zip(case["inputs"], case["outputs"]):
        close(run(layers, x), y)


@pytest.mark.parametrize("fmt", ["csc", "dense"])
def test_every_format_is_the_same_matrix(fmt):
    model = convmat.onnx.load(GOLDEN / "torch_cnn.onnx")
    for a, b in zip(model.affine_layers(), model.affine_layers(format=fmt)):
        if fmt == "dense":
            assert isinstance(b.matrix, np.ndarray) and b.matrix.dtype == np.float64
        else:
            assert isinstance(b.matrix, sp.csc_array) and b.matrix.has_sorted_indices
        assert np.array_equal(a.matrix.toarray(), b.matrix if fmt == "dense" else b.matrix.toarray())
        assert np.array_equal(a.bias, b.bias)


@pytest.mark.parametrize("name", ["torch_cnn", "gemm_batchnorm"])
def test_batchnorm_unfolded_gives_more_blocks_and_the_same_outputs(name):
    case = next(c for c in CASES if c["name"] == name)
    model = convmat.onnx.load(GOLDEN / case["file"])
    folded, unfolded = model.affine_layers(), model.affine_layers(fold_batchnorm=False)
    assert len(unfolded) > len(folded)
    assert any(layer.op == "BatchNormalization" for layer in unfolded)
    close(run(unfolded, case["inputs"][0]), case["outputs"][0])


def test_nodes_list_the_graph_as_convmat_onnx_json():
    model = convmat.onnx.load(GOLDEN / "torch_cnn.onnx")
    assert [i.shape for i in model.inputs] == [(1, 12, 12)]
    assert model.inputs[0].declared[0] == "batch"
    by_name = {n.name: n for n in model.nodes}
    conv = by_name["/conv1/Conv"]
    assert (conv.op, conv.input_shape, conv.output_shape, conv.affine) == ("Conv", (1, 12, 12), (4, 12, 12), True)
    assert conv.params["expression"] == "Conv2d(1, 4, 3, padding=(1, 1))" and conv.params["weight_shape"] == [4, 1, 3, 3]
    assert by_name["/conv2/Pad"].params["folded_into"] == "/conv2/Conv"
    assert not by_name["/Relu"].affine and by_name["/Relu"].params["role"] == "nonlinearity"
    assert {n.params["role"] for n in model.nodes} == {"affine", "identity", "nonlinearity", "constant"}
    # the records are the JSON's: dicts again by _asdict
    assert set(conv._asdict()) == {"name", "op", "input_shape", "output_shape", "params", "affine"}


def test_each_conv_node_output_shape_is_the_golden():
    for case in CASES:
        if case["node"] is None:
            continue
        model = convmat.onnx.load(GOLDEN / case["file"])
        node = next(n for n in model.nodes if n.name == case["node"])
        assert node.output_shape == tuple(case["output_shape"]), case["name"]


NODE_CASES = [c for c in CASES if c["node"] is not None]


@pytest.mark.parametrize("case", NODE_CASES, ids=[c["name"] for c in NODE_CASES])
def test_each_conv_node_alone_is_its_model(case):
    """A single-node model's node as convmat.Conv: convmat.matrix gives the model's outputs."""
    model = convmat.onnx.load(GOLDEN / case["file"])
    if case["name"] == "avgpool_exclude_pad_ceil":
        with pytest.raises(convmat.ConvmatError, match="divide by fewer taps"):
            model.conv_layer(case["node"])
        return
    layer, shape = model.conv_layer(case["node"])
    assert isinstance(layer, convmat.Conv) and shape == tuple(case["input_shape"])
    assert layer.output_shape(shape) == tuple(case["output_shape"])
    a = convmat.matrix(layer, shape, dtype="float64")
    b = convmat.bias_vector(layer, shape, dtype="float64")
    for x, y in zip(case["inputs"], case["outputs"]):
        close(a @ np.asarray(x) + b, y)
        close(convmat.apply(layer, np.asarray(x).reshape(shape), dtype="float64").ravel(), y)


def test_conv_layer_refuses_what_is_not_a_convolution():
    model = convmat.onnx.load(GOLDEN / "torch_cnn.onnx")
    with pytest.raises(convmat.ConvmatError, match="no node named '/conv1/Con'.*/conv1/Conv"):
        model.conv_layer("/conv1/Con")
    with pytest.raises(convmat.ConvmatError, match="'/fc1/Gemm' \\(Gemm\\).*not a convolution"):
        model.conv_layer("/fc1/Gemm")
    with pytest.raises(convmat.ConvmatError, match="invalid node_name"):
        model.conv_layer(3)


def test_export_writes_scipy_files_and_a_manifest(tmp_path):
    model = convmat.onnx.load(GOLDEN / "torch_cnn.onnx")
    blocks = model.export(tmp_path / "blocks")
    layers = model.affine_layers()
    manifest = json.loads((tmp_path / "blocks" / "manifest.json").read_text())
    assert manifest["blocks"] == blocks and len(blocks) == len(layers)
    for entry, layer in zip(blocks, layers):
        a = sp.load_npz(tmp_path / "blocks" / entry["file"])
        assert (a != layer.matrix).nnz == 0
        assert np.array_equal(np.load(tmp_path / "blocks" / entry["file"])["bias"], layer.bias)
        assert (entry["name"], entry["nodes"], entry["nonlinearity"]) == (layer.name, layer.nodes, layer.activation)
        assert tuple(entry["input_shape"]) == layer.input_shape and entry["nnz"] == layer.matrix.nnz


def test_dynamic_shapes_need_input_shape():
    path = GOLDEN / "bad" / "dynamic_shape.onnx"
    with pytest.raises(convmat.ConvmatError, match=r"dynamic shape .* input_shape=\(C, H, W\), for example input_shape=\(1, 32, 32\)") as e:
        convmat.onnx.load(path)
    assert "--input-shape" not in str(e.value)
    model = convmat.onnx.load(path, input_shape=(1, 5, 5))
    assert model.input_shape == (1, 5, 5) and model.affine_layers()[0].input_shape == (1, 5, 5)


def bad_models(tmp_path):
    good = (GOLDEN / "torch_cnn.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "corrupt.onnx").write_bytes(b"\xff" * 64)
    (tmp_path / "text.onnx").write_text("not a model at all\n")
    return [
        (tmp_path / "missing.onnx", "No such file"),
        (tmp_path / "truncated.onnx", "not a valid ONNX model"),
        (tmp_path / "corrupt.onnx", "not a valid ONNX model"),
        (tmp_path / "text.onnx", "not a valid ONNX model"),
        (GOLDEN / "bad" / "missing_initializer.onnx", "'conv' .*reads 'W'"),
        (GOLDEN / "bad" / "external_absolute.onnx", "absolute path"),
        (GOLDEN / "bad" / "external_dotdot.onnx", r"\.\."),
    ]


def test_bad_models_raise_one_line(tmp_path):
    for path, pattern in bad_models(tmp_path):
        with pytest.raises(convmat.ConvmatError, match=pattern) as e:
            convmat.onnx.load(path).affine_layers()
        assert "\n" not in str(e.value) and isinstance(e.value, ValueError), path


def test_an_unsupported_op_is_named_with_its_node():
    model = convmat.onnx.load(GOLDEN / "bad" / "unsupported_op.onnx")  # listing works
    node = next(n for n in model.nodes if n.op == "Hardmax")
    assert node.params["role"] == "unsupported" and not node.affine
    with pytest.raises(convmat.ConvmatError, match="node 'the_hardmax' \\(Hardmax\\) is not supported"):
        model.affine_layers()
    with pytest.raises(convmat.ConvmatError, match="the_hardmax"):
        model.export(Path("/nonexistent-never-written"))


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: convmat.onnx.load(3), "invalid path 3"),
        (lambda: convmat.onnx.load(GOLDEN / "torch_cnn.onnx", input_shape=5), "invalid input_shape"),
        (lambda: convmat.onnx.load(GOLDEN / "torch_cnn.onnx", input_shape=(2, 12, 12)), "channel|2"),
        (lambda: convmat.onnx.load(GOLDEN / "torch_cnn.onnx").affine_layers(format="coo"), "coo"),
        (lambda: convmat.onnx.load(GOLDEN / "torch_cnn.onnx").affine_layers(format=None), "invalid format"),
        (lambda: convmat.onnx.load(GOLDEN / "torch_cnn.onnx").affine_layers(fold_batchnorm="no"), "True or False"),
    ],
)
def test_bad_arguments_raise_convmat_error(call, pattern):
    with pytest.raises(convmat.ConvmatError, match=pattern) as e:
        call()
    assert "\n" not in str(e.value)


def test_export_failure_leaves_no_partial_files(tmp_path):
    out = tmp_path / "blocks"
    with pytest.raises(convmat.ConvmatError):
        convmat.onnx.load(GOLDEN / "bad" / "unsupported_op.onnx").export(out)
    assert not out.exists() or not any(out.iterdir())


def test_blocks_build_with_the_gil_released():
    model = convmat.onnx.load(GOLDEN / "torch_cnn.onnx")
    results = []
    threads = [threading.Thread(target=lambda: results.append(len(model.affine_layers()))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [4] * 4


def test_docstrings_run_on_the_readme_cnn(tmp_path, monkeypatch):
    """The module's examples name examples/cnn.onnx, README's model, run from the repository's root."""
    (tmp_path / "examples").mkdir()
    shutil.copy(EXAMPLES / "cnn.onnx", tmp_path / "examples" / "cnn.onnx")
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testmod(
        convmat.onnx, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, extraglobs={"np": np}
    )
    assert tried >= 8 and failures == 0


# ---------------------------------------------------------------------------------------------
# against real torch and onnxruntime (where importable: never in CI; run by hand from /work/venv)


def test_torch_models_exported_and_rechecked(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    nn = torch.nn
    torch.manual_seed(14)
    nets = {
        "cnn_bn": (nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 6, 3, stride=2, padding=1, padding_mode="reflect", groups=2), nn.Tanh(),
            nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 5),
        ), (3, 16, 16)),
        "transposed_1d": (nn.Sequential(
            nn.Conv1d(2, 4, 5, dilation=2, padding="same", padding_mode="replicate"), nn.ReLU(),
            nn.ConvTranspose1d(4, 3, 4, stride=3, padding=1, output_padding=2), nn.AvgPool1d(2),
        ), (2, 11)),
        "conv3d": (nn.Sequential(nn.Conv3d(2, 3, (2, 3, 3), stride=(1, 2, 1), padding=(1, 0, 2)), nn.ReLU()),
                   (2, 4, 6, 5)),
    }
    for name, (net, shape) in nets.items():
        net.eval()
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.running_mean.uniform_(-1, 1)
                    m.running_var.uniform_(0.5, 2)
                    m.weight.uniform_(-2, 2)
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(net, torch.randn(1, *shape), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        model = convmat.onnx.load(path)
        layers = model.affine_layers()
        for layer in layers:  # a conv block with nothing folded after it is the node's convmat.Conv
            if layer.op in ("Conv", "ConvTranspose") and layer.nodes[-1] == layer.name:
                conv, conv_shape = model.conv_layer(layer.name)
                assert conv_shape == layer.input_shape
                assert abs(convmat.matrix(conv, conv_shape, dtype="float64") - layer.matrix).max() == 0, layer.name
        for _ in range(3):
            x = np.random.default_rng().standard_normal((1, *shape)).astype(np.float32)
            want = session.run(None, {"x": x})[0][0].astype(np.float64).ravel()
            with torch.no_grad():
                assert np.allclose(net(torch.from_numpy(x))[0].numpy().ravel(), want, atol=1e-5)
            got = run(layers, x)
            assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max()), name
