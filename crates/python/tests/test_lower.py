"""convmat.onnx's lower() proven on the readers it is for, against the goldens of xtask/oracle/lower_golden.py
(three small CNNs made in torch; their onnxruntime outputs committed):

- the lowered model evaluated by ``onnx.reference`` equals the original's onnxruntime outputs;
- OMLT 1.2.2 loads the lowered model unchanged, and a MILP maximising logit 0 over an L-infinity ball of
  radius 0.05 around a fixed input, solved by HiGHS, returns an input on which the lowered model
  (``onnx.reference``) and, where onnxruntime is installed, the original model reach the MILP's objective
  (``onnx.reference`` itself is no oracle for the originals: on cnn_a's BatchNormalization, as torch exports
  it, onnx 1.23.2's reference gives 0.1799 where onnxruntime and torch give 0.1773);
- gurobi-machinelearning's ``add_predictor_constr`` accepts it (and solves it where gurobipy's size-limited
  licence allows).

Each test skips where its package is not installed (CI installs onnx, omlt, pyomo and highspy)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import convmat
import convmat.onnx

GOLDEN = Path(__file__).resolve().parents[2] / "onnx" / "tests" / "golden"
META = json.loads((GOLDEN / "lower" / "lower.json").read_text())
CASES = {c["name"]: c for c in META["cases"]}
RADIUS = 0.05


def lower(tmp_path, name, **kw):
    out = tmp_path / f"{name}_{kw.get('form', 'gemm')}.onnx"
    report = convmat.onnx.load(GOLDEN / "lower" / CASES[name]["model"]).lower(out, **kw)
    return out, report


def reference(path, x):
    """onnx.reference's outputs of the model at `path` on the batch `x` (float32)."""
    from onnx.reference import ReferenceEvaluator

    r = ReferenceEvaluator(str(path))
    return r.run(None, {r.input_names[0]: np.asarray(x, dtype=np.float32)})[0]


def test_report_and_file():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out, report = lower(Path(tmp), "cnn_a")
        assert list(report) == ["model", "output", "blocks", "bytes"]
        assert report["bytes"] == os.path.getsize(out)
        assert report["output"] == str(out)
        assert [(b["name"], b["op"], b["rows"], b["cols"]) for b in report["blocks"]] == [
            ("/conv1/Conv", "Conv", 576, 144),
            ("/conv2/Conv", "Conv", 100, 576),
            ("/fc/Gemm", "Gemm", 3, 100),
        ]
        assert all(b["bytes"] == 4 * b["rows"] * (b["cols"] + 1) for b in report["blocks"])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("form", ["gemm", "matmul"])
@pytest.mark.parametrize("keep", [False, True])
def test_reference_on_the_lowered_model_equals_onnxruntime_on_the_original(tmp_path, name, form, keep):
    pytest.importorskip("onnx")
    case = CASES[name]
    out, _ = lower(tmp_path, name, form=form, keep_input_shape=keep)
    xs = np.array(case["inputs"], dtype=np.float32)
    if keep:
        xs = xs.reshape(len(xs), *case["input_shape"])
    got, want = reference(out, xs), np.array(case["outputs"])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_max_pool_and_reflect_padding(tmp_path):
    """torch_cnn (onnx_golden.py): Conv, ReLU, MaxPool, a reflect-padded Conv, Flatten, Linear, BatchNorm1d."""
    pytest.importorskip("onnx")
    case = next(c for c in json.loads((GOLDEN / "cases.json").read_text())["cases"] if c["name"] == "torch_cnn")
    out = tmp_path / "cnn.onnx"
    convmat.onnx.load(GOLDEN / case["file"]).lower(out)
    got = reference(out, np.array(case["inputs"], dtype=np.float32))
    want = np.array(case["outputs"])
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_bad_input(tmp_path):
    model = convmat.onnx.load(GOLDEN / "lower" / "cnn_a.onnx")
    with pytest.raises(convmat.ConvmatError, match=r"/conv1/Conv.*576 x 144 \(334080 bytes\)"):
        model.lower(tmp_path / "out.onnx", max_dense_bytes=1000)
    with pytest.raises(convmat.ConvmatError, match="is a directory"):
        model.lower(tmp_path)
    with pytest.raises(convmat.ConvmatError, match="valid forms: gemm, matmul"):
        model.lower(tmp_path / "out.onnx", form="conv")
    with pytest.raises(convmat.ConvmatError, match="max_dense_bytes"):
        model.lower(tmp_path / "out.onnx", max_dense_bytes=-1)
    assert list(tmp_path.iterdir()) == []


def original_logit0(case, x):
    """onnxruntime's logit 0 of the original model at x, or None where onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    s = ort.InferenceSession(str(GOLDEN / "lower" / case["model"]), providers=["CPUExecutionProvider"])
    x = x.reshape(1, *case["input_shape"]).astype(np.float32)
    return float(s.run(None, {s.get_inputs()[0].name: x})[0][0, 0])


def milp_highs(path, x0):
    """OMLT's big-M ReLU formulation of the lowered model, logit 0 maximised over the ball around x0 by
    HiGHS: (objective, the maximising input)."""
    pytest.importorskip("highspy")
    pyo = pytest.importorskip("pyomo.environ")
    omlt = pytest.importorskip("omlt")
    onnx = pytest.importorskip("onnx")
    from omlt.io import load_onnx_neural_network
    from omlt.neuralnet import ReluBigMFormulation

    bounds = {i: (float(v) - RADIUS, float(v) + RADIUS) for i, v in enumerate(x0)}
    net = load_onnx_neural_network(onnx.load(str(path)), input_bounds=bounds)
    m = pyo.ConcreteModel()
    m.nn = omlt.OmltBlock()
    m.nn.build_formulation(ReluBigMFormulation(net))
    m.obj = pyo.Objective(expr=m.nn.outputs[0], sense=pyo.maximize)
    solver = pyo.SolverFactory("appsi_highs")
    solver.config.mip_gap = 1e-9
    result = solver.solve(m)
    assert str(result.solver.termination_condition) == "optimal", result
    x = np.array([pyo.value(m.nn.inputs[i]) for i in range(len(x0))])
    return pyo.value(m.obj), x


@pytest.mark.parametrize("name", sorted(CASES))
def test_omlt_and_highs_maximise_logit_0_over_a_ball(tmp_path, name):
    case = CASES[name]
    out, _ = lower(tmp_path, name)
    x0 = np.array(case["inputs"][0])
    objective, x = milp_highs(out, x0)
    assert np.abs(x - x0).max() <= RADIUS + 1e-6, "the maximiser stays in the ball"
    # the lowered network on the maximiser reaches the objective ...
    lowered = reference(out, x[None])[0, 0]
    assert abs(lowered - objective) <= 1e-5 * max(1.0, abs(objective)), (lowered, objective)
    # ... and so does the original (torch's export, Conv and all), where onnxruntime runs it
    original = original_logit0(case, x)
    if original is not None:
        assert abs(original - objective) <= 1e-5 * max(1.0, abs(objective)), (original, objective)
    # and no smaller than at the centre
    assert objective >= np.array(case["outputs"][0])[0] - 1e-6


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("form", ["gemm", "matmul"])
def test_gurobi_machinelearning_accepts_the_lowered_model(tmp_path, name, form):
    gp = pytest.importorskip("gurobipy")
    pytest.importorskip("gurobi_ml")
    onnx = pytest.importorskip("onnx")
    from gurobi_ml import add_predictor_constr

    case = CASES[name]
    out, _ = lower(tmp_path, name, form=form)
    x0 = np.array(case["inputs"][0])
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        x = m.addMVar((1, len(x0)), lb=x0 - RADIUS, ub=x0 + RADIUS)
        pred = add_predictor_constr(m, onnx.load(str(out)), x)
        m.setObjective(pred.output[0, 0], gp.GRB.MAXIMIZE)
        try:
            m.optimize()
        except gp.GurobiError as e:  # the pip licence's size limit: the constraints were built
            assert "size-limited" in str(e) or "Model too large" in str(e), e
            return
        lowered = reference(out, x.X)[0, 0]
        assert abs(lowered - m.ObjVal) <= 1e-5 * max(1.0, abs(m.ObjVal)), (lowered, m.ObjVal)
        original = original_logit0(case, x.X[0])
        if original is not None:
            assert abs(original - m.ObjVal) <= 1e-5 * max(1.0, abs(m.ObjVal)), (original, m.ObjVal)


GRAPHS = {c["name"]: c for c in json.loads((GOLDEN / "lower" / "graphs.json").read_text())["cases"]}


def lower_graph(tmp_path, name, **kw):
    out = tmp_path / f"{name}_{kw.get('form', 'gemm')}_{kw.get('max_pool', 'keep')}.onnx"
    report = convmat.onnx.load(GOLDEN / "lower" / GRAPHS[name]["model"]).lower(out, **kw)
    return out, report


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("form", ["gemm", "matmul"])
@pytest.mark.parametrize("max_pool", ["keep", "relu"])
def test_lowered_graphs_on_onnxruntime_equal_the_originals(tmp_path, name, form, max_pool):
    """Residual Add, channel Concat, PRelu / LeakyRelu / Clip with explicit operands, MaxPool kept or as
    Gemm + Relu: onnxruntime on the lowered model against onnxruntime's outputs of the original."""
    ort = pytest.importorskip("onnxruntime")
    case = GRAPHS[name]
    out, _ = lower_graph(tmp_path, name, form=form, max_pool=max_pool)
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = s.run(None, {case["input"]: np.array(case["inputs"], dtype=np.float32)})[0]
    want = np.array(case["outputs"])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_max_pool_as_relu_layers_on_omlt_and_highs(tmp_path):
    """maxpool_cnn lowered with max_pool="relu" is Gemm and Relu only: OMLT reads it and the MILP's
    maximiser reaches the objective on the original (MaxPool and all) where onnxruntime runs it."""
    case = GRAPHS["maxpool_cnn"]
    out, report = lower_graph(tmp_path, "maxpool_cnn", max_pool="relu")
    assert [b["op"] for b in report["blocks"]] == ["Conv", "MaxPool", "MaxPool", "MaxPool", "Gemm"]
    x0 = np.array(case["inputs"][0])
    objective, x = milp_highs(out, x0)
    assert np.abs(x - x0).max() <= RADIUS + 1e-6
    lowered = reference(out, x[None])[0, 0]
    assert abs(lowered - objective) <= 1e-5 * max(1.0, abs(objective)), (lowered, objective)
    original = original_logit0(case, x)
    if original is not None:
        assert abs(original - objective) <= 1e-5 * max(1.0, abs(objective)), (original, objective)


def test_omlt_1_2_2_reads_no_junction(tmp_path):
    """What OMLT 1.2.2 accepted: chains of Gemm / MatMul + Add and Relu only; the residual Add of two
    computed vectors is refused by its own parser (a graph-capable reader, onnxruntime or Marabou, is
    needed for ResNets)."""
    omlt = pytest.importorskip("omlt")
    onnx = pytest.importorskip("onnx")
    if omlt.__version__ != "1.2.2":
        pytest.skip(f"documents OMLT 1.2.2, found {omlt.__version__}")
    from omlt.io import load_onnx_neural_network

    out, _ = lower_graph(tmp_path, "resnet_block")
    with pytest.raises(ValueError, match="Add"):
        load_onnx_neural_network(onnx.load(str(out)))


@pytest.mark.parametrize("name", ["resnet_block", "dense_block"])
def test_marabou_reads_residual_add_and_concat(tmp_path, name):
    """Marabou's ONNX reader takes the lowered graphs, and its own equations evaluate them as onnxruntime
    evaluates the originals."""
    marabou = pytest.importorskip("maraboupy.Marabou")
    case = GRAPHS[name]
    out, _ = lower_graph(tmp_path, name)
    net = marabou.read_onnx(str(out))
    x = np.array(case["inputs"][0])[None]
    got = np.array(net.evaluateWithMarabou([x])[0]).reshape(-1)
    want = np.array(case["outputs"][0])
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max()), (got, want)


def test_gurobi_machinelearning_takes_max_pool_as_relu_layers_not_junctions(tmp_path):
    """What gurobi-machinelearning 1.7 accepted: maxpool_cnn with max_pool="relu" (Gemm and Relu only),
    solved to the objective onnxruntime reaches on the original where the pip licence's size limit allows;
    the residual block is refused by its own check ("Non-sequential architecture")."""
    gp = pytest.importorskip("gurobipy")
    gml = pytest.importorskip("gurobi_ml")
    onnx = pytest.importorskip("onnx")
    from gurobi_ml import add_predictor_constr

    case = GRAPHS["maxpool_cnn"]
    out, _ = lower_graph(tmp_path, "maxpool_cnn", max_pool="relu")
    x0 = np.array(case["inputs"][0])
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        x = m.addMVar((1, len(x0)), lb=x0 - RADIUS, ub=x0 + RADIUS)
        pred = add_predictor_constr(m, onnx.load(str(out)), x)
        m.setObjective(pred.output[0, 0], gp.GRB.MAXIMIZE)
        try:
            m.optimize()
        except gp.GurobiError as e:  # the pip licence's size limit: the constraints were built
            assert "size-limited" in str(e) or "Model too large" in str(e), e
        else:
            original = original_logit0(case, x.X[0])
            if original is not None:
                assert abs(original - m.ObjVal) <= 1e-5 * max(1.0, abs(m.ObjVal)), (original, m.ObjVal)
    if gml.__version__ != "1.7.0":
        return
    out, _ = lower_graph(tmp_path, "resnet_block")
    with gp.Env(params={"OutputFlag": 0}) as env, gp.Model(env=env) as m:
        x = m.addMVar((1, 72), lb=-1, ub=1)
        with pytest.raises(Exception, match="Non-sequential architecture"):
            add_predictor_constr(m, onnx.load(str(out)), x)
