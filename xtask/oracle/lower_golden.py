"""Goldens for `convmat lower` (issue 29): three small CNNs made in torch, what each lowered block must be, and
what onnxruntime says the originals compute.

Run:  /work/venv/bin/python xtask/oracle/lower_golden.py crates/onnx/tests/golden/lower
      /work/venv/bin/python xtask/oracle/lower_golden.py graphs crates/onnx/tests/golden/lower
      /work/venv/bin/python xtask/oracle/lower_golden.py --check target/debug/convmat   (1,000 random inputs)

Writes, into the folder given:
- cnn_a.onnx, cnn_b.onnx, cnn_c.onnx: torch.onnx.export(dynamo=False, opset 13, dynamic batch) of
  (a) 1x12x12: Conv(1->4, 3, padding=1) + BatchNorm + ReLU + Conv(4->4, 3, stride 2) + ReLU + Flatten + Linear(100, 3)
  (b) 3x8x8: Conv(3->4, 3, stride 2, padding 1) + ReLU + Conv(4->4, 3, padding 1, groups 2) + ReLU + Flatten + Linear(64, 3)
  (c) 1x10x10: Conv(1->2, 3, dilation 2, padding 2, padding_mode='reflect') + ReLU + AvgPool(2) + Flatten + Linear(50, 3)
  weights seeded, BatchNorm statistics randomised, in eval mode;
- jacobians.npz: per case and block k, the block's matrix as torch computes it, the identity-basis Jacobian
  (float64 forward of the block's modules on every basis vector, minus the output at 0) stored sparse:
  `{case}.{k}.shape` (rows, cols), `.index` (row * cols + col of each entry that is not 0), `.value`
  (float32), `.bias` (float32, the output at 0);
- lower.json: per case the model file, the input name and shape, the block cut, 4 inputs and the outputs
  onnxruntime computes on the original model; the oracles' versions.

`graphs FOLDER` writes the graph cases (issue 29's junctions) beside them, leaving the chain files as they are:
- resnet_block.onnx (2x6x6: Conv(2->4, 3, padding 1) + BatchNorm + ReLU, then a basic block Conv(4->4, 3,
  padding 1) + BatchNorm + ReLU + Conv(4->4, 3, padding 1) + BatchNorm + the skip, ReLU; Flatten + Linear(144, 3))
  and dense_block.onnx (3x6x6: two dense layers, each Conv(c->4, 3, padding 1) + ReLU concatenated onto its
  input along the channels, torch.cat(dim=1); AvgPool(2) + Flatten + Linear(99, 3)) and activations.onnx
  (1x6x6: Conv(1->3) + PReLU(3, slopes 0.1, -0.3, 0.5) + Conv(3->3) + LeakyReLU(0.2) + Conv(3->2) times 4 +
  ReLU6 (Clip with min and max inputs) + MaxPool(2) + Flatten + Linear(18, 3); every Conv 3x3, padding 1),
  and maxpool_cnn.onnx (1x8x8: Conv(1->2, 3, padding 1) + ReLU + MaxPool(2) + Flatten + Linear(32, 3), the
  MaxPool for `--max-pool relu` on OMLT and HiGHS), exported as above;
- graph_jacobians.npz: per case and block, keyed `{case}.{k}` in the order of graphs.json's `blocks`, the
  block's Jacobian as above (the Conv with its BatchNorm, the pool, the Linear with the Flatten before it);
- graphs.json: per case the model, input shape, the blocks (`node`: the ONNX node the lowered Gemm is named
  after, rows, cols), 4 inputs and onnxruntime's outputs on the original.

`--check CONVMAT` lowers each golden model (the chains, the graph cases above and the thirteen graph goldens of
graph_golden.py in crates/onnx/tests/golden/graphs) with that binary (both forms, both input shapes, both
max-pool forms), checks the file with onnx.checker (full_check) and compares onnxruntime on the lowered
model with onnxruntime on the original on 1,000 random inputs (uniform in [-1, 1]): the script stops when
any output differs by more than 1e-5 of the largest output's size.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn


def case_a():
    torch.manual_seed(1)
    conv1, bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
    conv2, fc = nn.Conv2d(4, 4, 3, stride=2), nn.Linear(4 * 5 * 5, 3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    blocks = [[("conv1", conv1), ("bn1", bn)], [("conv2", conv2)], [("flatten", nn.Flatten()), ("fc", fc)]]
    return (1, 12, 12), blocks, ["relu1", "relu2", None]


def case_b():
    torch.manual_seed(2)
    conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1, groups=1)
    conv2 = nn.Conv2d(4, 4, 3, padding=1, groups=2)
    fc = nn.Linear(4 * 4 * 4, 3)
    blocks = [[("conv1", conv1)], [("conv2", conv2)], [("flatten", nn.Flatten()), ("fc", fc)]]
    return (3, 8, 8), blocks, ["relu1", "relu2", None]


def case_c():
    torch.manual_seed(3)
    conv = nn.Conv2d(1, 2, 3, dilation=2, padding=2, padding_mode="reflect")
    fc = nn.Linear(2 * 5 * 5, 3)
    blocks = [[("conv1", conv)], [("pool", nn.AvgPool2d(2))], [("flatten", nn.Flatten()), ("fc", fc)]]
    return (1, 10, 10), blocks, ["relu1", None, None]


CASES = {"cnn_a": case_a, "cnn_b": case_b, "cnn_c": case_c}


class ResnetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0, self.bn0 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.relu0, self.relu1, self.relu2 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.flatten, self.fc = nn.Flatten(), nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        h = self.relu0(self.bn0(self.conv0(x)))
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(h)))))
        return self.fc(self.flatten(self.relu2(y + h)))

    def blocks(self):
        return [("/conv0/Conv", [self.conv0, self.bn0]), ("/conv1/Conv", [self.conv1, self.bn1]),
                ("/conv2/Conv", [self.conv2, self.bn2]), ("/fc/Gemm", [self.flatten, self.fc])]


class DenseBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(7, 4, 3, padding=1)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.pool, self.flatten, self.fc = nn.AvgPool2d(2), nn.Flatten(), nn.Linear(11 * 3 * 3, 3)

    def forward(self, x):
        x = torch.cat([x, self.relu1(self.conv1(x))], dim=1)
        x = torch.cat([x, self.relu2(self.conv2(x))], dim=1)
        return self.fc(self.flatten(self.pool(x)))

    def blocks(self):
        return [("/conv1/Conv", [self.conv1]), ("/conv2/Conv", [self.conv2]), ("/pool/AveragePool", [self.pool]),
                ("/fc/Gemm", [self.flatten, self.fc])]


class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)
        self.conv3 = nn.Conv2d(3, 2, 3, padding=1)
        self.prelu, self.leaky, self.relu6 = nn.PReLU(3), nn.LeakyReLU(0.2), nn.ReLU6()
        self.pool, self.flatten, self.fc = nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 3)

    def forward(self, x):
        x = self.leaky(self.conv2(self.prelu(self.conv1(x))))
        return self.fc(self.flatten(self.pool(self.relu6(4 * self.conv3(x)))))

    def blocks(self):
        return [("/conv1/Conv", [self.conv1]), ("/conv2/Conv", [self.conv2]), ("/conv3/Conv", [self.conv3, Times4()]),
                ("/fc/Gemm", [self.flatten, self.fc])]


class MaxPoolCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.relu = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()
        self.pool, self.flatten, self.fc = nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.relu(self.conv(x)))))

    def blocks(self):
        return [("/conv/Conv", [self.conv]), ("/fc/Gemm", [self.flatten, self.fc])]


class Times4(nn.Module):
    def forward(self, x):
        return 4 * x


def graph_cases():
    torch.manual_seed(4)
    resnet = ResnetBlock()
    with torch.no_grad():
        for bn in [resnet.bn0, resnet.bn1, resnet.bn2]:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    torch.manual_seed(5)
    dense = DenseBlock()
    torch.manual_seed(7)
    maxpool = MaxPoolCnn()
    torch.manual_seed(6)
    acts = Activations()
    with torch.no_grad():
        acts.prelu.weight.copy_(torch.tensor([0.1, -0.3, 0.5]))
    # the input shape of each block, in the order of blocks()
    return {"resnet_block": (resnet.eval(), (2, 6, 6), [(2, 6, 6), (4, 6, 6), (4, 6, 6), (4, 6, 6)]),
            "dense_block": (dense.eval(), (3, 6, 6), [(3, 6, 6), (7, 6, 6), (11, 6, 6), (11, 3, 3)]),
            "activations": (acts.eval(), (1, 6, 6), [(1, 6, 6), (3, 6, 6), (3, 6, 6), (2, 3, 3)]),
            "maxpool_cnn": (maxpool.eval(), (1, 8, 8), [(1, 8, 8), (2, 4, 4)])}


def write_graphs(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2929)
    arrays, cases = {}, []
    for name, (net, shape, block_inputs) in graph_cases().items():
        path = os.path.join(out, f"{name}.onnx")
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        torch.onnx.export(
            net, torch.zeros(1, *shape), path, dynamo=False, opset_version=13, do_constant_folding=not has_bn,
            training=torch.onnx.TrainingMode.EVAL, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
        model = onnx.load(path)
        onnx.checker.check_model(model)
        nodes = {n.name for n in model.graph.node}
        cut = []
        for k, ((node, modules), s) in enumerate(zip(net.blocks(), block_inputs)):
            assert node in nodes, (name, node, sorted(nodes))
            j, bias, s_out = jacobian(copy.deepcopy(nn.Sequential(*modules)), s)
            nz = np.flatnonzero(j)
            arrays[f"{name}.{k}.shape"] = np.array(j.shape, dtype=np.int32)
            arrays[f"{name}.{k}.index"] = nz.astype(np.int32)
            arrays[f"{name}.{k}.value"] = j.reshape(-1)[nz].astype(np.float32)
            arrays[f"{name}.{k}.bias"] = bias.astype(np.float32)
            cut.append({"node": node, "rows": j.shape[0], "cols": j.shape[1], "input_shape": list(s),
                        "output_shape": s_out})
        xs = rng.uniform(-1, 1, size=(4, *shape)).astype(np.float32)
        ys = ort_run(path, xs)
        with torch.no_grad():
            yt = net(torch.from_numpy(xs)).numpy()
        assert np.allclose(ys, yt, atol=1e-5), (name, np.abs(ys - yt).max())
        cases.append({
            "name": name, "model": f"{name}.onnx", "input": "input", "output": "logits",
            "input_shape": list(shape), "blocks": cut,
            "inputs": xs.reshape(4, -1).tolist(), "outputs": ys.tolist(),
        })
    np.savez_compressed(os.path.join(out, "graph_jacobians.npz"), **arrays)
    meta = {
        "oracle": "xtask/oracle/lower_golden.py graphs",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                     "numpy": np.__version__},
        "cases": cases,
    }
    with open(os.path.join(out, "graphs.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} graph cases to {out}")


def network(blocks, acts):
    """The whole network, its modules named (so the ONNX nodes are /conv1/Conv, /relu1/Relu, ...)."""
    layers = []
    for b, a in zip(blocks, acts):
        layers.extend(b)
        if a is not None:
            layers.append((a, nn.ReLU()))
    return nn.Sequential(OrderedDict(layers)).eval()


def jacobian(block, shape):
    """The block's matrix and bias in float64: its outputs on the identity basis minus its output at 0."""
    block = block.double().eval()
    n = int(np.prod(shape))
    with torch.no_grad():
        zero = block(torch.zeros(1, *shape, dtype=torch.float64)).reshape(-1)
        cols = block(torch.eye(n, dtype=torch.float64).reshape(n, *shape)).reshape(n, -1) - zero
    return cols.T.numpy(), zero.numpy(), list(block(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:])


def ort_run(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def write(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(29)
    arrays, cases = {}, []
    for name, make in CASES.items():
        shape, blocks, acts = make()
        net = network(blocks, acts)
        path = os.path.join(out, f"{name}.onnx")
        x0 = torch.zeros(1, *shape)
        # without constant folding a BatchNormalization stays a node of its own, for convmat to fold (with
        # it, torch fuses it into the Conv); constant folding reduces the reflect padding's pads subgraph
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net)
        torch.onnx.export(
            net, x0, path, dynamo=False, opset_version=13, do_constant_folding=not has_bn,
            training=torch.onnx.TrainingMode.EVAL, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
        onnx.checker.check_model(onnx.load(path))
        # the Jacobians, on float64 copies (the exported float32 network stays as it is)
        s = shape
        cut = []
        for k, b in enumerate(blocks):
            j, bias, s_out = jacobian(copy.deepcopy(nn.Sequential(OrderedDict(b))), s)
            nz = np.flatnonzero(j)
            arrays[f"{name}.{k}.shape"] = np.array(j.shape, dtype=np.int32)
            arrays[f"{name}.{k}.index"] = nz.astype(np.int32)
            arrays[f"{name}.{k}.value"] = j.reshape(-1)[nz].astype(np.float32)
            arrays[f"{name}.{k}.bias"] = bias.astype(np.float32)
            cut.append({"rows": j.shape[0], "cols": j.shape[1], "input_shape": list(s), "output_shape": s_out})
            s = tuple(s_out)
        xs = rng.uniform(-1, 1, size=(4, *shape)).astype(np.float32)
        ys = ort_run(path, xs)
        with torch.no_grad():
            yt = net(torch.from_numpy(xs)).numpy()
        assert np.allclose(ys, yt, atol=1e-5), (name, np.abs(ys - yt).max())
        cases.append({
            "name": name, "model": f"{name}.onnx", "input": "input", "output": "logits",
            "input_shape": list(shape), "blocks": cut,
            "inputs": xs.reshape(4, -1).tolist(), "outputs": ys.tolist(),
        })
    np.savez_compressed(os.path.join(out, "jacobians.npz"), **arrays)
    meta = {
        "oracle": "xtask/oracle/lower_golden.py",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                     "numpy": np.__version__},
        "cases": cases,
    }
    with open(os.path.join(out, "lower.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")


def check(convmat, golden=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../crates/onnx/tests/golden")):
    lower_dir = os.path.join(golden, "lower")
    cases = json.load(open(os.path.join(lower_dir, "lower.json")))["cases"]
    cases += json.load(open(os.path.join(lower_dir, "graphs.json")))["cases"]
    runs = [(os.path.join(lower_dir, c["model"]), c["name"], c["input_shape"]) for c in cases]
    # the graph goldens of graph_golden.py (residual Adds, Concats, Splits, Slices, Transposes, LayerNorm, ...)
    graphs = os.path.join(golden, "graphs")
    for name in sorted(json.load(open(os.path.join(graphs, "graphs.json")))["models"]):
        path = os.path.join(graphs, f"{name}.onnx")
        shape = [d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim[1:]]
        runs.append((path, name, shape))
    rng = np.random.default_rng(1000)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for model, name, shape in runs:
            xs = rng.uniform(-1, 1, size=(1000, *shape)).astype(np.float32)
            want = ort_run(model, xs)
            for form in ["gemm", "matmul"]:
                for keep in [False, True]:
                    for max_pool in ["keep", "relu"]:
                        out = os.path.join(tmp, f"{name}_{form}_{keep}_{max_pool}.onnx")
                        cmd = [convmat, "lower", model, "-o", out, "--form", form, "--max-pool", max_pool]
                        cmd += ["--keep-input-shape"] if keep else []
                        subprocess.run(cmd, check=True, capture_output=True)
                        onnx.checker.check_model(onnx.load(out), full_check=True)
                        got = ort_run(out, xs if keep else xs.reshape(1000, -1))
                        err = np.abs(got - want.reshape(got.shape)).max() / np.abs(want).max()
                        worst = max(worst, err)
                        print(f"{name} form={form} keep_input_shape={keep} max_pool={max_pool}: 1000 inputs, "
                              f"max |lowered - original| / max |original| = {err:.2e}")
                        assert err <= 1e-5, (name, form, keep, max_pool, err)
    print(f"{len(runs)} models, worst {worst:.2e}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2])
    elif sys.argv[1:2] == ["graphs"]:
        write_graphs(sys.argv[2] if len(sys.argv) > 2 else "crates/onnx/tests/golden/lower")
    else:
        write(sys.argv[1] if len(sys.argv) > 1 else "crates/onnx/tests/golden/lower")
