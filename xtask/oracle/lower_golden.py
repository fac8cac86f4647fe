"""Goldens for `convmat lower` (issue 29): three small CNNs made in torch, what each lowered block must be, and
what onnxruntime says the originals compute.

Run:  /work/venv/bin/python xtask/oracle/lower_golden.py crates/onnx/tests/golden/lower
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

`--check CONVMAT` lowers each golden model with that binary (both forms) and compares onnxruntime on the
lowered model with onnxruntime on the original on 1,000 random inputs (uniform in [-1, 1]): the script stops
when any output differs by more than 1e-5 of the largest output's size.
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


def check(convmat, golden=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../crates/onnx/tests/golden/lower")):
    meta = json.load(open(os.path.join(golden, "lower.json")))
    rng = np.random.default_rng(1000)
    with tempfile.TemporaryDirectory() as tmp:
        for case in meta["cases"]:
            model = os.path.join(golden, case["model"])
            xs = rng.uniform(-1, 1, size=(1000, *case["input_shape"])).astype(np.float32)
            want = ort_run(model, xs)
            for form in ["gemm", "matmul"]:
                for keep in [False, True]:
                    out = os.path.join(tmp, f"{case['name']}_{form}_{keep}.onnx")
                    cmd = [convmat, "lower", model, "-o", out, "--form", form] + (["--keep-input-shape"] if keep else [])
                    subprocess.run(cmd, check=True, capture_output=True)
                    onnx.checker.check_model(onnx.load(out))
                    got = ort_run(out, xs if keep else xs.reshape(1000, -1))
                    err = np.abs(got - want).max() / np.abs(want).max()
                    print(f"{case['name']} form={form} keep_input_shape={keep}: 1000 inputs, "
                          f"max |lowered - original| / max |original| = {err:.2e}")
                    assert err <= 1e-5, (case["name"], form, keep, err)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2])
    else:
        write(sys.argv[1] if len(sys.argv) > 1 else "crates/onnx/tests/golden/lower")
